//go:build integration

package notify

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/emersion/go-smtp"
)

// TestSendmail: a sendmail:// target hands the message to a real
// sendmail program, msmtp (Debian's sendmail-compatible client, relaying
// to an SMTP server on loopback): one mail, the envelope sender from
// from=, every recipient, the title as its subject; a program that fails
// is an error carrying its message.
func TestSendmail(t *testing.T) {
	msmtp, err := exec.LookPath("msmtp")
	if err != nil {
		t.Fatal("msmtp is needed (Debian: msmtp; scripts/test.sh installs it)")
	}
	box := &mailbox{}
	srv := smtp.NewServer(box)
	srv.Domain = "localhost"
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(l)
	defer srv.Close()
	_, port, _ := net.SplitHostPort(l.Addr().String())
	// The local MTA, as an operator's would be configured: here msmtp
	// told on its command line where to relay.
	dir := t.TempDir()
	program := filepath.Join(dir, "sendmail")
	script := "#!/bin/sh\nexec " + msmtp + " --host=127.0.0.1 --port=" + port + " --auth=off --tls=off \"$@\"\n"
	if err := os.WriteFile(program, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	tg, m := sendOne(t, box, "sendmail://"+program+"?from=sshdyn@example.com&to=ops@example.com,home@example.net")
	if m.from != "sshdyn@example.com" || len(m.to) != 2 || m.to[0] != "ops@example.com" || m.to[1] != "home@example.net" ||
		!strings.Contains(m.data, "Subject: sshdyn: home.dyn.example.com AAAA is stale\r\n") || !strings.Contains(m.data, "no update since") {
		t.Errorf("mail %+v", m)
	}
	srv.Close()
	if err := tg.Send(context.Background(), msg); err == nil || !strings.Contains(err.Error(), program) {
		t.Errorf("with the relay gone: %v, want the program's failure", err)
	}
}
