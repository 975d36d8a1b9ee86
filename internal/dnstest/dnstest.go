// Package dnstest starts real DNS primaries (BIND's named, Knot's knotd,
// PowerDNS's pdns_server, and sshdyn's own embedded primary) on loopback
// for tests: each in its own temporary directory, on a free unprivileged
// port, with a TSIG key allowed to update A and AAAA records.
//
// A missing server binary fails the test; it is never skipped. The
// project's test command (scripts/test.sh) installs them.
package dnstest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/sshdyn/sshdyn/tsig"
	"github.com/sshdyn/sshdyn/zone"
)

// Kinds lists the primaries tests run against: BIND, Knot, PowerDNS
// (gsqlite3 backend), and sshdyn's embedded primary (package zone), which
// runs inside the test process.
var Kinds = []string{"bind", "knot", "pdns", "sshdyn"}

// Options shape the zone a Server starts with.
type Options struct {
	Zone    string   // default "dyn.example.com"
	Records []string // zone-file lines relative to the origin, e.g. "home 300 A 192.0.2.1"
	// Types lists the RR types the key may update; default A and AAAA.
	Types []string
	// PgsqlPort makes PowerDNS use gpgsql, the database "pdns" on
	// 127.0.0.1 at this port (see StartPostgres), instead of sqlite3.
	// Follows, with it, is another PowerDNS whose database this one's
	// replicates: this one loads nothing, and shares its zone, key and
	// token.
	PgsqlPort int
	Follows   *Server
	// API turns on PowerDNS's HTTP API (PowerDNS only): APIURL and
	// APIKeyFile, with SOA-EDIT-API INCREASE so that every PATCH shows in
	// the serial.
	API bool
	// ACME grants the key TXT records for ACME challenges too: at
	// _acme-challenge names only where the primary can say so (PowerDNS's
	// policy script, the embedded primary), else anywhere (BIND, Knot).
	ACME bool
	// NoWildcards (PowerDNS only: its policy script) refuses the key
	// every name starting with "*.".
	NoWildcards bool
	// BindOptions are lines added to BIND's options block, e.g.
	// cookie-secret "…";.
	BindOptions []string
	// TransferWithKey lets the update key transfer the zone (BIND, Knot,
	// the embedded primary): AXFR then reads what each serves, whole.
	TransferWithKey bool
	// Server, for the embedded primary ("sshdyn"), sets the fields of its
	// zone.Server before it listens: RRL, NSID, TCP caps, cookies.
	Server func(*zone.Server)

	// LogToFile sends the server's output to output.log in its directory,
	// not into the test process. Benchmarks set it: a busy primary logs
	// every UPDATE; reading that takes CPU from the load, and a pipe the
	// loaded test process reads slowly can block the primary's writes.
	LogToFile bool

	// KnotZone adds settings to Knot's zone section, e.g.
	// "zonefile-sync: 60" (Knot only).
	KnotZone []string

	// For the embedded primary only: who may transfer the zone (with
	// XfrKey, made when this is set), and the secondaries to NOTIFY.
	AllowTransfer []netip.Prefix
	Notify        []string
	// DNSSEC signs the embedded primary's zone (its keys are made in
	// Dir).
	DNSSEC *zone.DNSSEC
}

// Server is a running primary.
type Server struct {
	Kind    string
	Port    int
	Addr    string // 127.0.0.1:port
	Addr6   string // [::1]:port
	Zone    string // no trailing dot
	Key     tsig.Key
	KeyFile string   // the key in the server's own format (BIND's key statement or keymgr's one line)
	XfrKey  tsig.Key // the embedded primary's transfer key, with Options.AllowTransfer
	// APIURL and APIKeyFile reach PowerDNS's HTTP API, with Options.API.
	APIURL, APIKey, APIKeyFile string
	Dir                        string

	t      testing.TB
	cmd    *exec.Cmd
	embed  *zone.Server
	token  string // served as TXT at _token.<zone>
	stderr *LogBuffer
	logOut string // the output file, with Options.LogToFile
	done   chan struct{}
}

// Start starts a primary of the given kind ("bind" or "knot") and stops it
// when the test ends.
func Start(t testing.TB, kind string, opts Options) *Server {
	t.Helper()
	if opts.Zone == "" {
		opts.Zone = "dyn.example.com"
	}
	if len(opts.Types) == 0 {
		opts.Types = []string{"A", "AAAA"}
	}
	bins, ok := map[string][]string{"bind": {"named"}, "knot": {"knotd"}, "pdns": {"pdns_server", "pdnsutil", "sqlite3"}, "sshdyn": nil}[kind]
	if !ok {
		t.Fatalf("dnstest: unknown kind %q", kind)
	}
	for _, bin := range bins {
		if _, err := exec.LookPath(bin); err != nil {
			t.Fatalf("dnstest: %s not found: install bind9, knot, pdns-server, pdns-backend-sqlite3 and sqlite3 (scripts/test.sh does)", bin)
		}
	}
	var lastErr error
	for attempt := 0; attempt < 6; attempt++ {
		s, err := start(t, kind, opts)
		if err == nil && s.APIURL != "" {
			err = s.waitAPI()
		}
		if err == nil {
			return s
		}
		lastErr = err
	}
	t.Fatalf("dnstest: starting %s: %v", kind, lastErr)
	return nil
}

func start(t testing.TB, kind string, opts Options) (*Server, error) {
	dir, err := os.MkdirTemp("", "dnstest-"+kind+"-")
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	s := &Server{
		Kind:  kind,
		Port:  port,
		Addr:  net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
		Addr6: net.JoinHostPort("::1", strconv.Itoa(port)),
		Zone:  strings.TrimSuffix(strings.ToLower(opts.Zone), "."),
		Key: tsig.Key{
			Name:      "sshdyn-test.",
			Algorithm: dns.HmacSHA256,
			Secret:    randomSecret(),
		},
		Dir: dir,
		t:   t,
	}
	if opts.LogToFile && kind != "sshdyn" {
		s.logOut = filepath.Join(dir, "output.log")
	}
	token := randomToken()
	if f := opts.Follows; f != nil {
		s.Zone, s.Key, token = f.Zone, f.Key, f.token
	}
	zoneFile := filepath.Join(dir, s.Zone+".zone")
	if err := os.WriteFile(zoneFile, []byte(zoneText(s.Zone, token, opts.Records)), 0o644); err != nil {
		return nil, err
	}
	s.token = token
	if kind == "sshdyn" {
		if err := s.writeKeyFile(bindKeyText); err != nil {
			return nil, err
		}
		if err := s.startEmbedded(zoneFile, opts); err != nil {
			return nil, err
		}
		t.Cleanup(func() {
			s.Stop()
			if t.Failed() {
				t.Logf("%s log:\n%s", kind, s.output())
			}
		})
		return s, nil
	}
	args, err := s.configure(kind, zoneFile, opts)
	if err != nil {
		return nil, err
	}
	if err := s.launch(args); err != nil {
		return nil, err
	}
	return s, nil
}

// configure writes the key and configuration files of a BIND, Knot or
// PowerDNS primary and returns the command that runs it.
func (s *Server) configure(kind, zoneFile string, opts Options) ([]string, error) {
	switch kind {
	case "bind":
		if err := s.writeKeyFile(bindKeyText); err != nil {
			return nil, err
		}
		conf := filepath.Join(s.Dir, "named.conf")
		text := bindConf(s.Dir, s.Port, s, zoneFile, withTXT(opts))
		if opts.TransferWithKey {
			text = strings.Replace(text, "allow-transfer { none; };", fmt.Sprintf("allow-transfer { key %q; };", strings.TrimSuffix(s.Key.Name, ".")), 1)
		}
		if len(opts.BindOptions) > 0 {
			text = strings.Replace(text, "\tallow-transfer", "\t"+strings.Join(opts.BindOptions, "\n\t")+"\n\tallow-transfer", 1)
		}
		if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
			return nil, err
		}
		return []string{"named", "-g", "-c", conf}, nil
	case "knot":
		if err := s.writeKeyFile(func(name, secret string) string { return fmt.Sprintf("hmac-sha256:%s:%s\n", name, secret) }); err != nil {
			return nil, err
		}
		conf := filepath.Join(s.Dir, "knot.conf")
		text := knotConf(s.Dir, s.Port, s, withTXT(opts), opts.KnotZone)
		if opts.TransferWithKey {
			text = strings.Replace(text, "acl:\n", fmt.Sprintf("acl:\n  - id: transfer\n    key: %s\n    action: transfer\n", strings.TrimSuffix(s.Key.Name, ".")), 1)
			text = strings.Replace(text, "    acl: update\n", "    acl: [ update, transfer ]\n", 1)
		}
		if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
			return nil, err
		}
		return []string{"knotd", "-c", conf}, nil
	case "pdns":
		if err := s.setupPowerDNS(zoneFile, opts); err != nil {
			return nil, err
		}
		return []string{"pdns_server", "--config-dir=" + s.Dir}, nil
	}
	return nil, fmt.Errorf("dnstest: unknown kind %q (want one of %v)", kind, Kinds)
}

// bindKeyText is a key file in BIND's format.
func bindKeyText(name, secret string) string {
	return fmt.Sprintf("key %q {\n\talgorithm hmac-sha256;\n\tsecret %q;\n};\n", name, secret)
}

// writeKeyFile writes s.Key to s.KeyFile in the format text makes.
func (s *Server) writeKeyFile(text func(name, secret string) string) error {
	s.KeyFile = filepath.Join(s.Dir, "tsig.key")
	return os.WriteFile(s.KeyFile, []byte(text(strings.TrimSuffix(s.Key.Name, "."), s.Key.Secret)), 0o600)
}

// launch runs the server's process and waits until this instance, and
// not some other server on the port, answers with s.token.
func (s *Server) launch(args []string) error {
	t, kind, port := s.t, s.Kind, s.Port
	s.stderr = &LogBuffer{}
	s.cmd = exec.Command(args[0], args[1:]...)
	s.cmd.Stdout = s.stderr
	s.cmd.Stderr = s.stderr
	if s.logOut != "" {
		f, err := os.Create(s.logOut)
		if err != nil {
			return err
		}
		defer f.Close() // the child has its own descriptor
		s.cmd.Stdout, s.cmd.Stderr = f, f
	}
	if err := s.cmd.Start(); err != nil {
		return err
	}
	s.done = make(chan struct{})
	go func() { s.cmd.Wait(); close(s.done) }()
	t.Cleanup(func() {
		s.Stop()
		if t.Failed() {
			t.Logf("%s log:\n%s", kind, s.output())
		}
	})
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-s.done:
			return fmt.Errorf("%s exited during start-up:\n%s", kind, s.output())
		default:
		}
		if got, err := s.query("_token."+s.Zone, dns.TypeTXT); err == nil && len(got) == 1 {
			if got[0] == s.token {
				return nil
			}
			s.Stop()
			return fmt.Errorf("port %d answered by another server", port)
		}
		time.Sleep(20 * time.Millisecond)
	}
	s.Stop()
	return fmt.Errorf("%s did not answer within 15s:\n%s", kind, s.output())
}

// Output returns what the server has logged so far (for the embedded
// primary, its slog lines).
func (s *Server) Output() string { return s.output() }

// output returns what the server has written to stdout and stderr.
func (s *Server) output() string {
	if s.logOut == "" {
		return s.stderr.String()
	}
	b, err := os.ReadFile(s.logOut)
	if err != nil {
		return fmt.Sprintf("(reading %s: %v)", s.logOut, err)
	}
	return string(b)
}

// startEmbedded runs sshdyn's embedded primary in this process on s.Port.
func (s *Server) startEmbedded(zoneFile string, opts Options) error {
	cfg := zone.Config{Origin: s.Zone, File: zoneFile, UpdateKeys: []string{s.Key.Name},
		AllowTransfer: opts.AllowTransfer, Notify: opts.Notify, ACME: opts.ACME, DNSSEC: opts.DNSSEC}
	for _, t := range opts.Types {
		cfg.UpdateTypes = append(cfg.UpdateTypes, dns.StringToType[t])
	}
	keys := []tsig.Key{s.Key}
	if opts.TransferWithKey {
		cfg.AllowTransfer = append(cfg.AllowTransfer, netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128"))
		cfg.TransferKeys = append(cfg.TransferKeys, s.Key.Name)
	}
	if len(opts.AllowTransfer) > 0 {
		s.XfrKey = tsig.Key{Name: "xfr-test.", Algorithm: dns.HmacSHA256, Secret: randomSecret()}
		cfg.TransferKeys = []string{s.XfrKey.Name}
		keys = append(keys, s.XfrKey)
	}
	z, err := zone.Load(cfg)
	if err != nil {
		return err
	}
	if opts.DNSSEC != nil {
		if err := z.Own(); err != nil {
			return err
		}
		if err := z.Sign(); err != nil {
			z.Close()
			return err
		}
	}
	s.stderr = &LogBuffer{}
	s.embed = &zone.Server{Zones: []*zone.Zone{z}, Keys: keys, Logger: slog.New(slog.NewTextHandler(s.stderr, nil))}
	if opts.Server != nil {
		opts.Server(s.embed)
	}
	for _, addr := range []string{s.Addr, s.Addr6} {
		if err := s.embed.Listen(addr); err != nil {
			s.embed.Shutdown(context.Background())
			return err
		}
	}
	return nil
}

// Embedded returns the embedded primary's zone, nil for another kind.
func (s *Server) Embedded() *zone.Zone {
	if s.embed == nil {
		return nil
	}
	return s.embed.Zones[0]
}

// waitAPI waits until PowerDNS's HTTP API answers; it stops the server if
// it does not.
func (s *Server) waitAPI() error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get(s.APIURL + "/api/v1/servers")
		if err == nil {
			resp.Body.Close()
			return nil
		}
		if time.Now().After(deadline) {
			s.Stop()
			return fmt.Errorf("PowerDNS API at %s: %w", s.APIURL, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Pid returns the server's process ID; 0 for the embedded primary, which
// runs in the test's own process.
func (s *Server) Pid() int {
	if s.cmd == nil || s.cmd.Process == nil {
		return 0
	}
	return s.cmd.Process.Pid
}

// Stop kills the server and waits for it to exit. It is safe to call twice.
func (s *Server) Stop() {
	if s.embed != nil {
		s.embed.Shutdown(context.Background())
		return
	}
	if s.cmd.Process != nil {
		s.cmd.Process.Kill()
	}
	<-s.done
}

// Serial returns the zone's SOA serial as the primary serves it now.
func (s *Server) Serial(t testing.TB) uint32 {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(s.Zone), dns.TypeSOA)
	r, err := s.exchange(m)
	if err != nil {
		t.Fatalf("SOA query to %s: %v", s.Kind, err)
	}
	for _, rr := range r.Answer {
		if soa, ok := rr.(*dns.SOA); ok {
			return soa.Serial
		}
	}
	t.Fatalf("no SOA in %s's answer: %v", s.Kind, r)
	return 0
}

// Lookup returns the sorted values of name's records of type t; records
// are rendered as dig +short would.
func (s *Server) Lookup(t testing.TB, name string, qtype uint16) []string {
	t.Helper()
	v, err := s.query(name, qtype)
	if err != nil {
		t.Fatalf("query %s %s to %s: %v", name, dns.TypeToString[qtype], s.Kind, err)
	}
	return v
}

// TTL returns the TTL of name's RRset of type t, or 0 if there is none.
func (s *Server) TTL(t testing.TB, name string, qtype uint16) uint32 {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	r, err := s.exchange(m)
	if err != nil {
		t.Fatalf("query %s: %v", name, err)
	}
	for _, rr := range r.Answer {
		if rr.Header().Rrtype == qtype {
			return rr.Header().Ttl
		}
	}
	return 0
}

func (s *Server) query(name string, qtype uint16) ([]string, error) {
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	m.RecursionDesired = false
	r, err := s.exchange(m)
	if err != nil {
		return nil, err
	}
	if r.Rcode != dns.RcodeSuccess && r.Rcode != dns.RcodeNameError {
		return nil, fmt.Errorf("rcode %s", dns.RcodeToString[r.Rcode])
	}
	out := []string{}
	for _, rr := range r.Answer {
		if rr.Header().Rrtype != qtype {
			continue
		}
		switch rr := rr.(type) {
		case *dns.A:
			out = append(out, rr.A.String())
		case *dns.AAAA:
			out = append(out, rr.AAAA.String())
		case *dns.TXT:
			out = append(out, strings.Join(rr.Txt, ""))
		default:
			out = append(out, strings.TrimPrefix(rr.String(), rr.Header().String()))
		}
	}
	sort.Strings(out)
	return out, nil
}

func (s *Server) exchange(m *dns.Msg) (*dns.Msg, error) {
	c := &dns.Client{Net: "tcp", Timeout: 2 * time.Second}
	r, _, err := c.Exchange(m, s.Addr)
	return r, err
}

func zoneText(zone, token string, records []string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "$ORIGIN %s.\n$TTL 300\n", zone)
	fmt.Fprintf(&b, "@ IN SOA ns.%s. hostmaster.%s. 1 3600 600 86400 60\n", zone, zone)
	b.WriteString("@ IN NS ns\nns IN A 127.0.0.1\n")
	fmt.Fprintf(&b, "_token IN TXT %q\n", token)
	for _, r := range records {
		b.WriteString(r + "\n")
	}
	return b.String()
}

// withTXT returns opts.Types, with TXT if opts.ACME asks for it.
func withTXT(opts Options) []string {
	if opts.ACME && !slices.Contains(opts.Types, "TXT") {
		return append(slices.Clone(opts.Types), "TXT")
	}
	return opts.Types
}

func bindConf(dir string, port int, s *Server, zoneFile string, types []string) string {
	return bindOptions(dir, port) + fmt.Sprintf(`	allow-transfer { none; };
};
controls { };
include "%[3]s";
zone %[4]q {
	type primary;
	file %[5]q;
	update-policy { grant %[6]s zonesub %[7]s; };
};
`, dir, port, s.KeyFile, s.Zone, zoneFile, strings.TrimSuffix(s.Key.Name, "."), strings.Join(types, " "))
}

func knotConf(dir string, port int, s *Server, types, zoneSettings []string) string {
	extra := ""
	for _, l := range zoneSettings {
		extra += "    " + l + "\n"
	}
	return knotHead(dir, port, strings.TrimSuffix(s.Key.Name, "."), s.Key.Secret) + fmt.Sprintf(`acl:
  - id: update
    key: %[3]s
    action: update
    update-type: [ %[6]s ]
template:
  - id: default
    storage: %[1]q
    file: "%%s.zone"
zone:
  - domain: %[5]s
    acl: update
`, dir, port, strings.TrimSuffix(s.Key.Name, "."), s.Key.Secret, s.Zone, strings.Join(types, ", ")) + extra
}

// AXFR transfers the zone from s, signed with s.Key (Options.TransferWithKey),
// and returns its records, the closing SOA left out.
func (s *Server) AXFR(t testing.TB) []dns.RR {
	t.Helper()
	m := new(dns.Msg)
	m.SetAxfr(dns.Fqdn(s.Zone))
	m.SetTsig(s.Key.Name, s.Key.Algorithm, 300, time.Now().Unix())
	tr := &dns.Transfer{TsigSecret: map[string]string{s.Key.Name: s.Key.Secret}}
	ch, err := tr.In(m, s.Addr)
	if err != nil {
		t.Fatalf("AXFR from %s: %v", s.Kind, err)
	}
	var out []dns.RR
	for env := range ch {
		if env.Error != nil {
			t.Fatalf("AXFR from %s: %v", s.Kind, env.Error)
		}
		out = append(out, env.RR...)
	}
	if len(out) > 1 {
		out = out[:len(out)-1]
	}
	return out
}

// FreePort picks a port in 10000-32000 (below Linux's ephemeral range)
// that is free for TCP and UDP on 127.0.0.1 and ::1 right now. The caller
// proves it got the port with a per-instance token, and retries if not.
func FreePort() (int, error) {
	for i := 0; i < 50; i++ {
		n, _ := rand.Int(rand.Reader, big.NewInt(22000))
		port := 10000 + int(n.Int64())
		if portFree(port) {
			return port, nil
		}
	}
	return 0, errors.New("no free port found")
}

func portFree(port int) bool {
	for _, host := range []string{"127.0.0.1", "::1"} {
		addr := net.JoinHostPort(host, strconv.Itoa(port))
		l, err := net.Listen("tcp", addr)
		if err != nil {
			return false
		}
		l.Close()
		p, err := net.ListenPacket("udp", addr)
		if err != nil {
			return false
		}
		p.Close()
	}
	return true
}

func randomSecret() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.StdEncoding.EncodeToString(b)
}

func randomToken() string {
	b := make([]byte, 12)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// LogBuffer collects a process's output; safe for concurrent use.
type LogBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *LogBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *LogBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// bindOptions is the start of a named.conf for an instance in dir on port:
// everything in dir, loopback only, no recursion; the block is left open.
func bindOptions(dir string, port int) string {
	return fmt.Sprintf(`options {
	directory %[1]q;
	pid-file "%[1]s/named.pid";
	session-keyfile "%[1]s/session.key";
	managed-keys-directory %[1]q;
	dump-file "%[1]s/named_dump.db";
	statistics-file "%[1]s/named.stats";
	memstatistics-file "%[1]s/named.memstats";
	listen-on port %[2]d { 127.0.0.1; };
	listen-on-v6 port %[2]d { ::1; };
	recursion no;
	dnssec-validation no;
	notify no;
`, dir, port)
}

// knotHead is the start of a knot.conf for an instance in dir on port,
// with the TSIG key keyName.
func knotHead(dir string, port int, keyName, secret string) string {
	return fmt.Sprintf(`server:
    rundir: %[1]q
    pidfile: "%[1]s/knot.pid"
    listen: [ 127.0.0.1@%[2]d, ::1@%[2]d ]
control:
    listen: "%[1]s/knot.sock"
log:
  - target: stderr
    any: info
database:
    storage: %[1]q
key:
  - id: %[3]s
    algorithm: hmac-sha256
    secret: %[4]s
`, dir, port, keyName, secret)
}
