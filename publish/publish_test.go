package publish

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/sshdyn/sshdyn/authorized"
	"github.com/sshdyn/sshdyn/backend"
	"github.com/sshdyn/sshdyn/backend/memory"
)

// newMemory returns the in-memory backend: the core's rules are tested
// without a DNS server.
func newMemory() *memory.Backend { return memory.New() }

// sets returns how many records were asked of m.
func sets(m *memory.Backend) int {
	_, _, asked := m.Counts()
	return len(asked)
}

// calls and writes return m's Set calls, and those that wrote.
func calls(m *memory.Backend) int  { c, _, _ := m.Counts(); return c }
func writes(m *memory.Backend) int { _, w, _ := m.Counts(); return w }

// addr returns what m holds for name's RRset of type t.
func addr(m *memory.Backend, name, t string) netip.Addr {
	a, _, _ := m.Get(name, t)
	return a
}

// entry parses one authorized line with a fresh key and options opts.
func entry(t *testing.T, opts string) *authorized.Entry {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	k, err := gossh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	line := opts + " " + string(gossh.MarshalAuthorizedKey(k))
	m, err := authorized.Parse(strings.NewReader(line), "keys", authorized.Scope{Zones: []string{"example.com", "dyn.example.com"}})
	if err != nil {
		t.Fatal(err)
	}
	e, _ := m.Lookup(k)
	return e
}

type recorder struct {
	mu      sync.Mutex
	updates []string
	limited []string
}

func (r *recorder) Update(front, zone, typ, result string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.updates = append(r.updates, zone+" "+typ+" "+result)
}

func (r *recorder) Limited(l string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.limited = append(r.limited, l)
}

var (
	public4 = netip.MustParseAddr("8.8.4.4")
	public6 = netip.MustParseAddr("2a00:1450::1")
	mapped4 = netip.MustParseAddr("::ffff:8.8.4.4")
	private = netip.MustParseAddr("192.168.1.7")
)

// TestUpdate: the rules of an update, with no DNS server and no SSH.
func TestUpdate(t *testing.T) {
	cases := []struct {
		name      string
		opts      string // the identity's authorized options
		svc       func(*Service)
		addr      netip.Addr
		named     []string
		wantErr   Kind // a refusal of the whole request; 0 (good) if none
		want      []string
		wantZones []string // which zone's backend got each Set
	}{
		{name: "all hosts, IPv4", opts: `host="a.dyn.example.com",host="b.dyn.example.com"`, addr: public4,
			want: []string{"good a.dyn.example.com A 8.8.4.4 ttl=60", "good b.dyn.example.com A 8.8.4.4 ttl=60"}, wantZones: []string{"dyn", "dyn"}},
		{name: "named host only", opts: `host="a.dyn.example.com",host="b.dyn.example.com"`, addr: public4, named: []string{"B.Dyn.Example.Com."},
			want: []string{"good b.dyn.example.com A 8.8.4.4 ttl=60"}, wantZones: []string{"dyn"}},
		// A host named again (in any spelling) is one host: one Set, one line.
		{name: "named twice", opts: `host="a.dyn.example.com",host="b.dyn.example.com"`, addr: public4, named: []string{"b.dyn.example.com", "B.Dyn.Example.Com.", "b.dyn.example.com"},
			want: []string{"good b.dyn.example.com A 8.8.4.4 ttl=60"}, wantZones: []string{"dyn"}},
		{name: "IPv6 is AAAA", opts: `host="a.dyn.example.com"`, addr: public6,
			want: []string{"good a.dyn.example.com AAAA 2a00:1450::1 ttl=60"}, wantZones: []string{"dyn"}},
		{name: "4-in-6 is A", opts: `host="a.dyn.example.com"`, addr: mapped4,
			want: []string{"good a.dyn.example.com A 8.8.4.4 ttl=60"}, wantZones: []string{"dyn"}},
		{name: "identity's TTL", opts: `host="a.dyn.example.com",ttl=300`, addr: public4,
			want: []string{"good a.dyn.example.com A 8.8.4.4 ttl=300"}, wantZones: []string{"dyn"}},
		{name: "longest zone wins", opts: `host="www.example.com",host="a.dyn.example.com"`, addr: public4,
			want: []string{"good www.example.com A 8.8.4.4 ttl=3600", "good a.dyn.example.com A 8.8.4.4 ttl=60"}, wantZones: []string{"parent", "dyn"}},
		{name: "another identity's host", opts: `host="a.dyn.example.com"`, addr: public4, named: []string{"a.dyn.example.com", "b.dyn.example.com"},
			wantErr: KindNotOwned},
		{name: "private address", opts: `host="a.dyn.example.com"`, addr: private, wantErr: KindNotPublic},
		{name: "loopback", opts: `host="a.dyn.example.com"`, addr: netip.MustParseAddr("::1"), wantErr: KindNotPublic},
		{name: "private allowed for the identity", opts: `host="a.dyn.example.com",allow-private`, addr: private,
			want: []string{"good a.dyn.example.com A 192.168.1.7 ttl=60"}, wantZones: []string{"dyn"}},
		{name: "private allowed for all", opts: `host="a.dyn.example.com"`, svc: func(s *Service) { s.AllowPrivate = true }, addr: private,
			want: []string{"good a.dyn.example.com A 192.168.1.7 ttl=60"}, wantZones: []string{"dyn"}},
		{name: "expired", opts: `host="a.dyn.example.com",expiry-time="20200101Z"`, addr: public4, wantErr: KindDenied},
		{name: "not from here", opts: `host="a.dyn.example.com",from="203.0.113.0/24"`, addr: public4, wantErr: KindDenied},
		{name: "from here", opts: `host="a.dyn.example.com",from="8.8.4.0/24"`, addr: public4,
			want: []string{"good a.dyn.example.com A 8.8.4.4 ttl=60"}, wantZones: []string{"dyn"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dyn, parent := newMemory(), newMemory()
			obs := &recorder{}
			s := &Service{Zones: []Zone{{Name: "Example.COM.", TTL: 3600, Backend: parent}, {Name: "dyn.example.com", TTL: 60, Backend: dyn}}, Observer: obs}
			if tc.svc != nil {
				tc.svc(s)
			}
			res, err := s.Update(t.Context(), Request{Identity: entry(t, tc.opts), Client: tc.addr, Addr: tc.addr, Hosts: tc.named})
			if tc.wantErr != 0 {
				var pe *Error
				if !errors.As(err, &pe) || pe.Kind != tc.wantErr {
					t.Fatalf("err = %v, want a %v refusal", err, tc.wantErr)
				}
				if sets(dyn)+sets(parent) != 0 || len(obs.updates) != 0 {
					t.Errorf("a refused request reached a backend: %v %v", sets(dyn), sets(parent))
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, r := range res {
				got = append(got, r.Kind.String()+" "+r.Host+" "+r.Type+" "+r.Addr.String()+" ttl="+strconv.Itoa(int(r.TTL)))
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("results %q, want %q", got, tc.want)
			}
			var zones []string
			for _, r := range res {
				zones = append(zones, map[string]string{"dyn.example.com": "dyn", "example.com": "parent"}[r.Zone])
			}
			if !slices.Equal(zones, tc.wantZones) || sets(dyn)+sets(parent) != len(tc.wantZones) {
				t.Errorf("zones %v (dyn %d sets, parent %d), want %v", zones, sets(dyn), sets(parent), tc.wantZones)
			}
			if len(obs.updates) != len(res) {
				t.Errorf("observed %v for %d results", obs.updates, len(res))
			}
		})
	}
}

// failure is a backend's failure of kind k.
func failure(k backend.Kind, temporary bool) error {
	return &backend.Error{Kind: k, Temporary: temporary, Backend: "test backend", Zone: "dyn.example.com", Hint: "a hint", Err: errors.New(k.String())}
}

// TestUpdateFailures: each failure of a backend becomes a kind, a
// temporary flag and a class; the detail stays in Err.
func TestUpdateFailures(t *testing.T) {
	cases := []struct {
		err   error
		kind  Kind
		class Class
	}{
		{failure(backend.KindCredentials, false), KindCredentials, ClassServer},
		{failure(backend.KindRefused, false), KindRefused, ClassServer},
		{failure(backend.KindIgnored, false), KindIgnored, ClassServer},
		{failure(backend.KindNotZone, false), KindNotZone, ClassServer},
		{failure(backend.KindOther, false), KindOther, ClassServer},
		{failure(backend.KindUnreachable, true), KindUnreachable, ClassTemporary},
		{failure(backend.KindTimeout, true), KindTimeout, ClassTemporary},
		{failure(backend.KindServerFailure, true), KindServFail, ClassTemporary},
		{context.DeadlineExceeded, KindTimeout, ClassTemporary},
		{errors.New("something else"), KindOther, ClassTemporary},
	}
	for _, tc := range cases {
		t.Run(tc.kind.String(), func(t *testing.T) {
			m := newMemory()
			m.Fail(tc.err)
			obs := &recorder{}
			s := &Service{Zones: []Zone{{Name: "dyn.example.com", TTL: 60, Backend: m}}, Observer: obs}
			res, err := s.Update(t.Context(), Request{Identity: entry(t, `host="a.dyn.example.com"`), Client: public4, Addr: public4})
			if err != nil {
				t.Fatal(err)
			}
			r := res[0]
			if r.OK() || r.Kind != tc.kind || r.Kind.Class(r.Temporary) != tc.class || !errors.Is(r.Err, tc.err) {
				t.Errorf("= %v temporary %v class %v err %v; want %v class %v", r.Kind, r.Temporary, r.Kind.Class(r.Temporary), r.Err, tc.kind, tc.class)
			}
			if want := []string{"dyn.example.com A " + tc.kind.String()}; !slices.Equal(obs.updates, want) {
				t.Errorf("observed %v, want %v", obs.updates, want)
			}
		})
	}
}

// TestChangeLimit: an identity's changes are counted, nochg is free, and
// another identity has its own budget.
func TestChangeLimit(t *testing.T) {
	m := newMemory()
	obs := &recorder{}
	s := &Service{Zones: []Zone{{Name: "dyn.example.com", TTL: 60, Backend: m}}, MaxChangesPerKey: 1, Observer: obs}
	a, b := entry(t, `host="a.dyn.example.com"`), entry(t, `host="b.dyn.example.com"`)
	step := func(id *authorized.Entry, addr string, want Kind) {
		t.Helper()
		res, err := s.Update(t.Context(), Request{Identity: id, Client: netip.MustParseAddr(addr), Addr: netip.MustParseAddr(addr)})
		if err != nil || res[0].Kind != want {
			t.Fatalf("update %s = %v, %v; want %v", addr, res, err, want)
		}
	}
	step(a, "8.8.4.4", KindGood)
	step(a, "8.8.4.4", KindNoChange)
	step(a, "8.8.4.5", KindRateLimited)
	step(b, "8.8.4.5", KindGood)
	if got := addr(m, "a.dyn.example.com", "A"); got != netip.MustParseAddr("8.8.4.4") {
		t.Errorf("over the limit, the record became %v", got)
	}
	if !slices.Equal(obs.limited, []string{LimitChanges}) {
		t.Errorf("limited %v", obs.limited)
	}
	res, _ := s.Update(t.Context(), Request{Identity: a, Client: netip.MustParseAddr("8.8.4.5"), Addr: netip.MustParseAddr("8.8.4.5")})
	var le *LimitError
	if !res[0].Temporary || !errors.As(res[0].Err, &le) || le.Retry <= 0 || le.Retry > time.Hour {
		t.Errorf("rate-limited result %+v", res[0])
	}
}

// TestRequestLimit: an identity may make MaxRequestsPerKey requests,
// nochg and status included, per window; the next is refused before any
// DNS work, temporarily, and other identities are not affected (audit
// M1: status and nochg updates had no per-key rate).
func TestRequestLimit(t *testing.T) {
	m := newMemory()
	obs := &recorder{}
	s := &Service{Zones: []Zone{{Name: "dyn.example.com", TTL: 60, Backend: m}}, MaxRequestsPerKey: 3, Observer: obs}
	a, b := entry(t, `host="a.dyn.example.com"`), entry(t, `host="b.dyn.example.com"`)
	req := func(id *authorized.Entry) Request { return Request{Identity: id, Client: public4, Addr: public4} }
	for i, kind := range []Kind{KindGood, KindNoChange} {
		if res, err := s.Update(t.Context(), req(a)); err != nil || res[0].Kind != kind {
			t.Fatalf("update %d = %v, %v", i+1, res, err)
		}
	}
	if _, err := s.Status(t.Context(), req(a)); err != nil {
		t.Fatal(err)
	}
	before := sets(m)
	for _, call := range []func() error{
		func() error { _, err := s.Update(t.Context(), req(a)); return err },
		func() error { _, err := s.Status(t.Context(), req(a)); return err },
	} {
		err := call()
		var pe *Error
		var le *LimitError
		if !errors.As(err, &pe) || pe.Kind != KindRateLimited || !pe.Temporary || !errors.As(err, &le) || le.What != "requests" || le.Retry <= 0 || le.Retry > time.Minute {
			t.Fatalf("request over the limit: %v; want a temporary rate_limited *Error with a LimitError", err)
		}
		if !strings.HasPrefix(err.Error(), "too many requests for this key; try again in ") {
			t.Errorf("message %q", err)
		}
	}
	if sets(m) != before {
		t.Error("a request over the limit reached the backend")
	}
	if res, err := s.Update(t.Context(), req(b)); err != nil || res[0].Kind != KindGood {
		t.Fatalf("another identity: %v, %v", res, err)
	}
	if !slices.Equal(obs.limited, []string{LimitRequests, LimitRequests}) {
		t.Errorf("limited %v", obs.limited)
	}
}

// TestBusy: with every DNS slot taken, a request waits until its timeout,
// then is refused as a whole, temporarily.
func TestBusy(t *testing.T) {
	m := newMemory()
	block := make(chan struct{})
	m.Block(block)
	obs := &recorder{}
	s := &Service{Zones: []Zone{{Name: "dyn.example.com", TTL: 60, Backend: m}}, MaxInFlight: 1, Timeout: 200 * time.Millisecond, Observer: obs}
	a := entry(t, `host="a.dyn.example.com"`)
	done := make(chan error)
	go func() {
		_, err := s.Update(context.Background(), Request{Identity: a, Client: public4, Addr: public4})
		done <- err
	}()
	for s.InFlight() == 0 {
		time.Sleep(time.Millisecond)
	}
	_, err := s.Update(t.Context(), Request{Identity: a, Client: public4, Addr: public4})
	var pe *Error
	if !errors.As(err, &pe) || pe.Kind != KindBusy || pe.Kind.Class(pe.Temporary) != ClassTemporary {
		t.Errorf("second update = %v, want busy", err)
	}
	close(block)
	if err := <-done; err != nil {
		t.Error(err)
	}
	if !slices.Equal(obs.limited, []string{LimitDNSSlots}) {
		t.Errorf("limited %v", obs.limited)
	}
}

// TestUpdateGoesOnWhenTheClientLeaves: a request whose client goes away
// mid-update is not abandoned half done.
func TestUpdateGoesOnWhenTheClientLeaves(t *testing.T) {
	m := newMemory()
	s := &Service{Zones: []Zone{{Name: "dyn.example.com", TTL: 60, Backend: ctxBackend{m}}}}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	res, err := s.Update(ctx, Request{Identity: entry(t, `host="a.dyn.example.com"`), Client: public4, Addr: public4})
	if err != nil || res[0].Kind != KindGood {
		t.Errorf("= %v, %v; want good", res, err)
	}
}

// ctxBackend fails when its context is done.
type ctxBackend struct{ *memory.Backend }

func (c ctxBackend) Set(ctx context.Context, recs []backend.Record, allow func() error) []backend.Result {
	if err := ctx.Err(); err != nil {
		return backend.Each(len(recs), err)
	}
	return c.Backend.Set(ctx, recs, allow)
}

func TestStatus(t *testing.T) {
	m := newMemory()
	s := &Service{Zones: []Zone{{Name: "dyn.example.com", TTL: 60, Backend: m}}}
	a := entry(t, `host="a.dyn.example.com",host="b.dyn.example.com"`)
	if _, err := s.Update(t.Context(), Request{Identity: a, Client: public6, Addr: public6, Hosts: []string{"a.dyn.example.com"}}); err != nil {
		t.Fatal(err)
	}
	got, err := s.Status(t.Context(), Request{Identity: a, Client: public4, Addr: public4})
	if err != nil || len(got) != 2 || len(got[0].Records) != 1 || got[0].Records[0].Addr != public6 || len(got[1].Records) != 0 {
		t.Fatalf("status = %+v, %v", got, err)
	}
	if _, err := s.Status(t.Context(), Request{Identity: a, Client: public4, Addr: public4, Hosts: []string{"c.dyn.example.com"}}); err == nil {
		t.Error("status of another identity's host answered")
	}
	m.Fail(&backend.Error{Kind: backend.KindUnreachable, Temporary: true, Backend: "test", Err: errors.New("down")})
	_, err = s.Status(t.Context(), Request{Identity: a, Client: public4, Addr: public4})
	var pe *Error
	if !errors.As(err, &pe) || pe.Kind != KindUnreachable || !pe.Temporary || pe.Host != "a.dyn.example.com" {
		t.Errorf("status with the primary down = %v", err)
	}
}

func TestNoZone(t *testing.T) {
	s := &Service{Zones: []Zone{{Name: "other.example.org", TTL: 60, Backend: newMemory()}}}
	_, err := s.Update(t.Context(), Request{Identity: entry(t, `host="a.dyn.example.com"`), Client: public4, Addr: public4})
	var pe *Error
	if !errors.As(err, &pe) || pe.Kind != KindNoZone || pe.Kind.Class(false) != ClassServer {
		t.Errorf("= %v, want no_zone", err)
	}
}

func TestPenalty(t *testing.T) {
	obs := &recorder{}
	s := &Service{Zones: []Zone{{Name: "dyn.example.com", Backend: newMemory()}}, FailPenalty: 10 * time.Second, FailGrace: 15 * time.Second, Observer: obs}
	a := netip.MustParseAddr("8.8.4.4")
	s.LoginFailed(a)
	if _, refused := s.Penalized(a); refused {
		t.Fatal("refused after one failure")
	}
	s.LoginFailed(netip.MustParseAddr("::ffff:8.8.4.4")) // the same source, from a dual-stack listener
	if _, refused := s.Penalized(a); !refused {
		t.Fatal("not refused after two failures (20s > 15s)")
	}
	if !slices.Equal(obs.limited, []string{LimitPenalty}) {
		t.Errorf("limited %v", obs.limited)
	}
	off := &Service{}
	for range 100 {
		off.LoginFailed(a)
	}
	if _, refused := off.Penalized(a); refused {
		t.Error("FailPenalty 0 refused a source")
	}
}

func TestAuthorize(t *testing.T) {
	s := &Service{Zones: []Zone{{Name: "dyn.example.com", TTL: 60, Backend: newMemory()}}}
	a := entry(t, `host="a.dyn.example.com",from="8.8.4.0/24"`)
	for _, tc := range []struct {
		client string
		hosts  []string
		want   Kind // 0: allowed
	}{
		{"8.8.4.4", nil, 0},
		{"8.8.4.4", []string{"A.dyn.example.com."}, 0},
		{"8.8.4.4", []string{"b.dyn.example.com"}, KindNotOwned},
		{"9.9.9.9", nil, KindDenied},
	} {
		err := s.Authorize(Request{Identity: a, Client: netip.MustParseAddr(tc.client), Hosts: tc.hosts})
		var pe *Error
		if tc.want == 0 && err != nil || tc.want != 0 && (!errors.As(err, &pe) || pe.Kind != tc.want) {
			t.Errorf("Authorize(%s, %v) = %v, want %v", tc.client, tc.hosts, err, tc.want)
		}
	}
}

func TestLANAddress(t *testing.T) {
	cases := []struct {
		prefix, iid, want string // want "" if it does not fit
	}{
		{"2001:db8:1:2::/64", "::211:32ff:fe12:3456", "2001:db8:1:2:211:32ff:fe12:3456"},
		{"2001:db8:1:2:ffff::/64", "::1", "2001:db8:1:2::1"},    // host bits of the prefix are dropped
		{"2001:db8:1::/56", "::1:0:0:0:10", "2001:db8:1:1::10"}, // another /64 of the /56
		{"2001:db8:1:2::/64", "::1:0:0:0:10", ""},               // the IID's 1 is in the prefix's bits
		{"2001:db8:1:2::/64", "::1:0:0:10", "2001:db8:1:2:1::10"},
		{"2001:db8:1:20::/60", "::f:0:0:0:1", "2001:db8:1:2f::1"},
		{"2001:db8:1:20::/60", "::1f:0:0:0:1", ""},
		{"2001:db8::/48", "::ffff:0:0:0:1", "2001:db8:0:ffff::1"},
		{"2001:db8::/48", "::1:0:0:0:0:1", ""},
		{"198.51.100.0/24", "::1", ""},
	}
	for _, tc := range cases {
		a, ok := LANAddress(netip.MustParsePrefix(tc.prefix), netip.MustParseAddr(tc.iid))
		if got := map[bool]string{true: a.String(), false: ""}[ok]; got != tc.want {
			t.Errorf("LANAddress(%s, %s) = %q, want %q", tc.prefix, tc.iid, got, tc.want)
		}
	}
}

// TestLANHosts: an IPv6 update sets the identity's own AAAA and its LAN
// hosts' under the prefix, as one change per zone; a repeat writes
// nothing; IPv4 leaves them alone; a dyndns2 ip6lanprefix wins over the
// address's prefix, its length over prefix-length.
func TestLANHosts(t *testing.T) {
	m := newMemory()
	obs := &recorder{}
	s := &Service{Zones: []Zone{{Name: "dyn.example.com", TTL: 60, Backend: m}}, MaxChangesPerKey: 3, Observer: obs}
	id := entry(t, `host="home.dyn.example.com",lan-host="nas.dyn.example.com=::211:32ff:fe12:3456",lan-host="cam.dyn.example.com=::1:0:0:0:10",prefix-length=56`)
	update := func(req Request) []string {
		t.Helper()
		req.Identity, req.LAN = id, true
		if !req.Client.IsValid() {
			req.Client = req.Addr
		}
		res, err := s.Update(t.Context(), req)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, r := range res {
			got = append(got, r.Kind.String()+" "+r.Host+" "+r.Type+" "+r.Addr.String())
		}
		return got
	}
	got := update(Request{Addr: netip.MustParseAddr("2a00:1450:1:2::99")})
	want := []string{"good home.dyn.example.com AAAA 2a00:1450:1:2::99", "good nas.dyn.example.com AAAA 2a00:1450:1:0:211:32ff:fe12:3456", "good cam.dyn.example.com AAAA 2a00:1450:1:1::10"}
	if !slices.Equal(got, want) || calls(m) != 1 || writes(m) != 1 {
		t.Fatalf("first = %q in %d messages, %d writes; want %q in one", got, calls(m), writes(m), want)
	}
	got = update(Request{Addr: netip.MustParseAddr("2a00:1450:1:2::99")})
	if got[0] != "nochg home.dyn.example.com AAAA 2a00:1450:1:2::99" || writes(m) != 1 {
		t.Errorf("repeat = %q, %d writes", got, writes(m))
	}
	got = update(Request{Addr: netip.MustParseAddr("8.8.4.4")})
	if len(got) != 1 || got[0] != "good home.dyn.example.com A 8.8.4.4" {
		t.Errorf("IPv4 = %q, want the A record alone", got)
	}
	// dyndns2: ip6lanprefix with its own length (a /64: cam's IID no longer fits).
	got = update(Request{Front: FrontHTTP, Client: netip.MustParseAddr("8.8.4.4"), Addr: netip.MustParseAddr("2a00:1450:1:2::99"), LANPrefix: netip.MustParsePrefix("2a00:1450:9:9::/64")})
	want = []string{"nochg home.dyn.example.com AAAA 2a00:1450:1:2::99", "good nas.dyn.example.com AAAA 2a00:1450:9:9:211:32ff:fe12:3456", "bad_prefix cam.dyn.example.com AAAA 2a00:1450:9:9::"}
	if !slices.Equal(got, want) {
		t.Errorf("with ip6lanprefix = %q, want %q", got, want)
	}
	// The change limit counts one message once: 3 changes so far (two
	// messages of LAN hosts and the A record), so the
	// next change is refused for all of them, and nothing is written:
	// the backend has written three times, as before.
	written := writes(m)
	got = update(Request{Addr: netip.MustParseAddr("2a00:1450:7:7::1")})
	if got[0] != "rate_limited home.dyn.example.com AAAA 2a00:1450:7:7::1" || written != 3 || writes(m) != written {
		t.Errorf("over the limit = %q, %d writes", got, writes(m))
	}
	// Without LAN: the host alone.
	if res, err := s.Update(t.Context(), Request{Identity: id, Client: netip.MustParseAddr("8.8.4.4"), Addr: netip.MustParseAddr("2a00:1450:1:2::99")}); err != nil || len(res) != 1 {
		t.Errorf("without LAN = %v, %v", res, err)
	}
	st, err := s.Status(t.Context(), Request{Identity: id, Client: netip.MustParseAddr("8.8.4.4")})
	if err != nil || len(st) != 3 || st[1].Host != "nas.dyn.example.com" || len(st[1].Records) != 1 {
		t.Errorf("status = %+v, %v; want the host and both LAN hosts", st, err)
	}
	// A private prefix: the LAN hosts are refused, each alone.
	got = update(Request{Front: FrontHTTP, Client: netip.MustParseAddr("8.8.4.4"), Addr: netip.MustParseAddr("2a00:1450:1:2::99"), LANPrefix: netip.MustParsePrefix("fd00:1:2:3::/64")})
	if len(got) != 3 || !strings.HasPrefix(got[1], "not_public nas.") {
		t.Errorf("private LAN prefix = %q", got)
	}
	// An IPv4-mapped prefix is no IPv6 LAN's: it used to set nas's A
	// record to 8.8.8.x.
	got = update(Request{Front: FrontHTTP, Client: netip.MustParseAddr("8.8.4.4"), Addr: netip.MustParseAddr("2a00:1450:1:2::99"), LANPrefix: netip.MustParsePrefix("::ffff:8.8.8.0/120")})
	if len(got) != 3 || !strings.HasPrefix(got[1], "bad_prefix nas.dyn.example.com AAAA") || !strings.HasPrefix(got[2], "bad_prefix cam.") {
		t.Errorf("IPv4-mapped LAN prefix = %q, want bad_prefix for each LAN host", got)
	}
	if a, _, ok := m.Get("nas.dyn.example.com", "A"); ok {
		t.Errorf("nas has an A record: %v", a)
	}
}

// TestBothFamiliesAreOneChange: one request with an IPv4 and an IPv6
// address for two hosts is one Set per zone: each host's A and AAAA and
// the LAN hosts, all or nothing; the results are host by host, IPv4
// first, then the LAN hosts. Two addresses of one family are malformed.
func TestBothFamiliesAreOneChange(t *testing.T) {
	m := newMemory()
	s := &Service{Zones: []Zone{{Name: "dyn.example.com", TTL: 60, Backend: m}}, MaxChangesPerKey: 1}
	id := entry(t, `host="a.dyn.example.com",host="b.dyn.example.com",lan-host="nas.dyn.example.com=::1",prefix-length=64`)
	res, err := s.Update(t.Context(), Request{Identity: id, Client: public4, Addrs: []netip.Addr{public6, public4}, LAN: true})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range res {
		got = append(got, r.Kind.String()+" "+r.Host+" "+r.Type)
	}
	want := []string{"good a.dyn.example.com A", "good a.dyn.example.com AAAA", "good b.dyn.example.com A", "good b.dyn.example.com AAAA", "good nas.dyn.example.com AAAA"}
	if !slices.Equal(got, want) {
		t.Errorf("results %q, want %q", got, want)
	}
	if calls(m) != 1 || writes(m) != 1 {
		t.Errorf("%d Set calls, %d writes; want one change", calls(m), writes(m))
	}
	// The change limit of 1 is spent: the next change is refused whole,
	// every record of it (the unchanged A ones too: all or nothing).
	res, err = s.Update(t.Context(), Request{Identity: id, Client: public4, Addrs: []netip.Addr{public4, netip.MustParseAddr("2a00:1450::2")}})
	if err != nil || len(res) != 4 || slices.ContainsFunc(res, func(r HostResult) bool { return r.Kind != KindRateLimited }) {
		t.Errorf("over the limit: %+v %v", res, err)
	}
	if writes(m) != 1 {
		t.Error("written over the limit")
	}
	_, err = s.Update(t.Context(), Request{Identity: id, Client: public4, Addrs: []netip.Addr{public4, netip.MustParseAddr("8.8.8.8")}})
	var pe *Error
	if !errors.As(err, &pe) || pe.Kind != KindMalformed {
		t.Errorf("two IPv4 addresses: %v, want malformed", err)
	}
}

// TestPrefixOnly: a prefix-only IPv6 update gives each host's AAAA the
// new prefix and keeps its interface ID (the bits below the prefix),
// moves the LAN hosts, all in one change; a host with no AAAA takes
// iid=, or is refused alone; a bad prefix, or a prefix with an IPv6
// address, refuses the request and writes nothing.
func TestPrefixOnly(t *testing.T) {
	m := newMemory()
	s := &Service{Zones: []Zone{{Name: "dyn.example.com", TTL: 60, Backend: m}}}
	id := entry(t, `host="home.dyn.example.com",host="tv.dyn.example.com",lan-host="nas.dyn.example.com=::211:32ff:fe12:3456",prefix-length=56`)
	update := func(req Request) ([]string, error) {
		t.Helper()
		req.Identity, req.LAN, req.Client = id, true, netip.MustParseAddr("8.8.8.8")
		res, err := s.Update(t.Context(), req)
		var got []string
		for _, r := range res {
			got = append(got, r.Kind.String()+" "+r.Host+" "+r.Type+" "+r.Addr.String())
		}
		return got, err
	}
	if _, err := update(Request{Hosts: []string{"home.dyn.example.com"}, Addr: netip.MustParseAddr("2a00:1450:1:5:aa:bb:cc:dd")}); err != nil {
		t.Fatal(err)
	}
	w := writes(m)
	got, err := update(Request{V6Prefix: netip.MustParsePrefix("2a00:1450:2::/56")})
	want := []string{
		"good home.dyn.example.com AAAA 2a00:1450:2:5:aa:bb:cc:dd", // the /64's subnet bits below the /56 kept
		"bad_prefix tv.dyn.example.com AAAA 2a00:1450:2::",         // no AAAA yet, no iid=
		"good nas.dyn.example.com AAAA 2a00:1450:2:0:211:32ff:fe12:3456",
	}
	if err != nil || !slices.Equal(got, want) || writes(m) != w+1 {
		t.Fatalf("prefix-only = %q, %v, %d writes; want %q in one", got, err, writes(m)-w, want)
	}
	id2 := entry(t, `host="tv.dyn.example.com",iid=::1:2:3:4`)
	res, err := s.Update(t.Context(), Request{Identity: id2, Client: netip.MustParseAddr("8.8.8.8"), V6Prefix: netip.MustParsePrefix("2a00:1450:3::/48")})
	if err != nil || len(res) != 1 || res[0].Kind != KindGood || res[0].Addr.String() != "2a00:1450:3:0:1:2:3:4" {
		t.Errorf("iid= = %+v, %v", res, err)
	}
	w = writes(m)
	for _, req := range []Request{
		{V6Prefix: netip.MustParsePrefix("2a00:1450::/40")},
		{V6Prefix: netip.MustParsePrefix("2a00:1450:1:2:3::/80")},
		{V6Prefix: netip.MustParsePrefix("::ffff:8.8.8.0/120")},
		{V6Prefix: netip.MustParsePrefix("2a00:1450:2::/56"), Addr: netip.MustParseAddr("2a00:1450:9::1")},
	} {
		var pe *Error
		if _, err := update(req); !errors.As(err, &pe) || pe.Kind != KindMalformed {
			t.Errorf("%v: %v, want malformed", req.V6Prefix, err)
		}
	}
	if writes(m) != w {
		t.Error("a refused prefix-only request wrote")
	}
}

func TestWithPrefix(t *testing.T) {
	for _, tc := range []struct{ prefix, addr, want string }{
		{"2001:db8:1::/48", "2001:db8:9:5:1:2:3:4", "2001:db8:1:5:1:2:3:4"},
		{"2001:db8:1:200::/56", "2001:db8:9:5ff:1:2:3:4", "2001:db8:1:2ff:1:2:3:4"},
		{"2001:db8:1:2::/64", "2001:db8:9:5:1:2:3:4", "2001:db8:1:2:1:2:3:4"},
		{"2001:db8:1:0::/60", "2001:db8:9:ff:1:2:3:4", "2001:db8:1:f:1:2:3:4"},
	} {
		if got := withPrefix(netip.MustParsePrefix(tc.prefix), netip.MustParseAddr(tc.addr)).String(); got != tc.want {
			t.Errorf("withPrefix(%s, %s) = %s, want %s", tc.prefix, tc.addr, got, tc.want)
		}
	}
}

// TestWildcardOption: a line with the wildcard option sets *.HOST with
// each of HOST's records, in the same change; NoWildcard (dyndns2's
// wildcard=OFF) leaves it; a line without the option never has one;
// Status shows it.
func TestWildcardOption(t *testing.T) {
	m := newMemory()
	s := &Service{Zones: []Zone{{Name: "dyn.example.com", TTL: 60, Backend: m}}}
	id := entry(t, `host="home.dyn.example.com",wildcard`)
	plain := entry(t, `host="nas.dyn.example.com"`)
	run := func(id *authorized.Entry, req Request) []string {
		t.Helper()
		req.Identity, req.Client = id, netip.MustParseAddr("8.8.8.8")
		res, err := s.Update(t.Context(), req)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, r := range res {
			got = append(got, r.Kind.String()+" "+r.Host+" "+r.Type+" "+r.Addr.String())
		}
		return got
	}
	w := writes(m)
	got := run(id, Request{Addrs: []netip.Addr{netip.MustParseAddr("8.8.4.4"), netip.MustParseAddr("2a00:1450::1")}})
	want := []string{"good home.dyn.example.com A 8.8.4.4", "good home.dyn.example.com AAAA 2a00:1450::1",
		"good *.home.dyn.example.com A 8.8.4.4", "good *.home.dyn.example.com AAAA 2a00:1450::1"}
	if !slices.Equal(got, want) || writes(m) != w+1 {
		t.Fatalf("update = %q in %d writes; want %q in one", got, writes(m)-w, want)
	}
	got = run(id, Request{Addr: netip.MustParseAddr("8.8.8.8"), NoWildcard: true})
	if !slices.Equal(got, []string{"good home.dyn.example.com A 8.8.8.8"}) {
		t.Errorf("NoWildcard = %q", got)
	}
	if a, _, _ := m.Get("*.home.dyn.example.com", "A"); a.String() != "8.8.4.4" {
		t.Errorf("NoWildcard changed the wildcard: %v", a)
	}
	if got := run(plain, Request{Addr: netip.MustParseAddr("8.8.8.8")}); len(got) != 1 {
		t.Errorf("a line without the option: %q", got)
	}
	st, err := s.Status(t.Context(), Request{Identity: id, Client: netip.MustParseAddr("8.8.8.8")})
	if err != nil || len(st) != 2 || st[1].Host != "*.home.dyn.example.com" || len(st[1].Records) != 2 {
		t.Errorf("status = %+v, %v", st, err)
	}
}

// TestOffline: removing a family removes each host's RRset of it, its
// wildcard's and (AAAA, with LAN) the LAN hosts', in one change per
// zone; a second removal is nochg and writes nothing; an update brings
// them back; a removal beside an address of the same family, or beside
// a prefix, is malformed; an address of the other family goes with it.
func TestOffline(t *testing.T) {
	m := newMemory()
	obs := &recorder{}
	s := &Service{Zones: []Zone{{Name: "dyn.example.com", TTL: 60, Backend: m}}, Observer: obs}
	id := entry(t, `host="home.dyn.example.com",host="tv.dyn.example.com",wildcard,lan-host="nas.dyn.example.com=::1",prefix-length=64`)
	run := func(req Request) ([]string, error) {
		t.Helper()
		req.Identity, req.Client, req.LAN = id, public4, true
		res, err := s.Update(t.Context(), req)
		var got []string
		for _, r := range res {
			a := r.Addr.String()
			if r.Removed {
				a = "removed"
			}
			got = append(got, r.Kind.String()+" "+r.Host+" "+r.Type+" "+a)
		}
		return got, err
	}
	if _, err := run(Request{Addrs: []netip.Addr{public4, public6}}); err != nil {
		t.Fatal(err)
	}
	w := writes(m)
	got, err := run(Request{RemoveA: true, RemoveAAAA: true})
	want := []string{
		"good home.dyn.example.com A removed", "good home.dyn.example.com AAAA removed",
		"good tv.dyn.example.com A removed", "good tv.dyn.example.com AAAA removed",
		"good *.home.dyn.example.com A removed", "good *.home.dyn.example.com AAAA removed",
		"good *.tv.dyn.example.com A removed", "good *.tv.dyn.example.com AAAA removed",
		"good nas.dyn.example.com AAAA removed",
	}
	if err != nil || !slices.Equal(got, want) || writes(m) != w+1 {
		t.Fatalf("offline = %q, %v in %d writes; want %q in one", got, err, writes(m)-w, want)
	}
	for _, n := range []string{"home", "tv", "*.home", "nas"} {
		if recs, _ := m.Lookup(t.Context(), n+".dyn.example.com"); len(recs) != 0 {
			t.Errorf("%s still has %v", n, recs)
		}
	}
	got, _ = run(Request{RemoveA: true, RemoveAAAA: true, Hosts: []string{"tv.dyn.example.com"}})
	if len(got) != 5 || slices.ContainsFunc(got, func(s string) bool { return !strings.HasPrefix(s, "nochg ") }) || writes(m) != w+1 {
		t.Errorf("offline again = %q, %d writes; want nochg, nothing written", got, writes(m)-w-1)
	}
	// An IPv4 address with the AAAA records' removal: one change.
	if _, err := run(Request{Addrs: []netip.Addr{public4, public6}}); err != nil {
		t.Fatal(err)
	}
	got, err = run(Request{Addr: public4, RemoveAAAA: true, Hosts: []string{"home.dyn.example.com"}})
	want = []string{"nochg home.dyn.example.com A " + public4.String(), "good home.dyn.example.com AAAA removed",
		"nochg *.home.dyn.example.com A " + public4.String(), "good *.home.dyn.example.com AAAA removed", "good nas.dyn.example.com AAAA removed"}
	if err != nil || !slices.Equal(got, want) {
		t.Errorf("IPv4 and no IPv6 = %q, %v; want %q", got, err, want)
	}
	if a := addr(m, "tv.dyn.example.com", "AAAA"); a != public6 {
		t.Errorf("tv's AAAA, not asked for, is %v", a)
	}
	// No IPv6 address of its own, and its LAN's prefix: the host's AAAA
	// goes, the LAN hosts move (a FRITZ!Box behind DS-Lite).
	got, err = run(Request{Addr: public4, RemoveAAAA: true, Hosts: []string{"tv.dyn.example.com"}, LANPrefix: netip.MustParsePrefix("2a00:1450:5:6::/64")})
	want = []string{"nochg tv.dyn.example.com A " + public4.String(), "good tv.dyn.example.com AAAA removed",
		"nochg *.tv.dyn.example.com A " + public4.String(), "good *.tv.dyn.example.com AAAA removed", "good nas.dyn.example.com AAAA 2a00:1450:5:6::1"}
	if err != nil || !slices.Equal(got, want) {
		t.Errorf("removal with a LAN prefix = %q, %v; want %q", got, err, want)
	}
	w = writes(m)
	for _, req := range []Request{
		{Addr: public4, RemoveA: true},
		{Addr: public6, RemoveAAAA: true},
		{V6Prefix: netip.MustParsePrefix("2a00:1450:2::/56"), RemoveAAAA: true},
	} {
		var pe *Error
		if _, err := run(req); !errors.As(err, &pe) || pe.Kind != KindMalformed {
			t.Errorf("%+v: %v, want malformed", req, err)
		}
	}
	if writes(m) != w {
		t.Error("a malformed removal wrote")
	}
}
