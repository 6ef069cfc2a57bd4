package tests

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Profiles: the CLI verbs (sbx profile list|show|check), lookup, the
// precedence of flags over profiles, variables, and the built-in profiles
// doing what the README says, as the unprivileged test user.

// builtinProfiles are the profiles compiled into sbx.
var builtinProfiles = []string{"default", "untrusted", "build", "build-net", "go", "npm", "cargo", "pip", "make"}

// profileEnv is this process's environment with XDG_CONFIG_HOME set to a
// fresh directory (so that no profile of the test user's own is found)
// and extra appended; it returns the environment and the directory user
// profiles go in.
func profileEnv(t *testing.T, extra ...string) (env []string, userDir string) {
	t.Helper()
	cfg := t.TempDir()
	userDir = filepath.Join(cfg, "sbx", "profiles")
	if err := os.MkdirAll(userDir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "XDG_CONFIG_HOME=") {
			env = append(env, kv)
		}
	}
	return append(append(env, "XDG_CONFIG_HOME="+cfg), extra...), userDir
}

// withEnv returns env with each of kvs replacing any variable of its name.
func withEnv(env []string, kvs ...string) []string {
	out := slices.Clone(env)
	for _, kv := range kvs {
		k, _, _ := strings.Cut(kv, "=")
		out = slices.DeleteFunc(out, func(e string) bool { return strings.HasPrefix(e, k+"=") })
		out = append(out, kv)
	}
	return out
}

// in runs c in dir, with PWD saying so as a shell would.
func (c sbxCmd) in(dir string) sbxCmd {
	if c.env == nil {
		c.env = os.Environ()
	}
	c.dir, c.env = dir, withEnv(c.env, "PWD="+dir)
	return c
}

// checkLocated checks sbx's error for a profile: 125, nothing on stdout,
// one line (a hint may follow) "sbx: FILE:LINE:COL: ..." naming each of
// words, LINE one of lines (nil: any).
func checkLocated(t *testing.T, r result, file string, lines []int, words ...string) {
	t.Helper()
	if r.code != 125 {
		t.Errorf("want exit 125\n%s", r)
		return
	}
	checkOneError(t, r, "")
	errLines := r.stderrLines()
	if len(errLines) == 0 {
		return
	}
	first := errLines[0]
	re := regexp.MustCompile(`^sbx: ` + regexp.QuoteMeta(file) + `:(\d+):(\d+): `)
	m := re.FindStringSubmatch(first)
	if m == nil {
		t.Errorf("error line %q does not start with %q", first, "sbx: "+file+":LINE:COL: ")
	} else if got, _ := strconv.Atoi(m[1]); lines != nil && !slices.Contains(lines, got) {
		t.Errorf("error line %q: want it at line %v", first, lines)
	}
	for _, w := range words {
		if !strings.Contains(first, w) {
			t.Errorf("error line %q does not name %q", first, w)
		}
	}
}

// payloadEnviron reads the payload's environment from /proc/self/environ.
func payloadEnviron(t *testing.T, c sbxCmd) (map[string]string, result) {
	t.Helper()
	c.args = append(c.args, "--", "/bin/cat", "/proc/self/environ")
	r := c.run(t)
	env := map[string]string{}
	for _, kv := range strings.Split(r.stdout, "\x00") {
		if k, v, ok := strings.Cut(kv, "="); ok {
			env[k] = v
		}
	}
	return env, r
}

// allowlisted says whether name passes the untrusted profile's env.keep.
func allowlisted(name string) bool {
	return slices.Contains([]string{"PATH", "HOME", "USER", "LANG", "TERM", "TZ"}, name) || strings.HasPrefix(name, "LC_")
}

// newProject makes a project directory that is the root of a git work
// tree (a .git directory git itself accepts, with hooks/ and config), with
// a Makefile, a tiny Go module and a subdirectory.
func newProject(t *testing.T) string {
	t.Helper()
	p := t.TempDir()
	for _, d := range []string{".git/hooks", ".git/objects", ".git/refs/heads", "sub"} {
		if err := os.MkdirAll(filepath.Join(p, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	writeFile(t, filepath.Join(p, ".git", "HEAD"), "ref: refs/heads/main\n", 0o644)
	writeFile(t, filepath.Join(p, ".git", "config"), gitConfig, 0o644)
	writeFile(t, filepath.Join(p, "Makefile"), "built.txt:\n\techo built by make > $@\n", 0o644)
	writeFile(t, filepath.Join(p, "go.mod"), "module example.com/hello\n\ngo 1.21\n", 0o644)
	writeFile(t, filepath.Join(p, "main.go"), "package main\n\nfunc main() { println(\"hello\") }\n", 0o644)
	return p
}

const gitConfig = "[core]\n\trepositoryformatversion = 0\n\tfilemode = true\n\tbare = false\n"

// plantSSHKey writes a key file into $HOME/.ssh (made, and removed
// afterwards, when missing) and returns its path.
func plantSSHKey(t *testing.T) string {
	t.Helper()
	home, _ := plantHomeSecret(t) // checks $HOME is usable
	dir := filepath.Join(home, ".ssh")
	if _, err := os.Stat(dir); os.IsNotExist(err) {
		if err := os.Mkdir(dir, 0o700); err != nil {
			mustRun(t, "cannot create $HOME/.ssh: "+err.Error())
		}
		t.Cleanup(func() { os.Remove(dir) })
	}
	f, err := os.CreateTemp(dir, "sbx-test-key-")
	if err != nil {
		mustRun(t, "cannot create a file in $HOME/.ssh: "+err.Error())
	}
	f.WriteString("-----BEGIN OPENSSH PRIVATE KEY----- s3cret\n")
	f.Close()
	t.Cleanup(func() { os.Remove(f.Name()) })
	return f.Name()
}

// TestProfileList: every built-in profile, one per line: name, source,
// description; a user profile with its file as the source.
func TestProfileList(t *testing.T) {
	t.Parallel()
	env, userDir := profileEnv(t)
	mine := filepath.Join(userDir, "sbxtest-mine.toml")
	writeFile(t, mine, "version = 1\ndescription = \"the test's own profile\"\n", 0o644)
	// A FIFO named like a profile must not hang the list (the guard
	// kills sbx and fails the test): it is listed as invalid.
	if err := syscall.Mkfifo(filepath.Join(userDir, "sbxtest-fifo.toml"), 0o600); err != nil {
		t.Fatal(err)
	}
	r := sbxCmd{args: []string{"profile", "list"}, env: env}.run(t)
	if r.code != 0 || r.stderr != "" {
		t.Fatalf("sbx profile list: want exit 0 and nothing on stderr\n%s", r)
	}
	byName := map[string][]string{}
	for _, l := range lines(r.stdout) {
		if f := strings.Fields(l); len(f) > 0 {
			byName[f[0]] = f
		}
	}
	for _, name := range builtinProfiles {
		f, ok := byName[name]
		switch {
		case !ok:
			t.Errorf("built-in profile %q is not listed\n%s", name, r.stdout)
		case len(f) < 3:
			t.Errorf("profile %q: want name, source and description, got %q", name, f)
		}
	}
	if f := byName["sbxtest-fifo"]; len(f) < 3 || !strings.Contains(strings.Join(f[2:], " "), "invalid") {
		t.Errorf("a FIFO in the profile directory: want it listed as invalid, got %q\n%s", f, r.stdout)
	}
	if f := byName["sbxtest-mine"]; len(f) < 3 || f[1] != mine || !strings.Contains(strings.Join(f[2:], " "), "the test's own profile") {
		t.Errorf("user profile: want %q with source %s and its description, got %q\n%s", "sbxtest-mine", mine, f, r.stdout)
	}
}

// TestProfileShow: the resolved chain as TOML, values commented with
// their origin; what it prints is itself a valid profile.
func TestProfileShow(t *testing.T) {
	t.Parallel()
	env, _ := profileEnv(t)
	proj := newProject(t)
	for _, tc := range []struct {
		name string
		want [][]string // each: one of these must appear
	}{
		{"build", [][]string{{`rw = "$PROJECT"`, `rw = "` + proj + `"`, `rw = '` + proj + `'`}, {"hide"}}},
		{"go", [][]string{{`rw = "$PROJECT"`, `rw = "` + proj + `"`, `rw = '` + proj + `'`}, {"GOTOOLCHAIN"}}},
		{"untrusted", [][]string{{"keep"}, {"1G"}, {"512"}}},
		{"default", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := sbxCmd{args: []string{"profile", "show", tc.name}, env: env}.in(proj).run(t)
			if r.code != 0 || strings.TrimSpace(r.stdout) == "" {
				t.Fatalf("sbx profile show %s: want exit 0 and TOML on stdout\n%s", tc.name, r)
			}
			for _, alts := range tc.want {
				if !slices.ContainsFunc(alts, func(s string) bool { return strings.Contains(r.stdout, s) }) {
					t.Errorf("sbx profile show %s: want one of %q\n%s", tc.name, alts, r.stdout)
				}
			}
			if tc.name != "default" && !strings.Contains(r.stdout, "#") {
				t.Errorf("sbx profile show %s: no comment saying where a value came from\n%s", tc.name, r.stdout)
			}
			f := filepath.Join(t.TempDir(), tc.name+".toml")
			writeFile(t, f, r.stdout, 0o644)
			if c := (sbxCmd{args: []string{"profile", "check", f}, env: env}).in(proj).run(t); c.code != 0 {
				t.Errorf("the output of sbx profile show %s is not a valid profile\n%s\n--- %s:\n%s", tc.name, c, f, r.stdout)
			}
		})
	}
	r := sbxCmd{args: []string{"profile", "show", "sbx-no-such-profile"}, env: env}.run(t)
	if r.code != 125 {
		t.Errorf("show of a profile that does not exist: want 125\n%s", r)
	}
	checkOneError(t, r, "sbx-no-such-profile")
}

// TestProfileCheck: a good file is exit 0; a bad one is 125 with one
// line "sbx: FILE:LINE:COL: ..." naming the key.
func TestProfileCheck(t *testing.T) {
	t.Parallel()
	env, _ := profileEnv(t)
	dir := t.TempDir()
	good := filepath.Join(dir, "good.toml")
	writeFile(t, good, `version = 1
description = "every key of the format"
extends = ["build"]

[run]
net = "none"
hostname = "build"
root = false
chdir = "$PROJECT"
timeout = "2h"
cgroup = false

[[mount]]
ro = "$PROJECT"
optional = true

[[mount]]
rw = "$HOME/.cache/sbx-test:/cache"
optional = true

[[mount]]
tmpfs = "/scratch"

[[mount]]
hide = "${HOME}/.ssh"
optional = true

[env]
clear = false
keep = ["PATH", "HOME", "USER", "LANG", "LC_*", "TERM", "TZ"]
set = { GOFLAGS = "-mod=mod" }
unset = ["SSH_AUTH_SOCK"]

[limits]
memory = "2G"
memory_swap = "0"
cpus = 2.0
pids = 4096
cpu_weight = 100
io_weight = 100
`, 0o644)
	if r := (sbxCmd{args: []string{"profile", "check", good}, env: env}).run(t); r.code != 0 {
		t.Errorf("sbx profile check of a good file: want exit 0\n%s", r)
	}

	for _, tc := range []struct {
		name, text string
		lines      []int    // where the error may be located; nil: anywhere
		words      []string // the error line names each
	}{
		{"unknown key", "version = 1\n[run]\nnetwork = \"none\"\n", []int{3}, []string{"network"}},
		{"unknown table", "version = 1\n[runn]\nnet = \"none\"\n", []int{2, 3}, []string{"runn"}},
		{"wrong type", "version = 1\n[run]\nroot = \"yes\"\n", []int{3}, []string{"root"}},
		{"bad value", "version = 1\n[limits]\nmemory = \"banana\"\n", []int{3}, []string{"memory"}},
		{"bad net", "version = 1\n[run]\nnet = \"bogus\"\n", []int{3}, []string{"net"}},
		{"bad timeout", "version = 1\n[run]\ntimeout = \"soon\"\n", []int{3}, []string{"timeout"}},
		{"missing version", "description = \"no version\"\n[run]\nnet = \"none\"\n", nil, []string{"version"}},
		{"future version", "version = 2\n", []int{1}, []string{"version"}},
		{"two operations in a mount", "version = 1\n[[mount]]\nro = \"/usr\"\nrw = \"/tmp\"\n", []int{2, 3, 4}, []string{"ro", "rw"}},
		{"no operation in a mount", "version = 1\n[[mount]]\noptional = true\n", []int{2, 3}, []string{"mount"}},
		{"not TOML", "version = 1\n[run\n", []int{2}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := filepath.Join(t.TempDir(), "bad.toml")
			writeFile(t, f, tc.text, 0o644)
			r := sbxCmd{args: []string{"profile", "check", f}, env: env}.run(t)
			checkLocated(t, r, f, tc.lines, tc.words...)
		})
	}

	t.Run("extends cycle", func(t *testing.T) {
		t.Parallel()
		d := t.TempDir()
		a, b := filepath.Join(d, "a.toml"), filepath.Join(d, "b.toml")
		writeFile(t, a, "version = 1\nextends = [\""+b+"\"]\n", 0o644)
		writeFile(t, b, "version = 1\nextends = [\""+a+"\"]\n", 0o644)
		r := sbxCmd{args: []string{"profile", "check", a}, env: env}.run(t)
		if r.code != 125 {
			t.Fatalf("a cycle: want 125\n%s", r)
		}
		checkOneError(t, r, a)
		if l := r.stderrLines(); len(l) > 0 {
			if !strings.Contains(l[0], b) {
				t.Errorf("error line %q does not name %s", l[0], b)
			}
			if !regexp.MustCompile(`^sbx: (` + regexp.QuoteMeta(a) + `|` + regexp.QuoteMeta(b) + `):\d+:\d+: `).MatchString(l[0]) {
				t.Errorf("error line %q is not located in one of the files", l[0])
			}
		}
	})

	t.Run("extends missing", func(t *testing.T) {
		t.Parallel()
		f := filepath.Join(t.TempDir(), "p.toml")
		writeFile(t, f, "version = 1\nextends = [\"sbx-no-such-profile\"]\n", 0o644)
		r := sbxCmd{args: []string{"profile", "check", f}, env: env}.run(t)
		checkLocated(t, r, f, []int{2}, "sbx-no-such-profile")
	})

	t.Run("file missing", func(t *testing.T) {
		t.Parallel()
		f := filepath.Join(t.TempDir(), "nonexistent.toml")
		r := sbxCmd{args: []string{"profile", "check", f}, env: env}.run(t)
		if r.code != 125 {
			t.Fatalf("check of a missing file: want 125\n%s", r)
		}
		checkOneError(t, r, f)
	})

	t.Run("bad profile at run", func(t *testing.T) {
		t.Parallel()
		f := filepath.Join(t.TempDir(), "bad.toml")
		writeFile(t, f, "version = 1\n[run]\nnetwork = \"host\"\n", 0o644)
		r := sbxCmd{args: []string{"run", "--profile", f, "--", "sh", "-c", "echo ran"}, env: env}.run(t)
		checkLocated(t, r, f, []int{3}, "network")
	})
}

// TestProfileUser: a profile is found by name in
// $XDG_CONFIG_HOME/sbx/profiles before the built-ins, or given by path;
// repeated --profile options extend one another; flags override them.
func TestProfileUser(t *testing.T) {
	requireUserns(t)
	t.Parallel()
	env, userDir := profileEnv(t, "SBX_T_DROP=drop me", "SBX_T_FROM_HOST=host")
	writeFile(t, filepath.Join(userDir, "sbxtest-a.toml"), `version = 1
description = "a"
[env]
keep = ["PATH", "SBX_T_*"]
unset = ["SBX_T_DROP"]
set = { SBX_T_WHICH = "a", SBX_T_ONLY_A = "a" }
`, 0o644)
	bPath := filepath.Join(t.TempDir(), "b.toml")
	writeFile(t, bPath, "version = 1\n[env]\nset = { SBX_T_WHICH = \"b\" }\n", 0o644)
	// Shadows the built-in of the same name.
	writeFile(t, filepath.Join(userDir, "make.toml"), "version = 1\n[env]\nset = { SBX_T_WHICH = \"user make\" }\n", 0o644)

	t.Run("by name and by path, later extends earlier", func(t *testing.T) {
		t.Parallel()
		got, r := payloadEnviron(t, sbxCmd{args: []string{"run", "--profile", "sbxtest-a", "--profile", bPath}, env: env})
		if r.code != 0 {
			t.Fatalf("want exit 0\n%s", r)
		}
		want := map[string]string{"SBX_T_WHICH": "b", "SBX_T_ONLY_A": "a", "SBX_T_FROM_HOST": "host"}
		for k, v := range want {
			if got[k] != v {
				t.Errorf("payload has %s=%q, want %q", k, got[k], v)
			}
		}
		if _, ok := got["PATH"]; !ok {
			t.Errorf("keep lists PATH, but the payload has none")
		}
		for k := range got {
			if k != "PATH" && !strings.HasPrefix(k, "SBX_T_") {
				t.Errorf("payload has %s, which env.keep does not allow", k)
			}
		}
		if _, ok := got["SBX_T_DROP"]; ok {
			t.Errorf("env.unset SBX_T_DROP: still in the payload")
		}
	})

	t.Run("user profile shadows built-in", func(t *testing.T) {
		t.Parallel()
		got, r := payloadEnviron(t, sbxCmd{args: []string{"run", "--profile", "make"}, env: env})
		if r.code != 0 || got["SBX_T_WHICH"] != "user make" {
			t.Errorf("--profile make with %s/make.toml: want the user's profile (SBX_T_WHICH=user make), got %q\n%s", userDir, got["SBX_T_WHICH"], r)
		}
	})

	t.Run("flag env over profile", func(t *testing.T) {
		t.Parallel()
		got, r := payloadEnviron(t, sbxCmd{args: []string{"run", "--profile", "sbxtest-a", "--env", "SBX_T_WHICH=flag"}, env: env})
		if r.code != 0 || got["SBX_T_WHICH"] != "flag" {
			t.Errorf("--env over the profile's env.set: got %q\n%s", got["SBX_T_WHICH"], r)
		}
	})

	t.Run("flag net over profile", func(t *testing.T) {
		t.Parallel()
		f := filepath.Join(t.TempDir(), "hostnet.toml")
		writeFile(t, f, "version = 1\n[run]\nnet = \"host\"\n", 0o644)
		host, err := os.ReadFile("/proc/net/dev")
		if err != nil {
			t.Fatal(err)
		}
		hostIfs := lines(netDevNames(string(host)))
		const script = `tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '`
		r := sbxCmd{args: shArgs(script, "--profile", f), env: env}.run(t)
		if got := lines(r.stdout); r.code != 0 || !slices.Equal(got, hostIfs) {
			t.Errorf("profile net = \"host\": interfaces %q, want the host's %q\n%s", got, hostIfs, r)
		}
		r = sbxCmd{args: shArgs(script, "--profile", f, "--net", "none"), env: env}.run(t)
		if got := lines(r.stdout); r.code != 0 || !slices.Equal(got, []string{"lo"}) {
			t.Errorf("profile net = \"host\" and --net none: interfaces %q, want only lo\n%s", got, r)
		}
	})

	t.Run("flag mount over profile mount", func(t *testing.T) {
		t.Parallel()
		d := t.TempDir()
		f := filepath.Join(t.TempDir(), "ro.toml")
		writeFile(t, f, "version = 1\n[[mount]]\nro = \""+d+"\"\n", 0o644)
		r := sbxCmd{args: append(shArgs(`echo x > "$1"/w && echo wrote`, "--profile", f), "sh", d), env: env}.run(t)
		if r.code == 0 || strings.Contains(r.stdout, "wrote") {
			t.Errorf("the profile binds %s read-only, yet the payload wrote there\n%s", d, r)
		}
		r = sbxCmd{args: append(shArgs(`echo x > "$1"/w && echo wrote`, "--profile", f, "--rw", d), "sh", d), env: env}.run(t)
		if r.code != 0 || !strings.Contains(r.stdout, "wrote") {
			t.Errorf("--rw %s over the profile's ro of the same path: want it writable\n%s", d, r)
		}
	})

	t.Run("origin in dry-run", func(t *testing.T) {
		t.Parallel()
		d := t.TempDir()
		f := filepath.Join(t.TempDir(), "origin.toml")
		writeFile(t, f, "version = 1\n[run]\nhostname = \"fromprofile\"\n\n[[mount]]\nro = \""+d+"\"\n\n[limits]\npids = 100\n", 0o644)
		r := sbxCmd{args: []string{"run", "--dry-run", "--profile", f, "--", "true"}, env: env}.run(t)
		if r.code != 0 {
			t.Fatalf("--dry-run: want exit 0\n%s", r)
		}
		var hostLine, mountLine, limitLine bool
		for _, l := range lines(r.stdout) {
			hostLine = hostLine || strings.Contains(l, "fromprofile") && strings.Contains(l, f+":3")
			mountLine = mountLine || strings.Contains(l, d) && (strings.Contains(l, f+":5") || strings.Contains(l, f+":6"))
			limitLine = limitLine || strings.Contains(l, "pids") && strings.Contains(l, f+":9")
			if strings.HasPrefix(l, "limits ") && strings.Contains(l, "flag") {
				t.Errorf("--dry-run: no limit flag was given, yet the limits line says %q", l)
			}
		}
		if !hostLine || !mountLine || !limitLine {
			t.Errorf("--dry-run: want the hostname, the mount and the limit with their origins %s:3, %[1]s:5 and %[1]s:9\n%s", f, r.stdout)
		}
		r = sbxCmd{args: []string{"run", "--dry-run", "--profile", f, "--hostname", "fromflag", "--", "true"}, env: env}.run(t)
		if !slices.ContainsFunc(lines(r.stdout), func(l string) bool { return strings.Contains(l, "fromflag") && strings.Contains(l, "--hostname") }) {
			t.Errorf("--dry-run with --hostname over the profile: want the flag as the origin\n%s", r.stdout)
		}
	})
}

// netDevNames returns the interface names of /proc/net/dev text, one per line.
func netDevNames(text string) string {
	var out []string
	for i, l := range strings.Split(text, "\n") {
		if name, _, ok := strings.Cut(l, ":"); i >= 2 && ok {
			out = append(out, strings.TrimSpace(name))
		}
	}
	return strings.Join(out, "\n")
}

// TestProfileUndefinedVariable: a variable that is not defined is an
// error naming it, never an empty string.
func TestProfileUndefinedVariable(t *testing.T) {
	t.Parallel()
	env, _ := profileEnv(t)
	for _, tc := range []struct {
		name, text, variable string
		env                  []string
	}{
		{"unknown name", "version = 1\n[[mount]]\nro = \"$SBX_T_NO_SUCH_VAR/x\"\n", "SBX_T_NO_SUCH_VAR", env},
		{"braces", "version = 1\n[env]\nset = { A = \"${SBX_T_NO_SUCH_VAR}\" }\n", "SBX_T_NO_SUCH_VAR", env},
		{"XDG_RUNTIME_DIR unset", "version = 1\n[[mount]]\nro = \"$XDG_RUNTIME_DIR/x\"\noptional = true\n", "XDG_RUNTIME_DIR",
			slices.DeleteFunc(slices.Clone(env), func(kv string) bool { return strings.HasPrefix(kv, "XDG_RUNTIME_DIR=") })},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := filepath.Join(t.TempDir(), "p.toml")
			writeFile(t, f, tc.text, 0o644)
			r := sbxCmd{args: []string{"run", "--profile", f, "--", "sh", "-c", "echo ran"}, env: tc.env}.run(t)
			if r.code != 125 || strings.Contains(r.stdout, "ran") {
				t.Fatalf("undefined $%s: want 125\n%s", tc.variable, r)
			}
			checkOneError(t, r, tc.variable)
		})
	}
}

// TestProfileBuild: `sbx run --profile build -- make` in a project
// builds, writes the project, and cannot read ~/.ssh or change .git.
func TestProfileBuild(t *testing.T) {
	requireUserns(t)
	t.Parallel()
	env, _ := profileEnv(t)

	for _, profile := range []string{"build", "make"} {
		t.Run("make under "+profile, func(t *testing.T) {
			t.Parallel()
			proj := newProject(t)
			r := sbxCmd{args: []string{"run", "--profile", profile, "--", "make"}, env: env}.in(proj).run(t)
			if r.code != 0 {
				t.Fatalf("make under --profile %s: want exit 0\n%s", profile, r)
			}
			if b, err := os.ReadFile(filepath.Join(proj, "built.txt")); err != nil || string(b) != "built by make\n" {
				t.Errorf("make's output on the host: %q, %v", b, err)
			}
		})
	}

	t.Run("go build", func(t *testing.T) {
		t.Parallel()
		goBin, err := exec.LookPath("go")
		if err != nil {
			goBin = "/usr/local/go/bin/go"
		}
		if goBin, err = filepath.EvalSymlinks(goBin); err != nil {
			t.Skipf("no go on this host: %v", err) // the make variant is the one that must run
		}
		goroot := filepath.Dir(filepath.Dir(goBin))
		proj := newProject(t)
		var flags []string
		if !strings.HasPrefix(goroot, "/usr/") {
			flags = append(flags, "--ro", goroot)
		}
		flags = append(flags,
			"--env", "PATH="+filepath.Join(goroot, "bin")+":/usr/bin:/bin",
			"--env", "GOCACHE="+filepath.Join(proj, ".cache", "go-build"),
			"--env", "GOPATH="+filepath.Join(proj, ".gopath"),
			"--env", "GOTOOLCHAIN=local", "--env", "GOFLAGS=-buildvcs=false")
		args := append(append([]string{"run", "--profile", "build"}, flags...), "--", goBin, "build", "-o", "out", ".")
		r := sbxCmd{args: args, env: env, guard: 3 * time.Minute}.in(proj).run(t)
		if r.code != 0 {
			t.Fatalf("go build under --profile build: want exit 0\n%s", r)
		}
		out, err := exec.Command(filepath.Join(proj, "out")).CombinedOutput()
		if err != nil || strings.TrimSpace(string(out)) != "hello" {
			t.Errorf("the built program on the host: %q, %v", out, err)
		}
	})

	t.Run("writes land in the project", func(t *testing.T) {
		t.Parallel()
		proj := newProject(t)
		r := sbxCmd{args: shArgs(`echo top > written && echo sub > ../from-sub && pwd`, "--profile", "build"), env: env}.in(filepath.Join(proj, "sub")).run(t)
		if r.code != 0 {
			t.Fatalf("writes into the project from its subdirectory: want exit 0\n%s", r)
		}
		if got := strings.TrimSpace(r.stdout); got != filepath.Join(proj, "sub") {
			t.Errorf("working directory inside: %q, want %s", got, filepath.Join(proj, "sub"))
		}
		for f, want := range map[string]string{filepath.Join(proj, "sub", "written"): "top\n", filepath.Join(proj, "from-sub"): "sub\n"} {
			if b, err := os.ReadFile(f); err != nil || string(b) != want {
				t.Errorf("%s on the host: %q, %v; want %q", f, b, err, want)
			}
		}
	})

	// The project granted again, by a flag or by a profile that extends
	// build, must not cover build's read-only .git.
	regrant := t.TempDir()
	writeFile(t, filepath.Join(regrant, "more.toml"), "version = 1\nextends = [\"build\"]\n[[mount]]\nrw = \"$PROJECT\"\n", 0o644)
	for name, flags := range map[string][]string{
		"":                    {"--profile", "build"},
		" with --rw .":        {"--profile", "build", "--rw", "."},
		" extended, rw again": {"--profile", filepath.Join(regrant, "more.toml")},
	} {
		t.Run("git hooks and config"+name, func(t *testing.T) {
			t.Parallel()
			proj := newProject(t)
			// Plain writes, and the detour: move .git away and put a new
			// one in its place.
			script := `echo evil > .git/hooks/pre-commit; echo '[core] fsmonitor = "echo evil"' >> .git/config;
mv .git .git-old && mkdir -p .git/hooks && cp -r .git-old/HEAD .git-old/objects .git-old/refs .git/ && echo evil > .git/hooks/pre-commit && cp .git-old/config .git/config && echo evil >> .git/config;
echo > .git/commondir; true`
			r := sbxCmd{args: shArgs(script, flags...), env: env}.in(proj).run(t)
			if r.code != 0 {
				t.Fatalf("want exit 0\n%s", r)
			}
			if _, err := os.Stat(filepath.Join(proj, ".git", "hooks", "pre-commit")); err == nil {
				t.Errorf("the build planted .git/hooks/pre-commit\n%s", r)
			}
			if b, _ := os.ReadFile(filepath.Join(proj, ".git", "config")); string(b) != gitConfig {
				t.Errorf("the build changed .git/config:\n%s\n%s", b, r)
			}
			for _, name := range []string{".git-old", ".git/commondir"} {
				if _, err := os.Stat(filepath.Join(proj, name)); err == nil {
					t.Errorf("the build made %s\n%s", name, r)
				}
			}
		})
	}

	t.Run("ssh key hidden", func(t *testing.T) {
		// Not parallel: $HOME/.ssh may be made and removed here.
		key := plantSSHKey(t)
		home := filepath.Dir(filepath.Dir(key))
		proj := newProject(t)
		script := `cat "$1" 2>/dev/null; ls -A "$2" 2>/dev/null; true`
		// --tmpfs ~/.ssh replaces build's hide of it, and must still go
		// over the --ro ~ given before it.
		for _, extra := range [][]string{nil, {"--ro", home}, {"--ro", home, "--tmpfs", filepath.Dir(key)}} {
			flags := append([]string{"--profile", "build"}, extra...)
			r := sbxCmd{args: append(shArgs(script, flags...), "sh", key, filepath.Dir(key)), env: env}.in(proj).run(t)
			if r.code != 0 {
				t.Errorf("%q with a key in %s: want exit 0\n%s", flags, filepath.Dir(key), r)
			}
			if strings.Contains(r.stdout, "s3cret") || strings.Contains(r.stdout, filepath.Base(key)) {
				t.Errorf("%q: the build sees the ssh key\n%s", flags, r)
			}
		}
	})
}

// TestProfileUntrusted: the environment is reduced to the allowlist; the
// limits are enforced or the run is refused (fail closed).
func TestProfileUntrusted(t *testing.T) {
	requireUserns(t)
	t.Parallel()
	env, _ := profileEnv(t, "FOO=bar", "LC_SBX_TEST=kept")

	t.Run("plan", func(t *testing.T) {
		t.Parallel()
		noMgr := withEnv(env, "XDG_RUNTIME_DIR=/nonexistent", "DBUS_SESSION_BUS_ADDRESS=")
		r := sbxCmd{args: []string{"run", "--profile", "untrusted", "--dry-run", "--json", "--", "true"}, env: noMgr}.run(t)
		if r.code != 0 {
			t.Fatalf("--dry-run --json: want exit 0\n%s", r)
		}
		var plan struct {
			Env     []string      `json:"env"`
			Net     string        `json:"net"`
			Timeout time.Duration `json:"timeout"`
			Limits  struct {
				MemoryMax uint64 `json:"memory_max"`
				PidsMax   uint64 `json:"pids_max"`
			} `json:"limits"`
		}
		if err := json.Unmarshal([]byte(r.stdout), &plan); err != nil {
			t.Fatalf("--dry-run --json: %v\n%s", err, r.stdout)
		}
		var names []string
		for _, kv := range plan.Env {
			k, _, _ := strings.Cut(kv, "=")
			names = append(names, k)
			if !allowlisted(k) {
				t.Errorf("the plan's environment has %s, which is not allowlisted", k)
			}
		}
		if !slices.Contains(names, "PATH") || !slices.Contains(names, "LC_SBX_TEST") {
			t.Errorf("the plan's environment lacks PATH or LC_SBX_TEST: %q", names)
		}
		if plan.Net != "none" || plan.Timeout != time.Hour || plan.Limits.MemoryMax != 1<<30 || plan.Limits.PidsMax != 512 {
			t.Errorf("plan: net %q, timeout %v, memory %d, pids %d; want none, 1h, 1G, 512", plan.Net, plan.Timeout, plan.Limits.MemoryMax, plan.Limits.PidsMax)
		}
	})

	t.Run("no user manager", func(t *testing.T) {
		t.Parallel()
		noMgr := withEnv(env, "XDG_RUNTIME_DIR=/nonexistent", "DBUS_SESSION_BUS_ADDRESS=")
		r := sbxCmd{args: []string{"run", "--profile", "untrusted", "--", "sh", "-c", "echo ran"}, env: noMgr}.run(t)
		if l := r.stderrLines(); r.code != 125 || strings.Contains(r.stdout, "ran") || len(l) == 0 || !strings.Contains(l[0], "user manager") {
			t.Errorf("--profile untrusted without a user manager: want 125 naming the missing manager\n%s", r)
		}
	})

	t.Run("with the user manager", func(t *testing.T) {
		t.Parallel()
		requireManager(t)
		got, r := payloadEnviron(t, sbxCmd{args: []string{"run", "--profile", "untrusted"}, env: env})
		if os.Getenv("SBX_TEST_VM") != "1" {
			// The host tier's manager delegates no controller.
			if r.code != 125 || !strings.Contains(r.stderr, "not delegated") || r.stdout != "" {
				t.Errorf("--profile untrusted without delegated controllers: want 125, \"not delegated\"\n%s", r)
			}
			return
		}
		if r.code != 0 {
			t.Fatalf("--profile untrusted with the controllers: want exit 0\n%s", r)
		}
		if _, ok := got["FOO"]; ok {
			t.Errorf("FOO passed into the payload")
		}
		if _, ok := got["PATH"]; !ok {
			t.Errorf("PATH is missing inside")
		}
		for k := range got {
			if !allowlisted(k) {
				t.Errorf("payload has %s, which is not allowlisted", k)
			}
		}
	})
}

// TestProfileBuildNoProject: started from $HOME or from /, where
// $PROJECT is that directory itself, the build profile must not grant
// the whole home (or host) read-write: refuse (125), or leave it unwritable.
func TestProfileBuildNoProject(t *testing.T) {
	requireUserns(t)
	t.Parallel()
	env, _ := profileEnv(t)
	home, _ := plantHomeSecret(t)
	for _, dir := range []string{home, "/"} {
		t.Run(dir, func(t *testing.T) {
			t.Parallel()
			f, err := os.CreateTemp(home, ".sbx-test-written-")
			if err != nil {
				t.Fatal(err)
			}
			f.Close()
			os.Remove(f.Name())
			t.Cleanup(func() { os.Remove(f.Name()) })
			r := sbxCmd{args: append(shArgs(`echo x > "$1" && echo wrote; true`, "--profile", "build"), "sh", f.Name()), env: env}.in(dir).run(t)
			if _, err := os.Stat(f.Name()); err == nil || strings.Contains(r.stdout, "wrote") {
				t.Errorf("--profile build started in %s wrote %s on the host: $PROJECT is %s\n%s", dir, f.Name(), dir, r)
			}
			if r.code != 0 && r.code != 125 {
				t.Errorf("want 0 or 125\n%s", r)
			}
		})
	}
}

// TestProfileOffFlags tries to keep a profile's true against the command
// line's --flag=false: the sandbox must run as the command line says.
func TestProfileOffFlags(t *testing.T) {
	requireUserns(t)
	t.Parallel()
	env, userDir := profileEnv(t)
	writeFile(t, filepath.Join(userDir, "sbxtest-on.toml"), "version = 1\n[run]\nroot = true\n[env]\nclear = true\n", 0o644)
	r := sbxCmd{args: []string{"run", "--profile", "sbxtest-on", "--", "sh", "-c", "id -u; echo \"PATH=$PATH\""}, env: env}.run(t)
	if r.code != 0 || !strings.HasPrefix(r.stdout, "0\n") {
		t.Fatalf("the profile's root = true: want uid 0\n%s", r)
	}
	r = sbxCmd{args: []string{"run", "--profile", "sbxtest-on", "--root=false", "--clearenv=false", "--", "sh", "-c", "id -u; echo \"PATH=$PATH\""}, env: env}.run(t)
	if r.code != 0 || !strings.HasPrefix(r.stdout, strconv.Itoa(os.Getuid())+"\n") {
		t.Errorf("--root=false after the profile's root = true: want the caller's uid\n%s", r)
	}
	if !strings.Contains(r.stdout, "PATH="+os.Getenv("PATH")+"\n") {
		t.Errorf("--clearenv=false after the profile's env.clear = true: want the caller's PATH\n%s", r)
	}
}

// showValues is what sbx profile show prints less its comments: the
// values, to compare a profile with what its output reads back as.
func showValues(out string) string {
	var b strings.Builder
	for _, l := range lines(out) {
		if i := strings.Index(l, "  # "); i >= 0 {
			l = l[:i]
		}
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}

// TestProfileShowWhole: sbx profile show prints every section that was
// set, [security] too, each value with its origin; and its output, read
// back as a profile, shows the same values ("$" in a literal value is
// "$$").
func TestProfileShowWhole(t *testing.T) {
	t.Parallel()
	env, _ := profileEnv(t)
	dir := t.TempDir()
	f := filepath.Join(dir, "s.toml")
	writeFile(t, f, `version = 1
[security]
landlock = false
strict = true
seccomp = "unconfined"
log_denied = false
[env]
set = { C = "$$HOME", D = "$HOME" }
unset = ["E"]
[run]
root = false
`, 0o644)
	r := sbxCmd{args: []string{"profile", "show", f}, env: env}.run(t)
	if r.code != 0 {
		t.Fatalf("sbx profile show: want exit 0\n%s", r)
	}
	for _, want := range []string{
		"[security]\n",
		`seccomp = "unconfined"  # ` + f + ":5",
		"landlock = false  # " + f + ":3",
		"strict = true  # " + f + ":4",
		"log_denied = false  # " + f + ":6",
		`"C" = "$$HOME"  # ` + f + ":8",
		"root = false  # " + f + ":11",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("show lacks %q\n%s", want, r.stdout)
		}
	}
	back := filepath.Join(dir, "back.toml")
	writeFile(t, back, r.stdout, 0o644)
	r2 := sbxCmd{args: []string{"profile", "show", back}, env: env}.run(t)
	if r2.code != 0 || showValues(r2.stdout) != showValues(r.stdout) {
		t.Errorf("show of show's output differs:\n%s\n--- from:\n%s", r2, r.stdout)
	}
}

// TestProfileCheckValues: values that the matching flag refuses are
// refused by sbx profile check, located at their key, not first at a run
// with a flag's message; and a run says the same.
func TestProfileCheckValues(t *testing.T) {
	t.Parallel()
	env, _ := profileEnv(t)
	for _, tc := range []struct {
		name, text string
		line       int
		words      []string
	}{
		{"relative chdir", "version = 1\n[run]\nchdir = \"relative/dir\"\n", 3, []string{"run.chdir", "relative/dir"}},
		{"hostname a/b", "version = 1\n[run]\nhostname = \"a/b\"\n", 3, []string{"run.hostname", "a/b"}},
		{"hostname of 100 characters", "version = 1\n[run]\nhostname = \"" + strings.Repeat("h", 100) + "\"\n", 3, []string{"run.hostname"}},
		{"hostname with a newline", "version = 1\n[run]\nhostname = \"a\\nb\"\n", 3, []string{"run.hostname"}},
		{"swap without memory", "version = 1\n[limits]\nmemory_swap = \"1G\"\n", 3, []string{"limits.memory_swap"}},
		{"NUL in env.set", "version = 1\n[env]\nset = { A = \"a\\u0000b\" }\n", 3, []string{"env.set.A", "NUL"}},
		{"missing seccomp profile", "version = 1\n[security]\nseccomp = \"/nonexistent/sbx-test.json\"\n", 3, []string{"security.seccomp", "/nonexistent/sbx-test.json"}},
		{"a variable in env.keep", "version = 1\n[env]\nkeep = [\"$NOPE\"]\n", 3, []string{"env.keep", "$NOPE"}},
		{"a bad env.keep pattern", "version = 1\n[env]\nkeep = [\"LC_*_X\"]\n", 3, []string{"env.keep", "LC_*_X"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := filepath.Join(t.TempDir(), "bad.toml")
			writeFile(t, f, tc.text, 0o644)
			checkLocated(t, sbxCmd{args: []string{"profile", "check", f}, env: env}.run(t), f, []int{tc.line}, tc.words...)
			r := sbxCmd{args: []string{"run", "--dry-run", "--profile", f, "--", "true"}, env: env}.run(t)
			checkLocated(t, r, f, []int{tc.line}, tc.words...)
		})
	}
	// A seccomp profile that is there but no profile is located too.
	bad := filepath.Join(t.TempDir(), "seccomp.json")
	writeFile(t, bad, "{not json", 0o644)
	f := filepath.Join(t.TempDir(), "p.toml")
	writeFile(t, f, "version = 1\n\n[security]\nseccomp = \""+bad+"\"\n", 0o644)
	checkLocated(t, sbxCmd{args: []string{"profile", "check", f}, env: env}.run(t), f, []int{4}, "security.seccomp")
	// The memory may come from the command line.
	swap := filepath.Join(t.TempDir(), "swap.toml")
	writeFile(t, swap, "version = 1\n[limits]\nmemory_swap = \"1G\"\n", 0o644)
	if r := (sbxCmd{args: []string{"run", "--dry-run", "--memory", "1G", "--profile", swap, "--", "true"}, env: env}).run(t); r.code != 0 {
		t.Errorf("memory_swap with --memory: want exit 0\n%s", r)
	}
}

// TestProfileExtendsVariables: extends entries may use variables, as
// every string value may.
func TestProfileExtendsVariables(t *testing.T) {
	t.Parallel()
	home := t.TempDir()
	env, _ := profileEnv(t, "HOME="+home)
	if err := os.MkdirAll(filepath.Join(home, "d"), 0o755); err != nil {
		t.Fatal(err)
	}
	vars := filepath.Join(home, "d", "vars.toml")
	writeFile(t, vars, "version = 1\ndescription = \"reached\"\n[run]\nhostname = \"from-vars\"\n", 0o644)
	f := filepath.Join(t.TempDir(), "e.toml")
	writeFile(t, f, "version = 1\nextends = [\"$HOME/d/vars.toml\"]\n", 0o644)
	r := sbxCmd{args: []string{"profile", "show", f}, env: env}.run(t)
	if r.code != 0 || !strings.Contains(r.stdout, `hostname = "from-vars"  # `+vars+":4") {
		t.Errorf("show of a profile extending $HOME/d/vars.toml: want its hostname from %s\n%s", vars, r)
	}
	// Followed by check too: an error there is found.
	writeFile(t, vars, "version = 1\n[run]\nhostname = \"a/b\"\n", 0o644)
	checkLocated(t, sbxCmd{args: []string{"profile", "check", f}, env: env}.run(t), vars, []int{3}, "run.hostname")
}

// TestProfileCheckNoProject: check and show need no variable defined;
// where $PROJECT is undefined (here: from /), check passes and show
// prints the value as written with a note. An unknown variable is still
// an error, and a run still refuses an undefined one.
func TestProfileCheckNoProject(t *testing.T) {
	t.Parallel()
	env, _ := profileEnv(t)
	dir := t.TempDir()
	f := filepath.Join(dir, "p.toml")
	writeFile(t, f, "version = 1\n[run]\nchdir = \"$PROJECT\"\n[[mount]]\nrw = \"$PROJECT\"\n", 0o644)
	if r := (sbxCmd{args: []string{"profile", "check", f}, env: env}).in("/").run(t); r.code != 0 || r.stderr != "" {
		t.Errorf("check of a profile using $PROJECT, from /: want exit 0, nothing on stderr\n%s", r)
	}
	r := sbxCmd{args: []string{"profile", "show", "build"}, env: env}.in("/").run(t)
	if r.code != 0 || !strings.Contains(r.stdout, "\nrw = \"$PROJECT\"\n") || !strings.Contains(r.stdout, "not expanded: $PROJECT is undefined here") {
		t.Errorf("show build from /: want exit 0 and $PROJECT as written, with a note\n%s", r)
	}
	// Its output is still a profile.
	out := filepath.Join(dir, "build.toml")
	writeFile(t, out, r.stdout, 0o644)
	if c := (sbxCmd{args: []string{"profile", "check", out}, env: env}).in("/").run(t); c.code != 0 {
		t.Errorf("the output of show build from / is not a valid profile\n%s", c)
	}
	bad := filepath.Join(dir, "bad.toml")
	writeFile(t, bad, "version = 1\n[run]\nchdir = \"$SBX_T_NOPE\"\n", 0o644)
	checkLocated(t, sbxCmd{args: []string{"profile", "check", bad}, env: env}.in("/").run(t), bad, []int{3}, "$SBX_T_NOPE")
	run := sbxCmd{args: []string{"run", "--dry-run", "--profile", f, "--", "true"}, env: env}.in("/").run(t)
	checkLocated(t, run, f, []int{3}, "$PROJECT")
}
