package publish

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"github.com/sshdyn/sshdyn/backend"
)

// Kind is what became of a request or of one host in it. Its String is
// the word in metrics labels and in JSON; each front maps kinds to its
// own words (exit statuses, dyndns2 answers) at its edge, by Class.
type Kind int

const (
	KindGood     Kind = iota // the record was replaced
	KindNoChange             // the record was already right; nothing was written

	// Refusals of a whole request, before anything is written.
	KindDenied    // the identity may not be used from this address now (expiry-time, from=)
	KindNotOwned  // a host named is not the identity's
	KindNotPublic // the address is not public unicast, and private ones are not allowed
	KindBusy      // no DNS slot came free in time
	KindNoZone    // a host is in no configured zone: the server's configuration

	// Failures of one host; nothing was written for it.
	KindRateLimited // the identity changed its records, or asked, too often
	KindUnreachable // no connection to the primary
	KindTimeout     // no answer in time
	KindServFail    // SERVFAIL: the primary failed to apply it
	KindCredentials // the backend did not accept sshdyn's credentials: a TSIG key (BADSIG, BADKEY, BADTIME, an unsigned or forged reply), an API key
	KindRefused     // REFUSED: the primary's update policy does not grant it
	KindNotZone     // NOTZONE/NOTAUTH: the primary does not serve the zone
	KindIgnored     // NOERROR, but the change is not there (PowerDNS's policy script)
	KindOther       // anything else
	KindBadPrefix   // a LAN host's interface ID does not fit below the LAN's prefix
	KindLagging     // written, but a name server of the zone's wait_for did not serve it in time
	KindMalformed   // the request itself is malformed (an ACME value that is no digest)
	KindUnsupported // the zone's backend cannot store what was asked (SSHFP records in a provider's API)
)

var kindNames = [...]string{
	KindGood:        "good",
	KindNoChange:    "nochg",
	KindDenied:      "denied",
	KindNotOwned:    "not_owned",
	KindNotPublic:   "not_public",
	KindBusy:        "busy",
	KindNoZone:      "no_zone",
	KindRateLimited: "rate_limited",
	KindUnreachable: "unreachable",
	KindTimeout:     "timeout",
	KindServFail:    "servfail",
	KindCredentials: "credentials",
	KindRefused:     "refused",
	KindNotZone:     "notzone",
	KindIgnored:     "ignored",
	KindOther:       "other",
	KindBadPrefix:   "bad_prefix",
	KindLagging:     "lagging",
	KindMalformed:   "malformed",
	KindUnsupported: "unsupported",
}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "other"
}

// Class sorts kinds by who has to act.
type Class int

const (
	ClassOK        Class = iota // good, nochg
	ClassTemporary              // nobody: the next run may succeed
	ClassForbidden              // the client: it asked for what it may not have
	ClassServer                 // the server's operator: configuration, keys, policy
	ClassUsage                  // the client: its request is malformed
)

// Class returns who has to act on k; temporary says that this outcome
// may pass by itself (a DNS failure's kind alone does not always say).
func (k Kind) Class(temporary bool) Class {
	switch {
	case k == KindGood || k == KindNoChange:
		return ClassOK
	case k == KindMalformed:
		return ClassUsage
	case temporary:
		return ClassTemporary
	case k == KindDenied || k == KindNotOwned || k == KindNotPublic || k == KindBadPrefix:
		return ClassForbidden
	}
	return ClassServer
}

// Error is a request refused as a whole, or a DNS failure that stopped a
// Status. Its Error text is for logs; fronts render Kind, Host and Addr
// in their own words.
type Error struct {
	Kind      Kind
	Temporary bool
	Host      string     // KindNotOwned, KindNoZone, a DNS failure: the host (as the client named it)
	Addr      netip.Addr // KindNotPublic: the address
	Err       error      // KindDenied: why; KindRateLimited: *LimitError; a DNS failure: its detail
}

func (e *Error) Error() string {
	switch e.Kind {
	case KindDenied:
		return e.Err.Error()
	case KindNotOwned:
		return fmt.Sprintf("%q is not one of this identity's hosts", e.Host)
	case KindNotPublic:
		return fmt.Sprintf("%s is not a public address", e.Addr)
	case KindBusy:
		return "no DNS slot free in time"
	case KindNoZone:
		return fmt.Sprintf("%s is in no configured zone", e.Host)
	case KindBadPrefix:
		return fmt.Sprintf("%s: its interface ID does not fit below the LAN prefix", e.Host)
	case KindRateLimited, KindMalformed, KindLagging:
		if e.Host == "" {
			return e.Err.Error()
		}
	}
	return fmt.Sprintf("%s: %v", e.Host, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// HostResult is one host's outcome in an Update.
type HostResult struct {
	Host      string       // canonical
	Of        string       // the host asked for that it goes with: Host itself, a wildcard's host, "" for a LAN host
	Zone      string       // the zone it is in
	Type      string       // "A" or "AAAA"
	Addr      netip.Addr   // the address asked for; invalid for a removal
	Removed   bool         // the record was to be removed (offline): KindGood removed it, KindNoChange found none
	TTL       uint32       // the TTL written, or that would have been
	Kind      Kind         // KindGood, KindNoChange, or why it failed
	Temporary bool         // a failure that may pass by itself
	Old       []netip.Addr // KindGood: the addresses replaced, when known
	Err       error        // a failure's detail, for the log: *update.Error, *LimitError, …
}

// OK reports whether the host's record is now right.
func (r HostResult) OK() bool { return r.Kind == KindGood || r.Kind == KindNoChange }

// classify names the outcome of one record of a Backend's Set.
func classify(r backend.Result) (Kind, bool) {
	var le *LimitError
	switch {
	case r.Err == nil && r.Changed:
		return KindGood, false
	case r.Err == nil:
		return KindNoChange, false
	case errors.As(r.Err, &le):
		return KindRateLimited, true
	case errors.Is(r.Err, context.DeadlineExceeded), errors.Is(r.Err, context.Canceled):
		return KindTimeout, true
	}
	if e, ok := backend.As(r.Err); ok {
		return backendKind(e.Kind), e.Temporary
	}
	// Not a backend's failure: the next run may do better.
	return KindOther, true
}

// backendKind is the Kind of a backend's failure.
func backendKind(k backend.Kind) Kind {
	switch k {
	case backend.KindUnreachable:
		return KindUnreachable
	case backend.KindTimeout:
		return KindTimeout
	case backend.KindCredentials:
		return KindCredentials
	case backend.KindRefused:
		return KindRefused
	case backend.KindNotZone:
		return KindNotZone
	case backend.KindServerFailure:
		return KindServFail
	case backend.KindIgnored:
		return KindIgnored
	}
	return KindOther
}

func addrList(as []netip.Addr) string {
	if len(as) == 0 {
		return "none"
	}
	s := make([]string, len(as))
	for i, a := range as {
		s[i] = a.String()
	}
	return strings.Join(s, ",")
}
