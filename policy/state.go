package policy

import (
	"fmt"
	"io"
	"path"
	"slices"
	"strings"
	"time"
)

// StateDir is where sandboxes are recorded under a state root (see
// Host.StateRoot).
func StateDir(root string) string {
	if !path.IsAbs(root) {
		return ""
	}
	return path.Join(root, "sbx", "run")
}

// State is what sbx run records of a running sandbox, in
// StateDir/ID/state.json, for sbx ps, stop and exec.
type State struct {
	ID       string    `json:"id"`
	PID      int       `json:"pid"`      // sbx run's, on the host
	InitPID  int       `json:"init_pid"` // the sandbox's PID 1, on the host
	Started  time.Time `json:"started"`
	Argv     []string  `json:"argv"`
	Cwd      string    `json:"cwd"`
	Profiles []string  `json:"profiles,omitempty"`
	Root     bool      `json:"root,omitempty"`
	Net      string    `json:"net"`
	Limits   Limits    `json:"limits"`
	// Cgroup is the sandbox's leaf (an absolute path in the cgroup2
	// mount), "" without one.
	Cgroup string `json:"cgroup,omitempty"`
}

// NewState is the record of plan p as sandbox id, started at t by pid,
// with PID 1 initPID.
func NewState(p *Plan, id string, pid, initPID int, t time.Time, cgroup string) State {
	return State{
		ID: id, PID: pid, InitPID: initPID, Started: t, Argv: slices.Clone(p.Argv), Cwd: p.Cwd,
		Profiles: slices.Clone(p.Profiles), Root: p.Identity.Root, Net: p.Net,
		Limits: p.Limits, Cgroup: cgroup,
	}
}

// Usage is what a sandbox's cgroup says it uses now.
type Usage struct {
	Known   bool   `json:"known"`
	Memory  uint64 `json:"memory_bytes"`
	Pids    uint64 `json:"pids"`
	CPUUsec uint64 `json:"cpu_usage_us"`
}

// Running is one line of sbx ps.
type Running struct {
	State
	Usage Usage `json:"usage"`
}

// FindState picks the sandbox whose id starts with prefix; an empty,
// unknown or ambiguous prefix is an error.
func FindState(states []State, prefix string) (State, error) {
	if prefix == "" {
		return State{}, fmt.Errorf("no sandbox id given")
	}
	var found []State
	for _, s := range states {
		if s.ID == prefix {
			return s, nil
		}
		if strings.HasPrefix(s.ID, prefix) {
			found = append(found, s)
		}
	}
	switch len(found) {
	case 0:
		return State{}, fmt.Errorf("no running sandbox %q (sbx ps lists them)", prefix)
	case 1:
		return found[0], nil
	}
	var ids []string
	for _, s := range found {
		ids = append(ids, s.ID)
	}
	return State{}, fmt.Errorf("%q is more than one sandbox: %s", prefix, strings.Join(ids, ", "))
}

// WritePS prints the table of sbx ps, oldest first.
func WritePS(w io.Writer, rows []Running, now time.Time) error {
	slices.SortFunc(rows, func(a, b Running) int { return a.Started.Compare(b.Started) })
	var b strings.Builder
	fmt.Fprintf(&b, "%-12s  %7s  %6s  %-10s  %-24s  %-22s  %s\n", "ID", "PID", "AGE", "PROFILE", "LIMITS", "USAGE", "COMMAND")
	for _, r := range rows {
		profile := "-"
		if len(r.Profiles) > 0 {
			var names []string
			for _, p := range r.Profiles {
				names = append(names, profileName(p))
			}
			profile = strings.Join(names, ",")
		}
		usage := "-"
		if r.Usage.Known {
			usage = fmt.Sprintf("mem %s, %d tasks", FormatSize(r.Usage.Memory), r.Usage.Pids)
		}
		fmt.Fprintf(&b, "%-12s  %7d  %6s  %-10s  %-24s  %-22s  %s\n", r.ID, r.PID, Age(now.Sub(r.Started)),
			profile, LimitsText(r.Limits), usage, commandLine(r.Argv, 60))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// profileName is a profile's name as a user would give it: builtin:x.toml
// and /path/x.toml are both "x".
func profileName(source string) string {
	return strings.TrimSuffix(path.Base(strings.TrimPrefix(source, "builtin:")), ".toml")
}

// Age renders a duration as ps does: 42s, 5m, 3h, 2d.
func Age(d time.Duration) string {
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", max(0, int(d.Seconds())))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh", int(d.Hours()))
	}
	return fmt.Sprintf("%dd", int(d.Hours()/24))
}

// LimitsText is a short rendering of the limits, "-" for none.
func LimitsText(l Limits) string {
	var parts []string
	if l.MemoryMax != 0 {
		parts = append(parts, "mem "+FormatSize(l.MemoryMax))
	}
	if l.CPUQuota != 0 && l.CPUPeriod != 0 {
		parts = append(parts, fmt.Sprintf("cpus %g", float64(l.CPUQuota)/float64(l.CPUPeriod)))
	}
	if l.PidsMax != 0 {
		parts = append(parts, fmt.Sprintf("pids %d", l.PidsMax))
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, ", ")
}

// commandLine joins argv, quoting what a shell would need quoted, cut
// to width runes.
func commandLine(argv []string, width int) string {
	var words []string
	for _, a := range argv {
		if a == "" || strings.ContainsAny(a, " \t\n'\"\\$`|&;<>()*?[]{}~#") {
			a = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		words = append(words, a)
	}
	// No control character reaches the terminal that shows the table.
	s := Printable(strings.Join(words, " "))
	if r := []rune(s); len(r) > width {
		s = string(r[:width-1]) + "…"
	}
	return s
}

// Printable replaces what a terminal would interpret (C0 and C1 control
// characters, DEL) with '?': for text a sandbox may have chosen.
func Printable(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || r >= 0x80 && r < 0xa0 {
			return '?'
		}
		return r
	}, s)
}
