//go:build integration

package main

import (
	"io"
	"net/http"
	"net/http/httptrace"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sshdyn/sshdyn/internal/dnstest"
)

// TestRevocationOnEveryFront: one line is one identity. A line whose key
// revoked_keys revokes can no longer update over HTTP either, even on a
// keep-alive connection the router opened before (audit finding H8); and
// a revoked_keys that stops parsing refuses every key on every front
// until it parses again, logged once, with sshdyn_krl_ok 0 (finding H7:
// it used to keep the old list, so what was just revoked kept working).
func TestRevocationOnEveryFront(t *testing.T) {
	p := dnstest.Start(t, "sshdyn", dnstest.Options{})
	keys := t.TempDir()
	key := newClientKey(t, keys, "router-key")
	other := newClientKey(t, keys, "other")
	lines := []string{credLine(t, "router", "r."+p.Zone) + " " + key.line, `host="o.` + p.Zone + `" ` + other.line}
	dir := writeConfig(t, p, p.Addr, p.KeyFile, lines...)
	krlPath := filepath.Join(dir, "revoked_keys")
	writeFile(t, krlPath, "# nothing revoked yet\n")
	cfg := filepath.Join(dir, "sshdyn.toml")
	b, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, cfg, `http_listen = ["127.0.0.1:0"]`+"\nrevoked_keys = \"revoked_keys\"\n"+
		strings.Replace(string(b), `reload_interval = "0s"`, `reload_interval = "50ms"`, 1))
	d, metricsBase := runWithMetrics(t, dir, "")
	base := httpBase(t, d)
	krlOK := func() float64 {
		t.Helper()
		m := find(scrape(t, metricsBase+"/metrics"), "sshdyn_krl_ok", nil)
		if m == nil {
			t.Fatal("no sshdyn_krl_ok")
		}
		return m.GetGauge().GetValue()
	}

	// One keep-alive connection for every HTTP request below.
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
	var reused, dialed int
	get := func(query string) (int, string) {
		t.Helper()
		req, err := http.NewRequest("GET", base+"/nic/update?"+query, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.SetBasicAuth("router", routerPassword)
		req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
			GotConn: func(i httptrace.GotConnInfo) {
				if i.Reused {
					reused++
				} else {
					dialed++
				}
			},
		}))
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, strings.TrimSpace(string(body))
	}
	q := "hostname=r." + p.Zone + "&myip=198.51.100.40"
	if code, body := get(q); code != 200 || body != "good 198.51.100.40" {
		t.Fatalf("before any revocation: %d %q", code, body)
	}
	if r := d.ssh(t, key, nil, "ip"); r.code != 0 {
		t.Fatalf("the key over SSH before any revocation: %+v", r)
	}
	if g := krlOK(); g != 1 {
		t.Fatalf("sshdyn_krl_ok = %v at start", g)
	}

	writeFile(t, krlPath, key.line+"\n")
	waitFor(t, "the reload", func() bool { return strings.Contains(d.log.String(), "reloaded revoked keys") })
	if code, body := get(q); code != 401 || body != "badauth" {
		t.Errorf("a revoked key's line over HTTP: %d %q, want 401 badauth", code, body)
	}
	if r := d.ssh(t, key, nil, "ip"); r.code != 255 {
		t.Errorf("a revoked key over SSH: %+v", r)
	}
	if r := d.ssh(t, other, nil, "ip"); r.code != 0 {
		t.Errorf("a key not revoked: %+v", r)
	}

	// Broken: nobody gets in, on either front.
	writeFile(t, krlPath, "this is not a key\n")
	waitFor(t, "sshdyn_krl_ok 0", func() bool { return krlOK() == 0 })
	if r := d.ssh(t, other, nil, "ip"); r.code != 255 {
		t.Errorf("a key under a revoked_keys that does not parse: %+v, want 255", r)
	}
	writeFile(t, krlPath, "# nothing revoked\n")
	waitFor(t, "sshdyn_krl_ok 1", func() bool { return krlOK() == 1 })
	if code, body := get(q); code != 200 || body != "nochg 198.51.100.40" {
		t.Errorf("after the revocation was lifted: %d %q", code, body)
	}
	if r := d.ssh(t, other, nil, "ip"); r.code != 0 {
		t.Errorf("a key after revoked_keys parses again: %+v", r)
	}
	writeFile(t, krlPath, "still not a key\n")
	waitFor(t, "sshdyn_krl_ok 0 again", func() bool { return krlOK() == 0 })
	if code, body := get(q); code != 401 {
		t.Errorf("over HTTP under a revoked_keys that does not parse: %d %q, want 401", code, body)
	}
	if r := d.ssh(t, key, nil, "ip"); r.code != 255 {
		t.Errorf("SSH under a revoked_keys that does not parse: %+v, want 255", r)
	}
	// Many reload ticks later the error has been logged once per change.
	time.Sleep(10 * 50 * time.Millisecond) // ten reload ticks: nothing to wait for, since nothing should happen
	if n := strings.Count(d.log.String(), "revoked_keys does not load: refusing every key"); n != 2 {
		t.Errorf("the broken revoked_keys was logged %d times for 2 breakages:\n%s", n, d.log.String())
	}
	if dialed != 1 || reused != 3 {
		t.Errorf("the HTTP requests dialed %d connections and reused one %d times; want one kept connection", dialed, reused)
	}
}
