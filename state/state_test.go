package state

import (
	"context"
	"fmt"
	"net/netip"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// storeTests are run against every kind of store: SQLite here,
// PostgreSQL in pg_test.go (integration).
func storeTests(t *testing.T, open func(t *testing.T) *Store) {
	ctx := context.Background()
	at := func(sec int) time.Time { return time.Unix(1_800_000_000+int64(sec), 0) }
	ev := func(sec int, host, family, outcome, addr string) Event {
		e := Event{Time: at(sec), Host: host, Family: family, Zone: "dyn.example.com", Front: "ssh", Identity: "SHA256:abc",
			Source: netip.MustParseAddr("198.51.100.1"), Outcome: outcome}
		if addr != "" {
			e.Addr = netip.MustParseAddr(addr)
		}
		return e
	}

	t.Run("families and history", func(t *testing.T) {
		s := open(t)
		if err := s.Record(ctx, []Event{
			ev(1, "home.dyn.example.com", "A", "good", "192.0.2.1"),
			ev(2, "home.dyn.example.com", "AAAA", "good", "2001:db8::1"),
			ev(3, "home.dyn.example.com", "A", "nochg", "192.0.2.1"),
			ev(4, "home.dyn.example.com", "A", "unreachable", "192.0.2.2"),
			ev(5, "home.dyn.example.com", "A", "timeout", "192.0.2.2"),
			ev(6, "nas.dyn.example.com", "A", "good", "192.0.2.9"),
		}); err != nil {
			t.Fatal(err)
		}
		fs, err := s.Families(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(fs) != 3 {
			t.Fatalf("%d families, want 3: %+v", len(fs), fs)
		}
		a := fs[0]
		if a.Host != "home.dyn.example.com" || a.Family != "A" || !a.LastOK.Equal(at(3)) || !a.LastChange.Equal(at(1)) ||
			a.Addr != netip.MustParseAddr("192.0.2.1") || !a.LastFailure.Equal(at(5)) || a.FailureKind != "timeout" || a.Failures != 2 ||
			a.Front != "ssh" || a.Identity != "SHA256:abc" || a.Source != netip.MustParseAddr("198.51.100.1") || !a.LastEvent.Equal(at(5)) {
			t.Errorf("home A = %+v", a)
		}
		if aaaa := fs[1]; aaaa.Family != "AAAA" || aaaa.Failures != 0 || !aaaa.LastChange.Equal(at(2)) {
			t.Errorf("home AAAA = %+v", aaaa)
		}
		// A success ends the run of failures.
		if err := s.Record(ctx, []Event{ev(7, "home.dyn.example.com", "A", "nochg", "192.0.2.1")}); err != nil {
			t.Fatal(err)
		}
		fs, _ = s.Families(ctx, "home.dyn.example.com")
		if len(fs) != 2 || fs[0].Failures != 0 || !fs[0].LastOK.Equal(at(7)) || fs[0].FailureKind != "timeout" {
			t.Errorf("after a nochg: %+v", fs)
		}
		h, err := s.History(ctx, "home.dyn.example.com", time.Time{}, 3)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, e := range h {
			got = append(got, e.Family+" "+e.Outcome)
		}
		if want := []string{"A nochg", "A timeout", "A unreachable"}; !slices.Equal(got, want) {
			t.Errorf("history %q, want %q (newest first)", got, want)
		}
		if h, _ := s.History(ctx, "home.dyn.example.com", at(5), 0); len(h) != 2 {
			t.Errorf("history since 5: %d events, want 2", len(h))
		}
	})

	t.Run("stale is marked once", func(t *testing.T) {
		s := open(t)
		s.Record(ctx, []Event{ev(1, "home.dyn.example.com", "A", "good", "192.0.2.1")})
		for i, want := range []bool{true, false} {
			changed, err := s.MarkStale(ctx, "home.dyn.example.com", "A", true, at(100))
			if err != nil || changed != want {
				t.Fatalf("MarkStale stale #%d: %v %v, want %v", i+1, changed, err, want)
			}
		}
		fs, _ := s.Families(ctx)
		if !fs[0].Stale || !fs[0].StaleSince.Equal(at(100)) {
			t.Errorf("%+v", fs[0])
		}
		if changed, _ := s.MarkStale(ctx, "home.dyn.example.com", "A", false, at(200)); !changed {
			t.Error("recovery not marked")
		}
		if changed, _ := s.MarkStale(ctx, "home.dyn.example.com", "A", false, at(201)); changed {
			t.Error("recovery marked twice")
		}
	})

	t.Run("pruned by age and count", func(t *testing.T) {
		s := open(t)
		var evs []Event
		for i := range 10 {
			evs = append(evs, ev(i, "home.dyn.example.com", "A", "nochg", "192.0.2.1"), ev(i, "nas.dyn.example.com", "A", "nochg", "192.0.2.9"))
		}
		if err := s.Record(ctx, evs); err != nil {
			t.Fatal(err)
		}
		n, err := s.Prune(ctx, at(2), 5)
		if err != nil {
			t.Fatal(err)
		}
		if n != 10 { // 2 × 2 older than 2, then 3 more of each host
			t.Errorf("pruned %d, want 10", n)
		}
		for _, host := range []string{"home.dyn.example.com", "nas.dyn.example.com"} {
			h, _ := s.History(ctx, host, time.Time{}, 0)
			if len(h) != 5 || !h[0].Time.Equal(at(9)) {
				t.Errorf("%s: %d events left, newest %v", host, len(h), h[0].Time)
			}
		}
		if fs, _ := s.Families(ctx); len(fs) != 2 {
			t.Error("pruning the history dropped a host's state")
		}
	})
}

func TestSQLite(t *testing.T) {
	storeTests(t, func(t *testing.T) *Store {
		s, err := Open(context.Background(), filepath.Join(t.TempDir(), "state.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}

// TestOpenErrors: a store that cannot be opened says why, naming it.
func TestOpenErrors(t *testing.T) {
	if _, err := Open(context.Background(), "/nonexistent/dir/state.db"); err == nil || err.Error() != "state_db /nonexistent/dir/state.db: the directory /nonexistent/dir does not exist" {
		t.Errorf("missing directory: %v", err)
	}
	if got := redact("postgres://sshdyn:secret@db:5432/sshdyn"); got != "postgres://sshdyn:…@db:5432/sshdyn" {
		t.Errorf("redact = %q", got)
	}
}

// TestReopenKeepsTheSchema: a second Open of the same file migrates
// nothing and keeps what was recorded.
func TestReopenKeepsTheSchema(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "state.db")
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	s.Record(ctx, []Event{{Time: time.Now(), Host: "h.dyn.example.com", Family: "A", Outcome: "good", Addr: netip.MustParseAddr("192.0.2.1")}})
	s.Close()
	s, err = Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if fs, err := s.Families(ctx); err != nil || len(fs) != 1 {
		t.Errorf("after reopening: %v %v", fs, err)
	}
}

// TestStaleness: per family, with a clock the test moves: a family goes
// stale once its threshold passes without a good or nochg, or after a
// run of failures; the next success recovers it; each change is marked
// and told once; a host with staleness off is never stale.
func TestStaleness(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	now := time.Unix(1_800_000_000, 0)
	var told []string
	w := &Watcher{Store: s, Failures: 3, Now: func() time.Time { return now },
		StaleAfter: func(host string) time.Duration {
			if host == "off.dyn.example.com" {
				return 0
			}
			return time.Hour
		},
		Notify: func(f Family, stale bool, why string) {
			told = append(told, fmt.Sprintf("%s %s %v", f.Host, f.Family, stale))
		}}
	rec := func(host, family, outcome string) {
		t.Helper()
		if err := s.Record(ctx, []Event{{Time: now, Host: host, Family: family, Outcome: outcome, Addr: netip.MustParseAddr("192.0.2.1")}}); err != nil {
			t.Fatal(err)
		}
	}
	look := func(want ...string) {
		t.Helper()
		told = nil
		if err := w.Look(ctx); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(told, want) {
			t.Fatalf("told %q, want %q", told, want)
		}
	}
	rec("home.dyn.example.com", "A", "good")
	rec("home.dyn.example.com", "AAAA", "good")
	rec("off.dyn.example.com", "A", "good")
	look()
	now = now.Add(50 * time.Minute)
	rec("home.dyn.example.com", "A", "nochg") // A keeps updating, AAAA stops
	now = now.Add(11 * time.Minute)
	look("home.dyn.example.com AAAA true")
	look() // once
	now = now.Add(10 * time.Minute)
	rec("home.dyn.example.com", "AAAA", "nochg")
	look("home.dyn.example.com AAAA false")
	look()
	// Three failures in a row make A stale, whatever the time.
	for range 3 {
		rec("home.dyn.example.com", "A", "unreachable")
	}
	look("home.dyn.example.com A true")
	rec("home.dyn.example.com", "A", "good")
	look("home.dyn.example.com A false")
	// A new host that has only failed, fewer times than the limit: not stale.
	rec("new.dyn.example.com", "A", "refused")
	look()
	// Taken offline (its records removed: no address): not stale, however
	// long it stays so; a stale family taken offline recovers.
	if err := s.Record(ctx, []Event{{Time: now, Host: "laptop.dyn.example.com", Family: "A", Outcome: "good", Addr: netip.MustParseAddr("192.0.2.9")}}); err != nil {
		t.Fatal(err)
	}
	look()
	if err := s.Record(ctx, []Event{{Time: now, Host: "laptop.dyn.example.com", Family: "A", Outcome: "good"}}); err != nil {
		t.Fatal(err)
	}
	now = now.Add(30 * 24 * time.Hour)
	look("home.dyn.example.com A true", "home.dyn.example.com AAAA true")
	fs, err := s.Families(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if i := slices.IndexFunc(fs, func(f Family) bool { return f.Host == "laptop.dyn.example.com" }); i < 0 || !fs[i].Offline() || fs[i].Stale {
		t.Errorf("laptop taken offline: %+v", fs)
	}
	rec("home.dyn.example.com", "AAAA", "unreachable")
	if err := s.Record(ctx, []Event{{Time: now, Host: "home.dyn.example.com", Family: "AAAA", Outcome: "good"}}); err != nil {
		t.Fatal(err)
	}
	look("home.dyn.example.com AAAA false")
	if got := Interval(3 * time.Second); got != 1300*time.Millisecond {
		t.Errorf("Interval(3s) = %v", got)
	}
	if got := Interval(24 * time.Hour); got != time.Minute {
		t.Errorf("Interval(24h) = %v", got)
	}
}

// TestRecorderFlushesOnShutdown: events added just before the writer is
// told to stop are written, not dropped with the cancelled context.
func TestRecorderFlushesOnShutdown(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	r := &Recorder{Store: s}
	run, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { r.Run(run); close(done) }()
	for i := range 3 {
		r.Add(Event{Time: time.Now(), Host: fmt.Sprintf("h%d.dyn.example.com", i), Family: "A", Outcome: "good", Addr: netip.MustParseAddr("192.0.2.1")})
	}
	time.Sleep(10 * time.Millisecond) // the writer is gathering its batch
	stop()
	<-done
	if fs, err := s.Families(ctx); err != nil || len(fs) != 3 {
		t.Errorf("after shutdown: %d families recorded (%v), want 3", len(fs), err)
	}
	if r.Dropped() != 0 {
		t.Errorf("dropped %d", r.Dropped())
	}
}
