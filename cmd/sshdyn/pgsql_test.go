//go:build integration

package main

import (
	"slices"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/sshdyn/sshdyn/internal/dnstest"
)

// TestPowerDNSOnReplicatedPostgres: the distributed primary — PowerDNS
// with gpgsql on a PostgreSQL primary takes sshdyn's RFC 2136 updates, a
// second PowerDNS on the streaming replica answers, and serves each
// update within moments (the lag is logged).
func TestPowerDNSOnReplicatedPostgres(t *testing.T) {
	pg := dnstest.StartPostgres(t)
	writer := dnstest.Start(t, "pdns", dnstest.Options{PgsqlPort: pg.Primary})
	reader := dnstest.Start(t, "pdns", dnstest.Options{PgsqlPort: pg.Replica, Follows: writer})
	key := newClientKey(t, t.TempDir(), "home")
	host := "home." + writer.Zone
	d := startDaemon(t, writer, writer.KeyFile, `host="`+host+`" `+key.line)
	var lags []time.Duration
	for _, src := range []string{"127.0.0.2", "127.0.0.3", "127.0.0.2"} {
		r := d.ssh(t, key, []string{"-b", src}, "update")
		if r.code != 0 || r.stdout != "good "+host+" A "+src+"\n" {
			t.Fatalf("update from %s: %+v", src, r)
		}
		start := time.Now()
		for !slices.Equal(reader.Lookup(t, host, dns.TypeA), []string{src}) {
			if time.Since(start) > 10*time.Second {
				t.Fatalf("the replica's PowerDNS still serves %v after 10 s", reader.Lookup(t, host, dns.TypeA))
			}
			time.Sleep(2 * time.Millisecond)
		}
		lags = append(lags, time.Since(start))
	}
	t.Logf("the replica's PowerDNS served each update %v after sshdyn answered", lags)
	if r := d.ssh(t, key, []string{"-b", "127.0.0.2"}, "update"); r.code != 0 || r.stdout != "nochg "+host+" A 127.0.0.2\n" {
		t.Errorf("repeat: %+v", r)
	}
}
