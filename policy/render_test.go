package policy_test

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"sbx/policy"
)

// richPlan resolves a plan that uses every part of the text rendering.
func richPlan(t *testing.T, root bool) *policy.Plan {
	t.Helper()
	f := cmd()
	f.Argv = []string{"sh", "-c", "echo 'hi there'", ""}
	f.Root = root
	f.Net, f.Hostname, f.Timeout, f.JSONStatus = "host", "box", 90*time.Second, "/tmp/status.json"
	f.Env, f.Unsetenv, f.PreserveFDs = []string{"EXTRA=1"}, []string{"TERM"}, []int{3}
	f.FS = fs(t, "rw", "/a:/w", "ro", "/a/b:/w/b", "tmpfs", "/scratch", "hide", "/etc/shadow", "ro", "data")
	h := fakeHost()
	h.NewGIDMap = "" // one warning
	return mustResolve(t, f, h)
}

func TestWriteText(t *testing.T) {
	for _, root := range []bool{false, true} {
		p := richPlan(t, root)
		var b strings.Builder
		if err := p.WriteText(&b); err != nil {
			t.Fatal(err)
		}
		text := b.String()
		lines := strings.Split(text, "\n")
		hasLine := func(subs ...string) bool {
			for _, l := range lines {
				all := true
				for _, s := range subs {
					all = all && strings.Contains(l, s)
				}
				if all {
					return true
				}
			}
			return false
		}
		for _, m := range p.Mounts {
			want := []string{string(m.Op), "[" + m.Origin + "]"}
			if m.Op != policy.OpRootRO {
				want = append(want, m.Dest)
			}
			if m.Source != "" {
				want = append(want, m.Source)
			}
			if m.Target != "" {
				want = append(want, m.Target)
			}
			if m.SourceBeneath != "" {
				want = append(want, "beneath "+m.SourceBeneath)
			}
			if !hasLine(want...) {
				t.Errorf("root=%v: no line with %q for mount %+v in:\n%s", root, want, m, text)
			}
		}
		if len(p.Env) == 0 {
			t.Fatal("the plan has no environment to render")
		}
		for _, kv := range p.Env {
			k, _, _ := strings.Cut(kv, "=")
			if !slices.Contains(lines, "  "+k) {
				t.Errorf("root=%v: variable %s not named in:\n%s", root, k, text)
			}
		}
		if len(p.Warnings) != 1 {
			t.Fatalf("root=%v: warnings %q, want one", root, p.Warnings)
		}
		for _, w := range p.Warnings {
			if !hasLine("warning", w) {
				t.Errorf("root=%v: warning %q not in:\n%s", root, w, text)
			}
		}
		for _, want := range [][]string{
			{"command", `sh -c 'echo '\''hi there'\''' ''`},
			{"cwd", p.Cwd},
			{"hostname", "box", "--hostname"},
			{"timeout", "1m30s", "--timeout"},
			{"keep fds", "3", "--preserve-fd"},
			{"json status", "/tmp/status.json", "--json-status"},
			{"network", "host"},
			{"uid map", "single-id map"},
		} {
			if !hasLine(want...) {
				t.Errorf("root=%v: no line with %q in:\n%s", root, want, text)
			}
		}
		if root != hasLine("payload map", "nested") {
			t.Errorf("root=%v: payload map line wrong in:\n%s", root, text)
		}
		if root != hasLine("identity", "uid 0 gid 0", "--root") {
			t.Errorf("root=%v: identity line wrong in:\n%s", root, text)
		}
	}
}

func TestWriteTextDefault(t *testing.T) {
	p := mustResolve(t, cmd(), fakeHost())
	var b strings.Builder
	if err := p.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	text := b.String()
	for _, want := range []string{
		"uid map      0 100000 1000, 1000 1000 1, 1001 101000 64536 (newuidmap/newgidmap)",
		"network      none (loopback only)",
		"namespaces   user mount pid ipc uts net cgroup (all new)",
		"environment  4 variables",
	} {
		if !strings.Contains(text, want+"\n") {
			t.Errorf("no line %q in:\n%s", want, text)
		}
	}
	for _, absent := range []string{"warning", "hostname", "timeout", "keep fds", "json status", "payload map"} {
		if strings.Contains(text, absent) {
			t.Errorf("the default plan's text mentions %q:\n%s", absent, text)
		}
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestWriteTextError(t *testing.T) {
	p := mustResolve(t, cmd(), fakeHost())
	if err := p.WriteText(failWriter{}); err == nil {
		t.Fatal("WriteText to a failing writer returned no error")
	}
}

func TestJSONValid(t *testing.T) {
	for _, p := range []*policy.Plan{mustResolve(t, cmd(), fakeHost()), richPlan(t, false), richPlan(t, true)} {
		b, err := p.JSON()
		if err != nil {
			t.Fatal(err)
		}
		if !json.Valid(b) {
			t.Fatalf("JSON() is not valid JSON:\n%s", b)
		}
		var fields map[string]any
		if err := json.Unmarshal(b, &fields); err != nil {
			t.Fatal(err)
		}
		for _, k := range []string{"version", "argv", "env", "cwd", "identity", "namespaces", "net", "mounts", "security"} {
			if _, ok := fields[k]; !ok {
				t.Errorf("JSON() has no %q field:\n%s", k, b)
			}
		}
	}
}
