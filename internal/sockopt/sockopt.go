// Package sockopt holds the socket options sshdyn's listeners and its
// load generator set, as net.ListenConfig and net.Dialer Control functions.
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
	return setInt(c, syscall.IPPROTO_IPV6, syscall.IPV6_V6ONLY)
}

// BindAddressNoPort is a net.Dialer Control function for a dialer with a
// LocalAddr: it sets Linux's IP_BIND_ADDRESS_NO_PORT (since 4.2), so that
// the kernel picks the source port at connect time, per destination.
// Thousands of connections a second from one address would otherwise run
// out of ports that TIME_WAIT still holds.
func BindAddressNoPort(_, _ string, c syscall.RawConn) error {
	return setInt(c, syscall.IPPROTO_IP, ipBindAddressNoPort)
}

const ipBindAddressNoPort = 24 // IP_BIND_ADDRESS_NO_PORT, linux/in.h

// QuickAck sets Linux's TCP_QUICKACK on a TCP connection: the data that
// arrives next is acknowledged at once, not up to 40 ms later. It matters
// when two replies are awaited at once: the peer's Nagle algorithm holds
// the second until the first is acknowledged. Linux drops the mode again
// by itself, so it is set before each such read. Other connections are
// left alone.
func QuickAck(c net.Conn) error {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return nil
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return err
	}
	return setInt(raw, syscall.IPPROTO_TCP, tcpQuickAck)
}

const tcpQuickAck = 12 // TCP_QUICKACK, linux/tcp.h

// setInt sets an integer socket option to 1.
func setInt(c syscall.RawConn, level, opt int) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), level, opt, 1)
	})
	if err != nil {
		return err
	}
	return serr
}
