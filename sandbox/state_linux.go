package sandbox

// The record of a running sandbox, for sbx ps, stop and exec:
//
//	STATEROOT/sbx/run/ID/     0700, the launcher's while it runs (StateRoot)
//	  state.json   policy.State; the launcher holds an exclusive flock
//	               on it until it exits, so a record whose lock is free
//	               is a leftover (sbx was SIGKILLed) and is removed
//	  exec.sock    SOCK_SEQPACKET, served by the launcher, which passes
//	               each client to the sandbox's PID 1 (exec_linux.go);
//	               the 0700 directories keep everyone but the user out,
//	               and every view hides the tree
//
// A record is acted on only once its exec.sock proves to be served by
// the sbx run it names (verifyRecord): sandboxes have no process in the
// host's namespaces to forge that with.
//
// The record is written once the payload runs and removed when the
// launcher returns. Without a runtime directory a sandbox runs
// untracked.

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"sbx/policy"
)

const (
	stateFile  = "state.json"
	execSocket = "exec.sock"
)

// record is the launcher's side of a sandbox's record.
type record struct {
	id, dir  string
	listener *os.File     // exec.sock's listening socket
	ln       net.Listener // the same, accepting (serveExec)
	lock     *os.File     // state.json, flocked, once published
}

// newRecord makes the sandbox's directory and its exec socket in
// stateDir, which mkdirPrivate made.
func newRecord(stateDir string) (*record, error) {
	b := make([]byte, 6)
	rand.Read(b)
	r := &record{id: hex.EncodeToString(b)}
	r.dir = filepath.Join(stateDir, r.id)
	if err := os.Mkdir(r.dir, 0o700); err != nil {
		return nil, err
	}
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		r.remove()
		return nil, err
	}
	r.listener = os.NewFile(uintptr(fd), execSocket)
	if err := unix.Bind(fd, &unix.SockaddrUnix{Name: filepath.Join(r.dir, execSocket)}); err != nil {
		r.remove()
		return nil, fmt.Errorf("bind %s: %w", execSocket, err)
	}
	if err := unix.Listen(fd, 16); err != nil {
		r.remove()
		return nil, err
	}
	return r, nil
}

// StateRoot is where this user's sandboxes are recorded (under
// sbx/run): $XDG_RUNTIME_DIR when it is the caller's; else
// /run/user/UID (su and sudo keep or drop the variable, the directory
// of a logged-in user is there); else /tmp/sbx-UID, 0700, as podman
// does, made by the first run that records itself (not by a dry run or
// a refused command line). "" when none is the caller's alone.
func StateRoot() string {
	if d := os.Getenv("XDG_RUNTIME_DIR"); filepath.IsAbs(d) && ownDir(d) {
		return filepath.Clean(d)
	}
	if d := fmt.Sprintf("%s/%d", runUserBase, os.Getuid()); ownDir(d) {
		return d
	}
	d := tmpStateRoot()
	if err := privateDir(d); err == nil || errors.Is(err, fs.ErrNotExist) {
		return d
	}
	return ""
}

// tmpStateRoot is the state root when the caller has no runtime
// directory.
func tmpStateRoot() string { return fmt.Sprintf("%s/sbx-%d", tmpBase, os.Getuid()) }

// Where StateRoot looks; tests move them.
var runUserBase, tmpBase = "/run/user", "/tmp"

// ownDir says dir is a directory of the caller's: a runtime directory
// that is not (su keeps the other user's $XDG_RUNTIME_DIR) or is gone
// leaves the sandbox unrecorded, without a word at each run.
func ownDir(dir string) bool {
	var st unix.Stat_t
	return unix.Stat(dir, &st) == nil && st.Mode&unix.S_IFMT == unix.S_IFDIR && st.Uid == uint32(os.Getuid())
}

// mkdirPrivate makes dir and its parent below the runtime directory
// (…/sbx/run), each 0700 and the caller's; below /tmp, the state root
// too.
func mkdirPrivate(dir string) error {
	dirs := []string{filepath.Dir(dir), dir}
	if root := filepath.Dir(dirs[0]); root == tmpStateRoot() {
		dirs = append([]string{root}, dirs...)
	}
	for _, d := range dirs {
		if err := os.Mkdir(d, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
			return err
		}
		if err := privateDir(d); err != nil {
			return err
		}
	}
	return nil
}

// privateDir says whether d is a directory (not a link to one) of the
// caller's with mode 0700.
func privateDir(d string) error {
	var st unix.Stat_t
	if err := unix.Lstat(d, &st); err != nil {
		return &fs.PathError{Op: "lstat", Path: d, Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR || st.Uid != uint32(os.Getuid()) || st.Mode&0o077 != 0 {
		return fmt.Errorf("%s is not a directory of yours with mode 0700", d)
	}
	return nil
}

// publish writes state.json, locked: from now on sbx ps lists it. The
// lock is taken before the file has its name, so no one sees it unlocked.
func (r *record) publish(st policy.State) error {
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	tmp := filepath.Join(r.dir, stateFile+".tmp")
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := os.Rename(tmp, filepath.Join(r.dir, stateFile)); err != nil {
		f.Close()
		return err
	}
	r.lock = f
	return nil
}

// serveExec accepts sbx exec's clients on exec.sock and passes each to
// init (msgExecConn). Only processes of this user in this process's
// user and mount namespaces are taken: a sandbox that reached the socket
// (a bind that shows it, a runtime directory it renamed) is turned away.
func (r *record) serveExec(ctl *conn) {
	ln, err := net.FileListener(r.listener)
	r.listener.Close()
	r.listener = nil
	if err != nil {
		return
	}
	r.ln = ln
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return // closed by remove
			}
			go func() {
				defer c.Close()
				f, err := c.(*net.UnixConn).File()
				if err != nil {
					return
				}
				defer f.Close()
				cred, err := unix.GetsockoptUcred(int(f.Fd()), unix.SOL_SOCKET, unix.SO_PEERCRED)
				if err != nil || cred.Uid != uint32(os.Getuid()) || sameNamespaces(int(cred.Pid)) != nil {
					return
				}
				unix.SetNonblock(int(f.Fd()), false)
				ctl.sendFD(message{Type: msgExecConn}, int(f.Fd()))
			}()
		}
	}()
}

// remove takes the record away; the lock goes last.
func (r *record) remove() {
	if r.ln != nil {
		r.ln.Close()
	}
	if r.listener != nil {
		r.listener.Close()
	}
	os.RemoveAll(r.dir)
	if r.lock != nil {
		r.lock.Close()
	}
}

// States lists the sandboxes recorded under stateDir that are running,
// and removes the records of those that are not.
func States(stateDir string) ([]policy.State, error) {
	return records(stateDir, true)
}

// sweep removes the records of sandboxes that are not running.
func sweep(stateDir string) { records(stateDir, false) }

// records reads stateDir: it removes the records no sbx run holds any
// more, and returns those that are held (and, with verify, proven).
// What is not a record (a file, a directory without a readable
// state.json, a state.json that is not one) is passed over: one bad
// entry must not keep sbx ps, exec and stop from the others. Only a
// directory named as sbx names records, that no process holds, is
// removed.
func records(stateDir string, verify bool) ([]policy.State, error) {
	if stateDir == "" {
		return nil, errors.New("no directory of yours to record sandboxes in ($XDG_RUNTIME_DIR, /run/user/UID or /tmp/sbx-UID)")
	}
	// The directories sbx run makes (0700, the caller's, no links): any
	// other, a link planted there, say, is read and swept by no one.
	for _, d := range []string{filepath.Dir(stateDir), stateDir} {
		if err := privateDir(d); errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		} else if err != nil {
			return nil, err
		}
	}
	entries, err := os.ReadDir(stateDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []policy.State
	for _, e := range entries {
		if !e.IsDir() {
			continue // sbx makes only directories here (a symlink is none)
		}
		dir := filepath.Join(stateDir, e.Name())
		st, held, err := readState(dir)
		ours := isRecordID(e.Name())
		switch {
		case errors.Is(err, os.ErrNotExist):
			// Being made (no state.json yet) or being removed.
			if fi, err := os.Stat(dir); ours && err == nil && time.Since(fi.ModTime()) > time.Minute {
				os.RemoveAll(dir) // a launcher killed before it published
			}
		case held && err == nil && st.ID == e.Name():
			if !verify {
				out = append(out, st)
			} else if c, err := verifyRecord(stateDir, st); err == nil {
				c.close()
				out = append(out, st)
			}
		case !held && ours && !errors.Is(err, errUnreadable):
			// No sbx run holds it: the record of one killed (or a
			// state.json that is none, which no sbx run would hold).
			os.RemoveAll(dir)
		}
		// A record locked by something that is no sbx run of this
		// user's (a sandbox that renamed the runtime directory and
		// planted one, say) is neither listed nor touched.
	}
	return out, nil
}

// errUnreadable: a state.json that cannot be opened or locked, which
// says nothing of whether a process holds it.
var errUnreadable = errors.New("unreadable")

// isRecordID says whether name is as newRecord names records.
func isRecordID(name string) bool {
	if len(name) != 12 {
		return false
	}
	_, err := hex.DecodeString(name)
	return err == nil && strings.ToLower(name) == name
}

// readState reads one record and whether a process (its launcher)
// holds its lock. A state.json that does not decode is an error, with
// held still said.
func readState(dir string) (st policy.State, held bool, err error) {
	f, err := os.Open(filepath.Join(dir, stateFile))
	if errors.Is(err, os.ErrNotExist) {
		return st, false, err
	}
	if err != nil {
		return st, false, fmt.Errorf("%w: %w", errUnreadable, err)
	}
	defer f.Close()
	switch err := unix.Flock(int(f.Fd()), unix.LOCK_SH|unix.LOCK_NB); {
	case errors.Is(err, unix.EWOULDBLOCK):
		held = true
	case err != nil:
		return st, false, fmt.Errorf("%w: flock %s: %w", errUnreadable, f.Name(), err)
	}
	if err := json.NewDecoder(f).Decode(&st); err != nil {
		return st, held, fmt.Errorf("%s: %w", f.Name(), err)
	}
	return st, held, nil
}

// sameNamespaces checks that pid is a process of this user at this
// process's depth of pid namespaces, and, where its namespace links can
// be read (sbx run makes itself non-dumpable, so its cannot), in the same
// user and mount namespaces. Every sandbox has a pid namespace of its
// own: none of its processes passes.
func sameNamespaces(pid int) error {
	if pid <= 0 {
		return fmt.Errorf("no pid")
	}
	mine, err := procStatusOf("self")
	if err != nil {
		return err
	}
	theirs, err := procStatusOf(strconv.Itoa(pid))
	if err != nil {
		return fmt.Errorf("pid %d: %w", pid, err)
	}
	if len(strings.Fields(theirs["NSpid"])) != len(strings.Fields(mine["NSpid"])) || mine["NSpid"] == "" {
		return fmt.Errorf("pid %d is in another pid namespace", pid)
	}
	if uid := strings.Fields(theirs["Uid"]); len(uid) < 2 || uid[1] != strconv.Itoa(os.Geteuid()) {
		return fmt.Errorf("pid %d is not yours", pid)
	}
	for _, ns := range []string{"user", "mnt"} {
		theirs, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/%s", pid, ns))
		if err != nil {
			continue // not dumpable: the pid namespace's depth decides
		}
		if mine, err := os.Readlink("/proc/self/ns/" + ns); err != nil || theirs != mine {
			return fmt.Errorf("pid %d is in another %s namespace", pid, ns)
		}
	}
	return nil
}

// procStatusOf reads /proc/PID/status as a map.
func procStatusOf(pid string) (map[string]string, error) {
	b, err := os.ReadFile("/proc/" + pid + "/status")
	if err != nil {
		return nil, err
	}
	m := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok {
			m[k] = strings.TrimSpace(v)
		}
	}
	return m, nil
}

// verifyRecord checks that a record is what sbx run wrote: its exec.sock
// is served by its sbx run (st.PID), a process of this user in this
// process's namespaces. A sandbox that can write where the records are
// (a --rw grant above $XDG_RUNTIME_DIR) can plant a record and serve a
// socket, but not from a process of the host's namespaces. On success
// it returns the connection, for sbx exec.
func verifyRecord(stateDir string, st policy.State) (*conn, error) {
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	c := &conn{f: os.NewFile(uintptr(fd), "sbx-exec")}
	if err := unix.Connect(fd, &unix.SockaddrUnix{Name: filepath.Join(stateDir, st.ID, execSocket)}); err != nil {
		c.close()
		return nil, fmt.Errorf("sandbox %s: connect: %w", st.ID, err)
	}
	cred, err := unix.GetsockoptUcred(fd, unix.SOL_SOCKET, unix.SO_PEERCRED)
	if err == nil && (int(cred.Pid) != st.PID || cred.Uid != uint32(os.Getuid())) {
		err = fmt.Errorf("its exec.sock is served by pid %d, not by its sbx run (pid %d)", cred.Pid, st.PID)
	}
	if err == nil {
		err = sameNamespaces(st.PID)
	}
	if err != nil {
		c.close()
		return nil, fmt.Errorf("sandbox %s: not an sbx run of yours: %w", st.ID, err)
	}
	return c, nil
}

// Usage reads what a sandbox's cgroup says it uses now.
func Usage(st policy.State) policy.Usage {
	var u policy.Usage
	if st.Cgroup == "" {
		return u
	}
	read := func(name string) (uint64, bool) {
		b, err := os.ReadFile(filepath.Join(st.Cgroup, name))
		if err != nil {
			return 0, false
		}
		v, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
		return v, err == nil
	}
	mem, ok1 := read("memory.current")
	pids, ok2 := read("pids.current")
	u.Memory, u.Pids, u.Known = mem, pids, ok1 || ok2
	if b, err := os.ReadFile(filepath.Join(st.Cgroup, "cpu.stat")); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "usage_usec "); ok {
				u.CPUUsec, _ = strconv.ParseUint(v, 10, 64)
			}
		}
	}
	return u
}

// Stop ends a sandbox as kill(1) would: SIGTERM to its sbx run, which
// passes it to the payload; then, if the sandbox is still there after
// grace, SIGKILL to its PID 1, which ends everything in it, and sbx run
// reports 137 and cleans up as for any end. Only if sbx run itself does
// not end then (it is stopped, say) is it killed too. Stop returns once
// the record is released.
func Stop(stateDir string, st policy.State, grace time.Duration) error {
	gone := fmt.Errorf("sandbox %s: already gone", st.ID)
	f, err := os.Open(filepath.Join(stateDir, st.ID, stateFile))
	if err != nil {
		return gone
	}
	defer f.Close()
	// The pids are checked against the lock once pidfds pin them: a
	// pid that was reused since is not signalled.
	run, err := unix.PidfdOpen(st.PID, 0)
	if err != nil {
		return gone
	}
	defer unix.Close(run)
	init := -1
	if st.InitPID > 0 {
		if init, err = unix.PidfdOpen(st.InitPID, 0); err == nil {
			defer func() {
				if init >= 0 {
					unix.Close(init)
				}
			}()
		} else {
			init = -1
		}
	}
	if !locked(f) {
		return gone
	}
	c, err := verifyRecord(stateDir, st)
	if err != nil {
		return err
	}
	c.close()
	if init >= 0 && parentOf(st.InitPID) != st.PID {
		unix.Close(init)
		init = -1
	}
	if err := unix.PidfdSendSignal(run, unix.SIGTERM, nil, 0); err != nil {
		return fmt.Errorf("sandbox %s: %w", st.ID, err)
	}
	if waitUnlocked(f, grace) {
		return nil
	}
	if init >= 0 {
		unix.PidfdSendSignal(init, unix.SIGKILL, nil, 0)
		if waitUnlocked(f, 5*time.Second) {
			return nil
		}
	}
	unix.PidfdSendSignal(run, unix.SIGKILL, nil, 0)
	if waitUnlocked(f, 5*time.Second) {
		return nil
	}
	return fmt.Errorf("sandbox %s: still running after SIGKILL", st.ID)
}

// parentOf is pid's parent, 0 when it cannot be read.
func parentOf(pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// "pid (comm) state ppid ...": comm may hold anything but ")".
	rest := string(b[strings.LastIndexByte(string(b), ')')+1:])
	f := strings.Fields(rest)
	if len(f) < 2 {
		return 0
	}
	ppid, _ := strconv.Atoi(f[1])
	return ppid
}

func locked(f *os.File) bool {
	err := unix.Flock(int(f.Fd()), unix.LOCK_SH|unix.LOCK_NB)
	if err == nil {
		unix.Flock(int(f.Fd()), unix.LOCK_UN)
	}
	return errors.Is(err, unix.EWOULDBLOCK)
}

// waitUnlocked waits until no one holds f's lock, at most d.
func waitUnlocked(f *os.File, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for {
		if !locked(f) {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Exec runs argv in the running sandbox st (see exec_linux.go) with this
// process's stdin, stdout and stderr, passes on the signals sbx run
// would, and returns how the command ended. env adds to the payload's
// environment; cwd "" is the payload's working directory. When stdin is
// a terminal (and not noPTY), the command gets a pseudo-terminal of the
// sandbox's that this process relays, as sbx run does.
func Exec(stateDir string, st policy.State, argv, env []string, cwd string, noPTY bool) (*Outcome, error) {
	// This process's stdio go only to the sbx run of the record.
	c, err := verifyRecord(stateDir, st)
	if err != nil {
		return nil, err
	}
	defer c.close()
	fd := int(c.f.Fd())
	req := message{Type: msgExec, Argv: argv, Env: env, Cwd: cwd}
	var tty *terminal
	stdio := []int{0, 1, 2}
	if t := probeTerminal(); (t.Stdin || t.Stdout || t.Stderr) && !noPTY {
		req.PTY = &policy.PTY{Stdin: t.Stdin, Stdout: t.Stdout, Stderr: t.Stderr}
		if tty, err = newTerminal(req.PTY); err != nil {
			return nil, err
		}
		defer tty.close() // after c.close: the caller's settings come back first
		// The sandbox gets /dev/null where the caller's terminal was.
		for i, on := range []bool{t.Stdin, t.Stdout, t.Stderr} {
			if on {
				stdio[i] = int(tty.null.Fd())
			}
		}
	}
	b, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	if err := unix.Sendmsg(fd, b, unix.UnixRights(stdio...), nil, 0); err != nil {
		return nil, fmt.Errorf("sandbox %s: send the request: %w", st.ID, err)
	}
	// As sbx run's launcher does (relaySignals; sbx exits once Exec
	// returns).
	sigc := make(chan os.Signal, 16)
	if err := relaySignals(caught(), sigc); err != nil {
		return nil, err
	}
	// A closed stderr must not kill this process before the caller's
	// terminal is restored (Go dies of SIGPIPE on fds 1 and 2 unless
	// it is caught; caught, it is reset at exec, not ignored).
	signal.Notify(make(chan os.Signal, 1), unix.SIGPIPE)
	msgs := c.packets()
	started := false
	var pending []unix.Signal
	finish := func(out *Outcome, err error) (*Outcome, error) {
		if tty != nil {
			tty.drain()
		}
		return out, err
	}
	for {
		select {
		case s := <-sigc:
			sig := s.(unix.Signal)
			if !tty.signal(sig) {
				continue
			}
			if !started {
				pending = append(pending, sig)
				continue
			}
			c.send(message{Type: msgSignal, Signal: int(sig)})
		case m, ok := <-msgs:
			switch {
			case !ok && started:
				// The sandbox ended under the command.
				return finish(&Outcome{Signal: int(unix.SIGKILL), SignalName: "SIGKILL", ExitCode: 128 + int(unix.SIGKILL)}, nil)
			case !ok:
				return finish(nil, fmt.Errorf("sandbox %s: it ended, or refused the request", st.ID))
			}
			switch m.Type {
			case msgPTY:
				if err := tty.take(c, m); err != nil {
					return finish(nil, err)
				}
			case msgExecStarted:
				started = true
				for _, sig := range pending {
					c.send(message{Type: msgSignal, Signal: int(sig)})
				}
				pending = nil
			case msgExecFailed:
				return finish(nil, &ExecError{Code: m.ExitCode, Err: m.Text})
			case msgError:
				if m.Error != nil {
					return finish(nil, m.Error)
				}
				return finish(nil, errors.New("exec: failed"))
			case msgExited:
				out := &Outcome{ExitCode: m.ExitCode, Signal: m.Signal, Core: m.Core}
				if out.Signal != 0 {
					out.SignalName = unix.SignalName(unix.Signal(out.Signal))
					out.ExitCode = 128 + out.Signal
				}
				return finish(out, nil)
			}
		}
	}
}
