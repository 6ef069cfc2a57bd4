// Package cgroup gets the sandbox a cgroup v2 subtree that the systemd
// user manager delegates to the caller, over D-Bus: a transient scope
// with Delegate=yes (systemd.resource-control(5), "Delegation" in
// systemd's cgroup documentation), the leaves below it, the limits, the
// reports (memory.events, memory.peak, cpu.stat, pids.peak) and the
// teardown (cgroup.kill).
//
// It runs in the launcher, on the host, as the unprivileged caller, and
// only when the plan asks for a cgroup: a run without limits never
// contacts the user manager.
//
// Layout of a sandbox's scope (cgroup v2 forbids processes in a node
// whose controllers are enabled for its children):
//
//	sbx-<pid>-<rand>.scope/      Delegate=yes; controllers enabled below
//	├── launcher/                the sbx process itself
//	└── sandbox/                 the limits; init is cloned straight into it
//	                             (CLONE_INTO_CGROUP) and roots its cgroup
//	                             namespace here, with the payload below it
package cgroup
