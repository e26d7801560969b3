package objstore

import (
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// recycler keeps the files of deleted objects so that later Puts into the
// same directory overwrite them instead of creating new files.
//
// Creating and deleting a file per object is what a local directory store
// spends its CPU on under load: ext4 without a journal (the file system of
// this machine class) scans every recently freed inode of a block group on
// each create, and with the discard mount option every unlinked block is
// trimmed. A deleted object's file renamed aside and later renamed back under
// a new name keeps its inode and its blocks.
//
// Pooled files live in their object's directory under reserved temporary
// names (".<hex>.tmp"), so List never reports them, a Put's final directory
// fsync covers both the rename out of the pool and into place, and a crash
// leaves only temporary files that a later Open removes once they are stale.
// A pooled file is never reused after a restart. The pool is bounded in files
// and bytes; the oldest entry is unlinked to make room.
type recycler struct {
	mu    sync.Mutex
	files []pooledFile // oldest first
	bytes int64
	seq   atomic.Uint64
}

type pooledFile struct {
	dir, path string
	size      int64
}

// Pool bounds: enough for the intake objects deleted between two Puts under
// sustained load, little enough that the disk space they hold is noise.
const (
	recycleMaxFiles = 1024
	recycleMaxBytes = 1 << 30
)

// tempName returns a fresh reserved temporary name for base in dir.
func (r *recycler) tempName(dir, base string) string {
	n := uint64(time.Now().UnixNano()) + r.seq.Add(1)
	return filepath.Join(dir, base+"."+strconv.FormatUint(n, 16)+".tmp")
}

// take moves a pooled file of dir to tmp and returns its size, or returns
// false if dir has none (or every candidate vanished: another process's Open
// may have removed it as a stale temporary file).
func (r *recycler) take(dir, tmp string) (int64, bool) {
	for {
		r.mu.Lock()
		i := len(r.files) - 1
		for i >= 0 && r.files[i].dir != dir {
			i--
		}
		if i < 0 {
			r.mu.Unlock()
			return 0, false
		}
		f := r.files[i]
		r.files = append(r.files[:i], r.files[i+1:]...)
		r.bytes -= f.size
		r.mu.Unlock()
		if os.Rename(f.path, tmp) == nil {
			return f.size, true
		}
	}
}

// give pools path, the file of a deleted object in dir, or unlinks it if it
// is too large to pool or beingRead(path) says a read has it open: a pooled
// file is overwritten by the next Put, and that read would return the new
// object's bytes. The question is asked after the file has left path, so a
// read that starts later cannot open it. Entries evicted to make room are
// unlinked.
func (r *recycler) give(dir, path string, size int64, beingRead func(path string) bool) error {
	if size > recycleMaxBytes/4 {
		return os.Remove(path)
	}
	pooled := r.tempName(dir, "recycled")
	if err := os.Rename(path, pooled); err != nil {
		return err
	}
	if beingRead(path) {
		return os.Remove(pooled)
	}
	// A fresh modification time keeps another process's Open from taking
	// the file for a stale temporary one while it is pooled.
	now := time.Now()
	_ = os.Chtimes(pooled, now, now)
	r.mu.Lock()
	r.files = append(r.files, pooledFile{dir: dir, path: pooled, size: size})
	r.bytes += size
	var evicted []pooledFile
	for len(r.files) > recycleMaxFiles || r.bytes > recycleMaxBytes {
		evicted = append(evicted, r.files[0])
		r.bytes -= r.files[0].size
		r.files = r.files[1:]
	}
	r.mu.Unlock()
	for _, f := range evicted {
		_ = os.Remove(f.path)
	}
	return nil
}

// drain unlinks every pooled file.
func (r *recycler) drain() {
	r.mu.Lock()
	files := r.files
	r.files, r.bytes = nil, 0
	r.mu.Unlock()
	for _, f := range files {
		_ = os.Remove(f.path)
	}
}
