package tests

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// proc is what the tests need from /proc/PID/stat and friends.
type proc struct {
	pid, ppid, session int
	state              byte
	start              uint64 // starttime, to tell a reused pid apart
	cmdline            string // NUL bytes replaced by spaces
	pidns              string // readlink of ns/pid; "" if unreadable
}

// readProc reads one process; ok is false if it is gone or unreadable.
func readProc(pid int) (proc, bool) {
	dir := filepath.Join("/proc", strconv.Itoa(pid))
	b, err := os.ReadFile(filepath.Join(dir, "stat"))
	if err != nil {
		return proc{}, false
	}
	// comm may contain spaces and parentheses: fields start after the last ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return proc{}, false
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 20 {
		return proc{}, false
	}
	p := proc{pid: pid, state: f[0][0]}
	p.ppid, _ = strconv.Atoi(f[1])
	p.session, _ = strconv.Atoi(f[3])
	p.start, _ = strconv.ParseUint(f[19], 10, 64)
	if c, err := os.ReadFile(filepath.Join(dir, "cmdline")); err == nil {
		p.cmdline = strings.TrimSpace(strings.ReplaceAll(string(c), "\x00", " "))
	}
	p.pidns, _ = os.Readlink(filepath.Join(dir, "ns", "pid"))
	return p, true
}

// allProcs returns every process this user can see.
func allProcs() []proc {
	ents, _ := os.ReadDir("/proc")
	var out []proc
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if p, ok := readProc(pid); ok {
			out = append(out, p)
		}
	}
	return out
}

// descendants returns the live descendants of pid.
func descendants(pid int) []proc {
	all := allProcs()
	children := map[int][]proc{}
	for _, p := range all {
		children[p.ppid] = append(children[p.ppid], p)
	}
	var out []proc
	queue := []int{pid}
	for len(queue) > 0 {
		q := queue[0]
		queue = queue[1:]
		for _, c := range children[q] {
			out = append(out, c)
			queue = append(queue, c.pid)
		}
	}
	return out
}

// alive reports whether p (same pid, same start time) still exists and is not a zombie.
func alive(p proc) bool {
	q, ok := readProc(p.pid)
	return ok && q.start == p.start && q.state != 'Z' && q.state != 'X'
}

// findDescendant polls until a descendant of pid has a cmdline equal to cmdline.
func findDescendant(t *testing.T, pid int, cmdline string, d time.Duration) proc {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		for _, p := range descendants(pid) {
			if p.cmdline == cmdline {
				return p
			}
		}
		if time.Now().After(deadline) {
			var seen []string
			for _, p := range descendants(pid) {
				seen = append(seen, strconv.Itoa(p.pid)+":"+p.cmdline)
			}
			t.Fatalf("no descendant of pid %d runs %q within %v; descendants: %q", pid, cmdline, d, seen)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// inPidNS returns the processes whose pid namespace link equals ns.
func inPidNS(ns string) []proc {
	var out []proc
	for _, p := range allProcs() {
		if p.pidns == ns {
			out = append(out, p)
		}
	}
	return out
}

// requireNSEmpty polls until no process is left in pid namespace ns.
func requireNSEmpty(t *testing.T, ns string, d time.Duration) {
	t.Helper()
	if !strings.HasPrefix(ns, "pid:[") {
		t.Fatalf("payload printed %q, not a pid namespace link", ns)
	}
	if self, _ := os.Readlink("/proc/self/ns/pid"); ns == self {
		t.Fatalf("the payload runs in the test's own pid namespace %s", ns)
	}
	deadline := time.Now().Add(d)
	for {
		left := inPidNS(ns)
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			var seen []string
			for _, p := range left {
				seen = append(seen, strconv.Itoa(p.pid)+":"+p.cmdline)
			}
			t.Fatalf("processes of the sandbox's %s survive sbx by %v: %q", ns, d, seen)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
