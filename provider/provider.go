// Package provider is a backend for zones kept at a DNS provider with an
// HTTP API, through the libdns interfaces (github.com/libdns/libdns v1):
// GetRecords to compare, SetRecords to replace one RRset, GetRecords again
// to confirm. Each provider is one small file that registers a
// constructor (powerdns.go, desec.go).
//
// An API offers no prerequisite: between the read and the write another
// writer may change the RRset, and its change is then overwritten. The
// read after the write catches a writer that comes after sshdyn's write
// (KindIgnored: "changed by another writer"), not one that comes before.
package provider

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/libdns/libdns"

	"github.com/sshdyn/sshdyn/backend"
	"github.com/sshdyn/sshdyn/internal/secret"
)

// Provider is what a libdns provider must do for sshdyn.
type Provider interface {
	libdns.RecordGetter
	libdns.RecordSetter
	libdns.RecordDeleter
}

// Settings configure a provider: the API's URL, its key (read from the
// key file), and a server ID where the API has one (PowerDNS).
type Settings struct {
	URL, Key, ServerID string
}

// constructors by provider name; each provider's file adds itself.
var constructors = map[string]func(Settings) (Provider, error){}

// New returns the named provider.
func New(name string, s Settings) (Provider, error) {
	c, ok := constructors[name]
	if !ok {
		return nil, fmt.Errorf("provider %q: want one of %s", name, strings.Join(Names(), ", "))
	}
	return c(s)
}

// Names returns the providers sshdyn knows, sorted.
func Names() []string {
	var out []string
	for n := range constructors {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Backend writes one zone through a provider; it is a backend.Backend.
type Backend struct {
	Provider Provider
	Zone     string // canonical, no trailing dot
	Name     string // the provider's name, for errors

	kind string // the provider, as configured
}

func (b *Backend) zone() string { return b.Zone + "." }

func (b *Backend) rel(name string) string {
	return libdns.RelativeName(strings.TrimSuffix(strings.ToLower(name), ".")+".", b.zone())
}

// fail sorts an API failure into a *backend.Error, in the API's words:
// a refused key or a missing zone is the operator's (not temporary);
// anything else, a connection or a 5xx, may pass. what says what sshdyn
// was doing ("reading the zone", "writing", "reading back").
func (b *Backend) fail(what string, err error) error {
	if e, ok := backend.As(err); ok {
		return e
	}
	e := &backend.Error{Backend: b.Name + " API", Zone: b.Zone, Err: fmt.Errorf("%s: %w", what, err),
		Kind: backend.KindUnreachable, Temporary: true, Hint: "the API did not answer: is it up, and is api_url right?"}
	var ae *APIError
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		e.Kind, e.Hint = backend.KindTimeout, "the API did not answer in time"
	case errors.As(err, &ae) && (ae.Status == 401 || ae.Status == 403):
		e.Kind, e.Temporary, e.Hint = backend.KindCredentials, false, fmt.Sprintf("HTTP %d from the API: it does not accept the key in api_key_file, or the key may not change this zone", ae.Status)
	case errors.As(err, &ae) && ae.Status == 404:
		e.Kind, e.Temporary, e.Hint = backend.KindNotZone, false, "HTTP 404 from the API: it has no zone of this name (check the zone's name and server_id)"
	case errors.As(err, &ae) && ae.Status >= 500:
		e.Kind, e.Hint = backend.KindServerFailure, fmt.Sprintf("HTTP %d from the API: its server failed; see its log", ae.Status)
	case errors.As(err, &ae):
		e.Kind, e.Temporary, e.Hint = backend.KindOther, false, fmt.Sprintf("HTTP %d from the API: it refused the request", ae.Status)
	}
	return e
}

// ignored is a change the API accepted and that is not there afterwards.
func (b *Backend) ignored(name, t string, got []string) error {
	return &backend.Error{Kind: backend.KindIgnored, Backend: b.Name + " API", Zone: b.Zone,
		Err:  fmt.Errorf("the API accepted the change, but %s %s is %v afterwards", name, t, got),
		Hint: "another writer changed it at the same moment, or the provider skipped the change"}
}

// APIError is an HTTP API's refusal.
type APIError struct {
	Status int
	Body   string
}

func (e *APIError) Error() string {
	return fmt.Sprintf("HTTP %d: %s", e.Status, strings.TrimSpace(e.Body))
}

// rrset returns the values and TTL of name's RRset of type t.
func (b *Backend) rrset(ctx context.Context, name, t string) ([]string, time.Duration, error) {
	recs, err := b.Provider.GetRecords(ctx, b.zone())
	if err != nil {
		return nil, 0, b.fail("reading the zone", err)
	}
	vals, ttl := b.values(recs, name, t)
	return vals, ttl, nil
}

// values returns the values, sorted, and the TTL of name's RRset of type
// t among recs.
func (b *Backend) values(recs []libdns.Record, name, t string) ([]string, time.Duration) {
	rel := b.rel(name)
	var vals []string
	var ttl time.Duration
	for _, r := range recs {
		rr := r.RR()
		if strings.EqualFold(rr.Name, rel) && rr.Type == t {
			v := rr.Data
			if a, err := netip.ParseAddr(v); err == nil {
				v = a.String()
			}
			vals, ttl = append(vals, v), rr.TTL
		}
	}
	slices.Sort(vals)
	return vals, ttl
}

// set replaces name's RRset of type t with vals (none: deletes it), then
// reads it back.
func (b *Backend) set(ctx context.Context, name, t string, vals []string, ttl uint32) error {
	rel := b.rel(name)
	var recs []libdns.Record
	for _, v := range vals {
		if t == "TXT" {
			recs = append(recs, libdns.TXT{Name: rel, TTL: time.Duration(ttl) * time.Second, Text: v})
		} else {
			recs = append(recs, libdns.Address{Name: rel, TTL: time.Duration(ttl) * time.Second, IP: netip.MustParseAddr(v)})
		}
	}
	var err error
	if len(recs) == 0 {
		_, err = b.Provider.DeleteRecords(ctx, b.zone(), []libdns.Record{libdns.RR{Name: rel, Type: t}})
	} else {
		_, err = b.Provider.SetRecords(ctx, b.zone(), recs)
	}
	if err != nil {
		return b.fail("writing", err)
	}
	got, _, err := b.rrset(ctx, name, t)
	if err != nil {
		return err
	}
	want := slices.Clone(vals)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		return b.ignored(name, t, got)
	}
	return nil
}

// Set is backend.Backend's: one read, then the RRsets that differ
// in one SetRecords call, then one read to confirm. PowerDNS's API takes
// them in one PATCH and deSEC's in one bulk request, each applied in one
// transaction: all or nothing. (It used to write one RRset at a time, so
// a failure of the second write left the first written and reported it
// failed: audit finding H9.) allow is asked once, and only when
// something differs.
func (b *Backend) Set(ctx context.Context, recs []backend.Record, allow func() error) []backend.Result {
	out := make([]backend.Result, len(recs))
	all, err := b.Provider.GetRecords(ctx, b.zone())
	if err != nil {
		return backend.Each(len(recs), b.fail("reading the zone", err))
	}
	var write, remove []libdns.Record
	var changed []int
	for i, r := range recs {
		t := r.Type()
		cur, _ := b.values(all, r.Name, t)
		if slices.Equal(cur, wantValues(r)) { // backend's TTL policy: TTLs are not compared
			continue
		}
		for _, v := range cur {
			if a, err := netip.ParseAddr(v); err == nil {
				out[i].Old = append(out[i].Old, a)
			}
		}
		if r.Remove {
			remove = append(remove, libdns.RR{Name: b.rel(r.Name), Type: t})
		} else {
			write = append(write, libdns.Address{Name: b.rel(r.Name), TTL: time.Duration(r.TTL) * time.Second, IP: r.Addr.Unmap()})
		}
		changed = append(changed, i)
	}
	if len(changed) == 0 {
		return out
	}
	if allow != nil {
		if err := allow(); err != nil {
			return backend.Each(len(recs), err)
		}
	}
	if c, ok := b.Provider.(Changer); ok && len(write) > 0 && len(remove) > 0 {
		if err := c.ChangeRecords(ctx, b.zone(), write, remove); err != nil {
			return backend.Each(len(recs), b.fail("writing", err))
		}
		write, remove = nil, nil
	}
	// libdns has no call that both sets and deletes: a request that sets
	// one family and removes another is two writes, but for a Changer.
	if len(write) > 0 {
		if _, err := b.Provider.SetRecords(ctx, b.zone(), write); err != nil {
			return backend.Each(len(recs), b.fail("writing", err))
		}
	}
	if len(remove) > 0 {
		if _, err := b.Provider.DeleteRecords(ctx, b.zone(), remove); err != nil {
			if len(write) > 0 {
				// The sets are written; only a read tells each record's state.
				if after, rerr := b.Provider.GetRecords(ctx, b.zone()); rerr == nil {
					return b.confirm(recs, changed, after, out, b.fail("removing", err))
				}
			}
			return backend.Each(len(recs), b.fail("removing", err))
		}
	}
	after, err := b.Provider.GetRecords(ctx, b.zone())
	if err != nil {
		// Written, and not confirmed: each record's own honest answer
		// is that its state is unknown.
		return backend.Each(len(recs), b.fail("reading back", err))
	}
	return b.confirm(recs, changed, after, out, nil)
}

// confirm fills out's results for the changed records from the zone
// read after the write: Changed if the RRset is what was asked, else
// failed (with failed, or as ignored).
func (b *Backend) confirm(recs []backend.Record, changed []int, after []libdns.Record, out []backend.Result, failed error) []backend.Result {
	for _, i := range changed {
		r := recs[i]
		if got, _ := b.values(after, r.Name, r.Type()); !slices.Equal(got, wantValues(r)) {
			err := failed
			if err == nil {
				err = b.ignored(r.Name, r.Type(), got)
			}
			out[i] = backend.Result{Old: out[i].Old, Err: err}
			continue
		}
		out[i].Changed = true
	}
	return out
}

// Changer is a Provider that can set some RRsets and delete others in
// one request, all or nothing (PowerDNS's API can).
type Changer interface {
	ChangeRecords(ctx context.Context, zone string, set, del []libdns.Record) error
}

// wantValues is r's RRset as values reads it.
func wantValues(r backend.Record) []string {
	var out []string
	for _, a := range r.Want() {
		out = append(out, a.String())
	}
	return out
}

// Lookup returns name's A and AAAA records.
func (b *Backend) Lookup(ctx context.Context, name string) ([]backend.Record, error) {
	var out []backend.Record
	for _, t := range []string{"A", "AAAA"} {
		vals, ttl, err := b.rrset(ctx, name, t)
		if err != nil {
			return nil, err
		}
		for _, v := range vals {
			out = append(out, backend.Record{Name: name, Addr: netip.MustParseAddr(v), TTL: uint32(ttl / time.Second)})
		}
	}
	return out, nil
}

// LookupTXT returns name's TXT values.
func (b *Backend) LookupTXT(ctx context.Context, name string) ([]string, error) {
	vals, _, err := b.rrset(ctx, name, "TXT")
	return vals, err
}

// AddTXT adds value to name's TXT RRset.
func (b *Backend) AddTXT(ctx context.Context, name, value string, ttl uint32) (bool, error) {
	cur, _, err := b.rrset(ctx, name, "TXT")
	if err != nil || slices.Contains(cur, value) {
		return false, err
	}
	if err := b.set(ctx, name, "TXT", append(cur, value), ttl); err != nil {
		return false, err
	}
	return true, nil
}

// RemoveTXT removes value from name's TXT RRset.
func (b *Backend) RemoveTXT(ctx context.Context, name, value string) (bool, error) {
	cur, ttl, err := b.rrset(ctx, name, "TXT")
	if err != nil || !slices.Contains(cur, value) {
		return false, err
	}
	rest := slices.DeleteFunc(cur, func(v string) bool { return v == value })
	if err := b.set(ctx, name, "TXT", rest, uint32(ttl/time.Second)); err != nil {
		return false, err
	}
	return true, nil
}

// Check proves that the API answers, accepts the key and has the zone,
// writing nothing.
func (b *Backend) Check(ctx context.Context) error {
	_, err := b.Provider.GetRecords(ctx, b.zone())
	if err != nil {
		return b.fail("reading the zone", err)
	}
	return nil
}

// Config is a provider zone's section of sshdyn's configuration.
type Config struct {
	Zone     string // canonical
	Provider string // a name of Names()
	URL      string // the API's URL
	KeyFile  string // the API key alone on one line; refused if every user may read it
	ServerID string
}

// Open makes the backend c describes, with the API key read from its
// file.
func Open(c Config) (*Backend, error) {
	b, err := secret.Read("API key", c.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("zone %s: %w", c.Zone, err)
	}
	key := strings.TrimSpace(string(b))
	if key == "" || strings.ContainsAny(key, "\r\n") {
		return nil, fmt.Errorf("zone %s: API key %s: want the key alone on one line", c.Zone, c.KeyFile)
	}
	p, err := New(c.Provider, Settings{URL: c.URL, Key: key, ServerID: c.ServerID})
	if err != nil {
		return nil, fmt.Errorf("zone %s: %w", c.Zone, err)
	}
	return &Backend{Provider: p, Zone: c.Zone, Name: c.Provider + " " + c.URL, kind: c.Provider}, nil
}

// Report says what check found: nothing beyond the key Open read.
func (b *Backend) Report() []string { return nil }

// Probe is Check, for check --dns.
func (b *Backend) Probe(ctx context.Context, note func(format string, args ...any)) error {
	if err := b.Check(ctx); err != nil {
		return err
	}
	note("the %s API answers, accepts the key and has the zone", b.kind)
	return nil
}

// Close does nothing: each API call has its own connection.
func (b *Backend) Close() error { return nil }
