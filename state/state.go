// Package state is the operator's store: what happened to every host,
// per address family — each update's outcome (history), and each host
// family's state (last good or nochg, last change, last failure, stale
// or not). It is what the operator's views read (sshdyn hosts, history,
// the admin page) and what staleness is judged from.
//
// DNS holds the records; the store holds what happened. Nothing reads
// the store to decide an update, and a store that is slow or down never
// slows or fails one: the core hands events to a Recorder, whose bounded
// queue a writer drains in the background, counting what it drops.
//
// The store is SQLite (a file beside the zone data, the default) or
// PostgreSQL (when several frontends share one zone, so that all of
// them see one history): one schema, through database/sql, migrated at
// open.
package state

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // "pgx"
	_ "modernc.org/sqlite"             // "sqlite"
)

// Event is one host family's outcome of one update.
type Event struct {
	Time     time.Time
	Host     string // canonical
	Family   string // "A" or "AAAA"
	Zone     string
	Front    string     // "ssh", "http"
	Identity string     // the key's fingerprint, the certificate's id, or the HTTP user
	Source   netip.Addr // where the client connected from
	Addr     netip.Addr // the address written or confirmed; none: the records were removed (offline)
	Old      []netip.Addr
	Outcome  string // the core's kind: good, nochg, rate_limited, unreachable, …
}

// OK reports whether the record is right after the update (good, nochg).
func (e Event) OK() bool { return e.Outcome == "good" || e.Outcome == "nochg" }

// Family is a host family's state.
type Family struct {
	Host, Family, Zone string
	LastOK             time.Time // the last good or nochg; zero: never
	LastChange         time.Time // the last good
	Addr               netip.Addr
	LastFailure        time.Time
	FailureKind        string
	Failures           int // failures since the last good or nochg
	Front, Identity    string
	Source             netip.Addr
	LastEvent          time.Time
	Stale              bool
	StaleSince         time.Time
}

// Offline reports whether f's last good or nochg removed its records (a
// host taken offline): it has none on purpose, and is not stale.
func (f Family) Offline() bool { return !f.LastOK.IsZero() && !f.Addr.IsValid() }

// Store is a state database.
type Store struct {
	db      *sql.DB
	postgre bool
	name    string // for errors: the file, or the PostgreSQL URL without its password

	mu       sync.Mutex
	migrated bool // the schema is up to date
	// Record's statements by kind and rows, each prepared once (SQLite
	// parses a statement at some cost; PostgreSQL saves a round trip
	// per row with many rows to a statement). Guarded by mu.
	stmts map[stmtKey]*sql.Stmt
}

// ErrUnreachable wraps the error of an Open that could not reach a
// PostgreSQL server: the Store it returns works once the server is back
// (its schema is brought up to date at its first use then).
var ErrUnreachable = errors.New("state store unreachable")

// IsPostgres reports whether dsn names a PostgreSQL database.
func IsPostgres(dsn string) bool {
	return strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://")
}

// Open opens the store dsn names: a postgres:// URL, or the path of a
// SQLite file (made if missing; its directory must exist), and brings
// its schema up to date.
func Open(ctx context.Context, dsn string) (*Store, error) {
	s := &Store{postgre: IsPostgres(dsn), name: redact(dsn)}
	var err error
	if s.postgre {
		s.db, err = sql.Open("pgx", dsn)
	} else {
		if fi, serr := os.Stat(filepath.Dir(dsn)); serr != nil || !fi.IsDir() {
			return nil, fmt.Errorf("state_db %s: the directory %s does not exist", dsn, filepath.Dir(dsn))
		}
		if err := writable(filepath.Dir(dsn), dsn); err != nil {
			return nil, fmt.Errorf("state_db %s: %w", dsn, err)
		}
		// One writer at a time (SQLite's own rule), and a reader that
		// waits for it instead of failing.
		s.db, err = sql.Open("sqlite", "file:"+dsn+"?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)")
		if err == nil {
			s.db.SetMaxOpenConns(1)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("state_db %s: %w", s.name, err)
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := s.ready(ctx); err != nil {
		if s.postgre {
			// A server that is down must not keep sshdyn from starting:
			// the store catches up when it is back.
			return s, fmt.Errorf("%w: state_db %s: %v", ErrUnreachable, s.name, err)
		}
		s.db.Close()
		return nil, fmt.Errorf("state_db %s: %w", s.name, err)
	}
	return s, nil
}

// ready brings the schema up to date, once.
func (s *Store) ready(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.migrated {
		return nil
	}
	if err := s.migrate(ctx); err != nil {
		return err
	}
	s.migrated = true
	return nil
}

// stmtKey names one of Record's statements: the events insert or the
// families upsert, for a number of rows.
type stmtKey struct {
	upsert bool
	rows   int
}

// rowsPerStatement bounds the rows one statement writes: 64 × 13
// parameters is far below either database's limit.
const rowsPerStatement = 64

// stmt returns Record's statement for k, prepared on first use.
func (s *Store) stmt(ctx context.Context, k stmtKey) (*sql.Stmt, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st := s.stmts[k]; st != nil {
		return st, nil
	}
	head, cols, tail := insertEventHead, eventColumns, ""
	if k.upsert {
		head, cols, tail = upsertFamilyHead, familyColumns, upsertFamilyTail
	}
	row := "(" + strings.TrimSuffix(strings.Repeat("?, ", cols), ", ") + ")"
	q := head + strings.TrimSuffix(strings.Repeat(row+", ", k.rows), ", ") + tail
	st, err := s.db.PrepareContext(ctx, s.bind(q))
	if err != nil {
		return nil, err
	}
	if s.stmts == nil {
		s.stmts = map[stmtKey]*sql.Stmt{}
	}
	s.stmts[k] = st
	return st, nil
}

// Record's statements.
const (
	insertEventHead  = `INSERT INTO events (at, host, family, zone, front, identity, source, addr, old, outcome) VALUES `
	eventColumns     = 10
	upsertFamilyHead = `INSERT INTO families (host, family, zone, last_ok, last_change, addr, last_failure, failure_kind, failures, front, identity, source, last_event) VALUES `
	familyColumns    = 13
	upsertFamilyTail = `
		ON CONFLICT (host, family) DO UPDATE SET
			zone = excluded.zone,
			last_ok = CASE WHEN excluded.last_ok > 0 THEN excluded.last_ok ELSE families.last_ok END,
			last_change = CASE WHEN excluded.last_change > 0 THEN excluded.last_change ELSE families.last_change END,
			addr = CASE WHEN excluded.last_ok > 0 THEN excluded.addr ELSE families.addr END,
			last_failure = CASE WHEN excluded.last_failure > 0 THEN excluded.last_failure ELSE families.last_failure END,
			failure_kind = CASE WHEN excluded.last_failure > 0 THEN excluded.failure_kind ELSE families.failure_kind END,
			failures = CASE WHEN excluded.last_ok > 0 THEN excluded.failures ELSE families.failures + excluded.failures END,
			front = excluded.front, identity = excluded.identity, source = excluded.source, last_event = excluded.last_event`
)

// redact returns dsn without a password.
func redact(dsn string) string {
	if i := strings.Index(dsn, "://"); i >= 0 {
		if at := strings.LastIndex(dsn, "@"); at > i {
			if colon := strings.Index(dsn[i+3:at], ":"); colon >= 0 {
				return dsn[:i+3+colon] + ":…" + dsn[at:]
			}
		}
	}
	return dsn
}

// Name returns the store's name for logs (no password).
func (s *Store) Name() string { return s.name }

// Close closes the database.
func (s *Store) Close() error {
	s.mu.Lock()
	for _, st := range s.stmts {
		st.Close()
	}
	s.stmts = nil
	s.mu.Unlock()
	return s.db.Close()
}

// migrations are the schema's versions, each applied once, in order.
// The same SQL serves SQLite and PostgreSQL, but for the one column type
// written {{id}}. Times are Unix microseconds; 0 is "never".
var migrations = []string{
	`CREATE TABLE events (
		id {{id}},
		at BIGINT NOT NULL,
		host TEXT NOT NULL,
		family TEXT NOT NULL,
		zone TEXT NOT NULL,
		front TEXT NOT NULL,
		identity TEXT NOT NULL,
		source TEXT NOT NULL,
		addr TEXT NOT NULL,
		old TEXT NOT NULL,
		outcome TEXT NOT NULL
	);
	CREATE INDEX events_host_at ON events (host, at);
	CREATE INDEX events_at ON events (at);
	CREATE TABLE families (
		host TEXT NOT NULL,
		family TEXT NOT NULL,
		zone TEXT NOT NULL,
		last_ok BIGINT NOT NULL DEFAULT 0,
		last_change BIGINT NOT NULL DEFAULT 0,
		addr TEXT NOT NULL DEFAULT '',
		last_failure BIGINT NOT NULL DEFAULT 0,
		failure_kind TEXT NOT NULL DEFAULT '',
		failures INTEGER NOT NULL DEFAULT 0,
		front TEXT NOT NULL DEFAULT '',
		identity TEXT NOT NULL DEFAULT '',
		source TEXT NOT NULL DEFAULT '',
		last_event BIGINT NOT NULL DEFAULT 0,
		stale INTEGER NOT NULL DEFAULT 0,
		stale_since BIGINT NOT NULL DEFAULT 0,
		PRIMARY KEY (host, family)
	)`,
}

// migrate applies the migrations the database has not had, each in a
// transaction with its version.
func (s *Store) migrate(ctx context.Context) error {
	if _, err := s.db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)`); err != nil {
		return err
	}
	var v int
	if err := s.db.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_version`).Scan(&v); err != nil {
		return err
	}
	if v > len(migrations) {
		return fmt.Errorf("schema version %d is newer than this sshdyn knows (%d): a newer sshdyn wrote it", v, len(migrations))
	}
	id := "INTEGER PRIMARY KEY AUTOINCREMENT"
	if s.postgre {
		id = "BIGSERIAL PRIMARY KEY"
	}
	for i := v; i < len(migrations); i++ {
		tx, err := s.db.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		for _, stmt := range strings.Split(strings.ReplaceAll(migrations[i], "{{id}}", id), ";") {
			if strings.TrimSpace(stmt) == "" {
				continue
			}
			if _, err := tx.ExecContext(ctx, stmt); err != nil {
				tx.Rollback()
				return fmt.Errorf("migration %d: %w", i+1, err)
			}
		}
		if _, err := tx.ExecContext(ctx, s.bind(`INSERT INTO schema_version (version) VALUES (?)`), i+1); err != nil {
			tx.Rollback()
			return err
		}
		if err := tx.Commit(); err != nil {
			return err
		}
	}
	return nil
}

// bind writes a query's ? placeholders as the driver wants them.
func (s *Store) bind(q string) string {
	if !s.postgre {
		return q
	}
	var b strings.Builder
	n := 0
	for _, r := range q {
		if r == '?' {
			n++
			fmt.Fprintf(&b, "$%d", n)
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

func micros(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMicro()
}

func fromMicros(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.UnixMicro(n)
}

func addrString(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}

func addrList(as []netip.Addr) string {
	s := make([]string, len(as))
	for i, a := range as {
		s[i] = a.String()
	}
	return strings.Join(s, ",")
}

// Record writes events, in one transaction: each to the history, and to
// its host family's state (one write per family and call: the events of
// one family are summed up first, in order).
func (s *Store) Record(ctx context.Context, events []Event) error {
	if err := s.ready(ctx); err != nil {
		return err
	}
	type sum struct {
		e                   Event // the last event
		ok, change, failure int64
		addr, kind          string
		failures            int // since the last OK in events (all of them if none)
	}
	sums := map[[2]string]*sum{}
	var order [][2]string
	rows := make([][]any, 0, len(events))
	for _, e := range events {
		at := micros(e.Time)
		rows = append(rows, []any{at, e.Host, e.Family, e.Zone, e.Front, e.Identity, addrString(e.Source), addrString(e.Addr), addrList(e.Old), e.Outcome})
		k := [2]string{e.Host, e.Family}
		f := sums[k]
		if f == nil {
			f = &sum{}
			sums[k] = f
			order = append(order, k)
		}
		f.e = e
		if e.OK() {
			f.ok, f.addr, f.failures = at, addrString(e.Addr), 0
			if e.Outcome == "good" {
				f.change = at
			}
		} else {
			f.failure, f.kind = at, e.Outcome
			f.failures++
		}
	}
	fams := make([][]any, 0, len(order))
	for _, k := range order {
		f := sums[k]
		e := f.e
		fams = append(fams, []any{e.Host, e.Family, e.Zone, f.ok, f.change, f.addr, f.failure, f.kind, f.failures, e.Front, e.Identity, addrString(e.Source), micros(e.Time)})
	}
	// The statements are prepared before the transaction takes a
	// connection (SQLite has one).
	evStmts, err := s.stmtsFor(ctx, false, len(rows))
	if err != nil {
		return err
	}
	famStmts, err := s.stmtsFor(ctx, true, len(fams))
	if err != nil {
		return err
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := writeRows(ctx, tx, evStmts, rows); err != nil {
		return err
	}
	if err := writeRows(ctx, tx, famStmts, fams); err != nil {
		return err
	}
	return tx.Commit()
}

// stmtsFor returns the statements that write n rows, up to
// rowsPerStatement each, in order.
func (s *Store) stmtsFor(ctx context.Context, upsert bool, n int) ([]*sql.Stmt, error) {
	var out []*sql.Stmt
	for n > 0 {
		k := stmtKey{upsert, min(n, rowsPerStatement)}
		st, err := s.stmt(ctx, k)
		if err != nil {
			return nil, err
		}
		out = append(out, st)
		n -= k.rows
	}
	return out, nil
}

// writeRows writes rows in tx with stmts (from stmtsFor).
func writeRows(ctx context.Context, tx *sql.Tx, stmts []*sql.Stmt, rows [][]any) error {
	for _, st := range stmts {
		n := min(len(rows), rowsPerStatement)
		var args []any
		for _, r := range rows[:n] {
			args = append(args, r...)
		}
		txst := tx.StmtContext(ctx, st)
		_, err := txst.ExecContext(ctx, args...)
		txst.Close()
		if err != nil {
			return err
		}
		rows = rows[n:]
	}
	return nil
}

// Families returns the state of every host family, or of hosts', sorted
// by host and family.
func (s *Store) Families(ctx context.Context, hosts ...string) ([]Family, error) {
	if err := s.ready(ctx); err != nil {
		return nil, err
	}
	q := `SELECT host, family, zone, last_ok, last_change, addr, last_failure, failure_kind, failures, front, identity, source, last_event, stale, stale_since FROM families`
	var args []any
	if len(hosts) > 0 {
		q += " WHERE host IN (" + strings.TrimSuffix(strings.Repeat("?, ", len(hosts)), ", ") + ")"
		for _, h := range hosts {
			args = append(args, h)
		}
	}
	rows, err := s.db.QueryContext(ctx, s.bind(q+" ORDER BY host, family"), args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Family
	for rows.Next() {
		var f Family
		var ok, change, failure, last, since, stale int64
		var addr, source string
		if err := rows.Scan(&f.Host, &f.Family, &f.Zone, &ok, &change, &addr, &failure, &f.FailureKind, &f.Failures, &f.Front, &f.Identity, &source, &last, &stale, &since); err != nil {
			return nil, err
		}
		f.LastOK, f.LastChange, f.LastFailure, f.LastEvent, f.StaleSince = fromMicros(ok), fromMicros(change), fromMicros(failure), fromMicros(last), fromMicros(since)
		f.Addr, _ = netip.ParseAddr(addr)
		f.Source, _ = netip.ParseAddr(source)
		f.Stale = stale != 0
		out = append(out, f)
	}
	return out, rows.Err()
}

// History returns host's events since since (all if zero), newest
// first, at most limit (all if 0).
func (s *Store) History(ctx context.Context, host string, since time.Time, limit int) ([]Event, error) {
	if err := s.ready(ctx); err != nil {
		return nil, err
	}
	q := `SELECT at, host, family, zone, front, identity, source, addr, old, outcome FROM events WHERE host = ? AND at >= ? ORDER BY at DESC, id DESC`
	args := []any{host, micros(since)}
	if limit > 0 {
		q += " LIMIT ?"
		args = append(args, limit)
	}
	rows, err := s.db.QueryContext(ctx, s.bind(q), args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	return scanEvents(rows)
}

// Latest returns the hosts' last limit events, newest first.
func (s *Store) Latest(ctx context.Context, hosts []string, limit int) ([]Event, error) {
	if len(hosts) == 0 {
		return nil, nil
	}
	if err := s.ready(ctx); err != nil {
		return nil, err
	}
	q := `SELECT at, host, family, zone, front, identity, source, addr, old, outcome FROM events WHERE host IN (` +
		strings.TrimSuffix(strings.Repeat("?, ", len(hosts)), ", ") + `) ORDER BY at DESC, id DESC LIMIT ?`
	args := make([]any, 0, len(hosts)+1)
	for _, h := range hosts {
		args = append(args, h)
	}
	rows, err := s.db.QueryContext(ctx, s.bind(q), append(args, limit)...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	return scanEvents(rows)
}

// scanEvents reads events from rows of the events table's columns.
func scanEvents(rows *sql.Rows) ([]Event, error) {
	var out []Event
	for rows.Next() {
		var e Event
		var at int64
		var source, addr, old string
		if err := rows.Scan(&at, &e.Host, &e.Family, &e.Zone, &e.Front, &e.Identity, &source, &addr, &old, &e.Outcome); err != nil {
			return nil, err
		}
		e.Time = fromMicros(at)
		e.Source, _ = netip.ParseAddr(source)
		e.Addr, _ = netip.ParseAddr(addr)
		for _, o := range strings.Split(old, ",") {
			if a, err := netip.ParseAddr(o); err == nil {
				e.Old = append(e.Old, a)
			}
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// MarkStale records that host's family went stale at at (stale) or
// recovered. It reports whether this call changed the flag: of several
// frontends on one store, one does, and that one notifies.
func (s *Store) MarkStale(ctx context.Context, host, family string, stale bool, at time.Time) (bool, error) {
	var res sql.Result
	var err error
	if stale {
		res, err = s.db.ExecContext(ctx, s.bind(`UPDATE families SET stale = 1, stale_since = ? WHERE host = ? AND family = ? AND stale = 0`), micros(at), host, family)
	} else {
		res, err = s.db.ExecContext(ctx, s.bind(`UPDATE families SET stale = 0, stale_since = 0 WHERE host = ? AND family = ? AND stale = 1`), host, family)
	}
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// Prune deletes the events older than before, and of each host all but
// its newest perHost (none if perHost is 0), and returns how many it
// deleted.
func (s *Store) Prune(ctx context.Context, before time.Time, perHost int) (int64, error) {
	if err := s.ready(ctx); err != nil {
		return 0, err
	}
	var total int64
	res, err := s.db.ExecContext(ctx, s.bind(`DELETE FROM events WHERE at < ?`), micros(before))
	if err != nil {
		return 0, err
	}
	n, _ := res.RowsAffected()
	total += n
	if perHost > 0 {
		res, err = s.db.ExecContext(ctx, s.bind(`DELETE FROM events WHERE id IN (
			SELECT id FROM (SELECT id, ROW_NUMBER() OVER (PARTITION BY host ORDER BY at DESC, id DESC) AS n FROM events) ranked WHERE n > ?)`), perHost)
		if err != nil {
			return total, err
		}
		n, _ = res.RowsAffected()
		total += n
	}
	return total, nil
}

// ErrClosed is returned by a Recorder's store calls after Close.
var ErrClosed = errors.New("state store closed")
