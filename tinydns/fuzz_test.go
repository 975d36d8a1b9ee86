package tinydns

import (
	"bytes"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
)

// FuzzOperatorLines: the property of audit finding H3. For any data file
// and any sequence of sshdyn's writes, a write either is refused (and
// nothing is written) or keeps every byte outside sshdyn's block as it
// was, and the block reads back as exactly what sshdyn wanted.
func FuzzOperatorLines(f *testing.F) {
	f.Add([]byte("+www.example.com:192.0.2.1:300\n"), []byte{1, 2, 3})
	f.Add([]byte("#"+strings.Repeat("x", 70000)+"\n.example.com::ns.example.com\r\n"), []byte{7, 0, 9})
	f.Add([]byte("a\n"+begin+"\n+h1.example.com:192.0.2.1:60\n"+end+"\nz"), []byte{4})
	f.Add([]byte(begin+"\n"), []byte{1})
	f.Add([]byte(end+"\n"+begin+"\n"+end+"\n"+end+"\n"), []byte{2, 200})
	// A name with an empty label once read back as another name (CI found it).
	f.Add([]byte(begin+"\n'...:x:60\n"+end+"\n"), []byte{1})
	f.Add([]byte(begin+"\n+a..b.example.com:192.0.2.1:60\n"+end+"\n"), []byte{1})
	f.Fuzz(func(t *testing.T, data, ops []byte) {
		// What a start reads back (as load does).
		written := map[string]*rrset{}
		l, err := cut(data)
		if err == nil {
			for _, line := range l.block {
				if s, ok := parseLine(line); ok {
					if old := written[key(s.name, s.typ)]; old != nil {
						old.values = append(old.values, s.values...)
					} else {
						written[key(s.name, s.typ)] = s
					}
				}
			}
		}
		want := clone(written)
		for _, op := range ops {
			name := fmt.Sprintf("h%d.example.com", op%8)
			switch {
			case op&0x80 != 0:
				delete(want, key(name, 1))
			default:
				want[key(name, 1)] = &rrset{name: name, typ: 1, ttl: 60, values: []string{fmt.Sprintf("192.0.2.%d", op)}}
			}
			out, err := compose(data, want, written)
			if err != nil {
				continue // refused: nothing written
			}
			before, err := cut(data)
			if err != nil {
				t.Fatalf("compose accepted data that cut refuses: %v", err)
			}
			after, err := cut(out)
			if err != nil {
				t.Fatalf("compose wrote data it cannot read back: %v", err)
			}
			head := before.head
			if len(head) > 0 && head[len(head)-1] != '\n' {
				head = append(slices.Clip(head), '\n')
			}
			if !bytes.Equal(after.head, head) || !bytes.Equal(after.tail, before.tail) {
				t.Fatalf("the operator's bytes changed:\nhead %q -> %q\ntail %q -> %q", before.head, after.head, before.tail, after.tail)
			}
			got := map[string]*rrset{}
			for _, line := range after.block {
				s, ok := parseLine(line)
				if !ok {
					t.Fatalf("sshdyn wrote a line it cannot read: %q", line)
				}
				if old := got[key(s.name, s.typ)]; old != nil {
					old.values = append(old.values, s.values...)
				} else {
					got[key(s.name, s.typ)] = s
				}
			}
			if !maps.EqualFunc(got, want, func(a, b *rrset) bool {
				return a.ttl == b.ttl && slices.Equal(slices.Sorted(slices.Values(a.values)), slices.Sorted(slices.Values(b.values)))
			}) {
				t.Fatalf("the block reads back as %v, want %v", got, want)
			}
			data, written = out, clone(want)
		}
	})
}
