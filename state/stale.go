package state

import (
	"context"
	"fmt"
	"log/slog"
	"time"
)

// Watcher judges staleness, per host and family, as time passes: a
// family that has had a good or nochg and none for longer than its
// host's stale-after, or whose last Failures updates all failed, is
// stale; the next good or nochg recovers it. A family taken offline (its
// records removed) is not stale. A family never updated is
// "never seen", not stale (it has no row). Each change of state is
// marked in the store once (of several frontends on one store, one
// marks it) and handed to Notify.
type Watcher struct {
	Store *Store
	// StaleAfter returns host's threshold; 0: staleness off for it.
	StaleAfter func(host string) time.Duration
	// Failures is the run of failures that makes a family stale (0: off).
	Failures int
	// Notify is told of each change: stale true (went stale) or false
	// (recovered), with why.
	Notify func(f Family, stale bool, why string)
	Now    func() time.Time // time.Now if nil
	Log    *slog.Logger
}

// Interval is how often a Watcher must look for a family to be flagged
// within one second plus a tenth of its threshold of crossing it, at
// most a minute: smallest is the smallest threshold in use.
func Interval(smallest time.Duration) time.Duration {
	if smallest <= 0 {
		return time.Minute
	}
	return min(time.Second+smallest/10, time.Minute)
}

// Look judges every family once.
func (w *Watcher) Look(ctx context.Context) error {
	now := time.Now()
	if w.Now != nil {
		now = w.Now()
	}
	fs, err := w.Store.Families(ctx)
	if err != nil {
		return err
	}
	for _, f := range fs {
		stale, why := w.judge(f, now)
		if stale == f.Stale {
			continue
		}
		changed, err := w.Store.MarkStale(ctx, f.Host, f.Family, stale, now)
		if err != nil {
			return err
		}
		if changed && w.Notify != nil {
			w.Notify(f, stale, why)
		}
	}
	return nil
}

// judge says whether f is stale at now, and why.
func (w *Watcher) judge(f Family, now time.Time) (bool, string) {
	if w.Failures > 0 && f.Failures >= w.Failures {
		return true, fmt.Sprintf("its last %d updates failed (the last: %s at %s)", f.Failures, f.FailureKind, f.LastFailure.UTC().Format(time.RFC3339))
	}
	if f.Offline() {
		return false, fmt.Sprintf("taken offline at %s", f.LastOK.UTC().Format(time.RFC3339))
	}
	if after := w.StaleAfter(f.Host); after > 0 && !f.LastOK.IsZero() && now.Sub(f.LastOK) > after {
		return true, fmt.Sprintf("no update since %s (stale after %s)", f.LastOK.UTC().Format(time.RFC3339), after)
	}
	if f.LastOK.IsZero() {
		return f.Stale, "" // failures only, fewer than the limit: as it was
	}
	return false, fmt.Sprintf("updated at %s", f.LastOK.UTC().Format(time.RFC3339))
}

// Run looks until ctx ends, every interval() (asked again each time: a
// reload may bring a smaller threshold).
func (w *Watcher) Run(ctx context.Context, interval func() time.Duration) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(interval()):
			if err := w.Look(ctx); err != nil && w.Log != nil {
				w.Log.Warn("state store: staleness not judged", "err", err)
			}
		}
	}
}
