//go:build integration

package main

import (
	"net"
	"strconv"
	"testing"
)

// TestListenBothFamiliesOnOnePort: "0.0.0.0:P" and "[::]:P" side by side,
// as examples/sshdyn.toml lists them.
func TestListenBothFamiliesOnOnePort(t *testing.T) {
	l4, err := listen(t.Context(), "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l4.Close()
	port := strconv.Itoa(l4.Addr().(*net.TCPAddr).Port)
	l6, err := listen(t.Context(), "[::]:"+port)
	if err != nil {
		t.Fatalf("[::]:%s next to 0.0.0.0:%s: %v", port, port, err)
	}
	defer l6.Close()
	// An IPv4 client reaches the IPv4 listener, an IPv6 client the IPv6 one.
	for _, tc := range []struct {
		dial string
		l    net.Listener
	}{{"127.0.0.1:" + port, l4}, {"[::1]:" + port, l6}} {
		c, err := net.Dial("tcp", tc.dial)
		if err != nil {
			t.Fatal(err)
		}
		s, err := tc.l.Accept()
		if err != nil {
			t.Fatal(err)
		}
		s.Close()
		c.Close()
	}
}
