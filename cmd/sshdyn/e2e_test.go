//go:build integration

package main

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
	gossh "golang.org/x/crypto/ssh"

	"github.com/sshdyn/sshdyn/internal/demotest"
	"github.com/sshdyn/sshdyn/internal/dnstest"
)

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "sshdyn-bin-")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "sshdyn")
	if out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building sshdyn: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// clientKey is an ed25519 key pair written as OpenSSH files.
type clientKey struct {
	path string // private key file, 0600
	line string // authorized_keys form of the public key
}

func newClientKey(t *testing.T, dir, name string) clientKey {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := gossh.MarshalPrivateKey(priv, name)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	pub, _ := gossh.NewPublicKey(priv.Public())
	return clientKey{path: path, line: strings.TrimSpace(string(gossh.MarshalAuthorizedKey(pub)))}
}

// daemon is a running "sshdyn serve".
type daemon struct {
	dir        string
	port4      string
	port6      string
	knownHosts string
	log        *dnstest.LogBuffer
	cmd        *exec.Cmd
	done       chan error
}

var listenRE = regexp.MustCompile(`msg=listening addr=(\S+)`)

// startDaemon writes a config for zone on primary p, with the given
// authorized lines and TSIG key file, and runs sshdyn serve.
func startDaemon(t *testing.T, p *dnstest.Server, keyFile string, authorizedLines ...string) *daemon {
	t.Helper()
	return startDaemonVia(t, p, p.Addr, keyFile, authorizedLines...)
}

// startDaemonVia is startDaemon with the primary reached at primary (a
// proxy in front of p, say).
func startDaemonVia(t *testing.T, p *dnstest.Server, primary, keyFile string, authorizedLines ...string) *daemon {
	t.Helper()
	return runDaemon(t, writeConfig(t, p, primary, keyFile, authorizedLines...))
}

// writeConfig writes sshdyn.toml and authorized_keys for zone p.Zone on
// primary into a new directory and returns it.
func writeConfig(t *testing.T, p *dnstest.Server, primary, keyFile string, authorizedLines ...string) string {
	t.Helper()
	dir := t.TempDir()
	cfg := fmt.Sprintf(`listen = ["127.0.0.1:0", "[::1]:0"]
host_key = "host_ed25519"
authorized_keys = "authorized_keys"
allow_private = true   # the tests connect from loopback
reload_interval = "0s" # SIGHUP only, so the reload test sees its own signal
[[zone]]
name = %q
primary = %q
tsig_key = %q
ttl = 60
timeout = "2s"
`, p.Zone, primary, keyFile)
	writeFile(t, filepath.Join(dir, "sshdyn.toml"), cfg)
	writeFile(t, filepath.Join(dir, "authorized_keys"), strings.Join(authorizedLines, "\n")+"\n")
	return dir
}

// runDaemon runs "sshdyn serve" with dir/sshdyn.toml, whose listen must
// be one IPv4 and one IPv6 address, and waits until it listens.
func runDaemon(t *testing.T, dir string) *daemon {
	t.Helper()
	d := &daemon{dir: dir, log: &dnstest.LogBuffer{}, done: make(chan error, 1)}
	d.cmd = exec.Command(binary, "serve", "--config", filepath.Join(dir, "sshdyn.toml"))
	d.cmd.Stderr = d.log
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { d.done <- d.cmd.Wait() }()
	t.Cleanup(func() {
		d.cmd.Process.Kill()
		<-d.done
		if t.Failed() {
			t.Logf("sshdyn log:\n%s", d.log.String())
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if m := listenRE.FindAllStringSubmatch(d.log.String(), -1); len(m) == 2 {
			d.port4 = m[0][1][strings.LastIndex(m[0][1], ":")+1:]
			d.port6 = m[1][1][strings.LastIndex(m[1][1], ":")+1:]
			break
		}
		select {
		case err := <-d.done:
			d.done <- err // for the cleanup
			t.Fatalf("sshdyn exited: %v\n%s", err, d.log.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	if d.port4 == "" {
		t.Fatalf("sshdyn did not start listening:\n%s", d.log.String())
	}
	// Pin the host key the daemon created, so ssh never asks.
	b, err := os.ReadFile(filepath.Join(dir, "host_ed25519"))
	if err != nil {
		t.Fatal(err)
	}
	signer, err := gossh.ParsePrivateKey(b)
	if err != nil {
		t.Fatal(err)
	}
	hk := strings.TrimSpace(string(gossh.MarshalAuthorizedKey(signer.PublicKey())))
	d.knownHosts = filepath.Join(dir, "known_hosts")
	writeFile(t, d.knownHosts, fmt.Sprintf("[127.0.0.1]:%s %s\n[::1]:%s %s\n", d.port4, hk, d.port6, hk))
	return d
}

type sshResult struct {
	stdout, stderr string
	code           int
}

// waitLog waits up to 5 s for s to appear in the daemon's log: the log
// comes through a pipe and may land after the client has exited.
func (d *daemon) waitLog(t *testing.T, s string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(d.log.String(), s) {
		if time.Now().After(deadline) {
			t.Errorf("no %q in the log:\n%s", s, d.log.String())
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// ssh runs the real OpenSSH client against d. opts go before the host:
// "-6" connects to ::1, "-b", "127.0.0.2" picks the source address.
func (d *daemon) ssh(t *testing.T, key clientKey, opts []string, command ...string) sshResult {
	t.Helper()
	cmd := d.sshCommand(key, opts, command...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	cmd.Stdin = strings.NewReader("")
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("running ssh: %v", err)
	}
	return sshResult{stdout: out.String(), stderr: errb.String(), code: code}
}

// sshCommand returns the ssh command line that logs in to d with key.
func (d *daemon) sshCommand(key clientKey, opts []string, command ...string) *exec.Cmd {
	host, port := "127.0.0.1", d.port4
	if slices.Contains(opts, "-6") {
		host, port = "::1", d.port6
	}
	args := []string{"-F", "/dev/null", "-T", "-i", key.path, "-p", port,
		"-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes", "-o", "IdentityAgent=none",
		"-o", "StrictHostKeyChecking=yes", "-o", "UserKnownHostsFile=" + d.knownHosts,
		"-o", "ConnectTimeout=10", "-o", "LogLevel=ERROR"}
	args = append(args, opts...)
	args = append(args, "anyuser@"+host)
	args = append(args, command...)
	return exec.Command("ssh", args...)
}

func TestEndToEnd(t *testing.T) {
	if _, err := exec.LookPath("ssh"); err != nil {
		t.Fatal("OpenSSH client not found: install openssh-client (scripts/test.sh does)")
	}
	for _, kind := range dnstest.Kinds {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			p := dnstest.Start(t, kind, dnstest.Options{Records: []string{"other 300 A 192.0.2.99"}})
			keys := t.TempDir()
			home := newClientKey(t, keys, "home")
			other := newClientKey(t, keys, "other")
			stranger := newClientKey(t, keys, "stranger")
			d := startDaemon(t, p, p.KeyFile,
				`host="home.`+p.Zone+`" `+home.line+" home",
				`host="other.`+p.Zone+`",ttl=300 `+other.line+" other")
			homeHost := "home." + p.Zone
			expect := func(r sshResult, code int, stdout, stderrPart string) {
				t.Helper()
				if r.code != code || r.stdout != stdout || !strings.Contains(r.stderr, stderrPart) {
					t.Fatalf("ssh = exit %d, stdout %q, stderr %q; want exit %d, stdout %q, stderr containing %q",
						r.code, r.stdout, r.stderr, code, stdout, stderrPart)
				}
			}
			a := func() []string { return p.Lookup(t, homeHost, dns.TypeA) }

			serial := p.Serial(t)
			expect(d.ssh(t, home, nil, "update"), 0, "good "+homeHost+" A 127.0.0.1\n", "")
			if got := a(); !slices.Equal(got, []string{"127.0.0.1"}) {
				t.Fatalf("A = %v after update", got)
			}
			if got := p.Serial(t); got != serial+1 {
				t.Errorf("serial = %d after first update, want %d", got, serial+1)
			}

			serial = p.Serial(t)
			expect(d.ssh(t, home, nil, "update", homeHost), 0, "nochg "+homeHost+" A 127.0.0.1\n", "")
			if got := p.Serial(t); got != serial {
				t.Errorf("serial moved on nochg: %d -> %d", serial, got)
			}

			// A new address (another source in 127/8) changes the record.
			expect(d.ssh(t, home, []string{"-b", "127.0.0.2"}, "update"), 0, "good "+homeHost+" A 127.0.0.2\n", "")
			if got := a(); !slices.Equal(got, []string{"127.0.0.2"}) {
				t.Fatalf("A = %v after update from 127.0.0.2", got)
			}

			// IPv6 sets AAAA and leaves A alone.
			expect(d.ssh(t, home, []string{"-6"}, "update"), 0, "good "+homeHost+" AAAA ::1\n", "")
			if got := p.Lookup(t, homeHost, dns.TypeAAAA); !slices.Equal(got, []string{"::1"}) {
				t.Errorf("AAAA = %v", got)
			}
			if got := a(); !slices.Equal(got, []string{"127.0.0.2"}) {
				t.Errorf("A changed by an IPv6 update: %v", got)
			}

			expect(d.ssh(t, home, []string{"-b", "127.0.0.3"}, "ip"), 0, "127.0.0.3\n", "")
			// The records, then the state store's "# " lines (which may lag
			// the update by the writer's batch).
			r0 := d.ssh(t, home, nil, "status")
			r0.stdout = records(r0.stdout)
			expect(r0, 0, homeHost+" A 127.0.0.2 60\n"+homeHost+" AAAA ::1 60\n", "")
			r := d.ssh(t, home, nil, "help")
			if r.code != 0 || !strings.Contains(r.stdout, "update [--wait] [--json] [HOST...]") || !strings.Contains(r.stdout, "acme present NAME VALUE") {
				t.Errorf("help = %+v", r)
			}
			// No command: a shell request.
			r = d.ssh(t, home, nil)
			if r.code != 64 || r.stdout != "" || !strings.Contains(r.stderr, "usage:") {
				t.Errorf("no command = %+v, want usage on stderr and exit 64", r)
			}
			expect(d.ssh(t, home, nil, "frobnicate"), 64, "", `unknown command "frobnicate"`)

			// Refusals change nothing.
			serial = p.Serial(t)
			expect(d.ssh(t, home, nil, "update", "other."+p.Zone), 77, "", "not one of this key's hosts")
			r = d.ssh(t, stranger, nil, "update")
			if r.code != 255 || r.stdout != "" {
				t.Errorf("unknown key = %+v, want ssh's exit 255", r)
			}
			if got := p.Lookup(t, "other."+p.Zone, dns.TypeA); !slices.Equal(got, []string{"192.0.2.99"}) {
				t.Errorf("other's A = %v after refused updates", got)
			}
			if got := p.Serial(t); got != serial {
				t.Errorf("serial moved on refused updates")
			}

			// The per-key TTL applies.
			expect(d.ssh(t, other, nil, "update"), 0, "good other."+p.Zone+" A 127.0.0.1\n", "")
			if ttl := p.TTL(t, "other."+p.Zone, dns.TypeA); ttl != 300 {
				t.Errorf("other's TTL = %d, want 300 from ttl= in the authorized file", ttl)
			}

			// A wrong TSIG secret: the operator's fault, exit 78, DNS unchanged.
			bad := filepath.Join(t.TempDir(), "bad.key")
			writeFile(t, bad, "hmac-sha256:"+strings.TrimSuffix(p.Key.Name, ".")+":"+"d3Jvbmctc2VjcmV0LXdyb25nLXNlY3JldA==\n")
			d2 := startDaemon(t, p, bad, `host="home.`+p.Zone+`" `+home.line)
			serial = p.Serial(t)
			expect(d2.ssh(t, home, []string{"-b", "127.0.0.4"}, "update"), 78, "", "DNS primary rejected the update (credentials)")
			if got := a(); !slices.Equal(got, []string{"127.0.0.2"}) || p.Serial(t) != serial {
				t.Errorf("A = %v after a rejected update", got)
			}
			// The log goes through a pipe: it may land after ssh exits.
			// PowerDNS answers an unsigned REFUSED, not BADSIG.
			if kind == "pdns" {
				d2.waitLog(t, "REFUSED reply is not signed with TSIG")
			} else {
				d2.waitLog(t, "BADSIG")
			}

			// An update policy that does not grant A: exit 78, nothing
			// written. PowerDNS answers NOERROR and skips the record; the
			// confirmation after the replace catches it.
			narrow := dnstest.Start(t, kind, dnstest.Options{Types: []string{"AAAA"}})
			d3 := startDaemon(t, narrow, narrow.KeyFile, `host="home.`+narrow.Zone+`" `+home.line)
			serial = narrow.Serial(t)
			want := map[string]string{"bind": "(refused)", "knot": "(credentials)", "pdns": "(ignored)", "sshdyn": "(refused)"}[kind]
			expect(d3.ssh(t, home, nil, "update"), 78, "", "DNS primary rejected the update "+want)
			if got := narrow.Lookup(t, homeHost, dns.TypeA); len(got) != 0 || narrow.Serial(t) != serial {
				t.Errorf("A = %v after an update the policy refused", got)
			}
			if kind == "pdns" {
				d3.waitLog(t, "did not apply the change")
			}

			// Primary down: temporary failure, 75.
			p.Stop()
			expect(d.ssh(t, home, []string{"-b", "127.0.0.5"}, "update"), 75, "", "temporary failure")
		})
	}
}

func TestBadAuthorizedFileRefusesToStart(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "sshdyn.toml"), `listen = ["127.0.0.1:0"]
host_key = "hk"
authorized_keys = "keys"
[[zone]]
name = "dyn.example.com"
primary = "127.0.0.1:1"
tsig_key = "tsig.key"
`)
	writeFile(t, filepath.Join(dir, "tsig.key"), "hmac-sha256:k:c2VjcmV0c2VjcmV0c2VjcmV0\n")
	writeFile(t, filepath.Join(dir, "keys"), "# ok\nhost=\"a.dyn.example.com\" ssh-ed25519 AAAAnotakey\n")
	out, err := exec.Command(binary, "serve", "--config", filepath.Join(dir, "sshdyn.toml")).CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("err = %v, want exit 1", err)
	}
	if want := filepath.Join(dir, "keys") + ":2: no valid public key"; !strings.Contains(string(out), want) {
		t.Errorf("output %q does not contain %q", out, want)
	}
}

func writeFile(t *testing.T, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestReloadAndShutdown: SIGHUP swaps in an edited authorized file, a
// broken edit of a line keeps that key's previous options, SIGTERM exits 0.
func TestReloadAndShutdown(t *testing.T) {
	p := dnstest.Start(t, "bind", dnstest.Options{})
	keys := t.TempDir()
	one := newClientKey(t, keys, "one")
	two := newClientKey(t, keys, "two")
	d := startDaemon(t, p, p.KeyFile, `host="one.`+p.Zone+`" `+one.line)
	authFile := filepath.Join(d.dir, "authorized_keys")
	hup := func(wantLog string) {
		t.Helper()
		n := strings.Count(d.log.String(), wantLog)
		if err := d.cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(5 * time.Second)
		for strings.Count(d.log.String(), wantLog) == n {
			if time.Now().After(deadline) {
				t.Fatalf("no %q in the log after SIGHUP:\n%s", wantLog, d.log.String())
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	if r := d.ssh(t, two, nil, "update"); r.code != 255 {
		t.Fatalf("key two before reload: %+v", r)
	}
	writeFile(t, authFile, `host="two.`+p.Zone+`" `+two.line+"\n")
	hup("msg=reloaded")
	if r := d.ssh(t, two, nil, "update"); r.code != 0 || r.stdout != "good two."+p.Zone+" A 127.0.0.1\n" {
		t.Fatalf("key two after reload: %+v", r)
	}
	if r := d.ssh(t, one, nil, "update"); r.code != 255 {
		t.Fatalf("removed key one still works: %+v", r)
	}
	// A broken edit of two's line keeps its previous options.
	writeFile(t, authFile, `host="two.`+p.Zone+`",colour="red" `+two.line+"\n")
	hup("authorized file has bad lines")
	if !strings.Contains(d.log.String(), `authorized_keys:1: option \"colour\" is not supported`) {
		t.Errorf("reload error does not name file:line:\n%s", d.log.String())
	}
	if r := d.ssh(t, two, nil, "update"); r.code != 0 || !strings.HasPrefix(r.stdout, "nochg ") {
		t.Fatalf("key two lost after a broken edit of its line: %+v", r)
	}
	// A setting SIGHUP cannot apply is named in the log, not ignored
	// without a word.
	cfgPath := filepath.Join(d.dir, "sshdyn.toml")
	b, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, cfgPath, "http_listen = [\"127.0.0.1:0\"]\n"+strings.Replace(string(b), "ttl = 60", "ttl = 90", 1))
	hup("a setting changed that only a restart applies")
	for _, key := range []string{"setting=http_listen", `setting="zone ` + p.Zone + `: ttl"`} {
		d.waitLog(t, key)
	}

	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-d.done:
		d.done <- err // for the cleanup
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("sshdyn did not exit after SIGTERM")
	}
}

func TestVersionAndHelp(t *testing.T) {
	out, err := exec.Command(binary, "version").Output()
	if err != nil || !regexp.MustCompile(`^sshdyn \S+ \(go1\.\d+\.\d+, commit \S+`).Match(out) {
		t.Errorf("version: %q, %v; want the version, the Go version and the commit", out, err)
	}
	out, err = exec.Command(binary, "help").Output()
	if err != nil {
		t.Fatal(err)
	}
	golden, err := os.ReadFile("testdata/help.golden")
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != string(golden) {
		t.Errorf("help output differs from testdata/help.golden:\n%s", out)
	}
	if err := exec.Command(binary, "frob").Run(); err == nil {
		t.Error("unknown command exited 0")
	}
}

// TestShutdownLetsUpdatesFinish: SIGTERM during an update (the primary
// answers slowly) stops new connections, lets the update finish, and
// exits 0.
func TestShutdownLetsUpdatesFinish(t *testing.T) {
	p := dnstest.Start(t, "knot", dnstest.Options{})
	key := newClientKey(t, t.TempDir(), "k")
	proxy := dnstest.SlowProxy(t, p.Addr, 700*time.Millisecond)
	d := startDaemonVia(t, p, proxy.Addr, p.KeyFile, `host="slow.`+p.Zone+`" `+key.line)

	result := make(chan sshResult, 1)
	go func() { result <- d.ssh(t, key, nil, "update") }()
	// SIGTERM once the update is talking to the primary.
	select {
	case <-proxy.Accepted:
	case <-time.After(10 * time.Second):
		t.Fatal("the update never reached the primary")
	}
	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	r := <-result
	if r.code != 0 || r.stdout != "good slow."+p.Zone+" A 127.0.0.1\n" {
		t.Fatalf("update during shutdown = %+v", r)
	}
	select {
	case err := <-d.done:
		d.done <- err
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("no exit after SIGTERM")
	}
	if got := p.Lookup(t, "slow."+p.Zone, dns.TypeA); len(got) != 1 || got[0] != "127.0.0.1" {
		t.Errorf("A = %v", got)
	}
	if c, err := net.Dial("tcp", "127.0.0.1:"+d.port4); err == nil {
		c.Close()
		t.Error("still accepting connections after SIGTERM")
	}
}

// TestKillMidUpdate: SIGKILL at points through an update (check, then
// replace, each slowed by a proxy) leaves the old or the new RRset, never
// a mix; the next update repairs it.
func TestKillMidUpdate(t *testing.T) {
	p := dnstest.Start(t, "bind", dnstest.Options{Records: []string{"crash 60 A 127.0.0.9"}})
	key := newClientKey(t, t.TempDir(), "k")
	line := `host="crash.` + p.Zone + `" ` + key.line
	host := "crash." + p.Zone
	old := "127.0.0.9"
	for i, delay := range []time.Duration{100, 700, 1300, 1900, 2600} {
		src := "127.0.0." + strconv.Itoa(1+i%2)
		proxy := dnstest.SlowProxy(t, p.Addr, 600*time.Millisecond)
		d := startDaemonVia(t, p, proxy.Addr, p.KeyFile, line)
		done := make(chan sshResult, 1)
		go func() { done <- d.ssh(t, key, []string{"-b", src}, "update") }()
		time.Sleep(delay * time.Millisecond)
		d.cmd.Process.Kill()
		<-done
		got := p.Lookup(t, host, dns.TypeA)
		if len(got) != 1 || (got[0] != old && got[0] != src) {
			t.Fatalf("kill after %dms: A = %v, want [%s] or [%s]", delay, got, old, src)
		}
		t.Logf("kill after %dms: A = %v (old %s, new %s)", delay, got, old, src)

		// The next update, through a healthy daemon, repairs it.
		d2 := startDaemon(t, p, p.KeyFile, line)
		r := d2.ssh(t, key, []string{"-b", src}, "update")
		if r.code != 0 || (r.stdout != "good "+host+" A "+src+"\n" && r.stdout != "nochg "+host+" A "+src+"\n") {
			t.Fatalf("repair = %+v", r)
		}
		if got := p.Lookup(t, host, dns.TypeA); len(got) != 1 || got[0] != src {
			t.Fatalf("after repair A = %v, want [%s]", got, src)
		}
		old = src
	}
}

// records is demotest.Records: status's records without the store's
// comment lines.
func records(stdout string) string { return demotest.Records(stdout) }
