//go:build integration

package update_test

import (
	"net"
	"testing"

	"github.com/sshdyn/sshdyn/backend"
	"github.com/sshdyn/sshdyn/backend/backendtest"
	"github.com/sshdyn/sshdyn/internal/dnstest"
	"github.com/sshdyn/sshdyn/update"
)

// TestConformance: the RFC 2136 backend, set up as sshdyn serve sets it
// up (pool, batch, memory), passes the backend suite against BIND, Knot,
// PowerDNS and the embedded primary; its writes are the SOA serial's
// steps. A wrong secret and a primary nobody listens for fail with
// their kinds, in RFC 2136's words.
func TestConformance(t *testing.T) {
	for _, kind := range dnstest.Kinds {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			s := dnstest.Start(t, kind, dnstest.Options{ACME: true, Types: []string{"A", "AAAA", "SSHFP"}})
			c, _ := servingClient(t, s)
			wrong := *newClient(t, s)
			wrong.Key.Secret = "d3Jvbmctc2VjcmV0LXdyb25nLXNlY3JldA=="
			l, _ := net.Listen("tcp", "127.0.0.1:0")
			down := *newClient(t, s)
			down.Server = l.Addr().String()
			l.Close()
			backendtest.Run(t, backendtest.Harness{
				Backend: update.NewBackend(c),
				Zone:    s.Zone,
				Writes:  func(t *testing.T) uint64 { return uint64(s.Serial(t)) },
				Failures: []backendtest.Failure{
					{Name: "wrong secret", Backend: update.NewBackend(&wrong), Kind: backend.KindCredentials},
					{Name: "primary down", Backend: update.NewBackend(&down), Kind: backend.KindUnreachable, Temporary: true},
				},
				Foreign: []string{"HTTP", "tinydns"},
			})
		})
	}
}
