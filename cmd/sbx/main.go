// Command sbx runs a command in a rootless sandbox. See docs/cli.md.
package main

import (
	"os"
	"path/filepath"

	"sbx/policy"
	"sbx/sandbox"
)

func main() {
	// Stage dispatch first: a re-executed stage of a running sandbox
	// must not parse flags or read the environment.
	if stage := sandbox.Stage(os.Args); stage != nil {
		os.Exit(stage())
	}
	// A shim (sbx wrap install) is sbx called by a wrapped command's
	// name. Under any name but sbx's own, sbx is a shim: a shim left
	// behind by a name no longer wrapped must not run `sbx run` with the
	// arguments meant for the command.
	if name := filepath.Base(os.Args[0]); !policy.IsSbxName(name) {
		os.Exit(shim(name, os.Args[1:]))
	}
	os.Exit(sbx(os.Args[1:]))
}
