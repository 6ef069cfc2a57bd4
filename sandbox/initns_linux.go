package sandbox

/*
#include "stage_linux.h"
*/
import "C"

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// execedMark is the packet init's constructor sends first: its exec is
// done, and its /proc files are the caller's (stage_linux.c).
const execedMark = C.SBX_EXECED

// waitExeced reads init's first packet on the control socket, which its
// constructor sends once init's exec is done: only then do init's /proc
// files belong to the caller, so that the id maps can be written. The
// end of the spawner's close-on-exec pipe comes earlier, before the
// kernel makes the new image dumpable again.
// The constructor sends it or exits; a minute bounds a wait for an init
// stopped or stuck in its exec, when sbx holds every signal but SIGKILL.
func waitExeced(c *conn) error {
	fds := []unix.PollFd{{Fd: int32(c.f.Fd()), Events: unix.POLLIN}}
	for {
		n, err := unix.Poll(fds, 60_000)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return fmt.Errorf("wait for init's exec: %w", err)
		}
		if n == 0 {
			return errors.New("wait for init's exec: no word from init in a minute")
		}
		break
	}
	var b [16]byte
	n, err := c.f.Read(b[:])
	switch {
	case err != nil:
		return fmt.Errorf("wait for init's exec: %w", err)
	case n == 0:
		return errors.New("wait for init's exec: init is gone")
	case string(b[:n]) != execedMark:
		return fmt.Errorf("wait for init's exec: unexpected packet %q", b[:n])
	}
	return nil
}

// initNamespaces is how init's namespaces came to be: the constructor in
// stage_linux.c unshared them before the Go runtime started. nil means
// they exist; init fails closed otherwise.
func initNamespaces() error {
	switch e := int(C.sbx_init_unshare_errno()); {
	case e == 0:
		return nil
	case e < 0:
		return errors.New("no constructor ran for init")
	default:
		return unix.Errno(e)
	}
}
