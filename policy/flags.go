package policy

import (
	"errors"
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"
)

// FSKind is the kind of a filesystem flag.
type FSKind string

// The filesystem flags, in the order the user gives them.
const (
	FSRo    FSKind = "ro"
	FSRw    FSKind = "rw"
	FSTmpfs FSKind = "tmpfs"
	FSHide  FSKind = "hide"
)

// FSFlag is one --ro, --rw, --tmpfs or --hide as given.
type FSFlag struct {
	Kind   FSKind
	Source string // --ro/--rw only; may be relative to the caller's cwd
	Dest   string
	Arg    string // the value as typed, for messages
	// Origin is where a profile's operation came from ("" for a flag).
	Origin string
	// Optional: skipped when the source (hide: the path) does not exist.
	Optional bool
	// Unexpanded, in sbx profile show only, says why Arg was kept as
	// written: it uses a variable undefined here ($PROJECT outside a
	// project).
	Unexpanded string
}

// Flag renders the operation as the user gave it: the flag as typed, or
// the profile entry and where it stands.
func (f FSFlag) Flag() string {
	if f.Origin != "" {
		return string(f.Kind) + " " + f.Arg + " (" + f.Origin + ")"
	}
	return "--" + string(f.Kind) + " " + f.Arg
}

// Flags is what the command line of sbx run says, parsed but not yet
// checked against the host.
type Flags struct {
	FS       []FSFlag
	Chdir    string
	Hostname string
	Net      string
	Root     bool
	Env      []string
	Unsetenv []string
	Clearenv bool
	// KeepEnv is an allowlist of names from a profile (NAME or PREFIX*).
	KeepEnv     []string
	PreserveFDs []int
	Timeout     time.Duration
	JSONStatus  string
	// Limits as given; MemorySwapSet says --memory-swap was given.
	Memory, MemorySwap, CPUQuota, Pids, CPUWeight, IOWeight uint64
	MemorySwapSet                                           bool
	// Cgroup asks for a delegated cgroup even without a limit (for
	// accounting and the guaranteed teardown).
	Cgroup bool
	// NoLimits drops the limits the profiles set: the user's explicit
	// choice to run where they cannot be enforced.
	NoLimits bool
	// NoPTY keeps the caller's terminal as the payload's (--no-pty), as
	// when stdin is no terminal: no pseudo-terminal, no relay.
	NoPTY bool
	// Seccomp is --seccomp as given: "", "default", "unconfined" or a
	// profile's path; SeccompJSON is that file's text, read by the caller.
	Seccomp     string
	SeccompJSON []byte
	// NoLandlock drops the Landlock layer; LogDenied reports refused
	// system calls; Strict makes every hardening layer required.
	NoLandlock bool
	LogDenied  bool
	Strict     bool
	// Off names the boolean flags given false explicitly (--root=false):
	// they override a profile's true, as the others override its false.
	Off  map[string]bool
	Argv []string
	// Argv0 is what COMMAND gets as argv[0] instead of its path (--argv0,
	// as bubblewrap's): a wrapped command is called by its name.
	Argv0 string
}

// OffFlags are the boolean flags of sbx run that a profile can set true
// (root, cgroup, env.clear, security.strict, security.log_denied) or
// false (security.landlock, for --no-landlock): given false on the
// command line, they win over the profile.
var OffFlags = []string{"root", "cgroup", "clearenv", "no-landlock", "strict", "log-denied"}

// ParseBind parses the value of --ro or --rw: PATH or PATH:DEST. When
// the value holds ":/" the first one separates PATH from an absolute
// DEST, so paths that contain ':' can be written with a DEST; otherwise
// the last ':' does, and a DEST that is not absolute is an error.
func ParseBind(kind FSKind, arg string) (FSFlag, error) {
	f := FSFlag{Kind: kind, Arg: arg}
	if arg == "" {
		return f, fmt.Errorf("--%s: empty path", kind)
	}
	if strings.ContainsRune(arg, 0) {
		return f, fmt.Errorf("--%s %q: NUL in path", kind, arg)
	}
	src, dst := arg, ""
	if i := strings.Index(arg, ":/"); i >= 0 {
		src, dst = arg[:i], arg[i+1:]
	} else if i := strings.LastIndexByte(arg, ':'); i >= 0 {
		src, dst = arg[:i], arg[i+1:]
		if dst == "" {
			return f, fmt.Errorf("--%s %s: empty DEST after ':'", kind, arg)
		}
	}
	if src == "" {
		return f, fmt.Errorf("--%s %s: empty PATH", kind, arg)
	}
	f.Source = src
	if dst == "" {
		dst = src
		if !path.IsAbs(dst) {
			dst = "" // resolved against the cwd later
		}
	}
	if dst != "" {
		d, err := CleanDest(dst)
		if err != nil {
			return f, fmt.Errorf("--%s %s: %w", kind, arg, err)
		}
		f.Dest = d
	}
	return f, nil
}

// ParseDest parses the value of --tmpfs or --hide.
func ParseDest(kind FSKind, arg string) (FSFlag, error) {
	f := FSFlag{Kind: kind, Arg: arg}
	d, err := CleanDest(arg)
	if err != nil {
		return f, fmt.Errorf("--%s %s: %w", kind, strconv.Quote(arg), err)
	}
	f.Dest = d
	return f, nil
}

// CleanDest checks a path inside the sandbox: absolute, not the root,
// no ".." component, no NUL; it returns the cleaned path.
func CleanDest(p string) (string, error) {
	switch {
	case p == "":
		return "", fmt.Errorf("empty path")
	case strings.ContainsRune(p, 0):
		return "", fmt.Errorf("NUL in path")
	case !path.IsAbs(p):
		return "", fmt.Errorf("DEST %q is not an absolute path", p)
	}
	for _, c := range strings.Split(p, "/") {
		if c == ".." {
			return "", fmt.Errorf("DEST %q has a \"..\" component", p)
		}
	}
	c := path.Clean(p)
	if c == "/" {
		return "", fmt.Errorf("DEST %q is the sandbox's root", p)
	}
	return c, nil
}

// ParseEnv parses the value of --env: K=V with a non-empty K.
func ParseEnv(arg string) (string, error) {
	k, v, ok := strings.Cut(arg, "=")
	if !ok || k == "" {
		return "", fmt.Errorf("--env %q: want KEY=VALUE", arg)
	}
	if err := checkEnvKey(k); err != nil {
		return "", fmt.Errorf("--env %q: %w", arg, err)
	}
	if err := checkEnvValue(v); err != nil {
		return "", fmt.Errorf("--env %q: %w", arg, err)
	}
	return arg, nil
}

func checkEnvKey(k string) error {
	if k == "" || strings.ContainsAny(k, "=\x00") {
		return fmt.Errorf("bad variable name %q", k)
	}
	return nil
}

func checkEnvValue(v string) error {
	if strings.ContainsRune(v, 0) {
		return errors.New("NUL in value")
	}
	return nil
}

// checkProfileEnvName checks a name a profile gives (a key of env.set,
// an entry of env.unset): what --env and --unsetenv take, less "$" and
// "*". Names are not expanded, so a "$" in one is a variable that would
// never be; and they are not patterns (only env.keep has those).
func checkProfileEnvName(k string) error {
	if err := checkEnvKey(k); err != nil {
		return err
	}
	if strings.Contains(k, "$") {
		return fmt.Errorf("bad variable name %q: names are not expanded (variables go in values)", k)
	}
	if strings.Contains(k, "*") {
		return fmt.Errorf("bad variable name %q: a name, not a pattern (env.keep takes PREFIX*)", k)
	}
	return nil
}

// checkKeepPattern checks an env.keep entry: a variable's NAME, or
// PREFIX* for every name that starts with PREFIX.
func checkKeepPattern(k string) error {
	name, _ := strings.CutSuffix(k, "*")
	if name == "" {
		return fmt.Errorf("%q: want a variable's NAME or a PREFIX* pattern", k)
	}
	return checkProfileEnvName(name)
}

// ParseFD parses the value of --preserve-fd.
func ParseFD(arg string) (int, error) {
	n, err := strconv.Atoi(arg)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("--preserve-fd %q: not a descriptor number", arg)
	}
	if n <= 2 {
		return 0, fmt.Errorf("--preserve-fd %d: descriptors 0, 1 and 2 are always kept", n)
	}
	if n > 1<<20 {
		return 0, fmt.Errorf("--preserve-fd %d: too large", n)
	}
	return n, nil
}

// ParseTimeout parses the value of --timeout: a positive Go duration,
// or a plain number of seconds.
func ParseTimeout(arg string) (time.Duration, error) {
	d, err := time.ParseDuration(arg)
	if err != nil {
		s, err2 := strconv.ParseFloat(arg, 64)
		if err2 != nil || s != s {
			return 0, fmt.Errorf("--timeout %q: not a duration (e.g. 30s, 5m, 1h30m)", arg)
		}
		if s <= 0 {
			return 0, fmt.Errorf("--timeout %q: must be positive", arg)
		}
		if s > float64(1<<62)/float64(time.Second) {
			return 0, fmt.Errorf("--timeout %q: too long", arg)
		}
		d = time.Duration(s * float64(time.Second))
	}
	if d <= 0 {
		return 0, fmt.Errorf("--timeout %q: must be positive", arg)
	}
	return d, nil
}

// ParseNet parses the value of --net.
func ParseNet(arg string) (string, error) {
	if err := checkNet(arg); err != nil {
		return "", fmt.Errorf("--net %q: %w", arg, err)
	}
	return arg, nil
}

func checkNet(s string) error {
	if s != "none" && s != "host" {
		return errors.New("want none or host")
	}
	return nil
}

// ParseHostname checks the value of --hostname.
func ParseHostname(arg string) (string, error) {
	if err := checkHostname(arg); err != nil {
		return "", fmt.Errorf("--hostname %q: %w", arg, err)
	}
	return arg, nil
}

// checkHostname accepts RFC 1123 labels, at most 64 bytes as
// sethostname(2) takes.
func checkHostname(s string) error {
	if s == "" || len(s) > 64 {
		return errors.New("want 1 to 64 characters")
	}
	for _, l := range strings.Split(s, ".") {
		if l == "" || l[0] == '-' || l[len(l)-1] == '-' {
			return errors.New("not a valid host name")
		}
		for _, c := range l {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return errors.New("not a valid host name")
			}
		}
	}
	return nil
}

// ParseChdir checks the value of --chdir, a directory inside the
// sandbox, and returns it cleaned.
func ParseChdir(arg string) (string, error) {
	if err := checkChdir(arg); err != nil {
		return "", fmt.Errorf("--chdir %q: %w", arg, err)
	}
	return path.Clean(arg), nil
}

// checkChdir accepts an absolute path without a ".." component.
func checkChdir(p string) error {
	if !path.IsAbs(p) || strings.ContainsRune(p, 0) {
		return errors.New("not an absolute path")
	}
	if slices.Contains(strings.Split(p, "/"), "..") {
		return errors.New(`has a ".." component`)
	}
	return nil
}
