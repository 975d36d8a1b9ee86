package provider_test

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"slices"
	"testing"

	"github.com/miekg/dns"

	"github.com/sshdyn/sshdyn/internal/dnstest"
	"github.com/sshdyn/sshdyn/provider"
	"github.com/sshdyn/sshdyn/update"
)

// startAPI starts PowerDNS with its HTTP API and waits until it answers.
func startAPI(t *testing.T) *dnstest.Server {
	t.Helper()
	s := dnstest.Start(t, "pdns", dnstest.Options{API: true})
	return s
}

func backend(t *testing.T, s *dnstest.Server, key, zone string) *provider.Backend {
	t.Helper()
	p, err := provider.New("powerdns", provider.Settings{URL: s.APIURL, Key: key})
	if err != nil {
		t.Fatal(err)
	}
	return &provider.Backend{Provider: p, Zone: zone, Name: "powerdns"}
}

func rec(name, addr string) update.Record {
	return update.Record{Name: name, Addr: netip.MustParseAddr(addr), TTL: 60}
}

// TestPowerDNSAPI: through the libdns seam and PowerDNS's HTTP API: a
// change, nochg with the SOA serial unchanged (SOA-EDIT-API raises it on
// every PATCH), IPv6, TXT values one at a time; a wrong key, a missing
// zone and the API down are errors of the right kind, and change nothing.
func TestPowerDNSAPI(t *testing.T) {
	s := startAPI(t)
	ctx := context.Background()
	b := backend(t, s, s.APIKey, s.Zone)
	host := "home." + s.Zone

	if res, _, err := b.Set(ctx, rec(host, "198.51.100.7"), nil); err != nil || res != update.Changed {
		t.Fatalf("Set: %v %v", res, err)
	}
	if got := s.Lookup(t, host, dns.TypeA); !slices.Equal(got, []string{"198.51.100.7"}) {
		t.Fatalf("PowerDNS serves %v", got)
	}
	serial := s.Serial(t)
	if res, _, err := b.Set(ctx, rec(host, "198.51.100.7"), nil); err != nil || res != update.NoChange {
		t.Fatalf("repeat: %v %v", res, err)
	}
	if s.Serial(t) != serial {
		t.Error("nochg wrote: the serial moved")
	}
	res, old, err := b.Set(ctx, rec(host, "2001:db8::7"), nil)
	if err != nil || res != update.Changed || len(old) != 0 {
		t.Fatalf("AAAA: %v %v %v", res, old, err)
	}
	if got := s.Lookup(t, host, dns.TypeAAAA); !slices.Equal(got, []string{"2001:db8::7"}) {
		t.Errorf("AAAA %v", got)
	}
	if _, old, _ := b.Set(ctx, rec(host, "198.51.100.8"), nil); !slices.Equal(old, []netip.Addr{netip.MustParseAddr("198.51.100.7")}) {
		t.Errorf("old = %v", old)
	}
	const v1, v2 = "LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0", "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbA"
	owner := "_acme-challenge." + host
	for _, v := range []string{v1, v2} {
		if res, err := b.AddTXT(ctx, owner, v, 60); err != nil || res != update.Changed {
			t.Fatalf("AddTXT: %v %v", res, err)
		}
	}
	if res, err := b.RemoveTXT(ctx, owner, v1); err != nil || res != update.Changed {
		t.Fatalf("RemoveTXT: %v %v", res, err)
	}
	if got, err := b.LookupTXT(ctx, owner); err != nil || !slices.Equal(got, []string{v2}) {
		t.Errorf("TXT %v %v", got, err)
	}
	if _, err := b.RemoveTXT(ctx, owner, v2); err != nil {
		t.Fatal(err)
	}
	if got := s.Lookup(t, owner, dns.TypeTXT); len(got) != 0 {
		t.Errorf("TXT left: %v", got)
	}

	serial = s.Serial(t)
	for name, c := range map[string]struct {
		b    *provider.Backend
		kind update.Kind
	}{
		"wrong key":    {backend(t, s, "not-the-key", s.Zone), update.KindAuth},
		"missing zone": {backend(t, s, s.APIKey, "other.example"), update.KindNotZone},
	} {
		_, _, err := c.b.Set(ctx, rec(host, "198.51.100.9"), nil)
		var ue *update.Error
		if !errors.As(err, &ue) || ue.Kind != c.kind || ue.Kind.Temporary() {
			t.Errorf("%s: %v, want a lasting %v", name, err, c.kind)
		}
		if err := c.b.Check(ctx); err == nil {
			t.Errorf("%s: Check passed", name)
		}
	}
	if s.Serial(t) != serial {
		t.Error("a failed update wrote")
	}
	// The API down: a port nobody listens on.
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := l.Addr().String()
	l.Close()
	down, _ := provider.New("powerdns", provider.Settings{URL: "http://" + addr, Key: s.APIKey})
	_, _, err = (&provider.Backend{Provider: down, Zone: s.Zone, Name: "powerdns"}).Set(ctx, rec(host, "198.51.100.9"), nil)
	var ue *update.Error
	if !errors.As(err, &ue) || !ue.Kind.Temporary() {
		t.Errorf("API down: %v, want a temporary error", err)
	}
	if err := b.Check(ctx); err != nil {
		t.Errorf("Check: %v", err)
	}
}
