package zone

import (
	"bytes"
	"crypto"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/sshdyn/sshdyn/internal/secret"
)

// DNSSEC configures the signing of a zone (see sign.go).
type DNSSEC struct {
	// Algorithm of the keys made for the zone: dns.ECDSAP256SHA256
	// (13, the default) or dns.ED25519 (15).
	Algorithm uint8
	// Validity is how long a new signature is valid (default 14 days);
	// Refresh how long before it expires it is made again (default 7
	// days).
	Validity, Refresh time.Duration
	// NSEC3 proves names and types absent with NSEC3 records (RFC 5155;
	// no extra iterations, no salt, no opt-out: RFC 9276) instead of
	// NSEC.
	NSEC3 bool
	// Propagation is how long a change takes to reach every secondary
	// and cache beyond the TTLs (default 1 hour, Knot's); ParentDSTTL the
	// TTL of the DS records at the parent (default 1 day). A key
	// rollover waits them (roll.go).
	Propagation, ParentDSTTL time.Duration
	// KeyDir holds the keys, in BIND's files (Kzone.+alg+tag.key and
	// .private); default: the zone file's directory.
	KeyDir string
	// Now is the clock signatures are made by; time.Now if nil (tests
	// move it).
	Now func() time.Time
}

// Signing defaults, Knot's: signatures valid 14 days, made again 7 days
// before they expire.
const (
	DefaultSignatureValidity = 14 * 24 * time.Hour
	DefaultSignatureRefresh  = 7 * 24 * time.Hour
)

// CheckDNSSEC reports what is wrong with a signing configuration; the
// configuration asks it, so the rule is written once.
func CheckDNSSEC(d DNSSEC) error {
	switch d.Algorithm {
	case 0, dns.ECDSAP256SHA256, dns.ED25519:
	default:
		return fmt.Errorf("DNSSEC algorithm %d is not supported: use ECDSAP256SHA256 (13) or ED25519 (15)", d.Algorithm)
	}
	v, r := d.validity()
	if d.Propagation < 0 || d.ParentDSTTL < 0 {
		return errors.New("the propagation delay and the parent's DS TTL cannot be negative")
	}
	if d.Validity < 0 || d.Refresh < 0 || r < time.Minute {
		return fmt.Errorf("signature validity %v and refresh %v: the refresh must be at least a minute", v, r)
	}
	if r >= v {
		return fmt.Errorf("signature refresh %v must be less than the validity %v", r, v)
	}
	return nil
}

func (d DNSSEC) validity() (validity, refresh time.Duration) {
	validity, refresh = d.Validity, d.Refresh
	if validity == 0 {
		validity = DefaultSignatureValidity
	}
	if refresh == 0 {
		refresh = min(DefaultSignatureRefresh, validity/2)
	}
	return validity, refresh
}

// clock returns the time signatures are made at.
func (d DNSSEC) clock() time.Time {
	if d.Now != nil {
		return d.Now()
	}
	return time.Now()
}

func (d DNSSEC) algorithm() uint8 {
	if d.Algorithm == 0 {
		return dns.ECDSAP256SHA256
	}
	return d.Algorithm
}

// ParseAlgorithm reads a DNSSEC algorithm's name as BIND and Knot write
// it ("ecdsap256sha256", "ed25519") or its number.
func ParseAlgorithm(s string) (uint8, error) {
	switch strings.ToLower(strings.ReplaceAll(s, "-", "")) {
	case "", "ecdsap256sha256", "13":
		return dns.ECDSAP256SHA256, nil
	case "ed25519", "15":
		return dns.ED25519, nil
	}
	return 0, fmt.Errorf("DNSSEC algorithm %q: use ecdsap256sha256 (the default) or ed25519", s)
}

// A key is one of a zone's DNSSEC keys: a combined signing key (CSK,
// flags 257), in BIND's two files.
type key struct {
	pub    *dns.DNSKEY
	priv   crypto.Signer
	tag    uint16
	file   string    // the .key file
	timing keyTiming // from the .state file
}

// keyFiles returns the base names (without .key) of origin's key files
// in dir, BIND's naming: K<zone>.+<algorithm>+<key tag>.
func keyFiles(dir, origin string) ([]string, error) {
	matches, err := filepath.Glob(filepath.Join(dir, "K"+globEscape(origin)+"+*.key"))
	if err != nil {
		return nil, err
	}
	for i := range matches {
		matches[i] = strings.TrimSuffix(matches[i], ".key")
	}
	slices.Sort(matches)
	return matches, nil
}

func globEscape(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `*`, `\*`, `?`, `\?`, `[`, `\[`)
	return r.Replace(s)
}

// loadKeys reads origin's keys from dir: every K<zone>.+alg+tag.key with
// its .private file, which must not be readable by every user (as TSIG
// keys). No key is no error: the zone's first start makes one.
func loadKeys(dir, origin string) ([]*key, error) {
	bases, err := keyFiles(dir, origin)
	if err != nil {
		return nil, err
	}
	var keys []*key
	for _, base := range bases {
		k, err := readKey(base, origin)
		if err != nil {
			return nil, err
		}
		keys = append(keys, k)
	}
	return keys, nil
}

// sameAlgorithm refuses keys in use (not retired) of another algorithm
// than d's: a zone's algorithm changes only by an algorithm rollover,
// which sshdyn does not do, and a key of the new algorithm beside the
// old would leave the zone signed with two algorithms by accident.
func sameAlgorithm(keys []*key, d DNSSEC) error {
	now := d.clock()
	for _, k := range keys {
		if !k.timing.retired(now) && k.pub.Algorithm != d.algorithm() {
			return fmt.Errorf("%s is a key of algorithm %s, and the zone is to be signed with %s: sshdyn does not change a signed zone's algorithm (an algorithm rollover): set dnssec_algorithm = %q, or start over with new keys and a new DS",
				k.file, dns.AlgorithmToString[k.pub.Algorithm], dns.AlgorithmToString[d.algorithm()], strings.ToLower(dns.AlgorithmToString[k.pub.Algorithm]))
		}
	}
	return nil
}

func readKey(base, origin string) (*key, error) {
	pubFile, privFile := base+".key", base+".private"
	b, err := os.ReadFile(pubFile)
	if err != nil {
		return nil, err
	}
	zp := dns.NewZoneParser(bytes.NewReader(b), origin, pubFile)
	var pub *dns.DNSKEY
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		if k, isKey := rr.(*dns.DNSKEY); isKey && pub == nil {
			pub = k
		}
	}
	if err := zp.Err(); err != nil {
		return nil, err
	}
	if pub == nil || !strings.EqualFold(pub.Hdr.Name, origin) {
		return nil, fmt.Errorf("%s: no DNSKEY record of %s", pubFile, strings.TrimSuffix(origin, "."))
	}
	if pub.Protocol != 3 || pub.Flags&dns.ZONE == 0 {
		return nil, fmt.Errorf("%s: not a zone key (flags %d, protocol %d)", pubFile, pub.Flags, pub.Protocol)
	}
	switch pub.Algorithm {
	case dns.ECDSAP256SHA256, dns.ED25519:
	default:
		return nil, fmt.Errorf("%s: algorithm %d: sshdyn signs with ECDSAP256SHA256 (13) or ED25519 (15)", pubFile, pub.Algorithm)
	}
	raw, err := secret.Read("DNSSEC private key", privFile)
	if err != nil {
		return nil, err
	}
	priv, err := pub.ReadPrivateKey(bytes.NewReader(raw), privFile)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", privFile, err)
	}
	signer, ok := priv.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("%s: not a signing key", privFile)
	}
	if !publicMatches(pub, signer) {
		return nil, fmt.Errorf("%s does not hold the private key of %s", privFile, pubFile)
	}
	timing, err := readTiming(pubFile)
	if err != nil {
		return nil, err
	}
	return &key{pub: pub, priv: signer, tag: pub.KeyTag(), file: pubFile, timing: timing}, nil
}

// publicMatches reports whether priv is the private half of pub.
func publicMatches(pub *dns.DNSKEY, priv crypto.Signer) bool {
	if p, ok := priv.Public().(ed25519.PublicKey); ok {
		return base64.StdEncoding.EncodeToString(p) == pub.PublicKey
	}
	sig := &dns.RRSIG{Algorithm: pub.Algorithm, KeyTag: pub.KeyTag(), SignerName: pub.Hdr.Name, Inception: 0, Expiration: 1<<32 - 1}
	rrset := []dns.RR{&dns.TXT{Hdr: dns.RR_Header{Name: pub.Hdr.Name, Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: 1}, Txt: []string{"probe"}}}
	if sig.Sign(priv, rrset) != nil {
		return false
	}
	return sig.Verify(pub, rrset) == nil
}

// generateKey makes a new CSK for origin in dir, with timing, writes its
// files (the private one mode 0600, written first, each by a rename; the
// state file) and returns it.
func generateKey(dir, origin string, alg uint8, ttl uint32, now time.Time, timing keyTiming) (*key, error) {
	pub := &dns.DNSKEY{
		Hdr:       dns.RR_Header{Name: origin, Rrtype: dns.TypeDNSKEY, Class: dns.ClassINET, Ttl: ttl},
		Flags:     dns.ZONE | dns.SEP, // 257: a CSK
		Protocol:  3,
		Algorithm: alg,
	}
	priv, err := pub.Generate(256) // P-256; ignored for Ed25519
	if err != nil {
		return nil, err
	}
	signer := priv.(crypto.Signer)
	tag := pub.KeyTag()
	base := filepath.Join(dir, fmt.Sprintf("K%s+%03d+%05d", origin, alg, tag))
	if _, err := os.Stat(base + ".key"); err == nil {
		return nil, fmt.Errorf("%s.key exists: a key with the same tag", base)
	}
	stamp := now.UTC().Format("20060102150405")
	private := pub.PrivateKeyString(priv) + fmt.Sprintf("Created: %s\nPublish: %s\nActivate: %s\n", stamp, stamp, stamp)
	if err := writeFileAtomic(base+".private", []byte(private), 0o600); err != nil {
		return nil, err
	}
	public := fmt.Sprintf("; This is a key-signing key, keyid %d, for %s\n; Created: %s (%s)\n; Publish: %s\n; Activate: %s\n%s\n",
		tag, origin, stamp, now.UTC().Format(time.ANSIC), stamp, stamp, pub.String())
	if err := writeFileAtomic(base+".key", []byte(public), 0o644); err != nil {
		os.Remove(base + ".private")
		return nil, err
	}
	k := &key{pub: pub, priv: signer, tag: tag, file: base + ".key", timing: timing}
	if err := writeTiming(k.file, timing); err != nil {
		return nil, err
	}
	for _, f := range []string{base + ".private", base + ".key"} {
		if err := giveToDirOwner(f); err != nil {
			return nil, err
		}
	}
	return k, nil
}

// writeFileAtomic writes a file by a temporary file, fsync and rename.
func writeFileAtomic(path string, b []byte, mode os.FileMode) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if err := f.Chmod(mode); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return err
	}
	return syncDir(dir)
}

// ErrNoKeys: a signed zone has no key yet (check says the first start
// makes one).
var ErrNoKeys = errors.New("no DNSSEC key yet: the first start makes one")
