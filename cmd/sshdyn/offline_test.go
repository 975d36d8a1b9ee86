//go:build integration

package main

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/sshdyn/sshdyn/internal/dnstest"
)

// TestOffline: a host goes offline over SSH ("offline") and over HTTP
// (offline=YES, an explicit empty myipv4=/myipv6=, dynv6's -), on BIND,
// Knot, PowerDNS and the embedded primary: its A and AAAA records, its
// wildcard's and its LAN host's go in one serial step, "good HOST TYPE
// removed" per record; a second offline is nochg and writes nothing;
// update brings them back; history has a line for it; a contradictory
// request changes nothing. Behind the embedded primary, a real BIND
// secondary following it by IXFR answers anything.home with home's
// address after update and with nothing after offline.
func TestOffline(t *testing.T) {
	if _, err := exec.LookPath("ssh"); err != nil {
		t.Fatal("OpenSSH client not found: install openssh-client (scripts/test.sh does)")
	}
	for _, kind := range dnstest.Kinds {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			var p, sec *dnstest.Server
			if kind == "sshdyn" {
				p, sec = dnstest.StartWithSecondary(t, "bind", dnstest.Options{})
			} else {
				p = dnstest.Start(t, kind, dnstest.Options{})
			}
			z := p.Zone
			home, nas := "home."+z, "nas."+z
			key := newClientKey(t, t.TempDir(), "home")
			d, base := startRouterDaemon(t, p, "",
				credLine(t, "home", home)+`,wildcard,lan-host="`+nas+`=::1:2",prefix-length=64 `+key.line,
				credLine(t, "router", "router."+z))
			served := func(name string, qtype uint16) []string { return p.Lookup(t, name, qtype) }
			// onSecondary waits for the secondary to serve want for name
			// (NOTIFY, then IXFR).
			onSecondary := func(name string, want []string) {
				t.Helper()
				if sec == nil {
					return
				}
				deadline := time.Now().Add(10 * time.Second)
				for {
					got := sec.Lookup(t, name, dns.TypeA)
					if slices.Equal(got, want) {
						return
					}
					if time.Now().After(deadline) {
						t.Fatalf("the BIND secondary serves %s A %v, want %v", name, got, want)
					}
					time.Sleep(50 * time.Millisecond)
				}
			}

			if r := d.ssh(t, key, nil, "update"); r.code != 0 {
				t.Fatalf("update: %+v", r)
			}
			r := d.ssh(t, key, []string{"-6"}, "update")
			if r.code != 0 || r.stdout != "good "+home+" AAAA ::1\ngood *."+home+" AAAA ::1\ngood "+nas+" AAAA ::1:2\n" {
				t.Fatalf("update -6: %+v", r)
			}
			if got := served("anything."+home, dns.TypeA); !slices.Equal(got, []string{"127.0.0.1"}) {
				t.Errorf("anything.home A = %v after update", got)
			}
			onSecondary("anything."+home, []string{"127.0.0.1"})

			serial := p.Serial(t)
			r = d.ssh(t, key, nil, "offline")
			want := "good " + home + " A removed\ngood " + home + " AAAA removed\ngood *." + home + " A removed\ngood *." + home + " AAAA removed\ngood " + nas + " AAAA removed\n"
			if r.code != 0 || r.stdout != want || r.stderr != "" {
				t.Fatalf("offline = %+v, want %q", r, want)
			}
			if got := p.Serial(t); got != serial+1 {
				t.Errorf("serial %d -> %d, want one step", serial, got)
			}
			for _, q := range []struct {
				name  string
				qtype uint16
			}{{home, dns.TypeA}, {home, dns.TypeAAAA}, {"anything." + home, dns.TypeA}, {"*." + home, dns.TypeAAAA}, {nas, dns.TypeAAAA}} {
				if got := served(q.name, q.qtype); len(got) != 0 {
					t.Errorf("%s %s = %v after offline", q.name, dns.TypeToString[q.qtype], got)
				}
			}
			onSecondary("anything."+home, nil)
			if sec != nil && !strings.Contains(sec.Output(), "got incremental response") {
				t.Errorf("the secondary did not follow by IXFR; its log:\n%s", sec.Output())
			}
			serial = p.Serial(t)
			r = d.ssh(t, key, nil, "offline", home)
			want = "nochg " + home + " A none\nnochg " + home + " AAAA none\nnochg *." + home + " A none\nnochg *." + home + " AAAA none\nnochg " + nas + " AAAA none\n"
			if r.code != 0 || r.stdout != want {
				t.Errorf("offline again = %+v, want %q", r, want)
			}
			if got := p.Serial(t); got != serial {
				t.Errorf("a second offline moved the serial %d -> %d", serial, got)
			}
			if r := d.ssh(t, key, nil, "offline", "router."+z); r.code != 77 || r.stdout != "" {
				t.Errorf("offline of another's host: %+v, want exit 77", r)
			}
			if r := d.ssh(t, key, nil, "offline", "--wait"); r.code != 64 {
				t.Errorf("offline --wait: %+v, want exit 64", r)
			}
			r = d.ssh(t, key, nil, "update")
			if r.code != 0 || r.stdout != "good "+home+" A 127.0.0.1\ngood *."+home+" A 127.0.0.1\n" {
				t.Errorf("update after offline: %+v", r)
			}
			onSecondary("anything."+home, []string{"127.0.0.1"})
			if r := d.ssh(t, key, nil, "offline", "--json"); r.code != 0 || !strings.Contains(r.stdout, `{"host":"`+home+`","type":"A","removed":true,"result":"good","previous":["127.0.0.1"]}`) {
				t.Errorf("offline --json: %+v", r)
			}
			deadline := time.Now().Add(5 * time.Second) // the store is written in batches
			for {
				r = d.ssh(t, key, nil, "history")
				if strings.Contains(r.stdout, " "+home+" A good removed ssh\n") || time.Now().After(deadline) {
					break
				}
				time.Sleep(100 * time.Millisecond)
			}
			if !strings.Contains(r.stdout, " "+home+" A good removed ssh\n") {
				t.Errorf("history has no line for offline: %+v", r)
			}

			// Over HTTP, as a router sends it.
			get := func(query string) string {
				out, _ := runRouter(t, "curl", "-sS", "-u", "home:"+routerPassword, base+"/nic/update?hostname="+home+"&"+query)
				return out
			}
			if out := get("myip=198.51.100.7,2001:db8:1:2::7"); out != "good 198.51.100.7,2001:db8:1:2::7\n" {
				t.Fatalf("update over HTTP: %q", out)
			}
			serial = p.Serial(t)
			if out := get("offline=YES"); out != "good\n" {
				t.Errorf("offline=YES: %q", out)
			}
			if got := p.Serial(t); got != serial+1 {
				t.Errorf("serial %d -> %d, want one step", serial, got)
			}
			if a, aaaa, lan := served(home, dns.TypeA), served(home, dns.TypeAAAA), served(nas, dns.TypeAAAA); len(a)+len(aaaa)+len(lan) != 0 {
				t.Errorf("after offline=YES: A %v AAAA %v nas %v", a, aaaa, lan)
			}
			if out := get("offline=YES"); out != "nochg\n" {
				t.Errorf("offline=YES again: %q", out)
			}
			// deSEC's empty myipv6= removes the AAAA records and leaves A
			// to the address given; dynv6's - does the same.
			if out := get("myip=198.51.100.8,2001:db8:1:2::8"); !strings.HasPrefix(out, "good ") {
				t.Fatalf("update over HTTP: %q", out)
			}
			serial = p.Serial(t)
			if out := get("myipv4=198.51.100.9&myipv6="); out != "good 198.51.100.9\n" {
				t.Errorf("myipv6= : %q", out)
			}
			if a, aaaa := served(home, dns.TypeA), served("x."+home, dns.TypeAAAA); !slices.Equal(a, []string{"198.51.100.9"}) || len(aaaa) != 0 {
				t.Errorf("after myipv6= : A %v, x.home AAAA %v", a, aaaa)
			}
			if got := p.Serial(t); got != serial+1 {
				t.Errorf("serial %d -> %d, want one step", serial, got)
			}
			if out := get("ipv4=-&ipv6=2001:db8:1:2::9"); out != "good 2001:db8:1:2::9\n" || len(served(home, dns.TypeA)) != 0 {
				t.Errorf("ipv4=- : %q, A %v", out, served(home, dns.TypeA))
			}
			// A contradiction changes nothing, answered badip.
			serial = p.Serial(t)
			for _, q := range []string{"myip=198.51.100.1&myipv4=", "myipv6=2001:db8::2&ipv6=-", "ipv6prefix=2001:db8:1::/48&myipv6="} {
				out, _ := runRouter(t, "curl", "-sS", "-w", " %{http_code}", "-u", "home:"+routerPassword, base+"/nic/update?hostname="+home+"&"+q)
				if out != "badip\n 400" {
					t.Errorf("%s: %q, want badip 400", q, out)
				}
			}
			if got := p.Serial(t); got != serial {
				t.Errorf("refused requests moved the serial %d -> %d", serial, got)
			}
			if !strings.Contains(d.log.String(), "and myipv4= (remove the A records) in one request") {
				t.Errorf("the log does not say why myip=…&myipv4= was refused:\n%s", d.log.String())
			}
		})
	}
}
