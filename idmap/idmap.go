package idmap

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// MaxID is the largest id a map may reach; (uid_t)-1 is reserved.
const MaxID = 1<<32 - 2

// MaxLines is the kernel's limit on lines in one uid_map or gid_map
// (user_namespaces(7), since Linux 4.15).
const MaxLines = 340

// Range is a run of Count ids starting at Start, as a line of
// /etc/subuid grants.
type Range struct {
	Start uint32 `json:"start"`
	Count uint32 `json:"count"`
}

// Mapping is one line of a uid_map: Count ids starting at Inside in the
// new namespace are Count ids starting at Outside in its parent.
type Mapping struct {
	Inside  uint32 `json:"inside"`
	Outside uint32 `json:"outside"`
	Count   uint32 `json:"count"`
}

// Map is a whole uid_map or gid_map.
type Map []Mapping

// ErrInvalid is wrapped by every validation failure.
var ErrInvalid = errors.New("invalid id map")

// Single maps one id.
func Single(inside, outside uint32) Map {
	return Map{{Inside: inside, Outside: outside, Count: 1}}
}

// Rootful is the map of the sandbox's outer user namespace: inside id 0
// is the caller's own id and ids 1.. are the subordinate ranges, in the
// order given. This is the layout of rootless podman and rootlesskit.
func Rootful(caller uint32, subs []Range) Map {
	m := Map{{Inside: 0, Outside: caller, Count: 1}}
	next := uint32(1)
	for _, r := range subs {
		if r.Count == 0 {
			continue
		}
		m = append(m, Mapping{Inside: next, Outside: r.Start, Count: r.Count})
		next += r.Count
	}
	return m
}

// Identity maps ids 0..size-1 of a nested namespace onto the same ids of
// its parent.
func Identity(size uint32) Map {
	if size == 0 {
		return nil
	}
	return Map{{Inside: 0, Outside: 0, Count: size}}
}

// KeepID is the map of a namespace nested in a Rootful one (whose ids run
// 0..size-1, 0 being the caller) that shows the caller as id instead of
// 0: inside id is parent 0, and the other parent ids 1..size-1 fill the
// inside ids around it in order, so subordinate id k of the caller is
// inside id k when k < id, and k+1 otherwise (podman's --userns=keep-id).
func KeepID(id, size uint32) Map {
	if size == 0 {
		return nil
	}
	m := Map{}
	rest := size - 1 // parent ids 1..size-1
	below := min(id, rest)
	if below > 0 {
		m = append(m, Mapping{Inside: 0, Outside: 1, Count: below})
	}
	m = append(m, Mapping{Inside: id, Outside: 0, Count: 1})
	if above := rest - below; above > 0 {
		m = append(m, Mapping{Inside: id + 1, Outside: 1 + below, Count: above})
	}
	m.sort()
	return m
}

// SplitAlong splits the lines of m, a map of a namespace nested in one
// whose map is parent, so that each line's outside ids lie within one
// line of parent: the kernel translates every line through a single
// extent of the parent's map and refuses the write otherwise. Outside
// ids that parent does not map are dropped.
func (m Map) SplitAlong(parent Map) Map {
	var out Map
	for _, l := range m {
		lo, hi := uint64(l.Outside), uint64(l.Outside)+uint64(l.Count) // [lo, hi)
		for _, p := range parent {
			plo, phi := uint64(p.Inside), uint64(p.Inside)+uint64(p.Count)
			a, b := max(lo, plo), min(hi, phi)
			if a >= b {
				continue
			}
			out = append(out, Mapping{Inside: l.Inside + uint32(a-lo), Outside: uint32(a), Count: uint32(b - a)})
		}
	}
	out.sort()
	return out
}

// Compose maps a namespace nested in one whose map is outer straight
// onto outer's parent: inner's outside ids are translated through outer.
// Lines are split where outer's are, and ids outer does not map dropped.
func Compose(inner, outer Map) Map {
	out := inner.SplitAlong(outer)
	for i, l := range out {
		out[i].Outside, _ = outer.ToOutside(l.Outside)
	}
	return out
}

// HostKeepID is the map of a user namespace whose parent is the host's
// that shows the caller as their own id: inside id is the caller, and
// the subordinate ranges fill the other inside ids in order, as
// KeepID(id, ...) composed over Rootful(caller, subs).
func HostKeepID(id, caller uint32, subs []Range) Map {
	outer := Rootful(caller, subs)
	return Compose(KeepID(id, uint32(min(outer.Size(), MaxID))), outer)
}

// Size is the number of ids the map covers.
func (m Map) Size() uint64 {
	var n uint64
	for _, l := range m {
		n += uint64(l.Count)
	}
	return n
}

// ToOutside translates an inside id; ok is false when it is not mapped.
func (m Map) ToOutside(inside uint32) (uint32, bool) {
	for _, l := range m {
		if inside >= l.Inside && uint64(inside) < uint64(l.Inside)+uint64(l.Count) {
			return l.Outside + (inside - l.Inside), true
		}
	}
	return 0, false
}

// ToInside translates an outside id; ok is false when it is not mapped.
func (m Map) ToInside(outside uint32) (uint32, bool) {
	for _, l := range m {
		if outside >= l.Outside && uint64(outside) < uint64(l.Outside)+uint64(l.Count) {
			return l.Inside + (outside - l.Outside), true
		}
	}
	return 0, false
}

// Validate checks what the kernel checks when the map is written: at
// least one and at most MaxLines lines, no empty line, no id past MaxID,
// and no two lines overlapping on either side.
func (m Map) Validate() error {
	if len(m) == 0 {
		return fmt.Errorf("%w: no lines", ErrInvalid)
	}
	if len(m) > MaxLines {
		return fmt.Errorf("%w: %d lines, the kernel takes at most %d", ErrInvalid, len(m), MaxLines)
	}
	for i, l := range m {
		if l.Count == 0 {
			return fmt.Errorf("%w: line %d (%s) has count 0", ErrInvalid, i+1, l)
		}
		if uint64(l.Inside)+uint64(l.Count)-1 > MaxID || uint64(l.Outside)+uint64(l.Count)-1 > MaxID {
			return fmt.Errorf("%w: line %d (%s) runs past id %d", ErrInvalid, i+1, l, uint64(MaxID))
		}
		for j := 0; j < i; j++ {
			o := m[j]
			if overlap(l.Inside, l.Count, o.Inside, o.Count) {
				return fmt.Errorf("%w: lines %d and %d overlap inside", ErrInvalid, j+1, i+1)
			}
			if overlap(l.Outside, l.Count, o.Outside, o.Count) {
				return fmt.Errorf("%w: lines %d and %d overlap outside", ErrInvalid, j+1, i+1)
			}
		}
	}
	return nil
}

func overlap(a, an, b, bn uint32) bool {
	return uint64(a) < uint64(b)+uint64(bn) && uint64(b) < uint64(a)+uint64(an)
}

func (l Mapping) String() string {
	return fmt.Sprintf("%d %d %d", l.Inside, l.Outside, l.Count)
}

// String renders the map as /proc/PID/uid_map text, one line per mapping.
func (m Map) String() string {
	var b strings.Builder
	for _, l := range m {
		b.WriteString(l.String())
		b.WriteByte('\n')
	}
	return b.String()
}

// HelperArgs is the argument vector of newuidmap(1) or newgidmap(1),
// without the program name: the target pid, then one triple per line.
func (m Map) HelperArgs(pid int) []string {
	args := []string{strconv.Itoa(pid)}
	for _, l := range m {
		args = append(args,
			strconv.FormatUint(uint64(l.Inside), 10),
			strconv.FormatUint(uint64(l.Outside), 10),
			strconv.FormatUint(uint64(l.Count), 10))
	}
	return args
}

func (m Map) sort() {
	for i := 1; i < len(m); i++ {
		for j := i; j > 0 && m[j].Inside < m[j-1].Inside; j-- {
			m[j], m[j-1] = m[j-1], m[j]
		}
	}
}
