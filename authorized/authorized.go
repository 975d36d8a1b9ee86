// Package authorized parses sshdyn's authorized file, which maps each SSH
// public key to the host names it may update, and keeps the current map
// for lookups while it is reloaded.
//
// The file uses OpenSSH's authorized_keys syntax; options carry the mapping:
//
//	host="home.dyn.example.com" ssh-ed25519 AAAA... home-server
//	host="nas.dyn.example.com",host="cam.dyn.example.com",ttl=120 ssh-ed25519 AAAA... nas
//
// Every bad line is an error naming file and line; none is skipped.
package authorized

import (
	"bufio"
	"cmp"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/bcrypt"
	"golang.org/x/crypto/ssh"

	"github.com/sshdyn/sshdyn/dnsname"
)

// Scope is what an authorized file's host names are checked against.
type Scope struct {
	// Zones are the configured zones (canonical names): every host must
	// be strictly inside one of them.
	Zones []string
	// Reserved maps names no line may list to why: the names a zone's NS,
	// MX and SRV records point at, when sshdyn knows them (the embedded
	// primary's zones).
	Reserved map[string]string
	// MinPasswordCost is the lowest bcrypt cost an http-password may have
	// (PasswordCost if 0). Tests lower it; an operator has no setting.
	MinPasswordCost int
}

// The bcrypt costs an http-password may have. PasswordCost is the cost
// "sshdyn passwd" makes (about a quarter of a second of CPU). A cheaper
// hash is refused: it is quick to crack offline, and an unknown user
// (compared against a dummy hash of PasswordCost) would take longer
// than a known one, so user names could be told apart by timing (audit
// finding H6: at cost 5, 358 ms against 3 ms). A dearer one is refused
// too: each comparison is CPU that any stranger can make the front
// spend (cost 15 is eight times cost 12).
const (
	PasswordCost    = 12
	MaxPasswordCost = 14
)

// Entry is one key's line: the key and what it may update.
type Entry struct {
	Key     ssh.PublicKey
	Hosts   []string // canonical: lower case, no trailing dot
	TTL     uint32   // 0: the zone's default
	Comment string
	Line    int

	From         *From     // from="...": where the key may connect from; nil: anywhere
	Expiry       time.Time // expiry-time="...": zero if none
	AllowPrivate bool      // allow-private: may publish non-public addresses

	// LANHosts are hosts of the home's LAN whose AAAA follow the IPv6
	// prefix this line publishes from (lan-host="NAME=IID"): each is the
	// prefix, PrefixLen bits of it, and the host's interface ID.
	LANHosts  []LANHost
	PrefixLen int // prefix-length=: 48 to 64; 64 if not given

	// HTTPUser and HTTPPassword (a bcrypt hash) let the line's identity
	// log in over HTTP (the dyndns2 front) too. A line may have them and
	// no Key: a router's line, which cannot log in over SSH.
	HTTPUser     string
	HTTPPassword string

	// SharedHosts (shared-hosts) lets the line's hosts be on other lines
	// that have it too; without it a host is on one line only, so no key
	// can overwrite another's address.
	SharedHosts bool

	// NoACME (no-acme) forbids the key to answer ACME challenges.
	NoACME bool

	// CA (cert-authority): Key is a certificate authority's, which never
	// logs in itself; a user certificate it signed does, with the
	// certificate's principals as its hosts, as far as the line's host=
	// values allow: exact names (Hosts) and *.SUFFIX (Below: any name
	// strictly below SUFFIX).
	CA    bool
	Below []string

	// Cert is set on the entry Lookup makes for a certificate: the
	// certificate (also in Key), the CA's line in the other fields.
	Cert *ssh.Certificate
}

// LANHost is a host of the LAN behind a line's updater.
type LANHost struct {
	Name string     // canonical
	IID  netip.Addr // the interface ID: an IPv6 address whose prefix bits are zero
}

// DefaultPrefixLen is the prefix length LAN hosts share when the line
// does not say.
const DefaultPrefixLen = 64

// Permits reports, as an error for the log and the client, why the key may
// not be used from addr at now; nil if it may.
func (e *Entry) Permits(addr netip.Addr, now time.Time) error {
	if !e.Expiry.IsZero() && !now.Before(e.Expiry) {
		return fmt.Errorf("key expired at %s", e.Expiry.UTC().Format(time.RFC3339))
	}
	if e.From != nil && !e.From.Match(addr) {
		return fmt.Errorf("key not allowed from %s", addr)
	}
	return nil
}

// ID returns a string that names the identity of this line, for limits
// that follow it across fronts and reloads: the key's wire encoding, or
// for a line without a key its HTTP user.
func (e *Entry) ID() string {
	switch {
	case e.Key == nil:
		return "http-user:" + e.HTTPUser
	case e.Cert != nil:
		return string(e.Cert.Key.Marshal()) // the certificate's key: its renewals share the limits
	}
	return string(e.Key.Marshal())
}

// Owns reports whether host (any case, trailing dot or not) is one of e's.
func (e *Entry) Owns(host string) bool {
	return slices.Contains(e.Hosts, dnsname.Canonical(host))
}

// Map is a parsed authorized file. It is never modified after Parse.
type Map struct {
	byKey    map[string]*Entry // by the key's wire encoding
	byCA     map[string]*Entry // cert-authority lines, by the CA key's wire encoding
	byUser   map[string]*Entry // by http-user
	names    map[string]nameUse
	reserved map[string]string
	n        int
}

// nameUse is where a host name is on the file: the line, and whether as
// a LAN host.
type nameUse struct {
	line   int
	lan    bool
	shared bool
}

// Lookup returns the entry for key, in O(1). For a certificate it is an
// entry made from its CA's line with the certificate's usable principals
// as hosts (see Certificate); false if the CA is not trusted or no
// principal is usable. Lookup does not check the certificate's
// signature, validity or options: the SSH front does, before it asks.
func (m *Map) Lookup(key ssh.PublicKey) (*Entry, bool) {
	if m == nil || key == nil {
		return nil, false
	}
	if c, ok := key.(*ssh.Certificate); ok {
		e, _, err := m.Certificate(c)
		return e, err == nil
	}
	e, ok := m.byKey[string(key.Marshal())]
	return e, ok
}

// Authority reports whether key is a CA a cert-authority line trusts.
func (m *Map) Authority(key ssh.PublicKey) bool {
	if m == nil || key == nil {
		return false
	}
	_, ok := m.byCA[string(key.Marshal())]
	return ok
}

// Certificate returns the entry for certificate c: its CA's line, with
// the principals that the line's host= values allow, that are valid host
// names inside a configured zone, not reserved, and not another line's
// host (unless both lines have shared-hosts). ignored lists the other
// principals, with why. err says why c gets no entry at all.
func (m *Map) Certificate(c *ssh.Certificate) (e *Entry, ignored []string, err error) {
	ca, ok := m.byCA[string(c.SignatureKey.Marshal())]
	if !ok {
		return nil, nil, errors.New("certificate signed by a CA no cert-authority line trusts")
	}
	var hosts []string
	for _, p := range c.ValidPrincipals {
		if why := m.principal(ca, p); why != "" {
			ignored = append(ignored, fmt.Sprintf("%q (%s)", p, why))
		} else if !slices.Contains(hosts, dnsname.Canonical(p)) {
			hosts = append(hosts, dnsname.Canonical(p))
		}
	}
	if len(hosts) == 0 {
		return nil, ignored, fmt.Errorf("certificate has no principal that line %d allows", ca.Line)
	}
	d := *ca
	d.Key, d.Cert, d.CA, d.Below, d.Hosts = c, c, false, nil, hosts
	return &d, ignored, nil
}

// principal says why p may not be a host of a certificate of ca, or "".
func (m *Map) principal(ca *Entry, p string) string {
	h := dnsname.Canonical(p)
	if err := dnsname.CheckHost(h); err != nil {
		return err.Error()
	}
	allowed := slices.Contains(ca.Hosts, h)
	for _, suffix := range ca.Below {
		allowed = allowed || strings.HasSuffix(h, "."+suffix)
	}
	if !allowed {
		return fmt.Sprintf("not allowed by line %d", ca.Line)
	}
	if why, ok := m.reserved[h]; ok {
		return why
	}
	if u, ok := m.names[h]; ok && u.line != ca.Line && !(u.shared && ca.SharedHosts) {
		return fmt.Sprintf("a host of line %d", u.line)
	}
	return ""
}

// LookupUser returns the entry whose http-user is name, in O(1).
func (m *Map) LookupUser(name string) (*Entry, bool) {
	if m == nil {
		return nil, false
	}
	e, ok := m.byUser[name]
	return e, ok
}

// Passwords returns the number of lines with an http-password hash.
func (m *Map) Passwords() int {
	if m == nil {
		return 0
	}
	return len(m.byUser)
}

// Counts returns the lines by kind: with a key, certificate authorities,
// and routers' lines (an http-user and no key).
func (m *Map) Counts() (keys, authorities, routers int) {
	if m == nil {
		return 0, 0, 0
	}
	routers = m.n - len(m.byKey) - len(m.byCA)
	return len(m.byKey), len(m.byCA), routers
}

// Len returns the number of entries (lines).
func (m *Map) Len() int { return m.n }

// LineError is a bad line in an authorized file.
type LineError struct {
	File string
	Line int
	Err  error
}

func (e *LineError) Error() string { return fmt.Sprintf("%s:%d: %v", e.File, e.Line, e.Err) }
func (e *LineError) Unwrap() error { return e.Err }

// maxLine bounds one line; OpenSSH's own limit is 8 KiB per key line, but
// RSA keys with many host= options can be longer.
const maxLine = 64 << 10

// maxErrors bounds how many line errors one parse reports.
const maxErrors = 20

// Parse reads an authorized file; name is used in errors. Every host must
// be a valid RFC 1123 name inside one of zones (canonical names, lower
// case, no trailing dot). All bad lines are reported, up to 20, joined.
func Parse(r io.Reader, name string, scope Scope) (*Map, error) {
	m, _, err := parse(r, name, scope)
	if err != nil {
		return nil, err
	}
	return m, nil
}

// badLine is a line that did not parse, with what identifies it if that
// much could be read: its key's wire encoding, its http-user.
type badLine struct {
	line      int
	key, user string
}

// parse is Parse, which also returns the map of the good lines and the
// bad lines when some are bad.
func parse(r io.Reader, name string, scope Scope) (*Map, []badLine, error) {
	m := &Map{byKey: make(map[string]*Entry), byCA: make(map[string]*Entry), byUser: make(map[string]*Entry), names: make(map[string]nameUse), reserved: scope.Reserved}
	var errs []error
	var bad []badLine
	fail := func(line int, text string, err error) {
		if len(errs) < maxErrors {
			errs = append(errs, &LineError{File: name, Line: line, Err: err})
		}
		key, user := identify(text)
		bad = append(bad, badLine{line, key, user})
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), maxLine)
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		e, err := parseLine(line, scope)
		if err != nil {
			fail(n, line, err)
			continue
		}
		e.Line = n
		if err := m.add(e); err != nil {
			fail(n, line, err)
			continue
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			err = fmt.Errorf("line longer than %d bytes", maxLine)
		}
		fail(n+1, "", err)
	}
	return m, bad, errors.Join(errs...)
}

// identify finds, in a line that did not parse, the public key it holds
// (its wire encoding) and its http-user, as far as they can be read.
func identify(line string) (key, user string) {
	for _, f := range strings.Fields(line) {
		b, err := base64.StdEncoding.DecodeString(f)
		if err != nil || len(b) < 16 {
			continue
		}
		if k, err := ssh.ParsePublicKey(b); err == nil {
			key = string(k.Marshal())
			break
		}
	}
	if _, after, ok := strings.Cut(line, `http-user="`); ok {
		user, _, _ = strings.Cut(after, `"`)
	}
	return key, user
}

// carryOver puts into m, for each bad line whose key or http-user old had
// and m has not, old's entry for it: an edit that breaks a line keeps
// that line's previous options until it is fixed. It returns how many it
// carried over. Keys on no line at all are not carried over: removing a
// line revokes it, whatever else is broken.
func (m *Map) carryOver(old *Map, bad []badLine) int {
	n := 0
	for _, b := range bad {
		var e *Entry
		switch {
		case b.key != "":
			_, dup := m.byKey[b.key]
			_, dupCA := m.byCA[b.key]
			if !dup && !dupCA {
				e = cmp.Or(old.byKey[b.key], old.byCA[b.key])
			}
		case b.user != "":
			if _, dup := m.byUser[b.user]; !dup {
				e = old.byUser[b.user]
			}
		}
		if e == nil {
			continue
		}
		c := *e
		c.Line = b.line
		if m.add(&c) == nil {
			n++
		}
	}
	return n
}

// removed counts old's entries that m does not have.
func (m *Map) removed(old *Map) int {
	n := 0
	for k := range old.byKey {
		if _, ok := m.byKey[k]; !ok {
			n++
		}
	}
	for k := range old.byCA {
		if _, ok := m.byCA[k]; !ok {
			n++
		}
	}
	for u, e := range old.byUser {
		if _, ok := m.byUser[u]; !ok && e.Key == nil {
			n++
		}
	}
	return n
}

// add puts e in the map, unless its key, http-user or one of its hosts is
// on another line (hosts may be, on lines that all have shared-hosts).
func (m *Map) add(e *Entry) error {
	var k string
	if e.Key != nil {
		k = string(e.Key.Marshal())
		if prev, dup := m.byKey[k]; dup {
			return fmt.Errorf("key already listed on line %d", prev.Line)
		}
		if prev, dup := m.byCA[k]; dup {
			return fmt.Errorf("key already listed on line %d", prev.Line)
		}
	}
	if prev, dup := m.byUser[e.HTTPUser]; e.HTTPUser != "" && dup {
		return fmt.Errorf("http-user %q already on line %d", e.HTTPUser, prev.Line)
	}
	// A LAN host has one owner: no other line may list it, as a host or
	// a LAN host. (Hosts may be on several lines.)
	for _, l := range e.LANHosts {
		if u, ok := m.names[l.Name]; ok {
			return fmt.Errorf("lan-host %q is also on line %d", l.Name, u.line)
		}
	}
	for _, h := range e.Hosts {
		u, ok := m.names[h]
		switch {
		case ok && u.lan:
			return fmt.Errorf("host %q is a lan-host on line %d", h, u.line)
		case ok && !(u.shared && e.SharedHosts):
			return fmt.Errorf("host %q is also on line %d: either line could overwrite the other's address; list it on one line, or add shared-hosts to both", h, u.line)
		}
	}
	for _, h := range e.Hosts {
		if _, ok := m.names[h]; !ok {
			m.names[h] = nameUse{line: e.Line, shared: e.SharedHosts}
		}
	}
	for _, l := range e.LANHosts {
		m.names[l.Name] = nameUse{line: e.Line, lan: true}
	}
	switch {
	case e.CA:
		m.byCA[k] = e
	case e.Key != nil:
		m.byKey[k] = e
	}
	if e.HTTPUser != "" {
		m.byUser[e.HTTPUser] = e
	}
	m.n++
	return nil
}

// Load reads and parses the authorized file at path.
func Load(path string, scope Scope) (*Map, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return Parse(f, path, scope)
}

// restrictive lists the OpenSSH options that only take something away;
// sshdyn grants none of those things anyway, so they are accepted.
var restrictive = map[string]bool{
	"restrict":            true,
	"no-pty":              true,
	"no-port-forwarding":  true,
	"no-agent-forwarding": true,
	"no-x11-forwarding":   true,
	"no-user-rc":          true,
}

func parseLine(line string, scope Scope) (*Entry, error) {
	e := &Entry{}
	var opts []string
	key, comment, keyOpts, rest, err := ssh.ParseAuthorizedKey([]byte(line))
	switch {
	case err == nil:
		if len(rest) != 0 {
			return nil, errors.New("more than one key on this line")
		}
		if _, ok := key.(*ssh.Certificate); ok {
			return nil, errors.New("a certificate: list the plain public key, or its CA's with cert-authority")
		}
		e.Key, e.Comment, opts = key, comment, keyOpts
	default:
		// A router's line: options only, no key (http-user= must be
		// among them).
		o, ok := splitOptions(line)
		if !ok || !hasOption(o, "http-user") {
			return nil, errors.New("no valid public key on this line")
		}
		opts = o
	}
	seen := map[string]bool{}
	for _, o := range opts {
		if err := e.option(o, scope, seen); err != nil {
			return nil, err
		}
	}
	if len(e.Hosts) == 0 && len(e.Below) == 0 {
		return nil, errors.New(`no host="..." option: the key would have nothing to update`)
	}
	if err := e.checkCA(); err != nil {
		return nil, err
	}
	if (e.HTTPUser == "") != (e.HTTPPassword == "") {
		return nil, errors.New(`http-user="..." and http-password="..." go together`)
	}
	if err := e.checkLAN(); err != nil {
		return nil, err
	}
	return e, nil
}

// checkCA checks what a cert-authority line may have, and that host="*.X"
// patterns are on one.
func (e *Entry) checkCA() error {
	switch {
	case !e.CA && len(e.Below) > 0:
		return fmt.Errorf(`host="*.%s" is a pattern, for a cert-authority line only`, e.Below[0])
	case !e.CA:
		return nil
	case e.Key == nil:
		return errors.New("cert-authority needs the CA's public key on the line")
	case e.HTTPUser != "" || len(e.LANHosts) > 0:
		return errors.New("a cert-authority line cannot have http-user or lan-host")
	}
	return nil
}

// lanHost applies lan-host="NAME=IID"; seen holds the line's names.
func (e *Entry) lanHost(value string, scope Scope, seen map[string]bool) error {
	name, iid, ok := strings.Cut(value, "=")
	if !ok {
		return fmt.Errorf("lan-host %q: want NAME=IID, e.g. \"nas.dyn.example.com=::211:32ff:fe12:3456\"", value)
	}
	h, err := checkHost(name, scope)
	if err != nil {
		return fmt.Errorf("lan-host: %w", err)
	}
	if seen[h] {
		return fmt.Errorf("host %q listed twice", h)
	}
	seen[h] = true
	a, err := netip.ParseAddr(iid)
	if err != nil || !a.Is6() || a.Is4In6() || a.Zone() != "" {
		return fmt.Errorf("lan-host %s: interface ID %q is not an IPv6 address such as ::211:32ff:fe12:3456", h, iid)
	}
	if a.IsUnspecified() {
		return fmt.Errorf("lan-host %s: interface ID %s is all zero", h, iid)
	}
	e.LANHosts = append(e.LANHosts, LANHost{Name: h, IID: a})
	return nil
}

// checkLAN checks, with the line's prefix length known, that every LAN
// host's interface ID fits below it.
func (e *Entry) checkLAN() error {
	if e.PrefixLen == 0 {
		if len(e.LANHosts) == 0 {
			return nil
		}
		e.PrefixLen = DefaultPrefixLen
	}
	if len(e.LANHosts) == 0 {
		return errors.New("prefix-length without lan-host")
	}
	for _, l := range e.LANHosts {
		if p, _ := l.IID.Prefix(e.PrefixLen); !p.Addr().IsUnspecified() {
			return fmt.Errorf("lan-host %s: interface ID %s has bits set in the first %d (the prefix's): want, e.g., ::%s", l.Name, l.IID, e.PrefixLen, iidExample(l.IID, e.PrefixLen))
		}
	}
	return nil
}

// iidExample returns a with its first bits bits cleared, for a hint.
func iidExample(a netip.Addr, bits int) string {
	b := a.As16()
	for i := range bits {
		b[i/8] &^= 0x80 >> (i % 8)
	}
	return strings.TrimPrefix(netip.AddrFrom16(b).String(), "::")
}

// option applies one option of a line to e; seen holds the hosts so far.
func (e *Entry) option(o string, scope Scope, seen map[string]bool) error {
	name, value, hasValue := strings.Cut(o, "=")
	lname := strings.ToLower(name)
	if hasValue {
		v, err := unquote(value)
		if err != nil {
			return fmt.Errorf("option %s: %v", name, err)
		}
		value = v
	}
	switch {
	case lname == "host" && hasValue && strings.HasPrefix(value, "*."):
		suffix, err := checkSuffix(value[2:], scope)
		if err != nil {
			return fmt.Errorf("host %q: %v", value, err)
		}
		e.Below = append(e.Below, suffix)
	case lname == "host" && hasValue:
		h, err := checkHost(value, scope)
		if err != nil {
			return err
		}
		if seen[h] {
			return fmt.Errorf("host %q listed twice", h)
		}
		seen[h] = true
		e.Hosts = append(e.Hosts, h)
	case lname == "ttl" && hasValue:
		if e.TTL != 0 {
			return errors.New("ttl given twice")
		}
		ttl, err := strconv.ParseUint(value, 10, 32)
		if err != nil || ttl < 1 || ttl > 604800 {
			return fmt.Errorf("ttl %q: want whole seconds from 1 to 604800", value)
		}
		e.TTL = uint32(ttl)
	case lname == "from" && hasValue:
		if e.From != nil {
			return errors.New("from given twice")
		}
		f, err := ParseFrom(value)
		if err != nil {
			return fmt.Errorf("from=%q: %v", value, err)
		}
		e.From = f
	case lname == "expiry-time" && hasValue:
		if !e.Expiry.IsZero() {
			return errors.New("expiry-time given twice")
		}
		t, err := parseExpiry(value)
		if err != nil {
			return fmt.Errorf("expiry-time=%q: %v", value, err)
		}
		e.Expiry = t
	case (lname == "http-user" || lname == "http-password") && hasValue:
		return e.httpOption(lname, value, scope)
	case lname == "lan-host" && hasValue:
		return e.lanHost(value, scope, seen)
	case lname == "prefix-length" && hasValue:
		if e.PrefixLen != 0 {
			return errors.New("prefix-length given twice")
		}
		n, err := strconv.Atoi(value)
		if err != nil || n < 48 || n > 64 {
			return fmt.Errorf("prefix-length %q: want 48 to 64", value)
		}
		e.PrefixLen = n
	case lname == "allow-private" && !hasValue:
		e.AllowPrivate = true
	case lname == "shared-hosts" && !hasValue:
		e.SharedHosts = true
	case lname == "no-acme" && !hasValue:
		e.NoACME = true
	case lname == "cert-authority" && !hasValue:
		e.CA = true
	case restrictive[lname] && !hasValue:
	case valued[lname]:
		return fmt.Errorf("option %s needs a value", name)
	case restrictive[lname] || lname == "allow-private" || lname == "shared-hosts" || lname == "no-acme" || lname == "cert-authority":
		return fmt.Errorf("option %s takes no value", name)
	default:
		return fmt.Errorf("option %q is not supported (sshdyn accepts host=, ttl=, from=, expiry-time=, http-user=, http-password=, lan-host=, prefix-length=, allow-private, shared-hosts, no-acme, cert-authority and the restricting options %s)", name, "restrict, no-pty, no-port-forwarding, no-agent-forwarding, no-X11-forwarding, no-user-rc")
	}
	return nil
}

// valued lists the options that take a value.
var valued = map[string]bool{"host": true, "ttl": true, "from": true, "expiry-time": true, "http-user": true, "http-password": true,
	"lan-host": true, "prefix-length": true}

// MaxUserLen bounds an http-user name.
const MaxUserLen = 64

// httpOption applies http-user= or http-password=.
func (e *Entry) httpOption(name, value string, scope Scope) error {
	if name == "http-user" {
		if e.HTTPUser != "" {
			return errors.New("http-user given twice")
		}
		if value == "" || len(value) > MaxUserLen || strings.ContainsFunc(value, func(r rune) bool { return r <= ' ' || r > '~' || r == ':' }) {
			return fmt.Errorf("http-user %q: want 1 to %d printable ASCII characters, no space or colon", value, MaxUserLen)
		}
		e.HTTPUser = value
		return nil
	}
	if e.HTTPPassword != "" {
		return errors.New("http-password given twice")
	}
	cost, err := bcrypt.Cost([]byte(value))
	if err != nil {
		return errors.New(`http-password is not a bcrypt hash: make one with "sshdyn passwd" (never the password itself)`)
	}
	low := scope.MinPasswordCost
	if low == 0 {
		low = PasswordCost
	}
	if cost < low || cost > MaxPasswordCost {
		return fmt.Errorf(`http-password has bcrypt cost %d: want %d to %d; make one with "sshdyn passwd" (cost %d)`, cost, low, MaxPasswordCost, PasswordCost)
	}
	e.HTTPPassword = value
	return nil
}

// splitOptions splits a line that is an options list and nothing else
// (opt,opt="v, with spaces",...) into its options, as x/crypto returns
// them; ok is false if anything else is on the line.
func splitOptions(line string) (opts []string, ok bool) {
	start, quoted := 0, false
	for i := 0; i < len(line); i++ {
		switch c := line[i]; {
		case c == '\\' && quoted && i+1 < len(line) && line[i+1] == '"':
			i++
		case c == '"':
			quoted = !quoted
		case c == ',' && !quoted:
			opts = append(opts, line[start:i])
			start = i + 1
		case (c == ' ' || c == '\t') && !quoted:
			return nil, false
		}
	}
	if quoted {
		return nil, false
	}
	opts = append(opts, line[start:])
	for _, o := range opts {
		if o == "" {
			return nil, false
		}
	}
	return opts, true
}

// hasOption reports whether opts holds the option name (with a value).
func hasOption(opts []string, name string) bool {
	for _, o := range opts {
		if n, _, ok := strings.Cut(o, "="); ok && strings.EqualFold(n, name) {
			return true
		}
	}
	return false
}

// unquote strips OpenSSH option quotes; \" stands for a quote inside.
// A value without quotes (ttl=120) is taken as it is.
func unquote(v string) (string, error) {
	if !strings.HasPrefix(v, `"`) {
		if strings.Contains(v, `"`) {
			return "", errors.New("stray double quote")
		}
		return v, nil
	}
	if len(v) < 2 || v[len(v)-1] != '"' {
		return "", errors.New("unterminated double quote")
	}
	return strings.ReplaceAll(v[1:len(v)-1], `\"`, `"`), nil
}

// checkHost validates an RFC 1123 host name strictly inside one of the
// scope's zones, and not reserved, and returns it canonical.
func checkHost(h string, scope Scope) (string, error) {
	c := dnsname.Canonical(h)
	if err := dnsname.CheckHost(c); err != nil {
		return "", fmt.Errorf("host %q: %v", h, err)
	}
	z, ok := dnsname.Longest(c, scope.Zones, func(z string) string { return z })
	switch {
	case !ok:
		return "", fmt.Errorf("host %q is not inside a configured zone (%s)", h, strings.Join(scope.Zones, ", "))
	case c == z:
		return "", fmt.Errorf("host %q is the apex of zone %s: its records are the zone's own; give the key a name below it", h, z)
	}
	if why, ok := scope.Reserved[c]; ok {
		return "", fmt.Errorf("host %q is %s: a key could move it; give the key another name", h, why)
	}
	return c, nil
}

// checkSuffix validates the SUFFIX of a host="*.SUFFIX" pattern: a valid
// name, a configured zone or inside one, and returns it canonical.
func checkSuffix(suffix string, scope Scope) (string, error) {
	c := dnsname.Canonical(suffix)
	if err := dnsname.CheckHost(c); err != nil {
		return "", err
	}
	if _, ok := dnsname.Longest(c, scope.Zones, func(z string) string { return z }); !ok {
		return "", fmt.Errorf("%s is not a configured zone or inside one (%s)", c, strings.Join(scope.Zones, ", "))
	}
	return c, nil
}

// File is an authorized file that can be reloaded: lookups always see one
// whole map, the old one until a reload has parsed the new file entirely.
type File struct {
	path  string
	scope Scope
	cur   atomic.Pointer[Map]

	mu sync.Mutex // serializes Reload
}

// Open loads the authorized file at path.
func Open(path string, scope Scope) (*File, error) {
	f := &File{path: path, scope: scope}
	if err := f.Reload(); err != nil {
		return nil, err
	}
	return f, nil
}

// ReloadError is a reload that found bad lines. The map in use is then
// the file's good lines, plus, for each bad line whose key (or http-user)
// the previous map had, that previous entry: a broken edit does not lock
// the line's key out, and a line removed from the file is revoked whatever
// else fails.
type ReloadError struct {
	Err     error // the bad lines, as file:line: what is wrong
	Kept    int   // bad lines whose key keeps its previous options
	Removed int   // entries of the previous map not in the new one
	Keys    int   // entries in the new map
}

func (e *ReloadError) Error() string {
	return fmt.Sprintf("%v (now in use: the good lines, %d key(s), the previous options kept for %d bad line(s), %d key(s) removed)", e.Err, e.Keys, e.Kept, e.Removed)
}

func (e *ReloadError) Unwrap() error { return e.Err }

// Reload parses the file again and swaps the new map in. The first load
// fails on any bad line; a later one with bad lines returns a
// *ReloadError and uses what the file still says (see ReloadError). An
// emptied file revokes every key.
func (f *File) Reload() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	r, err := os.Open(f.path)
	if err != nil {
		return err
	}
	defer r.Close()
	m, bad, err := parse(r, f.path, f.scope)
	old := f.cur.Load()
	if err != nil && old == nil {
		return err
	}
	var rerr error
	if err != nil {
		kept := m.carryOver(old, bad)
		rerr = &ReloadError{Err: err, Kept: kept, Removed: m.removed(old), Keys: m.Len()}
	}
	f.cur.Store(m)
	return rerr
}

// Lookup returns key's entry in the current map.
func (f *File) Lookup(key ssh.PublicKey) (*Entry, bool) { return f.cur.Load().Lookup(key) }

// Authority reports whether key is a CA of the current map.
func (f *File) Authority(key ssh.PublicKey) bool { return f.cur.Load().Authority(key) }

// Certificate is the current map's Certificate.
func (f *File) Certificate(c *ssh.Certificate) (*Entry, []string, error) {
	return f.cur.Load().Certificate(c)
}

// LookupUser returns the entry of http-user name in the current map.
func (f *File) LookupUser(name string) (*Entry, bool) { return f.cur.Load().LookupUser(name) }

// Map returns the current map.
func (f *File) Map() *Map { return f.cur.Load() }

// Path returns the file's path.
func (f *File) Path() string { return f.path }

// From is a from="..." pattern list: addresses and CIDR prefixes, each
// optionally negated with "!". As in OpenSSH, a negated match refuses,
// whatever else matches; otherwise any positive match allows.
type From struct {
	allow, deny []netip.Prefix
}

// ParseFrom parses a from= list such as "198.51.100.0/24,2001:db8::/32,!198.51.100.7".
// Host names and wildcards are refused: sshdyn matches addresses only.
func ParseFrom(s string) (*From, error) {
	f := &From{}
	for _, item := range strings.Split(s, ",") {
		item = strings.TrimSpace(item)
		neg := strings.HasPrefix(item, "!")
		item = strings.TrimPrefix(item, "!")
		if item == "" {
			return nil, errors.New("empty pattern")
		}
		var p netip.Prefix
		var err error
		if strings.Contains(item, "/") {
			p, err = netip.ParsePrefix(item)
			if err == nil && p != p.Masked() {
				err = fmt.Errorf("host bits set (did you mean %s?)", p.Masked())
			}
			if err == nil && p.Addr().Is4In6() {
				// Addresses are matched un-mapped: a 4-in-6 prefix is
				// the IPv4 prefix it covers.
				if p.Bits() < 96 {
					err = errors.New("a ::ffff: prefix shorter than /96 covers more than IPv4 addresses")
				} else {
					p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
				}
			}
		} else {
			var a netip.Addr
			a, err = netip.ParseAddr(item)
			if err == nil {
				a = a.Unmap()
				p = netip.PrefixFrom(a, a.BitLen())
			}
		}
		if err != nil {
			return nil, fmt.Errorf("%q: want an address or CIDR (host names and wildcards are not supported): %v", item, err)
		}
		if neg {
			f.deny = append(f.deny, p)
		} else {
			f.allow = append(f.allow, p)
		}
	}
	if len(f.allow) == 0 {
		return nil, errors.New("only negated patterns: nothing would match")
	}
	return f, nil
}

// Match reports whether addr may connect.
func (f *From) Match(addr netip.Addr) bool {
	addr = addr.Unmap().WithZone("")
	for _, p := range f.deny {
		if p.Contains(addr) {
			return false
		}
	}
	for _, p := range f.allow {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// parseExpiry parses OpenSSH's YYYYMMDD[HHMM[SS]][Z]: local time unless Z.
func parseExpiry(s string) (time.Time, error) {
	loc := time.Local
	if strings.HasSuffix(s, "Z") || strings.HasSuffix(s, "z") {
		s, loc = s[:len(s)-1], time.UTC
	}
	layout := map[int]string{8: "20060102", 12: "200601021504", 14: "20060102150405"}[len(s)]
	if layout == "" {
		return time.Time{}, errors.New("want YYYYMMDD[HHMM[SS]][Z]")
	}
	t, err := time.ParseInLocation(layout, s, loc)
	if err != nil {
		return time.Time{}, errors.New("want YYYYMMDD[HHMM[SS]][Z], a real date")
	}
	return t, nil
}
