package memory_test

import (
	"errors"
	"testing"

	"github.com/sshdyn/sshdyn/backend"
	"github.com/sshdyn/sshdyn/backend/backendtest"
	"github.com/sshdyn/sshdyn/backend/memory"
)

func TestConformance(t *testing.T) {
	m := memory.New()
	down := memory.New()
	down.Fail(&backend.Error{Kind: backend.KindUnreachable, Temporary: true, Backend: "memory", Zone: "dyn.example.com", Hint: "made to fail", Err: errors.New("down")})
	backendtest.Run(t, backendtest.Harness{
		Backend:  m,
		Zone:     "dyn.example.com",
		Writes:   func(*testing.T) uint64 { return m.Changes() },
		Failures: []backendtest.Failure{{Name: "down", Backend: down, Kind: backend.KindUnreachable, Temporary: true}},
	})
}
