package update

import (
	"context"
	"slices"
	"sync"
)

// Batch sends concurrent Replace calls of one Client as one UPDATE
// message, confirmed by one more (Client.replaceAll): a primary commits
// (and journals) each message once, so under load many changes cost
// little more than one. There is no waiting: a Replace that finds no
// batch in flight is sent at once, alone; those that arrive meanwhile go
// together in the next message, once the batch in flight is confirmed.
// The zero value is not ready: use NewBatch.
type Batch struct {
	// Max bounds the records in one message.
	Max int

	mu     sync.Mutex
	queue  []*pending
	flying bool // a leader is sending
}

// NewBatch returns a Batch of at most 64 records per message.
func NewBatch() *Batch { return &Batch{Max: 64} }

type pending struct {
	ch   change
	done chan error // the result; buffered
	lead chan bool  // told to send the next batch; buffered
}

// replace queues ch and returns its result. The first caller, or the one
// handed the turn, sends a batch; the others wait for it.
func (b *Batch) replace(ctx context.Context, c *Client, ch change) error {
	p := &pending{ch: ch, done: make(chan error, 1), lead: make(chan bool, 1)}
	b.mu.Lock()
	b.queue = append(b.queue, p)
	if b.flying {
		b.mu.Unlock()
		// Not on ctx: a waiter may be handed the turn, and must take it.
		// The batches ahead are bounded by the client's timeout.
		select {
		case err := <-p.done:
			return err
		case <-p.lead:
		}
		b.mu.Lock()
	}
	b.flying = true
	for {
		batch := b.take()
		b.mu.Unlock()
		c.sendBatch(context.WithoutCancel(ctx), batch)
		b.mu.Lock()
		switch {
		case len(b.queue) == 0:
			b.flying = false
		case slices.Contains(b.queue, p):
			continue // p itself did not fit: send the next batch too
		default:
			b.queue[0].lead <- true // it sends the next batch
		}
		b.mu.Unlock()
		return <-p.done
	}
}

// take removes up to Max pending records from the queue. It never holds
// two of one RRset: Client.Replace lets one change of an RRset in at a
// time.
func (b *Batch) take() []*pending {
	n := min(len(b.queue), b.Max)
	batch := b.queue[:n:n]
	b.queue = append([]*pending(nil), b.queue[n:]...)
	return batch
}

// sendBatch replaces and confirms every record of batch (replaceAll) and
// tells each pending its result.
func (c *Client) sendBatch(ctx context.Context, batch []*pending) {
	chs := make([]change, len(batch))
	for i, p := range batch {
		chs[i] = p.ch
	}
	for i, err := range c.replaceAll(ctx, chs) {
		batch[i].done <- err
	}
}
