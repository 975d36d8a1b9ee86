package update

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"time"

	"github.com/miekg/dns"

	"github.com/sshdyn/sshdyn/tsig"
)

// DefaultTimeout bounds one exchange with the primary when Client.Timeout
// is zero.
const DefaultTimeout = 5 * time.Second

// Client sends TSIG-signed RFC 2136 updates over TCP to a zone's
// primary. Every reply must carry a TSIG that verifies with Key; an
// unsigned reply is an error, whatever its rcode (RFC 8945 5.4).
//
// Concurrent Replace calls for one RRset may each see the other's change
// when they confirm, and fail as KindIgnored: let them take turns, as
// Remembering does.
type Client struct {
	Server  string        // host:port of the primary
	Zone    string        // the zone updated, e.g. "dyn.example.com"
	Key     tsig.Key      // TSIG key the primary accepts for updates
	Timeout time.Duration // per exchange; DefaultTimeout if zero

	// Now returns the time put in TSIG signatures; time.Now if nil.
	// Tests set it to show what a skewed clock does.
	Now func() time.Time

	// Pool, if set, keeps connections to the primary open between
	// exchanges; without it every exchange dials a new one.
	Pool *Pool
	// Batch, if set, sends concurrent replaces together, and concurrent
	// CheckLikely calls together. One Batch serves one Client.
	Batch *Batch

	// Observe, if set, is called after every exchange with the primary
	// with the operation (OpCheck, OpReplace, …), the round trip and its
	// error (an *Error, or nil for a verified reply).
	Observe func(op string, took time.Duration, err error)
}

// Operations, as Observe and Error.Op name them.
const (
	OpCheck   = "check"   // a prerequisite-only UPDATE
	OpReplace = "replace" // an UPDATE that replaces RRsets
	OpConfirm = "confirm" // the check or query confirming a replace
	OpLookup  = "lookup"  // a signed query
	OpRemove  = "remove"  // an UPDATE that deletes an RRset
	OpQuery   = "query"   // Verify's signed SOA query
	OpVerify  = "verify"  // Verify's UPDATE that changes nothing
	OpConnect = "connect" // a new TCP connection to the primary
)

// timeout is the bound on one exchange.
func (c *Client) timeout() time.Duration {
	if c.Timeout > 0 {
		return c.Timeout
	}
	return DefaultTimeout
}

func (c *Client) now() int64 {
	if c.Now != nil {
		return c.Now().Unix()
	}
	return time.Now().Unix()
}

// sentinel is an error that is a constant: the package keeps no mutable
// state, not even its error values.
type sentinel string

func (e sentinel) Error() string { return string(e) }

const (
	// errGuard is a guarded replace that found its RRset no longer
	// exactly its guard; nothing was written.
	errGuard = sentinel("RRset is not what the guard expects")
	// errDiffers is a check that found its RRset not exactly the address
	// checked.
	errDiffers = sentinel("RRset differs")
)

// Set makes r's RRset exactly {r.Addr}, checking first: the function Set
// on c.
func (c *Client) Set(ctx context.Context, r Record, allow func() error) (Result, []netip.Addr, error) {
	return Set(ctx, c, r, allow)
}

// Check sends an update whose only content is the prerequisite "RRset
// exists (value dependent)" for r. NOERROR means r's RRset is exactly
// {r.Addr}: the primary applies the (empty) update and writes nothing.
// NXRRSET means it differs.
func (c *Client) Check(ctx context.Context, r Record) (bool, error) {
	return held(c.checkAll(ctx, []Record{r})[0])
}

// CheckLikely is Check for a check the caller expects to hold. With a
// Batch, it shares one message with the other such checks in flight at
// the same time, one prerequisite each; if they do not all hold, each is
// asked again alone. Checks not expected to hold should go alone (Check),
// so that one that fails costs no one else a second message.
func (c *Client) CheckLikely(ctx context.Context, r Record) (bool, error) {
	if c.Batch == nil {
		return c.Check(ctx, r)
	}
	return held(c.Batch.check(ctx, r, c.checkAll))
}

func held(err error) (bool, error) {
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, errDiffers):
		return false, nil
	}
	return false, err
}

// checkAll checks every record of recs (no two of one RRset) with one
// prerequisite-only UPDATE, and returns each one's result: nil if its
// RRset is exactly its address, errDiffers if not, or an error. The
// prerequisites hold together or not at all, so if the primary answers
// NXRRSET (or refuses) for more than one, each is checked again on its
// own.
func (c *Client) checkAll(ctx context.Context, recs []Record) []error {
	errs, alone := c.checkGroup(ctx, recs)
	if !alone {
		return errs
	}
	return eachAlone(len(recs), func(i int) error {
		errs, _ := c.checkGroup(ctx, recs[i:i+1])
		return errs[0]
	})
}

// checkGroup sends one message for checkAll. alone says that the message
// failed as a whole for more than one record, and each must be asked
// again on its own.
func (c *Client) checkGroup(ctx context.Context, recs []Record) (errs []error, alone bool) {
	errs = make([]error, len(recs))
	m := c.newUpdate()
	for _, r := range recs {
		m.Used([]dns.RR{newRR(r.Name, r.Addr, 0)})
	}
	resp, err := c.exchange(ctx, OpCheck, m)
	var ue *Error
	switch {
	case err != nil && (len(recs) == 1 || errors.As(err, &ue) && ue.Kind.Temporary()):
		for i := range errs { // unreachable or slow: it is so for all
			errs[i] = err
		}
	case err == nil && resp.Rcode == dns.RcodeSuccess:
	case len(recs) > 1:
		return nil, true
	case resp.Rcode == dns.RcodeNXRrset:
		errs[0] = errDiffers
	default:
		errs[0] = c.rcodeError(OpCheck, resp)
	}
	return errs, false
}

// Replace deletes r's RRset and adds r in one UPDATE message, which the
// primary applies atomically, then confirms that the RRset is now
// {r.Addr} (see replaceAll).
//
// The confirmation is there because NOERROR does not always mean applied:
// PowerDNS skips each record its lua-dnsupdate-policy-script refuses and
// still answers NOERROR. Such an update is a KindIgnored error. So is one
// that another writer of the same name overtook between the two messages.
func (c *Client) Replace(ctx context.Context, r Record) error {
	return c.replace(ctx, change{r: r})
}

// ReplaceIf replaces r's RRset as Replace does, if it is exactly {guard}
// and guard is not r.Addr; the guard is the UPDATE's prerequisite. If the
// RRset is anything else, the primary writes nothing and replaced is
// false.
func (c *Client) ReplaceIf(ctx context.Context, r Record, guard netip.Addr) (replaced bool, err error) {
	if !guard.IsValid() || guard == r.Addr {
		return false, nil
	}
	switch err := c.replace(ctx, change{r: r, guard: guard}); {
	case errors.Is(err, errGuard):
		return false, nil
	case err != nil:
		return false, err
	}
	return true, nil
}

// replace sends ch through the Batch if there is one.
func (c *Client) replace(ctx context.Context, ch change) error {
	if c.Batch != nil {
		return c.Batch.replace(ctx, ch, c.replaceAll)
	}
	return c.replaceAll(ctx, []change{ch})[0]
}

// change is one RRset to replace: with r, and only if it is exactly
// {guard} when guard is valid.
type change struct {
	r     Record
	guard netip.Addr
}

// replaceAll replaces the RRsets of chs (no two of one RRset) in one
// UPDATE and confirms them, and returns each one's result. The guards are
// the UPDATE's prerequisites: if one fails, the primary writes nothing,
// each change is sent again on its own, and the one whose guard failed
// gets an error that wraps errGuard. A refused UPDATE is sent again one
// record at a time too, so that each record gets its own answer.
func (c *Client) replaceAll(ctx context.Context, chs []change) []error {
	errs, alone := c.replaceGroup(ctx, chs)
	if !alone {
		return errs
	}
	return eachAlone(len(chs), func(i int) error {
		errs, _ := c.replaceGroup(ctx, chs[i:i+1])
		return errs[0]
	})
}

// replaceGroup sends one replace for replaceAll, and its confirmation.
// alone says that the replace failed as a whole for more than one record
// (refused, or a guard failed), and each must be sent again on its own.
//
// The confirmation goes out right behind the replace, on the same
// connection, without waiting for its answer: a prerequisite-only UPDATE
// that all of chs are there. A primary queues both on the zone's update
// path together (Knot applies and commits them as one), so it costs no
// second wait. If it holds, every RRset is right, whichever message the
// primary took first. If it does not (a policy skipped a record, another
// writer came between, or the primary took the check first), each record
// is confirmed again with its own signed query, which is the answer.
func (c *Client) replaceGroup(ctx context.Context, chs []change) (errs []error, alone bool) {
	errs = make([]error, len(chs))
	m, u := c.replaceMsgs(chs)
	rs := c.exchangeAll(ctx, []string{OpReplace, OpConfirm}, []*dns.Msg{m, u})
	resp, err := rs[0].msg, rs[0].err
	var ue *Error
	switch {
	case err != nil && (len(chs) == 1 || errors.As(err, &ue) && ue.Kind.Temporary()):
		for i := range errs { // unreachable or slow: it is so for all
			errs[i] = err
		}
		return errs, false
	case err == nil && resp.Rcode != dns.RcodeSuccess && len(chs) == 1:
		errs[0] = c.rcodeError(OpReplace, resp)
		if resp.Rcode == dns.RcodeNXRrset && chs[0].guard.IsValid() {
			errs[0] = fmt.Errorf("%w: %w", errGuard, errs[0])
		}
		return errs, false
	case err != nil || resp.Rcode != dns.RcodeSuccess:
		// Refused, or a guard failed, perhaps for one record only.
		return nil, true
	}
	if rs[1].err == nil && rs[1].msg.Rcode == dns.RcodeSuccess {
		return errs, false // all confirmed
	}
	return eachAlone(len(chs), func(i int) error { return c.confirm(ctx, chs[i].r) }), false
}

// replaceMsgs builds the UPDATE that replaces the RRsets of chs (with
// their guards as prerequisites) and the prerequisite-only UPDATE that
// confirms them.
func (c *Client) replaceMsgs(chs []change) (m, u *dns.Msg) {
	m, u = c.newUpdate(), c.newUpdate()
	for _, ch := range chs {
		r := ch.r
		if ch.guard.IsValid() {
			m.Used([]dns.RR{newRR(r.Name, ch.guard, 0)})
		}
		m.RemoveRRset([]dns.RR{&dns.ANY{Hdr: dns.RR_Header{Name: dns.Fqdn(r.Name), Rrtype: r.Type()}}})
		m.Insert([]dns.RR{newRR(r.Name, r.Addr, r.TTL)})
		u.Used([]dns.RR{newRR(r.Name, r.Addr, 0)})
	}
	return m, u
}

// CheckTogether reports whether every RRset of recs (no two of one
// RRset) is exactly its record's address, with one prerequisite-only
// UPDATE: the primary answers NOERROR only if all hold, and writes
// nothing.
func (c *Client) CheckTogether(ctx context.Context, recs []Record) (bool, error) {
	m := c.newUpdate()
	for _, r := range recs {
		m.Used([]dns.RR{newRR(r.Name, r.Addr, 0)})
	}
	resp, err := c.exchange(ctx, OpCheck, m)
	switch {
	case err != nil:
		return false, err
	case resp.Rcode == dns.RcodeSuccess:
		return true, nil
	case resp.Rcode == dns.RcodeNXRrset:
		return false, nil
	}
	return false, c.rcodeError(OpCheck, resp)
}

// ReplaceTogether replaces every RRset of recs (no two of one RRset) in
// one UPDATE, which the primary applies all or nothing, and confirms
// them. Unlike concurrent Replace calls, it is never split: a refusal
// of one record writes none of them.
func (c *Client) ReplaceTogether(ctx context.Context, recs []Record) error {
	chs := make([]change, len(recs))
	for i, r := range recs {
		chs[i] = change{r: r}
	}
	m, u := c.replaceMsgs(chs)
	rs := c.exchangeAll(ctx, []string{OpReplace, OpConfirm}, []*dns.Msg{m, u})
	if err := rs[0].err; err != nil {
		return err
	}
	if resp := rs[0].msg; resp.Rcode != dns.RcodeSuccess {
		return c.rcodeError(OpReplace, resp)
	}
	if rs[1].err == nil && rs[1].msg.Rcode == dns.RcodeSuccess {
		return nil
	}
	return errors.Join(eachAlone(len(recs), func(i int) error { return c.confirm(ctx, recs[i]) })...)
}

// eachAlone calls one(i) for every i < n, all at once, and returns their
// results: how a message for several records that failed as a whole is
// retried record by record.
func eachAlone(n int, one func(i int) error) []error {
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { errs[i] = one(i) })
	}
	wg.Wait()
	return errs
}

// confirm checks, with a signed query, that r's RRset is exactly
// {r.Addr} (TTLs are not compared), after a replace the primary answered
// NOERROR.
func (c *Client) confirm(ctx context.Context, r Record) error {
	recs, err := c.lookupType(ctx, OpConfirm, r.Name, r.Type())
	if err != nil {
		return err
	}
	if len(recs) != 1 || recs[0].Addr != r.Addr {
		var got []string
		var seen []netip.Addr
		for _, rec := range recs {
			got = append(got, rec.Addr.String())
			seen = append(seen, rec.Addr)
		}
		return &Error{Op: OpReplace, Server: c.Server, Zone: c.Zone, Kind: KindIgnored, Rcode: dns.RcodeSuccess, Seen: seen,
			Err: fmt.Errorf("NOERROR, but %s %s is %v afterwards, not %s", r.Name, dns.TypeToString[r.Type()], got, r.Addr)}
	}
	return nil
}

// Remove deletes name's RRset of type t, in one signed UPDATE. Deleting
// an RRset that does not exist succeeds and changes nothing.
func (c *Client) Remove(ctx context.Context, name string, t uint16) error {
	m := c.newUpdate()
	m.RemoveRRset([]dns.RR{&dns.ANY{Hdr: dns.RR_Header{Name: dns.Fqdn(name), Rrtype: t}}})
	resp, err := c.exchange(ctx, OpRemove, m)
	if err != nil {
		return err
	}
	if resp.Rcode != dns.RcodeSuccess {
		return c.rcodeError(OpRemove, resp)
	}
	return nil
}

// Lookup asks the primary, with signed queries, which A and AAAA records
// it serves for name.
func (c *Client) Lookup(ctx context.Context, name string) ([]Record, error) {
	var out []Record
	for _, t := range []uint16{dns.TypeA, dns.TypeAAAA} {
		recs, err := c.LookupType(ctx, name, t)
		if err != nil {
			return nil, err
		}
		out = append(out, recs...)
	}
	return out, nil
}

// LookupType asks the primary, with a signed query, which records of type
// t (A or AAAA) it serves for name.
func (c *Client) LookupType(ctx context.Context, name string, t uint16) ([]Record, error) {
	return c.lookupType(ctx, OpLookup, name, t)
}

// lookupType is LookupType, observed as op.
func (c *Client) lookupType(ctx context.Context, op, name string, t uint16) ([]Record, error) {
	resp, err := c.exchange(ctx, op, c.query(name, t))
	if err != nil {
		return nil, err
	}
	if resp.Rcode != dns.RcodeSuccess && resp.Rcode != dns.RcodeNameError {
		return nil, c.rcodeError(op, resp)
	}
	var out []Record
	for _, rr := range resp.Answer {
		switch rr := rr.(type) {
		case *dns.A:
			if a, ok := netip.AddrFromSlice(rr.A.To4()); ok && t == dns.TypeA {
				out = append(out, Record{Name: name, Addr: a, TTL: rr.Hdr.Ttl})
			}
		case *dns.AAAA:
			if a, ok := netip.AddrFromSlice(rr.AAAA); ok && t == dns.TypeAAAA {
				out = append(out, Record{Name: name, Addr: a, TTL: rr.Hdr.Ttl})
			}
		}
	}
	return out, nil
}

// query is a signed, non-recursive query for name's RRset of type t.
func (c *Client) query(name string, t uint16) *dns.Msg {
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), t)
	m.RecursionDesired = false
	m.SetTsig(c.Key.Name, c.Key.Algorithm, 300, c.now())
	return m
}

func (c *Client) newUpdate() *dns.Msg {
	m := new(dns.Msg)
	m.SetUpdate(dns.Fqdn(c.Zone))
	m.SetTsig(c.Key.Name, c.Key.Algorithm, 300, c.now())
	return m
}

// newRR builds a fresh RR for every message: miekg/dns's Used and Insert
// modify the header of the RR they are given.
func newRR(name string, a netip.Addr, ttl uint32) dns.RR {
	a = a.Unmap()
	hdr := dns.RR_Header{Name: dns.Fqdn(name), Class: dns.ClassINET, Ttl: ttl}
	if a.Is4() {
		hdr.Rrtype = dns.TypeA
		return &dns.A{Hdr: hdr, A: a.AsSlice()}
	}
	hdr.Rrtype = dns.TypeAAAA
	return &dns.AAAA{Hdr: hdr, AAAA: a.AsSlice()}
}

// verified returns the reply if it is signed and its signature
// verifies; otherwise an *Error says what went wrong.
func (c *Client) verified(op string, resp *dns.Msg, err error) (*dns.Msg, error) {
	e := &Error{Op: op, Server: c.Server, Zone: c.Zone, Rcode: -1}
	if resp != nil {
		e.Rcode = resp.Rcode
		if t := resp.IsTsig(); t != nil {
			e.TSIGError = t.Error
		}
	}
	if err == nil && resp.IsTsig() != nil && e.TSIGError == 0 {
		return resp, nil // signed, and the signature verified
	}
	if resp == nil {
		e.Kind, e.Err = classifyNetError(err), err
		return nil, e
	}
	// Every other reply is a failure; say which. It need not be authentic
	// to count as one: nothing is written on a failure.
	rcode := dns.RcodeToString[resp.Rcode]
	switch {
	case e.TSIGError != 0:
		e.Kind, e.Err = KindAuth, fmt.Errorf("%s with TSIG error %s", rcode, tsigErrorString(e.TSIGError))
	case resp.Rcode == dns.RcodeNotAuth || resp.Rcode == dns.RcodeNotZone:
		// miekg/dns does not verify a NOTAUTH reply at all.
		e.Kind, e.Err = KindNotZone, errors.New(rcode)
	case resp.IsTsig() == nil:
		// miekg/dns verifies a TSIG only if the reply has one.
		e.Kind, e.Err = KindAuth, fmt.Errorf("%s reply is not signed with TSIG", rcode)
	default:
		e.Kind, e.Err = KindAuth, fmt.Errorf("%s reply failed TSIG verification: %w", rcode, err)
	}
	return nil, e
}

func (c *Client) rcodeError(op string, resp *dns.Msg) error {
	e := &Error{Op: op, Server: c.Server, Zone: c.Zone, Rcode: resp.Rcode}
	switch resp.Rcode {
	case dns.RcodeRefused:
		e.Kind = KindRefused
	case dns.RcodeNotZone, dns.RcodeNotAuth:
		e.Kind = KindNotZone
	case dns.RcodeServerFailure:
		e.Kind = KindServFail
	default:
		e.Kind = KindOther
	}
	e.Err = errors.New(dns.RcodeToString[resp.Rcode])
	return e
}

func tsigErrorString(code uint16) string {
	switch code {
	case dns.RcodeBadSig:
		return "BADSIG"
	case dns.RcodeBadKey:
		return "BADKEY"
	case dns.RcodeBadTime:
		return "BADTIME"
	case 0:
		return "none"
	}
	if s, ok := dns.RcodeToString[int(code)]; ok {
		return s
	}
	return fmt.Sprintf("%d", code)
}

// Verify proves, writing nothing, that the primary answers, accepts the
// TSIG key and lets it change records of type t in the zone: it sends a
// TSIG-signed SOA query for the zone, then an UPDATE whose prerequisite is
// that name is not in use and whose only change deletes name's RRset of
// type t. Pick a name that does not exist: the prerequisite holds, the
// primary checks its update policy for the delete, and the delete has
// nothing to remove. A primary that does not check its policy before
// prerequisites (none known) would answer YXDOMAIN for a name in use.
func (c *Client) Verify(ctx context.Context, name string, t uint16) error {
	resp, err := c.exchange(ctx, OpQuery, c.query(c.Zone, dns.TypeSOA))
	if err != nil {
		return err
	}
	if resp.Rcode != dns.RcodeSuccess {
		return c.rcodeError(OpQuery, resp)
	}
	u := c.newUpdate()
	fqdn := dns.Fqdn(name)
	u.NameNotUsed([]dns.RR{&dns.ANY{Hdr: dns.RR_Header{Name: fqdn}}})
	u.RemoveRRset([]dns.RR{&dns.ANY{Hdr: dns.RR_Header{Name: fqdn, Rrtype: t}}})
	resp, err = c.exchange(ctx, OpVerify, u)
	if err != nil {
		return err
	}
	if resp.Rcode != dns.RcodeSuccess {
		return c.rcodeError(OpVerify, resp)
	}
	return nil
}

// Serves reports whether the primary answers an unsigned SOA query for the
// zone authoritatively. The answer is not authenticated: it is for telling
// a wrong key from a wrong zone when a signed query failed, never for
// deciding what to write.
func (c *Client) Serves(ctx context.Context) (bool, error) {
	timeout := c.timeout()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(c.Zone), dns.TypeSOA)
	m.RecursionDesired = false
	dc := &dns.Client{Net: "tcp", Timeout: timeout}
	resp, _, err := dc.ExchangeContext(ctx, m, c.Server)
	if err != nil {
		return false, err
	}
	return resp.Rcode == dns.RcodeSuccess && resp.Authoritative && len(resp.Answer) > 0, nil
}
