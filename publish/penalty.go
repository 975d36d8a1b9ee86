package publish

import (
	"net/netip"
	"sync"
	"time"
)

// penalties slows sources that keep failing to authenticate, like
// OpenSSH's PerSourcePenalties: every failed login adds cost to its
// source's penalty, which drains in real time; while the penalty exceeds
// grace, new connections from the source are closed at once. IPv6
// sources are grouped by /64.
type penalties struct {
	cost  time.Duration // added per failed login; 0 disables
	grace time.Duration // penalty tolerated before refusing
	max   time.Duration // cap on one source's penalty

	mu    sync.Mutex
	until map[netip.Prefix]time.Time
}

// maxPenaltySources bounds the table; past it, stale entries are dropped
// and new sources are not tracked (fail open rather than grow).
const maxPenaltySources = 65536

// Source is the source a per-source limit counts a's connections or
// failures for: the address itself for IPv4, its /64 for IPv6 (one
// customer's network, which holds as many addresses as it likes).
func Source(a netip.Addr) netip.Prefix { return sourceOf(Address(a)) }

// sourceOf is Source of a normalised address.
func sourceOf(a netip.Addr) netip.Prefix {
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p
	}
	return netip.PrefixFrom(a, 32)
}

// fail records a failed login from a.
func (p *penalties) fail(a netip.Addr, now time.Time) {
	if p.cost <= 0 {
		return
	}
	src := sourceOf(a)
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.until == nil {
		p.until = make(map[netip.Prefix]time.Time)
	}
	if _, ok := p.until[src]; !ok && len(p.until) >= maxPenaltySources {
		for k, t := range p.until {
			if !t.After(now) {
				delete(p.until, k)
			}
		}
		if len(p.until) >= maxPenaltySources {
			return
		}
	}
	t := p.until[src]
	if t.Before(now) {
		t = now
	}
	t = t.Add(p.cost)
	if limit := now.Add(p.max); t.After(limit) {
		t = limit
	}
	p.until[src] = t
}

// refund takes back one failure of a (recorded by fail before a check
// that then succeeded).
func (p *penalties) refund(a netip.Addr, now time.Time) {
	if p.cost <= 0 {
		return
	}
	src := sourceOf(a)
	p.mu.Lock()
	defer p.mu.Unlock()
	t, ok := p.until[src]
	if !ok {
		return
	}
	if t = t.Add(-p.cost); !t.After(now) {
		delete(p.until, src)
		return
	}
	p.until[src] = t
}

// refused reports whether a is refused now, and for how long.
func (p *penalties) refused(a netip.Addr, now time.Time) (time.Duration, bool) {
	if p.cost <= 0 {
		return 0, false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	left := p.until[sourceOf(a)].Sub(now)
	if left > p.grace {
		return left - p.grace, true
	}
	return 0, false
}
