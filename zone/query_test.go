package zone_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/sshdyn/sshdyn/internal/dnstest"
	"github.com/sshdyn/sshdyn/tsig"
)

// records is the zone most query tests serve.
var records = []string{
	"home 300 A 192.0.2.1",
	"home 300 AAAA 2001:db8::1",
	"www 300 CNAME home",
	"ext 300 CNAME www.example.org.",
	"a.b.c 300 TXT \"deep\"",
	"sub 300 NS ns.sub",
	"ns.sub 300 A 192.0.2.53",
	"Mixed 300 A 192.0.2.7",
	"mail 300 MX 10 home",
	"@ 300 CAA 0 issue \"letsencrypt.org\"",
}

func init() {
	for i := 0; i < 20; i++ {
		records = append(records, fmt.Sprintf("big 300 TXT \"%02d %s\"", i, strings.Repeat("x", 90)))
	}
}

// exchange sends m to addr over network ("udp" or "tcp"), signed with key
// if it is not nil.
func exchange(t *testing.T, network, addr string, m *dns.Msg, key *tsig.Key) *dns.Msg {
	t.Helper()
	c := &dns.Client{Net: network, Timeout: 2 * time.Second, UDPSize: 65535}
	if key != nil {
		c.TsigSecret = map[string]string{key.Name: key.Secret}
		m.SetTsig(key.Name, key.Algorithm, 300, time.Now().Unix())
	}
	r, _, err := c.Exchange(m, addr)
	if err != nil {
		t.Fatalf("%s exchange with %s: %v", network, addr, err)
	}
	return r
}

func question(name string, qtype uint16) *dns.Msg {
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	m.RecursionDesired = false
	return m
}

func rrStrings(rrs []dns.RR) []string {
	var out []string
	for _, rr := range rrs {
		out = append(out, strings.TrimPrefix(rr.String(), rr.Header().String()))
	}
	slices.Sort(out)
	return out
}

func TestQueries(t *testing.T) {
	p := dnstest.Start(t, "sshdyn", dnstest.Options{Records: records})
	z := "." + p.Zone + "."
	cases := []struct {
		name   string
		qname  string
		qtype  uint16
		rcode  int
		aa     bool
		answer []string // rdata of the answer section, sorted
		ns     uint16   // type of the authority section's records, 0 for none
		extra  int      // records in the additional section
	}{
		{"A", "home" + z, dns.TypeA, dns.RcodeSuccess, true, []string{"192.0.2.1"}, 0, 0},
		{"AAAA", "home" + z, dns.TypeAAAA, dns.RcodeSuccess, true, []string{"2001:db8::1"}, 0, 0},
		{"case-insensitive", "HoMe" + strings.ToUpper(z), dns.TypeA, dns.RcodeSuccess, true, []string{"192.0.2.1"}, 0, 0},
		{"name written in mixed case", "mixed" + z, dns.TypeA, dns.RcodeSuccess, true, []string{"192.0.2.7"}, 0, 0},
		{"NODATA", "home" + z, dns.TypeTXT, dns.RcodeSuccess, true, nil, dns.TypeSOA, 0},
		{"NXDOMAIN", "nothere" + z, dns.TypeA, dns.RcodeNameError, true, nil, dns.TypeSOA, 0},
		{"NXDOMAIN below a name", "x.home" + z, dns.TypeA, dns.RcodeNameError, true, nil, dns.TypeSOA, 0},
		{"empty non-terminal", "b.c" + z, dns.TypeA, dns.RcodeSuccess, true, nil, dns.TypeSOA, 0},
		{"CNAME followed in zone", "www" + z, dns.TypeA, dns.RcodeSuccess, true, []string{"192.0.2.1", "home" + z}, 0, 0},
		{"CNAME itself", "www" + z, dns.TypeCNAME, dns.RcodeSuccess, true, []string{"home" + z}, 0, 0},
		{"CNAME out of zone", "ext" + z, dns.TypeA, dns.RcodeSuccess, true, []string{"www.example.org."}, 0, 0},
		{"MX", "mail" + z, dns.TypeMX, dns.RcodeSuccess, true, []string{"10 home" + z}, 0, 0},
		{"CAA at the apex", p.Zone + ".", dns.TypeCAA, dns.RcodeSuccess, true, []string{"0 issue \"letsencrypt.org\""}, 0, 0},
		{"NS at the apex", p.Zone + ".", dns.TypeNS, dns.RcodeSuccess, true, []string{"ns" + z}, 0, 0},
		{"referral below a delegation", "host.sub" + z, dns.TypeA, dns.RcodeSuccess, false, nil, dns.TypeNS, 1},
		{"out of zone", "example.org.", dns.TypeA, dns.RcodeRefused, false, nil, 0, 0},
		{"parent of the zone", "example.com.", dns.TypeSOA, dns.RcodeRefused, false, nil, 0, 0},
	}
	for _, network := range []string{"udp", "tcp"} {
		for _, addr := range []string{p.Addr, p.Addr6} {
			for _, tc := range cases {
				t.Run(network+"/"+addr+"/"+tc.name, func(t *testing.T) {
					q := question(tc.qname, tc.qtype)
					r := exchange(t, network, addr, q, nil)
					if r.Rcode != tc.rcode || r.Authoritative != tc.aa {
						t.Fatalf("rcode %s aa %v, want %s %v:\n%v", dns.RcodeToString[r.Rcode], r.Authoritative, dns.RcodeToString[tc.rcode], tc.aa, r)
					}
					if r.Question[0].Name != tc.qname {
						t.Errorf("question name %q, want the client's spelling %q", r.Question[0].Name, tc.qname)
					}
					if got := rrStrings(r.Answer); !slices.Equal(got, tc.answer) {
						t.Errorf("answer %q, want %q", got, tc.answer)
					}
					if tc.ns == 0 && len(r.Ns) != 0 || tc.ns != 0 && (len(r.Ns) == 0 || r.Ns[0].Header().Rrtype != tc.ns) {
						t.Errorf("authority section %v, want type %s", r.Ns, dns.TypeToString[tc.ns])
					}
					if tc.ns == dns.TypeSOA && r.Ns[0].Header().Ttl != 60 {
						t.Errorf("negative TTL %d, want the SOA minimum 60", r.Ns[0].Header().Ttl)
					}
					if len(r.Extra) != tc.extra {
						t.Errorf("additional section %v, want %d records", r.Extra, tc.extra)
					}
					if r.RecursionAvailable {
						t.Error("RA set by an authoritative-only server")
					}
				})
			}
		}
	}
}

func TestEDNSAndTruncation(t *testing.T) {
	p := dnstest.Start(t, "sshdyn", dnstest.Options{Records: records})
	big := "big." + p.Zone + "."

	t.Run("UDP without EDNS truncates to 512", func(t *testing.T) {
		r := exchange(t, "udp", p.Addr, question(big, dns.TypeTXT), nil)
		if !r.Truncated || len(r.Answer) == 20 {
			t.Fatalf("TC %v with %d answers, want truncation", r.Truncated, len(r.Answer))
		}
		r.Compress = true // as sent
		if n, _ := r.Pack(); len(n) > 512 {
			t.Errorf("UDP answer is %d bytes, more than 512", len(n))
		}
	})
	t.Run("TCP answers in full", func(t *testing.T) {
		r := exchange(t, "tcp", p.Addr, question(big, dns.TypeTXT), nil)
		if r.Truncated || len(r.Answer) != 20 {
			t.Fatalf("TC %v with %d answers, want all 20", r.Truncated, len(r.Answer))
		}
	})
	t.Run("EDNS0 echoed, answer up to 1232", func(t *testing.T) {
		q := question(big, dns.TypeTXT)
		q.SetEdns0(4096, false)
		r := exchange(t, "udp", p.Addr, q, nil)
		opt := r.IsEdns0()
		if opt == nil || opt.UDPSize() != 1232 {
			t.Fatalf("OPT %v, want one offering 1232", opt)
		}
		r.Compress = true // as sent
		b, _ := r.Pack()
		if len(b) > 1232 || !r.Truncated {
			t.Errorf("answer %d bytes, TC %v: want at most 1232, truncated", len(b), r.Truncated)
		}
	})
	t.Run("EDNS version 1 gets BADVERS", func(t *testing.T) {
		q := question("home."+p.Zone+".", dns.TypeA)
		q.SetEdns0(1232, false)
		q.IsEdns0().SetVersion(1)
		r := exchange(t, "udp", p.Addr, q, nil)
		if r.Rcode != dns.RcodeBadVers || len(r.Answer) != 0 {
			t.Fatalf("rcode %s, %d answers; want BADVERS and none", dns.RcodeToString[r.Rcode], len(r.Answer))
		}
	})
	t.Run("signed query gets a signed answer", func(t *testing.T) {
		r := exchange(t, "udp", p.Addr, question("home."+p.Zone+".", dns.TypeA), &p.Key)
		if r.IsTsig() == nil || len(r.Answer) != 1 {
			t.Fatalf("answer %v, want one record, signed", r)
		}
	})
	t.Run("unknown opcode", func(t *testing.T) {
		q := question("home."+p.Zone+".", dns.TypeA)
		q.Opcode = dns.OpcodeStatus
		r := exchange(t, "udp", p.Addr, q, nil)
		if r.Rcode != dns.RcodeNotImplemented {
			t.Fatalf("rcode %s, want NOTIMP", dns.RcodeToString[r.Rcode])
		}
	})
}

// TestManyQueriesOnOneTCPConnection: a client's persistent TCP
// connection is not cut after 128 messages (miekg/dns's default).
func TestManyQueriesOnOneTCPConnection(t *testing.T) {
	p := dnstest.Start(t, "sshdyn", dnstest.Options{Records: []string{"home 60 A 192.0.2.1"}})
	co, err := dns.DialTimeout("tcp", p.Addr, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer co.Close()
	for i := range 300 {
		co.SetDeadline(time.Now().Add(2 * time.Second))
		if err := co.WriteMsg(question("home."+p.Zone+".", dns.TypeA)); err != nil {
			t.Fatalf("query %d: %v", i+1, err)
		}
		r, err := co.ReadMsg()
		if err != nil || len(r.Answer) != 1 {
			t.Fatalf("query %d on one connection: %v, %v", i+1, r, err)
		}
	}
}
