package update

import (
	"sync"

	"github.com/sshdyn/sshdyn/dnsname"
)

// keyedMutex is a set of mutexes by RRset (name and type); its zero
// value is ready. An entry lives only while someone holds or waits for it.
type keyedMutex struct {
	mu    sync.Mutex
	locks map[rrsetKey]*keyedEntry
}

// rrsetKey names one RRset of a zone.
type rrsetKey struct {
	name string // canonical
	t    uint16
}

func keyOf(r Record) rrsetKey { return rrsetKey{dnsname.Canonical(r.Name), r.Type()} }

type keyedEntry struct {
	mu   sync.Mutex
	refs int // holders and waiters
}

// lock locks the RRset's mutex and returns its unlock.
func (k *keyedMutex) lock(key rrsetKey) (unlock func()) {
	k.mu.Lock()
	if k.locks == nil {
		k.locks = map[rrsetKey]*keyedEntry{}
	}
	e := k.locks[key]
	if e == nil {
		e = &keyedEntry{}
		k.locks[key] = e
	}
	e.refs++
	k.mu.Unlock()
	e.mu.Lock()
	return func() {
		e.mu.Unlock()
		k.mu.Lock()
		if e.refs--; e.refs == 0 {
			delete(k.locks, key)
		}
		k.mu.Unlock()
	}
}
