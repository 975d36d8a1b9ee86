package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"os"

	gossh "golang.org/x/crypto/ssh"

	"github.com/sshdyn/sshdyn/authorized"
	"github.com/sshdyn/sshdyn/config"
	"github.com/sshdyn/sshdyn/dyndns2"
	"github.com/sshdyn/sshdyn/internal/secret"
	"github.com/sshdyn/sshdyn/krl"
	"github.com/sshdyn/sshdyn/metrics"
	"github.com/sshdyn/sshdyn/notify"
	"github.com/sshdyn/sshdyn/publish"
	"github.com/sshdyn/sshdyn/sshd"
	"github.com/sshdyn/sshdyn/state"
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

	store    *state.Store    // the operator's store; nil with state_db = "off"
	recorder *state.Recorder // its writer's queue
	rec      *recorder       // the core's Recorder: the queue, and notify_changes
	// storeWarning says why the store could not be reached at start
	// (PostgreSQL down): logged, not fatal.
	storeWarning error

	hostKeyCreated bool // serve: the host key was made just now
	hostKeyMissing bool // check: there is no host key yet
}

// builtZone is one configured zone and what keeps it.
type builtZone struct {
	cfg      config.Zone
	backend  zoneBackend // nil if it did not build
	embedded *zone.Zone  // the zone, if sshdyn serves it
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
		bz := builtZone{cfg: zc}
		o, err := backends[zc.Backend](zc, backendEnv{cfg: cfg, metrics: m, log: log})
		if err == nil {
			err = addKeys(ring, zc.Name, o.keys)
		}
		if err != nil {
			bad(err)
			if o.backend != nil {
				o.backend.Close()
			}
			p.zones = append(p.zones, bz)
			continue
		}
		bz.backend, bz.embedded = o.backend, o.embedded
		p.zones = append(p.zones, bz)
		if bz.embedded != nil && m != nil {
			m.Zone(zc.Name, bz.embedded.Stats)
		}
		zones = append(zones, publish.Zone{Name: zc.Name, TTL: zc.TTL, Backend: bz.backend,
			ACME: zc.ACME, ACMETTL: zc.ACMETTL, WaitFor: zc.WaitFor, WaitTimeout: zc.WaitTimeout.Duration})
	}
	p.dns = embeddedServer(cfg, p.zones, ring, log.With("component", "dns"))
	if p.dns != nil && m != nil {
		p.dns.Observe = m.DNSEvents()
	}

	hosts, err := authorized.Open(cfg.AuthorizedKeys, authorized.Scope{Zones: cfg.ZoneNames(), Reserved: reserved(p.zones),
		CheckNotify: func(u string) error { _, err := notify.Parse(u, cfg.NotifySecret); return err }})
	switch {
	case err != nil:
		bad(secret.Hint(cfg.AuthorizedKeys, fmt.Errorf("authorized keys: %w", err)))
	case hosts.Map().Passwords() > 0:
		// The hashes could be cracked offline (audit finding H11).
		if err := secret.Check("authorized keys file, with http-password hashes,", cfg.AuthorizedKeys); err != nil {
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
	if err := p.openState(context.Background()); err != nil {
		bad(err)
	}
	if p.store != nil {
		p.recorder = &state.Recorder{Store: p.store, Keep: cfg.HistoryKeep.Duration, PerHost: cfg.HistoryPerHost}
		p.rec = &recorder{r: p.recorder}
		p.service.Recorder = p.rec
		p.ssh.Fleet = fleet{p.store}
	}
	if m != nil {
		if p.recorder != nil {
			m.StateDropped(p.recorder.Dropped)
			var perHost func() []metrics.HostLast
			if cfg.MetricsPerHost {
				perHost = func() []metrics.HostLast { _, l := p.fleetMetrics(); return l }
			}
			m.Fleet(func() []metrics.HostStates { s, _ := p.fleetMetrics(); return s }, perHost)
		}
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
// loads the TLS certificate it and the admin view use.
func (p *parts) buildHTTP(m *metrics.Metrics, log *slog.Logger) error {
	if len(p.cfg.HTTPListen) > 0 {
		log = log.With("component", "http")
		p.web = &dyndns2.Server{Users: p.hosts, Service: p.service, TrustedProxies: p.cfg.TrustedPrefixes(), ProxyHeader: p.cfg.ProxyHeader, QueryCredentials: p.cfg.HTTPQueryCredentials, Logger: log}
		if m != nil {
			p.web.Observer = m.HTTP()
		}
	}
	if p.cfg.TLSCert == "" || len(p.cfg.HTTPListen) == 0 && p.cfg.AdminListen == "" {
		return nil
	}
	certs, err := dyndns2.NewCertFile(p.cfg.TLSCert, p.cfg.TLSKey)
	if err != nil {
		return err
	}
	p.certs = certs
	return nil
}

// addKeys puts keys into ring, the keys the embedded primary accepts;
// two different keys of one name are an error.
func addKeys(ring map[string]tsig.Key, zoneName string, keys []tsig.Key) error {
	for _, k := range keys {
		if old, ok := ring[k.Name]; ok && old != k {
			return fmt.Errorf("zone %s: TSIG key %s differs from another key of the same name", zoneName, k.Name)
		}
		ring[k.Name] = k
	}
	return nil
}

// embeddedServer returns the embedded primary for the zones served here,
// not yet listening; nil if there are none.
func embeddedServer(cfg *config.Config, zones []builtZone, ring map[string]tsig.Key, log *slog.Logger) *zone.Server {
	srv := &zone.Server{Logger: log,
		RRL:          zone.RRL{Rate: cfg.RRLRate, Slip: cfg.RRLSlip, Window: cfg.RRLWindow.Duration, Exempt: cfg.RRLExemptPrefixes()},
		CookieSecret: cfg.DNSCookieSecret, NSID: cfg.DNSNSID,
		MaxTCP: cfg.DNSTCPMaxConns, MaxTCPPerSource: cfg.DNSTCPMaxConnsPerSource, TCPIdle: cfg.DNSTCPIdleTimeout.Duration}
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

// close gives back what build took: the backends' idle connections, the
// state store.
func (p *parts) close() {
	if p.store != nil {
		p.store.Close()
	}
	for _, bz := range p.zones {
		if bz.backend != nil {
			bz.backend.Close()
		}
	}
}
