package tableflow

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"slices"
	"strings"
	"testing"

	"github.com/runnel-dev/runnel/internal/objstore"
)

// newFileStore opens a file store in a temporary directory and returns it
// with its base URL.
func newFileStore(t *testing.T) (objstore.Store, string) {
	t.Helper()
	dir := t.TempDir()
	store, err := objstore.Open(context.Background(), "file://"+dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	return store, "file://" + dir
}

func TestFileIOKeys(t *testing.T) {
	f := NewFileIO(nil, "file:///data/runnel/")
	s3 := NewFileIO(nil, "s3://bucket/prefix")
	for _, tc := range []struct {
		name string
		fio  *FileIO
		in   string
		want string // "" = error
	}{
		{"file url", f, "file:///data/runnel/warehouse/ns/t/data/a.parquet", "warehouse/ns/t/data/a.parquet"},
		{"hadoop file url", f, "file:/data/runnel/warehouse/ns/t/m.json", "warehouse/ns/t/m.json"},
		{"absolute path", f, "/data/runnel/warehouse/x", "warehouse/x"},
		{"bare key", f, "warehouse/ns/t/x", "warehouse/ns/t/x"},
		{"sibling dir with base as prefix", f, "file:///data/runnel2/warehouse/x", ""},
		{"other dir", f, "file:///etc/passwd", ""},
		{"absolute path elsewhere", f, "/etc/passwd", ""},
		{"dot dot escape", f, "file:///data/runnel/warehouse/../../etc/passwd", ""},
		{"dot dot bare", f, "../x", ""},
		{"the base itself", f, "file:///data/runnel", ""},
		{"other scheme", f, "s3://bucket/prefix/warehouse/x", ""},
		{"s3 url", s3, "s3://bucket/prefix/warehouse/ns/t/x", "warehouse/ns/t/x"},
		{"s3 other bucket", s3, "s3://bucket2/prefix/warehouse/x", ""},
		{"s3 other prefix", s3, "s3://bucket/prefixx/warehouse/x", ""},
		{"s3 absolute path", s3, "/prefix/warehouse/x", ""},
		{"s3 bare key", s3, "warehouse/x", "warehouse/x"},
		{"s3 double slash", s3, "s3://bucket/prefix//warehouse/x", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.fio.Key(tc.in)
			if tc.want == "" {
				if err == nil {
					t.Fatalf("Key(%q) = %q, want an error", tc.in, got)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("Key(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
			}
			if loc := tc.fio.Location(got); !strings.HasSuffix(loc, "/"+got) || !strings.HasPrefix(loc, tc.fio.BaseURL()+"/") {
				t.Fatalf("Location(%q) = %q", got, loc)
			}
		})
	}
	if got := f.Location("warehouse/a"); got != "file:///data/runnel/warehouse/a" {
		t.Fatalf("Location = %q", got)
	}
}

func TestFileIORoundTrip(t *testing.T) {
	store, base := newFileStore(t)
	fio := NewFileIO(store, base)
	small := []byte(`{"format-version":2,"small":"metadata"}`)
	large := bytes.Repeat([]byte("0123456789abcdef"), (wholeReadLimit+4096)/16) // read in ranges
	for name, data := range map[string][]byte{"small": small, "large": large} {
		t.Run(name, func(t *testing.T) {
			loc := fio.Location("warehouse/ns/t/data/" + name + ".bin")
			w, err := fio.Create(loc)
			if err != nil {
				t.Fatal(err)
			}
			half := len(data) / 2
			if _, err := w.Write(data[:half]); err != nil {
				t.Fatal(err)
			}
			if _, err := w.ReadFrom(bytes.NewReader(data[half:])); err != nil {
				t.Fatal(err)
			}
			if _, err := fio.Stat(loc); !errors.Is(err, fs.ErrNotExist) {
				t.Fatalf("Stat before Close = %v, want not exist (writes are stored on Close)", err)
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			// Durable under the key the URL names.
			if got, err := store.Get(context.Background(), "warehouse/ns/t/data/"+name+".bin"); err != nil || !bytes.Equal(got, data) {
				t.Fatalf("store.Get = %d bytes, %v", len(got), err)
			}
			info, err := fio.Stat(loc)
			if err != nil || info.Size() != int64(len(data)) || info.IsDir() {
				t.Fatalf("Stat = %v, %v", info, err)
			}
			f, err := fio.Open(loc)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			all, err := io.ReadAll(f)
			if err != nil || !bytes.Equal(all, data) {
				t.Fatalf("ReadAll = %d bytes, %v", len(all), err)
			}
			p := make([]byte, 10)
			if n, err := f.ReadAt(p, 5); n != 10 || err != nil || !bytes.Equal(p, data[5:15]) {
				t.Fatalf("ReadAt = %d, %v, %q", n, err, p)
			}
			if n, err := f.ReadAt(p, int64(len(data)-4)); n != 4 || err != io.EOF || !bytes.Equal(p[:4], data[len(data)-4:]) {
				t.Fatalf("ReadAt at the end = %d, %v", n, err)
			}
			if pos, err := f.Seek(-3, io.SeekEnd); err != nil || pos != int64(len(data)-3) {
				t.Fatalf("Seek = %d, %v", pos, err)
			}
			if rest, err := io.ReadAll(f); err != nil || !bytes.Equal(rest, data[len(data)-3:]) {
				t.Fatalf("read after Seek = %q, %v", rest, err)
			}
			if got, err := fio.ReadFile(loc); err != nil || !bytes.Equal(got, data) {
				t.Fatalf("ReadFile = %d bytes, %v", len(got), err)
			}
		})
	}

	// WriteFile, bare keys, Remove, missing files.
	if err := fio.WriteFile("warehouse/ns/t/metadata/v1.json", []byte("{}")); err != nil {
		t.Fatal(err)
	}
	if got, err := fio.ReadFile(fio.Location("warehouse/ns/t/metadata/v1.json")); err != nil || string(got) != "{}" {
		t.Fatalf("ReadFile = %q, %v", got, err)
	}
	if err := fio.Remove(fio.Location("warehouse/ns/t/metadata/v1.json")); err != nil {
		t.Fatal(err)
	}
	for _, op := range []func(string) error{
		func(n string) error { _, err := fio.Open(n); return err },
		func(n string) error { _, err := fio.Stat(n); return err },
		func(n string) error { _, err := fio.ReadFile(n); return err },
	} {
		if err := op(fio.Location("warehouse/ns/t/metadata/v1.json")); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("after Remove: %v, want fs.ErrNotExist", err)
		}
		// A key that prefixes a stored one is not that one.
		if err := op(fio.Location("warehouse/ns/t/data/small")); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("prefix of a key: %v, want fs.ErrNotExist", err)
		}
	}

	// Nothing is ever written outside the store.
	if err := fio.WriteFile("file:///tmp/elsewhere", []byte("x")); !errors.Is(err, ErrOutsideStore) {
		t.Fatalf("WriteFile outside = %v, want ErrOutsideStore", err)
	}
	if _, err := fio.Create(base + "/../escape"); err == nil {
		t.Fatal("Create with .. accepted")
	}
}

func TestFileIOWalkAndDelete(t *testing.T) {
	store, base := newFileStore(t)
	fio := NewFileIO(store, base)
	keys := []string{
		"warehouse/ns/t/data/a.parquet",
		"warehouse/ns/t/data/b.parquet",
		"warehouse/ns/t/metadata/00000-x.metadata.json",
		"warehouse/ns/t2/data/c.parquet", // another table: t is not a prefix of t2
		"intake/0/obj",
	}
	for _, k := range keys {
		if err := fio.WriteFile(fio.Location(k), []byte(k)); err != nil {
			t.Fatal(err)
		}
	}
	walk := func(root string, skip func(string) error) []string {
		t.Helper()
		var got []string
		err := fio.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() {
				if p != root {
					t.Errorf("directory %q reported", p)
				}
				return nil
			}
			if info, err := d.Info(); err != nil || info.Size() != int64(len(mustKey(t, fio, p))) {
				t.Errorf("%s: info %v, %v", p, info, err)
			}
			got = append(got, p)
			if skip != nil {
				return skip(p)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	table := fio.Location("warehouse/ns/t")
	want := []string{fio.Location(keys[0]), fio.Location(keys[1]), fio.Location(keys[2])}
	if got := walk(table, nil); !slices.Equal(got, want) {
		t.Fatalf("WalkDir = %q, want %q", got, want)
	}
	if got := walk(table+"/", nil); !slices.Equal(got, want) {
		t.Fatalf("WalkDir with trailing / = %q", got)
	}
	// SkipDir from a file leaves its directory; SkipAll ends the walk.
	if got := walk(table, func(p string) error {
		if strings.HasSuffix(p, "a.parquet") {
			return fs.SkipDir
		}
		return nil
	}); !slices.Equal(got, []string{want[0], want[2]}) {
		t.Fatalf("WalkDir with SkipDir = %q", got)
	}
	if got := walk(table, func(string) error { return fs.SkipAll }); len(got) != 1 {
		t.Fatalf("WalkDir with SkipAll = %q", got)
	}
	if got := walk(fio.Location("warehouse/none"), nil); len(got) != 0 {
		t.Fatalf("WalkDir of nothing = %q", got)
	}
	if err := fio.WalkDir("file:///elsewhere", func(string, fs.DirEntry, error) error { return nil }); !errors.Is(err, ErrOutsideStore) {
		t.Fatalf("WalkDir outside = %v", err)
	}

	deleted, err := fio.DeleteFiles(context.Background(), []string{want[0], fio.Location("warehouse/ns/t/data/missing"), "file:///elsewhere/x", want[1]})
	if err == nil || !errors.Is(err, ErrOutsideStore) {
		t.Fatalf("DeleteFiles err = %v, want the outside name's error", err)
	}
	if len(deleted) != 3 {
		t.Fatalf("deleted = %q", deleted)
	}
	if got := walk(table, nil); !slices.Equal(got, want[2:]) {
		t.Fatalf("after DeleteFiles = %q", got)
	}
}

func mustKey(t *testing.T, fio *FileIO, name string) string {
	t.Helper()
	k, err := fio.Key(name)
	if err != nil {
		t.Fatal(err)
	}
	return k
}
