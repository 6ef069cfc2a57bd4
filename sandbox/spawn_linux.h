// The fork and exec of the payload and of init, in C because the last
// steps before execve must run in the child: seccomp (after a --root
// payload's CLONE_NEWUSER, which the filter refuses) and the hand-over of
// its notification descriptor. Go's syscall.StartProcess has no such
// hook, and with CLONE_NEWUSER it forks without CLONE_VM: the launcher
// would copy its page tables, and fault on every page it writes after.
#ifndef SBX_SPAWN_H
#define SBX_SPAWN_H

#include <linux/filter.h>

// Where the child failed; sent with errno on the error pipe.
enum {
	SBX_STAGE_SYNC = 1,
	SBX_STAGE_SETSID,
	SBX_STAGE_FDS,
	SBX_STAGE_CTTY,
	SBX_STAGE_NNP,
	SBX_STAGE_SECCOMP,
	SBX_STAGE_LISTENER,
	SBX_STAGE_EXEC,
	SBX_STAGE_CHDIR,
	SBX_STAGE_FOREGROUND,
	SBX_STAGE_USERNS,
	SBX_STAGE_PDEATHSIG,
	SBX_STAGE_CAPS,
	SBX_STAGE_SETPGID,
};

struct sbx_spawn {
	const char *path;
	const char *cwd; // NULL: the parent's
	char *const *argv;
	char *const *envp;
	// The child's descriptor i becomes fds[i]; -1 closes it. fdv is
	// nfds ints of scratch for the child (allocated by the caller: the
	// child may run on a small stack of its own, and must not allocate).
	const int *fds;
	int *fdv;
	int nfds;
	int setsid;
	int setpgid; // a process group of its own (in the parent's session)
	int ctty; // a descriptor of the child to make the controlling terminal, or -1
	// A terminal (the parent's descriptor) whose foreground the child
	// takes, in a process group of its own; -1 for none.
	int fg_tty;
	// Namespaces to clone the child into (or 0). With a sync_fd, the
	// child waits for a byte on it: the parent writes its id maps first.
	// Without, the parent waits until the child has exec'd (CLONE_VFORK).
	unsigned long clone_flags;
	int sync_fd;
	// SIGKILL the child when the thread that spawned it exits.
	int pdeathsig;
	// Keep capabilities 0..ambient_last across the exec as ambient ones
	// (-1: none): init execs before its id maps exist, and an exec with
	// an unmapped uid would otherwise leave it none (capabilities(7)).
	int ambient_last;
	// no_new_privs (the payload's and sbx exec's commands; not init's).
	int nnp;
	// Signals (bit sig-1) the child starts ignoring: those the caller
	// ignored when it started sbx, which sbx itself catches to forward.
	unsigned long long ignore;
	// A user namespace to join first (setns), or -1.
	int userns_fd;
	// error pipe's write end (close-on-exec): {stage, errno} on failure.
	int err_fd;
	// The seccomp program (none when len is 0), its flags, and where the
	// listener goes when the flags ask for one.
	const struct sock_filter *filter;
	unsigned short filter_len;
	unsigned int filter_flags;
	int listener_sock;
};

// sbx_ignored_at_start is the signals (bit sig-1) ignored when the
// process started, before Go's runtime took them over.
extern unsigned long long sbx_ignored_at_start, sbx_ignored_checked;

// sbx_spawn forks and execs; it returns the child's pid or -errno.
long sbx_spawn(const struct sbx_spawn *s);

#endif
