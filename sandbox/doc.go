// Package sandbox executes a policy.Plan: it probes the host, runs the
// launcher, and holds the stage that runs inside the sandbox.
//
// Two processes, the second a run of this same binary selected by
// argv[0] (see Stage), with a typed protocol over a SOCK_SEQPACKET
// socket pair (protocol.go) and the plan in a sealed memfd:
//
//	launcher (host, the caller, no privilege)          run_linux.go
//	  │ [cgroup: a leaf delegated by the user manager]  cgroup_linux.go
//	  │ clone(CLONE_NEWUSER|NEWNS|NEWPID|NEWIPC|NEWUTS|NEWNET|NEWCGROUP),
//	  │ every capability in the ambient set, parent-death signal SIGKILL,
//	  │ [CLONE_INTO_CGROUP the leaf]
//	  │ newuidmap/newgidmap on its pid, meanwhile
//	  ▼
//	"sbx:init" = PID 1, in the sandbox's user namespace      init_linux.go
//	  │   reads the plan, waits for msgMapped, builds the view
//	  │   (mount_linux.go), sets the hostname, brings lo up
//	  │ fork+exec from a locked thread whose bounding, ambient and
//	  │ inheritable sets are empty and which has no_new_privs
//	  │ (--root: into a nested user namespace that owns nothing)
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
