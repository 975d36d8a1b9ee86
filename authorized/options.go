package authorized

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// option is one option an authorized line may carry: its name (lower
// case), whether it takes a value, and what it does to the line's entry.
// Parsing, the errors for a missing or unwanted value, and the list of
// options in the error for an unknown one all come from options.
type option struct {
	name   string
	valued bool
	apply  func(e *Entry, value string, scope Scope, seen map[string]bool) error
}

// options are the options sshdyn accepts, in the order the error for an
// unknown one lists them.
var options []option

func init() {
	flag := func(set func(*Entry)) func(*Entry, string, Scope, map[string]bool) error {
		return func(e *Entry, _ string, _ Scope, _ map[string]bool) error { set(e); return nil }
	}
	nothing := flag(func(*Entry) {})
	options = []option{
		{"host", true, (*Entry).hostOption},
		{"ttl", true, func(e *Entry, v string, _ Scope, _ map[string]bool) error {
			if e.TTL != 0 {
				return errors.New("ttl given twice")
			}
			ttl, err := strconv.ParseUint(v, 10, 32)
			if err != nil || ttl < 1 || ttl > 604800 {
				return fmt.Errorf("ttl %q: want whole seconds from 1 to 604800", v)
			}
			e.TTL = uint32(ttl)
			return nil
		}},
		{"from", true, func(e *Entry, v string, _ Scope, _ map[string]bool) error {
			if e.From != nil {
				return errors.New("from given twice")
			}
			f, err := ParseFrom(v)
			if err != nil {
				return fmt.Errorf("from=%q: %v", v, err)
			}
			e.From = f
			return nil
		}},
		{"expiry-time", true, func(e *Entry, v string, _ Scope, _ map[string]bool) error {
			if !e.Expiry.IsZero() {
				return errors.New("expiry-time given twice")
			}
			t, err := parseExpiry(v)
			if err != nil {
				return fmt.Errorf("expiry-time=%q: %v", v, err)
			}
			e.Expiry = t
			return nil
		}},
		{"http-user", true, func(e *Entry, v string, s Scope, _ map[string]bool) error { return e.httpOption("http-user", v, s) }},
		{"http-password", true, func(e *Entry, v string, s Scope, _ map[string]bool) error { return e.httpOption("http-password", v, s) }},
		{"lan-host", true, (*Entry).lanHost},
		{"prefix-length", true, func(e *Entry, v string, _ Scope, _ map[string]bool) error {
			if e.PrefixLen != 0 {
				return errors.New("prefix-length given twice")
			}
			n, err := strconv.Atoi(v)
			if err != nil || n < 48 || n > 64 {
				return fmt.Errorf("prefix-length %q: want 48 to 64", v)
			}
			e.PrefixLen = n
			return nil
		}},
		{"iid", true, func(e *Entry, v string, _ Scope, _ map[string]bool) error {
			if e.IID.IsValid() {
				return errors.New("iid given twice")
			}
			a, err := netip.ParseAddr(v)
			if err != nil || !a.Is6() || a.Is4In6() || a.Zone() != "" || a.IsUnspecified() {
				return fmt.Errorf("iid %q: want the hosts' own interface ID as an IPv6 address, e.g. \"::211:32ff:fe12:3456\"", v)
			}
			if p, _ := a.Prefix(48); !p.Addr().IsUnspecified() {
				return fmt.Errorf("iid %q: an interface ID has its first 48 bits zero (it goes below a /48 to /64 prefix)", v)
			}
			e.IID = a
			return nil
		}},
		{"stale-after", true, func(e *Entry, v string, _ Scope, _ map[string]bool) error {
			if e.StaleAfter != nil {
				return errors.New("stale-after given twice")
			}
			d, err := time.ParseDuration(v)
			if err != nil || d < 0 {
				return fmt.Errorf("stale-after %q: want a duration, e.g. \"36h\" (\"0s\": never stale)", v)
			}
			e.StaleAfter = &d
			return nil
		}},
		{"notify", true, func(e *Entry, v string, s Scope, _ map[string]bool) error {
			if s.CheckNotify != nil {
				if err := s.CheckNotify(v); err != nil {
					return err
				}
			}
			e.Notify = append(e.Notify, v)
			return nil
		}},
		{"allow-private", false, flag(func(e *Entry) { e.AllowPrivate = true })},
		{"shared-hosts", false, flag(func(e *Entry) { e.SharedHosts = true })},
		{"no-acme", false, flag(func(e *Entry) { e.NoACME = true })},
		{"sshfp", false, flag(func(e *Entry) { e.SSHFP = true })},
		{"wildcard", false, flag(func(e *Entry) { e.Wildcard = true })},
		{"cert-authority", false, flag(func(e *Entry) { e.CA = true })},
		// OpenSSH's options that only take away: sshdyn grants none of
		// what they restrict anyway.
		{"restrict", false, nothing},
		{"no-pty", false, nothing},
		{"no-port-forwarding", false, nothing},
		{"no-agent-forwarding", false, nothing},
		{"no-x11-forwarding", false, nothing},
		{"no-user-rc", false, nothing},
	}
}

// OptionNames returns the names of the options a line may have, in
// lower case ("host", "allow-private", …): what the documentation must
// list.
func OptionNames() []string {
	names := make([]string, len(options))
	for i, o := range options {
		names[i] = o.name
	}
	return names
}

// optionNames lists the options for the error of an unknown one:
// "host=, ttl=, …, allow-private, …".
func optionNames() string {
	names := make([]string, len(options))
	for i, o := range options {
		names[i] = o.name
		if o.valued {
			names[i] += "="
		}
	}
	return strings.Join(names, ", ")
}

// option applies one option of a line to e; seen holds the hosts so far.
func (e *Entry) option(o string, scope Scope, seen map[string]bool) error {
	name, value, hasValue := strings.Cut(o, "=")
	lname := strings.ToLower(name)
	i := -1
	for j, opt := range options {
		if opt.name == lname {
			i = j
			break
		}
	}
	switch {
	case i < 0:
		return fmt.Errorf("option %q is not supported (sshdyn accepts %s)", name, optionNames())
	case options[i].valued && !hasValue:
		return fmt.Errorf("option %s needs a value", name)
	case !options[i].valued && hasValue:
		return fmt.Errorf("option %s takes no value", name)
	}
	if hasValue {
		v, err := unquote(value)
		if err != nil {
			return fmt.Errorf("option %s: %v", name, err)
		}
		value = v
	}
	return options[i].apply(e, value, scope, seen)
}

// hostOption applies host=: a host of the line, or on a cert-authority
// line host="*.SUFFIX", the names below SUFFIX its certificates may have.
func (e *Entry) hostOption(value string, scope Scope, seen map[string]bool) error {
	if strings.HasPrefix(value, "*.") {
		suffix, err := checkSuffix(value[2:], scope)
		if err != nil {
			return fmt.Errorf("host %q: %v", value, err)
		}
		e.Below = append(e.Below, suffix)
		return nil
	}
	h, err := checkHost(value, scope)
	if err != nil {
		return err
	}
	if seen[h] {
		return fmt.Errorf("host %q listed twice", h)
	}
	seen[h] = true
	e.Hosts = append(e.Hosts, h)
	return nil
}

// lanHost applies lan-host="NAME=IID"; seen holds the line's names.
func (e *Entry) lanHost(value string, scope Scope, seen map[string]bool) error {
	name, iid, ok := strings.Cut(value, "=")
	if !ok {
		return fmt.Errorf("lan-host %q: want NAME=IID, e.g. \"nas.dyn.example.com=::211:32ff:fe12:3456\"", value)
	}
	h, err := checkHost(name, scope)
	if err != nil {
		return fmt.Errorf("lan-host: %w", err)
	}
	if seen[h] {
		return fmt.Errorf("host %q listed twice", h)
	}
	seen[h] = true
	a, err := netip.ParseAddr(iid)
	if err != nil || !a.Is6() || a.Is4In6() || a.Zone() != "" {
		return fmt.Errorf("lan-host %s: interface ID %q is not an IPv6 address such as ::211:32ff:fe12:3456", h, iid)
	}
	if a.IsUnspecified() {
		return fmt.Errorf("lan-host %s: interface ID %s is all zero", h, iid)
	}
	e.LANHosts = append(e.LANHosts, LANHost{Name: h, IID: a})
	return nil
}

// MaxUserLen bounds an http-user name.
const MaxUserLen = 64

// httpOption applies http-user= or http-password=.
func (e *Entry) httpOption(name, value string, scope Scope) error {
	if name == "http-user" {
		if e.HTTPUser != "" {
			return errors.New("http-user given twice")
		}
		if value == "" || len(value) > MaxUserLen || strings.ContainsFunc(value, func(r rune) bool { return r <= ' ' || r > '~' || r == ':' }) {
			return fmt.Errorf("http-user %q: want 1 to %d printable ASCII characters, no space or colon", value, MaxUserLen)
		}
		e.HTTPUser = value
		return nil
	}
	if e.HTTPPassword != "" {
		return errors.New("http-password given twice")
	}
	cost, err := bcrypt.Cost([]byte(value))
	if err != nil {
		return errors.New(`http-password is not a bcrypt hash: make one with "sshdyn passwd" (never the password itself)`)
	}
	low := scope.MinPasswordCost
	if low == 0 {
		low = PasswordCost
	}
	if cost < low || cost > MaxPasswordCost {
		return fmt.Errorf(`http-password has bcrypt cost %d: want %d to %d; make one with "sshdyn passwd" (cost %d)`, cost, low, MaxPasswordCost, PasswordCost)
	}
	e.HTTPPassword = value
	return nil
}
