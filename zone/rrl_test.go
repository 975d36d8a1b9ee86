package zone

import (
	"net/netip"
	"testing"
	"time"
)

// TestRRLAccounts: a network gets Rate answers of one kind a second, then
// every Slip-th is truncated and the rest dropped; another network, another
// kind of answer, and an exempt network each have their own budget; a
// flood is remembered for Window after it stops; the budget refills.
func TestRRLAccounts(t *testing.T) {
	l := newLimiter(RRL{Rate: 5, Slip: 2, Window: 3 * time.Second, Exempt: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}})
	now := time.Unix(1_800_000_000, 0)
	a := netip.MustParseAddr("198.51.100.7")
	same := netip.MustParseAddr("198.51.100.200") // the same /24
	count := func(addr netip.Addr, kind int, name string, n int) (sent, slipped, dropped int) {
		for range n {
			switch l.account(addr, kind, name, 1, 5, now) {
			case rrlSend:
				sent++
			case rrlSlip:
				slipped++
			case rrlDrop:
				dropped++
			}
		}
		return
	}
	if s, sl, d := count(a, rrlAnswer, "home.dyn.example.com.", 25); s != 5 || sl != 10 || d != 10 {
		t.Errorf("25 answers at once: sent %d, slipped %d, dropped %d; want 5, 10, 10", s, sl, d)
	}
	if s, _, _ := count(same, rrlAnswer, "HOME.dyn.example.com.", 1); s != 0 {
		t.Error("another address of the same /24, the name in another case: answered")
	}
	if s, _, _ := count(a, rrlAnswer, "other.dyn.example.com.", 5); s != 5 {
		t.Errorf("another name: sent %d of 5", s)
	}
	if s, _, _ := count(a, rrlNXDomain, "dyn.example.com.", 5); s != 5 {
		t.Errorf("NXDOMAIN: sent %d of 5", s)
	}
	if s, _, _ := count(netip.MustParseAddr("198.51.101.7"), rrlAnswer, "home.dyn.example.com.", 5); s != 5 {
		t.Errorf("another /24: sent %d of 5", s)
	}
	if s, _, _ := count(netip.MustParseAddr("192.0.2.9"), rrlAnswer, "home.dyn.example.com.", 50); s != 50 {
		t.Errorf("an exempt network: sent %d of 50", s)
	}
	// The flood's debt (-15, the floor) drains at 5 a second: one second
	// later still nothing, four seconds later answers again.
	now = now.Add(time.Second)
	if s, _, _ := count(a, rrlAnswer, "home.dyn.example.com.", 1); s != 0 {
		t.Error("a second after the flood: answered")
	}
	now = now.Add(4 * time.Second)
	if s, _, _ := count(a, rrlAnswer, "home.dyn.example.com.", 5); s != 5 {
		t.Errorf("after the window: sent %d of 5", s)
	}
	v6 := netip.MustParseAddr("2001:db8:1:2::1")
	count(v6, rrlAnswer, "x.", 5)
	if s, _, _ := count(netip.MustParseAddr("2001:db8:1:ff::1"), rrlAnswer, "x.", 1); s != 0 {
		t.Error("another address of the same IPv6 /56: answered")
	}
	if s, _, _ := count(netip.MustParseAddr("2001:db8:1:100::1"), rrlAnswer, "x.", 1); s != 1 {
		t.Error("another IPv6 /56: not answered")
	}
	if got := l.account(a, rrlAnswer, "y.", 1, 0, now); got != rrlSend {
		t.Error("rate 0 limited")
	}
}
