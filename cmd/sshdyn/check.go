package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"strings"

	"github.com/miekg/dns"

	"github.com/sshdyn/sshdyn/config"
	"github.com/sshdyn/sshdyn/update"
)

// check validates the configuration at path and what it names, like
// named-checkconf: findings on stdout, problems on stderr, exit status 0
// when there are none and 1 otherwise. It builds what serve would build
// (build), so it refuses exactly what serve refuses. With probe it also
// proves, for each zone, that the primary answers, accepts the TSIG key
// and lets it change A and AAAA records; see verifyZone for when that
// writes.
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
	switch {
	case p.hostKeyMissing:
		fmt.Fprintf(stdout, "%s: not there yet; serve creates it on first start\n", cfg.HostKey)
	case len(p.ssh.HostSigners) > 0:
		fmt.Fprintf(stdout, "%s: ok\n", cfg.HostKey)
	}
	for _, bz := range p.zones {
		reportZone(cfg, bz, stdout)
		if !probe || bz.client == nil {
			continue
		}
		c := &update.Client{Server: bz.client.Server, Zone: bz.client.Zone, Key: bz.key, Timeout: bz.client.Timeout}
		if err := verifyZone(ctx, c, stdout); err != nil {
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

// reportZone says what check found of a zone that built: its key, with a
// warning if every user may read the file, and its zone file.
func reportZone(cfg *config.Config, bz builtZone, stdout io.Writer) {
	zc := bz.cfg
	if bz.client == nil {
		return
	}
	fmt.Fprintf(stdout, "zone %s: TSIG key %s (%s) from %s\n", zc.Name, bz.key.Name, strings.TrimSuffix(bz.key.Algorithm, "."), zc.TSIGKey)
	for _, path := range []string{zc.TSIGKey, zc.TransferKey} {
		if fi, err := os.Stat(path); path != "" && err == nil && fi.Mode().Perm()&0o007 != 0 {
			fmt.Fprintf(stdout, "zone %s: warning: %s is mode %04o, readable by every user: chmod 640 %s\n", zc.Name, path, fi.Mode().Perm(), path)
		}
	}
	if bz.embedded != nil {
		fmt.Fprintf(stdout, "zone %s: file %s: ok, serial %d; served here on %s\n", zc.Name, zc.File, bz.embedded.Serial(), strings.Join(cfg.DNSListen, " "))
	}
}

// verifyZone proves the primary accepts the key and its policy lets the
// key change A and AAAA records, and says what is wrong if not.
//
// It writes nothing where it can: a prerequisite-only update cannot show
// PowerDNS's policy, which skips a refused record and answers NOERROR. So
// when the primary does not refuse a LOC change either (a type no sshdyn
// policy grants), verifyZone writes an A and an AAAA record at a fresh
// _sshdyn-check name, confirms each, and removes them again.
func verifyZone(ctx context.Context, c *update.Client, stdout io.Writer) error {
	label := make([]byte, 6)
	rand.Read(label)
	probe := "_sshdyn-check-" + hex.EncodeToString(label) + "." + c.Zone
	types := []uint16{dns.TypeA, dns.TypeAAAA}
	var denied []string
	for _, t := range types {
		err := c.Verify(ctx, probe, t)
		if err == nil {
			continue
		}
		var ue *update.Error
		if !errors.As(err, &ue) {
			return err
		}
		if ue.Op == "query" {
			// The signed query failed: the key, the zone or the primary
			// itself, not the update policy. PowerDNS answers a query
			// with a wrong key NOTAUTH, unsigned, as if it did not serve
			// the zone; an unsigned query tells the two apart.
			if ue.Kind == update.KindNotZone && ue.TSIGError == 0 {
				if ok, _ := c.Serves(ctx); ok {
					return fmt.Errorf("primary %s serves %s but answered a query signed with TSIG key %s with %v and no signature: it did not accept the key. Check its name, algorithm and secret against the primary's, and that both clocks are right",
						c.Server, c.Zone, c.Key.Name, ue.Err)
				}
			}
			return fmt.Errorf("primary %s: %s", c.Server, describe(ue))
		}
		if policyRefusal(ue) {
			denied = append(denied, dns.TypeToString[t])
			continue
		}
		return fmt.Errorf("primary %s: %s", c.Server, describe(ue))
	}
	if len(denied) > 0 {
		return policyError(c, denied)
	}

	err := c.Verify(ctx, probe, dns.TypeLOC)
	var ue *update.Error
	if errors.As(err, &ue) && policyRefusal(ue) {
		fmt.Fprintf(stdout, "zone %s: primary %s answers, accepts TSIG key %s and lets it change A and AAAA records (checked without writing)\n", c.Zone, c.Server, c.Key.Name)
		return nil
	}
	if err != nil {
		return fmt.Errorf("primary %s: %v", c.Server, err)
	}
	fmt.Fprintf(stdout, "zone %s: primary %s did not refuse a LOC change either: the key may change every record type (grant it only A and AAAA), or the primary skips what its policy refuses without saying so (PowerDNS); checking by writing and removing %s\n",
		c.Zone, c.Server, probe)
	probeAddr := map[uint16]netip.Addr{dns.TypeA: netip.MustParseAddr("192.0.2.1"), dns.TypeAAAA: netip.MustParseAddr("2001:db8::1")}
	for _, t := range types {
		err := c.Replace(ctx, update.Record{Name: probe, Addr: probeAddr[t], TTL: 1})
		if rerr := c.Remove(ctx, probe, t); rerr != nil {
			fmt.Fprintf(stdout, "zone %s: warning: could not remove %s %s: %v\n", c.Zone, probe, dns.TypeToString[t], rerr)
		}
		if err == nil {
			continue
		}
		if errors.As(err, &ue) && (ue.Kind == update.KindIgnored || policyRefusal(ue)) {
			denied = append(denied, dns.TypeToString[t])
			continue
		}
		return fmt.Errorf("primary %s: %v", c.Server, err)
	}
	if len(denied) > 0 {
		return policyError(c, denied)
	}
	fmt.Fprintf(stdout, "zone %s: primary %s answers, accepts TSIG key %s and lets it change A and AAAA records (checked by writing and removing %s)\n", c.Zone, c.Server, c.Key.Name, probe)
	return nil
}

// policyRefusal reports whether a failed update, signed with a key that
// has just signed a query the primary verified, was refused by the update
// policy: REFUSED, or Knot's BADKEY.
func policyRefusal(e *update.Error) bool {
	return e.Kind == update.KindRefused || e.Kind == update.KindAuth && e.TSIGError == dns.RcodeBadKey
}

func policyError(c *update.Client, denied []string) error {
	name := strings.TrimSuffix(c.Key.Name, ".")
	return fmt.Errorf("primary %s accepts TSIG key %s, but its update policy does not let it change %s records in %s. Grant them, e.g. BIND: update-policy { grant %s zonesub A AAAA; }; Knot: an acl with key %s, action update, update-type [A, AAAA]; PowerDNS: TSIG-ALLOW-DNSUPDATE %s on the zone, and a lua-dnsupdate-policy-script that allows A and AAAA (examples/pdns-dnsupdate-policy.lua)",
		c.Server, c.Key.Name, strings.Join(denied, " and "), c.Zone, name, name, name)
}

// describe says what a failed exchange means for the operator.
func describe(e *update.Error) string {
	return fmt.Sprintf("%v: %s", e.Err, e.Hint())
}
