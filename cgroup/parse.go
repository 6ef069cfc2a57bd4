package cgroup

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Mounts is what /proc/self/mountinfo says about cgroups.
type Mounts struct {
	V2 string   // mount point of the cgroup2 hierarchy, "" when none
	V1 []string // controllers bound to cgroup v1 hierarchies (hybrid hosts)
	// AllV2 lists every cgroup2 mount point (binds included), first V2.
	AllV2 []string
}

// ParseMountinfo reads /proc/self/mountinfo text (proc(5)). The cgroup2
// hierarchy is found where it is mounted, never assumed at
// /sys/fs/cgroup (hybrid hosts mount it at /sys/fs/cgroup/unified).
func ParseMountinfo(r io.Reader) (Mounts, error) {
	var m Mounts
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for sc.Scan() {
		// id parent major:minor root mountpoint options [optional...] - fstype source superoptions
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		if !ok {
			continue
		}
		f := strings.Fields(pre)
		t := strings.Fields(post)
		if len(f) < 5 || len(t) < 1 {
			continue
		}
		switch t[0] {
		case "cgroup2":
			if m.V2 == "" {
				m.V2 = unescape(f[4])
			}
			m.AllV2 = append(m.AllV2, unescape(f[4]))
		case "cgroup":
			if len(t) >= 3 {
				for _, o := range strings.Split(t[2], ",") {
					switch o {
					case "cpu", "memory", "pids", "io", "blkio", "cpuset":
						m.V1 = append(m.V1, o)
					}
				}
			}
		}
	}
	return m, sc.Err()
}

// unescape undoes mountinfo's octal escapes (\040 for a space).
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// ParseProcCgroup returns the cgroup v2 path ("0::PATH" line) of
// /proc/PID/cgroup text (cgroups(7)).
func ParseProcCgroup(r io.Reader) (string, error) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		if p, ok := strings.CutPrefix(sc.Text(), "0::"); ok {
			return p, nil
		}
	}
	if err := sc.Err(); err != nil {
		return "", err
	}
	return "", fmt.Errorf("no cgroup v2 entry")
}

// ParseFlatKeyed parses a flat-keyed cgroup file (memory.events,
// cpu.stat): "key value" lines.
func ParseFlatKeyed(r io.Reader) (map[string]uint64, error) {
	out := map[string]uint64{}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		k, v, ok := strings.Cut(strings.TrimSpace(sc.Text()), " ")
		if !ok {
			continue
		}
		n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
		if err != nil {
			continue
		}
		out[k] = n
	}
	return out, sc.Err()
}
