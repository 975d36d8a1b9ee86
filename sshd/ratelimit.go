package sshd

import (
	"fmt"
	"sync"
	"time"
)

// writeLimiter allows each key at most max record changes in any window
// (a sliding window). Only changes count: nochg answers are free.
type writeLimiter struct {
	max    int
	window time.Duration

	mu     sync.Mutex
	recent map[string][]time.Time // by key; oldest first
	sweep  time.Time
}

// errWriteLimit says when the key may write again.
type errWriteLimit struct{ retry time.Duration }

func (e *errWriteLimit) Error() string {
	return fmt.Sprintf("too many changes for this key; try again in %s", e.retry.Round(time.Second))
}

// allow records a change for key at now, or returns *errWriteLimit.
func (l *writeLimiter) allow(key string, now time.Time) error {
	if l.max <= 0 {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.recent == nil {
		l.recent = make(map[string][]time.Time)
	}
	cut := now.Add(-l.window)
	if now.Sub(l.sweep) > l.window { // forget idle keys now and then
		for k, ts := range l.recent {
			if len(ts) == 0 || !ts[len(ts)-1].After(cut) {
				delete(l.recent, k)
			}
		}
		l.sweep = now
	}
	ts := l.recent[key]
	for len(ts) > 0 && !ts[0].After(cut) {
		ts = ts[1:]
	}
	if len(ts) >= l.max {
		l.recent[key] = ts
		return &errWriteLimit{retry: ts[0].Add(l.window).Sub(now)}
	}
	l.recent[key] = append(ts, now)
	return nil
}
