// Package backendtest is the conformance suite every backend.Backend
// runs, as every fs.FS runs testing/fstest.TestFS: the RFC 2136 client
// against BIND, Knot, PowerDNS and sshdyn's embedded primary, the
// embedded zone in process, tinydns, the provider API, and the
// in-memory backend. It checks the contract of package backend: nothing
// written for a record that is right (whatever its TTL), several
// records as one change with a result each, allow asked at most once
// and never for nothing, an allow that refuses writes nothing, the
// addresses a change replaced, TXT values added and removed one at a
// time and idempotently, and each failure with its kind, its temporary
// flag and a hint in the backend's own words.
package backendtest

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/sshdyn/sshdyn/backend"
)

// Harness is a backend under test, with a zone of its own that holds
// none of the names below yet.
type Harness struct {
	Backend backend.Backend
	Zone    string // canonical; the suite's names are below it
	// Writes returns a number that moves with every write to the zone,
	// and only then: the SOA serial, tinydns-data's runs, ….
	Writes func(t *testing.T) uint64
	// Failures are the backend made to fail, each with the kind and
	// the temporary flag its error must carry.
	Failures []Failure
	// Foreign are words that belong to other backends and must not be in
	// this one's errors (an HTTP API must not say "TSIG").
	Foreign []string
}

// Failure is a backend that fails, and how.
type Failure struct {
	Name      string
	Backend   backend.Backend
	Kind      backend.Kind
	Temporary bool
}

var (
	v4a, v4b = netip.MustParseAddr("192.0.2.10"), netip.MustParseAddr("192.0.2.11")
	v6a      = netip.MustParseAddr("2001:db8::10")
)

// Run runs the suite on h.
func Run(t *testing.T, h Harness) {
	ctx := context.Background()
	name := func(label string) string { return label + "." + h.Zone }
	rec := func(label string, a netip.Addr, ttl uint32) backend.Record {
		return backend.Record{Name: name(label), Addr: a, TTL: ttl}
	}
	// set runs Set and fails the test on a record's error.
	set := func(t *testing.T, allow func() error, recs ...backend.Record) []backend.Result {
		t.Helper()
		res := h.Backend.Set(ctx, recs, allow)
		if len(res) != len(recs) {
			t.Fatalf("Set returned %d results for %d records", len(res), len(recs))
		}
		for i, r := range res {
			if r.Err != nil {
				t.Fatalf("Set %s %s: %v", recs[i].Name, recs[i].Addr, r.Err)
			}
		}
		return res
	}
	served := func(t *testing.T, label string) []string {
		t.Helper()
		recs, err := h.Backend.Lookup(ctx, name(label))
		if err != nil {
			t.Fatalf("Lookup %s: %v", name(label), err)
		}
		var out []string
		for _, r := range recs {
			out = append(out, r.Addr.String())
		}
		slices.Sort(out)
		return out
	}

	t.Run("a record set, then unchanged", func(t *testing.T) {
		before := h.Writes(t)
		if res := set(t, nil, rec("one", v4a, 60)); !res[0].Changed || len(res[0].Old) != 0 {
			t.Errorf("first Set: %+v, want changed, nothing replaced", res[0])
		}
		if got := served(t, "one"); !slices.Equal(got, []string{v4a.String()}) {
			t.Errorf("served %v", got)
		}
		after := h.Writes(t)
		if after == before {
			t.Error("a change wrote nothing")
		}
		asked := 0
		if res := set(t, func() error { asked++; return nil }, rec("one", v4a, 60)); res[0].Changed {
			t.Error("the same address again: changed")
		}
		if asked != 0 {
			t.Errorf("allow asked %d times when nothing differs", asked)
		}
		// The TTL policy: the address is right, so the record is.
		if res := set(t, nil, rec("one", v4a, 300)); res[0].Changed {
			t.Error("the same address with another TTL: changed")
		}
		if h.Writes(t) != after {
			t.Error("an unchanged record was written")
		}
		res := set(t, nil, rec("one", v4b, 60))
		if !res[0].Changed || !slices.Equal(res[0].Old, []netip.Addr{v4a}) {
			t.Errorf("a new address: %+v, want changed, replacing %s", res[0], v4a)
		}
	})

	t.Run("several records are one change", func(t *testing.T) {
		set(t, nil, rec("three", v4a, 60))
		before := h.Writes(t)
		asked := 0
		res := set(t, func() error { asked++; return nil }, rec("two", v4a, 60), rec("two", v6a, 60), rec("three", v4a, 60))
		if !res[0].Changed || !res[1].Changed || res[2].Changed {
			t.Errorf("results %+v, want changed, changed, unchanged", res)
		}
		if asked != 1 {
			t.Errorf("allow asked %d times, want once", asked)
		}
		if h.Writes(t) == before {
			t.Error("nothing written")
		}
		if got := served(t, "two"); !slices.Equal(got, []string{v4a.String(), v6a.String()}) {
			t.Errorf("two serves %v", got)
		}
	})

	t.Run("an allow that refuses writes nothing", func(t *testing.T) {
		before := h.Writes(t)
		refusal := errors.New("refused by allow")
		asked := 0
		res := h.Backend.Set(ctx, []backend.Record{rec("four", v4a, 60), rec("two", v4b, 60)}, func() error { asked++; return refusal })
		for i, r := range res {
			if !errors.Is(r.Err, refusal) || r.Changed {
				t.Errorf("record %d: %+v, want allow's error", i, r)
			}
		}
		if asked != 1 {
			t.Errorf("allow asked %d times, want once", asked)
		}
		if h.Writes(t) != before {
			t.Error("written although allow refused")
		}
		if got := served(t, "four"); len(got) != 0 {
			t.Errorf("four serves %v", got)
		}
		if got := served(t, "two"); !slices.Equal(got, []string{v4a.String(), v6a.String()}) {
			t.Errorf("two serves %v", got)
		}
	})

	t.Run("removals", func(t *testing.T) {
		set(t, nil, rec("six", v4a, 60), rec("six", v6a, 60), rec("seven", v4a, 60))
		before := h.Writes(t)
		asked := 0
		// A removal, a removal of nothing, and a set, in one change.
		res := set(t, func() error { asked++; return nil }, backend.Removal(name("six"), "A"), backend.Removal(name("eight"), "AAAA"), rec("seven", v4b, 60))
		if !res[0].Changed || !slices.Equal(res[0].Old, []netip.Addr{v4a}) {
			t.Errorf("removing six's A: %+v, want changed, replacing %s", res[0], v4a)
		}
		if res[1].Changed {
			t.Errorf("removing eight's AAAA, which it has not: %+v, want unchanged", res[1])
		}
		if !res[2].Changed {
			t.Errorf("seven's new address beside the removal: %+v, want changed", res[2])
		}
		if asked != 1 {
			t.Errorf("allow asked %d times, want once", asked)
		}
		after := h.Writes(t)
		if after == before {
			t.Error("a removal wrote nothing")
		}
		if got := served(t, "six"); !slices.Equal(got, []string{v6a.String()}) {
			t.Errorf("six serves %v after its A's removal, want its AAAA only", got)
		}
		if got := served(t, "seven"); !slices.Equal(got, []string{v4b.String()}) {
			t.Errorf("seven serves %v", got)
		}
		asked = 0
		res = set(t, func() error { asked++; return nil }, backend.Removal(name("six"), "A"), backend.Removal(name("eight"), "A"))
		if res[0].Changed || res[1].Changed || asked != 0 {
			t.Errorf("removing what is gone: %+v, allow asked %d times; want unchanged, not asked", res, asked)
		}
		if h.Writes(t) != after {
			t.Error("removing what is gone wrote")
		}
		refusal := errors.New("refused by allow")
		res = h.Backend.Set(ctx, []backend.Record{backend.Removal(name("six"), "AAAA")}, func() error { return refusal })
		if !errors.Is(res[0].Err, refusal) || res[0].Changed {
			t.Errorf("a refused removal: %+v", res[0])
		}
		if got := served(t, "six"); !slices.Equal(got, []string{v6a.String()}) {
			t.Errorf("six serves %v after a refused removal", got)
		}
		res = set(t, nil, backend.Removal(name("six"), "AAAA"), backend.Removal(name("seven"), "A"))
		if !res[0].Changed || !res[1].Changed || !slices.Equal(res[1].Old, []netip.Addr{v4b}) {
			t.Errorf("removing the rest: %+v", res)
		}
		if got := served(t, "six"); len(got) != 0 {
			t.Errorf("six serves %v after both removals", got)
		}
		// And back: a set after a removal.
		if res := set(t, nil, rec("six", v4b, 60)); !res[0].Changed || len(res[0].Old) != 0 {
			t.Errorf("six back: %+v", res[0])
		}
	})

	t.Run("TXT values one at a time", func(t *testing.T) {
		const v1, v2 = "LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0", "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbA"
		owner := "_acme-challenge." + name("one")
		for _, step := range []struct {
			add     bool
			value   string
			changed bool
			after   []string
		}{
			{true, v1, true, []string{v1}},
			{true, v1, false, []string{v1}},
			{true, v2, true, []string{v1, v2}},
			{false, v1, true, []string{v2}},
			{false, v1, false, []string{v2}},
			{false, v2, true, nil},
		} {
			var changed bool
			var err error
			if step.add {
				changed, err = h.Backend.AddTXT(ctx, owner, step.value, 60)
			} else {
				changed, err = h.Backend.RemoveTXT(ctx, owner, step.value)
			}
			if err != nil || changed != step.changed {
				t.Fatalf("add=%v %s: changed %v, %v; want %v", step.add, step.value[:4], changed, err, step.changed)
			}
			got, err := h.Backend.LookupTXT(ctx, owner)
			slices.Sort(got)
			if err != nil || !slices.Equal(got, step.after) {
				t.Fatalf("after add=%v %s: %v %v, want %v", step.add, step.value[:4], got, err, step.after)
			}
		}
	})

	if rs, ok := h.Backend.(backend.RRsetter); ok {
		t.Run("SSHFP RRsets replaced whole", func(t *testing.T) {
			owner := name("keys")
			ed := backend.SSHFPData(4, 2, []byte(strings.Repeat("\xab", 32)))
			ec := backend.SSHFPData(3, 2, []byte(strings.Repeat("\x01", 32)))
			rsa := backend.SSHFPData(1, 2, []byte(strings.Repeat("\xfe", 32)))
			for i, step := range []struct {
				data    []string
				changed bool
			}{
				{[]string{ed, ec}, true},
				{[]string{ec, ed}, false}, // the same, in another order
				{[]string{rsa}, true},
				{nil, true},
				{nil, false},
			} {
				before := h.Writes(t)
				changed, err := rs.SetRRset(ctx, backend.RRset{Name: owner, Type: "SSHFP", TTL: 60, Data: step.data})
				if err != nil || changed != step.changed {
					t.Fatalf("step %d: changed %v, %v; want %v", i, changed, err, step.changed)
				}
				if wrote := h.Writes(t) != before; wrote != step.changed {
					t.Errorf("step %d: wrote %v, changed %v", i, wrote, step.changed)
				}
				got, err := rs.LookupRRset(ctx, owner, "SSHFP")
				if err != nil || !backend.SameData(got, step.data) {
					t.Fatalf("step %d: served %q, %v; want %q", i, got, err, step.data)
				}
			}
			if recs, _ := h.Backend.Lookup(ctx, owner); len(recs) != 0 {
				t.Errorf("SSHFP changes left addresses: %v", recs)
			}
		})
	}

	for _, f := range h.Failures {
		t.Run("failure: "+f.Name, func(t *testing.T) {
			res := f.Backend.Set(ctx, []backend.Record{rec("five", v4a, 60), rec("five", v6a, 60)}, nil)
			for i, r := range res {
				e, ok := backend.As(r.Err)
				switch {
				case !ok:
					t.Errorf("record %d: %v, want a *backend.Error", i, r.Err)
				case e.Kind != f.Kind || e.Temporary != f.Temporary:
					t.Errorf("record %d: kind %v temporary %v (%v), want %v %v", i, e.Kind, e.Temporary, e, f.Kind, f.Temporary)
				case e.Hint == "" || e.Backend == "":
					t.Errorf("record %d: %v has no hint or no backend name", i, e)
				case r.Changed:
					t.Errorf("record %d: changed, and failed", i)
				}
				if r.Err != nil {
					for _, w := range h.Foreign {
						if strings.Contains(r.Err.Error(), w) {
							t.Errorf("record %d: %q says %q, another backend's word", i, r.Err, w)
						}
					}
				}
			}
			if got := served(t, "five"); len(got) != 0 {
				t.Errorf("a failed Set left five serving %v", got)
			}
		})
	}
}
