package cgroup

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/godbus/dbus/v5"
	"golang.org/x/sys/unix"

	"sbx/policy"
)

// The per-session subtree spares a D-Bus round trip per run: a transient
// service, SubtreeUnit, with Delegate=yes, whose only process (a holder
// that sleeps) sits in its "holder" leaf. Each run makes a leaf of its
// own there, writes the limits and clones init straight into it. The
// kernel lets a process be cloned into a cgroup only when the caller may
// write the cgroup.procs of the nearest ancestor the two share, so this
// works for launchers that themselves run inside the user manager's tree
// (a desktop terminal's scope); from a login session's scope (ssh, a
// console), which the system manager owns, a scope per run is the way.
//
//	sbx-subtree.service/   Delegate=yes; controllers enabled below
//	├── holder/            the holder process
//	└── run-PID-RAND/      one sandbox: its limits, init and the payload

// SubtreeUnit is the name of the per-session service.
const SubtreeUnit = "sbx-subtree.service"

// HolderArg is argv[0] of the holder: sbx itself, which keeps the
// service (and so its cgroup) alive and sweeps the leaves of launchers
// that were killed (see Sweep).
const HolderArg = "sbx:holder"

// Subtree is the per-session delegated subtree.
type Subtree struct {
	Root string // its directory in the cgroup2 mount
}

// OpenSubtree returns the session's subtree recorded in stateFile if it
// is still there, in this cgroup2 mount, and the calling process may
// clone into it; ok is false otherwise (then StartSubtree, or a scope).
func OpenSubtree(stateFile, mount string) (*Subtree, bool) {
	b, err := os.ReadFile(stateFile)
	if err != nil {
		return nil, false
	}
	root := filepath.Join(mount, filepath.Clean("/"+strings.TrimSpace(string(b))))
	if n, err := readFlat(filepath.Join(root, "holder", "cgroup.events")); err != nil || n["populated"] != 1 {
		return nil, false
	}
	if !CanCloneInto(mount, root) {
		return nil, false
	}
	return &Subtree{Root: root}, true
}

// CanCloneInto says whether the calling process may start a child in
// the cgroup dir (CLONE_INTO_CGROUP): it must be able to write the
// cgroup.procs of the nearest ancestor of dir and of its own cgroup.
func CanCloneInto(mount, dir string) bool {
	self, err := selfCgroup()
	if err != nil {
		return false
	}
	a := filepath.Join(mount, filepath.Clean("/"+self))
	for a != dir && !strings.HasPrefix(dir, a+"/") {
		if a == mount || a == "/" || a == "." {
			break
		}
		a = filepath.Dir(a)
	}
	return unix.Access(filepath.Join(a, "cgroup.procs"), unix.W_OK) == nil
}

// StartSubtree starts (or finds, when another sbx just did) the
// session's subtree, moves its holder into the holder leaf, records its
// path in stateFile, and returns it.
func (m *Manager) StartSubtree(mount, stateFile string) (*Subtree, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	props := []property{
		{"Description", dbus.MakeVariant("sbx: delegated cgroups of this session's sandboxes")},
		{"ExecStart", dbus.MakeVariant([]execStart{{exe, []string{HolderArg}, false}})},
		{"Delegate", dbus.MakeVariant(true)},
		{"CollectMode", dbus.MakeVariant("inactive-or-failed")},
	}
	cg, err := m.startUnit(SubtreeUnit, props, "org.freedesktop.systemd1.Service")
	if err != nil && !strings.Contains(err.Error(), "already exists") && !strings.Contains(err.Error(), "already loaded") {
		return nil, err
	}
	if err != nil {
		if cg, err = m.unitCgroup(SubtreeUnit, "org.freedesktop.systemd1.Service"); err != nil {
			return nil, err
		}
	}
	root := filepath.Join(mount, filepath.Clean("/"+cg))
	holder := filepath.Join(root, "holder")
	if err := mkdir(holder); err != nil {
		return nil, err
	}
	// Every process of the service's own cgroup goes to the holder leaf:
	// controllers can be enabled only below a cgroup without processes.
	for i := 0; i < 50; i++ {
		pids, err := os.ReadFile(filepath.Join(root, "cgroup.procs"))
		if err != nil {
			return nil, err
		}
		if len(strings.TrimSpace(string(pids))) == 0 {
			break
		}
		for _, p := range strings.Fields(string(pids)) {
			if err := write(filepath.Join(holder, "cgroup.procs"), p); err != nil && !errors.Is(err, unix.ESRCH) {
				return nil, err
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	rel, _ := filepath.Rel(mount, root)
	if err := os.MkdirAll(filepath.Dir(stateFile), 0o700); err != nil {
		return nil, err
	}
	tmp := stateFile + "." + strconv.Itoa(os.Getpid())
	if err := os.WriteFile(tmp, []byte("/"+rel+"\n"), 0o600); err != nil {
		return nil, err
	}
	if err := os.Rename(tmp, stateFile); err != nil {
		return nil, err
	}
	return &Subtree{Root: root}, nil
}

type execStart struct {
	Path          string
	Args          []string
	IgnoreFailure bool
}

// NewLeaf makes a run's leaf in the subtree, with the controllers the
// limits need enabled below the subtree's root and the limits written.
func (s *Subtree) NewLeaf(asked policy.Limits, v1 []string, mount string, warn func(string)) (*Tree, error) {
	have, err := readWords(filepath.Join(s.Root, "cgroup.controllers"))
	if err != nil {
		return nil, err
	}
	if err := missing(s.Root, asked.Controllers(), have, v1); err != nil {
		return nil, err
	}
	l := carry(mount, s.Root, asked, have, warn)
	if ctl := l.Controllers(); len(ctl) > 0 {
		on, err := readWords(filepath.Join(s.Root, "cgroup.subtree_control"))
		if err != nil {
			return nil, err
		}
		var add []string
		for _, c := range ctl {
			if !slices.Contains(on, c) {
				add = append(add, "+"+c)
			}
		}
		if len(add) > 0 {
			if err := write(filepath.Join(s.Root, "cgroup.subtree_control"), strings.Join(add, " ")); err != nil {
				return nil, err
			}
		}
	}
	var tag [4]byte
	rand.Read(tag[:])
	t := &Tree{Sandbox: filepath.Join(s.Root, fmt.Sprintf("run-%d-%s", os.Getpid(), hex.EncodeToString(tag[:]))), fd: -1}
	if err := mkdir(t.Sandbox); err != nil {
		return nil, err
	}
	// The lock that tells the holder this leaf's launcher lives (Sweep).
	fd, err := unix.Open(t.Sandbox, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Remove()
		return nil, fmt.Errorf("open %s: %w", t.Sandbox, err)
	}
	t.fd = fd
	if err := unix.Flock(fd, unix.LOCK_SH); err != nil {
		t.Remove()
		return nil, fmt.Errorf("lock %s: %w", t.Sandbox, err)
	}
	if err := writeLimits(t.Sandbox, l); err != nil {
		t.Remove()
		return nil, err
	}
	return t, nil
}

// Sweep removes the run leaves whose launcher is gone and that hold no
// process (the launcher was killed before it could remove its leaf).
// A launcher holds a shared flock(2) on its leaf's directory from the
// moment it makes it until it removes it, and the kernel drops the lock
// when the launcher dies: a leaf that can be locked exclusively and that
// is empty is over. A leaf younger than two seconds is left alone, in
// case its launcher has made it and not yet locked it.
func (s *Subtree) Sweep() {
	leaves, _ := filepath.Glob(filepath.Join(s.Root, "run-*"))
	for _, leaf := range leaves {
		var st unix.Stat_t
		if unix.Stat(leaf, &st) != nil || time.Since(time.Unix(st.Ctim.Unix())) < 2*time.Second {
			continue
		}
		fd, err := unix.Open(leaf, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			continue
		}
		if unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB) == nil {
			if ev, err := readFlat(filepath.Join(leaf, "cgroup.events")); err == nil && ev["populated"] == 0 {
				unix.Rmdir(leaf)
			}
		}
		unix.Close(fd)
	}
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// SubtreeOfSelf is the subtree whose holder leaf the calling process is
// in (the holder's view of its service).
func SubtreeOfSelf() (*Subtree, error) {
	mi, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	m, err := ParseMountinfo(mi)
	mi.Close()
	if err != nil || m.V2 == "" {
		return nil, fmt.Errorf("no cgroup2 mount: %v", err)
	}
	self, err := selfCgroup()
	if err != nil {
		return nil, err
	}
	// The first mount through which the own cgroup is reachable: a bind
	// may cover another (the host tier binds the hierarchy over
	// /sys/fs/cgroup, where /sys/fs/cgroup/unified was).
	for _, mount := range m.AllV2 {
		dir := filepath.Join(mount, filepath.Clean("/"+self))
		if !exists(dir) {
			continue
		}
		if filepath.Base(dir) == "holder" {
			dir = filepath.Dir(dir)
		}
		return &Subtree{Root: dir}, nil
	}
	return nil, fmt.Errorf("cgroup %s is under none of the cgroup2 mounts %q", self, m.AllV2)
}

// selfCgroup is the calling process's cgroup v2 path.
func selfCgroup() (string, error) {
	f, err := os.Open("/proc/self/cgroup")
	if err != nil {
		return "", err
	}
	defer f.Close()
	return ParseProcCgroup(f)
}
