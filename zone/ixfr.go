package zone

import (
	"maps"
	"slices"
	"strings"

	"github.com/miekg/dns"
)

// History: the diffs that led to a snapshot, oldest first, kept in memory
// for IXFR (RFC 1995). It reaches back to the zone file's serial at start
// (the journal's diffs), then as far as historyLimit allows.

// historyLimit is how many records of diffs a zone of size names keeps:
// about as many as the zone holds (past that a full transfer is as
// cheap), at least 4,096 and at most 262,144 (some 25 MiB).
func historyLimit(names int) int { return min(max(names, 4096), 1<<18) }

// trimHistory appends add to h, which holds records records of diffs, and
// drops the oldest diffs until at most limit records are left. It returns
// the new history and its records. h's array is shared with older
// snapshots, which only ever read their own part of it, so no element
// is changed in place.
func trimHistory(h []*diff, records int, add []*diff, limit int) ([]*diff, int) {
	for _, d := range add {
		records += d.size()
	}
	h = append(h, add...)
	i := 0
	for ; i < len(h) && records > limit; i++ {
		records -= h[i].size()
	}
	return h[i:], records
}

// since returns the diffs that lead from serial to s, nil with false if
// the history does not reach back that far.
func (s *snapshot) since(serial uint32) ([]*diff, bool) {
	for i, d := range s.history {
		if d.from.Serial == serial {
			return s.history[i:], true
		}
	}
	return nil, false
}

// condense turns a run of diffs into one: the records deleted and added
// between the first one's from and the last one's to. A record added and
// deleted again within the run (or the other way round) is in neither.
// Each list is in canonical order (the tree's keys), then by type and text.
func condense(diffs []*diff) (del, add []dns.RR) {
	type change struct {
		key, text string // the owner's nameKey; the record's text: name, TTL, class, type, data
		rr        dns.RR
		n         int // -1 deleted, +1 added, 0 neither
	}
	net := map[string]*change{}
	count := func(rr dns.RR, by int) {
		text := rr.String()
		c := net[text]
		if c == nil {
			c = &change{key: nameKey(rr.Header().Name), text: text, rr: rr}
			net[text] = c
		}
		c.n += by
	}
	for _, d := range diffs {
		for _, rr := range d.del {
			count(rr, -1)
		}
		for _, rr := range d.add {
			count(rr, +1)
		}
	}
	changes := slices.SortedFunc(maps.Values(net), func(a, b *change) int {
		if c := strings.Compare(a.key, b.key); c != 0 {
			return c
		}
		if ta, tb := a.rr.Header().Rrtype, b.rr.Header().Rrtype; ta != tb {
			return int(ta) - int(tb)
		}
		return strings.Compare(a.text, b.text)
	})
	for _, c := range changes {
		switch {
		case c.n < 0:
			del = append(del, c.rr)
		case c.n > 0:
			add = append(add, c.rr)
		}
	}
	return del, add
}

// ixfr returns the records of an incremental transfer from serial to s
// (RFC 1995 4): s's SOA, the SOA of serial, what was deleted since, s's
// SOA, what was added, s's SOA again; condensed into one difference. It
// returns false if the history does not reach back to serial.
func (s *snapshot) ixfr(serial uint32) ([]dns.RR, bool) {
	diffs, ok := s.since(serial)
	if !ok {
		return nil, false
	}
	del, add := condense(diffs)
	soa := s.soa()
	out := make([]dns.RR, 0, 4+len(del)+len(add))
	out = append(out, soa, diffs[0].from)
	out = append(out, del...)
	out = append(out, soa)
	out = append(out, add...)
	return append(out, soa), true
}
