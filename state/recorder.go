package state

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults of a Recorder.
const (
	DefaultQueue     = 10_000              // events waiting to be written
	DefaultKeep      = 90 * 24 * time.Hour // history kept
	DefaultPerHost   = 1000                // events kept per host
	pruneEvery       = time.Hour
	writeBatch       = 500                    // events written in one transaction at most
	batchFor         = 100 * time.Millisecond // how long a batch gathers
	droppedLogPeriod = time.Minute
)

// Recorder hands events to a Store without ever making the caller wait:
// Add puts them in a bounded queue and returns; a writer drains it in
// batches. When the queue is full, or the store fails, the events are
// dropped and counted (Dropped), and the loss is logged at most once a
// minute. Run drives the writer and the pruning.
type Recorder struct {
	Store *Store
	Log   *slog.Logger
	// Keep and PerHost bound the history (DefaultKeep, DefaultPerHost if
	// zero).
	Keep    time.Duration
	PerHost int
	// Written, if set, is called after events were written (the stale
	// watcher looks again).
	Written func()

	once    sync.Once
	queue   chan Event
	dropped atomic.Uint64
	lastLog time.Time // guarded by the writer
}

func (r *Recorder) init() {
	r.queue = make(chan Event, DefaultQueue)
	if r.Keep <= 0 {
		r.Keep = DefaultKeep
	}
	if r.PerHost <= 0 {
		r.PerHost = DefaultPerHost
	}
	if r.Log == nil {
		r.Log = slog.New(slog.DiscardHandler)
	}
}

// Add queues e, or drops it if the queue is full. It never blocks.
func (r *Recorder) Add(e Event) {
	r.once.Do(r.init)
	select {
	case r.queue <- e:
	default:
		r.dropped.Add(1)
	}
}

// Dropped returns how many events were lost so far (queue full, or the
// store failed).
func (r *Recorder) Dropped() uint64 { return r.dropped.Load() }

// Run writes queued events until ctx ends, then what is left (for up to
// 2 s), and prunes the history every hour.
func (r *Recorder) Run(ctx context.Context) {
	r.once.Do(r.init)
	prune := time.NewTicker(pruneEvery)
	defer prune.Stop()
	r.prune(ctx)
	for {
		select {
		case e := <-r.queue:
			// The batch is written even when ctx ends while it gathers:
			// these events were acknowledged to their clients.
			r.write(context.WithoutCancel(ctx), r.drain(ctx, e))
		case <-prune.C:
			r.prune(ctx)
		case <-ctx.Done():
			fin, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
			defer cancel()
			for {
				select {
				case e := <-r.queue:
					r.write(fin, r.drain(fin, e))
				default:
					return
				}
			}
		}
	}
}

// drain returns e and what else comes within batchFor of it, up to
// writeBatch events: one transaction for many events costs the store
// (and the CPUs it shares with the fronts) far less than one each.
func (r *Recorder) drain(ctx context.Context, e Event) []Event {
	batch := []Event{e}
	timer := time.NewTimer(batchFor)
	defer timer.Stop()
	for len(batch) < writeBatch {
		select {
		case e := <-r.queue:
			batch = append(batch, e)
		case <-timer.C:
			return batch
		case <-ctx.Done():
			// Shutting down: take what is queued now, wait no longer.
			for len(batch) < writeBatch {
				select {
				case e := <-r.queue:
					batch = append(batch, e)
				default:
					return batch
				}
			}
			return batch
		}
	}
	return batch
}

func (r *Recorder) write(ctx context.Context, batch []Event) {
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	err := r.Store.Record(wctx, batch)
	if err != nil && wctx.Err() == nil {
		// Once more: a connection the server closed (it restarted) fails
		// the first try, and the pool opens a new one for the second.
		err = r.Store.Record(wctx, batch)
	}
	if err != nil {
		r.dropped.Add(uint64(len(batch)))
		if time.Since(r.lastLog) >= droppedLogPeriod {
			r.lastLog = time.Now()
			r.Log.Error("state store: events not recorded (updates are not affected)", "store", r.Store.Name(), "events", len(batch), "dropped_so_far", r.Dropped(), "err", err)
		}
		return
	}
	if r.Written != nil {
		r.Written()
	}
}

func (r *Recorder) prune(ctx context.Context) {
	pctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	n, err := r.Store.Prune(pctx, time.Now().Add(-r.Keep), r.PerHost)
	if err != nil {
		r.Log.Warn("state store: history not pruned", "store", r.Store.Name(), "err", err)
		return
	}
	if n > 0 {
		r.Log.Info("state store: history pruned", "store", r.Store.Name(), "events", n)
	}
}
