//go:build integration

package main

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/sshdyn/sshdyn/internal/dnstest"
	"github.com/sshdyn/sshdyn/sshd"
)

// TestUpdateJSON: "update --json" prints one JSON object on stdout for
// good, nochg and failed updates, with the same exit status as without.
func TestUpdateJSON(t *testing.T) {
	p := dnstest.Start(t, "knot", dnstest.Options{})
	keys := t.TempDir()
	home := newClientKey(t, keys, "home")
	host := "home." + p.Zone
	d := startDaemon(t, p, p.KeyFile, `host="`+host+`",host="nas.`+p.Zone+`" `+home.line)

	run := func(opts []string, args ...string) (sshd.Report, sshResult) {
		t.Helper()
		r := d.ssh(t, home, opts, append([]string{"update", "--json"}, args...)...)
		var rep sshd.Report
		if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil || strings.Count(r.stdout, "\n") != 1 {
			t.Fatalf("stdout is not one JSON object (%v): %q, stderr %q", err, r.stdout, r.stderr)
		}
		if rep.Exit != r.code {
			t.Errorf("JSON exit %d, ssh exit %d", rep.Exit, r.code)
		}
		return rep, r
	}

	rep, r := run(nil)
	if r.code != 0 || rep.Address != "127.0.0.1" || rep.Type != "A" || len(rep.Hosts) != 2 ||
		rep.Hosts[0].Host != host || rep.Hosts[0].Result != "good" || rep.Hosts[0].Previous != nil || rep.Hosts[0].Kind != "" {
		t.Errorf("first update: %+v, stderr %q", rep, r.stderr)
	}
	rep, _ = run([]string{"-b", "127.0.0.2"}, host)
	if len(rep.Hosts) != 1 || rep.Hosts[0].Result != "good" || !slices.Equal(rep.Hosts[0].Previous, []string{"127.0.0.1"}) {
		t.Errorf("second update: %+v", rep)
	}
	rep, _ = run([]string{"-b", "127.0.0.2"}, host)
	if len(rep.Hosts) != 1 || rep.Hosts[0].Result != "nochg" || rep.Hosts[0].Previous != nil {
		t.Errorf("repeat: %+v", rep)
	}
	rep, r = run([]string{"-6"}, host)
	if rep.Type != "AAAA" || rep.Address != "::1" || rep.Hosts[0].Result != "good" {
		t.Errorf("IPv6: %+v", rep)
	}

	// Refused before any DNS work: the error is in the object and on stderr.
	rep, r = run(nil, "other.example.org")
	if r.code != 77 || rep.Error == "" || !strings.Contains(r.stderr, rep.Error) || len(rep.Hosts) != 0 {
		t.Errorf("another key's host: %+v, %+v", rep, r)
	}
	rep, r = run(nil, "--verbose")
	if r.code != 64 || !strings.Contains(rep.Error, `unknown option "--verbose"`) {
		t.Errorf("unknown option: %+v, %+v", rep, r)
	}

	// A DNS failure: per host, with its kind; a temporary one says so.
	p.Stop()
	rep, r = run([]string{"-b", "127.0.0.3"}, host)
	if r.code != 75 || len(rep.Hosts) != 1 || rep.Hosts[0].Result != "error" || rep.Hosts[0].Kind != "unreachable" || !rep.Hosts[0].Temporary {
		t.Errorf("primary down: %+v, %+v", rep, r)
	}
	if !strings.Contains(r.stderr, rep.Hosts[0].Error) {
		t.Errorf("stderr %q lacks the host's error %q", r.stderr, rep.Hosts[0].Error)
	}
}

var metricsRE = regexp.MustCompile(`msg="metrics listening" addr=(\S+)`)

// TestMetrics: with metrics_listen set, /metrics counts connections,
// failed logins, updates by result, DNS round trips and refusals.
func TestMetrics(t *testing.T) {
	p := dnstest.Start(t, "bind", dnstest.Options{})
	keys := t.TempDir()
	home := newClientKey(t, keys, "home")
	stranger := newClientKey(t, keys, "stranger")
	host := "home." + p.Zone
	dir := writeConfig(t, p, p.Addr, p.KeyFile, `host="`+host+`" `+home.line)
	// Two changes per hour for this key, so the third change is limited.
	d, base := runWithMetrics(t, dir, "max_changes_per_key = 2\n")
	url := base + "/metrics"

	want := func(r sshResult, code int) {
		t.Helper()
		if r.code != code {
			t.Fatalf("exit %d, want %d: %+v", r.code, code, r)
		}
	}
	want(d.ssh(t, home, nil, "update"), 0)                           // good
	want(d.ssh(t, home, nil, "update"), 0)                           // nochg
	want(d.ssh(t, home, []string{"-b", "127.0.0.2"}, "update"), 0)   // good
	want(d.ssh(t, home, []string{"-b", "127.0.0.3"}, "update"), 75)  // over max_changes_per_key
	want(d.ssh(t, home, nil, "ip"), 0)                               //
	want(d.ssh(t, stranger, []string{"-b", "127.0.0.9"}, "ip"), 255) // not authorized

	// The auth failure is counted when the connection ends, after ssh
	// exits: poll.
	var fams map[string]*dto.MetricFamily
	deadline := time.Now().Add(5 * time.Second)
	for {
		fams = scrape(t, url)
		if counter(fams, "sshdyn_auth_failures_total", nil) >= 1 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	check := func(name string, labels map[string]string, want float64) {
		t.Helper()
		if got := counter(fams, name, labels); got != want {
			t.Errorf("%s%v = %v, want %v", name, labels, got, want)
		}
	}
	check("sshdyn_connections_total", nil, 6)
	check("sshdyn_auth_failures_total", nil, 1)
	check("sshdyn_updates_total", map[string]string{"zone": p.Zone, "type": "A", "result": "good"}, 2)
	check("sshdyn_updates_total", map[string]string{"zone": p.Zone, "type": "A", "result": "nochg"}, 1)
	check("sshdyn_updates_total", map[string]string{"zone": p.Zone, "type": "A", "result": "rate_limited"}, 1)
	check("sshdyn_rate_limited_total", map[string]string{"limit": "changes"}, 1)
	check("sshdyn_rate_limited_total", map[string]string{"limit": "penalty"}, 0)
	check("sshdyn_sessions_total", map[string]string{"command": "update", "exit": "0"}, 3)
	check("sshdyn_sessions_total", map[string]string{"command": "update", "exit": "75"}, 1)
	check("sshdyn_sessions_total", map[string]string{"command": "ip", "exit": "0"}, 1)
	// The first update checks, looks up the old A records, replaces
	// and confirms; the nochg one checks. The second change needs no
	// check and no lookup: it is one compare-and-set on the address
	// sshdyn last saw, with its confirmation. The rate-limited one is
	// not allowed the compare-and-set, so it checks, and stops there.
	rtt := func(op string) uint64 {
		h := histogram(fams, "sshdyn_dns_request_duration_seconds", map[string]string{"zone": p.Zone, "op": op, "outcome": "ok"})
		if h == nil {
			return 0
		}
		if h.GetSampleCount() > 0 && (h.GetSampleSum() <= 0 || h.GetSampleSum() > 10) {
			t.Errorf("%s round trips sum to %v s", op, h.GetSampleSum())
		}
		return h.GetSampleCount()
	}
	if c, l, r, cf := rtt("check"), rtt("lookup"), rtt("replace"), rtt("confirm"); c != 3 || l != 1 || r != 2 || cf != 2 {
		t.Errorf("round trips: check %d, lookup %d, replace %d, confirm %d; want 3, 1, 2, 2", c, l, r, cf)
	}
	// One connection to the primary, kept open between the sessions (a
	// second only if the 4 s idle limit passed between two of them).
	if n := rtt("connect"); n < 1 || n > 2 {
		t.Errorf("connections opened to the primary: %d, want 1 (or 2)", n)
	}
	if g := fams["sshdyn_build_info"]; g == nil || len(g.Metric) != 1 || g.Metric[0].GetGauge().GetValue() != 1 {
		t.Errorf("sshdyn_build_info = %v", g)
	}
	if fams["go_goroutines"] == nil || fams["process_resident_memory_bytes"] == nil {
		t.Errorf("no Go runtime or process metrics")
	}

	// Only GET /metrics is served.
	resp, err := http.Post(url, "text/plain", strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /metrics: %s", resp.Status)
	}
	// Nothing else is served; the profiler is off unless metrics_pprof
	// is set.
	for _, path := range []string{"/", "/debug/pprof/goroutine?debug=1"} {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: %s, want 404", path, resp.Status)
		}
	}
}

// TestRevocationBesideABrokenLine (audit L3): removing a key in the same
// edit that leaves a bad line revokes it, and closes its open
// connections; the other keys keep working; the failing reload shows in
// sshdyn_authorized_reload_ok until the file is fixed.
func TestRevocationBesideABrokenLine(t *testing.T) {
	p := dnstest.Start(t, "sshdyn", dnstest.Options{})
	keys := t.TempDir()
	one := newClientKey(t, keys, "one")
	two := newClientKey(t, keys, "two")
	lineOne, lineTwo := `host="one.`+p.Zone+`" `+one.line+"\n", `host="two.`+p.Zone+`" `+two.line+"\n"
	dir := writeConfig(t, p, p.Addr, p.KeyFile, lineOne+lineTwo)
	cfg := filepath.Join(dir, "sshdyn.toml")
	b, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, cfg, strings.Replace(string(b), `reload_interval = "0s"`, `reload_interval = "50ms"`, 1))
	d, base := runWithMetrics(t, dir, "")
	gauge := func(name string) float64 {
		t.Helper()
		m := find(scrape(t, base+"/metrics"), name, nil)
		if m == nil {
			t.Fatalf("no %s", name)
		}
		return m.GetGauge().GetValue()
	}
	if g := gauge("sshdyn_authorized_reload_ok"); g != 1 {
		t.Fatalf("sshdyn_authorized_reload_ok = %v at start", g)
	}
	// One's connection stays open: no command (-N). ssh runs LocalCommand
	// once it has logged in.
	loggedIn := filepath.Join(keys, "logged-in")
	held := d.sshCommand(one, []string{"-N", "-o", "PermitLocalCommand=yes", "-o", "LocalCommand=touch " + loggedIn})
	if err := held.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- held.Wait() }()
	waitFor(t, "one's connection to log in", func() bool { _, err := os.Stat(loggedIn); return err == nil })

	writeFile(t, filepath.Join(dir, "authorized_keys"), "a line gone wrong\n"+lineTwo)
	waitFor(t, "the reload", func() bool { return strings.Contains(d.log.String(), "authorized file has bad lines") })
	select {
	case <-exited:
	case <-time.After(5 * time.Second):
		held.Process.Kill()
		t.Fatalf("one's open connection survived its removal:\n%s", d.log.String())
	}
	if r := d.ssh(t, one, nil, "update"); r.code != 255 {
		t.Errorf("removed key one still logs in: %+v", r)
	}
	if r := d.ssh(t, two, nil, "update"); r.code != 0 {
		t.Errorf("key two after the edit: %+v", r)
	}
	if !strings.Contains(d.log.String(), "authorized_keys:1: no valid public key") || !strings.Contains(d.log.String(), "removed=1") {
		t.Errorf("the log does not say what happened:\n%s", d.log.String())
	}
	if g := gauge("sshdyn_authorized_reload_ok"); g != 0 {
		t.Errorf("sshdyn_authorized_reload_ok = %v after a reload with a bad line, want 0", g)
	}
	if c := counter(scrape(t, base+"/metrics"), "sshdyn_authorized_reloads_total", map[string]string{"result": "bad_lines"}); c != 1 {
		t.Errorf("sshdyn_authorized_reloads_total{result=bad_lines} = %v, want 1", c)
	}
	writeFile(t, filepath.Join(dir, "authorized_keys"), lineTwo)
	waitFor(t, "sshdyn_authorized_reload_ok back to 1", func() bool { return gauge("sshdyn_authorized_reload_ok") == 1 })
	if g := gauge("sshdyn_authorized_keys"); g != 1 {
		t.Errorf("sshdyn_authorized_keys = %v, want 1", g)
	}
}

// TestMetricsPprof: metrics_pprof serves Go's profiler beside /metrics.
func TestMetricsPprof(t *testing.T) {
	p := dnstest.Start(t, "sshdyn", dnstest.Options{})
	d, base := runWithMetrics(t, writeConfig(t, p, p.Addr, p.KeyFile, ""), "metrics_pprof = true\n")
	if !strings.Contains(d.log.String(), "profiler served") {
		t.Errorf("no warning that the profiler is served:\n%s", d.log.String())
	}
	resp, err := http.Get(base + "/debug/pprof/goroutine?debug=1")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "goroutine profile:") {
		t.Errorf("GET /debug/pprof/goroutine: %s\n%.300s", resp.Status, body)
	}
}

// runWithMetrics runs the daemon of dir with metrics_listen and the extra
// top-level settings, and returns it and the metrics' base URL.
func runWithMetrics(t *testing.T, dir, settings string) (*daemon, string) {
	t.Helper()
	cfgPath := filepath.Join(dir, "sshdyn.toml")
	b, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, cfgPath, "metrics_listen = \"127.0.0.1:0\"\n"+settings+string(b))
	d := runDaemon(t, dir)
	m := metricsRE.FindStringSubmatch(d.log.String())
	if m == nil {
		t.Fatalf("no metrics address in the log:\n%s", d.log.String())
	}
	return d, "http://" + m[1]
}

func scrape(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parsing %s: %v", url, err)
	}
	return fams
}

// find returns the metric of family name whose labels include labels.
func find(fams map[string]*dto.MetricFamily, name string, labels map[string]string) *dto.Metric {
	f := fams[name]
	if f == nil {
		return nil
	}
next:
	for _, m := range f.Metric {
		for k, v := range labels {
			found := false
			for _, lp := range m.Label {
				if lp.GetName() == k && lp.GetValue() == v {
					found = true
				}
			}
			if !found {
				continue next
			}
		}
		return m
	}
	return nil
}

func counter(fams map[string]*dto.MetricFamily, name string, labels map[string]string) float64 {
	if m := find(fams, name, labels); m != nil {
		return m.GetCounter().GetValue()
	}
	return -1
}

func histogram(fams map[string]*dto.MetricFamily, name string, labels map[string]string) *dto.Histogram {
	if m := find(fams, name, labels); m != nil {
		return m.GetHistogram()
	}
	return nil
}

// waitFor polls cond every 20 ms for up to 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	waitUpTo(t, 10*time.Second, what, cond)
}

func waitUpTo(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited %v for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
