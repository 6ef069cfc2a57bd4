package tests

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
)

// chelperName is the C helper's file name, next to the test binary.
const chelperName = "chelper"

// chelperSource does what Go cannot do portably: system calls through the
// other two ABIs of an x86-64 kernel. Each verb calls getpid and prints
// "ok" when the call returned this process's id, or the errno's name.
const chelperSource = `#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv) {
	long r;
	if (argc != 2) {
		fprintf(stderr, "usage: chelper int80|x32\n");
		return 2;
	}
	if (strcmp(argv[1], "int80") == 0) {
		/* getpid is 20 in the i386 table; the compat entry zeroes r8-r11 */
		__asm__ volatile("int $0x80" : "=a"(r) : "a"(20L) : "memory", "r8", "r9", "r10", "r11");
	} else if (strcmp(argv[1], "x32") == 0) {
		/* __X32_SYSCALL_BIT | 39, getpid in the x32 table */
		__asm__ volatile("syscall" : "=a"(r) : "a"(0x40000000L | 39) : "memory", "rcx", "r11");
	} else {
		fprintf(stderr, "chelper: unknown verb %s\n", argv[1]);
		return 2;
	}
	if (r == (long)getpid()) {
		puts("ok");
	} else if (r < 0 && r > -4096 && strerrorname_np((int)-r) != NULL) {
		puts(strerrorname_np((int)-r));
	} else {
		printf("unexpected %ld\n", r);
	}
	return 0;
}
`

// buildCHelper compiles chelperSource into out (mode 0755) with gcc.
func buildCHelper(out string) error {
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
	if b, err := exec.Command(gcc, "-O2", "-Wall", "-o", out, src).CombinedOutput(); err != nil {
		return fmt.Errorf("gcc: %w\n%s", err, b)
	}
	return os.Chmod(out, 0o755)
}
