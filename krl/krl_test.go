package krl

import (
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
)

// keygen runs ssh-keygen in dir.
func keygen(t testing.TB, dir string, args ...string) {
	t.Helper()
	cmd := exec.Command("ssh-keygen", args...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

func readKey(t testing.TB, path string) ssh.PublicKey {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	k, _, _, _, err := ssh.ParseAuthorizedKey(b)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// fleet makes two CAs and, signed by the first, certificates with the
// given serials (key ID "id-SERIAL"), each for its own key.
func fleet(t testing.TB, dir string, serials ...int) (ca, other ssh.PublicKey, certs map[int]ssh.PublicKey) {
	t.Helper()
	keygen(t, dir, "-q", "-t", "ed25519", "-N", "", "-f", "ca")
	keygen(t, dir, "-q", "-t", "ed25519", "-N", "", "-f", "ca2")
	certs = map[int]ssh.PublicKey{}
	for _, s := range serials {
		name := "k" + strconv.Itoa(s)
		keygen(t, dir, "-q", "-t", "ed25519", "-N", "", "-f", name)
		keygen(t, dir, "-q", "-s", "ca", "-I", "id-"+strconv.Itoa(s), "-n", "h.dyn.example.com", "-z", strconv.Itoa(s), name+".pub")
		certs[s] = readKey(t, filepath.Join(dir, name+"-cert.pub"))
	}
	return readKey(t, filepath.Join(dir, "ca.pub")), readKey(t, filepath.Join(dir, "ca2.pub")), certs
}

// TestKRLFromSSHKeygen: KRLs written by the real ssh-keygen -k revoke
// what they say: by serial (a list, a range, and ssh-keygen's bitmap
// encoding of many serials), by key ID, by key and by fingerprint, for
// one CA or for all; nothing else.
func TestKRLFromSSHKeygen(t *testing.T) {
	dir := t.TempDir()
	serials := []int{1, 2, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 40, 41, 42, 60, 99}
	_, _, certs := fleet(t, dir, serials...)
	// Many odd serials: ssh-keygen encodes them as a bitmap.
	var spec strings.Builder
	for s := 1; s <= 25; s += 2 {
		spec.WriteString("serial: " + strconv.Itoa(s) + "\n")
	}
	spec.WriteString("serial: 40-41\n")
	spec.WriteString("id: id-60\n")
	os.WriteFile(filepath.Join(dir, "spec"), []byte(spec.String()), 0o600)
	keygen(t, dir, "-k", "-f", "krl", "-s", "ca.pub", "spec")
	// A plain key, revoked by key; and one by SHA-256 fingerprint, added
	// to the same KRL (-u).
	keygen(t, dir, "-q", "-t", "ed25519", "-N", "", "-f", "plain")
	keygen(t, dir, "-q", "-t", "ed25519", "-N", "", "-f", "byhash")
	keygen(t, dir, "-q", "-t", "ed25519", "-N", "", "-f", "bysha1")
	keygen(t, dir, "-k", "-u", "-f", "krl", "plain.pub")
	fp, err := exec.Command("ssh-keygen", "-l", "-E", "sha256", "-f", filepath.Join(dir, "byhash.pub")).Output()
	if err != nil {
		t.Fatal(err)
	}
	sha1key, _ := os.ReadFile(filepath.Join(dir, "bysha1.pub"))
	os.WriteFile(filepath.Join(dir, "spec2"), []byte("hash: "+strings.Fields(string(fp))[1]+"\nsha1: "+string(sha1key)), 0o600)
	keygen(t, dir, "-k", "-u", "-f", "krl", "spec2")
	// k99's key (not its certificate) revoked: the certificate goes too.
	keygen(t, dir, "-k", "-u", "-f", "krl", "k99.pub")

	data, err := os.ReadFile(filepath.Join(dir, "krl"))
	if err != nil {
		t.Fatal(err)
	}
	l, err := Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	revoked := map[int]bool{1: true, 3: true, 5: true, 7: true, 9: true, 11: true, 13: true, 15: true, 17: true, 19: true, 21: true, 23: true, 25: true, 40: true, 41: true, 60: true, 99: true}
	for _, s := range serials {
		why, got := l.Revoked(certs[s])
		if got != revoked[s] {
			t.Errorf("certificate serial %d: revoked %v (%s), want %v", s, got, why, revoked[s])
		}
	}
	for name, want := range map[string]bool{"plain.pub": true, "byhash.pub": true, "bysha1.pub": true, "ca.pub": false, "ca2.pub": false, "k2.pub": false, "k99.pub": true} {
		if why, got := l.Revoked(readKey(t, filepath.Join(dir, name))); got != want {
			t.Errorf("%s: revoked %v (%s), want %v", name, got, why, want)
		}
	}
	// The same serial under another CA is not revoked.
	keygen(t, dir, "-q", "-s", "ca2", "-I", "x", "-n", "h.dyn.example.com", "-z", "3", "-O", "clear", "k2.pub")
	if why, got := l.Revoked(readKey(t, filepath.Join(dir, "k2-cert.pub"))); got {
		t.Errorf("serial 3 of another CA revoked: %s", why)
	}

	// Revoking the CA revokes every certificate it signed.
	keygen(t, dir, "-k", "-f", "krl-ca", "ca.pub")
	data, _ = os.ReadFile(filepath.Join(dir, "krl-ca"))
	if l, err = Parse(data); err != nil {
		t.Fatal(err)
	}
	if why, got := l.Revoked(certs[2]); !got || !strings.Contains(why, "CA") {
		t.Errorf("certificate of a revoked CA: %v %q", got, why)
	}

	// A key ID revoked for every CA (an empty CA key: ssh-keygen 9.2
	// writes none, other tools may).
	str := func(b string) string { return string(binary.BigEndian.AppendUint32(nil, uint32(len(b)))) + b }
	ids := string([]byte{certKeyID}) + str(str("id-42"))
	head := magic + "\x00\x00\x00\x01" + strings.Repeat("\x00", 24) + str("") + str("")
	l, err = Parse([]byte(head + string([]byte{sectionCertificates}) + str(str("")+str("")+ids)))
	if err != nil {
		t.Fatal(err)
	}
	if _, got := l.Revoked(certs[42]); !got {
		t.Error("key ID revoked for every CA: not revoked")
	}
	if _, got := l.Revoked(certs[41]); got {
		t.Error("another key ID revoked")
	}
}

// TestPlainList: a file of public keys, as OpenSSH's RevokedKeys also
// takes.
func TestPlainList(t *testing.T) {
	dir := t.TempDir()
	_, _, certs := fleet(t, dir, 1, 2)
	b, _ := os.ReadFile(filepath.Join(dir, "k1.pub"))
	l, err := Parse(append([]byte("# revoked\n\n"), b...))
	if err != nil {
		t.Fatal(err)
	}
	if _, got := l.Revoked(certs[1]); !got {
		t.Error("certificate of a listed key not revoked")
	}
	if _, got := l.Revoked(certs[2]); got {
		t.Error("another certificate revoked")
	}
	if _, err := Parse([]byte("ssh-ed25519 AAAA\n")); err == nil || !strings.Contains(err.Error(), "line 1") {
		t.Errorf("bad line: %v", err)
	}
}

func TestParseErrors(t *testing.T) {
	head := magic + "\x00\x00\x00\x01" + strings.Repeat("\x00", 24) + "\x00\x00\x00\x00" + "\x00\x00\x00\x00"
	for name, in := range map[string]string{
		"truncated header":   magic + "\x00\x00\x00\x01\x00",
		"version 2":          magic + "\x00\x00\x00\x02" + strings.Repeat("\x00", 32),
		"unknown section":    head + "\x09\x00\x00\x00\x00",
		"signature":          head + "\x04\x00\x00\x00\x00",
		"section too long":   head + "\x02\x00\x00\x10\x00",
		"bad fingerprint":    head + "\x05\x00\x00\x00\x05\x00\x00\x00\x01\xff",
		"critical extension": head + "\xff\x00\x00\x00\x0a\x00\x00\x00\x01x\x01\x00\x00\x00\x00",
	} {
		if _, err := Parse([]byte(in)); err == nil {
			t.Errorf("%s: parsed", name)
		}
	}
	if l, err := Parse([]byte(head + "\xff\x00\x00\x00\x0a\x00\x00\x00\x01x\x00\x00\x00\x00\x00")); err != nil || l.Version != 0 {
		t.Errorf("non-critical extension: %v", err)
	}
}

func FuzzParse(f *testing.F) {
	dir := f.TempDir()
	fleet(f, dir, 1, 3, 5)
	os.WriteFile(filepath.Join(dir, "spec"), []byte("serial: 1\nserial: 3\nserial: 10-20\nid: x\n"), 0o600)
	keygen(f, dir, "-k", "-f", "krl", "-s", "ca.pub", "spec", "k5.pub")
	data, err := os.ReadFile(filepath.Join(dir, "krl"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(data)
	f.Add([]byte(magic))
	_, _, certs := fleet(f, f.TempDir(), 7)
	f.Fuzz(func(t *testing.T, in []byte) {
		l, err := Parse(in)
		if err != nil {
			return
		}
		l.Revoked(certs[7]) // must not panic
	})
}
