package sandbox

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"

	"sbx/policy"
)

// forwarded are the signals pid1 passes on to the payload. Those a
// terminal sends to its foreground process group go to the payload's
// process group, as the terminal would have done; the others go to the
// payload process, as kill(1) would. SIGCONT resumes a stopped payload
// (the shell's fg resumes sbx).
var forwarded = []os.Signal{unix.SIGINT, unix.SIGTERM, unix.SIGHUP, unix.SIGQUIT, unix.SIGUSR1, unix.SIGUSR2, unix.SIGWINCH, unix.SIGCONT}

// terminating are forwarded signals after which a SIGCONT follows: a
// payload that stopped itself would otherwise never see them, and sbx
// would wait for it forever.
func terminating(s unix.Signal) bool {
	return s == unix.SIGINT || s == unix.SIGTERM || s == unix.SIGHUP || s == unix.SIGQUIT
}

// guarded are the signals Go's runtime would turn into a crash of pid1
// (a panic or an exit with a stack dump; Go catches and ignores the
// others). The payload runs as the same user as pid1 and may send them
// with kill(2): pid1 catches and drops them.
func guarded() []os.Signal {
	var out []os.Signal
	for _, s := range []unix.Signal{unix.SIGSEGV, unix.SIGBUS, unix.SIGFPE, unix.SIGILL, unix.SIGTRAP, unix.SIGABRT, unix.SIGSTKFLT, unix.SIGSYS, unix.SIGPIPE} {
		if !signal.Ignored(s) {
			out = append(out, s)
		}
	}
	return out
}

// caught are the forwarded signals this process was not started with
// ignored; sbx exec catches these. (sbx run catches every forwarded
// signal, and has the payload start ignoring the ones its caller ignored:
// the plan's IgnoredSignals.)
func caught() []os.Signal {
	var out []os.Signal
	for _, s := range forwarded {
		if !ignoredAtStart(s.(unix.Signal)) {
			out = append(out, s)
		}
	}
	return out
}

func toGroup(s unix.Signal) bool {
	return s == unix.SIGINT || s == unix.SIGQUIT || s == unix.SIGWINCH || s == unix.SIGCONT
}

// initMain is the sandbox's PID 1. It was cloned into the new namespaces
// with every capability in the ambient set, so it still holds them in
// its user namespace after its exec, although its uid was not mapped
// yet then. It reads the plan while the launcher writes the id maps,
// builds the sandbox, starts the payload, and stays as its PID 1: it
// reaps every orphan and forwards signals until the payload ends, then
// reports how it ended. Its exit tears the pid namespace down.
// hintNamespaces is for a namespace init could not create.
const hintNamespaces = "the host refused a new namespace: check sysctl user.max_mnt_namespaces, user.max_net_namespaces, user.max_ipc_namespaces, user.max_uts_namespaces and user.max_cgroup_namespaces, and any security module or container policy on namespaces"

// initMain is PID 1 of the sandbox; unshare is what its constructor was
// asked to unshare (stage_linux.c).
func initMain(fd int, unshare uintptr) int {
	// Mounts and pivot_root are made from this thread; the payload is
	// forked from another (the spawner's), trimmed for it.
	runtime.LockOSThread()
	// A short-lived process with a small heap: collection would only
	// cost time on the start path.
	debug.SetGCPercent(-1)
	unix.CloseOnExec(fd)
	// The faults' signals, sent by kill(2), must not end init (Go's
	// default for them): os/signal catches them. Its set-up (a thread of
	// its own, a round trip with it per signal) runs beside the start,
	// and is done before the payload exists.
	guarding := make(chan struct{})
	go func() {
		signal.Notify(make(chan os.Signal, 1), guarded()...)
		close(guarding)
	}()
	name := []byte("sbx-init\x00")
	unix.Prctl(unix.PR_SET_NAME, uintptr(unsafe.Pointer(&name[0])), 0, 0, 0)
	ctl := &conn{f: os.NewFile(uintptr(fd), "sbx-ctl")}
	fail := func(op string, err error) int {
		ctl.send(message{Type: msgError, Error: stageErr("init", op, err)})
		return 125
	}
	// A failure before msgMapped is reported after it: were init to
	// exit at once, the launcher would print the helpers' failure on a
	// process gone instead.
	early := func(op string, err error) int {
		if m, rerr := ctl.recv(); rerr != nil || m.Type != msgMapped {
			return 125
		}
		return fail(op, err)
	}
	// The plan (in a pipe, to its end) and the seccomp filter (in a
	// sealed memfd) are at the next two descriptors; they are read while
	// the launcher runs the id-map helpers.
	planFile := os.NewFile(uintptr(fd+1), "sbx-plan")
	b, err := io.ReadAll(planFile)
	planFile.Close()
	if err != nil {
		return early("read plan", err)
	}
	var p policy.Plan
	if err := json.Unmarshal(b, &p); err != nil {
		return early("read plan", err)
	}
	if p.Version != policy.PlanVersion {
		return early("read plan", fmt.Errorf("plan version %d, want %d", p.Version, policy.PlanVersion))
	}
	if want := initUnshare(&p); unshare != want {
		return early("create namespaces", fmt.Errorf("unshared %#x, the plan asks for %#x", unshare, want))
	}
	fltFile := os.NewFile(uintptr(fd+2), "sbx-filter")
	b, err = io.ReadAll(fltFile)
	fltFile.Close()
	if err != nil {
		return early("read the seccomp filter", err)
	}
	flt, err := decodeFilter(b)
	if err != nil {
		return early("read the seccomp filter", err)
	}
	// Read while the host's /proc is still there: a --tmpfs over the
	// view's /proc is refused, but nothing of the view is needed.
	last, err := lastCap()
	if err != nil {
		return early("read cap_last_cap", err)
	}
	sp := newSpawner()
	m, err := ctl.recv()
	if err != nil || m.Type != msgMapped {
		return 125
	}
	// Reported once the maps are written, so that it is this error the
	// launcher prints, not the helpers' failure on a process gone.
	if err := initNamespaces(); err != nil {
		e := stageErr("init", "create namespaces", err)
		if errors.Is(err, unix.ENOSPC) || errors.Is(err, unix.EPERM) || errors.Is(err, unix.EUSERS) {
			e.Hint = hintNamespaces
		}
		ctl.send(message{Type: msgError, Error: e})
		return 125
	}
	acks := make(chan message, 1)
	execs := make(chan int, 4) // sbx exec's connections, as the launcher passes them
	go func() {
		for {
			m, fd, err := ctl.recvFD()
			if err != nil { // EOF: the launcher is gone
				os.Exit(125)
			}
			switch {
			case m.Type == msgExecConn && fd >= 0:
				execs <- fd
			case fd >= 0:
				unix.Close(fd)
				fallthrough
			default:
				acks <- m // msgPTYReady is the only other one that can come
			}
		}
	}()
	if p.Security.NonDumpable {
		if err := unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0); err != nil {
			return fail("set non-dumpable", err)
		}
	}
	if err := setup(&p); err != nil {
		return fail("", err)
	}
	var tty *os.File
	if p.PTY != nil {
		if tty, err = payloadTerminal(ctl, acks); err != nil {
			return fail("", err)
		}
	}
	// Landlock's rules are opened on the view as it now stands, with
	// the payload's descriptors.
	files := payloadFiles(&p, tty)
	llfd := -1
	if p.Security.Landlock.Enabled {
		if llfd, err = landlockRuleset(p.Security.Landlock, files); err != nil {
			return fail("", err)
		}
	}
	sp.run(func() { err = sp.prepare(&p, last, llfd) })
	if err != nil {
		return fail("", err)
	}
	var r reaper
	if flt != nil && flt.notify {
		r.sigsys = reportKilled(ctl, p.Security.Seccomp.Mode)
	}
	<-guarding
	pid, listener, err := startPayload(&p, sp, files, tty, flt)
	if tty != nil {
		tty.Close() // the payload's now, and the launcher has the master
	}
	if listener != nil {
		go serveDenied(listener, flt, ctl)
	}
	if err != nil {
		var ee *ExecError
		if errors.As(err, &ee) {
			ctl.send(message{Type: msgExecFailed, ExitCode: ee.Code, Text: ee.Err})
			return ee.Code
		}
		return fail("", err)
	}
	debug.SetGCPercent(100)
	// The forwarded signals' handlers go in now. No signal is lost: the
	// launcher holds those it gets until msgStarted, and nothing else
	// signals init before.
	sigc := make(chan os.Signal, 16)
	if err := relaySignals(forwarded, sigc); err != nil {
		unix.Kill(pid, unix.SIGKILL)
		return fail("", err)
	}
	ctl.send(message{Type: msgStarted})
	{
		uid, _ := p.Identity.UIDMap.ToInside(p.Identity.HostUID)
		srv := &execServer{plan: &p, spawner: sp, filter: flt, reaper: &r, ctl: ctl, peerUID: uid, userns: -1}
		if p.Identity.Root {
			// sbx exec's commands join the payload's user namespace;
			// without it exec is refused (handle), never run outside it.
			if srv.userns, err = unix.Open(fmt.Sprintf("/proc/%d/ns/user", pid), unix.O_RDONLY|unix.O_CLOEXEC, 0); err != nil {
				srv.userns = -1
			}
		}
		go srv.serve(execs)
	}
	go func() {
		send := func(sig unix.Signal) {
			if !toGroup(sig) || unix.Kill(-pid, sig) != nil {
				unix.Kill(pid, sig)
			}
		}
		for s := range sigc {
			sig := s.(unix.Signal)
			send(sig)
			if terminating(sig) {
				send(unix.SIGCONT)
			}
		}
	}()
	var stopped func(unix.Signal)
	if tty != nil {
		// The launcher stops as a job of the caller's shell, then
		// resumes the payload (SIGCONT, forwarded to its group).
		stopped = func(sig unix.Signal) { ctl.send(message{Type: msgStopped, Signal: int(sig)}) }
	}
	ws := r.wait(pid, stopped)
	out := message{Type: msgExited}
	switch {
	case ws.Exited():
		out.ExitCode = ws.ExitStatus()
	case ws.Signaled():
		out.Signal = int(ws.Signal())
		out.Core = ws.CoreDump()
	}
	ctl.send(out)
	return 0
}

// setup does, in pid1, everything the plan asks of the namespaces.
func setup(p *policy.Plan) error {
	if p.Security.DisableUserns {
		// bubblewrap's --disable-userns: user namespaces are charged to
		// every ancestor (ucounts), so with this limit in the sandbox's
		// namespace none can be created below it (--root: none below the
		// payload's own). The payload has no capability here to raise it.
		limit := "0"
		if p.Identity.Root {
			limit = "1"
		}
		if err := os.WriteFile("/proc/sys/user/max_user_namespaces", []byte(limit), 0); err != nil {
			return opErr("limit nested user namespaces")(err)
		}
	}
	if p.Namespaces.UTS && p.Hostname != "" {
		if err := unix.Sethostname([]byte(p.Hostname)); err != nil {
			return opErr("sethostname %s", p.Hostname)(err)
		}
	}
	// Bringing lo up (the kernel sets up its IPv6 too) happens on
	// another thread while this one builds the view: every thread of
	// init is in the new network namespace, which its constructor made
	// before the Go runtime started any.
	var lo chan error
	if p.Namespaces.Net {
		lo = make(chan error, 1)
		go func() { lo <- loopbackUp() }()
	}
	// A new, empty session keyring: the caller's session keyring (and
	// the keys it links) is not the payload's business (runc does the same).
	if _, _, e := unix.Syscall(unix.SYS_KEYCTL, unix.KEYCTL_JOIN_SESSION_KEYRING, 0, 0); e != 0 && e != unix.ENOSYS {
		return opErr("join a new session keyring")(e)
	}
	err := buildView(p.Mounts)
	if lo != nil {
		if err := <-lo; err != nil {
			return opErr("bring up lo")(err)
		}
	}
	if err != nil {
		return err
	}
	if err := unix.Chdir(p.Cwd); err != nil {
		return opErr("chdir %s", p.Cwd)(err)
	}
	return nil
}

func loopbackUp() error {
	s, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(s)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(s, unix.SIOCGIFFLAGS, ifr); err != nil {
		return err
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	return unix.IoctlIfreq(s, unix.SIOCSIFFLAGS, ifr)
}

// payloadFiles is the payload's descriptor table: files[i] becomes its
// descriptor i (-1: closed).
func payloadFiles(p *policy.Plan, tty *os.File) []int {
	files := []int{0, 1, 2}
	if tty != nil {
		if p.PTY.Stdin {
			files[0] = int(tty.Fd())
		}
		if p.PTY.Stdout {
			files[1] = int(tty.Fd())
		}
		if p.PTY.Stderr {
			files[2] = int(tty.Fd())
		}
	}
	for _, fd := range p.KeepFDs {
		for len(files) <= fd {
			files = append(files, -1)
		}
		files[fd] = fd
	}
	return files
}

// startPayload forks and execs the payload from the spawner's thread,
// with no Go code in between. Without --root it runs in the sandbox's
// user namespace as the caller, whose exec leaves it no permitted,
// effective or ambient capability (the spawner's thread has emptied its
// bounding and inheritable sets). With --root it runs as uid 0 in a
// nested user namespace (its capabilities are over that namespace only;
// the mounts and the other namespaces belong to the sandbox's).
//
// With a pseudo-terminal (tty), the payload's stdin, and its stdout and
// stderr where the plan says, are tty's slave, the controlling terminal
// of pid1's session (payloadTerminal), and the payload starts in a
// process group of its own in that terminal's foreground.
func startPayload(p *policy.Plan, sp *spawner, files []int, tty *os.File, flt *filter) (int, *os.File, error) {
	argv := p.Argv
	if p.Argv0 != "" { // what is run stays p.Argv[0]
		argv = append([]string{p.Argv0}, p.Argv[1:]...)
	}
	a := &spawnAttr{argv: argv, env: p.Env, files: files, setsid: p.Security.NewSession, ctty: -1, fgTTY: -1, joinUserns: -1, filter: flt, ignore: p.IgnoredSignals}
	if flt != nil {
		a.wantNotification = flt.notify
	}
	if p.Identity.Root {
		a.newUser = true
		a.uidMap, a.gidMap = p.Identity.NestedUIDMap, p.Identity.NestedGIDMap
		a.setgroups = p.Identity.Helpers
	}
	if tty != nil {
		// The child takes the terminal's foreground with its signals
		// blocked (no SIGTTOU).
		a.setsid, a.fgTTY = false, int(tty.Fd())
	}
	if p.Security.CheckFDs {
		if err := checkDescriptors(a.files); err != nil {
			return 0, nil, err
		}
	}
	var (
		pid      int
		listener *os.File
		err      error
	)
	sp.run(func() { pid, listener, err = execvp(p.Argv, p.Env, a) })
	return pid, listener, err
}

// execvp starts argv[0] as execvp(3) would: a name without '/' is looked
// up in the payload's PATH; a file the kernel cannot execute (ENOEXEC)
// is run by /bin/sh. Failure to execute is an *ExecError: 127 when
// nothing was found, 126 when something was found but could not be
// executed; a failure before the exec is a plain error.
func execvp(argv, env []string, a *spawnAttr) (int, *os.File, error) {
	name := argv[0]
	if strings.Contains(name, "/") {
		pid, l, err := start(name, a)
		if err != nil {
			return 0, nil, execError(name, err)
		}
		return pid, l, nil
	}
	pathEnv := "/usr/local/bin:/usr/bin:/bin"
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			pathEnv = v
		}
	}
	var denied error
	for _, dir := range strings.Split(pathEnv, ":") {
		if dir == "" {
			dir = "."
		}
		file := dir + "/" + name
		var st unix.Stat_t
		if unix.Stat(file, &st) != nil || st.Mode&unix.S_IFMT == unix.S_IFDIR {
			continue
		}
		pid, l, err := start(file, a)
		var se *spawnError
		switch {
		case err == nil:
			return pid, l, nil
		case !errors.As(err, &se) || se.stage != "exec":
			return 0, nil, execError(file, err)
		case errors.Is(err, unix.EACCES), errors.Is(err, unix.EPERM):
			if denied == nil {
				denied = fmt.Errorf("%s: %w", file, err)
			}
		default:
			return 0, nil, execError(file, err)
		}
	}
	if denied != nil {
		return 0, nil, &ExecError{Code: 126, Err: denied.Error()}
	}
	return 0, nil, &ExecError{Code: 127, Err: name + ": command not found"}
}

// execError is an *ExecError for a failed exec, else err as it is.
func execError(file string, err error) error {
	var se *spawnError
	if errors.As(err, &se) && se.stage == "exec" {
		var st unix.Stat_t
		if errors.Is(err, unix.ENOENT) && unix.Stat(file, &st) == nil {
			// Found, but its #! interpreter or ELF loader is not.
			return &ExecError{Code: 126, Err: fmt.Sprintf("%s: its interpreter or loader (#! line, ELF interpreter) is missing: %v", file, err)}
		}
		return &ExecError{Code: execCode(err), Err: fmt.Sprintf("%s: %v", file, err)}
	}
	return opErr("start %s", file)(err)
}

func start(file string, a *spawnAttr) (int, *os.File, error) {
	pid, l, err := spawn(file, a)
	if errors.Is(err, unix.ENOEXEC) {
		argv := append([]string{"sh", file}, a.argv[1:]...)
		b := *a
		b.argv = argv
		pid, l, err = spawn("/bin/sh", &b)
		if errors.Is(err, unix.ENOENT) {
			err = &spawnError{stage: "exec", errno: unix.ENOEXEC}
		}
	}
	return pid, l, err
}

func execCode(err error) int {
	if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) {
		return 127
	}
	return 126
}

// dropThreadCapabilities empties this thread's bounding, ambient and
// inheritable sets. Its permitted and effective sets stay (pid1 is done
// with them); the payload's exec as a non-root user clears those.
func dropThreadCapabilities(last int) error {
	for c := 0; c <= last; c++ {
		if err := unix.Prctl(unix.PR_CAPBSET_DROP, uintptr(c), 0, 0, 0); err != nil {
			return fmt.Errorf("drop bounding capability %d: %w", c, err)
		}
	}
	if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0); err != nil {
		return fmt.Errorf("clear ambient capabilities: %w", err)
	}
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return fmt.Errorf("capget: %w", err)
	}
	data[0].Inheritable, data[1].Inheritable = 0, 0
	if err := unix.Capset(&hdr, &data[0]); err != nil {
		return fmt.Errorf("capset: %w", err)
	}
	return nil
}

// lastCap is the highest capability the running kernel knows.
func lastCap() (int, error) {
	b, err := os.ReadFile("/proc/sys/kernel/cap_last_cap")
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(string(b)))
}
