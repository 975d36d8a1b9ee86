//go:build integration

package main

import (
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/miekg/dns"

	"github.com/sshdyn/sshdyn/internal/dnstest"
)

// TestTwoFrontends: two sshdyn serve processes with the same authorized
// file and one BIND primary; four keys update their hosts through both at
// once, from two addresses (400 sessions). No session fails but for a
// documented temporary result (75): a change that lands between the
// other's replace and its confirmation is no configuration error (it was
// exit 78 "ignored", about 1 session in 200). Every RRset ends single
// valued; and neither frontend's memory of what it saw makes it answer
// nochg for a record the other changed.
func TestTwoFrontends(t *testing.T) {
	p := dnstest.Start(t, "bind", dnstest.Options{})
	dir := t.TempDir()
	var keys []clientKey
	var lines []string
	for i := range 4 {
		k := newClientKey(t, dir, fmt.Sprintf("k%d", i))
		keys = append(keys, k)
		lines = append(lines, fmt.Sprintf(`host="h%d.%s" %s`, i, p.Zone, k.line))
	}
	// Limits per frontend: both would refuse the burst otherwise.
	open := "max_changes_per_key = 0\nmax_requests_per_key = 0\nauth_fail_penalty = \"0s\"\n"
	var fronts []*daemon
	for range 2 {
		d := writeConfig(t, p, p.Addr, p.KeyFile, lines...)
		cfg := d + "/sshdyn.toml"
		writeFile(t, cfg, open+string(mustRead(t, cfg)))
		fronts = append(fronts, runDaemon(t, d))
	}
	const rounds = 50
	var mu sync.Mutex
	codes := map[int]int{}
	var bad []string
	var wg sync.WaitGroup
	for i, k := range keys {
		for f, d := range fronts {
			wg.Go(func() {
				for n := range rounds {
					src := fmt.Sprintf("127.0.0.%d", 2+(n+f)%2)
					r := d.ssh(t, k, []string{"-b", src}, "update")
					mu.Lock()
					codes[r.code]++
					if r.code != 0 && r.code != 75 {
						bad = append(bad, fmt.Sprintf("key %d via frontend %d from %s: exit %d %q", i, f, src, r.code, strings.TrimSpace(r.stderr)))
					}
					mu.Unlock()
				}
			})
		}
	}
	wg.Wait()
	t.Logf("exit statuses of %d sessions: %v", 4*2*rounds, codes)
	for _, b := range bad {
		t.Error(b)
	}
	for i := range keys {
		if got := p.Lookup(t, fmt.Sprintf("h%d.%s", i, p.Zone), dns.TypeA); len(got) != 1 {
			t.Errorf("h%d A = %v, want one address", i, got)
		}
	}
	// Frontend 0 sets h0 from .2, frontend 1 from .3: frontend 0 from .2
	// again must write (good), not trust what it saw (nochg).
	for _, step := range []struct {
		front int
		src   string
	}{{0, "127.0.0.2"}, {1, "127.0.0.3"}, {0, "127.0.0.2"}} {
		r := fronts[step.front].ssh(t, keys[0], []string{"-b", step.src}, "update")
		if r.code != 0 {
			t.Fatalf("frontend %d from %s: %+v", step.front, step.src, r)
		}
		if step.front == 0 && step.src == "127.0.0.2" && strings.HasPrefix(r.stdout, "nochg") && p.Lookup(t, "h0."+p.Zone, dns.TypeA)[0] != "127.0.0.2" {
			t.Errorf("frontend 0 answered %q for a record frontend 1 had changed", r.stdout)
		}
	}
	if got := p.Lookup(t, "h0."+p.Zone, dns.TypeA); len(got) != 1 || got[0] != "127.0.0.2" {
		t.Errorf("h0 A = %v after the last update, want 127.0.0.2", got)
	}
}
