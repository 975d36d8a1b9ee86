package zone

import (
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// Signing (RFC 4033-4035). A zone with DNSSEC keeps its signatures and
// its NSEC chain in its tree, beside the records they cover: they are in
// the journal, the zone file and every transfer, so a secondary serves
// the signed zone as it gets it. Every change re-signs in the same diff
// what it changed (resign): the RRsets of the changed names, their NSEC
// records and their neighbours' (a name added or removed changes its
// predecessor's next name), and the SOA; a change costs O(changed
// names), not O(zone). Signatures due (Refresh before they expire) are
// made again by the zone's maintenance (maintain.go), a batch at a time;
// each signature's expiry is jittered by up to Refresh/2, so a zone
// signed at once is refreshed over days, not at one moment.

// signer holds a zone's keys and rules. Each key's timing says when it
// is in the DNSKEY RRset, when it signs (every active key signs every
// RRset: a CSK rollover by double signature), and when its CDS and
// CDNSKEY are published.
type signer struct {
	cfg               DNSSEC
	keys              []*key
	validity, refresh time.Duration
}

func newSigner(cfg DNSSEC, keys []*key) *signer {
	v, r := cfg.validity()
	return &signer{cfg: cfg, keys: keys, validity: v, refresh: r}
}

func (sg *signer) now() time.Time { return sg.cfg.clock() }

// active returns the keys that sign at now.
func (sg *signer) active(now time.Time) []*key {
	var out []*key
	for _, k := range sg.keys {
		if k.timing.active(now) {
			out = append(out, k)
		}
	}
	return out
}

// goodBy reports whether sigs hold a signature by k that can stay for an
// RRset of TTL ttl that did not change: of that TTL and not due.
func (sg *signer) goodBy(k *key, sigs []dns.RR, ttl uint32, now time.Time) bool {
	due := uint32(now.Add(sg.refresh).Unix())
	for _, rr := range sigs {
		s := rr.(*dns.RRSIG)
		if s.KeyTag == k.tag && s.Algorithm == k.pub.Algorithm && s.OrigTtl == ttl && s.Hdr.Ttl == ttl && serialBefore(due, s.Expiration) {
			return true
		}
	}
	return false
}

// byKey returns the signature in sigs made by k, nil if none.
func byKey(k *key, sigs []dns.RR) dns.RR {
	for _, rr := range sigs {
		if s := rr.(*dns.RRSIG); s.KeyTag == k.tag && s.Algorithm == k.pub.Algorithm {
			return rr
		}
	}
	return nil
}

// inceptionSkew dates a signature's inception back, for validators whose
// clock is behind.
const inceptionSkew = time.Hour

// sign returns rrset's signatures, one by each of keys.
func (sg *signer) sign(rrset []dns.RR, keys []*key, origin string, now time.Time) []dns.RR {
	out := make([]dns.RR, 0, len(keys))
	h := rrset[0].Header()
	exp := now.Add(sg.validity - rand.N(sg.refresh/2+1))
	for _, k := range keys {
		sig := &dns.RRSIG{
			Hdr:        dns.RR_Header{Name: h.Name, Rrtype: dns.TypeRRSIG, Class: dns.ClassINET, Ttl: h.Ttl},
			Algorithm:  k.pub.Algorithm,
			KeyTag:     k.tag,
			SignerName: origin,
			Inception:  uint32(now.Add(-inceptionSkew).Unix()),
			Expiration: uint32(exp.Unix()),
		}
		if err := sig.Sign(k.priv, rrset); err != nil {
			continue // cannot happen with a key that loaded; the RRset is found unsigned and signed again
		}
		out = append(out, sig)
	}
	return out
}

// good reports whether sigs, the signatures of an RRset of TTL ttl that
// did not change, can stay as they are: one good one by each active key,
// none by another key.
func (sg *signer) good(sigs []dns.RR, ttl uint32, now time.Time) bool {
	active := sg.active(now)
	if len(sigs) != len(active) {
		return false
	}
	for _, k := range active {
		if !sg.goodBy(k, sigs, ttl, now) {
			return false
		}
	}
	return true
}

// covering returns the signatures in n's RRSIG RRset that cover type t.
func covering(n node, t uint16) []dns.RR {
	var out []dns.RR
	for _, rr := range n.get(dns.TypeRRSIG) {
		if rr.(*dns.RRSIG).TypeCovered == t {
			out = append(out, rr)
		}
	}
	return out
}

// chainType reports whether t is kept by the signer, never by updates:
// the signatures and the NSEC chain.
func chainType(t uint16) bool { return t == dns.TypeRRSIG || t == dns.TypeNSEC || t == dns.TypeNSEC3 }

// dnssecType reports whether t is one of DNSSEC's own types, which no
// update may change: the signer keeps them (RFC 4035 2; RFC 7344).
func dnssecType(t uint16) bool {
	switch t {
	case dns.TypeRRSIG, dns.TypeNSEC, dns.TypeNSEC3, dns.TypeNSEC3PARAM, dns.TypeDNSKEY, dns.TypeCDS, dns.TypeCDNSKEY:
		return true
	}
	return false
}

// hasData reports whether n holds records other than signatures and NSEC.
func hasData(n node) bool {
	for _, s := range n {
		if !chainType(s.t) {
			return true
		}
	}
	return false
}

// occluded reports whether name lies below a delegation in t: not the
// zone's data, neither signed nor in the NSEC chain (RFC 4035 2.2).
func (z *Zone) occluded(t *tree, cuts int, name string) bool {
	if cuts == 0 {
		return false
	}
	for p := parent(name); p != "" && p != z.Origin && len(p) >= len(z.Origin); p = parent(p) {
		if n, ok := t.get(p); ok && isCut(z.Origin, p, n) {
			return true
		}
	}
	return false
}

// inChain reports whether name, holding n, has an NSEC record in t.
func inChain(n node) bool { return len(n.get(dns.TypeNSEC)) > 0 }

// authoritative reports whether name is in t's NSEC chain: it has data
// and is not below a delegation.
func (z *Zone) authoritative(t *tree, cuts int, name string, n node) bool {
	return hasData(n) && !z.occluded(t, cuts, name)
}

// successor returns the authoritative name after name in canonical
// order, the apex after the last (the NSEC chain is a loop).
func (z *Zone) successor(t *tree, cuts int, name string) string {
	next := ""
	t.t.AscendGreaterOrEqual(entry{key: nameKey(name)}, func(e entry) bool {
		n := e.name()
		if n == name || !z.authoritative(t, cuts, n, e.n) {
			return true
		}
		next = n
		return false
	})
	if next == "" {
		return z.Origin
	}
	return next
}

// predecessor returns the authoritative name before name (which need
// not exist) in canonical order: the owner of the NSEC that covers it.
func (z *Zone) predecessor(t *tree, cuts int, name string) (string, node) {
	var prev string
	var pn node
	t.t.DescendLessOrEqual(entry{key: nameKey(name)}, func(e entry) bool {
		n := e.name()
		if n == name || !z.authoritative(t, cuts, n, e.n) {
			return true
		}
		prev, pn = n, e.n
		return false
	})
	if prev == "" { // before the apex: only the apex itself
		t.t.Descend(func(e entry) bool {
			if !z.authoritative(t, cuts, e.name(), e.n) {
				return true
			}
			prev, pn = e.name(), e.n
			return false
		})
	}
	return prev, pn
}

// nsecTTL is the TTL of NSEC records: the SOA's MINIMUM, or its TTL if
// less (RFC 9077).
func nsecTTL(soa *dns.SOA) uint32 { return min(soa.Minttl, soa.Hdr.Ttl) }

// nsecFor returns the NSEC record name (holding n, a delegation if cut)
// should have.
func nsecFor(name, next string, n node, cut bool, ttl uint32) *dns.NSEC {
	types := []uint16{dns.TypeRRSIG, dns.TypeNSEC}
	for _, s := range n {
		if chainType(s.t) || cut && s.t != dns.TypeNS && s.t != dns.TypeDS {
			continue
		}
		types = append(types, s.t)
	}
	slices.Sort(types)
	return &dns.NSEC{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeNSEC, Class: dns.ClassINET, Ttl: ttl}, NextDomain: next, TypeBitMap: types}
}

// signJob is an RRset to sign by keys, and where its signatures go.
type signJob struct {
	rrset []dns.RR
	keys  []*key
	sigs  []dns.RR
}

// resign brings the names in names, and the NSEC records around them,
// up to date in z.pending after their data changed (olds holds the node
// each changed name had before; resign adds the names it changes
// besides). It reports whether the SOA's signature is due, which the
// caller then makes after raising the serial (signSOA). Called with
// z.mu held.
func (z *Zone) resign(names []string, olds map[string]node, now time.Time) (soaDue bool) {
	if z.signer.cfg.NSEC3 {
		return z.resign3(names, olds, now)
	}
	t, sg := z.pending, z.signer
	slices.Sort(names)
	names = slices.Compact(names)
	chain := map[string]bool{} // names whose NSEC may change
	var gone []string          // names that left the chain
	for _, name := range names {
		n, _ := t.get(name)
		old, changed := olds[name]
		if !changed {
			old = n
		}
		if !z.authoritative(t, z.cuts, name, n) {
			// No data left, or below a delegation: no NSEC, no
			// signatures.
			unchain(t, olds, name, n)
			if inChain(old) {
				gone = append(gone, name)
			}
			continue
		}
		chain[name] = true
		if !inChain(old) {
			gone = append(gone, name) // joined: its predecessor's next changes
		}
	}
	for _, name := range gone {
		if p, _ := z.predecessor(t, z.cuts, name); p != "" {
			chain[p] = true
		}
	}
	soa := t.soa()
	ttl := nsecTTL(soa)
	active := sg.active(now)
	var all []*signWork
	for name := range chain {
		n, _ := t.get(name)
		old, changed := olds[name]
		if !changed {
			old = n
		}
		cut := isCut(z.Origin, name, n)
		w := &signWork{name: name, node: n.sets()}
		w.node[dns.TypeNSEC] = []dns.RR{nsecFor(name, z.successor(t, z.cuts, name), n, cut, ttl)}
		delete(w.node, dns.TypeRRSIG)
		if sg.plan(w, n, old, cut, active, now) {
			soaDue = true
		}
		if len(w.jobs) == 0 && sameSet(n.get(dns.TypeNSEC), w.node[dns.TypeNSEC]) && len(w.keep) == len(n.get(dns.TypeRRSIG)) {
			continue // nothing changes here
		}
		all = append(all, w)
	}
	z.storeSigned(all, olds, now)
	return soaDue
}

// storeSigned makes the signatures all's jobs ask for, on every core if
// they are many, and stores each name's node with its signatures in the
// pending tree, its node before kept in olds.
func (z *Zone) storeSigned(all []*signWork, olds map[string]node, now time.Time) {
	var jobs []*signJob
	for _, w := range all {
		jobs = append(jobs, w.jobs...)
	}
	z.signer.signAll(jobs, z.Origin, now)
	for _, w := range all {
		sigs := w.keep
		for _, j := range w.jobs {
			sigs = append(sigs, j.sigs...)
		}
		if len(sigs) > 0 {
			w.node[dns.TypeRRSIG] = sigs
		}
		keepOld(z.pending, olds, w.name)
		z.pending.set(w.name, w.node.node())
	}
}

// unchain drops the chain's records and the signatures from name's node
// n in t (no data left, or below a delegation), its node before kept in
// olds.
func unchain(t *tree, olds map[string]node, name string, n node) {
	var kept node
	for _, s := range n {
		if !chainType(s.t) {
			kept = append(kept, s)
		}
	}
	if len(kept) != len(n) {
		keepOld(t, olds, name)
		t.set(name, kept)
	}
}

// keepOld keeps name's node in t in olds, unless olds has it: the
// change's diff is made from the nodes before it.
func keepOld(t *tree, olds map[string]node, name string) {
	if _, ok := olds[name]; !ok {
		n, _ := t.get(name)
		olds[name] = n
	}
}

// signWork is one name's signed state in the making: its RRsets, the
// signatures that stay, the jobs that make the others.
type signWork struct {
	name string
	node rrsets
	jobs []*signJob
	keep []dns.RR
}

// plan decides who signs each RRset of w.node: each active key's good
// signature of data that did not change since old stays, the others'
// go, and the keys without one get a job. n is the name's node as
// stored (its signatures); at a delegation (cut) only the DS and NSEC
// records are signed here, the NS records being the child's. The SOA's
// signatures stay as they are: plan reports whether they are due (the
// SOA is signed last, with its new serial).
func (sg *signer) plan(w *signWork, n, old node, cut bool, active []*key, now time.Time) (soaDue bool) {
	for typ, rrs := range w.node {
		if cut && typ != dns.TypeDS && typ != dns.TypeNSEC {
			continue
		}
		sigs := covering(n, typ)
		ttl := rrs[0].Header().Ttl
		if typ == dns.TypeSOA {
			if !sg.good(sigs, ttl, now) {
				soaDue = true
			}
			w.keep = append(w.keep, sigs...)
			continue
		}
		same := sameSet(old.get(typ), rrs)
		var need []*key
		for _, k := range active {
			if same && sg.goodBy(k, sigs, ttl, now) {
				w.keep = append(w.keep, byKey(k, sigs))
			} else {
				need = append(need, k)
			}
		}
		if len(need) > 0 {
			w.jobs = append(w.jobs, &signJob{rrset: rrs, keys: need})
		}
	}
	return soaDue
}

// parallelSigning is the number of signatures above which they are made
// on every core: a zone's first signing, a big refresh.
const parallelSigning = 64

// signAll signs every job.
func (sg *signer) signAll(jobs []*signJob, origin string, now time.Time) {
	if len(jobs) < parallelSigning {
		for _, j := range jobs {
			j.sigs = sg.sign(j.rrset, j.keys, origin, now)
		}
		return
	}
	var wg sync.WaitGroup
	next := make(chan *signJob)
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range next {
				j.sigs = sg.sign(j.rrset, j.keys, origin, now)
			}
		}()
	}
	for _, j := range jobs {
		next <- j
	}
	close(next)
	wg.Wait()
}

// signSOA signs the SOA of z.pending (just raised) and returns the
// signatures it replaced and the new ones, for the diff. Called with z.mu
// held.
func (z *Zone) signSOA(now time.Time) (del, add []dns.RR) {
	apex, _ := z.pending.get(z.Origin)
	soa := apex.get(dns.TypeSOA)
	add = z.signer.sign(soa, z.signer.active(now), z.Origin, now)
	var sigs []dns.RR
	for _, rr := range apex.get(dns.TypeRRSIG) {
		if rr.(*dns.RRSIG).TypeCovered == dns.TypeSOA {
			del = append(del, rr)
		} else {
			sigs = append(sigs, rr)
		}
	}
	z.pending.set(z.Origin, apex.with(dns.TypeRRSIG, append(sigs, add...)))
	return del, add
}

// sameSet reports whether a and b hold the same records with the same
// TTL.
func sameSet(a, b []dns.RR) bool {
	if len(a) != len(b) || len(a) > 0 && a[0].Header().Ttl != b[0].Header().Ttl {
		return false
	}
	return sameRdata(a, b)
}
