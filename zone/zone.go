// Package zone is sshdyn's embedded authoritative primary. It serves zones
// loaded from standard zone files over UDP and TCP, applies TSIG-signed
// RFC 2136 updates atomically and durably (appended to a journal and
// fsynced before an update is acknowledged; the zone file is rewritten in
// the background), and hands the zone to real secondaries with AXFR, IXFR
// and NOTIFY.
//
// sshdyn's updater talks to it over RFC 2136 exactly as to BIND or Knot.
package zone

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"

	"github.com/sshdyn/sshdyn/dnsname"
)

// Config describes one zone served by the embedded primary.
type Config struct {
	Origin string // the zone's name, e.g. "dyn.example.com"
	File   string // zone file: read at start, rewritten from the journal in the background

	// UpdateKeys are the names of the TSIG keys allowed to update the
	// zone; UpdateTypes the RR types they may change (default A and
	// AAAA). Updates are only ever allowed below the apex.
	UpdateKeys  []string
	UpdateTypes []uint16

	// AllowTransfer lists the networks that may transfer the zone (AXFR,
	// IXFR); none may by default. When TransferKeys is not empty, a
	// transfer must also be signed with one of those keys.
	AllowTransfer []netip.Prefix
	TransferKeys  []string
	// Notify lists secondaries (host:port) told of every change.
	Notify []string

	// ACME lets the update keys add and remove TXT records at
	// _acme-challenge names (ACME DNS-01 challenges), and nowhere else
	// unless UpdateTypes has TXT.
	ACME bool

	// The journal (File + ".jnl") is written into the zone file when it
	// reaches JournalLimit bytes (default: about a quarter of the zone
	// file, at least 1 MiB), SyncAfter after its oldest update (default
	// 1 minute), and by Close.
	JournalLimit int64
	SyncAfter    time.Duration

	Logger *slog.Logger // compaction and journal errors; none if nil
}

// snapshot is a published, immutable state of the zone: durable (its
// last change is in the journal) and what queries and transfers see.
type snapshot struct {
	origin  string
	names   *tree
	serial  uint32
	cuts    int     // names below the apex that hold NS records (delegations)
	history []*diff // the changes that led here, oldest first, for IXFR
	// historyRecords counts the records of history's diffs.
	historyRecords int
}

// Zone is one zone of the embedded primary.
type Zone struct {
	Origin string // canonical: lower case, fully qualified
	cfg    Config
	log    *slog.Logger
	types  map[uint16]bool
	keys   map[string]bool // update keys, canonical names
	xfrKey map[string]bool

	cur atomic.Pointer[snapshot] // durable, served

	mu            sync.Mutex // guards pending, cuts, persisted, persistedCuts and batch
	pending       *tree      // the latest state, durable or not; the writer's own tree
	cuts          int        // pending's delegations
	persisted     *tree      // the state of cur, for when a journal write fails
	persistedCuts int
	batch         *batch

	flushMu  sync.Mutex // one journal write at a time; guards jnl, owned, closing, closed and timer
	jnl      *journal
	owned    bool        // the journal is open for appending and stale temporary files are gone
	lock     *os.File    // FILE.lock, locked while the zone is owned
	closing  bool        // Close was called: no more compactions are scheduled
	closed   bool        // Close is done: updates fail
	replayed int         // diffs replayed at load
	timer    *time.Timer // compacts the journal into the zone file when it is old enough
	written  time.Time   // the last zone-file write from the journal
	failed   error       // the last zone-file write's error, nil after one that worked

	compactMu  sync.Mutex // one zone-file write at a time
	compacting atomic.Bool

	// changed is called after a change is durable.
	changed func()
}

// batch is the updates applied to pending since the last journal write,
// each a diff; one write makes them all durable (group commit). done and
// err are set under flushMu.
type batch struct {
	diffs []*diff
	done  bool
	err   error
}

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
	h, records := trimHistory(nil, 0, diffs, historyLimit(t.len()))
	z.cur.Store(&snapshot{origin: origin, names: t, serial: t.soa().Serial, cuts: cuts, history: h, historyRecords: records})
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
		case h.Name == origin || h.Class != dns.ClassINET:
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

// may reports whether an update may change name's (canonical, fully
// qualified) RRset of type t.
func (z *Zone) may(name string, t uint16) bool {
	return z.types[t] || z.cfg.ACME && t == dns.TypeTXT && strings.HasPrefix(name, acmeLabel)
}

// acmeLabel starts the owner names of ACME DNS-01 challenges.
const acmeLabel = "_acme-challenge."

// Serial returns the SOA serial served now.
func (z *Zone) Serial() uint32 { return z.cur.Load().serial }

// File returns the zone file's path.
func (z *Zone) File() string { return z.cfg.File }

// Records returns name's records of type t as served now.
func (z *Zone) Records(name string, t uint16) []dns.RR {
	n, _ := z.snapshot().names.get(dnsname.FQDN(name))
	return slices.Clone(n.get(t))
}

func (z *Zone) snapshot() *snapshot { return z.cur.Load() }

// Targets returns the names inside the zone that its NS, MX and SRV
// records point at (canonical, no trailing dot), each with the record
// that names it: an update key must not own one, or it could move the
// zone's name server or mail.
func (z *Zone) Targets() map[string]string {
	out := map[string]string{}
	z.snapshot().names.ascend(func(name string, n node) bool {
		for _, set := range n {
			for _, rr := range set.rrs {
				var target string
				switch r := rr.(type) {
				case *dns.NS:
					target = r.Ns
				case *dns.MX:
					target = r.Mx
				case *dns.SRV:
					target = r.Target
				default:
					continue
				}
				t := dnsname.Canonical(target)
				if dnsname.InZone(dnsname.FQDN(t), z.Origin) {
					out[t] = fmt.Sprintf("the target of the %s record of %s", typeName(rr.Header().Rrtype), strings.TrimSuffix(name, "."))
				}
			}
		}
		return true
	})
	return out
}

// parse reads a zone file for origin and checks what the server relies
// on: one SOA and at least one NS at the apex, class IN, every name in
// the zone, CNAME alone at its name. Wildcards and DNAME are refused: the
// server does not synthesize answers from them.
//
// The records are collected in a list, sorted by name (the tree's key,
// the order of the file kept within a name) and grouped: at a million
// names that is a third faster than a map of names, and the tree is then
// built in order.
func parse(r io.Reader, origin, file string) (*tree, error) {
	zp := dns.NewZoneParser(r, origin, file)
	zp.SetIncludeAllowed(false)
	type rec struct {
		key string
		rr  dns.RR
	}
	var recs []rec
	bad := func(name, format string, args ...any) error {
		return fmt.Errorf("%s: %s: %s", file, strings.TrimSuffix(name, "."), fmt.Sprintf(format, args...))
	}
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		h := rr.Header()
		h.Name = wireForm(dnsname.FQDN(h.Name))
		switch {
		case h.Class != dns.ClassINET:
			return nil, bad(h.Name, "class %s: only IN is served", dns.ClassToString[h.Class])
		case !dnsname.InZone(h.Name, origin):
			return nil, bad(h.Name, "not in zone %s", strings.TrimSuffix(origin, "."))
		}
		if err := servable(h.Name, h.Rrtype, origin); err != nil {
			return nil, bad(h.Name, "%v", err)
		}
		// Records of one name share its string (and the names of
		// records in a row are most often the same).
		if len(recs) > 0 && recs[len(recs)-1].rr.Header().Name == h.Name {
			last := recs[len(recs)-1]
			h.Name = last.rr.Header().Name
			recs = append(recs, rec{last.key, rr})
			continue
		}
		recs = append(recs, rec{nameKey(h.Name), rr})
	}
	if err := zp.Err(); err != nil {
		return nil, err
	}
	slices.SortStableFunc(recs, func(a, b rec) int { return strings.Compare(a.key, b.key) })
	t := newTree(origin)
	for i := 0; i < len(recs); {
		key, name := recs[i].key, recs[i].rr.Header().Name
		var n node
		for ; i < len(recs) && recs[i].key == key; i++ {
			rr := recs[i].rr
			rr.Header().Name = name
			t := rr.Header().Rrtype
			if t == dns.TypeSOA && len(n.get(dns.TypeSOA)) > 0 {
				return nil, bad(name, "more than one SOA")
			}
			n = n.with(t, addRR(n.get(t), rr))
		}
		if err := coexist(n); err != nil {
			return nil, bad(name, "%v", err)
		}
		t.t.ReplaceOrInsert(entry{key, n})
	}
	apex, _ := t.get(origin)
	if len(apex.get(dns.TypeSOA)) != 1 {
		return nil, fmt.Errorf("%s: no SOA record at the apex %s", file, origin)
	}
	if len(apex.get(dns.TypeNS)) == 0 {
		return nil, fmt.Errorf("%s: no NS record at the apex %s", file, origin)
	}
	return t, nil
}

// servable reports why a record of type t at name, a name inside origin,
// cannot be in a zone this server loads. The loader and the update path
// both ask it, so an acknowledged update never leaves a zone file that
// does not load.
func servable(name string, t uint16, origin string) error {
	switch {
	case name == "*" || strings.HasPrefix(name, "*."):
		return errors.New("wildcards are not supported")
	case t == dns.TypeDNAME:
		return errors.New("DNAME is not supported")
	case t == dns.TypeSOA && name != origin:
		return errors.New("SOA below the apex")
	case isMeta(t):
		return fmt.Errorf("type %s cannot be in a zone", typeName(t))
	}
	return nil
}

// wireForm returns name as miekg/dns writes a name it read off the wire:
// the form an update's names have. A zone file may escape what needs no
// escape (sshdyn's own writes "\$TTL" for a name starting with "$"), and
// the same name must be the same string wherever it came from.
func wireForm(name string) string {
	if !strings.Contains(name, `\`) {
		return name
	}
	buf := make([]byte, 256)
	off, err := dns.PackDomainName(name, buf, 0, nil, false)
	if err != nil {
		return name
	}
	out, _, err := dns.UnpackDomainName(buf[:off], 0)
	if err != nil {
		return name
	}
	return out
}

// coexist reports why the records of one name cannot be served together
// (a CNAME is alone at its name, and there is one: RFC 2181 10.1). The
// loader and the journal's replay both ask it; the update path keeps the
// same rule as it applies each record (RFC 2136 3.4.2.2).
func coexist(n node) error {
	switch cnames := len(n.get(dns.TypeCNAME)); {
	case cnames > 0 && len(n) > 1:
		return errors.New("CNAME and other data")
	case cnames > 1:
		return errors.New("more than one CNAME")
	}
	return nil
}

// addRR adds rr to an RRset, or replaces the duplicate of it, and gives
// the whole RRset rr's TTL (RFC 2181 5.2). It returns a new slice.
func addRR(set []dns.RR, rr dns.RR) []dns.RR {
	out := make([]dns.RR, 0, len(set)+1)
	ttl := rr.Header().Ttl
	for _, old := range set {
		if dns.IsDuplicate(old, rr) {
			continue
		}
		if old.Header().Ttl != ttl {
			old = dns.Copy(old)
			old.Header().Ttl = ttl
		}
		out = append(out, old)
	}
	return append(out, rr)
}

// errClosed fails the updates that reach a zone after Close.
var errClosed = errors.New("zone closed")

// commit makes the updates of b durable: the first caller appends every
// diff applied so far to the journal in one write and one fsync, later
// callers find their batch already written. It returns the write's error.
func (z *Zone) commit(b *batch) error {
	z.flushMu.Lock()
	defer z.flushMu.Unlock()
	if b.done {
		return b.err
	}
	z.mu.Lock()
	state, keep, cuts := z.pending.clone(), z.pending.clone(), z.cuts
	cur := z.batch
	z.batch = &batch{}
	z.mu.Unlock()

	err := errClosed
	if !z.closed {
		err = z.own()
		if err == nil {
			err = z.jnl.append(cur.diffs)
		}
	}
	z.mu.Lock()
	if err != nil {
		// Nothing of cur is durable, and the updates applied since (in
		// z.batch) were checked against cur's state: fail them all.
		z.pending, z.cuts = z.persisted.clone(), z.persistedCuts
		z.batch.done, z.batch.err = true, err
		z.batch = &batch{}
	} else {
		z.persisted, z.persistedCuts = keep, cuts
		old := z.cur.Load()
		h, records := trimHistory(old.history, old.historyRecords, cur.diffs, historyLimit(state.len()))
		z.cur.Store(&snapshot{origin: z.Origin, names: state, serial: state.soa().Serial, cuts: cuts, history: h, historyRecords: records})
	}
	z.mu.Unlock()
	cur.done, cur.err = true, err
	if err != nil {
		z.log.Error("journal write failed: updates refused", "zone", z.Origin, "journal", z.jnl.path, "err", err)
		return err
	}
	z.scheduleCompaction()
	if z.changed != nil {
		z.changed()
	}
	return nil
}

// errLocked: another process holds a zone's lock file.
var errLocked = errors.New("locked by another process")

// Own makes this process the zone's writer: it locks FILE.lock (another
// sshdyn serving the same zone file fails here, instead of both appending
// to one journal), opens the journal for appending, cutting off a record
// torn by a crash, and removes the temporary files a crash left beside
// the zone file. Load does none of this, so "sshdyn check" can load a
// zone a running server owns; the first update owns the zone if Own was
// not called.
func (z *Zone) Own() error {
	z.flushMu.Lock()
	defer z.flushMu.Unlock()
	return z.own()
}

// own is Own, called with flushMu held.
func (z *Zone) own() error {
	if z.owned {
		return nil
	}
	if z.closed {
		return errClosed
	}
	lock, err := os.OpenFile(z.cfg.File+".lock", os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	if err := lockFile(lock); err != nil {
		lock.Close()
		if errors.Is(err, errLocked) {
			return fmt.Errorf("zone %s: %s is %w: another sshdyn serves this zone file", strings.TrimSuffix(z.Origin, "."), lock.Name(), err)
		}
		return err
	}
	dir, base := filepath.Split(z.cfg.File)
	if dir == "" {
		dir = "."
	}
	for _, pattern := range []string{"." + base + ".tmp-*", "." + base + ".jnl.tmp-*"} {
		stale, _ := filepath.Glob(filepath.Join(dir, pattern))
		for _, f := range stale {
			os.Remove(f)
		}
	}
	if err := z.jnl.open(); err != nil {
		lock.Close()
		return err
	}
	z.lock, z.owned = lock, true
	return nil
}

// Compaction defaults: see Config.SyncAfter and Config.JournalLimit.
const (
	defaultSyncAfter    = time.Minute
	minJournalLimit     = 1 << 20
	journalLimitDivisor = 4
)

// scheduleCompaction starts a compaction when the journal has reached
// its limit, or arms the timer that starts one when its oldest diff is
// SyncAfter old. Called with flushMu held.
func (z *Zone) scheduleCompaction() {
	if z.jnl.size-int64(len(journalHeader)) >= z.journalLimit() {
		z.compactSoon()
		return
	}
	if z.timer == nil && z.jnl.entries() {
		after := z.cfg.SyncAfter
		if after <= 0 {
			after = defaultSyncAfter
		}
		z.timer = time.AfterFunc(after, z.compactSoon)
	}
}

func (z *Zone) journalLimit() int64 {
	if z.cfg.JournalLimit > 0 {
		return z.cfg.JournalLimit
	}
	// About a quarter of the zone file: the journal replays in a
	// fraction of the time the file takes to load.
	return max(minJournalLimit, int64(z.cur.Load().names.len())*40/journalLimitDivisor)
}

// retryAfter is how long a failed compaction waits to try again; the
// journal keeps every update meanwhile.
const retryAfter = 10 * time.Second

// compactSoon starts a compaction in the background unless one runs.
// When it is done, the next is scheduled if the journal is over its
// limit again, or the timer armed if it holds anything.
func (z *Zone) compactSoon() {
	if !z.compacting.CompareAndSwap(false, true) {
		return
	}
	go func() {
		start := time.Now()
		serial, err := z.compact()
		if err != nil {
			z.log.Error("zone file write failed; the journal keeps every update", "zone", z.Origin, "file", z.cfg.File, "err", err)
		} else if serial != 0 {
			z.log.Info("zone file written", "zone", z.Origin, "serial", serial, "took", time.Since(start).Round(time.Millisecond))
		}
		z.compacting.Store(false)
		z.flushMu.Lock()
		defer z.flushMu.Unlock()
		switch {
		case z.closing:
		case err != nil:
			if z.timer == nil {
				z.timer = time.AfterFunc(retryAfter, z.compactSoon)
			}
		default:
			z.scheduleCompaction()
		}
	}()
}

// compact writes the zone file with everything the journal holds, then
// drops from the journal what the file now has: the diffs appended while
// the file was written stay. It returns the serial written, 0 if there was
// nothing to write. A crash at any point leaves a zone file and a
// journal that together hold every acknowledged update: the journal is
// only cut once the file that replaces its diffs is on disk.
func (z *Zone) compact() (uint32, error) {
	z.compactMu.Lock()
	defer z.compactMu.Unlock()
	z.flushMu.Lock()
	snap, off := z.cur.Load(), z.jnl.size
	write := z.jnl.entries() && !z.closed
	if write {
		if err := z.own(); err != nil {
			z.flushMu.Unlock()
			return 0, err
		}
	}
	z.flushMu.Unlock()
	if !write {
		return 0, nil
	}
	err := writeZone(z.cfg.File, z.Origin, snap.names)
	z.flushMu.Lock()
	defer z.flushMu.Unlock()
	if err == nil {
		if z.timer != nil {
			z.timer.Stop()
			z.timer = nil
		}
		err = z.jnl.dropBefore(off)
	}
	z.failed = err
	if err != nil {
		return 0, err
	}
	z.written = time.Now()
	return snap.serial, nil
}

// Stats is what a zone reports for monitoring.
type Stats struct {
	Serial       uint32
	Names        int
	JournalBytes int64     // the journal's size, header included
	Written      time.Time // the last write of the zone file from the journal; zero if none since start
	WriteErr     error     // the last such write's error; nil if it worked, or none was tried
	Replayed     int       // changes replayed from the journal at load: not in the zone file then
}

// Stats returns the zone's figures now.
func (z *Zone) Stats() Stats {
	s := z.snapshot()
	z.flushMu.Lock()
	defer z.flushMu.Unlock()
	return Stats{Serial: s.serial, Names: s.names.len(), JournalBytes: z.jnl.size, Written: z.written, WriteErr: z.failed, Replayed: z.replayed}
}

// Close writes the zone file with every update the journal holds, leaves
// the journal empty and closes it. Updates that arrive later fail.
func (z *Zone) Close() error {
	z.flushMu.Lock()
	z.closing = true
	z.flushMu.Unlock()
	serial, err := z.compact() // after a compaction under way, if any
	if err != nil {
		z.log.Error("zone file write at shutdown failed; the journal keeps every update", "zone", z.Origin, "file", z.cfg.File, "err", err)
	} else if serial != 0 {
		z.log.Info("zone file written", "zone", z.Origin, "serial", serial)
	}
	z.flushMu.Lock()
	defer z.flushMu.Unlock()
	z.closed = true
	if z.timer != nil {
		z.timer.Stop()
		z.timer = nil
	}
	err = errors.Join(err, z.jnl.close())
	if z.lock != nil {
		z.lock.Close() // and with it the lock
		z.lock = nil
	}
	return err
}

// writeZone writes the names of t as a zone file next to path, fsyncs it,
// renames it over path and fsyncs the directory: a crash leaves the old
// file or the new one, never a part.
func writeZone(path, origin string, t *tree) (err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, "."+base+".tmp-")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if fi, err := os.Stat(path); err == nil {
		if err := f.Chmod(fi.Mode().Perm()); err != nil {
			return err
		}
	} else if err := f.Chmod(0o644); err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 256<<10)
	fmt.Fprintf(w, "; zone %s, written by sshdyn; edits made while it runs are overwritten\n$ORIGIN %s\n", origin, origin)
	// Owner names relative to $ORIGIN, TTLs by $TTL when they change, no
	// class: the file reads at start as fast as a hand-written one (at
	// 1,000,000 names, 2.0 s against 2.7 s with every field written out).
	ttl := int64(-1)
	t.ascend(func(name string, n node) bool {
		owner := "@"
		if name != origin {
			owner = strings.TrimSuffix(name, "."+origin)
		}
		for _, rr := range nodeRRs(origin, name, n) {
			h := rr.Header()
			line := rr.String()
			head := name + "\t" + strconv.FormatUint(uint64(h.Ttl), 10) + "\tIN\t"
			if rest, ok := strings.CutPrefix(line, head); ok {
				if int64(h.Ttl) != ttl {
					ttl = int64(h.Ttl)
					fmt.Fprintf(w, "$TTL %d\n", ttl)
				}
				line = owner + "\t" + rest
			}
			if line[0] == '$' {
				// An owner such as $TTL.dyn.example.com would read as a
				// directive (audit finding H4): escape it.
				w.WriteByte('\\')
			}
			w.WriteString(line)
			w.WriteByte('\n')
		}
		return true
	})
	if err := w.Flush(); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return err
	}
	return syncDir(dir)
}

// nodeRRs lists name's records: at the apex the SOA first (RFC 5936
// wants it first in a transfer), then by type.
func nodeRRs(origin, name string, n node) []dns.RR {
	var out []dns.RR
	if name == origin {
		out = append(out, n.get(dns.TypeSOA)...)
	}
	for _, s := range n {
		if name == origin && s.t == dns.TypeSOA {
			continue
		}
		out = append(out, s.rrs...)
	}
	return out
}

// parent returns name without its first label, "" for the root.
func parent(name string) string {
	i, end := dns.NextLabel(name, 0)
	if end {
		return ""
	}
	return name[i:]
}

// DefaultUpdateTypes returns the record types updates may change when a
// zone names none: A and AAAA, the addresses sshdyn publishes.
func DefaultUpdateTypes() []uint16 { return []uint16{dns.TypeA, dns.TypeAAAA} }

// Updatable reports why RFC 2136 updates may not be allowed to change
// records of type t, or nil if they may: the SOA and NS records are the
// zone's own, and query and meta types (AXFR, ANY, OPT, TSIG, …) are not
// records at all.
func Updatable(t uint16) error {
	if t == dns.TypeSOA || t == dns.TypeNS || t == dns.TypeDNAME || isMeta(t) {
		return fmt.Errorf("updates of %s records cannot be allowed", typeName(t))
	}
	return nil
}

func typeName(t uint16) string {
	if s, ok := dns.TypeToString[t]; ok {
		return s
	}
	return fmt.Sprintf("TYPE%d", t)
}

// isMeta reports whether t is a query or meta type (RFC 6895 3.1) that
// cannot be stored in a zone.
func isMeta(t uint16) bool {
	switch t {
	case dns.TypeANY, dns.TypeAXFR, dns.TypeIXFR, dns.TypeMAILA, dns.TypeMAILB,
		dns.TypeOPT, dns.TypeTSIG, dns.TypeTKEY, dns.TypeNone:
		return true
	}
	return false
}
