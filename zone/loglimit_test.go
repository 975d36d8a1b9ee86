package zone

import (
	"testing"
	"time"
)

func TestNoisyLogWindow(t *testing.T) {
	now := time.Unix(1e9, 0)
	l := &noisyLog{now: func() time.Time { return now }}
	logged := 0
	for range 1000 {
		if ok, _ := l.allow("unsigned update refused"); ok {
			logged++
		}
	}
	if logged != noisyBurst {
		t.Fatalf("%d of 1000 lines logged in one window, want %d", logged, noisyBurst)
	}
	if ok, _ := l.allow("TSIG verification failed"); !ok {
		t.Fatal("another message is limited by the first one's count")
	}
	now = now.Add(noisyWindow)
	ok, dropped := l.allow("unsigned update refused")
	if !ok || dropped != 1000-noisyBurst {
		t.Fatalf("next window: allow = %v, suppressed %d; want true, %d", ok, dropped, 1000-noisyBurst)
	}
	if ok, dropped := l.allow("unsigned update refused"); !ok || dropped != 0 {
		t.Fatalf("second line of the window: %v, %d; want true, 0", ok, dropped)
	}
}
