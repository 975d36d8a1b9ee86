//go:build integration

package zone_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/sshdyn/sshdyn/internal/dnstest"
)

// wildcardZone holds wildcards in each position RFC 4592 sets rules
// for: beside an existing name, above an existing name and an empty
// non-terminal, a CNAME at a wildcard, a delegation below a wildcard.
var wildcardZone = []string{
	"home 60 A 192.0.2.10",
	"*.home 60 A 192.0.2.10",
	"*.home 60 AAAA 2001:db8::10",
	"sub.home 60 TXT \"exists\"",
	"a.ent.home 60 A 192.0.2.20",
	"*.cn 60 CNAME home",
	"deleg.home 60 NS ns.example.net.",
}

// TestWildcardsLikeBINDAndKnot: the embedded primary answers queries
// about a zone with wildcards as BIND and Knot do: the same rcode, the
// same authoritative flag, the same answer records, and the same kind of
// authority section (SOA for a negative answer, NS for a referral).
func TestWildcardsLikeBINDAndKnot(t *testing.T) {
	servers := map[string]*dnstest.Server{}
	for _, kind := range []string{"bind", "knot", "sshdyn"} {
		servers[kind] = dnstest.Start(t, kind, dnstest.Options{Records: wildcardZone})
	}
	z := servers["sshdyn"].Zone + "."
	queries := []struct {
		name string
		t    uint16
	}{
		{"x.home", dns.TypeA}, {"x.home", dns.TypeAAAA}, {"x.home", dns.TypeTXT}, {"a.b.home", dns.TypeA},
		{"*.home", dns.TypeA}, {"home", dns.TypeAAAA}, {"sub.home", dns.TypeA}, {"x.sub.home", dns.TypeA},
		{"ent.home", dns.TypeA}, {"x.ent.home", dns.TypeA}, {"a.ent.home", dns.TypeA},
		{"x.cn", dns.TypeA}, {"x.cn", dns.TypeCNAME}, {"y.x.cn", dns.TypeAAAA},
		{"x.deleg.home", dns.TypeA}, {"nothere", dns.TypeA}, {"x.nothere", dns.TypeA},
	}
	for _, q := range queries {
		name := q.name + "." + z
		var want string
		for _, kind := range []string{"bind", "knot", "sshdyn"} {
			got := ask(t, servers[kind].Addr, name, q.t)
			if kind == "bind" {
				want = got
				continue
			}
			if got != want {
				t.Errorf("%s %s:\n  %s: %s\n  bind: %s", name, dns.TypeToString[q.t], kind, got, want)
			}
		}
		if q.name == "x.home" && q.t == dns.TypeA && !strings.Contains(want, "x.home."+z+`\t60\tin\ta\t192.0.2.10`) {
			t.Errorf("BIND's own answer for x.home A is not the synthesized record: %s", want)
		}
	}
}

// ask returns what matters of the answer to name/t: rcode, AA, the
// answer's records (sorted), and the authority section's types.
func ask(t *testing.T, addr, name string, qt uint16) string {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(name, qt)
	m.RecursionDesired = false
	r, _, err := (&dns.Client{Net: "tcp"}).Exchange(m, addr)
	if err != nil {
		t.Fatalf("%s %s at %s: %v", name, dns.TypeToString[qt], addr, err)
	}
	var answer, authority []string
	for _, rr := range r.Answer {
		answer = append(answer, strings.ToLower(rr.String()))
	}
	slices.Sort(answer)
	for _, rr := range r.Ns {
		authority = append(authority, dns.TypeToString[rr.Header().Rrtype])
	}
	slices.Sort(authority)
	authority = slices.Compact(authority)
	if len(answer) > 0 && r.Rcode == dns.RcodeSuccess {
		authority = nil // a positive answer: servers differ in what they add (BIND's NS), not in what is true
	}
	return fmt.Sprintf("%s aa=%v answer=%q authority=%v", dns.RcodeToString[r.Rcode], r.Authoritative, answer, authority)
}
