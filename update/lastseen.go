package update

import (
	"net/netip"
	"sync"
)

// LastSeen remembers, for each RRset of a zone, the one address a
// Remembering last saw it hold: a check that held, or a replace that was
// confirmed. With it, the next change of that RRset is a compare-and-set
// (Client.ReplaceIf) and need not read the RRset first. It is safe for concurrent use; the zero value
// is ready.
type LastSeen struct {
	// Max bounds the RRsets remembered (DefaultLastSeenMax if zero); past
	// it, one remembered RRset is forgotten for each new one.
	Max int

	mu   sync.Mutex
	addr map[rrsetKey]netip.Addr
}

// DefaultLastSeenMax is LastSeen.Max when that is zero: about 100 bytes
// each, 100 MiB at most.
const DefaultLastSeenMax = 1 << 20

// get returns the address last seen for key, if any. A nil LastSeen has
// seen nothing.
func (s *LastSeen) get(key rrsetKey) (netip.Addr, bool) {
	if s == nil {
		return netip.Addr{}, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.addr[key]
	return a, ok
}

// put remembers that key's RRset is exactly {a}.
func (s *LastSeen) put(key rrsetKey, a netip.Addr) {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.addr == nil {
		s.addr = map[rrsetKey]netip.Addr{}
	}
	if _, ok := s.addr[key]; !ok {
		limit := s.Max
		if limit <= 0 {
			limit = DefaultLastSeenMax
		}
		for k := range s.addr {
			if len(s.addr) < limit {
				break
			}
			delete(s.addr, k)
		}
	}
	s.addr[key] = a
}

// forget drops what was seen of key's RRset.
func (s *LastSeen) forget(key rrsetKey) {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.addr, key)
}

// Len returns the number of RRsets remembered.
func (s *LastSeen) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.addr)
}
