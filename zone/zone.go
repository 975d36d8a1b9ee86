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
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"slices"
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

	// DNSSEC, if set, signs the zone: see Sign.
	DNSSEC *DNSSEC

	// RRLRate, if set, is the zone's own rate for response rate
	// limiting (see RRL): answers per second per client network and
	// kind; 0 turns it off for the zone.
	RRLRate *int
}

// snapshot is a published, immutable state of the zone: durable (its
// last change is in the journal) and what queries and transfers see.
type snapshot struct {
	origin  string
	names   *tree
	serial  uint32
	cuts    int       // names below the apex that hold NS records (delegations)
	history []*diff   // the changes that led here, oldest first, for IXFR
	fast    fastCache // answers rendered for the fast path
	signed  bool      // DNSSEC: answers to DO queries carry signatures and proofs
	nsec3   bool      // the proofs are NSEC3 records
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

	// Locks, always taken in this order, never the other way:
	// compactMu, then flushMu, then mu. A reader takes none (it loads
	// cur). An update (modify) takes mu to apply its change to pending,
	// lets go, and takes flushMu to write its batch (commit), which takes
	// mu again, briefly, to swap the batch and publish the snapshot. A
	// zone-file write (compact) takes compactMu, then flushMu to cut the
	// journal.
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
	fileBytes  atomic.Int64 // the zone file's size, as loaded or last written

	// changed is called after a change is durable.
	changed func()

	// signer signs the zone (DNSSEC), nil if it is not signed, or has no
	// key yet (Sign makes one). Read and set with mu held.
	signer *signer
	// maintaining is the signature refresh's goroutine (Sign starts it,
	// Close stops it).
	stopMaintain chan struct{}
	maintained   sync.WaitGroup
	nextExpiry   atomic.Int64 // Unix time of the soonest signature expiry, as the last pass found it
}

// batch is the updates applied to pending since the last journal write,
// each a diff; one write makes them all durable (group commit). done and
// err are set under flushMu.
type batch struct {
	diffs []*diff
	done  bool
	err   error
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

// servable reports why a record of type t at name, a name inside origin,
// cannot be in a zone this server loads. The loader and the update path
// both ask it, so an acknowledged update never leaves a zone file that
// does not load.
func servable(name string, t uint16, origin string) error {
	switch {
	case wildcardOwner(name) && (t == dns.TypeNS || t == dns.TypeDS):
		return fmt.Errorf("a wildcard cannot hold %s records (RFC 4592 4.2: it would be a delegation for every name)", typeName(t))
	case t == dns.TypeDNAME:
		return errors.New("DNAME is not supported")
	case t == dns.TypeSOA && name != origin:
		return errors.New("SOA below the apex")
	case isMeta(t):
		return fmt.Errorf("type %s cannot be in a zone", typeName(t))
	}
	return nil
}

// wildcardOwner reports whether name is a wildcard's owner: its first
// label "*" (RFC 4592 2.1.1; an asterisk elsewhere is an ordinary
// character).
func wildcardOwner(name string) bool {
	return name == "*" || strings.HasPrefix(name, "*.")
}

// coexist reports why the records of one name cannot be served together
// (a CNAME is alone at its name, and there is one: RFC 2181 10.1). The
// loader and the journal's replay both ask it; the update path keeps the
// same rule as it applies each record (RFC 2136 3.4.2.2).
func coexist(n node) error {
	others := 0
	for _, s := range n {
		if s.t != dns.TypeCNAME && !chainType(s.t) {
			others++
		}
	}
	switch cnames := len(n.get(dns.TypeCNAME)); {
	case cnames > 0 && others > 0:
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
	sigs := rr.Header().Rrtype == dns.TypeRRSIG // signatures of RRsets of different TTLs
	for _, old := range set {
		if dns.IsDuplicate(old, rr) {
			continue
		}
		if old.Header().Ttl != ttl && !sigs {
			old = dns.Copy(old)
			old.Header().Ttl = ttl
		}
		out = append(out, old)
	}
	return append(out, rr)
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
	if t == dns.TypeSOA || t == dns.TypeNS || t == dns.TypeDNAME || isMeta(t) || dnssecType(t) {
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
