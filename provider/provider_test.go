//go:build integration

package provider_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/libdns/libdns"
	"github.com/miekg/dns"

	"github.com/sshdyn/sshdyn/backend"
	"github.com/sshdyn/sshdyn/backend/backendtest"
	"github.com/sshdyn/sshdyn/internal/dnstest"
	"github.com/sshdyn/sshdyn/provider"
)

// startAPI starts PowerDNS with its HTTP API and waits until it answers.
func startAPI(t *testing.T) *dnstest.Server {
	t.Helper()
	s := dnstest.Start(t, "pdns", dnstest.Options{API: true})
	return s
}

func newBackend(t *testing.T, s *dnstest.Server, key, zone string) *provider.Backend {
	t.Helper()
	p, err := provider.New("powerdns", provider.Settings{URL: s.APIURL, Key: key})
	if err != nil {
		t.Fatal(err)
	}
	return &provider.Backend{Provider: p, Zone: zone, Name: "powerdns"}
}

func rec(name, addr string) backend.Record {
	return backend.Record{Name: name, Addr: netip.MustParseAddr(addr), TTL: 60}
}

type result int

const (
	noChange result = iota
	changed
)

// set sets one record through Set.
func set(ctx context.Context, b *provider.Backend, r backend.Record) (result, []netip.Addr, error) {
	out := b.Set(ctx, []backend.Record{r}, nil)[0]
	if out.Changed {
		return changed, out.Old, out.Err
	}
	return noChange, out.Old, out.Err
}

// TestPowerDNSAPI: through the libdns seam and PowerDNS's HTTP API: a
// change, nochg with the SOA serial unchanged (SOA-EDIT-API raises it on
// every PATCH), IPv6, TXT values one at a time; a wrong key, a missing
// zone and the API down are errors of the right kind, and change nothing.
func TestPowerDNSAPI(t *testing.T) {
	s := startAPI(t)
	ctx := context.Background()
	b := newBackend(t, s, s.APIKey, s.Zone)
	host := "home." + s.Zone

	if res, _, err := set(ctx, b, rec(host, "198.51.100.7")); err != nil || res != changed {
		t.Fatalf("Set: %v %v", res, err)
	}
	if got := s.Lookup(t, host, dns.TypeA); !slices.Equal(got, []string{"198.51.100.7"}) {
		t.Fatalf("PowerDNS serves %v", got)
	}
	serial := s.Serial(t)
	if res, _, err := set(ctx, b, rec(host, "198.51.100.7")); err != nil || res != noChange {
		t.Fatalf("repeat: %v %v", res, err)
	}
	if s.Serial(t) != serial {
		t.Error("nochg wrote: the serial moved")
	}
	res, old, err := set(ctx, b, rec(host, "2001:db8::7"))
	if err != nil || res != changed || len(old) != 0 {
		t.Fatalf("AAAA: %v %v %v", res, old, err)
	}
	if got := s.Lookup(t, host, dns.TypeAAAA); !slices.Equal(got, []string{"2001:db8::7"}) {
		t.Errorf("AAAA %v", got)
	}
	if _, old, _ := set(ctx, b, rec(host, "198.51.100.8")); !slices.Equal(old, []netip.Addr{netip.MustParseAddr("198.51.100.7")}) {
		t.Errorf("old = %v", old)
	}
	const v1, v2 = "LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0", "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbA"
	owner := "_acme-challenge." + host
	for _, v := range []string{v1, v2} {
		if res, err := b.AddTXT(ctx, owner, v, 60); err != nil || !res {
			t.Fatalf("AddTXT: %v %v", res, err)
		}
	}
	if res, err := b.RemoveTXT(ctx, owner, v1); err != nil || !res {
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
		kind backend.Kind
	}{
		"wrong key":    {newBackend(t, s, "not-the-key", s.Zone), backend.KindCredentials},
		"missing zone": {newBackend(t, s, s.APIKey, "other.example"), backend.KindNotZone},
	} {
		_, _, err := set(ctx, c.b, rec(host, "198.51.100.9"))
		var ue *backend.Error
		if !errors.As(err, &ue) || ue.Kind != c.kind || ue.Temporary {
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
	_, _, err = set(ctx, &provider.Backend{Provider: down, Zone: s.Zone, Name: "powerdns"}, rec(host, "198.51.100.9"))
	var ue *backend.Error
	if !errors.As(err, &ue) || !ue.Temporary {
		t.Errorf("API down: %v, want a temporary error", err)
	}
	if err := b.Check(ctx); err != nil {
		t.Errorf("Check: %v", err)
	}
}

// countingProvider passes calls to a real provider, counts SetRecords,
// and fails it while fail is set: an API that refuses the write.
type countingProvider struct {
	provider.Provider
	sets int
	fail bool
}

func (c *countingProvider) SetRecords(ctx context.Context, zone string, recs []libdns.Record) ([]libdns.Record, error) {
	c.sets++
	if c.fail {
		return nil, &provider.APIError{Status: 422, Body: "refused by the test"}
	}
	return c.Provider.SetRecords(ctx, zone, recs)
}

// TestSetAllIsOneWrite: audit finding H9. Several records of one request
// go to the API in one SetRecords call (one PATCH, one transaction of
// PowerDNS's: one serial step), the unchanged one is left out, and an
// API that refuses that write leaves every record as it was, each
// reported unchanged. It used to write one RRset at a time: a failure
// of the second write left the first one written and reported failed.
func TestSetAllIsOneWrite(t *testing.T) {
	s := startAPI(t)
	ctx := context.Background()
	p, err := provider.New("powerdns", provider.Settings{URL: s.APIURL, Key: s.APIKey})
	if err != nil {
		t.Fatal(err)
	}
	cp := &countingProvider{Provider: p}
	b := &provider.Backend{Provider: cp, Zone: s.Zone, Name: "powerdns"}
	a, c, d := "a."+s.Zone, "c."+s.Zone, "d."+s.Zone
	if _, _, err := set(ctx, b, rec(d, "198.51.100.4")); err != nil {
		t.Fatal(err)
	}
	cp.sets = 0
	serial := s.Serial(t)
	asked := 0
	allow := func() error { asked++; return nil }
	res := b.Set(ctx, []backend.Record{rec(a, "198.51.100.1"), rec(a, "2001:db8::1"), rec(c, "198.51.100.3"), rec(d, "198.51.100.4")}, allow)
	for i, want := range []bool{true, true, true, false} {
		if res[i].Err != nil || res[i].Changed != want {
			t.Errorf("record %d: %+v, want changed %v", i, res[i], want)
		}
	}
	if cp.sets != 1 || asked != 1 {
		t.Errorf("%d SetRecords calls and %d asks of allow for one change, want 1 and 1", cp.sets, asked)
	}
	if got := s.Serial(t); got != serial+1 {
		t.Errorf("serial %d -> %d: want one step for one PATCH", serial, got)
	}
	for name, want := range map[string][]string{a: {"198.51.100.1"}, c: {"198.51.100.3"}, d: {"198.51.100.4"}} {
		if got := s.Lookup(t, name, dns.TypeA); !slices.Equal(got, want) {
			t.Errorf("%s A %v, want %v", name, got, want)
		}
	}

	cp.fail = true
	serial = s.Serial(t)
	res = b.Set(ctx, []backend.Record{rec(a, "198.51.100.11"), rec(c, "198.51.100.13")}, nil)
	for i, r := range res {
		var ue *backend.Error
		if !errors.As(r.Err, &ue) || ue.Temporary || !strings.Contains(r.Err.Error(), "HTTP 422") {
			t.Errorf("record %d of a refused write: %v, want a lasting error with the API's status", i, r.Err)
		}
		if r.Changed || r.Old != nil {
			t.Errorf("record %d of a refused write reported %+v", i, r)
		}
	}
	if s.Serial(t) != serial || !slices.Equal(s.Lookup(t, a, dns.TypeA), []string{"198.51.100.1"}) || !slices.Equal(s.Lookup(t, c, dns.TypeA), []string{"198.51.100.3"}) {
		t.Error("a refused write changed the zone")
	}
}

// TestRedirectIsNotFollowed: the API key is never sent where a redirect
// points (Go's client follows redirects, and this header with them).
func TestRedirectIsNotFollowed(t *testing.T) {
	var leaked atomic.Bool
	elsewhere := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		leaked.Store(r.Header.Get("X-API-Key") != "")
	}))
	defer elsewhere.Close()
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, elsewhere.URL+r.URL.Path, http.StatusTemporaryRedirect)
	}))
	defer api.Close()
	p, err := provider.New("powerdns", provider.Settings{URL: api.URL, Key: "the-secret"})
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = set(context.Background(), &provider.Backend{Provider: p, Zone: "dyn.example.com", Name: "powerdns"}, rec("h.dyn.example.com", "198.51.100.1"))
	if err == nil || !strings.Contains(err.Error(), "HTTP 307") {
		t.Errorf("a redirect: %v, want the API's HTTP 307 as the error", err)
	}
	if leaked.Load() {
		t.Error("the API key was sent to the redirect's target")
	}
}

// TestConformance: the API backend passes the backend suite against
// PowerDNS's real HTTP API; its writes are the SOA serial's steps
// (SOA-EDIT-API). A wrong key, a missing zone and the API down fail
// with their kinds, in the API's words, never an RFC 2136 one.
func TestConformance(t *testing.T) {
	s := startAPI(t)
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := l.Addr().String()
	l.Close()
	down, _ := provider.New("powerdns", provider.Settings{URL: "http://" + addr, Key: s.APIKey})
	backendtest.Run(t, backendtest.Harness{
		Backend: newBackend(t, s, s.APIKey, s.Zone),
		Zone:    s.Zone,
		Writes:  func(t *testing.T) uint64 { return uint64(s.Serial(t)) },
		Failures: []backendtest.Failure{
			{Name: "wrong key", Backend: newBackend(t, s, "not-the-key", s.Zone), Kind: backend.KindCredentials},
			{Name: "missing zone", Backend: newBackend(t, s, s.APIKey, "other.example"), Kind: backend.KindNotZone},
			{Name: "API down", Backend: &provider.Backend{Provider: down, Zone: s.Zone, Name: "powerdns"}, Kind: backend.KindUnreachable, Temporary: true},
		},
		Foreign: []string{"TSIG", "primary", "tinydns"},
	})
}
