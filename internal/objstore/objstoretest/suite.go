package objstoretest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/runnel-dev/runnel/internal/objstore"
)

// Run runs the conformance suite. open must return a new, empty store each
// time it is called; Run closes every store it opens.
func Run(t *testing.T, open func(t *testing.T) objstore.Store) {
	t.Helper()
	for _, tc := range []struct {
		name string
		fn   func(t *testing.T, s objstore.Store)
	}{
		{"PutGet", testPutGet},
		{"Overwrite", testOverwrite},
		{"EmptyObject", testEmptyObject},
		{"LargeObject", testLargeObject},
		{"PutDoesNotRetainData", testPutDoesNotRetain},
		{"GetMissing", testGetMissing},
		{"GetRange", testGetRange},
		{"Delete", testDelete},
		{"List", testList},
		{"ListStopsOnError", testListStops},
		{"InvalidKeys", testInvalidKeys},
		{"CancelledContext", testCancelled},
		{"Concurrent", testConcurrent},
		{"Close", testClose},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := open(t)
			t.Cleanup(func() { _ = s.Close() })
			tc.fn(t, s)
		})
	}
}

func ctx(t *testing.T) context.Context {
	t.Helper()
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

func put(t *testing.T, s objstore.Store, key string, data []byte) {
	t.Helper()
	if err := s.Put(ctx(t), key, data); err != nil {
		t.Fatalf("Put(%q): %v", key, err)
	}
}

func mustGet(t *testing.T, s objstore.Store, key string, want []byte) {
	t.Helper()
	got, err := s.Get(ctx(t), key)
	if err != nil {
		t.Fatalf("Get(%q): %v", key, err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("Get(%q) = %d bytes %.32q, want %d bytes %.32q", key, len(got), got, len(want), want)
	}
}

func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i/251)
	}
	return b
}

func testPutGet(t *testing.T, s objstore.Store) {
	put(t, s, "intake/0/01J0000000000000000000000", []byte("hello"))
	put(t, s, "top", []byte("level"))
	mustGet(t, s, "intake/0/01J0000000000000000000000", []byte("hello"))
	mustGet(t, s, "top", []byte("level"))
}

func testOverwrite(t *testing.T, s objstore.Store) {
	put(t, s, "k/v", []byte("first version, longer"))
	put(t, s, "k/v", []byte("second"))
	mustGet(t, s, "k/v", []byte("second"))
	n := 0
	if err := s.List(ctx(t), "k/", func(objstore.ObjectInfo) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Fatalf("List after overwrite saw %d objects, want 1", n)
	}
}

func testEmptyObject(t *testing.T, s objstore.Store) {
	put(t, s, "empty", nil)
	mustGet(t, s, "empty", []byte{})
	got, err := s.GetRange(ctx(t), "empty", 0, 0)
	if err != nil || len(got) != 0 {
		t.Fatalf("GetRange(empty, 0, 0) = %q, %v", got, err)
	}
}

func testLargeObject(t *testing.T, s objstore.Store) {
	data := pattern(4<<20 + 13)
	put(t, s, "big/object", data)
	mustGet(t, s, "big/object", data)
	got, err := s.GetRange(ctx(t), "big/object", 3<<20, 1<<20+13)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data[3<<20:]) {
		t.Fatal("GetRange of the tail of a large object returned wrong bytes")
	}
}

func testPutDoesNotRetain(t *testing.T, s objstore.Store) {
	data := []byte("original")
	put(t, s, "retain", data)
	copy(data, "XXXXXXXX")
	mustGet(t, s, "retain", []byte("original"))
	got, _ := s.Get(ctx(t), "retain")
	copy(got, "YYYYYYYY")
	mustGet(t, s, "retain", []byte("original"))
}

func testGetMissing(t *testing.T, s objstore.Store) {
	put(t, s, "dir/present", []byte("x"))
	for _, key := range []string{"missing", "dir/missing", "nodir/missing", "dir"} {
		if _, err := s.Get(ctx(t), key); !errors.Is(err, objstore.ErrNotFound) {
			t.Errorf("Get(%q) error = %v, want ErrNotFound", key, err)
		}
		if _, err := s.GetRange(ctx(t), key, 0, 1); !errors.Is(err, objstore.ErrNotFound) {
			t.Errorf("GetRange(%q) error = %v, want ErrNotFound", key, err)
		}
	}
}

func testGetRange(t *testing.T, s objstore.Store) {
	data := []byte("0123456789")
	put(t, s, "r", data)
	tests := []struct {
		name        string
		off, length int64
		want        string
		err         error
	}{
		{"head", 0, 3, "012", nil},
		{"middle", 4, 3, "456", nil},
		{"tail", 7, 3, "789", nil},
		{"whole", 0, 10, "0123456789", nil},
		{"empty at end", 10, 0, "", nil},
		{"empty in middle", 5, 0, "", nil},
		{"one past end", 8, 3, "", objstore.ErrOutOfRange},
		{"start past end", 11, 1, "", objstore.ErrOutOfRange},
		{"empty past end", 11, 0, "", objstore.ErrOutOfRange},
		{"negative offset", -1, 2, "", objstore.ErrOutOfRange},
		{"negative length", 0, -1, "", objstore.ErrOutOfRange},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.GetRange(ctx(t), "r", tt.off, tt.length)
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("GetRange(%d, %d) = %q, %v; want %v", tt.off, tt.length, got, err, tt.err)
				}
				return
			}
			if err != nil || string(got) != tt.want {
				t.Fatalf("GetRange(%d, %d) = %q, %v; want %q", tt.off, tt.length, got, err, tt.want)
			}
		})
	}
}

func testDelete(t *testing.T, s objstore.Store) {
	put(t, s, "d/1", []byte("a"))
	put(t, s, "d/2", []byte("b"))
	if err := s.Delete(ctx(t), "d/1"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx(t), "d/1"); !errors.Is(err, objstore.ErrNotFound) {
		t.Fatalf("Get after Delete = %v, want ErrNotFound", err)
	}
	mustGet(t, s, "d/2", []byte("b"))
	for _, key := range []string{"d/1", "never/existed", "d"} {
		if err := s.Delete(ctx(t), key); err != nil {
			t.Fatalf("Delete(%q) of a missing key = %v, want nil", key, err)
		}
	}
	put(t, s, "d/1", []byte("again"))
	mustGet(t, s, "d/1", []byte("again"))
}

func listKeys(t *testing.T, s objstore.Store, prefix string) []string {
	t.Helper()
	var keys []string
	err := s.List(ctx(t), prefix, func(o objstore.ObjectInfo) error {
		keys = append(keys, o.Key)
		return nil
	})
	if err != nil {
		t.Fatalf("List(%q): %v", prefix, err)
	}
	return keys
}

func testList(t *testing.T, s objstore.Store) {
	// Keys chosen so that directory order differs from byte order:
	// '-' (0x2d) and '.' (0x2e) sort before '/' (0x2f).
	keys := []string{"a/b", "a-c", "a.d", "a/b/c", "a/bc", "ab", "b/x/y/z", "topics/t1/0/00000000000000000000",
		"topics/t1/0/00000000000000000100", "topics/t1/1/00000000000000000000", "topics/t10/0/00000000000000000000"}
	sizes := map[string]int{}
	before := time.Now().Add(-time.Minute)
	for i, k := range keys {
		if k == "a/b" {
			continue // a file and a directory cannot share a name in every store
		}
		sizes[k] = i + 1
		put(t, s, k, pattern(i+1))
	}
	var infos []objstore.ObjectInfo
	if err := s.List(ctx(t), "", func(o objstore.ObjectInfo) error { infos = append(infos, o); return nil }); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, o := range infos {
		got = append(got, o.Key)
		if int(o.Size) != sizes[o.Key] {
			t.Errorf("List size of %q = %d, want %d", o.Key, o.Size, sizes[o.Key])
		}
		if o.ModTime.Before(before) || o.ModTime.After(time.Now().Add(time.Minute)) {
			t.Errorf("List ModTime of %q = %v, not around now", o.Key, o.ModTime)
		}
	}
	want := make([]string, 0, len(sizes))
	for k := range sizes {
		want = append(want, k)
	}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("List(\"\") = %q\nwant %q", got, want)
	}
	prefixes := []struct {
		prefix string
		want   []string
	}{
		{"a/b", []string{"a/b/c", "a/bc"}},
		{"a/b/", []string{"a/b/c"}},
		{"a", []string{"a-c", "a.d", "a/b/c", "a/bc", "ab"}},
		{"topics/t1/", []string{"topics/t1/0/00000000000000000000", "topics/t1/0/00000000000000000100", "topics/t1/1/00000000000000000000"}},
		{"topics/t1", []string{"topics/t1/0/00000000000000000000", "topics/t1/0/00000000000000000100", "topics/t1/1/00000000000000000000", "topics/t10/0/00000000000000000000"}},
		{"b/x/y/z", []string{"b/x/y/z"}},
		{"nothing", nil},
		{"nothing/here/", nil},
		{"../", nil},
	}
	for _, p := range prefixes {
		if got := listKeys(t, s, p.prefix); !slices.Equal(got, p.want) {
			t.Errorf("List(%q) = %q, want %q", p.prefix, got, p.want)
		}
	}
}

func testListStops(t *testing.T, s objstore.Store) {
	for i := range 5 {
		put(t, s, fmt.Sprintf("s/%d", i), []byte("x"))
	}
	stop := errors.New("stop here")
	n := 0
	err := s.List(ctx(t), "s/", func(objstore.ObjectInfo) error {
		n++
		if n == 2 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || n != 2 {
		t.Fatalf("List returned %v after %d calls, want the callback's error after 2", err, n)
	}
}

func testInvalidKeys(t *testing.T, s objstore.Store) {
	for _, key := range []string{"", "/abs", "trailing/", "a//b", "a/../b", "..", ".", "./a", "tab\tkey", "nul\x00", "back\\slash", "x__0x41__", string(bytes.Repeat([]byte("k"), objstore.MaxKeyLen+1)), "\xff"} {
		if err := s.Put(ctx(t), key, []byte("x")); !errors.Is(err, objstore.ErrInvalidKey) {
			t.Errorf("Put(%q) = %v, want ErrInvalidKey", key, err)
		}
		if _, err := s.Get(ctx(t), key); !errors.Is(err, objstore.ErrInvalidKey) {
			t.Errorf("Get(%q) = %v, want ErrInvalidKey", key, err)
		}
		if _, err := s.GetRange(ctx(t), key, 0, 1); !errors.Is(err, objstore.ErrInvalidKey) {
			t.Errorf("GetRange(%q) = %v, want ErrInvalidKey", key, err)
		}
		if err := s.Delete(ctx(t), key); !errors.Is(err, objstore.ErrInvalidKey) {
			t.Errorf("Delete(%q) = %v, want ErrInvalidKey", key, err)
		}
	}
	if got := listKeys(t, s, ""); len(got) != 0 {
		t.Fatalf("invalid keys left objects: %q", got)
	}
}

func testCancelled(t *testing.T, s objstore.Store) {
	c, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Put(c, "cancelled", []byte("x")); err == nil {
		t.Fatal("Put with a cancelled context succeeded")
	}
	if _, err := s.Get(ctx(t), "cancelled"); !errors.Is(err, objstore.ErrNotFound) {
		t.Fatalf("object of a cancelled Put is visible: %v", err)
	}
	put(t, s, "present", []byte("x"))
	if _, err := s.Get(c, "present"); err == nil {
		t.Fatal("Get with a cancelled context succeeded")
	}
	if err := s.List(c, "", func(objstore.ObjectInfo) error { return nil }); err == nil {
		t.Fatal("List with a cancelled context succeeded")
	}
}

func testConcurrent(t *testing.T, s objstore.Store) {
	const n = 16
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			key := fmt.Sprintf("c/%02d/obj", i)
			data := pattern(1000 + i)
			if err := s.Put(ctx(t), key, data); err != nil {
				errs <- err
				return
			}
			got, err := s.Get(ctx(t), key)
			if err != nil {
				errs <- err
				return
			}
			if !bytes.Equal(got, data) {
				errs <- fmt.Errorf("%s: read back wrong bytes", key)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if got := listKeys(t, s, "c/"); len(got) != n {
		t.Fatalf("List saw %d objects, want %d", len(got), n)
	}
}

func testClose(t *testing.T, s objstore.Store) {
	put(t, s, "k", []byte("v"))
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := s.Put(ctx(t), "k2", []byte("v")); err == nil {
		t.Error("Put after Close succeeded")
	}
	if _, err := s.Get(ctx(t), "k"); err == nil {
		t.Error("Get after Close succeeded")
	}
	if err := s.List(ctx(t), "", func(objstore.ObjectInfo) error { return nil }); err == nil {
		t.Error("List after Close succeeded")
	}
}
