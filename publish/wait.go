package publish

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// pollEvery is how often a waiting request asks a lagging name server
// again.
const pollEvery = 250 * time.Millisecond

// zone returns the configured zone of that name.
func (s *Service) zone(name string) (Zone, bool) {
	for _, z := range s.zones {
		if z.Name == name {
			return z, true
		}
	}
	return Zone{}, false
}

// awaitHosts waits, for each result that is good or nochg, until every
// name server of its zone's WaitFor serves its address, and turns the
// results whose servers lag past WaitTimeout into KindLagging failures.
// The hosts are waited for at once.
func (s *Service) awaitHosts(ctx context.Context, out []HostResult) {
	var wg sync.WaitGroup
	for i := range out {
		r := &out[i]
		z, ok := s.zone(r.Zone)
		if !r.OK() || r.Removed || !ok || len(z.WaitFor) == 0 { // a removal is not waited for
			continue
		}
		wg.Go(func() {
			if err := s.await(ctx, z, r.Host, dns.StringToType[r.Type], r.Addr.String()); err != nil {
				r.Kind, r.Temporary, r.Err = KindLagging, true, err
			}
		})
	}
	wg.Wait()
}

// await waits until every name server of z.WaitFor serves value in name's
// RRset of type t, asking each every 250 ms, for up to z's WaitTimeout.
// It returns an error naming the servers that still lag, or nil.
func (s *Service) await(ctx context.Context, z Zone, name string, t uint16, value string) error {
	if s.Served == nil {
		return &Error{Kind: KindLagging, Temporary: true, Err: fmt.Errorf("zone %s has wait_for, and the Service no Served to ask it", z.Name)}
	}
	timeout := z.WaitTimeout
	if timeout <= 0 {
		timeout = DefaultWaitTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	lagging := slices.Clone(z.WaitFor)
	last := map[string]error{}
	for {
		var still []string
		for _, server := range lagging {
			ok, err := s.Served(ctx, server, name, t, value)
			if !ok {
				still = append(still, server)
				last[server] = err
			}
		}
		if lagging = still; len(lagging) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			var why []string
			for _, server := range lagging {
				if err := last[server]; err != nil && !errors.Is(err, context.DeadlineExceeded) {
					why = append(why, fmt.Sprintf("%s (%v)", server, err))
				} else {
					why = append(why, server)
				}
			}
			return &Error{Kind: KindLagging, Temporary: true,
				Err: fmt.Errorf("%s %s is written, but not served by %s after %s", name, dns.TypeToString[t], strings.Join(why, ", "), timeout)}
		case <-time.After(pollEvery):
		}
	}
}
