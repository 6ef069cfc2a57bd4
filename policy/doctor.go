package policy

import (
	"bufio"
	"fmt"
	"io"
	"slices"
	"strings"

	"sbx/idmap"
)

// DoctorFacts is everything `sbx doctor` found out about the host, as
// plain values (sandbox.ProbeDoctor fills it; tests fabricate it).
// Diagnose turns it into one Check per gate.
type DoctorFacts struct {
	User       string
	UID, GID   uint32
	Executable string // the sbx binary, symlinks resolved

	// Sysctls, -1 when the kernel has no such file.
	MaxUserNamespaces      int // user.max_user_namespaces
	UnprivUsernsClone      int // kernel.unprivileged_userns_clone (Debian's patch)
	AppArmorRestrictUserns int // kernel.apparmor_restrict_unprivileged_userns (Ubuntu)
	LegacyTIOCSTI          int // dev.tty.legacy_tiocsti (Linux 6.2+)

	// UsernsErr is why cloning a child with CLONE_NEWUSER failed, ""
	// when it worked.
	UsernsErr string
	// AppArmorProfiles are the files in /etc/apparmor.d that attach a
	// profile allowing userns to Executable.
	AppArmorProfiles []string

	NewUIDMap, NewGIDMap Helper

	// The caller's subordinate ranges, where they came from, and why
	// they could not be read ("" when they could).
	SubUIDs, SubGIDs []idmap.Range
	SubIDSource      string
	SubIDErr         string

	// Cgroup2 is the cgroup2 mount point ("" when none); CgroupV1 the
	// controllers bound to cgroup v1 hierarchies.
	Cgroup2  string
	CgroupV1 []string

	// The user manager: $XDG_RUNTIME_DIR, $DBUS_SESSION_BUS_ADDRESS,
	// whether $XDG_RUNTIME_DIR/systemd/private and $XDG_RUNTIME_DIR/bus
	// exist, and its answer (Version, the address that answered) or why
	// there was none.
	RuntimeDir     string
	BusAddress     string
	PrivateSocket  bool
	BusSocket      bool
	ManagerVersion string
	ManagerVia     string
	ManagerErr     string
	// ManagerCgroup is the manager's own cgroup and Delegated the
	// controllers in its cgroup.controllers; DelegatedErr why they could
	// not be read.
	ManagerCgroup string
	Delegated     []string
	DelegatedErr  string
	// Linger: /var/lib/systemd/linger/$USER exists. SystemdBooted:
	// /run/systemd/system exists (PID 1 is systemd, sd_booted(3)).
	Linger        bool
	SystemdBooted bool

	// LandlockABI is landlock_create_ruleset(2)'s
	// LANDLOCK_CREATE_RULESET_VERSION answer, -1 with LandlockErr (an
	// errno name: ENOSYS, EOPNOTSUPP) when it has none.
	LandlockABI int
	LandlockErr string
	// SeccompMode is the Seccomp field of /proc/self/status (-1 when
	// absent); SeccompFilter says SECCOMP_GET_ACTION_AVAIL answered.
	SeccompMode   int
	SeccompFilter bool

	// Signs of running nested in a container.
	DockerEnv    bool   // /.dockerenv exists
	ContainerEnv bool   // /run/.containerenv exists
	CapBnd       uint64 // CapBnd of /proc/self/status
	CapLastCap   int    // /proc/sys/kernel/cap_last_cap, -1 unknown
	// ProcMounted says a procfs is mounted; ProcOvermounts are the mounts
	// over parts of it (see ProcOvermounts).
	ProcMounted    bool
	ProcOvermounts []string

	// Pasta and Slirp4netns are the paths found on PATH, "" when none.
	Pasta       string
	Slirp4netns string
}

// Helper is what the host says about newuidmap or newgidmap.
type Helper struct {
	Path     string // "" when not on PATH
	Mode     uint32 // permission bits, setuid included (07777)
	Owner    uint32
	FileCaps bool   // a security.capability extended attribute
	NoSuid   bool   // its filesystem is mounted nosuid
	Err      string // why it could not be examined
}

// Check statuses.
const (
	StatusOK   = "ok"
	StatusWarn = "warn"
	StatusFail = "fail"
)

// Check is the verdict on one host gate. Fix is one line, set whenever
// Status is not ok.
type Check struct {
	Name   string `json:"name"`
	Status string `json:"status"`
	Detail string `json:"detail"`
	Fix    string `json:"fix"`
}

// DoctorGates are the gates' names, in the order Diagnose reports them.
var DoctorGates = []string{
	"userns", "apparmor", "container", "newuidmap", "newgidmap", "subids",
	"cgroup2", "user-manager", "controllers", "landlock", "seccomp", "tiocsti", "usernet",
}

// Diagnose checks every gate. Only the gates that `sbx run` with the
// default profile needs ever fail (user namespaces, AppArmor's
// restriction, a fresh /proc, subordinate ids that cannot be read, a
// helper that sbx would run but cannot work); what sbx can do without
// (the full id map, limits, Landlock, seccomp, a user-mode network)
// warns.
func Diagnose(f DoctorFacts) []Check {
	return []Check{
		checkUserns(f), checkAppArmor(f), checkContainer(f),
		checkHelper("newuidmap", "cap_setuid", f.NewUIDMap, f),
		checkHelper("newgidmap", "cap_setgid", f.NewGIDMap, f),
		checkSubIDs(f), checkCgroup2(f), checkUserManager(f), checkControllers(f),
		checkLandlock(f), checkSeccomp(f), checkTIOCSTI(f), checkUsernet(f),
	}
}

// Usable reports whether `sbx run` works with the default profile: no
// gate failed.
func Usable(checks []Check) bool {
	return !slices.ContainsFunc(checks, func(c Check) bool { return c.Status == StatusFail })
}

func okCheck(name, detail string) Check { return Check{Name: name, Status: StatusOK, Detail: detail} }
func warnCheck(name, detail, fix string) Check {
	return Check{Name: name, Status: StatusWarn, Detail: detail, Fix: fix}
}
func failCheck(name, detail, fix string) Check {
	return Check{Name: name, Status: StatusFail, Detail: detail, Fix: fix}
}

func userOr(f DoctorFacts) string {
	if f.User == "" {
		return "$USER"
	}
	return f.User
}

func persist(setting string) string {
	return fmt.Sprintf("sudo sysctl -w %s, and keep it in /etc/sysctl.d/90-sbx.conf", setting)
}

func checkUserns(f DoctorFacts) Check {
	const name = "userns"
	switch {
	case f.MaxUserNamespaces == 0:
		return failCheck(name, "user.max_user_namespaces is 0: nobody may create a user namespace",
			persist("user.max_user_namespaces=15000"))
	case f.UnprivUsernsClone == 0:
		return failCheck(name, "kernel.unprivileged_userns_clone is 0: only root may create a user namespace",
			persist("kernel.unprivileged_userns_clone=1"))
	case f.UsernsErr != "":
		detail := "creating a user namespace failed: " + f.UsernsErr
		fix := "ask the administrator why this user may not create user namespaces (user_namespaces(7)): a seccomp policy or an LSM refuses it"
		if f.SeccompMode == 2 && nested(f) {
			detail += " (under a container's seccomp filter)"
			fix = "run the container with a seccomp profile that allows user namespaces (docker/podman: --security-opt seccomp=unconfined, or --privileged)"
		}
		return failCheck(name, detail, fix)
	}
	detail := "a new user namespace works"
	if f.MaxUserNamespaces > 0 {
		detail += fmt.Sprintf(" (user.max_user_namespaces %d)", f.MaxUserNamespaces)
	}
	return okCheck(name, detail)
}

func checkAppArmor(f DoctorFacts) Check {
	const name = "apparmor"
	switch {
	case f.AppArmorRestrictUserns < 0:
		return okCheck(name, "no AppArmor restriction of user namespaces on this kernel")
	case f.AppArmorRestrictUserns == 0:
		return okCheck(name, "kernel.apparmor_restrict_unprivileged_userns is 0")
	case len(f.AppArmorProfiles) > 0:
		return okCheck(name, fmt.Sprintf("user namespaces are restricted, but %s lets %s create them", strings.Join(f.AppArmorProfiles, ", "), f.Executable))
	}
	exe := f.Executable
	if exe == "" {
		exe = "/usr/local/bin/sbx"
	}
	return failCheck(name,
		"kernel.apparmor_restrict_unprivileged_userns is 1 and no AppArmor profile lets "+exe+" create user namespaces: the sandbox would have no capabilities to build its view",
		fmt.Sprintf(`printf 'abi <abi/4.0>,\ninclude <tunables/global>\nprofile sbx %s flags=(unconfined) {\n  userns,\n}\n' | sudo tee /etc/apparmor.d/sbx && sudo apparmor_parser -r /etc/apparmor.d/sbx`, exe))
}

// nested reports whether the facts show signs of a container.
func nested(f DoctorFacts) bool {
	return f.DockerEnv || f.ContainerEnv || len(missingCaps(f)) > 0
}

func checkContainer(f DoctorFacts) Check {
	const name = "container"
	var signs []string
	if f.DockerEnv {
		signs = append(signs, "/.dockerenv")
	}
	if f.ContainerEnv {
		signs = append(signs, "/run/.containerenv")
	}
	if m := missingCaps(f); len(m) > 0 {
		signs = append(signs, "the bounding set lacks "+strings.Join(m, ", "))
	}
	where := "no signs of a container"
	if len(signs) > 0 {
		where = "nested in a container (" + strings.Join(signs, "; ") + ")"
	}
	switch {
	case !f.ProcMounted:
		return failCheck(name, where+"; no procfs is mounted: the kernel lets a user namespace mount a fresh /proc only where a full one is visible",
			"mount proc at /proc (in a container: do not mask or unmount it)")
	case len(f.ProcOvermounts) > 0:
		return failCheck(name, where+"; /proc is masked ("+strings.Join(f.ProcOvermounts, ", ")+"): the kernel refuses the sandbox a fresh /proc while parts of the host's are covered",
			"run the container with /proc unmasked (docker: --security-opt systempaths=unconfined; podman: --security-opt unmask=ALL)")
	}
	return okCheck(name, where+"; /proc is fully visible")
}

// missingCaps names the capabilities up to CapLastCap that CapBnd lacks.
func missingCaps(f DoctorFacts) []string {
	var out []string
	for c := 0; c <= f.CapLastCap && c < 64; c++ {
		if f.CapBnd&(1<<c) != 0 {
			continue
		}
		if c < len(capNames) {
			out = append(out, "CAP_"+capNames[c])
		} else {
			out = append(out, fmt.Sprintf("capability %d", c))
		}
	}
	return out
}

// capNames are the capabilities by number (capabilities(7)).
var capNames = []string{
	"CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID",
	"SETPCAP", "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST", "NET_ADMIN", "NET_RAW",
	"IPC_LOCK", "IPC_OWNER", "SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT",
	"SYS_ADMIN", "SYS_BOOT", "SYS_NICE", "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD",
	"LEASE", "AUDIT_WRITE", "AUDIT_CONTROL", "SETFCAP", "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG",
	"WAKE_ALARM", "BLOCK_SUSPEND", "AUDIT_READ", "PERFMON", "BPF", "CHECKPOINT_RESTORE",
}

// subIDsUsable reports whether sbx would map subordinate ids (and so
// run the helpers).
func subIDsUsable(f DoctorFacts) bool {
	return len(idmap.Usable(f.UID, f.SubUIDs)) > 0 && len(idmap.Usable(f.GID, f.SubGIDs)) > 0
}

func checkHelper(name, capName string, h Helper, f DoctorFacts) Check {
	if h.Path == "" {
		return warnCheck(name, "not on PATH: the sandbox maps only your own id",
			"sudo apt-get install uidmap (Fedora, Arch: shadow-utils / shadow)")
	}
	setuid := h.Mode&0o4000 != 0 && h.Owner == 0
	var why, fix string
	switch {
	case h.Err != "":
		why, fix = h.Path+": "+h.Err, "reinstall the uidmap package"
	case h.NoSuid && (setuid || h.FileCaps):
		why, fix = h.Path+" is on a filesystem mounted nosuid: its privilege does not apply",
			"install "+name+" on a filesystem mounted without nosuid (the uidmap package puts it in /usr/bin)"
	case !setuid && !h.FileCaps:
		why, fix = fmt.Sprintf("%s is neither setuid root nor has file capabilities (mode %04o, owner %d)", h.Path, h.Mode, h.Owner),
			fmt.Sprintf("sudo chown root %[1]s && sudo chmod u+s %[1]s (or: sudo setcap %[2]s+ep %[1]s)", h.Path, capName)
	}
	if why == "" {
		how := fmt.Sprintf("setuid root, mode %04o", h.Mode)
		if h.FileCaps {
			how = "file capabilities"
			if setuid {
				how = fmt.Sprintf("setuid root, mode %04o, and file capabilities", h.Mode)
			}
		}
		return okCheck(name, h.Path+", "+how)
	}
	if subIDsUsable(f) {
		return failCheck(name, why+"; sbx runs it because you have subordinate ids, and it would fail", fix)
	}
	return warnCheck(name, why+"; unused while you have no subordinate ids", fix)
}

func checkSubIDs(f DoctorFacts) Check {
	const name = "subids"
	if f.SubIDErr != "" {
		return failCheck(name, f.SubIDErr+": sbx reads them before every run",
			"sudo chmod 644 /etc/subuid /etc/subgid")
	}
	uids, gids := idmap.Usable(f.UID, f.SubUIDs), idmap.Usable(f.GID, f.SubGIDs)
	if len(uids) > 0 && len(gids) > 0 {
		return okCheck(name, fmt.Sprintf("uids %s, gids %s, from %s", ranges(uids), ranges(gids), f.SubIDSource))
	}
	var none []string
	if len(uids) == 0 {
		none = append(none, "uid")
	}
	if len(gids) == 0 {
		none = append(none, "gid")
	}
	src := f.SubIDSource
	if src == "" {
		src = "/etc/subuid, /etc/subgid"
	}
	u := userOr(f)
	return warnCheck(name,
		fmt.Sprintf("no usable subordinate %s range for %s from %s: the sandbox maps only your own id", strings.Join(none, " or "), u, src),
		fmt.Sprintf("sudo usermod --add-subuids 100000-165535 --add-subgids 100000-165535 %s", u))
}

func ranges(rs []idmap.Range) string {
	var s []string
	n := uint64(0)
	for _, r := range rs {
		s = append(s, fmt.Sprintf("%d-%d", r.Start, uint64(r.Start)+uint64(r.Count)-1))
		n += uint64(r.Count)
	}
	return fmt.Sprintf("%s (%d)", strings.Join(s, ","), n)
}

// CgroupMode names the host's cgroup layout: "unified" (cgroup v2
// only), "hybrid" (cgroup v2 beside controllers on v1), "v1" or "none".
func CgroupMode(v2 string, v1 []string) string {
	switch {
	case v2 != "" && len(v1) == 0:
		return "unified"
	case v2 != "":
		return "hybrid"
	case len(v1) > 0:
		return "v1"
	}
	return "none"
}

const unifiedFix = "boot with systemd.unified_cgroup_hierarchy=1 on the kernel command line"

func checkCgroup2(f DoctorFacts) Check {
	const name = "cgroup2"
	switch CgroupMode(f.Cgroup2, f.CgroupV1) {
	case "unified":
		return okCheck(name, "unified: cgroup v2 only, at "+f.Cgroup2)
	case "hybrid":
		return warnCheck(name, fmt.Sprintf("hybrid: cgroup v2 at %s, but %s on cgroup v1: limits on them cannot work", f.Cgroup2, strings.Join(f.CgroupV1, ", ")), unifiedFix)
	case "v1":
		return warnCheck(name, "cgroup v1 only: limits cannot work", unifiedFix)
	}
	return warnCheck(name, "no cgroup hierarchy is mounted: limits cannot work", "mount cgroup2 at /sys/fs/cgroup, or "+unifiedFix)
}

func checkUserManager(f DoctorFacts) Check {
	const name = "user-manager"
	linger := "; lingering"
	if !f.Linger {
		linger = "; not lingering: it stops after your last session ends"
	}
	if f.ManagerVersion != "" {
		return okCheck(name, fmt.Sprintf("systemd %s at %s%s", f.ManagerVersion, strings.TrimPrefix(f.ManagerVia, "unix:path="), linger))
	}
	var detail string
	switch {
	case f.RuntimeDir == "":
		detail = "XDG_RUNTIME_DIR is not set (su, sudo, or a session without PAM)"
	case f.ManagerErr != "":
		detail = f.ManagerErr
	case !f.PrivateSocket && !f.BusSocket:
		detail = fmt.Sprintf("neither %s/systemd/private nor %s/bus exists", f.RuntimeDir, f.RuntimeDir)
	default:
		detail = "it did not answer"
	}
	if !f.SystemdBooted {
		detail += "; PID 1 is not systemd here"
	}
	if !f.Linger {
		detail += "; not lingering"
	}
	return warnCheck(name, "no systemd user manager reachable: "+detail+" (only limits need it)",
		fmt.Sprintf("log in through a PAM session (ssh, a console; not su/sudo), or run `loginctl enable-linger %s`, and keep XDG_RUNTIME_DIR=/run/user/%d set", userOr(f), f.UID))
}

// limitControllers are the controllers limits use, with their flags.
var limitControllers = []struct{ name, flags string }{
	{"cpu", "--cpus, --cpu-weight"}, {"io", "--io-weight"}, {"memory", "--memory"}, {"pids", "--pids"},
}

func checkControllers(f DoctorFacts) Check {
	const name = "controllers"
	if f.ManagerVersion == "" {
		return warnCheck(name, "unknown: no user manager to ask (only limits need them)",
			"make the user manager reachable (see user-manager), then run sbx doctor again")
	}
	if f.DelegatedErr != "" {
		return warnCheck(name, "cannot read the controllers of "+f.ManagerCgroup+": "+f.DelegatedErr,
			"check that the user manager's cgroup is under "+f.Cgroup2+" (is sbx in another cgroup namespace?)")
	}
	var missing, flags []string
	for _, c := range limitControllers {
		if !slices.Contains(f.Delegated, c.name) {
			missing = append(missing, c.name)
			flags = append(flags, c.flags)
		}
	}
	have := strings.Join(f.Delegated, " ")
	if have == "" {
		have = "none"
	}
	if len(missing) == 0 {
		return okCheck(name, "delegated to "+f.ManagerCgroup+": "+have)
	}
	fix := `sudo mkdir -p /etc/systemd/system/user@.service.d && printf '[Service]\nDelegate=cpu cpuset io memory pids\n' | sudo tee /etc/systemd/system/user@.service.d/delegate.conf && sudo systemctl daemon-reload, then log in again`
	if CgroupMode(f.Cgroup2, f.CgroupV1) != "unified" {
		fix = unifiedFix + ", then run sbx doctor again"
	}
	return warnCheck(name, fmt.Sprintf("delegated to %s: %s; missing %s: %s cannot work", f.ManagerCgroup, have, strings.Join(missing, ", "), strings.Join(flags, ", ")), fix)
}

func checkLandlock(f DoctorFacts) Check {
	const name = "landlock"
	if f.LandlockABI >= LandlockFullABI {
		return okCheck(name, fmt.Sprintf("ABI %d", f.LandlockABI))
	}
	if f.LandlockABI >= 1 {
		return warnCheck(name, fmt.Sprintf("ABI %d: sbx runs without %s, and --strict refuses to", f.LandlockABI, strings.Join(landlockDrops(f.LandlockABI), ", ")),
			"a kernel with Landlock ABI 6 (Linux 6.12 or later)")
	}
	switch f.LandlockErr {
	case "EOPNOTSUPP", "ENOTSUP":
		return warnCheck(name, "built into the kernel but not enabled",
			"add landlock to the lsm= kernel parameter (see /sys/kernel/security/lsm for the current list)")
	case "ENOSYS", "":
		return warnCheck(name, "this kernel has no Landlock", "use a kernel built with CONFIG_SECURITY_LANDLOCK=y (Linux 5.13+)")
	}
	return warnCheck(name, "landlock_create_ruleset: "+f.LandlockErr, "use a kernel built with CONFIG_SECURITY_LANDLOCK=y (Linux 5.13+)")
}

func checkSeccomp(f DoctorFacts) Check {
	const name = "seccomp"
	if !f.SeccompFilter {
		return warnCheck(name, "this kernel has no seccomp filter mode", "use a kernel built with CONFIG_SECCOMP_FILTER=y")
	}
	detail := "filter mode available"
	if f.SeccompMode == 2 {
		detail += "; sbx already runs under a filter (a container's or a service's), which the sandbox inherits"
	}
	return okCheck(name, detail)
}

func checkTIOCSTI(f DoctorFacts) Check {
	const name = "tiocsti"
	const own = "; the sandbox has its own session, so its payload cannot push input into your terminal"
	switch f.LegacyTIOCSTI {
	case 0:
		return okCheck(name, "dev.tty.legacy_tiocsti is 0: TIOCSTI is refused")
	case -1:
		return warnCheck(name, "this kernel (before 6.2) always allows TIOCSTI"+own,
			"Linux 6.2+ can refuse it: dev.tty.legacy_tiocsti=0")
	}
	return warnCheck(name, "dev.tty.legacy_tiocsti is 1: a program may push input into its terminal"+own,
		persist("dev.tty.legacy_tiocsti=0"))
}

func checkUsernet(f DoctorFacts) Check {
	const name = "usernet"
	var found []string
	for _, p := range []string{f.Pasta, f.Slirp4netns} {
		if p != "" {
			found = append(found, p)
		}
	}
	if len(found) > 0 {
		return okCheck(name, strings.Join(found, ", "))
	}
	return warnCheck(name, "neither pasta nor slirp4netns is on PATH: no user-mode network for a sandbox (--net none and --net host need none)",
		"sudo apt-get install passt")
}

// ProcOvermounts reads /proc/self/mountinfo text (proc(5)) and reports
// whether a procfs is mounted and, for the least covered one, the
// mounts over parts of it. The kernel lets a user namespace mount a
// fresh procfs only while some procfs is fully visible, that is
// covered at most on permanently empty directories (mnt_already_visible
// in fs/namespace.c): of those procfs has one, sys/fs/binfmt_misc.
func ProcOvermounts(r io.Reader) (mounted bool, over []string, err error) {
	type mount struct{ id, parent, root, point, fstype string }
	var all []mount
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for sc.Scan() {
		pre, post, found := strings.Cut(sc.Text(), " - ")
		f, t := strings.Fields(pre), strings.Fields(post)
		if !found || len(f) < 5 || len(t) < 1 {
			continue
		}
		all = append(all, mount{f[0], f[1], f[3], f[4], t[0]})
	}
	if err := sc.Err(); err != nil {
		return false, nil, err
	}
	for _, p := range all {
		// Only a mount of a whole procfs counts, not a bind of a part.
		if p.fstype != "proc" || p.root != "/" {
			continue
		}
		// Mounts below p: children by mount id, transitively.
		var cover []string
		ids := map[string]bool{p.id: true}
		for grew := true; grew; {
			grew = false
			for _, m := range all {
				if ids[m.parent] && !ids[m.id] && strings.HasPrefix(m.point, strings.TrimSuffix(p.point, "/")+"/") {
					ids[m.id], grew = true, true
					if m.point != strings.TrimSuffix(p.point, "/")+"/sys/fs/binfmt_misc" {
						cover = append(cover, m.point)
					}
				}
			}
		}
		if !mounted || len(cover) < len(over) {
			over = cover
		}
		mounted = true
	}
	return mounted, over, nil
}

// AppArmorAllowsUserns reports whether an AppArmor policy file's text
// attaches a profile to exe (`profile NAME EXE ...` or `EXE ...`) that
// holds a `userns,` rule, as Ubuntu's profiles for bwrap and unshare do.
func AppArmorAllowsUserns(text, exe string) bool {
	attached, userns := false, false
	for _, line := range strings.Split(text, "\n") {
		line, _, _ = strings.Cut(line, "#")
		w := strings.Fields(line)
		if len(w) == 0 {
			continue
		}
		if w[0] == "profile" && len(w) >= 3 && strings.Trim(w[2], `"{`) == exe {
			attached = true
		}
		if strings.Trim(w[0], `"{`) == exe {
			attached = true
		}
		rule := strings.Join(w, " ")
		rule = strings.TrimPrefix(rule, "allow ")
		if rule == "userns," || rule == "userns create," {
			userns = true
		}
	}
	return attached && userns
}
