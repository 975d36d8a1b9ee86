package bench

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/sshdyn/sshdyn/internal/dnstest"
	"github.com/sshdyn/sshdyn/internal/sockopt"
)

var (
	querySizes   = flag.String("query-sizes", "10000,1000000", "zone sizes (names) for BenchmarkQueryRate, `list`ed with commas")
	queryRounds  = flag.Int("query-rounds", 3, "rounds of BenchmarkQueryRate: each server takes its turn once a round")
	querySeconds = flag.Int("query-seconds", 5, "seconds of dnsperf per server, transport and round")
)

// BenchmarkQueryRate measures the embedded primary's query rate beside
// Knot, NSD and BIND serving the same zone, as issue 35 asked: dnsperf
// over loopback, one thread, the same query file for all (80 % A of
// names that exist, 10 % NXDOMAIN, 10 % NODATA), UDP and TCP, with the
// servers taking turns, -query-rounds rounds of -query-seconds each; the
// median of the rounds is reported, with the ratio to Knot. Every
// server runs without response rate limiting (NSD's is on by default);
// sshdyn is the binary of this tree, "sshdyn serve" with rrl_rate = 0.
// "fixed" is the physical limit: a responder on the same kind of socket
// that answers every query with one pre-built message.
//
//	go test -run '^$' -bench '^BenchmarkQueryRate$' -benchtime 1x -timeout 60m ./bench
func BenchmarkQueryRate(b *testing.B) {
	for _, cmd := range []string{"dnsperf", "nsd", "named", "knotd"} {
		if _, err := exec.LookPath(cmd); err != nil {
			b.Fatalf("%s not found: scripts/bench.sh installs it", cmd)
		}
	}
	bin := buildBinaries(b).sshdyn
	for _, s := range strings.Split(*querySizes, ",") {
		n, err := strconv.Atoi(s)
		if err != nil {
			b.Fatalf("-query-sizes: %v", err)
		}
		measureQueries(b, bin, n)
	}
}

// queryServer is one server under the load.
type queryServer struct {
	name string
	addr string
	pid  int // for CPU time; 0: this process
	stop func()
}

// queryLoad returns n names' records (h0 … hN, one A record each) and
// writes the query file for them in dir, drawn once from seed: 100,000
// lines, 80 % A of names that exist, 10 % NXDOMAIN, 10 % NODATA.
func queryLoad(b *testing.B, dir, origin string, n int, seed uint64) (recs []string, queries string) {
	for i := range n {
		recs = append(recs, fmt.Sprintf("h%d 60 A 198.51.%d.%d", i, i/250%250, i%250+1))
	}
	rnd := rand.New(rand.NewPCG(seed, uint64(n)))
	var q strings.Builder
	for range 100000 {
		switch k := rnd.IntN(10); {
		case k < 8:
			fmt.Fprintf(&q, "h%d.%s A\n", rnd.IntN(n), origin)
		case k == 8:
			fmt.Fprintf(&q, "nx%d.%s A\n", rnd.IntN(n), origin)
		default:
			fmt.Fprintf(&q, "h%d.%s TXT\n", rnd.IntN(n), origin)
		}
	}
	queries = filepath.Join(dir, "queries")
	if err := os.WriteFile(queries, []byte(q.String()), 0o644); err != nil {
		b.Fatal(err)
	}
	return recs, queries
}

func measureQueries(b *testing.B, bin string, n int) {
	const origin = "dyn.example.com"
	dir := b.TempDir()
	recs, queries := queryLoad(b, dir, origin, n, 35)

	var servers []queryServer
	servers = append(servers, startEmbeddedForQueries(b, bin, filepath.Join(dir, "sshdyn"), origin, recs, ""))
	for _, kind := range []string{"knot", "bind"} {
		s := dnstest.Start(b, kind, dnstest.Options{Records: recs, LogToFile: true})
		servers = append(servers, queryServer{name: kind, addr: s.Addr, pid: s.Pid(), stop: s.Stop})
	}
	servers = append(servers, startNSD(b, dir, origin, recs))
	servers = append(servers, startFixed(b))

	type key struct{ server, transport string }
	results := map[key][]float64{}
	cpu := map[key][]float64{}
	for round := range *queryRounds {
		for _, s := range servers {
			for _, transport := range []string{"udp", "tcp"} {
				before := cpuSeconds(s.pid)
				qps, sent := dnsperf(b, s.addr, queries, transport, *querySeconds)
				k := key{s.name, transport}
				results[k] = append(results[k], qps)
				if s.pid != 0 && sent > 0 {
					cpu[k] = append(cpu[k], (cpuSeconds(s.pid)-before)/float64(sent)*1e6)
				}
				_ = round
			}
		}
	}
	median := func(v []float64) float64 {
		v = slices.Clone(v)
		slices.Sort(v)
		return v[len(v)/2]
	}
	fmt.Printf("\n%d names, dnsperf -c 8 -T 1, %d rounds of %d s, median queries/s (÷ Knot), CPU µs per query:\n", n, *queryRounds, *querySeconds)
	for _, transport := range []string{"udp", "tcp"} {
		knot := median(results[key{"knot", transport}])
		for _, s := range servers {
			k := key{s.name, transport}
			m := median(results[k])
			c := ""
			if len(cpu[k]) > 0 {
				c = fmt.Sprintf("%6.1f µs", median(cpu[k]))
			}
			fmt.Printf("  %-4s %-7s %9.0f  %5.2f  %s   rounds %v\n", transport, s.name, m, m/knot, c, results[k])
			b.ReportMetric(m, fmt.Sprintf("%s-%s-%d-q/s", s.name, transport, n))
		}
	}
	// Latency: 8 clients in a closed loop (each sends its next query
	// when the last is answered), 20,000 queries each from the same
	// file, per server and transport.
	qf, err := os.ReadFile(queries)
	if err != nil {
		b.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(qf)), "\n")
	fmt.Printf("latency, 8 clients in a closed loop, 20,000 queries each: p50 / p99 / max\n")
	for _, transport := range []string{"udp", "tcp"} {
		for _, s := range servers {
			p50, p99, pmax := latencies(b, s.addr, transport, lines)
			fmt.Printf("  %-4s %-7s %7.1f / %7.1f / %8.1f µs\n", transport, s.name, p50, p99, pmax)
		}
	}
	for _, s := range servers {
		s.stop()
	}
}

// latencies measures the round trips of queries from 8 clients at once,
// each waiting for its answer before the next query: p50, p99 and the
// maximum in microseconds.
func latencies(b *testing.B, addr, transport string, lines []string) (p50, p99, pmax float64) {
	const clients, each = 8, 20000
	var mu sync.Mutex
	var all []time.Duration
	var wg sync.WaitGroup
	for c := range clients {
		wg.Go(func() {
			co, err := dns.DialTimeout(transport, addr, 2*time.Second)
			if err != nil {
				b.Error(err)
				return
			}
			defer co.Close()
			ds := make([]time.Duration, 0, each)
			m := new(dns.Msg)
			for i := range each {
				f := strings.Fields(lines[(c*each+i)%len(lines)])
				m.SetQuestion(dns.Fqdn(f[0]), dns.StringToType[f[1]])
				t0 := time.Now()
				co.SetDeadline(t0.Add(2 * time.Second))
				if err := co.WriteMsg(m); err != nil {
					b.Error(err)
					return
				}
				if _, err := co.ReadMsg(); err != nil {
					continue // a lost UDP answer: not a latency
				}
				ds = append(ds, time.Since(t0))
			}
			mu.Lock()
			all = append(all, ds...)
			mu.Unlock()
		})
	}
	wg.Wait()
	if len(all) == 0 {
		return 0, 0, 0
	}
	slices.Sort(all)
	us := func(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
	return us(all[len(all)/2]), us(all[len(all)*99/100]), us(all[len(all)-1])
}

var qpsRE = regexp.MustCompile(`Queries per second:\s+([0-9.]+)`)
var sentRE = regexp.MustCompile(`Queries sent:\s+(\d+)`)

// dnsperf runs dnsperf against addr and returns its queries per second
// and the queries sent.
func dnsperf(b *testing.B, addr, queries, transport string, seconds int) (float64, int) {
	host, port, _ := net.SplitHostPort(addr)
	out, err := exec.Command("dnsperf", "-s", host, "-p", port, "-d", queries, "-l", strconv.Itoa(seconds), "-c", "8", "-T", "1", "-q", "200", "-m", transport).CombinedOutput()
	if err != nil {
		b.Fatalf("dnsperf: %v\n%s", err, out)
	}
	m, s := qpsRE.FindSubmatch(out), sentRE.FindSubmatch(out)
	if m == nil || s == nil {
		b.Fatalf("dnsperf printed no rate:\n%s", out)
	}
	qps, _ := strconv.ParseFloat(string(m[1]), 64)
	sent, _ := strconv.Atoi(string(s[1]))
	return qps, sent
}

// cpuSeconds is a process's user and system CPU time so far.
func cpuSeconds(pid int) float64 {
	if pid == 0 {
		return 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / 100 // clock ticks (USER_HZ 100)
}

// startEmbeddedForQueries runs "sshdyn serve" serving the zone from sub,
// without response rate limiting, zoneConf added to the zone's section.
func startEmbeddedForQueries(b *testing.B, bin, sub, origin string, recs []string, zoneConf string) queryServer {
	os.MkdirAll(sub, 0o755)
	zoneFile := filepath.Join(sub, origin+".zone")
	writeZone(b, zoneFile, origin, recs)
	port, err := dnstest.FreePort()
	if err != nil {
		b.Fatal(err)
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	os.WriteFile(filepath.Join(sub, "tsig.key"), []byte("hmac-sha256:bench:"+primaryKey+"\n"), 0o600)
	os.WriteFile(filepath.Join(sub, "authorized_keys"), nil, 0o644)
	os.WriteFile(filepath.Join(sub, "sshdyn.toml"), []byte(fmt.Sprintf(`listen = ["127.0.0.1:0"]
host_key = "%[1]s/host_ed25519"
authorized_keys = "%[1]s/authorized_keys"
state_db = "off"
dns_listen = [%[2]q]
rrl_rate = 0
[[zone]]
name = %[4]q
file = %[3]q
tsig_key = "tsig.key"
%[5]s`, sub, addr, zoneFile, origin, zoneConf)), 0o644)
	p, _ := startProcessWithin(b, exec.Command(bin, "serve", "--config", filepath.Join(sub, "sshdyn.toml")), regexp.MustCompile(`(listening)`), 15*time.Second+time.Duration(len(recs))*time.Millisecond/4)
	waitSOA(b, addr, origin)
	return queryServer{name: "sshdyn", addr: addr, pid: p.cmd.Process.Pid, stop: func() { p.cmd.Process.Kill(); p.cmd.Wait() }}
}

func writeZone(b *testing.B, path, origin string, recs []string) {
	var z strings.Builder
	fmt.Fprintf(&z, "$ORIGIN %s.\n$TTL 60\n@ SOA ns hostmaster 1 3600 600 86400 60\n@ NS ns\nns A 192.0.2.53\n", origin)
	for _, r := range recs {
		z.WriteString(r + "\n")
	}
	if err := os.WriteFile(path, []byte(z.String()), 0o644); err != nil {
		b.Fatal(err)
	}
}

func waitSOA(b *testing.B, addr, origin string) {
	deadline := time.Now().Add(5 * time.Minute)
	for {
		m := new(dns.Msg)
		m.SetQuestion(dns.Fqdn(origin), dns.TypeSOA)
		r, _, err := (&dns.Client{Net: "tcp", Timeout: time.Second}).Exchange(m, addr)
		if err == nil && len(r.Answer) > 0 {
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("%s does not answer for %s", addr, origin)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// startNSD runs NSD serving the zone, response rate limiting off.
func startNSD(b *testing.B, dir, origin string, recs []string) queryServer {
	sub := filepath.Join(dir, "nsd")
	os.MkdirAll(sub, 0o755)
	writeZone(b, filepath.Join(sub, "zone"), origin, recs)
	port, err := dnstest.FreePort()
	if err != nil {
		b.Fatal(err)
	}
	conf := filepath.Join(sub, "nsd.conf")
	os.WriteFile(conf, []byte(fmt.Sprintf(`server:
  ip-address: 127.0.0.1
  port: %[2]d
  server-count: 2
  username: ""
  chroot: ""
  zonesdir: %[1]q
  pidfile: "%[1]s/nsd.pid"
  xfrdfile: "%[1]s/xfrd.state"
  zonelistfile: "%[1]s/zone.list"
  database: ""
  rrl-ratelimit: 0
  verbosity: 0
remote-control:
  control-enable: no
zone:
  name: %[3]q
  zonefile: "%[1]s/zone"
`, sub, port, origin)), 0o644)
	cmd := exec.Command("nsd", "-d", "-c", conf)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	waitSOA(b, addr, origin)
	return queryServer{name: "nsd", addr: addr, pid: cmd.Process.Pid, stop: func() { cmd.Process.Kill(); cmd.Wait() }}
}

// startFixed runs the fixed-answer responder in this process: UDP and
// TCP on one port, every query answered with one pre-built message (the
// ID copied in).
func startFixed(b *testing.B) queryServer {
	port, err := dnstest.FreePort()
	if err != nil {
		b.Fatal(err)
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	m := new(dns.Msg)
	m.SetQuestion("h1.dyn.example.com.", dns.TypeA)
	m.Response, m.Authoritative = true, true
	rr, _ := dns.NewRR("h1.dyn.example.com. 60 IN A 198.51.0.2")
	m.Answer = []dns.RR{rr}
	wire, _ := m.Pack()
	// The embedded primary's socket set-up: one UDP socket per core
	// (SO_REUSEPORT), each with its own reader.
	lc := net.ListenConfig{Control: sockopt.ReusePort}
	var pcs []net.PacketConn
	for range runtime.GOMAXPROCS(0) {
		pc, err := lc.ListenPacket(context.Background(), "udp4", addr)
		if err != nil {
			b.Fatal(err)
		}
		pcs = append(pcs, pc)
		go func() {
			uc := pc.(*net.UDPConn)
			buf := make([]byte, 4096)
			out := slices.Clone(wire)
			for {
				n, from, err := uc.ReadFromUDPAddrPort(buf)
				if err != nil {
					return
				}
				if n >= 2 {
					out[0], out[1] = buf[0], buf[1]
					uc.WriteToUDPAddrPort(out, from)
				}
			}
		}()
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		b.Fatal(err)
	}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				hdr := make([]byte, 2)
				buf := make([]byte, 65535)
				out := append([]byte{byte(len(wire) >> 8), byte(len(wire))}, wire...)
				for {
					if _, err := readFull(c, hdr); err != nil {
						return
					}
					n := int(hdr[0])<<8 | int(hdr[1])
					if _, err := readFull(c, buf[:n]); err != nil {
						return
					}
					out[2], out[3] = buf[0], buf[1]
					if _, err := c.Write(out); err != nil {
						return
					}
				}
			}()
		}
	}()
	return queryServer{name: "fixed", addr: addr, stop: func() {
		for _, pc := range pcs {
			pc.Close()
		}
		l.Close()
	}}
}

func readFull(c net.Conn, b []byte) (int, error) {
	n := 0
	for n < len(b) {
		k, err := c.Read(b[n:])
		n += k
		if err != nil {
			return n, err
		}
	}
	return n, nil
}
