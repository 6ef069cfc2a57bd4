package sandbox

import (
	"errors"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"

	"sbx/cgroup"

	"sbx/policy"
	"sbx/userns"
)

// Caller is who runs sbx and where: found once, used for the profiles'
// variables (ProbeVars) and the host facts (ProbeHost) alike.
type Caller struct {
	Cwd      string // the kernel's name for it, not $PWD; "" if it is gone
	CwdErr   error  // why Cwd is "" (sbx run cannot run without one)
	User     string
	Home     string // $HOME, else the passwd entry's, else "/"
	UserHome string // the passwd entry's, "" when there is none
}

// ProbeCaller finds the caller.
func ProbeCaller() (Caller, error) {
	var c Caller
	// The kernel's name for the working directory, not $PWD, which may
	// lead to it through symlinks (os.Getwd prefers $PWD).
	cwd, err := unix.Getwd()
	if err != nil {
		// A verb that needs none (profile list, shell-init) still works.
		c.CwdErr = fmt.Errorf("working directory: %w", err)
	}
	c.Cwd = cwd
	if u, err := user.LookupId(strconv.Itoa(os.Getuid())); err == nil {
		c.User, c.Home, c.UserHome = u.Username, filepath.Clean(u.HomeDir), filepath.Clean(u.HomeDir)
	}
	if home := os.Getenv("HOME"); filepath.IsAbs(home) {
		c.Home = filepath.Clean(home)
	}
	if !filepath.IsAbs(c.Home) {
		c.Home = "/"
	}
	if c.User == "" {
		c.User = os.Getenv("USER")
	}
	return c, nil
}

// ProbeHost gathers the facts policy.Resolve needs: who the caller is,
// their subordinate ids and helpers, the host's root entries, and a fact
// for every path and descriptor the flags name. It changes nothing.
func ProbeHost(f policy.Flags, c Caller) (policy.Host, error) {
	h := policy.Host{
		UID:     uint32(os.Getuid()),
		GID:     uint32(os.Getgid()),
		Environ: os.Environ(),
		Paths:   map[string]policy.PathInfo{},
		OpenFDs: map[int]bool{}, TerminalFDs: map[int]bool{},
		Cwd: c.Cwd, User: c.User, Home: c.Home, UserHome: c.UserHome,
	}
	cwd := c.Cwd
	h.Terminal = probeTerminal()
	h.LandlockABI, h.SeccompFilter, h.SeccompNotify = probeHardening()
	h.NewUIDMap, h.NewGIDMap = userns.Helpers()
	if h.NewUIDMap == "" || h.NewGIDMap == "" {
		h.HelpersOffPath = userns.HelperDir()
	}
	subu, subg, source, err := userns.SubIDs(h.User, h.UID)
	if err != nil {
		return h, fmt.Errorf("launcher: %w", err)
	}
	h.SubUIDs, h.SubGIDs, h.SubIDSource = subu, subg, source
	for _, name := range policy.SystemDirs {
		fi, err := os.Lstat("/" + name)
		if err != nil {
			continue
		}
		e := policy.Entry{Name: name, Dir: fi.IsDir()}
		if fi.Mode()&os.ModeSymlink != 0 {
			e.Symlink, _ = os.Readlink("/" + name)
		}
		h.Root = append(h.Root, e)
	}
	for _, p := range policy.SourcePaths(f, cwd) {
		h.Paths[p] = pathInfo(p)
	}
	if t, err := os.Readlink("/etc/resolv.conf"); err == nil {
		if !filepath.IsAbs(t) {
			t = filepath.Join("/etc", t)
		}
		h.ResolvConf = filepath.Clean(t)
		if real, err := filepath.EvalSymlinks("/etc/resolv.conf"); err == nil {
			h.ResolvConfReal = real
		}
	}
	if f.Cgroup || f.Memory != 0 || f.CPUQuota != 0 || f.Pids != 0 || f.CPUWeight != 0 || f.IOWeight != 0 {
		if mi, err := os.Open("/proc/self/mountinfo"); err == nil {
			m, _ := cgroup.ParseMountinfo(mi)
			mi.Close()
			h.Cgroup2, h.Cgroup2All, h.CgroupV1 = m.V2, m.AllV2, m.V1
		}
		h.BusAddress = os.Getenv("DBUS_SESSION_BUS_ADDRESS")
	}
	// Where sbx keeps the state of running sandboxes (sbx ps), and the
	// user manager listens.
	h.RuntimeDir = os.Getenv("XDG_RUNTIME_DIR")
	h.StateRoot = StateRoot()
	if h.StateRoot != "" {
		// /tmp/sbx-UID may not exist yet: then its parent says where
		// it will be.
		var err error
		if h.StateRootReal, err = filepath.EvalSymlinks(h.StateRoot); err != nil {
			if dir, err := filepath.EvalSymlinks(filepath.Dir(h.StateRoot)); err == nil {
				h.StateRootReal = filepath.Join(dir, filepath.Base(h.StateRoot))
			}
		}
	}
	for _, s := range forwarded {
		if ignoredAtStart(s.(unix.Signal)) {
			h.IgnoredSignals = append(h.IgnoredSignals, int(s.(unix.Signal)))
		}
	}
	for _, fd := range f.PreserveFDs {
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err == nil {
			h.OpenFDs[fd] = true
			if isTerminal(fd) {
				h.TerminalFDs[fd] = true
			}
		}
	}
	return h, nil
}

func pathInfo(p string) policy.PathInfo {
	fi, err := os.Stat(p)
	switch {
	case err == nil && !accessible(p, fi.IsDir()):
		return policy.PathInfo{Err: policy.PathDenied}
	case err == nil:
		// Real guards sbx's state (policy.stateHides): a path it cannot
		// resolve is refused, not compared as written.
		real, err := filepath.EvalSymlinks(p)
		if err != nil {
			return policy.PathInfo{Err: "resolving its symlinks: " + err.Error()}
		}
		return policy.PathInfo{Exists: true, Dir: fi.IsDir(), Real: real}
	case errors.Is(err, os.ErrNotExist):
		return policy.PathInfo{}
	}
	var pe *os.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	return policy.PathInfo{Err: strings.TrimSpace(err.Error())}
}

// accessible says whether the caller can use p at all: a file it can
// read or write, a directory it can list or pass through. A source it
// can use in no way is an unreadable path (exit 125), not an empty view.
func accessible(p string, dir bool) bool {
	if dir {
		return unix.Access(p, unix.X_OK) == nil || unix.Access(p, unix.R_OK) == nil
	}
	return unix.Access(p, unix.R_OK) == nil || unix.Access(p, unix.W_OK) == nil
}

// probeHardening asks the kernel for its Landlock ABI (0: none) and
// whether it has seccomp filters and their user notifications
// (SECCOMP_GET_ACTION_AVAIL, Linux 4.14+).
func probeHardening() (landlockABI int, filter, notify bool) {
	if abi, _, e := unix.Syscall(unix.SYS_LANDLOCK_CREATE_RULESET, 0, 0, unix.LANDLOCK_CREATE_RULESET_VERSION); e == 0 {
		landlockABI = int(abi)
	}
	avail := func(action uint32) bool {
		_, _, e := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_GET_ACTION_AVAIL, 0, uintptr(unsafe.Pointer(&action)))
		return e == 0
	}
	return landlockABI, avail(unix.SECCOMP_RET_ERRNO), avail(unix.SECCOMP_RET_USER_NOTIF)
}
