package sandbox

import (
	"errors"
	"fmt"
	"path"
	"strings"

	"golang.org/x/sys/unix"

	"sbx/policy"
)

// The view is built with the mount API of Linux 5.2+ (open_tree(2),
// move_mount(2), fsopen(2), fsmount(2), mount_setattr(2) of 5.12):
// sources are cloned into detached trees while the host's view is
// still there, attributes are set on a whole detached tree at once
// (AT_RECURSIVE: read-only holds for submounts), and every destination
// is an O_PATH descriptor resolved with openat2(2) inside the new root
// (RESOLVE_IN_ROOT), or beneath a writable grant (RESOLVE_BENEATH), so
// a symlink can never lead a mount out of the tree it was granted in.

const (
	attrRO      = unix.MOUNT_ATTR_RDONLY
	attrNosuid  = unix.MOUNT_ATTR_NOSUID
	attrNodev   = unix.MOUNT_ATTR_NODEV
	attrNoexec  = unix.MOUNT_ATTR_NOEXEC
	cloneFlags  = unix.OPEN_TREE_CLONE | unix.OPEN_TREE_CLOEXEC
	resolveRoot = unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS
)

// devNodes are bound from the host's /dev into the sandbox's.
var devNodes = []string{"null", "zero", "full", "random", "urandom", "tty"}

// procReadOnly are the parts of the fresh /proc made read-only, as
// bubblewrap does: the sysctls and the knobs that reach the host kernel.
var procReadOnly = []string{"sys", "sysrq-trigger", "irq", "bus"}

// view builds the sandbox's filesystem from the plan's mount list and
// pivots into it. It runs in pid1, in the sandbox's new mount namespace.
type view struct {
	root    int         // the new root tmpfs, attached at "/"
	sources map[int]int // plan index → detached clone of the bind source
	devs    map[string]int
	proc    int // a fresh procfs, detached
}

func buildView(mounts []policy.Mount) (err error) {
	v := &view{root: -1, proc: -1, sources: map[int]int{}, devs: map[string]int{}}
	defer v.closeAll()
	// Nothing done here may propagate back to the host's namespace.
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return opErr("make / private")(err)
	}
	// First, while the host's tree is visible: clone every source.
	for i, m := range mounts {
		switch m.Op {
		case policy.OpBind:
			fd, err := openSource(m)
			if err != nil {
				return opErr("bind %s", m.Source)(err)
			}
			v.sources[i] = fd
		case policy.OpDev:
			for _, n := range devNodes {
				fd, err := unix.OpenTree(unix.AT_FDCWD, "/dev/"+n, cloneFlags)
				if err != nil {
					return opErr("bind /dev/%s", n)(err)
				}
				v.devs[n] = fd
			}
		case policy.OpProc:
			// A new procfs must be made while a full one is visible
			// (mount_too_revealing in fs/namespace.c).
			fd, err := newFS("proc", nil, attrNosuid|attrNodev|attrNoexec)
			if err != nil {
				return opErr("mount proc")(err)
			}
			v.proc = fd
		}
	}
	if _, ok := v.devs["null"]; !ok {
		fd, err := unix.OpenTree(unix.AT_FDCWD, "/dev/null", cloneFlags)
		if err != nil {
			return opErr("bind /dev/null")(err)
		}
		v.devs["null"] = fd
	}
	// The new root: a tmpfs stacked over "/", so no host directory is
	// needed as a staging point.
	rootMnt, err := newFS("tmpfs", map[string]string{"mode": "0755"}, attrNosuid|attrNodev)
	if err != nil {
		return opErr("mount tmpfs /")(err)
	}
	if err := unix.MoveMount(rootMnt, "", unix.AT_FDCWD, "/", unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
		unix.Close(rootMnt)
		return opErr("attach the new root")(err)
	}
	v.root = rootMnt
	for i, m := range mounts {
		if err := v.apply(i, m); err != nil {
			return err
		}
	}
	if err := unix.Fchdir(v.root); err != nil {
		return opErr("chdir to the new root")(err)
	}
	if err := unix.PivotRoot(".", "."); err != nil {
		return opErr("pivot_root")(err)
	}
	if err := unix.Unmount(".", unix.MNT_DETACH); err != nil {
		return opErr("detach the old root")(err)
	}
	if err := unix.Chdir("/"); err != nil {
		return opErr("chdir /")(err)
	}
	return nil
}

func (v *view) closeAll() {
	for _, fd := range v.sources {
		unix.Close(fd)
	}
	for _, fd := range v.devs {
		unix.Close(fd)
	}
	if v.proc >= 0 {
		unix.Close(v.proc)
	}
	if v.root >= 0 {
		unix.Close(v.root)
	}
}

func (v *view) apply(i int, m policy.Mount) error {
	switch m.Op {
	case policy.OpTmpfs:
		if m.Dest == "/" {
			return nil // the root itself
		}
		mode := m.Mode
		if mode == 0 {
			mode = 0o755
		}
		fd, err := newFS("tmpfs", map[string]string{"mode": fmt.Sprintf("%04o", mode)}, attrNosuid|attrNodev)
		if err != nil {
			return opErr("tmpfs %s", m.Dest)(err)
		}
		defer unix.Close(fd)
		return v.attach(fd, m.Dest, m.DestBeneath, true, "tmpfs %s", m.Dest)
	case policy.OpBind:
		fd := v.sources[i]
		attr := uint64(attrNosuid | attrNodev)
		if m.ReadOnly {
			attr |= attrRO
		}
		if err := setattr(fd, attr); err != nil {
			return opErr("bind %s", m.Source)(err)
		}
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil {
			return opErr("bind %s", m.Source)(err)
		}
		return v.attach(fd, m.Dest, m.DestBeneath, st.Mode&unix.S_IFMT == unix.S_IFDIR, "bind %s", m.Source)
	case policy.OpSymlink:
		parent, err := v.mkdirAll(path.Dir(m.Dest), "")
		if err != nil {
			return opErr("symlink %s", m.Dest)(err)
		}
		defer unix.Close(parent)
		if err := unix.Symlinkat(m.Target, parent, path.Base(m.Dest)); err != nil {
			return opErr("symlink %s -> %s", m.Dest, m.Target)(err)
		}
	case policy.OpProc:
		if err := v.attach(v.proc, m.Dest, "", true, "mount proc %s", m.Dest); err != nil {
			return err
		}
		for _, name := range procReadOnly {
			p := path.Join(m.Dest, name)
			fd, err := unix.OpenTree(v.root, inRoot(p), cloneFlags|unix.AT_RECURSIVE)
			if errors.Is(err, unix.ENOENT) {
				continue
			}
			if err != nil {
				return opErr("read-only %s", p)(err)
			}
			err = setattr(fd, attrRO|attrNosuid|attrNodev|attrNoexec)
			if err == nil {
				err = v.attach(fd, p, "", false, "read-only %s", p)
			}
			unix.Close(fd)
			if err != nil {
				return opErr("read-only %s", p)(err)
			}
		}
	case policy.OpDev:
		return v.dev(m.Dest)
	case policy.OpHide:
		return v.hide(m)
	case policy.OpRootRO:
		if err := unix.MountSetattr(v.root, "", unix.AT_EMPTY_PATH, &unix.MountAttr{Attr_set: attrRO}); err != nil {
			return opErr("remount / read-only")(err)
		}
	default:
		return fmt.Errorf("unknown mount operation %q", m.Op)
	}
	return nil
}

func (v *view) dev(dest string) error {
	fail := opErr("mount %s", dest)
	fd, err := newFS("tmpfs", map[string]string{"mode": "0755"}, attrNosuid|attrNoexec)
	if err != nil {
		return fail(err)
	}
	err = v.attach(fd, dest, "", true, "mount %s", dest)
	unix.Close(fd)
	if err != nil {
		return err
	}
	for _, n := range devNodes {
		if err := v.attach(v.devs[n], path.Join(dest, n), "", false, "bind /dev/%s", n); err != nil {
			return err
		}
	}
	pts, err := newFS("devpts", map[string]string{"newinstance": "", "ptmxmode": "0666", "mode": "0620"}, attrNosuid|attrNoexec)
	if err != nil {
		return opErr("mount devpts")(err)
	}
	err = v.attach(pts, path.Join(dest, "pts"), "", true, "mount %s/pts", dest)
	unix.Close(pts)
	if err != nil {
		return err
	}
	shm, err := newFS("tmpfs", map[string]string{"mode": "1777"}, attrNosuid|attrNodev)
	if err != nil {
		return opErr("mount %s/shm", dest)(err)
	}
	err = v.attach(shm, path.Join(dest, "shm"), "", true, "mount %s/shm", dest)
	unix.Close(shm)
	if err != nil {
		return err
	}
	dir, err := v.resolve(dest, "")
	if err != nil {
		return fail(err)
	}
	defer unix.Close(dir)
	for name, target := range map[string]string{
		"ptmx": "pts/ptmx", "fd": "/proc/self/fd", "stdin": "/proc/self/fd/0",
		"stdout": "/proc/self/fd/1", "stderr": "/proc/self/fd/2",
	} {
		if err := unix.Symlinkat(target, dir, name); err != nil {
			return opErr("symlink %s/%s", dest, name)(err)
		}
	}
	// Nothing new can be created in /dev; /dev/shm stays writable.
	if err := unix.MountSetattr(dir, "", unix.AT_EMPTY_PATH, &unix.MountAttr{Attr_set: attrRO}); err != nil {
		return opErr("remount %s read-only", dest)(err)
	}
	return nil
}

// hide masks whatever the view shows at m.Dest: an empty read-only
// tmpfs over a directory, the null device (read-only) over anything
// else. Nothing there is an error: a mask that masks nothing is most
// likely a path given as the host names it, not as the sandbox does.
func (v *view) hide(m policy.Mount) error {
	fd, err := v.resolve(m.Dest, m.DestBeneath)
	if errors.Is(err, unix.ENOENT) && m.Optional {
		return nil
	}
	if errors.Is(err, unix.ENOENT) {
		return opErr("hide %s", m.Dest)(fmt.Errorf("nothing there in the sandbox's view (--hide takes the path inside the sandbox)"))
	}
	if err != nil {
		return opErr("hide %s", m.Dest)(err)
	}
	var st unix.Stat_t
	err = unix.Fstat(fd, &st)
	if err != nil {
		unix.Close(fd)
		return opErr("hide %s", m.Dest)(err)
	}
	// A link into /proc (/etc/mtab) would mask a file of init's, which
	// no payload reads (its /proc/self is not init's).
	var sfs unix.Statfs_t
	if err := unix.Fstatfs(fd, &sfs); err != nil || sfs.Type == unix.PROC_SUPER_MAGIC || sfs.Type == unix.DEVPTS_SUPER_MAGIC {
		unix.Close(fd)
		if err == nil {
			err = errors.New("it leads into the sandbox's /proc or /dev/pts (through a symlink), which no mask can cover")
		}
		return opErr("hide %s", m.Dest)(err)
	}
	var mask int
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		mask, err = newFS("tmpfs", map[string]string{"mode": "0755", "size": "4k", "nr_inodes": "1"}, attrRO|attrNosuid|attrNodev|attrNoexec)
	} else {
		mask, err = unix.OpenTree(v.devs["null"], "", cloneFlags|unix.AT_EMPTY_PATH)
		if err == nil {
			err = setattr(mask, attrRO|attrNosuid|attrNoexec)
		}
	}
	if err != nil {
		unix.Close(fd)
		return opErr("hide %s", m.Dest)(err)
	}
	defer unix.Close(mask)
	err = unix.MoveMount(mask, "", fd, "", unix.MOVE_MOUNT_F_EMPTY_PATH|unix.MOVE_MOUNT_T_EMPTY_PATH)
	unix.Close(fd)
	if err != nil {
		return opErr("hide %s", m.Dest)(err)
	}
	return nil
}

// attach moves the detached mount mnt onto dest inside the new root,
// creating the mount point (a directory, or an empty file) if missing.
func (v *view) attach(mnt int, dest, beneath string, dir bool, format string, args ...any) error {
	fail := opErr(format, args...)
	target, err := v.resolve(dest, beneath)
	if errors.Is(err, unix.ENOENT) {
		target, err = v.create(dest, beneath, dir)
	}
	var esc *escapeError
	if errors.As(err, &esc) {
		return fail(err)
	}
	if err != nil {
		return fail(fmt.Errorf("mount point %s: %w", dest, err))
	}
	defer unix.Close(target)
	if err := unix.MoveMount(mnt, "", target, "", unix.MOVE_MOUNT_F_EMPTY_PATH|unix.MOVE_MOUNT_T_EMPTY_PATH); err != nil {
		return fail(fmt.Errorf("attach at %s: %w", dest, err))
	}
	return nil
}

// resolve opens dest (a path of the sandbox) as an O_PATH descriptor.
// Symlinks are followed as if the new root were "/", and, when beneath
// is a writable grant that contains dest, only while they stay in it.
func (v *view) resolve(dest, beneath string) (int, error) {
	how := &unix.OpenHow{Flags: unix.O_PATH | unix.O_CLOEXEC, Resolve: resolveRoot}
	if beneath == "" {
		return unix.Openat2(v.root, inRoot(dest), how)
	}
	base, err := unix.Openat2(v.root, inRoot(beneath), how)
	if err != nil {
		return -1, err
	}
	defer unix.Close(base)
	rel := strings.TrimPrefix(strings.TrimPrefix(dest, beneath), "/")
	if rel == "" {
		rel = "."
	}
	fd, err := unix.Openat2(base, rel, &unix.OpenHow{
		Flags: unix.O_PATH | unix.O_CLOEXEC, Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_MAGICLINKS,
	})
	if errors.Is(err, unix.EXDEV) {
		return -1, &escapeError{grant: beneath}
	}
	return fd, err
}

// escapeError says that a path inside a writable grant goes through a
// symlink that leads out of it.
type escapeError struct{ grant string }

func (e *escapeError) Error() string {
	return "a symlink leads out of " + e.grant + ", which the sandbox can write"
}

func (e *escapeError) Unwrap() error { return unix.EXDEV }

// inRoot turns a sandbox path into one relative to the root descriptor.
func inRoot(p string) string {
	if r := strings.TrimLeft(p, "/"); r != "" {
		return r
	}
	return "."
}

// create makes the mount point dest: its parents as directories, itself
// as a directory or an empty file.
func (v *view) create(dest, beneath string, dir bool) (int, error) {
	parent, err := v.mkdirAll(path.Dir(dest), beneath)
	if err != nil {
		return -1, err
	}
	defer unix.Close(parent)
	base := path.Base(dest)
	if dir {
		err = unix.Mkdirat(parent, base, 0o755)
	} else {
		var fd int
		fd, err = unix.Openat(parent, base, unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0o644)
		if err == nil {
			unix.Close(fd)
		}
	}
	if err != nil && !errors.Is(err, unix.EEXIST) {
		return -1, err
	}
	return v.resolve(dest, beneath)
}

// mkdirAll is mkdir -p inside the new root; it returns the directory.
func (v *view) mkdirAll(dir, beneath string) (int, error) {
	fd, err := v.resolve(dir, beneath)
	if err == nil || !errors.Is(err, unix.ENOENT) || dir == "/" || dir == beneath {
		return fd, err
	}
	parent, err := v.mkdirAll(path.Dir(dir), beneath)
	if err != nil {
		return -1, err
	}
	err = unix.Mkdirat(parent, path.Base(dir), 0o755)
	unix.Close(parent)
	if err != nil && !errors.Is(err, unix.EEXIST) {
		return -1, err
	}
	return v.resolve(dir, beneath)
}

// openSource clones the host tree at m.Source, recursively. A source
// inside a writable grant of the same plan is resolved beneath it: the
// sandbox may have planted symlinks there in an earlier run.
func openSource(m policy.Mount) (int, error) {
	if m.NoSymlinks {
		fd, err := unix.Openat2(unix.AT_FDCWD, m.Source, &unix.OpenHow{
			Flags: unix.O_PATH | unix.O_CLOEXEC, Resolve: unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS,
		})
		if errors.Is(err, unix.ELOOP) {
			return -1, fmt.Errorf("the path now goes through a symlink")
		}
		if err != nil {
			return -1, err
		}
		defer unix.Close(fd)
		return unix.OpenTree(fd, "", cloneFlags|unix.AT_RECURSIVE|unix.AT_EMPTY_PATH)
	}
	if m.SourceBeneath == "" {
		return unix.OpenTree(unix.AT_FDCWD, m.Source, cloneFlags|unix.AT_RECURSIVE)
	}
	base, err := unix.Open(m.SourceBeneath, unix.O_PATH|unix.O_CLOEXEC|unix.O_DIRECTORY, 0)
	if err != nil {
		return -1, err
	}
	defer unix.Close(base)
	rel := strings.TrimPrefix(strings.TrimPrefix(m.Source, m.SourceBeneath), "/")
	if rel == "" {
		rel = "."
	}
	fd, err := unix.Openat2(base, rel, &unix.OpenHow{
		Flags: unix.O_PATH | unix.O_CLOEXEC, Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_MAGICLINKS,
	})
	if errors.Is(err, unix.EXDEV) {
		return -1, &escapeError{grant: m.SourceBeneath}
	}
	if err != nil {
		return -1, err
	}
	defer unix.Close(fd)
	return unix.OpenTree(fd, "", cloneFlags|unix.AT_RECURSIVE|unix.AT_EMPTY_PATH)
}

// newFS creates a detached mount of a new filesystem instance.
func newFS(fstype string, opts map[string]string, attrs int) (int, error) {
	fs, err := unix.Fsopen(fstype, unix.FSOPEN_CLOEXEC)
	if err != nil {
		return -1, fmt.Errorf("fsopen %s: %w", fstype, err)
	}
	defer unix.Close(fs)
	for k, val := range opts {
		if val == "" {
			err = unix.FsconfigSetFlag(fs, k)
		} else {
			err = unix.FsconfigSetString(fs, k, val)
		}
		if err != nil {
			return -1, fmt.Errorf("%s option %s: %w", fstype, k, err)
		}
	}
	if err := unix.FsconfigCreate(fs); err != nil {
		return -1, fmt.Errorf("create %s: %w", fstype, err)
	}
	return unix.Fsmount(fs, unix.FSMOUNT_CLOEXEC, attrs)
}

func setattr(fd int, attr uint64) error {
	return unix.MountSetattr(fd, "", unix.AT_EMPTY_PATH|unix.AT_RECURSIVE, &unix.MountAttr{Attr_set: attr})
}
