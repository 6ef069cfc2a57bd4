package cgroup

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"sbx/policy"
)

// Tree is a sandbox's delegated subtree (see the package comment).
type Tree struct {
	Scope    string // the scope's directory in the cgroup2 mount
	Launcher string // leaf of the sbx process
	Sandbox  string // leaf of init and the payload, with the limits
	fd       int    // Sandbox, opened for CLONE_INTO_CGROUP
}

// hintDelegate is the fix when the user manager delegates too little.
const hintDelegate = "let systemd delegate the controllers to users: a drop-in /etc/systemd/system/user@.service.d/delegate.conf with [Service] Delegate=cpu cpuset io memory pids, then systemctl daemon-reload and log in again"

// hintHybrid is the fix on a host whose controllers are on cgroup v1.
const hintHybrid = "this host runs cgroup v1 or hybrid mode, so no controller can be delegated on cgroup v2: boot with systemd.unified_cgroup_hierarchy=1 (and cgroup_no_v1=all)"

// NewTree builds the subtree in the scope at scopePath (relative to
// mount, the cgroup2 mount point): it moves the calling process (the
// launcher, which the scope holds) into the launcher leaf, enables the
// controllers the limits need below the scope, and creates the sandbox
// leaf with the limits written. v1 names the controllers the host has on
// cgroup v1 (for the hint when one is missing here).
func NewTree(mount, scopePath string, asked policy.Limits, v1 []string, warn func(string)) (t *Tree, err error) {
	scope := filepath.Join(mount, filepath.Clean("/"+scopePath))
	t = &Tree{Scope: scope, Launcher: filepath.Join(scope, "launcher"), Sandbox: filepath.Join(scope, "sandbox"), fd: -1}
	have, err := readWords(filepath.Join(scope, "cgroup.controllers"))
	if err != nil {
		return nil, err
	}
	if err := missing(scope, asked.Controllers(), have, v1); err != nil {
		return nil, err
	}
	l := carry(mount, scope, asked, have, warn)
	defer func() {
		if err != nil {
			t.Remove()
		}
	}()
	if err := mkdir(t.Launcher); err != nil {
		return nil, err
	}
	if err := write(filepath.Join(t.Launcher, "cgroup.procs"), strconv.Itoa(os.Getpid())); err != nil {
		return nil, err
	}
	if ctl := l.Controllers(); len(ctl) > 0 {
		if err := write(filepath.Join(scope, "cgroup.subtree_control"), "+"+strings.Join(ctl, " +")); err != nil {
			return nil, err
		}
	}
	if err := mkdir(t.Sandbox); err != nil {
		return nil, err
	}
	if err := writeLimits(t.Sandbox, l); err != nil {
		return nil, err
	}
	fd, err := unix.Open(t.Sandbox, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", t.Sandbox, err)
	}
	t.fd = fd
	return t, nil
}

// carry adds to the limits asked those the caller itself runs under
// (Inherited) where they are tighter, as far as the controllers in have
// allow: asking sbx for a limit must not lift a tighter one.
func carry(mount, dir string, asked policy.Limits, have []string, warn func(string)) policy.Limits {
	own := Inherited(mount, dir)
	var dropped []string
	if own.CPUQuota != 0 && !slices.Contains(have, "cpu") {
		own.CPUQuota, own.CPUPeriod, dropped = 0, 0, append(dropped, "cpu")
	}
	if own.MemoryMax != 0 && !slices.Contains(have, "memory") {
		own.MemoryMax, dropped = 0, append(dropped, "memory")
	}
	if own.PidsMax != 0 && !slices.Contains(have, "pids") {
		own.PidsMax, dropped = 0, append(dropped, "pids")
	}
	l, notes := TightenTo(asked, own)
	if len(notes) > 0 {
		warn("you run under tighter limits than the sandbox would get: it gets your " + strings.Join(notes, ", ") + " too")
	}
	if len(dropped) > 0 {
		warn("your own " + strings.Join(dropped, ", ") + " limit cannot be carried into the sandbox: the controller is not delegated to you")
	}
	return l
}

// missing is the error for the first controller of need not in have.
func missing(dir string, need, have, v1 []string) error {
	for _, c := range need {
		if slices.Contains(have, c) {
			continue
		}
		hint := hintDelegate
		if slices.Contains(v1, c) {
			hint = hintHybrid
		}
		return &Error{
			Err:  fmt.Errorf("%w: the %s controller is not available to you in %s (delegated: %s)", ErrNotDelegated, c, dir, wordsOr(have)),
			Hint: hint,
		}
	}
	return nil
}

func writeLimits(dir string, l policy.Limits) error {
	type kv struct{ file, value string }
	var w []kv
	if l.MemoryMax != 0 {
		w = append(w, kv{"memory.max", strconv.FormatUint(l.MemoryMax, 10)})
		swap := filepath.Join(dir, "memory.swap.max")
		if _, err := os.Stat(swap); err == nil {
			w = append(w, kv{"memory.swap.max", strconv.FormatUint(l.MemorySwapMax, 10)})
		} else if swapInUse() {
			return fmt.Errorf("%s is missing but the host has swap: the memory limit could be escaped through it", swap)
		}
	}
	if l.CPUQuota != 0 {
		w = append(w, kv{"cpu.max", fmt.Sprintf("%d %d", l.CPUQuota, l.CPUPeriod)})
	}
	if l.CPUWeight != 0 {
		w = append(w, kv{"cpu.weight", strconv.FormatUint(l.CPUWeight, 10)})
	}
	if l.PidsMax != 0 {
		w = append(w, kv{"pids.max", strconv.FormatUint(l.PidsMax, 10)})
	}
	if l.IOWeight != 0 {
		w = append(w, kv{"io.weight", "default " + strconv.FormatUint(l.IOWeight, 10)})
	}
	for _, x := range w {
		if err := write(filepath.Join(dir, x.file), x.value); err != nil {
			return err
		}
	}
	return nil
}

// swapInUse says whether any swap area is active (/proc/swaps has more
// than its header).
func swapInUse() bool {
	b, err := os.ReadFile("/proc/swaps")
	return err != nil || bytes.Count(b, []byte("\n")) > 1
}

// FD is the sandbox leaf for SysProcAttr.CgroupFD (clone3 with
// CLONE_INTO_CGROUP): init starts there, and its cgroup namespace is
// rooted there.
func (t *Tree) FD() int { return t.fd }

// Stats is what the kernel reports about the sandbox leaf.
type Stats struct {
	OOMKills uint64 `json:"oom_kills"`
	// LimitHit counts the times the leaf's own memory.max was reached
	// (memory.events "oom"); an OOM kill without it came from the host
	// or a parent cgroup running out of memory.
	LimitHit uint64 `json:"memory_limit_hits"`
	// MemoryMax is the leaf's memory.max as written: what was asked, or
	// the caller's own tighter limit.
	MemoryMax   uint64 `json:"memory_max,omitempty"`
	MemoryPeak  uint64 `json:"memory_peak_bytes,omitempty"`
	CPUUsageUS  uint64 `json:"cpu_usage_us"`
	CPUUserUS   uint64 `json:"cpu_user_us"`
	CPUSystemUS uint64 `json:"cpu_system_us"`
	NrThrottled uint64 `json:"cpu_nr_throttled,omitempty"`
	PidsPeak    uint64 `json:"pids_peak,omitempty"`
}

// Stats reads the leaf's counters; those the kernel lacks stay 0.
func (t *Tree) Stats() Stats {
	var s Stats
	if m, err := readFlat(filepath.Join(t.Sandbox, "memory.events")); err == nil {
		s.OOMKills, s.LimitHit = m["oom_kill"], m["oom"]
	}
	if m, err := readFlat(filepath.Join(t.Sandbox, "cpu.stat")); err == nil {
		s.CPUUsageUS, s.CPUUserUS, s.CPUSystemUS = m["usage_usec"], m["user_usec"], m["system_usec"]
		s.NrThrottled = m["nr_throttled"]
	}
	s.MemoryPeak = readUint(filepath.Join(t.Sandbox, "memory.peak"))
	s.MemoryMax = readUint(filepath.Join(t.Sandbox, "memory.max"))
	s.PidsPeak = readUint(filepath.Join(t.Sandbox, "pids.peak"))
	return s
}

// Kill kills every process left in the sandbox leaf (cgroup.kill,
// Linux 5.14) and waits, up to a second, until it is empty.
func (t *Tree) Kill() error {
	if err := write(filepath.Join(t.Sandbox, "cgroup.kill"), "1"); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	for i := 0; i < 100; i++ {
		m, err := readFlat(filepath.Join(t.Sandbox, "cgroup.events"))
		if err != nil || m["populated"] == 0 {
			return nil
		}
		time.Sleep(10 * time.Millisecond)
	}
	return fmt.Errorf("%s still has processes after cgroup.kill", t.Sandbox)
}

// Remove removes the sandbox leaf. The launcher leaf goes with the
// scope, which the user manager removes once the launcher has exited.
func (t *Tree) Remove() error {
	if t.fd >= 0 {
		unix.Close(t.fd)
		t.fd = -1
	}
	err := unix.Rmdir(t.Sandbox)
	if errors.Is(err, unix.ENOENT) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("remove %s: %w", t.Sandbox, err)
	}
	return nil
}

func mkdir(dir string) error {
	if err := unix.Mkdir(dir, 0o755); err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	return nil
}

func write(file, value string) error {
	if err := os.WriteFile(file, []byte(value), 0); err != nil {
		return fmt.Errorf("write %q to %s: %w", value, file, errors.Unwrap(err))
	}
	return nil
}

func readWords(file string) ([]string, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", file, err)
	}
	return strings.Fields(string(b)), nil
}

func wordsOr(w []string) string {
	if len(w) == 0 {
		return "none"
	}
	return strings.Join(w, " ")
}

func readFlat(file string) (map[string]uint64, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return ParseFlatKeyed(f)
}

func readUint(file string) uint64 {
	b, err := os.ReadFile(file)
	if err != nil {
		return 0
	}
	n, _ := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	return n
}

// Inherited is the tightest memory.max, pids.max and cpu.max (as a
// quota over policy.CPUPeriodUS) on the way from the calling process's
// cgroup up to the nearest ancestor it shares with dir (where the
// sandbox's leaf will be): the limits the caller runs under that would
// not hold over the leaf unless written again (see TightenTo). Those of
// the shared ancestors hold anyway.
func Inherited(mount, dir string) policy.Limits {
	var l policy.Limits
	self, err := selfCgroup()
	if err != nil {
		return l
	}
	tighter := func(cur, v uint64) uint64 {
		if v != 0 && (cur == 0 || v < cur) {
			return v
		}
		return cur
	}
	for d := filepath.Join(mount, filepath.Clean("/"+self)); d != mount && strings.HasPrefix(d, mount+"/") && dir != d && !strings.HasPrefix(dir, d+"/"); d = filepath.Dir(d) {
		l.MemoryMax = tighter(l.MemoryMax, readUint(filepath.Join(d, "memory.max")))
		l.PidsMax = tighter(l.PidsMax, readUint(filepath.Join(d, "pids.max")))
		if b, err := os.ReadFile(filepath.Join(d, "cpu.max")); err == nil {
			var quota, period uint64
			if n, _ := fmt.Sscanf(string(b), "%d %d", &quota, &period); n == 2 && period > 0 {
				l.CPUQuota = tighter(l.CPUQuota, quota*policy.CPUPeriodUS/period)
			}
		}
	}
	if l.CPUQuota != 0 {
		l.CPUPeriod = policy.CPUPeriodUS
	}
	return l
}

// TightenTo lowers the limits asked to those the caller runs under
// (Inherited), where those are tighter or where none was asked. It
// returns the result and a phrase for each limit changed or added.
func TightenTo(asked, own policy.Limits) (policy.Limits, []string) {
	out := asked
	var notes []string
	if own.MemoryMax != 0 && (asked.MemoryMax == 0 || own.MemoryMax < asked.MemoryMax) {
		out.MemoryMax = own.MemoryMax
		notes = append(notes, "memory "+policy.FormatSize(own.MemoryMax))
	}
	if own.PidsMax != 0 && (asked.PidsMax == 0 || own.PidsMax < asked.PidsMax) {
		out.PidsMax = own.PidsMax
		notes = append(notes, "pids "+strconv.FormatUint(own.PidsMax, 10))
	}
	if own.CPUQuota != 0 && (asked.CPUQuota == 0 || own.CPUQuota < asked.CPUQuota) {
		out.CPUQuota, out.CPUPeriod = own.CPUQuota, policy.CPUPeriodUS
		notes = append(notes, fmt.Sprintf("cpus %g", float64(own.CPUQuota)/policy.CPUPeriodUS))
	}
	return out, notes
}
