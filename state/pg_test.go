//go:build integration

package state

import (
	"context"
	"fmt"
	"testing"

	"github.com/sshdyn/sshdyn/internal/dnstest"
)

func TestPostgres(t *testing.T) {
	n := 0
	pg := dnstest.StartPG(t, "s1", "s2", "s3", "s4")
	storeTests(t, func(t *testing.T) *Store {
		n++
		s, err := Open(context.Background(), pg.URL(fmt.Sprintf("s%d", n)))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}
