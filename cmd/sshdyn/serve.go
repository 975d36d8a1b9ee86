package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"syscall"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/sshdyn/sshdyn/authorized"
	"github.com/sshdyn/sshdyn/config"
	"github.com/sshdyn/sshdyn/metrics"
	"github.com/sshdyn/sshdyn/publish"
	"github.com/sshdyn/sshdyn/sshd"
	"github.com/sshdyn/sshdyn/tsig"
	"github.com/sshdyn/sshdyn/update"
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

	dnsSrv, err := startDNS(cfg, log.With("component", "dns"))
	if err != nil {
		return err
	}
	if dnsSrv != nil {
		defer func() {
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			dnsSrv.Shutdown(sctx)
		}()
	}

	var m *metrics.Metrics
	if cfg.MetricsListen != "" {
		m = metrics.New(version)
		stop, err := serveMetrics(ctx, cfg.MetricsListen, cfg.MetricsPprof, m, log)
		if err != nil {
			return err
		}
		defer stop()
	}

	var zones []publish.Zone
	for _, z := range cfg.Zones {
		key, err := tsig.Load(z.TSIGKey)
		if err != nil {
			return fmt.Errorf("zone %s: %w", z.Name, err)
		}
		// As many idle connections as commands may be doing DNS work at
		// once: with fewer, a burst closes and reopens connections by the
		// thousand, and a busy primary's short accept queue drops the
		// SYNs of some (the kernel retries after 1 s, 3 s, 7 s).
		pool := update.NewPool()
		pool.MaxIdle = max(pool.MaxIdle, cfg.MaxDNSInFlight)
		c := &update.Client{Server: z.Primary, Zone: z.Name, Key: key, Timeout: z.Timeout.Duration,
			Pool: pool, Batch: update.NewBatch()}
		defer c.Pool.Close()
		if m != nil {
			c.Observe = m.DNS(z.Name)
		}
		zones = append(zones, publish.Zone{Name: z.Name, TTL: z.TTL, Backend: update.Remember(c, &update.LastSeen{})})
	}
	hosts, err := authorized.Open(cfg.AuthorizedKeys, cfg.ZoneNames())
	if err != nil {
		return fmt.Errorf("authorized keys: %w", err)
	}
	signer, created, err := sshd.LoadOrCreateHostKey(cfg.HostKey)
	if err != nil {
		return err
	}
	if created {
		log.Info("created host key", "path", cfg.HostKey, "fingerprint", gossh.FingerprintSHA256(signer.PublicKey()))
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

	core := &publish.Service{
		Zones:            zones,
		AllowPrivate:     cfg.AllowPrivate,
		MaxInFlight:      cfg.MaxDNSInFlight,
		MaxChangesPerKey: cfg.MaxChangesPerKey,
		ChangeWindow:     cfg.ChangeWindow.Duration,
		FailPenalty:      cfg.AuthFailPenalty.Duration,
		FailGrace:        cfg.AuthFailGrace.Duration,
	}
	srv := &sshd.Server{
		Hosts:          hosts,
		Service:        core,
		HostSigners:    []gossh.Signer{signer},
		LoginTimeout:   cfg.LoginTimeout.Duration,
		SessionTimeout: cfg.SessionTimeout.Duration,

		MaxUnauthenticated:          cfg.MaxUnauthenticated,
		MaxUnauthenticatedPerSource: cfg.MaxUnauthenticatedPerSource,
		Logger:                      log.With("component", "sshd"),
	}
	if m != nil {
		core.Observer, srv.Observer = m, m
	}
	errc := make(chan error, len(listeners))
	for _, l := range listeners {
		log.Info("listening", "addr", l.Addr().String(), "keys", hosts.Map().Len(), "host_key", gossh.FingerprintSHA256(signer.PublicKey()))
		go func(l net.Listener) { errc <- srv.Serve(l) }(l)
	}

	if ready != nil {
		ready()
	}
	if d := cfg.ReloadInterval.Duration; d > 0 {
		go hosts.Watch(ctx, d, func(err error) {
			if err != nil {
				log.Error("authorized file changed but does not load; keeping the old map", "err", err)
			} else {
				log.Info("reloaded", "path", hosts.Path(), "keys", hosts.Map().Len(), "why", "file changed")
			}
		})
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for {
		select {
		case <-hup:
			if err := hosts.Reload(); err != nil {
				log.Error("reload failed; keeping the old map", "path", hosts.Path(), "err", err)
			} else {
				log.Info("reloaded", "path", hosts.Path(), "keys", hosts.Map().Len())
			}
		case err := <-errc:
			return err
		case <-ctx.Done():
			log.Info("shutting down")
			sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := srv.Shutdown(sctx); err != nil {
				if errors.Is(err, context.DeadlineExceeded) {
					return errShutdownTimeout
				}
				return err
			}
			return nil
		}
	}
}

// serveMetrics serves m at http://addr/metrics until stop is called.
func serveMetrics(ctx context.Context, addr string, profiler bool, m *metrics.Metrics, log *slog.Logger) (stop func(), err error) {
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
		MaxHeaderBytes:    8 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	go hs.Serve(l)
	log.Info("metrics listening", "addr", l.Addr().String(), "path", "/metrics")
	return func() {
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		hs.Shutdown(sctx)
	}, nil
}

// startDNS starts the embedded primary for the zones that have a file,
// on every dns_listen address; nil if there are none.
func startDNS(cfg *config.Config, log *slog.Logger) (*zone.Server, error) {
	srv := &zone.Server{Logger: log}
	keys := map[string]tsig.Key{}
	loadKey := func(zoneName, path string) (string, error) {
		k, err := tsig.Load(path)
		if err != nil {
			return "", fmt.Errorf("zone %s: %w", zoneName, err)
		}
		if old, ok := keys[k.Name]; ok && old != k {
			return "", fmt.Errorf("zone %s: TSIG key %s in %s differs from another key of the same name", zoneName, k.Name, path)
		}
		keys[k.Name] = k
		return k.Name, nil
	}
	for _, zc := range cfg.Zones {
		if !zc.Embedded() {
			continue
		}
		upd, err := loadKey(zc.Name, zc.TSIGKey)
		if err != nil {
			return nil, err
		}
		var xfr []string
		if zc.TransferKey != "" {
			name, err := loadKey(zc.Name, zc.TransferKey)
			if err != nil {
				return nil, err
			}
			xfr = []string{name}
		}
		z, err := zone.Load(zone.Config{
			Origin: zc.Name, File: zc.File,
			UpdateKeys: []string{upd}, UpdateTypes: zc.Types(),
			AllowTransfer: zc.TransferPrefixes(), TransferKeys: xfr, Notify: zc.Notify,
		})
		if err != nil {
			return nil, err
		}
		srv.Zones = append(srv.Zones, z)
	}
	if len(srv.Zones) == 0 {
		return nil, nil
	}
	for _, k := range keys {
		srv.Keys = append(srv.Keys, k)
	}
	for _, addr := range cfg.DNSListen {
		if err := srv.Listen(addr); err != nil {
			srv.Shutdown(context.Background())
			return nil, err
		}
	}
	for _, a := range srv.Addrs() {
		log.Info("dns listening", "addr", a, "zones", len(srv.Zones))
	}
	return srv, nil
}
