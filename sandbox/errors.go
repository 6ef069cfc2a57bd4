package sandbox

import (
	"errors"
	"fmt"
	"syscall"
)

// StageError is an error of a setup stage. It crosses the process
// boundary as data (see msgError) and is printed by cmd/sbx as
// "sbx: STAGE: OP: ERR".
type StageError struct {
	Stage string        `json:"stage"`
	Op    string        `json:"op"`
	Err   string        `json:"err"`
	Errno syscall.Errno `json:"errno,omitempty"`
	Hint  string        `json:"hint,omitempty"`
}

func (e *StageError) Error() string {
	if e.Op == "" {
		return e.Stage + ": " + e.Err
	}
	return e.Stage + ": " + e.Op + ": " + e.Err
}

// Unwrap lets errors.Is match the errno.
func (e *StageError) Unwrap() error {
	if e.Errno != 0 {
		return e.Errno
	}
	return nil
}

// stageErr builds a StageError from op and an error, keeping its errno.
func stageErr(stage, op string, err error) *StageError {
	var se *StageError
	if errors.As(err, &se) {
		return se
	}
	e := &StageError{Stage: stage, Op: op, Err: err.Error()}
	var errno syscall.Errno
	if errors.As(err, &errno) {
		e.Errno = errno
	}
	return e
}

// opErr wraps err with an operation for stageErr.
func opErr(format string, args ...any) func(error) error {
	return func(err error) error {
		return &opError{op: fmt.Sprintf(format, args...), err: err}
	}
}

type opError struct {
	op  string
	err error
}

func (e *opError) Error() string { return e.op + ": " + e.err.Error() }
func (e *opError) Unwrap() error { return e.err }

// ExecError says the payload could not be started: Code is 126 (found
// but not executable) or 127 (not found).
type ExecError struct {
	Code int
	Err  string
}

func (e *ExecError) Error() string { return e.Err }
