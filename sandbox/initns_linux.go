package sandbox

/*
#include "stage_linux.h"
*/
import "C"

import (
	"errors"

	"golang.org/x/sys/unix"
)

// initNamespaces is how init's namespaces came to be: the constructor in
// stage_linux.c unshared them before the Go runtime started. nil means
// they exist; init fails closed otherwise.
func initNamespaces() error {
	switch e := int(C.sbx_init_unshare_errno()); {
	case e == 0:
		return nil
	case e < 0:
		return errors.New("no constructor ran for init")
	default:
		return unix.Errno(e)
	}
}
