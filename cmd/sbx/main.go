// Command sbx runs a command in a rootless sandbox. See docs/cli.md.
package main

import (
	"os"
	"path/filepath"

	"sbx/sandbox"
)

func main() {
	// Stage dispatch first: a re-executed stage of a running sandbox
	// must not parse flags or read the environment.
	if stage := sandbox.Stage(os.Args); stage != nil {
		os.Exit(stage())
	}
	// A shim (sbx wrap install) is sbx called by a wrapped command's name.
	if name := filepath.Base(os.Args[0]); name != "sbx" {
		if code, ok := shim(name, os.Args[1:]); ok {
			os.Exit(code)
		}
	}
	os.Exit(sbx(os.Args[1:]))
}
