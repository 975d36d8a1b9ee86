//go:build integration

package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/crypto/bcrypt"

	"github.com/sshdyn/sshdyn/dyndns2"
	"github.com/sshdyn/sshdyn/internal/dnstest"
)

var httpListenRE = regexp.MustCompile(`msg="http listening" component=http addr=(\S+)`)

// routerPassword is every router's password in these tests; its hash is
// made once, by "sshdyn passwd" itself.
const routerPassword = "router-secret-1"

var routerHash = sync.OnceValues(func() (string, error) {
	cmd := exec.Command(binary, "passwd")
	cmd.Stdin = strings.NewReader(routerPassword + "\n")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("sshdyn passwd: %v: %s", err, errb.String())
	}
	return strings.TrimSpace(out.String()), nil
})

// credLine is an authorized line for a router with user name user and
// the hosts given, with no key.
func credLine(t *testing.T, user string, hosts ...string) string {
	t.Helper()
	h, err := routerHash()
	if err != nil {
		t.Fatal(err)
	}
	line := `http-user="` + user + `",http-password="` + h + `"`
	for _, host := range hosts {
		line += `,host="` + host + `"`
	}
	return line
}

// startRouterDaemon runs sshdyn serve with the dyndns2 front on
// 127.0.0.1 (plain HTTP, loopback) besides SSH; top is put at the top of
// the configuration. It returns the daemon and the front's base URL.
func startRouterDaemon(t *testing.T, p *dnstest.Server, top string, lines ...string) (*daemon, string) {
	t.Helper()
	dir := writeConfig(t, p, p.Addr, p.KeyFile, lines...)
	cfg := filepath.Join(dir, "sshdyn.toml")
	b, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if top == "" {
		top = `http_listen = ["127.0.0.1:0"]` + "\n"
	}
	writeFile(t, cfg, top+string(b))
	d := runDaemon(t, dir)
	base := httpBase(t, d)
	if strings.Contains(top, "tls_cert") {
		base = "https" + strings.TrimPrefix(base, "http")
	}
	return d, base
}

// httpBase returns the dyndns2 front's base URL from d's log.
func httpBase(t *testing.T, d *daemon) string {
	t.Helper()
	m := httpListenRE.FindStringSubmatch(d.log.String())
	if m == nil {
		t.Fatalf("no HTTP listener in the log:\n%s", d.log.String())
	}
	return "http://" + m[1]
}

// routerUpdate sends a dyndns2 update as a router does, with curl, and
// returns the answer.
func routerUpdate(t *testing.T, base, user, query string) string {
	t.Helper()
	out, err := runRouter(t, "curl", "-sS", "--fail-with-body", "-u", user+":"+routerPassword, base+"/nic/update?"+query)
	if err != nil {
		t.Errorf("curl: %v: %s", err, out)
	}
	return out
}

// runRouter runs a router's client program and returns its combined
// output. A missing program fails the test: test.sh installs it.
func runRouter(t *testing.T, name string, args ...string) (string, error) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		t.Fatalf("%s not found: scripts/test.sh installs it", name)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	return string(out), err
}

// TestRouters: the dyndns2 clients routers run — ddclient, inadyn, a
// FRITZ!Box's request and OpenWrt's, sent by curl as they send it —
// update records on BIND, Knot, PowerDNS and the embedded primary; a
// second run is nochg and writes nothing. The same authorized line's key
// still updates over SSH, and a router's line cannot log in over SSH.
func TestRouters(t *testing.T) {
	for _, kind := range dnstest.Kinds {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			p := dnstest.Start(t, kind, dnstest.Options{})
			z := p.Zone
			key := newClientKey(t, t.TempDir(), "home")
			d, base := startRouterDaemon(t, p, "",
				credLine(t, "home", "home."+z)+" "+key.line,
				credLine(t, "ddclient", "ddc."+z),
				credLine(t, "inadyn", "ina."+z),
				credLine(t, "fritz", "fritz."+z),
				credLine(t, "openwrt", "wrt."+z))
			host := strings.TrimPrefix(base, "http://")

			twice := func(name, record string, typ uint16, want string, run func() (string, error)) {
				t.Helper()
				out, err := run()
				if err != nil {
					t.Fatalf("%s: %v\n%s", name, err, out)
				}
				if got := p.Lookup(t, record, typ); !slices.Equal(got, []string{want}) {
					t.Fatalf("%s: %s %s = %v, want %s\n%s", name, record, dns.TypeToString[typ], got, want, out)
				}
				serial := p.Serial(t)
				if out, err := run(); err != nil {
					t.Fatalf("%s again: %v\n%s", name, err, out)
				}
				if got := p.Serial(t); got != serial {
					t.Errorf("%s again: serial %d -> %d, want nothing written", name, serial, got)
				}
			}

			// ddclient, one shot (its config file must be mode 0600).
			dir := t.TempDir()
			conf := filepath.Join(dir, "ddclient.conf")
			writeFile(t, conf, fmt.Sprintf("daemon=0\nssl=no\nuse=ip, ip=198.51.100.9\nprotocol=dyndns2\nserver=%s\nlogin=ddclient\npassword='%s'\nddc.%s\n", host, routerPassword, z))
			os.Chmod(conf, 0o600)
			twice("ddclient", "ddc."+z, dns.TypeA, "198.51.100.9", func() (string, error) {
				out, err := runRouter(t, "ddclient", "-daemon=0", "-foreground", "-file", conf, "-cache", filepath.Join(dir, "cache"), "-force")
				if err == nil && !strings.Contains(out, "SUCCESS") && !strings.Contains(out, "nochg: No update required") {
					err = fmt.Errorf("neither SUCCESS nor nochg")
				}
				return out, err
			})

			// inadyn, one shot, a fresh cache each run so that it asks.
			iconf := filepath.Join(dir, "inadyn.conf")
			writeFile(t, iconf, fmt.Sprintf(`period = 300
custom sshdyn {
    username = inadyn
    password = %s
    checkip-command = "/bin/echo 198.51.100.10"
    ddns-server = %s
    ddns-path = "/nic/update?hostname=%%h&myip=%%i"
    hostname = ina.%s
    ssl = false
}
`, routerPassword, host, z))
			twice("inadyn", "ina."+z, dns.TypeA, "198.51.100.10", func() (string, error) {
				cache := t.TempDir()
				return runRouter(t, "inadyn", "--once", "--foreground", "-f", iconf, "--cache-dir="+cache, "-P", filepath.Join(cache, "pid"))
			})

			// A FRITZ!Box: <domain>, <ipaddr>, <ip6addr> put in the URL as
			// they are, both families in one request, its User-Agent.
			fritz := base + "/nic/update?hostname=fritz." + z + "&myip=198.51.100.11,2001:db8::11"
			curl := func(url string, args ...string) func() (string, error) {
				return func() (string, error) {
					out, err := runRouter(t, "curl", append([]string{"-sS", "--fail-with-body", url}, args...)...)
					if err == nil && !strings.HasPrefix(out, "good ") && !strings.HasPrefix(out, "nochg ") {
						err = fmt.Errorf("answer %q", out)
					}
					return out, err
				}
			}
			twice("FRITZ!Box", "fritz."+z, dns.TypeA, "198.51.100.11", curl(fritz, "-A", "Fritz!Box DDNS/1.0.1", "-u", "fritz:"+routerPassword))
			if got := p.Lookup(t, "fritz."+z, dns.TypeAAAA); !slices.Equal(got, []string{"2001:db8::11"}) {
				t.Errorf("FRITZ!Box AAAA = %v", got)
			}
			if out, _ := curl(fritz, "-A", "Fritz!Box DDNS/1.0.1", "-u", "fritz:"+routerPassword)(); out != "nochg 198.51.100.11,2001:db8::11\n" {
				t.Errorf("FRITZ!Box repeat answer %q", out)
			}
			// A new address of each family: one change, one serial step
			// (it was two UPDATEs, one per family).
			serial := p.Serial(t)
			moved := base + "/nic/update?hostname=fritz." + z + "&myip=198.51.100.21,2001:db8::21"
			if out, _ := curl(moved, "-A", "Fritz!Box DDNS/1.0.1", "-u", "fritz:"+routerPassword)(); out != "good 198.51.100.21,2001:db8::21\n" {
				t.Errorf("FRITZ!Box dual-stack change: answer %q", out)
			}
			if got := p.Serial(t); got != serial+1 {
				t.Errorf("FRITZ!Box dual-stack change: serial %d -> %d, want one step (A and AAAA in one UPDATE)", serial, got)
			}
			if a, aaaa := p.Lookup(t, "fritz."+z, dns.TypeA), p.Lookup(t, "fritz."+z, dns.TypeAAAA); !slices.Equal(a, []string{"198.51.100.21"}) || !slices.Equal(aaaa, []string{"2001:db8::21"}) {
				t.Errorf("FRITZ!Box dual-stack change: A %v AAAA %v", a, aaaa)
			}

			// OpenWrt's ddns-scripts: the credentials in the URL.
			wrt := "http://openwrt:" + routerPassword + "@" + host + "/nic/update?hostname=wrt." + z + "&myip=198.51.100.12"
			twice("OpenWrt", "wrt."+z, dns.TypeA, "198.51.100.12", curl(wrt))

			// The line with both: its key still updates over SSH.
			if r := d.ssh(t, key, nil, "update"); r.code != 0 || r.stdout != "good home."+z+" A 127.0.0.1\n" {
				t.Errorf("ssh update on the line with HTTP credentials = %+v", r)
			}
			// A router's line cannot log in over SSH: no key, and no
			// password login exists.
			stranger := newClientKey(t, t.TempDir(), "stranger")
			if r := d.ssh(t, stranger, []string{"-l", "fritz"}, "update"); r.code != 255 {
				t.Errorf("ssh as the router's user with another key = %+v, want 255", r)
			}
			if r := d.ssh(t, stranger, []string{"-o", "PubkeyAuthentication=no", "-o", "PreferredAuthentications=password,keyboard-interactive"}, "update"); r.code != 255 || !strings.Contains(r.stderr, "Permission denied (publickey)") {
				t.Errorf("ssh with a password = %+v, want 255, publickey only", r)
			}
		})
	}
}

// writeCert writes a fresh self-signed certificate for 127.0.0.1 and its
// key, PEM, to cert and key.
func writeCert(t *testing.T, cert, key string) {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: "sshdyn test " + serial.String()},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &priv.PublicKey, priv)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	// The key first: a reload between the two writes sees a mismatched
	// pair and keeps the old one, then the next handshake loads both.
	writeFile(t, key, string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb})))
	writeFile(t, cert, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})))
}

// TestHTTPS: with tls_cert and tls_key the front is HTTPS; curl checks
// the certificate with --cacert. A certificate replaced on disk is served
// at the next handshake, with no restart.
func TestHTTPS(t *testing.T) {
	p := dnstest.Start(t, "sshdyn", dnstest.Options{})
	dir := t.TempDir()
	cert, key, oldCA := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem"), filepath.Join(dir, "old.pem")
	writeCert(t, cert, key)
	top := fmt.Sprintf("http_listen = [\"127.0.0.1:0\"]\ntls_cert = %q\ntls_key = %q\n", cert, key)
	d, base := startRouterDaemon(t, p, top, credLine(t, "router", "r."+p.Zone))
	if !strings.HasPrefix(base, "https://") {
		t.Fatalf("base %q", base)
	}
	b, _ := os.ReadFile(cert)
	writeFile(t, oldCA, string(b))
	update := func(ca, addr string) (string, error) {
		return runRouter(t, "curl", "-sS", "--fail-with-body", "--cacert", ca, "-u", "router:"+routerPassword,
			base+"/nic/update?hostname=r."+p.Zone+"&myip="+addr)
	}
	if out, err := update(cert, "198.51.100.20"); err != nil || out != "good 198.51.100.20\n" {
		t.Fatalf("HTTPS update: %v %q", err, out)
	}
	if out, err := runRouter(t, "curl", "-sS", "-o", "/dev/null", "-u", "router:"+routerPassword, base+"/nic/update"); err == nil {
		t.Errorf("curl trusted a certificate it has no CA for: %q", out)
	}

	// A renewal: the files change, and the watcher (SIGHUP here: the
	// tests' reload_interval is 0) reads them again.
	writeCert(t, cert, key)
	if err := d.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	d.waitLog(t, "TLS certificate reloaded")
	if out, err := update(cert, "198.51.100.21"); err != nil || out != "good 198.51.100.21\n" {
		t.Fatalf("HTTPS update after the certificate was replaced: %v %q\n%s", err, out, d.log.String())
	}
	if out, err := update(oldCA, "198.51.100.22"); err == nil {
		t.Errorf("the old certificate is still served: %q", out)
	}
	if got := p.Lookup(t, "r."+p.Zone, dns.TypeA); !slices.Equal(got, []string{"198.51.100.21"}) {
		t.Errorf("A = %v", got)
	}
}

// TestHTTPLimits: a client that trickles its headers is dropped at the
// header timeout; an over-long query or header is refused (431); DNS is
// unchanged by both.
func TestHTTPLimits(t *testing.T) {
	p := dnstest.Start(t, "sshdyn", dnstest.Options{})
	_, base := startRouterDaemon(t, p, `http_listen = ["127.0.0.1:0"]`+"\nhttp_max_connections_per_source = 4\n", credLine(t, "router", "r."+p.Zone))
	addr := strings.TrimPrefix(base, "http://")
	serial := p.Serial(t)

	// The documented 8 KiB of request line and headers: 7 KiB of header
	// passes, 8 KiB does not (net/http adds 4 KiB of slack to
	// MaxHeaderBytes: before, the limit was 12 KiB).
	for _, c := range []struct {
		size int
		want string
	}{{7 << 10, "401"}, {8 << 10, "431"}} {
		if out, _ := runRouter(t, "curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "-H", "X-Padding: "+strings.Repeat("y", c.size),
			base+"/nic/update?hostname=r."+p.Zone); out != c.want {
			t.Errorf("a %d KiB header: HTTP %s, want %s", c.size>>10, out, c.want)
		}
	}

	// Idle connections from one source: four are held, the fifth is
	// closed at once (audit finding H1: 1,500 of 1,500 were held).
	var idle []net.Conn
	for range 4 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		idle = append(idle, c)
	}
	fifth, err := net.Dial("tcp", "127.0.0.1:"+strings.Split(addr, ":")[1])
	if err != nil {
		t.Fatal(err)
	}
	fifth.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := fifth.Read(make([]byte, 1)); n != 0 || err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("the fifth idle connection from one source was held (read %d, %v)", n, err)
	}
	fifth.Close()
	if out, _ := runRouter(t, "curl", "-sS", "--interface", "127.0.0.2", "-o", "/dev/null", "-w", "%{http_code}", base+"/nic/update"); out != "401" {
		t.Errorf("another source while one holds its four: HTTP %s", out)
	}
	for _, c := range idle {
		c.Close()
	}

	long := base + "/nic/update?hostname=r." + p.Zone + "&myip=198.51.100.30&pad=" + strings.Repeat("x", 16<<10)
	if out, _ := runRouter(t, "curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "-u", "router:"+routerPassword, long); out != "431" {
		t.Errorf("over-long query: HTTP %s, want 431", out)
	}
	if out, _ := runRouter(t, "curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "-u", "router:"+routerPassword,
		"-H", "X-Padding: "+strings.Repeat("y", 16<<10), base+"/nic/update?hostname=r."+p.Zone+"&myip=198.51.100.31"); out != "431" {
		t.Errorf("over-long header: HTTP %s, want 431", out)
	}

	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	fmt.Fprintf(c, "GET /nic/update?hostname=r.%s&myip=198.51.100.32 HTTP/1.1\r\nHost: x\r\n", p.Zone)
	closed := make(chan struct{})
	go func() {
		defer close(closed)
		buf := make([]byte, 512)
		for {
			if _, err := c.Read(buf); err != nil {
				return
			}
		}
	}()
	trickle := time.NewTicker(500 * time.Millisecond)
	defer trickle.Stop()
	for done := false; !done; {
		select {
		case <-closed:
			done = true
		case <-trickle.C:
			c.Write([]byte("X")) // one more byte of a header that never ends
		case <-time.After(20 * time.Second):
			t.Fatal("a client trickling its headers was not dropped in 20 s")
		}
	}
	t.Logf("trickling client dropped after %v (read-header timeout 5 s)", time.Since(start).Round(100*time.Millisecond))
	if p.Serial(t) != serial || len(p.Lookup(t, "r."+p.Zone, dns.TypeA)) != 0 {
		t.Error("DNS changed")
	}
}

// TestRouterExamples: the router set-ups in examples/ work as written,
// but for the server's address, plain HTTP on loopback and a fixed
// address instead of asking the internet, on each primary: ddclient.conf
// and inadyn.conf run, and so do EdgeOS's and DD-WRT's values through
// the ddclient and inadyn those devices run; the FRITZ!Box, OpenWrt,
// pfSense, UniFi, Synology, MikroTik and Home Assistant requests are sent
// by curl as those devices send them.
func TestRouterExamples(t *testing.T) {
	for _, kind := range dnstest.Kinds {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			routerExamples(t, kind)
		})
	}
}

func routerExamples(t *testing.T, kind string) {
	p := dnstest.Start(t, kind, dnstest.Options{})
	if p.Zone != "dyn.example.com" {
		t.Fatalf("zone %s: the examples are for dyn.example.com", p.Zone)
	}
	const pass = "the password"                                                  // as in the examples
	hash, err := bcrypt.GenerateFromPassword([]byte(pass), dyndns2.PasswordCost) // what sshdyn accepts
	if err != nil {
		t.Fatal(err)
	}
	// The Synology recipe's line, with a password DSM can put in a URL.
	const synPass = "correct-horse-battery-staple"
	synHash, err := bcrypt.GenerateFromPassword([]byte(synPass), dyndns2.PasswordCost)
	if err != nil {
		t.Fatal(err)
	}
	// allow-private: Home Assistant's request names no address, and this
	// test's come from loopback.
	_, base := startRouterDaemon(t, p, "http_listen = [\"127.0.0.1:0\"]\nhttp_query_credentials = true\n",
		`http-user="home-router",http-password="`+string(hash)+`",host="home.dyn.example.com",allow-private`,
		`http-user="nas",http-password="`+string(synHash)+`",host="nas.dyn.example.com"`)
	server := strings.TrimPrefix(base, "http://")
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join(examples, name))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	// field returns what follows prefix on the line that starts with
	// it; with keep, the whole line.
	field := func(text, prefix string, keep ...bool) string {
		for _, line := range strings.Split(text, "\n") {
			if l := strings.TrimSpace(line); strings.HasPrefix(l, prefix) {
				if len(keep) > 0 {
					return l
				}
				return strings.Trim(strings.TrimSpace(strings.TrimPrefix(l, prefix)), "'")
			}
		}
		t.Fatalf("no %q line", prefix)
		return ""
	}
	expect := func(name, out string, err error, addrs ...string) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v\n%s", name, err, out)
		}
		if got := p.Lookup(t, "home.dyn.example.com", dns.TypeA); !slices.Equal(got, addrs[:1]) {
			t.Errorf("%s: A = %v, want %s\n%s", name, got, addrs[0], out)
		}
		if len(addrs) > 1 {
			if got := p.Lookup(t, "home.dyn.example.com", dns.TypeAAAA); !slices.Equal(got, addrs[1:]) {
				t.Errorf("%s: AAAA = %v, want %s", name, got, addrs[1])
			}
		}
	}
	dir := t.TempDir()

	conf := read("ddclient.conf")
	conf = strings.NewReplacer("ssl=yes", "ssl=no", "use=web, web=https://ifconfig.co/ip", "use=ip, ip=198.51.100.40",
		"server=dyn.example.com", "server="+server, "daemon=300", "daemon=0").Replace(conf)
	if !strings.Contains(conf, "server="+server) || strings.Contains(conf, "use=web") || strings.Contains(conf, "ssl=yes") {
		t.Fatalf("examples/ddclient.conf changed; this test would let ddclient leave loopback:\n%s", conf)
	}
	writeFile(t, filepath.Join(dir, "ddclient.conf"), conf)
	os.Chmod(filepath.Join(dir, "ddclient.conf"), 0o600)
	out, err := runRouter(t, "ddclient", "-daemon=0", "-foreground", "-file", filepath.Join(dir, "ddclient.conf"), "-cache", filepath.Join(dir, "ddclient.cache"), "-force")
	expect("ddclient.conf", out, err, "198.51.100.40")

	conf = read("inadyn.conf")
	conf = strings.NewReplacer("ddns-server = dyn.example.com", "ddns-server = "+server, "ssl = true", "ssl = false",
		"    username = home-router\n", "    username = home-router\n    checkip-command = \"/bin/echo 198.51.100.41\"\n").Replace(conf)
	if !strings.Contains(conf, "ddns-server = "+server) || !strings.Contains(conf, "checkip-command") || strings.Contains(conf, "ssl = true") {
		t.Fatalf("examples/inadyn.conf changed; this test would let inadyn leave loopback:\n%s", conf)
	}
	writeFile(t, filepath.Join(dir, "inadyn.conf"), conf)
	if out, err := runRouter(t, "inadyn", "--check-config", "-f", filepath.Join(dir, "inadyn.conf")); err != nil {
		t.Fatalf("inadyn --check-config: %v\n%s", err, out)
	}
	out, err = runRouter(t, "inadyn", "--once", "--foreground", "-f", filepath.Join(dir, "inadyn.conf"), "--cache-dir="+dir, "-P", filepath.Join(dir, "inadyn.pid"))
	expect("inadyn.conf", out, err, "198.51.100.41")

	curl := func(url string, args ...string) (string, error) {
		// Loopback only: a URL the replacements missed must never reach
		// a resolver or the internet.
		if !strings.HasPrefix(url, base+"/") && !strings.HasPrefix(url, "http://home-router:the%20password@"+server+"/") {
			t.Fatalf("URL %q is not this test's server", url)
		}
		return runRouter(t, "curl", append([]string{"-sS", "--fail-with-body", url}, args...)...)
	}
	url := strings.NewReplacer("https://dyn.example.com", base, "<domain>", "home.dyn.example.com", "<ipaddr>", "198.51.100.42", "<ip6addr>", "2001:db8::42").
		Replace(field(read("fritzbox.txt"), "https://", true))
	out, err = curl(url, "-A", "Fritz!Box DDNS/1.0.1", "-u", "home-router:"+pass)
	expect("fritzbox.txt", out, err, "198.51.100.42", "2001:db8::42")

	url = strings.NewReplacer("https://[USERNAME]:[PASSWORD]@dyn.example.com", "http://home-router:the%20password@"+server,
		"[DOMAIN]", "home.dyn.example.com", "[IP]", "198.51.100.43").Replace(field(read("openwrt-ddns"), "option update_url"))
	out, err = curl(url)
	expect("openwrt-ddns", out, err, "198.51.100.43", "2001:db8::42")

	pf := read("pfsense-opnsense.txt")
	url = strings.NewReplacer("https://dyn.example.com", base, "%IP%", "198.51.100.44").Replace(field(pf, "Update URL:"))
	out, err = curl(url, "-u", "home-router:"+pass)
	expect("pfsense-opnsense.txt", out, err, "198.51.100.44", "2001:db8::42")
	if match := field(pf, "Result Match:"); !regexp.MustCompile(match).MatchString(out) {
		t.Errorf("pfSense's Result Match %q does not match the answer %q", match, out)
	}

	srv := field(read("unifi.txt"), "Server:")
	path := strings.NewReplacer("%h", "home.dyn.example.com", "%i", "198.51.100.45").Replace(srv[strings.Index(srv, "/"):])
	out, err = curl(base+path, "-u", "home-router:"+pass)
	expect("unifi.txt", out, err, "198.51.100.45", "2001:db8::42")

	// Synology DSM: the credentials in the query, put in as typed.
	syn := read("synology.txt")
	if got := field(syn, "Password:"); got != synPass {
		t.Fatalf("synology.txt's password %q is not the test's", got)
	}
	url = strings.NewReplacer("https://dyn.example.com", base, "__HOSTNAME__", field(syn, "Hostname:"), "__MYIP__", "198.51.100.46",
		"__USERNAME__", field(syn, "Username:"), "__PASSWORD__", synPass).Replace(field(syn, "https://", true))
	out, err = curl(url)
	if got := p.Lookup(t, "nas.dyn.example.com", dns.TypeA); err != nil || out != "good 198.51.100.46\n" || !slices.Equal(got, []string{"198.51.100.46"}) {
		t.Errorf("synology.txt: %q %v, nas A %v", out, err, got)
	}

	// MikroTik: the script's url= evaluated as RouterOS does (strings
	// joined with ".", \? an escaped ?, $NAME a :local), with the
	// WAN address 198.51.100.47; fetch's user= and password= by Basic auth.
	mt := read("mikrotik.rsc")
	vars := map[string]string{"addr": "198.51.100.47"}
	for _, m := range regexp.MustCompile(`(?m)^:local (\w+) "([^"]*)"$`).FindAllStringSubmatch(mt, -1) {
		vars[m[1]] = m[2]
	}
	fetch := field(mt, "/tool fetch", true)
	expr := regexp.MustCompile(`url=\(([^)]*)\)`).FindStringSubmatch(fetch)
	login := regexp.MustCompile(`user=\$(\w+) password=\$(\w+)`).FindStringSubmatch(fetch)
	if expr == nil || login == nil {
		t.Fatalf("mikrotik.rsc: no url=(…) or user=/password= in %q", fetch)
	}
	var joined strings.Builder
	for _, part := range strings.Split(expr[1], " . ") {
		if part = strings.TrimSpace(part); strings.HasPrefix(part, `"`) {
			joined.WriteString(strings.ReplaceAll(strings.Trim(part, `"`), `\?`, "?"))
		} else {
			joined.WriteString(vars[strings.TrimPrefix(part, "$")])
		}
	}
	out, err = curl(strings.Replace(joined.String(), "https://dyn.example.com", base, 1), "-u", vars[login[1]]+":"+vars[login[2]])
	expect("mikrotik.rsc", out, err, "198.51.100.47", "2001:db8::42")

	// Home Assistant's rest_command: Basic auth, no address named: the
	// request's own (here loopback).
	ha := read("home-assistant.yaml")
	url = strings.Replace(strings.Trim(field(ha, "url:"), `"`), "https://dyn.example.com", base, 1)
	out, err = curl(url, "-u", strings.Trim(field(ha, "username:"), `"`)+":"+strings.Trim(field(ha, "#   sshdyn_password:"), `"`))
	expect("home-assistant.yaml", out, err, "127.0.0.1", "2001:db8::42")

	// EdgeRouter: the CLI's values, written into ddclient's
	// configuration as EdgeOS does, run by the real ddclient.
	er := map[string]string{}
	for _, m := range regexp.MustCompile(`(?m)^\s*set service dns dynamic interface eth0 service custom-sshdyn (\S+) (.+)$`).FindAllStringSubmatch(read("edgerouter.txt"), -1) {
		er[m[1]] = strings.Trim(m[2], "'")
	}
	if er["protocol"] != "dyndns2" || er["server"] != "dyn.example.com" {
		t.Fatalf("edgerouter.txt: %v", er)
	}
	conf = "daemon=0\nssl=no\nuse=ip, ip=198.51.100.48\nprotocol=" + er["protocol"] + "\nserver=" + server + "\nlogin=" + er["login"] + "\npassword='" + er["password"] + "'\n" + er["host-name"] + "\n"
	writeFile(t, filepath.Join(dir, "edgerouter-ddclient.conf"), conf)
	os.Chmod(filepath.Join(dir, "edgerouter-ddclient.conf"), 0o600)
	out, err = runRouter(t, "ddclient", "-daemon=0", "-foreground", "-file", filepath.Join(dir, "edgerouter-ddclient.conf"), "-cache", filepath.Join(dir, "edgerouter.cache"), "-force")
	expect("edgerouter.txt", out, err, "198.51.100.48", "2001:db8::42")

	// DD-WRT and Tomato: the recipe's inadyn custom provider, run by
	// inadyn (which appends the host name to the path).
	dd := read("dd-wrt-tomato.txt")
	custom := dd[strings.Index(dd, "custom sshdyn {"):]
	custom = custom[:strings.Index(custom, "}")+1]
	conf = strings.NewReplacer("ddns-server = dyn.example.com", "ddns-server = "+server, "ssl         = true", "ssl         = false",
		"    hostname", "    checkip-command = \"/bin/echo 198.51.100.49\"\n    hostname").Replace(custom) + "\n"
	if !strings.Contains(conf, "ddns-server = "+server) || !strings.Contains(conf, "checkip-command") || strings.Contains(conf, "ssl         = true") {
		t.Fatalf("examples/dd-wrt-tomato.txt changed; this test would let inadyn leave loopback:\n%s", conf)
	}
	writeFile(t, filepath.Join(dir, "dd-wrt.conf"), conf)
	out, err = runRouter(t, "inadyn", "--once", "--foreground", "-f", filepath.Join(dir, "dd-wrt.conf"), "--cache-dir="+filepath.Join(dir, "dd-wrt-cache"), "-P", filepath.Join(dir, "dd-wrt.pid"))
	expect("dd-wrt-tomato.txt", out, err, "198.51.100.49", "2001:db8::42")

	// OpenWrt ddns-scripts' service file: [USERNAME] and [PASSWORD]
	// URL-encoded as ddns-scripts puts them in, both families.
	var svc struct {
		IPv4, IPv6 struct{ URL string }
	}
	if err := json.Unmarshal([]byte(read("openwrt-ddns-service.json")), &svc); err != nil {
		t.Fatalf("openwrt-ddns-service.json: %v", err)
	}
	for _, fam := range []struct{ url, ip string }{{svc.IPv4.URL, "198.51.100.50"}, {svc.IPv6.URL, "2001:db8::50"}} {
		url = strings.NewReplacer("https://[USERNAME]:[PASSWORD]@dyn.example.com", "http://home-router:the%20password@"+server,
			"[DOMAIN]", "home.dyn.example.com", "[IP]", fam.ip).Replace(fam.url)
		out, err = curl(url)
		if err != nil || out != "good "+fam.ip+"\n" {
			t.Errorf("openwrt-ddns-service.json %s: %q %v", fam.ip, out, err)
		}
	}
	expect("openwrt-ddns-service.json", out, err, "198.51.100.50", "2001:db8::50")
}

// TestLANHosts: LAN hosts without any client follow the home's IPv6
// prefix, on every primary: "ssh -6" sets the updater's AAAA and the LAN
// hosts' (prefix | interface ID) in one UPDATE (the serial moves by one);
// a repeat writes nothing; "ssh -4" leaves them alone; a FRITZ!Box-style
// request with ip6lanprefix moves them to its prefix, also when it
// carries no IPv6 address.
func TestLANHosts(t *testing.T) {
	for _, kind := range dnstest.Kinds {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			p := dnstest.Start(t, kind, dnstest.Options{})
			z := p.Zone
			key := newClientKey(t, t.TempDir(), "home")
			line := credLine(t, "home", "home."+z) + `,lan-host="nas.` + z + `=::211:32ff:fe12:3456",lan-host="cam.` + z + `=::1:0:0:0:10",prefix-length=56 ` + key.line
			d, base := startRouterDaemon(t, p, "", line)
			aaaa := func(host string) []string { return p.Lookup(t, host+"."+z, dns.TypeAAAA) }

			serial := p.Serial(t)
			r := d.ssh(t, key, []string{"-6"}, "update")
			want := "good home." + z + " AAAA ::1\ngood nas." + z + " AAAA ::211:32ff:fe12:3456\ngood cam." + z + " AAAA ::1:0:0:0:10\n"
			if r.code != 0 || r.stdout != want {
				t.Fatalf("ssh -6 update = %+v, want\n%s", r, want)
			}
			if got := p.Serial(t); got != serial+1 {
				t.Errorf("serial %d -> %d, want one step for three records", serial, got)
			}
			if !slices.Equal(aaaa("nas"), []string{"::211:32ff:fe12:3456"}) || !slices.Equal(aaaa("cam"), []string{"::1:0:0:0:10"}) {
				t.Errorf("LAN AAAA: nas %v, cam %v", aaaa("nas"), aaaa("cam"))
			}
			serial = p.Serial(t)
			if r := d.ssh(t, key, []string{"-6"}, "update"); r.code != 0 || strings.Count(r.stdout, "nochg ") != 3 || p.Serial(t) != serial {
				t.Errorf("repeat = %+v, serial %d -> %d", r, serial, p.Serial(t))
			}
			if r := d.ssh(t, key, []string{"-4"}, "update"); r.code != 0 || r.stdout != "good home."+z+" A 127.0.0.1\n" || !slices.Equal(aaaa("nas"), []string{"::211:32ff:fe12:3456"}) {
				t.Errorf("ssh -4 = %+v, nas AAAA %v", r, aaaa("nas"))
			}
			if r := d.ssh(t, key, nil, "status"); r.code != 0 || !strings.Contains(r.stdout, "nas."+z+" AAAA ::211:32ff:fe12:3456 60") {
				t.Errorf("status = %+v", r)
			}

			// The FRITZ!Box's request: its LAN prefix, a /64 of another
			// network (cam's interface ID does not fit in a /64: badip).
			url := base + "/nic/update?hostname=home." + z + "&myip=198.51.100.50,2001:db8:aa::50&ip6lanprefix=2001:db8:bb:1::/64"
			out, _ := runRouter(t, "curl", "-sS", "-u", "home:"+routerPassword, url)
			if out != "badip\n" || !slices.Equal(aaaa("nas"), []string{"2001:db8:bb:1:211:32ff:fe12:3456"}) {
				t.Errorf("with ip6lanprefix /64: %q, nas AAAA %v", out, aaaa("nas"))
			}
			url = strings.Replace(url, "2001:db8:bb:1::/64", "2001:db8:cc::/56", 1)
			out, err := runRouter(t, "curl", "-sS", "--fail-with-body", "-u", "home:"+routerPassword, url)
			if err != nil || out != "nochg 198.51.100.50,2001:db8:aa::50\n" || !slices.Equal(aaaa("cam"), []string{"2001:db8:cc:1::10"}) {
				t.Errorf("with ip6lanprefix /56: %q %v, cam AAAA %v", out, err, aaaa("cam"))
			}
			// A FRITZ!Box with no IPv6 address of its own (DS-Lite, or
			// its WAN address not wanted): myip=<ipaddr>,<ip6addr> with
			// <ip6addr> empty, and its LAN prefix: the A record and the
			// LAN hosts move in one step.
			serial = p.Serial(t)
			url = base + "/nic/update?hostname=home." + z + "&myip=198.51.100.51,&ip6lanprefix=2001:db8:dd::/56"
			out, err = runRouter(t, "curl", "-sS", "--fail-with-body", "-u", "home:"+routerPassword, url)
			if err != nil || out != "good 198.51.100.51\n" || !slices.Equal(aaaa("nas"), []string{"2001:db8:dd:0:211:32ff:fe12:3456"}) || !slices.Equal(aaaa("cam"), []string{"2001:db8:dd:1::10"}) {
				t.Errorf("myip=v4, and ip6lanprefix: %q %v, nas AAAA %v, cam AAAA %v", out, err, aaaa("nas"), aaaa("cam"))
			}
			if got := p.Serial(t); got != serial+1 {
				t.Errorf("serial %d -> %d, want one step for the A and two LAN records", serial, got)
			}
			// Prefix-only (deSEC's myipv6=PREFIX/LEN, then dynv6's
			// ipv6prefix=): home AAAA keeps its interface ID (::50, from the request above) under
			// the new prefix, the LAN hosts follow, one step each.
			for _, pf := range []struct{ query, prefix string }{{"myip=198.51.100.52&myipv6=2001:db8:ee::/56", "2001:db8:ee:"}, {"ipv4=198.51.100.52&ipv6prefix=2001:db8:ff::/56", "2001:db8:ff:"}} {
				serial = p.Serial(t)
				out, err = runRouter(t, "curl", "-sS", "--fail-with-body", "-u", "home:"+routerPassword, base+"/nic/update?hostname=home."+z+"&"+pf.query)
				if !strings.HasSuffix(out, ","+pf.prefix+":50\n") || err != nil || !slices.Equal(aaaa("home"), []string{pf.prefix + ":50"}) ||
					!slices.Equal(aaaa("nas"), []string{pf.prefix + "0:211:32ff:fe12:3456"}) || !slices.Equal(aaaa("cam"), []string{pf.prefix + "1::10"}) {
					t.Errorf("%s: %q %v, home AAAA %v, nas AAAA %v, cam AAAA %v", pf.query, out, err, aaaa("home"), aaaa("nas"), aaaa("cam"))
				}
				if got := p.Serial(t); got != serial+1 {
					t.Errorf("%s: serial %d -> %d, want one step", pf.query, serial, got)
				}
			}
			// Bad prefixes change nothing.
			serial = p.Serial(t)
			for _, q := range []string{"myipv6=2001:db8:1::/40", "myipv6=::ffff:0:0/96", "ipv6prefix=2001:db8:1:2:3::/80", "myipv6=2001:db8:1::/56&ipv6=2001:db8::1"} {
				out, _ := runRouter(t, "curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "-u", "home:"+routerPassword, base+"/nic/update?hostname=home."+z+"&myip=198.51.100.52&"+q)
				if out != "400" {
					t.Errorf("%s: HTTP %s, want 400 badip", q, out)
				}
			}
			if got := p.Serial(t); got != serial {
				t.Errorf("bad prefixes moved the serial %d -> %d", serial, got)
			}
		})
	}
}

// TestWildcardLines: a line with the wildcard option sets *.HOST with
// HOST, in one change, over SSH and HTTP, on every primary, and every
// primary then answers for any name below HOST; dyndns2's wildcard=OFF
// leaves the wildcard; a line without the option never gets one, even
// when its router sends wildcard=ON (as inadyn and ddclient do).
func TestWildcardLines(t *testing.T) {
	for _, kind := range dnstest.Kinds {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			p := dnstest.Start(t, kind, dnstest.Options{})
			z := p.Zone
			key := newClientKey(t, t.TempDir(), "home")
			d, base := startRouterDaemon(t, p, "", credLine(t, "home", "home."+z)+",wildcard "+key.line, credLine(t, "plain", "plain."+z))
			a := func(name string) []string { return p.Lookup(t, name+"."+z, dns.TypeA) }

			serial := p.Serial(t)
			r := d.ssh(t, key, nil, "update")
			if r.code != 0 || r.stdout != "good home."+z+" A 127.0.0.1\ngood *.home."+z+" A 127.0.0.1\n" {
				t.Fatalf("update = %+v", r)
			}
			if got := p.Serial(t); got != serial+1 {
				t.Errorf("serial %d -> %d, want one step for the host and its wildcard", serial, got)
			}
			if got := a("anything.home"); !slices.Equal(got, []string{"127.0.0.1"}) {
				t.Errorf("anything.home A = %v, want the wildcard's", got)
			}
			if r := d.ssh(t, key, nil, "status"); !strings.Contains(r.stdout, "*.home."+z+" A 127.0.0.1 60") {
				t.Errorf("status = %+v", r)
			}
			get := func(user, query string) string {
				out, err := runRouter(t, "curl", "-sS", "--fail-with-body", "-u", user+":"+routerPassword, base+"/nic/update?"+query)
				if err != nil {
					t.Errorf("%s: %v %s", query, err, out)
				}
				return out
			}
			serial = p.Serial(t)
			if out := get("home", "hostname=home."+z+"&myip=198.51.100.60&wildcard=ON"); out != "good 198.51.100.60\n" || !slices.Equal(a("x.y.home"), []string{"198.51.100.60"}) {
				t.Errorf("wildcard=ON: %q, x.y.home A %v", out, a("x.y.home"))
			}
			if got := p.Serial(t); got != serial+1 {
				t.Errorf("serial %d -> %d, want one step", serial, got)
			}
			if out := get("home", "hostname=home."+z+"&myip=198.51.100.61&wildcard=OFF"); out != "good 198.51.100.61\n" || !slices.Equal(a("*.home"), []string{"198.51.100.60"}) {
				t.Errorf("wildcard=OFF: %q, *.home A %v", out, a("*.home"))
			}
			if out := get("plain", "hostname=plain."+z+"&myip=198.51.100.62&wildcard=ON"); out != "good 198.51.100.62\n" || len(a("x.plain")) != 0 {
				t.Errorf("wildcard=ON without the option: %q, x.plain A %v", out, a("x.plain"))
			}
		})
	}
}
