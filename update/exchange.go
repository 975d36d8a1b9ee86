package update

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/sshdyn/sshdyn/dnsname"
	"github.com/sshdyn/sshdyn/internal/sockopt"
)

// exchange sends one signed message and returns its verified reply.
func (c *Client) exchange(ctx context.Context, op string, m *dns.Msg) (*dns.Msg, error) {
	r := c.exchangeAll(ctx, []string{op}, []*dns.Msg{m})
	return r[0].msg, r[0].err
}

// reply is the answer to one message of an exchangeAll.
type reply struct {
	msg *dns.Msg
	err error
}

// exchangeAll sends msgs back to back on one connection, without waiting
// for a reply in between, then reads every reply and verifies each as
// the reply to its own message (an *Error if it is not a verified
// reply). The primary may answer in any order; replies are matched by ID.
// ops names each message for Observe and for errors.
func (c *Client) exchangeAll(ctx context.Context, ops []string, msgs []*dns.Msg) []reply {
	ctx, cancel := context.WithTimeout(ctx, c.timeout())
	defer cancel()
	start := time.Now()
	out := c.roundTrip(ctx, msgs)
	took := time.Since(start)
	for i := range out {
		out[i].msg, out[i].err = c.verified(ops[i], out[i].msg, out[i].err)
		if c.Observe != nil {
			c.Observe(ops[i], took, out[i].err)
		}
	}
	return out
}

// roundTrip sends msgs over a pooled connection, or a new one, and reads
// the replies. A pooled connection the primary has closed meanwhile fails
// at once (EOF, reset) with no reply read; then msgs go once more over a
// new connection. Every message sshdyn sends may be sent twice: checks
// and queries change nothing, and a replace sets the same RRset again.
func (c *Client) roundTrip(ctx context.Context, msgs []*dns.Msg) []reply {
	nc, reused, err := c.conn(ctx, false)
	for {
		if err != nil {
			return failAll(len(msgs), err)
		}
		out, read, serr := c.send(ctx, nc, msgs)
		if serr == nil {
			c.Pool.put(nc)
			return out
		}
		nc.Close() // after any error the stream may be out of step
		var ne net.Error
		if !reused || read > 0 || ctx.Err() != nil || errors.As(serr, &ne) && ne.Timeout() {
			for i := range out {
				if out[i].msg == nil && out[i].err == nil {
					out[i].err = serr
				}
			}
			return out
		}
		nc, reused, err = c.conn(ctx, true)
	}
}

// conn takes a connection from the pool, or opens one. Opening one is
// observed as the operation "connect": how long it took to get (waiting
// for a free dial included), or why it failed. Many of them mean the pool
// keeps too few connections idle for the load.
func (c *Client) conn(ctx context.Context, fresh bool) (nc net.Conn, reused bool, err error) {
	start := time.Now()
	nc, reused, err = c.Pool.conn(ctx, c.Server, fresh)
	if !reused && c.Observe != nil {
		var oerr error
		if err != nil {
			oerr = &Error{Op: OpConnect, Server: c.Server, Zone: c.Zone, Rcode: -1, Kind: classifyNetError(err), Err: err}
		}
		c.Observe(OpConnect, time.Since(start), oerr)
	}
	return nc, reused, err
}

func failAll(n int, err error) []reply {
	out := make([]reply, n)
	for i := range out {
		out[i].err = err
	}
	return out
}

// send signs msgs (copies: signing takes the TSIG record out of the
// message it is given), writes them in one write, and reads as many
// replies. read counts the replies read; err is what stopped it, and
// leaves the stream unusable. A reply whose TSIG does not verify is read
// with its error in its reply, and the stream stays usable.
func (c *Client) send(ctx context.Context, nc net.Conn, msgs []*dns.Msg) (out []reply, read int, err error) {
	out = make([]reply, len(msgs))
	if dl, ok := ctx.Deadline(); ok {
		nc.SetDeadline(dl)
	}
	// A message's TSIG is checked with the MAC of the request it answers.
	type request struct {
		i   int
		mac string
	}
	byID := make(map[uint16]request, len(msgs))
	var buf []byte
	for i, m := range msgs {
		m = m.Copy()
		for _, dup := byID[m.Id]; dup; _, dup = byID[m.Id] {
			m.Id = dns.Id()
		}
		var wire []byte
		var mac string
		if m.IsTsig() != nil {
			wire, mac, err = dns.TsigGenerate(m, c.Key.Secret, "", false)
		} else {
			wire, err = m.Pack()
		}
		if err != nil {
			return out, 0, err
		}
		byID[m.Id] = request{i, mac}
		buf = binary.BigEndian.AppendUint16(buf, uint16(len(wire)))
		buf = append(buf, wire...)
	}
	if _, err := nc.Write(buf); err != nil {
		return out, 0, err
	}
	co := &dns.Conn{Conn: nc}
	for read < len(msgs) {
		if len(msgs)-read > 1 {
			// More replies to come: acknowledge this one at once, or the
			// primary's Nagle holds the next until the delayed ACK.
			sockopt.QuickAck(nc)
		}
		p, err := co.ReadMsgHeader(nil)
		if err != nil {
			return out, read, err
		}
		m := new(dns.Msg)
		if err := m.Unpack(p); err != nil {
			return out, read, err
		}
		req, ok := byID[m.Id]
		if !ok {
			return out, read, fmt.Errorf("reply with ID %d answers no request: %w", m.Id, dns.ErrId)
		}
		delete(byID, m.Id)
		read++
		out[req.i].msg = m
		if t := m.IsTsig(); t != nil {
			// On the bytes as received: the TSIG covers them. TsigVerify
			// takes the algorithm and key name from the reply itself, so
			// pin both to the request's: the same secret under another
			// algorithm or name is not this key's signature.
			out[req.i].err = c.pinned(t)
			if out[req.i].err == nil {
				out[req.i].err = dns.TsigVerify(p, c.Key.Secret, req.mac, false)
			}
		}
	}
	nc.SetDeadline(time.Time{})
	return out, read, nil
}

// pinned checks that a reply's TSIG names the client's key and algorithm.
func (c *Client) pinned(t *dns.TSIG) error {
	if !strings.EqualFold(dnsname.FQDN(t.Hdr.Name), dnsname.FQDN(c.Key.Name)) {
		return fmt.Errorf("reply signed with key %q, not %q: %w", t.Hdr.Name, c.Key.Name, dns.ErrSig)
	}
	if !strings.EqualFold(dnsname.FQDN(t.Algorithm), dnsname.FQDN(c.Key.Algorithm)) {
		return fmt.Errorf("reply signed with algorithm %s, not %s: %w", t.Algorithm, c.Key.Algorithm, dns.ErrSig)
	}
	return nil
}
