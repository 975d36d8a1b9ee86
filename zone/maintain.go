package zone

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// keyDir is where the zone's DNSSEC keys are.
func (z *Zone) keyDir() string {
	if z.cfg.DNSSEC != nil && z.cfg.DNSSEC.KeyDir != "" {
		return z.cfg.DNSSEC.KeyDir
	}
	return filepath.Dir(z.cfg.File)
}

// Signed reports whether the zone is configured to be signed.
func (z *Zone) Signed() bool { return z.cfg.DNSSEC != nil }

// Sign makes a zone with DNSSEC signed, and keeps it so: it makes a key
// if there is none (a CSK of the configured algorithm, in the key
// directory), publishes the DNSKEY, CDS and CDNSKEY records, signs what
// is not signed as it should be, and starts the refresh of signatures
// as they fall due. The daemon calls it after Own, before it serves; a
// zone without DNSSEC does nothing. A zone's first signing is written
// in batches of signBatch names, each one change in the journal.
func (z *Zone) Sign() error {
	if z.cfg.DNSSEC == nil {
		return z.unsign()
	}
	z.mu.Lock()
	sg := z.signer
	z.mu.Unlock()
	if sg == nil {
		ttl := z.snapshot().soa().Hdr.Ttl
		now := z.cfg.DNSSEC.clock()
		k, err := generateKey(z.keyDir(), z.Origin, z.cfg.DNSSEC.algorithm(), ttl, now, keyTiming{Published: now, Active: now, DSPublish: now})
		if err != nil {
			return fmt.Errorf("zone %s: making a DNSSEC key: %w", strings.TrimSuffix(z.Origin, "."), err)
		}
		z.log.Info("DNSSEC key made", "zone", z.Origin, "file", k.file, "tag", k.tag, "algorithm", dns.AlgorithmToString[k.pub.Algorithm])
		z.mu.Lock()
		z.signer = newSigner(*z.cfg.DNSSEC, []*key{k})
		z.mu.Unlock()
	}
	// Signing a zone that is not signed on disk (a first signing, or
	// dnssec on again after it was off) with keys left going insecure:
	// the operator wants the zone signed, its DS at the parent again.
	z.mu.Lock()
	sg = z.signer
	z.mu.Unlock()
	if !z.SignedOnDisk() && sg.insecure(sg.now()) {
		if err := z.CancelInsecure(); err != nil {
			return err
		}
		z.log.Info("DNSSEC keys were left going insecure; the zone is signed again, and its CDS asks for their DS", "zone", z.Origin)
	}
	start, signed := time.Now(), 0
	n, err := z.maintain(signBatch, true)
	if err != nil {
		return err
	}
	signed += n
	if signed > 0 {
		z.log.Info("zone signed", "zone", z.Origin, "names", signed, "serial", z.Serial(), "took", time.Since(start).Round(time.Millisecond))
	}
	z.flushMu.Lock()
	defer z.flushMu.Unlock()
	if z.stopMaintain == nil && !z.closing {
		z.stopMaintain = make(chan struct{})
		z.maintained.Add(1)
		go z.refreshLoop(z.stopMaintain)
	}
	return nil
}

// SignedOnDisk reports whether the zone as loaded holds DNSSEC's records
// at its apex (DNSKEY, or signatures): it was signed.
func (z *Zone) SignedOnDisk() bool {
	apex, _ := z.snapshot().names.get(z.Origin)
	return len(apex.get(dns.TypeDNSKEY)) > 0 || len(apex.get(dns.TypeRRSIG)) > 0
}

// unsign removes DNSSEC's records (DNSKEY, CDS, CDNSKEY, NSEC3PARAM,
// signatures, NSEC and NSEC3) from a zone that was signed and is no
// longer to be: what a zone without DNSSEC serves and transfers must not
// hold keys, a CDS a parent could take, or signatures that no change
// keeps up to date. A DS record, a delegation's, stays. The names below
// the apex go first, signBatch a change, and the apex last, so that a
// start after an interruption finds the zone still marked as signed
// (SignedOnDisk) and goes on. The key files stay where they are.
func (z *Zone) unsign() error {
	if !z.SignedOnDisk() {
		return nil
	}
	z.log.Warn("the zone was signed and dnssec is off: removing its DNSSEC records; if the parent zone has a DS record for it, resolvers that validate now fail it: remove the DS first (see README, DNSSEC)", "zone", z.Origin)
	start, names := time.Now(), 0
	strip := func(batch []string) error {
		m := maintenance{strip: batch}
		if rcode := z.modifyWith(func() ([]dns.RR, int) { return nil, dns.RcodeSuccess }, &m); rcode != dns.RcodeSuccess {
			return fmt.Errorf("zone %s: removing DNSSEC records: %s", strings.TrimSuffix(z.Origin, "."), dns.RcodeToString[rcode])
		}
		names += len(batch)
		return nil
	}
	var batch []string
	var err error
	z.snapshot().names.ascend(func(name string, n node) bool {
		if name == z.Origin || !slices.ContainsFunc(n, func(s rrset) bool { return dnssecType(s.t) }) {
			return true
		}
		if batch = append(batch, name); len(batch) == signBatch {
			err, batch = strip(batch), nil
		}
		return err == nil
	})
	if err == nil {
		err = strip(append(batch, z.Origin))
	}
	if err != nil {
		return err
	}
	z.log.Info("DNSSEC records removed", "zone", z.Origin, "names", names, "serial", z.Serial(), "took", time.Since(start).Round(time.Millisecond))
	return nil
}

// signBatch bounds the names one change of a signing pass re-signs: a
// journal record stays far under its bound, and a signing pass of a big
// zone is many steps, each soon durable.
const signBatch = 20000

// maintain brings the whole zone up to its signing rules, batch names a
// change, and returns the names it signed again. full also looks for
// NSEC3 records that belong to no name (a whole pass over the zone; the
// start does it).
func (z *Zone) maintain(batch int, full bool) (int, error) {
	if err := z.reloadKeys(); err != nil {
		return 0, err
	}
	total := 0
	cursor := z.Origin
	first := true
	var soonest time.Time
	for {
		snap := z.snapshot()
		z.mu.Lock()
		sg := z.signer
		z.mu.Unlock()
		now := sg.now()
		var m maintenance
		if first {
			m.apex = z.apexSets(snap, sg, now)
			if full && sg.cfg.NSEC3 {
				m.drop = z.staleHashes(snap.names, snap.cuts)
			}
			first = false
		}
		names, next, earliest := z.due(snap, sg, cursor, batch, now)
		if len(names) > 0 {
			// What is signed now expires no sooner than this.
			if made := now.Add(sg.validity - sg.refresh/2); earliest.IsZero() || made.Before(earliest) {
				earliest = made
			}
		}
		if !earliest.IsZero() && (soonest.IsZero() || earliest.Before(soonest)) {
			soonest = earliest
		}
		if len(names) > 0 || len(m.apex) > 0 || len(m.drop) > 0 {
			m.resign = names
			rcode := z.modifyWith(func() ([]dns.RR, int) { return nil, dns.RcodeSuccess }, &m)
			if rcode != dns.RcodeSuccess {
				return total, fmt.Errorf("zone %s: signing: %s", strings.TrimSuffix(z.Origin, "."), dns.RcodeToString[rcode])
			}
			total += len(names)
		}
		if next == "" {
			z.nextExpiry.Store(soonest.Unix())
			return total, nil
		}
		cursor = next
	}
}

// apexSets returns the apex RRsets the keys make that differ from snap's:
// DNSKEY, and CDS (SHA-256) and CDNSKEY for the parent (RFC 7344).
func (z *Zone) apexSets(snap *snapshot, sg *signer, now time.Time) map[uint16][]dns.RR {
	ttl := snap.soa().Hdr.Ttl
	var keys, cds, cdnskey []dns.RR
	for _, k := range sg.keys {
		if !k.timing.published(now) {
			continue
		}
		pub := dns.Copy(k.pub).(*dns.DNSKEY)
		pub.Hdr.Name, pub.Hdr.Ttl = z.Origin, ttl
		keys = append(keys, pub)
		if !k.timing.ds(now) {
			continue
		}
		if ds := pub.ToDS(dns.SHA256); ds != nil {
			c := ds.ToCDS()
			c.Hdr.Ttl = ttl
			cds = append(cds, c)
		}
		c := pub.ToCDNSKEY()
		c.Hdr.Ttl = ttl
		cdnskey = append(cdnskey, c)
	}
	if sg.insecure(now) {
		// RFC 8078 4: the parent is to remove the DS.
		cds = []dns.RR{&dns.CDS{DS: dns.DS{Hdr: dns.RR_Header{Name: z.Origin, Rrtype: dns.TypeCDS, Class: dns.ClassINET, Ttl: ttl}, Digest: "00"}}}
		cdnskey = []dns.RR{&dns.CDNSKEY{DNSKEY: dns.DNSKEY{Hdr: dns.RR_Header{Name: z.Origin, Rrtype: dns.TypeCDNSKEY, Class: dns.ClassINET, Ttl: ttl}, Protocol: 3, PublicKey: "AA=="}}}
	}
	var param []dns.RR
	if sg.cfg.NSEC3 {
		param = []dns.RR{nsec3Param(z.Origin, nsecTTL(snap.soa()))}
	}
	apex, _ := snap.names.get(z.Origin)
	out := map[uint16][]dns.RR{}
	for t, want := range map[uint16][]dns.RR{dns.TypeDNSKEY: keys, dns.TypeCDS: cds, dns.TypeCDNSKEY: cdnskey, dns.TypeNSEC3PARAM: param} {
		if !sameSet(apex.get(t), want) {
			out[t] = want
		}
	}
	return out
}

// due returns the names from cursor on, at most limit, that are not
// signed as they should be: an RRset without a good signature by each key
// (missing, by another key, of another TTL, or due), a signature of
// nothing, an NSEC record missing or wrong, a name below a delegation
// with signatures. next is the name to go on from, "" at the end.
func (z *Zone) due(snap *snapshot, sg *signer, cursor string, limit int, now time.Time) (names []string, next string, earliest time.Time) {
	if sg.cfg.NSEC3 {
		return z.due3(snap, sg, cursor, limit, now)
	}
	t, cuts := snap.names, snap.cuts
	ttl := nsecTTL(snap.soa())
	prev, prevNode := "", node(nil)
	if cursor != z.Origin {
		prev, prevNode = z.predecessor(t, cuts, cursor)
	}
	add := func(name string) {
		if len(names) == 0 || names[len(names)-1] != name {
			names = append(names, name)
		}
	}
	nextOf := func(n node) string {
		if nsec := n.get(dns.TypeNSEC); len(nsec) == 1 {
			return nsec[0].(*dns.NSEC).NextDomain
		}
		return ""
	}
	t.t.AscendGreaterOrEqual(entry{key: nameKey(cursor)}, func(e entry) bool {
		name, n := e.name(), e.n
		if len(names) >= limit {
			next = name
			return false
		}
		if !z.authoritative(t, cuts, name, n) {
			if len(n.get(dns.TypeRRSIG)) > 0 || inChain(n) {
				add(name)
			}
			return true
		}
		if prev != "" && !strings.EqualFold(nextOf(prevNode), name) {
			add(prev) // resign sorts the names
		}
		prev, prevNode = name, n
		cut := isCut(z.Origin, name, n)
		nsec := n.get(dns.TypeNSEC)
		if len(nsec) != 1 || nsec[0].Header().Ttl != ttl ||
			!slices.Equal(nsec[0].(*dns.NSEC).TypeBitMap, nsecFor(name, "", n, cut, ttl).TypeBitMap) {
			add(name)
			return true
		}
		sigs := 0
		for _, s := range n {
			if s.t == dns.TypeRRSIG || cut && s.t != dns.TypeDS && s.t != dns.TypeNSEC {
				continue
			}
			c := covering(n, s.t)
			sigs += len(c)
			if !sg.good(c, s.rrs[0].Header().Ttl, now) {
				add(name)
				return true
			}
			for _, rr := range c {
				if exp := expiry(rr.(*dns.RRSIG), now); earliest.IsZero() || exp.Before(earliest) {
					earliest = exp
				}
			}
		}
		if sigs != len(n.get(dns.TypeRRSIG)) {
			add(name) // a signature of an RRset no longer there
		}
		return true
	})
	if next == "" && prev != "" && !strings.EqualFold(nextOf(prevNode), z.Origin) {
		add(prev)
	}
	return names, next, earliest
}

// expiry is when sig expires: its 32-bit time read in the window around
// now (RFC 4034 3.1.5).
func expiry(sig *dns.RRSIG, now time.Time) time.Time {
	return now.Add(time.Duration(int32(sig.Expiration-uint32(now.Unix()))) * time.Second)
}

// reloadKeys reads the key directory again: a key "sshdyn dnssec roll"
// made, and the keys' timing. The private keys of keys already loaded
// are not read again. A directory that cannot be read keeps the keys as
// they were (and the error is returned).
func (z *Zone) reloadKeys() error {
	z.mu.Lock()
	cur := z.signer
	z.mu.Unlock()
	bases, err := keyFiles(z.keyDir(), z.Origin)
	if err != nil {
		return err
	}
	var keys []*key
	for _, base := range bases {
		var k *key
		for _, old := range cur.keys {
			if old.file == base+".key" {
				c := *old
				k = &c
			}
		}
		if k == nil {
			if k, err = readKey(base, z.Origin); err != nil {
				return fmt.Errorf("zone %s: %w", strings.TrimSuffix(z.Origin, "."), err)
			}
			z.log.Info("DNSSEC key read", "zone", z.Origin, "file", k.file, "tag", k.tag)
		} else if k.timing, err = readTiming(k.file); err != nil {
			return fmt.Errorf("zone %s: %w", strings.TrimSuffix(z.Origin, "."), err)
		}
		keys = append(keys, k)
	}
	if err := sameAlgorithm(keys, cur.cfg); err != nil {
		return fmt.Errorf("zone %s: %w", strings.TrimSuffix(z.Origin, "."), err)
	}
	if len(newSigner(cur.cfg, keys).active(cur.now())) == 0 {
		return fmt.Errorf("zone %s: no DNSSEC key in %s signs now: see sshdyn dnssec status", strings.TrimSuffix(z.Origin, "."), z.keyDir())
	}
	z.mu.Lock()
	z.signer = newSigner(cur.cfg, keys)
	z.mu.Unlock()
	return nil
}

// nextEvent returns the soonest key timing after now, zero if none.
func (sg *signer) nextEvent(now time.Time) time.Time {
	var next time.Time
	for _, k := range sg.keys {
		for _, t := range k.timing.events() {
			if t.After(now) && (next.IsZero() || t.Before(next)) {
				next = t
			}
		}
	}
	return next
}

// refreshLoop makes signatures again as they fall due, and follows the
// keys' timing, until stop is closed: every refresh/16 (at least a
// second, at most an hour), and at each key's next event, it re-signs
// what is due, refreshBatch names a change.
func (z *Zone) refreshLoop(stop chan struct{}) {
	defer z.maintained.Done()
	z.mu.Lock()
	every := min(max(z.signer.refresh/16, time.Second), time.Hour)
	passed := z.signer.now() // the last pass's time, on the signer's clock
	z.mu.Unlock()
	timer := time.NewTimer(every)
	defer timer.Stop()
	// The key files are looked at every keyPoll: "sshdyn dnssec roll"
	// writes them while the daemon runs.
	poll := time.NewTicker(keyPoll)
	defer poll.Stop()
	stamp := z.keyStamp()
	for {
		select {
		case <-stop:
			return
		case <-timer.C:
		case <-poll.C:
			// A pass when the key files changed, or when a key's event
			// is due on the wall clock the state files are in (which
			// the timer, on the monotonic clock, misses when the clock
			// is stepped or the machine was suspended).
			s := z.keyStamp()
			if s == stamp && !z.keyEventDue(passed) {
				continue
			}
			stamp = s
		}
		z.mu.Lock()
		passed = z.signer.now()
		z.mu.Unlock()
		n, err := z.maintain(refreshBatch, false)
		if err != nil {
			z.log.Error("DNSSEC signature refresh failed; trying again", "zone", z.Origin, "err", err)
		} else if n > 0 {
			z.log.Debug("DNSSEC signatures refreshed", "zone", z.Origin, "names", n, "serial", z.Serial())
		}
		// The next pass: at the keys' next event (as the pass just read
		// them), or after every.
		z.mu.Lock()
		sg := z.signer
		z.mu.Unlock()
		wait := every
		// (On the signer's clock, which tests move.)
		now := sg.now()
		if next := sg.nextEvent(now); !next.IsZero() {
			wait = min(wait, max(next.Sub(now)+10*time.Millisecond, 10*time.Millisecond))
		}
		timer.Reset(wait)
	}
}

// keyEventDue reports whether a key's event (its publication, signing,
// CDS, retirement) after since has come on the signer's clock.
func (z *Zone) keyEventDue(since time.Time) bool {
	z.mu.Lock()
	sg := z.signer
	z.mu.Unlock()
	next := sg.nextEvent(since)
	return !next.IsZero() && !next.After(sg.now())
}

// keyPoll is how often the key files are looked at for changes.
const keyPoll = time.Second

// keyStamp sums up the zone's key files: their names, sizes and times.
func (z *Zone) keyStamp() string {
	bases, _ := keyFiles(z.keyDir(), z.Origin)
	var b strings.Builder
	for _, base := range bases {
		for _, f := range []string{base + ".key", base + ".state"} {
			if fi, err := os.Stat(f); err == nil {
				fmt.Fprintf(&b, "%s %d %d\n", f, fi.Size(), fi.ModTime().UnixNano())
			}
		}
	}
	return b.String()
}

// refreshBatch bounds the names one refresh change signs again.
const refreshBatch = 1000

// stopSigning stops the refresh loop, if it runs.
func (z *Zone) stopSigning() {
	z.flushMu.Lock()
	stop := z.stopMaintain
	z.stopMaintain = nil
	z.flushMu.Unlock()
	if stop != nil {
		close(stop)
		z.maintained.Wait()
	}
}
