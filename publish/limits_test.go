package publish

import (
	"net/netip"
	"testing"
	"time"
)

func TestWriteLimiterWindow(t *testing.T) {
	l := changeLimiter{max: 2, window: time.Minute}
	t0 := time.Unix(1_000_000, 0)
	for i, tc := range []struct {
		at time.Duration
		ok bool
	}{{0, true}, {10 * time.Second, true}, {20 * time.Second, false}, {61 * time.Second, true}, {65 * time.Second, false}, {71 * time.Second, true}} {
		if err := l.allow("k", t0.Add(tc.at)); (err == nil) != tc.ok {
			t.Errorf("step %d at +%v: err %v, want ok %v", i, tc.at, err, tc.ok)
		}
	}
}

func TestPenaltyDrains(t *testing.T) {
	p := penalties{cost: 5 * time.Second, grace: 10 * time.Second, max: time.Minute}
	t0 := time.Unix(1_000_000, 0)
	a := netip.MustParseAddr("2001:db8::1")
	for i := 0; i < 3; i++ {
		p.fail(a, t0)
	}
	if _, r := p.refused(netip.MustParseAddr("2001:db8::2"), t0); !r {
		t.Error("same /64 not refused after 3 failures (15s > 10s grace)")
	}
	if _, r := p.refused(netip.MustParseAddr("2001:db8:0:1::1"), t0); r {
		t.Error("another /64 refused")
	}
	if _, r := p.refused(a, t0.Add(6*time.Second)); r {
		t.Error("still refused after the penalty drained below the grace")
	}
	for i := 0; i < 100; i++ {
		p.fail(a, t0)
	}
	if left, _ := p.refused(a, t0); left != time.Minute-10*time.Second {
		t.Errorf("penalty not capped: %v left", left)
	}
}

func TestPublicUnicast(t *testing.T) {
	for s, want := range map[string]bool{
		"8.8.8.8": true, "2a00:1450::1": true, "::ffff:8.8.8.8": true,
		"127.0.0.1": false, "10.1.2.3": false, "172.16.0.1": false, "192.168.1.1": false,
		"100.64.0.1": false, "169.254.1.1": false, "224.0.0.1": false, "0.0.0.0": false,
		"::1": false, "fe80::1": false, "fd00::1": false, "ff02::1": false, "::ffff:10.0.0.1": false,
	} {
		if got := PublicUnicast(netip.MustParseAddr(s)); got != want {
			t.Errorf("PublicUnicast(%s) = %v, want %v", s, got, want)
		}
	}
}
