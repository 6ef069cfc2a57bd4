// sbx_spawn: fork and exec the payload or init (see spawn_linux.h).
//
// The child of a multi-threaded Go process may only make system calls
// until it execs: no allocation, no locks, no Go. Everything here is a
// thin libc wrapper of one system call. Signals are blocked around the
// fork, so no Go signal handler ever runs in the child.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/capability.h>
#include <linux/close_range.h>
#include <stdlib.h>
#include <linux/seccomp.h>

#include "spawn_linux.h"

// Go raises its soft limit on open files to the hard one as it starts,
// and syscall.StartProcess gives its children the original back; so does
// the spawner, with what this constructor saw before the Go runtime ran.
static struct rlimit orig_nofile;
static int have_orig_nofile;

// sbx_ignored_at_start: the signals (bit sig-1) that were ignored when
// the process started. Go's runtime takes over every signal but SIGHUP
// and SIGINT whatever their disposition, so that os/signal cannot tell
// a SIGQUIT or SIGTERM the caller had ignored; this constructor runs
// before it.
unsigned long long sbx_ignored_at_start;
// sbx_ignored_checked: the signals the constructor looked at (a test
// holds it to forwarded in init_linux.go).
unsigned long long sbx_ignored_checked;

__attribute__((constructor)) static void sbx_save_ignored(void) {
	// The signals sbx forwards (forwarded in init_linux.go).
	static const int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH, SIGCONT};
	for (unsigned i = 0; i < sizeof sigs / sizeof sigs[0]; i++) {
		struct sigaction old;
		sbx_ignored_checked |= 1ULL << (sigs[i] - 1);
		if (sigaction(sigs[i], NULL, &old) == 0 && old.sa_handler == SIG_IGN)
			sbx_ignored_at_start |= 1ULL << (sigs[i] - 1);
	}
}

__attribute__((constructor)) static void sbx_save_nofile(void) {
	have_orig_nofile = getrlimit(RLIMIT_NOFILE, &orig_nofile) == 0;
}

static void die(const struct sbx_spawn *s, int stage) {
	int msg[2] = {stage, errno};
	ssize_t n = write(s->err_fd, msg, sizeof msg);
	(void)n;
	_exit(127);
}

// kernel_sigaction is the kernel's struct sigaction: glibc's wrapper
// refuses the two signals it reserves, which the Go runtime handles.
struct kernel_sigaction {
	void *handler;
	unsigned long flags;
	void *restorer;
	uint64_t mask;
};

// reset_signals gives every handled signal its default action (execve
// would, but a signal could come between the unblocking and the exec,
// and the parent's handler must not run here); ignored ones stay
// ignored. Then it discards the signals pending in the child (they are
// blocked until the exec): sent to the parent's process group before the
// child left it (setsid, setpgid), as the terminal's Ctrl-C or Ctrl-Z
// is, they would end or stop the child (a helper stopped in a group of
// its own, which the shell's fg does not continue, hung sbx). Ignoring a
// signal for a moment discards it.
static void reset_signals(void) {
	for (int sig = 1; sig < 65; sig++) {
		struct kernel_sigaction old, dfl = {0};
		if (sig == SIGKILL || sig == SIGSTOP)
			continue;
		if (syscall(SYS_rt_sigaction, sig, NULL, &old, 8) != 0)
			continue;
		if (old.handler == SIG_IGN || old.handler == SIG_DFL)
			continue;
		dfl.handler = SIG_DFL;
		syscall(SYS_rt_sigaction, sig, &dfl, NULL, 8);
	}
	sigset_t pending;
	if (sigpending(&pending) != 0)
		return;
	for (int sig = 1; sig < 65; sig++) {
		struct kernel_sigaction old, ign = {0};
		if (sig == SIGKILL || sig == SIGSTOP || sigismember(&pending, sig) != 1)
			continue;
		if (syscall(SYS_rt_sigaction, sig, NULL, &old, 8) != 0 || old.handler == SIG_IGN)
			continue;
		ign.handler = SIG_IGN;
		syscall(SYS_rt_sigaction, sig, &ign, NULL, 8);
		syscall(SYS_rt_sigaction, sig, &old, NULL, 8);
	}
}

static int send_fd(int sock, int fd) {
	char byte = 0;
	struct iovec iov = {.iov_base = &byte, .iov_len = 1};
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	memset(&u, 0, sizeof u);
	struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof u.buf};
	struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &fd, sizeof(int));
	return sendmsg(sock, &msg, MSG_NOSIGNAL) == 1 ? 0 : -1;
}

// lift moves fd to n or above (close-on-exec), out of the way of the
// descriptors 0..n-1 being laid out.
static int lift(const struct sbx_spawn *s, int fd, int n) {
	if (fd < 0 || fd >= n)
		return fd;
	int nfd = fcntl(fd, F_DUPFD_CLOEXEC, n);
	if (nfd < 0)
		die(s, SBX_STAGE_FDS);
	return nfd;
}

// keep_ambient raises capabilities 0..last into the inheritable and
// ambient sets, so that they survive the exec.
static int keep_ambient(int last) {
	struct __user_cap_header_struct h = {.version = _LINUX_CAPABILITY_VERSION_3};
	struct __user_cap_data_struct d[2];
	if (syscall(SYS_capget, &h, d) < 0)
		return -1;
	d[0].inheritable = d[0].permitted;
	d[1].inheritable = d[1].permitted;
	if (syscall(SYS_capset, &h, d) < 0)
		return -1;
	for (int cap = 0; cap <= last; cap++)
		if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0) < 0)
			return -1;
	return 0;
}

static void child(const struct sbx_spawn *s, const sigset_t *mask) {
	int n = s->nfds;
	struct sbx_spawn c = *s; // a copy: with vfork the parent's memory is shared
	// No check that the parent still lives: in a new pid namespace
	// getppid() is 0. The parent is suspended until the exec anyway
	// (CLONE_VFORK), and init learns of its end from its control socket.
	if (c.pdeathsig && prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0)
		die(&c, SBX_STAGE_PDEATHSIG);
	if (c.ambient_last >= 0 && keep_ambient(c.ambient_last) < 0)
		die(&c, SBX_STAGE_CAPS);
	if (c.sync_fd >= 0) {
		char go = 0;
		ssize_t r;
		do
			r = read(c.sync_fd, &go, 1);
		while (r < 0 && errno == EINTR);
		if (r != 1) { // the parent could not write the maps
			errno = ECANCELED;
			die(&c, SBX_STAGE_SYNC);
		}
	}
	if (c.userns_fd >= 0 && setns(c.userns_fd, CLONE_NEWUSER) < 0)
		die(&c, SBX_STAGE_USERNS);
	if (c.setsid && setsid() < 0)
		die(&c, SBX_STAGE_SETSID);
	if (c.setpgid && setpgid(0, 0) < 0)
		die(&c, SBX_STAGE_SETPGID);
	if (c.cwd && chdir(c.cwd) < 0)
		die(&c, SBX_STAGE_CHDIR);
	if (c.fg_tty >= 0) { // signals are still blocked: no SIGTTOU
		pid_t self = getpid();
		if (setpgid(0, 0) < 0 || ioctl(c.fg_tty, TIOCSPGRP, &self) < 0)
			die(&c, SBX_STAGE_FOREGROUND);
	}

	// Lay out descriptors 0..n-1 as Go's forkExec does: first lift every
	// source that a lower slot's dup would overwrite, then dup in order.
	c.err_fd = lift(&c, c.err_fd, n);
	c.sync_fd = lift(&c, c.sync_fd, n);
	c.listener_sock = lift(&c, c.listener_sock, n);
	int *fdv = c.fdv;
	for (int i = 0; i < n; i++) {
		fdv[i] = s->fds[i];
		if (fdv[i] >= 0 && fdv[i] < i)
			fdv[i] = lift(&c, fdv[i], n);
	}
	for (int i = 0; i < n; i++) {
		if (fdv[i] < 0) {
			close(i);
		} else if (fdv[i] == i) {
			if (fcntl(i, F_SETFD, 0) < 0)
				die(&c, SBX_STAGE_FDS);
		} else if (dup3(fdv[i], i, 0) < 0) {
			die(&c, SBX_STAGE_FDS);
		}
	}
	// Nothing else reaches the exec: init's descriptors are close-on-exec
	// as a rule, but those the payload keeps (--preserve-fd) are not, and
	// a command of sbx exec must not get them.
	if (syscall(SYS_close_range, n, ~0U, CLOSE_RANGE_CLOEXEC) < 0) {
		for (int fd = n; fd < 4096; fd++)
			fcntl(fd, F_SETFD, FD_CLOEXEC);
	}
	if (c.ctty >= 0 && ioctl(c.ctty, TIOCSCTTY, 0) < 0)
		die(&c, SBX_STAGE_CTTY);
	// Not entering a user namespace (where capabilities start anew), the
	// child must not keep ambient capabilities of init's thread.
	if (!(c.clone_flags & CLONE_NEWUSER) && c.userns_fd < 0 && c.ambient_last < 0)
		prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);

	reset_signals();
	for (int sig = 1; sig < 65; sig++) {
		struct kernel_sigaction ign = {0};
		if (!(c.ignore & (1ULL << (sig - 1))) || sig == SIGKILL || sig == SIGSTOP)
			continue;
		ign.handler = SIG_IGN;
		syscall(SYS_rt_sigaction, sig, &ign, NULL, 8);
	}
	sigprocmask(SIG_SETMASK, mask, NULL);
	// After the descriptors' layout, which may need the raised limit.
	// Should it fail, the child keeps the higher limit: no harm.
	if (have_orig_nofile)
		setrlimit(RLIMIT_NOFILE, &orig_nofile);
	if (c.nnp && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		die(&c, SBX_STAGE_NNP);
	// The filter goes on last: from here on, only sendmsg, close,
	// execve and, on failure, write and exit_group are made.
	if (c.filter_len > 0) {
		struct sock_fprog prog = {.len = c.filter_len, .filter = (struct sock_filter *)c.filter};
		long fd = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, c.filter_flags, &prog);
		if (fd < 0)
			die(&c, SBX_STAGE_SECCOMP);
		if (c.filter_flags & SECCOMP_FILTER_FLAG_NEW_LISTENER) {
			if (send_fd(c.listener_sock, (int)fd) < 0)
				die(&c, SBX_STAGE_LISTENER);
			close((int)fd);
		}
	}
	execve(c.path, c.argv, c.envp);
	die(&c, SBX_STAGE_EXEC);
}

struct vfork_arg {
	const struct sbx_spawn *s;
	const sigset_t *mask;
};

static int vfork_child(void *arg) {
	struct vfork_arg *a = arg;
	child(a->s, a->mask);
	return 0;
}

long sbx_spawn(const struct sbx_spawn *s) {
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	long pid;
	int err = 0;
	if (s->clone_flags && s->sync_fd < 0) {
		// Into new namespaces, the parent suspended until the child
		// execs, as vfork: the child runs on a stack of its own in the
		// parent's memory (CLONE_VM; posix_spawn's way).
		// The child's frames need a few KiB (its descriptors' scratch
		// is fdv); below the stack, a guard page: an overflow faults
		// instead of writing into this process's memory.
		const size_t page = (size_t)sysconf(_SC_PAGESIZE), size = 64 << 10;
		char *map = mmap(NULL, page + size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
		if (map == MAP_FAILED) {
			err = errno;
			pthread_sigmask(SIG_SETMASK, &old, NULL);
			return -err;
		}
		if (mprotect(map, page, PROT_NONE) < 0) {
			err = errno;
			munmap(map, page + size);
			pthread_sigmask(SIG_SETMASK, &old, NULL);
			return -err;
		}
		struct vfork_arg arg = {s, &old};
		pid = clone(vfork_child, map + page + size, (int)s->clone_flags | CLONE_VM | CLONE_VFORK | SIGCHLD, &arg);
		err = errno;
		munmap(map, page + size);
		pthread_sigmask(SIG_SETMASK, &old, NULL);
		return pid < 0 ? -err : pid;
	}
	if (s->clone_flags) {
		// The parent must run on to write the maps: a plain fork, with
		// the new user namespace (raw clone: no atfork handlers).
		pid = syscall(SYS_clone, s->clone_flags | SIGCHLD, 0, 0, 0, 0);
	} else {
		// The parent waits until the child has exec'd: no copy of its
		// page tables (Go's forkExec uses CLONE_VFORK|CLONE_VM too).
		pid = vfork();
	}
	if (pid == 0)
		child(s, &old); // does not return
	err = errno;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return pid < 0 ? -err : pid;
}
