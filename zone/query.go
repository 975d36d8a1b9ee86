package zone

import (
	"slices"

	"github.com/miekg/dns"

	"github.com/sshdyn/sshdyn/dnsname"
)

// maxCNAMEChain bounds how many CNAMEs inside the zone an answer follows.
const maxCNAMEChain = 8

// answer fills resp for the question q, whose name is in the zone:
// records, a referral below a delegation, NODATA or NXDOMAIN with the SOA
// in the authority section (RFC 2308). With minimalANY (a query over
// UDP), ANY is answered with one RRset, the first in type order (RFC
// 8482, as Knot does), not all of them: a small question must not buy a
// large answer. A CNAME chain that comes back to a name already in it
// is a loop: SERVFAIL, with each CNAME of it once (as BIND answers; RFC
// 1034 3.6.2). With do (the query's DO bit) and a signed zone, the
// answer carries its signatures and, when negative or synthesized from
// a wildcard, the NSEC records that prove it (RFC 4035 3.1); without it,
// no DNSSEC record the question did not ask for.
func (s *snapshot) answer(q dns.Question, resp *dns.Msg, minimalANY, do bool) {
	name := dnsname.FQDN(q.Name)
	resp.Authoritative = true
	sec := do && s.signed
	var chain []string // the names a CNAME led to
	for i := 0; ; i++ {
		if cut := s.cut(name); cut != "" && !(cut == name && q.Qtype == dns.TypeDS) {
			s.referral(cut, resp, sec)
			return
		}
		n, ok := s.names.get(name)
		if ok && s.nsec3 && isNSEC3Node(n) && q.Qtype != dns.TypeNSEC3 && q.Qtype != dns.TypeRRSIG && q.Qtype != dns.TypeANY {
			ok = false // a hashed owner is not a name of the zone's (RFC 5155 7.2.8)
		}
		wild, encloser := "", ""
		if !ok && !s.names.hasBelow(name) {
			// RFC 4592: a name that does not exist takes the records
			// of the wildcard at its closest encloser, if there is one.
			n, wild, encloser = s.wildcard(name)
			if wild == "" {
				resp.Rcode = dns.RcodeNameError
				s.negative(resp, sec)
				switch {
				case sec && s.nsec3: // the closest encloser proof, and no wildcard (RFC 5155 7.2.2)
					s.match3(resp, encloser)
					s.cover3(resp, nextCloser(name, encloser))
					s.cover3(resp, "*."+encloser)
				case sec:
					s.proveNot(resp, name)
					s.proveNot(resp, "*."+encloser)
				}
				return
			}
			ok = true
			switch {
			case sec && s.nsec3: // no closer match than the wildcard (RFC 5155 7.2.6)
				s.cover3(resp, nextCloser(name, encloser))
			case sec:
				s.proveNot(resp, name) // no closer match than the wildcard (RFC 4035 3.1.3.3)
			}
		}
		if !ok { // an empty non-terminal: NODATA, never a wildcard's
			s.negative(resp, sec)
			switch {
			case sec && s.nsec3:
				s.match3(resp, name) // RFC 5155 7.2.3: an empty non-terminal has its NSEC3 record
			case sec:
				s.proveNot(resp, name) // RFC 4035 3.1.3.2 (the NSEC before it, its next name below it)
			}
			return
		}
		if q.Qtype == dns.TypeANY {
			for _, set := range n {
				if !sec && chainType(set.t) {
					continue
				}
				resp.Answer = append(resp.Answer, set.rrs...)
				if sec && set.t != dns.TypeRRSIG {
					resp.Answer = append(resp.Answer, covering(n, set.t)...)
				}
				if minimalANY {
					break
				}
			}
			return
		}
		if rrs := n.get(q.Qtype); len(rrs) > 0 {
			resp.Answer = append(resp.Answer, rrs...)
			if sec && q.Qtype != dns.TypeRRSIG {
				resp.Answer = append(resp.Answer, covering(n, q.Qtype)...)
			}
			return
		}
		cname := n.get(dns.TypeCNAME)
		if len(cname) == 0 {
			s.negative(resp, sec)
			switch {
			case sec && s.nsec3 && wild != "": // RFC 5155 7.2.5: the closest encloser proof (the cover is in), the wildcard's record
				s.match3(resp, encloser)
				s.match3(resp, wild)
			case sec && s.nsec3:
				s.match3(resp, name) // RFC 5155 7.2.3
			case sec:
				owner := name
				if wild != "" {
					owner = wild // its NSEC shows the type is not there; proveNot above showed name is not
				}
				own, _ := s.names.get(owner)
				resp.Ns = append(resp.Ns, own.get(dns.TypeNSEC)...)
				resp.Ns = append(resp.Ns, covering(own, dns.TypeNSEC)...)
			}
			return
		}
		resp.Answer = append(resp.Answer, cname[0])
		if sec {
			resp.Answer = append(resp.Answer, covering(n, dns.TypeCNAME)...)
		}
		chain = append(chain, name)
		target := dnsname.FQDN(cname[0].(*dns.CNAME).Target)
		if slices.Contains(chain, target) {
			resp.Rcode = dns.RcodeServerFailure
			return
		}
		if !dnsname.InZone(target, s.origin) || i >= maxCNAMEChain {
			return // the resolver follows it from here
		}
		name = target
	}
}

// negative adds the SOA of a negative answer to its authority section,
// signed if sec.
func (s *snapshot) negative(resp *dns.Msg, sec bool) {
	soa := s.negativeSOA()
	resp.Ns = append(resp.Ns, soa)
	if sec {
		apex, _ := s.names.get(s.origin)
		for _, sig := range covering(apex, dns.TypeSOA) {
			sig = dns.Copy(sig)
			sig.Header().Ttl = soa.Header().Ttl
			resp.Ns = append(resp.Ns, sig)
		}
	}
}

// nextCloser returns the name one label longer than encloser on the way
// to name (RFC 5155 1.3).
func nextCloser(name, encloser string) string {
	for name != "" && parent(name) != encloser {
		name = parent(name)
	}
	return name
}

// match3 adds to resp's authority section the NSEC3 record of name, a
// name of the chain, with its signatures.
func (s *snapshot) match3(resp *dns.Msg, name string) {
	n, _ := s.names.get(hashedOwner(name, s.origin))
	s.addProof(resp, n, dns.TypeNSEC3)
}

// cover3 adds the NSEC3 record whose hash precedes name's: it covers
// name, which does not exist (RFC 5155 7.2.1).
func (s *snapshot) cover3(resp *dns.Msg, name string) {
	_, n := prevHash(s.names, hashedOwner(name, s.origin))
	s.addProof(resp, n, dns.TypeNSEC3)
}

// addProof adds n's record of type t (NSEC, NSEC3) and its signatures to
// resp's authority section, once.
func (s *snapshot) addProof(resp *dns.Msg, n node, t uint16) {
	rec := n.get(t)
	if len(rec) == 0 {
		return
	}
	for _, rr := range resp.Ns {
		if rr == rec[0] {
			return
		}
	}
	resp.Ns = append(resp.Ns, rec...)
	resp.Ns = append(resp.Ns, covering(n, t)...)
}

// proveNot adds to resp's authority section the NSEC record that covers
// name, a name that does not exist (or an empty non-terminal), with its
// signatures: the NSEC of the last name before it in the chain. Added
// once, when two proofs are the same record.
func (s *snapshot) proveNot(resp *dns.Msg, name string) {
	var owner node
	s.names.t.DescendLessOrEqual(entry{key: nameKey(name)}, func(e entry) bool {
		if len(e.n.get(dns.TypeNSEC)) == 0 || e.name() == name {
			return true // not in the chain: below a delegation
		}
		owner = e.n
		return false
	})
	nsec := owner.get(dns.TypeNSEC)
	if len(nsec) == 0 {
		return
	}
	for _, rr := range resp.Ns {
		if rr == nsec[0] {
			return
		}
	}
	resp.Ns = append(resp.Ns, nsec...)
	resp.Ns = append(resp.Ns, covering(owner, dns.TypeNSEC)...)
}

// cut returns the delegation point at or above name, "" if none.
func (s *snapshot) cut(name string) string {
	if s.cuts == 0 {
		return ""
	}
	for p := name; p != "" && p != s.origin; p = parent(p) {
		if n, ok := s.names.get(p); ok && isCut(s.origin, p, n) {
			return p
		}
	}
	return ""
}

// referral answers for a name at or below the delegation point cut: not
// authoritative, the NS records in the authority section, and the
// addresses of name servers inside the zone as glue.
func (s *snapshot) referral(cut string, resp *dns.Msg, sec bool) {
	resp.Authoritative = false
	n, _ := s.names.get(cut)
	ns := n.get(dns.TypeNS)
	resp.Ns = append(resp.Ns, ns...)
	if sec {
		// The DS records, signed, or the NSEC that shows there are none
		// (RFC 4035 3.1.4).
		if ds := n.get(dns.TypeDS); len(ds) > 0 {
			resp.Ns = append(resp.Ns, ds...)
			resp.Ns = append(resp.Ns, covering(n, dns.TypeDS)...)
		} else if s.nsec3 {
			s.match3(resp, cut) // RFC 5155 7.2.7
		} else {
			resp.Ns = append(resp.Ns, n.get(dns.TypeNSEC)...)
			resp.Ns = append(resp.Ns, covering(n, dns.TypeNSEC)...)
		}
	}
	for _, rr := range ns {
		target := dnsname.FQDN(rr.(*dns.NS).Ns)
		if n, ok := s.names.get(target); ok {
			resp.Extra = append(resp.Extra, n.get(dns.TypeA)...)
			resp.Extra = append(resp.Extra, n.get(dns.TypeAAAA)...)
		}
	}
}

// negativeSOA is the SOA for a negative answer, its TTL the lesser of its
// own and its MINIMUM field (RFC 2308 3).
func (s *snapshot) negativeSOA() dns.RR {
	soa := dns.Copy(s.soa()).(*dns.SOA)
	if soa.Minttl < soa.Hdr.Ttl {
		soa.Hdr.Ttl = soa.Minttl
	}
	return soa
}

func (s *snapshot) soa() *dns.SOA { return s.names.soa() }

// wildcard returns the records the wildcard at name's closest encloser
// (its nearest ancestor that exists, as a name with records or as an
// empty non-terminal) synthesizes for name (RFC 4592 3.3.1): copies with
// name as their owner, their signatures too, with the wildcard's label
// count, as signed. wild is the wildcard's name, "" when there is none;
// encloser the closest encloser. name itself does not exist and is not
// an empty non-terminal.
func (s *snapshot) wildcard(name string) (n node, wild, encloser string) {
	for p := parent(name); p != ""; p = parent(p) {
		if _, ok := s.names.get(p); !ok && !s.names.hasBelow(p) {
			if p == s.origin {
				return nil, "", p
			}
			continue
		}
		w, ok := s.names.get("*." + p)
		if !ok {
			return nil, "", p
		}
		out := make(node, 0, len(w))
		for _, set := range w {
			if set.t == dns.TypeNSEC {
				continue // the wildcard's own, not the name's
			}
			rrs := make([]dns.RR, len(set.rrs))
			for j, rr := range set.rrs {
				rrs[j] = dns.Copy(rr)
				rrs[j].Header().Name = name
			}
			out = append(out, rrset{set.t, rrs})
		}
		return out, "*." + p, p
	}
	return nil, "", s.origin
}
