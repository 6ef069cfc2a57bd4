package sandbox

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"golang.org/x/sys/unix"

	"sbx/idmap"
	"sbx/policy"
)

// forwarded are the signals pid1 passes on to the payload. Those a
// terminal sends to its foreground process group go to the payload's
// process group, as the terminal would have done; the others go to the
// payload process, as kill(1) would.
var forwarded = []os.Signal{unix.SIGINT, unix.SIGTERM, unix.SIGHUP, unix.SIGQUIT, unix.SIGUSR1, unix.SIGUSR2, unix.SIGWINCH}

func toGroup(s unix.Signal) bool {
	return s == unix.SIGINT || s == unix.SIGQUIT || s == unix.SIGWINCH
}

// initMain is the first process in the new namespaces. Its exec happened
// before the launcher wrote the id maps, so it has no capabilities; once
// the maps are written it re-executes itself as pid1, which gains those
// of root in the new user namespace.
func initMain(fd int) int {
	ctl := &conn{os.NewFile(uintptr(fd), "sbx-ctl")}
	m, err := ctl.recv()
	if err != nil || m.Type != msgMapped {
		return 125 // the launcher has gone or gave up; it reports why
	}
	err = unix.Exec("/proc/self/exe", stageArgs(stagePID1, fd), []string{})
	ctl.send(message{Type: msgError, Error: stageErr("init", "re-exec", err)})
	return 125
}

// pid1Main builds the sandbox, starts the payload, and stays as its
// PID 1: it reaps every orphan and forwards signals until the payload
// ends, then reports how it ended. Its exit tears the pid namespace down.
func pid1Main(fd int) int {
	unix.CloseOnExec(fd)
	ctl := &conn{os.NewFile(uintptr(fd), "sbx-ctl")}
	// The exec cleared the parent-death signal (capabilities changed);
	// re-arm it before anything else, then learn whether the launcher is
	// already gone: the socket reads EOF after the plan.
	if err := unix.Prctl(unix.PR_SET_PDEATHSIG, uintptr(unix.SIGKILL), 0, 0, 0); err != nil {
		return 125
	}
	sigc := make(chan os.Signal, 16)
	signal.Notify(sigc, forwarded...)
	m, err := ctl.recv()
	if err != nil || m.Type != msgPlan {
		return 125
	}
	go func() {
		ctl.recv() // only EOF can come now: the launcher is gone
		os.Exit(125)
	}()
	fail := func(op string, err error) int {
		ctl.send(message{Type: msgError, Error: stageErr("init", op, err)})
		return 125
	}
	var p policy.Plan
	if err := json.Unmarshal(m.Plan, &p); err != nil {
		return fail("read plan", err)
	}
	if p.Version != policy.PlanVersion {
		return fail("read plan", fmt.Errorf("plan version %d, want %d", p.Version, policy.PlanVersion))
	}
	if p.Security.NonDumpable {
		if err := unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0); err != nil {
			return fail("set non-dumpable", err)
		}
	}
	if err := setup(&p); err != nil {
		return fail("", err)
	}
	pid, err := startPayload(&p, ctl)
	if err != nil {
		var ee *ExecError
		if errors.As(err, &ee) {
			ctl.send(message{Type: msgExecFailed, ExitCode: ee.Code, Text: ee.Err})
			reap(-1)
			return ee.Code
		}
		return fail("", err)
	}
	ctl.send(message{Type: msgStarted})
	go func() {
		for s := range sigc {
			sig := s.(unix.Signal)
			target := pid
			if toGroup(sig) {
				target = -pid
			}
			if unix.Kill(target, sig) != nil && target < 0 {
				unix.Kill(pid, sig)
			}
		}
	}()
	ws := reap(pid)
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

// reap waits for children until pid has exited (or, for -1, until there
// are none) and returns its status. Orphans re-parented to pid1 are
// reaped on the way.
func reap(pid int) unix.WaitStatus {
	for {
		var ws unix.WaitStatus
		got, err := unix.Wait4(-1, &ws, 0, nil)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil || got == pid {
			return ws
		}
	}
}

// setup does, in pid1, everything the plan asks of the namespaces.
func setup(p *policy.Plan) error {
	if p.Security.DisableUserns {
		// bubblewrap's --disable-userns: with the limit at 1 in U1 the
		// payload's own namespace U2 is the last one; no further user
		// namespace can be created below it (ucounts are charged to
		// every ancestor). The payload has no capability in U1 to raise it.
		if err := os.WriteFile("/proc/sys/user/max_user_namespaces", []byte("1"), 0); err != nil {
			return opErr("limit nested user namespaces")(err)
		}
	}
	if p.Namespaces.UTS && p.Hostname != "" {
		if err := unix.Sethostname([]byte(p.Hostname)); err != nil {
			return opErr("sethostname %s", p.Hostname)(err)
		}
	}
	if p.Namespaces.Net {
		if err := loopbackUp(); err != nil {
			return opErr("bring up lo")(err)
		}
	}
	return buildView(p.Mounts)
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

// startPayload starts the exec stage in the nested user namespace U2 and
// waits until it has exec'd the payload or failed to.
func startPayload(p *policy.Plan, ctl *conn) (int, error) {
	ours, theirs, err := socketPair()
	if err != nil {
		return 0, err
	}
	defer ours.close()
	files, fd := stageFiles(p.KeepFDs, theirs.f)
	sys := &syscall.SysProcAttr{
		Cloneflags:                 unix.CLONE_NEWUSER,
		UidMappings:                procIDMap(p.Identity.NestedUIDMap),
		GidMappings:                procIDMap(p.Identity.NestedGIDMap),
		GidMappingsEnableSetgroups: p.Identity.Helpers,
		Setsid:                     p.Security.NewSession,
		Pdeathsig:                  unix.SIGKILL,
	}
	if p.Security.DropCaps {
		// The exec stage runs as the caller's id, not root, so its exec
		// would drop every capability but the bounding set; keep
		// CAP_SETPCAP in the ambient set so that it can empty that too.
		sys.AmbientCaps = []uintptr{unix.CAP_SETPCAP}
	}
	proc, err := os.StartProcess("/proc/self/exe", stageArgs(stageExec, fd), &os.ProcAttr{Env: []string{}, Files: files, Sys: sys})
	theirs.close()
	if err != nil {
		return 0, opErr("start the payload's namespace")(err)
	}
	spec := &execSpec{
		Argv: p.Argv, Env: p.Env, Cwd: p.Cwd, Root: p.Identity.Root,
		UID: p.Identity.UID, GID: p.Identity.GID, KeepFDs: p.KeepFDs, DropCaps: p.Security.DropCaps,
	}
	if err := ours.send(message{Type: msgExecSpec, Spec: spec}); err != nil {
		return 0, opErr("send the exec spec")(err)
	}
	m, err := ours.recv()
	switch {
	case errors.Is(err, errClosed):
		return proc.Pid, nil // close-on-exec: the payload is running
	case err != nil:
		return 0, opErr("exec stage")(err)
	case m.Type == msgExecFailed:
		return 0, &ExecError{Code: m.ExitCode, Err: m.Text}
	case m.Type == msgError && m.Error != nil:
		reap(proc.Pid)
		return 0, m.Error
	}
	return 0, fmt.Errorf("exec stage: unexpected message %q", m.Type)
}

func procIDMap(m idmap.Map) []syscall.SysProcIDMap {
	out := make([]syscall.SysProcIDMap, len(m))
	for i, l := range m {
		out[i] = syscall.SysProcIDMap{ContainerID: int(l.Inside), HostID: int(l.Outside), Size: int(l.Count)}
	}
	return out
}
