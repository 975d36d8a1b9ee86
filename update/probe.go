package update

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"github.com/miekg/dns"
)

// Probe proves that the primary answers, accepts c.Key and lets it
// change A and AAAA records in c.Zone, and says what is wrong if not, in
// words for the operator that name the fix on BIND, Knot and PowerDNS.
// note, if not nil, is told what was found on the way.
//
// It writes nothing where it can (Verify): a prerequisite-only update
// cannot show PowerDNS's policy, which skips a refused record and answers
// NOERROR. So when the primary does not refuse a LOC change either (a
// type no sshdyn policy grants), Probe writes an A and an AAAA record at
// a fresh sshdyn-check name, confirms each, and removes them again; then
// it does the same with a LOC record, to tell a grant of every type (a
// warning, with the narrower grant to use) from PowerDNS's silent skip.
// The name is a valid host name (letters, digits, hyphens): BIND's
// check-names, on by default for primary zones, silently drops A and
// AAAA records at names with an underscore.
func (c *Client) Probe(ctx context.Context, note func(format string, args ...any)) error {
	if note == nil {
		note = func(string, ...any) {}
	}
	label := make([]byte, 6)
	rand.Read(label)
	probe := "sshdyn-check-" + hex.EncodeToString(label) + "." + c.Zone
	types := []uint16{dns.TypeA, dns.TypeAAAA}
	var denied []string
	for _, t := range types {
		err := c.Verify(ctx, probe, t)
		if err == nil {
			continue
		}
		var ue *Error
		if !errors.As(err, &ue) {
			return err
		}
		if ue.Op == "query" {
			// The signed query failed: the key, the zone or the primary
			// itself, not the update policy. PowerDNS answers a query
			// with a wrong key NOTAUTH, unsigned, as if it did not serve
			// the zone; an unsigned query tells the two apart.
			if ue.Kind == KindNotZone && ue.TSIGError == 0 {
				if ok, _ := c.Serves(ctx); ok {
					return fmt.Errorf("primary %s serves %s but answered a query signed with TSIG key %s with %v and no signature: it did not accept the key. Check its name, algorithm and secret against the primary's, and that both clocks are right",
						c.Server, c.Zone, c.Key.Name, ue.Err)
				}
			}
			return fmt.Errorf("primary %s: %s", c.Server, describe(ue))
		}
		if policyRefusal(ue) {
			denied = append(denied, dns.TypeToString[t])
			continue
		}
		return fmt.Errorf("primary %s: %s", c.Server, describe(ue))
	}
	if len(denied) > 0 {
		return policyError(c, denied)
	}

	err := c.Verify(ctx, probe, dns.TypeLOC)
	var ue *Error
	if errors.As(err, &ue) && policyRefusal(ue) {
		note("primary %s answers, accepts TSIG key %s and lets it change A and AAAA records (checked without writing)", c.Server, c.Key.Name)
		return nil
	}
	if err != nil {
		return fmt.Errorf("primary %s: %v", c.Server, err)
	}
	note("primary %s did not refuse a LOC change either: the key may change every record type (grant it only A and AAAA), or the primary skips what its policy refuses without saying so (PowerDNS); checking by writing and removing %s",
		c.Server, probe)
	probeAddr := map[uint16]netip.Addr{dns.TypeA: netip.MustParseAddr("192.0.2.1"), dns.TypeAAAA: netip.MustParseAddr("2001:db8::1")}
	for _, t := range types {
		err := c.Replace(ctx, Record{Name: probe, Addr: probeAddr[t], TTL: 1})
		if rerr := c.Remove(ctx, probe, t); rerr != nil {
			note("warning: could not remove %s %s: %v", probe, dns.TypeToString[t], rerr)
		}
		if err == nil {
			continue
		}
		if errors.As(err, &ue) && (ue.Kind == KindIgnored || policyRefusal(ue)) {
			denied = append(denied, dns.TypeToString[t])
			continue
		}
		return fmt.Errorf("primary %s: %v", c.Server, err)
	}
	if len(denied) > 0 {
		return policyError(c, denied)
	}
	note("primary %s answers, accepts TSIG key %s and lets it change A and AAAA records (checked by writing and removing %s)", c.Server, c.Key.Name, probe)
	broad, err := c.writesAnyType(ctx, probe)
	switch {
	case err != nil:
		note("warning: could not tell whether the key may change other record types: %v", err)
	case broad:
		name := strings.TrimSuffix(c.Key.Name, ".")
		note("warning: the grant is too broad: TSIG key %s may change every record type in %s (a LOC record was written and removed), so whoever holds it can change the zone's other records. Grant A and AAAA only, e.g. BIND: update-policy { grant %s zonesub A AAAA; }; Knot: update-type [A, AAAA] in the key's acl",
			name, c.Zone, name)
	default:
		note("primary %s skipped a LOC record without refusing it (a PowerDNS policy script does): the grant is A and AAAA", c.Server)
	}
	return nil
}

// probeLOC is a record of a type no sshdyn grant allows.
const probeLOC = "1 IN LOC 0 0 0 N 0 0 0 E 0m"

// writesAnyType writes a LOC record at name, reports whether the primary
// then serves it, and removes it.
func (c *Client) writesAnyType(ctx context.Context, name string) (bool, error) {
	rr, err := dns.NewRR(dns.Fqdn(name) + " " + probeLOC)
	if err != nil {
		return false, err
	}
	u := c.newUpdate()
	u.Insert([]dns.RR{rr})
	resp, err := c.exchange(ctx, OpReplace, u)
	defer func() {
		if rerr := c.Remove(ctx, name, dns.TypeLOC); rerr != nil && err == nil {
			err = fmt.Errorf("removing the LOC record at %s: %w", name, rerr)
		}
	}()
	if err != nil {
		return false, err
	}
	if resp.Rcode != dns.RcodeSuccess {
		var ue *Error
		if err := c.rcodeError(OpReplace, resp); errors.As(err, &ue) && policyRefusal(ue) {
			return false, nil
		}
		return false, c.rcodeError(OpReplace, resp)
	}
	q := new(dns.Msg)
	q.SetQuestion(dns.Fqdn(name), dns.TypeLOC)
	q.RecursionDesired = false
	q.SetTsig(c.Key.Name, c.Key.Algorithm, 300, c.now())
	resp, err = c.exchange(ctx, OpLookup, q)
	if err != nil {
		return false, err
	}
	for _, a := range resp.Answer {
		if a.Header().Rrtype == dns.TypeLOC {
			return true, nil
		}
	}
	return false, nil
}

// policyRefusal reports whether a failed update, signed with a key that
// has just signed a query the primary verified, was refused by the update
// policy: REFUSED, or Knot's BADKEY.
func policyRefusal(e *Error) bool {
	return e.Kind == KindRefused || e.Kind == KindAuth && e.TSIGError == dns.RcodeBadKey
}

func policyError(c *Client, denied []string) error {
	name := strings.TrimSuffix(c.Key.Name, ".")
	return fmt.Errorf("primary %s accepts TSIG key %s, but its update policy does not let it change %s records in %s. Grant them, e.g. BIND: update-policy { grant %s zonesub A AAAA; }; Knot: an acl with key %s, action update, update-type [A, AAAA]; PowerDNS: TSIG-ALLOW-DNSUPDATE %s on the zone, and a lua-dnsupdate-policy-script that allows A and AAAA (examples/pdns-dnsupdate-policy.lua)",
		c.Server, c.Key.Name, strings.Join(denied, " and "), c.Zone, name, name, name)
}

// describe says what a failed exchange means for the operator.
func describe(e *Error) string {
	return fmt.Sprintf("%v: %s", e.Err, e.Hint())
}
