package update

import (
	"context"
	"fmt"
	"strings"

	"github.com/miekg/dns"

	"github.com/sshdyn/sshdyn/backend"
)

// LookupRRset returns the data of name's RRset of type t (zone-file
// form, hex in lower case), read with a signed query.
func (c *Client) LookupRRset(ctx context.Context, name string, t uint16) ([]dns.RR, []string, error) {
	return c.lookupRRset(ctx, OpLookup, name, t)
}

func (c *Client) lookupRRset(ctx context.Context, op, name string, t uint16) ([]dns.RR, []string, error) {
	resp, err := c.exchange(ctx, op, c.query(name, t))
	if err != nil {
		return nil, nil, err
	}
	if resp.Rcode != dns.RcodeSuccess && resp.Rcode != dns.RcodeNameError {
		return nil, nil, c.rcodeError(op, resp)
	}
	var rrs []dns.RR
	var data []string
	for _, rr := range resp.Answer {
		h := rr.Header()
		if h.Rrtype != t || dns.CanonicalName(h.Name) != dns.CanonicalName(name) {
			continue
		}
		rrs = append(rrs, rr)
		data = append(data, RData(rr))
	}
	return rrs, data, nil
}

// RData is rr's data in zone-file form, in lower case.
func RData(rr dns.RR) string {
	s := rr.String()
	return strings.ToLower(strings.TrimSpace(s[len(rr.Header().String()):]))
}

// SetRRset makes name's RRset of type t exactly data (zone-file form),
// with ttl; none removes it. Like Converge it reads the RRset with a
// signed query, sends nothing when it holds that data already, and
// otherwise one UPDATE whose prerequisites are the RRset exactly as read
// (another writer in between: read again, three rounds at most); then
// confirms with a signed query. A primary that answers NOERROR and keeps
// other data (a policy that skips) is a KindIgnored error.
func (c *Client) SetRRset(ctx context.Context, name string, t uint16, ttl uint32, data []string) (Result, error) {
	var want []dns.RR
	for _, d := range data {
		rr, err := dns.NewRR(fmt.Sprintf("%s %d IN %s %s", dns.Fqdn(name), ttl, dns.TypeToString[t], d))
		if err != nil || rr == nil {
			return NoChange, fmt.Errorf("%s record %q: %v", dns.TypeToString[t], d, err)
		}
		want = append(want, rr)
	}
	for try := 1; ; try++ {
		cur, have, err := c.lookupRRset(ctx, OpCheck, name, t)
		if err != nil {
			return NoChange, err
		}
		if backend.SameData(have, data) {
			return NoChange, nil
		}
		m := c.newUpdate()
		if len(cur) == 0 {
			m.RRsetNotUsed([]dns.RR{&dns.ANY{Hdr: dns.RR_Header{Name: dns.Fqdn(name), Rrtype: t}}})
		} else {
			for _, rr := range cur {
				m.Used([]dns.RR{dns.Copy(rr)})
			}
		}
		m.RemoveRRset([]dns.RR{&dns.ANY{Hdr: dns.RR_Header{Name: dns.Fqdn(name), Rrtype: t}}})
		if len(want) > 0 {
			ins := make([]dns.RR, len(want))
			for i, rr := range want {
				ins[i] = dns.Copy(rr)
			}
			m.Insert(ins)
		}
		resp, err := c.exchange(ctx, OpReplace, m)
		switch {
		case err != nil:
			return NoChange, err
		case (resp.Rcode == dns.RcodeNXRrset || resp.Rcode == dns.RcodeYXRrset) && try < convergeTries:
			continue
		case resp.Rcode != dns.RcodeSuccess:
			return NoChange, c.rcodeError(OpReplace, resp)
		}
		_, after, err := c.lookupRRset(ctx, OpConfirm, name, t)
		if err != nil {
			return Changed, err
		}
		if !backend.SameData(after, data) {
			return Changed, &Error{Op: OpReplace, Server: c.Server, Zone: c.Zone, Kind: KindIgnored, Rcode: dns.RcodeSuccess,
				Err: fmt.Errorf("NOERROR, but %s %s is %q afterwards, not %q", name, dns.TypeToString[t], after, data)}
		}
		return Changed, nil
	}
}

// SetRRset is backend.RRsetter's.
func (b *Backend) SetRRset(ctx context.Context, set backend.RRset) (bool, error) {
	t, ok := dns.StringToType[set.Type]
	if !ok {
		return false, fmt.Errorf("record type %q", set.Type)
	}
	res, err := b.Client().SetRRset(ctx, set.Name, t, set.TTL, set.Data)
	return res == Changed, b.wrap(err)
}

// LookupRRset is backend.RRsetter's.
func (b *Backend) LookupRRset(ctx context.Context, name, t string) ([]string, error) {
	_, data, err := b.Client().LookupRRset(ctx, name, dns.StringToType[t])
	return data, b.wrap(err)
}

var _ backend.RRsetter = (*Backend)(nil)
