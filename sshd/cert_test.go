package sshd

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/binary"
	"math/big"
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
	env := certEnv(t, ca, func(s *Server) { s.Service.Revoked = rev })
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

// padSignature re-encodes an ECDSA signature blob (string of mpint r,
// mpint s) with n extra leading zero bytes on r: a different encoding
// of the same signature, which x/crypto still verifies.
func padSignature(t *testing.T, blob []byte, n int) []byte {
	t.Helper()
	var sig struct{ R, S *big.Int }
	if err := gossh.Unmarshal(blob, &sig); err != nil {
		t.Fatal(err)
	}
	mpint := func(b []byte) []byte {
		out := binary.BigEndian.AppendUint32(nil, uint32(len(b)))
		return append(out, b...)
	}
	r := append(make([]byte, n+1), sig.R.Bytes()...) // n+1 zeros: canonical has at most one
	s := sig.S.Bytes()
	if s[0]&0x80 != 0 {
		s = append([]byte{0}, s...) // canonical: positive
	}
	return append(mpint(r), mpint(s)...)
}

// TestCertificateEncodingIsNotIdentity: audit finding H2. With an ECDSA
// CA, a certificate holder could pad the CA's signature with zero bytes
// and log in as a new "key" each time, past max_connections_per_key.
// The cap counts the certified key, whatever the encoding.
func TestCertificateEncodingIsNotIdentity(t *testing.T) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := gossh.NewSignerFromKey(caKey)
	if err != nil {
		t.Fatal(err)
	}
	env := certEnv(t, ca, func(s *Server) { s.MaxConnsPerKey = 2 })
	now := time.Now()
	key := newSigner(t)
	cert, _ := certFor(t, ca, key, gossh.UserCert, 7, now.Add(-time.Hour), now.Add(time.Hour), "h.fleet.dyn.example.com")
	logins := 0
	for i := range 6 {
		c := *cert
		sig := *cert.Signature
		sig.Blob = padSignature(t, cert.Signature.Blob, i)
		c.Signature = &sig
		if i > 0 && string(c.Marshal()) == string(cert.Marshal()) {
			t.Fatal("the padded certificate has the same encoding")
		}
		signer, err := gossh.NewCertSigner(&c, key)
		if err != nil {
			t.Fatal(err)
		}
		if cl, err := dial(env, signer); err == nil {
			logins++
			t.Cleanup(func() { cl.Close() })
		}
	}
	if logins != 2 {
		t.Fatalf("%d logins with one certificate in 6 encodings; want max_connections_per_key = 2", logins)
	}
}
