package sshd

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/gliderlabs/ssh"

	"github.com/sshdyn/sshdyn/authorized"
	"github.com/sshdyn/sshdyn/internal/dnstest"
	"github.com/sshdyn/sshdyn/publish"
	"github.com/sshdyn/sshdyn/update"
)

func newSigner(t *testing.T) gossh.Signer {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := gossh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// countingHosts records which keys the server asked about.
type countingHosts struct {
	m       *authorized.Map
	lookups map[string]*atomic.Int32
}

func (c *countingHosts) Authority(k gossh.PublicKey) bool { return c.m.Authority(k) }

func (c *countingHosts) Certificate(cert *gossh.Certificate) (*authorized.Entry, []string, error) {
	return c.m.Certificate(cert)
}

func (c *countingHosts) Lookup(k gossh.PublicKey) (*authorized.Entry, bool) {
	if n, ok := c.lookups[string(k.Marshal())]; ok {
		n.Add(1)
	}
	return c.m.Lookup(k)
}

type testEnv struct {
	addr  string
	hosts *countingHosts
	dns   *dnstest.Server
	srv   *Server
}

// startServer runs a Server against sshdyn's embedded primary (a real
// RFC 2136 server with TSIG, in this process: no DNS daemon needed), with keys a and
// b mapped to a.<zone> and b.<zone>.
func startServer(t *testing.T, a, b gossh.Signer, allowPrivate ...bool) *testEnv {
	return startServerOpts(t, a, b, "", func(s *Server) { s.Service.AllowPrivate = len(allowPrivate) == 0 || allowPrivate[0] })
}

// startServerOpts is startServer with extra options on key a's line, and
// mod applied to the Server before it starts.
func startServerOpts(t *testing.T, a, b gossh.Signer, aOpts string, mod func(*Server)) *testEnv {
	t.Helper()
	p := dnstest.Start(t, "sshdyn", dnstest.Options{})
	text := aOpts + `host="a.` + p.Zone + `" ` + string(gossh.MarshalAuthorizedKey(a.PublicKey())) +
		`host="b.` + p.Zone + `" ` + string(gossh.MarshalAuthorizedKey(b.PublicKey()))
	m, err := authorized.Parse(strings.NewReader(text), "keys", authorized.Scope{Zones: []string{p.Zone}})
	if err != nil {
		t.Fatal(err)
	}
	hosts := &countingHosts{m: m, lookups: map[string]*atomic.Int32{
		string(a.PublicKey().Marshal()): new(atomic.Int32),
		string(b.PublicKey().Marshal()): new(atomic.Int32),
	}}
	srv := &Server{
		Hosts: hosts,
		Service: &publish.Service{Zones: []publish.Zone{
			{Name: p.Zone, TTL: 60, Backend: update.NewBackend(&update.Client{Server: p.Addr, Zone: p.Zone, Key: p.Key})},
		}},
		HostSigners:  []gossh.Signer{newSigner(t)},
		LoginTimeout: 2 * time.Second,
	}
	mod(srv)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Shutdown(t.Context()) })
	return &testEnv{addr: l.Addr().String(), hosts: hosts, dns: p, srv: srv}
}

// failingSigner has a public key but cannot sign: a client that offers a
// key it does not hold.
type failingSigner struct{ pub gossh.PublicKey }

func (f failingSigner) PublicKey() gossh.PublicKey { return f.pub }
func (f failingSigner) Sign(io.Reader, []byte) (*gossh.Signature, error) {
	return nil, errors.New("no private key")
}

func run(t *testing.T, c *gossh.Client, cmd string) (stdout, stderr string, code int) {
	t.Helper()
	s, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var o, e bytes.Buffer
	s.Stdout, s.Stderr = &o, &e
	err = s.Run(cmd)
	var ee *gossh.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitStatus()
	} else if err != nil {
		t.Fatal(err)
	}
	return o.String(), e.String(), code
}

// TestKeyConfusionRegression: CVE-2024-45337 / GHSA-pchf-49fh-w34r. The
// client offers B's public key (which the server accepts as a candidate)
// without holding B's private key, then authenticates with A. The session
// must act as A only.
func TestKeyConfusionRegression(t *testing.T) {
	a, b := newSigner(t), newSigner(t)
	env := startServer(t, a, b)
	c := confusedLogin(t, env, b.PublicKey(), a)
	if n := env.hosts.lookups[string(b.PublicKey().Marshal())].Load(); n == 0 {
		t.Fatal("the server never saw B's key offered; the test proves nothing")
	}
	out, errOut, code := run(t, c, "update")
	if code != 0 || out != "good a."+env.dns.Zone+" A 127.0.0.1\n" {
		t.Fatalf("update = %q %q exit %d; want only A's host", out, errOut, code)
	}
	if got := env.dns.Lookup(t, "b."+env.dns.Zone, 1); len(got) != 0 {
		t.Fatalf("B's host was updated: %v", got)
	}
	_, errOut, code = run(t, c, "update b."+env.dns.Zone)
	if code != ExitNoPerm {
		t.Fatalf("update of B's host = exit %d %q, want %d", code, errOut, ExitNoPerm)
	}
}

// confusedLogin logs in offering offered first, without its private key
// (the server accepts the key and asks for a signature the client cannot
// make), then signs with signer: the CVE-2024-45337 pattern.
func confusedLogin(t *testing.T, env *testEnv, offered gossh.PublicKey, signer gossh.Signer) *gossh.Client {
	t.Helper()
	step := 0
	cfg := &gossh.ClientConfig{
		User:            "victim",
		HostKeyCallback: gossh.InsecureIgnoreHostKey(),
		AuthCallback: func(*gossh.ClientAuthContext) (gossh.AuthMethod, error) {
			step++
			switch step {
			case 1:
				return gossh.PublicKeys(failingSigner{offered}), nil
			case 2:
				return gossh.PublicKeys(signer), nil
			}
			return nil, nil
		},
	}
	c, err := gossh.Dial("tcp", env.addr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if step < 2 {
		t.Fatal("the second key was never tried; the test proves nothing")
	}
	return c
}

// TestOnlyExecIsGranted: no PTY, subsystem, forwarding, env or agent.
func TestOnlyExecIsGranted(t *testing.T) {
	a, b := newSigner(t), newSigner(t)
	env := startServer(t, a, b)
	c := login(t, env, a)

	s, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.RequestPty("xterm", 24, 80, gossh.TerminalModes{}); err == nil {
		t.Error("PTY granted")
	}
	if err := s.Setenv("LD_PRELOAD", "/tmp/x"); err == nil {
		t.Error("env granted")
	}
	if ok, _ := s.SendRequest("auth-agent-req@openssh.com", true, nil); ok {
		t.Error("agent forwarding granted")
	}
	if ok, _ := s.SendRequest("x11-req", true, gossh.Marshal(struct {
		Single        bool
		Proto, Cookie string
		Screen        uint32
	}{false, "MIT-MAGIC-COOKIE-1", "00", 0})); ok {
		t.Error("X11 granted")
	}
	if err := s.RequestSubsystem("sftp"); err == nil {
		t.Error("sftp subsystem granted")
	}
	s.Close()

	if _, err := c.Dial("tcp", env.dns.Addr); err == nil {
		t.Error("local port forwarding granted")
	}
	if _, err := c.Listen("tcp", "127.0.0.1:0"); err == nil {
		t.Error("remote port forwarding granted")
	}
	// The connection still works for a command.
	if out, _, code := run(t, c, "ip"); code != 0 || out != "127.0.0.1\n" {
		t.Errorf("ip = %q exit %d", out, code)
	}
}

func TestLoginTimeoutDropsSilentClient(t *testing.T) {
	a, b := newSigner(t), newSigner(t)
	env := startServer(t, a, b)
	conn, err := net.Dial("tcp", env.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	start := time.Now()
	_, err = io.Copy(io.Discard, conn) // returns when the server closes
	if err != nil {
		t.Fatalf("connection not closed by the server: %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("dropped after %v, want about the 2s login timeout", d)
	}
}

func TestHostKeyCreatedOnceAndKept(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "host_ed25519")
	s1, created, err := LoadOrCreateHostKey(path)
	if err != nil || !created {
		t.Fatalf("first start: created %v, err %v", created, err)
	}
	fi, _ := os.Stat(path)
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %o, want 600", fi.Mode().Perm())
	}
	if s1.PublicKey().Type() != gossh.KeyAlgoED25519 {
		t.Errorf("type %s", s1.PublicKey().Type())
	}
	s2, created, err := LoadOrCreateHostKey(path)
	if err != nil || created || !bytes.Equal(s1.PublicKey().Marshal(), s2.PublicKey().Marshal()) {
		t.Fatalf("second start: created %v err %v, or a different key", created, err)
	}
	// A corrupt file is an error; it is not replaced.
	os.WriteFile(path, []byte("garbage"), 0o600)
	if _, _, err := LoadOrCreateHostKey(path); err == nil {
		t.Fatal("corrupt host key accepted")
	}
	if b, _ := os.ReadFile(path); string(b) != "garbage" {
		t.Fatal("corrupt host key was overwritten")
	}
	os.Chmod(path, 0o644)
	if _, _, err := LoadOrCreateHostKey(path); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("world-readable host key: err = %v", err)
	}
}

func TestPrivatePeerRefused(t *testing.T) {
	a, b := newSigner(t), newSigner(t)
	env := startServer(t, a, b, false)
	c := login(t, env, a)
	serial := env.dns.Serial(t)
	out, errOut, code := run(t, c, "update")
	if code != ExitNoPerm || out != "" || errOut != "sshdyn: not permitted: 127.0.0.1 is not a public address\n" {
		t.Fatalf("update from loopback = %q %q exit %d", out, errOut, code)
	}
	if env.dns.Serial(t) != serial {
		t.Error("DNS changed")
	}
}

func TestUsageGolden(t *testing.T) {
	golden, err := os.ReadFile("testdata/usage.golden")
	if err != nil {
		t.Fatal(err)
	}
	if Usage != string(golden) {
		t.Errorf("Usage differs from testdata/usage.golden:\n%s", Usage)
	}
}

func TestPeerAddrUnmapsIPv4(t *testing.T) {
	for in, want := range map[string]string{
		"[::ffff:198.51.100.7]:22": "198.51.100.7",
		"198.51.100.7:22":          "198.51.100.7",
		"[2001:db8::1]:22":         "2001:db8::1",
		"[fe80::1%eth0]:22":        "fe80::1",
	} {
		ta, err := net.ResolveTCPAddr("tcp", in)
		if err != nil {
			t.Fatal(err)
		}
		got, ok := peerAddr(ta)
		if !ok || got.String() != want {
			t.Errorf("peerAddr(%s) = %v, want %s", in, got, want)
		}
		if update.TypeFor(got) != map[bool]uint16{true: 1, false: 28}[strings.Contains(want, ".")] {
			t.Errorf("%s: wrong record type", in)
		}
	}
}

func TestSessionsPerConnectionAreCapped(t *testing.T) {
	a, b := newSigner(t), newSigner(t)
	env := startServer(t, a, b)
	c := login(t, env, a)
	var open []*gossh.Session
	for i := 0; i < MaxSessionsPerConn; i++ {
		s, err := c.NewSession()
		if err != nil {
			t.Fatalf("session %d: %v", i+1, err)
		}
		open = append(open, s)
	}
	if _, err := c.NewSession(); err == nil {
		t.Fatalf("session %d accepted", MaxSessionsPerConn+1)
	}
	open[0].Close()
	// DefaultSessionHandler returns once the closed channel's requests end.
	deadline := time.Now().Add(5 * time.Second)
	for {
		s, err := c.NewSession()
		if err == nil {
			s.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no session slot freed after closing one")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// login dials env with key, fails the test if that does not work, and
// closes the client when the test ends.
func login(t *testing.T, env *testEnv, key gossh.Signer) *gossh.Client {
	t.Helper()
	c, err := dial(env, key)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func dial(env *testEnv, key gossh.Signer) (*gossh.Client, error) {
	return gossh.Dial("tcp", env.addr, &gossh.ClientConfig{User: "u", HostKeyCallback: gossh.InsecureIgnoreHostKey(), Auth: []gossh.AuthMethod{gossh.PublicKeys(key)}})
}

// TestKeyOptions mirrors OpenSSH's key-options.sh for from= and
// expiry-time=, and checks allow-private.
func TestKeyOptions(t *testing.T) {
	past := time.Now().Add(-time.Hour).UTC().Format("200601021504") + "Z"
	future := time.Now().Add(time.Hour).UTC().Format("200601021504") + "Z"
	cases := []struct {
		name, opts string
		login      bool
	}{
		{"from matches", `from="127.0.0.0/8,!127.0.0.9",`, true},
		{"from does not match", `from="192.0.2.0/24",`, false},
		{"from negated", `from="127.0.0.0/8,!127.0.0.1",`, false},
		{"expired", `expiry-time="` + past + `",`, false},
		{"not yet expired", `expiry-time="` + future + `",`, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a, b := newSigner(t), newSigner(t)
			env := startServerOpts(t, a, b, tc.opts, func(s *Server) { s.Service.AllowPrivate = true })
			c, err := dial(env, a)
			if (err == nil) != tc.login {
				t.Fatalf("login = %v (%v), want %v", err == nil, err, tc.login)
			}
			if err != nil {
				return
			}
			defer c.Close()
			if out, _, code := run(t, c, "update"); code != 0 || !strings.HasPrefix(out, "good ") {
				t.Errorf("update = %q exit %d", out, code)
			}
		})
	}
	t.Run("allow-private for one key", func(t *testing.T) {
		a, b := newSigner(t), newSigner(t)
		env := startServerOpts(t, a, b, "allow-private,", func(*Server) {})
		ca, err := dial(env, a)
		if err != nil {
			t.Fatal(err)
		}
		defer ca.Close()
		if out, _, code := run(t, ca, "update"); code != 0 || !strings.HasPrefix(out, "good ") {
			t.Errorf("key with allow-private: %q exit %d", out, code)
		}
		cb, err := dial(env, b)
		if err != nil {
			t.Fatal(err)
		}
		defer cb.Close()
		if _, _, code := run(t, cb, "update"); code != ExitNoPerm {
			t.Errorf("key without allow-private: exit %d, want %d", code, ExitNoPerm)
		}
	})
}

// TestSessionLog: every line a session logs names its remote address
// and key: the closing "session" line, and the lines logged on the way
// (a change, a refusal).
func TestSessionLog(t *testing.T) {
	a, b := newSigner(t), newSigner(t)
	var buf dnstest.LogBuffer
	env := startServerOpts(t, a, b, "", func(s *Server) {
		s.Service.AllowPrivate = true
		s.Logger = slog.New(slog.NewTextHandler(&buf, nil))
	})
	c := login(t, env, a)
	fp := gossh.FingerprintSHA256(a.PublicKey())
	for i := range 2 {
		if _, errOut, code := run(t, c, "update"); code != 0 {
			t.Fatalf("update %d: exit %d, %q", i, code, errOut)
		}
	}
	if _, _, code := run(t, c, "update b."+env.dns.Zone); code != ExitNoPerm {
		t.Fatalf("update of another key's host: exit %d, want %d", code, ExitNoPerm)
	}
	remote := c.LocalAddr().String()
	want := []string{
		`msg="dns change" remote=` + remote + ` key=` + fp + ` host=a.` + env.dns.Zone + ` type=A old=none new=127.0.0.1 ttl=60`,
		`msg=session remote=` + remote + ` key=` + fp + ` command=update exit=0 duration=`,
		`msg=session remote=` + remote + ` key=` + fp + ` command=update exit=77 duration=`,
	}
	var lines []string
	for l := range strings.Lines(buf.String()) {
		if strings.Contains(l, "remote="+remote) {
			lines = append(lines, l)
		}
	}
	if len(lines) != 4 {
		t.Fatalf("%d lines for the connection, want 4 (a change, 3 sessions):\n%s", len(lines), buf.String())
	}
	for i, w := range []string{want[0], want[1], want[1], want[2]} {
		if !strings.Contains(lines[i], w) {
			t.Errorf("line %d = %q, want it to contain %q", i, lines[i], w)
		}
	}
}

// TestShutdownRightAfterServe: a SIGTERM that comes as the listeners
// start must not wait out the shutdown timeout for a listener gliderlabs
// had not begun to track (found by cmd/sshdyn's check/serve table test).
func TestShutdownRightAfterServe(t *testing.T) {
	for range 50 {
		srv := &Server{Hosts: &countingHosts{}, Service: &publish.Service{}, HostSigners: []gossh.Signer{newSigner(t)}}
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- srv.Serve(l) }()
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		err = srv.Shutdown(ctx)
		cancel()
		if err != nil {
			t.Fatalf("Shutdown: %v", err)
		}
		select {
		case err := <-done:
			if !errors.Is(err, ssh.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
				t.Fatalf("Serve after Shutdown: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("Serve still accepting 5 s after Shutdown returned")
		}
	}
}
