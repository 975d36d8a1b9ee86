package tsig

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"hash"
	"strings"

	"github.com/miekg/dns"
)

// Ring is a dns.TsigProvider over a set of keys, for a server that
// accepts several: names compare case-insensitively, and a key is good
// only with its own algorithm.
type Ring map[string]Key

// NewRing returns a Ring holding keys.
func NewRing(keys ...Key) Ring {
	r := make(Ring, len(keys))
	for _, k := range keys {
		r[strings.ToLower(dns.Fqdn(k.Name))] = k
	}
	return r
}

// Get returns the key called name.
func (r Ring) Get(name string) (Key, bool) {
	k, ok := r[strings.ToLower(dns.Fqdn(name))]
	return k, ok
}

func (r Ring) mac(msg []byte, t *dns.TSIG) ([]byte, error) {
	key, ok := r.Get(t.Hdr.Name)
	if !ok {
		return nil, dns.ErrSecret
	}
	if !strings.EqualFold(dns.Fqdn(t.Algorithm), key.Algorithm) {
		return nil, dns.ErrKeyAlg
	}
	secret, err := base64.StdEncoding.DecodeString(key.Secret)
	if err != nil {
		return nil, dns.ErrSecret
	}
	var h func() hash.Hash
	switch key.Algorithm {
	case dns.HmacSHA256:
		h = sha256.New
	case dns.HmacSHA384:
		h = sha512.New384
	case dns.HmacSHA512:
		h = sha512.New
	default:
		return nil, dns.ErrKeyAlg
	}
	m := hmac.New(h, secret)
	m.Write(msg)
	return m.Sum(nil), nil
}

// Generate implements dns.TsigProvider.
func (r Ring) Generate(msg []byte, t *dns.TSIG) ([]byte, error) { return r.mac(msg, t) }

// Verify implements dns.TsigProvider.
func (r Ring) Verify(msg []byte, t *dns.TSIG) error {
	want, err := r.mac(msg, t)
	if err != nil {
		return err
	}
	got, err := hex.DecodeString(t.MAC)
	if err != nil || !hmac.Equal(want, got) {
		return dns.ErrSig
	}
	return nil
}
