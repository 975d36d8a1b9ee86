package main

import (
	"context"
	"net"
	"net/netip"

	"github.com/sshdyn/sshdyn/internal/sockopt"
)

// listen opens a TCP listener. An IPv6 literal ("[::]:2222", "[2001:db8::1]:22")
// listens on IPv6 only, so that "0.0.0.0:2222" and "[::]:2222" can both be
// listed; an address without a host (":2222") takes both families.
func listen(ctx context.Context, addr string) (net.Listener, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	ip, err := netip.ParseAddr(host)
	switch {
	case err != nil: // a name, or no host at all
		return (&net.ListenConfig{}).Listen(ctx, "tcp", addr)
	case ip.Is4():
		// "tcp4": with plain "tcp", Go listens on 0.0.0.0 through a
		// dual-stack socket, which takes the IPv6 port as well.
		return (&net.ListenConfig{}).Listen(ctx, "tcp4", addr)
	}
	lc := net.ListenConfig{Control: sockopt.V6Only}
	return lc.Listen(ctx, "tcp6", addr)
}
