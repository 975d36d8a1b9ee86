//go:build integration

package zone_test

import (
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/sshdyn/sshdyn/internal/dnstest"
	"github.com/sshdyn/sshdyn/zone"
)

// TestEDNSWithDig runs the EDNS checks of ISC's compliance tests (the DNS
// flag day tests) with dig, against the embedded primary and, for
// comparison, a real Knot serving the same zone: both must answer each
// as the test expects. Then, against the embedded primary alone, NSID
// and a DNS cookie as dig shows them.
func TestEDNSWithDig(t *testing.T) {
	if _, err := exec.LookPath("dig"); err != nil {
		t.Fatal("dig not found: scripts/test.sh installs bind9-dnsutils")
	}
	recs := []string{"home 60 A 192.0.2.1"}
	ours := dnstest.Start(t, "sshdyn", dnstest.Options{Records: recs, Server: func(s *zone.Server) { s.NSID = "ns1.sshdyn" }})
	knot := dnstest.Start(t, "knot", dnstest.Options{Records: recs})
	dig := func(s *dnstest.Server, args ...string) string {
		t.Helper()
		all := append([]string{"@127.0.0.1", "-p", strconv.Itoa(s.Port), "+norec", "+time=2", "+tries=1", "home." + s.Zone, "A"}, args...)
		out, err := exec.Command("dig", all...).CombinedOutput()
		if err != nil {
			t.Fatalf("dig %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	status := regexp.MustCompile(`status: ([A-Z]+)`)
	ednsLine := regexp.MustCompile(`; EDNS: version: (\d+), flags:([^;]*);`)
	for _, c := range []struct {
		name   string
		args   []string
		status string
		opt    bool   // an OPT record in the answer
		flags  string // the OPT's flags as dig prints them
		absent []string
	}{
		{"no EDNS", []string{"+noedns"}, "NOERROR", false, "", nil},
		{"EDNS 0", []string{"+edns=0"}, "NOERROR", true, "", nil},
		{"EDNS 1", []string{"+edns=1", "+noednsneg"}, "BADVERS", true, "", []string{"ANSWER SECTION"}},
		{"unknown option", []string{"+ednsopt=100"}, "NOERROR", true, "", []string{"OPT=100"}},
		{"unknown flag", []string{"+ednsflags=0x80"}, "NOERROR", true, "", []string{"MBZ"}},
		{"DO", []string{"+dnssec"}, "NOERROR", true, " do", nil},
		{"all at once", []string{"+edns=1", "+noednsneg", "+ednsopt=100", "+ednsflags=0x80"}, "BADVERS", true, "", []string{"OPT=100", "MBZ"}},
	} {
		for _, s := range []*dnstest.Server{ours, knot} {
			out := dig(s, c.args...)
			m := status.FindStringSubmatch(out)
			e := ednsLine.FindStringSubmatch(out)
			switch {
			case m == nil || m[1] != c.status:
				t.Errorf("%s, %s: status %v, want %s:\n%s", c.name, s.Kind, m, c.status, out)
			case (e != nil) != c.opt:
				t.Errorf("%s, %s: OPT %v, want %v:\n%s", c.name, s.Kind, e != nil, c.opt, out)
			case e != nil && (e[1] != "0" || strings.TrimSpace(e[2]) != strings.TrimSpace(c.flags)):
				t.Errorf("%s, %s: EDNS version %s flags %q, want 0 and %q:\n%s", c.name, s.Kind, e[1], e[2], c.flags, out)
			}
			for _, a := range c.absent {
				if strings.Contains(out, a) {
					t.Errorf("%s, %s: the answer has %q:\n%s", c.name, s.Kind, a, out)
				}
			}
		}
	}
	if out := dig(ours, "+nsid"); !strings.Contains(out, `NSID: 6e 73 31 2e 73 73 68 64 79 6e ("ns1.sshdyn")`) {
		t.Errorf("+nsid:\n%s", out)
	}
	if out := dig(ours, "+cookie"); !regexp.MustCompile(`COOKIE: [0-9a-f]{16}[0-9a-f]{32} \(good\)`).MatchString(out) {
		t.Errorf("+cookie: want the client cookie and a server cookie dig calls good:\n%s", out)
	}
}

// TestCookiesInteroperate: a server cookie BIND made (cookie-secret,
// SipHash-2-4, RFC 9018) is valid at the embedded primary with the same
// secret: with rrl_rate 1, twenty queries carrying it from the address
// BIND saw are all answered, as a client with a valid server cookie is
// never rate-limited; with a cookie BIND made under another secret they
// are limited.
func TestCookiesInteroperate(t *testing.T) {
	const secret = "e5e973e5a6b2a43f48e7dc849e37bfcf"
	bind := dnstest.Start(t, "bind", dnstest.Options{Records: []string{"home 60 A 192.0.2.1"}, BindOptions: []string{`cookie-secret "` + secret + `";`, "cookie-algorithm siphash24;"}})
	other := dnstest.Start(t, "bind", dnstest.Options{Records: []string{"home 60 A 192.0.2.1"}, BindOptions: []string{`cookie-secret "00112233445566778899aabbccddeeff";`, "cookie-algorithm siphash24;"}})
	ours := dnstest.Start(t, "sshdyn", dnstest.Options{Records: []string{"home 60 A 192.0.2.1"}, Server: func(s *zone.Server) {
		s.CookieSecret = secret
		s.RRL = zone.RRL{Rate: 1, Slip: 0, Window: time.Second}
	}})
	cookieFrom := func(s *dnstest.Server) string {
		t.Helper()
		r := exchange(t, "udp", s.Addr, withEDNS(question("home."+s.Zone+".", dns.TypeA), &dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: "0102030405060708"}), nil)
		c, ok := optionOf[*dns.EDNS0_COOKIE](r)
		if !ok || len(c.Cookie) != 48 {
			t.Fatalf("%s gave no server cookie: %v", s.Kind, r)
		}
		return c.Cookie
	}
	for _, tc := range []struct {
		name  string
		from  *dnstest.Server
		valid bool
	}{{"BIND's, same secret", bind, true}, {"BIND's, another secret", other, false}} {
		q := withEDNS(question("home."+ours.Zone+".", dns.TypeA), &dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: cookieFrom(tc.from)})
		full, _, _ := udpFrom(t, "127.0.0.1", ours.Addr, q, 20, 500*time.Millisecond)
		if tc.valid && full != 20 || !tc.valid && full > 2 {
			t.Errorf("%s: %d of 20 answered at rrl_rate 1", tc.name, full)
		}
	}
}
