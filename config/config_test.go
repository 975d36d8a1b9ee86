package config

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sshdyn/sshdyn/update"
)

const good = `
listen = ["0.0.0.0:2222", "[::]:2222"]
host_key = "/var/lib/sshdyn/host_ed25519"
authorized_keys = "/etc/sshdyn/authorized_keys"
allow_private = false

[[zone]]
name = "Dyn.Example.com."
primary = "127.0.0.1"
tsig_key = "/etc/sshdyn/tsig.key"
ttl = 120
`

// libdns is a good PowerDNS API zone, for cases to add to.
const libdns = "[[zone]]\nname = \"d.example\"\nbackend = \"libdns\"\nprovider = \"powerdns\"\napi_key_file = \"/k\"\n"

func TestParse(t *testing.T) {
	c, err := Parse([]byte(good), "sshdyn.toml")
	if err != nil {
		t.Fatal(err)
	}
	z := c.Zones[0]
	if z.Name != "dyn.example.com" || z.Primary != "127.0.0.1:53" || z.TTL != 120 || z.Timeout.Duration != update.DefaultTimeout {
		t.Errorf("zone = %+v", z)
	}
	if c.LoginTimeout.Duration != 10*time.Second || len(c.Listen) != 2 {
		t.Errorf("config = %+v", c)
	}
}

const embedded = `dns_listen = ["0.0.0.0:5353", "[::]:5353"]
[[zone]]
name = "dyn.example.com"
file = "dyn.example.com.zone"
tsig_key = "tsig.key"
`

func TestParseACME(t *testing.T) {
	c, err := Parse([]byte(good+"acme = true\nwait_for = [\"192.0.2.53\", \"[2001:db8::53]:5353\"]\n"), "sshdyn.toml")
	if err != nil {
		t.Fatal(err)
	}
	z := c.Zones[0]
	if !z.ACME || z.ACMETTL != 60 || z.WaitTimeout.Duration != time.Minute || len(z.WaitFor) != 2 || z.WaitFor[0] != "192.0.2.53:53" || z.WaitFor[1] != "[2001:db8::53]:5353" {
		t.Errorf("zone = %+v", z)
	}
	c, err = Parse([]byte(good), "sshdyn.toml")
	if err != nil || c.Zones[0].ACME {
		t.Errorf("acme is on by default: %+v, %v", c.Zones[0], err)
	}
}

func TestParseEmbedded(t *testing.T) {
	c, err := Parse([]byte(embedded+"allow_transfer = [\"192.0.2.53\", \"2001:db8::/64\"]\nnotify = [\"192.0.2.53\", \"[2001:db8::53]:5300\"]\nupdate_types = [\"a\", \"TXT\"]\njournal_limit = 4096\nzonefile_sync = \"30s\"\n"), "f.toml")
	if err != nil {
		t.Fatal(err)
	}
	z := c.Zones[0]
	if !z.Embedded() || z.Primary != "127.0.0.1:5353" {
		t.Errorf("zone %+v: want embedded, its updates sent to 127.0.0.1:5353", z)
	}
	if z.JournalLimit != 4096 || z.ZonefileSync.Duration != 30*time.Second {
		t.Errorf("journal_limit %d, zonefile_sync %v", z.JournalLimit, z.ZonefileSync)
	}
	if p := z.TransferPrefixes(); len(p) != 2 || p[0].String() != "192.0.2.53/32" || p[1].String() != "2001:db8::/64" {
		t.Errorf("allow_transfer = %v", p)
	}
	if len(z.Notify) != 2 || z.Notify[0] != "192.0.2.53:53" || z.Notify[1] != "[2001:db8::53]:5300" {
		t.Errorf("notify = %v", z.Notify)
	}
	if ts := z.Types(); len(ts) != 2 || ts[0] != 1 || ts[1] != 16 {
		t.Errorf("update types = %v, want A (1) and TXT (16)", ts)
	}
	d, _ := Parse([]byte(embedded), "f.toml")
	if ts := d.Zones[0].Types(); len(ts) != 2 || ts[0] != 1 || ts[1] != 28 {
		t.Errorf("default update types = %v, want A and AAAA", ts)
	}
	if d.Zones[0].Signing() != nil {
		t.Error("signed without dnssec = true")
	}
	s, err := Parse([]byte(embedded+"dnssec = true\ndnssec_algorithm = \"ed25519\"\ndnssec_signature_validity = \"10d\"\ndnssec_signature_refresh = \"3d\"\n"), "f.toml")
	if err != nil {
		t.Fatal(err)
	}
	if g := s.Zones[0].Signing(); g == nil || g.Algorithm != 15 || g.Validity != 240*time.Hour || g.Refresh != 72*time.Hour {
		t.Errorf("signing = %+v", g)
	}
}

func TestParseSSHAlgorithms(t *testing.T) {
	c, err := Parse([]byte("ssh_key_exchanges = [\"curve25519-sha256\", \"diffie-hellman-group14-sha256\"]\nssh_ciphers = [\"aes128-ctr\", \"aes128-cbc\"]\nssh_macs = [\"hmac-sha2-256\"]\n"+good[1:]), "f.toml")
	if err != nil {
		t.Fatal(err)
	}
	if len(c.SSHKeyExchanges) != 2 || c.SSHCiphers[1] != "aes128-cbc" || c.SSHMACs[0] != "hmac-sha2-256" {
		t.Errorf("algorithms = %v %v %v", c.SSHKeyExchanges, c.SSHCiphers, c.SSHMACs)
	}
}

func TestParseHTTP(t *testing.T) {
	for _, in := range []string{
		"http_listen = [\"127.0.0.1:8080\", \"[::1]:8080\"]\ntrusted_proxies = [\"127.0.0.1\", \"10.0.0.0/8\"]\n",
		"http_listen = [\"0.0.0.0:443\"]\ntls_cert = \"c.pem\"\ntls_key = \"k.pem\"\n",
		"http_listen = [\"0.0.0.0:80\"]\nhttp_insecure = true\n",
	} {
		c, err := Parse([]byte(in+good[1:]), "f.toml")
		if err != nil {
			t.Errorf("%q: %v", in, err)
			continue
		}
		if len(c.HTTPListen) == 0 {
			t.Errorf("%q: no http_listen", in)
		}
	}
	c, _ := Parse([]byte("trusted_proxies = [\"127.0.0.1\", \"10.1.2.3/8\"]\n"+good[1:]), "f.toml")
	if ps := c.TrustedPrefixes(); len(ps) != 2 || ps[0].String() != "127.0.0.1/32" || ps[1].String() != "10.0.0.0/8" {
		t.Errorf("trusted prefixes = %v", ps)
	}
}

func TestParseErrors(t *testing.T) {
	cases := []struct{ name, in, want string }{
		{"unknown key", "listen = [\":22\"]\nlisten_adress = 1\n", "f.toml:2: unknown key \"listen_adress\""},
		{"unknown zone key", good + "primray = \"x\"\n", "f.toml:12: unknown key \"zone.primray\""},
		{"syntax", "listen = [\n", "f.toml:"},
		{"wrong type", "allow_private = \"yes\"\n" + good[1:], "f.toml:1:"},
		{"no zone", "listen = [\":22\"]\n", "no [[zone]]"},
		{"no key", "[[zone]]\nname = \"d.example\"\nprimary = \"127.0.0.1:53\"\n", "tsig_key is needed"},
		{"bad listen", "listen = [\"2222\"]\n", "want host:port"},
		{"bad duration", "login_timeout = \"10\"\n", "duration"},
		{"login too long", "login_timeout = \"2m\"\n" + good[1:], "at most 30s"},
		{"per source over total", "max_unauthenticated = 10\nmax_unauthenticated_per_source = 20\n" + good[1:], "larger than"},
		{"bad log format", "log_format = \"xml\"\n" + good[1:], "log_format"},
		{"bad metrics address", "metrics_listen = \"9417\"\n" + good[1:], "metrics_listen \"9417\": want host:port"},
		{"pprof without metrics", "metrics_pprof = true\n" + good[1:], "metrics_pprof: needs metrics_listen"},
		{"file without dns_listen", embedded[strings.Index(embedded, "[[zone]]"):], "dns_listen is needed"},
		{"bad dns_listen", "dns_listen = [\"53\"]\n" + good[1:], "dns_listen"},
		{"dns_listen port 0", strings.Replace(embedded, ":5353", ":0", 1), "port 0"},
		{"bad update type", embedded + "update_types = [\"SOA\"]\n", "update_types: \"SOA\""},
		{"bad allow_transfer", embedded + "allow_transfer = [\"ns2\"]\n", "allow_transfer: \"ns2\""},
		{"notify without file", good + "notify = [\"192.0.2.53\"]\n", "set file too"},
		{"zonefile_sync without file", good + "zonefile_sync = \"1m\"\n", "set file too"},
		{"negative journal_limit", embedded + "journal_limit = -1\n", "journal_limit must be positive"},
		{"zonefile_sync too long", embedded + "zonefile_sync = \"48h\"\n", "zonefile_sync must be positive, at most 24h"},
		{"neither primary nor file", "[[zone]]\nname = \"d.example\"\ntsig_key = \"k\"\n", "primary is needed (or file"},
		{"update type AXFR", embedded + "update_types = [\"AXFR\"]\n", "updates of AXFR records cannot be allowed"},
		{"plain HTTP off loopback", "http_listen = [\"0.0.0.0:80\"]\n" + good[1:], "passwords in clear"},
		{"plain HTTP on a name", "http_listen = [\"localhost:80\"]\n" + good[1:], "passwords in clear"},
		{"bad http_listen", "http_listen = [\"80\"]\n" + good[1:], "http_listen \"80\": want host:port"},
		{"cert without key", "http_listen = [\"0.0.0.0:443\"]\ntls_cert = \"c.pem\"\n" + good[1:], "tls_cert and tls_key go together"},
		{"bad trusted proxy", "trusted_proxies = [\"proxy\"]\n" + good[1:], "trusted_proxies: \"proxy\""},
		{"unknown proxy header", "proxy_header = \"Forwarded\"\n" + good[1:], `proxy_header "Forwarded": want "X-Forwarded-For" or "X-Real-IP"`},
		{"admin off loopback without TLS", "admin_listen = \"0.0.0.0:9418\"\n" + good[1:], "admin_listen \"0.0.0.0:9418\" is off loopback: it needs tls_cert and tls_key, and admin_users"},
		{"admin user without a bcrypt hash", "admin_listen = \"127.0.0.1:9418\"\nadmin_users = { ops = \"secret\" }\n" + good[1:], `admin_users "ops": want a bcrypt hash`},
		{"admin without the store", "admin_listen = \"127.0.0.1:9418\"\nstate_db = \"off\"\n" + good[1:], "admin_listen shows the state store"},
		{"HTTP caps", "http_max_connections = 10\nhttp_max_connections_per_source = 20\n" + good[1:], "http_max_connections_per_source is larger"},
		{"HTTP cap zero", "http_max_connections = 0\n" + good[1:], "must be at least 1"},
		{"unknown cipher", "ssh_ciphers = [\"rot13\"]\n" + good[1:], "ssh_ciphers: \"rot13\" is not an algorithm"},
		{"unknown MAC", "ssh_macs = [\"md5\"]\n" + good[1:], "ssh_macs: \"md5\""},
		{"wait_for a name", good + "wait_for = [\"ns2.example.com\"]\n", "wait_for: \"ns2.example.com:53\" is not ADDRESS[:PORT]"},
		{"wait_timeout too long", good + "wait_timeout = \"1h\"\n", "wait_timeout must be positive, at most 10m"},
		{"tinydns without root", "[[zone]]\nname = \"d.example\"\nbackend = \"tinydns\"\n", "needs tinydns_root"},
		{"tinydns with a primary", "[[zone]]\nname = \"d.example\"\nbackend = \"tinydns\"\ntinydns_root = \"/r\"\nprimary = \"127.0.0.1\"\n", "primary, tsig_key and file are for RFC 2136 zones"},
		{"unknown backend", "[[zone]]\nname = \"d.example\"\nbackend = \"bind\"\n", `backend "bind": want "rfc2136", "tinydns" or "libdns"`},
		{"tinydns_root for rfc2136", good + "tinydns_root = \"/r\"\n", `tinydns_root is for backend = "tinydns"`},
		{"libdns without provider", "[[zone]]\nname = \"d.example\"\nbackend = \"libdns\"\n", "needs provider"},
		// Audit finding H10: these used to pass for tinydns and libdns zones.
		{"tinydns, ttl too long", "[[zone]]\nname = \"d.example\"\nbackend = \"tinydns\"\ntinydns_root = \"/r\"\nttl = 99999999\n", "ttl 99999999: at most 604800"},
		{"tinydns, wait_for not an address", "[[zone]]\nname = \"d.example\"\nbackend = \"tinydns\"\ntinydns_root = \"/r\"\nwait_for = [\"not an address\"]\n", `wait_for: "not an address:53" is not ADDRESS[:PORT]`},
		{"libdns, acme_ttl too long", libdns + "acme_ttl = 100000\n", "acme_ttl 100000: at most 86400"},
		{"libdns, wait_timeout too long", libdns + "wait_timeout = \"1h\"\n", "wait_timeout must be positive, at most 10m"},
		{"libdns, plain HTTP off loopback", libdns + "api_url = \"http://dns.example.net:8081\"\n", "plain HTTP would carry the API key in clear"},
		{"libdns, not a URL", libdns + "api_url = \"dns.example.net\"\n", "want https://"},
		{"api_url for rfc2136", good + "api_url = \"http://x\"\n", `are for backend = "libdns"`},
		{"dnssec on a primary elsewhere", good + "dnssec = true\n", "dnssec is for a zone sshdyn serves (file set): BIND, Knot and PowerDNS sign their zones themselves"},
		{"dnssec on tinydns", "[[zone]]\nname = \"d.example\"\nbackend = \"tinydns\"\ntinydns_root = \"/r\"\ndnssec = true\n", "dnssec is for a zone sshdyn serves"},
		{"dnssec setting without dnssec", embedded + "dnssec_algorithm = \"ed25519\"\n", "need dnssec = true"},
		{"dnssec algorithm", embedded + "dnssec = true\ndnssec_algorithm = \"rsasha1\"\n", "dnssec_algorithm: \"rsasha1\": use ecdsap256sha256 (the default) or ed25519"},
		{"dnssec refresh over validity", embedded + "dnssec = true\ndnssec_signature_validity = \"7d\"\ndnssec_signature_refresh = \"7d\"\n", "must be less than the validity"},
		{"acme_ttl too long", good + "acme = true\nacme_ttl = 604800\n", "acme_ttl 604800: at most 86400"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.in), "f.toml")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	f.Add(good)
	f.Add("listen = [\":22\"]\n[[zone]]\nname=\"a\"\n")
	f.Fuzz(func(t *testing.T, in string) {
		c, err := Parse([]byte(in), "fuzz")
		if err != nil {
			return
		}
		if len(c.Zones) == 0 || len(c.Listen) == 0 {
			t.Fatalf("accepted a config without zones or listeners: %q", in)
		}
	})
}

// TestChanged: the settings that differ between two configurations are
// named by their keys, zones by name.
func TestChanged(t *testing.T) {
	a, err := Parse([]byte(good), "a.toml")
	if err != nil {
		t.Fatal(err)
	}
	b, err := Parse([]byte("http_listen = [\"127.0.0.1:8080\"]\n"+strings.Replace(good, "ttl = 120", "ttl = 300", 1)+"[[zone]]\nname = \"other.example\"\nprimary = \"127.0.0.1\"\ntsig_key = \"k\"\n"), "b.toml")
	if err != nil {
		t.Fatal(err)
	}
	got := Changed(a, b)
	want := []string{"http_listen", "zone dyn.example.com: ttl", "zone other.example added"}
	if !slices.Equal(got, want) {
		t.Errorf("Changed = %q, want %q", got, want)
	}
	if got := Changed(a, a); len(got) != 0 {
		t.Errorf("Changed(a, a) = %q", got)
	}
}
