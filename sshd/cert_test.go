package sshd

import (
	"crypto/rand"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/sshdyn/sshdyn/authorized"
)

// certEnv runs a server whose authorized map trusts ca for *.fleet.ZONE.
func certEnv(t *testing.T, ca gossh.Signer, mod func(*Server)) *testEnv {
	t.Helper()
	a, b := newSigner(t), newSigner(t)
	return startServerOpts(t, a, b, "", func(s *Server) {
		s.Service.AllowPrivate = true
		text := `cert-authority,host="*.fleet.dyn.example.com" ` + string(gossh.MarshalAuthorizedKey(ca.PublicKey()))
		m, err := authorized.Parse(strings.NewReader(text), "keys", authorized.Scope{Zones: []string{"dyn.example.com"}})
		if err != nil {
			t.Fatal(err)
		}
		s.Hosts = m
		if mod != nil {
			mod(s)
		}
	})
}

// certFor signs a user certificate for key's public key with ca.
func certFor(t *testing.T, ca, key gossh.Signer, typ uint32, serial uint64, after, before time.Time, principals ...string) (*gossh.Certificate, gossh.Signer) {
	t.Helper()
	c := &gossh.Certificate{Key: key.PublicKey(), CertType: typ, KeyId: "test", Serial: serial, ValidPrincipals: principals,
		ValidAfter: uint64(after.Unix()), ValidBefore: uint64(before.Unix())}
	if err := c.SignCert(rand.Reader, ca); err != nil {
		t.Fatal(err)
	}
	s, err := gossh.NewCertSigner(c, key)
	if err != nil {
		t.Fatal(err)
	}
	return c, s
}

// TestCertificateKeyConfusion: the CVE-2024-45337 regression test with
// certificates: the client offers certificate B (without its private
// key), then signs with certificate A; the session gets A's principals
// only.
func TestCertificateKeyConfusion(t *testing.T) {
	ca := newSigner(t)
	env := certEnv(t, ca, nil)
	now := time.Now()
	certB, _ := certFor(t, ca, newSigner(t), gossh.UserCert, 2, now.Add(-time.Hour), now.Add(time.Hour), "b.fleet.dyn.example.com")
	_, signerA := certFor(t, ca, newSigner(t), gossh.UserCert, 1, now.Add(-time.Hour), now.Add(time.Hour), "a.fleet.dyn.example.com")
	c := confusedLogin(t, env, certB, signerA)
	if out, errOut, code := run(t, c, "update"); code != 0 || out != "good a.fleet.dyn.example.com A 127.0.0.1\n" {
		t.Fatalf("update = %q %q exit %d; want only A's principal", out, errOut, code)
	}
	if got := env.dns.Lookup(t, "b.fleet.dyn.example.com", 1); len(got) != 0 {
		t.Fatalf("B's principal was updated: %v", got)
	}
}

// fakeRevoker revokes what revoke says.
type fakeRevoker struct{ serial atomic.Uint64 }

func (f *fakeRevoker) Revoked(k gossh.PublicKey) (string, bool) {
	if c, ok := k.(*gossh.Certificate); ok && c.Serial == f.serial.Load() {
		return "serial", true
	}
	return "", false
}

// TestCertificateChecks: what x/crypto's OpenSSH client can offer and
// OpenSSH's cannot (a host certificate), the clock-skew allowance, and a
// revocation that reaches an open connection's next command.
func TestCertificateChecks(t *testing.T) {
	ca := newSigner(t)
	rev := &fakeRevoker{}
	env := certEnv(t, ca, func(s *Server) { s.Revoked = rev })
	now := time.Now()
	login := func(c gossh.Signer) (*gossh.Client, error) {
		return gossh.Dial("tcp", env.addr, &gossh.ClientConfig{User: "u", HostKeyCallback: gossh.InsecureIgnoreHostKey(), Auth: []gossh.AuthMethod{gossh.PublicKeys(c)}})
	}
	for _, tc := range []struct {
		name          string
		typ           uint32
		after, before time.Time
		ok            bool
	}{
		{"user certificate", gossh.UserCert, now.Add(-time.Hour), now.Add(time.Hour), true},
		{"host certificate", gossh.HostCert, now.Add(-time.Hour), now.Add(time.Hour), false},
		{"valid in 30 s: within the skew", gossh.UserCert, now.Add(30 * time.Second), now.Add(time.Hour), true},
		{"valid in 2 min", gossh.UserCert, now.Add(2 * time.Minute), now.Add(time.Hour), false},
		{"expired 30 s ago: within the skew", gossh.UserCert, now.Add(-time.Hour), now.Add(-30 * time.Second), true},
		{"expired 2 min ago", gossh.UserCert, now.Add(-time.Hour), now.Add(-2 * time.Minute), false},
	} {
		_, signer := certFor(t, ca, newSigner(t), tc.typ, 5, tc.after, tc.before, "a.fleet.dyn.example.com")
		c, err := login(signer)
		if (err == nil) != tc.ok {
			t.Errorf("%s: login error %v, want ok %v", tc.name, err, tc.ok)
		}
		if err == nil {
			c.Close()
		}
	}

	_, signer := certFor(t, ca, newSigner(t), gossh.UserCert, 7, now.Add(-time.Hour), now.Add(time.Hour), "a.fleet.dyn.example.com")
	c, err := login(signer)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, _, code := run(t, c, "ip"); code != 0 {
		t.Fatalf("ip: exit %d", code)
	}
	rev.serial.Store(7)
	_, errOut, code := run(t, c, "update")
	if code != ExitNoPerm || !strings.Contains(errOut, "no longer authorized") {
		t.Errorf("a revoked certificate's next command: exit %d %q", code, errOut)
	}
	if _, err := login(signer); err == nil {
		t.Error("a revoked certificate logs in")
	}
}
