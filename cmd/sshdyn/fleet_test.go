//go:build integration

package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sshdyn/sshdyn/internal/dnstest"
	"github.com/sshdyn/sshdyn/notify"
)

// inbox is a notification receiver: ntfy's publishing API (POST /TOPIC,
// Title header) and a generic webhook that verifies its signature.
type inbox struct {
	t      *testing.T
	secret string
	mu     sync.Mutex
	got    []string // "ntfy TITLE" or "webhook EVENT HOST FAMILY"
	bodies []string // ntfy's message bodies
}

func (in *inbox) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	in.mu.Lock()
	defer in.mu.Unlock()
	switch r.URL.Path {
	case "/homes":
		in.got = append(in.got, "ntfy "+r.Header.Get("Title"))
		in.bodies = append(in.bodies, string(body))
	case "/hook":
		if sig := r.Header.Get("X-Sshdyn-Signature"); sig != notify.Sign([]byte(in.secret), body) {
			in.t.Errorf("webhook signature %q does not verify", sig)
		}
		var m notify.Message
		json.Unmarshal(body, &m)
		in.got = append(in.got, "webhook "+m.Event+" "+m.Host+" "+m.Family)
	default:
		w.WriteHeader(http.StatusNotFound)
	}
}

func (in *inbox) count(s string) int {
	in.mu.Lock()
	defer in.mu.Unlock()
	n := 0
	for _, g := range in.got {
		if g == s {
			n++
		}
	}
	return n
}

// TestFleet: the operator's view end to end (issue 33). With
// stale_after = "3s", a host updated over IPv4 every second but not over
// IPv6 has only its AAAA flagged stale, told once to an ntfy topic and to
// a signed webhook; "sshdyn hosts --stale" lists it and exits 1;
// the next IPv6 update recovers it, told once; "sshdyn history" shows
// the host's updates.
func TestFleet(t *testing.T) {
	p := dnstest.Start(t, "sshdyn", dnstest.Options{})
	in := &inbox{t: t, secret: "s3cret"}
	rx := httptest.NewServer(in)
	defer rx.Close()
	addr := strings.TrimPrefix(rx.URL, "http://")
	// A webhook that is down: every try answered 503.
	var downTries atomic.Int32
	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var m struct{ Event, Family string }
		if json.NewDecoder(r.Body).Decode(&m) == nil && m.Event == "stale" && m.Family == "AAAA" {
			downTries.Add(1)
		}
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer down.Close()
	key := newClientKey(t, t.TempDir(), "home")
	host := "home." + p.Zone
	dir := writeConfig(t, p, p.Addr, p.KeyFile, `host="`+host+`" `+key.line)
	cfg := filepath.Join(dir, "sshdyn.toml")
	b, _ := os.ReadFile(cfg)
	writeFile(t, cfg, `stale_after = "3s"`+"\n"+
		`notify = ["ntfy://`+addr+`/homes?scheme=http", "generic://`+addr+`/hook?disabletls=yes", "generic://`+strings.TrimPrefix(down.URL, "http://")+`/down?disabletls=yes"]`+"\n"+
		`notify_secret = "s3cret"`+"\n"+string(b))
	d, metricsURL := runWithMetrics(t, dir, "")
	for _, opts := range [][]string{nil, {"-6"}} {
		if r := d.ssh(t, key, opts, "update"); r.code != 0 {
			t.Fatalf("update %v: %+v", opts, r)
		}
	}
	stale := "ntfy sshdyn: " + host + " AAAA is stale"
	deadline := time.Now().Add(15 * time.Second)
	for in.count(stale) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no stale notification in 15 s; got %q\n%s", in.got, d.log.String())
		}
		if r := d.ssh(t, key, nil, "update"); r.code != 0 { // IPv4 keeps updating
			t.Fatalf("IPv4 update: %+v", r)
		}
		time.Sleep(time.Second)
	}
	waitFor(t, "the webhook", func() bool { return in.count("webhook stale "+host+" AAAA") == 1 })
	if n := in.count("ntfy sshdyn: " + host + " A is stale"); n != 0 {
		t.Errorf("A, updated every second, was told stale %d times", n)
	}
	// The endpoint that is down: tried 5 times, then counted as failed;
	// the others delivered; updates went on all along.
	// (5 tries with 0.5, 1, 2 and 4 s between them), while IPv4 keeps
	// updating.
	failed := func() float64 {
		return counter(scrape(t, metricsURL+"/metrics"), "sshdyn_notifications_total", map[string]string{"scheme": "generic", "result": "failed"})
	}
	deadline = time.Now().Add(20 * time.Second)
	for failed() != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("the failed delivery not counted in 20 s:\n%s", scrape(t, metricsURL+"/metrics"))
		}
		if r := d.ssh(t, key, nil, "update"); r.code != 0 {
			t.Fatalf("an update while a notification endpoint is down: %+v", r)
		}
		time.Sleep(time.Second)
	}
	if n := downTries.Load(); n != 5 {
		t.Errorf("the endpoint that is down was tried %d times, want 5", n)
	}
	if c := counter(scrape(t, metricsURL+"/metrics"), "sshdyn_notifications_total", map[string]string{"scheme": "ntfy", "result": "delivered"}); c < 1 {
		t.Errorf("ntfy deliveries counted %v", c)
	}

	hosts := func(args ...string) (int, string) {
		cmd := exec.Command(binary, append([]string{"hosts", "--config", cfg}, args...)...)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		}
		return code, out.String()
	}
	code, out := hosts("--stale", "--json")
	var views []HostView
	if err := json.Unmarshal([]byte(out), &views); err != nil || code != 1 || len(views) != 1 || views[0].Family != "AAAA" || views[0].State != "stale" ||
		views[0].Address != "::1" || len(views[0].InDNS) != 1 || views[0].InDNS[0] != "::1" {
		t.Errorf("hosts --stale --json: exit %d, %v\n%s", code, err, out)
	}
	if code, out := hosts(); code != 1 || !strings.Contains(out, "current") || !strings.Contains(out, "stale") {
		t.Errorf("hosts: exit %d\n%s", code, out)
	}

	if r := d.ssh(t, key, []string{"-6"}, "update"); r.code != 0 {
		t.Fatalf("IPv6 update: %+v", r)
	}
	waitFor(t, "the recovery", func() bool { return in.count("ntfy sshdyn: "+host+" AAAA is updating again") == 1 })
	time.Sleep(2 * time.Second) // more looks of the watcher: told once
	if n := in.count(stale); n != 1 {
		t.Errorf("stale told %d times, want once", n)
	}
	if n := in.count("ntfy sshdyn: " + host + " AAAA is updating again"); n != 1 {
		t.Errorf("recovery told %d times, want once", n)
	}
	// (A, no longer updated since, may be stale by now: only AAAA counts.)
	_, out = hosts("--stale", "--json")
	views = nil
	if err := json.Unmarshal([]byte(out), &views); err != nil {
		t.Fatalf("hosts --stale --json: %v\n%s", err, out)
	}
	for _, v := range views {
		if v.Family == "AAAA" {
			t.Errorf("AAAA still listed stale after its recovery: %+v", v)
		}
	}
	// The key owner's own view, over SSH.
	if r := d.ssh(t, key, nil, "status"); r.code != 0 || !strings.Contains(r.stdout, "# "+host+" AAAA: last update ") || !strings.Contains(r.stdout, "(nochg), last good or nochg ") {
		t.Errorf("status: %+v", r)
	}
	if r := d.ssh(t, key, nil, "history"); r.code != 0 || strings.Count(r.stdout, "\n") < 4 || !strings.Contains(r.stdout, " "+host+" AAAA nochg ::1 ssh\n") {
		t.Errorf("history over SSH: %+v", r)
	}
	// notify-test: every configured target, and one given that fails.
	nt := exec.Command(binary, "notify-test", "--config", cfg)
	ntOut, err := nt.CombinedOutput()
	if err == nil || strings.Count(string(ntOut), ": delivered") != 2 || !strings.Contains(string(ntOut), "/down?disabletls=yes: not delivered: HTTP 503") || in.count("ntfy sshdyn: test") != 1 {
		t.Errorf("notify-test: %v\n%s", err, ntOut)
	}
	nt = exec.Command(binary, "notify-test", "--config", cfg, "generic://127.0.0.1:1/x?disabletls=yes")
	if out, err := nt.CombinedOutput(); err == nil || !strings.Contains(string(out), "not delivered") {
		t.Errorf("notify-test to a closed port: %v\n%s", err, out)
	}
	cmd := exec.Command(binary, "history", "--config", cfg, "--json", host)
	hout, err := cmd.Output()
	var evs []map[string]any
	if err != nil || json.Unmarshal(hout, &evs) != nil || len(evs) < 4 || evs[0]["family"] != "AAAA" || evs[0]["outcome"] != "nochg" {
		t.Errorf("history: %v\n%s", err, hout)
	}
}

// TestStoreDown: two frontends on one BIND record into one PostgreSQL
// store (one history); with PostgreSQL stopped, updates go on with their usual
// answers, and the loss is counted (sshdyn_state_dropped_total); once it
// is back, what happens is recorded again.
func TestStoreDown(t *testing.T) {
	p := dnstest.Start(t, "bind", dnstest.Options{})
	pg := dnstest.StartPG(t, "sshdyn")
	key := newClientKey(t, t.TempDir(), "home")
	host := "home." + p.Zone
	var ds []*daemon
	var metrics []string
	for range 2 {
		dir := writeConfig(t, p, p.Addr, p.KeyFile, `host="`+host+`" `+key.line)
		cfg := filepath.Join(dir, "sshdyn.toml")
		b, _ := os.ReadFile(cfg)
		writeFile(t, cfg, "state_db = "+strconv.Quote(pg.URL("sshdyn"))+"\n"+string(b))
		d, m := runWithMetrics(t, dir, "")
		ds, metrics = append(ds, d), append(metrics, m)
	}
	for i, d := range ds {
		if r := d.ssh(t, key, []string{"-b", "127.0.0." + strconv.Itoa(i+2)}, "update"); r.code != 0 {
			t.Fatalf("frontend %d: %+v", i, r)
		}
	}
	histories := func() int {
		cmd := exec.Command(binary, "history", "--config", filepath.Join(ds[0].dir, "sshdyn.toml"), "--json", host)
		out, err := cmd.Output()
		var evs []map[string]any
		if err != nil || json.Unmarshal(out, &evs) != nil {
			return -1
		}
		return len(evs)
	}
	waitFor(t, "both frontends' updates in one history", func() bool { return histories() == 2 })
	fams := scrape(t, metrics[1]+"/metrics")
	for _, c := range []struct {
		family, state string
		want          float64
	}{{"A", "current", 1}, {"AAAA", "never", 1}, {"A", "stale", 0}} {
		m := find(fams, "sshdyn_hosts", map[string]string{"zone": p.Zone, "family": c.family, "state": c.state})
		if m == nil || m.GetGauge().GetValue() != c.want {
			t.Errorf("sshdyn_hosts{family=%s,state=%s} = %v, want %v", c.family, c.state, m, c.want)
		}
	}

	if err := pg.Stop(); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if r := ds[0].ssh(t, key, []string{"-b", "127.0.0." + strconv.Itoa(i+4)}, "update"); r.code != 0 || !strings.HasPrefix(r.stdout, "good ") {
			t.Fatalf("an update with the store down: %+v", r)
		}
	}
	waitFor(t, "the loss counted", func() bool {
		return counter(scrape(t, metrics[0]+"/metrics"), "sshdyn_state_dropped_total", nil) >= 1
	})
	ds[0].waitLog(t, "events not recorded (updates are not affected)")

	if err := pg.Start(); err != nil {
		t.Fatal(err)
	}
	if r := ds[1].ssh(t, key, []string{"-b", "127.0.0.9"}, "update"); r.code != 0 {
		t.Fatalf("after the store is back: %+v", r)
	}
	waitFor(t, "recording again", func() bool { return histories() == 3 })
}

var adminListenRE = regexp.MustCompile(`msg="admin listening" component=admin addr=(\S+)`)

// TestAdminPage: the operator's page in a real browser (headless
// Chromium): every host with its state, the stale one flagged, a line's
// comment holding <script> shown as text; the JSON views; a screenshot.
func TestAdminPage(t *testing.T) {
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatal("chromium not found: scripts/test.sh installs it")
	}
	p := dnstest.Start(t, "sshdyn", dnstest.Options{})
	home, nas := newClientKey(t, t.TempDir(), "home"), newClientKey(t, t.TempDir(), "nas")
	dir := writeConfig(t, p, p.Addr, p.KeyFile, `host="home.`+p.Zone+`" `+home.line+` <script>alert(1)</script>`, `stale-after="1s",host="nas.`+p.Zone+`" `+nas.line+" the NAS")
	cfg := filepath.Join(dir, "sshdyn.toml")
	b, _ := os.ReadFile(cfg)
	writeFile(t, cfg, "admin_listen = \"127.0.0.1:0\"\nstale_after = \"1h\"\n"+string(b))
	d := runDaemon(t, dir)
	m := adminListenRE.FindStringSubmatch(d.log.String())
	if m == nil {
		t.Fatalf("no admin listener:\n%s", d.log.String())
	}
	base := "http://" + m[1]
	for _, k := range []clientKey{home, nas} {
		if r := d.ssh(t, k, nil, "update"); r.code != 0 {
			t.Fatalf("update: %+v", r)
		}
	}
	get := func(path string) (int, string) {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	waitFor(t, "nas to go stale", func() bool {
		_, body := get("/hosts.json")
		var views []HostView
		json.Unmarshal([]byte(body), &views)
		for _, v := range views {
			if v.Host == "nas."+p.Zone && v.Family == "A" && v.State == "stale" {
				return true
			}
		}
		return false
	})
	if code, body := get("/hosts/home." + p.Zone + ".json"); code != 200 || !strings.Contains(body, `"Outcome":"good"`) {
		t.Errorf("a host's history as JSON: %d %s", code, body)
	}
	if code, _ := get("/nothing"); code != 404 {
		t.Errorf("an unknown path: %d", code)
	}

	shot := filepath.Join(t.TempDir(), "hosts.png")
	browse := func(args ...string) string {
		cmd := exec.Command(chromium, append([]string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--user-data-dir=" + t.TempDir()}, args...)...)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("chromium %v: %v", args, err)
		}
		return string(out)
	}
	dom := browse("--dump-dom", base+"/hosts")
	if !strings.Contains(dom, "&lt;script&gt;alert(1)&lt;/script&gt;") || strings.Contains(dom, "<script>alert") {
		t.Errorf("the comment is not shown as text:\n%s", dom)
	}
	if !regexp.MustCompile(`<tr class="stale">\s*<td><a href="/hosts/nas\.` + regexp.QuoteMeta(p.Zone) + `">`).MatchString(dom) {
		t.Errorf("nas is not flagged stale on the page:\n%s", dom)
	}
	if !strings.Contains(dom, `<tr class="current">`) || !strings.Contains(dom, `<tr class="never">`) {
		t.Errorf("current and never-seen families are not shown:\n%s", dom)
	}
	browse("--screenshot="+shot, "--window-size=1280,720", base+"/hosts")
	if fi, err := os.Stat(shot); err != nil || fi.Size() < 5000 {
		t.Fatalf("no screenshot: %v", err)
	}
	if dst := os.Getenv("SSHDYN_SCREENSHOT"); dst != "" { // for the documentation
		b, _ := os.ReadFile(shot)
		os.WriteFile(dst, b, 0o644)
	}
	history := browse("--dump-dom", base+"/hosts/home."+p.Zone)
	if !strings.Contains(history, "<td>good</td>") {
		t.Errorf("home's history page:\n%s", history)
	}
}

// TestAdminOffLoopback: off loopback, the admin view is served over TLS
// only, and only to admin_users (HTTP Basic, a bcrypt hash).
func TestAdminOffLoopback(t *testing.T) {
	p := dnstest.Start(t, "sshdyn", dnstest.Options{})
	key := newClientKey(t, t.TempDir(), "home")
	dir := writeConfig(t, p, p.Addr, p.KeyFile, `host="home.`+p.Zone+`" `+key.line)
	cert, certKey := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	writeCert(t, cert, certKey)
	hash, err := routerHash()
	if err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "sshdyn.toml")
	b, _ := os.ReadFile(cfg)
	writeFile(t, cfg, fmt.Sprintf("admin_listen = \"0.0.0.0:0\"\ntls_cert = %q\ntls_key = %q\nadmin_users = { ops = %q }\n", cert, certKey, hash)+string(b))
	d := runDaemon(t, dir)
	m := adminListenRE.FindStringSubmatch(d.log.String())
	if m == nil || !strings.Contains(d.log.String(), "tls=true") {
		t.Fatalf("no admin listener over TLS:\n%s", d.log.String())
	}
	url := "https://127.0.0.1:" + m[1][strings.LastIndex(m[1], ":")+1:] + "/hosts.json"
	code := func(args ...string) string {
		out, _ := runRouter(t, "curl", append([]string{"-sS", "--cacert", cert, "-o", "/dev/null", "-w", "%{http_code}", url}, args...)...)
		return out
	}
	if c := code(); c != "401" {
		t.Errorf("no credentials: HTTP %s, want 401", c)
	}
	if c := code("-u", "ops:wrong"); c != "401" {
		t.Errorf("a wrong password: HTTP %s, want 401", c)
	}
	if c := code("-u", "ops:"+routerPassword); c != "200" {
		t.Errorf("admin_users' password: HTTP %s, want 200", c)
	}
	if out, err := runRouter(t, "curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", strings.Replace(url, "https", "http", 1)); err == nil && out == "200" {
		t.Errorf("plain HTTP answered: %s", out)
	}
}

// TestNotifyChanges: with notify_changes, every change of a host's
// address is told once, to the line's own notify= target, with the old
// address; a nochg is not told.
func TestNotifyChanges(t *testing.T) {
	p := dnstest.Start(t, "sshdyn", dnstest.Options{})
	in := &inbox{t: t}
	rx := httptest.NewServer(in)
	defer rx.Close()
	key := newClientKey(t, t.TempDir(), "home")
	host := "home." + p.Zone
	dir := writeConfig(t, p, p.Addr, p.KeyFile, `host="`+host+`",notify="ntfy://`+strings.TrimPrefix(rx.URL, "http://")+`/homes?scheme=http" `+key.line)
	cfg := filepath.Join(dir, "sshdyn.toml")
	b, _ := os.ReadFile(cfg)
	writeFile(t, cfg, "notify_changes = true\n"+string(b))
	d := runDaemon(t, dir)
	for _, opts := range [][]string{nil, nil, {"-b", "127.0.0.2"}} {
		if r := d.ssh(t, key, opts, "update"); r.code != 0 {
			t.Fatalf("update %v: %+v", opts, r)
		}
	}
	first, second := "ntfy sshdyn: "+host+" A is now 127.0.0.1", "ntfy sshdyn: "+host+" A is now 127.0.0.2"
	waitFor(t, "both changes told", func() bool { return in.count(first) == 1 && in.count(second) == 1 })
	time.Sleep(time.Second) // a nochg told would arrive by now
	in.mu.Lock()
	defer in.mu.Unlock()
	if len(in.got) != 2 || !strings.Contains(in.bodies[1], "was 127.0.0.1; updated over ssh by SHA256:") || !strings.Contains(in.bodies[0], "was none;") {
		t.Errorf("told %q, bodies %q; want the two changes, each once, with the old address", in.got, in.bodies)
	}
}

// TestStateDirNotWritable: sshdyn running as an unprivileged user
// (nobody) with a state_db in a directory it cannot write refuses to
// start, check says so too, naming the directory and the user.
func TestStateDirNotWritable(t *testing.T) {
	setpriv, err := exec.LookPath("setpriv")
	if err != nil {
		t.Fatal("setpriv (util-linux) is needed")
	}
	if os.Getuid() != 0 {
		t.Fatal("this test runs as root, to run sshdyn as nobody")
	}
	const nobody = 65534
	dir := t.TempDir()
	// nobody reaches the binary and the test's directory, and owns the
	// files in it; "ro" stays root's.
	for _, d := range []string{filepath.Dir(binary), filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	key := newClientKey(t, t.TempDir(), "k")
	writeFile(t, filepath.Join(dir, "tsig.key"), "hmac-sha256:sshdyn:c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA==\n")
	writeFile(t, filepath.Join(dir, "authorized_keys"), `host="home.dyn.example.com" `+key.line)
	ro := filepath.Join(dir, "ro")
	if err := os.Mkdir(ro, 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "sshdyn.toml")
	writeFile(t, cfg, "listen = [\"127.0.0.1:0\"]\nhost_key = \"host_key\"\nauthorized_keys = \"authorized_keys\"\nstate_db = \""+filepath.Join(ro, "state.db")+"\"\n"+
		"[[zone]]\nname = \"dyn.example.com\"\nprimary = \"127.0.0.1:1\"\ntsig_key = \"tsig.key\"\n")
	for _, f := range []string{dir, cfg, filepath.Join(dir, "tsig.key"), filepath.Join(dir, "authorized_keys")} {
		if err := os.Chown(f, nobody, nobody); err != nil {
			t.Fatal(err)
		}
	}
	want := "state_db " + filepath.Join(ro, "state.db") + ": the directory " + ro + " is not writable by this process (uid 65534)"
	for _, cmd := range []string{"check", "serve"} {
		c := exec.Command(setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", binary, cmd, "--config", cfg)
		out, err := c.CombinedOutput()
		if err == nil || !strings.Contains(string(out), want) {
			t.Errorf("%s as nobody: %v\n%s\nwant a refusal with %q", cmd, err, out, want)
		}
	}
	if _, err := os.Stat(filepath.Join(ro, "state.db")); err == nil {
		t.Error("a state.db was made in the directory nobody cannot write")
	}
}
