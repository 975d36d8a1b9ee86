//go:build !unix

package zone

import "os"

// lockFile does nothing where flock(2) is missing: run one sshdyn per zone
// file there.
func lockFile(*os.File) error { return nil }

// giveToDirOwner does nothing where files have no Unix owner.
func giveToDirOwner(string) error { return nil }
