package sandbox

import (
	"os"
	"strconv"
	"time"

	"golang.org/x/sys/unix"

	"sbx/cgroup"
	"sbx/policy"
)

// Stage names, carried in argv[0] of the re-executed binary (and, for
// init, in stage_linux.h). The payload never sees them: its argv comes
// from the plan.
const stageInit = "sbx:init"

// Stage returns the stage that this process is, selected by argv[0], or
// nil when the process is the sbx command itself. cmd/sbx calls it
// before anything else and exits with what the stage returns.
func Stage(args []string) func() int {
	if len(args) == 1 && args[0] == cgroup.HolderArg {
		return holderMain
	}
	// init's argv: the name, its control descriptor, and the namespaces
	// that its constructor unshares (stage_linux.c).
	if len(args) != 3 {
		return nil
	}
	fd, err := strconv.Atoi(args[1])
	if err != nil || fd < 3 {
		return nil
	}
	unshare, err := strconv.ParseUint(args[2], 10, 64)
	if err != nil || args[0] != stageInit {
		return nil
	}
	return func() int { return initMain(fd, uintptr(unshare)) }
}

// stageFiles lays out the descriptors of a child stage: 0, 1 and 2,
// each kept descriptor at its own number, then the control socket, the
// plan and the seccomp filter at the first three numbers above them. It
// returns the files and the control socket's number (the plan's and the
// filter's are the next two).
func stageFiles(keep []int, ctl, plan, filter *os.File) ([]*os.File, int) {
	top := 2
	for _, fd := range keep {
		top = max(top, fd)
	}
	files := make([]*os.File, top+4)
	files[0], files[1], files[2] = os.Stdin, os.Stdout, os.Stderr
	for _, fd := range keep {
		files[fd] = os.NewFile(uintptr(fd), "fd"+strconv.Itoa(fd))
	}
	files[top+1], files[top+2], files[top+3] = ctl, plan, filter
	return files, top + 1
}

// fileFds is the descriptor list of syscall.ProcAttr; nil is closed.
func fileFds(files []*os.File) []uintptr {
	fds := make([]uintptr, len(files))
	for i, f := range files {
		if f == nil {
			fds[i] = ^uintptr(0)
		} else {
			fds[i] = f.Fd()
		}
	}
	return fds
}

// initUnshare are the namespaces init's constructor unshares for p: all
// but its user and pid namespaces, which it is cloned into.
func initUnshare(p *policy.Plan) uintptr {
	flags := uintptr(unix.CLONE_NEWNS | unix.CLONE_NEWIPC | unix.CLONE_NEWUTS | unix.CLONE_NEWCGROUP)
	if p.Namespaces.Net {
		flags |= unix.CLONE_NEWNET
	}
	return flags
}

func stageArgs(stage string, fd int, unshare uintptr) []string {
	return []string{stage, strconv.Itoa(fd), strconv.FormatUint(uint64(unshare), 10)}
}

// holderMain is the process of the session's cgroup subtree (see
// cgroup.StartSubtree): it keeps the service alive and, once a second,
// removes the leaves of sandboxes whose launcher was killed.
func holderMain() int {
	st, err := cgroup.SubtreeOfSelf()
	if err != nil {
		os.Stderr.WriteString("sbx: holder: " + err.Error() + "\n")
		return 125
	}
	for {
		st.Sweep()
		time.Sleep(time.Second)
	}
}
