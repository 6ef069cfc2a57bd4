package sandbox

// The payload's terminal. When the caller's stdin is a terminal
// (plan.PTY), the payload gets a pseudo-terminal of its own and never
// the caller's; the launcher relays between the two:
//
//	caller's terminal ◄─► launcher ◄─► master ┊ slave ◄─► payload
//	(raw while sbx is      relay,      of the sandbox's devpts:
//	 in its foreground)    size        the payload's stdin (and stdout,
//	                                   stderr where those were the terminal)
//	                                   and controlling terminal
//
// init opens the pair in the sandbox's own devpts instance, where
// ttyname(3) finds the slave (a host pts is no file of the view), and
// passes the master to the launcher over the control socket with
// SCM_RIGHTS, as runc's console socket does:
//
//	init → launcher   msgPTY       the master, as ancillary data
//	launcher → init   msgPTYReady  the caller's settings and window size
//	                               are on it: start the payload
//
// init leads a new session with the slave as its controlling terminal,
// and the payload starts in a process group of its own in the slave's
// foreground, so job control works inside and the keys Ctrl-C, Ctrl-Z
// and Ctrl-\ are signals that the slave's line discipline sends there.
// (Were the payload the session's leader, its group would be orphaned,
// its parent being outside the session, and the kernel would discard the
// terminal's SIGTSTP.) Neither init nor the payload holds the caller's
// terminal: init gets /dev/null in its place, and no ioctl of the sandbox
// can reach it.
//
// The launcher changes the caller's terminal only while it is in the
// terminal's foreground process group, and reads it only then: a sandbox
// started with & neither steals typed input nor is stopped for trying,
// and gives the payload's terminal a new terminal's settings, not those
// of the shell's line editor that has the caller's terminal then. It
// looks again on SIGCONT (fg or bg of a stopped sbx) and, while in the
// background, every lookAgain (fg of a running job sends no signal).
//
// Job control reaches out of the sandbox: when the payload stops (Ctrl-Z),
// init tells the launcher (msgStopped), which gives the caller's terminal
// its settings back and stops itself with the same signal; the caller's
// shell sees a stopped job. Its fg or bg continues sbx, which takes the
// terminal again if it is in the foreground, passes on the window size
// and continues the payload's group.
//
// The caller's settings are restored on every way out of Run; a SIGKILL
// of sbx leaves the terminal raw (`stty sane` or `reset` repairs it).

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"sbx/policy"
)

const (
	msgPTY      = "pty"
	msgPTYReady = "pty-ready"
)

// probeTerminal tells which of descriptors 0, 1, 2 are a terminal. Any
// counts (/dev/tty too, whatever its inode): the payload holds none.
func probeTerminal() policy.Terminal {
	return policy.Terminal{Stdin: isTerminal(0), Stdout: isTerminal(1), Stderr: isTerminal(2)}
}

func isTerminal(fd int) bool {
	_, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	return err == nil
}

// foreground says whether this process's group is the foreground
// process group of the terminal on fd (tcgetpgrp(3) == getpgrp(2)).
func foreground(fd int) bool {
	pg, err := unix.IoctlGetInt(fd, unix.TIOCGPGRP)
	return err == nil && pg == unix.Getpgrp()
}

// makeRaw is cfmakeraw(3).
func makeRaw(t unix.Termios) unix.Termios {
	t.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
	t.Oflag &^= unix.OPOST
	t.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
	t.Cflag &^= unix.CSIZE | unix.PARENB
	t.Cflag |= unix.CS8
	t.Cc[unix.VMIN], t.Cc[unix.VTIME] = 1, 0
	return t
}

// payloadTerminal, in init, opens a pseudo-terminal in the view's
// /dev/pts, hands its master to the launcher and waits until the
// launcher has given it the caller's settings. It returns the slave,
// now init's controlling terminal.
func payloadTerminal(ctl *conn, acks <-chan message) (*os.File, error) {
	slave, err := openTerminal(ctl, func() message { return <-acks })
	if err != nil {
		return nil, err
	}
	// init leads the terminal's session (it was started in a session of
	// its own, with no terminal), so that the payload's process group has
	// a parent in its session and a different group: it is not orphaned,
	// and the terminal's Ctrl-Z stops it (an orphaned group ignores
	// SIGTSTP, SIGTTIN and SIGTTOU; POSIX, "orphaned process group").
	if sid, err := unix.Getsid(0); err != nil || sid != unix.Getpid() {
		slave.Close()
		return nil, opErr("take the pseudo-terminal")(errors.New("init leads no session of its own"))
	}
	if err := unix.IoctlSetInt(int(slave.Fd()), unix.TIOCSCTTY, 0); err != nil {
		slave.Close()
		return nil, opErr("take the pseudo-terminal as controlling terminal")(err)
	}
	return slave, nil
}

// openTerminal opens a pseudo-terminal in the view's /dev/pts, passes
// its master to the other end of c (the launcher, or sbx exec) and waits
// (ready) until that end has given it the caller's settings. It returns
// the slave.
func openTerminal(c *conn, ready func() message) (*os.File, error) {
	m, err := unix.Open("/dev/pts/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, opErr("open /dev/pts/ptmx")(err)
	}
	defer unix.Close(m)
	if err := unix.IoctlSetPointerInt(m, unix.TIOCSPTLCK, 0); err != nil {
		return nil, opErr("unlock the pseudo-terminal")(err)
	}
	// TIOCGPTPEER (Linux 4.13) opens this master's slave without a path.
	s, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(m), unix.TIOCGPTPEER, unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC)
	if e != 0 {
		return nil, opErr("open the pseudo-terminal's slave")(e)
	}
	slave := os.NewFile(s, "sbx-pty-slave")
	if err := c.sendFD(message{Type: msgPTY}, m); err != nil {
		slave.Close()
		return nil, opErr("pass the pseudo-terminal on")(err)
	}
	if a := ready(); a.Type != msgPTYReady {
		slave.Close()
		return nil, opErr("pass the pseudo-terminal on")(fmt.Errorf("unexpected message %q", a.Type))
	}
	return slave, nil
}

// sendFD sends m with fd as SCM_RIGHTS ancillary data.
func (c *conn) sendFD(m message, fd int) error {
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	return unix.Sendmsg(int(c.f.Fd()), b, unix.UnixRights(fd), nil, 0)
}

// recvFD is recv that also takes a descriptor sent with the message;
// fd is -1 when none came.
func (c *conn) recvFD() (m message, fd int, err error) {
	buf := c.rbuf()
	oob := make([]byte, unix.CmsgSpace(4))
	var n, oobn int
	for {
		n, oobn, _, _, err = unix.Recvmsg(int(c.f.Fd()), buf, oob, unix.MSG_CMSG_CLOEXEC)
		if !errors.Is(err, unix.EINTR) {
			break
		}
	}
	if err != nil {
		return m, -1, err
	}
	fd = -1
	if cms, err := unix.ParseSocketControlMessage(oob[:oobn]); err == nil {
		for _, cm := range cms {
			fds, _ := unix.ParseUnixRights(&cm)
			for _, f := range fds {
				if fd < 0 {
					fd = f
				} else {
					unix.Close(f)
				}
			}
		}
	}
	if n == 0 {
		if fd >= 0 {
			unix.Close(fd)
		}
		return m, -1, errClosed
	}
	if err := json.Unmarshal(buf[:n], &m); err != nil {
		if fd >= 0 {
			unix.Close(fd)
		}
		return m, -1, fmt.Errorf("bad control message: %w", err)
	}
	return m, fd, nil
}

// terminal is the launcher's side: the caller's terminal on fd 0, and
// the master of the payload's once init has passed it.
type terminal struct {
	fd    int      // the caller's terminal: 0, or 1 or 2 when stdin is none
	out   *os.File // where the payload's terminal output goes
	null  *os.File // init's stand-in for the caller's terminal
	plan  *policy.PTY
	mu    sync.Mutex
	saved unix.Termios // the caller's settings, restored at the end
	// inherit: sbx started in the foreground, and saved are the
	// caller's settings. Started with &, they are those of whatever has
	// the terminal, as a rule the shell's line editor (no echo, no
	// canonical mode, no CR to NL): the payload's terminal keeps a new
	// terminal's defaults instead.
	inherit bool
	raw     bool // the caller's terminal is raw, by us
	held    bool // sbx is stopping: the terminal is the shell's
	ended   bool
	// asked: the payload wrote an escape sequence, a C1 control or ENQ
	// (it may have asked the terminal a question, whose answer must not
	// reach the shell).
	asked atomic.Bool
	// filter drops, while sbx is in the background, the sequences that
	// make a terminal answer (outside the foreground the answer would
	// be typed into the shell).
	filter answerFilter

	master   *os.File
	mfd      int
	stopR    int // closed write end: the input relay ends
	stopW    int
	wakeR    int // a byte: the input relay looks at the foreground again
	wakeW    int
	outDone  chan struct{}
	lastRead atomic.Int64 // unix nanoseconds of the last output
}

// lookAgain is how often the input relay looks whether a sandbox in the
// background has come to the foreground. No signal says so: a shell's
// fg of a job that is not stopped only gives it the terminal (bash's
// start_job sends SIGCONT to stopped jobs only).
const lookAgain = 100 * time.Millisecond

func newTerminal(pt *policy.PTY) (*terminal, error) {
	fd := 0
	switch {
	case pt.Stdin:
	case pt.Stdout:
		fd = 1
	default:
		fd = 2
	}
	saved, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return nil, fmt.Errorf("launcher: terminal settings: %w", err)
	}
	null, err := os.OpenFile("/dev/null", os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("launcher: %w", err)
	}
	var stop, wake [2]int
	if err := unix.Pipe2(stop[:], unix.O_CLOEXEC); err != nil {
		null.Close()
		return nil, fmt.Errorf("launcher: pipe: %w", err)
	}
	if err := unix.Pipe2(wake[:], unix.O_CLOEXEC|unix.O_NONBLOCK); err != nil {
		null.Close()
		unix.Close(stop[0])
		unix.Close(stop[1])
		return nil, fmt.Errorf("launcher: pipe: %w", err)
	}
	t := &terminal{fd: fd, null: null, plan: pt, saved: *saved, inherit: foreground(fd) && pt.Stdin, mfd: -1,
		stopR: stop[0], stopW: stop[1], wakeR: wake[0], wakeW: wake[1], outDone: make(chan struct{})}
	t.filter.eightBit = !utf8Locale(os.Getenv)
	switch {
	case pt.Stdout:
		t.out = os.Stdout
	case pt.Stderr:
		t.out = os.Stderr
	default:
		t.out = os.Stdin // a terminal is as a rule open for writing too
	}
	return t, nil
}

// hide gives init /dev/null where the caller's terminal would be.
func (t *terminal) hide(files []*os.File) {
	if t.plan.Stdin {
		files[0] = t.null
	}
	if t.plan.Stdout {
		files[1] = t.null
	}
	if t.plan.Stderr {
		files[2] = t.null
	}
}

// packet is a control message and the descriptor that came with it
// (msgPTY's master), -1 when none did.
type packet struct {
	message
	fd int
}

// packets reads c until it ends. A descriptor that came with anything
// but msgPTY is closed on the way.
func (c *conn) packets() <-chan packet {
	msgs := make(chan packet, 4)
	go func() {
		defer close(msgs)
		for {
			m, fd, err := c.recvFD()
			if err != nil {
				return
			}
			if fd >= 0 && m.Type != msgPTY {
				unix.Close(fd)
				fd = -1
			}
			msgs <- packet{m, fd}
		}
	}()
	return msgs
}

// take is msgPTY's answer, for sbx run and sbx exec alike: the master
// that init passed is attached, and c is told the terminal is ready.
func (t *terminal) take(c *conn, p packet) error {
	switch {
	case t == nil:
		if p.fd >= 0 {
			unix.Close(p.fd)
		}
		return errors.New("a pseudo-terminal came, and none was asked for")
	case p.fd < 0:
		return errors.New("init passed no pseudo-terminal")
	}
	if err := t.attach(p.fd); err != nil {
		return err
	}
	return c.send(message{Type: msgPTYReady})
}

// attach takes the master init passed: it gets the caller's settings
// and window size, the caller's terminal turns raw, and the relays start.
func (t *terminal) attach(fd int) error {
	if _, err := unix.IoctlGetInt(fd, unix.TIOCGPTN); err != nil {
		unix.Close(fd)
		return fmt.Errorf("launcher: the descriptor init passed is no pseudo-terminal master: %w", err)
	}
	// Termios ioctls on a master act on its slave.
	if t.inherit {
		if err := unix.IoctlSetTermios(fd, unix.TCSETS, &t.saved); err != nil {
			unix.Close(fd)
			return fmt.Errorf("launcher: set the sandbox terminal's settings: %w", err)
		}
	}
	if !t.plan.Stdin {
		// Output only: the caller's terminal keeps its settings and does
		// the output processing, once; the payload's passes bytes as
		// they are.
		if tio, err := unix.IoctlGetTermios(fd, unix.TCGETS); err == nil {
			tio.Oflag &^= unix.OPOST
			unix.IoctlSetTermios(fd, unix.TCSETS, tio)
		}
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return fmt.Errorf("launcher: %w", err)
	}
	t.mfd = fd
	t.master = os.NewFile(uintptr(fd), "sbx-pty-master") // pollable: Close ends a Read
	t.resize()
	t.lastRead.Store(time.Now().UnixNano())
	go t.output()
	if t.plan.Stdin {
		t.enterRaw()
		go t.input()
	}
	return nil
}

// resize copies the caller's window size to the payload's terminal; the
// kernel sends SIGWINCH to its foreground process group when it changed.
func (t *terminal) resize() {
	if t.mfd < 0 {
		return
	}
	if ws, err := unix.IoctlGetWinsize(t.fd, unix.TIOCGWINSZ); err == nil {
		unix.IoctlSetWinsize(t.mfd, unix.TIOCSWINSZ, ws)
	}
}

// enterRaw makes the caller's terminal raw if sbx is in its foreground,
// and says whether it is. After a stop, or in the background, the shell
// may have put its own settings back: those are what the end restores.
// The window size may have changed meanwhile too (SIGWINCH goes to the
// foreground only).
func (t *terminal) enterRaw() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.ended || t.held || t.mfd < 0 || !t.plan.Stdin {
		return false
	}
	if !foreground(0) {
		t.raw = false // the shell has the terminal: not ours to change
		return false
	}
	if t.raw {
		return true
	}
	cur, err := unix.IoctlGetTermios(0, unix.TCGETS)
	if err != nil {
		return false
	}
	if *cur != makeRaw(t.saved) {
		t.saved = *cur
	}
	if raw := makeRaw(t.saved); *cur != raw && unix.IoctlSetTermios(0, unix.TCSETS, &raw) != nil {
		return false
	}
	t.raw = true
	t.resize()
	return true
}

// signal is a signal sbx got, as the relay of t sees it (t may be nil:
// no pseudo-terminal). SIGWINCH resizes the payload's terminal, whose
// kernel then signals its foreground group: it is not to be forwarded
// (forward false). SIGCONT puts the caller's terminal back as the relay
// needs it, and is forwarded as any other.
func (t *terminal) signal(s unix.Signal) (forward bool) {
	if t == nil {
		return true
	}
	switch s {
	case unix.SIGWINCH:
		t.resize()
		return false
	case unix.SIGCONT:
		t.continued()
	}
	return true
}

// continued is SIGCONT: sbx may have come to the foreground or left it,
// and the shell may have changed the settings while sbx was stopped.
func (t *terminal) continued() {
	t.mu.Lock()
	t.raw = false
	t.mu.Unlock()
	t.enterRaw()
	unix.Write(t.wakeW, []byte{0}) // the pipe is full at worst: a wake-up is pending
}

// suspend is the payload's stop: the caller gets its settings back and
// stop stops sbx, as a job of the caller's shell, until fg or bg.
// TCSETSF drops input not read yet: a terminal's answer to a question
// the payload asked must not go to the shell.
func (t *terminal) suspend(stop func()) {
	t.mu.Lock()
	if t.raw && foreground(0) {
		unix.IoctlSetTermios(0, unix.TCSETSF, &t.saved)
	}
	t.raw, t.held = false, true
	t.mu.Unlock()
	stop()
	t.mu.Lock()
	t.held = false
	t.mu.Unlock()
	t.continued()
}

// input relays the caller's keys to the payload's terminal while sbx is
// in the foreground. In the background it reads nothing (a read would
// stop it with SIGTTIN, and the keys are the shell's) and looks again
// on SIGCONT or after lookAgain.
func (t *terminal) input() {
	buf := make([]byte, 4096)
	fds := []unix.PollFd{{Fd: int32(t.stopR), Events: unix.POLLIN}, {Fd: int32(t.wakeR), Events: unix.POLLIN}, {Fd: 0, Events: unix.POLLIN}}
	for {
		fg := t.enterRaw()
		watch, timeout := fds, -1
		if !fg {
			watch, timeout = fds[:2], int(lookAgain/time.Millisecond)
		}
		for i := range watch {
			watch[i].Revents = 0
		}
		if _, err := unix.Poll(watch, timeout); err != nil {
			if errors.Is(err, unix.EINTR) {
				continue
			}
			return
		}
		if fds[0].Revents != 0 {
			return
		}
		if fds[1].Revents != 0 {
			unix.Read(t.wakeR, buf) // non-blocking: every pending wake-up at once
			continue
		}
		if !fg || fds[2].Revents == 0 {
			continue
		}
		if fds[2].Revents&unix.POLLIN == 0 {
			if fds[2].Revents&(unix.POLLHUP|unix.POLLERR|unix.POLLNVAL) != 0 {
				return
			}
			continue
		}
		if !t.enterRaw() { // stopping, or moved to the background meanwhile: the keys are the shell's
			continue
		}
		n, err := unix.Read(0, buf)
		if n > 0 {
			if _, err := t.master.Write(buf[:n]); err != nil {
				return
			}
			continue
		}
		if err == nil || !errors.Is(err, unix.EINTR) && !errors.Is(err, unix.EAGAIN) {
			return // hung up
		}
	}
}

// output relays what the payload writes to its terminal, until every
// slave is closed (EIO).
func (t *terminal) output() {
	defer close(t.outDone)
	buf := make([]byte, 32<<10)
	for {
		n, err := t.master.Read(buf)
		if n > 0 {
			t.lastRead.Store(time.Now().UnixNano())
			out := buf[:n]
			// Without the input relay (stdin redirected) no answer can
			// reach the sandbox: it would wait in the caller's terminal
			// for the shell. In the background, the same.
			if !t.plan.Stdin || !foreground(t.fd) {
				out = t.filter.drop(out)
			} else {
				out = t.filter.pass(out)
			}
			if t.filter.asked {
				t.asked.Store(true)
			}
			t.out.Write(out)
		}
		if err != nil {
			return
		}
	}
}

// drain, once the sandbox is gone, stops the input relay and lets the
// output relay write what is left, until EIO. A slave that a payload
// passed out of the sandbox would keep the master open: output that
// stays idle for half a second ends the wait.
func (t *terminal) drain() {
	if t.stopW >= 0 {
		unix.Close(t.stopW)
		t.stopW = -1
	}
	if t.master == nil {
		return
	}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-t.outDone:
			return
		case <-tick.C:
			if time.Since(time.Unix(0, t.lastRead.Load())) > 500*time.Millisecond {
				return
			}
		}
	}
}

// close restores the caller's terminal and releases the rest. The
// payload may have asked the terminal a question (an escape sequence)
// whose answer is still on its way: a status request of our own
// (DSR 5), answered after it, marks where the answers end; what came
// until then is dropped, and TCSETSF drops what is left unread.
func (t *terminal) close() {
	t.drain()
	t.mu.Lock()
	t.ended = true
	if t.raw && foreground(0) {
		if t.asked.Load() {
			syncAnswers(0, t.out)
		}
		unix.IoctlSetTermios(0, unix.TCSETSF, &t.saved)
	}
	t.raw = false
	t.mu.Unlock()
	if t.master != nil {
		t.master.Close()
	}
	t.null.Close()
	unix.Close(t.stopR)
	unix.Close(t.wakeR)
	unix.Close(t.wakeW)
}

// syncAnswers asks the terminal for its status and reads (raw) until the
// answer, CSI 0 n, or a quarter of a second: a terminal answers in
// order, so every answer to an earlier question has come before it. The
// payload may have told the terminal to answer with 8-bit controls
// (S8C1T): its CSI is then 9B, or C2 9B in UTF-8.
func syncAnswers(fd int, out *os.File) {
	out.Write([]byte("\x1b[5n"))
	deadline := time.Now().Add(250 * time.Millisecond)
	var seen []byte
	buf := make([]byte, 256)
	for {
		left := time.Until(deadline)
		if left <= 0 {
			return
		}
		p := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		if n, err := unix.Poll(p, int(left/time.Millisecond)+1); err != nil && !errors.Is(err, unix.EINTR) || n == 0 {
			if err == nil {
				return
			}
			continue
		}
		n, err := unix.Read(fd, buf)
		if n <= 0 || err != nil {
			return
		}
		seen = append(seen, buf[:n]...)
		if bytes.Contains(seen, []byte("\x1b[0n")) || bytes.Contains(seen, []byte("\x9b0n")) {
			return
		}
		if len(seen) > 4096 {
			seen = seen[len(seen)-16:]
		}
	}
}

// answerFilter is the payload's output on its way to the caller's
// terminal. Where no answer can go back to the payload (sbx in the
// background, or stdin redirected), drop keeps back what would make the
// terminal answer, since the answer would be typed into the caller's
// shell; elsewhere pass gives every byte on. Both follow the stream as
// the terminal's parser does (vt100.net/emu/dec_ansi_parser: DEC's
// terminals, and xterm and tmux after them), so as to split it where the
// terminal does:
//   - ESC, CAN and SUB end any sequence, wherever they come; ESC starts
//     a new one;
//   - the C1 controls start what their ESC forms start (CSI 0x9b, DCS
//     0x90, OSC 0x9d, SOS 0x98, PM 0x9e, APC 0x9f): as raw bytes for a
//     terminal not in UTF-8 mode, UTF-8-encoded (C2 9B is U+009B) for
//     one that is. A byte of a valid UTF-8 character is text (ś is C5 9B);
//   - a C0 control inside a sequence takes effect there and leaves the
//     sequence open.
//
// drop keeps, of all that, a list of what is known to be harmless: text,
// escape sequences but DECID, ST and a change of character coding, and
// the control sequences that draw (colours, cursor movement, erasing,
// scrolling, modes but those that make the terminal report). Every DCS,
// OSC, SOS, PM and APC string goes (requests among them: DECRQSS,
// XTGETTCAP, colour queries), and so do ENQ (the answerback) and the
// other C1 controls (0x9a is DECID). A sequence is held back until its
// end, so that the terminal never gets the start of one that is then
// dropped. The filter keeps its place across calls, inside a UTF-8
// character too.
type answerFilter struct {
	state int    // the terminal's parser: afGround, afEsc, ...
	seq   []byte // the sequence so far, from its introducer (ESC, 9B, or C2 9B)
	intro int    // the introducer's length in seq
	long  bool   // the sequence outgrew maxSeq: it goes, at its end
	u8    [4]byte
	u8n   int    // the bytes of a UTF-8 character not complete yet, in u8
	junk  []byte // what drop would give out during pass, thrown away
	// passed: the last call was pass, which held nothing back.
	passed bool
	// asked: an ESC, a C1 control or ENQ came, in either mode: the
	// terminal may have been asked something.
	asked bool
	// eightBit reads every byte alone, as a terminal not in UTF-8 mode
	// does: 0x9b in ś (C5 9B) is then CSI. sbx's locale says which.
	eightBit bool
}

// utf8Locale says whether the locale in env (LC_ALL, else LC_CTYPE,
// else LANG) is UTF-8: a terminal is then most likely in UTF-8 mode too.
// No locale is the C locale, which is not.
func utf8Locale(getenv func(string) string) bool {
	for _, k := range []string{"LC_ALL", "LC_CTYPE", "LANG"} {
		if v := getenv(k); v != "" {
			v = strings.ToLower(v)
			return strings.Contains(v, "utf-8") || strings.Contains(v, "utf8")
		}
	}
	return false
}

const (
	afGround = iota
	afEsc    // after ESC, with its intermediate bytes
	afCSI    // a control sequence: parameter and intermediate bytes
	afString // a DCS, SOS, PM or APC string, dropped up to its end
	afOSC    // an OSC string, which BEL ends too
)

const (
	enq = 0x05
	bel = 0x07
	can = 0x18
	sub = 0x1a
	esc = 0x1b
	// maxSeq bounds a sequence held back (SGR with two direct colours
	// is about 40 bytes).
	maxSeq = 256
)

// drop filters b, whose answers nothing inside would read.
func (f *answerFilter) drop(b []byte) []byte {
	out := make([]byte, 0, len(b)+1)
	if f.passed {
		// pass may have given the terminal the start of a sequence (or
		// of a character): CAN ends it, and what follows is text to
		// both. Always: terminals differ on where some malformed
		// sequences end (xterm ends one at a character above U+00FF,
		// others skip it), and in ground CAN does nothing. (tmux takes
		// CAN as data inside a DCS string, not as its end.)
		f.passed = false
		out = append(out, can)
		f.state, f.seq, f.u8n = afGround, f.seq[:0], 0
	}
	for _, c := range b {
		out = f.byte(out, c)
	}
	return out
}

// pass gives b on as it is (sbx in the foreground, relaying input: the
// terminal's answers go to the payload), after what drop was holding
// back, and follows where the terminal's parser is.
func (f *answerFilter) pass(b []byte) []byte {
	var out []byte
	if !f.passed {
		out = append(append(out, f.seq...), f.u8[:f.u8n]...)
		f.passed = true
	}
	out = append(out, b...)
	for _, c := range b {
		f.junk = f.byte(f.junk[:0], c)
	}
	return out
}

// byte takes c through a UTF-8 decoder first, as a terminal in UTF-8
// mode does; bytes that make no valid character go on one by one, as
// they are for a terminal that is not.
func (f *answerFilter) byte(out []byte, c byte) []byte {
	if f.eightBit {
		if c < 0x80 {
			return f.ascii(out, c)
		}
		return f.raw(out, c)
	}
	if f.u8n > 0 {
		lead := f.u8[0]
		lo, hi := byte(0x80), byte(0xbf)
		if f.u8n == 1 { // the second byte's range: no overlong form, no surrogate, nothing above U+10FFFF
			switch lead {
			case 0xe0:
				lo = 0xa0
			case 0xed:
				hi = 0x9f
			case 0xf0:
				lo = 0x90
			case 0xf4:
				hi = 0x8f
			}
		}
		if c >= lo && c <= hi {
			f.u8[f.u8n] = c
			f.u8n++
			size := 2
			if lead >= 0xf0 {
				size = 4
			} else if lead >= 0xe0 {
				size = 3
			}
			if f.u8n < size {
				return out
			}
			ch := f.u8[:f.u8n]
			f.u8n = 0
			if lead == 0xc2 && ch[1] < 0xa0 {
				return f.c1(out, ch[1], true)
			}
			return f.text(out, ch)
		}
		// No valid character: each byte is what it is alone.
		bad := f.u8
		n := f.u8n
		f.u8n = 0
		out = f.text(out, bad[:1])
		for _, b := range bad[1:n] {
			out = f.raw(out, b)
		}
	}
	switch {
	case c < 0x80:
		return f.ascii(out, c)
	case c >= 0xc2 && c <= 0xf4:
		f.u8[0], f.u8n = c, 1
		return out
	}
	return f.raw(out, c)
}

// raw is a byte 0x80 to 0xff that is no part of a UTF-8 character.
func (f *answerFilter) raw(out []byte, c byte) []byte {
	if c < 0xa0 {
		return f.c1(out, c, false)
	}
	return f.text(out, []byte{c})
}

func (f *answerFilter) ascii(out []byte, c byte) []byte {
	switch c {
	case esc:
		f.asked = true
		f.state, f.seq, f.intro, f.long = afEsc, append(f.seq[:0], esc), 1, false
		return out
	case can, sub: // they end any sequence, and take effect (SUB may show a glyph)
		f.state, f.seq = afGround, f.seq[:0]
		return append(out, c)
	case enq:
		f.asked = true
	}
	switch f.state {
	case afGround:
		if c == enq {
			return out
		}
		return append(out, c)
	case afEsc, afCSI:
		// Inside a sequence a C0 control takes effect, DEL is nothing,
		// and the sequence goes on: intermediate bytes after ESC,
		// parameter and intermediate bytes in a control sequence.
		last := byte(0x2f)
		if f.state == afCSI {
			last = 0x3f
		}
		switch {
		case c < 0x20:
			return execute(out, c)
		case c == 0x7f:
			return out
		case c <= last:
			if len(f.seq) >= maxSeq {
				f.long = true
			} else {
				f.seq = append(f.seq, c)
			}
			return out
		}
		if f.state == afEsc {
			return f.escFinal(out, c)
		}
		if !f.long && keepCSI(f.seq[f.intro:], c) {
			out = append(append(out, f.seq...), c)
		}
		f.state, f.seq = afGround, f.seq[:0]
		return out
	case afOSC:
		if c == bel {
			f.state = afGround
		}
	}
	return out
}

// escFinal is the byte that ends an escape sequence, or makes it the
// start of a control sequence or a string.
func (f *answerFilter) escFinal(out []byte, c byte) []byte {
	if len(f.seq) == 1 {
		switch c {
		case '[':
			f.state, f.seq, f.intro = afCSI, append(f.seq, c), 2
			return out
		case ']':
			f.state, f.seq = afOSC, f.seq[:0]
			return out
		case 'P', 'X', '^', '_':
			f.state, f.seq = afString, f.seq[:0]
			return out
		}
	}
	f.seq = append(f.seq, c)
	if !f.long && keepESC(f.seq) {
		out = append(out, f.seq...)
	}
	f.state, f.seq = afGround, f.seq[:0]
	return out
}

// execute is a C0 control inside an escape or control sequence: the
// terminal acts on it and goes on with the sequence, which is no
// different from its coming before the sequence.
func execute(out []byte, c byte) []byte {
	if c == enq {
		return out
	}
	return append(out, c)
}

// c1 is a C1 control, from one byte or (utf) two.
func (f *answerFilter) c1(out []byte, code byte, utf bool) []byte {
	f.asked = true
	f.state, f.seq = afGround, f.seq[:0]
	switch code {
	case 0x9b:
		if utf {
			f.seq = append(f.seq, 0xc2)
		}
		f.state, f.seq, f.long = afCSI, append(f.seq, code), false
		f.intro = len(f.seq)
	case 0x9d:
		f.state = afOSC
	case 0x90, 0x98, 0x9e, 0x9f:
		f.state = afString
	}
	// The others go: none draws, and 0x9a is DECID.
	return out
}

// text is a printable character: a valid UTF-8 one, or a byte 0xa0 to
// 0xff of none.
func (f *answerFilter) text(out, ch []byte) []byte {
	switch f.state {
	case afGround:
		return append(out, ch...)
	case afEsc, afCSI:
		// A terminal that is not in UTF-8 mode reads 0xa0-0xff as
		// 0x20-0x7f there, one that is may not: drop the sequence; the
		// character is text.
		f.state, f.seq = afGround, f.seq[:0]
		return append(out, ch...)
	}
	return out
}

// keepESC tells whether an escape sequence (ESC, intermediates, final)
// is harmless.
func keepESC(seq []byte) bool {
	inter, final := seq[1:len(seq)-1], seq[len(seq)-1]
	if bytes.IndexByte(inter, '%') >= 0 {
		return false // DOCS: another character coding, which the filter would misread
	}
	return len(inter) > 0 || final != 'Z' && final != '\\' // DECID answers; a lone ST ends nothing
}

// keepCSI tells whether a control sequence, of parameter and
// intermediate bytes body and final byte final, is one that draws.
func keepCSI(body []byte, final byte) bool {
	var prefix byte
	if len(body) > 0 && body[0] >= '<' && body[0] <= '?' {
		prefix, body = body[0], body[1:]
	}
	i := 0
	for i < len(body) && body[i] >= '0' && body[i] <= ';' {
		i++
	}
	params, inter := body[:i], body[i:]
	if bytes.IndexFunc(inter, func(r rune) bool { return r >= 0x30 }) >= 0 {
		return false // a terminal ignores it (DEC: csi_ignore), or does not
	}
	if final != 'm' && bytes.IndexByte(params, ':') >= 0 {
		return false // sub-parameters: SGR's only
	}
	switch {
	case prefix == 0 && len(inter) == 0:
		switch final {
		case '@', 'A', 'B', 'C', 'D', 'E', 'F', 'G', 'H', 'I', 'J', 'K', 'L', 'M', 'P', 'S', 'X', 'Z',
			'`', 'a', 'b', 'd', 'e', 'f', 'g', 'm', 'r', 's', 'u':
			return true
		case 'T': // SD; with more parameters, xterm's highlight mouse tracking, which reports
			return bytes.IndexByte(params, ';') < 0
		case 'h', 'l': // IRM only: others lock the keyboard (KAM) or echo typed keys (SRM)
			return eachMode(params, func(m int) bool { return m == 4 })
		}
	case prefix == '?' && len(inter) == 0:
		switch final {
		case 'J', 'K':
			return true
		case 'h':
			return eachMode(params, func(m int) bool { return !reportModes[m] })
		case 'l': // DECANM: a VT52 terminal parses otherwise
			return eachMode(params, func(m int) bool { return m != 2 })
		}
	case prefix == 0 && string(inter) == " ":
		return final == 'q' // DECSCUSR, the cursor's shape
	case prefix == 0 && string(inter) == "!":
		return final == 'p' // DECSTR, a soft reset
	}
	return false
}

// reportModes are the DEC private modes that make a terminal send input
// of its own: mouse tracking, focus events, in-band resize, colour-scheme
// reports (2031), and the wheel as arrow keys (1007).
var reportModes = map[int]bool{9: true, 1000: true, 1001: true, 1002: true, 1003: true, 1004: true, 1007: true, 2031: true, 2048: true}

// eachMode tells whether ok holds for every mode number in params.
func eachMode(params []byte, ok func(int) bool) bool {
	for _, p := range bytes.Split(params, []byte{';'}) {
		m := 0
		for _, d := range p {
			if m < 1e6 {
				m = m*10 + int(d-'0')
			}
		}
		if !ok(m) {
			return false
		}
	}
	return true
}
