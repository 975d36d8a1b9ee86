package update

import (
	"context"
	"net/netip"
	"slices"
	"time"

	"github.com/miekg/dns"
)

// queryTimeout bounds one query of Served.
const queryTimeout = 2 * time.Second

// Served reports whether the name server at addr (host:port) serves value
// in name's RRset of type t: an address for A and AAAA, a string for TXT.
// It asks directly, without recursion and unsigned, as a resolver would
// ask a zone's secondary or public name server; over UDP, then TCP if the
// answer was truncated. The answer must be authoritative: a server that
// does not serve the zone (yet) has not got the value.
func Served(ctx context.Context, addr, name string, t uint16, value string) (bool, error) {
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), t)
	m.RecursionDesired = false
	m.SetEdns0(1232, false)
	var resp *dns.Msg
	for _, network := range []string{"udp", "tcp"} {
		qctx, cancel := context.WithTimeout(ctx, queryTimeout)
		c := &dns.Client{Net: network, Timeout: queryTimeout}
		r, _, err := c.ExchangeContext(qctx, m, addr)
		cancel()
		if err != nil {
			return false, err
		}
		resp = r
		if !r.Truncated {
			break
		}
	}
	if resp.Rcode != dns.RcodeSuccess || !resp.Authoritative {
		return false, nil
	}
	if t == dns.TypeTXT {
		return slices.Contains(TXTStrings(resp.Answer, name), value), nil
	}
	want, err := netip.ParseAddr(value)
	if err != nil {
		return false, err
	}
	for _, rr := range resp.Answer {
		var got netip.Addr
		switch rr := rr.(type) {
		case *dns.A:
			got, _ = netip.AddrFromSlice(rr.A.To4())
		case *dns.AAAA:
			got, _ = netip.AddrFromSlice(rr.AAAA)
		}
		if got == want.Unmap() && rr.Header().Rrtype == t {
			return true, nil
		}
	}
	return false, nil
}
