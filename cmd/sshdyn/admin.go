package main

import (
	"context"
	"embed"
	"encoding/json"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/miekg/dns"

	"github.com/sshdyn/sshdyn/dnsname"
	"github.com/sshdyn/sshdyn/state"
)

//go:embed admin/*.html
var adminFiles embed.FS

var adminPages = template.Must(template.New("").Funcs(template.FuncMap{
	"ago": func(t time.Time) string { return ago(t, time.Now()) },
	"utc": func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.UTC().Format(time.RFC3339)
	},
	"join": strings.Join,
}).ParseFS(adminFiles, "admin/*.html"))

// admin is the operator's HTTP view: GET /hosts (a page), /hosts.json,
// /hosts/NAME (a host's history) and /hosts/NAME.json. Off loopback it
// requires Basic auth against admin_users (and TLS, checked at start).
type admin struct {
	p     *parts
	users map[string]string // name → bcrypt hash; none: loopback only
	log   *slog.Logger
}

func (a *admin) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	if !a.authorized(r) {
		w.Header().Set("WWW-Authenticate", `Basic realm="sshdyn admin"`)
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	}
	path := r.URL.Path
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	switch {
	case path == "/" || path == "/hosts":
		a.hosts(ctx, w, r, false)
	case path == "/hosts.json":
		a.hosts(ctx, w, r, true)
	case strings.HasPrefix(path, "/hosts/"):
		name := strings.TrimPrefix(path, "/hosts/")
		name, asJSON := strings.CutSuffix(name, ".json")
		a.history(ctx, w, dnsname.Canonical(name), asJSON)
	default:
		http.NotFound(w, r)
	}
}

// authorized checks Basic auth against admin_users, if there are any.
func (a *admin) authorized(r *http.Request) bool {
	if len(a.users) == 0 {
		return true // loopback only: checked at start
	}
	user, pass, ok := r.BasicAuth()
	hash, known := a.users[user]
	if !known {
		hash = string(dummyAdminHash)
	}
	match := bcrypt.CompareHashAndPassword([]byte(hash), []byte(pass)) == nil
	return ok && known && match
}

var dummyAdminHash, _ = bcrypt.GenerateFromPassword([]byte("sshdyn: no such admin"), bcrypt.MinCost)

// hostsPage is what the hosts page shows.
type hostsPage struct {
	Hosts     []HostView
	Zones     []zoneView // the zones sshdyn serves itself
	OnlyStale bool
	Sort      string
	Stale     int
	Generated time.Time
}

func (a *admin) hosts(ctx context.Context, w http.ResponseWriter, r *http.Request, asJSON bool) {
	views, err := a.p.fleetView(ctx, nil)
	if err != nil {
		a.log.Warn("admin: hosts", "err", err)
		http.Error(w, "the state store does not answer", http.StatusServiceUnavailable)
		return
	}
	page := hostsPage{OnlyStale: r.URL.Query().Get("stale") != "", Sort: r.URL.Query().Get("sort"), Generated: time.Now(), Zones: a.p.zoneViews()}
	for _, v := range views {
		if v.State == "stale" {
			page.Stale++
		}
		if !page.OnlyStale || v.State == "stale" {
			page.Hosts = append(page.Hosts, v)
		}
	}
	switch page.Sort {
	case "state":
		slices.SortStableFunc(page.Hosts, func(x, y HostView) int { return strings.Compare(y.State, x.State) })
	case "last_ok":
		slices.SortStableFunc(page.Hosts, func(x, y HostView) int { return x.LastOK.Compare(y.LastOK) })
	default:
		page.Sort = "host"
	}
	if asJSON {
		w.Header().Set("Content-Type", "application/json")
		if page.Hosts == nil {
			page.Hosts = []HostView{}
		}
		json.NewEncoder(w).Encode(page.Hosts)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err := adminPages.ExecuteTemplate(w, "hosts.html", page); err != nil {
		a.log.Warn("admin: hosts page", "err", err)
	}
}

// zoneView is a zone sshdyn serves, as the admin page shows it.
type zoneView struct {
	Name   string
	Serial uint32
	Names  int
	DNSSEC string // "unsigned", or its keys, the soonest expiry and the rollover's step
}

// zoneViews returns the zones sshdyn serves itself, with their DNSSEC
// state.
func (p *parts) zoneViews() []zoneView {
	var out []zoneView
	for _, bz := range p.zones {
		z := bz.embedded
		if z == nil {
			continue
		}
		st := z.Stats()
		v := zoneView{Name: bz.cfg.Name, Serial: st.Serial, Names: st.Names, DNSSEC: "unsigned"}
		if z.Signed() {
			now := z.Now()
			var keys []string
			for _, k := range z.Keys() {
				keys = append(keys, fmt.Sprintf("key %d (%s: %s)", k.Tag, dns.AlgorithmToString[k.Algorithm], k.Roles(now)))
			}
			v.DNSSEC = "signed with " + strings.Join(keys, ", ")
			if !st.NextExpiry.IsZero() {
				v.DNSSEC += "; the soonest signature expires " + st.NextExpiry.UTC().Format(time.RFC3339)
			}
			if step := z.RollStatus(); step != "" {
				v.DNSSEC += "; " + step
			}
		}
		out = append(out, v)
	}
	return out
}

// historyPage is what a host's page shows.
type historyPage struct {
	Host   string
	Events []state.Event
}

func (a *admin) history(ctx context.Context, w http.ResponseWriter, host string, asJSON bool) {
	if a.p.store == nil {
		http.Error(w, "the state store is off", http.StatusNotFound)
		return
	}
	evs, err := a.p.store.History(ctx, host, time.Time{}, 200)
	if err != nil {
		a.log.Warn("admin: history", "err", err)
		http.Error(w, "the state store does not answer", http.StatusServiceUnavailable)
		return
	}
	if asJSON {
		w.Header().Set("Content-Type", "application/json")
		if evs == nil {
			evs = []state.Event{}
		}
		json.NewEncoder(w).Encode(evs)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err := adminPages.ExecuteTemplate(w, "history.html", historyPage{Host: host, Events: evs}); err != nil {
		a.log.Warn("admin: history page", "err", err)
	}
}

// serveAdmin serves the admin view on admin_listen until stop is called.
func serveAdmin(ctx context.Context, p *parts, log *slog.Logger, errc chan<- error) (stop func(), err error) {
	l, err := listen(ctx, p.cfg.AdminListen)
	if err != nil {
		return nil, fmt.Errorf("admin_listen: %w", err)
	}
	hs := &http.Server{
		Handler:           &admin{p: p, users: p.cfg.AdminUsers, log: log},
		ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second, WriteTimeout: 30 * time.Second, IdleTimeout: 60 * time.Second,
		MaxHeaderBytes: maxHeaderBytes - 4<<10,
		ErrorLog:       slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	if p.certs != nil {
		hs.TLSConfig = tlsConfig(p)
	}
	useTLS := hs.TLSConfig != nil
	go serveOn(hs, l, useTLS, "admin_listen", errc)
	log.Info("admin listening", "addr", l.Addr().String(), "tls", useTLS, "paths", "/hosts /hosts.json /hosts/NAME")
	return func() {
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		hs.Shutdown(sctx)
	}, nil
}
