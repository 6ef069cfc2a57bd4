package tests

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// outerTerm is a pseudo-terminal that plays the caller's terminal: sbx
// (or a shell that starts it) runs in a new session with the slave as
// its controlling terminal and descriptors 0, 1, 2, and the test types
// into the master and reads what appears there.
type outerTerm struct {
	ptmx, pts *os.File
	cmd       *exec.Cmd
	done      chan struct{}
	mu        sync.Mutex
	out       bytes.Buffer
	more      chan struct{}
}

// startInTerm starts argv under a new outer terminal of rows×cols.
func startInTerm(t *testing.T, rows, cols uint16, argv ...string) *outerTerm {
	t.Helper()
	ptmx, pts := openPty(t)
	o := &outerTerm{ptmx: ptmx, pts: pts, done: make(chan struct{}), more: make(chan struct{})}
	o.setSize(t, rows, cols)
	o.cmd = exec.Command(argv[0], argv[1:]...)
	o.cmd.Stdin, o.cmd.Stdout, o.cmd.Stderr = pts, pts, pts
	o.cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := o.cmd.Start(); err != nil {
		t.Fatalf("start %q: %v", argv, err)
	}
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := ptmx.Read(buf)
			o.mu.Lock()
			o.out.Write(buf[:n])
			close(o.more)
			o.more = make(chan struct{})
			o.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	go func() {
		o.cmd.Wait()
		close(o.done)
	}()
	t.Cleanup(func() {
		// A job a shell left stopped or in the background would
		// outlive it: kill the session, which is the test's own.
		killSession(o.cmd.Process.Pid)
		select {
		case <-o.done:
		default:
			syscall.Kill(o.cmd.Process.Pid, syscall.SIGKILL)
			<-o.done
		}
		pts.Close()
		ptmx.Close()
	})
	return o
}

// killSession sends SIGKILL to every process of session sid but its
// leader (proc(5): the session is field 6 of /proc/PID/stat).
func killSession(sid int) {
	dirs, _ := os.ReadDir("/proc")
	for _, d := range dirs {
		pid, err := strconv.Atoi(d.Name())
		if err != nil || pid == sid {
			continue
		}
		b, err := os.ReadFile("/proc/" + d.Name() + "/stat")
		if err != nil {
			continue
		}
		// The command name, in parentheses, may hold spaces: the
		// fields after it start at the last ')'.
		f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
		if len(f) > 3 && f[3] == strconv.Itoa(sid) {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

func (o *outerTerm) setSize(t *testing.T, rows, cols uint16) {
	t.Helper()
	if err := unix.IoctlSetWinsize(int(o.ptmx.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: rows, Col: cols}); err != nil {
		t.Fatal(err)
	}
}

func (o *outerTerm) termios(t *testing.T) unix.Termios {
	t.Helper()
	tio, err := unix.IoctlGetTermios(int(o.pts.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	return *tio
}

func (o *outerTerm) output() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.out.String()
}

// waitFor waits until the output holds want.
func (o *outerTerm) waitFor(t *testing.T, want string, d time.Duration) {
	t.Helper()
	o.waitAfter(t, 0, want, d)
}

// mark is where the output ends now, for waitAfter.
func (o *outerTerm) mark() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.out.Len()
}

// waitAfter waits until the output after mark holds want.
func (o *outerTerm) waitAfter(t *testing.T, mark int, want string, d time.Duration) {
	t.Helper()
	after := func() string { return o.output()[mark:] }
	deadline := time.After(d)
	for {
		o.mu.Lock()
		has, more := strings.Contains(o.out.String()[mark:], want), o.more
		o.mu.Unlock()
		if has {
			return
		}
		select {
		case <-more:
		case <-o.done:
			time.Sleep(100 * time.Millisecond) // what the relay still had
			if !strings.Contains(after(), want) {
				t.Fatalf("exited (%v) before %q appeared; output %q", o.cmd.ProcessState, want, o.output())
			}
			return
		case <-deadline:
			t.Fatalf("no %q within %v; output since the mark %q", want, d, after())
		}
	}
}

// waitTermios waits until the outer terminal's settings pass ok. No
// event tells a change of them: it looks every 10 ms until the deadline.
func (o *outerTerm) waitTermios(t *testing.T, what string, ok func(unix.Termios) bool, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		tio := o.termios(t)
		if ok(tio) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the outer terminal is not %s within %v: %+v; output %q", what, d, tio, o.output())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// isRaw tells sbx's raw mode (cfmakeraw) from a line editor's, which
// keeps ISIG and OPOST.
func isRaw(tio unix.Termios) bool {
	return tio.Lflag&(unix.ICANON|unix.ECHO|unix.ISIG|unix.IEXTEN) == 0 && tio.Oflag&unix.OPOST == 0
}

func (o *outerTerm) typeIn(t *testing.T, s string) {
	t.Helper()
	if _, err := o.ptmx.Write([]byte(s)); err != nil {
		t.Fatal(err)
	}
}

// wait waits for the process to exit and returns its exit code.
func (o *outerTerm) wait(t *testing.T, d time.Duration) int {
	t.Helper()
	select {
	case <-o.done:
		return o.cmd.ProcessState.ExitCode()
	case <-time.After(d):
		syscall.Kill(o.cmd.Process.Pid, syscall.SIGKILL)
		<-o.done
		t.Fatalf("pid %d did not exit within %v; killed it; output %q", o.cmd.Process.Pid, d, o.output())
		return -1
	}
}

func sbxArgv(args ...string) []string { return append([]string{sbxBin, "run"}, args...) }

// TestPTY runs sbx on a terminal: the payload gets a pseudo-terminal of
// its own, of the caller's size, and the caller's settings come back.
func TestPTY(t *testing.T) {
	requireUserns(t)
	t.Parallel()

	t.Run("tty and size", func(t *testing.T) {
		t.Parallel()
		o := startInTerm(t, 33, 77, sbxArgv("--", "sh", "-c", "tty; stty size")...)
		before := o.termios(t)
		o.waitFor(t, "33 77", 15*time.Second)
		if code := o.wait(t, 15*time.Second); code != 0 {
			t.Fatalf("exit %d; output %q", code, o.output())
		}
		if !strings.Contains(o.output(), "/dev/pts/") || strings.Contains(o.output(), "not a tty") {
			t.Errorf("tty inside: want a /dev/pts/N path; output %q", o.output())
		}
		if after := o.termios(t); after != before {
			t.Errorf("the outer terminal's settings changed:\nbefore %+v\nafter  %+v", before, after)
		}
	})

	t.Run("interactive shell", func(t *testing.T) {
		t.Parallel()
		o := startInTerm(t, 24, 80, sbxArgv("--env", "PS1=sbx$ ", "--", "sh", "-i")...)
		before := o.termios(t)
		o.waitFor(t, "sbx$ ", 15*time.Second)
		o.typeIn(t, "echo h''i; tty\n")
		o.waitFor(t, "\nhi\r\n", 10*time.Second)
		o.typeIn(t, "exit\n")
		if code := o.wait(t, 10*time.Second); code != 0 {
			t.Errorf("exit %d after \"exit\"; output %q", code, o.output())
		}
		if after := o.termios(t); after != before {
			t.Errorf("the outer terminal's settings changed:\nbefore %+v\nafter  %+v", before, after)
		}
	})

	t.Run("Ctrl-C", func(t *testing.T) {
		t.Parallel()
		o := startInTerm(t, 24, 80, sbxArgv("--", "sh", "-c", "echo ready; exec sleep 30")...)
		o.waitFor(t, "ready", 15*time.Second)
		time.Sleep(200 * time.Millisecond) // sleep has replaced sh
		if tio := o.termios(t); tio.Lflag&(unix.ICANON|unix.ISIG|unix.ECHO) != 0 {
			t.Errorf("the outer terminal is not raw while the payload runs: lflag %#x", tio.Lflag)
		}
		o.typeIn(t, "\x03")
		if code := o.wait(t, 10*time.Second); code != 130 {
			t.Errorf("Ctrl-C: exit %d, want 130 (sleep interrupted inside); output %q", code, o.output())
		}
	})

	t.Run("SIGWINCH", func(t *testing.T) {
		t.Parallel()
		o := startInTerm(t, 24, 80, sbxArgv("--", "sh", "-c", `trap 'stty size' WINCH; echo ready; i=0; while [ $i -lt 200 ]; do sleep 0.1; i=$((i+1)); done`)...)
		o.waitFor(t, "ready", 15*time.Second)
		o.setSize(t, 40, 101)
		o.waitFor(t, "40 101", 10*time.Second)
		o.typeIn(t, "\x03")
		o.wait(t, 10*time.Second)
		if n := strings.Count(o.output(), "40 101"); n != 1 {
			t.Errorf("one resize: the trap ran %d times; output %q", n, o.output())
		}
	})

	t.Run("no-pty", func(t *testing.T) {
		t.Parallel()
		o := startInTerm(t, 24, 80, sbxArgv("--no-pty", "--", "sh", "-c", "tty; echo end")...)
		o.waitFor(t, "end", 15*time.Second)
		o.wait(t, 10*time.Second)
		if !strings.Contains(o.output(), "not a tty") {
			t.Errorf("--no-pty: want tty to say \"not a tty\" (the caller's terminal, a file of no view); output %q", o.output())
		}
	})

	t.Run("no caller's terminal inside", func(t *testing.T) {
		t.Parallel()
		outer := hostDevpts(t)
		args := append(sbxArgv(helperFlags()...), "--", "/bin/sh", "-c",
			`for f in 0 1 2; do stat -Lc "fd$f %d" /proc/self/fd/$f; done; "$0" `+helperArg+` tiocsti; echo end`, helperExe)
		o := startInTerm(t, 24, 80, args...)
		o.waitFor(t, "end", 15*time.Second)
		o.wait(t, 10*time.Second)
		out := o.output()
		for _, fd := range []string{"fd0", "fd1", "fd2"} {
			if !strings.Contains(out, fd+" ") {
				t.Fatalf("no stat of %s inside; output %q", fd, out)
			}
			if strings.Contains(out, fmt.Sprintf("%s %d\r", fd, outer.Dev)) {
				t.Errorf("%s inside is on the host's devpts (device %d); output %q", fd, outer.Dev, out)
			}
		}
		t.Logf("TIOCSTI inside: %q", out)
		if n, err := unix.IoctlGetInt(int(o.pts.Fd()), unix.TIOCINQ); err != nil || n != 0 {
			t.Errorf("the outer terminal's input queue holds %d bytes (%v) after TIOCSTI inside", n, err)
		}
	})

	t.Run("settings restored", func(t *testing.T) {
		t.Parallel()
		for _, c := range []struct {
			name string
			args []string
			term bool // SIGTERM to sbx once the payload runs
			want int
		}{
			{"timeout", []string{"--timeout", "1s", "--", "sh", "-c", "echo ready; exec sleep 30"}, false, 124},
			{"SIGTERM", []string{"--", "sh", "-c", "echo ready; exec sleep 30"}, true, 143},
			{"exec failure", []string{"--", "/nonexistent"}, false, 127},
			{"setup error", []string{"--chdir", "/nonexistent", "--", "true"}, false, 125},
		} {
			t.Run(c.name, func(t *testing.T) {
				t.Parallel()
				o := startInTerm(t, 24, 80, sbxArgv(c.args...)...)
				before := o.termios(t)
				if c.term {
					o.waitFor(t, "ready", 15*time.Second)
					syscall.Kill(o.cmd.Process.Pid, syscall.SIGTERM)
				}
				if code := o.wait(t, 15*time.Second); code != c.want {
					t.Errorf("exit %d, want %d; output %q", code, c.want, o.output())
				}
				if after := o.termios(t); after != before {
					t.Errorf("the outer terminal's settings changed:\nbefore %+v\nafter  %+v", before, after)
				}
			})
		}
	})

	t.Run("background", func(t *testing.T) {
		t.Parallel()
		if _, err := exec.LookPath("bash"); err != nil {
			mustRun(t, "no bash for job control")
		}
		// bash -m puts the sandbox in a background process group of
		// the terminal's session, as & does in an interactive shell.
		script := `"$0" run -- sh -c 'echo bg-ready; read x; echo "stolen:$x"' & sleep 1; echo fg-ready; read y; echo "shell:$y"; kill -9 %1 2>/dev/null; wait`
		o := startInTerm(t, 24, 80, "bash", "-m", "-c", script, sbxBin)
		before := o.termios(t)
		o.waitFor(t, "bg-ready", 15*time.Second)
		o.waitFor(t, "fg-ready", 15*time.Second)
		if after := o.termios(t); after != before {
			t.Errorf("a sandbox in the background changed the terminal's settings:\nbefore %+v\nafter  %+v", before, after)
		}
		o.typeIn(t, "typed\n")
		o.waitFor(t, "shell:typed", 10*time.Second)
		o.wait(t, 10*time.Second)
		if strings.Contains(o.output(), "stolen:typed") {
			t.Errorf("the background sandbox read the terminal; output %q", o.output())
		}
	})
}

// TestPTYJobControl runs sbx as a job of bash on the outer terminal: in
// the background with &, stopped with Ctrl-Z, brought back with fg.
// While sbx is in the foreground the outer terminal is raw and typed
// input reaches the payload; while it is stopped or in the background,
// the terminal has the caller's settings; the window size the payload
// sees follows the resizes it missed meanwhile and those after.
func TestPTYJobControl(t *testing.T) {
	requireUserns(t)
	if _, err := exec.LookPath("bash"); err != nil {
		mustRun(t, "no bash for job control")
	}
	t.Parallel()
	// The payload: "lines-ready", then "got:LINE" per line and "size
	// ROWS COLS" per SIGWINCH. The shells get its command line as $S,
	// and the words they echo are none of those the test waits for.
	payload := strings.Join(sbxArgv(append(helperFlags(), "--", helperExe, helperArg, "tty-lines")...), " ")
	// An interactive bash, as a user has it: readline has the terminal
	// while bash waits for a command, and bash puts its own settings
	// back when a job stops. before are readline's settings.
	shell := func(t *testing.T) (o *outerTerm, before unix.Termios) {
		o = startInTerm(t, 24, 80, "env", "PS1=bash$ ", "HISTFILE=/dev/null", "S="+payload, "bash", "--norc", "--noprofile", "-i")
		o.waitFor(t, "bash$ ", 10*time.Second)
		return o, o.termios(t)
	}
	// run types a command line and waits for the prompt after it.
	run := func(t *testing.T, o *outerTerm, line string, want ...string) {
		t.Helper()
		m := o.mark()
		o.typeIn(t, line+"\r")
		for _, w := range append(want, "bash$ ") {
			o.waitAfter(t, m, w, 15*time.Second)
		}
	}
	same := func(t *testing.T, when string, before, after unix.Termios) {
		t.Helper()
		if after != before {
			t.Errorf("%s: the outer terminal's settings changed:\nbefore %+v\nafter  %+v", when, before, after)
		}
	}
	// fg waits for sbx to come back after mark, once fg is typed: the
	// terminal turns raw, the payload sees the size the terminal got
	// while sbx was away (30×100), then input and a resize reach it.
	fg := func(t *testing.T, o *outerTerm, m int, fg string) {
		t.Helper()
		o.typeIn(t, fg)
		o.waitTermios(t, "raw after fg", isRaw, 10*time.Second)
		o.waitAfter(t, m, "size 30 100", 10*time.Second)
		o.typeIn(t, "hello\r")
		o.waitAfter(t, m, "got:hello", 10*time.Second)
		o.setSize(t, 40, 101)
		o.waitAfter(t, m, "size 40 101", 10*time.Second)
	}

	t.Run("& then fg", func(t *testing.T) {
		t.Parallel()
		o, before := shell(t)
		// Started with &, sbx copies no settings of readline's to the
		// payload's terminal: they would leave it without echo and
		// without CR to NL, and a line would never end.
		run(t, o, "$S &", "lines-ready")
		same(t, "sbx in the background", before, o.termios(t))
		m := o.mark()
		o.setSize(t, 30, 100)
		fg(t, o, m, "fg\r")
		m = o.mark()
		o.typeIn(t, "\x04") // EOF: the payload ends
		o.waitAfter(t, m, "bash$ ", 10*time.Second)
		same(t, "the payload ended", before, o.termios(t))
	})

	t.Run("Ctrl-Z then fg", func(t *testing.T) {
		t.Parallel()
		o, before := shell(t)
		m := o.mark()
		o.typeIn(t, "$S\r")
		o.waitAfter(t, m, "lines-ready", 15*time.Second)
		o.waitTermios(t, "raw", isRaw, 10*time.Second)
		o.typeIn(t, "one\r")
		o.waitAfter(t, m, "got:one", 10*time.Second)
		// Ctrl-Z stops the payload and, after it, sbx: a stopped job.
		m = o.mark()
		o.typeIn(t, "\x1a")
		o.waitAfter(t, m, "Stopped", 10*time.Second)
		o.waitAfter(t, m, "bash$ ", 10*time.Second)
		same(t, "sbx stopped", before, o.termios(t))
		run(t, o, "jobs", "Stopped")
		m = o.mark()
		o.setSize(t, 30, 100)
		fg(t, o, m, "fg\r")
		m = o.mark()
		o.typeIn(t, "\x04")
		o.waitAfter(t, m, "bash$ ", 10*time.Second)
		same(t, "the payload ended", before, o.termios(t))
	})

	// bash -m -c: job control, but no line editor and no settings of
	// its own put back when a job stops (bash does that only when
	// interactive): what the terminal has is what sbx left.
	script := func(t *testing.T, script string) (o *outerTerm, before unix.Termios) {
		o = startInTerm(t, 24, 80, "env", "S="+payload, "bash", "-m", "-c", `echo begin; read go; `+script)
		o.waitFor(t, "begin", 10*time.Second)
		before = o.termios(t)
		o.typeIn(t, "go\r")
		return o, before
	}

	t.Run("settings across & and fg", func(t *testing.T) {
		t.Parallel()
		o, before := script(t, `$S & read x; echo "shell:$x"; fg; echo "done:$?"`)
		o.waitFor(t, "lines-ready", 15*time.Second)
		same(t, "sbx in the background", before, o.termios(t))
		m := o.mark()
		o.setSize(t, 30, 100)
		o.typeIn(t, "typed\r") // read x, then fg
		o.waitFor(t, "shell:typed", 10*time.Second)
		fg(t, o, m, "")
		if strings.Contains(o.output(), "got:typed") {
			t.Errorf("the sandbox in the background read the terminal; output %q", o.output())
		}
		o.typeIn(t, "\x04")
		o.waitFor(t, "done:0", 10*time.Second)
		same(t, "the payload ended", before, o.termios(t))
		if code := o.wait(t, 10*time.Second); code != 0 {
			t.Errorf("bash: exit %d; output %q", code, o.output())
		}
	})

	t.Run("settings across Ctrl-Z and fg", func(t *testing.T) {
		t.Parallel()
		o, before := script(t, `$S; echo "stopped:$?"; read x; fg; echo "done:$?"`)
		o.waitFor(t, "lines-ready", 15*time.Second)
		o.waitTermios(t, "raw", isRaw, 10*time.Second)
		o.typeIn(t, "one\r")
		o.waitFor(t, "got:one", 10*time.Second)
		o.typeIn(t, "\x1a")
		o.waitFor(t, fmt.Sprintf("stopped:%d", 128+int(syscall.SIGTSTP)), 10*time.Second)
		same(t, "sbx stopped", before, o.termios(t))
		m := o.mark()
		o.setSize(t, 30, 100)
		fg(t, o, m, "go\r") // read x, then fg
		o.typeIn(t, "\x04")
		o.waitFor(t, "done:0", 10*time.Second)
		same(t, "the payload ended", before, o.termios(t))
		if code := o.wait(t, 10*time.Second); code != 0 {
			t.Errorf("bash: exit %d; output %q", code, o.output())
		}
	})
}

// shQuoteArgs renders argv for a shell command line.
func shQuoteArgs(argv []string) string {
	var q []string
	for _, a := range argv {
		q = append(q, shQuoteTest(a))
	}
	return strings.Join(q, " ")
}

// With stdin redirected, stdout and stderr on the caller's terminal
// still reach it only through a pseudo-terminal of the sandbox's: the
// payload cannot change the caller's terminal's settings (nor read
// what is typed to the shell, nor change its line discipline).
func TestTerminalOutputOnly(t *testing.T) {
	requireUserns(t)
	t.Parallel()
	script := `stty raw -echo <&1 2>/dev/null; stty raw -echo <&2 2>/dev/null; stty raw -echo </dev/tty 2>/dev/null
		for f in 1 2; do stat -Lc "fd$f %d" /proc/self/fd/$f; done; test -t 0 || echo stdin-redirected
		printf 'ask[\033[6n\033[c]'; echo end`
	cmd := shQuoteArgs(sbxArgv("--", "/bin/sh", "-c", script)) + " </dev/null"
	outer := hostDevpts(t)
	o := startInTerm(t, 24, 80, "/bin/sh", "-c", cmd)
	before := o.termios(t)
	o.waitFor(t, "end", 15*time.Second)
	o.wait(t, 10*time.Second)
	out := o.output()
	if !strings.Contains(out, "stdin-redirected") {
		t.Fatalf("stdin was not the redirected one: %q", out)
	}
	// No one inside can read a terminal's answer: the questions go.
	if !strings.Contains(out, "ask[]") {
		t.Errorf("the payload's terminal questions reached the caller's terminal: %q", out)
	}
	for _, fd := range []string{"fd1", "fd2"} {
		if !strings.Contains(out, fd+" ") || strings.Contains(out, fmt.Sprintf("%s %d\r", fd, outer.Dev)) || strings.Contains(out, fmt.Sprintf("%s %d\n", fd, outer.Dev)) {
			t.Errorf("%s inside is on the host's devpts (device %d), or missing; output %q", fd, outer.Dev, out)
		}
	}
	if after := o.termios(t); after != before {
		t.Errorf("the payload changed the caller's terminal settings: before %+v, after %+v", before, after)
	}
}

// A terminal's answer to a question the payload asked just before it
// ended (here a cursor position report, sent late, as over ssh) must not
// be left for the shell to read as typed input.
func TestTerminalAnswerAfterExit(t *testing.T) {
	requireUserns(t)
	t.Parallel()
	o := startInTerm(t, 24, 80, sbxArgv("--", "/bin/sh", "-c", `printf 'asking\033[6n'`)...)
	o.waitFor(t, "\x1b[6n", 10*time.Second)
	// sbx asks for the terminal's status once the payload is gone; a
	// terminal answers in order: the position first, then the status.
	o.waitFor(t, "\x1b[5n", 10*time.Second)
	o.ptmx.Write([]byte("\x1b[24;80R\x1b[0n"))
	o.wait(t, 10*time.Second)
	// Canonical, the queue counts whole lines only: look at every byte.
	tio := o.termios(t)
	tio.Lflag &^= unix.ICANON
	if err := unix.IoctlSetTermios(int(o.pts.Fd()), unix.TCSETS, &tio); err != nil {
		t.Fatal(err)
	}
	if n, err := unix.IoctlGetInt(int(o.pts.Fd()), unix.TIOCINQ); err != nil || n != 0 {
		t.Errorf("%d bytes of the terminal's answer are left for the shell (%v)", n, err)
	}
}

// In the background, sbx passes the payload's output on without the
// sequences that make a terminal answer (the answer would go to the
// shell, which has the terminal then); colours stay.
func TestTerminalBackgroundQueries(t *testing.T) {
	requireUserns(t)
	t.Parallel()
	if _, err := exec.LookPath("bash"); err != nil {
		mustRun(t, "no bash")
	}
	inner := shQuoteArgs(sbxArgv("--", "/bin/sh", "-c", `sleep 0.3; printf 'bg[\033[31mred\033[0m\033[6n\033[c\033]11;?\007]end\n'`))
	o := startInTerm(t, 24, 80, "bash", "-m", "-c", inner+" & wait")
	o.waitFor(t, "]end", 15*time.Second)
	o.wait(t, 10*time.Second)
	out := o.output()
	if !strings.Contains(out, "bg[\x1b[31mred\x1b[0m]end") {
		t.Errorf("background output: want the colours and the text without the queries, got %q", out)
	}
}

// The questions that a filter which does not parse as a terminal does
// let through: ESC restarting an escape sequence (the red team's
// printf "\033\033[6n"), ESC inside a control sequence, CAN, the 8-bit
// controls raw and in UTF-8, DECID; and UTF-8 text whose bytes include
// 0x9b stays. In the background, and with stdin redirected.
func TestTerminalQueriesParsed(t *testing.T) {
	requireUserns(t)
	t.Parallel()
	if _, err := exec.LookPath("bash"); err != nil {
		mustRun(t, "no bash")
	}
	// printf takes at most three octal digits: \2336n is 9B then "6n".
	payload := sbxArgv("--", "/bin/sh", "-c", `sleep 0.3; printf 'A[\033\033[6n]B[\033[\033[6n]C[\033[6\030\033[6n]D[\2336n]E[\302\2336n]F[\033Z]G[\220$qm\234]H[\305\2336n]end\n'`)
	// In a UTF-8 locale, ś (C5 9B) is text; in another, the terminal is
	// taken to read every byte alone, and its 9B is CSI.
	for _, loc := range []struct{ name, want string }{
		{"C.UTF-8", "A[]B[]C[\x18]D[]E[]F[]G[]H[ś6n]end"},
		{"C", "A[]B[]C[\x18]D[]E[\xc2]F[]G[]H[\xc5]end"},
	} {
		for _, c := range []struct{ name, cmd string }{
			{"background", "LC_ALL=" + loc.name + " " + shQuoteArgs(payload) + " & wait"},
			{"stdin redirected", "LC_ALL=" + loc.name + " " + shQuoteArgs(payload) + " </dev/null"},
		} {
			t.Run(loc.name+" "+c.name, func(t *testing.T) {
				t.Parallel()
				o := startInTerm(t, 24, 80, "bash", "-m", "-c", c.cmd)
				o.waitFor(t, "]end", 15*time.Second)
				o.wait(t, 10*time.Second)
				if out := o.output(); !strings.Contains(out, loc.want) {
					t.Errorf("want the text without the questions, %q, got %q", loc.want, out)
				}
			})
		}
	}
}

// A closed stderr must not kill sbx before it restores the terminal:
// Go dies of SIGPIPE on a write to fd 2 unless the signal is caught.
func TestTerminalClosedStderr(t *testing.T) {
	requireUserns(t)
	t.Parallel()
	args := sbxArgv(append(helperFlags(), "--log-denied", "--", "/bin/sh", "-c", `sleep 0.5; "$0" `+helperArg+` sys keyctl`, helperExe)...)
	o := startInTerm(t, 24, 80, "/bin/sh", "-c", shQuoteArgs(args)+" 2>&1 | true; echo done")
	before := o.termios(t)
	o.waitFor(t, "done", 15*time.Second)
	o.wait(t, 10*time.Second)
	if after := o.termios(t); after != before {
		t.Errorf("the caller's terminal settings were not restored: before %+v, after %+v", before, after)
	}
}

// hostDevpts is the device of the host's devpts: a terminal of the
// caller's is on it, none of the sandbox's is.
func hostDevpts(t *testing.T) unix.Stat_t {
	t.Helper()
	ptmx, pts := openPty(t)
	defer ptmx.Close()
	defer pts.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(pts.Fd()), &st); err != nil {
		t.Fatal(err)
	}
	return st
}

// A terminal kept with --preserve-fd would hand the sandbox the caller's
// terminal (its modes, its size, its input) past the pseudo-terminal:
// refused, unless --no-pty hands the caller's terminal over anyway.
func TestPreservedTerminalRefused(t *testing.T) {
	requireUserns(t)
	t.Parallel()
	ptmx, pts := openPty(t)
	defer ptmx.Close()
	defer pts.Close()
	r := sbxCmd{args: []string{"run", "--preserve-fd", "3", "--", "/bin/stty", "-F", "/proc/self/fd/3", "-echo"}, extra: []*os.File{pts}}.run(t)
	if r.code != 125 {
		t.Fatalf("--preserve-fd of a terminal: want 125\n%s", r)
	}
	checkOneError(t, r, "--preserve-fd 3")
	r = sbxCmd{args: []string{"run", "--no-pty", "--preserve-fd", "3", "--", "/bin/sh", "-c", "test -t 3"}, extra: []*os.File{pts}}.run(t)
	if r.code != 0 {
		t.Errorf("--no-pty --preserve-fd of a terminal: want it kept\n%s", r)
	}
}

// With --log-denied and a terminal, PID 1 looks at each child before
// reaping it. A stop it saw can be undone by a SIGCONT before it waits:
// it must not then block on that one child, here an orphan stopped and
// continued over and over and then left asleep for a minute, while the
// payload has ended.
func TestReaperStopUndone(t *testing.T) {
	requireUserns(t)
	t.Parallel()
	chelper := requireCHelper(t)
	for i := range 5 {
		o := startInTerm(t, 24, 80, sbxArgv(append(append([]string{"--log-denied"}, helperFlags()...), "--", chelper, "stopcont")...)...)
		// PID 1's exit kills the sleeping orphan: sbx ends with the payload.
		if code := o.wait(t, 20*time.Second); code != 0 || !strings.Contains(o.output(), "ok") {
			t.Fatalf("run %d: exit %d, want 0 and ok\n%s", i, code, o.output())
		}
	}
}
