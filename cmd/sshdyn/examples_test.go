package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sshdyn/sshdyn/authorized"
	"github.com/sshdyn/sshdyn/config"
	"github.com/sshdyn/sshdyn/update"
	"github.com/sshdyn/sshdyn/zone"
)

const examples = "../../examples"

// TestExamples: every file in examples/ is checked by the tool that reads it.
func TestExamples(t *testing.T) {
	cfg, err := config.Load(filepath.Join(examples, "sshdyn.toml"))
	if err != nil {
		t.Fatal(err)
	}
	m, err := authorized.Load(filepath.Join(examples, "authorized_keys"), cfg.ZoneNames())
	if err != nil {
		t.Fatal(err)
	}
	if m.Len() != 2 {
		t.Errorf("examples/authorized_keys has %d keys, want 2", m.Len())
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
	if k, err := update.LoadKey(bindKey); err != nil || k.Name != "sshdyn." {
		t.Errorf("tsig-keygen output: %+v, %v", k, err)
	}
	checkSnippet(t, "named.conf", "/etc/bind/sshdyn.key", bindKey, func(p string) { run("named-checkconf", p) })

	// Knot: likewise with keymgr's output and knotc conf-check.
	knotKey := filepath.Join(dir, "knot.key")
	writeFile(t, knotKey, run("keymgr", "-t", "sshdyn", "hmac-sha256"))
	if k, err := update.LoadKey(knotKey); err != nil || k.Name != "sshdyn." {
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
	if err != nil || !strings.Contains(string(cron), " update") {
		t.Errorf("examples/crontab: %v", err)
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
