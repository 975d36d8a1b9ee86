package bench

import (
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/sshdyn/sshdyn/internal/dnstest"
)

var (
	primarySizes = flag.String("sizes", "1000,10000,100000,1000000", "zone sizes (names) for BenchmarkPrimary, `list`ed with commas")
	primaryBin   = flag.String("primary-bin", "", "run BenchmarkPrimary against this sshdyn `binary` (an earlier build) instead of this one")
)

const (
	primaryWorkers = 8
	primaryRun     = 5 * time.Second // the 8 workers' run
	aloneN         = 200             // changes, one at a time
	primaryKey     = "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA=="
)

// BenchmarkPrimary measures the embedded primary the way issue 24 did:
// "sshdyn serve" with a zone file of N A records, driven over loopback by
// TSIG-signed RFC 2136 updates that each replace one host's A record
// (delete the RRset, add one record: a change every time), sent on one
// persistent TCP connection per worker. For each size it prints the
// start-up time (exec to the first SOA answer), one change alone (200
// in a row, one worker, each to another host: p50 and p99), 8 workers
// each replacing its own host for 5 s (changes/s, p50, p99), the RSS
// after loading, after the changes and after the zone file was written
// from the journal (zonefile_sync = 10s; how long the last write took, from
// sshdyn's log), and IXFRs from the serial before the 200
// changes and from the one before the 8 workers' run (records, time);
// then 2 s more of the 8 workers, SIGKILL, and the start-up with the
// journal to replay (every acknowledged change must be served after it).
// Run it with
//
//	go test -run '^$' -bench '^BenchmarkPrimary$' -benchtime 1x -timeout 60m ./bench
//
// and -sizes to pick sizes, -primary-bin to measure an earlier build.
func BenchmarkPrimary(b *testing.B) {
	bin := *primaryBin
	if bin == "" {
		bin = buildBinaries(b).sshdyn
	}
	fmt.Printf("%-9s %8s %15s %26s %27s %9s %30s %24s\n", "names", "start-up", "alone p50/p99", "8 workers: /s, p50/p99", "RSS load → run → file", "file write", "IXFR: 200 changes; the run", "restart after kill -9")
	for _, s := range strings.Split(*primarySizes, ",") {
		n, err := strconv.Atoi(s)
		if err != nil {
			b.Fatalf("-sizes: %v", err)
		}
		r := measurePrimary(b, bin, n)
		fmt.Printf("%-9d %7.2fs %6.2f / %5.2f ms %8.1f, %5.2f / %5.2f ms %6.1f → %6.1f → %6.1f MiB %9v %5d recs %4v; %d recs (%d changes) %v; %.2fs (journal %.1f MiB)\n",
			n, r.startup.Seconds(), ms(r.alone50), ms(r.alone99), r.rate, ms(r.p50), ms(r.p99),
			mib(r.rssLoad), mib(r.rssAfter), mib(r.rssFile), r.fileWrite,
			r.ixfrAlone.records, r.ixfrAlone.took.Round(time.Millisecond), r.ixfrRun.records, r.changes, r.ixfrRun.took.Round(time.Millisecond), r.restart.Seconds(), mib(r.journal))
	}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

type primaryResult struct {
	startup                    time.Duration
	alone50, alone99           time.Duration
	rate                       float64
	p50, p99                   time.Duration
	changes                    int
	rssLoad, rssAfter, rssFile int64
	fileWrite                  time.Duration // the last zone-file write, from the log
	journal                    int64         // the journal's size at the SIGKILL
	restart                    time.Duration // start-up after the SIGKILL
	ixfrAlone, ixfrRun         ixfrResult
}

type ixfrResult struct {
	records int
	took    time.Duration
}

func measurePrimary(b *testing.B, bin string, n int) primaryResult {
	var r primaryResult
	dir := b.TempDir()
	const origin = "dyn.example.com."
	zoneFile := filepath.Join(dir, "dyn.example.com.zone")
	f, err := os.Create(zoneFile)
	if err != nil {
		b.Fatal(err)
	}
	fmt.Fprintf(f, "$ORIGIN %s\n$TTL 60\n@ SOA ns hostmaster 1 3600 600 86400 60\n@ NS ns\nns A 192.0.2.53\n", origin)
	for i := range n {
		fmt.Fprintf(f, "h%d A 198.51.%d.%d\n", i, i/250%250, i%250+1)
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
	port, err := dnstest.FreePort()
	if err != nil {
		b.Fatal(err)
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	writeFile := func(name, text string, mode os.FileMode) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), mode); err != nil {
			b.Fatal(err)
		}
	}
	syncSetting := `zonefile_sync = "10s"`
	if *primaryBin != "" {
		syncSetting = "" // an earlier build may not know it
	}
	writeFile("tsig.key", "hmac-sha256:bench:"+primaryKey+"\n", 0o600)
	writeFile("authorized_keys", "", 0o644)
	writeFile("sshdyn.toml", fmt.Sprintf(`listen = ["127.0.0.1:0"]
host_key = "%[1]s/host_ed25519"
authorized_keys = "%[1]s/authorized_keys"
dns_listen = [%[2]q]
[[zone]]
name = "dyn.example.com"
file = %[3]q
tsig_key = "tsig.key"
allow_transfer = ["127.0.0.1"]
%[4]s
`, dir, addr, zoneFile, syncSetting), 0o644)

	start := time.Now()
	p, _ := startProcess(b, exec.Command(bin, "serve", "--config", filepath.Join(dir, "sshdyn.toml")), regexp.MustCompile(`(listening)`))
	soa := func() uint32 {
		m := new(dns.Msg)
		m.SetQuestion(origin, dns.TypeSOA)
		resp, _, err := (&dns.Client{Net: "tcp", Timeout: time.Second}).Exchange(m, addr)
		if err != nil || len(resp.Answer) == 0 {
			return 0
		}
		return resp.Answer[0].(*dns.SOA).Serial
	}
	for soa() == 0 {
		if time.Since(start) > 2*time.Minute {
			b.Fatalf("no SOA answer after 2 min:\n%s", p.output())
		}
		time.Sleep(5 * time.Millisecond)
	}
	r.startup = time.Since(start)
	time.Sleep(time.Second)
	r.rssLoad = p.rss(b)

	// worker w replaces h<w>'s A, alternating between two addresses.
	replace := func(co *dns.Conn, w, i int) time.Duration {
		name := fmt.Sprintf("h%d.%s", w, origin)
		m := new(dns.Msg)
		m.SetUpdate(origin)
		m.RemoveRRset([]dns.RR{&dns.ANY{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeA}}})
		m.Insert([]dns.RR{&dns.A{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: net.IPv4(203, 0, 113, byte(1+i%2))}})
		m.SetTsig("bench.", dns.HmacSHA256, 300, time.Now().Unix())
		// Signed here: dns.Conn would sign a second message on the
		// connection as the continuation of the first.
		wire, _, err := dns.TsigGenerate(m, primaryKey, "", false)
		if err != nil {
			b.Fatal(err)
		}
		t0 := time.Now()
		if _, err := co.Write(wire); err != nil {
			b.Fatal(err)
		}
		resp := new(dns.Msg)
		raw, err := co.ReadMsgHeader(nil)
		if err == nil {
			err = resp.Unpack(raw)
		}
		if err != nil || resp.Rcode != dns.RcodeSuccess {
			b.Fatalf("update: %v %v\n%s", resp, err, p.output())
		}
		return time.Since(t0)
	}
	dial := func() *dns.Conn {
		co, err := dns.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			b.Fatal(err)
		}
		return co
	}

	before := soa()
	co := dial()
	var alone []time.Duration
	for i := range aloneN {
		alone = append(alone, replace(co, 100+i%(n-100), i))
	}
	co.Close()
	r.alone50, r.alone99 = percentile(alone, 50), percentile(alone, 99)
	r.ixfrAlone = ixfr(b, addr, origin, before)

	before = soa()
	// workers runs the 8 workers for d and returns their latencies and
	// how long they took.
	workers := func(d time.Duration) ([]time.Duration, time.Duration) {
		var mu sync.Mutex
		var lat []time.Duration
		var wg sync.WaitGroup
		start := time.Now()
		for w := 1; w <= primaryWorkers; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				co := dial()
				defer co.Close()
				var mine []time.Duration
				for i := 0; time.Since(start) < d; i++ {
					mine = append(mine, replace(co, w, i))
				}
				mu.Lock()
				lat = append(lat, mine...)
				mu.Unlock()
			}()
		}
		wg.Wait()
		return lat, time.Since(start)
	}
	lat, elapsed := workers(primaryRun)
	r.changes = len(lat)
	r.rate = float64(len(lat)) / elapsed.Seconds()
	r.p50, r.p99 = percentile(lat, 50), percentile(lat, 99)
	end := time.Now()
	last := soa()
	time.Sleep(time.Second)
	r.rssAfter = p.rss(b)
	// IXFR from the serial before the run: what a secondary that saw the
	// run start would be sent.
	r.ixfrRun = ixfr(b, addr, origin, before)

	// The zone file, rewritten from the journal in the background.
	for fileSerial(b, zoneFile) != last {
		if time.Since(end) > 2*time.Minute {
			b.Fatalf("zone file not written 2 min after the run:\n%s", p.output())
		}
		time.Sleep(10 * time.Millisecond)
	}

	time.Sleep(time.Second)
	r.rssFile = p.rss(b)
	if m := regexp.MustCompile(`msg="zone file written".* took=(\S+)`).FindAllStringSubmatch(p.output(), -1); m != nil {
		r.fileWrite, _ = time.ParseDuration(m[len(m)-1][1])
	}

	// A crash with changes in the journal: 2 s more of the 8 workers,
	// SIGKILL, start again; every acknowledged change must be served.
	if *primaryBin == "" {
		workers(2 * time.Second)
		last = soa()
		p.cmd.Process.Kill()
		<-p.done
		fi, err := os.Stat(zoneFile + ".jnl")
		if err != nil {
			b.Fatal(err)
		}
		r.journal = fi.Size()
		start := time.Now()
		p, _ = startProcess(b, exec.Command(bin, "serve", "--config", filepath.Join(dir, "sshdyn.toml")), regexp.MustCompile(`(listening)`))
		for soa() == 0 {
			if time.Since(start) > 2*time.Minute {
				b.Fatalf("no SOA answer after 2 min:\n%s", p.output())
			}
			time.Sleep(5 * time.Millisecond)
		}
		r.restart = time.Since(start)
		if got := soa(); got != last {
			b.Fatalf("after SIGKILL and restart: serial %d, %d acknowledged", got, last)
		}
	}
	return r
}

// ixfr asks for an IXFR from serial and counts the records.
func ixfr(b *testing.B, addr, origin string, serial uint32) ixfrResult {
	m := new(dns.Msg)
	m.SetIxfr(origin, serial, "ns."+origin, "hostmaster."+origin)
	t0 := time.Now()
	env, err := (&dns.Transfer{}).In(m, addr)
	if err != nil {
		b.Fatal(err)
	}
	var r ixfrResult
	for e := range env {
		if e.Error != nil {
			b.Fatal(e.Error)
		}
		r.records += len(e.RR)
	}
	r.took = time.Since(t0)
	return r
}

// fileSerial returns the serial of the SOA record in a zone file written
// by sshdyn (its first record), 0 if it cannot be read.
func fileSerial(b *testing.B, file string) uint32 {
	f, err := os.Open(file)
	if err != nil {
		return 0
	}
	defer f.Close()
	zp := dns.NewZoneParser(f, "", file)
	if rr, ok := zp.Next(); ok {
		if soa, ok := rr.(*dns.SOA); ok {
			return soa.Serial
		}
	}
	return 0
}

// percentile returns the p-th percentile of ds (which it sorts).
func percentile(ds []time.Duration, p int) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	slices.Sort(ds)
	return ds[min(len(ds)-1, len(ds)*p/100)]
}
