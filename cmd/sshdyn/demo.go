package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	gossh "golang.org/x/crypto/ssh"

	"github.com/sshdyn/sshdyn/sshd"
)

// demoMarker marks a directory made by "sshdyn demo", which a later demo
// may clear; any other existing directory is left alone.
const demoMarker = ".sshdyn-demo"

// demoZone is the zone the demo serves.
const demoZone = "dyn.example.com"

// demo writes a complete single-machine set-up in dir (the embedded
// primary for dyn.example.com, a TSIG key, a client key with its
// authorized line, a host key pinned in a known_hosts file), prints the
// commands to try, and serves until ctx ends.
func demo(ctx context.Context, dir string, sshPort, dnsPort int, stdout, logOut io.Writer) error {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	if err := prepareDemoDir(dir); err != nil {
		return err
	}
	if err := writeDemoServer(dir, sshPort, dnsPort); err != nil {
		return err
	}
	if err := writeDemoClient(dir, sshPort); err != nil {
		return err
	}
	ssh := "ssh -F " + filepath.Join(dir, "ssh_config")
	dig := fmt.Sprintf("dig +short -p %d @127.0.0.1 home.%s", dnsPort, demoZone)
	ready := func() {
		fmt.Fprintf(stdout, `
sshdyn is running: SSH on 127.0.0.1:%[1]d and [::1]:%[1]d, the zone %[2]s on
127.0.0.1:%[3]d and [::1]:%[3]d (files in %[4]s). In another terminal:

  %[5]s A
  %[6]s sshdyn-demo update
  %[5]s A
  %[6]s -b 127.0.0.2 sshdyn-demo update     # from another address
  %[5]s A
  %[6]s sshdyn-demo6 update                 # over IPv6: sets AAAA
  %[5]s AAAA
  %[6]s sshdyn-demo status

Ctrl-C stops it.
`, sshPort, demoZone, dnsPort, dir, dig, ssh)
	}
	return serve(ctx, filepath.Join(dir, "sshdyn.toml"), logOut, ready)
}

// writeFiles writes each name's text into dir, with its mode.
func writeFiles(dir string, files ...demoFile) error {
	for _, f := range files {
		if err := os.WriteFile(filepath.Join(dir, f.name), []byte(f.text), f.mode); err != nil {
			return err
		}
	}
	return nil
}

type demoFile struct {
	name, text string
	mode       os.FileMode
}

// writeDemoServer writes the server's side: the TSIG key, the zone file,
// the configuration.
func writeDemoServer(dir string, sshPort, dnsPort int) error {
	secret := make([]byte, 32)
	rand.Read(secret)
	return writeFiles(dir,
		demoFile{"tsig.key", fmt.Sprintf("key \"sshdyn\" {\n\talgorithm hmac-sha256;\n\tsecret %q;\n};\n", base64.StdEncoding.EncodeToString(secret)), 0o600},
		demoFile{demoZone + ".zone", fmt.Sprintf(`$ORIGIN %s.
$TTL 300
@	SOA	ns hostmaster 1 3600 600 86400 60
@	NS	ns
ns	A	127.0.0.1
`, demoZone), 0o644},
		demoFile{"sshdyn.toml", fmt.Sprintf(`# Written by "sshdyn demo": SSH and the embedded primary on loopback.
listen = ["127.0.0.1:%[1]d", "[::1]:%[1]d"]
host_key = "host_ed25519"
authorized_keys = "authorized_keys"
allow_private = true   # the demo's clients connect from loopback
dns_listen = ["127.0.0.1:%[2]d", "[::1]:%[2]d"]

[[zone]]
name = %[3]q
file = "%[3]s.zone"
tsig_key = "tsig.key"
ttl = 60
`, sshPort, dnsPort, demoZone), 0o644},
	)
}

// writeDemoClient writes the client's side and what joins the two: the
// client key and its authorized line, the host key pinned in a
// known_hosts file, and an ssh_config of its own, so that the commands
// work from any directory, whatever the user's ~/.ssh holds, and never
// ask a question.
func writeDemoClient(dir string, sshPort int) error {
	clientPub, err := writeClientKey(filepath.Join(dir, "client_ed25519"))
	if err != nil {
		return err
	}
	signer, _, err := sshd.LoadOrCreateHostKey(filepath.Join(dir, "host_ed25519"))
	if err != nil {
		return err
	}
	hk := strings.TrimSpace(string(gossh.MarshalAuthorizedKey(signer.PublicKey())))
	return writeFiles(dir,
		demoFile{"authorized_keys", fmt.Sprintf("host=\"home.%s\" %s\n", demoZone, clientPub), 0o644},
		demoFile{"known_hosts", fmt.Sprintf("[127.0.0.1]:%d %s\n[::1]:%d %s\n", sshPort, hk, sshPort, hk), 0o644},
		demoFile{"ssh_config", fmt.Sprintf(`Host sshdyn-demo sshdyn-demo6
	Port %d
	User demo
	IdentityFile %s
	IdentitiesOnly yes
	UserKnownHostsFile %s
	GlobalKnownHostsFile /dev/null
	StrictHostKeyChecking yes
	BatchMode yes
	RequestTTY no
Host sshdyn-demo
	HostName 127.0.0.1
Host sshdyn-demo6
	HostName ::1
`, sshPort, filepath.Join(dir, "client_ed25519"), filepath.Join(dir, "known_hosts")), 0o644},
	)
}

// prepareDemoDir makes dir empty: it creates it, or clears an earlier
// demo's. It refuses any other directory that is not empty.
func prepareDemoDir(dir string) error {
	fi, err := os.Lstat(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return err
	default:
		if err := privateDir(dir, fi); err != nil {
			return err
		}
		entries, err := os.ReadDir(dir)
		if err != nil {
			return err
		}
		if len(entries) > 0 {
			if _, err := os.Lstat(filepath.Join(dir, demoMarker)); err != nil {
				return fmt.Errorf("demo: %s exists and was not made by sshdyn demo; give another --dir", dir)
			}
		}
		if err := os.RemoveAll(dir); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return err
	}
	// Mkdir, not MkdirAll: if another user made it in the meantime, this
	// fails instead of using theirs.
	if err := os.Mkdir(dir, 0o700); err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	return os.WriteFile(filepath.Join(dir, demoMarker), nil, 0o600)
}

// privateDir reports why the existing dir is not one the demo may clear
// and reuse: a symbolic link, not a directory, another user's, or open to
// other users. Another local user could otherwise plant an ssh_config
// whose ProxyCommand the printed ssh commands would run.
func privateDir(dir string, fi os.FileInfo) error {
	switch {
	case fi.Mode()&os.ModeSymlink != 0:
		return fmt.Errorf("demo: %s is a symbolic link; give another --dir", dir)
	case !fi.IsDir():
		return fmt.Errorf("demo: %s is not a directory; give another --dir", dir)
	case !ownedByMe(fi):
		return fmt.Errorf("demo: %s belongs to another user; give another --dir", dir)
	case fi.Mode().Perm()&0o077 != 0:
		return fmt.Errorf("demo: %s is mode %04o, open to other users; give another --dir", dir, fi.Mode().Perm())
	}
	return nil
}

// writeClientKey writes a new ed25519 key in OpenSSH's format (mode 0600)
// and returns its public half as an authorized_keys line.
func writeClientKey(path string) (string, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return "", err
	}
	block, err := gossh.MarshalPrivateKey(priv, "sshdyn-demo")
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
		return "", err
	}
	sp, err := gossh.NewPublicKey(pub)
	if err != nil {
		return "", err
	}
	line := strings.TrimSpace(string(gossh.MarshalAuthorizedKey(sp))) + " sshdyn-demo"
	return line, os.WriteFile(path+".pub", []byte(line+"\n"), 0o644)
}
