package zone

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"time"

	"github.com/miekg/dns"

	"github.com/sshdyn/sshdyn/dnsname"
	"github.com/sshdyn/sshdyn/internal/connlimit"
	"github.com/sshdyn/sshdyn/internal/sockopt"
	"github.com/sshdyn/sshdyn/tsig"
)

// Server serves zones over UDP and TCP. Set the fields, then call Listen
// for each address.
type Server struct {
	Zones  []*Zone
	Keys   []tsig.Key // every TSIG key the server accepts (update and transfer keys)
	Logger *slog.Logger

	// RRL limits the answers sent over UDP to each client network (see
	// RRL); a zero Rate turns it off. A zone's RRLRate overrides Rate.
	RRL RRL
	// CookieSecret is the DNS cookie secret (32 hex digits), for servers
	// that share one (an anycast set); empty: a random one, rotated.
	CookieSecret string
	// NSID, if set, is the identifier sent to a query that asks for it
	// (RFC 5001), to tell several servers apart.
	NSID string
	// MaxTCP and MaxTCPPerSource cap the TCP connections held open, in
	// all and per source (an IPv4 address, an IPv6 /64); TCPIdle closes
	// one idle that long (defaults below).
	MaxTCP, MaxTCPPerSource int
	TCPIdle                 time.Duration
	// NoFastPath answers every query through the full path (ServeDNS),
	// as the tests that compare the two do.
	NoFastPath bool
	// Observe, if set, is told of each answer RRL dropped ("dropped")
	// or truncated ("slipped"), and each TCP connection over a cap
	// ("tcp_refused"), for metrics.
	Observe func(event string)

	once    sync.Once
	noisy   noisyLog // lines spoofable packets cause
	keys    tsig.Ring
	cookies *cookieSecrets
	limit   *limiter
	fast    fastCache // answers rendered for the fast path
	mu      sync.Mutex
	servers []*dns.Server
	notify  sync.WaitGroup
	stop    chan struct{}
	initErr error
}

// Defaults of the TCP caps (RFC 7766 6.2: a server should bound them).
// Another sshdyn frontend updating a zone served here keeps up to its
// max_dns_in_flight (64) connections open to it from one address: the
// per-source cap is twice that (at 32, a burst of 48 concurrent updates
// from one frontend was refused).
const (
	DefaultMaxTCP          = 1024
	DefaultMaxTCPPerSource = 128
	DefaultTCPIdle         = 10 * time.Second
)

// udpSize is the largest UDP answer sent, whatever the client offers: big
// enough for most answers, small enough not to fragment (DNS Flag Day 2020).
const udpSize = 1232

func (s *Server) init() {
	if s.Logger == nil {
		s.Logger = slog.New(slog.DiscardHandler)
	}
	if s.Observe == nil {
		s.Observe = func(string) {}
	}
	if s.MaxTCP <= 0 {
		s.MaxTCP = DefaultMaxTCP
	}
	if s.MaxTCPPerSource <= 0 {
		s.MaxTCPPerSource = DefaultMaxTCPPerSource
	}
	if s.TCPIdle <= 0 {
		s.TCPIdle = DefaultTCPIdle
	}
	s.cookies, s.initErr = newCookieSecrets(s.CookieSecret)
	if s.RRL.Rate > 0 || s.zoneRates() {
		s.limit = newLimiter(s.RRL)
	}
	s.keys = tsig.NewRing(s.Keys...)
	s.stop = make(chan struct{})
	for _, z := range s.Zones {
		z := z
		if z.cfg.Logger == nil {
			z.log = s.Logger
		}
		if len(z.cfg.Notify) == 0 {
			continue
		}
		kick := make(chan struct{}, 1)
		z.changed = func() {
			select {
			case kick <- struct{}{}:
			default:
			}
		}
		s.notify.Add(1)
		go func() {
			defer s.notify.Done()
			for {
				select {
				case <-kick:
					s.sendNotifies(z)
				case <-s.stop:
					return
				}
			}
		}()
	}
}

// Listen serves DNS on addr (host:port) over UDP and TCP and returns once
// both sockets are open. An IPv4 literal listens on IPv4 only and an IPv6
// literal on IPv6 only, so "0.0.0.0:53" and "[::]:53" can both be used.
func (s *Server) Listen(addr string) error {
	s.once.Do(s.init)
	if s.initErr != nil {
		return s.initErr
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	tcp, udp := "tcp", "udp"
	if ip, err := netip.ParseAddr(host); err == nil {
		if ip.Is4() {
			tcp, udp = "tcp4", "udp4"
		} else {
			tcp, udp = "tcp6", "udp6"
		}
	}
	pc, l, err := listenBoth(tcp, udp, addr)
	if err != nil {
		return fmt.Errorf("dns listen: %w", err)
	}
	// One UDP socket per core where the kernel spreads the packets over
	// sockets that share a port (SO_REUSEPORT), each read by its own
	// fast path.
	pcs := []net.PacketConn{pc}
	if sockopt.ReusePortSpreads && !s.NoFastPath {
		lc := net.ListenConfig{Control: sockopt.ReusePort}
		for range runtime.GOMAXPROCS(0) - 1 {
			more, err := lc.ListenPacket(context.Background(), udp, pc.LocalAddr().String())
			if err != nil {
				break // one socket still serves
			}
			pcs = append(pcs, more)
		}
	}
	if !s.NoFastPath {
		for i, c := range pcs {
			if uc, ok := c.(*net.UDPConn); ok {
				pcs[i] = newFastConn(uc, s)
			}
		}
	}
	capped := connlimit.Listener(l, s.MaxTCP, s.MaxTCPPerSource, tcpSource, func(remote net.Addr) {
		s.Observe("tcp_refused")
		s.noisy.info(s.Logger, "DNS TCP connection over a cap closed", "remote", remote.String(), "max", s.MaxTCP, "max_per_source", s.MaxTCPPerSource)
	})
	servers := []*dns.Server{
		// No cap on the messages of one TCP connection (miekg/dns closes
		// it after 128 by default): sshdyn's own client and secondaries
		// keep theirs open, pipelining queries; the idle timeout ends it.
		{Listener: capped, ReadTimeout: s.TCPIdle, WriteTimeout: 10 * time.Second, IdleTimeout: func() time.Duration { return s.TCPIdle }, MaxTCPQueries: -1},
	}
	if !s.NoFastPath {
		servers[0].DecorateReader = func(r dns.Reader) dns.Reader { return fastTCPReader{Reader: r, srv: s} }
	}
	for _, c := range pcs {
		servers = append(servers, &dns.Server{PacketConn: c, UDPSize: dns.MaxMsgSize})
	}
	for _, srv := range servers {
		srv.Handler = s
		srv.MsgAcceptFunc = acceptMsg
		srv.TsigProvider = s.keys
		started := make(chan struct{})
		srv.NotifyStartedFunc = func() { close(started) }
		errc := make(chan error, 1)
		go func() { errc <- srv.ActivateAndServe() }()
		select {
		case <-started:
		case err := <-errc:
			return fmt.Errorf("dns serve %s: %w", addr, err)
		}
		s.mu.Lock()
		s.servers = append(s.servers, srv)
		s.mu.Unlock()
	}
	return nil
}

// listenBoth opens a UDP socket and a TCP listener on one port. For port
// 0 the TCP port is the one the system picked for UDP; when another
// program holds that one for TCP, it picks again, a few times.
func listenBoth(tcp, udp, addr string) (net.PacketConn, net.Listener, error) {
	_, port, _ := net.SplitHostPort(addr)
	lc := net.ListenConfig{Control: sockopt.V6Only}
	ulc := net.ListenConfig{Control: sockopt.ReusePort} // V6Only too
	for try := 0; ; try++ {
		pc, err := ulc.ListenPacket(context.Background(), udp, addr)
		if err != nil {
			return nil, nil, err
		}
		l, err := lc.Listen(context.Background(), tcp, pc.LocalAddr().String())
		if err == nil {
			return pc, l, nil
		}
		pc.Close()
		if port != "0" || try == 9 {
			return nil, nil, err
		}
	}
}

// Addrs returns the addresses served, UDP and TCP alike.
func (s *Server) Addrs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, srv := range s.servers {
		if srv.PacketConn != nil {
			out = append(out, srv.PacketConn.LocalAddr().String())
		}
	}
	return out
}

// Shutdown stops serving, waits for NOTIFYs in flight (until ctx ends)
// and closes the zones: each zone file is written with every update its
// journal holds.
func (s *Server) Shutdown(ctx context.Context) error {
	s.once.Do(s.init)
	s.mu.Lock()
	servers := s.servers
	s.servers = nil
	s.mu.Unlock()
	var errs []error
	for _, srv := range servers {
		errs = append(errs, srv.ShutdownContext(ctx))
	}
	select {
	case <-s.stop:
	default:
		close(s.stop)
	}
	done := make(chan struct{})
	go func() { s.notify.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		errs = append(errs, ctx.Err())
	}
	for _, z := range s.Zones {
		errs = append(errs, z.Close())
	}
	return errors.Join(errs...)
}

// tcpSource is a TCP client's source for the connection caps: an IPv4
// address, an IPv6 /64.
func tcpSource(a netip.Addr) netip.Prefix {
	if a.Is4() {
		return netip.PrefixFrom(a, 32)
	}
	p, _ := a.Prefix(64)
	return p
}

// zoneRates reports whether a zone has a rate of its own.
func (s *Server) zoneRates() bool {
	for _, z := range s.Zones {
		if z.cfg.RRLRate != nil && *z.cfg.RRLRate > 0 {
			return true
		}
	}
	return false
}

// maxUpdateRRs bounds the records of one UPDATE, its additional section
// included (with room for OPT and TSIG); it is answered FORMERR over it.
const maxUpdateRRs = 1000

// acceptMsg replaces miekg/dns's default, which answers UPDATE with
// NOTIMP: queries and updates are let through, with bounded sections.
// An UPDATE may carry related records in its additional section (RFC
// 2136 2.6), which are ignored, as BIND and Knot do.
func acceptMsg(dh dns.Header) dns.MsgAcceptAction {
	if dh.Bits&(1<<15) != 0 { // a response
		return dns.MsgIgnore
	}
	switch int(dh.Bits>>11) & 0xF {
	case dns.OpcodeQuery:
		if dh.Qdcount != 1 || dh.Ancount > 0 || dh.Nscount > 1 || dh.Arcount > 2 {
			return dns.MsgReject
		}
	case dns.OpcodeUpdate:
		if dh.Qdcount != 1 || int(dh.Ancount)+int(dh.Nscount)+int(dh.Arcount) > maxUpdateRRs+2 {
			return dns.MsgReject
		}
	default:
		return dns.MsgRejectNotImplemented
	}
	return dns.MsgAccept
}

// ServeDNS answers one message.
func (s *Server) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	s.once.Do(s.init)
	key := ""
	if t := req.IsTsig(); t != nil {
		// miekg/dns verified it; TsigStatus is nil for an unsigned message,
		// so it is only read when there is a TSIG.
		if err := w.TsigStatus(); err != nil {
			s.tsigFailure(w, req, t, err)
			return
		}
		key = dnsname.FQDN(t.Hdr.Name)
	}
	resp := new(dns.Msg)
	resp.SetReply(req)
	resp.RecursionAvailable = false
	remote := remoteAddr(w.RemoteAddr())
	_, udp := w.RemoteAddr().(*net.UDPAddr)
	e := s.edns(req, remote)
	q := req.Question[0]
	z := s.find(q.Name)
	switch {
	case e.formErr:
		resp.Rcode = dns.RcodeFormatError
	case e.opt != nil && e.opt.Version() != 0:
		resp.Rcode = dns.RcodeBadVers // and nothing else (RFC 6891 6.1.3)
	case q.Qclass != dns.ClassINET && !(q.Qclass == dns.ClassANY && req.Opcode == dns.OpcodeQuery):
		resp.Rcode = dns.RcodeRefused
	case req.Opcode == dns.OpcodeUpdate:
		s.update(w, req, resp, key, z)
	case z == nil:
		resp.Rcode = dns.RcodeRefused
	case q.Qtype == dns.TypeAXFR || q.Qtype == dns.TypeIXFR:
		if s.transfer(w, req, resp, key, z) {
			return
		}
	default:
		z.snapshot().answer(q, resp, udp, e.opt != nil && e.opt.Do())
	}
	if udp && key == "" && s.limit != nil && e.cookie != cookieValid {
		switch s.rateLimit(remote, z, q, resp) {
		case rrlDrop:
			return
		case rrlSlip:
			// Small, and useful only to a client that asks again: a
			// resolver that sent a cookie gets BADCOOKIE with a fresh
			// one (RFC 7873 5.2.3), any other the empty truncated
			// answer that sends it to TCP.
			slipped := new(dns.Msg)
			slipped.SetReply(req)
			slipped.RecursionAvailable = false
			if e.cookie == cookieClient {
				slipped.Rcode = dns.RcodeBadCookie
			} else {
				slipped.Truncated = true
			}
			resp = slipped
		}
	}
	s.reply(w, req, resp, key, e)
}

// remoteAddr is a remote address's IP.
func remoteAddr(a net.Addr) netip.Addr {
	ap, _ := netip.ParseAddrPort(a.String())
	return ap.Addr().Unmap()
}

// rateLimit accounts resp to remote for RRL, and says what to do with it.
func (s *Server) rateLimit(remote netip.Addr, z *Zone, q dns.Question, resp *dns.Msg) rrlAction {
	origin := ""
	if z != nil {
		origin = z.Origin
	}
	kind, name, t := rrlClass(resp, q.Name, q.Qtype, origin)
	a := s.limit.account(remote, kind, name, t, s.rrlRate(z), time.Now())
	switch a {
	case rrlDrop:
		s.Observe("dropped")
	case rrlSlip:
		s.Observe("slipped")
	}
	if a != rrlSend {
		s.noisy.info(s.Logger, "DNS answers rate-limited (RRL)", "network", network(remote).String(), "name", name, "type", dns.TypeToString[t], "rcode", dns.RcodeToString[resp.Rcode])
	}
	return a
}

// rrlRate is the rate of z's answers: its own, or the server's (z nil:
// an answer for no zone of ours).
func (s *Server) rrlRate(z *Zone) int {
	if z != nil && z.cfg.RRLRate != nil {
		return *z.cfg.RRLRate
	}
	return s.RRL.Rate
}

// rrlClass sorts an answer into RRL's kinds, with the name (and, for
// records, the type) it is counted under: BIND's response classes.
func rrlClass(resp *dns.Msg, qname string, qtype uint16, origin string) (kind int, name string, t uint16) {
	switch {
	case resp.Rcode == dns.RcodeNameError:
		return rrlNXDomain, origin, 0
	case resp.Rcode != dns.RcodeSuccess:
		return rrlError, "", 0
	case len(resp.Answer) > 0:
		return rrlAnswer, qname, qtype
	case !resp.Authoritative && len(resp.Ns) > 0:
		return rrlReferral, resp.Ns[0].Header().Name, 0
	}
	return rrlNoData, origin, 0
}

// ednsInfo is what a request's EDNS asks for.
type ednsInfo struct {
	opt       *dns.OPT // the request's, or nil
	formErr   bool     // an OPT out of place or twice, a malformed cookie
	cookie    cookieVerdict
	cookieOut []byte // the COOKIE to answer with
	nsid      bool   // NSID asked for
	keepalive bool   // edns-tcp-keepalive sent (RFC 7828)
}

// edns reads a request's OPT record (RFC 6891): at most one, in the
// additional section; its options COOKIE, NSID and TCP keepalive, the
// others ignored.
func (s *Server) edns(req *dns.Msg, remote netip.Addr) ednsInfo {
	var e ednsInfo
	for _, sec := range [][]dns.RR{req.Answer, req.Ns} {
		for _, rr := range sec {
			if rr.Header().Rrtype == dns.TypeOPT {
				e.formErr = true
			}
		}
	}
	for _, rr := range req.Extra {
		if o, ok := rr.(*dns.OPT); ok {
			if e.opt != nil {
				e.formErr = true
			}
			e.opt = o
		}
	}
	if e.opt == nil {
		return e
	}
	for _, o := range e.opt.Option {
		switch o := o.(type) {
		case *dns.EDNS0_COOKIE:
			data, err := hex.DecodeString(o.Cookie)
			if err != nil {
				e.formErr = true
				continue
			}
			e.cookie, e.cookieOut = s.cookies.check(data, remote, time.Now())
			if e.cookie == cookieMalformed {
				e.formErr = true
			}
		case *dns.EDNS0_NSID:
			e.nsid = true
		case *dns.EDNS0_TCP_KEEPALIVE:
			e.keepalive = true
		}
	}
	return e
}

// find returns the zone that holds name (the longest match), or nil.
func (s *Server) find(name string) *Zone {
	z, _ := dnsname.Longest(dnsname.FQDN(name), s.Zones, func(z *Zone) string { return z.Origin })
	return z
}

func (s *Server) update(w dns.ResponseWriter, req, resp *dns.Msg, key string, z *Zone) {
	q := req.Question[0]
	log := s.Logger.With("remote", w.RemoteAddr().String(), "zone", q.Name, "key", key)
	switch {
	case q.Qtype != dns.TypeSOA:
		resp.Rcode = dns.RcodeFormatError
	case z == nil || z.Origin != dnsname.FQDN(q.Name):
		resp.Rcode = dns.RcodeNotAuth
	case key == "":
		// Unsigned updates are never applied.
		s.noisy.info(log, "unsigned update refused")
		resp.Rcode = dns.RcodeRefused
	default:
		before := z.Serial()
		resp.Rcode = z.Update(req, key)
		if resp.Rcode == dns.RcodeRefused {
			log.Info("update refused by policy")
		} else if after := z.Serial(); after != before {
			log.Debug("update applied", "serial", after)
		}
	}
	// An UPDATE answer carries only the zone section (RFC 2136 3.8).
	resp.Answer, resp.Ns = nil, nil
}

// transfer answers AXFR and IXFR. IXFR is answered with the differences
// since the secondary's serial, condensed into one (RFC 1995 4), or with
// the whole zone when the history does not reach back that far; with the
// SOA alone when the secondary is up to date (or ahead), or asked over
// UDP. It reports whether it wrote the answer itself.
func (s *Server) transfer(w dns.ResponseWriter, req, resp *dns.Msg, key string, z *Zone) bool {
	remote, _ := netip.ParseAddrPort(w.RemoteAddr().String())
	qtype := req.Question[0].Qtype
	log := s.Logger.With("remote", w.RemoteAddr().String(), "zone", z.Origin, "type", dns.TypeToString[qtype])
	if !z.mayTransfer(remote.Addr().Unmap(), key) {
		s.noisy.info(log, "zone transfer refused", "key", key)
		resp.Rcode = dns.RcodeRefused
		return false
	}
	snap := z.snapshot()
	soa := snap.soa()
	_, udp := w.RemoteAddr().(*net.UDPAddr)
	var delta []dns.RR
	if qtype == dns.TypeIXFR {
		var theirs *dns.SOA
		if len(req.Ns) == 1 {
			theirs, _ = req.Ns[0].(*dns.SOA)
		}
		if theirs == nil {
			resp.Rcode = dns.RcodeFormatError // RFC 1995 3: the authority section has the client's SOA
			return false
		}
		if udp || !serialBefore(theirs.Serial, soa.Serial) {
			resp.Authoritative = true
			resp.Answer = []dns.RR{soa}
			return false
		}
		delta, _ = snap.ixfr(theirs.Serial)
		log = log.With("from", theirs.Serial)
	} else if udp {
		resp.Rcode = dns.RcodeFormatError // AXFR is TCP only (RFC 5936 4.2)
		return false
	}
	// Stream: the first message goes out at once and only a few are held
	// at a time, whatever the zone's size.
	ch, done := make(chan *dns.Envelope, 2), make(chan struct{})
	if delta != nil {
		go streamRRs(delta, ch, done)
	} else {
		go snap.stream(ch, done)
	}
	err := new(dns.Transfer).Out(w, req, ch)
	close(done)
	if err != nil {
		log.Info("zone transfer failed", "err", err)
		return true
	}
	if delta != nil {
		log.Info("zone transferred", "serial", soa.Serial, "key", key, "incremental", true, "records", len(delta))
	} else {
		log.Info("zone transferred", "serial", soa.Serial, "key", key)
	}
	return true
}

// serialBefore reports whether serial a comes before b (RFC 1982).
func serialBefore(a, b uint32) bool { return a != b && int32(b-a) > 0 }

// transferBatch is the records sent to a message of a transfer.
const transferBatch = 100

// streamRRs sends rrs on ch, transferBatch to a message, then closes ch.
// It stops early when done is closed (the transfer failed).
func streamRRs(rrs []dns.RR, ch chan<- *dns.Envelope, done <-chan struct{}) {
	defer close(ch)
	for len(rrs) > 0 {
		n := min(len(rrs), transferBatch)
		select {
		case ch <- &dns.Envelope{RR: rrs[:n]}:
			rrs = rrs[n:]
		case <-done:
			return
		}
	}
}

// stream sends the snapshot's records on ch, transferBatch to a message:
// the SOA, every other record in canonical order, the SOA again (RFC 5936
// 2.2); then closes ch. It stops early when done is closed (the transfer
// failed).
func (s *snapshot) stream(ch chan<- *dns.Envelope, done <-chan struct{}) {
	defer close(ch)
	var batch []dns.RR
	ok := true
	flush := func(last bool) {
		if len(batch) < transferBatch && !(last && len(batch) > 0) {
			return
		}
		select {
		case ch <- &dns.Envelope{RR: batch}:
			batch = nil
		case <-done:
			ok = false
		}
	}
	s.names.ascend(func(name string, n node) bool {
		for _, rr := range nodeRRs(s.origin, name, n) {
			batch = append(batch, rr)
			if flush(false); !ok {
				return false
			}
		}
		return true
	})
	if ok {
		batch = append(batch, s.soa())
		flush(true)
	}
}

func (z *Zone) mayTransfer(remote netip.Addr, key string) bool {
	allowed := false
	for _, p := range z.cfg.AllowTransfer {
		if p.Contains(remote) {
			allowed = true
		}
	}
	if !allowed {
		return false
	}
	return len(z.xfrKey) == 0 || z.xfrKey[key]
}

// reply sends resp, signed when the request was, and truncated over UDP
// to what the client can take. To a request with EDNS it adds an OPT of
// version 0 with the DO bit echoed, no flags else, and the options asked
// for: COOKIE, NSID, TCP keepalive.
func (s *Server) reply(w dns.ResponseWriter, req, resp *dns.Msg, key string, e ednsInfo) {
	resp.Compress = true
	size := dns.MinMsgSize
	_, udp := w.RemoteAddr().(*net.UDPAddr)
	if opt := e.opt; opt != nil {
		if resp.Rcode == dns.RcodeBadVers {
			resp.Answer, resp.Ns, resp.Extra = nil, nil, nil
			resp.Authoritative = false
		}
		size = max(dns.MinMsgSize, min(int(opt.UDPSize()), udpSize))
		out := resp.SetEdns0(udpSize, opt.Do()).IsEdns0()
		if e.cookieOut != nil {
			out.Option = append(out.Option, &dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: hex.EncodeToString(e.cookieOut)})
		}
		if e.nsid && s.NSID != "" {
			out.Option = append(out.Option, &dns.EDNS0_NSID{Code: dns.EDNS0NSID, Nsid: hex.EncodeToString([]byte(s.NSID))})
		}
		if e.keepalive && !udp {
			out.Option = append(out.Option, &dns.EDNS0_TCP_KEEPALIVE{Code: dns.EDNS0TCPKEEPALIVE, Timeout: uint16(s.TCPIdle / (100 * time.Millisecond))})
		}
	}
	if udp {
		if key != "" {
			size -= 200 // room for the TSIG record
		}
		resp.Truncate(size)
	}
	if t := req.IsTsig(); key != "" {
		resp.SetTsig(t.Hdr.Name, t.Algorithm, t.Fudge, time.Now().Unix())
	}
	if err := w.WriteMsg(resp); err != nil {
		s.Logger.Debug("dns write failed", "remote", w.RemoteAddr().String(), "err", err)
	}
}

// tsigFailure answers a request whose TSIG did not verify: NOTAUTH with
// the TSIG error (RFC 8945 5.2); unsigned when there is no shared key to
// sign with (BADKEY) or the request's MAC cannot be trusted (BADSIG),
// signed for BADTIME.
func (s *Server) tsigFailure(w dns.ResponseWriter, req *dns.Msg, t *dns.TSIG, err error) {
	code := uint16(dns.RcodeBadSig)
	switch {
	case errors.Is(err, dns.ErrSecret), errors.Is(err, dns.ErrKeyAlg):
		code = dns.RcodeBadKey
	case errors.Is(err, dns.ErrTime):
		code = dns.RcodeBadTime
	}
	s.noisy.info(s.Logger, "TSIG verification failed", "remote", w.RemoteAddr().String(), "key", t.Hdr.Name, "error", dns.RcodeToString[int(code)])
	resp := new(dns.Msg)
	resp.SetRcode(req, dns.RcodeNotAuth)
	now := time.Now().Unix()
	if code == dns.RcodeBadTime {
		// The key is known and the MAC verified: the answer is signed
		// (RFC 8945 5.2.3), with the request's time signed and ours in
		// the other data, so that the client can tell its clock is off.
		resp.Extra = append(resp.Extra, &dns.TSIG{
			Hdr:        dns.RR_Header{Name: t.Hdr.Name, Rrtype: dns.TypeTSIG, Class: dns.ClassANY},
			Algorithm:  t.Algorithm,
			TimeSigned: t.TimeSigned,
			Fudge:      t.Fudge,
			OrigId:     req.Id,
			Error:      code,
			OtherLen:   6,
			OtherData:  fmt.Sprintf("%012x", now),
		})
		w.WriteMsg(resp)
		return
	}
	rr := &dns.TSIG{
		Hdr:        dns.RR_Header{Name: t.Hdr.Name, Rrtype: dns.TypeTSIG, Class: dns.ClassANY},
		Algorithm:  t.Algorithm,
		TimeSigned: uint64(now),
		Fudge:      t.Fudge,
		OrigId:     req.Id,
		Error:      code,
	}
	resp.Extra = append(resp.Extra, rr)
	b, err := resp.Pack()
	if err != nil {
		return
	}
	w.Write(b)
}

// sendNotifies tells z's secondaries that it changed (RFC 1996), signed
// with the zone's first transfer key if it has one. Each is tried up to
// five times, a second apart.
func (s *Server) sendNotifies(z *Zone) {
	var wg sync.WaitGroup
	for _, target := range z.cfg.Notify {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m := new(dns.Msg)
			m.SetNotify(z.Origin)
			c := &dns.Client{Net: "udp", Timeout: time.Second}
			var key tsig.Key
			for _, k := range z.cfg.TransferKeys {
				key, _ = s.keys.Get(k)
				break
			}
			if key.Name != "" {
				c.TsigSecret = map[string]string{key.Name: key.Secret}
			}
			var err error
			for try := 0; try < 5; try++ {
				if key.Name != "" {
					m.SetTsig(key.Name, key.Algorithm, 300, time.Now().Unix())
				}
				var r *dns.Msg
				r, _, err = c.Exchange(m, target)
				if err == nil && r.Rcode == dns.RcodeSuccess {
					return
				}
				if err == nil {
					err = fmt.Errorf("answered %s", dns.RcodeToString[r.Rcode])
				}
				m.Extra = nil
				select {
				case <-s.stop:
					return
				case <-time.After(time.Second):
				}
			}
			s.Logger.Warn("NOTIFY not acknowledged", "zone", z.Origin, "secondary", target, "err", err)
		}()
	}
	wg.Wait()
}
