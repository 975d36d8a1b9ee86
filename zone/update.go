package zone

import (
	"time"

	"github.com/miekg/dns"

	"github.com/sshdyn/sshdyn/dnsname"
)

// Update applies the RFC 2136 UPDATE req (as unpacked from the wire: the
// RDLENGTH fields are checked), whose TSIG signature by key (a
// canonical key name) has been verified, and returns the rcode to answer
// with. The zone section has been checked by the caller.
//
// Processing follows RFC 2136 section 3: the key's permission, the
// prerequisites (3.2), a prescan of the update section (3.4.1) that
// includes the zone's policy, then the changes (3.4.2), applied to the
// zone as one. A change raises the SOA serial and is in the journal, on
// disk, before Update returns NOERROR.
func (z *Zone) Update(req *dns.Msg, key string) int {
	if !z.keys[dnsname.FQDN(key)] {
		return dns.RcodeRefused
	}
	return z.modify(func() ([]dns.RR, int) { return req.Ns, z.checkPrerequisites(req.Answer) })
}

// modify is the one path of every change to the zone, an RFC 2136
// UPDATE from outside and sshdyn's own writes in process alike: with
// z.mu held, decide returns the update section to apply and an rcode
// (its prerequisites' verdict); then the prescan (the zone's rules,
// 3.4.1) and the changes (3.4.2) are applied as one, and modify returns
// once the change (or, when this one changed nothing, every change its
// decision saw) is in the journal on disk: NOERROR, or SERVFAIL if the
// journal could not be written.
func (z *Zone) modify(decide func() ([]dns.RR, int)) int {
	return z.modifyWith(decide, nil)
}

// modifyWith is modify, with a signed zone's maintenance m (nil for
// none) applied in the same change.
func (z *Zone) modifyWith(decide func() ([]dns.RR, int), m *maintenance) int {
	z.mu.Lock()
	updates, rcode := decide()
	if rcode == dns.RcodeSuccess {
		rcode = z.prescan(updates)
	}
	if rcode != dns.RcodeSuccess {
		z.mu.Unlock()
		return rcode
	}
	b := z.batch
	if d := z.apply(updates, m); d != nil {
		b.diffs = append(b.diffs, d)
	}
	unwritten := len(b.diffs)
	z.mu.Unlock()
	if unwritten == 0 {
		// Nothing waits to be written: what the decision saw is on disk
		// already.
		return dns.RcodeSuccess
	}
	// Even when this update changed nothing, its decision may have seen
	// changes not yet written: answer once they are.
	if err := z.commit(b); err != nil {
		return dns.RcodeServerFailure
	}
	return dns.RcodeSuccess
}

// checkPrerequisites evaluates the prerequisite section against the
// current state (RFC 2136 3.2). Called with z.mu held.
func (z *Zone) checkPrerequisites(prereqs []dns.RR) int {
	// "RRset exists (value dependent)" records, collected and compared
	// as whole RRsets at the end (3.2.3).
	temp := map[string]map[uint16][]dns.RR{}
	for _, rr := range prereqs {
		h := rr.Header()
		if h.Ttl != 0 {
			return dns.RcodeFormatError
		}
		name := dnsname.FQDN(h.Name)
		if !dnsname.InZone(name, z.Origin) {
			return dns.RcodeNotZone
		}
		n, _ := z.pending.get(name)
		switch h.Class {
		case dns.ClassANY:
			if h.Rdlength != 0 {
				return dns.RcodeFormatError
			}
			if h.Rrtype == dns.TypeANY {
				if len(n) == 0 {
					return dns.RcodeNameError
				}
			} else if len(n.get(h.Rrtype)) == 0 {
				return dns.RcodeNXRrset
			}
		case dns.ClassNONE:
			if h.Rdlength != 0 {
				return dns.RcodeFormatError
			}
			if h.Rrtype == dns.TypeANY {
				if len(n) > 0 {
					return dns.RcodeYXDomain
				}
			} else if len(n.get(h.Rrtype)) > 0 {
				return dns.RcodeYXRrset
			}
		case dns.ClassINET:
			if isMeta(h.Rrtype) {
				return dns.RcodeFormatError
			}
			if temp[name] == nil {
				temp[name] = map[uint16][]dns.RR{}
			}
			temp[name][h.Rrtype] = append(temp[name][h.Rrtype], rr)
		default:
			return dns.RcodeFormatError
		}
	}
	for name, types := range temp {
		for t, want := range types {
			n, _ := z.pending.get(name)
			if !sameRdata(want, n.get(t)) {
				return dns.RcodeNXRrset
			}
		}
	}
	return dns.RcodeSuccess
}

// sameRdata reports whether a and b hold the same set of records,
// ignoring TTLs and duplicates.
func sameRdata(a, b []dns.RR) bool {
	for _, rr := range a {
		if !contains(b, rr) {
			return false
		}
	}
	for _, rr := range b {
		if !contains(a, rr) {
			return false
		}
	}
	return true
}

// prescan checks the update section before anything is changed (RFC 2136
// 3.4.1) and applies the zone's policy: only names below the apex, only
// the allowed types. Called with z.mu held.
func (z *Zone) prescan(updates []dns.RR) int {
	for _, rr := range updates {
		h := rr.Header()
		name := dnsname.FQDN(h.Name)
		if !dnsname.InZone(name, z.Origin) {
			return dns.RcodeNotZone
		}
		switch h.Class {
		case dns.ClassINET:
			if isMeta(h.Rrtype) || !storable(rr) {
				return dns.RcodeFormatError
			}
			// What the loader would refuse (a wildcard, DNAME) is refused
			// here, whatever the policy allows.
			if servable(name, h.Rrtype, z.Origin) != nil {
				return dns.RcodeRefused
			}
		case dns.ClassANY:
			if h.Ttl != 0 || h.Rdlength != 0 || (isMeta(h.Rrtype) && h.Rrtype != dns.TypeANY) {
				return dns.RcodeFormatError
			}
		case dns.ClassNONE:
			if h.Ttl != 0 || isMeta(h.Rrtype) {
				return dns.RcodeFormatError
			}
		default:
			return dns.RcodeFormatError
		}
		if name == z.Origin {
			return dns.RcodeRefused
		}
		// "Delete all RRsets from a name" deletes the types the policy
		// allows and leaves the others (as BIND does).
		if !(h.Class == dns.ClassANY && h.Rrtype == dns.TypeANY) && !z.may(name, h.Rrtype) {
			return dns.RcodeRefused
		}
	}
	return dns.RcodeSuccess
}

// apply makes the changes of a prescanned update section (RFC 2136
// 3.4.2), and the maintenance m's (a signed zone's own changes, nil for
// none), re-signs what changed in a signed zone, and raises the SOA
// serial if the zone's content changed. It returns the change, nil if
// there was none. Called with z.mu held.
func (z *Zone) apply(updates []dns.RR, m *maintenance) *diff {
	// Work on copies of the touched nodes; pending's nodes are shared
	// with published snapshots.
	touched := map[string]rrsets{}
	get := func(name string) rrsets {
		if n, ok := touched[name]; ok {
			return n
		}
		old, _ := z.pending.get(name)
		n := old.sets()
		touched[name] = n
		return n
	}
	for _, rr := range updates {
		name := dnsname.FQDN(rr.Header().Name)
		z.change(get(name), name, rr)
	}
	var resign []string
	if m != nil {
		for t, rrs := range m.apex {
			if len(rrs) == 0 {
				delete(get(z.Origin), t)
			} else {
				get(z.Origin)[t] = rrs
			}
		}
		resign = m.resign
		for _, name := range m.drop {
			get(name)
			touched[name] = rrsets{}
		}
		for _, name := range m.strip {
			sets := get(name)
			for t := range sets {
				if dnssecType(t) {
					delete(sets, t)
				}
			}
		}
	}
	// pending is the writer's own tree (commit publishes a clone):
	// change it one node at a time, keeping what each changed name held.
	olds := make(map[string]node, len(touched))
	for name, sets := range touched {
		old, _ := z.pending.get(name)
		olds[name] = old
		n := sets.node()
		z.cuts += b2i(isCut(z.Origin, name, n)) - b2i(isCut(z.Origin, name, old))
		z.pending.set(name, n)
		resign = append(resign, name)
	}
	if m != nil {
		// A dropped NSEC3 record's predecessor gets a new next hash.
		for _, name := range m.drop {
			if p, _ := prevHash(z.pending, name); p != "" {
				resign = append(resign, p)
			}
		}
	}
	var now time.Time
	soaDue := false
	if z.signer != nil && len(resign) > 0 {
		now = z.signer.now()
		soaDue = z.resign(resign, olds, now)
	}
	d := &diff{}
	for name, old := range olds {
		n, _ := z.pending.get(name)
		d.del, d.add = nodeDiff(d.del, d.add, old, n)
	}
	if len(d.del) == 0 && len(d.add) == 0 && !soaDue {
		return nil
	}
	d.from, d.to = z.bumpSerial()
	if z.signer != nil {
		del, add := z.signSOA(now)
		d.del, d.add = append(d.del, del...), append(d.add, add...)
	}
	return d
}

// maintenance is a signed zone's change of its own: the apex RRsets it
// keeps (DNSKEY, CDS, CDNSKEY; an empty one removed), and names to sign
// again (due, or not signed as they should be).
type maintenance struct {
	apex   map[uint16][]dns.RR
	resign []string
	drop   []string // names to remove whole: NSEC3 records of no name
	strip  []string // names to remove DNSSEC's records from: a zone no longer signed
}

// nodeDiff appends to del and add what changed from the node old to n: an
// RRset whose TTL changed is deleted and added whole.
func nodeDiff(del, add []dns.RR, old, n node) ([]dns.RR, []dns.RR) {
	for _, s := range old {
		before, after := s.rrs, n.get(s.t)
		if s.t != dns.TypeRRSIG && len(after) > 0 && after[0].Header().Ttl != before[0].Header().Ttl {
			del = append(del, before...)
			continue
		}
		for _, rr := range before {
			if !contains(after, rr) {
				del = append(del, rr)
			}
		}
	}
	for _, s := range n {
		before, after := old.get(s.t), s.rrs
		if s.t != dns.TypeRRSIG && len(before) > 0 && after[0].Header().Ttl != before[0].Header().Ttl {
			add = append(add, after...)
			continue
		}
		for _, rr := range after {
			if !contains(before, rr) {
				add = append(add, rr)
			}
		}
	}
	return del, add
}

// change makes one record of an update section's change to n, the node
// of name (RFC 2136 3.4.2.2-3.4.2.4).
func (z *Zone) change(n rrsets, name string, rr dns.RR) {
	h := rr.Header()
	switch h.Class {
	case dns.ClassINET:
		// CNAME and other data never share a name: such an add is
		// ignored (3.4.2.2).
		if h.Rrtype == dns.TypeCNAME && hasOtherThan(n, dns.TypeCNAME) ||
			h.Rrtype != dns.TypeCNAME && !chainType(h.Rrtype) && len(n[dns.TypeCNAME]) > 0 {
			return
		}
		add := dns.Copy(rr)
		add.Header().Name = name
		add.Header().Rdlength = 0
		if h.Rrtype == dns.TypeCNAME {
			n[h.Rrtype] = []dns.RR{add}
		} else {
			n[h.Rrtype] = addRR(n[h.Rrtype], add)
		}
	case dns.ClassANY:
		if h.Rrtype == dns.TypeANY {
			for t := range n {
				if z.may(name, t) {
					delete(n, t)
				}
			}
		} else {
			delete(n, h.Rrtype)
		}
	case dns.ClassNONE:
		set := n[h.Rrtype]
		kept := make([]dns.RR, 0, len(set))
		for _, old := range set {
			if !sameRecord(old, rr) {
				kept = append(kept, old)
			}
		}
		if len(kept) == 0 {
			delete(n, h.Rrtype)
		} else {
			n[h.Rrtype] = kept
		}
	}
}

// bumpSerial raises pending's SOA serial by one (RFC 1982 arithmetic,
// skipping 0) and returns the SOA before and after. Called with z.mu held.
func (z *Zone) bumpSerial() (from, to *dns.SOA) {
	apex, _ := z.pending.get(z.Origin)
	from = apex.get(dns.TypeSOA)[0].(*dns.SOA)
	to = dns.Copy(from).(*dns.SOA)
	to.Serial++
	if to.Serial == 0 {
		to.Serial = 1
	}
	z.pending.set(z.Origin, apex.with(dns.TypeSOA, []dns.RR{to}))
	return from, to
}

// storable reports whether rr can be written to the zone file and read
// back as the same record: an added record with empty or malformed RDATA
// (an A record of no bytes, say) is a format error, not a broken file.
func storable(rr dns.RR) bool {
	if rr.Header().Rdlength == 0 {
		return false
	}
	// An address record reads back if it holds an address of its family:
	// the common case, without the round trip through text.
	switch r := rr.(type) {
	case *dns.A:
		if r.A.To4() != nil {
			return true
		}
	case *dns.AAAA:
		if len(r.AAAA) == 16 && r.AAAA.To4() == nil {
			return true
		}
	}
	back, err := dns.NewRR(rr.String())
	if err != nil || back == nil {
		return false
	}
	lowerHex(back) // as the zone file's reader does
	return dns.IsDuplicate(back, rr)
}

// contains reports whether set holds rr, TTL aside.
func contains(set []dns.RR, rr dns.RR) bool {
	for _, x := range set {
		if dns.IsDuplicate(x, rr) {
			return true
		}
	}
	return false
}

// sameRecord is dns.IsDuplicate for a "delete an RR from an RRset"
// record, whose class is NONE.
func sameRecord(zoneRR, del dns.RR) bool {
	c := dns.Copy(del)
	c.Header().Class = dns.ClassINET
	return dns.IsDuplicate(zoneRR, c)
}

func hasOtherThan(n rrsets, t uint16) bool {
	for typ := range n {
		if typ != t && !chainType(typ) {
			return true
		}
	}
	return false
}
