// Package sockopt holds socket options sshdyn's listeners share.
package sockopt

import (
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
	var serr error
	err := c.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_IPV6, syscall.IPV6_V6ONLY, 1)
	})
	if err != nil {
		return err
	}
	return serr
}
