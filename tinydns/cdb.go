package tinydns

import (
	"encoding/binary"
	"errors"
	"os"
)

// cdbGet returns every value stored under key in the cdb file at path
// (D. J. Bernstein's constant database, which tinydns-data writes):
// hash h = 5381, h = h*33 ^ c; table h%256 in the 2048-byte header holds
// (position, slots); slot (h>>8)%slots onward, linear probing, each slot
// (hash, record position); a record is (key length, data length, key,
// data). All numbers little-endian uint32.
func cdbGet(path string, key []byte) ([][]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if len(b) < 2048 {
		return nil, errors.New("data.cdb: shorter than its header")
	}
	h := uint32(5381)
	for _, c := range key {
		h = (h<<5 + h) ^ uint32(c)
	}
	u32 := func(at uint32) (uint32, bool) {
		if uint64(at)+4 > uint64(len(b)) {
			return 0, false
		}
		return binary.LittleEndian.Uint32(b[at:]), true
	}
	tpos, _ := u32((h % 256) * 8)
	slots, _ := u32((h%256)*8 + 4)
	var out [][]byte
	for i := uint32(0); i < slots; i++ {
		slot := tpos + ((h>>8)%slots+i)%slots*8
		sh, ok1 := u32(slot)
		rpos, ok2 := u32(slot + 4)
		if !ok1 || !ok2 {
			return nil, errors.New("data.cdb: corrupt")
		}
		if rpos == 0 {
			break
		}
		if sh != h {
			continue
		}
		klen, ok1 := u32(rpos)
		dlen, ok2 := u32(rpos + 4)
		start := uint64(rpos) + 8
		if !ok1 || !ok2 || start+uint64(klen)+uint64(dlen) > uint64(len(b)) {
			return nil, errors.New("data.cdb: corrupt")
		}
		if string(b[start:start+uint64(klen)]) == string(key) {
			v := start + uint64(klen)
			out = append(out, b[v:v+uint64(dlen)])
		}
	}
	return out, nil
}
