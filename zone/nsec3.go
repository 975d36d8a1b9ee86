package zone

import (
	"slices"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// NSEC3 (RFC 5155), with the parameters RFC 9276 asks for: SHA-1, no
// extra iterations, an empty salt, no opt-out. Each name of the chain
// (every authoritative name, and every empty non-terminal above one) has
// an NSEC3 record at its hashed owner name, HASH.origin, a node of its
// own in the tree beside the zone's names; the chain runs in the order
// of the hashes, which is the tree's order of those nodes. A change
// re-hashes only the names it touches and their ancestors (an empty
// non-terminal comes and goes with the names below it), and updates the
// records of the hashes next to them.

// nsec3Param is the zone's NSEC3PARAM record's data (RFC 9276 3.1).
func nsec3Param(origin string, ttl uint32) *dns.NSEC3PARAM {
	return &dns.NSEC3PARAM{Hdr: dns.RR_Header{Name: origin, Rrtype: dns.TypeNSEC3PARAM, Class: dns.ClassINET, Ttl: ttl}, Hash: dns.SHA1}
}

// hashedOwner returns the owner name of name's NSEC3 record.
func hashedOwner(name, origin string) string {
	return strings.ToLower(dns.HashName(name, dns.SHA1, 0, "")) + "." + origin
}

// isNSEC3Node reports whether n is an NSEC3 record's node.
func isNSEC3Node(n node) bool { return len(n.get(dns.TypeNSEC3)) > 0 }

// inChain3 reports whether name belongs in the NSEC3 chain of t: an
// authoritative name, or an empty non-terminal (a name with no records
// that has names below it) that is not below a delegation.
func (z *Zone) inChain3(t *tree, cuts int, name string) bool {
	n, ok := t.get(name)
	if ok && hasData(n) {
		return !z.occluded(t, cuts, name)
	}
	if ok && isNSEC3Node(n) {
		return false
	}
	return name != z.Origin && t.hasBelow(name) && !z.occluded(t, cuts, name)
}

// nextHash returns the hashed owner after owner in the chain of t, the
// first after the last (the chain is a loop).
func nextHash(t *tree, owner string) string {
	next := ""
	t.t.AscendGreaterOrEqual(entry{key: nameKey(owner)}, func(e entry) bool {
		if e.name() == owner || !isNSEC3Node(e.n) {
			return true
		}
		next = e.name()
		return false
	})
	if next == "" {
		t.t.Ascend(func(e entry) bool {
			if !isNSEC3Node(e.n) {
				return true
			}
			next = e.name()
			return false
		})
	}
	return next
}

// prevHash returns the hashed owner before owner (which need not exist)
// in the chain of t, the last before the first: the NSEC3 record that
// covers owner's hash.
func prevHash(t *tree, owner string) (string, node) {
	var prev string
	var pn node
	t.t.DescendLessOrEqual(entry{key: nameKey(owner)}, func(e entry) bool {
		if e.name() == owner || !isNSEC3Node(e.n) {
			return true
		}
		prev, pn = e.name(), e.n
		return false
	})
	if prev == "" {
		t.t.Descend(func(e entry) bool {
			if !isNSEC3Node(e.n) {
				return true
			}
			prev, pn = e.name(), e.n
			return false
		})
	}
	return prev, pn
}

// nsec3Types returns the types an NSEC3 record lists for name, holding
// n: its RRsets (at a delegation NS and DS only), and RRSIG when some of
// them are signed; none for an empty non-terminal.
func nsec3Types(name, origin string, n node) []uint16 {
	cut := isCut(origin, name, n)
	var types []uint16
	signed := false
	for _, s := range n {
		if chainType(s.t) || cut && s.t != dns.TypeNS && s.t != dns.TypeDS {
			continue
		}
		types = append(types, s.t)
		if !cut || s.t == dns.TypeDS {
			signed = true
		}
	}
	if signed {
		types = append(types, dns.TypeRRSIG)
	}
	slices.Sort(types)
	return types
}

// nsec3For returns the NSEC3 record of name at owner, next the hashed
// owner after it.
func nsec3For(owner, next string, types []uint16, ttl uint32) *dns.NSEC3 {
	label, _, _ := strings.Cut(next, ".")
	return &dns.NSEC3{
		Hdr:        dns.RR_Header{Name: owner, Rrtype: dns.TypeNSEC3, Class: dns.ClassINET, Ttl: ttl},
		Hash:       dns.SHA1,
		HashLength: 20,
		NextDomain: strings.ToUpper(label),
		TypeBitMap: types,
	}
}

// resign3 is resign for a zone with NSEC3: the names in names get their
// data signed again as resign does and lose any NSEC record; the chain's
// records of these names and of their ancestors (whose being an empty
// non-terminal may have changed) are made to match, with the records of
// the hashes next to each one that joined or left the chain. Called with
// z.mu held.
func (z *Zone) resign3(names []string, olds map[string]node, now time.Time) (soaDue bool) {
	t, sg := z.pending, z.signer
	record := func(name string) { keepOld(t, olds, name) }
	slices.Sort(names)
	names = slices.Compact(names)
	ttl := nsec3TTL(t.soa())
	active := sg.active(now)
	var all []*signWork
	// Data: re-sign what changed, drop NSEC records and the signatures
	// of what is gone.
	members := map[string]bool{} // names whose chain record may change
	var hashes []string          // hashed owners to make again
	for _, name := range names {
		n, _ := t.get(name)
		if isNSEC3Node(n) {
			hashes = append(hashes, name) // the chain's own: made below
			continue
		}
		for p := name; p != "" && len(p) >= len(z.Origin); p = parent(p) {
			members[p] = true
		}
		if !z.authoritative(t, z.cuts, name, n) {
			unchain(t, olds, name, n)
			continue
		}
		old, changed := olds[name]
		if !changed {
			old = n
		}
		cut := isCut(z.Origin, name, n)
		w := &signWork{name: name, node: n.sets()}
		delete(w.node, dns.TypeRRSIG)
		delete(w.node, dns.TypeNSEC)
		if sg.plan(w, n, old, cut, active, now) {
			soaDue = true
		}
		if len(w.jobs) == 0 && len(n.get(dns.TypeNSEC)) == 0 && len(w.keep) == len(n.get(dns.TypeRRSIG)) {
			continue
		}
		all = append(all, w)
	}
	// The chain: members that joined get a record (a placeholder first,
	// so that the hashes' order is whole), members that left lose theirs;
	// then every record whose content may differ is made again.
	dirty := map[string]string{} // hashed owner → its name ("" for a neighbour)
	for name := range members {
		owner := hashedOwner(name, z.Origin)
		hn, has := t.get(owner)
		has = has && isNSEC3Node(hn)
		in := z.inChain3(t, z.cuts, name)
		switch {
		case in && !has:
			record(owner)
			t.set(owner, node{{dns.TypeNSEC3, []dns.RR{nsec3For(owner, owner, nil, ttl)}}})
			dirty[owner] = name
			if p, _ := prevHash(t, owner); p != "" {
				if _, ok := dirty[p]; !ok {
					dirty[p] = ""
				}
			}
		case !in && has:
			record(owner)
			t.set(owner, nil)
			if p, _ := prevHash(t, owner); p != "" {
				if _, ok := dirty[p]; !ok {
					dirty[p] = ""
				}
			}
		case in:
			dirty[owner] = name
		}
	}
	for _, owner := range hashes {
		if _, ok := dirty[owner]; !ok {
			dirty[owner] = ""
		}
	}
	// A neighbour's name is not known from its hash: its record keeps its
	// types, only its next hash changes.
	for owner, name := range dirty {
		hn, _ := t.get(owner)
		if !isNSEC3Node(hn) {
			continue
		}
		cur := hn.get(dns.TypeNSEC3)[0].(*dns.NSEC3)
		types := cur.TypeBitMap
		if name != "" {
			n, _ := t.get(name)
			types = nsec3Types(name, z.Origin, n)
		}
		want := nsec3For(owner, nextHash(t, owner), types, ttl)
		w := &signWork{name: owner, node: rrsets{dns.TypeNSEC3: []dns.RR{want}}}
		sg.plan(w, hn, hn, false, active, now)
		if len(w.jobs) == 0 && len(w.keep) == len(hn.get(dns.TypeRRSIG)) {
			continue
		}
		all = append(all, w)
	}
	z.storeSigned(all, olds, now)
	return soaDue
}

// nsec3TTL is the NSEC3 records' TTL, as NSEC's (RFC 9077).
func nsec3TTL(soa *dns.SOA) uint32 { return nsecTTL(soa) }

// due3 is due for a zone with NSEC3: from cursor on, at most limit names
// to sign again: a name whose data is not signed as it should be (or that
// holds an NSEC record), a name of the chain whose NSEC3 record is
// missing or lists other types (or whose empty non-terminal parent has
// none), and a hashed owner whose record's next hash is wrong or whose
// signature is due. next is the name to go on from, "" at the end.
func (z *Zone) due3(snap *snapshot, sg *signer, cursor string, limit int, now time.Time) (names []string, next string, earliest time.Time) {
	t, cuts := snap.names, snap.cuts
	ttl := nsec3TTL(snap.soa())
	add := func(name string) {
		if len(names) == 0 || names[len(names)-1] != name {
			names = append(names, name)
		}
	}
	track := func(sigs []dns.RR) {
		for _, rr := range sigs {
			if exp := expiry(rr.(*dns.RRSIG), now); earliest.IsZero() || exp.Before(earliest) {
				earliest = exp
			}
		}
	}
	label := func(owner string) string {
		l, _, _ := strings.Cut(owner, ".")
		return strings.ToUpper(l)
	}
	nextOf := func(n node) string { return n.get(dns.TypeNSEC3)[0].(*dns.NSEC3).NextDomain }
	var prev, first string
	var prevNode node
	if cursor != z.Origin {
		prev, prevNode = prevHash(t, cursor)
	}
	t.t.AscendGreaterOrEqual(entry{key: nameKey(cursor)}, func(e entry) bool {
		name, n := e.name(), e.n
		if len(names) >= limit {
			next = name
			return false
		}
		if isNSEC3Node(n) {
			if first == "" {
				first = name
			}
			if prev != "" && nextOf(prevNode) != label(name) {
				add(prev)
			}
			prev, prevNode = name, n
			if c := covering(n, dns.TypeNSEC3); !sg.good(c, ttl, now) || len(n.get(dns.TypeNSEC3)) != 1 {
				add(name)
			} else {
				track(c)
			}
			return true
		}
		if !z.authoritative(t, cuts, name, n) {
			if len(n.get(dns.TypeRRSIG)) > 0 || len(n.get(dns.TypeNSEC)) > 0 {
				add(name)
			}
			return true
		}
		if len(n.get(dns.TypeNSEC)) > 0 {
			add(name)
			return true
		}
		cut := isCut(z.Origin, name, n)
		sigs := 0
		for _, s := range n {
			if s.t == dns.TypeRRSIG || cut && s.t != dns.TypeDS {
				continue
			}
			c := covering(n, s.t)
			sigs += len(c)
			if !sg.good(c, s.rrs[0].Header().Ttl, now) {
				add(name)
				return true
			}
			track(c)
		}
		if sigs != len(n.get(dns.TypeRRSIG)) {
			add(name)
			return true
		}
		hn, ok := t.get(hashedOwner(name, z.Origin))
		if !ok || !isNSEC3Node(hn) || !slices.Equal(hn.get(dns.TypeNSEC3)[0].(*dns.NSEC3).TypeBitMap, nsec3Types(name, z.Origin, n)) {
			add(name)
			return true
		}
		if p := parent(name); name != z.Origin && p != z.Origin {
			if _, exists := t.get(p); !exists { // an empty non-terminal above
				if hp, ok := t.get(hashedOwner(p, z.Origin)); !ok || !isNSEC3Node(hp) {
					add(name)
				}
			}
		}
		return true
	})
	if next == "" && prev != "" {
		// The chain is a loop: the last record's next is the first.
		if first == "" || cursor != z.Origin {
			first = nextHash(t, prev)
		}
		if first != "" && nextOf(prevNode) != label(first) {
			add(prev)
		}
	}
	return names, next, earliest
}

// staleHashes returns the hashed owners of t that belong to no name of
// the chain (a name removed while sshdyn was stopped, a zone that was
// signed with other NSEC3 parameters): the start's signing pass removes
// them. It hashes every name only when the chain's size says so.
func (z *Zone) staleHashes(t *tree, cuts int) []string {
	hashes, members := 0, 0
	ents := map[string]bool{}
	t.ascend(func(name string, n node) bool {
		switch {
		case isNSEC3Node(n):
			hashes++
		case z.authoritative(t, cuts, name, n):
			members++
			for p := parent(name); name != z.Origin && p != z.Origin && p != ""; p = parent(p) {
				if _, ok := t.get(p); ok || ents[p] {
					break
				}
				ents[p] = true
				members++
			}
		}
		return true
	})
	if hashes == members {
		return nil
	}
	want := map[string]bool{}
	t.ascend(func(name string, n node) bool {
		if !isNSEC3Node(n) && z.authoritative(t, cuts, name, n) {
			want[hashedOwner(name, z.Origin)] = true
		}
		return true
	})
	for p := range ents {
		want[hashedOwner(p, z.Origin)] = true
	}
	var stale []string
	t.ascend(func(name string, n node) bool {
		if isNSEC3Node(n) && !want[name] {
			stale = append(stale, name)
		}
		return true
	})
	return stale
}
