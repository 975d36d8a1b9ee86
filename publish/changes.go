package publish

import (
	"fmt"
	"sync"
	"time"
)

// changeLimiter allows each key at most max record changes in any window
// (a sliding window). Only changes count: nochg answers are free.
type changeLimiter struct {
	max    int
	window time.Duration

	mu     sync.Mutex
	recent map[string][]time.Time // by key; oldest first
	sweep  time.Time
}

// LimitError is a change refused by MaxChangesPerKey; Retry says when
// the identity may change a record again.
type LimitError struct{ Retry time.Duration }

func (e *LimitError) Error() string {
	return fmt.Sprintf("too many changes for this key; try again in %s", e.Retry.Round(time.Second))
}

// allow records a change for key at now, or returns *LimitError.
func (l *changeLimiter) allow(key string, now time.Time) error {
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
		return &LimitError{Retry: ts[0].Add(l.window).Sub(now)}
	}
	l.recent[key] = append(ts, now)
	return nil
}
