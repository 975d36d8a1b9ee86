//go:build unix

package authorized

import (
	"io/fs"
	"syscall"
)

// inode returns the file's inode number: a file replaced by rename has a
// new one, even with the same size and mtime.
func inode(fi fs.FileInfo) uint64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return uint64(st.Ino)
	}
	return 0
}
