package zone

import (
	"hash/maphash"
	"net/netip"
	"strings"
	"sync"
	"time"
)

// Response rate limiting, as BIND and Knot define it: a server that
// answers anyone over UDP is a reflector for spoofed queries, so the
// answers of one kind to one client network are limited to Rate a
// second. An answer over the limit is dropped, but every Slip-th is sent
// truncated instead (empty, TC set), so that a real resolver behind that
// network retries over TCP, which cannot be spoofed, and still gets its
// answer. A network that floods is remembered for Window: its debt must
// drain before it is answered again.

// RRL configures response rate limiting; a Rate of 0 turns it off.
type RRL struct {
	Rate   int           // responses per second per client network and kind of answer
	Slip   int           // every Slip-th limited answer is sent truncated; 0: none, 1: all
	Window time.Duration // how long a network's flood counts against it (at least 1 s)
	// Exempt are networks never limited (the operator's monitoring, a
	// resolver of its own).
	Exempt []netip.Prefix
}

// Defaults of RRL's fields, as sshdyn's configuration sets them.
const (
	DefaultRRLRate   = 20
	DefaultRRLSlip   = 2
	DefaultRRLWindow = 15 * time.Second
)

// rrlBuckets is the size of the table of accounts: a fixed amount of
// memory whatever the flood; a collision shares an account, as in Knot.
const rrlBuckets = 1 << 16

// The kinds of answer RRL counts apart (BIND's response classes).
const (
	rrlAnswer   = iota // records: per name and type
	rrlNXDomain        // per zone: random names must not each get a budget
	rrlNoData          // NODATA: per zone
	rrlReferral        // per delegation point
	rrlError           // REFUSED, FORMERR, SERVFAIL: per network
)

// rrlAction is what becomes of an answer.
type rrlAction int

const (
	rrlSend rrlAction = iota
	rrlDrop
	rrlSlip
)

type rrlBucket struct {
	key    uint64
	tokens float64 // may go below 0, down to -Rate*Window: the debt
	last   int64   // Unix nanoseconds of the last refill
	slips  uint32
}

// limiter is the RRL state of a server.
type limiter struct {
	cfg   RRL
	seed  maphash.Seed
	locks [256]sync.Mutex
	table []rrlBucket
}

func newLimiter(cfg RRL) *limiter {
	if cfg.Window < time.Second {
		cfg.Window = time.Second
	}
	return &limiter{cfg: cfg, seed: maphash.MakeSeed(), table: make([]rrlBucket, rrlBuckets)}
}

// network returns addr's client network: its /24 for IPv4, /56 for IPv6.
func network(addr netip.Addr) netip.Prefix {
	addr = addr.Unmap()
	if addr.Is4() {
		p, _ := addr.Prefix(24)
		return p
	}
	p, _ := addr.Prefix(56)
	return p
}

func (l *limiter) exempt(addr netip.Addr) bool {
	for _, p := range l.cfg.Exempt {
		if p.Contains(addr.Unmap()) {
			return true
		}
	}
	return false
}

// account decides an answer of kind to addr, about name (type t for an
// answer), at now, with rate (the zone's, or the server's).
func (l *limiter) account(addr netip.Addr, kind int, name string, t uint16, rate int, now time.Time) rrlAction {
	if rate <= 0 || l.exempt(addr) {
		return rrlSend
	}
	var h maphash.Hash
	h.SetSeed(l.seed)
	net := network(addr)
	b := net.Addr().As16()
	h.Write(b[:])
	h.WriteByte(byte(net.Bits()))
	h.WriteByte(byte(kind))
	h.WriteByte(byte(t >> 8))
	h.WriteByte(byte(t))
	h.WriteString(strings.ToLower(name))
	key := h.Sum64()
	i := key % rrlBuckets
	mu := &l.locks[i%uint64(len(l.locks))]
	mu.Lock()
	defer mu.Unlock()
	bk := &l.table[i]
	nanos := now.UnixNano()
	if bk.key != key {
		// A new account (or a collision: it takes the slot over).
		*bk = rrlBucket{key: key, tokens: float64(rate), last: nanos}
	}
	elapsed := float64(nanos-bk.last) / float64(time.Second)
	bk.last = nanos
	bk.tokens = min(float64(rate), bk.tokens+elapsed*float64(rate))
	floor := -float64(rate) * l.cfg.Window.Seconds()
	bk.tokens = max(floor, bk.tokens-1)
	if bk.tokens >= 0 {
		return rrlSend
	}
	if l.cfg.Slip > 0 {
		bk.slips++
		if bk.slips%uint32(l.cfg.Slip) == 0 {
			return rrlSlip
		}
	}
	return rrlDrop
}
