// Command sshdyn is a dynamic DNS server with an SSH front: clients run
// "ssh SERVER update" and their key's hosts point at the address they
// connect from. See README.md and docs/
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/sshdyn/sshdyn/dyndns2"
)

const usage = `usage:
  sshdyn serve --config FILE   run the server
  sshdyn check --config FILE [--dns]
                               check the configuration, the authorized file
                               and the key files; with --dns, prove that each
                               zone's primary accepts the key and lets it
                               change A and AAAA records (writes nothing,
                               unless the primary hides what its policy
                               refuses, as PowerDNS does)
  sshdyn check --config FILE --live
                               ask the running daemon: its SSH banner, and
                               the SOA of each zone it serves (a container's
                               health check); exit status 1 if one does not
                               answer
  sshdyn demo [--dir DIR] [--ssh-port N] [--dns-port N]
                               run a complete demo on loopback: SSH, and the
                               zone dyn.example.com served by sshdyn itself
  sshdyn hosts --config FILE [--stale] [--json] [HOST...]
                               every host's state per address family: what
                               DNS serves, the last good or nochg update,
                               the last change and failure, stale or not;
                               exit status 1 when a host listed is stale
  sshdyn history --config FILE [--since DURATION] [--json] HOST
                               a host's updates, newest first
  sshdyn notify-test --config FILE [URL...]
                               send a test notification to each URL (or to
                               every notify target the configuration and
                               the authorized file name) and say how it went
  sshdyn dnssec ds --config FILE [--dnskey] ZONE
                               print the DS records of a zone sshdyn signs
                               (dnssec = true), to give the registrar
  sshdyn dnssec status --config FILE ZONE
                               its keys, signatures and NSEC chain, verified,
                               and where a key rollover is; exit status 1 if
                               a signature does not verify
  sshdyn dnssec roll --config FILE [--ds-submitted] ZONE
                               start a key rollover (double signature), or
                               say that the new key's DS is at the parent
  sshdyn dnssec insecure --config FILE [--cancel] ZONE
                               ask the parent to remove the DS (CDS and
                               CDNSKEY delete records), before dnssec = false
  sshdyn passwd                read a password on standard input and print
                               its bcrypt hash, for an http-password= option
  sshdyn version               print the version
  sshdyn help                  print this text
`

func main() {
	os.Exit(realMain(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

func realMain(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "serve":
		fs := flag.NewFlagSet("serve", flag.ContinueOnError)
		fs.SetOutput(stderr)
		cfg := fs.String("config", "/etc/sshdyn/sshdyn.toml", "configuration `file`")
		if err := fs.Parse(args[1:]); err != nil {
			return 2
		}
		if fs.NArg() > 0 {
			fmt.Fprintf(stderr, "sshdyn serve: unexpected argument %q\n", fs.Arg(0))
			return 2
		}
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
		defer stop()
		if err := serve(ctx, *cfg, stderr, nil); err != nil {
			fmt.Fprintf(stderr, "sshdyn: %v\n", err)
			return 1
		}
		return 0
	case "check":
		fs := flag.NewFlagSet("check", flag.ContinueOnError)
		fs.SetOutput(stderr)
		cfg := fs.String("config", "/etc/sshdyn/sshdyn.toml", "configuration `file`")
		probe := fs.Bool("dns", false, "also ask each zone's primary")
		live := fs.Bool("live", false, "ask the running daemon instead: its SSH banner, and the SOA of each zone it serves")
		if err := fs.Parse(args[1:]); err != nil {
			return 2
		}
		if fs.NArg() > 0 {
			fmt.Fprintf(stderr, "sshdyn check: unexpected argument %q\n", fs.Arg(0))
			return 2
		}
		if *live {
			return checkLive(context.Background(), *cfg, stdout, stderr)
		}
		return check(context.Background(), *cfg, *probe, stdout, stderr)
	case "demo":
		fs := flag.NewFlagSet("demo", flag.ContinueOnError)
		fs.SetOutput(stderr)
		dir := fs.String("dir", filepath.Join(os.TempDir(), "sshdyn-demo"), "`directory` for the demo's files (made anew)")
		sshPort := fs.Int("ssh-port", 2222, "SSH `port` on 127.0.0.1 and ::1")
		dnsPort := fs.Int("dns-port", 5353, "DNS `port` on 127.0.0.1 and ::1")
		if err := fs.Parse(args[1:]); err != nil {
			return 2
		}
		if fs.NArg() > 0 {
			fmt.Fprintf(stderr, "sshdyn demo: unexpected argument %q\n", fs.Arg(0))
			return 2
		}
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
		defer stop()
		if err := demo(ctx, *dir, *sshPort, *dnsPort, stdout, stderr); err != nil {
			fmt.Fprintf(stderr, "sshdyn: %v\n", err)
			return 1
		}
		return 0
	case "hosts":
		fs := flag.NewFlagSet("hosts", flag.ContinueOnError)
		fs.SetOutput(stderr)
		cfg := fs.String("config", "/etc/sshdyn/sshdyn.toml", "configuration `file`")
		stale := fs.Bool("stale", false, "list the stale host families only")
		asJSON := fs.Bool("json", false, "print JSON")
		if err := fs.Parse(args[1:]); err != nil {
			return 2
		}
		return hostsCommand(context.Background(), *cfg, *stale, *asJSON, fs.Args(), stdout, stderr)
	case "history":
		fs := flag.NewFlagSet("history", flag.ContinueOnError)
		fs.SetOutput(stderr)
		cfg := fs.String("config", "/etc/sshdyn/sshdyn.toml", "configuration `file`")
		since := fs.Duration("since", 0, "only the last `duration` (e.g. 24h)")
		asJSON := fs.Bool("json", false, "print JSON")
		if err := fs.Parse(args[1:]); err != nil {
			return 2
		}
		if fs.NArg() != 1 {
			fmt.Fprintln(stderr, "sshdyn history: name one host")
			return 2
		}
		return historyCommand(context.Background(), *cfg, fs.Arg(0), *since, *asJSON, stdout, stderr)
	case "notify-test":
		fs := flag.NewFlagSet("notify-test", flag.ContinueOnError)
		fs.SetOutput(stderr)
		cfg := fs.String("config", "/etc/sshdyn/sshdyn.toml", "configuration `file`")
		if err := fs.Parse(args[1:]); err != nil {
			return 2
		}
		return notifyTest(context.Background(), *cfg, fs.Args(), stdout, stderr)
	case "dnssec":
		return dnssecCommand(args[1:], stdout, stderr)
	case "passwd":
		if len(args) > 1 {
			fmt.Fprintf(stderr, "sshdyn passwd: unexpected argument %q (the password is read on standard input)\n", args[1])
			return 2
		}
		return passwd(stdin, stdout, stderr)
	case "version", "--version", "-version":
		fmt.Fprintln(stdout, readBuildInfo())
		return 0
	case "help", "-h", "--help", "-help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "sshdyn: unknown command %q\n%s", args[0], usage)
	return 2
}

var errShutdownTimeout = errors.New("shutdown: sessions still open after 10s; closed them")

// passwd reads one password (the first line of stdin, without its line
// end) and prints its bcrypt hash alone on one line.
func passwd(stdin io.Reader, stdout, stderr io.Writer) int {
	line, err := bufio.NewReader(io.LimitReader(stdin, 1<<10)).ReadString('\n')
	if err != nil && err != io.EOF {
		fmt.Fprintf(stderr, "sshdyn passwd: %v\n", err)
		return 1
	}
	password := strings.TrimRight(line, "\r\n")
	switch {
	case password == "":
		fmt.Fprint(stderr, "sshdyn passwd: no password on standard input (e.g. echo 'the password' | sshdyn passwd)\n")
		return 1
	case len(password) > 72:
		fmt.Fprintln(stderr, "sshdyn passwd: password longer than 72 bytes (bcrypt's limit)")
		return 1
	}
	hash, err := dyndns2.HashPassword(password)
	if err != nil {
		fmt.Fprintf(stderr, "sshdyn passwd: %v\n", err)
		return 1
	}
	fmt.Fprintln(stdout, hash)
	return 0
}
