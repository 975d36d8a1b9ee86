package zone

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

const testOrigin = "dyn.example.com."

// testZone writes a small zone file (serial 1) into a new directory and
// loads it with cfg's knobs.
func testZone(t *testing.T, cfg Config) (*Zone, string) {
	t.Helper()
	file := filepath.Join(t.TempDir(), "dyn.example.com.zone")
	text := "$ORIGIN dyn.example.com.\n$TTL 60\n@ SOA ns hostmaster 1 3600 600 86400 60\n@ NS ns\nns A 192.0.2.53\nhome A 192.0.2.1\n"
	if err := os.WriteFile(file, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg.Origin, cfg.File = testOrigin, file
	cfg.UpdateKeys = []string{"k."}
	if cfg.UpdateTypes == nil {
		cfg.UpdateTypes = []uint16{dns.TypeA, dns.TypeAAAA, dns.TypeTXT}
	}
	z, err := Load(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return z, file
}

// send applies an UPDATE made of rrs (text; a record with class ANY and
// no data deletes an RRset) to z, as it arrives off the wire.
func send(t *testing.T, z *Zone, rrs ...string) int {
	t.Helper()
	m := new(dns.Msg)
	m.SetUpdate(testOrigin)
	for _, s := range rrs {
		if name, typ, ok := strings.Cut(s, " ANY "); ok {
			m.Ns = append(m.Ns, &dns.ANY{Hdr: dns.RR_Header{Name: name, Rrtype: dns.StringToType[typ], Class: dns.ClassANY}})
			continue
		}
		rr, err := dns.NewRR(s)
		if err != nil {
			t.Fatal(err)
		}
		m.Ns = append(m.Ns, rr)
	}
	wire, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	m = new(dns.Msg)
	if err := m.Unpack(wire); err != nil {
		t.Fatal(err)
	}
	return z.Update(m, "k.")
}

// fileSerial loads file alone, without its journal.
func fileSerial(t *testing.T, file string) uint32 {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	names, err := parse(strings.NewReader(string(b)), testOrigin, file)
	if err != nil {
		t.Fatalf("zone file does not load: %v", err)
	}
	return names.soa().Serial
}

func addrs(z *Zone, name string) []string {
	var out []string
	for _, rr := range z.Records(name, dns.TypeA) {
		out = append(out, rr.(*dns.A).A.String())
	}
	return out
}

// TestJournalReplayAndClose: an acknowledged update is in the journal,
// not yet in the zone file; loading again replays it; Close writes it
// into the file and empties the journal.
func TestJournalReplayAndClose(t *testing.T) {
	z, file := testZone(t, Config{})
	for i := 2; i <= 4; i++ {
		if rc := send(t, z, "home.dyn.example.com. ANY A", fmt.Sprintf("home.dyn.example.com. 60 IN A 192.0.2.%d", i)); rc != dns.RcodeSuccess {
			t.Fatalf("rcode %s", dns.RcodeToString[rc])
		}
	}
	if s := fileSerial(t, file); s != 1 {
		t.Errorf("zone file at serial %d before any compaction, want 1", s)
	}
	again, err := Load(Config{Origin: testOrigin, File: file})
	if err != nil {
		t.Fatal(err)
	}
	if again.Serial() != 4 || fmt.Sprint(addrs(again, "home.dyn.example.com")) != "[192.0.2.4]" {
		t.Fatalf("replayed: serial %d, home %v; want 4, [192.0.2.4]", again.Serial(), addrs(again, "home.dyn.example.com"))
	}
	if len(again.snapshot().history) != 3 || again.Stats().Replayed != 3 {
		t.Errorf("after replay: history of %d diffs, %d replayed; want 3", len(again.snapshot().history), again.Stats().Replayed)
	}
	if err := z.Close(); err != nil {
		t.Fatal(err)
	}
	if s := fileSerial(t, file); s != 4 {
		t.Errorf("zone file at serial %d after Close, want 4", s)
	}
	if fi, err := os.Stat(journalPath(file)); err != nil || fi.Size() != int64(len(journalHeader)) {
		t.Errorf("journal after Close: %v, %v; want the header alone", fi.Size(), err)
	}
	if rc := send(t, z, "home.dyn.example.com. 60 IN A 192.0.2.9"); rc != dns.RcodeServerFailure {
		t.Errorf("update after Close: %s, want SERVFAIL", dns.RcodeToString[rc])
	}
}

// crash leaves z as a killed process would: journal and lock closed,
// nothing compacted.
func crash(z *Zone) {
	z.flushMu.Lock()
	defer z.flushMu.Unlock()
	z.jnl.close()
	if z.lock != nil {
		z.lock.Close()
	}
	z.closed = true
}

// TestJournalTornTail: bytes of a record cut short by a crash (never
// acknowledged) end the journal; the next update cuts them off and
// appends after the last whole record.
func TestJournalTornTail(t *testing.T) {
	z, file := testZone(t, Config{})
	send(t, z, "a.dyn.example.com. 60 IN A 192.0.2.10")
	send(t, z, "b.dyn.example.com. 60 IN A 192.0.2.11")
	d := &diff{from: z.snapshot().soa(), to: z.snapshot().soa(), add: z.Records("a.dyn.example.com", dns.TypeA)}
	rec, err := d.encode(nil)
	if err != nil {
		t.Fatal(err)
	}
	crash(z)
	for _, torn := range [][]byte{rec[:5], rec[:len(rec)-3], append(rec[:len(rec)-1:len(rec)-1], rec[len(rec)-1]^0xff)} {
		f, err := os.OpenFile(journalPath(file), os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			t.Fatal(err)
		}
		f.Write(torn)
		f.Close()
		z2, err := Load(Config{Origin: testOrigin, File: file, UpdateKeys: []string{"k."}})
		if err != nil {
			t.Fatalf("%d torn bytes: %v", len(torn), err)
		}
		if len(addrs(z2, "a.dyn.example.com")) != 1 || len(addrs(z2, "b.dyn.example.com")) != 1 {
			t.Fatalf("%d torn bytes: acknowledged updates lost", len(torn))
		}
		// Owning the journal cuts the torn bytes off.
		if rc := send(t, z2, fmt.Sprintf("c%d.dyn.example.com. 60 IN A 192.0.2.12", len(torn))); rc != dns.RcodeSuccess {
			t.Fatalf("rcode %s", dns.RcodeToString[rc])
		}
		z3, err := Load(Config{Origin: testOrigin, File: file})
		if err != nil {
			t.Fatal(err)
		}
		if z3.Serial() != z2.Serial() || len(addrs(z3, fmt.Sprintf("c%d.dyn.example.com", len(torn)))) != 1 {
			t.Fatalf("%d torn bytes: the update after them was not replayed (serial %d, want %d)", len(torn), z3.Serial(), z2.Serial())
		}
		crash(z2)
	}
}

// TestJournalOutOfStep: a zone file replaced while the journal held
// updates (its serial not one the journal knows) is refused with a
// message that says what to do, rather than replayed over.
func TestJournalOutOfStep(t *testing.T) {
	z, file := testZone(t, Config{})
	send(t, z, "a.dyn.example.com. 60 IN A 192.0.2.10")
	text := "$ORIGIN dyn.example.com.\n$TTL 60\n@ SOA ns hostmaster 50 3600 600 86400 60\n@ NS ns\nns A 192.0.2.53\n"
	if err := os.WriteFile(file, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Load(Config{Origin: testOrigin, File: file})
	if err == nil || !strings.Contains(err.Error(), "does not continue the zone file's serial 50") || !strings.Contains(err.Error(), ".jnl") {
		t.Fatalf("Load: %v", err)
	}
}

// TestCompaction: the zone file is rewritten in the background when the
// journal reaches its limit, or when its oldest update is SyncAfter old;
// the journal then holds nothing the file has.
func TestCompaction(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
	}{
		{"limit", Config{JournalLimit: 1, SyncAfter: time.Hour}},
		{"age", Config{JournalLimit: 1 << 30, SyncAfter: 50 * time.Millisecond}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			z, file := testZone(t, tc.cfg)
			defer z.Close()
			send(t, z, "a.dyn.example.com. 60 IN A 192.0.2.10")
			deadline := time.Now().Add(10 * time.Second)
			for fileSerial(t, file) != 2 {
				if time.Now().After(deadline) {
					t.Fatalf("zone file still at serial %d", fileSerial(t, file))
				}
				time.Sleep(10 * time.Millisecond)
			}
			for {
				z.flushMu.Lock()
				left := z.jnl.entries()
				z.flushMu.Unlock()
				if !left {
					break
				}
				if time.Now().After(deadline) {
					t.Fatal("journal not emptied after the zone file was written")
				}
				time.Sleep(10 * time.Millisecond)
			}
		})
	}
}

// TestJournalWriteFails: when the journal cannot be written the update
// is answered SERVFAIL and changes nothing, not even the serial.
func TestJournalWriteFails(t *testing.T) {
	z, file := testZone(t, Config{})
	if err := os.Mkdir(journalPath(file), 0o755); err != nil { // a directory cannot be opened for writing
		t.Fatal(err)
	}
	if rc := send(t, z, "home.dyn.example.com. ANY A", "home.dyn.example.com. 60 IN A 192.0.2.99"); rc != dns.RcodeServerFailure {
		t.Fatalf("rcode %s, want SERVFAIL", dns.RcodeToString[rc])
	}
	if z.Serial() != 1 || fmt.Sprint(addrs(z, "home.dyn.example.com")) != "[192.0.2.1]" {
		t.Fatalf("after a failed write: serial %d, home %v", z.Serial(), addrs(z, "home.dyn.example.com"))
	}
	z.mu.Lock()
	n, _ := z.pending.get("home.dyn.example.com.")
	z.mu.Unlock()
	if a := n.get(dns.TypeA); len(a) != 1 || a[0].(*dns.A).A.String() != "192.0.2.1" {
		t.Fatalf("pending state kept the failed update: %v", n)
	}
}

// TestIXFRCondensed: after random updates (addresses replaced, names
// added and removed, TTLs changed, TXT records added one by one), the
// condensed difference from every older serial turns that serial's zone
// into the current one, and holds no more records than the changes made.
func TestIXFRCondensed(t *testing.T) {
	z, _ := testZone(t, Config{})
	rng := rand.New(rand.NewPCG(7, 8))
	states := map[uint32]*tree{z.Serial(): z.snapshot().names}
	names := []string{"home", "a", "b.c", "d"}
	for range 300 {
		name := names[rng.IntN(len(names))] + "." + testOrigin
		var rrs []string
		switch rng.IntN(4) {
		case 0:
			rrs = []string{name + " ANY A", fmt.Sprintf("%s %d IN A 192.0.2.%d", name, 60+60*rng.IntN(2), rng.IntN(4))}
		case 1:
			rrs = []string{name + " ANY ANY"}
		case 2:
			rrs = []string{fmt.Sprintf("%s 60 IN TXT \"v%d\"", name, rng.IntN(3))}
		default:
			rrs = []string{fmt.Sprintf("%s 60 IN AAAA 2001:db8::%d", name, rng.IntN(3))}
		}
		if rc := send(t, z, rrs...); rc != dns.RcodeSuccess {
			t.Fatalf("rcode %s", dns.RcodeToString[rc])
		}
		states[z.Serial()] = z.snapshot().names
	}
	now := z.snapshot()
	if now.serial < 150 {
		t.Fatalf("only %d changes in 300 updates", now.serial-1)
	}
	for serial, old := range states {
		rrs, ok := now.ixfr(serial)
		if serial == now.serial {
			continue
		}
		if !ok {
			t.Fatalf("no IXFR from serial %d", serial)
		}
		// SOA(now) SOA(serial) deleted... SOA(now) added... SOA(now)
		if rrs[0].(*dns.SOA).Serial != now.serial || rrs[1].(*dns.SOA).Serial != serial || rrs[len(rrs)-1].(*dns.SOA).Serial != now.serial {
			t.Fatalf("IXFR from %d: bad SOA framing", serial)
		}
		d := &diff{from: rrs[1].(*dns.SOA)}
		body := rrs[2 : len(rrs)-1]
		i := 0
		for ; i < len(body); i++ {
			if soa, ok := body[i].(*dns.SOA); ok {
				d.to = soa
				break
			}
			d.del = append(d.del, body[i])
		}
		d.add = body[i+1:]
		changes := 0
		for _, h := range now.history {
			if serialBefore(h.from.Serial, serial) {
				continue
			}
			changes += len(h.del) + len(h.add)
		}
		if len(d.del)+len(d.add) > changes {
			t.Errorf("IXFR from %d: %d records for %d changed", serial, len(d.del)+len(d.add), changes)
		}
		got := old.clone()
		applyDiff(got, d)
		if !sameTree(got, now.names) {
			t.Fatalf("IXFR from %d does not lead to serial %d", serial, now.serial)
		}
	}
	if _, ok := now.ixfr(12345); ok {
		t.Error("an IXFR from a serial the zone never had")
	}
}

// TestOneWriterPerZoneFile: a second owner of a zone file (another
// sshdyn serving it) is refused while the first holds it, and not after.
func TestOneWriterPerZoneFile(t *testing.T) {
	z, file := testZone(t, Config{})
	if err := z.Own(); err != nil {
		t.Fatal(err)
	}
	other, err := Load(Config{Origin: testOrigin, File: file, UpdateKeys: []string{"k."}})
	if err != nil {
		t.Fatal(err)
	}
	if err := other.Own(); err == nil || !strings.Contains(err.Error(), "another sshdyn serves this zone file") {
		t.Fatalf("second owner: %v", err)
	}
	if rc := send(t, other, "x.dyn.example.com. 60 IN A 192.0.2.7"); rc != dns.RcodeServerFailure {
		t.Errorf("update through the second owner: %s, want SERVFAIL", dns.RcodeToString[rc])
	}
	if err := z.Close(); err != nil {
		t.Fatal(err)
	}
	if err := other.Own(); err != nil {
		t.Fatalf("after the first closed: %v", err)
	}
	other.Close()
}

// TestZoneFileRoundTrip: the zone file sshdyn writes (relative owners,
// $TTL where the TTL changes, no class) loads back into the same zone:
// TTLs that differ from name to name, a TXT with spaces and quotes, a
// CNAME, a name with an escaped dot, the apex's own records.
func TestZoneFileRoundTrip(t *testing.T) {
	text := `$ORIGIN dyn.example.com.
@ 3600 SOA ns hostmaster 7 3600 600 86400 60
@ 3600 NS ns
@ 300 MX 10 mail.example.net.
ns 3600 A 192.0.2.53
a 60 A 192.0.2.1
a 60 AAAA 2001:db8::1
b 300 TXT "two words" "a \"quoted\" one"
c 60 CNAME a
d\.e 120 A 192.0.2.9
f.g 60 A 192.0.2.10
`
	dir := t.TempDir()
	file := filepath.Join(dir, "z")
	want, err := parse(strings.NewReader(text), testOrigin, file)
	if err != nil {
		t.Fatal(err)
	}
	if err := writeZone(file, testOrigin, want); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	got, err := parse(strings.NewReader(string(b)), testOrigin, file)
	if err != nil {
		t.Fatalf("%v\n%s", err, b)
	}
	if !sameTree(got, want) {
		t.Fatalf("the written file holds another zone:\n%s", b)
	}
	if !strings.Contains(string(b), "$TTL 300\n") || strings.Contains(string(b), "\tIN\t") {
		t.Errorf("not written compactly:\n%s", b)
	}
}

// TestHistoryIsBounded: the history kept for IXFR drops its oldest diffs
// past its limit, and an IXFR from a serial it no longer reaches is
// answered with the whole zone (ixfr reports false).
func TestHistoryIsBounded(t *testing.T) {
	z, _ := testZone(t, Config{})
	first := z.Serial()
	limit := historyLimit(z.Stats().Names)
	for i := 0; i < limit/4+10; i++ { // each change is 4 records: 2 SOAs, 1 deleted, 1 added
		send(t, z, "home.dyn.example.com. ANY A", fmt.Sprintf("home.dyn.example.com. 60 IN A 192.0.2.%d", 2+i%2))
	}
	s := z.snapshot()
	total := 0
	for _, d := range s.history {
		total += d.size()
	}
	if total != s.historyRecords || total > limit || total < limit-4 {
		t.Fatalf("history holds %d records (counted %d), limit %d", total, s.historyRecords, limit)
	}
	if _, ok := s.ixfr(first); ok {
		t.Error("an IXFR from a serial the history dropped")
	}
	if _, ok := s.ixfr(s.serial - 10); !ok {
		t.Error("no IXFR from 10 changes back")
	}
}

// TestFailedZoneFileWrite: when the zone file cannot be written (here:
// its directory is gone) the journal keeps the update, Stats says the
// write failed, and the next write that works clears it.
func TestFailedZoneFileWrite(t *testing.T) {
	z, file := testZone(t, Config{JournalLimit: 1 << 30, SyncAfter: time.Hour})
	defer z.Close()
	send(t, z, "a.dyn.example.com. 60 IN A 192.0.2.10")
	dir := filepath.Dir(file)
	moved := dir + ".moved"
	if err := os.Rename(dir, moved); err != nil {
		t.Fatal(err)
	}
	if _, err := z.compact(); err == nil {
		t.Fatal("zone file written into a missing directory")
	}
	st := z.Stats()
	if st.WriteErr == nil || !st.Written.IsZero() || st.JournalBytes <= int64(len(journalHeader)) || st.Serial != 2 {
		t.Fatalf("after a failed write: %+v", st)
	}
	if err := os.Rename(moved, dir); err != nil {
		t.Fatal(err)
	}
	if _, err := z.compact(); err != nil {
		t.Fatal(err)
	}
	st = z.Stats()
	if st.WriteErr != nil || st.Written.IsZero() || st.JournalBytes != int64(len(journalHeader)) || fileSerial(t, file) != 2 {
		t.Fatalf("after a write that worked: %+v, file at serial %d", st, fileSerial(t, file))
	}
}

// TestJournalLimitFollowsFileSize: the journal's default limit is a
// quarter of the zone file in bytes, where its records are long (a
// signed zone's are), not only a figure per name.
func TestJournalLimitFollowsFileSize(t *testing.T) {
	file := filepath.Join(t.TempDir(), "dyn.example.com.zone")
	var b strings.Builder
	b.WriteString("$ORIGIN dyn.example.com.\n$TTL 60\n@ SOA ns hostmaster 1 3600 600 86400 60\n@ NS ns\nns A 192.0.2.53\n")
	for i := range 20000 {
		fmt.Fprintf(&b, "h%d TXT %q\n", i, strings.Repeat("x", 250))
	}
	if err := os.WriteFile(file, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	z, err := Load(Config{Origin: testOrigin, File: file})
	if err != nil {
		t.Fatal(err)
	}
	defer z.Close()
	if got, want := z.journalLimit(), int64(b.Len())/journalLimitDivisor; got != want {
		t.Errorf("journal limit %d, want a quarter of the file's %d bytes, %d", got, b.Len(), want)
	}
}
