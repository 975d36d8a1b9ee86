//go:build integration

package zone_test

import (
	"context"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/sshdyn/sshdyn/internal/dnstest"
	"github.com/sshdyn/sshdyn/update"
	"github.com/sshdyn/sshdyn/zone"
)

// verifyAXFR transfers the zone from s (with the transfer key, if set)
// and runs dnssec-verify on it.
func verifyAXFR(t *testing.T, s *dnstest.Server, key, secret string) {
	t.Helper()
	dnstest.VerifyZone(t, s.Zone, dnstest.Transfer(t, s.Zone, s.Addr, key, secret))
}

// signedWithSecondaries starts the embedded primary with opts, its zone
// transferable from loopback, and a real BIND and a real Knot secondary
// it notifies.
func signedWithSecondaries(t *testing.T, opts dnstest.Options) (*dnstest.Server, []*dnstest.Server) {
	t.Helper()
	ports := make([]int, 2)
	for i := range ports {
		p, err := dnstest.FreePort()
		if err != nil {
			t.Fatal(err)
		}
		ports[i] = p
		opts.Notify = append(opts.Notify, "127.0.0.1:"+strconv.Itoa(p))
	}
	opts.AllowTransfer = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
	p := dnstest.Start(t, "sshdyn", opts)
	return p, []*dnstest.Server{dnstest.StartSecondary(t, "bind", ports[0], p), dnstest.StartSecondary(t, "knot", ports[1], p)}
}

// TestDNSSECValidates signs the embedded primary's zone and follows it
// through updates with delv (the zone's DNSKEY its only trust anchor)
// and dnssec-verify on a full transfer: at the primary, and at a real
// BIND and a real Knot secondary that follow it by IXFR. A changed
// address, a NODATA, an NXDOMAIN and a wildcard answer each validate.
func TestDNSSECValidates(t *testing.T) {
	t.Run("NSEC", func(t *testing.T) { dnssecValidates(t, zone.DNSSEC{}) })
	t.Run("NSEC3", func(t *testing.T) { dnssecValidates(t, zone.DNSSEC{NSEC3: true}) })
}

func dnssecValidates(t *testing.T, d zone.DNSSEC) {
	p, secs := signedWithSecondaries(t, dnstest.Options{
		Records: []string{"home 60 A 192.0.2.1", "*.wild 60 TXT \"any\"", "www 60 CNAME home"},
		Types:   []string{"A", "AAAA", "TXT"},
		DNSSEC:  &d,
	})
	anchor := dnstest.TrustAnchor(t, p.Zone, p.Addr)
	c := &update.Client{Server: p.Addr, Zone: p.Zone, Key: p.Key}
	home := "home." + p.Zone
	steps := []struct {
		name string
		set  *update.Record
		rm   string
	}{
		{name: "as signed"},
		{name: "address changed", set: &update.Record{Name: home, Addr: netip.MustParseAddr("198.51.100.7"), TTL: 60}},
		{name: "name added", set: &update.Record{Name: "laptop." + p.Zone, Addr: netip.MustParseAddr("2001:db8::7"), TTL: 60}},
		{name: "name removed", rm: "laptop." + p.Zone},
		{name: "a name below empty non-terminals", set: &update.Record{Name: "a.b.c." + p.Zone, Addr: netip.MustParseAddr("192.0.2.9"), TTL: 60}},
		{name: "and removed", rm: "a.b.c." + p.Zone},
	}
	want := "192.0.2.1"
	for _, st := range steps {
		if st.set != nil {
			if _, _, err := c.Set(context.Background(), *st.set, nil); err != nil {
				t.Fatalf("%s: %v", st.name, err)
			}
			if st.set.Name == home {
				want = st.set.Addr.String()
			}
		}
		if st.rm != "" {
			m := new(dns.Msg)
			m.SetUpdate(dns.Fqdn(p.Zone))
			m.RemoveName([]dns.RR{&dns.ANY{Hdr: dns.RR_Header{Name: dns.Fqdn(st.rm)}}})
			m.SetTsig(p.Key.Name, p.Key.Algorithm, 300, time.Now().Unix())
			cl := &dns.Client{Net: "tcp", TsigSecret: map[string]string{p.Key.Name: p.Key.Secret}}
			r, _, err := cl.Exchange(m, p.Addr)
			if err != nil || r.Rcode != dns.RcodeSuccess {
				t.Fatalf("%s: %v %v", st.name, err, r)
			}
		}
		serial := p.Serial(t)
		for _, s := range append([]*dnstest.Server{p}, secs...) {
			t.Run(st.name+"/"+s.Kind, func(t *testing.T) {
				deadline := time.Now().Add(10 * time.Second)
				for s.Serial(t) != serial {
					if time.Now().After(deadline) {
						t.Fatalf("serial %d, the primary's %d", s.Serial(t), serial)
					}
					time.Sleep(20 * time.Millisecond)
				}
				checks := []struct{ name, qtype, want string }{
					{home, "A", want},
					{home, "MX", "; negative response, fully validated"},
					{"nothere." + p.Zone, "A", "; negative response, fully validated"},
					{"x.y.wild." + p.Zone, "TXT", `"any"`},
					{"nothere.wild." + p.Zone, "A", "; negative response, fully validated"},
					{"www." + p.Zone, "A", want},
					{p.Zone, "DNSKEY", "DNSKEY"},
					{"c." + p.Zone, "A", "; negative response, fully validated"}, // an empty non-terminal, while a.b.c is there
				}
				for _, ck := range checks {
					out := dnstest.Delv(t, anchor, p.Zone, s.Addr, ck.name, ck.qtype)
					if os.Getenv("DELV_SHOW") != "" {
						t.Log(out)
					}
					if !dnstest.Validated(out) || !strings.Contains(out, ck.want) {
						t.Errorf("delv %s %s at %s:\n%s", ck.name, ck.qtype, s.Kind, out)
					}
				}
				if s == p {
					verifyAXFR(t, s, p.XfrKey.Name, p.XfrKey.Secret)
				} else {
					verifyAXFR(t, s, "", "")
				}
			})
		}
	}
	if t.Failed() {
		t.Logf("primary's log:\n%s", p.Output())
	}
}

// TestDNSSECBogus shows the checks above can fail: an answer changed on
// its way (an in-test relay rewrites the address, which no real server
// does) and a zone whose signatures have expired are both bogus to delv.
func TestDNSSECBogus(t *testing.T) {
	p := dnstest.Start(t, "sshdyn", dnstest.Options{Records: []string{"home 60 A 192.0.2.1"}, DNSSEC: &zone.DNSSEC{}})
	anchor := dnstest.TrustAnchor(t, p.Zone, p.Addr)
	home := "home." + p.Zone
	if out := dnstest.Delv(t, anchor, p.Zone, p.Addr, home, "A"); !dnstest.Validated(out) {
		t.Fatalf("untampered answer does not validate:\n%s", out)
	}
	relay := tamperingRelay(t, p.Addr)
	if out := dnstest.Delv(t, anchor, p.Zone, relay, home, "A"); dnstest.Validated(out) || !strings.Contains(out, "resolution failed") {
		t.Errorf("a tampered answer validates:\n%s", out)
	}

	past := time.Now().Add(-30 * 24 * time.Hour)
	old := dnstest.Start(t, "sshdyn", dnstest.Options{Records: []string{"home 60 A 192.0.2.1"},
		DNSSEC: &zone.DNSSEC{Now: func() time.Time { return past }}})
	if out := dnstest.Delv(t, dnstest.TrustAnchor(t, old.Zone, old.Addr), old.Zone, old.Addr, "home."+old.Zone, "A"); dnstest.Validated(out) || !strings.Contains(out, "resolution failed") {
		t.Errorf("expired signatures validate:\n%s", out)
	}
}

// tamperingRelay relays DNS over UDP and TCP to upstream and changes
// every A record in the answers to 203.0.113.66. It returns its address.
func tamperingRelay(t *testing.T, upstream string) string {
	t.Helper()
	h := dns.HandlerFunc(func(w dns.ResponseWriter, req *dns.Msg) {
		proto := "udp"
		if _, ok := w.RemoteAddr().(*net.TCPAddr); ok {
			proto = "tcp"
		}
		r, _, err := (&dns.Client{Net: proto}).Exchange(req, upstream)
		if err != nil {
			return
		}
		for _, rr := range r.Answer {
			if a, ok := rr.(*dns.A); ok {
				a.A = netip.MustParseAddr("203.0.113.66").AsSlice()
			}
		}
		w.WriteMsg(r)
	})
	// A port free for UDP and TCP: the kernel's pick for UDP may be
	// taken for TCP.
	var pc net.PacketConn
	var l net.Listener
	for try := 0; l == nil; try++ {
		var err error
		if pc, err = net.ListenPacket("udp", "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
		if l, err = net.Listen("tcp", pc.LocalAddr().String()); err != nil {
			pc.Close()
			if try == 20 {
				t.Fatal(err)
			}
		}
	}
	for _, srv := range []*dns.Server{{PacketConn: pc, Handler: h}, {Listener: l, Handler: h}} {
		go srv.ActivateAndServe()
		t.Cleanup(func() { srv.Shutdown() })
	}
	return pc.LocalAddr().String()
}

// TestDNSSECRolloverSecondaries rolls the key of the embedded primary's
// signed zone while a real BIND and a real Knot secondary follow it by
// IXFR: at every step the zone validates at all three with the DS set
// a parent would hold then (the old DS, then the new), and dnssec-verify
// passes their full transfers; at the end the old DS validates nowhere.
// The signer's clock is moved ahead past each wait (the zone's DNSKEY
// TTL of 300 s), by minutes, which the signatures' inception an hour
// back leaves valid for delv's real clock.
func TestDNSSECRolloverSecondaries(t *testing.T) {
	var skew atomic.Int64
	d := zone.DNSSEC{Propagation: time.Second, ParentDSTTL: time.Second,
		Now: func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }}
	p, secs := signedWithSecondaries(t, dnstest.Options{Records: []string{"home 60 A 192.0.2.1"}, DNSSEC: &d})
	z := p.Embedded()
	home := "home." + p.Zone
	apex := func(qtype uint16) []dns.RR {
		t.Helper()
		m := new(dns.Msg)
		m.SetQuestion(dns.Fqdn(p.Zone), qtype)
		r, err := dns.Exchange(m, p.Addr)
		if err != nil {
			t.Fatal(err)
		}
		return r.Answer
	}
	// ds returns the DS records the zone's CDS asks the parent for.
	ds := func() string {
		t.Helper()
		var b strings.Builder
		for _, rr := range apex(dns.TypeCDS) {
			if c, ok := rr.(*dns.CDS); ok {
				d := c.DS
				d.Hdr.Rrtype = dns.TypeDS
				b.WriteString(d.String() + "\n")
			}
		}
		if b.Len() == 0 {
			t.Fatal("no CDS at the apex")
		}
		return b.String()
	}
	// homeSigs counts the signatures of home's A RRset at the primary.
	homeSigs := func() int {
		m := new(dns.Msg)
		m.SetQuestion(dns.Fqdn(home), dns.TypeA)
		m.SetEdns0(4096, true)
		r, _, err := (&dns.Client{Net: "tcp"}).Exchange(m, p.Addr)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, rr := range r.Answer {
			if _, ok := rr.(*dns.RRSIG); ok {
				n++
			}
		}
		return n
	}
	wait := func(what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(20 * time.Second); !cond(); {
			if time.Now().After(deadline) {
				t.Fatalf("waiting for %s:\n%s", what, p.Output())
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	validates := func(step, anchor string, want bool) {
		t.Helper()
		serial := p.Serial(t)
		for _, s := range append([]*dnstest.Server{p}, secs...) {
			wait(s.Kind+" at the primary's serial", func() bool { return s.Serial(t) == serial })
			out := dnstest.Delv(t, anchor, p.Zone, s.Addr, home, "A")
			if dnstest.Validated(out) != want {
				t.Errorf("%s at %s: validated %v, want %v:\n%s", step, s.Kind, !want, want, out)
			}
			if s == p {
				verifyAXFR(t, s, p.XfrKey.Name, p.XfrKey.Secret)
			} else {
				verifyAXFR(t, s, "", "")
			}
		}
	}

	oldDS := ds()
	oldAnchor := dnstest.DSAnchor(t, oldDS)
	validates("before", oldAnchor, true)

	_, dsAt, err := z.StartRoll()
	if err != nil {
		t.Fatal(err)
	}
	wait("both keys' DNSKEY and signatures", func() bool { return len(apex(dns.TypeDNSKEY)) == 2 && homeSigs() == 2 })
	validates("double signature, the old DS", oldAnchor, true)

	skew.Store(int64(time.Until(dsAt) + 2*time.Second))
	wait("the new key's CDS", func() bool { return ds() != oldDS })
	newAnchor := dnstest.DSAnchor(t, ds())
	validates("CDS switched, the old DS still at the parent", oldAnchor, true)
	validates("CDS switched, the new DS at the parent", newAnchor, true)

	retire, err := z.DSSubmitted()
	if err != nil {
		t.Fatal(err)
	}
	skew.Store(int64(time.Until(retire) + 2*time.Second))
	wait("the old key's retirement", func() bool { return len(apex(dns.TypeDNSKEY)) == 1 && homeSigs() == 1 })
	validates("the old key retired, the new DS", newAnchor, true)
	validates("the old key retired, the old DS", oldAnchor, false)
}
