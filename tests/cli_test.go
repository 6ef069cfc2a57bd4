package tests

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestInfoVerbs tries to break the contract that informational verbs exit 0
// and write to stdout, not stderr.
func TestInfoVerbs(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"version"},
		{"help"},
		{"help", "run"},
		{"help", "ps"},
		{"help", "profile"},
		{"run", "--help"},
		{"profile", "--help"},
		{"completion", "--help"},
		{"shell-init", "-h"},
		{"version", "--help"},
		{"help", "--help"},
		{"help", "version"},
		{"profile", "show", "--help"},
		{"wrap", "list", "--help"},
		{"wrap", "exec", "-h"},
	} {
		t.Run(strings.Join(args, "_"), func(t *testing.T) {
			t.Parallel()
			r := runSbx(t, args...)
			if r.code != 0 || strings.TrimSpace(r.stdout) == "" {
				t.Fatalf("sbx %q: want exit 0 and text on stdout\n%s", args, r)
			}
			if r.stderr != "" {
				t.Errorf("sbx %q wrote to stderr: %q", args, r.stderr)
			}
		})
	}
}

// TestBadInput tries to break "125 with exactly one sbx: line naming the
// value" for invalid command lines; nothing may run and nothing may go to stdout.
func TestBadInput(t *testing.T) {
	t.Parallel()
	missing := filepath.Join(t.TempDir(), "nonexistent")
	fifo := filepath.Join(t.TempDir(), "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		args  []string
		value string // must appear in the error line
	}{
		{"unknown flag", []string{"run", "--no-such-flag", "--", "true"}, "--no-such-flag"},
		{"timeout not a duration", []string{"run", "--timeout", "banana", "--", "true"}, "banana"},
		{"ro source missing", []string{"run", "--ro", missing, "--", "true"}, missing},
		{"ro dest relative", []string{"run", "--ro", "/usr:relative", "--", "true"}, "relative"},
		{"net unknown", []string{"run", "--net", "bogus", "--", "true"}, "bogus"},
		{"dest twice", []string{"run", "--ro", "/usr:/x", "--rw", os.TempDir() + ":/x", "--", "true"}, "/x"},
		{"hostname twice", []string{"run", "--hostname", "a", "--hostname", "b", "--", "true"}, "hostname"},
		{"no command", []string{"run"}, ""},
		{"timeout zero", []string{"run", "--timeout", "0s", "--", "true"}, "0s"},
		{"timeout negative", []string{"run", "--timeout", "-1s", "--", "true"}, "-1s"},
		{"preserve-fd not open", []string{"run", "--preserve-fd", "97", "--", "true"}, "97"},
		{"preserve-fd not a number", []string{"run", "--preserve-fd", "x7", "--", "true"}, "x7"},
		{"env without =", []string{"run", "--env", "NOEQUALS", "--", "true"}, "NOEQUALS"},
		{"unsetenv with =", []string{"run", "--unsetenv", "A=B", "--", "true"}, "A=B"},
		{"tmpfs relative", []string{"run", "--tmpfs", "relative", "--", "true"}, "relative"},
		{"chdir relative", []string{"run", "--chdir", "relative", "--", "true"}, "relative"},
		{"chdir with ..", []string{"run", "--chdir", "/tmp/../etc", "--", "true"}, "/tmp/../etc"},
		{"exec chdir with ..", []string{"exec", "--chdir", "/tmp/../etc", "abc", "--", "true"}, "/tmp/../etc"},
		{"hostname empty", []string{"run", "--hostname", "", "--", "true"}, "hostname"},
		{"hostname too long", []string{"run", "--hostname", strings.Repeat("h", 65), "--", "true"}, "hostname"},
		{"rw source missing", []string{"run", "--rw", missing, "--", "true"}, missing},
		{"ro file as a directory", []string{"run", "--ro", "/etc/passwd/", "--", "true"}, "/etc/passwd/"},
		{"json without dry-run", []string{"run", "--json", "--", "true"}, "--json"},
		{"unknown verb", []string{"frobnicate"}, "frobnicate"},
		{"bool not a bool", []string{"run", "--root=banana", "--", "true"}, "--root=banana"},
		{"bool of ps", []string{"ps", "--json=2"}, "--json=2"},
		{"number of stop", []string{"stop", "--time", "x", "abc"}, "--time=x"},
		{"argv0 empty", []string{"run", "--argv0", "", "--", "true"}, "--argv0"},
		{"version with an argument", []string{"version", "extra"}, "extra"},
		{"help of no verb", []string{"help", "bogus"}, "bogus"},
		// A device or a FIFO would exhaust sbx's memory or hang it.
		{"seccomp a device", []string{"run", "--seccomp", "/dev/zero", "--", "true"}, "/dev/zero"},
		{"seccomp a fifo", []string{"run", "--seccomp", fifo, "--", "true"}, fifo},
		{"json-status a fifo without reader", []string{"run", "--json-status", fifo, "--", "true"}, fifo},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := runSbx(t, tc.args...)
			if r.code != 125 {
				t.Fatalf("sbx %q: want exit 125\n%s", tc.args, r)
			}
			checkOneError(t, r, tc.value)
		})
	}
}

// checkOneError checks the contract for sbx's own failure: stdout empty, one
// "sbx: " line naming value, optionally followed by one hint line.
func checkOneError(t *testing.T, r result, value string) {
	t.Helper()
	if r.stdout != "" {
		t.Errorf("stdout must stay the payload's; got %q", r.stdout)
	}
	lines := r.stderrLines()
	if len(lines) == 0 || len(lines) > 2 {
		t.Fatalf("want one error line (and at most one hint); got %d lines:\n%s", len(lines), r.stderr)
	}
	if !strings.HasPrefix(lines[0], "sbx: ") {
		t.Errorf("error line %q does not start with %q", lines[0], "sbx: ")
	}
	if len(lines) == 2 && strings.HasPrefix(lines[1], "sbx: ") && !strings.Contains(lines[1], "hint") {
		t.Errorf("second line %q looks like a second error, not a hint", lines[1])
	}
	if value != "" && !strings.Contains(lines[0], value) {
		t.Errorf("error line %q does not name %q", lines[0], value)
	}
}

// TestExitCodes tries to break the mapping from the payload's fate to sbx's exit code.
func TestExitCodes(t *testing.T) {
	requireUserns(t)
	t.Parallel()
	dir := t.TempDir()
	noexec := filepath.Join(dir, "noexec")
	writeFile(t, noexec, "#!/bin/sh\necho ran\n", 0o644)
	badInterp := filepath.Join(dir, "badinterp")
	writeFile(t, badInterp, "#!/nonexistent/interp\necho ran\n", 0o755)
	for _, tc := range []struct {
		name string
		args []string
		code int
	}{
		{"exit 0", []string{"--", "/bin/true"}, 0},
		{"exit 7", []string{"--", "/bin/sh", "-c", "exit 7"}, 7},
		{"exit 255", []string{"--", "/bin/sh", "-c", "exit 255"}, 255},
		{"exit 125 from the payload", []string{"--", "/bin/sh", "-c", "exit 125"}, 125},
		{"SIGKILL", []string{"--", "/bin/sh", "-c", "kill -9 $$"}, 128 + 9},
		{"SIGTERM", []string{"--", "/bin/sh", "-c", "kill -15 $$"}, 128 + 15},
		{"SIGSEGV", []string{"--", "/bin/sh", "-c", "kill -11 $$"}, 128 + 11},
		{"not executable", []string{"--", noexec}, 126},
		{"a directory", []string{"--", "/usr"}, 126},
		{"missing absolute", []string{"--", "/nonexistent/cmd"}, 127},
		{"found, its interpreter missing", []string{"--", badInterp}, 126},
		{"missing on PATH", []string{"--", "no-such-command-sbx"}, 127},
		{"flags stop at the command", []string{"/bin/sh", "-c", "exit 4", "--ro"}, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			args := append([]string{"run"}, tc.args...)
			r := sbxCmd{args: args, dir: dir}.run(t)
			if r.code != tc.code {
				t.Fatalf("sbx %q: want exit %d\n%s", args, tc.code, r)
			}
			if tc.code == 126 || tc.code == 127 {
				if strings.Contains(r.stdout, "ran") {
					t.Errorf("the payload ran: %q", r.stdout)
				}
				if len(r.stderrLines()) == 0 {
					t.Errorf("exit %d without a word on stderr", tc.code)
				}
			}
		})
	}
}

// TestSetupError tries to break the reporting of a failure inside a setup
// stage: 125 and one line that names what failed.
func TestSetupError(t *testing.T) {
	requireUserns(t)
	t.Parallel()
	r := runSbx(t, "run", "--chdir", "/nonexistent-sbx-dir", "--", "/bin/true")
	if r.code != 125 {
		t.Fatalf("want exit 125\n%s", r)
	}
	checkOneError(t, r, "/nonexistent-sbx-dir")
	if !strings.Contains(strings.ToLower(r.stderr), "chdir") {
		t.Errorf("the error does not name the operation (chdir): %q", r.stderr)
	}
	t.Logf("setup error as reported: %q", r.stderr)
}

// TestTimeout tries to break --timeout: 124, promptly, and the payload is gone.
func TestTimeout(t *testing.T) {
	requireUserns(t)
	t.Parallel()
	start := time.Now()
	r := sh(t, "readlink /proc/self/ns/pid; exec sleep 30", "--timeout", "1s")
	elapsed := time.Since(start)
	if r.code != 124 {
		t.Fatalf("want exit 124\n%s", r)
	}
	if elapsed < 900*time.Millisecond || elapsed > 10*time.Second {
		t.Errorf("--timeout 1s took %v", elapsed)
	}
	requireNSEmpty(t, strings.TrimSpace(r.stdout), 2*time.Second)
}

type jsonStatus struct {
	ExitCode   *int     `json:"exit_code"`
	Signal     *int     `json:"signal"`
	SignalName *string  `json:"signal_name"`
	TimedOut   *bool    `json:"timed_out"`
	WallTimeMS *float64 `json:"wall_time_ms"`
	Error      *string  `json:"error"`
}

// TestJSONStatus tries to break --json-status for each way a sandbox can end.
func TestJSONStatus(t *testing.T) {
	requireUserns(t)
	t.Parallel()
	for _, tc := range []struct {
		name     string
		flags    []string
		script   string
		code     int // sbx's exit code
		exitCode int // exit_code in the file; -1: not pinned by the contract
		signal   int // -1: not pinned
		timedOut bool
		errText  bool
	}{
		{"exit 7", nil, "exit 7", 7, 7, 0, false, false},
		{"killed", nil, "kill -9 $$", 137, -1, 9, false, false},
		{"timeout", []string{"--timeout", "1s"}, "sleep 30", 124, -1, -1, true, false},
		{"setup error", []string{"--chdir", "/nonexistent-sbx-dir"}, "true", 125, -1, -1, false, true},
		{"not found", nil, "exec no-such-command-sbx", 127, 127, 0, false, false},
		// --json-status is known before the bad value, so "also when sbx fails" applies.
		{"bad value", []string{"--net", "bogus"}, "true", 125, -1, -1, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			file := filepath.Join(t.TempDir(), "status.json")
			flags := append([]string{"--json-status", file}, tc.flags...)
			r := sh(t, tc.script, flags...)
			if r.code != tc.code {
				t.Fatalf("want exit %d\n%s", tc.code, r)
			}
			b, err := os.ReadFile(file)
			if err != nil {
				t.Fatalf("--json-status file: %v\n%s", err, r)
			}
			var st jsonStatus
			dec := json.NewDecoder(strings.NewReader(string(b)))
			if err := dec.Decode(&st); err != nil {
				t.Fatalf("--json-status is not a JSON object: %v\n%s", err, b)
			}
			if dec.More() {
				t.Errorf("--json-status holds more than one JSON value:\n%s", b)
			}
			if st.ExitCode == nil || st.Signal == nil || st.TimedOut == nil || st.WallTimeMS == nil {
				t.Fatalf("--json-status lacks exit_code, signal, timed_out or wall_time_ms:\n%s", b)
			}
			if tc.exitCode >= 0 && *st.ExitCode != tc.exitCode {
				t.Errorf("exit_code = %d, want %d:\n%s", *st.ExitCode, tc.exitCode, b)
			}
			if tc.signal >= 0 && *st.Signal != tc.signal {
				t.Errorf("signal = %d, want %d:\n%s", *st.Signal, tc.signal, b)
			}
			if *st.TimedOut != tc.timedOut {
				t.Errorf("timed_out = %v, want %v:\n%s", *st.TimedOut, tc.timedOut, b)
			}
			if *st.WallTimeMS <= 0 || *st.WallTimeMS > 30000 {
				t.Errorf("wall_time_ms = %v:\n%s", *st.WallTimeMS, b)
			}
			if tc.errText && (st.Error == nil || *st.Error == "") {
				t.Errorf("a failed setup leaves error empty:\n%s", b)
			}
			if !tc.errText && st.Error != nil && *st.Error != "" {
				t.Errorf("error = %q for a sandbox that ran:\n%s", *st.Error, b)
			}
		})
	}
}

// TestDryRun tries to break "--dry-run prints the plan and creates nothing".
func TestDryRun(t *testing.T) {
	t.Parallel()
	rw := t.TempDir()
	status := filepath.Join(t.TempDir(), "status.json")
	created := filepath.Join(rw, "created")
	base := []string{"run", "--dry-run", "--rw", rw, "--json-status", status,
		"--hostname", "dryhost", "--", "/usr/bin/touch", created}

	r := runSbx(t, base...)
	if r.code != 0 || strings.TrimSpace(r.stdout) == "" {
		t.Fatalf("--dry-run: want exit 0 and the plan on stdout\n%s", r)
	}
	if !strings.Contains(r.stdout, "dryhost") || !strings.Contains(r.stdout, rw) {
		t.Errorf("the printed plan omits the hostname or the --rw path:\n%s", r.stdout)
	}

	withJSON := append([]string{"run", "--json"}, base[1:]...)
	r = runSbx(t, withJSON...)
	if r.code != 0 {
		t.Fatalf("--dry-run --json: want exit 0\n%s", r)
	}
	if !json.Valid([]byte(r.stdout)) {
		t.Fatalf("--dry-run --json prints invalid JSON:\n%s", r.stdout)
	}
	if !strings.Contains(r.stdout, "dryhost") {
		t.Errorf("the JSON plan omits the hostname:\n%s", r.stdout)
	}

	if _, err := os.Lstat(created); err == nil {
		t.Errorf("--dry-run ran the payload: %s exists", created)
	}
	if _, err := os.Lstat(status); err == nil {
		t.Errorf("--dry-run created the --json-status file %s", status)
	}
}

// From a working directory that was removed, the verbs that need none
// work (shell-init must not leave wrapped commands undefined, and so
// unsandboxed); sbx run, which binds it, says so and exits 125.
func TestRemovedWorkingDirectory(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args []string
		code int
	}{
		{[]string{"profile", "list"}, 0},
		{[]string{"shell-init", "bash"}, 0},
		{[]string{"wrap", "list"}, 0},
		{[]string{"run", "--", "true"}, 125},
	} {
		d := filepath.Join(t.TempDir(), "gone")
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command("/bin/sh", append([]string{"-c", `cd "$1" && rmdir "$1" && shift && exec "$@"`, "sh", d, sbxBin}, tc.args...)...)
		var stdout, stderr strings.Builder
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		cmd.Run()
		r := result{stdout: stdout.String(), stderr: withoutHostNotes(stderr.String()), code: cmd.ProcessState.ExitCode()}
		if r.code != tc.code {
			t.Errorf("sbx %q in a removed directory: exit %d, want %d\n%s", tc.args, r.code, tc.code, r)
		}
		if tc.code == 125 {
			checkOneError(t, r, "working directory")
		}
	}
}
