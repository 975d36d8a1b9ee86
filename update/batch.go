package update

import (
	"context"
	"slices"
	"sync"
)

// Batch sends concurrent calls of one Client as few UPDATE messages:
// replaces together, and checks that are expected to hold together. It
// knows nothing of DNS: the Client hands it the function that sends one
// message for many calls and returns each one's result. A primary handles (and, for a replace,
// commits and journals) each message once, so under load many changes or
// checks cost little more than one. There is no waiting: a call that
// finds no message of its kind in flight is sent at once, alone; those
// that arrive meanwhile go together in the next message, once the one in
// flight is answered. The zero value is not ready: use NewBatch.
type Batch struct {
	// Max bounds the records in one message.
	Max int

	replaces lane[change]
	checks   lane[Record]
}

// NewBatch returns a Batch of at most 64 records per message.
func NewBatch() *Batch { return &Batch{Max: 64} }

// replace queues ch, to be sent with send, and returns its result.
func (b *Batch) replace(ctx context.Context, ch change, send func(context.Context, []change) []error) error {
	return b.replaces.do(ctx, b.Max, ch, func(ch change) rrsetKey { return keyOf(ch.r) }, send)
}

// check queues a check of r, to be sent with send, and returns its
// result.
func (b *Batch) check(ctx context.Context, r Record, send func(context.Context, []Record) []error) error {
	return b.checks.do(ctx, b.Max, r, keyOf, send)
}

// lane is one kind of message of a Batch: at most one in flight, and the
// calls that arrive meanwhile queued for the next.
type lane[T any] struct {
	mu     sync.Mutex
	queue  []*pending[T]
	flying bool // a leader is sending
}

type pending[T any] struct {
	v    T
	done chan error // the result; buffered
	lead chan bool  // told to send the next message; buffered
}

// do queues v and returns its result. The first caller, or the one handed
// the turn, sends a message of up to max queued values, at most one per
// RRset (key), with send; the others wait for it.
func (l *lane[T]) do(ctx context.Context, max int, v T, key func(T) rrsetKey, send func(context.Context, []T) []error) error {
	p := &pending[T]{v: v, done: make(chan error, 1), lead: make(chan bool, 1)}
	l.mu.Lock()
	l.queue = append(l.queue, p)
	if l.flying {
		l.mu.Unlock()
		// Not on ctx: a waiter may be handed the turn, and must take it.
		// The messages ahead are bounded by the client's timeout.
		select {
		case err := <-p.done:
			return err
		case <-p.lead:
		}
		l.mu.Lock()
	}
	l.flying = true
	for {
		batch := l.take(max, key)
		l.mu.Unlock()
		vs := make([]T, len(batch))
		for i, q := range batch {
			vs[i] = q.v
		}
		for i, err := range send(context.WithoutCancel(ctx), vs) {
			batch[i].done <- err
		}
		l.mu.Lock()
		switch {
		case len(l.queue) == 0:
			l.flying = false
		case slices.Contains(l.queue, p):
			continue // p itself did not go: send the next message too
		default:
			l.queue[0].lead <- true // it sends the next message
		}
		l.mu.Unlock()
		return <-p.done
	}
}

// take removes up to max pending values from the queue, in order, no two
// of one RRset: a second one waits for the next message. (Two replaces of
// one RRset in one message would leave the RRset holding both addresses;
// two checks, one prerequisite that it is both.)
func (l *lane[T]) take(max int, key func(T) rrsetKey) []*pending[T] {
	var batch, rest []*pending[T]
	var keys map[rrsetKey]bool
	if len(l.queue) > 1 {
		keys = make(map[rrsetKey]bool, len(l.queue))
	}
	for _, q := range l.queue {
		if len(batch) == max {
			rest = append(rest, q)
			continue
		}
		if keys != nil {
			k := key(q.v)
			if keys[k] {
				rest = append(rest, q)
				continue
			}
			keys[k] = true
		}
		batch = append(batch, q)
	}
	l.queue = rest
	return batch
}
