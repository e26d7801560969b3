package tableflow

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strings"
	"time"

	iceio "github.com/apache/iceberg-go/io"

	"github.com/runnel-dev/runnel/internal/objstore"
)

// FileIO adapts an objstore.Store to iceberg-go's file IO, so tables live
// in Runnel's own object store. Iceberg metadata names files by URLs an
// outside engine can open (file:///abs/dir/warehouse/... for the file
// store, s3://bucket/prefix/warehouse/... for S3); FileIO maps such a URL
// to a store key by stripping the store's base URL. A name outside the base
// URL is an error, never a read or write somewhere else.
//
// Besides io.IO it implements the optional interfaces iceberg-go's write
// and maintenance paths look for: ReadFileIO, WriteFileIO (appends, row
// deltas, manifest rewrites), StatIO (manifest lengths, conflict checks),
// ListableIO (orphan-file removal) and BulkRemovableIO (snapshot expiry,
// orphan removal).
//
// iceberg-go's IO interfaces carry no context, so calls run under
// context.Background(): they end when the store call does.
type FileIO struct {
	store objstore.Store
	base  string // the store's root URL, without a trailing "/"
}

var (
	_ iceio.ReadFileIO      = (*FileIO)(nil)
	_ iceio.WriteFileIO     = (*FileIO)(nil)
	_ iceio.StatIO          = (*FileIO)(nil)
	_ iceio.ListableIO      = (*FileIO)(nil)
	_ iceio.BulkRemovableIO = (*FileIO)(nil)
)

// ErrOutsideStore means a file name is not under the store's base URL.
var ErrOutsideStore = errors.New("tableflow: location outside the object store")

// wholeReadLimit is the size up to which Open reads an object at once
// (metadata, manifests, manifest lists); larger files are read in ranges.
const wholeReadLimit = 1 << 20

// readAhead is how much a sequential Read of a large file fetches at a time.
const readAhead = 1 << 20

// NewFileIO returns a FileIO over store, whose root is baseURL
// (file:///abs/dir or s3://bucket/prefix).
func NewFileIO(store objstore.Store, baseURL string) *FileIO {
	return &FileIO{store: store, base: strings.TrimRight(baseURL, "/")}
}

// Location returns the URL of the object under key.
func (f *FileIO) Location(key string) string { return f.base + "/" + key }

// BaseURL returns the store's root URL (no trailing "/").
func (f *FileIO) BaseURL() string { return f.base }

// Key maps a file name to its store key. Names are full URLs under the
// base URL or bare keys ("warehouse/ns/t/data/x.parquet"); for a file
// store, also an absolute path under its directory, with or without the
// "file:" scheme (file:/abs/dir/... is how Hadoop writes it). Anything
// else, and a key the store would refuse, is an error wrapping
// ErrOutsideStore or objstore.ErrInvalidKey.
func (f *FileIO) Key(name string) (string, error) {
	key, ok := f.relative(name)
	if !ok {
		return "", fmt.Errorf("%w: %q is not under %s", ErrOutsideStore, name, f.base)
	}
	if err := objstore.ValidateKey(key); err != nil {
		return "", err
	}
	return key, nil
}

// relative strips the base from name; ok is false when name is not under
// it. The result may be "" (name is the base itself).
func (f *FileIO) relative(name string) (string, bool) {
	if rest, ok := underPrefix(name, f.base); ok {
		return rest, true
	}
	if dir, isFile := strings.CutPrefix(f.base, "file://"); isFile && strings.HasPrefix(dir, "/") {
		// file:/abs and /abs name the same file as file:///abs.
		for _, alt := range []string{"file:" + dir, dir} {
			if rest, ok := underPrefix(name, alt); ok {
				return rest, true
			}
		}
	}
	if strings.Contains(name, "://") || strings.HasPrefix(name, "/") || strings.HasPrefix(name, "file:") {
		return "", false
	}
	return name, true // a bare key
}

// underPrefix reports whether name is prefix itself or below it.
func underPrefix(name, prefix string) (string, bool) {
	if name == prefix {
		return "", true
	}
	rest, ok := strings.CutPrefix(name, prefix+"/")
	return rest, ok
}

func pathError(op, name string, err error) error {
	if errors.Is(err, objstore.ErrNotFound) {
		err = errors.Join(fs.ErrNotExist, err)
	}
	return &fs.PathError{Op: op, Path: name, Err: err}
}

// Open opens the named file for reading.
func (f *FileIO) Open(name string) (iceio.File, error) {
	key, err := f.Key(name)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: name, Err: err}
	}
	info, err := f.stat(key)
	if err != nil {
		return nil, pathError("open", name, err)
	}
	rf := &readFile{store: f.store, key: key, info: info}
	if info.size <= wholeReadLimit {
		data, err := f.store.Get(context.Background(), key)
		if err != nil {
			return nil, pathError("open", name, err)
		}
		rf.info.size = int64(len(data))
		rf.whole = data
	}
	return rf, nil
}

// ReadFile returns the whole named file.
func (f *FileIO) ReadFile(name string) ([]byte, error) {
	key, err := f.Key(name)
	if err != nil {
		return nil, &fs.PathError{Op: "read", Path: name, Err: err}
	}
	data, err := f.store.Get(context.Background(), key)
	if err != nil {
		return nil, pathError("read", name, err)
	}
	return data, nil
}

// Stat describes the named file; a missing one is fs.ErrNotExist.
func (f *FileIO) Stat(name string) (fs.FileInfo, error) {
	key, err := f.Key(name)
	if err != nil {
		return nil, &fs.PathError{Op: "stat", Path: name, Err: err}
	}
	info, err := f.stat(key)
	if err != nil {
		return nil, pathError("stat", name, err)
	}
	return info, nil
}

func (f *FileIO) stat(key string) (fileInfo, error) {
	var (
		info  fileInfo
		found bool
	)
	// The key itself, if stored, is the first of the keys it prefixes.
	errDone := errors.New("done")
	err := f.store.List(context.Background(), key, func(o objstore.ObjectInfo) error {
		if o.Key == key {
			info, found = fileInfo{name: path.Base(key), size: o.Size, mod: o.ModTime}, true
		}
		return errDone
	})
	if err != nil && !errors.Is(err, errDone) {
		return fileInfo{}, err
	}
	if !found {
		return fileInfo{}, fmt.Errorf("%w: %s", objstore.ErrNotFound, key)
	}
	return info, nil
}

// Remove deletes the named file; a missing file is not an error.
func (f *FileIO) Remove(name string) error {
	key, err := f.Key(name)
	if err != nil {
		return &fs.PathError{Op: "remove", Path: name, Err: err}
	}
	if err := f.store.Delete(context.Background(), key); err != nil {
		return pathError("remove", name, err)
	}
	return nil
}

// DeleteFiles deletes every named file, missing ones included, and
// returns those it deleted with the errors of the others.
func (f *FileIO) DeleteFiles(ctx context.Context, names []string) ([]string, error) {
	var (
		deleted []string
		errs    []error
	)
	for _, name := range names {
		key, err := f.Key(name)
		if err == nil {
			err = f.store.Delete(ctx, key)
		}
		if err != nil {
			errs = append(errs, &fs.PathError{Op: "remove", Path: name, Err: err})
			continue
		}
		deleted = append(deleted, name)
	}
	return deleted, errors.Join(errs...)
}

// Create returns a writer for the named file: the data is buffered and
// stored when Close returns nil (durably: objstore.Store.Put).
func (f *FileIO) Create(name string) (iceio.FileWriter, error) {
	key, err := f.Key(name)
	if err != nil {
		return nil, &fs.PathError{Op: "create", Path: name, Err: err}
	}
	return &writeFile{store: f.store, key: key, name: name}, nil
}

// WriteFile stores p as the named file.
func (f *FileIO) WriteFile(name string, p []byte) error {
	key, err := f.Key(name)
	if err != nil {
		return &fs.PathError{Op: "write", Path: name, Err: err}
	}
	if err := f.store.Put(context.Background(), key, p); err != nil {
		return pathError("write", name, err)
	}
	return nil
}

// WalkDir calls fn for root (as a directory) and then for every object
// below it, in key order, with the objects' URLs. The store has no
// directories, so no others are reported; fs.SkipDir from a file skips the
// rest of its directory, fs.SkipAll (or SkipDir from root) ends the walk.
func (f *FileIO) WalkDir(root string, fn fs.WalkDirFunc) error {
	rel, ok := f.relative(strings.TrimRight(root, "/"))
	if !ok {
		return &fs.PathError{Op: "walk", Path: root, Err: fmt.Errorf("%w: not under %s", ErrOutsideStore, f.base)}
	}
	prefix := ""
	if rel != "" {
		if err := objstore.ValidateKey(rel); err != nil {
			return &fs.PathError{Op: "walk", Path: root, Err: err}
		}
		prefix = rel + "/"
	}
	if err := fn(root, dirEntry{fileInfo{name: path.Base(root), dir: true}}, nil); err != nil {
		if errors.Is(err, fs.SkipDir) || errors.Is(err, fs.SkipAll) {
			return nil
		}
		return err
	}
	skipDir := "" // the directory a SkipDir asked to leave
	errStop := errors.New("stop")
	err := f.store.List(context.Background(), prefix, func(o objstore.ObjectInfo) error {
		dir := path.Dir(o.Key) + "/"
		if skipDir != "" && dir == skipDir {
			return nil
		}
		info := fileInfo{name: path.Base(o.Key), size: o.Size, mod: o.ModTime}
		err := fn(f.Location(o.Key), dirEntry{info}, nil)
		switch {
		case err == nil:
		case errors.Is(err, fs.SkipAll):
			return errStop
		case errors.Is(err, fs.SkipDir):
			skipDir = dir
		default:
			return err
		}
		return nil
	})
	if errors.Is(err, errStop) {
		return nil
	}
	return err
}

// readFile reads one object: from memory when Open read it whole, else
// by ranged reads.
type readFile struct {
	store objstore.Store
	key   string
	info  fileInfo
	whole []byte // the whole object, when small

	pos    int64
	buf    []byte // read-ahead of a large file for Read
	bufOff int64
	closed bool
}

func (r *readFile) Stat() (fs.FileInfo, error) { return r.info, nil }

func (r *readFile) Close() error {
	r.closed = true
	r.whole, r.buf = nil, nil
	return nil
}

func (r *readFile) ReadAt(p []byte, off int64) (int, error) {
	if r.closed {
		return 0, fs.ErrClosed
	}
	if off < 0 {
		return 0, fmt.Errorf("tableflow: read %s at negative offset %d", r.key, off)
	}
	if off >= r.info.size {
		return 0, io.EOF
	}
	n := min(int64(len(p)), r.info.size-off)
	if r.whole != nil {
		copy(p, r.whole[off:off+n])
	} else if n > 0 {
		data, err := r.store.GetRange(context.Background(), r.key, off, n)
		if err != nil {
			return 0, err
		}
		copy(p, data)
	}
	if n < int64(len(p)) {
		return int(n), io.EOF
	}
	return int(n), nil
}

func (r *readFile) Read(p []byte) (int, error) {
	if r.closed {
		return 0, fs.ErrClosed
	}
	if r.pos >= r.info.size {
		return 0, io.EOF
	}
	if r.whole != nil {
		n := copy(p, r.whole[r.pos:])
		r.pos += int64(n)
		return n, nil
	}
	if r.pos < r.bufOff || r.pos >= r.bufOff+int64(len(r.buf)) {
		n := min(max(int64(len(p)), readAhead), r.info.size-r.pos)
		data, err := r.store.GetRange(context.Background(), r.key, r.pos, n)
		if err != nil {
			return 0, err
		}
		r.buf, r.bufOff = data, r.pos
	}
	n := copy(p, r.buf[r.pos-r.bufOff:])
	r.pos += int64(n)
	return n, nil
}

func (r *readFile) Seek(offset int64, whence int) (int64, error) {
	if r.closed {
		return 0, fs.ErrClosed
	}
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += r.pos
	case io.SeekEnd:
		offset += r.info.size
	default:
		return 0, fmt.Errorf("tableflow: seek %s: bad whence %d", r.key, whence)
	}
	if offset < 0 {
		return 0, fmt.Errorf("tableflow: seek %s to negative offset %d", r.key, offset)
	}
	r.pos = offset
	return offset, nil
}

// writeFile buffers a new object and stores it on Close.
type writeFile struct {
	store  objstore.Store
	key    string
	name   string
	buf    bytes.Buffer
	closed bool
}

func (w *writeFile) Write(p []byte) (int, error) {
	if w.closed {
		return 0, fs.ErrClosed
	}
	return w.buf.Write(p)
}

func (w *writeFile) ReadFrom(r io.Reader) (int64, error) {
	if w.closed {
		return 0, fs.ErrClosed
	}
	return w.buf.ReadFrom(r)
}

// Close stores the object; the file is durable when it returns nil.
func (w *writeFile) Close() error {
	if w.closed {
		return fs.ErrClosed
	}
	w.closed = true
	err := w.store.Put(context.Background(), w.key, w.buf.Bytes())
	w.buf = bytes.Buffer{}
	if err != nil {
		return pathError("write", w.name, err)
	}
	return nil
}

type fileInfo struct {
	name string
	size int64
	mod  time.Time
	dir  bool
}

func (i fileInfo) Name() string       { return i.name }
func (i fileInfo) Size() int64        { return i.size }
func (i fileInfo) ModTime() time.Time { return i.mod }
func (i fileInfo) IsDir() bool        { return i.dir }
func (i fileInfo) Sys() any           { return nil }
func (i fileInfo) Mode() fs.FileMode {
	if i.dir {
		return fs.ModeDir | 0o755
	}
	return 0o644
}

type dirEntry struct{ info fileInfo }

func (d dirEntry) Name() string               { return d.info.name }
func (d dirEntry) IsDir() bool                { return d.info.dir }
func (d dirEntry) Type() fs.FileMode          { return d.info.Mode().Type() }
func (d dirEntry) Info() (fs.FileInfo, error) { return d.info, nil }
