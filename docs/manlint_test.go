//go:build integration

package docs

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestManPagesLint: mandoc -Tlint finds nothing wrong with the pages
// (scripts/test.sh installs mandoc).
func TestManPagesLint(t *testing.T) {
	if _, err := exec.LookPath("mandoc"); err != nil {
		t.Fatal("mandoc not found: scripts/test.sh installs it")
	}
	dir := t.TempDir()
	for name, text := range manPagesFromReference(t) {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		out, _ := exec.Command("mandoc", "-Tlint", "-W", "warning", p).CombinedOutput()
		if len(strings.TrimSpace(string(out))) > 0 {
			t.Errorf("mandoc -Tlint %s:\n%s", name, out)
		}
	}
}
