package tests

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Regression tests for escapes and failures found by red-teaming sbx.

// TestCwdThroughSymlink starts sbx in a directory reached through a
// symlink (to / and to $HOME), with $PWD naming the symlink: the rule
// for the working directory must judge the directory itself, or the
// whole host (or the real home) is bound into the view.
func TestCwdThroughSymlink(t *testing.T) {
	requireUserns(t)
	t.Parallel()
	home, secret := plantHomeSecret(t)
	dir := t.TempDir()
	for name, target := range map[string]string{"rootlink": "/", "homelink": home} {
		link := filepath.Join(dir, name)
		if err := os.Symlink(target, link); err != nil {
			t.Fatal(err)
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			env := append(os.Environ(), "PWD="+link)
			// Through the cwd: ./NAME when it is $HOME, ./home/u/NAME when it is /.
			args := append(shArgs(`cat "$1" ./"$2" ./"$3" 2>/dev/null; true`), "sh", secret, filepath.Base(secret), strings.TrimPrefix(secret, "/"))
			r := sbxCmd{args: args, dir: link, env: env}.run(t)
			if strings.Contains(r.stdout, "s3cret") {
				t.Fatalf("started in %s -> %s, the payload read a file of $HOME\n%s", link, target, r)
			}
		})
	}
}

// TestPID1Signals: the payload runs as the same user as sbx's PID 1 and
// may signal it. A SIGSEGV, SIGABRT or SIGBUS sent with kill(2) must not
// crash it (and turn the run into an sbx failure with a Go dump).
func TestPID1Signals(t *testing.T) {
	requireUserns(t)
	t.Parallel()
	for _, root := range []bool{false, true} {
		var flags []string
		if root {
			flags = []string{"--root"}
		}
		r := sh(t, `for s in SEGV ABRT BUS FPE ILL TRAP SYS; do kill -$s 1; done; sleep 0.3; echo alive; exit 7`, flags...)
		if r.code != 7 || !strings.Contains(r.stdout, "alive") || strings.Contains(r.stderr, "goroutine") {
			t.Errorf("root=%v: after signalling PID 1: exit %d\n%s", root, r.code, r)
		}
	}
}

// TestHideCannotBeUndone: a mask applies whatever the order of the
// flags, and a mask of something the view does not show is an error
// (most likely a host path given where the sandbox's was meant).
func TestHideCannotBeUndone(t *testing.T) {
	requireUserns(t)
	t.Parallel()
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "sub", "secret"), "s3cret", 0o600)
	r := sh(t, `cat `+dir+`/sub/secret; true`, "--hide", dir+"/sub", "--ro", dir)
	if r.code != 0 || strings.Contains(r.stdout, "s3cret") {
		t.Errorf("--hide before the --ro that shows it: exit %d\n%s", r.code, r)
	}
	r = sh(t, `cat /data/sub/secret; true`, "--ro", dir+":/data", "--hide", dir+"/sub")
	if r.code != 125 || len(r.stderrLines()) != 1 || !strings.Contains(r.stderr, "hide "+dir+"/sub") {
		t.Errorf("--hide of a host path the view does not show: want 125 naming it\n%s", r)
	}
}

// TestSourceBeneathAnyGrant: a source inside a writable grant is
// resolved beneath it even when the grant comes later on the command
// line: a symlink planted there cannot lead the bind elsewhere.
func TestSourceBeneathAnyGrant(t *testing.T) {
	requireUserns(t)
	t.Parallel()
	proj, outside := t.TempDir(), t.TempDir()
	writeFile(t, filepath.Join(outside, "secret"), "s3cret", 0o600)
	if err := os.Symlink(outside, filepath.Join(proj, "data")); err != nil {
		t.Fatal(err)
	}
	r := sh(t, `cat /data/secret; true`, "--ro", proj+"/data:/data", "--rw", proj)
	if strings.Contains(r.stdout, "s3cret") || r.code != 125 || !strings.Contains(r.stderr, "symlink") {
		t.Errorf("a symlink in a later --rw grant led the bind out: exit %d\n%s", r.code, r)
	}
}

// TestStoppedPayload: a payload that stopped itself still ends on
// SIGTERM to sbx (sbx follows a terminating signal with SIGCONT).
func TestStoppedPayload(t *testing.T) {
	requireUserns(t)
	t.Parallel()
	s := startSbx(t, sbxCmd{args: shArgs(`echo ready; kill -STOP $$; echo resumed`)})
	if !s.stdout.waitFor("ready", 15*time.Second) {
		t.Fatalf("payload never said ready; stderr %q", s.stderr)
	}
	time.Sleep(200 * time.Millisecond)
	if err := syscall.Kill(s.cmd.Process.Pid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := s.wait(t, 10*time.Second); code != 128+int(syscall.SIGTERM) {
		t.Errorf("SIGTERM to sbx with a stopped payload: exit %d, want 143; stderr %q", code, s.stderr)
	}
}

// TestLargeCommandLine: argv and environment far beyond a socket
// buffer (the plan used to travel in one packet).
func TestLargeCommandLine(t *testing.T) {
	requireUserns(t)
	t.Parallel()
	args := append(shArgs(`echo $#`), "sh")
	for i := 0; i < 8; i++ {
		args = append(args, strings.Repeat("a", 100000))
	}
	r := sbxCmd{args: args}.run(t)
	if r.code != 0 || strings.TrimSpace(r.stdout) != "8" {
		t.Errorf("800 KB of arguments: exit %d\n%s", r.code, r)
	}
}

// TestOwnProcRefused: the sandbox's /proc and /dev/pts are sbx's to
// make; covering them is refused up front.
func TestOwnProcRefused(t *testing.T) {
	t.Parallel()
	for _, flags := range [][]string{{"--tmpfs", "/proc"}, {"--ro", "/etc:/proc"}, {"--tmpfs", "/proc/sys"}, {"--tmpfs", "/dev/pts"}, {"--root", "--tmpfs", "/proc"}} {
		r := runSbx(t, append(append([]string{"run"}, flags...), "--", "true")...)
		if r.code != 125 || len(r.stderrLines()) != 1 {
			t.Errorf("%q: want 125 with one line\n%s", flags, r)
		}
	}
}

// TestProfileColonInPath: a ':' that a variable brings into a profile's
// SRC:DEST (a project directory named "..:/elsewhere") never becomes a
// destination: the profile's text is split before expansion.
func TestProfileColonInPath(t *testing.T) {
	requireUserns(t)
	t.Parallel()
	base := t.TempDir()
	victim := filepath.Join(base, "victim")
	proj := filepath.Join(base, "p", "..:"+victim)
	for _, d := range []string{victim, filepath.Join(proj, ".git")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	r := sbxCmd{args: []string{"run", "--profile", "build", "--dry-run", "--json", "--", "true"}, dir: proj, env: append(os.Environ(), "PWD="+proj)}.run(t)
	if r.code != 0 {
		t.Fatalf("--profile build in %s\n%s", proj, r)
	}
	var plan struct {
		Mounts []struct{ Op, Source, Dest, Origin string }
	}
	if err := json.Unmarshal([]byte(r.stdout), &plan); err != nil {
		t.Fatal(err)
	}
	for _, m := range plan.Mounts {
		if m.Op == "bind" && m.Dest == victim {
			t.Fatalf("a ':' in the project's path made %s a destination: %+v", victim, m)
		}
	}
}

// TestProfileNotRegular: a profile (or what it extends) must be a
// regular file of reasonable size: /dev/zero would exhaust sbx.
func TestProfileNotRegular(t *testing.T) {
	t.Parallel()
	f := filepath.Join(t.TempDir(), "z.toml")
	writeFile(t, f, "version = 1\nextends = [\"/dev/zero\"]\n", 0o644)
	r := runSbx(t, "profile", "check", f)
	if r.code != 125 || !strings.Contains(r.stderr, "not a regular file") {
		t.Errorf("extends /dev/zero: want 125 naming it\n%s", r)
	}
}

// TestSessionKeyring: a key in the caller's session keyring (an agent's
// token, a Kerberos ticket) must not be readable from the sandbox, which
// gets a new, empty session keyring of its own.
func TestSessionKeyring(t *testing.T) {
	requireUserns(t)
	t.Parallel()
	id, err := unix.AddKey("user", "sbx-test-secret", []byte("s3cret"), unix.KEY_SPEC_SESSION_KEYRING)
	if err != nil {
		mustRun(t, "cannot add a key to the session keyring: "+err.Error())
	}
	t.Cleanup(func() { unix.KeyctlInt(unix.KEYCTL_INVALIDATE, id, 0, 0, 0) })
	if b := make([]byte, 16); func() bool {
		n, err := unix.KeyctlBuffer(unix.KEYCTL_READ, id, b, 0)
		return err != nil || string(b[:n]) != "s3cret"
	}() {
		t.Fatalf("the test cannot read its own key %d", id)
	}
	r := helper(t, nil, "keyread", strconv.Itoa(id))
	if r.code != 0 || strings.Contains(r.stdout, "s3cret") {
		t.Errorf("the payload read a key of the caller's session keyring\n%s", r)
	}
}

// TestCgroupMountNotWritable: with a cgroup (limits, --cgroup), a
// writable bind of or over the cgroup2 hierarchy is refused: the payload
// owns its leaf's files and could lift its own limits.
func TestCgroupMountNotWritable(t *testing.T) {
	t.Parallel()
	for _, flags := range [][]string{{"--rw", "/sys"}, {"--rw", "/sys/fs/cgroup"}} {
		r := runSbx(t, append(append([]string{"run", "--dry-run", "--cgroup"}, flags...), "--", "true")...)
		if r.code != 125 || len(r.stderrLines()) != 1 || !strings.Contains(r.stderr, "cgroup") {
			t.Errorf("%q with --cgroup: want 125 naming the cgroup hierarchy\n%s", flags, r)
		}
	}
	if r := runSbx(t, "run", "--dry-run", "--cgroup", "--ro", "/sys", "--", "true"); r.code != 0 {
		t.Errorf("--ro /sys with --cgroup: want it allowed\n%s", r)
	}
}
