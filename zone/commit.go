package zone

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

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
		z.cur.Store(&snapshot{origin: z.Origin, names: state, serial: state.soa().Serial, cuts: cuts, history: h, historyRecords: records, signed: z.cfg.DNSSEC != nil, nsec3: z.cfg.DNSSEC != nil && z.cfg.DNSSEC.NSEC3})
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
	// fraction of the time the file takes to load, and the file is
	// written again after changes of a quarter of its size (a signed
	// zone's file, with its signatures and chain, is several times an
	// unsigned one's with as many names: counting names alone rewrote
	// it about every two batches of a first signing).
	return max(minJournalLimit, max(int64(z.cur.Load().names.len())*40, z.fileBytes.Load())/journalLimitDivisor)
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
	if fi, err := os.Stat(z.cfg.File); err == nil {
		z.fileBytes.Store(fi.Size())
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
	// Signed zones: the keys that sign, and when the soonest signature
	// expires, as the last signing pass found it (zero before one).
	Keys       int
	NextExpiry time.Time
}

// Stats returns the zone's figures now.
func (z *Zone) Stats() Stats {
	s := z.snapshot()
	z.mu.Lock()
	keys := 0
	if z.signer != nil {
		keys = len(z.signer.keys)
	}
	z.mu.Unlock()
	var next time.Time
	if n := z.nextExpiry.Load(); n > 0 {
		next = time.Unix(n, 0)
	}
	z.flushMu.Lock()
	defer z.flushMu.Unlock()
	return Stats{Serial: s.serial, Names: s.names.len(), JournalBytes: z.jnl.size, Written: z.written, WriteErr: z.failed, Replayed: z.replayed,
		Keys: keys, NextExpiry: next}
}

// Close writes the zone file with every update the journal holds, leaves
// the journal empty and closes it. Updates that arrive later fail.
func (z *Zone) Close() error {
	z.stopSigning()
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
