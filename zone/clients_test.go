//go:build integration

package zone_test

import (
	"context"
	"fmt"
	"net/netip"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/sshdyn/sshdyn/internal/dnstest"
	"github.com/sshdyn/sshdyn/update"
	"github.com/sshdyn/sshdyn/zone"
)

// run runs a real client (dig, kdig, nsupdate, knsupdate) with stdin and
// returns its combined output and exit status.
func run(t *testing.T, stdin string, name string, args ...string) (string, int) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		t.Fatalf("%s not found: scripts/test.sh installs it", name)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return string(out), code
}

// TestDigAndKdig queries the embedded primary with the two real resolvers'
// tools, over UDP and TCP, IPv4 and IPv6.
func TestDigAndKdig(t *testing.T) {
	p := dnstest.Start(t, "sshdyn", dnstest.Options{Records: records})
	port := strconv.Itoa(p.Port)
	home := "home." + p.Zone
	cases := []struct {
		name string
		tool string
		args []string
		want []string
	}{
		{"dig A", "dig", []string{"@127.0.0.1", "-p", port, "+norec", home, "A"}, []string{"status: NOERROR", "flags: qr aa;", "192.0.2.1"}},
		{"dig AAAA over IPv6 and TCP", "dig", []string{"-6", "@::1", "-p", port, "+tcp", "+norec", home, "AAAA"}, []string{"status: NOERROR", "2001:db8::1"}},
		{"dig NXDOMAIN", "dig", []string{"@127.0.0.1", "-p", port, "+norec", "nothere." + p.Zone, "A"}, []string{"status: NXDOMAIN", "flags: qr aa;", "IN\tSOA"}},
		{"dig NODATA", "dig", []string{"@127.0.0.1", "-p", port, "+norec", home, "MX"}, []string{"status: NOERROR", "ANSWER: 0", "AUTHORITY: 1"}},
		{"dig refused", "dig", []string{"@127.0.0.1", "-p", port, "+norec", "example.org", "A"}, []string{"status: REFUSED"}},
		{"dig truncated, no retry", "dig", []string{"@127.0.0.1", "-p", port, "+norec", "+ignore", "+noedns", "big." + p.Zone, "TXT"}, []string{"flags: qr aa tc;"}},
		{"dig truncated, retried over TCP", "dig", []string{"@127.0.0.1", "-p", port, "+norec", "+noedns", "big." + p.Zone, "TXT"}, []string{"Truncated, retrying in TCP mode", "ANSWER: 20"}},
		{"kdig A", "kdig", []string{"@127.0.0.1", "-p", port, "+norec", home, "A"}, []string{"status: NOERROR", "Flags: qr aa;", "192.0.2.1"}},
		{"kdig TCP IPv6", "kdig", []string{"@::1", "-p", port, "+tcp", "+norec", home, "AAAA"}, []string{"status: NOERROR", "2001:db8::1"}},
		{"kdig NXDOMAIN", "kdig", []string{"@127.0.0.1", "-p", port, "nothere." + p.Zone, "A"}, []string{"status: NXDOMAIN"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out, code := run(t, "", tc.tool, tc.args...)
			if code != 0 {
				t.Fatalf("%s exited %d:\n%s", tc.tool, code, out)
			}
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("%s output lacks %q:\n%s", tc.tool, w, out)
				}
			}
		})
	}
}

// TestNsupdateAndKnsupdate updates the embedded primary with BIND's and
// Knot's update clients, signed with the key file sshdyn uses.
func TestNsupdateAndKnsupdate(t *testing.T) {
	p := dnstest.Start(t, "sshdyn", dnstest.Options{Records: []string{"home 60 A 192.0.2.1"}})
	port := strconv.Itoa(p.Port)
	ykey := "hmac-sha256:" + strings.TrimSuffix(p.Key.Name, ".") + ":" + p.Key.Secret
	script := func(lines ...string) string {
		return "server 127.0.0.1 " + port + "\nzone " + p.Zone + ".\n" + strings.Join(lines, "\n") + "\nsend\n"
	}
	cases := []struct {
		name   string
		tool   string
		args   []string
		script string
		ok     bool
		want   string // in the output when not ok
		host   string
		a      []string
	}{
		{"nsupdate -k key file adds", "nsupdate", []string{"-k", p.KeyFile}, script("update add n1." + p.Zone + ". 60 A 192.0.2.10"), true, "", "n1", []string{"192.0.2.10"}},
		{"nsupdate -y replaces", "nsupdate", []string{"-y", ykey}, script("update delete home."+p.Zone+". A", "update add home."+p.Zone+". 60 A 192.0.2.2"), true, "", "home", []string{"192.0.2.2"}},
		{"nsupdate prerequisite fails", "nsupdate", []string{"-y", ykey}, script("prereq yxrrset home."+p.Zone+". A 192.0.2.99", "update add home."+p.Zone+". 60 A 192.0.2.3"), false, "NXRRSET", "home", []string{"192.0.2.2"}},
		{"nsupdate TXT outside the policy", "nsupdate", []string{"-y", ykey}, script("update add t." + p.Zone + ". 60 TXT hello"), false, "REFUSED", "t", nil},
		{"nsupdate unsigned", "nsupdate", nil, script("update add u." + p.Zone + ". 60 A 192.0.2.4"), false, "REFUSED", "u", nil},
		{"nsupdate wrong secret", "nsupdate", []string{"-y", "hmac-sha256:" + strings.TrimSuffix(p.Key.Name, ".") + ":c2VjcmV0LXRoYXQtdGhlLXNlcnZlci1kb2VzLW5vdC1rbm93"}, script("update add w." + p.Zone + ". 60 A 192.0.2.5"), false, "NOTAUTH", "w", nil},
		// Wildcards are served (RFC 4592) and may be updated; what the
		// loader refuses (audit L2: a wildcard delegation) is refused,
		// not written.
		{"nsupdate wildcard below a host", "nsupdate", []string{"-k", p.KeyFile}, script("update add *.home." + p.Zone + ". 60 A 192.0.2.7"), true, "", "anything.home", []string{"192.0.2.7"}},
		{"knsupdate wildcard NS", "knsupdate", []string{"-y", ykey}, script("update add *.home." + p.Zone + ". 60 NS ns.example.net."), false, "REFUSED", "*.home", []string{"192.0.2.7"}},
		{"knsupdate adds AAAA", "knsupdate", []string{"-y", ykey}, script("update add k1." + p.Zone + ". 60 AAAA 2001:db8::10"), true, "", "k1", nil},
		{"knsupdate deletes", "knsupdate", []string{"-y", ykey}, script("update delete n1." + p.Zone + ". A"), true, "", "n1", nil},
		{"knsupdate prerequisite nxdomain fails", "knsupdate", []string{"-y", ykey}, script("prereq nxdomain home."+p.Zone+".", "update add home."+p.Zone+". 60 A 192.0.2.6"), false, "YXDOMAIN", "home", []string{"192.0.2.2"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			serial := p.Serial(t)
			out, code := run(t, tc.script, tc.tool, tc.args...)
			if tc.ok && code != 0 {
				t.Fatalf("%s exited %d:\n%s", tc.tool, code, out)
			}
			if !tc.ok && (code == 0 || !strings.Contains(out, tc.want)) {
				t.Fatalf("%s exited %d, want a failure naming %s:\n%s", tc.tool, code, tc.want, out)
			}
			if got := p.Lookup(t, tc.host+"."+p.Zone, dns.TypeA); !slices.Equal(got, tc.a) && !(len(got) == 0 && len(tc.a) == 0) {
				t.Errorf("%s A = %v, want %v", tc.host, got, tc.a)
			}
			if s := p.Serial(t); tc.ok && s != serial+1 || !tc.ok && s != serial {
				t.Errorf("serial %d -> %d", serial, s)
			}
		})
	}
	if got := p.Lookup(t, "k1."+p.Zone, dns.TypeAAAA); !slices.Equal(got, []string{"2001:db8::10"}) {
		t.Errorf("k1 AAAA = %v after knsupdate", got)
	}
	// Every acknowledged change left a file the loader (serve, check)
	// accepts.
	if _, err := zone.Load(zone.Config{Origin: p.Zone, File: filepath.Join(p.Dir, p.Zone+".zone")}); err != nil {
		t.Errorf("the zone file no longer loads: %v", err)
	}
}

// TestSecondaries: real BIND and Knot secondaries transfer the zone (2,000
// names) from the embedded primary (TSIG-signed AXFR), and follow each
// update within seconds of its NOTIFY by IXFR: their logs say the answer
// was incremental, and it held the change's six records, not the zone.
func TestSecondaries(t *testing.T) {
	for _, kind := range []string{"bind", "knot"} {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			recs := []string{"home 60 A 192.0.2.1"}
			for i := range 2000 {
				recs = append(recs, fmt.Sprintf("fill%d 60 A 198.51.%d.%d", i, i/250, i%250+1))
			}
			p, sec := dnstest.StartWithSecondary(t, kind, dnstest.Options{Records: recs})
			host := "home." + p.Zone
			if got := sec.Lookup(t, host, dns.TypeA); !slices.Equal(got, []string{"192.0.2.1"}) {
				t.Fatalf("secondary serves A = %v after the first transfer", got)
			}
			c := &update.Client{Server: p.Addr, Zone: p.Zone, Key: p.Key}
			for i, addr := range []string{"198.51.100.1", "198.51.100.2"} {
				rec := update.Record{Name: host, Addr: netip.MustParseAddr(addr), TTL: 60}
				if _, _, err := c.Set(context.Background(), rec, nil); err != nil {
					t.Fatal(err)
				}
				start := time.Now()
				for !slices.Equal(sec.Lookup(t, host, dns.TypeA), []string{addr}) {
					if time.Since(start) > 10*time.Second {
						t.Fatalf("update %d: secondary still serves %v after 10s", i+1, sec.Lookup(t, host, dns.TypeA))
					}
					time.Sleep(20 * time.Millisecond)
				}
				t.Logf("update %d reached the %s secondary in %v", i+1, kind, time.Since(start).Round(time.Millisecond))
				if ps, ss := p.Serial(t), sec.Serial(t); ps != ss {
					t.Errorf("serial: primary %d, secondary %d", ps, ss)
				}
			}
			// One AXFR, then one IXFR per update, each a condensed
			// difference of six records (RFC 1995 4).
			out := sec.Output()
			var incremental int
			switch kind {
			case "bind": // logged at debug level 3
				incremental = strings.Count(out, "got incremental response")
				if n := strings.Count(out, "Transfer completed: 1 messages, 6 records"); n != incremental {
					t.Errorf("%d of %d incremental transfers held six records", n, incremental)
				}
			case "knot":
				for _, m := range regexp.MustCompile(`IXFR, incoming, .* finished, .* (\d+) bytes`).FindAllStringSubmatch(out, -1) {
					incremental++
					if n, _ := strconv.Atoi(m[1]); n > 1000 {
						t.Errorf("an IXFR of %d bytes for a change of one record", n)
					}
				}
			}
			if incremental < 2 {
				t.Errorf("%d incremental transfers for 2 updates; the secondary's log:\n%s", incremental, out)
			}
		})
	}
}

// TestTransferPolicy: a transfer needs an allowed source address and the
// transfer key; the update key is not enough.
func TestTransferPolicy(t *testing.T) {
	p := dnstest.Start(t, "sshdyn", dnstest.Options{
		Records:       []string{"home 60 A 192.0.2.1"},
		AllowTransfer: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")},
	})
	port := strconv.Itoa(p.Port)
	xfr := "hmac-sha256:" + strings.TrimSuffix(p.XfrKey.Name, ".") + ":" + p.XfrKey.Secret
	upd := "hmac-sha256:" + strings.TrimSuffix(p.Key.Name, ".") + ":" + p.Key.Secret
	cases := []struct {
		name string
		args []string
		ok   bool
	}{
		{"allowed source, transfer key", []string{"-y", xfr}, true},
		{"unsigned", nil, false},
		{"update key", []string{"-y", upd}, false},
		{"source not allowed", []string{"-b", "127.0.0.2", "-y", xfr}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			args := append(tc.args, "@127.0.0.1", "-p", port, p.Zone, "AXFR")
			out, _ := run(t, "", "dig", args...)
			got := strings.Contains(out, "home."+p.Zone+".") && strings.Contains(out, "XFR size: 6 records")
			if got != tc.ok {
				t.Fatalf("transferred %v, want %v:\n%s", got, tc.ok, out)
			}
			if !tc.ok && !strings.Contains(out, "Transfer failed") {
				t.Errorf("dig does not report the refusal:\n%s", out)
			}
		})
	}
}

// TestAXFRStreams: a zone of 5,000 names reaches dig whole (the SOA, every
// record, the SOA again), sent as it is read from the snapshot; and a
// client that leaves after the first message leaves no goroutine behind.
func TestAXFRStreams(t *testing.T) {
	var recs []string
	for i := range 5000 {
		recs = append(recs, fmt.Sprintf("h%d 60 A 198.51.%d.%d", i, i/250, i%250+1))
	}
	p := dnstest.Start(t, "sshdyn", dnstest.Options{Records: recs, AllowTransfer: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}})
	xfr := "hmac-sha256:" + strings.TrimSuffix(p.XfrKey.Name, ".") + ":" + p.XfrKey.Secret
	out, _ := run(t, "", "dig", "-y", xfr, "@127.0.0.1", "-p", strconv.Itoa(p.Port), p.Zone, "AXFR")
	// 5,000 hosts, the SOA twice, NS, ns's A and the _token TXT.
	if !strings.Contains(out, "XFR size: 5005 records") || !strings.Contains(out, "h4999."+p.Zone+".") {
		t.Fatalf("AXFR:\n%.2000s", out[max(0, len(out)-2000):])
	}

	before := runtime.NumGoroutine()
	for range 5 {
		m := new(dns.Msg)
		m.SetAxfr(p.Zone + ".")
		m.SetTsig(p.XfrKey.Name, p.XfrKey.Algorithm, 300, time.Now().Unix())
		co, err := dns.DialTimeout("tcp", p.Addr, 2*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		co.TsigSecret = map[string]string{p.XfrKey.Name: p.XfrKey.Secret}
		if err := co.WriteMsg(m); err != nil {
			t.Fatal(err)
		}
		if r, err := co.ReadMsg(); err != nil || len(r.Answer) != 100 {
			t.Fatalf("first message: %v, %v", r, err)
		}
		co.Close() // leave mid-transfer
	}
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > before+2 {
		if time.Now().After(deadline) {
			t.Fatalf("goroutines %d, %d before the abandoned transfers", runtime.NumGoroutine(), before)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
