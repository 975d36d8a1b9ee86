//go:build integration

package main

import (
	"bytes"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/sshdyn/sshdyn/internal/dnstest"
)

// TestDNSSECServe is the operator's path: dnssec = true on a zone sshdyn
// serves; check says the first start makes the key; serve makes it and
// signs; "sshdyn dnssec ds" prints the DS the registrar gets, and delv,
// with that DS as its only trust anchor (the parent's view), validates
// the address a client's "ssh update" set. After SIGKILL and a restart
// the zone still validates, is not signed again, and "dnssec status" and
// check verify every signature.
func TestDNSSECServe(t *testing.T) {
	dir := t.TempDir()
	zoneFile := filepath.Join(dir, "dyn.example.com.zone")
	addr, _ := embeddedConfig(t, dir, zoneFile, "www 300 CNAME home\n", "dnssec = true\nttl = 60\nallow_transfer = [\"127.0.0.1\"]\n")
	cfgPath := filepath.Join(dir, "sshdyn.toml")
	key := newClientKey(t, dir, "client")
	writeFile(t, filepath.Join(dir, "authorized_keys"), `host="home.dyn.example.com" `+key.line+"\n")
	prependConfig(t, cfgPath, "allow_private = true\nadmin_listen = \"127.0.0.1:0\"\n")

	out, code := runCommand(t, "check", "--config", cfgPath)
	if code != 0 || !strings.Contains(out, "DNSSEC: no key yet in "+dir+": serve makes one when it starts") {
		t.Fatalf("check before the first start: exit %d\n%s", code, out)
	}
	if out, code := runCommand(t, "dnssec", "ds", "--config", cfgPath, "dyn.example.com"); code != 1 || !strings.Contains(out, "has no key yet") {
		t.Errorf("dnssec ds before the first start: exit %d\n%s", code, out)
	}

	d := runDaemon(t, dir)
	d.waitLog(t, "DNSSEC key made")
	d.waitLog(t, "zone signed")
	ds, code := runCommand(t, "dnssec", "ds", "--config", cfgPath, "dyn.example.com")
	if code != 0 || !strings.Contains(ds, "dyn.example.com.\t") || !strings.Contains(ds, "\tIN\tDS\t") {
		t.Fatalf("dnssec ds: exit %d\n%s", code, ds)
	}
	anchor := dnstest.DSAnchor(t, ds)

	if r := d.ssh(t, key, nil, "update"); r.code != 0 {
		t.Fatalf("update: exit %d %s %s", r.code, r.stdout, r.stderr)
	}
	for _, name := range []string{"home.dyn.example.com", "www.dyn.example.com"} {
		if out := dnstest.Delv(t, anchor, "dyn.example.com", addr, name, "A"); !dnstest.Validated(out) || !strings.Contains(out, "127.0.0.1") {
			t.Errorf("delv %s A with the DS as trust anchor:\n%s", name, out)
		}
	}
	if out := dnstest.Delv(t, anchor, "dyn.example.com", addr, "nothere.dyn.example.com", "A"); !strings.Contains(out, "; negative response, fully validated") {
		t.Errorf("delv NXDOMAIN:\n%s", out)
	}
	// The operator's page shows the zone's DNSSEC state.
	if m := adminListenRE.FindStringSubmatch(d.log.String()); m == nil {
		t.Errorf("no admin listener:\n%s", d.log.String())
	} else if resp, err := http.Get("http://" + m[1] + "/hosts"); err != nil {
		t.Error(err)
	} else {
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !regexp.MustCompile(`<td class="dnssec">signed with key \d+ \(ECDSAP256SHA256: published, signs, its DS is the parent&#39;s\); the soonest signature expires `).Match(body) {
			t.Errorf("the admin page's zone:\n%s", body)
		}
	}

	d.cmd.Process.Signal(syscall.SIGKILL)
	d.done <- <-d.done
	status, code := runCommand(t, "dnssec", "status", "--config", cfgPath, "dyn.example.com")
	if code != 0 || !strings.Contains(status, "signatures verify") || strings.Contains(status, "not signed yet") {
		t.Errorf("dnssec status after SIGKILL: exit %d\n%s", code, status)
	}
	d = runDaemon(t, dir)
	d.waitLog(t, "listening")
	if strings.Contains(d.log.String(), "zone signed") || strings.Contains(d.log.String(), "DNSSEC key made") {
		t.Errorf("the restart signed again or made a key:\n%s", d.log.String())
	}
	if out := dnstest.Delv(t, anchor, "dyn.example.com", addr, "home.dyn.example.com", "A"); !dnstest.Validated(out) {
		t.Errorf("delv after the restart:\n%s", out)
	}
	out, code = runCommand(t, "check", "--config", cfgPath)
	if code != 0 || !strings.Contains(out, "DNSSEC: ok: ") {
		t.Errorf("check after the restart: exit %d\n%s", code, out)
	}

	// Going insecure: the CDS and CDNSKEY ask the parent to remove the
	// DS (RFC 8078); the zone still validates with it meanwhile.
	if out, code := runCommand(t, "dnssec", "insecure", "--config", cfgPath, "dyn.example.com"); code != 0 || !strings.Contains(out, "ask the parent to remove the zone's DS") {
		t.Fatalf("dnssec insecure: exit %d\n%s", code, out)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		m := new(dns.Msg)
		m.SetQuestion("dyn.example.com.", dns.TypeCDS)
		r, err := dns.Exchange(m, addr)
		if err == nil && len(r.Answer) == 1 && strings.HasSuffix(r.Answer[0].String(), "\t0 0 0 00") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no CDS delete record: %v %v\n%s", r, err, d.log.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	if out := dnstest.Delv(t, anchor, "dyn.example.com", addr, "home.dyn.example.com", "A"); !dnstest.Validated(out) {
		t.Errorf("delv while going insecure:\n%s", out)
	}
	dnstest.VerifyZone(t, "dyn.example.com", dnstest.Transfer(t, "dyn.example.com", addr, "", ""))
	if out, code := runCommand(t, "dnssec", "status", "--config", cfgPath, "dyn.example.com"); code != 0 || !strings.Contains(out, "going insecure") {
		t.Errorf("dnssec status while going insecure: exit %d\n%s", code, out)
	}
	if out, code := runCommand(t, "dnssec", "ds", "--config", cfgPath, "dyn.example.com"); code != 1 || !strings.Contains(out, "wants no DS at its parent") {
		t.Errorf("dnssec ds while going insecure: exit %d\n%s", code, out)
	}

	// Signing turned off: check says what the start does, and the start
	// removes the keys, CDS, signatures and NSEC records.
	d.cmd.Process.Signal(syscall.SIGTERM)
	d.done <- <-d.done
	conf, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, cfgPath, strings.Replace(string(conf), "dnssec = true\n", "", 1))
	out, code = runCommand(t, "check", "--config", cfgPath)
	if code != 0 || !strings.Contains(out, "the zone file holds a signed zone and dnssec is off: serve removes") {
		t.Errorf("check with dnssec off: exit %d\n%s", code, out)
	}
	d = runDaemon(t, dir)
	d.waitLog(t, "DNSSEC records removed")
	for _, q := range []struct {
		name  string
		qtype uint16
	}{{"dyn.example.com.", dns.TypeDNSKEY}, {"dyn.example.com.", dns.TypeCDS}, {"home.dyn.example.com.", dns.TypeA}, {"nothere.dyn.example.com.", dns.TypeA}} {
		m := new(dns.Msg)
		m.SetQuestion(q.name, q.qtype)
		m.SetEdns0(4096, true)
		r, _, err := (&dns.Client{Net: "tcp"}).Exchange(m, addr)
		if err != nil {
			t.Fatal(err)
		}
		for _, rr := range append(r.Answer, r.Ns...) {
			switch rr.Header().Rrtype {
			case dns.TypeDNSKEY, dns.TypeCDS, dns.TypeRRSIG, dns.TypeNSEC:
				t.Errorf("%s %s after unsigning: %s", q.name, dns.TypeToString[q.qtype], rr)
			}
		}
	}
	if out := dnstest.Delv(t, anchor, "dyn.example.com", addr, "home.dyn.example.com", "A"); dnstest.Validated(out) {
		t.Errorf("delv validates an unsigned zone:\n%s", out)
	}
}

// TestDNSSECRefused: a zone served elsewhere cannot have dnssec = true;
// the error says why and where.
func TestDNSSECRefused(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "tsig.key"), "hmac-sha256:k:c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA==\n")
	writeFile(t, filepath.Join(dir, "authorized_keys"), "")
	cfg := filepath.Join(dir, "sshdyn.toml")
	writeFile(t, cfg, "authorized_keys = \"authorized_keys\"\n[[zone]]\nname = \"dyn.example.com\"\nprimary = \"127.0.0.1:53\"\ntsig_key = \"tsig.key\"\ndnssec = true\n")
	out, code := runCommand(t, "check", "--config", cfg)
	if code != 1 || !strings.Contains(out, "dnssec is for a zone sshdyn serves (file set): BIND, Knot and PowerDNS sign their zones themselves") {
		t.Errorf("check: exit %d\n%s", code, out)
	}
}

// runCommand runs the sshdyn binary with args and returns its combined
// output and exit status.
func runCommand(t *testing.T, args ...string) (string, int) {
	t.Helper()
	var b bytes.Buffer
	code := realMain(args, strings.NewReader(""), &b, &b)
	return b.String(), code
}

// prependConfig puts settings at the top of the configuration file.
func prependConfig(t *testing.T, path, settings string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, path, settings+string(b))
}

// TestDNSSECRollover rolls the key of a zone sshdyn signs, end to end
// with the daemon and short TTLs: at every step the zone validates with
// delv under the DS set the test holds as the parent would (the old DS,
// then the new one), and dnssec-verify passes a full transfer. At the
// end the old DS no longer validates: the old key is gone.
func TestDNSSECRollover(t *testing.T) {
	dir := t.TempDir()
	zoneFile := filepath.Join(dir, "dyn.example.com.zone")
	writeFile(t, zoneFile, "$ORIGIN dyn.example.com.\n@ 1 SOA ns hostmaster 1 3600 600 86400 1\n@ 1 NS ns\nns 1 A 127.0.0.1\nhome 1 A 192.0.2.1\n")
	addr, _ := embeddedConfig(t, dir, zoneFile, "",
		"dnssec = true\ndnssec_propagation_delay = \"1s\"\ndnssec_parent_ds_ttl = \"1s\"\nallow_transfer = [\"127.0.0.1\"]\n")
	cfgPath := filepath.Join(dir, "sshdyn.toml")
	d := runDaemon(t, dir)
	d.waitLog(t, "zone signed")
	ds := func() string {
		t.Helper()
		out, code := runCommand(t, "dnssec", "ds", "--config", cfgPath, "dyn.example.com")
		if code != 0 {
			t.Fatalf("dnssec ds: %s", out)
		}
		return out
	}
	dnskeys := func() int {
		m := new(dns.Msg)
		m.SetQuestion("dyn.example.com.", dns.TypeDNSKEY)
		r, err := dns.Exchange(m, addr)
		if err != nil {
			t.Fatal(err)
		}
		return len(r.Answer)
	}
	wait := func(what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(20 * time.Second); !cond(); {
			if time.Now().After(deadline) {
				t.Fatalf("waiting for %s:\n%s", what, d.log.String())
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	validates := func(step, anchor string, want bool) {
		t.Helper()
		out := dnstest.Delv(t, anchor, "dyn.example.com", addr, "home.dyn.example.com", "A")
		if dnstest.Validated(out) != want {
			t.Errorf("%s: validated %v, want %v:\n%s", step, !want, want, out)
		}
		dnstest.VerifyZone(t, "dyn.example.com", dnstest.Transfer(t, "dyn.example.com", addr, "", ""))
	}
	oldDS := ds()
	oldAnchor := dnstest.DSAnchor(t, oldDS)
	validates("before", oldAnchor, true)

	if out, code := runCommand(t, "dnssec", "roll", "--config", cfgPath, "dyn.example.com"); code != 0 || !strings.Contains(out, "signs with both keys now") {
		t.Fatalf("dnssec roll: exit %d\n%s", code, out)
	}
	if out, code := runCommand(t, "dnssec", "roll", "--config", cfgPath, "dyn.example.com", "--ds-submitted"); code != 1 {
		t.Errorf("--ds-submitted before the new DS is published: exit %d\n%s", code, out)
	}
	wait("the new DNSKEY", func() bool { return dnskeys() == 2 })
	validates("double signature, the old DS", oldAnchor, true)
	status, _ := runCommand(t, "dnssec", "status", "--config", cfgPath, "dyn.example.com")
	if !strings.Contains(status, "rollover step") {
		t.Errorf("status during the rollover:\n%s", status)
	}

	wait("the new key's CDS", func() bool { return ds() != oldDS })
	newAnchor := dnstest.DSAnchor(t, ds())
	validates("CDS switched, the old DS still at the parent", oldAnchor, true)
	validates("the new DS at the parent", newAnchor, true)
	if out, code := runCommand(t, "dnssec", "roll", "--config", cfgPath, "--ds-submitted", "dyn.example.com"); code != 0 {
		t.Fatalf("--ds-submitted: exit %d\n%s", code, out)
	}
	wait("the old key's retirement", func() bool { return dnskeys() == 1 })
	validates("the old key retired", newAnchor, true)
	validates("the old DS after the retirement", oldAnchor, false)
	status, code := runCommand(t, "dnssec", "status", "--config", cfgPath, "dyn.example.com")
	if code != 0 || strings.Contains(status, "rollover step") || !strings.Contains(status, "retired") {
		t.Errorf("status after the rollover: exit %d\n%s", code, status)
	}
}
