package testenv

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
)

// CHelperName is the C helper's file name, next to the test binary.
const CHelperName = "chelper"

// chelperSource does what Go cannot do portably: system calls through the
// other two ABIs of an x86-64 kernel (int80, x32: getpid, "ok" when it
// returned this process's id), one call from a single-threaded process
// that exits right after it (keyctl), and an orphan stopped and
// continued in a tight loop (stopcont), and a SIGINT handler in a
// process that says whether INT, QUIT and TERM came ignored
// (handle-int). Each other verb prints "ok" or the errno's name.
const chelperSource = `#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static void report(long r, int ok) {
	if (ok) {
		puts("ok");
	} else if (r < 0 && r > -4096 && strerrorname_np((int)-r) != NULL) {
		puts(strerrorname_np((int)-r));
	} else {
		printf("unexpected %ld\n", r);
	}
}

static void got_int(int sig) {
	(void)sig;
	static const char msg[] = "got-int\n";
	(void)!write(1, msg, sizeof msg - 1);
	_exit(7);
}

int main(int argc, char **argv) {
	long r;
	if (argc != 2) {
		fprintf(stderr, "usage: chelper int80|x32|keyctl|stopcont|handle-int\n");
		return 2;
	}
	if (strcmp(argv[1], "int80") == 0) {
		/* getpid is 20 in the i386 table; the compat entry zeroes r8-r11 */
		__asm__ volatile("int $0x80" : "=a"(r) : "a"(20L) : "memory", "r8", "r9", "r10", "r11");
		report(r, r == (long)getpid());
	} else if (strcmp(argv[1], "x32") == 0) {
		/* __X32_SYSCALL_BIT | 39, getpid in the x32 table */
		__asm__ volatile("syscall" : "=a"(r) : "a"(0x40000000L | 39) : "memory", "rcx", "r11");
		report(r, r == (long)getpid());
	} else if (strcmp(argv[1], "keyctl") == 0) {
		/* KEYCTL_GET_KEYRING_ID of KEY_SPEC_SESSION_KEYRING, by a single
		   thread that exits right after: the last thing it does */
		r = syscall(SYS_keyctl, 0L, -3L, 0L);
		if (r == -1) {
			r = -errno;
		}
		report(r, r >= 0);
	} else if (strcmp(argv[1], "handle-int") == 0) {
		/* say whether INT, QUIT and TERM came ignored, then handle INT */
		struct sigaction sa = {0};
		int ign = 1;
		int sigs[] = {SIGINT, SIGQUIT, SIGTERM};
		for (int i = 0; i < 3; i++) {
			struct sigaction old;
			ign = ign && sigaction(sigs[i], NULL, &old) == 0 && old.sa_handler == SIG_IGN;
		}
		puts(ign ? "ignored" : "not-ignored");
		sa.sa_handler = got_int;
		sigaction(SIGINT, &sa, NULL);
		puts("ready");
		fflush(stdout);
		for (;;)
			pause();
	} else if (strcmp(argv[1], "stopcont") == 0) {
		/* an orphan (PID 1's to reap) that stops itself over and over,
		   each time continued at once, then sleeps for a minute */
		int p[2];
		pid_t child, orphan = 0;
		char done;
		if (pipe(p) < 0 || (child = fork()) < 0)
			return 2;
		if (child == 0) {
			orphan = fork();
			if (orphan == 0) {
				for (int i = 0; i < 3000; i++)
					raise(SIGSTOP);
				(void)!write(p[1], "d", 1);
				close(p[1]);
				sleep(60);
				_exit(0);
			}
			(void)!write(p[1], &orphan, sizeof orphan);
			_exit(0);
		}
		close(p[1]);
		if (read(p[0], &orphan, sizeof orphan) != sizeof orphan || orphan <= 0)
			return 2;
		waitpid(child, NULL, 0);
		fcntl(p[0], F_SETFL, O_NONBLOCK);
		while (read(p[0], &done, 1) != 1)
			kill(orphan, SIGCONT);
		puts("ok");
	} else {
		fprintf(stderr, "chelper: unknown verb %s\n", argv[1]);
		return 2;
	}
	return 0;
}
`

// BuildCHelper compiles chelperSource into out (mode 0755) with gcc,
// statically (the VM tier ships it to a guest without gcc).
func BuildCHelper(out string) error {
	if runtime.GOARCH != "amd64" {
		return errors.New("the C helper is for x86-64 only")
	}
	gcc, err := exec.LookPath("gcc")
	if err != nil {
		return fmt.Errorf("%w (install gcc and libc6-dev)", err)
	}
	dir, err := os.MkdirTemp("", "sbx-chelper-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	src := filepath.Join(dir, "chelper.c")
	if err := os.WriteFile(src, []byte(chelperSource), 0o644); err != nil {
		return err
	}
	if b, err := exec.Command(gcc, "-O2", "-Wall", "-static", "-o", out, src).CombinedOutput(); err != nil {
		return fmt.Errorf("gcc: %w\n%s", err, b)
	}
	return os.Chmod(out, 0o755)
}
