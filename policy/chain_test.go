package policy_test

import (
	"bytes"
	"errors"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"sbx/policy"
)

// testVars are the variables as sandbox.ProbeVars would find them for
// alice working at the top of a git work tree.
func testVars() policy.Vars {
	return policy.Vars{
		"HOME":            "/home/alice",
		"PWD":             "/home/alice/src/proj",
		"PROJECT":         "/home/alice/src/proj",
		"UID":             "1000",
		"USER":            "alice",
		"XDG_CONFIG_HOME": "/home/alice/.config",
		"XDG_CACHE_HOME":  "/home/alice/.cache",
		"XDG_RUNTIME_DIR": "/run/user/1000",
	}
}

// profileHost is fakeHost working in the project of testVars, with a
// fact for every host path a built-in profile names: some caches and
// configurations exist, others do not (their optional mounts are
// skipped), and a user manager for the limits of untrusted.
func profileHost() policy.Host {
	h := fakeHost()
	h.Cwd = "/home/alice/src/proj"
	h.Environ = []string{
		"HOME=/home/alice", "PATH=/usr/bin:/bin", "USER=alice", "LANG=C.UTF-8", "LC_ALL=C.UTF-8",
		"TERM=xterm", "SSH_AUTH_SOCK=/run/user/1000/ssh-agent", "GITHUB_TOKEN=ghp_secret", "GOFLAGS=-mod=vendor",
	}
	dir, file, missing := policy.PathInfo{Exists: true, Dir: true}, policy.PathInfo{Exists: true}, policy.PathInfo{}
	h.Paths = map[string]policy.PathInfo{
		"/home/alice/src/proj":      dir,
		"/home/alice/src/proj/.git": dir,
		// The caches of build: go's and npm's exist, the others not.
		"/home/alice/.cache/go-build": dir,
		"/home/alice/go/pkg/mod":      dir,
		"/home/alice/.cargo/registry": missing,
		"/home/alice/.cargo/git":      missing,
		"/home/alice/.npm":            dir,
		"/home/alice/.cache/pip":      missing,
		"/home/alice/.m2/repository":  missing,
		"/home/alice/.gradle/caches":  missing,
		"/home/alice/.gradle/wrapper": missing,
		"/home/alice/.cache/yarn":     missing,
		"/home/alice/.rustup":         dir,
		// cargo: the bin directory and the new config name exist.
		"/home/alice/.cargo/bin":         dir,
		"/home/alice/.cargo/config.toml": file,
		"/home/alice/.cargo/config":      missing,
		// go has a go env -w file; npm no nvm; pip no pip.conf.
		"/home/alice/.config/go/env":       file,
		"/home/alice/.nvm":                 missing,
		"/home/alice/.config/pip/pip.conf": missing,
	}
	h.Cgroup2 = "/sys/fs/cgroup"
	h.Cgroup2All = []string{"/sys/fs/cgroup"}
	h.RuntimeDir, h.StateRoot = "/run/user/1000", "/run/user/1000"
	h.BusAddress = "unix:path=/run/user/1000/bus"
	return h
}

// builtinLoader finds only the built-in profiles, as sandbox's loader
// does when no file of the user's shadows them.
func builtinLoader(ref, from string) (string, []byte, error) {
	b, ok := policy.Builtin(ref)
	if !ok {
		return ref, nil, errors.New("no such profile")
	}
	return "builtin:" + ref + ".toml", b, nil
}

// files is a fabricated set of profiles, keyed by source. A name N is
// the source "N.toml"; a path is taken relative to the directory of the
// profile naming it ("/cwd" on the command line). Every call is logged.
type files struct {
	text  map[string]string
	calls []string
}

func (pf *files) load(ref, from string) (string, []byte, error) {
	pf.calls = append(pf.calls, ref+" <- "+from)
	src := ref + ".toml"
	if policy.IsProfilePath(ref) {
		src = ref
		if !path.IsAbs(ref) {
			base := "/cwd"
			if from != "" {
				base = path.Dir(from)
			}
			src = path.Join(base, ref)
		}
	}
	t, ok := pf.text[src]
	if !ok {
		return src, nil, errors.New("no such profile")
	}
	return src, []byte(t), nil
}

func sources(chain []*policy.Profile) []string {
	var out []string
	for _, p := range chain {
		out = append(out, p.Source)
	}
	return out
}

func mustChain(t *testing.T, pf *files, refs ...string) []*policy.Profile {
	t.Helper()
	chain, err := policy.LoadChain(refs, testVars(), pf.load)
	if err != nil {
		t.Fatalf("LoadChain(%q): %v", refs, err)
	}
	return chain
}

func TestBuiltinProfilesGolden(t *testing.T) {
	for _, name := range policy.BuiltinNames() {
		t.Run(name, func(t *testing.T) {
			chain, err := policy.LoadChain([]string{name}, testVars(), builtinLoader)
			if err != nil {
				t.Fatal(err)
			}
			h, vars := profileHost(), testVars()
			// The launcher examines every path the profiles and flags
			// name; the fabricated host must know them all, or the
			// plan would be an error and not a golden file.
			f, _, err := policy.ApplyProfiles(chain, vars, cmd())
			if err != nil {
				t.Fatal(err)
			}
			for _, src := range policy.SourcePaths(f, h.Cwd) {
				if _, ok := h.Paths[src]; !ok {
					t.Errorf("profileHost has no fact for %s, which %s names", src, name)
				}
			}
			p, err := policy.ResolveWithProfiles(chain, vars, cmd(), h)
			if err != nil {
				t.Fatalf("ResolveWithProfiles: %v", err)
			}
			got, err := p.JSON()
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, '\n')
			file := filepath.Join("testdata", "profiles", name+".golden.json")
			if *update {
				if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(file, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(file)
			if err != nil {
				t.Fatalf("%v (run go test ./policy -run TestBuiltinProfilesGolden -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("the plan of profile %s changed; if that is meant, run go test ./policy -run TestBuiltinProfilesGolden -update and review the diff\n got:\n%s\nwant:\n%s", name, got, want)
			}
		})
	}
}

// Every golden file belongs to a built-in profile: a renamed or removed
// profile leaves none behind.
func TestBuiltinProfilesGoldenNoStale(t *testing.T) {
	ents, err := os.ReadDir(filepath.Join("testdata", "profiles"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		name, ok := strings.CutSuffix(e.Name(), ".golden.json")
		if !ok || !slices.Contains(policy.BuiltinNames(), name) {
			t.Errorf("testdata/profiles/%s belongs to no built-in profile", e.Name())
		}
	}
}

func resolveBuiltin(t *testing.T, cli policy.Flags, names ...string) *policy.Plan {
	t.Helper()
	chain, err := policy.LoadChain(names, testVars(), builtinLoader)
	if err != nil {
		t.Fatal(err)
	}
	p, err := policy.ResolveWithProfiles(chain, testVars(), cli, profileHost())
	if err != nil {
		t.Fatalf("ResolveWithProfiles(%q): %v", names, err)
	}
	return p
}

func findMount(p *policy.Plan, dest string) (policy.Mount, bool) {
	i := slices.IndexFunc(p.Mounts, func(m policy.Mount) bool { return m.Dest == dest && !strings.HasPrefix(m.Origin, "default") })
	if i < 0 {
		return policy.Mount{}, false
	}
	return p.Mounts[i], true
}

// What the golden files pin, said once in words.
func TestBuiltinBuildPlan(t *testing.T) {
	p := resolveBuiltin(t, cmd(), "build")
	const proj, home = "/home/alice/src/proj", "/home/alice"
	if m, ok := findMount(p, proj); !ok || m.Op != policy.OpBind || m.ReadOnly || m.Source != proj {
		t.Errorf("project mount %+v, want a read-write bind", m)
	}
	if m, ok := findMount(p, proj+"/.git"); !ok || !m.ReadOnly || m.SourceBeneath != proj || m.DestBeneath != proj {
		t.Errorf(".git mount %+v, want read-only, resolved beneath the project", m)
	}
	for dest, ro := range map[string]bool{".cache/go-build": false, "go/pkg/mod": false, ".npm": false, ".rustup": true} {
		if m, ok := findMount(p, home+"/"+dest); !ok || m.Op != policy.OpBind || m.ReadOnly != ro {
			t.Errorf("~/%s: %+v (found %v), want a bind, read-only %v", dest, m, ok, ro)
		}
	}
	for _, dest := range []string{".cargo/registry", ".cargo/git", ".cache/pip", ".m2/repository", ".gradle/caches", ".gradle/wrapper", ".cache/yarn"} {
		if m, ok := findMount(p, home+"/"+dest); ok {
			t.Errorf("~/%s is missing on the host but mounted: %+v", dest, m)
		}
	}
	// Masks: all optional, after every bind, before root-ro.
	firstHide := slices.IndexFunc(p.Mounts, func(m policy.Mount) bool { return m.Op == policy.OpHide })
	for i, m := range p.Mounts {
		switch {
		case m.Op == policy.OpHide && !m.Optional:
			t.Errorf("mask %+v is not optional", m)
		case m.Op != policy.OpHide && m.Op != policy.OpRootRO && i > firstHide:
			t.Errorf("%+v comes after a mask", m)
		}
	}
	for _, dest := range []string{".ssh", ".gnupg", ".aws", ".config/gh", ".netrc", ".git-credentials", ".docker/config.json", ".kube", ".password-store", ".npmrc", ".pypirc", ".cargo/credentials.toml", ".cargo/credentials", ".mozilla", ".config/google-chrome", ".config/chromium"} {
		if m, ok := findMount(p, home+"/"+dest); !ok || m.Op != policy.OpHide {
			t.Errorf("~/%s is not masked: %+v", dest, m)
		}
	}
	if p.Net != "none" || !p.Namespaces.Net || p.Cwd != proj || p.Cgroup != nil || len(p.Warnings) != 0 {
		t.Errorf("net %q (namespace %v), cwd %q, cgroup %+v, warnings %q", p.Net, p.Namespaces.Net, p.Cwd, p.Cgroup, p.Warnings)
	}
	if !slices.Equal(p.Profiles, []string{"builtin:build.toml"}) {
		t.Errorf("Profiles = %q", p.Profiles)
	}
}

func TestBuiltinUntrustedPlan(t *testing.T) {
	p := resolveBuiltin(t, cmd(), "untrusted")
	want := []string{"HOME=/home/alice", "PATH=/usr/bin:/bin", "USER=alice", "LANG=C.UTF-8", "LC_ALL=C.UTF-8", "TERM=xterm"}
	if !slices.Equal(p.Env, want) {
		t.Errorf("Env = %q, want %q", p.Env, want)
	}
	if l := p.Limits; l.MemoryMax != 1<<30 || l.MemorySwapMax != 0 || l.PidsMax != 512 || p.Timeout != time.Hour {
		t.Errorf("limits %+v, timeout %v", l, p.Timeout)
	}
	if p.Cgroup == nil || !slices.Equal(p.Cgroup.Controllers, []string{"memory", "pids"}) {
		t.Errorf("cgroup %+v", p.Cgroup)
	}
	if p.Origins["limits.memory"] != "builtin:untrusted.toml:27" || p.Origins["timeout"] != "builtin:untrusted.toml:14" {
		t.Errorf("origins %v", p.Origins)
	}
	// A flag lowers a limit; the rest stays.
	cli := cmd()
	cli.Memory = 256 << 20
	p = resolveBuiltin(t, cli, "untrusted")
	if p.Limits.MemoryMax != 256<<20 || p.Limits.PidsMax != 512 || p.Origins["limits.memory"] != "flag --memory" {
		t.Errorf("--memory 256M: limits %+v, origins %v", p.Limits, p.Origins)
	}
}

func TestBuiltinToolPlans(t *testing.T) {
	p := resolveBuiltin(t, cmd(), "build-net")
	if p.Net != "host" || p.Namespaces.Net || p.Origins["net"] != "builtin:build-net.toml:12" {
		t.Errorf("build-net: net %q, origin %q", p.Net, p.Origins["net"])
	}
	if !slices.ContainsFunc(p.Mounts, func(m policy.Mount) bool { return m.Origin == "default: --net host name resolution" }) {
		t.Errorf("build-net: resolv.conf not bound")
	}
	p = resolveBuiltin(t, cmd(), "go")
	if !slices.Contains(p.Env, "GOTOOLCHAIN=local") || !slices.Contains(p.Env, "GOFLAGS=-mod=vendor") {
		t.Errorf("go: env %q", p.Env)
	}
	if m, ok := findMount(p, "/home/alice/.config/go/env"); !ok || !m.ReadOnly {
		t.Errorf("go: go env file %+v", m)
	}
	p = resolveBuiltin(t, cmd(), "cargo")
	if _, ok := findMount(p, "/home/alice/.cargo/config.toml"); !ok {
		t.Errorf("cargo: config.toml not bound")
	}
	if _, ok := findMount(p, "/home/alice/.cargo/config"); ok {
		t.Errorf("cargo: the missing ~/.cargo/config is bound")
	}
	// The fetch step of docs/profiles.md: npm, then build-net.
	p = resolveBuiltin(t, cmd(), "npm", "build-net")
	if p.Net != "host" || !slices.Equal(p.Profiles, []string{"builtin:build.toml", "builtin:npm.toml", "builtin:build-net.toml"}) {
		t.Errorf("npm + build-net: net %q, profiles %q", p.Net, p.Profiles)
	}
}

func TestLoadChainOrder(t *testing.T) {
	pf := &files{text: map[string]string{
		"top.toml": "version = 1\nextends = [\"b\", \"c\"]\n",
		"b.toml":   "version = 1\nextends = [\"d\"]\n",
		"c.toml":   "version = 1\nextends = [\"d\", \"e\"]\n",
		"d.toml":   "version = 1\n",
		"e.toml":   "version = 1\n",
		"x.toml":   "version = 1\nextends = [\"d\"]\n",
	}}
	for _, tt := range []struct {
		refs []string
		want []string
	}{
		{[]string{"d"}, []string{"d.toml"}},
		// Depth first, each after what it extends; the diamond's d once,
		// where first reached.
		{[]string{"top"}, []string{"d.toml", "b.toml", "e.toml", "c.toml", "top.toml"}},
		{[]string{"c", "b"}, []string{"d.toml", "e.toml", "c.toml", "b.toml"}},
		// --profile in order; a profile named twice applies once.
		{[]string{"b", "b"}, []string{"d.toml", "b.toml"}},
		{[]string{"x", "d"}, []string{"d.toml", "x.toml"}},
		{[]string{"d", "x"}, []string{"d.toml", "x.toml"}},
		{[]string{"e", "top"}, []string{"e.toml", "d.toml", "b.toml", "c.toml", "top.toml"}},
		{nil, nil},
	} {
		if got := sources(mustChain(t, pf, tt.refs...)); !slices.Equal(got, tt.want) {
			t.Errorf("LoadChain(%q) = %q, want %q", tt.refs, got, tt.want)
		}
	}
}

func TestLoadChainErrors(t *testing.T) {
	pf := &files{text: map[string]string{
		"self.toml":       "version = 1\nextends = [\"self\"]\n",
		"a.toml":          "version = 1\n# a and b\nextends = [\"b\"]\n",
		"b.toml":          "version = 1\n\n\nextends = [\"a\"]\n",
		"x.toml":          "version = 1\nextends = [\"y\"]\n",
		"y.toml":          "version = 1\nextends = [\"z\"]\n",
		"z.toml":          "version = 1\ndescription = \"z\"\n  extends = [\"d\", \"x\"]\n",
		"d.toml":          "version = 1\n",
		"top.toml":        "version = 1\nextends = [\"d\", \"a\"]\n",
		"gap.toml":        "version = 1\nextends = [\"d\", \"nope\"]\n",
		"bad.toml":        "version = 1\n[run]\nnetwork = \"host\"\n",
		"usebad.toml":     "version = 1\nextends = [\"bad\"]\n",
		"/cwd/paths.toml": "version = 1\nextends = [\"./paths.toml\"]\n",
	}}
	for _, tt := range []struct {
		refs []string
		want string
	}{
		{[]string{"self"}, "self.toml:2:1: extends cycle: self.toml -> self.toml"},
		{[]string{"a"}, "b.toml:4:1: extends cycle: a.toml -> b.toml -> a.toml"},
		{[]string{"b"}, "a.toml:3:1: extends cycle: b.toml -> a.toml -> b.toml"},
		{[]string{"x"}, "z.toml:3:3: extends cycle: x.toml -> y.toml -> z.toml -> x.toml"},
		{[]string{"y"}, "x.toml:2:1: extends cycle: y.toml -> z.toml -> x.toml -> y.toml"},
		// Only the files in the cycle are named, not the way there.
		{[]string{"top"}, "b.toml:4:1: extends cycle: a.toml -> b.toml -> a.toml"},
		{[]string{"d", "a"}, "b.toml:4:1: extends cycle: a.toml -> b.toml -> a.toml"},
		{[]string{"/cwd/paths.toml"}, "/cwd/paths.toml:2:1: extends cycle: /cwd/paths.toml -> /cwd/paths.toml"},
		// A missing profile: on the command line, and extended.
		{[]string{"nope"}, "nope: no such profile"},
		{[]string{"gap"}, "gap.toml:2:1: nope: no such profile"},
		{[]string{"d", "nope"}, "nope: no such profile"},
		// An error in an extended file names that file.
		{[]string{"usebad"}, `bad.toml:3:1: unknown key "run.network"`},
	} {
		chain, err := policy.LoadChain(tt.refs, testVars(), pf.load)
		if err == nil || err.Error() != tt.want {
			t.Errorf("LoadChain(%q) = %q, %v; want the error %q", tt.refs, sources(chain), err, tt.want)
			continue
		}
		if chain != nil {
			t.Errorf("LoadChain(%q) returned a chain with its error", tt.refs)
		}
		var pe *policy.ProfileError
		if !errors.As(err, &pe) || !errors.Is(err, policy.ErrUsage) {
			t.Errorf("LoadChain(%q): %T is not a usage *ProfileError", tt.refs, err)
		}
	}
}

// A relative path is relative to the profile that names it; the loader
// is told which one, and "" on the command line.
func TestLoadChainFrom(t *testing.T) {
	pf := &files{text: map[string]string{
		"/home/alice/p/top.toml":      "version = 1\nextends = [\"../lib/base.toml\", \"sub/x.toml\", \"d\"]\n",
		"/home/alice/lib/base.toml":   "version = 1\nextends = [\"common.toml\"]\n",
		"/home/alice/lib/common.toml": "version = 1\n",
		"/home/alice/p/sub/x.toml":    "version = 1\nextends = [\"/home/alice/lib/common.toml\", \"../../lib/base.toml\"]\n",
		"d.toml":                      "version = 1\n",
		"/cwd/rel.toml":               "version = 1\n",
	}}
	chain := mustChain(t, pf, "/home/alice/p/top.toml", "rel.toml")
	want := []string{"/home/alice/lib/common.toml", "/home/alice/lib/base.toml", "/home/alice/p/sub/x.toml", "d.toml", "/home/alice/p/top.toml", "/cwd/rel.toml"}
	if got := sources(chain); !slices.Equal(got, want) {
		t.Errorf("chain %q, want %q", got, want)
	}
	calls := []string{
		"/home/alice/p/top.toml <- ",
		"../lib/base.toml <- /home/alice/p/top.toml",
		"common.toml <- /home/alice/lib/base.toml",
		"sub/x.toml <- /home/alice/p/top.toml",
		"/home/alice/lib/common.toml <- /home/alice/p/sub/x.toml",
		"../../lib/base.toml <- /home/alice/p/sub/x.toml",
		"d <- /home/alice/p/top.toml",
		"rel.toml <- ",
	}
	if !slices.Equal(pf.calls, calls) {
		t.Errorf("loader calls:\n%s\nwant:\n%s", strings.Join(pf.calls, "\n"), strings.Join(calls, "\n"))
	}
}

func TestApplyScalars(t *testing.T) {
	pf := &files{text: map[string]string{
		"a.toml": `version = 1
[run]
net = "host"
hostname = "a"
timeout = "1h"
root = true
chdir = "$PROJECT/a"
`,
		"b.toml": `version = 1
extends = ["a"]
[run]
hostname = "b"
timeout = "5m"
chdir = "${HOME}/b"
cgroup = true
`,
	}}
	chain := mustChain(t, pf, "b")
	f, o, err := policy.ApplyProfiles(chain, testVars(), cmd())
	if err != nil {
		t.Fatal(err)
	}
	if f.Net != "host" || f.Hostname != "b" || f.Timeout != 5*time.Minute || !f.Root || !f.Cgroup || f.Chdir != "/home/alice/b" {
		t.Errorf("flags %+v", f)
	}
	wantO := policy.Origins{"net": "a.toml:3", "hostname": "b.toml:4", "timeout": "b.toml:5", "root": "a.toml:6", "chdir": "b.toml:6", "cgroup": "b.toml:7"}
	if !mapsEqual(o, wantO) {
		t.Errorf("origins %v, want %v", o, wantO)
	}
	if !slices.Equal(f.Argv, cmd().Argv) {
		t.Errorf("Argv = %q", f.Argv)
	}

	// The command line wins over every profile.
	cli := cmd()
	cli.Net, cli.Hostname, cli.Timeout, cli.Chdir = "none", "cli", time.Second, "/work"
	f, o, err = policy.ApplyProfiles(chain, testVars(), cli)
	if err != nil {
		t.Fatal(err)
	}
	if f.Net != "none" || f.Hostname != "cli" || f.Timeout != time.Second || f.Chdir != "/work" || !f.Root {
		t.Errorf("flags %+v", f)
	}
	wantO = policy.Origins{"net": "flag --net", "hostname": "flag --hostname", "timeout": "flag --timeout", "root": "a.toml:6", "chdir": "flag --chdir", "cgroup": "b.toml:7"}
	if !mapsEqual(o, wantO) {
		t.Errorf("origins %v, want %v", o, wantO)
	}

	// Without profiles the flags pass through unchanged, with origins.
	cli = cmd()
	cli.Root, cli.Cgroup, cli.Net = true, true, "host"
	f, o, err = policy.ApplyProfiles(nil, testVars(), cli)
	if err != nil {
		t.Fatal(err)
	}
	if !f.Root || !f.Cgroup || f.Net != "host" || f.Hostname != "" || f.Timeout != 0 {
		t.Errorf("flags %+v", f)
	}
	if want := (policy.Origins{"root": "flag --root", "cgroup": "flag --cgroup", "net": "flag --net"}); !mapsEqual(o, want) {
		t.Errorf("origins %v, want %v", o, want)
	}
}

// A boolean flag given false on the command line (--root=false) wins
// over a profile's true, as a flag given true wins over its false.
func TestApplyOffFlags(t *testing.T) {
	pf := &files{text: map[string]string{
		"on.toml": `version = 1
[run]
root = true
cgroup = true
[env]
clear = true
[security]
landlock = false
strict = true
log_denied = true
`,
	}}
	chain := mustChain(t, pf, "on")
	f, _, err := policy.ApplyProfiles(chain, testVars(), cmd())
	if err != nil {
		t.Fatal(err)
	}
	if !f.Root || !f.Cgroup || !f.Clearenv || !f.NoLandlock || !f.Strict || !f.LogDenied {
		t.Fatalf("the profile's values did not apply: %+v", f)
	}
	cli := cmd()
	cli.Off = map[string]bool{}
	for _, name := range policy.OffFlags {
		cli.Off[name] = true
	}
	f, o, err := policy.ApplyProfiles(chain, testVars(), cli)
	if err != nil {
		t.Fatal(err)
	}
	if f.Root || f.Cgroup || f.Clearenv || f.NoLandlock || f.Strict || f.LogDenied {
		t.Errorf("--flag=false did not win over the profile: %+v", f)
	}
	want := policy.Origins{"root": "flag --root=false", "cgroup": "flag --cgroup=false", "env.clear": "flag --clearenv=false",
		"security.landlock": "flag --no-landlock=false", "security.strict": "flag --strict=false", "security.log_denied": "flag --log-denied=false"}
	for k, v := range want {
		if o[k] != v {
			t.Errorf("origin of %s: %q, want %q", k, o[k], v)
		}
	}
}

func mapsEqual(a, b policy.Origins) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

type fsOp struct{ kind, arg, origin string }

func fsOps(fl []policy.FSFlag) []fsOp {
	var out []fsOp
	for _, f := range fl {
		out = append(out, fsOp{string(f.Kind), f.Arg, f.Origin})
	}
	return out
}

func TestApplyMounts(t *testing.T) {
	pf := &files{text: map[string]string{
		"a.toml": `version = 1
[[mount]]
rw = "/data"
[[mount]]
ro = "/src:/work"
[[mount]]
hide = "/data/secret"
[[mount]]
ro = "rel"
[[mount]]
ro = "/opt"
optional = true
`,
		"b.toml": `version = 1
extends = ["a"]
[[mount]]
ro = "/data"
[[mount]]
tmpfs = "/work/"
[[mount]]
ro = "$PWD/rel"
[[mount]]
hide = "/opt"
`,
	}}
	chain := mustChain(t, pf, "b")
	f, _, err := policy.ApplyProfiles(chain, testVars(), cmd())
	if err != nil {
		t.Fatal(err)
	}
	// A later profile's operation on a destination replaces the earlier
	// one's, and goes at the end; the operations that were put over the
	// replaced one (inside its destination) follow it, and the rest keep
	// their order.
	want := []fsOp{
		{"ro", "/data", "profile b.toml:3"},
		{"hide", "/data/secret", "profile a.toml:6"},
		{"tmpfs", "/work/", "profile b.toml:5"},
		{"ro", "/home/alice/src/proj/rel", "profile b.toml:7"},
		{"hide", "/opt", "profile b.toml:9"},
	}
	if got := fsOps(f.FS); !slices.Equal(got, want) {
		t.Errorf("mounts\n got %q\nwant %q", got, want)
	}

	withFlags := func(what string, want []fsOp, flags ...string) {
		t.Helper()
		cli := cmd()
		cli.FS = fs(t, flags...)
		f, _, err := policy.ApplyProfiles(chain, testVars(), cli)
		if err != nil {
			t.Fatal(err)
		}
		if got := fsOps(f.FS); !slices.Equal(got, want) {
			t.Errorf("%s\n got %q\nwant %q", what, got, want)
		}
	}
	// A flag on a destination the chain uses replaces the chain's entry;
	// the flags come after the chain's, in their order.
	withFlags("mounts with flags", []fsOp{
		{"tmpfs", "/work/", "profile b.toml:5"},
		{"ro", "/home/alice/src/proj/rel", "profile b.toml:7"},
		{"rw", "/data", ""},
		{"ro", "/extra", ""},
		{"hide", "/data/secret", ""},
		{"ro", "/src:/opt", ""},
	}, "rw", "/data", "ro", "/extra", "hide", "/data/secret", "ro", "/src:/opt")
	// A flag on the chain's destination does not jump ahead of an
	// earlier flag that covers it: --ro ~ then --tmpfs ~/.ssh (which
	// replaces a profile's hide) leaves ~/.ssh covered.
	withFlags("a replacing flag after one that covers it", []fsOp{
		{"tmpfs", "/work/", "profile b.toml:5"},
		{"ro", "/home/alice/src/proj/rel", "profile b.toml:7"},
		{"hide", "/opt", "profile b.toml:9"},
		{"ro", "/data", ""},
		{"tmpfs", "/data/secret", ""},
	}, "ro", "/data", "tmpfs", "/data/secret")

	// Two flags on one destination are not the chain's business: the
	// plan refuses them.
	cli := cmd()
	cli.FS = fs(t, "ro", "/extra:/x", "tmpfs", "/x")
	h := profileHost()
	h.Paths["/extra"] = policy.PathInfo{Exists: true, Dir: true}
	if _, err := policy.ResolveWithProfiles(nil, testVars(), cli, h); err == nil || !strings.Contains(err.Error(), "already the destination of --ro /extra:/x") {
		t.Errorf("two flags on /x: %v", err)
	}
}

func TestApplyEnv(t *testing.T) {
	pf := &files{text: map[string]string{
		"a.toml": `version = 1
[env]
keep = ["PATH", "LC_*"]
set = { A = "a", B = "a", GOFLAGS = "-mod=mod", DIR = "$XDG_CACHE_HOME/x" }
unset = ["U1", "U2"]
`,
		"b.toml": `version = 1
extends = ["a"]
[env]
keep = ["HOME", "PATH"]
set = { B = "b", U1 = "now set" }
unset = ["A"]
`,
	}}
	chain := mustChain(t, pf, "b")
	f, o, err := policy.ApplyProfiles(chain, testVars(), cmd())
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"PATH", "LC_*", "HOME"}; !slices.Equal(f.KeepEnv, want) {
		t.Errorf("KeepEnv = %q, want the union %q", f.KeepEnv, want)
	}
	if want := []string{"B=b", "DIR=/home/alice/.cache/x", "GOFLAGS=-mod=mod", "U1=now set"}; !slices.Equal(f.Env, want) {
		t.Errorf("Env = %q, want %q", f.Env, want)
	}
	if want := []string{"U2", "A"}; !slices.Equal(f.Unsetenv, want) {
		t.Errorf("Unsetenv = %q, want %q", f.Unsetenv, want)
	}
	wantO := policy.Origins{
		"env.keep":  "b.toml:4",
		"env.set.B": "b.toml:5", "env.set.U1": "b.toml:5", "env.set.GOFLAGS": "a.toml:4", "env.set.DIR": "a.toml:4",
		"env.unset.A": "b.toml:6", "env.unset.U2": "a.toml:5",
	}
	if !mapsEqual(o, wantO) {
		t.Errorf("origins %v\nwant %v", o, wantO)
	}

	// Flags apply after the profiles: --env over a profile's unset,
	// --unsetenv over a profile's set.
	cli := cmd()
	cli.Env, cli.Unsetenv = []string{"A=cli", "NEW=1"}, []string{"GOFLAGS"}
	f, o, err = policy.ApplyProfiles(chain, testVars(), cli)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"A=cli", "B=b", "DIR=/home/alice/.cache/x", "NEW=1", "U1=now set"}; !slices.Equal(f.Env, want) {
		t.Errorf("Env = %q, want %q", f.Env, want)
	}
	if want := []string{"U2", "GOFLAGS"}; !slices.Equal(f.Unsetenv, want) {
		t.Errorf("Unsetenv = %q, want %q", f.Unsetenv, want)
	}
	wantO = policy.Origins{
		"env.keep":  "b.toml:4",
		"env.set.A": "flag --env", "env.set.NEW": "flag --env", "env.set.B": "b.toml:5", "env.set.U1": "b.toml:5", "env.set.DIR": "a.toml:4",
		"env.unset.GOFLAGS": "flag --unsetenv", "env.unset.U2": "a.toml:5",
	}
	if !mapsEqual(o, wantO) {
		t.Errorf("origins %v\nwant %v", o, wantO)
	}

	// The plan: the host's environment through the allowlist, minus
	// what is unset, plus what is set.
	h := profileHost()
	h.Environ = append(h.Environ, "U2=host", "A=host", "B=host", "LC_TIME=C")
	p, err := policy.ResolveWithProfiles(chain, testVars(), cli, h)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"HOME=/home/alice", "PATH=/usr/bin:/bin", "LC_ALL=C.UTF-8", "LC_TIME=C", "A=cli", "B=b", "DIR=/home/alice/.cache/x", "NEW=1", "U1=now set"}
	if !slices.Equal(p.Env, want) {
		t.Errorf("plan env\n got %q\nwant %q", p.Env, want)
	}
}

func TestApplyEnvClear(t *testing.T) {
	pf := &files{text: map[string]string{
		"a.toml": "version = 1\n[env]\nclear = true\n",
		"b.toml": "version = 1\nextends = [\"a\"]\n[env]\nclear = false\n",
		"c.toml": "version = 1\n[env]\nclear = false\n",
	}}
	for _, tt := range []struct {
		refs   []string
		cli    bool
		want   bool
		origin string
	}{
		{[]string{"a"}, false, true, "a.toml:3"},
		{[]string{"b"}, false, true, "a.toml:3"}, // true if any profile says so
		{[]string{"c"}, false, false, ""},
		{[]string{"c"}, true, true, "flag --clearenv"},
		{[]string{"a"}, true, true, "flag --clearenv"},
	} {
		cli := cmd()
		cli.Clearenv = tt.cli
		f, o, err := policy.ApplyProfiles(mustChain(t, pf, tt.refs...), testVars(), cli)
		if err != nil {
			t.Fatal(err)
		}
		if f.Clearenv != tt.want || o["env.clear"] != tt.origin {
			t.Errorf("%q --clearenv=%v: clear %v from %q, want %v from %q", tt.refs, tt.cli, f.Clearenv, o["env.clear"], tt.want, tt.origin)
		}
	}
}

// Conflicting flags are refused whether or not profiles are in play.
func TestApplyEnvFlagConflicts(t *testing.T) {
	for _, tt := range []struct {
		env, unset []string
		want       string
	}{
		{[]string{"A=1", "A=2"}, nil, "--env A=2 conflicts with --env A=1"},
		{[]string{"A=1"}, []string{"A"}, "--unsetenv A conflicts with --env A=1"},
	} {
		for _, chain := range [][]*policy.Profile{nil, mustChain(t, &files{text: map[string]string{"p.toml": "version = 1\n[env]\nset = { A = \"p\" }\n"}}, "p")} {
			cli := cmd()
			cli.Env, cli.Unsetenv = tt.env, tt.unset
			p, err := policy.ResolveWithProfiles(chain, testVars(), cli, profileHost())
			if err == nil || !strings.Contains(err.Error(), tt.want) || !errors.Is(err, policy.ErrUsage) {
				t.Errorf("--env %q --unsetenv %q with %d profiles: %v (env %q); want a usage error %q", tt.env, tt.unset, len(chain), err, planEnv(p), tt.want)
			}
		}
	}
	// The same value twice is no conflict.
	cli := cmd()
	cli.Env = []string{"A=1", "A=1"}
	if p, err := policy.ResolveWithProfiles(nil, testVars(), cli, profileHost()); err != nil || !slices.Contains(p.Env, "A=1") {
		t.Errorf("--env A=1 --env A=1: %v", err)
	}
}

func planEnv(p *policy.Plan) []string {
	if p == nil {
		return nil
	}
	return p.Env
}

func TestApplyLimits(t *testing.T) {
	pf := &files{text: map[string]string{
		"a.toml": `version = 1
[limits]
memory = "1G"
memory_swap = "0"
pids = 512
cpus = 2
io_weight = 300
`,
		"b.toml": `version = 1
extends = ["a"]
[limits]
pids = 1024
cpus = "1.5"
cpu_weight = 200
`,
	}}
	chain := mustChain(t, pf, "b")
	f, o, err := policy.ApplyProfiles(chain, testVars(), cmd())
	if err != nil {
		t.Fatal(err)
	}
	if f.Memory != 1<<30 || !f.MemorySwapSet || f.MemorySwap != 0 || f.Pids != 1024 || f.CPUQuota != 150000 || f.CPUWeight != 200 || f.IOWeight != 300 {
		t.Errorf("limits %+v", f)
	}
	wantO := policy.Origins{
		"limits.memory": "a.toml:3", "limits.memory_swap": "a.toml:4", "limits.pids": "b.toml:4",
		"limits.cpus": "b.toml:5", "limits.cpu_weight": "b.toml:6", "limits.io_weight": "a.toml:7",
	}
	if !mapsEqual(o, wantO) {
		t.Errorf("origins %v\nwant %v", o, wantO)
	}

	// Field by field, a flag wins; a field the flags leave alone stays.
	cli := cmd()
	cli.Memory, cli.CPUQuota, cli.MemorySwap, cli.MemorySwapSet = 2<<30, 50000, 1<<30, true
	f, o, err = policy.ApplyProfiles(chain, testVars(), cli)
	if err != nil {
		t.Fatal(err)
	}
	if f.Memory != 2<<30 || f.MemorySwap != 1<<30 || f.CPUQuota != 50000 || f.Pids != 1024 || f.CPUWeight != 200 {
		t.Errorf("limits with flags %+v", f)
	}
	wantO["limits.memory"], wantO["limits.memory_swap"], wantO["limits.cpus"] = "flag --memory", "flag --memory-swap", "flag --cpus"
	if !mapsEqual(o, wantO) {
		t.Errorf("origins %v\nwant %v", o, wantO)
	}

	p, err := policy.ResolveWithProfiles(chain, testVars(), cli, profileHost())
	if err != nil {
		t.Fatal(err)
	}
	want := policy.Limits{MemoryMax: 2 << 30, MemorySwapMax: 1 << 30, CPUQuota: 50000, CPUPeriod: policy.CPUPeriodUS, PidsMax: 1024, CPUWeight: 200, IOWeight: 300}
	if p.Limits != want || p.Cgroup == nil {
		t.Errorf("plan limits %+v cgroup %+v, want %+v", p.Limits, p.Cgroup, want)
	}
	if !slices.Equal(p.Profiles, []string{"a.toml", "b.toml"}) || p.Origins["limits.pids"] != "b.toml:4" {
		t.Errorf("plan profiles %q origins %v", p.Profiles, p.Origins)
	}

	// --no-limits drops every limit of the chain, and goes with no
	// limit flag.
	cli = cmd()
	cli.NoLimits = true
	f, o, err = policy.ApplyProfiles(chain, testVars(), cli)
	if err != nil {
		t.Fatal(err)
	}
	if f.Memory != 0 || f.MemorySwapSet || f.Pids != 0 || f.CPUQuota != 0 || f.CPUWeight != 0 || f.IOWeight != 0 {
		t.Errorf("--no-limits: limits %+v", f)
	}
	if want := (policy.Origins{"limits": "flag --no-limits"}); !mapsEqual(o, want) {
		t.Errorf("--no-limits: origins %v, want %v", o, want)
	}
	cli.Pids = 100
	if _, _, err := policy.ApplyProfiles(chain, testVars(), cli); err == nil || !strings.Contains(err.Error(), "--no-limits") {
		t.Errorf("--no-limits --pids 100: %v", err)
	}
}

func TestExpand(t *testing.T) {
	vars := policy.Vars{
		"HOME": "/home/alice", "USER": "alice", "X": "x", "X_1": "x1", "DOLLAR": "$HOME",
		"!PROJECT": "the project would be /home/alice, which is or holds a home directory",
	}
	for _, tt := range []struct {
		in, want string
		err      string // a fragment of the error, "" for none
	}{
		{in: "", want: ""},
		{in: "plain/path", want: "plain/path"},
		{in: "$HOME", want: "/home/alice"},
		{in: "$HOME/.cache", want: "/home/alice/.cache"},
		{in: "${HOME}", want: "/home/alice"},
		{in: "${HOME}x", want: "/home/alicex"},
		{in: "$USER@$X", want: "alice@x"},
		{in: "$X_1.$X-$X", want: "x1.x-x"},
		{in: "${X}${X}$X", want: "xxx"},
		{in: "$$", want: "$"},
		{in: "$$HOME", want: "$HOME"},
		{in: "a$$b$$", want: "a$b$"},
		{in: "$$$HOME", want: "$/home/alice"},
		{in: "$$$$", want: "$$"},
		{in: "$${HOME}", want: "${HOME}"},
		{in: "$DOLLAR", want: "$HOME"}, // values are not expanded again
		{in: "$HOMEx", err: "undefined variable $HOMEx"},
		{in: "$NOPE/x", err: "undefined variable $NOPE"},
		{in: "${NOPE}", err: "undefined variable $NOPE"},
		{in: "$home", err: "undefined variable $home"},
		{in: "$PROJECT/x", err: "$PROJECT is undefined here: the project would be /home/alice, which is or holds a home directory"},
		{in: "${PROJECT}", err: "$PROJECT is undefined here"},
		{in: "$", err: `a lone $ in "$" (write $$ for a dollar sign)`},
		{in: "cost: 5$", err: "a lone $"},
		{in: "$/x", err: "a lone $"},
		{in: "$1", err: "a lone $"},
		{in: "$ HOME", err: "a lone $"},
		{in: "$$$", err: "a lone $"},
		{in: "${}", err: "a lone $"},
		{in: "${HOME", err: `unclosed ${ in "${HOME"`},
		{in: "x${", err: "unclosed ${"},
		// The why-message is not a variable.
		{in: "${!PROJECT}", err: `bad variable name "!PROJECT"`},
		{in: "${HO ME}", err: `bad variable name "HO ME"`},
		{in: "${1X}", err: `bad variable name "1X"`},
	} {
		got, err := policy.Expand(tt.in, vars)
		switch {
		case tt.err == "" && (err != nil || got != tt.want):
			t.Errorf("Expand(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
			t.Errorf("Expand(%q) = %q, %v; want an error with %q", tt.in, got, err, tt.err)
		case tt.err != "" && got != "":
			t.Errorf("Expand(%q) = %q with its error", tt.in, got)
		}
	}
}

// dollarEscapes counts the "$$" of s, left to right, as Expand reads them.
func dollarEscapes(s string) int {
	n := 0
	for i := 0; i < len(s); i++ {
		if s[i] == '$' && i+1 < len(s) && s[i+1] == '$' {
			n++
			i++
		}
	}
	return n
}

// FuzzExpand: Expand never panics; what it returns holds a "$" only for
// each "$$" of the input (the values hold none); a why-message never
// becomes a value; text without "$" comes back unchanged.
func FuzzExpand(f *testing.F) {
	for _, s := range []string{"", "x", "$HOME/x", "${HOME}", "$$", "$$$HOME", "$", "${", "${}", "${!PROJECT}", "$PROJECT", "a$1", "${HOME}${USER}", "$$${X_1}"} {
		f.Add(s)
	}
	vars := policy.Vars{"HOME": "/home/alice", "USER": "alice", "X_1": "x1", "E": "", "!PROJECT": "WHY-NOT"}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := policy.Expand(s, vars)
		if err != nil {
			if got != "" {
				t.Fatalf("Expand(%q) = %q with the error %v", s, got, err)
			}
			return
		}
		if n, want := strings.Count(got, "$"), dollarEscapes(s); n != want {
			t.Fatalf("Expand(%q) = %q: %d dollar signs, want %d (one per $$)", s, got, n, want)
		}
		if strings.Contains(got, "WHY-NOT") && !strings.Contains(s, "WHY-NOT") {
			t.Fatalf("Expand(%q) = %q: the why-message became a value", s, got)
		}
		if !strings.Contains(s, "$") && got != s {
			t.Fatalf("Expand(%q) = %q, want it unchanged", s, got)
		}
	})
}
