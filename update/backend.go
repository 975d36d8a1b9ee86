package update

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/sshdyn/sshdyn/backend"
	"github.com/sshdyn/sshdyn/tsig"
)

// Backend is an RFC 2136 primary as a backend.Backend: a Remembering
// Client, its errors in the contract's terms (with the RFC 2136 hint:
// TSIG, rcodes, the primary's update policy).
type Backend struct {
	R *Remembering
	// Server names the primary in errors; the Client's Server if empty.
	Server string

	keyFile string // for Report
	acme    bool   // for Probe
}

// NewBackend returns c, remembering what it sees, as a backend.Backend.
func NewBackend(c *Client) *Backend {
	return &Backend{R: Remember(c, nil), Server: c.Server}
}

var _ backend.Backend = (*Backend)(nil)

// Set is backend.Backend's. One record goes through Remembering.Set (a
// compare-and-set when the record was seen before); several through
// Remembering.SetAll: one prerequisite-only check, then one UPDATE.
//
// A change that removes an RRset goes through Remembering.Converge:
// signed reads, then one UPDATE guarded by what they found.
func (b *Backend) Set(ctx context.Context, recs []backend.Record, allow func() error) []backend.Result {
	if slices.ContainsFunc(recs, func(r backend.Record) bool { return r.Remove }) {
		ws := make([]Want, len(recs))
		for i, r := range recs {
			ws[i] = Want{Record: Record{Name: r.Name, Addr: r.Addr, TTL: r.TTL}, Remove: r.Remove}
		}
		res, old, errs := b.R.Converge(ctx, ws, allow)
		out := make([]backend.Result, len(recs))
		for i := range out {
			out[i] = backend.Result{Changed: res[i] == Changed, Old: old[i], Err: b.wrap(errs[i])}
		}
		return out
	}
	in := make([]Record, len(recs))
	for i, r := range recs {
		in[i] = Record{Name: r.Name, Addr: r.Addr, TTL: r.TTL}
	}
	out := make([]backend.Result, len(recs))
	if len(recs) == 1 {
		res, old, err := b.R.Set(ctx, in[0], allow)
		out[0] = backend.Result{Changed: res == Changed, Old: old, Err: b.wrap(err)}
		return out
	}
	res, old, err := b.R.SetAll(ctx, in, allow)
	if err != nil {
		return backend.Each(len(recs), b.wrap(err))
	}
	for i := range out {
		out[i] = backend.Result{Changed: res[i] == Changed, Old: old[i]}
	}
	return out
}

// Lookup is backend.Backend's.
func (b *Backend) Lookup(ctx context.Context, name string) ([]backend.Record, error) {
	recs, err := b.R.Lookup(ctx, name)
	if err != nil {
		return nil, b.wrap(err)
	}
	out := make([]backend.Record, len(recs))
	for i, r := range recs {
		out[i] = backend.Record{Name: r.Name, Addr: r.Addr, TTL: r.TTL}
	}
	return out, nil
}

// LookupTXT is backend.Backend's.
func (b *Backend) LookupTXT(ctx context.Context, name string) ([]string, error) {
	v, err := b.R.LookupTXT(ctx, name)
	return v, b.wrap(err)
}

// AddTXT is backend.Backend's.
func (b *Backend) AddTXT(ctx context.Context, name, value string, ttl uint32) (bool, error) {
	res, err := b.R.AddTXT(ctx, name, value, ttl)
	return res == Changed, b.wrap(err)
}

// RemoveTXT is backend.Backend's.
func (b *Backend) RemoveTXT(ctx context.Context, name, value string) (bool, error) {
	res, err := b.R.RemoveTXT(ctx, name, value)
	return res == Changed, b.wrap(err)
}

// wrap makes an *Error a *backend.Error (which still unwraps to it);
// other errors (allow's, the context's) pass as they are.
func (b *Backend) wrap(err error) error {
	var e *Error
	if !errors.As(err, &e) {
		return err
	}
	server := b.Server
	if server == "" {
		server = e.Server
	}
	return &backend.Error{Kind: kindOf(e.Kind), Temporary: e.Kind.Temporary(), Backend: "RFC 2136 primary " + server,
		Zone: e.Zone, Hint: e.Hint(), Err: e}
}

// kindOf is the contract's kind of an RFC 2136 failure.
func kindOf(k Kind) backend.Kind {
	switch k {
	case KindUnreachable:
		return backend.KindUnreachable
	case KindTimeout:
		return backend.KindTimeout
	case KindAuth:
		return backend.KindCredentials
	case KindRefused:
		return backend.KindRefused
	case KindNotZone:
		return backend.KindNotZone
	case KindServFail:
		return backend.KindServerFailure
	case KindIgnored:
		return backend.KindIgnored
	}
	return backend.KindOther
}

// Config is an RFC 2136 zone's section of sshdyn's configuration.
type Config struct {
	Zone    string        // the zone, canonical
	Primary string        // host:port
	KeyFile string        // the TSIG key file; refused if every user may read it
	Timeout time.Duration // one exchange; DefaultTimeout if zero
	// MaxIdle is the connections kept open to the primary between
	// updates: as many as requests may do DNS work at once (with fewer,
	// a burst closes and reopens connections by the thousand, and a busy
	// primary's short accept queue drops the SYNs of some).
	MaxIdle int
	// Observe, if set, is told of every exchange (metrics).
	Observe func(op string, took time.Duration, err error)
	// ACME: check --dns also proves the TXT grant.
	ACME bool
}

// Open makes the backend c describes: its key loaded, its pool and
// batch, and a memory of what it sees.
func Open(c Config) (*Backend, error) {
	key, err := tsig.LoadPrivate(c.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("zone %s: %w", c.Zone, err)
	}
	pool := NewPool()
	pool.MaxIdle = max(pool.MaxIdle, c.MaxIdle)
	client := &Client{Server: c.Primary, Zone: c.Zone, Key: key, Timeout: c.Timeout, Pool: pool, Batch: NewBatch(), Observe: c.Observe}
	return &Backend{R: Remember(client, &LastSeen{}), Server: c.Primary, keyFile: c.KeyFile, acme: c.ACME}, nil
}

// Client returns the RFC 2136 client beneath b.
func (b *Backend) Client() *Client { return b.R.Primary.(*Client) }

// Key returns the TSIG key b signs with.
func (b *Backend) Key() tsig.Key { return b.Client().Key }

// Report says what check found: the key.
func (b *Backend) Report() []string {
	k := b.Key()
	return []string{fmt.Sprintf("TSIG key %s (%s) from %s", k.Name, strings.TrimSuffix(k.Algorithm, "."), b.keyFile)}
}

// Probe proves, for check --dns, that the primary answers, accepts the
// key and lets it change A and AAAA records (and TXT, for ACME): see
// Client.Probe. It uses a connection of its own.
func (b *Backend) Probe(ctx context.Context, note func(format string, args ...any)) error {
	c := b.Client()
	probe := &Client{Server: c.Server, Zone: c.Zone, Key: c.Key, Timeout: c.Timeout}
	return probe.Probe(ctx, note, b.acme)
}

// ProbeWildcard proves, for check --dns, that the primary also lets the
// key change A and AAAA records at wildcard names: see
// Client.ProbeWildcard. It uses a connection of its own.
func (b *Backend) ProbeWildcard(ctx context.Context, note func(format string, args ...any)) error {
	c := b.Client()
	probe := &Client{Server: c.Server, Zone: c.Zone, Key: c.Key, Timeout: c.Timeout}
	return probe.ProbeWildcard(ctx, note)
}

// Close closes b's kept connections.
func (b *Backend) Close() error {
	if p := b.Client().Pool; p != nil {
		p.Close()
	}
	return nil
}
