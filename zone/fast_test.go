package zone_test

import (
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/sshdyn/sshdyn/internal/dnstest"
	"github.com/sshdyn/sshdyn/zone"
)

// TestFastPathLikeFullPath: the fast path's answers are the full path's,
// field for field, for every kind of answer a plain query can get
// (records, CNAME chains, NODATA, NXDOMAIN, referrals, wildcards, names in
// any case, with and without EDNS and DO); what the fast path does not
// take (truncation, ANY, out of zone, EDNS options) is answered alike
// because it goes the full path.
func TestFastPathLikeFullPath(t *testing.T) {
	recs := append(append([]string(nil), records...), "*.wild 300 A 192.0.2.99", "*.wild 300 TXT \"w\"", "esc\\.aped 300 A 192.0.2.5")
	fast := dnstest.Start(t, "sshdyn", dnstest.Options{Records: recs})
	full := dnstest.Start(t, "sshdyn", dnstest.Options{Records: recs, Server: func(s *zone.Server) { s.NoFastPath = true }})
	z := "." + fast.Zone + "."
	names := []string{"home", "HOME", "HoMe", "www", "ext", "a.b.c", "b.c", "c", "sub", "host.sub", "ns.sub", "mixed", "MIXED", "mail", "nothere", "x.home",
		"big", "any.wild", "a.b.wild", "wild", "esc\\.aped"}
	types := []uint16{dns.TypeA, dns.TypeAAAA, dns.TypeTXT, dns.TypeMX, dns.TypeCNAME, dns.TypeNS, dns.TypeSOA, dns.TypeCAA, dns.TypeANY, dns.TypeDS}
	n := 0
	for _, name := range append(names, "@") {
		qname := name + z
		if name == "@" {
			qname = strings.ToUpper(fast.Zone) + "."
		}
		for _, qt := range types {
			for _, network := range []string{"udp", "tcp"} {
				for _, edns := range []int{0, 1, 2} { // none, EDNS, EDNS with DO
					ask := func(s *dnstest.Server) *dns.Msg {
						q := question(qname, qt)
						q.Id = 4711
						q.RecursionDesired = qt == dns.TypeA
						if edns > 0 {
							q.SetEdns0(1232, edns == 2)
						}
						return exchange(t, network, s.Addr, q, nil)
					}
					a, b := ask(fast), ask(full)
					if a.String() != b.String() {
						t.Errorf("%s %s over %s (EDNS %d): the fast path answers\n%v\nthe full path\n%v", qname, dns.TypeToString[qt], network, edns, a, b)
					}
					n++
				}
			}
		}
	}
	for _, q := range []string{"example.org.", "EXAMPLE.com."} {
		if a, b := exchange(t, "udp", fast.Addr, question(q, dns.TypeA), nil), exchange(t, "udp", full.Addr, question(q, dns.TypeA), nil); a.Rcode != b.Rcode {
			t.Errorf("%s: %s and %s", q, dns.RcodeToString[a.Rcode], dns.RcodeToString[b.Rcode])
		}
	}
	t.Logf("%d queries compared", n)
}

// TestFastPathFollowsUpdates: an answer the fast path rendered is not
// served once the zone changed: the next query gets the new record.
func TestFastPathFollowsUpdates(t *testing.T) {
	p := dnstest.Start(t, "sshdyn", dnstest.Options{Records: []string{"home 60 A 192.0.2.1"}})
	name := "home." + p.Zone + "."
	for i, addr := range []string{"192.0.2.1", "192.0.2.2", "192.0.2.3"} {
		if i > 0 {
			m := new(dns.Msg)
			m.SetUpdate(p.Zone + ".")
			m.RemoveRRset([]dns.RR{&dns.ANY{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeA}}})
			rr, _ := dns.NewRR(name + " 60 IN A " + addr)
			m.Insert([]dns.RR{rr})
			if r := exchange(t, "tcp", p.Addr, m, &p.Key); r.Rcode != dns.RcodeSuccess {
				t.Fatalf("update: %v", r)
			}
		}
		for range 3 { // rendered, then served from the cache
			r := exchange(t, "udp", p.Addr, question(name, dns.TypeA), nil)
			if got := rrStrings(r.Answer); len(got) != 1 || got[0] != addr {
				t.Fatalf("after update %d: %v, want %s", i, got, addr)
			}
		}
	}
}
