package policy_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"sbx/policy"
)

// decodeAndApply is what `sbx profile check` does with one file: decode
// it, then fold it (values such as sizes and durations are checked
// there, once variables are expanded).
func decodeAndApply(source, text string) error {
	p, err := policy.DecodeProfile(source, []byte(text))
	if err != nil {
		if p != nil {
			return fmt.Errorf("DecodeProfile returned a profile with its error %v", err)
		}
		return err
	}
	_, _, err = policy.ApplyProfiles([]*policy.Profile{p}, testVars(), policy.Flags{})
	return err
}

func TestDecodeProfileErrors(t *testing.T) {
	const v1 = "version = 1\n"
	tests := []struct {
		name string
		text string
		at   string // "LINE:COL", or "" for an error without a place
		msg  string // a fragment of the message after "mine.toml:LINE:COL: "
	}{
		// Keys sbx does not know.
		{"unknown top-level key", v1 + "network = \"none\"\n", "2:1", `unknown key "network"`},
		{"unknown key in [run]", v1 + "[run]\nnet = \"none\"\nnetwork = \"host\"\n", "4:1", `unknown key "run.network"`},
		{"unknown key in [env]", v1 + "[env]\nallow = [\"PATH\"]\n", "3:1", `unknown key "env.allow"`},
		{"unknown key in [limits]", v1 + "[limits]\nswap = \"1G\"\n", "3:1", `unknown key "limits.swap"`},
		{"unknown key in the second [[mount]]", v1 + "[[mount]]\nro = \"/a\"\n\n[[mount]]\ntmpfs = \"/b\"\nsize = \"1G\"\n", "7:1", `unknown key "mount.size"`},
		{"unknown table", v1 + "[sandbox]\nseccomp = true\n", "2:2", `unknown key "sandbox"`},
		{"seccomp not a string", v1 + "[security]\nseccomp = true\n", "3:11", "cannot decode TOML boolean"},
		{"seccomp relative path", v1 + "[security]\nseccomp = \"my.json\"\n", "3:1", `want "default", "unconfined" or the absolute path`},
		{"unknown security key", v1 + "[security]\nseccom = \"default\"\n", "3:1", `unknown key "security.seccom"`},
		{"unknown dotted key", v1 + "run.network = \"host\"\n", "2:1", `unknown key "run.network"`},
		{"unknown key in an inline table", v1 + "run = { net = \"none\", ip = \"10.0.0.2\" }\n", "2:23", `unknown key "ip"`},

		// [[mount]]: exactly one kind, a path.
		{"mount with ro and rw", v1 + "\n[[mount]]\nro = \"/a\"\nrw = \"/b\"\n", "3:3", "a [[mount]] takes exactly one of ro, rw, tmpfs, hide"},
		{"mount with tmpfs and hide", v1 + "[[mount]]\ntmpfs = \"/a\"\nhide = \"/a\"\n", "2:3", "exactly one of"},
		{"mount with no kind", v1 + "[[mount]]\noptional = true\n", "2:3", "exactly one of"},
		{"third mount with two kinds", v1 + "[[mount]]\nro = \"/a\"\n[[mount]]\nrw = \"/b\"\n[[mount]]\nro = \"/c\"\nhide = \"/c\"\n", "6:3", "exactly one of"},
		{"inline mount with two kinds", v1 + "mount = [\n  { ro = \"/a\" },\n  { ro = \"/b\", rw = \"/b\" },\n]\n", "4:3", "exactly one of"},
		{"empty ro", v1 + "[[mount]]\nro = \"\"\n", "2:3", "empty path"},
		{"empty hide", v1 + "[[mount]]\nhide = \"\"\noptional = true\n", "2:3", "empty path"},
		{"mount is not a table", v1 + "mount = \"/a\"\n", "2:9", "mount: cannot decode TOML string"},

		// Wrong types: the key, and where its value stands.
		{"net = 3", v1 + "[run]\nnet = 3\n", "3:7", "run.net: cannot decode TOML integer"},
		{`root = "yes"`, v1 + "[run]\nroot = \"yes\"\n", "3:8", "run.root: cannot decode TOML string"},
		{"timeout as a number", v1 + "[run]\ntimeout = 60\n", "3:11", "run.timeout: cannot decode TOML integer"},
		{"optional as a string", v1 + "[[mount]]\nro = \"/a\"\noptional = \"yes\"\n", "4:12", "mount.optional: cannot decode TOML string"},
		{"extends as a string", v1 + "extends = \"build\"\n", "2:11", "extends: cannot decode TOML string"},
		{"keep as a string", v1 + "[env]\nkeep = \"PATH\"\n", "3:8", "env.keep: cannot decode TOML string"},
		{"set value as a number", v1 + "[env]\nset = { A = 1 }\n", "3:13", "env.set: cannot decode TOML integer"},
		{"pids as a string", v1 + "[limits]\npids = \"512\"\n", "3:8", "limits.pids: cannot decode TOML string"},
		{"cpus as a bool", v1 + "[limits]\ncpus = true\n", "3:1", "cpus: want a number, got bool"},
		{"cpus as an array", v1 + "[limits]\ncpus = [1]\n", "3:1", "cpus: want a number, got []interface {}"},

		// version.
		{"version missing", "description = \"x\"\n\n[run]\nnet = \"none\"\n", "1:1", "no version key (want version = 1)"},
		{"empty file", "", "1:1", "no version key"},
		{"version 2", "# a comment\n\nversion = 2\n", "3:1", "version 2: this sbx reads version 1"},
		{"version 0", "version = 0\n", "1:1", "version 0: this sbx reads version 1"},
		{"version as a string", "version = \"1\"\n", "1:11", "version: cannot decode TOML string"},
		{"version twice", v1 + "version = 1\n", "2:1", "key version is already defined"},

		// Values checked after decoding.
		{"extends an empty name", v1 + "extends = [\"build\", \"\"]\n", "2:1", "empty profile name"},
		{"pids 0", v1 + "[limits]\npids = 0\n", "3:1", "limits.pids = 0: want a positive number"},
		{"pids 8", v1 + "[limits]\npids = 8\n", "3:1", "8: at least 16"},
		{"cpu_weight 20000", v1 + "[limits]\ncpu_weight = 20000\n", "3:1", "limits.cpu_weight = 20000: want 1 to 10000"},
		{"io_weight 10001", v1 + "[limits]\nio_weight = 10001\n", "3:1", "limits.io_weight = 10001: want 1 to 10000"},
		{"cpu_weight negative", v1 + "[limits]\ncpu_weight = -1\n", "3:1", "limits.cpu_weight = -1: want a positive number"},
		{"memory lots", v1 + "[limits]\nmemory = \"lots\"\n", "3:1", `"lots" is not a size`},
		{"memory below 1M", v1 + "[limits]\nmemory = \"64\"\n", "3:1", `"64": below 1M`},
		{"memory negative", v1 + "[limits]\nmemory = \"-1G\"\n", "3:1", "is not a size"},
		{"memory_swap bad", v1 + "[limits]\nmemory = \"1G\"\nmemory_swap = \"none\"\n", "4:1", `"none" is not a size`},
		{"cpus zero", v1 + "[limits]\ncpus = 0\n", "3:1", "want a positive number of CPUs"},
		{"cpus negative", v1 + "[limits]\ncpus = -1.5\n", "3:1", "want a positive number of CPUs"},
		{"cpus a word", v1 + "[limits]\ncpus = \"two\"\n", "3:1", `"two": want a positive number of CPUs`},
		{"timeout soon", v1 + "[run]\ntimeout = \"soon\"\n", "3:1", `timeout "soon": want a positive duration`},
		{"timeout negative", v1 + "[run]\ntimeout = \"-5m\"\n", "3:1", `timeout "-5m": want a positive duration`},
		{"timeout zero", v1 + "[run]\ntimeout = \"0s\"\n", "3:1", "want a positive duration"},
		{"timeout without unit", v1 + "[run]\ntimeout = \"90\"\n", "3:1", "want a positive duration"},
		{"net bridge", v1 + "[run]\nnet = \"bridge\"\n", "3:1", `run.net "bridge": want none or host`},
		{"bad env name", v1 + "[env]\nset = { \"A=B\" = \"1\" }\n", "3:9", `env.set: bad variable name "A=B"`},
		{"bad unset name", v1 + "[env]\nunset = [\"A=B\"]\n", "3:1", `env.unset: bad variable name "A=B"`},
		{"relative tmpfs", v1 + "[[mount]]\ntmpfs = \"scratch\"\n", "2:3", `DEST "scratch" is not an absolute path`},
		{"hide with ..", v1 + "[[mount]]\nhide = \"/a/../etc\"\n", "2:3", `has a ".." component`},
		{"undefined variable", v1 + "\n[[mount]]\nro = \"$NOPE/x\"\n", "3:3", "undefined variable $NOPE"},
		{"undefined variable in chdir", v1 + "[run]\nchdir = \"${WORKSPACE}\"\n", "3:1", "run.chdir: undefined variable $WORKSPACE"},
		{"undefined variable in env.set", v1 + "[env.set]\nCACHE = \"$CACHE/x\"\n", "3:1", "env.set.CACHE: undefined variable $CACHE"},

		// Syntax.
		{"unclosed table header", v1 + "[run\nnet = \"none\"\n", "2:5", "expected ']' to close table name"},
		{"unterminated string", v1 + "description = \"abc\n", "2:19", "basic strings cannot have new lines"},
		{"missing value", v1 + "[run]\nnet =\n", "3:6", ""},
		{"bare word", v1 + "[run]\nnet = none\n", "3:7", ""},
		{"table twice", v1 + "[run]\nnet = \"none\"\n[run]\nroot = true\n", "4:2", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := decodeAndApply("mine.toml", tt.text)
			if err == nil {
				t.Fatalf("accepted:\n%s", tt.text)
			}
			var pe *policy.ProfileError
			if !errors.As(err, &pe) {
				t.Fatalf("error %q (%T) is not a *ProfileError", err, err)
			}
			if !errors.Is(err, policy.ErrUsage) {
				t.Errorf("error %q does not match ErrUsage", err)
			}
			prefix := "mine.toml: "
			if tt.at != "" {
				prefix = "mine.toml:" + tt.at + ": "
			}
			if pe.Source != "mine.toml" || !strings.HasPrefix(err.Error(), prefix) || !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("error %q\nwant %q followed by a message with %q", err, prefix, tt.msg)
			}
			if strings.Contains(strings.TrimPrefix(err.Error(), prefix), "\n") {
				t.Errorf("error %q spans lines", err)
			}
		})
	}
}

func TestDecodeProfileGood(t *testing.T) {
	tests := []struct {
		name string
		text string
		want func(t *testing.T, p *policy.Profile)
	}{
		{"minimal", "version = 1", func(t *testing.T, p *policy.Profile) {
			if p.Version != 1 || p.Description != "" || p.Extends != nil || p.Mount != nil || p.Run.Net != nil || p.Limits.Cpus != nil {
				t.Errorf("profile %+v, want only the version", p)
			}
		}},
		{"comments everywhere", `# leading comment
version = 1 # trailing
# between
extends = [ # open
  "a", # one
  # alone
  "b",
] # close
[run] # a table
net = "host" # net
[[mount]] # a mount
ro = "/x" # ro
# the end`, func(t *testing.T, p *policy.Profile) {
			if !slices.Equal(p.Extends, []string{"a", "b"}) || p.Run.Net == nil || *p.Run.Net != "host" || len(p.Mount) != 1 || *p.Mount[0].Ro != "/x" {
				t.Errorf("profile %+v", p)
			}
		}},
		{"inline tables", `version = 1
run = { net = "host", hostname = "box", root = true, timeout = "5m" }
env = { clear = true, keep = ["PATH", "LC_*"], set = { A = "1", B = "two words" }, unset = ["C"] }
limits = { memory = "512M", cpus = 1.5, pids = 100 }
mount = [
  { ro = "/a" },
  { hide = "/b", optional = true },
]`, func(t *testing.T, p *policy.Profile) {
			r := p.Run
			if *r.Net != "host" || *r.Hostname != "box" || !*r.Root || *r.Timeout != "5m" || r.Chdir != nil || r.Cgroup != nil {
				t.Errorf("run %+v", r)
			}
			e := p.Env
			if !*e.Clear || !slices.Equal(e.Keep, []string{"PATH", "LC_*"}) || e.Set["A"] != "1" || e.Set["B"] != "two words" || len(e.Set) != 2 || !slices.Equal(e.Unset, []string{"C"}) {
				t.Errorf("env %+v", e)
			}
			if *p.Limits.Memory != "512M" || p.Limits.Cpus != 1.5 || *p.Limits.Pids != 100 {
				t.Errorf("limits %+v", p.Limits)
			}
			if len(p.Mount) != 2 || p.Mount[0].Ro == nil || *p.Mount[0].Ro != "/a" || p.Mount[1].Hide == nil || *p.Mount[1].Hide != "/b" || !p.Mount[1].Optional || p.Mount[0].Optional {
				t.Errorf("mounts %d, want ro /a, then hide /b optional", len(p.Mount))
			}
		}},
		{"dotted keys", `version = 1
run.net = "host"
limits.memory = "1G"
limits.cpus = "0.5"
[env]
set.GOFLAGS = "-mod=mod"
set.GOTOOLCHAIN = "local"`, func(t *testing.T, p *policy.Profile) {
			if *p.Run.Net != "host" || *p.Limits.Memory != "1G" || p.Limits.Cpus != "0.5" || len(p.Env.Set) != 2 || p.Env.Set["GOFLAGS"] != "-mod=mod" {
				t.Errorf("profile %+v", p)
			}
		}},
		{"sub-table header", "version = 1\n[env.set]\nA = \"1\"\n", func(t *testing.T, p *policy.Profile) {
			if p.Env.Set["A"] != "1" {
				t.Errorf("env %+v", p.Env)
			}
		}},
		{"literal and multi-line strings", "version = 1\ndescription = '''\none'''\n[[mount]]\nro = '/x\\y'\n", func(t *testing.T, p *policy.Profile) {
			if p.Description != "one" || *p.Mount[0].Ro != `/x\y` {
				t.Errorf("profile %+v", p)
			}
		}},
		{"cpus forms", "version = 1\n[limits]\ncpus = 2\n", func(t *testing.T, p *policy.Profile) {
			if p.Limits.Cpus != int64(2) {
				t.Errorf("cpus %#v", p.Limits.Cpus)
			}
		}},
		{"CRLF line ends", "version = 1\r\n[run]\r\nnet = \"none\"\r\n", func(t *testing.T, p *policy.Profile) {
			if *p.Run.Net != "none" {
				t.Errorf("run %+v", p.Run)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := policy.DecodeProfile("good.toml", []byte(tt.text))
			if err != nil {
				t.Fatalf("DecodeProfile: %v", err)
			}
			if p.Source != "good.toml" {
				t.Errorf("Source = %q", p.Source)
			}
			tt.want(t, p)
			if _, _, err := policy.ApplyProfiles([]*policy.Profile{p}, testVars(), policy.Flags{}); err != nil {
				t.Errorf("ApplyProfiles: %v", err)
			}
		})
	}
}

// Origins name the line of each value, in whatever form the file
// writes it: a table, a dotted key, an inline table, an array of inline
// tables.
func TestProfileOriginLines(t *testing.T) {
	text := `version = 1
run = { net = "host",
  hostname = "box" }
limits.memory = "1G"
env = { set = { A = "1" } }
mount = [
  { ro = "/a" },
  { tmpfs = "/b" },
  { hide = "/c" }]
`
	p, err := policy.DecodeProfile("o.toml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	f, o, err := policy.ApplyProfiles([]*policy.Profile{p}, testVars(), policy.Flags{})
	if err != nil {
		t.Fatal(err)
	}
	for key, want := range map[string]string{
		"net": "o.toml:2", "hostname": "o.toml:3", "limits.memory": "o.toml:4", "env.set.A": "o.toml:5",
	} {
		if o[key] != want {
			t.Errorf("origin of %s = %q, want %q", key, o[key], want)
		}
	}
	var got []string
	for _, m := range f.FS {
		got = append(got, m.Origin)
	}
	if want := []string{"profile o.toml:7", "profile o.toml:8", "profile o.toml:9"}; !slices.Equal(got, want) {
		t.Errorf("mount origins %q, want %q", got, want)
	}
}

// The built-in profiles decode, say what they are, and extend only
// built-ins.
func TestBuiltinsDecode(t *testing.T) {
	names := policy.BuiltinNames()
	for _, want := range []string{"build", "build-net", "cargo", "default", "go", "make", "npm", "pip", "untrusted"} {
		if !slices.Contains(names, want) {
			t.Errorf("BuiltinNames() = %q, lacks %q", names, want)
		}
	}
	for _, name := range names {
		text, ok := policy.Builtin(name)
		if !ok {
			t.Fatalf("Builtin(%q) not found", name)
		}
		p, err := policy.DecodeProfile("builtin:"+name+".toml", text)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if p.Description == "" || strings.Contains(p.Description, "\n") {
			t.Errorf("%s: description %q, want one line", name, p.Description)
		}
		for _, e := range p.Extends {
			if !slices.Contains(names, e) {
				t.Errorf("%s extends %q, which is not built in", name, e)
			}
		}
	}
	if _, ok := policy.Builtin("nope"); ok {
		t.Errorf("Builtin(nope) found")
	}
}

// FuzzDecodeProfile: the decoder never panics; what it accepts has
// version 1 and mounts of exactly one kind with a path; what it refuses
// is a *ProfileError for the file, placed inside it. An accepted profile
// folds into flags without a panic, and its errors are located too.
func FuzzDecodeProfile(f *testing.F) {
	for _, name := range policy.BuiltinNames() {
		b, _ := policy.Builtin(name)
		f.Add(b)
	}
	for _, s := range []string{
		"version = 1\n[[mount]]\nro = \"/a\"\nrw = \"/b\"\n",
		"version = 1\nmount = [{ ro = \"/a\" }, { hide = \"/b\", optional = true }]\n",
		"version = 1\nrun = { net = \"host\", timeout = \"1h\" }\nlimits = { cpus = \"1.5\", memory = \"1G\", pids = 64 }\n",
		"version = 1\n[env]\nset.A = \"$HOME\"\nunset = [\"B\"]\nkeep = [\"LC_*\"]\n",
		"version = 1\nextends = [\"a\", \"../b.toml\"]\n",
		"version = 2\n",
		"version = 1\n[limits]\ncpus = true\n",
		"version = 1\n[run\n",
		"",
	} {
		f.Add([]byte(s))
	}
	vars := testVars()
	f.Fuzz(func(t *testing.T, data []byte) {
		lines := 1 + strings.Count(string(data), "\n")
		located := func(err error) {
			var pe *policy.ProfileError
			if !errors.As(err, &pe) {
				t.Fatalf("error %q (%T) is not a *ProfileError", err, err)
			}
			if pe.Source != "fuzz.toml" || pe.Line < 0 || pe.Line > lines || pe.Col < 0 || pe.Line == 0 && pe.Col != 0 {
				t.Fatalf("error %q placed at %d:%d in %d lines", err, pe.Line, pe.Col, lines)
			}
		}
		p, err := policy.DecodeProfile("fuzz.toml", data)
		if err != nil {
			if p != nil {
				t.Fatalf("a profile with the error %v", err)
			}
			located(err)
			return
		}
		if p.Version != policy.ProfileVersion {
			t.Fatalf("accepted version %d", p.Version)
		}
		for i, m := range p.Mount {
			n := 0
			for _, v := range []*string{m.Ro, m.Rw, m.Tmpfs, m.Hide} {
				if v != nil {
					n++
					if *v == "" {
						t.Fatalf("mount %d: accepted an empty path", i)
					}
				}
			}
			if n != 1 {
				t.Fatalf("mount %d has %d kinds: %+v", i, n, m)
			}
		}
		for _, e := range p.Extends {
			if e == "" {
				t.Fatalf("accepted an empty extends entry")
			}
		}
		switch p.Limits.Cpus.(type) {
		case nil, float64, int64, string:
		default:
			t.Fatalf("accepted cpus %#v", p.Limits.Cpus)
		}
		fl, o, err := policy.ApplyProfiles([]*policy.Profile{p}, vars, policy.Flags{})
		if err != nil {
			located(err)
			return
		}
		if len(fl.FS) > len(p.Mount) {
			t.Fatalf("%d mounts from %d entries", len(fl.FS), len(p.Mount))
		}
		if fl.Timeout < 0 || fl.Timeout == 0 && o["timeout"] != "" {
			t.Fatalf("timeout %v from %q", fl.Timeout, o["timeout"])
		}
		// What sbx profile show prints of it reads back the same.
		if len(p.Extends) > 0 {
			return
		}
		s, err := policy.ShowChain([]string{"fuzz.toml"}, vars, func(string, string) (string, []byte, error) { return "fuzz.toml", data, nil })
		if err != nil {
			t.Fatalf("ShowChain of what ApplyProfiles took: %v", err)
		}
		compareFolded(t, roundTrip(t, s.Render(), vars), fl)
	})
}
