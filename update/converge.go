package update

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"

	"github.com/miekg/dns"
)

// Want is one RRset as Converge is to leave it: exactly {Addr}, or, with
// Remove, empty (Addr then only names the type: A for an IPv4 address,
// AAAA for IPv6).
type Want struct {
	Record
	Remove bool
}

// addrs returns the addresses w's RRset is to hold.
func (w Want) addrs() []netip.Addr {
	if w.Remove {
		return nil
	}
	return []netip.Addr{w.Addr.Unmap()}
}

// convergeTries bounds the rounds of read and guarded write when other
// writers keep changing the RRsets in between.
const convergeTries = 3

// Converge makes every RRset of ws (no two of one RRset) what it wants,
// writing nothing for one that already is: the way a change that removes
// RRsets is written (a host going offline). It reads each RRset with a
// signed query, then sends one UPDATE for those that differ, whose
// prerequisites are the RRsets exactly as read (RFC 2136 2.4.2 and
// 2.4.3): the primary applies all of it, or, if another writer came in
// between, none of it, and Converge reads again (three rounds at most).
// Every RRset it changed is then confirmed with a signed query; one that
// is not what was asked (a policy that skips records) gets a KindIgnored
// error. allow is called once before the first write, and not at all
// when nothing differs; its error, like a failed read or a refused
// UPDATE, is every RRset's. old[i] is what ws[i]'s RRset held before a
// change.
func (c *Client) Converge(ctx context.Context, ws []Want, allow func() error) (res []Result, old [][]netip.Addr, errs []error) {
	n := len(ws)
	res, old, errs = make([]Result, n), make([][]netip.Addr, n), make([]error, n)
	all := func(err error) ([]Result, [][]netip.Addr, []error) {
		for i := range errs {
			res[i], old[i], errs[i] = NoChange, nil, err
		}
		return res, old, errs
	}
	allow = once(allow)
	for try := 1; ; try++ {
		cur := make([][]netip.Addr, n)
		var differ []int
		for i, w := range ws {
			recs, err := c.lookupType(ctx, OpLookup, w.Name, w.Type())
			if err != nil {
				return all(err)
			}
			for _, r := range recs {
				cur[i] = append(cur[i], r.Addr)
			}
			if !sameAddrs(cur[i], w.addrs()) {
				differ = append(differ, i)
			}
		}
		if len(differ) == 0 {
			return res, old, errs
		}
		if allow != nil {
			if err := allow(); err != nil {
				return all(err)
			}
		}
		m := c.newUpdate()
		for _, i := range differ {
			w := ws[i]
			name := dns.Fqdn(w.Name)
			if len(cur[i]) == 0 {
				m.RRsetNotUsed([]dns.RR{&dns.ANY{Hdr: dns.RR_Header{Name: name, Rrtype: w.Type()}}})
			} else {
				for _, a := range cur[i] {
					m.Used([]dns.RR{newRR(w.Name, a, 0)})
				}
			}
			m.RemoveRRset([]dns.RR{&dns.ANY{Hdr: dns.RR_Header{Name: name, Rrtype: w.Type()}}})
			if !w.Remove {
				m.Insert([]dns.RR{newRR(w.Name, w.Addr, w.TTL)})
			}
		}
		resp, err := c.exchange(ctx, OpReplace, m)
		switch {
		case err != nil:
			return all(err)
		case (resp.Rcode == dns.RcodeNXRrset || resp.Rcode == dns.RcodeYXRrset) && try < convergeTries:
			continue // another writer came in between: read again
		case resp.Rcode != dns.RcodeSuccess:
			return all(c.rcodeError(OpReplace, resp))
		}
		for _, i := range differ {
			old[i] = cur[i]
			errs[i] = c.confirmWant(ctx, ws[i])
			if errs[i] == nil {
				res[i] = Changed
			}
		}
		return res, old, errs
	}
}

// confirmWant checks, with a signed query, that w's RRset is what it
// wants after an UPDATE the primary answered NOERROR.
func (c *Client) confirmWant(ctx context.Context, w Want) error {
	if !w.Remove {
		return c.confirm(ctx, w.Record)
	}
	recs, err := c.lookupType(ctx, OpConfirm, w.Name, w.Type())
	if err != nil {
		return err
	}
	if len(recs) > 0 {
		var seen []netip.Addr
		for _, r := range recs {
			seen = append(seen, r.Addr)
		}
		return &Error{Op: OpRemove, Server: c.Server, Zone: c.Zone, Kind: KindIgnored, Rcode: dns.RcodeSuccess, Seen: seen,
			Err: fmt.Errorf("NOERROR, but %s %s is %v afterwards, not empty", w.Name, dns.TypeToString[w.Type()], seen)}
	}
	return nil
}

// sameAddrs reports whether a and b hold the same addresses, in any
// order.
func sameAddrs(a, b []netip.Addr) bool {
	if len(a) != len(b) {
		return false
	}
	a, b = slices.Clone(a), slices.Clone(b)
	slices.SortFunc(a, netip.Addr.Compare)
	slices.SortFunc(b, netip.Addr.Compare)
	return slices.Equal(a, b)
}

// Converger is a primary that can Converge: Client is one.
type Converger interface {
	Converge(ctx context.Context, ws []Want, allow func() error) ([]Result, [][]netip.Addr, []error)
}

var _ Converger = (*Client)(nil)

// Converge is the primary's Converge, in turn with other replaces of the
// same RRsets, remembering what it learns: the address of each RRset set,
// and nothing of one removed or failed.
func (m *Remembering) Converge(ctx context.Context, ws []Want, allow func() error) ([]Result, [][]netip.Addr, []error) {
	cv, ok := m.Primary.(Converger)
	if !ok {
		err := errors.New("this primary cannot remove records")
		errs := make([]error, len(ws))
		for i := range errs {
			errs[i] = err
		}
		return make([]Result, len(ws)), make([][]netip.Addr, len(ws)), errs
	}
	keys := make([]rrsetKey, len(ws))
	for i, w := range ws {
		keys[i] = keyOf(w.Record)
	}
	sorted := slices.Clone(keys)
	slices.SortFunc(sorted, func(a, b rrsetKey) int { return cmp.Or(cmp.Compare(a.name, b.name), cmp.Compare(a.t, b.t)) })
	for _, k := range slices.Compact(sorted) {
		defer m.locks.lock(k)()
	}
	res, old, errs := cv.Converge(ctx, ws, allow)
	for i, k := range keys {
		if errs[i] == nil && !ws[i].Remove {
			m.Seen.put(k, ws[i].Addr)
		} else {
			m.Seen.forget(k)
		}
	}
	return res, old, errs
}
