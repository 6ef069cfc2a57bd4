package main

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"debug/elf"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"
)

// The recipe of the cached VM parts. Everything that changes what is
// built is part of its hash (cacheKey); the mirror is where, not what.
const (
	cacheFormat = "sbx-vm cache 1"
	suite       = "bookworm"
	kernelMeta  = "linux-image-amd64" // depends on the versioned image package
	busyboxPath = "/bin/busybox"      // from busybox-static: the initramfs has no libc
)

// imagePackages are installed on top of debootstrap's minbase. dbus is
// named although libpam-systemd pulls it in: without it, libpam-systemd
// fails to configure.
var imagePackages = []string{
	"systemd-sysv", "udev", "dbus", "dbus-user-session", "libpam-systemd",
	"uidmap", "kmod", "procps", "util-linux",
	"make", // the build profile's end-to-end test runs make
}

// initModules are loaded by the initramfs, in this order (insmod resolves
// no dependencies): virtio transport, the console ports and the RNG, the
// block device and ext4 for the root image, overlay for the writable root.
// crc32c_generic must come before ext4.
var initModules = []string{
	"virtio_ring", "virtio", "virtio_pci_modern_dev", "virtio_pci_legacy_dev", "virtio_pci",
	"overlay", "virtio_console", "virtio-rng",
	"virtio_blk", "crc16", "mbcache", "jbd2", "crc32c_generic", "ext4",
}

// cacheFiles are the cached parts, by name in the cache directory.
const (
	fileKernel    = "vmlinux"
	fileInitramfs = "initramfs.cpio"
	fileImage     = "root.img"
	fileInfo      = "info"
)

// cacheKey hashes the recipe: the constants above and the guest files
// baked into the cache.
func cacheKey() string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\n%s\n%s\n%q\n%q\n", cacheFormat, suite, kernelMeta, imagePackages, initModules)
	for _, name := range []string{"init", "provision.sh", "sbx-vm.target", "sbx-vm.service"} {
		b := mustGuestFile(name)
		fmt.Fprintf(h, "%s %d\n", name, len(b))
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// cache is a built set of VM parts.
type cache struct {
	dir  string
	info string // what was built, and when
}

func (c cache) path(name string) string { return filepath.Join(c.dir, name) }

// ensureCache returns the cache for the current recipe under root,
// building it first if it is missing. A lock serializes concurrent runs;
// a build happens in a temporary directory renamed into place, so a
// half-built cache is never used. Caches of other recipes are removed.
func ensureCache(root, mirror string, logf func(string, ...any)) (c cache, built bool, err error) {
	key := cacheKey()
	c.dir = filepath.Join(root, key)
	if info, err := os.ReadFile(c.path(fileInfo)); err == nil {
		c.info = strings.TrimSpace(string(info))
		return c, false, nil
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		return c, false, err
	}
	lock, err := os.OpenFile(filepath.Join(root, ".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return c, false, err
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return c, false, fmt.Errorf("lock %s: %w", lock.Name(), err)
	}
	if info, err := os.ReadFile(c.path(fileInfo)); err == nil { // built while we waited
		c.info = strings.TrimSpace(string(info))
		return c, false, nil
	}
	if os.Geteuid() != 0 {
		return c, false, fmt.Errorf("no VM cache at %s, and building one needs root (debootstrap, chroot, mkfs.ext4 -d)", c.dir)
	}
	for _, tool := range []string{"apt-get", "dpkg-deb", "debootstrap", "chroot", "mkfs.ext4", "xz"} {
		if _, err := exec.LookPath(tool); err != nil {
			return c, false, fmt.Errorf("building the VM cache: %s is not on PATH (apt-get install %s)", tool, hostPackages)
		}
	}
	tmp := filepath.Join(root, key+".tmp")
	if err := os.RemoveAll(tmp); err != nil {
		return c, false, err
	}
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return c, false, err
	}
	defer os.RemoveAll(tmp)
	info, err := build(tmp, mirror, logf)
	if err != nil {
		return c, false, err
	}
	if err := os.WriteFile(filepath.Join(tmp, fileInfo), []byte(info+"\n"), 0o644); err != nil {
		return c, false, err
	}
	if err := os.Rename(tmp, c.dir); err != nil {
		return c, false, err
	}
	c.info = info
	pruneCaches(root, key, logf)
	return c, true, nil
}

var keyName = regexp.MustCompile(`^[0-9a-f]{16}(\.tmp)?$`)

// pruneCaches removes the caches of other recipes (each ~400 MB).
func pruneCaches(root, keep string, logf func(string, ...any)) {
	entries, _ := os.ReadDir(root)
	for _, e := range entries {
		if e.IsDir() && keyName.MatchString(e.Name()) && !strings.HasPrefix(e.Name(), keep) {
			logf("removing the cache of another recipe: %s", filepath.Join(root, e.Name()))
			os.RemoveAll(filepath.Join(root, e.Name()))
		}
	}
}

// build makes the kernel, the initramfs and the root image in dir.
func build(dir, mirror string, logf func(string, ...any)) (string, error) {
	start := time.Now()
	kdir := filepath.Join(dir, "kernel-pkg")
	version, pkg, err := fetchKernel(dir, kdir)
	if err != nil {
		return "", err
	}
	if err := extractVmlinux(filepath.Join(kdir, "boot", "vmlinuz-"+version), filepath.Join(dir, fileKernel)); err != nil {
		return "", err
	}
	if err := buildInitramfs(filepath.Join(kdir, "lib", "modules", version), filepath.Join(dir, fileInitramfs)); err != nil {
		return "", err
	}
	os.RemoveAll(kdir)
	logf("kernel %s (%s) and initramfs ready after %.1fs", version, pkg, time.Since(start).Seconds())

	rootfs := filepath.Join(dir, "rootfs")
	if err := buildRootfs(rootfs, mirror, filepath.Join(dir, "debootstrap.log")); err != nil {
		return "", err
	}
	if err := makeImage(rootfs, filepath.Join(dir, fileImage)); err != nil {
		return "", err
	}
	if err := os.RemoveAll(rootfs); err != nil {
		return "", err
	}
	os.Remove(filepath.Join(dir, "debootstrap.log"))
	logf("root image ready after %.1fs", time.Since(start).Seconds())
	return fmt.Sprintf("kernel %s (%s), debian %s, built %s", version, pkg, suite, time.Now().UTC().Format(time.RFC3339)), nil
}

// run runs a command, with its output in the error if it fails.
func run(dir string, name string, args ...string) ([]byte, error) {
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("%s %s: %w\n%s", name, strings.Join(args, " "), err, tail(stderr.Bytes(), 4000))
	}
	return out, nil
}

var versionedImage = regexp.MustCompile(`^linux-image-(\d[^ ]*)$`)

// fetchKernel downloads Debian's kernel with the host's apt and unpacks
// it in kdir; it returns the kernel version (6.1.0-56-amd64) and the
// versioned package (name=version).
func fetchKernel(dir, kdir string) (version, pkg string, err error) {
	download := func(name string) (string, error) {
		if _, err := run(dir, "apt-get", "download", "-q", "-o", "APT::Sandbox::User=root", name); err != nil {
			return "", fmt.Errorf("%w\nhint: run apt-get update", err)
		}
		debs, _ := filepath.Glob(filepath.Join(dir, name+"_*.deb"))
		if len(debs) != 1 {
			return "", fmt.Errorf("apt-get download %s: want one .deb, found %q", name, debs)
		}
		return debs[0], nil
	}
	meta, err := download(kernelMeta)
	if err != nil {
		return "", "", err
	}
	deps, err := run(dir, "dpkg-deb", "-f", meta, "Depends")
	if err != nil {
		return "", "", err
	}
	var image string
	for _, d := range strings.Split(string(deps), ",") {
		name, _, _ := strings.Cut(strings.TrimSpace(d), " ")
		if m := versionedImage.FindStringSubmatch(name); m != nil {
			image, version = name, m[1]
		}
	}
	if image == "" {
		return "", "", fmt.Errorf("%s depends on no linux-image-VERSION: %q", kernelMeta, deps)
	}
	deb, err := download(image)
	if err != nil {
		return "", "", err
	}
	if _, err := run(dir, "dpkg-deb", "-x", deb, kdir); err != nil {
		return "", "", err
	}
	pv, err := run(dir, "dpkg-deb", "-f", deb, "Version")
	if err != nil {
		return "", "", err
	}
	os.Remove(meta)
	os.Remove(deb)
	return version, image + "=" + strings.TrimSpace(string(pv)), nil
}

// extractVmlinux writes the ELF kernel inside a bzImage, as
// linux/scripts/extract-vmlinux does, but from the boot header's
// payload_offset and payload_length (boot protocol 2.08+,
// Documentation/arch/x86/boot.rst) rather than by scanning. QEMU boots
// the ELF through its PVH entry, which under TCG saves the in-guest
// decompression (~3 s).
func extractVmlinux(bzImage, out string) error {
	b, err := os.ReadFile(bzImage)
	if err != nil {
		return err
	}
	payload, err := bzPayload(b)
	if err != nil {
		return fmt.Errorf("%s: %w", bzImage, err)
	}
	var dec io.Reader
	switch {
	case bytes.HasPrefix(payload, []byte("\xfd7zXZ\x00")):
		dec, err = pipeThrough(payload, "xz", "-dc", "--single-stream")
	case bytes.HasPrefix(payload, []byte("\x28\xb5\x2f\xfd")):
		dec, err = pipeThrough(payload, "zstd", "-dcq")
	case bytes.HasPrefix(payload, []byte("\x1f\x8b")):
		dec, err = gzip.NewReader(bytes.NewReader(payload))
	default:
		return fmt.Errorf("%s: unknown compression of the payload (% x)", bzImage, payload[:min(8, len(payload))])
	}
	if err != nil {
		return fmt.Errorf("%s: %w", bzImage, err)
	}
	vmlinux, err := io.ReadAll(dec)
	if err != nil {
		return fmt.Errorf("%s: decompress: %w", bzImage, err)
	}
	f, err := elf.NewFile(bytes.NewReader(vmlinux))
	if err != nil {
		return fmt.Errorf("%s: the payload is not an ELF kernel: %w", bzImage, err)
	}
	f.Close()
	return os.WriteFile(out, vmlinux, 0o644)
}

// bzPayload returns the compressed kernel inside a bzImage.
func bzPayload(b []byte) ([]byte, error) {
	if len(b) < 0x250 || string(b[0x202:0x206]) != "HdrS" {
		return nil, errors.New("not a bzImage (no HdrS boot header)")
	}
	if v := binary.LittleEndian.Uint16(b[0x206:]); v < 0x208 {
		return nil, fmt.Errorf("boot protocol %#x has no payload fields (want 2.08+)", v)
	}
	setupSects := int(b[0x1f1])
	if setupSects == 0 {
		setupSects = 4
	}
	off := (setupSects+1)*512 + int(binary.LittleEndian.Uint32(b[0x248:]))
	n := int(binary.LittleEndian.Uint32(b[0x24c:]))
	if off < 0 || n <= 0 || off+n > len(b) {
		return nil, fmt.Errorf("payload %d+%d outside the file (%d bytes)", off, n, len(b))
	}
	return b[off : off+n], nil
}

func pipeThrough(in []byte, name string, args ...string) (io.Reader, error) {
	cmd := exec.Command(name, args...)
	cmd.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("%s: %w: %s", name, err, bytes.TrimSpace(stderr.Bytes()))
	}
	return bytes.NewReader(out), nil
}

// buildInitramfs writes the cached initramfs: busybox, /init, the modules
// (decompressed: insmod of a static busybox may not read .ko.xz) and
// their load order in /modules.
func buildInitramfs(moddir, out string) error {
	bb, err := os.ReadFile(busyboxPath)
	if err != nil {
		return fmt.Errorf("%w (apt-get install busybox-static)", err)
	}
	if f, err := elf.NewFile(bytes.NewReader(bb)); err != nil {
		return fmt.Errorf("%s: %w", busyboxPath, err)
	} else {
		for _, p := range f.Progs {
			if p.Type == elf.PT_INTERP {
				return fmt.Errorf("%s is dynamically linked; the initramfs needs busybox-static", busyboxPath)
			}
		}
	}
	found := map[string]string{} // module name, "-" as "_" -> path
	err = filepath.WalkDir(moddir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name, ok := moduleName(d.Name())
		if !d.IsDir() && ok {
			found[name] = p
		}
		return nil
	})
	if err != nil {
		return err
	}
	entries := []cpioEntry{
		{name: "bin", mode: fs.ModeDir | 0o755},
		{name: "bin/busybox", mode: 0o755, data: bb},
		{name: "dev", mode: fs.ModeDir | 0o755},
		{name: "dev/console", mode: fs.ModeDevice | fs.ModeCharDevice | 0o600, major: 5, minor: 1},
		{name: "init", mode: 0o755, data: mustGuestFile("init")},
		{name: "lib", mode: fs.ModeDir | 0o755},
		{name: "lib/modules", mode: fs.ModeDir | 0o755},
		{name: "proc", mode: fs.ModeDir | 0o755},
		{name: "sys", mode: fs.ModeDir | 0o755},
	}
	var order strings.Builder
	for _, m := range initModules {
		p, ok := found[strings.ReplaceAll(m, "-", "_")]
		if !ok {
			return fmt.Errorf("module %s is not in %s", m, moddir)
		}
		ko, err := readModule(p)
		if err != nil {
			return err
		}
		entries = append(entries, cpioEntry{name: "lib/modules/" + m + ".ko", mode: 0o644, data: ko})
		order.WriteString(m + "\n")
	}
	entries = append(entries, cpioEntry{name: "modules", mode: 0o644, data: []byte(order.String())})
	var buf bytes.Buffer
	if err := writeCPIO(&buf, entries); err != nil {
		return err
	}
	return os.WriteFile(out, buf.Bytes(), 0o644)
}

// moduleName returns the module name of a file name (virtio-rng.ko.xz ->
// virtio_rng), with "-" as "_" as the kernel treats them alike.
func moduleName(file string) (string, bool) {
	for _, ext := range []string{".ko", ".ko.xz", ".ko.zst", ".ko.gz"} {
		if base, ok := strings.CutSuffix(file, ext); ok {
			return strings.ReplaceAll(base, "-", "_"), true
		}
	}
	return "", false
}

func readModule(p string) ([]byte, error) {
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, err
	}
	var r io.Reader
	switch {
	case strings.HasSuffix(p, ".xz"):
		r, err = pipeThrough(b, "xz", "-dc")
	case strings.HasSuffix(p, ".zst"):
		r, err = pipeThrough(b, "zstd", "-dcq")
	case strings.HasSuffix(p, ".gz"):
		r, err = gzip.NewReader(bytes.NewReader(b))
	default:
		return b, nil
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	return io.ReadAll(r)
}

// buildRootfs debootstraps a minimal Debian with systemd into dir and
// provisions it (guest/provision.sh in a chroot).
func buildRootfs(dir, mirror, logFile string) error {
	log, err := os.Create(logFile)
	if err != nil {
		return err
	}
	defer log.Close()
	cmd := exec.Command("debootstrap", "--variant=minbase", "--include="+strings.Join(imagePackages, ","), suite, dir, mirror)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Run(); err != nil {
		b, _ := os.ReadFile(logFile)
		return fmt.Errorf("debootstrap %s %s: %w\n%s", suite, mirror, err, tail(b, 4000))
	}
	for _, u := range []string{"sbx-vm.target", "sbx-vm.service"} {
		if err := os.WriteFile(filepath.Join(dir, "etc/systemd/system", u), mustGuestFile(u), 0o644); err != nil {
			return err
		}
	}
	cmd = exec.Command("chroot", dir, "/bin/sh", "-s")
	cmd.Stdin = bytes.NewReader(mustGuestFile("provision.sh"))
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C"}
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("provision the image (guest/provision.sh): %w\n%s", err, tail(out, 4000))
	}
	return nil
}

// makeImage writes dir as an ext4 image with some room to spare
// (mkfs.ext4 -d; the image is attached read-only).
func makeImage(dir, out string) error {
	var size, files int64
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		files++
		if info, err := d.Info(); err == nil && info.Mode().IsRegular() {
			size += (info.Size() + 4095) &^ 4095
		}
		return nil
	})
	if err != nil {
		return err
	}
	mb := (size*5/4)>>20 + 64
	_, err = run("", "mkfs.ext4", "-q", "-F", "-L", "sbx-vm", "-O", "^has_journal",
		"-N", fmt.Sprint(files*5/4+1024), "-d", dir, out, fmt.Sprintf("%dM", mb))
	return err
}

// tail returns at most the last n bytes of b.
func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}
