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
	if wantsHelp(args) || subHelp(args) {
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
		if err == nil {
			_, err = seccompFile(s.Chain, s.Flags, s.Origins, s.Unexpanded, true)
		}
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

// seccompFile reads the JSON seccomp profile f names, if it names one,
// and with check compiles it too. A value kept unexpanded (sbx profile
// check where a variable is undefined) names no file to read here.
func seccompFile(chain []*policy.Profile, f policy.Flags, o policy.Origins, unexpanded map[string]string, check bool) ([]byte, error) {
	s := f.Seccomp
	if !policy.SeccompPath(s) {
		return nil, nil
	}
	if _, ok := unexpanded["security.seccomp"]; ok {
		return nil, nil
	}
	b, err := sandbox.ReadConfig(s)
	if err == nil && check {
		err = sandbox.CheckSeccomp(policy.Seccomp{Mode: policy.SeccompProfile, Path: s, JSON: string(b)})
	}
	if err != nil {
		return nil, seccompError(chain, o, err)
	}
	return b, nil
}

// seccompError places an error about the seccomp profile's file: at
// the security.seccomp key of the profile that named it, or on
// --seccomp.
func seccompError(chain []*policy.Profile, o policy.Origins, err error) error {
	if perr := policy.ValueError(chain, o, "security.seccomp", err); perr != nil {
		return perr
	}
	return fmt.Errorf("run: --seccomp: %w", err)
}
