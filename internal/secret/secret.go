// Package secret holds the one rule for sshdyn's secret files (TSIG
// keys, API keys, the authorized file when it holds password hashes):
// a file every user may read is refused, and a file the daemon's user
// may not read is an error that says how to fix it.
package secret

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
)

// Check refuses path, a secret of the kind what names, if every user may
// read it: anyone on the machine could use it. Group-readable stays
// allowed, for the documented "chgrp sshdyn; chmod 640" set-up.
func Check(what, path string) error {
	if fi, err := os.Stat(path); err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o004 != 0 {
		return fmt.Errorf("%s %s is mode %04o, readable by every user: chmod o-rwx %s (chown root:sshdyn and chmod 640 it if sshdyn runs as its own user)", what, path, fi.Mode().Perm(), path)
	}
	return nil
}

// Hint adds to err, an error opening or reading path, how to let the
// daemon's user read it when that is what failed.
func Hint(path string, err error) error {
	if errors.Is(err, fs.ErrPermission) {
		return fmt.Errorf("%w: the user sshdyn runs as must be able to read it (e.g. chown root:sshdyn %s; chmod 640 %s)", err, path, path)
	}
	return err
}

// Read checks path (Check) and returns its content.
func Read(what, path string) ([]byte, error) {
	if err := Check(what, path); err != nil {
		return nil, err
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, Hint(path, fmt.Errorf("%s: %w", what, err))
	}
	return b, nil
}
