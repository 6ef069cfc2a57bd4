package sandbox

// The system calls numbered from 424 on. Since Linux 5.1 (424,
// pidfd_send_signal) a new call has one number on every architecture:
// the generic table (include/uapi/asm-generic/unistd.h, scripts/syscall.tbl
// since 6.11), which x86_64's syscall_64.tbl follows from 424; x32 adds
// its bit, and i386 and AArch32 use the same numbers. The table lets a
// profile name calls newer than the libseccomp sbx runs with: 2.5.4 knows
// none past futex_requeue (456), and a rule it cannot resolve used to be
// dropped, which left Docker's allowlist refusing mseal or statmount. It
// runs to the last call of Linux 6.18 (file_setattr, 6.17);
// TestUnifiedSyscalls checks it against golang.org/x/sys/unix's numbers
// and libseccomp's.
const firstUnified = 424

var unifiedSyscalls = [...]string{
	"pidfd_send_signal",       // 424
	"io_uring_setup",          // 425
	"io_uring_enter",          // 426
	"io_uring_register",       // 427
	"open_tree",               // 428
	"move_mount",              // 429
	"fsopen",                  // 430
	"fsconfig",                // 431
	"fsmount",                 // 432
	"fspick",                  // 433
	"pidfd_open",              // 434
	"clone3",                  // 435
	"close_range",             // 436
	"openat2",                 // 437
	"pidfd_getfd",             // 438
	"faccessat2",              // 439
	"process_madvise",         // 440
	"epoll_pwait2",            // 441
	"mount_setattr",           // 442
	"quotactl_fd",             // 443
	"landlock_create_ruleset", // 444
	"landlock_add_rule",       // 445
	"landlock_restrict_self",  // 446
	"memfd_secret",            // 447
	"process_mrelease",        // 448
	"futex_waitv",             // 449
	"set_mempolicy_home_node", // 450
	"cachestat",               // 451
	"fchmodat2",               // 452
	"map_shadow_stack",        // 453
	"futex_wake",              // 454
	"futex_wait",              // 455
	"futex_requeue",           // 456
	"statmount",               // 457
	"listmount",               // 458
	"lsm_get_self_attr",       // 459
	"lsm_set_self_attr",       // 460
	"lsm_list_modules",        // 461
	"mseal",                   // 462
	"setxattrat",              // 463
	"getxattrat",              // 464
	"listxattrat",             // 465
	"removexattrat",           // 466
	"open_tree_attr",          // 467
	"file_getattr",            // 468
	"file_setattr",            // 469
}

// lastUnified is the highest number in the table.
const lastUnified = int32(firstUnified + len(unifiedSyscalls) - 1)

// unifiedNumber is the number of the call name in the table.
func unifiedNumber(name string) (int32, bool) {
	for i, n := range unifiedSyscalls {
		if n == name {
			return int32(firstUnified + i), true
		}
	}
	return 0, false
}

// unifiedName is the name of call nr in the table.
func unifiedName(nr int32) (string, bool) {
	if nr < firstUnified || nr > lastUnified {
		return "", false
	}
	return unifiedSyscalls[nr-firstUnified], true
}
