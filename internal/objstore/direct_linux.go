package objstore

import (
	"errors"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// directAlign is the alignment O_DIRECT asks of buffers, offsets and
// lengths on the file systems the store runs on (their logical block size
// is at most a page).
const directAlign = 4096

// writeDirect writes data to f, a new or truncated file, with O_DIRECT: the
// whole blocks a step at a time, each waiting for pace, then the last
// partial block through the page cache. It reports false, having written
// nothing, where O_DIRECT cannot be used: a small object, a buffer not
// aligned to a block, or a file system that refuses it (tmpfs before Linux
// 6.6, some network file systems). The caller then writes the usual way.
func writeDirect(f *os.File, data []byte, pace pacer) (bool, error) {
	whole := len(data) &^ (directAlign - 1)
	if whole < writeStep || uintptr(unsafe.Pointer(unsafe.SliceData(data)))%directAlign != 0 {
		return false, nil
	}
	fd := int(f.Fd())
	flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0)
	if err != nil {
		return false, nil
	}
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_SETFL, flags|unix.O_DIRECT); err != nil {
		return false, nil
	}
	for off := 0; off < whole; {
		end := min(off+writeStep, whole)
		n, err := unix.Pwrite(fd, data[off:end], int64(off))
		if errors.Is(err, unix.EINVAL) && off == 0 {
			// Refused on the first write (an alignment the file system
			// wants larger): nothing is written, go the usual way.
			_, _ = unix.FcntlInt(uintptr(fd), unix.F_SETFL, flags)
			return false, nil
		}
		if err != nil {
			return true, err
		}
		off += n
		if err := pace.wait(off); err != nil {
			return true, err
		}
	}
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_SETFL, flags); err != nil {
		return true, err
	}
	if whole < len(data) {
		if _, err := unix.Pwrite(fd, data[whole:], int64(whole)); err != nil {
			return true, err
		}
	}
	return true, nil
}
