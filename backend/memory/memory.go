// Package memory is a backend.Backend that keeps its records in maps:
// the core's rules and the fronts are tested with it, without a DNS
// server. It passes backendtest like every backend.
package memory

import (
	"context"
	"net/netip"
	"slices"
	"sync"

	"github.com/sshdyn/sshdyn/backend"
)

// Backend is an in-memory zone. The zero value is not ready: use New.
type Backend struct {
	mu    sync.Mutex
	recs  map[string]backend.Record // by "name TYPE"
	txt   map[string][]string
	ttl   map[string]uint32        // TXT TTLs by name
	other map[string]backend.RRset // other RRsets (SSHFP), by "name TYPE"
	fail  error
	block chan struct{}

	sets           []backend.Record // every record asked of Set, in order
	calls, changes int              // Set calls, and those that wrote
}

// New returns an empty Backend.
func New() *Backend {
	return &Backend{recs: map[string]backend.Record{}, txt: map[string][]string{}, ttl: map[string]uint32{}, other: map[string]backend.RRset{}}
}

// Fail makes every later call fail with err (nil: succeed again).
func (b *Backend) Fail(err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.fail = err
}

// Block makes Set wait until ch is closed (nil: no waiting).
func (b *Backend) Block(ch chan struct{}) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.block = ch
}

// Counts returns the Set calls so far, those that wrote, and every
// record asked of Set.
func (b *Backend) Counts() (calls, changes int, asked []backend.Record) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.calls, b.changes, slices.Clone(b.sets)
}

// Get returns what name's RRset of type t ("A", "AAAA") holds.
func (b *Backend) Get(name, t string) (netip.Addr, uint32, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	r, ok := b.recs[name+" "+t]
	return r.Addr, r.TTL, ok
}

// TXTNames returns the names that have TXT values.
func (b *Backend) TXTNames() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
	for n := range b.txt {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// TXTTTL returns the TTL of name's TXT RRset.
func (b *Backend) TXTTTL(name string) uint32 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.ttl[name]
}

// Set is backend.Backend's: one change, all or nothing.
func (b *Backend) Set(ctx context.Context, recs []backend.Record, allow func() error) []backend.Result {
	b.mu.Lock()
	block := b.block
	b.mu.Unlock()
	if block != nil {
		<-block
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.calls++
	b.sets = append(b.sets, recs...)
	if b.fail != nil {
		return backend.Each(len(recs), b.fail)
	}
	out := make([]backend.Result, len(recs))
	var differ []int
	for i, r := range recs {
		cur, ok := b.recs[r.Name+" "+r.Type()]
		if r.Remove && ok || !r.Remove && (!ok || cur.Addr != r.Addr) {
			differ = append(differ, i)
		}
	}
	if len(differ) == 0 {
		return out
	}
	if allow != nil {
		if err := allow(); err != nil {
			return backend.Each(len(recs), err)
		}
	}
	b.changes++
	for _, i := range differ {
		r := recs[i]
		k := r.Name + " " + r.Type()
		if cur, ok := b.recs[k]; ok {
			out[i].Old = []netip.Addr{cur.Addr}
		}
		if r.Remove {
			delete(b.recs, k)
		} else {
			b.recs[k] = r
		}
		out[i].Changed = true
	}
	return out
}

// Lookup is backend.Backend's.
func (b *Backend) Lookup(ctx context.Context, name string) ([]backend.Record, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.fail != nil {
		return nil, b.fail
	}
	var out []backend.Record
	for _, t := range []string{"A", "AAAA"} {
		if r, ok := b.recs[name+" "+t]; ok {
			out = append(out, r)
		}
	}
	return out, nil
}

// LookupTXT is backend.Backend's.
func (b *Backend) LookupTXT(ctx context.Context, name string) ([]string, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.fail != nil {
		return nil, b.fail
	}
	return slices.Clone(b.txt[name]), nil
}

// AddTXT is backend.Backend's.
func (b *Backend) AddTXT(ctx context.Context, name, value string, ttl uint32) (bool, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.fail != nil {
		return false, b.fail
	}
	if slices.Contains(b.txt[name], value) {
		return false, nil
	}
	b.txt[name] = append(b.txt[name], value)
	b.ttl[name] = ttl
	b.changes++
	return true, nil
}

// RemoveTXT is backend.Backend's.
func (b *Backend) RemoveTXT(ctx context.Context, name, value string) (bool, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.fail != nil {
		return false, b.fail
	}
	i := slices.Index(b.txt[name], value)
	if i < 0 {
		return false, nil
	}
	if b.txt[name] = slices.Delete(b.txt[name], i, i+1); len(b.txt[name]) == 0 {
		delete(b.txt, name)
	}
	b.changes++
	return true, nil
}

// Changes returns how many times the Backend has written (the
// conformance suite's "serial").
func (b *Backend) Changes() uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return uint64(b.changes)
}

// SetRRset is backend.RRsetter's.
func (b *Backend) SetRRset(ctx context.Context, set backend.RRset) (bool, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.fail != nil {
		return false, b.fail
	}
	k := set.Name + " " + set.Type
	if backend.SameData(b.other[k].Data, set.Data) {
		return false, nil
	}
	b.changes++
	if len(set.Data) == 0 {
		delete(b.other, k)
	} else {
		set.Data = slices.Clone(set.Data)
		b.other[k] = set
	}
	return true, nil
}

// LookupRRset is backend.RRsetter's.
func (b *Backend) LookupRRset(ctx context.Context, name, t string) ([]string, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.fail != nil {
		return nil, b.fail
	}
	return slices.Clone(b.other[name+" "+t].Data), nil
}

var _ backend.RRsetter = (*Backend)(nil)
