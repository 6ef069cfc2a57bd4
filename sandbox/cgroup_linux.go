package sandbox

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"sbx/cgroup"
	"sbx/policy"
)

// cgroupRun is the sandbox's delegated cgroup while it runs.
type cgroupRun struct {
	mgr  *cgroup.Manager
	tree *cgroup.Tree
}

// startCgroup gets the sandbox its leaf. The fast way: a leaf in this
// session's subtree, without any D-Bus call, when the subtree exists and
// the launcher may clone into it. Else the user manager is asked: for
// the subtree, when the launcher runs inside the manager's own tree, or
// for a scope of its own. Every failure is fatal: a limit that cannot
// be enforced is never dropped silently.
func startCgroup(p *policy.Plan, warn func(string)) (*cgroupRun, error) {
	c := p.Cgroup
	if c.Mount == "" {
		return nil, hinted(&cgroup.Error{Err: fmt.Errorf("%w is mounted", cgroup.ErrNoCgroup2),
			Hint: "limits need cgroup v2: boot with systemd.unified_cgroup_hierarchy=1"})
	}

	state := ""
	if c.RuntimeDir != "" {
		state = filepath.Join(c.RuntimeDir, "sbx", "subtree")
		if st, ok := cgroup.OpenSubtree(state, c.Mount); ok {
			return leafIn(st, p, nil, warn)
		}
	}
	mgr, err := cgroup.Connect(cgroup.Env{RuntimeDir: c.RuntimeDir, BusAddress: c.BusAddress, User: p.Identity.User, UID: int(p.Identity.HostUID)})
	if err != nil {
		return nil, hinted(err)
	}
	if own, err := mgr.ControlGroup(); err == nil && state != "" && cgroup.CanCloneInto(c.Mount, filepath.Join(c.Mount, own)) {
		unlock, err := lock(state + ".lock")
		if err != nil {
			mgr.Close()
			return nil, fmt.Errorf("cgroup: %w", err)
		}
		st, ok := cgroup.OpenSubtree(state, c.Mount)
		if !ok {
			st, err = mgr.StartSubtree(c.Mount, state)
		}
		unlock()
		if err != nil {
			mgr.Close()
			return nil, fmt.Errorf("cgroup: %w", err)
		}
		return leafIn(st, p, mgr, warn)
	}
	var tag [4]byte
	rand.Read(tag[:])
	name := fmt.Sprintf("sbx-%d-%s.scope", os.Getpid(), hex.EncodeToString(tag[:]))
	scope, err := mgr.StartScope(name, os.Getpid(), "sbx run "+filepath.Base(p.Argv[0]))
	if err != nil {
		mgr.Close()
		return nil, fmt.Errorf("cgroup: %w", err)
	}
	tree, err := cgroup.NewTree(c.Mount, scope, p.Limits, c.V1, warn)
	if err != nil {
		mgr.Close()
		return nil, hinted(err)
	}
	return &cgroupRun{mgr: mgr, tree: tree}, nil
}

func leafIn(st *cgroup.Subtree, p *policy.Plan, mgr *cgroup.Manager, warn func(string)) (*cgroupRun, error) {
	tree, err := st.NewLeaf(p.Limits, p.Cgroup.V1, p.Cgroup.Mount, warn)
	if err != nil {
		if mgr != nil {
			mgr.Close()
		}
		return nil, hinted(err)
	}
	return &cgroupRun{mgr: mgr, tree: tree}, nil
}

// lock takes an exclusive flock(2) on file, so that two launchers do not
// both start the session's subtree.
func lock(file string) (unlock func(), err error) {
	if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(file, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		f.Close()
		return nil, err
	}
	return func() { f.Close() }, nil
}

// teardown kills whatever is left in the sandbox leaf and removes it.
// The scope goes when the launcher, its last process, exits.
func (c *cgroupRun) teardown() error {
	err := c.tree.Kill()
	if rerr := c.tree.Remove(); err == nil {
		err = rerr
	}
	if err != nil {
		return fmt.Errorf("cgroup: %w", err)
	}
	return nil
}

func (c *cgroupRun) close() {
	c.tree.Remove()
	if c.mgr != nil {
		c.mgr.Close()
	}
}

// hinted turns a cgroup error with a fix into a HintedError.
func hinted(err error) error {
	var ce *cgroup.Error
	if errors.As(err, &ce) {
		return &HintedError{Err: fmt.Errorf("cgroup: %w", ce.Err), Hint: ce.Hint}
	}
	return fmt.Errorf("cgroup: %w", err)
}
