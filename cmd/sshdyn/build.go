package main

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"strings"

	gossh "golang.org/x/crypto/ssh"

	"github.com/sshdyn/sshdyn/authorized"
	"github.com/sshdyn/sshdyn/config"
	"github.com/sshdyn/sshdyn/dyndns2"
	"github.com/sshdyn/sshdyn/krl"
	"github.com/sshdyn/sshdyn/metrics"
	"github.com/sshdyn/sshdyn/provider"
	"github.com/sshdyn/sshdyn/publish"
	"github.com/sshdyn/sshdyn/sshd"
	"github.com/sshdyn/sshdyn/tinydns"
	"github.com/sshdyn/sshdyn/tsig"
	"github.com/sshdyn/sshdyn/update"
	"github.com/sshdyn/sshdyn/zone"
)

// parts is everything sshdyn serve runs, made from a configuration by
// build and not yet listening. check builds the same parts and reports on
// them, so that check refuses exactly what serve refuses.
type parts struct {
	cfg     *config.Config
	zones   []builtZone
	dns     *zone.Server // the embedded primary; nil if no zone has a file
	hosts   *authorized.File
	service *publish.Service
	ssh     *sshd.Server
	web     *dyndns2.Server   // the dyndns2 front; nil without http_listen
	certs   *dyndns2.CertFile // its certificate; nil for plain HTTP
	revoked *krl.File         // revoked_keys; nil if not set
	metrics *metrics.Metrics  // nil without metrics_listen

	hostKeyCreated bool // serve: the host key was made just now
	hostKeyMissing bool // check: there is no host key yet
}

// builtZone is one configured zone and what serves it.
type builtZone struct {
	cfg      config.Zone
	key      tsig.Key // the update key, if it loaded
	client   *update.Client
	embedded *zone.Zone        // the zone, if sshdyn serves it
	tinydns  *tinydns.Backend  // the zone's backend, if it is "tinydns"
	provider *provider.Backend // the zone's backend, if it is "libdns"
}

// hostKeyMode says what build does when the host key file does not exist.
type hostKeyMode int

const (
	createHostKey hostKeyMode = iota // make it (serve)
	keepHostKey                      // leave it; serve will make it (check)
)

// build makes sshdyn's parts from cfg: TSIG keys, the embedded primary's
// zones, the RFC 2136 clients, the core, the authorized file, the host key
// and the SSH front. It goes on past a problem and returns every one it
// found, joined, with the parts it could make. m (nil for none) is hooked
// in for metrics, log is the daemon's logger.
func build(cfg *config.Config, hk hostKeyMode, m *metrics.Metrics, log *slog.Logger) (*parts, error) {
	p := &parts{cfg: cfg, metrics: m}
	var problems []error
	bad := func(err error) { problems = append(problems, err) }

	ring := map[string]tsig.Key{} // every key the embedded primary accepts, by name
	var zones []publish.Zone
	for _, zc := range cfg.Zones {
		bz, err := buildZone(cfg, zc, ring, m)
		if err != nil {
			bad(err)
		}
		p.zones = append(p.zones, bz)
		if bz.embedded != nil && m != nil {
			m.Zone(zc.Name, bz.embedded.Stats)
		}
		pz := publish.Zone{Name: zc.Name, TTL: zc.TTL, ACME: zc.ACME, ACMETTL: zc.ACMETTL, WaitFor: zc.WaitFor, WaitTimeout: zc.WaitTimeout.Duration}
		switch {
		case bz.tinydns != nil:
			pz.Backend = bz.tinydns
		case bz.provider != nil:
			pz.Backend = bz.provider
		case bz.embedded != nil:
			// The zone this process serves is written in process: the
			// same commit path as an UPDATE, with no TSIG, no socket.
			pz.Backend = zone.NewBackend(bz.embedded)
		case bz.client != nil:
			pz.Backend = &update.Backend{R: update.Remember(bz.client, &update.LastSeen{}), Server: zc.Primary}
		default:
			continue
		}
		zones = append(zones, pz)
	}
	p.dns = embeddedServer(p.zones, ring, log.With("component", "dns"))

	hosts, err := authorized.Open(cfg.AuthorizedKeys, authorized.Scope{Zones: cfg.ZoneNames(), Reserved: reserved(p.zones)})
	switch {
	case errors.Is(err, fs.ErrPermission):
		bad(fmt.Errorf("authorized keys: %w: the user sshdyn runs as must be able to read it (e.g. chown root:sshdyn %s; chmod 640 %s)", err, cfg.AuthorizedKeys, cfg.AuthorizedKeys))
	case err != nil:
		bad(fmt.Errorf("authorized keys: %w", err))
	case hosts.Map().Passwords() > 0:
		// The hashes could be cracked offline (audit finding H11).
		if err := private("authorized keys file, with http-password hashes,", cfg.AuthorizedKeys); err != nil {
			bad(err)
		}
	}
	p.hosts = hosts
	if m != nil && hosts != nil {
		m.Keys(hosts.Map().Len())
	}

	if cfg.RevokedKeys != "" {
		p.revoked, err = krl.Open(cfg.RevokedKeys)
		if err != nil {
			bad(err)
		}
	}

	signer, err := p.loadHostKey(hk)
	if err != nil {
		bad(err)
	}

	p.service = &publish.Service{
		Zones:             zones,
		AllowPrivate:      cfg.AllowPrivate,
		MaxInFlight:       cfg.MaxDNSInFlight,
		MaxChangesPerKey:  cfg.MaxChangesPerKey,
		ChangeWindow:      cfg.ChangeWindow.Duration,
		MaxRequestsPerKey: cfg.MaxRequestsPerKey,
		RequestWindow:     cfg.RequestWindow.Duration,
		FailPenalty:       cfg.AuthFailPenalty.Duration,
		FailGrace:         cfg.AuthFailGrace.Duration,
		Served:            update.Served,
	}
	if p.revoked != nil {
		p.service.Revoked = p.revoked
	}
	p.ssh = &sshd.Server{
		Hosts:                       hosts,
		Service:                     p.service,
		LoginTimeout:                cfg.LoginTimeout.Duration,
		SessionTimeout:              cfg.SessionTimeout.Duration,
		MaxUnauthenticated:          cfg.MaxUnauthenticated,
		MaxUnauthenticatedPerSource: cfg.MaxUnauthenticatedPerSource,
		MaxConnsPerKey:              cfg.MaxConnsPerKey,
		KeyExchanges:                cfg.SSHKeyExchanges,
		Ciphers:                     cfg.SSHCiphers,
		MACs:                        cfg.SSHMACs,
		Logger:                      log.With("component", "sshd"),
	}
	if signer != nil {
		p.ssh.HostSigners = []gossh.Signer{signer}
	}
	if m != nil {
		p.service.Observer, p.ssh.Observer = m, m
		if p.revoked != nil {
			m.KRL(func() bool { return p.revoked.Err() == nil })
		}
	}
	if err := p.buildHTTP(m, log); err != nil {
		bad(err)
	}
	return p, errors.Join(problems...)
}

// reserved returns the names the embedded primary's zones point their NS,
// MX and SRV records at: no key may own one.
func reserved(zones []builtZone) map[string]string {
	out := map[string]string{}
	for _, bz := range zones {
		if bz.embedded != nil {
			maps.Copy(out, bz.embedded.Targets())
		}
	}
	return out
}

// buildHTTP makes the dyndns2 front, if http_listen asks for it, and
// loads its certificate.
func (p *parts) buildHTTP(m *metrics.Metrics, log *slog.Logger) error {
	if len(p.cfg.HTTPListen) == 0 {
		return nil
	}
	log = log.With("component", "http")
	p.web = &dyndns2.Server{Users: p.hosts, Service: p.service, TrustedProxies: p.cfg.TrustedPrefixes(), ProxyHeader: p.cfg.ProxyHeader, Logger: log}
	if m != nil {
		p.web.Observer = m.HTTP()
	}
	if p.cfg.TLSCert == "" {
		return nil
	}
	certs, err := dyndns2.NewCertFile(p.cfg.TLSCert, p.cfg.TLSKey)
	if err != nil {
		return err
	}
	certs.OnReload = func(err error) {
		if err != nil {
			log.Error("TLS certificate changed but does not load; keeping the old one", "cert", p.cfg.TLSCert, "err", err)
		} else {
			log.Info("TLS certificate reloaded", "cert", p.cfg.TLSCert)
		}
	}
	p.certs = certs
	return nil
}

// buildZone loads a zone's keys and, for a zone served here, its file,
// and makes its client. Keys the embedded primary must accept go into
// ring; two different keys of one name are an error.
func buildZone(cfg *config.Config, zc config.Zone, ring map[string]tsig.Key, m *metrics.Metrics) (builtZone, error) {
	bz := builtZone{cfg: zc}
	if zc.Backend == config.BackendTinydns {
		bz.tinydns = &tinydns.Backend{Root: zc.TinydnsRoot, Zone: zc.Name}
		if _, err := os.Stat(filepath.Join(zc.TinydnsRoot, "data")); err != nil {
			return bz, fmt.Errorf("zone %s: tinydns_root: %w", zc.Name, err)
		}
		return bz, nil
	}
	if zc.Backend == config.BackendLibdns {
		p, err := buildProvider(zc)
		bz.provider = p
		return bz, err
	}
	key, err := loadKey(zc.Name, zc.TSIGKey)
	if err != nil {
		return bz, err
	}
	bz.key = key
	// As many idle connections as requests may be doing DNS work at
	// once: with fewer, a burst closes and reopens connections by the
	// thousand, and a busy primary's short accept queue drops the SYNs
	// of some (the kernel retries after 1 s, 3 s, 7 s).
	pool := update.NewPool()
	pool.MaxIdle = max(pool.MaxIdle, cfg.MaxDNSInFlight)
	bz.client = &update.Client{Server: zc.Primary, Zone: zc.Name, Key: key, Timeout: zc.Timeout.Duration,
		Pool: pool, Batch: update.NewBatch()}
	if m != nil {
		bz.client.Observe = m.DNS(zc.Name)
	}
	if !zc.Embedded() {
		return bz, nil
	}
	keys := []tsig.Key{key}
	var xfr []string
	if zc.TransferKey != "" {
		k, err := loadKey(zc.Name, zc.TransferKey)
		if err != nil {
			return bz, err
		}
		keys, xfr = append(keys, k), []string{k.Name}
	}
	for _, k := range keys {
		if old, ok := ring[k.Name]; ok && old != k {
			return bz, fmt.Errorf("zone %s: TSIG key %s differs from another key of the same name", zc.Name, k.Name)
		}
		ring[k.Name] = k
	}
	z, err := zone.Load(zone.Config{
		Origin: zc.Name, File: zc.File,
		UpdateKeys: []string{key.Name}, UpdateTypes: zc.Types(),
		AllowTransfer: zc.TransferPrefixes(), TransferKeys: xfr, Notify: zc.Notify, ACME: zc.ACME,
		JournalLimit: zc.JournalLimit, SyncAfter: zc.ZonefileSync.Duration,
	})
	if err != nil {
		return bz, err
	}
	bz.embedded = z
	return bz, nil
}

// buildProvider makes a libdns zone's backend, with the API key read from
// its file (refused if every user may read it, as a TSIG key is).
func buildProvider(zc config.Zone) (*provider.Backend, error) {
	if err := private("API key", zc.APIKeyFile); err != nil {
		return nil, fmt.Errorf("zone %s: %w", zc.Name, err)
	}
	b, err := os.ReadFile(zc.APIKeyFile)
	if err != nil {
		return nil, fmt.Errorf("zone %s: API key: %w", zc.Name, err)
	}
	key := strings.TrimSpace(string(b))
	if key == "" || strings.ContainsAny(key, "\r\n") {
		return nil, fmt.Errorf("zone %s: API key %s: want the key alone on one line", zc.Name, zc.APIKeyFile)
	}
	p, err := provider.New(zc.Provider, provider.Settings{URL: zc.APIURL, Key: key, ServerID: zc.ServerID})
	if err != nil {
		return nil, fmt.Errorf("zone %s: %w", zc.Name, err)
	}
	return &provider.Backend{Provider: p, Zone: zc.Name, Name: zc.Provider + " " + zc.APIURL}, nil
}

// private refuses a secret file every user may read: anyone on the
// machine could use it. Group-readable stays allowed, for the documented
// chgrp sshdyn set-up.
func private(what, path string) error {
	if fi, err := os.Stat(path); err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o004 != 0 {
		return fmt.Errorf("%s %s is mode %04o, readable by every user: chmod o-rwx %s (chown root:sshdyn and chmod 640 it if sshdyn runs as its own user)", what, path, fi.Mode().Perm(), path)
	}
	return nil
}

// loadKey loads a TSIG key file, saying how to fix a file the daemon's
// user may not read; one every user may read is refused (private).
func loadKey(zoneName, path string) (tsig.Key, error) {
	if err := private("TSIG key", path); err != nil {
		return tsig.Key{}, fmt.Errorf("zone %s: %w", zoneName, err)
	}
	key, err := tsig.Load(path)
	if errors.Is(err, fs.ErrPermission) {
		return key, fmt.Errorf("zone %s: %w: the user sshdyn runs as must be able to read it (e.g. chown root:sshdyn %s; chmod 640 %s)", zoneName, err, path, path)
	}
	if err != nil {
		return key, fmt.Errorf("zone %s: %w", zoneName, err)
	}
	return key, nil
}

// embeddedServer returns the embedded primary for the zones served here,
// not yet listening; nil if there are none.
func embeddedServer(zones []builtZone, ring map[string]tsig.Key, log *slog.Logger) *zone.Server {
	srv := &zone.Server{Logger: log}
	for _, bz := range zones {
		if bz.embedded != nil {
			srv.Zones = append(srv.Zones, bz.embedded)
		}
	}
	if len(srv.Zones) == 0 {
		return nil
	}
	for _, k := range ring {
		srv.Keys = append(srv.Keys, k)
	}
	return srv
}

// loadHostKey loads the host key, or (serve) makes it on the first start.
func (p *parts) loadHostKey(hk hostKeyMode) (gossh.Signer, error) {
	if hk == keepHostKey {
		if _, err := os.Stat(p.cfg.HostKey); errors.Is(err, fs.ErrNotExist) {
			p.hostKeyMissing = true
			return nil, nil
		}
	}
	signer, created, err := sshd.LoadOrCreateHostKey(p.cfg.HostKey)
	p.hostKeyCreated = created
	return signer, err
}

// close gives back what build took: the clients' idle connections.
func (p *parts) close() {
	for _, bz := range p.zones {
		if bz.client != nil {
			bz.client.Pool.Close()
		}
	}
}
