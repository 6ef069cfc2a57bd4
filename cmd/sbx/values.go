package main

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"sbx/policy"
)

// Typed pflag values: each parses with the policy package's pure
// parsers, so a bad value is refused with the flag and value named.

type fsValue struct {
	kind policy.FSKind
	list *[]policy.FSFlag
}

func (v *fsValue) Set(s string) error {
	var f policy.FSFlag
	var err error
	if v.kind == policy.FSRo || v.kind == policy.FSRw {
		f, err = policy.ParseBind(v.kind, s)
	} else {
		f, err = policy.ParseDest(v.kind, s)
	}
	if err != nil {
		return err
	}
	*v.list = append(*v.list, f)
	return nil
}
func (v *fsValue) String() string { return "" }
func (v *fsValue) Type() string   { return "path" }

// onceValue is a string flag that may be given once.
type onceValue struct {
	name  string
	dst   *string
	set   bool
	check func(string) (string, error)
}

func (v *onceValue) Set(s string) error {
	if v.set {
		return fmt.Errorf("--%s given twice (%q and %q)", v.name, *v.dst, s)
	}
	if v.check != nil {
		if _, err := v.check(s); err != nil {
			return err
		}
	} else if s == "" {
		return fmt.Errorf("--%s: empty value", v.name)
	}
	*v.dst, v.set = s, true
	return nil
}
func (v *onceValue) String() string { return "" }
func (v *onceValue) Type() string   { return "string" }

type listValue struct {
	dst   *[]string
	check func(string) (string, error)
}

func (v *listValue) Set(s string) error {
	if v.check != nil {
		if _, err := v.check(s); err != nil {
			return err
		}
	}
	*v.dst = append(*v.dst, s)
	return nil
}
func (v *listValue) String() string { return strings.Join(*v.dst, ",") }
func (v *listValue) Type() string   { return "string" }

type fdValue struct{ dst *[]int }

func (v *fdValue) Set(s string) error {
	n, err := policy.ParseFD(s)
	if err != nil {
		return err
	}
	*v.dst = append(*v.dst, n)
	return nil
}
func (v *fdValue) String() string { return "" }
func (v *fdValue) Type() string   { return "fd" }

// uintValue is a number flag that may be given once, parsed by parse.
type uintValue struct {
	name  string
	dst   *uint64
	set   *bool
	parse func(string) (uint64, error)
}

func (v *uintValue) Set(s string) error {
	if *v.set {
		return fmt.Errorf("--%s given twice", v.name)
	}
	n, err := v.parse(s)
	if err != nil {
		return err
	}
	*v.dst, *v.set = n, true
	return nil
}
func (v *uintValue) String() string { return "" }
func (v *uintValue) Type() string   { return "value" }

type timeoutValue struct {
	dst *time.Duration
	set bool
}

func (v *timeoutValue) Set(s string) error {
	if v.set {
		return fmt.Errorf("--timeout given twice (%s and %s)", v.dst, strconv.Quote(s))
	}
	d, err := policy.ParseTimeout(s)
	if err != nil {
		return err
	}
	*v.dst, v.set = d, true
	return nil
}
func (v *timeoutValue) String() string { return "" }
func (v *timeoutValue) Type() string   { return "duration" }
