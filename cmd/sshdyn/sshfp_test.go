//go:build integration && linux

package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/sshdyn/sshdyn/internal/dnstest"
)

// TestSSHFPVerifyHostKeyDNS is the SSHFP story end to end, with real
// parts: a key owner pipes "ssh-keygen -r HOST" of a real sshd's host key
// into "ssh SERVER sshfp HOST"; sshdyn signs the zone (dnssec = true);
// in a network namespace of the test's own, a validating unbound, whose
// only trust anchor is the DS "sshdyn dnssec ds" prints and whose stub
// for the zone is sshdyn (through a relay), resolves for OpenSSH; and
// OpenSSH with VerifyHostKeyDNS=yes and no known_hosts accepts the
// sshd's key as "matching host key fingerprint found in DNS", from
// secure (validated) records. A host whose published fingerprint is
// another key's is refused. Bad input changes nothing.
func TestSSHFPVerifyHostKeyDNS(t *testing.T) {
	for _, bin := range []string{"ssh", "ssh-keygen", "/usr/sbin/sshd", "/usr/sbin/unbound", "ip", "dig"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Fatalf("%s not found: scripts/test.sh installs openssh-client, openssh-server, unbound, iproute2 and bind9-dnsutils", bin)
		}
	}
	dir := t.TempDir()
	zoneFile := filepath.Join(dir, "dyn.example.com.zone")
	addr, _ := embeddedConfig(t, dir, zoneFile, "", "dnssec = true\nttl = 60\nupdate_types = [\"A\", \"AAAA\", \"SSHFP\"]\n")
	cfgPath := filepath.Join(dir, "sshdyn.toml")
	prependConfig(t, cfgPath, "allow_private = true\n")
	owner := newClientKey(t, dir, "owner")
	plain := newClientKey(t, dir, "plain")
	writeFile(t, filepath.Join(dir, "authorized_keys"),
		`sshfp,host="home.dyn.example.com",host="bad.dyn.example.com" `+owner.line+"\n"+
			`host="other.dyn.example.com" `+plain.line+"\n")
	d := runDaemon(t, dir)
	d.waitLog(t, "zone signed")
	ds, code := runCommand(t, "dnssec", "ds", "--config", cfgPath, "dyn.example.com")
	if code != 0 {
		t.Fatalf("dnssec ds: %s", ds)
	}

	// The real sshd and its host key; another key, whose fingerprint is
	// the wrong one for bad.dyn.example.com.
	hostKey := filepath.Join(dir, "ssh_host_ed25519_key")
	wrongKey := filepath.Join(dir, "wrong_ed25519_key")
	for _, k := range []string{hostKey, wrongKey} {
		if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", k).CombinedOutput(); err != nil {
			t.Fatalf("ssh-keygen: %v %s", err, out)
		}
	}
	keygenR := func(host, key string) string {
		out, err := exec.Command("ssh-keygen", "-r", host, "-f", key+".pub").Output()
		if err != nil {
			t.Fatalf("ssh-keygen -r: %v", err)
		}
		return string(out)
	}
	sshfp := func(key clientKey, stdin string, args ...string) sshResult {
		t.Helper()
		cmd := d.sshCommand(key, nil, append([]string{"sshfp"}, args...)...)
		var out, errb bytes.Buffer
		cmd.Stdin, cmd.Stdout, cmd.Stderr = strings.NewReader(stdin), &out, &errb
		err := cmd.Run()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return sshResult{stdout: out.String(), stderr: errb.String(), code: code}
	}
	records := keygenR("home.dyn.example.com", hostKey)
	if !strings.Contains(records, "IN SSHFP 4 1 ") || !strings.Contains(records, "IN SSHFP 4 2 ") {
		t.Fatalf("ssh-keygen -r printed:\n%s", records)
	}
	// Bad input first: nothing changes.
	for _, bad := range []struct {
		key   clientKey
		in    string
		args  []string
		code  int
		words string
	}{
		{owner, "not a key\n", []string{"home.dyn.example.com"}, 64, "line 1: neither an SSHFP record"},
		{owner, keygenR("other.dyn.example.com", hostKey), []string{"home.dyn.example.com"}, 64, "other.dyn.example.com is not a host named in the command"},
		{owner, "", []string{"home.dyn.example.com"}, 64, "no SHA-256 fingerprint for home.dyn.example.com"},
		{owner, records, []string{"other.dyn.example.com"}, 64, "is not a host named"},
		{plain, keygenR("other.dyn.example.com", hostKey), []string{"other.dyn.example.com"}, 77, "its line needs the sshfp option"},
	} {
		if r := sshfp(bad.key, bad.in, bad.args...); r.code != bad.code || !strings.Contains(r.stderr, bad.words) {
			t.Errorf("sshfp %v with %q: exit %d, %q; want %d and %q", bad.args, bad.in, r.code, r.stderr, bad.code, bad.words)
		}
	}
	serial := querySerial(t, addr)
	if serial == 0 {
		t.Fatal("no serial")
	}
	if r := sshfp(owner, records, "home.dyn.example.com"); r.code != 0 || r.stdout != "good home.dyn.example.com SSHFP 1\n" || !strings.Contains(r.stderr, "skipped 1 SHA-1 fingerprint") {
		t.Fatalf("sshfp: exit %d %q %q", r.code, r.stdout, r.stderr)
	}
	if got := querySerial(t, addr); got != serial+1 {
		t.Errorf("serial %d after the bad inputs and one sshfp, want %d", got, serial+1)
	}
	if r := sshfp(owner, records, "home.dyn.example.com"); r.code != 0 || r.stdout != "nochg home.dyn.example.com SSHFP 1\n" {
		t.Errorf("sshfp again: exit %d %q %q", r.code, r.stdout, r.stderr)
	}
	if r := sshfp(owner, keygenR("bad.dyn.example.com", wrongKey), "bad.dyn.example.com"); r.code != 0 {
		t.Fatalf("sshfp bad: exit %d %q %q", r.code, r.stdout, r.stderr)
	}
	if r := d.ssh(t, owner, nil, "update"); r.code != 0 {
		t.Fatalf("update: %d %q %q", r.code, r.stdout, r.stderr)
	}

	// The namespace: unbound on its 127.0.0.1:53, validating with the DS
	// as its trust anchor, sshdyn reached through a relay; sshd on its
	// loopback; glibc's resolver told to pass the AD bit on.
	n := newNetns(t)
	writeFile(t, filepath.Join("/etc/netns", n.name, "resolv.conf"), "nameserver 127.0.0.1\noptions edns0 trust-ad\n")
	n.relay(t, "127.0.0.1:5300", addr)
	var anchor strings.Builder
	for _, line := range strings.Split(strings.TrimSpace(ds), "\n") {
		fmt.Fprintf(&anchor, "  trust-anchor: %q\n", strings.Join(strings.Fields(line), " "))
	}
	unboundConf := filepath.Join(dir, "unbound.conf")
	writeFile(t, unboundConf, fmt.Sprintf(`server:
  interface: 127.0.0.1
  port: 53
  do-ip6: no
  do-daemonize: no
  use-syslog: no
  logfile: ""
  username: ""
  chroot: ""
  directory: %q
  pidfile: ""
  do-not-query-localhost: no
  tcp-upstream: yes
  module-config: "validator iterator"
  val-log-level: 2
%sstub-zone:
  name: "dyn.example.com"
  stub-addr: 127.0.0.1@5300
`, dir, anchor.String()))
	startIn(t, n, "unbound", "/usr/sbin/unbound", "-d", "-c", unboundConf)
	sshdConf := filepath.Join(dir, "sshd_config")
	writeFile(t, sshdConf, fmt.Sprintf("Port 2022\nListenAddress 127.0.0.1\nHostKey %s\nPidFile none\nUsePAM no\nStrictModes no\n", hostKey))
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil { // sshd's privilege separation directory
		t.Fatal(err)
	}
	startIn(t, n, "sshd", "/usr/sbin/sshd", "-D", "-e", "-f", sshdConf)

	// The resolver validates: the AD flag on the SSHFP answer.
	var dig []byte
	for deadline := time.Now().Add(15 * time.Second); ; {
		dig, _ = n.command("dig", "+dnssec", "+tries=1", "+time=2", "home.dyn.example.com", "SSHFP").CombinedOutput()
		if bytes.Contains(dig, []byte(" ad;")) || bytes.Contains(dig, []byte(" ad ")) || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if !bytes.Contains(dig, []byte("status: NOERROR")) || !bytes.Contains(dig, []byte("SSHFP\t4 2 ")) || !bytes.Contains(dig, []byte(" ad")) {
		t.Fatalf("unbound does not validate the SSHFP records:\n%s", dig)
	}

	connect := func(host string) string {
		out, _ := n.command("ssh", "-v", "-F", "/dev/null", "-p", "2022",
			"-o", "VerifyHostKeyDNS=yes", "-o", "StrictHostKeyChecking=yes",
			"-o", "UserKnownHostsFile=/dev/null", "-o", "GlobalKnownHostsFile=/dev/null",
			"-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes", "-o", "IdentityFile=/dev/null", "-o", "ConnectTimeout=10",
			"nobody@"+host, "true").CombinedOutput()
		return string(out)
	}
	out := connect("home.dyn.example.com")
	if os.Getenv("SSHFP_SHOW") != "" {
		t.Log(out)
	}
	if !strings.Contains(out, "found 1 secure fingerprints in DNS") || !strings.Contains(out, "debug1: matching host key fingerprint found in DNS") ||
		strings.Contains(out, "Host key verification failed") || !strings.Contains(out, "Authentications that can continue") {
		t.Errorf("OpenSSH did not verify the host key by DNS, and go on to log in:\n%s", out)
	}
	out = connect("bad.dyn.example.com")
	if !strings.Contains(out, "Host key verification failed") || !strings.Contains(out, "mismatching host key fingerprint found in DNS") {
		t.Errorf("OpenSSH accepted a host key whose published fingerprint is another's:\n%s", out)
	}
	if r := sshfp(owner, "", "--clear", "bad.dyn.example.com"); r.code != 0 || r.stdout != "good bad.dyn.example.com SSHFP 0\n" {
		t.Errorf("sshfp --clear: exit %d %q %q", r.code, r.stdout, r.stderr)
	}
}

// startIn runs a daemon in the namespace until the test ends.
func startIn(t *testing.T, n *netns, what string, args ...string) {
	t.Helper()
	cmd := n.command(args[0], args[1:]...)
	log := &dnstest.LogBuffer{}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-done
		if t.Failed() {
			t.Logf("%s's output:\n%s", what, log.String())
		}
	})
}

// querySerial asks the server at addr for dyn.example.com's SOA serial.
func querySerial(t *testing.T, addr string) uint32 {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion("dyn.example.com.", dns.TypeSOA)
	r, err := dns.Exchange(m, addr)
	if err != nil || len(r.Answer) == 0 {
		t.Fatalf("SOA from %s: %v %v", addr, err, r)
	}
	return r.Answer[0].(*dns.SOA).Serial
}
