package authorized

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
)

// From is a from="..." pattern list: addresses and CIDR prefixes, each
// optionally negated with "!". As in OpenSSH, a negated match refuses,
// whatever else matches; otherwise any positive match allows.
type From struct {
	allow, deny []netip.Prefix
}

// ParseFrom parses a from= list such as "198.51.100.0/24,2001:db8::/32,!198.51.100.7".
// Host names and wildcards are refused: sshdyn matches addresses only.
func ParseFrom(s string) (*From, error) {
	f := &From{}
	for _, item := range strings.Split(s, ",") {
		item = strings.TrimSpace(item)
		neg := strings.HasPrefix(item, "!")
		item = strings.TrimPrefix(item, "!")
		if item == "" {
			return nil, errors.New("empty pattern")
		}
		var p netip.Prefix
		var err error
		if strings.Contains(item, "/") {
			p, err = netip.ParsePrefix(item)
			if err == nil && p != p.Masked() {
				err = fmt.Errorf("host bits set (did you mean %s?)", p.Masked())
			}
			if err == nil && p.Addr().Is4In6() {
				// Addresses are matched un-mapped: a 4-in-6 prefix is
				// the IPv4 prefix it covers.
				if p.Bits() < 96 {
					err = errors.New("a ::ffff: prefix shorter than /96 covers more than IPv4 addresses")
				} else {
					p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
				}
			}
		} else {
			var a netip.Addr
			a, err = netip.ParseAddr(item)
			if err == nil {
				a = a.Unmap()
				p = netip.PrefixFrom(a, a.BitLen())
			}
		}
		if err != nil {
			return nil, fmt.Errorf("%q: want an address or CIDR (host names and wildcards are not supported): %v", item, err)
		}
		if neg {
			f.deny = append(f.deny, p)
		} else {
			f.allow = append(f.allow, p)
		}
	}
	if len(f.allow) == 0 {
		return nil, errors.New("only negated patterns: nothing would match")
	}
	return f, nil
}

// Match reports whether addr may connect.
func (f *From) Match(addr netip.Addr) bool {
	addr = addr.Unmap().WithZone("")
	for _, p := range f.deny {
		if p.Contains(addr) {
			return false
		}
	}
	for _, p := range f.allow {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}
