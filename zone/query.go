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
// 1034 3.6.2).
func (s *snapshot) answer(q dns.Question, resp *dns.Msg, minimalANY bool) {
	name := dnsname.FQDN(q.Name)
	resp.Authoritative = true
	var chain []string // the names a CNAME led to
	for i := 0; ; i++ {
		if cut := s.cut(name); cut != "" && !(cut == name && q.Qtype == dns.TypeDS) {
			s.referral(cut, resp)
			return
		}
		n, ok := s.names.get(name)
		if !ok && !s.names.hasBelow(name) {
			// RFC 4592: a name that does not exist takes the records
			// of the wildcard at its closest encloser, if there is one.
			n, ok = s.wildcard(name)
			if !ok {
				resp.Rcode = dns.RcodeNameError
				resp.Ns = append(resp.Ns, s.negativeSOA())
				return
			}
		}
		if !ok { // an empty non-terminal: NODATA, never a wildcard's
			resp.Ns = append(resp.Ns, s.negativeSOA())
			return
		}
		if q.Qtype == dns.TypeANY {
			for _, s := range n {
				resp.Answer = append(resp.Answer, s.rrs...)
				if minimalANY {
					break
				}
			}
			return
		}
		if rrs := n.get(q.Qtype); len(rrs) > 0 {
			resp.Answer = append(resp.Answer, rrs...)
			return
		}
		cname := n.get(dns.TypeCNAME)
		if len(cname) == 0 {
			resp.Ns = append(resp.Ns, s.negativeSOA())
			return
		}
		resp.Answer = append(resp.Answer, cname[0])
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
func (s *snapshot) referral(cut string, resp *dns.Msg) {
	resp.Authoritative = false
	n, _ := s.names.get(cut)
	ns := n.get(dns.TypeNS)
	resp.Ns = append(resp.Ns, ns...)
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
// name as their owner. ok is false when there is no such wildcard.
// name itself does not exist and is not an empty non-terminal.
func (s *snapshot) wildcard(name string) (node, bool) {
	for p := parent(name); p != ""; p = parent(p) {
		if _, ok := s.names.get(p); !ok && !s.names.hasBelow(p) {
			if p == s.origin {
				return nil, false
			}
			continue
		}
		w, ok := s.names.get("*." + p)
		if !ok {
			return nil, false
		}
		out := make(node, len(w))
		for i, set := range w {
			rrs := make([]dns.RR, len(set.rrs))
			for j, rr := range set.rrs {
				rrs[j] = dns.Copy(rr)
				rrs[j].Header().Name = name
			}
			out[i] = rrset{set.t, rrs}
		}
		return out, true
	}
	return nil, false
}
