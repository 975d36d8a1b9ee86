package zone

import (
	"maps"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/miekg/dns"
)

// TestCompareNames: the non-allocating comparison orders names as the
// label-splitting one does (RFC 4034 6.1).
func TestCompareNames(t *testing.T) {
	names := []string{"dyn.example.com.", "a.dyn.example.com.", "z.dyn.example.com.", "a.b.dyn.example.com.", "b.dyn.example.com.",
		"ab.dyn.example.com.", "a-b.dyn.example.com.", "x.a.dyn.example.com.", "example.com.", "dyn.example.org.", "\\..dyn.example.com.", "a\\.b.dyn.example.com.", "."}
	sign := func(n int) int { return min(max(n, -1), 1) }
	for _, a := range names {
		for _, b := range names {
			if got, want := sign(compareNames(a, b)), sign(compareSplit(a, b)); got != want {
				t.Errorf("compareNames(%q, %q) = %d, want %d", a, b, got, want)
			}
		}
	}
	if n := testing.AllocsPerRun(100, func() { compareNames("h1.dyn.example.com.", "h2.dyn.example.com.") }); n != 0 {
		t.Errorf("%v allocations per comparison", n)
	}
}

// TestIncrementalOrderAndSnapshot: after random changes (names deep and
// shallow coming and going, delegations), the order kept by reorder and
// the snapshot made by next are the ones computed from scratch.
func TestIncrementalOrderAndSnapshot(t *testing.T) {
	const origin = "dyn.example.com."
	rr := func(s string) dns.RR {
		r, err := dns.NewRR(s)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	names := map[string]node{origin: {
		dns.TypeSOA: {rr(origin + " 60 IN SOA ns." + origin + " h. 1 1 1 1 1")},
		dns.TypeNS:  {rr(origin + " 60 IN NS ns." + origin)},
	}}
	order := canonicalOrder(origin, names)
	snap := newSnapshot(origin, names, order)
	labels := []string{"a", "b", "c", "x-1", "zz"}
	rng := rand.New(rand.NewPCG(1, 2))
	for step := range 2000 {
		next := maps.Clone(names)
		dirty := map[string]bool{}
		for range 1 + rng.IntN(3) {
			name := origin
			for range 1 + rng.IntN(3) {
				name = labels[rng.IntN(len(labels))] + "." + name
			}
			dirty[name] = true
			switch rng.IntN(3) {
			case 0:
				delete(next, name)
			case 1:
				next[name] = node{dns.TypeA: {rr(name + " 60 IN A 192.0.2.1")}}
			default:
				next[name] = node{dns.TypeNS: {rr(name + " 60 IN NS ns.example.net.")}}
			}
		}
		order = reorder(origin, order, next, dirty)
		if want := canonicalOrder(origin, next); !slices.Equal(order, want) {
			t.Fatalf("step %d: order %v, want %v", step, order, want)
		}
		snap = snap.next(next, order, dirty)
		want := newSnapshot(origin, next, order)
		if !maps.Equal(snap.ents, want.ents) || !maps.Equal(snap.cuts, want.cuts) {
			t.Fatalf("step %d: ents %v cuts %v, want %v %v", step, snap.ents, snap.cuts, want.ents, want.cuts)
		}
		names = next
	}
}
