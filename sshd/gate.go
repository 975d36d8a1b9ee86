package sshd

import (
	"net/netip"
	"sync"
)

// gate counts connections that have not authenticated yet, in total and
// per source address, and refuses new ones over either limit. A source
// under attack cannot starve the others; many homes behind one carrier-NAT
// address still fit under the per-source limit.
type gate struct {
	max, perSource int

	mu       sync.Mutex
	total    int
	bySource map[netip.Addr]int
}

// enter admits a connection from src; the returned release must be called
// once, when it authenticates or ends. ok is false over a limit.
func (g *gate) enter(src netip.Addr) (release func(), ok bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.total >= g.max || g.bySource[src] >= g.perSource {
		return nil, false
	}
	if g.bySource == nil {
		g.bySource = make(map[netip.Addr]int)
	}
	g.total++
	g.bySource[src]++
	var once sync.Once
	return func() {
		once.Do(func() {
			g.mu.Lock()
			defer g.mu.Unlock()
			g.total--
			if g.bySource[src]--; g.bySource[src] == 0 {
				delete(g.bySource, src)
			}
		})
	}, true
}

// count returns the connections waiting to authenticate.
func (g *gate) count() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.total
}
