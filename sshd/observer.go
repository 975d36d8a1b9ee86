package sshd

// Observer receives what a monitoring system counts. Its methods are
// called on the connection's goroutine and must not block. The metrics
// package implements it for Prometheus.
type Observer interface {
	// Connection: a TCP connection was accepted, before any limit.
	Connection()
	// AuthFailure: a connection ended without logging in.
	AuthFailure()
	// Limited: a limit refused a request: "penalty" (the source failed
	// to log in too often), "unauthenticated" (too many connections not
	// logged in yet), "dns_slots" (no DNS slot free in time), "changes"
	// (the key changed its records too often).
	Limited(limit string)
	// Session: a command finished with this exit status; command is ""
	// when there was none or it was not understood.
	Session(command string, exit int)
	// Update: one host's update in zone for record type typ ("A",
	// "AAAA") ended with result: "good", "nochg", "rate_limited", or the
	// kind of DNS failure (update.Kind's name).
	Update(zone, typ, result string)
}

type nopObserver struct{}

func (nopObserver) Connection()                   {}
func (nopObserver) AuthFailure()                  {}
func (nopObserver) Limited(string)                {}
func (nopObserver) Session(string, int)           {}
func (nopObserver) Update(string, string, string) {}
