package objstore

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// residentPages counts the pages of path the page cache holds.
func residentPages(t *testing.T, path string) (resident, total int) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	m, err := unix.Mmap(int(f.Fd()), 0, int(fi.Size()), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(m)
	vec := make([]byte, (len(m)+os.Getpagesize()-1)/os.Getpagesize())
	if _, _, errno := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&m[0])), uintptr(len(m)), uintptr(unsafe.Pointer(&vec[0]))); errno != 0 {
		t.Fatal(errno)
	}
	for _, v := range vec {
		if v&1 != 0 {
			resident++
		}
	}
	return resident, len(vec)
}

// TestFileUncachedWriteBypassesThePageCache: an object put with
// WithUncachedWrite reads back whole and exact, whatever its length and
// wherever it starts in a reused file, and leaves at most its last partial
// page in the page cache; a buffer not aligned to a block is written the
// usual way; one put without the hint is all in the page cache.
// Before, the hint did not exist and every object grew the page cache.
func TestFileUncachedWriteBypassesThePageCache(t *testing.T) {
	dir := t.TempDir()
	s, err := openFile(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	for i, size := range []int{3<<20 + 123, 1 << 20, 16<<20 - 1, 100, writeStep + 4096} {
		data := make([]byte, size)
		if _, err := rand.Read(data); err != nil {
			t.Fatal(err)
		}
		key := filepath.ToSlash(filepath.Join("topics", "a", "0", string(rune('a'+i))))
		if err := s.Put(WithUncachedWrite(ctx), key, data); err != nil {
			t.Fatalf("put %d bytes: %v", size, err)
		}
		resident, total := residentPages(t, filepath.Join(dir, filepath.FromSlash(key)))
		if size >= writeStep && resident > 1 {
			t.Errorf("%d bytes written uncached: %d of %d pages in the page cache, want at most the last", size, resident, total)
		}
		got, err := s.Get(ctx, key)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("%d bytes written uncached read back as %d bytes (%v)", size, len(got), err)
		}
		// The file goes to the recycler and the next object overwrites it
		// in place.
		if err := s.Delete(ctx, key); err != nil {
			t.Fatal(err)
		}
	}
	// A buffer that does not start on a block is written the usual way,
	// and reads back as exactly.
	buf := make([]byte, 2<<20+1)
	if _, err := rand.Read(buf); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(WithUncachedWrite(ctx), "topics/a/0/unaligned", buf[1:]); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Get(ctx, "topics/a/0/unaligned"); err != nil || !bytes.Equal(got, buf[1:]) {
		t.Fatalf("an unaligned buffer written uncached read back as %d bytes (%v)", len(got), err)
	}
	data := make([]byte, 1<<20)
	if err := s.Put(ctx, "topics/a/0/cached", data); err != nil {
		t.Fatal(err)
	}
	if resident, total := residentPages(t, filepath.Join(dir, "topics/a/0/cached")); resident != total {
		t.Errorf("a plain put left %d of %d pages in the page cache, want all", resident, total)
	}
}

// TestFileUncachedPutPaced: an uncached Put keeps the pace it is asked for,
// and a context ending mid-way fails it and leaves no object, as a cached
// Put does (TestFilePutPaced).
func TestFileUncachedPutPaced(t *testing.T) {
	s, dir := openTestFile(t)
	data := bytes.Repeat([]byte("0123456789abcdef"), 4*writeStep/16)
	if uintptr(unsafe.Pointer(unsafe.SliceData(data)))%directAlign != 0 {
		t.Fatal("the test's buffer is not aligned to a block: it would not be written with O_DIRECT")
	}
	ctx := WithUncachedWrite(WithWritePace(context.Background(), float64(len(data))*4)) // due in 250 ms
	start := time.Now()
	if err := s.Put(ctx, "seg/paced", data); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 240*time.Millisecond {
		t.Fatalf("an uncached Put paced to take 250 ms took %v", d)
	}
	if resident, total := residentPages(t, filepath.Join(dir, "seg", "paced")); resident > 1 {
		t.Fatalf("%d of %d pages in the page cache: not written past it", resident, total)
	}
	if got, err := s.Get(context.Background(), "seg/paced"); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("paced object: %d bytes, %v", len(got), err)
	}

	ctx, cancel := context.WithTimeout(WithUncachedWrite(WithWritePace(context.Background(), float64(len(data))/10)), 100*time.Millisecond)
	defer cancel()
	if err := s.Put(ctx, "seg/cut", data); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("an uncached paced Put whose context ended: %v", err)
	}
	if _, err := s.Get(context.Background(), "seg/cut"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a failed uncached Put left an object: %v", err)
	}
}
