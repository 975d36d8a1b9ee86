// Command release writes sshdyn's release artefacts into a directory:
// static binaries for every platform, the Debian packages (with the
// hardened unit, the man pages, the sysusers entry), the container image
// as an OCI archive, and SHA256SUMS. scripts/release.sh runs it:
//
//	go run ./internal/release [-version V] [-targets linux/amd64,...] [-no-image] [-rebuild] DIR
//
// Everything is reproducible from the commit: binaries are built with
// -trimpath and no build ID, file times and the man pages' dates are the
// commit's time (SOURCE_DATE_EPOCH), so two runs on one commit write the
// same bytes (the image archive aside, whose layer podman stamps).
package main

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/sshdyn/sshdyn/docs"
)

// nfpm builds the Debian packages: a well-kept packager, run at a pinned
// version through the Go module proxy, so that nothing is installed by
// hand.
const nfpm = "github.com/goreleaser/nfpm/v2/cmd/nfpm@v2.48.0"

// target is one platform a binary is built for, and its Debian
// architecture (none: no package).
type target struct {
	goos, goarch, goarm string
	debArch             string
}

func (t target) name() string {
	s := t.goos + "-" + t.goarch
	if t.goarm != "" {
		s += "v" + t.goarm
	}
	return s
}

var targets = []target{
	{"linux", "amd64", "", "amd64"},
	{"linux", "arm64", "", "arm64"},
	{"linux", "arm", "7", "armhf"},
	{"freebsd", "amd64", "", ""},
	{"darwin", "arm64", "", ""},
}

// build is what one release is made of.
type build struct {
	root    string    // the module's directory
	out     string    // where the artefacts go
	version string    // e.g. 0.1.0~git20261207034741.550ca8f91b2e
	commit  string    // the full commit hash
	date    time.Time // the commit's time: every timestamp in the artefacts
	rebuild bool      // go build -a: compile everything again, ignoring the build cache
}

func main() {
	version := flag.String("version", "", "the release's version (default: the tag at HEAD without its v, else 0.1.0~gitTIME.COMMIT)")
	only := flag.String("targets", "", "comma-separated GOOS-GOARCH[vN] to build (default: all)")
	noImage := flag.Bool("no-image", false, "do not build the container image")
	rebuild := flag.Bool("rebuild", false, "compile every package again (go build -a), ignoring the build cache")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: release [-version V] [-targets T,...] [-no-image] [-rebuild] DIR")
		os.Exit(2)
	}
	if err := run(flag.Arg(0), *version, *only, !*noImage, *rebuild); err != nil {
		fmt.Fprintf(os.Stderr, "release: %v\n", err)
		os.Exit(1)
	}
}

func run(out, version, only string, image, rebuild bool) error {
	root, err := os.Getwd()
	if err != nil {
		return err
	}
	b := &build{root: root, rebuild: rebuild}
	if b.out, err = filepath.Abs(out); err != nil {
		return err
	}
	if err := os.MkdirAll(b.out, 0o755); err != nil {
		return err
	}
	if err := b.describe(version); err != nil {
		return err
	}
	fmt.Printf("sshdyn %s (commit %s, %s)\n", b.version, b.commit, b.date.Format(time.RFC3339))
	var built []string
	for _, t := range targets {
		if only != "" && !contains(strings.Split(only, ","), t.name()) {
			continue
		}
		bin, err := b.binary(t)
		if err != nil {
			return err
		}
		built = append(built, bin)
		if t.debArch != "" {
			deb, err := b.deb(t, bin)
			if err != nil {
				return err
			}
			built = append(built, deb)
		}
		if image && t.name() == "linux-amd64" {
			archives, err := b.image(bin)
			if err != nil {
				return err
			}
			built = append(built, archives...)
		}
	}
	return b.sums(built)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if strings.TrimSpace(x) == s {
			return true
		}
	}
	return false
}

// git runs git in the module's directory and returns its output.
func (b *build) git(args ...string) (string, error) {
	cmd := exec.Command("git", args...)
	cmd.Dir = b.root
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("git %s: %v", strings.Join(args, " "), err)
	}
	return strings.TrimSpace(string(out)), nil
}

// describe finds the commit, its time, and the version: given, else the
// tag at HEAD, else a snapshot's, which sorts before 0.1.0 and by time.
// A tree with changes not committed gets "+dirty", and is no release.
func (b *build) describe(version string) error {
	var err error
	if b.commit, err = b.git("rev-parse", "HEAD"); err != nil {
		return err
	}
	ct, err := b.git("log", "-1", "--format=%ct")
	if err != nil {
		return err
	}
	secs, err := strconv.ParseInt(ct, 10, 64)
	if err != nil {
		return err
	}
	b.date = time.Unix(secs, 0).UTC()
	if version == "" {
		if tag, err := b.git("describe", "--tags", "--exact-match", "HEAD"); err == nil {
			version = strings.TrimPrefix(tag, "v")
		} else {
			version = "0.1.0~git" + b.date.Format("20060102150405") + "." + b.commit[:12]
		}
		if st, err := b.git("status", "--porcelain", "--untracked-files=no"); err == nil && st != "" {
			version += "+dirty"
		}
	}
	b.version = version
	return nil
}

// binary builds sshdyn for t: static, -trimpath, no build ID, stripped,
// the version and commit set.
func (b *build) binary(t target) (string, error) {
	name := filepath.Join(b.out, "sshdyn-"+b.version+"-"+t.name())
	args := []string{"build", "-trimpath", "-buildvcs=false", "-o", name,
		"-ldflags", "-s -w -buildid= -X main.version=" + b.version + " -X main.commit=" + b.commit}
	if b.rebuild {
		args = append(args, "-a")
	}
	cmd := exec.Command("go", append(args, "./cmd/sshdyn")...)
	cmd.Dir = b.root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+t.goos, "GOARCH="+t.goarch, "GOARM="+t.goarm, "GOFLAGS=", "SOURCE_DATE_EPOCH="+b.epoch())
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("building for %s: %v", t.name(), err)
	}
	fmt.Printf("built %s\n", filepath.Base(name))
	return name, nil
}

func (b *build) epoch() string { return strconv.FormatInt(b.date.Unix(), 10) }

// sums writes SHA256SUMS over files, as sha256sum -c reads it.
func (b *build) sums(files []string) error {
	sort.Strings(files)
	var s strings.Builder
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		h := sha256.Sum256(data)
		fmt.Fprintf(&s, "%s  %s\n", hex.EncodeToString(h[:]), filepath.Base(f))
	}
	return os.WriteFile(filepath.Join(b.out, "SHA256SUMS"), []byte(s.String()), 0o644)
}

// gzipped is data compressed as gzip -9n would: no name, no time, so the
// same data gives the same bytes.
func gzipped(data []byte) []byte {
	var buf bytes.Buffer
	w, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	w.Write(data)
	w.Close()
	return buf.Bytes()
}

// stage writes a file for a package or an image into dir, with the
// commit's time.
func (b *build) stage(dir, name string, data []byte, mode fs.FileMode) (string, error) {
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return "", err
	}
	if err := os.WriteFile(p, data, mode); err != nil {
		return "", err
	}
	if err := os.Chmod(p, mode); err != nil {
		return "", err
	}
	return p, os.Chtimes(p, b.date, b.date)
}

// manPages renders the man pages from docs/reference.md.
func (b *build) manPages() (map[string]string, error) {
	ref, err := os.ReadFile(filepath.Join(b.root, "docs", "reference.md"))
	if err != nil {
		return nil, err
	}
	return docs.ManPages(string(ref), b.date, b.version)
}
