package load

import (
	"bufio"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strings"
	"sync/atomic"

	"golang.org/x/crypto/ssh"
)

// Keys is a set of simulated hosts' ed25519 keys, kept as seeds: 10,000
// keys are a 650 KB file.
type Keys struct {
	seeds [][]byte
}

// NewKeys makes n random keys.
func NewKeys(n int) *Keys {
	k := &Keys{}
	for i := 0; i < n; i++ {
		seed := make([]byte, ed25519.SeedSize)
		rand.Read(seed)
		k.seeds = append(k.seeds, seed)
	}
	return k
}

// ReadKeys reads a file written by Keys.Write: one hex seed per line.
func ReadKeys(path string) (*Keys, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	k := &Keys{}
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		seed, err := hex.DecodeString(strings.TrimSpace(sc.Text()))
		if err != nil || len(seed) != ed25519.SeedSize {
			return nil, fmt.Errorf("%s:%d: not a hex ed25519 seed", path, n)
		}
		k.seeds = append(k.seeds, seed)
	}
	return k, sc.Err()
}

// Write writes the seeds, one per line, to w. They are private keys.
func (k *Keys) Write(w io.Writer) error {
	for _, s := range k.seeds {
		if _, err := fmt.Fprintln(w, hex.EncodeToString(s)); err != nil {
			return err
		}
	}
	return nil
}

// Len is the number of keys.
func (k *Keys) Len() int { return len(k.seeds) }

// Signer returns key i.
func (k *Keys) Signer(i int) ssh.Signer {
	s, err := ssh.NewSignerFromKey(ed25519.NewKeyFromSeed(k.seeds[i]))
	if err != nil {
		panic(err) // an ed25519 key always makes a signer
	}
	return s
}

// Host is the host name key i owns in the authorized file: h<i>.<zone>.
func Host(i int, zone string) string { return fmt.Sprintf("h%d.%s", i, zone) }

// Authorized writes an sshdyn authorized file giving key i the host
// Host(i, zone); prefix, if not empty, goes before each key (OpenSSH
// options, e.g. a forced command; %[1]s in it is the host).
func (k *Keys) Authorized(w io.Writer, zone, prefix string) error {
	for i := range k.seeds {
		host := Host(i, zone)
		opts := fmt.Sprintf("host=%q", host)
		if prefix != "" {
			opts = fmt.Sprintf(prefix, host)
		}
		line := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(k.Signer(i).PublicKey())))
		if _, err := fmt.Fprintf(w, "%s %s h%d\n", opts, line, i); err != nil {
			return err
		}
	}
	return nil
}

// Clients returns one Client per key. With sources, client i connects
// from sources[i%len] (each host keeps one address: the nochg path); with
// change also set, it alternates between that address and the next one
// in sources, so that every update is a change.
func (k *Keys) Clients(sources []netip.Addr, change bool) []Client {
	out := make([]Client, len(k.seeds))
	for i := range out {
		out[i].Signer = k.Signer(i)
		if len(sources) == 0 {
			continue
		}
		out[i].Sources = []netip.Addr{sources[i%len(sources)]}
		if change {
			out[i].Sources = append(out[i].Sources, sources[(i+1)%len(sources)])
			out[i].turn = new(atomic.Uint32)
		}
	}
	return out
}

// Loopback returns n addresses from 127.0.0.0/8 that a client can bind
// on Linux without any set-up: 127.<a>.<b>.<c>, from base upward.
func Loopback(base netip.Addr, n int) []netip.Addr {
	out := make([]netip.Addr, 0, n)
	a := base
	for len(out) < n {
		if b := a.As4(); b[3] != 0 && b[3] != 255 {
			out = append(out, a)
		}
		a = a.Next()
	}
	return out
}
