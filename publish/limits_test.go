package publish

import (
	"net/netip"
	"testing"
	"time"
)

func TestWriteLimiterWindow(t *testing.T) {
	l := windowLimiter{max: 2, window: time.Minute, what: "changes"}
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

// TestPublicUnicastRegistries: the IANA special-purpose registries'
// blocks that are not globally reachable are refused, their global
// exceptions accepted, and an IPv4 address carried in NAT64 or 6to4 is
// judged as itself (audit finding L1).
func TestPublicUnicastRegistries(t *testing.T) {
	for s, want := range map[string]bool{
		"8.8.8.8": true, "2a00:1450::1": true, "::ffff:8.8.8.8": true,
		"192.0.0.9": true, "192.0.0.10": true, "2001:1::1": true, "2001:3::1": true, "2001:4:112::1": true,
		"2001:20::1": true, "2001:30::1": true, "2620:4f:8000::1": true,
		"64:ff9b::808:808": true, "2002:808:808::1": true,
		"64:ff9b::a00:1": false, "64:ff9b::7f00:1": false, "64:ff9b::c0a8:101": false,
		"2002:a00:1::1": false, "2002:c0a8:101::1": false, "2002:7f00:1::1": false,
		"2001::1": false, "2001:0:4136:e378::1": false, "2001:2::1": false, "2001:10::1": false, "2001:1::4": false,
		"fec0::1": false, "::1.2.3.4": false, "::ffff:0:808:808": false, "100:0:0:1::1": false, "100::1": false,
		"64:ff9b:1::1": false, "3fff::1": false, "5f00::1": false, "4000::1": false, "8000::1": false,
		"192.88.99.1": false, "240.0.0.1": false, "255.255.255.255": false, "192.0.0.8": false,
		"198.18.0.1": false, "203.0.113.9": false, "192.0.2.1": false,
		"fe80::1%eth0": false,
	} {
		if got := PublicUnicast(netip.MustParseAddr(s)); got != want {
			t.Errorf("PublicUnicast(%s) = %v, want %v", s, got, want)
		}
	}
}

// TestSourceGroupsIPv6By64: the per-source limits count an IPv6 /64 as
// one source, an IPv4 address alone (audit finding M2).
func TestSourceGroupsIPv6By64(t *testing.T) {
	if Source(netip.MustParseAddr("2001:db8:1:2::1")) != Source(netip.MustParseAddr("2001:db8:1:2:ffff::9")) {
		t.Error("two addresses of one /64 are two sources")
	}
	if Source(netip.MustParseAddr("2001:db8:1:2::1")) == Source(netip.MustParseAddr("2001:db8:1:3::1")) {
		t.Error("two /64s are one source")
	}
	if Source(netip.MustParseAddr("198.51.100.1")) == Source(netip.MustParseAddr("198.51.100.2")) {
		t.Error("two IPv4 addresses are one source")
	}
	if Source(netip.MustParseAddr("::ffff:198.51.100.1")) != Source(netip.MustParseAddr("198.51.100.1")) {
		t.Error("a 4-in-6 address is another source than its IPv4 address")
	}
}
