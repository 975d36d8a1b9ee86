package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"unicode"
)

// debRevision is the Debian revision of every package: sshdyn is packaged
// by its own authors, once per upstream version.
const debRevision = "1"

// maintainer is the packages' maintainer.
const maintainer = "sshdyn authors <sshdyn@users.noreply.github.com>"

// deb builds the Debian package of bin for t's architecture, with nfpm.
func (b *build) deb(t target, bin string) (string, error) {
	stage, err := os.MkdirTemp("", "sshdyn-deb-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(stage)
	type file struct {
		src, dst, kind string
		mode           os.FileMode
	}
	var files []file
	add := func(dst string, data []byte, mode os.FileMode, kind string) error {
		p, err := b.stage(stage, strings.TrimPrefix(dst, "/"), data, mode)
		files = append(files, file{p, dst, kind, mode})
		return err
	}
	read := func(rel string) ([]byte, error) { return os.ReadFile(filepath.Join(b.root, rel)) }

	binData, err := os.ReadFile(bin)
	if err != nil {
		return "", err
	}
	if err := add("/usr/sbin/sshdyn", binData, 0o755, ""); err != nil {
		return "", err
	}
	example, err := read("examples/sshdyn.toml")
	if err != nil {
		return "", err
	}
	// 0644 as shipped (nothing secret yet); postinst makes them
	// root:sshdyn 0640 on a first installation.
	if err := add("/etc/sshdyn/sshdyn.toml", []byte(conffile(string(example))), 0o644, "config|noreplace"); err != nil {
		return "", err
	}
	if err := add("/etc/sshdyn/authorized_keys", []byte(authorizedConffile), 0o644, "config|noreplace"); err != nil {
		return "", err
	}
	for _, f := range []struct{ src, dst string }{
		{"examples/sshdyn.service", "/lib/systemd/system/sshdyn.service"},
		{"packaging/sysusers.conf", "/usr/lib/sysusers.d/sshdyn.conf"},
	} {
		data, err := read(f.src)
		if err != nil {
			return "", err
		}
		if err := add(f.dst, data, 0o644, ""); err != nil {
			return "", err
		}
	}
	pages, err := b.manPages()
	if err != nil {
		return "", err
	}
	for name, text := range pages {
		section := name[strings.LastIndex(name, ".")+1:]
		if err := add("/usr/share/man/man"+section+"/"+name+".gz", gzipped([]byte(text)), 0o644, ""); err != nil {
			return "", err
		}
	}
	doc := "/usr/share/doc/sshdyn/"
	copyright, err := b.copyright(bin)
	if err != nil {
		return "", err
	}
	if err := add(doc+"copyright", []byte(copyright), 0o644, ""); err != nil {
		return "", err
	}
	if err := add(doc+"changelog.Debian.gz", gzipped([]byte(b.debianChangelog())), 0o644, ""); err != nil {
		return "", err
	}
	for _, f := range []struct{ src, dst string }{{"CHANGELOG.md", "changelog.gz"}, {"README.md", "README.md.gz"}, {"docs/install.md", "install.md.gz"}} {
		data, err := read(f.src)
		if err != nil {
			return "", err
		}
		if err := add(doc+f.dst, gzipped(data), 0o644, ""); err != nil {
			return "", err
		}
	}
	// The examples: the client's timer and service among them.
	entries, err := os.ReadDir(filepath.Join(b.root, "examples"))
	if err != nil {
		return "", err
	}
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		data, err := read(filepath.Join("examples", e.Name()))
		if err != nil {
			return "", err
		}
		mode := os.FileMode(0o644)
		if fi, err := e.Info(); err == nil && fi.Mode()&0o111 != 0 {
			mode = 0o755
		}
		if err := add(doc+"examples/"+e.Name(), data, mode, ""); err != nil {
			return "", err
		}
	}
	scripts := map[string]string{}
	for _, s := range []string{"postinst", "prerm", "postrm"} {
		data, err := read("packaging/" + s)
		if err != nil {
			return "", err
		}
		p, err := b.stage(stage, "scripts/"+s, data, 0o755)
		if err != nil {
			return "", err
		}
		scripts[s] = p
	}
	overrides, err := read("packaging/lintian-overrides")
	if err != nil {
		return "", err
	}
	if err := add("/usr/share/lintian/overrides/sshdyn", overrides, 0o644, ""); err != nil {
		return "", err
	}

	// nfpm's configuration, in YAML (JSON is YAML).
	var y strings.Builder
	fmt.Fprintf(&y, "name: sshdyn\narch: %s\nplatform: linux\nversion: %q\nversion_schema: none\nrelease: %q\n", t.debArch, b.version, debRevision)
	fmt.Fprintf(&y, "section: net\npriority: optional\nmaintainer: %q\nvendor: sshdyn\nhomepage: https://github.com/sshdyn/sshdyn\nlicense: Apache-2.0\n", maintainer)
	y.WriteString("description: |-\n  dynamic DNS over SSH\n  sshdyn is an SSH server that keeps DNS names pointed at their machines'\n  changing addresses: a client's SSH key is its identity, and\n  \"ssh SERVER update\" makes the address it connects from its host's A or\n  AAAA record, through TSIG-signed RFC 2136 updates to BIND, Knot or\n  PowerDNS, its own embedded primary, tinydns or a provider's API.\n  Routers use the same identities through a dyndns2 HTTP front.\n")
	y.WriteString("depends:\n  - adduser\n")
	fmt.Fprintf(&y, "mtime: %q\n", b.date.Format("2006-01-02T15:04:05Z"))
	y.WriteString("contents:\n")
	sort.Slice(files, func(i, j int) bool { return files[i].dst < files[j].dst })
	for _, f := range files {
		fmt.Fprintf(&y, "  - src: %q\n    dst: %q\n", f.src, f.dst)
		if f.kind != "" {
			fmt.Fprintf(&y, "    type: %s\n", f.kind)
		}
		fmt.Fprintf(&y, "    file_info:\n      mode: 0%o\n      mtime: %q\n", f.mode, b.date.Format("2006-01-02T15:04:05Z"))
	}
	fmt.Fprintf(&y, "scripts:\n  postinstall: %q\n  preremove: %q\n  postremove: %q\n", scripts["postinst"], scripts["prerm"], scripts["postrm"])
	conf, err := b.stage(stage, "nfpm.yaml", []byte(y.String()), 0o644)
	if err != nil {
		return "", err
	}
	name := filepath.Join(b.out, fmt.Sprintf("sshdyn_%s-%s_%s.deb", b.version, debRevision, t.debArch))
	cmd := exec.Command("go", "run", nfpm, "package", "--config", conf, "--packager", "deb", "--target", name)
	cmd.Dir = stage
	cmd.Env = append(os.Environ(), "GOFLAGS=", "SOURCE_DATE_EPOCH="+b.epoch())
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("nfpm for %s: %v\n%s", t.debArch, err, out)
	}
	fmt.Printf("built %s\n", filepath.Base(name))
	return name, nil
}

// authorizedConffile is the packaged authorized file: no identity yet.
const authorizedConffile = `# sshdyn's identities, one a line: the hosts it may update, then its SSH
# public key, e.g.
#   host="home.dyn.example.com" ssh-ed25519 AAAA... home-server
# See sshdyn-authorized(5) and /usr/share/doc/sshdyn/examples/authorized_keys.
# Keep it root:sshdyn, mode 0640: it may hold password hashes.
`

// conffile is the packaged configuration: examples/sshdyn.toml with its
// [[zone]] tables commented out, for the operator to fill in (until then
// sshdyn check, which the unit runs before each start, says that a zone
// is missing).
func conffile(example string) string {
	var b strings.Builder
	b.WriteString("# sshdyn's configuration: see sshdyn.toml(5). Fill in the [[zone]] at the\n# end, then run \"sshdyn check --config /etc/sshdyn/sshdyn.toml --dns\" and\n# \"systemctl enable --now sshdyn\". Keep this file root:sshdyn, mode 0640.\n#\n")
	inZone := false
	for _, line := range strings.SplitAfter(example, "\n") {
		if strings.HasPrefix(line, "[[zone]]") {
			inZone = true
		}
		if inZone && line != "\n" && line != "" && !strings.HasPrefix(line, "#") {
			line = "#" + line
		}
		b.WriteString(line)
	}
	return b.String()
}

// debianChangelog is the package's changelog.Debian: one entry per
// build, pointing at the project's changelog.
func (b *build) debianChangelog() string {
	return fmt.Sprintf("sshdyn (%s-%s) unstable; urgency=medium\n\n  * sshdyn %s,\n    commit %s; what changed is in\n    /usr/share/doc/sshdyn/changelog.gz.\n\n -- %s  %s\n",
		b.version, debRevision, b.version, b.commit[:12], maintainer, b.date.Format("Mon, 02 Jan 2006 15:04:05 -0700"))
}

// copyright is the package's machine-readable copyright file: sshdyn's
// licence, then each Go module linked into bin, with its copyright line
// and licence, read from the module cache.
func (b *build) copyright(bin string) (string, error) {
	out, err := exec.Command("go", "version", "-m", bin).Output()
	if err != nil {
		return "", fmt.Errorf("go version -m: %v", err)
	}
	modcache, err := exec.Command("go", "env", "GOMODCACHE").Output()
	if err != nil {
		return "", err
	}
	var s strings.Builder
	s.WriteString("Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\nUpstream-Name: sshdyn\nUpstream-Contact: https://github.com/sshdyn/sshdyn/issues\nSource: https://github.com/sshdyn/sshdyn\nComment: /usr/sbin/sshdyn is one statically linked Go program. The Files\n paragraphs after the first name the Go modules linked into it, by module\n path, with their copyright and licence.\n\nFiles: *\nCopyright: 2026 The sshdyn authors\nLicense: Apache-2.0\n")
	texts := map[string]string{}
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) < 3 || f[0] != "dep" {
			continue
		}
		path, version := f[1], f[2]
		dir := filepath.Join(strings.TrimSpace(string(modcache)), escapeModule(path)+"@"+version)
		text, err := licenseText(dir)
		if err != nil {
			return "", fmt.Errorf("module %s %s: %v", path, version, err)
		}
		id := licenseID(text)
		if id == "" {
			id = "other-" + path
		}
		if _, ok := texts[id]; !ok {
			texts[id] = text
		}
		fmt.Fprintf(&s, "\nFiles: %s/*\nCopyright: %s\nLicense: %s\n", path, copyrightLine(text), id)
	}
	ids := make([]string, 0, len(texts))
	for id := range texts {
		ids = append(ids, id)
	}
	ids = append(ids, "Apache-2.0")
	sort.Strings(ids)
	seen := map[string]bool{}
	for _, id := range ids {
		if seen[id] {
			continue
		}
		seen[id] = true
		switch id {
		case "Apache-2.0", "MPL-2.0":
			fmt.Fprintf(&s, "\nLicense: %s\n On Debian systems, the complete text of the licence is in\n /usr/share/common-licenses/%s.\n", id, id)
		default:
			fmt.Fprintf(&s, "\nLicense: %s\n%s", id, indent(texts[id]))
		}
	}
	return s.String(), nil
}

// escapeModule is a module path as the module cache spells it: an upper
// case letter as ! and the lower case one.
func escapeModule(path string) string {
	var b strings.Builder
	for _, r := range path {
		if unicode.IsUpper(r) {
			b.WriteByte('!')
			r = unicode.ToLower(r)
		}
		b.WriteRune(r)
	}
	return b.String()
}

// licenseText reads a module's licence file.
func licenseText(dir string) (string, error) {
	for _, name := range []string{"LICENSE", "LICENSE.txt", "LICENSE.md", "LICENCE", "COPYING", "License", "license"} {
		if data, err := os.ReadFile(filepath.Join(dir, name)); err == nil {
			return string(data), nil
		}
	}
	return "", fmt.Errorf("no licence file in %s", dir)
}

// licenseID names a licence text by its SPDX identifier, or "".
func licenseID(text string) string {
	t := strings.Join(strings.Fields(text), " ")
	switch {
	case strings.Contains(t, "Apache License") && strings.Contains(t, "Version 2.0"):
		return "Apache-2.0"
	case strings.Contains(t, "Mozilla Public License Version 2.0"):
		return "MPL-2.0"
	case strings.Contains(t, "Permission is hereby granted, free of charge"):
		return "Expat"
	case strings.Contains(t, "Permission to use, copy, modify, and/or distribute this software"), strings.Contains(t, "Permission to use, copy, modify, and distribute this software"):
		return "ISC"
	case strings.Contains(t, "Redistribution and use in source and binary forms") && (strings.Contains(t, "Neither the name") || strings.Contains(t, "names of its contributors")):
		return "BSD-3-Clause"
	case strings.Contains(t, "Redistribution and use in source and binary forms"):
		return "BSD-2-Clause"
	}
	return ""
}

var copyrightRE = regexp.MustCompile(`(?im)^\s*copyright\s+(\(c\)\s*)?(.*\d{4}.*)$`)

// copyrightLine is a licence text's first copyright line, without the
// word.
func copyrightLine(text string) string {
	if m := copyrightRE.FindStringSubmatch(text); m != nil {
		return strings.TrimSpace(m[2])
	}
	return "the module's authors (its licence names none)"
}

// indent makes text a DEP-5 field's continuation lines.
func indent(text string) string {
	var b strings.Builder
	for _, l := range strings.Split(strings.TrimRight(text, "\n"), "\n") {
		l = strings.TrimRight(l, " \t\r")
		if l == "" {
			b.WriteString(" .\n")
			continue
		}
		b.WriteString(" " + l + "\n")
	}
	return b.String()
}
