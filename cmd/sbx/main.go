// Command sbx runs a command in a rootless sandbox. See docs/cli.md.
package main

import (
	"os"

	"sbx/sandbox"
)

func main() {
	// Stage dispatch first: a re-executed stage of a running sandbox
	// must not parse flags or read the environment.
	if stage := sandbox.Stage(os.Args); stage != nil {
		os.Exit(stage())
	}
	os.Exit(sbx(os.Args[1:]))
}
