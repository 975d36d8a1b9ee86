//go:build integration

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

	"github.com/miekg/dns"

	"github.com/sshdyn/sshdyn/backend"
	"github.com/sshdyn/sshdyn/backend/backendtest"
	"github.com/sshdyn/sshdyn/internal/dnstest"
	"github.com/sshdyn/sshdyn/tinydns"
)

func mustRead(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func rec(name, addr string, ttl uint32) backend.Record {
	return backend.Record{Name: name, Addr: netip.MustParseAddr(addr), TTL: ttl}
}

type result int

const (
	noChange result = iota
	changed
)

// set sets one record through Set.
func set(ctx context.Context, b *tinydns.Backend, r backend.Record, allow func() error) (result, []netip.Addr, error) {
	out := b.Set(ctx, []backend.Record{r}, allow)[0]
	if out.Changed {
		return changed, out.Old, out.Err
	}
	return noChange, out.Old, out.Err
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

	if res, _, err := set(ctx, b, rec("home.dyn.example.com", "198.51.100.7", 60), nil); err != nil || res != changed {
		t.Fatalf("Set A: %v, %v", res, err)
	}
	if got := s.Lookup(t, "home.dyn.example.com", dns.TypeA); !slices.Equal(got, []string{"198.51.100.7 60"}) {
		t.Fatalf("tinydns serves A %v", got)
	}
	if res, _, err := set(ctx, b, rec("home.dyn.example.com", "2001:db8::7", 120), nil); err != nil || res != changed {
		t.Fatalf("Set AAAA: %v, %v", res, err)
	}
	if got := s.Lookup(t, "home.dyn.example.com", dns.TypeAAAA); !slices.Equal(got, []string{"2001:db8::7 120"}) {
		t.Fatalf("tinydns serves AAAA %v", got)
	}
	builds := b.Builds()
	if res, _, err := set(ctx, b, rec("home.dyn.example.com", "198.51.100.7", 60), nil); err != nil || res != noChange {
		t.Fatalf("repeat: %v, %v", res, err)
	}
	if b.Builds() != builds {
		t.Error("nochg rebuilt data.cdb")
	}
	res, old, err := set(ctx, b, rec("home.dyn.example.com", "198.51.100.8", 60), nil)
	if err != nil || res != changed || !slices.Equal(old, []netip.Addr{netip.MustParseAddr("198.51.100.7")}) {
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
	before := mustRead(t, cdb)
	_, _, err = set(ctx, b, rec("home.dyn.example.com", "198.51.100.9", 60), nil)
	var ue *backend.Error
	if !errors.As(err, &ue) || ue.Temporary || !strings.Contains(err.Error(), "tinydns-data failed") {
		t.Fatalf("update over a broken data: %v, want a non-temporary error", err)
	}
	if mustRead(t, cdb) != before {
		t.Error("a failed rebuild replaced data.cdb")
	}
	if got := s.Lookup(t, "home.dyn.example.com", dns.TypeA); !slices.Equal(got, []string{"198.51.100.8 60"}) {
		t.Errorf("after the failed update tinydns serves %v", got)
	}
	dnstest.WriteData(t, s.Root, string(data))
	if res, _, err := set(ctx, b, rec("home.dyn.example.com", "198.51.100.9", 60), nil); err != nil || res != changed {
		t.Fatalf("after the fix: %v, %v", res, err)
	}

	// A restart: the block is sshdyn's again.
	b2 := &tinydns.Backend{Root: s.Root, Zone: "dyn.example.com"}
	if res, _, err := set(ctx, b2, rec("home.dyn.example.com", "198.51.100.9", 60), nil); err != nil || res != noChange {
		t.Fatalf("after a restart: %v, %v", res, err)
	}

	// TXT, for ACME.
	const v1, v2 = "LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0", "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbA"
	owner := "_acme-challenge.home.dyn.example.com"
	for _, v := range []string{v1, v2} {
		if res, err := b2.AddTXT(ctx, owner, v, 60); err != nil || !res {
			t.Fatalf("AddTXT: %v %v", res, err)
		}
	}
	if got := s.Lookup(t, owner, dns.TypeTXT); !slices.Equal(got, []string{v1 + " 60", v2 + " 60"}) {
		t.Errorf("TXT %v", got)
	}
	if res, err := b2.RemoveTXT(ctx, owner, v1); err != nil || !res {
		t.Fatalf("RemoveTXT: %v %v", res, err)
	}
	if got, _ := b2.LookupTXT(ctx, owner); !slices.Equal(got, []string{v2}) {
		t.Errorf("LookupTXT %v", got)
	}
	if res, err := b2.RemoveTXT(ctx, owner, v1); err != nil || res {
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
			_, _, err := set(context.Background(), b, rec(fmt.Sprintf("h%d.dyn.example.com", i), fmt.Sprintf("198.51.100.%d", i+1), 60), nil)
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

// TestOperatorLinesAreNeverDropped: audit finding H3. sshdyn writes back
// every byte of data outside its block, whatever it holds: a line over
// 1 MiB (the scanner used to stop there, and every line after it
// vanished), a carriage return, no newline at the end. When it cannot
// tell its block from the operator's lines (no end marker, a second
// begin marker, a line in the block it did not write) it refuses the
// update with a non-temporary error, and data and data.cdb stay as
// they were.
func TestOperatorLinesAreNeverDropped(t *testing.T) {
	s := dnstest.StartTinydns(t)
	ctx := context.Background()
	dataPath, cdb := filepath.Join(s.Root, "data"), filepath.Join(s.Root, "data.cdb")
	base := mustRead(t, dataPath)
	long := "#" + strings.Repeat("x", 1<<20+100) + "\n"
	head := base + long + "+after-long.dyn.example.com:192.0.2.81:300\r\n"
	dnstest.WriteData(t, s.Root, head)
	b := &tinydns.Backend{Root: s.Root, Zone: "dyn.example.com"}
	if res, _, err := set(ctx, b, rec("home.dyn.example.com", "198.51.100.7", 60), nil); err != nil || res != changed {
		t.Fatalf("Set: %v, %v", res, err)
	}
	data := mustRead(t, dataPath)
	if !strings.HasPrefix(data, head) {
		t.Fatalf("the operator's lines were not kept byte for byte (data is %d bytes, was %d)", len(data), len(head))
	}
	if got := s.Lookup(t, "after-long.dyn.example.com", dns.TypeA); !slices.Equal(got, []string{"192.0.2.81 300"}) {
		t.Errorf("the line after the long one is served as %v", got)
	}
	// Lines after the block, the last without a newline.
	tail := "+tail.dyn.example.com:192.0.2.82:300\n# no newline at the end"
	dnstest.WriteData(t, s.Root, data+tail)
	if res, _, err := set(ctx, b, rec("home.dyn.example.com", "198.51.100.8", 60), nil); err != nil || res != changed {
		t.Fatalf("Set with a tail: %v, %v", res, err)
	}
	if data = mustRead(t, dataPath); !strings.HasPrefix(data, head) || !strings.HasSuffix(data, "# sshdyn end\n"+tail) {
		t.Fatalf("the lines around the block were not kept:\n%.300s", data[len(data)-300:])
	}

	refused := []struct {
		name, data, why string
		started         bool // also refused by a Backend started on this data (which takes the block's lines in sshdyn's formats as its own)
	}{
		{"no end marker", strings.Replace(data, "# sshdyn end\n", "", 1), "no \"# sshdyn end\" line ends it", true},
		{"two begin markers", data + "\n" + strings.SplitN(data[len(head):], "\n", 2)[0] + "\n", "both begin sshdyn's block", true},
		{"a line added to the block", strings.Replace(data, "# sshdyn end\n", "+mine.dyn.example.com:192.0.2.83:300\n# sshdyn end\n", 1), "was not written by sshdyn", false},
		{"a comment in the block", strings.Replace(data, "# sshdyn end\n", "# my note\n# sshdyn end\n", 1), "is not one sshdyn writes", true},
	}
	for _, c := range refused {
		t.Run(c.name, func(t *testing.T) {
			dnstest.WriteData(t, s.Root, c.data)
			cdbBefore := mustRead(t, cdb)
			backends := []*tinydns.Backend{b}
			if c.started {
				backends = append(backends, &tinydns.Backend{Root: s.Root, Zone: "dyn.example.com"})
			}
			for _, b := range backends {
				_, _, err := set(ctx, b, rec("home.dyn.example.com", "198.51.100.9", 60), nil)
				var ue *backend.Error
				if !errors.As(err, &ue) || ue.Temporary || !strings.Contains(err.Error(), c.why) {
					t.Errorf("update: %v; want a non-temporary error saying %q", err, c.why)
				}
			}
			if mustRead(t, dataPath) != c.data {
				t.Error("data changed")
			}
			if mustRead(t, cdb) != cdbBefore {
				t.Error("data.cdb changed")
			}
		})
	}
	dnstest.WriteData(t, s.Root, data)
	if res, _, err := set(ctx, b, rec("home.dyn.example.com", "198.51.100.9", 60), nil); err != nil || res != changed {
		t.Fatalf("after the operator's fix: %v, %v", res, err)
	}

	// A removal takes sshdyn's line only: the operator's line for the same
	// name stays, served, and the removal says so.
	r := b.Set(ctx, []backend.Record{backend.Removal("after-long.dyn.example.com", "A")}, nil)
	if e, ok := backend.As(r[0].Err); !ok || e.Kind != backend.KindIgnored || !strings.Contains(e.Error(), "outside sshdyn's block") || r[0].Changed {
		t.Errorf("removing the operator's record: %+v", r[0])
	}
	if !strings.HasPrefix(mustRead(t, dataPath), head) {
		t.Error("a removal dropped the operator's lines")
	}
	if got := s.Lookup(t, "after-long.dyn.example.com", dns.TypeA); !slices.Equal(got, []string{"192.0.2.81 300"}) {
		t.Errorf("the operator's record is served as %v after a removal", got)
	}
	r = b.Set(ctx, []backend.Record{backend.Removal("home.dyn.example.com", "A")}, nil)
	if r[0].Err != nil || !r[0].Changed || len(s.Lookup(t, "home.dyn.example.com", dns.TypeA)) != 0 {
		t.Errorf("removing sshdyn's own record: %+v", r[0])
	}
}

// TestConformance: tinydns passes the backend suite against a real
// tinydns root; its writes are tinydns-data's runs. A root whose data an
// operator broke, and one whose block has lost its end marker, fail
// with their kinds, in tinydns's words.
func TestConformance(t *testing.T) {
	s := dnstest.StartTinydns(t)
	b := &tinydns.Backend{Root: s.Root, Zone: "dyn.example.com"}
	broken := t.TempDir()
	dnstest.WriteData(t, broken, ".dyn.example.com:127.0.0.1:a:259200\n?a broken line\n")
	unended := t.TempDir()
	dnstest.WriteData(t, unended, ".dyn.example.com:127.0.0.1:a:259200\n# sshdyn begin: the lines down to \"# sshdyn end\" are sshdyn's; edit the rest as always\n")
	backendtest.Run(t, backendtest.Harness{
		Backend: b,
		Zone:    "dyn.example.com",
		Writes:  func(*testing.T) uint64 { return b.Builds() },
		Failures: []backendtest.Failure{
			{Name: "an operator's broken line", Backend: &tinydns.Backend{Root: broken, Zone: "dyn.example.com"}, Kind: backend.KindServerFailure},
			{Name: "no end marker", Backend: &tinydns.Backend{Root: unended, Zone: "dyn.example.com"}, Kind: backend.KindOther},
		},
		Foreign: []string{"TSIG", "HTTP", "primary"},
	})
}
