package policy

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
)

// JSON renders the plan as indented JSON.
func (p *Plan) JSON() ([]byte, error) {
	return json.MarshalIndent(p, "", "  ")
}

// WriteText renders the plan for people: every value with where it came
// from.
func (p *Plan) WriteText(w io.Writer) error {
	var b strings.Builder
	pf := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	id := p.Identity
	pf("command      %s\n", quoteArgv(p.Argv))
	if p.Argv0 != "" {
		pf("argv[0]      %s (--argv0)\n", quoteArgv([]string{p.Argv0}))
	}
	pf("cwd          %s\n", p.Cwd)
	who := fmt.Sprintf("uid %d gid %d", id.UID, id.GID)
	if id.Root {
		who += " (--root: capabilities in its own user namespace only)"
	} else {
		who += " (the caller; no capabilities)"
	}
	pf("identity     %s\n", who)
	how := "newuidmap/newgidmap"
	if !id.Helpers {
		how = "single-id map, written by sbx"
	}
	pf("uid map      %s (%s)\n", mapLine(id.UIDMap.String()), how)
	pf("gid map      %s\n", mapLine(id.GIDMap.String()))
	if len(id.NestedUIDMap) > 0 {
		pf("payload map  uid %s; gid %s (nested user namespace)\n", mapLine(id.NestedUIDMap.String()), mapLine(id.NestedGIDMap.String()))
	}
	ns := []string{"user"}
	for _, n := range []struct {
		on   bool
		name string
	}{{p.Namespaces.Mount, "mount"}, {p.Namespaces.PID, "pid"}, {p.Namespaces.IPC, "ipc"}, {p.Namespaces.UTS, "uts"}, {p.Namespaces.Net, "net"}, {p.Namespaces.Cgroup, "cgroup"}} {
		if n.on {
			ns = append(ns, n.name)
		}
	}
	pf("namespaces   %s (all new)\n", strings.Join(ns, " "))
	// Where a value came from: the origin recorded, else the flag.
	org := func(key, flag string) string {
		if o, ok := p.Origins[key]; ok {
			return " [" + o + "]"
		}
		if flag != "" {
			return " (" + flag + ")"
		}
		return ""
	}
	if p.Net == "host" {
		pf("network      host (the host's network namespace)%s\n", org("net", ""))
	} else {
		pf("network      none (loopback only)%s\n", org("net", ""))
	}
	if p.Hostname != "" {
		pf("hostname     %s%s\n", p.Hostname, org("hostname", "--hostname"))
	}
	s := p.Security
	pf("security     no_new_privs=%t drop_caps=%t disable_userns=%t new_session=%t die_with_parent=%t\n",
		s.NoNewPrivs, s.DropCaps, s.DisableUserns, s.NewSession, s.DieWithParent)
	seccomp := s.Seccomp.Mode
	switch {
	case seccomp == SeccompProfile:
		seccomp = "profile " + s.Seccomp.Path + " (and TIOCSTI, TIOCLINUX refused)"
	case seccomp == SeccompDefault:
		seccomp = "default (Docker's default for an unprivileged process; TIOCSTI, TIOCLINUX, namespaces, the mount API refused; native ABI only)"
	}
	if s.Seccomp.LogDenied {
		seccomp += ", refusals logged"
	}
	pf("seccomp      %s%s\n", seccomp, org("security.seccomp", ""))
	if ll := s.Landlock; ll.Enabled {
		scoped := ""
		if ll.Scoped {
			scoped = ", abstract unix sockets and signals scoped"
		}
		pf("landlock     %d rules (of ABI %d)%s%s\n", len(ll.Rules), ll.ABI, scoped, org("security.landlock", ""))
		for _, r := range ll.Rules {
			pf("  %-6s %s\n", r.Access, r.Path)
		}
	} else {
		pf("landlock     off%s\n", org("security.landlock", ""))
	}
	if s.Strict {
		pf("strict       every hardening layer required%s\n", org("security.strict", ""))
	}
	if l := p.Limits; l.Any() {
		var parts []string
		add := func(key, text string) {
			if o, ok := p.Origins[key]; ok {
				text += " [" + o + "]"
			}
			parts = append(parts, text)
		}
		if l.MemoryMax != 0 {
			add("limits.memory", "memory "+FormatSize(l.MemoryMax)+" (swap "+FormatSize(l.MemorySwapMax)+")")
		}
		if l.CPUQuota != 0 {
			add("limits.cpus", fmt.Sprintf("cpus %g", float64(l.CPUQuota)/float64(l.CPUPeriod)))
		}
		if l.PidsMax != 0 {
			add("limits.pids", fmt.Sprintf("pids %d", l.PidsMax))
		}
		if l.CPUWeight != 0 {
			add("limits.cpu_weight", fmt.Sprintf("cpu-weight %d", l.CPUWeight))
		}
		if l.IOWeight != 0 {
			add("limits.io_weight", fmt.Sprintf("io-weight %d", l.IOWeight))
		}
		pf("limits       %s\n", strings.Join(parts, ", "))
	}
	if c := p.Cgroup; c != nil {
		mount := c.Mount
		if mount == "" {
			mount = "none found"
		}
		pf("cgroup       a scope with Delegate=yes from the systemd user manager; cgroup2 at %s; needs %s\n", mount, strings.Join(append([]string{"no controller"}, c.Controllers...)[min(1, len(c.Controllers)):], " "))
	}
	if p.PTY != nil {
		pf("terminal     a pseudo-terminal of its own, relayed by sbx (--no-pty: none)\n")
	}
	if p.Timeout > 0 {
		pf("timeout      %s%s\n", p.Timeout, org("timeout", "--timeout"))
	}
	if len(p.IgnoredSignals) > 0 {
		var names []string
		for _, sig := range p.IgnoredSignals {
			names = append(names, signalName(sig))
		}
		pf("ignored      %s (ignored by the caller: the payload starts ignoring them too)\n", strings.Join(names, " "))
	}
	if len(p.KeepFDs) > 0 {
		pf("keep fds     %v (--preserve-fd)\n", p.KeepFDs)
	}
	if p.JSONStatus != "" {
		pf("json status  %s (--json-status)\n", p.JSONStatus)
	}
	pf("mounts\n")
	for i, m := range p.Mounts {
		pf("  %2d  %-8s %s  [%s]\n", i+1, m.Op, describeMount(m), m.Origin)
	}
	pf("environment  %d variables\n", len(p.Env))
	for _, kv := range p.Env {
		k, _, _ := strings.Cut(kv, "=")
		pf("  %s\n", k)
	}
	if len(p.Profiles) > 0 {
		pf("profiles     %s\n", strings.Join(p.Profiles, " -> "))
	}
	if len(p.Origins) > 0 {
		pf("origins      (values not from the built-in defaults)\n")
		keys := make([]string, 0, len(p.Origins))
		for k := range p.Origins {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			pf("  %-20s %s\n", k, p.Origins[k])
		}
	}
	for _, wmsg := range p.Warnings {
		pf("warning      %s\n", wmsg)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func describeMount(m Mount) string {
	switch m.Op {
	case OpBind:
		mode := "rw"
		if m.ReadOnly {
			mode = "ro"
		}
		s := m.Dest + " ← " + m.Source + " (" + mode + ")"
		if m.SourceBeneath != "" {
			s += " resolved beneath " + m.SourceBeneath
		}
		return s
	case OpSymlink:
		return m.Dest + " → " + m.Target
	case OpRootRO:
		return "/"
	}
	return m.Dest
}

func mapLine(s string) string {
	return strings.ReplaceAll(strings.TrimSpace(s), "\n", ", ")
}

func quoteArgv(argv []string) string {
	q := make([]string, len(argv))
	for i, a := range argv {
		if a == "" || strings.ContainsAny(a, " \t\n'\"\\$`*?[]{}()<>|&;#~") {
			q[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		} else {
			q[i] = a
		}
	}
	return strings.Join(q, " ")
}

// signalName names the signals sbx forwards (their numbers are Linux's
// on every architecture sbx builds for).
func signalName(sig int) string {
	if n, ok := map[int]string{1: "SIGHUP", 2: "SIGINT", 3: "SIGQUIT", 10: "SIGUSR1", 12: "SIGUSR2",
		15: "SIGTERM", 18: "SIGCONT", 28: "SIGWINCH"}[sig]; ok {
		return n
	}
	return fmt.Sprintf("signal %d", sig)
}
