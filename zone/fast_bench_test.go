package zone

import (
	"fmt"
	"net/netip"
	"os"
	"testing"

	"github.com/miekg/dns"
)

// BenchmarkFastAnswer: the fast path's work for one query, a hit, in
// process (no socket): CPU per query and allocations (none).
func BenchmarkFastAnswer(b *testing.B) {
	dir := b.TempDir()
	file := dir + "/z.zone"
	text := "$ORIGIN dyn.example.com.\n$TTL 60\n@ SOA ns hostmaster 1 3600 600 86400 60\n@ NS ns\nns A 192.0.2.53\n"
	for i := range 10000 {
		text += fmt.Sprintf("h%d A 198.51.%d.%d\n", i, i/250%250, i%250+1)
	}
	if err := writeFileForBench(file, text); err != nil {
		b.Fatal(err)
	}
	z, err := Load(Config{Origin: "dyn.example.com", File: file})
	if err != nil {
		b.Fatal(err)
	}
	defer z.Close()
	srv := &Server{Zones: []*Zone{z}}
	srv.once.Do(srv.init)
	m := new(dns.Msg)
	m.SetQuestion("h42.dyn.example.com.", dns.TypeA)
	m.SetEdns0(1232, false)
	wire, _ := m.Pack()
	remote := netip.MustParseAddr("198.51.100.7")
	var q fastQuery
	out := make([]byte, 0, udpSize)
	if _, _, ok := srv.fastAnswer(wire, remote, &q, out); !ok {
		b.Fatal("not taken by the fast path")
	}
	b.ReportAllocs()
	for b.Loop() {
		srv.fastAnswer(wire, remote, &q, out)
	}
}

func writeFileForBench(path, text string) error { return os.WriteFile(path, []byte(text), 0o644) }
