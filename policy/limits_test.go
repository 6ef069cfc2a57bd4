package policy_test

import (
	"math"
	"slices"
	"testing"

	"sbx/policy"
)

func TestParseSize(t *testing.T) {
	good := map[string]uint64{
		"0": 0, "1": 1, "512": 512, "1b": 1, "1k": 1 << 10, "1K": 1 << 10, "1KB": 1 << 10, "1KiB": 1 << 10,
		"64M": 64 << 20, "64m": 64 << 20, "1.5G": 3 << 29, "2g": 2 << 30, "1T": 1 << 40, " 8M ": 8 << 20,
	}
	for in, want := range good {
		if got, err := policy.ParseSize(in); err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "banana", "M", "-1M", "+1M", "1e3", "0x10", "NaN", "Inf", "1..5M", ".", "1iB", "1P", "1 M", "99999999999T"} {
		if got, err := policy.ParseSize(in); err == nil {
			t.Errorf("ParseSize(%q) = %d; want an error", in, got)
		}
	}
}

func TestFormatSize(t *testing.T) {
	for _, b := range []uint64{0, 1, 1000, 1 << 10, 64 << 20, 3 << 29, 1 << 40} {
		if got, err := policy.ParseSize(policy.FormatSize(b)); err != nil || got != b {
			t.Errorf("round trip of %d through %q: %d, %v", b, policy.FormatSize(b), got, err)
		}
	}
}

func TestParseLimits(t *testing.T) {
	if _, err := policy.ParseMemory("64"); err == nil {
		t.Error("--memory 64 (bytes) accepted")
	}
	if q, err := policy.ParseCPUs("1.5"); err != nil || q != 150000 {
		t.Errorf("--cpus 1.5: %d, %v", q, err)
	}
	for _, in := range []string{"0", "-1", "0.001", "NaN", "x", "Inf", "1_0", "1e1", "0x1p0", "+1"} {
		if _, err := policy.ParseCPUs(in); err == nil {
			t.Errorf("--cpus %q accepted", in)
		}
	}
	for _, in := range []string{"0", "-3", "x", "1.5", "8", "15"} {
		if _, err := policy.ParseCount("pids", in); err == nil {
			t.Errorf("--pids %q accepted", in)
		}
	}
	for _, in := range []string{"0", "10001", "x"} {
		if _, err := policy.ParseWeight("cpu-weight", in); err == nil {
			t.Errorf("--cpu-weight %q accepted", in)
		}
	}
}

func TestResolveLimits(t *testing.T) {
	f := cmd()
	p := mustResolve(t, f, fakeHost())
	if p.Cgroup != nil || p.Limits.Any() {
		t.Fatalf("no limit asked, yet cgroup %+v limits %+v", p.Cgroup, p.Limits)
	}
	f.Memory, f.CPUQuota, f.Pids = 64<<20, 50000, 32
	h := fakeHost()
	h.Cgroup2, h.RuntimeDir = "/sys/fs/cgroup", "/run/user/1000"
	p = mustResolve(t, f, h)
	if p.Cgroup == nil || p.Cgroup.Mount != "/sys/fs/cgroup" || !slices.Equal(p.Cgroup.Controllers, []string{"cpu", "memory", "pids"}) {
		t.Fatalf("cgroup %+v", p.Cgroup)
	}
	if l := p.Limits; l.MemoryMax != 64<<20 || l.MemorySwapMax != 0 || l.CPUQuota != 50000 || l.CPUPeriod != policy.CPUPeriodUS || l.PidsMax != 32 {
		t.Fatalf("limits %+v", l)
	}
	f = cmd()
	f.MemorySwap, f.MemorySwapSet = 1<<30, true
	if _, err := policy.Resolve(f, fakeHost()); err == nil {
		t.Fatal("--memory-swap without --memory accepted")
	}
	f = cmd()
	f.Cgroup = true
	if p := mustResolve(t, f, fakeHost()); p.Cgroup == nil || len(p.Cgroup.Controllers) != 0 {
		t.Fatalf("--cgroup: %+v", p.Cgroup)
	}
}

func FuzzParseSize(f *testing.F) {
	for _, s := range []string{"64M", "1.5G", "0", "banana", "1KiB"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b, err := policy.ParseSize(s)
		if err != nil {
			return
		}
		if b >= math.MaxInt64/2 {
			t.Fatalf("ParseSize(%q) = %d: past the cap", s, b)
		}
	})
}
