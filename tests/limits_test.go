package tests

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"sbx/tests/testenv"
)

// Resource limits. Three kinds of test:
//   - anywhere: fail-closed errors, and that a run without a limit never
//     contacts the user manager;
//   - with a user manager (the harness starts one on hosts without
//     systemd; the VM has a real session): the scope, the cgroup
//     namespace, the report and the teardown;
//   - TestLimitReal*, with controllers delegated (the VM only; the host
//     harness leaves them out): limits enforced and reported.

type limitReport struct {
	ExitCode int `json:"exit_code"`
	Signal   int `json:"signal"`
	Limits   *struct {
		OOMKilled   bool   `json:"oom_killed"`
		OOMKills    uint64 `json:"oom_kills"`
		MemoryPeak  uint64 `json:"memory_peak_bytes"`
		CPUUsageUS  uint64 `json:"cpu_usage_us"`
		NrThrottled uint64 `json:"cpu_nr_throttled"`
		PidsPeak    uint64 `json:"pids_peak"`
	} `json:"limits"`
}

func readReport(t *testing.T, file string) limitReport {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var r limitReport
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatalf("--json-status: %v\n%s", err, b)
	}
	return r
}

// requireManager needs a systemd user manager reachable the way sbx
// looks for it.
func requireManager(t *testing.T) {
	t.Helper()
	rt := os.Getenv("XDG_RUNTIME_DIR")
	if rt == "" {
		mustRun(t, "no XDG_RUNTIME_DIR: no user manager")
		return
	}
	if _, err := os.Stat(filepath.Join(rt, "systemd", "private")); err != nil {
		mustRun(t, "no user manager at "+rt+": "+err.Error())
	}
}

// requireControllers needs cpu, memory and pids delegated (the VM).
func requireControllers(t *testing.T) {
	t.Helper()
	requireManager(t)
	if os.Getenv("SBX_TEST_VM") != "1" {
		mustRun(t, "no delegated cgroup v2 controllers outside the VM tier")
	}
}

// scopesLeft lists the user manager's sbx scopes and the run leaves in
// the session's subtree, waiting up to d for there to be none.
func scopesLeft(t *testing.T, d time.Duration) string {
	t.Helper()
	var out string
	for deadline := time.Now().Add(d); ; time.Sleep(50 * time.Millisecond) {
		b, err := exec.Command("systemctl", "--user", "list-units", "--all", "--no-legend", "--plain", "sbx-*.scope").CombinedOutput()
		if err != nil {
			t.Fatalf("systemctl --user: %v\n%s", err, b)
		}
		out = strings.TrimSpace(string(b))
		if root := subtreeRoot(t); root != "" {
			leaves, _ := filepath.Glob(filepath.Join(root, "run-*"))
			out = strings.TrimSpace(out + "\n" + strings.Join(leaves, "\n"))
		}
		if out == "" || time.Now().After(deadline) {
			return out
		}
	}
}

// subtreeRoot is the directory of the session's subtree, "" when there
// is none yet.
func subtreeRoot(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(os.Getenv("XDG_RUNTIME_DIR"), "sbx", "subtree"))
	if err != nil {
		return ""
	}
	mount, err := testenv.Cgroup2Mount()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(mount, strings.TrimSpace(string(b)))
}

// TestCgroupSubtree: a launcher inside the user manager's tree gets its
// leaf in the session's subtree, and once the subtree exists, without
// talking to the user manager at all (shown with a runtime dir that has
// the subtree's record and no socket).
func TestCgroupSubtree(t *testing.T) {
	requireUserns(t)
	requireManager(t)
	inScope := func(env []string, args ...string) result {
		t.Helper()
		cmd := exec.Command("systemd-run", append([]string{"--user", "--scope", "--quiet", "--", "env"}, append(env, append([]string{sbxBin}, args...)...)...)...)
		out, err := cmd.Output()
		r := result{stdout: string(out), code: cmd.ProcessState.ExitCode()}
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			r.stderr = string(ee.Stderr)
		}
		return r
	}
	if r := inScope(nil, "run", "--cgroup", "--", "true"); r.code != 0 {
		t.Fatalf("sbx run --cgroup from a user scope\n%s", r)
	}
	root := subtreeRoot(t)
	if root == "" {
		t.Fatalf("no subtree recorded in $XDG_RUNTIME_DIR/sbx/subtree")
	}
	rt := t.TempDir()
	if err := os.Mkdir(filepath.Join(rt, "sbx"), 0o700); err != nil {
		t.Fatal(err)
	}
	rec, _ := os.ReadFile(filepath.Join(os.Getenv("XDG_RUNTIME_DIR"), "sbx", "subtree"))
	if err := os.WriteFile(filepath.Join(rt, "sbx", "subtree"), rec, 0o600); err != nil {
		t.Fatal(err)
	}
	r := inScope([]string{"XDG_RUNTIME_DIR=" + rt, "DBUS_SESSION_BUS_ADDRESS="}, "run", "--cgroup", "--", "cat", "/proc/self/cgroup")
	if r.code != 0 || !strings.Contains(r.stdout, "0::/\n") {
		t.Fatalf("a run in the recorded subtree, with no user manager to talk to\n%s", r)
	}
	if left := scopesLeft(t, 5*time.Second); left != "" {
		t.Errorf("left after the runs:\n%s", left)
	}
}

// TestLimitsNoManagerContact: a run without a limit never talks to the
// user manager; a run with one does (and fails closed when what answers
// is not a user manager).
func TestLimitsNoManagerContact(t *testing.T) {
	requireUserns(t)
	t.Parallel()
	rt, err := os.MkdirTemp("", "sbx-rt-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(rt) })
	if err := os.Mkdir(filepath.Join(rt, "systemd"), 0o700); err != nil {
		t.Fatal(err)
	}
	var contacts atomic.Int32
	for _, p := range []string{filepath.Join(rt, "systemd", "private"), filepath.Join(rt, "bus")} {
		listen(t, "unix", p, func() { contacts.Add(1) })
	}
	env := append(os.Environ(), "XDG_RUNTIME_DIR="+rt, "DBUS_SESSION_BUS_ADDRESS=unix:path="+filepath.Join(rt, "bus"))
	r := sbxCmd{args: []string{"run", "--", "true"}, env: env}.run(t)
	if r.code != 0 || contacts.Load() != 0 {
		t.Fatalf("a run without a limit: exit %d, %d connections to the user manager's sockets\n%s", r.code, contacts.Load(), r)
	}
	r = sbxCmd{args: []string{"run", "--pids", "100", "--", "true"}, env: env}.run(t)
	if r.code != 125 || contacts.Load() == 0 || !strings.HasPrefix(r.stderr, "sbx: ") {
		t.Fatalf("--pids against a socket that is no user manager: exit %d, %d connections\n%s", r.code, contacts.Load(), r)
	}
}

// TestLimitsFailClosed: a limit that cannot be enforced is exit 125
// with what is missing and the fix, never a silent run without it.
func TestLimitsFailClosed(t *testing.T) {
	requireUserns(t)
	t.Parallel()
	env := append(os.Environ(), "XDG_RUNTIME_DIR=/nonexistent", "DBUS_SESSION_BUS_ADDRESS=")
	for _, flags := range [][]string{{"--memory", "64M"}, {"--cpus", "0.5"}, {"--pids", "32"}, {"--cgroup"}} {
		r := sbxCmd{args: append(append([]string{"run"}, flags...), "--", "sh", "-c", "echo ran"), env: env}.run(t)
		lines := r.stderrLines()
		if r.code != 125 || strings.Contains(r.stdout, "ran") || len(lines) != 2 ||
			!strings.Contains(lines[0], "user manager") || !strings.HasPrefix(lines[1], "sbx: hint: ") || !strings.Contains(lines[1], "enable-linger") {
			t.Errorf("%q without a user manager: want 125, the problem and its fix\n%s", flags, r)
		}
	}
	for _, flags := range [][]string{{"--memory", "banana"}, {"--memory", "64"}, {"--cpus", "0"}, {"--pids", "-1"}, {"--pids", "8"}, {"--cpus", "1_0"}, {"--cpus", "1e1"}, {"--memory-swap", "1G"}, {"--cpu-weight", "0"}, {"--memory", "1G", "--memory", "2G"}} {
		r := runSbx(t, append(append([]string{"run"}, flags...), "--", "true")...)
		if r.code != 125 || len(r.stderrLines()) != 1 {
			t.Errorf("%q: want 125 with one line\n%s", flags, r)
		}
	}
}

// TestCgroupScope: with --cgroup the sandbox lives in a scope the user
// manager delegates; its cgroup namespace is rooted at the sandbox's
// leaf; the report counts CPU time; nothing is left afterwards.
func TestCgroupScope(t *testing.T) {
	requireUserns(t)
	requireManager(t)
	status := filepath.Join(t.TempDir(), "st.json")
	r := sh(t, `cat /proc/self/cgroup`, "--cgroup", "--json-status", status)
	if r.code != 0 || !strings.Contains(r.stdout, "0::/\n") {
		t.Fatalf("--cgroup: want the payload at the root of its cgroup namespace\n%s", r)
	}
	if rep := readReport(t, status); rep.Limits == nil || rep.Limits.CPUUsageUS == 0 {
		t.Errorf("--json-status has no cgroup report: %+v", rep)
	}
	if left := scopesLeft(t, 5*time.Second); left != "" {
		t.Errorf("scopes left after the run:\n%s", left)
	}
	// Killed with SIGKILL, with children in the background.
	s := startSbx(t, sbxCmd{args: shArgs(`sleep 100 & sleep 100 & echo ready; wait`, "--cgroup")})
	if !s.stdout.waitFor("ready", 30*time.Second) {
		t.Fatalf("payload never said ready; stderr %q", s.stderr)
	}
	syscall.Kill(s.cmd.Process.Pid, syscall.SIGKILL)
	s.wait(t, 10*time.Second)
	if left := scopesLeft(t, 5*time.Second); left != "" {
		t.Errorf("scopes left after SIGKILL of sbx:\n%s", left)
	}
}

// TestLimitsControllerMissing: a limit whose controller the user
// manager does not delegate (io, here: neither tier delegates it; on
// hosts without systemd, none is) fails closed with the fix.
func TestLimitsControllerMissing(t *testing.T) {
	requireUserns(t)
	requireManager(t)
	r := sh(t, `echo ran`, "--io-weight", "100")
	lines := r.stderrLines()
	if r.code != 125 || strings.Contains(r.stdout, "ran") || len(lines) != 2 || !strings.Contains(lines[0], "io controller") || !strings.Contains(lines[1], "Delegate=") {
		t.Errorf("--io-weight without the io controller: want 125, what is missing and the fix\n%s", r)
	}
	if left := scopesLeft(t, 5*time.Second); left != "" {
		t.Errorf("scopes left after a refused run:\n%s", left)
	}
}

// TestLimitRealMemory: under --memory 64M a program allocating 512 MiB
// is killed, and reported as killed by the limit; 137 is its status.
func TestLimitRealMemory(t *testing.T) {
	requireUserns(t)
	requireControllers(t)
	status := filepath.Join(t.TempDir(), "st.json")
	r := helper(t, []string{"--memory", "64M", "--json-status", status}, "alloc", "512")
	if r.code != 137 || !strings.Contains(r.stderr, "sbx: killed: memory limit 64M reached") {
		t.Errorf("512 MiB under --memory 64M: want 137 and the report\n%s", r)
	}
	rep := readReport(t, status)
	// memory.peak may pass memory.max by the charge that triggered the OOM kill.
	if rep.Limits == nil || !rep.Limits.OOMKilled || rep.Limits.MemoryPeak > 65<<20 {
		t.Errorf("--json-status: %+v", rep.Limits)
	}
	r = helper(t, []string{"--memory", "256M"}, "alloc", "64")
	if r.code != 0 {
		t.Errorf("64 MiB under --memory 256M: want 0\n%s", r)
	}
	// The same from inside the user manager's tree: a leaf of the
	// session's subtree instead of a scope.
	cmd := exec.Command("systemd-run", append([]string{"--user", "--scope", "--quiet", "--", sbxBin, "run"},
		append(helperFlags(), "--memory", "64M", "--", helperExe, helperArg, "alloc", "512")...)...)
	out, _ := cmd.CombinedOutput()
	if code := cmd.ProcessState.ExitCode(); code != 137 || !strings.Contains(string(out), "sbx: killed: memory limit 64M reached") {
		t.Errorf("512 MiB under --memory 64M in the session's subtree: exit %d\n%s", code, out)
	}
}

// TestLimitRealPids: under --pids 32 a fork bomb stops at 32 tasks
// (sbx's init included) and sbx returns.
func TestLimitRealPids(t *testing.T) {
	requireUserns(t)
	requireControllers(t)
	status := filepath.Join(t.TempDir(), "st.json")
	// perl (perl-base is in every Debian) survives a failed fork; sh exits.
	bomb := `my $n = 0; for (1..200) { my $p = fork; next unless defined $p; if (!$p) { sleep 2; exit 0 } $n++ } 1 while wait != -1; print "started $n\n"`
	r := runSbx(t, "run", "--pids", "32", "--json-status", status, "--", "perl", "-e", bomb)
	var n int
	if _, err := fmt.Sscanf(r.stdout, "started %d", &n); r.code != 0 || err != nil || n >= 32 || n < 20 {
		t.Errorf("fork bomb under --pids 32: want it stopped below 32 tasks and sbx back\n%s", r)
	}
	rep := readReport(t, status)
	if rep.Limits == nil || rep.Limits.PidsPeak > 32 || rep.Limits.PidsPeak < 20 {
		t.Errorf("pids peak %+v, want it to reach the limit and stay at or under 32", rep.Limits)
	}
}

// TestLimitRealCPU: under --cpus 0.5 a busy loop is throttled (under
// emulation CPU accounting is approximate: throttling is what is shown).
func TestLimitRealCPU(t *testing.T) {
	requireUserns(t)
	requireControllers(t)
	status := filepath.Join(t.TempDir(), "st.json")
	r := sh(t, `timeout 2 sh -c 'while :; do :; done'; true`, "--cpus", "0.5", "--json-status", status)
	if r.code != 0 {
		t.Fatalf("busy loop under --cpus 0.5\n%s", r)
	}
	if rep := readReport(t, status); rep.Limits == nil || rep.Limits.NrThrottled == 0 {
		t.Errorf("a busy loop under --cpus 0.5 was never throttled: %+v", rep.Limits)
	}
}

// TestLimitRealInherited: asking sbx for a looser limit than the caller
// runs under must not lift the caller's: the sandbox's leaf, elsewhere
// in the tree, gets the tighter one too.
func TestLimitRealInherited(t *testing.T) {
	requireUserns(t)
	requireControllers(t)
	args := []string{"--user", "--wait", "--pipe", "--quiet", "-p", "MemoryMax=64M", "-p", "MemorySwapMax=0", "--", sbxBin, "run"}
	args = append(append(args, helperFlags()...), "--memory", "1G", "--", helperExe, helperArg, "alloc", "300")
	cmd := exec.Command("systemd-run", args...)
	out, _ := cmd.CombinedOutput()
	if code := cmd.ProcessState.ExitCode(); code == 0 || !strings.Contains(string(out), "memory limit 64M reached") {
		t.Errorf("300 MiB under the caller's MemoryMax=64M and --memory 1G: exit %d\n%s", code, out)
	}
}

// TestNoLimits: a profile's limits fail closed where they cannot be
// enforced, unless the user drops them explicitly, which is said.
func TestNoLimits(t *testing.T) {
	requireUserns(t)
	t.Parallel()
	env := append(os.Environ(), "XDG_RUNTIME_DIR=/nonexistent", "DBUS_SESSION_BUS_ADDRESS=")
	r := sbxCmd{args: []string{"run", "--profile", "untrusted", "--", "echo", "ran"}, env: env}.run(t)
	if r.code != 125 || strings.Contains(r.stdout, "ran") {
		t.Errorf("--profile untrusted without a user manager: want 125\n%s", r)
	}
	r = sbxCmd{args: []string{"run", "--profile", "untrusted", "--no-limits", "--", "echo", "ran"}, env: env}.run(t)
	if r.code != 0 || !strings.Contains(r.stdout, "ran") || !strings.Contains(r.stderr, "sbx: warning: --no-limits") {
		t.Errorf("--profile untrusted --no-limits: want it to run, and say so\n%s", r)
	}
	r = runSbx(t, "run", "--no-limits", "--memory", "64M", "--", "true")
	if r.code != 125 || len(r.stderrLines()) != 1 {
		t.Errorf("--no-limits with --memory: want 125 with one line\n%s", r)
	}
}

// TestSubtreeLeafOfStoppedLauncher: the session's holder removes the
// leaves of launchers that are gone, never one whose launcher is only
// stopped (Ctrl-Z, a debugger): the launcher still reads its report
// from the leaf once it runs again.
func TestSubtreeLeafOfStoppedLauncher(t *testing.T) {
	requireUserns(t)
	requireManager(t)
	status := filepath.Join(t.TempDir(), "st.json")
	// systemd-run --scope execs the command in its own process: the pid
	// is sbx's, inside the user manager's tree (the subtree path).
	cmd := exec.Command("systemd-run", "--user", "--scope", "--quiet", "--", sbxBin, "run", "--cgroup", "--json-status", status, "--",
		"sh", "-c", "sleep 1")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	time.Sleep(300 * time.Millisecond)
	syscall.Kill(cmd.Process.Pid, syscall.SIGSTOP)
	// Long enough for the payload to end and the holder to sweep twice
	// past its two-second grace.
	time.Sleep(5 * time.Second)
	syscall.Kill(cmd.Process.Pid, syscall.SIGCONT)
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		syscall.Kill(cmd.Process.Pid, syscall.SIGKILL)
		t.Fatal("sbx did not end")
	}
	if code := cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("exit %d", code)
	}
	if rep := readReport(t, status); rep.Limits == nil || rep.Limits.CPUUsageUS == 0 {
		t.Errorf("the report of a launcher that was stopped lost its counters (was its leaf removed?): %+v", rep.Limits)
	}
	if left := scopesLeft(t, 5*time.Second); left != "" {
		t.Errorf("left after the run:\n%s", left)
	}
}
