package policy

import (
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

//go:embed profiles/*.toml
var builtins embed.FS

// Builtin returns the built-in profile NAME's text, ok false if none.
func Builtin(name string) ([]byte, bool) {
	b, err := builtins.ReadFile("profiles/" + name + ".toml")
	return b, err == nil
}

// BuiltinNames lists the built-in profiles.
func BuiltinNames() []string {
	ents, _ := fs.ReadDir(builtins, "profiles")
	var out []string
	for _, e := range ents {
		if n, ok := strings.CutSuffix(e.Name(), ".toml"); ok {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out
}

// IsProfilePath says whether a --profile value or an extends entry
// names a file rather than a profile to look up.
func IsProfilePath(ref string) bool {
	return strings.Contains(ref, "/") || strings.HasSuffix(ref, ".toml")
}

// Loader finds a profile: ref is a name or a path; from is the source
// of the profile that names it ("" for the command line), for relative
// paths. It returns the profile's source and text. Package sandbox
// provides the one that reads files; tests fabricate theirs.
type Loader func(ref, from string) (source string, data []byte, err error)

// LoadChain decodes the profiles refs name, each after the profiles it
// extends, in order; a profile reached twice is applied once, where it
// was first reached. A cycle is an error that names its files. The
// variables in extends entries are expanded with vars (refs come from
// the command line, where the shell has expanded them).
func LoadChain(refs []string, vars Vars, load Loader) ([]*Profile, error) {
	chain, _, err := loadChain(refs, vars, load, false)
	return chain, err
}

// loadChain is LoadChain; lenient, an extends entry that uses a
// variable undefined here is not followed, and a note says so.
func loadChain(refs []string, vars Vars, load Loader, lenient bool) ([]*Profile, []string, error) {
	var chain []*Profile
	var notes []string
	seen := map[string]bool{}
	var visit func(ref, from string, stack []string, by *Profile) error
	visit = func(ref, from string, stack []string, by *Profile) error {
		if by != nil {
			r, err := Expand(ref, vars)
			var undef *UndefinedError
			switch {
			case err != nil && lenient && errors.As(err, &undef):
				notes = append(notes, by.errAt("extends", "extends %q not followed: %v", ref, err).Error())
				return nil
			case err != nil:
				return by.errAt("extends", "extends %q: %v", ref, err)
			}
			ref = r
		}
		source, data, err := load(ref, from)
		if err != nil {
			if by != nil {
				return by.errAt("extends", "%s: %v", ref, err)
			}
			return &ProfileError{Source: ref, Msg: err.Error()}
		}
		if slices.Contains(stack, source) {
			cycle := append(stack[slices.Index(stack, source):], source)
			return by.errAt("extends", "extends cycle: %s", strings.Join(cycle, " -> "))
		}
		if seen[source] {
			return nil
		}
		p, err := DecodeProfile(source, data)
		if err != nil {
			return err
		}
		for _, e := range p.Extends {
			if err := visit(e, source, append(stack, source), p); err != nil {
				return err
			}
		}
		seen[source] = true
		chain = append(chain, p)
		return nil
	}
	for _, r := range refs {
		if err := visit(r, "", nil, nil); err != nil {
			return nil, nil, err
		}
	}
	return chain, notes, nil
}

// Vars are the variables a profile may use, with their values. An
// entry "!NAME" says why NAME is undefined here.
type Vars map[string]string

// sampleVars stand for the variables where a profile is checked rather
// than applied (DecodeProfile, sbx profile check): every variable a
// profile may use, each with a value of the shape the real one always
// has (an absolute path; a number; a name).
var sampleVars = Vars{
	"HOME": "/home/user", "PWD": "/home/user/project", "PROJECT": "/home/user/project",
	"UID": "1000", "USER": "user",
	"XDG_CONFIG_HOME": "/home/user/.config", "XDG_CACHE_HOME": "/home/user/.cache",
	"XDG_RUNTIME_DIR": "/run/user/1000",
}

// UndefinedError is a variable a profile may use that is not defined
// where it is applied (no $XDG_RUNTIME_DIR; $PROJECT in a home).
type UndefinedError struct {
	Name string
	Why  string // "" when nothing more is known
}

func (e *UndefinedError) Error() string {
	if e.Why != "" {
		return fmt.Sprintf("$%s is undefined here: %s", e.Name, e.Why)
	}
	return fmt.Sprintf("undefined variable $%s", e.Name)
}

// Expand replaces $NAME and ${NAME} with their values; "$$" is a "$".
// A variable profiles may not use is an error, and so is one undefined
// here (an *UndefinedError), never an empty string.
func Expand(s string, vars Vars) (string, error) {
	if !strings.Contains(s, "$") {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '$' {
			b.WriteByte(s[i])
			continue
		}
		rest := s[i+1:]
		var name string
		switch {
		case strings.HasPrefix(rest, "$"):
			b.WriteByte('$')
			i++
			continue
		case strings.HasPrefix(rest, "{"):
			end := strings.IndexByte(rest, '}')
			if end < 0 {
				return "", fmt.Errorf("unclosed ${ in %q", s)
			}
			name = rest[1:end]
			if name != "" && !isVarName(name) {
				return "", fmt.Errorf("bad variable name %q in %q", name, s)
			}
			i += end + 1
		default:
			n := 0
			for n < len(rest) && (rest[n] == '_' || rest[n] >= 'A' && rest[n] <= 'Z' || rest[n] >= 'a' && rest[n] <= 'z' || n > 0 && rest[n] >= '0' && rest[n] <= '9') {
				n++
			}
			name = rest[:n]
			i += n
		}
		if name == "" {
			return "", fmt.Errorf("a lone $ in %q (write $$ for a dollar sign)", s)
		}
		v, ok := vars[name]
		if !ok {
			if _, known := sampleVars[name]; !known {
				return "", fmt.Errorf("undefined variable $%s (a profile may use %s)", name, knownVars())
			}
			return "", &UndefinedError{Name: name, Why: vars["!"+name]}
		}
		b.WriteString(v)
	}
	return b.String(), nil
}

// knownVars lists the variables a profile may use, for messages.
func knownVars() string {
	var names []string
	for _, k := range sortedKeys(sampleVars) {
		names = append(names, "$"+k)
	}
	return strings.Join(names, ", ")
}

// isVarName says whether s is a variable's name: a letter or '_', then
// letters, digits and '_' (so that "${!NAME}" reaches no why-message).
func isVarName(s string) bool {
	for i, c := range s {
		if !(c == '_' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || i > 0 && c >= '0' && c <= '9') {
			return false
		}
	}
	return s != ""
}

// Origins says where each value of the plan came from: "default", a
// profile's file:line, or a flag. Keys: "net", "hostname", "root",
// "chdir", "timeout", "cgroup", "env.clear", "env.keep", "env.set.K",
// "env.unset.K", "limits.memory", ...
type Origins map[string]string

// ApplyProfiles folds a profile chain into the command line's flags:
// the profiles in order (later wins), then the flags (which win over
// every profile). This, with Resolve, is where built-in defaults < the
// profile chain < the command line is decided.
func ApplyProfiles(chain []*Profile, vars Vars, cli Flags) (Flags, Origins, error) {
	x := newFolder(vars, false)
	if err := x.fold(chain, cli); err != nil {
		return Flags{}, nil, err
	}
	return x.f, x.o, nil
}

// folder folds profiles into flags. Lenient (sbx profile show and
// check), a value that uses a variable undefined here is kept as
// written, unchecked (DecodeProfile checked it with sampleVars), and
// unexpanded says so by its key.
type folder struct {
	vars    Vars
	lenient bool
	f       Flags
	o       Origins
	// The environment, folded in order; swapFrom is the profile whose
	// memory_swap stands, if one's does.
	set, setOrigin map[string]string
	unset, keep    []string
	swapFrom       *Profile
	// unexpanded: Origins keys ("chdir", "env.set.K", "security.seccomp"),
	// with why (a mount carries its own: FSFlag.Unexpanded).
	unexpanded map[string]string
}

func newFolder(vars Vars, lenient bool) *folder {
	return &folder{vars: vars, lenient: lenient, o: Origins{}, set: map[string]string{}, setOrigin: map[string]string{}, unexpanded: map[string]string{}}
}

// at is where key stands in p, for Origins.
func at(p *Profile, key string) string {
	q := p.pos[key]
	if q.line == 0 {
		return p.Source
	}
	return fmt.Sprintf("%s:%d", p.Source, q.line)
}

// kept says whether v is kept as written, as it uses a variable that
// is undefined here (lenient only), and records it as unexpanded.
func (x *folder) kept(key, v string) bool {
	delete(x.unexpanded, key)
	if !x.lenient {
		return false
	}
	var undef *UndefinedError
	if _, err := Expand(v, x.vars); errors.As(err, &undef) {
		x.unexpanded[key] = err.Error()
		return true
	}
	return false
}

// str expands a string value of p and checks it: into dst, with its
// origin under name.
func (x *folder) str(p *Profile, key, name string, v *string, check func(string) error, dst *string) error {
	if v == nil {
		return nil
	}
	if x.kept(name, *v) {
		*dst, x.o[name] = *v, at(p, key)
		return nil
	}
	s, err := Expand(*v, x.vars)
	if err != nil {
		return p.errAt(key, "%s: %v", key, err)
	}
	if check != nil {
		if err := check(s); err != nil {
			return p.errAt(key, "%s %q: %v", key, *v, err)
		}
	}
	*dst, x.o[name] = s, at(p, key)
	return nil
}

// profile folds one profile in, checking each of its values.
func (x *folder) profile(p *Profile) error {
	f, o := &x.f, x.o
	r := p.Run
	for _, s := range []struct {
		key, name string
		v         *string
		check     func(string) error
		dst       *string
	}{
		{"run.net", "net", r.Net, checkNet, &f.Net},
		{"run.hostname", "hostname", r.Hostname, checkHostname, &f.Hostname},
		{"run.chdir", "chdir", r.Chdir, checkChdir, &f.Chdir},
	} {
		if err := x.str(p, s.key, s.name, s.v, s.check, s.dst); err != nil {
			return err
		}
	}
	if r.Root != nil {
		f.Root, o["root"] = *r.Root, at(p, "run.root")
	}
	if r.Cgroup != nil {
		f.Cgroup, o["cgroup"] = *r.Cgroup, at(p, "run.cgroup")
	}
	if r.Timeout != nil {
		t, err := Expand(*r.Timeout, x.vars)
		if err != nil {
			return p.errAt("run.timeout", "timeout: %v", err)
		}
		d, err := time.ParseDuration(t)
		if err != nil || d <= 0 {
			return p.errAt("run.timeout", "timeout %q: want a positive duration such as 30s or 2h", *r.Timeout)
		}
		f.Timeout, o["timeout"] = d, at(p, "run.timeout")
	}
	for i, m := range p.Mount {
		key := "mount." + strconv.Itoa(i)
		origin := "profile " + at(p, key)
		var fl FSFlag
		if raw := m.value(); x.kept(key, *raw) {
			fl = FSFlag{Kind: m.kind(), Source: *raw, Arg: *raw, Optional: m.Optional, Unexpanded: x.unexpanded[key]}
			delete(x.unexpanded, key) // the operation carries it: several share a line
			if fl.Kind == FSTmpfs || fl.Kind == FSHide {
				fl.Source, fl.Dest = "", *raw
			}
		} else {
			var err error
			if fl, err = mountFlag(m, x.vars); err != nil {
				return p.errAt(key, "%v", err)
			}
		}
		fl.Origin = origin
		f.FS = replaceDest(f.FS, fl, x.vars["PWD"])
	}
	e := p.Env
	if e.Clear != nil && *e.Clear {
		f.Clearenv, o["env.clear"] = true, at(p, "env.clear")
	}
	for _, k := range e.Keep {
		if err := checkKeepPattern(k); err != nil {
			return p.errAt("env.keep", "env.keep: %v", err)
		}
	}
	if len(e.Keep) > 0 {
		x.keep = append(x.keep, e.Keep...)
		o["env.keep"] = at(p, "env.keep")
	}
	for _, k := range sortedKeys(e.Set) {
		key := "env.set." + k
		if err := checkProfileEnvName(k); err != nil {
			return p.errAt(key, "env.set: %v", err)
		}
		var v string
		if err := x.str(p, key, key, ptr(e.Set[k]), checkEnvValue, &v); err != nil {
			return err
		}
		x.set[k], x.setOrigin[k] = v, o[key]
		delete(o, key) // set again, for what stands, once folded
		x.unset = slices.DeleteFunc(x.unset, func(u string) bool { return u == k })
		delete(o, "env.unset."+k)
	}
	for _, k := range e.Unset {
		if err := checkProfileEnvName(k); err != nil {
			return p.errAt("env.unset", "env.unset: %v", err)
		}
		delete(x.set, k)
		x.unset = append(x.unset, k)
		o["env.unset."+k] = at(p, "env.unset")
	}
	if err := x.limits(p); err != nil {
		return err
	}
	return x.security(p)
}

func ptr[T any](v T) *T { return &v }

// fold folds the chain, then the command line, which wins.
func (x *folder) fold(chain []*Profile, cli Flags) error {
	for _, p := range chain {
		if err := x.profile(p); err != nil {
			return err
		}
	}
	f, o := &x.f, x.o
	if cli.NoLimits {
		if cli.Memory != 0 || cli.CPUQuota != 0 || cli.Pids != 0 || cli.CPUWeight != 0 || cli.IOWeight != 0 || cli.MemorySwapSet {
			return fmt.Errorf("--no-limits goes with no limit flag")
		}
		f.Memory, f.MemorySwap, f.MemorySwapSet, f.CPUQuota, f.Pids, f.CPUWeight, f.IOWeight = 0, 0, false, 0, 0, 0, 0
		for k := range o {
			if strings.HasPrefix(k, "limits.") {
				delete(o, k)
			}
		}
		o["limits"] = "flag --no-limits"
	}
	for _, s := range []struct {
		v, name string
		dst     *string
	}{{cli.Net, "net", &f.Net}, {cli.Hostname, "hostname", &f.Hostname}, {cli.Chdir, "chdir", &f.Chdir}, {cli.Seccomp, "security.seccomp", &f.Seccomp}} {
		if s.v != "" {
			flag := s.name
			if flag == "security.seccomp" {
				flag = "seccomp"
			}
			*s.dst, o[s.name] = s.v, "flag --"+flag
			delete(x.unexpanded, s.name)
		}
	}
	// A boolean flag wins both ways: given (true), or given false.
	for _, b := range []struct {
		dst       *bool
		on        bool
		flag, key string
	}{
		{&f.Root, cli.Root, "root", "root"},
		{&f.Cgroup, cli.Cgroup, "cgroup", "cgroup"},
		{&f.NoLandlock, cli.NoLandlock, "no-landlock", "security.landlock"},
		{&f.Strict, cli.Strict, "strict", "security.strict"},
		{&f.LogDenied, cli.LogDenied, "log-denied", "security.log_denied"},
		{&f.Clearenv, cli.Clearenv, "clearenv", "env.clear"},
	} {
		switch {
		case b.on:
			*b.dst, o[b.key] = true, "flag --"+b.flag
		case cli.Off[b.flag]:
			*b.dst, o[b.key] = false, "flag --"+b.flag+"=false"
		}
	}
	if cli.Timeout != 0 {
		f.Timeout, o["timeout"] = cli.Timeout, "flag --timeout"
	}
	for _, fl := range cli.FS {
		f.FS = replaceDest(f.FS, fl, x.vars["PWD"])
	}
	// Flags that contradict each other are refused, as Resolve would.
	cliSet := map[string]string{}
	for _, kv := range cli.Env {
		k, v, _ := strings.Cut(kv, "=")
		if prev, ok := cliSet[k]; ok && prev != kv {
			return &UsageError{Err: fmt.Errorf("--env %s conflicts with --env %s", kv, prev)}
		}
		cliSet[k] = kv
		x.set[k], x.setOrigin[k] = v, "flag --env"
		delete(x.unexpanded, "env.set."+k)
		x.unset = slices.DeleteFunc(x.unset, func(u string) bool { return u == k })
		delete(o, "env.unset."+k)
	}
	for _, k := range cli.Unsetenv {
		if kv, ok := cliSet[k]; ok {
			return &UsageError{Err: fmt.Errorf("--unsetenv %s conflicts with --env %s", k, kv)}
		}
		delete(x.set, k)
		x.unset = append(x.unset, k)
		o["env.unset."+k] = "flag --unsetenv"
	}
	for _, k := range sortedKeys(x.set) {
		f.Env = append(f.Env, k+"="+x.set[k])
		o["env.set."+k] = x.setOrigin[k]
	}
	f.Unsetenv, f.KeepEnv = dedupe(x.unset), dedupe(x.keep)
	for _, l := range []struct {
		key  string
		v    uint64
		dst  *uint64
		flag string
	}{
		{"limits.memory", cli.Memory, &f.Memory, "--memory"}, {"limits.cpus", cli.CPUQuota, &f.CPUQuota, "--cpus"},
		{"limits.pids", cli.Pids, &f.Pids, "--pids"}, {"limits.cpu_weight", cli.CPUWeight, &f.CPUWeight, "--cpu-weight"},
		{"limits.io_weight", cli.IOWeight, &f.IOWeight, "--io-weight"},
	} {
		if l.v != 0 {
			*l.dst, o[l.key] = l.v, "flag "+l.flag
		}
	}
	if cli.MemorySwapSet {
		f.MemorySwap, f.MemorySwapSet, o["limits.memory_swap"] = cli.MemorySwap, true, "flag --memory-swap"
		x.swapFrom = nil
	}
	// A profile's swap without a memory limit anywhere is its error
	// (a flag's is Resolve's).
	if f.MemorySwapSet && f.Memory == 0 && x.swapFrom != nil && !cli.NoLimits {
		return x.swapFrom.errAt("limits.memory_swap", "limits.memory_swap %s goes with a memory limit: limits.memory in this profile or one it extends, or --memory", FormatSize(f.MemorySwap))
	}
	// What only the command line says.
	f.PreserveFDs, f.JSONStatus, f.Argv, f.Argv0 = cli.PreserveFDs, cli.JSONStatus, cli.Argv, cli.Argv0
	f.NoPTY, f.NoLimits = cli.NoPTY, cli.NoLimits
	return nil
}

func (x *folder) limits(p *Profile) error {
	f, o := &x.f, x.o
	l := p.Limits // a copy: the profile itself stays as decoded
	for key, v := range map[string]**string{"limits.memory": &l.Memory, "limits.memory_swap": &l.MemorySwap} {
		if *v == nil {
			continue
		}
		s, err := Expand(**v, x.vars)
		if err != nil {
			return p.errAt(key, "%s: %v", key, err)
		}
		*v = &s
	}
	if c, ok := l.Cpus.(string); ok {
		s, err := Expand(c, x.vars)
		if err != nil {
			return p.errAt("limits.cpus", "limits.cpus: %v", err)
		}
		l.Cpus = s
	}
	if l.Memory != nil {
		b, err := memoryMax(*l.Memory)
		if err != nil {
			return p.errAt("limits.memory", "memory %s", err)
		}
		f.Memory, o["limits.memory"] = b, at(p, "limits.memory")
	}
	if l.MemorySwap != nil {
		b, err := ParseSize(*l.MemorySwap)
		if err != nil {
			return p.errAt("limits.memory_swap", "memory_swap %s", err)
		}
		f.MemorySwap, f.MemorySwapSet, o["limits.memory_swap"] = b, true, at(p, "limits.memory_swap")
		x.swapFrom = p
	}
	if l.Cpus != nil {
		q, err := ParseCPUs(cpusText(l.Cpus))
		if err != nil {
			return p.errAt("limits.cpus", "%v", err)
		}
		f.CPUQuota, o["limits.cpus"] = q, at(p, "limits.cpus")
	}
	for _, c := range []struct {
		key string
		v   *int64
		dst *uint64
	}{{"limits.pids", l.Pids, &f.Pids}, {"limits.cpu_weight", l.CPUWeight, &f.CPUWeight}, {"limits.io_weight", l.IOWeight, &f.IOWeight}} {
		if c.v == nil {
			continue
		}
		if c.key != "limits.pids" && *c.v > 10000 {
			return p.errAt(c.key, "%s = %d: want 1 to 10000", c.key, *c.v)
		}
		if c.key == "limits.pids" {
			if _, err := ParseCount("pids", strconv.FormatInt(*c.v, 10)); err != nil {
				return p.errAt(c.key, "%v", err)
			}
		}
		*c.dst, o[c.key] = uint64(*c.v), at(p, c.key)
	}
	return nil
}

// security folds a profile's [security] section in.
func (x *folder) security(p *Profile) error {
	f, o := &x.f, x.o
	s := p.Security
	if err := x.str(p, "security.seccomp", "security.seccomp", s.Seccomp, checkSeccompMode, &f.Seccomp); err != nil {
		return err
	}
	if s.Landlock != nil {
		f.NoLandlock, o["security.landlock"] = !*s.Landlock, at(p, "security.landlock")
	}
	if s.Strict != nil {
		f.Strict, o["security.strict"] = *s.Strict, at(p, "security.strict")
	}
	if s.LogDenied != nil {
		f.LogDenied, o["security.log_denied"] = *s.LogDenied, at(p, "security.log_denied")
	}
	return nil
}

// checkSeccompMode accepts what --seccomp names in a profile: a mode,
// or the absolute path of a JSON profile (whose reading is the
// caller's: ValueError locates what goes wrong there).
// SeccompPath says whether a --seccomp value (or security.seccomp) names
// a profile file, not a mode.
func SeccompPath(v string) bool { return v != "" && v != SeccompDefault && v != SeccompUnconfined }

func checkSeccompMode(v string) error {
	if SeccompPath(v) && (!path.IsAbs(v) || strings.ContainsRune(v, 0)) {
		return errors.New(`want "default", "unconfined" or the absolute path of a JSON profile`)
	}
	return nil
}

// ValueError places err, about the value at key (an Origins key such
// as "security.seccomp"), in the profile that gave it, or returns nil
// when no profile of chain did (a flag, a default).
func ValueError(chain []*Profile, o Origins, key string, err error) error {
	for i := len(chain) - 1; i >= 0; i-- {
		if p := chain[i]; p.pos[key].line != 0 && at(p, key) == o[key] {
			return p.errAt(key, "%s: %v", key, err)
		}
	}
	return nil
}

// mountFlag turns a [[mount]] entry into the flag it stands for.
func mountFlag(m MountEntry, vars Vars) (FSFlag, error) {
	kind, raw := m.kind(), m.value()
	if kind != FSRo && kind != FSRw {
		v, err := Expand(*raw, vars)
		if err != nil {
			return FSFlag{}, fmt.Errorf("%s %q: %v", kind, *raw, err)
		}
		d, err := CleanDest(v)
		if err != nil {
			return FSFlag{}, fmt.Errorf("%s %q: %w", kind, *raw, err)
		}
		return FSFlag{Kind: kind, Dest: d, Arg: v, Optional: m.Optional}, nil
	}
	// SRC:DEST is split on the template, before expansion: a ':' in a
	// value a variable brings (a directory named "..:" in $PWD) must
	// never turn into a destination.
	srcT, dstT := splitBindTemplate(*raw)
	src, err := Expand(srcT, vars)
	if err != nil {
		return FSFlag{}, fmt.Errorf("%s %q: %v", kind, *raw, err)
	}
	f := FSFlag{Kind: kind, Source: src, Arg: *raw, Optional: m.Optional}
	if src == "" || strings.ContainsRune(src, 0) {
		return FSFlag{}, fmt.Errorf("%s %q: empty path", kind, *raw)
	}
	dst := src
	if dstT != "" {
		if dst, err = Expand(dstT, vars); err != nil {
			return FSFlag{}, fmt.Errorf("%s %q: %v", kind, *raw, err)
		}
	}
	if path.IsAbs(dst) || dstT != "" {
		d, err := CleanDest(dst)
		if err != nil {
			return FSFlag{}, fmt.Errorf("%s %q: %w", kind, *raw, err)
		}
		f.Dest = d
	}
	if f.Arg = src; dstT != "" {
		f.Arg = src + ":" + dst
	}
	return f, nil
}

// splitBindTemplate splits a profile's SRC:DEST at the first ':' that
// starts an absolute path or a variable ("/..." or "$...").
func splitBindTemplate(t string) (src, dst string) {
	for i := 0; i < len(t); i++ {
		if t[i] == ':' && i+1 < len(t) && (t[i+1] == '/' || t[i+1] == '$') {
			return t[:i], t[i+1:]
		}
	}
	return t, ""
}

// cpusText is limits.cpus as --cpus would take it: TOML decodes 1.5 and
// 1000000.0 as floats, which fmt would print as 1e+06.
func cpusText(v any) string {
	if f, ok := v.(float64); ok {
		return strconv.FormatFloat(f, 'f', -1, 64)
	}
	return fmt.Sprint(v)
}

// replaceDest appends fl to fs, dropping an earlier operation of a
// profile on the same destination, which a later profile, or the command
// line, replaces. The profiles' operations that came after the replaced
// one on paths inside its destination move after fl: they were put over
// it (--profile build --rw . must not cover build's read-only .git),
// while everything else keeps its order, so that fl goes over what came
// before it (--ro ~ --tmpfs ~/.ssh leaves ~/.ssh covered).
func replaceDest(fs []FSFlag, fl FSFlag, cwd string) []FSFlag {
	d := flagDest(fl, cwd)
	i := slices.IndexFunc(fs, func(x FSFlag) bool { return x.Origin != "" && flagDest(x, cwd) == d })
	if i < 0 {
		return append(fs, fl)
	}
	var kept, over []FSFlag
	for _, x := range fs[i+1:] {
		switch xd := flagDest(x, cwd); {
		case x.Origin != "" && xd == d:
			// another of the same destination: replaced too
		case x.Origin != "" && under(xd, d):
			over = append(over, x)
		default:
			kept = append(kept, x)
		}
	}
	out := append(slices.Clone(fs[:i]), kept...)
	out = append(out, fl)
	return append(out, over...)
}

func flagDest(fl FSFlag, cwd string) string {
	if fl.Dest != "" {
		return fl.Dest
	}
	return hostPath(fl.Source, cwd)
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func dedupe(s []string) []string {
	var out []string
	for _, x := range s {
		if !slices.Contains(out, x) {
			out = append(out, x)
		}
	}
	return out
}

// keepName says whether an environment variable's name is on the
// allowlist (an entry ending in * matches a prefix).
func keepName(name string, keep []string) bool {
	for _, k := range keep {
		if p, ok := strings.CutSuffix(k, "*"); ok && strings.HasPrefix(name, p) || k == name {
			return true
		}
	}
	return false
}

// ProjectDir is $PROJECT: the root of the git work tree around cwd
// (gitRoot, found by the host probe; "" when there is none), else cwd.
func ProjectDir(cwd, gitRoot string) string {
	if gitRoot != "" && under(cwd, gitRoot) {
		return path.Clean(gitRoot)
	}
	return cwd
}
