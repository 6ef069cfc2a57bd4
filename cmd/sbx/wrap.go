package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/spf13/pflag"

	"sbx/policy"
	"sbx/sandbox"
)

// Wrapping commands: $XDG_CONFIG_HOME/sbx/wrap.toml names commands that
// run in a sandbox when called by name, through shell functions
// (sbx shell-init) or shims, symlinks to sbx (sbx wrap install), that
// main dispatches on argv[0]. Either way they end in wrapExec, which
// finds the real program on PATH, never sbx again.

const wrapUsage = `Usage:
  sbx wrap list [--names]           what is wrapped, how, and the real program
  sbx wrap install [--dir DIR]      symlink each wrapped name to sbx in DIR (default ~/.local/bin)
  sbx wrap remove [--dir DIR]       remove sbx's symlinks from DIR, nothing else
  sbx wrap exec NAME [--] [ARG...]  run NAME as wrapped (what shims and shell functions do)
  sbx shell-init bash|zsh|fish      print shell functions: eval "$(sbx shell-init bash)"

The wrap file is $XDG_CONFIG_HOME/sbx/wrap.toml (see README.md, "Wrapping commands").
`

// loadWrap reads the wrap file; a missing file wraps nothing.
func loadWrap() (*policy.Wrap, error) {
	caller, err := sandbox.ProbeCaller()
	if err != nil {
		return nil, fmt.Errorf("wrap: %w", err)
	}
	vars := sandbox.ProbeVars(caller)
	dir, ok := vars["XDG_CONFIG_HOME"]
	if !ok {
		return nil, errors.New("wrap: neither XDG_CONFIG_HOME nor HOME is an absolute path")
	}
	path := filepath.Join(dir, "sbx", "wrap.toml")
	b, err := sandbox.ReadConfig(path)
	if errors.Is(err, fs.ErrNotExist) {
		return &policy.Wrap{Source: path}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("wrap: %w", err)
	}
	return policy.DecodeWrap(path, b, checkRunFlags)
}

// checkRunFlags accepts flags that `sbx run` parses, with no command.
func checkRunFlags(flags []string) error {
	fs, o := runFlags()
	if err := fs.Parse(flags); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return errors.New("--help is not a run flag here")
		}
		return flagError(err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%q is not a flag (the command is the wrapped name)", fs.Arg(0))
	}
	// Here a relative path would be the working directory's, which a
	// repository the command runs in could fill: the profile key
	// takes paths relative to wrap.toml.
	for _, p := range o.profiles {
		if policy.IsProfilePath(p) && !filepath.IsAbs(p) {
			return fmt.Errorf("--profile %s: a relative path in flags would be looked up where the command runs; use the profile key (relative to wrap.toml) or an absolute path", p)
		}
	}
	if o.flags.Argv0 != "" {
		return errors.New("--argv0: sbx gives a wrapped command its own name (or its path when a shim comes first on PATH)")
	}
	if s := o.flags.Seccomp; policy.SeccompPath(s) && !filepath.IsAbs(s) {
		return fmt.Errorf("--seccomp %s: a relative path in flags would be read where the command runs; give an absolute path", s)
	}
	return nil
}

// shim runs sbx called by another name: a shim of a wrapped command.
// ok is false when name is not wrapped (sbx then runs as itself). A
// wrap file that cannot be read is an error, never sbx's own verbs run
// with the arguments meant for the wrapped command.
func shim(name string, args []string) int {
	w, err := loadWrap()
	if err != nil {
		return fail(err)
	}
	e, ok := w.Lookup(name)
	if !ok {
		return fail(fmt.Errorf("%s: not wrapped in %s (a stale shim? sbx wrap remove takes it away; sbx answers as itself only under a name that starts with sbx)", name, w.Source))
	}
	return wrapExec(e, args)
}

// shellInit runs `sbx shell-init bash|zsh|fish`.
func shellInit(args []string) int {
	if wantsHelp(args) {
		fmt.Print(shortUsage["shell-init"])
		return 0
	}
	if len(args) != 1 || !slices.Contains(compShells, args[0]) {
		return fail(errors.New("shell-init: want bash, zsh or fish"))
	}
	w, err := loadWrap()
	if err != nil {
		return fail(err)
	}
	self, err := selfPath()
	if err != nil {
		return fail(fmt.Errorf("shell-init: %w", err))
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# sbx shell-init %s: the commands wrapped in %s\n", args[0], w.Source)
	for _, n := range w.Names() {
		// Names are letters, digits and . _ + - (policy.DecodeWrap); the
		// function keyword keeps an alias of the same name from expanding.
		if args[0] == "fish" {
			fmt.Fprintf(&b, "function %s; command %s wrap exec %s -- $argv; end\n", n, fishQuote(self), n)
		} else {
			fmt.Fprintf(&b, "function %s { command %s wrap exec %s -- \"$@\"; }\n", n, shQuote(self), n)
		}
	}
	os.Stdout.WriteString(b.String())
	return 0
}

// wrapCmd runs `sbx wrap list|install|remove|exec`.
func wrapCmd(args []string) int {
	if len(args) == 0 {
		return fail(errors.New("wrap: want list, install, remove or exec (try: sbx wrap --help)"))
	}
	if wantsHelp(args[:1]) || subHelp(args) {
		fmt.Print(wrapUsage)
		return 0
	}
	if args[0] == "exec" {
		if len(args) < 2 {
			return fail(errors.New("wrap exec: want NAME [--] [ARG...]"))
		}
		rest := args[2:]
		if len(rest) > 0 && rest[0] == "--" {
			rest = rest[1:]
		}
		w, err := loadWrap()
		if err != nil {
			return fail(err)
		}
		e, ok := w.Lookup(args[1])
		if !ok {
			return fail(fmt.Errorf("wrap exec: %q is not wrapped in %s", args[1], w.Source))
		}
		return wrapExec(e, rest)
	}
	fs := pflag.NewFlagSet("sbx wrap", pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	names := fs.Bool("names", false, "list: print the wrapped names only, one a line")
	dir := fs.String("dir", "", "install, remove: the shim directory (default ~/.local/bin)")
	if err := fs.Parse(args[1:]); err != nil {
		return fail(fmt.Errorf("wrap %s: %w", args[0], flagError(err)))
	}
	if fs.NArg() > 0 {
		return fail(fmt.Errorf("wrap %s: unexpected argument %q", args[0], fs.Arg(0)))
	}
	if (*names && args[0] != "list") || (*dir != "" && args[0] == "list") {
		return fail(fmt.Errorf("wrap %s: --names goes with list, --dir with install and remove", args[0]))
	}
	switch args[0] {
	case "list":
		return wrapList(*names)
	case "install", "remove":
		d, err := shimDir(*dir)
		if err != nil {
			return fail(fmt.Errorf("wrap %s: %w", args[0], err))
		}
		if args[0] == "install" {
			return wrapInstall(d)
		}
		return wrapRemove(d)
	}
	return fail(fmt.Errorf("wrap %q: want list, install, remove or exec", args[0]))
}

// wrapExec runs e's real program in its sandbox: as `sbx run` would,
// with the caller's stdin, stdout, stderr and working directory.
func wrapExec(e policy.WrapEntry, args []string) int {
	self, err := selfPath()
	if err != nil {
		return fail(fmt.Errorf("wrap exec %s: %w", e.Name, err))
	}
	prog, shadowed, err := realProgram(e.Name, os.Getenv("PATH"), self)
	if err != nil {
		fmt.Fprintf(os.Stderr, "sbx: wrap exec %s: %v\n", e.Name, err)
		return exitNotFound
	}
	// The command's death is sbx's: a shell ends a script whose child
	// died by SIGINT, not one whose child exited 130.
	var died int
	code := runSandbox(e.RunArgs(prog, !shadowed, args), &died)
	if died != 0 {
		sandbox.DieBy(died)
	}
	return code
}

// selfPath is this executable with its symlinks resolved.
func selfPath() (string, error) {
	exe, err := os.Executable()
	if err != nil {
		return "", err
	}
	return filepath.EvalSymlinks(exe)
}

// realProgram looks name up on path like a shell would, passing over
// everything that would run sbx again: a file that is sbx (os.SameFile)
// and a symlink to an sbx (a shim, stale ones included). Relative
// directories of PATH are skipped (see exec.ErrDot).
//
// shadowed says whether a shim or sbx came first: then the program must
// not be called by its name, which a program may look up on PATH to find
// itself (Python's sys.executable), and find the shim if the sandbox
// shows it.
func realProgram(name, path, self string) (prog string, shadowed bool, err error) {
	for _, d := range filepath.SplitList(path) {
		if !filepath.IsAbs(d) {
			continue
		}
		p := filepath.Join(d, name)
		if isShim(p, self) {
			shadowed = true
			continue
		}
		if st, err := os.Stat(p); err != nil || st.IsDir() || isSelf(p, self) {
			shadowed = shadowed || err == nil && !st.IsDir()
			continue
		}
		if _, err := exec.LookPath(p); err == nil {
			return p, shadowed, nil
		}
	}
	return "", false, fmt.Errorf("not found on PATH (sbx's own shims passed over)")
}

func isSelf(p, self string) bool {
	a, err := os.Stat(p)
	if err != nil {
		return false
	}
	b, err := os.Stat(self)
	return err == nil && os.SameFile(a, b)
}

// isShim tells whether p is a shim: a symlink to this sbx, or a
// dangling symlink to a file named sbx (the shim of a removed sbx). A
// symlink to some other, existing program named sbx is not ours.
func isShim(p, self string) bool {
	st, err := os.Lstat(p)
	if err != nil || st.Mode()&fs.ModeSymlink == 0 {
		return false
	}
	if isSelf(p, self) {
		return true
	}
	target, err := os.Readlink(p)
	if err != nil || filepath.Base(target) != "sbx" {
		return false
	}
	_, err = os.Stat(p)
	return errors.Is(err, fs.ErrNotExist)
}

// shimDir is --dir, or ~/.local/bin.
func shimDir(dir string) (string, error) {
	if dir != "" {
		return filepath.Abs(dir)
	}
	caller, err := sandbox.ProbeCaller()
	if err != nil {
		return "", err
	}
	vars := sandbox.ProbeVars(caller)
	home, ok := vars["HOME"]
	if !ok {
		return "", errors.New("no home directory (HOME is not an absolute path); give --dir")
	}
	return filepath.Join(home, ".local", "bin"), nil
}

func wrapList(names bool) int {
	w, err := loadWrap()
	if err != nil {
		return fail(err)
	}
	if names {
		for _, n := range w.Names() {
			fmt.Println(n)
		}
		return 0
	}
	self, err := selfPath()
	if err != nil {
		return fail(fmt.Errorf("wrap list: %w", err))
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tPROFILE\tFLAGS\tPROGRAM")
	for _, e := range w.Entries {
		prof, flags := strings.Join(e.Profiles, ","), shJoin(e.Flags)
		if prof == "" {
			prof = "-"
		}
		if flags == "" {
			flags = "-"
		}
		prog, _, err := realProgram(e.Name, os.Getenv("PATH"), self)
		if err != nil {
			prog = "(" + err.Error() + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", e.Name, prof, flags, prog)
	}
	tw.Flush()
	return 0
}

// wrapInstall links every wrapped name in dir to sbx. It checks every
// name first and changes nothing if one is taken by a file that is not
// an sbx shim.
func wrapInstall(dir string) int {
	w, err := loadWrap()
	if err != nil {
		return fail(err)
	}
	self, err := selfPath()
	if err != nil {
		return fail(fmt.Errorf("wrap install: %w", err))
	}
	for _, n := range w.Names() {
		p := filepath.Join(dir, n)
		if _, err := os.Lstat(p); err == nil && !isShim(p, self) {
			return fail(fmt.Errorf("wrap install: %s exists and is not an sbx shim; nothing installed (move it away or use --dir)", p))
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fail(fmt.Errorf("wrap install: %w", err))
	}
	for _, n := range w.Names() {
		p := filepath.Join(dir, n)
		if t, err := os.Readlink(p); err == nil && t == self {
			fmt.Printf("%s -> %s (already)\n", p, self)
			continue
		}
		// A new link, renamed over a stale shim in one step; under a
		// name no file has (symlink(2) never replaces one).
		tmp, err := newLink(self, dir, "."+n+".sbx-new")
		if err != nil {
			return fail(fmt.Errorf("wrap install: %w", err))
		}
		if err := os.Rename(tmp, p); err != nil {
			os.Remove(tmp)
			return fail(fmt.Errorf("wrap install: %w", err))
		}
		fmt.Printf("%s -> %s\n", p, self)
	}
	if !onPath(dir) {
		warn(fmt.Sprintf("%s is not on PATH: the shims work once it is, before the real programs' directories", dir))
	}
	return 0
}

// newLink makes a symlink to target in dir, named prefix and a random
// suffix, and returns its path.
func newLink(target, dir, prefix string) (string, error) {
	for range 100 {
		p := filepath.Join(dir, fmt.Sprintf("%s.%08x", prefix, rand.Uint32()))
		err := os.Symlink(target, p)
		if !errors.Is(err, fs.ErrExist) {
			return p, err
		}
	}
	return "", fmt.Errorf("no free name for a link in %s", dir)
}

// wrapRemove removes the sbx shims from dir: symlinks to sbx, for
// wrapped names and stale ones alike. Nothing else is touched.
func wrapRemove(dir string) int {
	self, err := selfPath()
	if err != nil {
		return fail(fmt.Errorf("wrap remove: %w", err))
	}
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return 0
	}
	if err != nil {
		return fail(fmt.Errorf("wrap remove: %w", err))
	}
	for _, ent := range ents {
		p := filepath.Join(dir, ent.Name())
		if policy.IsSbxName(ent.Name()) || !isShim(p, self) {
			continue
		}
		if err := os.Remove(p); err != nil {
			return fail(fmt.Errorf("wrap remove: %w", err))
		}
		fmt.Printf("removed %s\n", p)
	}
	return 0
}

func onPath(dir string) bool {
	for _, d := range filepath.SplitList(os.Getenv("PATH")) {
		if filepath.Clean(d) == dir {
			return true
		}
	}
	return false
}

// shQuote quotes s for a POSIX shell when it needs quoting.
func shQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/._+-=:,") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func shJoin(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		q[i] = shQuote(a)
	}
	return strings.Join(q, " ")
}
