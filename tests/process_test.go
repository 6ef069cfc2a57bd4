package tests

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestSignalForwarding tries to break "signals sent to sbx reach the payload".
func TestSignalForwarding(t *testing.T) {
	requireUserns(t)
	t.Parallel()
	for _, sig := range []struct {
		name string
		num  syscall.Signal
	}{
		{"INT", syscall.SIGINT}, {"TERM", syscall.SIGTERM}, {"HUP", syscall.SIGHUP},
		{"QUIT", syscall.SIGQUIT}, {"USR1", syscall.SIGUSR1}, {"USR2", syscall.SIGUSR2},
	} {
		t.Run(sig.name, func(t *testing.T) {
			t.Parallel()
			script := `trap "echo got ` + sig.name + `; exit 3" ` + sig.name + `; echo ready; while :; do sleep 0.1; done`
			s := startSbx(t, sbxCmd{args: shArgs(script)})
			if !s.stdout.waitFor("ready", 15*time.Second) {
				t.Fatalf("payload never said ready; stdout %q stderr %q", s.stdout.all(), s.stderr)
			}
			if err := syscall.Kill(s.cmd.Process.Pid, sig.num); err != nil {
				t.Fatal(err)
			}
			code := s.wait(t, 10*time.Second)
			out := s.stdout.untilEOF(time.Second)
			if code != 3 || !strings.Contains(out, "got "+sig.name) {
				t.Errorf("after SIG%s to sbx: exit %d, stdout %q, stderr %q; want the trap's output and exit 3",
					sig.name, code, out, s.stderr)
			}
		})
	}
}

// TestOrphansReaped tries to leave a zombie behind inside the sandbox.
func TestOrphansReaped(t *testing.T) {
	requireUserns(t)
	t.Parallel()
	// The inner sh exits at once, so its background sleep is orphaned onto PID 1.
	r := mustSh(t, `sh -c 'sleep 0.2 & exit 0'; sleep 1; cat /proc/[0-9]*/stat 2>/dev/null`)
	for _, l := range lines(r.stdout) {
		i := strings.LastIndexByte(l, ')')
		if i < 0 || i+2 >= len(l) {
			continue
		}
		if l[i+2] == 'Z' {
			t.Errorf("zombie inside the sandbox: %s", l)
		}
	}
}

// TestDieWithParent tries to outlive a SIGKILLed sbx.
func TestDieWithParent(t *testing.T) {
	requireUserns(t)
	t.Parallel()
	s := startSbx(t, sbxCmd{args: []string{"run", "--", "sleep", "1000"}})
	sbxPid := s.cmd.Process.Pid
	payload := findDescendant(t, sbxPid, "sleep 1000", 10*time.Second)
	tree := descendants(sbxPid)
	if err := syscall.Kill(sbxPid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-s.done
	time.Sleep(2 * time.Second)
	for _, p := range append(tree, payload) {
		if alive(p) {
			t.Errorf("pid %d (%q) outlived the SIGKILLed sbx by 2 s", p.pid, p.cmdline)
		}
	}
}

// TestNoLeftovers tries to make sbx leave processes or files behind, for
// each way a run can end. It runs alone (not parallel) so that a process
// census of this user means something.
func TestNoLeftovers(t *testing.T) {
	requireUserns(t)
	before := suspects(t)
	for _, tc := range []struct {
		name   string
		flags  []string
		script string // prints the pid namespace first when it runs
		code   int
	}{
		{"success", nil, "true", 0},
		{"failure", nil, "exit 7", 7},
		{"background child", nil, "sleep 1000 & sleep 1000 & true", 0},
		{"detached child", nil, "setsid sleep 1000 </dev/null >/dev/null 2>&1 & true", 0},
		{"nohup child", nil, "nohup sleep 1000 </dev/null >/dev/null 2>&1 & true", 0},
		{"killed", nil, "sleep 1000 & kill -9 $$", 137},
		{"timeout", []string{"--timeout", "1s"}, "sleep 1000 & sleep 1000", 124},
		{"bad input", []string{"--net", "bogus"}, "true", 125},
		{"setup error", []string{"--chdir", "/nonexistent-sbx-dir"}, "true", 125},
		{"not found", nil, "", 127},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cwd, tmp := t.TempDir(), t.TempDir()
			env := environ("TMPDIR=" + tmp)
			var args []string
			if tc.script == "" {
				args = append(append([]string{"run"}, tc.flags...), "--", "no-such-command-sbx")
			} else {
				args = shArgs(`readlink /proc/self/ns/pid; `+tc.script, tc.flags...)
			}
			r := sbxCmd{args: args, dir: cwd, env: env}.run(t)
			if r.code != tc.code {
				t.Errorf("want exit %d\n%s", tc.code, r)
			}
			if ns, _, _ := strings.Cut(r.stdout, "\n"); strings.HasPrefix(ns, "pid:[") {
				requireNSEmpty(t, ns, 2*time.Second)
			}
			if names := dirNames(t, cwd); len(names) > 0 {
				t.Errorf("left in the cwd: %q", names)
			}
			if names := dirNames(t, tmp); len(names) > 0 {
				t.Errorf("left in TMPDIR: %q", names)
			}
			deadline := time.Now().Add(2 * time.Second)
			for {
				extra := newProcs(before, suspects(t))
				if len(extra) == 0 {
					break
				}
				if time.Now().After(deadline) {
					t.Errorf("processes left 2 s after sbx exited: %q", extra)
					for _, p := range extra {
						// Ours to end: started by this test's sbx run.
						pid, _, _ := strings.Cut(p, ":")
						if n, err := strconv.Atoi(pid); err == nil {
							syscall.Kill(n, syscall.SIGKILL)
						}
					}
					break
				}
				time.Sleep(50 * time.Millisecond)
			}
		})
	}
}

// suspects lists processes that could be a sandbox's leftovers, as
// "pid:start:cmdline": this user's (or its subordinate ids') processes that
// are in another pid or user namespace, in the test's own session, or
// running the "sleep 1000" the payloads here start.
func suspects(t *testing.T) []string {
	self, _ := readProc(os.Getpid())
	myUserNS, _ := os.Readlink("/proc/self/ns/user")
	uid := uint64(os.Getuid())
	sub, hasSub := firstSubID(t, "/etc/subuid")
	mine := func(owner uint64) bool {
		return owner == uid || (hasSub && owner >= sub && owner < sub+65536)
	}
	var out []string
	for _, p := range allProcs() {
		if p.pid == self.pid || p.state == 'Z' {
			continue
		}
		dir := filepath.Join("/proc", strconv.Itoa(p.pid))
		fi, err := os.Stat(dir)
		if err != nil || !mine(uint64(fi.Sys().(*syscall.Stat_t).Uid)) {
			continue
		}
		userNS, _ := os.Readlink(filepath.Join(dir, "ns", "user"))
		foreign := (p.pidns != "" && p.pidns != self.pidns) || (userNS != "" && userNS != myUserNS)
		if foreign || p.session == self.session || p.cmdline == "sleep 1000" {
			out = append(out, strconv.Itoa(p.pid)+":"+strconv.FormatUint(p.start, 10)+":"+p.cmdline)
		}
	}
	return out
}

func newProcs(before, after []string) []string {
	var out []string
	for _, p := range after {
		if !slices.Contains(before, p) {
			out = append(out, p)
		}
	}
	return out
}

// TestSignalOutcomes tries to break the exit code when a signal ends the
// payload: forwarded without a trap, or sent to the payload directly.
func TestSignalOutcomes(t *testing.T) {
	requireUserns(t)
	t.Parallel()

	t.Run("TERM to sbx, no trap", func(t *testing.T) {
		t.Parallel()
		s := startSbx(t, sbxCmd{args: shArgs(`echo ready; exec sleep 1000`)})
		if !s.stdout.waitFor("ready", 15*time.Second) {
			t.Fatalf("payload never said ready; stderr %q", s.stderr)
		}
		findDescendant(t, s.cmd.Process.Pid, "sleep 1000", 10*time.Second)
		syscall.Kill(s.cmd.Process.Pid, syscall.SIGTERM)
		if code := s.wait(t, 10*time.Second); code != 128+15 {
			t.Errorf("exit %d, want %d; stderr %q", code, 128+15, s.stderr)
		}
	})

	t.Run("KILL to the payload", func(t *testing.T) {
		t.Parallel()
		s := startSbx(t, sbxCmd{args: []string{"run", "--", "sleep", "1000"}})
		p := findDescendant(t, s.cmd.Process.Pid, "sleep 1000", 10*time.Second)
		syscall.Kill(p.pid, syscall.SIGKILL)
		if code := s.wait(t, 10*time.Second); code != 128+9 {
			t.Errorf("exit %d, want %d; stderr %q", code, 128+9, s.stderr)
		}
	})

	t.Run("INT ignored by the payload", func(t *testing.T) {
		t.Parallel()
		s := startSbx(t, sbxCmd{args: shArgs(`trap "" INT; echo ready; sleep 1; echo still here; exit 5`)})
		if !s.stdout.waitFor("ready", 15*time.Second) {
			t.Fatalf("payload never said ready; stderr %q", s.stderr)
		}
		syscall.Kill(s.cmd.Process.Pid, syscall.SIGINT)
		code := s.wait(t, 10*time.Second)
		if out := s.stdout.untilEOF(time.Second); code != 5 || !strings.Contains(out, "still here") {
			t.Errorf("exit %d, stdout %q: sbx must not die of a signal the payload ignores", code, out)
		}
	})
}

// TestPID1Protected tries to take over or stop the sandbox's PID 1 (sbx's
// init, which holds capabilities in the sandbox's user namespace) from the payload.
func TestPID1Protected(t *testing.T) {
	requireUserns(t)
	t.Parallel()
	for _, flags := range [][]string{nil, {"--root"}} {
		r := helper(t, flags, "ptrace", "1")
		if got := strings.TrimSpace(r.stdout); r.code != 0 || got == "ok" {
			t.Errorf("%q: ptrace(PTRACE_ATTACH, 1) from the payload: %q\n%s", flags, got, r)
		}
		r = sh(t, `cat /proc/1/mem >/dev/null 2>&1 && echo READ; ls /proc/1/root/ >/dev/null 2>&1 && echo ROOT
			kill -KILL 1; kill -STOP 1; sleep 0.2; echo alive`, flags...)
		if r.code != 0 || strings.TrimSpace(r.stdout) != "alive" {
			t.Errorf("%q: want PID 1 untouchable and the payload alive\n%s", flags, r)
		}
	}
}

// TestStdio tries to break "stdin, stdout and stderr are the payload's".
func TestStdio(t *testing.T) {
	requireUserns(t)
	t.Parallel()
	r := sbxCmd{args: shArgs(`cat; echo to-stderr >&2`), stdin: strings.NewReader("from-stdin\n")}.run(t)
	if r.code != 0 || r.stdout != "from-stdin\n" || r.stderr != "to-stderr\n" {
		t.Errorf("want stdin echoed on stdout and one line on stderr\n%s", r)
	}
	big := strings.Repeat("0123456789abcdef", 1<<16) // 1 MiB through the payload
	r = sbxCmd{args: []string{"run", "--", "cat"}, stdin: strings.NewReader(big)}.run(t)
	if r.code != 0 || r.stdout != big {
		t.Errorf("1 MiB through cat: exit %d, %d bytes out", r.code, len(r.stdout))
	}
	if hasHelpers() {
		if _, ok := firstSubID(t, "/etc/subuid"); ok {
			r = runSbx(t, "run", "--", "true")
			if r.stdout != "" || r.stderr != "" {
				t.Errorf("a quiet payload on a fully equipped host: sbx said something\n%s", r)
			}
		}
	}
}

// TestNamespaceRefused tries to get a sandbox without its own network
// namespace when the host refuses one: sbx must fail closed, name the
// stage and the refusal, and hint at the limits; with --net host, which
// asks for no network namespace, the same host runs it.
func TestNamespaceRefused(t *testing.T) {
	requireUserns(t)
	if _, err := exec.LookPath("unshare"); err != nil {
		mustRun(t, "unshare not found (util-linux)")
	}
	t.Parallel()
	run := func(flags ...string) result {
		// user.max_net_namespaces is per user namespace: 0 in one of
		// the test's own, sbx run inside it.
		script := `echo 0 > /proc/sys/user/max_net_namespaces && exec "$0" run "$@" -- true`
		cmd := exec.Command("unshare", append([]string{"-Ur", "sh", "-c", script, sbxBin}, flags...)...)
		var stdout, stderr strings.Builder
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return result{stdout: stdout.String(), stderr: stderr.String(), code: code}
	}
	r := run()
	if r.code != 125 || !strings.Contains(r.stderr, "sbx: init: create namespaces: no space left on device") ||
		!strings.Contains(r.stderr, "sbx: hint: ") || !strings.Contains(r.stderr, "user.max_net_namespaces") {
		t.Errorf("no network namespace to be had: want exit 125 naming init's refused namespaces, with a hint\n%s", r)
	}
	if strings.Contains(r.stderr, "write id maps") {
		t.Errorf("the id maps' failure reported instead of the namespaces'\n%s", r)
	}
	if r := run("--net", "host"); r.code != 0 {
		t.Errorf("--net host needs no network namespace: want exit 0\n%s", r)
	}
}

// TestSupervisorNonDumpable tries to read the environment of sbx and of
// the sandbox's init as the same user, from the host, while a payload
// runs: both must be non-dumpable (their /proc files root's), so that no
// process of the caller's can read or ptrace what they hold.
func TestSupervisorNonDumpable(t *testing.T) {
	requireUserns(t)
	t.Parallel()
	s := startSbx(t, sbxCmd{args: []string{"run", "--", "sh", "-c", "echo ready; exec sleep 60"}})
	if !s.stdout.waitFor("ready", 10*time.Second) {
		t.Fatalf("the payload did not start; stderr %q", s.stderr)
	}
	launcher := s.cmd.Process.Pid
	// A thread's children: init is the child of the thread that cloned it.
	tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", launcher))
	if err != nil || len(tasks) == 0 {
		t.Fatalf("sbx's threads: %v", err)
	}
	var children []byte
	for _, task := range tasks {
		b, _ := os.ReadFile(task)
		children = append(append(children, b...), ' ')
	}
	pids := map[string]int{"sbx": launcher}
	for _, f := range strings.Fields(string(children)) {
		pid, _ := strconv.Atoi(f)
		if comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid)); strings.TrimSpace(string(comm)) == "sbx-init" {
			pids["init"] = pid
		}
	}
	if pids["init"] == 0 {
		t.Fatalf("no sbx-init among sbx's children %q", children)
	}
	for name, pid := range pids {
		if _, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid)); !errors.Is(err, os.ErrPermission) {
			t.Errorf("%s (pid %d): reading its environ as its own user: %v, want permission denied (non-dumpable)", name, pid, err)
		}
	}
}

// Every namespace of the default sandbox is new (the user and pid ones
// from the clone, the others from init's constructor): none is the
// caller's. --net host shares the network only.
func TestNamespacesNew(t *testing.T) {
	requireUserns(t)
	t.Parallel()
	kinds := []string{"user", "pid", "mnt", "ipc", "uts", "net", "cgroup"}
	host := map[string]string{}
	for _, k := range kinds {
		l, err := os.Readlink("/proc/self/ns/" + k)
		if err != nil {
			t.Fatal(err)
		}
		host[k] = l
	}
	script := `for k in ` + strings.Join(kinds, " ") + `; do echo "$k $(readlink /proc/self/ns/$k)"; done`
	for _, net := range []string{"none", "host"} {
		r := mustSh(t, script, "--net", net)
		got := map[string]string{}
		for _, l := range lines(r.stdout) {
			if k, v, ok := strings.Cut(l, " "); ok {
				got[k] = v
			}
		}
		for _, k := range kinds {
			shared := net == "host" && k == "net"
			if got[k] == "" || (got[k] == host[k]) != shared {
				t.Errorf("--net %s: namespace %s inside %q, the caller's %q; want it shared: %v\n%s", net, k, got[k], host[k], shared, r)
			}
		}
	}
}
