// Command sshdyn-load is sshdyn's load generator: many concurrent SSH
// clients, each with its own key, each running "update" (or another
// command) once per connection. It reports throughput, latency
// percentiles, and failures by kind. See BENCHMARKS.md.
//
//	sshdyn-load gen -n 10000 -zone dyn.example.com -dir DIR
//	sshdyn-load run -addr 127.0.0.1:2222 -keys DIR/keys -c 16 -d 10s [-change] [-sources 127.1.0.1 -nsources 200]
//	sshdyn-load run ... -rate 5000 -n 10000          # a burst: open loop
//	sshdyn-load floor -listen 127.0.0.1:2223 -authorized DIR/authorized_keys -host-key FILE
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/sshdyn/sshdyn/authorized"
	"github.com/sshdyn/sshdyn/internal/load"
	"github.com/sshdyn/sshdyn/sshd"
)

const usage = `usage:
  sshdyn-load gen -n N -zone ZONE -dir DIR
        make N client keys: DIR/keys (private: hex seeds) and
        DIR/authorized_keys (key i owns h<i>.ZONE)
  sshdyn-load run -addr HOST:PORT -keys FILE [-c 16] [-d 10s | -n N] [-rate R -n N]
                  [-change] [-sources ADDR -nsources K] [-command update] [-kex curve25519-sha256]
        run the load and print what it measured
  sshdyn-load floor -listen HOST:PORT -authorized FILE -host-key FILE [-zone ZONE]
        a bare SSH server that accepts the same keys and exits 0: the floor
`

func main() {
	os.Exit(realMain(os.Args[1:], os.Stdout, os.Stderr))
}

func realMain(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	switch args[0] {
	case "gen":
		err = gen(args[1:], stdout)
	case "run":
		err = runLoad(ctx, args[1:], stdout)
	case "floor":
		err = floor(ctx, args[1:], stdout)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "sshdyn-load: unknown command %q\n%s", args[0], usage)
		return 2
	}
	if err != nil {
		fmt.Fprintf(stderr, "sshdyn-load: %v\n", err)
		return 1
	}
	return 0
}

func gen(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("gen", flag.ContinueOnError)
	n := fs.Int("n", 1000, "number of keys")
	zone := fs.String("zone", "dyn.example.com", "zone of the hosts")
	dir := fs.String("dir", ".", "output directory")
	if err := fs.Parse(args); err != nil {
		return err
	}
	keys := load.NewKeys(*n)
	if err := writeWith(filepath.Join(*dir, "keys"), 0o600, keys.Write); err != nil {
		return err
	}
	err := writeWith(filepath.Join(*dir, "authorized_keys"), 0o644, func(w io.Writer) error {
		return keys.Authorized(w, *zone, "")
	})
	if err == nil {
		fmt.Fprintf(stdout, "%d keys in %s/keys, hosts h0..h%d.%s in %s/authorized_keys\n", *n, *dir, *n-1, *zone, *dir)
	}
	return err
}

func writeWith(path string, mode os.FileMode, write func(io.Writer) error) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if err := write(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func runLoad(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:2222", "the SSH server")
	keysFile := fs.String("keys", "keys", "key file from gen")
	c := fs.Int("c", 16, "concurrent clients (closed loop)")
	d := fs.Duration("d", 0, "run for this long")
	n := fs.Int("n", 0, "run this many connections")
	rate := fs.Float64("rate", 0, "open loop: start connections at this rate per second (needs -n)")
	change := fs.Bool("change", false, "alternate each client between two source addresses, so that every update changes the record")
	source := fs.String("sources", "", "first source address (127.x.y.z); clients are spread over -nsources addresses from it")
	nsources := fs.Int("nsources", 1, "number of source addresses")
	command := fs.String("command", "update", "command to run")
	kex := fs.String("kex", "curve25519-sha256", "key exchanges the clients offer, comma-separated; empty: x/crypto's defaults")
	timeout := fs.Duration("timeout", time.Minute, "per connection")
	if err := fs.Parse(args); err != nil {
		return err
	}
	keys, err := load.ReadKeys(*keysFile)
	if err != nil {
		return err
	}
	var sources []netip.Addr
	if *source != "" {
		a, err := netip.ParseAddr(*source)
		if err != nil || !a.Is4() || !a.IsLoopback() {
			return fmt.Errorf("-sources %q: want an address in 127.0.0.0/8", *source)
		}
		sources = load.Loopback(a, *nsources)
	} else if *change {
		return fmt.Errorf("-change needs -sources and -nsources of at least 2")
	}
	cfg := load.Config{
		Addr: *addr, Command: *command, Clients: keys.Clients(sources, *change),
		Concurrency: *c, Count: *n, Duration: *d, Rate: *rate, Timeout: *timeout,
	}
	if *kex != "" {
		cfg.KeyExchanges = strings.Split(*kex, ",")
	}
	res, err := load.Run(ctx, cfg)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, res)
	if res.Failures() > 0 {
		return fmt.Errorf("%d of %d connections failed", res.Failures(), res.Done)
	}
	return nil
}

func floor(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("floor", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:2223", "address to listen on")
	authFile := fs.String("authorized", "authorized_keys", "authorized file (sshdyn's format)")
	hostKey := fs.String("host-key", "floor_host_ed25519", "host key, created if missing")
	zone := fs.String("zone", "dyn.example.com", "zone of the hosts in the authorized file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	m, err := authorized.Load(*authFile, authorized.Scope{Zones: []string{*zone}})
	if err != nil {
		return err
	}
	signer, _, err := sshd.LoadOrCreateHostKey(*hostKey)
	if err != nil {
		return err
	}
	l, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	context.AfterFunc(ctx, func() { l.Close() })
	fmt.Fprintf(stdout, "floor listening on %s with %d keys\n", l.Addr(), m.Len())
	err = (&load.Floor{Hosts: m, Signer: signer}).Serve(l)
	if ctx.Err() != nil {
		return nil
	}
	return err
}
