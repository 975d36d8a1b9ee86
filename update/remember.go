package update

import (
	"cmp"
	"context"
	"net/netip"
	"slices"
)

// Guarded is a Primary that can also replace an RRset only while it still
// holds one given address, share checks it expects to hold with other
// such checks, and read a name's A and AAAA records: what Remembering
// needs. Client is one.
//
// ReplaceIf replaces r's RRset as Replace does if it is exactly {guard};
// otherwise it writes nothing and reports replaced false. CheckLikely is
// Check for a check the caller expects to hold: it may share one message
// with other such checks.
type Guarded interface {
	Primary
	Together
	CheckLikely(ctx context.Context, r Record) (bool, error)
	ReplaceIf(ctx context.Context, r Record, guard netip.Addr) (replaced bool, err error)
	Lookup(ctx context.Context, name string) ([]Record, error)
	TXT
}

// TXT adds and removes single TXT values (ACME challenges); Client's
// methods say how.
type TXT interface {
	LookupTXT(ctx context.Context, name string) ([]string, error)
	AddTXT(ctx context.Context, name, value string, ttl uint32) (Result, error)
	RemoveTXT(ctx context.Context, name, value string) (Result, error)
}

// Remembering decorates a Guarded primary with a memory of the one
// address it last saw each RRset hold: a check that held, or a replace
// that was confirmed. With it, Set changes an RRset it has seen with one
// compare-and-set (ReplaceIf, guarded by the address seen), which reads
// nothing first and knows exactly what it replaced; and a check of an
// address it saw there is expected to hold, so it may share a message.
// Replaces of one RRset through one Remembering take turns, so one never
// overtakes another between its replace and its confirmation.
//
// Use one Remembering per Client, through a pointer; Remember makes one.
type Remembering struct {
	Primary Guarded
	Seen    *LastSeen

	locks keyedMutex
}

var (
	_ Guarded = (*Client)(nil)
	_ Primary = (*Remembering)(nil)
	_ TXT     = (*Remembering)(nil)
)

// LookupTXT is the primary's LookupTXT: TXT values are not remembered.
func (r *Remembering) LookupTXT(ctx context.Context, name string) ([]string, error) {
	return r.Primary.LookupTXT(ctx, name)
}

// AddTXT is the primary's AddTXT.
func (r *Remembering) AddTXT(ctx context.Context, name, value string, ttl uint32) (Result, error) {
	return r.Primary.AddTXT(ctx, name, value, ttl)
}

// RemoveTXT is the primary's RemoveTXT.
func (r *Remembering) RemoveTXT(ctx context.Context, name, value string) (Result, error) {
	return r.Primary.RemoveTXT(ctx, name, value)
}

// Remember returns p decorated with seen, or a new LastSeen if seen is nil.
func Remember(p Guarded, seen *LastSeen) *Remembering {
	if seen == nil {
		seen = &LastSeen{}
	}
	return &Remembering{Primary: p, Seen: seen}
}

// Set makes r's RRset exactly {r.Addr}, writing nothing when it already
// is, as the function Set does. When the RRset was last seen holding
// another address, the check and the replace are one guarded message
// instead: it writes only if the RRset is still exactly that address, so
// it writes nothing when the RRset is already right, and only if that
// guard fails does Set go on to check. allow is called at most once.
func (m *Remembering) Set(ctx context.Context, r Record, allow func() error) (Result, []netip.Addr, error) {
	allow = once(allow)
	key := keyOf(r)
	if seen, ok := m.Seen.get(key); ok && seen != r.Addr && (allow == nil || allow() == nil) {
		old, swapped, err := m.swap(ctx, key, r)
		if err != nil {
			return NoChange, nil, err
		}
		if swapped {
			return Changed, old, nil
		}
	}
	// No compare-and-set below: a failed one forgot what it saw.
	return Set(ctx, m, r, allow)
}

// swap replaces r's RRset if it still holds the address last seen there
// and that is not r.Addr; old is that address.
func (m *Remembering) swap(ctx context.Context, key rrsetKey, r Record) (old []netip.Addr, swapped bool, err error) {
	unlock := m.locks.lock(key)
	defer unlock()
	seen, ok := m.Seen.get(key)
	if !ok || seen == r.Addr {
		return nil, false, nil
	}
	replaced, err := m.Primary.ReplaceIf(ctx, r, seen)
	if now, ok := superseded(err, []netip.Addr{seen}, r.Addr); ok {
		// Ours applied; another writer's came right after.
		m.Seen.forget(key)
		if len(now) == 1 {
			m.Seen.put(key, now[0])
		}
		return []netip.Addr{seen}, true, nil
	}
	if ignored(err) {
		// As before: a policy that skips ours, or another writer that put
		// the old address back. Set's own path decides.
		m.Seen.forget(key)
		return nil, false, nil
	}
	if err != nil || !replaced {
		m.Seen.forget(key)
		return nil, false, err
	}
	m.Seen.put(key, r.Addr)
	return []netip.Addr{seen}, true, nil
}

// Check asks the primary whether r's RRset is exactly {r.Addr}, sharing
// the message with other checks when it last saw r.Addr there, and
// remembers what it learns.
func (m *Remembering) Check(ctx context.Context, r Record) (bool, error) {
	key := keyOf(r)
	seen, ok := m.Seen.get(key)
	expected := ok && seen == r.Addr
	var held bool
	var err error
	if expected {
		held, err = m.Primary.CheckLikely(ctx, r)
	} else {
		held, err = m.Primary.Check(ctx, r)
	}
	switch {
	case err != nil:
	case held:
		m.Seen.put(key, r.Addr)
	case expected:
		m.Seen.forget(key) // another writer changed it
	}
	return held, err
}

// Replace replaces r's RRset, in turn with other replaces of it, and
// remembers r.Addr there once the primary confirmed it.
func (m *Remembering) Replace(ctx context.Context, r Record) error {
	key := keyOf(r)
	unlock := m.locks.lock(key)
	defer unlock()
	if err := m.Primary.Replace(ctx, r); err != nil {
		m.Seen.forget(key)
		return err
	}
	m.Seen.put(key, r.Addr)
	return nil
}

// SetAll is the function SetAll on the primary, in turn with other
// replaces of the same RRsets, and remembers what it learns: every RRset
// right after it, or nothing of them after an error.
func (m *Remembering) SetAll(ctx context.Context, recs []Record, allow func() error) ([]Result, [][]netip.Addr, error) {
	keys := make([]rrsetKey, len(recs))
	for i, r := range recs {
		keys[i] = keyOf(r)
	}
	// In one order, so that two SetAll calls never hold each other's.
	sorted := slices.Clone(keys)
	slices.SortFunc(sorted, func(a, b rrsetKey) int { return cmp.Or(cmp.Compare(a.name, b.name), cmp.Compare(a.t, b.t)) })
	sorted = slices.Compact(sorted)
	for _, k := range sorted {
		defer m.locks.lock(k)()
	}
	res, old, err := SetAll(ctx, m.Primary, recs, allow)
	for i, k := range keys {
		if err != nil {
			m.Seen.forget(k)
		} else {
			m.Seen.put(k, recs[i].Addr)
		}
	}
	return res, old, err
}

// LookupType reads the primary; it remembers nothing.
func (m *Remembering) LookupType(ctx context.Context, name string, t uint16) ([]Record, error) {
	return m.Primary.LookupType(ctx, name, t)
}

// Lookup reads the primary; it remembers nothing.
func (m *Remembering) Lookup(ctx context.Context, name string) ([]Record, error) {
	return m.Primary.Lookup(ctx, name)
}
