package update

import (
	"context"
	"fmt"
	"slices"

	"github.com/miekg/dns"
)

// TXT records are how an ACME DNS-01 challenge is answered: a value is
// added beside the others at _acme-challenge.HOST and removed alone, so
// several challenges (a name and its wildcard in one order) share the
// RRset without disturbing each other.

// LookupTXT asks the primary, with a signed query, which TXT strings it
// serves for name (each record's strings joined, as DNS-01 reads them).
func (c *Client) LookupTXT(ctx context.Context, name string) ([]string, error) {
	return c.lookupTXT(ctx, OpLookup, name)
}

func (c *Client) lookupTXT(ctx context.Context, op, name string) ([]string, error) {
	resp, err := c.exchange(ctx, op, c.query(name, dns.TypeTXT))
	if err != nil {
		return nil, err
	}
	if resp.Rcode != dns.RcodeSuccess && resp.Rcode != dns.RcodeNameError {
		return nil, c.rcodeError(op, resp)
	}
	return TXTStrings(resp.Answer, name), nil
}

// TXTStrings returns the values of the TXT records at name in rrs.
func TXTStrings(rrs []dns.RR, name string) []string {
	var out []string
	for _, rr := range rrs {
		if t, ok := rr.(*dns.TXT); ok && dns.CanonicalName(t.Hdr.Name) == dns.CanonicalName(name) {
			var v string
			for _, s := range t.Txt {
				v += s
			}
			out = append(out, v)
		}
	}
	return out
}

func newTXT(name, value string, ttl uint32) dns.RR {
	return &dns.TXT{Hdr: dns.RR_Header{Name: dns.Fqdn(name), Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: ttl}, Txt: []string{value}}
}

// AddTXT adds value to name's TXT RRset, leaving its other values, and
// confirms with a signed query that the primary serves it. It reports
// NoChange, writing nothing, if value is there already. A primary that
// answers NOERROR and leaves the value out (PowerDNS's policy script) is
// a KindIgnored error.
func (c *Client) AddTXT(ctx context.Context, name, value string, ttl uint32) (Result, error) {
	have, err := c.lookupTXT(ctx, OpCheck, name)
	if err != nil {
		return NoChange, err
	}
	if slices.Contains(have, value) {
		return NoChange, nil
	}
	u := c.newUpdate()
	u.Insert([]dns.RR{newTXT(name, value, ttl)})
	if err := c.write(ctx, u); err != nil {
		return NoChange, err
	}
	return Changed, c.confirmTXT(ctx, name, value, true)
}

// RemoveTXT removes value from name's TXT RRset, leaving its other values
// (the RRset goes with its last value), and confirms it. It reports
// NoChange, writing nothing, if value is not there.
func (c *Client) RemoveTXT(ctx context.Context, name, value string) (Result, error) {
	have, err := c.lookupTXT(ctx, OpCheck, name)
	if err != nil {
		return NoChange, err
	}
	if !slices.Contains(have, value) {
		return NoChange, nil
	}
	u := c.newUpdate()
	u.Remove([]dns.RR{newTXT(name, value, 0)})
	if err := c.write(ctx, u); err != nil {
		return NoChange, err
	}
	return Changed, c.confirmTXT(ctx, name, value, false)
}

// write sends an UPDATE and fails unless the primary answers NOERROR.
func (c *Client) write(ctx context.Context, u *dns.Msg) error {
	resp, err := c.exchange(ctx, OpReplace, u)
	if err != nil {
		return err
	}
	if resp.Rcode != dns.RcodeSuccess {
		return c.rcodeError(OpReplace, resp)
	}
	return nil
}

// confirmTXT checks that name's TXT RRset has value (or, if !want, has
// it no longer).
func (c *Client) confirmTXT(ctx context.Context, name, value string, want bool) error {
	have, err := c.lookupTXT(ctx, OpConfirm, name)
	if err != nil {
		return err
	}
	if slices.Contains(have, value) != want {
		return &Error{Op: OpReplace, Server: c.Server, Zone: c.Zone, Kind: KindIgnored, Rcode: dns.RcodeSuccess,
			Err: fmt.Errorf("NOERROR, but %s TXT is %q afterwards", name, have)}
	}
	return nil
}
