package sandbox

import (
	"slices"

	"golang.org/x/sys/unix"
)

// closeInherited marks every descriptor above 2 close-on-exec except the
// kept ones, so that nothing the caller leaked to sbx reaches a stage or
// the payload (Go does not close inherited descriptors on exec).
func closeInherited(keep []int) error {
	next := uint(3)
	for _, fd := range slices.Sorted(slices.Values(keep)) {
		if uint(fd) > next {
			if err := unix.CloseRange(next, uint(fd)-1, unix.CLOSE_RANGE_CLOEXEC); err != nil {
				return err
			}
		}
		next = uint(fd) + 1
	}
	return unix.CloseRange(next, ^uint(0), unix.CLOSE_RANGE_CLOEXEC)
}
