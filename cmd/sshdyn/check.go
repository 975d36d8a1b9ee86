package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/sshdyn/sshdyn/config"
	"github.com/sshdyn/sshdyn/update"
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
		fmt.Fprintf(stdout, "%s: ok: %d key(s)\n", cfg.AuthorizedKeys, p.hosts.Map().Len())
	}
	if p.revoked != nil {
		fmt.Fprintf(stdout, "%s: ok: KRL version %d\n", cfg.RevokedKeys, p.revoked.List().Version)
	}
	switch {
	case p.hostKeyMissing:
		fmt.Fprintf(stdout, "%s: not there yet; serve creates it on first start\n", cfg.HostKey)
	case len(p.ssh.HostSigners) > 0:
		fmt.Fprintf(stdout, "%s: ok\n", cfg.HostKey)
	}
	for _, bz := range p.zones {
		reportZone(cfg, bz, stdout)
		if probe && bz.tinydns != nil {
			if err := bz.tinydns.Check(); err != nil {
				bad("zone %s: %v", bz.cfg.Name, err)
			} else {
				fmt.Fprintf(stdout, "zone %s: tinydns root %s: writable, and tinydns-data compiles its data\n", bz.cfg.Name, bz.cfg.TinydnsRoot)
			}
		}
		if probe && bz.provider != nil {
			if err := bz.provider.Check(ctx); err != nil {
				bad("zone %s: %v", bz.cfg.Name, err)
			} else {
				fmt.Fprintf(stdout, "zone %s: the %s API answers, accepts the key and has the zone\n", bz.cfg.Name, bz.cfg.Provider)
			}
		}
		if !probe || bz.client == nil {
			continue
		}
		c := &update.Client{Server: bz.client.Server, Zone: bz.client.Zone, Key: bz.key, Timeout: bz.client.Timeout}
		note := func(format string, args ...any) {
			fmt.Fprintf(stdout, "zone %s: %s\n", bz.cfg.Name, fmt.Sprintf(format, args...))
		}
		if err := c.Probe(ctx, note, bz.cfg.ACME); err != nil {
			bad("zone %s: %v", bz.cfg.Name, err)
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

// reportZone says what check found of a zone that built: its key and its
// zone file.
func reportZone(cfg *config.Config, bz builtZone, stdout io.Writer) {
	zc := bz.cfg
	if bz.client == nil {
		return
	}
	fmt.Fprintf(stdout, "zone %s: TSIG key %s (%s) from %s\n", zc.Name, bz.key.Name, strings.TrimSuffix(bz.key.Algorithm, "."), zc.TSIGKey)
	if bz.embedded != nil {
		pending := ""
		if n := bz.embedded.Stats().Replayed; n > 0 {
			pending = fmt.Sprintf(" with %d changes from its journal, not yet in the file", n)
		}
		fmt.Fprintf(stdout, "zone %s: file %s: ok, serial %d%s; served here on %s\n", zc.Name, zc.File, bz.embedded.Serial(), pending, strings.Join(cfg.DNSListen, " "))
	}
}
