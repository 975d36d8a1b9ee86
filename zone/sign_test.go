package zone

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// verifySigned checks the signed zone z serves as a validator would, by
// itself: every authoritative RRset has a signature by each DNSKEY that
// verifies and is valid at now, nothing below a delegation is signed, and
// the NSEC chain runs through every authoritative name in canonical order
// with each name's types. The tools' view (delv, dnssec-verify) is in
// dnssec_test.go.
func verifySigned(t *testing.T, z *Zone, now time.Time) {
	t.Helper()
	snap := z.snapshot()
	apex, _ := snap.names.get(z.Origin)
	var keys []*dns.DNSKEY
	for _, rr := range apex.get(dns.TypeDNSKEY) {
		keys = append(keys, rr.(*dns.DNSKEY))
	}
	if len(keys) == 0 {
		t.Fatal("no DNSKEY at the apex")
	}
	if c := len(apex.get(dns.TypeCDS)); c == 0 || c > len(keys) || c != len(apex.get(dns.TypeCDNSKEY)) {
		t.Errorf("CDS %d, CDNSKEY %d for %d keys", len(apex.get(dns.TypeCDS)), len(apex.get(dns.TypeCDNSKEY)), len(keys))
	}
	var chain []string
	var errs []string
	snap.names.ascend(func(name string, n node) bool {
		if isNSEC3Node(n) {
			if !snap.nsec3 {
				errs = append(errs, name+": an NSEC3 record in an NSEC zone")
			}
			for _, k := range keys {
				ok := false
				for _, sig := range covering(n, dns.TypeNSEC3) {
					if sig := sig.(*dns.RRSIG); sig.KeyTag == k.KeyTag() && sig.Verify(k, n.get(dns.TypeNSEC3)) == nil && sig.ValidityPeriod(now) {
						ok = true
					}
				}
				if !ok {
					errs = append(errs, fmt.Sprintf("%s NSEC3: no valid signature by key %d", name, k.KeyTag()))
				}
			}
			return true
		}
		if z.occluded(snap.names, snap.cuts, name) {
			if len(n.get(dns.TypeRRSIG))+len(n.get(dns.TypeNSEC)) > 0 {
				errs = append(errs, name+": signed below a delegation")
			}
			return true
		}
		chain = append(chain, name)
		cut := isCut(z.Origin, name, n)
		for _, s := range n {
			if s.t == dns.TypeRRSIG || cut && s.t != dns.TypeDS && s.t != dns.TypeNSEC {
				continue
			}
			for _, k := range keys {
				ok := false
				for _, sig := range covering(n, s.t) {
					sig := sig.(*dns.RRSIG)
					if sig.KeyTag == k.KeyTag() && sig.Verify(k, s.rrs) == nil && sig.ValidityPeriod(now) {
						ok = true
					}
				}
				if !ok {
					errs = append(errs, fmt.Sprintf("%s %s: no valid signature by key %d", name, typeName(s.t), k.KeyTag()))
				}
			}
		}
		return true
	})
	if snap.nsec3 {
		errs = append(errs, verifyNSEC3(z, chain)...)
		chain = nil
	}
	for i, name := range chain {
		n, _ := snap.names.get(name)
		nsec := n.get(dns.TypeNSEC)
		if len(nsec) != 1 {
			errs = append(errs, name+": no NSEC")
			continue
		}
		want := z.Origin
		if i+1 < len(chain) {
			want = chain[i+1]
		}
		rec := nsec[0].(*dns.NSEC)
		if rec.NextDomain != want {
			errs = append(errs, fmt.Sprintf("%s: NSEC next %s, want %s", name, rec.NextDomain, want))
		}
		var types []uint16
		for _, s := range n {
			if !isCut(z.Origin, name, n) || s.t == dns.TypeNS || s.t == dns.TypeDS || chainType(s.t) {
				types = append(types, s.t)
			}
		}
		if !slices.Equal(rec.TypeBitMap, types) {
			errs = append(errs, fmt.Sprintf("%s: NSEC types %v, want %v", name, rec.TypeBitMap, types))
		}
	}
	if len(errs) > 0 {
		t.Fatalf("serial %d: %s", snap.serial, strings.Join(errs, "\n"))
	}
}

// verifyNSEC3 checks the NSEC3 chain of z's zone: a record for each of
// names (the authoritative ones) and each empty non-terminal above them,
// and no other, in the order of their hashes, each with the next hash and
// its name's types; no NSEC record anywhere.
func verifyNSEC3(z *Zone, names []string) []string {
	snap := z.snapshot()
	var errs []string
	want := map[string]string{} // hashed owner → name
	for _, name := range names {
		want[hashedOwner(name, z.Origin)] = name
		for p := parent(name); name != z.Origin && p != z.Origin; p = parent(p) {
			if _, ok := snap.names.get(p); !ok {
				want[hashedOwner(p, z.Origin)] = p
			}
		}
	}
	var owners []string
	snap.names.ascend(func(name string, n node) bool {
		if len(n.get(dns.TypeNSEC)) > 0 {
			errs = append(errs, name+": an NSEC record in an NSEC3 zone")
		}
		if isNSEC3Node(n) {
			owners = append(owners, name)
			if _, ok := want[name]; !ok {
				errs = append(errs, name+": an NSEC3 record of no name")
			}
		}
		return true
	})
	if len(owners) != len(want) {
		errs = append(errs, fmt.Sprintf("%d NSEC3 records for %d names of the chain", len(owners), len(want)))
	}
	for i, owner := range owners {
		n, _ := snap.names.get(owner)
		rec := n.get(dns.TypeNSEC3)[0].(*dns.NSEC3)
		next := owners[(i+1)%len(owners)]
		if label, _, _ := strings.Cut(next, "."); rec.NextDomain != strings.ToUpper(label) {
			errs = append(errs, fmt.Sprintf("%s: next %s, want %s", owner, rec.NextDomain, strings.ToUpper(label)))
		}
		if name, ok := want[owner]; ok {
			dn, _ := snap.names.get(name)
			if types := nsec3Types(name, z.Origin, dn); !slices.Equal(rec.TypeBitMap, types) {
				errs = append(errs, fmt.Sprintf("%s (%s): types %v, want %v", owner, name, rec.TypeBitMap, types))
			}
		}
		if !rec.Match(want[owner]) && want[owner] != "" {
			errs = append(errs, owner+": does not match its name's hash")
		}
	}
	return errs
}

// openSigned loads cfg's zone, owns and signs it, as the daemon starts;
// the zone is closed when the test ends (again, if the test closed it).
// As in signedZone, a test with its own clock makes the passes itself.
func openSigned(t *testing.T, cfg Config) *Zone {
	t.Helper()
	z, err := Load(cfg)
	if err != nil {
		t.Fatal(err)
	}
	startSigned(t, z)
	return z
}

// signedZone returns testZone's zone signed.
func signedZone(t *testing.T, d DNSSEC) (*Zone, string) {
	t.Helper()
	z, file := testZone(t, Config{DNSSEC: &d})
	startSigned(t, z)
	return z, file
}

// startSigned owns and signs the loaded z, as the daemon starts, and
// closes it when the test ends. A test that moves the signer's clock
// (DNSSEC.Now) makes the signing passes itself: the daemon's loop, which
// would read the clock as the test moves it, is stopped.
func startSigned(t *testing.T, z *Zone) {
	t.Helper()
	t.Cleanup(func() { z.Close() })
	if err := z.Own(); err != nil {
		t.Fatal(err)
	}
	if err := z.Sign(); err != nil {
		t.Fatal(err)
	}
	if d := z.cfg.DNSSEC; d != nil && d.Now != nil {
		z.stopSigning()
	}
}

// TestSignedThroughChanges signs a zone and checks it after each kind of
// change: a record changed, a name added (its predecessor's NSEC moves),
// a name removed, a wildcard, a CNAME beside its signature and NSEC, a
// delegation; then a restart, which finds nothing to sign.
func TestSignedThroughChanges(t *testing.T) {
	t.Run("NSEC", func(t *testing.T) { signedThroughChanges(t, DNSSEC{}) })
	t.Run("NSEC3", func(t *testing.T) { signedThroughChanges(t, DNSSEC{NSEC3: true}) })
}

func signedThroughChanges(t *testing.T, d DNSSEC) {
	z, file := signedZone(t, d)
	now := time.Now()
	verifySigned(t, z, now)
	keys, _ := filepath.Glob(filepath.Join(filepath.Dir(file), "Kdyn.example.com.+013+*"))
	if len(keys) != 3 {
		t.Fatalf("key files %v, want a .key, a .private and a .state", keys)
	}
	for _, k := range keys {
		fi, _ := os.Stat(k)
		if strings.HasSuffix(k, ".private") && fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v", k, fi.Mode())
		}
	}
	steps := [][]string{
		{"home.dyn.example.com. 60 IN A 192.0.2.2"},
		{"new.dyn.example.com. 60 IN A 192.0.2.3"},
		{"a.b.c.dyn.example.com. 60 IN TXT \"deep\""},
		{"new.dyn.example.com. ANY A"},
		{"*.home.dyn.example.com. 60 IN A 192.0.2.2"},
		{"home.dyn.example.com. 60 IN AAAA 2001:db8::1", "home.dyn.example.com. 300 IN A 192.0.2.2"},
		{"a.b.c.dyn.example.com. ANY TXT"},
		{"zzz.dyn.example.com. 60 IN A 192.0.2.9"}, // the last name: its next is the apex
	}
	for i, s := range steps {
		before := z.Serial()
		if rc := send(t, z, s...); rc != dns.RcodeSuccess {
			t.Fatalf("step %d: %s", i, dns.RcodeToString[rc])
		}
		if z.Serial() != before+1 {
			t.Errorf("step %d: serial %d after %d", i, z.Serial(), before)
		}
		verifySigned(t, z, now)
	}
	// Updates may not touch what the signer keeps.
	for _, s := range []string{
		"home.dyn.example.com. 60 IN NSEC zzz.dyn.example.com. A",
		"home.dyn.example.com. ANY RRSIG",
		"home.dyn.example.com. ANY NSEC",
		"home.dyn.example.com. 60 IN DNSKEY 257 3 13 " + strings.Repeat("A", 88),
		"home.dyn.example.com. 60 IN CDS 12345 13 2 " + strings.Repeat("ab", 32),
		"home.dyn.example.com. 60 IN CDNSKEY 257 3 13 " + strings.Repeat("A", 88),
		"home.dyn.example.com. 60 IN NSEC3PARAM 1 0 0 -",
		"dyn.example.com. ANY DNSKEY",
	} {
		if rc := send(t, z, s); rc != dns.RcodeRefused {
			t.Errorf("%s: %s, want REFUSED", s, dns.RcodeToString[rc])
		}
	}
	// A crash: the signed changes come back from the journal.
	serial := z.Serial()
	z.stopSigning()
	crash(z)
	z2 := openSigned(t, z.cfg)
	if z2.Serial() != serial || z2.Stats().Replayed == 0 {
		t.Errorf("restart signed again: serial %d, was %d; %d changes replayed", z2.Serial(), serial, z2.Stats().Replayed)
	}
	verifySigned(t, z2, now)
	// And after the zone file is written from the journal.
	if err := z2.Close(); err != nil {
		t.Fatal(err)
	}
	z3, err := Load(z.cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer z3.Close()
	if z3.Serial() != serial || z3.Stats().Replayed != 0 {
		t.Errorf("after Close: serial %d, %d replayed", z3.Serial(), z3.Stats().Replayed)
	}
	verifySigned(t, z3, now)
}

// TestSignatureRefresh moves the signer's clock past the refresh point:
// the due signatures are made again, a batch at a time, and the zone is
// valid at the later time.
func TestSignatureRefresh(t *testing.T) {
	clock := time.Now()
	z, _ := signedZone(t, DNSSEC{Validity: 10 * time.Minute, Refresh: 4 * time.Minute, Now: func() time.Time { return clock }})
	before := z.Serial()
	if n, err := z.maintain(refreshBatch, false); err != nil || n != 0 {
		t.Fatalf("nothing due yet: %d names, %v", n, err)
	}
	clock = clock.Add(7 * time.Minute)
	n, err := z.maintain(2, false)
	if err != nil || n == 0 {
		t.Fatalf("refresh: %d names, %v", n, err)
	}
	if z.Serial() <= before+1 {
		t.Errorf("serial %d after %d: want one step per batch of 2", z.Serial(), before)
	}
	verifySigned(t, z, clock.Add(2*time.Minute))
}

// TestSignatureRefreshSpread: signatures made at once expire over
// Refresh/2 (jittered), so their refresh is spread out: halfway through
// that span about half the names are due, not all or none; then the
// rest; and the zone is valid past the first signatures' expiry. (A
// name is due when one of its two signatures, its A's and its NSEC's,
// is: at the span's middle, three names in four.)
func TestSignatureRefreshSpread(t *testing.T) {
	const names = 200
	file := filepath.Join(t.TempDir(), "dyn.example.com.zone")
	var b strings.Builder
	b.WriteString("$ORIGIN dyn.example.com.\n$TTL 60\n@ SOA ns hostmaster 1 3600 600 86400 60\n@ NS ns\nns A 192.0.2.53\n")
	for i := range names {
		fmt.Fprintf(&b, "h%d A 192.0.2.%d\n", i, i%250+1)
	}
	if err := os.WriteFile(file, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	clock := t0
	var mu sync.Mutex
	now := func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }
	set := func(t time.Time) { mu.Lock(); clock = t; mu.Unlock() }
	z := openSigned(t, Config{Origin: testOrigin, File: file, UpdateKeys: []string{"k."},
		DNSSEC: &DNSSEC{Validity: 10 * time.Minute, Refresh: 4 * time.Minute, Now: now}})
	// Expiry: t0 + 10m - U[0, 2m]; due 4m before it.
	set(t0.Add(3*time.Minute + 30*time.Second))
	if n, err := z.maintain(refreshBatch, false); err != nil || n != 0 {
		t.Fatalf("none due before the span: %d names, %v", n, err)
	}
	set(t0.Add(5 * time.Minute))
	half, err := z.maintain(refreshBatch, false)
	if err != nil {
		t.Fatal(err)
	}
	if half < names/5 || half > names*19/20 {
		t.Errorf("halfway through the span %d of %d names were due: the expiries are not spread", half, names+2)
	}
	set(t0.Add(6*time.Minute + time.Second))
	rest, err := z.maintain(refreshBatch, false)
	if err != nil {
		t.Fatal(err)
	}
	if half+rest < names {
		t.Errorf("refreshed %d + %d names, want all %d", half, rest, names)
	}
	verifySigned(t, z, t0.Add(11*time.Minute))
}

// TestAlgorithmChangeRefused: a zone signed with ECDSA whose
// configuration then asks for Ed25519 does not load (sshdyn does no
// algorithm rollover), with the key file and the way back in the error;
// with the algorithm set back, it loads.
func TestAlgorithmChangeRefused(t *testing.T) {
	z, _ := signedZone(t, DNSSEC{})
	cfg := z.cfg
	if err := z.Close(); err != nil {
		t.Fatal(err)
	}
	d := *cfg.DNSSEC
	d.Algorithm = dns.ED25519
	cfg.DNSSEC = &d
	_, err := Load(cfg)
	if err == nil || !strings.Contains(err.Error(), ".key is a key of algorithm ECDSAP256SHA256") || !strings.Contains(err.Error(), `dnssec_algorithm = "ecdsap256sha256"`) {
		t.Fatalf("Load with another algorithm: %v", err)
	}
	d.Algorithm = dns.ECDSAP256SHA256
	openSigned(t, cfg)
}

// TestUnsign: a signed zone started without DNSSEC loses its keys, CDS,
// signatures and NSEC or NSEC3 records, journaled (a restart, and one
// after a crash, finds them gone) and in batches, the apex last; a
// delegation's DS stays; client updates go on unsigned.
func TestUnsign(t *testing.T) {
	for _, d := range []DNSSEC{{}, {NSEC3: true}} {
		t.Run(fmt.Sprintf("nsec3=%v", d.NSEC3), func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "dyn.example.com.zone")
			text := "$ORIGIN dyn.example.com.\n$TTL 60\n@ SOA ns hostmaster 1 3600 600 86400 60\n@ NS ns\nns A 192.0.2.53\n" +
				"secure NS ns.secure\nsecure DS 12345 13 2 " + strings.Repeat("ab", 32) + "\nns.secure A 192.0.2.55\nhome A 192.0.2.1\n"
			if err := os.WriteFile(file, []byte(text), 0o644); err != nil {
				t.Fatal(err)
			}
			cfg := Config{Origin: testOrigin, File: file, UpdateKeys: []string{"k."}, UpdateTypes: []uint16{dns.TypeA}, DNSSEC: &d}
			z := openSigned(t, cfg)
			if !z.SignedOnDisk() {
				t.Fatal("a signed zone is not SignedOnDisk")
			}
			tag := z.Keys()[0].Tag
			if err := z.GoInsecure(); err != nil {
				t.Fatal(err)
			}
			if err := z.Close(); err != nil {
				t.Fatal(err)
			}
			cfg.DNSSEC = nil
			z = openSigned(t, cfg)
			serial := z.Serial()
			noDNSSEC := func(z *Zone) {
				t.Helper()
				if z.SignedOnDisk() {
					t.Error("still SignedOnDisk")
				}
				z.snapshot().names.ascend(func(name string, n node) bool {
					for _, s := range n {
						if dnssecType(s.t) {
							t.Errorf("%s %s left", name, dns.TypeToString[s.t])
						}
					}
					return true
				})
				if ds, _ := z.snapshot().names.get("secure." + testOrigin); len(ds.get(dns.TypeDS)) != 1 {
					t.Error("the delegation's DS is gone")
				}
			}
			noDNSSEC(z)
			if rc := send(t, z, "home.dyn.example.com. 60 IN A 192.0.2.77"); rc != dns.RcodeSuccess {
				t.Fatalf("update after unsigning: %s", dns.RcodeToString[rc])
			}
			crash(z)
			z2 := openSigned(t, cfg)
			if z2.Serial() != serial+1 || z2.Stats().Replayed == 0 {
				t.Errorf("after a crash: serial %d (want %d), %d replayed", z2.Serial(), serial+1, z2.Stats().Replayed)
			}
			noDNSSEC(z2)

			// Signing again: the keys left going insecure want their DS
			// again.
			if err := z2.Close(); err != nil {
				t.Fatal(err)
			}
			cfg.DNSSEC = &d
			z3 := openSigned(t, cfg)
			apex, _ := z3.snapshot().names.get(z3.Origin)
			if cds := apex.get(dns.TypeCDS); len(cds) != 1 || cds[0].(*dns.CDS).KeyTag != tag || z3.RollStatus() != "" {
				t.Errorf("signed again: CDS %v, status %q", cds, z3.RollStatus())
			}
			verifySigned(t, z3, time.Now())
		})
	}
}

// TestGoInsecure: "dnssec insecure" turns the CDS and CDNSKEY into
// RFC 8078's delete records, signed, the keys still signing; a rollover
// cannot start meanwhile; "--cancel" brings the key's CDS back.
func TestGoInsecure(t *testing.T) {
	clock := time.Now()
	z, _ := signedZone(t, DNSSEC{Now: func() time.Time { return clock }})
	apex := func(typ uint16) []dns.RR { n, _ := z.snapshot().names.get(z.Origin); return n.get(typ) }
	step := func(name string) {
		t.Helper()
		if _, err := z.maintain(refreshBatch, false); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		verifySigned(t, z, clock)
	}
	tag := z.Keys()[0].Tag
	if err := z.GoInsecure(); err != nil {
		t.Fatal(err)
	}
	step("going insecure")
	cds, cdnskey := apex(dns.TypeCDS), apex(dns.TypeCDNSKEY)
	if len(cds) != 1 || !strings.HasSuffix(cds[0].String(), "\t0 0 0 00") || len(cdnskey) != 1 || !strings.HasSuffix(cdnskey[0].String(), "\t0 3 0 AA==") {
		t.Errorf("CDS %v, CDNSKEY %v: want the delete records", cds, cdnskey)
	}
	if len(apex(dns.TypeDNSKEY)) != 1 {
		t.Error("the DNSKEY went with the DS")
	}
	if !strings.HasPrefix(z.RollStatus(), "going insecure") {
		t.Errorf("status %q", z.RollStatus())
	}
	if _, _, err := z.StartRoll(); err == nil || !strings.Contains(err.Error(), "--cancel") {
		t.Errorf("a rollover while going insecure: %v", err)
	}
	if err := z.GoInsecure(); err == nil {
		t.Error("going insecure twice")
	}
	if err := z.CancelInsecure(); err != nil {
		t.Fatal(err)
	}
	step("cancelled")
	if cds := apex(dns.TypeCDS); len(cds) != 1 || cds[0].(*dns.CDS).KeyTag != tag || z.RollStatus() != "" {
		t.Errorf("after --cancel: CDS %v, status %q", cds, z.RollStatus())
	}
	if err := z.CancelInsecure(); err == nil {
		t.Error("cancelled what was not under way")
	}
}

// TestDelegationSigned: a delegation's NS is not signed, its DS is, and
// glue below it is neither signed nor in the chain.
func TestDelegationSigned(t *testing.T) {
	t.Run("NSEC", func(t *testing.T) { delegationSigned(t, DNSSEC{}) })
	t.Run("NSEC3", func(t *testing.T) { delegationSigned(t, DNSSEC{NSEC3: true}) })
}

func delegationSigned(t *testing.T, d DNSSEC) {
	file := filepath.Join(t.TempDir(), "dyn.example.com.zone")
	text := "$ORIGIN dyn.example.com.\n$TTL 60\n@ SOA ns hostmaster 1 3600 600 86400 60\n@ NS ns\nns A 192.0.2.53\n" +
		"sub NS ns.sub\nns.sub A 192.0.2.54\nsecure NS ns.secure\nsecure DS 12345 13 2 " + strings.Repeat("ab", 32) + "\nns.secure A 192.0.2.55\nzz A 192.0.2.1\n"
	if err := os.WriteFile(file, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	z := openSigned(t, Config{Origin: testOrigin, File: file, UpdateKeys: []string{"k."}, DNSSEC: &d})
	verifySigned(t, z, time.Now())
	if d.NSEC3 {
		return
	}
	sub, _ := z.snapshot().names.get("sub.dyn.example.com.")
	if nsec := sub.get(dns.TypeNSEC); len(nsec) != 1 || !slices.Equal(nsec[0].(*dns.NSEC).TypeBitMap, []uint16{dns.TypeNS, dns.TypeRRSIG, dns.TypeNSEC}) {
		t.Errorf("delegation's NSEC: %v", nsec)
	}
}

// TestChainSwitch: a zone signed with NSEC, restarted with NSEC3, and
// back: each start leaves a whole chain of the kind asked for, and none
// of the other.
func TestChainSwitch(t *testing.T) {
	z, _ := signedZone(t, DNSSEC{})
	send(t, z, "a.b.c.dyn.example.com. 60 IN A 192.0.2.7")
	cfg := z.cfg
	for _, nsec3 := range []bool{true, false, true} {
		z.Close()
		d := *cfg.DNSSEC
		d.NSEC3 = nsec3
		cfg.DNSSEC = &d
		z = openSigned(t, cfg)
		verifySigned(t, z, time.Now())
		apex, _ := z.snapshot().names.get(z.Origin)
		if got := len(apex.get(dns.TypeNSEC3PARAM)) == 1; got != nsec3 {
			t.Errorf("NSEC3 %v: NSEC3PARAM %v", nsec3, apex.get(dns.TypeNSEC3PARAM))
		}
	}
	z.Close()
}

// TestCSKRollover walks a rollover by double signature with a clock the
// test moves: the zone verifies at every step, the CDS records follow
// the steps, the DS cannot be declared submitted early, the keys'
// timing survives a restart, and at the end the old key has left the
// DNSKEY RRset and signs nothing.
func TestCSKRollover(t *testing.T) {
	clock := time.Now()
	d := DNSSEC{Now: func() time.Time { return clock }, Propagation: time.Minute, ParentDSTTL: time.Hour}
	z, _ := signedZone(t, d)
	apex := func(typ uint16) []dns.RR { n, _ := z.snapshot().names.get(z.Origin); return n.get(typ) }
	cdsTags := func() []uint16 {
		var tags []uint16
		for _, rr := range apex(dns.TypeCDS) {
			tags = append(tags, rr.(*dns.CDS).KeyTag)
		}
		return tags
	}
	old := z.Keys()[0].Tag
	k, dsAt, err := z.StartRoll()
	if err != nil {
		t.Fatal(err)
	}
	if want := clock.Add(60*time.Second + time.Minute).Truncate(time.Second); !dsAt.Equal(want) {
		t.Errorf("DS at %v, want the DNSKEY TTL and the propagation delay from now, %v", dsAt, want)
	}
	if _, _, err := z.StartRoll(); err == nil {
		t.Error("a second rollover started during the first")
	}
	step := func(name string) {
		t.Helper()
		if _, err := z.maintain(refreshBatch, false); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		verifySigned(t, z, clock)
	}
	step("double signature")
	if n := len(apex(dns.TypeDNSKEY)); n != 2 || !slices.Equal(cdsTags(), []uint16{old}) {
		t.Fatalf("step 1: %d DNSKEYs, CDS of %v; want 2, and the old key's", n, cdsTags())
	}
	if _, err := z.DSSubmitted(); err == nil {
		t.Error("the DS was declared submitted before the new key's CDS was published")
	}
	clock = dsAt.Add(time.Second)
	step("the new key's DS")
	if !slices.Equal(cdsTags(), []uint16{k.Tag}) {
		t.Fatalf("step 2: CDS of %v, want the new key's %d", cdsTags(), k.Tag)
	}
	// The keys' timing is in their files: a restart carries on.
	cfg := z.cfg
	z.stopSigning()
	if err := z.Close(); err != nil {
		t.Fatal(err)
	}
	z = openSigned(t, cfg)
	if !strings.Contains(z.RollStatus(), "step 2 of 4") {
		t.Errorf("after a restart: %q", z.RollStatus())
	}
	retire, err := z.DSSubmitted()
	if err != nil {
		t.Fatal(err)
	}
	step("waiting for the old DS to expire")
	if n := len(apex(dns.TypeDNSKEY)); n != 2 || !strings.Contains(z.RollStatus(), "step 3 of 4") {
		t.Fatalf("step 3: %d DNSKEYs, %q", n, z.RollStatus())
	}
	clock = retire.Add(time.Second)
	step("the old key retired")
	if keys := apex(dns.TypeDNSKEY); len(keys) != 1 || keys[0].(*dns.DNSKEY).KeyTag() != k.Tag || z.RollStatus() != "" {
		t.Fatalf("step 4: DNSKEY %v, %q", keys, z.RollStatus())
	}
	z.snapshot().names.ascend(func(name string, n node) bool {
		for _, rr := range n.get(dns.TypeRRSIG) {
			if rr.(*dns.RRSIG).KeyTag == old {
				t.Errorf("%s: still signed by the retired key: %v", name, rr)
			}
		}
		return true
	})
}
