package sshd

import (
	"net"
	"net/netip"
	"sync"

	"github.com/sshdyn/sshdyn/publish"
)

// gate bounds connections that have not authenticated yet, in total and
// per source address.
//
// The total is a pool of slots that the listener takes before it accepts:
// over the limit, new connections wait in the kernel's listen queue (and,
// past it, in SYN retries) instead of being refused, so a cron burst is
// served late rather than not at all, and the memory held stays bounded.
// The per-source limit refuses at once: one source cannot take all the
// slots, and many homes behind one carrier-NAT address still fit. An
// IPv6 source is its /64, which one host can fill with addresses.
type gate struct {
	perSource int
	slots     chan struct{} // one per connection accepted and not yet authenticated or gone

	mu       sync.Mutex
	total    int                  // admitted by enter and not yet released
	bySource map[netip.Prefix]int // by publish.Source: IPv6 by /64
}

func newGate(max, perSource int) *gate {
	return &gate{perSource: perSource, slots: make(chan struct{}, max), bySource: make(map[netip.Prefix]int)}
}

// acquire takes a slot, waiting until one is free or done is closed.
func (g *gate) acquire(done <-chan struct{}) bool {
	select {
	case g.slots <- struct{}{}:
		return true
	case <-done:
		return false
	}
}

// drop gives back the slot of a connection refused before enter.
func (g *gate) drop() { <-g.slots }

// enter admits a connection from src that holds a slot; the returned
// release, which gives the slot back, must be called once, when it
// authenticates or ends. ok is false over the per-source limit: the
// caller closes the connection and calls drop.
func (g *gate) enter(addr netip.Addr) (release func(), ok bool) {
	src := publish.Source(addr)
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.bySource[src] >= g.perSource {
		return nil, false
	}
	g.bySource[src]++
	g.total++
	var once sync.Once
	return func() {
		once.Do(func() {
			g.mu.Lock()
			g.total--
			if g.bySource[src]--; g.bySource[src] == 0 {
				delete(g.bySource, src)
			}
			g.mu.Unlock()
			g.drop()
		})
	}, true
}

// count returns the connections waiting to authenticate. (The slots in
// use can be one more per listener: a listener holds one while it waits
// in Accept.)
func (g *gate) count() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.total
}

// gatedListener accepts only when the gate has a free slot.
type gatedListener struct {
	net.Listener
	gate *gate
	done chan struct{}
	once sync.Once
}

func (l *gatedListener) Accept() (net.Conn, error) {
	if !l.gate.acquire(l.done) {
		return nil, net.ErrClosed
	}
	c, err := l.Listener.Accept()
	if err != nil {
		l.gate.drop()
		return nil, err
	}
	return c, nil
}

func (l *gatedListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return l.Listener.Close()
}
