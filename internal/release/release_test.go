//go:build integration

package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/sshdyn/sshdyn/internal/demotest"
)

// root is the module's directory, where the release is made from.
const root = "../.."

// released is the release every test reads: made once, all targets,
// the image too.
var released = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "sshdyn-release-")
	if err != nil {
		return "", err
	}
	return dir, release(dir)
})

// release runs scripts/release.sh with args into dir.
func release(dir string, args ...string) error {
	cmd := exec.Command("scripts/release.sh", append([]string{dir}, args...)...)
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("scripts/release.sh %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return nil
}

func releaseDir(t *testing.T) string {
	t.Helper()
	dir, err := released()
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestMain(m *testing.M) {
	code := m.Run()
	if dir, err := released(); err == nil && dir != "" {
		os.RemoveAll(dir)
	}
	os.Exit(code)
}

// artefact returns the one file of dir whose name matches pattern.
func artefact(t *testing.T, dir, pattern string) string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, pattern))
	if err != nil || len(m) != 1 {
		t.Fatalf("%s in %s: %v %v", pattern, dir, m, err)
	}
	return m[0]
}

// version is the release's version, from its linux/amd64 binary's name.
func version(t *testing.T, dir string) string {
	t.Helper()
	bin := filepath.Base(artefact(t, dir, "sshdyn-*-linux-amd64"))
	return strings.TrimSuffix(strings.TrimPrefix(bin, "sshdyn-"), "-linux-amd64")
}

func runOK(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// TestReleaseArtefacts: every platform's binary is there, static, and
// says its version; SHA256SUMS verifies; two builds of one commit are
// byte-identical (the second compiles every package again, with go
// build -a), binaries and Debian package alike.
func TestReleaseArtefacts(t *testing.T) {
	dir := releaseDir(t)
	v := version(t, dir)
	for _, p := range []struct{ name, goos, goarch string }{
		{"linux-amd64", "linux", "amd64"}, {"linux-arm64", "linux", "arm64"}, {"linux-armv7", "linux", "arm"},
		{"freebsd-amd64", "freebsd", "amd64"}, {"darwin-arm64", "darwin", "arm64"},
	} {
		bin := artefact(t, dir, "sshdyn-"+v+"-"+p.name)
		info := runOK(t, "go", "version", "-m", bin)
		for _, want := range []string{"GOOS=" + p.goos, "GOARCH=" + p.goarch, "CGO_ENABLED=0", "-trimpath=true"} {
			if !strings.Contains(info, want) {
				t.Errorf("%s: go version -m has no %q:\n%s", p.name, want, info)
			}
		}
		data, err := os.ReadFile(bin)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(data, []byte(v)) {
			t.Errorf("%s does not hold its version %q", p.name, v)
		}
	}
	out := runOK(t, artefact(t, dir, "sshdyn-*-linux-amd64"), "version")
	commit := strings.TrimSpace(runOK(t, "git", "-C", root, "rev-parse", "HEAD"))
	if !strings.HasPrefix(out, "sshdyn "+v+" (go") || !strings.Contains(out, "commit "+commit) {
		t.Errorf("sshdyn version: %q, want version %s and commit %s", out, v, commit)
	}
	if file := runOK(t, "file", artefact(t, dir, "sshdyn-*-linux-amd64")); !strings.Contains(file, "statically linked") || !strings.Contains(file, "stripped") {
		t.Errorf("file: %s", file)
	}
	cmd := exec.Command("sha256sum", "--strict", "-c", "SHA256SUMS")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil || strings.Count(string(out), ": OK") < 10 {
		t.Errorf("sha256sum -c SHA256SUMS: %v\n%s", err, out)
	}

	again := t.TempDir()
	if err := release(again, "-version", v, "-targets", "linux-amd64", "-no-image", "-rebuild"); err != nil {
		t.Fatal(err)
	}
	for _, pattern := range []string{"sshdyn-*-linux-amd64", "sshdyn_*_amd64.deb"} {
		a, b := artefact(t, dir, pattern), artefact(t, again, pattern)
		if runOK(t, "sha256sum", a)[:64] != runOK(t, "sha256sum", b)[:64] {
			t.Errorf("%s differs between two builds of one commit", filepath.Base(a))
		}
	}
}

// packageFiles are the files and directories the Debian package
// holds, besides the examples: dpkg-deb --contents, as mode and path.
var packageFiles = []string{
	"-rw-r--r-- ./etc/sshdyn/authorized_keys",
	"-rw-r--r-- ./etc/sshdyn/sshdyn.toml",
	"-rw-r--r-- ./lib/systemd/system/sshdyn.service",
	"-rw-r--r-- ./usr/lib/sysusers.d/sshdyn.conf",
	"-rwxr-xr-x ./usr/sbin/sshdyn",
	"-rw-r--r-- ./usr/share/doc/sshdyn/README.md.gz",
	"-rw-r--r-- ./usr/share/doc/sshdyn/changelog.Debian.gz",
	"-rw-r--r-- ./usr/share/doc/sshdyn/changelog.gz",
	"-rw-r--r-- ./usr/share/doc/sshdyn/copyright",
	"-rw-r--r-- ./usr/share/doc/sshdyn/install.md.gz",
	"-rw-r--r-- ./usr/share/lintian/overrides/sshdyn",
	"-rw-r--r-- ./usr/share/man/man5/sshdyn-authorized.5.gz",
	"-rw-r--r-- ./usr/share/man/man5/sshdyn.toml.5.gz",
	"-rw-r--r-- ./usr/share/man/man8/sshdyn.8.gz",
}

// TestPackage: the Debian package holds what it should, lintian finds
// no error and no warning it does not override, and in a fresh Debian 12
// root (mmdebstrap) it installs: the user, the owners and modes, sshdyn
// version, sshdyn check on the shipped configuration (a zone missing)
// and, with a zone written in, passing as the user sshdyn, the unit
// verified and scored; an upgrade from an older version keeps a changed
// conffile and the state; purge removes /var/lib/sshdyn.
func TestPackage(t *testing.T) {
	dir := releaseDir(t)
	v := version(t, dir)
	deb := artefact(t, dir, "sshdyn_*_amd64.deb")
	for _, arch := range []string{"arm64", "armhf"} {
		artefact(t, dir, "sshdyn_*_"+arch+".deb")
	}

	contents := runOK(t, "dpkg-deb", "--contents", deb)
	var got []string
	for _, l := range strings.Split(strings.TrimSpace(contents), "\n") {
		f := strings.Fields(l)
		if len(f) < 6 || strings.HasSuffix(f[5], "/") || strings.Contains(f[5], "/doc/sshdyn/examples/") {
			continue
		}
		if f[1] != "root/root" {
			t.Errorf("%s is owned by %s in the package", f[5], f[1])
		}
		got = append(got, f[0]+" "+f[5])
	}
	slices.Sort(got)
	if want := slices.Sorted(slices.Values(packageFiles)); !slices.Equal(got, want) {
		t.Errorf("dpkg-deb --contents:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	examples, err := os.ReadDir(filepath.Join(root, "examples"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range examples {
		if !e.IsDir() && !strings.Contains(contents, "./usr/share/doc/sshdyn/examples/"+e.Name()+"\n") {
			t.Errorf("the package lacks examples/%s", e.Name())
		}
	}
	info := runOK(t, "dpkg-deb", "--info", deb)
	for _, want := range []string{"Package: sshdyn\n", "Version: " + v + "-1\n", "Architecture: amd64\n", "Depends: adduser\n", "Section: net\n",
		"conffiles", "postinst", "prerm", "postrm"} {
		if !strings.Contains(info, want) {
			t.Errorf("dpkg-deb --info has no %q:\n%s", want, info)
		}
	}
	ctrl := t.TempDir()
	runOK(t, "dpkg-deb", "--control", deb, ctrl)
	if cf, _ := os.ReadFile(filepath.Join(ctrl, "conffiles")); string(cf) != "/etc/sshdyn/authorized_keys\n/etc/sshdyn/sshdyn.toml\n" {
		t.Errorf("conffiles: %q", cf)
	}

	lint, _ := exec.Command("lintian", "--fail-on", "none", deb).CombinedOutput()
	for _, l := range strings.Split(string(lint), "\n") {
		if strings.HasPrefix(l, "E: ") || strings.HasPrefix(l, "W: ") {
			t.Errorf("lintian: %s", l)
		}
	}
	if !strings.Contains(runOK(t, "lintian", "--show-overrides", "--fail-on", "none", deb), "O: sshdyn: statically-linked-binary") {
		t.Error("lintian did not see the package's overrides")
	}

	// A fresh Debian 12 root, from Debian's packages.
	old := t.TempDir()
	if err := release(old, "-version", "0.0.9", "-targets", "linux-amd64", "-no-image"); err != nil {
		t.Fatal(err)
	}
	rootfs := filepath.Join(t.TempDir(), "root")
	runOK(t, "mmdebstrap", "--quiet", "--variant=apt", "--include=systemd,adduser,procps", "bookworm", rootfs, "http://deb.debian.org/debian")
	in := func(args ...string) (string, error) {
		cmd := exec.Command("chroot", append([]string{rootfs}, args...)...)
		cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "DEBIAN_FRONTEND=noninteractive", "LANG=C.UTF-8"}
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	must := func(args ...string) string {
		t.Helper()
		out, err := in(args...)
		if err != nil {
			t.Fatalf("in the root: %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return out
	}
	copyIn := func(src, dst string) {
		t.Helper()
		data, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(rootfs, dst), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	copyIn(artefact(t, old, "sshdyn_*_amd64.deb"), "tmp/old.deb")
	copyIn(deb, "tmp/new.deb")

	must("apt-get", "install", "-y", "-q", "/tmp/old.deb")
	if out := must("sshdyn", "version"); !strings.HasPrefix(out, "sshdyn 0.0.9 ") {
		t.Errorf("the old package's sshdyn version: %q", out)
	}
	if out := must("getent", "passwd", "sshdyn"); !regexp.MustCompile(`^sshdyn:x:\d+:\d+:[^:]*:/var/lib/sshdyn:/usr/sbin/nologin\n$`).MatchString(out) {
		t.Errorf("the user sshdyn: %q", out)
	}
	if out := must("getent", "group", "sshdyn"); !strings.HasPrefix(out, "sshdyn:") {
		t.Errorf("the group sshdyn: %q", out)
	}
	modes := must("stat", "-c", "%U:%G %a %n", "/etc/sshdyn", "/etc/sshdyn/sshdyn.toml", "/etc/sshdyn/authorized_keys", "/var/lib/sshdyn", "/usr/sbin/sshdyn", "/lib/systemd/system/sshdyn.service", "/usr/lib/sysusers.d/sshdyn.conf")
	want := "root:sshdyn 750 /etc/sshdyn\nroot:sshdyn 640 /etc/sshdyn/sshdyn.toml\nroot:sshdyn 640 /etc/sshdyn/authorized_keys\nsshdyn:sshdyn 750 /var/lib/sshdyn\n" +
		"root:root 755 /usr/sbin/sshdyn\nroot:root 644 /lib/systemd/system/sshdyn.service\nroot:root 644 /usr/lib/sysusers.d/sshdyn.conf\n"
	if modes != want {
		t.Errorf("owners and modes:\n%s\nwant:\n%s", modes, want)
	}
	// The shipped configuration: check names what is missing.
	if out, err := in("sshdyn", "check"); err == nil || !strings.Contains(out, "no [[zone]]") {
		t.Errorf("check of the shipped configuration: %v\n%s", err, out)
	}
	// The operator changes the conffile: a zone, and its key, as the
	// permission story says; check passes as the user sshdyn.
	zone := "\n[[zone]]\nname = \"dyn.example.com\"\nprimary = \"127.0.0.1:53\"\ntsig_key = \"/etc/sshdyn/tsig.key\"\n"
	f, err := os.OpenFile(filepath.Join(rootfs, "etc/sshdyn/sshdyn.toml"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(zone)
	f.Close()
	if err := os.WriteFile(filepath.Join(rootfs, "etc/sshdyn/tsig.key"), []byte("hmac-sha256:sshdyn:c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA==\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	must("chown", "root:sshdyn", "/etc/sshdyn/tsig.key")
	must("chmod", "640", "/etc/sshdyn/tsig.key")
	if out := must("setpriv", "--reuid=sshdyn", "--regid=sshdyn", "--init-groups", "sshdyn", "check", "--config", "/etc/sshdyn/sshdyn.toml"); !strings.Contains(out, "TSIG key sshdyn.") || !strings.Contains(out, "not there yet; serve creates it") {
		t.Errorf("check as sshdyn:\n%s", out)
	}
	if err := os.WriteFile(filepath.Join(rootfs, "var/lib/sshdyn/state.db"), []byte("kept"), 0o600); err != nil {
		t.Fatal(err)
	}

	// The unit, as installed.
	if out, err := in("systemd-analyze", "verify", "--man=no", "/lib/systemd/system/sshdyn.service"); err != nil || strings.TrimSpace(out) != "" {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
	sec, _ := in("systemd-analyze", "security", "--offline=true", "/lib/systemd/system/sshdyn.service")
	m := regexp.MustCompile(`Overall exposure level for sshdyn\.service: (\d+\.\d)`).FindStringSubmatch(sec)
	if m == nil {
		t.Fatalf("systemd-analyze security:\n%s", sec)
	}
	if score, _ := strconv.ParseFloat(m[1], 64); score > 1.5 {
		t.Errorf("the unit's exposure is %.1f, want at most 1.5", score)
	}
	t.Logf("systemd-analyze security: exposure %s", m[1])

	// Upgrade: the changed conffile and the state are kept.
	must("apt-get", "install", "-y", "-q", "/tmp/new.deb")
	if out := must("sshdyn", "version"); !strings.HasPrefix(out, "sshdyn "+v+" ") {
		t.Errorf("after the upgrade, sshdyn version: %q", out)
	}
	if conf, err := os.ReadFile(filepath.Join(rootfs, "etc/sshdyn/sshdyn.toml")); err != nil || !strings.HasSuffix(string(conf), zone) {
		t.Errorf("the upgrade did not keep the changed conffile: %v", err)
	}
	if data, err := os.ReadFile(filepath.Join(rootfs, "var/lib/sshdyn/state.db")); err != nil || string(data) != "kept" {
		t.Errorf("the upgrade did not keep the state: %q %v", data, err)
	}
	if _, err := os.Stat(filepath.Join(rootfs, "etc/sshdyn/sshdyn.toml.dpkg-new")); err == nil {
		t.Error("the upgrade left sshdyn.toml.dpkg-new: it asked about an unchanged conffile")
	}

	// Remove keeps the state; purge removes it.
	must("apt-get", "remove", "-y", "-q", "sshdyn")
	if _, err := os.Stat(filepath.Join(rootfs, "var/lib/sshdyn/state.db")); err != nil {
		t.Errorf("remove took the state: %v", err)
	}
	must("apt-get", "purge", "-y", "-q", "sshdyn")
	if _, err := os.Stat(filepath.Join(rootfs, "var/lib/sshdyn")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("purge left /var/lib/sshdyn: %v", err)
	}
	if _, err := os.Stat(filepath.Join(rootfs, "etc/sshdyn/sshdyn.toml")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("purge left the conffile: %v", err)
	}
}

// TestImage: the image podman built is inspected (a user that is not
// root, the entry point, the volumes, the ports, the health check, the
// labels); the saved OCI archive's layers, unpacked, hold an sshdyn
// that runs the demo on loopback: ssh … update changes the record dig
// shows. (podman run does not work on the project's machines.)
func TestImage(t *testing.T) {
	dir := releaseDir(t)
	v := version(t, dir)
	commit := strings.TrimSpace(runOK(t, "git", "-C", root, "rev-parse", "HEAD"))
	tag := "localhost/sshdyn:" + imageTag(v)
	var inspect []struct {
		Config struct {
			User         string
			Entrypoint   []string
			Cmd          []string
			Volumes      map[string]struct{}
			ExposedPorts map[string]struct{}
			Labels       map[string]string
		}
		Healthcheck struct{ Test []string }
	}
	if err := json.Unmarshal([]byte(runOK(t, "podman", "image", "inspect", tag)), &inspect); err != nil || len(inspect) != 1 {
		t.Fatalf("podman image inspect: %v", err)
	}
	c := inspect[0].Config
	if c.User == "" || strings.HasPrefix(c.User, "0") || strings.HasPrefix(c.User, "root") {
		t.Errorf("user %q", c.User)
	}
	if !slices.Equal(c.Entrypoint, []string{"/usr/sbin/sshdyn"}) || !slices.Equal(c.Cmd, []string{"serve", "--config", "/etc/sshdyn/sshdyn.toml"}) {
		t.Errorf("entry point %q, cmd %q", c.Entrypoint, c.Cmd)
	}
	for _, vol := range []string{"/etc/sshdyn", "/var/lib/sshdyn"} {
		if _, ok := c.Volumes[vol]; !ok {
			t.Errorf("no volume %s: %v", vol, c.Volumes)
		}
	}
	for _, p := range []string{"22/tcp", "53/udp", "53/tcp", "80/tcp", "443/tcp", "9417/tcp"} {
		if _, ok := c.ExposedPorts[p]; !ok {
			t.Errorf("port %s not exposed: %v", p, c.ExposedPorts)
		}
	}
	if hc := inspect[0].Healthcheck.Test; !slices.Contains(hc, "--live") {
		t.Errorf("health check %q", hc)
	}
	if c.Labels["org.opencontainers.image.version"] != v || c.Labels["org.opencontainers.image.revision"] != commit || c.Labels["org.opencontainers.image.source"] == "" {
		t.Errorf("labels %v", c.Labels)
	}
	// The Docker archive keeps the health check; the OCI archive is
	// the one unpacked and run.
	if cfg := dockerConfig(t, artefact(t, dir, "sshdyn-*-docker.tar")); !strings.Contains(cfg, `"Healthcheck"`) {
		t.Errorf("the Docker archive's configuration has no health check:\n%s", cfg)
	}
	rootfs := t.TempDir()
	unpackOCI(t, artefact(t, dir, "sshdyn-*-oci.tar"), rootfs)
	bin := filepath.Join(rootfs, "usr", "sbin", "sshdyn")
	if out := runOK(t, bin, "version"); !strings.HasPrefix(out, "sshdyn "+v+" ") {
		t.Errorf("the image's sshdyn version: %q", out)
	}
	if _, err := os.Stat(filepath.Join(rootfs, "etc/ssl/certs/ca-certificates.crt")); err != nil {
		t.Errorf("no CA certificates in the image: %v", err)
	}
	if fi, err := os.Stat(filepath.Join(rootfs, "var/lib/sshdyn")); err != nil || !fi.IsDir() {
		t.Errorf("no /var/lib/sshdyn in the image: %v", err)
	}
	demotest.Run(t, bin)
}

// dockerConfig returns the image configuration inside a saved Docker
// archive (manifest.json's Config).
func dockerConfig(t *testing.T, path string) string {
	t.Helper()
	files := readTar(t, path)
	var m []struct{ Config string }
	if err := json.Unmarshal(files["manifest.json"], &m); err != nil || len(m) != 1 {
		t.Fatalf("%s: manifest.json: %v", path, err)
	}
	return string(files[m[0].Config])
}

// ociManifest returns an OCI archive's layers and its config's digest.
func ociManifest(t *testing.T, files map[string][]byte) (layers []string, config string) {
	t.Helper()
	var index struct{ Manifests []struct{ Digest string } }
	if err := json.Unmarshal(files["index.json"], &index); err != nil || len(index.Manifests) != 1 {
		t.Fatalf("index.json: %v", err)
	}
	var manifest struct {
		Config struct{ Digest string }
		Layers []struct{ Digest string }
	}
	if err := json.Unmarshal(files[blob(index.Manifests[0].Digest)], &manifest); err != nil {
		t.Fatal(err)
	}
	for _, l := range manifest.Layers {
		layers = append(layers, l.Digest)
	}
	return layers, manifest.Config.Digest
}

func blob(digest string) string { return "blobs/" + strings.Replace(digest, ":", "/", 1) }

// readTar reads a tar file's regular files into memory.
func readTar(t *testing.T, path string) map[string][]byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string][]byte{}
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			data, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			out[strings.TrimPrefix(h.Name, "./")] = data
		}
	}
}

// unpackOCI writes the root filesystem of an OCI archive's image into
// dir: its layers in order (regular files and directories; the image has
// no links or whiteouts).
func unpackOCI(t *testing.T, archive, dir string) {
	t.Helper()
	files := readTar(t, archive)
	layers, _ := ociManifest(t, files)
	for _, l := range layers {
		gz, err := gzip.NewReader(bytes.NewReader(files[blob(l)]))
		if err != nil {
			t.Fatal(err)
		}
		tr := tar.NewReader(gz)
		for {
			h, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			name := filepath.Join(dir, filepath.Clean("/"+h.Name))
			switch h.Typeflag {
			case tar.TypeDir:
				if err := os.MkdirAll(name, 0o755); err != nil {
					t.Fatal(err)
				}
			case tar.TypeReg:
				if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
					t.Fatal(err)
				}
				data, err := io.ReadAll(tr)
				if err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(name, data, os.FileMode(h.Mode)&0o777); err != nil {
					t.Fatal(err)
				}
			default:
				t.Fatalf("layer %s: %s is of type %c, which this test does not unpack", l, h.Name, h.Typeflag)
			}
		}
	}
}
