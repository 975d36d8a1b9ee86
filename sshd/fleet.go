package sshd

import (
	"context"
	"fmt"
	"time"
)

// Fleet answers, from the operator's store, what happened to a key's
// hosts: status adds each family's last update, and the history command
// lists the last events. nil: no store (status shows DNS only).
type Fleet interface {
	// Last returns host's last update per family ("A", "AAAA").
	Last(ctx context.Context, host string) (map[string]LastUpdate, error)
	// History returns the hosts' last limit events, newest first.
	History(ctx context.Context, hosts []string, limit int) ([]Event, error)
}

// LastUpdate is a host family's last update, and its last good or nochg.
type LastUpdate struct {
	Time    time.Time // the last update, whatever its outcome
	Outcome string
	OK      time.Time // the last good or nochg
	Stale   bool
}

// Event is one host family's outcome of one update.
type Event struct {
	Time                        time.Time
	Host, Family, Outcome, Addr string
	Front                       string
}

// historyLimit is how many events the history command prints.
const historyLimit = 20

// history prints this key's hosts' last events, newest first: a key sees
// only its own hosts.
func (s *Server) history(ctx context.Context, e *env, args []string) error {
	if len(args) > 0 {
		return failf(ExitUsage, "history takes no arguments")
	}
	if s.Fleet == nil {
		return failf(ExitConfig, "history is not kept on this server (state_db = \"off\")")
	}
	hosts := append([]string(nil), e.entry.Hosts...)
	for _, l := range e.entry.LANHosts {
		hosts = append(hosts, l.Name)
	}
	evs, err := s.Fleet.History(ctx, hosts, historyLimit)
	if err != nil {
		e.log.get().Error("state store", "err", err)
		return failf(ExitTempFail, "history: the server's store does not answer; try again later")
	}
	for _, ev := range evs {
		addr := ev.Addr
		switch {
		case addr == "" && (ev.Outcome == "good" || ev.Outcome == "nochg"):
			addr = "removed" // offline
		case addr == "":
			addr = "-"
		}
		fmt.Fprintf(e.stdout, "%s %s %s %s %s %s\n", ev.Time.UTC().Format(time.RFC3339), ev.Host, ev.Family, ev.Outcome, addr, ev.Front)
	}
	return nil
}

// lastLines prints, after status's records, each family's last update
// as a comment line.
func (s *Server) lastLines(ctx context.Context, e *env, host string) {
	if s.Fleet == nil {
		return
	}
	last, err := s.Fleet.Last(ctx, host)
	if err != nil {
		e.log.get().Warn("state store", "err", err)
		return
	}
	for _, fam := range []string{"A", "AAAA"} {
		l, ok := last[fam]
		if !ok {
			continue
		}
		stale := ""
		if l.Stale {
			stale = ", stale"
		}
		fmt.Fprintf(e.stdout, "# %s %s: last update %s (%s), last good or nochg %s%s\n", host, fam, l.Time.UTC().Format(time.RFC3339), l.Outcome, stamp(l.OK), stale)
	}
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return t.UTC().Format(time.RFC3339)
}
