package tests

import (
	"os"
	"strconv"
	"strings"
	"testing"
)

// checkFallback runs a payload that needs no PATH and checks the single-id
// fallback: it works, says so in one warning that names a fix, and maps one id.
func checkFallback(t *testing.T, env []string, fixes ...string) {
	t.Helper()
	args := []string{"run", "--", "/bin/sh", "-c",
		`/usr/bin/id -u; /bin/cat /proc/self/uid_map; echo --; /bin/cat /proc/self/gid_map`}
	r := sbxCmd{args: args, env: env}.run(t)
	if r.code != 0 {
		t.Fatalf("fallback: want exit 0\n%s", r)
	}
	out := strings.SplitN(r.stdout, "\n", 2)
	if len(out) != 2 || out[0] != strconv.Itoa(os.Getuid()) {
		t.Errorf("uid inside %q, want the caller's %d", out[0], os.Getuid())
	}
	maps := strings.Split(out[len(out)-1], "--\n")
	if len(maps) != 2 {
		t.Fatalf("unexpected output\n%s", r)
	}
	if got := lines(maps[0]); len(got) != 1 {
		t.Errorf("uid_map inside has %d lines, want 1: %q", len(got), got)
	}
	if got := lines(maps[1]); len(got) != 1 {
		t.Errorf("gid_map inside has %d lines, want 1: %q", len(got), got)
	}
	var warnings []string
	for _, l := range r.stderrLines() {
		if strings.HasPrefix(l, "sbx: warning:") {
			warnings = append(warnings, l)
		}
	}
	if len(warnings) != 1 {
		t.Fatalf("want exactly one %q line, got %d:\n%s", "sbx: warning:", len(warnings), r.stderr)
	}
	if n := len(r.stderrLines()); n > 2 {
		t.Errorf("want the warning and at most a hint, got %d lines:\n%s", n, r.stderr)
	}
	named := false
	for _, f := range fixes {
		named = named || strings.Contains(r.stderr, f)
	}
	if !named {
		t.Errorf("the warning names none of the fixes %q:\n%s", fixes, r.stderr)
	}
}

// TestFallbackNoHelpers tries to break the run without newuidmap/newgidmap on PATH.
func TestFallbackNoHelpers(t *testing.T) {
	requireUserns(t)
	t.Parallel()
	checkFallback(t, withEnv(os.Environ(), "PATH="+t.TempDir()), "newuidmap", "uidmap")
	// Installed but off PATH (su, cron): the fix is PATH, not a package.
	if !fileExists("/usr/bin/newuidmap") || !fileExists("/usr/bin/newgidmap") {
		mustRun(t, "no newuidmap and newgidmap in /usr/bin (apt-get install uidmap)")
	}
	r := sbxCmd{args: []string{"run", "--", "/bin/true"}, env: withEnv(os.Environ(), "PATH="+t.TempDir())}.run(t)
	if !strings.Contains(r.stderr, "add /usr/bin to PATH") || strings.Contains(r.stderr, "apt-get") {
		t.Errorf("helpers in /usr/bin, not on PATH: want the fix to name PATH\n%s", r)
	}
}

// TestFallbackNoHelpersRepeated runs the fallback many times, four at a
// time: sbx writes init's maps itself, as soon as init's exec is done.
// The end of the spawner's close-on-exec pipe comes a moment before the
// kernel makes init's new image dumpable, and until then its /proc files
// are root's: writing the maps then failed (EACCES on setgroups) in
// about one run in a hundred on the VM tier's kernel.
func TestFallbackNoHelpersRepeated(t *testing.T) {
	requireUserns(t)
	t.Parallel()
	env := withEnv(os.Environ(), "PATH="+t.TempDir())
	const runs, together = 200, 4
	fails := make(chan result, runs)
	sem := make(chan struct{}, together)
	for range runs {
		sem <- struct{}{}
		go func() {
			defer func() { <-sem }()
			r := sbxCmd{args: []string{"run", "--", "/bin/true"}, env: env}.run(t)
			if r.code != 0 {
				fails <- r
			}
		}()
	}
	for range together {
		sem <- struct{}{}
	}
	close(fails)
	n := 0
	for r := range fails {
		if n++; n == 1 {
			t.Errorf("a run without the helpers failed\n%s", r)
		}
	}
	if n > 0 {
		t.Errorf("%d of %d runs without the helpers failed", n, runs)
	}
}

// TestFallbackNoRanges tries to break the run for a user without subordinate
// ids. As root, the harness runs it as sbxnosub.
func TestFallbackNoRanges(t *testing.T) {
	requireUserns(t)
	if _, ok := firstSubID(t, "/etc/subuid"); ok {
		mustRun(t, "the current user has ranges in /etc/subuid; run the suite as root so the harness uses "+userNoSub)
	}
	if _, ok := firstSubID(t, "/etc/subgid"); ok {
		mustRun(t, "the current user has ranges in /etc/subgid; run the suite as root so the harness uses "+userNoSub)
	}
	t.Parallel()
	checkFallback(t, os.Environ(), "subuid", "subgid", "usermod")
}
