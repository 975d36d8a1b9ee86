// Package docs holds sshdyn's documentation; its tests check that the
// documentation and the code agree.
package docs

import (
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/sshdyn/sshdyn/authorized"
	"github.com/sshdyn/sshdyn/config"
)

// markdown returns the project's Markdown files: README.md and the like
// at the top, and docs/*.md.
func markdown(t *testing.T) []string {
	t.Helper()
	var out []string
	for _, pattern := range []string{"../*.md", "*.md"} {
		m, err := filepath.Glob(pattern)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, m...)
	}
	if len(out) < 5 {
		t.Fatalf("only %d Markdown files found: %v", len(out), out)
	}
	return out
}

var (
	linkRE    = regexp.MustCompile(`\]\(([^)\s]+)\)`)
	headingRE = regexp.MustCompile(`(?m)^#+ (.+)$`)
	fenceRE   = regexp.MustCompile("(?ms)^```.*?^```")
)

// slug is GitHub's anchor for a heading.
func slug(h string) string {
	h = strings.ToLower(strings.TrimSpace(h))
	h = regexp.MustCompile(`[^\p{L}\p{N}\- _]`).ReplaceAllString(h, "")
	return strings.ReplaceAll(h, " ", "-")
}

// anchors returns the anchors of the headings of a Markdown file.
func anchors(t *testing.T, path string) []string {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, m := range headingRE.FindAllStringSubmatch(fenceRE.ReplaceAllString(string(b), ""), -1) {
		out = append(out, slug(m[1]))
	}
	return out
}

// TestRelativeLinksResolve: every relative link in README.md and docs/
// names a file or directory that exists, and a #fragment names a heading
// of that file.
func TestRelativeLinksResolve(t *testing.T) {
	for _, file := range markdown(t) {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		text := fenceRE.ReplaceAllString(string(b), "")
		for _, m := range linkRE.FindAllStringSubmatch(text, -1) {
			target := m[1]
			if regexp.MustCompile(`^[a-z]+:`).MatchString(target) {
				continue
			}
			path, frag, _ := strings.Cut(target, "#")
			dest := file
			if path != "" {
				dest = filepath.Join(filepath.Dir(file), path)
				if _, err := os.Stat(dest); err != nil {
					t.Errorf("%s: link %q: %v", file, target, err)
					continue
				}
			}
			if frag != "" && strings.HasSuffix(dest, ".md") && !slices.Contains(anchors(t, dest), frag) {
				t.Errorf("%s: link %q: no heading #%s in %s", file, target, frag, dest)
			}
		}
	}
}

// tomlKeys returns the TOML keys of a struct type's fields.
func tomlKeys(t reflect.Type) []string {
	var out []string
	for f := range t.Fields() {
		if k, _, _ := strings.Cut(f.Tag.Get("toml"), ","); k != "" && k != "-" {
			out = append(out, k)
		}
	}
	return out
}

// documentedKeys returns the keys in the first column of the tables of
// reference.md's "Configuration" section.
func documentedKeys(t *testing.T) []string {
	section := referenceSection(t, "Configuration")
	var out []string
	for _, line := range strings.Split(section, "\n") {
		if !strings.HasPrefix(line, "| `") {
			continue
		}
		first := strings.Split(line, "|")[1]
		for _, m := range regexp.MustCompile("`([a-z0-9_]+)`").FindAllStringSubmatch(first, -1) {
			out = append(out, m[1])
		}
	}
	return out
}

// TestEveryConfigKeyIsDocumented: the reference's Configuration tables
// list every key the configuration accepts, and no key it does not.
func TestEveryConfigKeyIsDocumented(t *testing.T) {
	code := append(tomlKeys(reflect.TypeFor[config.Config]()), tomlKeys(reflect.TypeFor[config.Zone]())...)
	doc := documentedKeys(t)
	for _, k := range code {
		if !slices.Contains(doc, k) {
			t.Errorf("configuration key %q is not in docs/reference.md", k)
		}
	}
	for _, k := range doc {
		if !slices.Contains(code, k) {
			t.Errorf("docs/reference.md documents %q, which the configuration does not accept", k)
		}
	}
	if len(code) < 40 {
		t.Errorf("only %d keys found in the configuration's types", len(code))
	}
}

// TestEveryAuthorizedOptionIsDocumented: the reference's Authorized
// lines table names every option a line may have.
func TestEveryAuthorizedOptionIsDocumented(t *testing.T) {
	section := strings.ToLower(referenceSection(t, "Authorized lines"))
	for _, o := range authorized.OptionNames() {
		if !strings.Contains(section, "`"+o+"`") && !strings.Contains(section, "`"+o+"=") {
			t.Errorf("authorized option %q is not in docs/reference.md's Authorized lines", o)
		}
	}
}

// referenceSection returns the text of reference.md's "## name" section.
func referenceSection(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile("reference.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(b), "\n## "+name+"\n")
	if !ok {
		t.Fatalf("reference.md has no %s section", name)
	}
	section, _, _ = strings.Cut(section, "\n## ")
	return section
}
