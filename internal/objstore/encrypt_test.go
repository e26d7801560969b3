package objstore

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
)

// writeKey writes key material to a file and returns its URL.
func writeKey(t *testing.T, content []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "kek.key")
	if err := os.WriteFile(path, content, 0o600); err != nil {
		t.Fatal(err)
	}
	return "file://" + filepath.ToSlash(path)
}

func newKey(t *testing.T) string {
	t.Helper()
	k := make([]byte, 32)
	_, _ = rand.Read(k)
	return writeKey(t, k)
}

// countingStore counts the calls that reach the store it wraps.
type countingStore struct {
	Store
	gets, ranges atomic.Int64
	onRange      func(key string, off int64) // called before a ranged read
}

func (c *countingStore) Get(ctx context.Context, key string) ([]byte, error) {
	c.gets.Add(1)
	return c.Store.Get(ctx, key)
}

func (c *countingStore) GetRange(ctx context.Context, key string, off, length int64) ([]byte, error) {
	c.ranges.Add(1)
	if c.onRange != nil {
		c.onRange(key, off)
	}
	return c.Store.GetRange(ctx, key, off, length)
}

func (c *countingStore) Close() error { return nil } // the test owns the inner store

func memStore(t *testing.T) Store {
	t.Helper()
	s := openMem()
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// encrypted opens an encrypted store over inner with the given key URLs.
func encrypted(t *testing.T, inner Store, keys ...string) *EncryptedStore {
	t.Helper()
	ring, err := LoadKeys(context.Background(), keys)
	if err != nil {
		t.Fatal(err)
	}
	e, err := NewEncryptedStore(context.Background(), &countingStore{Store: inner}, ring, EncryptOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Close() })
	return e
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

func TestEncryptedSizes(t *testing.T) {
	for _, n := range []int64{0, 1, 15, 16, 17, chunkLen - 1, chunkLen, chunkLen + 1, 2 * chunkLen, 5*chunkLen + 123} {
		stored := encryptedSize(n)
		if got, ok := plaintextSize(stored); !ok || got != n {
			t.Errorf("plaintextSize(encryptedSize(%d) = %d) = %d, %v", n, stored, got, ok)
		}
	}
	for _, stored := range []int64{0, 5, headerLen, headerLen + 15, headerLen + sealedChunk + 1, headerLen + sealedChunk + 16} {
		if n, ok := plaintextSize(stored); ok {
			t.Errorf("plaintextSize(%d) = %d, want no encrypted layout", stored, n)
		}
	}
}

func TestEncryptedGetRangeChunkBoundaries(t *testing.T) {
	ctx := context.Background()
	inner := memStore(t)
	key := newKey(t)
	w := encrypted(t, inner, key)
	const C = chunkLen
	for _, size := range []int64{1, C - 1, C, C + 1, 2 * C, 3*C + 5} {
		data := randomBytes(int(size))
		name := fmt.Sprintf("obj/%d", size)
		if err := w.Put(ctx, name, data); err != nil {
			t.Fatal(err)
		}
		var ranges [][2]int64 // off, length
		for _, off := range []int64{0, 1, C - 1, C, C + 1, 2*C - 1, 2 * C, 3 * C, size - 1, size} {
			for _, length := range []int64{0, 1, 2, C - 1, C, C + 1, 2 * C, size - off} {
				if off >= 0 && length >= 0 && off+length <= size {
					ranges = append(ranges, [2]int64{off, length})
				}
			}
		}
		for _, rg := range ranges {
			off, length := rg[0], rg[1]
			t.Run(fmt.Sprintf("size=%d/off=%d/len=%d", size, off, length), func(t *testing.T) {
				// r reads with no cached data key: header, then chunks.
				r := encrypted(t, inner, key)
				cs := r.inner.(*countingStore)
				for pass, s := range []*EncryptedStore{r, r, w} {
					before := cs.ranges.Load()
					got, err := s.GetRange(ctx, name, off, length)
					if err != nil {
						t.Fatalf("pass %d: %v", pass, err)
					}
					if !bytes.Equal(got, data[off:off+length]) {
						t.Fatalf("pass %d: wrong bytes", pass)
					}
					reads := cs.ranges.Load() - before
					if s != r {
						continue
					}
					want := int64(1) // cached data key: one ranged read of the chunks
					if length == 0 {
						want = 0
					}
					if pass == 0 {
						want++ // the header
					}
					if reads != want {
						t.Fatalf("pass %d: %d ranged reads of the store, want %d", pass, reads, want)
					}
				}
			})
		}
		if _, err := w.GetRange(ctx, name, size-1, 2); !errors.Is(err, ErrOutOfRange) {
			t.Fatalf("range past the end of %d bytes: %v, want ErrOutOfRange", size, err)
		}
	}
}

func TestEncryptedTamper(t *testing.T) {
	ctx := context.Background()
	inner := memStore(t)
	key := newKey(t)
	w := encrypted(t, inner, key)
	data := randomBytes(2*chunkLen + 100)
	if err := w.Put(ctx, "t/obj", data); err != nil {
		t.Fatal(err)
	}
	good, err := inner.Get(ctx, "t/obj")
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(good, data[:64]) {
		t.Fatal("the stored object holds the plaintext")
	}
	flip := func(i int) func([]byte) []byte {
		return func(b []byte) []byte { b[i] ^= 0x40; return b }
	}
	wrapped := wrappedOff + 5
	tests := []struct {
		name   string
		mutate func([]byte) []byte
	}{
		{"magic", flip(1)},
		{"version", flip(4)},
		{"reserved", flip(5)},
		{"key id", flip(7)},
		{"size", flip(20)}, // larger: a header saying smaller fails a read past it as out of range, and any other read by authentication
		{"nonce", flip(25)},
		{"wrapped length", flip(35)},
		{"wrapped key", flip(wrapped)},
		{"padding", flip(headerLen - 1)},
		{"first chunk", flip(headerLen + 10)},
		{"first tag", flip(headerLen + chunkLen + 3)},
		{"middle chunk", flip(headerLen + sealedChunk + 1000)},
		{"last chunk", flip(len(good) - 20)},
		{"last tag", flip(len(good) - 1)},
		{"truncated by one byte", func(b []byte) []byte { return b[:len(b)-1] }},
		{"truncated by the last chunk", func(b []byte) []byte { return b[:headerLen+2*sealedChunk] }},
		{"truncated to the header", func(b []byte) []byte { return b[:headerLen] }},
		{"truncated in the header", func(b []byte) []byte { return b[:100] }},
		{"extended", func(b []byte) []byte { return append(b, 0) }},
		{"chunks swapped", func(b []byte) []byte {
			c0 := bytes.Clone(b[headerLen : headerLen+sealedChunk])
			copy(b[headerLen:], b[headerLen+sealedChunk:headerLen+2*sealedChunk])
			copy(b[headerLen+sealedChunk:], c0)
			return b
		}},
	}
	if got, err := encrypted(t, inner, key).GetRange(ctx, "t/obj", 0, int64(len(data))); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("the untampered object does not read back: %v", err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bad := tt.mutate(bytes.Clone(good))
			if err := inner.Put(ctx, "t/obj", bad); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = inner.Put(ctx, "t/obj", good) })
			r := encrypted(t, inner, key) // another broker: nothing cached
			if got, err := r.Get(ctx, "t/obj"); err == nil {
				t.Fatalf("Get of a tampered object returned %d bytes, no error", len(got))
			} else if !errors.Is(err, ErrDecrypt) {
				t.Fatalf("Get: %v, want ErrDecrypt", err)
			}
			r = encrypted(t, inner, key)
			got, err := r.GetRange(ctx, "t/obj", 0, int64(len(data)))
			if tt.name == "extended" { // a range read meets only authentic chunks
				if err != nil || !bytes.Equal(got, data) {
					t.Fatalf("GetRange: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("GetRange of a tampered object returned %d bytes, no error", len(got))
			}
			if !errors.Is(err, ErrDecrypt) {
				t.Fatalf("GetRange: %v, want ErrDecrypt", err)
			}
		})
	}
	t.Run("moved to another key", func(t *testing.T) {
		if err := inner.Put(ctx, "t/moved", good); err != nil {
			t.Fatal(err)
		}
		if _, err := encrypted(t, inner, key).Get(ctx, "t/moved"); !errors.Is(err, ErrDecrypt) {
			t.Fatalf("Get of an object copied under another key: %v, want ErrDecrypt", err)
		}
	})
	t.Run("cached key, tampered chunk", func(t *testing.T) {
		// The writer holds the data key; a damaged chunk is still an error.
		b := bytes.Clone(good)
		b[headerLen+sealedChunk+7] ^= 1
		if err := inner.Put(ctx, "t/obj", b); err != nil {
			t.Fatal(err)
		}
		if _, err := w.GetRange(ctx, "t/obj", chunkLen, 10); !errors.Is(err, ErrDecrypt) {
			t.Fatalf("GetRange: %v, want ErrDecrypt", err)
		}
	})
}

func TestEncryptedReadsPlaintext(t *testing.T) {
	ctx := context.Background()
	inner := memStore(t)
	objects := map[string][]byte{
		"old/empty": {},
		"old/tiny":  []byte("ab"),
		"old/small": []byte("a plaintext object written before encryption"),
		"old/big":   randomBytes(3*headerLen + 7),
		"old/rnl":   []byte("RNL"),
	}
	for k, v := range objects {
		if err := inner.Put(ctx, k, v); err != nil {
			t.Fatal(err)
		}
	}
	e := encrypted(t, inner, newKey(t))
	for k, v := range objects {
		got, err := e.Get(ctx, k)
		if err != nil || !bytes.Equal(got, v) {
			t.Fatalf("Get(%s) = %q, %v", k, got, err)
		}
		for _, rg := range [][2]int64{{0, int64(len(v))}, {0, 0}, {int64(len(v)) / 2, int64(len(v)) - int64(len(v))/2}, {headerLen - 3, 10}, {headerLen, int64(len(v)) - headerLen}} {
			off, n := rg[0], rg[1]
			if off < 0 || n < 0 || off+n > int64(len(v)) {
				continue
			}
			got, err := e.GetRange(ctx, k, off, n)
			if err != nil || !bytes.Equal(got, v[off:off+n]) {
				t.Fatalf("GetRange(%s, %d, %d) = %d bytes, %v", k, off, n, len(got), err)
			}
		}
		if _, err := e.GetRange(ctx, k, int64(len(v)), 1); !errors.Is(err, ErrOutOfRange) {
			t.Fatalf("GetRange(%s) past the end: %v, want ErrOutOfRange", k, err)
		}
	}
	sizes := map[string]int64{}
	if err := e.List(ctx, "old/", func(o ObjectInfo) error { sizes[o.Key] = o.Size; return nil }); err != nil {
		t.Fatal(err)
	}
	for k, v := range objects {
		if _, fits := plaintextSize(int64(len(v))); fits {
			continue // reported as if encrypted: see List
		}
		if sizes[k] != int64(len(v)) {
			t.Errorf("List size of plaintext %s = %d, want %d", k, sizes[k], len(v))
		}
	}
}

// TestEncryptedPlaintextEncryptedDuringRead: a range read of a plaintext
// object that is encrypted in place meanwhile (rewrap --encrypt-plaintext)
// returns the plaintext, never the ciphertext's bytes.
func TestEncryptedPlaintextEncryptedDuringRead(t *testing.T) {
	ctx := context.Background()
	inner := memStore(t)
	key := newKey(t)
	data := randomBytes(4 * headerLen)
	if err := inner.Put(ctx, "p/obj", data); err != nil {
		t.Fatal(err)
	}
	rewriter := encrypted(t, inner, key)
	reader := encrypted(t, inner, key)
	cs := reader.inner.(*countingStore)
	done := false
	cs.onRange = func(name string, off int64) {
		if off == 2*headerLen && !done { // the range read, after the probe saw plaintext
			done = true
			if err := rewriter.Put(ctx, "p/obj", data); err != nil {
				t.Error(err)
			}
		}
	}
	got, err := reader.GetRange(ctx, "p/obj", 2*headerLen, 100)
	if err != nil {
		t.Fatal(err)
	}
	if !done {
		t.Fatal("the object was not rewritten during the read")
	}
	if !bytes.Equal(got, data[2*headerLen:2*headerLen+100]) {
		t.Fatal("GetRange returned bytes of the encrypted object as plaintext")
	}
}

func TestEncryptedRotationAndRewrap(t *testing.T) {
	ctx := context.Background()
	inner := memStore(t)
	a, b := newKey(t), newKey(t)
	want := map[string][]byte{}
	put := func(s Store, name string, n int) {
		t.Helper()
		want[name] = randomBytes(n)
		if err := s.Put(ctx, name, want[name]); err != nil {
			t.Fatal(err)
		}
	}
	readAll := func(s Store) {
		t.Helper()
		for name, v := range want {
			got, err := s.Get(ctx, name)
			if err != nil || !bytes.Equal(got, v) {
				t.Fatalf("Get(%s): %v", name, err)
			}
			if len(v) > 10 {
				got, err = s.GetRange(ctx, name, 5, int64(len(v))-10)
				if err != nil || !bytes.Equal(got, v[5:len(v)-5]) {
					t.Fatalf("GetRange(%s): %v", name, err)
				}
			}
		}
	}
	if err := inner.Put(ctx, "intake/0/plain", []byte("written before encryption")); err != nil {
		t.Fatal(err)
	}
	want["intake/0/plain"] = []byte("written before encryption")

	sa := encrypted(t, inner, a)
	put(sa, "intake/0/a1", 100)
	put(sa, "topics/x/0/a2", 3*chunkLen+1)
	put(sa, "checkpoints/a3", 0)
	readAll(sa)
	idA := sa.keys.Newest()

	// B alone cannot open a store that holds objects under A.
	ring, err := LoadKeys(ctx, []string{b})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewEncryptedStore(ctx, inner, ring, EncryptOptions{}); !errors.Is(err, ErrKeyNotConfigured) || !strings.Contains(err.Error(), idA.String()) {
		t.Fatalf("opening with only the new key: %v, want ErrKeyNotConfigured naming %s", err, idA)
	}
	_ = ring.Close()

	sba := encrypted(t, inner, b, a)
	readAll(sba)
	put(sba, "intake/0/b1", 70000)
	readAll(sba)

	// A dry run changes nothing.
	ring, _ = LoadKeys(ctx, []string{b, a})
	dry, err := NewEncryptedStore(ctx, inner, ring, EncryptOptions{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := dry.Rewrap(ctx, RewrapOptions{DryRun: true, EncryptPlaintext: true})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Objects != 5 || rep.Rewrapped != 3 || rep.Current != 1 || rep.Encrypted != 1 || len(rep.Retired) != 0 {
		t.Fatalf("dry run report %+v", rep)
	}
	rep, err = sba.Rewrap(ctx, RewrapOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Objects != 5 || rep.Rewrapped != 3 || rep.Current != 1 || rep.Plaintext != 1 || rep.Vanished != 0 ||
		len(rep.Retired) != 1 || rep.Retired[0] != idA {
		t.Fatalf("rewrap report %+v", rep)
	}
	// A broker that cached an object's data key before the rewrap still
	// reads it.
	for _, name := range []string{"intake/0/a1", "topics/x/0/a2"} {
		if got, err := sa.Get(ctx, name); err != nil || !bytes.Equal(got, want[name]) {
			t.Fatalf("Get(%s) with the data key cached before the rewrap: %v", name, err)
		}
		if got, err := sa.GetRange(ctx, name, 1, 50); err != nil || !bytes.Equal(got, want[name][1:51]) {
			t.Fatalf("GetRange(%s) with the data key cached before the rewrap: %v", name, err)
		}
	}
	readAll(sba)

	sb := encrypted(t, inner, b)
	readAll(sb)
	rep, err = sb.Rewrap(ctx, RewrapOptions{EncryptPlaintext: true})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Current != 4 || rep.Encrypted != 1 || rep.Rewrapped != 0 {
		t.Fatalf("second rewrap report %+v", rep)
	}
	readAll(encrypted(t, inner, b))
	raw, _ := inner.Get(ctx, "intake/0/plain")
	if !hasMagic(raw) {
		t.Fatal("--encrypt-plaintext left the plaintext object as it was")
	}
}

func TestEncryptedRewrapSkipsVanished(t *testing.T) {
	ctx := context.Background()
	mem := memStore(t)
	a, b := newKey(t), newKey(t)
	sa := encrypted(t, mem, a)
	for _, name := range []string{"intake/0/1", "intake/0/2"} {
		if err := sa.Put(ctx, name, []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	cs := &countingStore{Store: mem}
	cs.onRange = func(name string, _ int64) {
		if name == "intake/0/2" {
			_ = mem.Delete(ctx, name) // the broker collects it during the pass
		}
	}
	ring, _ := LoadKeys(ctx, []string{b, a})
	s, err := NewEncryptedStore(ctx, cs, ring, EncryptOptions{})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := s.Rewrap(ctx, RewrapOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Rewrapped != 1 || rep.Vanished != 1 {
		t.Fatalf("report %+v", rep)
	}
	if _, err := mem.Get(ctx, "intake/0/2"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a vanished object was written back: %v", err)
	}
}

func TestEncryptedKeyErrors(t *testing.T) {
	ctx := context.Background()
	raw := randomBytes(32)
	b64 := base64.StdEncoding.EncodeToString(raw)
	t.Run("formats", func(t *testing.T) {
		r1, err := LoadKeys(ctx, []string{writeKey(t, raw)})
		if err != nil {
			t.Fatal(err)
		}
		r2, err := LoadKeys(ctx, []string{writeKey(t, []byte("  "+b64+"\n"))})
		if err != nil {
			t.Fatal(err)
		}
		if r1.Newest() != r2.Newest() {
			t.Fatal("the same key raw and in base64 has two ids")
		}
	})
	missing := "file://" + filepath.ToSlash(filepath.Join(t.TempDir(), "nope.key"))
	tests := []struct {
		name string
		keys []string
		want string
	}{
		{"missing file", []string{missing}, "nope.key"},
		{"short key", []string{writeKey(t, raw[:16])}, "16 bytes"},
		{"long key", []string{writeKey(t, append(raw, '!'))}, "33 bytes"},
		{"bad base64", []string{writeKey(t, []byte(b64[:40]+"!!!!"))}, "want exactly 32 raw bytes"},
		{"unsupported scheme", []string{"ftp://host/key"}, `unsupported scheme "ftp"`},
		{"empty base64key", []string{"base64key://"}, "random key"},
		{"bad base64key", []string{"base64key://c2hvcnQ="}, "base64key://(redacted)"},
		{"same key twice", []string{writeKey(t, raw), writeKey(t, []byte(b64))}, "same key"},
		{"old key missing", []string{newKey(t), missing}, "encryption.keys[1]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := LoadKeys(ctx, tt.keys)
			if !errors.Is(err, ErrBadKey) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("LoadKeys: %v, want ErrBadKey mentioning %q", err, tt.want)
			}
		})
	}
	t.Run("wrong key behind the same id", func(t *testing.T) {
		// A key service URL whose key changed: same id, other material.
		inner := memStore(t)
		good := newKey(t)
		encrypted(t, inner, good)
		ring, _ := LoadKeys(ctx, []string{good})
		other, _ := LoadKeys(ctx, []string{newKey(t)})
		ring.keys[0].gcm = other.keys[0].gcm
		if _, err := NewEncryptedStore(ctx, inner, ring, EncryptOptions{}); !errors.Is(err, ErrBadKey) || !strings.Contains(err.Error(), "keys/check-") {
			t.Fatalf("NewEncryptedStore: %v, want ErrBadKey naming the key check", err)
		}
	})
	t.Run("encrypted store opened without keys", func(t *testing.T) {
		inner := memStore(t)
		e := encrypted(t, inner, newKey(t))
		if err := e.Put(ctx, "intake/0/x", []byte("secret")); err != nil {
			t.Fatal(err)
		}
		err := CheckUnencrypted(ctx, inner)
		if !errors.Is(err, ErrKeyNotConfigured) || !strings.Contains(err.Error(), e.keys.Newest().String()) {
			t.Fatalf("CheckUnencrypted: %v", err)
		}
	})
	t.Run("object under an unknown key", func(t *testing.T) {
		inner := memStore(t)
		a := encrypted(t, inner, newKey(t))
		if err := a.Put(ctx, "intake/0/x", []byte("secret")); err != nil {
			t.Fatal(err)
		}
		// Its key check removed, the store opens with another key; the
		// object itself still names its key.
		if err := inner.Delete(ctx, keyCheckName(a.keys.Newest())); err != nil {
			t.Fatal(err)
		}
		b := encrypted(t, inner, newKey(t))
		for _, read := range []func() error{
			func() error { _, err := b.Get(ctx, "intake/0/x"); return err },
			func() error { _, err := b.GetRange(ctx, "intake/0/x", 1, 2); return err },
		} {
			err := read()
			if !errors.Is(err, ErrDecrypt) || !errors.Is(err, ErrKeyNotConfigured) || !strings.Contains(err.Error(), a.keys.Newest().String()) {
				t.Fatalf("read: %v, want ErrKeyNotConfigured naming %s", err, a.keys.Newest())
			}
		}
	})
	t.Run("reserved keys", func(t *testing.T) {
		e := encrypted(t, memStore(t), newKey(t))
		if err := e.Put(ctx, "keys/check-0000000000000000", []byte("x")); !errors.Is(err, ErrInvalidKey) {
			t.Fatalf("Put under keys/: %v, want ErrInvalidKey", err)
		}
	})
}

func BenchmarkEncrypted(b *testing.B) {
	ctx := context.Background()
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	path := filepath.Join(b.TempDir(), "kek.key")
	if err := os.WriteFile(path, key, 0o600); err != nil {
		b.Fatal(err)
	}
	open := func(b *testing.B, encrypt bool) Store {
		inner := openMem()
		if !encrypt {
			return inner
		}
		s, err := OpenEncrypted(ctx, inner, []string{"file://" + path})
		if err != nil {
			b.Fatal(err)
		}
		return s
	}
	for _, encrypt := range []bool{false, true} {
		name := "plain"
		if encrypt {
			name = "encrypted"
		}
		for _, size := range []int{4 << 10, 1 << 20, 4 << 20} {
			data := randomBytes(size)
			b.Run(fmt.Sprintf("%s/Put/%d", name, size), func(b *testing.B) {
				s := open(b, encrypt)
				defer s.Close()
				b.SetBytes(int64(size))
				b.ReportAllocs()
				for i := 0; b.Loop(); i++ {
					if err := s.Put(ctx, fmt.Sprintf("o/%d", i%64), data); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
		data := randomBytes(4 << 20)
		for _, n := range []int{1 << 10, 16 << 10, 1 << 20} {
			b.Run(fmt.Sprintf("%s/GetRange/%d", name, n), func(b *testing.B) {
				s := open(b, encrypt)
				defer s.Close()
				if err := s.Put(ctx, "o/seg", data); err != nil {
					b.Fatal(err)
				}
				b.SetBytes(int64(n))
				b.ReportAllocs()
				for i := 0; b.Loop(); i++ {
					off := int64(i*7919*1024) % int64(len(data)-n)
					if _, err := s.GetRange(ctx, "o/seg", off, int64(n)); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// TestIsLocal: the file store, encrypted or not, is local; memory and S3
// stores are not (archival reads whole objects from those).
func TestIsLocal(t *testing.T) {
	ctx := context.Background()
	file, err := Open(ctx, "file://"+t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = file.Close() })
	ring, err := LoadKeys(ctx, []string{newKey(t)})
	if err != nil {
		t.Fatal(err)
	}
	enc, err := NewEncryptedStore(ctx, file, ring, EncryptOptions{})
	if err != nil {
		t.Fatal(err)
	}
	s3, err := Open(ctx, "s3://bkt?endpoint=http://127.0.0.1:9&region=us-east-1&use_path_style=true")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s3.Close() })
	for _, c := range []struct {
		name  string
		s     Store
		local bool
	}{{"file", file, true}, {"encrypted file", enc, true}, {"memory", memStore(t), false}, {"s3", s3, false}} {
		if got := IsLocal(c.s); got != c.local {
			t.Errorf("IsLocal(%s) = %v, want %v", c.name, got, c.local)
		}
	}
}
