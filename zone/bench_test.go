package zone_test

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/sshdyn/sshdyn/zone"
)

var sizes = []int{1000, 10000, 100000, 1000000}

// writeTestZone writes a zone file of n A records into a new directory.
func writeTestZone(b *testing.B, n int) string {
	var text strings.Builder
	text.WriteString("$ORIGIN dyn.example.com.\n$TTL 60\n@ SOA ns hostmaster 1 3600 600 86400 60\n@ NS ns\nns A 192.0.2.53\n")
	for i := range n {
		fmt.Fprintf(&text, "h%d A 198.51.%d.%d\n", i, i/250%250, i%250+1)
	}
	file := filepath.Join(b.TempDir(), "zone")
	if err := os.WriteFile(file, []byte(text.String()), 0o644); err != nil {
		b.Fatal(err)
	}
	return file
}

// BenchmarkLoad measures loading a zone file of 1,000 to 1,000,000
// names: parsing, sorting, building the tree.
func BenchmarkLoad(b *testing.B) {
	for _, n := range sizes {
		b.Run(fmt.Sprintf("names=%d", n), func(b *testing.B) {
			file := writeTestZone(b, n)
			b.ResetTimer()
			for range b.N {
				if _, err := zone.Load(zone.Config{Origin: "dyn.example.com", File: file}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// changes makes b.N changes to z, a zone of n names h0 … hN: each
// replaces one name's A RRset, the message unpacked from its wire form as
// it arrives. The set-up's garbage (a load, a first signing) is
// collected first, untimed: a daemon's changes come long after its start.
func changes(b *testing.B, z *zone.Zone, n int) {
	b.StopTimer()
	runtime.GC()
	b.StartTimer()
	for i := range b.N {
		m := new(dns.Msg)
		m.SetUpdate("dyn.example.com.")
		name := fmt.Sprintf("h%d.dyn.example.com.", i%n)
		rr, _ := dns.NewRR(fmt.Sprintf("%s 60 IN A 203.0.113.%d", name, i%250+1))
		m.RemoveRRset([]dns.RR{&dns.ANY{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeA}}})
		m.Insert([]dns.RR{rr})
		wire, _ := m.Pack() // as it arrives: RDLENGTH set
		m = new(dns.Msg)
		if err := m.Unpack(wire); err != nil {
			b.Fatal(err)
		}
		if rcode := z.Update(m, "k."); rcode != dns.RcodeSuccess {
			b.Fatalf("rcode %s", dns.RcodeToString[rcode])
		}
	}
}

// BenchmarkUpdate measures one change (replace a host's A) applied and
// made durable by the embedded primary (its diff appended to the journal
// and fsynced), in-process, one updater, for zones of 1,000 to 1,000,000
// names; see BENCHMARKS.md.
func BenchmarkUpdate(b *testing.B) {
	for _, n := range sizes {
		b.Run(fmt.Sprintf("names=%d", n), func(b *testing.B) {
			file := writeTestZone(b, n)
			z, err := zone.Load(zone.Config{Origin: "dyn.example.com", File: file, UpdateKeys: []string{"k."}})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { z.Close() })
			b.ResetTimer()
			changes(b, z, n)
		})
	}
}
