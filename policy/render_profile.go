package policy

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// Shown is a profile chain folded for `sbx profile show` and `check`:
// without a command line, and where a variable is undefined here (no
// project around the working directory for $PROJECT), without failing.
type Shown struct {
	Chain   []*Profile
	Flags   Flags
	Origins Origins
	// Unexpanded are the values kept as written because a variable they
	// use is undefined here, by Origins key ("chdir", "env.set.K"), with
	// why; a mount says so itself (FSFlag.Unexpanded).
	Unexpanded map[string]string
	// Notes say what could not be followed for the same reason (an
	// extends entry), each located in its profile.
	Notes []string
}

// ShowChain loads and folds the chain refs name as `sbx profile show`
// and `check` do: every value is checked (DecodeProfile) and the chain
// folded as a run would fold it, but a value that uses a variable
// undefined here stays as written, and an extends entry that does is
// not followed (a note says so), instead of failing: variables are a
// matter of where a profile is applied, not of the profile.
func ShowChain(refs []string, vars Vars, load Loader) (*Shown, error) {
	chain, notes, err := loadChain(refs, vars, load, true)
	if err != nil {
		return nil, err
	}
	x := newFolder(vars, true)
	if err := x.fold(chain, Flags{}); err != nil {
		return nil, err
	}
	return &Shown{Chain: chain, Flags: x.f, Origins: x.o, Unexpanded: x.unexpanded, Notes: notes}, nil
}

// Render renders the folded chain as one TOML profile, each value
// commented with where it came from. Read back as a profile, it gives
// the same values: a value sbx expanded is literal, so its "$" is
// written "$$"; a value kept unexpanded is written as it was.
func (s *Shown) Render() string {
	var b strings.Builder
	pf := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	f, o := s.Flags, s.Origins
	var sources []string
	for _, p := range s.Chain {
		sources = append(sources, p.Source)
	}
	pf("# the chain: %s\n", strings.Join(sources, " -> "))
	for _, n := range s.Notes {
		pf("# note: %s\n", oneLine(n))
	}
	pf("version = %d\n", ProfileVersion)
	if len(s.Chain) > 0 {
		pf("description = %s\n", tomlString(s.Chain[len(s.Chain)-1].Description))
	}
	// value renders a string value under Origins key, with its origin.
	value := func(key, v string) string {
		if why, ok := s.Unexpanded[key]; ok {
			return fmt.Sprintf("%s  # %s (not expanded: %s)", tomlString(v), o[key], oneLine(why))
		}
		return fmt.Sprintf("%s  # %s", tomlString(literal(v)), o[key])
	}
	boolean := func(name, key string, v bool) {
		if o[key] != "" {
			pf("%s = %t  # %s\n", name, v, o[key])
		}
	}

	pf("\n[run]\n")
	for _, x := range []struct{ key, v string }{{"net", f.Net}, {"hostname", f.Hostname}, {"chdir", f.Chdir}} {
		if x.v != "" {
			pf("%s = %s\n", x.key, value(x.key, x.v))
		}
	}
	boolean("root", "root", f.Root)
	if f.Timeout != 0 {
		pf("timeout = %q  # %s\n", f.Timeout.String(), o["timeout"])
	}
	boolean("cgroup", "cgroup", f.Cgroup)

	for _, m := range f.FS {
		pf("\n[[mount]]  # %s", m.Origin)
		v := literal(m.Arg)
		if m.Unexpanded != "" {
			v = m.Arg
			pf(" (not expanded: %s)", oneLine(m.Unexpanded))
		}
		pf("\n%s = %s\n", m.Kind, tomlString(v))
		if m.Optional {
			pf("optional = true\n")
		}
	}

	pf("\n[env]\n")
	if f.Clearenv {
		pf("clear = true  # %s\n", o["env.clear"])
	}
	if len(f.KeepEnv) > 0 {
		pf("keep = %s  # %s\n", tomlList(f.KeepEnv), o["env.keep"])
	}
	if len(f.Unsetenv) > 0 {
		pf("unset = [\n")
		for _, k := range f.Unsetenv {
			pf("  %s,  # %s\n", tomlString(k), o["env.unset."+k])
		}
		pf("]\n")
	}
	if len(f.Env) > 0 {
		pf("[env.set]\n")
		sorted := append([]string{}, f.Env...)
		sort.Strings(sorted)
		for _, kv := range sorted {
			k, v, _ := strings.Cut(kv, "=")
			pf("%s = %s\n", tomlString(k), value("env.set."+k, v))
		}
	}

	pf("\n[limits]\n")
	if f.Memory != 0 {
		pf("memory = %q  # %s\n", FormatSize(f.Memory), o["limits.memory"])
	}
	if f.MemorySwapSet {
		pf("memory_swap = %q  # %s\n", FormatSize(f.MemorySwap), o["limits.memory_swap"])
	}
	if f.CPUQuota != 0 {
		pf("cpus = %s  # %s\n", strconv.FormatFloat(float64(f.CPUQuota)/CPUPeriodUS, 'f', -1, 64), o["limits.cpus"])
	}
	for _, x := range []struct {
		key string
		v   uint64
	}{{"pids", f.Pids}, {"cpu_weight", f.CPUWeight}, {"io_weight", f.IOWeight}} {
		if x.v != 0 {
			pf("%s = %d  # %s\n", x.key, x.v, o["limits."+x.key])
		}
	}

	pf("\n[security]\n")
	if f.Seccomp != "" {
		pf("seccomp = %s\n", value("security.seccomp", f.Seccomp))
	}
	boolean("landlock", "security.landlock", !f.NoLandlock)
	boolean("strict", "security.strict", f.Strict)
	boolean("log_denied", "security.log_denied", f.LogDenied)
	return b.String()
}

// literal writes a value for a profile that reads it back as it is:
// "$" is "$$" there.
func literal(v string) string { return strings.ReplaceAll(v, "$", "$$") }

// oneLine keeps a note in its comment.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// tomlString quotes s as a TOML basic string (TOML has no \x escape,
// which strconv.Quote would write).
func tomlString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\t':
			b.WriteString(`\t`)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\u%04X`, r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

func tomlList(s []string) string {
	q := make([]string, len(s))
	for i, x := range s {
		q[i] = tomlString(x)
	}
	return "[" + strings.Join(q, ", ") + "]"
}
