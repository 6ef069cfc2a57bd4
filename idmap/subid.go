package idmap

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// ErrNoSubIDs says that a source grants the user no subordinate ids.
var ErrNoSubIDs = errors.New("no subordinate ids")

// ParseSubID reads subuid(5)/subgid(5) text and returns, in file order,
// the ranges granted to the user named name or to its numeric uid.
// Blank lines and lines starting with '#' are skipped. A malformed line
// that names the user is an error carrying its line number; malformed
// lines of other users are not ours to judge and are skipped, as
// shadow's own tools do. Empty ranges are dropped.
func ParseSubID(r io.Reader, name string, uid uint32) ([]Range, error) {
	id := strconv.FormatUint(uint64(uid), 10)
	var out []Range
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		owner, rest, _ := strings.Cut(line, ":")
		if owner != id && (name == "" || owner != name) {
			continue
		}
		startS, countS, ok := strings.Cut(rest, ":")
		if !ok {
			return nil, fmt.Errorf("line %d: want owner:start:count, got %q", n, line)
		}
		rg, err := parseRange(startS, countS)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
		if rg.Count > 0 {
			out = append(out, rg)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

// ParseGetsubids reads the output of getsubids(1): one line per range,
// "INDEX: OWNER START COUNT".
func ParseGetsubids(r io.Reader) ([]Range, error) {
	var out []Range
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		f := strings.Fields(line)
		if len(f) != 4 || !strings.HasSuffix(f[0], ":") {
			return nil, fmt.Errorf("getsubids line %d: want \"N: owner start count\", got %q", n, line)
		}
		rg, err := parseRange(f[2], f[3])
		if err != nil {
			return nil, fmt.Errorf("getsubids line %d: %w", n, err)
		}
		if rg.Count > 0 {
			out = append(out, rg)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

func parseRange(startS, countS string) (Range, error) {
	start, err := strconv.ParseUint(strings.TrimSpace(startS), 10, 32)
	if err != nil {
		return Range{}, fmt.Errorf("start %q: not an id", startS)
	}
	count, err := strconv.ParseUint(strings.TrimSpace(countS), 10, 32)
	if err != nil {
		return Range{}, fmt.Errorf("count %q: not a count", countS)
	}
	if count > 0 && start+count-1 > MaxID {
		return Range{}, fmt.Errorf("range %d+%d runs past id %d", start, count, uint64(MaxID))
	}
	return Range{Start: uint32(start), Count: uint32(count)}, nil
}

// Usable drops ranges that overlap the caller's own id or an earlier
// range (a map with overlaps is refused by the kernel) and caps the total
// so that the composed map stays within MaxID inside ids.
func Usable(caller uint32, subs []Range) []Range {
	var out []Range
	total := uint64(1)
	for _, r := range subs {
		if r.Count == 0 || overlap(r.Start, r.Count, caller, 1) {
			continue
		}
		clash := false
		for _, o := range out {
			if overlap(r.Start, r.Count, o.Start, o.Count) {
				clash = true
				break
			}
		}
		// Leave room for the caller's own line and for the two lines
		// KeepID may split off (see Map.SplitAlong).
		if clash || len(out)+4 > MaxLines {
			continue
		}
		if total+uint64(r.Count) > MaxID {
			r.Count = uint32(MaxID - total)
			if r.Count == 0 {
				break
			}
		}
		out = append(out, r)
		total += uint64(r.Count)
	}
	return out
}
