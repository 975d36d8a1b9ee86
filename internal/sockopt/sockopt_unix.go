//go:build unix && !linux

package sockopt

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// The BSDs and macOS have IPV6_V6ONLY; they have no IP_BIND_ADDRESS_NO_PORT
// and no TCP_QUICKACK (the same numbers mean other options there).

func v6Only(c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 1)
	})
	if err != nil {
		return err
	}
	return serr
}

func bindAddressNoPort(syscall.RawConn) error { return nil }

func quickAck(syscall.RawConn) error { return nil }

const reusePortSpreads = false

func reusePort(syscall.RawConn) error { return nil }
