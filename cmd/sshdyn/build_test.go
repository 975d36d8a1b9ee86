//go:build integration

package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestCheckRefusesWhatServeRefuses feeds one table of configurations to
// both sshdyn check and sshdyn serve: each is refused by both, with the
// same reason, or started by serve and passed by check. (check without
// --dns asks no primary, and serve contacts none before an update.)
func TestCheckRefusesWhatServeRefuses(t *testing.T) {
	const secret = "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA=="
	const zoneFile = "$ORIGIN dyn.example.com.\n$TTL 300\n@ SOA ns hostmaster 1 3600 600 86400 60\n@ NS ns\nns A 192.0.2.53\n"
	key := newClientKey(t, t.TempDir(), "k")
	line := `host="home.dyn.example.com" ` + key.line
	external := "[[zone]]\nname = \"dyn.example.com\"\nprimary = \"127.0.0.1:1\"\ntsig_key = \"tsig.key\"\n"
	embedded := "dns_listen = [\"127.0.0.1:0\"]\n[[zone]]\nname = \"dyn.example.com\"\nprimary = \"127.0.0.1:1\"\nfile = \"zone\"\ntsig_key = \"tsig.key\"\n"
	// A hash of cost 12 as "sshdyn passwd" writes it (its salt and sum
	// are never compared here).
	const cost12 = "$2a$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW"
	files := func(extra ...string) map[string]string {
		m := map[string]string{"tsig.key": "hmac-sha256:sshdyn:" + secret + "\n", "zone": zoneFile, "authorized_keys": line}
		for i := 0; i+1 < len(extra); i += 2 {
			m[extra[i]] = extra[i+1]
		}
		return m
	}
	cases := []struct {
		name   string
		config string            // after listen, host_key and authorized_keys
		files  map[string]string // in the config's directory; "" removes one
		mode   map[string]os.FileMode
		want   string // in both refusals; "" if both accept it
	}{
		{name: "external primary", config: external, files: files()},
		{name: "embedded primary", config: embedded, files: files()},
		{name: "embedded, update_types A and TXT", config: embedded + "update_types = [\"A\", \"TXT\"]\n", files: files()},
		{name: "update_types AXFR", config: embedded + "update_types = [\"AXFR\"]\n", files: files(), want: "updates of AXFR records cannot be allowed"},
		{name: "update_types SOA", config: embedded + "update_types = [\"SOA\"]\n", files: files(), want: "updates of SOA records cannot be allowed"},
		{name: "update_types unknown", config: embedded + "update_types = [\"AXFER\"]\n", files: files(), want: `"AXFER" is not a record type`},
		{name: "no key file", config: external, files: files("tsig.key", ""), want: "tsig.key: no such file"},
		{name: "key file is no key", config: external, files: files("tsig.key", "hello\nworld\n"), want: "no key found"},
		{name: "key file is a directory", config: strings.Replace(external, `"tsig.key"`, `"."`, 1), files: files(), want: "is a directory"},
		{name: "no zone file", config: embedded, files: files("zone", ""), want: "zone: no such file"},
		{name: "record outside the zone", config: embedded, files: files("zone", zoneFile+"www.example.org. A 192.0.2.1\n"), want: "not in zone dyn.example.com"},
		{name: "transfer key missing", config: embedded + "transfer_key = \"xfr.key\"\n", files: files(), want: "xfr.key: no such file"},
		{name: "one key name, two secrets", config: embedded + "transfer_key = \"xfr.key\"\n",
			files: files("xfr.key", "hmac-sha256:sshdyn:"+strings.Repeat("QUFB", 8)+"\n"), want: "differs from another key of the same name"},
		{name: "bad authorized line", config: external, files: files("authorized_keys", "host=\"home.example.org\" "+key.line), want: "authorized_keys:1: host \"home.example.org\" is not inside a configured zone"},
		{name: "host is the embedded zone's name server", config: embedded, files: files("authorized_keys", `host="ns.dyn.example.com" `+key.line),
			want: `authorized_keys:1: host "ns.dyn.example.com" is the target of the NS record of dyn.example.com`},
		{name: "host is the zone apex", config: external, files: files("authorized_keys", `host="dyn.example.com" `+key.line), want: "is the apex of zone dyn.example.com"},
		{name: "no authorized file", config: external, files: files("authorized_keys", ""), want: "authorized_keys: no such file"},
		{name: "host key readable by all", config: external, files: files("host_key", hostKeyPEM(t)), mode: map[string]os.FileMode{"host_key": 0o644}, want: "lets others read it"},
		{name: "TSIG key readable by all", config: external, files: files(), mode: map[string]os.FileMode{"tsig.key": 0o644}, want: "tsig.key is mode 0644, readable by every user: chmod o-rwx"},
		{name: "TSIG key readable by its group", config: external, files: files(), mode: map[string]os.FileMode{"tsig.key": 0o640}},
		{name: "transfer key readable by all", config: embedded + "transfer_key = \"xfr.key\"\n", files: files("xfr.key", "hmac-sha256:xfr:"+secret+"\n"),
			mode: map[string]os.FileMode{"xfr.key": 0o604}, want: "xfr.key is mode 0604, readable by every user"},
		{name: "authorized file with password hashes readable by all", config: external,
			files: files("authorized_keys", line+"\n"+`http-user="r",http-password="`+cost12+`",host="r.dyn.example.com"`+"\n"), mode: map[string]os.FileMode{"authorized_keys": 0o644},
			want: "authorized_keys is mode 0644, readable by every user: chmod o-rwx"},
		{name: "authorized file with password hashes readable by its group", config: external,
			files: files("authorized_keys", line+"\n"+`http-user="r",http-password="`+cost12+`",host="r.dyn.example.com"`+"\n"), mode: map[string]os.FileMode{"authorized_keys": 0o640}},
		{name: "authorized file without hashes readable by all", config: external, files: files(), mode: map[string]os.FileMode{"authorized_keys": 0o644}},
		{name: "http-password of bcrypt cost 5", config: external,
			files: files("authorized_keys", `http-user="r",http-password="`+strings.Replace(cost12, "$12$", "$05$", 1)+`",host="r.dyn.example.com"`+"\n"), want: "authorized_keys:1: http-password has bcrypt cost 5: want 12 to 14"},
		{name: "state_db in a missing directory", config: "state_db = \"/nonexistent/sshdyn/state.db\"\n" + external, files: files(), want: "state_db /nonexistent/sshdyn/state.db: the directory /nonexistent/sshdyn does not exist"},
		{name: "state_db a bad PostgreSQL URL", config: "state_db = \"postgres://u@[::1/db\"\n" + external, files: files(), want: "state_db: not a URL"},
		{name: "state_db on a PostgreSQL that is down: serve starts", config: "state_db = \"postgres://u@127.0.0.1:1/db?sslmode=disable\"\n" + external, files: files()},
		{name: "unknown notify scheme", config: "notify = [\"telegram://token@telegram\"]\n" + external, files: files(), want: `unknown scheme "telegram"`},
		{name: "malformed stale_after", config: "stale_after = \"a day\"\n" + external, files: files(), want: `sshdyn.toml:4: toml: duration "a day": want e.g.`},
		{name: "notify without the store", config: "state_db = \"off\"\nnotify = [\"ntfy://127.0.0.1/t\"]\n" + external, files: files(), want: "stale_after and notify need the state store"},
		{name: "a line's notify= unknown", config: external, files: files("authorized_keys", `notify="irc://x",host="home.dyn.example.com" `+key.line), want: "authorized_keys:1: notify URL irc://x: unknown scheme"},
		{name: "revoked_keys missing", config: "revoked_keys = \"krl\"\n" + external, files: files(), want: "krl: no such file"},
		{name: "revoked_keys not a KRL nor keys", config: "revoked_keys = \"krl\"\n" + external, files: files("krl", "hello\n"), want: "line 1: not a public key (nor is the file a KRL)"},
		{name: "revoked_keys, a list of keys", config: "revoked_keys = \"krl\"\n" + external, files: files("krl", key.line+"\n")},
		{name: "cert-authority pattern outside the zones", config: external, files: files("authorized_keys", `cert-authority,host="*.example.org" `+key.line),
			want: `authorized_keys:1: host "*.example.org": example.org is not a configured zone or inside one`},
		{name: "libdns API key readable by all", config: "[[zone]]\nname = \"dyn.example.com\"\nbackend = \"libdns\"\nprovider = \"powerdns\"\napi_url = \"http://127.0.0.1:1\"\napi_key_file = \"api.key\"\n",
			files: files("api.key", "k\n"), mode: map[string]os.FileMode{"api.key": 0o644}, want: "api.key is mode 0644, readable by every user"},
		{name: "libdns unknown provider", config: "[[zone]]\nname = \"dyn.example.com\"\nbackend = \"libdns\"\nprovider = \"route99\"\napi_key_file = \"api.key\"\n",
			files: files("api.key", "k\n"), want: `provider "route99": want one of desec, powerdns`},
		{name: "unknown setting", config: "listen_adress = 1\n" + external, files: files(), want: `unknown key "listen_adress"`},
		{name: "no zone", config: "", files: files(), want: "no [[zone]]"},
		{name: "HTTP front on loopback", config: "http_listen = [\"127.0.0.1:0\"]\n" + external, files: files()},
		{name: "plain HTTP off loopback", config: "http_listen = [\"0.0.0.0:0\"]\n" + external, files: files(), want: "passwords in clear"},
		{name: "TLS certificate missing", config: "http_listen = [\"127.0.0.1:0\"]\ntls_cert = \"cert.pem\"\ntls_key = \"key.pem\"\n" + external, files: files(), want: "cert.pem: no such file"},
		{name: "TLS certificate is no certificate", config: "http_listen = [\"127.0.0.1:0\"]\ntls_cert = \"cert.pem\"\ntls_key = \"key.pem\"\n" + external,
			files: files("cert.pem", "not a certificate\n", "key.pem", "not a key\n"), want: "failed to find any PEM data"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			for name, text := range tc.files {
				if text != "" {
					writeFile(t, filepath.Join(dir, name), text)
				}
			}
			for name, mode := range tc.mode {
				if err := os.Chmod(filepath.Join(dir, name), mode); err != nil {
					t.Fatal(err)
				}
			}
			cfg := filepath.Join(dir, "sshdyn.toml")
			writeFile(t, cfg, "listen = [\"127.0.0.1:0\"]\nhost_key = \"host_key\"\nauthorized_keys = \"authorized_keys\"\n"+tc.config)

			var out, errs bytes.Buffer
			code := check(context.Background(), cfg, false, &out, &errs)
			serveErr := serveOnce(t, cfg)
			if tc.want == "" {
				if code != 0 || serveErr != nil {
					t.Fatalf("check exit %d (stderr %q), serve %v; want both to accept it", code, errs.String(), serveErr)
				}
				return
			}
			if code != 1 || !strings.Contains(errs.String(), tc.want) {
				t.Errorf("check exit %d, stderr %q; want exit 1 and %q", code, errs.String(), tc.want)
			}
			if serveErr == nil || !strings.Contains(serveErr.Error(), tc.want) {
				t.Errorf("serve: %v; want a refusal with %q", serveErr, tc.want)
			}
		})
	}
}

// serveOnce runs sshdyn serve on cfg and stops it as soon as it is ready;
// it returns why serve did not start, or nil.
func serveOnce(t *testing.T, cfg string) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var logs bytes.Buffer
	err := serve(ctx, cfg, &logs, cancel)
	if ctx.Err() == context.DeadlineExceeded {
		t.Fatalf("serve neither started nor failed in 10 s; log:\n%s", logs.String())
	}
	return err
}

// hostKeyPEM returns a fresh host key in OpenSSH's PEM format.
func hostKeyPEM(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "k")
	if _, err := writeClientKey(path); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
