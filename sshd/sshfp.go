package sshd

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	gossh "golang.org/x/crypto/ssh"

	"github.com/sshdyn/sshdyn/dnsname"
	"github.com/sshdyn/sshdyn/publish"
)

// The sshfp command reads at most this much standard input: a host's
// keys in ssh-keygen -r's lines are a few hundred bytes.
const (
	maxSSHFPInput = 64 << 10
	maxSSHFPLines = 256
)

// sshfpAlgorithm is the SSHFP algorithm number of an SSH public key type
// (RFC 4255, 6594, 7479, 8709).
var sshfpAlgorithm = map[string]uint8{
	gossh.KeyAlgoRSA:      1,
	gossh.KeyAlgoDSA:      2,
	gossh.KeyAlgoECDSA256: 3,
	gossh.KeyAlgoECDSA384: 3,
	gossh.KeyAlgoECDSA521: 3,
	gossh.KeyAlgoED25519:  4,
}

// ParseSSHFPInput reads what "ssh SERVER sshfp HOST..." gets on standard
// input, for hosts (canonical): the lines "ssh-keygen -r HOST" prints
// (HOST IN SSHFP ALG TYPE HEX, HOST one of hosts), or host public keys
// (the .pub files, ssh-keyscan's or known_hosts' lines), whose SHA-256
// fingerprints go to every host. SHA-1 fingerprints (type 1) are skipped
// and counted; blank lines and comments are skipped. Any other line is an
// error naming its line, and nothing is returned.
func ParseSSHFPInput(r io.Reader, hosts []string) (map[string][]publish.SSHFP, int, error) {
	out := map[string][]publish.SSHFP{}
	add := func(host string, fp publish.SSHFP) {
		if !slices.ContainsFunc(out[host], func(x publish.SSHFP) bool {
			return x.Algorithm == fp.Algorithm && x.Type == fp.Type && string(x.Fingerprint) == string(fp.Fingerprint)
		}) {
			out[host] = append(out[host], fp)
		}
	}
	sc := bufio.NewScanner(io.LimitReader(r, maxSSHFPInput+1))
	sc.Buffer(make([]byte, 0, 4096), maxSSHFPInput+1)
	read, line, sha1 := 0, 0, 0
	for sc.Scan() {
		line++
		read += len(sc.Bytes()) + 1
		if read > maxSSHFPInput || line > maxSSHFPLines {
			return nil, 0, fmt.Errorf("standard input: more than %d bytes or %d lines", maxSSHFPInput, maxSSHFPLines)
		}
		text := strings.TrimSpace(sc.Text())
		if text == "" || text[0] == '#' {
			continue
		}
		f := strings.Fields(text)
		if len(f) == 6 && strings.EqualFold(f[1], "IN") && strings.EqualFold(f[2], "SSHFP") {
			host := dnsname.Canonical(f[0])
			if !slices.Contains(hosts, host) {
				return nil, 0, fmt.Errorf("line %d: %s is not a host named in the command", line, truncate(f[0], 255))
			}
			alg, err1 := strconv.ParseUint(f[3], 10, 8)
			typ, err2 := strconv.ParseUint(f[4], 10, 8)
			fp, err3 := hex.DecodeString(f[5])
			if err := errors.Join(err1, err2, err3); err != nil {
				return nil, 0, fmt.Errorf("line %d: not an SSHFP record: %v", line, err)
			}
			if typ == 1 {
				sha1++
				continue
			}
			rec := publish.SSHFP{Algorithm: uint8(alg), Type: uint8(typ), Fingerprint: fp}
			if err := publish.CheckSSHFP(rec); err != nil {
				return nil, 0, fmt.Errorf("line %d: %v", line, err)
			}
			add(host, rec)
			continue
		}
		key, _, _, _, err := gossh.ParseAuthorizedKey([]byte(text))
		if err != nil {
			return nil, 0, fmt.Errorf("line %d: neither an SSHFP record (as ssh-keygen -r HOST prints) nor a public key", line)
		}
		alg, ok := sshfpAlgorithm[key.Type()]
		if !ok {
			return nil, 0, fmt.Errorf("line %d: a %s key has no SSHFP algorithm: give the host's plain public keys", line, key.Type())
		}
		sum := sha256.Sum256(key.Marshal())
		for _, h := range hosts {
			add(h, publish.SSHFP{Algorithm: alg, Type: 2, Fingerprint: sum[:]})
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, 0, fmt.Errorf("standard input: more than %d bytes", maxSSHFPInput)
		}
		return nil, 0, fmt.Errorf("standard input: %v", err)
	}
	return out, sha1, nil
}

// sshfp runs "sshfp HOST..." (the fingerprints on standard input replace
// each host's SSHFP records) and "sshfp --clear HOST..." (removes them):
// one line a host on stdout, "good" or "nochg", the host, "SSHFP" and
// the records it holds now.
func (s *Server) sshfp(ctx context.Context, e *env, args []string) error {
	clear := len(args) > 0 && args[0] == "--clear"
	if clear {
		args = args[1:]
	}
	if len(args) == 0 {
		return failf(ExitUsage, "usage: sshfp [--clear] HOST... (the keys on standard input: ssh-keygen -r HOST | ssh SERVER sshfp HOST)")
	}
	if err := hostArgs(args, "sshfp takes --clear, then host names"); err != nil {
		return err
	}
	hosts := make([]string, len(args))
	for i, h := range args {
		hosts[i] = dnsname.Canonical(h)
	}
	var records map[string][]publish.SSHFP
	if !clear {
		var sha1 int
		var err error
		records, sha1, err = ParseSSHFPInput(e.stdin, hosts)
		if err != nil {
			return failf(ExitUsage, "%v; nothing changed", err)
		}
		for _, h := range hosts {
			if len(records[h]) == 0 {
				return failf(ExitUsage, "no SHA-256 fingerprint for %s on standard input (pipe in ssh-keygen -r %s, or the host's public keys); nothing changed", h, h)
			}
		}
		if sha1 > 0 {
			fmt.Fprintf(e.stderr, "sshdyn: skipped %d SHA-1 fingerprint(s): only SHA-256 ones are published\n", sha1)
		}
	}
	for _, h := range hosts {
		res, err := s.Service.PublishSSHFP(ctx, publish.SSHFPRequest{Front: publish.FrontSSH, Identity: e.entry, Client: e.peer, Host: h, Records: records[h]})
		if err != nil {
			var pe *publish.Error
			switch {
			case errors.As(err, &pe) && pe.Kind == publish.KindUnsupported:
				e.log.get().Info("sshfp refused", "host", h, "reason", err)
				return failf(exitStatus(pe.Kind.Class(false)), "%s: not changed: %v", h, pe.Err)
			case errors.As(err, &pe) && pe.Err != nil && pe.Host != "": // a DNS failure
				e.log.get().Error("sshfp failed", "host", h, "err", pe.Err)
				return hostFailure(publish.HostResult{Host: h, Kind: pe.Kind, Temporary: pe.Temporary, Err: pe.Err})
			}
			e.log.get().Info("sshfp refused", "host", h, "reason", err)
			return refusal(err, e.log)
		}
		fmt.Fprintf(e.stdout, "%s %s SSHFP %d\n", res.Kind, res.Host, res.Records)
	}
	return nil
}
