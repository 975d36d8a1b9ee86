package zone

import (
	"encoding/binary"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/net/ipv4"
)

// The fast path: a plain query over UDP (one question of class IN, its
// name in lower case, no answer or authority records, at most an OPT
// record of version 0 with no options, no TSIG) is answered from a
// message rendered once per snapshot, name and type, patched for the
// query's ID, flags and EDNS. Everything else, and every answer too large for
// the client, goes the full path (ServeDNS), which renders the same
// answer: TestFastPathLikeFullPath compares them.

// fastEntry is a rendered answer.
type fastEntry struct {
	zone    *Zone
	snap    *snapshot // the snapshot it was rendered from: stale once the zone changed
	wire    []byte    // packed with compression, no OPT
	kind    int       // for RRL
	rrlName string
	rrlType uint16
}

// maxFastEntries bounds the answers a server keeps rendered; past it the
// cache starts again empty (a flood of random names).
const maxFastEntries = 1 << 20

// fastShards spreads the cache's locks.
const fastShards = 64

// fastCache is a server's rendered answers, by name (wire format, lower
// case) and type. A lookup allocates nothing.
type fastCache struct {
	shards [fastShards]struct {
		mu sync.RWMutex
		m  map[string]*fastEntry
	}
	n atomic.Int64
}

func shardOf(key []byte) int {
	h := uint32(2166136261)
	for _, c := range key {
		h = (h ^ uint32(c)) * 16777619
	}
	return int(h % fastShards)
}

// get returns key's entry if it is current.
func (c *fastCache) get(key []byte) *fastEntry {
	sh := &c.shards[shardOf(key)]
	sh.mu.RLock()
	e := sh.m[string(key)]
	sh.mu.RUnlock()
	if e != nil && e.zone.snapshot() == e.snap {
		return e
	}
	return nil
}

// put keeps e under key.
func (c *fastCache) put(key []byte, e *fastEntry) {
	if c.n.Add(1) > maxFastEntries {
		for i := range c.shards {
			c.shards[i].mu.Lock()
			c.shards[i].m = nil
			c.shards[i].mu.Unlock()
		}
		c.n.Store(1)
	}
	sh := &c.shards[shardOf(key)]
	sh.mu.Lock()
	if sh.m == nil {
		sh.m = map[string]*fastEntry{}
	}
	sh.m[string(key)] = e
	sh.mu.Unlock()
}

// fastQuery is a parsed plain query.
type fastQuery struct {
	nameEnd int    // offset after the question's name
	key     []byte // the name in lower case, then the type: the cache key
	qtype   uint16
	edns    bool
	do      bool
	size    int // the largest answer the client takes
}

// parseFast parses a query for the fast path into q, reusing q.key; ok is
// false for anything it does not take.
func parseFast(b []byte, q *fastQuery) bool {
	if len(b) < 17 || b[2]&0xf8 != 0 || b[3]&0x0f != 0 { // QR, opcode; RCODE
		return false
	}
	if binary.BigEndian.Uint16(b[4:]) != 1 || binary.BigEndian.Uint16(b[6:]) != 0 || binary.BigEndian.Uint16(b[8:]) != 0 {
		return false
	}
	ar := binary.BigEndian.Uint16(b[10:])
	if ar > 1 {
		return false
	}
	q.key = q.key[:0]
	off := 12
	for {
		if off >= len(b) {
			return false
		}
		l := int(b[off])
		if l&0xc0 != 0 || off+1+l > len(b) || len(q.key)+l+1 > 255 {
			return false
		}
		q.key = append(q.key, byte(l))
		for _, c := range b[off+1 : off+1+l] {
			if 'A' <= c && c <= 'Z' {
				// A name with capitals (a resolver's 0x20 bits) takes
				// the full path: its answers compress the names that
				// match the question byte for byte only, so their case
				// differs from a lower-case rendering's.
				return false
			}
			q.key = append(q.key, c)
		}
		off += 1 + l
		if l == 0 {
			break
		}
	}
	if off+4 > len(b) {
		return false
	}
	q.nameEnd = off
	q.qtype = binary.BigEndian.Uint16(b[off:])
	if binary.BigEndian.Uint16(b[off+2:]) != dns.ClassINET {
		return false
	}
	switch q.qtype {
	case dns.TypeAXFR, dns.TypeIXFR, dns.TypeANY, dns.TypeOPT, dns.TypeTSIG, 0:
		return false
	}
	q.key = append(q.key, byte(q.qtype>>8), byte(q.qtype))
	off += 4
	q.edns, q.do, q.size = false, false, dns.MinMsgSize
	if ar == 1 {
		// An OPT: root name, type 41, class the size, TTL the extended
		// rcode, version and flags, no options.
		if off+11 != len(b) || b[off] != 0 || binary.BigEndian.Uint16(b[off+1:]) != dns.TypeOPT ||
			b[off+5] != 0 || b[off+6] != 0 || binary.BigEndian.Uint16(b[off+9:]) != 0 {
			return false
		}
		q.edns = true
		q.do = b[off+7]&0x80 != 0
		if q.do {
			q.key = append(q.key, 1) // a signed zone's answer differs
		}
		q.size = max(dns.MinMsgSize, min(int(binary.BigEndian.Uint16(b[off+3:])), udpSize))
		return true
	}
	return off == len(b)
}

// render renders the answer to q (for name, in z) from z's current
// snapshot.
func render(z *Zone, q *fastQuery, name string) *fastEntry {
	snap := z.snapshot()
	req := new(dns.Msg)
	req.SetQuestion(name, q.qtype)
	resp := new(dns.Msg)
	resp.SetReply(req)
	resp.RecursionDesired = false
	snap.answer(req.Question[0], resp, true, q.do)
	resp.Compress = true
	wire, err := resp.Pack()
	if err != nil {
		return nil
	}
	e := &fastEntry{zone: z, snap: snap, wire: wire}
	e.kind, e.rrlName, e.rrlType = rrlClass(resp, name, q.qtype, snap.origin)
	return e
}

// fastAnswer writes into out the answer to the plain query b from
// remote, and reports whether it did; send is false when RRL drops it.
// ok false: the full path must answer.
func (srv *Server) fastAnswer(b []byte, remote netip.Addr, q *fastQuery, out []byte) (reply []byte, send, ok bool) {
	return srv.fastAnswerOn(b, remote, q, out, false)
}

// fastAnswerOn is fastAnswer, over TCP if tcp: no size limit but the
// protocol's, and no rate limiting (TCP cannot be spoofed).
func (srv *Server) fastAnswerOn(b []byte, remote netip.Addr, q *fastQuery, out []byte, tcp bool) (reply []byte, send, ok bool) {
	if !parseFast(b, q) {
		return nil, false, false
	}
	if tcp {
		q.size = dns.MaxMsgSize
	}
	e := srv.fast.get(q.key)
	if e == nil {
		name := wireToName(q.key[:q.nameEnd-12])
		z := srv.find(name)
		if z == nil {
			return nil, false, false
		}
		if e = render(z, q, name); e == nil {
			return nil, false, false
		}
		srv.fast.put(q.key, e)
	}
	z := e.zone
	n := len(e.wire)
	if q.edns {
		n += 11
	}
	if n > q.size {
		return nil, false, false // truncation: the full path
	}
	if srv.limit != nil && !tcp {
		switch srv.limit.account(remote, e.kind, e.rrlName, e.rrlType, srv.rrlRate(z), time.Now()) {
		case rrlDrop:
			srv.Observe("dropped")
			return nil, false, true
		case rrlSlip:
			srv.Observe("slipped")
			// The question alone, TC set.
			out = append(out[:0], b[:q.nameEnd+4]...)
			out[2] = 0x80 | out[2]&0x01 | 0x02 // QR, RD as asked, TC
			out[3] &= 0x10                     // CD as asked, RCODE 0
			binary.BigEndian.PutUint16(out[6:], 0)
			binary.BigEndian.PutUint16(out[8:], 0)
			binary.BigEndian.PutUint16(out[10:], 0)
			return srv.appendOPT(out, q), true, true
		}
	}
	out = append(out[:0], e.wire...)
	out[0], out[1] = b[0], b[1]              // ID
	out[2] = out[2]&^0x01 | b[2]&0x01        // RD as asked
	out[3] = out[3]&^0x10 | b[3]&0x10        // CD as asked
	copy(out[12:q.nameEnd], b[12:q.nameEnd]) // the name in the client's case
	return srv.appendOPT(out, q), true, true
}

// appendOPT adds the answer's OPT record for an EDNS query: version 0,
// size 1232, DO echoed.
func (srv *Server) appendOPT(out []byte, q *fastQuery) []byte {
	if !q.edns {
		return out
	}
	flags := byte(0)
	if q.do {
		flags = 0x80
	}
	out = append(out, 0, 0, byte(dns.TypeOPT), byte(udpSize>>8), byte(udpSize&0xff), 0, 0, flags, 0, 0, 0)
	binary.BigEndian.PutUint16(out[10:], binary.BigEndian.Uint16(out[10:])+1)
	return out
}

// wireToName is a name in wire format as text, with the trailing dot,
// escaped as miekg/dns writes names.
func wireToName(w []byte) string {
	name, _, err := dns.UnpackDomainName(w, 0)
	if err != nil {
		return "."
	}
	return name
}

// fastConn is one UDP socket of a listener: its reader answers plain
// queries itself and hands the others to a miekg/dns server through the
// net.PacketConn it implements.
type fastConn struct {
	*net.UDPConn
	srv  *Server
	slow chan slowPacket
	done chan struct{}
	once sync.Once
}

type slowPacket struct {
	b    []byte
	from net.Addr
}

func newFastConn(c *net.UDPConn, srv *Server) *fastConn {
	f := &fastConn{UDPConn: c, srv: srv, slow: make(chan slowPacket, 256), done: make(chan struct{})}
	go f.read()
	return f
}

// fastBatch is how many packets one system call reads or writes
// (recvmmsg, sendmmsg where the system has them).
const fastBatch = 32

// read is the socket's reader: it reads packets in batches, answers the
// plain queries, writes their answers in one batch, and hands the rest
// to the full path.
func (f *fastConn) read() {
	defer close(f.slow)
	if runtime.GOOS != "linux" {
		f.readOne()
		return
	}
	pc := ipv4.NewPacketConn(f.UDPConn) // batches work on IPv6 sockets too: the calls are the same
	in := make([]ipv4.Message, fastBatch)
	out := make([]ipv4.Message, 0, fastBatch)
	bufs := make([][]byte, fastBatch)
	replies := make([][]byte, fastBatch)
	for i := range in {
		bufs[i] = make([]byte, dns.MaxMsgSize)
		in[i].Buffers = [][]byte{bufs[i]}
		replies[i] = make([]byte, 0, udpSize)
	}
	var q fastQuery
	for {
		n, err := pc.ReadBatch(in, 0)
		if err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				continue
			}
			return
		}
		out = out[:0]
		for i := range n {
			m := &in[i]
			from, _ := m.Addr.(*net.UDPAddr)
			if from == nil {
				continue
			}
			b := bufs[i][:m.N]
			reply, send, ok := f.srv.fastAnswer(b, from.AddrPort().Addr().Unmap(), &q, replies[i])
			if ok {
				if send {
					replies[i] = reply
					out = append(out, ipv4.Message{Buffers: [][]byte{reply}, Addr: from})
				}
				continue
			}
			if !f.toSlow(b, from) {
				return
			}
		}
		for len(out) > 0 {
			k, err := pc.WriteBatch(out, 0)
			if err != nil || k == 0 {
				break
			}
			out = out[k:]
		}
	}
}

// readOne is read where the system reads one packet a call.
func (f *fastConn) readOne() {
	buf := make([]byte, dns.MaxMsgSize)
	out := make([]byte, 0, udpSize)
	var q fastQuery
	for {
		n, from, err := f.UDPConn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				continue
			}
			return
		}
		if !f.serveOne(buf[:n], from, &q, &out) {
			return
		}
	}
}

// serveOne answers one packet, or hands it to the full path; false: the
// connection is closing.
func (f *fastConn) serveOne(b []byte, from netip.AddrPort, q *fastQuery, out *[]byte) bool {
	reply, send, ok := f.srv.fastAnswer(b, from.Addr().Unmap(), q, *out)
	if ok {
		if send {
			*out = reply
			f.UDPConn.WriteToUDPAddrPort(reply, from)
		}
		return true
	}
	return f.toSlow(b, net.UDPAddrFromAddrPort(from))
}

// toSlow hands a packet to the full path; false: the connection is
// closing.
func (f *fastConn) toSlow(b []byte, from net.Addr) bool {
	select {
	case f.slow <- slowPacket{b: append([]byte(nil), b...), from: from}:
	case <-f.done:
		return false
	default: // the full path is behind: dropped, as by a full socket buffer
	}
	return true
}

// ReadFrom gives the miekg/dns server the packets the fast path left.
func (f *fastConn) ReadFrom(b []byte) (int, net.Addr, error) {
	select {
	case p, ok := <-f.slow:
		if !ok {
			return 0, nil, net.ErrClosed
		}
		return copy(b, p.b), p.from, nil
	case <-f.done:
		return 0, nil, net.ErrClosed
	}
}

// Close closes the socket and ends the reader.
func (f *fastConn) Close() error {
	f.once.Do(func() { close(f.done) })
	return f.UDPConn.Close()
}

// LocalAddr is the socket's.
func (f *fastConn) LocalAddr() net.Addr { return f.UDPConn.LocalAddr() }

// SetReadDeadline is miekg/dns's way to wake its reader: a deadline in the
// past (its shutdown) ends ReadFrom; others are left to the fast reader,
// which has none.
func (f *fastConn) SetReadDeadline(t time.Time) error {
	if !t.IsZero() && time.Until(t) <= 0 {
		f.once.Do(func() { close(f.done) })
	}
	return nil
}

// fastTCPReader is miekg/dns's TCP reader with the fast path in front: a
// plain query read from a connection is answered on it at once, and the
// next message read; the others go to miekg/dns's server as read. A
// connection's messages are read and answered in turn, so the answers
// keep their order.
type fastTCPReader struct {
	dns.Reader
	srv *Server
}

func (r fastTCPReader) ReadTCP(conn net.Conn, timeout time.Duration) ([]byte, error) {
	var q fastQuery
	out := make([]byte, 2, 2+udpSize)
	for {
		m, err := r.Reader.ReadTCP(conn, timeout)
		if err != nil {
			return m, err
		}
		remote, _ := netip.ParseAddrPort(conn.RemoteAddr().String())
		reply, _, ok := r.srv.fastAnswerOn(m, remote.Addr().Unmap(), &q, out[2:2], true)
		if !ok {
			return m, nil
		}
		out = append(out[:2], reply...)
		binary.BigEndian.PutUint16(out, uint16(len(reply)))
		conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
		if _, err := conn.Write(out); err != nil {
			return nil, err
		}
	}
}
