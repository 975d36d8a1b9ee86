package bench

import (
	"context"
	"crypto/subtle"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sshdyn/sshdyn/authorized"
	"github.com/sshdyn/sshdyn/dyndns2"
	"github.com/sshdyn/sshdyn/internal/dnstest"
	"github.com/sshdyn/sshdyn/publish"
	"github.com/sshdyn/sshdyn/update"
	"github.com/sshdyn/sshdyn/zone"
)

var httpPrimary = flag.String("http-primary", "bind", "the primary BenchmarkHTTPFront's checks go to: bind, knot, pdns, sshdyn (the embedded primary, in the benchmark's process, over RFC 2136), or inproc (the embedded zone written in process, as sshdyn serves its own zone)")

// BenchmarkHTTPFront measures the dyndns2 front's nochg rate beside a
// bare net/http handler that does only Basic auth (a constant-time
// compare of the password) and answers like it, on the same machine,
// against BIND: 16 routers, each its own user and host, asking again and
// again for the address their host already has (and again with 64). Both run in this
// process, on loopback, with the same http.Server settings; they take
// turns for 5 rounds of 2 s, and the medians are reported, once with a
// new connection per request (as a router's one-shot client makes) and
// once with keep-alive. Run it with
//
//	go test -run '^$' -bench '^BenchmarkHTTPFront$' -benchtime 1x ./bench
func BenchmarkHTTPFront(b *testing.B) {
	kind := *httpPrimary
	inproc := kind == "inproc"
	if inproc {
		kind = "sshdyn"
	}
	p := dnstest.Start(b, kind, dnstest.Options{})
	const password = "bench-password"
	hash, err := dyndns2.HashPassword(password)
	if err != nil {
		b.Fatal(err)
	}
	const users = 64
	var lines []string
	for i := range users {
		lines = append(lines, fmt.Sprintf(`http-user="r%d",http-password="%s",host="r%d.%s",allow-private`, i, hash, i, p.Zone))
	}
	m, err := authorized.Parse(strings.NewReader(strings.Join(lines, "\n")), "bench", authorized.Scope{Zones: []string{p.Zone}})
	if err != nil {
		b.Fatal(err)
	}
	// The client and its wrappers as sshdyn serve makes them.
	pool := update.NewPool()
	pool.MaxIdle = publish.DefaultMaxInFlight
	defer pool.Close()
	client := &update.Client{Server: p.Addr, Zone: p.Zone, Key: p.Key, Pool: pool, Batch: update.NewBatch()}
	var be publish.Backend = update.NewBackend(client)
	if inproc {
		be = zone.NewBackend(inprocZone(b))
	}
	svc := &publish.Service{Zones: []publish.Zone{{Name: p.Zone, TTL: 60, Backend: be}}}
	// The floor of a design whose state lives in an external primary: the
	// bare handler, plus one signed prerequisite-only check to the same
	// primary over a kept connection (no sharing of checks).
	checkPool := update.NewPool()
	checkPool.MaxIdle = publish.DefaultMaxInFlight
	defer checkPool.Close()
	checker := &update.Client{Server: p.Addr, Zone: p.Zone, Key: p.Key, Pool: checkPool}
	front := &dyndns2.Server{Users: m, Service: svc}
	bare := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user, pass, ok := r.BasicAuth()
		if _, known := m.LookupUser(user); !ok || !known || subtle.ConstantTimeCompare([]byte(pass), []byte(password)) != 1 {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "nochg 127.0.0.1")
	})
	bareCheck := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user, pass, ok := r.BasicAuth()
		e, known := m.LookupUser(user)
		if !ok || !known || subtle.ConstantTimeCompare([]byte(pass), []byte(password)) != 1 {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		held, err := checker.Check(r.Context(), update.Record{Name: e.Hosts[0], Addr: netip.MustParseAddr("127.0.0.1"), TTL: 60})
		if err != nil || !held {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "nochg 127.0.0.1")
	})
	frontURL, stopFront := serveBench(b, front)
	defer stopFront()
	bareURL, stopBare := serveBench(b, bare)
	defer stopBare()
	checkURL, stopCheck := serveBench(b, bareCheck)
	defer stopCheck()
	// Each router's first request sets its record and fills the password
	// cache: what follows is the nochg path.
	for i := range users {
		if _, err := hit(http.DefaultClient, frontURL, i, password); err != nil {
			b.Fatal(err)
		}
	}
	for _, mode := range []struct {
		keepAlive bool
		routers   int
	}{{false, concurrency}, {true, concurrency}, {false, users}, {true, users}} {
		keepAlive, routers := mode.keepAlive, mode.routers
		var frontRates, bareRates, checkRates, ratios, checkRatios []float64
		for round := range rounds {
			order := []string{"front", "bare", "check"}
			if round%2 == 1 {
				order = []string{"check", "bare", "front"}
			}
			var f, r, c float64
			for _, which := range order {
				switch which {
				case "front":
					f = rate(b, frontURL, password, routers, keepAlive, "nochg ")
				case "bare":
					r = rate(b, bareURL, password, routers, keepAlive, "nochg ")
				case "check":
					if !inproc {
						c = rate(b, checkURL, password, routers, keepAlive, "nochg ")
					}
				}
			}
			frontRates, bareRates, ratios = append(frontRates, f), append(bareRates, r), append(ratios, f/r)
			if !inproc {
				checkRates, checkRatios = append(checkRates, c), append(checkRatios, f/c)
			}
		}
		conn := "new connection per request"
		if keepAlive {
			conn = "keep-alive"
		}
		fmt.Printf("HTTP front (%s), %d routers, %s: nochg %.0f/s, bare Basic-auth handler %.0f/s; front ÷ bare %.2f (rounds %s)\n",
			*httpPrimary, routers, conn, median(frontRates), median(bareRates), median(ratios), fmtRatios(ratios))
		if !inproc {
			fmt.Printf("    bare handler with one signed check per request %.0f/s; front ÷ that %.2f (rounds %s)\n",
				median(checkRates), median(checkRatios), fmtRatios(checkRatios))
		}
	}
}

// inprocZone loads a zone with the 64 routers' hosts, as sshdyn serve
// loads the zone it serves itself.
func inprocZone(b *testing.B) *zone.Zone {
	file := filepath.Join(b.TempDir(), "zone")
	if err := os.WriteFile(file, []byte("$ORIGIN dyn.example.com.\n$TTL 60\n@ SOA ns hostmaster 1 3600 600 86400 60\n@ NS ns\nns A 192.0.2.53\n"), 0o644); err != nil {
		b.Fatal(err)
	}
	z, err := zone.Load(zone.Config{Origin: "dyn.example.com", File: file})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { z.Close() })
	return z
}

// serveBench serves h on a loopback port with serve's settings.
func serveBench(b *testing.B, h http.Handler) (url string, stop func()) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	hs := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second,
		WriteTimeout: 35 * time.Second, IdleTimeout: 60 * time.Second, MaxHeaderBytes: 8 << 10}
	go hs.Serve(l)
	return "http://" + l.Addr().String(), func() { hs.Shutdown(context.Background()) }
}

// hit sends router i's request and returns the answer.
func hit(c *http.Client, base string, i int, password string) (string, error) {
	req, err := http.NewRequest(http.MethodGet, fmt.Sprintf("%s/nic/update?hostname=r%d.dyn.example.com", base, i), nil)
	if err != nil {
		return "", err
	}
	req.SetBasicAuth(fmt.Sprintf("r%d", i), password)
	resp, err := c.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return string(body), fmt.Errorf("HTTP %d: %s", resp.StatusCode, body)
	}
	return string(body), err
}

// rate runs routers routers against base for warmFor, then counts the
// answers that start with want for roundFor, and returns them per second.
func rate(b *testing.B, base, password string, routers int, keepAlive bool, want string) float64 {
	var n, bad atomic.Int64
	var counting atomic.Bool
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for i := range routers {
		c := &http.Client{Transport: &http.Transport{DisableKeepAlives: !keepAlive, MaxIdleConnsPerHost: 1}}
		wg.Go(func() {
			defer c.CloseIdleConnections()
			for ctx.Err() == nil {
				out, err := hit(c, base, i, password)
				switch {
				case !counting.Load():
				case err == nil && strings.HasPrefix(out, want):
					n.Add(1)
				case ctx.Err() == nil:
					bad.Add(1)
				}
			}
		})
	}
	time.Sleep(warmFor)
	counting.Store(true)
	start := time.Now()
	time.Sleep(roundFor)
	counting.Store(false)
	took := time.Since(start)
	cancel()
	wg.Wait()
	if bad.Load() > 0 {
		b.Errorf("%s: %d answers were not %q", base, bad.Load(), want)
	}
	return float64(n.Load()) / took.Seconds()
}

func fmtRatios(xs []float64) string {
	out := make([]string, len(xs))
	for i, x := range xs {
		out[i] = fmt.Sprintf("%.2f", x)
	}
	return strings.Join(out, " ")
}
