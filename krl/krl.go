// Package krl reads OpenSSH's revoked-keys files: a key revocation list
// (KRL) as "ssh-keygen -k" writes it (PROTOCOL.krl), or a plain list of
// public keys, one a line, as OpenSSH's RevokedKeys also accepts. It
// answers, as OpenSSH's ssh_krl_check_key does, whether a key or a
// certificate is revoked: the key itself (explicitly or by its SHA-1 or
// SHA-256 fingerprint), a certificate by its CA and serial or key ID, or
// the certificate's CA key.
package krl

import (
	"bufio"
	"bytes"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math/big"
	"strings"

	"golang.org/x/crypto/ssh"
)

// magic starts every KRL: "SSHKRL\n\0".
const magic = "SSHKRL\n\x00"

// Section types (PROTOCOL.krl 1-5).
const (
	sectionCertificates = 1
	sectionExplicitKey  = 2
	sectionSHA1         = 3
	sectionSignature    = 4
	sectionSHA256       = 5
	sectionExtension    = 255

	certSerialList   = 0x20
	certSerialRange  = 0x21
	certSerialBitmap = 0x22
	certKeyID        = 0x23
	certExtension    = 0x39
)

// List is a parsed revocation list. The zero value revokes nothing.
type List struct {
	keys    map[string]bool // plain public key blobs
	sha1s   map[string]bool
	sha256s map[string]bool
	certs   map[string]*certs // by CA key blob; "" applies to every CA

	Version uint64 // krl_version; 0 for a plain list
	Comment string
}

// certs is what a KRL revokes of one CA's certificates.
type certs struct {
	serials map[uint64]bool
	ranges  [][2]uint64
	bitmaps []bitmap
	keyIDs  map[string]bool
}

type bitmap struct {
	offset uint64
	bits   *big.Int
}

func (c *certs) revokedSerial(s uint64) bool {
	if c.serials[s] {
		return true
	}
	for _, r := range c.ranges {
		if r[0] <= s && s <= r[1] {
			return true
		}
	}
	for _, b := range c.bitmaps {
		if s >= b.offset && s-b.offset < uint64(b.bits.BitLen()) && b.bits.Bit(int(s-b.offset)) == 1 {
			return true
		}
	}
	return false
}

// Parse reads a KRL, or, if data does not start with the KRL magic, a
// list of public keys in authorized_keys form (blank lines and # comments
// skipped; a certificate there revokes that certificate's key).
func Parse(data []byte) (*List, error) {
	if bytes.HasPrefix(data, []byte(magic)) {
		return parseKRL(data[len(magic):])
	}
	return parseKeys(data)
}

func newList() *List {
	return &List{keys: map[string]bool{}, sha1s: map[string]bool{}, sha256s: map[string]bool{}, certs: map[string]*certs{}}
}

func parseKeys(data []byte) (*List, error) {
	l := newList()
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), 64<<10)
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		k, _, _, _, err := ssh.ParseAuthorizedKey([]byte(line))
		if err != nil {
			return nil, fmt.Errorf("line %d: not a public key (nor is the file a KRL)", n)
		}
		l.keys[string(plainBlob(k))] = true
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("line %d: %w", n+1, err)
	}
	return l, nil
}

// reader reads SSH wire types; err is sticky.
type reader struct {
	b   []byte
	err error
}

func (r *reader) fail(format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf(format, args...)
	}
}

func (r *reader) u8() byte {
	if r.err != nil || len(r.b) < 1 {
		r.fail("truncated")
		return 0
	}
	v := r.b[0]
	r.b = r.b[1:]
	return v
}

func (r *reader) u32() uint32 {
	if r.err != nil || len(r.b) < 4 {
		r.fail("truncated")
		return 0
	}
	v := binary.BigEndian.Uint32(r.b)
	r.b = r.b[4:]
	return v
}

func (r *reader) u64() uint64 {
	if r.err != nil || len(r.b) < 8 {
		r.fail("truncated")
		return 0
	}
	v := binary.BigEndian.Uint64(r.b)
	r.b = r.b[8:]
	return v
}

func (r *reader) str() []byte {
	n := r.u32()
	if r.err != nil || uint64(n) > uint64(len(r.b)) {
		r.fail("truncated")
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

func (r *reader) done() bool { return r.err != nil || len(r.b) == 0 }

func parseKRL(data []byte) (*List, error) {
	l := newList()
	r := &reader{b: data}
	if v := r.u32(); r.err == nil && v != 1 {
		return nil, fmt.Errorf("KRL format version %d, want 1", v)
	}
	l.Version = r.u64()
	r.u64() // generated_date
	r.u64() // flags
	r.str() // reserved
	l.Comment = string(r.str())
	if r.err != nil {
		return nil, fmt.Errorf("KRL header: %w", r.err)
	}
	for !r.done() {
		typ, sect := r.u8(), r.str()
		if r.err != nil {
			break
		}
		if err := l.section(typ, sect); err != nil {
			return nil, err
		}
	}
	if r.err != nil {
		return nil, fmt.Errorf("KRL: %w", r.err)
	}
	return l, nil
}

// section applies one top-level section.
func (l *List) section(typ byte, data []byte) error {
	s := &reader{b: data}
	switch typ {
	case sectionCertificates:
		return l.certSection(s)
	case sectionExplicitKey, sectionSHA1, sectionSHA256:
		into, size := map[byte]map[string]bool{sectionExplicitKey: l.keys, sectionSHA1: l.sha1s, sectionSHA256: l.sha256s}[typ], map[byte]int{sectionSHA1: 20, sectionSHA256: 32}[typ]
		for !s.done() {
			b := s.str()
			if size > 0 && len(b) != size && s.err == nil {
				return fmt.Errorf("KRL: a fingerprint of %d bytes, want %d", len(b), size)
			}
			if typ == sectionExplicitKey && s.err == nil {
				k, err := ssh.ParsePublicKey(b)
				if err != nil {
					return fmt.Errorf("KRL: revoked key: %w", err)
				}
				b = plainBlob(k)
			}
			into[string(b)] = true
		}
	case sectionSignature:
		return errors.New("KRL: signed KRLs are not supported (OpenSSH 9.4 and later refuse them too)")
	case sectionExtension:
		return extension(s, "KRL")
	default:
		return fmt.Errorf("KRL: unknown section type %d", typ)
	}
	if s.err != nil {
		return fmt.Errorf("KRL: %w", s.err)
	}
	return nil
}

// certSection applies a certificates section (PROTOCOL.krl 2).
func (l *List) certSection(s *reader) error {
	ca := s.str()
	s.str() // reserved
	if s.err != nil {
		return fmt.Errorf("KRL certificates section: %w", s.err)
	}
	if len(ca) > 0 {
		k, err := ssh.ParsePublicKey(ca)
		if err != nil {
			return fmt.Errorf("KRL certificates section: CA key: %w", err)
		}
		ca = k.Marshal()
	}
	c := l.certs[string(ca)]
	if c == nil {
		c = &certs{serials: map[uint64]bool{}, keyIDs: map[string]bool{}}
		l.certs[string(ca)] = c
	}
	for !s.done() {
		typ, data := s.u8(), s.str()
		if s.err != nil {
			break
		}
		sub := &reader{b: data}
		switch typ {
		case certSerialList:
			for !sub.done() {
				c.serials[sub.u64()] = true
			}
		case certSerialRange:
			lo, hi := sub.u64(), sub.u64()
			if sub.err == nil && lo > hi {
				return fmt.Errorf("KRL: serial range %d-%d is empty", lo, hi)
			}
			c.ranges = append(c.ranges, [2]uint64{lo, hi})
		case certSerialBitmap:
			off, bits := sub.u64(), sub.str()
			if len(bits) > 0 && bits[0]&0x80 != 0 {
				return errors.New("KRL: negative serial bitmap")
			}
			c.bitmaps = append(c.bitmaps, bitmap{offset: off, bits: new(big.Int).SetBytes(bits)})
		case certKeyID:
			for !sub.done() {
				c.keyIDs[string(sub.str())] = true
			}
		case certExtension:
			if err := extension(sub, "KRL certificates section"); err != nil {
				return err
			}
		default:
			return fmt.Errorf("KRL: unknown certificates subsection type 0x%02x", typ)
		}
		if sub.err != nil {
			return fmt.Errorf("KRL certificates subsection 0x%02x: %w", typ, sub.err)
		}
		if len(sub.b) > 0 {
			return fmt.Errorf("KRL certificates subsection 0x%02x: %d bytes left over", typ, len(sub.b))
		}
	}
	if s.err != nil {
		return fmt.Errorf("KRL certificates section: %w", s.err)
	}
	return nil
}

// extension skips an extension that is not critical, and refuses one that
// is: sshdyn understands none.
func extension(s *reader, where string) error {
	name, critical := s.str(), s.u8()
	s.str()
	switch {
	case s.err != nil:
		return fmt.Errorf("%s extension: %w", where, s.err)
	case critical != 0:
		return fmt.Errorf("%s: critical extension %q is not supported", where, name)
	}
	return nil
}

// plainBlob is k's wire form, or a certificate's key's: what explicit
// keys and fingerprints are of.
func plainBlob(k ssh.PublicKey) []byte {
	if c, ok := k.(*ssh.Certificate); ok {
		return c.Key.Marshal()
	}
	return k.Marshal()
}

// Revoked reports whether k is revoked, and why: the key (for a
// certificate, its key) explicitly or by fingerprint; a certificate by
// its CA's (or any CA's) serial or key ID; or a certificate's CA key.
func (l *List) Revoked(k ssh.PublicKey) (why string, revoked bool) {
	if l == nil {
		return "", false
	}
	if why, ok := l.keyRevoked(k); ok {
		return why, true
	}
	c, ok := k.(*ssh.Certificate)
	if !ok {
		return "", false
	}
	if why, ok := l.keyRevoked(c.SignatureKey); ok {
		return "its CA's " + why, true
	}
	return "", false
}

func (l *List) keyRevoked(k ssh.PublicKey) (string, bool) {
	blob := plainBlob(k)
	s1, s256 := sha1.Sum(blob), sha256.Sum256(blob)
	switch {
	case l.sha1s[string(s1[:])]:
		return "key (by SHA-1 fingerprint)", true
	case l.sha256s[string(s256[:])]:
		return "key (by SHA-256 fingerprint)", true
	case l.keys[string(blob)]:
		return "key", true
	}
	c, ok := k.(*ssh.Certificate)
	if !ok {
		return "", false
	}
	for _, ca := range []string{string(c.SignatureKey.Marshal()), ""} {
		rc := l.certs[ca]
		switch {
		case rc == nil:
		case rc.keyIDs[c.KeyId]:
			return fmt.Sprintf("certificate key ID %q", c.KeyId), true
		case c.Serial != 0 && rc.revokedSerial(c.Serial):
			return fmt.Sprintf("certificate serial %d", c.Serial), true
		}
	}
	return "", false
}
