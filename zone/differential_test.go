//go:build integration

package zone_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/sshdyn/sshdyn/internal/dnstest"
)

// TestDifferentialUpdates sends the same signed UPDATEs to sshdyn's
// embedded primary and to a real BIND and a real Knot serving the same
// zone with the same key and types, and compares after each: the rcode,
// whether the serial moved, and the whole zone (AXFR). Hand-written
// steps cover RFC 2136's prerequisites (3.2), its update section (3.4:
// adds, deletions of an RRset, a record, a name), CNAME beside other
// data (3.4.2.2), NOTZONE and FORMERR, a large RRset and an owner name
// in mixed case; then 300 random steps. Where the servers differ by
// design, the difference is listed (policy) and documented.
func TestDifferentialUpdates(t *testing.T) {
	types := []string{"A", "AAAA", "TXT", "CNAME", "MX"}
	base := []string{"fixed 300 A 192.0.2.250", "alias 300 CNAME fixed"}
	kinds := []string{"sshdyn", "bind", "knot"}
	servers := make([]*dnstest.Server, len(kinds))
	var wg sync.WaitGroup
	for i, k := range kinds {
		wg.Go(func() {
			servers[i] = dnstest.Start(t, k, dnstest.Options{Records: base, Types: types, TransferWithKey: true})
		})
	}
	wg.Wait()
	for _, s := range servers {
		if s == nil {
			t.FailNow()
		}
	}
	z := servers[0].Zone + "."
	rr := func(s string) dns.RR {
		r, err := dns.NewRR(s)
		if err != nil {
			panic(err)
		}
		return r
	}
	in := func(name string) string { return name + "." + z }

	type step struct {
		name string
		msg  func(m *dns.Msg)
		// policy: kinds whose rcode differs from BIND's by design, and
		// the rcode they give.
		policy map[string]int
	}
	steps := []step{
		{"add A", func(m *dns.Msg) { m.Insert([]dns.RR{rr(in("home") + " 60 A 192.0.2.1")}) }, nil},
		{"add AAAA", func(m *dns.Msg) { m.Insert([]dns.RR{rr(in("home") + " 60 AAAA 2001:db8::1")}) }, nil},
		{"name in use: yes", func(m *dns.Msg) {
			m.NameUsed([]dns.RR{rr(in("home") + " 0 A 0.0.0.0")})
			m.Insert([]dns.RR{rr(in("home") + " 60 TXT \"a\"")})
		}, nil},
		{"name in use: no (NXDOMAIN)", func(m *dns.Msg) {
			m.NameUsed([]dns.RR{rr(in("nothere") + " 0 A 0.0.0.0")})
			m.Insert([]dns.RR{rr(in("home") + " 60 TXT \"b\"")})
		}, nil},
		{"name not in use: it is (YXDOMAIN)", func(m *dns.Msg) {
			m.NameNotUsed([]dns.RR{rr(in("home") + " 0 A 0.0.0.0")})
			m.Insert([]dns.RR{rr(in("home") + " 60 TXT \"c\"")})
		}, nil},
		{"RRset exists, value independent", func(m *dns.Msg) {
			m.RRsetUsed([]dns.RR{rr(in("home") + " 0 A 0.0.0.0")})
			m.RemoveRRset([]dns.RR{rr(in("home") + " 0 A 0.0.0.0")})
			m.Insert([]dns.RR{rr(in("home") + " 60 A 192.0.2.2")})
		}, nil},
		{"RRset exists: no (NXRRSET)", func(m *dns.Msg) {
			m.RRsetUsed([]dns.RR{rr(in("home") + " 0 MX 0 .")})
			m.Insert([]dns.RR{rr(in("home") + " 60 TXT \"d\"")})
		}, nil},
		{"RRset exists, value dependent: wrong value (NXRRSET)", func(m *dns.Msg) {
			m.Used([]dns.RR{rr(in("home") + " 0 A 192.0.2.1")})
			m.Insert([]dns.RR{rr(in("home") + " 60 TXT \"e\"")})
		}, nil},
		{"RRset exists, value dependent: right value", func(m *dns.Msg) {
			m.Used([]dns.RR{rr(in("home") + " 0 A 192.0.2.2")})
			m.Insert([]dns.RR{rr(in("home") + " 60 TXT \"f\"")})
		}, nil},
		{"RRset does not exist, then add", func(m *dns.Msg) {
			m.RRsetNotUsed([]dns.RR{rr(in("home") + " 0 MX 0 .")})
			m.Insert([]dns.RR{rr(in("home") + " 60 MX 10 " + in("fixed"))})
		}, nil},
		{"delete an RRset", func(m *dns.Msg) { m.RemoveRRset([]dns.RR{rr(in("home") + " 0 TXT \"\"")}) }, nil},
		{"delete one record", func(m *dns.Msg) { m.Remove([]dns.RR{rr(in("home") + " 0 AAAA 2001:db8::1")}) }, nil},
		{"delete what is not there (no change)", func(m *dns.Msg) { m.RemoveRRset([]dns.RR{rr(in("nothere") + " 0 A 0.0.0.0")}) }, nil},
		{"a CNAME beside an address is ignored", func(m *dns.Msg) { m.Insert([]dns.RR{rr(in("home") + " 60 CNAME " + in("fixed"))}) }, nil},
		{"an address beside a CNAME is ignored", func(m *dns.Msg) { m.Insert([]dns.RR{rr(in("alias") + " 60 A 192.0.2.9")}) }, nil},
		{"a CNAME replaces a CNAME", func(m *dns.Msg) { m.Insert([]dns.RR{rr(in("alias") + " 60 CNAME " + in("home"))}) }, nil},
		{"NOTZONE", func(m *dns.Msg) { m.Insert([]dns.RR{rr("elsewhere.example.org. 60 A 192.0.2.3")}) }, nil},
		{"FORMERR: a prerequisite with a TTL", func(m *dns.Msg) {
			p := rr(in("home") + " 0 A 192.0.2.2")
			m.Answer = append(m.Answer, p)
			p.Header().Ttl = 60
		}, nil},
		{"a large RRset", func(m *dns.Msg) {
			for i := range 40 {
				m.Insert([]dns.RR{rr(fmt.Sprintf("%s 60 TXT \"value %02d %s\"", in("big"), i, strings.Repeat("x", 40)))})
			}
		}, nil},
		{"an owner name in mixed case", func(m *dns.Msg) { m.Insert([]dns.RR{rr("MiXeD." + z + " 60 A 192.0.2.77")}) }, nil},
		{"the same name, other case, replaces", func(m *dns.Msg) {
			m.RemoveRRset([]dns.RR{rr("mixed." + z + " 0 A 0.0.0.0")})
			m.Insert([]dns.RR{rr("MIXED." + z + " 60 A 192.0.2.78")})
		}, nil},
		// Knot's acl with update-type refuses a deletion of all a
		// name's RRsets (type ANY); the test then deletes them type by
		// type there.
		{"delete a name", func(m *dns.Msg) {
			m.RemoveName([]dns.RR{&dns.ANY{Hdr: dns.RR_Header{Name: in("home"), Rrtype: dns.TypeANY}}})
		}, map[string]int{"knot": dns.RcodeNotAuth}},
		// Knot answers what its ACL refuses NOTAUTH (TSIG error BADKEY),
		// as if it did not know the key.
		{"a type the key may not change (REFUSED)", func(m *dns.Msg) { m.Insert([]dns.RR{rr(in("srv") + " 60 SRV 0 0 443 " + in("home"))}) }, map[string]int{"knot": dns.RcodeNotAuth}},
		// Policy: the embedded primary changes nothing at the apex
		// (sshdyn's hosts are below it); BIND's zonesub and Knot's acl
		// allow it.
		{"an address at the apex", func(m *dns.Msg) { m.Insert([]dns.RR{rr(z + " 60 A 192.0.2.5")}) }, map[string]int{"sshdyn": dns.RcodeRefused}},
	}

	type outcome struct {
		rcode int
		moved bool
		zone  []string
	}
	apply := func(s *dnstest.Server, build func(*dns.Msg)) outcome {
		before := s.Serial(t)
		m := new(dns.Msg)
		m.SetUpdate(z)
		build(m)
		m.SetTsig(s.Key.Name, s.Key.Algorithm, 300, time.Now().Unix())
		c := &dns.Client{Net: "tcp", Timeout: 5 * time.Second, TsigSecret: map[string]string{s.Key.Name: s.Key.Secret}}
		r, _, err := c.Exchange(m, s.Addr)
		// miekg/dns's client does not verify a NOTAUTH answer (how Knot
		// refuses what its ACL does not allow), and says so: the rcode
		// is what is compared.
		if err != nil && !(errors.Is(err, dns.ErrAuth) && r != nil) {
			t.Fatalf("%s: %v", s.Kind, err)
		}
		return outcome{r.Rcode, s.Serial(t) != before, content(s.AXFR(t))}
	}
	compare := func(label string, policy map[string]int, build func(*dns.Msg)) {
		t.Helper()
		out := make([]outcome, len(servers))
		for i, s := range servers {
			out[i] = apply(s, build)
		}
		ref := out[1] // BIND's
		for i, s := range servers {
			want := ref.rcode
			if r, ok := policy[s.Kind]; ok {
				want = r
			}
			if out[i].rcode != want {
				t.Errorf("%s: %s answered %s, BIND %s", label, s.Kind, dns.RcodeToString[out[i].rcode], dns.RcodeToString[ref.rcode])
			}
			if _, ok := policy[s.Kind]; ok {
				continue
			}
			if out[i].moved != ref.moved {
				t.Errorf("%s: %s's serial moved %v, BIND's %v", label, s.Kind, out[i].moved, ref.moved)
			}
			if !slices.Equal(out[i].zone, ref.zone) {
				t.Errorf("%s: %s's zone differs from BIND's:\n%s", label, s.Kind, diff(out[i].zone, ref.zone))
			}
		}
	}
	for _, st := range steps {
		compare(st.name, st.policy, st.msg)
		if st.name == "delete a name" {
			apply(servers[2], func(m *dns.Msg) {
				for _, typ := range types {
					m.RemoveRRset([]dns.RR{&dns.ANY{Hdr: dns.RR_Header{Name: in("home"), Rrtype: dns.StringToType[typ]}}})
				}
			})
		}
	}
	// Undo the apex policy step where it applied, so that the zones
	// agree again before the random steps.
	compare("delete the apex address", map[string]int{"sshdyn": dns.RcodeRefused}, func(m *dns.Msg) { m.RemoveRRset([]dns.RR{rr(z + " 0 A 0.0.0.0")}) })

	// Random steps: a few names, types and values, so that they meet.
	rnd := rand.New(rand.NewPCG(7, 35))
	names := []string{"r1", "r2", "r3", "alias"}
	values := func(t string) string {
		switch t {
		case "A":
			return fmt.Sprintf("192.0.2.%d", 1+rnd.IntN(3))
		case "AAAA":
			return fmt.Sprintf("2001:db8::%d", 1+rnd.IntN(3))
		case "TXT":
			return fmt.Sprintf("\"v%d\"", rnd.IntN(3))
		case "MX":
			return fmt.Sprintf("%d %s", 10*(1+rnd.IntN(2)), in("fixed"))
		}
		return in(names[rnd.IntN(3)])
	}
	for i := range 300 {
		var parts []string
		build := func(m *dns.Msg) {}
		nOps := 1 + rnd.IntN(3)
		var ops []func(m *dns.Msg)
		for range nOps {
			name, typ := in(names[rnd.IntN(len(names))]), types[rnd.IntN(len(types))]
			r := rr(name + " 60 " + typ + " " + values(typ))
			switch rnd.IntN(7) {
			case 0, 1, 2:
				parts = append(parts, "add "+r.String())
				ops = append(ops, func(m *dns.Msg) { m.Insert([]dns.RR{dns.Copy(r)}) })
			case 3:
				parts = append(parts, "delete rrset "+name+" "+typ)
				ops = append(ops, func(m *dns.Msg) { m.RemoveRRset([]dns.RR{dns.Copy(r)}) })
			case 4:
				parts = append(parts, "delete "+r.String())
				ops = append(ops, func(m *dns.Msg) { m.Remove([]dns.RR{dns.Copy(r)}) })
			case 5:
				parts = append(parts, "prereq exists "+name+" "+typ)
				ops = append(ops, func(m *dns.Msg) { m.RRsetUsed([]dns.RR{dns.Copy(r)}) })
			case 6:
				parts = append(parts, "prereq value "+r.String())
				ops = append(ops, func(m *dns.Msg) { m.Used([]dns.RR{dns.Copy(r)}) })
			}
		}
		build = func(m *dns.Msg) {
			for _, op := range ops {
				op(m)
			}
		}
		compare(fmt.Sprintf("random step %d (%s)", i, strings.Join(parts, "; ")), nil, build)
		if t.Failed() {
			return
		}
	}
}

// content is a zone's records as text, lower case, sorted, without the
// SOA (its serial is each server's) and dnstest's per-instance token.
func content(rrs []dns.RR) []string {
	var out []string
	for _, r := range rrs {
		if r.Header().Rrtype == dns.TypeSOA || strings.HasPrefix(strings.ToLower(r.Header().Name), "_token.") {
			continue
		}
		out = append(out, strings.ToLower(strings.ReplaceAll(r.String(), "\t", " ")))
	}
	slices.Sort(out)
	return out
}

// diff lists the lines only one side has.
func diff(got, want []string) string {
	var b strings.Builder
	for _, g := range got {
		if !slices.Contains(want, g) {
			b.WriteString("  + " + g + "\n")
		}
	}
	for _, w := range want {
		if !slices.Contains(got, w) {
			b.WriteString("  - " + w + "\n")
		}
	}
	return b.String()
}
