package update

import (
	"context"
	"net"
	"sync"
	"time"
)

// Pool keeps idle TCP connections to one primary for reuse, so that an
// exchange does not pay for a TCP handshake and the primary's
// per-connection set-up. It also bounds the connections being opened at
// once. It is safe for concurrent use; the zero value is not: use
// NewPool.
type Pool struct {
	// MaxIdle bounds the idle connections kept; IdleTimeout is how long
	// one may sit idle before it is closed instead of reused. It stays
	// under the primaries' own idle limits (BIND 30 s, Knot 10 s).
	MaxIdle     int
	IdleTimeout time.Duration
	// MaxDialing bounds the connections being opened at once (0 means
	// 1); an exchange over it waits for an idle connection or a free
	// dial.
	// Primaries listen with short accept queues (Knot and BIND: 10): a
	// burst of connects beyond one loses SYNs, and each lost SYN costs
	// its exchange the kernel's one-second retransmission.
	MaxDialing int

	// dial opens a connection; tests replace it.
	dial func(ctx context.Context, addr string) (net.Conn, error)

	mu      sync.Mutex
	idle    []idleConn // oldest first
	dialing int
	changed chan struct{} // closed when a connection is put back or a dial ends
}

// idleConn is a bare net.Conn: a dns.Conn carries TSIG state from one
// exchange to the next (the request MAC, as in a zone transfer), so each
// exchange wraps the connection in a new one.
type idleConn struct {
	c     net.Conn
	since time.Time
}

// NewPool returns a pool keeping up to 16 connections idle for up to 4 s
// and opening at most 4 at once.
func NewPool() *Pool { return &Pool{MaxIdle: 16, IdleTimeout: 4 * time.Second, MaxDialing: 4} }

// conn returns the most recently used idle connection (reused) or, with
// fresh set or none idle, a new one to addr. With MaxDialing dials under
// way, it waits for one of them to end, or for a connection to come
// back, until ctx is done. A nil Pool dials at once.
func (p *Pool) conn(ctx context.Context, addr string, fresh bool) (c net.Conn, reused bool, err error) {
	if p == nil {
		c, err = dialTCP(ctx, addr)
		return c, false, err
	}
	for {
		p.mu.Lock()
		if !fresh {
			if c := p.takeIdle(); c != nil {
				p.mu.Unlock()
				return c, true, nil
			}
		}
		if p.dialing < max(p.MaxDialing, 1) {
			p.dialing++
			p.mu.Unlock()
			c, err = p.open(ctx, addr)
			return c, false, err
		}
		if p.changed == nil {
			p.changed = make(chan struct{})
		}
		wait := p.changed
		p.mu.Unlock()
		select {
		case <-wait:
		case <-ctx.Done():
			return nil, false, ctx.Err()
		}
	}
}

// open dials addr in a dial slot the caller took, and frees it.
func (p *Pool) open(ctx context.Context, addr string) (net.Conn, error) {
	dial := p.dial
	if dial == nil {
		dial = dialTCP
	}
	c, err := dial(ctx, addr)
	p.mu.Lock()
	p.dialing--
	p.signal()
	p.mu.Unlock()
	return c, err
}

func dialTCP(ctx context.Context, addr string) (net.Conn, error) {
	var d net.Dialer
	return d.DialContext(ctx, "tcp", addr)
}

// takeIdle closes the connections idle too long and returns the most
// recently used of the others, or nil. p.mu is held.
func (p *Pool) takeIdle() net.Conn {
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

// signal wakes the waiters. p.mu is held.
func (p *Pool) signal() {
	if p.changed != nil {
		close(p.changed)
		p.changed = nil
	}
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
	p.signal()
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
