package tinydns

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
)

// layout is a data file cut around sshdyn's block. head and tail are the
// operator's bytes, exactly as they are on disk: a rebuild writes them
// back byte for byte, whatever their lines hold (a line of any length,
// a carriage return, no newline at the end).
type layout struct {
	head, tail []byte
	block      []string // the lines between the markers
	blockLine  int      // the line number of the first of them
	found      bool     // data has a block
}

// cut finds sshdyn's block in data. A begin marker with no end marker
// after it, or a second begin marker, is an error: sshdyn cannot tell
// which lines after it are the operator's, and will not guess (it used
// to drop or adopt them: audit finding H3).
func cut(data []byte) (layout, error) {
	var l layout
	beginAt, beginLine := -1, 0
	for pos, n := 0, 1; pos < len(data); n++ {
		next := len(data)
		if i := bytes.IndexByte(data[pos:], '\n'); i >= 0 {
			next = pos + i + 1
		}
		line := string(bytes.TrimSuffix(data[pos:next], []byte("\n")))
		switch {
		case line == begin && beginAt >= 0:
			return l, fmt.Errorf("data lines %d and %d both begin sshdyn's block: remove one, with its lines", beginLine, n)
		case line == begin:
			beginAt, beginLine = pos, n
			l.blockLine = n + 1
		case line == end && beginAt >= 0 && !l.found:
			l.head, l.tail, l.found = data[:beginAt], data[next:], true
		case beginAt >= 0 && !l.found:
			l.block = append(l.block, line)
		}
		pos = next
	}
	switch {
	case beginAt >= 0 && !l.found:
		return l, fmt.Errorf("data line %d begins sshdyn's block, and no %q line ends it: put that line back after sshdyn's lines (sshdyn will not guess which of the lines below are yours)", beginLine, end)
	case !l.found:
		l.head = data
	}
	return l, nil
}

// compose returns data with its block (added at the end if it has none)
// holding want's lines. It refuses, changing nothing, when the block
// holds a line sshdyn did not write: a line not in sshdyn's formats, or
// a record that is not in written (what the last rebuild wrote, or the
// block as it was first read). A line sshdyn did not write is never
// dropped.
func compose(data []byte, want, written map[string]*rrset) ([]byte, error) {
	l, err := cut(data)
	if err != nil {
		return nil, err
	}
	for i, line := range l.block {
		if strings.TrimSpace(line) == "" {
			continue
		}
		s, ok := parseLine(line)
		if !ok {
			return nil, fmt.Errorf("data line %d, inside sshdyn's block, is not one sshdyn writes: move it above %q or below %q", l.blockLine+i, begin, end)
		}
		if w := written[key(s.name, s.typ)]; w == nil || !slices.Contains(w.values, s.values[0]) {
			return nil, fmt.Errorf("data line %d, inside sshdyn's block, was not written by sshdyn: move it out of the block, or restart sshdyn to make the block's lines its own", l.blockLine+i)
		}
	}
	var b bytes.Buffer
	b.Write(l.head)
	if len(l.head) > 0 && l.head[len(l.head)-1] != '\n' {
		b.WriteByte('\n') // the operator's last line had no newline
	}
	b.WriteString(begin + "\n")
	for _, line := range lines(want) {
		b.WriteString(line + "\n")
	}
	b.WriteString(end + "\n")
	b.Write(l.tail)
	return b.Bytes(), nil
}
