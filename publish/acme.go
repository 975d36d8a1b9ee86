package publish

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/sshdyn/sshdyn/authorized"
	"github.com/sshdyn/sshdyn/backend"
	"github.com/sshdyn/sshdyn/dnsname"
)

// ACME DNS-01 (RFC 8555 8.4): the CA looks for a TXT record at
// _acme-challenge.HOST holding the base64url SHA-256 digest of the key
// authorization. A wildcard certificate for *.HOST uses the same name, so
// an order for HOST and *.HOST needs two values there at once.

// ChallengeLabel is the label a DNS-01 challenge's TXT record sits at.
const ChallengeLabel = "_acme-challenge"

// MaxChallengeValues bounds the TXT values one challenge name may hold:
// an order for a name and its wildcard needs two, a few overlapping orders
// a few more. Values a client never cleaned up count too: clean up, or
// the next present is refused.
const MaxChallengeValues = 8

// ChallengeRequest asks to present or clean up a DNS-01 challenge.
type ChallengeRequest struct {
	Front    string
	Identity *authorized.Entry
	Client   netip.Addr
	// Name is what an ACME client's hook is given: HOST, *.HOST or
	// _acme-challenge.HOST, with or without the trailing dot.
	Name string
	// Value is the key authorization digest: 43 base64url characters.
	Value string
	// Wait asks Present to return only when the zone's WaitFor servers
	// serve the value.
	Wait bool
}

// ChallengeResult is what became of a challenge request.
type ChallengeResult struct {
	Host  string // the host the challenge is for, canonical
	Owner string // _acme-challenge.HOST
	Zone  string
	Kind  Kind // KindGood: written; KindNoChange: it was so already
}

// ChallengeHost returns the host a challenge name is for: name without a
// leading "*." or "_acme-challenge.", canonical (lower case, no trailing
// dot).
func ChallengeHost(name string) string {
	h := dnsname.Canonical(name)
	if rest, ok := strings.CutPrefix(h, "*."); ok {
		return rest
	}
	if rest, ok := strings.CutPrefix(h, ChallengeLabel+"."); ok {
		return rest
	}
	return h
}

// ValidDigest reports whether v is a DNS-01 digest: an unpadded base64url
// SHA-256, 43 characters of A-Z, a-z, 0-9, - and _ (RFC 8555 8.4).
func ValidDigest(v string) bool {
	if len(v) != 43 {
		return false
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	// The last character carries 2 bits of padding, which must be zero.
	return strings.IndexByte("AEIMQUYcgkosw048", v[42]) >= 0
}

// Present adds req.Value to the TXT RRset at _acme-challenge.HOST, HOST
// being one of the identity's hosts, in a zone with ACME on; other values
// stay. It refuses with an *Error: KindMalformed for a value that is no
// digest, KindNotOwned for another's host, KindDenied when the identity
// has no-acme or the zone has ACME off, KindRateLimited over the request
// or change limits or MaxChallengeValues; a DNS failure is an *Error of
// its kind; with req.Wait, KindLagging when a WaitFor server lags.
func (s *Service) Present(ctx context.Context, req ChallengeRequest) (ChallengeResult, error) {
	res, z, err := s.challenge(ctx, req, true)
	if err == nil && req.Wait && len(z.WaitFor) > 0 {
		err = s.await(ctx, z, res.Owner, dns.TypeTXT, req.Value)
	}
	return res, err
}

// Cleanup removes req.Value from the TXT RRset at _acme-challenge.HOST;
// the other values stay, and the RRset goes with its last value. Its
// refusals are Present's; removing a value that is not there is nochg.
func (s *Service) Cleanup(ctx context.Context, req ChallengeRequest) (ChallengeResult, error) {
	res, _, err := s.challenge(ctx, req, false)
	return res, err
}

// challenge does Present (add) or Cleanup.
func (s *Service) challenge(ctx context.Context, req ChallengeRequest, add bool) (ChallengeResult, Zone, error) {
	s.once.Do(s.init)
	host := ChallengeHost(req.Name)
	res := ChallengeResult{Host: host, Owner: ChallengeLabel + "." + host}
	if !ValidDigest(req.Value) {
		return res, Zone{}, &Error{Kind: KindMalformed, Err: fmt.Errorf("%q is not a DNS-01 value: want the 43 base64url characters of the key authorization's digest", truncate(req.Value, 64))}
	}
	if dnsname.CheckHost(host) != nil {
		return res, Zone{}, &Error{Kind: KindMalformed, Err: fmt.Errorf("%q is not a host name, *.HOST or %s.HOST", truncate(req.Name, 255), ChallengeLabel)}
	}
	id := req.Identity
	ctx, _, zones, done, err := s.begin(ctx, Request{Front: req.Front, Identity: id, Client: req.Client, Hosts: []string{host}})
	if err != nil {
		return res, Zone{}, err
	}
	defer done()
	z := zones[0]
	res.Zone = z.Name
	switch {
	case id.NoACME:
		return res, z, &Error{Kind: KindDenied, Err: errors.New("ACME challenges are not allowed for this key (no-acme)")}
	case !z.ACME:
		return res, z, &Error{Kind: KindDenied, Err: fmt.Errorf("ACME challenges are not enabled for zone %s", z.Name)}
	}
	kind, err := s.writeChallenge(ctx, z, id, res.Owner, req.Value, add)
	res.Kind = kind
	s.Observer.Update(req.Front, z.Name, "TXT", kind.String())
	return res, z, err
}

// writeChallenge adds value at owner, or removes it, through z's backend.
func (s *Service) writeChallenge(ctx context.Context, z Zone, id *authorized.Entry, owner, value string, add bool) (Kind, error) {
	fail := func(err error) (Kind, error) {
		var pe *Error
		if errors.As(err, &pe) {
			return pe.Kind, err
		}
		kind, temp := classify(backend.Result{Err: err})
		return kind, &Error{Kind: kind, Host: owner, Temporary: temp, Err: err}
	}
	have, err := z.Backend.LookupTXT(ctx, owner)
	if err != nil {
		return fail(err)
	}
	if slices.Contains(have, value) == add {
		return KindNoChange, nil
	}
	if add && len(have) >= MaxChallengeValues {
		// Temporary: the client's own cleanup (or a CA that has finished)
		// frees a place; the documented status is 75, not 78.
		return fail(&Error{Kind: KindRateLimited, Temporary: true, Err: fmt.Errorf("%s already holds %d challenge values: clean up the old ones (acme cleanup NAME VALUE)", owner, len(have))})
	}
	if err := s.changes.allow(id.ID(), time.Now()); err != nil {
		s.Observer.Limited(LimitChanges)
		return fail(&Error{Kind: KindRateLimited, Temporary: true, Err: err})
	}
	ttl := z.ACMETTL
	if ttl == 0 {
		ttl = DefaultACMETTL
	}
	var changed bool
	if add {
		changed, err = z.Backend.AddTXT(ctx, owner, value, ttl)
	} else {
		changed, err = z.Backend.RemoveTXT(ctx, owner, value)
	}
	if err != nil {
		return fail(err)
	}
	if changed {
		return KindGood, nil
	}
	return KindNoChange, nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}
