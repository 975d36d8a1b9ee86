// Package connlimit caps the connections a server holds open, in all and
// per source: the HTTP front's and the embedded primary's TCP listeners.
package connlimit

import (
	"net"
	"net/netip"
	"sync"
)

// Listener caps the connections a server holds open: at most max in
// all, at most perSource from one source (source maps an address to its
// source: an IPv4 address, an IPv6 /64, say). A connection over either
// cap is closed as soon as it is accepted, before a byte is read;
// refused, if set, is called for each. Without it, one source could hold
// as many idle connections as the system's file descriptors allow (1,500
// of 1,500 were held: audit finding H1).
func Listener(l net.Listener, max, perSource int, source func(netip.Addr) netip.Prefix, refused func(remote net.Addr)) *Limited {
	return &Limited{Listener: l, max: max, perSource: perSource, source: source, refused: refused, bySource: map[netip.Prefix]int{}}
}

// Limited is a listener with caps: see Listener.
type Limited struct {
	net.Listener
	max, perSource int
	source         func(netip.Addr) netip.Prefix
	refused        func(net.Addr)

	mu       sync.Mutex
	total    int
	bySource map[netip.Prefix]int
}

func (l *Limited) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if lc, ok := l.admit(c); ok {
			return lc, nil
		}
		c.Close()
		if l.refused != nil {
			l.refused(c.RemoteAddr())
		}
	}
}

// admit counts c if it is within the caps.
func (l *Limited) admit(c net.Conn) (net.Conn, bool) {
	var src netip.Prefix
	if ap, err := netip.ParseAddrPort(c.RemoteAddr().String()); err == nil {
		src = l.source(ap.Addr().Unmap())
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.total >= l.max || l.bySource[src] >= l.perSource {
		return nil, false
	}
	l.total++
	l.bySource[src]++
	return &limitedConn{Conn: c, l: l, src: src}, true
}

// Open returns the connections held now.
func (l *Limited) Open() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.total
}

type limitedConn struct {
	net.Conn
	l    *Limited
	src  netip.Prefix
	once sync.Once
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() {
		c.l.mu.Lock()
		c.l.total--
		if c.l.bySource[c.src]--; c.l.bySource[c.src] == 0 {
			delete(c.l.bySource, c.src)
		}
		c.l.mu.Unlock()
	})
	return err
}

// CloseWrite half-closes the connection, as *net.TCPConn does: net/http
// does so before it closes a connection whose request it refused (431),
// so that the client reads the answer instead of a reset.
func (c *limitedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}
