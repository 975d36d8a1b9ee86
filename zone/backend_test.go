package zone

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/sshdyn/sshdyn/backend"
	"github.com/sshdyn/sshdyn/backend/backendtest"
)

// TestBackendConformance: the embedded zone written in process passes
// the backend suite; its writes are the SOA serial's steps. A zone whose
// rules refuse A and AAAA, and a zone closed under the writer, fail with
// their kinds.
func TestBackendConformance(t *testing.T) {
	z, _ := testZone(t, Config{ACME: true, UpdateTypes: []uint16{dns.TypeA, dns.TypeAAAA, dns.TypeSSHFP}})
	defer z.Close()
	refusing, _ := testZone(t, Config{UpdateTypes: []uint16{dns.TypeTXT}})
	defer refusing.Close()
	closed, _ := testZone(t, Config{})
	closed.Close()
	backendtest.Run(t, backendtest.Harness{
		Backend: NewBackend(z),
		Zone:    "dyn.example.com",
		Writes:  func(*testing.T) uint64 { return uint64(z.Stats().Serial) },
		Failures: []backendtest.Failure{
			{Name: "update_types without A and AAAA", Backend: NewBackend(refusing), Kind: backend.KindRefused},
			{Name: "zone closed", Backend: NewBackend(closed), Kind: backend.KindServerFailure, Temporary: true},
		},
		Foreign: []string{"TSIG", "HTTP", "tinydns"},
	})
}

// TestSSHFPReadBack: SSHFP data written to the zone file (where miekg/dns
// writes the fingerprint in upper case) reads back as the same records:
// after a restart the same data is no change, and a replacement leaves
// none of the old records behind.
func TestSSHFPReadBack(t *testing.T) {
	z, _ := testZone(t, Config{UpdateTypes: []uint16{dns.TypeSSHFP}})
	fp := backend.SSHFPData(4, 2, []byte(strings.Repeat("\xab", 32)))
	set := backend.RRset{Name: "home.dyn.example.com", Type: "SSHFP", TTL: 60, Data: []string{fp}}
	if changed, err := NewBackend(z).SetRRset(context.Background(), set); !changed || err != nil {
		t.Fatalf("first set: %v %v", changed, err)
	}
	if err := z.Close(); err != nil {
		t.Fatal(err)
	}
	z2, err := Load(z.cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer z2.Close()
	if changed, err := NewBackend(z2).SetRRset(context.Background(), set); changed || err != nil {
		t.Errorf("the same data after a restart: changed %v, %v", changed, err)
	}
	set.Data = []string{backend.SSHFPData(3, 2, []byte(strings.Repeat("\x01", 32)))}
	if changed, err := NewBackend(z2).SetRRset(context.Background(), set); !changed || err != nil {
		t.Fatalf("replaced: %v %v", changed, err)
	}
	if got, _ := NewBackend(z2).LookupRRset(context.Background(), set.Name, "SSHFP"); !slices.Equal(got, set.Data) {
		t.Errorf("served %q, want %q", got, set.Data)
	}
}
