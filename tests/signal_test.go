package tests

import (
	"bufio"
	"bytes"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestEarlySignal sends SIGINT to sbx while it is still setting the
// sandbox up: the signal must reach the payload once it runs (exit 130),
// not kill sbx's init and turn the run into a setup failure (125).
func TestEarlySignal(t *testing.T) {
	requireUserns(t)
	t.Parallel()
	for _, delay := range []time.Duration{3 * time.Millisecond, 5 * time.Millisecond, 8 * time.Millisecond, 12 * time.Millisecond} {
		t.Run(delay.String(), func(t *testing.T) {
			t.Parallel()
			s := startSbx(t, sbxCmd{args: []string{"run", "--", "sleep", "20"}})
			time.Sleep(delay)
			if err := syscall.Kill(s.cmd.Process.Pid, syscall.SIGINT); err != nil {
				t.Fatal(err)
			}
			code := s.wait(t, 10*time.Second)
			ws := s.cmd.ProcessState.Sys().(syscall.WaitStatus)
			switch {
			case code == 130:
			case ws.Signaled() && ws.Signal() == syscall.SIGINT:
				// Before sbx installed its handler: the default action,
				// as for any program. Nothing to check inside.
				t.Logf("SIGINT after %v arrived before sbx caught it", delay)
			default:
				t.Errorf("SIGINT %v after start: exit %d, stderr %q; want 130 (the payload interrupted)", delay, code, s.stderr)
			}
		})
	}
}

// TestIgnoredSignal starts sbx with SIGINT ignored, as a shell starts a
// background job: the payload starts with it ignored (as it would run
// directly), and a SIGINT to sbx, passed on, changes nothing for it.
func TestIgnoredSignal(t *testing.T) {
	requireUserns(t)
	t.Parallel()
	code, out, stderr := interruptIgnoring(t, "--", "/bin/sh", "-c", `kill -INT $$; echo survived; echo ready; sleep 0.5; echo done`)
	if code != 0 || !strings.Contains(out, "survived") || !strings.Contains(out, "done") {
		t.Errorf("with SIGINT ignored: exit %d, stdout %q, stderr %q; want the payload to ignore it too and finish", code, out, stderr)
	}
}

// A payload starts ignoring what its caller had sbx ignore, and one that
// handles such a signal (a script's background job: SIGINT) gets it when
// it is sent to sbx, as it would when sent to the command run directly.
func TestIgnoredSignalHandled(t *testing.T) {
	requireUserns(t)
	t.Parallel()
	chelper := requireCHelper(t)
	code, out, stderr := interruptIgnoring(t, append(helperFlags(), "--", chelper, "handle-int")...)
	if code != 7 || !strings.Contains(out, "ignored\n") || strings.Contains(out, "not-ignored") || !strings.Contains(out, "got-int") {
		t.Errorf("exit %d, stdout %q, stderr %q; want the payload to start with INT, QUIT and TERM ignored, then get SIGINT in its handler (exit 7)", code, out, stderr)
	}
}

// interruptIgnoring runs `sbx run ARGS` started with SIGINT, SIGQUIT
// and SIGTERM ignored (Go's runtime takes the last two over, whatever
// their disposition: sbx reads them before it starts),
// sends sbx a SIGINT once the payload says "ready", and returns how sbx
// ended and what it printed.
func interruptIgnoring(t *testing.T, argv ...string) (code int, stdout, stderr string) {
	t.Helper()
	cmd := exec.Command("/bin/sh", append([]string{"-c", `trap "" INT QUIT TERM; exec "$0" run "$@"`, sbxBin}, argv...)...)
	var errBuf bytes.Buffer
	cmd.Stderr = &errBuf
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	cmd.Stdout = pw
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	out := newLineReader(pr)
	if !out.waitFor("ready", 15*time.Second) {
		syscall.Kill(cmd.Process.Pid, syscall.SIGKILL)
		<-done
		t.Fatalf("payload never said ready; stdout %q stderr %q", out.all(), &errBuf)
	}
	if err := syscall.Kill(cmd.Process.Pid, syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		syscall.Kill(cmd.Process.Pid, syscall.SIGKILL)
		<-done
		t.Fatalf("sbx did not exit after SIGINT; stdout %q", out.all())
	}
	return cmd.ProcessState.ExitCode(), out.untilEOF(time.Second), errBuf.String()
}

// groupSbx starts sbx run in a process group of its own, as a shell
// starts a job, so that a signal can go to the group as the terminal's
// Ctrl-C sends it.
func groupSbx(t *testing.T, args ...string) (*exec.Cmd, *bytes.Buffer, *bytes.Buffer) {
	t.Helper()
	cmd, stdout, stderr := sbxCmd{args: args}.cmd()
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd, stdout, stderr
}

// TestEarlyGroupSignal sends SIGINT to sbx's process group while sbx is
// still setting the sandbox up, as Ctrl-C on the caller's terminal does:
// no stage of sbx (init, the id-map helpers) may die of it and turn the
// run into a setup failure (125). sbx itself holds it for the payload
// (130), or dies of it, as any program, if it came before sbx caught it.
func TestEarlyGroupSignal(t *testing.T) {
	requireUserns(t)
	t.Parallel()
	for i := range 30 {
		delay := time.Duration(i%15) * time.Millisecond
		cmd, _, stderr := groupSbx(t, "run", "--no-pty", "--", "sleep", "20")
		time.Sleep(delay)
		if err := syscall.Kill(-cmd.Process.Pid, syscall.SIGINT); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			syscall.Kill(cmd.Process.Pid, syscall.SIGKILL) // ours
			<-done
			t.Fatalf("SIGINT to the group %v after start: sbx still runs after 10 s", delay)
		}
		ws := cmd.ProcessState.Sys().(syscall.WaitStatus)
		if !(ws.Exited() && ws.ExitStatus() == 130) && !(ws.Signaled() && ws.Signal() == syscall.SIGINT) {
			t.Errorf("SIGINT to the group %v after start: %v, stderr %q; want exit 130 or death by SIGINT", delay, cmd.ProcessState, stderr)
		}
	}
}

// TestGroupSignalOnce sends one SIGINT to sbx's process group while the
// payload runs: the payload must get it once. (init was in sbx's group:
// it got the signal from the terminal and again from sbx, and passed on
// both when they did not merge.)
func TestGroupSignalOnce(t *testing.T) {
	requireUserns(t)
	t.Parallel()
	const runs = 20
	script := `n=0; trap 'n=$((n+1))' INT; echo ready; i=0; while [ $i -lt 10 ]; do sleep 0.05; i=$((i+1)); done; echo "got $n"`
	type got struct {
		out, errs string
		err       error
	}
	results := make(chan got, runs)
	for range runs {
		go func() {
			cmd, _, stderr := sbxCmd{args: []string{"run", "--no-pty", "--", "sh", "-c", script}}.cmd()
			cmd.Stdout = nil
			cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
			pipe, err := cmd.StdoutPipe()
			if err == nil {
				err = cmd.Start()
			}
			if err != nil {
				results <- got{err: err}
				return
			}
			out := bufio.NewReader(pipe)
			first, _ := out.ReadString('\n')
			syscall.Kill(-cmd.Process.Pid, syscall.SIGINT)
			rest, _ := io.ReadAll(out)
			err = cmd.Wait()
			results <- got{first + string(rest), stderr.String(), err}
		}()
	}
	for range runs {
		r := <-results
		if r.err != nil || !strings.Contains(r.out, "got 1\n") {
			t.Errorf("one SIGINT to sbx's group: want the payload to count 1\nstdout %q\nstderr %q\n%v", r.out, r.errs, r.err)
		}
	}
}

// TestEarlyGroupStop stops sbx's process group while sbx is still setting
// the sandbox up, and continues it, as Ctrl-Z and fg do: the run must end.
// (An id-map helper forked in that moment kept the pending SIGTSTP into a
// process group of its own, stopped there before its exec, and fg, which
// continues sbx's group, never continued it: sbx waited for ever.)
func TestEarlyGroupStop(t *testing.T) {
	requireUserns(t)
	t.Parallel()
	for i := range 60 {
		delay := time.Duration(i%8) * time.Millisecond
		cmd, _, stderr := groupSbx(t, "run", "--no-pty", "--", "true")
		time.Sleep(delay)
		syscall.Kill(-cmd.Process.Pid, syscall.SIGTSTP)
		time.Sleep(20 * time.Millisecond)
		syscall.Kill(-cmd.Process.Pid, syscall.SIGCONT)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("SIGTSTP and SIGCONT to the group %v after start: %v, stderr %q; want exit 0", delay, err, stderr)
			}
		case <-time.After(10 * time.Second):
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // ours: sbx's group
			<-done
			t.Fatalf("SIGTSTP and SIGCONT to the group %v after start: sbx still waits after 10 s", delay)
		}
	}
}
