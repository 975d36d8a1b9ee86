// Package dnsname holds sshdyn's rules for DNS names: their canonical
// form, whether a name lies in a zone, which of several zones holds it,
// and what a host name may be.
package dnsname

import (
	"errors"
	"fmt"
	"strings"
)

// Canonical returns name lower case and without a trailing dot: the form
// sshdyn keeps host and zone names in ("home.dyn.example.com").
func Canonical(name string) string {
	return strings.TrimSuffix(strings.ToLower(name), ".")
}

// FQDN returns name lower case and fully qualified: the form of names on
// the wire ("home.dyn.example.com.").
func FQDN(name string) string {
	name = strings.ToLower(name)
	if !strings.HasSuffix(name, ".") {
		name += "."
	}
	return name
}

// InZone reports whether name is zone or below it. Both must be in the
// same form, Canonical or FQDN.
func InZone(name, zone string) bool {
	return name == zone || strings.HasSuffix(name, "."+zone) || zone == "." && strings.HasSuffix(name, ".")
}

// Longest returns the zone of zones that holds name, the longest if more
// than one does (a delegated child zone wins over its parent), and
// whether there is one. zoneName gives a zone's name; names must all be
// in the same form as name.
func Longest[Z any](name string, zones []Z, zoneName func(Z) string) (Z, bool) {
	best, bestLen := -1, -1
	for i, z := range zones {
		if n := zoneName(z); len(n) > bestLen && InZone(name, n) {
			best, bestLen = i, len(n)
		}
	}
	if best < 0 {
		var none Z
		return none, false
	}
	return zones[best], true
}

// CheckHost reports why canonical name h is not a host name sshdyn may
// publish (RFC 1123: letters, digits and inner hyphens; labels of 1 to 63
// characters; 253 in all), or nil if it is one.
func CheckHost(h string) error {
	if h == "" {
		return errors.New("empty name")
	}
	if len(h) > 253 {
		return errors.New("name longer than 253 characters")
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" {
			return errors.New("empty label")
		}
		if len(label) > 63 {
			return errors.New("label longer than 63 characters")
		}
		if label[0] == '-' || label[len(label)-1] == '-' {
			return errors.New("label starts or ends with a hyphen")
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
				return fmt.Errorf("character %q not allowed in a host name", c)
			}
		}
	}
	return nil
}
