// Package demotest runs "sshdyn demo" as a new user meets it, for the
// tests of any sshdyn binary: the one the tests build, the one in a
// release, the one in the container image.
package demotest

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/sshdyn/sshdyn/internal/dnstest"
)

// Run starts "binary demo" on free loopback ports, runs the commands it
// prints exactly as printed (from another directory, with an empty
// home) and checks that they change the record dig shows. It returns the
// demo's directory (its sshdyn.toml) and stop, which ends the demo; the
// demo is also stopped when the test ends.
func Run(t *testing.T, binary string) (dir string, stop func()) {
	t.Helper()
	sshPort, err := dnstest.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	dnsPort, err := dnstest.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	dir = filepath.Join(t.TempDir(), "demo")
	cmd := exec.Command(binary, "demo", "--dir", dir, "--ssh-port", strconv.Itoa(sshPort), "--dns-port", strconv.Itoa(dnsPort))
	logs := &dnstest.LogBuffer{}
	cmd.Stderr = logs
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	stopped := false
	stop = func() {
		if !stopped {
			stopped = true
			cmd.Process.Signal(syscall.SIGTERM)
			cmd.Wait()
		}
	}
	t.Cleanup(func() {
		stop()
		if t.Failed() {
			t.Logf("demo log:\n%s", logs.String())
		}
	})
	var commands []string
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "  ssh ") || strings.HasPrefix(line, "  dig ") {
			c, _, _ := strings.Cut(strings.TrimSpace(line), "#")
			commands = append(commands, strings.TrimSpace(c))
		}
		if strings.HasPrefix(line, "Ctrl-C") {
			break
		}
	}
	go func() {
		for sc.Scan() {
		}
	}()
	if len(commands) != 8 {
		t.Fatalf("demo printed %d commands, want 8: %q", len(commands), commands)
	}
	home, elsewhere := t.TempDir(), t.TempDir()
	var outputs []string
	for _, c := range commands {
		sh := exec.Command("sh", "-c", c)
		sh.Dir = elsewhere
		sh.Env = []string{"HOME=" + home, "PATH=" + os.Getenv("PATH")}
		out, err := sh.CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v\n%s", c, err, out)
		}
		outputs = append(outputs, strings.TrimSpace(Records(string(out))))
	}
	host := "home.dyn.example.com"
	want := []string{
		"", "good " + host + " A 127.0.0.1",
		"127.0.0.1", "good " + host + " A 127.0.0.2",
		"127.0.0.2", "good " + host + " AAAA ::1",
		"::1", host + " A 127.0.0.2 60\n" + host + " AAAA ::1 60",
	}
	if !slices.Equal(outputs, want) {
		t.Errorf("outputs of the printed commands:\n%q\nwant:\n%q", outputs, want)
	}
	return dir, stop
}

// Records drops status's comment lines ("# HOST FAMILY: last update
// …", from the operator's store), keeping the records.
func Records(stdout string) string {
	var recs strings.Builder
	for _, l := range strings.SplitAfter(stdout, "\n") {
		if !strings.HasPrefix(l, "# ") {
			recs.WriteString(l)
		}
	}
	return recs.String()
}
