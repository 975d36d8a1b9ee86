package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/sshdyn/sshdyn/config"
	"github.com/sshdyn/sshdyn/dnsname"
	"github.com/sshdyn/sshdyn/state"
)

// HostView is one host family as the operator's views show it: what DNS
// serves now, and what the store says happened.
type HostView struct {
	Host        string    `json:"host"`
	Comment     string    `json:"comment,omitempty"` // its line's comment
	Family      string    `json:"family"`
	Zone        string    `json:"zone"`
	InDNS       []string  `json:"in_dns"`           // what the zone's backend serves now
	State       string    `json:"state"`            // "current", "stale", "offline" (records removed on purpose), "never"
	LastOK      time.Time `json:"last_ok,omitzero"` // last good or nochg
	LastChange  time.Time `json:"last_change,omitzero"`
	Address     string    `json:"address,omitempty"` // written or confirmed last
	LastFailure time.Time `json:"last_failure,omitzero"`
	FailureKind string    `json:"failure_kind,omitempty"`
	Failures    int       `json:"failures,omitempty"`
	Front       string    `json:"front,omitempty"`
	Identity    string    `json:"identity,omitempty"`
	Source      string    `json:"source,omitempty"`
}

// fleetView returns every host family the authorized file names (both
// families of each host and LAN host), or hosts', with the store's state
// and what DNS serves; a family the store has not seen is "never".
func (p *parts) fleetView(ctx context.Context, hosts []string) ([]HostView, error) {
	if p.store == nil {
		return nil, fmt.Errorf(`the state store is off (state_db = "off")`)
	}
	if len(hosts) == 0 {
		for _, e := range p.hosts.Map().Entries() {
			hosts = append(hosts, e.Hosts...)
			for _, l := range e.LANHosts {
				hosts = append(hosts, l.Name)
			}
		}
	}
	for i := range hosts {
		hosts[i] = dnsname.Canonical(hosts[i])
	}
	slices.Sort(hosts)
	hosts = slices.Compact(hosts)
	fams, err := p.store.Families(ctx, hosts...)
	if err != nil {
		return nil, fmt.Errorf("state store %s: %w", p.store.Name(), err)
	}
	comments := map[string]string{}
	for _, h := range hosts {
		if e, ok := p.hosts.Map().Owner(h); ok {
			comments[h] = e.Comment
		}
	}
	known := map[string]state.Family{}
	for _, f := range fams {
		known[f.Host+" "+f.Family] = f
	}
	var out []HostView
	for _, h := range hosts {
		z, ok := dnsname.Longest(h, p.zones, func(z builtZone) string { return z.cfg.Name })
		var inDNS map[string][]string
		if ok && z.backend != nil {
			recs, err := z.backend.Lookup(ctx, h)
			if err == nil {
				inDNS = map[string][]string{}
				for _, r := range recs {
					inDNS[r.Type()] = append(inDNS[r.Type()], r.Addr.String())
				}
			}
		}
		for _, fam := range []string{"A", "AAAA"} {
			v := HostView{Host: h, Comment: comments[h], Family: fam, Zone: z.cfg.Name, InDNS: inDNS[fam], State: "never"}
			if f, ok := known[h+" "+fam]; ok {
				v.State = "current"
				switch {
				case f.Stale:
					v.State = "stale"
				case f.Offline():
					v.State = "offline"
				}
				v.LastOK, v.LastChange, v.LastFailure = f.LastOK, f.LastChange, f.LastFailure
				v.FailureKind, v.Failures, v.Front, v.Identity = f.FailureKind, f.Failures, f.Front, f.Identity
				if f.Addr.IsValid() {
					v.Address = f.Addr.String()
				}
				if f.Source.IsValid() {
					v.Source = f.Source.String()
				}
			}
			out = append(out, v)
		}
	}
	return out, nil
}

// openParts builds the parts of the configuration at path for a command
// that reads them (hosts, history): as check builds them.
func openParts(path string) (*parts, error) {
	cfg, err := config.Load(path)
	if err != nil {
		return nil, err
	}
	p, err := build(cfg, keepHostKey, nil, slog.New(slog.DiscardHandler))
	if err != nil {
		p.close()
		return nil, err
	}
	return p, nil
}

// hostsCommand prints every host family's state: a table, or JSON. Its
// exit status is 1 when a host listed is stale, for monitoring scripts.
func hostsCommand(ctx context.Context, path string, onlyStale, asJSON bool, hosts []string, stdout, stderr io.Writer) int {
	p, err := openParts(path)
	if err != nil {
		fmt.Fprintf(stderr, "sshdyn hosts: %v\n", err)
		return 2
	}
	defer p.close()
	views, err := p.fleetView(ctx, hosts)
	if err != nil {
		fmt.Fprintf(stderr, "sshdyn hosts: %v\n", err)
		return 2
	}
	stale := false
	var shown []HostView
	for _, v := range views {
		stale = stale || v.State == "stale"
		if !onlyStale || v.State == "stale" {
			shown = append(shown, v)
		}
	}
	if asJSON {
		if shown == nil {
			shown = []HostView{}
		}
		json.NewEncoder(stdout).Encode(shown)
	} else {
		now := time.Now()
		tw := tabwriter.NewWriter(stdout, 2, 8, 2, ' ', 0)
		fmt.Fprintln(tw, "HOST\tTYPE\tIN DNS\tSTATE\tLAST OK\tLAST CHANGE\tLAST FAILURE\tFRONT\tIDENTITY")
		for _, v := range shown {
			failure := ago(v.LastFailure, now)
			if v.FailureKind != "" {
				failure += " (" + v.FailureKind + ")"
			}
			inDNS := strings.Join(v.InDNS, ",")
			if inDNS == "" {
				inDNS = "-"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", v.Host, v.Family, inDNS, v.State, ago(v.LastOK, now), ago(v.LastChange, now), failure, dash(v.Front), dash(v.Identity))
		}
		tw.Flush()
	}
	if stale {
		return 1
	}
	return 0
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// historyCommand prints host's events, newest first.
func historyCommand(ctx context.Context, path, host string, since time.Duration, asJSON bool, stdout, stderr io.Writer) int {
	p, err := openParts(path)
	if err != nil {
		fmt.Fprintf(stderr, "sshdyn history: %v\n", err)
		return 2
	}
	defer p.close()
	if p.store == nil {
		fmt.Fprintln(stderr, `sshdyn history: the state store is off (state_db = "off")`)
		return 2
	}
	var from time.Time
	if since > 0 {
		from = time.Now().Add(-since)
	}
	evs, err := p.store.History(ctx, dnsname.Canonical(host), from, 0)
	if err != nil {
		fmt.Fprintf(stderr, "sshdyn history: state store %s: %v\n", p.store.Name(), err)
		return 2
	}
	if asJSON {
		type event struct {
			Time     time.Time `json:"time"`
			Family   string    `json:"family"`
			Outcome  string    `json:"outcome"`
			Address  string    `json:"address,omitempty"`
			Previous []string  `json:"previous,omitempty"`
			Front    string    `json:"front"`
			Identity string    `json:"identity"`
			Source   string    `json:"source,omitempty"`
		}
		out := []event{}
		for _, e := range evs {
			ev := event{Time: e.Time.UTC(), Family: e.Family, Outcome: e.Outcome, Front: e.Front, Identity: e.Identity}
			if e.Addr.IsValid() {
				ev.Address = e.Addr.String()
			}
			if e.Source.IsValid() {
				ev.Source = e.Source.String()
			}
			for _, o := range e.Old {
				ev.Previous = append(ev.Previous, o.String())
			}
			out = append(out, ev)
		}
		json.NewEncoder(stdout).Encode(out)
		return 0
	}
	tw := tabwriter.NewWriter(stdout, 2, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tTYPE\tOUTCOME\tADDRESS\tPREVIOUS\tFRONT\tIDENTITY\tFROM")
	for _, e := range evs {
		prev := make([]string, len(e.Old))
		for i, o := range e.Old {
			prev[i] = o.String()
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", e.Time.UTC().Format(time.RFC3339), e.Family, e.Outcome, dash(addrOrEmpty(e)), dash(strings.Join(prev, ",")), e.Front, e.Identity, dash(sourceOrEmpty(e)))
	}
	tw.Flush()
	return 0
}

func addrOrEmpty(e state.Event) string {
	switch {
	case e.Addr.IsValid():
		return e.Addr.String()
	case e.OK():
		return "removed" // offline
	}
	return ""
}

func sourceOrEmpty(e state.Event) string {
	if e.Source.IsValid() {
		return e.Source.String()
	}
	return ""
}
