package zone

import (
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

// splitOrder is canonical order (RFC 4034 6.1) the plain way, for names
// without escapes: split into labels, compare them from the right.
func splitOrder(a, b string) int {
	la, lb := dns.SplitDomainName(a), dns.SplitDomainName(b)
	for i, j := len(la)-1, len(lb)-1; i >= 0 && j >= 0; i, j = i-1, j-1 {
		if c := strings.Compare(la[i], lb[j]); c != 0 {
			return c
		}
	}
	return len(la) - len(lb)
}

// TestNameKeys: the tree's keys order names as splitting them into
// labels does, for fixed names and 100,000 random pairs of short labels
// (shared suffixes, prefixes of labels, ancestors).
func TestNameKeys(t *testing.T) {
	names := []string{"dyn.example.com.", "a.dyn.example.com.", "z.dyn.example.com.", "a.b.dyn.example.com.", "b.dyn.example.com.",
		"ab.dyn.example.com.", "a-b.dyn.example.com.", "x.a.dyn.example.com.", "example.com.", "dyn.example.org.", "."}
	sign := func(n int) int { return min(max(n, -1), 1) }
	check := func(a, b string) {
		t.Helper()
		if got, want := sign(strings.Compare(nameKey(a), nameKey(b))), sign(splitOrder(a, b)); got != want {
			t.Fatalf("keys of %q and %q compare %d, want %d", a, b, got, want)
		}
	}
	for _, a := range names {
		for _, b := range names {
			check(a, b)
		}
	}
	rng := rand.New(rand.NewPCG(3, 4))
	random := func() string {
		labels := []string{"a", "b", "ab", "ba", "a-b", "aa", "b0", "0"}
		name := "dyn.example.com."
		if rng.IntN(8) == 0 {
			name = "example.com."
		}
		for range rng.IntN(4) {
			name = labels[rng.IntN(len(labels))] + "." + name
		}
		return name
	}
	for range 100000 {
		check(random(), random())
	}
}

// TestNameKeyOrder: the tree's keys order the example of RFC 4034 6.1,
// escapes included, as the RFC does.
func TestNameKeyOrder(t *testing.T) {
	want := []string{"example.", "a.example.", "yljkjljk.a.example.", "z.a.example.", "zabc.a.example.",
		"z.example.", "\\000.z.example.", "\\001.z.example.", "*.z.example.", "\\200.z.example."}
	got := slices.Clone(want)
	rand.Shuffle(len(got), func(i, j int) { got[i], got[j] = got[j], got[i] })
	slices.SortFunc(got, func(a, b string) int { return strings.Compare(nameKey(a), nameKey(b)) })
	if !slices.Equal(got, want) {
		t.Fatalf("order %q, want %q", got, want)
	}
}

// TestTreeAgainstAMap: after random changes (names deep and shallow
// coming and going, delegations), the tree lists the names in canonical
// order, finds empty non-terminals as a scan of every name does, and a
// clone taken before the changes still holds what it held.
func TestTreeAgainstAMap(t *testing.T) {
	const origin = "dyn.example.com."
	rr := func(s string) dns.RR {
		r, err := dns.NewRR(s)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	names := map[string]node{origin: rrsets{
		dns.TypeSOA: {rr(origin + " 60 IN SOA ns." + origin + " h. 1 1 1 1 1")},
		dns.TypeNS:  {rr(origin + " 60 IN NS ns." + origin)},
	}.node()}
	tr := treeOf(origin, names)
	labels := []string{"a", "b", "c", "x-1", "zz"}
	rng := rand.New(rand.NewPCG(1, 2))
	for step := range 2000 {
		frozen, frozenNames := tr.clone(), maps.Clone(names)
		for range 1 + rng.IntN(3) {
			name := origin
			for range 1 + rng.IntN(3) {
				name = labels[rng.IntN(len(labels))] + "." + name
			}
			var n node
			switch rng.IntN(3) {
			case 1:
				n = node{{dns.TypeA, []dns.RR{rr(name + " 60 IN A 192.0.2.1")}}}
			case 2:
				n = node{{dns.TypeNS, []dns.RR{rr(name + " 60 IN NS ns.example.net.")}}}
			}
			if n == nil {
				delete(names, name)
			} else {
				names[name] = n
			}
			tr.set(name, n)
		}
		want := slices.SortedFunc(maps.Keys(names), splitOrder)
		var got []string
		tr.ascend(func(name string, _ node) bool { got = append(got, name); return true })
		if !slices.Equal(got, want) {
			t.Fatalf("step %d: order %v, want %v", step, got, want)
		}
		for _, a := range labels {
			for _, b := range append(labels, "") {
				p := a + "." + origin
				if b != "" {
					p = b + "." + p
				}
				ent := false
				for name := range names {
					ent = ent || dns.IsSubDomain(p, name) && name != p
				}
				if tr.hasBelow(p) != ent {
					t.Fatalf("step %d: hasBelow(%s) = %v, want %v", step, p, !ent, ent)
				}
			}
		}
		var still []string
		frozen.ascend(func(name string, _ node) bool { still = append(still, name); return true })
		if !slices.Equal(still, slices.SortedFunc(maps.Keys(frozenNames), splitOrder)) {
			t.Fatalf("step %d: a clone changed with the tree", step)
		}
	}
}

// TestNodeWith: a node keeps its RRsets in type order, with replaces one
// without touching the node it was called on, and an empty RRset removes
// its type.
func TestNodeWith(t *testing.T) {
	a, _ := dns.NewRR("h.dyn.example.com. 60 IN A 192.0.2.1")
	aaaa, _ := dns.NewRR("h.dyn.example.com. 60 IN AAAA 2001:db8::1")
	txt, _ := dns.NewRR("h.dyn.example.com. 60 IN TXT \"x\"")
	var n node
	n = n.with(dns.TypeTXT, []dns.RR{txt}).with(dns.TypeA, []dns.RR{a})
	m := n.with(dns.TypeAAAA, []dns.RR{aaaa})
	types := func(n node) (out []uint16) {
		for _, s := range n {
			out = append(out, s.t)
		}
		return out
	}
	if got := types(m); !slices.Equal(got, []uint16{dns.TypeA, dns.TypeTXT, dns.TypeAAAA}) {
		t.Errorf("types %v, want A TXT AAAA in numeric order", got)
	}
	if got := types(n); !slices.Equal(got, []uint16{dns.TypeA, dns.TypeTXT}) {
		t.Errorf("with changed the node it was called on: %v", got)
	}
	if got := types(m.with(dns.TypeTXT, nil)); !slices.Equal(got, []uint16{dns.TypeA, dns.TypeAAAA}) {
		t.Errorf("after removing TXT: %v", got)
	}
	if m.get(dns.TypeAAAA)[0] != aaaa || m.get(dns.TypeMX) != nil {
		t.Error("get")
	}
	if n.with(dns.TypeA, nil).with(dns.TypeTXT, nil) != nil {
		t.Error("a node with no RRsets is not nil")
	}
}

// treeOf returns a tree of names, as parse builds it: keys sorted, then
// added in order.
func treeOf(origin string, names map[string]node) *tree {
	entries := make([]entry, 0, len(names))
	for name, n := range names {
		entries = append(entries, entry{nameKey(name), n})
	}
	slices.SortFunc(entries, func(a, b entry) int { return strings.Compare(a.key, b.key) })
	t := newTree(origin)
	for _, e := range entries {
		t.t.ReplaceOrInsert(e)
	}
	return t
}
