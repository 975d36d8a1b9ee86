package sshd

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/gliderlabs/ssh"
	gossh "golang.org/x/crypto/ssh"

	"github.com/sshdyn/sshdyn/authorized"
)

// identify returns the entry of key, a plain key or a certificate, for a
// login or a command on conn. A plain key not in the file is (nil, nil).
// A certificate must pass x/crypto's CertChecker.Authenticate: a user
// certificate, signed by a CA a cert-authority line trusts, its signature
// good, within its validity window (CertClockSkew either side), from an
// address its source-address allows, and no other critical option (an
// option sshdyn does not understand, force-command included, refuses
// it); then it gets its usable principals as hosts. Revoked keys and
// certificates are refused.
func (s *Server) identify(conn gossh.ConnMetadata, key gossh.PublicKey) (*authorized.Entry, error) {
	if err := s.Service.CheckRevoked(key); err != nil { // the core's Revoked, as every front asks it
		return nil, err
	}
	cert, ok := key.(*gossh.Certificate)
	if !ok {
		e, ok := s.Hosts.Lookup(key)
		if !ok {
			return nil, nil
		}
		return e, nil
	}
	if err := s.checkCert(conn, cert); err != nil {
		return nil, err
	}
	e, ignored, err := s.Hosts.Certificate(cert)
	if err != nil {
		if len(ignored) > 0 {
			err = fmt.Errorf("%v; principals ignored: %s", err, strings.Join(ignored, ", "))
		}
		return nil, err
	}
	return e, nil
}

// checkCert runs CertChecker.Authenticate on cert. Authenticate would
// also require the SSH user name to be a principal; sshdyn ignores the
// user name (principals are host names), so it is shown the first
// principal as the user.
func (s *Server) checkCert(conn gossh.ConnMetadata, cert *gossh.Certificate) error {
	now := time.Now()
	checker := &gossh.CertChecker{
		IsUserAuthority: s.Hosts.Authority,
		// None: source-address is Authenticate's own check, and any other
		// critical option refuses the certificate.
		SupportedCriticalOptions: nil,
		Clock:                    func() time.Time { return skewed(now, cert) },
	}
	if len(cert.ValidPrincipals) == 0 {
		return errors.New("certificate has no principals: it names no host")
	}
	if _, err := checker.Authenticate(principalUser{conn, cert.ValidPrincipals[0]}, cert); err != nil {
		return err
	}
	// x/crypto enforces source-address only on the Permissions the public
	// key callback returns, and gliderlabs returns one Permissions for
	// every key a client offers: enforce it here, for this certificate.
	return sourceAddress(conn.RemoteAddr(), cert)
}

// sourceAddress checks cert's source-address critical option (a comma
// separated list of addresses and CIDR prefixes), if it has one, against
// the peer's address.
func sourceAddress(remote net.Addr, cert *gossh.Certificate) error {
	list, ok := cert.CriticalOptions["source-address"]
	if !ok {
		return nil
	}
	peer, ok := peerAddr(remote)
	if !ok {
		return errors.New("source-address: cannot tell the peer's address")
	}
	for _, s := range strings.Split(list, ",") {
		pfx, err := netip.ParsePrefix(s)
		if err != nil {
			a, aerr := netip.ParseAddr(s)
			if aerr != nil {
				return fmt.Errorf("source-address: %q is not an address or prefix", s)
			}
			pfx = netip.PrefixFrom(a, a.BitLen())
		}
		if pfx.Contains(peer) {
			return nil
		}
	}
	return fmt.Errorf("source-address %s does not allow %s", list, peer)
}

// skewed returns now, moved by up to CertClockSkew into cert's validity
// window if it is that close outside it.
func skewed(now time.Time, cert *gossh.Certificate) time.Time {
	after := time.Unix(int64(cert.ValidAfter), 0)
	if cert.ValidAfter <= 1<<62 && now.Before(after) && after.Sub(now) <= CertClockSkew {
		return after
	}
	if cert.ValidBefore != gossh.CertTimeInfinity && cert.ValidBefore <= 1<<62 {
		before := time.Unix(int64(cert.ValidBefore), 0)
		if !now.Before(before) && now.Sub(before) < CertClockSkew {
			return before.Add(-time.Second)
		}
	}
	return now
}

// connMeta is gliderlabs' context as x/crypto's ConnMetadata.
type connMeta struct{ ssh.Context }

func (c connMeta) SessionID() []byte     { return []byte(c.Context.SessionID()) }
func (c connMeta) ClientVersion() []byte { return []byte(c.Context.ClientVersion()) }
func (c connMeta) ServerVersion() []byte { return []byte(c.Context.ServerVersion()) }

// principalUser is conn with the user name replaced.
type principalUser struct {
	gossh.ConnMetadata
	user string
}

func (p principalUser) User() string { return p.user }

// describeKey names a key for the log: a certificate by its key ID,
// serial and principals.
func describeKey(key gossh.PublicKey) string {
	if c, ok := key.(*gossh.Certificate); ok {
		return fmt.Sprintf("certificate id=%q serial=%d principals=%s key=%s ca=%s", c.KeyId, c.Serial,
			strings.Join(c.ValidPrincipals, ","), gossh.FingerprintSHA256(c.Key), gossh.FingerprintSHA256(c.SignatureKey))
	}
	return gossh.FingerprintSHA256(key)
}

// netConn is a logged-in connection as x/crypto's ConnMetadata, for
// identify: only its addresses are known here (the user name plays no
// part, and a certificate is shown its own principal).
type netConn struct{ net.Conn }

func (netConn) User() string          { return "" }
func (netConn) SessionID() []byte     { return nil }
func (netConn) ClientVersion() []byte { return nil }
func (netConn) ServerVersion() []byte { return nil }
