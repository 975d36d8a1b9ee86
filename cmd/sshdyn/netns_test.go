//go:build integration && linux

package main

import (
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/miekg/dns"
	"golang.org/x/sys/unix"

	"github.com/sshdyn/sshdyn/internal/dnstest"
)

// netns is a network namespace of a test's own, holding nothing but its
// loopback interface: a client run in it (ip netns exec) cannot reach
// anything off the machine, whatever it resolves. Its /etc/hosts (ip
// netns exec bind-mounts /etc/netns/NAME/hosts) maps the names given to
// 127.0.0.1, and its resolv.conf names no server that answers, so a
// client built to talk to a public service (inadyn's built-in dyndns2
// providers) talks to a relay on the namespace's loopback instead.
type netns struct {
	name string
}

var netnsSeq atomic.Int32

// newNetns makes the namespace, with names resolving to its 127.0.0.1,
// and removes it when the test ends.
func newNetns(t *testing.T, names ...string) *netns {
	t.Helper()
	n := &netns{name: fmt.Sprintf("sshdyn-test-%d-%d", os.Getpid(), netnsSeq.Add(1))}
	if out, err := exec.Command("ip", "netns", "add", n.name).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v: %s (the integration tests run as root)", err, out)
	}
	etc := filepath.Join("/etc/netns", n.name)
	t.Cleanup(func() {
		exec.Command("ip", "netns", "del", n.name).Run()
		os.RemoveAll(etc)
	})
	if out, err := exec.Command("ip", "netns", "exec", n.name, "ip", "link", "set", "lo", "up").CombinedOutput(); err != nil {
		t.Fatalf("lo up in %s: %v: %s", n.name, err, out)
	}
	if err := os.MkdirAll(etc, 0o755); err != nil {
		t.Fatal(err)
	}
	hosts := "127.0.0.1 localhost\n::1 localhost\n127.0.0.1 " + strings.Join(names, " ") + "\n"
	writeFile(t, filepath.Join(etc, "hosts"), hosts)
	writeFile(t, filepath.Join(etc, "resolv.conf"), "nameserver 127.0.0.1\n")
	return n
}

// relay listens on addr inside the namespace and copies each connection
// to target, outside it (the test's loopback). sent returns what the
// clients sent so far.
func (n *netns) relay(t *testing.T, addr, target string) (sent func() string) {
	t.Helper()
	type result struct {
		ln  net.Listener
		err error
	}
	ch := make(chan result, 1)
	go func() {
		// The socket is made in the namespace; the thread that entered it
		// dies with this goroutine, locked, so no other goroutine runs
		// in the namespace.
		runtime.LockOSThread()
		f, err := os.Open("/run/netns/" + n.name)
		if err != nil {
			ch <- result{err: err}
			return
		}
		defer f.Close()
		if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
			ch <- result{err: fmt.Errorf("setns: %w", err)}
			return
		}
		ln, err := net.Listen("tcp", addr)
		ch <- result{ln, err}
	}()
	r := <-ch
	if r.err != nil {
		t.Fatalf("listening on %s in %s: %v", addr, n.name, r.err)
	}
	t.Cleanup(func() { r.ln.Close() })
	var mu sync.Mutex
	var seen strings.Builder
	go func() {
		for {
			c, err := r.ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				u, err := net.Dial("tcp", target)
				if err != nil {
					return
				}
				defer u.Close()
				go func() {
					io.Copy(io.MultiWriter(u, writerFunc(func(b []byte) (int, error) {
						mu.Lock()
						defer mu.Unlock()
						return seen.Write(b)
					})), c)
					u.(*net.TCPConn).CloseWrite()
				}()
				io.Copy(c, u)
			}()
		}
	}()
	return func() string {
		mu.Lock()
		defer mu.Unlock()
		return seen.String()
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(b []byte) (int, error) { return f(b) }

// command returns name with args, to be run in the namespace.
func (n *netns) command(name string, args ...string) *exec.Cmd {
	return exec.Command("ip", append([]string{"netns", "exec", n.name, name}, args...)...)
}

// TestInadynWildcard: inadyn's own dyndns2 provider with wildcard = true
// (it sends wildcard=ON), run in a network namespace of the test's own
// where members.dyndns.org is the namespace's loopback, relayed to
// sshdyn's HTTP front: the line with the wildcard option gets *.HOST,
// the line without it does not, and both get their address.
func TestInadynWildcard(t *testing.T) {
	if _, err := exec.LookPath("inadyn"); err != nil {
		t.Fatal("inadyn not found: scripts/test.sh installs it")
	}
	p := dnstest.Start(t, "sshdyn", dnstest.Options{})
	z := p.Zone
	d, base := startRouterDaemon(t, p, "", credLine(t, "wild", "wild."+z)+",wildcard", credLine(t, "plain", "plain."+z))
	ns := newNetns(t, "members.dyndns.org")
	sent := ns.relay(t, "127.0.0.1:80", strings.TrimPrefix(base, "http://"))
	dir := t.TempDir()
	conf := filepath.Join(dir, "inadyn.conf")
	writeFile(t, conf, fmt.Sprintf(`period = 300
provider default@dyndns.org:1 {
    username = wild
    password = %[1]s
    checkip-command = "/bin/echo 198.51.100.50"
    hostname = wild.%[2]s
    wildcard = true
    ssl = false
}
provider default@dyndns.org:2 {
    username = plain
    password = %[1]s
    checkip-command = "/bin/echo 198.51.100.51"
    hostname = plain.%[2]s
    wildcard = true
    ssl = false
}
`, routerPassword, z))
	out, err := ns.command("inadyn", "--once", "--foreground", "-f", conf, "--cache-dir="+dir, "-P", filepath.Join(dir, "pid")).CombinedOutput()
	if err != nil {
		t.Fatalf("inadyn: %v\n%s\nsshdyn:\n%s", err, out, d.log.String())
	}
	if got := sent(); strings.Count(got, "&wildcard=ON") != 2 || !strings.Contains(got, "Host: members.dyndns.org") {
		t.Errorf("inadyn did not send wildcard=ON to members.dyndns.org for both; it sent:\n%s", got)
	}
	a := func(name string) []string { return p.Lookup(t, name+"."+z, dns.TypeA) }
	if got := a("wild"); !slices.Equal(got, []string{"198.51.100.50"}) {
		t.Errorf("wild A = %v\ninadyn: %s", got, out)
	}
	if got := a("any.thing.wild"); !slices.Equal(got, []string{"198.51.100.50"}) {
		t.Errorf("any.thing.wild A = %v, want the wildcard's", got)
	}
	if got := a("plain"); !slices.Equal(got, []string{"198.51.100.51"}) {
		t.Errorf("plain A = %v", got)
	}
	if got := a("x.plain"); len(got) != 0 {
		t.Errorf("x.plain A = %v: a line without the option got a wildcard", got)
	}
}
