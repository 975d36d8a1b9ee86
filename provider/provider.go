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

	"github.com/sshdyn/sshdyn/update"
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

// Backend writes one zone through a provider; it is a publish.Backend.
type Backend struct {
	Provider Provider
	Zone     string // canonical, no trailing dot
	Name     string // the provider's name, for errors
}

func (b *Backend) zone() string { return b.Zone + "." }

func (b *Backend) rel(name string) string {
	return libdns.RelativeName(strings.TrimSuffix(strings.ToLower(name), ".")+".", b.zone())
}

// fail sorts an API failure into an *update.Error: a refused key or a
// missing zone is the operator's (not temporary); anything else, a
// connection or a 5xx, may pass.
func (b *Backend) fail(op string, err error) error {
	e := &update.Error{Op: op, Server: b.Name, Zone: b.Zone, Rcode: -1, Err: err, Kind: update.KindUnreachable}
	var ae *APIError
	var ue *update.Error
	switch {
	case errors.As(err, &ue):
		return ue
	case errors.Is(err, context.DeadlineExceeded):
		e.Kind = update.KindTimeout
	case errors.As(err, &ae) && (ae.Status == 401 || ae.Status == 403):
		e.Kind = update.KindAuth
	case errors.As(err, &ae) && ae.Status == 404:
		e.Kind = update.KindNotZone
	case errors.As(err, &ae) && ae.Status >= 500:
		e.Kind = update.KindServFail
	case errors.As(err, &ae):
		e.Kind = update.KindOther
	}
	return e
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
		return nil, 0, b.fail(update.OpLookup, err)
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
		return b.fail(update.OpReplace, err)
	}
	got, _, err := b.rrset(ctx, name, t)
	if err != nil {
		return err
	}
	want := slices.Clone(vals)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		return &update.Error{Op: update.OpConfirm, Server: b.Name, Zone: b.Zone, Rcode: -1, Kind: update.KindIgnored,
			Err: fmt.Errorf("the API accepted the change, but %s %s is %v afterwards (another writer, or a provider that skipped it)", name, t, got)}
	}
	return nil
}

// Set makes r's RRset exactly {r.Addr}, writing nothing when it is.
func (b *Backend) Set(ctx context.Context, r update.Record, allow func() error) (update.Result, []netip.Addr, error) {
	t := "A"
	if r.Addr.Unmap().Is6() {
		t = "AAAA"
	}
	addr := r.Addr.Unmap().String()
	cur, ttl, err := b.rrset(ctx, r.Name, t)
	if err != nil {
		return update.NoChange, nil, err
	}
	if slices.Equal(cur, []string{addr}) && ttl == time.Duration(r.TTL)*time.Second {
		return update.NoChange, nil, nil
	}
	if allow != nil {
		if err := allow(); err != nil {
			return update.NoChange, nil, err
		}
	}
	if err := b.set(ctx, r.Name, t, []string{addr}, r.TTL); err != nil {
		return update.NoChange, nil, err
	}
	var old []netip.Addr
	for _, v := range cur {
		if a, err := netip.ParseAddr(v); err == nil {
			old = append(old, a)
		}
	}
	return update.Changed, old, nil
}

// SetAll sets recs as one change: one read, then the RRsets that differ
// in one SetRecords call, then one read to confirm. PowerDNS's API takes
// them in one PATCH and deSEC's in one bulk request, each applied in one
// transaction: all or nothing. (It used to write one RRset at a time, so
// a failure of the second write left the first written and reported it
// failed: audit finding H9.) allow is asked once, and only when
// something differs.
func (b *Backend) SetAll(ctx context.Context, recs []update.Record, allow func() error) ([]update.Result, [][]netip.Addr, error) {
	res, old := make([]update.Result, len(recs)), make([][]netip.Addr, len(recs))
	all, err := b.Provider.GetRecords(ctx, b.zone())
	if err != nil {
		return res, old, b.fail(update.OpLookup, err)
	}
	var write []libdns.Record
	var changed []int
	for i, r := range recs {
		t, addr := typeOf(r.Addr), r.Addr.Unmap().String()
		cur, ttl := b.values(all, r.Name, t)
		if slices.Equal(cur, []string{addr}) && ttl == time.Duration(r.TTL)*time.Second {
			continue
		}
		for _, v := range cur {
			if a, err := netip.ParseAddr(v); err == nil {
				old[i] = append(old[i], a)
			}
		}
		write = append(write, libdns.Address{Name: b.rel(r.Name), TTL: time.Duration(r.TTL) * time.Second, IP: r.Addr.Unmap()})
		changed = append(changed, i)
	}
	if len(write) == 0 {
		return res, old, nil
	}
	if allow != nil {
		if err := allow(); err != nil {
			return res, make([][]netip.Addr, len(recs)), err
		}
	}
	if _, err := b.Provider.SetRecords(ctx, b.zone(), write); err != nil {
		return res, make([][]netip.Addr, len(recs)), b.fail(update.OpReplace, err)
	}
	after, err := b.Provider.GetRecords(ctx, b.zone())
	if err != nil {
		return res, old, b.fail(update.OpConfirm, err)
	}
	for _, i := range changed {
		r := recs[i]
		got, _ := b.values(after, r.Name, typeOf(r.Addr))
		if !slices.Equal(got, []string{r.Addr.Unmap().String()}) {
			return res, old, &update.Error{Op: update.OpConfirm, Server: b.Name, Zone: b.Zone, Rcode: -1, Kind: update.KindIgnored,
				Err: fmt.Errorf("the API accepted the change, but %s %s is %v afterwards (another writer, or a provider that skipped it)", r.Name, typeOf(r.Addr), got)}
		}
		res[i] = update.Changed
	}
	return res, old, nil
}

// typeOf is the record type of a.
func typeOf(a netip.Addr) string {
	if a.Unmap().Is6() {
		return "AAAA"
	}
	return "A"
}

// Lookup returns name's A and AAAA records.
func (b *Backend) Lookup(ctx context.Context, name string) ([]update.Record, error) {
	var out []update.Record
	for _, t := range []string{"A", "AAAA"} {
		vals, ttl, err := b.rrset(ctx, name, t)
		if err != nil {
			return nil, err
		}
		for _, v := range vals {
			out = append(out, update.Record{Name: name, Addr: netip.MustParseAddr(v), TTL: uint32(ttl / time.Second)})
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
func (b *Backend) AddTXT(ctx context.Context, name, value string, ttl uint32) (update.Result, error) {
	cur, _, err := b.rrset(ctx, name, "TXT")
	if err != nil || slices.Contains(cur, value) {
		return update.NoChange, err
	}
	if err := b.set(ctx, name, "TXT", append(cur, value), ttl); err != nil {
		return update.NoChange, err
	}
	return update.Changed, nil
}

// RemoveTXT removes value from name's TXT RRset.
func (b *Backend) RemoveTXT(ctx context.Context, name, value string) (update.Result, error) {
	cur, ttl, err := b.rrset(ctx, name, "TXT")
	if err != nil || !slices.Contains(cur, value) {
		return update.NoChange, err
	}
	rest := slices.DeleteFunc(cur, func(v string) bool { return v == value })
	if err := b.set(ctx, name, "TXT", rest, uint32(ttl/time.Second)); err != nil {
		return update.NoChange, err
	}
	return update.Changed, nil
}

// Check proves that the API answers, accepts the key and has the zone,
// writing nothing.
func (b *Backend) Check(ctx context.Context) error {
	_, err := b.Provider.GetRecords(ctx, b.zone())
	if err != nil {
		return b.fail(update.OpLookup, err)
	}
	return nil
}
