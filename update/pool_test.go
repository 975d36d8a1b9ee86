package update

import (
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"time"
)

// listen accepts connections on loopback and keeps them open until the
// test ends.
func listen(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { c.Close() })
		}
	}()
	return l.Addr().String()
}

// TestPoolBoundsDials: 20 exchanges at once on an empty pool open at most
// MaxDialing connections at a time; the others wait and take the
// connections the first ones put back.
func TestPoolBoundsDials(t *testing.T) {
	addr := listen(t)
	p := &Pool{MaxIdle: 16, IdleTimeout: time.Minute, MaxDialing: 2}
	defer p.Close()
	var mu sync.Mutex
	dials, now, peak := 0, 0, 0
	p.dial = func(ctx context.Context, addr string) (net.Conn, error) {
		mu.Lock()
		dials, now = dials+1, now+1
		peak = max(peak, now)
		mu.Unlock()
		time.Sleep(20 * time.Millisecond) // a slow connect: the others pile up
		defer func() { mu.Lock(); now--; mu.Unlock() }()
		return dialTCP(ctx, addr)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for range 20 {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			c, _, err := p.conn(ctx, addr, false)
			if err != nil {
				errs <- err
				return
			}
			time.Sleep(5 * time.Millisecond) // the exchange
			p.put(c)
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if peak != 2 {
		t.Errorf("at most %d dials at once, want 2 (MaxDialing)", peak)
	}
	if dials >= 20 {
		t.Errorf("%d dials for 20 exchanges: the waiting ones did not take the connections put back", dials)
	}
}

// TestPoolDialWaitEndsWithContext: an exchange waiting for a free dial
// gives up when its context ends.
func TestPoolDialWaitEndsWithContext(t *testing.T) {
	addr := listen(t)
	p := &Pool{MaxIdle: 16, IdleTimeout: time.Minute, MaxDialing: 1}
	release := make(chan struct{})
	p.dial = func(ctx context.Context, addr string) (net.Conn, error) {
		<-release
		return dialTCP(ctx, addr)
	}
	done := make(chan error, 1)
	go func() {
		c, _, err := p.conn(context.Background(), addr, false)
		if err == nil {
			c.Close()
		}
		done <- err
	}()
	for { // until the first holds the only dial
		p.mu.Lock()
		n := p.dialing
		p.mu.Unlock()
		if n == 1 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, _, err := p.conn(ctx, addr, false); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("waiting for a dial: %v, want context.DeadlineExceeded", err)
	}
	close(release)
	if err := <-done; err != nil {
		t.Errorf("first dial: %v", err)
	}
}
