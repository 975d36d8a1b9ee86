package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/sshdyn/sshdyn/authorized"
	"github.com/sshdyn/sshdyn/config"
	"github.com/sshdyn/sshdyn/dyndns2"
	"github.com/sshdyn/sshdyn/internal/secret"
	"github.com/sshdyn/sshdyn/internal/watch"
	"github.com/sshdyn/sshdyn/metrics"
	"github.com/sshdyn/sshdyn/publish"
	"github.com/sshdyn/sshdyn/zone"
)

// serve runs the daemon until ctx is cancelled (SIGTERM, SIGINT); SIGHUP
// reloads the authorized file. ready, if not nil, is called once every
// listener is open.
func serve(ctx context.Context, path string, logOut io.Writer, ready func()) error {
	cfg, err := config.Load(path)
	if err != nil {
		return err
	}
	var h slog.Handler = slog.NewTextHandler(logOut, nil)
	if cfg.LogFormat == "json" {
		h = slog.NewJSONHandler(logOut, nil)
	}
	log := slog.New(h)

	var m *metrics.Metrics
	if cfg.MetricsListen != "" {
		m = metrics.New(readBuildInfo().Version)
	}
	p, err := build(cfg, createHostKey, m, log)
	if err != nil {
		return err
	}
	defer p.close()
	// Started before the fronts, so stopped after them: the writer
	// records what they did last.
	defer p.runFleet(log)()
	if p.storeWarning != nil {
		log.Error("the state store cannot be reached; updates go on, and what happens is recorded once it is back", "component", "state", "err", p.storeWarning)
	}
	if p.hostKeyCreated {
		log.Info("created host key", "path", cfg.HostKey, "fingerprint", gossh.FingerprintSHA256(p.ssh.HostSigners[0].PublicKey()))
	}
	if p.dns != nil {
		for _, z := range p.dns.Zones {
			if err := z.Own(); err != nil {
				return err
			}
			if err := z.Sign(); err != nil {
				return err
			}
		}
		if err := listenDNS(p.dns, cfg.DNSListen, log.With("component", "dns")); err != nil {
			return err
		}
		defer func() {
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := p.dns.Shutdown(sctx); err != nil {
				log.Error("embedded primary: shutdown", "component", "dns", "err", err)
			}
		}()
		tuneGC(p.zones, log)
	}
	// A listener of any front that fails stops the daemon: errc carries
	// its error to run. (Each listener sends at most once.)
	errc := make(chan error, 2*(len(cfg.Listen)+len(cfg.HTTPListen)+2))
	if m != nil {
		stop, err := serveMetrics(ctx, cfg.MetricsListen, cfg.MetricsPprof, m, log, errc)
		if err != nil {
			return err
		}
		defer stop()
	}
	if p.cfg.AdminListen != "" {
		stop, err := serveAdmin(ctx, p, log.With("component", "admin"), errc)
		if err != nil {
			return err
		}
		defer stop()
	}
	if p.web != nil {
		stop, err := serveHTTP(ctx, p, log.With("component", "http"), errc)
		if err != nil {
			return err
		}
		defer stop()
	}
	var listeners []net.Listener
	defer func() {
		for _, l := range listeners {
			l.Close()
		}
	}()
	for _, addr := range cfg.Listen {
		l, err := listen(ctx, addr)
		if err != nil {
			return err
		}
		listeners = append(listeners, l)
	}
	for _, l := range listeners {
		log.Info("listening", "addr", l.Addr().String(), "keys", p.hosts.Map().Len(), "host_key", gossh.FingerprintSHA256(p.ssh.HostSigners[0].PublicKey()))
		go func(l net.Listener) { errc <- p.ssh.Serve(l) }(l)
	}
	if ready != nil {
		ready()
	}
	return run(ctx, path, p, errc, log)
}

// reloaded reports a reload of the authorized file (the log line, the
// metric) and closes the connections of the keys it removed.
func (p *parts) reloaded(err error, why string, log *slog.Logger) {
	path, keys := p.hosts.Path(), p.hosts.Map().Len()
	result := metrics.ReloadOK
	var re *authorized.ReloadError
	switch {
	case errors.As(err, &re):
		result = metrics.ReloadBadLines
		log.Error("authorized file has bad lines: using its good lines, and for a key on a bad line its previous options; keys it no longer lists are revoked",
			"path", path, "why", why, "keys", keys, "kept", re.Kept, "removed", re.Removed, "err", re.Err)
	case err != nil:
		result = metrics.ReloadFailed
		log.Error("authorized file cannot be read; keeping the old map", "path", path, "why", why, "err", err)
	case keys == 0:
		log.Warn("reloaded: the authorized file lists no keys, so no client can update", "path", path, "why", why)
	default:
		log.Info("reloaded", "path", path, "keys", keys, "why", why)
	}
	if p.metrics != nil {
		p.metrics.Reload(result, keys)
	}
	if p.hosts.Map().Passwords() > 0 {
		if err := secret.Check("authorized keys file, with http-password hashes,", path); err != nil {
			log.Error("the password hashes can be read by every local user, and cracked offline; serve will not start like this", "err", err)
		}
	}
	if n := p.ssh.CloseRevoked(); n > 0 {
		log.Info("closed the connections of removed keys", "connections", n)
	}
}

// reloadRevoked reloads revoked_keys, logs how it went, and closes the
// connections of the keys it now revokes. A list that does not load
// revokes every key until it does (fails closed, as OpenSSH's sshd), and
// so closes every key's connections; the watcher logs it once per change
// of the file.
func (p *parts) reloadRevoked(why string, log *slog.Logger) {
	if err := p.revoked.Reload(); err != nil {
		log.Error("revoked_keys does not load: refusing every key and certificate until it does", "path", p.revoked.Path(), "why", why, "err", err)
	} else {
		log.Info("reloaded revoked keys", "path", p.revoked.Path(), "krl_version", p.revoked.List().Version, "why", why)
	}
	if n := p.ssh.CloseRevoked(); n > 0 {
		log.Info("closed the connections of revoked keys", "connections", n)
	}
}

// reloadCert reloads the HTTP front's TLS certificate and logs how it
// went: a pair that does not load keeps the one before.
func (p *parts) reloadCert(why string, log *slog.Logger) {
	if err := p.certs.Reload(); err != nil {
		log.Error("TLS certificate does not load; keeping the old one", "component", "http", "cert", p.cfg.TLSCert, "why", why, "err", err)
		return
	}
	log.Info("TLS certificate reloaded", "component", "http", "cert", p.cfg.TLSCert, "why", why)
}

// watcher returns the one watcher of the files sshdyn reloads: the
// authorized file, revoked_keys and the TLS certificate, each reloaded
// when it changes (every reload_interval) and on SIGHUP.
func (p *parts) watcher(log *slog.Logger) *watch.Watcher {
	w := &watch.Watcher{}
	w.Add(func(why string) { p.reloaded(p.hosts.Reload(), why, log) }, p.hosts.Path())
	if p.revoked != nil {
		w.Add(func(why string) { p.reloadRevoked(why, log) }, p.revoked.Path())
	}
	if p.certs != nil {
		w.Add(func(why string) { p.reloadCert(why, log) }, p.certs.Paths()...)
	}
	return w
}

// restartNeeded reads the configuration file again and logs, by name,
// each setting that changed: SIGHUP reloads the files above, and every
// other setting takes effect only at the next start (a new http_listen,
// say, would otherwise do nothing without a word).
func (p *parts) restartNeeded(path string, log *slog.Logger) {
	cfg, err := config.Load(path)
	if err != nil {
		log.Error("the configuration file does not load; the running configuration stays", "path", path, "err", err)
		return
	}
	for _, key := range config.Changed(p.cfg, cfg) {
		log.Warn("a setting changed that only a restart applies: restart sshdyn", "setting", key, "path", path)
	}
}

// run reloads the files that change, and everything on SIGHUP, until a
// listener fails or ctx ends; then it shuts the SSH front down.
func run(ctx context.Context, path string, p *parts, errc <-chan error, log *slog.Logger) error {
	w := p.watcher(log)
	go w.Run(ctx, p.cfg.ReloadInterval.Duration)
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for {
		select {
		case <-hup:
			w.Kick("SIGHUP")
			p.restartNeeded(path, log)
		case err := <-errc:
			return err
		case <-ctx.Done():
			log.Info("shutting down")
			sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := p.ssh.Shutdown(sctx); err != nil {
				if errors.Is(err, context.DeadlineExceeded) {
					return errShutdownTimeout
				}
				return err
			}
			return nil
		}
	}
}

// tlsConfig is the TLS set-up of the HTTP listeners.
func tlsConfig(p *parts) *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: p.certs.GetCertificate}
}

// maxHeaderBytes is what the HTTP servers read of a request's line and
// headers before answering 431. net/http reads MaxHeaderBytes plus 4 KiB
// of slack, so MaxHeaderBytes is set to 4 KiB less.
const maxHeaderBytes = 8 << 10

// serveHTTP serves the dyndns2 front on every http_listen address until
// stop is called, over TLS when the configuration has a certificate. A
// listener that fails sends its error to errc.
func serveHTTP(ctx context.Context, p *parts, log *slog.Logger, errc chan<- error) (stop func(), err error) {
	hs := &http.Server{
		Handler:           p.web,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		// Longer than an update may take (publish.DefaultTimeout).
		WriteTimeout:   publish.DefaultTimeout + 5*time.Second,
		IdleTimeout:    60 * time.Second,
		MaxHeaderBytes: maxHeaderBytes - 4<<10,
		ErrorLog:       slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	if p.certs != nil {
		hs.TLSConfig = tlsConfig(p)
	}
	var ls []net.Listener
	for _, addr := range p.cfg.HTTPListen {
		l, err := listen(ctx, addr)
		if err != nil {
			for _, l := range ls {
				l.Close()
			}
			return nil, fmt.Errorf("http_listen: %w", err)
		}
		ls = append(ls, dyndns2.LimitListener(l, p.cfg.HTTPMaxConns, p.cfg.HTTPMaxConnsPerSource, func(remote net.Addr) {
			p.service.Limited(publish.LimitHTTPConns)
			log.Debug("connection refused: too many open", "remote", remote.String(),
				"max", p.cfg.HTTPMaxConns, "max_per_source", p.cfg.HTTPMaxConnsPerSource)
		}))
	}
	useTLS := hs.TLSConfig != nil // not read again: Serve changes the TLSConfig
	for _, l := range ls {
		log.Info("http listening", "addr", l.Addr().String(), "tls", useTLS, "paths", "/nic/update /v3/update /update")
		go serveOn(hs, l, useTLS, "http_listen", errc)
	}
	return func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		hs.Shutdown(sctx)
	}, nil
}

// serveMetrics serves m at http://addr/metrics until stop is called. A
// listener that fails sends its error to errc.
func serveMetrics(ctx context.Context, addr string, profiler bool, m *metrics.Metrics, log *slog.Logger, errc chan<- error) (stop func(), err error) {
	l, err := listen(ctx, addr)
	if err != nil {
		return nil, fmt.Errorf("metrics_listen: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", m.Handler())
	if profiler {
		mux.HandleFunc("GET /debug/pprof/", pprof.Index)
		mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
		log.Warn("profiler served: keep metrics_listen off untrusted networks", "path", "/debug/pprof/")
	}
	writeTimeout := 15 * time.Second
	if profiler {
		writeTimeout = 5 * time.Minute // a CPU profile takes ?seconds=N to write
	}
	hs := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    maxHeaderBytes - 4<<10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	go func() {
		if err := hs.Serve(l); !errors.Is(err, http.ErrServerClosed) {
			errc <- fmt.Errorf("metrics_listen %s: %w", l.Addr(), err)
		}
	}()
	log.Info("metrics listening", "addr", l.Addr().String(), "path", "/metrics")
	return func() {
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		hs.Shutdown(sctx)
	}, nil
}

// listenDNS starts the embedded primary on every dns_listen address.
func listenDNS(srv *zone.Server, addrs []string, log *slog.Logger) error {
	for _, addr := range addrs {
		if err := srv.Listen(addr); err != nil {
			srv.Shutdown(context.Background())
			return err
		}
	}
	for _, a := range srv.Addrs() {
		log.Info("dns listening", "addr", a, "zones", len(srv.Zones))
	}
	return nil
}

// largeZone is the size, in names, of the embedded zones from which serve
// lowers the garbage collector's target.
const largeZone = 100_000

// tuneGC lowers the GC target (GOGC) to 20 when the embedded zones hold
// largeZone names or more, unless GOGC is set in the environment. Such a
// zone is most of the heap and barely changes, while every update leaves
// a little garbage: with Go's default of 100, a stream of updates lets
// the heap, and the RSS, grow to about twice the zone's size before a
// collection; with 20, to 1.2 times. Measured at 1,000,000 names (see
// BENCHMARKS.md): RSS after 20,000 changes 1.05 times the RSS after
// loading instead of 1.6, for about 17 % fewer changes a second at full
// load. It is set after loading, so the start-up does not pay for it.
func tuneGC(zones []builtZone, log *slog.Logger) {
	if _, set := os.LookupEnv("GOGC"); set {
		return
	}
	names := 0
	for _, z := range zones {
		if z.embedded != nil {
			names += z.embedded.Stats().Names
		}
	}
	if names >= largeZone {
		debug.SetGCPercent(20)
		log.Info("garbage collector target lowered for a large zone", "component", "dns", "names", names, "gogc", 20)
	}
}

// serveOn serves hs on l, over TLS with useTLS, until hs is shut down;
// any other end is sent to errc, named by the setting of the listener.
func serveOn(hs *http.Server, l net.Listener, useTLS bool, setting string, errc chan<- error) {
	var err error
	if useTLS {
		err = hs.ServeTLS(l, "", "")
	} else {
		err = hs.Serve(l)
	}
	if !errors.Is(err, http.ErrServerClosed) {
		errc <- fmt.Errorf("%s %s: %w", setting, l.Addr(), err)
	}
}
