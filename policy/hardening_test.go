package policy_test

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"sbx/policy"
)

func flagsFor(extra func(*policy.Flags)) policy.Flags {
	f := policy.Flags{Argv: []string{"true"}}
	if extra != nil {
		extra(&f)
	}
	return f
}

// Each host that lacks a layer: a warning that names what is dropped,
// or, with --strict, an error that does.
func TestHardeningDrops(t *testing.T) {
	tests := []struct {
		name    string
		host    func(*policy.Host)
		flags   func(*policy.Flags)
		drop    string // a fragment of the warning / the strict error
		check   func(*testing.T, *policy.Plan)
		noError bool // strict still succeeds (nothing dropped)
	}{
		{name: "everything", noError: true, check: func(t *testing.T, p *policy.Plan) {
			s := p.Security
			if s.Seccomp.Mode != policy.SeccompDefault || !s.Landlock.Enabled || s.Landlock.ABI != 6 || !s.Landlock.Scoped || !s.CheckFDs {
				t.Errorf("security %+v", s)
			}
		}},
		{name: "no landlock", host: func(h *policy.Host) { h.LandlockABI = 0 }, drop: "the Landlock layer (this kernel has no Landlock",
			check: func(t *testing.T, p *policy.Plan) {
				if p.Security.Landlock.Enabled || len(p.Security.Landlock.Rules) != 0 {
					t.Errorf("landlock %+v on a kernel without it", p.Security.Landlock)
				}
			}},
		{name: "landlock abi 1", host: func(h *policy.Host) { h.LandlockABI = 1 },
			drop: "ABI 1 cannot enforce: renames and links across directories (refer, ABI 2), truncation (ABI 3), device ioctls (ABI 5), abstract unix socket and signal scoping (ABI 6)",
			check: func(t *testing.T, p *policy.Plan) {
				if ll := p.Security.Landlock; !ll.Enabled || ll.ABI != 1 || ll.Scoped {
					t.Errorf("landlock %+v", ll)
				}
			}},
		{name: "landlock abi 5", host: func(h *policy.Host) { h.LandlockABI = 5 }, drop: "ABI 5 cannot enforce: abstract unix socket and signal scoping (ABI 6)"},
		{name: "landlock abi 9", host: func(h *policy.Host) { h.LandlockABI = 9 }, noError: true, check: func(t *testing.T, p *policy.Plan) {
			if p.Security.Landlock.ABI != policy.LandlockFullABI {
				t.Errorf("ABI %d, want the rules written for %d", p.Security.Landlock.ABI, policy.LandlockFullABI)
			}
		}},
		{name: "no seccomp", host: func(h *policy.Host) { h.SeccompFilter = false }, drop: "the seccomp filter (this kernel has no seccomp filters)",
			check: func(t *testing.T, p *policy.Plan) {
				if p.Security.Seccomp.Mode != policy.SeccompUnconfined {
					t.Errorf("seccomp %q on a kernel without filters", p.Security.Seccomp.Mode)
				}
			}},
		{name: "no notification", host: func(h *policy.Host) { h.SeccompNotify = false }, flags: func(f *policy.Flags) { f.LogDenied = true },
			drop: "--log-denied (this kernel has no seccomp user notification",
			check: func(t *testing.T, p *policy.Plan) {
				if p.Security.Seccomp.LogDenied {
					t.Error("log_denied kept without notifications")
				}
			}},
		{name: "no notification, not asked", host: func(h *policy.Host) { h.SeccompNotify = false }, noError: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := fakeHost()
			if tt.host != nil {
				tt.host(&h)
			}
			p := mustResolve(t, flagsFor(tt.flags), h)
			var found bool
			for _, w := range p.Warnings {
				if strings.HasPrefix(w, "hardening dropped: ") {
					if tt.drop == "" || !strings.Contains(w, tt.drop) {
						t.Errorf("warning %q, want one with %q", w, tt.drop)
					}
					found = true
				}
			}
			if tt.drop != "" && !found {
				t.Errorf("warnings %q: none says %q", p.Warnings, tt.drop)
			}
			if tt.check != nil {
				tt.check(t, p)
			}
			_, err := policy.Resolve(flagsFor(func(f *policy.Flags) {
				if tt.flags != nil {
					tt.flags(f)
				}
				f.Strict = true
			}), h)
			switch {
			case tt.noError && err != nil:
				t.Errorf("--strict: %v", err)
			case !tt.noError && (err == nil || !strings.Contains(err.Error(), "--strict: this host cannot give") || !strings.Contains(err.Error(), tt.drop)):
				t.Errorf("--strict: error %v, want one naming %q", err, tt.drop)
			case !tt.noError && !errors.Is(err, policy.ErrUsage):
				t.Errorf("--strict: %v is not a usage error (exit 125)", err)
			}
		})
	}
}

func TestHardeningChoices(t *testing.T) {
	h := fakeHost()
	p := mustResolve(t, flagsFor(func(f *policy.Flags) { f.Seccomp = "unconfined" }), h)
	if p.Security.Seccomp.Mode != policy.SeccompUnconfined || !hasWarning(p, "--seccomp unconfined") {
		t.Errorf("unconfined: %+v, warnings %q", p.Security.Seccomp, p.Warnings)
	}
	// An explicit choice is no drop: --strict lets it be.
	if _, err := policy.Resolve(flagsFor(func(f *policy.Flags) { f.Seccomp, f.NoLandlock, f.Strict = "unconfined", true, true }), h); err != nil {
		t.Errorf("--strict with explicit choices: %v", err)
	}
	p = mustResolve(t, flagsFor(func(f *policy.Flags) { f.Seccomp, f.SeccompJSON = "/etc/p.json", []byte(`{}`) }), h)
	if s := p.Security.Seccomp; s.Mode != policy.SeccompProfile || s.Path != "/etc/p.json" || s.JSON != "{}" {
		t.Errorf("profile: %+v", s)
	}
	p = mustResolve(t, flagsFor(func(f *policy.Flags) { f.NoLandlock = true }), h)
	if p.Security.Landlock.Enabled || !hasWarning(p, "--no-landlock") {
		t.Errorf("--no-landlock: %+v, warnings %q", p.Security.Landlock, p.Warnings)
	}
	if _, err := policy.Resolve(flagsFor(func(f *policy.Flags) { f.Seccomp, f.LogDenied = "unconfined", true }), h); err == nil {
		t.Error("--log-denied with --seccomp unconfined: accepted")
	}
}

func hasWarning(p *policy.Plan, frag string) bool {
	for _, w := range p.Warnings {
		if strings.Contains(w, frag) {
			return true
		}
	}
	return false
}

// The rules follow the view: a hidden path gets no rule of its own (it
// is an empty read-only mount under its parent's rule), /dev/shm stays
// writable, the root is only listed.
func TestLandlockRules(t *testing.T) {
	h := fakeHost()
	f := flagsFor(func(f *policy.Flags) {
		f.FS = []policy.FSFlag{
			{Kind: policy.FSRw, Source: "/data", Dest: "/data", Arg: "/data"},
			{Kind: policy.FSTmpfs, Dest: "/out", Arg: "/out"},
			{Kind: policy.FSRo, Source: "/a", Dest: "/a", Arg: "/a"},
			{Kind: policy.FSHide, Dest: "/a/b", Arg: "/a/b"},
		}
	})
	p := mustResolve(t, f, h)
	got := map[string]string{}
	for _, r := range p.Security.Landlock.Rules {
		got[r.Path] = r.Access
	}
	want := map[string]string{
		"/": "list", "/usr": "read", "/etc": "read", "/proc": "proc", "/dev": "dev", "/dev/shm": "write",
		"/tmp": "write", "/home/alice": "write", "/home/alice/src": "read",
		"/data": "write", "/out": "write", "/a": "read",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("rules %v\nwant  %v", got, want)
	}
}

// A profile's [security] section, and the flags over it.
func TestApplySecurity(t *testing.T) {
	pr, err := policy.DecodeProfile("p.toml", []byte("version = 1\n[security]\nseccomp = \"$HOME/seccomp.json\"\nlandlock = false\nstrict = true\nlog_denied = true\n"))
	if err != nil {
		t.Fatal(err)
	}
	f, o, err := policy.ApplyProfiles([]*policy.Profile{pr}, testVars(), policy.Flags{})
	if err != nil {
		t.Fatal(err)
	}
	if f.Seccomp != testVars()["HOME"]+"/seccomp.json" || !f.NoLandlock || !f.Strict || !f.LogDenied {
		t.Errorf("flags %+v", f)
	}
	if o["security.seccomp"] != "p.toml:3" || o["security.landlock"] != "p.toml:4" {
		t.Errorf("origins %v", o)
	}
	f, o, err = policy.ApplyProfiles([]*policy.Profile{pr}, testVars(), policy.Flags{Seccomp: "default"})
	if err != nil {
		t.Fatal(err)
	}
	if f.Seccomp != "default" || o["security.seccomp"] != "flag --seccomp" {
		t.Errorf("the flag does not win: %q from %q", f.Seccomp, o["security.seccomp"])
	}
}
