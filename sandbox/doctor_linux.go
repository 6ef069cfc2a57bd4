package sandbox

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"sbx/cgroup"
	"sbx/policy"
	"sbx/userns"
)

// managerTimeout bounds the wait for the user manager's answer.
const managerTimeout = 3 * time.Second

// ProbeDoctor gathers what `sbx doctor` reports on (policy.Diagnose
// judges it). It changes nothing on the host and in the environment:
// its one trial is a child cloned into a new user namespace, which runs
// /bin/true and exits.
func ProbeDoctor() policy.DoctorFacts {
	f := policy.DoctorFacts{
		UID: uint32(os.Getuid()), GID: uint32(os.Getgid()),
		MaxUserNamespaces:      sysctl("user/max_user_namespaces"),
		UnprivUsernsClone:      sysctl("kernel/unprivileged_userns_clone"),
		AppArmorRestrictUserns: sysctl("kernel/apparmor_restrict_unprivileged_userns"),
		LegacyTIOCSTI:          sysctl("dev/tty/legacy_tiocsti"),
		CapLastCap:             sysctl("kernel/cap_last_cap"),
		RuntimeDir:             os.Getenv("XDG_RUNTIME_DIR"),
		BusAddress:             os.Getenv("DBUS_SESSION_BUS_ADDRESS"),
		SeccompMode:            -1,
	}
	if c, err := ProbeCaller(); err == nil {
		f.User = c.User
	} else {
		f.User = os.Getenv("USER")
	}
	if exe, err := os.Executable(); err == nil {
		f.Executable, _ = filepath.EvalSymlinks(exe)
	}

	f.UsernsErr = tryUserns()
	f.AppArmorProfiles = appArmorProfiles("/etc/apparmor.d", f.Executable)

	uidHelper, gidHelper := userns.Helpers()
	f.NewUIDMap, f.NewGIDMap = helper(uidHelper), helper(gidHelper)
	subu, subg, source, err := userns.SubIDs(f.User, f.UID)
	if err != nil {
		f.SubIDErr = err.Error()
	}
	f.SubUIDs, f.SubGIDs, f.SubIDSource = subu, subg, source

	if b, err := os.ReadFile("/proc/self/mountinfo"); err == nil {
		m, _ := cgroup.ParseMountinfo(bytes.NewReader(b))
		f.Cgroup2, f.CgroupV1 = m.V2, m.V1
		f.ProcMounted, f.ProcOvermounts, _ = policy.ProcOvermounts(bytes.NewReader(b))
	}
	f.Linger = exists(filepath.Join("/var/lib/systemd/linger", f.User))
	f.SystemdBooted = exists("/run/systemd/system")
	if f.RuntimeDir != "" {
		f.PrivateSocket = exists(filepath.Join(f.RuntimeDir, "systemd", "private"))
		f.BusSocket = exists(filepath.Join(f.RuntimeDir, "bus"))
		probeManager(&f)
	}

	f.LandlockABI = -1
	abi, _, errno := unix.Syscall(unix.SYS_LANDLOCK_CREATE_RULESET, 0, 0, unix.LANDLOCK_CREATE_RULESET_VERSION)
	if errno != 0 {
		f.LandlockErr = unix.ErrnoName(errno)
	} else {
		f.LandlockABI = int(abi)
	}
	// The current mode (seccomp(2) gives no other way), then whether
	// the kernel has filters: SECCOMP_RET_ALLOW is available wherever
	// seccomp filters are (SECCOMP_GET_ACTION_AVAIL, Linux 4.14+).
	status := procStatus()
	if v, ok := status["Seccomp"]; ok {
		f.SeccompMode, _ = strconv.Atoi(v)
	}
	action := uint32(unix.SECCOMP_RET_ALLOW)
	_, _, errno = unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_GET_ACTION_AVAIL, 0, uintptr(unsafe.Pointer(&action)))
	f.SeccompFilter = errno == 0

	f.DockerEnv = exists("/.dockerenv")
	f.ContainerEnv = exists("/run/.containerenv")
	f.CapBnd, _ = strconv.ParseUint(status["CapBnd"], 16, 64)
	f.Pasta, _ = exec.LookPath("pasta")
	f.Slirp4netns, _ = exec.LookPath("slirp4netns")
	return f
}

// sysctl reads an integer under /proc/sys; -1 when absent or unreadable.
func sysctl(name string) int {
	b, err := os.ReadFile("/proc/sys/" + name)
	if err != nil {
		return -1
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return -1
	}
	return n
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// tryUserns clones a child into a new user namespace to run /bin/true
// and returns why that failed, "" when it worked. An error of the exec
// (ENOENT, EACCES) comes from the child, so the clone itself worked.
func tryUserns() string {
	pid, _, err := syscall.StartProcess("/bin/true", []string{"true"}, &syscall.ProcAttr{
		Env: []string{}, Sys: &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWUSER},
	})
	if errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.EACCES) {
		return ""
	}
	if err != nil {
		return fmt.Sprintf("clone(CLONE_NEWUSER): %v (%s)", err, errnoName(err))
	}
	var ws syscall.WaitStatus
	for {
		if _, err := syscall.Wait4(pid, &ws, 0, nil); err != syscall.EINTR {
			break
		}
	}
	return ""
}

func errnoName(err error) string {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return unix.ErrnoName(errno)
	}
	return "?"
}

// helper examines newuidmap or newgidmap at path.
func helper(path string) policy.Helper {
	h := policy.Helper{Path: path}
	if path == "" {
		return h
	}
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		h.Err = err.Error()
		return h
	}
	h.Mode, h.Owner = st.Mode&0o7777, st.Uid
	if _, err := unix.Getxattr(path, "security.capability", nil); err == nil {
		h.FileCaps = true
	}
	var sfs unix.Statfs_t
	if err := unix.Statfs(path, &sfs); err == nil {
		h.NoSuid = sfs.Flags&unix.ST_NOSUID != 0
	}
	return h
}

// appArmorProfiles lists the policy files in dir (not disabled through
// dir/disable) that let exe create user namespaces.
func appArmorProfiles(dir, exe string) []string {
	if exe == "" {
		return nil
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var out []string
	for _, e := range entries {
		if !e.Type().IsRegular() || exists(filepath.Join(dir, "disable", e.Name())) {
			continue
		}
		p := filepath.Join(dir, e.Name())
		file, err := os.Open(p)
		if err != nil {
			continue
		}
		b, err := io.ReadAll(io.LimitReader(file, 1<<20))
		file.Close()
		if err == nil && policy.AppArmorAllowsUserns(string(b), exe) {
			out = append(out, p)
		}
	}
	return out
}

// procStatus reads the "Key:\tvalue" lines of /proc/self/status.
func procStatus() map[string]string {
	out := map[string]string{}
	file, err := os.Open("/proc/self/status")
	if err != nil {
		return out
	}
	defer file.Close()
	sc := bufio.NewScanner(file)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok {
			out[k] = strings.TrimSpace(v)
		}
	}
	return out
}

// probeManager asks the user manager for its version and its cgroup's
// controllers, waiting at most managerTimeout for its answers. It never
// starts a bus.
func probeManager(f *policy.DoctorFacts) {
	type answer struct {
		version, via, cg string
		err, cgErr       error
	}
	done := make(chan answer, 1)
	go func() {
		var a answer
		m, err := cgroup.Connect(cgroup.Env{RuntimeDir: f.RuntimeDir, BusAddress: f.BusAddress, User: f.User, UID: int(f.UID)})
		if err != nil {
			a.err = err
			done <- a
			return
		}
		defer m.Close()
		a.version, a.via = m.Version, m.Via
		a.cg, a.cgErr = m.ControlGroup()
		done <- a
	}()
	var a answer
	select {
	case a = <-done:
	case <-time.After(managerTimeout):
		// The goroutine is left behind: the process ends soon.
		f.ManagerErr = fmt.Sprintf("no answer within %s", managerTimeout)
		return
	}
	if a.err != nil {
		f.ManagerErr = a.err.Error()
		return
	}
	f.ManagerVersion, f.ManagerVia, f.ManagerCgroup = a.version, a.via, a.cg
	switch {
	case a.cgErr != nil:
		f.DelegatedErr = "read its ControlGroup: " + a.cgErr.Error()
	case f.Cgroup2 == "":
		f.DelegatedErr = "no cgroup2 hierarchy is mounted"
	default:
		b, err := os.ReadFile(filepath.Join(f.Cgroup2, a.cg, "cgroup.controllers"))
		if err != nil {
			f.DelegatedErr = err.Error()
			return
		}
		f.Delegated = strings.Fields(string(b))
	}
}
