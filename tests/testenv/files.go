package testenv

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
)

// CopyExecutables makes a fresh directory under /tmp with mode 0755, so
// that any user can read it, and copies files into it: each key is a name
// in the directory, its value the path to copy, and each copy gets mode
// 0755 whatever the umask. The caller removes dir.
func CopyExecutables(prefix string, files map[string]string) (dir string, err error) {
	dir, err = os.MkdirTemp("/tmp", prefix)
	if err != nil {
		return "", err
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		os.RemoveAll(dir)
		return "", err
	}
	for name, src := range files {
		if err := copyExecutable(src, filepath.Join(dir, name)); err != nil {
			os.RemoveAll(dir)
			return "", err
		}
	}
	return dir, nil
}

func copyExecutable(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return fmt.Errorf("copy %s to %s: %w", src, dst, err)
	}
	if err := out.Chmod(0o755); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// ModuleRoot returns the nearest directory at or above the working
// directory that holds a go.mod.
func ModuleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}

// BuildSbx builds ./cmd/sbx of the tree at root into out, as `make
// build` does (static, with cgo for libseccomp): the one place that
// knows how is the Makefile.
func BuildSbx(root, goTool, out string) error {
	cmd := exec.Command("make", "-s", "build", "BIN="+out, "GO="+goTool)
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("make build in %s: %w\n%s", root, err, b)
	}
	return nil
}
