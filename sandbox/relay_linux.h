#ifndef SBX_RELAY_H
#define SBX_RELAY_H

// sbx_relay_signals installs, for each of sigs, a handler that writes the
// signal's number (a byte) to fd, which must be non-blocking. It returns
// 0 or -errno.
int sbx_relay_signals(int fd, const int *sigs, int n);

// sbx_die_by gives sig its default action, unblocks it on the calling
// thread and raises it there. It returns only if sig does not end the
// process.
void sbx_die_by(int sig);

#endif
