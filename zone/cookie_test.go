package zone

import (
	"bytes"
	"net/netip"
	"testing"
	"time"
)

// TestSipHash24: the reference vectors of the SipHash paper (key
// 00..0f, messages 00, 00 01, …).
func TestSipHash24(t *testing.T) {
	var key [16]byte
	for i := range key {
		key[i] = byte(i)
	}
	msg := make([]byte, 64)
	for i := range msg {
		msg[i] = byte(i)
	}
	for _, tc := range []struct {
		n    int
		want uint64
	}{
		{0, 0x726fdb47dd0e0e31},
		{1, 0x74f839c593dc67fd},
		{7, 0xab0200f58b01d137},
		{8, 0x93f5f5799a932462},
		{15, 0xa129ca6149be45e5},
		{63, 0x958a324ceb064572},
	} {
		if got := siphash24(key, msg[:tc.n]); got != tc.want {
			t.Errorf("siphash24(%d bytes) = %#x, want %#x", tc.n, got, tc.want)
		}
	}
}

// TestCookies: a client cookie alone gets a server cookie, which is then
// valid from that address only, for an hour; a malformed option is
// malformed; a secret rotated away still validates once.
func TestCookies(t *testing.T) {
	c, err := newCookieSecrets("e5e973e5a6b2a43f48e7dc849e37bfcf")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1559731985, 0)
	client := []byte{0x24, 0x64, 0xc4, 0xab, 0xcf, 0x10, 0xc9, 0x57}
	addr := netip.MustParseAddr("198.51.100.100")
	v, answer := c.check(client, addr, now)
	if v != cookieClient || len(answer) != 24 || !bytes.Equal(answer[:8], client) || answer[8] != 1 {
		t.Fatalf("client cookie alone: %v %x", v, answer)
	}
	if v, again := c.check(answer, addr, now.Add(10*time.Minute)); v != cookieValid || !bytes.Equal(again, answer) {
		t.Errorf("its server cookie 10 minutes later: %v %x, want valid and the same", v, again)
	}
	if v, again := c.check(answer, addr, now.Add(40*time.Minute)); v != cookieValid || bytes.Equal(again, answer) {
		t.Errorf("40 minutes later: %v, want valid and a fresh cookie", v)
	}
	if v, _ := c.check(answer, addr, now.Add(2*time.Hour)); v != cookieClient {
		t.Errorf("2 hours later: %v, want expired", v)
	}
	if v, _ := c.check(answer, netip.MustParseAddr("198.51.100.101"), now); v != cookieClient {
		t.Errorf("from another address: %v, want not valid", v)
	}
	for _, n := range []int{0, 7, 9, 15, 41} {
		if v, _ := c.check(make([]byte, n), addr, now); v != cookieMalformed {
			t.Errorf("%d bytes: %v, want malformed", n, v)
		}
	}
	if _, err := newCookieSecrets("short"); err == nil {
		t.Error("a short secret was accepted")
	}
	r, _ := newCookieSecrets("")
	start := time.Now()
	r.rotated = start.Add(-cookieRotation + time.Minute) // due in a minute
	_, cookie := r.check(client, addr, start)
	if v, _ := r.check(cookie, addr, start.Add(2*time.Minute)); v != cookieValid || !r.hasOld {
		t.Errorf("after a rotation: %v, want the previous secret's cookie valid", v)
	}
}
