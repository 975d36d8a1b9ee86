package load

import (
	"context"
	"fmt"
	"net/netip"
	"sync"

	"golang.org/x/crypto/ssh"
)

// Held is a set of connections kept open; Close closes them all.
type Held struct {
	mu    sync.Mutex
	conns []interface{ Close() error }
}

// Close closes every held connection.
func (h *Held) Close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, c := range h.conns {
		c.Close()
	}
	h.conns = nil
}

// Len is the number of connections held.
func (h *Held) Len() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.conns)
}

func (h *Held) add(c interface{ Close() error }) {
	h.mu.Lock()
	h.conns = append(h.conns, c)
	h.mu.Unlock()
}

// HoldSessions opens n connections to addr that log in (client i%len
// with its first source address) and open a session channel, then wait:
// n sessions in progress. At most 16 are being set up at once.
func HoldSessions(ctx context.Context, addr string, clients []Client, n int) (*Held, error) {
	h := &Held{}
	sem := make(chan struct{}, 16)
	errc := make(chan error, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		sem <- struct{}{}
		go func(c Client) {
			defer wg.Done()
			defer func() { <-sem }()
			conn, err := dialer(c.source()).DialContext(ctx, "tcp", addr)
			if err != nil {
				errc <- err
				return
			}
			cc := &ssh.ClientConfig{User: "load", Auth: []ssh.AuthMethod{ssh.PublicKeys(c.Signer)}, HostKeyCallback: ssh.InsecureIgnoreHostKey()}
			sc, chans, reqs, err := ssh.NewClientConn(conn, addr, cc)
			if err != nil {
				conn.Close()
				errc <- err
				return
			}
			client := ssh.NewClient(sc, chans, reqs)
			if _, err := client.NewSession(); err != nil {
				client.Close()
				errc <- err
				return
			}
			h.add(client)
		}(clients[i%len(clients)])
	}
	wg.Wait()
	close(errc)
	if err := <-errc; err != nil {
		h.Close()
		return nil, fmt.Errorf("holding %d sessions: %w", n, err)
	}
	return h, nil
}

// Stall opens n TCP connections to addr, spread over sources, and sends
// nothing on them: clients that never start the SSH handshake.
func Stall(ctx context.Context, addr string, sources []netip.Addr, n int) (*Held, error) {
	h := &Held{}
	for i := 0; i < n; i++ {
		var src netip.Addr
		if len(sources) > 0 {
			src = sources[i%len(sources)]
		}
		c, err := dialer(src).DialContext(ctx, "tcp", addr)
		if err != nil {
			h.Close()
			return nil, fmt.Errorf("stalled connection %d: %w", i+1, err)
		}
		h.add(c)
	}
	return h, nil
}
