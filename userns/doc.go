// Package userns talks to the host about user namespaces: it reads the
// caller's subordinate id ranges (subuid(5), subgid(5), getsubids(1))
// into package idmap, finds newuidmap(1)/newgidmap(1), and writes the
// maps of a new user namespace, through the helpers or, for the
// single-id fallback, directly (user_namespaces(7)).
//
// It runs in the launcher, on the host, as the unprivileged caller.
package userns
