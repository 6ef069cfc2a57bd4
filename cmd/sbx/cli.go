package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"golang.org/x/sys/unix"

	"sbx/cgroup"
	"sbx/policy"
	"sbx/sandbox"
)

// Exit codes of sbx itself; the payload's own pass through.
const (
	exitTimeout  = 124
	exitFailed   = 125
	exitNotExec  = 126
	exitNotFound = 127
)

const version = "0.1.0"

const usage = `sbx runs a command in a rootless sandbox.

Usage:
  sbx run [FLAGS] [--] COMMAND [ARG...]
  sbx profile list | show NAME | check FILE
  sbx doctor [--json]                     check this host: what works, what to fix
  sbx wrap list [--names] | install [--dir DIR] | remove [--dir DIR]
                                          commands that run sandboxed by name (wrap.toml)
  sbx shell-init bash|zsh|fish            shell functions for them: eval "$(sbx shell-init bash)"
  sbx completion bash|zsh|fish            print a completion script: source <(sbx completion bash)
  sbx ps [--json | --quiet]               your running sandboxes
  sbx stop [--time SECONDS] ID...         end one: SIGTERM, then SIGKILL
  sbx exec [--env K=V] [--chdir DIR] [--no-pty] ID [--] COMMAND [ARG...]
                                          run a command inside a running sandbox
  sbx version
  sbx help [VERB]

Examples:
  sbx run -- make                         build with the project read-only and no network
  sbx run --rw . -- make                  let the build write the current directory
  sbx run --net host --rw . -- npm ci     fetch dependencies too
  sbx run --root --rw ./rootfs -- chown -R 0:0 /work   act as root over your own ids
  sbx run --ro ~/data:/data --hide /data/secrets -- ./analyze /data
  sbx run --timeout 30s --json-status st.json -- ./untrusted
  sbx run --dry-run --json -- ls          print the plan, run nothing
  sbx run --profile build -- make         a build: the project writable, caches, secrets hidden

Exit status: the command's own; 128+N if it was killed by signal N;
124 on --timeout; 125 if sbx failed; 126 if COMMAND could not be
executed; 127 if it was not found.
`

// sbx runs the command line and returns the exit code. It is the one
// place where errors become messages and exit codes.
func sbx(args []string) int {
	if len(args) == 0 {
		return fail(errors.New("no command given (try: sbx help)"))
	}
	switch args[0] {
	case "run":
		return run(args[1:])
	case "profile":
		return profile(args[1:])
	case "doctor":
		return doctor(args[1:])
	case "completion":
		return completion(args[1:])
	case "wrap":
		return wrapCmd(args[1:])
	case "shell-init":
		return shellInit(args[1:])
	case "ps":
		return ps(args[1:])
	case "stop":
		return stop(args[1:])
	case "exec":
		return execCmd(args[1:])
	case "version", "--version":
		if wantsHelp(args[1:]) {
			fmt.Print("Usage: sbx version\n\nPrint sbx's version, the Go release it was built with and its commit.\n")
			return 0
		}
		if len(args) > 1 {
			return fail(fmt.Errorf("version: unexpected argument %q", args[1]))
		}
		fmt.Println(versionString())
		return 0
	case "help", "--help", "-h":
		switch {
		case len(args) > 2:
			return fail(fmt.Errorf("help: unexpected argument %q", args[2]))
		case len(args) == 1 || args[1] == "help" || wantsHelp(args[1:]):
			fmt.Print(usage)
			return 0
		}
		return sbx([]string{args[1], "--help"}) // an unknown one says so
	}
	return fail(fmt.Errorf("unknown command %q (try: sbx help)", args[0]))
}

// shortUsage answers --help for the verbs that take no flags.
var shortUsage = map[string]string{
	"profile": `Usage: sbx profile list | show NAME | check FILE

  list        every profile: name, source file, description
  show NAME   the resolved chain as TOML, with where each value came from
  check FILE  validate a profile file (exit 0, or 125 with the located error)
`,
	"completion": `Usage: sbx completion bash|zsh|fish

Print a completion script, e.g. source <(sbx completion bash).
`,
	"shell-init": `Usage: sbx shell-init bash|zsh|fish

Print shell functions for the commands wrapped in wrap.toml:
eval "$(sbx shell-init bash)" in your shell's rc file.
`,
}

// wantsHelp says whether args ask a flagless verb for its usage.
func wantsHelp(args []string) bool {
	return len(args) == 1 && (args[0] == "--help" || args[0] == "-h" || args[0] == "help")
}

// subHelp says whether args (VERB SUBVERB --help) ask a verb with
// subverbs for its usage; a bare "help" there could be a profile's name.
func subHelp(args []string) bool {
	return len(args) == 2 && (args[1] == "--help" || args[1] == "-h")
}

func versionString() string {
	s := "sbx " + version + " " + runtime.Version()
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, kv := range bi.Settings {
			if kv.Key == "vcs.revision" && len(kv.Value) >= 12 {
				s += " " + kv.Value[:12]
			}
		}
	}
	return s
}

// fail prints err (and its hint, if any) and returns 125.
func fail(err error) int {
	fmt.Fprintf(os.Stderr, "sbx: %s\n", oneLine(err.Error()))
	var h *sandbox.HintedError
	var se *sandbox.StageError
	switch {
	case errors.As(err, &h) && h.Hint != "":
		fmt.Fprintf(os.Stderr, "sbx: hint: %s\n", h.Hint)
	case errors.As(err, &se) && se.Hint != "":
		fmt.Fprintf(os.Stderr, "sbx: hint: %s\n", se.Hint)
	}
	return exitFailed
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(s, "\n", " ")), " ")
}

func warn(s string) { fmt.Fprintf(os.Stderr, "sbx: warning: %s\n", oneLine(s)) }

type runOpts struct {
	flags    policy.Flags
	profiles []string
	dryRun   bool
	json     bool
}

func runFlags() (*pflag.FlagSet, *runOpts) {
	o := &runOpts{}
	f := &o.flags
	fs := pflag.NewFlagSet("sbx run", pflag.ContinueOnError)
	fs.SetInterspersed(false)
	fs.SetOutput(io.Discard)
	fs.SortFlags = false
	fs.Var(&listValue{dst: &o.profiles}, "profile", "apply profile `NAME|PATH` (repeatable: later ones extend earlier ones)")
	fs.Var(&fsValue{kind: policy.FSRo, list: &f.FS}, "ro", "bind `PATH[:DEST]` read-only (repeatable, in order)")
	fs.Var(&fsValue{kind: policy.FSRw, list: &f.FS}, "rw", "bind `PATH[:DEST]` read-write")
	fs.Var(&fsValue{kind: policy.FSTmpfs, list: &f.FS}, "tmpfs", "an empty writable tmpfs at `DEST`")
	fs.Var(&fsValue{kind: policy.FSHide, list: &f.FS}, "hide", "mask `PATH` inside something visible")
	fs.Var(&onceValue{name: "chdir", dst: &f.Chdir, check: policy.ParseChdir}, "chdir", "working directory `DIR` inside (default: the caller's)")
	fs.Var(&onceValue{name: "hostname", dst: &f.Hostname, check: policy.ParseHostname}, "hostname", "host `NAME` inside")
	fs.Var(&onceValue{name: "argv0", dst: &f.Argv0, check: checkArgv0}, "argv0", "give COMMAND `VALUE` as argv[0] instead of its path (what wrapped commands get: their name)")
	fs.Var(&onceValue{name: "net", dst: &f.Net, check: policy.ParseNet}, "net", "`none` (loopback only, the default) or host")
	fs.BoolVar(&f.Root, "root", false, "run as uid 0 inside, with capabilities over the sandbox's own user namespace only")
	fs.Var(&listValue{dst: &f.Env, check: policy.ParseEnv}, "env", "set `K=V` (repeatable)")
	fs.Var(&listValue{dst: &f.Unsetenv}, "unsetenv", "remove variable `K` (repeatable)")
	fs.BoolVar(&f.Clearenv, "clearenv", false, "start from an empty environment")
	fs.Var(&fdValue{dst: &f.PreserveFDs}, "preserve-fd", "keep descriptor `N` open (repeatable)")
	fs.BoolVar(&f.NoPTY, "no-pty", false, "give COMMAND the caller's terminal as it is, not a pseudo-terminal of its own")
	fs.Var(&timeoutValue{dst: &f.Timeout}, "timeout", "kill the sandbox after `DURATION` (30s, 5m) and exit 124")
	fs.Var(&onceValue{name: "json-status", dst: &f.JSONStatus}, "json-status", "write the outcome as JSON to `FILE`")
	limit := func(name, usage string, dst *uint64, set *bool, parse func(string) (uint64, error)) {
		if set == nil {
			set = new(bool)
		}
		fs.Var(&uintValue{name: name, dst: dst, set: set, parse: parse}, name, usage)
	}
	limit("memory", "memory limit `SIZE` (512M, 2G; swap off unless --memory-swap)", &f.Memory, nil, policy.ParseMemory)
	limit("memory-swap", "swap `SIZE` allowed on top of --memory", &f.MemorySwap, &f.MemorySwapSet, policy.ParseMemorySwap)
	limit("cpus", "CPU limit, `N` CPUs (fractions allowed: 0.5, 1.5)", &f.CPUQuota, nil, policy.ParseCPUs)
	limit("pids", "at most `N` tasks in the sandbox (sbx's init included)", &f.Pids, nil, func(s string) (uint64, error) { return policy.ParseCount("pids", s) })
	limit("cpu-weight", "CPU weight `N`, 1 to 10000 (default 100)", &f.CPUWeight, nil, func(s string) (uint64, error) { return policy.ParseWeight("cpu-weight", s) })
	limit("io-weight", "IO weight `N`, 1 to 10000, where the io controller is delegated", &f.IOWeight, nil, func(s string) (uint64, error) { return policy.ParseWeight("io-weight", s) })
	fs.Var(&onceValue{name: "seccomp", dst: &f.Seccomp}, "seccomp", "system call filter: `default`, unconfined, or the PATH of an OCI/Docker JSON profile")
	fs.BoolVar(&f.NoLandlock, "no-landlock", false, "no Landlock layer (the mount view alone limits what COMMAND reaches)")
	fs.BoolVar(&f.LogDenied, "log-denied", false, "report every system call the filter refuses on stderr")
	fs.BoolVar(&f.Strict, "strict", false, "fail (exit 125) instead of warning when a hardening layer cannot be given")
	fs.BoolVar(&f.NoLimits, "no-limits", false, "drop the limits the profiles set (where the host cannot enforce them)")
	fs.BoolVar(&f.Cgroup, "cgroup", false, "run in a cgroup delegated by the systemd user manager even without a limit (accounting, guaranteed teardown)")
	fs.BoolVar(&o.dryRun, "dry-run", false, "print the resolved plan and exit without running anything")
	fs.BoolVar(&o.json, "json", false, "with --dry-run: print the plan as JSON")
	return fs, o
}

// checkArgv0 refuses an empty argv[0] (a program may take it for a
// missing one) and a NUL, which no argv can hold.
func checkArgv0(v string) (string, error) {
	if v == "" || strings.ContainsRune(v, 0) {
		return "", fmt.Errorf("--argv0 %q: want a non-empty string without NUL", v)
	}
	return v, nil
}

// flagError shortens pflag's "invalid argument" errors: sbx's own values
// name the flag and the value themselves; pflag's (booleans, numbers) get
// them in the same form, --root=banana.
func flagError(err error) error {
	var ive *pflag.InvalidValueError
	if !errors.As(err, &ive) || errors.Unwrap(ive) == nil {
		return err
	}
	cause := errors.Unwrap(ive)
	if fl := ive.GetFlag(); fl != nil && !strings.Contains(cause.Error(), "--"+fl.Name) {
		return fmt.Errorf("--%s=%s: %w", fl.Name, ive.GetValue(), cause)
	}
	return cause
}

func runUsage(fs *pflag.FlagSet) string {
	return "Usage: sbx run [FLAGS] [--] COMMAND [ARG...]\n\nFlags:\n" + fs.FlagUsages() +
		"\n" + usage[strings.Index(usage, "Examples:"):]
}

func run(args []string) int { return runSandbox(args, nil) }

// runSandbox is sbx run. If died is not nil, it is set to the signal
// that killed the payload, if one did (the exit code is then 128+N).
func runSandbox(args []string, died *int) int {
	begin := time.Now()
	go sandbox.WarmUp()
	fs, o := runFlags()
	// Until the sandbox runs, a failure is still reported to
	// --json-status, if that much of the command line was understood.
	fail := func(err error) int {
		code := fail(err)
		if o.flags.JSONStatus != "" {
			if f, ferr := openStatus(o.flags.JSONStatus); ferr == nil {
				writeStatus(f, nil, err, code, time.Since(begin), nil)
				f.Close()
			}
		}
		return code
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			fmt.Print(runUsage(fs))
			return 0
		}
		return fail(fmt.Errorf("run: %w", flagError(err)))
	}
	o.flags.Argv = fs.Args()
	for _, name := range policy.OffFlags {
		if fl := fs.Lookup(name); fl != nil && fl.Changed && fl.Value.String() == "false" {
			if o.flags.Off == nil {
				o.flags.Off = map[string]bool{}
			}
			o.flags.Off[name] = true
		}
	}
	if o.json && !o.dryRun {
		return fail(errors.New("run: --json goes with --dry-run (for the outcome, use --json-status FILE)"))
	}
	caller, err := sandbox.ProbeCaller()
	if err == nil {
		err = caller.CwdErr
	}
	if err != nil {
		return fail(fmt.Errorf("run: %w", err))
	}
	vars := sandbox.ProbeVars(caller)
	// A profile's errors name their file:line:col; they need no prefix.
	chain, err := policy.LoadChain(o.profiles, vars, sandbox.ProfileLoader(vars))
	if err != nil {
		return fail(err)
	}
	// The host is examined for what the profiles and flags together name.
	merged, origins, err := policy.ApplyProfiles(chain, vars, o.flags)
	if err != nil {
		return fail(err)
	}
	if merged.SeccompJSON, err = seccompFile(chain, merged, origins, nil, false); err != nil {
		return fail(err)
	}
	host, err := sandbox.ProbeHost(merged, caller)
	if err != nil {
		return fail(err)
	}
	plan, err := policy.ResolveApplied(chain, merged, origins, host)
	if err != nil {
		return fail(fmt.Errorf("run: %w", err))
	}
	if o.flags.NoLimits && !o.dryRun {
		warn("--no-limits: running without the limits of the profiles")
	}
	if o.dryRun {
		// A profile file's errors come now, as they would at a run.
		if err := sandbox.CheckSeccomp(plan.Security.Seccomp); err != nil {
			return fail(seccompError(chain, origins, err))
		}
		if o.json {
			b, err := plan.JSON()
			if err != nil {
				return fail(err)
			}
			os.Stdout.Write(append(b, '\n'))
			return 0
		}
		if err := plan.WriteText(os.Stdout); err != nil {
			return fail(err)
		}
		return 0
	}
	var status *os.File
	if plan.JSONStatus != "" {
		status, err = openStatus(plan.JSONStatus)
		if err != nil {
			return fail(fmt.Errorf("run: --json-status: %w", err))
		}
		defer status.Close()
	}
	for _, w := range plan.Warnings {
		warn(w)
	}
	out, err := sandbox.Run(plan, warn)
	code := exitCode(out, err, plan)
	if out != nil && out.Cgroup != nil && out.Cgroup.OOMKills > 0 {
		why := "the kernel's OOM killer (the host or a parent cgroup ran out of memory)"
		if out.Cgroup.LimitHit > 0 && out.Cgroup.MemoryMax != 0 {
			why = "memory limit " + policy.FormatSize(out.Cgroup.MemoryMax) + " reached"
		}
		if out.Signal == 9 {
			fmt.Fprintf(os.Stderr, "sbx: killed: %s\n", why)
		} else {
			fmt.Fprintf(os.Stderr, "sbx: %s: the kernel killed %d process(es) in the sandbox\n", why, out.Cgroup.OOMKills)
		}
	}
	if status != nil {
		writeStatus(status, out, err, code, time.Since(begin), plan)
	}
	if died != nil && err == nil && out.Signal != 0 && !out.TimedOut {
		*died = out.Signal
	}
	return code
}

// openStatus opens the --json-status file. A FIFO with no reader is an
// error (ENXIO), not a wait that would hang sbx before the sandbox runs.
func openStatus(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC|unix.O_NONBLOCK, 0o644)
	if errors.Is(err, unix.ENXIO) {
		return nil, fmt.Errorf("%s: a FIFO with no reader", path)
	}
	if err != nil {
		return nil, err
	}
	if err := unix.SetNonblock(int(f.Fd()), false); err != nil { // blocking writes again
		f.Close()
		return nil, err
	}
	return f, nil
}

// exitCode maps a run's (or sbx exec's, plan nil) outcome to sbx's exit
// code, printing what sbx has to say.
func exitCode(out *sandbox.Outcome, err error, plan *policy.Plan) int {
	var ee *sandbox.ExecError
	switch {
	case errors.As(err, &ee):
		fmt.Fprintf(os.Stderr, "sbx: exec: %s\n", oneLine(ee.Err))
		return ee.Code
	case err != nil:
		return fail(err)
	case out.TimedOut:
		fmt.Fprintf(os.Stderr, "sbx: timeout: killed the sandbox after %s\n", plan.Timeout)
		return exitTimeout
	}
	return out.ExitCode
}

// status is the --json-status object. Limits is null unless the sandbox
// had a cgroup: then it holds what was asked and what the kernel counted.
type status struct {
	ExitCode   int             `json:"exit_code"`
	Signal     int             `json:"signal"`
	SignalName string          `json:"signal_name"`
	CoreDumped bool            `json:"core_dumped"`
	TimedOut   bool            `json:"timed_out"`
	WallTimeMS float64         `json:"wall_time_ms"`
	Error      string          `json:"error"`
	Limits     json.RawMessage `json:"limits"`
}

// limitsReport is the "limits" member of --json-status.
type limitsReport struct {
	Asked     policy.Limits `json:"asked"`
	OOMKilled bool          `json:"oom_killed"`
	cgroup.Stats
}

func writeStatus(f *os.File, out *sandbox.Outcome, err error, code int, wall time.Duration, plan *policy.Plan) {
	s := status{ExitCode: code, WallTimeMS: float64(wall.Microseconds()) / 1000, Limits: json.RawMessage("null")}
	if out != nil {
		s.Signal, s.SignalName, s.CoreDumped, s.TimedOut = out.Signal, out.SignalName, out.Core, out.TimedOut
		if out.Cgroup != nil && plan != nil {
			r := limitsReport{Asked: plan.Limits, OOMKilled: out.Cgroup.OOMKills > 0 && out.Cgroup.LimitHit > 0, Stats: *out.Cgroup}
			if b, err := json.Marshal(r); err == nil {
				s.Limits = b
			}
		}
	}
	if err != nil {
		s.Error = oneLine(err.Error())
	}
	b, _ := json.Marshal(s)
	if _, werr := f.Write(append(b, '\n')); werr != nil {
		warn("--json-status: " + werr.Error())
	}
}
