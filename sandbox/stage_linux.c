// The init stage's namespaces, other than its user and pid namespaces,
// are made here, in an ELF constructor: after the exec, before the Go
// runtime starts. unshare(2) of a mount namespace needs a process of one
// thread, and it is done after the exec so that the launcher can run the
// id-map helpers meanwhile (newuidmap acts only on a process that has
// exec'd: before, it shares the launcher's non-dumpable memory).
// runc's nsexec uses a constructor the same way.
//
// It also tells the launcher, first of all, that init's exec is done:
// the end of the spawner's close-on-exec pipe comes before the kernel
// makes the new image dumpable again, and until then init's /proc files
// are root's, which the id maps' writers (newuidmap, or the launcher
// itself) cannot open.
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <unistd.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "stage_linux.h"

static int unshare_errno = -1; // not the init stage

// glibc passes argc, argv and envp to constructors (sbx is built static
// against glibc: see the Makefile); with another libc that does not, no
// process is the init stage, and init fails closed (initNamespaces).
__attribute__((constructor)) static void sbx_init_unshare(int argc, char **argv, char **envp) {
	(void)envp;
	if (argc != 3 || argv == NULL || strcmp(argv[0], SBX_STAGE_INIT) != 0)
		return;
	char *end;
	errno = 0;
	long ctl = strtol(argv[1], &end, 10);
	// The control socket (SOCK_SEQPACKET): one packet of one byte, before
	// any of the Go side's messages. Without it the launcher would wait
	// for ever: init exits instead, and the launcher reads the end.
	if (errno != 0 || end == argv[1] || *end != '\0' || ctl < 3 || ctl > INT_MAX ||
	    send((int)ctl, SBX_EXECED, 1, MSG_NOSIGNAL) != 1)
		_exit(125);
	// The network namespace is the plan's choice (--net host); init
	// checks the flags against its plan too (initMain).
	const unsigned long required = CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWUTS | CLONE_NEWCGROUP;
	const unsigned long allowed = required | CLONE_NEWNET;
	errno = 0;
	unsigned long flags = strtoul(argv[2], &end, 10);
	if (errno != 0 || end == argv[2] || *end != '\0' || (flags & ~allowed) != 0 || (flags & required) != required) {
		unshare_errno = EINVAL;
		return;
	}
	unshare_errno = unshare((int)flags) < 0 ? errno : 0;
}

int sbx_init_unshare_errno(void) { return unshare_errno; }
