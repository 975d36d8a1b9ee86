package zone

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math/bits"
	"net/netip"
	"sync"
	"time"
)

// DNS cookies (RFC 7873) with interoperable server cookies (RFC 9018):
// a server cookie is version 1, three reserved bytes, a timestamp (Unix
// seconds, 32 bits) and SipHash-2-4, under the server secret, of the
// client cookie, those eight bytes and the client's address. Any server
// with the same secret (sshdyn, BIND, Knot) accepts the cookies of the
// others, which is what an anycast set of several servers needs.

// cookieSecrets holds the current server secret and the previous one, so
// that cookies made just before a rotation stay valid.
type cookieSecrets struct {
	mu       sync.Mutex
	cur, old [16]byte
	hasOld   bool
	fixed    bool // configured: never rotated
	rotated  time.Time
}

// cookieRotation is how often a secret sshdyn made itself is replaced.
const cookieRotation = 12 * time.Hour

// newCookieSecrets returns the secrets: the configured one (32 hex
// digits), which is never rotated, or a random one rotated every
// cookieRotation.
func newCookieSecrets(configured string) (*cookieSecrets, error) {
	c := &cookieSecrets{rotated: time.Now()}
	if configured == "" {
		rand.Read(c.cur[:])
		return c, nil
	}
	if err := CheckCookieSecret(configured); err != nil {
		return nil, fmt.Errorf("cookie secret: %w", err)
	}
	b, _ := hex.DecodeString(configured)
	copy(c.cur[:], b)
	c.fixed = true
	return c, nil
}

// CheckCookieSecret says why s cannot be a DNS cookie secret: it must
// be 32 hexadecimal digits (128 bits), as BIND's cookie-secret and Knot's
// cookies secret are.
func CheckCookieSecret(s string) error {
	if b, err := hex.DecodeString(s); err != nil || len(b) != 16 {
		return fmt.Errorf("want 32 hexadecimal digits (128 bits), e.g. from \"openssl rand -hex 16\"; the same on every server of the zone, as BIND's cookie-secret and Knot's cookies secret")
	}
	return nil
}

// secrets returns the current secret, and the previous one if valid.
func (c *cookieSecrets) secrets(now time.Time) (cur, old [16]byte, hasOld bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.fixed && now.Sub(c.rotated) > cookieRotation {
		c.old, c.hasOld = c.cur, true
		rand.Read(c.cur[:])
		c.rotated = now
	}
	return c.cur, c.old, c.hasOld
}

// serverCookie computes the RFC 9018 server cookie for client (8 bytes)
// from addr at timestamp ts.
func serverCookie(secret [16]byte, client []byte, ts uint32, addr netip.Addr) []byte {
	var in [8 + 8 + 16]byte
	copy(in[:8], client)
	in[8] = 1 // version
	binary.BigEndian.PutUint32(in[12:16], ts)
	a := addr.Unmap().AsSlice()
	n := copy(in[16:], a)
	h := siphash24(secret, in[:16+n])
	out := make([]byte, 16)
	copy(out, in[8:16])
	binary.LittleEndian.PutUint64(out[8:], h) // SipHash's output, as its reference code writes it
	return out
}

// cookieVerdict is what a request's COOKIE option says.
type cookieVerdict int

const (
	cookieNone      cookieVerdict = iota // no COOKIE option
	cookieClient                         // a client cookie only, or a server cookie that is not valid (wrong, expired)
	cookieValid                          // a valid server cookie: the client has talked to us (or a peer with the secret) before
	cookieMalformed                      // not 8 or 16 to 40 bytes: FORMERR (RFC 7873 5.2.2)
)

// cookieValidity is how long a server cookie is accepted: up to an hour
// old, and up to five minutes in the future (RFC 9018 4.3).
const (
	cookieMaxAge    = time.Hour
	cookieMaxAhead  = 5 * time.Minute
	cookieRefreshAt = 30 * time.Minute // a cookie older than this is replaced in the answer
)

// check judges a COOKIE option's data from addr at now, and returns the
// cookie to answer with: the client cookie and a server cookie, the
// client's own if it is valid and fresh, else a new one.
func (c *cookieSecrets) check(data []byte, addr netip.Addr, now time.Time) (cookieVerdict, []byte) {
	switch n := len(data); {
	case n == 8:
	case n >= 16 && n <= 40:
	default:
		return cookieMalformed, nil
	}
	client := data[:8]
	cur, old, hasOld := c.secrets(now)
	fresh := func() []byte {
		return append(append([]byte(nil), client...), serverCookie(cur, client, uint32(now.Unix()), addr)...)
	}
	if len(data) != 24 || data[8] != 1 {
		return cookieClient, fresh()
	}
	ts := binary.BigEndian.Uint32(data[12:16])
	// Serial-number arithmetic on the 32-bit timestamp (RFC 9018 4.3).
	age := time.Duration(int32(uint32(now.Unix())-ts)) * time.Second
	if age > cookieMaxAge || age < -cookieMaxAhead {
		return cookieClient, fresh()
	}
	for i, s := range [][16]byte{cur, old} {
		if i == 1 && !hasOld {
			break
		}
		if bytes.Equal(serverCookie(s, client, ts, addr), data[8:]) {
			if i == 0 && age < cookieRefreshAt {
				return cookieValid, append([]byte(nil), data...)
			}
			return cookieValid, fresh()
		}
	}
	return cookieClient, fresh()
}

// siphash24 is SipHash-2-4 (Aumasson and Bernstein) of msg under key.
func siphash24(key [16]byte, msg []byte) uint64 {
	k0 := binary.LittleEndian.Uint64(key[:8])
	k1 := binary.LittleEndian.Uint64(key[8:])
	v0 := k0 ^ 0x736f6d6570736575
	v1 := k1 ^ 0x646f72616e646f6d
	v2 := k0 ^ 0x6c7967656e657261
	v3 := k1 ^ 0x7465646279746573
	round := func() {
		v0 += v1
		v1 = bits.RotateLeft64(v1, 13)
		v1 ^= v0
		v0 = bits.RotateLeft64(v0, 32)
		v2 += v3
		v3 = bits.RotateLeft64(v3, 16)
		v3 ^= v2
		v0 += v3
		v3 = bits.RotateLeft64(v3, 21)
		v3 ^= v0
		v2 += v1
		v1 = bits.RotateLeft64(v1, 17)
		v1 ^= v2
		v2 = bits.RotateLeft64(v2, 32)
	}
	n := len(msg)
	for len(msg) >= 8 {
		m := binary.LittleEndian.Uint64(msg)
		v3 ^= m
		round()
		round()
		v0 ^= m
		msg = msg[8:]
	}
	var last [8]byte
	copy(last[:], msg)
	last[7] = byte(n)
	m := binary.LittleEndian.Uint64(last[:])
	v3 ^= m
	round()
	round()
	v0 ^= m
	v2 ^= 0xff
	round()
	round()
	round()
	round()
	return v0 ^ v1 ^ v2 ^ v3
}
