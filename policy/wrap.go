package policy

import (
	"bytes"
	"errors"
	"fmt"
	"path"
	"sort"
	"strings"

	"github.com/pelletier/go-toml/v2"
	"github.com/pelletier/go-toml/v2/unstable"
)

// WrapVersion is the only version of the wrap file format.
const WrapVersion = 1

// Wrap is the wrap file, $XDG_CONFIG_HOME/sbx/wrap.toml: the commands
// that run in a sandbox when called by name (README.md, "Wrapping
// commands"). The zero Wrap wraps nothing.
type Wrap struct {
	Source  string
	Entries []WrapEntry // sorted by name
}

// WrapEntry is one [wrap.NAME] table: NAME runs as
// `sbx run --profile P... FLAGS... -- REALPROG ARGS...`.
type WrapEntry struct {
	Name        string
	Profiles    []string
	Flags       []string
	Description string
}

// Lookup returns the entry for a command name.
func (w *Wrap) Lookup(name string) (WrapEntry, bool) {
	for _, e := range w.Entries {
		if e.Name == name {
			return e, true
		}
	}
	return WrapEntry{}, false
}

// Names returns the wrapped command names, sorted.
func (w *Wrap) Names() []string {
	names := make([]string, len(w.Entries))
	for i, e := range w.Entries {
		names[i] = e.Name
	}
	return names
}

// RunArgs is the argument list of `sbx run` for this entry running the
// program at path with args.
func (e WrapEntry) RunArgs(path string, byName bool, args []string) []string {
	var out []string
	for _, p := range e.Profiles {
		out = append(out, "--profile", p)
	}
	out = append(out, e.Flags...)
	// Called by its name, as the original would be (its messages say
	// "cat:", not "/usr/bin/cat:"), unless a shim comes first on PATH: a
	// program that finds itself by its name would find the shim.
	if byName {
		out = append(out, "--argv0", e.Name)
	}
	out = append(out, "--", path)
	return append(out, args...)
}

type wrapDoc struct {
	Version int                  `toml:"version"`
	Wrap    map[string]wrapTable `toml:"wrap"`
}

type wrapTable struct {
	Profile     any      `toml:"profile"`
	Flags       []string `toml:"flags"`
	Description string   `toml:"description"`
}

// DecodeWrap decodes a wrap file strictly: a syntax error, an unknown
// key, a wrong type or a bad name is a *ProfileError naming
// source:line:col. checkFlags, when not nil, validates an entry's flags
// as `sbx run` would parse them (the flag set lives in cmd/sbx).
func DecodeWrap(source string, data []byte, checkFlags func([]string) error) (*Wrap, error) {
	var doc wrapDoc
	at, err := decodeStrict(source, data, &doc)
	if err != nil {
		return nil, err
	}
	errAt := func(keys []string, format string, args ...any) error {
		for _, k := range keys {
			if p, ok := at[k]; ok {
				return &ProfileError{Source: source, Line: p.line, Col: p.col, Msg: fmt.Sprintf(format, args...)}
			}
		}
		return &ProfileError{Source: source, Msg: fmt.Sprintf(format, args...)}
	}
	if _, ok := at["version"]; !ok {
		return nil, &ProfileError{Source: source, Line: 1, Col: 1, Msg: fmt.Sprintf("no version key (want version = %d)", WrapVersion)}
	}
	if doc.Version != WrapVersion {
		return nil, errAt([]string{"version"}, "version %d: this sbx reads version %d", doc.Version, WrapVersion)
	}
	w := &Wrap{Source: source}
	names := make([]string, 0, len(doc.Wrap))
	for n := range doc.Wrap {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		t := doc.Wrap[n]
		key := "wrap." + n
		if err := checkWrapName(n); err != nil {
			return nil, errAt([]string{key, "wrap"}, "[wrap.NAME]: %v", err)
		}
		e := WrapEntry{Name: n, Flags: t.Flags, Description: t.Description}
		pkeys := []string{key + ".profile", key, "wrap"}
		switch v := t.Profile.(type) {
		case nil:
		case string:
			e.Profiles = []string{v}
		case []any:
			for _, el := range v {
				s, ok := el.(string)
				if !ok {
					return nil, errAt(pkeys, "%s.profile: want a string or a list of strings, got a list holding %T", key, el)
				}
				e.Profiles = append(e.Profiles, s)
			}
		default:
			return nil, errAt(pkeys, "%s.profile: want a string or a list of strings, got %T", key, v)
		}
		for i, p := range e.Profiles {
			if p == "" {
				return nil, errAt(pkeys, "%s.profile: empty profile name", key)
			}
			// A relative path is the wrap file's, as an extends path is
			// its profile's: never the directory the command runs in,
			// which may be a repository that would pick the policy.
			if IsProfilePath(p) && !path.IsAbs(p) {
				e.Profiles[i] = path.Join(path.Dir(source), p)
			}
		}
		fkeys := []string{key + ".flags", key, "wrap"}
		for _, f := range e.Flags {
			if f == "--" {
				return nil, errAt(fkeys, `%s.flags: "--" is not a flag: the command is %s itself`, key, n)
			}
		}
		if checkFlags != nil {
			if err := checkFlags(e.Flags); err != nil {
				return nil, errAt(fkeys, "%s.flags: %v", key, err)
			}
		}
		w.Entries = append(w.Entries, e)
	}
	return w, nil
}

// IsSbxName says whether sbx, called by this name (argv[0]'s last
// element), is itself; under any other name it is a shim of a wrapped
// command.
func IsSbxName(name string) bool { return strings.HasPrefix(name, "sbx") }

// checkWrapName accepts a plain command name that is also a function
// name in bash, zsh and fish, and is not sbx itself.
func checkWrapName(n string) error {
	switch {
	case n == "":
		return errors.New("empty command name")
	case IsSbxName(n):
		return fmt.Errorf("%q: a name that starts with sbx is sbx's own (sbx answers as itself under it)", n)
	case n == "." || n == ".." || strings.HasPrefix(n, "-"):
		return fmt.Errorf("%q is not a command name", n)
	case shellReserved[n]:
		// A function named command or builtin would capture every
		// wrapper function's own call (they call `command sbx ...`).
		return fmt.Errorf("%q is a shell builtin or keyword: wrapping it would break the shell", n)
	}
	for _, r := range n {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("._+-", r)
		if !ok {
			return fmt.Errorf("%q is not a plain command name (letters, digits and . _ + - only; no /)", n)
		}
	}
	return nil
}

// decodeStrict decodes data into v, disallowing unknown keys, and
// returns where its keys stand; every error is a *ProfileError naming
// source:line:col. DecodeProfile and DecodeWrap use it.
func decodeStrict(source string, data []byte, v any) (map[string]pos, error) {
	at, err := positions(data)
	if err != nil {
		var pe *unstable.ParserError
		if errors.As(err, &pe) {
			sh := shapeOf(data, pe.Highlight)
			return nil, &ProfileError{Source: source, Line: sh.line, Col: sh.col, Msg: pe.Message}
		}
		return nil, &ProfileError{Source: source, Msg: err.Error()}
	}
	dec := toml.NewDecoder(bytes.NewReader(data)).DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var sm *toml.StrictMissingError
		if errors.As(err, &sm) && len(sm.Errors) > 0 {
			e := sm.Errors[0]
			line, col := e.Position()
			return nil, &ProfileError{Source: source, Line: line, Col: col, Msg: fmt.Sprintf("unknown key %q", strings.Join(e.Key(), "."))}
		}
		var de *toml.DecodeError
		if errors.As(err, &de) {
			line, col := de.Position()
			msg := strings.TrimPrefix(de.Error(), "toml: ")
			if k := de.Key(); len(k) > 0 {
				msg = fmt.Sprintf("%s: %s", strings.Join(k, "."), msg)
			}
			return nil, &ProfileError{Source: source, Line: line, Col: col, Msg: msg}
		}
		return nil, &ProfileError{Source: source, Msg: err.Error()}
	}
	return at, nil
}

// shellReserved are the names a wrapper function must not have: the
// reserved words of bash (compgen -k), zsh (reswords) and fish
// (`function _` says "cannot use reserved keyword"), which one of them
// cannot define or call as a function; and builtins the wrapper
// functions call or a shell needs to work.
var shellReserved = wordSet(
	// Reserved words: bash; zsh's own; fish's own.
	`if then else elif fi case esac for select while until do done in function time coproc`,
	`end foreach repeat float integer nocorrect declare export local readonly typeset`,
	`begin and or not switch builtin command exec eval read return set status string test argparse break continue _`,
	// Builtins.
	`source alias unalias functions exit shift unset true false cd pwd echo printf trap wait kill jobs fg bg
	disown type hash enable shopt emulate autoload noglob set_color math contains fish_prompt complete bind history`,
)

func wordSet(lists ...string) map[string]bool {
	m := map[string]bool{}
	for _, l := range lists {
		for _, w := range strings.Fields(l) {
			m[w] = true
		}
	}
	return m
}
