package zone

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// A CSK rollover by double signature (RFC 6781 4.1.1.2, RFC 7583 3.3.2),
// in four steps, each key's timing in its state file:
//
//  1. "sshdyn dnssec roll ZONE" makes the new key, published and signing
//     at once beside the old one: every RRset gets both signatures (the
//     daemon re-signs the zone in batches).
//  2. After the DNSKEY TTL and the propagation delay, the CDS and
//     CDNSKEY records switch to the new key: its DS is now to be given to
//     the parent (sshdyn dnssec ds prints it).
//  3. The operator gives it, and says so: "sshdyn dnssec roll
//     --ds-submitted ZONE". The old key retires once the parent's DS TTL
//     and the propagation delay have passed: resolvers no longer hold the
//     old DS.
//  4. Then the old key neither signs nor is in the DNSKEY RRset.
//
// At every step the zone validates with the DS set the parent holds,
// old or new: every RRset is signed by both keys until the old key
// retires, and the DNSKEY RRset by both. An algorithm rollover is out of
// scope: the new key has the old one's algorithm.

// Rollover defaults.
const (
	DefaultPropagation = time.Hour
	DefaultParentDSTTL = 24 * time.Hour
)

// waits returns a rollover's waits (DNSSEC.Propagation, .ParentDSTTL).
func (d DNSSEC) waits() (propagation, parentDSTTL time.Duration) {
	propagation, parentDSTTL = d.Propagation, d.ParentDSTTL
	if propagation <= 0 {
		propagation = DefaultPropagation
	}
	if parentDSTTL <= 0 {
		parentDSTTL = DefaultParentDSTTL
	}
	return propagation, parentDSTTL
}

// errRolling: a rollover is under way.
var errRolling = errors.New("a key rollover is under way: see sshdyn dnssec status")

// errInsecure: the zone asks its parent to remove its DS.
var errInsecure = errors.New("the zone is going insecure (its CDS asks the parent to remove the DS): sshdyn dnssec insecure --cancel first")

// Going insecure (RFC 8078 4): "sshdyn dnssec insecure ZONE" ends every
// key's DS (its DSRemove, now) without a successor. The zone stays
// signed, and its CDS and CDNSKEY become the "delete" records (CDS 0 0 0
// 00, CDNSKEY 0 3 0 AA==) a parent that scans for them takes as the
// order to remove the DS. Once the parent has no DS, and its TTL has
// passed, the operator turns dnssec off; the next start removes the
// zone's DNSSEC records (unsign). "--cancel" gives the keys their DS
// back.

// insecure reports whether the zone is going insecure at now: every key
// in use has its DS ended, none has a successor.
func (sg *signer) insecure(now time.Time) bool {
	keys, _ := sg.current(now)
	for _, k := range keys {
		if k.timing.DSRemove.IsZero() || k.timing.DSRemove.After(now) || !k.timing.Retired.IsZero() {
			return false
		}
	}
	return len(keys) > 0
}

// GoInsecure starts the zone's way to insecure: its CDS and CDNSKEY ask
// the parent to remove the DS, from the daemon's next look at the keys.
func (z *Zone) GoInsecure() error {
	sg, err := z.currentSigner()
	if err != nil {
		return err
	}
	now := sg.now()
	keys, rolling := sg.current(now)
	switch {
	case sg.insecure(now):
		return errors.New("the zone is already going insecure: see sshdyn dnssec status")
	case rolling:
		return errRolling
	}
	return endDS(keys, now.Truncate(time.Second))
}

// CancelInsecure gives the keys of a zone going insecure their DS back:
// the CDS and CDNSKEY are theirs again.
func (z *Zone) CancelInsecure() error {
	sg, err := z.currentSigner()
	if err != nil {
		return err
	}
	now := sg.now()
	if !sg.insecure(now) {
		return errors.New("the zone is not going insecure")
	}
	keys, _ := sg.current(now)
	return endDS(keys, time.Time{})
}

// endDS writes at as the end of each key's DS (DSRemove; zero: none)
// in its state file.
func endDS(keys []*key, at time.Time) error {
	for _, k := range keys {
		t := k.timing
		t.DSRemove = at
		if err := writeTiming(k.file, t); err != nil {
			return err
		}
	}
	return nil
}

// currentSigner reads the keys again (when the zone has them loaded)
// and returns the signer, ErrNoKeys if there is none.
func (z *Zone) currentSigner() (*signer, error) {
	if z.hasSigner() {
		if err := z.reloadKeys(); err != nil {
			return nil, err
		}
	}
	z.mu.Lock()
	sg := z.signer
	z.mu.Unlock()
	if sg == nil {
		return nil, ErrNoKeys
	}
	return sg, nil
}

// current returns the keys of sg not retired at now, and whether a
// rollover is under way (a key's CDS is to go, or a key is to retire).
func (sg *signer) current(now time.Time) (keys []*key, rolling bool) {
	for _, k := range sg.keys {
		if k.timing.retired(now) {
			continue
		}
		keys = append(keys, k)
		if !k.timing.DSRemove.IsZero() || !k.timing.Retired.IsZero() {
			rolling = true
		}
	}
	return keys, rolling
}

// StartRoll starts a CSK rollover (step 1): it makes the new key in the
// key directory, published and signing from now, its CDS from the time
// it returns; the old key's CDS goes then. The zone need not be owned:
// the daemon serving it reads the new key at its next signing pass (and
// at once, as that pass follows the keys' timing).
func (z *Zone) StartRoll() (KeyInfo, time.Time, error) {
	sg, err := z.currentSigner()
	if err != nil {
		return KeyInfo{}, time.Time{}, err
	}
	now := sg.now()
	keys, rolling := sg.current(now)
	switch {
	case sg.insecure(now):
		return KeyInfo{}, time.Time{}, errInsecure
	case rolling:
		return KeyInfo{}, time.Time{}, errRolling
	case len(keys) != 1:
		return KeyInfo{}, time.Time{}, fmt.Errorf("%d keys are in use: a rollover starts from one", len(keys))
	}
	old := keys[0]
	propagation, _ := z.cfg.DNSSEC.waits()
	ttl := z.snapshot().soa().Hdr.Ttl // the DNSKEY RRset's (apexSets)
	dsAt := now.Add(time.Duration(ttl)*time.Second + propagation).Truncate(time.Second)
	k, err := generateKey(z.keyDir(), z.Origin, old.pub.Algorithm, ttl, now, keyTiming{Published: now, Active: now, DSPublish: dsAt})
	if err != nil {
		return KeyInfo{}, time.Time{}, err
	}
	t := old.timing
	t.DSRemove = dsAt
	if err := writeTiming(old.file, t); err != nil {
		return KeyInfo{}, time.Time{}, err
	}
	return keyInfo(z.Origin, k), dsAt, nil
}

// DSSubmitted records that the new key's DS is at the parent (step 3)
// and returns when the old key retires.
func (z *Zone) DSSubmitted() (time.Time, error) {
	sg, err := z.currentSigner()
	if err != nil {
		return time.Time{}, err
	}
	now := sg.now()
	keys, _ := sg.current(now)
	var next *key
	var old []*key
	for _, k := range keys {
		switch {
		case !k.timing.DSRemove.IsZero():
			old = append(old, k)
		case k.timing.DSSubmitted.IsZero() && !k.timing.DSPublish.IsZero():
			next = k
		}
	}
	if next == nil || len(old) == 0 {
		return time.Time{}, errors.New("no rollover waits for its DS: start one with sshdyn dnssec roll ZONE")
	}
	if next.timing.DSPublish.After(now) {
		return time.Time{}, fmt.Errorf("key %d's DS is not to be given to the parent before %s (its DNSKEY must reach caches first)", next.tag, next.timing.DSPublish.UTC().Format(time.RFC3339))
	}
	propagation, parentDSTTL := z.cfg.DNSSEC.waits()
	retire := now.Add(parentDSTTL + propagation).Truncate(time.Second)
	t := next.timing
	t.DSSubmitted = now
	if err := writeTiming(next.file, t); err != nil {
		return time.Time{}, err
	}
	for _, k := range old {
		t := k.timing
		t.Retired = retire
		if err := writeTiming(k.file, t); err != nil {
			return time.Time{}, err
		}
	}
	return retire, nil
}

func (z *Zone) hasSigner() bool {
	z.mu.Lock()
	defer z.mu.Unlock()
	return z.signer != nil
}

// RollStatus says where a rollover is, "" when none is under way.
func (z *Zone) RollStatus() string {
	z.mu.Lock()
	sg := z.signer
	z.mu.Unlock()
	if sg == nil {
		return ""
	}
	now := sg.now()
	if sg.insecure(now) {
		return "going insecure: the CDS and CDNSKEY records ask the parent to remove the zone's DS (RFC 8078). Once the parent has no DS and its TTL has passed, " +
			"set dnssec = false and restart: the start removes the zone's DNSSEC records. sshdyn dnssec insecure --cancel makes the keys' DS wanted again"
	}
	keys, rolling := sg.current(now)
	if !rolling {
		return ""
	}
	var next, old *key
	for _, k := range keys {
		if !k.timing.DSRemove.IsZero() || !k.timing.Retired.IsZero() {
			old = k
		} else {
			next = k
		}
	}
	if next == nil || old == nil {
		return "keys in an unexpected state: see their .state files"
	}
	at := func(t time.Time) string { return t.UTC().Format(time.RFC3339) }
	switch {
	case next.timing.DSPublish.After(now):
		return fmt.Sprintf("rollover step 1 of 4: key %d is published and signs beside key %d (double signature); its CDS and CDNSKEY replace key %d's at %s, when its DS is to go to the parent",
			next.tag, old.tag, old.tag, at(next.timing.DSPublish))
	case next.timing.DSSubmitted.IsZero():
		return fmt.Sprintf("rollover step 2 of 4: give the parent key %d's DS (sshdyn dnssec ds), in place of key %d's, then run sshdyn dnssec roll --ds-submitted; both keys sign until then",
			next.tag, old.tag)
	default:
		return fmt.Sprintf("rollover step 3 of 4: key %d's DS was submitted at %s; key %d retires at %s, when resolvers no longer hold its DS",
			next.tag, at(next.timing.DSSubmitted), old.tag, at(old.timing.Retired))
	}
}

// keyInfo describes k.
func keyInfo(origin string, k *key) KeyInfo {
	pub := dns.Copy(k.pub).(*dns.DNSKEY)
	pub.Hdr.Name = origin
	return KeyInfo{Tag: k.tag, Algorithm: k.pub.Algorithm, File: k.file, DNSKEY: pub, DS: pub.ToDS(dns.SHA256),
		Published: k.timing.Published, Active: k.timing.Active, DSPublish: k.timing.DSPublish, DSRemove: k.timing.DSRemove,
		DSSubmitted: k.timing.DSSubmitted, Retired: k.timing.Retired}
}

// Roles says what k does at now: "published, signs, DS", "retired".
func (k KeyInfo) Roles(now time.Time) string {
	t := keyTiming{Published: k.Published, Active: k.Active, DSPublish: k.DSPublish, DSRemove: k.DSRemove, Retired: k.Retired}
	if t.retired(now) {
		return "retired"
	}
	var roles []string
	if t.published(now) {
		roles = append(roles, "published")
	}
	if t.active(now) {
		roles = append(roles, "signs")
	}
	if t.ds(now) {
		roles = append(roles, "its DS is the parent's")
	}
	if len(roles) == 0 {
		return "not yet in use"
	}
	return strings.Join(roles, ", ")
}
