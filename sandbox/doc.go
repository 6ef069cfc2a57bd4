// Package sandbox executes a policy.Plan: it probes the host, runs the
// launcher, and holds the stage that runs inside the sandbox.
//
// Two processes, the second a run of this same binary selected by
// argv[0] (see Stage), with a typed protocol over a SOCK_SEQPACKET
// socket pair (protocol.go), the plan in a pipe and the seccomp filter
// in a sealed memfd:
//
//	launcher (host, the caller, no privilege)          run_linux.go
//	  │ the seccomp filter, compiled (or built in)      seccomp_linux.go
//	  │ [cgroup: a leaf delegated by the user manager]  cgroup_linux.go
//	  │ clone(CLONE_NEWUSER|CLONE_NEWPID), every capability in the
//	  │ ambient set, parent-death signal SIGKILL,
//	  │ [CLONE_INTO_CGROUP the leaf]; exec
//	  │ newuidmap/newgidmap on its pid, and the plan encoded, meanwhile
//	  ▼
//	constructor (stage_linux.c, before the Go runtime): a byte on the
//	  │ control socket (the exec is done: the helpers may start), then
//	  │ unshare(NEWNS|NEWIPC|NEWUTS|NEWNET|NEWCGROUP)
//	  ▼
//	"sbx:init" = PID 1, in the sandbox's user namespace      init_linux.go
//	  │   reads the plan and the filter, waits for msgMapped, builds
//	  │   the view (mount_linux.go) while another thread brings lo up,
//	  │   sets the hostname, opens the Landlock rules on the view
//	  │   (landlock_linux.go)
//	  │ the spawner's locked thread (spawner_linux.go): bounding,
//	  │ ambient and inheritable sets emptied, no_new_privs, the
//	  │ Landlock domain; descriptors checked; fork+exec in C
//	  │ (spawn_linux.c: --root's nested user namespace, then seccomp
//	  │ last, then execve; cgo, for this and for libseccomp)
//	  ▼
//	COMMAND: reaped by init, which forwards signals and reports its
//	         end to the launcher as data; when the caller's stdin is a
//	         terminal, on a pseudo-terminal that init opens in the
//	         sandbox's devpts and whose master the launcher relays,
//	         and whose stops init reports too (pty_linux.go)
//
// The first exec of a process cloned into a new user namespace happens
// before its uid is mapped; ambient capabilities survive it, so one Go
// runtime start inside serves for the whole setup. Every mount belongs
// to the sandbox's user namespace, in which the payload has no
// capability; with --root the payload is root only in a nested one, and
// user.max_user_namespaces in the sandbox's namespace keeps it the last.
//
// A third mode, "sbx:holder" (stage.go), is the process of the session's
// delegated cgroup subtree (package cgroup).
package sandbox
