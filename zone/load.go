package zone

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"

	"github.com/miekg/dns"

	"github.com/sshdyn/sshdyn/dnsname"
)

// Load reads cfg.File and the journal beside it (FILE.jnl), and returns
// the zone, ready to serve. Load writes nothing: the journal is opened
// for appending at the first update.
func Load(cfg Config) (*Zone, error) {
	origin := dnsname.FQDN(cfg.Origin)
	if _, ok := dns.IsDomainName(origin); !ok || origin == "." {
		return nil, fmt.Errorf("zone %q: not a domain name", cfg.Origin)
	}
	f, err := os.Open(cfg.File)
	if err != nil {
		return nil, fmt.Errorf("zone %s: %w", strings.TrimSuffix(origin, "."), err)
	}
	defer f.Close()
	t, err := parse(f, origin, cfg.File)
	if err != nil {
		return nil, err
	}
	cuts := 0
	t.ascend(func(name string, n node) bool {
		cuts += b2i(isCut(origin, name, n))
		return true
	})
	jpath := journalPath(cfg.File)
	diffs, good, err := readJournal(jpath)
	if err != nil {
		return nil, fmt.Errorf("zone %s: %w", strings.TrimSuffix(origin, "."), err)
	}
	diffs, err = replay(t, &cuts, diffs)
	if err != nil {
		return nil, fmt.Errorf("zone %s: %s: %w", strings.TrimSuffix(origin, "."), jpath, err)
	}
	var size int64
	if fi, err := f.Stat(); err == nil {
		size = fi.Size()
	}
	z := &Zone{
		Origin:        origin,
		cfg:           cfg,
		log:           cfg.Logger,
		types:         map[uint16]bool{},
		keys:          map[string]bool{},
		xfrKey:        map[string]bool{},
		pending:       t.clone(),
		cuts:          cuts,
		persisted:     t.clone(),
		persistedCuts: cuts,
		batch:         &batch{},
		jnl:           &journal{path: jpath, size: good},
		replayed:      len(diffs),
	}
	if z.log == nil {
		z.log = slog.New(slog.DiscardHandler)
	}
	if len(cfg.UpdateTypes) == 0 {
		cfg.UpdateTypes = DefaultUpdateTypes()
	}
	for _, t := range cfg.UpdateTypes {
		if err := Updatable(t); err != nil {
			return nil, fmt.Errorf("zone %s: %w", strings.TrimSuffix(origin, "."), err)
		}
		z.types[t] = true
	}
	for _, k := range cfg.UpdateKeys {
		z.keys[dnsname.FQDN(k)] = true
	}
	for _, k := range cfg.TransferKeys {
		z.xfrKey[dnsname.FQDN(k)] = true
	}
	z.fileBytes.Store(size)
	if cfg.DNSSEC != nil {
		if err := CheckDNSSEC(*cfg.DNSSEC); err != nil {
			return nil, fmt.Errorf("zone %s: %w", strings.TrimSuffix(origin, "."), err)
		}
		keys, err := loadKeys(z.keyDir(), origin)
		if err != nil {
			return nil, fmt.Errorf("zone %s: %w", strings.TrimSuffix(origin, "."), err)
		}
		if err := sameAlgorithm(keys, *cfg.DNSSEC); err != nil {
			return nil, fmt.Errorf("zone %s: %w", strings.TrimSuffix(origin, "."), err)
		}
		if len(keys) > 0 {
			z.signer = newSigner(*cfg.DNSSEC, keys)
		}
	}
	h, records := trimHistory(nil, 0, diffs, historyLimit(t.len()))
	z.cur.Store(&snapshot{origin: origin, names: t, serial: t.soa().Serial, cuts: cuts, history: h, historyRecords: records, signed: cfg.DNSSEC != nil, nsec3: cfg.DNSSEC != nil && cfg.DNSSEC.NSEC3})
	return z, nil
}

// replay applies to t the journal's diffs that follow t's serial, and
// returns them. With none that follows, the journal must end at t's
// serial (the zone file holds all of it); otherwise the zone file was
// replaced or edited while updates were in the journal, and replay
// refuses rather than guess.
func replay(t *tree, cuts *int, diffs []*diff) ([]*diff, error) {
	if len(diffs) == 0 {
		return nil, nil
	}
	serial := t.soa().Serial
	start := slices.IndexFunc(diffs, func(d *diff) bool { return d.from.Serial == serial })
	if start < 0 {
		if last := diffs[len(diffs)-1].to.Serial; last == serial {
			return nil, nil
		}
		return nil, fmt.Errorf("the journal (serials %d to %d) does not continue the zone file's serial %d: "+
			"the file was changed while the journal held updates; restore the file, or move the journal away to serve the file as it is",
			diffs[0].from.Serial, diffs[len(diffs)-1].to.Serial, serial)
	}
	for _, d := range diffs[start:] {
		if d.from.Serial != t.soa().Serial {
			return nil, fmt.Errorf("diff to serial %d does not follow serial %d", d.to.Serial, t.soa().Serial)
		}
		if err := replayable(t.origin, d); err != nil {
			return nil, fmt.Errorf("diff to serial %d: %w", d.to.Serial, err)
		}
		*cuts += applyDiff(t, d)
		// What the loader refuses, a replay refuses: a crafted journal
		// could put a CNAME beside other data (audit finding H5).
		for _, rr := range d.add {
			n, _ := t.get(rr.Header().Name)
			if err := coexist(n); err != nil {
				return nil, fmt.Errorf("diff to serial %d: %s: %w", d.to.Serial, rr.Header().Name, err)
			}
		}
	}
	return diffs[start:], nil
}

// replayable reports why d is not a change an update could have made:
// the journal is sshdyn's own, but a damaged one must not load as a zone
// without its SOA or NS, or with what the loader refuses.
func replayable(origin string, d *diff) error {
	if d.to.Hdr.Name != origin || d.to.Hdr.Class != dns.ClassINET || !storable(d.to) {
		return errors.New("not the zone's SOA")
	}
	for _, rr := range slices.Concat(d.del, d.add) {
		h := rr.Header()
		switch {
		case h.Name != dnsname.FQDN(h.Name) || !dnsname.InZone(h.Name, origin):
			return fmt.Errorf("%s: not a name of the zone", h.Name)
		case h.Name == origin && !dnssecType(h.Rrtype) || h.Class != dns.ClassINET:
			return fmt.Errorf("%s: a change of the apex, or of class %d", h.Name, h.Class)
		}
		if err := servable(h.Name, h.Rrtype, origin); err != nil {
			return fmt.Errorf("%s: %w", h.Name, err)
		}
		if !storable(rr) {
			return fmt.Errorf("%s: a %s record that does not read back", h.Name, typeName(h.Rrtype))
		}
	}
	return nil
}

// applyDiff makes the change d to t (a tree no reader shares) and returns
// how the number of delegations changed.
func applyDiff(t *tree, d *diff) int {
	touched := map[string]rrsets{}
	get := func(name string) rrsets {
		if n, ok := touched[name]; ok {
			return n
		}
		old, _ := t.get(name)
		n := old.sets()
		touched[name] = n
		return n
	}
	for _, rr := range d.del {
		h := rr.Header()
		n := get(h.Name)
		n[h.Rrtype] = slices.DeleteFunc(slices.Clone(n[h.Rrtype]), func(old dns.RR) bool { return dns.IsDuplicate(old, rr) })
		if len(n[h.Rrtype]) == 0 {
			delete(n, h.Rrtype)
		}
	}
	for _, rr := range d.add {
		h := rr.Header()
		n := get(h.Name)
		n[h.Rrtype] = addRR(n[h.Rrtype], rr)
	}
	get(t.origin)[dns.TypeSOA] = []dns.RR{d.to}
	delta := 0
	for name, sets := range touched {
		old, _ := t.get(name)
		n := sets.node()
		delta += b2i(isCut(t.origin, name, n)) - b2i(isCut(t.origin, name, old))
		t.set(name, n)
	}
	return delta
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}
