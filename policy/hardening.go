package policy

import (
	"fmt"
	"path"
	"strings"
)

// LandlockFullABI is the Landlock ABI that has every right sbx uses:
// refer (2), truncate (3), device ioctls (5), scoping of abstract unix
// sockets and signals (6).
const LandlockFullABI = 6

// landlockDrops lists, for a kernel's ABI, what of sbx's Landlock layer
// it cannot enforce.
func landlockDrops(abi int) []string {
	var out []string
	for _, d := range []struct {
		abi  int
		what string
	}{
		{2, "renames and links across directories (refer, ABI 2)"},
		{3, "truncation (ABI 3)"},
		{5, "device ioctls (ABI 5)"},
		{6, "abstract unix socket and signal scoping (ABI 6)"},
	} {
		if abi < d.abi {
			out = append(out, d.what)
		}
	}
	return out
}

// hardening resolves the seccomp and Landlock layers and --strict: what
// the user asked against what the host can give. Best effort warns and
// names what is dropped; with Strict a drop is an error.
func hardening(f Flags, h Host, p *Plan) error {
	s := &p.Security
	s.CheckFDs = true
	s.Strict = f.Strict
	var drops []string
	drop := func(what string) { drops = append(drops, what) }

	switch f.Seccomp {
	case "", SeccompDefault:
		s.Seccomp.Mode = SeccompDefault
	case SeccompUnconfined:
		s.Seccomp.Mode = SeccompUnconfined
		p.Warnings = append(p.Warnings, "--seccomp unconfined: no system call filter; the payload can use every system call the kernel lets an unprivileged user make")
	default:
		if strings.ContainsRune(f.Seccomp, 0) {
			return fmt.Errorf("--seccomp %q: NUL in path", f.Seccomp)
		}
		s.Seccomp.Mode = SeccompProfile
		s.Seccomp.Path = f.Seccomp
		s.Seccomp.JSON = string(f.SeccompJSON)
	}
	s.Seccomp.LogDenied = f.LogDenied
	if s.Seccomp.Mode != SeccompUnconfined && !h.SeccompFilter {
		drop("the seccomp filter (this kernel has no seccomp filters)")
		s.Seccomp.Mode = SeccompUnconfined
	}
	if f.LogDenied {
		switch {
		case s.Seccomp.Mode == SeccompUnconfined:
			if f.Seccomp == SeccompUnconfined {
				return fmt.Errorf("--log-denied with --seccomp unconfined: nothing is denied")
			}
		case !h.SeccompNotify:
			drop("--log-denied (this kernel has no seccomp user notification for unprivileged users, Linux 5.0+)")
			s.Seccomp.LogDenied = false
		}
	}

	if f.NoLandlock {
		p.Warnings = append(p.Warnings, "--no-landlock: no Landlock layer; the mount view is the only limit on what the payload reaches by path")
	} else {
		ll := &s.Landlock
		ll.ABI = min(h.LandlockABI, LandlockFullABI)
		switch {
		case h.LandlockABI < 1:
			drop("the Landlock layer (this kernel has no Landlock: Linux 5.13+ with landlock in the lsm= list)")
		default:
			ll.Enabled = true
			ll.Rules = landlockRules(p.Mounts)
			ll.Scoped = h.LandlockABI >= 6
			if d := landlockDrops(h.LandlockABI); len(d) > 0 {
				drop(fmt.Sprintf("Landlock rules the kernel's ABI %d cannot enforce: %s", h.LandlockABI, strings.Join(d, ", ")))
			}
		}
	}

	for _, d := range drops {
		if f.Strict {
			return fmt.Errorf("--strict: this host cannot give %s", d)
		}
		p.Warnings = append(p.Warnings, "hardening dropped: "+d+" (--strict makes this an error)")
	}
	return nil
}

// landlockRules mirrors the view: each mount's destination gets the
// access its mount gives (a destination has one mount: Resolve refuses
// two). The root tmpfs is only listed; a hidden path gets no rule of its
// own: it is an empty read-only mount under its parent's rule.
func landlockRules(ms []Mount) []LandlockRule {
	var rules []LandlockRule
	at := map[string]int{}
	set := func(dest, access string) {
		if i, ok := at[dest]; ok {
			rules[i].Access = access
			return
		}
		at[dest] = len(rules)
		rules = append(rules, LandlockRule{Path: dest, Access: access})
	}
	for _, m := range ms {
		switch m.Op {
		case OpTmpfs:
			switch {
			case m.Dest == "/":
				set("/", AccessList)
			case m.ReadOnly:
				set(m.Dest, AccessRead)
			default:
				set(m.Dest, AccessWrite)
			}
		case OpBind:
			if m.ReadOnly {
				set(m.Dest, AccessRead)
			} else {
				set(m.Dest, AccessWrite)
			}
		case OpProc:
			set(m.Dest, AccessProc)
		case OpDev:
			set(m.Dest, AccessDev)
			set(path.Join(m.Dest, "shm"), AccessWrite)
		}
	}
	return rules
}
