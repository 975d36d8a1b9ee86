package update

import (
	"sync"
	"testing"
	"time"
)

// TestKeyedMutex: one holder per RRset at a time, other RRsets go on, and
// nothing is left in the map when all are done.
func TestKeyedMutex(t *testing.T) {
	var k keyedMutex
	a := rrsetKey{"home.dyn.example.com", 1}
	b := rrsetKey{"home.dyn.example.com", 28}

	unlock := k.lock(a)
	got := make(chan string, 2)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); u := k.lock(a); got <- "a"; u() }()
	go func() { defer wg.Done(); u := k.lock(b); got <- "b"; u() }()
	if first := <-got; first != "b" {
		t.Fatalf("%s got the lock first; a is held", first)
	}
	select {
	case <-got:
		t.Fatal("a was locked twice at once")
	case <-time.After(50 * time.Millisecond):
	}
	unlock()
	if second := <-got; second != "a" {
		t.Fatalf("got %s, want a", second)
	}
	wg.Wait()
	if len(k.locks) != 0 {
		t.Errorf("%d entries left", len(k.locks))
	}

	// Many at once on one key: each holds it alone.
	var held, max int
	var mu sync.Mutex
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			u := k.lock(a)
			mu.Lock()
			held++
			if held > max {
				max = held
			}
			mu.Unlock()
			time.Sleep(time.Millisecond)
			mu.Lock()
			held--
			mu.Unlock()
			u()
		}()
	}
	wg.Wait()
	if max != 1 {
		t.Errorf("%d holders at once", max)
	}
	if len(k.locks) != 0 {
		t.Errorf("%d entries left", len(k.locks))
	}
}
