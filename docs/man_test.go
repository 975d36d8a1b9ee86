package docs

import (
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/sshdyn/sshdyn/authorized"
	"github.com/sshdyn/sshdyn/config"
)

// manPagesFromReference renders the man pages from reference.md.
func manPagesFromReference(t *testing.T) map[string]string {
	t.Helper()
	b, err := os.ReadFile("reference.md")
	if err != nil {
		t.Fatal(err)
	}
	pages, err := ManPages(string(b), time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC), "1.2.3")
	if err != nil {
		t.Fatal(err)
	}
	return pages
}

// unescape undoes the man pages' escapes, to look for words in them.
func unescape(s string) string {
	return strings.NewReplacer(`\-`, "-", `\e`, `\`, `\fB`, "", `\fR`, "", `\fI`, "", `\&`, "").Replace(s)
}

// TestManPagesCoverTheCode: sshdyn.toml(5) names every configuration key
// and sshdyn-authorized(5) every option a line may have; sshdyn(8)
// every command of the program and of the SSH front, and every signal.
func TestManPagesCoverTheCode(t *testing.T) {
	pages := manPagesFromReference(t)
	if len(pages) != 3 {
		t.Fatalf("%d pages", len(pages))
	}
	toml := unescape(pages["sshdyn.toml.5"])
	for _, k := range append(tomlKeys(reflect.TypeFor[config.Config]()), tomlKeys(reflect.TypeFor[config.Zone]())...) {
		if !strings.Contains(toml, "\n"+k+"\n") && !strings.Contains(toml, "\n"+k+", ") && !strings.Contains(toml, ", "+k+"\n") && !strings.Contains(toml, ", "+k+", ") {
			t.Errorf("sshdyn.toml(5) has no entry for %q", k)
		}
	}
	auth := strings.ToLower(unescape(pages["sshdyn-authorized.5"]))
	for _, o := range authorized.OptionNames() {
		if !strings.Contains(auth, "\n"+o) && !strings.Contains(auth, ", "+o) {
			t.Errorf("sshdyn-authorized(5) has no entry for %q", o)
		}
	}
	prog := unescape(pages["sshdyn.8"])
	for _, w := range []string{"sshdyn serve", "sshdyn check", "--live", "sshdyn hosts", "sshdyn history", "sshdyn notify-test", "sshdyn passwd", "sshdyn demo", "sshdyn version",
		"update [HOST...]", "offline [--json] [HOST...]", "acme present", "status", "SIGHUP", "SIGTERM", "Exit status of sshdyn", "/var/lib/sshdyn/host_ed25519", "root:sshdyn 0640"} {
		if !strings.Contains(prog, w) {
			t.Errorf("sshdyn(8) does not say %q", w)
		}
	}
	for name, text := range pages {
		if strings.Contains(text, "](") || strings.Contains(text, "`") {
			t.Errorf("%s keeps Markdown marks", name)
		}
	}
}
