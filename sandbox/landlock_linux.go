package sandbox

import (
	"errors"
	"fmt"

	ll "github.com/landlock-lsm/go-landlock/landlock/syscall"
	"golang.org/x/sys/unix"

	"sbx/policy"
)

// Landlock's filesystem rights, by the ABI that introduced them.
const (
	llReadFile = ll.AccessFSReadFile
	llReadDir  = ll.AccessFSReadDir
	llExec     = ll.AccessFSExecute
	llWrite    = ll.AccessFSWriteFile
	llCreate   = ll.AccessFSRemoveDir | ll.AccessFSRemoveFile | ll.AccessFSMakeDir | ll.AccessFSMakeReg |
		ll.AccessFSMakeSock | ll.AccessFSMakeFifo | ll.AccessFSMakeSym
	llV1 = ll.AccessFSExecute | ll.AccessFSWriteFile | ll.AccessFSReadFile | ll.AccessFSReadDir |
		llCreate | ll.AccessFSMakeChar | ll.AccessFSMakeBlock
	// The rights a rule on a file (not a directory) may hold.
	llFileRights = ll.AccessFSExecute | ll.AccessFSWriteFile | ll.AccessFSReadFile |
		ll.AccessFSTruncate | ll.AccessFSIoctlDev
)

// llHandled is every filesystem right the kernel's ABI knows (of those
// sbx uses): all of them are refused but where a rule grants them.
func llHandled(abi int) uint64 {
	h := uint64(llV1)
	if abi >= 2 {
		h |= ll.AccessFSRefer
	}
	if abi >= 3 {
		h |= ll.AccessFSTruncate
	}
	if abi >= 5 {
		h |= ll.AccessFSIoctlDev
	}
	return h
}

// llAccess is the rights of an access class of the plan.
func llAccess(class string) (uint64, error) {
	switch class {
	case policy.AccessList:
		return llReadDir, nil
	case policy.AccessRead:
		return llExec | llReadFile | llReadDir, nil
	case policy.AccessWrite:
		return llExec | llReadFile | llReadDir | llWrite | llCreate |
			ll.AccessFSRefer | ll.AccessFSTruncate | ll.AccessFSIoctlDev, nil
	// Truncation goes with writing: a shell's "> file" opens with
	// O_TRUNC, and procfs's files are regular files.
	case policy.AccessProc:
		return llReadFile | llReadDir | llWrite | ll.AccessFSTruncate, nil
	case policy.AccessDev:
		return llReadFile | llReadDir | llWrite | ll.AccessFSTruncate | ll.AccessFSIoctlDev, nil
	}
	return 0, fmt.Errorf("landlock access class %q", class)
}

// landlockRuleset builds the plan's ruleset, on the view as it stands
// (after pivot_root, before the payload runs). A rule's path that the
// view does not have (an optional mount skipped, a mount covered by a
// later one) is left out.
//
// The files and devices among the payload's descriptors (stdin from a
// file, stdout to /dev/null) get a rule each for what their descriptor
// was opened for: so /dev/stdout and /proc/self/fd/N reopen them as
// scripts do, but no wider (a file given for reading is not reopened
// for writing, around its mount's read-only flag or its open mode).
func landlockRuleset(l policy.Landlock, files []int) (int, error) {
	handled := llHandled(l.ABI)
	attr := ll.RulesetAttr{HandledAccessFS: handled}
	if l.Scoped {
		attr.Scoped = ll.ScopeAbstractUnixSocket | ll.ScopeSignal
	}
	fd, err := ll.LandlockCreateRuleset(&attr, 0)
	if err != nil {
		return -1, fmt.Errorf("landlock_create_ruleset: %w", err)
	}
	for _, r := range l.Rules {
		access, err := llAccess(r.Access)
		if err != nil {
			unix.Close(fd)
			return -1, err
		}
		pfd, err := unix.Open(r.Path, unix.O_PATH|unix.O_CLOEXEC, 0)
		if errors.Is(err, unix.ENOENT) {
			continue
		}
		if err != nil {
			unix.Close(fd)
			return -1, fmt.Errorf("landlock rule %s: %w", r.Path, err)
		}
		var st unix.Stat_t
		if err := unix.Fstat(pfd, &st); err != nil {
			unix.Close(pfd)
			unix.Close(fd)
			return -1, fmt.Errorf("landlock rule %s: %w", r.Path, err)
		}
		if st.Mode&unix.S_IFMT != unix.S_IFDIR {
			access &= llFileRights
		}
		err = ll.LandlockAddPathBeneathRule(fd, &ll.PathBeneathAttr{AllowedAccess: access & handled, ParentFd: pfd}, 0)
		unix.Close(pfd)
		if err != nil {
			unix.Close(fd)
			return -1, fmt.Errorf("landlock rule %s (%s): %w", r.Path, r.Access, err)
		}
	}
	for _, f := range files {
		if f < 0 {
			continue
		}
		var st unix.Stat_t
		if err := unix.Fstat(f, &st); err != nil {
			continue
		}
		if t := st.Mode & unix.S_IFMT; t != unix.S_IFREG && t != unix.S_IFCHR {
			continue
		}
		flags, err := unix.FcntlInt(uintptr(f), unix.F_GETFL, 0)
		if err != nil || flags&unix.O_PATH != 0 {
			continue
		}
		var access uint64
		switch flags & unix.O_ACCMODE {
		case unix.O_RDONLY:
			access = llReadFile
		case unix.O_WRONLY:
			access = llWrite | ll.AccessFSTruncate
		case unix.O_RDWR:
			access = llReadFile | llWrite | ll.AccessFSTruncate
		}
		if err := ll.LandlockAddPathBeneathRule(fd, &ll.PathBeneathAttr{AllowedAccess: access & handled, ParentFd: f}, 0); err != nil {
			unix.Close(fd)
			return -1, fmt.Errorf("landlock rule for descriptor %d: %w", f, err)
		}
	}
	return fd, nil
}

// landlockRestrict enforces the ruleset on the calling thread: the
// payload, forked from it, starts in that domain, and so does every
// command sbx exec adds (one domain: they may signal each other).
func landlockRestrict(fd int) error {
	if err := ll.LandlockRestrictSelf(fd, 0); err != nil {
		return fmt.Errorf("landlock_restrict_self: %w", err)
	}
	return nil
}
