package load

import (
	"bytes"
	"context"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/sshdyn/sshdyn/authorized"
	"github.com/sshdyn/sshdyn/sshd"
)

// startFloor serves a Floor for keys on loopback and returns its address.
func startFloor(t *testing.T, keys *Keys) string {
	t.Helper()
	var buf bytes.Buffer
	if err := keys.Authorized(&buf, "dyn.example.com", ""); err != nil {
		t.Fatal(err)
	}
	m, err := authorized.Parse(&buf, "keys", authorized.Scope{Zones: []string{"dyn.example.com"}})
	if err != nil {
		t.Fatal(err)
	}
	if m.Len() != keys.Len() {
		t.Fatalf("authorized map has %d keys, want %d", m.Len(), keys.Len())
	}
	signer, _, err := sshd.LoadOrCreateHostKey(filepath.Join(t.TempDir(), "hk"))
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go (&Floor{Hosts: m, Signer: signer}).Serve(l)
	t.Cleanup(func() { l.Close() })
	return l.Addr().String()
}

func TestRunClosedAndOpenLoop(t *testing.T) {
	keys := NewKeys(8)
	addr := startFloor(t, keys)
	sources := Loopback(netip.MustParseAddr("127.3.0.0"), 4)
	if len(sources) != 4 || sources[0] != netip.MustParseAddr("127.3.0.1") {
		t.Fatalf("Loopback = %v", sources)
	}
	res, err := Run(context.Background(), Config{Addr: addr, Command: "update", Clients: keys.Clients(sources, true),
		Concurrency: 4, Count: 40, KeyExchanges: []string{"curve25519-sha256"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Latencies) != 40 || res.Failures() != 0 || res.Started != 40 || res.Done != 40 || res.Throughput() <= 0 {
		t.Fatalf("closed loop: %s (started %d, done %d)", res, res.Started, res.Done)
	}
	if res.Percentile(50) > res.Percentile(99) || res.Percentile(99) <= 0 {
		t.Errorf("percentiles out of order: %s", res)
	}

	res, err = Run(context.Background(), Config{Addr: addr, Command: "update", Clients: keys.Clients(nil, false), Rate: 200, Count: 20})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Latencies) != 20 || res.Failures() != 0 || res.Elapsed < 90*time.Millisecond {
		t.Fatalf("open loop at 200/s: %s", res)
	}

	// A key the server does not know: every connection fails, by kind.
	res, err = Run(context.Background(), Config{Addr: addr, Command: "update", Clients: NewKeys(1).Clients(nil, false), Concurrency: 2, Count: 4})
	if err != nil {
		t.Fatal(err)
	}
	if res.Errors["handshake"] != 4 || len(res.Latencies) != 0 {
		t.Fatalf("unknown key: %s", res)
	}

	// Timed run: stops at the duration, counts only what finished.
	res, err = Run(context.Background(), Config{Addr: addr, Command: "update", Clients: keys.Clients(nil, false), Concurrency: 2, Duration: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Latencies) == 0 || res.Failures() != 0 || res.Elapsed > 2*time.Second {
		t.Fatalf("timed run: %s", res)
	}
}

func TestHoldAndStall(t *testing.T) {
	keys := NewKeys(4)
	addr := startFloor(t, keys)
	h, err := HoldSessions(context.Background(), addr, keys.Clients(nil, false), 20)
	if err != nil {
		t.Fatal(err)
	}
	if h.Len() != 20 {
		t.Errorf("holding %d sessions, want 20", h.Len())
	}
	h.Close()
	s, err := Stall(context.Background(), addr, Loopback(netip.MustParseAddr("127.4.0.0"), 3), 30)
	if err != nil {
		t.Fatal(err)
	}
	if s.Len() != 30 {
		t.Errorf("%d stalled connections, want 30", s.Len())
	}
	s.Close()
	if _, err := HoldSessions(context.Background(), addr, NewKeys(1).Clients(nil, false), 1); err == nil {
		t.Error("holding a session with an unknown key succeeded")
	}
}

func TestKeysRoundTrip(t *testing.T) {
	keys := NewKeys(3)
	p := filepath.Join(t.TempDir(), "keys")
	var buf bytes.Buffer
	if err := keys.Write(&buf); err != nil {
		t.Fatal(err)
	}
	if err := writeFile(p, buf.Bytes()); err != nil {
		t.Fatal(err)
	}
	back, err := ReadKeys(p)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if !bytes.Equal(back.Signer(i).PublicKey().Marshal(), keys.Signer(i).PublicKey().Marshal()) {
			t.Errorf("key %d differs after a round trip", i)
		}
	}
	if err := writeFile(p, []byte("zz\n")); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadKeys(p); err == nil || err.Error() != p+":1: not a hex ed25519 seed" {
		t.Errorf("bad seed: %v", err)
	}
}

func writeFile(p string, b []byte) error { return os.WriteFile(p, b, 0o600) }
