//go:build integration

package main

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"encoding/pem"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/sshdyn/sshdyn/internal/dnstest"
)

// writeKey writes priv as an OpenSSH private key file and returns it
// with its authorized_keys line.
func writeKey(t *testing.T, dir, name string, priv crypto.Signer) clientKey {
	t.Helper()
	block, err := gossh.MarshalPrivateKey(priv, name)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, name)
	writeFile(t, path, string(pem.EncodeToMemory(block)))
	if err := os.Chmod(path, 0o600); err != nil {
		t.Fatal(err)
	}
	pub, err := gossh.NewPublicKey(priv.Public())
	if err != nil {
		t.Fatal(err)
	}
	return clientKey{path: path, line: strings.TrimSpace(string(gossh.MarshalAuthorizedKey(pub)))}
}

// runClient runs a real SSH client with HOME set to home, detached from
// any terminal, and returns what it printed and its exit status.
func runClient(t *testing.T, home, name string, args ...string) sshResult {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		t.Fatalf("%s not found: scripts/test.sh installs it", name)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = []string{"HOME=" + home, "PATH=" + os.Getenv("PATH")}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true} // never a prompt on a tty
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if ctx.Err() != nil {
		t.Fatalf("%s %v did not finish in 20s (a prompt?):\n%s", name, args, errb.String())
	}
	return sshResult{stdout: out.String(), stderr: errb.String(), code: code}
}

// TestOtherClients drives Dropbear's dbclient (OpenWrt's client; ed25519
// and RSA user keys) and PuTTY's plink (what Windows users script)
// against sshdyn in front of each real primary: updates over IPv4 and
// IPv6, and every exit status comes through them.
func TestOtherClients(t *testing.T) {
	for _, kind := range dnstest.Kinds {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			keys := t.TempDir()
			edKey := newClientKey(t, keys, "ed")
			rsaPriv, err := rsa.GenerateKey(rand.Reader, 3072)
			if err != nil {
				t.Fatal(err)
			}
			rsaKey := writeKey(t, keys, "rsa", rsaPriv)
			plinkKey := newClientKey(t, keys, "putty")

			p := dnstest.Start(t, kind, dnstest.Options{})
			z := p.Zone
			d := startDaemon(t, p, p.KeyFile,
				`host="ed.`+z+`" `+edKey.line,
				`host="rsa.`+z+`" `+rsaKey.line,
				`host="plink.`+z+`" `+plinkKey.line)

			// The host key, pinned for each client.
			hostKey, err := os.ReadFile(filepath.Join(d.dir, "host_ed25519"))
			if err != nil {
				t.Fatal(err)
			}
			signer, err := gossh.ParsePrivateKey(hostKey)
			if err != nil {
				t.Fatal(err)
			}
			hk := strings.TrimSpace(string(gossh.MarshalAuthorizedKey(signer.PublicKey())))
			home := t.TempDir()
			if err := os.MkdirAll(filepath.Join(home, ".ssh"), 0o700); err != nil {
				t.Fatal(err)
			}
			// Dropbear's known_hosts names hosts without the port.
			writeFile(t, filepath.Join(home, ".ssh", "known_hosts"), fmt.Sprintf("127.0.0.1 %s\n::1 %s\n", hk, hk))
			fingerprint := gossh.FingerprintSHA256(signer.PublicKey())

			convert := func(name string, args ...string) {
				t.Helper()
				if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
					t.Fatalf("%s %v: %v\n%s", name, args, err, out)
				}
			}
			for _, k := range []clientKey{edKey, rsaKey} {
				convert("dropbearconvert", "openssh", "dropbear", k.path, k.path+".dropbear")
			}
			convert("puttygen", plinkKey.path, "-O", "private", "-o", plinkKey.path+".ppk")

			dbclient := func(k clientKey, host string, args ...string) sshResult {
				return runClient(t, home, "dbclient", append([]string{"-i", k.path + ".dropbear", "-p", d.port4, host}, args...)...)
			}
			dbclient6 := func(k clientKey, args ...string) sshResult {
				return runClient(t, home, "dbclient", append([]string{"-i", k.path + ".dropbear", "-p", d.port6, "::1"}, args...)...)
			}
			plink := func(host, port string, args ...string) sshResult {
				return runClient(t, home, "plink", append([]string{"-batch", "-i", plinkKey.path + ".ppk", "-hostkey", fingerprint, "-P", port, host}, args...)...)
			}

			check := func(name string, r sshResult, code int, stdout, stderr string) {
				t.Helper()
				if r.code != code || stdout != "" && r.stdout != stdout || !strings.Contains(r.stderr, stderr) {
					t.Errorf("%s: exit %d, stdout %q, stderr %q; want %d, %q, %q", name, r.code, r.stdout, r.stderr, code, stdout, stderr)
				}
			}
			check("dbclient ed25519", dbclient(edKey, "127.0.0.1", "update"), 0, "good ed."+z+" A 127.0.0.1\n", "")
			check("dbclient ed25519 again", dbclient(edKey, "127.0.0.1", "update"), 0, "nochg ed."+z+" A 127.0.0.1\n", "")
			check("dbclient RSA", dbclient(rsaKey, "127.0.0.1", "update"), 0, "good rsa."+z+" A 127.0.0.1\n", "")
			check("dbclient IPv6", dbclient6(edKey, "update"), 0, "good ed."+z+" AAAA ::1\n", "")
			check("dbclient other's host", dbclient(edKey, "127.0.0.1", "update", "rsa."+z), 77, "", "not one of this key's hosts")
			check("dbclient unknown command", dbclient(edKey, "127.0.0.1", "bogus"), 64, "", "unknown command")

			check("plink", plink("127.0.0.1", d.port4, "update"), 0, "good plink."+z+" A 127.0.0.1\n", "")
			check("plink again", plink("127.0.0.1", d.port4, "update"), 0, "nochg plink."+z+" A 127.0.0.1\n", "")
			check("plink IPv6", plink("::1", d.port6, "update"), 0, "good plink."+z+" AAAA ::1\n", "")
			check("plink ip", plink("127.0.0.1", d.port4, "ip"), 0, "127.0.0.1\n", "")
			check("plink other's host", plink("127.0.0.1", d.port4, "update", "ed."+z), 77, "", "not one of this key's hosts")
			check("plink unknown command", plink("127.0.0.1", d.port4, "bogus"), 64, "", "unknown command")

			if got := p.Lookup(t, "rsa."+z, 1); len(got) != 1 || got[0] != "127.0.0.1" {
				t.Errorf("rsa A = %v", got)
			}
			p.Stop()
			check("dbclient, primary down", dbclient6(rsaKey, "update"), 75, "", "temporary failure")
			check("plink, primary down", plink("::1", d.port6, "update", "plink."+z), 75, "", "temporary failure")
		})
	}
}
