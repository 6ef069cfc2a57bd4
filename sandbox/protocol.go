package sandbox

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"

	"sbx/policy"
)

// Messages of the launcher ⇄ pid1 and pid1 ⇄ exec protocols, one JSON
// object per SOCK_SEQPACKET packet, named for their sender and event.
//
//	launcher → init   msgMapped     the id maps are written: go on
//	launcher → init   msgExecConn   a connection of sbx exec (SCM_RIGHTS; exec_linux.go)
//	init → launcher   msgPTY        a new pseudo-terminal's master (SCM_RIGHTS; pty_linux.go)
//	launcher → init   msgPTYReady   its settings and size are the caller's: start
//	init → launcher   msgStarted    the payload runs: signals can go to it
//	init → launcher   msgStopped    the payload stopped (Signal; with a pseudo-
//	                                terminal only): the launcher stops as a job
//	init → launcher   msgError      setup failed (a StageError)
//	init → launcher   msgExecFailed the payload could not be executed
//	init → launcher   msgExited     the payload ended (code or signal)
//	init → launcher   msgDenied     the filter refused a call, or killed a
//	                                process init reaped (--log-denied)
//
// EOF from the launcher tells init that sbx is gone: it exits, and the
// kernel kills everything in its pid namespace.
const (
	msgMapped     = "mapped"
	msgStarted    = "started"
	msgError      = "error"
	msgExecFailed = "exec-failed"
	msgExited     = "exited"
	msgDenied     = "denied"
	msgStopped    = "stopped"
)

type message struct {
	Type     string      `json:"type"`
	Text     string      `json:"text,omitempty"`
	Error    *StageError `json:"error,omitempty"`
	ExitCode int         `json:"exit_code,omitempty"`
	Signal   int         `json:"signal,omitempty"`
	Core     bool        `json:"core,omitempty"`
	// sbx exec's request (exec_linux.go), and the pid it got.
	Argv []string `json:"argv,omitempty"`
	Env  []string `json:"env,omitempty"`
	Cwd  string   `json:"cwd,omitempty"`
	PID  int      `json:"pid,omitempty"`
	// PTY asks for a pseudo-terminal of the sandbox's (as plan.PTY).
	PTY *policy.PTY `json:"pty,omitempty"`
}

const maxPacket = 1 << 20

// conn is one end of a SOCK_SEQPACKET socket pair. One goroutine at a
// time receives on it.
type conn struct {
	f   *os.File
	buf []byte // for receiving: maxPacket bytes, made once
}

// rbuf is the receive buffer. A packet longer than it would be cut, so
// it is as long as the longest packet; allocated for each packet, it
// made the launcher collect garbage on the start path.
func (c *conn) rbuf() []byte {
	if c.buf == nil {
		c.buf = make([]byte, maxPacket)
	}
	return c.buf
}

func socketPair() (a, b *conn, err error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("socketpair: %w", err)
	}
	return &conn{f: os.NewFile(uintptr(fds[0]), "sbx-ctl")}, &conn{f: os.NewFile(uintptr(fds[1]), "sbx-ctl")}, nil
}

func (c *conn) send(m message) error {
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	if len(b) > maxPacket {
		return fmt.Errorf("message %s too large (%d bytes)", m.Type, len(b))
	}
	_, err = c.f.Write(b)
	return err
}

// WarmUp has encoding/json build its coders for the plan, the control
// messages and the record, which takes about a millisecond of CPU on
// first use: sbx run calls it as it starts, on a CPU that is idle until
// init is cloned, and the launcher encodes them later, while the id-map
// helpers and init's start compete for both CPUs.
func WarmUp() {
	json.Marshal(&policy.Plan{})
	json.Marshal(message{})
	json.Marshal(policy.State{})
}

// errClosed is returned by recv when the peer has gone.
var errClosed = errors.New("peer closed the control socket")

func (c *conn) recv() (message, error) {
	buf := c.rbuf()
	n, err := c.f.Read(buf)
	if errors.Is(err, io.EOF) || (err == nil && n == 0) {
		return message{}, errClosed
	}
	if err != nil {
		return message{}, err
	}
	var m message
	if err := json.Unmarshal(buf[:n], &m); err != nil {
		return message{}, fmt.Errorf("bad control message: %w", err)
	}
	return m, nil
}

func (c *conn) close() error { return c.f.Close() }
