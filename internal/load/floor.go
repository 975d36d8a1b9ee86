package load

import (
	"net"

	"github.com/gliderlabs/ssh"
	gossh "golang.org/x/crypto/ssh"

	"github.com/sshdyn/sshdyn/sshd"
)

// Floor is the benchmarks' floor: an SSH server built like sshdyn's
// (gliderlabs/ssh, the same host key type, the key looked up in the same
// authorized map) whose every command exits 0 at once, with no DNS work.
// What it costs per connection is the handshake and the login alone.
type Floor struct {
	Hosts  sshd.Authorizer
	Signer gossh.Signer
}

// Serve accepts connections on l until it is closed.
func (f *Floor) Serve(l net.Listener) error {
	srv := &ssh.Server{
		Version: "sshdyn-floor",
		Handler: func(s ssh.Session) {
			if _, ok := f.Hosts.Lookup(s.PublicKey()); !ok {
				s.Exit(77)
				return
			}
			s.Exit(0)
		},
		PublicKeyHandler: func(_ ssh.Context, key ssh.PublicKey) bool {
			_, ok := f.Hosts.Lookup(key)
			return ok
		},
	}
	srv.AddHostKey(f.Signer)
	return srv.Serve(l)
}
