package policy_test

import (
	"reflect"
	"strings"
	"testing"

	"sbx/policy"
)

// sbx profile show and check need no variable defined: a value that
// uses one undefined here is kept as written, and an extends entry that
// does is not followed, with a note; an unknown variable still fails.
func TestShowChainUndefined(t *testing.T) {
	pf := &files{text: map[string]string{
		"/p/b.toml": `version = 1
extends = ["$PROJECT/.sbx/extra.toml", "/p/c.toml"]
[run]
chdir = "$PROJECT/sub"
[[mount]]
rw = "$PROJECT"
[[mount]]
tmpfs = "$PROJECT/tmp"
[env]
set = { P = "$PROJECT", H = "$HOME" }
`,
		"/p/c.toml": "version = 1\n[[mount]]\nro = \"$HOME/x\"\n",
	}}
	vars := testVars()
	delete(vars, "PROJECT")
	vars["!PROJECT"] = "no project here"
	if _, err := policy.LoadChain([]string{"/p/b.toml"}, vars, pf.load); err == nil {
		t.Fatalf("LoadChain followed an extends entry with an undefined variable")
	}
	s, err := policy.ShowChain([]string{"/p/b.toml"}, vars, pf.load)
	if err != nil {
		t.Fatalf("ShowChain: %v", err)
	}
	if len(s.Notes) != 1 || !strings.HasPrefix(s.Notes[0], "/p/b.toml:2:1: ") || !strings.Contains(s.Notes[0], "$PROJECT is undefined here: no project here") {
		t.Errorf("notes %q", s.Notes)
	}
	out := s.Render()
	for _, want := range []string{
		`chdir = "$PROJECT/sub"  # /p/b.toml:4 (not expanded: $PROJECT is undefined here: no project here)`,
		"# profile /p/b.toml:5 (not expanded",
		"\nrw = \"$PROJECT\"\n",
		"\ntmpfs = \"$PROJECT/tmp\"\n",
		`"P" = "$PROJECT"  # /p/b.toml:10 (not expanded`,
		`"H" = "/home/alice"  # /p/b.toml:10` + "\n",
		"\nro = \"/home/alice/x\"\n",
		"# note: /p/b.toml:2:1: extends \"$PROJECT/.sbx/extra.toml\" not followed",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("show lacks %q\n%s", want, out)
		}
	}
	// What it shows reads back as a profile, with the same values where
	// the variable is defined.
	back := roundTrip(t, out, testVars())
	want, _, err := policy.ApplyProfiles(mustChain(t, &files{text: map[string]string{"/p/b.toml": strings.Replace(pf.text["/p/b.toml"], `"$PROJECT/.sbx/extra.toml", `, "", 1), "/p/c.toml": pf.text["/p/c.toml"]}}, "/p/b.toml"), testVars(), policy.Flags{})
	if err != nil {
		t.Fatal(err)
	}
	compareFolded(t, back, want)
}

// Two mounts on one line share their origin: the one kept unexpanded is
// still marked, and shown as written (not as a literal "$$PROJECT").
func TestShowUnexpandedOnOneLine(t *testing.T) {
	pf := &files{text: map[string]string{
		"/p/one.toml": "version = 1\nmount = [ { rw = \"$PROJECT\", optional = true }, { ro = \"/usr/share\" } ]\n",
	}}
	vars := testVars()
	delete(vars, "PROJECT")
	vars["!PROJECT"] = "no project here"
	s, err := policy.ShowChain([]string{"/p/one.toml"}, vars, pf.load)
	if err != nil {
		t.Fatal(err)
	}
	out := s.Render()
	if !strings.Contains(out, "(not expanded: $PROJECT is undefined here") || !strings.Contains(out, "\nrw = \"$PROJECT\"\n") || strings.Contains(out, "$$PROJECT") {
		t.Errorf("show of two mounts on one line:\n%s", out)
	}
	back := roundTrip(t, out, testVars())
	want, _, err := policy.ApplyProfiles(mustChain(t, pf, "/p/one.toml"), testVars(), policy.Flags{})
	if err != nil {
		t.Fatal(err)
	}
	compareFolded(t, back, want)
}

// roundTrip reads the output of Render back as one profile and folds it.
func roundTrip(t *testing.T, text string, vars policy.Vars) policy.Flags {
	t.Helper()
	p, err := policy.DecodeProfile("shown.toml", []byte(text))
	if err != nil {
		t.Fatalf("the output of show is not a profile: %v\n%s", err, text)
	}
	f, _, err := policy.ApplyProfiles([]*policy.Profile{p}, vars, policy.Flags{})
	if err != nil {
		t.Fatalf("the output of show does not fold: %v\n%s", err, text)
	}
	return f
}

func compareFolded(t *testing.T, got, want policy.Flags) {
	t.Helper()
	for i := range got.FS {
		got.FS[i].Origin = ""
	}
	for i := range want.FS {
		want.FS[i].Origin = ""
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("read back:\n%+v\nwant:\n%+v", got, want)
	}
}

// What sbx profile show prints is a profile that folds to the same
// values: every section ([security] too), "$" in a literal value, bind
// destinations, optional mounts, booleans set false.
func TestShowRoundTrip(t *testing.T) {
	pf := &files{text: map[string]string{
		"base.toml": `version = 1
[run]
root = false
cgroup = true
[[mount]]
ro = "/data"
[env]
unset = ["B", "C"]
[limits]
memory = "1G"
`,
		"top.toml": `version = 1
description = "every section"
extends = ["base"]
[run]
net = "host"
hostname = "box"
chdir = "$HOME/w"
timeout = "90m"
[[mount]]
rw = "$HOME/src:/src"
optional = true
[[mount]]
tmpfs = "/scratch"
[[mount]]
hide = "$HOME/.ssh"
optional = true
[env]
clear = true
keep = ["PATH", "LC_*"]
set = { C = "$$HOME", Q = "a \"quoted\" \\ value\twith\u0001control", D = "$HOME" }
unset = ["E"]
[limits]
memory_swap = "512M"
cpus = 1.5
pids = 64
cpu_weight = 50
io_weight = 200
[security]
landlock = false
strict = true
seccomp = "unconfined"
log_denied = false
`,
	}}
	for _, refs := range [][]string{{"top"}, {"base"}} {
		s, err := policy.ShowChain(refs, testVars(), pf.load)
		if err != nil {
			t.Fatalf("ShowChain(%q): %v", refs, err)
		}
		out := s.Render()
		want, _, err := policy.ApplyProfiles(mustChain(t, pf, refs...), testVars(), policy.Flags{})
		if err != nil {
			t.Fatal(err)
		}
		compareFolded(t, roundTrip(t, out, testVars()), want)
		if refs[0] == "top" {
			for _, w := range []string{"[security]\n", `seccomp = "unconfined"  # top.toml:`, "landlock = false  # top.toml:", "strict = true", "log_denied = false", `"C" = "$$HOME"`, "root = false  # base.toml:3", "unset = [\n"} {
				if !strings.Contains(out, w) {
					t.Errorf("show lacks %q\n%s", w, out)
				}
			}
		}
	}
	// Numbers fmt would print with an exponent (1.048576e+06), and a
	// float written with a fraction.
	for _, cpus := range []string{"1048576", "1000000.0", "0.25"} {
		pf := &files{text: map[string]string{"c.toml": "version = 1\n[limits]\ncpus = " + cpus + "\n"}}
		s, err := policy.ShowChain([]string{"c"}, testVars(), pf.load)
		if err != nil {
			t.Fatalf("cpus = %s: %v", cpus, err)
		}
		want, _, err := policy.ApplyProfiles(mustChain(t, pf, "c"), testVars(), policy.Flags{})
		if err != nil {
			t.Fatal(err)
		}
		compareFolded(t, roundTrip(t, s.Render(), testVars()), want)
	}
	// Every built-in profile, too.
	for _, name := range policy.BuiltinNames() {
		s, err := policy.ShowChain([]string{name}, testVars(), builtinLoader)
		if err != nil {
			t.Fatalf("ShowChain(%s): %v", name, err)
		}
		chain, err := policy.LoadChain([]string{name}, testVars(), builtinLoader)
		if err != nil {
			t.Fatal(err)
		}
		want, _, err := policy.ApplyProfiles(chain, testVars(), policy.Flags{})
		if err != nil {
			t.Fatal(err)
		}
		compareFolded(t, roundTrip(t, s.Render(), testVars()), want)
	}
}
