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
	gossh "golang.org/x/crypto/ssh"

	"github.com/sshdyn/sshdyn/authorized"
	"github.com/sshdyn/sshdyn/publish"
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

// command is one command of the SSH front: its name, its lines in the
// usage text, and what runs it. The usage text, the check of a command
// line and the dispatch all come from commandTable.
type command struct {
	name  string
	usage string // synopsis and description, as help prints them
	run   func(s *Server, ctx context.Context, e *env, args []string) error
}

// commandTable lists the commands in the order help prints them.
var commandTable []command

func init() {
	commandTable = []command{
		{"update", `  update [--wait] [--json] [HOST...]
                    point this key's hosts (or the named ones) at the
                    address you connect from: IPv4 sets A, IPv6 sets AAAA;
                    --wait returns once the zone's secondaries serve it;
                    --json prints one JSON object instead of lines
`, (*Server).update},
		{"offline", `  offline [--json] [HOST...]
                    remove the A and AAAA records of this key's hosts (or
                    the named ones), their wildcards and its LAN hosts';
                    update brings them back
`, (*Server).offline},
		{"acme", `  acme present NAME VALUE
  acme cleanup NAME VALUE
                    add (present) or remove (cleanup) an ACME DNS-01
                    challenge value at _acme-challenge.HOST; NAME is HOST,
                    *.HOST or _acme-challenge.HOST of one of this key's
                    hosts; present returns once the zone's secondaries
                    serve it
`, (*Server).acme},
		{"sshfp", `  sshfp HOST... < KEYS
  sshfp --clear HOST...
                    publish the SHA-256 fingerprints of a host's SSH keys
                    (SSHFP records) read on standard input: the output of
                    ssh-keygen -r HOST, or the host's public keys; they
                    replace the host's SSHFP records; --clear removes them
                    (the key's line needs the sshfp option)
`, (*Server).sshfp},
		{"ip", `  ip                print the address the server sees
`, func(s *Server, ctx context.Context, e *env, args []string) error {
			if len(args) > 0 {
				return failf(ExitUsage, "ip takes no arguments")
			}
			fmt.Fprintln(e.stdout, e.peer)
			return nil
		}},
		{"status", `  status            print the A and AAAA records of this key's hosts
`, (*Server).status},
		{"history", `  history           print the last updates of this key's hosts
`, (*Server).history},
		{"help", `  help              print this text
`, func(s *Server, ctx context.Context, e *env, args []string) error {
			io.WriteString(e.stdout, Usage)
			return nil
		}},
	}
	var b strings.Builder
	b.WriteString("usage: ssh [-4|-6] [-p PORT] SERVER COMMAND\n\ncommands:\n")
	for _, c := range commandTable {
		b.WriteString(c.usage)
	}
	b.WriteString("\nexit status: 0 ok, 64 bad usage, 75 temporary failure (try again later),\n77 not permitted, 78 server configuration error, 255 ssh could not log in\n")
	Usage = b.String()
}

// Usage is what help prints: made from commandTable.
var Usage string

// lookupCommand returns the command of that name.
func lookupCommand(name string) (command, bool) {
	for _, c := range commandTable {
		if c.name == name {
			return c, true
		}
	}
	return command{}, false
}

// commandNames lists the commands, for an error message.
func commandNames() string {
	names := make([]string, len(commandTable))
	for i, c := range commandTable {
		names[i] = c.name
	}
	return strings.Join(names, ", ")
}

// env is what a command sees of its session.
type env struct {
	entry  *authorized.Entry
	peer   netip.Addr
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	log    *sessionLog
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
	fingerprint = describeKey(key)
	log.with("key", fingerprint)
	// Look the key up in the current map: it may have been removed (or
	// revoked, or a certificate may have expired) since the client
	// authenticated.
	entry, err := s.identify(connMeta{sess.Context()}, key)
	if entry == nil {
		if err != nil {
			log.get().Info("key refused", "reason", err)
		}
		return report(failf(ExitNoPerm, "not permitted: this key is no longer authorized")), fingerprint, ""
	}
	if entry.Cert != nil {
		log.with("hosts", strings.Join(entry.Hosts, ","))
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
	if err := s.Service.Permit(entry, peer); err != nil {
		log.get().Info("key refused", "reason", err)
		return report(refusal(err, log)), fingerprint, cmd
	}
	ctx := sess.Context()
	e := &env{entry: entry, peer: peer, stdin: sess, stdout: sess, stderr: sess.Stderr(), log: log}
	c, _ := lookupCommand(cmd) // parseCommand knows it
	err = c.run(s, ctx, e, args[1:])
	var f *fail
	if errors.As(err, &f) {
		return report(f), fingerprint, cmd
	}
	return ExitOK, fingerprint, cmd
}

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
	if _, ok := lookupCommand(args[0]); !ok {
		return nil, failf(ExitUsage, "unknown command %q (try: %s)", truncate(args[0], 40), commandNames())
	}
	return args, nil
}

// Report is what "update --json" and "offline --json" print: one JSON
// object on stdout, also when the command fails. Exit is the command's
// exit status; Error is the line printed on stderr for a failure that
// concerns no single host.
type Report struct {
	Address string       `json:"address,omitempty"` // update's: the address published
	Type    string       `json:"type,omitempty"`    // update's: "A" or "AAAA"
	Hosts   []HostReport `json:"hosts"`
	Exit    int          `json:"exit"`
	Error   string       `json:"error,omitempty"`
}

// HostReport is one host's outcome in a Report. Result is "good",
// "nochg" or "error"; Previous lists the addresses replaced by a good
// update (when they could be read); Kind sorts a failure: "rate_limited"
// or the DNS failure's kind ("credentials", "refused", "ignored", "unreachable",
// "timeout", ...); Temporary says whether retrying later may succeed.
type HostReport struct {
	Host      string   `json:"host"`
	Type      string   `json:"type,omitempty"` // offline's: the record's type, "A" or "AAAA"
	Removed   bool     `json:"removed,omitempty"`
	Address   string   `json:"address,omitempty"` // a LAN host's, when it is not the report's
	Result    string   `json:"result"`
	Previous  []string `json:"previous,omitempty"`
	Kind      string   `json:"kind,omitempty"`
	Temporary bool     `json:"temporary,omitempty"`
	Error     string   `json:"error,omitempty"`
}

func (s *Server) update(ctx context.Context, e *env, args []string) error {
	var asJSON, wait bool
	for len(args) > 0 && (args[0] == "--json" || args[0] == "--wait") {
		asJSON, wait = asJSON || args[0] == "--json", wait || args[0] == "--wait"
		args = args[1:]
	}
	rep := Report{Address: e.peer.String(), Type: publish.RecordType(e.peer), Hosts: []HostReport{}}
	err := hostArgs(args, "update takes --wait and --json, then host names")
	if err == nil {
		req := publish.Request{Front: publish.FrontSSH, Identity: e.entry, Client: e.peer, Addr: e.peer, Hosts: args, LAN: true, Wait: wait}
		err = s.updateHosts(ctx, e, req, &rep, !asJSON)
	}
	return s.report(e, asJSON, &rep, err)
}

// hostArgs refuses an argument that looks like an option where host
// names are expected.
func hostArgs(args []string, usage string) error {
	for _, h := range args {
		if strings.HasPrefix(h, "-") {
			return failf(ExitUsage, "unknown option %q (%s)", truncate(h, 40), usage)
		}
	}
	return nil
}

// offline runs "offline [--json] [HOST...]": the removal of both
// families' records, through the core as update goes.
func (s *Server) offline(ctx context.Context, e *env, args []string) error {
	var asJSON bool
	for len(args) > 0 && args[0] == "--json" {
		asJSON, args = true, args[1:]
	}
	rep := Report{Hosts: []HostReport{}}
	err := hostArgs(args, "offline takes --json, then host names")
	if err == nil {
		req := publish.Request{Front: publish.FrontSSH, Identity: e.entry, Client: e.peer, Hosts: args, LAN: true, RemoveA: true, RemoveAAAA: true}
		err = s.updateHosts(ctx, e, req, &rep, !asJSON)
	}
	return s.report(e, asJSON, &rep, err)
}

// report prints rep as JSON if asked, with err's exit status, and
// returns err.
func (s *Server) report(e *env, asJSON bool, rep *Report, err error) error {
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

// updateHosts asks the core for req (update's, or offline's), fills
// rep, and prints a line per record on stdout if text is set: "good
// HOST TYPE ADDR", "nochg HOST TYPE ADDR"; for a removal "good HOST
// TYPE removed", or "nochg HOST TYPE none" when there was none.
func (s *Server) updateHosts(ctx context.Context, e *env, req publish.Request, rep *Report, text bool) error {
	results, err := s.Service.Update(ctx, req)
	if err != nil {
		return refusal(err, e.log)
	}
	var worst *fail
	for _, r := range results {
		r.Log(ctx, e.log.get)
		if !r.OK() {
			f := hostFailure(r)
			fmt.Fprintf(e.stderr, "sshdyn: %s\n", f.msg)
			hr := HostReport{Host: r.Host, Result: "error", Kind: r.Kind.String(), Temporary: f.code == ExitTempFail, Error: f.msg}
			switch {
			case r.Removed:
				hr.Type, hr.Removed = r.Type, true
			case r.Addr != e.peer:
				hr.Address = r.Addr.String()
			}
			rep.Hosts = append(rep.Hosts, hr)
			if worst == nil || f.code == ExitConfig {
				worst = f
			}
			continue
		}
		hr := HostReport{Host: r.Host, Result: r.Kind.String()}
		switch {
		case r.Removed:
			hr.Type, hr.Removed = r.Type, true
		case r.Addr != e.peer:
			hr.Address = r.Addr.String()
		}
		for _, a := range r.Old {
			hr.Previous = append(hr.Previous, a.String())
		}
		rep.Hosts = append(rep.Hosts, hr)
		if text {
			fmt.Fprintf(e.stdout, "%s %s %s %s\n", r.Kind, r.Host, r.Type, recordText(r))
		}
	}
	if worst != nil {
		return &fail{code: worst.code} // lines already printed
	}
	return nil
}

// recordText is what a line says of r's record: its address, or for a
// removal "removed" (good) or "none" (there was none).
func recordText(r publish.HostResult) string {
	switch {
	case r.Removed && r.Kind == publish.KindGood:
		return "removed"
	case r.Removed:
		return "none"
	}
	return r.Addr.String()
}

func (s *Server) status(ctx context.Context, e *env, named []string) error {
	hosts, err := s.Service.Status(ctx, publish.Request{Front: publish.FrontSSH, Identity: e.entry, Client: e.peer, Hosts: named})
	for _, h := range hosts {
		if len(h.Records) == 0 {
			fmt.Fprintf(e.stdout, "%s none\n", h.Host)
		}
		for _, r := range h.Records {
			fmt.Fprintf(e.stdout, "%s %s %s %d\n", h.Host, r.Type(), r.Addr, r.TTL)
		}
		s.lastLines(ctx, e, h.Host)
	}
	if err != nil {
		var pe *publish.Error
		if errors.As(err, &pe) && pe.Err != nil && pe.Host != "" { // a DNS failure
			e.log.get().Error("dns lookup failed", "host", pe.Host, "err", pe.Err)
		}
		return refusal(err, e.log)
	}
	if c := e.entry.Cert; c != nil {
		valid := "forever"
		if c.ValidBefore != gossh.CertTimeInfinity {
			valid = time.Unix(int64(c.ValidBefore), 0).UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(e.stdout, "# certificate id %q serial %d, principals used %s, valid until %s\n", c.KeyId, c.Serial, strings.Join(e.entry.Hosts, ","), valid)
	}
	return nil
}

// exitStatus maps who has to act on an outcome to an exit status.
func exitStatus(c publish.Class) int {
	switch c {
	case publish.ClassOK:
		return ExitOK
	case publish.ClassTemporary:
		return ExitTempFail
	case publish.ClassForbidden:
		return ExitNoPerm
	case publish.ClassUsage:
		return ExitUsage
	}
	return ExitConfig
}

// refusal turns the core's refusal of a whole request into the client's
// line and exit status.
func refusal(err error, log *sessionLog) *fail {
	var pe *publish.Error
	if !errors.As(err, &pe) {
		return failf(ExitTempFail, "temporary failure, try again later")
	}
	code := exitStatus(pe.Kind.Class(pe.Temporary))
	switch pe.Kind {
	case publish.KindDenied:
		return failf(code, "not permitted: %v", pe.Err)
	case publish.KindNotOwned:
		return failf(code, "not permitted: %q is not one of this key's hosts", truncate(pe.Host, 255))
	case publish.KindNotPublic:
		return failf(code, "not permitted: %s is not a public address", pe.Addr)
	case publish.KindBusy:
		log.get().Warn("no DNS slot free")
		return failf(code, "server busy, try again later")
	case publish.KindNoZone:
		return failf(code, "%s is in no configured zone", pe.Host)
	case publish.KindRateLimited:
		return failf(code, "not now: %v", pe.Err)
	case publish.KindMalformed:
		return failf(code, "%v", pe.Err)
	case publish.KindLagging:
		return failf(code, "%v; try again later", pe.Err)
	}
	return hostFailure(publish.HostResult{Host: pe.Host, Kind: pe.Kind, Temporary: pe.Temporary, Err: pe.Err})
}

// hostFailure is the client's line and exit status for one host's
// failure. The detail (server, rcode, TSIG error) goes to the log, not
// the client.
func hostFailure(r publish.HostResult) *fail {
	code := exitStatus(r.Kind.Class(r.Temporary))
	switch {
	case r.Kind == publish.KindRateLimited:
		return failf(code, "%s: not changed: %v", r.Host, r.Err)
	case r.Kind == publish.KindLagging:
		return failf(code, "%s: %v", r.Host, r.Err)
	case code == ExitConfig:
		return failf(code, "%s: DNS primary rejected the update (%s); the server's operator must fix its configuration", r.Host, r.Kind)
	case code == ExitNoPerm && r.Kind == publish.KindBadPrefix:
		return failf(code, "%s: not permitted: its interface ID does not fit below the prefix %s", r.Host, r.Addr)
	case code == ExitNoPerm:
		return failf(code, "%s: not permitted: %s is not a public address", r.Host, r.Addr)
	case r.Kind == publish.KindUnreachable || r.Kind == publish.KindTimeout || r.Kind == publish.KindServFail:
		return failf(code, "%s: temporary failure (DNS primary %s), try again later", r.Host, r.Kind)
	}
	return failf(code, "%s: temporary failure, try again later", r.Host)
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

// acme runs "acme present NAME VALUE" and "acme cleanup NAME VALUE": one
// line on stdout, "good" or "nochg" with the challenge's name.
func (s *Server) acme(ctx context.Context, e *env, args []string) error {
	if len(args) != 3 || args[0] != "present" && args[0] != "cleanup" {
		return failf(ExitUsage, "usage: acme present|cleanup NAME VALUE")
	}
	req := publish.ChallengeRequest{Front: publish.FrontSSH, Identity: e.entry, Client: e.peer, Name: args[1], Value: args[2], Wait: true}
	var res publish.ChallengeResult
	var err error
	if args[0] == "present" {
		res, err = s.Service.Present(ctx, req)
	} else {
		res, err = s.Service.Cleanup(ctx, req)
	}
	if err != nil {
		var pe *publish.Error
		if errors.As(err, &pe) && pe.Err != nil && pe.Host != "" { // a DNS failure
			e.log.get().Error("acme "+args[0]+" failed", "name", res.Owner, "err", pe.Err)
			return hostFailure(publish.HostResult{Host: res.Owner, Kind: pe.Kind, Temporary: pe.Temporary, Err: pe.Err})
		}
		e.log.get().Info("acme "+args[0]+" refused", "name", res.Owner, "reason", err)
		return refusal(err, e.log)
	}
	fmt.Fprintf(e.stdout, "%s %s TXT\n", res.Kind, res.Owner)
	return nil
}
