//go:build integration

package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
	gossh "golang.org/x/crypto/ssh"

	"github.com/sshdyn/sshdyn/internal/dnstest"
)

// sshKeygen runs ssh-keygen in dir.
func sshKeygen(t *testing.T, dir string, args ...string) {
	t.Helper()
	cmd := exec.Command("ssh-keygen", args...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// signCert makes a key and a certificate for it, signed by ca with the
// given ssh-keygen options, and returns the key and the certificate's
// path (apart from the key, so that ssh offers it only when told to).
func signCert(t *testing.T, dir, ca, name string, opts ...string) (clientKey, string) {
	t.Helper()
	k := newClientKey(t, dir, name)
	writeFile(t, k.path+".pub", k.line+"\n")
	sshKeygen(t, dir, append(append([]string{"-q", "-s", ca}, opts...), name+".pub")...)
	crt := filepath.Join(dir, name+".crt")
	if err := os.Rename(filepath.Join(dir, name+"-cert.pub"), crt); err != nil {
		t.Fatal(err)
	}
	return k, crt
}

// TestCertificates: OpenSSH certificates made by the real ssh-keygen, used
// by the real ssh: principals are the hosts a certificate may update, as
// far as its CA's line allows; invalid, foreign, host, restricted and
// revoked certificates are refused, a revoked one also on a connection
// that is open.
func TestCertificates(t *testing.T) {
	p := dnstest.Start(t, "sshdyn", dnstest.Options{})
	dir := t.TempDir()
	sshKeygen(t, dir, "-q", "-t", "ed25519", "-N", "", "-f", "ca")
	sshKeygen(t, dir, "-q", "-t", "ed25519", "-N", "", "-f", "ca2")
	caPub, err := os.ReadFile(filepath.Join(dir, "ca.pub"))
	if err != nil {
		t.Fatal(err)
	}
	fleet := "fleet." + p.Zone
	cfgDir := writeConfig(t, p, p.Addr, p.KeyFile, `cert-authority,host="*.`+fleet+`",ttl=120 `+strings.TrimSpace(string(caPub)))
	krlPath := filepath.Join(dir, "revoked.krl")
	sshKeygen(t, dir, "-k", "-f", krlPath) // empty
	cfg := filepath.Join(cfgDir, "sshdyn.toml")
	b, _ := os.ReadFile(cfg)
	// No login penalty: each refusal below must be the certificate's own.
	writeFile(t, cfg, "revoked_keys = "+strconv.Quote(krlPath)+"\nauth_fail_penalty = \"0s\"\n"+string(b))
	d := runDaemon(t, cfgDir)
	withCert := func(crt string) []string { return []string{"-o", "CertificateFile=" + crt} }

	one, oneCrt := signCert(t, dir, "ca", "one", "-I", "machine-one", "-n", "a."+fleet, "-z", "10", "-V", "+1h")
	two, twoCrt := signCert(t, dir, "ca", "two", "-I", "machine-two", "-n", "b."+fleet+",c."+fleet, "-z", "11")
	mixed, mixedCrt := signCert(t, dir, "ca", "mixed", "-I", "mixed", "-n", "d."+fleet+",home."+p.Zone+","+fleet, "-z", "12")
	src, srcCrt := signCert(t, dir, "ca", "src", "-I", "src", "-n", "e."+fleet, "-O", "source-address=127.0.0.0/8")

	t.Run("accepted", func(t *testing.T) {
		for _, c := range []struct {
			key  clientKey
			crt  string
			want string
		}{
			{one, oneCrt, "good a." + fleet + " A 127.0.0.1\n"},
			{two, twoCrt, "good b." + fleet + " A 127.0.0.1\ngood c." + fleet + " A 127.0.0.1\n"},
			{mixed, mixedCrt, "good d." + fleet + " A 127.0.0.1\n"}, // only the principal the CA line allows
			{src, srcCrt, "good e." + fleet + " A 127.0.0.1\n"},
		} {
			if r := d.ssh(t, c.key, withCert(c.crt), "update"); r.code != 0 || r.stdout != c.want {
				t.Errorf("%s: %+v, want %q", filepath.Base(c.crt), r, c.want)
			}
		}
		if got := p.TTL(t, "a."+fleet, dns.TypeA); got != 120 {
			t.Errorf("TTL %d, want the CA line's 120", got)
		}
		if got := p.Lookup(t, "home."+p.Zone, dns.TypeA); len(got) != 0 {
			t.Errorf("a principal outside the CA line's patterns was updated: %v", got)
		}
		r := d.ssh(t, one, withCert(oneCrt), "status")
		if r.code != 0 || !strings.Contains(r.stdout, `# certificate id "machine-one" serial 10, principals used a.`+fleet) {
			t.Errorf("status does not name the certificate: %+v", r)
		}
		if !strings.Contains(d.log.String(), `certificate id=\"machine-one\" serial=10`) {
			t.Errorf("the log does not name the certificate:\n%s", d.log.String())
		}
	})

	t.Run("plink", func(t *testing.T) {
		// PuTTY 0.78 keeps the certificate in the .ppk (puttygen
		// --certificate).
		k, crt := signCert(t, dir, "ca", "putty", "-I", "putty", "-n", "g."+fleet)
		ppk := k.path + ".ppk"
		if out, err := exec.Command("puttygen", k.path, "--certificate", crt, "-O", "private", "-o", ppk).CombinedOutput(); err != nil {
			t.Fatalf("puttygen: %v\n%s", err, out)
		}
		signer, err := gossh.ParsePrivateKey(mustRead(t, filepath.Join(cfgDir, "host_ed25519")))
		if err != nil {
			t.Fatal(err)
		}
		r := runClient(t, t.TempDir(), "plink", "-batch", "-i", ppk, "-hostkey", gossh.FingerprintSHA256(signer.PublicKey()), "-P", d.port4, "127.0.0.1", "update")
		if r.code != 0 || r.stdout != "good g."+fleet+" A 127.0.0.1\n" {
			t.Errorf("plink with a certificate: %+v", r)
		}
	})

	t.Run("refused", func(t *testing.T) {
		refused := []struct {
			name string
			opts []string
			ca   string
			why  string // in the log line that refuses it; "" if ssh does not offer it
		}{
			{"no allowed principal", []string{"-n", "home." + p.Zone}, "ca", "no principal that line 1 allows"},
			{"expired", []string{"-n", "f." + fleet, "-V", "20200101:20200102"}, "ca", "cert has expired"},
			{"not yet valid", []string{"-n", "f." + fleet, "-V", "+1d:+2d"}, "ca", "cert is not yet valid"},
			{"untrusted CA", []string{"-n", "f." + fleet}, "ca2", "signed by unrecognized authority"},
			// OpenSSH does not even offer a host certificate for a login
			// (sshd.TestCertificateChecks has one offered, and refused).
			{"host certificate", []string{"-h", "-n", "f." + fleet}, "ca", ""},
			{"source-address elsewhere", []string{"-n", "f." + fleet, "-O", "source-address=192.0.2.0/24"}, "ca", "source-address 192.0.2.0/24 does not allow 127.0.0.1"},
			{"unknown critical option", []string{"-n", "f." + fleet, "-O", "critical:verify-required-by-someone"}, "ca", "unsupported critical option"},
			{"force-command", []string{"-n", "f." + fleet, "-O", "force-command=/bin/true"}, "ca", "unsupported critical option"},
		}
		for i, c := range refused {
			id := "refused-" + strconv.Itoa(i)
			k, crt := signCert(t, dir, c.ca, id, append([]string{"-I", id}, c.opts...)...)
			if r := d.ssh(t, k, withCert(crt), "update"); r.code != 255 {
				t.Errorf("%s: %+v, want 255", c.name, r)
			}
			if c.why != "" && !slices.ContainsFunc(strings.Split(d.log.String(), "\n"), func(l string) bool {
				return strings.Contains(l, "key refused") && strings.Contains(l, `id=\"`+id+`\"`) && strings.Contains(l, c.why)
			}) {
				t.Errorf("%s: no log line refusing %s for %q", c.name, id, c.why)
			}
		}
		// The key of a certificate, without it.
		if r := d.ssh(t, one, []string{"-o", "CertificateFile=none"}, "update"); r.code != 255 {
			t.Errorf("the key without its certificate: %+v", r)
		}
		if got := p.Lookup(t, "f."+fleet, dns.TypeA); len(got) != 0 {
			t.Errorf("f A = %v", got)
		}
	})

	t.Run("revoked", func(t *testing.T) {
		// An open connection of two's (ssh -N as a control master).
		ctl := filepath.Join(dir, "ctl")
		master := d.sshCommand(two, append(withCert(twoCrt), "-N", "-o", "ControlMaster=yes", "-o", "ControlPath="+ctl))
		var merr strings.Builder
		master.Stderr = &merr
		if err := master.Start(); err != nil {
			t.Fatal(err)
		}
		defer master.Process.Kill()
		waitFor(t, "the control master", func() bool {
			_, err := os.Stat(ctl)
			if master.ProcessState != nil {
				t.Fatalf("the control master exited: %s", merr.String())
			}
			return err == nil
		})
		if r := d.ssh(t, two, []string{"-o", "ControlPath=" + ctl}, "ip"); r.code != 0 {
			t.Fatalf("command over the open connection: %+v", r)
		}
		// Serial 10 (one), key ID "mixed", and src's key.
		writeFile(t, filepath.Join(dir, "spec"), "serial: 10\nid: mixed\nid: machine-two\n")
		sshKeygen(t, dir, "-k", "-u", "-f", krlPath, "-s", "ca.pub", "spec")
		sshKeygen(t, dir, "-k", "-u", "-f", krlPath, "src.pub")
		if err := d.cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the reload", func() bool { return strings.Contains(d.log.String(), "reloaded revoked keys") })
		for name, c := range map[string]struct {
			key clientKey
			crt string
		}{"by serial": {one, oneCrt}, "by key ID": {mixed, mixedCrt}, "by key": {src, srcCrt}} {
			if r := d.ssh(t, c.key, withCert(c.crt), "update"); r.code != 255 {
				t.Errorf("revoked %s: %+v, want 255", name, r)
			}
		}
		done := make(chan error, 1)
		go func() { done <- master.Wait() }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Error("the open connection of a revoked certificate stayed open")
		}
		if r := d.ssh(t, two, []string{"-o", "ControlPath=" + ctl, "-o", "ControlMaster=no"}, "update"); r.code == 0 {
			t.Errorf("a revoked certificate's next command on its connection: %+v", r)
		}
	})
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
