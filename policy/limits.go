package policy

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Limits are the sandbox's resource limits, as cgroup v2 values
// (systemd.resource-control(5) names them MemoryMax=, MemorySwapMax=,
// CPUQuota=, TasksMax=, CPUWeight=, IOWeight=). A zero field is no limit.
type Limits struct {
	MemoryMax uint64 `json:"memory_max,omitempty"` // bytes, memory.max
	// MemorySwapMax is memory.swap.max in bytes; with MemoryMax set and
	// no --memory-swap it is 0: swap would let a payload escape the limit.
	MemorySwapMax uint64 `json:"memory_swap_max"`
	CPUQuota      uint64 `json:"cpu_quota_us,omitempty"` // cpu.max: quota per CPUPeriod
	CPUPeriod     uint64 `json:"cpu_period_us,omitempty"`
	PidsMax       uint64 `json:"pids_max,omitempty"`   // pids.max
	CPUWeight     uint64 `json:"cpu_weight,omitempty"` // cpu.weight, 1..10000
	IOWeight      uint64 `json:"io_weight,omitempty"`  // io.weight, 1..10000
}

// CPUPeriodUS is the cpu.max period sbx uses (the kernel's default).
const CPUPeriodUS = 100000

// Any says whether a limit is asked; without one sbx never contacts the
// user manager.
func (l Limits) Any() bool {
	return l.MemoryMax != 0 || l.CPUQuota != 0 || l.PidsMax != 0 || l.CPUWeight != 0 || l.IOWeight != 0
}

// Controllers lists the cgroup v2 controllers the limits need.
func (l Limits) Controllers() []string {
	var c []string
	if l.CPUQuota != 0 || l.CPUWeight != 0 {
		c = append(c, "cpu")
	}
	if l.IOWeight != 0 {
		c = append(c, "io")
	}
	if l.MemoryMax != 0 {
		c = append(c, "memory")
	}
	if l.PidsMax != 0 {
		c = append(c, "pids")
	}
	return c
}

// ParseSize parses a size: a number of bytes, optionally with a binary
// suffix K, M, G or T (also KiB/KB..., case-insensitive, all powers of
// 1024 as in systemd and docker), fractions allowed ("1.5G").
func ParseSize(s string) (uint64, error) {
	bad := fmt.Errorf("%q is not a size (e.g. 512M, 1.5G, 1048576)", s)
	t := strings.ToUpper(strings.TrimSpace(s))
	unitNeeded := false
	if u, ok := strings.CutSuffix(t, "IB"); ok {
		t, unitNeeded = u, true
	} else {
		t = strings.TrimSuffix(t, "B")
	}
	if t == "" {
		return 0, bad
	}
	mult := uint64(1)
	switch t[len(t)-1] {
	case 'K':
		mult = 1 << 10
	case 'M':
		mult = 1 << 20
	case 'G':
		mult = 1 << 30
	case 'T':
		mult = 1 << 40
	}
	if mult != 1 {
		t = t[:len(t)-1]
	} else if unitNeeded {
		return 0, bad
	}
	// Digits and one dot only: no signs, exponents, hex or NaN.
	if t == "" || strings.Trim(t, "0123456789.") != "" || strings.Count(t, ".") > 1 || t == "." {
		return 0, bad
	}
	f, err := strconv.ParseFloat(t, 64)
	if err != nil {
		return 0, bad
	}
	v := f * float64(mult)
	if v >= 1<<62 {
		return 0, fmt.Errorf("%q is too large", s)
	}
	return uint64(v), nil
}

// FormatSize renders bytes the way ParseSize reads them, exactly.
func FormatSize(b uint64) string {
	for _, u := range []struct {
		s string
		n uint64
	}{{"T", 1 << 40}, {"G", 1 << 30}, {"M", 1 << 20}, {"K", 1 << 10}} {
		if b >= u.n && b%u.n == 0 {
			return strconv.FormatUint(b/u.n, 10) + u.s
		}
	}
	return strconv.FormatUint(b, 10)
}

// ParseMemory parses --memory: at least 1 MiB (less cannot run a
// program; a typo such as 64 instead of 64M should not pass).
func ParseMemory(arg string) (uint64, error) {
	b, err := memoryMax(arg)
	if err != nil {
		return 0, fmt.Errorf("--memory %s", err)
	}
	return b, nil
}

// memoryMax checks a memory limit wherever it is given (flag or
// profile); the caller names where.
func memoryMax(arg string) (uint64, error) {
	b, err := ParseSize(arg)
	if err != nil {
		return 0, err
	}
	if b < 1<<20 {
		return 0, fmt.Errorf("%q: below 1M", arg)
	}
	return b, nil
}

// ParseMemorySwap parses --memory-swap: the swap the payload may use on
// top of --memory (memory.swap.max), 0 allowed.
func ParseMemorySwap(arg string) (uint64, error) {
	b, err := ParseSize(arg)
	if err != nil {
		return 0, fmt.Errorf("--memory-swap %s", err)
	}
	return b, nil
}

// ParseCPUs parses --cpus: a positive number of CPUs, fractions allowed,
// as a cpu.max quota over CPUPeriodUS.
func ParseCPUs(arg string) (uint64, error) {
	t := strings.TrimSpace(arg)
	// Digits and one dot: no signs, exponents, hex or underscores.
	if t == "" || strings.Trim(t, "0123456789.") != "" || strings.Count(t, ".") > 1 || t == "." {
		return 0, fmt.Errorf("--cpus %q: want a positive number of CPUs, e.g. 1.5", arg)
	}
	f, err := strconv.ParseFloat(t, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || f <= 0 {
		return 0, fmt.Errorf("--cpus %q: want a positive number of CPUs, e.g. 1.5", arg)
	}
	if f > 1<<20 {
		return 0, fmt.Errorf("--cpus %q: too many", arg)
	}
	q := uint64(math.Round(f * CPUPeriodUS))
	if q < 1000 {
		return 0, fmt.Errorf("--cpus %q: below 0.01", arg)
	}
	return q, nil
}

// MinPids is the least --pids: the count includes sbx's init, whose Go
// runtime runs on a dozen threads, and a limit it cannot start under
// would only crash it.
const MinPids = 16

// ParseCount parses --pids: a task count of at least MinPids.
func ParseCount(flag, arg string) (uint64, error) {
	n, err := strconv.ParseUint(strings.TrimSpace(arg), 10, 63)
	if err != nil || n == 0 {
		return 0, fmt.Errorf("--%s %q: want a positive whole number", flag, arg)
	}
	if n < MinPids {
		return 0, fmt.Errorf("--%s %d: at least %d (the sandbox's tasks include sbx's init and its threads)", flag, n, MinPids)
	}
	return n, nil
}

// ParseWeight parses --cpu-weight and --io-weight: 1 to 10000, the
// range of cpu.weight and io.weight (default 100).
func ParseWeight(flag, arg string) (uint64, error) {
	n, err := strconv.ParseUint(strings.TrimSpace(arg), 10, 32)
	if err != nil || n < 1 || n > 10000 {
		return 0, fmt.Errorf("--%s %q: want a weight from 1 to 10000", flag, arg)
	}
	return n, nil
}
