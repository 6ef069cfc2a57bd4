package sandbox

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// execMain is the payload's last Go code, in the nested user namespace:
// it empties every capability set (unless --root), sets no_new_privs,
// closes what must not be inherited, and execs the command. Capability
// sets are per thread, so all of it happens on one locked thread, the
// one that calls execve.
func execMain(fd int) int {
	runtime.LockOSThread()
	unix.CloseOnExec(fd)
	ctl := &conn{os.NewFile(uintptr(fd), "sbx-ctl")}
	m, err := ctl.recv()
	if err != nil || m.Type != msgExecSpec || m.Spec == nil {
		return 125
	}
	s := m.Spec
	fail := func(op string, err error) int {
		ctl.send(message{Type: msgError, Error: stageErr("exec", op, err)})
		return 125
	}
	if uid, gid := unix.Getuid(), unix.Getgid(); uid != int(s.UID) || gid != int(s.GID) {
		return fail("check identity", fmt.Errorf("running as %d:%d, the plan says %d:%d", uid, gid, s.UID, s.GID))
	}
	if s.DropCaps {
		if err := dropCapabilities(); err != nil {
			return fail("drop capabilities", err)
		}
	}
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fail("set no_new_privs", err)
	}
	if err := closeInherited(s.KeepFDs); err != nil {
		return fail("close inherited descriptors", err)
	}
	if err := unix.Chdir(s.Cwd); err != nil {
		return fail("chdir "+s.Cwd, err)
	}
	code, err := execvpe(s.Argv, s.Env)
	ctl.send(message{Type: msgExecFailed, ExitCode: code, Text: err.Error()})
	return code
}

// dropCapabilities empties the bounding set (CAP_SETPCAP came in the
// ambient set for this), then the ambient, inheritable, permitted and
// effective sets.
func dropCapabilities() error {
	last, err := lastCap()
	if err != nil {
		return err
	}
	for c := 0; c <= last; c++ {
		if err := unix.Prctl(unix.PR_CAPBSET_DROP, uintptr(c), 0, 0, 0); err != nil && !errors.Is(err, unix.EINVAL) {
			return fmt.Errorf("drop bounding capability %d: %w", c, err)
		}
	}
	if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0); err != nil {
		return fmt.Errorf("clear ambient capabilities: %w", err)
	}
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capset(&hdr, &data[0]); err != nil {
		return fmt.Errorf("capset: %w", err)
	}
	return nil
}

func lastCap() (int, error) {
	b, err := os.ReadFile("/proc/sys/kernel/cap_last_cap")
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(string(b)))
}

// closeInherited marks every descriptor above 2 close-on-exec except the
// kept ones.
func closeInherited(keep []int) error {
	next := uint(3)
	for _, fd := range slices.Sorted(slices.Values(keep)) {
		if uint(fd) > next {
			if err := unix.CloseRange(next, uint(fd)-1, unix.CLOSE_RANGE_CLOEXEC); err != nil {
				return err
			}
		}
		next = uint(fd) + 1
	}
	return unix.CloseRange(next, ^uint(0), unix.CLOSE_RANGE_CLOEXEC)
}

// execvpe executes argv[0] as execvp(3) does: a name without '/' is
// looked up in the payload's PATH; a file the kernel cannot execute
// (ENOEXEC) is run by /bin/sh. It returns only on failure, with 127
// when nothing was found and 126 when something was found but could not
// be executed.
func execvpe(argv, env []string) (int, error) {
	name := argv[0]
	if strings.Contains(name, "/") {
		err := execOne(name, argv, env)
		return execCode(err), fmt.Errorf("%s: %w", name, err)
	}
	pathEnv := "/usr/local/bin:/usr/bin:/bin"
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			pathEnv = v
		}
	}
	var denied error
	for _, dir := range strings.Split(pathEnv, ":") {
		if dir == "" {
			dir = "."
		}
		err := execOne(dir+"/"+name, argv, env)
		switch {
		case errors.Is(err, unix.ENOENT), errors.Is(err, unix.ENOTDIR), errors.Is(err, unix.ENAMETOOLONG), errors.Is(err, unix.ELOOP):
			continue
		case errors.Is(err, unix.EACCES), errors.Is(err, unix.EISDIR), errors.Is(err, unix.EPERM):
			if denied == nil {
				denied = fmt.Errorf("%s/%s: %w", dir, name, err)
			}
			continue
		default:
			return execCode(err), fmt.Errorf("%s/%s: %w", dir, name, err)
		}
	}
	if denied != nil {
		return 126, denied
	}
	return 127, fmt.Errorf("%s: command not found", name)
}

func execOne(file string, argv, env []string) error {
	err := unix.Exec(file, argv, env)
	if errors.Is(err, unix.ENOEXEC) {
		err = unix.Exec("/bin/sh", append([]string{"sh", file}, argv[1:]...), env)
		if errors.Is(err, unix.ENOENT) {
			err = unix.ENOEXEC
		}
	}
	return err
}

func execCode(err error) int {
	if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) {
		return 127
	}
	return 126
}
