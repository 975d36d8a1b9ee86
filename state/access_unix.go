//go:build unix

package state

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// writable says why this process cannot make or write the SQLite file
// path in dir, if it cannot: SQLite itself says only "unable to open
// database file".
func writable(dir, path string) error {
	if err := unix.Access(dir, unix.W_OK|unix.X_OK); err != nil {
		return fmt.Errorf("the directory %s is not writable by this process (uid %d): %v; make it the sshdyn user's (the file and its -wal and -shm files are made there)", dir, os.Getuid(), err)
	}
	if _, err := os.Stat(path); err == nil {
		if err := unix.Access(path, unix.R_OK|unix.W_OK); err != nil {
			return fmt.Errorf("%s is not writable by this process (uid %d): %v", path, os.Getuid(), err)
		}
	}
	return nil
}
