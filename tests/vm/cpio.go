package main

import (
	"fmt"
	"io"
	"io/fs"
	"path"
	"slices"
)

// cpioEntry is one member of an initramfs: a directory, a regular file,
// a symlink or a character device. Names are relative ("bin/busybox").
type cpioEntry struct {
	name         string
	mode         fs.FileMode // type bits and permissions, as io/fs has them
	data         []byte      // file contents, or the symlink's target
	major, minor uint32      // for a device
}

// writeCPIO writes entries as a "newc" cpio archive (the format the kernel
// unpacks into its rootfs, see Documentation/driver-api/early-userspace/
// buffer-format.rst), every member owned by root, padded to 512 bytes so
// that another archive can follow it. Parent directories are not implied:
// list them before their members.
func writeCPIO(w io.Writer, entries []cpioEntry) error {
	n := int64(0)
	write := func(b []byte) error {
		m, err := w.Write(b)
		n += int64(m)
		return err
	}
	pad := func(align int64) error {
		if r := n % align; r != 0 {
			return write(make([]byte, align-r))
		}
		return nil
	}
	member := func(ino int, e cpioEntry) error {
		mode, err := cpioMode(e.mode)
		if err != nil {
			return fmt.Errorf("cpio %s: %w", e.name, err)
		}
		nlink := 1
		if e.mode.IsDir() {
			nlink = 2
		}
		hdr := fmt.Sprintf("070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
			ino, mode, 0, 0, nlink, 0, len(e.data), 0, 0, e.major, e.minor, len(e.name)+1, 0)
		if err := write([]byte(hdr + e.name + "\x00")); err != nil {
			return err
		}
		if err := pad(4); err != nil {
			return err
		}
		if err := write(e.data); err != nil {
			return err
		}
		return pad(4)
	}
	for i, e := range entries {
		if e.name == "" || path.IsAbs(e.name) || path.Clean(e.name) != e.name {
			return fmt.Errorf("cpio: bad member name %q", e.name)
		}
		if err := member(i+1, e); err != nil {
			return err
		}
	}
	if err := member(0, cpioEntry{name: "TRAILER!!!"}); err != nil {
		return err
	}
	return pad(512)
}

// cpioMode renders fs.FileMode as the st_mode bits cpio stores.
func cpioMode(m fs.FileMode) (uint32, error) {
	perm := uint32(m.Perm())
	switch {
	case m.IsDir():
		return 0o040000 | perm, nil
	case m&fs.ModeSymlink != 0:
		return 0o120000 | perm, nil
	case m&fs.ModeCharDevice != 0:
		return 0o020000 | perm, nil
	case m.IsRegular():
		return 0o100000 | perm, nil
	}
	return 0, fmt.Errorf("unsupported file mode %v", m)
}

// cpioDirs returns directory entries (mode 0755) for every parent of the
// given names, each once, parents first.
func cpioDirs(names ...string) []cpioEntry {
	var dirs []string
	for _, n := range names {
		for d := path.Dir(n); d != "."; d = path.Dir(d) {
			if !slices.Contains(dirs, d) {
				dirs = append(dirs, d)
			}
		}
	}
	slices.Sort(dirs) // "a" sorts before "a/b"
	out := make([]cpioEntry, len(dirs))
	for i, d := range dirs {
		out[i] = cpioEntry{name: d, mode: fs.ModeDir | 0o755}
	}
	return out
}
