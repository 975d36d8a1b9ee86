//go:build integration

package main

import (
	"fmt"
	"net"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/sshdyn/sshdyn/internal/dnstest"
)

// TestLibdnsBackend: sshdyn serve with a zone of backend "libdns",
// provider "powerdns", driven by OpenSSH against PowerDNS's HTTP API:
// update, nochg with the serial unchanged, IPv6, check --dns; a wrong API
// key and a zone the API does not have exit 78, the API down exits 75.
func TestLibdnsBackend(t *testing.T) {
	p := dnstest.Start(t, "pdns", dnstest.Options{API: true})
	key := newClientKey(t, t.TempDir(), "home")
	wild := newClientKey(t, t.TempDir(), "wild")
	host := "home." + p.Zone
	daemon := func(zone, url, keyText string) (*daemon, string) {
		dir := t.TempDir()
		writeFile(t, filepath.Join(dir, "api.key"), keyText+"\n")
		writeFile(t, filepath.Join(dir, "sshdyn.toml"), fmt.Sprintf(`http_listen = ["127.0.0.1:0"]
listen = ["127.0.0.1:0", "[::1]:0"]
host_key = "host_ed25519"
authorized_keys = "authorized_keys"
allow_private = true
reload_interval = "0s"
[[zone]]
name = %q
backend = "libdns"
provider = "powerdns"
api_url = %q
api_key_file = "api.key"
`, zone, url))
		writeFile(t, filepath.Join(dir, "authorized_keys"), `host="home.`+zone+`" `+key.line+"\n"+credLine(t, "router", "rt."+zone)+"\n"+
			`host="wild.`+zone+`",wildcard `+wild.line+"\n")
		return runDaemon(t, dir), dir
	}

	d, dir := daemon(p.Zone, p.APIURL, p.APIKey)
	if r := d.ssh(t, key, nil, "update"); r.code != 0 || r.stdout != "good "+host+" A 127.0.0.1\n" {
		t.Fatalf("update: %+v", r)
	}
	serial := p.Serial(t)
	if r := d.ssh(t, key, nil, "update"); r.code != 0 || r.stdout != "nochg "+host+" A 127.0.0.1\n" {
		t.Fatalf("repeat: %+v", r)
	}
	if p.Serial(t) != serial {
		t.Error("nochg wrote: the serial moved")
	}
	if r := d.ssh(t, key, []string{"-6"}, "update"); r.code != 0 || r.stdout != "good "+host+" AAAA ::1\n" {
		t.Errorf("update -6: %+v", r)
	}
	// The wildcard option through the API: one PATCH for the host and
	// its wildcard, and PowerDNS answers for any name below the host.
	serial = p.Serial(t)
	if r := d.ssh(t, wild, nil, "update"); r.code != 0 || r.stdout != "good wild."+p.Zone+" A 127.0.0.1\ngood *.wild."+p.Zone+" A 127.0.0.1\n" {
		t.Errorf("update with the wildcard option: %+v", r)
	}
	if got := p.Serial(t); got != serial+1 {
		t.Errorf("serial %d -> %d, want one step", serial, got)
	}
	if got := p.Lookup(t, "any.wild."+p.Zone, dns.TypeA); !slices.Equal(got, []string{"127.0.0.1"}) {
		t.Errorf("PowerDNS answers any.wild A %v", got)
	}
	// Offline through the API: one PATCH deleting both RRsets.
	serial = p.Serial(t)
	if r := d.ssh(t, wild, nil, "offline"); r.code != 0 || r.stdout != "good wild."+p.Zone+" A removed\nnochg wild."+p.Zone+" AAAA none\ngood *.wild."+p.Zone+" A removed\nnochg *.wild."+p.Zone+" AAAA none\n" {
		t.Errorf("offline: %+v", r)
	}
	if got := p.Serial(t); got != serial+1 {
		t.Errorf("offline: serial %d -> %d, want one step", serial, got)
	}
	if got := p.Lookup(t, "any.wild."+p.Zone, dns.TypeA); len(got) != 0 {
		t.Errorf("PowerDNS answers any.wild A %v after offline", got)
	}
	base := httpBase(t, d)
	if out := routerUpdate(t, base, "router", "hostname=rt."+p.Zone+"&myip=192.0.2.33"); out != "good 192.0.2.33\n" {
		t.Errorf("dyndns2 update: %q", out)
	}
	serial = p.Serial(t)
	if out := routerUpdate(t, base, "router", "hostname=rt."+p.Zone+"&myip=192.0.2.33"); out != "nochg 192.0.2.33\n" || p.Serial(t) != serial {
		t.Errorf("dyndns2 repeat: %q (serial %d -> %d)", out, serial, p.Serial(t))
	}
	if code, out, errs := runCheck(t, dir, "--dns"); code != 0 || !strings.Contains(out, "the powerdns API answers, accepts the key and has the zone") {
		t.Errorf("check --dns: exit %d\n%s\n%s", code, out, errs)
	}

	serial = p.Serial(t)
	wrong, _ := daemon(p.Zone, p.APIURL, "not-the-key")
	if r := wrong.ssh(t, key, []string{"-b", "127.0.0.2"}, "update"); r.code != 78 {
		t.Errorf("wrong API key: %+v, want 78", r)
	}
	missing, _ := daemon("other.example", p.APIURL, p.APIKey)
	if r := missing.ssh(t, key, []string{"-b", "127.0.0.2"}, "update"); r.code != 78 {
		t.Errorf("a zone the API does not have: %+v, want 78", r)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + l.Addr().String()
	l.Close()
	down, _ := daemon(p.Zone, closed, p.APIKey)
	if r := down.ssh(t, key, []string{"-b", "127.0.0.2"}, "update"); r.code != 75 {
		t.Errorf("API down: %+v, want 75", r)
	}
	if p.Serial(t) != serial {
		t.Error("a failed update wrote")
	}
}
