// Package publish holds the rules of an update, whichever front it came
// through: which names an identity owns, which addresses it may publish,
// how often it may change them and how often its source may fail to log
// in, which zone (and so which primary) each name goes to, its TTL, and
// what each outcome means. A front (the SSH server, an HTTP endpoint)
// authenticates the client, asks a Service one question with the
// identity, the client's address and the names, and renders the answer
// in its own words; it holds no rule of its own.
package publish

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/sshdyn/sshdyn/authorized"
	"github.com/sshdyn/sshdyn/backend"
	"github.com/sshdyn/sshdyn/dnsname"
)

// Backend keeps the records of one zone: the contract of package
// backend, which every backend (RFC 2136, the embedded zone in process,
// tinydns, a provider's API) implements and backendtest checks.
type Backend = backend.Backend

// Zone is one zone sshdyn updates, and the backend that writes it.
type Zone struct {
	Name    string // any case, with or without the trailing dot
	TTL     uint32 // for records whose identity sets none
	Backend Backend

	// ACME lets identities answer ACME DNS-01 challenges for their hosts:
	// TXT values at _acme-challenge.HOST, with ACMETTL (DefaultACMETTL if
	// zero).
	ACME    bool
	ACMETTL uint32
	// WaitFor are name servers (host:port: the zone's secondaries, or its
	// public servers) that must serve a change before a request that
	// waits is done, within WaitTimeout (DefaultWaitTimeout if zero).
	WaitFor     []string
	WaitTimeout time.Duration
}

// Defaults of a Service's fields, used where a field is zero.
const (
	DefaultTimeout      = 30 * time.Second
	DefaultMaxInFlight  = 64
	DefaultChangeWindow = time.Hour
	// DefaultRequestWindow is the window of MaxRequestsPerKey.
	DefaultRequestWindow = time.Minute
	DefaultFailGrace     = 30 * time.Second
	DefaultACMETTL       = 60
	DefaultWaitTimeout   = time.Minute
	// MaxPenalty caps one source's penalty for failed logins.
	MaxPenalty = 10 * time.Minute
)

// Service answers the fronts. Set the fields, then use it; the fields
// must not change after the first call. Zones is required.
type Service struct {
	Zones []Zone
	// AllowPrivate lets every identity publish addresses that are not
	// public unicast (loopback, RFC 1918, ULA, …); an identity's own
	// allow-private does so for it alone.
	AllowPrivate bool
	// Timeout bounds the DNS work of one request, waiting for a slot
	// included (DefaultTimeout if zero).
	Timeout time.Duration
	// MaxInFlight bounds the requests doing DNS work at once, over every
	// front (DefaultMaxInFlight if zero); more wait for a slot until
	// Timeout, then fail with KindBusy. It keeps a burst from flooding
	// the primaries.
	MaxInFlight int
	// MaxChangesPerKey bounds the record changes one identity may make in
	// any ChangeWindow (DefaultChangeWindow if zero); 0 means no limit.
	// Unchanged records (nochg) are free.
	MaxChangesPerKey int
	ChangeWindow     time.Duration
	// MaxRequestsPerKey bounds the requests (update or status, changed or
	// not, from any front) one identity may make in any RequestWindow
	// (DefaultRequestWindow if zero); 0 means no limit. Each costs the
	// primary at least one query.
	MaxRequestsPerKey int
	RequestWindow     time.Duration
	// FailPenalty is added to a source's penalty for every failed login
	// at any front; 0 means no penalties. While the penalty exceeds
	// FailGrace (DefaultFailGrace if zero), Penalized refuses the
	// source. It drains in real time and never exceeds MaxPenalty.
	FailPenalty time.Duration
	FailGrace   time.Duration

	// Observer, if set, is told about every host's outcome and every
	// refusal by a limit, for metrics.
	Observer Observer

	// Recorder, if set, is told every host family's outcome (the
	// operator's store). It must not block: the store is never in the
	// update path.
	Recorder Recorder

	// Revoked, if set, revokes keys and certificates (krl.File is one):
	// a revoked key's line is refused on every front, at login and at
	// every request (Permit).
	Revoked Revoker

	// Served asks a name server of a zone's WaitFor whether it serves
	// value in name's RRset of type t (update.Served does, over DNS);
	// required when a zone has WaitFor.
	Served func(ctx context.Context, server, name string, t uint16, value string) (bool, error)

	once     sync.Once
	zones    []Zone
	slots    chan struct{}
	changes  windowLimiter
	requests windowLimiter
	fails    penalties
}

func (s *Service) init() {
	for _, z := range s.Zones {
		z.Name = dnsname.Canonical(z.Name)
		s.zones = append(s.zones, z)
	}
	if s.Timeout <= 0 {
		s.Timeout = DefaultTimeout
	}
	if s.MaxInFlight <= 0 {
		s.MaxInFlight = DefaultMaxInFlight
	}
	s.slots = make(chan struct{}, s.MaxInFlight)
	if s.ChangeWindow <= 0 {
		s.ChangeWindow = DefaultChangeWindow
	}
	s.changes = windowLimiter{max: s.MaxChangesPerKey, window: s.ChangeWindow, what: "changes"}
	if s.RequestWindow <= 0 {
		s.RequestWindow = DefaultRequestWindow
	}
	s.requests = windowLimiter{max: s.MaxRequestsPerKey, window: s.RequestWindow, what: "requests"}
	if s.FailGrace <= 0 {
		s.FailGrace = DefaultFailGrace
	}
	s.fails = penalties{cost: s.FailPenalty, grace: s.FailGrace, max: MaxPenalty}
	if s.Observer == nil {
		s.Observer = nopObserver{}
	}
}

// Address returns a client's address as sshdyn publishes it: an
// IPv4-mapped IPv6 address (from a dual-stack listener) is IPv4, and the
// zone of a link-local address is dropped. Fronts pass what it returns.
func Address(a netip.Addr) netip.Addr { return a.Unmap().WithZone("") }

// RecordType names the record an address goes in: "A" for IPv4, "AAAA"
// for IPv6.
func RecordType(a netip.Addr) string { return backend.TypeOf(a) }

// Permit reports why id may not be used from addr now (its key or
// certificate revoked, expired, or not from= this address) as a
// KindDenied *Error, or nil. Fronts ask it when the client authenticates,
// and every request asks it again. A line is one identity: a line whose
// key is revoked is refused over HTTP too.
func (s *Service) Permit(id *authorized.Entry, addr netip.Addr) error {
	if id.Key != nil {
		if err := s.CheckRevoked(id.Key); err != nil {
			return err
		}
	}
	if err := id.Permits(addr, time.Now()); err != nil {
		return &Error{Kind: KindDenied, Err: err}
	}
	return nil
}

// Revoker answers whether a key or certificate is revoked, and why.
type Revoker interface {
	Revoked(key ssh.PublicKey) (why string, revoked bool)
}

// CheckRevoked returns a KindDenied *Error if Revoked revokes key.
func (s *Service) CheckRevoked(key ssh.PublicKey) error {
	if s.Revoked == nil {
		return nil
	}
	if why, revoked := s.Revoked.Revoked(key); revoked {
		return &Error{Kind: KindDenied, Err: fmt.Errorf("revoked: %s", why)}
	}
	return nil
}

// LoginFailed records a failed login from addr, at any front.
func (s *Service) LoginFailed(addr netip.Addr) {
	s.once.Do(s.init)
	s.fails.fail(Address(addr), time.Now())
}

// Limited tells the Observer that a front's own limit (one of the
// Limit… labels) refused a request.
func (s *Service) Limited(limit string) {
	s.once.Do(s.init)
	s.Observer.Limited(limit)
}

// LoginAttempt counts a login from addr as failed before the check that
// decides it, and returns settle, which takes the failure back if the
// check passed (settle(true)). A front whose check is costly (a bcrypt
// comparison) asks it so that a burst of concurrent attempts is counted
// as it goes, not only once each has been checked.
func (s *Service) LoginAttempt(addr netip.Addr) (settle func(ok bool)) {
	s.once.Do(s.init)
	a := Address(addr)
	s.fails.fail(a, time.Now())
	return func(ok bool) {
		if ok {
			s.fails.refund(a, time.Now())
		}
	}
}

// Penalized reports whether addr has failed to log in so often that it
// is refused now, and for how much longer; a refusal is observed.
func (s *Service) Penalized(addr netip.Addr) (time.Duration, bool) {
	s.once.Do(s.init)
	left, refused := s.fails.refused(Address(addr), time.Now())
	if refused {
		s.Observer.Limited(LimitPenalty)
	}
	return left, refused
}

// Request is one question a front asks the Service.
type Request struct {
	// Front names the front asking ("ssh", "http"), for metrics.
	Front string
	// Identity is the authenticated client's line of the authorized file.
	Identity *authorized.Entry
	// Client is the address the client connects from: from= is matched
	// against it. Addr and Addrs are the addresses to publish (Update),
	// at most one of each family in all: a front that publishes one
	// (SSH: the client's) sets Addr, one that may publish both families
	// at once (dyndns2's myip=v4,v6) sets Addrs. Every host gets each
	// address, and what changes in one zone is one change, so a
	// dual-stack update is atomic per zone.
	Client, Addr netip.Addr
	Addrs        []netip.Addr
	// Hosts are the names asked for; none means all of the identity's.
	Hosts []string
	// LAN asks Update to set the identity's LAN hosts too: their AAAA
	// under the LAN's prefix, in one change with the hosts' records of
	// the same zone. LANPrefix, if valid, is that prefix (dyndns2's
	// ip6lanprefix=), whether or not an address is IPv6; otherwise the
	// IPv6 address, if any, masked to the identity's prefix-length is.
	LAN       bool
	LANPrefix netip.Prefix
	// V6Prefix, if valid, asks for a prefix-only IPv6 update (dyndns2's
	// myipv6=PREFIX/LEN, dynv6's ipv6prefix=): each host's AAAA gets
	// this prefix (48 to 64 bits) and keeps its interface ID, or takes
	// the identity's iid= when it has no AAAA yet. With LAN, it is the
	// LAN's prefix too, unless LANPrefix is given. No IPv6 address may
	// come with it.
	V6Prefix netip.Prefix
	// RemoveA and RemoveAAAA ask Update to remove the hosts' A or AAAA
	// records: a host going offline (SSH's offline, dyndns2's
	// offline=YES, an explicit empty myipv4= or myipv6=). The hosts'
	// wildcards go with them, and, with LAN, removing AAAA removes the
	// LAN hosts' too, unless LANPrefix names where they are (a router
	// with a LAN prefix and no IPv6 address of its own). A family
	// removed may not also have an address or a prefix in the request.
	RemoveA, RemoveAAAA bool
	// NoWildcard leaves the hosts' wildcards (*.HOST, for an identity
	// with the wildcard option) alone: dyndns2's wildcard=OFF or NOCHG.
	NoWildcard bool
	// Wait asks Update to return only when each changed or unchanged
	// record is served by every name server of its zone's WaitFor (or
	// their WaitTimeout passed: KindLagging).
	Wait bool
}

// Update points the hosts asked for at req's addresses: an A record for
// IPv4, AAAA for IPv6. It refuses the whole request, writing nothing,
// with an *Error when the identity may not be used from req.Client, a
// host is not the identity's, an address is not public and neither the
// Service nor the identity allows private addresses, two addresses are
// of one family, or no DNS slot is free in time. Otherwise it returns
// one result per host and address (host by host, in order, each with
// its IPv4 result before its IPv6 one), then the wildcards' (an identity
// with the wildcard option: *.HOST, the same addresses), then the LAN
// hosts'; a failed
// record changed nothing. The records of one zone are one change, all
// or nothing where the backend can.
//
// The work goes on when ctx is cancelled (a client gone mid-update does
// not leave a change half done); it is bounded by Timeout. With
// req.Wait, Update then waits for the zones' WaitFor servers, without
// holding a DNS slot.
func (s *Service) Update(ctx context.Context, req Request) ([]HostResult, error) {
	out, err := s.update(ctx, req)
	if err == nil && req.Wait {
		s.awaitHosts(ctx, out)
	}
	return out, err
}

func (s *Service) update(ctx context.Context, req Request) ([]HostResult, error) {
	id := req.Identity
	addrs, err := req.addresses()
	if err != nil {
		return nil, err
	}
	for _, a := range addrs {
		if a.Is4() && req.RemoveA || a.Is6() && req.RemoveAAAA {
			return nil, &Error{Kind: KindMalformed, Addr: a, Err: fmt.Errorf("an address (%s) and the removal of its %s records in one request", a, RecordType(a))}
		}
	}
	if p := req.V6Prefix; p.IsValid() && req.RemoveAAAA {
		return nil, &Error{Kind: KindMalformed, Err: fmt.Errorf("an IPv6 prefix (%s) and the removal of the AAAA records in one request", p)}
	}
	if p := req.V6Prefix; p.IsValid() {
		if err := CheckV6Prefix(p); err != nil {
			return nil, &Error{Kind: KindMalformed, Err: err}
		}
		for _, a := range addrs {
			if a.Is6() {
				return nil, &Error{Kind: KindMalformed, Addr: a, Err: fmt.Errorf("an IPv6 address (%s) and an IPv6 prefix (%s) in one request", a, p)}
			}
		}
		req.V6Prefix = p.Masked()
	}
	ctx, hosts, zones, done, err := s.begin(ctx, req, addrs...)
	if err != nil {
		return nil, err
	}
	defer done()
	limitKey := id.ID()
	allow := func() error {
		err := s.changes.allow(limitKey, time.Now())
		if err != nil {
			s.Observer.Limited(LimitChanges)
		}
		return err
	}
	var ts []target
	for i, host := range hosts {
		for _, a := range addrs {
			if a.Is6() && req.RemoveA {
				ts = append(ts, removal(host, host, zones[i], "A"))
			}
			ts = append(ts, target{host: host, of: host, zone: zones[i], addr: a})
		}
		if len(addrs) == 0 && req.RemoveA {
			ts = append(ts, removal(host, host, zones[i], "A"))
		}
		if req.RemoveAAAA {
			ts = append(ts, removal(host, host, zones[i], "AAAA"))
		}
		if req.V6Prefix.IsValid() {
			t, err := s.prefixed(ctx, id, host, zones[i], req.V6Prefix)
			if err != nil {
				return nil, err
			}
			ts = append(ts, t)
		}
	}
	// The identity's wildcards: *.HOST takes each of HOST's records.
	if id.Wildcard && !req.NoWildcard {
		n := len(ts)
		for _, t := range ts[:n] {
			if t.kind == 0 || t.kind == KindNotPublic {
				w := t
				w.host = "*." + t.host
				ts = append(ts, w)
			}
		}
	}
	lanPrefix := req.LANPrefix
	if !lanPrefix.IsValid() {
		lanPrefix = req.V6Prefix
	}
	req.LANPrefix = lanPrefix
	if req.LAN && req.RemoveAAAA && !req.LANPrefix.IsValid() {
		for _, l := range id.LANHosts {
			lz, err := s.route([]string{l.Name})
			if err != nil {
				return nil, err
			}
			ts = append(ts, removal(l.Name, "", lz[0], "AAAA"))
		}
	} else if req.LAN && len(id.LANHosts) > 0 {
		// Under the IPv6 address's prefix, or the one named (a router
		// that sends its LAN prefix and no IPv6 address of its own).
		lanAddr := netip.Addr{}
		for _, a := range addrs {
			if a.Is6() {
				lanAddr = a
			}
		}
		if lanAddr.IsValid() || req.LANPrefix.IsValid() {
			lan, err := s.lanTargets(id, lanAddr, req.LANPrefix)
			if err != nil {
				return nil, err
			}
			ts = append(ts, lan...)
		}
	}
	out := make([]HostResult, len(ts))
	for _, group := range byZone(ts) {
		s.set(ctx, req.Front, id, Address(req.Client), ts, group, allow, out)
	}
	return out, nil
}

// removal is the target that removes host's RRset of type t.
func removal(host, of string, zone Zone, t string) target {
	r := backend.Removal(host, t)
	return target{host: host, of: of, zone: zone, addr: r.Addr, remove: true}
}

// addresses returns req's addresses to publish, normalised, IPv4 first:
// at most one of each family.
func (req Request) addresses() ([]netip.Addr, error) {
	var v4, v6 netip.Addr
	for _, a := range append([]netip.Addr{req.Addr}, req.Addrs...) {
		if !a.IsValid() {
			continue
		}
		a = Address(a)
		p := &v6
		if a.Is4() {
			p = &v4
		}
		if p.IsValid() && *p != a {
			return nil, &Error{Kind: KindMalformed, Addr: a, Err: fmt.Errorf("two %s addresses in one request: %s and %s", RecordType(a), *p, a)}
		}
		*p = a
	}
	var out []netip.Addr
	for _, a := range []netip.Addr{v4, v6} {
		if a.IsValid() {
			out = append(out, a)
		}
	}
	return out, nil
}

// target is one record an Update writes.
type target struct {
	host string
	of   string // HostResult.Of
	zone Zone
	addr netip.Addr
	// remove: the RRset of addr's type is to be empty (addr is then
	// the unspecified address of its family).
	remove bool
	kind   Kind   // a LAN host refused before any DNS work: KindBadPrefix, KindNotPublic
	why    string // and why, when its kind does not say
}

// byZone returns the indexes of ts grouped by zone, in the order the
// zones first appear, leaving out targets already refused.
func byZone(ts []target) [][]int {
	var groups [][]int
	at := map[string]int{}
	for i, t := range ts {
		if t.kind != 0 {
			groups = append(groups, []int{i})
			continue
		}
		g, ok := at[t.zone.Name]
		if !ok {
			g = len(groups)
			at[t.zone.Name] = g
			groups = append(groups, nil)
		}
		groups[g] = append(groups[g], i)
	}
	return groups
}

// set writes the targets of group (one zone's, or one refused target)
// and puts their results in out: one record through Set, several as one
// change through SetAll (one UPDATE, all or nothing).
func (s *Service) set(ctx context.Context, front string, id *authorized.Entry, client netip.Addr, ts []target, group []int, allow func() error, out []HostResult) {
	recs := make([]backend.Record, len(group))
	for j, i := range group {
		t := ts[i]
		ttl := id.TTL
		if ttl == 0 {
			ttl = t.zone.TTL
		}
		recs[j] = backend.Record{Name: t.host, Addr: t.addr, TTL: ttl, Remove: t.remove}
		out[i] = HostResult{Host: t.host, Of: t.of, Zone: t.zone.Name, Type: RecordType(t.addr), Addr: t.addr, TTL: ttl, Removed: t.remove}
		if t.remove {
			out[i].Addr, out[i].TTL = netip.Addr{}, 0
		}
	}
	first := ts[group[0]]
	if first.kind != 0 {
		out[group[0]].Kind = first.kind
		out[group[0]].Err = &Error{Kind: first.kind, Host: first.host, Addr: first.addr}
		if first.why != "" {
			out[group[0]].Err = &Error{Kind: first.kind, Host: first.host, Addr: first.addr, Err: errors.New(first.why)}
		}
		s.Observer.Update(front, first.zone.Name, out[group[0]].Type, first.kind.String())
		return
	}
	res := first.zone.Backend.Set(ctx, recs, allow)
	now := time.Now()
	for j, i := range group {
		r := &out[i]
		r.Old, r.Err = res[j].Old, res[j].Err
		r.Kind, r.Temporary = classify(res[j])
		s.Observer.Update(front, r.Zone, r.Type, r.Kind.String())
		if s.Recorder != nil && (r.Of == r.Host || r.Of == "") { // a wildcard goes with its host
			s.Recorder.Record(Outcome{Time: now, Host: r.Host, Family: r.Type, Zone: r.Zone, Front: front,
				Identity: IdentityName(id, front), Source: client, Addr: r.Addr, Old: r.Old, Kind: r.Kind})
		}
	}
}

// Recorder receives every host family's outcome of an update.
type Recorder interface{ Record(Outcome) }

// Outcome is one host family's outcome of one update, for the operator's
// store.
type Outcome struct {
	Time     time.Time
	Host     string
	Family   string // "A" or "AAAA"
	Zone     string
	Front    string
	Identity string // IdentityName
	Source   netip.Addr
	Addr     netip.Addr
	Old      []netip.Addr
	Kind     Kind
}

// IdentityName names id as the operator knows it on front: over HTTP its
// http-user; over SSH a certificate's key ID and serial, or the key's
// SHA-256 fingerprint.
func IdentityName(id *authorized.Entry, front string) string {
	switch {
	case front == FrontHTTP || id.Key == nil:
		return "http-user " + id.HTTPUser
	case id.Cert != nil:
		return fmt.Sprintf("certificate %q serial %d", id.Cert.KeyId, id.Cert.Serial)
	}
	return ssh.FingerprintSHA256(id.Key)
}

// CheckV6Prefix says why p cannot be a prefix-only update's prefix: it
// must be an IPv6 prefix (not IPv4-mapped) of 48 to 64 bits, the
// lengths a LAN's prefix-length may have.
func CheckV6Prefix(p netip.Prefix) error {
	if !p.Addr().Is6() || p.Addr().Is4In6() || p.Bits() < 48 || p.Bits() > 64 {
		return fmt.Errorf("IPv6 prefix %s: want an IPv6 prefix of 48 to 64 bits, e.g. 2001:db8:1::/56", p)
	}
	return nil
}

// prefixed returns host's AAAA record under prefix: its interface ID
// (the bits below the prefix) from the AAAA it has now, or id's iid=
// when it has none; refused alone (KindBadPrefix) when it has none and
// no iid=, or several, or an address that is not public.
func (s *Service) prefixed(ctx context.Context, id *authorized.Entry, host string, zone Zone, prefix netip.Prefix) (target, error) {
	t := target{host: host, of: host, zone: zone, addr: prefix.Addr()}
	refuse := func(why string) (target, error) {
		t.kind, t.why = KindBadPrefix, why
		return t, nil
	}
	recs, err := zone.Backend.Lookup(ctx, host)
	if err != nil {
		kind, temp := classify(backend.Result{Err: err})
		return t, &Error{Kind: kind, Host: host, Temporary: temp, Err: err}
	}
	var now []netip.Addr
	for _, r := range recs {
		if r.Addr.Is6() {
			now = append(now, r.Addr)
		}
	}
	var a netip.Addr
	switch {
	case len(now) == 1:
		a = withPrefix(prefix, now[0])
	case len(now) > 1:
		return refuse(fmt.Sprintf("%s has %d AAAA records: whose interface ID to keep is not clear", host, len(now)))
	case id.IID.IsValid():
		var ok bool
		if a, ok = LANAddress(prefix, id.IID); !ok {
			return refuse(fmt.Sprintf("iid %s does not fit below %s", id.IID, prefix))
		}
	default:
		return refuse(fmt.Sprintf("%s has no AAAA record to keep the interface ID of, and its line no iid=", host))
	}
	t.addr = a
	if !s.AllowPrivate && !id.AllowPrivate && !PublicUnicast(a) {
		t.kind = KindNotPublic
	}
	return t, nil
}

// withPrefix returns addr with its first prefix.Bits() bits replaced by
// prefix's.
func withPrefix(prefix netip.Prefix, addr netip.Addr) netip.Addr {
	p, a := prefix.Masked().Addr().As16(), addr.As16()
	bits := prefix.Bits()
	for i := range a {
		switch {
		case bits >= 8*(i+1):
			a[i] = p[i]
		case bits > 8*i:
			keep := byte(0xff) >> (bits - 8*i) // the low bits are the interface ID's
			a[i] = p[i]&^keep | a[i]&keep
		}
	}
	return netip.AddrFrom16(a)
}

// lanTargets returns the AAAA records of id's LAN hosts under the LAN's
// prefix: lanPrefix if valid, else addr masked to id's prefix length. A
// host whose interface ID does not fit below the prefix, or whose address
// is not public when private ones are not allowed, is refused alone.
func (s *Service) lanTargets(id *authorized.Entry, addr netip.Addr, lanPrefix netip.Prefix) ([]target, error) {
	prefix := lanPrefix.Masked()
	if !prefix.IsValid() {
		prefix = netip.PrefixFrom(addr, id.PrefixLen).Masked()
	}
	names := make([]string, len(id.LANHosts))
	for i, l := range id.LANHosts {
		names[i] = l.Name
	}
	zones, err := s.route(names)
	if err != nil {
		return nil, err
	}
	out := make([]target, len(id.LANHosts))
	for i, l := range id.LANHosts {
		a, ok := LANAddress(prefix, l.IID)
		out[i] = target{host: l.Name, zone: zones[i], addr: a}
		switch {
		case !ok:
			out[i].kind, out[i].addr = KindBadPrefix, prefix.Addr()
			if a := prefix.Addr(); !a.Is6() || a.Is4In6() {
				out[i].addr = netip.IPv6Unspecified() // an AAAA all the same
			}
		case !s.AllowPrivate && !id.AllowPrivate && !PublicUnicast(a):
			out[i].kind = KindNotPublic
		}
	}
	return out, nil
}

// LANAddress returns prefix's address with iid in the bits below it, and
// whether iid fits there (its first prefix.Bits() bits are zero).
//
// An IPv4 prefix, or an IPv4-mapped one (::ffff:0:0/96 and longer), is
// no IPv6 LAN's: the address would be an IPv4 one, and go in an A
// record (ip6lanprefix=::ffff:8.8.8.0/120 once set a LAN host's A).
func LANAddress(prefix netip.Prefix, iid netip.Addr) (netip.Addr, bool) {
	if !prefix.Addr().Is6() || prefix.Addr().Is4In6() || !iid.Is6() {
		return netip.Addr{}, false
	}
	if p, _ := iid.Prefix(prefix.Bits()); !p.Addr().IsUnspecified() {
		return netip.Addr{}, false
	}
	a, b := prefix.Masked().Addr().As16(), iid.As16()
	for i := range a {
		a[i] |= b[i]
	}
	return netip.AddrFrom16(a), true
}

// Records is what a primary serves for one host.
type Records struct {
	Host    string
	Records []backend.Record // A and AAAA; none if the host has no address
}

// Status returns the A and AAAA records served now for the hosts asked
// for, in order; with none asked for, the identity's hosts, their
// wildcards (the wildcard option), and then its LAN hosts. Its refusals are Update's (but for the public-address
// rule: nothing is published); a DNS failure stops it, with the hosts
// before it returned, as an *Error of the failure's kind.
func (s *Service) Status(ctx context.Context, req Request) ([]Records, error) {
	ctx, hosts, zones, done, err := s.begin(ctx, req)
	if err != nil {
		return nil, err
	}
	defer done()
	if id := req.Identity; len(req.Hosts) == 0 && id.Wildcard {
		n := len(hosts)
		for i := range n {
			hosts, zones = append(hosts, "*."+hosts[i]), append(zones, zones[i])
		}
	}
	if id := req.Identity; len(req.Hosts) == 0 && len(id.LANHosts) > 0 {
		for _, l := range id.LANHosts {
			lz, err := s.route([]string{l.Name})
			if err != nil {
				return nil, err
			}
			hosts, zones = append(hosts, l.Name), append(zones, lz...)
		}
	}
	var out []Records
	for i, host := range hosts {
		recs, err := zones[i].Backend.Lookup(ctx, host)
		if err != nil {
			kind, temp := classify(backend.Result{Err: err})
			return out, &Error{Kind: kind, Host: host, Temporary: temp, Err: err}
		}
		out = append(out, Records{Host: host, Records: recs})
	}
	return out, nil
}

// Authorize answers, without asking any primary, whether req would be
// refused as a whole for who asks and what it names: the identity not
// permitted from req.Client, a host that is not its own, or in no zone.
// A front asks it when a request has nothing to publish.
func (s *Service) Authorize(req Request) error {
	s.once.Do(s.init)
	if err := s.Permit(req.Identity, Address(req.Client)); err != nil {
		return err
	}
	hosts, err := owned(req.Identity, req.Hosts)
	if err != nil {
		return err
	}
	_, err = s.route(hosts)
	return err
}

// begin applies the refusals every request shares (the identity not
// permitted from the client's address, a host not its own, and, when
// publishing addr, an address that is not public), routes the hosts to
// their zones and takes a DNS slot. The request's work goes on when ctx
// is cancelled, bounded by Timeout; done frees the slot.
func (s *Service) begin(ctx context.Context, req Request, addrs ...netip.Addr) (_ context.Context, hosts []string, zones []Zone, done func(), err error) {
	s.once.Do(s.init)
	id := req.Identity
	if err := s.Permit(id, Address(req.Client)); err != nil {
		return nil, nil, nil, nil, err
	}
	if hosts, err = owned(id, req.Hosts); err != nil {
		return nil, nil, nil, nil, err
	}
	for _, addr := range addrs {
		if addr.IsValid() && !s.AllowPrivate && !id.AllowPrivate && !PublicUnicast(addr) {
			return nil, nil, nil, nil, &Error{Kind: KindNotPublic, Addr: addr}
		}
	}
	if zones, err = s.route(hosts); err != nil {
		return nil, nil, nil, nil, err
	}
	if err := s.requests.allow(id.ID(), time.Now()); err != nil {
		s.Observer.Limited(LimitRequests)
		return nil, nil, nil, nil, &Error{Kind: KindRateLimited, Temporary: true, Err: err}
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.Timeout)
	release, err := s.slot(ctx)
	if err != nil {
		cancel()
		return nil, nil, nil, nil, err
	}
	return ctx, hosts, zones, func() { release(); cancel() }, nil
}

// owned returns the hosts a request acts on: all of id's, or the named
// ones, canonical, each of which must be id's own, each once (a host
// named 63 times was 63 lines and 66 DNS exchanges for one request).
func owned(id *authorized.Entry, named []string) ([]string, error) {
	if len(named) == 0 {
		return slices.Clip(id.Hosts), nil // callers append to it
	}
	out := make([]string, 0, len(named))
	for _, h := range named {
		if !id.Owns(h) {
			return nil, &Error{Kind: KindNotOwned, Host: h}
		}
		if c := dnsname.Canonical(h); !slices.Contains(out, c) {
			out = append(out, c)
		}
	}
	return out, nil
}

// route returns the zone of each host: the longest configured zone that
// holds it. The authorized file is checked against the zones on load, so
// a host in none is the server's configuration error.
func (s *Service) route(hosts []string) ([]Zone, error) {
	out := make([]Zone, len(hosts))
	for i, h := range hosts {
		z, ok := dnsname.Longest(h, s.zones, func(z Zone) string { return z.Name })
		if !ok {
			return nil, &Error{Kind: KindNoZone, Host: h}
		}
		out[i] = z
	}
	return out, nil
}

// slot takes one of the MaxInFlight DNS slots, waiting until ctx is done.
func (s *Service) slot(ctx context.Context) (release func(), err error) {
	select {
	case s.slots <- struct{}{}:
		return func() { <-s.slots }, nil
	case <-ctx.Done():
		s.Observer.Limited(LimitDNSSlots)
		return nil, &Error{Kind: KindBusy, Temporary: true, Err: ctx.Err()}
	}
}

// InFlight returns the number of requests doing DNS work now.
func (s *Service) InFlight() int {
	s.once.Do(s.init)
	return len(s.slots)
}

// Log writes r's log line, if it has one: a change (with the addresses
// it replaced and the TTL) at Info, a failure (with the DNS detail) at
// Error; nochg has none. log is called only when there is a line, so a
// front can build its logger lazily.
func (r HostResult) Log(ctx context.Context, log func() *slog.Logger) {
	switch {
	case r.Kind == KindGood && r.Removed:
		log().InfoContext(ctx, "dns change", "host", r.Host, "type", r.Type, "old", addrList(r.Old), "new", "none (removed)")
	case r.Kind == KindGood:
		log().InfoContext(ctx, "dns change", "host", r.Host, "type", r.Type, "old", addrList(r.Old), "new", r.Addr.String(), "ttl", r.TTL)
	case r.Err != nil && r.Removed:
		log().ErrorContext(ctx, "dns update failed", "host", r.Host, "type", r.Type, "addr", "none (removal)", "err", r.Err)
	case r.Err != nil:
		log().ErrorContext(ctx, "dns update failed", "host", r.Host, "type", r.Type, "addr", r.Addr.String(), "err", r.Err)
	}
}
