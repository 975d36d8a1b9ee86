package dyndns2

import (
	"net"

	"github.com/sshdyn/sshdyn/internal/connlimit"
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

// LimitListener caps the connections the HTTP front holds open, idle
// keep-alive ones included: at most max in all, at most perSource from
// one source (publish.Source: an IPv4 address, an IPv6 /64).
func LimitListener(l net.Listener, max, perSource int, refused func(remote net.Addr)) net.Listener {
	return connlimit.Listener(l, max, perSource, publish.Source, refused)
}
