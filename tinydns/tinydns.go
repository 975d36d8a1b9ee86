// Package tinydns is a backend for zones served by djbdns's tinydns: it
// keeps sshdyn's records in a marked block of the root's data file and
// rebuilds data.cdb with tinydns-data, which tinydns reads on its next
// query.
//
// The block, at the end of data unless it is there already:
//
//	# sshdyn begin: the lines down to "# sshdyn end" are sshdyn's; edit the rest as always
//	+home.dyn.example.com:198.51.100.7:60
//	:home.dyn.example.com:28:\040\001\015\270...:60
//	'_acme-challenge.home.dyn.example.com:LoqXcYV8q5...:60
//	# sshdyn end
//
// sshdyn changes nothing outside it, so the operator's own lines, and
// their "make" in the root, keep working: the block is part of data. A
// rebuild runs tinydns-data on the new data in a scratch directory
// (ROOT/.sshdyn); only if it succeeds do data.cdb and data replace the
// old ones, each by rename, data.cdb first. A bad operator line therefore
// fails the update and leaves both files as they were. Changes that
// arrive while a rebuild runs share the next one.
package tinydns

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"

	"github.com/sshdyn/sshdyn/backend"
)

// The block's marker lines.
const (
	begin = `# sshdyn begin: the lines down to "# sshdyn end" are sshdyn's; edit the rest as always`
	end   = "# sshdyn end"
)

// buildTimeout bounds one run of tinydns-data.
const buildTimeout = 30 * time.Second

// Backend writes one zone's records into a tinydns root. Its methods are
// safe for concurrent use; use one Backend per root.
type Backend struct {
	Root string // the directory with data and data.cdb
	Zone string // for errors
	// Program is tinydns-data; found on PATH, then in /usr/sbin, if empty.
	Program string

	mu      sync.Mutex
	loaded  bool
	want    map[string]*rrset // what sshdyn wants in the block, by "name TYPE"
	written map[string]*rrset // what the last good rebuild wrote
	gen     uint64            // the latest change's number
	built   uint64            // changes up to this number are in data.cdb
	failed  uint64            // changes up to this number failed with failErr
	failErr error

	build  sync.Mutex // one rebuild at a time
	builds uint64     // rebuilds run; guarded by build
}

// Builds returns how many times the Backend has run tinydns-data.
func (b *Backend) Builds() uint64 {
	b.build.Lock()
	defer b.build.Unlock()
	return b.builds
}

// rrset is one RRset of the block.
type rrset struct {
	name   string // canonical, no trailing dot
	typ    uint16 // A, AAAA or TXT
	ttl    uint32
	values []string // addresses, or TXT strings
	gen    uint64   // the change that set it
}

func key(name string, t uint16) string { return dns.CanonicalName(name) + " " + dns.TypeToString[t] }

// load reads the block once, so that what sshdyn wrote before a restart
// is its own again. Called with b.mu held.
func (b *Backend) load() error {
	if b.loaded {
		return nil
	}
	data, err := os.ReadFile(filepath.Join(b.Root, "data"))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return b.fail(failIO, err)
	}
	l, err := cut(data)
	if err != nil {
		return b.fail(failBlock, err)
	}
	b.want = map[string]*rrset{}
	for _, line := range l.block {
		if s, ok := parseLine(line); ok {
			if old := b.want[key(s.name, s.typ)]; old != nil {
				old.values = append(old.values, s.values...)
			} else {
				b.want[key(s.name, s.typ)] = s
			}
		}
	}
	b.written = clone(b.want)
	b.loaded = true
	return nil
}

func clone(m map[string]*rrset) map[string]*rrset {
	out := make(map[string]*rrset, len(m))
	for k, v := range m {
		c := *v
		c.values = slices.Clone(v.values)
		out[k] = &c
	}
	return out
}

// lines returns the block's lines for want, sorted.
func lines(want map[string]*rrset) []string {
	var out []string
	for _, s := range want {
		for _, v := range s.values {
			out = append(out, format(s, v))
		}
	}
	slices.Sort(out)
	return out
}

// format writes one record as a data line: +A, :generic AAAA, 'TXT.
func format(s *rrset, v string) string {
	ttl := strconv.FormatUint(uint64(s.ttl), 10)
	switch s.typ {
	case dns.TypeA:
		return "+" + s.name + ":" + v + ":" + ttl
	case dns.TypeAAAA:
		var esc strings.Builder
		for _, c := range netip.MustParseAddr(v).As16() {
			fmt.Fprintf(&esc, `\%03o`, c)
		}
		return ":" + s.name + ":28:" + esc.String() + ":" + ttl
	case dns.TypeSSHFP:
		var esc strings.Builder
		for _, c := range sshfpWire(v) {
			fmt.Fprintf(&esc, `\%03o`, c)
		}
		return ":" + s.name + ":44:" + esc.String() + ":" + ttl
	}
	return "'" + s.name + ":" + escape(v) + ":" + ttl
}

// escape octal-escapes what a data line field cannot hold.
func escape(v string) string {
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c > ' ' && c < 0x7f && c != ':' && c != '\\' {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, `\%03o`, c)
		}
	}
	return b.String()
}

// parseLine reads back a line format wrote.
func parseLine(line string) (*rrset, bool) {
	if line == "" {
		return nil, false
	}
	f := strings.Split(line[1:], ":")
	s := &rrset{}
	var value, ttl string
	switch {
	case line[0] == '+' && len(f) == 3:
		s.typ, value, ttl = dns.TypeA, f[1], f[2]
	case line[0] == ':' && len(f) == 4 && f[1] == "28":
		s.typ, ttl = dns.TypeAAAA, f[3]
		raw, err := unescape(f[2])
		if err != nil || len(raw) != 16 {
			return nil, false
		}
		value = netip.AddrFrom16([16]byte(raw)).String()
	case line[0] == ':' && len(f) == 4 && f[1] == "44":
		s.typ, ttl = dns.TypeSSHFP, f[3]
		raw, err := unescape(f[2])
		if err != nil || len(raw) < 3 {
			return nil, false
		}
		value = backend.SSHFPData(raw[0], raw[1], raw[2:])
	case line[0] == '\'' && len(f) == 3:
		raw, err := unescape(f[1])
		if err != nil {
			return nil, false
		}
		s.typ, value, ttl = dns.TypeTXT, string(raw), f[2]
	default:
		return nil, false
	}
	n, err := strconv.ParseUint(ttl, 10, 32)
	if err != nil {
		return nil, false
	}
	name := strings.TrimSuffix(strings.ToLower(f[0]), ".")
	if name != "" && (name[0] == '.' || name[len(name)-1] == '.' || strings.Contains(name, "..")) {
		return nil, false // an empty label: not a name sshdyn writes, nor one it reads back the same
	}
	s.name, s.ttl, s.values = name, uint32(n), []string{value}
	return s, true
}

func unescape(s string) ([]byte, error) {
	var out []byte
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' {
			out = append(out, s[i])
			continue
		}
		if i+4 > len(s) {
			return nil, errors.New("short escape")
		}
		n, err := strconv.ParseUint(s[i+1:i+4], 8, 8)
		if err != nil {
			return nil, err
		}
		out = append(out, byte(n))
		i += 3
	}
	return out, nil
}

// The failures of a tinydns root, each with its hint.
type failure int

const (
	failIO    failure = iota // the root's files cannot be read or written
	failBlock                // data's block cannot be told from the operator's lines
	failBuild                // tinydns-data refused data
	failCDB                  // data.cdb cannot be read
	failKept                 // a removed RRset is still served: the operator's lines hold it
)

// fail makes a *backend.Error of the backend's, in its own words.
func (b *Backend) fail(f failure, err error) error {
	e := &backend.Error{Backend: "tinydns root " + b.Root, Zone: b.Zone, Err: err}
	switch f {
	case failIO:
		e.Kind, e.Temporary, e.Hint = backend.KindUnreachable, true, "sshdyn cannot read or write the tinydns root: it must exist, and sshdyn's user must be able to write it and its data file"
	case failBlock:
		e.Kind, e.Hint = backend.KindOther, "sshdyn will not guess which lines of data are the operator's: fix the line named, and update again"
	case failBuild:
		e.Kind, e.Hint = backend.KindServerFailure, "tinydns-data refused data: fix the line it names (most likely an operator's line), and update again"
	case failCDB:
		e.Kind, e.Hint = backend.KindOther, "data.cdb cannot be read: run tinydns-data in the root by hand and see what it says"
	case failKept:
		e.Kind, e.Hint = backend.KindIgnored, "a line of data outside sshdyn's block holds it, and sshdyn removes only what it wrote: remove that line"
	}
	return e
}

// served returns what data.cdb holds for name's RRset of type t.
func (b *Backend) served(name string, t uint16) ([]string, uint32, error) {
	vals, err := cdbGet(filepath.Join(b.Root, "data.cdb"), wireName(name))
	if errors.Is(err, os.ErrNotExist) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, b.fail(failCDB, err)
	}
	var out []string
	var ttl uint32
	for _, v := range vals {
		// type[2] '=' ttl[4] ttd[8] rdata, or '>' loc[2] after the type.
		if len(v) < 15 || uint16(v[0])<<8|uint16(v[1]) != t {
			continue
		}
		p := 3
		if v[2] == '>' {
			p = 5
		}
		if len(v) < p+12 {
			continue
		}
		ttl = uint32(v[p])<<24 | uint32(v[p+1])<<16 | uint32(v[p+2])<<8 | uint32(v[p+3])
		rdata := v[p+12:]
		switch {
		case t == dns.TypeA && len(rdata) == 4:
			out = append(out, netip.AddrFrom4([4]byte(rdata)).String())
		case t == dns.TypeAAAA && len(rdata) == 16:
			out = append(out, netip.AddrFrom16([16]byte(rdata)).String())
		case t == dns.TypeSSHFP && len(rdata) > 2:
			out = append(out, backend.SSHFPData(rdata[0], rdata[1], rdata[2:]))
		case t == dns.TypeTXT:
			var s []byte
			for len(rdata) > 0 && int(rdata[0]) < len(rdata) {
				s, rdata = append(s, rdata[1:1+rdata[0]]...), rdata[1+rdata[0]:]
			}
			out = append(out, string(s))
		}
	}
	return out, ttl, nil
}

// wireName is name in DNS wire form, lower case, as tinydns-data keys it.
func wireName(name string) []byte {
	var out []byte
	for _, l := range strings.Split(strings.TrimSuffix(strings.ToLower(name), "."), ".") {
		out = append(out, byte(len(l)))
		out = append(out, l...)
	}
	return append(out, 0)
}

// change is one RRset to set: values empty removes it.
type change struct {
	name   string
	typ    uint16
	ttl    uint32
	values []string
}

// apply records chs as wanted and rebuilds (sharing a rebuild with
// concurrent changes); on failure what it changed is wanted no more.
func (b *Backend) apply(ctx context.Context, chs []change) error {
	b.mu.Lock()
	if err := b.load(); err != nil {
		b.mu.Unlock()
		return err
	}
	b.gen++
	my := b.gen
	for _, c := range chs {
		k := key(c.name, c.typ)
		if len(c.values) == 0 {
			delete(b.want, k)
			continue
		}
		b.want[k] = &rrset{name: c.name, typ: c.typ, ttl: c.ttl, values: slices.Clone(c.values), gen: my}
	}
	b.mu.Unlock()
	return b.commit(ctx, my, chs)
}

// commit returns once change my is in data.cdb, or failed.
func (b *Backend) commit(ctx context.Context, my uint64, chs []change) error {
	b.build.Lock()
	defer b.build.Unlock()
	b.mu.Lock()
	switch {
	case b.built >= my:
		b.mu.Unlock()
		return nil
	case b.failed >= my:
		err := b.failErr
		b.mu.Unlock()
		return err
	}
	snap, gen, written := clone(b.want), b.gen, b.written // written changes only under b.build, held
	b.mu.Unlock()
	b.builds++
	err := b.rebuild(ctx, snap, written)
	b.mu.Lock()
	defer b.mu.Unlock()
	if err == nil {
		b.written, b.built = snap, gen
		return nil
	}
	// Undo the changes of this rebuild: those made up to gen.
	for k, s := range b.want {
		if s.gen <= gen {
			if w, ok := b.written[k]; ok {
				b.want[k] = w
			} else {
				delete(b.want, k)
			}
		}
	}
	for k, w := range b.written {
		if _, ok := b.want[k]; !ok {
			b.want[k] = w
		}
	}
	b.failed, b.failErr = gen, err
	return err
}

// rebuild writes data with want's block and runs tinydns-data on it in
// the scratch directory; only then it renames data.cdb and data into the
// root.
func (b *Backend) rebuild(ctx context.Context, want, written map[string]*rrset) error {
	dataPath := filepath.Join(b.Root, "data")
	old, err := os.ReadFile(dataPath)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return b.fail(failIO, err)
	}
	mode := os.FileMode(0o644)
	if fi, err := os.Stat(dataPath); err == nil {
		mode = fi.Mode().Perm()
	}
	scratch := filepath.Join(b.Root, ".sshdyn")
	if err := os.MkdirAll(scratch, 0o755); err != nil {
		return b.fail(failIO, err)
	}
	data, err := compose(old, want, written)
	if err != nil {
		return b.fail(failBlock, fmt.Errorf("%s: %w; data and data.cdb left as they were", dataPath, err))
	}
	if err := writeSynced(filepath.Join(scratch, "data"), data, mode); err != nil {
		return b.fail(failIO, err)
	}
	prog := b.Program
	if prog == "" {
		prog = Program()
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), buildTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, prog)
	cmd.Dir = scratch
	if out, err := cmd.CombinedOutput(); err != nil {
		// The operator's data (or sshdyn's lines) did not compile: data
		// and data.cdb stay as they were.
		return b.fail(failBuild, fmt.Errorf("tinydns-data failed (data.cdb left as it was): %v: %s", err, strings.TrimSpace(string(out))))
	}
	if err := os.Rename(filepath.Join(scratch, "data.cdb"), filepath.Join(b.Root, "data.cdb")); err != nil {
		return b.fail(failIO, err)
	}
	if err := os.Rename(filepath.Join(scratch, "data"), dataPath); err != nil {
		return b.fail(failIO, err)
	}
	return nil
}

// Program returns the path of tinydns-data: on PATH, else /usr/sbin's.
func Program() string {
	if p, err := exec.LookPath("tinydns-data"); err == nil {
		return p
	}
	return "/usr/sbin/tinydns-data"
}

func writeSynced(path string, data []byte, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

var _ backend.Backend = (*Backend)(nil)

// current returns what sshdyn wants for name's RRset of type t, and what
// data.cdb serves.
func (b *Backend) current(name string, t uint16) (want *rrset, served []string, ttl uint32, err error) {
	b.mu.Lock()
	err = b.load()
	if w := b.want[key(name, t)]; w != nil {
		c := *w
		want = &c
	}
	b.mu.Unlock()
	if err != nil {
		return nil, nil, 0, err
	}
	served, ttl, err = b.served(name, t)
	return want, served, ttl, err
}

// settled reports whether name's RRset of type t is values both in
// sshdyn's block and in data.cdb. TTLs are not compared (backend's TTL
// policy): a change writes the TTL asked for.
func settled(want *rrset, served []string, values []string) bool {
	same := func(a, b []string) bool {
		a, b = slices.Clone(a), slices.Clone(b)
		slices.Sort(a)
		slices.Sort(b)
		return slices.Equal(a, b)
	}
	mine := want != nil && same(want.values, values) || want == nil && len(values) == 0
	return mine && same(served, values)
}

// Set is backend.Backend's: the records that differ, in sshdyn's block
// or in data.cdb, are written as one change: one rebuild, all or
// nothing.
func (b *Backend) Set(ctx context.Context, recs []backend.Record, allow func() error) []backend.Result {
	out := make([]backend.Result, len(recs))
	var chs []change
	var changed []int
	for i, r := range recs {
		var values []string // none: a removal
		for _, a := range r.Want() {
			values = append(values, a.String())
		}
		t := dns.StringToType[r.Type()]
		want, served, _, err := b.current(r.Name, t)
		if err != nil {
			return backend.Each(len(recs), err)
		}
		if settled(want, served, values) {
			continue
		}
		for _, s := range served {
			out[i].Old = append(out[i].Old, netip.MustParseAddr(s))
		}
		chs = append(chs, change{name: strings.TrimSuffix(strings.ToLower(r.Name), "."), typ: t, ttl: r.TTL, values: values})
		changed = append(changed, i)
	}
	if len(chs) == 0 {
		return out
	}
	if allow != nil {
		if err := allow(); err != nil {
			return backend.Each(len(recs), err)
		}
	}
	if err := b.apply(ctx, chs); err != nil {
		return backend.Each(len(recs), err)
	}
	for _, i := range changed {
		r := recs[i]
		if r.Remove {
			// Written out of sshdyn's block; the operator's lines may
			// still hold it.
			served, _, err := b.served(r.Name, dns.StringToType[r.Type()])
			if err == nil && len(served) > 0 {
				err = b.fail(failKept, fmt.Errorf("%s %s is still %v after its removal", r.Name, r.Type(), served))
			}
			if err != nil {
				out[i] = backend.Result{Err: err}
				continue
			}
		}
		out[i].Changed = true
	}
	return out
}

// Lookup returns the A and AAAA records data.cdb holds for name.
func (b *Backend) Lookup(ctx context.Context, name string) ([]backend.Record, error) {
	var out []backend.Record
	for _, t := range []uint16{dns.TypeA, dns.TypeAAAA} {
		vals, ttl, err := b.served(name, t)
		if err != nil {
			return nil, err
		}
		for _, v := range vals {
			out = append(out, backend.Record{Name: name, Addr: netip.MustParseAddr(v), TTL: ttl})
		}
	}
	return out, nil
}

// LookupTXT returns the TXT strings data.cdb holds for name.
func (b *Backend) LookupTXT(ctx context.Context, name string) ([]string, error) {
	vals, _, err := b.served(name, dns.TypeTXT)
	return vals, err
}

// AddTXT adds value to name's TXT RRset in sshdyn's block.
func (b *Backend) AddTXT(ctx context.Context, name, value string, ttl uint32) (bool, error) {
	want, served, _, err := b.current(name, dns.TypeTXT)
	if err != nil {
		return false, err
	}
	var values []string
	if want != nil {
		values = want.values
	}
	if slices.Contains(values, value) && slices.Contains(served, value) {
		return false, nil
	}
	if !slices.Contains(values, value) {
		values = append(slices.Clone(values), value)
	}
	if err := b.apply(ctx, []change{{name: strings.TrimSuffix(strings.ToLower(name), "."), typ: dns.TypeTXT, ttl: ttl, values: values}}); err != nil {
		return false, err
	}
	return true, nil
}

// RemoveTXT removes value from name's TXT RRset in sshdyn's block.
func (b *Backend) RemoveTXT(ctx context.Context, name, value string) (bool, error) {
	want, served, _, err := b.current(name, dns.TypeTXT)
	if err != nil {
		return false, err
	}
	if (want == nil || !slices.Contains(want.values, value)) && !slices.Contains(served, value) {
		return false, nil
	}
	var values []string
	ttl := uint32(0)
	if want != nil {
		values = slices.DeleteFunc(slices.Clone(want.values), func(v string) bool { return v == value })
		ttl = want.ttl
	}
	if err := b.apply(ctx, []change{{name: strings.TrimSuffix(strings.ToLower(name), "."), typ: dns.TypeTXT, ttl: ttl, values: values}}); err != nil {
		return false, err
	}
	return true, nil
}

// sshfpWire is the RDATA of an SSHFP record's data ("alg type hex").
func sshfpWire(v string) []byte {
	var alg, typ uint8
	var fp []byte
	if _, err := fmt.Sscanf(v, "%d %d %x", &alg, &typ, &fp); err != nil {
		return nil
	}
	return append([]byte{alg, typ}, fp...)
}

// SetRRset is backend.RRsetter's: SSHFP records, as generic lines of
// sshdyn's block.
func (b *Backend) SetRRset(ctx context.Context, set backend.RRset) (bool, error) {
	t := dns.StringToType[set.Type]
	if t != dns.TypeSSHFP {
		return false, &backend.Error{Kind: backend.KindOther, Backend: "tinydns root " + b.Root, Zone: b.Zone, Err: fmt.Errorf("sshdyn writes no %s records to tinydns", set.Type)}
	}
	values := make([]string, 0, len(set.Data))
	for _, d := range set.Data {
		w := sshfpWire(d)
		if len(w) < 3 {
			return false, &backend.Error{Kind: backend.KindOther, Backend: "tinydns root " + b.Root, Zone: b.Zone, Err: fmt.Errorf("SSHFP data %q", d)}
		}
		values = append(values, backend.SSHFPData(w[0], w[1], w[2:]))
	}
	want, served, _, err := b.current(set.Name, t)
	if err != nil {
		return false, err
	}
	if settled(want, served, values) {
		return false, nil
	}
	name := strings.TrimSuffix(strings.ToLower(set.Name), ".")
	if err := b.apply(ctx, []change{{name: name, typ: t, ttl: set.TTL, values: values}}); err != nil {
		return false, err
	}
	if len(values) == 0 {
		if served, _, err := b.served(name, t); err != nil || len(served) > 0 {
			if err == nil {
				err = b.fail(failKept, fmt.Errorf("%s SSHFP is still %v after its removal", name, served))
			}
			return true, err
		}
	}
	return true, nil
}

// LookupRRset is backend.RRsetter's: what data.cdb holds.
func (b *Backend) LookupRRset(ctx context.Context, name, t string) ([]string, error) {
	vals, _, err := b.served(name, dns.StringToType[t])
	return vals, err
}

var _ backend.RRsetter = (*Backend)(nil)

// Check proves, changing nothing sshdyn serves, that the root is
// writable and that tinydns-data compiles its data as sshdyn would write
// it (with sshdyn's block as it is).
func (b *Backend) Check() error {
	b.mu.Lock()
	err := b.load()
	want, written := clone(b.want), clone(b.written)
	b.mu.Unlock()
	if err != nil {
		return err
	}
	scratch := filepath.Join(b.Root, ".sshdyn-check")
	defer os.RemoveAll(scratch)
	data, err := os.ReadFile(filepath.Join(b.Root, "data"))
	if err != nil {
		return err
	}
	if err := os.MkdirAll(scratch, 0o755); err != nil {
		return fmt.Errorf("tinydns root %s is not writable: %w", b.Root, err)
	}
	composed, err := compose(data, want, written)
	if err != nil {
		return fmt.Errorf("%s: %w", filepath.Join(b.Root, "data"), err)
	}
	if err := os.WriteFile(filepath.Join(scratch, "data"), composed, 0o644); err != nil {
		return fmt.Errorf("tinydns root %s is not writable: %w", b.Root, err)
	}
	cmd := exec.Command(Program())
	cmd.Dir = scratch
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("tinydns-data does not compile %s: %v: %s", filepath.Join(b.Root, "data"), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// Open returns the backend of zone in the tinydns root, which must hold
// a data file.
func Open(root, zone string) (*Backend, error) {
	if _, err := os.Stat(filepath.Join(root, "data")); err != nil {
		return nil, fmt.Errorf("zone %s: tinydns_root: %w", zone, err)
	}
	return &Backend{Root: root, Zone: zone}, nil
}

// Report says what check found: nothing beyond the data file Open saw.
func (b *Backend) Report() []string { return nil }

// Probe is Check, for check --dns.
func (b *Backend) Probe(ctx context.Context, note func(format string, args ...any)) error {
	if err := b.Check(); err != nil {
		return err
	}
	note("tinydns root %s: writable, and tinydns-data compiles its data", b.Root)
	return nil
}

// Close does nothing: a tinydns root holds nothing open.
func (b *Backend) Close() error { return nil }
