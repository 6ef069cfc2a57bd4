// Package idmap holds user and group id ranges and maps as values.
//
// It parses subordinate-id text (subuid(5), the output of getsubids(1))
// from readers, composes the maps a sandbox needs from the caller's id
// and its subordinate ranges, validates them against the rules of
// user_namespaces(7), and renders them as uid_map text or as the
// argument vector of newuidmap(1)/newgidmap(1).
//
// idmap is pure: it must not import os, os/exec, syscall,
// golang.org/x/sys/unix or unsafe, and it reads no environment.
// tests/purity_test.go keeps it so.
package idmap
