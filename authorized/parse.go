package authorized

import (
	"bufio"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/sshdyn/sshdyn/dnsname"
)

// LineError is a bad line in an authorized file.
type LineError struct {
	File string
	Line int
	Err  error
}

func (e *LineError) Error() string { return fmt.Sprintf("%s:%d: %v", e.File, e.Line, e.Err) }

func (e *LineError) Unwrap() error { return e.Err }

// maxLine bounds one line; OpenSSH's own limit is 8 KiB per key line, but
// RSA keys with many host= options can be longer.
const maxLine = 64 << 10

// maxErrors bounds how many line errors one parse reports.
const maxErrors = 20

// Parse reads an authorized file; name is used in errors. Every host must
// be a valid RFC 1123 name inside one of zones (canonical names, lower
// case, no trailing dot). All bad lines are reported, up to 20, joined.
func Parse(r io.Reader, name string, scope Scope) (*Map, error) {
	m, _, err := parse(r, name, scope)
	if err != nil {
		return nil, err
	}
	return m, nil
}

// badLine is a line that did not parse, with what identifies it if that
// much could be read: its key's wire encoding, its http-user.
type badLine struct {
	line      int
	key, user string
}

// parse is Parse, which also returns the map of the good lines and the
// bad lines when some are bad.
func parse(r io.Reader, name string, scope Scope) (*Map, []badLine, error) {
	m := &Map{byKey: make(map[string]*Entry), byCA: make(map[string]*Entry), byUser: make(map[string]*Entry), owners: make(map[string]*Entry), names: make(map[string]nameUse), reserved: scope.Reserved}
	var errs []error
	var bad []badLine
	fail := func(line int, text string, err error) {
		if len(errs) < maxErrors {
			errs = append(errs, &LineError{File: name, Line: line, Err: err})
		}
		key, user := identify(text)
		bad = append(bad, badLine{line, key, user})
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), maxLine)
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		e, err := parseLine(line, scope)
		if err != nil {
			fail(n, line, err)
			continue
		}
		e.Line = n
		if err := m.add(e); err != nil {
			fail(n, line, err)
			continue
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			err = fmt.Errorf("line longer than %d bytes", maxLine)
		}
		fail(n+1, "", err)
	}
	return m, bad, errors.Join(errs...)
}

// identify finds, in a line that did not parse, the public key it holds
// (its wire encoding) and its http-user, as far as they can be read.
func identify(line string) (key, user string) {
	for _, f := range strings.Fields(line) {
		b, err := base64.StdEncoding.DecodeString(f)
		if err != nil || len(b) < 16 {
			continue
		}
		if k, err := ssh.ParsePublicKey(b); err == nil {
			key = string(k.Marshal())
			break
		}
	}
	if _, after, ok := strings.Cut(line, `http-user="`); ok {
		user, _, _ = strings.Cut(after, `"`)
	}
	return key, user
}

// Load reads and parses the authorized file at path.
func Load(path string, scope Scope) (*Map, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return Parse(f, path, scope)
}

func parseLine(line string, scope Scope) (*Entry, error) {
	e := &Entry{}
	var opts []string
	key, comment, keyOpts, rest, err := ssh.ParseAuthorizedKey([]byte(line))
	switch {
	case err == nil:
		if len(rest) != 0 {
			return nil, errors.New("more than one key on this line")
		}
		if _, ok := key.(*ssh.Certificate); ok {
			return nil, errors.New("a certificate: list the plain public key, or its CA's with cert-authority")
		}
		e.Key, e.Comment, opts = key, comment, keyOpts
	default:
		// A router's line: options only, no key (http-user= must be
		// among them).
		o, ok := splitOptions(line)
		if !ok || !hasOption(o, "http-user") {
			return nil, errors.New("no valid public key on this line")
		}
		opts = o
	}
	seen := map[string]bool{}
	for _, o := range opts {
		if err := e.option(o, scope, seen); err != nil {
			return nil, err
		}
	}
	if len(e.Hosts) == 0 && len(e.Below) == 0 {
		return nil, errors.New(`no host="..." option: the key would have nothing to update`)
	}
	if err := e.checkCA(); err != nil {
		return nil, err
	}
	if (e.HTTPUser == "") != (e.HTTPPassword == "") {
		return nil, errors.New(`http-user="..." and http-password="..." go together`)
	}
	if err := e.checkLAN(); err != nil {
		return nil, err
	}
	return e, nil
}

// checkCA checks what a cert-authority line may have, and that host="*.X"
// patterns are on one.
func (e *Entry) checkCA() error {
	switch {
	case !e.CA && len(e.Below) > 0:
		return fmt.Errorf(`host="*.%s" is a pattern, for a cert-authority line only`, e.Below[0])
	case !e.CA:
		return nil
	case e.Key == nil:
		return errors.New("cert-authority needs the CA's public key on the line")
	case e.HTTPUser != "" || len(e.LANHosts) > 0:
		return errors.New("a cert-authority line cannot have http-user or lan-host")
	}
	return nil
}

// checkLAN checks, with the line's prefix length known, that every LAN
// host's interface ID fits below it.
func (e *Entry) checkLAN() error {
	if e.PrefixLen == 0 {
		if len(e.LANHosts) == 0 {
			return nil
		}
		e.PrefixLen = DefaultPrefixLen
	}
	if len(e.LANHosts) == 0 {
		return errors.New("prefix-length without lan-host")
	}
	for _, l := range e.LANHosts {
		if p, _ := l.IID.Prefix(e.PrefixLen); !p.Addr().IsUnspecified() {
			return fmt.Errorf("lan-host %s: interface ID %s has bits set in the first %d (the prefix's): want, e.g., ::%s", l.Name, l.IID, e.PrefixLen, iidExample(l.IID, e.PrefixLen))
		}
	}
	return nil
}

// iidExample returns a with its first bits bits cleared, for a hint.
func iidExample(a netip.Addr, bits int) string {
	b := a.As16()
	for i := range bits {
		b[i/8] &^= 0x80 >> (i % 8)
	}
	return strings.TrimPrefix(netip.AddrFrom16(b).String(), "::")
}

// splitOptions splits a line that is an options list and nothing else
// (opt,opt="v, with spaces",...) into its options, as x/crypto returns
// them; ok is false if anything else is on the line.
func splitOptions(line string) (opts []string, ok bool) {
	start, quoted := 0, false
	for i := 0; i < len(line); i++ {
		switch c := line[i]; {
		case c == '\\' && quoted && i+1 < len(line) && line[i+1] == '"':
			i++
		case c == '"':
			quoted = !quoted
		case c == ',' && !quoted:
			opts = append(opts, line[start:i])
			start = i + 1
		case (c == ' ' || c == '\t') && !quoted:
			return nil, false
		}
	}
	if quoted {
		return nil, false
	}
	opts = append(opts, line[start:])
	for _, o := range opts {
		if o == "" {
			return nil, false
		}
	}
	return opts, true
}

// hasOption reports whether opts holds the option name (with a value).
func hasOption(opts []string, name string) bool {
	for _, o := range opts {
		if n, _, ok := strings.Cut(o, "="); ok && strings.EqualFold(n, name) {
			return true
		}
	}
	return false
}

// unquote strips OpenSSH option quotes; \" stands for a quote inside.
// A value without quotes (ttl=120) is taken as it is.
func unquote(v string) (string, error) {
	if !strings.HasPrefix(v, `"`) {
		if strings.Contains(v, `"`) {
			return "", errors.New("stray double quote")
		}
		return v, nil
	}
	if len(v) < 2 || v[len(v)-1] != '"' {
		return "", errors.New("unterminated double quote")
	}
	return strings.ReplaceAll(v[1:len(v)-1], `\"`, `"`), nil
}

// checkHost validates an RFC 1123 host name strictly inside one of the
// scope's zones, and not reserved, and returns it canonical.
func checkHost(h string, scope Scope) (string, error) {
	c := dnsname.Canonical(h)
	if err := dnsname.CheckHost(c); err != nil {
		return "", fmt.Errorf("host %q: %v", h, err)
	}
	z, ok := dnsname.Longest(c, scope.Zones, func(z string) string { return z })
	switch {
	case !ok:
		return "", fmt.Errorf("host %q is not inside a configured zone (%s)", h, strings.Join(scope.Zones, ", "))
	case c == z:
		return "", fmt.Errorf("host %q is the apex of zone %s: its records are the zone's own; give the key a name below it", h, z)
	}
	if why, ok := scope.Reserved[c]; ok {
		return "", fmt.Errorf("host %q is %s: a key could move it; give the key another name", h, why)
	}
	return c, nil
}

// checkSuffix validates the SUFFIX of a host="*.SUFFIX" pattern: a valid
// name, a configured zone or inside one, and returns it canonical.
func checkSuffix(suffix string, scope Scope) (string, error) {
	c := dnsname.Canonical(suffix)
	if err := dnsname.CheckHost(c); err != nil {
		return "", err
	}
	if _, ok := dnsname.Longest(c, scope.Zones, func(z string) string { return z }); !ok {
		return "", fmt.Errorf("%s is not a configured zone or inside one (%s)", c, strings.Join(scope.Zones, ", "))
	}
	return c, nil
}

// parseExpiry parses OpenSSH's YYYYMMDD[HHMM[SS]][Z]: local time unless Z.
func parseExpiry(s string) (time.Time, error) {
	loc := time.Local
	if strings.HasSuffix(s, "Z") || strings.HasSuffix(s, "z") {
		s, loc = s[:len(s)-1], time.UTC
	}
	layout := map[int]string{8: "20060102", 12: "200601021504", 14: "20060102150405"}[len(s)]
	if layout == "" {
		return time.Time{}, errors.New("want YYYYMMDD[HHMM[SS]][Z]")
	}
	t, err := time.ParseInLocation(layout, s, loc)
	if err != nil {
		return time.Time{}, errors.New("want YYYYMMDD[HHMM[SS]][Z], a real date")
	}
	return t, nil
}
