package sshd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"strings"
	"time"

	"github.com/gliderlabs/ssh"
	"github.com/miekg/dns"
	gossh "golang.org/x/crypto/ssh"

	"github.com/sshdyn/sshdyn/authorized"
	"github.com/sshdyn/sshdyn/dnsname"
	"github.com/sshdyn/sshdyn/update"
)

// Exit statuses, from sysexits.h, so that cron and scripts can tell
// failures apart. ssh itself exits 255 when it cannot connect or the key
// is not accepted.
const (
	ExitOK        = 0
	ExitUsage     = 64 // EX_USAGE: unknown command or bad arguments
	ExitNoPerm    = 77 // EX_NOPERM: not this key's host, or an address not allowed
	ExitTempFail  = 75 // EX_TEMPFAIL: the primary is unreachable or slow; try again later
	ExitConfig    = 78 // EX_CONFIG: the primary rejected the update; the server's operator must fix it
	maxCommandLen = 4096
)

// Usage is what help prints.
const Usage = `usage: ssh [-4|-6] [-p PORT] SERVER COMMAND

commands:
  update [--json] [HOST...]
                    point this key's hosts (or the named ones) at the
                    address you connect from: IPv4 sets A, IPv6 sets AAAA;
                    --json prints one JSON object instead of lines
  ip                print the address the server sees
  status            print the A and AAAA records of this key's hosts
  help              print this text

exit status: 0 ok, 64 bad usage, 75 temporary failure (try again later),
77 not permitted, 78 server configuration error, 255 ssh could not log in
`

// env is what a command sees of its session.
type env struct {
	entry  *authorized.Entry
	peer   netip.Addr
	stdout io.Writer
	stderr io.Writer
	log    *sessionLog
	ctx    context.Context
}

// sessionLog is a session's logger, with its remote address and, once
// known, its key. slog's With formats its attributes at once, and most
// sessions log only their closing line, which handle writes whole; so
// the logger with those attributes is built only when something else is
// logged.
type sessionLog struct {
	base  *slog.Logger
	attrs []any
	built *slog.Logger
}

func (l *sessionLog) with(args ...any) {
	l.attrs = append(l.attrs, args...)
	l.built = nil
}

func (l *sessionLog) get() *slog.Logger {
	if l.built == nil {
		l.built = l.base.With(l.attrs...)
	}
	return l.built
}

// fail is a command's failure: one line for the client, its exit status.
type fail struct {
	code int
	msg  string
}

func (f *fail) Error() string { return f.msg }

func failf(code int, format string, args ...any) *fail {
	return &fail{code: code, msg: fmt.Sprintf(format, args...)}
}

func (s *Server) handle(sess ssh.Session) {
	start := time.Now()
	remote := sess.RemoteAddr().String()
	code, fp, cmd := s.run(sess, &sessionLog{base: s.Logger, attrs: []any{"remote", remote}})
	s.Observer.Session(cmd, code)
	s.Logger.Info("session", "remote", remote, "key", fp, "command", cmd, "exit", code, "duration", time.Since(start).Round(time.Millisecond))
	sess.Exit(code)
}

func (s *Server) run(sess ssh.Session, log *sessionLog) (code int, fingerprint, cmd string) {
	report := func(f *fail) int {
		if f.msg != "" { // empty: the command printed its own lines
			fmt.Fprintf(sess.Stderr(), "sshdyn: %s\n", f.msg)
		}
		return f.code
	}
	key := sess.PublicKey()
	verified, _ := sess.Context().Value(verifiedKeyCtx).(gossh.PublicKey)
	if key == nil || verified == nil || !ssh.KeysEqual(key, verified) {
		log.get().Error("session key differs from the verified key; refusing")
		return report(failf(ExitNoPerm, "not permitted")), "", ""
	}
	fingerprint = gossh.FingerprintSHA256(key)
	log.with("key", fingerprint)
	// Look the key up in the current map: it may have been removed since
	// the client authenticated.
	entry, ok := s.Hosts.Lookup(key)
	if !ok {
		return report(failf(ExitNoPerm, "not permitted: this key is no longer authorized")), fingerprint, ""
	}
	args, perr := parseCommand(sess.RawCommand())
	if perr != nil {
		return report(perr), fingerprint, ""
	}
	if len(args) == 0 {
		io.WriteString(sess.Stderr(), Usage)
		return ExitUsage, fingerprint, ""
	}
	cmd = args[0]
	peer, ok := peerAddr(sess.RemoteAddr())
	if !ok {
		return report(failf(ExitTempFail, "cannot tell your address")), fingerprint, cmd
	}
	// Checked at authentication too; again here against the current map.
	if err := entry.Permits(peer, time.Now()); err != nil {
		log.get().Info("key refused", "reason", err)
		return report(failf(ExitNoPerm, "not permitted: %v", err)), fingerprint, cmd
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(sess.Context()), s.UpdateTimeout)
	defer cancel()
	e := &env{entry: entry, peer: peer, stdout: sess, stderr: sess.Stderr(), log: log, ctx: ctx}
	var err error
	switch cmd {
	case "update", "status":
		select {
		case s.dnsSem <- struct{}{}:
		case <-ctx.Done():
			log.get().Warn("no DNS slot free", "in_flight", cap(s.dnsSem))
			s.Observer.Limited("dns_slots")
			err = failf(ExitTempFail, "server busy, try again later")
		}
		if err != nil {
			break
		}
		defer func() { <-s.dnsSem }()
		if cmd == "update" {
			err = s.update(e, args[1:])
		} else {
			err = s.status(e, args[1:])
		}
	case "ip":
		if len(args) > 1 {
			err = failf(ExitUsage, "ip takes no arguments")
		} else {
			fmt.Fprintln(e.stdout, peer)
		}
	case "help":
		io.WriteString(e.stdout, Usage)
	}
	var f *fail
	if errors.As(err, &f) {
		return report(f), fingerprint, cmd
	}
	return ExitOK, fingerprint, cmd
}

// commands are the ones run knows.
var commands = map[string]bool{"update": true, "ip": true, "status": true, "help": true}

// maxArgs bounds the words of a command: a key has few hosts.
const maxArgs = 64

// parseCommand splits an exec request into words and checks them: a known
// command, at most 64 words, each printable ASCII. No words at all (a
// shell request) is not an error; the caller prints the usage.
func parseCommand(raw string) ([]string, *fail) {
	if len(raw) > maxCommandLen {
		return nil, failf(ExitUsage, "command too long")
	}
	args := strings.Fields(raw)
	if len(args) == 0 {
		return nil, nil
	}
	if len(args) > maxArgs {
		return nil, failf(ExitUsage, "too many arguments")
	}
	for _, a := range args {
		for i := 0; i < len(a); i++ {
			if a[i] < 0x21 || a[i] > 0x7e {
				return nil, failf(ExitUsage, "command has a character that is not printable ASCII")
			}
		}
	}
	if !commands[args[0]] {
		return nil, failf(ExitUsage, "unknown command %q (try: update, ip, status, help)", truncate(args[0], 40))
	}
	return args, nil
}

// hosts returns the hosts a command acts on: all of the key's, or the
// named ones, each of which must be the key's own.
func hosts(e *env, named []string) ([]string, error) {
	if len(named) == 0 {
		return e.entry.Hosts, nil
	}
	var out []string
	for _, h := range named {
		if !e.entry.Owns(h) {
			return nil, failf(ExitNoPerm, "not permitted: %q is not one of this key's hosts", truncate(h, 255))
		}
		out = append(out, dnsname.Canonical(h))
	}
	return out, nil
}

// Report is what "update --json" prints: one JSON object on stdout, also
// when the update fails. Exit is the command's exit status; Error is the
// line printed on stderr for a failure that concerns no single host.
type Report struct {
	Address string       `json:"address"`
	Type    string       `json:"type"` // "A" or "AAAA"
	Hosts   []HostReport `json:"hosts"`
	Exit    int          `json:"exit"`
	Error   string       `json:"error,omitempty"`
}

// HostReport is one host's outcome in a Report. Result is "good",
// "nochg" or "error"; Previous lists the addresses replaced by a good
// update (when they could be read); Kind sorts a failure: "rate_limited"
// or the DNS failure's kind ("tsig", "refused", "ignored", "unreachable",
// "timeout", ...); Temporary says whether retrying later may succeed.
type HostReport struct {
	Host      string   `json:"host"`
	Result    string   `json:"result"`
	Previous  []string `json:"previous,omitempty"`
	Kind      string   `json:"kind,omitempty"`
	Temporary bool     `json:"temporary,omitempty"`
	Error     string   `json:"error,omitempty"`
}

func (s *Server) update(e *env, args []string) error {
	asJSON := len(args) > 0 && args[0] == "--json"
	if asJSON {
		args = args[1:]
	}
	typ := "A"
	if !e.peer.Is4() {
		typ = "AAAA"
	}
	rep := Report{Address: e.peer.String(), Type: typ, Hosts: []HostReport{}}
	err := s.updateHosts(e, args, &rep, !asJSON)
	if asJSON {
		var f *fail
		if errors.As(err, &f) {
			rep.Exit, rep.Error = f.code, f.msg
		}
		b, _ := json.Marshal(rep)
		e.stdout.Write(append(b, '\n'))
	}
	return err
}

// updateHosts points the hosts named (or all of the key's) at the peer
// address, fills rep, and prints a line per host on stdout if text is set.
func (s *Server) updateHosts(e *env, named []string, rep *Report, text bool) error {
	for _, h := range named {
		if strings.HasPrefix(h, "-") {
			return failf(ExitUsage, "unknown option %q (update takes --json, then host names)", truncate(h, 40))
		}
	}
	targets, err := hosts(e, named)
	if err != nil {
		return err
	}
	if !s.AllowPrivate && !e.entry.AllowPrivate && !PublicUnicast(e.peer) {
		return failf(ExitNoPerm, "not permitted: %s is not a public address", e.peer)
	}
	typ := rep.Type
	var worst *fail
	for _, host := range targets {
		zone, ok := s.Zones.Find(host)
		if !ok { // the authorized file is checked against the zones on load
			return failf(ExitConfig, "%s is in no configured zone", host)
		}
		ttl := e.entry.TTL
		if ttl == 0 {
			ttl = zone.TTL
		}
		allow := func() error {
			err := s.writes.allow(string(e.entry.Key.Marshal()), time.Now())
			if err != nil {
				s.Observer.Limited("changes")
			}
			return err
		}
		res, old, err := update.SetIf(e.ctx, zone.Backend, update.Record{Name: host, Addr: e.peer, TTL: ttl}, allow)
		result := updateResult(res, err)
		s.Observer.Update(zone.Name, typ, result)
		if err != nil {
			f := dnsFailure(host, err)
			e.log.get().Error("dns update failed", "host", host, "type", typ, "addr", e.peer.String(), "err", err)
			fmt.Fprintf(e.stderr, "sshdyn: %s\n", f.msg)
			rep.Hosts = append(rep.Hosts, HostReport{Host: host, Result: "error", Kind: result, Temporary: f.code == ExitTempFail, Error: f.msg})
			if worst == nil || f.code == ExitConfig {
				worst = f
			}
			continue
		}
		hr := HostReport{Host: host, Result: res.String()}
		if res == update.Changed {
			e.log.get().Info("dns change", "host", host, "type", typ, "old", addrList(old), "new", e.peer.String(), "ttl", ttl)
			for _, a := range old {
				hr.Previous = append(hr.Previous, a.String())
			}
		}
		rep.Hosts = append(rep.Hosts, hr)
		if text {
			fmt.Fprintf(e.stdout, "%s %s %s %s\n", res, host, typ, e.peer)
		}
	}
	if worst != nil {
		return &fail{code: worst.code} // lines already printed
	}
	return nil
}

func (s *Server) status(e *env, named []string) error {
	targets, err := hosts(e, named)
	if err != nil {
		return err
	}
	for _, host := range targets {
		zone, ok := s.Zones.Find(host)
		if !ok {
			return failf(ExitConfig, "%s is in no configured zone", host)
		}
		recs, err := zone.Backend.Lookup(e.ctx, host)
		if err != nil {
			e.log.get().Error("dns lookup failed", "host", host, "err", err)
			return dnsFailure(host, err)
		}
		if len(recs) == 0 {
			fmt.Fprintf(e.stdout, "%s none\n", host)
		}
		for _, r := range recs {
			fmt.Fprintf(e.stdout, "%s %s %s %d\n", host, dns.TypeToString[r.Type()], r.Addr, r.TTL)
		}
	}
	return nil
}

// updateResult names an update's outcome for the Observer.
func updateResult(res update.Result, err error) string {
	var ue *update.Error
	var wl *errWriteLimit
	switch {
	case err == nil:
		return res.String()
	case errors.As(err, &ue):
		return ue.Kind.String()
	case errors.As(err, &wl):
		return "rate_limited"
	case errors.Is(err, context.DeadlineExceeded):
		return update.KindTimeout.String()
	}
	return update.KindOther.String()
}

// dnsFailure turns a DNS error into the client's line and exit status.
// The detail (server, rcode, TSIG error) goes to the log, not the client.
func dnsFailure(host string, err error) *fail {
	var wl *errWriteLimit
	if errors.As(err, &wl) {
		return failf(ExitTempFail, "%s: not changed: %v", host, wl)
	}
	var ue *update.Error
	if errors.As(err, &ue) {
		if ue.Kind.Temporary() {
			return failf(ExitTempFail, "%s: temporary failure (DNS primary %s), try again later", host, ue.Kind)
		}
		return failf(ExitConfig, "%s: DNS primary rejected the update (%s); the server's operator must fix its configuration", host, ue.Kind)
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return failf(ExitTempFail, "%s: temporary failure (timeout), try again later", host)
	}
	return failf(ExitTempFail, "%s: temporary failure, try again later", host)
}

func addrList(as []netip.Addr) string {
	if len(as) == 0 {
		return "none"
	}
	s := make([]string, len(as))
	for i, a := range as {
		s[i] = a.String()
	}
	return strings.Join(s, ",")
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}
