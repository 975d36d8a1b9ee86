//go:build !unix && !windows

package sockopt

import "syscall"

func v6Only(syscall.RawConn) error { return nil }

func bindAddressNoPort(syscall.RawConn) error { return nil }

func quickAck(syscall.RawConn) error { return nil }

const reusePortSpreads = false

func reusePort(syscall.RawConn) error { return nil }
