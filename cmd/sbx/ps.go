package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"time"

	"github.com/spf13/pflag"

	"sbx/policy"
	"sbx/sandbox"
)

// stateDir is where this user's sandboxes are recorded.
func stateDir() string { return policy.StateDir(sandbox.StateRoot()) }

func newFlagSet(name string) *pflag.FlagSet {
	fs := pflag.NewFlagSet(name, pflag.ContinueOnError)
	fs.SetInterspersed(false)
	fs.SetOutput(io.Discard)
	return fs
}

// parse parses args; help prints usage and ends the verb with 0.
func parse(fs *pflag.FlagSet, args []string, usage string) (done bool, code int) {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			fmt.Print(usage)
			return true, 0
		}
		return true, fail(fmt.Errorf("%s: %w", fs.Name(), flagError(err)))
	}
	return false, 0
}

const psUsage = `Usage: sbx ps [--json | --quiet]

Lists your running sandboxes (of this login session's $XDG_RUNTIME_DIR):
id, sbx run's pid, age, profiles, limits, what their cgroup says they
use now, and the command.
`

func ps(args []string) int {
	fs := newFlagSet("ps")
	asJSON := fs.Bool("json", false, "one JSON array")
	quiet := fs.BoolP("quiet", "q", false, "the ids only, one a line")
	if done, code := parse(fs, args, psUsage); done {
		return code
	}
	if fs.NArg() != 0 {
		return fail(fmt.Errorf("ps: unexpected argument %q", fs.Arg(0)))
	}
	states, err := sandbox.States(stateDir())
	if err != nil {
		return fail(fmt.Errorf("ps: %w", err))
	}
	slices.SortFunc(states, func(a, b policy.State) int { return a.Started.Compare(b.Started) })
	if *quiet {
		for _, st := range states {
			fmt.Println(st.ID)
		}
		return 0
	}
	rows := make([]policy.Running, 0, len(states))
	for _, st := range states {
		rows = append(rows, policy.Running{State: st, Usage: sandbox.Usage(st)})
	}
	if *asJSON {
		b, err := json.MarshalIndent(rows, "", "  ")
		if err != nil {
			return fail(err)
		}
		os.Stdout.Write(append(b, '\n'))
		return 0
	}
	if err := policy.WritePS(os.Stdout, rows, time.Now()); err != nil {
		return fail(err)
	}
	return 0
}

const stopUsage = `Usage: sbx stop [--time SECONDS] ID...

Ends running sandboxes: SIGTERM to the payload, and SIGKILL to all of
the sandbox if it is still there after --time seconds (default 10).
ID may be any unique prefix of an id sbx ps shows.
`

func stop(args []string) int {
	fs := newFlagSet("stop")
	grace := fs.Uint("time", 10, "seconds to wait after SIGTERM before SIGKILL")
	if done, code := parse(fs, args, stopUsage); done {
		return code
	}
	if fs.NArg() == 0 {
		return fail(errors.New("stop: no sandbox id given (sbx ps lists them)"))
	}
	dir := stateDir()
	// An id is looked up among the sandboxes sbx ps lists (proven), so
	// that a prefix it shows as one is one; Stop proves it again.
	states, err := sandbox.States(dir)
	if err != nil {
		return fail(fmt.Errorf("stop: %w", err))
	}
	code := 0
	for _, id := range fs.Args() {
		st, err := policy.FindState(states, id)
		if err == nil {
			err = sandbox.Stop(dir, st, time.Duration(*grace)*time.Second)
		}
		if err != nil {
			code = fail(fmt.Errorf("stop: %w", err))
		}
	}
	return code
}

const execUsage = `Usage: sbx exec [--env K=V]... [--chdir DIR] [--no-pty] ID [--] COMMAND [ARG...]

Runs COMMAND inside the running sandbox ID: its namespaces, its view,
its limits, its seccomp filter and Landlock rules, as its payload's
user, with the payload's environment (plus --env). When stdin is a
terminal, COMMAND gets a pseudo-terminal of the sandbox's, relayed as
sbx run does (--no-pty: this terminal's descriptors as they are). The
exit status is COMMAND's, as for sbx run; the sandbox ending first is 137.
`

func execCmd(args []string) int {
	fs := newFlagSet("exec")
	var env []string
	var chdir string
	fs.Var(&listValue{dst: &env, check: policy.ParseEnv}, "env", "set `K=V` (repeatable)")
	fs.StringVar(&chdir, "chdir", "", "working directory `DIR` inside (default: the payload's)")
	noPTY := fs.Bool("no-pty", false, "give COMMAND this terminal as it is, not a pseudo-terminal of the sandbox's")
	if done, code := parse(fs, args, execUsage); done {
		return code
	}
	rest := fs.Args()
	if len(rest) < 2 || rest[1] == "--" && len(rest) < 3 {
		return fail(errors.New("exec: want an ID and a COMMAND (sbx exec ID -- COMMAND)"))
	}
	id, argv := rest[0], rest[1:]
	if argv[0] == "--" {
		argv = argv[1:]
	}
	if chdir != "" {
		if _, err := policy.ParseChdir(chdir); err != nil {
			return fail(fmt.Errorf("exec: %w", err))
		}
	}
	dir := stateDir()
	// Looked up among the proven, as for stop; Exec proves it again.
	states, err := sandbox.States(dir)
	if err != nil {
		return fail(fmt.Errorf("exec: %w", err))
	}
	st, err := policy.FindState(states, id)
	if err != nil {
		return fail(fmt.Errorf("exec: %w", err))
	}
	out, err := sandbox.Exec(dir, st, argv, env, chdir, *noPTY)
	var ee *sandbox.ExecError
	if err != nil && !errors.As(err, &ee) {
		err = fmt.Errorf("exec: %w", err)
	}
	return exitCode(out, err, nil)
}
