package zone

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"

	"github.com/miekg/dns"
)

// A diff is one change of the zone, from one SOA serial to the next: the
// records deleted and the records added (RFC 1995's unit). An update
// that changes the zone is one diff.
type diff struct {
	from, to *dns.SOA
	del, add []dns.RR // SOA records not included
}

// size is the records the diff holds, counting its two SOAs.
func (d *diff) size() int { return 2 + len(d.del) + len(d.add) }

// The journal is an append-only file beside the zone file (FILE.jnl): a
// header line, then one record per diff:
//
//	length  uint32, big endian: the payload's bytes
//	crc     uint32, big endian: CRC-32C of the payload
//	payload the from SOA, the to SOA, the number of deleted records
//	        (uint32), the deleted records, the added records; each
//	        record its uncompressed wire form after a uint32 length
//
// An update is acknowledged once its diff is appended and fsynced. The zone
// file is rewritten in the background (compact), after which the journal
// keeps only what the new file lacks. At start the journal's diffs that
// follow the zone file's serial are applied again (replay). A record cut
// short by a crash, which was never acknowledged, fails its length or CRC
// check and ends the journal there.
const journalHeader = "sshdyn journal 1\n"

// maxRecord bounds one journal record: far more than the 1,000 records
// of the largest update, far less than a corrupt length could ask.
const maxRecord = 64 << 20

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// journal is the open journal of one zone. Its methods are called with
// the zone's flushMu held.
type journal struct {
	path string
	f    *os.File // nil until the first append, and after a failed one
	size int64    // the bytes known good: header and whole records
}

func journalPath(zoneFile string) string { return zoneFile + ".jnl" }

// encode appends d's journal record to b.
func (d *diff) encode(b []byte) ([]byte, error) {
	start := len(b)
	b = append(b, make([]byte, 8)...)
	var err error
	put := func(rr dns.RR) {
		if err != nil {
			return
		}
		at := len(b)
		b = append(b, make([]byte, 4+dns.Len(rr))...)
		var n int
		// PackRR sets the record's RDLENGTH: pack a copy, the record
		// itself is shared with readers.
		n, err = dns.PackRR(dns.Copy(rr), b[at+4:], 0, nil, false)
		binary.BigEndian.PutUint32(b[at:], uint32(n))
		b = b[:at+4+n]
	}
	put(d.from)
	put(d.to)
	b = binary.BigEndian.AppendUint32(b, uint32(len(d.del)))
	for _, rr := range d.del {
		put(rr)
	}
	for _, rr := range d.add {
		put(rr)
	}
	if err != nil {
		return b[:start], err
	}
	payload := b[start+8:]
	binary.BigEndian.PutUint32(b[start:], uint32(len(payload)))
	binary.BigEndian.PutUint32(b[start+4:], crc32.Checksum(payload, castagnoli))
	return b, nil
}

// decodeDiff reads a record's payload.
func decodeDiff(p []byte) (*diff, error) {
	var err error
	next := func() dns.RR {
		if err != nil {
			return nil
		}
		if len(p) < 4 {
			err = io.ErrUnexpectedEOF
			return nil
		}
		n := binary.BigEndian.Uint32(p)
		if uint64(n) > uint64(len(p)-4) {
			err = io.ErrUnexpectedEOF
			return nil
		}
		var rr dns.RR
		rr, _, err = dns.UnpackRR(p[4:4+n], 0)
		p = p[4+n:]
		return rr
	}
	d := &diff{}
	from, _ := next().(*dns.SOA)
	to, _ := next().(*dns.SOA)
	if err == nil && (from == nil || to == nil) {
		err = errors.New("no SOA")
	}
	if err != nil {
		return nil, err
	}
	d.from, d.to = from, to
	if len(p) < 4 {
		return nil, io.ErrUnexpectedEOF
	}
	ndel := int(binary.BigEndian.Uint32(p))
	p = p[4:]
	for i := 0; len(p) > 0; i++ {
		rr := next()
		if err != nil {
			return nil, err
		}
		if i < ndel {
			d.del = append(d.del, rr)
		} else {
			d.add = append(d.add, rr)
		}
	}
	if len(d.del) != ndel {
		return nil, io.ErrUnexpectedEOF
	}
	return d, nil
}

// readJournal returns the diffs of the journal at path, none if there is
// no journal, and the length of its good part: a torn last record (a
// crash during an append) ends it.
func readJournal(path string) ([]*diff, int64, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, 0, err
	}
	diffs, good, err := decodeJournal(bufio.NewReaderSize(f, 1<<20), fi.Size())
	if err != nil {
		return nil, 0, fmt.Errorf("%s: %w", path, err)
	}
	return diffs, good, nil
}

// decodeJournal reads a journal of size bytes from r: readJournal.
func decodeJournal(r io.Reader, size int64) ([]*diff, int64, error) {
	head := make([]byte, len(journalHeader))
	if n, err := io.ReadFull(r, head); err != nil {
		if n == 0 || bytes.HasPrefix([]byte(journalHeader), head[:n]) {
			return nil, 0, nil // created, never written
		}
		return nil, 0, errors.New("not an sshdyn journal")
	}
	if string(head) != journalHeader {
		return nil, 0, errors.New("not an sshdyn journal")
	}
	good := int64(len(head))
	var diffs []*diff
	var hdr [8]byte
	for {
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			return diffs, good, nil // the end, or a torn header
		}
		n := binary.BigEndian.Uint32(hdr[:])
		if n > maxRecord || good+8+int64(n) > size {
			return diffs, good, nil // a length no record has, or past the end: torn
		}
		p := make([]byte, n)
		if _, err := io.ReadFull(r, p); err != nil || crc32.Checksum(p, castagnoli) != binary.BigEndian.Uint32(hdr[4:]) {
			return diffs, good, nil
		}
		d, err := decodeDiff(p)
		if err != nil {
			return nil, 0, fmt.Errorf("record at byte %d: %w", good, err)
		}
		diffs = append(diffs, d)
		good += 8 + int64(n)
	}
}

// open opens the journal for appending, cutting off what follows its
// good part (a record torn by a crash) and creating it with its header if
// need be.
func (j *journal) open() error {
	f, err := os.OpenFile(j.path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	if j.size < int64(len(journalHeader)) {
		j.size = 0
	}
	if err := f.Truncate(j.size); err != nil {
		f.Close()
		return err
	}
	if j.size == 0 {
		if _, err := f.WriteAt([]byte(journalHeader), 0); err != nil {
			f.Close()
			return err
		}
		j.size = int64(len(journalHeader))
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	j.f = f
	return syncDir(filepath.Dir(j.path))
}

// append writes the diffs' records at the end of the journal and fsyncs
// it: one write and one fsync for a whole group of updates. On failure
// the journal is closed, and the next append first cuts it back to its
// good part.
func (j *journal) append(diffs []*diff) error {
	if j.f == nil {
		if err := j.open(); err != nil {
			return err
		}
	}
	var b []byte
	for _, d := range diffs {
		var err error
		if b, err = d.encode(b); err != nil {
			return err
		}
	}
	_, err := j.f.WriteAt(b, j.size)
	if err == nil {
		err = j.f.Sync()
	}
	if err != nil {
		j.f.Close()
		j.f = nil
		return err
	}
	j.size += int64(len(b))
	return nil
}

// entries reports whether the journal holds any diff.
func (j *journal) entries() bool { return j.size > int64(len(journalHeader)) }

// dropBefore removes the journal's first off bytes of records (off is a
// record boundary): the zone file now holds them. What follows is copied
// into a new journal that replaces the old one crash-safely; with nothing
// after off the journal is cut back to its header.
func (j *journal) dropBefore(off int64) error {
	if j.f == nil {
		if err := j.open(); err != nil {
			return err
		}
	}
	if off >= j.size {
		j.size = int64(len(journalHeader))
		if err := j.f.Truncate(j.size); err != nil {
			j.f.Close()
			j.f = nil
			return err
		}
		return j.f.Sync()
	}
	rest := make([]byte, j.size-off)
	if _, err := j.f.ReadAt(rest, off); err != nil {
		return err
	}
	dir, base := filepath.Split(j.path)
	tmp, err := os.CreateTemp(dir, "."+base+".tmp-")
	if err != nil {
		return err
	}
	_, err = tmp.Write(append([]byte(journalHeader), rest...))
	if err == nil {
		err = tmp.Sync()
	}
	if err == nil {
		err = tmp.Chmod(0o600)
	}
	if err == nil {
		err = os.Rename(tmp.Name(), j.path)
	}
	if err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	j.f.Close()
	j.f = tmp
	j.size = int64(len(journalHeader) + len(rest))
	return syncDir(dir)
}

func (j *journal) close() error {
	if j.f == nil {
		return nil
	}
	err := j.f.Close()
	j.f = nil
	return err
}

func syncDir(dir string) error {
	if dir == "" {
		dir = "."
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
