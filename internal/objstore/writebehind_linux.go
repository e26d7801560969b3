package objstore

import (
	"os"

	"golang.org/x/sys/unix"
)

// writeBehind starts writeback of a just written range and waits for it
// (sync_file_range). It is only a pacing aid: the fsync after the last step
// is what makes the object durable, so errors are ignored.
func writeBehind(f *os.File, off, n int64) {
	_ = unix.SyncFileRange(int(f.Fd()), off, n,
		unix.SYNC_FILE_RANGE_WAIT_BEFORE|unix.SYNC_FILE_RANGE_WRITE|unix.SYNC_FILE_RANGE_WAIT_AFTER)
}
