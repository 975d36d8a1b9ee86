package dnstest

import (
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// Postgres is a PostgreSQL primary and a streaming replica of it
// (pg_basebackup -R), on loopback, with the database "pdns" holding
// PowerDNS's gpgsql schema; user postgres, trust authentication.
type Postgres struct {
	Primary, Replica int // ports on 127.0.0.1
	Dir              string
}

// pgBin is the directory of Debian's PostgreSQL programs.
func pgBin() (string, error) {
	m, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	if len(m) == 0 {
		return "", fmt.Errorf("PostgreSQL not found: install postgresql (scripts/test.sh does)")
	}
	return filepath.Dir(m[len(m)-1]), nil
}

// StartPostgres starts the pair, and stops it when the test ends. As
// root, the servers run as the postgres user (PostgreSQL refuses root).
func StartPostgres(t testing.TB) *Postgres {
	t.Helper()
	bin, err := pgBin()
	if err != nil {
		t.Fatal(err)
	}
	schema := "/usr/share/pdns-backend-pgsql/schema/schema.pgsql.sql"
	if _, err := os.Stat(schema); err != nil {
		t.Fatal("PowerDNS's gpgsql schema not found: install pdns-backend-pgsql (scripts/test.sh does)")
	}
	dir := postgresDir(t, "dnstest-pgsql-")
	asPostgres := asPostgresUser
	run := func(name string, args ...string) {
		t.Helper()
		if out, err := asPostgres(filepath.Join(bin, name), args...).CombinedOutput(); err != nil {
			t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
		}
	}
	p := &Postgres{Dir: dir}
	if p.Primary, err = FreePort(); err != nil {
		t.Fatal(err)
	}
	if p.Replica, err = FreePort(); err != nil {
		t.Fatal(err)
	}
	primary, replica := filepath.Join(dir, "primary"), filepath.Join(dir, "replica")
	run("initdb", "-D", primary, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")
	conf := fmt.Sprintf("\nlisten_addresses = '127.0.0.1'\nport = %d\nunix_socket_directories = '%s'\nwal_level = replica\nmax_wal_senders = 4\nhot_standby = on\nfsync = off\n", p.Primary, dir)
	AppendFile(t, filepath.Join(primary, "postgresql.conf"), conf)
	stop := func(data string) {
		asPostgres(filepath.Join(bin, "pg_ctl"), "-D", data, "-m", "immediate", "stop").Run()
	}
	run("pg_ctl", "-D", primary, "-l", filepath.Join(dir, "primary.log"), "-w", "start")
	t.Cleanup(func() { stop(primary) })
	psql := func(args ...string) {
		run("psql", append([]string{"-h", "127.0.0.1", "-p", strconv.Itoa(p.Primary), "-U", "postgres", "-v", "ON_ERROR_STOP=1", "-q"}, args...)...)
	}
	psql("-c", "CREATE DATABASE pdns")
	psql("-d", "pdns", "-f", schema)
	run("pg_basebackup", "-h", "127.0.0.1", "-p", strconv.Itoa(p.Primary), "-U", "postgres", "-D", replica, "-R", "-X", "stream", "-c", "fast")
	AppendFile(t, filepath.Join(replica, "postgresql.conf"), fmt.Sprintf("\nport = %d\n", p.Replica))
	run("pg_ctl", "-D", replica, "-l", filepath.Join(dir, "replica.log"), "-w", "start")
	t.Cleanup(func() { stop(replica) })
	return p
}

// AppendFile appends text to the file at path.
func AppendFile(t testing.TB, path, text string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(text); err != nil {
		t.Fatal(err)
	}
}

// PG is one PostgreSQL server, for sshdyn's own state store: no
// replica, no PowerDNS schema.
type PG struct {
	Port int
	dir  string
	ctl  func(args ...string) error
}

// URL returns the postgres:// URL of database db on it.
func (p *PG) URL(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", p.Port, db)
}

// Stop stops the server at once (as a crash would); Start starts it
// again on the same port, with its data.
func (p *PG) Stop() error  { return p.ctl("-m", "immediate", "stop") }
func (p *PG) Start() error { return p.ctl("-l", filepath.Join(p.dir, "pg.log"), "-w", "start") }

// StartPG starts one PostgreSQL server with the databases dbs, and stops
// it when the test ends. As root, it runs as the postgres user.
func StartPG(t testing.TB, dbs ...string) *PG {
	t.Helper()
	bin, err := pgBin()
	if err != nil {
		t.Fatal(err)
	}
	dir := postgresDir(t, "dnstest-pg-")
	as := asPostgresUser
	data := filepath.Join(dir, "data")
	if out, err := as(filepath.Join(bin, "initdb"), "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync").CombinedOutput(); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	p := &PG{dir: dir}
	if p.Port, err = FreePort(); err != nil {
		t.Fatal(err)
	}
	AppendFile(t, filepath.Join(data, "postgresql.conf"), fmt.Sprintf("\nlisten_addresses = '127.0.0.1'\nport = %d\nunix_socket_directories = '%s'\nfsync = off\n", p.Port, dir))
	p.ctl = func(args ...string) error {
		out, err := as(filepath.Join(bin, "pg_ctl"), append([]string{"-D", data}, args...)...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("pg_ctl %s: %v: %s", strings.Join(args, " "), err, out)
		}
		return nil
	}
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Stop() })
	for _, db := range dbs {
		if out, err := as(filepath.Join(bin, "psql"), "-h", "127.0.0.1", "-p", strconv.Itoa(p.Port), "-U", "postgres", "-v", "ON_ERROR_STOP=1", "-q", "-c", "CREATE DATABASE "+db).CombinedOutput(); err != nil {
			t.Fatalf("CREATE DATABASE %s: %v\n%s", db, err, out)
		}
	}
	return p
}

// asPostgresUser returns a command that runs as the postgres user when
// the test runs as root (PostgreSQL refuses to run as root).
func asPostgresUser(name string, args ...string) *exec.Cmd {
	if os.Geteuid() != 0 {
		return exec.Command(name, args...)
	}
	return exec.Command("runuser", append([]string{"-u", "postgres", "--", name}, args...)...)
}

// postgresDir makes a temporary directory, the postgres user's when the
// test runs as root, removed when the test ends.
func postgresDir(t testing.TB, prefix string) string {
	t.Helper()
	dir, err := os.MkdirTemp("", prefix)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			t.Fatal(err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}
