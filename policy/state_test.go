package policy_test

import (
	"strings"
	"testing"
	"time"

	"sbx/policy"
)

func TestFindState(t *testing.T) {
	states := []policy.State{{ID: "a1b2c3d4e5f6"}, {ID: "a1ff00000000"}, {ID: "b00000000000"}}
	for _, tt := range []struct {
		prefix, want, err string
	}{
		{"a1b2", "a1b2c3d4e5f6", ""},
		{"b", "b00000000000", ""},
		{"a1b2c3d4e5f6", "a1b2c3d4e5f6", ""},
		{"a1", "", "more than one sandbox: a1b2c3d4e5f6, a1ff00000000"},
		{"c", "", `no running sandbox "c"`},
		{"", "", "no sandbox id given"},
	} {
		got, err := policy.FindState(states, tt.prefix)
		switch {
		case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
			t.Errorf("%q: error %v, want %q", tt.prefix, err, tt.err)
		case tt.err == "" && (err != nil || got.ID != tt.want):
			t.Errorf("%q: %q, %v; want %q", tt.prefix, got.ID, err, tt.want)
		}
	}
}

func TestWritePS(t *testing.T) {
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	rows := []policy.Running{
		{State: policy.State{ID: "bbbbbbbbbbbb", PID: 42, Started: now.Add(-90 * time.Second), Argv: []string{"make", "-j4"},
			Profiles: []string{"builtin:build.toml"}, Limits: policy.Limits{MemoryMax: 512 << 20, PidsMax: 256}},
			Usage: policy.Usage{Known: true, Memory: 3 << 20, Pids: 5}},
		{State: policy.State{ID: "aaaaaaaaaaaa", PID: 7, Started: now.Add(-3 * time.Hour), Argv: []string{"sh", "-c", "echo 'hi'\x1b[2J"}}},
	}
	var b strings.Builder
	if err := policy.WritePS(&b, rows, now); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "ID ") {
		t.Fatalf("table:\n%s", b.String())
	}
	// Oldest first; fields as rendered.
	for _, want := range []string{"aaaaaaaaaaaa", "7", "3h", "sh -c 'echo '\\''hi'\\''?[2J'"} {
		if !strings.Contains(lines[1], want) {
			t.Errorf("line %q lacks %q", lines[1], want)
		}
	}
	for _, want := range []string{"bbbbbbbbbbbb", "42", "1m", "build", "mem 512M, pids 256", "mem 3M, 5 tasks", "make -j4"} {
		if !strings.Contains(lines[2], want) {
			t.Errorf("line %q lacks %q", lines[2], want)
		}
	}
	if strings.ContainsRune(b.String(), 0x1b) {
		t.Error("an escape character reached the table")
	}
}

// A bind that shows sbx's state gets it hidden; none without a runtime
// directory.
func TestStateHidden(t *testing.T) {
	h := fakeHost()
	h.StateRoot = "/run/user/1000"
	h.Paths["/run/user/1000"] = policy.PathInfo{Exists: true, Dir: true}
	h.Paths["/run"] = policy.PathInfo{Exists: true, Dir: true}
	h.Paths["/home/u/rt"] = policy.PathInfo{Exists: true, Dir: true, Real: "/run/user/1000"}
	h.Paths["/var/run"] = policy.PathInfo{Exists: true, Dir: true, Real: "/run"}
	for _, tt := range []struct {
		fs   []policy.FSFlag
		hide string
	}{
		{[]policy.FSFlag{{Kind: policy.FSRw, Source: "/run/user/1000", Dest: "/run/user/1000", Arg: "/run/user/1000"}}, "/run/user/1000/sbx"},
		{[]policy.FSFlag{{Kind: policy.FSRo, Source: "/run", Dest: "/hostrun", Arg: "/run:/hostrun"}}, "/hostrun/user/1000/sbx"},
		// Another name for the runtime directory (a link to it).
		{[]policy.FSFlag{{Kind: policy.FSRo, Source: "/home/u/rt", Dest: "/x", Arg: "/home/u/rt:/x"}}, "/x/sbx"},
		{[]policy.FSFlag{{Kind: policy.FSRo, Source: "/var/run", Dest: "/vr", Arg: "/var/run:/vr"}}, "/vr/user/1000/sbx"},
		{nil, ""},
	} {
		p := mustResolve(t, flagsFor(func(f *policy.Flags) { f.FS = tt.fs }), h)
		if p.StateDir != "/run/user/1000/sbx/run" {
			t.Errorf("state dir %q", p.StateDir)
		}
		var hides []string
		for _, m := range p.Mounts {
			if m.Op == policy.OpHide {
				hides = append(hides, m.Dest)
			}
		}
		if tt.hide == "" && len(hides) != 0 || tt.hide != "" && (len(hides) != 1 || hides[0] != tt.hide) {
			t.Errorf("%v: hides %q, want %q", tt.fs, hides, tt.hide)
		}
		if last := p.Mounts[len(p.Mounts)-1]; last.Op != policy.OpRootRO {
			t.Errorf("the last operation is %v", last.Op)
		}
	}
	// Inside the state, a bind is refused: there is nothing to hide it in.
	h.Paths["/run/user/1000/sbx/run"] = policy.PathInfo{Exists: true, Dir: true}
	if _, err := policy.Resolve(flagsFor(func(f *policy.Flags) {
		f.FS = []policy.FSFlag{{Kind: policy.FSRo, Source: "/run/user/1000/sbx/run", Dest: "/x", Arg: "/run/user/1000/sbx/run:/x"}}
	}), h); err == nil || !strings.Contains(err.Error(), "sbx's own state") {
		t.Errorf("a bind of sbx's run directory: %v, want it refused", err)
	}
	h.StateRoot = ""
	if p := mustResolve(t, flagsFor(nil), h); p.StateDir != "" {
		t.Errorf("state dir %q without a runtime directory", p.StateDir)
	}
}
