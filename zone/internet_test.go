package zone_test

import (
	"encoding/hex"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/sshdyn/sshdyn/internal/dnstest"
	"github.com/sshdyn/sshdyn/zone"
)

// The embedded primary on the open internet: EDNS as ISC's compliance
// tests check it, DNS cookies, minimal ANY, CNAME loops, a signed
// BADTIME, TCP keepalive and caps, UPDATEs with related records, and
// response rate limiting from several client networks.

func withEDNS(m *dns.Msg, opts ...dns.EDNS0) *dns.Msg {
	m.SetEdns0(1232, false)
	m.IsEdns0().Option = append(m.IsEdns0().Option, opts...)
	return m
}

func optionOf[T dns.EDNS0](r *dns.Msg) (T, bool) {
	var zero T
	if o := r.IsEdns0(); o != nil {
		for _, e := range o.Option {
			if v, ok := e.(T); ok {
				return v, true
			}
		}
	}
	return zero, false
}

func TestEDNSCompliance(t *testing.T) {
	p := dnstest.Start(t, "sshdyn", dnstest.Options{Records: append(slices.Clone(records), "loop1 60 CNAME loop2", "loop2 60 CNAME loop3", "loop3 60 CNAME loop1", "home 300 TXT \"t\""),
		Server: func(s *zone.Server) { s.NSID = "sshdyn-test-1" }})
	home := "home." + p.Zone + "."

	t.Run("unknown option ignored, DO echoed, unknown flags cleared", func(t *testing.T) {
		q := withEDNS(question(home, dns.TypeA), &dns.EDNS0_LOCAL{Code: 65001, Data: []byte{1, 2, 3}})
		q.IsEdns0().SetDo()
		q.IsEdns0().SetZ(0x4000) // an undefined flag
		r := exchange(t, "udp", p.Addr, q, nil)
		opt := r.IsEdns0()
		if r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 || opt == nil {
			t.Fatalf("answer %v", r)
		}
		if !opt.Do() || opt.Z() != 0 || opt.Version() != 0 || len(opt.Option) != 0 {
			t.Errorf("OPT %v: want DO echoed, no other flag, version 0, no option", opt)
		}
	})
	t.Run("EDNS version 1: BADVERS with version 0", func(t *testing.T) {
		q := withEDNS(question(home, dns.TypeA))
		q.IsEdns0().SetVersion(1)
		r := exchange(t, "udp", p.Addr, q, nil)
		if r.Rcode != dns.RcodeBadVers || len(r.Answer) != 0 || r.IsEdns0() == nil || r.IsEdns0().Version() != 0 {
			t.Errorf("answer %v: want BADVERS, no records, OPT version 0", r)
		}
	})
	t.Run("OPT in the wrong section, or twice: FORMERR", func(t *testing.T) {
		q := question(home, dns.TypeA)
		o := &dns.OPT{Hdr: dns.RR_Header{Name: ".", Rrtype: dns.TypeOPT}}
		o.SetUDPSize(1232)
		q.Ns = append(q.Ns, o)
		if r := exchange(t, "udp", p.Addr, q, nil); r.Rcode != dns.RcodeFormatError {
			t.Errorf("OPT in the authority section: %s", dns.RcodeToString[r.Rcode])
		}
		q = withEDNS(question(home, dns.TypeA))
		q.Extra = append(q.Extra, dns.Copy(q.Extra[0]))
		if r := exchange(t, "udp", p.Addr, q, nil); r.Rcode != dns.RcodeFormatError {
			t.Errorf("two OPTs: %s", dns.RcodeToString[r.Rcode])
		}
	})
	t.Run("a payload under 512 counts as 512", func(t *testing.T) {
		q := question("big."+p.Zone+".", dns.TypeTXT)
		q.SetEdns0(100, false)
		r := exchange(t, "udp", p.Addr, q, nil)
		r.Compress = true
		b, _ := r.Pack()
		if !r.Truncated || len(b) > 512 || len(b) < 400 {
			t.Errorf("%d bytes, TC %v: want up to 512, truncated", len(b), r.Truncated)
		}
	})
	t.Run("NSID when asked", func(t *testing.T) {
		r := exchange(t, "udp", p.Addr, withEDNS(question(home, dns.TypeA), &dns.EDNS0_NSID{Code: dns.EDNS0NSID}), nil)
		n, ok := optionOf[*dns.EDNS0_NSID](r)
		if b, _ := hex.DecodeString(n.Nsid); !ok || string(b) != "sshdyn-test-1" {
			t.Errorf("NSID %q (%v)", b, ok)
		}
		if _, ok := optionOf[*dns.EDNS0_NSID](exchange(t, "udp", p.Addr, withEDNS(question(home, dns.TypeA)), nil)); ok {
			t.Error("NSID sent unasked")
		}
	})
	t.Run("cookies", func(t *testing.T) {
		client := "2464c4abcf10c957"
		r := exchange(t, "udp", p.Addr, withEDNS(question(home, dns.TypeA), &dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: client}), nil)
		c, ok := optionOf[*dns.EDNS0_COOKIE](r)
		if !ok || len(c.Cookie) != 48 || !strings.HasPrefix(c.Cookie, client) || c.Cookie[16:18] != "01" {
			t.Fatalf("cookie %q: want the client cookie and a version 1 server cookie", c.Cookie)
		}
		again := exchange(t, "udp", p.Addr, withEDNS(question(home, dns.TypeA), &dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: c.Cookie}), nil)
		if c2, _ := optionOf[*dns.EDNS0_COOKIE](again); c2.Cookie != c.Cookie || len(again.Answer) != 1 {
			t.Errorf("the server cookie sent back: %q, want the same (fresh)", c2.Cookie)
		}
		if r := exchange(t, "udp", p.Addr, withEDNS(question(home, dns.TypeA), &dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: "0102030405"}), nil); r.Rcode != dns.RcodeFormatError {
			t.Errorf("a 5-byte cookie: %s, want FORMERR", dns.RcodeToString[r.Rcode])
		}
	})
	t.Run("minimal ANY over UDP, all over TCP", func(t *testing.T) {
		if r := exchange(t, "udp", p.Addr, question(home, dns.TypeANY), nil); len(r.Answer) != 1 || r.Answer[0].Header().Rrtype != dns.TypeA {
			t.Errorf("ANY over UDP: %v, want one RRset", r.Answer)
		}
		if r := exchange(t, "tcp", p.Addr, question(home, dns.TypeANY), nil); len(r.Answer) != 3 {
			t.Errorf("ANY over TCP: %d records, want all 3", len(r.Answer))
		}
	})
	t.Run("a CNAME loop is SERVFAIL, each CNAME once", func(t *testing.T) {
		r := exchange(t, "udp", p.Addr, question("loop1."+p.Zone+".", dns.TypeA), nil)
		if r.Rcode != dns.RcodeServerFailure || len(r.Answer) != 3 {
			t.Errorf("rcode %s with %d records, want SERVFAIL with the 3 CNAMEs", dns.RcodeToString[r.Rcode], len(r.Answer))
		}
	})
	t.Run("TCP keepalive", func(t *testing.T) {
		r := exchange(t, "tcp", p.Addr, withEDNS(question(home, dns.TypeA), &dns.EDNS0_TCP_KEEPALIVE{Code: dns.EDNS0TCPKEEPALIVE}), nil)
		if k, ok := optionOf[*dns.EDNS0_TCP_KEEPALIVE](r); !ok || k.Timeout != 100 {
			t.Errorf("keepalive %v (%v), want 100 (10 s)", k, ok)
		}
		r = exchange(t, "udp", p.Addr, withEDNS(question(home, dns.TypeA), &dns.EDNS0_TCP_KEEPALIVE{Code: dns.EDNS0TCPKEEPALIVE}), nil)
		if _, ok := optionOf[*dns.EDNS0_TCP_KEEPALIVE](r); ok {
			t.Error("keepalive over UDP")
		}
	})
	t.Run("BADTIME is signed", func(t *testing.T) {
		// Signed by hand, an hour in the past, sent raw: miekg/dns's
		// client does not verify a NOTAUTH answer, so the test does.
		q := question(home, dns.TypeSOA)
		q.SetTsig(p.Key.Name, p.Key.Algorithm, 300, time.Now().Add(-time.Hour).Unix())
		wire, reqMAC, err := dns.TsigGenerate(q, p.Key.Secret, "", false)
		if err != nil {
			t.Fatal(err)
		}
		c, err := net.Dial("udp", p.Addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.Write(wire)
		c.SetReadDeadline(time.Now().Add(2 * time.Second))
		buf := make([]byte, 4096)
		n, err := c.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		r := new(dns.Msg)
		if err := r.Unpack(buf[:n]); err != nil {
			t.Fatal(err)
		}
		ts := r.IsTsig()
		if r.Rcode != dns.RcodeNotAuth || ts == nil || ts.Error != dns.RcodeBadTime || ts.MAC == "" || ts.OtherLen != 6 {
			t.Fatalf("answer %v: want NOTAUTH with a signed TSIG, BADTIME and the server's time", r)
		}
		// The MAC, recomputed over the answer with the request's MAC.
		check := r.Copy()
		check.Id = ts.OrigId
		_, mac, err := dns.TsigGenerate(check, p.Key.Secret, reqMAC, false)
		if err != nil || mac != ts.MAC {
			t.Errorf("the BADTIME answer's MAC does not verify (%v)", err)
		}
	})
}

// TestUpdateWithRelatedRecords: an UPDATE with EDNS, a related record in
// the additional section and TSIG (three records there) is applied, as
// BIND and Knot apply it (RFC 2136 2.6); it used to be FORMERR.
func TestUpdateWithRelatedRecords(t *testing.T) {
	p := dnstest.Start(t, "sshdyn", dnstest.Options{})
	m := new(dns.Msg)
	m.SetUpdate(p.Zone + ".")
	rr, _ := dns.NewRR("glued." + p.Zone + ". 60 IN A 192.0.2.44")
	m.Insert([]dns.RR{rr})
	glue, _ := dns.NewRR("ns.glued." + p.Zone + ". 60 IN A 192.0.2.45")
	m.Extra = append(m.Extra, glue)
	m.SetEdns0(1232, false)
	r := exchange(t, "tcp", p.Addr, m, &p.Key)
	if r.Rcode != dns.RcodeSuccess {
		t.Fatalf("UPDATE with OPT, a related record and TSIG: %s", dns.RcodeToString[r.Rcode])
	}
	if got := p.Lookup(t, "glued."+p.Zone, dns.TypeA); !slices.Equal(got, []string{"192.0.2.44"}) {
		t.Errorf("glued A = %v", got)
	}
	if got := p.Lookup(t, "ns.glued."+p.Zone, dns.TypeA); len(got) != 0 {
		t.Errorf("the additional section's record was added: %v", got)
	}
}

// TestTCPCaps: connections over the per-source cap are closed at once;
// one idle past the timeout is closed; closing one frees its place.
func TestTCPCaps(t *testing.T) {
	var events eventLog
	p := dnstest.Start(t, "sshdyn", dnstest.Options{Records: records, Server: func(s *zone.Server) {
		s.MaxTCPPerSource, s.TCPIdle = 2, time.Second
		s.Observe = events.add
	}})
	dial := func() *dns.Conn {
		c, err := dns.DialTimeout("tcp", p.Addr, 2*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	ask := func(c *dns.Conn) error {
		c.SetDeadline(time.Now().Add(2 * time.Second))
		if err := c.WriteMsg(question("home."+p.Zone+".", dns.TypeA)); err != nil {
			return err
		}
		_, err := c.ReadMsg()
		return err
	}
	a, b := dial(), dial()
	defer a.Close()
	if err := ask(a); err != nil {
		t.Fatal(err)
	}
	if err := ask(b); err != nil {
		t.Fatal(err)
	}
	third := dial()
	if err := ask(third); err == nil {
		t.Error("a third connection from one source was answered")
	}
	third.Close()
	b.Close()
	time.Sleep(100 * time.Millisecond)
	fourth := dial()
	defer fourth.Close()
	if err := ask(fourth); err != nil {
		t.Errorf("after one closed, a new connection: %v", err)
	}
	if !events.has("tcp_refused") {
		t.Errorf("events %v, want tcp_refused", events.all())
	}
	// Idle past the timeout: closed by the server.
	time.Sleep(1500 * time.Millisecond)
	if err := ask(a); err == nil {
		t.Error("a connection idle past the timeout still answers")
	}
}

// eventLog records a server's Observe events.
type eventLog struct {
	mu     sync.Mutex
	events []string
}

func (l *eventLog) add(e string) { l.mu.Lock(); l.events = append(l.events, e); l.mu.Unlock() }
func (l *eventLog) has(e string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Contains(l.events, e)
}
func (l *eventLog) all() []string { l.mu.Lock(); defer l.mu.Unlock(); return slices.Clone(l.events) }

// udpFrom sends n copies of q from a UDP socket bound to src, and counts
// the answers within wait: normal ones, truncated ones, and BADCOOKIE.
func udpFrom(t *testing.T, src, dst string, q *dns.Msg, n int, wait time.Duration) (full, truncated, badcookie int) {
	t.Helper()
	laddr, _ := net.ResolveUDPAddr("udp", net.JoinHostPort(src, "0"))
	raddr, _ := net.ResolveUDPAddr("udp", dst)
	c, err := net.DialUDP("udp", laddr, raddr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for i := range n {
		q.Id = uint16(i + 1)
		b, _ := q.Pack()
		if _, err := c.Write(b); err != nil {
			t.Fatal(err)
		}
	}
	c.SetReadDeadline(time.Now().Add(wait))
	buf := make([]byte, 65535)
	for {
		k, err := c.Read(buf)
		if err != nil {
			return
		}
		r := new(dns.Msg)
		if r.Unpack(buf[:k]) != nil {
			continue
		}
		switch {
		case r.Rcode == dns.RcodeBadCookie:
			badcookie++
		case r.Truncated:
			truncated++
		default:
			full++
		}
	}
}

// TestRRL: with rrl_rate 5 and slip 2, 40 identical queries at once from
// one client network get 5 answers and about half of the rest
// truncated, and a few are dropped; another network at the same time
// gets its own 5; an exempt network and a client with a valid server
// cookie get every answer; a client with a cookie that is not valid
// yet gets BADCOOKIE instead of TC. Loopback addresses in different /24
// networks stand for the clients.
func TestRRL(t *testing.T) {
	var events eventLog
	p := dnstest.Start(t, "sshdyn", dnstest.Options{Records: records, Server: func(s *zone.Server) {
		s.RRL = zone.RRL{Rate: 5, Slip: 2, Window: time.Second, Exempt: nil}
		s.Observe = events.add
	}})
	q := question("home."+p.Zone+".", dns.TypeA)
	full, tc, _ := udpFrom(t, "127.1.0.1", p.Addr, q, 40, 500*time.Millisecond)
	if full < 5 || full > 6 || tc < 15 || tc > 20 {
		t.Errorf("40 at once from one network: %d answers, %d truncated; want 5 (6 with a refill) and about 17", full, tc)
	}
	if f, _, _ := udpFrom(t, "127.2.0.1", p.Addr, q, 5, 300*time.Millisecond); f != 5 {
		t.Errorf("another network: %d of 5 answered", f)
	}
	if !events.has("dropped") || !events.has("slipped") {
		t.Errorf("events %v", events.all())
	}
	// A resolver that learned a server cookie is never limited.
	r := exchange(t, "udp", p.Addr, withEDNS(question("home."+p.Zone+".", dns.TypeA), &dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: "0102030405060708"}), nil)
	c, _ := optionOf[*dns.EDNS0_COOKIE](r)
	withCookie := withEDNS(question("home."+p.Zone+".", dns.TypeA), &dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: c.Cookie})
	if f, _, _ := udpFrom(t, "127.0.0.1", p.Addr, withCookie, 30, 500*time.Millisecond); f != 30 {
		t.Errorf("with a valid server cookie: %d of 30 answered", f)
	}
	// A cookie from another address is not valid there: BADCOOKIE
	// instead of TC, once over the rate.
	if _, tc, bc := udpFrom(t, "127.3.0.1", p.Addr, withCookie, 20, 500*time.Millisecond); bc < 5 || tc != 0 {
		t.Errorf("an invalid cookie over the rate: %d BADCOOKIE, %d TC; want BADCOOKIE", bc, tc)
	}
	// TCP is never limited.
	for i := range 20 {
		if r := exchange(t, "tcp", p.Addr, question("home."+p.Zone+".", dns.TypeA), nil); len(r.Answer) != 1 {
			t.Fatalf("TCP query %d: %v", i, r)
		}
	}
}

// TestRRLExempt: an exempt network gets every answer.
func TestRRLExempt(t *testing.T) {
	p := dnstest.Start(t, "sshdyn", dnstest.Options{Records: records, Server: func(s *zone.Server) {
		s.RRL = zone.RRL{Rate: 5, Slip: 2, Window: time.Second, Exempt: []netip.Prefix{netip.MustParsePrefix("127.4.0.0/16")}}
	}})
	q := question("home."+p.Zone+".", dns.TypeA)
	if f, _, _ := udpFrom(t, "127.4.0.1", p.Addr, q, 30, 500*time.Millisecond); f != 30 {
		t.Errorf("an exempt network: %d of 30 answered", f)
	}
}
