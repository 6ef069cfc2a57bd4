package tests

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// completionEnv returns an environment whose PATH finds the binary under
// test as "sbx" first, as the completion scripts call it by that name.
func completionEnv(t *testing.T) []string {
	t.Helper()
	dir := t.TempDir()
	if err := os.Symlink(sbxBin, filepath.Join(dir, "sbx")); err != nil {
		t.Fatal(err)
	}
	return append(os.Environ(), "PATH="+dir+string(os.PathListSeparator)+os.Getenv("PATH"))
}

// optionalShell returns the path of an optional shell, or skips the test
// without it; under SBX_TEST_MUST_RUN=1 it logs and passes instead, since
// zsh and fish are optional tools, not host gates.
func optionalShell(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	if os.Getenv(mustRunEnv) == "1" {
		t.Logf("%s is not installed: its completion script is not checked (an optional tool)", name)
		return ""
	}
	t.Skipf("skipped: %s is not installed", name)
	return ""
}

// shellOut runs argv with env and fails the test unless it exits 0.
func shellOut(t *testing.T, env []string, argv ...string) string {
	t.Helper()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = env
	cmd.Dir = t.TempDir()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%q: %v\n%s", argv, err, out)
	}
	return string(out)
}

// TestCompletionBash tries to break the bash script: it must load in real
// bash and complete verbs, every flag of sbx run, their values and the
// command after --.
func TestCompletionBash(t *testing.T) {
	t.Parallel()
	env := completionEnv(t)
	load := `source <(sbx completion bash) || exit 1`
	if out := shellOut(t, env, "bash", "-c", load+" && complete -p sbx"); !strings.Contains(out, "complete -F _sbx sbx") {
		t.Fatalf("complete -p sbx after loading: %q", out)
	}

	// complete drives _sbx as bash would for words, the last being the
	// one under the cursor; with line, COMP_LINE is set too, and words
	// must then be split as bash splits them (at = and :).
	complete := func(t *testing.T, line string, words ...string) []string {
		t.Helper()
		script := load + "\nCOMP_WORDS=("
		for _, w := range words {
			script += shQuoteTest(w) + " "
		}
		script += ")\nCOMP_CWORD=" + strconv.Itoa(len(words)-1) + "\n"
		if line != "" {
			script += "COMP_LINE=" + shQuoteTest(line) + "\nCOMP_POINT=" + strconv.Itoa(len(line)) + "\n"
		}
		script += "_sbx\nprintf '%s\\n' \"${COMPREPLY[@]}\"\n"
		out := shellOut(t, env, "bash", "-c", script)
		return strings.Fields(out)
	}
	for _, tc := range []struct {
		line  string
		words []string
		want  []string
		not   []string
	}{
		{"", []string{"sbx", "pro"}, []string{"profile"}, []string{"run"}},
		{"", []string{"sbx", ""}, []string{"run", "profile", "doctor", "completion", "version", "help", "wrap", "shell-init", "ps", "stop", "exec"}, nil},
		{"", []string{"sbx", "ps", "--"}, []string{"--json", "--quiet"}, nil},
		{"", []string{"sbx", "run", "--n"}, []string{"--net", "--no-pty", "--no-limits"}, []string{"--ro"}},
		{"", []string{"sbx", "run", "--profile", "b"}, []string{"build", "build-net"}, []string{"default"}},
		{"", []string{"sbx", "run", "--net", ""}, []string{"none", "host"}, nil},
		{"", []string{"sbx", "run", "--net", "none", "--", "bas"}, []string{"bash"}, nil},
		{"", []string{"sbx", "run", "--rw", ".", "bas"}, []string{"bash"}, nil},
		{"", []string{"sbx", "run", "ls", "--n"}, nil, []string{"--net"}},
		{"", []string{"sbx", "run", "--", "ls", "--n"}, nil, []string{"--net"}},
		{"sbx run --net=ho", []string{"sbx", "run", "--net", "=", "ho"}, []string{"host"}, []string{"none"}},
		{"sbx run --net=", []string{"sbx", "run", "--net", "="}, []string{"=host", "=none"}, nil},
		{"sbx run --net=host --cl", []string{"sbx", "run", "--net", "=", "host", "--cl"}, []string{"--clearenv"}, nil},
		{"", []string{"sbx", "profile", ""}, []string{"list", "show", "check"}, nil},
		{"", []string{"sbx", "profile", "show", "unt"}, []string{"untrusted"}, nil},
		{"", []string{"sbx", "completion", ""}, []string{"bash", "zsh", "fish"}, nil},
		{"", []string{"sbx", "shell-init", "f"}, []string{"fish"}, []string{"bash"}},
		{"", []string{"sbx", "wrap", ""}, []string{"install", "remove", "list", "exec"}, nil},
	} {
		t.Run(strings.Join(tc.words, "_"), func(t *testing.T) {
			got := complete(t, tc.line, tc.words...)
			for _, w := range tc.want {
				if !slices.Contains(got, w) {
					t.Errorf("completing %q: want %q among %q", tc.words, w, got)
				}
			}
			for _, w := range tc.not {
				if slices.Contains(got, w) {
					t.Errorf("completing %q: did not want %q among %q", tc.words, w, got)
				}
			}
		})
	}

	// Every flag that sbx help run documents completes: the script is
	// generated from the same flag set, so this holds for new flags too.
	t.Run("all run flags", func(t *testing.T) {
		r := runSbx(t, "help", "run")
		flags := regexp.MustCompile(`(?m)^\s+(?:-\w, )?(--[a-z][a-z0-9-]*)`).FindAllStringSubmatch(r.stdout, -1)
		if len(flags) < 10 {
			t.Fatalf("sbx help run: found only %d flags\n%s", len(flags), r)
		}
		got := complete(t, "", "sbx", "run", "--")
		for _, f := range flags {
			if !slices.Contains(got, f[1]) {
				t.Errorf("%s (in sbx help run) does not complete; got %q", f[1], got)
			}
		}
	})
}

// TestCompletionZsh checks the zsh script parses and registers with compinit.
func TestCompletionZsh(t *testing.T) {
	t.Parallel()
	zsh := optionalShell(t, "zsh")
	if zsh == "" {
		return
	}
	env := completionEnv(t)
	file := filepath.Join(t.TempDir(), "_sbx")
	writeFile(t, file, runSbxOK(t, "completion", "zsh"), 0o644)
	shellOut(t, env, zsh, "-n", file)
	out := shellOut(t, env, zsh, "-f", "-c", "autoload -Uz compinit && compinit -u -D && source "+file+" && print -r -- $_comps[sbx]")
	if strings.TrimSpace(out) != "_sbx" {
		t.Fatalf("zsh: after compinit and source, _comps[sbx] = %q, want _sbx", out)
	}
}

// TestCompletionFish checks the fish script parses and, loaded, completes.
func TestCompletionFish(t *testing.T) {
	t.Parallel()
	fish := optionalShell(t, "fish")
	if fish == "" {
		return
	}
	env := append(completionEnv(t), "HOME="+t.TempDir(), "XDG_CONFIG_HOME="+t.TempDir(), "XDG_DATA_HOME="+t.TempDir())
	file := filepath.Join(t.TempDir(), "sbx.fish")
	writeFile(t, file, runSbxOK(t, "completion", "fish"), 0o644)
	shellOut(t, env, fish, "-n", file)
	for _, tc := range []struct{ line, want string }{
		{"sbx pro", "profile"},
		{"sbx run --n", "--net"},
		{"sbx run --profile b", "build-net"},
		{"sbx run --net ", "host"},
		{"sbx completion ", "zsh"},
		{"sbx profile show unt", "untrusted"},
	} {
		out := shellOut(t, env, fish, "--no-config", "-c", "source "+file+"; complete -C "+shQuoteTest(tc.line))
		var got []string
		for _, l := range strings.Split(out, "\n") {
			got = append(got, strings.SplitN(l, "\t", 2)[0])
		}
		if !slices.Contains(got, tc.want) {
			t.Errorf("fish: completing %q: want %q among %q", tc.line, tc.want, got)
		}
	}
}

// TestCompletionBadShell tries to break "125 with one sbx: line".
func TestCompletionBadShell(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"completion", "nosuch"}, {"completion"}, {"completion", "bash", "zsh"}} {
		r := runSbx(t, args...)
		if r.code != 125 || len(r.stderrLines()) != 1 || !strings.HasPrefix(r.stderr, "sbx: ") || r.stdout != "" {
			t.Errorf("sbx %q: want 125, one sbx: line on stderr, nothing on stdout\n%s", args, r)
		}
	}
}

// runSbxOK runs sbx and fails the test unless it exits 0; it returns stdout.
func runSbxOK(t *testing.T, args ...string) string {
	t.Helper()
	r := runSbx(t, args...)
	if r.code != 0 || r.stdout == "" {
		t.Fatalf("sbx %q: want exit 0 and output\n%s", args, r)
	}
	return r.stdout
}

func shQuoteTest(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }
