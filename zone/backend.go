package zone

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"github.com/miekg/dns"

	"github.com/sshdyn/sshdyn/backend"
	"github.com/sshdyn/sshdyn/dnsname"
)

// Backend writes a zone sshdyn serves itself, in process: sshdyn's core
// changes the zone through the same path as an RFC 2136 UPDATE from
// outside (Zone.modify: the zone's rules, the journal, the group
// commit, NOTIFY), with no TSIG, no socket and no message to parse. A
// record that is already right is answered from the published snapshot,
// which is durable, without taking a lock.
//
// Only the process that owns the zone file writes it this way; other
// frontends on the same zone send it RFC 2136 UPDATEs (update.Backend).
type Backend struct{ Zone *Zone }

var _ backend.Backend = Backend{}

// NewBackend returns z as a backend.Backend.
func NewBackend(z *Zone) Backend { return Backend{Zone: z} }

// errAllow carries the error of Set's allow out of a decision.
var errAllow = errors.New("allow refused")

// Set is backend.Backend's: the records that differ are one change, all
// or nothing, journaled before Set returns.
func (b Backend) Set(ctx context.Context, recs []backend.Record, allow func() error) []backend.Result {
	z := b.Zone
	out := make([]backend.Result, len(recs))
	if z.holds(z.snapshot().names, recs) {
		return out // nochg: a read of the snapshot
	}
	var allowErr error
	var changed []int
	rcode := z.modify(func() ([]dns.RR, int) {
		var updates []dns.RR
		for i, r := range recs {
			name, t := dnsname.FQDN(r.Name), rrType(r.Addr)
			n, _ := z.pending.get(name)
			cur := n.get(t)
			if rrsetIs(cur, r) {
				continue // backend's TTL policy: TTLs are not compared
			}
			for _, rr := range cur {
				out[i].Old = append(out[i].Old, addrOf(rr))
			}
			updates = append(updates, &dns.ANY{Hdr: dns.RR_Header{Name: name, Rrtype: t, Class: dns.ClassANY}})
			if !r.Remove {
				updates = append(updates, addrRR(name, r.Addr, r.TTL))
			}
			changed = append(changed, i)
		}
		if len(updates) == 0 {
			return nil, dns.RcodeSuccess
		}
		if allow != nil {
			if allowErr = allow(); allowErr != nil {
				return nil, dns.RcodeRefused
			}
		}
		return updates, dns.RcodeSuccess
	})
	switch {
	case allowErr != nil:
		return backend.Each(len(recs), allowErr)
	case rcode != dns.RcodeSuccess:
		return backend.Each(len(recs), z.fail(rcode, "A/AAAA"))
	}
	snap := z.snapshot().names
	for _, i := range changed {
		if !z.holds(snap, recs[i:i+1]) {
			// RFC 2136 3.4.2.2: an address beside a CNAME is not added.
			out[i] = backend.Result{Err: &backend.Error{Kind: backend.KindIgnored, Backend: z.who(), Zone: z.name(),
				Err:  fmt.Errorf("%s %s is not %s after the change", recs[i].Name, recs[i].Type(), recs[i].Wanted()),
				Hint: "the name holds a CNAME (or other data an address cannot join): remove it from the zone"}}
			continue
		}
		out[i].Changed = true
	}
	return out
}

// holds reports whether names has each record's RRset exactly {Addr}
// (empty, for a removal).
func (z *Zone) holds(names *tree, recs []backend.Record) bool {
	for _, r := range recs {
		n, _ := names.get(dnsname.FQDN(r.Name))
		if !rrsetIs(n.get(rrType(r.Addr)), r) {
			return false
		}
	}
	return true
}

// rrsetIs reports whether the RRset cur is what r wants.
func rrsetIs(cur []dns.RR, r backend.Record) bool {
	if r.Remove {
		return len(cur) == 0
	}
	return len(cur) == 1 && addrOf(cur[0]) == r.Addr.Unmap()
}

// Lookup is backend.Backend's: the snapshot's A and AAAA records.
func (b Backend) Lookup(ctx context.Context, name string) ([]backend.Record, error) {
	n, _ := b.Zone.snapshot().names.get(dnsname.FQDN(name))
	var out []backend.Record
	for _, t := range []uint16{dns.TypeA, dns.TypeAAAA} {
		for _, rr := range n.get(t) {
			out = append(out, backend.Record{Name: dnsname.Canonical(name), Addr: addrOf(rr), TTL: rr.Header().Ttl})
		}
	}
	return out, nil
}

// LookupTXT is backend.Backend's: the snapshot's TXT values.
func (b Backend) LookupTXT(ctx context.Context, name string) ([]string, error) {
	n, _ := b.Zone.snapshot().names.get(dnsname.FQDN(name))
	var out []string
	for _, rr := range n.get(dns.TypeTXT) {
		out = append(out, txtValue(rr))
	}
	return out, nil
}

// AddTXT is backend.Backend's.
func (b Backend) AddTXT(ctx context.Context, name, value string, ttl uint32) (bool, error) {
	return b.Zone.setTXT(name, value, ttl, true)
}

// RemoveTXT is backend.Backend's.
func (b Backend) RemoveTXT(ctx context.Context, name, value string) (bool, error) {
	return b.Zone.setTXT(name, value, 0, false)
}

// setTXT adds or removes one TXT value at name, as an UPDATE adding (or
// deleting) that record would.
func (z *Zone) setTXT(name, value string, ttl uint32, add bool) (bool, error) {
	name = dnsname.FQDN(name)
	rr := &dns.TXT{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: ttl}, Txt: []string{value}}
	var changed bool
	rcode := z.modify(func() ([]dns.RR, int) {
		n, _ := z.pending.get(name)
		if contains(n.get(dns.TypeTXT), rr) == add {
			return nil, dns.RcodeSuccess
		}
		changed = true
		if add {
			return []dns.RR{wire(rr)}, dns.RcodeSuccess
		}
		del := dns.Copy(rr).(*dns.TXT)
		del.Hdr.Class, del.Hdr.Ttl = dns.ClassNONE, 0
		return []dns.RR{wire(del)}, dns.RcodeSuccess
	})
	if rcode != dns.RcodeSuccess {
		return false, z.fail(rcode, "TXT")
	}
	return changed, nil
}

// SetRRset is backend.RRsetter's: one change, as an UPDATE deleting the
// RRset and adding set.Data would make, when the data differs.
func (b Backend) SetRRset(ctx context.Context, set backend.RRset) (bool, error) {
	z := b.Zone
	name := dnsname.FQDN(set.Name)
	t, ok := dns.StringToType[set.Type]
	if !ok {
		return false, z.fail(dns.RcodeFormatError, set.Type)
	}
	want, err := dataRRs(name, t, set.TTL, set.Data)
	if err != nil {
		return false, &backend.Error{Kind: backend.KindOther, Backend: z.who(), Zone: z.name(), Err: err}
	}
	var changed bool
	rcode := z.modify(func() ([]dns.RR, int) {
		n, _ := z.pending.get(name)
		if sameRdata(n.get(t), want) {
			return nil, dns.RcodeSuccess
		}
		changed = true
		return append([]dns.RR{&dns.ANY{Hdr: dns.RR_Header{Name: name, Rrtype: t, Class: dns.ClassANY}}}, want...), dns.RcodeSuccess
	})
	if rcode != dns.RcodeSuccess {
		return false, z.fail(rcode, set.Type)
	}
	return changed, nil
}

// LookupRRset is backend.RRsetter's: the snapshot's records.
func (b Backend) LookupRRset(ctx context.Context, name, t string) ([]string, error) {
	n, _ := b.Zone.snapshot().names.get(dnsname.FQDN(name))
	return rdataOf(n.get(dns.StringToType[t])), nil
}

// dataRRs makes the records of name's RRset of type t from their data in
// zone-file form, as they arrive in an UPDATE.
func dataRRs(name string, t uint16, ttl uint32, data []string) ([]dns.RR, error) {
	var out []dns.RR
	for _, d := range data {
		rr, err := dns.NewRR(fmt.Sprintf("%s %d IN %s %s", name, ttl, typeName(t), d))
		if err != nil || rr == nil {
			return nil, fmt.Errorf("%s record %q: %v", typeName(t), d, err)
		}
		out = append(out, wire(rr))
	}
	return out, nil
}

// rdataOf returns the records' data in zone-file form, hex in lower case.
func rdataOf(rrs []dns.RR) []string {
	var out []string
	for _, rr := range rrs {
		rr = dns.Copy(rr)
		lowerHex(rr)
		h := rr.Header().String()
		s := rr.String()
		out = append(out, strings.ToLower(strings.TrimSpace(s[len(h):])))
	}
	return out
}

var _ backend.RRsetter = Backend{}

// fail is the backend's error for a change the zone refused.
func (z *Zone) fail(rcode int, what string) error {
	e := &backend.Error{Backend: z.who(), Zone: z.name(), Err: fmt.Errorf("the zone answered %s", dns.RcodeToString[rcode])}
	switch rcode {
	case dns.RcodeRefused, dns.RcodeNotZone:
		e.Kind, e.Hint = backend.KindRefused, fmt.Sprintf("the zone's rules do not allow this %s change: update_types (and acme, for TXT at _acme-challenge names) must allow it", what)
	case dns.RcodeServerFailure:
		e.Kind, e.Temporary, e.Hint = backend.KindServerFailure, true, "the change could not be written to the journal: see the log (a full disk, a file sshdyn may not write)"
	default:
		e.Kind, e.Hint = backend.KindOther, "the change is not one the zone can hold"
	}
	return e
}

func (z *Zone) who() string  { return "embedded zone " + z.cfg.File }
func (z *Zone) name() string { return dnsname.Canonical(z.Origin) }

// rrType is the record type of an address.
func rrType(a netip.Addr) uint16 {
	if a.Unmap().Is4() {
		return dns.TypeA
	}
	return dns.TypeAAAA
}

// addrRR is the A or AAAA record of a, as an update adds it.
func addrRR(name string, a netip.Addr, ttl uint32) dns.RR {
	h := dns.RR_Header{Name: name, Class: dns.ClassINET, Ttl: ttl}
	a = a.Unmap()
	if a.Is4() {
		h.Rrtype = dns.TypeA
		return wire(&dns.A{Hdr: h, A: a.AsSlice()})
	}
	h.Rrtype = dns.TypeAAAA
	return wire(&dns.AAAA{Hdr: h, AAAA: a.AsSlice()})
}

// wire returns rr as it would arrive in an UPDATE: packed and read back,
// so that it has its RDLENGTH (the zone's rules refuse an added record
// without data) and the names' wire form.
func wire(rr dns.RR) dns.RR {
	buf := make([]byte, dns.Len(rr)+1)
	off, err := dns.PackRR(rr, buf, 0, nil, false)
	if err != nil {
		return rr
	}
	back, _, err := dns.UnpackRR(buf[:off], 0)
	if err != nil {
		return rr
	}
	return back
}

// addrOf is the address of an A or AAAA record.
func addrOf(rr dns.RR) netip.Addr {
	switch r := rr.(type) {
	case *dns.A:
		a, _ := netip.AddrFromSlice(r.A.To4())
		return a
	case *dns.AAAA:
		a, _ := netip.AddrFromSlice(r.AAAA.To16())
		return a
	}
	return netip.Addr{}
}

// txtValue is a TXT record's strings, joined.
func txtValue(rr dns.RR) string {
	t, _ := rr.(*dns.TXT)
	if t == nil {
		return ""
	}
	return strings.Join(t.Txt, "")
}
