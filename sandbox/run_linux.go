package sandbox

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"sbx/cgroup"
	"sbx/policy"
	"sbx/userns"
)

// Outcome is how a sandbox run ended.
type Outcome struct {
	ExitCode   int           `json:"exit_code"`
	Signal     int           `json:"signal"`
	SignalName string        `json:"signal_name"`
	Core       bool          `json:"core_dumped,omitempty"`
	TimedOut   bool          `json:"timed_out"`
	Wall       time.Duration `json:"-"`
	// MaxRSS is the peak resident set of sbx's own processes (the
	// launcher's children that are not the payload), in KiB.
	MaxRSS int64 `json:"-"`
	// Cgroup is what the sandbox's cgroup reported, when it had one.
	Cgroup *cgroup.Stats `json:"-"`
}

// Hints for the errors a host typically causes.
const (
	hintUserns = "unprivileged user namespaces are off on this host: sysctl user.max_user_namespaces=15000 (Debian: kernel.unprivileged_userns_clone=1; Ubuntu: kernel.apparmor_restrict_unprivileged_userns=0)"
	hintSubIDs = "check the caller's ranges in /etc/subuid and /etc/subgid, and that newuidmap/newgidmap are setuid root (apt-get install uidmap)"
)

// HintedError carries a one-line hint for the user.
type HintedError struct {
	Err  error
	Hint string
}

func (e *HintedError) Error() string { return e.Err.Error() }
func (e *HintedError) Unwrap() error { return e.Err }

// Run executes the plan: it starts the sandbox, relays signals, enforces
// the timeout and returns how the payload ended; warn prints a line for
// the user. An error means sbx failed (exit 125), or, as an *ExecError, that
// the payload could not be executed.
func Run(p *policy.Plan, warn func(string)) (*Outcome, error) {
	start := time.Now()
	// No collection on the start path, where it would only cost time;
	// once the payload runs, the relay of a long session allocates as it
	// goes, and collection is back (msgStarted). The limit bounds a
	// start that never gets there.
	debug.SetGCPercent(-1)
	debug.SetMemoryLimit(64 << 20)
	// Signals are caught from now on, so that none is lost before the
	// payload exists; they are forwarded once pid1 is running.
	sigc := make(chan os.Signal, 16)
	if err := relaySignals(forwarded, sigc); err != nil {
		return nil, fmt.Errorf("launcher: %w", err)
	}
	// A closed stderr (sbx run ... 2>&1 | head) must not kill sbx before
	// the caller's terminal is restored: Go dies of SIGPIPE on fds 1 and
	// 2 unless os/signal catches it. Caught, not ignored: init and the
	// payload start with it at its default again. os/signal's set-up
	// costs a thread of its own and a round trip with it: it runs beside
	// the start, and is done before the terminal can be made raw.
	notified := make(chan struct{})
	go func() {
		signal.Notify(make(chan os.Signal, 1), unix.SIGPIPE)
		close(notified)
	}()
	// The filter is compiled before anything starts: a profile that
	// does not compile is an error of the command line.
	flt, err := buildFilter(p.Security.Seccomp)
	if err != nil {
		return nil, fmt.Errorf("launcher: seccomp: %w", err)
	}
	// The record for sbx ps, stop and exec: a convenience, so a failure
	// is a warning, never a reason not to run. It is made beside the
	// start, and needed once the payload runs.
	var rec *record
	recc := make(chan *record, 1)
	var recGone chan struct{} // the record is being removed
	// The records' directory is made before init builds the view: a view
	// that shows the runtime directory masks sbx/ in it only where it is
	// there (a mask of nothing is skipped), and on a first run it would be
	// made a moment later, in sight.
	var noRecord error
	if p.StateDir != "" {
		noRecord = mkdirPrivate(p.StateDir)
	}
	if p.StateDir != "" && noRecord == nil {
		go func() {
			r, err := newRecord(p.StateDir)
			if err != nil {
				warn("this sandbox is not recorded for sbx ps, stop and exec: " + err.Error())
				r = nil
			}
			recc <- r
			// Records of sandboxes whose sbx was SIGKILLed go now,
			// off the start path.
			sweep(p.StateDir)
		}()
	} else {
		if noRecord != nil {
			warn("this sandbox is not recorded for sbx ps, stop and exec: " + noRecord.Error())
		}
		recc <- nil
	}
	defer func() {
		if recc != nil {
			rec = <-recc
		}
		switch {
		case recGone != nil:
			<-recGone
		case rec != nil:
			rec.remove()
		}
	}()
	if err := closeInherited(p.KeepFDs); err != nil {
		return nil, fmt.Errorf("launcher: close inherited descriptors: %w", err)
	}
	if err := unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0); err != nil {
		return nil, fmt.Errorf("launcher: set non-dumpable: %w", err)
	}
	ours, theirs, err := socketPair()
	if err != nil {
		return nil, fmt.Errorf("launcher: %w", err)
	}
	defer ours.close()
	var tty *terminal
	if p.PTY != nil {
		if tty, err = newTerminal(p.PTY); err != nil {
			return nil, err
		}
		// Deferred after ours.close, so it runs first: the output is
		// drained and the caller's settings are back before Run returns.
		defer tty.close()
	}

	// init is cloned into new user and pid namespaces; its constructor
	// unshares the others after its exec (stage_linux.c), while this
	// process runs the id-map helpers (creating a network namespace alone
	// takes about a millisecond).
	unshare := initUnshare(p)
	var cg *cgroupRun
	if p.Cgroup != nil {
		// Before any namespace exists: init is cloned straight into
		// the sandbox leaf, and its cgroup namespace is rooted there.
		if cg, err = startCgroup(p, warn); err != nil {
			return nil, err
		}
		defer cg.close()
	}
	// The plan travels in a pipe (a socket packet would cap it at the
	// socket buffer: argv and environment can be megabytes), encoded and
	// written once init is cloned: encoding/json's first use takes about
	// half a millisecond, which then overlaps the id-map helpers.
	planFile, planW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("launcher: plan pipe: %w", err)
	}
	defer planFile.Close()
	defer planW.Close()
	fltFile, err := sealedFile("sbx-filter", flt.encode())
	if err != nil {
		return nil, fmt.Errorf("launcher: %w", err)
	}
	defer fltFile.Close()
	files, fd := stageFiles(p.KeepFDs, theirs.f, planFile, fltFile)
	if tty != nil {
		tty.hide(files)
	}
	// init is cloned with every capability in its ambient set: its exec
	// happens before the launcher has written the id maps, and an exec
	// with an unmapped uid would otherwise leave it none (capabilities(7)).
	// This spares a second exec (a Go runtime start) after the maps.
	last, err := lastCap()
	if err != nil {
		return nil, fmt.Errorf("launcher: %w", err)
	}
	type started struct {
		pid int
		err error
	}
	startc := make(chan started, 1)
	type exited struct {
		ws unix.WaitStatus
		ru unix.Rusage
	}
	donec := make(chan exited, 1)
	go func() {
		// The parent-death signal fires when the thread that forked
		// the child exits, not the process: this goroutine keeps its
		// thread until the child is gone (golang/go#27505).
		runtime.LockOSThread()
		pid, err := startInit(stageArgs(stageInit, fd, unshare), files, last, cg)
		startc <- started{pid: pid, err: err}
		if pid <= 0 {
			return
		}
		var e exited
		for {
			_, err := unix.Wait4(pid, &e.ws, 0, &e.ru)
			if !errors.Is(err, unix.EINTR) {
				break
			}
		}
		donec <- e
	}()
	st := <-startc
	if st.err != nil && st.pid > 0 {
		<-donec // it failed before its exec, or was killed
	}
	theirs.close()
	planFile.Close()
	planc := make(chan error, 1)
	if st.err == nil {
		go func() {
			b, err := json.Marshal(p)
			if err == nil {
				_, err = planW.Write(b)
			}
			planW.Close()
			planc <- err
		}()
	}
	if st.err != nil {
		// The child's own failure before its exec (descriptors,
		// capabilities) is not the host's refusal of namespaces.
		var se *spawnError
		if errors.As(st.err, &se) {
			return nil, fmt.Errorf("launcher: start init: %w", st.err)
		}
		err := fmt.Errorf("launcher: create namespaces: %w", st.err)
		if errors.Is(st.err, unix.EPERM) || errors.Is(st.err, unix.ENOSPC) || errors.Is(st.err, unix.EINVAL) {
			return nil, &HintedError{Err: err, Hint: hintUserns}
		}
		return nil, err
	}
	pid := st.pid
	abort := func(err error) (*Outcome, error) {
		unix.Kill(pid, unix.SIGKILL)
		<-donec
		return nil, err
	}
	if err := waitExeced(ours); err != nil {
		return abort(fmt.Errorf("launcher: %w", err))
	}

	id := p.Identity
	if id.Helpers {
		err = userns.WriteWithHelpers(pid, id.NewUIDMap, id.NewGIDMap, id.UIDMap, id.GIDMap, startHelper)
		if err != nil {
			return abort(&HintedError{Err: fmt.Errorf("launcher: write id maps: %w", err), Hint: hintSubIDs})
		}
	} else if err = userns.WriteDirect(pid, id.UIDMap, id.GIDMap); err != nil {
		return abort(fmt.Errorf("launcher: write id maps: %w", err))
	}
	// init reads the plan first of all: this waits for nothing else.
	if err := <-planc; err != nil {
		return abort(fmt.Errorf("launcher: send the plan: %w", err))
	}
	if err := ours.send(message{Type: msgMapped}); err != nil {
		return abort(fmt.Errorf("launcher: %w", err))
	}

	rec, recc = <-recc, nil
	// The payload has ended: its record goes while init's namespaces are
	// torn down.
	retire := func() {
		if rec != nil && recGone == nil {
			recGone = make(chan struct{})
			go func(r *record) {
				r.remove()
				close(recGone)
			}(rec)
		}
	}
	<-notified
	msgs := ours.packets()
	var timeout <-chan time.Time
	if p.Timeout > 0 {
		t := time.NewTimer(p.Timeout)
		defer t.Stop()
		timeout = t.C
	}

	var (
		out      Outcome
		stageErr error
		running  bool          // msgStarted arrived: the payload runs
		pending  []unix.Signal // signals that came before
		ended    bool          // msgExited or msgExecFailed arrived
		done     *exited
	)
	for done == nil || msgs != nil {
		select {
		case m, ok := <-msgs:
			if !ok {
				msgs = nil
				continue
			}
			switch m.Type {
			case msgPTY:
				if err := tty.take(ours, m); err != nil && stageErr == nil {
					stageErr = err
					unix.Kill(pid, unix.SIGKILL)
				}
			case msgStarted:
				running = true
				debug.SetGCPercent(100)
				debug.SetMemoryLimit(math.MaxInt64)
				if rec != nil {
					leaf := ""
					if cg != nil {
						leaf = cg.tree.Sandbox
					}
					if err := rec.publish(policy.NewState(p, rec.id, os.Getpid(), pid, start, leaf)); err != nil {
						warn("this sandbox is not recorded for sbx ps, stop and exec: " + err.Error())
					} else {
						rec.serveExec(ours)
					}
				}
				for _, s := range pending {
					unix.Kill(pid, s)
				}
				pending = nil
			case msgError:
				if m.Error != nil {
					stageErr = m.Error
				}
			case msgExecFailed:
				stageErr, ended = &ExecError{Code: m.ExitCode, Err: m.Text}, true
				retire()
			case msgExited:
				out.ExitCode, out.Signal, out.Core, ended = m.ExitCode, m.Signal, m.Core, true
				retire()
			case msgDenied:
				// The caller's terminal may be raw (the relay): end
				// the line as a terminal needs it then.
				eol := "\n"
				if tty != nil && p.PTY.Stdin && p.PTY.Stderr {
					eol = "\r\n"
				}
				fmt.Fprint(os.Stderr, "sbx: denied: "+m.Text+eol)
			case msgStopped:
				// The payload stopped (Ctrl-Z on its terminal): sbx
				// stops too, for the caller's shell to see, and once
				// continued (fg, bg, or at once where no shell can),
				// it continues the payload.
				if tty != nil && running {
					tty.suspend(func() { stopAs(unix.Signal(m.Signal)) })
					unix.Kill(pid, unix.SIGCONT)
				}
			}
		case s := <-sigc:
			if !tty.signal(s.(unix.Signal)) {
				continue
			}
			// Until the payload runs, init has no one to pass a
			// signal to (and Go's default would end it): hold it.
			switch {
			case done != nil:
			case running:
				unix.Kill(pid, s.(unix.Signal))
			default:
				pending = append(pending, s.(unix.Signal))
			}
		case <-timeout:
			out.TimedOut = true
			unix.Kill(pid, unix.SIGKILL)
			timeout = nil
		case e := <-donec:
			done = &e
		}
	}
	if tty != nil {
		tty.drain()
	}
	out.Wall = time.Since(start)
	out.MaxRSS = done.ru.Maxrss
	if cg != nil {
		stats := cg.tree.Stats()
		out.Cgroup = &stats
		if err := cg.teardown(); err != nil && stageErr == nil && !out.TimedOut {
			return nil, err
		}
		// The kernel's OOM killer may pick init itself: the sandbox was
		// killed by its memory limit all the same.
		if !ended && stats.OOMKills > 0 && done.ws.Signaled() && done.ws.Signal() == unix.SIGKILL {
			out.Signal, ended = int(unix.SIGKILL), true
		}
	}
	switch {
	case out.TimedOut:
		out.ExitCode, out.Signal = 124, 0
		return &out, nil
	case stageErr != nil:
		return nil, stageErr
	case !ended && running && done.ws.Signaled() && done.ws.Signal() == unix.SIGKILL:
		// Someone killed the sandbox's PID 1 (sbx stop after its grace,
		// kill -9): the payload died with it, as if killed itself.
		out.Signal = int(unix.SIGKILL)
	case !ended:
		return nil, fmt.Errorf("init: exited unexpectedly (%s)", describe(done.ws))
	}
	if out.Signal != 0 {
		out.SignalName = unix.SignalName(unix.Signal(out.Signal))
		out.ExitCode = 128 + out.Signal
	}
	return &out, nil
}

// startHelper starts an id-map helper with the C spawner: in a process
// group of its own (syscall.StartProcess can do that too), and with a
// Ctrl-C for sbx's group that came before it left the group discarded,
// not delivered once it unblocks signals (spawn_linux.c).
func startHelper(path string, argv []string, stdio [3]int) (int, error) {
	pid, _, err := spawn(path, &spawnAttr{
		argv: argv, env: []string{}, files: stdio[:], ctty: -1, fgTTY: -1, joinUserns: -1, helper: true,
	})
	if err != nil && pid > 0 {
		var ws unix.WaitStatus
		unix.Wait4(pid, &ws, 0, nil) // it failed before its exec: reaped here
	}
	return pid, err
}

// startInit starts init, on the calling (locked) thread, and returns its
// pid, also with an error when it failed before its exec. init leads a
// session of its own: signals for the caller's terminal's foreground
// group (Ctrl-C) reach sbx alone, which holds them until the payload
// runs and then forwards each once; init, in sbx's group, got them too,
// died of one that came before its handlers, and passed on a second copy
// of one that came after. Without a
// cgroup, sbx_spawn clones it with the launcher suspended until the exec
// (CLONE_VFORK); syscall.StartProcess, which the cgroup needs
// (CLONE_INTO_CGROUP), forks with CLONE_NEWUSER: a copy of the launcher's
// page tables, and a fault on each page the launcher writes after.
func startInit(argv []string, files []*os.File, lastCap int, cg *cgroupRun) (int, error) {
	if cg == nil {
		fds := make([]int, len(files))
		for i, f := range files {
			fds[i] = -1
			if f != nil {
				fds[i] = int(f.Fd())
			}
		}
		pid, _, err := spawn("/proc/self/exe", &spawnAttr{
			argv: argv, env: []string{}, files: fds, setsid: true, ctty: -1, fgTTY: -1, joinUserns: -1,
			init: &initClone{lastCap: lastCap},
		})
		return pid, err
	}
	ambient := make([]uintptr, lastCap+1)
	for c := range ambient {
		ambient[c] = uintptr(c)
	}
	sys := &syscall.SysProcAttr{
		Cloneflags: unix.CLONE_NEWUSER | unix.CLONE_NEWPID, Pdeathsig: unix.SIGKILL, AmbientCaps: ambient, Setsid: true,
		UseCgroupFD: true, CgroupFD: cg.tree.FD(),
	}
	pid, _, err := syscall.StartProcess("/proc/self/exe", argv, &syscall.ProcAttr{Env: []string{}, Files: fileFds(files), Sys: sys})
	return pid, err
}

// stopAs stops sbx with the payload's stop signal, as the kernel stops
// a job; SIGSTOP, which cannot be ignored, becomes SIGTSTP. The kernel
// discards the signal when sbx's process group is orphaned, where no
// shell would continue it, or where sbx was started with it ignored:
// then stopAs returns at once. The stop signals keep their default
// action in sbx (os/signal would keep a handler installed for good),
// and the signal goes to this thread, which stops before tgkill returns.
func stopAs(s unix.Signal) {
	if s == unix.SIGSTOP {
		s = unix.SIGTSTP
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	unix.Tgkill(unix.Getpid(), unix.Gettid(), s)
}

func describe(ws unix.WaitStatus) string {
	if ws.Signaled() {
		return "killed by " + unix.SignalName(ws.Signal())
	}
	return fmt.Sprintf("status %d", ws.ExitStatus())
}

// sealedFile is a memfd holding b, sealed against any change, at offset 0.
func sealedFile(name string, b []byte) (*os.File, error) {
	fd, err := unix.MemfdCreate(name, unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		return nil, fmt.Errorf("memfd_create: %w", err)
	}
	f := os.NewFile(uintptr(fd), name)
	if _, err := f.Write(b); err != nil {
		f.Close()
		return nil, err
	}
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_ADD_SEALS, unix.F_SEAL_SEAL|unix.F_SEAL_SHRINK|unix.F_SEAL_GROW|unix.F_SEAL_WRITE); err != nil {
		f.Close()
		return nil, fmt.Errorf("seal %s: %w", name, err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}
