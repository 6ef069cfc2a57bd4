package sandbox

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"sbx/policy"
)

// Without a runtime directory, the state root below /tmp is named but
// not made: a dry run or a refused command line leaves nothing. The first
// record makes it, 0700.
func TestStateRootMadeByRecordOnly(t *testing.T) {
	t.Setenv("XDG_RUNTIME_DIR", "")
	oldRun, oldTmp := runUserBase, tmpBase
	t.Cleanup(func() { runUserBase, tmpBase = oldRun, oldTmp })
	runUserBase, tmpBase = t.TempDir(), t.TempDir()
	root := StateRoot()
	if want := fmt.Sprintf("%s/sbx-%d", tmpBase, os.Getuid()); root != want {
		t.Fatalf("StateRoot() = %q, want %q", root, want)
	}
	if _, err := os.Lstat(root); !os.IsNotExist(err) {
		t.Fatalf("StateRoot made %s (lstat: %v)", root, err)
	}
	if err := mkdirPrivate(policy.StateDir(root)); err != nil {
		t.Fatal(err)
	}
	r, err := newRecord(policy.StateDir(root))
	if err != nil {
		t.Fatal(err)
	}
	defer r.remove()
	fi, err := os.Lstat(root)
	if err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o700 {
		t.Fatalf("after a record, %s: %v %v, want a 0700 directory", root, fi, err)
	}
	// Another user's directory in its place (here: a link) is refused.
	os.RemoveAll(root)
	if err := os.Symlink(t.TempDir(), root); err != nil {
		t.Fatal(err)
	}
	if got := StateRoot(); got != "" {
		t.Errorf("StateRoot() with a link at %s = %q, want \"\"", root, got)
	}
	if err := mkdirPrivate(filepath.Join(root, "sbx", "run")); err == nil {
		t.Errorf("a record was made through a link at %s", root)
	}
}

// An entry of the records directory that is not a record is passed
// over: sbx ps, exec and stop (Held, States) still see the others. A
// record directory no process holds is removed; nothing else is.
func TestRecordsPassOverBadEntries(t *testing.T) {
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o700); err != nil { // as sbx run makes it
		t.Fatal(err)
	}
	mk := func(name, state string) string {
		d := filepath.Join(dir, name)
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, stateFile), []byte(state), 0o600); err != nil {
			t.Fatal(err)
		}
		return d
	}
	hold := func(d string) {
		f, err := os.Open(filepath.Join(d, stateFile))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
			t.Fatal(err)
		}
	}
	// A held, valid record.
	good := mk("0123456789ab", `{"id":"0123456789ab","pid":1}`)
	hold(good)
	// Not records: a file; a record left empty or broken by a killed
	// run (removed); one held but broken, one held naming another id,
	// a broken one not named as sbx names records (all left alone).
	if err := os.WriteFile(filepath.Join(dir, "a-file"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	empty := mk("aaaaaaaaaaaa", "")
	broken := mk("bbbbbbbbbbbb", "{not json")
	heldBroken := mk("cccccccccccc", "")
	hold(heldBroken)
	other := mk("dddddddddddd", `{"id":"0123456789ab","pid":1}`)
	hold(other)
	foreign := mk("not-a-record", "")
	if err := os.Symlink(good, filepath.Join(dir, "eeeeeeeeeeee")); err != nil {
		t.Fatal(err)
	}

	got, err := records(dir, false)
	if err != nil {
		t.Fatalf("records: %v", err)
	}
	if len(got) != 1 || got[0].ID != "0123456789ab" {
		t.Errorf("records = %+v, want the one good record", got)
	}
	for _, d := range []string{empty, broken} {
		if _, err := os.Lstat(d); !os.IsNotExist(err) {
			t.Errorf("%s, a record no process holds, is still there (%v)", d, err)
		}
	}
	for _, p := range []string{good, heldBroken, other, foreign, filepath.Join(dir, "a-file"), filepath.Join(dir, "eeeeeeeeeeee")} {
		if _, err := os.Lstat(p); err != nil {
			t.Errorf("%s was removed: %v", p, err)
		}
	}
}

// A records directory that is a link (planted by a sandbox that could
// write the runtime directory) is neither read nor swept: the sweep would
// delete directories with a record's name wherever it leads.
func TestRecordsNotThroughLink(t *testing.T) {
	root := t.TempDir()
	elsewhere := t.TempDir()
	victim := filepath.Join(elsewhere, "0123456789ab")
	if err := os.MkdirAll(filepath.Join(victim, "data"), 0o700); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-time.Hour)
	os.Chtimes(victim, old, old)
	if err := os.Mkdir(filepath.Join(root, "sbx"), 0o700); err != nil {
		t.Fatal(err)
	}
	stateDir := filepath.Join(root, "sbx", "run")
	if err := os.Symlink(elsewhere, stateDir); err != nil {
		t.Fatal(err)
	}
	if _, err := records(stateDir, false); err == nil {
		t.Errorf("records through a link: no error")
	}
	if _, err := os.Stat(filepath.Join(victim, "data")); err != nil {
		t.Errorf("the sweep followed the link and removed %s: %v", victim, err)
	}
}

// The C constructor that reads the caller's ignored signals before Go's
// runtime starts keeps its own list: it must be the forwarded one.
func TestIgnoredAtStartCoversForwarded(t *testing.T) {
	for _, s := range forwarded {
		if !ignoredChecked(s.(unix.Signal)) {
			t.Errorf("%v is forwarded, but the constructor does not read its disposition (spawn_linux.c)", s)
		}
	}
}
