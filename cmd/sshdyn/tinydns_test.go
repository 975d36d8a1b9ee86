//go:build integration

package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/sshdyn/sshdyn/internal/dnstest"
)

// TestTinydnsBackend: sshdyn serve with a zone of backend "tinydns"
// against a real tinydns, driven by OpenSSH: A over IPv4, AAAA over IPv6,
// the key's ttl=; a repeat is nochg and leaves data.cdb alone; a broken
// operator line gives exit 78 and keeps data.cdb; check --dns proves the
// root; ACME challenges work there too.
func TestTinydnsBackend(t *testing.T) {
	s := dnstest.StartTinydns(t)
	key := newClientKey(t, t.TempDir(), "home")
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "sshdyn.toml"), `http_listen = ["127.0.0.1:0"]
listen = ["127.0.0.1:0", "[::1]:0"]
host_key = "host_ed25519"
authorized_keys = "authorized_keys"
allow_private = true
reload_interval = "0s"
[[zone]]
name = "dyn.example.com"
backend = "tinydns"
tinydns_root = "`+s.Root+`"
acme = true
`)
	wild := newClientKey(t, t.TempDir(), "wild")
	writeFile(t, filepath.Join(dir, "authorized_keys"), `host="home.dyn.example.com",ttl=90 `+key.line+"\n"+credLine(t, "router", "rt.dyn.example.com")+"\n"+
		`host="wild.dyn.example.com",ttl=90,wildcard `+wild.line+"\n")
	d := runDaemon(t, dir)
	// The wildcard option: tinydns's +*. line, answered for any name
	// below the host.
	if r := d.ssh(t, wild, nil, "update"); r.code != 0 || r.stdout != "good wild.dyn.example.com A 127.0.0.1\ngood *.wild.dyn.example.com A 127.0.0.1\n" {
		t.Fatalf("update with the wildcard option: %+v", r)
	}
	if got := s.Lookup(t, "any.name.wild.dyn.example.com", dns.TypeA); !slices.Equal(got, []string{"127.0.0.1 90"}) {
		t.Errorf("tinydns serves the wildcard's A %v", got)
	}
	// Offline: the host's and its wildcard's lines leave sshdyn's block;
	// update puts them back.
	if r := d.ssh(t, wild, nil, "offline"); r.code != 0 || r.stdout != "good wild.dyn.example.com A removed\nnochg wild.dyn.example.com AAAA none\ngood *.wild.dyn.example.com A removed\nnochg *.wild.dyn.example.com AAAA none\n" {
		t.Errorf("offline: %+v", r)
	}
	if got := s.Lookup(t, "any.name.wild.dyn.example.com", dns.TypeA); len(got) != 0 {
		t.Errorf("tinydns serves the wildcard's A %v after offline", got)
	}
	if r := d.ssh(t, wild, nil, "update"); r.code != 0 || !slices.Equal(s.Lookup(t, "wild.dyn.example.com", dns.TypeA), []string{"127.0.0.1 90"}) {
		t.Errorf("update after offline: %+v", r)
	}
	cdb := filepath.Join(s.Root, "data.cdb")
	stamp := func() time.Time {
		fi, err := os.Stat(cdb)
		if err != nil {
			t.Fatal(err)
		}
		return fi.ModTime()
	}

	if r := d.ssh(t, key, nil, "update"); r.code != 0 || r.stdout != "good home.dyn.example.com A 127.0.0.1\n" {
		t.Fatalf("update: %+v", r)
	}
	if got := s.Lookup(t, "home.dyn.example.com", dns.TypeA); !slices.Equal(got, []string{"127.0.0.1 90"}) {
		t.Errorf("tinydns serves A %v", got)
	}
	if r := d.ssh(t, key, []string{"-6"}, "update"); r.code != 0 || r.stdout != "good home.dyn.example.com AAAA ::1\n" {
		t.Fatalf("update -6: %+v", r)
	}
	if got := s.Lookup(t, "home.dyn.example.com", dns.TypeAAAA); !slices.Equal(got, []string{"::1 90"}) {
		t.Errorf("tinydns serves AAAA %v", got)
	}
	before := stamp()
	time.Sleep(20 * time.Millisecond)
	if r := d.ssh(t, key, nil, "update"); r.code != 0 || r.stdout != "nochg home.dyn.example.com A 127.0.0.1\n" {
		t.Fatalf("repeat: %+v", r)
	}
	if !stamp().Equal(before) {
		t.Error("nochg touched data.cdb")
	}
	if r := d.ssh(t, key, nil, "status"); r.code != 0 || !strings.Contains(r.stdout, "home.dyn.example.com A 127.0.0.1 90") {
		t.Errorf("status: %+v", r)
	}
	const v = "LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0"
	if r := d.ssh(t, key, nil, "acme", "present", "home.dyn.example.com", v); r.code != 0 {
		t.Errorf("acme present: %+v", r)
	}
	if got := s.Lookup(t, "_acme-challenge.home.dyn.example.com", dns.TypeTXT); !slices.Equal(got, []string{v + " 60"}) {
		t.Errorf("TXT %v", got)
	}
	if r := d.ssh(t, key, nil, "acme", "cleanup", "home.dyn.example.com", v); r.code != 0 {
		t.Errorf("acme cleanup: %+v", r)
	}
	// The dyndns2 front, over the same backend.
	base := httpBase(t, d)
	if out := routerUpdate(t, base, "router", "hostname=rt.dyn.example.com&myip=192.0.2.33"); out != "good 192.0.2.33\n" {
		t.Errorf("dyndns2 update: %q", out)
	}
	if out := routerUpdate(t, base, "router", "hostname=rt.dyn.example.com&myip=192.0.2.33"); out != "nochg 192.0.2.33\n" {
		t.Errorf("dyndns2 repeat: %q", out)
	}
	if got := s.Lookup(t, "rt.dyn.example.com", dns.TypeA); len(got) != 1 || !strings.HasPrefix(got[0], "192.0.2.33 ") {
		t.Errorf("tinydns serves rt A %v", got)
	}
	if code, out, errs := runCheck(t, dir, "--dns"); code != 0 || !strings.Contains(out, "tinydns-data compiles its data") {
		t.Errorf("check --dns: exit %d\n%s\n%s", code, out, errs)
	}

	// The operator breaks a line of their own.
	data, err := os.ReadFile(filepath.Join(s.Root, "data"))
	if err != nil {
		t.Fatal(err)
	}
	dnstest.WriteData(t, s.Root, string(data)+"?a broken line\n")
	before = stamp()
	r := d.ssh(t, key, []string{"-b", "127.0.0.2"}, "update")
	if r.code != 78 || !strings.Contains(r.stderr, "the server's operator must fix its configuration") {
		t.Errorf("update over a broken data file: %+v, want 78", r)
	}
	if !stamp().Equal(before) {
		t.Error("data.cdb replaced after tinydns-data failed")
	}
	if got := s.Lookup(t, "home.dyn.example.com", dns.TypeA); !slices.Equal(got, []string{"127.0.0.1 90"}) {
		t.Errorf("after the failed update tinydns serves %v", got)
	}
	if !strings.Contains(d.log.String(), "tinydns-data failed") {
		t.Errorf("the log does not say why:\n%s", d.log.String())
	}
	if code, _, errs := runCheck(t, dir, "--dns"); code != 1 || !strings.Contains(errs, "tinydns-data does not compile") {
		t.Errorf("check --dns with a broken data: exit %d %s", code, errs)
	}
}
