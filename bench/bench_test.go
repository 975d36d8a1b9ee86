// Package bench is sshdyn's benchmark suite: one run measures sshdyn
// against the same real BIND and Knot side by side with the setup it
// replaces (OpenSSH sshd running nsupdate or knsupdate as a forced
// command) and with the floors (a bare SSH server, a bare signed-update
// loop), plus memory and a cron burst. Run it with scripts/bench.sh; the
// method and the numbers are in BENCHMARKS.md.
package bench

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"os/user"
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
	"github.com/sshdyn/sshdyn/internal/load"
	"github.com/sshdyn/sshdyn/update"
)

const (
	concurrency = 16
	keysN       = 128                     // keys in the throughput runs; one host each
	runFor      = 8 * time.Second         // each throughput measurement
	rounds      = 5                       // sshdyn and the floor take turns this many times
	roundFor    = 2 * time.Second         // each measurement of a round
	warmFor     = 1 * time.Second         // before each, not counted
	settleFor   = 1100 * time.Millisecond // after setting each host's address, before the warm-up
	benchUser   = "sshdyn-bench"          // runs OpenSSH's forced command
	burstN      = 10000                   // the cron burst
	burstRate   = 5000                    // connections started per second: 10,000 in 2 s
	heldN       = 1000                    // concurrent sessions for the memory figure
	stalledN    = 5000                    // stalled connections for the memory figure
	kex         = "curve25519-sha256"
)

var (
	profileDir = flag.String("profile", "", "write a CPU profile of sshdyn during each of its figures into `dir`")
	quick      = flag.Bool("quick", false, "measure only sshdyn and the floor: no OpenSSH, memory or burst")
	logDir     = flag.String("logs", "", "keep the logs of sshdyn, the floor and the primaries in `dir`")
	primaryFl  = flag.String("primary", "bind,knot", "the primaries to measure against, `list`ed with commas")
	burstsOnly = flag.Bool("bursts", false, "run only the 10,000-update bursts")
	frontOnly  = flag.Bool("front", false, "with -quick: sshdyn's nochg figures run \"ip\" instead of \"update\": the SSH front alone, with no DNS work")
	stateFl    = flag.String("state", "", "with -baseline: this build records into the state store (`sqlite` or `postgres`), the baseline runs with state_db = \"off\": the store's cost")
	baseline   = flag.String("baseline", "", "also measure the sshdyn `binary` given (an earlier build) in each round, beside this one, and print this build ÷ that one")
)

// embeddedKind, as a -primary, is sshdyn serving the zone itself, all in
// one: the core writes it in process.
const embeddedKind = "embedded"

// kinds returns the primaries named by -primary, in the order given.
func kinds(b *testing.B) []string {
	var out []string
	for _, k := range strings.Split(*primaryFl, ",") {
		switch {
		case k == embeddedKind && !*quick:
			b.Fatalf("-primary %s goes with -quick: OpenSSH has no embedded zone to compare with", embeddedKind)
		case k != "bind" && k != "knot" && k != embeddedKind:
			b.Fatalf("-primary: %q is none of bind, knot, %s", k, embeddedKind)
		}
		out = append(out, k)
	}
	return out
}

// BenchmarkComparison runs everything once (b.N is ignored) and prints a
// report on stdout.
func BenchmarkComparison(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Fatal("the benchmark needs root: it starts a second OpenSSH sshd and a user for its forced command")
	}
	for _, bin := range []string{"named", "knotd", "nsupdate", "knsupdate", "/usr/sbin/sshd"} {
		if _, err := exec.LookPath(bin); err != nil {
			b.Fatalf("%s not found: run scripts/bench.sh, which installs it", bin)
		}
	}
	for _, dir := range []string{*profileDir, *logDir} {
		if dir == "" {
			continue
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			b.Fatal(err)
		}
	}
	nochgLabel := "nochg"
	if *frontOnly {
		if !*quick {
			b.Fatal("-front goes with -quick: its nochg figures are not the nochg path")
		}
		nochgLabel = "ip (no DNS)"
	}
	ks := kinds(b)
	bins := buildBinaries(b)
	// The state store: as configured by default (on, SQLite) unless
	// -state, which compares this build with it on against the baseline
	// with it off. (A baseline from before the store, issue 33, does not
	// know state_db: leave -state out for it.)
	var thisState, baseState string
	switch *stateFl {
	case "":
	case "sqlite":
		thisState, baseState = "", `state_db = "off"`
	case "postgres":
		pg := dnstest.StartPG(b, "sshdyn")
		thisState, baseState = "state_db = "+strconv.Quote(pg.URL("sshdyn")), `state_db = "off"`
	default:
		b.Fatalf("-state %q: want sqlite or postgres", *stateFl)
	}
	rep := &report{}
	rep.printf("machine: %d CPUs (%s), %s, Go %s; clients: x/crypto/ssh, %s, %d concurrent, %d keys; each figure: %s after %s warm-up (%d rounds of %s for sshdyn and the floor)\n",
		runtime.NumCPU(), cpuModel(), kernel(), strings.TrimPrefix(runtime.Version(), "go"), kex, concurrency, keysN, runFor, warmFor, rounds, roundFor)

	if *burstsOnly {
		rep.bursts(b, bins, ks)
		fmt.Print(rep.String())
		return
	}

	keys := load.NewKeys(keysN)
	// Every key has its own source address, so each host keeps its
	// address (nochg); with change, it alternates with the next key's.
	sources := load.Loopback(netip.MustParseAddr("127.10.0.0"), keysN)
	nochg, change := keys.Clients(sources, false), keys.Clients(sources, true)

	primaries := map[string]*dnstest.Server{}
	for _, kind := range ks {
		if kind == embeddedKind {
			continue
		}
		p := dnstest.Start(b, kind, dnstest.Options{LogToFile: true})
		primaries[kind] = p
		if *logDir != "" {
			b.Cleanup(func() { // before dnstest removes p.Dir
				if err := copyFile(filepath.Join(p.Dir, "output.log"), filepath.Join(*logDir, kind+".log")); err != nil {
					b.Error(err)
				}
			})
		}
	}

	// The floor: a bare SSH server, the same keys, no DNS.
	floorDir := b.TempDir()
	writeAuthorized(b, filepath.Join(floorDir, "authorized_keys"), keys, "dyn.example.com", "")
	floorAddr, floorPid := startFloor(b, bins, floorDir)
	floor := proc{"floor", floorPid}

	// The machine's speed drifts over minutes (other tenants, clocks), so
	// sshdyn and the floor take turns: floor, nochg, change, floor, ...
	// Each round's sshdyn figures are compared with the floor right
	// before and right after them, averaged; the ratios reported are the
	// medians of the rounds'.
	type row struct{ floor, nochg, change float64 }
	sshdyn := map[string]row{} // median rates
	ratios := map[string]row{} // median ratios to the floor
	openssh := map[string]row{}
	tool := map[string]string{"bind": "nsupdate", "knot": "knsupdate"}
	for _, kind := range ks {
		p := primaries[kind]
		var d, base *sshdynProc
		var server, dns proc
		if kind == embeddedKind {
			d = startAllInOne(b, bins, keys, thisState)
			server = proc{"sshdyn", d.cmd.Process.Pid}
			dns = server
			if *baseline != "" {
				base = startAllInOne(b, binaries{sshdyn: *baseline}, keys, baseState)
			}
		} else {
			d = startSSHDyn(b, bins, p, keys, thisState)
			server, dns = proc{"sshdyn", d.cmd.Process.Pid}, proc{kind, p.Pid()}
			if *baseline != "" {
				base = startSSHDyn(b, binaries{sshdyn: *baseline}, p, keys, baseState)
			}
		}
		floors := []float64{rep.measureAt(b, "floor: bare SSH server (handshake, login, exit 0)", floorAddr, nochg, concurrency, roundFor, floor)}
		var nc, ch, ncRatio, chRatio []float64
		vsBase := map[string][]float64{} // this build ÷ baseline, by path
		for i := range rounds {
			tag := fmt.Sprintf(" [round %d]", i+1)
			// measure runs one of this build's figures and, with
			// -baseline, the baseline's beside it, first or second in
			// turn, so neither always follows the other.
			measure := func(path string, clients []load.Client) float64 {
				label := path + " path, " + kind + tag
				if rep.command != "" {
					label = "\"" + rep.command + "\" instead of update, " + kind + tag
				}
				this := func() float64 {
					rep.watch = d.watchers(rep, fmt.Sprintf("%s-%s-%d", kind, path, i+1))
					defer func() { rep.watch = nil }()
					return rep.measureAt(b, "sshdyn, "+label, d.addr, clients, concurrency, roundFor, server, dns)
				}
				if base == nil {
					return this()
				}
				that := func() float64 {
					return rep.measureAt(b, "baseline, "+label, base.addr, clients, concurrency, roundFor, proc{"baseline", base.cmd.Process.Pid}, dns)
				}
				var x, y float64
				if i%2 == 0 {
					x = this()
					y = that()
				} else {
					y = that()
					x = this()
				}
				vsBase[path] = append(vsBase[path], x/y)
				return x
			}
			if *frontOnly {
				rep.command = "ip"
			}
			nc = append(nc, measure("nochg", nochg))
			rep.command = ""
			ch = append(ch, measure("change", change))
			floors = append(floors, rep.measureAt(b, "floor"+tag, floorAddr, nochg, concurrency, roundFor, floor))
			f := (floors[i] + floors[i+1]) / 2
			ncRatio, chRatio = append(ncRatio, nc[i]/f), append(chRatio, ch[i]/f)
		}
		sshdyn[kind] = row{floor: median(floors), nochg: median(nc), change: median(ch)}
		ratios[kind] = row{nochg: median(ncRatio), change: median(chRatio)}
		rep.printf("  %s, median of %d rounds: floor %.1f/s, %s %.1f/s, change %.1f/s; sshdyn ÷ floor: %s %.2f (rounds %s), change %.2f (rounds %s)\n",
			kind, rounds, median(floors), nochgLabel, median(nc), median(ch), nochgLabel, median(ncRatio), list(ncRatio), median(chRatio), list(chRatio))
		if base != nil {
			rep.printf("  %s, this build ÷ baseline: %s %.3f (rounds %s), change %.3f (rounds %s)\n",
				kind, nochgLabel, median(vsBase["nochg"]), list(vsBase["nochg"]), median(vsBase["change"]), list(vsBase["change"]))
		}
		if *quick {
			continue
		}
		rep.measureAt(b, "sshdyn, change path, "+kind+", 64 concurrent", d.addr, change, 64, runFor, server, dns)
		bare := rep.bareDNS(b, kind, p)
		fr := sshdyn[kind].floor
		rep.printf("  DNS work alone is %.1f× the floor on nochg, %.1f× on change\n", bare.nochg/fr, bare.change/fr)
		o, pid := startOpenSSH(b, kind, p, keys)
		sshd := proc{"sshd", pid}
		openssh[kind] = row{
			nochg:  rep.measure(b, "OpenSSH sshd + forced "+tool[kind]+", nochg path, "+kind, o, nochg, sshd, dns),
			change: rep.measure(b, "OpenSSH sshd + forced "+tool[kind]+", change path, "+kind, o, change, sshd, dns),
		}
	}

	if *quick {
		for _, kind := range ks {
			s := ratios[kind]
			rep.printf("  %-4s  sshdyn ÷ floor: %s %.2f, change %.2f\n", kind, nochgLabel, s.nochg, s.change)
		}
		fmt.Print(rep.String())
		return
	}
	rep.printf("\nratios (targets: nochg ≥ 0.85 × floor, change ≥ 0.7 × floor, nochg ≥ 15 × OpenSSH):\n")
	for _, kind := range ks {
		s, r, o := sshdyn[kind], ratios[kind], openssh[kind]
		rep.printf("  %-4s  sshdyn ÷ floor: nochg %.2f, change %.2f;  sshdyn ÷ OpenSSH+%s: nochg %.1f, change %.1f;  floor ÷ OpenSSH: %.1f\n",
			kind, r.nochg, r.change, tool[kind], s.nochg/o.nochg, s.change/o.change, s.floor/o.nochg)
		b.ReportMetric(r.nochg, kind+"-nochg/floor")
		b.ReportMetric(r.change, kind+"-change/floor")
		b.ReportMetric(s.nochg/o.nochg, kind+"-nochg/openssh")
	}

	rep.memory(b, bins, primaries[ks[len(ks)-1]], keys) // Knot, unless -primary says otherwise
	rep.bursts(b, bins, ks)
	fmt.Print(rep.String())
}

// bursts runs the cron bursts against each primary, Knot first.
func (r *report) bursts(b *testing.B, bins binaries, ks []string) {
	for _, kind := range slices.Backward(ks) {
		r.burst(b, bins, kind, "", netip.MustParseAddr("127.13.0.0"), false)
		// Fewer handshakes at once leave the CPU to the sessions already
		// in: the same burst, with the rest waiting in the listen queue.
		r.burst(b, bins, kind, "max_unauthenticated = 256", netip.MustParseAddr("127.14.0.0"), true)
	}
}

// report collects the printed report; it goes to stdout at the end so
// that it is not interleaved with the primaries' logs.
type report struct {
	mu sync.Mutex
	b  strings.Builder
	// watch are called when a timed run starts; each returns a function
	// that is called with the run's result when it ends.
	watch []watcher
	// command is what the clients run; "" is update.
	command string
}

type watcher func(b *testing.B) (end func(res *load.Result))

func (r *report) printf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	fmt.Fprintf(&r.b, format, args...)
	fmt.Fprintf(os.Stderr, format, args...) // progress
}

func (r *report) String() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.b.String()
}

// measure warms up, then runs the closed-loop load for runFor and returns
// sessions per second. Any failure fails the benchmark.
//
// It also prints the CPU time each of procs used per session, and the
// load generator's own: with every process on the same two cores, the
// throughput is about 2 CPU-seconds divided by their sum.
func (r *report) measure(b *testing.B, name, addr string, clients []load.Client, procs ...proc) float64 {
	b.Helper()
	return r.measureAt(b, name, addr, clients, concurrency, runFor, procs...)
}

// measureAt is measure with n concurrent clients, measured for d.
func (r *report) measureAt(b *testing.B, name, addr string, clients []load.Client, n int, d time.Duration, procs ...proc) float64 {
	b.Helper()
	procs = append(procs, proc{"clients", os.Getpid()})
	// Warm up: one connection per client (so that every host holds the
	// path's address before the clock starts), then warmFor more.
	command := r.command
	if command == "" {
		command = "update"
	}
	cfg := load.Config{Addr: addr, User: benchUser, Command: command, Clients: clients, KeyExchanges: []string{kex},
		Concurrency: n, Count: len(clients), Timeout: 30 * time.Second}
	if _, err := load.Run(context.Background(), cfg); err != nil {
		b.Fatal(err)
	}
	// That pass may have written records. Knot 3.2 then plans a NOTIFY
	// for the next second, and an UPDATE that arrives in that second
	// waits for it (BENCHMARKS.md): let it pass, unloaded.
	time.Sleep(settleFor)
	cfg.Count, cfg.Duration = 0, warmFor
	if _, err := load.Run(context.Background(), cfg); err != nil {
		b.Fatal(err)
	}
	cfg.Duration = d
	var ends []func(*load.Result)
	for _, w := range r.watch {
		ends = append(ends, w(b))
	}
	before, machineBefore := cpuTimes(b, procs), machineCPU(b)
	res, err := load.Run(context.Background(), cfg)
	after, machineAfter := cpuTimes(b, procs), machineCPU(b)
	if err != nil {
		b.Fatal(err)
	}
	r.printf("%-58s %7.1f/s  p50 %-8s p99 %-8s %s\n", name, res.Throughput(), res.Percentile(50).Round(100*time.Microsecond),
		res.Percentile(99).Round(100*time.Microsecond), outcome(res))
	for _, end := range ends {
		end(res)
	}
	if n := len(res.Latencies); n > 0 {
		var parts []string
		var ours time.Duration
		for i, p := range procs {
			parts = append(parts, fmt.Sprintf("%s %.3f", p.name, float64(after[i]-before[i])/float64(time.Millisecond)/float64(n)))
			ours += after[i] - before[i]
		}
		// How much of the machine the figure had: with the VM's CPUs
		// taken by its host (or by something else here), a closed loop
		// on CPU runs slower with no change in CPU per session.
		m := machineAfter.sub(machineBefore)
		all := float64(m.busy + m.idle + m.steal)
		r.printf("  CPU ms per session: %s; of %d CPUs: busy %.0f %% (these processes %.0f %%), idle %.0f %%, steal %.0f %%\n",
			strings.Join(parts, ", "), runtime.NumCPU(), 100*float64(m.busy)/all, 100*float64(ours)/all, 100*float64(m.idle)/all, 100*float64(m.steal)/all)
	}
	if res.Failures() > 0 {
		b.Errorf("%s: %d failures: %s", name, res.Failures(), res)
	}
	return res.Throughput()
}

func outcome(res *load.Result) string {
	var parts []string
	for k, v := range res.Outputs {
		if k == "" {
			k = "(no output)"
		}
		parts = append(parts, fmt.Sprintf("%s=%d", k, v))
	}
	for k, v := range res.Errors {
		parts = append(parts, fmt.Sprintf("FAILED %s=%d (first: %s)", k, v, res.Examples[k]))
	}
	return strings.Join(parts, " ")
}

// bareDNS measures the DNS work sshdyn does per update, without SSH:
// concurrency workers, each its own host, doing update.Set in a loop with
// an unchanged address (nochg: one check) and with alternating addresses
// (change: check, then a compare-and-set replace and its confirming
// check), with sshdyn's own client settings.
func (r *report) bareDNS(b *testing.B, kind string, p *dnstest.Server) (out struct{ nochg, change float64 }) {
	b.Helper()
	cl := &update.Client{Server: p.Addr, Zone: p.Zone, Key: p.Key, Pool: update.NewPool(), Batch: update.NewBatch()}
	defer cl.Pool.Close()
	c := update.Remember(cl, &update.LastSeen{})
	for _, changing := range []bool{false, true} {
		var mu sync.Mutex
		n := 0
		ctx, cancel := context.WithTimeout(context.Background(), runFor)
		var wg sync.WaitGroup
		var failed error
		start := time.Now()
		for w := 0; w < concurrency; w++ {
			wg.Add(1)
			go func(w int) {
				defer wg.Done()
				host := fmt.Sprintf("bare%d.%s", w, p.Zone)
				addrs := []netip.Addr{netip.AddrFrom4([4]byte{192, 0, 2, byte(w)}), netip.AddrFrom4([4]byte{198, 51, 100, byte(w)})}
				for i := 0; ctx.Err() == nil; i++ {
					a := addrs[0]
					if changing {
						a = addrs[i%2]
					}
					_, _, err := c.Set(context.Background(), update.Record{Name: host, Addr: a, TTL: 60}, nil)
					mu.Lock()
					if err != nil && failed == nil {
						failed = err
					}
					if err == nil && i > 0 { // the first write of a host is set-up
						n++
					}
					mu.Unlock()
				}
			}(w)
		}
		wg.Wait()
		cancel()
		if failed != nil {
			b.Fatalf("bare DNS loop against %s: %v", kind, failed)
		}
		rate := float64(n) / time.Since(start).Seconds()
		path := "nochg"
		if changing {
			path, out.change = "change", rate
		} else {
			out.nochg = rate
		}
		r.printf("%-58s %7.1f/s\n", "bare signed-update loop (no SSH), "+path+" path, "+kind, rate)
	}
	return out
}

type binaries struct{ sshdyn, load string }

func buildBinaries(b *testing.B) binaries {
	dir := b.TempDir()
	bins := binaries{sshdyn: filepath.Join(dir, "sshdyn"), load: filepath.Join(dir, "sshdyn-load")}
	for bin, pkg := range map[string]string{bins.sshdyn: "../cmd/sshdyn", bins.load: "../cmd/sshdyn-load"} {
		if out, err := exec.Command("go", "build", "-o", bin, pkg).CombinedOutput(); err != nil {
			b.Fatalf("go build %s: %v\n%s", pkg, err, out)
		}
	}
	return bins
}

func writeAuthorized(b *testing.B, path string, keys *load.Keys, zone, prefix string) {
	b.Helper()
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	if err := keys.Authorized(f, zone, prefix); err != nil {
		b.Fatal(err)
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
}

// process is a started server process. Its output goes to a file, as a
// daemon's log would: the kernel, not the benchmark, takes it in.
type process struct {
	cmd  *exec.Cmd
	log  string // path of the output file
	done chan struct{}
}

// output returns what the process has written so far.
func (p *process) output() string {
	b, _ := os.ReadFile(p.log)
	return string(b)
}

// startProcess runs cmd, waits until its output matches re, and returns
// the first submatch of re. It kills the process when the benchmark ends.
func startProcess(b *testing.B, cmd *exec.Cmd, re *regexp.Regexp) (*process, string) {
	b.Helper()
	return startProcessWithin(b, cmd, re, 15*time.Second)
}

// startProcessWithin is startProcess waiting up to limit for the line
// (a zone's first signing takes minutes at a million names).
func startProcessWithin(b *testing.B, cmd *exec.Cmd, re *regexp.Regexp, limit time.Duration) (*process, string) {
	b.Helper()
	dir := *logDir
	if dir == "" {
		dir = b.TempDir()
	}
	out, err := os.CreateTemp(dir, filepath.Base(cmd.Path)+"-*.log")
	if err != nil {
		b.Fatal(err)
	}
	defer out.Close()
	p := &process{cmd: cmd, log: out.Name(), done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	go func() { cmd.Wait(); close(p.done) }()
	b.Cleanup(func() { cmd.Process.Kill(); <-p.done })
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		if m := re.FindStringSubmatch(p.output()); m != nil {
			return p, m[1]
		}
		select {
		case <-p.done:
			b.Fatalf("%s exited:\n%s", cmd.Path, p.output())
		case <-time.After(20 * time.Millisecond):
		}
	}
	b.Fatalf("%s did not start:\n%s", cmd.Path, p.output())
	return nil, ""
}

func startFloor(b *testing.B, bins binaries, dir string) (addr string, pid int) {
	p, addr := startProcess(b, exec.Command(bins.load, "floor", "-listen", "127.0.0.1:0",
		"-authorized", filepath.Join(dir, "authorized_keys"), "-host-key", filepath.Join(dir, "hk")),
		regexp.MustCompile(`floor listening on (\S+)`))
	return addr, p.cmd.Process.Pid
}

// proc is a process whose CPU time a measurement reports.
type proc struct {
	name string
	pid  int
}

// clockTick is USER_HZ, the unit of /proc/PID/stat's times: 100 on
// every Linux architecture Go runs on.
const clockTick = 10 * time.Millisecond

// cpuTimes returns the CPU time, user and system, that each process and
// its reaped children (OpenSSH's per-connection processes, nsupdate) have
// used so far.
func cpuTimes(b testing.TB, procs []proc) []time.Duration {
	b.Helper()
	out := make([]time.Duration, len(procs))
	for i, p := range procs {
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.pid))
		if err != nil {
			b.Fatal(err)
		}
		// The command name, in parentheses, may hold spaces: the fields
		// counted from the last ")" are 3 (state) onwards.
		f := strings.Fields(string(data[strings.LastIndexByte(string(data), ')')+1:]))
		if len(f) < 15 {
			b.Fatalf("/proc/%d/stat: %d fields", p.pid, len(f))
		}
		for _, field := range f[11:15] { // utime, stime, cutime, cstime
			n, err := strconv.ParseInt(field, 10, 64)
			if err != nil {
				b.Fatalf("/proc/%d/stat: %v", p.pid, err)
			}
			out[i] += time.Duration(n) * clockTick
		}
	}
	return out
}

// cpuStat is the machine's CPU time (all CPUs) from /proc/stat.
type cpuStat struct{ busy, idle, steal time.Duration }

func (a cpuStat) sub(b cpuStat) cpuStat {
	return cpuStat{a.busy - b.busy, a.idle - b.idle, a.steal - b.steal}
}

// machineCPU returns the machine's CPU time so far: busy (user, nice,
// system, irq, softirq), idle (idle, iowait), and steal (taken by the
// hypervisor, where it says so).
func machineCPU(b testing.TB) cpuStat {
	b.Helper()
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		b.Fatal(err)
	}
	line, _, _ := strings.Cut(string(data), "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		b.Fatalf("/proc/stat: %q", line)
	}
	var v [8]time.Duration
	for i := range v {
		n, err := strconv.ParseInt(f[i+1], 10, 64)
		if err != nil {
			b.Fatalf("/proc/stat: %v", err)
		}
		v[i] = time.Duration(n) * clockTick
	}
	// user nice system idle iowait irq softirq steal
	return cpuStat{busy: v[0] + v[1] + v[2] + v[5] + v[6], idle: v[3] + v[4], steal: v[7]}
}

type sshdynProc struct {
	*process
	addr    string
	metrics string
}

// watchers returns what to watch in sshdyn during a measurement: its
// round trips to the primary (from its metrics) and, with -profile, a
// CPU profile written to name.pprof.
func (p *sshdynProc) watchers(r *report, name string) []watcher {
	w := []watcher{func(b *testing.B) func(*load.Result) {
		before := p.roundTrips(b)
		return func(res *load.Result) {
			after := p.roundTrips(b)
			n := float64(len(res.Latencies))
			var parts []string
			for _, op := range []string{"check", "lookup", "replace", "confirm", "connect"} {
				a, z := after[op], before[op]
				if count := a.count - z.count; count > 0 {
					parts = append(parts, fmt.Sprintf("%s %.2f (mean %.2f ms, %.0f over %v)", op, count/n, (a.sum-z.sum)/count*1000,
						count-(a.fast-z.fast), slowRoundTrip))
				}
			}
			r.printf("  DNS round trips per session: %s\n", strings.Join(parts, ", "))
		}
	}}
	if *profileDir != "" {
		w = append(w, func(b *testing.B) func(*load.Result) {
			url := fmt.Sprintf("%s/debug/pprof/profile?seconds=%d", strings.TrimSuffix(p.metrics, "/metrics"), int(roundFor.Seconds()))
			done := make(chan error, 1)
			go func() { done <- fetch(url, filepath.Join(*profileDir, name+".pprof")) }()
			return func(*load.Result) {
				if err := <-done; err != nil {
					b.Errorf("profile %s: %v", name, err)
				}
			}
		})
	}
	return w
}

// histogram is a part of sshdyn's round-trip histogram: the sum and
// count, and how many took at most slowRoundTrip.
type histogram struct{ sum, count, fast float64 }

// slowRoundTrip is a bucket boundary of sshdyn_dns_request_duration_seconds
// (metrics.go): 100 times a check's usual round trip.
const slowRoundTrip = 128 * time.Millisecond

var roundTripRE = regexp.MustCompile(`(?m)^sshdyn_dns_request_duration_seconds_(sum|count|bucket)\{[^}]*op="(\w+)"[^}]*outcome="ok"[^}]*\} (\S+)$`)

// roundTrips returns sshdyn's successful round trips to the primary so
// far, by operation.
func (p *sshdynProc) roundTrips(b *testing.B) map[string]histogram {
	b.Helper()
	out := map[string]histogram{}
	for _, m := range roundTripRE.FindAllSubmatch(p.scrape(b), -1) {
		v, _ := strconv.ParseFloat(string(m[3]), 64)
		h := out[string(m[2])]
		switch string(m[1]) {
		case "sum":
			h.sum += v
		case "count":
			h.count += v
		default:
			if strings.Contains(string(m[0]), fmt.Sprintf(`le="%g"`, slowRoundTrip.Seconds())) {
				h.fast += v
			}
		}
		out[string(m[2])] = h
	}
	return out
}

func copyFile(from, to string) error {
	b, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	return os.WriteFile(to, b, 0o644)
}

func fetch(url, path string) error {
	resp, err := http.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// startSSHDyn runs sshdyn serve for keys' hosts against primary p, with
// the limits opened up for a benchmark on loopback; limits are more
// top-level settings.
func startSSHDyn(b *testing.B, bins binaries, p *dnstest.Server, keys *load.Keys, limits string) *sshdynProc {
	b.Helper()
	// Each key of the load sends many requests a second. (A -baseline
	// build from before max_requests_per_key, issue 22, does not know
	// the setting.)
	limits += "\nmax_requests_per_key = 0"
	dir := b.TempDir()
	writeAuthorized(b, filepath.Join(dir, "authorized_keys"), keys, p.Zone, "")
	cfg := fmt.Sprintf(`listen = ["127.0.0.1:0"]
host_key = "%[1]s/host_ed25519"
authorized_keys = "%[1]s/authorized_keys"
allow_private = true      # the clients are on loopback
max_changes_per_key = 0   # the change path changes every time
login_timeout = "30s"     # stalled connections stay for the memory figure
metrics_listen = "127.0.0.1:0"
metrics_pprof = %[6]t
%[2]s
[[zone]]
name = %[3]q
primary = %[4]q
tsig_key = %[5]q
ttl = 60
`, dir, limits, p.Zone, p.Addr, p.KeyFile, *profileDir != "")
	return runSSHDyn(b, bins, dir, cfg)
}

// runSSHDyn writes cfg as dir/sshdyn.toml, runs sshdyn serve with it,
// and waits until it listens.
func runSSHDyn(b *testing.B, bins binaries, dir, cfg string) *sshdynProc {
	b.Helper()
	if err := os.WriteFile(filepath.Join(dir, "sshdyn.toml"), []byte(cfg), 0o644); err != nil {
		b.Fatal(err)
	}
	proc, addr := startProcess(b, exec.Command(bins.sshdyn, "serve", "--config", filepath.Join(dir, "sshdyn.toml")),
		regexp.MustCompile(`msg=listening addr=(\S+)`))
	m := regexp.MustCompile(`msg="metrics listening" addr=(\S+)`).FindStringSubmatch(proc.output())
	if m == nil {
		b.Fatalf("no metrics address:\n%s", proc.output())
	}
	return &sshdynProc{process: proc, addr: addr, metrics: "http://" + m[1] + "/metrics"}
}

// startAllInOne runs sshdyn serve as the zone's primary itself (a zone
// file, dns_listen): its core writes the zone in process.
func startAllInOne(b *testing.B, bins binaries, keys *load.Keys, extra string) *sshdynProc {
	b.Helper()
	dir := b.TempDir()
	writeAuthorized(b, filepath.Join(dir, "authorized_keys"), keys, "dyn.example.com", "")
	port, err := dnstest.FreePort()
	if err != nil {
		b.Fatal(err)
	}
	for name, text := range map[string]string{
		"zone":     "$ORIGIN dyn.example.com.\n$TTL 60\n@ SOA ns hostmaster 1 3600 600 86400 60\n@ NS ns\nns A 192.0.2.53\n",
		"tsig.key": "hmac-sha256:bench:" + primaryKey + "\n",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o600); err != nil {
			b.Fatal(err)
		}
	}
	cfg := fmt.Sprintf(`listen = ["127.0.0.1:0"]
host_key = "%[1]s/host_ed25519"
authorized_keys = "%[1]s/authorized_keys"
allow_private = true
max_changes_per_key = 0
max_requests_per_key = 0
login_timeout = "30s"
metrics_listen = "127.0.0.1:0"
metrics_pprof = %[3]t
dns_listen = ["127.0.0.1:%[2]d"]
%[4]s
[[zone]]
name = "dyn.example.com"
file = "zone"
tsig_key = "tsig.key"
ttl = 60
`, dir, port, *profileDir != "", extra)
	return runSSHDyn(b, bins, dir, cfg)
}

// rss returns the process's resident memory in bytes.
func (p *process) rss(b *testing.B) int64 {
	b.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				b.Fatal(err)
			}
			return kb << 10
		}
	}
	b.Fatal("no VmRSS")
	return 0
}

// scrape returns sshdyn's metrics page.
func (p *sshdynProc) scrape(b *testing.B) []byte {
	b.Helper()
	resp, err := http.Get(p.metrics)
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		b.Fatal(err)
	}
	return body
}

// gauge reads one unlabelled gauge from sshdyn's metrics.
func (p *sshdynProc) gauge(b *testing.B, name string) float64 {
	b.Helper()
	m := regexp.MustCompile(`(?m)^` + name + ` (\S+)$`).FindSubmatch(p.scrape(b))
	if m == nil {
		b.Fatalf("no %s in the metrics", name)
	}
	v, _ := strconv.ParseFloat(string(m[1]), 64)
	return v
}

// memory measures sshdyn's RSS and goroutines idle, with heldN sessions
// in progress, and with stalledN connections that never send a byte.
func (r *report) memory(b *testing.B, bins binaries, p *dnstest.Server, keys *load.Keys) {
	b.Helper()
	d := startSSHDyn(b, bins, p, keys, fmt.Sprintf("max_unauthenticated = %d", 2*stalledN))
	clients := keys.Clients(load.Loopback(netip.MustParseAddr("127.11.0.0"), keysN), false)
	// One update per key first, so that the figures include a warm server.
	if _, err := load.Run(context.Background(), load.Config{Addr: d.addr, Command: "update", Clients: clients, Concurrency: concurrency, Count: keysN}); err != nil {
		b.Fatal(err)
	}
	settle := func() { runtime.GC(); time.Sleep(500 * time.Millisecond) }
	settle()
	idleRSS, idleG := d.rss(b), d.gauge(b, "go_goroutines")
	r.printf("\nmemory (sshdyn against knot): idle %.1f MiB RSS, %.0f goroutines\n", mib(idleRSS), idleG)

	held, err := load.HoldSessions(context.Background(), d.addr, clients, heldN)
	if err != nil {
		b.Fatal(err)
	}
	settle()
	rss, g := d.rss(b), d.gauge(b, "go_goroutines")
	r.printf("  %d sessions in progress: %.1f MiB RSS (%.1f KiB each), %.0f goroutines (%.1f each)\n",
		heldN, mib(rss), float64(rss-idleRSS)/1024/heldN, g, (g-idleG)/heldN)
	held.Close()

	// A fresh server for the stalled connections: memory freed by the
	// sessions above is not all returned to the system at once.
	d = startSSHDyn(b, bins, p, keys, fmt.Sprintf("max_unauthenticated = %d", 2*stalledN))
	settle()
	base, baseG := d.rss(b), d.gauge(b, "go_goroutines")
	// Spread over sources: at most 128 unauthenticated per source.
	stalled, err := load.Stall(context.Background(), d.addr, load.Loopback(netip.MustParseAddr("127.12.0.0"), stalledN/100+1), stalledN)
	if err != nil {
		b.Fatal(err)
	}
	settle()
	rss, g = d.rss(b), d.gauge(b, "go_goroutines")
	r.printf("  %d stalled connections (fresh server, %.1f MiB before): %.1f MiB RSS (%.1f KiB each; target ≤ 64), %.0f goroutines (%.1f each)\n",
		stalledN, mib(base), mib(rss), float64(rss-base)/1024/stalledN, g, (g-baseG)/stalledN)
	stalled.Close()
}

// burst starts burstN updates from burstN keys at burstRate per second
// against a fresh sshdyn, and reports how long they took to drain and
// how many failed.
//
// Each host connects from its own address from base upward (a fleet): the
// first burst writes every record (change path), a second, unless
// changeOnly, changes nothing (nochg path). limits are more settings.
func (r *report) burst(b *testing.B, bins binaries, kind, limits string, base netip.Addr, changeOnly bool) {
	b.Helper()
	p := dnstest.Start(b, kind, dnstest.Options{LogToFile: true}) // a fresh zone for each burst
	defer p.Stop()
	keys := load.NewKeys(burstN)
	d := startSSHDyn(b, bins, p, keys, limits)
	clients := keys.Clients(load.Loopback(base, burstN), false)
	paths := []string{"change", "nochg"}
	if changeOnly {
		paths = paths[:1]
	}
	if limits == "" {
		limits = "defaults"
	}
	for _, path := range paths {
		before := d.roundTrips(b)
		res, err := load.Run(context.Background(), load.Config{Addr: d.addr, Command: "update", Clients: clients,
			KeyExchanges: []string{kex}, Rate: burstRate, Count: burstN, Timeout: 2 * time.Minute})
		if err != nil {
			b.Fatal(err)
		}
		after := d.roundTrips(b)
		r.printf("burst of %d updates in %.0f s (%s path, %s, %s): drained in %.1f s, p50 %s, p99 %s, %d failed %s; %.0f connections opened to the primary\n",
			burstN, float64(burstN)/burstRate, path, kind, limits, res.Elapsed.Seconds(), res.Percentile(50).Round(time.Millisecond),
			res.Percentile(99).Round(time.Millisecond), res.Failures(), outcome(res), after["connect"].count-before["connect"].count)
		if res.Failures() > 0 {
			b.Errorf("burst against %s: %d failures", kind, res.Failures())
		}
	}
	// Spot-check that the burst really wrote.
	if got := p.Lookup(b, load.Host(burstN-1, p.Zone), dns.TypeA); len(got) != 1 {
		b.Errorf("after the burst %s A = %v", load.Host(burstN-1, p.Zone), got)
	}
}

func mib(n int64) float64 { return float64(n) / (1 << 20) }

// startOpenSSH runs a second OpenSSH sshd on a free loopback port whose
// authorized_keys gives each key a forced command that does what sshdyn
// does with nsupdate (BIND) or knsupdate (Knot): a prerequisite-only
// check, then delete-and-add if the record differs. The command runs as
// benchUser, whose shell is /bin/sh (dash): no .bashrc.
func startOpenSSH(b *testing.B, kind string, p *dnstest.Server, keys *load.Keys) (addr string, pid int) {
	b.Helper()
	ensureUser(b)
	dir, err := os.MkdirTemp("", "sshdyn-bench-sshd-")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		b.Fatal(err)
	}
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", filepath.Join(dir, "host_key")).CombinedOutput(); err != nil {
		b.Fatalf("ssh-keygen: %v\n%s", err, out)
	}
	key := filepath.Join(dir, "tsig.key")
	tool := ""
	switch kind {
	case "bind":
		b2, err := os.ReadFile(p.KeyFile)
		if err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(key, b2, 0o644); err != nil {
			b.Fatal(err)
		}
		tool = "nsupdate -k " + key
	case "knot":
		tool = fmt.Sprintf("knsupdate -y hmac-sha256:%s:%s", strings.TrimSuffix(p.Key.Name, "."), p.Key.Secret)
	}
	script := filepath.Join(dir, "update.sh")
	if err := os.WriteFile(script, []byte(fmt.Sprintf(`#!/bin/sh
# Forced command: sshdyn's check-then-replace with %[1]s. $1 is the host.
set -- "$1" $SSH_CONNECTION
host=$1 ip=$2 type=A
case $ip in *:*) type=AAAA ;; esac
if printf 'server 127.0.0.1 %[2]d\nzone %[3]s.\nprereq yxrrset %%s. %%s %%s\nsend\n' "$host" "$type" "$ip" | %[1]s >/dev/null 2>&1; then
	echo "nochg $host $type $ip"
	exit 0
fi
printf 'server 127.0.0.1 %[2]d\nzone %[3]s.\nupdate delete %%s. %%s\nupdate add %%s. 60 %%s %%s\nsend\n' "$host" "$type" "$host" "$type" "$ip" | %[1]s >/dev/null || exit 75
echo "good $host $type $ip"
`, tool, p.Port, p.Zone)), 0o755); err != nil {
		b.Fatal(err)
	}
	writeAuthorized(b, filepath.Join(dir, "authorized_keys"), keys, p.Zone, `command="`+script+` %[1]s",restrict`)
	if err := os.Chmod(filepath.Join(dir, "authorized_keys"), 0o644); err != nil {
		b.Fatal(err)
	}
	port, err := dnstest.FreePort()
	if err != nil {
		b.Fatal(err)
	}
	conf := filepath.Join(dir, "sshd_config")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf(`Port %d
ListenAddress 127.0.0.1
HostKey %[2]s/host_key
PidFile %[2]s/sshd.pid
AuthorizedKeysFile %[2]s/authorized_keys
AllowUsers %[3]s
StrictModes no
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
UseDNS no
PrintMotd no
PrintLastLog no
MaxStartups 1000:30:2000
LogLevel ERROR
`, port, dir, benchUser)), 0o644); err != nil {
		b.Fatal(err)
	}
	os.MkdirAll("/run/sshd", 0o755) // privilege separation directory
	cmd := exec.Command("/usr/sbin/sshd", "-D", "-e", "-f", conf)
	out := &dnstest.LogBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	b.Cleanup(func() { cmd.Process.Kill(); <-done })
	addr = fmt.Sprintf("127.0.0.1:%d", port)
	// Ready when one update goes through.
	deadline := time.Now().Add(10 * time.Second)
	for {
		res, err := load.Run(context.Background(), load.Config{Addr: addr, User: benchUser, Command: "update", Clients: keys.Clients(nil, false)[:1], Concurrency: 1, Count: 1})
		if err == nil && res.Failures() == 0 {
			return addr, cmd.Process.Pid
		}
		if time.Now().After(deadline) {
			b.Fatalf("OpenSSH sshd with %s did not work: %v %v\n%s", tool, err, res, out.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// ensureUser creates benchUser (shell /bin/sh, no password, not locked)
// if it does not exist.
func ensureUser(b *testing.B) {
	b.Helper()
	if _, err := user.Lookup(benchUser); err == nil {
		return
	}
	for _, args := range [][]string{
		{"useradd", "--system", "--shell", "/bin/sh", "--home-dir", "/nonexistent", "--no-create-home", benchUser},
		{"usermod", "-p", "*", benchUser}, // "!" would count as locked for sshd
	} {
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			b.Fatalf("%v: %v\n%s", args, err, out)
		}
	}
}

func cpuModel() string {
	b, _ := os.ReadFile("/proc/cpuinfo")
	if m := regexp.MustCompile(`(?m)^model name\s*:\s*(.+)$`).FindSubmatch(b); m != nil {
		return string(m[1])
	}
	return "unknown CPU"
}

func kernel() string {
	b, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	return "Linux " + strings.TrimSpace(string(b))
}

// median returns the median of xs (the mean of the middle two for an
// even count).
func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if n := len(s); n%2 == 0 {
		return (s[n/2-1] + s[n/2]) / 2
	}
	return s[len(s)/2]
}

// list formats ratios for the report: "0.86 0.88 0.84".
func list(xs []float64) string {
	parts := make([]string, len(xs))
	for i, x := range xs {
		parts[i] = fmt.Sprintf("%.2f", x)
	}
	return strings.Join(parts, " ")
}
