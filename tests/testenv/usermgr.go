package testenv

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"sbx/cgroup"
)

// systemdBin is the systemd binary that runs the user manager.
const systemdBin = "/usr/lib/systemd/systemd"

// UserManager is a real `systemd --user` for a test user on a host
// whose PID 1 is not systemd (the host tier of the resource-limit
// tests): it proves the D-Bus path, the leaf layout, teardown and the
// fail-closed errors. Such hosts delegate no controller on cgroup v2.
//
// It runs, as the user, in a private mount namespace where the cgroup2
// hierarchy is bound over /sys/fs/cgroup (systemd looks there) and
// /run/systemd is a tmpfs with the "system" marker; the host's own
// mounts are not touched. Its cgroup and the clients' sit side by side
// in a subtree owned by the user, so that the manager can move a client
// into a scope (cgroup v2 allows a move only within what one owns).
type UserManager struct {
	RuntimeDir string // XDG_RUNTIME_DIR for clients
	Clients    string // cgroup directory to start clients in
	root       string // the subtree, in the host's cgroup2 mount
	cmd        *exec.Cmd
}

// StartUserManager starts the user manager for u, or says why it can't.
func StartUserManager(u User) (*UserManager, error) {
	if _, err := os.Stat(systemdBin); err != nil {
		return nil, fmt.Errorf("no systemd: %w", err)
	}
	mount, err := Cgroup2Mount()
	if err != nil {
		return nil, err
	}
	m := &UserManager{root: filepath.Join(mount, fmt.Sprintf("sbx-tests-%d", os.Getpid()))}
	m.Clients = filepath.Join(m.root, "clients")
	manager := filepath.Join(m.root, "manager")
	for _, d := range []string{m.root, manager, m.Clients} {
		if err := os.Mkdir(d, 0o755); err != nil {
			m.Stop()
			return nil, err
		}
	}
	if err := chownTree(m.root, u); err != nil {
		m.Stop()
		return nil, err
	}
	if m.RuntimeDir, err = os.MkdirTemp("", "sbx-tests-run-"); err != nil {
		m.Stop()
		return nil, err
	}
	if err := os.Chown(m.RuntimeDir, int(u.UID), int(u.GID)); err != nil {
		m.Stop()
		return nil, err
	}
	script := fmt.Sprintf(`set -e
mount --bind %[1]q /sys/fs/cgroup
mount -t tmpfs tmpfs /run/systemd
mkdir -p /run/systemd/system
exec setpriv --reuid %[2]d --regid %[3]d --init-groups env -i XDG_RUNTIME_DIR=%[4]q HOME=%[5]q USER=%[6]q PATH=/usr/bin:/bin %[7]s --user`,
		mount, u.UID, u.GID, m.RuntimeDir, u.Home, u.Name, systemdBin)
	m.cmd = exec.Command("unshare", "-m", "--propagation", "private", "/bin/sh", "-c", script)
	cgfd, err := os.Open(manager)
	if err != nil {
		m.Stop()
		return nil, err
	}
	defer cgfd.Close()
	m.cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: int(cgfd.Fd()), Pdeathsig: syscall.SIGTERM}
	log, err := os.Create(filepath.Join(m.RuntimeDir, "..", filepath.Base(m.RuntimeDir)+".log"))
	if err == nil {
		m.cmd.Stdout, m.cmd.Stderr = log, log
		defer log.Close()
	}
	if err := m.cmd.Start(); err != nil {
		m.Stop()
		return nil, fmt.Errorf("start systemd --user: %w", err)
	}
	private := filepath.Join(m.RuntimeDir, "systemd", "private")
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if _, err := os.Stat(private); err == nil {
			return m, nil
		}
		if time.Now().After(deadline) {
			m.Stop()
			return nil, fmt.Errorf("systemd --user did not open %s in 30 s", private)
		}
	}
}

// Stop ends the user manager and removes its cgroups and runtime dir.
func (m *UserManager) Stop() {
	if m.cmd != nil && m.cmd.Process != nil {
		m.cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { m.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			m.cmd.Process.Kill()
			<-done
		}
	}
	if m.root != "" {
		// Whatever the manager left running (it may have died first).
		os.WriteFile(filepath.Join(m.root, "cgroup.kill"), []byte("1"), 0)
		for i := 0; i < 100; i++ {
			if b, err := os.ReadFile(filepath.Join(m.root, "cgroup.events")); err != nil || strings.Contains(string(b), "populated 0") {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		// Deepest first; a cgroup with live processes stays (and says so).
		var dirs []string
		filepath.WalkDir(m.root, func(p string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
		for i := len(dirs) - 1; i >= 0; i-- {
			if err := syscall.Rmdir(dirs[i]); err != nil && !errors.Is(err, syscall.ENOENT) {
				fmt.Fprintf(os.Stderr, "testenv: remove %s: %v\n", dirs[i], err)
			}
		}
	}
	if m.RuntimeDir != "" {
		os.RemoveAll(m.RuntimeDir)
		os.Remove(m.RuntimeDir + ".log")
	}
}

// ClientsFD opens the clients' cgroup for SysProcAttr.CgroupFD.
func (m *UserManager) ClientsFD() (*os.File, error) { return os.Open(m.Clients) }

// Cgroup2Mount is where this process sees the cgroup2 hierarchy.
func Cgroup2Mount() (string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return "", err
	}
	defer f.Close()
	m, err := cgroup.ParseMountinfo(f)
	if err == nil && m.V2 == "" {
		err = errors.New("no cgroup2 hierarchy mounted")
	}
	return m.V2, err
}

func chownTree(root string, u User) error {
	return filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() || strings.HasPrefix(d.Name(), "cgroup.") {
			return os.Chown(p, int(u.UID), int(u.GID))
		}
		return nil
	})
}
