package objstore

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func openTestFile(t *testing.T) (*fileStore, string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "objects")
	s, err := Open(context.Background(), "file://"+dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	fs, ok := s.(*fileStore)
	if !ok {
		t.Fatalf("Open(file://) returned %T, want *fileStore", s)
	}
	return fs, dir
}

// TestFilePutSyncsBeforeRename proves the durability hook: the temporary
// file is fsync'd while it still has its temporary name, in the object's own
// directory, and holds the full data at that point.
func TestFilePutSyncsBeforeRename(t *testing.T) {
	s, dir := openTestFile(t)
	data := bytes.Repeat([]byte("runnel"), 1000)
	var synced []string
	s.onSync = func(tmp string) {
		synced = append(synced, tmp)
		got, err := os.ReadFile(tmp)
		if err != nil || !bytes.Equal(got, data) {
			t.Errorf("at fsync the temporary file holds %d bytes (%v), want %d", len(got), err, len(data))
		}
		if _, err := os.Stat(filepath.Join(dir, "intake", "0", "obj")); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("object visible before its fsync: %v", err)
		}
	}
	if err := s.Put(context.Background(), "intake/0/obj", data); err != nil {
		t.Fatal(err)
	}
	if len(synced) != 1 {
		t.Fatalf("sync hook ran %d times, want 1", len(synced))
	}
	if got, want := filepath.Dir(synced[0]), filepath.Join(dir, "intake", "0"); got != want {
		t.Errorf("temporary file in %s, want the object's directory %s (rename must not cross file systems)", got, want)
	}
	if !tempRe.MatchString(synced[0]) {
		t.Errorf("temporary file %q does not match the reserved pattern", synced[0])
	}
	for _, d := range []string{filepath.Join(dir, "intake", "0"), filepath.Join(dir, "intake")} {
		if _, ok := s.synced.Load(d); !ok {
			t.Errorf("directory %s entry not fsync'd", d)
		}
	}
	entries, err := os.ReadDir(filepath.Join(dir, "intake", "0"))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Name() != "obj" {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Fatalf("directory holds %q, want only the object (no temporary or .attrs files)", names)
	}
}

func TestFileFailedPutLeavesNothing(t *testing.T) {
	s, dir := openTestFile(t)
	ctx, cancel := context.WithCancel(context.Background())
	s.onSync = func(string) { cancel() } // cancelled between fsync and rename
	if err := s.Put(ctx, "a/b", []byte("data")); err == nil {
		t.Fatal("Put succeeded after its context was cancelled")
	}
	entries, _ := os.ReadDir(filepath.Join(dir, "a"))
	if len(entries) != 0 {
		t.Fatalf("failed Put left %d files", len(entries))
	}
}

func TestFileTempFiles(t *testing.T) {
	s, dir := openTestFile(t)
	ctx := context.Background()
	if err := s.Put(ctx, "x/obj", []byte("1")); err != nil {
		t.Fatal(err)
	}
	stale := filepath.Join(dir, "x", "obj.17f3a2b4c5d6e7f8.tmp")
	fresh := filepath.Join(dir, "x", "obj.17f3a2b4c5d6e7f9.tmp")
	for _, p := range []string{stale, fresh} {
		if err := os.WriteFile(p, []byte("partial"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	old := time.Now().Add(-2 * staleTempAge)
	if err := os.Chtimes(stale, old, old); err != nil {
		t.Fatal(err)
	}
	var keys []string
	if err := s.List(ctx, "", func(o ObjectInfo) error { keys = append(keys, o.Key); return nil }); err != nil {
		t.Fatal(err)
	}
	if strings.Join(keys, ",") != "x/obj" {
		t.Fatalf("List = %q, want only x/obj (temporary files hidden)", keys)
	}
	if err := s.Put(ctx, "x/obj.1a.tmp", []byte("1")); !errors.Is(err, ErrInvalidKey) {
		t.Fatalf("Put of a reserved name = %v, want ErrInvalidKey", err)
	}
	_ = s.Close()
	s2, err := Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if _, err := os.Stat(stale); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("stale temporary file survived Open: %v", err)
	}
	if _, err := os.Stat(fresh); err != nil {
		t.Errorf("recent temporary file removed by Open: %v", err)
	}
	if got, err := s2.Get(ctx, "x/obj"); err != nil || string(got) != "1" {
		t.Fatalf("reopened Get = %q, %v", got, err)
	}
}

func TestFileRelativeURL(t *testing.T) {
	t.Chdir(t.TempDir())
	s, err := Open(context.Background(), "file://./rel/objects")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Put(context.Background(), "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join("rel", "objects", "k")); err != nil {
		t.Fatal(err)
	}
}

func BenchmarkFilePutDurable(b *testing.B) {
	for _, size := range []int{64 << 10, 1 << 20, 4 << 20} {
		b.Run(byteSize(size), func(b *testing.B) {
			s, err := Open(context.Background(), b.TempDir())
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			data := bytes.Repeat([]byte{0xa5}, size)
			b.SetBytes(int64(size))
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				i++
				if err := s.Put(context.Background(), "intake/0/"+strings.Repeat("0", 20)+strconv.Itoa(i), data); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func byteSize(n int) string {
	if n >= 1<<20 {
		return strconv.Itoa(n>>20) + "MiB"
	}
	return strconv.Itoa(n>>10) + "KiB"
}

// TestFileRecyclesDeletedFiles checks that a Put reuses the file of an object
// deleted from the same directory, whatever the sizes, and that pooled files
// stay invisible, bounded and gone after Close.
func TestFileRecyclesDeletedFiles(t *testing.T) {
	s, dir := openTestFile(t)
	ctx := context.Background()
	inode := func(key string) uint64 {
		t.Helper()
		info, err := os.Stat(filepath.Join(dir, filepath.FromSlash(key)))
		if err != nil {
			t.Fatal(err)
		}
		return info.Sys().(*syscall.Stat_t).Ino
	}
	big := bytes.Repeat([]byte("0123456789abcdef"), 3000) // 48,000 bytes: not page aligned
	cases := []struct {
		name string
		data []byte
	}{
		{"shorter", []byte("short object")},
		{"longer", bytes.Repeat([]byte("x"), 100_000)},
		{"page-aligned", bytes.Repeat([]byte("p"), 8192)},
		{"empty", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if err := s.Put(ctx, "intake/0/old", big); err != nil {
				t.Fatal(err)
			}
			ino := inode("intake/0/old")
			if err := s.Delete(ctx, "intake/0/old"); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Get(ctx, "intake/0/old"); !errors.Is(err, ErrNotFound) {
				t.Fatalf("Get of a deleted object = %v, want ErrNotFound", err)
			}
			if err := s.Put(ctx, "intake/0/new", tc.data); err != nil {
				t.Fatal(err)
			}
			if got := inode("intake/0/new"); got != ino {
				t.Errorf("new object has inode %d, want the deleted object's %d", got, ino)
			}
			got, err := s.Get(ctx, "intake/0/new")
			if err != nil || !bytes.Equal(got, tc.data) {
				t.Fatalf("Get = %d bytes (%v), want %d bytes", len(got), err, len(tc.data))
			}
			if err := s.Delete(ctx, "intake/0/new"); err != nil {
				t.Fatal(err)
			}
		})
	}

	// A Put into another directory does not take this directory's file.
	if err := s.Put(ctx, "intake/0/a", big); err != nil {
		t.Fatal(err)
	}
	ino := inode("intake/0/a")
	if err := s.Delete(ctx, "intake/0/a"); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctx, "intake/1/b", big); err != nil {
		t.Fatal(err)
	}
	if inode("intake/1/b") == ino {
		t.Error("a Put reused a file from another directory")
	}

	// The pool is bounded and never listed.
	for i := range recycleMaxFiles + 10 {
		key := "intake/2/" + strconv.Itoa(i)
		if err := s.Put(ctx, key, []byte("x")); err != nil {
			t.Fatal(err)
		}
		if err := s.Delete(ctx, key); err != nil {
			t.Fatal(err)
		}
	}
	var keys []string
	if err := s.List(ctx, "", func(o ObjectInfo) error { keys = append(keys, o.Key); return nil }); err != nil {
		t.Fatal(err)
	}
	if strings.Join(keys, ",") != "intake/1/b" {
		t.Fatalf("List = %q, want only intake/1/b", keys)
	}
	countTemps := func() int {
		n := 0
		_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() && tempRe.MatchString(p) {
				n++
			}
			return nil
		})
		return n
	}
	if n := countTemps(); n > recycleMaxFiles {
		t.Errorf("%d pooled files, want at most %d", n, recycleMaxFiles)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if n := countTemps(); n != 0 {
		t.Errorf("%d pooled files left after Close", n)
	}
}

// TestFileReadDuringRecycle: a read that opened an object's file before the
// object was deleted returns that object's bytes, never those of the object
// a later Put wrote into the recycled file, for Get and GetRange alike.
func TestFileReadDuringRecycle(t *testing.T) {
	for _, ranged := range []bool{false, true} {
		name := "get"
		if ranged {
			name = "range"
		}
		t.Run(name, func(t *testing.T) {
			s, _ := openTestFile(t)
			ctx := context.Background()
			old := bytes.Repeat([]byte("old partition "), 1000)
			nu := bytes.Repeat([]byte("NEW PARTITION "), 1000)
			if err := s.Put(ctx, "intake/0/a", old); err != nil {
				t.Fatal(err)
			}
			opened, resume := make(chan struct{}), make(chan struct{})
			s.onOpen = func(key string) {
				if key == "intake/0/a" {
					close(opened)
					<-resume
				}
			}
			type result struct {
				b   []byte
				err error
			}
			done := make(chan result, 1)
			go func() {
				var r result
				if ranged {
					r.b, r.err = s.GetRange(ctx, "intake/0/a", 0, int64(len(old)))
				} else {
					r.b, r.err = s.Get(ctx, "intake/0/a")
				}
				done <- r
			}()
			<-opened
			s.onOpen = nil
			if err := s.Delete(ctx, "intake/0/a"); err != nil {
				t.Fatal(err)
			}
			if err := s.Put(ctx, "intake/0/b", nu); err != nil {
				t.Fatal(err)
			}
			close(resume)
			r := <-done
			if r.err == nil && !bytes.Equal(r.b, old) {
				t.Fatalf("a read of the deleted object returned %.20q..., another object's bytes", r.b)
			}
			if got, err := s.Get(ctx, "intake/0/b"); err != nil || !bytes.Equal(got, nu) {
				t.Fatalf("the new object reads %.20q..., %v", got, err)
			}
		})
	}
}
