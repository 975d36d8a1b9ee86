package publish

import (
	"fmt"
	"sync"
	"time"
)

// windowLimiter allows each key at most max events in any window (a
// sliding window): record changes (nochg answers are free), or requests.
type windowLimiter struct {
	max    int
	window time.Duration
	what   string // what is counted, for the error: "changes", "requests"

	mu     sync.Mutex
	recent map[string][]time.Time // by key; oldest first
	sweep  time.Time
}

// LimitError is a change refused by MaxChangesPerKey, or a request
// refused by MaxRequestsPerKey; Retry says when the identity may try
// again.
type LimitError struct {
	What  string // "changes" or "requests"
	Retry time.Duration
}

func (e *LimitError) Error() string {
	return fmt.Sprintf("too many %s for this key; try again in %s", e.What, max(e.Retry.Round(time.Second), time.Second))
}

// allow records an event for key at now, or returns *LimitError.
func (l *windowLimiter) allow(key string, now time.Time) error {
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
		return &LimitError{What: l.what, Retry: ts[0].Add(l.window).Sub(now)}
	}
	l.recent[key] = append(ts, now)
	return nil
}
