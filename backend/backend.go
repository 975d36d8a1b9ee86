// Package backend is the contract between sshdyn's core (publish) and
// the backends that keep a zone's records: an RFC 2136 primary
// (update), sshdyn's own zone in process (zone), tinydns's data file
// (tinydns), a DNS provider's HTTP API (provider), and the in-memory
// one of the tests (backend/memory). It is written in the core's terms:
// records to set, a result per record, and a failure with a kind, a
// temporary flag and a hint in the backend's own words. Every backend
// passes the one conformance suite, backend/backendtest.
//
// TTL policy, the same for every backend: a record whose address is
// right is unchanged, whatever TTL it has; a change writes the record
// with the TTL asked for. (An RFC 2136 prerequisite compares data, not
// TTLs, so no backend compares them: a new ttl setting reaches a record
// with its next change of address.)
package backend

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
)

// Record is one host's address record: A for IPv4, AAAA for IPv6; or,
// with Remove, the removal of one of its address RRsets.
type Record struct {
	Name string     // host name, canonical: lower case, no trailing dot
	Addr netip.Addr // never an IPv4-mapped IPv6 address
	TTL  uint32
	// Remove asks for the RRset to be empty (a host going offline). Addr
	// then only names its type: netip.IPv4Unspecified() for A,
	// netip.IPv6Unspecified() for AAAA (Removal makes one); TTL is unused.
	Remove bool
}

// Removal returns the Record that removes name's RRset of type t, "A"
// or "AAAA".
func Removal(name, t string) Record {
	a := netip.IPv4Unspecified()
	if t == "AAAA" {
		a = netip.IPv6Unspecified()
	}
	return Record{Name: name, Addr: a, Remove: true}
}

// Wanted says what r's RRset is to be, for errors: its address, or
// "empty".
func (r Record) Wanted() string {
	if r.Remove {
		return "empty"
	}
	return r.Addr.String()
}

// Want returns the addresses r's RRset is to hold: {Addr}, or none for
// a removal.
func (r Record) Want() []netip.Addr {
	if r.Remove {
		return nil
	}
	return []netip.Addr{r.Addr.Unmap()}
}

// Type returns "A" for an IPv4 address, "AAAA" for IPv6.
func (r Record) Type() string { return TypeOf(r.Addr) }

// TypeOf returns "A" for an IPv4 address (mapped or not), "AAAA" for IPv6.
func TypeOf(a netip.Addr) string {
	if a.Unmap().Is4() {
		return "A"
	}
	return "AAAA"
}

// Result is what became of one record of a Set.
type Result struct {
	// Changed: the RRset was replaced by {Addr} (or emptied, for a
	// removal); false with a nil Err: it already was, and nothing was
	// written.
	Changed bool
	// Old holds the addresses a change replaced, when the backend could
	// tell (none: the RRset was empty).
	Old []netip.Addr
	// Err is why the record is not right: a *Error of the backend, or
	// the error of Set's allow. Nothing was written for it.
	Err error
}

// Backend keeps the address records, and the ACME TXT values, of one
// zone.
//
// Set makes each record's RRset exactly {Addr}, with its TTL (empty, for
// a removal), and writes nothing for a record that already is (whatever its TTL: see the
// package's TTL policy). recs are of one zone, each RRset at most once;
// what Set writes for them is one change, all or nothing, where the
// backend can (one UPDATE, one PATCH, one rebuild, one commit). Before
// it writes anything it calls allow (at most once, and not at all when
// nothing differs); an error from allow stops it with nothing written,
// and is every record's Err. It returns one Result per record, in order.
//
// Lookup returns the A and AAAA records served for name now.
//
// The TXT methods add and remove single values of a name's TXT RRset,
// leaving the others: ACME DNS-01 challenges. changed is false when the
// value was already there (AddTXT) or not there (RemoveTXT).
type Backend interface {
	Set(ctx context.Context, recs []Record, allow func() error) []Result
	Lookup(ctx context.Context, name string) ([]Record, error)
	LookupTXT(ctx context.Context, name string) ([]string, error)
	AddTXT(ctx context.Context, name, value string, ttl uint32) (changed bool, err error)
	RemoveTXT(ctx context.Context, name, value string) (changed bool, err error)
}

// Kind sorts a backend's failures by who has to act.
type Kind int

const (
	KindOther         Kind = iota // none of the below
	KindUnreachable               // the backend could not be reached (connection refused, no route, a file it cannot open)
	KindTimeout                   // it did not answer in time
	KindCredentials               // it did not accept sshdyn's credentials: a TSIG key, an API key
	KindRefused                   // it accepted the credentials, and its policy refused the change
	KindNotZone                   // it does not keep this zone
	KindServerFailure             // it failed to apply the change (SERVFAIL, HTTP 5xx, a build that failed)
	KindIgnored                   // it said yes, and the change is not there (a policy that skips, another writer)
)

var kindNames = [...]string{"other", "unreachable", "timeout", "credentials", "refused", "notzone", "servfail", "ignored"}

func (k Kind) String() string {
	if k >= 0 && int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "other"
}

// Error is a backend's failure. Its text is for the log: which backend,
// what happened, and the hint in that backend's own words.
type Error struct {
	Kind      Kind
	Temporary bool   // the next try may succeed with nothing changed
	Backend   string // who failed, e.g. "RFC 2136 primary 127.0.0.1:53", "tinydns root /etc/tinydns/root", "PowerDNS API"
	Zone      string
	Hint      string // what is most likely wrong, and what to do
	Err       error  // the detail
}

func (e *Error) Error() string {
	s := fmt.Sprintf("%s, zone %s: %v", e.Backend, e.Zone, e.Err)
	if e.Hint != "" {
		s += " (" + e.Hint + ")"
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }

// As returns err's *Error, if it has one.
func As(err error) (*Error, bool) {
	var e *Error
	ok := errors.As(err, &e)
	return e, ok
}

// Each returns n Results, each with err.
func Each(n int, err error) []Result {
	out := make([]Result, n)
	for i := range out {
		out[i].Err = err
	}
	return out
}

// RRset is one name's records of a type other than the addresses: SSHFP,
// the fingerprints of a host's SSH keys that the key owner publishes.
type RRset struct {
	Name string // canonical: lower case, no trailing dot
	Type string // "SSHFP"
	TTL  uint32
	// Data is each record's data in zone-file form, hex in lower case
	// (e.g. "4 2 0123…" for SSHFP); none: the RRset is to be empty.
	Data []string
}

// SSHFPData returns the data of an SSHFP record (RFC 4255): algorithm,
// fingerprint type, fingerprint, the hex in lower case.
func SSHFPData(algorithm, fpType uint8, fingerprint []byte) string {
	return fmt.Sprintf("%d %d %x", algorithm, fpType, fingerprint)
}

// RRsetter is a backend that can replace a name's RRset of a type other
// than A and AAAA: an RFC 2136 primary, the embedded zone, tinydns. The
// core refuses, clearly, what a backend without it cannot store.
//
// SetRRset makes set.Name's RRset of set.Type exactly set.Data, in any
// order, with set.TTL (none: empty), confirming what it wrote where the
// backend can; it writes nothing, and reports false, when the RRset
// already holds that data (the package's TTL policy). LookupRRset returns
// the data of name's RRset of type t as served now.
type RRsetter interface {
	SetRRset(ctx context.Context, set RRset) (changed bool, err error)
	LookupRRset(ctx context.Context, name, t string) ([]string, error)
}

// SameData reports whether a and b hold the same record data, in any
// order, hex compared in any case.
func SameData(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	norm := func(s []string) []string {
		out := make([]string, len(s))
		for i, v := range s {
			out[i] = strings.ToLower(strings.Join(strings.Fields(v), " "))
		}
		slices.Sort(out)
		return slices.Compact(out)
	}
	return slices.Equal(norm(a), norm(b))
}
