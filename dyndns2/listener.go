package dyndns2

import (
	"net"
	"net/netip"
	"sync"

	"github.com/sshdyn/sshdyn/publish"
)

// Defaults of the HTTP front's connection caps: the SSH front's caps on
// connections not logged in yet (sshd.DefaultMaxUnauthenticated and
// …PerSource), since an HTTP connection is not logged in between its
// requests.
const (
	DefaultMaxConns          = 4096
	DefaultMaxConnsPerSource = 128
)

// LimitListener caps the connections an HTTP server holds open: at most
// max in all, at most perSource from one source (an IPv4 address, an
// IPv6 /64). A connection over either cap is closed as soon as it is
// accepted, before a byte is read; refused, if set, is called for each.
// Without it, one source could hold as many idle keep-alive connections
// as the system's file descriptors allow (1,500 of 1,500 were held:
// audit finding H1).
func LimitListener(l net.Listener, max, perSource int, refused func(remote net.Addr)) net.Listener {
	return &limitListener{Listener: l, max: max, perSource: perSource, refused: refused, bySource: map[netip.Prefix]int{}}
}

type limitListener struct {
	net.Listener
	max, perSource int
	refused        func(net.Addr)

	mu       sync.Mutex
	total    int
	bySource map[netip.Prefix]int
}

func (l *limitListener) Accept() (net.Conn, error) {
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
func (l *limitListener) admit(c net.Conn) (net.Conn, bool) {
	var src netip.Prefix
	if ap, err := netip.ParseAddrPort(c.RemoteAddr().String()); err == nil {
		src = publish.Source(ap.Addr())
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
func (l *limitListener) Open() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.total
}

type limitedConn struct {
	net.Conn
	l    *limitListener
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
