package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/sshdyn/sshdyn/config"
	"github.com/sshdyn/sshdyn/dnsname"
	"github.com/sshdyn/sshdyn/zone"
)

// dnssecCommand runs "sshdyn dnssec ds|status|roll|insecure --config
// FILE ZONE": what an operator needs of a zone sshdyn signs, read from
// its zone file, journal and keys (the daemon may be running). Only roll
// and insecure write: key files and their timing, which the daemon
// follows.
func dnssecCommand(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "ds" && args[0] != "status" && args[0] != "roll" && args[0] != "insecure" {
		fmt.Fprint(stderr, "usage: sshdyn dnssec ds|status|roll|insecure --config FILE ZONE\n")
		return 2
	}
	sub := args[0]
	fs := flag.NewFlagSet("dnssec "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "/etc/sshdyn/sshdyn.toml", "configuration `file`")
	dnskey, submitted, cancel := false, false, false
	switch sub {
	case "ds":
		fs.BoolVar(&dnskey, "dnskey", false, "print the DNSKEY records instead (for a registrar that asks for those)")
	case "roll":
		fs.BoolVar(&submitted, "ds-submitted", false, "the new key's DS is at the parent now: retire the old key once resolvers no longer hold its DS")
	case "insecure":
		fs.BoolVar(&cancel, "cancel", false, "stop going insecure: the keys' DS is wanted at the parent again")
	}
	// Flags may come after the zone too.
	var zones []string
	for rest := args[1:]; ; {
		if err := fs.Parse(rest); err != nil {
			return 2
		}
		if fs.NArg() == 0 {
			break
		}
		zones = append(zones, fs.Arg(0))
		rest = fs.Args()[1:]
	}
	if len(zones) != 1 {
		fmt.Fprintf(stderr, "sshdyn dnssec %s: name one zone\n", sub)
		return 2
	}
	fail := func(err error) int {
		fmt.Fprintf(stderr, "sshdyn dnssec %s: %v\n", sub, err)
		return 1
	}
	cfg, err := config.Load(*cfgPath)
	if err != nil {
		return fail(err)
	}
	z, err := loadSigned(cfg, zones[0])
	if err != nil {
		return fail(err)
	}
	keys := z.Keys()
	if len(keys) == 0 {
		return fail(fmt.Errorf("zone %s has no key yet: serve makes one (in %s) when it starts", dnsname.Canonical(z.Origin), z.KeyDir()))
	}
	now := z.Now()
	switch sub {
	case "roll":
		return roll(z, submitted, now, stdout, stderr)
	case "insecure":
		if cancel {
			if err := z.CancelInsecure(); err != nil {
				return fail(err)
			}
			fmt.Fprintln(stdout, "the keys' DS is wanted again: the running daemon publishes their CDS and CDNSKEY")
			return 0
		}
		if err := z.GoInsecure(); err != nil {
			return fail(err)
		}
		fmt.Fprintln(stdout, "the running daemon now publishes CDS and CDNSKEY records that ask the parent to remove the zone's DS (RFC 8078); the zone stays signed.\n"+
			"Remove the DS at the registrar if the parent does not scan for them. Once the parent has no DS and its TTL has passed, set dnssec = false and restart.")
		return 0
	}
	if sub == "ds" {
		// The keys whose DS is the parent's now (CDS): during a rollover,
		// the old key's, then the new key's.
		var parent []zone.KeyInfo
		for _, k := range keys {
			if strings.Contains(k.Roles(now), "DS") {
				parent = append(parent, k)
			}
		}
		if len(parent) == 0 {
			return fail(fmt.Errorf("zone %s wants no DS at its parent: %s", dnsname.Canonical(z.Origin), z.RollStatus()))
		}
		for _, k := range parent {
			if dnskey {
				fmt.Fprintln(stdout, k.DNSKEY.String())
				continue
			}
			ds := dns.Copy(k.DS).(*dns.DS)
			ds.Digest = strings.ToUpper(ds.Digest)
			fmt.Fprintln(stdout, ds.String())
		}
		return 0
	}
	r, err := z.Verify()
	if err != nil {
		return fail(err)
	}
	fmt.Fprintf(stdout, "zone %s: serial %d, signed with %d key(s); CDS and CDNSKEY published for the parent\n", dnsname.Canonical(z.Origin), z.Serial(), len(keys))
	for _, k := range keys {
		fmt.Fprintf(stdout, "key %d: %s, CSK: %s; %s\n  DS %s\n", k.Tag, dns.AlgorithmToString[k.Algorithm], k.Roles(now), k.File, dsText(k.DS))
	}
	if step := z.RollStatus(); step != "" {
		fmt.Fprintln(stdout, step)
	}
	fmt.Fprintf(stdout, "NSEC chain: %d names; %d signatures verify", r.Names, r.Signatures)
	if !r.NextExpiry.IsZero() {
		fmt.Fprintf(stdout, "; the soonest expires %s (in %s)", r.NextExpiry.UTC().Format(time.RFC3339), time.Until(r.NextExpiry).Round(time.Minute))
	}
	fmt.Fprintln(stdout)
	if len(r.Unsigned) > 0 {
		fmt.Fprintf(stdout, "%d name(s) not signed yet or due, e.g. %s: the running daemon signs them (at start, or as they fall due)\n", len(r.Unsigned), dnsname.Canonical(r.Unsigned[0]))
	}
	if len(r.Bogus) > 0 {
		return fail(fmt.Errorf("%d RRset(s) whose signature does not verify, e.g. %s", len(r.Bogus), r.Bogus[0]))
	}
	return 0
}

// loadSigned loads the zone name of cfg, which sshdyn must serve and
// sign, without taking it over from a running daemon.
func loadSigned(cfg *config.Config, name string) (*zone.Zone, error) {
	want := dnsname.Canonical(name)
	for _, zc := range cfg.Zones {
		if dnsname.Canonical(zc.Name) != want {
			continue
		}
		if !zc.Embedded() || !zc.DNSSEC {
			return nil, fmt.Errorf("zone %s is not signed by sshdyn: that needs file and dnssec = true in its [[zone]]", want)
		}
		return zone.Load(zone.Config{Origin: zc.Name, File: zc.File, DNSSEC: zc.Signing()})
	}
	return nil, errors.New("no [[zone]] named " + want + " in the configuration")
}

// roll starts a CSK rollover, or (submitted) records that the new key's
// DS is at the parent.
func roll(z *zone.Zone, submitted bool, now time.Time, stdout, stderr io.Writer) int {
	if submitted {
		retire, err := z.DSSubmitted()
		if err != nil {
			fmt.Fprintf(stderr, "sshdyn dnssec roll: %v\n", err)
			return 1
		}
		fmt.Fprintf(stdout, "the old key retires at %s (dnssec_parent_ds_ttl and dnssec_propagation_delay from now); the daemon does it\n", retire.UTC().Format(time.RFC3339))
		return 0
	}
	k, dsAt, err := z.StartRoll()
	if err != nil {
		fmt.Fprintf(stderr, "sshdyn dnssec roll: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "new key %d (%s) made in %s: the running daemon publishes it and signs with both keys now.\n"+
		"At %s its DS replaces the old one's in CDS and CDNSKEY: give it to the parent then (sshdyn dnssec ds), and run sshdyn dnssec roll --ds-submitted.\n",
		k.Tag, k.File, z.KeyDir(), dsAt.UTC().Format(time.RFC3339))
	return 0
}
