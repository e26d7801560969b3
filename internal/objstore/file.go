package objstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"gocloud.dev/blob/fileblob"
)

// fileStore is the local directory store: fileblob made durable and cheap
// to write.
//
// fileblob (gocloud.dev v0.47) writes an object to a temporary file, closes
// it and renames it into place, fsyncing neither the file nor the directory,
// so a machine crash can lose an object whose Put had returned, or leave it
// empty. fileStore keeps fileblob for Get and writes objects itself, the same
// way but durably:
//
//  1. the data goes to a temporary file next to the object (so the rename
//     never crosses file systems), a recycled file of a deleted object when
//     the directory has one (see recycler);
//  2. the temporary file is fsync'd;
//  3. it is renamed into place, and the object's directory is fsync'd, and
//     so is the parent of every directory the Put may have created, up to
//     the root.
//
// No attribute side files are written or read: fileblob's cost an MD5 pass
// and an extra file per object, and Runnel needs no attributes.
type fileStore struct {
	bucketStore
	root string
	pool recycler
	// synced records directories whose own entry in their parent is known
	// to be durable, so their parents are fsync'd only once.
	synced sync.Map
	// dirSyncs coalesces concurrent fsyncs of one directory (dirsync.go).
	dirSyncs sync.Map
	// onSync, if set, is called after an object's temporary file has been
	// fsync'd (tests use it to prove the order of the steps).
	onSync func(tmpName string)
	// onOpen, if set, is called when a read has opened an object's file
	// and before it reads (tests use it to race a Delete and a Put).
	onOpen func(key string)

	// reading counts the reads in flight per object path. A deleted
	// object's file is recycled only if none is reading it: a read keeps
	// reading the file it opened, and a recycled file is overwritten in
	// place by the next Put, which would serve that read another object's
	// bytes. A file being read is unlinked instead (the read keeps its
	// inode).
	readMu  sync.Mutex
	reading map[string]int
}

// tempRe matches fileblob's temporary file names: "<key>.<hex nanos>.tmp".
var tempRe = regexp.MustCompile(`\.[0-9a-f]+\.tmp$`)

// staleTempAge is how old a left-over temporary file must be before Open
// removes it; younger ones may belong to a Put in flight in another process
// sharing the directory.
const staleTempAge = time.Hour

func openFile(dir string) (Store, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("objstore: open %q: %w", dir, err)
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return nil, fmt.Errorf("objstore: open %q: %w", abs, err)
	}
	// Make the root's own entry durable.
	if err := syncDir(filepath.Dir(abs)); err != nil {
		return nil, fmt.Errorf("objstore: open %q: %w", abs, err)
	}
	b, err := fileblob.OpenBucket(abs, &fileblob.Options{
		NoTempDir: true,
		Metadata:  fileblob.MetadataDontWrite,
	})
	if err != nil {
		return nil, fmt.Errorf("objstore: open %q: %w", abs, err)
	}
	s := &fileStore{bucketStore: bucketStore{b: b}, root: abs}
	if err := s.removeStaleTemps(); err != nil {
		_ = b.Close()
		return nil, err
	}
	return s, nil
}

func (s *fileStore) checkFileKey(ctx context.Context, key string) error {
	if err := s.check(ctx, key); err != nil {
		return err
	}
	if tempRe.MatchString(key) {
		return fmt.Errorf("%w %q: names ending in .<hex>.tmp are reserved for temporary files", ErrInvalidKey, key)
	}
	return nil
}

// Put writes the object durably; see fileStore.
func (s *fileStore) Put(ctx context.Context, key string, data []byte) error {
	if err := s.checkFileKey(ctx, key); err != nil {
		return err
	}
	path := filepath.Join(s.root, filepath.FromSlash(key))
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return wrap("put", key, err)
	}
	tmp := s.pool.tempName(dir, filepath.Base(path))
	if err := s.writeTemp(dir, tmp, data, pacer{ctx, WritePace(ctx), time.Now()}, UncachedWrite(ctx)); err != nil {
		_ = os.Remove(tmp)
		return wrap("put", key, err)
	}
	if err := ctx.Err(); err != nil {
		_ = os.Remove(tmp)
		return wrap("put", key, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		_ = os.Remove(tmp)
		return wrap("put", key, err)
	}
	if err := s.syncDirs(dir); err != nil {
		return wrap("put", key, err)
	}
	return nil
}

// writeTemp writes data to the temporary file tmp in dir and fsyncs it,
// spreading the steps of a large object as pace asks; with direct, past
// the page cache where it can (writeDirect).
func (s *fileStore) writeTemp(dir, tmp string, data []byte, pace pacer, direct bool) error {
	var f *os.File
	if size, ok := s.pool.take(dir, tmp); ok {
		var err error
		if f, err = os.OpenFile(tmp, os.O_WRONLY, 0); err != nil {
			return err
		}
		// Overwrite the old blocks in place. Cutting the file at the last
		// whole page the new data fills first means the partial page at
		// its end is past the end of the file, so writing it needs no read.
		if n := int64(len(data)); size > n {
			if err := f.Truncate(n &^ (pageSize - 1)); err != nil {
				_ = f.Close()
				return err
			}
		}
	} else {
		var err error
		if f, err = os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644); err != nil {
			return err
		}
	}
	if direct {
		wrote, err := writeDirect(f, data, pace)
		if err != nil {
			_ = f.Close()
			return err
		}
		if wrote {
			return s.syncTemp(f)
		}
	}
	// Write large objects a step at a time and wait for each step's
	// writeback, so the device never holds more than one step of this
	// object ahead of other writers' fsyncs (a 16 MiB segment flushed at
	// once would stall a small intake object's fsync behind it).
	for off := 0; off < len(data); off += writeStep {
		end := min(off+writeStep, len(data))
		if _, err := f.Write(data[off:end]); err != nil {
			_ = f.Close()
			return err
		}
		if len(data) > writeStep {
			writeBehind(f, int64(off), int64(end-off))
			if err := pace.wait(end); err != nil {
				_ = f.Close()
				return err
			}
		}
	}
	return s.syncTemp(f)
}

// syncTemp fsyncs and closes a written temporary file.
func (s *fileStore) syncTemp(f *os.File) error {
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return fmt.Errorf("fsync: %w", err)
	}
	if s.onSync != nil {
		s.onSync(f.Name())
	}
	return f.Close()
}

// pageSize is the page size assumed for in-place overwrites; a wrong guess
// costs only a read of one block.
const pageSize = 4096

// syncDirs fsyncs dir, then the parent of each directory from dir up to the
// root whose entry is not yet known to be durable.
func (s *fileStore) syncDirs(dir string) error {
	if err := s.dirSyncFor(dir).sync(dir, syncDir); err != nil {
		return err
	}
	for d := dir; d != s.root && strings.HasPrefix(d, s.root); d = filepath.Dir(d) {
		if _, ok := s.synced.Load(d); ok {
			break
		}
		if err := syncDir(filepath.Dir(d)); err != nil {
			return err
		}
		s.synced.Store(d, true)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("fsync dir: %w", err)
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("fsync dir %s: %w", dir, err)
	}
	return nil
}

// Close unlinks the pooled files and closes the store.
func (s *fileStore) Close() error {
	if s.closed.Load() {
		return nil
	}
	s.pool.drain()
	return s.bucketStore.Close()
}

// Get reads the file directly, like GetRange, so that a Delete sees the
// read in flight (see reading).
func (s *fileStore) Get(ctx context.Context, key string) ([]byte, error) {
	if err := s.checkFileKey(ctx, key); err != nil {
		return nil, err
	}
	return s.read(key, 0, -1)
}

// GetRange reads the file directly: fileblob's range reader also looks for
// an attributes file and re-opens per read, which dominated the cost of the
// many small ranged reads archival and fetch make.
func (s *fileStore) GetRange(ctx context.Context, key string, off, length int64) ([]byte, error) {
	if err := s.checkFileKey(ctx, key); err != nil {
		return nil, err
	}
	if off < 0 || length < 0 {
		return nil, fmt.Errorf("objstore: get %q [%d, +%d): %w", key, off, length, ErrOutOfRange)
	}
	return s.read(key, off, length)
}

// read returns length bytes of key's file from off, or the whole file for a
// negative length, registered as a read in flight while the file is open.
func (s *fileStore) read(key string, off, length int64) ([]byte, error) {
	path := filepath.Join(s.root, filepath.FromSlash(key))
	s.readMu.Lock()
	if s.reading == nil {
		s.reading = map[string]int{}
	}
	s.reading[path]++
	s.readMu.Unlock()
	defer func() {
		s.readMu.Lock()
		if s.reading[path]--; s.reading[path] == 0 {
			delete(s.reading, path)
		}
		s.readMu.Unlock()
	}()
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
			return nil, fmt.Errorf("objstore: get %q: %w", key, ErrNotFound)
		}
		return nil, fmt.Errorf("objstore: get %q: %w", key, err)
	}
	defer f.Close()
	if s.onOpen != nil {
		s.onOpen(key)
	}
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("objstore: get %q: %w", key, err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("objstore: get %q: %w", key, ErrNotFound)
	}
	if length < 0 {
		length = st.Size()
	}
	if off+length > st.Size() {
		return nil, fmt.Errorf("objstore: get %q [%d, +%d) of %d bytes: %w", key, off, length, st.Size(), ErrOutOfRange)
	}
	buf := make([]byte, length)
	if _, err := f.ReadAt(buf, off); err != nil && !(errors.Is(err, io.EOF) && length == 0) {
		return nil, fmt.Errorf("objstore: get %q: %w", key, err)
	}
	return buf, nil
}

// beingRead reports whether a read of path is in flight.
func (s *fileStore) beingRead(path string) bool {
	s.readMu.Lock()
	defer s.readMu.Unlock()
	return s.reading[path] > 0
}

// Delete removes the object's key; its file goes to the recycler's pool or
// is unlinked. A directory at the key's path (the key
// is a prefix of other keys) is a missing object, not an error. Empty
// directories are left in place: removing them could race with a Put that
// has just created the directory for its temporary file.
func (s *fileStore) Delete(ctx context.Context, key string) error {
	if err := s.checkFileKey(ctx, key); err != nil {
		return err
	}
	path := filepath.Join(s.root, filepath.FromSlash(key))
	info, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) || (err == nil && info.IsDir()) {
		return nil
	}
	if err == nil {
		if info.Mode().IsRegular() {
			err = s.pool.give(filepath.Dir(path), path, info.Size(), s.beingRead)
		} else {
			err = os.Remove(path)
		}
	}
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("objstore: delete %q: %w", key, err)
	}
	return nil
}

// List walks the directory itself rather than using fileblob's listing,
// which walks in file-name order ("a/b" before "a-c", although '-' < '/')
// and re-walks the whole tree for every page. Visiting each directory's
// entries sorted with directories compared as "name/" yields keys in byte
// order while streaming.
func (s *fileStore) List(ctx context.Context, prefix string, fn func(ObjectInfo) error) error {
	if s.closed.Load() {
		return ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("objstore: list %q: %w", prefix, err)
	}
	// Start at the deepest directory the prefix names in full.
	start := ""
	if i := strings.LastIndex(prefix, "/"); i >= 0 {
		start = prefix[:i]
		if ValidateKey(start) != nil {
			return nil // no object can have this prefix
		}
	}
	err := s.walk(ctx, start, prefix, fn)
	if errors.Is(err, fs.ErrNotExist) && start != "" {
		return nil
	}
	return err
}

// walk lists rel (a key prefix that is a directory, "" for the root).
func (s *fileStore) walk(ctx context.Context, rel, prefix string, fn func(ObjectInfo) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("objstore: list %q: %w", prefix, err)
	}
	dir := filepath.Join(s.root, filepath.FromSlash(rel))
	entries, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) && rel != "" {
			return nil // removed while we walked
		}
		return fmt.Errorf("objstore: list %q: %w", prefix, err)
	}
	sortName := func(e fs.DirEntry) string {
		if e.IsDir() {
			return e.Name() + "/"
		}
		return e.Name()
	}
	slices.SortFunc(entries, func(a, b fs.DirEntry) int { return strings.Compare(sortName(a), sortName(b)) })
	for _, e := range entries {
		key := e.Name()
		if rel != "" {
			key = rel + "/" + key
		}
		if e.IsDir() {
			// Descend only if the directory can hold keys with the prefix.
			d := key + "/"
			if strings.HasPrefix(d, prefix) || strings.HasPrefix(prefix, d) {
				if err := s.walk(ctx, key, prefix, fn); err != nil {
					return err
				}
			}
			continue
		}
		if !strings.HasPrefix(key, prefix) || !e.Type().IsRegular() || tempRe.MatchString(key) {
			continue
		}
		info, err := e.Info()
		if errors.Is(err, fs.ErrNotExist) {
			continue // deleted while we walked
		}
		if err != nil {
			return fmt.Errorf("objstore: list %q: %w", prefix, err)
		}
		if err := fn(ObjectInfo{Key: key, Size: info.Size(), ModTime: info.ModTime()}); err != nil {
			return err
		}
	}
	return nil
}

// removeStaleTemps deletes temporary files left by Puts that crashed.
func (s *fileStore) removeStaleTemps() error {
	cutoff := time.Now().Add(-staleTempAge)
	err := filepath.WalkDir(s.root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if d.IsDir() || !tempRe.MatchString(d.Name()) {
			return nil
		}
		info, err := d.Info()
		if err != nil || info.ModTime().After(cutoff) {
			return nil
		}
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("objstore: open %q: removing stale temporary files: %w", s.root, err)
	}
	return nil
}

// writeStep is the size of the steps large objects are written in: about
// 1 ms of this machine class's device, the longest an intake object's fsync
// waits behind a segment being archived. At 1 MiB, produce p99 at 50 MB/s
// was 13 ms; at 256 KiB, 10 ms.
const writeStep = 256 << 10
