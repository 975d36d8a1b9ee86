package update

import (
	"fmt"
	"net/netip"
	"testing"
)

func TestLastSeenIsBounded(t *testing.T) {
	s := &LastSeen{Max: 3}
	key := func(i int) rrsetKey { return rrsetKey{fmt.Sprintf("h%d.example", i), 1} }
	a := netip.MustParseAddr("192.0.2.1")
	for i := range 10 {
		s.put(key(i), a)
		if s.Len() > 3 {
			t.Fatalf("after %d puts: %d RRsets remembered, Max 3", i+1, s.Len())
		}
		if got, ok := s.get(key(i)); !ok || got != a {
			t.Fatalf("get(%d) = %v, %v right after put", i, got, ok)
		}
	}
	// Overwriting a remembered RRset forgets nothing else.
	s.put(key(9), netip.MustParseAddr("192.0.2.2"))
	if s.Len() != 3 {
		t.Errorf("after overwriting: %d RRsets, want 3", s.Len())
	}
	s.forget(key(9))
	if _, ok := s.get(key(9)); ok || s.Len() != 2 {
		t.Errorf("after forget: get ok %v, %d RRsets", ok, s.Len())
	}
	var none *LastSeen // a Client without one
	none.put(key(1), a)
	if _, ok := none.get(key(1)); ok {
		t.Error("a nil LastSeen remembered something")
	}
}
