package sandbox

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"sbx/policy"
)

// ProbeVars gathers the values of the variables profiles may use.
func ProbeVars(c Caller) policy.Vars {
	cwd := c.Cwd
	v := policy.Vars{"PWD": cwd, "UID": strconv.Itoa(os.Getuid())}
	if c.User != "" {
		v["USER"] = c.User
	}
	if c.Home != "/" {
		v["HOME"] = c.Home
	}
	for name, fallback := range map[string]string{"XDG_CONFIG_HOME": ".config", "XDG_CACHE_HOME": ".cache"} {
		if d := os.Getenv(name); filepath.IsAbs(d) {
			v[name] = filepath.Clean(d)
		} else if h, ok := v["HOME"]; ok {
			v[name] = filepath.Join(h, fallback)
		}
	}
	if d := os.Getenv("XDG_RUNTIME_DIR"); filepath.IsAbs(d) {
		v["XDG_RUNTIME_DIR"] = filepath.Clean(d)
	}
	if c.CwdErr != nil {
		delete(v, "PWD")
		v["!PWD"] = c.CwdErr.Error()
		v["!PROJECT"] = c.CwdErr.Error()
		return v
	}
	// $PROJECT is what a build may write: never the root, a home or a
	// directory holding one (the same rule as for sharing the working
	// directory).
	project := policy.ProjectDir(cwd, gitRoot(cwd))
	homes := []string{v["HOME"], c.UserHome}
	for _, h := range homes {
		if h != "" && (project == "/" || project == h || strings.HasPrefix(h, project+"/")) {
			v["!PROJECT"] = fmt.Sprintf("the project would be %s, which is or holds a home directory; run from a project directory", project)
			return v
		}
	}
	if project == "/" {
		v["!PROJECT"] = "the project would be /; run from a project directory"
		return v
	}
	v["PROJECT"] = project
	return v
}

// gitRoot is the directory holding .git (a directory, or a file for
// worktrees and submodules) at or above dir, "" when there is none.
func gitRoot(dir string) string {
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Lstat(filepath.Join(d, ".git")); err == nil {
			return d
		}
		if d == "/" {
			return ""
		}
	}
}

// ProfileDirs are where a profile NAME is looked for, in order, before
// the built-ins: $XDG_CONFIG_HOME/sbx/profiles, then /etc/sbx/profiles.
func ProfileDirs(vars policy.Vars) []string {
	var dirs []string
	if c, ok := vars["XDG_CONFIG_HOME"]; ok {
		dirs = append(dirs, filepath.Join(c, "sbx", "profiles"))
	}
	return append(dirs, "/etc/sbx/profiles")
}

// errNoProfile says a profile name was found nowhere.
var errNoProfile = errors.New("no such profile")

// ProfileLoader reads profiles: a name from ProfileDirs or the
// built-ins, a path as given (relative to the profile that names it, or
// to the working directory).
func ProfileLoader(vars policy.Vars) policy.Loader {
	return func(ref, from string) (string, []byte, error) {
		if policy.IsProfilePath(ref) {
			p := ref
			if !filepath.IsAbs(p) {
				base := vars["PWD"]
				if from != "" && filepath.IsAbs(from) {
					base = filepath.Dir(from)
				}
				p = filepath.Join(base, p)
			}
			b, err := ReadConfig(p)
			if err != nil {
				var pe *os.PathError
				if errors.As(err, &pe) {
					err = pe.Err
				}
				return p, nil, err
			}
			return filepath.Clean(p), b, nil
		}
		for _, d := range ProfileDirs(vars) {
			p := filepath.Join(d, ref+".toml")
			if b, err := ReadConfig(p); err == nil {
				return p, b, nil
			} else if !errors.Is(err, os.ErrNotExist) {
				return p, nil, err
			}
		}
		if b, ok := policy.Builtin(ref); ok {
			return "builtin:" + ref + ".toml", b, nil
		}
		return ref, nil, fmt.Errorf("%w %q (looked in %v and the built-ins)", errNoProfile, ref, ProfileDirs(vars))
	}
}

// ProfileEntry is one profile that `sbx profile list` shows.
type ProfileEntry struct {
	Name, Source, Description string
}

// ListProfiles lists the profiles a name can reach: the first of each
// name in lookup order.
func ListProfiles(vars policy.Vars) []ProfileEntry {
	seen := map[string]bool{}
	var out []ProfileEntry
	add := func(name, source string, data []byte, err error) {
		if seen[name] {
			return
		}
		seen[name] = true
		e := ProfileEntry{Name: name, Source: source}
		var p *policy.Profile
		if err == nil {
			p, err = policy.DecodeProfile(source, data)
		}
		if err == nil {
			e.Description = p.Description
		} else {
			e.Description = "(invalid: " + err.Error() + ")"
		}
		out = append(out, e)
	}
	for _, d := range ProfileDirs(vars) {
		files, _ := filepath.Glob(filepath.Join(d, "*.toml"))
		for _, f := range files {
			// A FIFO or a device named *.toml must not hang the list
			// (and completion, which reads it): it is listed as invalid.
			b, err := ReadConfig(f)
			add(filepath.Base(f[:len(f)-len(".toml")]), f, b, err)
		}
	}
	for _, n := range policy.BuiltinNames() {
		b, _ := policy.Builtin(n)
		add(n, "builtin:"+n+".toml", b, nil)
	}
	return out
}

// maxConfigSize bounds a file sbx reads its settings from (a profile, a
// seccomp profile, the wrap file): each is a few kilobytes.
const maxConfigSize = 1 << 20

// ReadConfig reads a settings file: a regular file of at most
// maxConfigSize bytes. A FIFO, a device (`--seccomp /dev/zero`,
// extends = ["/dev/zero"]) or a huge file would hang sbx or exhaust its
// memory.
func ReadConfig(p string) ([]byte, error) {
	f, err := os.OpenFile(p, os.O_RDONLY|unix.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: not a regular file", p)
	}
	if fi.Size() > maxConfigSize {
		return nil, fmt.Errorf("%s: %d bytes, more than a settings file can be (%d)", p, fi.Size(), maxConfigSize)
	}
	b, err := io.ReadAll(io.LimitReader(f, maxConfigSize+1))
	if err == nil && len(b) > maxConfigSize {
		return nil, fmt.Errorf("%s: more than a settings file can be (%d bytes)", p, maxConfigSize)
	}
	return b, err
}
