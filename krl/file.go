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
// It is reloaded by whoever watches it (serve's watcher: when the file
// changes, and on SIGHUP). It fails closed, as OpenSSH's sshd does: once a reload finds the file
// missing, unreadable or not parsing, every key and certificate is
// revoked until a reload parses it again. (Keeping the old list would
// let in what the operator just revoked: audit finding H7.) Open of a
// file that does not load is an error, so serve refuses to start.
type File struct {
	path string
	cur  atomic.Pointer[List]
	bad  atomic.Pointer[error] // the last reload's error; nil while it loads

	mu sync.Mutex // serializes Reload
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

// load reads and parses the file.
func (f *File) load() (*List, error) {
	fi, err := os.Stat(f.path)
	if err != nil {
		return nil, fmt.Errorf("revoked keys: %w", err)
	}
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
