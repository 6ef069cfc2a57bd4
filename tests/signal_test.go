package tests

import (
	"bytes"
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
// background job: sbx must not un-ignore it, neither for itself (a
// SIGINT to sbx changes nothing) nor for the payload (which inherits the
// disposition, as it would run directly).
func TestIgnoredSignal(t *testing.T) {
	requireUserns(t)
	t.Parallel()
	script := `trap "" INT; exec "$0" run -- /bin/sh -c 'kill -INT $$; echo survived; echo ready; sleep 0.5; echo done'`
	cmd := exec.Command("/bin/sh", "-c", script, sbxBin)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
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
	stdout := newLineReader(pr)
	if !stdout.waitFor("ready", 15*time.Second) {
		syscall.Kill(cmd.Process.Pid, syscall.SIGKILL)
		<-done
		t.Fatalf("payload never said ready; stdout %q stderr %q", stdout.all(), &stderr)
	}
	if err := syscall.Kill(cmd.Process.Pid, syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		syscall.Kill(cmd.Process.Pid, syscall.SIGKILL)
		<-done
		t.Fatal("sbx did not exit")
	}
	out := stdout.untilEOF(time.Second)
	if code := cmd.ProcessState.ExitCode(); code != 0 || !strings.Contains(out, "survived") || !strings.Contains(out, "done") {
		t.Errorf("with SIGINT ignored: exit %d, stdout %q, stderr %q; want the payload to ignore it too and finish", code, out, &stderr)
	}
}
