package tests

import (
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
)

// lines splits output into trimmed non-empty lines.
func lines(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}

// TestDefaultView tries to break the default filesystem view, one claim per subtest.
func TestDefaultView(t *testing.T) {
	requireUserns(t)
	t.Parallel()
	home := os.Getenv("HOME")

	t.Run("absent top-level dirs", func(t *testing.T) {
		t.Parallel()
		r := mustSh(t, `for p in /run /var /srv /mnt /media /root /boot /opt; do
			if [ -e $p ]; then echo $p; fi; done`)
		if got := lines(r.stdout); len(got) > 0 {
			t.Errorf("visible inside, want absent: %q", got)
		}
	})

	t.Run("sys absent or read-only", func(t *testing.T) {
		t.Parallel()
		r := mustSh(t, `if [ -e /sys ]; then touch /sys/sbx-probe 2>/dev/null && echo WROTE; echo present; fi; true`)
		if strings.Contains(r.stdout, "WROTE") {
			t.Errorf("/sys is writable")
		}
		if strings.Contains(r.stdout, "present") {
			checkMountRO(t, "/sys")
		}
	})

	t.Run("other homes and /root unreadable", func(t *testing.T) {
		t.Parallel()
		var others []string
		ents, _ := os.ReadDir("/home")
		for _, e := range ents {
			if p := filepath.Join("/home", e.Name()); p != home && !strings.HasPrefix(home, p+"/") {
				others = append(others, p)
			}
		}
		script := `ls -A /home 2>/dev/null | sed 's/^/home: /'; cat /root/.bashrc /root/.profile 2>/dev/null | sed 's/^/root: /'
			for p in "$@"; do if [ -e "$p" ]; then echo "visible: $p"; fi; done; true`
		args := append(shArgs(script), "sh")
		r := runSbx(t, append(args, others...)...)
		if r.code != 0 {
			t.Fatalf("want exit 0\n%s", r)
		}
		for _, l := range lines(r.stdout) {
			if strings.HasPrefix(l, "home: ") {
				if name := strings.TrimPrefix(l, "home: "); filepath.Join("/home", name) == home ||
					strings.HasPrefix(home, filepath.Join("/home", name)+"/") {
					continue
				}
			}
			t.Errorf("another user's data is visible: %q", l)
		}
	})

	t.Run("home empty and writable", func(t *testing.T) {
		t.Parallel()
		if home == "" || strings.HasPrefix(processCwd, home+"/") {
			t.Skip("skipped: HOME unset or the cwd lies inside it (TestCwdInHome covers that)")
		}
		r := mustSh(t, `ls -A "$HOME"; touch "$HOME/sbx-probe" && echo WROTE`)
		if got := lines(r.stdout); !slices.Equal(got, []string{"WROTE"}) {
			t.Errorf("$HOME inside: want empty and writable, got %q", got)
		}
		if _, err := os.Lstat(filepath.Join(home, "sbx-probe")); err == nil {
			os.Remove(filepath.Join(home, "sbx-probe"))
			t.Errorf("a file written to $HOME inside appeared in the host's home")
		}
	})

	t.Run("tmp private and writable", func(t *testing.T) {
		t.Parallel()
		f, err := os.CreateTemp("/tmp", "sbx-private-")
		if err != nil {
			t.Fatal(err)
		}
		f.Close()
		defer os.Remove(f.Name())
		probe := "/tmp/sbx-probe-" + filepath.Base(f.Name())
		r := mustSh(t, `if [ -e "`+f.Name()+`" ]; then echo VISIBLE; fi; touch `+probe+` && echo WROTE`)
		if got := lines(r.stdout); !slices.Equal(got, []string{"WROTE"}) {
			t.Errorf("want the host's /tmp invisible and /tmp writable, got %q", got)
		}
		if _, err := os.Lstat(probe); err == nil {
			os.Remove(probe)
			t.Errorf("a file written to /tmp inside appeared in the host's /tmp")
		}
	})

	t.Run("read-only system dirs", func(t *testing.T) {
		t.Parallel()
		r := mustSh(t, `for p in /usr/sbx-probe /etc/sbx-probe /sbx-probe /proc/sys/sbx-probe /dev/sbx-probe; do
			if touch $p 2>/dev/null; then echo "wrote $p"; fi; done
			if echo x >> /etc/passwd 2>/dev/null; then echo "wrote /etc/passwd"; fi; true`)
		if got := lines(r.stdout); len(got) > 0 {
			t.Errorf("writable inside: %q", got)
		}
	})

	t.Run("usr-merge symlinks kept", func(t *testing.T) {
		t.Parallel()
		var want []string
		for _, p := range []string{"/bin", "/sbin", "/lib", "/lib64"} {
			if target, err := os.Readlink(p); err == nil {
				want = append(want, p+" -> "+target)
			}
		}
		if len(want) == 0 {
			t.Skip("skipped: this host is not usr-merged")
		}
		r := mustSh(t, `for p in /bin /sbin /lib /lib64; do t=$(readlink $p) && echo "$p -> $t"; done; true`)
		if got := lines(r.stdout); !slices.Equal(got, want) {
			t.Errorf("inside %q, host %q", got, want)
		}
	})

	t.Run("dev minimal", func(t *testing.T) {
		t.Parallel()
		r := mustSh(t, `ls -A /dev; echo --; ls -A /dev/pts; echo --; echo hi > /dev/null && head -c 4 /dev/urandom | wc -c`)
		parts := strings.Split(r.stdout, "--\n")
		if len(parts) != 3 {
			t.Fatalf("unexpected output\n%s", r)
		}
		dev := lines(parts[0])
		for _, want := range []string{"null", "zero", "full", "random", "urandom", "tty", "pts", "shm", "fd", "stdin", "stdout", "stderr"} {
			if !slices.Contains(dev, want) {
				t.Errorf("/dev lacks %s: %q", want, dev)
			}
		}
		allowed := []string{"null", "zero", "full", "random", "urandom", "tty", "pts", "shm", "fd",
			"stdin", "stdout", "stderr", "ptmx", "console", "core", "mqueue"}
		for _, e := range dev {
			if !slices.Contains(allowed, e) {
				t.Errorf("/dev has %q beyond the minimal set", e)
			}
		}
		if !slices.Contains(lines(parts[1]), "ptmx") {
			t.Errorf("/dev/pts lacks ptmx: %q", parts[1])
		}
		if strings.TrimSpace(parts[2]) != "4" {
			t.Errorf("/dev/null or /dev/urandom unusable: %q", parts[2])
		}
	})

	t.Run("cwd read-only", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		writeFile(t, filepath.Join(dir, "file"), "content", 0o644)
		r := sbxCmd{args: shArgs(`pwd; cat file; echo; echo x >> file 2>/dev/null && echo WROTE; touch new 2>/dev/null && echo CREATED; true`), dir: dir}.run(t)
		if r.code != 0 {
			t.Fatalf("want exit 0\n%s", r)
		}
		if got, want := lines(r.stdout), []string{dir, "content"}; !slices.Equal(got, want) {
			t.Errorf("inside the cwd: got %q, want %q (readable, not writable)", got, want)
		}
		if b, _ := os.ReadFile(filepath.Join(dir, "file")); string(b) != "content" {
			t.Errorf("the host file changed: %q", b)
		}
	})
}

// mountEntry is one line of /proc/self/mountinfo.
type mountEntry struct {
	point, opts, fstype string
}

func parseMountinfo(text string) []mountEntry {
	var out []mountEntry
	for _, l := range lines(text) {
		f := strings.Fields(l)
		if len(f) < 10 {
			continue
		}
		sep := slices.Index(f, "-")
		if sep < 0 || sep+1 >= len(f) {
			continue
		}
		point := strings.NewReplacer(`\040`, " ", `\011`, "\t", `\012`, "\n", `\134`, `\`).Replace(f[4])
		out = append(out, mountEntry{point: point, opts: f[5], fstype: f[sep+1]})
	}
	return out
}

func isRO(opts string) bool { return slices.Contains(strings.Split(opts, ","), "ro") }

// checkMountRO fails unless the mount at point (inside a default sandbox) is read-only.
func checkMountRO(t *testing.T, point string) {
	t.Helper()
	r := mustSh(t, "cat /proc/self/mountinfo")
	for _, m := range parseMountinfo(r.stdout) {
		if m.point == point && !isRO(m.opts) {
			t.Errorf("%s is mounted %s", point, m.opts)
		}
	}
}

// TestMountsReadOnly tries to break "read-only holds for every mount but the
// writable ones the plan names".
func TestMountsReadOnly(t *testing.T) {
	requireUserns(t)
	t.Parallel()
	rw := t.TempDir()
	ro := t.TempDir()
	if err := os.Mkdir(filepath.Join(ro, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	home := os.Getenv("HOME")
	r := mustSh(t, "cat /proc/self/mountinfo", "--rw", rw, "--ro", ro, "--tmpfs", "/scratch", "--tmpfs", ro+"/sub")
	writable := map[string]bool{
		"/tmp": true, home: true, "/dev/shm": true, "/dev/pts": true, "/proc": true,
		rw: true, "/scratch": true, ro + "/sub": true,
	}
	// A bind of a character device is writable whatever its mount flags
	// (MS_RDONLY does not apply to device nodes), so rw there grants nothing.
	devNodes := map[string]bool{"/dev/null": true, "/dev/zero": true, "/dev/full": true,
		"/dev/random": true, "/dev/urandom": true, "/dev/tty": true, "/dev/console": true, "/dev/ptmx": true}
	mounts := parseMountinfo(r.stdout)
	if len(mounts) == 0 {
		t.Fatalf("no mounts parsed\n%s", r)
	}
	seen := map[string]bool{}
	for _, m := range mounts {
		seen[m.point] = true
		if writable[m.point] || devNodes[m.point] || isRO(m.opts) {
			continue
		}
		t.Errorf("%s (%s) is mounted %s, want ro", m.point, m.fstype, m.opts)
	}
	for _, p := range []string{"/", "/usr", "/etc", "/proc", "/tmp", rw, ro, "/scratch", ro + "/sub"} {
		if !seen[p] {
			t.Errorf("no mount at %s", p)
		}
	}
	for _, m := range mounts {
		if m.point == "/proc/sys" && !isRO(m.opts) {
			t.Errorf("/proc/sys is mounted %s", m.opts)
		}
		if writable[m.point] && m.point != "/proc" && isRO(m.opts) {
			t.Errorf("%s should be writable but is mounted %s", m.point, m.opts)
		}
	}
	if !seen["/proc/sys"] {
		// Acceptable only if /proc/sys is read-only some other way.
		r := sh(t, "echo 1 > /proc/sys/kernel/ns_last_pid 2>&1; echo rc=$?", "--root")
		if strings.Contains(r.stdout, "rc=0") {
			t.Errorf("no read-only /proc/sys mount and a sysctl write succeeded under --root")
		}
	}
}

// TestBindFlags tries to break --ro, --rw, --tmpfs, --hide, --chdir and --hostname.
func TestBindFlags(t *testing.T) {
	requireUserns(t)
	t.Parallel()

	t.Run("ro at a new dest", func(t *testing.T) {
		t.Parallel()
		src := t.TempDir()
		writeFile(t, filepath.Join(src, "f"), "ro-data", 0o644)
		r := mustSh(t, `cat /data/f; echo; touch /data/g 2>/dev/null && echo WROTE; true`, "--ro", src+":/data")
		if got := lines(r.stdout); !slices.Equal(got, []string{"ro-data"}) {
			t.Errorf("got %q, want the file readable and the dir read-only", got)
		}
	})

	t.Run("rw same path", func(t *testing.T) {
		t.Parallel()
		src := t.TempDir()
		mustSh(t, `echo rw-data > `+src+`/g`, "--rw", src)
		if b, err := os.ReadFile(filepath.Join(src, "g")); err != nil || string(b) != "rw-data\n" {
			t.Errorf("host sees %q, %v", b, err)
		}
	})

	t.Run("rw at a new dest", func(t *testing.T) {
		t.Parallel()
		src := t.TempDir()
		mustSh(t, `echo rw-data > /w/g`, "--rw", src+":/w")
		if b, err := os.ReadFile(filepath.Join(src, "g")); err != nil || string(b) != "rw-data\n" {
			t.Errorf("host sees %q, %v", b, err)
		}
	})

	t.Run("applied in order", func(t *testing.T) {
		t.Parallel()
		src := t.TempDir()
		if err := os.Mkdir(filepath.Join(src, "sub"), 0o755); err != nil {
			t.Fatal(err)
		}
		r := mustSh(t, `touch `+src+`/top && echo TOP; touch `+src+`/sub/x 2>/dev/null && echo SUB; true`,
			"--rw", src, "--ro", src+"/sub")
		if got := lines(r.stdout); !slices.Equal(got, []string{"TOP"}) {
			t.Errorf("--rw D --ro D/sub: got %q, want D writable and D/sub read-only", got)
		}
	})

	t.Run("tmpfs", func(t *testing.T) {
		t.Parallel()
		src := t.TempDir()
		if err := os.Mkdir(filepath.Join(src, "sub"), 0o755); err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(src, "sub", "old"), "old", 0o644)
		r := mustSh(t, `echo A; ls -A /scratch; echo B; ls -A `+src+`/sub; touch /scratch/x `+src+`/sub/y && echo OK`,
			"--rw", src, "--tmpfs", "/scratch", "--tmpfs", src+"/sub")
		if got := lines(r.stdout); !slices.Equal(got, []string{"A", "B", "OK"}) {
			t.Errorf("got %q, want both tmpfs empty and writable", got)
		}
		if _, err := os.Lstat(filepath.Join(src, "sub", "y")); err == nil {
			t.Errorf("a write to a --tmpfs reached the host")
		}
		if _, err := os.Lstat("/scratch"); err == nil {
			t.Logf("note: /scratch exists on the host (not created by this test?)")
		}
	})

	t.Run("hide", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		writeFile(t, filepath.Join(dir, "secret.txt"), "s3cret", 0o644)
		if err := os.Mkdir(filepath.Join(dir, "secretdir"), 0o755); err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(dir, "secretdir", "inner"), "s3cret", 0o644)
		writeFile(t, filepath.Join(dir, "open.txt"), "open", 0o644)
		c := sbxCmd{dir: dir, args: shArgs(`cat open.txt; echo; cat secret.txt 2>/dev/null; ls -A secretdir 2>/dev/null;
			cat secretdir/inner 2>/dev/null; touch secretdir/x 2>/dev/null && echo WROTE; true`,
			"--hide", filepath.Join(dir, "secret.txt"), "--hide", filepath.Join(dir, "secretdir"))}
		r := c.run(t)
		if r.code != 0 {
			t.Fatalf("want exit 0\n%s", r)
		}
		if got := lines(r.stdout); !slices.Equal(got, []string{"open"}) {
			t.Errorf("got %q, want only the unhidden file", got)
		}
	})

	t.Run("chdir", func(t *testing.T) {
		t.Parallel()
		src := t.TempDir()
		r := mustSh(t, `pwd; touch here && echo WROTE`, "--rw", src, "--chdir", src)
		if got := lines(r.stdout); !slices.Equal(got, []string{src, "WROTE"}) {
			t.Errorf("got %q", got)
		}
		r = mustSh(t, `pwd`, "--chdir", "/tmp")
		if got := strings.TrimSpace(r.stdout); got != "/tmp" {
			t.Errorf("--chdir /tmp: pwd %q", got)
		}
	})

	t.Run("hostname", func(t *testing.T) {
		t.Parallel()
		r := mustSh(t, `cat /proc/sys/kernel/hostname`, "--hostname", "sbx-box")
		if got := strings.TrimSpace(r.stdout); got != "sbx-box" {
			t.Errorf("hostname inside %q", got)
		}
		host, _ := os.Hostname()
		if host == "sbx-box" {
			t.Errorf("--hostname changed the host's hostname")
		}
	})
}

// TestCwdInHome tries to break the default view when the cwd lies inside
// $HOME: $HOME stays an empty tmpfs except for the read-only cwd.
func TestCwdInHome(t *testing.T) {
	requireUserns(t)
	t.Parallel()
	home := os.Getenv("HOME")
	if home == "" {
		mustRun(t, "HOME is not set")
	}
	dir, err := os.MkdirTemp(home, "sbx-cwd-")
	if err != nil {
		mustRun(t, "cannot create a directory in $HOME: "+err.Error())
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	writeFile(t, filepath.Join(dir, "file"), "content", 0o644)
	r := sbxCmd{dir: dir, args: shArgs(`pwd; ls -A "$HOME"; cat file; echo; touch file2 2>/dev/null && echo WROTE;
		touch "$HOME/h" && echo HOMEWRITE; true`)}.run(t)
	if r.code != 0 {
		t.Fatalf("want exit 0\n%s", r)
	}
	want := []string{dir, filepath.Base(dir), "content", "HOMEWRITE"}
	if got := lines(r.stdout); !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
	if _, err := os.Lstat(filepath.Join(home, "h")); err == nil {
		os.Remove(filepath.Join(home, "h"))
		t.Errorf("a write to $HOME inside reached the host's home")
	}
}

// TestSymlinkSafety tries to make sbx follow a symlink planted in a writable
// grant out of the place it names, on the host or in the sandbox.
func TestSymlinkSafety(t *testing.T) {
	requireUserns(t)
	t.Parallel()

	// setup: D (granted rw) holds link -> T; T is a host dir the caller can
	// write but did not grant, holding a secret.
	setup := func(t *testing.T) (d, target string) {
		d, target = t.TempDir(), t.TempDir()
		writeFile(t, filepath.Join(target, "secret"), "s3cret", 0o644)
		if err := os.Symlink(target, filepath.Join(d, "link")); err != nil {
			t.Fatal(err)
		}
		return d, target
	}
	// unchanged checks the host side: T holds only its secret, D only the link, still a symlink to T.
	unchanged := func(t *testing.T, d, target string) {
		t.Helper()
		if got := dirNames(t, target); !slices.Equal(got, []string{"secret"}) {
			t.Errorf("the symlink's target %s changed on the host: %q", target, got)
		}
		if got := dirNames(t, d); !slices.Equal(got, []string{"link"}) {
			t.Errorf("the granted dir %s changed on the host: %q", d, got)
		}
		if got, err := os.Readlink(filepath.Join(d, "link")); err != nil || got != target {
			t.Errorf("the planted symlink was replaced: %q, %v", got, err)
		}
	}

	t.Run("tmpfs through the link", func(t *testing.T) {
		t.Parallel()
		d, target := setup(t)
		r := sh(t, `cat /proc/self/mountinfo`, "--rw", d, "--tmpfs", d+"/link/x")
		t.Logf("exit %d, stderr %q", r.code, r.stderr)
		if r.code != 0 && r.code != 125 {
			t.Errorf("want success or 125, got\n%s", r)
		}
		unchanged(t, d, target)
	})

	t.Run("ro bind onto the link", func(t *testing.T) {
		t.Parallel()
		d, target := setup(t)
		r := sh(t, `ls -A `+d+`/link/ 2>&1 | head -3; cat /proc/self/mountinfo`, "--rw", d, "--ro", "/usr/share:"+d+"/link")
		t.Logf("exit %d, stderr %q", r.code, r.stderr)
		if r.code != 0 && r.code != 125 {
			t.Errorf("want success or 125, got\n%s", r)
		}
		if r.code == 0 {
			for _, m := range parseMountinfo(r.stdout) {
				if m.point == target || strings.HasPrefix(m.point, target+"/") {
					t.Errorf("the bind for %s/link landed on the link's target %s", d, m.point)
				}
			}
		}
		unchanged(t, d, target)
	})

	t.Run("rw bind through the link", func(t *testing.T) {
		t.Parallel()
		d, target := setup(t)
		src := t.TempDir()
		r := sh(t, `touch `+d+`/link/y/z 2>/dev/null; true`, "--rw", d, "--rw", src+":"+d+"/link/y")
		t.Logf("exit %d, stderr %q", r.code, r.stderr)
		unchanged(t, d, target)
	})

	// A mask is put on last, in the finished view: it must not follow
	// the link out of D even when --hide comes before --rw D.
	for _, order := range [][]string{{"--rw", "D", "--hide", "D/link"}, {"--hide", "D/link", "--rw", "D"}} {
		t.Run("hide through the link "+strings.Join(order, " "), func(t *testing.T) {
			t.Parallel()
			d, target := setup(t)
			var flags []string
			for _, f := range order {
				flags = append(flags, strings.Replace(f, "D", d, 1))
			}
			r := sh(t, `cat /proc/self/mountinfo`, flags...)
			if r.code != 125 || !strings.Contains(r.stderr, "leads out of") {
				t.Errorf("want 125: the link leads out of the grant\n%s", r)
			}
			for _, m := range parseMountinfo(r.stdout) {
				if m.point == target {
					t.Errorf("the mask for %s/link landed on the link's target %s", d, target)
				}
			}
			unchanged(t, d, target)
		})
	}

	// A read-only bind whose source lies inside the grant shows what the
	// sandbox could shape too: a destination inside it is resolved
	// beneath it as well.
	t.Run("tmpfs through a link in a bind from the grant", func(t *testing.T) {
		t.Parallel()
		d, target := setup(t)
		if err := os.Mkdir(filepath.Join(d, "sub"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(target, filepath.Join(d, "sub", "link")); err != nil {
			t.Fatal(err)
		}
		r := sh(t, `cat /proc/self/mountinfo`, "--rw", d, "--ro", d+"/sub:/x", "--tmpfs", "/x/link/y")
		if r.code != 125 || !strings.Contains(r.stderr, "leads out of") {
			t.Errorf("want 125: the link leads out of the bind\n%s", r)
		}
		if got := dirNames(t, target); !slices.Equal(got, []string{"secret"}) {
			t.Errorf("the link's target %s changed on the host: %q", target, got)
		}
	})

	t.Run("source through the link", func(t *testing.T) {
		t.Parallel()
		d, target := setup(t)
		r := sh(t, `cat /y/secret 2>/dev/null; true`, "--rw", d, "--ro", d+"/link:/y")
		t.Logf("exit %d, stderr %q", r.code, r.stderr)
		if r.code == 0 && strings.Contains(r.stdout, "s3cret") {
			t.Errorf("--ro D/link:/y exposed the link's target %s outside D", target)
		}
		unchanged(t, d, target)
	})
}

// A mask reached through a link into /proc would cover a file of init's,
// not the payload's: /etc/mtab (-> ../proc/self/mounts) is refused, not
// silently left showing.
func TestHideLinkIntoProc(t *testing.T) {
	requireUserns(t)
	t.Parallel()
	d := t.TempDir()
	if err := os.Symlink("../proc/self/mounts", filepath.Join(d, "mtab")); err != nil {
		t.Fatal(err)
	}
	// /x/mtab leads to /proc/self/mounts in the view, as /etc/mtab does.
	r := sh(t, `head -1 /x/mtab`, "--ro", d+":/x", "--hide", "/x/mtab")
	if r.code != 125 || !strings.Contains(r.stderr, "hide /x/mtab") || r.stdout != "" {
		t.Errorf("--hide of a link into /proc: want 125 naming it, and nothing run\n%s", r)
	}
}

func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	sort.Strings(out)
	return out
}

// TestUnreadableSource tries to read a file the caller cannot read by binding it in.
func TestUnreadableSource(t *testing.T) {
	requireUserns(t)
	t.Parallel()
	for _, src := range []string{"/etc/shadow", "/etc/gshadow"} {
		if f, err := os.Open(src); err == nil {
			f.Close()
			continue // readable here: proves nothing
		} else if !os.IsPermission(err) {
			continue
		}
		for _, flags := range [][]string{{"--ro", src + ":/s"}, {"--root", "--ro", src + ":/s"}} {
			r := sh(t, `cat /s`, flags...)
			if r.code == 0 {
				t.Errorf("%q exposed an unreadable file:\n%s", flags, r)
			}
		}
	}
	// A directory the caller can neither list nor pass through is an
	// unreadable path: 125 naming it, not an empty view.
	d := filepath.Join(t.TempDir(), "closed")
	if err := os.Mkdir(d, 0); err != nil {
		t.Fatal(err)
	}
	defer os.Chmod(d, 0o700)
	if _, err := os.ReadDir(d); os.IsPermission(err) {
		r := sh(t, `ls /c`, "--ro", d+":/c")
		if r.code != 125 {
			t.Errorf("--ro of a directory the caller cannot use: want 125\n%s", r)
		}
		checkOneError(t, r, d)
	} else {
		t.Errorf("a mode 0 directory is readable here (%v): run the tests as an unprivileged user", err)
	}
}

// TestCwdAboveHome tries to use the read-only cwd bind to undo the default
// view: started from $HOME itself or from the directory holding the homes,
// sbx must either refuse (125) or still keep $HOME's own files and other
// users' homes out of sight.
func TestCwdAboveHome(t *testing.T) {
	requireUserns(t)
	t.Parallel()
	home, secret := plantHomeSecret(t)
	parent := filepath.Dir(home)
	var others []string
	ents, _ := os.ReadDir(parent)
	for _, e := range ents {
		if p := filepath.Join(parent, e.Name()); p != home && e.IsDir() {
			others = append(others, p)
		}
	}
	script := `cat "$1" 2>/dev/null; shift; for p in "$@"; do if [ -e "$p" ]; then echo "visible: $p"; fi; done; true`
	for _, tc := range []struct{ name, dir string }{{"cwd is HOME", home}, {"cwd holds the homes", parent}} {
		dir := tc.dir
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			args := append(append(shArgs(script), "sh", secret), others...)
			r := sbxCmd{args: args, dir: dir}.run(t)
			switch {
			case r.code == 125:
				t.Logf("refused: %q", r.stderr)
			case r.code != 0:
				t.Fatalf("want 0 or 125\n%s", r)
			default:
				if got := lines(r.stdout); len(got) > 0 {
					t.Errorf("started from %s, the payload sees what the default view hides: %q", dir, got)
				}
			}
		})
	}
}

// plantHomeSecret writes a file holding "s3cret" in $HOME, removed at
// the end of the test, and returns $HOME and the file's path.
func plantHomeSecret(t *testing.T) (home, secret string) {
	t.Helper()
	home = os.Getenv("HOME")
	if home == "" || home == "/" {
		mustRun(t, "HOME is unset or /")
	}
	f, err := os.CreateTemp(home, ".sbx-secret-")
	if err != nil {
		mustRun(t, "cannot create a file in $HOME: "+err.Error())
	}
	f.WriteString("s3cret\n")
	f.Close()
	t.Cleanup(func() { os.Remove(f.Name()) })
	return home, f.Name()
}
