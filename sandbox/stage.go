package sandbox

import (
	"fmt"
	"os"
	"strconv"
)

// Stage names, carried in argv[0] of the re-executed binary. The payload
// never sees them: its argv comes from the plan.
const (
	stageInit = "sbx:init"
	stagePID1 = "sbx:pid1"
	stageExec = "sbx:exec"
)

// Stage returns the stage that this process is, selected by argv[0], or
// nil when the process is the sbx command itself. cmd/sbx calls it
// before anything else and exits with what the stage returns.
func Stage(args []string) func() int {
	if len(args) != 2 {
		return nil
	}
	fd, err := strconv.Atoi(args[1])
	if err != nil || fd < 3 {
		return nil
	}
	switch args[0] {
	case stageInit:
		return func() int { return initMain(fd) }
	case stagePID1:
		return func() int { return pid1Main(fd) }
	case stageExec:
		return func() int { return execMain(fd) }
	}
	return nil
}

// stageFiles lays out the descriptors of a child stage: 0, 1 and 2,
// each kept descriptor at its own number, and the control socket at the
// first number above them. It returns the files and that number.
func stageFiles(keep []int, ctl *os.File) ([]*os.File, int) {
	top := 2
	for _, fd := range keep {
		top = max(top, fd)
	}
	files := make([]*os.File, top+2)
	files[0], files[1], files[2] = os.Stdin, os.Stdout, os.Stderr
	for _, fd := range keep {
		files[fd] = os.NewFile(uintptr(fd), "fd"+strconv.Itoa(fd))
	}
	files[top+1] = ctl
	return files, top + 1
}

func stageArgs(stage string, fd int) []string {
	return []string{stage, strconv.Itoa(fd)}
}

func fatalStage(stage string, err error) int {
	fmt.Fprintf(os.Stderr, "sbx: %s: %v\n", stage, err)
	return 125
}
