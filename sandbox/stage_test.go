package sandbox

import (
	"os"
	"testing"
)

func TestStageDispatch(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want bool
	}{
		{[]string{"sbx:init", "3", "1207042048"}, true},
		{[]string{"sbx:init", "3", "x"}, false},
		{[]string{"sbx:init", "3"}, false}, // no namespaces named
		{[]string{"sbx:holder"}, true},
		{[]string{"sbx", "run", "--", "true"}, false},
		{[]string{"sbx:init"}, false},
		{[]string{"sbx:init", "2", "0"}, false}, // never a standard descriptor
		{[]string{"sbx:init", "x", "0"}, false},
		{[]string{"sbx:holder", "3"}, false},
		{[]string{"/usr/bin/sbx", "3"}, false},
		{nil, false},
	} {
		if got := Stage(tc.args) != nil; got != tc.want {
			t.Errorf("Stage(%q) selected a stage: %v, want %v", tc.args, got, tc.want)
		}
	}
}

func TestStageFiles(t *testing.T) {
	ctl, plan, flt := os.NewFile(100, "ctl"), os.NewFile(101, "plan"), os.NewFile(102, "filter")
	files, fd := stageFiles(nil, ctl, plan, flt)
	if fd != 3 || len(files) != 6 || files[3] != ctl || files[4] != plan || files[5] != flt {
		t.Fatalf("no kept fds: control socket at %d, files %v", fd, files)
	}
	files, fd = stageFiles([]int{7, 4}, ctl, plan, flt)
	if fd != 8 || files[4] == nil || files[7] == nil || files[5] != nil || files[6] != nil || files[8] != ctl || files[9] != plan || files[10] != flt {
		t.Fatalf("kept 4 and 7: control socket at %d, files %v", fd, files)
	}
	fds := fileFds(files)
	if fds[5] != ^uintptr(0) || fds[8] != 100 {
		t.Fatalf("fileFds %v: a gap must be closed, the socket kept", fds)
	}
}

func TestSignalClasses(t *testing.T) {
	for _, s := range guarded() {
		for _, f := range forwarded {
			if s == f {
				t.Errorf("%v is both forwarded and dropped", s)
			}
		}
	}
}
