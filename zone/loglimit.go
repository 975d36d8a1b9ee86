package zone

import (
	"log/slog"
	"sync"
	"time"
)

// Lines caused by packets anyone can send (an unsigned UPDATE, a bad TSIG,
// a refused transfer: spoofable over UDP) are limited to noisyBurst per
// noisyWindow for each message; the first line of a later window says
// how many were left out.
const (
	noisyBurst  = 10
	noisyWindow = time.Minute
)

// noisyLog rate-limits log lines by message. The zero value is ready.
type noisyLog struct {
	mu    sync.Mutex
	now   func() time.Time // time.Now if nil
	lines map[string]*noisyCount
}

type noisyCount struct {
	start   time.Time
	n       int // lines logged in the window that began at start
	dropped int // lines left out since the last one logged
}

// allow reports whether a line with message msg may be logged now, and how
// many lines of it were left out before this one.
func (l *noisyLog) allow(msg string) (ok bool, dropped int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	if l.now != nil {
		now = l.now()
	}
	if l.lines == nil {
		l.lines = map[string]*noisyCount{}
	}
	c := l.lines[msg]
	if c == nil {
		c = &noisyCount{start: now}
		l.lines[msg] = c
	}
	if now.Sub(c.start) >= noisyWindow {
		c.start, c.n = now, 0
	}
	if c.n >= noisyBurst {
		c.dropped++
		return false, 0
	}
	c.n++
	dropped, c.dropped = c.dropped, 0
	return true, dropped
}

// info logs msg at INFO level to log, unless too many lines of it were
// logged lately.
func (l *noisyLog) info(log *slog.Logger, msg string, args ...any) {
	ok, dropped := l.allow(msg)
	if !ok {
		return
	}
	if dropped > 0 {
		args = append(args, "suppressed", dropped)
	}
	log.Info(msg, args...)
}
