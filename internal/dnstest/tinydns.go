package dnstest

import (
	"crypto/rand"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// tinydnsData is the path of tinydns-data.
func tinydnsData() string {
	if p, err := exec.LookPath("tinydns-data"); err == nil {
		return p
	}
	return "/usr/sbin/tinydns-data"
}

// Tinydns is a running tinydns on its own loopback address, port 53.
type Tinydns struct {
	Root string
	Addr string // ip:53
}

// StartTinydns runs Debian's tinydns (as root: it binds port 53, chroots
// to its root and drops to UID 0 here) on a free 127.53.x.y, serving a
// root whose data holds the zone dyn.example.com and the operator's own
// lines.
func StartTinydns(t testing.TB) *Tinydns {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("tinydns binds port 53: run the tests as root (scripts/test.sh does in CI)")
	}
	bin := "/usr/sbin/tinydns"
	if _, err := os.Stat(bin); err != nil {
		t.Fatal("tinydns not found: scripts/test.sh installs it")
	}
	root := t.TempDir()
	if err := os.Chmod(root, 0o755); err != nil {
		t.Fatal(err)
	}
	WriteData(t, root, ".dyn.example.com:127.0.0.1:a:259200\n+www.dyn.example.com:192.0.2.80:300\n")
	runIn(t, root, tinydnsData())
	var ip string
	for range 50 {
		n, _ := rand.Int(rand.Reader, big.NewInt(250*250))
		ip = fmt.Sprintf("127.53.%d.%d", n.Int64()/250+1, n.Int64()%250+1)
		if c, err := net.ListenPacket("udp", ip+":53"); err == nil {
			c.Close()
			break
		}
	}
	cmd := exec.Command(bin)
	cmd.Env = []string{"IP=" + ip, "ROOT=" + root, "UID=0", "GID=0"}
	var log strings.Builder
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	s := &Tinydns{Root: root, Addr: ip + ":53"}
	deadline := time.Now().Add(10 * time.Second)
	for len(s.Lookup(t, "www.dyn.example.com", dns.TypeA)) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("tinydns on %s does not answer:\n%s", s.Addr, log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	return s
}

func WriteData(t testing.TB, root, text string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(root, "data"), []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

func runIn(t testing.TB, dir, name string) {
	t.Helper()
	cmd := exec.Command(name)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", name, err, out)
	}
}

// Lookup asks tinydns, and returns the records' values with TTLs:
// "192.0.2.1 60".
func (s *Tinydns) Lookup(t testing.TB, name string, qtype uint16) []string {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	m.RecursionDesired = false
	r, _, err := (&dns.Client{Timeout: time.Second}).Exchange(m, s.Addr)
	if err != nil {
		return nil
	}
	var out []string
	for _, rr := range r.Answer {
		switch rr := rr.(type) {
		case *dns.A:
			out = append(out, fmt.Sprintf("%s %d", rr.A, rr.Hdr.Ttl))
		case *dns.AAAA:
			out = append(out, fmt.Sprintf("%s %d", rr.AAAA, rr.Hdr.Ttl))
		case *dns.TXT:
			out = append(out, fmt.Sprintf("%s %d", strings.Join(rr.Txt, ""), rr.Hdr.Ttl))
		}
	}
	slices.Sort(out)
	return out
}
