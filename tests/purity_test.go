package tests

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// The pure packages (STYLE.md, principle 2) and what they must not reach.
var (
	purePackages = []string{"sbx/idmap", "sbx/policy"}
	forbidden    = []string{"os", "os/exec", "syscall", "golang.org/x/sys/unix", "unsafe", "github.com/godbus/dbus/v5", "C"}
	// Third-party modules reviewed for purity: the go list check below
	// still verifies that nothing they import is forbidden.
	reviewed = []string{
		"github.com/pelletier/go-toml/v2", // profiles: TOML from bytes; no os, syscall or unsafe
	}
	// Functions that read the environment, by the package that has them.
	envReaders = map[string][]string{"os": {"Getenv", "LookupEnv", "Environ"}, "syscall": {"Getenv", "Environ"}}
)

// TestPurity keeps idmap and policy pure by construction: neither they
// nor any package of this module they import may import a forbidden
// package or read the environment.
//
// The standard library is trusted: fmt imports os (for Printf), so
// `go list -deps` of any package that formats an error lists os, syscall
// and unsafe. What matters is that no code of ours, or of a third party
// we pull in, imports them.
func TestPurity(t *testing.T) {
	root := sbxSourceRoot(t)
	t.Run("source", func(t *testing.T) {
		for _, v := range sourceViolations(t, root) {
			t.Error(v)
		}
	})
	t.Run("go list", func(t *testing.T) {
		goBin := goTool()
		if goBin == "" {
			mustRun(t, "no go toolchain on PATH or in "+runtime.GOROOT()+"/bin; the source check above still ran")
		}
		v, err := goListViolations(goBin, root)
		if err != nil {
			mustRun(t, err.Error())
		}
		for _, v := range v {
			t.Error(v)
		}
	})
}

// sourceViolations walks the imports of the pure packages with go/parser,
// following this module's packages; it needs no toolchain. Every .go file
// but tests counts, whatever its build constraints: a _linux.go file that
// imports x/sys/unix makes the package impure on Linux.
func sourceViolations(t *testing.T, root string) []string {
	t.Helper()
	module := modulePath(t, root)
	var out []string
	seen := map[string]bool{}
	queue := slices.Clone(purePackages)
	for len(queue) > 0 {
		pkg := queue[0]
		queue = queue[1:]
		if seen[pkg] {
			continue
		}
		seen[pkg] = true
		dir := filepath.Join(root, filepath.FromSlash(strings.TrimPrefix(pkg, module)))
		files, err := filepath.Glob(filepath.Join(dir, "*.go"))
		if err != nil {
			t.Fatal(err)
		}
		parsed := 0
		for _, file := range files {
			if strings.HasSuffix(file, "_test.go") {
				continue
			}
			fset := token.NewFileSet()
			f, err := parser.ParseFile(fset, file, nil, parser.SkipObjectResolution)
			if err != nil {
				t.Fatalf("parse %s: %v", file, err)
			}
			parsed++
			rel, _ := filepath.Rel(root, file)
			names := map[string]string{} // local name -> import path, for os and syscall
			for _, imp := range f.Imports {
				p, err := strconv.Unquote(imp.Path.Value)
				if err != nil {
					t.Fatalf("%s: import %s: %v", rel, imp.Path.Value, err)
				}
				switch {
				case slices.Contains(forbidden, p):
					out = append(out, fmt.Sprintf("%s (package %s) imports %s", rel, pkg, p))
				case p == module || strings.HasPrefix(p, module+"/"):
					queue = append(queue, p)
				case slices.ContainsFunc(reviewed, func(m string) bool { return p == m || strings.HasPrefix(p, m+"/") }):
				case strings.Contains(strings.SplitN(p, "/", 2)[0], "."):
					out = append(out, fmt.Sprintf("%s (package %s) imports %s: the pure packages use only the standard library and this module (a new dependency needs a review for purity, then a place in this test)", rel, pkg, p))
				}
				if _, ok := envReaders[p]; ok {
					name := filepath.Base(p)
					if imp.Name != nil {
						name = imp.Name.Name
					}
					names[name] = p
				}
			}
			ast.Inspect(f, func(n ast.Node) bool {
				sel, ok := n.(*ast.SelectorExpr)
				if !ok {
					return true
				}
				x, ok := sel.X.(*ast.Ident)
				if !ok {
					return true
				}
				if p, ok := names[x.Name]; ok && slices.Contains(envReaders[p], sel.Sel.Name) {
					out = append(out, fmt.Sprintf("%s:%d: %s.%s reads the environment; take it from policy.Host instead", rel, fset.Position(sel.Pos()).Line, p, sel.Sel.Name))
				}
				return true
			})
		}
		if parsed == 0 {
			t.Fatalf("package %s: no Go files in %s", pkg, dir)
		}
	}
	return out
}

// goListViolations asks the go command for the dependency graph, which
// also covers third-party packages' own imports.
func goListViolations(goBin, root string) ([]string, error) {
	args := append([]string{"list", "-deps", "-f", "{{.ImportPath}}\t{{.Standard}}\t{{join .Imports \" \"}}"}, purePackages...)
	cmd := exec.Command(goBin, args...)
	cmd.Dir = root
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	b, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("%s %s in %s: %v: %s", goBin, strings.Join(args, " "), root, err, strings.TrimSpace(stderr.String()))
	}
	var out []string
	seen := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Split(sc.Text(), "\t")
		if len(f) != 3 {
			return nil, fmt.Errorf("go list: unexpected line %q", sc.Text())
		}
		pkg, std, imports := f[0], f[1] == "true", strings.Fields(f[2])
		seen[pkg] = true
		if std {
			continue
		}
		for _, imp := range imports {
			if slices.Contains(forbidden, imp) {
				out = append(out, fmt.Sprintf("go list: %s imports %s", pkg, imp))
			}
		}
	}
	for _, p := range purePackages {
		if !seen[p] {
			return nil, fmt.Errorf("go list did not list %s:\n%s", p, b)
		}
	}
	// Forbidden packages outside the standard library may not be reached
	// at all, through whatever path.
	for _, p := range forbidden {
		if seen[p] && strings.Contains(strings.SplitN(p, "/", 2)[0], ".") {
			out = append(out, fmt.Sprintf("go list: %s is a dependency of %s", p, strings.Join(purePackages, " or ")))
		}
	}
	return out, nil
}

// goTool finds the go command: on PATH, else in the toolchain that built
// this test (the harness runs the suite as a user whose PATH lacks it).
func goTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	if p := filepath.Join(runtime.GOROOT(), "bin", "go"); runtime.GOROOT() != "" {
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
			return p
		}
	}
	return ""
}

// sbxSourceRoot finds this module's source: above the working directory
// (go test runs in tests/), else above this file as compiled (the
// harness runs a copy of the test binary elsewhere).
func sbxSourceRoot(t *testing.T) string {
	t.Helper()
	var starts []string
	if wd, err := os.Getwd(); err == nil {
		starts = append(starts, wd)
	}
	if _, file, _, ok := runtime.Caller(0); ok && filepath.IsAbs(file) {
		starts = append(starts, filepath.Dir(file))
	}
	for _, dir := range starts {
		for {
			if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && modLine(b) == "sbx" {
				return dir
			}
			parent := filepath.Dir(dir)
			if parent == dir {
				break
			}
			dir = parent
		}
	}
	mustRun(t, fmt.Sprintf("the sbx source (a go.mod of module sbx) is not above %q", starts))
	return ""
}

func modulePath(t *testing.T, root string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	m := modLine(b)
	if m == "" {
		t.Fatal(errors.New("go.mod has no module line"))
	}
	return m
}

// modLine returns the module path a go.mod declares.
func modLine(gomod []byte) string {
	for _, l := range strings.Split(string(gomod), "\n") {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(l), "module"); ok && rest != "" && (rest[0] == ' ' || rest[0] == '\t') {
			return strings.Trim(strings.TrimSpace(rest), `"`)
		}
	}
	return ""
}
