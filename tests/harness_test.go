// Package tests holds black-box suites that drive the built sbx binary.
//
// The rootless path is the path under test: run as root (as CI does),
// TestMain prepares two unprivileged users and re-runs this test binary as
// each of them:
//
//	root: build sbx ─► ensure sbxtest (with subuid/subgid ranges)
//	                 ─► ensure sbxnosub (without any)
//	                 ─► copy tests.test and sbx into a 0755 dir under /tmp
//	                 ─► exec tests.test as sbxtest  (all tests but TestFallbackNoRanges)
//	                 ─► exec tests.test as sbxnosub (TestFallbackNoRanges only)
//
// Run as anyone else, the tests run as that user directly.
//
// Environment:
//
//	SBX_BIN=/path/sbx       test this binary instead of building ./cmd/sbx
//	SBX_TEST_MUST_RUN=1     a test that cannot run on this host fails instead of skipping
//
// The test binary doubles as a helper inside the sandbox: its directory is
// bound read-only at /sbxhelper and `tests.test sbx-helper VERB ...` runs
// one of the verbs in helper_test.go.
package tests

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"sbx/tests/testenv"
)

const (
	mustRunEnv   = "SBX_TEST_MUST_RUN"
	binEnv       = "SBX_BIN"
	helperArg    = "sbx-helper"
	helperMount  = "/sbxhelper"
	userWithSub  = "sbxtest"
	userNoSub    = "sbxnosub"
	noRangesTest = "TestFallbackNoRanges"
	defaultGuard = 30 * time.Second
	waitDelay    = 3 * time.Second // how long sbx's stdout may stay open after it exits
)

// Set once by TestMain, read-only afterwards.
var (
	sbxBin     string // absolute path of the binary under test
	helperDir  string // host directory holding this test binary
	helperExe  string // the test binary's path inside a sandbox that binds helperDir at helperMount
	processCwd string // the test process's working directory
	chelperErr error  // why helperDir has no C helper (testenv/chelper.go), or nil
)

func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == helperArg {
		os.Exit(helperMain(os.Args[2:]))
	}
	flag.Parse()
	if os.Geteuid() == 0 {
		os.Exit(runAsTestUsers())
	}
	cleanup, err := setupLocal()
	if err != nil {
		fmt.Fprintf(os.Stderr, "tests: %v\n", err)
		os.Exit(2)
	}
	code := m.Run()
	cleanup()
	os.Exit(code)
}

// setupLocal prepares the globals for a run as the current (unprivileged) user.
func setupLocal() (cleanup func(), err error) {
	cleanup = func() {}
	exe, err := os.Executable()
	if err != nil {
		return cleanup, fmt.Errorf("locate test binary: %w", err)
	}
	helperDir = filepath.Dir(exe)
	helperExe = filepath.Join(helperMount, filepath.Base(exe))
	if processCwd, err = os.Getwd(); err != nil {
		return cleanup, fmt.Errorf("getwd: %w", err)
	}
	// As root, runAsTestUsers built it next to the copy of this binary.
	if c := filepath.Join(helperDir, testenv.CHelperName); !fileExists(c) {
		chelperErr = testenv.BuildCHelper(c)
	}
	if bin := os.Getenv(binEnv); bin != "" {
		sbxBin, err = filepath.Abs(bin)
		return cleanup, err
	}
	dir, err := os.MkdirTemp("", "sbx-bin-")
	if err != nil {
		return cleanup, err
	}
	cleanup = func() { os.RemoveAll(dir) }
	sbxBin = filepath.Join(dir, "sbx")
	if err := buildSbx(sbxBin); err != nil {
		cleanup()
		return func() {}, err
	}
	return cleanup, nil
}

// buildSbx builds ./cmd/sbx of the module that contains the working directory.
func buildSbx(out string) error {
	root, err := testenv.ModuleRoot()
	if err != nil {
		return fmt.Errorf("%w; set %s", err, binEnv)
	}
	return testenv.BuildSbx(root, "go", out)
}

// runAsTestUsers is TestMain as root: it never runs a test itself.
func runAsTestUsers() int {
	fail := func(err error) int {
		fmt.Fprintf(os.Stderr, "tests: %v\n", err)
		return 2
	}
	quiet := func(string, ...any) {}
	withSub, err := testenv.EnsureUser(userWithSub, true, quiet)
	if err != nil {
		return fail(err)
	}
	noSub, err := testenv.EnsureUser(userNoSub, false, quiet)
	if err != nil {
		return fail(err)
	}

	exe, err := os.Executable()
	if err != nil {
		return fail(err)
	}
	copies := map[string]string{"tests.test": exe}
	bin := os.Getenv(binEnv)
	if bin != "" {
		copies["sbx"] = bin
	}
	dir, err := testenv.CopyExecutables("sbx-tests-", copies)
	if err != nil {
		return fail(err)
	}
	defer os.RemoveAll(dir)
	testCopy, sbxCopy := filepath.Join(dir, "tests.test"), filepath.Join(dir, "sbx")
	if bin == "" {
		if err := buildSbx(sbxCopy); err != nil {
			return fail(err)
		}
		if err := os.Chmod(sbxCopy, 0o755); err != nil {
			return fail(err)
		}
	}

	if err := testenv.BuildCHelper(filepath.Join(dir, testenv.CHelperName)); err != nil {
		fmt.Printf("=== harness: no C helper, the tests that need it skip: %v\n", err)
	}

	pass, run, skip := testFlags()
	failed := false

	// The host tier of the limit tests: a real systemd --user for the
	// test user (this host's PID 1 is not systemd). Its cgroup v2 has no
	// controllers, so the tests that need them run in the VM tier only.
	mgr, err := testenv.StartUserManager(withSub)
	if err != nil {
		fmt.Printf("=== harness: no user manager for %s: %v\n", withSub.Name, err)
	} else {
		fmt.Printf("=== harness: systemd --user for %s, XDG_RUNTIME_DIR=%s, clients in %s\n", withSub.Name, mgr.RuntimeDir, mgr.Clients)
		defer mgr.Stop()
	}
	if skip != "" {
		skip += "|"
	}
	skip += "^TestLimitReal"

	// First run: everything but TestFallbackNoRanges, as the user with ranges.
	args := append([]string{}, pass...)
	if run != "" {
		args = append(args, "-test.run="+run)
	}
	skipFirst := "^" + noRangesTest + "$"
	if skip != "" {
		// -test.skip splits on '/' per level; a top-level alternative is enough here.
		skipFirst = skip + "|" + skipFirst
	}
	args = append(args, "-test.skip="+skipFirst)
	if code := runAs(withSub, testCopy, sbxCopy, args, mgr); code != 0 {
		failed = true
	}

	// Second run: TestFallbackNoRanges as the user without ranges, unless filtered out.
	if selects(run, noRangesTest, true) && !selects(skip, noRangesTest, false) {
		args := append(append([]string{}, pass...), "-test.run=^"+noRangesTest+"$")
		if code := runAs(noSub, testCopy, sbxCopy, args, nil); code != 0 {
			failed = true
		}
	}
	if failed {
		return 1
	}
	return 0
}

// testFlags returns the -test.* flags set on the command line that a
// re-run as another user can honour, plus the -test.run and -test.skip values.
func testFlags() (pass []string, run, skip string) {
	// Paths the test users cannot write (go test's cache log, profiles).
	drop := map[string]bool{
		"test.testlogfile": true, "test.gocoverdir": true, "test.coverprofile": true,
		"test.cpuprofile": true, "test.memprofile": true, "test.blockprofile": true,
		"test.mutexprofile": true, "test.trace": true, "test.outputdir": true,
		"test.fuzzcachedir": true,
	}
	flag.Visit(func(f *flag.Flag) {
		switch {
		case f.Name == "test.run":
			run = f.Value.String()
		case f.Name == "test.skip":
			skip = f.Value.String()
		case strings.HasPrefix(f.Name, "test.") && !drop[f.Name]:
			pass = append(pass, "-"+f.Name+"="+f.Value.String())
		}
	})
	return pass, run, skip
}

// selects reports whether the top-level part of a -test.run/-test.skip
// pattern matches name; an empty pattern yields ifEmpty.
func selects(pattern, name string, ifEmpty bool) bool {
	if pattern == "" {
		return ifEmpty
	}
	top, _, _ := strings.Cut(pattern, "/")
	re, err := regexp.Compile(top)
	if err != nil {
		return ifEmpty
	}
	return re.MatchString(name)
}

// runAs runs the test binary as u; with mgr, inside the user manager's
// clients cgroup and with its XDG_RUNTIME_DIR.
func runAs(u testenv.User, testBin, sbx string, args []string, mgr *testenv.UserManager) int {
	cwd, err := os.MkdirTemp("", "sbx-cwd-")
	if err != nil {
		fmt.Fprintf(os.Stderr, "tests: %v\n", err)
		return 2
	}
	defer os.RemoveAll(cwd)
	if err := os.Chown(cwd, int(u.UID), int(u.GID)); err != nil {
		fmt.Fprintf(os.Stderr, "tests: %v\n", err)
		return 2
	}
	fmt.Printf("=== harness: %s as %s (uid %d) in %s\n", strings.Join(args, " "), u.Name, u.UID, cwd)
	cmd := testenv.Command(u, testBin, args...)
	cmd.Dir = cwd
	cmd.Stdout = os.Stdout
	cmd.Stderr = os.Stderr
	cmd.Env = append(cmd.Env, binEnv+"="+sbx)
	if v, ok := os.LookupEnv(mustRunEnv); ok {
		cmd.Env = append(cmd.Env, mustRunEnv+"="+v)
	}
	if mgr != nil {
		cg, err := mgr.ClientsFD()
		if err != nil {
			fmt.Fprintf(os.Stderr, "tests: %v\n", err)
			return 2
		}
		defer cg.Close()
		cmd.SysProcAttr.UseCgroupFD, cmd.SysProcAttr.CgroupFD = true, int(cg.Fd())
		cmd.Env = append(cmd.Env, "XDG_RUNTIME_DIR="+mgr.RuntimeDir)
	}
	if err := cmd.Run(); err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			fmt.Printf("=== harness: run as %s failed: %v\n", u.Name, err)
			return ee.ExitCode()
		}
		fmt.Fprintf(os.Stderr, "tests: run as %s: %v\n", u.Name, err)
		return 2
	}
	return 0
}

// mustRun skips the test, or fails it when CI forbids skips.
func mustRun(t *testing.T, why string) {
	t.Helper()
	if os.Getenv(mustRunEnv) == "1" {
		t.Fatalf("cannot run (and %s=1): %s", mustRunEnv, why)
	}
	t.Skipf("skipped: %s (set %s=1 to make this fatal)", why, mustRunEnv)
}

var (
	usernsOnce sync.Once
	usernsErr  error
)

// requireUserns skips unless this host lets the current user create a user
// namespace: a fact about the host, not about sbx.
func requireUserns(t *testing.T) {
	t.Helper()
	usernsOnce.Do(func() {
		cmd := exec.Command("/bin/true")
		cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWUSER}
		usernsErr = cmd.Run()
	})
	if usernsErr != nil {
		mustRun(t, fmt.Sprintf("this host does not let uid %d create a user namespace: %v", os.Getuid(), usernsErr))
	}
}

// result is the outcome of one sbx invocation.
type result struct {
	stdout, stderr string
	code           int
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
}

// stderrLines returns stderr split into non-empty lines.
func (r result) stderrLines() []string {
	var out []string
	for _, l := range strings.Split(r.stderr, "\n") {
		if strings.TrimSpace(l) != "" {
			out = append(out, l)
		}
	}
	return out
}

// sbxCmd describes one invocation of the binary under test.
type sbxCmd struct {
	args  []string
	env   []string // nil: this process's environment
	dir   string   // "": this process's working directory
	stdin io.Reader
	extra []*os.File // become fds 3, 4, ...
	guard time.Duration
}

// runSbx runs sbx with args, stdin /dev/null, and the default guard.
func runSbx(t *testing.T, args ...string) result {
	t.Helper()
	return sbxCmd{args: args}.run(t)
}

// run runs the command to completion. Past the guard it kills sbx by pid and fails the test.
func (c sbxCmd) run(t *testing.T) result {
	t.Helper()
	cmd, stdout, stderr := c.cmd()
	guard := c.guard
	if guard == 0 {
		guard = defaultGuard
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", sbxBin, err)
	}
	done := make(chan struct{})
	timedOut := false
	timer := time.AfterFunc(guard, func() {
		select {
		case <-done:
		default:
			timedOut = true
			syscall.Kill(cmd.Process.Pid, syscall.SIGKILL)
		}
	})
	err := cmd.Wait()
	close(done)
	timer.Stop()
	r := result{stdout: stdout.String(), stderr: withoutHostNotes(stderr.String()), code: cmd.ProcessState.ExitCode()}
	if timedOut {
		t.Fatalf("sbx %q still running after %v; killed pid %d\n%s", c.args, guard, cmd.Process.Pid, r)
	}
	var ee *exec.ExitError
	switch {
	case errors.Is(err, exec.ErrWaitDelay):
		t.Errorf("sbx %q exited but its stdout/stderr stayed open %v longer: a descendant outlived it\n%s",
			c.args, waitDelay, r)
	case err != nil && !errors.As(err, &ee):
		t.Fatalf("sbx %q: %v", c.args, err)
	}
	return r
}

func (c sbxCmd) cmd() (*exec.Cmd, *bytes.Buffer, *bytes.Buffer) {
	cmd := exec.Command(sbxBin, c.args...)
	cmd.Env = c.env
	if c.env == nil {
		cmd.Env = os.Environ()
	}
	cmd.Dir = c.dir
	cmd.Stdin = c.stdin // nil: /dev/null
	cmd.ExtraFiles = c.extra
	cmd.WaitDelay = waitDelay
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	return cmd, &stdout, &stderr
}

// sh runs script with /bin/sh inside a sandbox made with flags.
func sh(t *testing.T, script string, flags ...string) result {
	t.Helper()
	return runSbx(t, shArgs(script, flags...)...)
}

func shArgs(script string, flags ...string) []string {
	args := append([]string{"run"}, flags...)
	return append(args, "--", "/bin/sh", "-c", script)
}

// mustSh is sh that fails the test unless the payload exited 0.
func mustSh(t *testing.T, script string, flags ...string) result {
	t.Helper()
	r := sh(t, script, flags...)
	if r.code != 0 {
		t.Fatalf("sbx %q: want exit 0\n%s", shArgs(script, flags...), r)
	}
	return r
}

// helperFlags binds this test binary into the sandbox for helper verbs.
func helperFlags() []string { return []string{"--ro", helperDir + ":" + helperMount} }

// helper runs a helper verb inside a sandbox made with flags.
func helper(t *testing.T, flags []string, verb ...string) result {
	t.Helper()
	args := append([]string{"run"}, helperFlags()...)
	args = append(args, flags...)
	args = append(args, "--", helperExe, helperArg)
	return runSbx(t, append(args, verb...)...)
}

// started is an sbx process running in the background.
type started struct {
	cmd    *exec.Cmd
	stdout *lineReader
	stderr *bytes.Buffer
	done   chan struct{}
	err    error
}

// startSbx starts sbx with stdout read line by line; cleanup kills it by pid.
func startSbx(t *testing.T, c sbxCmd) *started {
	t.Helper()
	cmd, _, stderr := c.cmd()
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout = pw
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", sbxBin, err)
	}
	pw.Close()
	s := &started{cmd: cmd, stdout: newLineReader(pr), stderr: stderr, done: make(chan struct{})}
	go func() {
		s.err = cmd.Wait()
		close(s.done)
	}()
	t.Cleanup(func() {
		select {
		case <-s.done:
		default:
			syscall.Kill(cmd.Process.Pid, syscall.SIGKILL)
			<-s.done
		}
		pr.Close()
	})
	return s
}

// wait waits up to d for sbx to exit and returns its exit code.
func (s *started) wait(t *testing.T, d time.Duration) int {
	t.Helper()
	select {
	case <-s.done:
		return s.cmd.ProcessState.ExitCode()
	case <-time.After(d):
		syscall.Kill(s.cmd.Process.Pid, syscall.SIGKILL)
		<-s.done
		t.Fatalf("sbx pid %d did not exit within %v; killed it\nstdout so far:\n%s\nstderr:\n%s",
			s.cmd.Process.Pid, d, s.stdout.all(), s.stderr)
		return -1
	}
}

// lineReader collects lines from a pipe in the background.
type lineReader struct {
	mu    sync.Mutex
	lines []string
	more  chan struct{} // closed and replaced whenever a line arrives or the pipe ends
	eof   bool
}

func newLineReader(r io.Reader) *lineReader {
	lr := &lineReader{more: make(chan struct{})}
	go func() {
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			lr.mu.Lock()
			lr.lines = append(lr.lines, sc.Text())
			close(lr.more)
			lr.more = make(chan struct{})
			lr.mu.Unlock()
		}
		lr.mu.Lock()
		lr.eof = true
		close(lr.more)
		lr.mu.Unlock()
	}()
	return lr
}

// waitFor waits until a line equal to want arrives; false on EOF or timeout.
func (lr *lineReader) waitFor(want string, d time.Duration) bool {
	deadline := time.After(d)
	for {
		lr.mu.Lock()
		for _, l := range lr.lines {
			if l == want {
				lr.mu.Unlock()
				return true
			}
		}
		eof, more := lr.eof, lr.more
		lr.mu.Unlock()
		if eof {
			return false
		}
		select {
		case <-more:
		case <-deadline:
			return false
		}
	}
}

func (lr *lineReader) all() string {
	lr.mu.Lock()
	defer lr.mu.Unlock()
	return strings.Join(lr.lines, "\n")
}

// untilEOF waits up to d for the pipe to close and returns everything read.
func (lr *lineReader) untilEOF(d time.Duration) string {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	for {
		lr.mu.Lock()
		eof, more := lr.eof, lr.more
		lr.mu.Unlock()
		if eof {
			return lr.all()
		}
		select {
		case <-more:
		case <-ctx.Done():
			return lr.all()
		}
	}
}

// writeFile creates path with content and fails the test on error.
func writeFile(t *testing.T, path, content string, perm os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), perm); err != nil {
		t.Fatal(err)
	}
}

// currentUser returns the caller's name and uid as strings.
func currentUser(t *testing.T) (name, uid string) {
	t.Helper()
	uid = strconv.Itoa(os.Getuid())
	u, err := user.LookupId(uid)
	if err != nil {
		return "", uid
	}
	return u.Username, uid
}

// firstSubID returns the start of the caller's first range in file.
func firstSubID(t *testing.T, file string) (uint64, bool) {
	t.Helper()
	name, uid := currentUser(t)
	rs, err := testenv.SubIDRanges(file, name, uid)
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) == 0 {
		return 0, false
	}
	return rs[0].Start, true
}

// hasHelpers reports whether newuidmap and newgidmap are on this process's PATH.
func hasHelpers() bool {
	_, err1 := exec.LookPath("newuidmap")
	_, err2 := exec.LookPath("newgidmap")
	return err1 == nil && err2 == nil
}

// requireMapped skips unless sbx can build the full (helper-written) map for the caller.
func requireMapped(t *testing.T) {
	t.Helper()
	requireUserns(t)
	if !hasHelpers() {
		mustRun(t, "newuidmap/newgidmap are not on PATH (install the uidmap package)")
	}
	if _, ok := firstSubID(t, "/etc/subuid"); !ok {
		mustRun(t, "the current user has no range in /etc/subuid")
	}
	if _, ok := firstSubID(t, "/etc/subgid"); !ok {
		mustRun(t, "the current user has no range in /etc/subgid")
	}
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// requireCHelper skips unless the C helper was built; it runs as
// helperMount/chelper inside a sandbox made with helperFlags.
func requireCHelper(t *testing.T) string {
	t.Helper()
	if chelperErr != nil {
		mustRun(t, "no C helper: "+chelperErr.Error())
	}
	return filepath.Join(helperMount, testenv.CHelperName)
}

// landlockPartial says the kernel's Landlock ABI is below what sbx's
// rules use (6): then every run warns that sbx drops some of them
// (Debian 12's 6.1 has ABI 2). TestLandlockBestEffort checks that
// warning; the other tests do not count it.
var landlockPartial = func() bool {
	abi, _, e := unix.Syscall(unix.SYS_LANDLOCK_CREATE_RULESET, 0, 0, unix.LANDLOCK_CREATE_RULESET_VERSION)
	return e == 0 && abi < 6
}()

// landlockWarning starts the warning of a kernel with a partial ABI.
const landlockWarning = "sbx: warning: hardening dropped: Landlock rules the kernel's ABI"

// withoutHostNotes is sbx's stderr without the warning a partial
// Landlock ABI gives every run.
func withoutHostNotes(stderr string) string {
	if !landlockPartial {
		return stderr
	}
	var out []string
	for _, l := range strings.SplitAfter(stderr, "\n") {
		if !strings.HasPrefix(l, landlockWarning) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "")
}
