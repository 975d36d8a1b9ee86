// Package zone is sshdyn's embedded authoritative primary. It serves zones
// loaded from standard zone files over UDP and TCP, applies TSIG-signed
// RFC 2136 updates atomically and durably (the zone file is rewritten and
// fsynced before an update is acknowledged), and hands the zone to real
// secondaries with AXFR and NOTIFY.
//
// sshdyn's updater talks to it over RFC 2136 exactly as to BIND or Knot.
package zone

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/miekg/dns"

	"github.com/sshdyn/sshdyn/dnsname"
)

// Config describes one zone served by the embedded primary.
type Config struct {
	Origin string // the zone's name, e.g. "dyn.example.com"
	File   string // zone file: read at start, rewritten on every change

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
}

// node holds the RRsets of one owner name, by type. A node is never
// modified once it is in a map that readers or the writer may share:
// changes build a new node.
type node map[uint16][]dns.RR

// snapshot is a published, immutable state of the zone: what is on disk
// and what queries see.
type snapshot struct {
	origin string
	names  map[string]node
	order  []string        // names' keys in canonical order, apex first
	ents   map[string]bool // empty non-terminals: names with descendants but no records
	cuts   map[string]bool // names below the apex that hold NS records (delegations)
	serial uint32
}

// Zone is one zone of the embedded primary.
type Zone struct {
	Origin string // canonical: lower case, fully qualified
	cfg    Config
	types  map[uint16]bool
	keys   map[string]bool // update keys, canonical names
	xfrKey map[string]bool

	cur atomic.Pointer[snapshot] // on disk, served

	mu        sync.Mutex      // guards pending, persisted, batch and dirty
	pending   map[string]node // the latest state, written or not; the writer's own map
	persisted map[string]node
	batch     *batch
	dirty     map[string]bool // names changed since the last write began

	flushMu sync.Mutex        // one zone-file write at a time; guards order and text
	order   []string          // persisted's names in canonical order, apex first; never changed in place
	text    map[string]string // each name's lines in the zone file, kept from write to write

	// changed is called, without locks held, after a change is on disk.
	changed func()
}

// batch is the set of updates applied to pending since the last write;
// one write makes them all durable (group commit). done and err are set
// under flushMu.
type batch struct {
	n    int
	done bool
	err  error
}

// Load reads cfg.File and returns the zone, ready to serve.
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
	names, err := parse(f, origin, cfg.File)
	if err != nil {
		return nil, err
	}
	z := &Zone{
		Origin:    origin,
		cfg:       cfg,
		types:     map[uint16]bool{},
		keys:      map[string]bool{},
		xfrKey:    map[string]bool{},
		pending:   maps.Clone(names),
		persisted: names,
		batch:     &batch{},
		dirty:     map[string]bool{},
		order:     canonicalOrder(origin, names),
		text:      renderAll(origin, names),
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
	z.cur.Store(newSnapshot(origin, names, z.order))
	return z, nil
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

func (z *Zone) snapshot() *snapshot { return z.cur.Load() }

// Targets returns the names inside the zone that its NS, MX and SRV
// records point at (canonical, no trailing dot), each with the record
// that names it: an update key must not own one, or it could move the
// zone's name server or mail.
func (z *Zone) Targets() map[string]string {
	out := map[string]string{}
	for name, n := range z.snapshot().names {
		for _, set := range n {
			for _, rr := range set {
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
	}
	return out
}

// parse reads a zone file for origin and checks what the server relies
// on: one SOA and at least one NS at the apex, class IN, every name in
// the zone, CNAME alone at its name. Wildcards and DNAME are refused: the
// server does not synthesize answers from them.
func parse(r io.Reader, origin, file string) (map[string]node, error) {
	zp := dns.NewZoneParser(r, origin, file)
	zp.SetIncludeAllowed(false)
	names := map[string]node{}
	bad := func(name, format string, args ...any) error {
		return fmt.Errorf("%s: %s: %s", file, strings.TrimSuffix(name, "."), fmt.Sprintf(format, args...))
	}
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		h := rr.Header()
		h.Name = dnsname.FQDN(h.Name)
		switch {
		case h.Class != dns.ClassINET:
			return nil, bad(h.Name, "class %s: only IN is served", dns.ClassToString[h.Class])
		case !dnsname.InZone(h.Name, origin):
			return nil, bad(h.Name, "not in zone %s", strings.TrimSuffix(origin, "."))
		}
		if err := servable(h.Name, h.Rrtype, origin); err != nil {
			return nil, bad(h.Name, "%v", err)
		}
		n := names[h.Name]
		if n == nil {
			n = node{}
			names[h.Name] = n
		}
		if h.Rrtype == dns.TypeSOA && len(n[dns.TypeSOA]) > 0 {
			return nil, bad(h.Name, "more than one SOA")
		}
		n[h.Rrtype] = addRR(n[h.Rrtype], rr)
	}
	if err := zp.Err(); err != nil {
		return nil, err
	}
	apex := names[origin]
	if len(apex[dns.TypeSOA]) != 1 {
		return nil, fmt.Errorf("%s: no SOA record at the apex %s", file, origin)
	}
	if len(apex[dns.TypeNS]) == 0 {
		return nil, fmt.Errorf("%s: no NS record at the apex %s", file, origin)
	}
	for name, n := range names {
		if len(n[dns.TypeCNAME]) > 0 && len(n) > 1 {
			return nil, bad(name, "CNAME and other data")
		}
		if len(n[dns.TypeCNAME]) > 1 {
			return nil, bad(name, "more than one CNAME")
		}
	}
	return names, nil
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

func newSnapshot(origin string, names map[string]node, order []string) *snapshot {
	s := &snapshot{origin: origin, names: names, order: order, ents: map[string]bool{}, cuts: map[string]bool{}}
	s.serial = names[origin][dns.TypeSOA][0].(*dns.SOA).Serial
	for name, n := range names {
		if name != origin && len(n[dns.TypeNS]) > 0 {
			s.cuts[name] = true
		}
		for p := parent(name); p != "" && p != origin && dnsname.InZone(p, origin); p = parent(p) {
			if _, ok := names[p]; !ok {
				s.ents[p] = true
			}
		}
	}
	return s
}

// next returns the snapshot after s for names, whose names in dirty are
// the only ones that may differ from s's: only their delegation points
// and empty non-terminals (theirs and their ancestors') are looked at
// again, so the cost follows the change, not the zone.
func (s *snapshot) next(names map[string]node, order []string, dirty map[string]bool) *snapshot {
	n := &snapshot{origin: s.origin, names: names, order: order, ents: maps.Clone(s.ents), cuts: maps.Clone(s.cuts)}
	n.serial = names[s.origin][dns.TypeSOA][0].(*dns.SOA).Serial
	cmp := orderFunc(s.origin)
	for name := range dirty {
		if node, ok := names[name]; ok && name != s.origin && len(node[dns.TypeNS]) > 0 {
			n.cuts[name] = true
		} else {
			delete(n.cuts, name)
		}
		for p := name; p != "" && p != s.origin && dnsname.InZone(p, s.origin); p = parent(p) {
			if _, ok := names[p]; ok {
				delete(n.ents, p)
				continue
			}
			// p's descendants, if any, come right where p would be.
			if i, _ := slices.BinarySearchFunc(order, p, cmp); i < len(order) && strings.HasSuffix(order[i], "."+p) {
				n.ents[p] = true
			} else {
				delete(n.ents, p)
			}
		}
	}
	return n
}

// commit makes the updates of b durable: the first caller writes the
// zone file with every update applied so far, later callers find their
// batch already written. It returns the write's error.
func (z *Zone) commit(b *batch) error {
	z.flushMu.Lock()
	defer z.flushMu.Unlock()
	if b.done {
		return b.err
	}
	z.mu.Lock()
	names := maps.Clone(z.pending)
	cur := z.batch
	z.batch = &batch{}
	dirty := z.dirty
	z.dirty = map[string]bool{}
	z.mu.Unlock()

	order := reorder(z.Origin, z.order, names, dirty)
	for name := range dirty {
		if n, ok := names[name]; ok {
			z.text[name] = nodeText(z.Origin, name, n)
		} else {
			delete(z.text, name)
		}
	}
	err := writeZone(z.cfg.File, z.Origin, order, z.text)
	if err == nil {
		z.order = order
	}
	z.mu.Lock()
	if err != nil {
		// Nothing of cur is on disk, and the updates applied since (in
		// z.batch) were checked against cur's state: fail them all. The
		// names of cur render as persisted has them on the next write.
		for name := range dirty {
			z.dirty[name] = true
		}
		z.pending = maps.Clone(z.persisted)
		z.batch.done, z.batch.err = true, err
		z.batch = &batch{}
	} else {
		z.persisted = names
		z.cur.Store(z.cur.Load().next(names, order, dirty))
	}
	z.mu.Unlock()
	cur.done, cur.err = true, err
	if err == nil && z.changed != nil {
		z.changed()
	}
	return err
}

// writeZone writes names as a zone file next to path, fsyncs it, renames
// it over path and fsyncs the directory: a crash leaves the old file or
// the new one, never a part.
func writeZone(path, origin string, order []string, text map[string]string) (err error) {
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
	w := bufio.NewWriterSize(f, 64<<10)
	fmt.Fprintf(w, "; zone %s, written by sshdyn; edits are overwritten on the next update\n", origin)
	for _, name := range order {
		w.WriteString(text[name])
	}
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
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// canonicalOrder returns the names of a zone in canonical order (RFC
// 4034 6.1), the apex first. Sorting is the cost of a large zone: a
// write keeps the order of the last and moves only the names that came
// or went (reorder).
func canonicalOrder(origin string, names map[string]node) []string {
	order := slices.Collect(maps.Keys(names))
	slices.SortFunc(order, orderFunc(origin))
	return order
}

// orderFunc compares names in canonical order, origin first.
func orderFunc(origin string) func(a, b string) int {
	return func(a, b string) int {
		switch {
		case a == b:
			return 0
		case a == origin:
			return -1
		case b == origin:
			return 1
		}
		return compareNames(a, b)
	}
}

// reorder returns order (the names of the last write, in canonical
// order) made to hold names: the dirty names that came are inserted, those
// that went are removed. order itself is not changed; with nothing to
// move it is returned as it is.
func reorder(origin string, order []string, names map[string]node, dirty map[string]bool) []string {
	cmp := orderFunc(origin)
	var add, del []string
	for name := range dirty {
		_, exists := names[name]
		_, found := slices.BinarySearchFunc(order, name, cmp)
		switch {
		case exists && !found:
			add = append(add, name)
		case !exists && found:
			del = append(del, name)
		}
	}
	if len(add) == 0 && len(del) == 0 {
		return order
	}
	out := slices.Clone(order)
	for _, name := range del {
		if i, found := slices.BinarySearchFunc(out, name, cmp); found {
			out = slices.Delete(out, i, i+1)
		}
	}
	for _, name := range add {
		i, _ := slices.BinarySearchFunc(out, name, cmp)
		out = slices.Insert(out, i, name)
	}
	return out
}

// nodeText is name's lines in the zone file (nodeRRs).
func nodeText(origin, name string, n node) string {
	var b strings.Builder
	for _, rr := range nodeRRs(origin, name, n) {
		b.WriteString(rr.String())
		b.WriteByte('\n')
	}
	return b.String()
}

// renderAll is nodeText of every name.
func renderAll(origin string, names map[string]node) map[string]string {
	out := make(map[string]string, len(names))
	for name, n := range names {
		out[name] = nodeText(origin, name, n)
	}
	return out
}

// nodeRRs lists name's records: at the apex the SOA first (RFC 5936
// wants it first in a transfer), then by type.
func nodeRRs(origin, name string, n node) []dns.RR {
	var out []dns.RR
	if name == origin {
		out = append(out, n[dns.TypeSOA]...)
	}
	for _, t := range sortedTypes(n) {
		if name == origin && t == dns.TypeSOA {
			continue
		}
		out = append(out, n[t]...)
	}
	return out
}

// compareNames orders names by their labels from the right (RFC 4034 6.1,
// names being lower case already), without allocating: it is most of the
// cost of writing a large zone.
func compareNames(a, b string) int {
	if strings.IndexByte(a, '\\') >= 0 || strings.IndexByte(b, '\\') >= 0 {
		return compareSplit(a, b) // an escaped dot is not a label boundary
	}
	a, b = strings.TrimSuffix(a, "."), strings.TrimSuffix(b, ".")
	for {
		ia, ib := strings.LastIndexByte(a, '.'), strings.LastIndexByte(b, '.')
		if c := strings.Compare(a[ia+1:], b[ib+1:]); c != 0 {
			return c
		}
		switch {
		case ia < 0 && ib < 0:
			return 0
		case ia < 0:
			return -1
		case ib < 0:
			return 1
		}
		a, b = a[:ia], b[:ib]
	}
}

// compareSplit is compareNames for names with escapes.
func compareSplit(a, b string) int {
	la, lb := dns.SplitDomainName(a), dns.SplitDomainName(b)
	for i, j := len(la)-1, len(lb)-1; i >= 0 && j >= 0; i, j = i-1, j-1 {
		if c := strings.Compare(la[i], lb[j]); c != 0 {
			return c
		}
	}
	return len(la) - len(lb)
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
