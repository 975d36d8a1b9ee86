package update

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"

	"github.com/miekg/dns"
)

// Kind sorts DNS failures by what the operator has to do about them.
type Kind int

const (
	KindOther       Kind = iota // an rcode with no better class
	KindUnreachable             // no connection to the primary
	KindTimeout                 // no answer in time
	KindAuth                    // TSIG failed: BADSIG, BADKEY, BADTIME, or an unsigned or forged reply
	KindRefused                 // REFUSED: the update policy does not grant this
	KindNotZone                 // NOTZONE/NOTAUTH: the primary is not authoritative for the zone
	KindServFail                // SERVFAIL: the primary failed to apply it
	KindIgnored                 // NOERROR, but the change is not there: a policy that skips silently (PowerDNS)
)

func (k Kind) String() string {
	switch k {
	case KindUnreachable:
		return "unreachable"
	case KindTimeout:
		return "timeout"
	case KindAuth:
		return "tsig"
	case KindRefused:
		return "refused"
	case KindNotZone:
		return "notzone"
	case KindServFail:
		return "servfail"
	case KindIgnored:
		return "ignored"
	}
	return "other"
}

// Temporary reports whether retrying later, with no change of
// configuration, may succeed.
func (k Kind) Temporary() bool {
	return k == KindUnreachable || k == KindTimeout || k == KindServFail
}

// Error is a failed exchange with a zone's primary. Its Error text is for
// logs and operators; Hint says what to fix.
type Error struct {
	Op        string // OpCheck, OpReplace, …
	Server    string
	Zone      string
	Kind      Kind
	Rcode     int    // the reply's rcode, -1 if there was no reply
	TSIGError uint16 // the reply's TSIG error field, if it had a TSIG
	Err       error
	// Seen is what a KindIgnored replace found in the RRset afterwards
	// (nil: nothing).
	Seen []netip.Addr
}

// superseded reports whether err is a replace of ours to addr that the
// primary did apply, but that another writer's change (a second
// frontend, an operator) replaced right after: the RRset holds neither
// addr nor what it held before (before), which a policy that skips a
// record (PowerDNS's) would have left. It returns what the RRset holds.
func superseded(err error, before []netip.Addr, addr netip.Addr) ([]netip.Addr, bool) {
	var e *Error
	if !errors.As(err, &e) || e.Kind != KindIgnored || len(e.Seen) == 0 || slices.Contains(e.Seen, addr) {
		return nil, false
	}
	a, b := slices.Clone(e.Seen), slices.Clone(before)
	slices.SortFunc(a, netip.Addr.Compare)
	slices.SortFunc(b, netip.Addr.Compare)
	if slices.Equal(a, b) {
		return nil, false // unchanged: the primary skipped ours
	}
	return e.Seen, true
}

func (e *Error) Error() string {
	return fmt.Sprintf("%s %s at %s: %v (%s)", e.Op, e.Zone, e.Server, e.Err, e.Hint())
}

func (e *Error) Unwrap() error { return e.Err }

// Hint says, in a few words, what is most likely wrong.
func (e *Error) Hint() string {
	switch e.Kind {
	case KindUnreachable:
		return "primary unreachable: is it running and listening on TCP?"
	case KindTimeout:
		return "primary did not answer in time"
	case KindAuth:
		switch e.TSIGError {
		case dns.RcodeBadSig:
			return "TSIG key rejected by the primary (BADSIG): the secret differs from the server's"
		case dns.RcodeBadKey:
			return "TSIG key unknown to the primary or not allowed this update (BADKEY): check the key name, algorithm and the primary's update policy (Knot answers a denied update this way)"
		case dns.RcodeBadTime:
			return "TSIG time rejected (BADTIME): this machine's clock and the primary's differ by more than 5 minutes"
		}
		if e.Rcode == dns.RcodeRefused {
			return "primary refused the request without signing its answer: it did not accept the TSIG key (check its name and secret, and that both clocks are right; PowerDNS answers a wrong key this way) or this client's address"
		}
		return "reply failed TSIG verification: a forged, unsigned or corrupted answer"
	case KindRefused:
		return "update refused by the primary: its update policy must grant this key A/AAAA updates in the zone"
	case KindNotZone:
		return "primary is not authoritative for this zone (NOTAUTH/NOTZONE): check the zone name and the primary's address"
	case KindServFail:
		return "primary failed to apply the update (SERVFAIL): see its log"
	case KindIgnored:
		return "primary answered NOERROR but did not apply the change: its update policy skipped it (PowerDNS does this when its lua-dnsupdate-policy-script refuses a record) and must allow this key A/AAAA updates, unless another writer changed the name at the same moment"
	}
	return "unexpected answer from the primary"
}

// classifyNetError tells a refused connection from a timeout.
func classifyNetError(err error) Kind {
	var ne net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded):
		return KindTimeout
	case errors.As(err, &ne) && ne.Timeout():
		return KindTimeout
	}
	return KindUnreachable
}
