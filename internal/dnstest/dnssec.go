package dnstest

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// TrustAnchor writes a trust anchor file for delv (BIND's trust-anchors
// statement) holding the DNSKEY records zone's server at addr serves.
func TrustAnchor(t testing.TB, zone, addr string) string {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(zone), dns.TypeDNSKEY)
	r, err := dns.Exchange(m, addr)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, rr := range r.Answer {
		if k, ok := rr.(*dns.DNSKEY); ok {
			fmt.Fprintf(&b, "\t%q static-key %d %d %d %q;\n", k.Hdr.Name, k.Flags, k.Protocol, k.Algorithm, k.PublicKey)
		}
	}
	if b.Len() == 0 {
		t.Fatalf("no DNSKEY served for %s at %s: %v", zone, addr, r)
	}
	return writeAnchor(t, b.String())
}

// DSAnchor writes a trust anchor file for delv from DS records in
// zone-file form, as a parent would hold them.
func DSAnchor(t testing.TB, dsLines string) string {
	t.Helper()
	var b strings.Builder
	for _, line := range strings.Split(strings.TrimSpace(dsLines), "\n") {
		rr, err := dns.NewRR(line)
		if err != nil {
			t.Fatalf("DS %q: %v", line, err)
		}
		ds, ok := rr.(*dns.DS)
		if !ok {
			t.Fatalf("%q is not a DS record", line)
		}
		fmt.Fprintf(&b, "\t%q static-ds %d %d %d %q;\n", ds.Hdr.Name, ds.KeyTag, ds.Algorithm, ds.DigestType, ds.Digest)
	}
	return writeAnchor(t, b.String())
}

func writeAnchor(t testing.TB, body string) string {
	t.Helper()
	file := filepath.Join(t.TempDir(), "anchor.conf")
	if err := os.WriteFile(file, []byte("trust-anchors {\n"+body+"};\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return file
}

// Delv asks delv (bind9-dnsutils), whose only trust anchor is in anchor
// and whose root is zone (it looks nothing up above it), for name and
// type at addr, and returns its output: "; fully validated" or "; negative
// response, fully validated" when the answer validates.
func Delv(t testing.TB, anchor, zone, addr, name, qtype string) string {
	t.Helper()
	if _, err := exec.LookPath("delv"); err != nil {
		t.Fatal("delv not found: install bind9-dnsutils (scripts/test.sh does)")
	}
	ap := netip.MustParseAddrPort(addr)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, _ := exec.CommandContext(ctx, "delv", "-a", anchor, "+root="+dns.Fqdn(zone), "@"+ap.Addr().String(), "-p", strconv.Itoa(int(ap.Port())),
		"+nocrypto", name, qtype).CombinedOutput()
	return string(out)
}

// Validated reports whether delv's output says the answer validated.
func Validated(out string) bool {
	return strings.Contains(out, "; fully validated") || strings.Contains(out, "; negative response, fully validated")
}

// VerifyZone runs dnssec-verify (bind9-utils) on rrs, a whole zone (as
// transferred), and fails the test unless it reports the zone fully
// signed. A CSK signs everything (-z).
func VerifyZone(t testing.TB, zone string, rrs []dns.RR) string {
	t.Helper()
	if _, err := exec.LookPath("dnssec-verify"); err != nil {
		t.Fatal("dnssec-verify not found: install bind9-utils (scripts/test.sh does)")
	}
	var b strings.Builder
	for _, rr := range rrs {
		b.WriteString(rr.String() + "\n")
	}
	file := filepath.Join(t.TempDir(), "verify.zone")
	if err := os.WriteFile(file, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("dnssec-verify", "-z", "-o", dns.Fqdn(zone), file).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "Zone fully signed") {
		t.Fatalf("dnssec-verify: %v\n%s", err, out)
	}
	return string(out)
}

// Transfer reads the zone at addr whole (AXFR), signed with key if its
// name is set, the SOA once.
func Transfer(t testing.TB, zone, addr string, keyName, secret string) []dns.RR {
	t.Helper()
	m := new(dns.Msg)
	m.SetAxfr(dns.Fqdn(zone))
	tr := &dns.Transfer{}
	if keyName != "" {
		m.SetTsig(keyName, dns.HmacSHA256, 300, time.Now().Unix())
		tr.TsigSecret = map[string]string{keyName: secret}
	}
	ch, err := tr.In(m, addr)
	if err != nil {
		t.Fatalf("AXFR from %s: %v", addr, err)
	}
	var out []dns.RR
	for env := range ch {
		if env.Error != nil {
			t.Fatalf("AXFR from %s: %v", addr, env.Error)
		}
		out = append(out, env.RR...)
	}
	if len(out) > 1 {
		out = out[:len(out)-1]
	}
	return out
}
