package bench

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/sshdyn/sshdyn/dyndns2"
	"github.com/sshdyn/sshdyn/internal/dnstest"
)

var burstBin = flag.String("burst-bin", "", "BenchmarkAuthBurst: measure this sshdyn `binary` (an earlier build) instead of this one")

// The stranger's burst of BenchmarkAuthBurst (issue 32, H1).
const (
	strangerRequests = 1000  // wrong-password requests, at least
	strangerMax      = 20000 // and at most: they go on until the timing is done
	strangerParallel = 100   // sent this many at a time
	strangerIdle     = 1000  // idle connections opened and held
	legitTries       = 20    // legitimate updates timed, each way
)

// BenchmarkAuthBurst measures what a stranger's burst on the HTTP front
// does to the legitimate clients (issue 32, H1): `sshdyn serve` with its
// embedded primary, one SSH key and one router; from 127.0.0.1 a burst of
// 1,000 wrong-password requests (100 at a time, each a new connection)
// and 1,000 idle connections held open; meanwhile, from 127.0.0.2, an
// `update` over SSH (a new connection each time) and, from 127.0.0.3, a
// router's update whose password is cached (a new connection each time,
// as a router's one-shot client makes). Both are nochg after the first,
// so the times are the fronts' and the CPU's. Reported: the median and
// worst of 20 of each without the burst and during it, and sshdyn's CPU
// time for the burst. Run it with
//
//	go test -run '^$' -bench '^BenchmarkAuthBurst$' -benchtime 1x ./bench
//
// (-args -burst-bin=BIN measures an earlier build the same way.)
func BenchmarkAuthBurst(b *testing.B) {
	bin := *burstBin
	if bin == "" {
		bin = buildBinaries(b).sshdyn
	}
	d := startBurstTarget(b, bin)
	sshTime := func() time.Duration {
		start := time.Now()
		if out, err := d.sshUpdate(); err != nil || !strings.HasPrefix(out, "nochg ") && !strings.HasPrefix(out, "good ") {
			b.Fatalf("ssh update: %q %v", out, err)
		}
		return time.Since(start)
	}
	httpTime := func() time.Duration {
		start := time.Now()
		if code, out := d.httpUpdate("127.0.0.3", "router", routerPass); code != 200 {
			b.Fatalf("router update: HTTP %d %q", code, out)
		}
		return time.Since(start)
	}
	sshTime()  // the first: good, and the host key exchange warmed
	httpTime() // the first: the bcrypt comparison, then cached
	measure := func() (ssh, web []time.Duration) {
		for range legitTries {
			ssh = append(ssh, sshTime())
			web = append(web, httpTime())
			time.Sleep(50 * time.Millisecond)
		}
		return ssh, web
	}
	quietSSH, quietHTTP := measure()

	cpu0 := cpuTimes(b, []proc{{"sshdyn", d.proc.cmd.Process.Pid}})[0]
	stop := make(chan struct{})
	var burst sync.WaitGroup
	var answered, refused429, refused401, failed, held atomic.Int64
	burst.Go(func() { // 1,000 idle connections, held until the end
		var conns []net.Conn
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		for range strangerIdle {
			c, err := (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.1")}}).Dial("tcp", d.http)
			if err != nil {
				continue
			}
			conns = append(conns, c)
		}
		// Those the server closed read EOF at once; the rest are held.
		for _, c := range conns {
			c.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
			if _, err := c.Read(make([]byte, 1)); err != nil && os.IsTimeout(err) {
				held.Add(1)
			}
		}
		<-stop
	})
	next := atomic.Int64{}
	timed := make(chan struct{})
	burstStart := time.Now()
	var burstTook time.Duration
	var requests sync.WaitGroup
	for range strangerParallel {
		requests.Go(func() {
			for n := next.Add(1); n <= strangerMax; n = next.Add(1) {
				if n > strangerRequests {
					select {
					case <-timed:
						return
					default:
					}
				}
				code, _ := d.httpUpdate("127.0.0.1", "nobody", "wrong password")
				switch code {
				case 429:
					refused429.Add(1)
				case 401:
					refused401.Add(1)
				case 0:
					failed.Add(1)
				}
				answered.Add(1)
			}
		})
	}
	time.Sleep(200 * time.Millisecond) // the burst under way
	burstSSH, burstHTTP := measure()
	close(timed)
	requests.Wait()
	burstTook = time.Since(burstStart)
	close(stop)
	burst.Wait()
	cpu := cpuTimes(b, []proc{{"sshdyn", d.proc.cmd.Process.Pid}})[0] - cpu0

	med := func(ds []time.Duration) time.Duration { return percentile(ds, 50) }
	worst := func(ds []time.Duration) time.Duration { return slices.Max(ds) }
	fmt.Printf("burst: %d wrong-password requests from one source in %.1f s (%d × 401, %d × 429, %d failed to connect or read) and %d idle connections (%d held by sshdyn); sshdyn CPU %.2f s (the burst and the legitimate updates)\n",
		answered.Load(), burstTook.Seconds(), refused401.Load(), refused429.Load(), failed.Load(), strangerIdle, held.Load(), cpu.Seconds())
	for _, c := range []struct {
		what         string
		quiet, burst []time.Duration
	}{{"ssh update (127.0.0.2, new connection each)", quietSSH, burstSSH}, {"router update, password cached (127.0.0.3, new connection each)", quietHTTP, burstHTTP}} {
		fmt.Printf("%-64s without the burst: median %6.1f ms, worst %6.1f ms; during it: median %6.1f ms, worst %6.1f ms; median ×%.1f (target: under 500 ms and under ×3)\n",
			c.what, ms(med(c.quiet)), ms(worst(c.quiet)), ms(med(c.burst)), ms(worst(c.burst)), float64(med(c.burst))/float64(med(c.quiet)))
	}
}

const routerPass = "router-password"

// burstTarget is a running sshdyn serve with one key and one router.
type burstTarget struct {
	proc   *process
	ssh    string // SSH address
	http   string // HTTP address
	client *gossh.ClientConfig
}

func startBurstTarget(b *testing.B, bin string) *burstTarget {
	b.Helper()
	dir := b.TempDir()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	signer, err := gossh.NewSignerFromKey(priv)
	if err != nil {
		b.Fatal(err)
	}
	hash, err := dyndns2.HashPassword(routerPass)
	if err != nil {
		b.Fatal(err)
	}
	port, err := dnstest.FreePort()
	if err != nil {
		b.Fatal(err)
	}
	write := func(name, text string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o600); err != nil {
			b.Fatal(err)
		}
	}
	write("zone", "$ORIGIN dyn.example.com.\n$TTL 60\n@ SOA ns hostmaster 1 3600 600 86400 60\n@ NS ns\nns A 192.0.2.53\n")
	write("tsig.key", "hmac-sha256:bench:"+primaryKey+"\n")
	write("authorized_keys", `host="h.dyn.example.com" `+string(gossh.MarshalAuthorizedKey(signer.PublicKey()))+
		`http-user="router",http-password="`+hash+`",host="r.dyn.example.com"`+"\n")
	write("sshdyn.toml", fmt.Sprintf(`listen = ["127.0.0.1:0"]
http_listen = ["127.0.0.1:0"]
host_key = "%[1]s/host_ed25519"
authorized_keys = "%[1]s/authorized_keys"
allow_private = true
max_requests_per_key = 0
dns_listen = ["127.0.0.1:%[2]d"]
[[zone]]
name = "dyn.example.com"
file = "zone"
tsig_key = "tsig.key"
`, dir, port))
	p, addr := startProcess(b, exec.Command(bin, "serve", "--config", filepath.Join(dir, "sshdyn.toml")), regexp.MustCompile(`msg=listening addr=(\S+)`))
	m := regexp.MustCompile(`msg="http listening" component=http addr=(\S+)`).FindStringSubmatch(p.output())
	if m == nil {
		b.Fatalf("no HTTP listener:\n%s", p.output())
	}
	return &burstTarget{proc: p, ssh: addr, http: m[1], client: &gossh.ClientConfig{User: "u", Auth: []gossh.AuthMethod{gossh.PublicKeys(signer)},
		HostKeyCallback: gossh.InsecureIgnoreHostKey(), Timeout: 30 * time.Second}}
}

// sshUpdate runs "update" over a new SSH connection from 127.0.0.2.
func (t *burstTarget) sshUpdate() (string, error) {
	conn, err := (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}, Timeout: 30 * time.Second}).Dial("tcp", t.ssh)
	if err != nil {
		return "", err
	}
	c, chans, reqs, err := gossh.NewClientConn(conn, t.ssh, t.client)
	if err != nil {
		conn.Close()
		return "", err
	}
	client := gossh.NewClient(c, chans, reqs)
	defer client.Close()
	s, err := client.NewSession()
	if err != nil {
		return "", err
	}
	out, err := s.Output("update")
	return string(out), err
}

// httpUpdate sends a router's update for r.dyn.example.com from src over
// a new connection; code 0 is a request that got no answer.
func (t *burstTarget) httpUpdate(src, user, pass string) (code int, body string) {
	tr := &http.Transport{DisableKeepAlives: true, DialContext: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}).DialContext}
	defer tr.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+t.http+"/nic/update?hostname=r.dyn.example.com&myip=192.0.2.77", nil)
	if err != nil {
		return 0, err.Error()
	}
	req.SetBasicAuth(user, pass)
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(out))
}
