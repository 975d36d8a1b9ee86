//go:build integration

package update_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/sshdyn/sshdyn/internal/dnstest"
	"github.com/sshdyn/sshdyn/tsig"
	"github.com/sshdyn/sshdyn/update"
)

func newClient(t *testing.T, s *dnstest.Server) *update.Client {
	t.Helper()
	key, err := tsig.Load(s.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	return &update.Client{Server: s.Addr, Zone: s.Zone, Key: key, Timeout: 3 * time.Second}
}

// servingClient returns a client set up as sshdyn serve sets up its own:
// pooled connections, batching, and a memory of what it saw (the
// Remembering in front of it).
func servingClient(t *testing.T, s *dnstest.Server) (*update.Client, *update.Remembering) {
	t.Helper()
	c := newClient(t, s)
	c.Batch, c.Pool = update.NewBatch(), update.NewPool()
	t.Cleanup(c.Pool.Close)
	return c, update.Remember(c, &update.LastSeen{})
}

func TestSetAgainstRealPrimaries(t *testing.T) {
	for _, kind := range dnstest.Kinds {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			s := dnstest.Start(t, kind, dnstest.Options{Records: []string{"old 300 A 192.0.2.1", "old 300 A 192.0.2.2", "old 300 AAAA 2001:db8::1"}})
			c := newClient(t, s)
			ctx := context.Background()
			host := "home." + s.Zone
			v4 := netip.MustParseAddr("198.51.100.7")

			serial := s.Serial(t)
			res, old, err := c.Set(ctx, update.Record{Name: host, Addr: v4, TTL: 60}, nil)
			if err != nil || res != update.Changed || len(old) != 0 {
				t.Fatalf("first Set = %v, %v, %v; want good, no old addresses", res, old, err)
			}
			if got := s.Lookup(t, host, dns.TypeA); !slices.Equal(got, []string{"198.51.100.7"}) {
				t.Fatalf("A after first Set = %v", got)
			}
			if got := s.TTL(t, host, dns.TypeA); got != 60 {
				t.Errorf("TTL = %d, want 60", got)
			}
			if got := s.Serial(t); got != serial+1 {
				t.Errorf("serial after change = %d, want %d", got, serial+1)
			}

			// Same address: nochg, nothing written. A different TTL alone
			// does not count as a change.
			serial = s.Serial(t)
			for _, ttl := range []uint32{60, 120} {
				res, _, err = c.Set(ctx, update.Record{Name: host, Addr: v4, TTL: ttl}, nil)
				if err != nil || res != update.NoChange {
					t.Fatalf("repeat Set (ttl %d) = %v, %v; want nochg", ttl, res, err)
				}
			}
			if got := s.Serial(t); got != serial {
				t.Errorf("serial after nochg = %d, want unchanged %d", got, serial)
			}

			// AAAA leaves the A alone.
			v6 := netip.MustParseAddr("2001:db8:1::7")
			if res, _, err = c.Set(ctx, update.Record{Name: host, Addr: v6, TTL: 60}, nil); err != nil || res != update.Changed {
				t.Fatalf("AAAA Set = %v, %v", res, err)
			}
			if got := s.Lookup(t, host, dns.TypeAAAA); !slices.Equal(got, []string{"2001:db8:1::7"}) {
				t.Errorf("AAAA = %v", got)
			}
			if got := s.Lookup(t, host, dns.TypeA); !slices.Equal(got, []string{"198.51.100.7"}) {
				t.Errorf("A changed by an AAAA update: %v", got)
			}

			// Two A records where one is ours is not up to date: the replace
			// collapses the RRset to ours, and reports what was there.
			oldHost := "old." + s.Zone
			res, old, err = c.Set(ctx, update.Record{Name: oldHost, Addr: netip.MustParseAddr("192.0.2.1"), TTL: 60}, nil)
			if err != nil || res != update.Changed {
				t.Fatalf("Set on a two-record RRset = %v, %v", res, err)
			}
			slices.SortFunc(old, netip.Addr.Compare)
			if want := []netip.Addr{netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2")}; !slices.Equal(old, want) {
				t.Errorf("old = %v, want %v", old, want)
			}
			if got := s.Lookup(t, oldHost, dns.TypeA); !slices.Equal(got, []string{"192.0.2.1"}) {
				t.Errorf("A = %v after replace", got)
			}
			if got := s.Lookup(t, oldHost, dns.TypeAAAA); !slices.Equal(got, []string{"2001:db8::1"}) {
				t.Errorf("AAAA touched by an A update: %v", got)
			}

			recs, err := c.Lookup(ctx, host)
			if err != nil {
				t.Fatal(err)
			}
			if len(recs) != 2 || recs[0].Addr != v4 || recs[1].Addr != v6 || recs[0].TTL != 60 {
				t.Errorf("Lookup = %+v", recs)
			}
		})
	}
}

// TestErrorsAgainstRealPrimaries checks that each failure a real primary
// can produce becomes the right kind of error and changes nothing.
func TestErrorsAgainstRealPrimaries(t *testing.T) {
	for _, kind := range dnstest.Kinds {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			s := dnstest.Start(t, kind, dnstest.Options{Types: []string{"AAAA"}, Records: []string{"home 300 A 192.0.2.1"}})
			good := newClient(t, s)
			host := "home." + s.Zone
			rec := update.Record{Name: host, Addr: netip.MustParseAddr("198.51.100.9"), TTL: 60}

			wrongSecret := *good
			wrongSecret.Key.Secret = "c2VjcmV0LXRoYXQtdGhlLXNlcnZlci1kb2VzLW5vdC1rbm93"
			unknownKey := *good
			unknownKey.Key.Name = "nobody."
			otherZone := *good
			otherZone.Zone = "other.example.org"
			otherZoneRec := update.Record{Name: "home.other.example.org", Addr: rec.Addr, TTL: 60}
			skewed := *good
			skewed.Now = func() time.Time { return time.Now().Add(-10 * time.Minute) }

			// What each primary answers: BIND, Knot and sshdyn's own say
			// which TSIG check failed; PowerDNS answers every TSIG failure
			// with an unsigned REFUSED, and skips a record its policy
			// refuses while answering NOERROR (KindIgnored, after Replace
			// confirms).
			type want struct {
				kind update.Kind
				tsig uint16
			}
			tsigFail := func(code uint16) want {
				if kind == "pdns" {
					return want{update.KindAuth, 0}
				}
				return want{update.KindAuth, code}
			}
			cases := []struct {
				name string
				c    *update.Client
				rec  update.Record
				want want
			}{
				{"wrong secret", &wrongSecret, rec, tsigFail(dns.RcodeBadSig)},
				{"unknown key", &unknownKey, rec, tsigFail(dns.RcodeBadKey)},
				{"clock skew", &skewed, rec, tsigFail(dns.RcodeBadTime)},
				// BIND answers a policy denial with REFUSED; Knot with
				// NOTAUTH and TSIG error BADKEY.
				{"policy refuses A", good, rec, map[string]want{
					"bind":   {update.KindRefused, 0},
					"knot":   {update.KindAuth, dns.RcodeBadKey},
					"pdns":   {update.KindIgnored, 0},
					"sshdyn": {update.KindRefused, 0},
				}[kind]},
				{"zone not served", &otherZone, otherZoneRec, want{update.KindNotZone, 0}},
			}
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					serial := s.Serial(t)
					_, _, err := tc.c.Set(context.Background(), tc.rec, nil)
					var ue *update.Error
					if !errors.As(err, &ue) {
						t.Fatalf("err = %v, want *update.Error", err)
					}
					if ue.Kind != tc.want.kind || ue.TSIGError != tc.want.tsig {
						t.Errorf("kind %v tsig %d, want %v %d (%v)", ue.Kind, ue.TSIGError, tc.want.kind, tc.want.tsig, err)
					}
					if kind == "pdns" && ue.Kind == update.KindAuth && ue.Rcode != dns.RcodeRefused {
						t.Errorf("rcode %s, want PowerDNS's REFUSED", dns.RcodeToString[ue.Rcode])
					}
					if ue.Kind.Temporary() {
						t.Errorf("%v is temporary; a configuration fault is not", ue.Kind)
					}
					t.Logf("%v", err)
					if got := s.Serial(t); got != serial {
						t.Errorf("serial moved %d -> %d on a failed update", serial, got)
					}
					if got := s.Lookup(t, host, dns.TypeA); !slices.Equal(got, []string{"192.0.2.1"}) {
						t.Errorf("A = %v after a failed update", got)
					}
				})
			}

			t.Run("primary down", func(t *testing.T) {
				s.Stop()
				_, _, err := good.Set(context.Background(), rec, nil)
				var ue *update.Error
				if !errors.As(err, &ue) || ue.Kind != update.KindUnreachable || !ue.Kind.Temporary() {
					t.Fatalf("err = %v, want a temporary unreachable error", err)
				}
			})
		})
	}
}

// fakePrimary answers every query with handler; only for what a real
// primary cannot do (answer unsigned, never answer).
func fakePrimary(t *testing.T, handler dns.HandlerFunc) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	started := make(chan struct{})
	srv := &dns.Server{Listener: l, Handler: handler, NotifyStartedFunc: func() { close(started) },
		MsgAcceptFunc: func(dns.Header) dns.MsgAcceptAction { return dns.MsgAccept }}
	go srv.ActivateAndServe()
	<-started
	t.Cleanup(func() { srv.Shutdown() })
	return l.Addr().String()
}

func TestUnsignedReplyIsRejected(t *testing.T) {
	for _, rcode := range []int{dns.RcodeSuccess, dns.RcodeNXRrset, dns.RcodeRefused} {
		t.Run(dns.RcodeToString[rcode], func(t *testing.T) {
			addr := fakePrimary(t, func(w dns.ResponseWriter, r *dns.Msg) {
				m := new(dns.Msg)
				m.SetRcode(r, rcode)
				w.WriteMsg(m) // no TSIG: what a spoofer or a misconfigured server sends
			})
			c := &update.Client{Server: addr, Zone: "dyn.example.com", Key: tsig.Key{Name: "k.", Algorithm: dns.HmacSHA256, Secret: "c2VjcmV0c2VjcmV0c2VjcmV0"}}
			_, _, err := c.Set(context.Background(), update.Record{Name: "h.dyn.example.com", Addr: netip.MustParseAddr("192.0.2.1")}, nil)
			var ue *update.Error
			if !errors.As(err, &ue) || ue.Kind != update.KindAuth {
				t.Fatalf("err = %v, want a TSIG error", err)
			}
		})
	}
}

func TestForgedSignatureIsRejected(t *testing.T) {
	// The reply is signed, but with another secret under the same key name.
	addr := fakePrimary(t, func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetRcode(r, dns.RcodeSuccess)
		m.SetTsig("k.", dns.HmacSHA256, 300, time.Now().Unix())
		signed, _, err := dns.TsigGenerate(m, "Zm9yZ2VyeWZvcmdlcnlmb3JnZXJ5", "", false)
		if err != nil {
			t.Error(err)
			return
		}
		w.Write(signed)
	})
	c := &update.Client{Server: addr, Zone: "dyn.example.com", Key: tsig.Key{Name: "k.", Algorithm: dns.HmacSHA256, Secret: "c2VjcmV0c2VjcmV0c2VjcmV0"}}
	ok, err := c.Check(context.Background(), update.Record{Name: "h.dyn.example.com", Addr: netip.MustParseAddr("192.0.2.1")})
	var ue *update.Error
	if ok || !errors.As(err, &ue) || ue.Kind != update.KindAuth {
		t.Fatalf("Check = %v, %v; want a TSIG error", ok, err)
	}
}

// TestReplyKeyAndAlgorithmArePinned: a reply signed with the right
// secret under another algorithm or another key name is not accepted
// (dns.TsigVerify takes both from the reply).
func TestReplyKeyAndAlgorithmArePinned(t *testing.T) {
	const secret = "c2VjcmV0c2VjcmV0c2VjcmV0"
	for _, tc := range []struct{ name, keyName, alg string }{
		{"the request's key and algorithm", "k.", dns.HmacSHA256},
		{"another algorithm", "k.", dns.HmacSHA512},
		{"another key name", "other.", dns.HmacSHA256},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr := fakePrimary(t, func(w dns.ResponseWriter, r *dns.Msg) {
				m := new(dns.Msg)
				m.SetRcode(r, dns.RcodeSuccess)
				m.SetTsig(tc.keyName, tc.alg, 300, time.Now().Unix())
				signed, _, err := dns.TsigGenerate(m, secret, r.IsTsig().MAC, false)
				if err != nil {
					t.Error(err)
					return
				}
				w.Write(signed)
			})
			c := &update.Client{Server: addr, Zone: "dyn.example.com", Key: tsig.Key{Name: "k.", Algorithm: dns.HmacSHA256, Secret: secret}}
			ok, err := c.Check(context.Background(), update.Record{Name: "h.dyn.example.com", Addr: netip.MustParseAddr("192.0.2.1")})
			if tc.keyName == "k." && tc.alg == dns.HmacSHA256 {
				if !ok || err != nil {
					t.Fatalf("Check = %v, %v; want true (control: the fake signs correctly)", ok, err)
				}
				return
			}
			var ue *update.Error
			if ok || !errors.As(err, &ue) || ue.Kind != update.KindAuth {
				t.Fatalf("Check = %v, %v; want a TSIG error", ok, err)
			}
		})
	}
}

func TestBlackholeTimesOut(t *testing.T) {
	// A primary that accepts the connection and never answers.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	c := &update.Client{Server: l.Addr().String(), Zone: "dyn.example.com", Timeout: 200 * time.Millisecond,
		Key: tsig.Key{Name: "k.", Algorithm: dns.HmacSHA256, Secret: "c2VjcmV0c2VjcmV0c2VjcmV0"}}
	_, err = c.Check(context.Background(), update.Record{Name: "h.dyn.example.com", Addr: netip.MustParseAddr("192.0.2.1")})
	var ue *update.Error
	if !errors.As(err, &ue) || ue.Kind != update.KindTimeout || !ue.Kind.Temporary() {
		t.Fatalf("err = %v, want a temporary timeout", err)
	}
}

// TestPoolReusesConnections: with a Pool, a client's exchanges share one
// TCP connection; when the primary closes it while idle, the next
// exchange goes over a new one and nothing fails.
func TestPoolReusesConnections(t *testing.T) {
	for _, kind := range dnstest.Kinds {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			s := dnstest.Start(t, kind, dnstest.Options{})
			proxy := dnstest.SlowProxy(t, s.Addr, 0)
			c := newClient(t, s)
			c.Server = proxy.Addr
			c.Pool = update.NewPool()
			defer c.Pool.Close()
			var connects atomic.Int32
			c.Observe = func(op string, _ time.Duration, err error) {
				if op == "connect" && err == nil {
					connects.Add(1)
				}
			}
			host := "pooled." + s.Zone
			set := func(addr string, want update.Result) {
				t.Helper()
				res, _, err := c.Set(context.Background(), update.Record{Name: host, Addr: netip.MustParseAddr(addr), TTL: 60}, nil)
				if err != nil || res != want {
					t.Fatalf("Set %s = %v, %v; want %v", addr, res, err, want)
				}
			}
			set("192.0.2.1", update.Changed)
			set("192.0.2.1", update.NoChange)
			set("192.0.2.2", update.Changed)
			if n := proxy.Total(); n != 1 || connects.Load() != 1 {
				t.Errorf("%d connections (%d observed) for 3 sequential updates, want 1", n, connects.Load())
			}
			if c.Pool.Idle() != 1 {
				t.Errorf("%d idle connections, want 1", c.Pool.Idle())
			}
			proxy.CloseConns() // the primary drops the idle connection
			time.Sleep(50 * time.Millisecond)
			set("192.0.2.3", update.Changed)
			if n := proxy.Total(); n != 2 || connects.Load() != 2 {
				t.Errorf("%d connections (%d observed) after the primary closed one, want 2", n, connects.Load())
			}
			if got := s.Lookup(t, host, dns.TypeA); !slices.Equal(got, []string{"192.0.2.3"}) {
				t.Errorf("A = %v", got)
			}
		})
	}
}

// TestBatch: concurrent replaces through a Batch go out in fewer UPDATE
// messages than there are records, each caller gets its own result, and
// a batch the policy refuses in part is resent record by record, so the
// allowed records are written and only the others fail.
func TestBatch(t *testing.T) {
	for _, kind := range dnstest.Kinds {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			s := dnstest.Start(t, kind, dnstest.Options{Types: []string{"AAAA"}})
			c := newClient(t, s)
			c.Pool, c.Batch = update.NewPool(), update.NewBatch()
			defer c.Pool.Close()
			var replaces atomic.Int32
			c.Observe = func(op string, _ time.Duration, _ error) {
				if op == "replace" {
					replaces.Add(1)
				}
			}
			const n = 48
			// Even i: AAAA, which the policy allows; odd i: A, which it
			// does not. Hosts 0 and 2 are the same name: two changes of
			// one RRset in flight at once.
			rec := func(i int) update.Record {
				host := fmt.Sprintf("b%d.%s", i, s.Zone)
				if i == 2 {
					host = "b0." + s.Zone
				}
				if i%2 == 0 {
					return update.Record{Name: host, Addr: netip.MustParseAddr(fmt.Sprintf("2001:db8::%x", i+1)), TTL: 60}
				}
				return update.Record{Name: host, Addr: netip.MustParseAddr(fmt.Sprintf("192.0.2.%d", i)), TTL: 60}
			}
			errs := make([]error, n)
			start := make(chan struct{})
			var wg sync.WaitGroup
			for i := 0; i < n; i++ {
				wg.Add(1)
				go func(i int) {
					defer wg.Done()
					<-start
					errs[i] = c.Replace(context.Background(), rec(i))
				}(i)
			}
			close(start)
			wg.Wait()
			for i, err := range errs {
				var ue *update.Error
				switch {
				case i%2 == 0 && err != nil:
					t.Errorf("%v: %v", rec(i), err)
				case i%2 == 1 && (!errors.As(err, &ue) || ue.Kind.Temporary()):
					t.Errorf("%v: %v, want a policy error", rec(i), err)
				}
			}
			for i := 4; i < n; i += 2 {
				if got := s.Lookup(t, rec(i).Name, dns.TypeAAAA); !slices.Equal(got, []string{rec(i).Addr.String()}) {
					t.Errorf("%s AAAA = %v, want %s", rec(i).Name, got, rec(i).Addr)
				}
			}
			if got := s.Lookup(t, "b0."+s.Zone, dns.TypeAAAA); len(got) != 1 || (got[0] != rec(0).Addr.String() && got[0] != rec(2).Addr.String()) {
				t.Errorf("b0 AAAA = %v, want one of the two values written", got)
			}
			for i := 1; i < n; i += 2 {
				if got := s.Lookup(t, rec(i).Name, dns.TypeA); len(got) != 0 {
					t.Errorf("%s A = %v after a refused change", rec(i).Name, got)
				}
			}
			t.Logf("%d records, %d replace messages", n, replaces.Load())

			// Allowed changes only: fewer messages than records.
			replaces.Store(0)
			start = make(chan struct{})
			for i := 0; i < n; i++ {
				wg.Add(1)
				go func(i int) {
					defer wg.Done()
					<-start
					errs[i] = c.Replace(context.Background(), update.Record{Name: fmt.Sprintf("c%d.%s", i, s.Zone),
						Addr: netip.MustParseAddr(fmt.Sprintf("2001:db8::1:%x", i)), TTL: 60})
				}(i)
			}
			close(start)
			wg.Wait()
			for i, err := range errs {
				if err != nil {
					t.Errorf("c%d: %v", i, err)
				}
			}
			if got := replaces.Load(); got >= n {
				t.Errorf("%d replace messages for %d concurrent records: not batched", got, n)
			}
			t.Logf("%d concurrent records, %d replace messages", n, replaces.Load())
		})
	}
}

// pipelinePrimary reads the two messages of a replace and its confirming
// check, sent back to back, and answers both NOERROR, signed, in reverse
// order: what a primary may do with pipelined messages (RFC 7766), and
// none of the real ones here does for two updates. With swapMACs, each
// reply is signed as if it answered the other message.
func pipelinePrimary(t *testing.T, secret string, swapMACs bool) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			nc, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer nc.Close()
				co := &dns.Conn{Conn: nc}
				var reqs []*dns.Msg
				for len(reqs) < 2 {
					p, err := co.ReadMsgHeader(nil)
					if err != nil {
						return
					}
					m := new(dns.Msg)
					if err := m.Unpack(p); err != nil {
						t.Error(err)
						return
					}
					// After Unpack: verifying rewrites p without its TSIG.
					if err := dns.TsigVerify(p, secret, "", false); err != nil {
						t.Errorf("request TSIG: %v", err)
						return
					}
					reqs = append(reqs, m)
				}
				for i := 1; i >= 0; i-- {
					mac := reqs[i].IsTsig().MAC
					if swapMACs {
						mac = reqs[1-i].IsTsig().MAC
					}
					r := new(dns.Msg)
					r.SetRcode(reqs[i], dns.RcodeSuccess)
					r.SetTsig(reqs[i].IsTsig().Hdr.Name, dns.HmacSHA256, 300, time.Now().Unix())
					wire, _, err := dns.TsigGenerate(r, secret, mac, false)
					if err != nil {
						t.Error(err)
						return
					}
					if _, err := co.Write(wire); err != nil {
						return
					}
				}
			}()
		}
	}()
	return l.Addr().String()
}

// TestPipelinedRepliesOutOfOrder: the replace and its confirming check go
// out together; replies in the other order are matched to their messages
// by ID and verified against their own request's MAC, and a reply signed
// for the other message fails TSIG verification.
func TestPipelinedRepliesOutOfOrder(t *testing.T) {
	const secret = "c2VjcmV0c2VjcmV0c2VjcmV0"
	key := tsig.Key{Name: "k.", Algorithm: dns.HmacSHA256, Secret: secret}
	r := update.Record{Name: "h.dyn.example.com", Addr: netip.MustParseAddr("192.0.2.1"), TTL: 60}

	var ops []string
	c := &update.Client{Server: pipelinePrimary(t, secret, false), Zone: "dyn.example.com", Key: key, Timeout: 2 * time.Second,
		Observe: func(op string, _ time.Duration, err error) {
			if err != nil {
				t.Errorf("%s: %v", op, err)
			}
			ops = append(ops, op)
		}}
	if err := c.Replace(context.Background(), r); err != nil {
		t.Fatalf("Replace with replies out of order: %v", err)
	}
	if !slices.Equal(ops, []string{"connect", "replace", "confirm"}) {
		t.Errorf("exchanges %v, want replace and confirm together on one connection", ops)
	}

	c = &update.Client{Server: pipelinePrimary(t, secret, true), Zone: "dyn.example.com", Key: key, Timeout: 2 * time.Second}
	err := c.Replace(context.Background(), r)
	var ue *update.Error
	if !errors.As(err, &ue) || ue.Kind != update.KindAuth {
		t.Fatalf("Replace with replies signed for the other message: %v, want a TSIG error", err)
	}
}

func TestSwapAgainstRealPrimaries(t *testing.T) {
	for _, kind := range dnstest.Kinds {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			s := dnstest.Start(t, kind, dnstest.Options{Records: []string{"home 300 A 192.0.2.1"}})
			var mu sync.Mutex
			var ops []string
			cl := newClient(t, s)
			c := update.Remember(cl, &update.LastSeen{})
			cl.Observe = func(op string, _ time.Duration, _ error) {
				if op == "connect" { // no Pool: one per message
					return
				}
				mu.Lock()
				defer mu.Unlock()
				ops = append(ops, op)
			}
			other := newClient(t, s) // another writer, with no memory
			ctx := context.Background()
			host := "home." + s.Zone
			set := func(addr string, wantOld string, wantOps ...string) {
				t.Helper()
				mu.Lock()
				ops = nil
				mu.Unlock()
				res, old, err := c.Set(ctx, update.Record{Name: host, Addr: netip.MustParseAddr(addr), TTL: 60}, nil)
				if err != nil || res != update.Changed || len(old) != 1 || old[0].String() != wantOld {
					t.Fatalf("Set %s = %v, %v, %v; want good, old [%s]", addr, res, old, err, wantOld)
				}
				if got := s.Lookup(t, host, dns.TypeA); !slices.Equal(got, []string{addr}) {
					t.Fatalf("A after Set %s = %v", addr, got)
				}
				mu.Lock()
				defer mu.Unlock()
				if !slices.Equal(ops, wantOps) {
					t.Errorf("Set %s sent %v, want %v", addr, ops, wantOps)
				}
			}

			// Nothing seen yet: check, then the addresses replaced are
			// read first.
			set("198.51.100.1", "192.0.2.1", "check", "lookup", "replace", "confirm")
			// Seen holding another address: one compare-and-set, whose
			// guard is the check; no read.
			set("198.51.100.2", "198.51.100.1", "replace", "confirm")
			if c.Seen.Len() != 1 {
				t.Errorf("LastSeen holds %d RRsets, want 1", c.Seen.Len())
			}

			// Another writer changes it: the guard fails and writes
			// nothing, then the check fails and the addresses are read
			// and replaced.
			if err := other.Replace(ctx, update.Record{Name: host, Addr: netip.MustParseAddr("203.0.113.3"), TTL: 60}); err != nil {
				t.Fatal(err)
			}
			serial := s.Serial(t)
			set("198.51.100.4", "203.0.113.3", "replace", "confirm", "check", "lookup", "replace", "confirm")
			if got := s.Serial(t); got != serial+1 {
				t.Errorf("serial after a failed guard and a replace = %d, want %d (one write)", got, serial+1)
			}

			// A check that holds is seen too.
			if _, err := c.Check(ctx, update.Record{Name: host, Addr: netip.MustParseAddr("198.51.100.4")}); err != nil {
				t.Fatal(err)
			}
			set("198.51.100.5", "198.51.100.4", "replace", "confirm")

			// Another writer already made it right: the guard fails, the
			// check holds, nothing is written.
			if err := other.Replace(ctx, update.Record{Name: host, Addr: netip.MustParseAddr("198.51.100.6"), TTL: 60}); err != nil {
				t.Fatal(err)
			}
			serial = s.Serial(t)
			nochg := func(wantOps ...string) {
				t.Helper()
				mu.Lock()
				ops = nil
				mu.Unlock()
				res, old, err := c.Set(ctx, update.Record{Name: host, Addr: netip.MustParseAddr("198.51.100.6"), TTL: 60}, nil)
				if err != nil || res != update.NoChange || old != nil {
					t.Fatalf("Set of the address already there = %v, %v, %v; want nochg", res, old, err)
				}
				if got := s.Serial(t); got != serial {
					t.Errorf("serial after a nochg = %d, want %d (nothing written)", got, serial)
				}
				mu.Lock()
				defer mu.Unlock()
				if !slices.Equal(ops, wantOps) {
					t.Errorf("nochg sent %v, want %v", ops, wantOps)
				}
			}
			nochg("replace", "confirm", "check")
			// Now seen as it is: the check alone.
			nochg("check")
		})
	}
}

// Set asks its permission once, before anything is written, also when
// it starts with a compare-and-set; a refusal stops a change, not a
// nochg.
func TestSetPermission(t *testing.T) {
	s := dnstest.Start(t, "sshdyn", dnstest.Options{Records: []string{"home 300 A 192.0.2.1"}})
	c, other := update.Remember(newClient(t, s), &update.LastSeen{}), newClient(t, s)
	ctx := context.Background()
	host := "home." + s.Zone
	rec := func(a string) update.Record { return update.Record{Name: host, Addr: netip.MustParseAddr(a), TTL: 60} }
	if ok, err := c.Check(ctx, rec("192.0.2.1")); !ok || err != nil { // seen: 192.0.2.1
		t.Fatalf("Check = %v, %v", ok, err)
	}
	no := errors.New("over the limit")
	for _, tc := range []struct {
		name    string
		already bool  // another writer set the new address first
		deny    error // what allow returns
		want    update.Result
		wantErr error
	}{
		{"refused change", false, no, update.NoChange, no},
		{"refused, but already right", true, no, update.NoChange, nil},
		{"allowed change", false, nil, update.Changed, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := s.Lookup(t, host, dns.TypeA)
			next := "198.51.100.7"
			if tc.already {
				next = "198.51.100.8"
				if err := other.Replace(ctx, rec(next)); err != nil {
					t.Fatal(err)
				}
				before = []string{next}
			}
			serial := s.Serial(t)
			asked := 0
			res, _, err := c.Set(ctx, rec(next), func() error { asked++; return tc.deny })
			if res != tc.want || !errors.Is(err, tc.wantErr) || (err == nil) != (tc.wantErr == nil) {
				t.Fatalf("Set = %v, %v; want %v, %v", res, err, tc.want, tc.wantErr)
			}
			if asked != 1 {
				t.Errorf("allow called %d times, want once", asked)
			}
			got, wrote := s.Lookup(t, host, dns.TypeA), s.Serial(t) != serial
			if tc.want == update.Changed {
				if !slices.Equal(got, []string{next}) || !wrote {
					t.Errorf("after an allowed change: A = %v, serial moved %v", got, wrote)
				}
			} else if !slices.Equal(got, before) || wrote {
				t.Errorf("A = %v (was %v), serial moved %v: want nothing written", got, before, wrote)
			}
		})
	}
}

// Concurrent guarded replaces, some of whose guards fail: a batch with a
// failed guard writes nothing, then each of its changes goes on its own.
func TestSwapBatchWithStaleGuards(t *testing.T) {
	for _, kind := range dnstest.Kinds {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			s := dnstest.Start(t, kind, dnstest.Options{})
			_, c := servingClient(t, s)
			other := newClient(t, s)
			ctx := context.Background()
			const n = 24
			host := func(i int) string { return fmt.Sprintf("h%d.%s", i, s.Zone) }
			addr := func(round, i int) netip.Addr { return netip.AddrFrom4([4]byte{198, 51, 100 + byte(round), byte(i)}) }
			stale := func(i int) bool { return i%4 == 1 }
			for i := range n {
				if _, _, err := c.Set(ctx, update.Record{Name: host(i), Addr: addr(0, i), TTL: 60}, nil); err != nil {
					t.Fatal(err)
				}
				if stale(i) { // changed behind c's back
					if err := other.Replace(ctx, update.Record{Name: host(i), Addr: addr(2, i), TTL: 60}); err != nil {
						t.Fatal(err)
					}
				}
			}
			olds := make([][]netip.Addr, n)
			start := make(chan struct{})
			var wg sync.WaitGroup
			for i := range n {
				wg.Go(func() {
					<-start
					res, old, err := c.Set(ctx, update.Record{Name: host(i), Addr: addr(1, i), TTL: 60}, nil)
					if err != nil || res != update.Changed {
						t.Errorf("Set %s = %v, %v", host(i), res, err)
					}
					olds[i] = old
				})
			}
			close(start)
			wg.Wait()
			for i := range n {
				want := addr(0, i)
				if stale(i) {
					want = addr(2, i)
				}
				if !slices.Equal(olds[i], []netip.Addr{want}) {
					t.Errorf("%s: old = %v, want [%v]", host(i), olds[i], want)
				}
				if got := s.Lookup(t, host(i), dns.TypeA); !slices.Equal(got, []string{addr(1, i).String()}) {
					t.Errorf("%s: A = %v, want %v", host(i), got, addr(1, i))
				}
			}
		})
	}
}

// TestSharedChecks: concurrent checks that the client expects to hold (it
// last saw each record hold the address checked) go out in fewer
// messages than checks, and each caller gets its own answer. A shared
// message whose prerequisites do not all hold (records changed behind
// the client's back, one given a second address) writes nothing, and
// its checks are asked again one by one.
func TestSharedChecks(t *testing.T) {
	for _, kind := range dnstest.Kinds {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			s := dnstest.Start(t, kind, dnstest.Options{})
			cl, c := servingClient(t, s)
			var checks atomic.Int32
			cl.Observe = func(op string, _ time.Duration, _ error) {
				if op == "check" {
					checks.Add(1)
				}
			}
			ctx := context.Background()
			const n = 32
			rec := func(i int) update.Record {
				return update.Record{Name: fmt.Sprintf("s%d.%s", i, s.Zone), Addr: netip.AddrFrom4([4]byte{198, 51, 100, byte(i)}), TTL: 60}
			}
			for i := range n {
				if _, _, err := c.Set(ctx, rec(i), nil); err != nil {
					t.Fatal(err)
				}
			}
			// run checks every record at once, and record 0 twice.
			run := func() []bool {
				held := make([]bool, n+1)
				start := make(chan struct{})
				var wg sync.WaitGroup
				for i := range n + 1 {
					wg.Go(func() {
						<-start
						ok, err := c.Check(ctx, rec(i%n))
						if err != nil {
							t.Errorf("Check %v: %v", rec(i%n), err)
						}
						held[i] = ok
					})
				}
				close(start)
				wg.Wait()
				return held
			}

			serial := s.Serial(t)
			checks.Store(0)
			for i, ok := range run() {
				if !ok {
					t.Errorf("Check %v = false, want true", rec(i%n))
				}
			}
			if got := checks.Load(); got >= n+1 {
				t.Errorf("%d check messages for %d concurrent checks: not shared", got, n+1)
			}
			t.Logf("%d concurrent checks, %d check messages", n+1, checks.Load())
			if got := s.Serial(t); got != serial {
				t.Errorf("serial moved from %d to %d: checks wrote", serial, got)
			}

			// Behind c's back: every fourth record gets another address,
			// record 2 a second one.
			other := newClient(t, s)
			changed := func(i int) bool { return i%4 == 1 || i == 2 }
			for i := 1; i < n; i += 4 {
				r := rec(i)
				r.Addr = netip.AddrFrom4([4]byte{203, 0, 113, byte(i)})
				if err := other.Replace(ctx, r); err != nil {
					t.Fatal(err)
				}
			}
			add := cl.Key // a signed UPDATE that adds a second A to record 2
			m := new(dns.Msg)
			m.SetUpdate(dns.Fqdn(s.Zone))
			rr, _ := dns.NewRR(rec(2).Name + " 60 IN A 203.0.113.222")
			m.Insert([]dns.RR{rr})
			m.SetTsig(add.Name, add.Algorithm, 300, time.Now().Unix())
			dc := &dns.Client{Net: "tcp", TsigSecret: map[string]string{add.Name: add.Secret}}
			if resp, _, err := dc.Exchange(m, s.Addr); err != nil || resp.Rcode != dns.RcodeSuccess {
				t.Fatalf("adding a second A to %s: %v %v", rec(2).Name, resp, err)
			}
			if got := s.Lookup(t, rec(2).Name, dns.TypeA); len(got) != 2 {
				t.Fatalf("%s A = %v, want two addresses", rec(2).Name, got)
			}

			serial = s.Serial(t)
			for i, ok := range run() {
				if want := !changed(i % n); ok != want {
					t.Errorf("Check %v = %v, want %v", rec(i%n), ok, want)
				}
			}
			if got := s.Serial(t); got != serial {
				t.Errorf("serial moved from %d to %d: checks wrote", serial, got)
			}
			// The changed records are no longer expected to hold: their
			// next checks go alone, and say the same.
			checks.Store(0)
			for i := range n {
				if ok, err := c.Check(ctx, rec(i)); err != nil || ok != !changed(i) {
					t.Errorf("Check %v again = %v, %v; want %v", rec(i), ok, err, !changed(i))
				}
			}
			if got := checks.Load(); got != n {
				t.Errorf("%d check messages for %d checks one at a time, want %d", got, n, n)
			}
		})
	}
}

// TestSetAllAgainstRealPrimaries: several RRsets as one change — checked
// with one message, replaced with one UPDATE (one serial step), nothing
// written when all hold; only those that differ are replaced. A policy
// that refuses one of them writes none of them (but PowerDNS, whose
// policy script skips a record and applies the rest: sshdyn reports it
// as ignored).
func TestSetAllAgainstRealPrimaries(t *testing.T) {
	for _, kind := range dnstest.Kinds {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			s := dnstest.Start(t, kind, dnstest.Options{})
			cl, c := servingClient(t, s)
			var mu sync.Mutex
			ops := map[string]int{}
			cl.Observe = func(op string, _ time.Duration, _ error) {
				mu.Lock()
				defer mu.Unlock()
				ops[op]++
			}
			count := func() map[string]int {
				mu.Lock()
				defer mu.Unlock()
				out := maps.Clone(ops)
				clear(ops)
				return out
			}
			ctx := context.Background()
			recs := []update.Record{
				{Name: "home." + s.Zone, Addr: netip.MustParseAddr("2001:db8:1:2::99"), TTL: 60},
				{Name: "nas." + s.Zone, Addr: netip.MustParseAddr("2001:db8:1:2:211:32ff:fe12:3456"), TTL: 60},
				{Name: "cam." + s.Zone, Addr: netip.MustParseAddr("2001:db8:1:3::10"), TTL: 60},
			}
			serial := s.Serial(t)
			res, old, err := c.SetAll(ctx, recs, nil)
			if err != nil || !slices.Equal(res, []update.Result{update.Changed, update.Changed, update.Changed}) || old[0] != nil {
				t.Fatalf("first SetAll = %v %v %v", res, old, err)
			}
			if got := s.Serial(t); got != serial+1 {
				t.Errorf("serial %d -> %d, want one step for three records", serial, got)
			}
			if n := count(); n[update.OpReplace] != 1 {
				t.Errorf("messages %v, want one replace", n)
			}
			for _, r := range recs {
				if got := s.Lookup(t, r.Name, dns.TypeAAAA); !slices.Equal(got, []string{r.Addr.String()}) {
					t.Errorf("%s AAAA = %v", r.Name, got)
				}
			}
			serial = s.Serial(t)
			if res, _, err := c.SetAll(ctx, recs, func() error { return errors.New("must not be asked") }); err != nil || !slices.Equal(res, []update.Result{update.NoChange, update.NoChange, update.NoChange}) {
				t.Errorf("repeat = %v %v", res, err)
			}
			if n := count(); s.Serial(t) != serial || n[update.OpCheck] != 1 || n[update.OpReplace] != 0 {
				t.Errorf("repeat sent %v, serial %d -> %d: want one check, nothing written", n, serial, s.Serial(t))
			}
			// One changes: only it is replaced, and its old address told.
			recs[1].Addr = netip.MustParseAddr("2001:db8:9:9:211:32ff:fe12:3456")
			res, old, err = c.SetAll(ctx, recs, nil)
			if err != nil || !slices.Equal(res, []update.Result{update.NoChange, update.Changed, update.NoChange}) || !slices.Equal(old[1], []netip.Addr{netip.MustParseAddr("2001:db8:1:2:211:32ff:fe12:3456")}) {
				t.Errorf("one changed = %v %v %v", res, old, err)
			}
		})
	}
}

// TestSetAllRefusedWritesNothing: an UPDATE with a record the policy
// refuses (A, on a primary that grants AAAA only) writes none of its
// records.
func TestSetAllRefusedWritesNothing(t *testing.T) {
	for _, kind := range dnstest.Kinds {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			s := dnstest.Start(t, kind, dnstest.Options{Types: []string{"AAAA"}})
			c := newClient(t, s)
			recs := []update.Record{
				{Name: "home." + s.Zone, Addr: netip.MustParseAddr("2001:db8:1:2::99"), TTL: 60},
				{Name: "nas." + s.Zone, Addr: netip.MustParseAddr("198.51.100.8"), TTL: 60},
			}
			serial := s.Serial(t)
			_, _, err := c.SetAll(context.Background(), recs, nil)
			var ue *update.Error
			if !errors.As(err, &ue) || ue.Kind.Temporary() {
				t.Fatalf("SetAll = %v, want the policy's refusal", err)
			}
			if kind == "pdns" {
				// PowerDNS's policy script skips the A and applies the AAAA,
				// answering NOERROR: not atomic, but never reported as done.
				if ue.Kind != update.KindIgnored {
					t.Errorf("PowerDNS: %v, want ignored", err)
				}
				return
			}
			if got := s.Serial(t); got != serial || len(s.Lookup(t, "home."+s.Zone, dns.TypeAAAA)) != 0 {
				t.Errorf("a refused UPDATE wrote: serial %d -> %d", serial, got)
			}
		})
	}
}
