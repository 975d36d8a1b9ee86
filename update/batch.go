package update

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/miekg/dns"
)

// Batch sends concurrent Replace calls of one Client as one UPDATE
// message, and confirms them with one prerequisite-only message: a primary
// commits (and journals) each message once, so under load many changes
// cost little more than one. There is no waiting: a Replace that finds no
// batch in flight is sent at once, alone; those that arrive meanwhile go
// together in the next message. The zero value is not ready: use NewBatch.
//
// A batch that the primary refuses, or that does not confirm, is sent
// again one record at a time, so that each caller gets its own answer.
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
	r    Record
	done chan error // the result; buffered
	lead chan bool  // told to send the next batch; buffered
}

// replace queues r and returns its result. The first caller, or the one
// handed the turn, sends a batch; the others wait for it.
func (b *Batch) replace(ctx context.Context, c *Client, r Record) error {
	p := &pending{r: r, done: make(chan error, 1), lead: make(chan bool, 1)}
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

// take removes up to Max pending records from the queue, at most one per
// name and type: a second change of the same RRset waits for the next
// message, so that each is confirmed against its own value.
func (b *Batch) take() []*pending {
	seen := map[string]bool{}
	var batch, rest []*pending
	for _, p := range b.queue {
		k := fmt.Sprintf("%s/%d", CanonicalHost(p.r.Name), p.r.Type())
		if len(batch) >= b.Max || seen[k] {
			rest = append(rest, p)
			continue
		}
		seen[k] = true
		batch = append(batch, p)
	}
	b.queue = rest
	return batch
}

// sendBatch replaces every record of batch in one UPDATE, confirms them in
// one prerequisite-only UPDATE, and tells each pending its result.
func (c *Client) sendBatch(ctx context.Context, batch []*pending) {
	if len(batch) == 1 {
		batch[0].done <- c.replaceOne(ctx, batch[0].r)
		return
	}
	m := c.newUpdate()
	for _, p := range batch {
		m.RemoveRRset([]dns.RR{&dns.ANY{Hdr: dns.RR_Header{Name: dns.Fqdn(p.r.Name), Rrtype: p.r.Type()}}})
		m.Insert([]dns.RR{newRR(p.r.Name, p.r.Addr, p.r.TTL)})
	}
	resp, err := c.exchange(ctx, "replace", m)
	var ue *Error
	if err != nil && errors.As(err, &ue) && ue.Kind.Temporary() {
		for _, p := range batch { // unreachable or slow: it is so for all
			p.done <- err
		}
		return
	}
	if err != nil || resp.Rcode != dns.RcodeSuccess {
		c.oneByOne(ctx, batch)
		return
	}
	u := c.newUpdate()
	for _, p := range batch {
		u.Used([]dns.RR{newRR(p.r.Name, p.r.Addr, 0)})
	}
	resp, err = c.exchange(ctx, "check", u)
	if err == nil && resp.Rcode == dns.RcodeSuccess {
		for _, p := range batch {
			p.done <- nil
		}
		return
	}
	// Not all there: find out which, one by one.
	for _, p := range batch {
		p.done <- c.confirm(ctx, p.r)
	}
}

// oneByOne replaces each record of batch on its own.
func (c *Client) oneByOne(ctx context.Context, batch []*pending) {
	for _, p := range batch {
		p.done <- c.replaceOne(ctx, p.r)
	}
}
