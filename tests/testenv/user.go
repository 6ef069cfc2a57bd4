package testenv

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
)

// path is the PATH of a command started by Command.
const path = "/usr/local/bin:/usr/bin:/bin"

// ErrNoUser is returned by LookupUser for a name that /etc/passwd lacks.
var ErrNoUser = errors.New("no such user")

// User is a line of passwd(5).
type User struct {
	Name, Home string
	UID, GID   uint32
}

// LookupUser reads /etc/passwd itself; see the package comment for why
// not os/user.
func LookupUser(name string) (User, error) {
	data, err := os.ReadFile("/etc/passwd")
	if err != nil {
		return User{}, err
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		f := strings.Split(line, ":")
		if len(f) != 7 || f[0] != name {
			continue
		}
		uid, err1 := strconv.ParseUint(f[2], 10, 32)
		gid, err2 := strconv.ParseUint(f[3], 10, 32)
		if err1 != nil || err2 != nil {
			return User{}, fmt.Errorf("/etc/passwd: bad ids for %s: %q", name, line)
		}
		return User{Name: name, Home: f[5], UID: uint32(uid), GID: uint32(gid)}, nil
	}
	return User{}, fmt.Errorf("user %s: %w", name, ErrNoUser)
}

// EnsureUser creates the user name with useradd(8) if it is missing,
// creates its home directory if that is missing, and then either gives it
// a range in /etc/subuid and /etc/subgid where it has none (withRanges) or
// removes every range it has there. logf is told each change made.
func EnsureUser(name string, withRanges bool, logf func(format string, args ...any)) (User, error) {
	u, err := LookupUser(name)
	if errors.Is(err, ErrNoUser) {
		out, addErr := exec.Command("useradd", "-m", "-s", "/bin/bash", name).CombinedOutput()
		if addErr != nil {
			return User{}, fmt.Errorf("useradd %s: %w: %s", name, addErr, bytes.TrimSpace(out))
		}
		logf("created user %s", name)
		u, err = LookupUser(name)
	}
	if err != nil {
		return User{}, err
	}
	if fi, err := os.Stat(u.Home); err != nil || !fi.IsDir() {
		if err := os.MkdirAll(u.Home, 0o700); err != nil {
			return User{}, fmt.Errorf("home of %s: %w", name, err)
		}
		if err := os.Chown(u.Home, int(u.UID), int(u.GID)); err != nil {
			return User{}, fmt.Errorf("home of %s: %w", name, err)
		}
	}
	uid := strconv.FormatUint(uint64(u.UID), 10)
	for _, file := range []string{"/etc/subuid", "/etc/subgid"} {
		if withRanges {
			err = addRange(file, name, uid, logf)
		} else {
			err = removeRanges(file, name, uid, logf)
		}
		if err != nil {
			return User{}, err
		}
	}
	return u, nil
}

// Command returns a command that runs name as u, with u's uid, gid and
// (as login(1) would set them) groups, and a clean environment: HOME,
// USER, LOGNAME and PATH. The caller adds to Env and sets Dir and the
// standard streams.
func Command(u User, name string, args ...string) *exec.Cmd {
	cmd := exec.Command(name, args...)
	cmd.Env = []string{"HOME=" + u.Home, "USER=" + u.Name, "LOGNAME=" + u.Name, "PATH=" + path}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{
		Uid: u.UID, Gid: u.GID, Groups: []uint32{u.GID},
	}}
	return cmd
}

// SubIDRange is one line of subuid(5)/subgid(5).
type SubIDRange struct {
	Owner        string // a user name or uid
	Start, Count uint64
}

// ParseSubIDs returns the ranges in subuid(5)/subgid(5) text, skipping
// comments and malformed or empty ranges.
func ParseSubIDs(r io.Reader) []SubIDRange {
	var out []SubIDRange
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Split(line, ":")
		if len(f) != 3 {
			continue
		}
		start, err1 := strconv.ParseUint(f[1], 10, 64)
		count, err2 := strconv.ParseUint(f[2], 10, 64)
		if err1 != nil || err2 != nil || count == 0 {
			continue
		}
		out = append(out, SubIDRange{Owner: f[0], Start: start, Count: count})
	}
	return out
}

// SubIDRanges returns the ranges in file that belong to the user, by
// name or by uid; a missing file has none.
func SubIDRanges(file, name, uid string) ([]SubIDRange, error) {
	b, err := os.ReadFile(file)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []SubIDRange
	for _, r := range ParseSubIDs(bytes.NewReader(b)) {
		if r.Owner == name || r.Owner == uid {
			out = append(out, r)
		}
	}
	return out, nil
}

// addRange gives the user 65536 ids in file, after every range already
// there (and from 100000 at the least), unless it has a range already.
func addRange(file, name, uid string, logf func(format string, args ...any)) error {
	b, err := os.ReadFile(file)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	start := uint64(100000)
	for _, r := range ParseSubIDs(bytes.NewReader(b)) {
		if r.Owner == name || r.Owner == uid {
			return nil
		}
		start = max(start, r.Start+r.Count)
	}
	if len(b) > 0 && !bytes.HasSuffix(b, []byte("\n")) {
		b = append(b, '\n')
	}
	line := fmt.Sprintf("%s:%d:65536", name, start)
	if err := writeAtomic(file, append(b, line+"\n"...)); err != nil {
		return err
	}
	logf("added %s to %s", line, file)
	return nil
}

// removeRanges drops every line of file that names the user.
func removeRanges(file, name, uid string, logf func(format string, args ...any)) error {
	b, err := os.ReadFile(file)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var kept []string
	changed := false
	for _, line := range strings.SplitAfter(string(b), "\n") {
		owner, _, _ := strings.Cut(strings.TrimSpace(line), ":")
		if owner == name || owner == uid {
			changed = true
			continue
		}
		kept = append(kept, line)
	}
	if !changed {
		return nil
	}
	if err := writeAtomic(file, []byte(strings.Join(kept, ""))); err != nil {
		return err
	}
	logf("removed the ranges of %s from %s", name, file)
	return nil
}

func writeAtomic(file string, b []byte) error {
	tmp := file + ".sbx-tests"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, file)
}
