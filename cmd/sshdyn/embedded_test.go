//go:build integration

package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/sshdyn/sshdyn/internal/demotest"
	"github.com/sshdyn/sshdyn/internal/dnstest"
	"github.com/sshdyn/sshdyn/tsig"
	"github.com/sshdyn/sshdyn/update"
	"github.com/sshdyn/sshdyn/zone"
)

// TestDemo is the README's first command as a new user meets it: "sshdyn
// demo" prints commands, and run exactly as printed — from another
// directory, with an empty home — they change the record dig shows.
// "check --live" then finds the demo's daemon answering, and, once it is
// stopped, says so with exit status 1.
func TestDemo(t *testing.T) {
	dir, stop := demotest.Run(t, binary)
	live := func() (int, string) {
		cmd := exec.Command(binary, "check", "--live", "--config", filepath.Join(dir, "sshdyn.toml"))
		out, err := cmd.CombinedOutput()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode(), string(out)
		}
		if err != nil {
			t.Fatal(err)
		}
		return 0, string(out)
	}
	if out, err := exec.Command(binary, "check", "--config", filepath.Join(dir, "sshdyn.toml")).CombinedOutput(); err != nil ||
		!regexp.MustCompile(`embedded primary: ok: on \S+ \S+; response rate limiting 20 answers a second per client network and kind, slip 2, window 15s; cookies: a random secret`).Match(out) {
		t.Errorf("check on the demo's configuration: %v\n%s", err, out)
	}
	code, out := live()
	if code != 0 || !strings.Contains(out, ": ok: SSH-2.0-") || !regexp.MustCompile(`zone dyn\.example\.com: ok: serial \d+`).MatchString(out) {
		t.Errorf("check --live against the demo: exit %d\n%s", code, out)
	}
	stop()
	if code, out := live(); code != 1 || !strings.Contains(out, "connection refused") {
		t.Errorf("check --live with the demo stopped: exit %d\n%s", code, out)
	}
}

// TestEmbeddedCrash kills "sshdyn serve" with SIGKILL at random moments
// while clients update its embedded zone, and restarts it each time: no
// acknowledged update is lost, the zone file always loads by itself, and
// the restarted server serves what the file and the journal hold. With
// journal_limit = 1 the zone file (20,000 names) is rewritten after every
// change, back to back, so kills land during those writes too: the test
// goes on until at least three did (a temporary zone file was left).
// Signed (dnssec = true), the zone on disk is also a valid signed zone
// after every kill: each change went to the journal with its signatures.
func TestEmbeddedCrash(t *testing.T) {
	t.Run("unsigned", func(t *testing.T) { embeddedCrash(t, false) })
	t.Run("signed", func(t *testing.T) { embeddedCrash(t, true) })
}

func embeddedCrash(t *testing.T, signed bool) {
	dir := t.TempDir()
	const zoneName = "dyn.example.com"
	zoneFile := filepath.Join(dir, zoneName+".zone")
	names := 20000
	if signed {
		names = 5000 // signed, the file is three times the size, and each round verifies every signature
	}
	var filler strings.Builder
	for i := range names {
		fmt.Fprintf(&filler, "fill%d 300 A 192.0.2.%d\n", i, i%250+1)
	}
	extra := "journal_limit = 1\n"
	var signing *zone.DNSSEC
	if signed {
		extra += "dnssec = true\n"
		signing = &zone.DNSSEC{}
	}
	addr, key := embeddedConfig(t, dir, zoneFile, filler.String(), extra)
	client := &update.Client{Server: addr, Zone: zoneName, Key: key, Timeout: time.Second}

	// Writer w points h<w> at 10.w.x.y, counting up; acked[w] is the last
	// count the server acknowledged, sent[w] the one in flight.
	const writers = 4
	acked := make([]int, writers)
	sent := make([]int, writers)
	addrOf := func(w, n int) netip.Addr { return netip.AddrFrom4([4]byte{10, byte(w), byte(n >> 8), byte(n)}) }
	countOf := func(a string) int {
		ip := netip.MustParseAddr(a).As4()
		return int(ip[2])<<8 | int(ip[3])
	}
	rounds, kills, midWrite, fileSerial := 10, 0, 0, uint32(0)
	for round := 0; round < rounds || midWrite < 3; round++ {
		if round == 60 {
			t.Fatalf("%d kills, %d of them while the zone file was written: want 3", kills, midWrite)
		}
		d := runDaemon(t, dir)
		// What the restarted server serves is what the last round left.
		for w := 0; w < writers; w++ {
			got := queryA(t, addr, fmt.Sprintf("h%d.%s", w, zoneName))
			if acked[w] == 0 && len(got) == 0 {
				continue
			}
			if len(got) != 1 {
				t.Fatalf("round %d: h%d A = %v, want one record", round, w, got)
			}
			n := countOf(got[0])
			if n != acked[w] && n != sent[w] {
				t.Fatalf("round %d: h%d served as %d; acknowledged %d, in flight %d", round, w, n, acked[w], sent[w])
			}
			acked[w], sent[w] = n, n
		}
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		var mu sync.Mutex
		for w := 0; w < writers; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for ctx.Err() == nil {
					mu.Lock()
					n := acked[w] + 1
					sent[w] = n
					mu.Unlock()
					err := client.Replace(ctx, update.Record{Name: fmt.Sprintf("h%d.%s", w, zoneName), Addr: addrOf(w, n), TTL: 60})
					if err != nil {
						return // killed
					}
					mu.Lock()
					acked[w] = n
					mu.Unlock()
				}
			}()
		}
		time.Sleep(time.Duration(50+rand.IntN(400)) * time.Millisecond)
		d.cmd.Process.Signal(syscall.SIGKILL)
		d.done <- <-d.done // wait, and leave the result for the cleanup
		kills++
		cancel()
		wg.Wait()

		if tmp, _ := filepath.Glob(filepath.Join(dir, "."+zoneName+".zone.tmp-*")); len(tmp) > 0 {
			midWrite++
		}
		// The file alone must load (copied away from its journal), and
		// with the journal hold every acknowledged change.
		alone := filepath.Join(t.TempDir(), "alone.zone")
		b, err := os.ReadFile(zoneFile)
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, alone, string(b))
		fileOnly, err := zone.Load(zone.Config{Origin: zoneName, File: alone})
		if err != nil {
			t.Fatalf("round %d: zone file does not load after SIGKILL: %v", round, err)
		}
		fileSerial = fileOnly.Serial()
		z, err := zone.Load(zone.Config{Origin: zoneName, File: zoneFile, DNSSEC: signing})
		if err != nil {
			t.Fatalf("round %d: zone file and journal do not load after SIGKILL: %v", round, err)
		}
		if signed {
			r, err := z.Verify()
			if err != nil || len(r.Bogus)+len(r.Unsigned) > 0 || r.Names < names {
				t.Fatalf("round %d: not a valid signed zone after SIGKILL: %v; %d names in the chain, bogus %v, not signed %v", round, err, r.Names, r.Bogus, r.Unsigned)
			}
		}
		onDisk := make([]int, writers)
		for w := range onDisk {
			for _, rr := range z.Records(fmt.Sprintf("h%d.%s", w, zoneName), dns.TypeA) {
				onDisk[w] = countOf(rr.(*dns.A).A.String())
			}
		}
		for w := 0; w < writers; w++ {
			if acked[w] == 0 {
				continue
			}
			if onDisk[w] != acked[w] && onDisk[w] != sent[w] {
				t.Fatalf("round %d: h%d on disk %d; acknowledged %d, in flight %d", round, w, onDisk[w], acked[w], sent[w])
			}
		}
	}
	total := 0
	for _, n := range acked {
		total += n
	}
	if total < writers*rounds {
		t.Errorf("only %d updates acknowledged in %d rounds: the test did not exercise the server", total, rounds)
	}
	if fileSerial < 100 {
		t.Errorf("the zone file alone is at serial %d: it was not rewritten from the journal", fileSerial)
	}
	t.Logf("%d SIGKILLs (%d while the zone file was written), %d acknowledged updates, none lost", kills, midWrite, total)
}

// queryA asks the server at addr for name's A records.
func queryA(t *testing.T, addr, name string) []string {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), dns.TypeA)
	c := &dns.Client{Net: "tcp", Timeout: 2 * time.Second}
	r, _, err := c.Exchange(m, addr)
	if err != nil {
		t.Fatalf("query %s: %v", name, err)
	}
	var out []string
	for _, rr := range r.Answer {
		if a, ok := rr.(*dns.A); ok {
			out = append(out, a.A.String())
		}
	}
	return out
}

// TestOneServerPerZoneFile: a second "sshdyn serve" given the same zone
// file (on other ports) refuses to start, saying why, while the first
// serves it: two writers would append to one journal.
func TestOneServerPerZoneFile(t *testing.T) {
	dir := t.TempDir()
	zoneFile := filepath.Join(dir, "dyn.example.com.zone")
	config := func(name string) string {
		sub := filepath.Join(dir, name)
		if err := os.Mkdir(sub, 0o700); err != nil {
			t.Fatal(err)
		}
		embeddedConfig(t, sub, zoneFile, "", "")
		return sub
	}
	runDaemon(t, config("first"))
	out, err := exec.Command(binary, "serve", "--config", filepath.Join(config("second"), "sshdyn.toml")).CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("second server: %v, want exit 1\n%s", err, out)
	}
	if want := zoneFile + ".lock is locked by another process: another sshdyn serves this zone file"; !strings.Contains(string(out), want) {
		t.Errorf("output %q does not say %q", out, want)
	}
}

// TestEmbeddedZoneMetrics: /metrics shows the embedded zone's serial,
// names and journal, and when the zone file was last written from the
// journal (zonefile_sync after a change) with sshdyn_zone_file_write_ok.
func TestEmbeddedZoneMetrics(t *testing.T) {
	dir := t.TempDir()
	addr, key := embeddedConfig(t, dir, filepath.Join(dir, "dyn.example.com.zone"), "", `zonefile_sync = "2s"`+"\n")
	_, base := runWithMetrics(t, dir, "")
	gauge := func(name string) float64 {
		t.Helper()
		m := find(scrape(t, base+"/metrics"), name, map[string]string{"zone": "dyn.example.com"})
		if m == nil {
			t.Fatalf("no %s{zone=\"dyn.example.com\"}", name)
		}
		return m.GetGauge().GetValue()
	}
	if s, n, w := gauge("sshdyn_zone_serial"), gauge("sshdyn_zone_names"), gauge("sshdyn_zone_file_written_timestamp_seconds"); s != 1 || n != 2 || w != 0 {
		t.Fatalf("at start: serial %v, names %v, written %v; want 1, 2, 0", s, n, w)
	}
	c := &update.Client{Server: addr, Zone: "dyn.example.com", Key: key}
	if err := c.Replace(t.Context(), update.Record{Name: "home.dyn.example.com", Addr: netip.MustParseAddr("192.0.2.1"), TTL: 60}); err != nil {
		t.Fatal(err)
	}
	if s, n, j := gauge("sshdyn_zone_serial"), gauge("sshdyn_zone_names"), gauge("sshdyn_zone_journal_bytes"); s != 2 || n != 3 || j <= 17 {
		t.Fatalf("after an update: serial %v, names %v, journal %v bytes; want 2, 3, more than its header", s, n, j)
	}
	waitFor(t, "the zone file written from the journal", func() bool { return gauge("sshdyn_zone_file_written_timestamp_seconds") > 0 })
	if ok, j := gauge("sshdyn_zone_file_write_ok"), gauge("sshdyn_zone_journal_bytes"); ok != 1 || j != 17 {
		t.Errorf("after the zone file was written: write_ok %v, journal %v bytes; want 1 and the header's 17", ok, j)
	}
}

// embeddedConfig writes into dir an sshdyn.toml whose one zone,
// dyn.example.com, sshdyn serves from zoneFile (written with records
// below its SOA, NS and ns A, unless it exists), with zone settings extra,
// a TSIG key file and an empty authorized file beside it, and DNS on a
// free loopback port. It returns that address and the key.
func embeddedConfig(t *testing.T, dir, zoneFile, records, extra string) (string, tsig.Key) {
	t.Helper()
	if _, err := os.Stat(zoneFile); errors.Is(err, os.ErrNotExist) {
		writeFile(t, zoneFile, "$ORIGIN dyn.example.com.\n@ 300 SOA ns hostmaster 1 3600 600 86400 60\n@ 300 NS ns\nns 300 A 127.0.0.1\n"+records)
	}
	writeFile(t, filepath.Join(dir, "tsig.key"), "hmac-sha256:embedded:c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA==\n")
	writeFile(t, filepath.Join(dir, "authorized_keys"), "")
	port, err := dnstest.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "sshdyn.toml"), fmt.Sprintf(`listen = ["127.0.0.1:0", "[::1]:0"]
host_key = "host_ed25519"
authorized_keys = "authorized_keys"
dns_listen = ["127.0.0.1:%d"]
[[zone]]
name = "dyn.example.com"
file = %q
tsig_key = "tsig.key"
%s`, port, zoneFile, extra))
	key, err := tsig.Load(filepath.Join(dir, "tsig.key"))
	if err != nil {
		t.Fatal(err)
	}
	return "127.0.0.1:" + strconv.Itoa(port), key
}
