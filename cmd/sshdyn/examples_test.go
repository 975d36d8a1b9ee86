//go:build integration

package main

import (
	"encoding/xml"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/sshdyn/sshdyn/authorized"
	"github.com/sshdyn/sshdyn/config"
	"github.com/sshdyn/sshdyn/internal/dnstest"
	"github.com/sshdyn/sshdyn/tsig"
	"github.com/sshdyn/sshdyn/zone"
)

const examples = "../../examples"

// TestExamples: every file in examples/ is checked by the tool that reads it.
func TestExamples(t *testing.T) {
	cfg, err := config.Load(filepath.Join(examples, "sshdyn.toml"))
	if err != nil {
		t.Fatal(err)
	}
	m, err := authorized.Load(filepath.Join(examples, "authorized_keys"), authorized.Scope{Zones: cfg.ZoneNames()})
	if err != nil {
		t.Fatal(err)
	}
	if m.Len() != 2 {
		t.Errorf("examples/authorized_keys has %d keys, want 2", m.Len())
	}
	// The alert rules name metrics sshdyn exports.
	rules, err := os.ReadFile(filepath.Join(examples, "prometheus-alerts.yml"))
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile("../../metrics/metrics.go")
	if err != nil {
		t.Fatal(err)
	}
	exprs := regexp.MustCompile(`expr: .*`).FindAllString(string(rules), -1)
	if len(exprs) < 4 {
		t.Fatalf("examples/prometheus-alerts.yml: %d rules", len(exprs))
	}
	for _, e := range exprs {
		for _, name := range regexp.MustCompile(`sshdyn_[a-z_]+`).FindAllString(e, -1) {
			if !strings.Contains(string(src), `"`+name+`"`) {
				t.Errorf("examples/prometheus-alerts.yml: %s is not a metric sshdyn exports", name)
			}
		}
	}
	if cfg.MetricsListen != "127.0.0.1:9417" {
		t.Errorf("examples/sshdyn.toml: metrics_listen = %q", cfg.MetricsListen)
	}

	dir := t.TempDir()
	run := func(name string, args ...string) string {
		t.Helper()
		out, err := exec.Command(name, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("%s %v: %v\n%s", name, args, err, out)
		}
		return string(out)
	}

	// BIND: the key tsig-keygen prints is a key file sshdyn reads, and the
	// snippet passes named-checkconf.
	bindKey := filepath.Join(dir, "bind.key")
	writeFile(t, bindKey, run("tsig-keygen", "-a", "hmac-sha256", "sshdyn"))
	if k, err := tsig.Load(bindKey); err != nil || k.Name != "sshdyn." {
		t.Errorf("tsig-keygen output: %+v, %v", k, err)
	}
	checkSnippet(t, "named.conf", "/etc/bind/sshdyn.key", bindKey, func(p string) { run("named-checkconf", p) })

	// Knot: likewise with keymgr's output and knotc conf-check.
	knotKey := filepath.Join(dir, "knot.key")
	writeFile(t, knotKey, run("keymgr", "-t", "sshdyn", "hmac-sha256"))
	if k, err := tsig.Load(knotKey); err != nil || k.Name != "sshdyn." {
		t.Errorf("keymgr output: %+v, %v", k, err)
	}
	checkSnippet(t, "knot.conf", "/etc/knot/sshdyn.key.conf", knotKey, func(p string) { run("knotc", "-c", p, "conf-check") })

	// The secondaries of the embedded primary, likewise.
	bindXfr := filepath.Join(dir, "transfer.key")
	writeFile(t, bindXfr, run("tsig-keygen", "-a", "hmac-sha256", "transfer"))
	checkSnippet(t, "named-secondary.conf", "/etc/bind/transfer.key", bindXfr, func(p string) { run("named-checkconf", p) })
	knotXfr := filepath.Join(dir, "transfer.key.conf")
	writeFile(t, knotXfr, run("keymgr", "-t", "transfer", "hmac-sha256"))
	checkSnippet(t, "knot-secondary.conf", "/etc/knot/transfer.key.conf", knotXfr, func(p string) { run("knotc", "-c", p, "conf-check") })

	// PowerDNS: the snippet passes pdns_server's own check, and the
	// policy script is the one the PowerDNS end-to-end tests run under.
	pdnsDir := filepath.Join(dir, "pdns")
	if err := os.Mkdir(pdnsDir, 0o755); err != nil {
		t.Fatal(err)
	}
	policy := filepath.Join(pdnsDir, "policy.lua")
	checkSnippet(t, "pdns.conf", "/etc/powerdns/sshdyn-dnsupdate-policy.lua", policy, func(p string) {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(pdnsDir, "pdns.conf"), "launch=gsqlite3\ngsqlite3-database="+filepath.Join(pdnsDir, "db")+"\n"+string(b))
		run("pdns_server", "--config-dir="+pdnsDir, "--config=check")
	})
	// The PowerDNS-on-PostgreSQL pair: each passes the same check.
	for _, name := range []string{"pdns-pgsql-writer.conf", "pdns-pgsql-reader.conf"} {
		checkSnippet(t, name, "launch=gpgsql", "launch=gpgsql", func(p string) {
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			text := strings.ReplaceAll(string(b), "/etc/powerdns/sshdyn-policy.lua", policy)
			writeFile(t, filepath.Join(pdnsDir, "pdns.conf"), text)
			run("pdns_server", "--config-dir="+pdnsDir, "--config=check")
		})
	}
	lua, err := os.ReadFile(filepath.Join(examples, "pdns-dnsupdate-policy.lua"))
	if err != nil {
		t.Fatal(err)
	}
	if want := dnstest.PowerDNSPolicy("sshdyn", []string{"dyn.example.com"}, []string{"127.0.0.1/32", "::1/128"}, []string{"A", "AAAA"}, false, true); string(lua) != want {
		t.Errorf("examples/pdns-dnsupdate-policy.lua differs from dnstest.PowerDNSPolicy, which the tests run:\n%s", want)
	}

	// All-in-one: the config loads and the example zone file serves.
	aio, err := config.Load(filepath.Join(examples, "sshdyn-all-in-one.toml"))
	if err != nil {
		t.Fatal(err)
	}
	if z := aio.Zones[0]; !z.Embedded() || z.Primary != "127.0.0.1:53" || len(z.TransferPrefixes()) != 2 || z.Notify[0] != "198.51.100.53:53" {
		t.Errorf("all-in-one zone = %+v", z)
	}
	if _, err := zone.Load(zone.Config{Origin: "dyn.example.com", File: filepath.Join(examples, "dyn.example.com.zone")}); err != nil {
		t.Errorf("examples/dyn.example.com.zone: %v", err)
	}

	cron, err := os.ReadFile(filepath.Join(examples, "crontab"))
	if err != nil || !strings.Contains(string(cron), "ssh -4 ") || !strings.Contains(string(cron), "ssh -6 ") {
		t.Errorf("examples/crontab: %v, or not both families", err)
	}

	// systemd units: systemd-analyze verify, with the ExecStart binary
	// pointing at the one built for the tests.
	var units []string
	for _, name := range []string{"sshdyn.service", "sshdyn-update.service", "sshdyn-update.timer"} {
		b, err := os.ReadFile(filepath.Join(examples, name))
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, name)
		writeFile(t, p, strings.NewReplacer("/usr/local/bin/sshdyn", binary, "/usr/sbin/sshdyn", binary).Replace(string(b)))
		units = append(units, p)
	}
	if out := run("systemd-analyze", append([]string{"verify", "--man=no"}, units...)...); strings.TrimSpace(out) != "" {
		t.Errorf("systemd-analyze verify:\n%s", out)
	}
	// Shell scripts parse; the launchd plist is well-formed XML.
	for _, name := range []string{"openwrt-hotplug", "networkmanager-dispatcher"} {
		run("sh", "-n", filepath.Join(examples, name))
		if fi, err := os.Stat(filepath.Join(examples, name)); err != nil || fi.Mode()&0o111 == 0 {
			t.Errorf("examples/%s is not executable", name)
		}
	}
	plist, err := os.Open(filepath.Join(examples, "com.example.sshdyn.plist"))
	if err != nil {
		t.Fatal(err)
	}
	defer plist.Close()
	dec := xml.NewDecoder(plist)
	for {
		if _, err := dec.Token(); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("examples/com.example.sshdyn.plist: %v", err)
		}
	}
	if b, err := os.ReadFile(filepath.Join(examples, "windows-task.txt")); err != nil || !strings.Contains(string(b), "schtasks /Create") {
		t.Errorf("examples/windows-task.txt: %v", err)
	}
}

// checkSnippet points the example's key include at a real key file and
// runs check on the result.
func checkSnippet(t *testing.T, name, keyPath, realKey string, check func(string)) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(examples, name))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), keyPath) {
		t.Fatalf("examples/%s no longer includes %s", name, keyPath)
	}
	p := filepath.Join(t.TempDir(), name)
	writeFile(t, p, strings.ReplaceAll(string(b), keyPath, realKey))
	check(p)
}
