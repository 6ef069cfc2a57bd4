// A signal handler that only writes the signal's number to a pipe, for
// the signals sbx forwards (relay_linux.go). os/signal would install
// Go's own for each with a round trip with a thread of its own, half a
// millisecond for sbx's nine on the start path.
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "relay_linux.h"

static volatile int relay_fd = -1;

static void relay(int sig) {
	int saved = errno;
	unsigned char b = (unsigned char)sig;
	ssize_t n = write(relay_fd, &b, 1); // non-blocking: a full pipe drops it
	(void)n;
	errno = saved;
}

int sbx_relay_signals(int fd, const int *sigs, int n) {
	relay_fd = fd;
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = relay;
	// On the signal stack Go gives each of its threads, as the Go
	// runtime requires of a handler installed by C; restarting the
	// calls it interrupts, as Go's own handler does.
	sa.sa_flags = SA_ONSTACK | SA_RESTART;
	sigfillset(&sa.sa_mask);
	for (int i = 0; i < n; i++)
		if (sigaction(sigs[i], &sa, NULL) < 0)
			return -errno;
	return 0;
}

void sbx_die_by(int sig) {
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = SIG_DFL;
	sigaction(sig, &sa, NULL); // fails for SIGKILL, which needs none
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, sig);
	pthread_sigmask(SIG_UNBLOCK, &set, NULL);
	raise(sig);
}
