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
		chain, err := policy.LoadChain([]string{args[1]}, vars, load)
		if err != nil {
			return fail(fmt.Errorf("profile show: %w", err))
		}
		f, o, err := policy.ApplyProfiles(chain, vars, policy.Flags{})
		if err != nil {
			return fail(fmt.Errorf("profile show: %w", err))
		}
		fmt.Print(policy.RenderProfile(chain, f, o))
		return 0
	case args[0] == "check" && len(args) == 2:
		chain, err := policy.LoadChain([]string{args[1]}, vars, load)
		if err == nil {
			// Values with variables are checked as they would expand here.
			_, _, err = policy.ApplyProfiles(chain, vars, policy.Flags{})
		}
		if err != nil {
			return fail(err)
		}
		fmt.Printf("%s: ok\n", chain[len(chain)-1].Source)
		return 0
	}
	return fail(fmt.Errorf("profile %q: want list, show NAME or check FILE", args))
}
