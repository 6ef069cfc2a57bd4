package tests

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// environ is the test's environment plus a marker variable.
func environ(extra ...string) []string {
	return append(slices.Clone(os.Environ()), extra...)
}

// payloadEnv returns the payload's own environment, read from /proc/self/environ by cat.
func payloadEnv(t *testing.T, env []string, flags ...string) []string {
	t.Helper()
	args := append(append([]string{"run"}, flags...), "--", "/bin/cat", "/proc/self/environ")
	r := sbxCmd{args: args, env: env}.run(t)
	if r.code != 0 {
		t.Fatalf("sbx %q: want exit 0\n%s", args, r)
	}
	var out []string
	for _, kv := range strings.Split(r.stdout, "\x00") {
		if kv != "" {
			out = append(out, kv)
		}
	}
	sort.Strings(out)
	return out
}

// TestEnv tries to break environment passing and the --env, --unsetenv and
// --clearenv flags; the payload must get exactly what was asked for.
func TestEnv(t *testing.T) {
	requireUserns(t)
	t.Parallel()
	base := environ("SBX_T_KEEP=keep me", "SBX_T_DROP=drop me", "SBX_T_OVER=old")
	for _, tc := range []struct {
		name  string
		flags []string
		want  func() []string
	}{
		{"passthrough", nil, func() []string { return base }},
		{"set, override, unset", []string{"--env", "SBX_T_NEW=a=b", "--env", "SBX_T_OVER=new", "--unsetenv", "SBX_T_DROP"},
			func() []string {
				var out []string
				for _, kv := range base {
					if !strings.HasPrefix(kv, "SBX_T_DROP=") && !strings.HasPrefix(kv, "SBX_T_OVER=") {
						out = append(out, kv)
					}
				}
				return append(out, "SBX_T_NEW=a=b", "SBX_T_OVER=new")
			}},
		{"clearenv", []string{"--clearenv", "--env", "SBX_T_NEW=only"}, func() []string { return []string{"SBX_T_NEW=only"} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := payloadEnv(t, base, tc.flags...)
			want := slices.Clone(tc.want())
			sort.Strings(want)
			if slices.Equal(got, want) {
				return
			}
			for _, kv := range got {
				if !slices.Contains(want, kv) {
					t.Errorf("payload has %q, which was not asked for", kv)
				}
			}
			for _, kv := range want {
				if !slices.Contains(got, kv) {
					t.Errorf("payload lacks %q", kv)
				}
			}
		})
	}
}

// TestNoLeaks tries to find sbx's internals (plan, stage arguments, fds,
// variables) anywhere the payload can look.
func TestNoLeaks(t *testing.T) {
	requireUserns(t)
	t.Parallel()
	const marker = "sbxmarker7d1f"
	rw := filepath.Join(t.TempDir(), marker+"dir")
	if err := os.Mkdir(rw, 0o755); err != nil {
		t.Fatal(err)
	}
	flags := []string{"--hostname", marker + "host", "--env", "M=" + marker + "env", "--rw", rw}

	t.Run("cmdline", func(t *testing.T) {
		t.Parallel()
		args := append(append([]string{"run"}, flags...), "--", "/bin/cat", "/proc/self/cmdline")
		r := runSbx(t, args...)
		if r.code != 0 || r.stdout != "/bin/cat\x00/proc/self/cmdline\x00" {
			t.Errorf("the payload's argv is not exactly its command: %q\n%s", r.stdout, r)
		}
	})

	t.Run("pid 1", func(t *testing.T) {
		t.Parallel()
		// PID 1 is sbx's init: the payload may see it, but not the plan through it.
		r := sh(t, `echo "cmdline=$(tr '\0' ' ' < /proc/1/cmdline)"; echo "environ=$(tr '\0' ' ' < /proc/1/environ 2>/dev/null)"
			ls -l /proc/1/fd/ 2>/dev/null | sed 's/^/fd: /'; true`, flags...)
		if r.code != 0 {
			t.Fatalf("want exit 0\n%s", r)
		}
		for _, l := range lines(r.stdout) {
			if strings.Contains(l, marker) || strings.Contains(l, "{") {
				t.Errorf("PID 1 shows the plan: %q", l)
			}
		}
	})

	t.Run("environ", func(t *testing.T) {
		t.Parallel()
		r := sh(t, `tr '\0' '\n' < /proc/self/environ`, append(flags, "--clearenv")...)
		if r.code != 0 {
			t.Fatalf("want exit 0\n%s", r)
		}
		if got := lines(r.stdout); !slices.Equal(got, []string{"M=" + marker + "env"}) {
			t.Errorf("with --clearenv the payload's environment is %q", got)
		}
	})

	t.Run("fds", func(t *testing.T) {
		t.Parallel()
		files := openMarkers(t, 3)
		// ls runs as a child: /proc/$$/fd lists the shell's descriptors,
		// not its own. No pipeline and no redirection, for which the
		// shell would hold more descriptors of its own a moment.
		c := sbxCmd{args: shArgs(`ls -l /proc/$$/fd/`, flags...), extra: files}
		r := c.run(t)
		if r.code != 0 {
			t.Fatalf("want exit 0\n%s", r)
		}
		for _, l := range lines(r.stdout) {
			_, link, ok := strings.Cut(l, " -> ")
			if !ok {
				continue
			}
			f := strings.Fields(strings.TrimSuffix(l, " -> "+link))
			if fd := f[len(f)-1]; fd != "0" && fd != "1" && fd != "2" {
				t.Errorf("fd open in the payload: %q", l)
			}
		}
	})

	t.Run("preserve-fd", func(t *testing.T) {
		t.Parallel()
		files := openMarkers(t, 3) // fds 3, 4, 5
		c := sbxCmd{args: shArgs(`cat <&4; ls /proc/$$/fd/`, append(flags, "--preserve-fd", "4")...), extra: files}
		r := c.run(t)
		if r.code != 0 {
			t.Fatalf("want exit 0\n%s", r)
		}
		got := lines(r.stdout)
		if want := []string{"marker 1", "0", "1", "2", "4"}; !slices.Equal(got, want) {
			t.Errorf("with --preserve-fd 4: got %q, want %q", got, want)
		}
	})
}

// openMarkers opens n files whose contents name their index; they become fds 3, 4, ...
func openMarkers(t *testing.T, n int) []*os.File {
	t.Helper()
	dir := t.TempDir()
	var files []*os.File
	for i := range n {
		p := filepath.Join(dir, "marker"+string(rune('0'+i)))
		writeFile(t, p, "marker "+string(rune('0'+i))+"\n", 0o644)
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		files = append(files, f)
	}
	return files
}

// TestPreserveHighFD keeps a descriptor numbered in the tens of
// thousands: sbx lays out every descriptor up to it, in the child of a
// clone that shares sbx's memory and runs on a small stack of its own,
// which a scratch array of that size once overflowed (heap corruption,
// SIGABRT in sbx).
func TestPreserveHighFD(t *testing.T) {
	requireUserns(t)
	t.Parallel()
	hard := hardNofile(t)
	n := min(hard, 30000)
	if n < 1024 {
		mustRun(t, fmt.Sprintf("the hard limit on open files is %d", hard))
	}
	fd := n - 100
	t.Logf("descriptor %d (hard limit %d)", fd, hard)
	// bash: dash redirects only descriptors 0-9.
	out, stderr, err := sbxInShell(t, "bash", fmt.Sprintf(`ulimit -n %d && exec %d</dev/null && exec "$0" run --preserve-fd %d -- sh -c 'test -e /proc/self/fd/%d && echo kept'`, n, fd, fd, fd))
	if err != nil || out != "kept" {
		t.Errorf("--preserve-fd %d: %v\nstdout %q\nstderr %q", fd, err, out, stderr)
	}
}

func hardNofile(t *testing.T) uint64 {
	t.Helper()
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	return lim.Max
}

// sbxInShell runs script with shell -c, $0 being sbx, and returns its
// trimmed stdout and its stderr.
func sbxInShell(t *testing.T, shell, script string) (stdout, stderr string, err error) {
	t.Helper()
	cmd := exec.Command(shell, "-c", script, sbxBin)
	var errb strings.Builder
	cmd.Stderr = &errb
	out, err := cmd.Output()
	return strings.TrimSpace(string(out)), errb.String(), err
}

// TestRlimitPassesThrough checks that the caller's soft limit on open
// files is the payload's: Go raises its own to the hard limit as it
// starts, and sbx's spawner, unlike syscall.StartProcess, gave the raised
// one to the payload and the id-map helpers.
func TestRlimitPassesThrough(t *testing.T) {
	requireUserns(t)
	t.Parallel()
	soft := min(hardNofile(t), 1000) - 7 // neither Go's default nor the hard limit
	out, stderr, err := sbxInShell(t, "sh", fmt.Sprintf(`ulimit -Sn %d && exec "$0" run -- sh -c 'ulimit -Sn'`, soft))
	if err != nil || out != strconv.FormatUint(soft, 10) {
		t.Errorf("the caller's soft limit on open files is %d: the payload's is %q (%v)\n%s", soft, out, err, stderr)
	}
}
