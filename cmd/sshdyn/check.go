package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/sshdyn/sshdyn/config"
	"github.com/sshdyn/sshdyn/dnsname"
)

// check validates the configuration at path and what it names, like
// named-checkconf: findings on stdout, problems on stderr, exit status 0
// when there are none and 1 otherwise. It builds what serve would build
// (build), so it refuses exactly what serve refuses. With probe it also
// proves, for each zone, that the primary answers, accepts the TSIG key
// and lets it change A and AAAA records; see update.Client.Probe for
// when that writes.
func check(ctx context.Context, path string, probe bool, stdout, stderr io.Writer) int {
	problems := 0
	bad := func(format string, args ...any) {
		problems++
		fmt.Fprintf(stderr, "sshdyn check: "+format+"\n", args...)
	}
	cfg, err := config.Load(path)
	if err != nil {
		bad("%v", err)
		return 1
	}
	fmt.Fprintf(stdout, "%s: ok: %d zone(s), SSH on %s\n", path, len(cfg.Zones), strings.Join(cfg.Listen, " "))

	p, err := build(cfg, keepHostKey, nil, slog.New(slog.DiscardHandler))
	defer p.close()
	for _, err := range unjoin(err) {
		bad("%v", err)
	}
	if p.hosts != nil {
		keys, cas, routers := p.hosts.Map().Counts()
		fmt.Fprintf(stdout, "%s: ok: %d key(s), %d cert-authority line(s), %d router line(s) (http-user, no key)\n", cfg.AuthorizedKeys, keys, cas, routers)
	}
	if p.revoked != nil {
		fmt.Fprintf(stdout, "%s: ok: KRL version %d\n", cfg.RevokedKeys, p.revoked.List().Version)
	}
	switch {
	case p.storeWarning != nil:
		fmt.Fprintf(stdout, "state store: warning: %v (serve starts without it, and records once it is back)\n", p.storeWarning)
	case p.store != nil:
		fmt.Fprintf(stdout, "state store %s: ok\n", p.store.Name())
	}
	if len(cfg.HTTPListen) > 0 {
		scheme := "HTTP (loopback only)"
		if cfg.TLSCert != "" {
			scheme = "HTTPS, certificate " + cfg.TLSCert
		} else if cfg.HTTPInsecure {
			scheme = "plain HTTP (http_insecure: passwords in clear)"
		}
		fmt.Fprintf(stdout, "dyndns2 front: ok: %s on %s\n", scheme, strings.Join(cfg.HTTPListen, " "))
	}
	if p.dns != nil {
		rrl := "off (rrl_rate = 0): the primary answers every query, a reflector for spoofed ones"
		if cfg.RRLRate > 0 {
			rrl = fmt.Sprintf("%d answers a second per client network and kind, slip %d, window %s", cfg.RRLRate, cfg.RRLSlip, cfg.RRLWindow.Duration)
		}
		cookies := "a random secret, rotated every 12 h (give several servers of a zone one dns_cookie_secret)"
		if cfg.DNSCookieSecret != "" {
			cookies = "dns_cookie_secret"
		}
		fmt.Fprintf(stdout, "embedded primary: ok: on %s; response rate limiting %s; cookies: %s; TCP at most %d connections, %d per source, idle %s\n",
			strings.Join(cfg.DNSListen, " "), rrl, cookies, cfg.DNSTCPMaxConns, cfg.DNSTCPMaxConnsPerSource, cfg.DNSTCPIdleTimeout.Duration)
	}
	switch {
	case p.hostKeyMissing:
		fmt.Fprintf(stdout, "%s: not there yet; serve creates it on first start\n", cfg.HostKey)
	case len(p.ssh.HostSigners) > 0:
		fmt.Fprintf(stdout, "%s: ok\n", cfg.HostKey)
	}
	for _, bz := range p.zones {
		if bz.backend == nil {
			continue // build said why
		}
		note := func(format string, args ...any) {
			fmt.Fprintf(stdout, "zone %s: %s\n", bz.cfg.Name, fmt.Sprintf(format, args...))
		}
		for _, line := range bz.backend.Report() {
			note("%s", line)
		}
		if v, ok := bz.backend.(signingVerifier); ok {
			if err := v.VerifySigning(note); err != nil {
				bad("zone %s: %v", bz.cfg.Name, err)
			}
		}
		if probe {
			if err := bz.backend.Probe(ctx, note); err != nil {
				bad("zone %s: %v", bz.cfg.Name, err)
			} else if w, ok := bz.backend.(wildcardProber); ok && p.wildcardLines(bz.cfg.Name) {
				if err := w.ProbeWildcard(ctx, note); err != nil {
					bad("zone %s: %v", bz.cfg.Name, err)
				}
			}
		}
	}
	if problems > 0 {
		fmt.Fprintf(stderr, "sshdyn check: %d problem(s)\n", problems)
		return 1
	}
	return 0
}

// unjoin splits errors.Join's error into the errors joined.
func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	if err != nil {
		return []error{err}
	}
	return nil
}

// wildcardLines reports whether a line with the wildcard option may
// update a host in zone: one of its hosts is there, or it is a
// certificate authority, whose certificates name their hosts.
func (p *parts) wildcardLines(zone string) bool {
	if p.hosts == nil {
		return false
	}
	for _, e := range p.hosts.Map().Entries() {
		if !e.Wildcard {
			continue
		}
		if e.CA {
			return true
		}
		for _, h := range e.Hosts {
			if z, ok := dnsname.Longest(h, p.zones, func(z builtZone) string { return z.cfg.Name }); ok && z.cfg.Name == zone {
				return true
			}
		}
	}
	return false
}
