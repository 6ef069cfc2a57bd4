package tests

import (
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"
)

// sbx doctor on this host, as the unprivileged test user.

// doctorGates are the gates sbx doctor reports, in order (policy.DoctorGates).
var doctorGates = []string{
	"userns", "apparmor", "container", "newuidmap", "newgidmap", "subids",
	"cgroup2", "user-manager", "controllers", "landlock", "seccomp", "tiocsti", "usernet",
}

type doctorCheck struct {
	Name   string `json:"name"`
	Status string `json:"status"`
	Detail string `json:"detail"`
	Fix    string `json:"fix"`
}

func TestDoctor(t *testing.T) {
	requireUserns(t)
	r := runSbx(t, "doctor")
	if r.code != 0 {
		t.Fatalf("want exit 0 on a host that can create user namespaces\n%s", r)
	}
	if r.stderr != "" {
		t.Errorf("stderr is not empty\n%s", r)
	}
	line := regexp.MustCompile(`^(ok|warn|fail) +(\S+) +\S`)
	var names []string
	lines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
	for i, l := range lines {
		if strings.HasPrefix(l, " ") {
			continue
		}
		m := line.FindStringSubmatch(l)
		if m == nil {
			t.Errorf("line %q is not STATUS NAME DETAIL", l)
			continue
		}
		names = append(names, m[2])
		hasFix := i+1 < len(lines) && regexp.MustCompile(`^ +fix: \S`).MatchString(lines[i+1])
		if (m[1] != "ok") != hasFix {
			t.Errorf("%s is %s; fix line follows: %v", m[2], m[1], hasFix)
		}
	}
	if strings.Join(names, " ") != strings.Join(doctorGates, " ") {
		t.Errorf("gates %q, want %q\n%s", names, doctorGates, r.stdout)
	}
	t.Logf("sbx doctor as uid %d:\n%s", os.Getuid(), r.stdout)
}

func TestDoctorJSON(t *testing.T) {
	requireUserns(t)
	r := runSbx(t, "doctor", "--json")
	if r.code != 0 {
		t.Fatalf("want exit 0\n%s", r)
	}
	checks := parseDoctor(t, r.stdout)
	if len(checks) != len(doctorGates) {
		t.Fatalf("%d checks, want %d\n%s", len(checks), len(doctorGates), r.stdout)
	}
	for i, c := range checks {
		if c.Name != doctorGates[i] {
			t.Errorf("check %d is %q, want %q", i, c.Name, doctorGates[i])
		}
		switch {
		case c.Status != "ok" && c.Status != "warn" && c.Status != "fail":
			t.Errorf("%s: status %q", c.Name, c.Status)
		case c.Status != "ok" && c.Fix == "":
			t.Errorf("%s is %s without a fix", c.Name, c.Status)
		case c.Status == "fail":
			t.Errorf("%s fails on a host where sbx run works: %s", c.Name, c.Detail)
		}
		if c.Detail == "" {
			t.Errorf("%s: no detail", c.Name)
		}
	}
}

// TestDoctorNoUserManager: with XDG_RUNTIME_DIR leading nowhere, the
// user manager is a warning whose fix names linger, and sbx still works.
func TestDoctorNoUserManager(t *testing.T) {
	requireUserns(t)
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "XDG_RUNTIME_DIR=") && !strings.HasPrefix(kv, "DBUS_SESSION_BUS_ADDRESS=") {
			env = append(env, kv)
		}
	}
	r := sbxCmd{args: []string{"doctor", "--json"}, env: append(env, "XDG_RUNTIME_DIR=/nonexistent")}.run(t)
	if r.code != 0 {
		t.Fatalf("want exit 0: limits are optional\n%s", r)
	}
	for _, c := range parseDoctor(t, r.stdout) {
		switch c.Name {
		case "user-manager":
			if c.Status != "warn" || !strings.Contains(c.Fix, "loginctl enable-linger") {
				t.Errorf("user-manager: %+v, want warn with a fix naming loginctl enable-linger", c)
			}
		case "controllers":
			if c.Status != "warn" {
				t.Errorf("controllers: %+v, want warn", c)
			}
		}
	}
}

func parseDoctor(t *testing.T, out string) []doctorCheck {
	t.Helper()
	var checks []doctorCheck
	if err := json.Unmarshal([]byte(out), &checks); err != nil {
		t.Fatalf("sbx doctor --json: %v\n%s", err, out)
	}
	return checks
}
