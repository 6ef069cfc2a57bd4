package sandbox

import (
	"cmp"
	"embed"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strings"

	mobyseccomp "github.com/moby/profiles/seccomp"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	libseccomp "github.com/seccomp/libseccomp-golang"
	"golang.org/x/sys/unix"

	"sbx/policy"
)

// filter is a compiled seccomp program. With notification, prog answers
// every refusal with SECCOMP_RET_USER_NOTIF and real is the same filter
// with its real actions: PID 1 runs real on each notified call to learn
// which error to answer.
type filter struct {
	prog   []insn
	real   []insn
	notify bool
	arch   libseccomp.ScmpArch
}

// nsFlags are the clone(2)/unshare(2) flags that create a namespace.
const nsFlags = unix.CLONE_NEWNS | unix.CLONE_NEWCGROUP | unix.CLONE_NEWUTS | unix.CLONE_NEWIPC |
	unix.CLONE_NEWUSER | unix.CLONE_NEWPID | unix.CLONE_NEWNET | unix.CLONE_NEWTIME

// mountAPI are the calls of the new mount API. They answer ENOSYS, not
// EPERM, so that programs fall back to mount(2), which is refused
// (flatpak's choice, after CVE-2021-41133 let them through a blocklist).
// open_tree_attr (Linux 6.15) is open_tree with mount_setattr's attributes.
var mountAPI = []string{"open_tree", "open_tree_attr", "move_mount", "fsopen", "fsconfig", "fsmount", "fspick", "mount_setattr"}

// auditArches are the AUDIT_ARCH values of the native architectures sbx
// builds for; the terminal guard compares against it.
var auditArches = map[string]uint32{
	"amd64":   unix.AUDIT_ARCH_X86_64,
	"arm64":   unix.AUDIT_ARCH_AARCH64,
	"riscv64": unix.AUDIT_ARCH_RISCV64,
	"ppc64le": unix.AUDIT_ARCH_PPC64LE,
	"s390x":   unix.AUDIT_ARCH_S390X,
	"loong64": unix.AUDIT_ARCH_LOONGARCH64,
}

// The default filter, compiled ahead (libseccomp takes about 2.5 ms to
// compile it, a quarter of a sandbox's start): filters/default-ARCH.bpf
// and, for --log-denied, default-notify-ARCH.bpf. `go test ./sandbox
// -run TestBuiltinFilters -update` writes them; the test fails while they
// decide anything differently from a fresh compile.
//
//go:embed filters
var builtinFilters embed.FS

func builtinFilter(goarch string, notify bool) (*filter, error) {
	arch, err := libseccomp.GetNativeArch()
	if err != nil {
		return nil, err
	}
	real, err := readBuiltin("filters/default-" + goarch + ".bpf")
	if err != nil {
		return nil, err
	}
	f := &filter{prog: real, real: real, arch: arch}
	if notify {
		if f.prog, err = readBuiltin("filters/default-notify-" + goarch + ".bpf"); err != nil {
			return nil, err
		}
		f.notify = true
	}
	return f, nil
}

func readBuiltin(name string) ([]insn, error) {
	b, err := builtinFilters.ReadFile(name)
	if err != nil {
		return nil, err
	}
	return decodeBPF(b)
}

// encodeBPF is decodeBPF's inverse.
func encodeBPF(prog []insn) []byte {
	b := make([]byte, 8*len(prog))
	e := binary.NativeEndian
	for i, in := range prog {
		r := b[8*i:]
		e.PutUint16(r, in.Code)
		r[2], r[3] = in.Jt, in.Jf
		e.PutUint32(r[4:], in.K)
	}
	return b
}

// scmpAudit is the AUDIT_ARCH of the ABIs a profile may add (x32 runs
// under x86_64's, with bit 30 in its call numbers).
var scmpAudit = map[libseccomp.ScmpArch]uint32{
	libseccomp.ArchAMD64:   unix.AUDIT_ARCH_X86_64,
	libseccomp.ArchX32:     unix.AUDIT_ARCH_X86_64,
	libseccomp.ArchX86:     unix.AUDIT_ARCH_I386,
	libseccomp.ArchARM64:   unix.AUDIT_ARCH_AARCH64,
	libseccomp.ArchARM:     unix.AUDIT_ARCH_ARM,
	libseccomp.ArchRISCV64: unix.AUDIT_ARCH_RISCV64,
	libseccomp.ArchPPC64LE: unix.AUDIT_ARCH_PPC64LE,
	libseccomp.ArchS390X:   unix.AUDIT_ARCH_S390X,
}

// defaultProfile is Docker's default profile as it applies to a process
// without capabilities, for the native architecture only (the i386 and
// x32 ABIs of x86_64 and AArch32 of arm64 are then killed as foreign),
// with sbx's changes: the new mount API answers ENOSYS, and unshare(2)
// is allowed without a namespace flag (Docker refuses it altogether).
// clone(2) with a namespace flag, clone3 (ENOSYS, so that libc falls
// back to clone, whose flags can be read), mount, umount2, pivot_root,
// chroot, setns, keyctl, add_key, request_key, bpf, perf_event_open,
// userfaultfd, the kexec and module calls and personality(2) but for
// its harmless values are refused by Docker's profile already.
func defaultProfile() (*specs.LinuxSeccomp, error) {
	rs := &specs.Spec{Process: &specs.Process{Capabilities: &specs.LinuxCapabilities{}}}
	sp, err := mobyseccomp.GetDefaultProfile(rs)
	if err != nil {
		return nil, err
	}
	sp.Architectures = nil
	drop := append([]string{"unshare"}, mountAPI...)
	var calls []specs.LinuxSyscall
	for _, c := range sp.Syscalls {
		var names []string
		for _, n := range c.Names {
			if !contains(drop, n) {
				names = append(names, n)
			}
		}
		if len(names) > 0 {
			c.Names = names
			calls = append(calls, c)
		}
	}
	enosys := uint(unix.ENOSYS)
	calls = append(calls,
		specs.LinuxSyscall{Names: mountAPI, Action: specs.ActErrno, ErrnoRet: &enosys},
		specs.LinuxSyscall{Names: []string{"unshare"}, Action: specs.ActAllow,
			Args: []specs.LinuxSeccompArg{{Index: 0, Value: nsFlags, ValueTwo: 0, Op: specs.OpMaskedEqual}}},
	)
	sp.Syscalls = calls
	return sp, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// loadProfile reads an OCI or Docker JSON profile (Docker's includes and
// excludes evaluated for a process without capabilities).
func loadProfile(s policy.Seccomp) (*specs.LinuxSeccomp, error) {
	rs := &specs.Spec{Process: &specs.Process{Capabilities: &specs.LinuxCapabilities{}}}
	sp, err := mobyseccomp.LoadProfile(s.JSON, rs)
	if err != nil {
		return nil, err
	}
	if sp == nil {
		return nil, errors.New("no defaultAction and no syscalls: use --seccomp unconfined for no filter")
	}
	return sp, nil
}

// buildFilter compiles the plan's filter: the terminal guard, then the
// profile. It returns nil for mode unconfined.
func buildFilter(s policy.Seccomp) (*filter, error) {
	var sp *specs.LinuxSeccomp
	var err error
	switch s.Mode {
	case policy.SeccompUnconfined:
		return nil, nil
	case policy.SeccompDefault:
		if f, err := builtinFilter(runtime.GOARCH, s.LogDenied); err == nil {
			return f, nil
		}
		sp, err = defaultProfile()
	case policy.SeccompProfile:
		f, err := profileFilter(s)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", s.Path, err)
		}
		return f, nil
	default:
		return nil, fmt.Errorf("seccomp mode %q", s.Mode)
	}
	if err != nil {
		return nil, err
	}
	return compileFilter(sp, s.LogDenied)
}

// CheckSeccomp compiles the plan's filter, for the errors of a profile
// file to come before anything runs (and with --dry-run).
func CheckSeccomp(s policy.Seccomp) error {
	_, err := buildFilter(s)
	return err
}

// profileFilter compiles a profile file's filter, and refuses one under
// which nothing could start: the spawner's last calls (execve, and on
// failure write and exit_group) must be allowed.
func profileFilter(s policy.Seccomp) (*filter, error) {
	sp, err := loadProfile(s)
	if err != nil {
		return nil, err
	}
	f, err := compileFilter(sp, s.LogDenied)
	if err != nil {
		return nil, err
	}
	needed := []string{"execve", "exit_group", "write"}
	if s.LogDenied {
		needed = append(needed, "sendmsg", "close") // the listener's hand-over
	}
	for _, name := range needed {
		nr, err := libseccomp.GetSyscallFromNameByArch(name, f.arch)
		if err != nil {
			return nil, err
		}
		act, err := runBPF(f.real, &seccompData{NR: int32(nr), Arch: auditArches[runtime.GOARCH]})
		if err != nil {
			return nil, err
		}
		if a := act & unix.SECCOMP_RET_ACTION_FULL; a != unix.SECCOMP_RET_ALLOW && a != unix.SECCOMP_RET_LOG {
			return nil, fmt.Errorf("the profile refuses %s, which sbx needs to start the command", name)
		}
	}
	return f, nil
}

// compileFilter compiles sp for the native architecture.
func compileFilter(sp *specs.LinuxSeccomp, notify bool) (*filter, error) {
	arch, err := libseccomp.GetNativeArch()
	if err != nil {
		return nil, err
	}
	audit, ok := auditArches[runtime.GOARCH]
	if !ok {
		return nil, fmt.Errorf("no AUDIT_ARCH known for %s", runtime.GOARCH)
	}
	f := &filter{arch: arch, notify: notify}
	if f.real, err = compile(sp, arch, audit, false); err != nil {
		return nil, err
	}
	f.prog = f.real
	if notify {
		if f.prog, err = compile(sp, arch, audit, true); err != nil {
			return nil, err
		}
	}
	return f, nil
}

// compile turns an OCI filter into a BPF program for arch (whose
// AUDIT_ARCH is audit), the terminal guard first. With notify, every
// refusal (an errno, a trap or a trace) becomes a notification; kills
// stay kills. Where the default action is an errno, a call of arch
// numbered above every one sbx can name answers ENOSYS instead (see
// newerCalls); a kill, a trap or an allow stays the default for it.
func compile(sp *specs.LinuxSeccomp, arch libseccomp.ScmpArch, audit uint32, notify bool) ([]insn, error) {
	defRet, err := errnoData("defaultErrnoRet", sp.DefaultErrnoRet)
	if err != nil {
		return nil, err
	}
	def, err := action(sp.DefaultAction, defRet, notify)
	if err != nil {
		return nil, fmt.Errorf("defaultAction: %w", err)
	}
	f, err := libseccomp.NewFilter(def)
	if err != nil {
		return nil, err
	}
	defer f.Release()
	if native, err := libseccomp.GetNativeArch(); err != nil {
		return nil, err
	} else if arch != native {
		if err := f.AddArch(arch); err != nil {
			return nil, err
		}
		if err := f.RemoveArch(native); err != nil {
			return nil, err
		}
	}
	guarded := []libseccomp.ScmpArch{arch}
	for _, a := range sp.Architectures {
		extra, err := libseccomp.GetArchFromString(strings.ToLower(strings.TrimPrefix(string(a), "SCMP_ARCH_")))
		if err != nil {
			return nil, fmt.Errorf("architecture %s: %w", a, err)
		}
		if err := f.AddArch(extra); err != nil && !errors.Is(err, unix.EEXIST) {
			return nil, fmt.Errorf("architecture %s: %w", a, err)
		}
		guarded = append(guarded, extra)
	}
	if err := f.SetBadArchAction(libseccomp.ActKillProcess); err != nil {
		return nil, err
	}
	if err := f.SetNoNewPrivsBit(false); err != nil {
		return nil, err
	}
	f.SetOptimize(2) // a binary tree of syscall numbers, where libseccomp can
	numbered := numberedRules{}
	for _, c := range sp.Syscalls {
		ret, err := errnoData("errnoRet", c.ErrnoRet)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", strings.Join(c.Names, ","), err)
		}
		act, err := action(c.Action, ret, notify)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", strings.Join(c.Names, ","), err)
		}
		if act == def {
			continue // libseccomp refuses a rule that says what the default does
		}
		conds, err := conditions(c.Args)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", strings.Join(c.Names, ","), err)
		}
		for _, name := range c.Names {
			nr, err := libseccomp.GetSyscallFromName(name)
			if err != nil {
				if err := numbered.add(name, len(c.Args) > 0, kernelAction(act)); err != nil {
					return nil, err
				}
				continue
			}
			for _, cs := range conds {
				if len(cs) == 0 {
					err = f.AddRule(nr, act)
				} else {
					err = f.AddRuleConditional(nr, act, cs)
				}
				if err != nil {
					return nil, fmt.Errorf("%s: %w", name, err)
				}
			}
		}
	}
	b, err := exportBPF(f)
	if err != nil {
		return nil, err
	}
	body, err := decodeBPF(b)
	if err != nil {
		return nil, err
	}
	// The guard covers every ABI the filter lets through: a profile
	// that adds i386 must not let TIOCSTI through int $0x80. So do the
	// rules libseccomp cannot resolve.
	var (
		guards []guardedArch
		abis   []numberedABI
	)
	seen := map[guardedArch]bool{}
	for i, a := range guarded {
		au := audit
		if i > 0 {
			var ok bool
			if au, ok = scmpAudit[a]; !ok {
				return nil, fmt.Errorf("architecture %s: sbx cannot guard its terminal ioctls", a)
			}
		}
		ioctl, err := libseccomp.GetSyscallFromNameByArch("ioctl", a)
		if err != nil {
			return nil, err
		}
		g := guardedArch{audit: au, ioctlNR: int32(ioctl)}
		if !seen[g] {
			seen[g] = true
			guards = append(guards, g)
			abi := numberedABI{audit: au}
			if a == libseccomp.ArchX32 {
				abi.bit = x32Bit
			}
			abis = append(abis, abi)
		}
	}
	if len(guards) > 30 { // the guard's jumps are 8 bits
		return nil, fmt.Errorf("%d architectures: more than the terminal guard can cover", len(guards))
	}
	deny := uint32(unix.SECCOMP_RET_ERRNO | uint32(unix.EPERM))
	if notify {
		deny = unix.SECCOMP_RET_USER_NOTIF
	}
	prog := terminalGuard(guards, deny)
	if sp.DefaultAction == specs.ActErrno && defRet != int16(unix.ENOSYS) {
		enosys := uint32(unix.SECCOMP_RET_ERRNO | uint32(unix.ENOSYS))
		if notify {
			enosys = unix.SECCOMP_RET_USER_NOTIF
		}
		prog = append(prog, newerCalls(audit, uint32(lastKnown(arch)), enosys)...)
	}
	prog = append(prog, numberedCalls(abis, numbered.calls())...)
	prog = append(prog, body...)
	if len(prog) > 4096 {
		return nil, fmt.Errorf("the filter has %d instructions, more than the kernel's 4096", len(prog))
	}
	return prog, nil
}

// lastKnown is the highest call number of arch that sbx can name: the
// table's last, or libseccomp's where it is newer. The table has no
// holes, so the first number past it that libseccomp cannot name ends
// libseccomp's too.
func lastKnown(arch libseccomp.ScmpArch) int32 {
	last := lastUnified
	for last+1 < x32Bit {
		if _, err := libseccomp.ScmpSyscall(last + 1).GetNameByArch(arch); err != nil {
			break
		}
		last++
	}
	return last
}

// exportBPF is the filter's program (seccomp_export_bpf_mem needs
// libseccomp 2.6; Debian 12 has 2.5).
func exportBPF(f *libseccomp.ScmpFilter) ([]byte, error) {
	fd, err := unix.MemfdCreate("sbx-bpf", unix.MFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("export the filter: %w", err)
	}
	file := os.NewFile(uintptr(fd), "sbx-bpf")
	defer file.Close()
	if err := f.ExportBPF(file); err != nil {
		return nil, fmt.Errorf("export the filter: %w", err)
	}
	if _, err := file.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	return io.ReadAll(file)
}

func decodeBPF(b []byte) ([]insn, error) {
	if len(b)%8 != 0 {
		return nil, fmt.Errorf("BPF program of %d bytes", len(b))
	}
	out := make([]insn, len(b)/8)
	e := binary.NativeEndian
	for i := range out {
		r := b[8*i:]
		out[i] = insn{Code: e.Uint16(r), Jt: r[2], Jf: r[3], K: e.Uint32(r[4:])}
	}
	return out, nil
}

// maxErrno is the highest errno a rule may give: libseccomp takes
// those below the kernel's MAX_ERRNO (4095), and the filter's data holds
// 16 bits, so that 65536 would be 0, a success that does nothing.
const maxErrno = 4094

// errnoData is a profile's errnoRet (key names it), EPERM when unset.
// 0 is kept: the call then "succeeds" without being made, as under runc.
func errnoData(key string, v *uint) (int16, error) {
	if v == nil {
		return int16(unix.EPERM), nil
	}
	if *v > maxErrno {
		return 0, fmt.Errorf("%s %d: more than %d, the highest errno a rule can give", key, *v, maxErrno)
	}
	return int16(*v), nil
}

// action is a's libseccomp action; ret is the errno of SCMP_ACT_ERRNO
// (and the message of SCMP_ACT_TRACE).
func action(a specs.LinuxSeccompAction, ret int16, notify bool) (libseccomp.ScmpAction, error) {
	var act libseccomp.ScmpAction
	switch a {
	case specs.ActAllow:
		return libseccomp.ActAllow, nil
	case specs.ActLog:
		return libseccomp.ActLog, nil
	case specs.ActKill, specs.ActKillThread:
		return libseccomp.ActKillThread, nil
	case specs.ActKillProcess:
		return libseccomp.ActKillProcess, nil
	case specs.ActErrno:
		act = libseccomp.ActErrno.SetReturnCode(ret)
	case specs.ActTrap:
		act = libseccomp.ActTrap
	case specs.ActTrace:
		act = libseccomp.ActTrace.SetReturnCode(ret)
	case specs.ActNotify:
		return 0, fmt.Errorf("action %s: sbx has no notification agent (--log-denied notifies sbx itself)", a)
	default:
		return 0, fmt.Errorf("unknown action %q", a)
	}
	if notify {
		return libseccomp.ActNotify, nil
	}
	return act, nil
}

// kernelAction is the SECCOMP_RET value of a libseccomp action.
func kernelAction(a libseccomp.ScmpAction) uint32 {
	data := uint32(a) >> 16
	switch a & 0xffff {
	case libseccomp.ActKillThread:
		return unix.SECCOMP_RET_KILL_THREAD
	case libseccomp.ActKillProcess:
		return unix.SECCOMP_RET_KILL_PROCESS
	case libseccomp.ActTrap:
		return unix.SECCOMP_RET_TRAP
	case libseccomp.ActErrno:
		return unix.SECCOMP_RET_ERRNO | data
	case libseccomp.ActTrace:
		return unix.SECCOMP_RET_TRACE | data
	case libseccomp.ActLog:
		return unix.SECCOMP_RET_LOG
	case libseccomp.ActNotify:
		return unix.SECCOMP_RET_USER_NOTIF
	}
	return unix.SECCOMP_RET_ALLOW
}

// numberedRules are a profile's rules for calls libseccomp does not know
// by name but sbx's table does, by number: their action. libseccomp
// takes a number it cannot name for the native ABI only (it goes through
// the name for another), so sbx decides these calls itself, in front of
// libseccomp's program (numberedCalls), on every ABI alike.
type numberedRules map[uint32]uint32

// add records the rule for name with action ret. A name neither knows is
// skipped, as runc does; a check of the arguments is beyond sbx's part
// of the program, and refused.
func (r numberedRules) add(name string, args bool, ret uint32) error {
	nr, ok := unifiedNumber(name)
	switch {
	case !ok:
		return nil
	case args:
		return fmt.Errorf("%s: argument checks on a call libseccomp does not know: sbx decides it by number only", name)
	}
	if prev, ok := r[uint32(nr)]; ok && prev != ret {
		return fmt.Errorf("%s: two rules with different actions", name)
	}
	r[uint32(nr)] = ret
	return nil
}

// calls are the rules in the order of their numbers.
func (r numberedRules) calls() []numberedCall {
	var out []numberedCall
	for nr, ret := range r {
		out = append(out, numberedCall{nr: nr, ret: ret})
	}
	slices.SortFunc(out, func(a, b numberedCall) int { return cmp.Compare(a.nr, b.nr) })
	return out
}

// conditions turns a rule's argument checks into libseccomp conditions.
// Checks of different arguments are all required (one rule); several
// checks of the same argument are alternatives (one rule each), as runc
// reads them.
func conditions(args []specs.LinuxSeccompArg) ([][]libseccomp.ScmpCondition, error) {
	if len(args) == 0 {
		return [][]libseccomp.ScmpCondition{nil}, nil
	}
	var all []libseccomp.ScmpCondition
	seen := map[uint]bool{}
	repeated := false
	for _, a := range args {
		op, err := compareOp(a.Op)
		if err != nil {
			return nil, err
		}
		var c libseccomp.ScmpCondition
		if op == libseccomp.CompareMaskedEqual {
			c, err = libseccomp.MakeCondition(a.Index, op, a.Value, a.ValueTwo)
		} else {
			c, err = libseccomp.MakeCondition(a.Index, op, a.Value)
		}
		if err != nil {
			return nil, err
		}
		repeated = repeated || seen[a.Index]
		seen[a.Index] = true
		all = append(all, c)
	}
	if !repeated {
		return [][]libseccomp.ScmpCondition{all}, nil
	}
	out := make([][]libseccomp.ScmpCondition, len(all))
	for i, c := range all {
		out[i] = []libseccomp.ScmpCondition{c}
	}
	return out, nil
}

func compareOp(op specs.LinuxSeccompOperator) (libseccomp.ScmpCompareOp, error) {
	switch op {
	case specs.OpNotEqual:
		return libseccomp.CompareNotEqual, nil
	case specs.OpLessThan:
		return libseccomp.CompareLess, nil
	case specs.OpLessEqual:
		return libseccomp.CompareLessOrEqual, nil
	case specs.OpEqualTo:
		return libseccomp.CompareEqual, nil
	case specs.OpGreaterEqual:
		return libseccomp.CompareGreaterEqual, nil
	case specs.OpGreaterThan:
		return libseccomp.CompareGreater, nil
	case specs.OpMaskedEqual:
		return libseccomp.CompareMaskedEqual, nil
	}
	return 0, fmt.Errorf("unknown comparison %q", op)
}

// syscallName names call nr of the ABI whose AUDIT_ARCH is audit, for
// messages; known is false for a number without a name.
func (f *filter) syscallName(nr int32, audit uint32) (name string, known bool) {
	arch := f.arch
	if audit != auditArches[runtime.GOARCH] || nr&x32Bit != 0 {
		arch = 0
		for a, au := range scmpAudit {
			if au == audit && (a == libseccomp.ArchX32) == (nr&x32Bit != 0) {
				arch = a
			}
		}
	}
	if arch == 0 {
		return fmt.Sprintf("syscall %d", nr), false
	}
	name, err := libseccomp.ScmpSyscall(nr).GetNameByArch(arch)
	if err != nil {
		var ok bool
		if name, ok = unifiedName(nr &^ x32Bit); !ok {
			return fmt.Sprintf("syscall %d", nr), false
		}
	}
	if arch != f.arch {
		name += " (" + arch.String() + ")"
	}
	return name, true
}
