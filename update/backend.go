package update

import (
	"context"
	"errors"

	"github.com/sshdyn/sshdyn/backend"
)

// Backend is an RFC 2136 primary as a backend.Backend: a Remembering
// Client, its errors in the contract's terms (with the RFC 2136 hint:
// TSIG, rcodes, the primary's update policy).
type Backend struct {
	R *Remembering
	// Server names the primary in errors; the Client's Server if empty.
	Server string
}

// NewBackend returns c, remembering what it sees, as a backend.Backend.
func NewBackend(c *Client) *Backend {
	return &Backend{R: Remember(c, nil), Server: c.Server}
}

var _ backend.Backend = (*Backend)(nil)

// Set is backend.Backend's. One record goes through Remembering.Set (a
// compare-and-set when the record was seen before); several through
// Remembering.SetAll: one prerequisite-only check, then one UPDATE.
func (b *Backend) Set(ctx context.Context, recs []backend.Record, allow func() error) []backend.Result {
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
