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
// old list until a reload has parsed the new file whole.
//
// It fails closed, as OpenSSH's sshd does: once a reload finds the file
// missing, unreadable or not parsing, every key and certificate is
// revoked until a reload parses it again. (Keeping the old list would
// let in what the operator just revoked: audit finding H7.) Open of a
// file that does not load is an error, so serve refuses to start.
type File struct {
	path string
	cur  atomic.Pointer[List]
	bad  atomic.Pointer[error] // the last reload's error; nil while it loads

	mu   sync.Mutex  // serializes Reload; guards seen
	seen os.FileInfo // the file as last tried, loaded or not; nil if it could not be seen
}

// Open loads the revocation list at path.
func Open(path string) (*File, error) {
	f := &File{path: path}
	if err := f.Reload(); err != nil {
		return nil, err
	}
	return f, nil
}

// Reload parses the file again. On error every key is revoked until a
// reload succeeds; the error is returned.
func (f *File) Reload() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	l, err := f.load()
	if err != nil {
		f.bad.Store(&err)
		return err
	}
	f.cur.Store(l)
	f.bad.Store(nil)
	return nil
}

// load reads and parses the file, and records what it saw in seen.
func (f *File) load() (*List, error) {
	f.seen = nil
	fi, err := os.Stat(f.path)
	if err != nil {
		return nil, fmt.Errorf("revoked keys: %w", err)
	}
	f.seen = fi
	if fi.Size() > maxFile {
		return nil, fmt.Errorf("revoked keys %s: over %d MiB", f.path, maxFile>>20)
	}
	data, err := os.ReadFile(f.path)
	if err != nil {
		return nil, fmt.Errorf("revoked keys: %w", err)
	}
	l, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("revoked keys %s: %w", f.path, err)
	}
	return l, nil
}

// Changed reports whether the file on disk differs (another file, size
// or modification time, or it appeared or vanished) from the version
// last tried, whether that loaded or not: a broken file is reported
// once, not at every look.
func (f *File) Changed() bool {
	fi, err := os.Stat(f.path)
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case err != nil: // gone: news unless the last try found it gone
		return f.seen != nil || f.bad.Load() == nil
	case f.seen == nil: // back
		return true
	}
	return !os.SameFile(fi, f.seen) || fi.Size() != f.seen.Size() || !fi.ModTime().Equal(f.seen.ModTime())
}

// Err returns why the file does not load now, or nil when it does.
func (f *File) Err() error {
	if e := f.bad.Load(); e != nil {
		return *e
	}
	return nil
}

// Revoked is the current list's Revoked; while the file does not load,
// every key is revoked.
func (f *File) Revoked(k ssh.PublicKey) (string, bool) {
	if f.bad.Load() != nil {
		return "revoked_keys does not load: every key is refused until it does", true
	}
	return f.cur.Load().Revoked(k)
}

// List returns the list last loaded.
func (f *File) List() *List { return f.cur.Load() }

// Path returns the file's path.
func (f *File) Path() string { return f.path }
