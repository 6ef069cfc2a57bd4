package sandbox

/*
#include <stdlib.h>
#include "spawn_linux.h"
*/
import "C"

import (
	"encoding/binary"
	"fmt"
	"os"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"

	"sbx/idmap"
)

// ignoredAtStart says whether sig was ignored when the process started
// (os/signal knows only of SIGHUP and SIGINT: Go's runtime takes the
// others over).
func ignoredAtStart(sig unix.Signal) bool {
	return sig >= 1 && sig <= 64 && uint64(C.sbx_ignored_at_start)&(1<<(sig-1)) != 0
}

// ignoredChecked says whether the constructor looked at sig.
func ignoredChecked(sig unix.Signal) bool {
	return sig >= 1 && sig <= 64 && uint64(C.sbx_ignored_checked)&(1<<(sig-1)) != 0
}

// spawnAttr is one fork and exec of the payload (or of a command that
// sbx exec adds): what the child lays out before it execs.
type spawnAttr struct {
	argv, env []string
	cwd       string // "": the spawner's (init's)
	// files[i] becomes the child's descriptor i; -1 leaves it closed.
	files  []int
	setsid bool
	ctty   int // the child's descriptor to make its controlling terminal, or -1
	fgTTY  int // a terminal (this process's descriptor) whose foreground the child takes, or -1
	// newUser puts the child in a new user namespace with these maps
	// (--root); setgroups says whether setgroups(2) stays allowed.
	newUser          bool
	uidMap, gidMap   idmap.Map
	setgroups        bool
	joinUserns       int     // or a user namespace to join (setns); -1: none
	filter           *filter // nil: no seccomp filter
	wantNotification bool    // the filter notifies: return its listener
	// init makes the child the launcher's init stage (spawnInit).
	init *initClone
	// ignore are signals the child starts ignoring (policy.Plan's
	// IgnoredSignals).
	ignore []int
	// helper is a setuid helper of the launcher (newuidmap): no
	// no_new_privs, which would void its setuid bit, and a process group
	// of its own, out of reach of a Ctrl-C for sbx.
	helper bool
}

// initClone is how the launcher starts init: cloned into new user and
// pid namespaces, with every capability up to lastCap kept across its
// exec as an ambient one, without no_new_privs, with the parent-death
// signal.
type initClone struct {
	lastCap int
}

var spawnStages = map[int]string{
	C.SBX_STAGE_SYNC:       "wait for the id maps",
	C.SBX_STAGE_SETSID:     "setsid",
	C.SBX_STAGE_FDS:        "lay out descriptors",
	C.SBX_STAGE_CTTY:       "set the controlling terminal",
	C.SBX_STAGE_NNP:        "set no_new_privs",
	C.SBX_STAGE_SECCOMP:    "load the seccomp filter",
	C.SBX_STAGE_LISTENER:   "hand over the seccomp listener",
	C.SBX_STAGE_EXEC:       "exec",
	C.SBX_STAGE_CHDIR:      "chdir",
	C.SBX_STAGE_FOREGROUND: "take the terminal's foreground",
	C.SBX_STAGE_USERNS:     "join the payload's user namespace",
	C.SBX_STAGE_PDEATHSIG:  "set the parent-death signal",
	C.SBX_STAGE_CAPS:       "keep capabilities",
	C.SBX_STAGE_SETPGID:    "setpgid",
}

// spawnError is the child's failure before or at its exec.
type spawnError struct {
	stage string
	errno unix.Errno
}

func (e *spawnError) Error() string {
	if e.stage == "exec" {
		return e.errno.Error()
	}
	return e.stage + ": " + e.errno.Error()
}

func (e *spawnError) Unwrap() error { return e.errno }

// spawn forks and execs file. It returns the child's pid, and the seccomp
// listener when asked; a failure of the child before its exec is a
// *spawnError. With an error, a pid is that of a child that exited or was
// killed, for the caller to reap. It runs on the calling (locked) thread: the child inherits
// that thread's credentials, capability sets and Landlock domain.
func spawn(file string, a *spawnAttr) (pid int, listener *os.File, err error) {
	cfile := C.CString(file)
	defer C.free(unsafe.Pointer(cfile))
	argv := cStrings(a.argv)
	defer freeCStrings(argv)
	envp := cStrings(a.env)
	defer freeCStrings(envp)

	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		return 0, nil, fmt.Errorf("error pipe: %w", err)
	}
	errR, errW := p[0], p[1]
	defer unix.Close(errR)
	closeW := func() {
		if errW >= 0 {
			unix.Close(errW)
			errW = -1
		}
	}
	defer closeW()

	cs := (*C.struct_sbx_spawn)(C.calloc(1, C.sizeof_struct_sbx_spawn))
	defer C.free(unsafe.Pointer(cs))
	cs.path, cs.argv, cs.envp = cfile, argv, envp
	if a.cwd != "" {
		ccwd := C.CString(a.cwd)
		defer C.free(unsafe.Pointer(ccwd))
		cs.cwd = ccwd
	}
	cs.err_fd, cs.sync_fd, cs.listener_sock, cs.ctty, cs.fg_tty, cs.userns_fd = C.int(errW), -1, -1, C.int(a.ctty), C.int(a.fgTTY), C.int(a.joinUserns)
	if a.setsid {
		cs.setsid = 1
	}
	if len(a.files) > 0 {
		fds := (*[1 << 16]C.int)(C.malloc(C.size_t(len(a.files)) * C.sizeof_int))[:len(a.files):len(a.files)]
		defer C.free(unsafe.Pointer(&fds[0]))
		for i, fd := range a.files {
			fds[i] = C.int(fd)
		}
		fdv := C.malloc(C.size_t(len(a.files)) * C.sizeof_int)
		defer C.free(fdv)
		cs.fds, cs.fdv, cs.nfds = &fds[0], (*C.int)(fdv), C.int(len(a.files))
	}
	syncW := -1
	if a.newUser {
		if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
			return 0, nil, fmt.Errorf("sync pipe: %w", err)
		}
		defer unix.Close(p[0])
		syncW = p[1]
		defer func() {
			if syncW >= 0 {
				unix.Close(syncW)
			}
		}()
		cs.sync_fd, cs.clone_flags = C.int(p[0]), unix.CLONE_NEWUSER
	}
	cs.ambient_last, cs.nnp = -1, 1
	for _, sig := range a.ignore {
		if sig >= 1 && sig <= 64 {
			cs.ignore |= C.ulonglong(1) << (sig - 1)
		}
	}
	if a.helper {
		cs.nnp, cs.setpgid = 0, 1
	}
	if a.init != nil {
		cs.clone_flags = unix.CLONE_NEWUSER | unix.CLONE_NEWPID
		cs.ambient_last, cs.nnp, cs.pdeathsig = C.int(a.init.lastCap), 0, 1
	}
	var sockR, sockW int = -1, -1
	if a.filter != nil {
		prog := a.filter.prog
		mem := (*[1 << 16]C.struct_sock_filter)(C.malloc(C.size_t(len(prog)) * C.sizeof_struct_sock_filter))[:len(prog):len(prog)]
		defer C.free(unsafe.Pointer(&mem[0]))
		for i, ins := range prog {
			mem[i] = C.struct_sock_filter{code: C.__u16(ins.Code), jt: C.__u8(ins.Jt), jf: C.__u8(ins.Jf), k: C.__u32(ins.K)}
		}
		cs.filter, cs.filter_len = &mem[0], C.ushort(len(prog))
		if a.wantNotification {
			s, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
			if err != nil {
				return 0, nil, fmt.Errorf("listener socket: %w", err)
			}
			sockR, sockW = s[0], s[1]
			defer unix.Close(sockR)
			defer func() {
				if sockW >= 0 {
					unix.Close(sockW)
				}
			}()
			cs.filter_flags, cs.listener_sock = unix.SECCOMP_FILTER_FLAG_NEW_LISTENER, C.int(sockW)
		}
	}

	r := int(C.sbx_spawn(cs))
	if r < 0 {
		return 0, nil, fmt.Errorf("fork: %w", unix.Errno(-r))
	}
	pid = r
	closeW()
	if sockW >= 0 {
		// The child's copy is all that may send: if it dies first, the
		// receive below ends (EOF) instead of waiting for ever.
		unix.Close(sockW)
		sockW = -1
	}
	if a.newUser {
		// newuidmap is not needed: this process has CAP_SETUID and
		// CAP_SETGID over the sandbox's namespace, the child's parent.
		if err := writeIDMaps(pid, a.uidMap, a.gidMap, a.setgroups); err != nil {
			unix.Kill(pid, unix.SIGKILL)
			return 0, nil, fmt.Errorf("nested user namespace: %w", err)
		}
		unix.Write(syncW, []byte{1})
		unix.Close(syncW)
		syncW = -1
	}
	var msg [8]byte
	n, rerr := readFull(errR, msg[:])
	switch {
	case rerr != nil:
		unix.Kill(pid, unix.SIGKILL) // and the caller reaps it
		return pid, nil, fmt.Errorf("read the child's status: %w", rerr)
	case n == 8:
		stage := int(binary.NativeEndian.Uint32(msg[:4]))
		// With the pid: the child exited (127), and is the caller's to reap.
		return pid, nil, &spawnError{stage: spawnStages[stage], errno: unix.Errno(binary.NativeEndian.Uint32(msg[4:]))}
	case n != 0:
		unix.Kill(pid, unix.SIGKILL) // and the caller reaps it
		return pid, nil, fmt.Errorf("short status from the child (%d bytes)", n)
	}
	if a.wantNotification && a.filter != nil {
		fd, err := recvFD(sockR)
		if err != nil {
			// It runs without anyone to answer its refused calls.
			unix.Kill(pid, unix.SIGKILL)
			return 0, nil, fmt.Errorf("receive the seccomp listener: %w", err)
		}
		listener = os.NewFile(uintptr(fd), "seccomp-listener")
	}
	return pid, listener, nil
}

// readFull reads until buf is full or EOF.
func readFull(fd int, buf []byte) (int, error) {
	n := 0
	for n < len(buf) {
		m, err := unix.Read(fd, buf[n:])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return n, err
		}
		if m == 0 {
			break
		}
		n += m
	}
	return n, nil
}

func recvFD(sock int) (int, error) {
	buf := make([]byte, 1)
	oob := make([]byte, unix.CmsgSpace(4))
	_, oobn, _, _, err := unix.Recvmsg(sock, buf, oob, unix.MSG_CMSG_CLOEXEC)
	if err != nil {
		return -1, err
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) != 1 {
		return -1, fmt.Errorf("no descriptor in the message")
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) != 1 {
		return -1, fmt.Errorf("no descriptor in the message")
	}
	return fds[0], nil
}

// writeIDMaps writes a child's uid and gid maps from its parent namespace.
func writeIDMaps(pid int, uids, gids idmap.Map, setgroups bool) error {
	dir := fmt.Sprintf("/proc/%d/", pid)
	if err := os.WriteFile(dir+"uid_map", []byte(uids.String()), 0); err != nil {
		return err
	}
	if !setgroups {
		if err := os.WriteFile(dir+"setgroups", []byte("deny"), 0); err != nil {
			return err
		}
	}
	return os.WriteFile(dir+"gid_map", []byte(gids.String()), 0)
}

func cStrings(ss []string) **C.char {
	arr := (*[1 << 20]*C.char)(C.malloc(C.size_t(len(ss)+1) * C.size_t(unsafe.Sizeof((*C.char)(nil)))))
	for i, s := range ss {
		if strings.IndexByte(s, 0) >= 0 {
			s = s[:strings.IndexByte(s, 0)]
		}
		arr[i] = C.CString(s)
	}
	arr[len(ss)] = nil
	return &arr[0]
}

func freeCStrings(p **C.char) {
	arr := (*[1 << 20]*C.char)(unsafe.Pointer(p))
	for i := 0; arr[i] != nil; i++ {
		C.free(unsafe.Pointer(arr[i]))
	}
	C.free(unsafe.Pointer(p))
}
