package cgroup_test

import (
	"slices"
	"strings"
	"testing"

	"sbx/cgroup"
)

const hybrid = `22 27 0:21 / /proc rw,relatime - proc proc rw
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
`

func TestParseMountinfo(t *testing.T) {
	tests := []struct {
		name, in string
		v2       string
		v1       []string
	}{
		{"hybrid", hybrid, "/sys/fs/cgroup/unified", []string{"cpu", "memory", "pids"}},
		{"unified", "30 1 0:26 / /sys/fs/cgroup rw,nosuid shared:4 - cgroup2 cgroup2 rw,nsdelegate\n", "/sys/fs/cgroup", nil},
		{"escaped", `30 1 0:26 / /mnt/a\040b rw - cgroup2 none rw` + "\n", "/mnt/a b", nil},
		{"none", "22 27 0:21 / /proc rw - proc proc rw\n", "", nil},
		{"first wins", "1 1 0:1 / /a rw - cgroup2 x rw\n2 1 0:2 / /b rw - cgroup2 x rw\n", "/a", nil},
		{"garbage", "no separator here\n - \n", "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := cgroup.ParseMountinfo(strings.NewReader(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			if m.V2 != tt.v2 || !slices.Equal(m.V1, tt.v1) {
				t.Fatalf("got %+v, want V2 %q V1 %q", m, tt.v2, tt.v1)
			}
		})
	}
}

func TestParseProcCgroup(t *testing.T) {
	p, err := cgroup.ParseProcCgroup(strings.NewReader("9:name=systemd:/\n0::/user.slice/user-1000.slice/session-2.scope\n"))
	if err != nil || p != "/user.slice/user-1000.slice/session-2.scope" {
		t.Fatalf("got %q, %v", p, err)
	}
	if _, err := cgroup.ParseProcCgroup(strings.NewReader("4:memory:/\n")); err == nil {
		t.Fatal("a v1-only file parsed")
	}
}

func TestParseFlatKeyed(t *testing.T) {
	m, err := cgroup.ParseFlatKeyed(strings.NewReader("low 0\nhigh 3\noom_kill 2\nbad line x\n\n"))
	if err != nil || m["oom_kill"] != 2 || m["high"] != 3 || len(m) != 3 {
		t.Fatalf("got %v, %v", m, err)
	}
}

func FuzzParseMountinfo(f *testing.F) {
	f.Add(hybrid)
	f.Fuzz(func(t *testing.T, s string) {
		m, err := cgroup.ParseMountinfo(strings.NewReader(s))
		if err != nil {
			return
		}
		if m.V2 != "" && !strings.Contains(s, "cgroup2") {
			t.Fatalf("found a cgroup2 mount in text without one: %q", m.V2)
		}
	})
}
