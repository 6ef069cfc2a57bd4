// Package sandbox executes a policy.Plan: it probes the host, runs the
// launcher, and holds the stages that run inside the sandbox.
//
// One process per privilege boundary, each a run of this same binary
// selected by argv[0] (see Stage), with a typed protocol over a
// SOCK_SEQPACKET socket pair (protocol.go):
//
//	launcher (host, the caller, no privilege)
//	  │ clone(CLONE_NEWUSER|NEWNS|NEWPID|NEWIPC|NEWUTS|NEWNET|NEWCGROUP)
//	  ▼
//	"sbx:init" ── waits for msgMapped, then re-execs itself (an exec
//	  │          with an unmapped euid left it without capabilities)
//	  ▼
//	"sbx:pid1" = PID 1, root of user namespace U1 (uid 0 = the caller,
//	  │          1.. = subordinate ids): builds the view (mounts, pivot_root),
//	  │          hostname, loopback; then reaps orphans, forwards signals
//	  │ clone(CLONE_NEWUSER), nested map written by pid1
//	  ▼
//	"sbx:exec" in U2, which owns no namespace and no mount: drops the
//	             bounding set and capabilities, sets no_new_privs, closes
//	             descriptors, chdir, execve(COMMAND)
//
// Because every mount belongs to U1 and the payload runs in U2, even a
// --root payload (uid 0 in U2, with capabilities there) cannot unmount,
// remount or mount over the view; U1's user.max_user_namespaces is set
// to 1, so U2 is the last user namespace that can exist below it.
package sandbox
