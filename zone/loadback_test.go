package zone

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

// TestDollarOwnerLoadsBack: audit finding H4. A name whose first label
// starts with "$" is a valid owner that an update may add; the zone file
// used to write it relative and unescaped, where it reads as a
// directive ($TTL, $ORIGIN), so after a restart serve refused the zone.
func TestDollarOwnerLoadsBack(t *testing.T) {
	z, file := testZone(t, Config{})
	for _, name := range []string{"$ttl", "$origin", "$include", "$generate", "$x"} {
		if rc := send(t, z, name+".dyn.example.com. 60 IN A 192.0.2.44"); rc != dns.RcodeSuccess {
			t.Fatalf("%s: rcode %s", name, dns.RcodeToString[rc])
		}
	}
	want := z.snapshot().names
	if err := z.Close(); err != nil {
		t.Fatal(err)
	}
	back, err := Load(Config{Origin: testOrigin, File: file})
	if err != nil {
		b, _ := os.ReadFile(file)
		t.Fatalf("the zone file does not load back: %v\n%s", err, b)
	}
	defer back.Close()
	if !sameTree(back.snapshot().names, want) {
		t.Error("the zone file loads back as another zone")
	}
}

// TestReplayRefusesWhatTheLoaderRefuses: audit finding H5. A journal
// whose record passes its CRC but adds a CNAME beside other data (which
// no update could have made) stops the start, as the loader would for
// such a zone file; it used to load, and the next zone-file write did
// not.
func TestReplayRefusesWhatTheLoaderRefuses(t *testing.T) {
	for _, c := range []struct{ name, add, why string }{
		{"CNAME beside an A", "home.dyn.example.com. 60 IN CNAME ns.dyn.example.com.", "CNAME and other data"},
		{"A beside a CNAME", "alias.dyn.example.com. 60 IN A 192.0.2.9", "CNAME and other data"},
		{"two CNAMEs", "alias.dyn.example.com. 60 IN CNAME ns.dyn.example.com.", "more than one CNAME"},
	} {
		t.Run(c.name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "dyn.example.com.zone")
			text := "$ORIGIN dyn.example.com.\n$TTL 60\n@ SOA ns hostmaster 1 3600 600 86400 60\n@ NS ns\nns A 192.0.2.53\nhome A 192.0.2.1\nalias CNAME home\n"
			if err := os.WriteFile(file, []byte(text), 0o644); err != nil {
				t.Fatal(err)
			}
			names, err := parse(strings.NewReader(text), testOrigin, file)
			if err != nil {
				t.Fatal(err)
			}
			next := dns.Copy(names.soa()).(*dns.SOA)
			next.Serial++
			add, err := dns.NewRR(c.add)
			if err != nil {
				t.Fatal(err)
			}
			rec, err := (&diff{from: names.soa(), to: next, add: []dns.RR{add}}).encode([]byte(journalHeader))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(journalPath(file), rec, 0o644); err != nil {
				t.Fatal(err)
			}
			_, err = Load(Config{Origin: testOrigin, File: file})
			if err == nil || !strings.Contains(err.Error(), c.why) {
				t.Fatalf("Load = %v, want an error saying %q", err, c.why)
			}
		})
	}
}

// fuzzNames are owners an update may name: plain, escaped, and those the
// zone file's syntax gives a meaning to ($ directives, @, ;, quotes,
// spaces, parentheses, backslashes, dots inside a label).
var fuzzNames = []string{
	"home", "Home", "$ttl", "$ORIGIN", "@", `\@`, `\;x`, `\"q`, `a\032b`, `\(`, `\)`, `\\`, `a\.b`, `\$`, "x.y", "_acme-challenge.home",
	`\000`, `\255x`, "ns", "deep.er.name", "sub", "a.sub", "*x", "-", strings.Repeat("l", 63),
}

// fuzzRecords are data an update may carry, by type.
var fuzzRecords = []string{
	"A 192.0.2.1", "A 192.0.2.2", "AAAA 2001:db8::1", "AAAA ::ffff:192.0.2.1",
	`TXT "plain"`, `TXT "semi;colon" "two"`, `TXT "back\\slash \"quote\""`, `TXT "\000\255 bytes"`, `TXT ""`,
	"CNAME home.dyn.example.com.", "CNAME elsewhere.example.", "MX 10 home.dyn.example.com.",
	"NS ns.other.example.", "SRV 0 5 443 home.dyn.example.com.", `CAA 0 issue "ca.example"`, "PTR x.example.",
	"SSHFP 4 2 9f2b4a4b3a3e0c1f8a6d7b5c4e3f2a1b0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f", "DNAME y.example.",
}

// FuzzUpdateSequence: the property of audit findings H4 and H5. After
// any sequence of updates the embedded primary accepts, the journal it
// replays and the zone file it writes both load back to exactly the zone
// it served.
func FuzzUpdateSequence(f *testing.F) {
	f.Add([]byte{2, 0, 0})          // $ttl A
	f.Add([]byte{0, 9, 0, 0, 0, 0}) // home CNAME beside home A
	f.Add([]byte{4, 6, 0, 4, 0, 1, 4, 0, 2})
	f.Add([]byte{19, 12, 0, 20, 0, 0, 20, 0, 2})
	types := []uint16{dns.TypeA, dns.TypeAAAA, dns.TypeTXT, dns.TypeCNAME, dns.TypeMX, dns.TypeSRV, dns.TypeCAA, dns.TypePTR, dns.TypeSSHFP}
	f.Fuzz(func(t *testing.T, ops []byte) {
		if len(ops) > 3*32 {
			return
		}
		z, file := testZone(t, Config{UpdateTypes: types, JournalLimit: 1 << 30})
		for i := 0; i+2 < len(ops); i += 3 {
			name := fuzzNames[int(ops[i])%len(fuzzNames)] + ".dyn.example.com."
			data := fuzzRecords[int(ops[i+1])%len(fuzzRecords)]
			var line string
			switch ops[i+2] % 4 {
			case 0, 1: // add
				line = fmt.Sprintf("%s %d IN %s", name, 60+int(ops[i+2]>>2), data)
			case 2: // delete the RRset
				line = name + " ANY " + strings.Fields(data)[0]
			case 3: // delete the record
				line = fmt.Sprintf("%s 0 NONE %s", name, data)
			}
			if _, err := dns.NewRR(line); err != nil && !strings.Contains(line, " ANY ") {
				continue
			}
			send(t, z, line)
		}
		served := z.snapshot().names
		fromJournal, err := Load(Config{Origin: testOrigin, File: file})
		if err != nil {
			t.Fatalf("the zone does not load from its file and journal: %v", err)
		}
		if !sameTree(fromJournal.snapshot().names, served) {
			t.Fatal("the journal replays to another zone than the one served")
		}
		if err := z.Close(); err != nil {
			t.Fatal(err)
		}
		fromFile, err := Load(Config{Origin: testOrigin, File: file})
		if err != nil {
			b, _ := os.ReadFile(file)
			t.Fatalf("the zone file it wrote does not load: %v\n%s", err, b)
		}
		if !sameTree(fromFile.snapshot().names, served) {
			b, _ := os.ReadFile(file)
			t.Fatalf("the zone file loads as another zone than the one served:\n%s", b)
		}
		fromFile.Close()
	})
}
