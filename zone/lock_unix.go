//go:build unix

package zone

import (
	"errors"
	"os"
	"syscall"
)

// lockFile takes an exclusive lock on f, at once or not at all: one
// process at a time may append to a zone's journal.
func lockFile(f *os.File) error {
	err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
	if errors.Is(err, syscall.EWOULDBLOCK) {
		return errLocked
	}
	return err
}
