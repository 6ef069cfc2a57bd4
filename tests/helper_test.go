package tests

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// helperMain runs one verb inside a sandbox (the test binary is bound at
// /sbxhelper). Each verb prints "ok" or the errno's name (EPERM, ...) on
// stdout and exits 0, unless the verb itself is misused (exit 2).
func helperMain(args []string) int {
	if len(args) == 0 {
		fmt.Fprintln(os.Stderr, "helper: no verb")
		return 2
	}
	// Namespace and mount calls act on the calling thread; keep them on one.
	runtime.LockOSThread()
	verb, args := args[0], args[1:]
	if verb == "in-new-mntns" { // in-new-mntns VERB ...: unshare(CLONE_NEWNS), then VERB
		if err := unix.Unshare(unix.CLONE_NEWNS); err != nil {
			fmt.Println(errName(err))
			return 0
		}
		return helperMain(args)
	}
	need := func(n int) bool {
		if len(args) != n {
			fmt.Fprintf(os.Stderr, "helper %s: want %d arguments, got %q\n", verb, n, args)
			return false
		}
		return true
	}
	var err error
	switch verb {
	case "dial": // dial ADDR: a TCP connection to ADDR
		if !need(1) {
			return 2
		}
		var c net.Conn
		c, err = net.DialTimeout("tcp", args[0], 2*time.Second)
		if err == nil {
			c.Close()
		}
	case "keyread": // keyread ID: read the key with that serial (keyctl(2) KEYCTL_READ)
		if !need(1) {
			return 2
		}
		id, perr := strconv.Atoi(args[0])
		if perr != nil {
			return 2
		}
		buf := make([]byte, 256)
		var n int
		if n, err = unix.KeyctlBuffer(unix.KEYCTL_READ, id, buf, 0); err == nil {
			fmt.Printf("read %q\n", buf[:min(n, len(buf))])
			return 0
		}
	case "alloc": // alloc MIB: allocate and touch MIB mebibytes, then print ok
		if !need(1) {
			return 2
		}
		n, perr := strconv.Atoi(args[0])
		if perr != nil {
			return 2
		}
		chunks := make([][]byte, 0, n)
		for i := 0; i < n; i++ {
			c := make([]byte, 1<<20)
			for j := 0; j < len(c); j += 4096 {
				c[j] = 1
			}
			chunks = append(chunks, c)
		}
		runtime.KeepAlive(chunks)
	case "loopback": // listen on 127.0.0.1:0, connect, exchange a byte
		if !need(0) {
			return 2
		}
		err = loopback()
	case "mount": // mount FSTYPE TARGET
		if !need(2) {
			return 2
		}
		err = unix.Mount("none", args[1], args[0], 0, "")
	case "remount-rw": // remount TARGET read-write, plain and as a bind
		if !need(1) {
			return 2
		}
		err1 := unix.Mount("none", args[0], "", unix.MS_REMOUNT, "")
		err2 := unix.Mount("none", args[0], "", unix.MS_REMOUNT|unix.MS_BIND, "")
		if err1 == nil || err2 == nil {
			err = nil
		} else {
			err = err1
		}
	case "umount": // umount TARGET (detached)
		if !need(1) {
			return 2
		}
		err = unix.Unmount(args[0], unix.MNT_DETACH)
	case "unshare-user": // a nested user namespace, made by clone: unshare(2)
		// refuses CLONE_NEWUSER to any multi-threaded process, Go's included.
		if !need(0) {
			return 2
		}
		cmd := exec.Command("/bin/true")
		cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWUSER}
		err = cmd.Run()
	case "unshare-mount": // a new mount namespace
		if !need(0) {
			return 2
		}
		err = unix.Unshare(unix.CLONE_NEWNS)
	case "sid": // prints "PID SID"
		sid, e := unix.Getsid(0)
		if e != nil {
			err = e
			break
		}
		fmt.Printf("%d %d\n", os.Getpid(), sid)
		return 0
	case "tiocsti": // push a byte into the input queue of the tty on fd 0
		if !need(0) {
			return 2
		}
		b := byte('#')
		err = unix.IoctlSetPointerInt(0, unix.TIOCSTI, int(b))
	case "ptrace": // ptrace PID: attach (and detach)
		if !need(1) {
			return 2
		}
		pid, e := strconv.Atoi(args[0])
		if e != nil {
			return 2
		}
		if err = unix.PtraceAttach(pid); err == nil {
			var ws unix.WaitStatus
			unix.Wait4(pid, &ws, unix.WALL, nil)
			unix.PtraceDetach(pid)
		}
	case "tty-lines": // "lines-ready", then "got:LINE" for each line of stdin until EOF, "size ROWS COLS" on each SIGWINCH
		if !need(0) {
			return 2
		}
		ttyLines()
		return 0
	case "chown": // chown PATH UID GID
		if !need(3) {
			return 2
		}
		uid, e1 := strconv.Atoi(args[1])
		gid, e2 := strconv.Atoi(args[2])
		if e1 != nil || e2 != nil {
			return 2
		}
		err = os.Lchown(args[0], uid, gid)
	case "sys": // sys NAME: one raw system call, see rawCall
		if !need(1) {
			return 2
		}
		known, e := rawCall(args[0])
		if !known {
			fmt.Fprintf(os.Stderr, "helper sys: unknown call %q\n", args[0])
			return 2
		}
		err = e
	case "tty-ioctl": // tty-ioctl tiocsti|tiocsti-high|tioclinux: on a pty of our own, see ttyIoctl
		if !need(1) {
			return 2
		}
		return ttyIoctl(args[0])
	case "deny-flood": // a process name with an escape sequence, then 300 call numbers without a name and 20 keyctl
		name := []byte("\x1b[31mEVIL\r\x00")
		unix.Prctl(unix.PR_SET_NAME, uintptr(unsafe.Pointer(&name[0])), 0, 0, 0)
		for i := uintptr(0); i < 300; i++ {
			unix.Syscall(1000+i, 0, 0, 0)
		}
		for i := 0; i < 20; i++ {
			unix.Syscall(unix.SYS_KEYCTL, 0, 0, 0)
		}
	case "dial-abstract": // dial-abstract NAME: connect to the abstract unix socket NAME
		if !need(1) {
			return 2
		}
		var fd int
		if fd, err = unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0); err == nil {
			err = unix.Connect(fd, &unix.SockaddrUnix{Name: "@" + args[0]})
			unix.Close(fd)
		}
	case "fake-record": // fake-record RUNDIR PID: plant a record of sbx's, see fakeRecord
		if !need(2) {
			return 2
		}
		return fakeRecord(args[0], args[1])
	case "exec-connect": // exec-connect SOCKET: speak sbx exec's protocol there, see execConnect
		if !need(1) {
			return 2
		}
		return execConnect(args[0])
	default:
		fmt.Fprintf(os.Stderr, "helper: unknown verb %q\n", verb)
		return 2
	}
	fmt.Println(errName(err))
	return 0
}

func ttyLines() {
	var mu sync.Mutex
	say := func(format string, a ...any) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Printf(format, a...)
	}
	winch := make(chan os.Signal, 1)
	signal.Notify(winch, unix.SIGWINCH)
	go func() {
		for range winch {
			if ws, err := unix.IoctlGetWinsize(0, unix.TIOCGWINSZ); err == nil {
				say("size %d %d\n", ws.Row, ws.Col)
			}
		}
	}()
	say("lines-ready\n")
	r := bufio.NewReader(os.Stdin)
	for {
		line, err := r.ReadString('\n')
		if line != "" {
			say("got:%s\n", strings.TrimRight(line, "\r\n"))
		}
		if err != nil {
			return
		}
	}
}

// errName renders nil as "ok", an errno as its name, anything else as its text.
func errName(err error) string {
	if err == nil {
		return "ok"
	}
	var errno unix.Errno
	if errors.As(err, &errno) {
		if name := unix.ErrnoName(errno); name != "" {
			return name
		}
	}
	return err.Error()
}

func loopback() error {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	defer l.Close()
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		c.Write([]byte{'x'})
		c.Close()
	}()
	c, err := net.DialTimeout("tcp", l.Addr().String(), 2*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	b, err := io.ReadAll(c)
	if err != nil {
		return err
	}
	if string(b) != "x" {
		return fmt.Errorf("read %q, want %q", b, "x")
	}
	return nil
}

// rawCall makes the system call name (a syscall(2) name, nr=NUMBER, or
// one of the variants below) with arguments chosen so that, without a seccomp filter,
// it succeeds harmlessly or fails with an errno other than ENOSYS; it never
// creates a process in this one and never changes the mount tree where it
// could succeed. known is false for a name it does not know.
func rawCall(name string) (known bool, err error) {
	errnoErr := func(e unix.Errno) error {
		if e != 0 {
			return e
		}
		return nil
	}
	closeFD := func(fd int, err error) error {
		if err == nil {
			unix.Close(fd)
		}
		return err
	}
	str := func(s string) uintptr { // a NUL-terminated copy that stays alive: the helper exits soon
		p, perr := unix.BytePtrFromString(s)
		if perr != nil {
			panic(perr)
		}
		return uintptr(unsafe.Pointer(p))
	}
	fdcwd := unix.AT_FDCWD
	atFDCWD := uintptr(fdcwd) // sign-extended, as libc passes it
	// nr=N: call N without arguments, for the numbers no call has yet.
	if s, ok := strings.CutPrefix(name, "nr="); ok {
		n, perr := strconv.ParseUint(s, 0, 30)
		if perr != nil {
			return false, nil
		}
		_, _, e := unix.Syscall(uintptr(n), 0, 0, 0)
		return true, errnoErr(e)
	}
	switch name {
	case "getpid":
		unix.Getpid()
	case "getcwd":
		_, err = unix.Getcwd(make([]byte, unix.PathMax))
	case "clone3": // a size below CLONE_ARGS_SIZE_VER0: EINVAL before any process exists
		var args [11]uint64
		_, _, e := unix.RawSyscall(unix.SYS_CLONE3, uintptr(unsafe.Pointer(&args)), 1, 0)
		err = errnoErr(e)
	case "open_tree": // a detached handle on "/", no clone: needs no privilege
		err = closeFD(unix.OpenTree(unix.AT_FDCWD, "/", unix.O_CLOEXEC))
	case "open_tree_attr": // Linux 6.15
		r, _, e := unix.Syscall6(unix.SYS_OPEN_TREE_ATTR, atFDCWD, str("/"), unix.O_CLOEXEC, 0, 0, 0)
		err = closeFD(int(r), errnoErr(e))
	case "fsopen":
		err = closeFD(unix.Fsopen("tmpfs", unix.FSOPEN_CLOEXEC))
	case "fspick":
		err = closeFD(unix.Fspick(unix.AT_FDCWD, "/", unix.FSPICK_CLOEXEC))
	case "move_mount": // no descriptors: EPERM or EBADF
		err = unix.MoveMount(-1, "", -1, "", 0)
	case "fsconfig": // no descriptor: EBADF
		_, _, e := unix.Syscall6(unix.SYS_FSCONFIG, ^uintptr(0), unix.FSCONFIG_CMD_CREATE, 0, 0, 0, 0)
		err = errnoErr(e)
	case "fsmount": // no descriptor: EPERM or EBADF
		err = closeFD(unix.Fsmount(-1, unix.FSMOUNT_CLOEXEC, 0))
	case "mount_setattr": // size 0: EINVAL
		_, _, e := unix.Syscall6(unix.SYS_MOUNT_SETATTR, ^uintptr(0), str(""), 0, 0, 0, 0)
		err = errnoErr(e)
	case "mount":
		err = unix.Mount("none", "/tmp", "tmpfs", 0, "")
	case "umount2":
		err = unix.Unmount("/tmp", unix.MNT_DETACH)
	case "pivot_root":
		err = unix.PivotRoot("/", "/")
	case "chroot":
		err = unix.Chroot("/")
	case "unshare_newns":
		err = unix.Unshare(unix.CLONE_NEWNS)
	case "unshare_newuser": // unshare(2) in the single-threaded child between fork and exec
		cmd := exec.Command("/bin/true")
		cmd.SysProcAttr = &syscall.SysProcAttr{Unshareflags: syscall.CLONE_NEWUSER}
		err = cmd.Run()
	case "keyctl":
		_, err = unix.KeyctlInt(unix.KEYCTL_GET_KEYRING_ID, unix.KEY_SPEC_SESSION_KEYRING, 0, 0, 0)
	case "add_key":
		_, err = unix.AddKey("user", "sbx-test", []byte("x"), unix.KEY_SPEC_PROCESS_KEYRING)
	case "request_key": // no callout (NULL): ENOKEY without an upcall
		_, _, e := unix.Syscall6(unix.SYS_REQUEST_KEY, str("user"), str("sbx-test-no-such-key"), 0, 0, 0, 0)
		err = errnoErr(e)
	case "bpf": // an all-zero BPF_MAP_CREATE
		var attr [128]byte
		r, _, e := unix.Syscall(unix.SYS_BPF, unix.BPF_MAP_CREATE, uintptr(unsafe.Pointer(&attr)), uintptr(len(attr)))
		err = closeFD(int(r), errnoErr(e))
	case "perf_event_open": // this task's clock, user space only: allowed by perf_event_paranoid 2
		attr := unix.PerfEventAttr{
			Type:   unix.PERF_TYPE_SOFTWARE,
			Config: unix.PERF_COUNT_SW_TASK_CLOCK,
			Size:   uint32(unsafe.Sizeof(unix.PerfEventAttr{})),
			Bits:   unix.PerfBitDisabled | unix.PerfBitExcludeKernel | unix.PerfBitExcludeHv,
		}
		err = closeFD(unix.PerfEventOpen(&attr, 0, -1, -1, unix.PERF_FLAG_FD_CLOEXEC))
	case "userfaultfd": // UFFD_USER_MODE_ONLY: allowed with vm.unprivileged_userfaultfd 0
		const uffdUserModeOnly = 1
		r, _, e := unix.Syscall(unix.SYS_USERFAULTFD, uffdUserModeOnly|unix.O_CLOEXEC, 0, 0)
		err = closeFD(int(r), errnoErr(e))
	case "personality_query": // 0xffffffff reads the persona
		_, _, e := unix.Syscall(unix.SYS_PERSONALITY, 0xffffffff, 0, 0)
		err = errnoErr(e)
	case "personality_set": // ADDR_NO_RANDOMIZE, as gdb asks
		const addrNoRandomize = 0x0040000
		_, _, e := unix.Syscall(unix.SYS_PERSONALITY, addrNoRandomize, 0, 0)
		err = errnoErr(e)
	case "kexec_load":
		_, _, e := unix.Syscall6(unix.SYS_KEXEC_LOAD, 0, 0, 0, 0, 0, 0)
		err = errnoErr(e)
	case "init_module":
		err = unix.InitModule(nil, "")
	case "finit_module":
		err = unix.FinitModule(-1, "", 0)
	case "delete_module":
		err = unix.DeleteModule("sbx_no_such_module", 0)
	case "mseal": // an empty range: nothing is sealed (Linux 6.10)
		_, _, e := unix.Syscall(unix.SYS_MSEAL, 0, 0, 0)
		err = errnoErr(e)
	case "statmount": // no request: EFAULT (Linux 6.8)
		_, _, e := unix.Syscall6(unix.SYS_STATMOUNT, 0, 0, 0, 0, 0, 0)
		err = errnoErr(e)
	case "listmount": // no request: EFAULT (Linux 6.8)
		_, _, e := unix.Syscall6(unix.SYS_LISTMOUNT, 0, 0, 0, 0, 0, 0)
		err = errnoErr(e)
	case "getxattrat": // no struct xattr_args: EINVAL (Linux 6.13)
		_, _, e := unix.Syscall6(unix.SYS_GETXATTRAT, atFDCWD, str("/"), 0, str("user.sbx"), 0, 0)
		err = errnoErr(e)
	case "lsm_list_modules": // a size of 0: E2BIG (Linux 6.8)
		var size uint32
		_, _, e := unix.Syscall(unix.SYS_LSM_LIST_MODULES, 0, uintptr(unsafe.Pointer(&size)), 0)
		err = errnoErr(e)
	case "open_by_handle_at": // a made-up handle (8 bytes, type 1) below the cwd's mount
		var handle [16]byte
		handle[0], handle[4] = 8, 1
		r, _, e := unix.Syscall(unix.SYS_OPEN_BY_HANDLE_AT, atFDCWD, uintptr(unsafe.Pointer(&handle)), unix.O_RDONLY)
		err = closeFD(int(r), errnoErr(e))
	default:
		return false, nil
	}
	return true, err
}

// ttyIoctl opens a new pseudo-terminal from the sandbox's devpts, makes it
// the controlling terminal of this process (a session leader without
// one: stdin is not a terminal), checks that it is, and issues on it the
// ioctl named by which: tiocsti, tiocsti-high (TIOCSTI with bits set above
// the 32 the kernel reads, CVE-2019-10063) or tioclinux. It prints the
// ioctl's result, or "setup ..." and exits 3 when the terminal cannot be made.
func ttyIoctl(which string) int {
	arg := byte('#') // the character to push
	var cmd uintptr
	switch which {
	case "tiocsti":
		cmd = unix.TIOCSTI
	case "tiocsti-high":
		cmd = uintptr(unix.TIOCSTI) | 1<<32
	case "tioclinux":
		cmd, arg = unix.TIOCLINUX, 12 // TIOCL_GETFGCONSOLE, a query
	default:
		fmt.Fprintf(os.Stderr, "helper tty-ioctl: unknown ioctl %q\n", which)
		return 2
	}
	setup := func(op string, err error) int {
		fmt.Printf("setup %s: %s\n", op, errName(err))
		return 3
	}
	ptmx, err := unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return setup("open /dev/ptmx", err)
	}
	if err := unix.IoctlSetPointerInt(ptmx, unix.TIOCSPTLCK, 0); err != nil {
		return setup("unlockpt", err)
	}
	n, err := unix.IoctlGetInt(ptmx, unix.TIOCGPTN)
	if err != nil {
		return setup("ptsname", err)
	}
	// sbx's payload is a session leader already: then setsid fails (EPERM) and nothing changes.
	unix.Setsid()
	// Without O_NOCTTY, the pts becomes the controlling terminal of a session leader without one.
	pts, err := unix.Open("/dev/pts/"+strconv.Itoa(n), unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return setup("open the pts", err)
	}
	if err := unix.IoctlSetInt(pts, unix.TIOCSCTTY, 0); err != nil {
		return setup("TIOCSCTTY", err)
	}
	sid, err := unix.IoctlGetInt(pts, unix.TIOCGSID)
	if err != nil {
		return setup("TIOCGSID", err)
	}
	if own, _ := unix.Getsid(0); sid != own {
		return setup("controlling terminal", fmt.Errorf("the pts belongs to session %d, not %d", sid, own))
	}
	_, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(pts), cmd, uintptr(unsafe.Pointer(&arg)))
	if e != 0 {
		fmt.Println(errName(e))
	} else {
		fmt.Println("ok")
	}
	return 0
}

// fakeRecord plants, under RUNDIR ($XDG_RUNTIME_DIR/sbx/run), the record
// of a sandbox that does not exist: its state.json names PID as sbx run
// and PID 1, is flocked by this process, and its exec.sock is served by
// this process, which reports what its clients send ("GOT FDS" when one
// hands over descriptors). It prints "planted", then serves until killed.
func fakeRecord(runDir, pid string) int {
	dir := runDir + "/0000fake0000"
	if err := os.MkdirAll(dir, 0o700); err != nil {
		fmt.Println(err)
		return 1
	}
	f, err := os.Create(dir + "/state.json")
	if err != nil {
		fmt.Println(err)
		return 1
	}
	unix.Flock(int(f.Fd()), unix.LOCK_EX)
	fmt.Fprintf(f, `{"id":"0000fake0000","pid":%s,"init_pid":%s,"started":"2026-01-01T00:00:00Z","argv":["innocent"],"net":"none","limits":{"memory_swap_max":0}}`, pid, pid)
	s, err := unix.Socket(unix.AF_UNIX, unix.SOCK_SEQPACKET, 0)
	if err == nil {
		err = unix.Bind(s, &unix.SockaddrUnix{Name: dir + "/exec.sock"})
	}
	if err == nil {
		err = unix.Listen(s, 4)
	}
	if err != nil {
		fmt.Println(err)
		return 1
	}
	fmt.Println("planted")
	for {
		c, _, err := unix.Accept(s)
		if err != nil {
			return 1
		}
		fmt.Println("CONNECTED")
		buf, oob := make([]byte, 65536), make([]byte, 1024)
		if _, oobn, _, _, err := unix.Recvmsg(c, buf, oob, 0); err == nil && oobn > 0 {
			fmt.Println("GOT FDS")
		}
		unix.Close(c)
	}
}

// execConnect connects to an exec.sock from inside a sandbox and asks,
// as sbx exec would, for a command there, handing over its stdio. It
// prints "started" if the command was started, "refused" if the
// connection was closed on it.
func execConnect(sock string) int {
	s, err := unix.Socket(unix.AF_UNIX, unix.SOCK_SEQPACKET, 0)
	if err == nil {
		err = unix.Connect(s, &unix.SockaddrUnix{Name: sock})
	}
	if err != nil {
		fmt.Println(errName(err))
		return 0
	}
	req := `{"type":"exec","argv":["/bin/sh","-c","echo PWNED"]}`
	if err := unix.Sendmsg(s, []byte(req), unix.UnixRights(0, 1, 2), nil, 0); err != nil {
		if errors.Is(err, unix.EPIPE) || errors.Is(err, unix.ECONNRESET) {
			fmt.Println("refused") // closed before the request went
		} else {
			fmt.Println(errName(err))
		}
		return 0
	}
	buf := make([]byte, 65536)
	n, err := unix.Read(s, buf)
	switch {
	case err == nil && n > 0 && strings.Contains(string(buf[:n]), "exec-started"):
		fmt.Println("started")
	case err == nil && n == 0, errors.Is(err, unix.ECONNRESET):
		fmt.Println("refused")
	default:
		fmt.Printf("answer %q %v\n", buf[:max(n, 0)], err)
	}
	return 0
}
