package dnstest

import (
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"
)

// Proxy forwards TCP to a real primary, holding each connection's first
// bytes for a delay: a slow primary, which a real server will not play.
type Proxy struct {
	Addr     string
	Accepted <-chan struct{} // a value per accepted connection (buffered, lossy)

	active, peak atomic.Int32
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
	p := &Proxy{Addr: l.Addr().String(), Accepted: acc}
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
	defer c.Close()
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
