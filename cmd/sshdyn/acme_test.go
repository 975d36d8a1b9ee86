//go:build integration

package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/sshdyn/sshdyn/internal/dnstest"
)

// pebble is a running pebble, Let's Encrypt's test-only ACME CA, that
// validates DNS-01 challenges by asking one DNS server directly.
type pebble struct {
	url    string // the directory URL
	caFile string // the certificate of pebble's own HTTPS listener
}

// startPebble runs pebble with its DNS server at dnsAddr, and stops it
// when the test ends.
func startPebble(t *testing.T, dnsAddr string) *pebble {
	t.Helper()
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	writeSelfSigned(t, certFile, keyFile)
	var ports [4]int
	for i := range ports {
		p, err := dnstest.FreePort()
		if err != nil {
			t.Fatal(err)
		}
		ports[i] = p
	}
	conf, _ := json.Marshal(map[string]any{"pebble": map[string]any{
		"listenAddress":                  "127.0.0.1:" + strconv.Itoa(ports[0]),
		"managementListenAddress":        "127.0.0.1:" + strconv.Itoa(ports[1]),
		"certificate":                    certFile,
		"privateKey":                     keyFile,
		"httpPort":                       ports[2],
		"tlsPort":                        ports[3],
		"ocspResponderURL":               "",
		"externalAccountBindingRequired": false,
	}})
	confFile := filepath.Join(dir, "pebble.json")
	writeFile(t, confFile, string(conf))
	cmd := exec.Command("pebble", "-config", confFile, "-dnsserver", dnsAddr, "-strict=false")
	// No sleeps before validation, no random nonce rejections, and a new
	// authorization (so a challenge) for every order, renewals included.
	cmd.Env = append(os.Environ(), "PEBBLE_VA_NOSLEEP=1", "PEBBLE_WFE_NONCEREJECT=0", "PEBBLE_AUTHZREUSE=0")
	log := &dnstest.LogBuffer{}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatalf("pebble: %v (scripts/test.sh installs it)", err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-done
		if t.Failed() {
			t.Logf("pebble log:\n%s", log.String())
		}
	})
	pb := &pebble{url: fmt.Sprintf("https://127.0.0.1:%d/dir", ports[0]), caFile: certFile}
	pool := x509.NewCertPool()
	b, _ := os.ReadFile(certFile)
	pool.AppendCertsFromPEM(b)
	client := &http.Client{Timeout: time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := client.Get(pb.url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return pb
			}
		}
		select {
		case <-done:
			t.Fatalf("pebble exited:\n%s", log.String())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("pebble did not answer at %s: %v\n%s", pb.url, err, log.String())
		}
	}
}

// writeSelfSigned writes a certificate for 127.0.0.1 and localhost and its key.
func writeSelfSigned(t *testing.T, certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "localhost"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(48 * time.Hour),
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(key)
	writeFile(t, certFile, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})))
	writeFile(t, keyFile, string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb})))
}

// hookEnv is the environment of an ACME client whose hooks (examples/acme)
// reach d as key: SSHDYN_SSH is ssh with an ssh_config block for d.
func (d *daemon) hookEnv(t *testing.T, key clientKey) []string {
	t.Helper()
	cfg := filepath.Join(t.TempDir(), "ssh_config")
	writeFile(t, cfg, fmt.Sprintf(`Host sshdyn
    HostName 127.0.0.1
    Port %s
    User acme
    IdentityFile %s
    IdentitiesOnly yes
    IdentityAgent none
    BatchMode yes
    StrictHostKeyChecking yes
    UserKnownHostsFile %s
    LogLevel ERROR
`, d.port4, key.path, d.knownHosts))
	// Clipped: each client appends its own variables.
	return slices.Clip(append(os.Environ(), "SSHDYN_SSH=ssh -F "+cfg+" sshdyn"))
}

// issued reads the first certificate of a PEM file and returns its DNS
// names, sorted.
func issued(t *testing.T, path string) (names []string, serial string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("no certificate: %v", err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		t.Fatalf("%s: no PEM block", path)
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	names = slices.Clone(c.DNSNames)
	slices.Sort(names)
	return names, c.SerialNumber.String()
}

func runTool(t *testing.T, env []string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// TestACMEClients: certbot, lego and dehydrated, with the hooks of
// examples/acme, get certificates for a host and its wildcard in one
// order from pebble, through sshdyn, on BIND, Knot, PowerDNS and the
// embedded primary; no TXT record is left behind, and a second run (a
// renewal) works too.
func TestACMEClients(t *testing.T) {
	for _, tool := range []string{"pebble", "certbot", "lego", "dehydrated"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not found: scripts/test.sh installs it", tool)
		}
	}
	examples, err := filepath.Abs("../../examples/acme")
	if err != nil {
		t.Fatal(err)
	}
	for _, kind := range dnstest.Kinds {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			p := dnstest.Start(t, kind, dnstest.Options{ACME: true})
			key := newClientKey(t, t.TempDir(), "acme")
			hosts := map[string]string{"certbot": "c." + p.Zone, "lego": "l." + p.Zone, "dehydrated": "d." + p.Zone}
			line := `host="` + hosts["certbot"] + `",host="` + hosts["lego"] + `",host="` + hosts["dehydrated"] + `" ` + key.line
			dir := writeConfig(t, p, p.Addr, p.KeyFile, line)
			dnstest.AppendFile(t, filepath.Join(dir, "sshdyn.toml"), "acme = true\n")
			d := runDaemon(t, dir)
			pb := startPebble(t, p.Addr)
			env := d.hookEnv(t, key)
			noneLeft := func(t *testing.T, host string) {
				t.Helper()
				if got := p.Lookup(t, "_acme-challenge."+host, dns.TypeTXT); len(got) != 0 {
					t.Errorf("TXT left at _acme-challenge.%s: %v", host, got)
				}
			}
			want := func(host string) []string { return []string{"*." + host, host} }

			t.Run("certbot", func(t *testing.T) {
				t.Parallel()
				host, work := hosts["certbot"], t.TempDir()
				args := []string{"certonly", "--non-interactive", "--agree-tos", "-m", "a@example.test", "--server", pb.url,
					"--manual", "--preferred-challenges", "dns",
					"--manual-auth-hook", filepath.Join(examples, "certbot-auth-hook"),
					"--manual-cleanup-hook", filepath.Join(examples, "certbot-cleanup-hook"),
					"-d", host, "-d", "*." + host,
					"--config-dir", filepath.Join(work, "config"), "--work-dir", filepath.Join(work, "work"), "--logs-dir", filepath.Join(work, "logs")}
				cenv := append(env, "REQUESTS_CA_BUNDLE="+pb.caFile)
				runTool(t, cenv, "certbot", args...)
				names, first := issued(t, filepath.Join(work, "config", "live", host, "fullchain.pem"))
				if !slices.Equal(names, want(host)) {
					t.Errorf("certificate for %v", names)
				}
				noneLeft(t, host)
				runTool(t, cenv, "certbot", append(args, "--force-renewal")...)
				names, second := issued(t, filepath.Join(work, "config", "live", host, "fullchain.pem"))
				if !slices.Equal(names, want(host)) || second == first {
					t.Errorf("renewal: %v, serial %s (first %s)", names, second, first)
				}
				noneLeft(t, host)
			})
			t.Run("lego", func(t *testing.T) {
				t.Parallel()
				host, work := hosts["lego"], t.TempDir()
				// EXEC_SEQUENCE_INTERVAL: lego waits this long (60 s by default)
				// between the challenges of an exec provider; sshdyn holds both
				// values at once, so 1 s is enough.
				lenv := append(env, "EXEC_PATH="+filepath.Join(examples, "lego-exec"), "EXEC_SEQUENCE_INTERVAL=1", "LEGO_CA_CERTIFICATES="+pb.caFile)
				for run := range 2 {
					runTool(t, lenv, "lego", "--server", pb.url, "--accept-tos", "--email", "a@example.test",
						"--dns", "exec", "--dns.resolvers", p.Addr, "--dns.disable-cp",
						"--domains", host, "--domains", "*."+host, "--path", work, "run")
					if names, _ := issued(t, filepath.Join(work, "certificates", host+".crt")); !slices.Equal(names, want(host)) {
						t.Errorf("run %d: certificate for %v", run+1, names)
					}
					noneLeft(t, host)
				}
			})
			t.Run("dehydrated", func(t *testing.T) {
				t.Parallel()
				host, work := hosts["dehydrated"], t.TempDir()
				cfg := filepath.Join(work, "config")
				writeFile(t, cfg, fmt.Sprintf("CA=%q\nCHALLENGETYPE=\"dns-01\"\nHOOK=%q\nBASEDIR=%q\nCONTACT_EMAIL=a@example.test\nCURL_OPTS=\"--cacert %s\"\n",
					pb.url, filepath.Join(examples, "dehydrated-hook"), work, pb.caFile))
				runTool(t, env, "dehydrated", "--register", "--accept-terms", "--config", cfg)
				for run := range 2 {
					runTool(t, env, "dehydrated", "--cron", "--force", "--config", cfg, "--domain", host, "--domain", "*."+host)
					if names, _ := issued(t, filepath.Join(work, "certs", host, "cert.pem")); !slices.Equal(names, want(host)) {
						t.Errorf("run %d: certificate for %v", run+1, names)
					}
					noneLeft(t, host)
				}
			})
		})
	}
}

// TestACMECommands: "acme present|cleanup" over OpenSSH: exit statuses
// for what is not this key's, malformed, or forbidden; values that
// coexist and leave one at a time; the acme.sh DNS API script of
// examples/acme; and a primary that does not grant TXT (78).
func TestACMECommands(t *testing.T) {
	p := dnstest.Start(t, "sshdyn", dnstest.Options{ACME: true})
	keys := t.TempDir()
	home, other, noACME := newClientKey(t, keys, "home"), newClientKey(t, keys, "other"), newClientKey(t, keys, "noacme")
	dir := writeConfig(t, p, p.Addr, p.KeyFile,
		`host="home.`+p.Zone+`" `+home.line, `host="other.`+p.Zone+`" `+other.line, `no-acme,host="n.`+p.Zone+`" `+noACME.line)
	dnstest.AppendFile(t, filepath.Join(dir, "sshdyn.toml"), "acme = true\n")
	d := runDaemon(t, dir)
	const v1, v2 = "LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0", "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbA"
	owner := "_acme-challenge.home." + p.Zone
	txt := func() []string { return p.Lookup(t, owner, dns.TypeTXT) }
	steps := []struct {
		name   string
		key    clientKey
		args   []string
		code   int
		stdout string   // exactly, when code is 0
		stderr string   // in stderr, when code is not 0
		after  []string // TXT at owner afterwards
	}{
		{"present", home, []string{"acme", "present", "home." + p.Zone, v1}, 0, "good " + owner + " TXT\n", "", []string{v1}},
		{"present the wildcard's", home, []string{"acme", "present", "*.home." + p.Zone + ".", v2}, 0, "good " + owner + " TXT\n", "", []string{v1, v2}},
		{"present again", home, []string{"acme", "present", owner, v2}, 0, "nochg " + owner + " TXT\n", "", []string{v1, v2}},
		{"cleanup one", home, []string{"acme", "cleanup", owner + ".", v1}, 0, "good " + owner + " TXT\n", "", []string{v2}},
		{"another key's host", other, []string{"acme", "present", "home." + p.Zone, v1}, 77, "", `not permitted: "home.` + p.Zone + `" is not one of this key's hosts`, []string{v2}},
		{"not a digest", home, []string{"acme", "present", "home." + p.Zone, "hello"}, 64, "", "is not a DNS-01 value", []string{v2}},
		{"no-acme", noACME, []string{"acme", "present", "n." + p.Zone, v1}, 77, "", "not permitted: ACME challenges are not allowed for this key (no-acme)", []string{v2}},
		{"usage", home, []string{"acme", "present", "home." + p.Zone}, 64, "", "usage: acme present|cleanup NAME VALUE", []string{v2}},
		{"cleanup the last", home, []string{"acme", "cleanup", "home." + p.Zone, v2}, 0, "good " + owner + " TXT\n", "", nil},
	}
	for _, st := range steps {
		r := d.ssh(t, st.key, nil, st.args...)
		if r.code != st.code || st.code == 0 && r.stdout != st.stdout || st.code != 0 && (!strings.Contains(r.stderr, st.stderr) || strings.Count(r.stderr, "\n") != 1) {
			t.Errorf("%s: exit %d, stdout %q, stderr %q; want %d", st.name, r.code, r.stdout, r.stderr, st.code)
		}
		if got := txt(); !slices.Equal(got, st.after) {
			t.Errorf("%s: TXT %v, want %v", st.name, got, st.after)
		}
	}

	t.Run("acme.sh dnsapi", func(t *testing.T) {
		script, err := filepath.Abs("../../examples/acme/dns_sshdyn.sh")
		if err != nil {
			t.Fatal(err)
		}
		// acme.sh sources the script and calls its functions, with its
		// own _info and _err.
		sh := `_info() { :; }; _err() { echo "$@" >&2; }; . "$0" && dns_sshdyn_add "$1" "$2" && dig=$(dig +short +norec -p "$3" @127.0.0.1 "$1" TXT) && echo "added $dig" && dns_sshdyn_rm "$1" "$2"`
		cmd := exec.Command("sh", "-c", sh, script, owner, v1, strconv.Itoa(p.Port))
		cmd.Env = d.hookEnv(t, home)
		if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), `added "`+v1+`"`) {
			t.Fatalf("%v\n%s", err, out)
		}
		if got := txt(); len(got) != 0 {
			t.Errorf("TXT %v after dns_sshdyn_rm", got)
		}
	})

	t.Run("primary without the TXT grant", func(t *testing.T) {
		bare := dnstest.Start(t, "bind", dnstest.Options{})
		dir := writeConfig(t, bare, bare.Addr, bare.KeyFile, `host="home.`+bare.Zone+`" `+home.line)
		dnstest.AppendFile(t, filepath.Join(dir, "sshdyn.toml"), "acme = true\n")
		r := runDaemon(t, dir).ssh(t, home, nil, "acme", "present", "home."+bare.Zone, v1)
		if r.code != 78 || !strings.Contains(r.stderr, "DNS primary rejected the update (refused); the server's operator must fix its configuration") {
			t.Errorf("exit %d, stderr %q; want 78", r.code, r.stderr)
		}
		if got := bare.Lookup(t, "_acme-challenge.home."+bare.Zone, dns.TypeTXT); len(got) != 0 {
			t.Errorf("TXT %v", got)
		}
	})
}

// TestWaitForSecondaries: with a real BIND or Knot secondary in
// wait_for, "acme present" and "update --wait" return once it serves the
// change; with the secondary stopped, exit 75 after wait_timeout, naming
// it.
func TestWaitForSecondaries(t *testing.T) {
	for _, kind := range []string{"bind", "knot"} {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			p, sec := dnstest.StartWithSecondary(t, kind, dnstest.Options{ACME: true})
			key := newClientKey(t, t.TempDir(), "home")
			host := "home." + p.Zone
			dir := writeConfig(t, p, p.Addr, p.KeyFile, `host="`+host+`" `+key.line)
			dnstest.AppendFile(t, filepath.Join(dir, "sshdyn.toml"), fmt.Sprintf("acme = true\nwait_for = [%q]\nwait_timeout = \"8s\"\n", sec.Addr))
			d := runDaemon(t, dir)
			const v1, v2 = "LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0", "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbA"

			if r := d.ssh(t, key, nil, "acme", "present", host, v1); r.code != 0 {
				t.Fatalf("acme present: %+v", r)
			}
			// At once: the command returned only when the secondary had it.
			if got := sec.Lookup(t, "_acme-challenge."+host, dns.TypeTXT); !slices.Equal(got, []string{v1}) {
				t.Errorf("the secondary serves TXT %v when acme present returned", got)
			}
			if r := d.ssh(t, key, nil, "update", "--wait"); r.code != 0 || r.stdout != "good "+host+" A 127.0.0.1\n" {
				t.Fatalf("update --wait: %+v", r)
			}
			if got := sec.Lookup(t, host, dns.TypeA); !slices.Equal(got, []string{"127.0.0.1"}) {
				t.Errorf("the secondary serves A %v when update --wait returned", got)
			}

			sec.Stop()
			start := time.Now()
			r := d.ssh(t, key, nil, "acme", "present", host, v2)
			took := time.Since(start)
			if r.code != 75 || !strings.Contains(r.stderr, "not served by "+sec.Addr) || strings.Count(r.stderr, "\n") != 1 {
				t.Errorf("with the secondary stopped: %+v; want exit 75 naming %s", r, sec.Addr)
			}
			if took < 8*time.Second || took > 20*time.Second {
				t.Errorf("gave up after %v, want about wait_timeout (8s)", took)
			}
			t.Logf("gave up after %v", took.Round(100*time.Millisecond))
			// The primary has the value all the same: the wait is about the
			// secondaries, and the next run finds it in place.
			if got := p.Lookup(t, "_acme-challenge."+host, dns.TypeTXT); !slices.Contains(got, v2) {
				t.Errorf("primary TXT %v", got)
			}
		})
	}
}
