package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/sshdyn/sshdyn/config"
)

// liveTimeout bounds each of check --live's questions.
const liveTimeout = 5 * time.Second

// checkLive asks the daemon running with the configuration at path
// whether it answers: the SSH banner on the first listen address, and
// for each zone it serves, its SOA on the first dns_listen address. A
// wildcard address is asked on the loopback address of its family. It
// reads no key and opens no backend, so it is cheap enough for a
// container's HEALTHCHECK; exit status 0 when everything answered.
func checkLive(ctx context.Context, path string, stdout, stderr io.Writer) int {
	cfg, err := config.Load(path)
	if err != nil {
		fmt.Fprintf(stderr, "sshdyn check --live: %v\n", err)
		return 1
	}
	problems := 0
	if len(cfg.Listen) > 0 {
		addr := loopbackFor(cfg.Listen[0])
		if banner, err := sshBanner(ctx, addr); err != nil {
			fmt.Fprintf(stderr, "ssh %s: %v\n", addr, err)
			problems++
		} else {
			fmt.Fprintf(stdout, "ssh %s: ok: %s\n", addr, banner)
		}
	}
	if len(cfg.DNSListen) > 0 {
		addr := loopbackFor(cfg.DNSListen[0])
		for _, z := range cfg.Zones {
			if z.File == "" {
				continue
			}
			if serial, err := soaSerial(ctx, addr, z.Name); err != nil {
				fmt.Fprintf(stderr, "dns %s zone %s: %v\n", addr, z.Name, err)
				problems++
			} else {
				fmt.Fprintf(stdout, "dns %s zone %s: ok: serial %d\n", addr, z.Name, serial)
			}
		}
	}
	if problems > 0 {
		return 1
	}
	return 0
}

// loopbackFor returns addr (host:port) with a wildcard host replaced by
// the loopback address of its family.
func loopbackFor(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	switch a, err := netip.ParseAddr(host); {
	case host == "":
		host = "127.0.0.1"
	case err == nil && a.IsUnspecified() && a.Is4():
		host = "127.0.0.1"
	case err == nil && a.IsUnspecified():
		host = "::1"
	}
	return net.JoinHostPort(host, port)
}

// sshBanner connects to addr and returns the SSH server's version line.
func sshBanner(ctx context.Context, addr string) (string, error) {
	d := net.Dialer{Timeout: liveTimeout}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(liveTimeout))
	line, err := bufio.NewReader(io.LimitReader(c, 256)).ReadString('\n')
	if err != nil {
		return "", fmt.Errorf("no SSH banner: %w", err)
	}
	line = strings.TrimSpace(line)
	if !strings.HasPrefix(line, "SSH-2.0-") {
		return "", fmt.Errorf("not an SSH server: %q", line)
	}
	return line, nil
}

// soaSerial asks addr for zone's SOA, over UDP, and returns its serial
// if the answer is authoritative.
func soaSerial(ctx context.Context, addr, zone string) (uint32, error) {
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(zone), dns.TypeSOA)
	m.RecursionDesired = false
	c := &dns.Client{Timeout: liveTimeout}
	r, _, err := c.ExchangeContext(ctx, m, addr)
	if err != nil {
		return 0, err
	}
	if r.Rcode != dns.RcodeSuccess || !r.Authoritative {
		return 0, fmt.Errorf("answered %s, authoritative %v", dns.RcodeToString[r.Rcode], r.Authoritative)
	}
	for _, rr := range r.Answer {
		if soa, ok := rr.(*dns.SOA); ok {
			return soa.Serial, nil
		}
	}
	return 0, fmt.Errorf("no SOA in the answer")
}
