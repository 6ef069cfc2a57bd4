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
