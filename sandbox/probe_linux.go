package sandbox

import (
	"errors"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"sbx/cgroup"

	"sbx/policy"
	"sbx/userns"
)

// ProbeHost gathers the facts policy.Resolve needs: who the caller is,
// their subordinate ids and helpers, the host's root entries, and a fact
// for every path and descriptor the flags name. It changes nothing.
func ProbeHost(f policy.Flags) (policy.Host, error) {
	h := policy.Host{
		UID:     uint32(os.Getuid()),
		GID:     uint32(os.Getgid()),
		Environ: os.Environ(),
		Paths:   map[string]policy.PathInfo{},
		OpenFDs: map[int]bool{},
	}
	// The kernel's name for the working directory, not $PWD, which may
	// lead to it through symlinks (os.Getwd prefers $PWD).
	cwd, err := unix.Getwd()
	if err != nil {
		return h, fmt.Errorf("launcher: working directory: %w", err)
	}
	h.Cwd = cwd
	h.Terminal = probeTerminal()
	if u, err := user.LookupId(strconv.Itoa(int(h.UID))); err == nil {
		h.User, h.Home, h.UserHome = u.Username, u.HomeDir, filepath.Clean(u.HomeDir)
	}
	if home := os.Getenv("HOME"); filepath.IsAbs(home) {
		h.Home = filepath.Clean(home)
	}
	if h.Home == "" {
		h.Home = "/"
	}
	if h.User == "" {
		h.User = os.Getenv("USER")
	}
	h.NewUIDMap, h.NewGIDMap = userns.Helpers()
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
		h.RuntimeDir, h.BusAddress = os.Getenv("XDG_RUNTIME_DIR"), os.Getenv("DBUS_SESSION_BUS_ADDRESS")
	}
	for _, fd := range f.PreserveFDs {
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err == nil {
			h.OpenFDs[fd] = true
		}
	}
	return h, nil
}

func pathInfo(p string) policy.PathInfo {
	fi, err := os.Stat(p)
	switch {
	case err == nil:
		return policy.PathInfo{Exists: true, Dir: fi.IsDir()}
	case errors.Is(err, os.ErrNotExist):
		return policy.PathInfo{}
	}
	var pe *os.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	return policy.PathInfo{Err: strings.TrimSpace(err.Error())}
}
