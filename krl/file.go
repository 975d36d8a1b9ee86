package krl

import (
	"fmt"
	"os"
	"sync"
	"sync/atomic"

	"golang.org/x/crypto/ssh"
)

// maxFile bounds a revocation list file.
const maxFile = 64 << 20

// File is a revocation list file that can be reloaded: lookups see the
// old list until a reload has parsed the new file whole. A file that
// does not parse keeps the old list (unlike the authorized file, a
// revocation list only takes away: keeping it never lets a key in).
type File struct {
	path string
	cur  atomic.Pointer[List]

	mu   sync.Mutex // serializes Reload; guards seen
	seen os.FileInfo
}

// Open loads the revocation list at path.
func Open(path string) (*File, error) {
	f := &File{path: path}
	if err := f.Reload(); err != nil {
		return nil, err
	}
	return f, nil
}

// Reload parses the file again; on error the old list stays in use.
func (f *File) Reload() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	fi, err := os.Stat(f.path)
	if err != nil {
		return fmt.Errorf("revoked keys: %w", err)
	}
	if fi.Size() > maxFile {
		return fmt.Errorf("revoked keys %s: over %d MiB", f.path, maxFile>>20)
	}
	data, err := os.ReadFile(f.path)
	if err != nil {
		return fmt.Errorf("revoked keys: %w", err)
	}
	l, err := Parse(data)
	if err != nil {
		return fmt.Errorf("revoked keys %s: %w", f.path, err)
	}
	f.cur.Store(l)
	f.seen = fi
	return nil
}

// Changed reports whether the file on disk differs (another file, size
// or modification time) from the version last loaded.
func (f *File) Changed() bool {
	fi, err := os.Stat(f.path)
	if err != nil {
		return false // being replaced: look again later
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return !os.SameFile(fi, f.seen) || fi.Size() != f.seen.Size() || !fi.ModTime().Equal(f.seen.ModTime())
}

// Revoked is the current list's Revoked.
func (f *File) Revoked(k ssh.PublicKey) (string, bool) { return f.cur.Load().Revoked(k) }

// List returns the list in use.
func (f *File) List() *List { return f.cur.Load() }

// Path returns the file's path.
func (f *File) Path() string { return f.path }
