package tests

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Wrapped commands: shell functions from sbx shell-init, shims from
// sbx wrap install, in a temporary HOME.

// wrapEnv is a HOME with a wrap.toml wrapping `hello`, a script in bin
// that prints its arguments, its working directory, how many entries
// its HOME has and PID 1's command line, then exits 7.
type wrapEnv struct {
	home, bin, work string
	env             []string
}

func newWrapEnv(t *testing.T) wrapEnv {
	t.Helper()
	requireUserns(t)
	w := wrapEnv{home: t.TempDir(), bin: t.TempDir(), work: t.TempDir()}
	writeFile(t, filepath.Join(w.bin, "hello"), `#!/bin/sh
echo "args:$*"
echo "cwd:$(pwd)"
echo "home:$(ls -A "$HOME" | wc -l)"
echo "pid1:$(tr '\0' ' ' </proc/1/cmdline)"
exit 7
`, 0o755)
	cfg := filepath.Join(w.home, ".config")
	if err := os.MkdirAll(filepath.Join(cfg, "sbx"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(cfg, "sbx", "wrap.toml"), fmt.Sprintf(`version = 1

[wrap.hello]
profile = "default"
flags = ["--ro", %q]
description = "hello, sandboxed"
`, w.bin), 0o644)
	w.env = withEnv(os.Environ(), "HOME="+w.home, "XDG_CONFIG_HOME="+cfg, "PATH="+w.bin+":"+os.Getenv("PATH"))
	return w
}

func (w wrapEnv) sbx(t *testing.T, args ...string) result {
	t.Helper()
	return sbxCmd{args: args, env: w.env, dir: w.work}.run(t)
}

// run runs a program (not sbx) with w's environment and working directory.
func (w wrapEnv) run(t *testing.T, env []string, name string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), defaultGuard)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env, cmd.Dir, cmd.WaitDelay = env, w.work, waitDelay
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("%s %q: still running after %v", name, args, defaultGuard)
	}
	if err != nil && cmd.ProcessState == nil {
		t.Fatalf("%s %q: %v", name, args, err)
	}
	return result{stdout: stdout.String(), stderr: withoutHostNotes(stderr.String()), code: cmd.ProcessState.ExitCode()}
}

// checkHello checks the output of hello run sandboxed with args "a b c".
func (w wrapEnv) checkHello(t *testing.T, r result) {
	t.Helper()
	for _, want := range []string{"args:a b c\n", "cwd:" + w.work + "\n", "home:0\n", "pid1:sbx:init "} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("stdout lacks %q (the real hello, run in a sandbox, in the caller's directory)\n%s", want, r)
		}
	}
}

func TestWrapShellInit(t *testing.T) {
	w := newWrapEnv(t)
	r := w.sbx(t, "shell-init", "bash")
	if r.code != 0 || !strings.Contains(r.stdout, "function hello {") {
		t.Fatalf("shell-init bash: want a function hello\n%s", r)
	}
	shells := []struct {
		name, script string
	}{
		{"bash", `eval "$(%s shell-init bash)" || exit 99; hello a "b c"; echo "rc=$?"`},
		{"zsh", `eval "$(%s shell-init zsh)" || exit 99; hello a "b c"; echo "rc=$?"`},
		{"fish", `%s shell-init fish | source; or exit 99; hello a "b c"; echo "rc=$status"`},
	}
	for _, sh := range shells {
		t.Run(sh.name, func(t *testing.T) {
			path, err := exec.LookPath(sh.name)
			if err != nil {
				// Optional tools: absent is not a failure, even in CI.
				if os.Getenv(mustRunEnv) == "1" {
					t.Logf("%s is not installed; not tested", sh.name)
					return
				}
				t.Skipf("skipped: %s is not installed", sh.name)
			}
			r := w.run(t, w.env, path, "-c", fmt.Sprintf(sh.script, sbxBin))
			if r.code != 0 || !strings.HasSuffix(r.stdout, "rc=7\n") {
				t.Errorf("%s: want hello to return 7\n%s", sh.name, r)
			}
			w.checkHello(t, r)
		})
	}
}

func TestWrapShims(t *testing.T) {
	w := newWrapEnv(t)
	d := t.TempDir()
	writeFile(t, filepath.Join(d, "keep"), "not a shim\n", 0o755)
	writeFile(t, filepath.Join(d, ".hello.sbx-new"), "mine\n", 0o644) // a name install once used for its link
	if err := os.Symlink("/bin/ls", filepath.Join(d, "ls")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/no/such/dir/sbx", filepath.Join(d, "stale")); err != nil {
		t.Fatal(err)
	}

	r := w.sbx(t, "wrap", "install", "--dir", d)
	if r.code != 0 {
		t.Fatalf("wrap install: want exit 0\n%s", r)
	}
	self, err := filepath.EvalSymlinks(sbxBin)
	if err != nil {
		t.Fatal(err)
	}
	if target, err := os.Readlink(filepath.Join(d, "hello")); err != nil || target != self {
		t.Fatalf("%s/hello -> %q, %v; want a symlink to %s", d, target, err, self)
	}

	// The shim first on PATH, called by name (argv[0] "hello") and by path.
	env := withEnv(w.env, "PATH="+d+":"+w.bin+":"+os.Getenv("PATH"))
	for _, name := range []string{"hello", filepath.Join(d, "hello")} {
		// sh finds hello on env's PATH and gives it argv[0] "hello".
		r = w.run(t, env, "/bin/sh", "-c", `exec "$0" a "b c"`, name)
		if r.code != 7 {
			t.Errorf("%s: want exit 7 from the real hello\n%s", name, r)
		}
		w.checkHello(t, r)
	}

	r = w.sbx(t, "wrap", "list")
	if r.code != 0 || !strings.Contains(r.stdout, "hello") || !strings.Contains(r.stdout, "default") ||
		!strings.Contains(r.stdout, "--ro") || !strings.Contains(r.stdout, filepath.Join(w.bin, "hello")) {
		t.Errorf("wrap list: want hello, its profile, flags and %s/hello\n%s", w.bin, r)
	}
	r = w.sbx(t, "wrap", "list", "--names")
	if r.code != 0 || r.stdout != "hello\n" {
		t.Errorf("wrap list --names: want exactly hello\n%s", r)
	}

	// A link by a name that starts with sbx is sbx itself.
	if err := os.Symlink(self, filepath.Join(d, "sbx-dev")); err != nil {
		t.Fatal(err)
	}
	if r = w.run(t, env, filepath.Join(d, "sbx-dev"), "version"); r.code != 0 || !strings.HasPrefix(r.stdout, "sbx ") {
		t.Errorf("sbx-dev version: want sbx's version\n%s", r)
	}
	// A shim whose name is no longer wrapped is an error, never sbx
	// itself with the arguments meant for the command.
	wrapFile := filepath.Join(w.home, ".config", "sbx", "wrap.toml")
	wrapped, err := os.ReadFile(wrapFile)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, wrapFile, "version = 1\n", 0o644)
	r = w.run(t, env, "/bin/sh", "-c", `exec "$0" run -- echo ran-as-sbx`, "hello")
	if r.code != 125 || strings.Contains(r.stdout, "ran-as-sbx") || len(r.stderrLines()) != 1 || !strings.Contains(r.stderr, "hello: not wrapped") {
		t.Errorf("a stale shim: want 125 and one line saying hello is not wrapped\n%s", r)
	}
	writeFile(t, wrapFile, string(wrapped), 0o644)

	r = w.sbx(t, "wrap", "remove", "--dir", d)
	if r.code != 0 {
		t.Fatalf("wrap remove: want exit 0\n%s", r)
	}
	if b, err := os.ReadFile(filepath.Join(d, ".hello.sbx-new")); err != nil || string(b) != "mine\n" {
		t.Errorf("wrap install or remove touched a file of the user's: %q, %v", b, err)
	}
	for name, want := range map[string]bool{"hello": false, "stale": false, "keep": true, "ls": true, "sbx-dev": true} {
		_, err := os.Lstat(filepath.Join(d, name))
		if (err == nil) != want {
			t.Errorf("after wrap remove, %s/%s exists: %v, want %v", d, name, err == nil, want)
		}
	}

	// A file that is not a shim is never overwritten, and the error names it.
	d2 := t.TempDir()
	writeFile(t, filepath.Join(d2, "hello"), "mine\n", 0o755)
	r = w.sbx(t, "wrap", "install", "--dir", d2)
	if r.code != 125 || len(r.stderrLines()) != 1 || !strings.Contains(r.stderr, filepath.Join(d2, "hello")) {
		t.Errorf("wrap install over a file: want 125 and one line naming it\n%s", r)
	}
	if b, _ := os.ReadFile(filepath.Join(d2, "hello")); string(b) != "mine\n" {
		t.Errorf("wrap install changed %s/hello: %q", d2, b)
	}
}

func TestWrapErrors(t *testing.T) {
	w := newWrapEnv(t)
	r := w.sbx(t, "wrap", "exec", "nope", "--", "x")
	if r.code != 125 || len(r.stderrLines()) != 1 || !strings.HasPrefix(r.stderr, "sbx: ") || !strings.Contains(r.stderr, `"nope"`) {
		t.Errorf("wrap exec of an unknown name: want 125 and one sbx: line\n%s", r)
	}
	// The real program gone: 127, not sbx again.
	env := withEnv(w.env, "PATH=/usr/bin:/bin")
	r = sbxCmd{args: []string{"wrap", "exec", "hello"}, env: env, dir: w.work, guard: 10 * time.Second}.run(t)
	if r.code != 127 {
		t.Errorf("wrap exec with no real hello on PATH: want 127\n%s", r)
	}

	writeFile(t, filepath.Join(w.home, ".config", "sbx", "wrap.toml"), "version = 1\n[wrap.hello]\nprofile = 3\n", 0o644)
	for _, args := range [][]string{{"wrap", "list"}, {"shell-init", "bash"}, {"wrap", "exec", "hello"}} {
		r = w.sbx(t, args...)
		if r.code != 125 || len(r.stderrLines()) != 1 || !strings.Contains(r.stderr, "wrap.toml:3:1: ") || r.stdout != "" {
			t.Errorf("sbx %q with a bad wrap.toml: want 125 and one line with its file:line:col\n%s", args, r)
		}
	}
}

// A wrapped command killed by a signal kills sbx by the same signal, as
// the original would have died: a shell ends a script whose child died
// by SIGINT, but not one whose child exited 130. sbx run itself keeps
// exiting 128+N.
func TestWrapDiesBySignal(t *testing.T) {
	w := newWrapEnv(t)
	writeFile(t, filepath.Join(w.bin, "selfkill"), "#!/bin/sh\nkill -\"$1\" $$\nexit 3\n", 0o755)
	wrapFile := filepath.Join(w.home, ".config", "sbx", "wrap.toml")
	b, err := os.ReadFile(wrapFile)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, wrapFile, string(b)+fmt.Sprintf("\n[wrap.selfkill]\nflags = [\"--ro\", %q]\n", w.bin), 0o644)
	for name, sig := range map[string]syscall.Signal{"INT": syscall.SIGINT, "TERM": syscall.SIGTERM, "KILL": syscall.SIGKILL} {
		cmd := exec.Command(sbxBin, "wrap", "exec", "selfkill", "--", name)
		cmd.Env, cmd.Dir = w.env, w.work
		out, _ := cmd.CombinedOutput()
		ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus)
		if !ok || !ws.Signaled() || ws.Signal() != sig {
			t.Errorf("wrapped command killed by %v: sbx ended with %v (exit %d), want death by the same signal\n%s",
				sig, cmd.ProcessState, cmd.ProcessState.ExitCode(), out)
		}
	}
	r := sbxCmd{args: []string{"run", "--ro", w.bin, "--", filepath.Join(w.bin, "selfkill"), "INT"}, env: w.env, dir: w.work}.run(t)
	if r.code != 130 {
		t.Errorf("sbx run of a command killed by SIGINT: want exit 130\n%s", r)
	}
}

// TestWrapProfileRelative: a relative profile path in wrap.toml is
// wrap.toml's, not the working directory's: a repository the wrapped
// command runs in cannot choose its policy with a file of that name.
func TestWrapProfileRelative(t *testing.T) {
	w := newWrapEnv(t)
	cfg := filepath.Join(w.home, ".config", "sbx")
	writeFile(t, filepath.Join(cfg, "wrap.toml"), fmt.Sprintf(`version = 1
[wrap.hello]
profile = "rel.toml"
flags = ["--ro", %q]
`, w.bin), 0o644)
	writeFile(t, filepath.Join(cfg, "rel.toml"), "version = 1\n[env]\nset = { SBX_T_FROM = \"config\" }\n", 0o644)
	// The repository's file would give the payload the network and the
	// caller's home.
	writeFile(t, filepath.Join(w.work, "rel.toml"), fmt.Sprintf("version = 1\n[run]\nnet = \"host\"\n[[mount]]\nrw = %q\n", w.home), 0o644)
	r := w.sbx(t, "wrap", "list")
	if r.code != 0 || !strings.Contains(r.stdout, filepath.Join(cfg, "rel.toml")) {
		t.Errorf("wrap list: want the profile as %s\n%s", filepath.Join(cfg, "rel.toml"), r)
	}
	r = w.sbx(t, "wrap", "exec", "hello", "--", "a", "b", "c")
	if r.code != 7 {
		t.Fatalf("wrap exec hello: want 7\n%s", r)
	}
	w.checkHello(t, r) // home:0: not the repository's rw of the home
	// In flags, where a relative path could only be the working
	// directory's, it is refused, located.
	for _, flag := range []string{"--profile", "--seccomp"} {
		writeFile(t, filepath.Join(cfg, "wrap.toml"), "version = 1\n[wrap.hello]\nflags = [\""+flag+"\", \"rel.toml\"]\n", 0o644)
		r = w.sbx(t, "wrap", "list")
		if r.code != 125 || len(r.stderrLines()) != 1 || !strings.Contains(r.stderr, "wrap.toml:3:1: ") || !strings.Contains(r.stderr, flag+" rel.toml") {
			t.Errorf("%s rel.toml in flags: want 125 and one located line\n%s", flag, r)
		}
	}
}

// TestWrapNamesShellsDefine: every name sbx accepts as a wrapped
// command, among the keywords and builtins of bash, zsh and fish, is
// one each of them defines as a function from sbx shell-init (fish
// refuses "_", zsh's reserved words such as "float" are never called).
func TestWrapNamesShellsDefine(t *testing.T) {
	w := newWrapEnv(t)
	type shell struct{ name, path, names, defined string }
	shells := []shell{
		{name: "bash", names: `compgen -k; compgen -b`,
			defined: `eval "$(%s shell-init bash)" || exit 99; for n in %s; do [ "$(builtin type -t -- "$n")" = function ] || echo "undefined: $n"; done`},
		{name: "zsh", names: `print -l ${(k)reswords} ${(k)builtins}`,
			defined: `eval "$(%s shell-init zsh)" || exit 99; for n in %s; do [[ "$(builtin whence -w -- $n)" == "$n: function" ]] || echo "undefined: $n"; done`},
		{name: "fish", names: `builtin -n; functions -a -n | string split ,`,
			defined: `%s shell-init fish | source; or exit 99; for n in %s; functions -q -- $n; or echo "undefined: $n"; end`},
	}
	var have []shell
	names := map[string]bool{"_": true}
	for _, sh := range shells {
		p, err := exec.LookPath(sh.name)
		if err != nil {
			t.Logf("%s is not installed; not tested", sh.name)
			continue
		}
		sh.path = p
		have = append(have, sh)
		r := w.run(t, w.env, p, "-c", sh.names)
		for _, n := range strings.Fields(r.stdout) {
			names[n] = true
		}
	}
	if len(have) == 0 {
		t.Skip("skipped: none of bash, zsh, fish is installed")
	}
	wrapFile := filepath.Join(w.home, ".config", "sbx", "wrap.toml")
	var accepted []string
	for n := range names {
		if strings.Trim(n, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._+-") != "" || n == "sbx" {
			continue // refused for its characters (TestDecodeWrapErrors)
		}
		writeFile(t, wrapFile, fmt.Sprintf("version = 1\n[wrap.%q]\n", n), 0o644)
		if r := w.sbx(t, "wrap", "list", "--names"); r.code == 0 {
			accepted = append(accepted, n)
		} else if !strings.Contains(r.stderr, "wrap.toml:2:") {
			t.Errorf("wrap name %q refused without its location\n%s", n, r)
		}
	}
	var b strings.Builder
	b.WriteString("version = 1\n")
	for _, n := range accepted {
		fmt.Fprintf(&b, "[wrap.%q]\n", n)
	}
	writeFile(t, wrapFile, b.String(), 0o644)
	for _, sh := range have {
		r := w.run(t, w.env, sh.path, "-c", fmt.Sprintf(sh.defined, sbxBin, strings.Join(accepted, " ")))
		if r.code != 0 || r.stdout != "" || r.stderr != "" {
			t.Errorf("%s: names sbx accepts that %s does not define as functions:\n%s", sh.name, sh.name, r)
		}
	}
}

// A wrapped command is called by its name, as the original would be: its
// messages say "cat:", not "/usr/bin/cat:". sbx run --argv0 does it.
func TestWrapArgv0(t *testing.T) {
	w := newWrapEnv(t)
	wrapFile := filepath.Join(w.home, ".config", "sbx", "wrap.toml")
	b, err := os.ReadFile(wrapFile)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, wrapFile, string(b)+"\n[wrap.cat]\n", 0o644)
	r := w.sbx(t, "wrap", "exec", "cat", "--", "/proc/self/cmdline", "/nonexistent-sbx")
	if r.code != 1 || !strings.HasPrefix(r.stdout, "cat\x00/proc/self/cmdline\x00") || !strings.Contains(r.stderr, "cat: /nonexistent-sbx") {
		t.Errorf("wrapped cat: want argv[0] \"cat\" and its own messages\n%s", r)
	}
	r = w.sbx(t, "run", "--argv0", "meow", "--", "/bin/cat", "/proc/self/cmdline")
	if r.code != 0 || r.stdout != "meow\x00/proc/self/cmdline\x00" {
		t.Errorf("sbx run --argv0 meow: want argv[0] meow\n%s", r)
	}
	// With a shim of cat first on PATH, a program that finds itself by
	// its name (Python's sys.executable) would find the shim: the real
	// program keeps its path.
	shims := t.TempDir()
	self, err := filepath.EvalSymlinks(sbxBin)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(self, filepath.Join(shims, "cat")); err != nil {
		t.Fatal(err)
	}
	env := withEnv(w.env, "PATH="+shims+":"+w.bin+":/usr/bin:/bin")
	r = sbxCmd{args: []string{"wrap", "exec", "cat", "--", "/proc/self/cmdline"}, env: env, dir: w.work}.run(t)
	if r.code != 0 || !strings.HasSuffix(strings.SplitN(r.stdout, "\x00", 2)[0], "/cat") {
		t.Errorf("wrapped cat behind a shim: want its path as argv[0]\n%s", r)
	}
	// --argv0 is sbx's to give in wrap.toml's flags.
	writeFile(t, wrapFile, string(b)+"\n[wrap.cat]\nflags = [\"--argv0\", \"kitty\"]\n", 0o644)
	if r = w.sbx(t, "wrap", "list"); r.code != 125 || !strings.Contains(r.stderr, "--argv0") {
		t.Errorf("--argv0 in wrap.toml's flags: want 125 naming it\n%s", r)
	}
}
