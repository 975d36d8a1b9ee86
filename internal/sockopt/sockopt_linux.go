package sockopt

import (
	"syscall"

	"golang.org/x/sys/unix"
)

func v6Only(c syscall.RawConn) error { return setInt(c, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY) }

func bindAddressNoPort(c syscall.RawConn) error {
	return setInt(c, unix.IPPROTO_IP, unix.IP_BIND_ADDRESS_NO_PORT)
}

func quickAck(c syscall.RawConn) error { return setInt(c, unix.IPPROTO_TCP, unix.TCP_QUICKACK) }

// setInt sets an integer socket option to 1.
func setInt(c syscall.RawConn, level, opt int) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), level, opt, 1)
	})
	if err != nil {
		return err
	}
	return serr
}

const reusePortSpreads = true

func reusePort(c syscall.RawConn) error { return setInt(c, unix.SOL_SOCKET, unix.SO_REUSEPORT) }
