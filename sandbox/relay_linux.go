package sandbox

/*
#include "relay_linux.h"
*/
import "C"

import (
	"fmt"
	"os"
	"runtime"

	"golang.org/x/sys/unix"
)

// relay is a pipe that sbx's own signal handler writes signal numbers to
// (relay_linux.c). It lives as long as the process: the handler may write
// to it at any time.
var relay struct {
	r, w *os.File
}

// relaySignals delivers sigs to c from now on, as signal.Notify would,
// at the cost of a handful of system calls: os/signal installs Go's
// handler for each with a round trip with a thread of its own (half a
// millisecond for the signals sbx forwards, on the start path of the
// launcher and of init, whose reaping of a short payload waited for it).
// The handler is C's, with SA_ONSTACK as Go requires. exec resets it in
// every child, and so does the C spawner before its exec (init, the
// id-map helpers, the payload). Go's runtime resets it in the children
// of syscall.StartProcess (init, when it is cloned into a cgroup) too,
// but for SIGCONT, which Go does not take over at start: one sent to
// such a child between its fork and its exec would be written to the
// pipe, a spurious SIGCONT to forward, which does nothing to a running
// payload. Signals beyond the pipe's buffer are dropped, as os/signal
// drops those beyond a channel's. Not for the signals Go itself needs
// (SIGPIPE on standard output, the synchronous faults): those stay with
// os/signal. Called once per process.
func relaySignals(sigs []os.Signal, c chan<- os.Signal) error {
	if len(sigs) == 0 {
		return nil
	}
	r, w, err := os.Pipe() // close-on-exec, both non-blocking
	if err != nil {
		return fmt.Errorf("signal pipe: %w", err)
	}
	relay.r, relay.w = r, w
	wfd := -1
	rc, err := w.SyscallConn() // not w.Fd(): it would make the pipe blocking
	if err == nil {
		err = rc.Control(func(fd uintptr) { wfd = int(fd) })
	}
	if err != nil {
		return fmt.Errorf("signal pipe: %w", err)
	}
	nums := make([]C.int, len(sigs))
	for i, s := range sigs {
		nums[i] = C.int(s.(unix.Signal))
	}
	if e := int(C.sbx_relay_signals(C.int(wfd), &nums[0], C.int(len(nums)))); e < 0 {
		return fmt.Errorf("install signal handlers: %w", unix.Errno(-e))
	}
	go func() {
		buf := make([]byte, 64)
		for {
			n, err := r.Read(buf)
			if err != nil {
				return
			}
			for _, b := range buf[:n] {
				c <- unix.Signal(b)
			}
		}
	}()
	return nil
}

// DieBy ends sbx by signal sig, as the payload ended: a wrapped command
// must look to its caller as the original would, and a shell stops a
// script only for a child that died by SIGINT, not for one that exited
// 130. The launcher is not dumpable, so no core is written. It returns
// only for a signal whose default action does not end a process.
func DieBy(sig int) {
	runtime.LockOSThread() // raise(3) signals this thread
	C.sbx_die_by(C.int(sig))
	runtime.UnlockOSThread()
}
