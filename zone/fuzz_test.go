package zone

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

const fuzzZone = `$ORIGIN dyn.example.com.
$TTL 300
@ SOA ns hostmaster 1 3600 600 86400 60
@ NS ns
ns A 127.0.0.1
home A 192.0.2.1
www CNAME home
`

// FuzzParse: any zone file text either loads into a zone the server can
// serve (one SOA, NS at the apex) or is an error; it never panics.
func FuzzParse(f *testing.F) {
	f.Add(fuzzZone)
	f.Add("$ORIGIN dyn.example.com.\n@ SOA ns h 1 1 1 1 1\n@ NS ns\nx CNAME y\nx A 192.0.2.1\n")
	f.Add("@ SOA ns h 1 1 1 1 1\n@ NS ns\n$INCLUDE /etc/passwd\n")
	f.Fuzz(func(t *testing.T, text string) {
		names, err := parse(strings.NewReader(text), "dyn.example.com.", "fuzz.zone")
		if err != nil {
			return
		}
		apex, _ := names.get("dyn.example.com.")
		if names.soa() == nil || len(apex.get(dns.TypeNS)) == 0 {
			t.Fatal("a zone without SOA or NS loaded")
		}
	})
}

// FuzzUpdate feeds arbitrary UPDATE messages, as if signed by the update
// key, to a zone: no panic, and whatever is applied leaves a zone that
// still has its SOA and NS, only policy types changed, a journal that
// replays to the same zone, and a file that loads.
func FuzzUpdate(f *testing.F) {
	seed := func(prereq, upd []dns.RR) []byte {
		m := new(dns.Msg)
		m.SetUpdate("dyn.example.com.")
		m.Answer, m.Ns = prereq, upd
		b, err := m.Pack()
		if err != nil {
			f.Fatal(err)
		}
		return b
	}
	mk := func(s string) dns.RR {
		rr, err := dns.NewRR(s)
		if err != nil {
			f.Fatal(err)
		}
		return rr
	}
	f.Add(seed(nil, []dns.RR{mk("home.dyn.example.com. 60 IN A 192.0.2.9")}))
	f.Add(seed([]dns.RR{mk("home.dyn.example.com. 0 IN A 192.0.2.1")}, []dns.RR{&dns.ANY{Hdr: dns.RR_Header{Name: "home.dyn.example.com.", Rrtype: dns.TypeA, Class: dns.ClassANY}}}))
	f.Add(seed(nil, []dns.RR{&dns.ANY{Hdr: dns.RR_Header{Name: "www.dyn.example.com.", Rrtype: dns.TypeANY, Class: dns.ClassANY}}, mk("www.dyn.example.com. 60 IN AAAA 2001:db8::1")}))
	f.Add(seed(nil, []dns.RR{mk("*.dyn.example.com. 60 IN A 192.0.2.9")})) // audit L2: the loader refuses wildcards
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, wire []byte) {
		m := new(dns.Msg)
		if err := m.Unpack(wire); err != nil {
			return
		}
		file := filepath.Join(dir, "fuzz.zone")
		names, err := parse(strings.NewReader(fuzzZone), "dyn.example.com.", file)
		if err != nil {
			t.Fatal(err)
		}
		os.Remove(journalPath(file))
		if err := writeZone(file, "dyn.example.com.", names); err != nil {
			t.Fatal(err)
		}
		z, err := Load(Config{Origin: "dyn.example.com", File: file, UpdateKeys: []string{"k."}})
		if err != nil {
			t.Fatal(err)
		}
		before := z.snapshot().names
		z.Update(m, "k.")
		after := z.snapshot().names
		apex, _ := after.get("dyn.example.com.")
		if len(apex.get(dns.TypeSOA)) != 1 || len(apex.get(dns.TypeNS)) != 1 {
			t.Fatalf("apex changed: %v", apex)
		}
		after.ascend(func(name string, n node) bool {
			old, _ := before.get(name)
			for typ, rrs := range n.sets() {
				if z.types[typ] || name == "dyn.example.com." && typ == dns.TypeSOA {
					continue
				}
				if !sameRdata(rrs, old.get(typ)) {
					t.Fatalf("%s %s changed outside the policy", name, dns.TypeToString[typ])
				}
			}
			return true
		})
		replayed, err := Load(Config{Origin: "dyn.example.com", File: file})
		if err != nil {
			t.Fatalf("zone does not load from its file and journal after an update: %v", err)
		}
		if !sameTree(replayed.snapshot().names, after) {
			t.Fatal("the journal replays to another zone")
		}
		if err := z.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := Load(Config{Origin: "dyn.example.com", File: file}); err != nil {
			t.Fatalf("zone file does not load after an update: %v", err)
		}
	})
}

// sameTree reports whether a and b hold the same names, records and TTLs.
func sameTree(a, b *tree) bool {
	if a.len() != b.len() {
		return false
	}
	same := true
	a.ascend(func(name string, n node) bool {
		m, _ := b.get(name)
		if len(m) != len(n) {
			same = false
		}
		for _, set := range n {
			other := m.get(set.t)
			if !sameRdata(set.rrs, other) || len(other) > 0 && other[0].Header().Ttl != set.rrs[0].Header().Ttl {
				same = false
			}
		}
		return same
	})
	return same
}

// FuzzJournal: whatever bytes the journal holds (a torn record, a flipped
// bit, another file), reading and replaying it gives a zone or an error,
// never a panic; and a zone it gives still has its SOA and NS.
func FuzzJournal(f *testing.F) {
	names, err := parse(strings.NewReader(fuzzZone), "dyn.example.com.", "fuzz.zone")
	if err != nil {
		f.Fatal(err)
	}
	soa := names.soa()
	next := dns.Copy(soa).(*dns.SOA)
	next.Serial++
	add, _ := dns.NewRR("new.dyn.example.com. 60 IN A 192.0.2.9")
	del, _ := dns.NewRR("home.dyn.example.com. 300 IN A 192.0.2.1")
	rec, err := (&diff{from: soa, to: next, del: []dns.RR{del}, add: []dns.RR{add}}).encode([]byte(journalHeader))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(rec)
	f.Add(rec[:len(rec)-4])
	f.Add([]byte(journalHeader))
	f.Add([]byte("$ORIGIN x.\n"))
	f.Fuzz(func(t *testing.T, journal []byte) {
		// As it is, and with each record's CRC made right, so that
		// damaged payloads reach the decoder and the replay too.
		fixed := slices.Clone(journal)
		for off := len(journalHeader); off+8 <= len(fixed); {
			n := int(binary.BigEndian.Uint32(fixed[off:]))
			if n > len(fixed)-off-8 {
				break
			}
			binary.BigEndian.PutUint32(fixed[off+4:], crc32.Checksum(fixed[off+8:off+8+n], castagnoli))
			off += 8 + n
		}
		for _, j := range [][]byte{journal, fixed} {
			diffs, _, err := decodeJournal(bytes.NewReader(j), int64(len(j)))
			if err != nil {
				continue
			}
			tr, cuts := names.clone(), 0
			if _, err := replay(tr, &cuts, diffs); err != nil {
				continue
			}
			apex, _ := tr.get("dyn.example.com.")
			if len(apex.get(dns.TypeSOA)) != 1 || len(apex.get(dns.TypeNS)) == 0 {
				t.Fatalf("a zone without its SOA or NS replayed: %v", apex)
			}
			var buf strings.Builder
			tr.ascend(func(name string, n node) bool {
				for _, rr := range nodeRRs("dyn.example.com.", name, n) {
					buf.WriteString(rr.String() + "\n")
				}
				return true
			})
			if _, err := parse(strings.NewReader(buf.String()), "dyn.example.com.", "replayed.zone"); err != nil {
				t.Fatalf("a replayed zone that does not load: %v\n%s", err, buf.String())
			}
		}
	})
}
