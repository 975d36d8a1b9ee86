package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/netip"
	"os"
	"strings"

	"github.com/miekg/dns"

	"github.com/sshdyn/sshdyn/authorized"
	"github.com/sshdyn/sshdyn/config"
	"github.com/sshdyn/sshdyn/sshd"
	"github.com/sshdyn/sshdyn/tsig"
	"github.com/sshdyn/sshdyn/update"
	"github.com/sshdyn/sshdyn/zone"
)

// check validates the configuration at path and what it names, like
// named-checkconf: findings on stdout, problems on stderr, exit status 0
// when there are none and 1 otherwise. With probe it also proves, for
// each zone, that the primary answers, accepts the TSIG key and lets it
// change A and AAAA records; see verifyZone for when that writes.
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

	if m, err := authorized.Load(cfg.AuthorizedKeys, cfg.ZoneNames()); err != nil {
		bad("%v", err)
	} else {
		fmt.Fprintf(stdout, "%s: ok: %d key(s)\n", cfg.AuthorizedKeys, m.Len())
	}

	if _, err := os.Stat(cfg.HostKey); errors.Is(err, fs.ErrNotExist) {
		fmt.Fprintf(stdout, "%s: not there yet; serve creates it on first start\n", cfg.HostKey)
	} else if _, _, err := sshd.LoadOrCreateHostKey(cfg.HostKey); err != nil {
		bad("%v", err)
	} else {
		fmt.Fprintf(stdout, "%s: ok\n", cfg.HostKey)
	}

	for _, zc := range cfg.Zones {
		key, ok := checkKeyFile(zc.Name, zc.TSIGKey, stdout, bad)
		if zc.TransferKey != "" {
			checkKeyFile(zc.Name, zc.TransferKey, stdout, bad)
		}
		if zc.Embedded() {
			if z, err := zone.Load(zone.Config{Origin: zc.Name, File: zc.File}); err != nil {
				bad("zone %s: %v", zc.Name, err)
			} else {
				fmt.Fprintf(stdout, "zone %s: file %s: ok, serial %d; served here on %s\n", zc.Name, zc.File, z.Serial(), strings.Join(cfg.DNSListen, " "))
			}
		}
		if !probe || !ok {
			continue
		}
		c := &update.Client{Server: zc.Primary, Zone: zc.Name, Key: key, Timeout: zc.Timeout.Duration}
		if err := verifyZone(ctx, c, stdout); err != nil {
			bad("zone %s: %v", zc.Name, err)
		}
	}
	if problems > 0 {
		fmt.Fprintf(stderr, "sshdyn check: %d problem(s)\n", problems)
		return 1
	}
	return 0
}

// checkKeyFile loads a TSIG key file and warns if others may read it.
func checkKeyFile(zoneName, path string, stdout io.Writer, bad func(string, ...any)) (tsig.Key, bool) {
	key, err := tsig.Load(path)
	if errors.Is(err, fs.ErrPermission) {
		bad("zone %s: %v: the user sshdyn runs as must be able to read it (e.g. chown root:sshdyn %s; chmod 640 %s)", zoneName, err, path, path)
		return key, false
	}
	if err != nil {
		bad("zone %s: %v", zoneName, err)
		return key, false
	}
	fmt.Fprintf(stdout, "zone %s: TSIG key %s (%s) from %s\n", zoneName, key.Name, strings.TrimSuffix(key.Algorithm, "."), path)
	if fi, err := os.Stat(path); err == nil && fi.Mode().Perm()&0o007 != 0 {
		fmt.Fprintf(stdout, "zone %s: warning: %s is mode %04o, readable by every user: chmod 640 %s\n", zoneName, path, fi.Mode().Perm(), path)
	}
	return key, true
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
