package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/sshdyn/sshdyn/backend"
	"github.com/sshdyn/sshdyn/config"
	"github.com/sshdyn/sshdyn/metrics"
	"github.com/sshdyn/sshdyn/provider"
	"github.com/sshdyn/sshdyn/tinydns"
	"github.com/sshdyn/sshdyn/tsig"
	"github.com/sshdyn/sshdyn/update"
	"github.com/sshdyn/sshdyn/zone"
)

// zoneBackend is a zone's backend as serve and check use it: the
// contract the core calls, what check reports of it, what check --dns
// proves, and what it holds open.
type zoneBackend interface {
	backend.Backend
	Report() []string
	Probe(ctx context.Context, note func(format string, args ...any)) error
	Close() error
}

// backendEnv is what a backend's constructor may need besides its zone's
// section: the whole configuration and the metrics (nil for none).
type backendEnv struct {
	cfg     *config.Config
	metrics *metrics.Metrics
	log     *slog.Logger
}

// opened is a zone's backend, and, for a zone sshdyn serves itself, the
// zone and the TSIG keys its embedded primary must accept.
type opened struct {
	backend  zoneBackend
	embedded *zone.Zone
	keys     []tsig.Key
}

// backends are the constructors of the backends, by the name a zone's
// backend setting gives. Each maps its section of the configuration to
// its package's own constructor, which loads and checks what it needs.
var backends = map[string]func(zc config.Zone, env backendEnv) (opened, error){
	config.BackendRFC2136: openRFC2136,
	config.BackendTinydns: func(zc config.Zone, _ backendEnv) (opened, error) {
		b, err := tinydns.Open(zc.TinydnsRoot, zc.Name)
		if err != nil {
			return opened{}, err
		}
		return opened{backend: b}, nil
	},
	config.BackendLibdns: func(zc config.Zone, _ backendEnv) (opened, error) {
		b, err := provider.Open(provider.Config{Zone: zc.Name, Provider: zc.Provider, URL: zc.APIURL, KeyFile: zc.APIKeyFile, ServerID: zc.ServerID})
		if err != nil {
			return opened{}, err
		}
		return opened{backend: b}, nil
	},
}

// openRFC2136 opens an RFC 2136 zone: signed updates to its primary, or,
// with a zone file, the zone sshdyn serves, written in process.
func openRFC2136(zc config.Zone, env backendEnv) (opened, error) {
	uc := update.Config{Zone: zc.Name, Primary: zc.Primary, KeyFile: zc.TSIGKey, Timeout: zc.Timeout.Duration,
		MaxIdle: env.cfg.MaxDNSInFlight, ACME: zc.ACME}
	if env.metrics != nil {
		uc.Observe = env.metrics.DNS(zc.Name)
	}
	b, err := update.Open(uc)
	if err != nil {
		return opened{}, err
	}
	if !zc.Embedded() {
		return opened{backend: b}, nil
	}
	o := opened{keys: []tsig.Key{b.Key()}}
	var xfr []string
	if zc.TransferKey != "" {
		k, err := tsig.LoadPrivate(zc.TransferKey)
		if err != nil {
			b.Close()
			return opened{}, fmt.Errorf("zone %s: %w", zc.Name, err)
		}
		o.keys, xfr = append(o.keys, k), []string{k.Name}
	}
	z, err := zone.Load(zone.Config{
		Origin: zc.Name, File: zc.File,
		UpdateKeys: []string{b.Key().Name}, UpdateTypes: zc.Types(),
		AllowTransfer: zc.TransferPrefixes(), TransferKeys: xfr, Notify: zc.Notify, ACME: zc.ACME,
		JournalLimit: zc.JournalLimit, SyncAfter: zc.ZonefileSync.Duration, RRLRate: zc.RRLRate,
		DNSSEC: zc.Signing(), Logger: env.log.With("component", "dns"),
	})
	if err != nil {
		b.Close()
		return opened{}, err
	}
	o.embedded = z
	o.backend = embedded{Backend: zone.NewBackend(z), rfc: b, listen: env.cfg.DNSListen}
	return o, nil
}

// embedded is a zone sshdyn serves itself: written in process; check
// reports its file and probes it over RFC 2136 as any other primary (a
// running sshdyn answers).
type embedded struct {
	zone.Backend
	rfc    *update.Backend
	listen []string
}

func (e embedded) Report() []string {
	z := e.Zone
	pending := ""
	if n := z.Stats().Replayed; n > 0 {
		pending = fmt.Sprintf(" with %d changes from its journal, not yet in the file", n)
	}
	return append(e.rfc.Report(), fmt.Sprintf("file %s: ok, serial %d%s; served here on %s", z.File(), z.Serial(), pending, strings.Join(e.listen, " ")))
}

func (e embedded) Probe(ctx context.Context, note func(format string, args ...any)) error {
	return e.rfc.Probe(ctx, note)
}

func (e embedded) ProbeWildcard(ctx context.Context, note func(format string, args ...any)) error {
	return e.rfc.ProbeWildcard(ctx, note)
}

// wildcardProber is a backend whose policy may refuse wildcard names
// (an RFC 2136 primary's): check --dns asks it when lines of its zone
// have the wildcard option. The other backends hold *.HOST as any name.
type wildcardProber interface {
	ProbeWildcard(ctx context.Context, note func(format string, args ...any)) error
}

func (e embedded) Close() error { return e.rfc.Close() }

// signingVerifier is a backend that signs its zone (the embedded
// primary with dnssec = true): check asks it to verify the signed zone.
type signingVerifier interface {
	VerifySigning(note func(format string, args ...any)) error
}

// VerifySigning checks the keys, the NSEC chain and every signature of
// the zone as its file and journal hold it.
func (e embedded) VerifySigning(note func(format string, args ...any)) error {
	z := e.Zone
	if !z.Signed() {
		if z.SignedOnDisk() {
			note("DNSSEC: the zone file holds a signed zone and dnssec is off: serve removes its DNSKEY, CDS and CDNSKEY, signatures and NSEC records when it starts. " +
				"If the parent zone has a DS record for it, remove that first and wait for its TTL: until then resolvers that validate fail the zone. Or set dnssec = true again")
		}
		return nil
	}
	r, err := z.Verify()
	if errors.Is(err, zone.ErrNoKeys) {
		note("DNSSEC: no key yet in %s: serve makes one when it starts, then signs the zone", z.KeyDir())
		return nil
	}
	if err != nil {
		return fmt.Errorf("DNSSEC: %w", err)
	}
	for _, k := range r.Keys {
		note("DNSSEC: key %d (%s), %s; DS for the parent: %s", k.Tag, dns.AlgorithmToString[k.Algorithm], k.File, dsText(k.DS))
	}
	if len(r.Bogus) > 0 {
		return fmt.Errorf("DNSSEC: %d RRset(s) whose signature does not verify (%s): was the zone file edited while sshdyn was stopped? "+
			"Delete those names' RRSIG records from the file; serve signs what is unsigned when it starts", len(r.Bogus), strings.Join(r.Bogus[:min(3, len(r.Bogus))], ", "))
	}
	if len(r.Unsigned) > 0 {
		note("DNSSEC: %d name(s) not signed yet (or due), e.g. %s: serve signs them when it starts", len(r.Unsigned), strings.TrimSuffix(r.Unsigned[0], "."))
	}
	next := "none"
	if !r.NextExpiry.IsZero() {
		next = r.NextExpiry.UTC().Format(time.RFC3339)
	}
	note("DNSSEC: ok: %d names in the NSEC chain, %d signatures verify; the soonest expires %s", r.Names, r.Signatures, next)
	return nil
}

// dsText is a DS record's data as a registrar's form asks for it.
func dsText(ds *dns.DS) string {
	return fmt.Sprintf("%d %d %d %s", ds.KeyTag, ds.Algorithm, ds.DigestType, strings.ToUpper(ds.Digest))
}
