package tests

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// statusFields parses "Key:\tvalue" lines of /proc/PID/status.
func statusFields(text string) map[string]string {
	m := map[string]string{}
	for _, l := range strings.Split(text, "\n") {
		k, v, ok := strings.Cut(l, ":")
		if ok {
			m[k] = strings.TrimSpace(v)
		}
	}
	return m
}

// TestIdentity tries to break "the payload is the caller, with no
// capabilities, no_new_privs set, and not PID 1", in both identity modes.
func TestIdentity(t *testing.T) {
	requireUserns(t)
	t.Parallel()
	uid, gid := strconv.Itoa(os.Getuid()), strconv.Itoa(os.Getgid())
	for _, tc := range []struct {
		name     string
		flags    []string
		uid, gid string
	}{
		{"default", nil, uid, gid},
		{"root", []string{"--root"}, "0", "0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := mustSh(t, `id -u; id -g; echo $$; cat /proc/self/status`, tc.flags...)
			lines := strings.SplitN(r.stdout, "\n", 4)
			if len(lines) < 4 {
				t.Fatalf("short output:\n%s", r)
			}
			if lines[0] != tc.uid || lines[1] != tc.gid {
				t.Errorf("inside: uid %s gid %s, want %s %s", lines[0], lines[1], tc.uid, tc.gid)
			}
			if lines[2] == "1" {
				t.Errorf("the payload is PID 1 of its namespace; it must not be (init reaps and forwards)")
			}
			st := statusFields(lines[3])
			if tc.name == "default" {
				for _, k := range []string{"CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"} {
					if st[k] != "0000000000000000" {
						t.Errorf("%s = %q, want all zero", k, st[k])
					}
				}
			} else {
				// --root keeps capabilities, but only over the sandbox's namespaces;
				// the ambient and inheritable sets must still be empty.
				for _, k := range []string{"CapInh", "CapAmb"} {
					if st[k] != "0000000000000000" {
						t.Errorf("%s = %q, want all zero", k, st[k])
					}
				}
			}
			if st["NoNewPrivs"] != "1" {
				t.Errorf("NoNewPrivs = %q, want 1", st["NoNewPrivs"])
			}
			if want := tc.uid; !strings.HasPrefix(st["Uid"], want+"\t") {
				t.Errorf("status Uid = %q, want all %s", st["Uid"], want)
			}
		})
	}
}

// TestOwnershipOnHost tries to break the id mapping as the host sees it:
// default files belong to the caller; with --root, uid/gid 1 is the first subordinate id.
func TestOwnershipOnHost(t *testing.T) {
	requireMapped(t)
	t.Parallel()
	dir := t.TempDir()
	plain := filepath.Join(dir, "plain")
	r := mustSh(t, "touch "+plain+" && "+helperExe+" sbx-helper chown "+plain+" 1 1",
		append(helperFlags(), "--rw", dir)...)
	if got := strings.TrimSpace(r.stdout); got == "ok" {
		t.Errorf("without --root the payload could chown a file to uid 1")
	}
	fi, err := os.Stat(plain)
	if err != nil {
		t.Fatal(err)
	}
	if st := fi.Sys().(*syscall.Stat_t); int(st.Uid) != os.Getuid() || int(st.Gid) != os.Getgid() {
		t.Errorf("a file made inside is owned by %d:%d on the host, want the caller %d:%d",
			st.Uid, st.Gid, os.Getuid(), os.Getgid())
	}

	rooted := filepath.Join(dir, "rooted")
	r = mustSh(t, "touch "+rooted+" && chown 1:1 "+rooted+" && stat -c %u:%g "+rooted, "--root", "--rw", dir)
	if got := strings.TrimSpace(r.stdout); got != "1:1" {
		t.Errorf("inside, after chown 1:1: %q", got)
	}
	fi, err = os.Stat(rooted)
	if err != nil {
		t.Fatal(err)
	}
	subuid, _ := firstSubID(t, "/etc/subuid")
	subgid, _ := firstSubID(t, "/etc/subgid")
	if st := fi.Sys().(*syscall.Stat_t); uint64(st.Uid) != subuid || uint64(st.Gid) != subgid {
		t.Errorf("chown 1:1 under --root gives %d:%d on the host, want the first subordinate ids %d:%d",
			st.Uid, st.Gid, subuid, subgid)
	}
}

// TestRootConfined tries to break out of --root: uid 0 inside must not be
// able to change the mount tree, write the host's files or nest a user namespace.
func TestRootConfined(t *testing.T) {
	requireUserns(t)
	t.Parallel()
	base := t.TempDir()
	hidden := filepath.Join(base, "hidden")
	if err := os.Mkdir(hidden, 0o700); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(hidden, "secret"), "s3cret", 0o600)
	flags := []string{"--root", "--ro", base, "--hide", hidden}
	for _, tc := range []struct {
		name string
		verb []string
	}{
		{"umount $HOME", []string{"umount", os.Getenv("HOME")}},
		{"umount /tmp", []string{"umount", "/tmp"}},
		{"umount /proc", []string{"umount", "/proc"}},
		{"umount the --hide mask", []string{"umount", hidden}},
		{"remount / rw", []string{"remount-rw", "/"}},
		{"remount /usr rw", []string{"remount-rw", "/usr"}},
		{"remount the --ro dir rw", []string{"remount-rw", base}},
		{"tmpfs over /tmp", []string{"mount", "tmpfs", "/tmp"}},
		{"tmpfs over the --hide path", []string{"mount", "tmpfs", hidden}},
		{"proc over /proc", []string{"mount", "proc", "/proc"}},
		{"nested user namespace", []string{"unshare-user"}},
		// A new mount namespace is the payload's own business, but the mounts it
		// inherits must stay locked there.
		{"umount $HOME in a new mount ns", []string{"in-new-mntns", "umount", os.Getenv("HOME")}},
		{"umount the --hide mask in a new mount ns", []string{"in-new-mntns", "umount", hidden}},
		{"umount /proc in a new mount ns", []string{"in-new-mntns", "umount", "/proc"}},
		{"remount / rw in a new mount ns", []string{"in-new-mntns", "remount-rw", "/"}},
		{"remount /usr rw in a new mount ns", []string{"in-new-mntns", "remount-rw", "/usr"}},
		{"remount the --ro dir rw in a new mount ns", []string{"in-new-mntns", "remount-rw", base}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if slices.Contains(tc.verb, "") {
				t.Skip("skipped: HOME is not set")
			}
			r := helper(t, flags, tc.verb...)
			if r.code != 0 {
				t.Fatalf("helper did not run\n%s", r)
			}
			got := strings.TrimSpace(r.stdout)
			if got == "ok" {
				t.Fatalf("%s succeeded as --root", tc.name)
			}
			t.Logf("%s: %s", tc.name, got)
			if got == "ENOENT" || got == "ENOTDIR" {
				t.Errorf("%s failed with %s: the target is missing, so the test proves nothing", tc.name, got)
			}
		})
	}
	t.Run("write /usr and /etc", func(t *testing.T) {
		t.Parallel()
		r := sh(t, `for p in /usr/sbx-probe /etc/sbx-probe /sbx-probe; do
			if touch $p 2>/dev/null; then echo "wrote $p"; fi; done; true`, "--root")
		if r.code != 0 || strings.Contains(r.stdout, "wrote") {
			t.Fatalf("--root could write read-only places\n%s", r)
		}
	})
	t.Run("read the hidden file", func(t *testing.T) {
		t.Parallel()
		r := sh(t, "cat "+filepath.Join(hidden, "secret")+" 2>/dev/null; true", flags...)
		if strings.Contains(r.stdout, "s3cret") {
			t.Fatalf("--hide did not hide from --root\n%s", r)
		}
	})
}

// TestNoNestedUserns tries to break "the payload cannot create a user namespace"
// with the kernel call and with unshare(1).
func TestNoNestedUserns(t *testing.T) {
	requireUserns(t)
	t.Parallel()
	r := helper(t, nil, "unshare-user")
	if got := strings.TrimSpace(r.stdout); r.code != 0 || got == "ok" {
		t.Errorf("clone(CLONE_NEWUSER) inside: %q\n%s", got, r)
	} else {
		t.Logf("clone(CLONE_NEWUSER) inside: %s", got)
	}
	r = sh(t, "unshare -U true && echo NESTED; unshare -Ur true && echo NESTED; true")
	if strings.Contains(r.stdout, "NESTED") {
		t.Errorf("unshare -U works inside the sandbox\n%s", r)
	}
}

// TestSession tries to break "the payload runs in its own session": from the
// host its session differs from sbx's, and it cannot push input into the
// caller's terminal with TIOCSTI.
func TestSession(t *testing.T) {
	requireUserns(t)
	t.Parallel()

	t.Run("host view", func(t *testing.T) {
		t.Parallel()
		s := startSbx(t, sbxCmd{args: []string{"run", "--", "sleep", "1000"}})
		payload := findDescendant(t, s.cmd.Process.Pid, "sleep 1000", 10*time.Second)
		self, ok := readProc(s.cmd.Process.Pid)
		if !ok {
			t.Fatal("cannot read sbx's /proc entry")
		}
		if payload.session == self.session {
			t.Errorf("the payload (host pid %d) shares sbx's session %d", payload.pid, self.session)
		}
	})

	t.Run("TIOCSTI", func(t *testing.T) {
		t.Parallel()
		ptmx, pts := openPty(t)
		defer ptmx.Close()
		defer pts.Close()
		c := sbxCmd{args: append(append([]string{"run", "--no-pty"}, helperFlags()...), "--", helperExe, helperArg, "tiocsti")} // the caller's own terminal
		cmd, stdout, stderr := c.cmd()
		cmd.Stdin = pts
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(defaultGuard):
			syscall.Kill(cmd.Process.Pid, syscall.SIGKILL)
			<-done
			t.Fatalf("sbx did not exit; killed pid %d", cmd.Process.Pid)
		}
		got := strings.TrimSpace(stdout.String())
		if got == "" {
			t.Fatalf("helper printed nothing; exit %d, stderr %q", cmd.ProcessState.ExitCode(), stderr)
		}
		if got == "ok" {
			t.Errorf("TIOCSTI on the caller's terminal succeeded from inside the sandbox")
		}
		t.Logf("TIOCSTI on fd 0 inside: %s", got)
		if legacy, _ := os.ReadFile("/proc/sys/dev/tty/legacy_tiocsti"); strings.TrimSpace(string(legacy)) == "0" {
			t.Logf("note: dev.tty.legacy_tiocsti=0 on this host, so TIOCSTI is refused regardless")
		}
	})
}

// openPty opens a pseudo-terminal pair.
func openPty(t *testing.T) (ptmx, pts *os.File) {
	t.Helper()
	ptmx, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		mustRun(t, "cannot open /dev/ptmx: "+err.Error())
	}
	fd := int(ptmx.Fd())
	if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil {
		ptmx.Close()
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(fd, unix.TIOCGPTN)
	if err != nil {
		ptmx.Close()
		t.Fatal(err)
	}
	pts, err = os.OpenFile("/dev/pts/"+strconv.Itoa(n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		ptmx.Close()
		t.Fatal(err)
	}
	return ptmx, pts
}

// TestIDMapLayout tries to break the two id layouts against each other and
// the host: an id N set under --root is subordinate id N-1 on the host
// (0 is the caller), and the default (keep-id) view shows subordinate id k
// as k below the caller's id and as k+1 from it on.
func TestIDMapLayout(t *testing.T) {
	requireMapped(t)
	t.Parallel()
	uid, gid := os.Getuid(), os.Getgid()
	subuid, _ := firstSubID(t, "/etc/subuid")
	subgid, _ := firstSubID(t, "/etc/subgid")
	// keepID is what the default view shows for id n of the --root view.
	keepID := func(n, caller int) int {
		switch {
		case n == 0:
			return caller
		case n-1 < caller:
			return n - 1
		default:
			return n
		}
	}
	hostID := func(n, caller int, start uint64) uint64 {
		if n == 0 {
			return uint64(caller)
		}
		return start + uint64(n) - 1
	}
	type id struct{ u, g int }
	ids := []id{{0, 0}, {1, 1}, {2, 3}, {uid, gid}, {uid + 1, gid + 1}, {uid + 2, gid + 2}, {65536, 65536}}
	dir := t.TempDir()
	var script strings.Builder
	for i, n := range ids {
		if n.u > 65536 || n.g > 65536 {
			continue
		}
		f := filepath.Join(dir, "f"+strconv.Itoa(i))
		script.WriteString("touch " + f + " && chown " + strconv.Itoa(n.u) + ":" + strconv.Itoa(n.g) + " " + f + "\n")
	}
	mustSh(t, script.String(), "--root", "--rw", dir)
	r := mustSh(t, `cd `+dir+` && for f in f*; do echo "$f $(stat -c %u:%g $f)"; done`, "--ro", dir)
	shown := map[string]string{}
	for _, l := range lines(r.stdout) {
		f, v, _ := strings.Cut(l, " ")
		shown[f] = v
	}
	for i, n := range ids {
		if n.u > 65536 || n.g > 65536 {
			continue
		}
		name := "f" + strconv.Itoa(i)
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		st := fi.Sys().(*syscall.Stat_t)
		if wu, wg := hostID(n.u, uid, subuid), hostID(n.g, gid, subgid); uint64(st.Uid) != wu || uint64(st.Gid) != wg {
			t.Errorf("--root chown %d:%d is %d:%d on the host, want %d:%d", n.u, n.g, st.Uid, st.Gid, wu, wg)
		}
		want := strconv.Itoa(keepID(n.u, uid)) + ":" + strconv.Itoa(keepID(n.g, gid))
		if shown[name] != want {
			t.Errorf("--root chown %d:%d shows as %q in the default view, want %s", n.u, n.g, shown[name], want)
		}
	}
}
