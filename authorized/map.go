package authorized

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"

	"golang.org/x/crypto/ssh"

	"github.com/sshdyn/sshdyn/dnsname"
)

// Map is a parsed authorized file. It is never modified after Parse.
type Map struct {
	byKey    map[string]*Entry // by the key's wire encoding
	byCA     map[string]*Entry // cert-authority lines, by the CA key's wire encoding
	byUser   map[string]*Entry // by http-user
	owners   map[string]*Entry // by host and LAN host
	names    map[string]nameUse
	reserved map[string]string
	n        int
}

// nameUse is where a host name is on the file: the line, and whether as
// a LAN host.
type nameUse struct {
	line   int
	lan    bool
	shared bool
}

// Lookup returns the entry for key, in O(1). For a certificate it is an
// entry made from its CA's line with the certificate's usable principals
// as hosts (see Certificate); false if the CA is not trusted or no
// principal is usable. Lookup does not check the certificate's
// signature, validity or options: the SSH front does, before it asks.
func (m *Map) Lookup(key ssh.PublicKey) (*Entry, bool) {
	if m == nil || key == nil {
		return nil, false
	}
	if c, ok := key.(*ssh.Certificate); ok {
		e, _, err := m.Certificate(c)
		return e, err == nil
	}
	e, ok := m.byKey[string(key.Marshal())]
	return e, ok
}

// Authority reports whether key is a CA a cert-authority line trusts.
func (m *Map) Authority(key ssh.PublicKey) bool {
	if m == nil || key == nil {
		return false
	}
	_, ok := m.byCA[string(key.Marshal())]
	return ok
}

// Certificate returns the entry for certificate c: its CA's line, with
// the principals that the line's host= values allow, that are valid host
// names inside a configured zone, not reserved, and not another line's
// host (unless both lines have shared-hosts). ignored lists the other
// principals, with why. err says why c gets no entry at all.
func (m *Map) Certificate(c *ssh.Certificate) (e *Entry, ignored []string, err error) {
	ca, ok := m.byCA[string(c.SignatureKey.Marshal())]
	if !ok {
		return nil, nil, errors.New("certificate signed by a CA no cert-authority line trusts")
	}
	var hosts []string
	for _, p := range c.ValidPrincipals {
		if why := m.principal(ca, p); why != "" {
			ignored = append(ignored, fmt.Sprintf("%q (%s)", p, why))
		} else if !slices.Contains(hosts, dnsname.Canonical(p)) {
			hosts = append(hosts, dnsname.Canonical(p))
		}
	}
	if len(hosts) == 0 {
		return nil, ignored, fmt.Errorf("certificate has no principal that line %d allows", ca.Line)
	}
	d := *ca
	d.Key, d.Cert, d.CA, d.Below, d.Hosts = c, c, false, nil, hosts
	return &d, ignored, nil
}

// principal says why p may not be a host of a certificate of ca, or "".
func (m *Map) principal(ca *Entry, p string) string {
	h := dnsname.Canonical(p)
	if err := dnsname.CheckHost(h); err != nil {
		return err.Error()
	}
	allowed := slices.Contains(ca.Hosts, h)
	for _, suffix := range ca.Below {
		allowed = allowed || strings.HasSuffix(h, "."+suffix)
	}
	if !allowed {
		return fmt.Sprintf("not allowed by line %d", ca.Line)
	}
	if why, ok := m.reserved[h]; ok {
		return why
	}
	if u, ok := m.names[h]; ok && u.line != ca.Line && !(u.shared && ca.SharedHosts) {
		return fmt.Sprintf("a host of line %d", u.line)
	}
	return ""
}

// LookupUser returns the entry whose http-user is name, in O(1).
func (m *Map) LookupUser(name string) (*Entry, bool) {
	if m == nil {
		return nil, false
	}
	e, ok := m.byUser[name]
	return e, ok
}

// Passwords returns the number of lines with an http-password hash.
func (m *Map) Passwords() int {
	if m == nil {
		return 0
	}
	return len(m.byUser)
}

// Counts returns the lines by kind: with a key, certificate authorities,
// and routers' lines (an http-user and no key).
func (m *Map) Counts() (keys, authorities, routers int) {
	if m == nil {
		return 0, 0, 0
	}
	routers = m.n - len(m.byKey) - len(m.byCA)
	return len(m.byKey), len(m.byCA), routers
}

// Entries returns the lines with a key and the routers' lines (not the
// entries certificates make).
func (m *Map) Entries() []*Entry {
	if m == nil {
		return nil
	}
	seen := map[*Entry]bool{}
	var out []*Entry
	for _, set := range []map[string]*Entry{m.byKey, m.byCA, m.byUser} {
		for _, e := range set {
			if !seen[e] {
				seen[e] = true
				out = append(out, e)
			}
		}
	}
	return out
}

// Owner returns the line that has host (a host or a LAN host; any case,
// trailing dot or not), if one does.
func (m *Map) Owner(host string) (*Entry, bool) {
	if m == nil {
		return nil, false
	}
	e, ok := m.owners[dnsname.Canonical(host)]
	return e, ok
}

// Len returns the number of entries (lines).
func (m *Map) Len() int { return m.n }

// carryOver puts into m, for each bad line whose key or http-user old had
// and m has not, old's entry for it: an edit that breaks a line keeps
// that line's previous options until it is fixed. It returns how many it
// carried over. Keys on no line at all are not carried over: removing a
// line revokes it, whatever else is broken.
func (m *Map) carryOver(old *Map, bad []badLine) int {
	n := 0
	for _, b := range bad {
		var e *Entry
		switch {
		case b.key != "":
			_, dup := m.byKey[b.key]
			_, dupCA := m.byCA[b.key]
			if !dup && !dupCA {
				e = cmp.Or(old.byKey[b.key], old.byCA[b.key])
			}
		case b.user != "":
			if _, dup := m.byUser[b.user]; !dup {
				e = old.byUser[b.user]
			}
		}
		if e == nil {
			continue
		}
		c := *e
		c.Line = b.line
		if m.add(&c) == nil {
			n++
		}
	}
	return n
}

// removed counts old's entries that m does not have.
func (m *Map) removed(old *Map) int {
	n := 0
	for k := range old.byKey {
		if _, ok := m.byKey[k]; !ok {
			n++
		}
	}
	for k := range old.byCA {
		if _, ok := m.byCA[k]; !ok {
			n++
		}
	}
	for u, e := range old.byUser {
		if _, ok := m.byUser[u]; !ok && e.Key == nil {
			n++
		}
	}
	return n
}

// add puts e in the map, unless its key, http-user or one of its hosts is
// on another line (hosts may be, on lines that all have shared-hosts).
func (m *Map) add(e *Entry) error {
	var k string
	if e.Key != nil {
		k = string(e.Key.Marshal())
		if prev, dup := m.byKey[k]; dup {
			return fmt.Errorf("key already listed on line %d", prev.Line)
		}
		if prev, dup := m.byCA[k]; dup {
			return fmt.Errorf("key already listed on line %d", prev.Line)
		}
	}
	if prev, dup := m.byUser[e.HTTPUser]; e.HTTPUser != "" && dup {
		return fmt.Errorf("http-user %q already on line %d", e.HTTPUser, prev.Line)
	}
	// A LAN host has one owner: no other line may list it, as a host or
	// a LAN host. (Hosts may be on several lines.)
	for _, l := range e.LANHosts {
		if u, ok := m.names[l.Name]; ok {
			return fmt.Errorf("lan-host %q is also on line %d", l.Name, u.line)
		}
	}
	for _, h := range e.Hosts {
		u, ok := m.names[h]
		switch {
		case ok && u.lan:
			return fmt.Errorf("host %q is a lan-host on line %d", h, u.line)
		case ok && !(u.shared && e.SharedHosts):
			return fmt.Errorf("host %q is also on line %d: either line could overwrite the other's address; list it on one line, or add shared-hosts to both", h, u.line)
		}
	}
	for _, h := range e.Hosts {
		if _, ok := m.names[h]; !ok {
			m.names[h] = nameUse{line: e.Line, shared: e.SharedHosts}
		}
	}
	for _, l := range e.LANHosts {
		m.names[l.Name] = nameUse{line: e.Line, lan: true}
		m.owners[l.Name] = e
	}
	for _, h := range e.Hosts {
		if _, ok := m.owners[h]; !ok {
			m.owners[h] = e
		}
	}
	switch {
	case e.CA:
		m.byCA[k] = e
	case e.Key != nil:
		m.byKey[k] = e
	}
	if e.HTTPUser != "" {
		m.byUser[e.HTTPUser] = e
	}
	m.n++
	return nil
}
