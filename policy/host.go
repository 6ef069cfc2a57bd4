package policy

import "sbx/idmap"

// Host is what the launcher found out about the machine and the caller
// before planning (sandbox.ProbeHost fills it). Tests fabricate it.
type Host struct {
	UID  uint32
	GID  uint32
	User string
	Home string // $HOME, else the passwd entry's
	// UserHome is the passwd entry's home, which may differ from $HOME
	// (sudo -u without -H): both count as homes that are not shared.
	UserHome string
	Cwd      string
	Environ  []string

	// SubUIDs and SubGIDs are the caller's usable subordinate ranges;
	// SubIDSource names where they came from ("/etc/subuid", "getsubids").
	SubUIDs     []idmap.Range
	SubGIDs     []idmap.Range
	SubIDSource string
	// NewUIDMap and NewGIDMap are the helpers' paths on PATH, "" when
	// missing. HelpersOffPath is a system directory that holds both when
	// PATH does not lead to them.
	NewUIDMap      string
	NewGIDMap      string
	HelpersOffPath string

	// Root lists the entries of the host's / that the default view
	// takes over (usr, bin, sbin, lib*, etc).
	Root []Entry
	// Paths has a fact for every host path the flags name, keyed by
	// the absolute path.
	Paths map[string]PathInfo
	// ResolvConf is /etc/resolv.conf's first symlink target made
	// absolute ("" when it is not a symlink); ResolvConfReal is the file
	// it finally resolves to ("" when it does not resolve).
	ResolvConf     string
	ResolvConfReal string
	// OpenFDs are the descriptors open in the launcher above 2.
	OpenFDs map[int]bool
	// TerminalFDs are those of them that are a terminal.
	TerminalFDs map[int]bool
	// IgnoredSignals are the signals sbx forwards that its caller had it
	// ignore (nohup: SIGHUP; a script's background job: SIGINT, SIGQUIT),
	// as they were before Go's runtime took them over.
	IgnoredSignals []int
	// Terminal says which of the launcher's descriptors 0, 1, 2 are a
	// terminal.
	Terminal Terminal

	// LandlockABI is the kernel's Landlock ABI (0: none); SeccompFilter
	// says seccomp filters work; SeccompNotify that an unprivileged
	// process can get a filter's notifications (SECCOMP_RET_USER_NOTIF).
	LandlockABI   int
	SeccompFilter bool
	SeccompNotify bool

	// Probed only when a cgroup is asked: the cgroup2 mount point (""
	// when none), the controllers on cgroup v1, and where the user
	// manager listens ($XDG_RUNTIME_DIR, $DBUS_SESSION_BUS_ADDRESS).
	Cgroup2    string
	Cgroup2All []string // every cgroup2 mount point, binds included
	CgroupV1   []string
	RuntimeDir string
	BusAddress string
	// StateRoot is where sbx records running sandboxes (under sbx/run):
	// $XDG_RUNTIME_DIR when it is the caller's, else /run/user/UID, else
	// a private /tmp/sbx-UID; "" when none is usable. StateRootReal is
	// the same with its symlinks resolved, when it exists.
	StateRoot, StateRootReal string
}

// Terminal is which of the launcher's standard descriptors are a
// terminal (any: a payload must hold none of the caller's).
type Terminal struct {
	Stdin, Stdout, Stderr bool
}

// Entry is one entry of the host's root directory.
type Entry struct {
	Name    string
	Dir     bool
	Symlink string // the link's target when the entry is a symlink
}

// PathInfo is what the host says about one path.
type PathInfo struct {
	Exists bool
	Dir    bool
	Err    string // why it could not be examined, e.g. "permission denied"
	Real   string // the path with its symlinks resolved, when it exists
}
