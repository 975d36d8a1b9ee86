package publish

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/sshdyn/sshdyn/authorized"
	"github.com/sshdyn/sshdyn/backend"
	"github.com/sshdyn/sshdyn/dnsname"
)

// SSHFP records (RFC 4255, SHA-256 fingerprints by RFC 6594) let an SSH
// client that gets them DNSSEC-validated (OpenSSH's VerifyHostKeyDNS)
// trust a host's key without asking. The key owner that may point a
// host at its address is who publishes that host's fingerprints.

// SSHFP is one fingerprint of a host's SSH key.
type SSHFP struct {
	Algorithm   uint8 // 1 RSA, 2 DSA, 3 ECDSA, 4 Ed25519, 6 Ed448 (IANA's SSHFP algorithm numbers)
	Type        uint8 // 2: SHA-256, the only one accepted
	Fingerprint []byte
}

// MaxSSHFP bounds the records of one host's SSHFP RRset: a host has a
// few host keys.
const MaxSSHFP = 16

// sshfpAlgorithms are the SSHFP algorithm numbers of SSH host keys.
var sshfpAlgorithms = []uint8{1, 2, 3, 4, 6}

// SSHFPRequest asks to replace a host's SSHFP records with Records; none
// clears them.
type SSHFPRequest struct {
	Front    string
	Identity *authorized.Entry
	Client   netip.Addr
	Host     string
	Records  []SSHFP
}

// SSHFPResult is what became of an SSHFP request.
type SSHFPResult struct {
	Host    string // canonical
	Zone    string
	Records int  // the records the RRset holds now
	Kind    Kind // KindGood: written; KindNoChange: it was so already
}

// CheckSSHFP reports why r cannot be published: a SHA-256 fingerprint
// (type 2, 32 bytes) of a known key algorithm.
func CheckSSHFP(r SSHFP) error {
	switch {
	case !slices.Contains(sshfpAlgorithms, r.Algorithm):
		return fmt.Errorf("SSHFP algorithm %d: want 1 (RSA), 2 (DSA), 3 (ECDSA), 4 (Ed25519) or 6 (Ed448)", r.Algorithm)
	case r.Type != 2:
		return fmt.Errorf("SSHFP fingerprint type %d: only SHA-256 (2) is published (RFC 6594; SHA-1 is not collision-resistant)", r.Type)
	case len(r.Fingerprint) != 32:
		return fmt.Errorf("SSHFP fingerprint of %d bytes: a SHA-256 one has 32", len(r.Fingerprint))
	}
	return nil
}

// PublishSSHFP replaces the SSHFP RRset of req.Host, one of the
// identity's hosts, with req.Records (none: removes it). It refuses with
// an *Error: KindMalformed for a record CheckSSHFP refuses or too many,
// KindNotOwned for another's host, KindDenied when the identity's line
// lacks the sshfp option, KindUnsupported when the zone's backend cannot
// store SSHFP records, KindRateLimited over the request or change
// limits; a DNS failure is an *Error of its kind (KindRefused: the
// primary's policy, or the embedded zone's update_types, lacks SSHFP).
func (s *Service) PublishSSHFP(ctx context.Context, req SSHFPRequest) (SSHFPResult, error) {
	s.once.Do(s.init)
	host := dnsname.Canonical(req.Host)
	res := SSHFPResult{Host: host}
	if dnsname.CheckHost(host) != nil {
		return res, &Error{Kind: KindMalformed, Err: fmt.Errorf("%q is not a host name", truncate(req.Host, 255))}
	}
	var data []string
	for _, r := range req.Records {
		if err := CheckSSHFP(r); err != nil {
			return res, &Error{Kind: KindMalformed, Err: err}
		}
		if d := backend.SSHFPData(r.Algorithm, r.Type, r.Fingerprint); !slices.Contains(data, d) {
			data = append(data, d)
		}
	}
	if len(data) > MaxSSHFP {
		return res, &Error{Kind: KindMalformed, Err: fmt.Errorf("%d SSHFP records for one host: at most %d", len(data), MaxSSHFP)}
	}
	id := req.Identity
	ctx, _, zones, done, err := s.begin(ctx, Request{Front: req.Front, Identity: id, Client: req.Client, Hosts: []string{host}})
	if err != nil {
		return res, err
	}
	defer done()
	z := zones[0]
	res.Zone = z.Name
	if !id.SSHFP {
		return res, &Error{Kind: KindDenied, Err: errors.New("SSHFP records are not allowed for this key: its line needs the sshfp option")}
	}
	rs, ok := z.Backend.(backend.RRsetter)
	if !ok {
		return res, &Error{Kind: KindUnsupported, Host: host, Err: fmt.Errorf("zone %s's backend cannot store SSHFP records", z.Name)}
	}
	kind, err := s.writeSSHFP(ctx, z, rs, id, host, data)
	res.Kind = kind
	if err == nil {
		res.Records = len(data)
	}
	s.Observer.Update(req.Front, z.Name, "SSHFP", kind.String())
	return res, err
}

// writeSSHFP makes host's SSHFP RRset data through rs.
func (s *Service) writeSSHFP(ctx context.Context, z Zone, rs backend.RRsetter, id *authorized.Entry, host string, data []string) (Kind, error) {
	fail := func(err error) (Kind, error) {
		var pe *Error
		if errors.As(err, &pe) {
			return pe.Kind, err
		}
		kind, temp := classify(backend.Result{Err: err})
		return kind, &Error{Kind: kind, Host: host, Temporary: temp, Err: err}
	}
	have, err := rs.LookupRRset(ctx, host, "SSHFP")
	if err != nil {
		return fail(err)
	}
	if backend.SameData(have, data) {
		return KindNoChange, nil
	}
	if err := s.changes.allow(id.ID(), time.Now()); err != nil {
		s.Observer.Limited(LimitChanges)
		return fail(&Error{Kind: KindRateLimited, Temporary: true, Err: err})
	}
	ttl := id.TTL // as the host's addresses
	if ttl == 0 {
		ttl = z.TTL
	}
	changed, err := rs.SetRRset(ctx, backend.RRset{Name: host, Type: "SSHFP", TTL: ttl, Data: data})
	if err != nil {
		return fail(err)
	}
	if changed {
		return KindGood, nil
	}
	return KindNoChange, nil
}
