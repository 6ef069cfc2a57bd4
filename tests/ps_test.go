package tests

import (
	"encoding/json"
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

// psEntry is what sbx ps --json says of one sandbox.
type psEntry struct {
	ID      string    `json:"id"`
	PID     int       `json:"pid"`
	Started time.Time `json:"started"`
	Argv    []string  `json:"argv"`
	Cgroup  string    `json:"cgroup"`
	Usage   struct {
		Known  bool   `json:"known"`
		Memory uint64 `json:"memory_bytes"`
		Pids   uint64 `json:"pids"`
	} `json:"usage"`
}

// runtimeDir is a fresh $XDG_RUNTIME_DIR of the test's own: sbx ps sees
// only the sandboxes this test starts.
func runtimeDir(t *testing.T) []string {
	t.Helper()
	rt := t.TempDir()
	if err := os.Chmod(rt, 0o700); err != nil {
		t.Fatal(err)
	}
	return environ("XDG_RUNTIME_DIR=" + rt)
}

func psList(t *testing.T, env []string) []psEntry {
	t.Helper()
	r := sbxCmd{args: []string{"ps", "--json"}, env: env}.run(t)
	if r.code != 0 {
		t.Fatalf("sbx ps --json: want exit 0\n%s", r)
	}
	var out []psEntry
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
		t.Fatalf("sbx ps --json: %v\n%s", err, r)
	}
	return out
}

// startTracked starts sbx run in the background and waits until sbx ps
// lists it (the payload prints "up" first).
func startTracked(t *testing.T, env []string, flags []string, script string) (*started, psEntry) {
	t.Helper()
	s := startSbx(t, sbxCmd{args: shArgs("echo up; "+script, flags...), env: env})
	if !s.stdout.waitFor("up", 10*time.Second) {
		t.Fatalf("the payload did not start\n%s\n%s", s.stdout.all(), s.stderr)
	}
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		for _, e := range psList(t, env) {
			if e.PID == s.cmd.Process.Pid {
				return s, e
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("sbx ps does not list sbx run (pid %d)", s.cmd.Process.Pid)
	return nil, psEntry{}
}

func sbxExec(t *testing.T, env []string, args ...string) result {
	t.Helper()
	return sbxCmd{args: append([]string{"exec"}, args...), env: env}.run(t)
}

func TestPsExecStop(t *testing.T) {
	requireUserns(t)
	t.Parallel()
	env := runtimeDir(t)
	if got := psList(t, env); len(got) != 0 {
		t.Fatalf("sbx ps lists %v before any sandbox ran", got)
	}
	s, e := startTracked(t, env, nil, "echo payload > /tmp/mark; exec sleep 60")
	if len(e.ID) != 12 || !strings.HasSuffix(strings.Join(e.Argv, " "), "exec sleep 60") || time.Since(e.Started) > time.Minute {
		t.Errorf("ps entry %+v", e)
	}
	table := sbxCmd{args: []string{"ps"}, env: env}.run(t)
	if table.code != 0 || !strings.Contains(table.stdout, e.ID) || !strings.Contains(table.stdout, strconv.Itoa(e.PID)) || !strings.HasPrefix(table.stdout, "ID ") {
		t.Errorf("sbx ps: want a table with the sandbox\n%s", table)
	}

	t.Run("same sandbox", func(t *testing.T) {
		// The view (its private /tmp), the pid namespace, the filter,
		// no_new_privs, and the payload's Landlock domain (a signal to
		// the payload is let through only within it).
		r := sbxExec(t, env, e.ID[:6], "--", "/bin/sh", "-c",
			`cat /tmp/mark; cat /proc/1/comm; grep -E '^(Seccomp|NoNewPrivs):' /proc/self/status | tr -s '\t' ' '
			pid=$(pgrep -x sleep); kill -0 "$pid" && echo signal-ok; echo "cwd=$(pwd)"`)
		want := []string{"payload", "sbx-init", "NoNewPrivs: 1", "Seccomp: 2", "signal-ok", "cwd=" + processCwd}
		if r.code != 0 || !equalLines(r.stdout, want) {
			t.Errorf("sbx exec: want %q\n%s", want, r)
		}
	})
	t.Run("exit status", func(t *testing.T) {
		if r := sbxExec(t, env, e.ID, "--", "/bin/sh", "-c", "exit 7"); r.code != 7 {
			t.Errorf("want exit 7\n%s", r)
		}
		if r := sbxExec(t, env, e.ID, "--", "/bin/sh", "-c", "kill -TERM $$"); r.code != 128+15 {
			t.Errorf("want exit 143\n%s", r)
		}
		if r := sbxExec(t, env, e.ID, "--", "no-such-command"); r.code != 127 || !strings.Contains(r.stderr, "not found") {
			t.Errorf("want exit 127\n%s", r)
		}
	})
	t.Run("environment and directory", func(t *testing.T) {
		r := sbxExec(t, env, "--env", "EXTRA=1", "--chdir", "/tmp", e.ID, "--", "/bin/sh", "-c", `echo "$EXTRA $(pwd)"`)
		if r.code != 0 || r.stdout != "1 /tmp\n" {
			t.Errorf("want %q\n%s", "1 /tmp", r)
		}
	})
	t.Run("stdin and output", func(t *testing.T) {
		r := sbxCmd{args: []string{"exec", e.ID, "--", "/bin/sh", "-c", "tr a-z A-Z; echo err >&2"}, env: env, stdin: strings.NewReader("hello\n")}.run(t)
		if r.code != 0 || r.stdout != "HELLO\n" || !strings.Contains(r.stderr, "err") {
			t.Errorf("want HELLO on stdout and err on stderr\n%s", r)
		}
	})
	t.Run("a directory descriptor", func(t *testing.T) {
		dir, err := os.Open("/")
		if err != nil {
			t.Fatal(err)
		}
		defer dir.Close()
		r := sbxCmd{args: []string{"exec", e.ID, "--", "/bin/ls", "/proc/self/fd/0/"}, env: env, stdin: dir}.run(t)
		if r.code != 125 || !strings.Contains(r.stderr, "descriptor 0") {
			t.Errorf("stdin a host directory: want exit 125 naming descriptor 0\n%s", r)
		}
	})
	t.Run("a client that goes takes its command", func(t *testing.T) {
		c := startSbx(t, sbxCmd{args: []string{"exec", e.ID, "--", "/bin/sh", "-c", "echo up; exec sleep 61"}, env: env})
		if !c.stdout.waitFor("up", 10*time.Second) {
			t.Fatalf("sbx exec did not start\n%s", c.stderr)
		}
		syscall.Kill(c.cmd.Process.Pid, syscall.SIGKILL)
		c.wait(t, 5*time.Second)
		deadline := time.Now().Add(3 * time.Second)
		for {
			r := sbxExec(t, env, e.ID, "--", "/bin/sh", "-c", "pgrep -fx 'sleep 61' || echo none")
			if r.stdout == "none\n" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the command of a killed sbx exec still runs\n%s", r)
			}
			time.Sleep(50 * time.Millisecond)
		}
	})
	t.Run("bad ids", func(t *testing.T) {
		for _, id := range []string{"zzzz", ""} {
			r := sbxExec(t, env, id, "--", "true")
			if r.code != 125 || len(r.stderrLines()) != 1 {
				t.Errorf("sbx exec %q: want exit 125 and one line\n%s", id, r)
			}
		}
		if r := (sbxCmd{args: []string{"stop", "zzzz"}, env: env}).run(t); r.code != 125 || !strings.Contains(r.stderr, `no running sandbox "zzzz"`) {
			t.Errorf("sbx stop zzzz: want exit 125\n%s", r)
		}
	})

	// Stop: SIGTERM reaches the payload, sbx run ends with it, and the
	// record goes.
	if r := (sbxCmd{args: []string{"stop", e.ID}, env: env}).run(t); r.code != 0 {
		t.Fatalf("sbx stop: want exit 0\n%s", r)
	}
	if code := s.wait(t, 5*time.Second); code != 128+15 {
		t.Errorf("sbx run after sbx stop: exit %d, want 143", code)
	}
	if got := psList(t, env); len(got) != 0 {
		t.Errorf("sbx ps after sbx stop: %v", got)
	}
	rt := strings.TrimPrefix(env[len(env)-1], "XDG_RUNTIME_DIR=")
	if left, _ := os.ReadDir(filepath.Join(rt, "sbx", "run")); len(left) != 0 {
		t.Errorf("records left after sbx stop: %v", left)
	}
}

func equalLines(got string, want []string) bool {
	g := lines(got)
	if len(g) != len(want) {
		return false
	}
	for i := range g {
		if g[i] != want[i] {
			return false
		}
	}
	return true
}

// A payload that ignores SIGTERM is killed after --time, with all of
// its sandbox.
func TestStopForce(t *testing.T) {
	requireUserns(t)
	t.Parallel()
	env := runtimeDir(t)
	s, e := startTracked(t, env, nil, `trap "" TERM; sleep 60 & wait; wait`)
	begin := time.Now()
	if r := (sbxCmd{args: []string{"stop", "--time", "1", e.ID}, env: env}).run(t); r.code != 0 {
		t.Fatalf("sbx stop --time 1: want exit 0\n%s", r)
	}
	if took := time.Since(begin); took < time.Second {
		t.Errorf("sbx stop returned after %v, before its grace", took)
	}
	if code := s.wait(t, 5*time.Second); code != 128+9 {
		t.Errorf("sbx run: exit %d, want 137 (killed)", code)
	}
	if got := psList(t, env); len(got) != 0 {
		t.Errorf("sbx ps after sbx stop: %v", got)
	}
}

// The record of a SIGKILLed sbx run is gone at the next sbx ps; the
// sandbox itself died with it.
func TestStaleRecord(t *testing.T) {
	requireUserns(t)
	t.Parallel()
	env := runtimeDir(t)
	s, e := startTracked(t, env, nil, "exec sleep 60")
	syscall.Kill(s.cmd.Process.Pid, syscall.SIGKILL)
	s.wait(t, 5*time.Second)
	if got := psList(t, env); len(got) != 0 {
		t.Errorf("sbx ps lists a sandbox whose sbx was killed: %v", got)
	}
	rt := strings.TrimPrefix(env[len(env)-1], "XDG_RUNTIME_DIR=")
	if _, err := os.Stat(filepath.Join(rt, "sbx", "run", e.ID)); !os.IsNotExist(err) {
		t.Errorf("the stale record is still there: %v", err)
	}
}

// One sandbox must not reach another's exec socket: a view that shows
// $XDG_RUNTIME_DIR hides sbx's state in it.
func TestStateHiddenFromSandboxes(t *testing.T) {
	requireUserns(t)
	t.Parallel()
	env := runtimeDir(t)
	rt := strings.TrimPrefix(env[len(env)-1], "XDG_RUNTIME_DIR=")
	_, e := startTracked(t, env, nil, "exec sleep 60")
	sock := filepath.Join(rt, "sbx", "run", e.ID, "exec.sock")
	if _, err := os.Stat(sock); err != nil {
		t.Fatalf("no exec socket on the host: %v", err)
	}
	for _, flag := range []string{"--rw", "--ro"} {
		r := sbxCmd{args: append(shArgs(`ls -A "$0/sbx" | wc -l; test -e "$1" && echo REACHABLE; true`, flag, rt), rt, sock), env: env}.run(t)
		if r.code != 0 || strings.TrimSpace(r.stdout) != "0" {
			t.Errorf("%s %s: sbx's state is visible inside\n%s", flag, rt, r)
		}
	}
	// By another name: a link to the runtime directory.
	link := filepath.Join(t.TempDir(), "rt")
	if err := os.Symlink(rt, link); err != nil {
		t.Fatal(err)
	}
	for _, flag := range []string{"--rw", "--ro"} {
		r := sbxCmd{args: shArgs(`ls -A /x/sbx | wc -l; test -e /x/sbx/run && echo REACHABLE; true`, flag, link+":/x"), env: env}.run(t)
		if r.code != 0 || strings.TrimSpace(r.stdout) != "0" {
			t.Errorf("%s %s:/x (a link to %s): sbx's state is visible inside\n%s", flag, link, rt, r)
		}
	}
}

// With a terminal, sbx exec gives the command a pseudo-terminal of the
// sandbox's (not the caller's), of the caller's size.
func TestExecTerminal(t *testing.T) {
	requireUserns(t)
	t.Parallel()
	env := runtimeDir(t)
	_, e := startTracked(t, env, nil, "exec sleep 60")
	o := startInTerm(t, 33, 101, "/usr/bin/env", env[len(env)-1], sbxBin, "exec", e.ID, "--", "/bin/sh", "-c", `echo "tty=$(tty) size=$(stty size)"`)
	o.waitFor(t, "size=33 101", 10*time.Second)
	if code := o.wait(t, 5*time.Second); code != 0 {
		t.Errorf("sbx exec in a terminal: exit %d\n%q", code, o.output())
	}
	if out := o.output(); !strings.Contains(out, "tty=/dev/pts/") {
		t.Errorf("the command's terminal is not one of the sandbox's devpts: %q", out)
	}
}

// Running sandboxes' ids complete after sbx stop and sbx exec (bash).
func TestCompletionIDs(t *testing.T) {
	requireUserns(t)
	t.Parallel()
	env := runtimeDir(t)
	_, e := startTracked(t, env, nil, "exec sleep 60")
	dir := t.TempDir()
	if err := os.Symlink(sbxBin, filepath.Join(dir, "sbx")); err != nil {
		t.Fatal(err)
	}
	env = append(env, "PATH="+dir+":"+os.Getenv("PATH"))
	for _, verb := range []string{"stop", "exec"} {
		script := "source <(sbx completion bash) || exit 1\nCOMP_WORDS=(sbx " + verb + " '')\nCOMP_CWORD=2\n_sbx\nprintf '%s\\n' \"${COMPREPLY[@]}\""
		out := shellOut(t, env, "bash", "-c", script)
		if !slices.Contains(strings.Fields(out), e.ID) {
			t.Errorf("sbx %s <TAB>: want %s among %q", verb, e.ID, out)
		}
	}
}

// With --root, sbx exec's command joins the payload's user namespace:
// root there, as the payload is, and the same namespace (the sandbox
// allows no second one).
func TestExecRoot(t *testing.T) {
	requireUserns(t)
	t.Parallel()
	env := runtimeDir(t)
	_, e := startTracked(t, env, []string{"--root"}, "exec sleep 60")
	r := sbxExec(t, env, e.ID, "--", "/bin/sh", "-c",
		`id -u; [ "$(readlink /proc/self/ns/user)" = "$(readlink /proc/$(pgrep -x sleep)/ns/user)" ] && echo same-userns
		touch /tmp/f && chown 1:1 /tmp/f && echo chown-ok`)
	if want := []string{"0", "same-userns", "chown-ok"}; r.code != 0 || !equalLines(r.stdout, want) {
		t.Errorf("sbx exec in a --root sandbox: want %q\n%s", want, r)
	}
}

// A sandbox with a writable grant above $XDG_RUNTIME_DIR can move the
// real one away and plant a record of its own: sbx ps must not list it,
// sbx exec must not hand it the caller's stdio, and sbx stop must not
// signal the process it names.
func TestPlantedRecord(t *testing.T) {
	requireUserns(t)
	t.Parallel()
	parent := t.TempDir()
	rt := filepath.Join(parent, "rt")
	if err := os.Mkdir(rt, 0o700); err != nil {
		t.Fatal(err)
	}
	env := environ("XDG_RUNTIME_DIR=" + rt)
	victim := exec.Command("sleep", "60")
	if err := victim.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { victim.Process.Kill(); victim.Wait() }()
	// What the sandbox does: rename the runtime directory, then plant.
	script := fmt.Sprintf(`mv %[1]q %[1]q.old && mkdir -m 700 -p %[1]q/sbx/run && chmod 700 %[1]q %[1]q/sbx && exec "$0" %[2]s fake-record %[1]q/sbx/run %[3]d`,
		rt, helperArg, victim.Process.Pid)
	plant := startSbx(t, sbxCmd{args: append(shArgs(script, append(helperFlags(), "--rw", parent)...), helperExe), env: env})
	if !plant.stdout.waitFor("planted", 10*time.Second) {
		t.Fatalf("the sandbox could not plant a record (the test proves nothing)\n%s\n%s", plant.stdout.all(), plant.stderr)
	}
	if got := psList(t, env); len(got) != 0 {
		t.Errorf("sbx ps lists a planted record: %+v", got)
	}
	if r := sbxExec(t, env, "0000fake0000", "--", "id"); r.code != 125 {
		t.Errorf("sbx exec into a planted record: want exit 125\n%s", r)
	}
	if r := (sbxCmd{args: []string{"stop", "--time", "1", "0000fake0000"}, env: env}).run(t); r.code != 125 {
		t.Errorf("sbx stop of a planted record: want exit 125\n%s", r)
	}
	// Still running (a zombie, our child unwaited, would still take signal 0).
	if st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", victim.Process.Pid)); err != nil || strings.Contains(string(st), ") Z ") {
		t.Errorf("the process the planted record named was killed: %q %v", st, err)
	}
	time.Sleep(100 * time.Millisecond) // what the fake server might still print
	if out := plant.stdout.all(); strings.Contains(out, "GOT FDS") {
		t.Errorf("the planted server received the caller's descriptors:\n%s", out)
	}
}

// On the first run with a runtime directory, sbx/ in it does not exist
// yet: it must be there, and masked, before the view that shows the
// runtime directory is built, or later sandboxes' sockets are in sight.
func TestStateHiddenOnFirstRun(t *testing.T) {
	requireUserns(t)
	t.Parallel()
	for range 10 {
		env := runtimeDir(t)
		rt := strings.TrimPrefix(env[len(env)-1], "XDG_RUNTIME_DIR=")
		r := sbxCmd{args: append(shArgs(`grep -c " $0/sbx " /proc/self/mountinfo`, "--ro", rt), rt), env: env}.run(t)
		if r.code != 0 || strings.TrimSpace(r.stdout) != "1" {
			t.Fatalf("first run with %s shown: want sbx/ masked in it (one mount on %s/sbx)\n%s", rt, rt, r)
		}
	}
}

// A sandbox that sees another's exec.sock (through a hard link to it,
// which no hide of a path can match) is turned away by the sbx run that
// serves it.
func TestExecSocketRefusesSandboxes(t *testing.T) {
	requireUserns(t)
	t.Parallel()
	env := runtimeDir(t)
	rt := strings.TrimPrefix(env[len(env)-1], "XDG_RUNTIME_DIR=")
	_, e := startTracked(t, env, nil, "exec sleep 60")
	// The view hides sbx's state under every name a path gives it, but a
	// hard link to the socket is another file name altogether.
	dir := t.TempDir()
	if err := os.Link(filepath.Join(rt, "sbx", "run", e.ID, "exec.sock"), filepath.Join(dir, "exec.sock")); err != nil {
		t.Fatalf("a hard link to the exec socket: %v", err)
	}
	sock := "/x/exec.sock"
	r := sbxCmd{args: append(append([]string{"run"}, helperFlags()...), "--ro", dir+":/x", "--", helperExe, helperArg, "exec-connect", sock), env: env}.run(t)
	if r.code != 0 || strings.TrimSpace(r.stdout) != "refused" || strings.Contains(r.stdout, "PWNED") {
		t.Errorf("a sandbox asked another for a command: want it refused\n%s", r)
	}
}

// Descriptors the payload keeps (--preserve-fd) are the payload's: a
// command of sbx exec gets its own stdin, stdout and stderr only.
func TestExecKeptDescriptors(t *testing.T) {
	requireUserns(t)
	t.Parallel()
	env := runtimeDir(t)
	f, err := os.Open("/etc/hostname")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s := startSbx(t, sbxCmd{args: shArgs("echo up; exec sleep 60", "--preserve-fd", "3"), env: env, extra: []*os.File{f}})
	if !s.stdout.waitFor("up", 10*time.Second) {
		t.Fatalf("the payload did not start\n%s", s.stderr)
	}
	var id string
	for deadline := time.Now().Add(5 * time.Second); id == "" && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		for _, e := range psList(t, env) {
			if e.PID == s.cmd.Process.Pid {
				id = e.ID
			}
		}
	}
	r := sbxExec(t, env, id, "--", "/bin/ls", "/proc/self/fd/3")
	if r.code == 0 {
		t.Errorf("sbx exec's command has the payload's descriptor 3\n%s", r)
	}
}

// Without $XDG_RUNTIME_DIR (su, sudo -u, cron), sandboxes are recorded
// all the same: under /run/user/UID, or a private /tmp/sbx-UID.
func TestPsWithoutRuntimeDir(t *testing.T) {
	requireUserns(t)
	t.Parallel()
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "XDG_RUNTIME_DIR=") {
			env = append(env, kv)
		}
	}
	s, e := startTracked(t, env, nil, "exec sleep 60")
	if r := sbxExec(t, env, e.ID, "--", "/bin/true"); r.code != 0 {
		t.Errorf("sbx exec without $XDG_RUNTIME_DIR: want exit 0\n%s", r)
	}
	if r := (sbxCmd{args: []string{"stop", e.ID}, env: env}).run(t); r.code != 0 {
		t.Errorf("sbx stop without $XDG_RUNTIME_DIR: want exit 0\n%s", r)
	}
	s.wait(t, 5*time.Second)
}

// A command of sbx exec that stopped itself still ends when sbx exec is
// told to end: the signal is followed by SIGCONT, as sbx run's is.
func TestExecStoppedCommandEnds(t *testing.T) {
	requireUserns(t)
	t.Parallel()
	env := runtimeDir(t)
	_, e := startTracked(t, env, nil, "exec sleep 60")
	c := startSbx(t, sbxCmd{args: []string{"exec", e.ID, "--", "/bin/sh", "-c", "echo up; kill -STOP $$; sleep 60"}, env: env})
	if !c.stdout.waitFor("up", 10*time.Second) {
		t.Fatalf("sbx exec did not start\n%s", c.stderr)
	}
	// Wait until the command has stopped (state T inside the sandbox).
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		r := sbxExec(t, env, e.ID, "--", "/bin/sh", "-c", `grep -l '^State:.T' /proc/[0-9]*/status || true`)
		if strings.TrimSpace(r.stdout) != "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the command did not stop itself\n%s", r)
		}
	}
	c.cmd.Process.Signal(syscall.SIGTERM)
	if code := c.wait(t, 5*time.Second); code != 128+15 {
		t.Errorf("sbx exec of a stopped command, after SIGTERM: exit %d, want 143", code)
	}
}

// TestPsBadEntries: entries of the records directory that are not
// records (a file; a record with an empty or broken state.json, as a
// run killed at the wrong moment or a full disk leaves) do not keep
// sbx ps, exec and stop from the sandboxes that run. The dead record is
// swept; what sbx did not make is left alone.
func TestPsBadEntries(t *testing.T) {
	requireUserns(t)
	t.Parallel()
	env := runtimeDir(t)
	s, e := startTracked(t, env, nil, "exec sleep 60")
	run := filepath.Join(strings.TrimPrefix(env[len(env)-1], "XDG_RUNTIME_DIR="), "sbx", "run")
	file := filepath.Join(run, "a-file")
	writeFile(t, file, "", 0o600)
	var records []string
	for i, state := range []string{"", "{not json", `{"id": 7}`} {
		d := filepath.Join(run, fmt.Sprintf("%012x", 0xdead00+i))
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(d, "state.json"), state, 0o600)
		records = append(records, d)
	}
	foreign := filepath.Join(run, "not-sbx")
	if err := os.Mkdir(foreign, 0o700); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(foreign, "state.json"), "", 0o600)

	if got := psList(t, env); len(got) != 1 || got[0].ID != e.ID {
		t.Errorf("sbx ps: want the one sandbox %s, got %+v", e.ID, got)
	}
	if r := sbxExec(t, env, e.ID[:5], "--", "/bin/sh", "-c", "echo in"); r.code != 0 || r.stdout != "in\n" {
		t.Errorf("sbx exec: want exit 0 and %q\n%s", "in", r)
	}
	if r := (sbxCmd{args: []string{"stop", "--time", "5", e.ID}, env: env}).run(t); r.code != 0 {
		t.Errorf("sbx stop: want exit 0\n%s", r)
	}
	s.wait(t, 10*time.Second)
	for _, d := range records {
		if _, err := os.Lstat(d); !os.IsNotExist(err) {
			t.Errorf("the dead record %s is still there (%v)", d, err)
		}
	}
	for _, p := range []string{file, foreign} {
		if _, err := os.Lstat(p); err != nil {
			t.Errorf("%s, not sbx's, was removed: %v", p, err)
		}
	}
}
