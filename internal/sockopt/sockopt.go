// Package sockopt holds the socket options sshdyn's listeners and its
// load generator set, as net.ListenConfig and net.Dialer Control functions.
// Each is set where the system has it (sockopt_linux.go, sockopt_unix.go,
// sockopt_windows.go) and is a no-op elsewhere: none is needed for
// sshdyn to be correct, only for it to be fast or to listen on both
// address families.
package sockopt

import (
	"net"
	"strings"
	"syscall"
)

// V6Only is a net.ListenConfig Control function: an IPv6 socket
// ("tcp6", "udp6") takes IPv6 only, so that "0.0.0.0:P" and "[::]:P" can
// both be listened on. Other networks are left alone.
func V6Only(network, _ string, c syscall.RawConn) error {
	if !strings.HasSuffix(network, "6") {
		return nil
	}
	return v6Only(c)
}

// BindAddressNoPort is a net.Dialer Control function for a dialer with a
// LocalAddr: it sets Linux's IP_BIND_ADDRESS_NO_PORT (since 4.2), so that
// the kernel picks the source port at connect time, per destination.
// Thousands of connections a second from one address would otherwise run
// out of ports that TIME_WAIT still holds. Elsewhere it does nothing.
func BindAddressNoPort(_, _ string, c syscall.RawConn) error {
	return bindAddressNoPort(c)
}

// QuickAck sets Linux's TCP_QUICKACK on a TCP connection: the data that
// arrives next is acknowledged at once, not up to 40 ms later. It matters
// when two replies are awaited at once: the peer's Nagle algorithm holds
// the second until the first is acknowledged. Linux drops the mode again
// by itself, so it is set before each such read. Other connections, and
// other systems, are left alone.
func QuickAck(c net.Conn) error {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return nil
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return err
	}
	return quickAck(raw)
}

// ReusePort is a net.ListenConfig Control function that sets Linux's
// SO_REUSEPORT: several UDP sockets bound to one address and port, the
// kernel spreading the packets of different clients over them, so that
// each core reads its own. Elsewhere it does nothing (the BSDs' option of
// that name does not spread the load), and ReusePortSpreads is false.
func ReusePort(network, _ string, c syscall.RawConn) error {
	if strings.HasSuffix(network, "6") {
		if err := v6Only(c); err != nil {
			return err
		}
	}
	return reusePort(c)
}

// ReusePortSpreads reports whether ReusePort spreads packets over the
// sockets that share a port: on Linux.
const ReusePortSpreads = reusePortSpreads
