package publish

// Observer receives what a monitoring system counts. Its methods are
// called on the request's goroutine and must not block. The metrics
// package implements it for Prometheus.
type Observer interface {
	// Update: one host's update through front ("ssh", "http") in zone
	// for record type typ ("A", "AAAA") ended as result, a Kind's
	// String: "good", "nochg", "rate_limited", or the kind of DNS
	// failure.
	Update(front, zone, typ, result string)
	// Limited: a limit refused a request: one of the Limit… labels.
	Limited(limit string)
}

// The fronts, as Request.Front and the metrics' "front" label name them.
const (
	FrontSSH  = "ssh"
	FrontHTTP = "http"
)

// The limits an Observer hears of, as they appear in metrics labels.
const (
	LimitPenalty         = "penalty"          // the source failed to log in too often
	LimitUnauthenticated = "unauthenticated"  // too many connections not logged in yet (a front's)
	LimitDNSSlots        = "dns_slots"        // no DNS slot free in time
	LimitChanges         = "changes"          // the identity changed its records too often
	LimitRequests        = "requests"         // the identity sent too many requests
	LimitPasswordChecks  = "password_checks"  // no turn for a password comparison in time (HTTP)
	LimitHTTPConns       = "http_connections" // too many HTTP connections, in total or from one source
)

type nopObserver struct{}

func (nopObserver) Update(string, string, string, string) {}
func (nopObserver) Limited(string)                        {}
