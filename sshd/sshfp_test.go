package sshd

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"strings"
	"testing"

	gossh "golang.org/x/crypto/ssh"

	"github.com/sshdyn/sshdyn/publish"
)

// TestParseSSHFPInput: what "sshfp HOST..." takes on standard input, and
// what it refuses, naming the line.
func TestParseSSHFPInput(t *testing.T) {
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	pub, _ := gossh.NewPublicKey(priv.Public())
	sum := sha256.Sum256(pub.Marshal())
	pubLine := strings.TrimSpace(string(gossh.MarshalAuthorizedKey(pub))) + " root@home"
	hosts := []string{"home.dyn.example.com", "nas.dyn.example.com"}
	fp := fmt.Sprintf("%x", sum)
	cases := []struct {
		name   string
		in     string
		counts map[string]int // records per host
		sha1   int
		err    string
	}{
		{"ssh-keygen -r", "home.dyn.example.com IN SSHFP 4 1 " + strings.Repeat("ab", 20) + "\nhome.dyn.example.com IN SSHFP 4 2 " + fp + "\n",
			map[string]int{"home.dyn.example.com": 1}, 1, ""},
		{"upper case and a trailing dot", "Home.dyn.example.com. in sshfp 4 2 " + strings.ToUpper(fp) + "\n", map[string]int{"home.dyn.example.com": 1}, 0, ""},
		{"a public key goes to every host", "# keys\n\n" + pubLine + "\n" + pubLine + "\n", map[string]int{"home.dyn.example.com": 1, "nas.dyn.example.com": 1}, 0, ""},
		{"known_hosts form", "home.dyn.example.com " + pubLine + "\n", map[string]int{"home.dyn.example.com": 1, "nas.dyn.example.com": 1}, 0, ""},
		{"another host", "other.example.com IN SSHFP 4 2 " + fp + "\n", nil, 0, "line 1: other.example.com is not a host named in the command"},
		{"not hex", "home.dyn.example.com IN SSHFP 4 2 xyz\n", nil, 0, "line 1: not an SSHFP record"},
		{"short fingerprint", "home.dyn.example.com IN SSHFP 4 2 abcd\n", nil, 0, "line 1: SSHFP fingerprint of 2 bytes"},
		{"garbage", "\nhello world\n", nil, 0, "line 2: neither an SSHFP record"},
		{"too much", strings.Repeat("# x\n", maxSSHFPLines+1), nil, 0, "more than"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, sha1, err := ParseSSHFPInput(strings.NewReader(tc.in), hosts)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) || got != nil {
					t.Fatalf("err %v, records %v; want %q and none", err, got, tc.err)
				}
				return
			}
			if err != nil || sha1 != tc.sha1 {
				t.Fatalf("err %v, sha1 %d", err, sha1)
			}
			for _, h := range hosts {
				if len(got[h]) != tc.counts[h] {
					t.Errorf("%s: %d records, want %d", h, len(got[h]), tc.counts[h])
				}
				for _, r := range got[h] {
					if r.Algorithm != 4 || r.Type != 2 || fmt.Sprintf("%x", r.Fingerprint) != fp {
						t.Errorf("%s: %+v, want Ed25519 SHA-256 %s", h, r, fp)
					}
				}
			}
		})
	}
}

// FuzzParseSSHFPInput: whatever a client sends on standard input, the
// parser returns records that pass the core's check, for the hosts
// named only, or an error and none.
func FuzzParseSSHFPInput(f *testing.F) {
	f.Add("home.dyn.example.com IN SSHFP 4 2 " + strings.Repeat("ab", 32) + "\n")
	f.Add("home.dyn.example.com IN SSHFP 4 1 " + strings.Repeat("ab", 20) + "\n")
	f.Add("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBA2rspAm2VBM6NKkzjsedX36H9zYzH2OJN9F9I2FhV0 root@home\n")
	f.Add("# comment\n\nnot a key\n")
	hosts := []string{"home.dyn.example.com"}
	f.Fuzz(func(t *testing.T, in string) {
		got, _, err := ParseSSHFPInput(strings.NewReader(in), hosts)
		if err != nil {
			if got != nil {
				t.Fatalf("error %v with records %v", err, got)
			}
			return
		}
		for h, recs := range got {
			if h != hosts[0] {
				t.Fatalf("records for %q, not a host named", h)
			}
			for _, r := range recs {
				if err := publish.CheckSSHFP(r); err != nil {
					t.Fatalf("record %+v: %v", r, err)
				}
			}
		}
	})
}
