package userns

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"sbx/idmap"
)

// ErrHelper is wrapped when newuidmap or newgidmap refuses a map.
var ErrHelper = errors.New("id map helper failed")

// Helpers returns the paths of newuidmap and newgidmap found on PATH, or
// "" for one that is missing.
func Helpers() (uidHelper, gidHelper string) {
	uidHelper, _ = exec.LookPath("newuidmap")
	gidHelper, _ = exec.LookPath("newgidmap")
	return uidHelper, gidHelper
}

// HelperDir is a system directory that holds both newuidmap and
// newgidmap, for the fix when PATH leads to neither; "" if none does.
func HelperDir() string {
	for _, dir := range []string{"/usr/bin", "/bin", "/usr/sbin", "/sbin"} {
		_, uerr := exec.LookPath(dir + "/newuidmap")
		_, gerr := exec.LookPath(dir + "/newgidmap")
		if uerr == nil && gerr == nil {
			return dir
		}
	}
	return ""
}

// SubIDs returns the caller's subordinate uid and gid ranges: from
// /etc/subuid and /etc/subgid, or, where the files have no entry for the
// user, from getsubids(1) (libsubid: LDAP, sssd and other sources).
// source says which answered.
func SubIDs(user string, uid uint32) (uids, gids []idmap.Range, source string, err error) {
	uids, err = fileRanges("/etc/subuid", user, uid)
	if err != nil {
		return nil, nil, "", err
	}
	gids, err = fileRanges("/etc/subgid", user, uid)
	if err != nil {
		return nil, nil, "", err
	}
	if len(uids) > 0 && len(gids) > 0 {
		return uids, gids, "/etc/subuid, /etc/subgid", nil
	}
	if _, lerr := exec.LookPath("getsubids"); lerr != nil || user == "" {
		return uids, gids, "/etc/subuid, /etc/subgid", nil
	}
	if len(uids) == 0 {
		uids = getsubids(user, false)
	}
	if len(gids) == 0 {
		gids = getsubids(user, true)
	}
	return uids, gids, "getsubids", nil
}

func fileRanges(path, user string, uid uint32) ([]idmap.Range, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	defer f.Close()
	r, err := idmap.ParseSubID(f, user, uid)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return r, nil
}

// getsubids asks libsubid; a failure means "no ranges from there".
func getsubids(user string, group bool) []idmap.Range {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	args := []string{user}
	if group {
		args = []string{"-g", user}
	}
	out, err := exec.CommandContext(ctx, "getsubids", args...).Output()
	if err != nil {
		return nil
	}
	r, err := idmap.ParseGetsubids(bytes.NewReader(out))
	if err != nil {
		return nil
	}
	return r
}

// HelperStart starts path with argv, an empty environment and stdio as
// its descriptors 0, 1 and 2, and returns its pid once it has exec'd.
type HelperStart func(path string, argv []string, stdio [3]int) (int, error)

// WriteWithHelpers writes the uid and gid maps of the user namespace of
// process pid with newuidmap and newgidmap, run side by side, each
// started by start (nil: syscall.StartProcess).
func WriteWithHelpers(pid int, uidHelper, gidHelper string, uids, gids idmap.Map, start HelperStart) error {
	errs := make(chan error, 2)
	run := func(helper string, m idmap.Map) {
		args := m.HelperArgs(pid)
		if msg, err := runHelper(helper, args, start); err != nil {
			if msg == "" {
				msg = err.Error()
			}
			errs <- fmt.Errorf("%w: %s %s: %s", ErrHelper, helper, strings.Join(args, " "), msg)
			return
		}
		errs <- nil
	}
	go run(uidHelper, uids)
	go run(gidHelper, gids)
	return errors.Join(<-errs, <-errs)
}

// runHelper runs a setuid helper with start, an empty environment, and
// returns what it printed on stderr.
func runHelper(path string, args []string, start HelperStart) (string, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return "", err
	}
	defer r.Close()
	null, err := os.Open(os.DevNull)
	if err != nil {
		w.Close()
		return "", err
	}
	defer null.Close()
	pid, err := start(path, append([]string{path}, args...), [3]int{int(null.Fd()), int(null.Fd()), int(w.Fd())})
	w.Close()
	if err != nil {
		return "", err
	}
	msg, _ := io.ReadAll(io.LimitReader(r, 4096))
	var ws syscall.WaitStatus
	for {
		_, err = syscall.Wait4(pid, &ws, 0, nil)
		if err != syscall.EINTR {
			break
		}
	}
	if err != nil {
		return "", err
	}
	if !ws.Exited() || ws.ExitStatus() != 0 {
		return strings.TrimSpace(string(msg)), fmt.Errorf("%s: exit status %d", path, ws.ExitStatus())
	}
	return "", nil
}

// WriteDirect writes single-id maps as an unprivileged process may: its
// own uid and gid only, with setgroups(2) denied (user_namespaces(7)).
func WriteDirect(pid int, uids, gids idmap.Map) error {
	base := "/proc/" + strconv.Itoa(pid) + "/"
	if err := os.WriteFile(base+"setgroups", []byte("deny"), 0); err != nil {
		return fmt.Errorf("write %ssetgroups: %w", base, err)
	}
	if err := os.WriteFile(base+"gid_map", []byte(gids.String()), 0); err != nil {
		return fmt.Errorf("write %sgid_map: %w", base, err)
	}
	if err := os.WriteFile(base+"uid_map", []byte(uids.String()), 0); err != nil {
		return fmt.Errorf("write %suid_map: %w", base, err)
	}
	return nil
}
