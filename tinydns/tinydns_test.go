package tinydns_test

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/sshdyn/sshdyn/internal/dnstest"
	"github.com/sshdyn/sshdyn/tinydns"
	"github.com/sshdyn/sshdyn/update"
)

func mtime(t *testing.T, path string) time.Time {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.ModTime()
}

func rec(name, addr string, ttl uint32) update.Record {
	return update.Record{Name: name, Addr: netip.MustParseAddr(addr), TTL: ttl}
}

// TestBackend: against a real tinydns, A and AAAA set and served with
// their TTLs; a repeat is nochg and leaves data.cdb alone; the
// operator's lines survive; a broken operator line fails the update and
// keeps data.cdb; a restart knows sshdyn's lines; TXT values come and go
// one at a time.
func TestBackend(t *testing.T) {
	s := dnstest.StartTinydns(t)
	ctx := context.Background()
	b := &tinydns.Backend{Root: s.Root, Zone: "dyn.example.com"}
	cdb := filepath.Join(s.Root, "data.cdb")

	if res, _, err := b.Set(ctx, rec("home.dyn.example.com", "198.51.100.7", 60), nil); err != nil || res != update.Changed {
		t.Fatalf("Set A: %v, %v", res, err)
	}
	if got := s.Lookup(t, "home.dyn.example.com", dns.TypeA); !slices.Equal(got, []string{"198.51.100.7 60"}) {
		t.Fatalf("tinydns serves A %v", got)
	}
	if res, _, err := b.Set(ctx, rec("home.dyn.example.com", "2001:db8::7", 120), nil); err != nil || res != update.Changed {
		t.Fatalf("Set AAAA: %v, %v", res, err)
	}
	if got := s.Lookup(t, "home.dyn.example.com", dns.TypeAAAA); !slices.Equal(got, []string{"2001:db8::7 120"}) {
		t.Fatalf("tinydns serves AAAA %v", got)
	}
	before := mtime(t, cdb)
	time.Sleep(20 * time.Millisecond)
	if res, _, err := b.Set(ctx, rec("home.dyn.example.com", "198.51.100.7", 60), nil); err != nil || res != update.NoChange {
		t.Fatalf("repeat: %v, %v", res, err)
	}
	if !mtime(t, cdb).Equal(before) {
		t.Error("nochg touched data.cdb")
	}
	res, old, err := b.Set(ctx, rec("home.dyn.example.com", "198.51.100.8", 60), nil)
	if err != nil || res != update.Changed || !slices.Equal(old, []netip.Addr{netip.MustParseAddr("198.51.100.7")}) {
		t.Fatalf("change: %v %v %v", res, old, err)
	}
	if got := s.Lookup(t, "www.dyn.example.com", dns.TypeA); !slices.Equal(got, []string{"192.0.2.80 300"}) {
		t.Errorf("the operator's www is %v", got)
	}
	if recs, err := b.Lookup(ctx, "home.dyn.example.com"); err != nil || len(recs) != 2 {
		t.Errorf("Lookup: %v %v", recs, err)
	}

	// The operator breaks a line of their own.
	data, _ := os.ReadFile(filepath.Join(s.Root, "data"))
	dnstest.WriteData(t, s.Root, string(data)+"?broken line\n")
	before = mtime(t, cdb)
	_, _, err = b.Set(ctx, rec("home.dyn.example.com", "198.51.100.9", 60), nil)
	var ue *update.Error
	if !errors.As(err, &ue) || ue.Kind.Temporary() || !strings.Contains(err.Error(), "tinydns-data failed") {
		t.Fatalf("update over a broken data: %v, want a non-temporary error", err)
	}
	if !mtime(t, cdb).Equal(before) {
		t.Error("a failed rebuild replaced data.cdb")
	}
	if got := s.Lookup(t, "home.dyn.example.com", dns.TypeA); !slices.Equal(got, []string{"198.51.100.8 60"}) {
		t.Errorf("after the failed update tinydns serves %v", got)
	}
	dnstest.WriteData(t, s.Root, string(data))
	if res, _, err := b.Set(ctx, rec("home.dyn.example.com", "198.51.100.9", 60), nil); err != nil || res != update.Changed {
		t.Fatalf("after the fix: %v, %v", res, err)
	}

	// A restart: the block is sshdyn's again.
	b2 := &tinydns.Backend{Root: s.Root, Zone: "dyn.example.com"}
	if res, _, err := b2.Set(ctx, rec("home.dyn.example.com", "198.51.100.9", 60), nil); err != nil || res != update.NoChange {
		t.Fatalf("after a restart: %v, %v", res, err)
	}

	// TXT, for ACME.
	const v1, v2 = "LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0", "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbA"
	owner := "_acme-challenge.home.dyn.example.com"
	for _, v := range []string{v1, v2} {
		if res, err := b2.AddTXT(ctx, owner, v, 60); err != nil || res != update.Changed {
			t.Fatalf("AddTXT: %v %v", res, err)
		}
	}
	if got := s.Lookup(t, owner, dns.TypeTXT); !slices.Equal(got, []string{v1 + " 60", v2 + " 60"}) {
		t.Errorf("TXT %v", got)
	}
	if res, err := b2.RemoveTXT(ctx, owner, v1); err != nil || res != update.Changed {
		t.Fatalf("RemoveTXT: %v %v", res, err)
	}
	if got, _ := b2.LookupTXT(ctx, owner); !slices.Equal(got, []string{v2}) {
		t.Errorf("LookupTXT %v", got)
	}
	if res, err := b2.RemoveTXT(ctx, owner, v1); err != nil || res != update.NoChange {
		t.Errorf("RemoveTXT again: %v %v", res, err)
	}
}

// TestConcurrentUpdatesShareRebuilds: 16 updaters at once each get their
// host right, with fewer rebuilds than changes.
func TestConcurrentUpdatesShareRebuilds(t *testing.T) {
	s := dnstest.StartTinydns(t)
	b := &tinydns.Backend{Root: s.Root, Zone: "dyn.example.com"}
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for i := range 16 {
		wg.Go(func() {
			_, _, err := b.Set(context.Background(), rec(fmt.Sprintf("h%d.dyn.example.com", i), fmt.Sprintf("198.51.100.%d", i+1), 60), nil)
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	for i := range 16 {
		if got := s.Lookup(t, fmt.Sprintf("h%d.dyn.example.com", i), dns.TypeA); !slices.Equal(got, []string{fmt.Sprintf("198.51.100.%d 60", i+1)}) {
			t.Errorf("h%d: %v", i, got)
		}
	}
	t.Logf("16 changes, %d rebuilds", b.Builds())
	if b.Builds() >= 16 {
		t.Errorf("%d rebuilds for 16 concurrent changes: none shared", b.Builds())
	}
}
