package dnstest

import (
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Proxy forwards TCP to a real primary, holding each connection's first
// bytes for a delay: a slow primary, which a real server will not play.
// CloseConns plays a primary that closes idle connections.
type Proxy struct {
	Addr     string
	Accepted <-chan struct{} // a value per accepted connection (buffered, lossy)

	active, peak, total atomic.Int32

	mu    sync.Mutex
	conns map[net.Conn]bool
}

// SlowProxy starts a Proxy to target; it stops when the test ends.
func SlowProxy(t testing.TB, target string, delay time.Duration) *Proxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	acc := make(chan struct{}, 100)
	p := &Proxy{Addr: l.Addr().String(), Accepted: acc, conns: map[net.Conn]bool{}}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			select {
			case acc <- struct{}{}:
			default:
			}
			go p.forward(c, target, delay)
		}
	}()
	return p
}

func (p *Proxy) forward(c net.Conn, target string, delay time.Duration) {
	p.mu.Lock()
	p.conns[c] = true
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		delete(p.conns, c)
		p.mu.Unlock()
		c.Close()
	}()
	p.total.Add(1)
	n := p.active.Add(1)
	defer p.active.Add(-1)
	for {
		old := p.peak.Load()
		if n <= old || p.peak.CompareAndSwap(old, n) {
			break
		}
	}
	u, err := net.Dial("tcp", target)
	if err != nil {
		return
	}
	defer u.Close()
	time.Sleep(delay)
	go io.Copy(c, u)
	io.Copy(u, c)
}

// Peak returns the most connections that were open through the proxy at once.
func (p *Proxy) Peak() int { return int(p.peak.Load()) }

// Total returns the number of connections accepted so far.
func (p *Proxy) Total() int { return int(p.total.Load()) }

// CloseConns closes every client connection open now, as a primary does
// with idle ones.
func (p *Proxy) CloseConns() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		c.Close()
	}
}
