package policy

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// RenderProfile renders a resolved profile chain as one TOML profile,
// each value commented with where it came from.
func RenderProfile(chain []*Profile, f Flags, o Origins) string {
	var b strings.Builder
	pf := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	var sources []string
	for _, p := range chain {
		sources = append(sources, p.Source)
	}
	pf("# the chain: %s\n", strings.Join(sources, " -> "))
	pf("version = %d\n", ProfileVersion)
	if len(chain) > 0 {
		pf("description = %s\n", strconv.Quote(chain[len(chain)-1].Description))
	}
	pf("\n[run]\n")
	str := func(key, v string) {
		if v != "" {
			pf("%s = %s  # %s\n", key, strconv.Quote(v), o[key])
		}
	}
	str("net", f.Net)
	str("hostname", f.Hostname)
	str("chdir", f.Chdir)
	if f.Root {
		pf("root = true  # %s\n", o["root"])
	}
	if f.Cgroup {
		pf("cgroup = true  # %s\n", o["cgroup"])
	}
	if f.Timeout != 0 {
		pf("timeout = %q  # %s\n", f.Timeout.String(), o["timeout"])
	}
	for _, m := range f.FS {
		pf("\n[[mount]]  # %s\n", m.Origin)
		v := m.Arg
		pf("%s = %s\n", m.Kind, strconv.Quote(v))
		if m.Optional {
			pf("optional = true\n")
		}
	}
	pf("\n[env]\n")
	if f.Clearenv {
		pf("clear = true  # %s\n", o["env.clear"])
	}
	if len(f.KeepEnv) > 0 {
		pf("keep = %s  # %s\n", quoteList(f.KeepEnv), o["env.keep"])
	}
	if len(f.Unsetenv) > 0 {
		pf("unset = %s\n", quoteList(f.Unsetenv))
	}
	if len(f.Env) > 0 {
		pf("[env.set]\n")
		sorted := append([]string{}, f.Env...)
		sort.Strings(sorted)
		for _, kv := range sorted {
			k, v, _ := strings.Cut(kv, "=")
			pf("%s = %s  # %s\n", strconv.Quote(k), strconv.Quote(v), o["env.set."+k])
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
		pf("cpus = %g  # %s\n", float64(f.CPUQuota)/CPUPeriodUS, o["limits.cpus"])
	}
	for _, x := range []struct {
		key string
		v   uint64
	}{{"pids", f.Pids}, {"cpu_weight", f.CPUWeight}, {"io_weight", f.IOWeight}} {
		if x.v != 0 {
			pf("%s = %d  # %s\n", x.key, x.v, o["limits."+x.key])
		}
	}
	return b.String()
}

func quoteList(s []string) string {
	q := make([]string, len(s))
	for i, x := range s {
		q[i] = strconv.Quote(x)
	}
	return "[" + strings.Join(q, ", ") + "]"
}
