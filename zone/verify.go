package zone

import (
	"fmt"
	"math"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// KeyInfo is one of a signed zone's keys, as the operator sees it.
type KeyInfo struct {
	Tag       uint16
	Algorithm uint8
	File      string
	DNSKEY    *dns.DNSKEY
	DS        *dns.DS // SHA-256, for the parent
	// The key's timing (zero: always, or for the last two never).
	Published, Active, DSPublish, DSRemove, DSSubmitted, Retired time.Time
}

// Keys returns the zone's DNSSEC keys (none before the first start made
// one).
func (z *Zone) Keys() []KeyInfo {
	z.mu.Lock()
	sg := z.signer
	z.mu.Unlock()
	if sg == nil {
		return nil
	}
	var out []KeyInfo
	for _, k := range sg.keys {
		out = append(out, keyInfo(z.Origin, k))
	}
	return out
}

// Now is the signer's clock (time.Now unless a test set DNSSEC.Now).
func (z *Zone) Now() time.Time {
	if z.cfg.DNSSEC != nil {
		return z.cfg.DNSSEC.clock()
	}
	return time.Now()
}

// KeyDir returns the directory of the zone's DNSSEC keys.
func (z *Zone) KeyDir() string { return z.keyDir() }

// SigningReport is what Verify found in a signed zone.
type SigningReport struct {
	Keys       []KeyInfo
	Names      int       // names in the NSEC (or NSEC3) chain
	Signatures int       // signatures checked
	Unsigned   []string  // names not signed as they should be (or due): the daemon signs them at start
	Bogus      []string  // "name type": signatures that do not verify
	NextExpiry time.Time // the soonest expiry of a good signature
}

// Verify checks a signed zone as it is loaded (zone file and journal):
// the keys, the NSEC chain and each name's signatures (what the daemon
// would sign at start), and every signature cryptographically, on every
// core. "sshdyn check" runs it; the daemon at start checks the structure
// only (a million names' signatures take a minute to verify).
func (z *Zone) Verify() (SigningReport, error) {
	var r SigningReport
	if z.cfg.DNSSEC == nil {
		return r, nil
	}
	r.Keys = z.Keys()
	if len(r.Keys) == 0 {
		return r, ErrNoKeys
	}
	z.mu.Lock()
	sg := z.signer
	z.mu.Unlock()
	snap := z.snapshot()
	now := sg.now()
	r.Unsigned, _, r.NextExpiry = z.due(snap, sg, z.Origin, math.MaxInt, now)
	if sg.cfg.NSEC3 {
		r.Unsigned = append(r.Unsigned, z.staleHashes(snap.names, snap.cuts)...)
	}
	type job struct {
		name string
		t    uint16
		rrs  []dns.RR
		sigs []dns.RR
	}
	keys := map[uint16]*dns.DNSKEY{}
	for _, k := range r.Keys {
		keys[k.Tag] = k.DNSKEY
	}
	jobs := make(chan job, 256)
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				for _, rr := range j.sigs {
					sig := rr.(*dns.RRSIG)
					k := keys[sig.KeyTag]
					if k == nil || sig.Verify(k, j.rrs) != nil || !sig.ValidityPeriod(now) {
						mu.Lock()
						r.Bogus = append(r.Bogus, fmt.Sprintf("%s %s", strings.TrimSuffix(j.name, "."), typeName(j.t)))
						mu.Unlock()
						break
					}
				}
			}
		}()
	}
	snap.names.ascend(func(name string, n node) bool {
		if len(n.get(dns.TypeNSEC)) > 0 || isNSEC3Node(n) {
			r.Names++
		}
		for _, s := range n {
			if s.t == dns.TypeRRSIG {
				continue
			}
			if sigs := covering(n, s.t); len(sigs) > 0 {
				r.Signatures += len(sigs)
				jobs <- job{name, s.t, s.rrs, sigs}
			}
		}
		return true
	})
	close(jobs)
	wg.Wait()
	return r, nil
}
