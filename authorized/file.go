package authorized

import (
	"fmt"
	"os"
	"sync"
	"sync/atomic"

	"golang.org/x/crypto/ssh"
)

// File is an authorized file that can be reloaded: lookups always see one
// whole map, the old one until a reload has parsed the new file entirely.
type File struct {
	path  string
	scope Scope
	cur   atomic.Pointer[Map]

	mu sync.Mutex // serializes Reload
}

// Open loads the authorized file at path.
func Open(path string, scope Scope) (*File, error) {
	f := &File{path: path, scope: scope}
	if err := f.Reload(); err != nil {
		return nil, err
	}
	return f, nil
}

// ReloadError is a reload that found bad lines. The map in use is then
// the file's good lines, plus, for each bad line whose key (or http-user)
// the previous map had, that previous entry: a broken edit does not lock
// the line's key out, and a line removed from the file is revoked whatever
// else fails.
type ReloadError struct {
	Err     error // the bad lines, as file:line: what is wrong
	Kept    int   // bad lines whose key keeps its previous options
	Removed int   // entries of the previous map not in the new one
	Keys    int   // entries in the new map
}

func (e *ReloadError) Error() string {
	return fmt.Sprintf("%v (now in use: the good lines, %d key(s), the previous options kept for %d bad line(s), %d key(s) removed)", e.Err, e.Keys, e.Kept, e.Removed)
}

func (e *ReloadError) Unwrap() error { return e.Err }

// Reload parses the file again and swaps the new map in. The first load
// fails on any bad line; a later one with bad lines returns a
// *ReloadError and uses what the file still says (see ReloadError). An
// emptied file revokes every key.
func (f *File) Reload() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	r, err := os.Open(f.path)
	if err != nil {
		return err
	}
	defer r.Close()
	m, bad, err := parse(r, f.path, f.scope)
	old := f.cur.Load()
	if err != nil && old == nil {
		return err
	}
	var rerr error
	if err != nil {
		kept := m.carryOver(old, bad)
		rerr = &ReloadError{Err: err, Kept: kept, Removed: m.removed(old), Keys: m.Len()}
	}
	f.cur.Store(m)
	return rerr
}

// Lookup returns key's entry in the current map.
func (f *File) Lookup(key ssh.PublicKey) (*Entry, bool) { return f.cur.Load().Lookup(key) }

// Authority reports whether key is a CA of the current map.
func (f *File) Authority(key ssh.PublicKey) bool { return f.cur.Load().Authority(key) }

// Certificate is the current map's Certificate.
func (f *File) Certificate(c *ssh.Certificate) (*Entry, []string, error) {
	return f.cur.Load().Certificate(c)
}

// LookupUser returns the entry of http-user name in the current map.
func (f *File) LookupUser(name string) (*Entry, bool) { return f.cur.Load().LookupUser(name) }

// Map returns the current map.
func (f *File) Map() *Map { return f.cur.Load() }

// Path returns the file's path.
func (f *File) Path() string { return f.path }
