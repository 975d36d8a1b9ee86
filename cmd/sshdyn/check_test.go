//go:build integration

package main

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/sshdyn/sshdyn/internal/dnstest"
)

// runCheck runs "sshdyn check" on dir's config.
func runCheck(t *testing.T, dir string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = realMain(append([]string{"check", "--config", filepath.Join(dir, "sshdyn.toml")}, args...), strings.NewReader(""), &out, &errb)
	return code, out.String(), errb.String()
}

// TestCheck: "sshdyn check --dns" against each real primary passes a good
// set-up without writing, and names a wrong secret and a too-narrow
// update policy in words an operator can act on.
func TestCheck(t *testing.T) {
	key := newClientKey(t, t.TempDir(), "k")
	for _, kind := range dnstest.Kinds {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			p := dnstest.Start(t, kind, dnstest.Options{})
			line := `host="home.` + p.Zone + `" ` + key.line

			// PowerDNS's policy can only be seen by writing: check --dns
			// adds and removes a record at a sshdyn-check name there,
			// and nowhere else.
			writes := kind == "pdns"
			// leftIntact checks what check --dns left behind: the serial
			// where it was, or, where it had to write, no probe record.
			leftIntact := func(t *testing.T, s *dnstest.Server, serial uint32, out string) {
				t.Helper()
				if !writes {
					if got := s.Serial(t); got != serial {
						t.Errorf("check --dns moved the serial %d -> %d", serial, got)
					}
					return
				}
				probe := regexp.MustCompile(`sshdyn-check-[0-9a-f]+\.` + regexp.QuoteMeta(s.Zone)).FindString(out)
				if probe == "" {
					t.Fatalf("no probe name in the output:\n%s", out)
				}
				if got := s.Lookup(t, probe, dns.TypeA); len(got) != 0 {
					t.Errorf("%s A = %v left behind", probe, got)
				}
				if got := s.Lookup(t, probe, dns.TypeAAAA); len(got) != 0 {
					t.Errorf("%s AAAA = %v left behind", probe, got)
				}
			}

			t.Run("good", func(t *testing.T) {
				serial := p.Serial(t)
				code, out, errs := runCheck(t, writeConfig(t, p, p.Addr, p.KeyFile, line), "--dns")
				if code != 0 || !strings.Contains(out, "accepts TSIG key sshdyn-test. and lets it change A and AAAA records") {
					t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errs)
				}
				if how := "(checked without writing)"; writes {
					if strings.Contains(out, how) {
						t.Errorf("claims %s against %s:\n%s", how, kind, out)
					}
				} else if !strings.Contains(out, how) {
					t.Errorf("no %q:\n%s", how, out)
				}
				leftIntact(t, p, serial, out)
				if writes && !strings.Contains(out, "skipped a LOC record without refusing it") {
					t.Errorf("the policy script's skip is not told from a broad grant:\n%s", out)
				}
			})
			t.Run("grant too broad", func(t *testing.T) {
				// BIND: zonesub ANY (its check-names used to drop the
				// probe, and check reported the grant as missing);
				// Knot: more types than A and AAAA.
				types := map[string][]string{"bind": {"ANY"}, "knot": {"A", "AAAA", "LOC", "TXT"}}[kind]
				if types == nil {
					return // PowerDNS's grant is its policy script; the embedded primary's update_types
				}
				broad := dnstest.Start(t, kind, dnstest.Options{Types: types})
				code, out, errs := runCheck(t, writeConfig(t, broad, broad.Addr, broad.KeyFile, line), "--dns")
				if code != 0 || !strings.Contains(out, "warning: the grant is too broad: TSIG key sshdyn-test may change every record type in "+broad.Zone) ||
					!strings.Contains(out, "update-policy { grant sshdyn-test zonesub A AAAA; }") {
					t.Fatalf("exit %d, want 0 and a warning naming the narrower grant\nstdout:\n%s\nstderr:\n%s", code, out, errs)
				}
				probe := regexp.MustCompile(`sshdyn-check-[0-9a-f]+\.` + regexp.QuoteMeta(broad.Zone)).FindString(out)
				for _, typ := range []uint16{dns.TypeA, dns.TypeAAAA, dns.TypeLOC} {
					if got := broad.Lookup(t, probe, typ); len(got) != 0 {
						t.Errorf("%s %s = %v left behind", probe, dns.TypeToString[typ], got)
					}
				}
			})
			t.Run("acme grant", func(t *testing.T) {
				acme := dnstest.Start(t, kind, dnstest.Options{ACME: true})
				serial := acme.Serial(t)
				dir := writeConfig(t, acme, acme.Addr, acme.KeyFile, line)
				dnstest.AppendFile(t, filepath.Join(dir, "sshdyn.toml"), "acme = true\n")
				code, out, errs := runCheck(t, dir, "--dns")
				if code != 0 || !strings.Contains(out, "lets it change A and AAAA records and TXT records at _acme-challenge names") {
					t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errs)
				}
				leftIntact(t, acme, serial, out)
				if probe := regexp.MustCompile(`sshdyn-check-[0-9a-f]+\.` + regexp.QuoteMeta(acme.Zone)).FindString(out); writes {
					if got := acme.Lookup(t, "_acme-challenge."+probe, dns.TypeTXT); len(got) != 0 {
						t.Errorf("TXT %v left behind", got)
					}
				}
			})
			t.Run("acme grant missing", func(t *testing.T) {
				serial := p.Serial(t)
				dir := writeConfig(t, p, p.Addr, p.KeyFile, line)
				dnstest.AppendFile(t, filepath.Join(dir, "sshdyn.toml"), "acme = true\n")
				code, out, errs := runCheck(t, dir, "--dns")
				want := "its update policy does not let it change TXT records at _acme-challenge names in " + p.Zone + ", which acme = true needs"
				if code != 1 || !strings.Contains(errs, want) {
					t.Fatalf("exit %d, want stderr with %q\nstdout:\n%s\nstderr:\n%s", code, want, out, errs)
				}
				leftIntact(t, p, serial, out)
			})
			t.Run("wildcard grant", func(t *testing.T) {
				// A line with the wildcard option: the policy must let
				// the key change *.HOST too.
				serial := p.Serial(t)
				wild := `host="wild.` + p.Zone + `",wildcard ` + newClientKey(t, t.TempDir(), "w").line
				code, out, errs := runCheck(t, writeConfig(t, p, p.Addr, p.KeyFile, line, wild), "--dns")
				if code != 0 || !strings.Contains(out, "lets it change A and AAAA records at wildcard names (*.HOST) too") {
					t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errs)
				}
				leftIntact(t, p, serial, out)
				if kind != "pdns" {
					return
				}
				// PowerDNS's policy script skips what it refuses: only a
				// write shows it.
				nowild := dnstest.Start(t, kind, dnstest.Options{NoWildcards: true})
				code, out, errs = runCheck(t, writeConfig(t, nowild, nowild.Addr, nowild.KeyFile, line, wild), "--dns")
				want := "but not A and AAAA records at wildcard names (*.HOST) in " + nowild.Zone
				if code != 1 || !strings.Contains(errs, want) || !strings.Contains(errs, "local wildcards = true") {
					t.Fatalf("exit %d, want stderr with %q\nstdout:\n%s\nstderr:\n%s", code, want, out, errs)
				}
				// Without a wildcard line, the same primary passes.
				if code, out, errs := runCheck(t, writeConfig(t, nowild, nowild.Addr, nowild.KeyFile, line), "--dns"); code != 0 || strings.Contains(out, "wildcard names") {
					t.Errorf("no wildcard line: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errs)
				}
			})
			t.Run("wrong secret", func(t *testing.T) {
				bad := filepath.Join(t.TempDir(), "bad.key")
				writeFile(t, bad, "hmac-sha256:sshdyn-test:d3Jvbmctc2VjcmV0LXdyb25nLXNlY3JldA==\n")
				code, out, errs := runCheck(t, writeConfig(t, p, p.Addr, bad, line), "--dns")
				want := "the secret differs from the server's"
				if kind == "pdns" { // an unsigned NOTAUTH says no more
					want = "it did not accept the key. Check its name, algorithm and secret"
				}
				if code != 1 || !strings.Contains(errs, want) {
					t.Fatalf("exit %d, want stderr with %q\nstdout:\n%s\nstderr:\n%s", code, want, out, errs)
				}
			})
			t.Run("policy too narrow", func(t *testing.T) {
				narrow := dnstest.Start(t, kind, dnstest.Options{Types: []string{"AAAA"}})
				serial := narrow.Serial(t)
				code, out, errs := runCheck(t, writeConfig(t, narrow, narrow.Addr, narrow.KeyFile, line), "--dns")
				want := "accepts TSIG key sshdyn-test., but its update policy does not let it change A records in " + narrow.Zone
				if code != 1 || !strings.Contains(errs, want) {
					t.Fatalf("exit %d, want stderr with %q\nstdout:\n%s\nstderr:\n%s", code, want, out, errs)
				}
				leftIntact(t, narrow, serial, out)
			})
			t.Run("primary down", func(t *testing.T) {
				down := dnstest.Start(t, kind, dnstest.Options{})
				dir := writeConfig(t, down, down.Addr, down.KeyFile, line)
				down.Stop()
				code, out, errs := runCheck(t, dir, "--dns")
				if code != 1 || !strings.Contains(errs, "primary unreachable: is it running and listening on TCP?") {
					t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errs)
				}
			})
		})
	}
}

// TestCheckFiles: without --dns, check needs no primary and reports each
// bad file with its name and line.
func TestCheckFiles(t *testing.T) {
	p := &dnstest.Server{Zone: "dyn.example.com"}
	keyFile := filepath.Join(t.TempDir(), "tsig.key")
	writeFile(t, keyFile, "hmac-sha256:sshdyn:c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA==\n")
	key := newClientKey(t, t.TempDir(), "k")

	code, out, errs := runCheck(t, writeConfig(t, p, "127.0.0.1:1", keyFile, `host="home.dyn.example.com" `+key.line))
	if code != 0 || !strings.Contains(out, "1 key(s)") || !strings.Contains(out, "serve creates it on first start") {
		t.Fatalf("good files: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errs)
	}
	// A router's line is not counted as a key, and the HTTP front is
	// reported.
	dir := writeConfig(t, p, "127.0.0.1:1", keyFile, `host="home.dyn.example.com" `+key.line, credLine(t, "router", "r.dyn.example.com"))
	os.Chmod(filepath.Join(dir, "authorized_keys"), 0o640)
	cfg := filepath.Join(dir, "sshdyn.toml")
	b, _ := os.ReadFile(cfg)
	writeFile(t, cfg, "http_listen = [\"127.0.0.1:0\"]\n"+string(b))
	code, out, errs = runCheck(t, dir)
	if code != 0 || !strings.Contains(out, "1 key(s), 0 cert-authority line(s), 1 router line(s)") || !strings.Contains(out, "dyndns2 front: ok: HTTP (loopback only) on 127.0.0.1:0") {
		t.Fatalf("a key and a router: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errs)
	}
	code, _, errs = runCheck(t, writeConfig(t, p, "127.0.0.1:1", keyFile, `host="home.example.org" `+key.line))
	if code != 1 || !strings.Contains(errs, "authorized_keys:1:") {
		t.Fatalf("bad authorized line: exit %d, stderr:\n%s", code, errs)
	}
	code, _, errs = runCheck(t, writeConfig(t, p, "127.0.0.1:1", filepath.Join(t.TempDir(), "missing.key"), `host="home.dyn.example.com" `+key.line))
	if code != 1 || !strings.Contains(errs, "missing.key: no such file") {
		t.Fatalf("missing key file: exit %d, stderr:\n%s", code, errs)
	}
	dir = writeConfig(t, p, "127.0.0.1:1", keyFile, `host="home.dyn.example.com" `+key.line)
	writeFile(t, filepath.Join(dir, "sshdyn.toml"), "listen = [\"127.0.0.1:0\"]\nlisten_adress = 1\n")
	code, _, errs = runCheck(t, dir)
	if code != 1 || !strings.Contains(errs, "sshdyn.toml:2: unknown key \"listen_adress\"") {
		t.Fatalf("bad config: exit %d, stderr:\n%s", code, errs)
	}
}
