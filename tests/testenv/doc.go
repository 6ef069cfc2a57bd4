// Package testenv prepares the host for programs that test or measure sbx
// as an unprivileged user: the integration harness (tests, TestMain) and
// the benchmark (tests/bench). Both run as root, make their test users,
// copy their binaries where those users can read them, and re-execute
// themselves as the users.
//
// It runs on the host, as root, before any sandbox exists. It imports the
// standard library only, and not os/user: that would link libc through
// cgo, and the benchmark must stay a static binary (see its spawnFloor).
package testenv
