// Package dyndns2 is sshdyn's HTTP front for routers: the dyndns2
// protocol (GET /nic/update?hostname=…&myip=… with HTTP Basic auth) that
// ddclient, inadyn, FRITZ!Box, OpenWrt, pfSense, OPNsense and UniFi
// speak. A client logs in with the http-user and http-password of its
// line in the authorized file; the rules of the update are the core's
// (publish), the same as over SSH.
package dyndns2

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/sshdyn/sshdyn/authorized"
	"github.com/sshdyn/sshdyn/backend"
	"github.com/sshdyn/sshdyn/dnsname"
	"github.com/sshdyn/sshdyn/publish"
)

// Users finds an identity by its HTTP user name.
type Users interface {
	LookupUser(name string) (*authorized.Entry, bool)
}

// Observer receives what a monitoring system counts for this front. Its
// methods must not block.
type Observer interface {
	// Request: a request was answered with this HTTP status.
	Request(status int)
	// AuthFailure: a request came with credentials that did not log in.
	AuthFailure()
}

// MaxHosts bounds the hostnames of one request (dyndns2's numhost).
const MaxHosts = 20

// Server is the dyndns2 front, an http.Handler. Users and Service are
// required.
type Server struct {
	Users   Users
	Service *publish.Service
	// TrustedProxies are the peers whose ProxyHeader names the client's
	// address; from anyone else it is ignored.
	TrustedProxies []netip.Prefix
	// ProxyHeader is the header a trusted proxy names the client in:
	// HeaderForwardedFor (the default) or HeaderRealIP. The other is
	// never read: a client behind a proxy that sets only X-Real-IP could
	// otherwise choose its own address with an X-Forwarded-For.
	ProxyHeader string
	// QueryCredentials accepts username=/password= (or user=/pass=)
	// query parameters from a request without Basic auth, which wins
	// when both are sent. sshdyn never logs a request's query.
	QueryCredentials bool
	Logger           *slog.Logger
	Observer         Observer
	// PasswordChecks bounds the password comparisons (bcrypt, about a
	// quarter of a second of CPU each) running at once, over every
	// source (DefaultPasswordChecks if zero); one source has at most one
	// running. A request that cannot start its comparison within
	// PasswordWait (DefaultPasswordWait if zero) is answered 429.
	PasswordChecks int
	PasswordWait   time.Duration

	once    sync.Once
	gate    *passwordGate
	cache   credCache
	compare func(hash, password []byte) error // bcrypt's; a test's may take a fixed time
}

func (s *Server) init() {
	if s.PasswordChecks <= 0 {
		s.PasswordChecks = DefaultPasswordChecks()
	}
	if s.PasswordWait <= 0 {
		s.PasswordWait = DefaultPasswordWait
	}
	s.gate = newPasswordGate(s.PasswordChecks, s.PasswordWait)
	if s.compare == nil {
		s.compare = bcrypt.CompareHashAndPassword
	}
}

// dummyHash is compared against when the user is unknown, so that an
// unknown user takes as long as a wrong password.
var dummyHash = sync.OnceValue(func() []byte {
	h, _ := bcrypt.GenerateFromPassword([]byte("sshdyn: no such user"), PasswordCost)
	return h
})

// PasswordCost is the bcrypt cost of the hashes "sshdyn passwd" makes:
// about a quarter of a second of CPU each on the project's machine. A
// router pays it once per cacheFor. The authorized file refuses other
// costs than authorized.PasswordCost to authorized.MaxPasswordCost.
const PasswordCost = authorized.PasswordCost

// HashPassword returns the bcrypt hash of password for an http-password
// option.
func HashPassword(password string) (string, error) {
	h, err := bcrypt.GenerateFromPassword([]byte(password), PasswordCost)
	return string(h), err
}

// ServeHTTP answers one request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.once.Do(s.init)
	start := time.Now()
	rw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
	client, user, words := s.serve(rw, r)
	if s.Observer != nil {
		s.Observer.Request(rw.status)
	}
	s.logger().Info("request", "front", publish.FrontHTTP, "remote", r.RemoteAddr, "client", client.String(), "user", user,
		"path", r.URL.Path, "status", rw.status, "answer", words, "agent", r.UserAgent(), "duration", time.Since(start).Round(time.Millisecond))
}

func (s *Server) logger() *slog.Logger {
	if s.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return s.Logger
}

// serve answers r and returns, for the log, the client's address, the
// user and the answer's words.
func (s *Server) serve(w http.ResponseWriter, r *http.Request) (client netip.Addr, user, words string) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		return client, "", reply(w, http.StatusMethodNotAllowed, "method not allowed")
	}
	if !servesPath(r.URL.Path) {
		return client, "", reply(w, http.StatusNotFound, "not found")
	}
	client, ok := s.clientAddr(r)
	if !ok {
		return client, "", reply(w, http.StatusBadRequest, "badrequest")
	}
	if left, refused := s.Service.Penalized(client); refused {
		w.Header().Set("Retry-After", strconv.Itoa(int(left.Seconds())+1))
		return client, "", reply(w, http.StatusTooManyRequests, "abuse")
	}
	id, user, retry, ok := s.login(r, client)
	switch {
	case retry > 0:
		w.Header().Set("Retry-After", strconv.Itoa(int(retry.Seconds())+1))
		return client, user, reply(w, http.StatusTooManyRequests, "abuse")
	case !ok:
		w.Header().Set("WWW-Authenticate", `Basic realm="sshdyn"`)
		return client, user, reply(w, http.StatusUnauthorized, "badauth")
	}
	q, err := parseQuery(r.URL.Query())
	if err != nil {
		why := err.Error()
		if m, ok := err.(malformed); ok {
			why = m.why
		}
		s.logger().Info("update refused", "front", publish.FrontHTTP, "client", client.String(), "user", user, "reason", why)
		return client, user, reply(w, http.StatusBadRequest, err.Error())
	}
	if len(q.hosts) > MaxHosts {
		return client, user, reply(w, http.StatusOK, "numhost")
	}
	lines := s.update(r.Context(), id, client, q)
	return client, user, reply(w, http.StatusOK, strings.Join(lines, "\n"))
}

// servesPath reports whether the update is served at p: dyndns2's own
// path and the aliases routers use.
func servesPath(p string) bool {
	switch p {
	case "/nic/update", "/v3/update", "/update":
		return true
	}
	return false
}

// reply writes one text/plain answer and returns its text.
func reply(w http.ResponseWriter, status int, text string) string {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	fmt.Fprintln(w, text)
	return text
}

// login checks the request's Basic credentials against the authorized
// file, and that the identity may be used from client now. A failure
// with credentials counts toward client's penalty; a password that has
// to be compared (not in the cache) is counted as a failure before the
// comparison and refunded when it matches, and waits for its turn in
// the password gate. retry is set when the request is refused before
// its comparison: the source is penalized, or the gate had no turn for
// it in time. user is the name given, for the log.
func (s *Server) login(r *http.Request, client netip.Addr) (id *authorized.Entry, user string, retry time.Duration, ok bool) {
	user, password, given := r.BasicAuth()
	if !given && s.QueryCredentials {
		user, password, given = queryCredentials(r.URL.Query())
	}
	if !given {
		return nil, "", 0, false
	}
	id, known := s.Users.LookupUser(user)
	if !known || !s.cache.has(user, password, id.HTTPPassword) {
		release, ok := s.gate.enter(r.Context(), client)
		if !ok {
			s.logger().Info("password check refused: too many at once", "front", publish.FrontHTTP, "client", client.String(), "user", user)
			s.Service.Limited(publish.LimitPasswordChecks)
			return nil, user, time.Second, false
		}
		defer release()
		// The failures counted while this request waited may have
		// reached the penalty.
		if left, refused := s.Service.Penalized(client); refused {
			return nil, user, left, false
		}
		s.gate.compared.Add(1)
		settle := s.Service.LoginAttempt(client)
		hash := dummyHash()
		if known {
			hash = []byte(id.HTTPPassword)
		}
		match := s.compare(hash, []byte(password)) == nil && known
		settle(match)
		if !match {
			s.failed(client, user, "wrong user or password", false)
			return nil, user, 0, false
		}
		s.cache.add(user, password, id.HTTPPassword)
	}
	if err := s.Service.Permit(id, client); err != nil {
		s.failed(client, user, err.Error(), true)
		return nil, user, 0, false
	}
	return id, user, 0, true
}

// queryCredentials returns the user and password a request names in its
// query: username and password (Synology DSM, OpenWrt, most
// custom-provider URLs), or user and pass.
func queryCredentials(v url.Values) (user, password string, given bool) {
	for _, k := range [][2]string{{"username", "password"}, {"user", "pass"}} {
		if v.Has(k[0]) && v.Has(k[1]) {
			return v.Get(k[0]), v.Get(k[1]), true
		}
	}
	return "", "", false
}

// failed logs and counts a failed login; count also adds it to client's
// penalty (a password comparison has counted it already).
func (s *Server) failed(client netip.Addr, user, why string, count bool) {
	if count {
		s.Service.LoginFailed(client)
	}
	if s.Observer != nil {
		s.Observer.AuthFailure()
	}
	s.logger().Info("authentication failed", "front", publish.FrontHTTP, "client", client.String(), "user", user, "reason", why)
}

// The headers a trusted proxy can name the client in.
const (
	HeaderForwardedFor = "X-Forwarded-For"
	HeaderRealIP       = "X-Real-IP"
)

// clientAddr returns the client's address: the peer's, or, from a
// trusted proxy, the one its ProxyHeader names: in X-Forwarded-For the
// right-most address that is not a trusted proxy (the left-most if all
// are), in X-Real-IP its one address. A trusted proxy that sends no such
// header is the client.
func (s *Server) clientAddr(r *http.Request) (netip.Addr, bool) {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}, false
	}
	peer := publish.Address(ap.Addr())
	if !s.trusted(peer) {
		return peer, true
	}
	if s.ProxyHeader == HeaderRealIP {
		xr := r.Header.Values(HeaderRealIP)
		if len(xr) == 0 {
			return peer, true
		}
		a, err := netip.ParseAddr(strings.TrimSpace(xr[len(xr)-1]))
		return publish.Address(a), err == nil
	}
	xff := r.Header.Values(HeaderForwardedFor)
	if len(xff) == 0 {
		return peer, true
	}
	hops := strings.Split(strings.Join(xff, ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			return netip.Addr{}, false
		}
		if a = publish.Address(a); !s.trusted(a) || i == 0 {
			return a, true
		}
	}
	return peer, true
}

func (s *Server) trusted(a netip.Addr) bool {
	for _, p := range s.TrustedProxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// query is a parsed update request.
type query struct {
	hosts     []string     // as given; none: all of the identity's
	v4, v6    netip.Addr   // the addresses asked for, if any
	peerV4    bool         // no IPv4 given: the client's address, if IPv4
	peerV6    bool         // the same, if IPv6
	lanPrefix netip.Prefix // ip6lanprefix=, if given
	v6Prefix  netip.Prefix // myipv6=PREFIX/LEN or ipv6prefix=: a prefix-only update
	noWild    bool         // wildcard=OFF or NOCHG: leave the hosts' wildcards alone
	// removeV4, removeV6: remove that family's records (offline=YES,
	// an explicit empty myipv4=/myipv6=, dynv6's -).
	removeV4, removeV6 bool
}

// malformed is the answer to a request whose parameters cannot be
// read: its word (badip) for the client, why for the log.
type malformed struct{ why string }

func (e malformed) Error() string { return "badip" }

// The parameters that name addresses, with the clients that send them.
// A family's value is an address; auto (dynv6): the client's address;
// no or preserve: that family is left as it is; empty (deSEC) or -
// (dynv6): that family's records are removed. An either-family list
// (myip, ip) may hold one address of each family; there an empty value
// or element is a family not given (a FRITZ!Box without IPv6 sends
// myip=198.51.100.7, for myip=<ipaddr>,<ip6addr>), and absent or empty
// myip means the client's address, as it always did.
var (
	eitherParams = []string{"myip", "ip"}     // dyndns2; deSEC
	v4Params     = []string{"myipv4", "ipv4"} // deSEC; dynv6
	v6Params     = []string{"myipv6", "ipv6"} // dyndns2, deSEC; deSEC, dynv6
)

// family is what one request asks for one address family.
type family struct {
	addr  netip.Addr
	from  string // the parameter that named addr
	given bool   // some parameter named this family (an address, auto, no, a removal)
	peer  bool   // auto
	// remove: its records are to be removed, as parameter removeFrom asked
	remove     bool
	removeFrom string
}

// set records v, from parameter name, as this family's address.
func (f *family) set(name string, a netip.Addr) error {
	if f.addr.IsValid() && f.addr != a {
		return malformed{fmt.Sprintf("two %s addresses: %s=%s and %s=%s", backend.TypeOf(a), f.from, f.addr, name, a)}
	}
	f.addr, f.from, f.given = a, name, true
	return nil
}

// contradiction says why f asks for its records' removal and for an
// address (or auto) at once, or "".
func (f *family) contradiction(t string) string {
	switch {
	case !f.remove:
		return ""
	case f.addr.IsValid():
		return fmt.Sprintf("%s=%s and %s= (remove the %s records) in one request", f.from, f.addr, f.removeFrom, t)
	case f.peer:
		return fmt.Sprintf("auto and %s= (remove the %s records) in one request", f.removeFrom, t)
	}
	return ""
}

// parseAddr reads one address: no zone, IPv4-mapped read as IPv4.
func parseAddr(name, v string) (netip.Addr, error) {
	a, err := netip.ParseAddr(v)
	if err != nil || a.Zone() != "" {
		return netip.Addr{}, malformed{fmt.Sprintf("%s=%q: not an IP address", name, v)}
	}
	return publish.Address(a), nil
}

// parseQuery reads the host names, the addresses (the parameters above),
// ip6lanprefix, wildcard and offline; the other dyndns2 parameters
// (system, mx, backmx) are ignored, as are parameters no client sends.
func parseQuery(v map[string][]string) (query, error) {
	var q query
	get := func(k string) (string, bool) {
		vs, ok := v[k]
		if !ok || len(vs) == 0 {
			return "", false
		}
		return strings.TrimSpace(vs[0]), true
	}
	// hostname=YES is deSEC's: the account's name, here all of the
	// identity's hosts.
	if h, ok := get("hostname"); ok && h != "" && !strings.EqualFold(h, "yes") {
		for _, name := range strings.Split(h, ",") {
			q.hosts = append(q.hosts, strings.TrimSpace(name))
		}
	}
	var f4, f6 family
	fam := func(a netip.Addr) *family {
		if a.Is4() {
			return &f4
		}
		return &f6
	}
	listed := false // an either-family list named something
	for _, name := range eitherParams {
		val, ok := get(name)
		if !ok || val == "" {
			continue
		}
		if strings.EqualFold(val, "no") {
			f4.given, f6.given, listed = true, true, true
			continue
		}
		parts := strings.Split(val, ",")
		if len(parts) > 2 {
			return q, malformed{fmt.Sprintf("%s=%q: more than two addresses", name, val)}
		}
		for _, p := range parts {
			p = strings.TrimSpace(p)
			if p == "" {
				continue // a family not given
			}
			a, err := parseAddr(name, p)
			if err != nil {
				return q, err
			}
			if err := fam(a).set(name, a); err != nil {
				return q, err
			}
			listed = true
		}
	}
	for _, group := range []struct {
		names []string
		f     *family
		is6   bool
	}{{v4Params, &f4, false}, {v6Params, &f6, true}} {
		for _, name := range group.names {
			val, ok := get(name)
			switch {
			case !ok:
				continue
			case val == "" || val == "-": // deSEC's empty, dynv6's -: remove
				group.f.given, group.f.remove, group.f.removeFrom = true, true, name
				continue
			case strings.EqualFold(val, "no"), strings.EqualFold(val, "preserve"):
				group.f.given = true
				continue
			case strings.EqualFold(val, "auto"):
				group.f.given, group.f.peer = true, true
				continue
			case group.is6 && name == "myipv6" && strings.Contains(val, "/"):
				// deSEC's prefix-only update.
				if err := q.setV6Prefix(name, val); err != nil {
					return q, err
				}
				group.f.given = true
				continue
			}
			a, err := parseAddr(name, val)
			if err != nil {
				return q, err
			}
			if a.Is6() != group.is6 {
				return q, malformed{fmt.Sprintf("%s=%s: not an %s address", name, val, map[bool]string{false: "IPv4", true: "IPv6"}[group.is6])}
			}
			if err := group.f.set(name, a); err != nil {
				return q, err
			}
		}
	}
	if val, ok := get("ipv6prefix"); ok && val != "" { // dynv6
		if err := q.setV6Prefix("ipv6prefix", val); err != nil {
			return q, err
		}
		f6.given = true
	}
	if q.v6Prefix.IsValid() && f6.addr.IsValid() {
		return q, malformed{fmt.Sprintf("an IPv6 address (%s=%s) and an IPv6 prefix (%s) in one request", f6.from, f6.addr, q.v6Prefix)}
	}
	if q.v6Prefix.IsValid() && f6.remove {
		return q, malformed{fmt.Sprintf("an IPv6 prefix (%s) and %s= (remove the AAAA records) in one request", q.v6Prefix, f6.removeFrom)}
	}
	if why := cmp.Or(f4.contradiction("A"), f6.contradiction("AAAA")); why != "" {
		return q, malformed{why}
	}
	if w, ok := get("wildcard"); ok && (strings.EqualFold(w, "OFF") || strings.EqualFold(w, "NOCHG")) {
		q.noWild = true // heeded only for a line with the wildcard option
	}
	q.v4, q.v6 = f4.addr, f6.addr
	q.removeV4, q.removeV6 = f4.remove, f6.remove
	// The client's address counts for a family nothing named, unless a
	// list named the other family only (myip=198.51.100.7 leaves AAAA).
	q.peerV4 = f4.peer || !f4.given && !listed
	q.peerV6 = f6.peer || !f6.given && !listed
	if o, ok := get("offline"); ok && strings.EqualFold(o, "yes") {
		// dyndns2's offline: both families' records removed, whatever
		// else the request names.
		q.v4, q.v6, q.peerV4, q.peerV6, q.v6Prefix = netip.Addr{}, netip.Addr{}, false, false, netip.Prefix{}
		q.removeV4, q.removeV6 = true, true
	}
	if p, ok := get("ip6lanprefix"); ok && p != "" {
		pfx, err := netip.ParsePrefix(p)
		if err != nil || !pfx.Addr().Is6() || pfx.Addr().Is4In6() {
			return q, malformed{fmt.Sprintf("ip6lanprefix=%q: not an IPv6 prefix", p)}
		}
		q.lanPrefix = pfx.Masked()
	}
	return q, nil
}

// setV6Prefix records a prefix-only update's prefix, from parameter
// name, checked by the core's rule.
func (q *query) setV6Prefix(name, val string) error {
	p, err := netip.ParsePrefix(val)
	if err == nil {
		err = publish.CheckV6Prefix(p) // the core's rule, here for the answer's status and the log
	}
	if err != nil {
		return malformed{fmt.Sprintf("%s=%q: %v", name, val, err)}
	}
	if q.v6Prefix.IsValid() && q.v6Prefix != p.Masked() {
		return malformed{fmt.Sprintf("two IPv6 prefixes: %s and %s=%s", q.v6Prefix, name, val)}
	}
	q.v6Prefix = p.Masked()
	return nil
}

// addrs returns the addresses to publish: those named, or the client's.
func (q query) addrs(client netip.Addr) []netip.Addr {
	var out []netip.Addr
	v4, v6 := q.v4, q.v6
	if !v4.IsValid() && q.peerV4 && client.Is4() {
		v4 = client
	}
	if !v6.IsValid() && q.peerV6 && client.Is6() {
		v6 = client
	}
	for _, a := range []netip.Addr{v4, v6} {
		if a.IsValid() {
			out = append(out, a)
		}
	}
	return out
}

// update asks the core once for every host and address of the request,
// and returns one line per host, in the order asked (all of the
// identity's when none were). A host that is not a host name, or not the
// identity's, gets its own word and is left out of the request; the
// others are one core call, so the records of one zone, both families
// and the LAN hosts included, are one change.
func (s *Server) update(ctx context.Context, id *authorized.Entry, client netip.Addr, q query) []string {
	hosts := q.hosts
	if len(hosts) == 0 {
		hosts = id.Hosts
	}
	addrs := q.addrs(client)
	lines := make([]string, len(hosts))
	var ask []string // the hosts sent to the core, canonical
	var at []int     // their lines
	for i, h := range hosts {
		c := dnsname.Canonical(h)
		if dnsname.CheckHost(c) != nil {
			lines[i] = "notfqdn"
			continue
		}
		if err := s.Service.Authorize(publish.Request{Front: publish.FrontHTTP, Identity: id, Client: client, Hosts: []string{h}}); err != nil {
			lines[i] = refusalWord(err)
			continue
		}
		if len(addrs) == 0 && !q.lanPrefix.IsValid() && !q.v6Prefix.IsValid() && !q.removeV4 && !q.removeV6 { // myip=no, myipv6=no: nothing to publish
			lines[i] = "nochg"
			continue
		}
		ask, at = append(ask, c), append(at, i)
	}
	if len(ask) == 0 {
		return lines
	}
	req := publish.Request{Front: publish.FrontHTTP, Identity: id, Client: client, Addrs: addrs, Hosts: ask, LAN: true, LANPrefix: q.lanPrefix, V6Prefix: q.v6Prefix,
		RemoveA: q.removeV4, RemoveAAAA: q.removeV6, NoWildcard: q.noWild}
	res, err := s.Service.Update(ctx, req)
	if err != nil {
		s.logger().Info("update refused", "front", publish.FrontHTTP, "client", client.String(), "hosts", strings.Join(ask, ","), "reason", err)
		for _, i := range at {
			lines[i] = refusalWord(err)
		}
		return lines
	}
	// Each host's own results, and the LAN hosts' with the first host.
	mine := make([][]publish.HostResult, len(ask))
	for _, r := range res {
		r.Log(ctx, s.logger)
		j := slices.Index(ask, r.Of)
		if j < 0 {
			j = 0 // a LAN host: with the first host
		}
		mine[j] = append(mine[j], r)
	}
	for j, i := range at {
		list := make([]string, 0, len(addrs)+1)
		for _, a := range addrs {
			list = append(list, a.String())
		}
		if q.v6Prefix.IsValid() { // the host's own AAAA under the prefix
			for _, r := range mine[j] {
				if r.Host == ask[j] && r.Type == "AAAA" {
					list = append(list, r.Addr.String())
				}
			}
		}
		lines[i] = answer(mine[j], ask[j], strings.Join(list, ","))
	}
	return lines
}

// answer is one host's line: a failure's word if any of its results
// failed (its own records' or the LAN hosts' it carries), else good if
// one of its own records changed, else nochg, with the addresses.
func answer(res []publish.HostResult, host, addrs string) string {
	changed := false
	for _, r := range res {
		switch {
		case !r.OK():
			return word(r.Kind, r.Temporary)
		case r.Of == host && r.Kind == publish.KindGood:
			changed = true
		}
	}
	word := "nochg"
	if changed {
		word = "good"
	}
	if addrs == "" { // only the LAN hosts moved (ip6lanprefix= alone)
		return word
	}
	return word + " " + addrs
}

// refusalWord is dyndns2's word for the core's refusal of a request.
func refusalWord(err error) string {
	var pe *publish.Error
	if !errors.As(err, &pe) {
		return "911"
	}
	return word(pe.Kind, pe.Temporary)
}

// word is dyndns2's word for an outcome the core reports.
func word(k publish.Kind, temporary bool) string {
	switch {
	case k == publish.KindNotOwned:
		return "nohost"
	case k == publish.KindNotPublic, k == publish.KindBadPrefix:
		return "badip"
	case k == publish.KindDenied:
		return "badauth"
	case k == publish.KindRateLimited:
		return "abuse"
	}
	switch k.Class(temporary) {
	case publish.ClassTemporary:
		return "911"
	case publish.ClassForbidden:
		return "nohost"
	}
	return "dnserr"
}

// statusWriter remembers the status written.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}
