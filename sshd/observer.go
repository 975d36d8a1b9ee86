package sshd

// Observer receives what a monitoring system counts. Its methods are
// called on the connection's goroutine and must not block. The metrics
// package implements it for Prometheus.
type Observer interface {
	// Connection: a TCP connection was accepted, before any limit.
	Connection()
	// AuthFailure: a connection ended without logging in.
	AuthFailure()
	// Limited: a limit of the front refused a connection:
	// publish.LimitUnauthenticated. (The Service reports its own.)
	Limited(limit string)
	// Session: a command finished with this exit status; command is ""
	// when there was none or it was not understood.
	Session(command string, exit int)
}

type nopObserver struct{}

func (nopObserver) Connection()         {}
func (nopObserver) AuthFailure()        {}
func (nopObserver) Limited(string)      {}
func (nopObserver) Session(string, int) {}
