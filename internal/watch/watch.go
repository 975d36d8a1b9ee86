// Package watch is sshdyn's one way of reloading files that change on
// disk: the authorized file, revoked_keys and the HTTP front's TLS
// certificate. A file's stamp (inode, size, modification time, or its
// absence) is looked at every interval; a set of files whose stamps
// moved since the last try is reloaded, and a version that fails to
// load is tried once, not at every look, until it changes again.
// SIGHUP (Kick) reloads every set at once, changed or not.
package watch

import (
	"context"
	"os"
	"slices"
	"sync"
	"time"
)

// Stamp is what says a file changed.
type Stamp struct {
	Ino     uint64
	Size    int64
	Mtime   time.Time
	Missing bool // it could not be looked at
}

// StampOf returns path's stamp.
func StampOf(path string) Stamp {
	fi, err := os.Stat(path)
	if err != nil {
		return Stamp{Missing: true}
	}
	return Stamp{Ino: inode(fi), Size: fi.Size(), Mtime: fi.ModTime()}
}

// stamps returns the stamps of paths.
func stamps(paths []string) []Stamp {
	out := make([]Stamp, len(paths))
	for i, p := range paths {
		out[i] = StampOf(p)
	}
	return out
}

// Watcher reloads sets of files. Add them, then Run it.
type Watcher struct {
	mu    sync.Mutex
	items []*item
}

// item is one set of files and its reload.
type item struct {
	paths  []string
	reload func(why string)
	seen   []Stamp // the stamps at the last try
}

// Add watches paths (stamped now, as loaded by the caller), and calls
// reload(why) when one changes, or on Kick.
func (w *Watcher) Add(reload func(why string), paths ...string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.items = append(w.items, &item{paths: paths, reload: reload, seen: stamps(paths)})
}

// Kick reloads every set now, changed or not: SIGHUP.
func (w *Watcher) Kick(why string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, it := range w.items {
		it.seen = stamps(it.paths) // stamp before reading: a write during it shows as a change next time
		it.reload(why)
	}
}

// Look reloads each set whose files changed since the last try.
func (w *Watcher) Look() {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, it := range w.items {
		now := stamps(it.paths)
		if slices.Equal(now, it.seen) {
			continue
		}
		it.seen = now
		it.reload("file changed")
	}
}

// Run looks every interval until ctx ends; with interval 0 it only
// returns when ctx ends (SIGHUP only).
func (w *Watcher) Run(ctx context.Context, interval time.Duration) {
	if interval <= 0 {
		<-ctx.Done()
		return
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			w.Look()
		}
	}
}
