package tests

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
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
	deadline := time.After(d)
	for {
		o.mu.Lock()
		has, more := strings.Contains(o.out.String(), want), o.more
		o.mu.Unlock()
		if has {
			return
		}
		select {
		case <-more:
		case <-o.done:
			time.Sleep(100 * time.Millisecond) // what the relay still had
			if !strings.Contains(o.output(), want) {
				t.Fatalf("exited (%v) before %q appeared; output %q", o.cmd.ProcessState, want, o.output())
			}
			return
		case <-deadline:
			t.Fatalf("no %q within %v; output %q", want, d, o.output())
		}
	}
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
		ptmx, pts := openPty(t)
		var outer unix.Stat_t
		err := unix.Fstat(int(pts.Fd()), &outer)
		pts.Close()
		ptmx.Close()
		if err != nil {
			t.Fatal(err)
		}
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
