//go:build unix

package watch

import (
	"io/fs"
	"syscall"
)

// inode returns fi's inode number: a file replaced by rename is another
// file, even with the same size and modification time.
func inode(fi fs.FileInfo) uint64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return uint64(st.Ino)
	}
	return 0
}
