package policy

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"

	"github.com/pelletier/go-toml/v2/unstable"
)

// ProfileVersion is the only version of the profile format.
const ProfileVersion = 1

// Profile is one profile file, decoded and checked (docs/profiles.md).
type Profile struct {
	Version     int             `toml:"version"`
	Description string          `toml:"description"`
	Extends     []string        `toml:"extends"`
	Run         RunSection      `toml:"run"`
	Mount       []MountEntry    `toml:"mount"`
	Env         EnvSection      `toml:"env"`
	Limits      LimitsSection   `toml:"limits"`
	Security    SecuritySection `toml:"security"`

	// Source names the file: a path, or "builtin:NAME.toml".
	Source string `toml:"-"`
	pos    map[string]pos
}

// RunSection holds what sbx run's scalar flags say.
type RunSection struct {
	Net      *string `toml:"net"`
	Hostname *string `toml:"hostname"`
	Root     *bool   `toml:"root"`
	Chdir    *string `toml:"chdir"`
	Timeout  *string `toml:"timeout"`
	Cgroup   *bool   `toml:"cgroup"`
}

// MountEntry is one filesystem operation: exactly one of Ro, Rw, Tmpfs,
// Hide. Optional skips it when its source (or, for Hide, its path) does
// not exist.
type MountEntry struct {
	Ro       *string `toml:"ro"`
	Rw       *string `toml:"rw"`
	Tmpfs    *string `toml:"tmpfs"`
	Hide     *string `toml:"hide"`
	Optional bool    `toml:"optional"`
}

// EnvSection shapes the payload's environment.
type EnvSection struct {
	Clear *bool             `toml:"clear"`
	Keep  []string          `toml:"keep"`
	Set   map[string]string `toml:"set"`
	Unset []string          `toml:"unset"`
}

// SecuritySection holds the hardening keys: seccomp is "default",
// "unconfined" or the absolute path of an OCI/Docker JSON profile;
// landlock = false drops the Landlock layer.
type SecuritySection struct {
	Seccomp   *string `toml:"seccomp"`
	Landlock  *bool   `toml:"landlock"`
	Strict    *bool   `toml:"strict"`
	LogDenied *bool   `toml:"log_denied"`
}

// LimitsSection holds the limits; Cpus may be a number or a string.
type LimitsSection struct {
	Memory     *string `toml:"memory"`
	MemorySwap *string `toml:"memory_swap"`
	Cpus       any     `toml:"cpus"`
	Pids       *int64  `toml:"pids"`
	CPUWeight  *int64  `toml:"cpu_weight"`
	IOWeight   *int64  `toml:"io_weight"`
}

// kind is the operation a (checked) entry stands for; value its text.
func (m MountEntry) kind() FSKind {
	switch {
	case m.Rw != nil:
		return FSRw
	case m.Tmpfs != nil:
		return FSTmpfs
	case m.Hide != nil:
		return FSHide
	}
	return FSRo
}

func (m MountEntry) value() *string {
	return map[FSKind]*string{FSRo: m.Ro, FSRw: m.Rw, FSTmpfs: m.Tmpfs, FSHide: m.Hide}[m.kind()]
}

type pos struct{ line, col int }

// ProfileError is an error in a profile, located in its file.
type ProfileError struct {
	Source    string
	Line, Col int
	Msg       string
}

func (e *ProfileError) Error() string {
	if e.Line == 0 {
		return e.Source + ": " + e.Msg
	}
	return fmt.Sprintf("%s:%d:%d: %s", e.Source, e.Line, e.Col, e.Msg)
}

// Is makes every ProfileError a usage error.
func (e *ProfileError) Is(target error) bool { return target == ErrUsage }

// errAt is an error at the position of key (a dotted path such as
// "limits.memory" or "mount.3"), or at the top of the file.
func (p *Profile) errAt(key string, format string, args ...any) error {
	at := p.pos[key]
	return &ProfileError{Source: p.Source, Line: at.line, Col: at.col, Msg: fmt.Sprintf(format, args...)}
}

// DecodeProfile decodes a profile strictly: a syntax error, an unknown
// key, a wrong type or a bad value is an error naming source:line:col.
// Values holding variables are checked with stand-ins of the variables'
// shape (sampleVars), and again once expanded (ApplyProfiles).
func DecodeProfile(source string, data []byte) (*Profile, error) {
	p := &Profile{Source: source}
	var err error
	if p.pos, err = decodeStrict(source, data, p); err != nil {
		return nil, err
	}
	if err := p.check(); err != nil {
		return nil, err
	}
	return p, nil
}

// check validates what can be validated before variables are expanded.
func (p *Profile) check() error {
	if _, ok := p.pos["version"]; !ok {
		return &ProfileError{Source: p.Source, Line: 1, Col: 1, Msg: fmt.Sprintf("no version key (want version = %d)", ProfileVersion)}
	}
	if p.Version != ProfileVersion {
		return p.errAt("version", "version %d: this sbx reads version %d", p.Version, ProfileVersion)
	}
	for i, m := range p.Mount {
		n := 0
		for _, v := range []*string{m.Ro, m.Rw, m.Tmpfs, m.Hide} {
			if v != nil {
				n++
				if *v == "" {
					return p.errAt(fmt.Sprintf("mount.%d", i), "empty path")
				}
			}
		}
		if n != 1 {
			return p.errAt(fmt.Sprintf("mount.%d", i), "a [[mount]] takes exactly one of ro, rw, tmpfs, hide")
		}
	}
	for _, e := range p.Extends {
		if e == "" {
			return p.errAt("extends", "empty profile name")
		}
		if _, err := Expand(e, sampleVars); err != nil {
			return p.errAt("extends", "extends %q: %v", e, err)
		}
	}
	l := p.Limits
	if l.Cpus != nil {
		switch v := l.Cpus.(type) {
		case float64, int64, string:
		default:
			return p.errAt("limits.cpus", "cpus: want a number, got %T", v)
		}
	}
	for key, v := range map[string]*int64{"limits.pids": l.Pids, "limits.cpu_weight": l.CPUWeight, "limits.io_weight": l.IOWeight} {
		if v != nil && *v <= 0 {
			return p.errAt(key, "%s = %d: want a positive number", key, *v)
		}
	}
	// Every value, checked as it is where the profile is applied, with
	// variables of the right shape: a value that could never be right
	// is refused here, by sbx profile check too, not at the first run.
	return newFolder(sampleVars, false).profile(p)
}

// positions maps the keys of a TOML document to where they stand:
// "run.net", "mount.0" (the header of the first [[mount]]),
// "mount.0.ro", "env.set.NAME", ...
func positions(data []byte) (map[string]pos, error) {
	out := map[string]pos{}
	var p unstable.Parser
	p.Reset(data)
	prefix := ""
	arrays := map[string]int{}
	for p.NextExpression() {
		e := p.Expression()
		switch e.Kind {
		case unstable.Table, unstable.ArrayTable:
			k := keyOf(e.Key())
			if e.Kind == unstable.ArrayTable {
				i := arrays[k]
				arrays[k] = i + 1
				k = k + "." + strconv.Itoa(i)
			}
			prefix = k
			if kr := e.Key(); kr.Next() {
				out[k] = shapeOf(data, p.Shape(kr.Node().Raw).Start)
			}
		case unstable.KeyValue:
			k := keyOf(e.Key())
			if prefix != "" {
				k = prefix + "." + k
			}
			v := e.Value()
			at := shapeOf(data, p.Shape(v.Raw).Start)
			if kr := e.Key(); kr.Next() {
				at = shapeOf(data, p.Shape(kr.Node().Raw).Start)
			}
			out[k] = at
			nestedPositions(&p, data, out, k, v)
		}
	}
	return out, p.Error()
}

// nestedPositions adds where the keys of an inline table stand, at any
// depth ("env.set.A" in env = { set = { A = "1" } }), and the inline
// tables of an array ("mount.1" in mount = [{...}, {...}]).
func nestedPositions(p *unstable.Parser, data []byte, out map[string]pos, k string, v *unstable.Node) {
	switch v.Kind {
	case unstable.InlineTable:
		for it := v.Children(); it.Next(); {
			kv := it.Node()
			kk := k + "." + keyOf(kv.Key())
			out[kk] = shapeOf(data, p.Shape(kv.Raw).Start)
			nestedPositions(p, data, out, kk, kv.Value())
		}
	case unstable.Array:
		i := 0
		for it := v.Children(); it.Next(); i++ {
			if el := it.Node(); el.Kind == unstable.InlineTable {
				kk := k + "." + strconv.Itoa(i)
				out[kk] = shapeOf(data, p.Shape(el.Raw).Start)
				nestedPositions(p, data, out, kk, el)
			}
		}
	}
}

func keyOf(it unstable.Iterator) string {
	var parts []string
	for it.Next() {
		parts = append(parts, string(it.Node().Data))
	}
	return strings.Join(parts, ".")
}

// shapeOf turns a parser position (or a highlighted slice of data) into
// a line and column.
func shapeOf(data []byte, at any) pos {
	switch a := at.(type) {
	case unstable.Position:
		return pos{a.Line, a.Column}
	case []byte:
		off := len(data)
		if len(a) > 0 {
			for i := range data {
				if &data[i] == &a[0] {
					off = i
					break
				}
			}
		}
		line := 1 + bytes.Count(data[:off], []byte("\n"))
		col := off - bytes.LastIndexByte(data[:off], '\n')
		return pos{line, col}
	}
	return pos{}
}
