package policy_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"sbx/idmap"
	"sbx/policy"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// fakeHost is a usr-merged host as sandbox.ProbeHost would describe it:
// caller alice (uid 1000, gid 1001) with subordinate ranges and helpers.
// GID differs from UID so that a swap shows.
func fakeHost() policy.Host {
	return policy.Host{
		UID:     1000,
		GID:     1001,
		User:    "alice",
		Home:    "/home/alice",
		Cwd:     "/home/alice/src",
		Environ: []string{"HOME=/home/alice", "PATH=/usr/bin:/bin", "LANG=C.UTF-8", "TERM=xterm"},

		SubUIDs:     []idmap.Range{{Start: 100000, Count: 65536}},
		SubGIDs:     []idmap.Range{{Start: 200000, Count: 65536}},
		SubIDSource: "/etc/subuid",
		NewUIDMap:   "/usr/bin/newuidmap",
		NewGIDMap:   "/usr/bin/newgidmap",

		LandlockABI:   7,
		SeccompFilter: true,
		SeccompNotify: true,

		// In readdir order, not SystemDirs order; home, var and the
		// dangling file are not taken over.
		Root: []policy.Entry{
			{Name: "home", Dir: true},
			{Name: "etc", Dir: true},
			{Name: "lib64", Symlink: "usr/lib64"},
			{Name: "bin", Symlink: "usr/bin"},
			{Name: "var", Dir: true},
			{Name: "usr", Dir: true},
			{Name: "sbin", Symlink: "usr/sbin"},
			{Name: "lib", Symlink: "usr/lib"},
			{Name: "lib32"}, // neither a directory nor a symlink: skipped
		},
		Paths: map[string]policy.PathInfo{
			"/home/alice/src":      {Exists: true, Dir: true},
			"/home/alice/src/data": {Exists: true, Dir: true},
			"/home/alice/out":      {Exists: true, Dir: true},
			"/data":                {Exists: true, Dir: true},
			"/a":                   {Exists: true, Dir: true},
			"/a/b":                 {Exists: true, Dir: true},
			"/a/b/c":               {Exists: true},
			"/a/bc":                {Exists: true, Dir: true},
			"/a:b":                 {Exists: true, Dir: true},
			"/missing":             {Exists: false},
			"/secret":              {Err: "permission denied"},
		},
		ResolvConf:     "/run/systemd/resolve/stub-resolv.conf",
		ResolvConfReal: "/run/systemd/resolve/stub-resolv.conf",
		OpenFDs:        map[int]bool{3: true, 4: true, 9: true},
	}
}

func cmd() policy.Flags { return policy.Flags{Argv: []string{"sh", "-c", "echo hi"}} }

// fs parses flags given as kind, value pairs, as cmd/sbx would.
func fs(t *testing.T, kv ...string) []policy.FSFlag {
	t.Helper()
	var out []policy.FSFlag
	for ; len(kv) >= 2; kv = kv[2:] {
		kind := policy.FSKind(kv[0])
		var f policy.FSFlag
		var err error
		switch kind {
		case policy.FSRo, policy.FSRw:
			f, err = policy.ParseBind(kind, kv[1])
		default:
			f, err = policy.ParseDest(kind, kv[1])
		}
		if err != nil {
			t.Fatalf("parse --%s %s: %v", kind, kv[1], err)
		}
		out = append(out, f)
	}
	return out
}

func mustResolve(t *testing.T, f policy.Flags, h policy.Host) *policy.Plan {
	t.Helper()
	p, err := policy.Resolve(f, h)
	if err != nil {
		t.Fatalf("Resolve: %v", err)
	}
	return p
}

func defaultMounts() []policy.Mount {
	return []policy.Mount{
		{Op: policy.OpTmpfs, Dest: "/", Origin: "default: empty root"},
		{Op: policy.OpBind, Source: "/usr", Dest: "/usr", ReadOnly: true, Origin: "default: system"},
		{Op: policy.OpSymlink, Dest: "/bin", Target: "usr/bin", Origin: "default: system"},
		{Op: policy.OpSymlink, Dest: "/sbin", Target: "usr/sbin", Origin: "default: system"},
		{Op: policy.OpSymlink, Dest: "/lib", Target: "usr/lib", Origin: "default: system"},
		{Op: policy.OpSymlink, Dest: "/lib64", Target: "usr/lib64", Origin: "default: system"},
		{Op: policy.OpBind, Source: "/etc", Dest: "/etc", ReadOnly: true, Origin: "default: system"},
		{Op: policy.OpProc, Dest: "/proc", Origin: "default"},
		{Op: policy.OpDev, Dest: "/dev", Origin: "default"},
		{Op: policy.OpTmpfs, Dest: "/tmp", Mode: 0o1777, Origin: "default: private /tmp"},
		{Op: policy.OpTmpfs, Dest: "/home/alice", Origin: "default: empty $HOME"},
		{Op: policy.OpBind, Source: "/home/alice/src", Dest: "/home/alice/src", ReadOnly: true, NoSymlinks: true, Origin: "default: working directory"},
		{Op: policy.OpRootRO, Dest: "/", Origin: "default: read-only root"},
	}
}

func diffMounts(t *testing.T, got, want []policy.Mount) {
	t.Helper()
	if slices.Equal(got, want) {
		return
	}
	var b strings.Builder
	for i := range max(len(got), len(want)) {
		var g, w policy.Mount
		if i < len(got) {
			g = got[i]
		}
		if i < len(want) {
			w = want[i]
		}
		mark := "  "
		if g != w {
			mark = "! "
		}
		b.WriteString(mark + "got  " + mountString(g) + "\n" + mark + "want " + mountString(w) + "\n")
	}
	t.Fatalf("mounts differ:\n%s", b.String())
}

func mountString(m policy.Mount) string {
	b, _ := json.Marshal(m)
	return string(b)
}

func TestResolveDefault(t *testing.T) {
	h := fakeHost()
	p := mustResolve(t, cmd(), h)
	diffMounts(t, p.Mounts, defaultMounts())
	if p.Version != policy.PlanVersion {
		t.Errorf("Version = %d, want %d", p.Version, policy.PlanVersion)
	}
	if !slices.Equal(p.Argv, cmd().Argv) {
		t.Errorf("Argv = %q", p.Argv)
	}
	if !slices.Equal(p.Env, h.Environ) {
		t.Errorf("Env = %q, want the caller's %q", p.Env, h.Environ)
	}
	if p.Cwd != h.Cwd {
		t.Errorf("Cwd = %q, want %q", p.Cwd, h.Cwd)
	}
	if p.Net != "none" || p.Hostname != "" || p.Timeout != 0 || p.JSONStatus != "" || p.KeepFDs != nil {
		t.Errorf("net %q hostname %q timeout %v json status %q keep fds %v; want none and zero values", p.Net, p.Hostname, p.Timeout, p.JSONStatus, p.KeepFDs)
	}
	if want := (policy.Namespaces{Mount: true, PID: true, IPC: true, UTS: true, Net: true, Cgroup: true}); p.Namespaces != want {
		t.Errorf("Namespaces = %+v, want %+v", p.Namespaces, want)
	}
	want := policy.Security{NoNewPrivs: true, DropCaps: true, DisableUserns: true, NewSession: true, DieWithParent: true, NonDumpable: true,
		CheckFDs: true, Seccomp: policy.Seccomp{Mode: policy.SeccompDefault},
		Landlock: policy.Landlock{Enabled: true, ABI: 6, Scoped: true, Rules: []policy.LandlockRule{
			{Path: "/", Access: "list"}, {Path: "/usr", Access: "read"}, {Path: "/etc", Access: "read"},
			{Path: "/proc", Access: "proc"}, {Path: "/dev", Access: "dev"}, {Path: "/dev/shm", Access: "write"},
			{Path: "/tmp", Access: "write"}, {Path: "/home/alice", Access: "write"}, {Path: "/home/alice/src", Access: "read"},
		}}}
	if !reflect.DeepEqual(p.Security, want) {
		t.Errorf("Security = %+v, want %+v", p.Security, want)
	}
	if len(p.Warnings) != 0 {
		t.Errorf("Warnings = %q, want none", p.Warnings)
	}
}

func TestResolveDoesNotAlias(t *testing.T) {
	h, f := fakeHost(), cmd()
	p := mustResolve(t, f, h)
	h.Environ[0] = "CHANGED=1"
	f.Argv[0] = "changed"
	if p.Env[0] == "CHANGED=1" || p.Argv[0] == "changed" {
		t.Fatalf("the plan shares memory with its inputs: env %q argv %q", p.Env, p.Argv)
	}
}

func TestResolveCwd(t *testing.T) {
	const workdir = "default: working directory"
	tests := []struct {
		cwd     string
		bound   bool
		warning string // a substring of the one warning wanted; "" for none
		refused bool   // without --chdir
	}{
		{cwd: "/home/alice/src", bound: true},
		{cwd: "/home/alicex", bound: true},
		{cwd: "/tmp/work", bound: true},
		{cwd: "/procfs", bound: true},
		{cwd: "/devel/x", bound: true},
		{cwd: "/running", bound: true},
		{cwd: "/"},
		{cwd: "/home/alice", warning: "$HOME"},
		{cwd: "/home", warning: "$HOME"},
		{cwd: "/tmp", warning: "/tmp is private"},
		{cwd: "/proc", refused: true},
		{cwd: "/proc/self/cwd", refused: true},
		{cwd: "/sys/fs/cgroup", refused: true},
		{cwd: "/dev", refused: true},
		{cwd: "/dev/shm", refused: true},
		{cwd: "/run/user/1000", refused: true},
		{cwd: "/var/run", refused: true},
	}
	for _, tt := range tests {
		for _, chdir := range []string{"", "/work"} {
			t.Run(tt.cwd+" --chdir "+chdir, func(t *testing.T) {
				h := fakeHost()
				h.Cwd = tt.cwd
				f := cmd()
				f.Chdir = chdir
				p, err := policy.Resolve(f, h)
				if tt.refused && chdir == "" {
					if err == nil || !errors.Is(err, policy.ErrUsage) || !strings.Contains(err.Error(), "--chdir") || !strings.Contains(err.Error(), tt.cwd) {
						t.Fatalf("Resolve in %s: %v; want a usage error naming the directory and --chdir", tt.cwd, err)
					}
					return
				}
				if err != nil {
					t.Fatalf("Resolve: %v", err)
				}
				i := slices.IndexFunc(p.Mounts, func(m policy.Mount) bool { return m.Origin == workdir })
				if (i >= 0) != tt.bound {
					t.Fatalf("bound = %v, want %v", i >= 0, tt.bound)
				}
				if i >= 0 {
					want := policy.Mount{Op: policy.OpBind, Source: tt.cwd, Dest: tt.cwd, ReadOnly: true, NoSymlinks: true, Origin: workdir}
					if p.Mounts[i] != want {
						t.Fatalf("working directory mount %+v, want %+v", p.Mounts[i], want)
					}
				}
				switch {
				case tt.warning != "" && chdir == "":
					if len(p.Warnings) != 1 || !strings.Contains(p.Warnings[0], tt.warning) {
						t.Fatalf("warnings %q, want one saying %q", p.Warnings, tt.warning)
					}
				case len(p.Warnings) != 0:
					t.Fatalf("warnings %q, want none", p.Warnings)
				}
				want := tt.cwd
				if chdir != "" {
					want = chdir
				}
				if p.Cwd != want {
					t.Fatalf("plan cwd %q, want %q", p.Cwd, want)
				}
			})
		}
	}
}

func TestResolveHome(t *testing.T) {
	h := fakeHost()
	h.Home = "/"
	p := mustResolve(t, cmd(), h)
	if slices.ContainsFunc(p.Mounts, func(m policy.Mount) bool { return m.Origin == "default: empty $HOME" }) {
		t.Errorf("home / got a tmpfs over the root")
	}
	h.Home = "/home/alice/"
	p = mustResolve(t, cmd(), h)
	if i := slices.IndexFunc(p.Mounts, func(m policy.Mount) bool { return m.Origin == "default: empty $HOME" }); i < 0 || p.Mounts[i].Dest != "/home/alice" {
		t.Errorf("home /home/alice/: mounts %v", p.Mounts)
	}
}

func TestResolveSystemDirs(t *testing.T) {
	// A host without usr-merge: every system directory is a directory.
	h := fakeHost()
	h.Root = nil
	for _, name := range []string{"lib64", "etc", "bin", "lib", "usr", "sbin", "opt"} {
		h.Root = append(h.Root, policy.Entry{Name: name, Dir: true})
	}
	p := mustResolve(t, cmd(), h)
	var got []string
	for _, m := range p.Mounts {
		if m.Origin == "default: system" {
			if m.Op != policy.OpBind || !m.ReadOnly || m.Source != m.Dest {
				t.Errorf("system mount %+v, want a read-only bind of the same path", m)
			}
			got = append(got, m.Dest)
		}
	}
	if want := []string{"/usr", "/bin", "/sbin", "/lib", "/lib64", "/etc"}; !slices.Equal(got, want) {
		t.Errorf("system binds %q, want %q (SystemDirs order, /opt left out)", got, want)
	}
}

func TestResolveResolvConf(t *testing.T) {
	const origin = "default: --net host name resolution"
	tests := []struct {
		name       string
		net        string
		link, real string
		bound      bool
	}{
		{"systemd-resolved stub", "host", "/run/systemd/resolve/stub-resolv.conf", "/run/systemd/resolve/stub-resolv.conf", true},
		{"link to a link", "host", "/run/resolvconf/resolv.conf", "/run/x/resolv.conf", true},
		{"only a prefix of /etc", "host", "/etcetera/resolv.conf", "/etcetera/resolv.conf", true},
		{"--net none", "none", "/run/systemd/resolve/stub-resolv.conf", "/run/systemd/resolve/stub-resolv.conf", false},
		{"default net", "", "/run/systemd/resolve/stub-resolv.conf", "/run/systemd/resolve/stub-resolv.conf", false},
		{"not a symlink", "host", "", "", false},
		{"inside /etc", "host", "/etc/resolvconf/run/resolv.conf", "/etc/resolvconf/run/resolv.conf", false},
		{"inside /usr", "host", "/usr/lib/systemd/resolv.conf", "/usr/lib/systemd/resolv.conf", false},
		{"dangling", "host", "/run/systemd/resolve/stub-resolv.conf", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := fakeHost()
			h.ResolvConf, h.ResolvConfReal = tt.link, tt.real
			f := cmd()
			f.Net = tt.net
			p := mustResolve(t, f, h)
			i := slices.IndexFunc(p.Mounts, func(m policy.Mount) bool { return m.Origin == origin })
			if (i >= 0) != tt.bound {
				t.Fatalf("resolv.conf bound = %v, want %v; mounts %v", i >= 0, tt.bound, p.Mounts)
			}
			if i >= 0 {
				want := policy.Mount{Op: policy.OpBind, Source: tt.real, Dest: tt.link, ReadOnly: true, Origin: origin}
				if p.Mounts[i] != want {
					t.Fatalf("resolv.conf mount %+v, want %+v", p.Mounts[i], want)
				}
			}
			if want := tt.net != "host"; p.Namespaces.Net != want {
				t.Errorf("Namespaces.Net = %v with --net %q", p.Namespaces.Net, tt.net)
			}
		})
	}
}

// userMounts are the mounts between the defaults and root-ro.
func userMounts(p *policy.Plan) []policy.Mount {
	var out []policy.Mount
	for _, m := range p.Mounts {
		if strings.HasPrefix(m.Origin, "--") {
			out = append(out, m)
		}
	}
	if last := p.Mounts[len(p.Mounts)-1]; last.Op != policy.OpRootRO {
		panic("root-ro is not last")
	}
	return out
}

func TestResolveFSFlags(t *testing.T) {
	f := cmd()
	f.FS = fs(t,
		"ro", "data",
		"rw", "../out",
		"ro", "/a:b:/mnt/ab",
		"tmpfs", "/scratch/",
		"hide", "/etc/shadow",
		"rw", "/data:/work",
	)
	p := mustResolve(t, f, fakeHost())
	want := []policy.Mount{
		{Op: policy.OpBind, Source: "/home/alice/src/data", Dest: "/home/alice/src/data", ReadOnly: true, Origin: "--ro data"},
		{Op: policy.OpBind, Source: "/home/alice/out", Dest: "/home/alice/out", Origin: "--rw ../out"},
		{Op: policy.OpBind, Source: "/a:b", Dest: "/mnt/ab", ReadOnly: true, Origin: "--ro /a:b:/mnt/ab"},
		{Op: policy.OpTmpfs, Dest: "/scratch", Origin: "--tmpfs /scratch/"},
		{Op: policy.OpBind, Source: "/data", Dest: "/work", Origin: "--rw /data:/work"},
		// Masks go last, whatever their place on the command line.
		{Op: policy.OpHide, Dest: "/etc/shadow", Origin: "--hide /etc/shadow"},
	}
	diffMounts(t, userMounts(p), want)
	diffMounts(t, p.Mounts[:len(p.Mounts)-len(want)-1], defaultMounts()[:len(defaultMounts())-1])
}

func TestResolveRefused(t *testing.T) {
	tests := []struct {
		name   string
		flags  func(*policy.Flags)
		host   func(*policy.Host)
		errHas []string
	}{
		{name: "no command", flags: func(f *policy.Flags) { f.Argv = nil }, errHas: []string{"no COMMAND"}},
		{name: "empty command", flags: func(f *policy.Flags) { f.Argv = []string{""} }, errHas: []string{"no COMMAND"}},
		{name: "relative cwd", host: func(h *policy.Host) { h.Cwd = "src" }, errHas: []string{"not absolute"}},
		{name: "relative home", host: func(h *policy.Host) { h.Home = "" }, errHas: []string{"not absolute"}},
		{name: "bad --net", flags: func(f *policy.Flags) { f.Net = "bridge" }, errHas: []string{"--net"}},
		{name: "bad --hostname", flags: func(f *policy.Flags) { f.Hostname = "-x" }, errHas: []string{"--hostname"}},
		{name: "negative --timeout", flags: func(f *policy.Flags) { f.Timeout = -time.Second }, errHas: []string{"--timeout"}},
		{name: "relative --chdir", flags: func(f *policy.Flags) { f.Chdir = "src" }, errHas: []string{"--chdir"}},
		{name: "--chdir with ..", flags: func(f *policy.Flags) { f.Chdir = "/a/../b" }, errHas: []string{"--chdir"}},
		{name: "source not examined", flags: func(f *policy.Flags) { f.FS = fs(t, "ro", "/nowhere") }, errHas: []string{"--ro /nowhere", "not examined"}},
		{name: "source missing", flags: func(f *policy.Flags) { f.FS = fs(t, "rw", "/missing") }, errHas: []string{"--rw /missing", "no such file"}},
		{name: "relative source missing", flags: func(f *policy.Flags) { f.FS = fs(t, "ro", "../../../missing") }, errHas: []string{"--ro ../../../missing", "/missing"}},
		{name: "source unexaminable", flags: func(f *policy.Flags) { f.FS = fs(t, "ro", "/secret:/s") }, errHas: []string{"--ro /secret:/s", "permission denied"}},
		{name: "relative source resolving to /", flags: func(f *policy.Flags) { f.FS = fs(t, "ro", "../../..") }, errHas: []string{"--ro ../../..", "root"}},
		{name: "duplicate bind destinations", flags: func(f *policy.Flags) { f.FS = fs(t, "ro", "/data", "rw", "/a:/data") }, errHas: []string{"--rw /a:/data", "already the destination of --ro /data"}},
		{name: "duplicate bind and tmpfs", flags: func(f *policy.Flags) { f.FS = fs(t, "ro", "/a:/m", "tmpfs", "/m/") }, errHas: []string{"--tmpfs /m/", "--ro /a:/m"}},
		{name: "duplicate tmpfs and hide", flags: func(f *policy.Flags) { f.FS = fs(t, "hide", "/m", "tmpfs", "/m") }, errHas: []string{"--tmpfs /m", "--hide /m"}},
		{name: "unknown fs kind", flags: func(f *policy.Flags) { f.FS = []policy.FSFlag{{Kind: "overlay", Dest: "/x", Arg: "/x"}} }, errHas: []string{"overlay"}},
		{name: "unchecked bad DEST", flags: func(f *policy.Flags) {
			f.FS = []policy.FSFlag{{Kind: policy.FSTmpfs, Dest: "/x/../y", Arg: "/x/../y"}}
		}, errHas: []string{"--tmpfs /x/../y"}},
		{name: "bad --env", flags: func(f *policy.Flags) { f.Env = []string{"NOEQUALS"} }, errHas: []string{"--env"}},
		{name: "bad --unsetenv", flags: func(f *policy.Flags) { f.Unsetenv = []string{"A=B"} }, errHas: []string{"--unsetenv"}},
		{name: "empty --unsetenv", flags: func(f *policy.Flags) { f.Unsetenv = []string{""} }, errHas: []string{"--unsetenv"}},
		{name: "conflicting --env", flags: func(f *policy.Flags) { f.Env = []string{"A=1", "A=2"} }, errHas: []string{"--env A=2 conflicts with --env A=1"}},
		{name: "--env and --unsetenv", flags: func(f *policy.Flags) { f.Env = []string{"A=1"}; f.Unsetenv = []string{"A"} }, errHas: []string{"--unsetenv A conflicts with --env A=1"}},
		{name: "fd not open", flags: func(f *policy.Flags) { f.PreserveFDs = []int{5} }, errHas: []string{"--preserve-fd 5", "not open"}},
		{name: "fd twice", flags: func(f *policy.Flags) { f.PreserveFDs = []int{3, 4, 3} }, errHas: []string{"--preserve-fd 3", "twice"}},
		{name: "fd 2", flags: func(f *policy.Flags) { f.PreserveFDs = []int{2} }, errHas: []string{"--preserve-fd 2"}},
		{name: "fd negative", flags: func(f *policy.Flags) { f.PreserveFDs = []int{-1} }, errHas: []string{"--preserve-fd -1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, h := cmd(), fakeHost()
			if tt.flags != nil {
				tt.flags(&f)
			}
			if tt.host != nil {
				tt.host(&h)
			}
			p, err := policy.Resolve(f, h)
			if err == nil {
				t.Fatalf("Resolve = %+v, want an error", p)
			}
			if p != nil {
				t.Errorf("Resolve returned a plan with its error")
			}
			if !errors.Is(err, policy.ErrUsage) {
				t.Errorf("error %q does not match ErrUsage", err)
			}
			var ue *policy.UsageError
			if !errors.As(err, &ue) {
				t.Errorf("error %q is not a *UsageError", err)
			}
			for _, s := range tt.errHas {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not say %q", err, s)
				}
			}
		})
	}
}

func TestResolveChdir(t *testing.T) {
	for _, tt := range []struct{ arg, want string }{
		{"", "/home/alice/src"},
		{"/", "/"},
		{"/work/", "/work"},
		{"/a//b/.", "/a/b"},
	} {
		f := cmd()
		f.Chdir = tt.arg
		if p := mustResolve(t, f, fakeHost()); p.Cwd != tt.want {
			t.Errorf("--chdir %q: cwd %q, want %q", tt.arg, p.Cwd, tt.want)
		}
	}
}

func TestResolveBeneath(t *testing.T) {
	tests := []struct {
		name     string
		flags    []string
		src, dst string // SourceBeneath and DestBeneath of the last mount
	}{
		{"inside a --rw grant", []string{"rw", "/a/b", "ro", "/a/b/c"}, "/a/b", "/a/b"},
		{"sharing a prefix only", []string{"rw", "/a/b", "ro", "/a/bc"}, "", ""},
		{"inside a --ro bind", []string{"ro", "/a/b", "ro", "/a/b/c"}, "", ""},
		{"the grant contains it", []string{"rw", "/a", "rw", "/a/b"}, "/a", "/a"},
		{"source inside, dest elsewhere", []string{"rw", "/a", "ro", "/a/b/c:/elsewhere"}, "/a", ""},
		{"dest inside, source elsewhere", []string{"rw", "/a:/w", "ro", "/data:/w/d"}, "", "/w"},
		{"dest shares a prefix only", []string{"rw", "/a:/w", "ro", "/data:/wd"}, "", ""},
		{"source under the grant's source, dest under its dest", []string{"rw", "/a:/w", "ro", "/a/bc:/w/bc"}, "/a", "/w"},
		{"the latest containing grant", []string{"rw", "/a", "rw", "/a/b:/w", "ro", "/a/b/c:/w/c"}, "/a/b", "/w"},
		{"earlier grant when the later does not contain it", []string{"rw", "/a", "rw", "/data", "ro", "/a/bc"}, "/a", "/a"},
		{"tmpfs inside a grant", []string{"rw", "/a", "tmpfs", "/a/t"}, "", "/a"},
		{"hide inside a grant", []string{"rw", "/a:/w", "hide", "/w/secret"}, "", "/w"},
		{"tmpfs sharing a prefix only", []string{"rw", "/a", "tmpfs", "/ab"}, "", ""},
		// Sources are resolved beneath every writable grant, in any order.
		{"grant after the mount", []string{"ro", "/a/b/c", "rw", "/a:/x"}, "/a", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := cmd()
			f.FS = fs(t, tt.flags...)
			p := mustResolve(t, f, fakeHost())
			ms := userMounts(p)
			var m policy.Mount
			if tt.name == "grant after the mount" {
				m = ms[0]
			} else {
				m = ms[len(ms)-1]
			}
			if m.SourceBeneath != tt.src || m.DestBeneath != tt.dst {
				t.Fatalf("%s: source beneath %q, dest beneath %q; want %q, %q", m.Origin, m.SourceBeneath, m.DestBeneath, tt.src, tt.dst)
			}
			if tt.name != "grant after the mount" && (ms[0].SourceBeneath != "" || ms[0].DestBeneath != "") {
				t.Fatalf("first flag %s resolved beneath %q, %q", ms[0].Origin, ms[0].SourceBeneath, ms[0].DestBeneath)
			}
		})
	}
}

func TestResolveEnv(t *testing.T) {
	tests := []struct {
		name    string
		clear   bool
		env     []string
		unset   []string
		environ []string // nil: the fake host's
		want    []string
	}{
		{name: "passthrough", want: []string{"HOME=/home/alice", "PATH=/usr/bin:/bin", "LANG=C.UTF-8", "TERM=xterm"}},
		{name: "clearenv", clear: true, want: nil},
		{name: "clearenv with --env", clear: true, env: []string{"B=2", "A=1"}, want: []string{"B=2", "A=1"}},
		{name: "--env overrides in its own order, after the rest", env: []string{"TERM=dumb", "NEW=1", "HOME=/h"},
			want: []string{"PATH=/usr/bin:/bin", "LANG=C.UTF-8", "TERM=dumb", "NEW=1", "HOME=/h"}},
		{name: "--env given twice alike", env: []string{"A=1", "A=1"}, want: []string{"HOME=/home/alice", "PATH=/usr/bin:/bin", "LANG=C.UTF-8", "TERM=xterm", "A=1"}},
		{name: "--env with an empty value", env: []string{"TERM="}, want: []string{"HOME=/home/alice", "PATH=/usr/bin:/bin", "LANG=C.UTF-8", "TERM="}},
		{name: "--unsetenv", unset: []string{"LANG", "TERM", "NOT_SET"}, want: []string{"HOME=/home/alice", "PATH=/usr/bin:/bin"}},
		{name: "--unsetenv every copy", environ: []string{"A=1", "B=2", "A=3"}, unset: []string{"A"}, want: []string{"B=2"}},
		{name: "--unsetenv everything", environ: []string{"A=1"}, unset: []string{"A"}, want: []string{}},
		{name: "--unsetenv with --clearenv", clear: true, unset: []string{"A"}, env: []string{"B=1"}, want: []string{"B=1"}},
		{name: "--env and --unsetenv of different names", env: []string{"A=1"}, unset: []string{"HOME"},
			want: []string{"PATH=/usr/bin:/bin", "LANG=C.UTF-8", "TERM=xterm", "A=1"}},
		{name: "prefix names are other names", env: []string{"HOMEDIR=/x"}, unset: []string{"PAT"},
			want: []string{"HOME=/home/alice", "PATH=/usr/bin:/bin", "LANG=C.UTF-8", "TERM=xterm", "HOMEDIR=/x"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := fakeHost()
			if tt.environ != nil {
				h.Environ = tt.environ
			}
			f := cmd()
			f.Clearenv, f.Env, f.Unsetenv = tt.clear, tt.env, tt.unset
			p := mustResolve(t, f, h)
			if !reflect.DeepEqual(p.Env, tt.want) && !(len(p.Env) == 0 && len(tt.want) == 0) {
				t.Fatalf("Env = %q, want %q", p.Env, tt.want)
			}
		})
	}
}

func TestResolveKeepFDs(t *testing.T) {
	f := cmd()
	f.PreserveFDs = []int{9, 3}
	p := mustResolve(t, f, fakeHost())
	if !slices.Equal(p.KeepFDs, []int{3, 9}) {
		t.Fatalf("KeepFDs = %v, want [3 9]", p.KeepFDs)
	}
}

func TestResolveOptions(t *testing.T) {
	f := cmd()
	f.Net, f.Hostname, f.Timeout, f.JSONStatus = "host", "box", 90*time.Second, "/tmp/status.json"
	p := mustResolve(t, f, fakeHost())
	if p.Net != "host" || p.Namespaces.Net || p.Hostname != "box" || p.Timeout != 90*time.Second || p.JSONStatus != "/tmp/status.json" {
		t.Fatalf("plan %+v does not carry the options", p)
	}
	if !p.Namespaces.UTS {
		t.Errorf("--hostname without a new UTS namespace")
	}
}

// checkNested checks that every line of nested lies within one line of
// outer, as the kernel requires of a nested namespace's map.
func checkNested(t *testing.T, nested, outer idmap.Map) {
	t.Helper()
	if err := nested.Validate(); err != nil {
		t.Fatalf("nested map %v: %v", nested, err)
	}
	if nested.Size() != outer.Size() {
		t.Fatalf("nested map %v covers %d ids, the outer one %d", nested, nested.Size(), outer.Size())
	}
	for _, l := range nested {
		if l.Inside != l.Outside {
			t.Fatalf("nested line %v is not the identity", l)
		}
		ok := false
		for _, o := range outer {
			if l.Outside >= o.Inside && uint64(l.Outside)+uint64(l.Count) <= uint64(o.Inside)+uint64(o.Count) {
				ok = true
			}
		}
		if !ok {
			t.Fatalf("nested line %v spans lines of %v", l, outer)
		}
	}
}

func TestResolveIdentity(t *testing.T) {
	base := fakeHost()
	subu, subg := base.SubUIDs, base.SubGIDs

	t.Run("helpers and ranges", func(t *testing.T) {
		p := mustResolve(t, cmd(), base)
		id := p.Identity
		if id.Root || id.UID != 1000 || id.GID != 1001 || id.HostUID != 1000 || id.HostGID != 1001 || id.User != "alice" {
			t.Fatalf("identity %+v, want the caller", id)
		}
		if !id.Helpers || id.NewUIDMap != base.NewUIDMap || id.NewGIDMap != base.NewGIDMap {
			t.Fatalf("identity %+v does not use the helpers", id)
		}
		if want := idmap.HostKeepID(1000, 1000, subu); !slices.Equal(id.UIDMap, want) {
			t.Errorf("UIDMap = %v, want %v", id.UIDMap, want)
		}
		if want := idmap.HostKeepID(1001, 1001, subg); !slices.Equal(id.GIDMap, want) {
			t.Errorf("GIDMap = %v, want %v", id.GIDMap, want)
		}
		// Written out: 0..999 are subordinate, the caller is the caller,
		// the rest of the range follows.
		if want := (idmap.Map{{Inside: 0, Outside: 100000, Count: 1000}, {Inside: 1000, Outside: 1000, Count: 1}, {Inside: 1001, Outside: 101000, Count: 64536}}); !slices.Equal(id.UIDMap, want) {
			t.Errorf("UIDMap = %v, want %v", id.UIDMap, want)
		}
		for _, m := range []idmap.Map{id.UIDMap, id.GIDMap} {
			if err := m.Validate(); err != nil {
				t.Errorf("map %v: %v", m, err)
			}
		}
		if out, ok := id.UIDMap.ToOutside(1000); !ok || out != 1000 {
			t.Errorf("uid 1000 -> %d, %v; want 1000", out, ok)
		}
		if out, ok := id.GIDMap.ToOutside(1001); !ok || out != 1001 {
			t.Errorf("gid 1001 -> %d, %v; want 1001", out, ok)
		}
		if id.NestedUIDMap != nil || id.NestedGIDMap != nil {
			t.Errorf("nested maps %v, %v without --root", id.NestedUIDMap, id.NestedGIDMap)
		}
		if len(p.Warnings) != 0 || !p.Security.DropCaps {
			t.Errorf("warnings %q, drop caps %v", p.Warnings, p.Security.DropCaps)
		}
	})

	t.Run("--root with helpers", func(t *testing.T) {
		f := cmd()
		f.Root = true
		p := mustResolve(t, f, base)
		id := p.Identity
		if !id.Root || id.UID != 0 || id.GID != 0 || id.HostUID != 1000 || id.HostGID != 1001 || !id.Helpers {
			t.Fatalf("identity %+v", id)
		}
		if want := idmap.Rootful(1000, subu); !slices.Equal(id.UIDMap, want) {
			t.Errorf("UIDMap = %v, want %v", id.UIDMap, want)
		}
		if want := idmap.Rootful(1001, subg); !slices.Equal(id.GIDMap, want) {
			t.Errorf("GIDMap = %v, want %v", id.GIDMap, want)
		}
		checkNested(t, id.NestedUIDMap, id.UIDMap)
		checkNested(t, id.NestedGIDMap, id.GIDMap)
		if p.Security.DropCaps {
			t.Errorf("--root drops capabilities")
		}
		if len(p.Warnings) != 0 {
			t.Errorf("warnings %q", p.Warnings)
		}
	})

	fallbacks := []struct {
		name string
		host func(*policy.Host)
		fix  string
	}{
		{"no newuidmap", func(h *policy.Host) { h.NewUIDMap = "" }, "apt-get install uidmap"},
		{"no newgidmap", func(h *policy.Host) { h.NewGIDMap = "" }, "apt-get install uidmap"},
		{"neither helpers nor ranges", func(h *policy.Host) { h.NewUIDMap, h.NewGIDMap, h.SubUIDs, h.SubGIDs = "", "", nil, nil }, "apt-get install uidmap"},
		{"no subuids", func(h *policy.Host) { h.SubUIDs = nil }, "usermod --add-subuids"},
		{"no subgids", func(h *policy.Host) { h.SubGIDs = nil }, "usermod --add-subuids"},
		{"only the caller's own id as a range", func(h *policy.Host) {
			h.SubUIDs = []idmap.Range{{Start: 1000, Count: 1}}
		}, "usermod --add-subuids"},
	}
	for _, tt := range fallbacks {
		for _, root := range []bool{false, true} {
			name := tt.name
			if root {
				name += " --root"
			}
			t.Run(name, func(t *testing.T) {
				h := fakeHost()
				tt.host(&h)
				f := cmd()
				f.Root = root
				p := mustResolve(t, f, h)
				id := p.Identity
				if len(p.Warnings) != 1 || !strings.Contains(p.Warnings[0], "fix: ") || !strings.Contains(p.Warnings[0], tt.fix) {
					t.Fatalf("warnings %q, want exactly one naming the fix %q", p.Warnings, tt.fix)
				}
				if id.Helpers || id.NewUIDMap != "" || id.NewGIDMap != "" {
					t.Fatalf("identity %+v uses helpers", id)
				}
				uid, gid := uint32(1000), uint32(1001) // inside: the caller's own ids
				if root {
					uid, gid = 0, 0
				}
				if want := idmap.Single(uid, 1000); !slices.Equal(id.UIDMap, want) {
					t.Errorf("UIDMap = %v, want %v", id.UIDMap, want)
				}
				if want := idmap.Single(gid, 1001); !slices.Equal(id.GIDMap, want) {
					t.Errorf("GIDMap = %v, want %v", id.GIDMap, want)
				}
				if root {
					checkNested(t, id.NestedUIDMap, id.UIDMap)
					checkNested(t, id.NestedGIDMap, id.GIDMap)
				} else if id.NestedUIDMap != nil {
					t.Errorf("nested map without --root")
				}
			})
		}
	}
}

func TestResolveGIDMapWithoutRoot(t *testing.T) {
	// GIDs: inside the caller's own gid, not its uid.
	h := fakeHost()
	h.NewUIDMap = ""
	p := mustResolve(t, cmd(), h)
	if want := idmap.Single(1001, 1001); !slices.Equal(p.Identity.GIDMap, want) {
		t.Fatalf("GIDMap = %v, want %v", p.Identity.GIDMap, want)
	}
}

func TestPlanJSONRoundTrip(t *testing.T) {
	full := cmd()
	full.Root, full.Net, full.Hostname, full.Timeout, full.JSONStatus = true, "host", "box", 5*time.Minute, "/tmp/s.json"
	full.Env, full.Unsetenv, full.PreserveFDs, full.Chdir = []string{"A=1"}, []string{"TERM"}, []int{4, 3}, "/work"
	full.FS = fs(t, "rw", "/a:/work", "ro", "/a/b:/work/b", "tmpfs", "/work/t", "hide", "/etc/shadow")
	noHelpers := fakeHost()
	noHelpers.NewUIDMap = ""
	cleared := cmd()
	cleared.Clearenv = true

	for _, tt := range []struct {
		name string
		f    policy.Flags
		h    policy.Host
	}{
		{"default", cmd(), fakeHost()},
		{"every option", full, fakeHost()},
		{"no helpers", cmd(), noHelpers},
		{"empty env", cleared, fakeHost()},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := mustResolve(t, tt.f, tt.h)
			b, err := p.JSON()
			if err != nil {
				t.Fatal(err)
			}
			var back policy.Plan
			dec := json.NewDecoder(bytes.NewReader(b))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&back); err != nil {
				t.Fatalf("decode %s: %v", b, err)
			}
			if !reflect.DeepEqual(*p, back) {
				t.Fatalf("round trip changed the plan:\n got %+v\nwant %+v", back, *p)
			}
		})
	}
}

func TestPlanGolden(t *testing.T) {
	p := mustResolve(t, cmd(), fakeHost())
	got, err := p.JSON()
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, '\n')
	file := filepath.Join("testdata", "default.golden.json")
	if *update {
		if err := os.WriteFile(file, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("%v (run go test ./policy -run TestPlanGolden -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("the default plan's JSON changed; if that is meant, run go test ./policy -run TestPlanGolden -update and review the diff\n got:\n%s\nwant:\n%s", got, want)
	}
}

// A source the caller cannot use is an error, but an optional one (a
// profile's cache "where it exists", left root's by sudo) is left out,
// with a warning.
func TestSourceDenied(t *testing.T) {
	h := fakeHost()
	h.Paths["/home/u/.cache/pip"] = policy.PathInfo{Err: policy.PathDenied}
	fl := policy.FSFlag{Kind: policy.FSRw, Source: "/home/u/.cache/pip", Arg: "/home/u/.cache/pip"}
	if _, err := policy.Resolve(flagsFor(func(f *policy.Flags) { f.FS = []policy.FSFlag{fl} }), h); err == nil || !strings.Contains(err.Error(), "permission denied") {
		t.Errorf("a source the caller cannot use: %v, want permission denied", err)
	}
	fl.Optional = true
	p := mustResolve(t, flagsFor(func(f *policy.Flags) { f.FS = []policy.FSFlag{fl} }), h)
	for _, m := range p.Mounts {
		if m.Source == fl.Source {
			t.Errorf("the optional source was bound: %+v", m)
		}
	}
	if !slices.ContainsFunc(p.Warnings, func(w string) bool { return strings.Contains(w, "/home/u/.cache/pip: permission denied: left out") }) {
		t.Errorf("no warning that the optional source was left out: %q", p.Warnings)
	}
}
