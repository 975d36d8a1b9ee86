package dyndns2

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/crypto/bcrypt"

	"github.com/sshdyn/sshdyn/authorized"
	"github.com/sshdyn/sshdyn/backend/memory"
	"github.com/sshdyn/sshdyn/publish"
)

// env is a dyndns2 front on the in-memory backend: two router lines,
// "router" (hosts a and b) and "other" (host c), and a trusted proxy at
// 127.0.0.9. p is the zone and what it holds.
type env struct {
	p    *memZone
	url  string
	srv  *Server
	hash string
}

// memZone is the zone of an env: its name and its in-memory backend.
type memZone struct {
	Zone string
	m    *memory.Backend
}

// Serial is the number of writes so far.
func (z *memZone) Serial(*testing.T) uint64 { return z.m.Changes() }

// Lookup returns what name's RRset of type t holds.
func (z *memZone) Lookup(_ *testing.T, name string, t uint16) []string {
	a, _, ok := z.m.Get(name, dns.TypeToString[t])
	if !ok {
		return nil
	}
	return []string{a.String()}
}

const password = "correct horse battery staple"

func newEnv(t *testing.T, opts string) *env {
	t.Helper()
	p := &memZone{Zone: "dyn.example.com", m: memory.New()}
	h, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	text := `http-user="router",http-password="` + string(h) + `",host="a.` + p.Zone + `",host="b.` + p.Zone + `"` + opts + "\n" +
		`http-user="other",http-password="` + string(h) + `",host="c.` + p.Zone + `"` + "\n"
	m, err := authorized.Parse(strings.NewReader(text), "keys", authorized.Scope{Zones: []string{p.Zone}, MinPasswordCost: bcrypt.MinCost})
	if err != nil {
		t.Fatal(err)
	}
	svc := &publish.Service{Zones: []publish.Zone{{Name: p.Zone, TTL: 60, Backend: p.m}}}
	srv := &Server{Users: m, Service: svc, TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.9/32")}}
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	return &env{p: p, url: hs.URL, srv: srv, hash: string(h)}
}

// get sends GET path?query with the given credentials (none if user is
// "") and headers, and returns the status and body.
func (e *env) get(t *testing.T, path, query, user, pass string, header ...string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, e.url+path+"?"+query, nil)
	if err != nil {
		t.Fatal(err)
	}
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestUpdateAndNochg(t *testing.T) {
	e := newEnv(t, ",allow-private")
	host := "a." + e.p.Zone
	q := "hostname=" + host + "&myip=192.0.2.7"
	if code, body := e.get(t, "/nic/update", q, "router", password); code != 200 || body != "good 192.0.2.7\n" {
		t.Fatalf("first update = %d %q", code, body)
	}
	serial := e.p.Serial(t)
	if code, body := e.get(t, "/v3/update", q, "router", password); code != 200 || body != "nochg 192.0.2.7\n" {
		t.Fatalf("repeat = %d %q", code, body)
	}
	if e.p.Serial(t) != serial {
		t.Error("nochg wrote")
	}
	if got := e.p.Lookup(t, host, dns.TypeA); len(got) != 1 || got[0] != "192.0.2.7" {
		t.Errorf("A = %v", got)
	}
	// Dual stack in one request, FRITZ!Box style, on the /update alias.
	if code, body := e.get(t, "/update", "hostname="+host+"&myip=192.0.2.8,2001:db8::8", "router", password); code != 200 || body != "good 192.0.2.8,2001:db8::8\n" {
		t.Fatalf("dual stack = %d %q", code, body)
	}
	if got := e.p.Lookup(t, host, dns.TypeAAAA); len(got) != 1 || got[0] != "2001:db8::8" {
		t.Errorf("AAAA = %v", got)
	}
	// No hostname: all of the line's hosts; no myip: the peer's address.
	if code, body := e.get(t, "/nic/update", "", "router", password); code != 200 || body != "good 127.0.0.1\ngood 127.0.0.1\n" {
		t.Fatalf("all hosts, peer address = %d %q", code, body)
	}
	// myipv6 alone, and myip=no: AAAA only.
	if code, body := e.get(t, "/nic/update", "hostname=b."+e.p.Zone+"&myip=no&myipv6=2001:db8::9", "router", password); code != 200 || body != "good 2001:db8::9\n" {
		t.Fatalf("myipv6 = %d %q", code, body)
	}
	if got := e.p.Lookup(t, "b."+e.p.Zone, dns.TypeA); len(got) != 1 || got[0] != "127.0.0.1" {
		t.Errorf("b A after myip=no = %v, want it left alone", got)
	}
}

// TestBadInput: every bad request gets its documented answer and leaves
// DNS unchanged.
func TestBadInput(t *testing.T) {
	e := newEnv(t, "")
	host := "a." + e.p.Zone
	many := make([]string, 21)
	for i := range many {
		many[i] = host
	}
	cases := []struct {
		name, path, query, user, pass string
		header                        []string
		code                          int
		body                          string
	}{
		{"no credentials", "/nic/update", "hostname=" + host + "&myip=8.8.4.4", "", "", nil, 401, "badauth\n"},
		{"wrong password", "/nic/update", "hostname=" + host + "&myip=8.8.4.4", "router", "wrong", nil, 401, "badauth\n"},
		{"unknown user", "/nic/update", "hostname=" + host + "&myip=8.8.4.4", "nobody", password, nil, 401, "badauth\n"},
		{"another's host", "/nic/update", "hostname=c." + e.p.Zone + "&myip=8.8.4.4", "router", password, nil, 200, "nohost\n"},
		{"one of them another's", "/nic/update", "hostname=c." + e.p.Zone + "," + host + "&myip=no", "router", password, nil, 200, "nohost\nnochg\n"},
		{"not a host name", "/nic/update", "hostname=a_b." + e.p.Zone + "&myip=8.8.4.4", "router", password, nil, 200, "notfqdn\n"},
		{"21 hosts", "/nic/update", "hostname=" + strings.Join(many, ",") + "&myip=8.8.4.4", "router", password, nil, 200, "numhost\n"},
		{"malformed myip", "/nic/update", "hostname=" + host + "&myip=8.8.4", "router", password, nil, 400, "badip\n"},
		{"three addresses", "/nic/update", "hostname=" + host + "&myip=8.8.4.4,8.8.8.8,2a00::1", "router", password, nil, 400, "badip\n"},
		{"private address", "/nic/update", "hostname=" + host + "&myip=192.168.1.1", "router", password, nil, 200, "badip\n"},
		{"peer is loopback", "/nic/update", "hostname=" + host, "router", password, nil, 200, "badip\n"},
		{"X-Forwarded-For from an untrusted peer", "/nic/update", "hostname=" + host, "router", password, []string{"X-Forwarded-For", "8.8.4.4"}, 200, "badip\n"},
		{"other path", "/", "", "router", password, nil, 404, "not found\n"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			serial := e.p.Serial(t)
			code, body := e.get(t, tc.path, tc.query, tc.user, tc.pass, tc.header...)
			if code != tc.code || body != tc.body {
				t.Errorf("= %d %q, want %d %q", code, body, tc.code, tc.body)
			}
			if e.p.Serial(t) != serial || len(e.p.Lookup(t, host, dns.TypeA)) != 0 {
				t.Error("DNS changed")
			}
		})
	}
	resp, err := http.Get(e.url + "/nic/update?hostname=" + host)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 || resp.Header.Get("WWW-Authenticate") != `Basic realm="sshdyn"` {
		t.Errorf("no credentials: %d, WWW-Authenticate %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
	resp, err = http.Post(e.url+"/nic/update", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 405 || resp.Header.Get("Allow") != "GET, HEAD" {
		t.Errorf("POST = %d, Allow %q", resp.StatusCode, resp.Header.Get("Allow"))
	}
}

// TestWrongPasswordsPenalize: failed logins count toward the source's
// penalty, shared with SSH (the core's); then even the right password is
// turned away.
func TestWrongPasswordsPenalize(t *testing.T) {
	e := newEnv(t, ",allow-private")
	e.srv.Service.FailPenalty, e.srv.Service.FailGrace = 10*time.Second, 25*time.Second // the third failure crosses it
	for range 3 {
		if code, _ := e.get(t, "/nic/update", "", "router", "wrong"); code != 401 {
			t.Fatalf("wrong password = %d", code)
		}
	}
	code, body := e.get(t, "/nic/update", "myip=192.0.2.1", "router", password)
	if code != http.StatusTooManyRequests || body != "abuse\n" {
		t.Errorf("right password while penalized = %d %q", code, body)
	}
}

// TestRequestLimit: nochg answers count toward max_requests_per_key
// too, once per request (one core call, whatever its hosts and
// families: it used to be one per host and family); over it the router
// is told abuse, and another user is not.
func TestRequestLimit(t *testing.T) {
	e := newEnv(t, ",allow-private")
	e.srv.Service.MaxRequestsPerKey = 2 // two requests, each for the router's two hosts
	for i, want := range []string{"good 192.0.2.1\ngood 192.0.2.1\n", "nochg 192.0.2.1\nnochg 192.0.2.1\n", "abuse\nabuse\n"} {
		if code, body := e.get(t, "/nic/update", "myip=192.0.2.1", "router", password); body != want {
			t.Fatalf("request %d = %d %q, want %q", i+1, code, body, want)
		}
	}
	if _, body := e.get(t, "/nic/update", "myip=8.8.4.4", "other", password); body != "good 8.8.4.4\n" {
		t.Errorf("another user = %q", body)
	}
}

// TestTrustedProxy: from a trusted proxy, X-Forwarded-For names the
// client (whose from= is checked) and, without myip, its address.
func TestTrustedProxy(t *testing.T) {
	e := newEnv(t, `,from="8.8.4.0/24"`)
	proxy := &http.Transport{DialContext: dialFrom("127.0.0.9")}
	c := &http.Client{Transport: proxy}
	send := func(xff string) (int, string) {
		req, _ := http.NewRequest(http.MethodGet, e.url+"/nic/update?hostname=a."+e.p.Zone, nil)
		req.SetBasicAuth("router", password)
		req.Header.Set("X-Forwarded-For", xff)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := send("10.1.1.1, 8.8.4.4"); code != 200 || body != "good 8.8.4.4\n" {
		t.Fatalf("through the proxy = %d %q", code, body)
	}
	if code, _ := send("9.9.9.9"); code != 401 {
		t.Errorf("client outside from= = %d, want 401", code)
	}
	// Without the proxy, from= is matched against the peer, 127.0.0.1.
	if code, _ := e.get(t, "/nic/update", "hostname=a."+e.p.Zone, "router", password, "X-Forwarded-For", "8.8.4.4"); code != 401 {
		t.Errorf("X-Forwarded-For from an untrusted peer got past from= (%d)", code)
	}
}

// An unknown user is compared against a hash of the same cost as
// "sshdyn passwd" makes, so it is no faster than a wrong password.
func TestDummyHashCost(t *testing.T) {
	if c, err := bcrypt.Cost(dummyHash()); err != nil || c != PasswordCost {
		t.Errorf("dummy hash cost %d, %v; want %d", c, err, PasswordCost)
	}
	h, err := HashPassword("x")
	if c, _ := bcrypt.Cost([]byte(h)); err != nil || c != PasswordCost {
		t.Errorf("HashPassword cost %d, %v", c, err)
	}
}

func TestCredCache(t *testing.T) {
	var c credCache
	if c.has("u", "p", "h1") {
		t.Fatal("empty cache has an entry")
	}
	c.add("u", "p", "h1")
	if !c.has("u", "p", "h1") {
		t.Error("verified password not remembered")
	}
	if c.has("u", "q", "h1") {
		t.Error("another password accepted")
	}
	if c.has("u", "p", "h2") {
		t.Error("remembered across a change of the line's hash")
	}
}

func TestParseQuery(t *testing.T) {
	parse := func(s string) (query, error) {
		v, _ := url.ParseQuery(s)
		return parseQuery(v)
	}
	client := netip.MustParseAddr("2001:db8::1")
	for _, tc := range []struct {
		in   string
		want string // the addresses, or "badip"
	}{
		{"", "2001:db8::1"},
		{"myip=", "2001:db8::1"},
		{"myip=198.51.100.1", "198.51.100.1"},
		{"myip=198.51.100.1,2001:db8::2", "198.51.100.1 2001:db8::2"},
		{"myip=2001:db8::2,198.51.100.1", "198.51.100.1 2001:db8::2"},
		{"myip=::ffff:198.51.100.1", "198.51.100.1"},
		{"myip=198.51.100.1&myipv6=2001:db8::3", "198.51.100.1 2001:db8::3"},
		{"myip=198.51.100.1&myipv6=no", "198.51.100.1"},
		{"myip=no&myipv6=no", ""},
		{"myipv6=2001:db8::3", "2001:db8::3"},
		{"myip=198.51.100.1,198.51.100.2", "badip"},
		{"myip=fe80::1%25eth0", "badip"},
		{"myipv6=198.51.100.1", "badip"},
		{"myip=example.com", "badip"},
		{"ip6lanprefix=2001:db8:1::/56&myip=198.51.100.1", "198.51.100.1"},
		{"ip6lanprefix=junk", "badip"},
		{"ip6lanprefix=::ffff:8.8.8.0/120", "badip"},
		{"system=dyndns&wildcard=NOCHG&mx=x&backmx=NO&offline=NO", "2001:db8::1"},
		// An empty element of a list is a family not given (a FRITZ!Box
		// without IPv6: myip=<ipaddr>,<ip6addr>).
		{"myip=198.51.100.7,", "198.51.100.7"},
		{"myip=,2001:db8::2", "2001:db8::2"},
		{"myip=,", "2001:db8::1"},
		// deSEC's and dynv6's spellings.
		{"myipv4=198.51.100.1", "198.51.100.1 2001:db8::1"},
		{"ipv4=198.51.100.1&ipv6=2001:db8::2", "198.51.100.1 2001:db8::2"},
		{"ip=198.51.100.1", "198.51.100.1"},
		{"ip=198.51.100.1,2001:db8::2", "198.51.100.1 2001:db8::2"},
		{"myip=198.51.100.1&ipv6=auto", "198.51.100.1 2001:db8::1"},
		{"myipv4=198.51.100.1&myipv6=preserve", "198.51.100.1"},
		{"myipv4=preserve", "2001:db8::1"},
		{"hostname=YES&myipv4=198.51.100.1", "198.51.100.1 2001:db8::1"},
		// The same address twice is one; two are a malformed request.
		{"myip=198.51.100.1&myipv4=198.51.100.1", "198.51.100.1"},
		{"myip=198.51.100.1&myipv4=198.51.100.2", "badip"},
		{"myipv6=2001:db8::2&ipv6=2001:db8::3", "badip"},
		{"myip=2001:db8::2&myipv6=2001:db8::3", "badip"},
		{"ipv4=2001:db8::2", "badip"},
		{"ip=1,2", "badip"},
		// Prefix-only: the prefix is not an address to publish.
		{"myip=198.51.100.1&myipv6=2001:db8:1::/56", "198.51.100.1"},
		{"ipv4=198.51.100.1&ipv6prefix=2001:db8:1::/48", "198.51.100.1"},
		{"myipv6=2001:db8:1::/40", "badip"},
		{"myipv6=2001:db8:1:2:3::/80", "badip"},
		{"ipv6prefix=::ffff:8.8.8.0/120", "badip"},
		{"myipv6=2001:db8:1::/56&ipv6=2001:db8::1", "badip"},
		{"myipv6=2001:db8:1::/56&ipv6prefix=2001:db8:2::/56", "badip"},
		// Removals: "-A" and "-AAAA" after the addresses.
		{"offline=YES", "-A -AAAA"},
		{"offline=yes&myip=198.51.100.1", "-A -AAAA"},
		{"offline=NO", "2001:db8::1"},
		{"myipv6=", "-AAAA"}, // the client's address is IPv6, and not published
		{"myipv4=", "2001:db8::1 -A"},
		{"myip=198.51.100.1&myipv6=", "198.51.100.1 -AAAA"},
		{"ipv4=198.51.100.1&ipv6=-", "198.51.100.1 -AAAA"},
		{"ipv4=-&ipv6=auto", "2001:db8::1 -A"},
		{"myipv4=&myipv6=", "-A -AAAA"},
		{"myipv6=&ip6lanprefix=2001:db8:1:2::/64&myip=198.51.100.7", "198.51.100.7 -AAAA"},
		{"myipv6=preserve", ""},
		{"myip=198.51.100.1&myipv4=", "badip"},
		{"myipv6=2001:db8::2&ipv6=-", "badip"},
		{"ipv6=auto&myipv6=", "badip"},
		{"myipv6=&ipv6prefix=2001:db8:1::/48", "badip"},
	} {
		q, err := parse(tc.in)
		var got string
		if err != nil {
			got = err.Error()
		} else {
			var as []string
			for _, a := range q.addrs(client) {
				as = append(as, a.String())
			}
			if q.removeV4 {
				as = append(as, "-A")
			}
			if q.removeV6 {
				as = append(as, "-AAAA")
			}
			got = strings.Join(as, " ")
		}
		if got != tc.want {
			t.Errorf("%q: %q, want %q", tc.in, got, tc.want)
		}
	}
}

// dialFrom dials from the local address src, as another host would.
func dialFrom(src string) func(ctx context.Context, network, addr string) (net.Conn, error) {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
	return d.DialContext
}

// TestProxyHeaderIsOneRule: a trusted proxy names the client in one
// header, ProxyHeader, and the other is never read: behind a proxy that
// sets only X-Real-IP, a client's own X-Forwarded-For used to win.
func TestProxyHeaderIsOneRule(t *testing.T) {
	e := newEnv(t, `,from="8.8.4.0/24"`)
	c := &http.Client{Transport: &http.Transport{DialContext: dialFrom("127.0.0.9")}}
	send := func(header ...string) (int, string) {
		req, _ := http.NewRequest(http.MethodGet, e.url+"/nic/update?hostname=a."+e.p.Zone, nil)
		req.SetBasicAuth("router", password)
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Add(header[i], header[i+1])
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	// X-Forwarded-For (the default): X-Real-IP is not read.
	if code, body := send("X-Real-IP", "8.8.4.4"); code != 401 {
		t.Errorf("X-Real-IP read with proxy_header X-Forwarded-For: %d %q", code, body)
	}
	// The right-most address that is not a trusted proxy.
	if code, body := send("X-Forwarded-For", "8.8.4.5", "X-Forwarded-For", "127.0.0.9"); code != 200 || body != "good 8.8.4.5\n" {
		t.Errorf("X-Forwarded-For over two headers: %d %q", code, body)
	}
	e.srv.ProxyHeader = HeaderRealIP
	if code, body := send("X-Real-IP", "8.8.4.6"); code != 200 || body != "good 8.8.4.6\n" {
		t.Errorf("X-Real-IP with proxy_header X-Real-IP: %d %q", code, body)
	}
	// The client's own X-Forwarded-For, passed on by a proxy that sets
	// X-Real-IP: ignored.
	if code, body := send("X-Forwarded-For", "8.8.4.7", "X-Real-IP", "9.9.9.9"); code != 401 {
		t.Errorf("X-Forwarded-For read with proxy_header X-Real-IP: %d %q", code, body)
	}
}

// TestRequestForms: a FRITZ!Box without IPv6 (myip=<ipaddr>,<ip6addr>
// with an empty <ip6addr>) updates IPv4; deSEC's and dynv6's spellings
// work; a contradictory request changes nothing, gets badip and HTTP
// 400, and the log says why.
func TestRequestForms(t *testing.T) {
	e := newEnv(t, "")
	var log bytes.Buffer
	e.srv.Logger = slog.New(slog.NewTextHandler(&log, nil))
	host := "a." + e.p.Zone
	if code, body := e.get(t, "/nic/update", "hostname="+host+"&myip=8.8.4.4,", "router", password); code != 200 || body != "good 8.8.4.4\n" {
		t.Errorf("myip=8.8.4.4, = %d %q", code, body)
	}
	if code, body := e.get(t, "/nic/update", "hostname="+host+"&ipv4=8.8.4.4&ipv6=2a00:1450::1", "router", password); code != 200 || body != "good 8.8.4.4,2a00:1450::1\n" {
		t.Errorf("dynv6 form = %d %q", code, body)
	}
	if got := e.p.Lookup(t, host, dns.TypeAAAA); !slices.Equal(got, []string{"2a00:1450::1"}) {
		t.Errorf("AAAA = %v", got)
	}
	serial := e.p.Serial(t)
	if code, body := e.get(t, "/nic/update", "hostname="+host+"&myip=8.8.8.8&myipv4=9.9.9.9", "router", password); code != 400 || body != "badip\n" {
		t.Errorf("two IPv4 addresses = %d %q", code, body)
	}
	if e.p.Serial(t) != serial {
		t.Error("a contradictory request changed DNS")
	}
	if !strings.Contains(log.String(), `reason="two A addresses: myip=8.8.8.8 and myipv4=9.9.9.9"`) {
		t.Errorf("the log does not say why:\n%s", log.String())
	}
	if code, body := e.get(t, "/nic/update", "hostname=YES&myipv4=8.8.4.4", "router", password); code != 200 || body != "nochg 8.8.4.4\ngood 8.8.4.4\n" {
		t.Errorf("hostname=YES = %d %q, want a line for each of the user's hosts", code, body)
	}
}

// TestQueryCredentials: username=/password= (and user=/pass=) in the
// query are read only with QueryCredentials; Basic auth wins over them;
// a wrong one is a failed login like any other; the log never holds the
// query.
func TestQueryCredentials(t *testing.T) {
	e := newEnv(t, "")
	var log bytes.Buffer
	e.srv.Logger = slog.New(slog.NewTextHandler(&log, nil))
	host := "a." + e.p.Zone
	pw := url.QueryEscape(password)
	q := "hostname=" + host + "&myip=8.8.4.4&username=router&password=" + pw
	if code, body := e.get(t, "/nic/update", q, "", ""); code != 401 || body != "badauth\n" {
		t.Errorf("off by default: %d %q", code, body)
	}
	e.srv.QueryCredentials = true
	if code, body := e.get(t, "/nic/update", q, "", ""); code != 200 || body != "good 8.8.4.4\n" {
		t.Errorf("username/password: %d %q", code, body)
	}
	if code, body := e.get(t, "/nic/update", "hostname="+host+"&myip=8.8.4.4&user=router&pass="+pw, "", ""); code != 200 || body != "nochg 8.8.4.4\n" {
		t.Errorf("user/pass: %d %q", code, body)
	}
	// Basic auth wins: the other user's Basic credentials, and this
	// host is not theirs.
	if code, body := e.get(t, "/nic/update", q, "other", password); code != 200 || body != "nohost\n" {
		t.Errorf("Basic auth and query: %d %q, want Basic auth's identity", code, body)
	}
	if code, body := e.get(t, "/nic/update", "hostname="+host+"&username=router&password=hunter2x", "", ""); code != 401 || body != "badauth\n" {
		t.Errorf("a wrong password: %d %q", code, body)
	}
	if strings.Contains(log.String(), "password=") || strings.Contains(log.String(), "hunter2x") || strings.Contains(log.String(), "battery") {
		t.Errorf("the log holds the credentials:\n%s", log.String())
	}
}
