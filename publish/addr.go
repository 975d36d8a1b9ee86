package publish

import "net/netip"

// The IANA special-purpose address registries (IPv4 and IPv6, as of
// 2026), the blocks that are not globally reachable ("Globally
// Reachable: False" or N/A), with the registries' global exceptions
// inside them; and the blocks outside them that sshdyn must not publish
// either (multicast, IPv4's class E, IPv6 outside 2000::/3).
//
// Read-only after init.
var (
	notGlobal = []netip.Prefix{
		// IPv4 (iana-ipv4-special-registry)
		netip.MustParsePrefix("0.0.0.0/8"),       // "this network"
		netip.MustParsePrefix("10.0.0.0/8"),      // private
		netip.MustParsePrefix("100.64.0.0/10"),   // shared (carrier-grade NAT)
		netip.MustParsePrefix("127.0.0.0/8"),     // loopback
		netip.MustParsePrefix("169.254.0.0/16"),  // link-local
		netip.MustParsePrefix("172.16.0.0/12"),   // private
		netip.MustParsePrefix("192.0.0.0/24"),    // IETF protocol assignments
		netip.MustParsePrefix("192.0.2.0/24"),    // documentation (TEST-NET-1)
		netip.MustParsePrefix("192.88.99.0/24"),  // 6to4 relay anycast (deprecated)
		netip.MustParsePrefix("192.168.0.0/16"),  // private
		netip.MustParsePrefix("198.18.0.0/15"),   // benchmarking
		netip.MustParsePrefix("198.51.100.0/24"), // documentation (TEST-NET-2)
		netip.MustParsePrefix("203.0.113.0/24"),  // documentation (TEST-NET-3)
		netip.MustParsePrefix("224.0.0.0/4"),     // multicast
		netip.MustParsePrefix("240.0.0.0/4"),     // reserved, and the limited broadcast
		// IPv6 (iana-ipv6-special-registry)
		netip.MustParsePrefix("::/96"),           // unspecified, loopback, IPv4-compatible (deprecated)
		netip.MustParsePrefix("::ffff:0:0:0/96"), // IPv4-translated
		netip.MustParsePrefix("64:ff9b:1::/48"),  // local-use IPv4/IPv6 translation
		netip.MustParsePrefix("100::/64"),        // discard-only
		netip.MustParsePrefix("100:0:0:1::/64"),  // dummy prefix
		netip.MustParsePrefix("2001::/23"),       // IETF protocol assignments (Teredo 2001::/32 within)
		netip.MustParsePrefix("2001:db8::/32"),   // documentation
		netip.MustParsePrefix("2002::/16"),       // 6to4 (its IPv4 address is checked below)
		netip.MustParsePrefix("3fff::/20"),       // documentation
		netip.MustParsePrefix("5f00::/16"),       // segment routing (SRv6) SIDs
		netip.MustParsePrefix("fc00::/7"),        // unique local
		netip.MustParsePrefix("fe80::/10"),       // link-local
		netip.MustParsePrefix("fec0::/10"),       // site-local (deprecated)
		netip.MustParsePrefix("ff00::/8"),        // multicast
	}
	globalInside = []netip.Prefix{
		netip.MustParsePrefix("192.0.0.9/32"),    // port control protocol anycast
		netip.MustParsePrefix("192.0.0.10/32"),   // traversal using relays around NAT anycast
		netip.MustParsePrefix("2001:1::1/128"),   // port control protocol anycast
		netip.MustParsePrefix("2001:1::2/128"),   // TURN anycast
		netip.MustParsePrefix("2001:1::3/128"),   // DNS-SD service registration protocol anycast
		netip.MustParsePrefix("2001:3::/32"),     // AMT
		netip.MustParsePrefix("2001:4:112::/48"), // AS112-v6
		netip.MustParsePrefix("2001:20::/28"),    // ORCHIDv2
		netip.MustParsePrefix("2001:30::/28"),    // drone remote ID
	}
	nat64     = netip.MustParsePrefix("64:ff9b::/96") // well-known NAT64 prefix: an IPv4 address inside
	sixToFour = netip.MustParsePrefix("2002::/16")    // 6to4: an IPv4 address inside
	global6   = netip.MustParsePrefix("2000::/3")     // global unicast
)

// PublicUnicast reports whether a is a globally reachable unicast
// address, one sshdyn may publish without allow_private: none of the
// IANA special-purpose blocks that are not globally reachable, no
// multicast, IPv4's class E or IPv6 outside 2000::/3. An address that
// carries an IPv4 address (4-in-6 mapped, NAT64 64:ff9b::/96) is public
// only if that IPv4 address is; so is a 6to4 address (2002::/16), whose
// registry entry gives no answer.
func PublicUnicast(a netip.Addr) bool {
	a = a.Unmap()
	if !a.IsValid() || a.Zone() != "" {
		return false
	}
	if a.Is6() {
		b := a.As16()
		switch {
		case nat64.Contains(a):
			return PublicUnicast(netip.AddrFrom4([4]byte(b[12:16])))
		case sixToFour.Contains(a):
			return PublicUnicast(netip.AddrFrom4([4]byte(b[2:6])))
		case !global6.Contains(a):
			return false
		}
	}
	for _, p := range globalInside {
		if p.Contains(a) {
			return true
		}
	}
	for _, p := range notGlobal {
		if p.Contains(a) {
			return false
		}
	}
	return true
}
