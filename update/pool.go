package update

import (
	"net"
	"sync"
	"time"
)

// Pool keeps idle TCP connections to one primary for reuse, so that an
// exchange does not pay for a TCP handshake and the primary's
// per-connection set-up. It is safe for concurrent use; the zero value is
// not: use NewPool.
type Pool struct {
	// MaxIdle bounds the idle connections kept; IdleTimeout is how long
	// one may sit idle before it is closed instead of reused. It stays
	// under the primaries' own idle limits (BIND 30 s, Knot 10 s).
	MaxIdle     int
	IdleTimeout time.Duration

	mu   sync.Mutex
	idle []idleConn // oldest first
}

// idleConn is a bare net.Conn: a dns.Conn carries TSIG state from one
// exchange to the next (the request MAC, as in a zone transfer), so each
// exchange wraps the connection in a new one.
type idleConn struct {
	c     net.Conn
	since time.Time
}

// NewPool returns a pool keeping up to 16 connections idle for up to 4 s.
func NewPool() *Pool { return &Pool{MaxIdle: 16, IdleTimeout: 4 * time.Second} }

// get returns the most recently used idle connection, or nil.
func (p *Pool) get() net.Conn {
	if p == nil {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	cut := time.Now().Add(-p.IdleTimeout)
	for len(p.idle) > 0 && p.idle[0].since.Before(cut) { // stale: the primary may have closed it
		p.idle[0].c.Close()
		p.idle = p.idle[1:]
	}
	if len(p.idle) == 0 {
		return nil
	}
	c := p.idle[len(p.idle)-1].c
	p.idle = p.idle[:len(p.idle)-1]
	return c
}

// put returns a connection after a clean exchange, or closes it.
func (p *Pool) put(c net.Conn) {
	if p == nil {
		c.Close()
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.idle) >= p.MaxIdle {
		c.Close()
		return
	}
	p.idle = append(p.idle, idleConn{c: c, since: time.Now()})
}

// Idle returns the number of idle connections.
func (p *Pool) Idle() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.idle)
}

// Close closes the idle connections.
func (p *Pool) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, ic := range p.idle {
		ic.c.Close()
	}
	p.idle = nil
}
