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
// change A and AAAA records in c.Zone (and with acme, TXT records at
// _acme-challenge names), and says what is wrong if not, in words for the
// operator that name the fix on BIND, Knot and PowerDNS. note, if not
// nil, is told what was found on the way.
//
// It writes nothing where it can (Verify): a prerequisite-only update
// cannot show PowerDNS's policy, which skips a refused record and answers
// NOERROR. So when the primary does not refuse a LOC change either (a
// type no sshdyn policy grants), Probe writes an A and an AAAA record at
// a fresh sshdyn-check name (and a TXT value at its _acme-challenge
// name), confirms each, and removes them again; then it does the same
// with a LOC record, to tell a grant of every type (a warning, with the
// narrower grant to use) from PowerDNS's silent skip. The name is a valid
// host name (letters, digits, hyphens): BIND's check-names, on by
// default for primary zones, silently drops A and AAAA records at names
// with an underscore.
func (c *Client) Probe(ctx context.Context, note func(format string, args ...any), acme bool) error {
	if note == nil {
		note = func(string, ...any) {}
	}
	label := make([]byte, 6)
	rand.Read(label)
	probe := "sshdyn-check-" + hex.EncodeToString(label) + "." + c.Zone
	challenge := "_acme-challenge." + probe
	what := "A and AAAA records"
	if acme {
		what += " and TXT records at _acme-challenge names"
	}
	denied, err := c.verifyTypes(ctx, probe)
	if err != nil {
		return err
	}
	if len(denied) > 0 {
		return policyError(c, denied)
	}
	txtRefused := false
	if acme {
		if txtRefused, err = c.refuses(ctx, challenge, dns.TypeTXT); err != nil {
			return err
		}
	}
	locRefused, err := c.refuses(ctx, probe, dns.TypeLOC)
	if err != nil {
		return err
	}
	if locRefused {
		// This primary reports what its policy refuses: no need to write.
		if txtRefused {
			return acmePolicyError(c)
		}
		note("primary %s answers, accepts TSIG key %s and lets it change %s (checked without writing)", c.Server, c.Key.Name, what)
		return nil
	}
	note("primary %s did not refuse a LOC change either: the key may change every record type (grant it only A and AAAA), or the primary skips what its policy refuses without saying so (PowerDNS); checking by writing and removing %s",
		c.Server, probe)
	if denied, err = c.writeTypes(ctx, probe, note); err != nil {
		return err
	}
	if len(denied) > 0 {
		return policyError(c, denied)
	}
	if acme {
		if ok, err := c.writesTXT(ctx, challenge, note); err != nil {
			return err
		} else if !ok {
			return acmePolicyError(c)
		}
	}
	note("primary %s answers, accepts TSIG key %s and lets it change %s (checked by writing and removing %s)", c.Server, c.Key.Name, what, probe)
	c.noteBreadth(ctx, probe, acme, note)
	return nil
}

// ProbeWildcard proves, as Probe does, that the policy also lets the key
// change A and AAAA records at a wildcard name (*.HOST), which a line
// with the wildcard option sets: writing nothing where the primary
// reports what it refuses, else by writing and removing them at
// *.sshdyn-check-….
func (c *Client) ProbeWildcard(ctx context.Context, note func(format string, args ...any)) error {
	if note == nil {
		note = func(string, ...any) {}
	}
	label := make([]byte, 6)
	rand.Read(label)
	probe := "*.sshdyn-check-" + hex.EncodeToString(label) + "." + c.Zone
	denied, err := c.verifyTypes(ctx, probe)
	if err != nil {
		return err
	}
	how := "checked without writing"
	if len(denied) == 0 {
		locRefused, err := c.refuses(ctx, probe, dns.TypeLOC)
		if err != nil {
			return err
		}
		if !locRefused {
			how = "checked by writing and removing " + probe
			if denied, err = c.writeTypes(ctx, probe, note); err != nil {
				return err
			}
		}
	}
	if len(denied) > 0 {
		name := strings.TrimSuffix(c.Key.Name, ".")
		return fmt.Errorf("primary %s lets TSIG key %s change A and AAAA records, but not %s records at wildcard names (*.HOST) in %s, which lines with the wildcard option set. Grant them, e.g. BIND: update-policy { grant %s zonesub A AAAA; } (a name or self rule does not cover *.HOST); Knot: no update-owner restriction that leaves out *.HOST; PowerDNS: local wildcards = true in the lua-dnsupdate-policy-script (examples/pdns-dnsupdate-policy.lua); or take the wildcard option off those lines",
			c.Server, c.Key.Name, strings.Join(denied, " and "), c.Zone, name)
	}
	note("primary %s lets it change A and AAAA records at wildcard names (*.HOST) too, for the lines with the wildcard option (%s)", c.Server, how)
	return nil
}

// verifyTypes checks, writing nothing, that the policy lets the key change
// A and AAAA records at probe, and returns the types it refuses.
func (c *Client) verifyTypes(ctx context.Context, probe string) (denied []string, err error) {
	for _, t := range []uint16{dns.TypeA, dns.TypeAAAA} {
		err := c.Verify(ctx, probe, t)
		if err == nil {
			continue
		}
		var ue *Error
		if !errors.As(err, &ue) {
			return nil, err
		}
		if ue.Op == OpQuery {
			// The signed query failed: the key, the zone or the primary
			// itself, not the update policy. PowerDNS answers a query
			// with a wrong key NOTAUTH, unsigned, as if it did not serve
			// the zone; an unsigned query tells the two apart.
			if ue.Kind == KindNotZone && ue.TSIGError == 0 {
				if ok, _ := c.Serves(ctx); ok {
					return nil, fmt.Errorf("primary %s serves %s but answered a query signed with TSIG key %s with %v and no signature: it did not accept the key. Check its name, algorithm and secret against the primary's, and that both clocks are right",
						c.Server, c.Zone, c.Key.Name, ue.Err)
				}
			}
			return nil, fmt.Errorf("primary %s: %s", c.Server, describe(ue))
		}
		if !policyRefusal(ue) {
			return nil, fmt.Errorf("primary %s: %s", c.Server, describe(ue))
		}
		denied = append(denied, dns.TypeToString[t])
	}
	return denied, nil
}

// refuses reports whether the policy refuses, writing nothing, a change of
// name's RRset of type t.
func (c *Client) refuses(ctx context.Context, name string, t uint16) (bool, error) {
	err := c.Verify(ctx, name, t)
	var ue *Error
	switch {
	case err == nil:
		return false, nil
	case errors.As(err, &ue) && policyRefusal(ue):
		return true, nil
	}
	return false, fmt.Errorf("primary %s: %v", c.Server, err)
}

// writeTypes writes, confirms and removes an A and an AAAA record at
// probe, and returns the types the primary refused or skipped.
func (c *Client) writeTypes(ctx context.Context, probe string, note func(string, ...any)) (denied []string, err error) {
	addrs := map[uint16]netip.Addr{dns.TypeA: netip.MustParseAddr("192.0.2.1"), dns.TypeAAAA: netip.MustParseAddr("2001:db8::1")}
	for _, t := range []uint16{dns.TypeA, dns.TypeAAAA} {
		err := c.Replace(ctx, Record{Name: probe, Addr: addrs[t], TTL: 1})
		if rerr := c.Remove(ctx, probe, t); rerr != nil {
			note("warning: could not remove %s %s: %v", probe, dns.TypeToString[t], rerr)
		}
		var ue *Error
		switch {
		case err == nil:
		case errors.As(err, &ue) && (ue.Kind == KindIgnored || policyRefusal(ue)):
			denied = append(denied, dns.TypeToString[t])
		default:
			return nil, fmt.Errorf("primary %s: %v", c.Server, err)
		}
	}
	return denied, nil
}

// probeDigest is a DNS-01 value that no CA will ever ask for.
const probeDigest = "sshdyn-check-----------------------------A"

// writesTXT adds and removes a TXT value at name, and reports whether the
// primary took it.
func (c *Client) writesTXT(ctx context.Context, name string, note func(string, ...any)) (bool, error) {
	_, err := c.AddTXT(ctx, name, probeDigest, 1)
	if _, rerr := c.RemoveTXT(ctx, name, probeDigest); rerr != nil {
		note("warning: could not remove %s TXT: %v", name, rerr)
	}
	var ue *Error
	switch {
	case err == nil:
		return true, nil
	case errors.As(err, &ue) && (ue.Kind == KindIgnored || policyRefusal(ue)):
		return false, nil
	}
	return false, fmt.Errorf("primary %s: %v", c.Server, err)
}

// noteBreadth tells, by writing and removing a LOC record, a grant of
// every type (a warning) from a policy that skips what it refuses.
func (c *Client) noteBreadth(ctx context.Context, probe string, acme bool, note func(string, ...any)) {
	types := "A AAAA"
	if acme {
		types = "A AAAA TXT"
	}
	broad, err := c.writesAnyType(ctx, probe)
	switch {
	case err != nil:
		note("warning: could not tell whether the key may change other record types: %v", err)
	case broad:
		name := strings.TrimSuffix(c.Key.Name, ".")
		note("warning: the grant is too broad: TSIG key %s may change every record type in %s (a LOC record was written and removed), so whoever holds it can change the zone's other records. Grant %s only, e.g. BIND: update-policy { grant %s zonesub %s; }; Knot: update-type [%s] in the key's acl",
			name, c.Zone, types, name, types, strings.ReplaceAll(types, " ", ", "))
	default:
		note("primary %s skipped a LOC record without refusing it (a PowerDNS policy script does): the grant is narrower than every type", c.Server)
	}
}

// probeLOC is a record of a type no sshdyn grant allows.
const probeLOC = "1 IN LOC 0 0 0 N 0 0 0 E 0m"

// writesAnyType writes a LOC record at name, reports whether the primary
// then serves it, and removes it.
func (c *Client) writesAnyType(ctx context.Context, name string) (served bool, err error) {
	rr, err := dns.NewRR(dns.Fqdn(name) + " " + probeLOC)
	if err != nil {
		return false, err
	}
	u := c.newUpdate()
	u.Insert([]dns.RR{rr})
	defer func() {
		if rerr := c.Remove(ctx, name, dns.TypeLOC); rerr != nil && err == nil {
			err = fmt.Errorf("removing the LOC record at %s: %w", name, rerr)
		}
	}()
	var ue *Error
	switch err := c.write(ctx, u); {
	case errors.As(err, &ue) && policyRefusal(ue):
		return false, nil
	case err != nil:
		return false, err
	}
	resp, err := c.exchange(ctx, OpLookup, c.query(name, dns.TypeLOC))
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

func acmePolicyError(c *Client) error {
	name := strings.TrimSuffix(c.Key.Name, ".")
	return fmt.Errorf("primary %s accepts TSIG key %s, but its update policy does not let it change TXT records at _acme-challenge names in %s, which acme = true needs. Grant them, e.g. BIND: update-policy { grant %s zonesub A AAAA TXT; }; Knot: update-type [A, AAAA, TXT] in the key's acl; PowerDNS: local acme = true in the lua-dnsupdate-policy-script (examples/pdns-dnsupdate-policy.lua); the embedded primary: acme = true on the zone",
		c.Server, c.Key.Name, c.Zone, name)
}

// describe says what a failed exchange means for the operator.
func describe(e *Error) string {
	return fmt.Sprintf("%v: %s", e.Err, e.Hint())
}
