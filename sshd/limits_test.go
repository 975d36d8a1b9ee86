package sshd

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/sshdyn/sshdyn/authorized"
	"github.com/sshdyn/sshdyn/backend"
	"github.com/sshdyn/sshdyn/internal/dnstest"
	"github.com/sshdyn/sshdyn/publish"
	"github.com/sshdyn/sshdyn/update"
)

// dialFrom opens a TCP connection to addr from the loopback source src.
func dialFrom(t *testing.T, src, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// closedQuickly reports whether the server closes c without a word.
func closedQuickly(c net.Conn) bool {
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	n, err := c.Read(make([]byte, 64))
	return n == 0 && err == io.EOF
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestUnauthenticatedLimitPerSource(t *testing.T) {
	a, b := newSigner(t), newSigner(t)
	env := startServerOpts(t, a, b, "", func(s *Server) {
		s.Service.AllowPrivate = true
		s.MaxUnauthenticatedPerSource = 3
		s.LoginTimeout = 20 * time.Second
	})
	var held []net.Conn
	for i := 0; i < 3; i++ {
		held = append(held, dialFrom(t, "127.0.0.1", env.addr))
	}
	waitFor(t, "3 unauthenticated connections", func() bool { return env.srv.Unauthenticated() == 3 })
	extra := dialFrom(t, "127.0.0.1", env.addr)
	if !closedQuickly(extra) {
		t.Error("a 4th unauthenticated connection from the same source was not refused")
	}
	extra.Close()
	// Another source is not affected, and can log in and update.
	other := dialFrom(t, "127.0.0.2", env.addr)
	sc, chans, reqs, err := gossh.NewClientConn(other, env.addr, &gossh.ClientConfig{User: "u", HostKeyCallback: gossh.InsecureIgnoreHostKey(), Auth: []gossh.AuthMethod{gossh.PublicKeys(a)}})
	if err != nil {
		t.Fatalf("other source refused: %v", err)
	}
	c := gossh.NewClient(sc, chans, reqs)
	if out, _, code := run(t, c, "update"); code != 0 || out != "good a."+env.dns.Zone+" A 127.0.0.2\n" {
		t.Errorf("update from another source = %q exit %d", out, code)
	}
	c.Close()
	// Authenticated connections do not count: closing the held ones frees
	// the source's slots.
	for _, h := range held {
		h.Close()
	}
	waitFor(t, "the gate to empty", func() bool { return env.srv.Unauthenticated() == 0 })
	again := dialFrom(t, "127.0.0.1", env.addr)
	defer again.Close()
	again.SetReadDeadline(time.Now().Add(2 * time.Second))
	if banner, err := io.ReadAll(io.LimitReader(again, 8)); err != nil || string(banner) != "SSH-2.0-" {
		t.Errorf("after the held connections closed: %q, %v", banner, err)
	}
}

func openFDs(t *testing.T) int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// TestManyStalledConnections: 2,000 stalled connections (TCP open, half of
// them sending only a banner) from 20 sources are held while a real client
// still updates; afterwards goroutines and file descriptors return to the
// baseline.
func TestManyStalledConnections(t *testing.T) {
	a, b := newSigner(t), newSigner(t)
	env := startServerOpts(t, a, b, "", func(s *Server) {
		s.Service.AllowPrivate = true
		s.LoginTimeout = 30 * time.Second
	})
	runtime.GC()
	baseG, baseFD := runtime.NumGoroutine(), openFDs(t)

	const sources, perSource = 20, 100
	var stalled []net.Conn
	for i := 0; i < sources; i++ {
		src := "127.0.1." + itoa(i+1)
		for j := 0; j < perSource; j++ {
			c := dialFrom(t, src, env.addr)
			if j%2 == 1 {
				io.WriteString(c, "SSH-2.0-stalled\r\n")
			}
			stalled = append(stalled, c)
		}
	}
	waitFor(t, "2000 held connections", func() bool { return env.srv.Unauthenticated() == sources*perSource })
	t.Logf("held %d unauthenticated connections; goroutines %d -> %d", env.srv.Unauthenticated(), baseG, runtime.NumGoroutine())

	c, err := dial(env, a)
	if err != nil {
		t.Fatalf("real client refused while 2000 connections stall: %v", err)
	}
	if out, _, code := run(t, c, "update"); code != 0 || !strings.HasPrefix(out, "good ") {
		t.Errorf("update = %q exit %d", out, code)
	}
	c.Close()

	for _, s := range stalled {
		s.Close()
	}
	waitFor(t, "the gate to empty", func() bool { return env.srv.Unauthenticated() == 0 })
	waitFor(t, "goroutines back to baseline", func() bool { return runtime.NumGoroutine() <= baseG+5 })
	waitFor(t, "file descriptors back to baseline", func() bool { return openFDs(t) <= baseFD+5 })
}

func itoa(i int) string {
	const digits = "0123456789"
	if i < 10 {
		return digits[i : i+1]
	}
	return itoa(i/10) + digits[i%10:i%10+1]
}

// TestRequestLimitPerKey: status and nochg updates count toward
// max_requests_per_key; over it the client gets one line and exit 75,
// and another key is not affected (audit M1).
func TestRequestLimitPerKey(t *testing.T) {
	a, b := newSigner(t), newSigner(t)
	env := startServerOpts(t, a, b, "", func(s *Server) {
		s.Service.AllowPrivate = true
		s.Service.MaxRequestsPerKey = 3
	})
	c := login(t, env, a)
	for _, cmd := range []string{"update", "update", "status"} {
		if _, errOut, code := run(t, c, cmd); code != 0 {
			t.Fatalf("%s within the limit: exit %d %q", cmd, code, errOut)
		}
	}
	for _, cmd := range []string{"update", "status"} {
		out, errOut, code := run(t, c, cmd)
		if code != ExitTempFail || out != "" || !strings.HasPrefix(errOut, "sshdyn: not now: too many requests for this key; try again in ") || strings.Count(errOut, "\n") != 1 {
			t.Fatalf("%s over the limit = %q %q exit %d, want one line and exit %d", cmd, out, errOut, code, ExitTempFail)
		}
	}
	if _, _, code := run(t, login(t, env, b), "status"); code != 0 {
		t.Errorf("other key's status: exit %d", code)
	}
}

// dialKeyFrom logs in with key from the loopback source src.
func dialKeyFrom(t *testing.T, env *testEnv, key gossh.Signer, src string) *gossh.Client {
	t.Helper()
	conn := dialFrom(t, src, env.addr)
	sc, chans, reqs, err := gossh.NewClientConn(conn, env.addr, &gossh.ClientConfig{User: "u", HostKeyCallback: gossh.InsecureIgnoreHostKey(), Auth: []gossh.AuthMethod{gossh.PublicKeys(key)}})
	if err != nil {
		t.Fatal(err)
	}
	c := gossh.NewClient(sc, chans, reqs)
	t.Cleanup(func() { c.Close() })
	return c
}

func TestWriteLimitPerKey(t *testing.T) {
	a, b := newSigner(t), newSigner(t)
	env := startServerOpts(t, a, b, "", func(s *Server) {
		s.Service.AllowPrivate = true
		s.Service.MaxChangesPerKey = 2
		s.Service.ChangeWindow = time.Hour
	})
	host := "a." + env.dns.Zone
	for _, src := range []string{"127.0.0.1", "127.0.0.2"} {
		if out, _, code := run(t, dialKeyFrom(t, env, a, src), "update"); code != 0 || out != "good "+host+" A "+src+"\n" {
			t.Fatalf("update from %s = %q exit %d", src, out, code)
		}
	}
	serial := env.dns.Serial(t)
	out, errOut, code := run(t, dialKeyFrom(t, env, a, "127.0.0.3"), "update")
	if code != ExitTempFail || out != "" || !strings.Contains(errOut, "too many changes for this key; try again in") {
		t.Fatalf("third change = %q %q exit %d, want exit %d", out, errOut, code, ExitTempFail)
	}
	if got := env.dns.Lookup(t, host, 1); len(got) != 1 || got[0] != "127.0.0.2" || env.dns.Serial(t) != serial {
		t.Errorf("DNS changed over the limit: %v", got)
	}
	// nochg never counts and still answers.
	if out, _, code := run(t, dialKeyFrom(t, env, a, "127.0.0.2"), "update"); code != 0 || !strings.HasPrefix(out, "nochg ") {
		t.Errorf("nochg over the limit = %q exit %d", out, code)
	}
	// Another key has its own budget.
	if out, _, code := run(t, dialKeyFrom(t, env, b, "127.0.0.3"), "update"); code != 0 || !strings.HasPrefix(out, "good ") {
		t.Errorf("other key = %q exit %d", out, code)
	}
}

func TestFailedLoginsPenalizeTheSource(t *testing.T) {
	a, b := newSigner(t), newSigner(t)
	env := startServerOpts(t, a, b, "", func(s *Server) {
		s.Service.AllowPrivate = true
		s.Service.FailPenalty = 10 * time.Second
		s.Service.FailGrace = 25 * time.Second // the third failure crosses it
	})
	stranger := newSigner(t)
	login := func(key gossh.Signer, src string) error {
		conn := dialFrom(t, src, env.addr)
		defer conn.Close()
		sc, chans, reqs, err := gossh.NewClientConn(conn, env.addr, &gossh.ClientConfig{User: "u", HostKeyCallback: gossh.InsecureIgnoreHostKey(), Auth: []gossh.AuthMethod{gossh.PublicKeys(key)}})
		if err != nil {
			return err
		}
		gossh.NewClient(sc, chans, reqs).Close()
		return nil
	}
	for i := 0; i < 3; i++ {
		if err := login(stranger, "127.0.0.7"); err == nil || !strings.Contains(err.Error(), "unable to authenticate") {
			t.Fatalf("failed login %d: %v", i+1, err)
		}
	}
	// Penalized: even the right key is turned away, before the banner.
	waitFor(t, "the penalty", func() bool {
		c := dialFrom(t, "127.0.0.7", env.addr)
		defer c.Close()
		return closedQuickly(c)
	})
	if err := login(a, "127.0.0.7"); err == nil {
		t.Error("penalized source could log in")
	}
	// Other sources are not affected.
	if err := login(a, "127.0.0.8"); err != nil {
		t.Errorf("another source: %v", err)
	}
}

func heapAfterGC() uint64 {
	var m runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// TestFloodsKeepMemoryFlat: 20,000 env requests of 1 KiB each (20 MiB if
// they were kept) and 5,000 refused channel opens on one connection leave
// the heap where it was.
func TestFloodsKeepMemoryFlat(t *testing.T) {
	a, b := newSigner(t), newSigner(t)
	env := startServer(t, a, b)
	c := login(t, env, a)
	s, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	before := heapAfterGC()
	value := strings.Repeat("x", 1024)
	for i := 0; i < 20000; i++ {
		if err := s.Setenv("V"+itoa(i), value); err == nil {
			t.Fatal("env request granted")
		}
	}
	for i := 0; i < 5000; i++ {
		if _, _, err := c.OpenChannel("x11", nil); err == nil {
			t.Fatal("x11 channel opened")
		}
	}
	after := heapAfterGC()
	grew := int64(after) - int64(before)
	t.Logf("heap %d -> %d bytes (%+d)", before, after, grew)
	if grew > 4<<20 {
		t.Errorf("heap grew by %d bytes during the floods", grew)
	}
	// The connection still serves a command.
	if out, _, code := run(t, c, "ip"); code != 0 || out != "127.0.0.1\n" {
		t.Errorf("ip after the floods = %q exit %d", out, code)
	}
}

// countingBackend passes calls to a real backend and records how many
// were in progress at once.
type countingBackend struct {
	publish.Backend
	active, peak atomic.Int32
}

func (c *countingBackend) enter() func() {
	n := c.active.Add(1)
	for {
		old := c.peak.Load()
		if n <= old || c.peak.CompareAndSwap(old, n) {
			break
		}
	}
	return func() { c.active.Add(-1) }
}

func (c *countingBackend) Set(ctx context.Context, recs []backend.Record, allow func() error) []backend.Result {
	defer c.enter()()
	return c.Backend.Set(ctx, recs, allow)
}

// realClient returns the server's zone's RFC 2136 client.
func realClient(s *Server) *update.Client {
	return s.Service.Zones[0].Backend.(*update.Backend).R.Primary.(*update.Client)
}

// TestDNSInFlightCap: two clients update at once against a slow primary;
// with MaxInFlight 1 their DNS work never overlaps, and both succeed.
func TestDNSInFlightCap(t *testing.T) {
	for _, limit := range []int{1, 2} {
		t.Run(itoa(limit), func(t *testing.T) {
			a, b := newSigner(t), newSigner(t)
			counter := &countingBackend{}
			env := startServerOpts(t, a, b, "", func(s *Server) {
				s.Service.AllowPrivate = true
				s.Service.MaxInFlight = limit
				c := *realClient(s)
				c.Server = dnstest.SlowProxy(t, c.Server, 500*time.Millisecond).Addr
				counter.Backend = update.NewBackend(&c)
				s.Service.Zones = []publish.Zone{{Name: c.Zone, TTL: 60, Backend: counter}}
			})
			results := make(chan string, 2)
			for _, k := range []gossh.Signer{a, b} {
				go func() {
					c, err := dial(env, k)
					if err != nil {
						results <- err.Error()
						return
					}
					defer c.Close()
					s, _ := c.NewSession()
					out, _ := s.Output("update")
					results <- string(out)
				}()
			}
			for i := 0; i < 2; i++ {
				if r := <-results; !strings.HasPrefix(r, "good ") {
					t.Errorf("update %d = %q", i, r)
				}
			}
			if p := int(counter.peak.Load()); p != limit {
				t.Errorf("%d DNS exchanges at once, want %d", p, limit)
			}
		})
	}
}

// TestDNSFaultsReachTheClient: each fault a real primary produces gives
// the client one line and the documented exit status, and changes nothing.
func TestDNSFaultsReachTheClient(t *testing.T) {
	cases := []struct {
		name   string
		modify func(*update.Client)
		code   int
		line   string
	}{
		{"BADSIG", func(c *update.Client) { c.Key.Secret = "d3Jvbmctc2VjcmV0LXdyb25nLXNlY3JldA==" }, ExitConfig, "(credentials)"},
		{"BADKEY", func(c *update.Client) { c.Key.Name = "nobody." }, ExitConfig, "(credentials)"},
		{"BADTIME", func(c *update.Client) { c.Now = func() time.Time { return time.Now().Add(-time.Hour) } }, ExitConfig, "(credentials)"},
		{"NOTZONE", func(c *update.Client) { c.Zone = "other.example.org" }, ExitConfig, "(notzone)"},
		{"refused connection", func(c *update.Client) { c.Server = "127.0.0.1:1" }, ExitTempFail, "temporary failure (DNS primary unreachable)"},
		{"slow past the timeout", nil, ExitTempFail, "temporary failure (DNS primary timeout)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a, b := newSigner(t), newSigner(t)
			env := startServerOpts(t, a, b, "", func(s *Server) {
				s.Service.AllowPrivate = true
				c := *realClient(s)
				if tc.modify != nil {
					tc.modify(&c)
				} else { // slow: a proxy holds each exchange past the timeout
					c.Server = dnstest.SlowProxy(t, c.Server, 2*time.Second).Addr
					c.Timeout = 300 * time.Millisecond
				}
				s.Service.Zones = []publish.Zone{{Name: s.Service.Zones[0].Name, TTL: 60, Backend: update.NewBackend(&c)}}
			})
			serial := env.dns.Serial(t)
			cl, err := dial(env, a)
			if err != nil {
				t.Fatal(err)
			}
			defer cl.Close()
			out, errOut, code := run(t, cl, "update")
			if code != tc.code || out != "" || strings.Count(errOut, "\n") != 1 || !strings.Contains(errOut, tc.line) {
				t.Errorf("= %q %q exit %d; want one line containing %q, exit %d", out, errOut, code, tc.line, tc.code)
			}
			if env.dns.Serial(t) != serial || len(env.dns.Lookup(t, "a."+env.dns.Zone, 1)) != 0 {
				t.Error("DNS changed")
			}
		})
	}
}

func TestMaxAuthTries(t *testing.T) {
	a, b := newSigner(t), newSigner(t)
	env := startServer(t, a, b)
	var signers []gossh.Signer
	for i := 0; i < 10; i++ {
		signers = append(signers, newSigner(t)) // none of them authorized
	}
	signers = append(signers, a) // the right key, 11th
	_, err := gossh.Dial("tcp", env.addr, &gossh.ClientConfig{User: "u", HostKeyCallback: gossh.InsecureIgnoreHostKey(),
		Auth: []gossh.AuthMethod{gossh.PublicKeys(signers...)}})
	if err == nil {
		t.Fatal("logged in after 10 failed keys; MaxAuthTries is 6")
	}
}

func TestStallMidHandshakeIsDropped(t *testing.T) {
	a, b := newSigner(t), newSigner(t)
	env := startServer(t, a, b) // LoginTimeout 2s
	conn, err := net.Dial("tcp", env.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	io.WriteString(conn, "SSH-2.0-stall\r\n") // banner, then nothing: stuck in key exchange
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	start := time.Now()
	if _, err := io.Copy(io.Discard, conn); err != nil {
		t.Fatalf("not dropped: %v", err)
	}
	if d := time.Since(start); d < time.Second || d > 5*time.Second {
		t.Errorf("dropped after %v, want about the 2s login timeout", d)
	}
}

func TestSessionTimeout(t *testing.T) {
	a, b := newSigner(t), newSigner(t)
	env := startServerOpts(t, a, b, "", func(s *Server) { s.Service.AllowPrivate = true; s.SessionTimeout = time.Second })
	c := login(t, env, a)
	done := make(chan error, 1)
	go func() { done <- c.Wait() }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("idle authenticated connection outlived the 1s session timeout")
	}
}

// TestGateTotalLimitQueues: over max_unauthenticated a new connection is
// not refused; it waits, unanswered, in the listen queue, and gets the
// banner as soon as a slot frees. A source over its own limit is still
// refused at once.
func TestGateTotalLimitQueues(t *testing.T) {
	a, b := newSigner(t), newSigner(t)
	env := startServerOpts(t, a, b, "", func(s *Server) {
		s.Service.AllowPrivate = true
		s.MaxUnauthenticated = 3
		s.MaxUnauthenticatedPerSource = 2
		s.LoginTimeout = 20 * time.Second
	})
	held := []net.Conn{dialFrom(t, "127.0.0.1", env.addr), dialFrom(t, "127.0.0.1", env.addr)}
	waitFor(t, "2 unauthenticated connections", func() bool { return env.srv.Unauthenticated() == 2 })
	if extra := dialFrom(t, "127.0.0.1", env.addr); !closedQuickly(extra) {
		t.Error("a 3rd connection from a source with a limit of 2 was not refused")
	}
	held = append(held, dialFrom(t, "127.0.0.2", env.addr))
	waitFor(t, "3 unauthenticated connections", func() bool { return env.srv.Unauthenticated() == 3 })

	queued := dialFrom(t, "127.0.0.3", env.addr) // the kernel completes the TCP handshake
	defer queued.Close()
	queued.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	var ne net.Error
	if n, err := queued.Read(make([]byte, 8)); n != 0 || !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("over the total limit: read %d bytes, %v; want no answer yet", n, err)
	}
	held[0].Close()
	queued.SetReadDeadline(time.Now().Add(5 * time.Second))
	if banner, err := io.ReadAll(io.LimitReader(queued, 8)); err != nil || string(banner) != "SSH-2.0-" {
		t.Fatalf("after a slot freed: %q, %v; want the banner", banner, err)
	}
	for _, h := range held[1:] {
		h.Close()
	}
	waitFor(t, "the gate to hold only the queued connection", func() bool { return env.srv.Unauthenticated() == 1 })
}

func TestGateSlots(t *testing.T) {
	g := newGate(3, 2)
	a := netip.MustParseAddr("192.0.2.1")
	done := make(chan struct{})
	for i := 0; i < 3; i++ {
		if !g.acquire(done) {
			t.Fatal("acquire failed with free slots")
		}
	}
	r1, ok1 := g.enter(a)
	_, ok2 := g.enter(a)
	_, ok3 := g.enter(a) // per source
	if !ok1 || !ok2 || ok3 {
		t.Fatalf("admitted %v %v %v, want true true false", ok1, ok2, ok3)
	}
	g.drop() // the refused one gives its slot back
	if g.count() != 2 || len(g.slots) != 2 {
		t.Fatalf("count %d, slots %d; want 2, 2", g.count(), len(g.slots))
	}
	r1()
	r1() // release is idempotent
	if g.count() != 1 || len(g.slots) != 1 {
		t.Fatalf("after one release: count %d, slots %d; want 1, 1", g.count(), len(g.slots))
	}
	if _, ok := g.enter(a); !ok {
		t.Error("a freed per-source slot was not reusable")
	}
	// Full: acquire waits until done is closed.
	g.acquire(done)
	g.acquire(done)
	got := make(chan bool)
	go func() { got <- g.acquire(done) }()
	select {
	case <-got:
		t.Fatal("acquire did not wait on a full gate")
	case <-time.After(50 * time.Millisecond):
	}
	close(done)
	if <-got {
		t.Error("acquire succeeded after done")
	}
}

// TestGateCountsIPv6By64: the per-source cap on connections not logged
// in counts an IPv6 /64 as one source, as the login penalty does: one
// host cannot take every slot with addresses of its /64 (audit finding
// M2).
func TestGateCountsIPv6By64(t *testing.T) {
	g := newGate(100, 2)
	for i, tc := range []struct {
		addr string
		ok   bool
	}{
		{"2001:db8:1:2::1", true}, {"2001:db8:1:2::2", true}, {"2001:db8:1:2:ffff::3", false},
		{"2001:db8:1:3::1", true}, {"198.51.100.1", true}, {"198.51.100.2", true}, {"198.51.100.1", true}, {"198.51.100.1", false},
	} {
		_, ok := g.enter(netip.MustParseAddr(tc.addr))
		if ok != tc.ok {
			t.Errorf("%d: enter(%s) = %v, want %v", i, tc.addr, ok, tc.ok)
		}
	}
}

// TestConnectionsPerKeyAreCapped: one key may have MaxConnsPerKey
// connections logged in at once; over it the login is refused, another
// key is not affected, and a closed connection frees its place (audit
// finding M1).
func TestConnectionsPerKeyAreCapped(t *testing.T) {
	a, b := newSigner(t), newSigner(t)
	env := startServerOpts(t, a, b, "", func(s *Server) { s.Service.AllowPrivate = true; s.MaxConnsPerKey = 2 })
	c1, c2 := login(t, env, a), login(t, env, a)
	if c, err := dial(env, a); err == nil {
		c.Close()
		t.Fatal("a third connection of one key logged in")
	}
	login(t, env, b).Close()
	c1.Close()
	waitFor(t, "the closed connection to free its place", func() bool {
		c, err := dial(env, a)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	if out, _, code := run(t, c2, "ip"); code != 0 || out != "127.0.0.1\n" {
		t.Errorf("the connection within the cap = %q exit %d", out, code)
	}
}

// TestUnreadInputIsBounded: a key that opens session channels and sends
// input, running no command, does not make the server keep that input:
// it is drained. Before, each channel kept up to x/crypto's 2 MiB window
// (4 connections × 4 channels grew the heap by 43 MB; now 2 MB). The figure is
// in docs/security.md (audit finding M1).
func TestUnreadInputIsBounded(t *testing.T) {
	a, b := newSigner(t), newSigner(t)
	env := startServerOpts(t, a, b, "", func(s *Server) { s.Service.AllowPrivate = true })
	before := heapAfterGC()
	const conns, chans, size = 4, 4, 2 << 20
	var wg sync.WaitGroup
	errs := make(chan error, conns*chans)
	var clients []*gossh.Client
	for range conns {
		c := login(t, env, a)
		clients = append(clients, c)
		for range chans {
			ch, reqs, err := c.OpenChannel("session", nil)
			if err != nil {
				t.Fatal(err)
			}
			go gossh.DiscardRequests(reqs)
			wg.Go(func() {
				// Without draining, the write blocks when the 2 MiB window
				// is full: the deadline below ends it.
				_, err := ch.Write(make([]byte, size))
				errs <- err
			})
		}
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		for _, c := range clients {
			c.Close()
		}
		t.Fatal("writing 2 MiB of input to each channel did not finish: the server does not read it")
	}
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	after := heapAfterGC()
	grew := int64(after) - int64(before)
	t.Logf("heap %d -> %d bytes (%+d) with %d channels that sent %d MiB each", before, after, grew, conns*chans, size>>20)
	if grew > 8<<20 {
		t.Errorf("heap grew by %d bytes: the input is kept", grew)
	}
}

// TestRevokedKeysAreDisconnected: after a reload removes a key,
// CloseRevoked closes that key's logged-in connections and leaves the
// others (audit, issue 22: removing a key did not close them).
func TestRevokedKeysAreDisconnected(t *testing.T) {
	a, b := newSigner(t), newSigner(t)
	path := filepath.Join(t.TempDir(), "keys")
	line := func(host string, k gossh.Signer) string {
		return `host="` + host + `.dyn.example.com" ` + string(gossh.MarshalAuthorizedKey(k.PublicKey()))
	}
	if err := os.WriteFile(path, []byte(line("a", a)+line("b", b)), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := authorized.Open(path, authorized.Scope{Zones: []string{"dyn.example.com"}})
	if err != nil {
		t.Fatal(err)
	}
	env := startServerOpts(t, a, b, "", func(s *Server) { s.Service.AllowPrivate = true; s.Hosts = f })
	ca1, ca2, cb := login(t, env, a), login(t, env, a), login(t, env, b)
	if n := env.srv.CloseRevoked(); n != 0 {
		t.Fatalf("CloseRevoked closed %d connections with no key removed", n)
	}
	if err := os.WriteFile(path, []byte(line("b", b)), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := f.Reload(); err != nil {
		t.Fatal(err)
	}
	if n := env.srv.CloseRevoked(); n != 2 {
		t.Fatalf("CloseRevoked closed %d connections, want a's 2", n)
	}
	for i, c := range []*gossh.Client{ca1, ca2} {
		done := make(chan error, 1)
		go func() { done <- c.Wait() }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatalf("a's connection %d still open after its key was removed", i+1)
		}
	}
	if out, _, code := run(t, cb, "ip"); code != 0 || out != "127.0.0.1\n" {
		t.Errorf("b's connection after a's removal: %q exit %d", out, code)
	}
}

// TestStalledConnectionsPenalize: a connection dropped at login_timeout
// counts as a failed login of its source (audit M2: it added no penalty),
// so a source that keeps stalling connections is refused; another source
// is not.
func TestStalledConnectionsPenalize(t *testing.T) {
	a, b := newSigner(t), newSigner(t)
	env := startServerOpts(t, a, b, "", func(s *Server) {
		s.Service.AllowPrivate = true
		s.Service.FailPenalty, s.Service.FailGrace = 10*time.Second, 25*time.Second // the third crosses it
		s.LoginTimeout = 300 * time.Millisecond
	})
	for range 3 {
		conn := dialFrom(t, "127.0.0.5", env.addr)
		conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.Copy(io.Discard, conn); err != nil { // until the server drops it
			t.Fatalf("a stalled connection was not dropped: %v", err)
		}
		conn.Close()
	}
	if left, refused := env.srv.Service.Penalized(netip.MustParseAddr("127.0.0.5")); !refused {
		t.Fatalf("after 3 stalled connections the source is not refused (%v left)", left)
	}
	conn := dialFrom(t, "127.0.0.5", env.addr)
	if _, _, _, err := gossh.NewClientConn(conn, env.addr, &gossh.ClientConfig{User: "u", HostKeyCallback: gossh.InsecureIgnoreHostKey(), Auth: []gossh.AuthMethod{gossh.PublicKeys(a)}}); err == nil {
		t.Error("the penalized source logged in")
	}
	if out, _, code := run(t, dialKeyFrom(t, env, a, "127.0.0.6"), "ip"); code != 0 || out != "127.0.0.6\n" {
		t.Errorf("another source: %q exit %d", out, code)
	}
}
