// Package policy turns what the user asked (flags now, profiles later)
// and what the host is (fact structs probed by package sandbox) into one
// immutable, validated, printable Plan. Nothing touches the kernel until
// a Plan exists; the launcher stages in package sandbox only execute it.
//
// policy is pure: it must not import os, os/exec, syscall,
// golang.org/x/sys/unix or unsafe, and it reads no environment.
// tests/purity_test.go keeps it so.
package policy
