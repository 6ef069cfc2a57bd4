package tests

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The hardening layers: the seccomp filter, Landlock, and the check of the
// descriptors the payload keeps. Each test that shows a refusal runs the
// same payload with the layer off (--seccomp unconfined, --no-landlock) or
// with --log-denied, so that a refusal for another reason (no capability,
// a kernel without the call) cannot pass for the layer's.

var (
	unconfined = []string{"--seccomp", "unconfined"}
	noLandlock = []string{"--no-landlock"}
)

// sigsys is sbx's exit status when the filter kills the payload.
const sigsys = 128 + int(unix.SIGSYS)

// call runs the helper verb inside a sandbox made with flags and returns
// what it printed ("ok", an errno's name), or "SIGSYS" when it was killed
// by the filter.
func call(t *testing.T, flags []string, verb ...string) (string, result) {
	t.Helper()
	r := helper(t, flags, verb...)
	switch {
	case r.code == sigsys:
		return "SIGSYS", r
	case r.code != 0:
		t.Fatalf("helper %q with %q did not run\n%s", verb, flags, r)
	}
	return strings.TrimSpace(r.stdout), r
}

// TestSeccompRefuses tries each system call the default filter must refuse
// with the errno the contract names, then the same call with --seccomp
// unconfined, which must not give that errno: that the filter refuses it
// is then shown, not assumed. The arguments (see rawCall) are such that
// without a filter no call gives ENOSYS or creates anything that outlives
// the helper. Each call runs as the caller and as --root: the filter is
// Docker's for a process without capabilities either way.
func TestSeccompRefuses(t *testing.T) {
	requireUserns(t)
	t.Parallel()
	const (
		both = iota
		rootOnly
	)
	for _, tc := range []struct {
		call  string
		want  []string // what the payload gets under the default filter
		who   int
		newIn string // the kernel version that added the call: before it, unconfined gives ENOSYS too
		host  string // what this host's kernel (6.18) gives without the filter, as the caller
	}{
		{"clone3", []string{"ENOSYS"}, both, "", "EINVAL"}, // so that libc falls back to clone
		{"open_tree", []string{"ENOSYS"}, both, "", "ok"},
		{"open_tree_attr", []string{"ENOSYS"}, both, "6.15", "ok"}, // newer than Docker's profile and libseccomp 2.5.4
		{"fsopen", []string{"ENOSYS"}, both, "", "EPERM"},
		{"fspick", []string{"ENOSYS"}, both, "", "EPERM"},
		{"move_mount", []string{"ENOSYS"}, both, "", "EPERM"},
		{"fsconfig", []string{"ENOSYS"}, both, "", "EINVAL"},
		{"fsmount", []string{"ENOSYS"}, both, "", "EPERM"},
		{"mount_setattr", []string{"ENOSYS"}, both, "", "EINVAL"},
		{"keyctl", []string{"EPERM"}, both, "", "ok"},
		{"add_key", []string{"EPERM"}, both, "", "ok"},
		{"request_key", []string{"EPERM"}, both, "", "ENOKEY"},
		{"userfaultfd", []string{"EPERM"}, both, "", "ok"},
		{"personality_set", []string{"EPERM"}, both, "", "ok"},
		{"unshare_newuser", []string{"EPERM"}, both, "", "ENOSPC"}, // user.max_user_namespaces is 0 inside
		// As the caller, unshare(CLONE_NEWNS) is EPERM for want of
		// CAP_SYS_ADMIN anyway (TestLogDenied shows the filter's); as
		// --root it works without the filter.
		{"unshare_newns", []string{"EPERM"}, rootOnly, "", "ok (--root)"},
		// chroot as --root works without the filter (CAP_SYS_CHROOT in the
		// payload's namespace); Docker's profile for a process without
		// capabilities refuses it.
		{"chroot", []string{"EPERM"}, rootOnly, "", "ok (--root)"},
	} {
		for _, flags := range [][]string{nil, {"--root"}} {
			if tc.who == rootOnly && flags == nil {
				continue
			}
			t.Run(strings.Join(append([]string{tc.call}, flags...), " "), func(t *testing.T) {
				t.Parallel()
				got, r := call(t, flags, "sys", tc.call)
				if !slices.Contains(tc.want, got) {
					t.Errorf("%s under the default filter: %s, want %s\n%s", tc.call, got, strings.Join(tc.want, " or "), r)
				}
				free, r := call(t, append(slices.Clone(flags), unconfined...), "sys", tc.call)
				switch {
				case free == "SIGSYS":
					t.Errorf("%s with --seccomp unconfined was killed by SIGSYS: a filter is still there\n%s", tc.call, r)
				case tc.newIn != "" && free == "ENOSYS":
					t.Logf("%s: this kernel predates it (Linux %s), so only the default run says something", tc.call, tc.newIn)
				case slices.Contains(tc.want, free):
					t.Errorf("%s with --seccomp unconfined: %s as well (this host: %s), so the test cannot tell the filter's refusal from the kernel's\n%s",
						tc.call, free, tc.host, r)
				}
			})
		}
	}
}

// TestSeccompNewerCalls tries the calls that Docker's profile allows and
// the libseccomp sbx is built with does not know by name (2.5.4 stops at
// 456): each must answer as without a filter, not the default's EPERM. A
// call that sbx's table knows and the profile does not allow stays
// refused with EPERM (lsm_list_modules needs CAP_SYS_ADMIN in Docker's).
func TestSeccompNewerCalls(t *testing.T) {
	requireUserns(t)
	t.Parallel()
	for _, c := range []string{"mseal", "statmount", "listmount", "getxattrat"} {
		t.Run(c, func(t *testing.T) {
			t.Parallel()
			got, r := call(t, nil, "sys", c)
			free, _ := call(t, unconfined, "sys", c)
			if got != free || got == "EPERM" {
				t.Errorf("%s under the default filter: %s, want %s as without it\n%s", c, got, free, r)
			}
		})
	}
	t.Run("lsm_list_modules", func(t *testing.T) {
		t.Parallel()
		got, r := call(t, nil, "sys", "lsm_list_modules")
		if got != "EPERM" {
			t.Errorf("lsm_list_modules under the default filter: %s, want EPERM\n%s", got, r)
		}
		if free, r := call(t, unconfined, "sys", "lsm_list_modules"); free == "EPERM" {
			t.Errorf("lsm_list_modules with --seccomp unconfined: EPERM as well: the test cannot tell the filter's\n%s", r)
		}
	})
}

// TestSeccompUnknownNumbers tries call numbers that no call sbx knows
// has (470 is the first after Linux 6.18's): where the filter's default
// is an errno they must answer ENOSYS, as a kernel without them does, so
// that programs fall back, not the allowlist's EPERM; --log-denied
// reports them. (The unit tests cover profiles with other defaults.)
func TestSeccompUnknownNumbers(t *testing.T) {
	requireUserns(t)
	t.Parallel()
	for _, tc := range []struct {
		name  string
		flags []string
		want  string
	}{
		{"default", nil, "ENOSYS"},
		{"--root", []string{"--root"}, "ENOSYS"},
		{"--log-denied", []string{"--log-denied"}, "ENOSYS"},
	} {
		for _, nr := range []string{"470", "999"} {
			t.Run(tc.name+" "+nr, func(t *testing.T) {
				t.Parallel()
				got, r := call(t, tc.flags, "sys", "nr="+nr)
				if got != tc.want {
					t.Errorf("call %s under %q: %s, want %s\n%s", nr, tc.flags, got, tc.want, r)
				}
				if slices.Contains(tc.flags, "--log-denied") && !hasDenied(r, "syscall "+nr) {
					t.Errorf("call %s with --log-denied: no %q line\n%s", nr, "sbx: denied: syscall "+nr, r)
				}
			})
		}
	}
}

// TestSeccompAllows tries to break the calls the default filter must let
// through, some of them neighbours of refused ones.
func TestSeccompAllows(t *testing.T) {
	requireUserns(t)
	t.Parallel()
	for _, c := range []string{"getpid", "getcwd", "personality_query"} {
		t.Run(c, func(t *testing.T) {
			t.Parallel()
			if got, r := call(t, nil, "sys", c); got != "ok" {
				t.Errorf("%s under the default filter: %s, want ok\n%s", c, got, r)
			}
		})
	}
}

// TestSeccompStatus tries to break "every sandbox gets a filter, and
// --seccomp unconfined none": the payload's /proc/self/status, against
// the filters this test process already runs under.
func TestSeccompStatus(t *testing.T) {
	requireUserns(t)
	t.Parallel()
	host := seccompFilters(t, readFile(t, "/proc/self/status"))
	for _, tc := range []struct {
		name  string
		flags []string
		added bool
	}{
		{"default", nil, true},
		{"--root", []string{"--root"}, true},
		{"--strict", []string{"--strict"}, true},
		{"--no-landlock", noLandlock, true},
		{"--seccomp unconfined", unconfined, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if landlockPartial && tc.name == "--strict" {
				t.Skip("this kernel's Landlock ABI is partial: TestLandlockBestEffort checks --strict")
			}
			r := sh(t, "cat /proc/self/status", tc.flags...)
			if r.code != 0 {
				t.Fatalf("want exit 0\n%s", r)
			}
			got := seccompFilters(t, r.stdout)
			if tc.added && (got <= host || statusFields(r.stdout)["Seccomp"] != "2") {
				t.Errorf("%s: Seccomp %q with %d filters, want mode 2 and more than this process's %d",
					tc.name, statusFields(r.stdout)["Seccomp"], got, host)
			}
			if !tc.added && got != host {
				t.Errorf("%s: %d filters, want this process's %d", tc.name, got, host)
			}
		})
	}
}

func seccompFilters(t *testing.T, status string) int {
	t.Helper()
	f := statusFields(status)
	n, err := strconv.Atoi(f["Seccomp_filters"])
	if err != nil {
		t.Fatalf("no Seccomp_filters in /proc/PID/status (Linux 5.9 or later): %q", f["Seccomp_filters"])
	}
	return n
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestSeccompTTYIoctl tries to push input into a terminal with TIOCSTI,
// with its command's upper 32 bits set (CVE-2019-10063: the kernel reads
// 32, a filter that compares 64 lets it through), and TIOCLINUX. The
// terminal is a pty of the sandbox's own devpts that the helper made its
// controlling terminal, so that without the filter TIOCSTI works (when
// dev.tty.legacy_tiocsti is 1; else the kernel gives EIO).
func TestSeccompTTYIoctl(t *testing.T) {
	requireUserns(t)
	t.Parallel()
	// Before Linux 6.2 there is no such setting: TIOCSTI always works.
	sti := "ok"
	if b, err := os.ReadFile("/proc/sys/dev/tty/legacy_tiocsti"); err == nil && strings.TrimSpace(string(b)) == "0" {
		sti = "EIO"
	}
	for _, tc := range []struct {
		ioctl      string
		unconfined string // "": anything but EPERM
	}{
		{"tiocsti", sti},
		{"tiocsti-high", sti},
		{"tioclinux", ""}, // not a virtual console: ENOTTY
	} {
		t.Run(tc.ioctl, func(t *testing.T) {
			t.Parallel()
			got, r := call(t, nil, "tty-ioctl", tc.ioctl)
			if got != "EPERM" {
				t.Errorf("%s under the default filter: %s, want EPERM\n%s", tc.ioctl, got, r)
			}
			free, r := call(t, unconfined, "tty-ioctl", tc.ioctl)
			if tc.unconfined != "" && free != tc.unconfined || free == "EPERM" {
				t.Errorf("%s with --seccomp unconfined: %s, want %s (not EPERM): the test does not reach the ioctl\n%s",
					tc.ioctl, free, cmp.Or(tc.unconfined, "not EPERM"), r)
			}
		})
	}
}

// TestSeccompForeignABI tries the other two ABIs of an x86-64 kernel, which
// a filter written for the native one would let through: getpid through
// int $0x80 (i386) and through the x32 bit. Under the default filter the
// payload is killed (SIGSYS) or gets an error.
func TestSeccompForeignABI(t *testing.T) {
	requireUserns(t)
	if runtime.GOARCH != "amd64" {
		t.Skip("skipped: x86-64 only")
	}
	exe := requireCHelper(t)
	t.Parallel()
	run := func(t *testing.T, flags []string, verb string) (string, result) {
		t.Helper()
		args := append(append(append([]string{"run"}, helperFlags()...), flags...), "--", exe, verb)
		r := runSbx(t, args...)
		switch r.code {
		case sigsys:
			return "SIGSYS", r
		case 0:
			return strings.TrimSpace(r.stdout), r
		}
		t.Fatalf("chelper %s with %q did not run\n%s", verb, flags, r)
		return "", r
	}
	for _, tc := range []struct{ verb, kernel string }{
		{"int80", "IA32 emulation (CONFIG_IA32_EMULATION, ia32_emulation=1)"},
		{"x32", "the x32 ABI (CONFIG_X86_X32_ABI)"},
	} {
		t.Run(tc.verb, func(t *testing.T) {
			t.Parallel()
			got, r := run(t, nil, tc.verb)
			if got == "ok" {
				t.Errorf("getpid through %s succeeded under the default filter\n%s", tc.verb, r)
			}
			free, r := run(t, unconfined, tc.verb)
			switch free {
			case "ok":
				t.Logf("%s: default %s, unconfined ok", tc.verb, got)
			case "ENOSYS":
				t.Logf("%s: this kernel lacks %s (unconfined: ENOSYS), so only the default run (%s) says something", tc.verb, tc.kernel, got)
			default:
				t.Errorf("%s with --seccomp unconfined: %s, want ok or ENOSYS\n%s", tc.verb, free, r)
			}
		})
	}
}

// TestLogDenied tries to break --log-denied: each refused call is one
// "sbx: denied: NAME" line on sbx's stderr and the payload still gets the
// error. For the calls that fail without the filter too (no capability,
// unprivileged_bpf_disabled, a kernel built without modules or kexec), the
// line is what shows that the filter refused them.
func TestLogDenied(t *testing.T) {
	requireUserns(t)
	t.Parallel()
	for _, tc := range []struct {
		call, syscall string
		want          []string
	}{
		{"mount", "mount", []string{"EPERM"}},
		{"umount2", "umount2", []string{"EPERM"}},
		{"pivot_root", "pivot_root", []string{"EPERM"}},
		{"chroot", "chroot", []string{"EPERM"}},
		{"unshare_newns", "unshare", []string{"EPERM"}},
		{"bpf", "bpf", []string{"EPERM"}},
		{"perf_event_open", "perf_event_open", []string{"EPERM"}},
		{"kexec_load", "kexec_load", []string{"EPERM"}},
		{"init_module", "init_module", []string{"EPERM"}},
		{"finit_module", "finit_module", []string{"EPERM"}},
		{"delete_module", "delete_module", []string{"EPERM"}},
		{"open_by_handle_at", "open_by_handle_at", []string{"EPERM"}},
		{"keyctl", "keyctl", []string{"EPERM"}},
		{"lsm_list_modules", "lsm_list_modules", []string{"EPERM"}}, // named from sbx's table: libseccomp 2.5.4 does not know it
		{"personality_set", "personality", []string{"EPERM"}},
		{"open_tree", "open_tree", []string{"ENOSYS"}},
		{"open_tree_attr", "open_tree_attr", []string{"ENOSYS"}},
		{"fsopen", "fsopen", []string{"ENOSYS"}},
		{"unshare_newuser", "unshare", []string{"EPERM"}}, // in a child of the payload, between fork and exec
	} {
		t.Run(tc.call, func(t *testing.T) {
			t.Parallel()
			got, r := call(t, []string{"--log-denied"}, "sys", tc.call)
			if !slices.Contains(tc.want, got) {
				t.Errorf("%s with --log-denied: the payload got %s, want %s\n%s", tc.call, got, strings.Join(tc.want, " or "), r)
			}
			if !hasDenied(r, tc.syscall) {
				t.Errorf("%s with --log-denied: no %q line on stderr\n%s", tc.call, "sbx: denied: "+tc.syscall, r)
			}
		})
	}
	// A payload that makes every call number, under a name of escape
	// sequences, gets a bounded report with no control character in it.
	t.Run("a flood", func(t *testing.T) {
		t.Parallel()
		r := helper(t, []string{"--log-denied"}, "deny-flood")
		denied := 0
		for _, l := range r.stderrLines() {
			if strings.HasPrefix(l, "sbx: denied: ") {
				denied++
			}
		}
		if r.code != 0 || denied == 0 || denied > 110 {
			t.Errorf("want a report of at most about 100 lines, got %d\n%s", denied, r)
		}
		if strings.ContainsAny(r.stderr, "\x1b\r") {
			t.Errorf("control characters of the payload's choosing reached stderr: %q", r.stderr)
		}
		if !strings.Contains(r.stderr, "keyctl by ?[31mEVIL") {
			t.Errorf("want keyctl reported with the name made printable\n%s", r)
		}
	})
	t.Run("allowed calls are not reported", func(t *testing.T) {
		t.Parallel()
		r := runSbx(t, "run", "--log-denied", "--", "/bin/true")
		if r.code != 0 || strings.Contains(r.stderr, "sbx: denied:") {
			t.Errorf("/bin/true with --log-denied: want exit 0 and no report\n%s", r)
		}
	})
	// clone3's ENOSYS is the filter's way to send libc to clone, which
	// glibc's pthread_create takes at every thread: it is refused, and
	// not reported as a failure.
	t.Run("clone3 is refused quietly", func(t *testing.T) {
		t.Parallel()
		got, r := call(t, []string{"--log-denied"}, "sys", "clone3")
		if got != "ENOSYS" || strings.Contains(r.stderr, "sbx: denied: clone3") {
			t.Errorf("clone3 with --log-denied: want ENOSYS and no report\n%s", r)
		}
	})
	// The payload's last act is the refused call: the report must not
	// be lost when the payload's exit reaches sbx first.
	t.Run("a refusal just before exit", func(t *testing.T) {
		t.Parallel()
		exe := requireCHelper(t)
		const runs = 20
		lost := 0
		var last result
		for range runs {
			r := runSbx(t, append(append(append([]string{"run", "--log-denied"}, helperFlags()...), "--", exe), "keyctl")...)
			if r.code != 0 || strings.TrimSpace(r.stdout) != "EPERM" {
				t.Fatalf("chelper keyctl with --log-denied: want exit 0 and EPERM\n%s", r)
			}
			if !hasDenied(r, "keyctl") {
				lost, last = lost+1, r
			}
		}
		if lost > 0 {
			t.Errorf("%d of %d runs lost the %q line; one of them:\n%s", lost, runs, "sbx: denied: keyctl", last)
		}
	})
	// A call the filter kills (x32's, always seen by the filter; int
	// $0x80 where the kernel has IA32 emulation) ends the process before
	// any notification: PID 1 reports the kill, and sbx keeps its 159.
	t.Run("a kill", func(t *testing.T) {
		t.Parallel()
		if runtime.GOARCH != "amd64" {
			t.Skip("skipped: the C helper's foreign ABIs are x86-64's")
		}
		exe := requireCHelper(t)
		for _, verb := range []string{"x32", "int80"} {
			r := runSbx(t, append(append(append([]string{"run", "--log-denied"}, helperFlags()...), "--", exe), verb)...)
			if verb == "int80" && r.code != sigsys {
				t.Logf("int80: exit %d, not SIGSYS: this kernel stops int $0x80 before the filter (no IA32 emulation)", r.code)
				continue
			}
			re := regexp.MustCompile(`(?m)^sbx: denied: chelper \(pid \d+\) was killed by SIGSYS, most likely by the filter: .*foreign ABI`)
			if r.code != sigsys || len(re.FindAllString(r.stderr, -1)) != 1 {
				t.Errorf("chelper %s with --log-denied: want exit %d and one line matching %q\n%s", verb, sigsys, re, r)
			}
			r = runSbx(t, append(append(append([]string{"run"}, helperFlags()...), "--", exe), verb)...)
			if r.code != sigsys || strings.Contains(r.stderr, "sbx: denied:") {
				t.Errorf("chelper %s without --log-denied: want exit %d and no report\n%s", verb, sigsys, r)
			}
		}
	})
	t.Run("nothing without the flag", func(t *testing.T) {
		t.Parallel()
		got, r := call(t, nil, "sys", "keyctl")
		if got != "EPERM" || strings.Contains(r.stderr, "sbx: denied:") {
			t.Errorf("keyctl without --log-denied: want EPERM and no report\n%s", r)
		}
	})
}

// hasDenied reports whether stderr has a line "sbx: denied: NAME", alone or followed by a space.
func hasDenied(r result, name string) bool {
	re := regexp.MustCompile(`(?m)^sbx: denied: ` + regexp.QuoteMeta(name) + `( |$)`)
	return re.MatchString(r.stderr)
}

// TestSeccompProfileFile tries to break --seccomp PATH: an OCI profile
// replaces the default filter (a call the default refuses works), its
// own refusals apply, TIOCSTI and TIOCLINUX stay refused, and a file sbx
// cannot use is exit 125 naming it, with nothing run, in --dry-run too.
func TestSeccompProfileFile(t *testing.T) {
	requireUserns(t)
	t.Parallel()
	dir := t.TempDir()
	profile := filepath.Join(dir, "profile.json")
	// getcwd refused; personality refused only for ADDR_NO_RANDOMIZE (0x0040000), an argument condition.
	writeFile(t, profile, `{"defaultAction": "SCMP_ACT_ALLOW",
	"syscalls": [
		{"names": ["getcwd"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1},
		{"names": ["personality"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1,
		 "args": [{"index": 0, "value": 262144, "op": "SCMP_CMP_EQ"}]}
	]}`, 0o644)
	flags := []string{"--seccomp", profile}
	for _, tc := range []struct {
		verb []string
		want string
	}{
		{[]string{"sys", "getcwd"}, "EPERM"},             // the profile's own rule
		{[]string{"sys", "personality_set"}, "EPERM"},    // its rule with an argument condition
		{[]string{"sys", "personality_query"}, "ok"},     // which another argument does not meet
		{[]string{"sys", "keyctl"}, "ok"},                // refused by the default filter, not by this one
		{[]string{"sys", "getpid"}, "ok"},                // the profile's default action
		{[]string{"tty-ioctl", "tiocsti"}, "EPERM"},      // sbx's own rule, kept
		{[]string{"tty-ioctl", "tiocsti-high"}, "EPERM"}, // likewise
		{[]string{"tty-ioctl", "tioclinux"}, "EPERM"},    // likewise
	} {
		t.Run(strings.Join(tc.verb, " "), func(t *testing.T) {
			t.Parallel()
			if got, r := call(t, flags, tc.verb...); got != tc.want {
				t.Errorf("%q under %s: %s, want %s\n%s", tc.verb, profile, got, tc.want, r)
			}
		})
	}

	unreadable := filepath.Join(dir, "unreadable.json")
	writeFile(t, unreadable, `{"defaultAction": "SCMP_ACT_ALLOW"}`, 0o000)
	bad := func(name, content string) string {
		p := filepath.Join(dir, name)
		writeFile(t, p, content, 0o644)
		return p
	}
	for _, tc := range []struct{ name, path string }{
		{"missing", filepath.Join(dir, "missing.json")},
		{"unreadable", unreadable},
		{"a directory", dir},
		{"empty", bad("empty.json", "")},
		{"truncated", bad("truncated.json", `{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [`)},
		{"unknown action", bad("action.json", `{"defaultAction": "SCMP_ACT_SOMETIMES"}`)},
		{"wrong type", bad("type.json", `{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": "getcwd"}`)},
		{"argument 9", bad("arg.json", `{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["getcwd"],
			"action": "SCMP_ACT_ERRNO", "args": [{"index": 9, "value": 1, "op": "SCMP_CMP_EQ"}]}]}`)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if tc.name == "unreadable" && os.Geteuid() == 0 {
				t.Skip("skipped: root reads a mode 000 file")
			}
			r := sh(t, "echo RAN", "--seccomp", tc.path)
			if r.code != 125 {
				t.Fatalf("--seccomp %s (%s): want exit 125\n%s", tc.path, tc.name, r)
			}
			checkOneError(t, r, tc.path)
			// The plan holds the filter: a profile the run refuses is no plan either.
			r = sh(t, "echo RAN", "--seccomp", tc.path, "--dry-run")
			if r.code != 125 {
				t.Errorf("--seccomp %s (%s) --dry-run: want exit 125 as the run gives\n%s", tc.path, tc.name, r)
			}
		})
	}
}

// TestSeccompErrnoRet tries to break a profile's errnoRet: the filter
// holds 16 bits of it and libseccomp takes an errno below 4095, so that
// 65536 made mkdir "succeed" doing nothing and 4096 failed with another
// rule's error. Each value sbx cannot give is exit 125 naming the rule and
// the value, with nothing run (--dry-run too); those it can reach the
// payload as written, 0 being runc's success without the call.
func TestSeccompErrnoRet(t *testing.T) {
	requireUserns(t)
	t.Parallel()
	dir := t.TempDir()
	profile := func(name, json string) string {
		p := filepath.Join(dir, name+".json")
		writeFile(t, p, json, 0o644)
		return p
	}
	mkdir := func(v string) string {
		return `{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
			{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": ` + v + `}]}`
	}
	for _, tc := range []struct{ name, path, says string }{
		{"65536", profile("65536", mkdir("65536")), "mkdir,mkdirat: errnoRet 65536"},
		{"4095", profile("4095", mkdir("4095")), "mkdir,mkdirat: errnoRet 4095"},
		{"4096", profile("4096", mkdir("4096")), "mkdir,mkdirat: errnoRet 4096"},
		{"99999", profile("99999", mkdir("99999")), "mkdir,mkdirat: errnoRet 99999"},
		{"default 65536", profile("default", `{"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 65536,
			"syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ALLOW"}]}`), "defaultErrnoRet 65536"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			for _, extra := range [][]string{nil, {"--dry-run"}} {
				r := sh(t, "mkdir /tmp/d && echo RAN", append([]string{"--seccomp", tc.path}, extra...)...)
				if r.code != 125 {
					t.Fatalf("--seccomp with %s %q: want exit 125\n%s", tc.says, extra, r)
				}
				checkOneError(t, r, tc.says)
			}
		})
	}
	t.Run("4094 and 0 reach the payload", func(t *testing.T) {
		t.Parallel()
		r := sh(t, "mkdir /tmp/d; test -d /tmp/d || echo absent", "--seccomp", profile("4094", mkdir("4094")))
		if r.code != 0 || r.stdout != "absent\n" || !strings.Contains(r.stderr, "4094") {
			t.Errorf("errnoRet 4094: want mkdir to fail with error 4094\n%s", r)
		}
		r = sh(t, "mkdir /tmp/d && echo made; test -d /tmp/d || echo absent", "--seccomp", profile("0", mkdir("0")))
		if r.code != 0 || r.stdout != "made\nabsent\n" {
			t.Errorf("errnoRet 0: want mkdir to succeed without making anything\n%s", r)
		}
	})
}

// TestHardeningOptOut tries to break "dropping a layer is said, once":
// --seccomp unconfined and --no-landlock each add one "sbx: warning:"
// line to what sbx says in a default run, and --strict (nothing to drop
// on a kernel with seccomp and Landlock) runs and adds nothing.
func TestHardeningOptOut(t *testing.T) {
	requireUserns(t)
	t.Parallel()
	base := sh(t, "echo hi")
	if base.code != 0 || base.stdout != "hi\n" {
		t.Fatalf("default run\n%s", base)
	}
	for _, tc := range []struct {
		flags []string
		extra int // warning lines beyond the default run's
	}{
		{unconfined, 1},
		{noLandlock, 1},
		{append(slices.Clone(unconfined), noLandlock...), 2},
		{[]string{"--strict"}, 0},
	} {
		t.Run(strings.Join(tc.flags, " "), func(t *testing.T) {
			t.Parallel()
			if landlockPartial && slices.Contains(tc.flags, "--strict") {
				t.Skip("this kernel's Landlock ABI is partial: TestLandlockBestEffort checks --strict")
			}
			r := sh(t, "echo hi", tc.flags...)
			if r.code != 0 || r.stdout != "hi\n" {
				t.Fatalf("%q: want exit 0 and the payload's output\n%s", tc.flags, r)
			}
			lines := r.stderrLines()
			if len(lines) != len(base.stderrLines())+tc.extra {
				t.Fatalf("%q: want %d more stderr lines than a default run (%q)\n%s", tc.flags, tc.extra, base.stderr, r)
			}
			for _, l := range lines {
				if !slices.Contains(base.stderrLines(), l) && !strings.HasPrefix(l, "sbx: warning: ") {
					t.Errorf("%q: line %q is not a warning", tc.flags, l)
				}
			}
		})
	}
}

// TestLandlockReopen tries to reach host files through the payload's own
// descriptors, which the mount tree does not stop: reopening
// /proc/self/fd/0 follows the descriptor to the host file on the host's
// mount, wherever the sandbox's view puts (or does not put) it. Landlock
// rules mirror the view, and give each descriptor what it was opened
// for, so a reopen for writing of a file given for reading is refused;
// with --no-landlock it works, which shows that Landlock is what
// refuses it.
func TestLandlockReopen(t *testing.T) {
	requireUserns(t)
	t.Parallel()
	const script = `cat; echo "--"
		cat /proc/self/fd/0 && echo REREAD
		echo x >> /proc/self/fd/0 && echo APPENDED
		true`
	for _, tc := range []struct {
		name   string
		ro     bool     // the file's directory is bound --ro (else it is not in the view)
		denied []string // what must not appear on stdout under Landlock
	}{
		// Outside the view: the descriptor's own rule lets it be
		// reopened for what it was opened for (reading: scripts read
		// /dev/stdin), and no more.
		{"outside the view", false, []string{"APPENDED"}},
		// Under a --ro bind: read by path is what the view allows, write is not.
		{"under a --ro bind", true, []string{"APPENDED"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			for _, off := range []bool{false, true} {
				dir := t.TempDir() // the sandbox's /tmp is its own: the host's is not in the view
				file := filepath.Join(dir, "f")
				writeFile(t, file, "host file\n", 0o644)
				stdin, err := os.Open(file) // read-only, as `< file` opens it
				if err != nil {
					t.Fatal(err)
				}
				defer stdin.Close()
				var flags []string
				if tc.ro {
					flags = append(flags, "--ro", dir)
				}
				if off {
					flags = append(flags, noLandlock...)
				}
				r := sbxCmd{args: shArgs(script, flags...), stdin: stdin}.run(t)
				after := readFile(t, file)
				if r.code != 0 || !strings.HasPrefix(r.stdout, "host file\n--\n") {
					t.Fatalf("%q: want exit 0 and fd 0 readable\n%s", flags, r)
				}
				if !off {
					if !strings.Contains(r.stdout, "REREAD") {
						t.Errorf("%q: stdin, opened for reading, could not be reopened for reading\n%s", flags, r)
					}
					for _, d := range tc.denied {
						if strings.Contains(r.stdout, d) {
							t.Errorf("%q: the payload reopened its stdin by path (%s) under Landlock\n%s", flags, d, r)
						}
					}
					if !strings.Contains(r.stderr, "Permission denied") {
						t.Errorf("%q: want the reopen refused with EACCES (Permission denied)\n%s", flags, r)
					}
					if after != "host file\n" {
						t.Errorf("%q: the host file became %q", flags, after)
					}
					continue
				}
				// Without Landlock both reopens work: the test reaches what it claims to.
				if !strings.Contains(r.stdout, "REREAD") || !strings.Contains(r.stdout, "APPENDED") || after != "host file\nx\n" {
					t.Errorf("%q: want the reopen to work without Landlock (else the test proves nothing); host file %q\n%s", flags, after, r)
				}
			}
		})
	}
}

// A file given for writing can be reopened for writing, as scripts do
// with /dev/stdout, but not for reading.
func TestLandlockReopenWritable(t *testing.T) {
	requireUserns(t)
	t.Parallel()
	file := filepath.Join(t.TempDir(), "out")
	writeFile(t, file, "secret\n", 0o644)
	f, err := os.OpenFile(file, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r := sbxCmd{args: shArgs(`echo one > /dev/fd/3 && echo two >> /proc/self/fd/3 && echo WROTE
		cat /proc/self/fd/3 && echo READ; true`, "--preserve-fd", "3"), extra: []*os.File{f}}.run(t)
	if r.code != 0 || !strings.Contains(r.stdout, "WROTE") || strings.Contains(r.stdout, "READ\n") || strings.Contains(r.stdout, "secret") {
		t.Errorf("want the write-only descriptor reopened for writing only\n%s", r)
	}
	if got := readFile(t, file); got != "one\ntwo\n" {
		t.Errorf("the file is %q, want the payload's two lines", got)
	}
}

// TestLandlockView tries to break the view through Landlock rules that
// mirror it too tightly: what the mount tree allows must keep working.
func TestLandlockView(t *testing.T) {
	requireUserns(t)
	t.Parallel()
	rw := t.TempDir()
	ro := t.TempDir()
	writeFile(t, filepath.Join(ro, "r"), "read me\n", 0o644)
	writeFile(t, filepath.Join(rw, "old"), "old\n", 0o644)
	script := fmt.Sprintf(`set -e
		cd %[1]q
		echo new > new; echo more >> old; : > old; mkdir d; mv new d/moved; ln -s d/moved link; ln d/moved hard
		cat link hard; rm -r d link hard; echo rw-ok
		cat %[2]q/r; ls %[2]q >/dev/null; cd %[2]q; echo ro-ok
		cd /tmp; mkdir -p a b; echo t > a/f; mv a/f b/f; mkfifo fifo; rm fifo b/f; echo tmp-ok
		echo s > /dev/shm/s; cat /dev/shm/s; echo > /dev/null; head -c 1 /dev/urandom >/dev/null; echo dev-ok
		echo h > "$HOME/h"; cat "$HOME/h"; echo home-ok
		cat /proc/self/status /proc/sys/kernel/ostype >/dev/null; ls /etc /usr/bin >/dev/null; echo sys-ok
		cp /bin/true /tmp/true; /tmp/true && echo exec-tmp-ok || echo exec-tmp-refused`, rw, ro)
	for _, flags := range [][]string{{"--rw", rw, "--ro", ro}, {"--root", "--rw", rw, "--ro", ro}} {
		r := sh(t, script, flags...)
		if r.code != 0 {
			t.Errorf("%q: want exit 0\n%s", flags, r)
			continue
		}
		for _, want := range []string{"rw-ok", "read me", "ro-ok", "tmp-ok", "dev-ok", "home-ok", "sys-ok"} {
			if !strings.Contains(r.stdout, want) {
				t.Errorf("%q: no %q\n%s", flags, want, r)
			}
		}
		if strings.Contains(r.stdout, "exec-tmp-refused") { // a policy choice, not a failure
			t.Logf("%q: a program copied into /tmp cannot run", flags)
		}
	}
	// /dev/stdin and friends reopen /proc/self/fd/N: on pipes (what sbx's
	// caller usually gives) that must keep working.
	r := sbxCmd{args: shArgs(`cat /dev/stdin; echo out > /dev/stdout; echo err > /dev/stderr`), stdin: strings.NewReader("in\n")}.run(t)
	if r.code != 0 || r.stdout != "in\nout\n" || r.stderr != "err\n" {
		t.Errorf("/dev/stdin, /dev/stdout, /dev/stderr on pipes: want exit 0, %q and %q\n%s", "in\nout\n", "err\n", r)
	}
}

// TestDescriptorCheck tries to hand the payload a directory of the host
// through a descriptor it keeps (the runc CVE-2024-21626 class: fchdir or
// /proc/self/fd/N lead out of the view): sbx must refuse to run it, exit
// 125 naming the descriptor. Regular files and pipes stay fine, and a
// directory on a descriptor sbx closes anyway is no reason to refuse.
func TestDescriptorCheck(t *testing.T) {
	requireUserns(t)
	t.Parallel()
	open := func(t *testing.T, path string, flags int) *os.File {
		fd, err := unix.Open(path, flags|unix.O_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		f := os.NewFile(uintptr(fd), path)
		t.Cleanup(func() { f.Close() })
		return f
	}
	// The escape the check must prevent: the payload's cwd, or the listing, leaves the view.
	const escape = `cd /proc/self/fd/%d && ls | head -3; echo RAN`
	home, _ := os.UserHomeDir()

	t.Run("refused", func(t *testing.T) {
		t.Parallel()
		for _, tc := range []struct {
			name  string
			fd    int
			stdin string // a directory to give as stdin
			extra string // a directory to give as fd 3 (with --preserve-fd 3)
			flags int    // its open flags
		}{
			{"stdin /", 0, "/", "", unix.O_RDONLY},
			{"stdin $HOME", 0, home, "", unix.O_RDONLY},
			{"stdin O_PATH", 0, "/", "", unix.O_PATH},
			{"kept fd 3", 3, "", "/", unix.O_RDONLY | unix.O_DIRECTORY},
			{"kept fd 3 O_PATH", 3, "", "/etc", unix.O_PATH | unix.O_DIRECTORY},
			{"kept fd 3 a temp dir", 3, "", os.TempDir(), unix.O_RDONLY},
		} {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				if tc.stdin == "" && tc.extra == "" {
					t.Skip("skipped: HOME is not set")
				}
				c := sbxCmd{args: shArgs(fmt.Sprintf(escape, tc.fd))}
				if tc.stdin != "" {
					c.stdin = open(t, tc.stdin, tc.flags)
				} else {
					c.extra = []*os.File{open(t, tc.extra, tc.flags)}
					c.args = shArgs(fmt.Sprintf(escape, tc.fd), "--preserve-fd", "3")
				}
				r := c.run(t)
				if r.code != 125 {
					t.Fatalf("a directory on fd %d: want exit 125\n%s", tc.fd, r)
				}
				checkOneError(t, r, "")
				if lines := r.stderrLines(); len(lines) > 0 && !namesFD(lines[0], tc.fd) {
					t.Errorf("error line %q does not name descriptor %d", lines[0], tc.fd)
				}
			})
		}
	})

	// fd 1 as a directory (opened for reading: nothing can write it) is the
	// same hole; sbx's stdout is then not a buffer, so this runs it by hand.
	t.Run("stdout a directory", func(t *testing.T) {
		t.Parallel()
		dir := open(t, "/", unix.O_RDONLY|unix.O_DIRECTORY)
		ctx, cancel := context.WithTimeout(context.Background(), defaultGuard)
		defer cancel()
		cmd := exec.CommandContext(ctx, sbxBin, shArgs(fmt.Sprintf(escape, 1)+" >&2")...)
		cmd.Stdout = dir
		var stderr strings.Builder
		cmd.Stderr = &stderr
		err := cmd.Run()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 125 {
			t.Fatalf("a directory on fd 1: want exit 125, got %v\nstderr:\n%s", err, stderr.String())
		}
		r := result{stderr: withoutHostNotes(stderr.String()), code: 125}
		checkOneError(t, r, "")
		if lines := r.stderrLines(); len(lines) > 0 && !namesFD(lines[0], 1) {
			t.Errorf("error line %q does not name descriptor 1", lines[0])
		}
	})

	t.Run("allowed", func(t *testing.T) {
		t.Parallel()
		file := filepath.Join(t.TempDir(), "f")
		writeFile(t, file, "kept\n", 0o644)
		pr, pw, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		defer pr.Close()
		pw.WriteString("piped\n")
		pw.Close()
		for _, tc := range []struct {
			name   string
			c      sbxCmd
			stdout string
		}{
			{"stdin a file", sbxCmd{args: shArgs("cat"), stdin: open(t, file, unix.O_RDONLY)}, "kept\n"},
			{"kept fd 3 a file", sbxCmd{args: shArgs("cat <&3", "--preserve-fd", "3"), extra: []*os.File{open(t, file, unix.O_RDONLY)}}, "kept\n"},
			{"kept fd 3 a pipe", sbxCmd{args: shArgs("cat <&3", "--preserve-fd", "3"), extra: []*os.File{pr}}, "piped\n"},
			// fd 4 is a directory, but only fd 3 is kept: sbx closes 4.
			{"unkept fd 4 a directory", sbxCmd{args: shArgs("cat <&3; [ -e /proc/self/fd/4 ] && echo LEAKED; true", "--preserve-fd", "3"),
				extra: []*os.File{open(t, file, unix.O_RDONLY), open(t, "/", unix.O_RDONLY|unix.O_DIRECTORY)}}, "kept\n"},
		} {
			r := tc.c.run(t)
			if r.code != 0 || r.stdout != tc.stdout {
				t.Errorf("%s: want exit 0 and %q\n%s", tc.name, tc.stdout, r)
			}
		}
	})
}

// namesFD reports whether an error line names descriptor fd.
func namesFD(line string, fd int) bool {
	if fd == 0 && strings.Contains(line, "stdin") || fd == 1 && strings.Contains(line, "stdout") {
		return true
	}
	return regexp.MustCompile(`\b` + strconv.Itoa(fd) + `\b`).MatchString(line)
}

// TestPrograms tries to break ordinary work under the default filter and
// Landlock: shells, an interpreter that spawns and threads, make (whose
// posix_spawn tries clone3 first), a Go build, and tracing a child.
func TestPrograms(t *testing.T) {
	requireUserns(t)
	t.Parallel()
	// prog finds a program where the sandbox shows it (the system directories).
	prog := func(t *testing.T, name, pkg string) string {
		for _, d := range []string{"/usr/bin", "/bin", "/usr/local/bin"} {
			if p := filepath.Join(d, name); fileExists(p) {
				return p
			}
		}
		mustRun(t, name+" is not installed (install "+pkg+")")
		return ""
	}

	t.Run("sh", func(t *testing.T) {
		t.Parallel()
		r := mustSh(t, `x=$(echo a | tr a b); (echo sub); sleep 0.1 & wait; f=$(mktemp); echo t > "$f"; cat "$f"; echo "$x done"`)
		if r.stdout != "sub\nt\nb done\n" {
			t.Errorf("stdout %q\n%s", r.stdout, r)
		}
	})

	t.Run("python3", func(t *testing.T) {
		t.Parallel()
		py := prog(t, "python3", "python3")
		const code = `import subprocess, threading, tempfile
out = subprocess.run(["/bin/echo", "child"], capture_output=True, text=True, check=True).stdout.strip()
res = []
th = threading.Thread(target=lambda: res.append("thread")); th.start(); th.join()
with tempfile.NamedTemporaryFile("w+") as f:
    f.write("temp"); f.flush(); f.seek(0); tmp = f.read()
print(out, res[0], tmp)`
		r := runSbx(t, "run", "--", py, "-c", code)
		if r.code != 0 || r.stdout != "child thread temp\n" {
			t.Errorf("want exit 0 and %q\n%s", "child thread temp\n", r)
		}
	})

	t.Run("make", func(t *testing.T) {
		t.Parallel()
		mk := prog(t, "make", "make")
		dir := t.TempDir()
		writeFile(t, filepath.Join(dir, "Makefile"),
			"all: a b\n\tcat a b > out\n\t@echo built $(shell echo ok)\na:\n\techo a > a\nb:\n\techo b | tr b B > b\n", 0o644)
		r := runSbx(t, "run", "--rw", dir, "--", mk, "-j2", "-C", dir)
		if r.code != 0 || !strings.Contains(r.stdout, "built ok") {
			t.Fatalf("want exit 0 and %q\n%s", "built ok", r)
		}
		if got := readFile(t, filepath.Join(dir, "out")); got != "a\nB\n" {
			t.Errorf("out on the host: %q", got)
		}
	})

	t.Run("go build", func(t *testing.T) {
		t.Parallel()
		goroot := goRoot()
		if goroot == "" {
			mustRun(t, "no Go toolchain found (GOROOT, runtime.GOROOT, go on PATH)")
		}
		src := t.TempDir()
		writeFile(t, filepath.Join(src, "go.mod"), "module hello\n\ngo 1.21\n", 0o644)
		writeFile(t, filepath.Join(src, "main.go"), "package main\n\nimport \"fmt\"\n\nfunc main() { fmt.Println(\"hello from go\") }\n", 0o644)
		script := fmt.Sprintf(`cd %q && GOCACHE=/tmp/gocache GOPATH=/tmp/gopath GOTOOLCHAIN=local GOFLAGS= GOENV=off CGO_ENABLED=0 \
			%q build -o /tmp/hello . && /tmp/hello`, src, filepath.Join(goroot, "bin", "go"))
		r := sbxCmd{args: shArgs(script, "--ro", goroot, "--ro", src), guard: 5 * time.Minute}.run(t)
		if r.code != 0 || r.stdout != "hello from go\n" {
			t.Errorf("want exit 0 and %q\n%s", "hello from go\n", r)
		}
	})

	t.Run("strace", func(t *testing.T) {
		t.Parallel()
		st := prog(t, "strace", "strace")
		r := runSbx(t, "run", "--", st, "-f", "-o", "/dev/null", "/bin/true")
		if r.code != 0 {
			t.Errorf("strace -f /bin/true: want exit 0\n%s", r)
		}
	})

	t.Run("gdb", func(t *testing.T) {
		t.Parallel()
		gdb := prog(t, "gdb", "gdb")
		// gdb turns ASLR off with personality(2) and goes on when refused.
		r := runSbx(t, "run", "--", gdb, "-nx", "-batch", "-ex", "run", "--args", "/bin/true")
		if r.code != 0 || !strings.Contains(r.stdout, "exited normally") {
			t.Errorf("gdb run /bin/true: want exit 0 and %q\n%s", "exited normally", r)
		}
	})
}

// goRoot finds the Go toolchain: $GOROOT, the one this binary was built
// with, or `go env GOROOT` of the go on PATH; "" when none has bin/go.
func goRoot() string {
	cands := []string{os.Getenv("GOROOT"), runtime.GOROOT()}
	if out, err := exec.Command("go", "env", "GOROOT").Output(); err == nil {
		cands = append(cands, strings.TrimSpace(string(out)))
	}
	for _, c := range cands {
		if c != "" && fileExists(filepath.Join(c, "bin", "go")) {
			return c
		}
	}
	return ""
}

// On a kernel whose Landlock ABI lacks rights sbx uses, each run says
// so in one warning naming what is missing, and --strict refuses to run;
// on a kernel that has them all, neither.
func TestLandlockBestEffort(t *testing.T) {
	requireUserns(t)
	t.Parallel()
	r := sbxCmd{args: shArgs("echo hi")}
	cmd, stdout, stderr := r.cmd()
	if err := cmd.Run(); err != nil {
		t.Fatalf("sbx run: %v\n%s", err, stderr)
	}
	n := strings.Count(stderr.String(), landlockWarning)
	strict := sh(t, "echo hi", "--strict")
	switch {
	case landlockPartial:
		if n != 1 || stdout.String() != "hi\n" {
			t.Errorf("partial Landlock ABI: want one warning naming it, and the run\n%s", stderr)
		}
		if strict.code != 125 || !strings.Contains(strict.stderr, "--strict: this host cannot give Landlock rules the kernel's ABI") {
			t.Errorf("partial Landlock ABI with --strict: want exit 125 naming what is missing\n%s", strict)
		}
	default:
		if n != 0 {
			t.Errorf("full Landlock ABI: a warning\n%s", stderr)
		}
		if strict.code != 0 || strict.stdout != "hi\n" {
			t.Errorf("full Landlock ABI with --strict: want the run\n%s", strict)
		}
	}
}

// A profile under which sbx could not hand over --log-denied's listener
// (sendmsg refused) is refused before anything runs; it hung sbx.
func TestLogDeniedProfileRefusingSendmsg(t *testing.T) {
	requireUserns(t)
	t.Parallel()
	profile := filepath.Join(t.TempDir(), "p.json")
	writeFile(t, profile, `{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["sendmsg"],"action":"SCMP_ACT_ERRNO"}]}`, 0o644)
	r := sbxCmd{args: []string{"run", "--seccomp", profile, "--log-denied", "--", "/bin/true"}, guard: 10 * time.Second}.run(t)
	if r.code != 125 || !strings.Contains(r.stderr, "sendmsg") || !strings.Contains(r.stderr, profile) {
		t.Errorf("want exit 125 naming the profile and sendmsg\n%s", r)
	}
	// Without --log-denied it runs: sendmsg is needed for nothing else.
	if r := sh(t, "true", "--seccomp", profile); r.code != 0 {
		t.Errorf("without --log-denied: want exit 0\n%s", r)
	}
}

// With --net host the payload shares the host's abstract unix sockets
// (X11's, D-Bus's): Landlock's scoping (ABI 6) keeps it from connecting
// to those made outside the sandbox.
func TestLandlockAbstractSocketScope(t *testing.T) {
	requireUserns(t)
	t.Parallel()
	name := fmt.Sprintf("sbx-scope-%d", os.Getpid())
	l, err := net.Listen("unix", "@"+name)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	free, r := call(t, append([]string{"--net", "host"}, noLandlock...), "dial-abstract", name)
	if free != "ok" {
		t.Fatalf("without Landlock the host's abstract socket is not reachable (the test proves nothing): %s\n%s", free, r)
	}
	got, r := call(t, []string{"--net", "host"}, "dial-abstract", name)
	switch {
	case landlockPartial:
		t.Logf("this kernel's Landlock ABI has no scoping: %s (sbx warned of it)", got)
	case got != "EPERM":
		t.Errorf("a host abstract socket under Landlock: %s, want EPERM\n%s", got, r)
	}
}
