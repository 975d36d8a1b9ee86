//go:build integration

package update_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/miekg/dns"

	"github.com/sshdyn/sshdyn/internal/dnstest"
	"github.com/sshdyn/sshdyn/update"
)

// TestTXTAgainstRealPrimaries: AddTXT and RemoveTXT add and remove one
// value of a TXT RRset, leaving the others, on BIND, Knot, PowerDNS and
// the embedded primary, each granting TXT for ACME; a primary that does
// not grant TXT at a name fails, and changes nothing.
func TestTXTAgainstRealPrimaries(t *testing.T) {
	const v1, v2 = "LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaA"
	for _, kind := range dnstest.Kinds {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			s := dnstest.Start(t, kind, dnstest.Options{ACME: true})
			c := newClient(t, s)
			ctx := context.Background()
			name := "_acme-challenge.home." + s.Zone
			steps := []struct {
				add   bool
				value string
				want  update.Result
				after []string
			}{
				{true, v1, update.Changed, []string{v1}},
				{true, v1, update.NoChange, []string{v1}},
				{true, v2, update.Changed, []string{v1, v2}},
				{false, v1, update.Changed, []string{v2}},
				{false, v1, update.NoChange, []string{v2}},
				{false, v2, update.Changed, nil},
			}
			for i, st := range steps {
				var res update.Result
				var err error
				if st.add {
					res, err = c.AddTXT(ctx, name, st.value, 60)
				} else {
					res, err = c.RemoveTXT(ctx, name, st.value)
				}
				if err != nil || res != st.want {
					t.Fatalf("step %d: %v, %v; want %v", i+1, res, err, st.want)
				}
				got, err := c.LookupTXT(ctx, name)
				slices.Sort(got)
				if err != nil || !slices.Equal(got, st.after) {
					t.Fatalf("step %d: TXT = %q, %v; want %q", i+1, got, err, st.after)
				}
				if served := s.Lookup(t, name, dns.TypeTXT); len(served) != len(st.after) {
					t.Fatalf("step %d: the primary serves %q", i+1, served)
				}
			}
			if kind == "bind" || kind == "knot" {
				return // they grant TXT at every name: sshdyn keeps to _acme-challenge names itself
			}
			// Elsewhere than at an _acme-challenge name the policy refuses
			// TXT: REFUSED (embedded), or skipped with NOERROR (PowerDNS).
			serial := s.Serial(t)
			_, err := c.AddTXT(ctx, "home."+s.Zone, v1, 60)
			var ue *update.Error
			if !errors.As(err, &ue) || ue.Kind != update.KindRefused && ue.Kind != update.KindIgnored {
				t.Fatalf("TXT at a host name: %v, want refused or ignored", err)
			}
			if got := s.Lookup(t, "home."+s.Zone, dns.TypeTXT); len(got) != 0 || kind == "sshdyn" && s.Serial(t) != serial {
				t.Errorf("TXT at a host name written: %v", got)
			}
		})
	}
}
