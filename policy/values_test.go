package policy_test

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"sbx/policy"
)

// Values that could never be right are refused by the decoder itself
// (so by sbx profile check), with the rules the flags use, located at
// their key, whether or not they use variables.
func TestDecodeProfileValues(t *testing.T) {
	const v1 = "version = 1\n"
	for _, tt := range []struct {
		name, text, at, msg string
	}{
		{"relative chdir", v1 + "[run]\nchdir = \"relative/dir\"\n", "3:1", `run.chdir "relative/dir": not an absolute path`},
		{"chdir with ..", v1 + "[run]\nchdir = \"$HOME/../x\"\n", "3:1", `run.chdir "$HOME/../x": has a ".." component`},
		{"chdir relative by a variable", v1 + "[run]\nchdir = \"x/$PROJECT\"\n", "3:1", `run.chdir "x/$PROJECT": not an absolute path`},
		{"hostname with a slash", v1 + "[run]\nhostname = \"a/b\"\n", "3:1", `run.hostname "a/b": not a valid host name`},
		{"hostname of 100 characters", v1 + "[run]\nhostname = \"" + strings.Repeat("a", 100) + "\"\n", "3:1", "want 1 to 64 characters"},
		{"hostname with a newline", v1 + "[run]\nhostname = \"a\\nb\"\n", "3:1", "not a valid host name"},
		{"hostname from $HOME", v1 + "[run]\nhostname = \"$HOME\"\n", "3:1", `run.hostname "$HOME": not a valid host name`},
		{"NUL in env.set", v1 + "[env]\nset = { A = \"a\\u0000b\" }\n", "3:9", "env.set.A \"a\\x00b\": NUL in value"},
		{"variable in env.keep", v1 + "[env]\nkeep = [\"PATH\", \"$NOPE\"]\n", "3:1", `env.keep: bad variable name "$NOPE": names are not expanded`},
		{"star inside env.keep", v1 + "[env]\nkeep = [\"LC_*_X\"]\n", "3:1", `env.keep: bad variable name "LC_*_X"`},
		{"star alone in env.keep", v1 + "[env]\nkeep = [\"*\"]\n", "3:1", `env.keep: "*": want a variable's NAME or a PREFIX* pattern`},
		{"= in env.keep", v1 + "[env]\nkeep = [\"A=B\"]\n", "3:1", `env.keep: bad variable name "A=B"`},
		{"pattern in env.unset", v1 + "[env]\nunset = [\"AWS_*\"]\n", "3:1", `env.unset: bad variable name "AWS_*": a name, not a pattern`},
		{"variable in env.set's name", v1 + "[env.set]\n\"$X\" = \"1\"\n", "3:1", `env.set: bad variable name "$X"`},
		{"unknown variable in extends", v1 + "extends = [\"$NOPE/x.toml\"]\n", "2:1", `extends "$NOPE/x.toml": undefined variable $NOPE`},
		{"lone $ in extends", v1 + "extends = [\"a$\"]\n", "2:1", "a lone $"},
		{"unknown variable names the known ones", v1 + "[run]\nchdir = \"$WORK\"\n", "3:1", "a profile may use $HOME, $PROJECT, $PWD"},
		{"seccomp NUL", v1 + "[security]\nseccomp = \"/a\\u0000b\"\n", "3:1", "security.seccomp"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := policy.DecodeProfile("mine.toml", []byte(tt.text))
			var pe *policy.ProfileError
			if !errors.As(err, &pe) || !errors.Is(err, policy.ErrUsage) {
				t.Fatalf("DecodeProfile(%q) = %v, want a located usage error", tt.text, err)
			}
			if prefix := "mine.toml:" + tt.at + ": "; !strings.HasPrefix(err.Error(), prefix) || !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("error %q\nwant %q followed by a message with %q", err, prefix, tt.msg)
			}
		})
	}
	// What may only be wrong where the profile is applied passes.
	for _, text := range []string{
		v1 + "[run]\nchdir = \"$PROJECT/sub\"\nhostname = \"$USER-box\"\n[[mount]]\nhide = \"$XDG_RUNTIME_DIR/x\"\n",
		v1 + "extends = [\"$XDG_CONFIG_HOME/sbx/base.toml\", \"${HOME}/p.toml\"]\n",
		v1 + "[env]\nkeep = [\"PATH\", \"LC_*\", \"npm_config_*\"]\nunset = [\"SSH_AUTH_SOCK\"]\nset = { A = \"$$HOME\" }\n",
		v1 + "[limits]\nmemory_swap = \"1G\"\n", // memory may come from the chain or --memory
	} {
		if _, err := policy.DecodeProfile("mine.toml", []byte(text)); err != nil {
			t.Errorf("DecodeProfile(%q): %v", text, err)
		}
	}
}

// extends entries may use variables, expanded where the chain is
// loaded; one undefined there is an error naming the entry.
func TestLoadChainExpandsExtends(t *testing.T) {
	pf := &files{text: map[string]string{
		"/home/alice/p.toml":         "version = 1\nextends = [\"$HOME/d/vars.toml\", \"${XDG_CONFIG_HOME}/b.toml\"]\n",
		"/home/alice/d/vars.toml":    "version = 1\n",
		"/home/alice/.config/b.toml": "version = 1\n",
		"/home/alice/q.toml":         "version = 1\n\nextends = [\"$XDG_RUNTIME_DIR/x.toml\"]\n",
	}}
	chain := mustChain(t, pf, "/home/alice/p.toml")
	if got, want := sources(chain), []string{"/home/alice/d/vars.toml", "/home/alice/.config/b.toml", "/home/alice/p.toml"}; !reflect.DeepEqual(got, want) {
		t.Errorf("chain %q, want %q", got, want)
	}
	vars := testVars()
	delete(vars, "XDG_RUNTIME_DIR")
	_, err := policy.LoadChain([]string{"/home/alice/q.toml"}, vars, pf.load)
	if err == nil || !strings.HasPrefix(err.Error(), "/home/alice/q.toml:3:1: ") || !strings.Contains(err.Error(), "undefined variable $XDG_RUNTIME_DIR") {
		t.Errorf("extends with an undefined variable: %v", err)
	}
	// A command line's path is the shell's to expand: taken as it is.
	if _, err := policy.LoadChain([]string{"$HOME/d/vars.toml"}, testVars(), pf.load); err == nil {
		t.Errorf("a --profile value was expanded")
	}
}

// A profile's memory_swap with no memory limit in the chain (nor
// --memory) is that profile's error, located; with --memory it stands.
func TestApplySwapWithoutMemory(t *testing.T) {
	pf := &files{text: map[string]string{
		"swap.toml": "version = 1\n[limits]\nmemory_swap = \"1G\"\n",
		"mem.toml":  "version = 1\n[limits]\nmemory = \"2G\"\n",
	}}
	_, _, err := policy.ApplyProfiles(mustChain(t, pf, "swap"), testVars(), cmd())
	if err == nil || !strings.HasPrefix(err.Error(), "swap.toml:3:1: ") || !strings.Contains(err.Error(), "limits.memory_swap") {
		t.Errorf("swap without memory: %v, want it located at swap.toml:3:1 naming limits.memory_swap", err)
	}
	for _, tc := range []struct {
		refs []string
		cli  policy.Flags
	}{
		{[]string{"mem", "swap"}, cmd()},
		{[]string{"swap", "mem"}, cmd()},
		{[]string{"swap"}, policy.Flags{Memory: 1 << 30, Argv: []string{"true"}}},
	} {
		if _, _, err := policy.ApplyProfiles(mustChain(t, pf, tc.refs...), testVars(), tc.cli); err != nil {
			t.Errorf("%q with memory %d: %v", tc.refs, tc.cli.Memory, err)
		}
	}
}

// ValueError places an error about a value (the seccomp profile's file,
// read outside policy) in the profile that gave it, not in one a later
// profile or a flag overrode.
func TestValueError(t *testing.T) {
	pf := &files{text: map[string]string{
		"a.toml": "version = 1\n[security]\nseccomp = \"/a.json\"\n",
		"b.toml": "version = 1\n\n\n[security]\nseccomp = \"/b.json\"\n",
	}}
	chain := mustChain(t, pf, "a", "b")
	_, o, err := policy.ApplyProfiles(chain, testVars(), cmd())
	if err != nil {
		t.Fatal(err)
	}
	err = policy.ValueError(chain, o, "security.seccomp", errors.New("open /b.json: no such file or directory"))
	if err == nil || err.Error() != "b.toml:5:1: security.seccomp: open /b.json: no such file or directory" || !errors.Is(err, policy.ErrUsage) {
		t.Errorf("ValueError = %v", err)
	}
	cli := cmd()
	cli.Seccomp = "/flag.json"
	_, o, _ = policy.ApplyProfiles(chain, testVars(), cli)
	if err := policy.ValueError(chain, o, "security.seccomp", errors.New("x")); err != nil {
		t.Errorf("ValueError of a flag's value = %v, want nil", err)
	}
}
