package policy

import (
	"time"

	"sbx/idmap"
)

// PlanVersion is bumped when the Plan's JSON changes incompatibly; the
// stages refuse a plan of another version.
const PlanVersion = 1

// Plan is everything a sandbox run does, resolved and validated. It is
// a value: the launcher hands it to the stages as JSON over a descriptor.
type Plan struct {
	Version int      `json:"version"`
	Argv    []string `json:"argv"`
	// Argv0 replaces Argv[0] in what the command gets (Argv[0] is still
	// what is run); "" leaves it.
	Argv0      string     `json:"argv0,omitempty"`
	Env        []string   `json:"env"`
	Cwd        string     `json:"cwd"`
	Identity   Identity   `json:"identity"`
	Namespaces Namespaces `json:"namespaces"`
	Net        string     `json:"net"`
	Hostname   string     `json:"hostname,omitempty"`
	Mounts     []Mount    `json:"mounts"`
	KeepFDs    []int      `json:"keep_fds,omitempty"`
	// IgnoredSignals start ignored in the payload, as in a command the
	// caller had started itself; sbx still catches them, to forward.
	IgnoredSignals []int         `json:"ignored_signals,omitempty"`
	Timeout        time.Duration `json:"timeout,omitempty"`
	JSONStatus     string        `json:"json_status,omitempty"`
	Security       Security      `json:"security"`
	Limits         Limits        `json:"limits"`
	// Cgroup is set when the sandbox gets a delegated cgroup (limits
	// asked, or --cgroup); nil means the user manager is never contacted.
	Cgroup *CgroupPlan `json:"cgroup,omitempty"`
	// PTY is set when the payload gets a pseudo-terminal of its own that
	// the launcher relays to the caller's terminal (one of descriptors
	// 0, 1, 2 a terminal, no --no-pty); nil means the payload gets them
	// as they are.
	PTY *PTY `json:"pty,omitempty"`
	// StateDir is where the running sandbox is recorded for sbx ps, stop
	// and exec ($XDG_RUNTIME_DIR/sbx/run); "" when there is no runtime
	// directory (the sandbox runs, untracked).
	StateDir string   `json:"state_dir,omitempty"`
	Warnings []string `json:"warnings,omitempty"`
	// Profiles are the sources of the profile chain, in order; Origins
	// says where each value not owed to a built-in default came from.
	Profiles []string `json:"profiles,omitempty"`
	Origins  Origins  `json:"origins,omitempty"`
}

// Identity says who the payload is and how ids are mapped.
//
// UIDMap/GIDMap are the maps of the sandbox's user namespace, written by
// newuidmap and newgidmap (or by sbx itself, one id, when Helpers is
// false). It owns the sandbox's other namespaces and every mount of the
// view. Without Root the caller shows as their own ids (UID, GID) and
// the subordinate ids fill the rest; the payload runs there as the
// caller, without capabilities. With Root the caller is id 0 and the
// payload runs in a namespace nested in it (NestedUIDMap, NestedGIDMap:
// the same ids), as root over that namespace only.
type Identity struct {
	Root         bool      `json:"root"`
	UID          uint32    `json:"uid"`
	GID          uint32    `json:"gid"`
	HostUID      uint32    `json:"host_uid"`
	HostGID      uint32    `json:"host_gid"`
	User         string    `json:"user"`
	Helpers      bool      `json:"helpers"`
	NewUIDMap    string    `json:"newuidmap,omitempty"`
	NewGIDMap    string    `json:"newgidmap,omitempty"`
	UIDMap       idmap.Map `json:"uid_map"`
	GIDMap       idmap.Map `json:"gid_map"`
	NestedUIDMap idmap.Map `json:"nested_uid_map"`
	NestedGIDMap idmap.Map `json:"nested_gid_map"`
}

// Namespaces lists the namespaces created for the sandbox. The user
// namespace is always new.
type Namespaces struct {
	Mount  bool `json:"mount"`
	PID    bool `json:"pid"`
	IPC    bool `json:"ipc"`
	UTS    bool `json:"uts"`
	Net    bool `json:"net"`
	Cgroup bool `json:"cgroup"`
}

// Security lists the process hardening applied to the payload.
type Security struct {
	NoNewPrivs    bool `json:"no_new_privs"`
	DropCaps      bool `json:"drop_caps"`
	DisableUserns bool `json:"disable_userns"`
	NewSession    bool `json:"new_session"`
	DieWithParent bool `json:"die_with_parent"`
	NonDumpable   bool `json:"non_dumpable"`
	// CheckFDs refuses, before the exec, a working directory or a kept
	// descriptor that leads out of the view (runc's CVE-2024-21626).
	CheckFDs bool     `json:"check_fds"`
	Seccomp  Seccomp  `json:"seccomp"`
	Landlock Landlock `json:"landlock"`
	// Strict makes every hardening layer required: what the host cannot
	// give is an error (exit 125) instead of a warning.
	Strict bool `json:"strict,omitempty"`
}

// The seccomp modes.
const (
	SeccompDefault    = "default"    // Docker's default profile for an unprivileged process, plus sbx's blocks
	SeccompProfile    = "profile"    // an OCI/Docker JSON profile from a file
	SeccompUnconfined = "unconfined" // no filter
)

// Seccomp is the payload's system call filter. Whatever the mode (but
// unconfined), ioctl TIOCSTI and TIOCLINUX are refused: they would let
// the payload type into, or take over, a terminal.
type Seccomp struct {
	Mode string `json:"mode"`
	// Path and JSON are the profile file of mode "profile": its path
	// as given, and its text as read when the plan was made.
	Path string `json:"path,omitempty"`
	JSON string `json:"profile_json,omitempty"`
	// LogDenied reports every refused call on sbx's stderr (the filter
	// notifies sbx's PID 1, which answers with the refusal).
	LogDenied bool `json:"log_denied,omitempty"`
}

// Landlock is the Landlock layer: rules that mirror the view, applied
// to the payload just before its exec. ABI is the kernel's; rights it
// does not know are dropped (a warning, or an error with Strict).
type Landlock struct {
	Enabled bool           `json:"enabled"`
	ABI     int            `json:"abi"`
	Rules   []LandlockRule `json:"rules,omitempty"`
	// Scoped: abstract unix sockets and signals are confined to the
	// sandbox (ABI 6).
	Scoped bool `json:"scoped,omitempty"`
}

// The access classes of a Landlock rule, each a set of filesystem rights.
const (
	AccessList  = "list"  // list directories
	AccessRead  = "read"  // read and execute files, list directories
	AccessWrite = "write" // read plus create, write, remove, rename, truncate, device ioctls
	AccessProc  = "proc"  // read and write (truncate) files, list directories (procfs)
	AccessDev   = "dev"   // read and write device files, their ioctls, list directories
)

// LandlockRule grants one access class beneath a path of the view.
type LandlockRule struct {
	Path   string `json:"path"`
	Access string `json:"access"`
}

// MountOp is the kind of one filesystem operation.
type MountOp string

// The operations, applied in order on an empty tmpfs root.
const (
	OpBind    MountOp = "bind"    // Source (host) at Dest; ReadOnly for a read-only bind
	OpTmpfs   MountOp = "tmpfs"   // an empty tmpfs at Dest
	OpProc    MountOp = "proc"    // a fresh procfs at Dest, /proc/sys and friends read-only
	OpDev     MountOp = "dev"     // a minimal /dev at Dest
	OpSymlink MountOp = "symlink" // a symlink at Dest pointing to Target
	OpHide    MountOp = "hide"    // mask whatever is visible at Dest
	OpRootRO  MountOp = "root-ro" // make the root tmpfs read-only (always last)
)

// Mount is one filesystem operation of the plan.
type Mount struct {
	Op       MountOp `json:"op"`
	Source   string  `json:"source,omitempty"`
	Dest     string  `json:"dest,omitempty"`
	Target   string  `json:"target,omitempty"`
	ReadOnly bool    `json:"ro,omitempty"`
	// Mode is the permission of a tmpfs's root (default 0755).
	Mode uint32 `json:"mode,omitempty"`
	// SourceBeneath, when set, is a writable grant of this plan that
	// contains Source: the sandbox may have planted symlinks there, so
	// Source is resolved without leaving it (openat2 RESOLVE_BENEATH).
	SourceBeneath string `json:"source_beneath,omitempty"`
	// DestBeneath is the same for Dest, relative to the sandbox's root.
	DestBeneath string `json:"dest_beneath,omitempty"`
	// Optional (hide from a profile): nothing there is not an error.
	Optional bool `json:"optional,omitempty"`
	// NoSymlinks: Source is resolved with no symlink at all
	// (RESOLVE_NO_SYMLINKS), because it was checked as it stands.
	NoSymlinks bool `json:"no_symlinks,omitempty"`
	// Origin says where the operation came from: "default" or the flag.
	Origin string `json:"origin"`
}

// PTY says which of the payload's standard descriptors are its
// pseudo-terminal: those that were a terminal of the caller's. Its input
// is relayed from the caller's terminal only when stdin was one.
type PTY struct {
	Stdin  bool `json:"stdin"`
	Stdout bool `json:"stdout"`
	Stderr bool `json:"stderr"`
}

// CgroupPlan is where the launcher finds the user manager and the
// cgroup2 hierarchy (facts of the host, recorded so --dry-run shows them).
type CgroupPlan struct {
	Mount       string   `json:"mount"`        // the cgroup2 mount point, "" when none
	V1          []string `json:"v1,omitempty"` // controllers the host has on cgroup v1
	RuntimeDir  string   `json:"runtime_dir"`
	BusAddress  string   `json:"bus_address,omitempty"`
	Controllers []string `json:"controllers"` // what the limits need
}
