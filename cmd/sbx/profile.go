package main

import (
	"errors"
	"fmt"
	"os"
	"text/tabwriter"

	"sbx/policy"
	"sbx/sandbox"
)

// profile runs `sbx profile list|show NAME|check FILE`.
func profile(args []string) int {
	if wantsHelp(args) {
		fmt.Print(shortUsage["profile"])
		return 0
	}
	if len(args) == 0 {
		return fail(errors.New("profile: want list, show NAME or check FILE"))
	}
	caller, err := sandbox.ProbeCaller()
	if err != nil {
		return fail(fmt.Errorf("profile: %w", err))
	}
	vars := sandbox.ProbeVars(caller)
	load := sandbox.ProfileLoader(vars)
	switch {
	case args[0] == "list" && len(args) == 1:
		w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
		for _, e := range sandbox.ListProfiles(vars) {
			fmt.Fprintf(w, "%s\t%s\t%s\n", e.Name, e.Source, e.Description)
		}
		w.Flush()
		return 0
	case args[0] == "show" && len(args) == 2:
		// Values that use a variable undefined here ($PROJECT outside a
		// project) are shown as written, with a note, not refused.
		s, err := policy.ShowChain([]string{args[1]}, vars, load)
		if err != nil {
			return fail(fmt.Errorf("profile show: %w", err))
		}
		fmt.Print(s.Render())
		return 0
	case args[0] == "check" && len(args) == 2:
		// Syntax, schema and every value, without needing the variables
		// to be defined here (they are expanded where a profile is
		// applied); the chain is folded as a run would fold it.
		s, err := policy.ShowChain([]string{args[1]}, vars, load)
		if err != nil {
			return fail(err)
		}
		for _, n := range s.Notes {
			warn(n)
		}
		fmt.Printf("%s: ok\n", s.Chain[len(s.Chain)-1].Source)
		return 0
	}
	return fail(fmt.Errorf("profile %q: want list, show NAME or check FILE", args))
}
