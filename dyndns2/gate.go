package dyndns2

import (
	"context"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sshdyn/sshdyn/publish"
)

// passwordGate bounds the work strangers can make the front do: a bcrypt
// comparison costs about a quarter of a second of CPU (PasswordCost), and
// before it, 30 concurrent requests with a wrong password from one
// address cost 9 CPU-seconds at once and slowed every other client
// (audit finding H1). It lets at most one comparison per source (an IPv4
// address, an IPv6 /64) run at a time, and at most total in all, so
// password checks never take every core; a request that cannot start
// its comparison within wait is answered 429 with Retry-After.
//
// With one comparison per source at a time, each failure is counted
// (publish.Service.LoginAttempt) before the next comparison of that
// source starts, so a source's burst reaches its penalty after a few
// comparisons, however many requests it sends at once.
type passwordGate struct {
	wait  time.Duration
	total chan struct{}

	mu       sync.Mutex
	bySource map[netip.Prefix]*sourceSlot

	inFlight atomic.Int32 // comparisons running
	peak     atomic.Int32 // the most that ever ran at once
	compared atomic.Int64 // comparisons made (counted by the caller)
}

// sourceSlot is one source's single comparison slot, and how many
// requests hold or wait for it.
type sourceSlot struct {
	slot chan struct{}
	refs int
}

// Defaults of the password gate.
const (
	// DefaultPasswordWait is how long a request waits for its turn to
	// have its password compared before it gets 429.
	DefaultPasswordWait = 2 * time.Second
)

// DefaultPasswordChecks is the comparisons run at once by default: half
// the CPUs, at least one.
func DefaultPasswordChecks() int { return max(1, runtime.NumCPU()/2) }

func newPasswordGate(total int, wait time.Duration) *passwordGate {
	return &passwordGate{wait: wait, total: make(chan struct{}, total), bySource: map[netip.Prefix]*sourceSlot{}}
}

// enter waits for client's source's slot and a slot of the total, for
// at most g.wait; release gives both back. ok is false when the wait
// ran out or ctx ended.
func (g *passwordGate) enter(ctx context.Context, client netip.Addr) (release func(), ok bool) {
	src := publish.Source(client)
	g.mu.Lock()
	s := g.bySource[src]
	if s == nil {
		s = &sourceSlot{slot: make(chan struct{}, 1)}
		g.bySource[src] = s
	}
	s.refs++
	g.mu.Unlock()
	leave := func() {
		g.mu.Lock()
		if s.refs--; s.refs == 0 {
			delete(g.bySource, src)
		}
		g.mu.Unlock()
	}
	timer := time.NewTimer(g.wait)
	defer timer.Stop()
	select {
	case s.slot <- struct{}{}:
	case <-timer.C:
		leave()
		return nil, false
	case <-ctx.Done():
		leave()
		return nil, false
	}
	select {
	case g.total <- struct{}{}:
	case <-timer.C:
		<-s.slot
		leave()
		return nil, false
	case <-ctx.Done():
		<-s.slot
		leave()
		return nil, false
	}
	n := g.inFlight.Add(1)
	for p := g.peak.Load(); n > p && !g.peak.CompareAndSwap(p, n); p = g.peak.Load() {
	}
	return func() {
		g.inFlight.Add(-1)
		<-g.total
		<-s.slot
		leave()
	}, true
}
