package sockopt

import "syscall"

// Windows has IPV6_V6ONLY (and sets it by default); it has neither
// IP_BIND_ADDRESS_NO_PORT nor TCP_QUICKACK.

func v6Only(c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(syscall.Handle(fd), syscall.IPPROTO_IPV6, syscall.IPV6_V6ONLY, 1)
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
