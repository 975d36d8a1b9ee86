package zone

import (
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
	z, _ := testZone(t, Config{ACME: true})
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
