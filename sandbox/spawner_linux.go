package sandbox

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"
	"unsafe"

	libseccomp "github.com/seccomp/libseccomp-golang"
	"golang.org/x/sys/unix"

	"sbx/policy"
)

// spawner owns the thread every process of the sandbox is forked from.
// Capabilities, no_new_privs and the Landlock domain are per thread and
// inherited by fork: that thread alone is trimmed for the payload, and
// every process started from it shares one Landlock domain.
type spawner struct{ jobs chan func() }

// newSpawner starts the thread early (making a thread costs a few
// hundred microseconds, better spent while the id maps are written);
// prepare trims it once the view is built.
func newSpawner() *spawner {
	s := &spawner{jobs: make(chan func())}
	go func() {
		// Never unlocked: the thread ends with this goroutine, and Go
		// starts no thread from a locked one (it asks a clean one).
		runtime.LockOSThread()
		for job := range s.jobs {
			job()
		}
	}()
	return s
}

// prepare trims the spawner's thread for the payload: it must run there
// (s.run), once, before the first spawn.
func (s *spawner) prepare(p *policy.Plan, lastCap int, landlockFD int) error {
	if p.Security.DropCaps {
		if err := dropThreadCapabilities(lastCap); err != nil {
			return opErr("drop capabilities")(err)
		}
	}
	if p.Security.NoNewPrivs {
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			return opErr("set no_new_privs")(err)
		}
	}
	if landlockFD >= 0 {
		err := landlockRestrict(landlockFD)
		unix.Close(landlockFD)
		if err != nil {
			return opErr("enforce the Landlock rules")(err)
		}
	}
	return nil
}

// run runs job on the spawner's thread and waits for it.
func (s *spawner) run(job func()) {
	done := make(chan struct{})
	s.jobs <- func() { job(); close(done) }
	<-done
}

// checkDescriptors refuses what would lead the payload out of its view
// (the class of runc's CVE-2024-21626): a descriptor it inherits that is
// a directory (every one comes from the caller's mount namespace, and
// openat(fd, "..") walks the host's tree from there), and a working
// directory not under the sandbox's root.
func checkDescriptors(files []int) error {
	for child, fd := range files {
		if fd < 0 {
			continue
		}
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil {
			return opErr("check descriptor %d", child)(err)
		}
		if st.Mode&unix.S_IFMT == unix.S_IFDIR {
			return opErr("check descriptor %d", child)(fmt.Errorf("a directory of the host: it would lead out of the sandbox's view (openat(fd, \"..\")); pass its files instead, or bind the directory with --ro or --rw"))
		}
	}
	inside, err := cwdInside()
	if err != nil {
		return opErr("check the working directory")(err)
	}
	if !inside {
		return opErr("check the working directory")(fmt.Errorf("it is not under the sandbox's root"))
	}
	return nil
}

// cwdInside walks up from the working directory: it is inside when the
// walk reaches this process's root, outside when it tops out elsewhere.
func cwdInside() (bool, error) {
	var root unix.Stat_t
	if err := unix.Stat("/", &root); err != nil {
		return false, err
	}
	fd, err := unix.Open(".", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return false, err
	}
	defer func() { unix.Close(fd) }()
	for range 4096 {
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil {
			return false, err
		}
		if st.Dev == root.Dev && st.Ino == root.Ino {
			return true, nil
		}
		up, err := unix.Openat(fd, "..", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return false, err
		}
		var ust unix.Stat_t
		if err := unix.Fstat(up, &ust); err != nil {
			unix.Close(up)
			return false, err
		}
		unix.Close(fd)
		fd = up
		if ust.Dev == st.Dev && ust.Ino == st.Ino {
			return false, nil // the top of a tree that is not ours
		}
	}
	return false, fmt.Errorf("more than 4096 levels")
}

// seccompNotif and seccompNotifResp are the kernel's struct
// seccomp_notif and seccomp_notif_resp (seccomp_unotify(2)).
type seccompNotif struct {
	ID    uint64
	PID   uint32
	Flags uint32
	Data  seccompData
}

type seccompNotifResp struct {
	ID    uint64
	Val   int64
	Error int32
	Flags uint32
}

// maxDeniedLines caps the lines --log-denied prints for one call, and
// maxDeniedTotal all of them: a program that retries in a loop, or tries
// every call number, must not flood the terminal.
const (
	maxDeniedLines = 5
	maxDeniedTotal = 100
)

// serveDenied answers the filter's notifications (--log-denied): each
// refused call gets the error the filter's real program gives it, and
// the launcher a line naming it.
func serveDenied(listener *os.File, f *filter, ctl *conn) {
	defer listener.Close()
	fd := listener.Fd()
	seen := map[int32]int{}
	total := 0
	for {
		// POLLHUP: no process uses the filter any more (sbx exec's
		// command ended): the listener goes.
		p := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		if _, err := unix.Poll(p, -1); err != nil {
			if errors.Is(err, unix.EINTR) {
				continue
			}
			return
		}
		if p[0].Revents&unix.POLLIN == 0 {
			return
		}
		var req seccompNotif
		_, _, e := unix.Syscall(unix.SYS_IOCTL, fd, unix.SECCOMP_IOCTL_NOTIF_RECV, uintptr(unsafe.Pointer(&req)))
		if e == unix.EINTR || e == unix.ENOENT {
			continue // interrupted, or the caller died meanwhile
		}
		if e != 0 {
			return // no process is left that can be notified
		}
		errno := unix.EPERM
		if act, err := runBPF(f.real, &req.Data); err == nil && act&unix.SECCOMP_RET_ACTION_FULL == unix.SECCOMP_RET_ERRNO {
			errno = unix.Errno(act & unix.SECCOMP_RET_DATA)
		}
		// The line goes before the answer: once answered, the caller
		// may exit, and the sandbox end, before a late line is sent.
		name, known := f.syscallName(req.Data.NR, req.Data.Arch)
		bucket := req.Data.NR
		if !known {
			bucket = -1 // numbers without a name count as one call
		}
		seen[bucket]++
		switch n := seen[bucket]; {
		case name == "clone3" && errno == unix.ENOSYS:
			// libc tries clone3 at every thread and falls back to
			// clone when told ENOSYS, as the filter means it to.
		case total > maxDeniedTotal:
		case total == maxDeniedTotal:
			total++
			ctl.send(message{Type: msgDenied, Text: "further refusals not shown"})
		case n <= maxDeniedLines:
			total++
			ctl.send(message{Type: msgDenied, Text: fmt.Sprintf("%s by %s (pid %d): %s",
				name, procName(int(req.PID)), req.PID, unix.ErrnoName(errno))})
		case n == maxDeniedLines+1:
			total++
			ctl.send(message{Type: msgDenied, Text: fmt.Sprintf("%s: further refusals not shown", name)})
		}
		resp := seccompNotifResp{ID: req.ID, Error: -int32(errno)}
		unix.Syscall(unix.SYS_IOCTL, fd, unix.SECCOMP_IOCTL_NOTIF_SEND, uintptr(unsafe.Pointer(&resp)))
	}
}

// procName is process pid's name, made printable ("" once it is gone).
func procName(pid int) string {
	comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	return policy.Printable(strings.TrimSpace(string(comm)))
}

// reportKilled is --log-denied's report of a process that SIGSYS killed
// (reaper.sigsys): a call the filter kills (every call of a foreign ABI)
// ends its caller before any notification, so PID 1 tells it from the
// zombie instead. A process whose parent in the sandbox still lives is
// reaped by that parent, and not seen. mode is the filter's
// (policy.Seccomp.Mode); after maxDeniedLines, one line says the rest
// are not shown.
func reportKilled(ctl *conn, mode string) func(pid int) {
	why := "the filter kills every system call of a foreign ABI"
	switch {
	case mode != policy.SeccompDefault:
		why = "the profile's filter kills or traps a system call (or any of an ABI it does not name)"
	case runtime.GOARCH == "amd64":
		why += " (i386 through int $0x80, x32)"
	case runtime.GOARCH == "arm64":
		why += " (AArch32)"
	}
	n := 0
	return func(pid int) {
		n++
		switch {
		case n <= maxDeniedLines:
			ctl.send(message{Type: msgDenied, Text: fmt.Sprintf("%s (pid %d) was killed by SIGSYS, most likely by the filter: %s", procName(pid), pid, why)})
		case n == maxDeniedLines+1:
			ctl.send(message{Type: msgDenied, Text: "killed by SIGSYS: further ones not shown"})
		}
	}
}

// The filter travels to init in a sealed memfd, read while the launcher
// runs the id-map helpers: a byte for notify, the length of prog in
// instructions (32 bits, native order), prog, then real, in the kernel's
// layout. An empty file is no filter (unconfined).

// encode is the filter's file; nil has none.
func (f *filter) encode() []byte {
	if f == nil {
		return nil
	}
	b := make([]byte, 5, 5+8*(len(f.prog)+len(f.real)))
	if f.notify {
		b[0] = 1
	}
	binary.NativeEndian.PutUint32(b[1:], uint32(len(f.prog)))
	b = append(b, encodeBPF(f.prog)...)
	return append(b, encodeBPF(f.real)...)
}

// decodeFilter is the filter init loads; nil when none came.
func decodeFilter(b []byte) (*filter, error) {
	if len(b) == 0 {
		return nil, nil
	}
	if len(b) < 5 || b[0] > 1 {
		return nil, fmt.Errorf("filter file of %d bytes", len(b))
	}
	notify, n := b[0] == 1, uint64(binary.NativeEndian.Uint32(b[1:]))
	b = b[5:]
	if n == 0 || 8*n > uint64(len(b)) {
		return nil, fmt.Errorf("filter of %d instructions in %d bytes", n, len(b))
	}
	prog, err := decodeBPF(b[:8*n])
	if err != nil {
		return nil, err
	}
	real, err := decodeBPF(b[8*n:])
	if err != nil {
		return nil, err
	}
	f := &filter{prog: prog, real: real, notify: notify}
	if notify {
		if f.arch, err = libseccomp.GetNativeArch(); err != nil {
			return nil, err
		}
	}
	return f, nil
}
