// Command vm runs sbx's integration tests in a disposable VM where the
// things a container or this host cannot give are real: systemd as PID 1,
// a pure cgroup v2 hierarchy with the cpu, memory and pids controllers,
// and a lingering unprivileged user with subordinate ids whose
// user@UID.service delegates those controllers to its login sessions.
//
//	go build -o bin/sbx-vm ./tests/vm && bin/sbx-vm   # make test-vm
//	bin/sbx-vm -cmd 'systemctl --user status'          # make vm-shell CMD=...
//	bin/sbx-vm -root -cmd 'journalctl -b'              # as root in the VM
//
// The pieces, and where they come from:
//
//	cache (built once, as root; ${XDG_CACHE_HOME:-~/.cache}/sbx-vm/KEY, KEY a hash of the recipe):
//	  vmlinux         Debian's kernel (apt-get download), the ELF out of its bzImage
//	  initramfs.cpio  static busybox, guest/init, the modules the kernel lacks built in
//	  root.img        ext4: debootstrap --variant=minbase + systemd, dbus, uidmap...,
//	                  provisioned by guest/provision.sh (users, linger, a trimmed boot)
//	every run (a second cpio archive appended to the initramfs, copied into the root):
//	  /opt/sbx-vm/run        guest/run, started by sbx-vm.service once booted
//	  /opt/sbx-vm/steps      "USER SCRIPT" lines; step-N.sh the scripts
//	  /opt/sbx-vm/bin/       sbx and tests.test, built from this tree (static)
//
//	host: bin/sbx-vm ──qemu (TCG, -nic none)──► guest: init ─► systemd ─► sbx-vm.service ─► run
//	      stdout ◄── sbx.out ─┐
//	      stderr ◄── sbx.err ─┼── virtio-serial ports, through files that bin/sbx-vm follows
//	      events ◄── sbx.ctl ─┘   ("ready", "step N STATUS", "exit STATUS")
//
// The root image is attached read-only under a tmpfs overlay, so every
// boot starts from the same state and nothing is written back. The exit
// status is the job's (the tests': 0 or 1); 2 means the VM itself failed
// (no boot, a timeout), and then the console log is printed. QEMU is
// killed by pid on a timeout or a signal, and dies with this program.
//
// Why a Go program and not a shell script: the run is a small state
// machine over concurrent streams (three ports followed while QEMU runs,
// a boot deadline, an overall deadline, signals) whose failure paths must
// each end QEMU and report; in Go those are a select and a few timers, and
// the pure parts (QEMU's argv, the cpio writer, the kernel extraction)
// have table tests. The guest side, which must run under busybox and
// systemd, is shell (guest/).
//
// Environment inside, for every step: SBX_TEST_VM=1 (tests may rely on
// systemd, delegated controllers and a login session), SBX_TEST_MUST_RUN=1,
// SBX_BIN=/opt/sbx-vm/bin/sbx, and /opt/sbx-vm/bin first on PATH.
package main

import (
	"embed"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"

	"sbx/tests/testenv"
)

//go:embed guest
var guest embed.FS

func mustGuestFile(name string) []byte {
	b, err := guest.ReadFile("guest/" + name)
	if err != nil {
		panic(err) // embedded at build time: cannot happen
	}
	return b
}

// hostPackages are the Debian packages this program needs on the host.
const hostPackages = "qemu-system-x86 debootstrap busybox-static xz-utils zstd e2fsprogs"

const (
	testUser   = "sbxtest"  // lingering, with subordinate ids (guest/provision.sh)
	noSubUser  = "sbxnosub" // without subordinate ids
	noSubTest  = "TestFallbackNoRanges"
	guestDir   = "/opt/sbx-vm"
	exitVMFail = 2
)

// vmSkip lists the tests the VM does not run. TestPurity checks the source
// tree with a Go toolchain, neither of which is in the VM: it is about the
// code, not the host, and runs in the host tier; so is TestPrograms, which
// runs real programs (python3, gdb, strace, go build) under the default
// filter. TestFallbackNoRanges runs in a step of its own, as the user
// without subordinate ids.
const vmSkip = "^(TestPurity|TestPrograms|" + noSubTest + ")$"

type options struct {
	cmd, runPattern     string
	root, verbose, keep bool
	timeout, bootWait   time.Duration
	mem, smp            int
	cacheRoot, mirror   string
	sbx, tests, goTool  string
}

func main() {
	var o options
	flag.StringVar(&o.cmd, "cmd", "", "run this shell command in the VM instead of the tests (as "+testUser+"; see -root)")
	flag.BoolVar(&o.root, "root", false, "with -cmd: run the command as root")
	flag.StringVar(&o.runPattern, "run", "", "run only the tests matching this -test.run pattern")
	flag.DurationVar(&o.timeout, "timeout", 15*time.Minute, "kill the VM after this long, whatever it is doing")
	flag.DurationVar(&o.bootWait, "boot-timeout", 4*time.Minute, "kill the VM if it has not booted after this long")
	flag.IntVar(&o.mem, "mem", 1024, "guest memory in MiB")
	flag.IntVar(&o.smp, "smp", 2, "guest CPUs")
	flag.StringVar(&o.cacheRoot, "cache", defaultCacheRoot(), "where the kernel, initramfs and root image are cached")
	flag.StringVar(&o.mirror, "mirror", "http://deb.debian.org/debian", "Debian mirror for debootstrap")
	flag.StringVar(&o.sbx, "sbx", "", "sbx binary to test (default: build ./cmd/sbx)")
	flag.StringVar(&o.tests, "tests", "", "integration test binary (default: go test -c ./tests/)")
	flag.StringVar(&o.goTool, "go", "go", "the go command, to build sbx and the tests")
	flag.BoolVar(&o.verbose, "v", false, "show the VM's console as it boots, without quiet")
	flag.BoolVar(&o.keep, "keep", false, "keep the work directory (binaries, console log)")
	flag.Parse()
	if _, err := regexp.Compile(o.runPattern); err != nil || flag.NArg() > 0 || (o.root && o.cmd == "") {
		flag.Usage()
		os.Exit(exitVMFail)
	}
	os.Exit(runVM(o))
}

func defaultCacheRoot() string {
	if d := os.Getenv("XDG_CACHE_HOME"); d != "" {
		return filepath.Join(d, "sbx-vm")
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return filepath.Join(os.TempDir(), "sbx-vm-cache")
	}
	return filepath.Join(home, ".cache", "sbx-vm")
}

func logf(format string, args ...any) { fmt.Fprintf(os.Stderr, "vm: "+format+"\n", args...) }

func secs(d time.Duration) string { return fmt.Sprintf("%.1fs", d.Seconds()) }

// runVM is the whole run; it returns the exit status.
func runVM(o options) int {
	start := time.Now()
	var timings []string
	phase := func(name string, since time.Time) time.Time {
		now := time.Now()
		timings = append(timings, name+" "+secs(now.Sub(since)))
		return now
	}
	fail := func(err error) int {
		logf("%v", err)
		return exitVMFail
	}
	if _, err := exec.LookPath(qemuBinary); err != nil {
		return fail(fmt.Errorf("%s is not on PATH (apt-get install %s)", qemuBinary, hostPackages))
	}

	c, built, err := ensureCache(o.cacheRoot, o.mirror, logf)
	if err != nil {
		return fail(fmt.Errorf("VM cache: %w", err))
	}
	t := phase("cache", start)
	if built {
		logf("built the cache %s in %s: %s", c.dir, secs(time.Since(start)), c.info)
		timings[len(timings)-1] += " (built)"
	} else {
		logf("cache %s: %s", c.dir, c.info)
		timings[len(timings)-1] += " (hit)"
	}

	work, err := os.MkdirTemp("", "sbx-vm-")
	if err != nil {
		return fail(err)
	}
	if o.keep {
		logf("work directory %s kept", work)
	} else {
		defer os.RemoveAll(work)
	}
	bins, err := binaries(o, work)
	if err != nil {
		return fail(err)
	}
	t = phase("binaries", t)

	initrd := filepath.Join(work, "initrd")
	if err := writeInitrd(initrd, c.path(fileInitramfs), jobFiles(o, bins)); err != nil {
		return fail(fmt.Errorf("initrd: %w", err))
	}
	cfg := vmConfig{
		kernel: c.path(fileKernel), initrd: initrd, image: c.path(fileImage),
		console: filepath.Join(work, "console.log"),
		ports: map[string]string{
			portCtl: filepath.Join(work, "ctl"), portOut: filepath.Join(work, "out"), portErr: filepath.Join(work, "err"),
		},
		mem: o.mem, smp: o.smp, quiet: !o.verbose,
	}
	code := boot(o, cfg, t, phase)
	timings = append(timings, "total "+secs(time.Since(start)))
	logf("timings: %s", strings.Join(timings, ", "))
	return code
}

// binaries returns the sbx and test binaries to ship, building them into
// work unless given.
func binaries(o options, work string) (map[string]string, error) {
	bins := map[string]string{"sbx": o.sbx, "tests.test": o.tests}
	root, err := testenv.ModuleRoot()
	if err != nil && (o.sbx == "" || o.tests == "") {
		return nil, fmt.Errorf("%w: run from the sbx tree, or give -sbx and -tests", err)
	}
	// The C helper of the hardening tests, static: the guest has no gcc.
	if err := testenv.BuildCHelper(filepath.Join(work, testenv.CHelperName)); err != nil {
		return nil, err
	}
	bins[testenv.CHelperName] = filepath.Join(work, testenv.CHelperName)
	if bins["sbx"] == "" {
		// Static: the guest's libc is not the host's.
		if err := testenv.BuildSbx(root, o.goTool, filepath.Join(work, "sbx")); err != nil {
			return nil, err
		}
		bins["sbx"] = filepath.Join(work, "sbx")
	}
	builds := map[string][]string{
		"tests.test": {"test", "-c", "-o", filepath.Join(work, "tests.test"), "./tests/"},
	}
	for _, name := range []string{"tests.test"} {
		if bins[name] != "" {
			continue
		}
		cmd := exec.Command(o.goTool, builds[name]...)
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0") // the guest's libc is not the host's
		if out, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("%s %s: %w\n%s", o.goTool, strings.Join(builds[name], " "), err, out)
		}
		bins[name] = filepath.Join(work, name)
	}
	return bins, nil
}

// step is one line of /opt/sbx-vm/steps: a script and who runs it.
type step struct{ user, script string }

// jobSteps are the steps of this run: the tests (as the user with
// subordinate ids, then TestFallbackNoRanges as the one without), or -cmd.
func jobSteps(o options) []step {
	env := "#!/bin/sh\nexport SBX_TEST_VM=1 SBX_TEST_MUST_RUN=1 SBX_BIN=" + guestDir + "/bin/sbx PATH=" + guestDir + "/bin:$PATH\n"
	if o.cmd != "" {
		user := testUser
		if o.root {
			user = "root"
		}
		return []step{{user, env + o.cmd + "\n"}}
	}
	tests := func(args ...string) string {
		return fmt.Sprintf("echo \"=== vm: tests.test %s as $(id -un)\"\ncd \"$(mktemp -d)\" && exec %s/bin/tests.test -test.v %s\n",
			strings.Join(args, " "), guestDir, strings.Join(args, " "))
	}
	first := []string{"-test.skip=" + shQuote(vmSkip)}
	if o.runPattern != "" {
		first = append(first, "-test.run="+shQuote(o.runPattern))
	}
	steps := []step{{testUser, env + string(mustGuestFile("facts.sh")) + tests(first...)}}
	if o.runPattern == "" || regexp.MustCompile(o.runPattern).MatchString(noSubTest) {
		steps = append(steps, step{noSubUser, env + tests("-test.run="+shQuote("^"+noSubTest+"$"))})
	}
	return steps
}

// shQuote quotes s for sh(1).
func shQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// jobFiles are the members of this run's cpio archive, under sbx-vm/
// (the initramfs copies that to /opt/sbx-vm).
func jobFiles(o options, bins map[string]string) func() ([]cpioEntry, error) {
	return func() ([]cpioEntry, error) {
		files := []cpioEntry{{name: "sbx-vm/run", mode: 0o755, data: mustGuestFile("run")}}
		var steps strings.Builder
		for i, s := range jobSteps(o) {
			name := fmt.Sprintf("sbx-vm/step-%d.sh", i+1)
			files = append(files, cpioEntry{name: name, mode: 0o755, data: []byte(s.script)})
			fmt.Fprintf(&steps, "%s %s/%s\n", s.user, guestDir, strings.TrimPrefix(name, "sbx-vm/"))
		}
		files = append(files, cpioEntry{name: "sbx-vm/steps", mode: 0o644, data: []byte(steps.String())})
		for _, name := range []string{"sbx", "tests.test", testenv.CHelperName} {
			b, err := os.ReadFile(bins[name])
			if err != nil {
				return nil, err
			}
			files = append(files, cpioEntry{name: "sbx-vm/bin/" + name, mode: 0o755, data: b})
		}
		var names []string
		for _, f := range files {
			names = append(names, f.name)
		}
		return append(cpioDirs(names...), files...), nil
	}
}

// writeInitrd writes the cached initramfs followed by this run's archive:
// the kernel unpacks concatenated archives in order.
func writeInitrd(out, cached string, job func() ([]cpioEntry, error)) error {
	entries, err := job()
	if err != nil {
		return err
	}
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	in, err := os.Open(cached)
	if err != nil {
		f.Close()
		return err
	}
	defer in.Close()
	if _, err := io.Copy(f, in); err != nil {
		f.Close()
		return err
	}
	if err := writeCPIO(f, entries); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// boot runs QEMU until the job ends, a deadline passes or a signal comes;
// it returns the exit status.
func boot(o options, cfg vmConfig, t time.Time, phase func(string, time.Time) time.Time) int {
	files := []string{cfg.console}
	for _, p := range cfg.ports {
		files = append(files, p)
	}
	for _, p := range files { // created first, so that they can be followed from the start
		if err := os.WriteFile(p, nil, 0o600); err != nil {
			logf("%v", err)
			return exitVMFail
		}
	}
	events := make(chan event, 64)
	ctl := &lineWriter{fn: func(line string) {
		ev, ok := parseEvent(line)
		if ok {
			select {
			case events <- ev:
			default: // more than a job sends: never block the follower
				logf("dropped an event on %s: %q", portCtl, line)
			}
		} else {
			logf("unexpected line on %s: %q", portCtl, line)
		}
	}}
	var followers, streams []*follower
	tally := &testTally{}
	stdout := io.MultiWriter(os.Stdout, &lineWriter{fn: tally.line})
	for path, w := range map[string]io.Writer{cfg.ports[portOut]: stdout, cfg.ports[portErr]: os.Stderr, cfg.ports[portCtl]: ctl} {
		fl, err := follow(path, w)
		if err != nil {
			logf("%v", err)
			return exitVMFail
		}
		followers = append(followers, fl)
		if path != cfg.ports[portCtl] {
			streams = append(streams, fl)
		}
	}
	if o.verbose {
		fl, err := follow(cfg.console, &lineWriter{fn: func(l string) { fmt.Fprintf(os.Stderr, "console: %s\n", strings.TrimRight(l, "\r")) }})
		if err == nil {
			followers = append(followers, fl)
		}
	}
	finish := func() {
		for _, fl := range followers {
			fl.finish()
		}
	}

	var qemuOut strings.Builder
	cmd := exec.Command(qemuBinary, qemuArgs(cfg)...)
	cmd.Stdout, cmd.Stderr = &qemuOut, &qemuOut
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sigs)
	if err := cmd.Start(); err != nil {
		finish()
		logf("start %s: %v", qemuBinary, err)
		return exitVMFail
	}
	t = phase("initrd", t) // from here on, t is QEMU's start
	pid := cmd.Process.Pid
	logf("booting: pid %d, %d MiB, %d CPUs (TCG)", pid, cfg.mem, cfg.smp)
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()

	bootTimer := time.NewTimer(o.bootWait)
	defer bootTimer.Stop()
	deadline := time.NewTimer(o.timeout)
	defer deadline.Stop()
	kill := func(why string) string {
		logf("%s: killing QEMU (pid %d)", why, pid)
		syscall.Kill(pid, syscall.SIGKILL)
		return why
	}
	var (
		ready    bool
		exitSeen bool
		status   int
		killed   string
		qemuErr  error
	)
	handle := func(ev event) {
		if ev.kind != "ready" {
			for _, fl := range streams { // print the step's output before its status
				fl.catchUp()
			}
		}
		switch ev.kind {
		case "ready":
			ready = true
			bootTimer.Stop()
			logf("booted in %s (%s)", secs(time.Since(t)), ev.detail)
			t = phase("boot", t)
		case "step":
			logf("step %s exited %d", ev.detail, ev.status)
		case "exit":
			exitSeen, status = true, ev.status
			t = phase("job", t)
		}
	}
wait:
	for {
		select {
		case ev := <-events:
			handle(ev)
		case qemuErr = <-exited:
			break wait
		case <-bootTimer.C:
			if !ready && killed == "" {
				killed = kill(fmt.Sprintf("no boot after %v", o.bootWait))
			}
		case <-deadline.C:
			if killed == "" {
				killed = kill(fmt.Sprintf("still running after %v (-timeout)", o.timeout))
			}
		case s := <-sigs:
			if killed == "" {
				killed = kill(fmt.Sprintf("got %v", s))
			}
		}
	}
	finish()
	for len(events) > 0 {
		handle(<-events)
	}
	if exitSeen {
		phase("power-off", t)
	}
	if exitSeen && killed == "" {
		if o.cmd == "" {
			// The closing line of the whole run, as go test's own are per step.
			fmt.Printf("vm: %d passed, %d failed, %d skipped\n", tally.passed, tally.failed, tally.skipped)
		}
		if status != 0 {
			logf("the job failed: exit status %d", status)
		}
		return status
	}
	console := consoleTail(cfg.console, 300)
	switch {
	case killed != "" || exitSeen:
	case qemuErr != nil:
		logf("QEMU failed: %v", qemuErr)
	case ready:
		logf("the VM powered off before the job reported its status")
	case console == "(empty)":
		logf("the VM powered off without booting, before the kernel's console was up (-v shows the boot)")
	default:
		logf("the VM powered off without booting")
	}
	logf("console log (ttyS0):\n%s", console)
	if s := strings.TrimSpace(qemuOut.String()); s != "" {
		logf("QEMU said:\n%s", s)
	}
	return exitVMFail
}

// testTally counts the top-level test results in go test -v output.
type testTally struct{ passed, failed, skipped int }

func (t *testTally) line(l string) {
	switch {
	case strings.HasPrefix(l, "--- PASS: "):
		t.passed++
	case strings.HasPrefix(l, "--- FAIL: "):
		t.failed++
	case strings.HasPrefix(l, "--- SKIP: "):
		t.skipped++
	}
}
