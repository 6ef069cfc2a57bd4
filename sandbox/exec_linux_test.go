package sandbox

import (
	"os/exec"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The reaper tells sigsys of a child that SIGSYS killed, once, while its
// name can still be read, and of no other; the payload's status is
// returned as before.
func TestReaperSigsys(t *testing.T) {
	if unsafe.Sizeof(sigchld{}) != unsafe.Sizeof(unix.Siginfo{}) {
		t.Fatalf("sigchld is %d bytes, siginfo_t %d", unsafe.Sizeof(sigchld{}), unsafe.Sizeof(unix.Siginfo{}))
	}
	other := exec.Command("/bin/sh", "-c", "exit 3")
	killed := exec.Command("/bin/sh", "-c", "sleep 0.2; kill -SYS $$")
	for _, c := range []*exec.Cmd{other, killed} {
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
	}
	var told []int
	var name string
	r := reaper{sigsys: func(pid int) { told, name = append(told, pid), procName(pid) }}
	ws := r.wait(killed.Process.Pid, nil)
	if !ws.Signaled() || ws.Signal() != unix.SIGSYS {
		t.Errorf("status %#x, want killed by SIGSYS", ws)
	}
	if len(told) != 1 || told[0] != killed.Process.Pid || name != "sh" {
		t.Errorf("sigsys told of %v (named %q), want only %d (sh)", told, name, killed.Process.Pid)
	}
	if _, err := unix.Wait4(-1, nil, unix.WNOHANG, nil); err != unix.ECHILD {
		t.Errorf("a child was left unreaped: %v", err)
	}
}
