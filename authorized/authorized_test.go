package authorized

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
	"golang.org/x/crypto/ssh"

	"github.com/sshdyn/sshdyn/internal/watch"
)

var zones = Scope{Zones: []string{"dyn.example.com"}, MinPasswordCost: bcrypt.MinCost}

// testKey returns a deterministic ed25519 public key and its
// authorized_keys text.
func testKey(t testing.TB, seed byte) (ssh.PublicKey, string) {
	t.Helper()
	priv := ed25519.NewKeyFromSeed(make32(seed))
	pub, err := ssh.NewPublicKey(priv.Public())
	if err != nil {
		t.Fatal(err)
	}
	return pub, strings.TrimSpace(string(ssh.MarshalAuthorizedKey(pub)))
}

func make32(b byte) []byte {
	s := make([]byte, 32)
	for i := range s {
		s[i] = b
	}
	return s
}

func TestParse(t *testing.T) {
	ka, a := testKey(t, 1)
	kb, b := testKey(t, 2)
	file := "# sshdyn hosts\n\n" +
		`host="home.dyn.example.com" ` + a + " home-server\n" +
		`restrict,HOST="NAS.dyn.example.com.",host="cam.dyn.example.com",ttl=120,no-pty ` + b + " nas box\n"
	m, err := Parse(strings.NewReader(file), "keys", zones)
	if err != nil {
		t.Fatal(err)
	}
	if m.Len() != 2 {
		t.Fatalf("Len = %d", m.Len())
	}
	e, ok := m.Lookup(ka)
	if !ok || len(e.Hosts) != 1 || e.Hosts[0] != "home.dyn.example.com" || e.TTL != 0 || e.Line != 3 || e.Comment != "home-server" {
		t.Errorf("entry a = %+v", e)
	}
	e, ok = m.Lookup(kb)
	if !ok || strings.Join(e.Hosts, " ") != "nas.dyn.example.com cam.dyn.example.com" || e.TTL != 120 || e.Line != 4 {
		t.Errorf("entry b = %+v", e)
	}
	if !e.Owns("NAS.dyn.example.com.") || e.Owns("home.dyn.example.com") {
		t.Error("Owns is wrong")
	}
	kc, _ := testKey(t, 3)
	if _, ok := m.Lookup(kc); ok {
		t.Error("unknown key found")
	}
}

func TestParseErrors(t *testing.T) {
	_, a := testKey(t, 1)
	_, b := testKey(t, 2)
	cases := []struct{ name, line, want string }{
		{"garbage", "not a key", "no valid public key"},
		{"truncated key", `host="h.dyn.example.com" ` + a[:40], "no valid public key"},
		{"no host", a, "no host="},
		{"unknown option", `host="h.dyn.example.com",color="blue" ` + a, `option "color" is not supported`},
		{"command refused", `command="/bin/sh",host="h.dyn.example.com" ` + a, `option "command" is not supported`},
		{"pty refused", `pty,host="h.dyn.example.com" ` + a, `option "pty" is not supported`},
		{"permitopen refused", `permitopen="a:1",host="h.dyn.example.com" ` + a, `"permitopen" is not supported`},
		{"environment refused", `environment="A=B",host="h.dyn.example.com" ` + a, `"environment" is not supported`},
		{"outside zone", `host="h.example.org" ` + a, "not inside a configured zone"},
		{"suffix trick", `host="evildyn.example.com" ` + a, "not inside a configured zone"},
		{"bad label", `host="-h.dyn.example.com" ` + a, "hyphen"},
		{"underscore", `host="h_1.dyn.example.com" ` + a, "not allowed"},
		{"wildcard", `host="*.dyn.example.com" ` + a, "is a pattern, for a cert-authority line only"},
		{"pattern outside the zones", `cert-authority,host="*.example.org" ` + a, "example.org is not a configured zone or inside one"},
		{"cert-authority with http-user", `cert-authority,host="*.dyn.example.com",http-user="u",http-password="$2a$04$KIK2dADGA0nP3K6JRTIkDOoTRgaoY7ZdP8zUCLbtpw0uNh1BbTEcu" ` + a, "cannot have http-user"},
		{"cert-authority with a value", `cert-authority="x",host="*.dyn.example.com" ` + a, "takes no value"},
		{"empty label", `host="a..dyn.example.com" ` + a, "empty label"},
		{"stray quote", `host=h.dyn"example.com ` + a, "no valid public key"},
		{"host twice", `host="h.dyn.example.com",host="H.dyn.example.com" ` + a, "listed twice"},
		{"ttl zero", `host="h.dyn.example.com",ttl="0" ` + a, "ttl"},
		{"ttl junk", `host="h.dyn.example.com",ttl="1h" ` + a, "ttl"},
		{"restrict with value", `restrict="x",host="h.dyn.example.com" ` + a, "takes no value"},
		// Audit, issue 22: names whose records are the zone's own.
		{"zone apex", `host="dyn.example.com." ` + a, `host "dyn.example.com." is the apex of zone dyn.example.com`},
		{"name server", `host="NS.dyn.example.com" ` + a, `host "NS.dyn.example.com" is the target of the NS record of dyn.example.com`},
		{"mail server", `host="h.dyn.example.com",host="mx.dyn.example.com" ` + a, "is the target of the MX record"},
		{"lan-host names the name server", `host="h.dyn.example.com",lan-host="ns.dyn.example.com=::1" ` + a, "lan-host: host \"ns.dyn.example.com\" is the target of the NS record"},
		// One host, two keys: either could overwrite the other's address.
		{"host of another line", `host="ok.dyn.example.com" ` + a, `host "ok.dyn.example.com" is also on line 1: either line could overwrite the other's address; list it on one line, or add shared-hosts to both`},
		{"shared-hosts on one line only", `shared-hosts,host="ok.dyn.example.com" ` + a, "is also on line 1"},
		{"shared-hosts with a value", `shared-hosts="yes",host="h.dyn.example.com" ` + a, "takes no value"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := `host="ok.dyn.example.com" ` + b + "\n" + tc.line + "\n"
			_, err := Parse(strings.NewReader(in), "/etc/sshdyn/keys", reserved)
			var le *LineError
			if !errors.As(err, &le) || le.Line != 2 || le.File != "/etc/sshdyn/keys" {
				t.Fatalf("err = %v, want a LineError for line 2", err)
			}
			if !strings.HasPrefix(err.Error(), "/etc/sshdyn/keys:2: ") || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %q, want file:line and %q", err, tc.want)
			}
		})
	}
}

// reserved is zones with the names a zone's NS and MX records point at.
var reserved = Scope{Zones: zones.Zones, MinPasswordCost: zones.MinPasswordCost, Reserved: map[string]string{
	"ns.dyn.example.com": "the target of the NS record of dyn.example.com",
	"mx.dyn.example.com": "the target of the MX record of dyn.example.com",
}}

// TestSharedHosts: a host may be on several lines when every one of them
// has shared-hosts.
func TestSharedHosts(t *testing.T) {
	ka, a := testKey(t, 1)
	kb, b := testKey(t, 2)
	in := `shared-hosts,host="both.dyn.example.com",host="a.dyn.example.com" ` + a + "\n" + `host="both.dyn.example.com",shared-hosts ` + b + "\n"
	m, err := Parse(strings.NewReader(in), "keys", zones)
	if err != nil {
		t.Fatal(err)
	}
	ea, _ := m.Lookup(ka)
	eb, _ := m.Lookup(kb)
	if !ea.Owns("both.dyn.example.com") || !eb.Owns("both.dyn.example.com") || eb.Owns("a.dyn.example.com") {
		t.Fatalf("hosts: %v and %v", ea.Hosts, eb.Hosts)
	}
}

func TestParseReportsEveryBadLine(t *testing.T) {
	_, a := testKey(t, 1)
	in := `host="a.dyn.example.com" ` + a + "\nbad\n" + `host="b.dyn.example.com" ` + a + " same key again\n"
	_, err := Parse(strings.NewReader(in), "keys", zones)
	if err == nil || !strings.Contains(err.Error(), "keys:2:") || !strings.Contains(err.Error(), "keys:3: key already listed on line 1") {
		t.Fatalf("err = %v", err)
	}
}

// TestReloadWithBadLines: a reload that finds bad lines uses the file's
// good lines, keeps the previous options of a key whose line broke, and
// revokes the keys the file no longer lists (audit L3: a removal beside a
// broken line takes effect).
func TestReloadWithBadLines(t *testing.T) {
	ka, a := testKey(t, 1)
	kb, b := testKey(t, 2)
	hash := bcryptHash(t)
	lineA := `host="a.dyn.example.com" ` + a
	lineB := `host="b.dyn.example.com" ` + b
	router := `http-user="r",http-password="` + hash + `",host="r.dyn.example.com"`
	initial := lineA + "\n" + lineB + "\n" + router + "\n"
	cases := []struct {
		name    string
		edit    string
		a, b, r string // the host each identity has afterwards; "" if revoked
		kept    int
		removed int
		wantErr string
	}{
		{"a bad line added", initial + "broken line\n", "a", "b", "r", 0, 0, "keys:4: no valid public key"},
		{"a removed beside a bad line", lineB + "\nbroken line\n" + router + "\n", "", "b", "r", 0, 1, "keys:2:"},
		{"a's line broken by an edit", `host="a2.dyn.example.com",colour="red" ` + a + "\n" + lineB + "\n" + router + "\n", "a", "b", "r", 1, 0, `keys:1: option "colour"`},
		{"a's key cut short", lineA[:60] + "\n" + lineB + "\n" + router + "\n", "", "b", "r", 0, 1, "keys:1:"},
		{"the router's line broken", lineA + "\n" + lineB + "\n" + `http-user="r",http-password="plain",host="r2.dyn.example.com"` + "\n", "a", "b", "r", 1, 0, "keys:3: http-password is not a bcrypt hash"},
		{"b's line broken, the router's removed", lineA + "\n" + `host="x.example.org" ` + b + "\n", "a", "b", "", 1, 1, "keys:2: host \"x.example.org\" is not inside"},
		{"emptied", "", "", "", "", 0, 0, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f, write := openTemp(t, initial)
			write(tc.edit)
			err := f.Reload()
			var re *ReloadError
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("Reload: %v", err)
			case tc.wantErr != "" && (!errors.As(err, &re) || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("Reload: %v; want a ReloadError with %q", err, tc.wantErr)
			case re != nil && (re.Kept != tc.kept || re.Removed != tc.removed):
				t.Errorf("kept %d, removed %d; want %d, %d", re.Kept, re.Removed, tc.kept, tc.removed)
			}
			for _, c := range []struct {
				who  string
				e    *Entry
				ok   bool
				host string
			}{
				{"a", lookup(f, ka), true, tc.a},
				{"b", lookup(f, kb), true, tc.b},
				{"r", nil, false, tc.r},
			} {
				e := c.e
				if !c.ok {
					e, _ = f.LookupUser("r")
				}
				switch {
				case c.host == "" && e != nil:
					t.Errorf("%s still has %v: not revoked", c.who, e.Hosts)
				case c.host != "" && (e == nil || !e.Owns(c.host+".dyn.example.com") || len(e.Hosts) != 1):
					t.Errorf("%s has %v, want [%s.dyn.example.com]", c.who, entryHosts(e), c.host)
				}
			}
		})
	}
}

func bcryptHash(t *testing.T) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte("secret"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return string(h)
}

func lookup(f *File, k ssh.PublicKey) *Entry {
	e, _ := f.Lookup(k)
	return e
}

func entryHosts(e *Entry) []string {
	if e == nil {
		return nil
	}
	return e.Hosts
}

func FuzzParse(f *testing.F) {
	_, a := testKey(f, 1)
	f.Add(`host="home.dyn.example.com" ` + a + " c\n")
	f.Add(`restrict,host="a.dyn.example.com",ttl=60 ` + a)
	f.Add("# comment\n\n" + a)
	f.Fuzz(func(t *testing.T, in string) {
		m, err := Parse(strings.NewReader(in), "fuzz", zones)
		if err != nil {
			return
		}
		for _, e := range m.byKey {
			if len(e.Hosts) == 0 {
				t.Fatalf("entry without hosts accepted from %q", in)
			}
			for _, h := range e.Hosts {
				if _, err := checkHost(h, zones); err != nil {
					t.Fatalf("bad host %q accepted: %v", h, err)
				}
			}
		}
	})
}

func TestKeyOptionParsing(t *testing.T) {
	k, a := testKey(t, 1)
	in := `from="198.51.100.0/24,2001:db8::/32,!198.51.100.7",expiry-time="20300101Z",allow-private,host="h.dyn.example.com" ` + a
	m, err := Parse(strings.NewReader(in), "keys", zones)
	if err != nil {
		t.Fatal(err)
	}
	e, _ := m.Lookup(k)
	if !e.AllowPrivate || e.Expiry != time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC) {
		t.Errorf("entry = %+v", e)
	}
	now := time.Date(2029, 1, 1, 0, 0, 0, 0, time.UTC)
	for addr, ok := range map[string]bool{
		"198.51.100.1": true, "::ffff:198.51.100.1": true, "2001:db8::5": true,
		"198.51.100.7": false, "192.0.2.1": false, "2001:db9::1": false,
	} {
		if err := e.Permits(netip.MustParseAddr(addr), now); (err == nil) != ok {
			t.Errorf("Permits(%s) = %v, want allowed %v", addr, err, ok)
		}
	}
	if err := e.Permits(netip.MustParseAddr("198.51.100.1"), e.Expiry); err == nil || !strings.Contains(err.Error(), "expired") {
		t.Errorf("at expiry: %v", err)
	}
}

func TestKeyOptionErrors(t *testing.T) {
	_, a := testKey(t, 1)
	for _, tc := range []struct{ opt, want string }{
		{`from="*.example.com"`, "host names and wildcards"},
		{`from="198.51.100.0/33"`, "want an address or CIDR"},
		{`from="198.51.100.1/24"`, "host bits set"},
		{`from="!198.51.100.7"`, "only negated"},
		{`from="198.51.100.1,"`, "empty pattern"},
		{`expiry-time="2030"`, "YYYYMMDD"},
		{`expiry-time="20301301"`, "a real date"},
		{`expiry-time="203001011200X"`, "YYYYMMDD"},
		{`allow-private="yes"`, "takes no value"},
		{`from`, "needs a value"},
	} {
		t.Run(tc.opt, func(t *testing.T) {
			_, err := Parse(strings.NewReader(tc.opt+`,host="h.dyn.example.com" `+a), "keys", zones)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "keys:1: ") {
				t.Errorf("err = %v, want keys:1: ... %q", err, tc.want)
			}
		})
	}
}

func TestWatchReloadsOnChange(t *testing.T) {
	ka, a := testKey(t, 1)
	kb, b := testKey(t, 2)
	f, write := openTemp(t, `host="a.dyn.example.com" `+a+"\n")
	reports := make(chan error, 10)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// As serve watches it: one watcher for every file reloaded on change.
	var w watch.Watcher
	w.Add(func(string) { reports <- f.Reload() }, f.Path())
	go w.Run(ctx, 5*time.Millisecond)
	next := func() error {
		t.Helper()
		select {
		case err := <-reports:
			return err
		case <-time.After(5 * time.Second):
			t.Fatal("no reload after the file changed")
			return nil
		}
	}

	write(`host="a.dyn.example.com" ` + a + "\n" + `host="b.dyn.example.com" ` + b + "\n")
	if err := next(); err != nil {
		t.Fatal(err)
	}
	if _, ok := f.Lookup(kb); !ok {
		t.Fatal("added key not seen after the file changed")
	}
	write(`host="a.dyn.example.com" ` + a + "\n" + `host="b.dyn.example.com" ` + b + "\nbroken\n")
	if err := next(); err == nil {
		t.Fatal("reload with a broken line reported no error")
	}
	if _, ok := f.Lookup(ka); !ok || f.Map().Len() != 2 {
		t.Fatal("good lines lost after a broken edit")
	}
	select {
	case err := <-reports:
		t.Fatalf("a broken version was reported twice: %v", err)
	case <-time.After(50 * time.Millisecond):
	}
}

// TestReloadIsAtomic: readers that loop while the file is rewritten only
// ever see a whole map, the old one or the new one.
func TestReloadIsAtomic(t *testing.T) {
	ka, a := testKey(t, 1)
	kb, b := testKey(t, 2)
	path := filepath.Join(t.TempDir(), "keys")
	version := func(v string) string {
		return `host="a` + v + `.dyn.example.com" ` + a + "\n" + `host="b` + v + `.dyn.example.com" ` + b + "\n"
	}
	if err := os.WriteFile(path, []byte(version("1")), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := Open(path, zones)
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	done := make(chan string)
	for r := 0; r < 4; r++ {
		go func() {
			for {
				select {
				case <-stop:
					done <- ""
					return
				default:
				}
				m := f.Map()
				ea, _ := m.Lookup(ka)
				eb, _ := m.Lookup(kb)
				if ea == nil || eb == nil || ea.Hosts[0][1:] != eb.Hosts[0][1:] {
					done <- "half-applied map"
					return
				}
			}
		}()
	}
	for i := 0; i < 200; i++ {
		tmp := path + ".tmp"
		os.WriteFile(tmp, []byte(version(string(rune('1'+i%2)))), 0o600)
		os.Rename(tmp, path)
		if err := f.Reload(); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	for r := 0; r < 4; r++ {
		if msg := <-done; msg != "" {
			t.Fatal(msg)
		}
	}
}

// openTemp opens an authorized file with the given content in a temporary
// directory; write replaces its content.
func openTemp(t *testing.T, content string) (*File, func(string)) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "keys")
	write := func(s string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(content)
	f, err := Open(path, zones)
	if err != nil {
		t.Fatal(err)
	}
	return f, write
}

// TestHTTPCredentials: http-user and http-password on a key's line, or
// alone on a router's line with no key; user names are unique.
func TestHTTPCredentials(t *testing.T) {
	ka, a := testKey(t, 1)
	hash, err := bcrypt.GenerateFromPassword([]byte("secret"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	cred := func(user string) string { return `http-user="` + user + `",http-password="` + string(hash) + `"` }
	in := `host="a.dyn.example.com",` + cred("both") + " " + a + "\n" +
		cred("router") + `,host="r.dyn.example.com",ttl=120` + "\n"
	m, err := Parse(strings.NewReader(in), "keys", zones)
	if err != nil {
		t.Fatal(err)
	}
	if m.Len() != 2 {
		t.Fatalf("%d entries, want 2", m.Len())
	}
	both, ok := m.LookupUser("both")
	if k, _ := m.Lookup(ka); !ok || k != both || both.HTTPPassword != string(hash) {
		t.Errorf("the key's line is not the user's: %+v", both)
	}
	r, ok := m.LookupUser("router")
	if !ok || r.Key != nil || r.TTL != 120 || !r.Owns("r.dyn.example.com") || r.Line != 2 {
		t.Fatalf("router line = %+v", r)
	}
	if r.ID() == both.ID() || !strings.HasPrefix(r.ID(), "http-user:") || both.ID() != string(ka.Marshal()) {
		t.Errorf("IDs %q and %q", r.ID(), both.ID())
	}
	if _, ok := m.LookupUser("nobody"); ok {
		t.Error("unknown user found")
	}

	for _, tc := range []struct{ name, line, want string }{
		{"same user twice", cred("both") + `,host="x.dyn.example.com"`, `http-user "both" already on line 1`},
		{"user without password", `http-user="u",host="x.dyn.example.com"`, "go together"},
		{"password without user", `http-password="` + string(hash) + `",host="x.dyn.example.com" ` + a, "go together"},
		{"plain password", `http-user="u",http-password="secret",host="x.dyn.example.com"`, "not a bcrypt hash"},
		{"colon in user", cred("a:b") + `,host="x.dyn.example.com"`, "no space or colon"},
		{"router line without host", cred("u"), "no host="},
		{"router line with a comment", cred("u") + `,host="x.dyn.example.com" my router`, "no valid public key"},
		{"router line, unknown option", cred("u") + `,host="x.dyn.example.com",color="red"`, `option "color" is not supported`},
		{"options only, no user", `host="x.dyn.example.com",ttl=60`, "no valid public key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse(strings.NewReader(cred("both")+`,host="a.dyn.example.com"`+"\n"+tc.line+"\n"), "keys", zones)
			if err == nil || !strings.Contains(err.Error(), "keys:2: ") || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want keys:2: … %q", err, tc.want)
			}
		})
	}
}

// TestLANHostOptions: lan-host="NAME=IID" and prefix-length=, with their
// load errors; a LAN host has one owner in the file.
func TestLANHostOptions(t *testing.T) {
	_, a := testKey(t, 1)
	_, b := testKey(t, 2)
	m, err := Parse(strings.NewReader(`host="home.dyn.example.com",lan-host="NAS.dyn.example.com.=::211:32ff:fe12:3456",lan-host="cam.dyn.example.com=::1:0:0:0:10",prefix-length=56 `+a+"\n"), "keys", zones)
	if err != nil {
		t.Fatal(err)
	}
	e := m.byKey[string(mustKey(t, a).Marshal())]
	if e.PrefixLen != 56 || len(e.LANHosts) != 2 || e.LANHosts[0].Name != "nas.dyn.example.com" || e.LANHosts[1].IID != netip.MustParseAddr("::1:0:0:0:10") {
		t.Fatalf("entry = %+v", e)
	}
	if e.Owns("nas.dyn.example.com") {
		t.Error("a LAN host counts as a host the key updates by name")
	}
	m, _ = Parse(strings.NewReader(`host="home.dyn.example.com",lan-host="nas.dyn.example.com=::1" `+a+"\n"), "keys", zones)
	if e := m.byKey[string(mustKey(t, a).Marshal())]; e.PrefixLen != DefaultPrefixLen {
		t.Errorf("default prefix length %d", e.PrefixLen)
	}

	for _, tc := range []struct{ name, line, want string }{
		{"IID with prefix bits", `host="h.dyn.example.com",lan-host="n.dyn.example.com=2001:db8::1" ` + a, "has bits set in the first 64"},
		{"IID beyond a /60", `host="h.dyn.example.com",lan-host="n.dyn.example.com=::1f:0:0:0:1",prefix-length=60 ` + a, "has bits set in the first 60"},
		{"all-zero IID", `host="h.dyn.example.com",lan-host="n.dyn.example.com=::" ` + a, "all zero"},
		{"IPv4 IID", `host="h.dyn.example.com",lan-host="n.dyn.example.com=10.0.0.1" ` + a, "not an IPv6 address"},
		{"no IID", `host="h.dyn.example.com",lan-host="n.dyn.example.com" ` + a, "want NAME=IID"},
		{"outside the zones", `host="h.dyn.example.com",lan-host="n.example.org=::1" ` + a, "not inside a configured zone"},
		{"also a host", `host="h.dyn.example.com",lan-host="h.dyn.example.com=::1" ` + a, "listed twice"},
		{"prefix length 40", `host="h.dyn.example.com",lan-host="n.dyn.example.com=::1",prefix-length=40 ` + a, "want 48 to 64"},
		{"prefix length alone", `host="h.dyn.example.com",prefix-length=56 ` + a, "prefix-length without lan-host"},
		{"another line's host", `host="h.dyn.example.com",lan-host="ok.dyn.example.com=::1" ` + a, `lan-host "ok.dyn.example.com" is also on line 1`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse(strings.NewReader(`host="ok.dyn.example.com" `+b+"\n"+tc.line+"\n"), "keys", zones)
			if err == nil || !strings.Contains(err.Error(), "keys:2: ") || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want keys:2: … %q", err, tc.want)
			}
		})
	}
	// The other way round: a LAN host first, then another line's host.
	_, err = Parse(strings.NewReader(`host="h.dyn.example.com",lan-host="n.dyn.example.com=::1" `+a+"\n"+`host="n.dyn.example.com" `+b+"\n"), "keys", zones)
	if err == nil || !strings.Contains(err.Error(), `keys:2: host "n.dyn.example.com" is a lan-host on line 1`) {
		t.Errorf("host after a lan-host: %v", err)
	}
}

func mustKey(t *testing.T, line string) ssh.PublicKey {
	t.Helper()
	k, _, _, _, err := ssh.ParseAuthorizedKey([]byte(line))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// TestFromMappedPrefixes: a from= prefix written as IPv4-mapped IPv6 is
// the IPv4 prefix it covers, so a negation written that way excludes
// (audit finding L5); a ::ffff: prefix shorter than /96 is refused.
func TestFromMappedPrefixes(t *testing.T) {
	f, err := ParseFrom("0.0.0.0/0,!::ffff:198.51.100.0/120")
	if err != nil {
		t.Fatal(err)
	}
	for addr, want := range map[string]bool{"198.51.100.7": false, "::ffff:198.51.100.7": false, "198.51.101.7": true} {
		if got := f.Match(netip.MustParseAddr(addr)); got != want {
			t.Errorf("Match(%s) = %v, want %v", addr, got, want)
		}
	}
	if _, err := ParseFrom("::ffff:0:0/80"); err == nil {
		t.Error("a ::ffff: prefix shorter than /96 was accepted")
	}
}

// TestCertificateAuthority: a cert-authority line's certificates get the
// principals its host= values allow, and nothing else; the CA's key does
// not log in by itself.
func TestCertificateAuthority(t *testing.T) {
	caKey, caLine := testKey(t, 1)
	_, other := testKey(t, 2)
	userPub, _ := testKey(t, 3)
	in := `cert-authority,host="*.fleet.dyn.example.com",host="x.dyn.example.com",ttl=30 ` + caLine + "\n" +
		`host="taken.fleet.dyn.example.com" ` + other + "\n"
	m, err := Parse(strings.NewReader(in), "keys", reserved)
	if err != nil {
		t.Fatal(err)
	}
	cert := func(signer ssh.PublicKey, principals ...string) *ssh.Certificate {
		return &ssh.Certificate{Key: userPub, CertType: ssh.UserCert, ValidPrincipals: principals, SignatureKey: signer, KeyId: "id"}
	}
	c := cert(caKey, "a.fleet.dyn.example.com", "X.dyn.example.com.", "b.dyn.example.com", "fleet.dyn.example.com",
		"taken.fleet.dyn.example.com", "bad_name.fleet.dyn.example.com", "a.fleet.dyn.example.com")
	e, ignored, err := m.Certificate(c)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(e.Hosts, []string{"a.fleet.dyn.example.com", "x.dyn.example.com"}) || e.TTL != 30 || e.Cert != c || e.CA {
		t.Errorf("entry %+v", e)
	}
	if len(ignored) != 4 || !strings.Contains(ignored[2], "a host of line 2") || !strings.Contains(ignored[0], "not allowed by line 1") {
		t.Errorf("ignored %q", ignored)
	}
	if got, ok := m.Lookup(c); !ok || !slices.Equal(got.Hosts, e.Hosts) {
		t.Errorf("Lookup(certificate) = %v, %v", got, ok)
	}
	if e.ID() != string(userPub.Marshal()) {
		t.Error("a certificate's identity is not its key's")
	}
	if _, ok := m.Lookup(caKey); ok {
		t.Error("the CA key logs in as a plain key")
	}
	if !m.Authority(caKey) || m.Authority(userPub) {
		t.Error("Authority is wrong")
	}
	if _, _, err := m.Certificate(cert(caKey, "b.dyn.example.com")); err == nil || !strings.Contains(err.Error(), "no principal that line 1 allows") {
		t.Errorf("no usable principal: %v", err)
	}
	if _, _, err := m.Certificate(cert(userPub, "a.fleet.dyn.example.com")); err == nil || !strings.Contains(err.Error(), "a CA no cert-authority line trusts") {
		t.Errorf("untrusted CA: %v", err)
	}
}

// TestPasswordCost: audit finding H6. An http-password is a bcrypt hash
// of cost PasswordCost to MaxPasswordCost; a cheaper one made users
// enumerable by timing (and is quick to crack), a dearer one is CPU any
// stranger can make the front spend.
func TestPasswordCost(t *testing.T) {
	h, err := bcrypt.GenerateFromPassword([]byte("secret"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	withCost := func(c int) string { return strings.Replace(string(h), "$04$", fmt.Sprintf("$%02d$", c), 1) }
	for _, c := range []struct {
		cost int
		want string // "" if accepted
	}{{5, "bcrypt cost 5: want 12 to 14"}, {11, "bcrypt cost 11"}, {12, ""}, {14, ""}, {15, "bcrypt cost 15"}, {31, "bcrypt cost 31"}} {
		line := `http-user="u",http-password="` + withCost(c.cost) + `",host="x.dyn.example.com"`
		_, err := Parse(strings.NewReader(line+"\n"), "keys", Scope{Zones: zones.Zones})
		if c.want == "" && err != nil || c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "keys:1: ")) {
			t.Errorf("cost %d: %v, want %q", c.cost, err, c.want)
		}
	}
}
