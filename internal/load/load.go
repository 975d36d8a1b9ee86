// Package load drives an SSH server with many concurrent clients, each
// logging in with its own key and running one command per connection, and
// measures throughput, latency and failures. cmd/sshdyn-load and the
// benchmark suite (bench/) use it.
package load

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/sshdyn/sshdyn/internal/sockopt"
)

// Client is one simulated host: its key, and the source addresses it
// connects from in turn (none: the kernel picks). Two addresses make
// every other update a change; the turn carries over from one Run to the
// next when the Client is reused.
type Client struct {
	Signer  ssh.Signer
	Sources []netip.Addr
	turn    *atomic.Uint32
}

// source returns the address for the client's next connection.
func (c Client) source() netip.Addr {
	switch {
	case len(c.Sources) == 0:
		return netip.Addr{}
	case c.turn == nil || len(c.Sources) == 1:
		return c.Sources[0]
	}
	return c.Sources[int(c.turn.Add(1)-1)%len(c.Sources)]
}

// Config is one load run.
type Config struct {
	Addr    string        // the server, host:port
	User    string        // SSH user name; default "load"
	HostKey ssh.PublicKey // pinned host key; nil accepts any (loopback benchmarks only)
	Command string        // run on each connection, e.g. "update"
	Clients []Client      // worker i uses Clients[i%len(Clients)], then the next in turn
	// KeyExchanges, if set, replaces x/crypto's client defaults, e.g.
	// []string{"curve25519-sha256"} to match OpenSSH 9.2.
	KeyExchanges []string

	// Closed loop: Concurrency workers, each starting a new connection as
	// soon as its last one ends, until Count connections (0: no limit) or
	// Duration (0: no limit) have passed.
	Concurrency int
	Count       int
	Duration    time.Duration
	// Open loop, when Rate > 0: Count connections started at Rate per
	// second, whether or not earlier ones have ended (a cron burst).
	Rate float64

	Timeout time.Duration // per connection, dial to exit; default 60s
}

// Result is what a run measured.
type Result struct {
	Started, Done int
	Elapsed       time.Duration     // first start to last end
	Latencies     []time.Duration   // of the connections that succeeded, sorted
	Errors        map[string]int    // failures by kind: "dial", "handshake", "exit 75", ...
	Examples      map[string]string // the first error of each kind, for the log
	Outputs       map[string]int    // successes by the first word of stdout: "good", "nochg", ...
}

// Throughput is successful connections per second.
func (r *Result) Throughput() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(len(r.Latencies)) / r.Elapsed.Seconds()
}

// Failures is the number of connections that failed.
func (r *Result) Failures() int {
	n := 0
	for _, c := range r.Errors {
		n += c
	}
	return n
}

// Percentile returns the p-th percentile (0-100) of the successful
// connections' latency.
func (r *Result) Percentile(p float64) time.Duration {
	if len(r.Latencies) == 0 {
		return 0
	}
	i := int(float64(len(r.Latencies)-1) * p / 100)
	return r.Latencies[i]
}

// String is one line: throughput, latency percentiles, outputs, errors.
func (r *Result) String() string {
	s := fmt.Sprintf("%d ok in %.2fs: %.1f/s, p50 %s p90 %s p99 %s, outputs %s, errors %s",
		len(r.Latencies), r.Elapsed.Seconds(), r.Throughput(),
		round(r.Percentile(50)), round(r.Percentile(90)), round(r.Percentile(99)),
		counts(r.Outputs), counts(r.Errors))
	for _, k := range sortedKeys(r.Examples) {
		s += fmt.Sprintf("; first %s error: %s", k, r.Examples[k])
	}
	return s
}

func round(d time.Duration) time.Duration {
	if d > 10*time.Millisecond {
		return d.Round(time.Millisecond)
	}
	return d.Round(10 * time.Microsecond)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func counts(m map[string]int) string {
	if len(m) == 0 {
		return "none"
	}
	var b strings.Builder
	for i, k := range sortedKeys(m) {
		if i > 0 {
			b.WriteString(" ")
		}
		fmt.Fprintf(&b, "%s=%d", k, m[k])
	}
	return b.String()
}

// Run runs the load until its Count or Duration is reached or ctx ends.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if len(cfg.Clients) == 0 || cfg.Addr == "" || cfg.Command == "" {
		return nil, errors.New("load: Addr, Command and at least one client are needed")
	}
	if cfg.Rate <= 0 && cfg.Concurrency <= 0 {
		return nil, errors.New("load: Concurrency or Rate is needed")
	}
	if cfg.Rate > 0 && cfg.Count <= 0 {
		return nil, errors.New("load: an open-loop run (Rate) needs a Count")
	}
	if cfg.Count <= 0 && cfg.Duration <= 0 {
		return nil, errors.New("load: Count or Duration is needed")
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 60 * time.Second
	}
	if cfg.Duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, cfg.Duration)
		defer cancel()
	}
	if cfg.User == "" {
		cfg.User = "load"
	}
	r := &run{cfg: cfg, res: &Result{Errors: map[string]int{}, Examples: map[string]string{}, Outputs: map[string]int{}}}
	start := time.Now()
	var wg sync.WaitGroup
	if cfg.Rate > 0 {
		interval := time.Duration(float64(time.Second) / cfg.Rate)
	open:
		for i := 0; i < cfg.Count; i++ {
			if d := time.Until(start.Add(time.Duration(i) * interval)); d > 0 {
				select {
				case <-time.After(d):
				case <-ctx.Done():
					break open
				}
			}
			wg.Add(1)
			go func(i int) { defer wg.Done(); r.one(context.WithoutCancel(ctx), i) }(i)
		}
	} else {
		var next sync.Mutex
		n := 0
		for w := 0; w < cfg.Concurrency; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for !over(ctx) {
					next.Lock()
					i := n
					n++
					next.Unlock()
					if cfg.Count > 0 && i >= cfg.Count {
						return
					}
					r.one(ctx, i)
				}
			}()
		}
	}
	wg.Wait()
	r.res.Elapsed = time.Since(start)
	slices.Sort(r.res.Latencies)
	return r.res, nil
}

type run struct {
	cfg Config
	mu  sync.Mutex
	res *Result
}

// one makes connection i: dial, log in, run the command, wait for exit.
// A connection cut short by the end of a timed run is not counted.
func (r *run) one(ctx context.Context, i int) {
	c := r.cfg.Clients[i%len(r.cfg.Clients)]
	src := c.source()
	r.mu.Lock()
	r.res.Started++
	r.mu.Unlock()

	start := time.Now()
	out, kind, err := r.session(ctx, c.Signer, src)
	took := time.Since(start)

	r.mu.Lock()
	defer r.mu.Unlock()
	if kind != "" && over(ctx) {
		return // the run's end cut it short
	}
	r.res.Done++
	if kind != "" {
		r.res.Errors[kind]++
		if _, ok := r.res.Examples[kind]; !ok && err != nil {
			r.res.Examples[kind] = err.Error()
		}
		return
	}
	r.res.Latencies = append(r.res.Latencies, took)
	word, _, _ := strings.Cut(strings.TrimSpace(out), " ")
	r.res.Outputs[word]++
}

// over reports whether ctx has ended or its deadline has passed. A timer
// cancels ctx a little after its deadline; a context made from it in that
// gap is already cancelled, so ctx.Err alone would count a connection the
// run's end cut short as a failure.
func over(ctx context.Context) bool {
	if ctx.Err() != nil {
		return true
	}
	d, ok := ctx.Deadline()
	return ok && !time.Now().Before(d)
}

// session returns stdout on exit status 0, or the kind of failure and
// its error.
func (r *run) session(ctx context.Context, signer ssh.Signer, src netip.Addr) (string, string, error) {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.Timeout)
	defer cancel()
	start := time.Now()
	conn, err := dialer(src).DialContext(ctx, "tcp", r.cfg.Addr)
	if err != nil {
		return "", "dial", fmt.Errorf("%w (after %s)", err, time.Since(start).Round(time.Millisecond))
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	defer conn.Close()
	hk := ssh.InsecureIgnoreHostKey()
	if r.cfg.HostKey != nil {
		hk = ssh.FixedHostKey(r.cfg.HostKey)
	}
	cc := &ssh.ClientConfig{User: r.cfg.User, Auth: []ssh.AuthMethod{ssh.PublicKeys(signer)}, HostKeyCallback: hk}
	cc.KeyExchanges = r.cfg.KeyExchanges
	sc, chans, reqs, err := ssh.NewClientConn(conn, r.cfg.Addr, cc)
	if err != nil {
		if ctx.Err() != nil {
			return "", "timeout", err
		}
		return "", "handshake", err
	}
	client := ssh.NewClient(sc, chans, reqs)
	defer client.Close()
	sess, err := client.NewSession()
	if err != nil {
		return "", "session", err
	}
	defer sess.Close()
	var stdout, stderr bytes.Buffer
	sess.Stdout = &stdout
	sess.Stderr = &stderr
	err = sess.Run(r.cfg.Command)
	var ee *ssh.ExitError
	switch {
	case err == nil:
		return stdout.String(), "", nil
	case errors.As(err, &ee):
		return "", fmt.Sprintf("exit %d", ee.ExitStatus()), fmt.Errorf("%w: %s", err, strings.TrimSpace(stderr.String()))
	case ctx.Err() != nil:
		return "", "timeout", err
	}
	return "", "session", err
}

// dialer connects from src, if valid, with the source port picked per
// destination (sockopt.BindAddressNoPort).
func dialer(src netip.Addr) *net.Dialer {
	d := &net.Dialer{}
	if src.IsValid() {
		d.LocalAddr = &net.TCPAddr{IP: src.AsSlice()}
		d.Control = sockopt.BindAddressNoPort
	}
	return d
}
