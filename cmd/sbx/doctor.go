package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/pflag"

	"sbx/policy"
	"sbx/sandbox"
)

const doctorUsage = `Usage: sbx doctor [--json]

Checks every host gate sbx depends on and prints one line per gate
(ok, warn or fail), with the fix under each warn or fail. Exit status 0
when ` + "`sbx run`" + ` works with the default profile, 125 when it cannot.
`

// doctor runs `sbx doctor [--json]`: the report goes to stdout.
func doctor(args []string) int {
	fs := pflag.NewFlagSet("sbx doctor", pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	asJSON := fs.Bool("json", false, "print the checks as a JSON array")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			fmt.Print(doctorUsage)
			return 0
		}
		return fail(fmt.Errorf("doctor: %w", flagError(err)))
	}
	if fs.NArg() > 0 {
		return fail(fmt.Errorf("doctor: unexpected argument %q", fs.Arg(0)))
	}
	checks := policy.Diagnose(sandbox.ProbeDoctor())
	if *asJSON {
		b, err := json.MarshalIndent(checks, "", "  ")
		if err != nil {
			return fail(fmt.Errorf("doctor: %w", err))
		}
		os.Stdout.Write(append(b, '\n'))
	} else {
		os.Stdout.WriteString(doctorTable(checks))
	}
	if !policy.Usable(checks) {
		var failed []string
		for _, c := range checks {
			if c.Status == policy.StatusFail {
				failed = append(failed, c.Name)
			}
		}
		return fail(fmt.Errorf("doctor: sbx run cannot work on this host: %s failed", strings.Join(failed, ", ")))
	}
	return 0
}

// doctorTable renders the checks one line each, status and name in
// columns, and an indented "fix:" line under each warn or fail.
func doctorTable(checks []policy.Check) string {
	width := 0
	for _, c := range checks {
		width = max(width, len(c.Name))
	}
	var b strings.Builder
	for _, c := range checks {
		fmt.Fprintf(&b, "%-4s  %-*s  %s\n", c.Status, width, c.Name, c.Detail)
		if c.Status != policy.StatusOK && c.Fix != "" {
			fmt.Fprintf(&b, "      %*s  fix: %s\n", width, "", c.Fix)
		}
	}
	return b.String()
}
