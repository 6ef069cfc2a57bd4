package policy

import (
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"

	"sbx/idmap"
)

// ErrUsage is matched (errors.Is) by every error in what the user asked.
var ErrUsage = errors.New("usage")

// UsageError is an error in what the user asked: a flag, a value, a path.
type UsageError struct{ Err error }

func (e *UsageError) Error() string        { return e.Err.Error() }
func (e *UsageError) Unwrap() error        { return e.Err }
func (e *UsageError) Is(target error) bool { return target == ErrUsage }

// SystemDirs are the host directories the default view shows read-only,
// in mount order. Those that are symlinks on the host (usr-merge) stay
// symlinks.
var SystemDirs = []string{"usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32", "etc"}

// ResolveWithProfiles is the one place where built-in defaults, the
// profile chain and the command line meet: the chain is folded into the
// flags (ApplyProfiles), the result checked against the host (Resolve),
// and the plan records where each value came from.
func ResolveWithProfiles(chain []*Profile, vars Vars, cli Flags, h Host) (*Plan, error) {
	f, o, err := ApplyProfiles(chain, vars, cli)
	if err != nil {
		return nil, err
	}
	return ResolveApplied(chain, f, o, h)
}

// ResolveApplied is ResolveWithProfiles for flags ApplyProfiles has
// already folded (the launcher needs them first, to probe the host for
// the paths they name).
func ResolveApplied(chain []*Profile, f Flags, o Origins, h Host) (*Plan, error) {
	p, err := Resolve(f, h)
	if err != nil {
		return nil, err
	}
	for _, pr := range chain {
		p.Profiles = append(p.Profiles, pr.Source)
	}
	p.Origins = o
	return p, nil
}

// Resolve checks flags against host facts and builds the plan. It is the
// one place where defaults and what the user asked meet.
func Resolve(f Flags, h Host) (*Plan, error) {
	p, err := resolve(f, h)
	if err != nil {
		return nil, &UsageError{Err: err}
	}
	return p, nil
}

func resolve(f Flags, h Host) (*Plan, error) {
	if len(f.Argv) == 0 || f.Argv[0] == "" {
		return nil, fmt.Errorf("no COMMAND given (sbx run [FLAGS] [--] COMMAND [ARG...])")
	}
	if !path.IsAbs(h.Cwd) || !path.IsAbs(h.Home) {
		return nil, fmt.Errorf("the caller's working directory %q or home %q is not absolute", h.Cwd, h.Home)
	}
	p := &Plan{
		Version: PlanVersion,
		Argv:    slices.Clone(f.Argv),
		Argv0:   f.Argv0,
		Net:     "none",
		Security: Security{
			NoNewPrivs: true, DropCaps: !f.Root, DisableUserns: true,
			NewSession: true, DieWithParent: true, NonDumpable: true,
		},
		Timeout:    f.Timeout,
		JSONStatus: f.JSONStatus,
		Hostname:   f.Hostname,
	}
	if f.Net != "" {
		n, err := ParseNet(f.Net)
		if err != nil {
			return nil, err
		}
		p.Net = n
	}
	if f.Hostname != "" {
		if _, err := ParseHostname(f.Hostname); err != nil {
			return nil, err
		}
	}
	if f.Timeout < 0 {
		return nil, fmt.Errorf("--timeout %s: must be positive", f.Timeout)
	}
	p.Namespaces = Namespaces{Mount: true, PID: true, IPC: true, UTS: true, Net: p.Net == "none", Cgroup: true}
	p.Identity = identity(f.Root, h, &p.Warnings)

	env, err := environment(f, h)
	if err != nil {
		return nil, err
	}
	p.Env = env

	fds, err := keepFDs(f.PreserveFDs, f.NoPTY, h)
	if err != nil {
		return nil, err
	}
	p.KeepFDs = fds
	p.IgnoredSignals = slices.Clone(h.IgnoredSignals)

	mounts, err := mounts(f, h, p.Net == "host", &p.Warnings)
	if err != nil {
		return nil, err
	}
	p.Mounts = mounts

	if err := limits(f, h, p); err != nil {
		return nil, err
	}
	if err := hardening(f, h, p); err != nil {
		return nil, err
	}
	p.StateDir = StateDir(h.StateRoot)
	if t := h.Terminal; (t.Stdin || t.Stdout || t.Stderr) && !f.NoPTY {
		p.PTY = &PTY{Stdin: t.Stdin, Stdout: t.Stdout, Stderr: t.Stderr}
	}
	p.Cwd = h.Cwd
	if f.Chdir != "" {
		c, err := ParseChdir(f.Chdir)
		if err != nil {
			return nil, err
		}
		p.Cwd = c
	}
	return p, nil
}

func identity(root bool, h Host, warnings *[]string) Identity {
	id := Identity{Root: root, HostUID: h.UID, HostGID: h.GID, User: h.User, UID: h.UID, GID: h.GID}
	subu := idmap.Usable(h.UID, h.SubUIDs)
	subg := idmap.Usable(h.GID, h.SubGIDs)
	switch {
	case (h.NewUIDMap == "" || h.NewGIDMap == "") && h.HelpersOffPath != "":
		*warnings = append(*warnings, fmt.Sprintf("newuidmap/newgidmap are not on PATH: the sandbox maps only your own uid and gid (fix: add %s to PATH)", h.HelpersOffPath))
	case h.NewUIDMap == "" || h.NewGIDMap == "":
		*warnings = append(*warnings, "newuidmap/newgidmap not found: the sandbox maps only your own uid and gid (fix: apt-get install uidmap)")
	case len(subu) == 0 || len(subg) == 0:
		*warnings = append(*warnings, fmt.Sprintf("no subordinate uid/gid ranges for %s in /etc/subuid, /etc/subgid or getsubids: the sandbox maps only your own uid and gid (fix: sudo usermod --add-subuids 100000-165535 --add-subgids 100000-165535 %s)", h.User, h.User))
	default:
		id.Helpers = true
		id.NewUIDMap, id.NewGIDMap = h.NewUIDMap, h.NewGIDMap
	}
	switch {
	case root && id.Helpers:
		id.UIDMap, id.GIDMap = idmap.Rootful(h.UID, subu), idmap.Rootful(h.GID, subg)
	case root:
		id.UIDMap, id.GIDMap = idmap.Single(0, h.UID), idmap.Single(0, h.GID)
	case id.Helpers:
		id.UIDMap, id.GIDMap = idmap.HostKeepID(h.UID, h.UID, subu), idmap.HostKeepID(h.GID, h.GID, subg)
	default:
		id.UIDMap, id.GIDMap = idmap.Single(h.UID, h.UID), idmap.Single(h.GID, h.GID)
	}
	if root {
		// The payload's own namespace, nested in the sandbox's: the
		// same ids, split where the outer map's lines are split.
		id.UID, id.GID = 0, 0
		id.NestedUIDMap = idmap.Identity(uint32(id.UIDMap.Size())).SplitAlong(id.UIDMap)
		id.NestedGIDMap = idmap.Identity(uint32(id.GIDMap.Size())).SplitAlong(id.GIDMap)
	}
	return id
}

func environment(f Flags, h Host) ([]string, error) {
	var env []string
	if !f.Clearenv {
		env = slices.Clone(h.Environ)
	}
	set := map[string]string{}
	for _, kv := range f.Env {
		if _, err := ParseEnv(kv); err != nil {
			return nil, err
		}
		k, _, _ := strings.Cut(kv, "=")
		if prev, ok := set[k]; ok && prev != kv {
			return nil, fmt.Errorf("--env %s conflicts with --env %s", kv, prev)
		}
		set[k] = kv
	}
	unset := map[string]bool{}
	for _, k := range f.Unsetenv {
		if err := checkEnvKey(k); err != nil {
			return nil, fmt.Errorf("--unsetenv %q: %w", k, err)
		}
		if kv, ok := set[k]; ok {
			return nil, fmt.Errorf("--unsetenv %s conflicts with --env %s", k, kv)
		}
		unset[k] = true
	}
	out := env[:0]
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		if unset[k] || set[k] != "" || len(f.KeepEnv) > 0 && !keepName(k, f.KeepEnv) {
			continue
		}
		out = append(out, kv)
	}
	for _, kv := range f.Env { // in the order given, once each
		k, _, _ := strings.Cut(kv, "=")
		if set[k] == kv {
			out = append(out, kv)
			set[k] = ""
		}
	}
	return out, nil
}

func keepFDs(fds []int, noPTY bool, h Host) ([]int, error) {
	var out []int
	for _, fd := range fds {
		if fd <= 2 {
			return nil, fmt.Errorf("--preserve-fd %d: descriptors 0, 1 and 2 are always kept", fd)
		}
		if slices.Contains(out, fd) {
			return nil, fmt.Errorf("--preserve-fd %d given twice", fd)
		}
		if !h.OpenFDs[fd] {
			return nil, fmt.Errorf("--preserve-fd %d: descriptor %d is not open", fd, fd)
		}
		// The sandbox gets a terminal of its own: a kept one would let
		// it set the caller's modes and window size, or read its input.
		if h.TerminalFDs[fd] && !noPTY {
			return nil, fmt.Errorf("--preserve-fd %d: descriptor %d is a terminal, which the sandbox must not hold (it gets a pseudo-terminal of its own; --no-pty hands it the caller's)", fd, fd)
		}
		out = append(out, fd)
	}
	slices.Sort(out)
	return out, nil
}

func mounts(f Flags, h Host, hostNet bool, warnings *[]string) ([]Mount, error) {
	ms := []Mount{{Op: OpTmpfs, Dest: "/", Origin: "default: empty root"}}
	for _, name := range SystemDirs {
		for _, e := range h.Root {
			if e.Name != name {
				continue
			}
			switch {
			case e.Symlink != "":
				ms = append(ms, Mount{Op: OpSymlink, Dest: "/" + name, Target: e.Symlink, Origin: "default: system"})
			case e.Dir:
				ms = append(ms, Mount{Op: OpBind, Source: "/" + name, Dest: "/" + name, ReadOnly: true, Origin: "default: system"})
			}
		}
	}
	ms = append(ms,
		Mount{Op: OpProc, Dest: "/proc", Origin: "default"},
		Mount{Op: OpDev, Dest: "/dev", Origin: "default"},
		Mount{Op: OpTmpfs, Dest: "/tmp", Mode: 0o1777, Origin: "default: private /tmp"},
	)
	if h.Home != "/" {
		ms = append(ms, Mount{Op: OpTmpfs, Dest: path.Clean(h.Home), Origin: "default: empty $HOME"})
	}
	if u := path.Clean(h.UserHome); path.IsAbs(u) && u != "/" && u != path.Clean(h.Home) {
		ms = append(ms, Mount{Op: OpTmpfs, Dest: u, Origin: "default: empty home (passwd)"})
	}
	homes := []string{path.Clean(h.Home)}
	if h.UserHome != "" && path.IsAbs(h.UserHome) {
		homes = append(homes, path.Clean(h.UserHome))
	}
	bind, warning, err := cwdPolicy(h.Cwd, homes, f.Chdir != "")
	if err != nil {
		return nil, err
	}
	if bind {
		// NoSymlinks: the path was checked as the kernel names it; it
		// must still lead there, through no symlink, when it is bound.
		ms = append(ms, Mount{Op: OpBind, Source: h.Cwd, Dest: h.Cwd, ReadOnly: true, NoSymlinks: true, Origin: "default: working directory"})
	}
	if warning != "" {
		*warnings = append(*warnings, warning)
	}
	if hostNet && h.ResolvConf != "" && h.ResolvConfReal != "" && !underAny(h.ResolvConf, "/etc", "/usr") {
		if d, err := CleanDest(h.ResolvConf); err == nil {
			ms = append(ms, Mount{Op: OpBind, Source: h.ResolvConfReal, Dest: d, ReadOnly: true, Origin: "default: --net host name resolution"})
		}
	}

	// The sandbox may have planted symlinks in any writable grant, in
	// an earlier run: a source inside one is resolved beneath it,
	// wherever the grant stands on the command line.
	var rwSources []string
	for _, fl := range f.FS {
		if fl.Kind == FSRw {
			rwSources = append(rwSources, hostPath(fl.Source, h.Cwd))
		}
	}
	type grant struct{ src, dst string }
	var rw []grant
	var hides []Mount
	// The destinations whose contents the sandbox may have shaped (the
	// writable grants, and binds from inside one), in mount order.
	var shaped []string
	dests := map[string]string{}
	for _, fl := range f.FS {
		m := Mount{Origin: fl.Flag()}
		switch fl.Kind {
		case FSRo, FSRw:
			src := hostPath(fl.Source, h.Cwd)
			dst := fl.Dest
			if dst == "" {
				dst = src
			}
			if d, err := CleanDest(dst); err != nil {
				return nil, fmt.Errorf("%s: %w", fl.Flag(), err)
			} else {
				dst = d
			}
			info, ok := h.Paths[src]
			switch {
			case fl.Optional && ok && info.Err == "" && !info.Exists:
				continue // a profile's "where it exists"
			case fl.Optional && ok && info.Err == PathDenied:
				// A cache left root's by sudo: of no use to the build.
				*warnings = append(*warnings, fmt.Sprintf("%s: %s: permission denied: left out", fl.Flag(), src))
				continue
			case !ok:
				return nil, fmt.Errorf("%s: %s was not examined", fl.Flag(), src)
			case info.Err != "":
				return nil, fmt.Errorf("%s: %s: %s", fl.Flag(), src, info.Err)
			case !info.Exists:
				return nil, fmt.Errorf("%s: %s: no such file or directory", fl.Flag(), src)
			case !info.Dir && (strings.HasSuffix(fl.Source, "/") || strings.HasSuffix(fl.Source, "/.")):
				return nil, fmt.Errorf("%s: %s: not a directory", fl.Flag(), fl.Source)
			}
			m.Op, m.Source, m.Dest, m.ReadOnly = OpBind, src, dst, fl.Kind == FSRo
			for _, g := range rwSources {
				if under(src, g) && (src != g || fl.Kind == FSRo) && len(g) > len(m.SourceBeneath) {
					m.SourceBeneath = g
				}
			}
			m.DestBeneath = beneath(dst, shaped)
		case FSTmpfs, FSHide:
			d, err := CleanDest(fl.Dest)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", fl.Flag(), err)
			}
			m.Op, m.Dest = OpTmpfs, d
			if fl.Kind == FSHide {
				m.Op, m.Optional = OpHide, fl.Optional
			}
			m.DestBeneath = beneath(d, shaped)
		default:
			return nil, fmt.Errorf("unknown filesystem flag %q", fl.Kind)
		}
		if underAny(m.Dest, "/proc", "/dev/pts") {
			return nil, fmt.Errorf("%s: %s belongs to the sandbox's own /proc or /dev/pts", fl.Flag(), m.Dest)
		}
		if prev, ok := dests[m.Dest]; ok {
			return nil, fmt.Errorf("%s: %s is already the destination of %s", fl.Flag(), m.Dest, prev)
		}
		dests[m.Dest] = fl.Flag()
		if m.Op == OpBind && !m.ReadOnly {
			rw = append(rw, grant{m.Source, m.Dest})
		}
		if m.Op == OpBind && (!m.ReadOnly || m.SourceBeneath != "") {
			shaped = append(shaped, m.Dest)
		}
		if m.Op == OpHide {
			hides = append(hides, m)
			continue
		}
		ms = append(ms, m)
	}
	// Masks go on last, so that no later mount can cover one. Inside a
	// writable grant a mask lasts only this run: the sandbox can move
	// what it masks elsewhere in the grant for the next one.
	for _, m := range hides {
		for _, g := range rw {
			if under(m.Dest, g.dst) {
				*warnings = append(*warnings, fmt.Sprintf("%s is inside the writable grant %s: the sandbox can move what it hides elsewhere in it, for later runs", m.Origin, g.dst))
				break
			}
		}
		// Resolved in the finished view: beneath the last mount the
		// sandbox may have shaped that holds it, wherever that mount
		// stands on the command line (a link planted there must not
		// move the mask out).
		m.DestBeneath = beneath(m.Dest, shaped)
		ms = append(ms, m)
	}
	state, err := stateHides(ms, h, dests, shaped)
	if err != nil {
		return nil, err
	}
	ms = append(ms, state...)
	ms = append(ms, Mount{Op: OpRootRO, Dest: "/", Origin: "default: read-only root"})
	return ms, nil
}

// beneath is the last of shaped (destinations whose contents the
// sandbox may have shaped, in mount order) that holds dest, strictly:
// dest is resolved beneath it, so that a link planted there cannot lead
// a mount out. "" when none does.
func beneath(dest string, shaped []string) string {
	for i := len(shaped) - 1; i >= 0; i-- {
		if under(dest, shaped[i]) && dest != shaped[i] {
			return shaped[i]
		}
	}
	return ""
}

// stateHides masks sbx's own state ($XDG_RUNTIME_DIR/sbx) wherever a
// bind shows it: it holds the sockets of sbx exec, through which one
// sandbox could run commands in another.
func stateHides(ms []Mount, h Host, dests map[string]string, shaped []string) ([]Mount, error) {
	if StateDir(h.StateRoot) == "" {
		return nil, nil
	}
	// Compared as the kernel resolves them: a source that is a link to
	// the runtime directory, or lies under one, shows the state too.
	state := path.Join(h.StateRoot, "sbx")
	if h.StateRootReal != "" {
		state = path.Join(h.StateRootReal, "sbx")
	}
	var out []Mount
	for _, m := range ms {
		if m.Op != OpBind {
			continue
		}
		src := m.Source
		if info := h.Paths[src]; info.Real != "" {
			src = info.Real
		}
		if under(src, state) && src != state {
			return nil, fmt.Errorf("%s: %s is sbx's own state (the sockets of sbx exec): no sandbox may see it", m.Origin, m.Source)
		}
		if !under(state, src) {
			continue
		}
		d := path.Join(m.Dest, strings.TrimPrefix(state, src))
		if _, ok := dests[d]; ok {
			continue
		}
		dests[d] = "sbx's state"
		hide := Mount{Op: OpHide, Dest: d, Optional: true, Origin: "default: sbx's state (sbx exec's sockets)", DestBeneath: beneath(d, shaped)}
		out = append(out, hide)
	}
	return out, nil
}

// limits fills the plan's limits and, when they or --cgroup ask for
// one, its cgroup.
func limits(f Flags, h Host, p *Plan) error {
	if f.MemorySwapSet && f.Memory == 0 {
		return fmt.Errorf("--memory-swap %s: goes with --memory", FormatSize(f.MemorySwap))
	}
	l := Limits{MemoryMax: f.Memory, PidsMax: f.Pids, CPUWeight: f.CPUWeight, IOWeight: f.IOWeight}
	if f.Memory != 0 {
		l.MemorySwapMax = f.MemorySwap // 0 unless --memory-swap
	}
	if f.CPUQuota != 0 {
		l.CPUQuota, l.CPUPeriod = f.CPUQuota, CPUPeriodUS
	}
	p.Limits = l
	if !l.Any() && !f.Cgroup {
		return nil
	}
	// The sandbox's limits live in files of the delegated tree, which
	// the payload's user owns: a writable view of any cgroup2 mount
	// would let it lift them.
	for _, m := range p.Mounts {
		if m.Op != OpBind || m.ReadOnly {
			continue
		}
		for _, cg := range h.Cgroup2All {
			if under(cg, m.Source) || under(m.Source, cg) {
				return fmt.Errorf("%s: it would show the cgroup hierarchy (%s) writable to a sandbox with a cgroup, which could lift its limits; bind it read-only", m.Origin, cg)
			}
		}
	}
	p.Cgroup = &CgroupPlan{
		Mount: h.Cgroup2, V1: slices.Clone(h.CgroupV1), RuntimeDir: h.RuntimeDir, BusAddress: h.BusAddress,
		Controllers: l.Controllers(),
	}
	return nil
}

// cwdPolicy decides what becomes of the caller's working directory. As a
// rule it is bound read-only at its own path. It is not bound when the
// view has a private directory there already: "/", $HOME or a directory
// holding it (binding it would show what the empty $HOME hides, and other
// users' homes), /tmp; the sandbox still starts there, and the user is
// told. A directory of the host's kernel or services (/proc, /sys, /dev,
// /run: sockets there reach host services) is never bound implicitly;
// starting there is refused unless --chdir says where to start instead.
func cwdPolicy(cwd string, homes []string, chdir bool) (bind bool, warning string, err error) {
	holdsHome := false
	for _, h := range homes {
		holdsHome = holdsHome || under(h, cwd)
	}
	switch {
	case cwd == "/":
		return false, "", nil
	case holdsHome:
		if chdir {
			return false, "", nil
		}
		return false, fmt.Sprintf("the working directory %s is or holds $HOME, which the sandbox replaces with an empty directory: it is not shared (grant it with --ro %s or --rw %s)", cwd, cwd, cwd), nil
	case cwd == "/tmp":
		if chdir {
			return false, "", nil
		}
		return false, "the working directory /tmp is private in the sandbox: the host's /tmp is not shared (grant it with --ro /tmp)", nil
	case underAny(cwd, "/proc", "/sys", "/dev", "/run", "/var/run"):
		if chdir {
			return false, "", nil
		}
		return false, "", fmt.Errorf("the working directory %s holds the host's kernel or service files and is not shared with the sandbox: cd elsewhere, or give --chdir DIR", cwd)
	}
	return true, "", nil
}

// under says whether p is dir or inside it.
func under(p, dir string) bool {
	return p == dir || dir == "/" || strings.HasPrefix(p, dir+"/")
}

func underAny(p string, dirs ...string) bool {
	for _, d := range dirs {
		if under(p, d) {
			return true
		}
	}
	return false
}

// SourcePaths lists the host paths the flags name, absolute, so that the
// launcher can examine them before Resolve.
func SourcePaths(f Flags, cwd string) []string {
	var out []string
	for _, fl := range f.FS {
		if fl.Kind == FSRo || fl.Kind == FSRw {
			out = append(out, hostPath(fl.Source, cwd))
		}
	}
	return out
}

// PathDenied is PathInfo.Err for a path the caller cannot use (EACCES,
// or no permission that would let it read, write or pass through).
const PathDenied = "permission denied"

// hostPath makes a source absolute against the caller's directory.
func hostPath(src, cwd string) string {
	if !path.IsAbs(src) {
		src = path.Join(cwd, src)
	}
	return path.Clean(src)
}
