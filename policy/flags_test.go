package policy_test

import (
	"path"
	"strings"
	"testing"
	"time"

	"sbx/policy"
)

func TestParseBind(t *testing.T) {
	tests := []struct {
		name     string
		arg      string
		src, dst string // wanted Source and Dest
		err      string // a substring of the wanted error; "" for success
	}{
		{name: "absolute path", arg: "/data", src: "/data", dst: "/data"},
		{name: "absolute path cleaned as DEST", arg: "/data//x/", src: "/data//x/", dst: "/data/x"},
		{name: "relative path: DEST left to Resolve", arg: "data", src: "data", dst: ""},
		{name: "relative path with dot", arg: "./data", src: "./data", dst: ""},
		{name: "path and DEST", arg: "/data:/mnt", src: "/data", dst: "/mnt"},
		{name: "relative path and DEST", arg: "data:/mnt", src: "data", dst: "/mnt"},
		{name: "DEST trailing slash cleaned", arg: "/data:/mnt/x//", src: "/data", dst: "/mnt/x"},
		{name: "PATH with ':' and a DEST", arg: "/a:b:/mnt", src: "/a:b", dst: "/mnt"},
		{name: "relative PATH with ':' and a DEST", arg: "a:b:/mnt", src: "a:b", dst: "/mnt"},
		{name: "first ':/' separates", arg: "/a:/b:/c", src: "/a", dst: "/b:/c"},
		{name: "relative DEST", arg: "/data:mnt", err: "not an absolute path"},
		{name: "PATH with ':' needs an absolute DEST", arg: "/a:b", err: "not an absolute path"},
		{name: "empty value", arg: "", err: "empty path"},
		{name: "empty PATH", arg: ":/mnt", err: "empty PATH"},
		{name: "empty PATH, relative DEST", arg: ":mnt", err: "empty PATH"},
		{name: "empty DEST", arg: "/data:", err: "empty DEST"},
		{name: "only ':'", arg: ":", err: "empty DEST"},
		{name: "DEST is the root", arg: "/data:/", err: "root"},
		{name: "DEST with '..'", arg: "/data:/mnt/../etc", err: `".."`},
		{name: "PATH with '..' as DEST", arg: "/data/../etc", err: `".."`},
		{name: "PATH is the root", arg: "/", err: "root"},
		{name: "NUL in PATH", arg: "/da\x00ta", err: "NUL"},
		{name: "NUL in DEST", arg: "/data:/m\x00nt", err: "NUL"},
	}
	for _, kind := range []policy.FSKind{policy.FSRo, policy.FSRw} {
		for _, tt := range tests {
			t.Run(string(kind)+"/"+tt.name, func(t *testing.T) {
				f, err := policy.ParseBind(kind, tt.arg)
				if f.Kind != kind || f.Arg != tt.arg {
					t.Errorf("ParseBind(%s, %q) = kind %s, arg %q; want them kept", kind, tt.arg, f.Kind, f.Arg)
				}
				if tt.err != "" {
					if err == nil {
						t.Fatalf("ParseBind(%s, %q) = %+v, want an error with %q", kind, tt.arg, f, tt.err)
					}
					if !strings.Contains(err.Error(), tt.err) || !strings.Contains(err.Error(), "--"+string(kind)) {
						t.Fatalf("ParseBind(%s, %q): error %q, want one naming --%s and saying %q", kind, tt.arg, err, kind, tt.err)
					}
					return
				}
				if err != nil {
					t.Fatalf("ParseBind(%s, %q): %v", kind, tt.arg, err)
				}
				if f.Source != tt.src || f.Dest != tt.dst {
					t.Fatalf("ParseBind(%s, %q) = source %q dest %q; want %q, %q", kind, tt.arg, f.Source, f.Dest, tt.src, tt.dst)
				}
				if got, want := f.Flag(), "--"+string(kind)+" "+tt.arg; got != want {
					t.Errorf("Flag() = %q, want %q", got, want)
				}
			})
		}
	}
}

func TestParseDest(t *testing.T) {
	tests := []struct {
		arg, want, err string
	}{
		{arg: "/tmp/x", want: "/tmp/x"},
		{arg: "/tmp/x/", want: "/tmp/x"},
		{arg: "/tmp//x///", want: "/tmp/x"},
		{arg: "/tmp/./x/.", want: "/tmp/x"},
		{arg: "//tmp", want: "/tmp"},
		{arg: "/a:b", want: "/a:b"},
		{arg: "/", err: "root"},
		{arg: "//", err: "root"},
		{arg: "/.", err: "root"},
		{arg: "/..", err: `".."`},
		{arg: "/a/..", err: `".."`},
		{arg: "/a/../b", err: `".."`},
		{arg: "..", err: "not an absolute path"},
		{arg: "tmp", err: "not an absolute path"},
		{arg: "./tmp", err: "not an absolute path"},
		{arg: "", err: "empty"},
		{arg: "/a\x00b", err: "NUL"},
	}
	for _, kind := range []policy.FSKind{policy.FSTmpfs, policy.FSHide} {
		for _, tt := range tests {
			f, err := policy.ParseDest(kind, tt.arg)
			if f.Kind != kind || f.Arg != tt.arg {
				t.Errorf("ParseDest(%s, %q) = kind %s, arg %q; want them kept", kind, tt.arg, f.Kind, f.Arg)
			}
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) || !strings.Contains(err.Error(), "--"+string(kind)) {
					t.Errorf("ParseDest(%s, %q) = %q, %v; want an error naming --%s with %q", kind, tt.arg, f.Dest, err, kind, tt.err)
				}
				continue
			}
			if err != nil || f.Dest != tt.want {
				t.Errorf("ParseDest(%s, %q) = %q, %v; want %q", kind, tt.arg, f.Dest, err, tt.want)
			}
			if c, err := policy.CleanDest(tt.arg); err != nil || c != tt.want {
				t.Errorf("CleanDest(%q) = %q, %v; want %q", tt.arg, c, err, tt.want)
			}
		}
	}
}

func TestParseEnv(t *testing.T) {
	tests := []struct {
		arg string
		ok  bool
	}{
		{"K=V", true},
		{"K=", true},
		{"K==", true},
		{"K=a=b", true},
		{"PATH=/usr/bin:/bin", true},
		{"lower_case.dots-ok=1", true}, // execve takes any name without '='
		{"K=line\nbreak", true},
		{"K", false},
		{"", false},
		{"=V", false},
		{"=", false},
		{"K\x00=V", false},
		{"K=V\x00", false},
	}
	for _, tt := range tests {
		got, err := policy.ParseEnv(tt.arg)
		switch {
		case tt.ok && (err != nil || got != tt.arg):
			t.Errorf("ParseEnv(%q) = %q, %v; want it back", tt.arg, got, err)
		case !tt.ok && err == nil:
			t.Errorf("ParseEnv(%q) = %q, want an error", tt.arg, got)
		case !tt.ok && !strings.Contains(err.Error(), "--env"):
			t.Errorf("ParseEnv(%q): error %q does not name --env", tt.arg, err)
		}
	}
}

func TestParseFD(t *testing.T) {
	tests := []struct {
		arg  string
		want int
		err  string
	}{
		{arg: "3", want: 3},
		{arg: "10", want: 10},
		{arg: "1048576", want: 1 << 20},
		{arg: "1048577", err: "too large"},
		{arg: "99999999999999999999", err: "not a descriptor number"},
		{arg: "0", err: "always kept"},
		{arg: "1", err: "always kept"},
		{arg: "2", err: "always kept"},
		{arg: "-1", err: "not a descriptor number"},
		{arg: "-3", err: "not a descriptor number"},
		{arg: "", err: "not a descriptor number"},
		{arg: "x", err: "not a descriptor number"},
		{arg: "3x", err: "not a descriptor number"},
		{arg: " 3", err: "not a descriptor number"},
		{arg: "3.0", err: "not a descriptor number"},
		{arg: "0x3", err: "not a descriptor number"},
	}
	for _, tt := range tests {
		got, err := policy.ParseFD(tt.arg)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) || !strings.Contains(err.Error(), "--preserve-fd") {
				t.Errorf("ParseFD(%q) = %d, %v; want an error naming --preserve-fd with %q", tt.arg, got, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseFD(%q) = %d, %v; want %d", tt.arg, got, err, tt.want)
		}
	}
}

func TestParseTimeout(t *testing.T) {
	tests := []struct {
		arg  string
		want time.Duration
		err  string
	}{
		{arg: "90s", want: 90 * time.Second},
		{arg: "5m", want: 5 * time.Minute},
		{arg: "1h30m", want: 90 * time.Minute},
		{arg: "250ms", want: 250 * time.Millisecond},
		{arg: "1ns", want: 1},
		{arg: "2562047h", want: 2562047 * time.Hour},
		{arg: "30", want: 30 * time.Second},
		{arg: "0.5", want: 500 * time.Millisecond},
		{arg: "1e3", want: 1000 * time.Second},
		{arg: "+7", want: 7 * time.Second},
		{arg: "0", err: "must be positive"},
		{arg: "0s", err: "must be positive"},
		{arg: "0.0", err: "must be positive"},
		{arg: "1e-10", err: "must be positive"}, // rounds to 0ns
		{arg: "-1s", err: "must be positive"},
		{arg: "-5", err: "must be positive"},
		{arg: "-1e300", err: "must be positive"},
		{arg: "-Inf", err: "must be positive"},
		{arg: "NaN", err: "not a duration"},
		{arg: "nan", err: "not a duration"},
		{arg: "Inf", err: "too long"},
		{arg: "+Inf", err: "too long"},
		{arg: "1e300", err: "too long"},
		{arg: "5000000000", err: "too long"},
		{arg: "3000000h", err: "not a duration"}, // overflows time.Duration
		{arg: "", err: "not a duration"},
		{arg: "s", err: "not a duration"},
		{arg: "5 m", err: "not a duration"},
		{arg: "5x", err: "not a duration"},
		{arg: "soon", err: "not a duration"},
	}
	for _, tt := range tests {
		got, err := policy.ParseTimeout(tt.arg)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) || !strings.Contains(err.Error(), "--timeout") {
				t.Errorf("ParseTimeout(%q) = %v, %v; want an error naming --timeout with %q", tt.arg, got, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseTimeout(%q) = %v, %v; want %v", tt.arg, got, err, tt.want)
		}
	}
}

func TestParseNet(t *testing.T) {
	for _, arg := range []string{"none", "host"} {
		if got, err := policy.ParseNet(arg); err != nil || got != arg {
			t.Errorf("ParseNet(%q) = %q, %v; want it back", arg, got, err)
		}
	}
	for _, arg := range []string{"", "Host", "NONE", "bridge", "host ", "slirp4netns"} {
		if got, err := policy.ParseNet(arg); err == nil || !strings.Contains(err.Error(), "--net") {
			t.Errorf("ParseNet(%q) = %q, %v; want an error naming --net", arg, got, err)
		}
	}
}

func TestParseHostname(t *testing.T) {
	ok := []string{
		"box", "sbx-1", "a", "0", "123", "a.b.c", "Sandbox.Example.ORG", "x--y",
		strings.Repeat("a", 64),
		strings.Repeat("a", 30) + "." + strings.Repeat("b", 33),
	}
	bad := []string{
		"", strings.Repeat("a", 65), "-box", "box-", "a.-b", "a.b-", ".box", "box.", "a..b", ".",
		"my box", "box_1", "bøx", "a/b", "a\x00b", "box\n", "*",
	}
	for _, arg := range ok {
		if got, err := policy.ParseHostname(arg); err != nil || got != arg {
			t.Errorf("ParseHostname(%q) = %q, %v; want it back", arg, got, err)
		}
	}
	for _, arg := range bad {
		if got, err := policy.ParseHostname(arg); err == nil || !strings.Contains(err.Error(), "--hostname") {
			t.Errorf("ParseHostname(%q) = %q, %v; want an error naming --hostname", arg, got, err)
		}
	}
}

// checkDest checks what CleanDest promises of a path it accepts.
func checkDest(t *testing.T, what, d string) {
	t.Helper()
	switch {
	case !path.IsAbs(d):
		t.Fatalf("%s: %q is not absolute", what, d)
	case path.Clean(d) != d:
		t.Fatalf("%s: %q is not clean", what, d)
	case d == "/":
		t.Fatalf("%s: %q is the root", what, d)
	case strings.ContainsRune(d, 0):
		t.Fatalf("%s: %q holds a NUL", what, d)
	}
	for _, c := range strings.Split(d, "/") {
		if c == ".." {
			t.Fatalf("%s: %q has a \"..\" component", what, d)
		}
	}
}

func FuzzCleanDest(f *testing.F) {
	for _, s := range []string{"/tmp", "/tmp/", "/", "//", "/..", "/a/../b", "..", "a", "", "/a\x00", "/./a//b/."} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		d, err := policy.CleanDest(p)
		if err != nil {
			if d != "" {
				t.Fatalf("CleanDest(%q) = %q with error %v", p, d, err)
			}
			return
		}
		checkDest(t, "CleanDest("+p+")", d)
		if d2, err := policy.CleanDest(d); err != nil || d2 != d {
			t.Fatalf("CleanDest(CleanDest(%q)) = %q, %v; want %q again", p, d2, err, d)
		}
	})
}

func FuzzParseBind(f *testing.F) {
	for _, s := range []string{"/data", "data", "/data:/mnt", "a:b:/mnt", "/a:/b:/c", "/a:b", ":", ":/", "/x:", "", "/\x00", "/a/../b:/c", "/:/x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, arg string) {
		fl, err := policy.ParseBind(policy.FSRw, arg)
		if fl.Arg != arg || fl.Kind != policy.FSRw {
			t.Fatalf("ParseBind(%q) lost the value or kind: %+v", arg, fl)
		}
		if err != nil {
			if !strings.Contains(err.Error(), "--rw") {
				t.Fatalf("ParseBind(%q): error %q does not name --rw", arg, err)
			}
			return
		}
		if fl.Source == "" || strings.ContainsRune(fl.Source, 0) {
			t.Fatalf("ParseBind(%q): source %q", arg, fl.Source)
		}
		if !strings.HasPrefix(arg, fl.Source) {
			t.Fatalf("ParseBind(%q): source %q is not how the value starts", arg, fl.Source)
		}
		if fl.Dest == "" {
			// Only a relative PATH alone leaves DEST to Resolve.
			if path.IsAbs(fl.Source) || fl.Source != arg {
				t.Fatalf("ParseBind(%q) = source %q without a DEST", arg, fl.Source)
			}
			return
		}
		checkDest(t, "ParseBind("+arg+")", fl.Dest)
	})
}

func FuzzParseTimeout(f *testing.F) {
	for _, s := range []string{"90s", "1h30m", "30", "0.5", "0", "-1", "NaN", "Inf", "-Inf", "1e300", "1e-300", "3000000h", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, arg string) {
		d, err := policy.ParseTimeout(arg)
		if err != nil {
			if d != 0 || !strings.Contains(err.Error(), "--timeout") {
				t.Fatalf("ParseTimeout(%q) = %v, %v", arg, d, err)
			}
			return
		}
		if d <= 0 {
			t.Fatalf("ParseTimeout(%q) = %v, want a positive duration", arg, d)
		}
	})
}

func FuzzParseEnv(f *testing.F) {
	for _, s := range []string{"K=V", "K=", "=V", "K", "", "K\x00=V", "K=V\x00", "A=b=c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, arg string) {
		kv, err := policy.ParseEnv(arg)
		if err != nil {
			if kv != "" {
				t.Fatalf("ParseEnv(%q) = %q with error %v", arg, kv, err)
			}
			return
		}
		k, _, ok := strings.Cut(kv, "=")
		if kv != arg || !ok || k == "" || strings.ContainsRune(kv, 0) {
			t.Fatalf("ParseEnv(%q) = %q", arg, kv)
		}
	})
}

func FuzzParseHostname(f *testing.F) {
	for _, s := range []string{"box", "a.b", "-a", "a-", "a..b", "", strings.Repeat("x", 65), "bøx"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, arg string) {
		h, err := policy.ParseHostname(arg)
		if err != nil {
			return
		}
		if h != arg || len(h) == 0 || len(h) > 64 {
			t.Fatalf("ParseHostname(%q) = %q", arg, h)
		}
		for _, l := range strings.Split(h, ".") {
			if l == "" || strings.HasPrefix(l, "-") || strings.HasSuffix(l, "-") {
				t.Fatalf("ParseHostname(%q): label %q", arg, l)
			}
			if strings.Trim(l, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-") != "" {
				t.Fatalf("ParseHostname(%q): label %q has a character outside [A-Za-z0-9-]", arg, l)
			}
		}
	})
}
