package zone_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/sshdyn/sshdyn/internal/dnstest"
	"github.com/sshdyn/sshdyn/tsig"
	"github.com/sshdyn/sshdyn/update"
	"github.com/sshdyn/sshdyn/zone"
)

func rr(s string) dns.RR {
	r, err := dns.NewRR(s)
	if err != nil {
		panic(err)
	}
	return r
}

// TestUpdateProcessing sends hand-built UPDATE messages and checks the
// rcode of each RFC 2136 section 3 rule and what the zone holds after.
func TestUpdateProcessing(t *testing.T) {
	z := "dyn.example.com."
	base := []string{
		"two 300 A 192.0.2.1", "two 300 A 192.0.2.2",
		"one 300 A 192.0.2.9", "one 300 TXT \"keep\"",
		"alias 300 CNAME one",
	}
	cases := []struct {
		name    string
		prereq  []dns.RR
		updates []dns.RR
		rcode   int
		check   string   // name whose A records are compared with want
		want    []string // its A records after the update
	}{
		{"name in use, true", []dns.RR{&dns.ANY{Hdr: dns.RR_Header{Name: "one." + z, Rrtype: dns.TypeANY, Class: dns.ClassANY}}},
			[]dns.RR{rr("one." + z + " 60 IN A 192.0.2.10")}, dns.RcodeSuccess, "one", []string{"192.0.2.10", "192.0.2.9"}},
		{"name in use, false", []dns.RR{&dns.ANY{Hdr: dns.RR_Header{Name: "none." + z, Rrtype: dns.TypeANY, Class: dns.ClassANY}}},
			[]dns.RR{rr("none." + z + " 60 IN A 192.0.2.10")}, dns.RcodeNameError, "none", nil},
		{"name not in use, false", []dns.RR{&dns.ANY{Hdr: dns.RR_Header{Name: "one." + z, Rrtype: dns.TypeANY, Class: dns.ClassNONE}}},
			[]dns.RR{rr("one." + z + " 60 IN A 192.0.2.10")}, dns.RcodeYXDomain, "one", []string{"192.0.2.9"}},
		{"RRset exists, false", []dns.RR{&dns.A{Hdr: dns.RR_Header{Name: "one." + z, Rrtype: dns.TypeAAAA, Class: dns.ClassANY}}},
			[]dns.RR{rr("one." + z + " 60 IN A 192.0.2.10")}, dns.RcodeNXRrset, "one", []string{"192.0.2.9"}},
		{"RRset does not exist, false", []dns.RR{&dns.A{Hdr: dns.RR_Header{Name: "one." + z, Rrtype: dns.TypeA, Class: dns.ClassNONE}}},
			[]dns.RR{rr("one." + z + " 60 IN A 192.0.2.10")}, dns.RcodeYXRrset, "one", []string{"192.0.2.9"}},
		{"value-dependent, whole RRset", []dns.RR{rr("two." + z + " 0 IN A 192.0.2.2"), rr("two." + z + " 0 IN A 192.0.2.1")},
			[]dns.RR{&dns.ANY{Hdr: dns.RR_Header{Name: "two." + z, Rrtype: dns.TypeA, Class: dns.ClassANY}}, rr("two." + z + " 60 IN A 192.0.2.3")}, dns.RcodeSuccess, "two", []string{"192.0.2.3"}},
		{"value-dependent, part of the RRset", []dns.RR{rr("two." + z + " 0 IN A 192.0.2.1")},
			[]dns.RR{rr("two." + z + " 60 IN A 192.0.2.3")}, dns.RcodeNXRrset, "two", []string{"192.0.2.1", "192.0.2.2"}},
		{"prerequisite with a TTL", []dns.RR{rr("one." + z + " 60 IN A 192.0.2.9")},
			nil, dns.RcodeFormatError, "one", []string{"192.0.2.9"}},
		{"prerequisite outside the zone", []dns.RR{&dns.ANY{Hdr: dns.RR_Header{Name: "example.org.", Rrtype: dns.TypeANY, Class: dns.ClassANY}}},
			nil, dns.RcodeNotZone, "one", []string{"192.0.2.9"}},
		{"update outside the zone", nil, []dns.RR{rr("x.example.org. 60 IN A 192.0.2.10")}, dns.RcodeNotZone, "one", []string{"192.0.2.9"}},
		{"type outside the policy, all or nothing", nil,
			[]dns.RR{rr("one." + z + " 60 IN A 192.0.2.10"), rr("one." + z + " 60 IN TXT \"no\"")}, dns.RcodeRefused, "one", []string{"192.0.2.9"}},
		{"the apex", nil, []dns.RR{rr(z + " 60 IN A 192.0.2.10")}, dns.RcodeRefused, "one", []string{"192.0.2.9"}},
		{"meta type added", nil, []dns.RR{&dns.ANY{Hdr: dns.RR_Header{Name: "one." + z, Rrtype: dns.TypeANY, Class: dns.ClassINET, Ttl: 60}}},
			dns.RcodeFormatError, "one", []string{"192.0.2.9"}},
		{"delete with a TTL", nil, []dns.RR{&dns.ANY{Hdr: dns.RR_Header{Name: "one." + z, Rrtype: dns.TypeA, Class: dns.ClassANY, Ttl: 60}}},
			dns.RcodeFormatError, "one", []string{"192.0.2.9"}},
		{"delete one record", nil, []dns.RR{&dns.A{Hdr: dns.RR_Header{Name: "two." + z, Rrtype: dns.TypeA, Class: dns.ClassNONE}, A: netip.MustParseAddr("192.0.2.1").AsSlice()}},
			dns.RcodeSuccess, "two", []string{"192.0.2.2"}},
		{"delete all: only the policy's types", nil, []dns.RR{&dns.ANY{Hdr: dns.RR_Header{Name: "one." + z, Rrtype: dns.TypeANY, Class: dns.ClassANY}}},
			dns.RcodeSuccess, "one", nil},
		{"A beside a CNAME is ignored", nil, []dns.RR{rr("alias." + z + " 60 IN A 192.0.2.10")}, dns.RcodeSuccess, "alias", []string{"192.0.2.9"}}, // one's, through the CNAME
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := dnstest.Start(t, "sshdyn", dnstest.Options{Zone: z, Records: base})
			serial := p.Serial(t)
			m := new(dns.Msg)
			m.SetUpdate(z)
			m.Answer = tc.prereq
			m.Ns = tc.updates
			r := exchange(t, "tcp", p.Addr, m, &p.Key)
			if r.Rcode != tc.rcode {
				t.Fatalf("rcode %s, want %s", dns.RcodeToString[r.Rcode], dns.RcodeToString[tc.rcode])
			}
			if r.IsTsig() == nil {
				t.Error("answer to a signed update is not signed")
			}
			got := p.Lookup(t, tc.check+"."+z, dns.TypeA)
			if !slices.Equal(got, tc.want) && !(len(got) == 0 && len(tc.want) == 0) {
				t.Errorf("%s A = %v, want %v", tc.check, got, tc.want)
			}
			changed := tc.rcode == dns.RcodeSuccess && tc.name != "A beside a CNAME is ignored"
			if s := p.Serial(t); changed && s != serial+1 || !changed && s != serial {
				t.Errorf("serial %d -> %d (changed: %v)", serial, s, changed)
			}
			if tc.name == "delete all: only the policy's types" {
				if txt := p.Lookup(t, "one."+z, dns.TypeTXT); len(txt) != 1 {
					t.Errorf("TXT = %v: deleting all of a name took a type outside the policy", txt)
				}
			}
		})
	}
}

func TestUnsignedUpdateIsRefused(t *testing.T) {
	p := dnstest.Start(t, "sshdyn", dnstest.Options{})
	m := new(dns.Msg)
	m.SetUpdate(p.Zone + ".")
	m.Insert([]dns.RR{rr("x." + p.Zone + ". 60 IN A 192.0.2.1")})
	r := exchange(t, "tcp", p.Addr, m, nil)
	if r.Rcode != dns.RcodeRefused {
		t.Fatalf("rcode %s, want REFUSED", dns.RcodeToString[r.Rcode])
	}
	if got := p.Lookup(t, "x."+p.Zone, dns.TypeA); len(got) != 0 {
		t.Fatalf("unsigned update applied: %v", got)
	}
}

// TestSpoofableLogLinesAreLimited: unsigned and badly signed UPDATEs,
// which anyone can send over UDP with any source address, log a bounded
// number of lines (audit, issue 22), not one each.
func TestSpoofableLogLinesAreLimited(t *testing.T) {
	p := dnstest.Start(t, "sshdyn", dnstest.Options{})
	wrong := tsig.Key{Name: p.Key.Name, Algorithm: p.Key.Algorithm, Secret: "d3Jvbmctc2VjcmV0LXdyb25nLXNlY3JldA=="}
	const n = 300
	for i := range n {
		m := new(dns.Msg)
		m.SetUpdate(p.Zone + ".")
		m.Insert([]dns.RR{rr("x." + p.Zone + ". 60 IN A 192.0.2.1")})
		c := &dns.Client{Net: "udp", Timeout: 2 * time.Second}
		if i%2 == 1 {
			c.TsigSecret = map[string]string{wrong.Name: wrong.Secret}
			m.SetTsig(wrong.Name, wrong.Algorithm, 300, time.Now().Unix())
		}
		r, _, err := c.Exchange(m, p.Addr)
		if r == nil || r.Rcode == dns.RcodeSuccess {
			t.Fatalf("packet %d: reply %v, %v; want a refusal", i, r, err)
		}
	}
	out := p.Output()
	for _, msg := range []string{"unsigned update refused", "TSIG verification failed"} {
		if got := strings.Count(out, msg); got < 1 || got > 10 {
			t.Errorf("%d lines %q for %d packets, want 1 to 10", got, msg, n/2)
		}
	}
	if got := p.Lookup(t, "x."+p.Zone, dns.TypeA); len(got) != 0 {
		t.Fatalf("update applied: %v", got)
	}
}

// TestNoOpReplaceKeepsSerial: delete-and-add of the same value is not a
// change (as in BIND and Knot), so sshdyn's check-first flow and a plain
// replace both leave the serial alone.
func TestNoOpReplaceKeepsSerial(t *testing.T) {
	p := dnstest.Start(t, "sshdyn", dnstest.Options{Records: []string{"home 60 A 192.0.2.1"}})
	c := &update.Client{Server: p.Addr, Zone: p.Zone, Key: p.Key}
	serial := p.Serial(t)
	rec := update.Record{Name: "home." + p.Zone, Addr: netip.MustParseAddr("192.0.2.1"), TTL: 60}
	if err := c.Replace(context.Background(), rec); err != nil {
		t.Fatal(err)
	}
	if s := p.Serial(t); s != serial {
		t.Fatalf("serial %d -> %d on a no-op replace", serial, s)
	}
	rec.TTL = 120 // a TTL change is a change
	if err := c.Replace(context.Background(), rec); err != nil {
		t.Fatal(err)
	}
	if s := p.Serial(t); s != serial+1 {
		t.Fatalf("serial %d -> %d on a TTL change", serial, s)
	}
}

// TestConcurrentUpdatesAreDurable: many clients update at once; every
// acknowledged change is in the zone file, which parses, and the serial
// rose once per change.
func TestConcurrentUpdatesAreDurable(t *testing.T) {
	p := dnstest.Start(t, "sshdyn", dnstest.Options{})
	c := &update.Client{Server: p.Addr, Zone: p.Zone, Key: p.Key}
	serial := p.Serial(t)
	const workers, each = 8, 25
	var wg sync.WaitGroup
	errs := make(chan error, workers*each)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				rec := update.Record{Name: fmt.Sprintf("h%d.%s", w, p.Zone), Addr: netip.AddrFrom4([4]byte{192, 0, 2, byte(i + 1)}), TTL: 60}
				if _, _, err := c.Set(context.Background(), rec, nil); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if s := p.Serial(t); s != serial+workers*each {
		t.Errorf("serial %d -> %d after %d changes", serial, s, workers*each)
	}
	// The file alone: load it as a restart would.
	file := filepath.Join(p.Dir, p.Zone+".zone")
	z, err := zone.Load(zone.Config{Origin: p.Zone, File: file})
	if err != nil {
		b, _ := os.ReadFile(file)
		t.Fatalf("zone file does not load: %v\n%s", err, b)
	}
	if z.Serial() != serial+workers*each {
		t.Errorf("serial on disk %d, want %d", z.Serial(), serial+workers*each)
	}
	for w := 0; w < workers; w++ {
		if got := p.Lookup(t, fmt.Sprintf("h%d.%s", w, p.Zone), dns.TypeA); !slices.Equal(got, []string{fmt.Sprintf("192.0.2.%d", each)}) {
			t.Errorf("h%d A = %v", w, got)
		}
	}
}

func TestLoadErrors(t *testing.T) {
	head := "$ORIGIN dyn.example.com.\n$TTL 60\n"
	soa := "@ SOA ns hostmaster 1 3600 600 86400 60\n"
	cases := []struct{ name, text, want string }{
		{"syntax", head + soa + "@ NS ns\nhome A 999.1.1.1\n", "z.zone"},
		{"no SOA", head + "@ NS ns\n", "no SOA record"},
		{"no NS", head + soa, "no NS record"},
		{"outside the zone", head + soa + "@ NS ns\nwww.example.org. A 192.0.2.1\n", "not in zone"},
		{"wildcard delegation", head + soa + "@ NS ns\n*.home NS ns.example.net.\n", "a wildcard cannot hold NS records"},
		{"CNAME and other data", head + soa + "@ NS ns\nx CNAME y\nx A 192.0.2.1\n", "CNAME and other data"},
		{"class", head + soa + "@ NS ns\nx CH A 192.0.2.1\n", "only IN"},
		{"two SOA", head + soa + "@ SOA ns h 2 1 1 1 1\n@ NS ns\n", "more than one SOA"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "z.zone")
			if err := os.WriteFile(file, []byte(tc.text), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := zone.Load(zone.Config{Origin: "dyn.example.com", File: file})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
	t.Run("missing file", func(t *testing.T) {
		_, err := zone.Load(zone.Config{Origin: "dyn.example.com", File: "/nonexistent/z.zone"})
		if err == nil || !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("err = %v", err)
		}
	})
}
