package dyndns2

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"hash"
	"io"
	"sync"
	"time"
)

// credCache remembers credentials that bcrypt verified, for a while, so
// that a router updating every few minutes costs one bcrypt comparison
// (tens of milliseconds of CPU) per cacheFor, not one per request. It
// keeps a keyed MAC of the password, never the password, under a key made
// at start; an entry counts only while the line's hash is the one it was
// verified against, so a changed password takes effect at the next
// reload. Its zero value is ready.
type credCache struct {
	once    sync.Once
	key     []byte
	macs    sync.Pool // hash.Hash: HMACs under key, reset and used again (making one costs more than using it)
	mu      sync.Mutex
	entries map[string]credEntry // by user
}

type credEntry struct {
	mac     []byte
	hash    string
	expires time.Time
}

const (
	cacheFor     = 10 * time.Minute
	cacheEntries = 100_000
)

func (c *credCache) init() {
	c.key = make([]byte, 32)
	rand.Read(c.key)
	c.entries = map[string]credEntry{}
	c.macs.New = func() any { return hmac.New(sha256.New, c.key) }
}

func (c *credCache) mac(user, password string) []byte {
	m := c.macs.Get().(hash.Hash)
	defer c.macs.Put(m)
	m.Reset()
	io.WriteString(m, user)
	m.Write([]byte{0})
	io.WriteString(m, password)
	return m.Sum(nil)
}

// has reports whether user's password was verified against hash lately.
func (c *credCache) has(user, password, hash string) bool {
	c.once.Do(c.init)
	mac := c.mac(user, password)
	c.mu.Lock()
	e, ok := c.entries[user]
	c.mu.Unlock()
	return ok && e.hash == hash && time.Now().Before(e.expires) && hmac.Equal(e.mac, mac)
}

// add remembers that user's password matches hash.
func (c *credCache) add(user, password, hash string) {
	c.once.Do(c.init)
	mac := c.mac(user, password)
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.entries[user]; !ok && len(c.entries) >= cacheEntries {
		for u, e := range c.entries {
			if now.After(e.expires) || len(c.entries) >= cacheEntries {
				delete(c.entries, u)
			}
			if len(c.entries) < cacheEntries/2 {
				break
			}
		}
	}
	c.entries[user] = credEntry{mac: mac, hash: hash, expires: now.Add(cacheFor)}
}
