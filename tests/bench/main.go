// Command bench times the start-up of an sbx sandbox against bubblewrap
// and unshare(1) doing comparable work:
//
//	go run ./tests/bench -n 200 -sbx PATH
//
// It runs, interleaved, `sbx run -- /bin/true`, a bwrap command line as
// strict as sbx's default, and `unshare -Urmpfiun true`, 10 warm-up runs
// and then N timed runs each, every run with stdin and stdout on
// /dev/null. It prints median, p10 and p90 wall time, the peak RSS from
// wait4(2)'s rusage, and the ratios of the medians. It exits 0 whatever
// the numbers are, and 1 when a command fails or a tool is missing.
//
// Run as root, it makes (if missing) the unprivileged user sbxtest and
// its subordinate ids, copies itself and sbx into a fresh directory under
// /tmp, and re-executes itself there as sbxtest: the rootless path is
// the one worth measuring.
package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"sbx/tests/testenv"
)

const (
	testUser = "sbxtest"
	warmups  = 10
	// runTimeout kills a run that hangs; sbx is under construction.
	runTimeout = 30 * time.Second
)

func main() {
	n := flag.Int("n", 200, "timed runs of each command")
	sbx := flag.String("sbx", "", "the sbx binary (default: sbx from PATH)")
	flag.Parse()
	if err := run(*n, *sbx); err != nil {
		fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		os.Exit(1)
	}
}

func run(n int, sbx string) error {
	if n < 1 {
		return fmt.Errorf("-n %d: want at least 1", n)
	}
	if flag.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", flag.Args())
	}
	sbx, err := findSbx(sbx)
	if err != nil {
		return err
	}
	bwrap, err := exec.LookPath("bwrap")
	if err != nil {
		return errors.New("bwrap not found in PATH: install bubblewrap (.ci/run does)")
	}
	unshare, err := exec.LookPath("unshare")
	if err != nil {
		return errors.New("unshare not found in PATH: install util-linux")
	}
	if os.Geteuid() == 0 {
		return reexecAsTestUser(n, sbx)
	}
	cmds, err := commands(sbx, bwrap, unshare)
	if err != nil {
		return err
	}
	return measure(n, cmds)
}

func findSbx(p string) (string, error) {
	if p == "" {
		found, err := exec.LookPath("sbx")
		if err != nil {
			return "", errors.New("sbx not found in PATH; pass -sbx PATH")
		}
		p = found
	}
	p, err := filepath.Abs(p)
	if err != nil {
		return "", err
	}
	if err := unix.Access(p, unix.X_OK); err != nil {
		return "", fmt.Errorf("sbx %s: %w", p, err)
	}
	return p, nil
}

// reexecAsTestUser runs this program again as sbxtest, from copies of
// its binary and of sbx in a fresh directory that sbxtest can read, with
// a working directory sbxtest owns, and exits with its status.
func reexecAsTestUser(n int, sbx string) error {
	logf := func(format string, args ...any) { fmt.Printf("bench: "+format+"\n", args...) }
	u, err := testenv.EnsureUser(testUser, true, logf)
	if err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	dir, err := testenv.CopyExecutables("sbx-bench-", map[string]string{"bench": self, "sbx": sbx})
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	benchCopy, sbxCopy := filepath.Join(dir, "bench"), filepath.Join(dir, "sbx")
	work := filepath.Join(dir, "work")
	if err := os.Mkdir(work, 0o755); err != nil {
		return err
	}
	if err := os.Chown(work, int(u.UID), int(u.GID)); err != nil {
		return err
	}

	cmd := testenv.Command(u, benchCopy, "-n", strconv.Itoa(n), "-sbx", sbxCopy)
	if rt := fmt.Sprintf("/run/user/%d", u.UID); isSocket(filepath.Join(rt, "systemd", "private")) {
		cmd.Env = append(cmd.Env, "XDG_RUNTIME_DIR="+rt)
	} else if mgr, err := testenv.StartUserManager(u); err != nil {
		fmt.Printf("bench: no user manager for %s (%v): limited runs are not measured\n", u.Name, err)
	} else {
		// As in the integration tests' host tier: a real systemd --user,
		// with the bench in a cgroup beside it.
		defer mgr.Stop()
		cg, err := mgr.ClientsFD()
		if err != nil {
			return err
		}
		defer cg.Close()
		cmd.SysProcAttr.UseCgroupFD, cmd.SysProcAttr.CgroupFD = true, int(cg.Fd())
		cmd.Env = append(cmd.Env, "XDG_RUNTIME_DIR="+mgr.RuntimeDir)
	}
	cmd.Dir = work
	cmd.Stdin, cmd.Stdout, cmd.Stderr = nil, os.Stdout, os.Stderr
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	fmt.Printf("bench: running as %s (uid %d) from %s\n", u.Name, u.UID, dir)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("run %s as %s: %w", benchCopy, u.Name, err)
	}
	// Outlive ^C and SIGTERM, passing them on, to remove dir.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		for s := range sigs {
			cmd.Process.Signal(s)
		}
	}()
	err = cmd.Wait()
	signal.Stop(sigs)
	if exitErr, ok := errors.AsType[*exec.ExitError](err); ok {
		os.RemoveAll(dir)
		os.Exit(max(exitErr.ExitCode(), 1)) // the child has said why
	}
	if err != nil {
		return fmt.Errorf("wait for %s: %w", benchCopy, err)
	}
	return nil
}

func isSocket(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode()&os.ModeSocket != 0
}

// command is one contender, with what its runs measured.
type command struct {
	name  string
	argv  []string
	times []time.Duration
	rss   int64 // max ru_maxrss over the timed runs, KiB
}

func commands(sbx, bwrap, unshare string) ([]*command, error) {
	home, err := os.UserHomeDir()
	if err != nil {
		return nil, err
	}
	cwd, err := os.Getwd()
	if err != nil {
		return nil, err
	}
	b := []string{bwrap, "--unshare-all", "--die-with-parent", "--new-session", "--ro-bind", "/usr", "/usr"}
	// The merged-/usr links stay links; where the host has a real
	// directory, it is bound.
	for _, name := range []string{"bin", "sbin", "lib", "lib32", "lib64", "libx32"} {
		p := "/" + name
		fi, err := os.Lstat(p)
		switch {
		case err != nil:
			continue
		case fi.Mode()&os.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return nil, err
			}
			b = append(b, "--symlink", target, p)
		case fi.IsDir():
			b = append(b, "--ro-bind", p, p)
		}
	}
	b = append(b,
		"--ro-bind", "/etc", "/etc",
		"--proc", "/proc",
		"--dev", "/dev",
		"--tmpfs", "/tmp",
		"--tmpfs", home,
		"--ro-bind", cwd, cwd,
		"--chdir", cwd,
		"--cap-drop", "ALL",
		"/bin/true")
	cmds := []*command{
		{name: "sbx", argv: []string{sbx, "run", "--", "/bin/true"}},
		{name: "bwrap", argv: b},
		{name: "unshare", argv: []string{unshare, "-Urmpfiun", "true"}},
	}
	return append(cmds, limitCommands(sbx)...), nil
}

// limitCommands are the limited runs, where a user manager answers: sbx
// with --memory 256M --pids 512 (or, where no controller is delegated,
// --cgroup: the same delegated leaf without the limit files) and
// systemd-run's own scope for the same limit.
func limitCommands(sbx string) []*command {
	rt := os.Getenv("XDG_RUNTIME_DIR")
	sdrun, err := exec.LookPath("systemd-run")
	if rt == "" || err != nil {
		fmt.Println("bench: no user manager or systemd-run: limited runs are not measured")
		return nil
	}
	if _, err := os.Stat(filepath.Join(rt, "systemd", "private")); err != nil {
		fmt.Printf("bench: no user manager at %s: limited runs are not measured\n", rt)
		return nil
	}
	lim := []string{sbx, "run", "--memory", "256M", "--pids", "512", "--", "/bin/true"}
	if err := exec.Command(lim[0], lim[1:]...).Run(); err != nil {
		fmt.Println("bench: --memory/--pids refused here (no controllers delegated): timing --cgroup, the same delegated leaf")
		lim = []string{sbx, "run", "--cgroup", "--", "/bin/true"}
	}
	return []*command{
		{name: "sbx-lim", argv: lim},
		{name: "sd-run", argv: []string{sdrun, "--user", "--scope", "--quiet", "-p", "MemoryMax=256M", "/bin/true"}},
	}
}

func measure(n int, cmds []*command) error {
	cwd, _ := os.Getwd()
	fmt.Printf("bench: uid %d, cwd %s, %d warm-up and %d timed runs of each, interleaved:\n",
		os.Getuid(), cwd, warmups, n)
	for _, c := range cmds {
		fmt.Printf("  %s\n", strings.Join(c.argv, " "))
	}
	r, err := newRunner()
	if err != nil {
		return err
	}
	defer r.close()
	for i := range warmups + n {
		for _, c := range cmds {
			d, rss, err := r.run(c.argv)
			if err != nil {
				return fmt.Errorf("%s, run %d: %w", c.name, i+1, err)
			}
			if i >= warmups {
				c.times = append(c.times, d)
				c.rss = max(c.rss, rss)
			}
		}
	}

	floor, floorRSS, err := spawnFloor(r)
	if err != nil {
		return err
	}

	const row = "%-8s %10s %8s %8s %13s\n"
	fmt.Printf(row, "command", "median ms", "p10 ms", "p90 ms", "peak RSS MiB")
	ms := func(v float64) string { return fmt.Sprintf("%.2f", v) }
	mib := func(kib int64) string { return fmt.Sprintf("%.1f", float64(kib)/1024) }
	med := map[string]float64{}
	for _, c := range cmds {
		slices.Sort(c.times)
		med[c.name] = quantile(c.times, 0.5)
		rss := mib(c.rss)
		if c.rss <= floorRSS {
			rss = "<= " + rss // hidden under the spawn floor
		}
		fmt.Printf(row, c.name, ms(med[c.name]), ms(quantile(c.times, 0.1)), ms(quantile(c.times, 0.9)), rss)
	}
	fmt.Printf(row, "floor", ms(floor), "", "", mib(floorRSS))
	fmt.Println("(floor: /bin/true started the same way; ru_maxrss cannot go below it)")
	ratio := med["sbx"] / med["bwrap"]
	fmt.Printf("sbx/bwrap   %.2f (medians)\n", ratio)
	fmt.Printf("sbx/unshare %.2f (medians)\n", med["sbx"]/med["unshare"])
	verdict := "met"
	if ratio > 1.0 {
		verdict = "not met"
	}
	fmt.Printf("target sbx/bwrap <= 1.0: %s\n", verdict)
	if lim, ok := med["sbx-lim"]; ok {
		added, quarter := lim-med["sbx"], med["sd-run"]/4
		fmt.Printf("sbx-lim/bwrap %.2f (medians); target <= 1.5: %s\n", lim/med["bwrap"], metIf(lim/med["bwrap"] <= 1.5))
		fmt.Printf("limits add %.2f ms (sbx-lim - sbx); a quarter of a systemd-run scope is %.2f ms; target: %s\n", added, quarter, metIf(added <= quarter))
	}
	return nil
}

// spawnFloor times /bin/true started as the contenders are. Its
// ru_maxrss is this program's own RSS: exec(2) records the outgoing mm's
// peak in the new image's maxrss (exec_mmap in fs/exec.c), and Go starts
// children with CLONE_VM, so no contender can show less.
func spawnFloor(r *runner) (float64, int64, error) {
	var times []time.Duration
	var rss int64
	for range warmups {
		d, m, err := r.run([]string{"/bin/true"})
		if err != nil {
			return 0, 0, err
		}
		times = append(times, d)
		rss = max(rss, m)
	}
	slices.Sort(times)
	return quantile(times, 0.5), rss, nil
}

// runner starts commands with stdin and stdout on /dev/null and stderr
// in a file that is shown if they fail.
type runner struct {
	null, stderr *os.File
	env          []string
}

func newRunner() (*runner, error) {
	null, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	stderr, err := os.CreateTemp("", "sbx-bench-stderr-")
	if err != nil {
		null.Close()
		return nil, err
	}
	os.Remove(stderr.Name()) // the open descriptor is all we need
	return &runner{null: null, stderr: stderr, env: os.Environ()}, nil
}

func (r *runner) close() {
	r.null.Close()
	r.stderr.Close()
}

// run starts argv, waits for it with wait4(2) and returns its wall time
// and ru_maxrss (KiB), which covers the process and the descendants it
// waited for. A non-zero exit is an error that carries the stderr.
func (r *runner) run(argv []string) (time.Duration, int64, error) {
	if err := r.stderr.Truncate(0); err != nil {
		return 0, 0, err
	}
	if _, err := r.stderr.Seek(0, io.SeekStart); err != nil {
		return 0, 0, err
	}
	pidfd := -1
	attr := &syscall.ProcAttr{
		Env:   r.env,
		Files: []uintptr{r.null.Fd(), r.null.Fd(), r.stderr.Fd()},
		// Pdeathsig: a run does not outlive an interrupted bench.
		Sys: &syscall.SysProcAttr{PidFD: &pidfd, Pdeathsig: syscall.SIGKILL},
	}
	start := time.Now()
	pid, err := syscall.ForkExec(argv[0], argv, attr)
	if err != nil {
		return 0, 0, fmt.Errorf("start %s: %w", argv[0], err)
	}
	// Kill a hung run through its pidfd, which cannot name a recycled
	// pid; mu keeps the kill from racing the close below.
	var mu sync.Mutex
	timer := time.AfterFunc(runTimeout, func() {
		mu.Lock()
		defer mu.Unlock()
		if pidfd >= 0 {
			unix.PidfdSendSignal(pidfd, unix.SIGKILL, nil, 0)
		}
	})
	var ws unix.WaitStatus
	var ru unix.Rusage
	for {
		_, err = unix.Wait4(pid, &ws, 0, &ru)
		if err != unix.EINTR {
			break
		}
	}
	elapsed := time.Since(start)
	timer.Stop()
	mu.Lock()
	if pidfd >= 0 {
		unix.Close(pidfd)
		pidfd = -1
	}
	mu.Unlock()
	if err != nil {
		return 0, 0, fmt.Errorf("wait4 %s: %w", argv[0], err)
	}
	if ws.Exited() && ws.ExitStatus() == 0 {
		return elapsed, int64(ru.Maxrss), nil
	}
	status := fmt.Sprintf("exit status %d", ws.ExitStatus())
	if ws.Signaled() {
		status = "killed by " + unix.SignalName(ws.Signal())
		if elapsed >= runTimeout {
			status += fmt.Sprintf(" after %v", runTimeout)
		}
	}
	return 0, 0, fmt.Errorf("%s: %s; its stderr:\n%s", strings.Join(argv, " "), status, strings.TrimSuffix(r.stderrText(), "\n"))
}

func (r *runner) stderrText() string {
	if _, err := r.stderr.Seek(0, io.SeekStart); err != nil {
		return err.Error()
	}
	var b strings.Builder
	sc := bufio.NewScanner(io.LimitReader(r.stderr, 64<<10))
	for sc.Scan() {
		b.WriteString("  " + sc.Text() + "\n")
	}
	if b.Len() == 0 {
		return "  (empty)\n"
	}
	return b.String()
}

// quantile of sorted durations in milliseconds, interpolating linearly
// between the closest ranks.
func quantile(sorted []time.Duration, q float64) float64 {
	pos := q * float64(len(sorted)-1)
	i := int(pos)
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	if i+1 >= len(sorted) {
		return ms(sorted[len(sorted)-1])
	}
	frac := pos - float64(i)
	return ms(sorted[i])*(1-frac) + ms(sorted[i+1])*frac
}

func metIf(ok bool) string {
	if ok {
		return "met"
	}
	return "not met"
}
