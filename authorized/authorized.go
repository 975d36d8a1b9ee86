// Package authorized parses sshdyn's authorized file, which maps each SSH
// public key to the host names it may update, and keeps the current map
// for lookups while it is reloaded.
//
// The file uses OpenSSH's authorized_keys syntax; options carry the mapping:
//
//	host="home.dyn.example.com" ssh-ed25519 AAAA... home-server
//	host="nas.dyn.example.com",host="cam.dyn.example.com",ttl=120 ssh-ed25519 AAAA... nas
//
// Every bad line is an error naming file and line; none is skipped.
package authorized

import (
	"fmt"
	"net/netip"
	"slices"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/sshdyn/sshdyn/dnsname"
)

// Scope is what an authorized file's host names are checked against.
type Scope struct {
	// Zones are the configured zones (canonical names): every host must
	// be strictly inside one of them.
	Zones []string
	// Reserved maps names no line may list to why: the names a zone's NS,
	// MX and SRV records point at, when sshdyn knows them (the embedded
	// primary's zones).
	Reserved map[string]string
	// MinPasswordCost is the lowest bcrypt cost an http-password may have
	// (PasswordCost if 0). Tests lower it; an operator has no setting.
	MinPasswordCost int
	// CheckNotify, if set, checks a notify= URL.
	CheckNotify func(url string) error
}

// The bcrypt costs an http-password may have. PasswordCost is the cost
// "sshdyn passwd" makes (about a quarter of a second of CPU). A cheaper
// hash is refused: it is quick to crack offline, and an unknown user
// (compared against a dummy hash of PasswordCost) would take longer
// than a known one, so user names could be told apart by timing (audit
// finding H6: at cost 5, 358 ms against 3 ms). A dearer one is refused
// too: each comparison is CPU that any stranger can make the front
// spend (cost 15 is eight times cost 12).
const (
	PasswordCost    = 12
	MaxPasswordCost = 14
)

// Entry is one key's line: the key and what it may update.
type Entry struct {
	Key     ssh.PublicKey
	Hosts   []string // canonical: lower case, no trailing dot
	TTL     uint32   // 0: the zone's default
	Comment string
	Line    int

	From         *From     // from="...": where the key may connect from; nil: anywhere
	Expiry       time.Time // expiry-time="...": zero if none
	AllowPrivate bool      // allow-private: may publish non-public addresses
	// Wildcard (wildcard) makes every update of the line's hosts set
	// *.HOST to the same address, in the same change.
	Wildcard bool

	// LANHosts are hosts of the home's LAN whose AAAA follow the IPv6
	// prefix this line publishes from (lan-host="NAME=IID"): each is the
	// prefix, PrefixLen bits of it, and the host's interface ID.
	LANHosts  []LANHost
	PrefixLen int // prefix-length=: 48 to 64; 64 if not given
	// IID, iid=, is the interface ID of the line's own hosts: a
	// prefix-only update (dyndns2's myipv6=PREFIX/LEN) gives a host with
	// no AAAA yet the prefix and this ID.
	IID netip.Addr

	// HTTPUser and HTTPPassword (a bcrypt hash) let the line's identity
	// log in over HTTP (the dyndns2 front) too. A line may have them and
	// no Key: a router's line, which cannot log in over SSH.
	HTTPUser     string
	HTTPPassword string

	// SharedHosts (shared-hosts) lets the line's hosts be on other lines
	// that have it too; without it a host is on one line only, so no key
	// can overwrite another's address.
	SharedHosts bool

	// NoACME (no-acme) forbids the key to answer ACME challenges.
	NoACME bool

	// SSHFP (sshfp) lets the key publish its hosts' SSH host key
	// fingerprints (SSHFP records); off by default.
	SSHFP bool

	// StaleAfter (stale-after=), if set, overrides the zone's and the
	// global stale_after for this line's hosts. Notify (notify=) are
	// more targets told about them.
	StaleAfter *time.Duration
	Notify     []string

	// CA (cert-authority): Key is a certificate authority's, which never
	// logs in itself; a user certificate it signed does, with the
	// certificate's principals as its hosts, as far as the line's host=
	// values allow: exact names (Hosts) and *.SUFFIX (Below: any name
	// strictly below SUFFIX).
	CA    bool
	Below []string

	// Cert is set on the entry Lookup makes for a certificate: the
	// certificate (also in Key), the CA's line in the other fields.
	Cert *ssh.Certificate
}

// LANHost is a host of the LAN behind a line's updater.
type LANHost struct {
	Name string     // canonical
	IID  netip.Addr // the interface ID: an IPv6 address whose prefix bits are zero
}

// DefaultPrefixLen is the prefix length LAN hosts share when the line
// does not say.
const DefaultPrefixLen = 64

// Permits reports, as an error for the log and the client, why the key may
// not be used from addr at now; nil if it may.
func (e *Entry) Permits(addr netip.Addr, now time.Time) error {
	if !e.Expiry.IsZero() && !now.Before(e.Expiry) {
		return fmt.Errorf("key expired at %s", e.Expiry.UTC().Format(time.RFC3339))
	}
	if e.From != nil && !e.From.Match(addr) {
		return fmt.Errorf("key not allowed from %s", addr)
	}
	return nil
}

// ID returns a string that names the identity of this line, for limits
// that follow it across fronts and reloads: the key's wire encoding, or
// for a line without a key its HTTP user.
func (e *Entry) ID() string {
	switch {
	case e.Key == nil:
		return "http-user:" + e.HTTPUser
	case e.Cert != nil:
		return string(e.Cert.Key.Marshal()) // the certificate's key: its renewals share the limits
	}
	return string(e.Key.Marshal())
}

// Owns reports whether host (any case, trailing dot or not) is one of e's.
func (e *Entry) Owns(host string) bool {
	return slices.Contains(e.Hosts, dnsname.Canonical(host))
}
