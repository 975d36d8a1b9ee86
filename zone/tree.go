package zone

import (
	"slices"
	"strings"

	"github.com/google/btree"
	"github.com/miekg/dns"
)

// tree holds a zone's names in canonical order (RFC 4034 6.1, the apex
// first), each with its records. It is a copy-on-write B-tree: clone is
// O(1), and a change to one copy copies only the path to the changed
// name, so publishing a snapshot after an update costs the same at a
// thousand names as at a million.
//
// A tree that has been published is never changed; the writer changes its
// own clone.
type tree struct {
	t      *btree.BTreeG[entry]
	origin string
}

// An entry is a name's node, under the name's key (nameKey). The name
// itself is its records' owner name: a node is never empty.
type entry struct {
	key string
	n   node
}

func (e entry) name() string { return e.n[0].rrs[0].Header().Name }

// treeDegree is the B-tree's degree: nodes of up to 63 names, a copy of a
// path is a few KiB.
const treeDegree = 32

func newTree(origin string) *tree {
	return &tree{t: btree.NewG(treeDegree, func(a, b entry) bool { return a.key < b.key }), origin: origin}
}

// nameKey returns the key that orders a name in the tree: its labels from
// the right, each followed by a 0 byte ("com\x00example\x00dyn\x00"), so
// that comparing keys byte by byte is the canonical order of RFC 4034
// 6.1 (names lower case already), an ancestor's key is a prefix of its
// descendants' keys, and the tree compares keys with a plain string
// comparison, not label by label.
func nameKey(name string) string {
	name = strings.TrimSuffix(name, ".")
	if strings.IndexByte(name, '\\') >= 0 {
		return wireKey(name)
	}
	var b strings.Builder
	b.Grow(len(name) + 2)
	for name != "" {
		i := strings.LastIndexByte(name, '.')
		b.WriteString(name[i+1:])
		b.WriteByte(0)
		if i < 0 {
			break
		}
		name = name[:i]
	}
	return b.String()
}

// wireKey is nameKey for a name with escapes: its labels as bytes, with 0
// and 1 written as 1 1 and 1 2 so that a 0 byte inside a label still
// sorts after the end of a label.
func wireKey(name string) string {
	buf := make([]byte, 256)
	n, err := dns.PackDomainName(dns.Fqdn(name), buf, 0, nil, false)
	if err != nil {
		return name // not a name the zone can hold; any order will do
	}
	var labels [][]byte
	for off := 0; off < n && buf[off] != 0; off += 1 + int(buf[off]) {
		labels = append(labels, buf[off+1:off+1+int(buf[off])])
	}
	var b []byte
	for i := len(labels) - 1; i >= 0; i-- {
		for _, c := range labels[i] {
			if c <= 1 {
				b = append(b, 1, c+1)
			} else {
				b = append(b, c)
			}
		}
		b = append(b, 0)
	}
	return string(b)
}

func (t *tree) get(name string) (node, bool) {
	e, ok := t.t.Get(entry{key: nameKey(name)})
	return e.n, ok
}

// set makes n the node of name; an empty n removes name.
func (t *tree) set(name string, n node) {
	if len(n) == 0 {
		t.t.Delete(entry{key: nameKey(name)})
		return
	}
	t.t.ReplaceOrInsert(entry{nameKey(name), n})
}

func (t *tree) len() int { return t.t.Len() }

// clone returns a copy of t that can be read, or changed, while t changes.
func (t *tree) clone() *tree { return &tree{t: t.t.Clone(), origin: t.origin} }

// ascend calls fn for every name in canonical order until fn returns false.
func (t *tree) ascend(fn func(name string, n node) bool) {
	t.t.Ascend(func(e entry) bool { return fn(e.name(), e.n) })
}

// hasBelow reports whether some name lies below name: with no records of
// its own, name is then an empty non-terminal (RFC 8020), not NXDOMAIN.
// Its descendants, if any, come right after it, and their keys start with
// its key.
func (t *tree) hasBelow(name string) bool {
	key := nameKey(name)
	below := false
	t.t.AscendGreaterOrEqual(entry{key: key}, func(e entry) bool {
		if e.key == key {
			return true
		}
		below = strings.HasPrefix(e.key, key)
		return false
	})
	return below
}

// soa returns the apex SOA.
func (t *tree) soa() *dns.SOA {
	n, _ := t.get(t.origin)
	return n.get(dns.TypeSOA)[0].(*dns.SOA)
}

// isCut reports whether name, below the apex, holds NS records: a
// delegation.
func isCut(origin, name string, n node) bool {
	return name != origin && len(n.get(dns.TypeNS)) > 0
}

// node holds the records of one owner name: its RRsets in order of type.
// A node is immutable once built (it is shared by snapshots); a change
// works on rrsets and builds a new node. A slice of one or two RRsets
// costs a tenth of a map: at a million names, hundreds of MiB.
type node []rrset

type rrset struct {
	t   uint16
	rrs []dns.RR
}

// get returns the RRset of type t, nil if there is none.
func (n node) get(t uint16) []dns.RR {
	for _, s := range n {
		if s.t == t {
			return s.rrs
		}
	}
	return nil
}

// with returns a copy of n whose RRset of type t is rrs (none if rrs is
// empty).
func (n node) with(t uint16, rrs []dns.RR) node {
	out := make(node, 0, len(n)+1)
	added := len(rrs) == 0
	for _, s := range n {
		if s.t == t {
			continue
		}
		if !added && t < s.t {
			out = append(out, rrset{t, rrs})
			added = true
		}
		out = append(out, s)
	}
	if !added {
		out = append(out, rrset{t, rrs})
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// sets returns n's RRsets as a map the caller may change.
func (n node) sets() rrsets {
	m := make(rrsets, len(n))
	for _, s := range n {
		m[s.t] = s.rrs
	}
	return m
}

// rrsets is a node being changed: RRsets by type.
type rrsets map[uint16][]dns.RR

// node returns m as a node.
func (m rrsets) node() node {
	if len(m) == 0 {
		return nil
	}
	n := make(node, 0, len(m))
	for t, rrs := range m {
		if len(rrs) > 0 {
			n = append(n, rrset{t, rrs})
		}
	}
	slices.SortFunc(n, func(a, b rrset) int { return int(a.t) - int(b.t) })
	return n
}
