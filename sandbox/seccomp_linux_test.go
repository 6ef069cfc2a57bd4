package sandbox

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strings"
	"testing"

	libseccomp "github.com/seccomp/libseccomp-golang"
	"golang.org/x/sys/unix"

	"sbx/policy"
)

const (
	allow     = unix.SECCOMP_RET_ALLOW
	killProc  = unix.SECCOMP_RET_KILL_PROCESS
	notified  = unix.SECCOMP_RET_USER_NOTIF
	retErrno  = unix.SECCOMP_RET_ERRNO
	personaNR = "personality"
)

func errnoRet(e unix.Errno) uint32 { return retErrno | uint32(e) }

type call struct {
	name string
	args [6]uint64
	want uint32
}

// nr is a call's number on arch, from libseccomp's tables or sbx's.
func nr(t *testing.T, name string, arch libseccomp.ScmpArch) int32 {
	t.Helper()
	n, err := libseccomp.GetSyscallFromNameByArch(name, arch)
	if err != nil {
		if u, ok := unifiedNumber(name); ok {
			return u
		}
		t.Fatalf("%s on %v: %v", name, arch, err)
	}
	return int32(n)
}

// defaultCalls are the default filter's decisions that the hardening
// issue asks for, whatever the architecture.
func defaultCalls() []call {
	ns := func(flag uint64) [6]uint64 { return [6]uint64{flag} }
	return []call{
		{name: "getpid", want: allow},
		{name: "read", want: allow},
		{name: "ioctl", args: [6]uint64{0, unix.TIOCGWINSZ}, want: allow},
		{name: "ioctl", args: [6]uint64{0, unix.TIOCSTI}, want: errnoRet(unix.EPERM)},
		{name: "ioctl", args: [6]uint64{0, unix.TIOCSTI | 1<<32}, want: errnoRet(unix.EPERM)},
		{name: "ioctl", args: [6]uint64{0, 0x541C}, want: errnoRet(unix.EPERM)}, // TIOCLINUX
		{name: "ioctl", args: [6]uint64{0, 0x541C | 0xffffffff00000000}, want: errnoRet(unix.EPERM)},
		{name: "unshare", args: ns(unix.CLONE_NEWUSER), want: errnoRet(unix.EPERM)},
		{name: "unshare", args: ns(unix.CLONE_NEWNS), want: errnoRet(unix.EPERM)},
		{name: "unshare", args: ns(unix.CLONE_NEWTIME), want: errnoRet(unix.EPERM)},
		{name: "unshare", args: ns(unix.CLONE_FILES), want: allow},
		{name: "clone3", want: errnoRet(unix.ENOSYS)},
		{name: "open_tree", want: errnoRet(unix.ENOSYS)},
		{name: "open_tree_attr", want: errnoRet(unix.ENOSYS)},
		{name: "move_mount", want: errnoRet(unix.ENOSYS)},
		{name: "fsopen", want: errnoRet(unix.ENOSYS)},
		{name: "fsconfig", want: errnoRet(unix.ENOSYS)},
		{name: "fsmount", want: errnoRet(unix.ENOSYS)},
		{name: "fspick", want: errnoRet(unix.ENOSYS)},
		{name: "mount_setattr", want: errnoRet(unix.ENOSYS)},
		{name: "mount", want: errnoRet(unix.EPERM)},
		{name: "umount2", want: errnoRet(unix.EPERM)},
		{name: "pivot_root", want: errnoRet(unix.EPERM)},
		{name: "chroot", want: errnoRet(unix.EPERM)},
		{name: "setns", want: errnoRet(unix.EPERM)},
		{name: "keyctl", want: errnoRet(unix.EPERM)},
		{name: "add_key", want: errnoRet(unix.EPERM)},
		{name: "request_key", want: errnoRet(unix.EPERM)},
		{name: "bpf", want: errnoRet(unix.EPERM)},
		{name: "perf_event_open", want: errnoRet(unix.EPERM)},
		{name: "userfaultfd", want: errnoRet(unix.EPERM)},
		{name: "kexec_load", want: errnoRet(unix.EPERM)},
		{name: "kexec_file_load", want: errnoRet(unix.EPERM)},
		{name: "init_module", want: errnoRet(unix.EPERM)},
		{name: "finit_module", want: errnoRet(unix.EPERM)},
		{name: "delete_module", want: errnoRet(unix.EPERM)},
		{name: personaNR, args: ns(0), want: allow},
		{name: personaNR, args: ns(0xffffffff), want: allow},
		{name: personaNR, args: ns(0x0040000), want: errnoRet(unix.EPERM)},
		{name: "ptrace", want: allow},
		// Allowed by Docker's profile, unknown to libseccomp 2.5.4.
		{name: "statmount", want: allow},
		{name: "listmount", want: allow},
		{name: "mseal", want: allow},
		{name: "setxattrat", want: allow},
		{name: "getxattrat", want: allow},
		{name: "listxattrat", want: allow},
		{name: "removexattrat", want: allow},
		// Known by sbx's table, allowed by Docker's only with CAP_SYS_ADMIN.
		{name: "lsm_list_modules", want: errnoRet(unix.EPERM)},
	}
}

func check(t *testing.T, prog []insn, arch libseccomp.ScmpArch, audit uint32, calls []call) {
	t.Helper()
	for _, c := range calls {
		d := &seccompData{NR: nr(t, c.name, arch), Arch: audit, Args: c.args}
		got, err := runBPF(prog, d)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if got != c.want {
			t.Errorf("%s%x: action %#x, want %#x", c.name, c.args[:2], got, c.want)
		}
	}
}

func TestDefaultFilterNative(t *testing.T) {
	f, err := buildFilter(policy.Seccomp{Mode: policy.SeccompDefault})
	if err != nil {
		t.Fatal(err)
	}
	audit := auditArches[runtime.GOARCH]
	check(t, f.prog, f.arch, audit, defaultCalls())
	if runtime.GOARCH == "amd64" {
		// int $0x80: the i386 ABI; x32: the x86_64 arch with bit 30 set.
		got, _ := runBPF(f.prog, &seccompData{NR: 20, Arch: unix.AUDIT_ARCH_I386}) // getpid
		if got != killProc {
			t.Errorf("i386 getpid: %#x, want kill", got)
		}
		got, _ = runBPF(f.prog, &seccompData{NR: 39 | 0x40000000, Arch: unix.AUDIT_ARCH_X86_64})
		if got != killProc {
			t.Errorf("x32 getpid: %#x, want kill", got)
		}
		got, _ = runBPF(f.prog, &seccompData{NR: 16 | 0x40000000, Arch: unix.AUDIT_ARCH_X86_64, Args: [6]uint64{0, unix.TIOCSTI}})
		if got != killProc {
			t.Errorf("x32 ioctl TIOCSTI: %#x, want kill", got)
		}
	}
}

// The arm64 filter, built here whatever the machine: AArch32 calls are
// killed, and the same decisions hold.
func TestDefaultFilterARM64(t *testing.T) {
	sp, err := defaultProfile()
	if err != nil {
		t.Fatal(err)
	}
	prog, err := compile(sp, libseccomp.ArchARM64, unix.AUDIT_ARCH_AARCH64, false)
	if err != nil {
		t.Fatal(err)
	}
	check(t, prog, libseccomp.ArchARM64, unix.AUDIT_ARCH_AARCH64, defaultCalls())
	got, _ := runBPF(prog, &seccompData{NR: 20, Arch: unix.AUDIT_ARCH_ARM}) // getpid on AArch32
	if got != killProc {
		t.Errorf("AArch32 getpid: %#x, want kill", got)
	}
	// A number past every call sbx knows: ENOSYS (TestNewerCallsENOSYS), on arm64 only.
	newer := int32(lastKnown(libseccomp.ArchARM64) + 1)
	if got, _ := runBPF(prog, &seccompData{NR: newer, Arch: unix.AUDIT_ARCH_AARCH64}); got != errnoRet(unix.ENOSYS) {
		t.Errorf("arm64 call %d: %#x, want ENOSYS", newer, got)
	}
	if got, _ := runBPF(prog, &seccompData{NR: newer, Arch: unix.AUDIT_ARCH_ARM}); got != killProc {
		t.Errorf("AArch32 call %d: %#x, want kill", newer, got)
	}
}

func TestNotifyFilter(t *testing.T) {
	f, err := buildFilter(policy.Seccomp{Mode: policy.SeccompDefault, LogDenied: true})
	if err != nil {
		t.Fatal(err)
	}
	audit := auditArches[runtime.GOARCH]
	var calls []call
	for _, c := range defaultCalls() {
		if c.want != allow {
			c.want = notified
		}
		calls = append(calls, c)
	}
	check(t, f.prog, f.arch, audit, calls)
	check(t, f.real, f.arch, audit, defaultCalls())
}

func TestProfileFilter(t *testing.T) {
	s := policy.Seccomp{Mode: policy.SeccompProfile, Path: "p.json",
		JSON: `{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["getcwd"],"action":"SCMP_ACT_ERRNO","errnoRet":13}]}`}
	f, err := buildFilter(s)
	if err != nil {
		t.Fatal(err)
	}
	audit := auditArches[runtime.GOARCH]
	check(t, f.prog, f.arch, audit, []call{
		{name: "getcwd", want: errnoRet(unix.EACCES)},
		{name: "keyctl", want: allow},
		{name: "ioctl", args: [6]uint64{0, unix.TIOCSTI | 1<<32}, want: errnoRet(unix.EPERM)},
	})
	// A profile that lets other ABIs through has them guarded too.
	s.JSON = `{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_X86_64","SCMP_ARCH_X86","SCMP_ARCH_X32"]}`
	if runtime.GOARCH == "amd64" {
		f, err := buildFilter(s)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			name string
			d    seccompData
			want uint32
		}{
			{"i386 ioctl TIOCSTI", seccompData{NR: 54, Arch: unix.AUDIT_ARCH_I386, Args: [6]uint64{0, unix.TIOCSTI}}, errnoRet(unix.EPERM)},
			{"i386 ioctl TIOCLINUX", seccompData{NR: 54, Arch: unix.AUDIT_ARCH_I386, Args: [6]uint64{0, 0x541C}}, errnoRet(unix.EPERM)},
			{"i386 ioctl TCGETS", seccompData{NR: 54, Arch: unix.AUDIT_ARCH_I386, Args: [6]uint64{0, unix.TCGETS}}, allow},
			{"i386 getpid", seccompData{NR: 20, Arch: unix.AUDIT_ARCH_I386}, allow},
			{"x32 ioctl TIOCSTI", seccompData{NR: 0x40000202, Arch: unix.AUDIT_ARCH_X86_64, Args: [6]uint64{0, unix.TIOCSTI | 1<<32}}, errnoRet(unix.EPERM)},
			{"x86_64 ioctl TIOCSTI", seccompData{NR: 16, Arch: unix.AUDIT_ARCH_X86_64, Args: [6]uint64{0, unix.TIOCSTI}}, errnoRet(unix.EPERM)},
			{"AArch32 getpid", seccompData{NR: 20, Arch: unix.AUDIT_ARCH_ARM}, killProc},
		} {
			if got, err := runBPF(f.prog, &c.d); err != nil || got != c.want {
				t.Errorf("%s: %#x %v, want %#x", c.name, got, err, c.want)
			}
		}
	}
	for _, bad := range []string{`{`, `{"defaultAction":"SCMP_ACT_NOPE"}`, `{}`,
		`{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["read"],"action":"SCMP_ACT_ERRNO","args":[{"index":0,"value":1,"op":"SCMP_CMP_BOGUS"}]}]}`} {
		s.JSON = bad
		if _, err := buildFilter(s); err == nil {
			t.Errorf("profile %s: no error", bad)
		}
	}
}

// The table of newer calls matches golang.org/x/sys/unix's numbers, and
// libseccomp's where it knows the name, on each ABI sbx filters.
func TestUnifiedSyscalls(t *testing.T) {
	for _, c := range []struct {
		nr   int
		name string
	}{
		{unix.SYS_PIDFD_SEND_SIGNAL, "pidfd_send_signal"}, {unix.SYS_IO_URING_SETUP, "io_uring_setup"},
		{unix.SYS_IO_URING_ENTER, "io_uring_enter"}, {unix.SYS_IO_URING_REGISTER, "io_uring_register"},
		{unix.SYS_OPEN_TREE, "open_tree"}, {unix.SYS_MOVE_MOUNT, "move_mount"}, {unix.SYS_FSOPEN, "fsopen"},
		{unix.SYS_FSCONFIG, "fsconfig"}, {unix.SYS_FSMOUNT, "fsmount"}, {unix.SYS_FSPICK, "fspick"},
		{unix.SYS_PIDFD_OPEN, "pidfd_open"}, {unix.SYS_CLONE3, "clone3"}, {unix.SYS_CLOSE_RANGE, "close_range"},
		{unix.SYS_OPENAT2, "openat2"}, {unix.SYS_PIDFD_GETFD, "pidfd_getfd"}, {unix.SYS_FACCESSAT2, "faccessat2"},
		{unix.SYS_PROCESS_MADVISE, "process_madvise"}, {unix.SYS_EPOLL_PWAIT2, "epoll_pwait2"},
		{unix.SYS_MOUNT_SETATTR, "mount_setattr"}, {unix.SYS_QUOTACTL_FD, "quotactl_fd"},
		{unix.SYS_LANDLOCK_CREATE_RULESET, "landlock_create_ruleset"}, {unix.SYS_LANDLOCK_ADD_RULE, "landlock_add_rule"},
		{unix.SYS_LANDLOCK_RESTRICT_SELF, "landlock_restrict_self"}, {unix.SYS_MEMFD_SECRET, "memfd_secret"},
		{unix.SYS_PROCESS_MRELEASE, "process_mrelease"}, {unix.SYS_FUTEX_WAITV, "futex_waitv"},
		{unix.SYS_SET_MEMPOLICY_HOME_NODE, "set_mempolicy_home_node"}, {unix.SYS_CACHESTAT, "cachestat"},
		{unix.SYS_FCHMODAT2, "fchmodat2"}, {unix.SYS_MAP_SHADOW_STACK, "map_shadow_stack"},
		{unix.SYS_FUTEX_WAKE, "futex_wake"}, {unix.SYS_FUTEX_WAIT, "futex_wait"}, {unix.SYS_FUTEX_REQUEUE, "futex_requeue"},
		{unix.SYS_STATMOUNT, "statmount"}, {unix.SYS_LISTMOUNT, "listmount"},
		{unix.SYS_LSM_GET_SELF_ATTR, "lsm_get_self_attr"}, {unix.SYS_LSM_SET_SELF_ATTR, "lsm_set_self_attr"},
		{unix.SYS_LSM_LIST_MODULES, "lsm_list_modules"}, {unix.SYS_MSEAL, "mseal"},
		{unix.SYS_SETXATTRAT, "setxattrat"}, {unix.SYS_GETXATTRAT, "getxattrat"},
		{unix.SYS_LISTXATTRAT, "listxattrat"}, {unix.SYS_REMOVEXATTRAT, "removexattrat"},
		{unix.SYS_OPEN_TREE_ATTR, "open_tree_attr"}, {unix.SYS_FILE_GETATTR, "file_getattr"},
		{unix.SYS_FILE_SETATTR, "file_setattr"}, // Linux 6.17; 6.18 added none
	} {
		if got, ok := unifiedNumber(c.name); !ok || got != int32(c.nr) {
			t.Errorf("%s: table %d (%v), x/sys %d", c.name, got, ok, c.nr)
		}
		if got, ok := unifiedName(int32(c.nr)); !ok || got != c.name {
			t.Errorf("%d: table %q, x/sys %s", c.nr, got, c.name)
		}
	}
	if n := lastUnified - firstUnified + 1; n != 46 {
		t.Errorf("the table has %d calls, the list above 46", n)
	}
	for _, a := range []libseccomp.ScmpArch{libseccomp.ArchAMD64, libseccomp.ArchX86, libseccomp.ArchX32,
		libseccomp.ArchARM64, libseccomp.ArchARM, libseccomp.ArchRISCV64, libseccomp.ArchPPC64LE, libseccomp.ArchS390X} {
		for nr := int32(firstUnified); nr <= lastUnified; nr++ {
			name, _ := unifiedName(nr)
			got, err := libseccomp.GetSyscallFromNameByArch(name, a)
			if err != nil || got < 0 {
				continue // newer than this libseccomp (what the table is for), or not a call of this ABI
			}
			want := nr
			if a == libseccomp.ArchX32 {
				want |= x32Bit
			}
			if int32(got) != want {
				t.Errorf("%s on %v: libseccomp %d, the table %d", name, a, got, want)
			}
		}
	}
}

// A profile's rule for a call libseccomp does not know by name holds on
// every ABI the profile lets through; a name neither libseccomp nor sbx
// knows is skipped; what sbx cannot decide by number is refused.
func TestUnknownToLibseccomp(t *testing.T) {
	if _, err := libseccomp.GetSyscallFromName("file_getattr"); err == nil {
		t.Skip("skipped: this libseccomp knows file_getattr")
	}
	arches := `"SCMP_ARCH_AARCH64","SCMP_ARCH_ARM"`
	if runtime.GOARCH == "amd64" {
		arches = `"SCMP_ARCH_X86_64","SCMP_ARCH_X86","SCMP_ARCH_X32"`
	}
	profile := func(rules string) policy.Seccomp {
		return policy.Seccomp{Mode: policy.SeccompProfile, Path: "p.json", JSON: `{"defaultAction":"SCMP_ACT_ERRNO","architectures":[` + arches + `],
			"syscalls":[{"names":["read","write","execve","exit_group"],"action":"SCMP_ACT_ALLOW"}` + rules + `]}`}
	}
	f, err := buildFilter(profile(`,{"names":["file_getattr","no_such_call"],"action":"SCMP_ACT_ALLOW"},
		{"names":["mseal"],"action":"SCMP_ACT_ERRNO","errnoRet":13}`))
	if err != nil {
		t.Fatal(err)
	}
	abis := []seccompData{{Arch: auditArches[runtime.GOARCH]}}
	if runtime.GOARCH == "amd64" {
		abis = append(abis, seccompData{Arch: unix.AUDIT_ARCH_I386}, seccompData{Arch: unix.AUDIT_ARCH_X86_64, NR: x32Bit})
	} else if runtime.GOARCH == "arm64" {
		abis = append(abis, seccompData{Arch: unix.AUDIT_ARCH_ARM})
	}
	for _, abi := range abis {
		for _, c := range []struct {
			nr   int32
			want uint32
		}{{468, allow}, {462, errnoRet(unix.EACCES)}, {467, errnoRet(unix.EPERM)}, {400, errnoRet(unix.EPERM)}} {
			d := abi
			d.NR |= c.nr
			if got, err := runBPF(f.prog, &d); err != nil || got != c.want {
				t.Errorf("arch %#x call %#x: %#x %v, want %#x", d.Arch, d.NR, got, err, c.want)
			}
		}
	}
	if name, known := f.syscallName(462, auditArches[runtime.GOARCH]); name != "mseal" || !known {
		t.Errorf("call 462 is named %q (%v), want mseal", name, known)
	}
	for _, bad := range []struct{ rules, says string }{
		{`,{"names":["mseal"],"action":"SCMP_ACT_ALLOW","args":[{"index":2,"value":0,"op":"SCMP_CMP_EQ"}]}`, "mseal: argument checks"},
		{`,{"names":["mseal"],"action":"SCMP_ACT_ALLOW"},{"names":["mseal"],"action":"SCMP_ACT_KILL"}`, "mseal: two rules"},
	} {
		if _, err := buildFilter(profile(bad.rules)); err == nil || !strings.Contains(err.Error(), bad.says) {
			t.Errorf("%s: error %v, want %q", bad.rules, err, bad.says)
		}
	}
}

// A call numbered above every one sbx knows answers ENOSYS where the
// default is an errno, on the native ABI, so that a program falls back as
// on an older kernel; a call sbx knows keeps the profile's answer, x32's
// numbers stay killed, and other defaults (kill, allow) stay as they are.
func TestNewerCallsENOSYS(t *testing.T) {
	enosys, eperm := errnoRet(unix.ENOSYS), errnoRet(unix.EPERM)
	type decision struct {
		d    seccompData
		want uint32
	}
	decide := func(t *testing.T, name string, prog []insn, ds []decision) {
		t.Helper()
		for _, c := range ds {
			if got, err := runBPF(prog, &c.d); err != nil || got != c.want {
				t.Errorf("%s: arch %#x call %#x: %#x %v, want %#x", name, c.d.Arch, uint32(c.d.NR), got, err, c.want)
			}
		}
	}
	native := func(nr uint32, want uint32) decision {
		return decision{seccompData{NR: int32(nr), Arch: auditArches[runtime.GOARCH]}, want}
	}
	f, err := buildFilter(policy.Seccomp{Mode: policy.SeccompDefault})
	if err != nil {
		t.Fatal(err)
	}
	last := uint32(lastKnown(f.arch))
	ds := []decision{
		native(uint32(lastUnified), eperm), // file_setattr: known, not in Docker's allowlist
		native(last+1, enosys), native(999, enosys), native(x32Bit-1, enosys),
	}
	if runtime.GOARCH == "amd64" {
		ds = append(ds, native(x32Bit|(last+1), killProc), native(x32Bit|999, killProc),
			decision{seccompData{NR: int32(last + 1), Arch: unix.AUDIT_ARCH_I386}, killProc})
	}
	decide(t, "default", f.prog, ds)
	nf, err := buildFilter(policy.Seccomp{Mode: policy.SeccompDefault, LogDenied: true})
	if err != nil {
		t.Fatal(err)
	}
	decide(t, "--log-denied", nf.prog, []decision{native(999, notified)})
	decide(t, "--log-denied's real filter", nf.real, []decision{native(999, enosys)})

	// arm64's: TestDefaultFilterARM64.
	profile := func(def string) []insn {
		t.Helper()
		f, err := buildFilter(policy.Seccomp{Mode: policy.SeccompProfile, Path: "p.json", JSON: `{` + def + `,
			"syscalls":[{"names":["read","write","execve","exit_group"],"action":"SCMP_ACT_ALLOW"}]}`})
		if err != nil {
			t.Fatal(err)
		}
		return f.prog
	}
	decide(t, "errno default", profile(`"defaultAction":"SCMP_ACT_ERRNO"`), []decision{native(999, enosys), native(uint32(lastUnified), eperm)})
	decide(t, "EACCES default", profile(`"defaultAction":"SCMP_ACT_ERRNO","defaultErrnoRet":13`), []decision{native(999, enosys), native(uint32(lastUnified), errnoRet(unix.EACCES))})
	decide(t, "kill default", profile(`"defaultAction":"SCMP_ACT_KILL_PROCESS"`), []decision{native(999, killProc)})
	decide(t, "allow default", profile(`"defaultAction":"SCMP_ACT_ALLOW"`), []decision{native(999, allow)})
}

// errnoRet is 16 bits in the filter, and libseccomp takes it below 4095:
// a larger value would be another (65536 is 0, a success that does
// nothing) or libseccomp's misleading EINVAL, so it is refused, naming
// the rule and the value.
func TestProfileErrnoRet(t *testing.T) {
	rule := func(v string) string {
		return `{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir","mkdirat"],"action":"SCMP_ACT_ERRNO","errnoRet":` + v + `}]}`
	}
	for _, tc := range []struct{ json, want string }{
		{rule("65536"), "mkdir,mkdirat: errnoRet 65536: more than 4094"},
		{rule("4095"), "mkdir,mkdirat: errnoRet 4095: more than 4094"},
		{rule("4096"), "mkdir,mkdirat: errnoRet 4096: more than 4094"},
		{rule("99999"), "mkdir,mkdirat: errnoRet 99999: more than 4094"},
		{`{"defaultAction":"SCMP_ACT_ERRNO","defaultErrnoRet":65537,"syscalls":[{"names":["read","write","execve","exit_group"],"action":"SCMP_ACT_ALLOW"}]}`,
			"defaultErrnoRet 65537: more than 4094"},
	} {
		_, err := buildFilter(policy.Seccomp{Mode: policy.SeccompProfile, Path: "p.json", JSON: tc.json})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one with %q", tc.json, err, tc.want)
		}
	}
	for _, v := range []uint32{0, 1, 4094} {
		f, err := buildFilter(policy.Seccomp{Mode: policy.SeccompProfile, Path: "p.json", JSON: rule(fmt.Sprint(v))})
		if err != nil {
			t.Fatalf("errnoRet %d: %v", v, err)
		}
		check(t, f.prog, f.arch, auditArches[runtime.GOARCH], []call{{name: "mkdirat", want: retErrno | v}})
	}
}

var update = flag.Bool("update", false, "rewrite the built-in filters (filters/*.bpf)")

// The built-in filters must decide every call as a fresh compile of
// the default profile does: each call number of the architecture (and
// some beyond), with every constant either program compares against
// (and its neighbours) in each argument.
func TestBuiltinFilters(t *testing.T) {
	sp, err := defaultProfile()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		goarch string
		arch   libseccomp.ScmpArch
		audit  uint32
	}{{"amd64", libseccomp.ArchAMD64, unix.AUDIT_ARCH_X86_64}, {"arm64", libseccomp.ArchARM64, unix.AUDIT_ARCH_AARCH64}} {
		for _, notify := range []bool{false, true} {
			name := "filters/default-" + tc.goarch + ".bpf"
			if notify {
				name = "filters/default-notify-" + tc.goarch + ".bpf"
			}
			fresh, err := compile(sp, tc.arch, tc.audit, notify)
			if err != nil {
				t.Fatal(err)
			}
			if *update {
				if err := os.WriteFile(name, encodeBPF(fresh), 0o644); err != nil {
					t.Fatal(err)
				}
				continue // embedded at the next build
			}
			built, err := readBuiltin(name)
			if err != nil {
				t.Fatalf("%s: %v (go test ./sandbox -run TestBuiltinFilters -update)", name, err)
			}
			if diff := sameDecisions(fresh, built, tc.audit); diff != "" {
				t.Errorf("%s decides otherwise than a fresh compile (go test ./sandbox -run TestBuiltinFilters -update): %s", name, diff)
			}
		}
	}
}

func sameDecisions(a, b []insn, audit uint32) string {
	vals := map[uint64]bool{0: true, 0xffffffff: true, 1 << 32: true, 1 << 63: true}
	for _, p := range [][]insn{a, b} {
		for _, in := range p {
			if in.Code&0x07 == bpfJMP || in.Code&0x07 == bpfLD {
				k := uint64(in.K)
				vals[k], vals[k+1], vals[k-1], vals[k|1<<32], vals[k<<32] = true, true, true, true, true
			}
		}
	}
	nrs := []int32{999, x32Bit - 1, -1 << 31, -1} // beyond every table, and x32's
	for nr := int32(0); nr < 600; nr++ {
		nrs = append(nrs, nr)
	}
	for _, arch := range []uint32{audit, unix.AUDIT_ARCH_I386, unix.AUDIT_ARCH_ARM} {
		for _, nr := range nrs {
			for _, n := range []int32{nr, nr | x32Bit} {
				for pos := 0; pos < 6; pos++ {
					for v := range vals {
						d := &seccompData{NR: n, Arch: arch}
						d.Args[pos] = v
						x, errA := runBPF(a, d)
						y, errB := runBPF(b, d)
						if x != y || (errA == nil) != (errB == nil) {
							return fmt.Sprintf("arch %#x nr %d arg%d=%#x: %#x vs %#x", arch, n, pos, v, x, y)
						}
						if pos > 0 && v == 0 {
							break
						}
					}
				}
			}
		}
	}
	return ""
}

// A seccomp profile from a file is the user's input: whatever it holds,
// loading it is an error or a filter that decides every call, never a
// panic, and the terminal guard comes first.
func FuzzProfileFilter(f *testing.F) {
	f.Add(`{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["getcwd"],"action":"SCMP_ACT_ERRNO","errnoRet":13}]}`)
	f.Add(`{"defaultAction":"SCMP_ACT_ERRNO","architectures":["SCMP_ARCH_X86"],"syscalls":[{"names":["read","write","execve","exit_group"],"action":"SCMP_ACT_ALLOW","args":[{"index":0,"value":1,"op":"SCMP_CMP_MASKED_EQ","valueTwo":1}]}]}`)
	f.Add(`{"defaultAction":"SCMP_ACT_KILL","archMap":[{"architecture":"SCMP_ARCH_X86_64","subArchitectures":["SCMP_ARCH_X32"]}]}`)
	f.Fuzz(func(t *testing.T, text string) {
		fl, err := buildFilter(policy.Seccomp{Mode: policy.SeccompProfile, Path: "p.json", JSON: text})
		if err != nil {
			return
		}
		for nr := int32(0); nr < 460; nr += 7 {
			if _, err := runBPF(fl.prog, &seccompData{NR: nr, Arch: auditArches[runtime.GOARCH]}); err != nil {
				t.Fatalf("call %d: %v", nr, err)
			}
		}
		got, err := runBPF(fl.prog, &seccompData{NR: nr(t, "ioctl", fl.arch), Arch: auditArches[runtime.GOARCH], Args: [6]uint64{0, unix.TIOCSTI | 1<<40}})
		if err != nil || got&unix.SECCOMP_RET_ACTION_FULL == unix.SECCOMP_RET_ALLOW {
			t.Fatalf("TIOCSTI under %s: %#x %v", text, got, err)
		}
	})
}

// The interpreter never panics, whatever the program.
func FuzzRunBPF(f *testing.F) {
	f.Add(encodeBPF(terminalGuard([]guardedArch{{unix.AUDIT_ARCH_X86_64, 16}}, unix.SECCOMP_RET_KILL_PROCESS)), uint32(16), uint64(unix.TIOCSTI))
	f.Fuzz(func(t *testing.T, b []byte, nr uint32, arg uint64) {
		prog, err := decodeBPF(b[:len(b)/8*8])
		if err != nil {
			t.Fatal(err)
		}
		runBPF(prog, &seccompData{NR: int32(nr), Arch: unix.AUDIT_ARCH_X86_64, Args: [6]uint64{0, arg}})
	})
}

// The filter's file, as init reads it, holds both programs and notify.
func TestFilterFile(t *testing.T) {
	for _, notify := range []bool{false, true} {
		f, err := builtinFilter(runtime.GOARCH, notify)
		if err != nil {
			t.Fatal(err)
		}
		got, err := decodeFilter(f.encode())
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got.prog, f.prog) || !slices.Equal(got.real, f.real) || got.notify != notify {
			t.Errorf("notify %v: the filter changed on its way through its file", notify)
		}
	}
	if got, err := decodeFilter((*filter)(nil).encode()); got != nil || err != nil {
		t.Errorf("no filter: got %v, %v", got, err)
	}
	for _, b := range [][]byte{{0}, {2, 1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8}, {0, 0, 0, 0, 0}, {0, 2, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8}, {0, 1, 0, 0, 0, 1, 2, 3}} {
		if _, err := decodeFilter(b); err == nil {
			t.Errorf("decodeFilter(%v): no error", b)
		}
	}
}

func FuzzDecodeFilter(f *testing.F) {
	if flt, err := builtinFilter(runtime.GOARCH, true); err == nil {
		f.Add(flt.encode())
	}
	f.Add([]byte{0, 1, 0, 0, 0, 6, 0, 0, 0, 0, 0, 0xff, 0x7f})
	f.Fuzz(func(t *testing.T, b []byte) {
		flt, err := decodeFilter(b)
		if err != nil || flt == nil {
			return
		}
		if again, err := decodeFilter(flt.encode()); err != nil || !slices.Equal(again.prog, flt.prog) || !slices.Equal(again.real, flt.real) {
			t.Fatalf("%v: decoded, encoded and decoded again: %v", b, err)
		}
	})
}
