// Package config loads sshdyn's TOML configuration: defaults, then the
// file, then normalisation (canonical names, default ports and per-zone
// defaults), then Validate. Unknown keys are errors naming their line.
//
// The defaults of the values other packages own are theirs (sshd's
// timeouts and connection caps, publish's limits, update's exchange
// timeout); Default refers to them, so each is defined once, and a zero
// means the same here as there.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"
	"github.com/pelletier/go-toml/v2"
	"golang.org/x/crypto/bcrypt"
	gossh "golang.org/x/crypto/ssh"

	"github.com/sshdyn/sshdyn/dnsname"
	"github.com/sshdyn/sshdyn/dyndns2"
	"github.com/sshdyn/sshdyn/notify"
	"github.com/sshdyn/sshdyn/publish"
	"github.com/sshdyn/sshdyn/sshd"
	"github.com/sshdyn/sshdyn/state"
	"github.com/sshdyn/sshdyn/update"
	"github.com/sshdyn/sshdyn/zone"
)

// Config is the whole configuration of sshdyn serve.
type Config struct {
	Listen         []string `toml:"listen"`          // SSH listen addresses, host:port
	HostKey        string   `toml:"host_key"`        // ed25519 host key, created on first start
	AuthorizedKeys string   `toml:"authorized_keys"` // key -> hosts map
	// RevokedKeys is an OpenSSH KRL (ssh-keygen -k) or a list of public
	// keys; the keys and certificates it revokes cannot log in.
	RevokedKeys    string   `toml:"revoked_keys"`
	ReloadInterval Duration `toml:"reload_interval"` // how often to look for changes to it; 0: only on SIGHUP
	AllowPrivate   bool     `toml:"allow_private"`   // accept loopback, RFC 1918, ULA, ... peer addresses
	LogFormat      string   `toml:"log_format"`      // "text" or "json"

	// MetricsListen, host:port, serves Prometheus metrics at /metrics
	// over plain HTTP; empty (the default) serves none.
	MetricsListen string `toml:"metrics_listen"`
	// MetricsPprof also serves Go's profiler at /debug/pprof/ on the
	// metrics listener: for measuring, never on an untrusted network.
	MetricsPprof bool `toml:"metrics_pprof"`
	// MetricsPerHost also exports each host family's last success
	// (sshdyn_host_last_success_timestamp_seconds{host,family}): one
	// series per host, for small fleets.
	MetricsPerHost bool `toml:"metrics_per_host"`

	LoginTimeout   Duration `toml:"login_timeout"`   // handshake plus authentication
	SessionTimeout Duration `toml:"session_timeout"` // a whole connection

	MaxUnauthenticated          int `toml:"max_unauthenticated"`            // connections not yet logged in, in total; more wait to be accepted
	MaxUnauthenticatedPerSource int `toml:"max_unauthenticated_per_source"` // the same, per source address

	// SSHKeyExchanges, SSHCiphers and SSHMACs replace the modern
	// algorithm sets sshdyn offers (sshd.DefaultKeyExchanges, …), for
	// an old client; empty keeps them.
	SSHKeyExchanges []string `toml:"ssh_key_exchanges"`
	SSHCiphers      []string `toml:"ssh_ciphers"`
	SSHMACs         []string `toml:"ssh_macs"`

	AuthFailPenalty Duration `toml:"auth_fail_penalty"` // added to a source's penalty per failed login; 0: off
	AuthFailGrace   Duration `toml:"auth_fail_grace"`   // penalty tolerated before refusing the source

	MaxDNSInFlight int `toml:"max_dns_in_flight"` // commands doing DNS work at once

	MaxConnsPerKey int `toml:"max_connections_per_key"` // logged-in SSH connections of one key at once

	MaxChangesPerKey int      `toml:"max_changes_per_key"` // record changes per key per change_window; 0: no limit
	ChangeWindow     Duration `toml:"change_window"`
	// MaxRequestsPerKey bounds the requests (update, status; changed or
	// not) per key per request_window; 0: no limit.
	MaxRequestsPerKey int      `toml:"max_requests_per_key"`
	RequestWindow     Duration `toml:"request_window"`

	// HTTPListen serves the dyndns2 front for routers (GET /nic/update)
	// on these addresses, host:port; empty (the default) serves none.
	// With TLSCert and TLSKey it is HTTPS (the files are read again when
	// they change); without, plain HTTP is allowed on loopback addresses
	// only, unless HTTPInsecure is set.
	HTTPListen   []string `toml:"http_listen"`
	TLSCert      string   `toml:"tls_cert"`
	TLSKey       string   `toml:"tls_key"`
	HTTPInsecure bool     `toml:"http_insecure"`
	// TrustedProxies are the addresses or networks of reverse proxies
	// whose ProxyHeader names the client.
	TrustedProxies []string `toml:"trusted_proxies"`
	// ProxyHeader is the header a trusted proxy names the client in:
	// "X-Forwarded-For" (the default; the right-most address in it that
	// is not a trusted proxy) or "X-Real-IP". Only that header is read.
	ProxyHeader string `toml:"proxy_header"`
	// HTTPQueryCredentials accepts username and password (or user and
	// pass) as query parameters from a client that sends no Basic auth:
	// routers and NAS boxes whose custom-provider URL has no other place
	// for them (Synology DSM, MikroTik scripts). Off by default: proxies
	// and browsers keep URLs in their logs.
	HTTPQueryCredentials bool `toml:"http_query_credentials"`
	// HTTPMaxConns and HTTPMaxConnsPerSource cap the connections the
	// front holds open (idle keep-alive ones included), in total and
	// per source (an IPv4 address, an IPv6 /64); a connection over a cap
	// is closed at once.
	HTTPMaxConns          int `toml:"http_max_connections"`
	HTTPMaxConnsPerSource int `toml:"http_max_connections_per_source"`

	// DNSListen is where the embedded primary answers (UDP and TCP), for
	// the zones that have a file.
	DNSListen []string `toml:"dns_listen"`
	// Response rate limiting of the embedded primary's UDP answers: per
	// client network (/24, /56) and kind of answer, RRLRate a second
	// (0: off), every RRLSlip-th limited one sent truncated, a flood
	// remembered for RRLWindow; RRLExempt networks are never limited.
	RRLRate   int      `toml:"rrl_rate"`
	RRLSlip   int      `toml:"rrl_slip"`
	RRLWindow Duration `toml:"rrl_window"`
	RRLExempt []string `toml:"rrl_exempt"`
	// DNSCookieSecret is the DNS cookie secret (32 hex digits) shared by
	// several servers of the zone; empty: random, rotated.
	DNSCookieSecret string `toml:"dns_cookie_secret"`
	// DNSNSID is sent to queries that ask for it (RFC 5001).
	DNSNSID string `toml:"dns_nsid"`
	// The embedded primary's TCP caps: connections in all, per source,
	// and the idle timeout.
	DNSTCPMaxConns          int      `toml:"dns_tcp_max_connections"`
	DNSTCPMaxConnsPerSource int      `toml:"dns_tcp_max_connections_per_source"`
	DNSTCPIdleTimeout       Duration `toml:"dns_tcp_idle_timeout"`

	// StateDB is the operator's store: a SQLite file (default: state.db
	// beside the host key), a postgres:// URL (several frontends, one
	// history), or "off".
	StateDB        string   `toml:"state_db"`
	HistoryKeep    Duration `toml:"history_keep"`     // events kept this long
	HistoryPerHost int      `toml:"history_per_host"` // and at most this many per host
	// StaleAfter flags a host family that has had no good or nochg for
	// this long (0: off); a zone's and a line's stale-after= override it.
	// StaleFailures flags one whose last so many updates failed.
	StaleAfter    Duration `toml:"stale_after"`
	StaleFailures int      `toml:"stale_failures"`
	// Notify are the targets told when a host family goes stale or
	// recovers (ntfy://, generic://, smtp://, sendmail://); a line's notify= adds its
	// own. NotifySecret signs generic webhooks (X-Sshdyn-Signature).
	Notify       []string `toml:"notify"`
	NotifySecret string   `toml:"notify_secret"`
	// NotifyChanges also tells every change of a host's address (a
	// message per host family changed, from the frontend that made it).
	NotifyChanges bool `toml:"notify_changes"`

	// AdminListen, host:port, serves the operator's view (/hosts, its
	// JSON, each host's history); empty: none. Off loopback it needs
	// tls_cert and AdminUsers (name → bcrypt hash from sshdyn passwd).
	AdminListen string            `toml:"admin_listen"`
	AdminUsers  map[string]string `toml:"admin_users"`

	Zones []Zone `toml:"zone"`
}

// Zone is one zone and how to reach its primary.
type Zone struct {
	Name string `toml:"name"`
	// Backend is how the zone is written: "rfc2136" (the default: signed
	// updates to primary), "tinydns" (a block of tinydns_root's data
	// file, compiled with tinydns-data) or "libdns" (a provider's HTTP
	// API: provider, api_url, api_key_file, server_id).
	Backend     string   `toml:"backend"`
	TinydnsRoot string   `toml:"tinydns_root"`
	Provider    string   `toml:"provider"`
	APIURL      string   `toml:"api_url"`
	APIKeyFile  string   `toml:"api_key_file"`
	ServerID    string   `toml:"server_id"`
	Primary     string   `toml:"primary"`  // host:port; port 53 if omitted
	TSIGKey     string   `toml:"tsig_key"` // key file: BIND key statement or hmac-sha256:name:secret
	TTL         uint32   `toml:"ttl"`
	Timeout     Duration `toml:"timeout"` // per DNS exchange

	// ACME lets keys answer ACME DNS-01 challenges for their hosts (TXT
	// at _acme-challenge.HOST, with acme_ttl); the primary must grant
	// TXT. WaitFor are name servers (host[:port]) that must serve a
	// change before "acme present" and "update --wait" return, within
	// wait_timeout.
	ACME        bool     `toml:"acme"`
	ACMETTL     uint32   `toml:"acme_ttl"`
	WaitFor     []string `toml:"wait_for"`
	WaitTimeout Duration `toml:"wait_timeout"`
	// StaleAfter overrides the global stale_after for this zone's hosts.
	StaleAfter Duration `toml:"stale_after"`

	// File makes sshdyn the zone's primary (the embedded one): the zone
	// is served from this zone file. Each change is appended to the
	// journal FILE.jnl before it is acknowledged; the file is rewritten
	// from it when the journal reaches journal_limit bytes (default:
	// about a quarter of the zone file, at least 1 MiB), zonefile_sync
	// after its oldest change (default 1m), and at shutdown. The fields
	// below apply to such a zone only.
	File          string   `toml:"file"`
	UpdateTypes   []string `toml:"update_types"`   // RR types tsig_key may change; default A, AAAA
	AllowTransfer []string `toml:"allow_transfer"` // addresses or networks that may AXFR; default none
	TransferKey   string   `toml:"transfer_key"`   // TSIG key transfers must be signed with; optional
	Notify        []string `toml:"notify"`         // secondaries told of changes, host[:port]
	JournalLimit  int64    `toml:"journal_limit"`
	ZonefileSync  Duration `toml:"zonefile_sync"`
	// RRLRate, if set, overrides the global rrl_rate for this zone's
	// answers (0: off for it).
	RRLRate *int `toml:"rrl_rate"`

	// DNSSEC signs the zone served here as it changes: a key is made on
	// the first start (dnssec_algorithm, in dnssec_key_dir: default the
	// zone file's directory); signatures are valid
	// dnssec_signature_validity (14d) and made again
	// dnssec_signature_refresh (7d) before they expire.
	DNSSEC            bool     `toml:"dnssec"`
	DNSSECAlgorithm   string   `toml:"dnssec_algorithm"`
	DNSSECKeyDir      string   `toml:"dnssec_key_dir"`
	DNSSECNSEC3       bool     `toml:"dnssec_nsec3"`
	SignatureValidity Duration `toml:"dnssec_signature_validity"`
	SignatureRefresh  Duration `toml:"dnssec_signature_refresh"`
	// A key rollover (sshdyn dnssec roll) waits these.
	PropagationDelay Duration `toml:"dnssec_propagation_delay"`
	ParentDSTTL      Duration `toml:"dnssec_parent_ds_ttl"`
}

// Signing returns the zone's DNSSEC settings, nil when it is not signed;
// Validate has checked them.
func (z Zone) Signing() *zone.DNSSEC {
	if !z.DNSSEC {
		return nil
	}
	alg, _ := zone.ParseAlgorithm(z.DNSSECAlgorithm)
	return &zone.DNSSEC{Algorithm: alg, Validity: z.SignatureValidity.Duration, Refresh: z.SignatureRefresh.Duration, KeyDir: z.DNSSECKeyDir,
		Propagation: z.PropagationDelay.Duration, ParentDSTTL: z.ParentDSTTL.Duration, NSEC3: z.DNSSECNSEC3}
}

// Embedded reports whether sshdyn itself serves the zone.
func (z Zone) Embedded() bool { return z.File != "" }

// TransferPrefixes returns AllowTransfer as networks; Validate has
// checked them.
func (z Zone) TransferPrefixes() []netip.Prefix { return prefixes(z.AllowTransfer) }

// Types returns UpdateTypes as RR type numbers; Validate has checked them.
func (z Zone) Types() []uint16 {
	var out []uint16
	for _, t := range z.UpdateTypes {
		out = append(out, dns.StringToType[strings.ToUpper(t)])
	}
	return out
}

func parsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		return p.Masked(), err
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// Duration is a time.Duration written as "30s" or "2m" in the file.
type Duration struct{ time.Duration }

func (d *Duration) UnmarshalText(b []byte) error {
	if days, ok := strings.CutSuffix(string(b), "d"); ok {
		n, err := strconv.Atoi(days)
		if err == nil && n >= 0 {
			d.Duration = time.Duration(n) * 24 * time.Hour
			return nil
		}
	}
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("duration %q: want e.g. \"30s\", \"2m\" or \"90d\"", b)
	}
	d.Duration = v
	return nil
}

func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// Default returns the configuration used where the file is silent.
func Default() Config {
	return Config{
		Listen:         []string{"0.0.0.0:2222", "[::]:2222"},
		HostKey:        "/var/lib/sshdyn/host_ed25519",
		AuthorizedKeys: "/etc/sshdyn/authorized_keys",
		LogFormat:      "text",
		ReloadInterval: Duration{2 * time.Second},
		LoginTimeout:   Duration{sshd.DefaultLoginTimeout},
		SessionTimeout: Duration{sshd.DefaultSessionTimeout},

		MaxUnauthenticated:          sshd.DefaultMaxUnauthenticated,
		MaxUnauthenticatedPerSource: sshd.DefaultMaxUnauthenticatedPerSource,

		AuthFailPenalty: Duration{DefaultAuthFailPenalty},
		AuthFailGrace:   Duration{publish.DefaultFailGrace},

		ProxyHeader:           dyndns2.HeaderForwardedFor,
		HTTPMaxConns:          dyndns2.DefaultMaxConns,
		HTTPMaxConnsPerSource: dyndns2.DefaultMaxConnsPerSource,

		RRLRate:                 zone.DefaultRRLRate,
		RRLSlip:                 zone.DefaultRRLSlip,
		RRLWindow:               Duration{zone.DefaultRRLWindow},
		DNSTCPMaxConns:          zone.DefaultMaxTCP,
		DNSTCPMaxConnsPerSource: zone.DefaultMaxTCPPerSource,
		DNSTCPIdleTimeout:       Duration{zone.DefaultTCPIdle},

		HistoryKeep:    Duration{state.DefaultKeep},
		HistoryPerHost: state.DefaultPerHost,
		StaleFailures:  DefaultStaleFailures,

		MaxDNSInFlight: publish.DefaultMaxInFlight,
		MaxConnsPerKey: sshd.DefaultMaxConnsPerKey,

		MaxChangesPerKey:  DefaultMaxChangesPerKey,
		ChangeWindow:      Duration{publish.DefaultChangeWindow},
		MaxRequestsPerKey: DefaultMaxRequestsPerKey,
		RequestWindow:     Duration{publish.DefaultRequestWindow},
	}
}

// Defaults that only the configuration has: the core takes a zero as "no
// limit" (publish.Service), and a zone's TTL has no other home.
const (
	DefaultAuthFailPenalty  = 5 * time.Second
	DefaultMaxChangesPerKey = 60
	// DefaultMaxRequestsPerKey is one request a second on average, with
	// room for a router's burst of hotplug events.
	DefaultMaxRequestsPerKey = 60
	DefaultTTL               = 60
	// DefaultStaleFailures is the run of failed updates that makes a
	// host family stale.
	DefaultStaleFailures = 3
)

// Load reads the file at path over the defaults and validates the result.
// Relative paths in the file are taken relative to the file's directory.
func Load(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	c, err := Parse(b, path)
	if err != nil {
		return nil, err
	}
	dir := filepath.Dir(path)
	abs := func(p string) string {
		if p == "" || filepath.IsAbs(p) {
			return p
		}
		return filepath.Join(dir, p)
	}
	c.HostKey = abs(c.HostKey)
	c.AuthorizedKeys = abs(c.AuthorizedKeys)
	c.RevokedKeys = abs(c.RevokedKeys)
	c.TLSCert = abs(c.TLSCert)
	c.TLSKey = abs(c.TLSKey)
	switch {
	case c.StateDB == "":
		c.StateDB = filepath.Join(filepath.Dir(c.HostKey), "state.db")
	case c.StateDB != "off" && !state.IsPostgres(c.StateDB):
		c.StateDB = abs(c.StateDB)
	}
	for i := range c.Zones {
		z := &c.Zones[i]
		z.TSIGKey = abs(z.TSIGKey)
		z.File = abs(z.File)
		z.TransferKey = abs(z.TransferKey)
		z.TinydnsRoot = abs(z.TinydnsRoot)
		z.APIKeyFile = abs(z.APIKeyFile)
	}
	return c, nil
}

// Parse decodes TOML text over the defaults and validates it; name is
// used in errors.
func Parse(b []byte, name string) (*Config, error) {
	c := Default()
	dec := toml.NewDecoder(bytes.NewReader(b)).DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		var strict *toml.StrictMissingError
		var de *toml.DecodeError
		switch {
		case errors.As(err, &strict) && len(strict.Errors) > 0:
			var errs []error
			for _, e := range strict.Errors {
				row, _ := e.Position()
				errs = append(errs, fmt.Errorf("%s:%d: unknown key %q", name, row, strings.Join(e.Key(), ".")))
			}
			return nil, errors.Join(errs...)
		case errors.As(err, &de):
			row, _ := de.Position()
			return nil, fmt.Errorf("%s:%d: %v", name, row, de)
		}
		return nil, fmt.Errorf("%s: %v", name, err)
	}
	c.normalize()
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return &c, nil
}

// normalize fills in what the file may leave out: canonical zone names,
// port 53, a zone's TTL and timeout, and the primary of a zone served
// here (the loopback address of the first dns_listen).
func (c *Config) normalize() {
	for i := range c.Zones {
		z := &c.Zones[i]
		z.Name = dnsname.Canonical(z.Name)
		if z.Backend == "" {
			z.Backend = BackendRFC2136
		}
		if z.Embedded() && z.Primary == "" && len(c.DNSListen) > 0 {
			z.Primary = loopbackOf(c.DNSListen[0])
		}
		if z.Primary != "" {
			z.Primary = withPort(z.Primary)
		}
		if z.Embedded() && len(z.UpdateTypes) == 0 {
			for _, t := range zone.DefaultUpdateTypes() {
				z.UpdateTypes = append(z.UpdateTypes, dns.TypeToString[t])
			}
		}
		for i, n := range z.Notify {
			z.Notify[i] = withPort(n)
		}
		for i, n := range z.WaitFor {
			z.WaitFor[i] = withPort(n)
		}
		if z.ACMETTL == 0 {
			z.ACMETTL = publish.DefaultACMETTL
		}
		if z.WaitTimeout.Duration == 0 {
			z.WaitTimeout.Duration = publish.DefaultWaitTimeout
		}
		if z.TTL == 0 {
			z.TTL = DefaultTTL
		}
		if z.Timeout.Duration == 0 {
			z.Timeout.Duration = update.DefaultTimeout
		}
	}
}

// withPort adds port 53 to a host without one.
func withPort(hostport string) string {
	if _, _, err := net.SplitHostPort(hostport); err == nil {
		return hostport
	}
	return net.JoinHostPort(strings.Trim(hostport, "[]"), "53")
}

// Validate checks the configuration; it changes nothing.
func (c *Config) Validate() error {
	if err := c.validateServer(); err != nil {
		return err
	}
	if len(c.Zones) == 0 {
		return errors.New("no [[zone]]: at least one zone is needed")
	}
	seen := map[string]bool{}
	for i, z := range c.Zones {
		if z.Name == "" || strings.Contains(z.Name, "..") {
			return fmt.Errorf("zone %d: name %q is not a domain name", i+1, z.Name)
		}
		if seen[z.Name] {
			return fmt.Errorf("zone %s: listed twice", z.Name)
		}
		seen[z.Name] = true
		if err := c.validateZone(z); err != nil {
			return fmt.Errorf("zone %s: %w", z.Name, err)
		}
	}
	return nil
}

// validateServer checks the settings outside the zones.
func (c *Config) validateServer() error {
	if len(c.Listen) == 0 {
		return errors.New("listen: at least one address is needed")
	}
	for _, l := range c.Listen {
		if _, _, err := net.SplitHostPort(l); err != nil {
			return fmt.Errorf("listen %q: want host:port, e.g. \"0.0.0.0:2222\" or \"[::]:2222\"", l)
		}
	}
	if c.HostKey == "" {
		return errors.New("host_key: a path is needed")
	}
	if c.AuthorizedKeys == "" {
		return errors.New("authorized_keys: a path is needed")
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		return fmt.Errorf("log_format %q: want \"text\" or \"json\"", c.LogFormat)
	}
	if c.MetricsListen != "" {
		if _, _, err := net.SplitHostPort(c.MetricsListen); err != nil {
			return fmt.Errorf("metrics_listen %q: want host:port, e.g. \"127.0.0.1:9417\"", c.MetricsListen)
		}
	}
	if c.MetricsPprof && c.MetricsListen == "" {
		return errors.New("metrics_pprof: needs metrics_listen, the listener it is served on")
	}
	if c.LoginTimeout.Duration <= 0 || c.LoginTimeout.Duration > 30*time.Second {
		return fmt.Errorf("login_timeout %v: want more than 0 and at most 30s", c.LoginTimeout)
	}
	if c.SessionTimeout.Duration <= 0 {
		return fmt.Errorf("session_timeout %v: want more than 0", c.SessionTimeout)
	}
	if c.MaxUnauthenticated < 1 || c.MaxUnauthenticatedPerSource < 1 {
		return errors.New("max_unauthenticated and max_unauthenticated_per_source must be at least 1")
	}
	if c.MaxUnauthenticatedPerSource > c.MaxUnauthenticated {
		return errors.New("max_unauthenticated_per_source is larger than max_unauthenticated")
	}
	if c.AuthFailPenalty.Duration < 0 || c.AuthFailGrace.Duration <= 0 {
		return errors.New("auth_fail_penalty must be 0 (off) or more, auth_fail_grace more than 0")
	}
	if c.MaxDNSInFlight < 1 {
		return errors.New("max_dns_in_flight must be at least 1")
	}
	if c.MaxConnsPerKey < 1 {
		return errors.New("max_connections_per_key must be at least 1")
	}
	if c.ReloadInterval.Duration < 0 {
		return errors.New("reload_interval must be 0 (SIGHUP only) or more")
	}
	if c.MaxChangesPerKey < 0 || c.ChangeWindow.Duration <= 0 {
		return errors.New("max_changes_per_key must be 0 (no limit) or more, change_window more than 0")
	}
	if c.MaxRequestsPerKey < 0 || c.RequestWindow.Duration <= 0 {
		return errors.New("max_requests_per_key must be 0 (no limit) or more, request_window more than 0")
	}
	for _, l := range c.DNSListen {
		if _, _, err := net.SplitHostPort(l); err != nil {
			return fmt.Errorf("dns_listen %q: want host:port, e.g. \"0.0.0.0:53\" or \"[::]:53\"", l)
		}
	}
	if err := c.validateDNS(); err != nil {
		return err
	}
	if err := validateAlgorithms(c); err != nil {
		return err
	}
	if err := c.validateState(); err != nil {
		return err
	}
	return c.validateHTTP()
}

// validateState checks the operator's store and notification settings.
func (c *Config) validateState() error {
	if c.StateDB == "off" && (len(c.Notify) > 0 || c.StaleAfter.Duration > 0) {
		return errors.New(`stale_after and notify need the state store: state_db = "off" turns it off`)
	}
	if state.IsPostgres(c.StateDB) {
		if _, err := url.Parse(c.StateDB); err != nil {
			return fmt.Errorf("state_db: not a URL: %v", err)
		}
	}
	if c.HistoryKeep.Duration <= 0 || c.HistoryPerHost < 1 {
		return errors.New("history_keep must be more than 0, history_per_host at least 1")
	}
	if c.StaleAfter.Duration < 0 || c.StaleFailures < 0 {
		return errors.New("stale_after and stale_failures must be 0 (off) or more")
	}
	for _, n := range c.Notify {
		if _, err := notify.Parse(n, c.NotifySecret); err != nil {
			return err
		}
	}
	if c.AdminListen != "" {
		host, _, err := net.SplitHostPort(c.AdminListen)
		if err != nil {
			return fmt.Errorf("admin_listen %q: want host:port, e.g. \"127.0.0.1:9418\"", c.AdminListen)
		}
		if c.StateDB == "off" {
			return errors.New(`admin_listen shows the state store: state_db = "off" turns it off`)
		}
		ip, err := netip.ParseAddr(host)
		if !(err == nil && ip.IsLoopback()) && (c.TLSCert == "" || len(c.AdminUsers) == 0) {
			return fmt.Errorf("admin_listen %q is off loopback: it needs tls_cert and tls_key, and admin_users (name = bcrypt hash from sshdyn passwd)", c.AdminListen)
		}
	}
	for name, hash := range c.AdminUsers {
		if cost, err := bcrypt.Cost([]byte(hash)); err != nil || cost < 10 {
			return fmt.Errorf("admin_users %q: want a bcrypt hash of cost 10 or more, from sshdyn passwd", name)
		}
	}
	for _, z := range c.Zones {
		if z.StaleAfter.Duration < 0 {
			return fmt.Errorf("zone %s: stale_after must be 0 (off) or more", z.Name)
		}
	}
	return nil
}

// validateAlgorithms checks that every SSH algorithm named is one
// golang.org/x/crypto implements.
func validateAlgorithms(c *Config) error {
	known, insecure := gossh.SupportedAlgorithms(), gossh.InsecureAlgorithms()
	for _, set := range []struct {
		key        string
		names      []string
		ok, unsafe []string
	}{
		{"ssh_key_exchanges", c.SSHKeyExchanges, append(known.KeyExchanges, "curve25519-sha256@libssh.org"), insecure.KeyExchanges},
		{"ssh_ciphers", c.SSHCiphers, known.Ciphers, insecure.Ciphers},
		{"ssh_macs", c.SSHMACs, known.MACs, insecure.MACs},
	} {
		for _, n := range set.names {
			if !slices.Contains(set.ok, n) && !slices.Contains(set.unsafe, n) {
				return fmt.Errorf("%s: %q is not an algorithm sshdyn knows (it knows %s)", set.key, n, strings.Join(set.ok, ", "))
			}
		}
	}
	return nil
}

// validateHTTP checks the dyndns2 front's settings.
func (c *Config) validateHTTP() error {
	if (c.TLSCert == "") != (c.TLSKey == "") {
		return errors.New("tls_cert and tls_key go together")
	}
	for _, l := range c.HTTPListen {
		host, _, err := net.SplitHostPort(l)
		if err != nil {
			return fmt.Errorf("http_listen %q: want host:port, e.g. \"0.0.0.0:443\" or \"127.0.0.1:8080\"", l)
		}
		ip, err := netip.ParseAddr(host)
		loopback := err == nil && ip.IsLoopback()
		if c.TLSCert == "" && !c.HTTPInsecure && !loopback {
			return fmt.Errorf("http_listen %q: plain HTTP would carry the routers' passwords in clear: set tls_cert and tls_key, listen on a loopback address behind a TLS proxy (with trusted_proxies), or set http_insecure = true", l)
		}
	}
	if c.HTTPMaxConns < 1 || c.HTTPMaxConnsPerSource < 1 {
		return errors.New("http_max_connections and http_max_connections_per_source must be at least 1")
	}
	if c.HTTPMaxConnsPerSource > c.HTTPMaxConns {
		return errors.New("http_max_connections_per_source is larger than http_max_connections")
	}
	switch {
	case strings.EqualFold(c.ProxyHeader, dyndns2.HeaderForwardedFor):
		c.ProxyHeader = dyndns2.HeaderForwardedFor
	case strings.EqualFold(c.ProxyHeader, dyndns2.HeaderRealIP):
		c.ProxyHeader = dyndns2.HeaderRealIP
	default:
		return fmt.Errorf("proxy_header %q: want %q or %q", c.ProxyHeader, dyndns2.HeaderForwardedFor, dyndns2.HeaderRealIP)
	}
	for _, p := range c.TrustedProxies {
		if _, err := parsePrefix(p); err != nil {
			return fmt.Errorf("trusted_proxies: %q is not an address or network (e.g. \"127.0.0.1\", \"10.0.0.0/8\")", p)
		}
	}
	return nil
}

// validateDNS checks the embedded primary's limits.
func (c *Config) validateDNS() error {
	if c.RRLRate < 0 || c.RRLSlip < 0 || c.RRLSlip > 10 {
		return errors.New("rrl_rate must be 0 (off) or more, rrl_slip 0 to 10")
	}
	if c.RRLWindow.Duration < time.Second || c.RRLWindow.Duration > time.Hour {
		return errors.New("rrl_window must be 1s to 1h")
	}
	for _, p := range c.RRLExempt {
		if _, err := parsePrefix(p); err != nil {
			return fmt.Errorf("rrl_exempt: %q is not an address or network (e.g. \"192.0.2.0/24\")", p)
		}
	}
	for _, z := range c.Zones {
		if z.RRLRate != nil && *z.RRLRate < 0 {
			return fmt.Errorf("zone %s: rrl_rate must be 0 (off) or more", z.Name)
		}
		if z.RRLRate != nil && !z.Embedded() {
			return fmt.Errorf("zone %s: rrl_rate is for a zone served here: set file too", z.Name)
		}
	}
	if c.DNSCookieSecret != "" {
		if err := zone.CheckCookieSecret(c.DNSCookieSecret); err != nil {
			return fmt.Errorf("dns_cookie_secret: %w", err)
		}
	}
	if len(c.DNSNSID) > 128 {
		return errors.New("dns_nsid: at most 128 bytes")
	}
	if c.DNSTCPMaxConns < 1 || c.DNSTCPMaxConnsPerSource < 1 || c.DNSTCPMaxConnsPerSource > c.DNSTCPMaxConns {
		return errors.New("dns_tcp_max_connections and dns_tcp_max_connections_per_source must be at least 1, the latter no larger")
	}
	if c.DNSTCPIdleTimeout.Duration < time.Second || c.DNSTCPIdleTimeout.Duration > 5*time.Minute {
		return errors.New("dns_tcp_idle_timeout must be 1s to 5m")
	}
	return nil
}

// RRLExemptPrefixes returns RRLExempt as networks; Validate has checked
// them.
func (c *Config) RRLExemptPrefixes() []netip.Prefix { return prefixes(c.RRLExempt) }

// TrustedPrefixes returns TrustedProxies as networks; Validate has
// checked them.
func (c *Config) TrustedPrefixes() []netip.Prefix { return prefixes(c.TrustedProxies) }

// prefixes returns addresses and networks Validate has checked as
// networks.
func prefixes(list []string) []netip.Prefix {
	var out []netip.Prefix
	for _, s := range list {
		p, _ := parsePrefix(s)
		out = append(out, p)
	}
	return out
}

// Backends of a zone.
const (
	BackendRFC2136 = "rfc2136"
	BackendTinydns = "tinydns"
	BackendLibdns  = "libdns"
)

// validateZone checks one normalised zone: its backend's own fields,
// then what every backend shares (ttl, acme_ttl, wait_for,
// wait_timeout), which a tinydns or libdns zone used to skip (audit
// finding H10).
func (c *Config) validateZone(z Zone) error {
	if err := c.validateBackend(z); err != nil {
		return err
	}
	if z.TTL > 604800 {
		return fmt.Errorf("ttl %d: at most 604800", z.TTL)
	}
	if z.Timeout.Duration < 0 {
		return errors.New("timeout must be positive")
	}
	if z.ACMETTL > 86400 {
		return fmt.Errorf("acme_ttl %d: at most 86400 (a challenge lives minutes)", z.ACMETTL)
	}
	if z.WaitTimeout.Duration < 0 || z.WaitTimeout.Duration > 10*time.Minute {
		return errors.New("wait_timeout must be positive, at most 10m")
	}
	for _, w := range z.WaitFor {
		host, port, err := net.SplitHostPort(w)
		if _, perr := netip.ParseAddr(host); err != nil || perr != nil || port == "0" {
			return fmt.Errorf("wait_for: %q is not ADDRESS[:PORT] (an IP address: sshdyn asks that server directly, e.g. \"192.0.2.53\" or \"[2001:db8::53]:53\")", w)
		}
	}
	return nil
}

// validateBackend checks the fields of z's backend, and that it has none
// of another's.
func (c *Config) validateBackend(z Zone) error {
	if err := validateSigning(z); err != nil {
		return err
	}
	if z.Backend != BackendLibdns && (z.Provider != "" || z.APIURL != "" || z.APIKeyFile != "" || z.ServerID != "") {
		return errors.New(`provider, api_url, api_key_file and server_id are for backend = "libdns"`)
	}
	switch z.Backend {
	case BackendLibdns:
		if z.Provider == "" || z.APIKeyFile == "" {
			return errors.New(`backend = "libdns" needs provider (e.g. "powerdns") and api_key_file`)
		}
		if z.Primary != "" || z.TSIGKey != "" || z.Embedded() || z.TinydnsRoot != "" {
			return errors.New(`backend = "libdns" writes through the provider's API: primary, tsig_key, file and tinydns_root are for other backends`)
		}
		return validateAPIURL(z.APIURL)
	case BackendTinydns:
		if z.TinydnsRoot == "" {
			return errors.New(`backend = "tinydns" needs tinydns_root, the directory with tinydns's data`)
		}
		if z.Primary != "" || z.TSIGKey != "" || z.Embedded() {
			return errors.New(`backend = "tinydns" writes tinydns_root: primary, tsig_key and file are for RFC 2136 zones`)
		}
		return nil
	case BackendRFC2136:
		if z.TinydnsRoot != "" {
			return errors.New(`tinydns_root is for backend = "tinydns"`)
		}
	default:
		return fmt.Errorf("backend %q: want \"rfc2136\", \"tinydns\" or \"libdns\"", z.Backend)
	}
	if err := c.validateEmbedded(z); err != nil {
		return err
	}
	if z.Primary == "" {
		return errors.New("primary is needed (or file, to serve the zone here)")
	}
	if z.TSIGKey == "" {
		return errors.New("tsig_key is needed (sshdyn never sends unsigned updates)")
	}
	return nil
}

// validateAPIURL checks a provider's API URL, if given: HTTPS, or plain
// HTTP to a loopback address only (the API key travels with every
// request), as the dyndns2 listener allows.
func validateAPIURL(s string) error {
	if s == "" {
		return nil
	}
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return fmt.Errorf("api_url %q: want https://HOST[:PORT][/PATH]", s)
	}
	if u.Scheme == "http" {
		host := u.Hostname()
		a, err := netip.ParseAddr(host)
		if !(err == nil && a.IsLoopback() || host == "localhost") {
			return fmt.Errorf("api_url %q: plain HTTP would carry the API key in clear: use https://, or an address on loopback", s)
		}
	}
	return nil
}

// validateSigning checks a zone's DNSSEC settings: for a zone served
// here only.
func validateSigning(z Zone) error {
	signing := z.DNSSECAlgorithm != "" || z.DNSSECKeyDir != "" || z.SignatureValidity.Duration != 0 || z.SignatureRefresh.Duration != 0 ||
		z.PropagationDelay.Duration != 0 || z.ParentDSTTL.Duration != 0 || z.DNSSECNSEC3
	switch {
	case z.DNSSEC && !z.Embedded():
		return errors.New("dnssec is for a zone sshdyn serves (file set): BIND, Knot and PowerDNS sign their zones themselves (README: DNSSEC)")
	case signing && !z.DNSSEC:
		return errors.New("dnssec_algorithm, dnssec_key_dir, dnssec_nsec3, dnssec_signature_validity, dnssec_signature_refresh, dnssec_propagation_delay and dnssec_parent_ds_ttl need dnssec = true")
	case z.DNSSEC:
		if _, err := zone.ParseAlgorithm(z.DNSSECAlgorithm); err != nil {
			return errors.New("dnssec_algorithm: " + strings.TrimPrefix(err.Error(), "DNSSEC algorithm "))
		}
		if err := zone.CheckDNSSEC(*z.Signing()); err != nil {
			return fmt.Errorf("dnssec_signature_validity, dnssec_signature_refresh: %w", err)
		}
	}
	return nil
}

// validateEmbedded checks the fields of a zone sshdyn serves itself.
func (c *Config) validateEmbedded(z Zone) error {
	if !z.Embedded() {
		if len(z.UpdateTypes) > 0 || len(z.AllowTransfer) > 0 || z.TransferKey != "" || len(z.Notify) > 0 || z.JournalLimit != 0 || z.ZonefileSync.Duration != 0 {
			return errors.New("update_types, allow_transfer, transfer_key, notify, journal_limit and zonefile_sync are for a zone served here: set file too")
		}
		return nil
	}
	if z.JournalLimit < 0 {
		return errors.New("journal_limit must be positive (bytes)")
	}
	if z.ZonefileSync.Duration < 0 || z.ZonefileSync.Duration > 24*time.Hour {
		return errors.New("zonefile_sync must be positive, at most 24h")
	}
	if len(c.DNSListen) == 0 {
		return errors.New("file is set, so sshdyn serves the zone: dns_listen is needed, e.g. [\"0.0.0.0:53\", \"[::]:53\"]")
	}
	if _, port, _ := net.SplitHostPort(z.Primary); port == "0" {
		return errors.New("dns_listen's first address has port 0: give a port, or set primary")
	}
	for _, t := range z.UpdateTypes {
		typ, ok := dns.StringToType[strings.ToUpper(t)]
		if !ok {
			return fmt.Errorf("update_types: %q is not a record type", t)
		}
		if err := zone.Updatable(typ); err != nil {
			return fmt.Errorf("update_types: %q: %w", t, err)
		}
	}
	for _, a := range z.AllowTransfer {
		if _, err := parsePrefix(a); err != nil {
			return fmt.Errorf("allow_transfer: %q is not an address or network (e.g. \"192.0.2.53\", \"2001:db8::/64\")", a)
		}
	}
	return nil
}

// loopbackOf turns a listen address into one to connect to: a wildcard
// host becomes the loopback address of its family.
func loopbackOf(listen string) string {
	host, port, _ := net.SplitHostPort(listen)
	switch host {
	case "", "0.0.0.0":
		host = "127.0.0.1"
	case "::":
		host = "::1"
	}
	return net.JoinHostPort(host, port)
}

// ZoneNames returns the configured zones' names.
func (c *Config) ZoneNames() []string {
	var out []string
	for _, z := range c.Zones {
		out = append(out, z.Name)
	}
	return out
}

// Changed returns the settings whose values differ between a and b, by
// their keys ("http_listen", "zone dyn.example.com: ttl", "zone
// other.example added"): what a SIGHUP cannot apply, for the log.
func Changed(a, b *Config) []string {
	out := changedFields(reflect.ValueOf(*a), reflect.ValueOf(*b), "")
	byName := func(zs []Zone) map[string]Zone {
		m := map[string]Zone{}
		for _, z := range zs {
			m[z.Name] = z
		}
		return m
	}
	az, bz := byName(a.Zones), byName(b.Zones)
	for _, z := range a.Zones {
		other, ok := bz[z.Name]
		if !ok {
			out = append(out, "zone "+z.Name+" removed")
			continue
		}
		out = append(out, changedFields(reflect.ValueOf(z), reflect.ValueOf(other), "zone "+z.Name+": ")...)
	}
	for _, z := range b.Zones {
		if _, ok := az[z.Name]; !ok {
			out = append(out, "zone "+z.Name+" added")
		}
	}
	return out
}

// changedFields returns the TOML keys of the fields of two structs of one
// type that differ, zones aside.
func changedFields(a, b reflect.Value, prefix string) []string {
	var out []string
	for i := range a.NumField() {
		key, _, _ := strings.Cut(a.Type().Field(i).Tag.Get("toml"), ",")
		if key == "" || key == "zone" {
			continue
		}
		if !reflect.DeepEqual(a.Field(i).Interface(), b.Field(i).Interface()) {
			out = append(out, prefix+key)
		}
	}
	return out
}
