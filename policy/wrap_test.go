package policy_test

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"sbx/policy"
)

func TestDecodeWrap(t *testing.T) {
	text := `version = 1

[wrap.npm]
profile = "npm"
flags = ["--net", "host"]
description = "npm with the network"

[wrap.make]
profile = ["build", "./extra.toml", "rel.toml", "../shared/p.toml", "/etc/sbx/abs.toml"]

[wrap."g++"]
flags = ["--rw", "."]

[wrap.ls]
`
	w, err := policy.DecodeWrap("/home/alice/.config/sbx/wrap.toml", []byte(text), nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := w.Names(), []string{"g++", "ls", "make", "npm"}; !slices.Equal(got, want) {
		t.Errorf("names %q, want %q", got, want)
	}
	npm, ok := w.Lookup("npm")
	if !ok || !slices.Equal(npm.Profiles, []string{"npm"}) || !slices.Equal(npm.Flags, []string{"--net", "host"}) || npm.Description != "npm with the network" {
		t.Errorf("npm = %+v, %v", npm, ok)
	}
	if got, want := npm.RunArgs("/usr/bin/npm", true, []string{"ci", "--"}), []string{"--profile", "npm", "--net", "host", "--argv0", "npm", "--", "/usr/bin/npm", "ci", "--"}; !slices.Equal(got, want) {
		t.Errorf("RunArgs = %q, want %q", got, want)
	}
	// A shim first on PATH: the program keeps its path as argv[0].
	if got, want := npm.RunArgs("/usr/bin/npm", false, []string{"ci"}), []string{"--profile", "npm", "--net", "host", "--", "/usr/bin/npm", "ci"}; !slices.Equal(got, want) {
		t.Errorf("RunArgs = %q, want %q", got, want)
	}
	// A relative path is wrap.toml's, never the working directory's (a
	// repository the command runs in would choose its policy); a name
	// stays a name.
	mk, _ := w.Lookup("make")
	if want := []string{"build", "/home/alice/.config/sbx/extra.toml", "/home/alice/.config/sbx/rel.toml", "/home/alice/.config/shared/p.toml", "/etc/sbx/abs.toml"}; !slices.Equal(mk.Profiles, want) {
		t.Errorf("make profiles %q, want %q", mk.Profiles, want)
	}
	if ls, _ := w.Lookup("ls"); ls.Profiles != nil || ls.Flags != nil {
		t.Errorf("ls = %+v, want no profile and no flags", ls)
	}
	if _, ok := w.Lookup("cat"); ok {
		t.Error("Lookup found cat")
	}

	// Only a version: nothing is wrapped.
	w, err = policy.DecodeWrap("wrap.toml", []byte("version = 1\n"), nil)
	if err != nil || len(w.Entries) != 0 {
		t.Errorf("version only: %+v, %v", w, err)
	}
}

func TestDecodeWrapErrors(t *testing.T) {
	const v1 = "version = 1\n"
	noHelp := func(flags []string) error {
		if slices.Contains(flags, "--bogus") {
			return errors.New("unknown flag: --bogus")
		}
		return nil
	}
	tests := []struct {
		name string
		text string
		at   string // "LINE:COL", or "" for an error without a place
		msg  string
	}{
		{"syntax", v1 + "[wrap.npm\n", "2:10", "expected"},
		{"no version", "[wrap.npm]\nprofile = \"npm\"\n", "1:1", "no version key"},
		{"version 2", "version = 2\n", "1:1", "version 2: this sbx reads version 1"},
		{"unknown top-level key", v1 + "shims = \"~/bin\"\n", "2:1", `unknown key "shims"`},
		{"unknown key in an entry", v1 + "[wrap.npm]\nprofile = \"npm\"\nnet = \"host\"\n", "4:1", `unknown key "wrap.npm.net"`},
		{"profile as a number", v1 + "[wrap.npm]\nprofile = 3\n", "3:1", "wrap.npm.profile: want a string or a list of strings, got int64"},
		{"profile list with a number", v1 + "[wrap.npm]\nprofile = [\"a\", 3]\n", "3:1", "got a list holding int64"},
		{"empty profile", v1 + "[wrap.npm]\nprofile = \"\"\n", "3:1", "empty profile name"},
		{"flags as a string", v1 + "[wrap.npm]\nflags = \"--net host\"\n", "3:9", "wrap.npm.flags: cannot decode TOML string"},
		{"flags with --", v1 + "[wrap.npm]\nflags = [\"--net\", \"host\", \"--\"]\n", "3:1", `"--" is not a flag`},
		{"bad flag", v1 + "\n[wrap.npm]\nflags = [\"--bogus\"]\n", "4:1", "wrap.npm.flags: unknown flag: --bogus"},
		{"name with a slash", v1 + "[wrap.\"bin/npm\"]\nprofile = \"npm\"\n", "2:2", `"bin/npm" is not a plain command name`},
		{"name with a space", v1 + "[wrap.\"my tool\"]\n", "2:2", "not a plain command name"},
		{"name with a dollar", v1 + "[wrap.\"a$b\"]\n", "2:2", "not a plain command name"},
		{"empty name", v1 + "[wrap.\"\"]\n", "2:2", "empty command name"},
		{"name dot-dot", v1 + "[wrap.\"..\"]\n", "2:2", "not a command name"},
		{"name starting with -", v1 + "[wrap.\"-x\"]\n", "2:2", "not a command name"},
		{"sbx itself", v1 + "[wrap.sbx]\n", "2:2", "sbx's own"},
		{"an sbx name", v1 + "[wrap.sbx-dev]\n", "2:2", "sbx's own"},
		// Names one of bash, zsh, fish cannot define as a function.
		{"fish's reserved _", v1 + "[wrap._]\n", "2:2", `"_" is a shell builtin or keyword`},
		{"zsh's reserved float", v1 + "[wrap.float]\n", "2:2", `"float" is a shell builtin or keyword`},
		{"zsh's reserved repeat", v1 + "[wrap.repeat]\n", "2:2", "builtin or keyword"},
		{"bash's keyword then", v1 + "[wrap.then]\n", "2:2", "builtin or keyword"},
		{"fish's reserved argparse", v1 + "[wrap.argparse]\n", "2:2", "builtin or keyword"},
		{"wrap is not a table", v1 + "wrap = \"npm\"\n", "2:8", "wrap: cannot decode TOML string"},
		{"entry is not a table", v1 + "[wrap]\nnpm = \"npm\"\n", "3:7", "wrap.npm: cannot decode TOML string"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, err := policy.DecodeWrap("wrap.toml", []byte(tt.text), noHelp)
			if err == nil {
				t.Fatalf("no error; decoded %+v", w)
			}
			if w != nil {
				t.Errorf("a Wrap returned with the error %v", err)
			}
			var pe *policy.ProfileError
			if !errors.As(err, &pe) || !errors.Is(err, policy.ErrUsage) {
				t.Fatalf("%v (%T) is not a located usage error", err, err)
			}
			prefix := "wrap.toml: "
			if tt.at != "" {
				prefix = "wrap.toml:" + tt.at + ": "
			}
			if !strings.HasPrefix(err.Error(), prefix) || !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("error %q, want %q...%q", err, prefix, tt.msg)
			}
		})
	}
}

func FuzzDecodeWrap(f *testing.F) {
	f.Add([]byte("version = 1\n[wrap.npm]\nprofile = [\"npm\"]\nflags = [\"--net\", \"host\"]\n"))
	f.Add([]byte("version = 1\nwrap = { a = { profile = \"x\" } }\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		w, err := policy.DecodeWrap("f.toml", data, nil)
		if (w == nil) == (err == nil) {
			t.Fatalf("DecodeWrap = %v, %v: want exactly one", w, err)
		}
		if err == nil {
			for _, e := range w.Entries {
				if strings.ContainsAny(e.Name, "/ \n$'\"") || e.Name == "" {
					t.Errorf("name %q accepted", e.Name)
				}
			}
		}
	})
}
