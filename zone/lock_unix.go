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

// giveToDirOwner makes path belong to the owner of its directory when
// root writes it: a key "sshdyn dnssec roll" makes as root is then the
// daemon's user's to read.
func giveToDirOwner(path string) error {
	if os.Geteuid() != 0 {
		return nil
	}
	fi, err := os.Stat(filepathDir(path))
	if err != nil {
		return err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return nil
	}
	return os.Lchown(path, int(st.Uid), int(st.Gid))
}
