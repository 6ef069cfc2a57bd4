package sandbox

// sbx exec: a command added to a running sandbox. The launcher listens
// on the record's exec.sock, takes only clients of its own user, user
// namespace and mount namespace (no sandbox's process: a sandbox must not
// run commands in another), and passes each connection to the sandbox's
// PID 1 (msgExecConn), which starts the command as it started the payload: from the
// spawner's thread (the same capability sets, no_new_privs and Landlock
// domain), under the same seccomp filter, in every namespace of the
// sandbox and its cgroup. With --root, in a nested user namespace of
// its own with the payload's maps.
//
//	client → init   msgExec         argv, env, cwd; its stdin, stdout and
//	                                stderr as SCM_RIGHTS
//	init → client   msgPTY          when asked: a pseudo-terminal's master
//	client → init   msgPTYReady     it has the client's settings and size
//	init → client   msgExecStarted  the command runs (its pid inside)
//	init → client   msgExecFailed   it could not be executed (126, 127)
//	init → client   msgError        it could not be started (125)
//	client → init   msgSignal       pass this signal on
//	init → client   msgExited       it ended (code or signal)
//
// A client that goes away takes its command with it (SIGKILL), as the
// sandbox dies with sbx run. When the payload ends, the sandbox ends,
// and with it what sbx exec started.

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"

	"sbx/policy"
)

const (
	msgExecConn    = "exec-conn" // launcher → init: a client's connection (SCM_RIGHTS)
	msgExec        = "exec"
	msgExecStarted = "exec-started"
	msgSignal      = "signal"
)

// reaper is PID 1's wait loop, shared with sbx exec: the statuses of the
// commands it started go to whoever waits for them.
type reaper struct {
	mu      sync.Mutex
	waiting map[int]chan unix.WaitStatus
	// sigsys, when set, is told of each child that SIGSYS killed, while
	// it is a zombie still (its /proc entry readable), before it is
	// reaped: --log-denied reports the filter's kills with it.
	sigsys func(pid int)
}

// wait waits for children until pid has exited and returns its status;
// orphans are reaped on the way, and the commands of sbx exec handed to
// their waiters. With stopped, it also tells each stop of pid
// (WUNTRACED).
func (r *reaper) wait(pid int, stopped func(unix.Signal)) unix.WaitStatus {
	opts := 0
	if stopped != nil {
		opts = unix.WUNTRACED
	}
	for {
		next, nohang := -1, 0
		if r.sigsys != nil {
			// What peek saw may be gone by now (a stop undone by a
			// SIGCONT): waiting on that one pid must not block.
			next, nohang = r.peek(opts), unix.WNOHANG
		}
		var ws unix.WaitStatus
		got, err := unix.Wait4(next, &ws, opts|nohang, nil)
		if errors.Is(err, unix.EINTR) || err == nil && got == 0 {
			continue
		}
		if err == nil && ws.Stopped() {
			if got == pid {
				stopped(ws.StopSignal())
			}
			continue // a stopped orphan, or sbx exec's command, is not pid1's concern
		}
		if err != nil || got == pid {
			return ws
		}
		r.mu.Lock()
		if c, ok := r.waiting[got]; ok {
			delete(r.waiting, got)
			c <- ws
		}
		r.mu.Unlock()
	}
}

// sigchld is the part of a siginfo_t that waitid(2) fills in, as the
// 64-bit architectures sbx builds for lay it out.
type sigchld struct {
	Signo, Errno, Code int32
	_                  int32
	PID                int32
	UID                uint32
	Status             int32
	_                  [100]byte
}

// CLD_KILLED and CLD_DUMPED, the codes of a child ended by a signal.
const (
	cldKilled = 2
	cldDumped = 3
)

// peek blocks until a child can be reaped with opts, as Wait4 would, and
// returns its pid without reaping it (waitid's WNOWAIT), having told
// sigsys when SIGSYS killed it; -1 when no child is left.
func (r *reaper) peek(opts int) int {
	flags := unix.WEXITED | unix.WNOWAIT
	if opts&unix.WUNTRACED != 0 {
		flags |= unix.WSTOPPED
	}
	var si sigchld
	for {
		err := unix.Waitid(unix.P_ALL, 0, (*unix.Siginfo)(unsafe.Pointer(&si)), flags, nil)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return -1 // ECHILD: Wait4 says so
		}
		break
	}
	if (si.Code == cldKilled || si.Code == cldDumped) && si.Status == int32(unix.SIGSYS) {
		r.sigsys(int(si.PID))
	}
	return int(si.PID)
}

// start starts a command and registers its waiter before the wait loop
// can reap it.
func (r *reaper) start(run func() (int, error)) (int, <-chan unix.WaitStatus, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	pid, err := run()
	if err != nil {
		return 0, nil, err
	}
	c := make(chan unix.WaitStatus, 1)
	if r.waiting == nil {
		r.waiting = map[int]chan unix.WaitStatus{}
	}
	r.waiting[pid] = c
	return pid, c, nil
}

// kill signals pid (-pid: its group) only while its command is still
// waited for: once reaped, the pid may be another process's.
func (r *reaper) kill(pid int, sig unix.Signal) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.waiting[max(pid, -pid)]; !ok {
		return false
	}
	return unix.Kill(pid, sig) == nil
}

// execServer is PID 1's side of sbx exec.
type execServer struct {
	plan    *policy.Plan
	spawner *spawner
	filter  *filter
	reaper  *reaper
	ctl     *conn // to the launcher, for --log-denied's lines
	peerUID uint32
	userns  int // --root: the payload's user namespace, else -1
}

func (s *execServer) serve(conns <-chan int) {
	for fd := range conns {
		go s.handle(&conn{f: os.NewFile(uintptr(fd), "sbx-exec")})
	}
}

func (s *execServer) handle(c *conn) {
	defer c.close()
	// Only the sandbox's user: the socket's directories say so too.
	cred, err := unix.GetsockoptUcred(int(c.f.Fd()), unix.SOL_SOCKET, unix.SO_PEERCRED)
	if err != nil || cred.Uid != s.peerUID {
		return
	}
	m, fds, err := c.recvFDs(3)
	if err != nil {
		return
	}
	defer func() {
		for _, fd := range fds {
			unix.Close(fd)
		}
	}()
	if m.Type != msgExec || len(m.Argv) == 0 || len(fds) != 3 {
		c.send(message{Type: msgError, Error: stageErr("init", "exec", errors.New("bad request"))})
		return
	}
	a := &spawnAttr{argv: m.Argv, env: mergeEnv(s.plan.Env, m.Env), cwd: m.Cwd, files: slices.Clone(fds), setsid: true, ctty: -1, fgTTY: -1, joinUserns: -1, filter: s.filter}
	if a.cwd == "" {
		a.cwd = s.plan.Cwd
	}
	if s.filter != nil {
		a.wantNotification = s.filter.notify
	}
	a.joinUserns = s.userns
	if s.plan.Identity.Root && s.userns < 0 {
		c.send(message{Type: msgError, Error: stageErr("exec", "", errors.New("the payload's user namespace is gone"))})
		return
	}
	if err := checkDescriptors(fds); err != nil {
		c.send(message{Type: msgError, Error: stageErr("exec", "", err)})
		return
	}
	if m.PTY != nil {
		// As for the payload: a pseudo-terminal of the sandbox's, which
		// sbx exec relays; the command leads its session on it.
		tty, err := openTerminal(c, func() message { m, _ := c.recv(); return m })
		if err != nil {
			c.send(message{Type: msgError, Error: stageErr("exec", "", err)})
			return
		}
		defer tty.Close()
		for i, on := range []bool{m.PTY.Stdin, m.PTY.Stdout, m.PTY.Stderr} {
			if on {
				a.files[i] = int(tty.Fd())
				if a.ctty < 0 {
					a.ctty = i // the child's descriptor
				}
			}
		}
	}
	var listener *os.File
	pid, status, err := s.reaper.start(func() (pid int, err error) {
		s.spawner.run(func() { pid, listener, err = execvp(a.argv, a.env, a) })
		return pid, err
	})
	if err != nil {
		var ee *ExecError
		if errors.As(err, &ee) {
			c.send(message{Type: msgExecFailed, ExitCode: ee.Code, Text: ee.Err})
		} else {
			c.send(message{Type: msgError, Error: stageErr("exec", "", err)})
		}
		return
	}
	if listener != nil {
		go serveDenied(listener, s.filter, s.ctl)
	}
	for _, fd := range fds {
		unix.Close(fd)
	}
	fds = nil
	c.send(message{Type: msgExecStarted, PID: pid})
	gone := make(chan struct{})
	go func() {
		defer close(gone)
		for {
			m, err := c.recv()
			if err != nil {
				s.reaper.kill(pid, unix.SIGKILL) // the client is gone: so is its command
				return
			}
			if m.Type == msgSignal && m.Signal > 0 && m.Signal < 65 {
				sig := unix.Signal(m.Signal)
				send := func(sig unix.Signal) {
					if !toGroup(sig) || !s.reaper.kill(-pid, sig) {
						s.reaper.kill(pid, sig)
					}
				}
				send(sig)
				if terminating(sig) {
					send(unix.SIGCONT) // a stopped command must see it
				}
			}
		}
	}()
	ws := <-status
	out := message{Type: msgExited}
	switch {
	case ws.Exited():
		out.ExitCode = ws.ExitStatus()
	case ws.Signaled():
		out.Signal, out.Core = int(ws.Signal()), ws.CoreDump()
	}
	c.send(out)
}

// mergeEnv is env with the K=V of set replacing or adding to it.
func mergeEnv(env, set []string) []string {
	out := slices.Clone(env)
	for _, kv := range set {
		k, _, _ := strings.Cut(kv, "=")
		out = slices.DeleteFunc(out, func(e string) bool { return strings.HasPrefix(e, k+"=") })
		out = append(out, kv)
	}
	return out
}

// recvFDs is recv that also takes up to max descriptors sent with the
// message (any beyond are closed).
func (c *conn) recvFDs(max int) (message, []int, error) {
	var m message
	buf := c.rbuf()
	oob := make([]byte, unix.CmsgSpace(4*max))
	var n, oobn int
	var err error
	for {
		n, oobn, _, _, err = unix.Recvmsg(int(c.f.Fd()), buf, oob, unix.MSG_CMSG_CLOEXEC)
		if !errors.Is(err, unix.EINTR) {
			break
		}
	}
	if err != nil {
		return m, nil, err
	}
	var fds []int
	if cms, err := unix.ParseSocketControlMessage(oob[:oobn]); err == nil {
		for _, cm := range cms {
			got, _ := unix.ParseUnixRights(&cm)
			for _, fd := range got {
				if len(fds) < max {
					fds = append(fds, fd)
				} else {
					unix.Close(fd)
				}
			}
		}
	}
	closeAll := func() {
		for _, fd := range fds {
			unix.Close(fd)
		}
	}
	if n == 0 {
		closeAll()
		return m, nil, errClosed
	}
	if err := json.Unmarshal(buf[:n], &m); err != nil {
		closeAll()
		return m, nil, fmt.Errorf("bad message: %w", err)
	}
	return m, fds, nil
}
