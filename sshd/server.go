// Package sshd is sshdyn's SSH front: an embedded SSH server that knows
// each client by its public key and runs one command per session
// (update, ip, status, help). It grants nothing else: no shell, PTY,
// forwarding, agent, X11 or subsystems.
package sshd

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gliderlabs/ssh"
	gossh "golang.org/x/crypto/ssh"

	"github.com/sshdyn/sshdyn/authorized"
	"github.com/sshdyn/sshdyn/publish"
)

// Authorizer answers which hosts a key, or a certificate, may update,
// and which certificate authorities are trusted.
type Authorizer interface {
	Lookup(key gossh.PublicKey) (*authorized.Entry, bool)
	Authority(key gossh.PublicKey) bool
	Certificate(c *gossh.Certificate) (e *authorized.Entry, ignored []string, err error)
}

// CertClockSkew is how far a certificate's validity window is stretched
// at each end, for a client's clock (or its CA's) a little off.
const CertClockSkew = time.Minute

// Defaults of a Server's fields, used where a field is zero.
const (
	DefaultLoginTimeout                = 10 * time.Second
	DefaultSessionTimeout              = 60 * time.Second
	DefaultMaxUnauthenticated          = 4096
	DefaultMaxUnauthenticatedPerSource = 128
	DefaultMaxConnsPerKey              = 8
)

// Server is the SSH front. Set the fields, then call Serve for each
// listener. Hosts, Service and HostSigners are required.
//
// The Server holds the SSH transport only: who may log in, what a
// session may ask for, the command line, and how an answer is printed.
// Every rule of an update (names, addresses, limits, zones) is the
// Service's.
type Server struct {
	Hosts       Authorizer
	Service     *publish.Service
	HostSigners []gossh.Signer
	// Fleet, if set, is the operator's store: status shows each host
	// family's last update, and history lists the last ones.
	Fleet Fleet
	// LoginTimeout bounds the handshake plus authentication;
	// SessionTimeout bounds a whole connection.
	LoginTimeout   time.Duration
	SessionTimeout time.Duration
	// MaxUnauthenticated bounds connections that have not authenticated
	// yet: over it, new connections wait in the kernel's listen queue
	// until one logs in or goes. MaxUnauthenticatedPerSource bounds them
	// per source address: over it, connections are closed at once,
	// before the SSH banner.
	MaxUnauthenticated          int
	MaxUnauthenticatedPerSource int
	// MaxConnsPerKey bounds the connections one key has logged in at
	// once (DefaultMaxConnsPerKey if zero); a login over it is refused.
	MaxConnsPerKey int
	// KeyExchanges, Ciphers and MACs are the algorithms offered; nil
	// offers the modern sets (DefaultKeyExchanges, DefaultCiphers,
	// DefaultMACs), which an operator widens only for an old client.
	KeyExchanges, Ciphers, MACs []string

	Logger *slog.Logger
	// Observer, if set, is told about connections, failed logins,
	// commands and refusals, for metrics.
	Observer Observer

	once   sync.Once
	srv    *ssh.Server
	err    error
	unauth *gate

	mu        sync.Mutex
	closed    bool // Shutdown was called
	listeners []*gatedListener
	perKey    map[string]map[net.Conn]gossh.PublicKey // logged-in connections by identity (identityOf), with the key each logged in with
	conns     atomic.Int64                            // connections admitted and not ended
}

type ctxKey int

const (
	verifiedKeyCtx ctxKey = iota // the key whose signature x/crypto verified
	loginTimerCtx                // closes the connection if login takes too long
	releaseCtx                   // func(): leaves the unauthenticated gate
	sessionsCtx                  // *atomic.Int32: open sessions on the connection
	connCtx                      // net.Conn: the connection, to close it
)

// DefaultKeyExchanges are the key exchanges offered by default: the
// post-quantum hybrid first (OpenSSH 9.9 and later), then curve25519
// under both its names. No NIST curves, no SHA-1, no finite-field groups.
func DefaultKeyExchanges() []string {
	return []string{gossh.KeyExchangeMLKEM768X25519, gossh.KeyExchangeCurve25519, "curve25519-sha256@libssh.org"}
}

// DefaultCiphers are the ciphers offered by default: AEADs, then AES-CTR
// (with the encrypt-then-MAC MACs only).
func DefaultCiphers() []string {
	return []string{gossh.CipherChaCha20Poly1305, gossh.CipherAES256GCM, gossh.CipherAES128GCM, gossh.CipherAES256CTR, gossh.CipherAES128CTR}
}

// DefaultMACs are the MACs offered by default: SHA-2 in encrypt-then-MAC
// mode only.
func DefaultMACs() []string {
	return []string{gossh.HMACSHA256ETM, gossh.HMACSHA512ETM}
}

// MaxSessionsPerConn bounds the session channels open at once on one
// connection; a client needs one. More are rejected.
const MaxSessionsPerConn = 4

func (s *Server) init() {
	if s.Hosts == nil || s.Service == nil || len(s.HostSigners) == 0 {
		s.err = errors.New("sshd: Hosts, Service and HostSigners are required")
		return
	}
	if s.Logger == nil {
		s.Logger = slog.New(slog.DiscardHandler)
	}
	if s.Observer == nil {
		s.Observer = nopObserver{}
	}
	if s.LoginTimeout <= 0 {
		s.LoginTimeout = DefaultLoginTimeout
	}
	if s.SessionTimeout <= 0 {
		s.SessionTimeout = DefaultSessionTimeout
	}
	if s.MaxUnauthenticated <= 0 {
		s.MaxUnauthenticated = DefaultMaxUnauthenticated
	}
	if s.MaxUnauthenticatedPerSource <= 0 {
		s.MaxUnauthenticatedPerSource = DefaultMaxUnauthenticatedPerSource
	}
	s.unauth = newGate(s.MaxUnauthenticated, s.MaxUnauthenticatedPerSource)
	if s.MaxConnsPerKey <= 0 {
		s.MaxConnsPerKey = DefaultMaxConnsPerKey
	}
	s.perKey = map[string]map[net.Conn]gossh.PublicKey{}
	if s.KeyExchanges == nil {
		s.KeyExchanges = DefaultKeyExchanges()
	}
	if s.Ciphers == nil {
		s.Ciphers = DefaultCiphers()
	}
	if s.MACs == nil {
		s.MACs = DefaultMACs()
	}
	srv := &ssh.Server{
		Version: "sshdyn",
		Handler: s.handle,
		// No MaxTimeout: admit sets the connection's one deadline itself.
		// Only answers "is this key in the map"; it stores nothing. The
		// session looks the key up again (CVE-2024-45337).
		PublicKeyHandler: func(ctx ssh.Context, key ssh.PublicKey) bool {
			e, err := s.identify(connMeta{ctx}, key)
			if err != nil {
				s.Logger.Info("key refused", "remote", ctx.RemoteAddr().String(), "key", describeKey(key), "reason", err)
				return false
			}
			if e == nil {
				return false // not a key of the file: nothing to log
			}
			peer, _ := peerAddr(ctx.RemoteAddr())
			if err := s.Service.Permit(e, peer); err != nil {
				s.Logger.Info("key refused", "remote", ctx.RemoteAddr().String(), "key", gossh.FingerprintSHA256(key), "line", e.Line, "reason", err)
				return false
			}
			return true
		},
		ServerConfigCallback: s.serverConfig,
		ConnCallback:         s.admit,
		ConnectionFailedCallback: func(c net.Conn, err error) {
			var authErr *gossh.ServerAuthError
			if errors.As(err, &authErr) {
				src, _ := peerAddr(c.RemoteAddr())
				s.Service.LoginFailed(src)
				s.Observer.AuthFailure()
				s.Logger.Info("authentication failed", "remote", c.RemoteAddr().String(), "err", err)
				return
			}
			s.Logger.Info("connection failed", "remote", c.RemoteAddr().String(), "err", err)
		},
		PtyCallback: func(ssh.Context, ssh.Pty) bool { return false },
		SessionRequestCallback: func(_ ssh.Session, kind string) bool {
			return kind == "exec" || kind == "shell"
		},
		ChannelHandlers:   map[string]ssh.ChannelHandler{"session": sessionHandler},
		RequestHandlers:   map[string]ssh.RequestHandler{},
		SubsystemHandlers: map[string]ssh.SubsystemHandler{},
	}
	for _, hk := range s.HostSigners {
		srv.AddHostKey(hk)
	}
	s.srv = srv
}

// serverConfig returns a fresh x/crypto config for each connection.
func (s *Server) serverConfig(ctx ssh.Context) *gossh.ServerConfig {
	cfg := &gossh.ServerConfig{
		MaxAuthTries: 6,
		// Called only for the key whose signature verified: the session
		// checks that s.PublicKey() is this one.
		VerifiedPublicKeyCallback: func(_ gossh.ConnMetadata, key gossh.PublicKey, perms *gossh.Permissions, _ string) (*gossh.Permissions, error) {
			c, _ := ctx.Value(connCtx).(net.Conn)
			release, ok := s.keyConn(key, c)
			if !ok {
				s.Logger.Info("login refused: too many connections for this key", "remote", ctx.RemoteAddr().String(), "key", gossh.FingerprintSHA256(key), "max", s.MaxConnsPerKey)
				return nil, errTooManyForKey
			}
			context.AfterFunc(ctx, release)
			ctx.SetValue(verifiedKeyCtx, key)
			if t, ok := ctx.Value(loginTimerCtx).(*time.Timer); ok {
				t.Stop()
			}
			if release, ok := ctx.Value(releaseCtx).(func()); ok {
				release()
			}
			return perms, nil
		},
	}
	cfg.KeyExchanges, cfg.Ciphers, cfg.MACs = s.KeyExchanges, s.Ciphers, s.MACs
	return cfg
}

var errTooManyForKey = errors.New("too many connections for this key")

// keyConn counts c, a logged-in connection of key, if key's identity
// has fewer than MaxConnsPerKey; release uncounts it.
func (s *Server) keyConn(key gossh.PublicKey, c net.Conn) (release func(), ok bool) {
	k := identityOf(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	conns := s.perKey[k]
	if len(conns) >= s.MaxConnsPerKey {
		return nil, false
	}
	if conns == nil {
		conns = map[net.Conn]gossh.PublicKey{}
		s.perKey[k] = conns
	}
	conns[c] = key
	var once sync.Once
	return func() {
		once.Do(func() {
			s.mu.Lock()
			defer s.mu.Unlock()
			if delete(conns, c); len(conns) == 0 {
				delete(s.perKey, k)
			}
		})
	}, true
}

// identityOf is what the per-key limits count key as: a plain key's
// canonical wire form (Marshal re-encodes what was parsed), and for a
// certificate its certified key's. Never a certificate's own encoding:
// the CA's signature in it can be re-encoded (an ECDSA signature's
// integers padded with zero bytes still verify), which would make every
// connection a new "key" (audit finding H2). A certificate's renewals
// share its key's limit, as they share the core's (authorized.Entry.ID).
func identityOf(key gossh.PublicKey) string {
	if c, ok := key.(*gossh.Certificate); ok {
		return "cert:" + string(c.Key.Marshal())
	}
	return string(key.Marshal())
}

// CloseRevoked closes the logged-in connections whose key Hosts no
// longer lists, Revoked revokes, or whose certificate has expired (call
// it after the authorized file or the revocation list was reloaded) and
// returns how many it closed. A command running on one is cut off; its
// DNS change, if already sent, stands.
func (s *Server) CloseRevoked() int {
	s.once.Do(s.init)
	var revoked []net.Conn
	s.mu.Lock()
	for _, conns := range s.perKey {
		for c, key := range conns {
			if e, _ := s.identify(netConn{c}, key); e != nil {
				continue
			}
			revoked = append(revoked, c)
			s.Logger.Info("closing a connection of a revoked key", "key", describeKey(key), "remote", c.RemoteAddr().String())
		}
	}
	s.mu.Unlock()
	for _, c := range revoked {
		c.Close()
	}
	return len(revoked)
}

// admit runs first on every new connection: it applies the limits on
// unauthenticated connections and starts the login deadline.
func (s *Server) admit(ctx ssh.Context, c net.Conn) net.Conn {
	// The gated listener took a slot for c; enter keeps it, drop gives
	// it back.
	s.Observer.Connection()
	src, _ := peerAddr(c.RemoteAddr())
	if left, refused := s.Service.Penalized(src); refused {
		s.Logger.Debug("connection refused: source penalized for failed logins", "remote", c.RemoteAddr().String(), "for", left.Round(time.Second))
		s.unauth.drop()
		return nil
	}
	release, ok := s.unauth.enter(src)
	if !ok {
		s.Logger.Debug("connection refused: too many unauthenticated connections from its source", "remote", c.RemoteAddr().String())
		s.Observer.Limited(publish.LimitUnauthenticated)
		s.unauth.drop()
		return nil // gliderlabs closes it
	}
	// SessionTimeout: one deadline for the whole connection, set once.
	c.SetDeadline(time.Now().Add(s.SessionTimeout))
	t := time.AfterFunc(s.LoginTimeout, func() {
		// A connection that never logged in counts as a failed login:
		// stalling connections costs a source as guessing keys does.
		s.Service.LoginFailed(src)
		s.Logger.Debug("login timeout", "remote", c.RemoteAddr().String())
		c.Close()
	})
	ctx.SetValue(loginTimerCtx, t)
	ctx.SetValue(releaseCtx, release)
	ctx.SetValue(sessionsCtx, new(atomic.Int32))
	ctx.SetValue(connCtx, c)
	// No goroutine per connection: AfterFunc runs when the connection ends.
	s.conns.Add(1)
	context.AfterFunc(ctx, func() {
		t.Stop()
		release()
		s.conns.Add(-1)
	})
	return fixedDeadline{c}
}

// fixedDeadline keeps the deadline admit set: gliderlabs/ssh calls
// SetDeadline before every Read and Write (to push an idle timeout
// forward, which sshdyn does not use), and each call would move the
// connection's timers; about 2 % of sshdyn's CPU under load.
type fixedDeadline struct{ net.Conn }

func (fixedDeadline) SetDeadline(time.Time) error { return nil }

// Unauthenticated returns the number of connections that have not
// authenticated yet.
func (s *Server) Unauthenticated() int {
	s.once.Do(s.init)
	return s.unauth.count()
}

// Serve accepts SSH connections on l until Shutdown or Close.
func (s *Server) Serve(l net.Listener) error {
	s.once.Do(s.init)
	if s.err != nil {
		return s.err
	}
	gl := &gatedListener{Listener: l, gate: s.unauth, done: make(chan struct{})}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		l.Close()
		return ssh.ErrServerClosed
	}
	s.listeners = append(s.listeners, gl)
	s.mu.Unlock()
	return s.srv.Serve(gl)
}

// Shutdown stops accepting connections and waits for open ones to end
// until ctx is done; then it closes them.
func (s *Server) Shutdown(ctx context.Context) error {
	s.once.Do(s.init)
	if s.srv == nil {
		return s.err
	}
	// Close the listeners here: gliderlabs' Shutdown only closes those
	// its Serve has begun to track (one that began just now would keep it
	// waiting), and it waits for connections with a WaitGroup that a
	// handshake finishing meanwhile adds to while it waits (a race). So
	// the waiting is done here, on sshdyn's own count, and gliderlabs is
	// only told to Close.
	s.mu.Lock()
	s.closed = true
	for _, l := range s.listeners {
		l.Close()
	}
	s.mu.Unlock()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for s.conns.Load() > 0 {
		select {
		case <-ctx.Done():
			s.srv.Close()
			return ctx.Err()
		case <-tick.C:
		}
	}
	s.srv.Close() // its listeners are closed already: their errors say so
	return nil
}

// sessionHandler is gliderlabs' session handler behind a filter that
// answers every request but exec and shell with "no" and keeps nothing:
// env, pty-req, x11-req, auth-agent-req, subsystem, signals.
func sessionHandler(srv *ssh.Server, conn *gossh.ServerConn, nc gossh.NewChannel, ctx ssh.Context) {
	if n, ok := ctx.Value(sessionsCtx).(*atomic.Int32); ok {
		if n.Add(1) > MaxSessionsPerConn {
			n.Add(-1)
			nc.Reject(gossh.ResourceShortage, "too many sessions on this connection")
			return
		}
		defer n.Add(-1)
	}
	ssh.DefaultSessionHandler(srv, conn, filteredChannel{nc}, ctx)
}

type filteredChannel struct{ gossh.NewChannel }

func (c filteredChannel) Accept() (gossh.Channel, <-chan *gossh.Request, error) {
	ch, reqs, err := c.NewChannel.Accept()
	if err != nil {
		return nil, nil, err
	}
	// The input is drained at once, or x/crypto keeps up to a 2 MiB
	// window of it per channel for as long as the connection lives; the
	// first maxInput bytes are kept for the one command that reads it
	// (sshfp).
	in := newInput(ch)
	out := make(chan *gossh.Request)
	go func() {
		defer close(out)
		for r := range reqs {
			if r.Type == "exec" || r.Type == "shell" {
				out <- r
				continue
			}
			if r.WantReply {
				r.Reply(false, nil)
			}
		}
	}()
	return in, out, nil
}

// maxInput bounds the input a session keeps: sshfp's limit, and a byte
// more to tell it was over.
const maxInput = maxSSHFPInput + 1

// input is a session channel whose input is read as it arrives: the
// first maxInput bytes kept for Read, the rest dropped.
type input struct {
	gossh.Channel
	mu   sync.Mutex
	more *sync.Cond
	buf  []byte // kept, not yet read
	kept int    // bytes kept in all
	eof  bool
}

func newInput(ch gossh.Channel) *input {
	in := &input{Channel: ch}
	in.more = sync.NewCond(&in.mu)
	go func() {
		b := make([]byte, 4096)
		for {
			n, err := ch.Read(b)
			in.mu.Lock()
			if keep := min(n, maxInput-in.kept); keep > 0 {
				in.buf = append(in.buf, b[:keep]...)
				in.kept += keep
			}
			if err != nil {
				in.eof = true
			}
			in.more.Broadcast()
			in.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	return in
}

// Read returns the kept input, waiting for it, then io.EOF.
func (in *input) Read(p []byte) (int, error) {
	in.mu.Lock()
	defer in.mu.Unlock()
	for len(in.buf) == 0 && !in.eof {
		in.more.Wait()
	}
	if len(in.buf) == 0 {
		return 0, io.EOF
	}
	n := copy(p, in.buf)
	in.buf = in.buf[n:]
	return n, nil
}

// peerAddr returns the client's address; an IPv4-mapped IPv6 address
// (from a dual-stack listener) counts as IPv4.
func peerAddr(a net.Addr) (netip.Addr, bool) {
	ta, ok := a.(*net.TCPAddr)
	if !ok {
		return netip.Addr{}, false
	}
	ap := ta.AddrPort()
	return publish.Address(ap.Addr()), ap.Addr().IsValid()
}
