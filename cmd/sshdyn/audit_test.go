//go:build integration

package main

import (
	"regexp"
	"strings"
	"testing"

	"github.com/sshdyn/sshdyn/internal/dnstest"
)

var auditVerdict = regexp.MustCompile(`\[(fail|warn)\] (.*)$`)

// TestSSHAudit: ssh-audit, the scanner administrators run, finds no
// weak algorithm in what sshdyn serve offers: no fail and no warn line
// but "unknown algorithm" (ssh-audit 2.5.0 does not know ML-KEM and
// strict key exchange). The client tests (TestEndToEnd, TestOtherClients)
// show OpenSSH, Dropbear and PuTTY still update with this set.
func TestSSHAudit(t *testing.T) {
	p := dnstest.Start(t, "sshdyn", dnstest.Options{})
	key := newClientKey(t, t.TempDir(), "k")
	d := startDaemon(t, p, p.KeyFile, `host="home.`+p.Zone+`" `+key.line)
	out, err := runRouter(t, "ssh-audit", "-n", "-p", d.port4, "127.0.0.1")
	// ssh-audit exits non-zero when it warns, so its status says little.
	if !strings.Contains(out, "(kex) curve25519-sha256") {
		t.Fatalf("ssh-audit: %v\n%s", err, out)
	}
	for _, line := range strings.Split(out, "\n") {
		if m := auditVerdict.FindStringSubmatch(line); m != nil && m[2] != "unknown algorithm" {
			t.Errorf("ssh-audit: %s", strings.TrimSpace(line))
		}
	}
	for _, weak := range []string{"ecdh-sha2-nistp", "diffie-hellman-group14-sha1", "hmac-sha1", "(mac) hmac-sha2-256 "} {
		if strings.Contains(out, weak) {
			t.Errorf("ssh-audit lists %q", weak)
		}
	}
}
