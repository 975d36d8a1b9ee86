package update

import (
	"net/netip"
	"testing"

	"github.com/miekg/dns"

	"github.com/sshdyn/sshdyn/tsig"
)

// BenchmarkSignUpdate: building and signing the replace message, no network.
func BenchmarkSignUpdate(b *testing.B) {
	c := &Client{Zone: "dyn.example.com", Key: tsig.Key{Name: "k.", Algorithm: dns.HmacSHA256, Secret: "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0"}}
	addr := netip.MustParseAddr("198.51.100.7")
	for i := 0; i < b.N; i++ {
		m := c.newUpdate()
		m.RemoveRRset([]dns.RR{&dns.ANY{Hdr: dns.RR_Header{Name: "h.dyn.example.com.", Rrtype: dns.TypeA}}})
		m.Insert([]dns.RR{newRR("h.dyn.example.com", addr, 60)})
		if _, _, err := dns.TsigGenerate(m, c.Key.Secret, "", false); err != nil {
			b.Fatal(err)
		}
	}
}
