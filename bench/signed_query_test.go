package bench

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sshdyn/sshdyn/internal/dnstest"
)

var signedSizes = flag.String("signed-sizes", "10000", "zone sizes (names) for BenchmarkSignedQueryRate, `list`ed with commas")

// BenchmarkSignedQueryRate measures answers to queries with the DO bit
// from the embedded primary serving a zone it signs (dnssec = true)
// beside Knot serving the same signed zone (the zone transferred from
// sshdyn, served as it is, Knot's own signing off), as issue 37 asks:
// dnsperf -D over loopback, one thread, the query mix of
// BenchmarkQueryRate (80 % A of names that exist, 10 % NXDOMAIN, 10 %
// NODATA: each negative answer carries its NSEC proof and signatures),
// UDP and TCP, the servers taking turns, -query-rounds rounds of
// -query-seconds each, the median reported with the ratio to Knot.
//
//	go test -run '^$' -bench '^BenchmarkSignedQueryRate$' -benchtime 1x -timeout 60m ./bench
func BenchmarkSignedQueryRate(b *testing.B) {
	for _, cmd := range []string{"dnsperf", "knotd"} {
		if _, err := exec.LookPath(cmd); err != nil {
			b.Fatalf("%s not found: scripts/bench.sh installs it", cmd)
		}
	}
	bin := buildBinaries(b).sshdyn
	for _, s := range strings.Split(*signedSizes, ",") {
		n, err := strconv.Atoi(s)
		if err != nil {
			b.Fatalf("-signed-sizes: %v", err)
		}
		measureSignedQueries(b, bin, n)
	}
}

func measureSignedQueries(b *testing.B, bin string, n int) {
	const origin = "dyn.example.com"
	dir := b.TempDir()
	recs, queries := queryLoad(b, dir, origin, n, 37)
	t0 := time.Now()
	// Signing, transfers allowed from loopback (Knot takes the zone).
	sshdyn := startEmbeddedForQueries(b, bin, filepath.Join(dir, "sshdyn-signed"), origin, recs, "dnssec = true\nallow_transfer = [\"127.0.0.1\"]\n")
	fmt.Printf("\nsshdyn serve: %d names signed and served after %.1f s\n", n, time.Since(t0).Seconds())
	// The same signed zone for Knot.
	var z strings.Builder
	for _, rr := range dnstest.Transfer(b, origin, sshdyn.addr, "", "") {
		z.WriteString(rr.String() + "\n")
	}
	knot := startKnotPresigned(b, dir, origin, z.String())
	servers := []queryServer{sshdyn, knot}

	type key struct{ server, transport string }
	results := map[key][]float64{}
	for range *queryRounds {
		for _, s := range servers {
			for _, transport := range []string{"udp", "tcp"} {
				qps := dnsperfDO(b, s.addr, queries, transport, *querySeconds)
				results[key{s.name, transport}] = append(results[key{s.name, transport}], qps)
			}
		}
	}
	median := func(v []float64) float64 {
		v = slices.Clone(v)
		slices.Sort(v)
		return v[len(v)/2]
	}
	fmt.Printf("%d names signed, DO set, dnsperf -D -c 8 -T 1, %d rounds of %d s, median queries/s (÷ Knot):\n", n, *queryRounds, *querySeconds)
	for _, transport := range []string{"udp", "tcp"} {
		k := median(results[key{"knot", transport}])
		for _, s := range servers {
			m := median(results[key{s.name, transport}])
			fmt.Printf("  %-4s %-7s %9.0f  %5.2f   rounds %v\n", transport, s.name, m, m/k, results[key{s.name, transport}])
			b.ReportMetric(m, fmt.Sprintf("%s-%s-%d-DO-q/s", s.name, transport, n))
		}
	}
	for _, s := range servers {
		s.stop()
	}
}

// dnsperfDO is dnsperf with the DO bit set (-D).
func dnsperfDO(b *testing.B, addr, queries, transport string, seconds int) float64 {
	host, port, _ := strings.Cut(addr, ":")
	out, err := exec.Command("dnsperf", "-D", "-s", host, "-p", port, "-d", queries, "-l", strconv.Itoa(seconds), "-c", "8", "-T", "1", "-q", "200", "-m", transport).CombinedOutput()
	if err != nil {
		b.Fatalf("dnsperf: %v\n%s", err, out)
	}
	m := qpsRE.FindSubmatch(out)
	if m == nil {
		b.Fatalf("dnsperf printed no rate:\n%s", out)
	}
	qps, _ := strconv.ParseFloat(string(m[1]), 64)
	return qps
}

// startKnotPresigned runs knotd serving text, a signed zone, as it is.
func startKnotPresigned(b *testing.B, dir, origin, text string) queryServer {
	sub := filepath.Join(dir, "knot-signed")
	os.MkdirAll(sub, 0o755)
	if err := os.WriteFile(filepath.Join(sub, origin+".zone"), []byte(text), 0o644); err != nil {
		b.Fatal(err)
	}
	port, err := dnstest.FreePort()
	if err != nil {
		b.Fatal(err)
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	conf := filepath.Join(sub, "knot.conf")
	os.WriteFile(conf, []byte(fmt.Sprintf(`server:
    rundir: %[1]q
    listen: 127.0.0.1@%[2]d
log:
  - target: stderr
    any: warning
database:
    storage: %[1]q
template:
  - id: default
    storage: %[1]q
    file: "%%s.zone"
    zonefile-load: whole
    journal-content: none
    semantic-checks: off
zone:
  - domain: %[3]s
`, sub, port, origin)), 0o644)
	cmd := exec.Command("knotd", "-c", conf)
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	waitSOA(b, addr, origin)
	return queryServer{name: "knot", addr: addr, pid: cmd.Process.Pid, stop: func() { cmd.Process.Kill(); cmd.Wait() }}
}
