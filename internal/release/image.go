package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// caBundle is the host's CA certificates (Debian's ca-certificates),
// copied into the image for the provider API backend over https.
const caBundle = "/etc/ssl/certs/ca-certificates.crt"

// image builds the container image from the linux/amd64 binary with
// podman (FROM scratch, packaging/Containerfile) and saves it twice: as
// an OCI archive, and as a Docker archive, because an OCI image
// configuration has no place for the HEALTHCHECK (podman keeps it only
// in Docker's format, in which the image is built).
func (b *build) image(bin string) ([]string, error) {
	stage, err := os.MkdirTemp("", "sshdyn-image-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(stage)
	data, err := os.ReadFile(bin)
	if err != nil {
		return nil, err
	}
	if _, err := b.stage(stage, "sshdyn", data, 0o755); err != nil {
		return nil, err
	}
	ca, err := os.ReadFile(caBundle)
	if err != nil {
		return nil, fmt.Errorf("%s (Debian's ca-certificates): %v", caBundle, err)
	}
	if _, err := b.stage(stage, "ca-certificates.crt", ca, 0o644); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(stage, "state"), 0o750); err != nil {
		return nil, err
	}
	tag := "localhost/sshdyn:" + imageTag(b.version)
	run := func(args ...string) error {
		cmd := exec.Command("podman", args...)
		cmd.Dir = stage
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("podman %s: %v\n%s", args[0], err, out)
		}
		return nil
	}
	if err := run("build", "--quiet", "--format", "docker", "--timestamp", b.epoch(), "--build-arg", "VERSION="+b.version, "--build-arg", "COMMIT="+b.commit,
		"-t", tag, "-f", filepath.Join(b.root, "packaging", "Containerfile"), stage); err != nil {
		return nil, err
	}
	var out []string
	for _, format := range []string{"oci", "docker"} {
		name := filepath.Join(b.out, "sshdyn-"+b.version+"-"+format+".tar")
		os.Remove(name)
		if err := run("save", "--format", format+"-archive", "-o", name, tag); err != nil {
			return nil, err
		}
		fmt.Printf("built %s (%s)\n", filepath.Base(name), tag)
		out = append(out, name)
	}
	return out, nil
}

// imageTag is version as an image tag allows: letters, digits, _ . -.
func imageTag(version string) string {
	b := []byte(version)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-') {
			b[i] = '_'
		}
	}
	return string(b)
}
