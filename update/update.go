// Package update keeps a host's address record right on a DNS primary:
// it writes only when the record differs.
//
// It is layered one way. Client speaks RFC 2136 with TSIG to one zone's
// primary: a prerequisite-only check, an atomic replace (optionally
// guarded by what the RRset must hold), signed queries. Beneath it, as the
// way its messages reach the wire, a Batch coalesces concurrent calls into
// fewer messages, exchangeAll pipelines a message and its confirmation on
// one connection, and a Pool keeps connections open. Above it, Set is the
// check-then-replace algorithm over any Primary, and Remembering decorates
// a Client with what it last saw in each RRset, so that a change can be
// one compare-and-set instead of a check, a read and a replace.
package update

import (
	"context"
	"errors"
	"net/netip"

	"github.com/miekg/dns"
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

// Primary is what Set needs of a zone's primary.
//
// Check reports whether the RRset of r's name and type is exactly {r.Addr}
// (RFC 2136 2.4.2, "RRset exists, value dependent"); it must not write.
// Replace atomically swaps that RRset for {r.Addr} with r.TTL. LookupType
// returns the records of type t (A or AAAA) served for name now.
type Primary interface {
	Check(ctx context.Context, r Record) (bool, error)
	Replace(ctx context.Context, r Record) error
	LookupType(ctx context.Context, name string, t uint16) ([]Record, error)
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

// Set makes r's RRset on p exactly {r.Addr}, and writes nothing when it
// already is: it checks, and only if the check says the RRset differs, it
// calls allow, reads the addresses there (best effort: old is nil if they
// could not be read) and replaces them. An error from allow stops it with
// nothing written. A nil allow allows everything.
func Set(ctx context.Context, p Primary, r Record, allow func() error) (res Result, old []netip.Addr, err error) {
	ok, err := p.Check(ctx, r)
	if err != nil {
		return NoChange, nil, err
	}
	if ok {
		return NoChange, nil, nil
	}
	if allow != nil {
		if err := allow(); err != nil {
			return NoChange, nil, err
		}
	}
	if prev, err := p.LookupType(ctx, r.Name, r.Type()); err == nil {
		for _, rec := range prev {
			old = append(old, rec.Addr)
		}
	}
	err = p.Replace(ctx, r)
	if ignored(err) {
		if _, ok := superseded(err, old, r.Addr); !ok {
			// The RRset is as before: a policy that skips ours
			// (PowerDNS's), or another writer that put the old address
			// back right after ours. A policy skips it again; ask once
			// more.
			err = p.Replace(ctx, r)
		}
	}
	if _, ok := superseded(err, old, r.Addr); ok {
		// Ours applied; another writer's came right after.
		return Changed, old, nil
	}
	if err != nil {
		return NoChange, nil, err
	}
	return Changed, old, nil
}

// ignored reports whether err is a replace the primary answered NOERROR
// to but that is not there afterwards.
func ignored(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Kind == KindIgnored
}

// once returns allow wrapped so that it is called at most once; later
// calls return the first call's answer.
func once(allow func() error) func() error {
	if allow == nil {
		return nil
	}
	var asked bool
	var denied error
	return func() error {
		if !asked {
			asked, denied = true, allow()
		}
		return denied
	}
}

// Together is a primary that can check several RRsets with one message
// and replace them with one, all or nothing: what SetAll needs. Client
// is one.
type Together interface {
	CheckTogether(ctx context.Context, recs []Record) (bool, error)
	ReplaceTogether(ctx context.Context, recs []Record) error
	LookupType(ctx context.Context, name string, t uint16) ([]Record, error)
}

// SetAll makes each RRset of recs (no two of one RRset) exactly its
// record's address, as one change: it checks them all with one message
// and writes nothing when all hold; otherwise it reads each (a signed
// query), calls allow once, and replaces those that differ with one
// UPDATE, which the primary applies all or nothing. res and old are per
// record: Changed with the addresses replaced, or NoChange. On an error
// nothing was written, for any of them.
func SetAll(ctx context.Context, p Together, recs []Record, allow func() error) (res []Result, old [][]netip.Addr, err error) {
	res, old = make([]Result, len(recs)), make([][]netip.Addr, len(recs))
	held, err := p.CheckTogether(ctx, recs)
	if err != nil || held {
		return res, old, err
	}
	var differ []Record
	for i, r := range recs {
		prev, err := p.LookupType(ctx, r.Name, r.Type())
		if err != nil {
			return res, old, err
		}
		if len(prev) == 1 && prev[0].Addr == r.Addr {
			continue
		}
		for _, rec := range prev {
			old[i] = append(old[i], rec.Addr)
		}
		res[i] = Changed
		differ = append(differ, r)
	}
	if len(differ) == 0 { // another writer made them right meanwhile
		return res, old, nil
	}
	if allow != nil {
		if err := allow(); err != nil {
			return make([]Result, len(recs)), make([][]netip.Addr, len(recs)), err
		}
	}
	if err := p.ReplaceTogether(ctx, differ); err != nil {
		return make([]Result, len(recs)), make([][]netip.Addr, len(recs)), err
	}
	return res, old, nil
}

// SetAll is the function SetAll on c.
func (c *Client) SetAll(ctx context.Context, recs []Record, allow func() error) ([]Result, [][]netip.Addr, error) {
	return SetAll(ctx, c, recs, allow)
}
