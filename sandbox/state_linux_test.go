package sandbox

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

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
	if _, err := newRecord(filepath.Join(root, "sbx", "run")); err == nil {
		t.Errorf("a record was made through a link at %s", root)
	}
}
