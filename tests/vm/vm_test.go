package main

import (
	"bytes"
	"encoding/binary"
	"io/fs"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// readCPIO is a minimal newc reader for the tests: names, modes, data.
func readCPIO(t *testing.T, b []byte) []cpioEntry {
	t.Helper()
	var out []cpioEntry
	off := 0
	field := func(i int) uint64 {
		v, err := strconv.ParseUint(string(b[off+6+8*i:off+14+8*i]), 16, 32)
		if err != nil {
			t.Fatalf("header at %d: %v", off, err)
		}
		return v
	}
	align := func(n int) int { return (n + 3) &^ 3 }
	for {
		if string(b[off:off+6]) != "070701" {
			t.Fatalf("no magic at %d", off)
		}
		mode, size, namesize := field(1), int(field(6)), int(field(11))
		name := string(b[off+110 : off+110+namesize-1])
		data := align(off + 110 + namesize)
		if name == "TRAILER!!!" {
			return out
		}
		out = append(out, cpioEntry{name: name, mode: fs.FileMode(mode), data: b[data : data+size]})
		off = align(data + size)
	}
}

func TestWriteCPIO(t *testing.T) {
	in := append(cpioDirs("a/b/file", "a/link"),
		cpioEntry{name: "a/b/file", mode: 0o755, data: []byte("hello")},
		cpioEntry{name: "a/link", mode: fs.ModeSymlink | 0o777, data: []byte("b/file")},
		cpioEntry{name: "console", mode: fs.ModeDevice | fs.ModeCharDevice | 0o600, major: 5, minor: 1},
	)
	var buf bytes.Buffer
	if err := writeCPIO(&buf, in); err != nil {
		t.Fatal(err)
	}
	if buf.Len()%512 != 0 {
		t.Errorf("archive of %d bytes, want a multiple of 512 (another may follow)", buf.Len())
	}
	got := readCPIO(t, buf.Bytes())
	var names []string
	for _, e := range got {
		names = append(names, e.name)
	}
	if want := []string{"a", "a/b", "a/b/file", "a/link", "console"}; !slices.Equal(names, want) {
		t.Fatalf("members %q, want %q", names, want)
	}
	for _, c := range []struct {
		i    int
		mode uint32
		data string
	}{{0, 0o040755, ""}, {2, 0o100755, "hello"}, {3, 0o120777, "b/file"}, {4, 0o020600, ""}} {
		if uint32(got[c.i].mode) != c.mode || string(got[c.i].data) != c.data {
			t.Errorf("%s: mode %o data %q, want %o %q", got[c.i].name, got[c.i].mode, got[c.i].data, c.mode, c.data)
		}
	}
	for _, bad := range []string{"", "/abs", "a/../b", "a/"} {
		if err := writeCPIO(&bytes.Buffer{}, []cpioEntry{{name: bad, mode: 0o644}}); err == nil {
			t.Errorf("member name %q accepted", bad)
		}
	}
}

func TestQemuArgs(t *testing.T) {
	cfg := vmConfig{kernel: "/c/vmlinux", initrd: "/w/initrd", image: "/c,x/root.img", console: "/w/console.log",
		ports: map[string]string{portCtl: "/w/ctl", portOut: "/w/out", portErr: "/w/err"}, mem: 1024, smp: 2, quiet: true}
	args := strings.Join(qemuArgs(cfg), " ")
	for _, want := range []string{
		"-accel tcg,thread=multi", "-nic none", "-nodefaults", "-no-reboot", "-kernel /c/vmlinux",
		"file=/c,,x/root.img,if=none,id=root,format=raw,readonly=on",
		"virtserialport,chardev=port0,name=sbx.ctl", "file,id=port2,path=/w/err",
		"cgroup_no_v1=all", "systemd.unified_cgroup_hierarchy=1", "panic=-1",
	} {
		if !strings.Contains(args, want) {
			t.Errorf("qemu args lack %q:\n%s", want, args)
		}
	}
	if strings.Contains(args, "kvm") || strings.Contains(args, "netdev") {
		t.Errorf("qemu args ask for kvm or a network:\n%s", args)
	}
}

func TestParseEvent(t *testing.T) {
	for _, c := range []struct {
		line string
		want event
		ok   bool
	}{
		{"ready 9.37 running", event{kind: "ready", detail: "guest uptime 9.37 s, system running"}, true},
		{"step 2 1", event{kind: "step", status: 1, detail: "2"}, true},
		{"exit 0", event{kind: "exit"}, true},
		{"exit x", event{}, false},
		{"", event{}, false},
		{"hello", event{}, false},
	} {
		got, ok := parseEvent(c.line)
		if ok != c.ok || (ok && got != c.want) {
			t.Errorf("parseEvent(%q) = %+v, %v; want %+v, %v", c.line, got, ok, c.want, c.ok)
		}
	}
}

func TestBzPayload(t *testing.T) {
	b := make([]byte, 8192)
	b[0x1f1] = 3 // setup sectors: the kernel proper starts at 4*512
	copy(b[0x202:], "HdrS")
	binary.LittleEndian.PutUint16(b[0x206:], 0x20f)
	binary.LittleEndian.PutUint32(b[0x248:], 100)
	binary.LittleEndian.PutUint32(b[0x24c:], 6)
	copy(b[4*512+100:], "\xfd7zXZ\x00")
	p, err := bzPayload(b)
	if err != nil || string(p) != "\xfd7zXZ\x00" {
		t.Errorf("bzPayload = %q, %v", p, err)
	}
	binary.LittleEndian.PutUint32(b[0x24c:], 1<<20)
	if _, err := bzPayload(b); err == nil {
		t.Error("a payload past the end of the file was accepted")
	}
	if _, err := bzPayload(b[:0x100]); err == nil {
		t.Error("a file without a boot header was accepted")
	}
}

func TestJobSteps(t *testing.T) {
	base := options{timeout: time.Minute}
	steps := jobSteps(base)
	if len(steps) != 2 || steps[0].user != testUser || steps[1].user != noSubUser {
		t.Fatalf("tests: steps %+v", steps)
	}
	if !strings.Contains(steps[0].script, "-test.skip='"+vmSkip+"'") || !strings.Contains(steps[1].script, "-test.run='^"+noSubTest+"$'") {
		t.Errorf("tests: scripts\n%s\n%s", steps[0].script, steps[1].script)
	}
	o := base
	o.runPattern = "TestIdentity"
	if steps := jobSteps(o); len(steps) != 1 || !strings.Contains(steps[0].script, "-test.run='TestIdentity'") {
		t.Errorf("-run TestIdentity: steps %+v", steps)
	}
	o = base
	o.cmd, o.root = "id", true
	if steps := jobSteps(o); len(steps) != 1 || steps[0].user != "root" || !strings.HasSuffix(steps[0].script, "\nid\n") ||
		!strings.Contains(steps[0].script, "SBX_TEST_VM=1") {
		t.Errorf("-root -cmd id: steps %+v", steps)
	}
}

func TestModuleName(t *testing.T) {
	for file, want := range map[string]string{"virtio-rng.ko": "virtio_rng", "ext4.ko.xz": "ext4", "jbd2.ko.zst": "jbd2", "x.o": ""} {
		if got, _ := moduleName(file); got != want {
			t.Errorf("moduleName(%q) = %q, want %q", file, got, want)
		}
	}
}
