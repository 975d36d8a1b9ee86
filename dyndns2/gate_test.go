package dyndns2

import (
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// TestPasswordChecksAreBounded: audit finding H1. A burst of concurrent
// requests with wrong passwords, from one source and from many, never
// has more comparisons running than the caps (one per source,
// PasswordChecks in all); a source's failures are counted before its
// next comparison, so one source's burst gets a few comparisons and
// then 429 with Retry-After; and a known user's right password still
// gets in from another source during the burst.
func TestPasswordChecksAreBounded(t *testing.T) {
	e := newEnv(t, ",allow-private")
	e.srv.PasswordChecks = 2
	e.srv.PasswordWait = 5 * time.Second
	e.srv.Service.FailPenalty = 10 * time.Second
	e.srv.Service.FailGrace = 25 * time.Second // refused after the 3rd failure
	// Each comparison takes 100 ms, whatever the race detector does to
	// bcrypt's speed (cost 12 takes seconds under -race).
	e.srv.compare = func(hash, pw []byte) error {
		time.Sleep(100 * time.Millisecond)
		if string(hash) == string(dummyHash()) {
			return bcrypt.ErrMismatchedHashAndPassword
		}
		return bcrypt.CompareHashAndPassword(hash, pw) // the lines' hashes: cost 4
	}

	type answer struct {
		code  int
		retry string
	}
	burst := func(src string, n int, user string) []answer {
		c := &http.Client{Transport: &http.Transport{DialContext: dialFrom(src), DisableKeepAlives: true}}
		out := make([]answer, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				req, _ := http.NewRequest(http.MethodGet, e.url+"/nic/update?myip=192.0.2.1", nil)
				req.SetBasicAuth(user, "wrong password "+strconv.Itoa(i))
				resp, err := c.Do(req)
				if err != nil {
					t.Error(err)
					return
				}
				resp.Body.Close()
				out[i] = answer{resp.StatusCode, resp.Header.Get("Retry-After")}
			})
		}
		wg.Wait()
		return out
	}

	// One source, unknown users (compared against the dummy hash).
	got := burst("127.0.0.1", 30, "nobody")
	refused, denied := 0, 0
	for _, a := range got {
		switch a.code {
		case http.StatusTooManyRequests:
			refused++
			if n, err := strconv.Atoi(a.retry); err != nil || n < 1 {
				t.Errorf("429 with Retry-After %q", a.retry)
			}
		case http.StatusUnauthorized:
			denied++
		default:
			t.Errorf("HTTP %d", a.code)
		}
	}
	if p := e.srv.gate.peak.Load(); p > 1 {
		t.Errorf("%d comparisons at once from one source, want at most 1", p)
	}
	if n := e.srv.gate.compared.Load(); n > 3 || denied != int(n) {
		t.Errorf("one source's burst of 30 made %d comparisons (%d answered 401); want at most 3, one per 401", n, denied)
	}
	if refused < 27 {
		t.Errorf("%d of 30 refused with 429, want at least 27", refused)
	}
	t.Logf("one source: %d comparisons, %d × 401, %d × 429", e.srv.gate.compared.Load(), denied, refused)

	// Many sources at once, while the right password comes from yet
	// another source: at most 2 comparisons at once, and it gets in.
	e.srv.gate.peak.Store(0)
	var wg sync.WaitGroup
	for i := 2; i <= 5; i++ {
		wg.Go(func() { burst("127.0.0."+strconv.Itoa(i), 3, "nobody") })
	}
	time.Sleep(50 * time.Millisecond)
	c := &http.Client{Transport: &http.Transport{DialContext: dialFrom("127.0.0.8")}}
	req, _ := http.NewRequest(http.MethodGet, e.url+"/nic/update?hostname=a."+e.p.Zone+"&myip=192.0.2.9", nil)
	req.SetBasicAuth("router", password)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	wg.Wait()
	if p := e.srv.gate.peak.Load(); p > 2 {
		t.Errorf("%d comparisons at once over every source, want at most PasswordChecks = 2", p)
	}
	if p := e.srv.gate.peak.Load(); p < 2 {
		t.Errorf("peak %d: the test did not load the gate", p)
	}
	if resp.StatusCode != 200 {
		t.Errorf("the right password during the burst: HTTP %d", resp.StatusCode)
	}
}

// TestConnectionCaps: audit finding H1. The HTTP front holds at most
// perSource connections from one source and max in all; one over a cap
// is closed before it is read, and closing one frees its place.
func TestConnectionCaps(t *testing.T) {
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var refusedMu sync.Mutex
	refused := 0
	l := LimitListener(raw, 5, 3, func(net.Addr) { refusedMu.Lock(); refused++; refusedMu.Unlock() })
	hs := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	hs.Listener = l
	hs.Start()
	t.Cleanup(hs.Close)
	addr := raw.Addr().String()
	dial := func(src string) net.Conn {
		c, err := dialFrom(src)(t.Context(), "tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	// alive reports whether the server answers a request on c.
	alive := func(c net.Conn) bool {
		c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")); err != nil {
			return false
		}
		buf := make([]byte, 12)
		n, _ := c.Read(buf)
		return strings.HasPrefix(string(buf[:n]), "HTTP/1.1 200")
	}
	var held []net.Conn
	for range 3 {
		c := dial("127.0.0.1")
		if !alive(c) {
			t.Fatal("a connection within the caps was refused")
		}
		held = append(held, c)
	}
	if alive(dial("127.0.0.1")) {
		t.Error("a 4th connection from one source was served (per-source cap 3)")
	}
	c4, c5 := dial("127.0.0.2"), dial("127.0.0.3")
	if !alive(c4) || !alive(c5) {
		t.Fatal("other sources were refused under the total cap")
	}
	if alive(dial("127.0.0.4")) {
		t.Error("a 6th connection was served (total cap 5)")
	}
	held[0].Close()
	waitUntil(t, func() bool { return l.(interface{ Open() int }).Open() == 4 })
	if !alive(dial("127.0.0.1")) {
		t.Error("a closed connection did not free its place")
	}
	refusedMu.Lock()
	defer refusedMu.Unlock()
	if refused != 2 {
		t.Errorf("refused called %d times, want 2", refused)
	}
}

func waitUntil(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 5 s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
