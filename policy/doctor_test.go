package policy

import (
	"slices"
	"strings"
	"testing"

	"sbx/idmap"
)

// goodHost is a host where every gate is ok.
func goodHost() DoctorFacts {
	setuid := func(p string) Helper { return Helper{Path: p, Mode: 0o4755} }
	return DoctorFacts{
		User: "alice", UID: 1000, GID: 1000, Executable: "/usr/local/bin/sbx",
		MaxUserNamespaces: 63000, UnprivUsernsClone: -1, AppArmorRestrictUserns: -1, LegacyTIOCSTI: 0,
		NewUIDMap: setuid("/usr/bin/newuidmap"), NewGIDMap: setuid("/usr/bin/newgidmap"),
		SubUIDs: []idmap.Range{{Start: 100000, Count: 65536}}, SubGIDs: []idmap.Range{{Start: 100000, Count: 65536}},
		SubIDSource: "/etc/subuid, /etc/subgid",
		Cgroup2:     "/sys/fs/cgroup",
		RuntimeDir:  "/run/user/1000", PrivateSocket: true, BusSocket: true,
		ManagerVersion: "252", ManagerVia: "unix:path=/run/user/1000/systemd/private",
		ManagerCgroup: "/user.slice/user-1000.slice/user@1000.service",
		Delegated:     []string{"cpuset", "cpu", "io", "memory", "pids"},
		Linger:        true, SystemdBooted: true,
		LandlockABI: 7, SeccompMode: 0, SeccompFilter: true,
		CapBnd: 1<<41 - 1, CapLastCap: 40, ProcMounted: true,
		Pasta: "/usr/bin/pasta",
	}
}

func TestDoctorGoodHost(t *testing.T) {
	checks := Diagnose(goodHost())
	var names []string
	for _, c := range checks {
		names = append(names, c.Name)
		if c.Status != StatusOK {
			t.Errorf("%s: %s (%s), want ok", c.Name, c.Status, c.Detail)
		}
		if c.Detail == "" {
			t.Errorf("%s: no detail", c.Name)
		}
	}
	if !slices.Equal(names, DoctorGates) {
		t.Errorf("gates %q, want %q", names, DoctorGates)
	}
	if !Usable(checks) {
		t.Error("Usable = false on a good host")
	}
}

// TestDoctorGates breaks one gate at a time: that gate gets the status,
// the others listed in also may follow it, every other one stays ok,
// every check that is not ok has a fix, and Usable says whether `sbx
// run` still works.
func TestDoctorGates(t *testing.T) {
	tests := []struct {
		name   string
		breaks func(*DoctorFacts)
		gate   string
		status string
		usable bool
		also   []string // other gates that may be not ok
		want   []string // words the detail or fix must hold
	}{
		{"userns max 0", func(f *DoctorFacts) { f.MaxUserNamespaces, f.UsernsErr = 0, "ENOSPC" }, "userns", StatusFail, false, nil,
			[]string{"user.max_user_namespaces=15000"}},
		{"userns debian clone 0", func(f *DoctorFacts) { f.UnprivUsernsClone, f.UsernsErr = 0, "EPERM" }, "userns", StatusFail, false, nil,
			[]string{"kernel.unprivileged_userns_clone=1"}},
		{"userns trial fails", func(f *DoctorFacts) { f.UsernsErr = "clone(CLONE_NEWUSER): operation not permitted (EPERM)" }, "userns", StatusFail, false, nil,
			[]string{"EPERM"}},
		{"userns refused in a container", func(f *DoctorFacts) {
			f.UsernsErr, f.SeccompMode, f.DockerEnv = "clone(CLONE_NEWUSER): operation not permitted (EPERM)", 2, true
		}, "userns", StatusFail, false, nil, []string{"seccomp=unconfined"}},
		{"apparmor restricts, no profile", func(f *DoctorFacts) { f.AppArmorRestrictUserns = 1 }, "apparmor", StatusFail, false, nil,
			[]string{"profile sbx /usr/local/bin/sbx", "userns,", "apparmor_parser"}},
		{"apparmor restricts, profile", func(f *DoctorFacts) {
			f.AppArmorRestrictUserns, f.AppArmorProfiles = 1, []string{"/etc/apparmor.d/sbx"}
		},
			"apparmor", StatusOK, true, nil, []string{"/etc/apparmor.d/sbx"}},
		{"apparmor off", func(f *DoctorFacts) { f.AppArmorRestrictUserns = 0 }, "apparmor", StatusOK, true, nil, nil},
		{"proc masked", func(f *DoctorFacts) { f.DockerEnv, f.ProcOvermounts = true, []string{"/proc/kcore", "/proc/sys"} }, "container", StatusFail, false, nil,
			[]string{"/proc/kcore", "systempaths=unconfined", "/.dockerenv"}},
		{"no proc", func(f *DoctorFacts) { f.ProcMounted = false }, "container", StatusFail, false, nil, []string{"mount proc"}},
		{"nested, proc visible", func(f *DoctorFacts) { f.ContainerEnv, f.CapBnd = true, f.CapBnd&^(1<<24) }, "container", StatusOK, true, nil,
			[]string{"/run/.containerenv", "CAP_SYS_RESOURCE"}},
		{"newuidmap missing", func(f *DoctorFacts) { f.NewUIDMap = Helper{} }, "newuidmap", StatusWarn, true, nil, []string{"uidmap"}},
		{"newgidmap missing", func(f *DoctorFacts) { f.NewGIDMap = Helper{} }, "newgidmap", StatusWarn, true, nil, []string{"uidmap"}},
		{"newuidmap not setuid, ranges", func(f *DoctorFacts) { f.NewUIDMap.Mode = 0o755 }, "newuidmap", StatusFail, false, nil,
			[]string{"chmod u+s /usr/bin/newuidmap", "cap_setuid+ep"}},
		{"newgidmap not root-owned", func(f *DoctorFacts) { f.NewGIDMap.Owner = 1000 }, "newgidmap", StatusFail, false, nil,
			[]string{"chown root /usr/bin/newgidmap", "cap_setgid+ep"}},
		{"newuidmap not setuid, no ranges", func(f *DoctorFacts) { f.NewUIDMap.Mode, f.SubUIDs = 0o755, nil }, "newuidmap", StatusWarn, true,
			[]string{"subids"}, []string{"chmod u+s"}},
		{"newuidmap file caps", func(f *DoctorFacts) { f.NewUIDMap.Mode, f.NewUIDMap.FileCaps = 0o755, true }, "newuidmap", StatusOK, true, nil,
			[]string{"file capabilities"}},
		{"newgidmap nosuid", func(f *DoctorFacts) { f.NewGIDMap.NoSuid = true }, "newgidmap", StatusFail, false, nil, []string{"nosuid"}},
		{"newuidmap unreadable", func(f *DoctorFacts) { f.NewUIDMap.Err = "permission denied" }, "newuidmap", StatusFail, false, nil, []string{"permission denied"}},
		{"no subids", func(f *DoctorFacts) { f.SubUIDs, f.SubGIDs = nil, nil }, "subids", StatusWarn, true, nil,
			[]string{"usermod --add-subuids 100000-165535 --add-subgids 100000-165535 alice"}},
		{"only a gid range", func(f *DoctorFacts) { f.SubUIDs = nil }, "subids", StatusWarn, true, nil, []string{"subordinate uid range"}},
		{"subuid holds only the caller", func(f *DoctorFacts) { f.SubUIDs = []idmap.Range{{Start: 1000, Count: 1}} }, "subids", StatusWarn, true, nil, nil},
		{"subids unreadable", func(f *DoctorFacts) { f.SubIDErr = "read /etc/subuid: permission denied" }, "subids", StatusFail, false, nil,
			[]string{"chmod 644"}},
		{"cgroup hybrid", func(f *DoctorFacts) {
			f.Cgroup2, f.CgroupV1 = "/sys/fs/cgroup/unified", []string{"cpu", "memory", "pids"}
		}, "cgroup2", StatusWarn, true,
			[]string{"controllers"}, []string{"systemd.unified_cgroup_hierarchy=1", "memory"}},
		{"cgroup v1", func(f *DoctorFacts) { f.Cgroup2, f.CgroupV1 = "", []string{"cpu", "memory", "pids"} }, "cgroup2", StatusWarn, true,
			[]string{"controllers"}, []string{"systemd.unified_cgroup_hierarchy=1"}},
		{"no cgroup", func(f *DoctorFacts) { f.Cgroup2 = "" }, "cgroup2", StatusWarn, true, []string{"controllers"}, []string{"mount cgroup2"}},
		{"no XDG_RUNTIME_DIR", func(f *DoctorFacts) {
			f.RuntimeDir, f.PrivateSocket, f.BusSocket, f.ManagerVersion, f.ManagerVia, f.Linger, f.SystemdBooted = "", false, false, "", "", false, false
		}, "user-manager", StatusWarn, true, []string{"controllers"}, []string{"XDG_RUNTIME_DIR is not set", "loginctl enable-linger alice", "PID 1 is not systemd"}},
		{"manager does not answer", func(f *DoctorFacts) {
			f.ManagerVersion, f.ManagerErr = "", "no systemd user manager reachable (/run/user/1000/systemd/private: connection refused)"
		}, "user-manager", StatusWarn, true, []string{"controllers"}, []string{"connection refused", "loginctl enable-linger"}},
		{"manager, not lingering", func(f *DoctorFacts) { f.Linger = false }, "user-manager", StatusOK, true, nil, []string{"not lingering"}},
		{"memory not delegated", func(f *DoctorFacts) { f.Delegated = []string{"cpu", "pids"} }, "controllers", StatusWarn, true, nil,
			[]string{"io, memory", "--memory", "Delegate=cpu cpuset io memory pids"}},
		{"controllers unreadable", func(f *DoctorFacts) { f.DelegatedErr = "no such file or directory" }, "controllers", StatusWarn, true, nil,
			[]string{"no such file"}},
		{"no landlock", func(f *DoctorFacts) { f.LandlockABI, f.LandlockErr = -1, "ENOSYS" }, "landlock", StatusWarn, true, nil,
			[]string{"CONFIG_SECURITY_LANDLOCK"}},
		{"landlock off", func(f *DoctorFacts) { f.LandlockABI, f.LandlockErr = -1, "EOPNOTSUPP" }, "landlock", StatusWarn, true, nil,
			[]string{"lsm="}},
		{"landlock abi 2", func(f *DoctorFacts) { f.LandlockABI = 2 }, "landlock", StatusWarn, true, nil,
			[]string{"ABI 2", "truncation (ABI 3)", "--strict", "Linux 6.12"}},
		{"no seccomp filter", func(f *DoctorFacts) { f.SeccompMode, f.SeccompFilter = -1, false }, "seccomp", StatusWarn, true, nil,
			[]string{"CONFIG_SECCOMP_FILTER"}},
		{"under a seccomp filter", func(f *DoctorFacts) { f.SeccompMode = 2 }, "seccomp", StatusOK, true, nil, []string{"already runs under a filter"}},
		{"tiocsti on", func(f *DoctorFacts) { f.LegacyTIOCSTI = 1 }, "tiocsti", StatusWarn, true, nil, []string{"dev.tty.legacy_tiocsti=0"}},
		{"tiocsti old kernel", func(f *DoctorFacts) { f.LegacyTIOCSTI = -1 }, "tiocsti", StatusWarn, true, nil, []string{"6.2"}},
		{"no user-mode network", func(f *DoctorFacts) { f.Pasta = "" }, "usernet", StatusWarn, true, nil, []string{"passt"}},
		{"slirp4netns only", func(f *DoctorFacts) { f.Pasta, f.Slirp4netns = "", "/usr/bin/slirp4netns" }, "usernet", StatusOK, true, nil,
			[]string{"slirp4netns"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := goodHost()
			tt.breaks(&f)
			checks := Diagnose(f)
			var got *Check
			for i, c := range checks {
				if c.Name == tt.gate {
					got = &checks[i]
				}
				if c.Status != StatusOK && c.Fix == "" {
					t.Errorf("%s is %s without a fix", c.Name, c.Status)
				}
				if c.Status != StatusOK && c.Name != tt.gate && !slices.Contains(tt.also, c.Name) {
					t.Errorf("%s is %s (%s), want ok", c.Name, c.Status, c.Detail)
				}
			}
			if got == nil {
				t.Fatalf("no check %q", tt.gate)
			}
			if got.Status != tt.status {
				t.Errorf("%s: status %s, want %s (%s)", tt.gate, got.Status, tt.status, got.Detail)
			}
			for _, w := range tt.want {
				if !strings.Contains(got.Detail+"\n"+got.Fix, w) {
					t.Errorf("%s: %q not in detail %q or fix %q", tt.gate, w, got.Detail, got.Fix)
				}
			}
			if Usable(checks) != tt.usable {
				t.Errorf("Usable = %v, want %v", !tt.usable, tt.usable)
			}
		})
	}
}

func TestDoctorProcOvermounts(t *testing.T) {
	const (
		root    = "1 0 8:1 / / rw,relatime - ext4 /dev/sda1 rw\n"
		proc    = "22 1 0:21 / /proc rw,nosuid,nodev,noexec,relatime - proc proc rw\n"
		binfmt  = "30 22 0:25 / /proc/sys/fs/binfmt_misc rw,relatime - autofs systemd-1 rw\n"
		binfmt2 = "31 30 0:26 / /proc/sys/fs/binfmt_misc rw,relatime - binfmt_misc binfmt_misc rw\n"
		kcore   = "40 22 0:5 /null /proc/kcore rw,nosuid - devtmpfs udev rw\n"
		sys     = "41 22 0:21 /sys /proc/sys ro,relatime - proc proc rw\n"
		proc2   = "50 1 0:30 / /run/proc rw - proc proc rw\n"
	)
	tests := []struct {
		name    string
		text    string
		mounted bool
		over    []string
	}{
		{"host", root + proc, true, nil},
		{"systemd host: binfmt_misc is on an empty directory", root + proc + binfmt + binfmt2, true, nil},
		{"docker", root + proc + kcore + sys, true, []string{"/proc/kcore", "/proc/sys"}},
		{"a second, full proc", root + proc + kcore + proc2, true, nil},
		{"no proc", root, false, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mounted, over, err := ProcOvermounts(strings.NewReader(tt.text))
			if err != nil {
				t.Fatal(err)
			}
			if mounted != tt.mounted || !slices.Equal(over, tt.over) {
				t.Errorf("got %v %q, want %v %q", mounted, over, tt.mounted, tt.over)
			}
		})
	}
}

func TestDoctorAppArmorProfile(t *testing.T) {
	const exe = "/usr/local/bin/sbx"
	tests := []struct {
		name, text string
		want       bool
	}{
		{"ubuntu shape", "abi <abi/4.0>,\ninclude <tunables/global>\nprofile sbx /usr/local/bin/sbx flags=(unconfined) {\n  userns,\n  include if exists <local/sbx>\n}\n", true},
		{"attached by path", "/usr/local/bin/sbx flags=(unconfined) {\n  allow userns create,\n}\n", true},
		{"another program", "profile bwrap /usr/bin/bwrap flags=(unconfined) {\n  userns,\n}\n", false},
		{"no userns rule", "profile sbx /usr/local/bin/sbx {\n  capability,\n}\n", false},
		{"rule commented out", "profile sbx /usr/local/bin/sbx {\n  # userns,\n}\n", false},
	}
	for _, tt := range tests {
		if got := AppArmorAllowsUserns(tt.text, exe); got != tt.want {
			t.Errorf("%s: got %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestDoctorCgroupMode(t *testing.T) {
	for _, tt := range []struct {
		v2   string
		v1   []string
		want string
	}{
		{"/sys/fs/cgroup", nil, "unified"},
		{"/sys/fs/cgroup/unified", []string{"memory"}, "hybrid"},
		{"", []string{"memory"}, "v1"},
		{"", nil, "none"},
	} {
		if got := CgroupMode(tt.v2, tt.v1); got != tt.want {
			t.Errorf("CgroupMode(%q, %q) = %q, want %q", tt.v2, tt.v1, got, tt.want)
		}
	}
}
