package notify

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// receiver records the requests it gets; it fails the first failN.
type receiver struct {
	mu    sync.Mutex
	reqs  []*http.Request
	body  []string
	failN int
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	b, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.failN > 0 {
		r.failN--
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	r.reqs = append(r.reqs, req)
	r.body = append(r.body, string(b))
}

func (r *receiver) got() ([]*http.Request, []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.reqs, r.body
}

var msg = Message{Event: "stale", Host: "home.dyn.example.com", Family: "AAAA", Zone: "dyn.example.com", Detail: "no update since …", Time: time.Unix(1_800_000_000, 0).UTC()}

// TestNtfy: the request ntfy's publishing API takes: POST /TOPIC, the
// detail as the body, Title, Tags and Priority headers, Basic auth.
func TestNtfy(t *testing.T) {
	r := &receiver{}
	s := httptest.NewServer(r)
	defer s.Close()
	tg, err := Parse("ntfy://user:pw@"+strings.TrimPrefix(s.URL, "http://")+"/homes?scheme=http", "")
	if err != nil {
		t.Fatal(err)
	}
	if tg.String() != "ntfy://user:%E2%80%A6@"+strings.TrimPrefix(s.URL, "http://")+"/homes?scheme=http" {
		t.Errorf("shown as %q: the password must not show", tg.String())
	}
	if err := tg.Send(context.Background(), msg); err != nil {
		t.Fatal(err)
	}
	reqs, body := r.got()
	if len(reqs) != 1 {
		t.Fatalf("%d requests", len(reqs))
	}
	q := reqs[0]
	user, pass, _ := q.BasicAuth()
	if q.Method != http.MethodPost || q.URL.Path != "/homes" || q.Header.Get("Title") != "sshdyn: home.dyn.example.com AAAA is stale" ||
		q.Header.Get("Tags") != "warning" || q.Header.Get("Priority") != "high" || user != "user" || pass != "pw" || body[0] != "no update since …" {
		t.Errorf("request %s %s %v %q", q.Method, q.URL, q.Header, body[0])
	}
}

// TestGenericWebhook: a JSON POST of the message, its HMAC in
// X-Sshdyn-Signature; delivery through the Dispatcher is retried until
// the receiver answers 2xx, and counted.
func TestGenericWebhook(t *testing.T) {
	r := &receiver{failN: 2}
	s := httptest.NewServer(r)
	defer s.Close()
	tg, err := Parse("generic://"+strings.TrimPrefix(s.URL, "http://")+"/hook?disabletls=yes", "s3cret")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var outcomes []bool
	d := &Dispatcher{Backoff: 10 * time.Millisecond, Delivered: func(scheme string, ok bool) {
		mu.Lock()
		outcomes = append(outcomes, ok)
		mu.Unlock()
		if scheme != "generic" {
			t.Errorf("scheme %q", scheme)
		}
	}}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go d.Run(ctx)
	d.Send(msg, tg)
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if reqs, _ := r.got(); len(reqs) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("not delivered after two failures")
		}
	}
	reqs, body := r.got()
	if got, want := reqs[0].Header.Get("X-Sshdyn-Signature"), Sign([]byte("s3cret"), []byte(body[0])); got != want {
		t.Errorf("signature %q, want %q", got, want)
	}
	var m Message
	if err := json.Unmarshal([]byte(body[0]), &m); err != nil || m.Host != msg.Host || m.Family != "AAAA" || m.Event != "stale" {
		t.Errorf("body %q: %v", body[0], err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(outcomes) != 1 || !outcomes[0] {
		t.Errorf("outcomes %v, want one delivery", outcomes)
	}
}

func TestParseErrors(t *testing.T) {
	for _, c := range []struct{ url, want string }{
		{"mailto:x@example.com", "want ntfy://HOST/TOPIC"},
		{"telegram://token@telegram", `unknown scheme "telegram"`},
		{"ntfy://ntfy.sh/", "ntfy needs one topic"},
		{"smtp://mail.example.com/?from=a@example.com&to=b@example.com", "smtp needs a port"},
		{"smtp://u:secret@mail.example.com:25/?to=b@example.com", "smtp://u:%E2%80%A6@mail.example.com:25/"},
	} {
		if _, err := Parse(c.url, ""); err == nil || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "secret") {
			t.Errorf("%s: %v, want %q", c.url, err, c.want)
		}
	}
}

// TestSendmailURLs: a sendmail:// URL names a program path (or none:
// /usr/sbin/sendmail), from= and to=; no address can pass as an option
// or carry a header of its own.
func TestSendmailURLs(t *testing.T) {
	tg, err := Parse("sendmail://?from=sshdyn@example.com&to=ops@example.com", "")
	if err != nil || tg.(*sendmailTarget).program != DefaultSendmail {
		t.Errorf("no path: %v %v", tg, err)
	}
	for _, bad := range []string{
		"sendmail:///usr/sbin/sendmail?to=ops@example.com",
		"sendmail:///usr/sbin/sendmail?from=a@example.com",
		"sendmail://mail.example.com/?from=a@example.com&to=b@example.com",
		"sendmail:///usr/sbin/sendmail?from=a@example.com&to=-oQ/tmp/x",
		"sendmail:///usr/sbin/sendmail?from=-X/tmp/log&to=b@example.com",
		"sendmail:///usr/sbin/sendmail?from=a@example.com&to=b@example.com%0ABcc:c@example.com",
	} {
		if _, err := Parse(bad, ""); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}
