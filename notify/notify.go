// Package notify tells people about their hosts: a host family that went
// stale, recovered, or changed address. Targets are URLs in the spelling
// shoutrrr's users know (ddns-updater, godns), so one can be copied over:
//
//	ntfy://[USER:PASS@]HOST[:PORT]/TOPIC[?scheme=http]
//	generic://HOST[:PORT]/PATH[?disabletls=yes]     (a JSON POST, signed with notify_secret)
//	smtp://[USER:PASS@]HOST:PORT/?from=ADDR&to=ADDR[,ADDR]
//	sendmail://[/PATH/TO/SENDMAIL]?from=ADDR&to=ADDR[,ADDR]   (the local MTA; /usr/sbin/sendmail if no path)
//
// Delivery is in the background, with retries; a target that fails never
// holds anything up.
package notify

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/smtp"
	"net/url"
	"os/exec"
	"strings"
	"sync"
	"time"
)

// Message is one notification.
type Message struct {
	Event  string    `json:"event"` // "stale", "recovered", "changed", "test"
	Host   string    `json:"host,omitempty"`
	Family string    `json:"family,omitempty"` // "A", "AAAA"
	Zone   string    `json:"zone,omitempty"`
	Addr   string    `json:"address,omitempty"`
	Detail string    `json:"detail,omitempty"` // in words
	Time   time.Time `json:"time"`
}

// Title is a one-line summary.
func (m Message) Title() string {
	switch m.Event {
	case "stale":
		return fmt.Sprintf("sshdyn: %s %s is stale", m.Host, m.Family)
	case "recovered":
		return fmt.Sprintf("sshdyn: %s %s is updating again", m.Host, m.Family)
	case "changed":
		return fmt.Sprintf("sshdyn: %s %s is now %s", m.Host, m.Family, m.Addr)
	}
	return "sshdyn: " + m.Event
}

// Text is the title and the detail.
func (m Message) Text() string {
	if m.Detail == "" {
		return m.Title()
	}
	return m.Title() + "\n" + m.Detail
}

// Target delivers messages to one place.
type Target interface {
	Send(ctx context.Context, m Message) error
	String() string // the URL without secrets
}

// Parse returns the target of url; secret signs generic webhooks.
func Parse(raw, secret string) (Target, error) {
	u, err := url.Parse(raw)
	if err == nil && u.Scheme == "sendmail" {
		return parseSendmail(u, raw)
	}
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("notify URL %q: want ntfy://HOST/TOPIC, generic://HOST/PATH or smtp://HOST:PORT/?from=…&to=…", redact(raw))
	}
	q := u.Query()
	switch u.Scheme {
	case "ntfy":
		topic := strings.Trim(u.Path, "/")
		if topic == "" || strings.Contains(topic, "/") {
			return nil, fmt.Errorf("notify URL %s: ntfy needs one topic: ntfy://HOST/TOPIC", redact(raw))
		}
		scheme := "https"
		if q.Get("scheme") == "http" {
			scheme = "http"
		}
		return &ntfy{url: scheme + "://" + u.Host + "/" + topic, user: u.User, shown: redact(raw)}, nil
	case "generic":
		scheme := "https"
		if q.Get("disabletls") == "yes" {
			scheme = "http"
		}
		return &generic{url: scheme + "://" + u.Host + u.Path, secret: []byte(secret), shown: redact(raw)}, nil
	case "smtp":
		from, to := q.Get("from"), q.Get("to")
		if from == "" || to == "" || u.Port() == "" {
			return nil, fmt.Errorf("notify URL %s: smtp needs a port, from= and to=: smtp://HOST:PORT/?from=ADDR&to=ADDR", redact(raw))
		}
		return &mail{addr: u.Host, user: u.User, from: from, to: strings.Split(to, ","), shown: redact(raw)}, nil
	}
	return nil, fmt.Errorf("notify URL %s: unknown scheme %q (want ntfy, generic, smtp or sendmail)", redact(raw), u.Scheme)
}

// redact returns raw with any password replaced.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		return raw
	}
	if _, has := u.User.Password(); has {
		u.User = url.UserPassword(u.User.Username(), "…")
	}
	return u.String()
}

var client = &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

func post(ctx context.Context, req *http.Request) error {
	resp, err := client.Do(req.WithContext(ctx))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	return nil
}

// ntfy publishes to an ntfy topic: the text as the body, the title and
// tags as headers (ntfy's publishing API).
type ntfy struct {
	url   string
	user  *url.Userinfo
	shown string
}

func (n *ntfy) String() string { return n.shown }

func (n *ntfy) Send(ctx context.Context, m Message) error {
	req, err := http.NewRequest(http.MethodPost, n.url, strings.NewReader(m.Detail))
	if err != nil {
		return err
	}
	req.Header.Set("Title", m.Title())
	tags := map[string]string{"stale": "warning", "recovered": "white_check_mark", "changed": "arrows_counterclockwise"}[m.Event]
	if tags != "" {
		req.Header.Set("Tags", tags)
	}
	if m.Event == "stale" {
		req.Header.Set("Priority", "high")
	}
	if n.user != nil {
		pass, _ := n.user.Password()
		req.SetBasicAuth(n.user.Username(), pass)
	}
	return post(ctx, req)
}

// generic POSTs the message as JSON; with a secret, the body's
// HMAC-SHA256 goes in X-Sshdyn-Signature: sha256=HEX.
type generic struct {
	url    string
	secret []byte
	shown  string
}

func (g *generic) String() string { return g.shown }

func (g *generic) Send(ctx context.Context, m Message) error {
	body, err := json.Marshal(m)
	if err != nil {
		return err
	}
	req, err := http.NewRequest(http.MethodPost, g.url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if len(g.secret) > 0 {
		req.Header.Set("X-Sshdyn-Signature", Sign(g.secret, body))
	}
	return post(ctx, req)
}

// Sign returns the X-Sshdyn-Signature of body under secret.
func Sign(secret, body []byte) string {
	mac := hmac.New(sha256.New, secret)
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// mail sends an e-mail over SMTP, with STARTTLS when the server offers it
// (net/smtp), and PLAIN authentication if the URL has a user.
type mail struct {
	addr  string
	user  *url.Userinfo
	from  string
	to    []string
	shown string
}

func (m *mail) String() string { return m.shown }

func (m *mail) Send(ctx context.Context, msg Message) error {
	var auth smtp.Auth
	if m.user != nil {
		host, _, _ := net.SplitHostPort(m.addr)
		pass, _ := m.user.Password()
		auth = smtp.PlainAuth("", m.user.Username(), pass, host)
	}
	body := fmt.Sprintf("From: %s\r\nTo: %s\r\nSubject: %s\r\nDate: %s\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n%s\r\n",
		m.from, strings.Join(m.to, ", "), msg.Title(), msg.Time.Format(time.RFC1123Z), strings.ReplaceAll(msg.Text(), "\n", "\r\n"))
	done := make(chan error, 1)
	go func() { done <- smtp.SendMail(m.addr, auth, m.from, m.to, []byte(body)) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// DefaultSendmail is the program a sendmail:// target runs when its URL
// names none.
const DefaultSendmail = "/usr/sbin/sendmail"

// sendmailTarget hands an e-mail to the local MTA's sendmail program
// (Exim, Postfix, msmtp, …): PROGRAM -i -f FROM -- TO…, the message on
// its standard input.
type sendmailTarget struct {
	program string
	from    string
	to      []string
	shown   string
}

func parseSendmail(u *url.URL, raw string) (Target, error) {
	if u.Host != "" || u.User != nil {
		return nil, fmt.Errorf("notify URL %s: sendmail takes a path, not a host: sendmail:///usr/sbin/sendmail?from=ADDR&to=ADDR", raw)
	}
	program := u.Path
	if program == "" {
		program = DefaultSendmail
	}
	q := u.Query()
	from, to := q.Get("from"), strings.Split(q.Get("to"), ",")
	if from == "" || q.Get("to") == "" {
		return nil, fmt.Errorf("notify URL %s: sendmail needs from= and to=: sendmail:///usr/sbin/sendmail?from=ADDR&to=ADDR", raw)
	}
	// An address is an argument of the program: none may look like an
	// option, or hold a line break (a header of its own).
	for _, a := range append([]string{from}, to...) {
		if a == "" || strings.HasPrefix(a, "-") || strings.ContainsAny(a, "\r\n\x00 ") {
			return nil, fmt.Errorf("notify URL %s: %q is not an e-mail address", raw, a)
		}
	}
	return &sendmailTarget{program: program, from: from, to: to, shown: raw}, nil
}

func (m *sendmailTarget) String() string { return m.shown }

func (m *sendmailTarget) Send(ctx context.Context, msg Message) error {
	body := fmt.Sprintf("From: %s\nTo: %s\nSubject: %s\nDate: %s\nContent-Type: text/plain; charset=utf-8\n\n%s\n",
		m.from, strings.Join(m.to, ", "), msg.Title(), msg.Time.Format(time.RFC1123Z), msg.Text())
	cmd := exec.CommandContext(ctx, m.program, append([]string{"-i", "-f", m.from, "--"}, m.to...)...)
	cmd.Stdin = strings.NewReader(body)
	out, err := cmd.CombinedOutput()
	if err != nil {
		if line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n"); line != "" {
			return fmt.Errorf("%s: %v: %s", m.program, err, line)
		}
		return fmt.Errorf("%s: %v", m.program, err)
	}
	return nil
}

// Dispatcher delivers messages to targets in the background: a bounded
// queue, each delivery tried up to 5 times with backoff (0.5 s, 1 s,
// 2 s, 4 s); a message that cannot be queued or delivered is counted and
// logged, and holds nothing up.
type Dispatcher struct {
	Log *slog.Logger
	// Delivered, if set, is told of each delivery's outcome (metrics):
	// the target's scheme and whether it arrived.
	Delivered func(scheme string, ok bool)
	// Backoff is the first retry's wait (0.5 s if zero), doubled each try.
	Backoff time.Duration

	once  sync.Once
	queue chan job
}

type job struct {
	t Target
	m Message
}

const queueLen = 1000

func (d *Dispatcher) init() {
	d.queue = make(chan job, queueLen)
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	if d.Backoff <= 0 {
		d.Backoff = 500 * time.Millisecond
	}
}

// Send queues m for each target.
func (d *Dispatcher) Send(m Message, targets ...Target) {
	d.once.Do(d.init)
	for _, t := range targets {
		select {
		case d.queue <- job{t, m}:
		default:
			d.outcome(t, false)
			d.Log.Warn("notification dropped: queue full", "target", t.String(), "event", m.Event, "host", m.Host)
		}
	}
}

// Run delivers until ctx ends; up to 8 deliveries run at once.
func (d *Dispatcher) Run(ctx context.Context) {
	d.once.Do(d.init)
	sem := make(chan struct{}, 8)
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		select {
		case <-ctx.Done():
			return
		case j := <-d.queue:
			sem <- struct{}{}
			wg.Go(func() {
				defer func() { <-sem }()
				d.deliver(ctx, j)
			})
		}
	}
}

func (d *Dispatcher) deliver(ctx context.Context, j job) {
	wait := d.Backoff
	var err error
	for try := 0; try < 5; try++ {
		sctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		err = j.t.Send(sctx, j.m)
		cancel()
		if err == nil {
			d.outcome(j.t, true)
			return
		}
		if try == 4 {
			break
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait *= 2
	}
	d.outcome(j.t, false)
	d.Log.Warn("notification not delivered", "target", j.t.String(), "event", j.m.Event, "host", j.m.Host, "err", err)
}

func (d *Dispatcher) outcome(t Target, ok bool) {
	if d.Delivered != nil {
		scheme, _, _ := strings.Cut(t.String(), ":")
		d.Delivered(scheme, ok)
	}
}

// SendNow delivers m to t once, now: sshdyn notify-test.
func SendNow(ctx context.Context, t Target, m Message) error {
	if t == nil {
		return errors.New("no target")
	}
	return t.Send(ctx, m)
}
