package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/sshdyn/sshdyn/authorized"
	"github.com/sshdyn/sshdyn/config"
	"github.com/sshdyn/sshdyn/dnsname"
	"github.com/sshdyn/sshdyn/metrics"
	"github.com/sshdyn/sshdyn/notify"
	"github.com/sshdyn/sshdyn/publish"
	"github.com/sshdyn/sshdyn/sshd"
	"github.com/sshdyn/sshdyn/state"
)

// recorder hands the core's outcomes to the state store's queue, and a
// change of address to changed, once runFleet sets it (notify_changes).
type recorder struct {
	r       *state.Recorder
	changed atomic.Pointer[func(publish.Outcome)]
}

func (r *recorder) Record(o publish.Outcome) {
	r.r.Add(state.Event{Time: o.Time, Host: o.Host, Family: o.Family, Zone: o.Zone, Front: o.Front, Identity: o.Identity,
		Source: o.Source, Addr: o.Addr, Old: o.Old, Outcome: o.Kind.String()})
	if f := r.changed.Load(); f != nil && o.Kind == publish.KindGood {
		(*f)(o)
	}
}

// openState opens the operator's store, unless state_db is "off".
func (p *parts) openState(ctx context.Context) error {
	if p.cfg.StateDB == "off" {
		return nil
	}
	s, err := state.Open(ctx, p.cfg.StateDB)
	if errors.Is(err, state.ErrUnreachable) {
		p.storeWarning = err // serve starts, and the store catches up
		err = nil
	}
	if err != nil {
		return err
	}
	p.store = s
	return nil
}

// staleAfter returns host's stale-after: its line's, else its zone's,
// else the global one.
func (p *parts) staleAfter(host string) time.Duration {
	if e, ok := p.hosts.Map().Owner(host); ok && e.StaleAfter != nil {
		return *e.StaleAfter
	}
	if z, ok := dnsname.Longest(dnsname.Canonical(host), p.cfg.Zones, func(z config.Zone) string { return z.Name }); ok && z.StaleAfter.Duration > 0 {
		return z.StaleAfter.Duration
	}
	return p.cfg.StaleAfter.Duration
}

// smallestStaleAfter is the smallest threshold in use now: the global,
// the zones', the lines'.
func (p *parts) smallestStaleAfter() time.Duration {
	var smallest time.Duration
	take := func(d time.Duration) {
		if d > 0 && (smallest == 0 || d < smallest) {
			smallest = d
		}
	}
	take(p.cfg.StaleAfter.Duration)
	for _, z := range p.cfg.Zones {
		take(z.StaleAfter.Duration)
	}
	for _, e := range p.hosts.Map().Entries() {
		if e.StaleAfter != nil {
			take(*e.StaleAfter)
		}
	}
	return smallest
}

// runFleet runs the state store's writer, the staleness watcher and the
// notifications' delivery; stop ends them, once the writer has written
// what waits.
func (p *parts) runFleet(log *slog.Logger) (stop func()) {
	if p.store == nil {
		return func() {}
	}
	ctx, cancel := context.WithCancel(context.Background())
	log = log.With("component", "state")
	p.recorder.Log = log
	written := make(chan struct{})
	go func() { p.recorder.Run(ctx); close(written) }()
	d := &notify.Dispatcher{Log: log}
	if p.metrics != nil {
		d.Delivered = p.metrics.Notification
	}
	go d.Run(ctx)
	var global []notify.Target
	for _, u := range p.cfg.Notify {
		t, _ := notify.Parse(u, p.cfg.NotifySecret) // checked by config
		global = append(global, t)
	}
	global = slices.Clip(global) // each message's targets append to it
	// targets returns the operator's targets and those of host's line.
	targets := func(host string) []notify.Target {
		ts := global
		if e, ok := p.hosts.Map().Owner(host); ok {
			for _, u := range e.Notify {
				if t, err := notify.Parse(u, p.cfg.NotifySecret); err == nil {
					ts = append(ts, t)
				}
			}
		}
		return ts
	}
	if p.cfg.NotifyChanges && p.rec != nil {
		changed := func(o publish.Outcome) {
			old := "none"
			if len(o.Old) > 0 {
				olds := make([]string, len(o.Old))
				for i, a := range o.Old {
					olds[i] = a.String()
				}
				old = strings.Join(olds, ", ")
			}
			m := notify.Message{Event: "changed", Host: o.Host, Family: o.Family, Zone: o.Zone, Addr: o.Addr.String(),
				Detail: fmt.Sprintf("was %s; updated over %s by %s from %s", old, o.Front, o.Identity, o.Source), Time: o.Time.UTC()}
			if !o.Addr.IsValid() {
				m.Addr, m.Detail = "none", fmt.Sprintf("was %s; removed (offline) over %s by %s from %s", old, o.Front, o.Identity, o.Source)
			}
			d.Send(m, targets(o.Host)...)
		}
		p.rec.changed.Store(&changed)
	}
	w := &state.Watcher{Store: p.store, StaleAfter: p.staleAfter, Failures: p.cfg.StaleFailures, Log: log,
		Notify: func(f state.Family, stale bool, why string) {
			m := notify.Message{Event: "recovered", Host: f.Host, Family: f.Family, Zone: f.Zone, Addr: addrText(f), Detail: why, Time: time.Now().UTC()}
			if stale {
				m.Event = "stale"
			}
			log.Info("host "+m.Event, "host", f.Host, "family", f.Family, "why", why)
			d.Send(m, targets(f.Host)...)
		}}
	go w.Run(ctx, func() time.Duration { return state.Interval(p.smallestStaleAfter()) })
	return func() { cancel(); <-written }
}

func addrText(f state.Family) string {
	if f.Addr.IsValid() {
		return f.Addr.String()
	}
	return ""
}

// ago says how long ago t was, for the operator's views.
func ago(t, now time.Time) string {
	if t.IsZero() {
		return "never"
	}
	d := now.Sub(t).Round(time.Second)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds ago", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm ago", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh ago", int(d.Hours()))
	}
	return fmt.Sprintf("%dd ago", int(d.Hours()/24))
}

// fleet answers the SSH front from the state store.
type fleet struct{ s *state.Store }

func (f fleet) Last(ctx context.Context, host string) (map[string]sshd.LastUpdate, error) {
	fs, err := f.s.Families(ctx, host)
	if err != nil {
		return nil, err
	}
	out := map[string]sshd.LastUpdate{}
	for _, fam := range fs {
		l := sshd.LastUpdate{Time: fam.LastEvent, OK: fam.LastOK, Stale: fam.Stale, Outcome: "good"}
		switch {
		case fam.LastEvent.Equal(fam.LastFailure):
			l.Outcome = fam.FailureKind
		case fam.LastEvent.After(fam.LastChange):
			l.Outcome = "nochg"
		}
		out[fam.Family] = l
	}
	return out, nil
}

func (f fleet) History(ctx context.Context, hosts []string, limit int) ([]sshd.Event, error) {
	evs, err := f.s.Latest(ctx, hosts, limit)
	if err != nil {
		return nil, err
	}
	out := make([]sshd.Event, len(evs))
	for i, e := range evs {
		out[i] = sshd.Event{Time: e.Time, Host: e.Host, Family: e.Family, Outcome: e.Outcome, Addr: addrOrEmpty(e), Front: e.Front}
	}
	return out, nil
}

// fleetMetrics returns what sshdyn_hosts counts, and each host family's
// last success, from the store and the authorized file (at a scrape: at
// most 5 s of the store's time).
func (p *parts) fleetMetrics() ([]metrics.HostStates, []metrics.HostLast) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	fams, err := p.store.Families(ctx)
	if err != nil {
		return nil, nil
	}
	known := map[string]state.Family{}
	for _, f := range fams {
		known[f.Host+" "+f.Family] = f
	}
	counts := map[[3]string]int{}
	var last []metrics.HostLast
	seen := map[string]bool{}
	for _, e := range p.hosts.Map().Entries() {
		hosts := slices.Clone(e.Hosts)
		for _, l := range e.LANHosts {
			hosts = append(hosts, l.Name)
		}
		for _, h := range hosts {
			if seen[h] {
				continue
			}
			seen[h] = true
			zone := ""
			if z, ok := dnsname.Longest(h, p.cfg.Zones, func(z config.Zone) string { return z.Name }); ok {
				zone = z.Name
			}
			for _, fam := range []string{"A", "AAAA"} {
				st := "never"
				f, ok := known[h+" "+fam]
				switch {
				case ok && f.Stale:
					st = "stale"
				case ok && f.Offline():
					st = "offline" // no last success: its alert must not fire
				case ok:
					st = "current"
				}
				if ok && !f.Offline() {
					last = append(last, metrics.HostLast{Host: h, Family: fam, Last: f.LastOK})
				}
				counts[[3]string{zone, fam, st}]++
			}
		}
	}
	var out []metrics.HostStates
	for _, z := range p.cfg.Zones { // every series, zeros too, so that alerts see them
		for _, fam := range []string{"A", "AAAA"} {
			for _, st := range []string{"current", "stale", "offline", "never"} {
				out = append(out, metrics.HostStates{Zone: z.Name, Family: fam, State: st, Count: counts[[3]string{z.Name, fam, st}]})
			}
		}
	}
	return out, last
}

// notifyTest sends a test message to each of urls, or to every target
// the configuration and the authorized file name, and prints how each
// went; exit status 1 if one failed.
func notifyTest(ctx context.Context, path string, urls []string, stdout, stderr io.Writer) int {
	cfg, err := config.Load(path)
	if err != nil {
		fmt.Fprintf(stderr, "sshdyn notify-test: %v\n", err)
		return 2
	}
	if len(urls) == 0 {
		urls = slices.Clone(cfg.Notify)
		if m, err := authorized.Load(cfg.AuthorizedKeys, authorized.Scope{Zones: cfg.ZoneNames(), MinPasswordCost: 1}); err == nil {
			for _, e := range m.Entries() {
				urls = append(urls, e.Notify...)
			}
		}
		slices.Sort(urls)
		urls = slices.Compact(urls)
	}
	if len(urls) == 0 {
		fmt.Fprintln(stderr, "sshdyn notify-test: no notify target configured, and none given")
		return 2
	}
	failed := 0
	for _, u := range urls {
		t, err := notify.Parse(u, cfg.NotifySecret)
		if err != nil {
			fmt.Fprintf(stdout, "%v\n", err)
			failed++
			continue
		}
		sctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		err = t.Send(sctx, notify.Message{Event: "test", Detail: "a test notification from sshdyn notify-test", Time: time.Now().UTC()})
		cancel()
		if err != nil {
			fmt.Fprintf(stdout, "%s: not delivered: %v\n", t, err)
			failed++
			continue
		}
		fmt.Fprintf(stdout, "%s: delivered\n", t)
	}
	if failed > 0 {
		return 1
	}
	return 0
}
