package zone_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/sshdyn/sshdyn/zone"
)

// BenchmarkSign measures a zone's first signing (a key made, every name
// signed, its NSEC chain built, written in batches to the journal) of
// 1,000 to 1,000,000 names (and 100,000 with an Ed25519 key, and with
// NSEC3), and the start of the signed zone it leaves
// (loaded from the zone file written at Close, nothing to sign); see
// BENCHMARKS.md.
//
//	go test -run '^$' -bench '^BenchmarkSign$' -benchtime 1x ./zone
func BenchmarkSign(b *testing.B) {
	cases := []struct {
		name string
		n    int
		d    zone.DNSSEC
	}{
		{"names=1000", 1000, zone.DNSSEC{}},
		{"names=100000", 100000, zone.DNSSEC{}},
		{"names=100000/ed25519", 100000, zone.DNSSEC{Algorithm: dns.ED25519}},
		{"names=100000/nsec3", 100000, zone.DNSSEC{NSEC3: true}},
		{"names=1000000", 1000000, zone.DNSSEC{}},
	}
	for _, c := range cases {
		n := c.n
		b.Run(c.name, func(b *testing.B) {
			var first, start time.Duration
			for range b.N {
				file := writeTestZone(b, n)
				d := c.d
				cfg := zone.Config{Origin: "dyn.example.com", File: file, UpdateKeys: []string{"k."}, DNSSEC: &d}
				z, err := zone.Load(cfg)
				if err != nil {
					b.Fatal(err)
				}
				t0 := time.Now()
				if err := z.Own(); err != nil {
					b.Fatal(err)
				}
				if err := z.Sign(); err != nil {
					b.Fatal(err)
				}
				first += time.Since(t0)
				if err := z.Close(); err != nil {
					b.Fatal(err)
				}
				t0 = time.Now()
				z, err = zone.Load(cfg)
				if err != nil {
					b.Fatal(err)
				}
				if err := z.Own(); err != nil {
					b.Fatal(err)
				}
				serial := z.Serial()
				if err := z.Sign(); err != nil {
					b.Fatal(err)
				}
				start += time.Since(t0)
				if z.Serial() != serial {
					b.Fatal("the signed zone was signed again at start")
				}
				z.Close()
			}
			b.ReportMetric(first.Seconds()/float64(b.N), "s/first-sign")
			b.ReportMetric(start.Seconds()/float64(b.N), "s/signed-start")
		})
	}
}

// BenchmarkUpdateSigned is BenchmarkUpdate with the zone signed: each
// change re-signs the changed RRset and the SOA in the same journal
// write.
func BenchmarkUpdateSigned(b *testing.B) {
	for _, n := range []int{1000, 1000000} {
		b.Run(fmt.Sprintf("names=%d", n), func(b *testing.B) {
			file := writeTestZone(b, n)
			cfg := zone.Config{Origin: "dyn.example.com", File: file, UpdateKeys: []string{"k."}, DNSSEC: &zone.DNSSEC{}}
			z, err := zone.Load(cfg)
			if err != nil {
				b.Fatal(err)
			}
			if err := z.Own(); err != nil {
				b.Fatal(err)
			}
			if err := z.Sign(); err != nil {
				b.Fatal(err)
			}
			// Start again from the signed zone file: the first
			// signing's zone-file write is not part of a change.
			if err := z.Close(); err != nil {
				b.Fatal(err)
			}
			if z, err = zone.Load(cfg); err != nil {
				b.Fatal(err)
			}
			if err := z.Own(); err != nil {
				b.Fatal(err)
			}
			if err := z.Sign(); err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { z.Close() })
			b.ResetTimer()
			changes(b, z, n)
		})
	}
}
