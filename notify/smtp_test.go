package notify

import (
	"context"
	"io"
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// mailbox is an SMTP server's backend (emersion/go-smtp, on loopback)
// that keeps what it is sent, and checks PLAIN authentication.
type mailbox struct {
	mu    sync.Mutex
	mails []mailed
}

type mailed struct {
	from, user string
	to         []string
	data       string
}

type session struct {
	box *mailbox
	m   mailed
}

func (b *mailbox) NewSession(*smtp.Conn) (smtp.Session, error) { return &session{box: b}, nil }

func (s *session) AuthMechanisms() []string { return []string{sasl.Plain} }
func (s *session) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(identity, user, pass string) error {
		if user != "sshdyn" || pass != "mail-secret" {
			return smtp.ErrAuthFailed
		}
		s.m.user = user
		return nil
	}), nil
}
func (s *session) Mail(from string, _ *smtp.MailOptions) error { s.m.from = from; return nil }
func (s *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.m.to = append(s.m.to, to)
	return nil
}
func (s *session) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	s.m.data = string(b)
	s.box.mu.Lock()
	s.box.mails = append(s.box.mails, s.m)
	s.box.mu.Unlock()
	return err
}
func (s *session) Reset()        {}
func (s *session) Logout() error { return nil }

// TestSMTP: an smtp:// target sends one e-mail, with PLAIN
// authentication (allowed without TLS on loopback), the title as its
// subject and the detail in its body, to every recipient; a wrong
// password is an error.
func TestSMTP(t *testing.T) {
	box := &mailbox{}
	srv := smtp.NewServer(box)
	srv.Domain = "localhost"
	srv.AllowInsecureAuth = true
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(l)
	defer srv.Close()
	_, m := sendOne(t, box, "smtp://sshdyn:mail-secret@"+l.Addr().String()+"/?from=sshdyn@example.com&to=ops@example.com,home@example.net")
	if m.user != "sshdyn" || m.from != "sshdyn@example.com" || len(m.to) != 2 || m.to[1] != "home@example.net" ||
		!strings.Contains(m.data, "Subject: sshdyn: home.dyn.example.com AAAA is stale\r\n") || !strings.Contains(m.data, "\r\n\r\nsshdyn: home.dyn.example.com AAAA is stale\r\nno update since") {
		t.Errorf("mail %+v", m)
	}
	bad, _ := Parse("smtp://sshdyn:wrong@"+l.Addr().String()+"/?from=sshdyn@example.com&to=ops@example.com", "")
	if err := bad.Send(context.Background(), msg); err == nil {
		t.Error("a wrong password was accepted")
	}
}

// sendOne sends msg to the target url, and returns the target and the
// one mail box then holds.
func sendOne(t *testing.T, box *mailbox, url string) (Target, mailed) {
	t.Helper()
	tg, err := Parse(url, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := tg.Send(context.Background(), msg); err != nil {
		t.Fatal(err)
	}
	box.mu.Lock()
	mails := box.mails
	box.mu.Unlock()
	if len(mails) != 1 {
		t.Fatalf("%d mails", len(mails))
	}
	return tg, mails[0]
}
