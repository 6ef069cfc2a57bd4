package sandbox

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"sbx/cgroup"
	"sbx/policy"
)

// cgroupRun is the sandbox's delegated cgroup while it runs.
type cgroupRun struct {
	mgr  *cgroup.Manager
	tree *cgroup.Tree
}

// startCgroup asks the user manager for a scope holding the launcher,
// then builds the leaves and writes the limits. Every failure is fatal:
// a limit that cannot be enforced is never dropped silently.
func startCgroup(p *policy.Plan) (*cgroupRun, error) {
	c := p.Cgroup
	if c.Mount == "" {
		return nil, hinted(&cgroup.Error{Err: fmt.Errorf("%w is mounted", cgroup.ErrNoCgroup2),
			Hint: "limits need cgroup v2: boot with systemd.unified_cgroup_hierarchy=1"})
	}
	mgr, err := cgroup.Connect(cgroup.Env{RuntimeDir: c.RuntimeDir, BusAddress: c.BusAddress, User: p.Identity.User, UID: int(p.Identity.HostUID)})
	if err != nil {
		return nil, hinted(err)
	}
	var tag [4]byte
	rand.Read(tag[:])
	name := fmt.Sprintf("sbx-%d-%s.scope", os.Getpid(), hex.EncodeToString(tag[:]))
	scope, err := mgr.StartScope(name, os.Getpid(), "sbx run "+filepath.Base(p.Argv[0]))
	if err != nil {
		mgr.Close()
		return nil, fmt.Errorf("cgroup: %w", err)
	}
	tree, err := cgroup.NewTree(c.Mount, scope, p.Limits, c.V1)
	if err != nil {
		mgr.Close()
		return nil, hinted(err)
	}
	return &cgroupRun{mgr: mgr, tree: tree}, nil
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
	c.mgr.Close()
}

// hinted turns a cgroup error with a fix into a HintedError.
func hinted(err error) error {
	var ce *cgroup.Error
	if errors.As(err, &ce) {
		return &HintedError{Err: fmt.Errorf("cgroup: %w", ce.Err), Hint: ce.Hint}
	}
	return fmt.Errorf("cgroup: %w", err)
}
