// Package metrics exports sshdyn's counters for Prometheus: connections,
// failed logins, updates by result, the DNS round-trip time and the
// requests refused by a limit. It implements publish.Observer and sshd.Observer
// and hooks into update.Client; none of those packages imports Prometheus.
package metrics

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/sshdyn/sshdyn/publish"
	"github.com/sshdyn/sshdyn/zone"
)

// Metrics is one registry of sshdyn's metrics. Its methods are safe for
// concurrent use.
type Metrics struct {
	reg           *prometheus.Registry
	connections   prometheus.Counter
	authFails     *prometheus.CounterVec
	limited       *prometheus.CounterVec
	sessions      *prometheus.CounterVec
	updates       *prometheus.CounterVec
	dnsRTT        *prometheus.HistogramVec
	httpReqs      *prometheus.CounterVec
	reloads       *prometheus.CounterVec
	reloadOK      prometheus.Gauge
	keys          prometheus.Gauge
	notifications *prometheus.CounterVec
}

// New returns a registry with sshdyn's metrics, the Go runtime's and the
// process's, and sshdyn_build_info with version.
func New(version string) *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry()}
	m.connections = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "sshdyn_connections_total",
		Help: "TCP connections accepted by the SSH front, before any limit.",
	})
	m.authFails = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sshdyn_auth_failures_total",
		Help: "Failed logins, by front: SSH connections that ended without one (ssh), requests whose credentials were refused (http).",
	}, []string{"front"})
	m.httpReqs = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sshdyn_http_requests_total",
		Help: "Requests to the dyndns2 front, by HTTP status.",
	}, []string{"code"})
	m.limited = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sshdyn_rate_limited_total",
		Help: "Requests refused by a limit: penalty, unauthenticated, dns_slots, changes, requests.",
	}, []string{"limit"})
	m.sessions = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sshdyn_sessions_total",
		Help: "Commands run, by command and exit status.",
	}, []string{"command", "exit"})
	m.updates = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sshdyn_updates_total",
		Help: "Host updates by front (ssh, http), zone, record type and result: good, nochg, rate_limited, or the kind of backend failure (credentials, refused, ignored, notzone, servfail, unreachable, timeout, other).",
	}, []string{"front", "zone", "type", "result"})
	m.dnsRTT = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "sshdyn_dns_request_duration_seconds",
		Help: "Round trip of one signed DNS message to a zone's primary, by zone, operation (check, replace, confirm, lookup, remove) and outcome (ok or error); operation connect is the opening of a new TCP connection to it.",
		// 250 µs to 4 s: loopback to a primary across the world.
		Buckets: prometheus.ExponentialBuckets(0.00025, 2, 15),
	}, []string{"zone", "op", "outcome"})
	m.reloads = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sshdyn_authorized_reloads_total",
		Help: "Reloads of the authorized file after the first load, by result: ok, bad_lines (the good lines are in use, see the log), failed (the file could not be read; the old map is in use).",
	}, []string{"result"})
	m.reloadOK = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "sshdyn_authorized_reload_ok",
		Help: "1 if the last load of the authorized file took every line, 0 if it found bad lines or failed: alert on 0.",
	})
	m.reloadOK.Set(1)
	m.notifications = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sshdyn_notifications_total",
		Help: "Notifications (a host family stale or recovered) by target scheme (ntfy, generic, smtp, sendmail) and result (delivered, failed after retries).",
	}, []string{"scheme", "result"})
	m.keys = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "sshdyn_authorized_keys",
		Help: "Lines (identities) in the authorized map in use.",
	})
	build := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "sshdyn_build_info",
		Help:        "Always 1; the version label says which sshdyn runs.",
		ConstLabels: prometheus.Labels{"version": version},
	})
	build.Set(1)
	m.reg.MustRegister(m.connections, m.authFails, m.limited, m.sessions, m.updates, m.dnsRTT, m.httpReqs, m.reloads, m.reloadOK, m.keys, m.notifications, build,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	// Start the labelled series at zero so that rate() sees the first one.
	for _, r := range []string{ReloadOK, ReloadBadLines, ReloadFailed} {
		m.reloads.WithLabelValues(r)
	}
	for _, l := range []string{publish.LimitPenalty, publish.LimitUnauthenticated, publish.LimitDNSSlots, publish.LimitChanges, publish.LimitRequests,
		publish.LimitPasswordChecks, publish.LimitHTTPConns} {
		m.limited.WithLabelValues(l)
	}
	return m
}

// Zone exports the figures of a zone sshdyn serves itself (the embedded
// primary), read from stats at each scrape: its serial, names, journal
// size, and whether the last write of the zone file from the journal
// worked (alert on 0: the journal keeps every update, but grows, and a
// restart replays more of it).
func (m *Metrics) Zone(name string, stats func() zone.Stats) {
	labels := prometheus.Labels{"zone": name}
	gauge := func(metric, help string, value func(zone.Stats) float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: metric, Help: help, ConstLabels: labels},
			func() float64 { return value(stats()) })
	}
	m.reg.MustRegister(
		gauge("sshdyn_zone_serial", "The SOA serial served by the embedded primary.",
			func(s zone.Stats) float64 { return float64(s.Serial) }),
		gauge("sshdyn_zone_names", "Names in the embedded zone.",
			func(s zone.Stats) float64 { return float64(s.Names) }),
		gauge("sshdyn_zone_journal_bytes", "Size of the zone's journal: the updates not yet in the zone file.",
			func(s zone.Stats) float64 { return float64(s.JournalBytes) }),
		gauge("sshdyn_zone_file_write_ok", "1 unless the last write of the zone file from the journal failed: alert on 0.",
			func(s zone.Stats) float64 {
				if s.WriteErr != nil {
					return 0
				}
				return 1
			}),
		gauge("sshdyn_zone_file_written_timestamp_seconds", "When the zone file was last written from the journal (Unix time); 0 if not since start.",
			func(s zone.Stats) float64 {
				if s.Written.IsZero() {
					return 0
				}
				return float64(s.Written.UnixNano()) / 1e9
			}),
		gauge("sshdyn_zone_dnssec_keys", "The DNSSEC keys signing the zone; 0 if it is not signed.",
			func(s zone.Stats) float64 { return float64(s.Keys) }),
		gauge("sshdyn_zone_dnssec_signature_expiry_timestamp_seconds", "When the zone's soonest DNSSEC signature expires (Unix time), as the last signing pass found it; 0 if not signed. Alert when it is less than the refresh time away: signatures are not being made again.",
			func(s zone.Stats) float64 {
				if s.NextExpiry.IsZero() {
					return 0
				}
				return float64(s.NextExpiry.Unix())
			}),
	)
}

// DNSEvents returns a counter of the embedded primary's events
// (zone.Server.Observe): sshdyn_dns_limited_total{event}, "dropped" and
// "slipped" answers of response rate limiting, "tcp_refused" connections
// over a cap.
func (m *Metrics) DNSEvents() func(event string) {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sshdyn_dns_limited_total",
		Help: "The embedded primary's limits at work: answers dropped or slipped (sent truncated) by response rate limiting, TCP connections refused over a cap."},
		[]string{"event"})
	m.reg.MustRegister(c)
	for _, e := range []string{"dropped", "slipped", "tcp_refused"} {
		c.WithLabelValues(e)
	}
	return func(event string) { c.WithLabelValues(event).Inc() }
}

// Handler serves the metrics in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{MaxRequestsInFlight: 4, Timeout: 10 * time.Second})
}

// Registry returns the registry, for tests and for more collectors.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Results of a reload of the authorized file.
const (
	ReloadOK       = "ok"
	ReloadBadLines = "bad_lines"
	ReloadFailed   = "failed"
)

// Reload counts a reload of the authorized file with its result; keys is
// the number of lines in the map in use afterwards.
func (m *Metrics) Reload(result string, keys int) {
	m.reloads.WithLabelValues(result).Inc()
	m.keys.Set(float64(keys))
	if result == ReloadOK {
		m.reloadOK.Set(1)
	} else {
		m.reloadOK.Set(0)
	}
}

// KRL exports whether the revocation list (revoked_keys) loads:
// sshdyn_krl_ok, read from ok at each scrape. While it is 0 every key
// login is refused (the list fails closed): alert on 0.
func (m *Metrics) KRL(ok func() bool) {
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "sshdyn_krl_ok",
		Help: "1 if revoked_keys loaded at its last reload, 0 if it does not load: then every key and certificate is refused until it does. Alert on 0.",
	}, func() float64 {
		if ok() {
			return 1
		}
		return 0
	}))
}

// Notification counts a notification's delivery: its target's scheme and
// whether it arrived.
func (m *Metrics) Notification(scheme string, ok bool) {
	result := "delivered"
	if !ok {
		result = "failed"
	}
	m.notifications.WithLabelValues(scheme, result).Inc()
}

// StateDropped exports the events the state store lost (queue full, or
// the store down): sshdyn_state_dropped_total, read from n at each
// scrape.
func (m *Metrics) StateDropped(n func() uint64) {
	m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "sshdyn_state_dropped_total",
		Help: "Update outcomes not recorded in the state store (its queue was full, or the store was down). Updates are not affected.",
	}, func() float64 { return float64(n()) }))
}

// Keys sets the number of lines in the map in use.
func (m *Metrics) Keys(n int) { m.keys.Set(float64(n)) }

// Connection counts an accepted connection.
func (m *Metrics) Connection() { m.connections.Inc() }

// AuthFailure counts an SSH connection that did not log in.
func (m *Metrics) AuthFailure() { m.authFails.WithLabelValues(publish.FrontSSH).Inc() }

// HTTP returns the observer of the dyndns2 front.
func (m *Metrics) HTTP() *HTTP { return &HTTP{m} }

// HTTP counts for the dyndns2 front: it implements dyndns2.Observer.
type HTTP struct{ m *Metrics }

// Request counts a request answered with status.
func (h *HTTP) Request(status int) { h.m.httpReqs.WithLabelValues(strconv.Itoa(status)).Inc() }

// AuthFailure counts a request whose credentials were refused.
func (h *HTTP) AuthFailure() { h.m.authFails.WithLabelValues(publish.FrontHTTP).Inc() }

// Limited counts a request a limit refused.
func (m *Metrics) Limited(limit string) { m.limited.WithLabelValues(limit).Inc() }

// Session counts a finished command.
func (m *Metrics) Session(command string, exit int) {
	if command == "" {
		command = "none"
	}
	m.sessions.WithLabelValues(command, exitLabel(exit)).Inc()
}

// Update counts one host's update through front: result is a
// publish.Kind's name.
func (m *Metrics) Update(front, zone, typ, result string) {
	m.updates.WithLabelValues(front, zone, typ, result).Inc()
}

// Outcomes of a DNS round trip, the "outcome" label of
// sshdyn_dns_request_duration_seconds.
const (
	OutcomeOK    = "ok"
	OutcomeError = "error"
)

// DNS returns the hook for update.Client.Observe of zone's client.
func (m *Metrics) DNS(zone string) func(op string, took time.Duration, err error) {
	return func(op string, took time.Duration, err error) {
		outcome := OutcomeOK
		if err != nil {
			outcome = OutcomeError
		}
		m.dnsRTT.WithLabelValues(zone, op, outcome).Observe(took.Seconds())
	}
}

// exitLabel keeps the exit label to the statuses sshdyn uses.
func exitLabel(code int) string {
	switch code {
	case 0, 64, 75, 77, 78:
		return strconv.Itoa(code)
	}
	return "other"
}

// HostStates are the host families of one zone and family in one state
// ("current", "stale", "never").
type HostStates struct {
	Zone, Family, State string
	Count               int
}

// HostLast is a host family's last good or nochg update.
type HostLast struct {
	Host, Family string
	Last         time.Time
}

// Fleet exports, read at each scrape, sshdyn_hosts{zone,family,state}
// and, with perHost (opt-in: one series per host),
// sshdyn_host_last_success_timestamp_seconds{host,family}.
func (m *Metrics) Fleet(states func() []HostStates, perHost func() []HostLast) {
	m.reg.MustRegister(&fleetCollector{states: states, perHost: perHost})
}

var (
	hostsDesc = prometheus.NewDesc("sshdyn_hosts", "Host families (A, AAAA) by zone and state: current, stale (no good or nochg update for stale_after, or stale_failures failures in a row), offline (its records removed on purpose: offline, offline=YES), never (never updated). Alert on state=\"stale\".", []string{"zone", "family", "state"}, nil)
	lastDesc  = prometheus.NewDesc("sshdyn_host_last_success_timestamp_seconds", "When a host family last had a good or nochg update (metrics_per_host); none for a family taken offline.", []string{"host", "family"}, nil)
)

type fleetCollector struct {
	states  func() []HostStates
	perHost func() []HostLast
}

func (c *fleetCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- hostsDesc
	if c.perHost != nil {
		ch <- lastDesc
	}
}

func (c *fleetCollector) Collect(ch chan<- prometheus.Metric) {
	for _, s := range c.states() {
		ch <- prometheus.MustNewConstMetric(hostsDesc, prometheus.GaugeValue, float64(s.Count), s.Zone, s.Family, s.State)
	}
	if c.perHost == nil {
		return
	}
	for _, h := range c.perHost() {
		if !h.Last.IsZero() {
			ch <- prometheus.MustNewConstMetric(lastDesc, prometheus.GaugeValue, float64(h.Last.UnixNano())/1e9, h.Host, h.Family)
		}
	}
}
