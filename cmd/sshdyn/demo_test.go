//go:build integration

package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDemoDirIsPrivate: the demo makes its directory itself, mode 0700,
// and refuses one another user could have prepared: a symbolic link, a
// directory open to others, another user's (audit finding L4: a planted
// ssh_config's ProxyCommand would run as the demo's user).
func TestDemoDirIsPrivate(t *testing.T) {
	base := t.TempDir()
	fresh := filepath.Join(base, "fresh")
	if err := prepareDemoDir(fresh); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(fresh); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("made %v, %v; want mode 0700", fi.Mode(), err)
	}
	writeFile(t, filepath.Join(fresh, "ssh_config"), "old")
	if err := prepareDemoDir(fresh); err != nil { // an earlier demo's: cleared
		t.Fatalf("earlier demo's directory: %v", err)
	}
	if _, err := os.Stat(filepath.Join(fresh, "ssh_config")); err == nil {
		t.Error("an earlier demo's files were kept")
	}

	link := filepath.Join(base, "link")
	if err := os.Symlink(t.TempDir(), link); err != nil {
		t.Fatal(err)
	}
	open := filepath.Join(base, "open")
	if err := os.Mkdir(open, 0o777); err != nil {
		t.Fatal(err)
	}
	os.Chmod(open, 0o777)
	cases := map[string]string{link: "symbolic link", open: "open to other users"}
	if os.Geteuid() == 0 { // CI runs as root: another user's directory
		foreign := filepath.Join(base, "foreign")
		if err := os.Mkdir(foreign, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(foreign, 65534, 65534); err != nil {
			t.Fatal(err)
		}
		cases[foreign] = "belongs to another user"
	}
	for dir, want := range cases {
		if err := prepareDemoDir(dir); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", filepath.Base(dir), err, want)
		}
	}
}
