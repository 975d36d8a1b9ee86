// Package update keeps a host's address record right on a DNS primary:
// it writes only when the record differs, checking first unless it can
// guard the write on what it last saw there. The RFC 2136 client (Client)
// is one Backend; others can sit behind the same interface.
package update

import (
	"context"
	"net/netip"

	"github.com/miekg/dns"

	"github.com/sshdyn/sshdyn/dnsname"
)

// Record is one host's address: an A record for IPv4, AAAA for IPv6.
type Record struct {
	Name string     // host name, with or without the trailing dot
	Addr netip.Addr // IPv4 (A) or IPv6 (AAAA); never a 4-in-6 mapped address
	TTL  uint32     // ignored by Check: TTLs are not compared
}

// Type returns the record's RR type, dns.TypeA or dns.TypeAAAA.
func (r Record) Type() uint16 { return TypeFor(r.Addr) }

// TypeFor returns dns.TypeA for an IPv4 address and dns.TypeAAAA otherwise.
func TypeFor(a netip.Addr) uint16 {
	if a.Unmap().Is4() {
		return dns.TypeA
	}
	return dns.TypeAAAA
}

// Backend stores address records for one zone.
//
// Check reports whether the RRset of r's name and type is exactly {r.Addr}
// (RFC 2136 2.4.2, "RRset exists, value dependent"); it must not write.
// Replace atomically swaps that RRset for {r.Addr} with r.TTL. Lookup
// returns the A and AAAA records served for name now.
type Backend interface {
	Check(ctx context.Context, r Record) (bool, error)
	Replace(ctx context.Context, r Record) error
	Lookup(ctx context.Context, name string) ([]Record, error)
}

// TypeLookuper is a Backend that can read one record type alone. SetIf
// uses it to read the addresses it replaces with one query, not two.
type TypeLookuper interface {
	LookupType(ctx context.Context, name string, t uint16) ([]Record, error)
}

// Swapper is a Backend that can replace an RRset only while it still
// holds what the backend last saw there: a compare-and-set, which tells
// exactly what it replaced without reading the RRset first.
//
// LastSaw returns the one address the backend last saw r's RRset hold, if
// it remembers one. Swap replaces the RRset with r if it is still exactly
// that address and that address is not r.Addr; otherwise it writes
// nothing and reports swapped false: when the backend has seen nothing
// for the RRset, when it last saw r.Addr there, or when the RRset has
// changed since.
type Swapper interface {
	LastSaw(r Record) (netip.Addr, bool)
	Swap(ctx context.Context, r Record) (old []netip.Addr, swapped bool, err error)
}

// Result says what Set did.
type Result int

const (
	NoChange Result = iota // the record was already right; nothing was written
	Changed                // the RRset was replaced
)

func (r Result) String() string {
	if r == Changed {
		return "good"
	}
	return "nochg"
}

// Set makes r's RRset exactly {r.Addr}, and writes nothing when it
// already is. When it changes something, old holds the addresses served
// before: exact when a Swapper swapped them, otherwise read just before
// the replace (best effort: nil if they could not be read).
//
// Usually Set checks first (Backend.Check) and replaces only when the
// check says the RRset differs. When b is a Swapper that last saw the
// RRset hold another address, the check and the replace are one guarded
// message instead: it writes only if the RRset is still exactly that
// other address, so it writes nothing when the RRset is already right,
// and only if that guard fails does Set go on to check.
func Set(ctx context.Context, b Backend, r Record) (res Result, old []netip.Addr, err error) {
	return SetIf(ctx, b, r, nil)
}

// SetIf is Set with a permission: before anything is written, allow is
// called (at most once), and an error from it stops SetIf with nothing
// written, unless a check then finds the RRset already right. A nil allow
// allows everything.
func SetIf(ctx context.Context, b Backend, r Record, allow func() error) (res Result, old []netip.Addr, err error) {
	var asked bool
	var denied error
	permit := func() error {
		if allow != nil && !asked {
			asked, denied = true, allow()
		}
		return denied
	}
	if sw, ok := b.(Swapper); ok {
		if seen, ok := sw.LastSaw(r); ok && seen != r.Addr.Unmap() && permit() == nil {
			old, swapped, err := sw.Swap(ctx, r)
			if err != nil {
				return NoChange, nil, err
			}
			if swapped {
				return Changed, old, nil
			}
		}
	}
	ok, err := b.Check(ctx, r)
	if err != nil {
		return NoChange, nil, err
	}
	if ok {
		return NoChange, nil, nil
	}
	if err := permit(); err != nil {
		return NoChange, nil, err
	}
	// No compare-and-set here: one was tried above if the backend had
	// seen another address, and a failed one forgets what it saw.
	var prev []Record
	if tl, ok := b.(TypeLookuper); ok {
		prev, err = tl.LookupType(ctx, r.Name, r.Type())
	} else {
		prev, err = b.Lookup(ctx, r.Name)
	}
	if err == nil {
		for _, p := range prev {
			if p.Type() == r.Type() {
				old = append(old, p.Addr)
			}
		}
	}
	if err := b.Replace(ctx, r); err != nil {
		return NoChange, nil, err
	}
	return Changed, old, nil
}

// Zone is one zone sshdyn updates, with the backend that writes it.
type Zone struct {
	Name    string // canonical, lower case, no trailing dot
	TTL     uint32 // default TTL for records that do not set one
	Backend Backend
}

// Zones finds the zone a host name belongs to.
type Zones struct {
	list []Zone
}

// NewZones returns a Zones over zs. Names are compared case-insensitively;
// the longest matching zone wins.
func NewZones(zs ...Zone) *Zones {
	z := &Zones{}
	for _, zone := range zs {
		zone.Name = dnsname.Canonical(zone.Name)
		z.list = append(z.list, zone)
	}
	return z
}

// Find returns the zone that contains host (the apex counts).
func (z *Zones) Find(host string) (Zone, bool) {
	host = dnsname.Canonical(host)
	best := -1
	for i, zone := range z.list {
		if dnsname.InZone(host, zone.Name) && (best < 0 || len(zone.Name) > len(z.list[best].Name)) {
			best = i
		}
	}
	if best < 0 {
		return Zone{}, false
	}
	return z.list[best], true
}

// All returns every zone, in configuration order.
func (z *Zones) All() []Zone { return append([]Zone(nil), z.list...) }

// Set is SetIf on c.
func (c *Client) Set(ctx context.Context, r Record, allow func() error) (Result, []netip.Addr, error) {
	return SetIf(ctx, c, r, allow)
}
