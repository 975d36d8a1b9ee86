package config

import (
	"strings"
	"testing"
	"time"
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

func TestParse(t *testing.T) {
	c, err := Parse([]byte(good), "sshdyn.toml")
	if err != nil {
		t.Fatal(err)
	}
	z := c.Zones[0]
	if z.Name != "dyn.example.com" || z.Primary != "127.0.0.1:53" || z.TTL != 120 || z.Timeout.Duration != DefaultZoneTimeout {
		t.Errorf("zone = %+v", z)
	}
	if c.LoginTimeout.Duration != 10*time.Second || len(c.Listen) != 2 {
		t.Errorf("config = %+v", c)
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
