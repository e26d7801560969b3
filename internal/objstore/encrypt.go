package objstore

import (
	"bytes"
	"container/list"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
)

// Encryption at rest: EncryptedStore envelope-encrypts every object it
// writes. An encrypted object is
//
//	header (headerLen bytes):
//	  0  "RNLE"  magic
//	  4  1       format version
//	  5  0       reserved
//	  6  key id  the KEK that wrapped the data key (8 bytes)
//	  14 size    plaintext length (uint64, big endian)
//	  22 nonce   per-object random nonce base (12 bytes)
//	  34 n       length of the wrapped data key (uint16)
//	  36 wrapped data key (n bytes), then zeros up to headerLen
//	chunks: the plaintext in chunkLen pieces (at least one, possibly
//	  empty), each sealed with AES-256-GCM under the object's data key.
//
// Chunk i's nonce is the nonce base with its last 8 bytes XORed with i; its
// additional data binds the format version, the object's key, the
// plaintext length, i and whether it is the last chunk, so chunks cannot be
// moved, reordered, dropped or carried to another object. The header is
// not sealed (re-wrapping rewrites it and nothing else) but is parsed
// strictly: every field is checked, and the padding must be zeros.
//
// The header has a fixed length, so an object's stored size is a function
// of its plaintext size: List reports plaintext sizes without reading
// objects, and a range read costs one ranged read of the chunks it covers
// once the object's data key is cached.
const (
	encMagic    = "RNLE"
	encVersion  = 1
	headerLen   = 1024
	chunkLen    = 64 << 10
	tagLen      = 16
	nonceLen    = 12
	dataKeyLen  = 32
	wrappedOff  = 36
	maxWrapped  = headerLen - wrappedOff
	sealedChunk = chunkLen + tagLen
)

// keyCheckPrefix holds one small encrypted object per KEK that ever wrote
// to the store (see NewEncryptedStore). The encrypted store reserves it.
const keyCheckPrefix = "keys/check-"

// Sentinel errors of encryption at rest.
var (
	// ErrDecrypt means an encrypted object could not be decrypted: it is
	// corrupt or was tampered with, or its key is not configured.
	ErrDecrypt = errors.New("objstore: cannot decrypt object")
	// ErrKeyNotConfigured means the store holds objects whose data keys are
	// wrapped by a key that is not configured. It comes with ErrDecrypt
	// when reading such an object.
	ErrKeyNotConfigured = errors.New("objstore: encryption key not configured")
)

// EncryptOptions tune an EncryptedStore.
type EncryptOptions struct {
	// ReadOnly leaves the store untouched when it opens: the newest key's
	// check object is verified if present but never written (dry runs).
	ReadOnly bool
	// CacheEntries bounds the cache of unwrapped data keys (default 4096
	// objects).
	CacheEntries int
}

// EncryptedStore is a Store that envelope-encrypts objects (see the format
// above): each Put draws a fresh 256-bit data key, seals the object with it
// and stores it wrapped by the newest key of its Keyring. Get and GetRange
// decrypt with whichever configured key wrapped the object, and return
// objects without the header as they are, so a store that held plaintext
// objects before encryption was turned on stays readable. A corrupt or
// tampered object, or one wrapped by a key that is not configured, is an
// error wrapping ErrDecrypt, never wrong bytes.
//
// Keys under "keys/" are reserved: the store keeps its key check objects
// there, rejects them with ErrInvalidKey and List never reports them.
type EncryptedStore struct {
	inner  Store
	keys   *Keyring
	cache  *dataKeyCache
	closed atomic.Bool
}

var _ Store = (*EncryptedStore)(nil)

// OpenEncrypted wraps inner in an EncryptedStore using the keys named by
// keyURLs (newest first; see LoadKeys), after the start-up checks of
// NewEncryptedStore. With no keys it returns inner itself once
// CheckUnencrypted has found no trace of encryption in it. It owns inner:
// on error inner is closed.
func OpenEncrypted(ctx context.Context, inner Store, keyURLs []string) (_ Store, err error) {
	defer func() {
		if err != nil {
			_ = inner.Close()
		}
	}()
	if len(keyURLs) == 0 {
		if err := CheckUnencrypted(ctx, inner); err != nil {
			return nil, err
		}
		return inner, nil
	}
	ring, err := LoadKeys(ctx, keyURLs)
	if err != nil {
		return nil, err
	}
	s, err := NewEncryptedStore(ctx, inner, ring, EncryptOptions{})
	if err != nil {
		_ = ring.Close()
		return nil, err
	}
	return s, nil
}

// CheckUnencrypted returns an error naming the keys if s holds key check
// objects: its objects are encrypted, and reading them without the keys
// would return ciphertext.
func CheckUnencrypted(ctx context.Context, s Store) error {
	ids, err := listKeyChecks(ctx, s)
	if err != nil {
		return err
	}
	if len(ids) > 0 {
		return fmt.Errorf("%w: the object store holds objects encrypted under key id(s) %s (see %s<id>), but no encryption key is configured: set encryption.keys (`runnel keys id` prints a key's id)",
			ErrKeyNotConfigured, joinIDs(ids), keyCheckPrefix)
	}
	return nil
}

// NewEncryptedStore returns an EncryptedStore over inner, owning inner and
// keys (Close closes both). It checks at once that the keys fit the store,
// so a wrong or missing key is an error here rather than garbage later:
//
//   - every KEK that ever wrapped a data key in the store left a small
//     encrypted object "keys/check-<id>"; one whose id is not configured
//     means the store holds objects nobody can read: an error wrapping
//     ErrKeyNotConfigured that names the id;
//   - every configured key with a check object must decrypt it (a key
//     service URL that now names another key fails here);
//   - the newest key writes its check object if it has none (not with
//     ReadOnly), before any object is written under it.
//
// This costs one List of a handful of names and one small Get per key,
// whatever the store's size. Objects written before the check objects
// existed are plaintext, which needs no key.
func NewEncryptedStore(ctx context.Context, inner Store, keys *Keyring, opts EncryptOptions) (*EncryptedStore, error) {
	n := opts.CacheEntries
	if n <= 0 {
		n = 4096
	}
	e := &EncryptedStore{inner: inner, keys: keys, cache: newDataKeyCache(n)}
	if err := e.checkKeys(ctx, !opts.ReadOnly); err != nil {
		return nil, err
	}
	return e, nil
}

func keyCheckName(id KeyID) string { return keyCheckPrefix + id.String() }

func keyCheckPlaintext(id KeyID) []byte {
	return []byte("runnel encryption key check " + id.String() + "\n")
}

// listKeyChecks returns the key ids of the check objects in s.
func listKeyChecks(ctx context.Context, s Store) ([]KeyID, error) {
	var ids []KeyID
	err := s.List(ctx, keyCheckPrefix, func(o ObjectInfo) error {
		var id KeyID
		h := strings.TrimPrefix(o.Key, keyCheckPrefix)
		if b, err := hex.DecodeString(h); err == nil && len(b) == len(id) {
			copy(id[:], b)
			ids = append(ids, id)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("objstore: listing the encryption key checks: %w", err)
	}
	return ids, nil
}

func joinIDs(ids []KeyID) string {
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = id.String()
	}
	return strings.Join(s, ", ")
}

func (e *EncryptedStore) checkKeys(ctx context.Context, write bool) error {
	ids, err := listKeyChecks(ctx, e.inner)
	if err != nil {
		return err
	}
	var missing []KeyID
	present := map[KeyID]bool{}
	for _, id := range ids {
		present[id] = true
		if e.keys.byID[id] == nil {
			missing = append(missing, id)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: the object store holds objects encrypted under key id(s) %s (see %s<id>), not among the configured keys (%s): configure them again after the newest key (`runnel keys id` prints a key's id), and keep them until `runnel keys rewrap` has moved every object to the newest key",
			ErrKeyNotConfigured, joinIDs(missing), keyCheckPrefix, e.keys.describe())
	}
	for _, k := range e.keys.keys {
		if present[k.id] {
			if err := e.verifyKeyCheck(ctx, k); err != nil {
				return err
			}
		}
	}
	newest := e.keys.keys[0]
	if write && !present[newest.id] {
		obj, _, err := e.seal(ctx, keyCheckName(newest.id), keyCheckPlaintext(newest.id), newest)
		if err != nil {
			return err
		}
		if err := e.inner.Put(ctx, keyCheckName(newest.id), obj); err != nil {
			return fmt.Errorf("objstore: writing the key check of key %s (id %s): %w", newest.name, newest.id, err)
		}
	}
	return nil
}

// verifyKeyCheck decrypts k's check object with k itself.
func (e *EncryptedStore) verifyKeyCheck(ctx context.Context, k *kek) error {
	name := keyCheckName(k.id)
	b, err := e.inner.Get(ctx, name)
	if errors.Is(err, ErrNotFound) {
		return nil // removed meanwhile by a rewrap: the key is no longer needed
	}
	if err != nil {
		return fmt.Errorf("objstore: reading the key check of key %s (id %s): %w", k.name, k.id, err)
	}
	got, err := e.open(ctx, name, b, k)
	if err == nil && !bytes.Equal(got, keyCheckPlaintext(k.id)) {
		err = errors.New("wrong content")
	}
	if err != nil {
		return fmt.Errorf("%w %s (id %s): it does not decrypt %s, written by the key with this id: %w", ErrBadKey, k.name, k.id, name, err)
	}
	return nil
}

// header is a parsed object header.
type header struct {
	kid     KeyID
	size    int64
	nonce   [nonceLen]byte
	wrapped []byte
}

func hasMagic(b []byte) bool { return len(b) >= len(encMagic) && string(b[:len(encMagic)]) == encMagic }

// damagedMagic reports whether b, which lacks the magic, is otherwise an
// encrypted object's header: an object whose first bytes were corrupted,
// not one written before encryption was turned on (no plaintext object
// has the header's layout and zero padding by chance).
func damagedMagic(b []byte) bool {
	if len(b) < headerLen || hasMagic(b) {
		return false
	}
	fixed := bytes.Clone(b[:headerLen])
	copy(fixed, encMagic)
	_, err := parseHeader(fixed)
	return err == nil
}

func (h *header) marshalTo(b []byte) {
	copy(b, encMagic)
	b[4] = encVersion
	copy(b[6:14], h.kid[:])
	binary.BigEndian.PutUint64(b[14:22], uint64(h.size))
	copy(b[22:34], h.nonce[:])
	binary.BigEndian.PutUint16(b[34:36], uint16(len(h.wrapped)))
	copy(b[wrappedOff:], h.wrapped)
}

func parseHeader(b []byte) (header, error) {
	var h header
	switch {
	case len(b) < headerLen:
		return h, fmt.Errorf("truncated header (%d bytes)", len(b))
	case !hasMagic(b):
		return h, errors.New("bad magic")
	case b[4] != encVersion:
		return h, fmt.Errorf("unsupported format version %d", b[4])
	case b[5] != 0:
		return h, errors.New("reserved header byte set")
	}
	copy(h.kid[:], b[6:14])
	size := binary.BigEndian.Uint64(b[14:22])
	if size > 1<<50 {
		return h, fmt.Errorf("implausible size %d", size)
	}
	h.size = int64(size)
	copy(h.nonce[:], b[22:34])
	n := int(binary.BigEndian.Uint16(b[34:36]))
	if n == 0 || n > maxWrapped {
		return h, fmt.Errorf("wrapped data key length %d", n)
	}
	h.wrapped = bytes.Clone(b[wrappedOff : wrappedOff+n])
	for _, c := range b[wrappedOff+n : headerLen] {
		if c != 0 {
			return h, errors.New("header padding not zero")
		}
	}
	return h, nil
}

// numChunks is how many chunks hold n plaintext bytes (at least one).
func numChunks(n int64) int64 { return max(1, (n+chunkLen-1)/chunkLen) }

// plainChunkLen is the plaintext length of chunk i of an n-byte object.
func plainChunkLen(i, n int64) int64 { return min(chunkLen, n-i*chunkLen) }

// encryptedSize is the stored size of an n-byte object.
func encryptedSize(n int64) int64 { return headerLen + n + numChunks(n)*tagLen }

// plaintextSize inverts encryptedSize; false if no plaintext size gives
// stored (the object is not encrypted, or is damaged).
func plaintextSize(stored int64) (int64, bool) {
	m := stored - headerLen
	if m < tagLen {
		return 0, false
	}
	k := (m + sealedChunk - 1) / sealedChunk
	n := m - k*tagLen
	if n < 0 || encryptedSize(n) != stored {
		return 0, false
	}
	return n, true
}

// dataKey is an object's unwrapped data key with what it seals.
type dataKey struct {
	aead  cipher.AEAD
	nonce [nonceLen]byte
	size  int64
}

func newDataKey(dk []byte, h header) *dataKey {
	block, _ := aes.NewCipher(dk)
	aead, _ := cipher.NewGCM(block)
	return &dataKey{aead: aead, nonce: h.nonce, size: h.size}
}

// chunkCrypt derives chunk nonces and additional data for one object.
type chunkCrypt struct {
	nonce [nonceLen]byte
	base  [nonceLen]byte
	aad   []byte // prefix, then index (8) and last flag (1)
}

func newChunkCrypt(key string, dk *dataKey) *chunkCrypt {
	c := &chunkCrypt{base: dk.nonce}
	c.aad = make([]byte, 0, len(encMagic)+1+2+len(key)+8+9)
	c.aad = append(c.aad, encMagic...)
	c.aad = append(c.aad, encVersion)
	c.aad = binary.BigEndian.AppendUint16(c.aad, uint16(len(key)))
	c.aad = append(c.aad, key...)
	c.aad = binary.BigEndian.AppendUint64(c.aad, uint64(dk.size))
	c.aad = append(c.aad, make([]byte, 9)...)
	return c
}

// at prepares the nonce and additional data of chunk i.
func (c *chunkCrypt) at(i int64, last bool) ([]byte, []byte) {
	c.nonce = c.base
	var ix [8]byte
	binary.BigEndian.PutUint64(ix[:], uint64(i))
	for j := range 8 {
		c.nonce[4+j] ^= ix[j]
	}
	t := c.aad[len(c.aad)-9:]
	copy(t, ix[:])
	t[8] = 0
	if last {
		t[8] = 1
	}
	return c.nonce[:], c.aad
}

func (e *EncryptedStore) check(key string) error {
	if e.closed.Load() {
		return ErrClosed
	}
	if err := ValidateKey(key); err != nil {
		return err
	}
	if strings.HasPrefix(key, "keys/") {
		return fmt.Errorf("%w %q: keys/ is reserved for the encryption key checks", ErrInvalidKey, key)
	}
	return nil
}

// seal encrypts data as the object key under a fresh data key wrapped by k.
func (e *EncryptedStore) seal(ctx context.Context, key string, data []byte, k *kek) ([]byte, *dataKey, error) {
	dk := make([]byte, dataKeyLen)
	_, _ = rand.Read(dk)
	h := header{kid: k.id, size: int64(len(data))}
	_, _ = rand.Read(h.nonce[:])
	var err error
	if h.wrapped, err = k.wrap(ctx, dk); err != nil {
		return nil, nil, fmt.Errorf("objstore: put %q: wrapping its data key with key %s (id %s): %w", key, k.name, k.id, err)
	}
	if len(h.wrapped) > maxWrapped {
		return nil, nil, fmt.Errorf("objstore: put %q: key %s wraps a data key into %d bytes, more than the header's %d", key, k.name, len(h.wrapped), maxWrapped)
	}
	d := newDataKey(dk, h)
	n := int64(len(data))
	out := make([]byte, encryptedSize(n))
	h.marshalTo(out)
	c := newChunkCrypt(key, d)
	chunks := numChunks(n)
	pos := int64(headerLen)
	for i := range chunks {
		pl := plainChunkLen(i, n)
		nonce, aad := c.at(i, i == chunks-1)
		d.aead.Seal(out[pos:pos], nonce, data[i*chunkLen:i*chunkLen+pl], aad)
		pos += pl + tagLen
	}
	return out, d, nil
}

// unwrapKey returns the data key of the object with header h.
func (e *EncryptedStore) unwrapKey(ctx context.Context, key string, h header) (*dataKey, error) {
	k := e.keys.byID[h.kid]
	if k == nil {
		return nil, fmt.Errorf("objstore: %q: its data key is wrapped by key id %s, which is not configured (configured: %s): %w (%w)",
			key, h.kid, joinIDs(e.keys.IDs()), ErrKeyNotConfigured, ErrDecrypt)
	}
	dk, err := k.unwrap(ctx, h.wrapped)
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("objstore: %q: %w", key, ctx.Err())
		}
		return nil, fmt.Errorf("%w %q: unwrapping its data key with key %s (id %s): %w", ErrDecrypt, key, k.name, k.id, err)
	}
	return newDataKey(dk, h), nil
}

// open decrypts a whole stored object b whose header says it was wrapped
// by k (or by any configured key if k is nil).
func (e *EncryptedStore) open(ctx context.Context, key string, b []byte, k *kek) ([]byte, error) {
	h, err := parseHeader(b)
	if err != nil {
		return nil, fmt.Errorf("%w %q: %w", ErrDecrypt, key, err)
	}
	if int64(len(b)) != encryptedSize(h.size) {
		return nil, fmt.Errorf("%w %q: %d bytes stored, the header says %d plaintext bytes (%d stored): truncated or extended",
			ErrDecrypt, key, len(b), h.size, encryptedSize(h.size))
	}
	if k != nil && h.kid != k.id {
		return nil, fmt.Errorf("%w %q: wrapped by key id %s, not %s", ErrDecrypt, key, h.kid, k.id)
	}
	// A cached data key of the same object (same random nonce base) is
	// its data key whatever the header's wrapping says now: a re-wrap
	// keeps the data key, and the chunks authenticate only under it.
	d := e.cache.get(key)
	if k != nil || d == nil || d.nonce != h.nonce || d.size != h.size {
		if d, err = e.unwrapKey(ctx, key, h); err != nil {
			return nil, err
		}
	}
	out := make([]byte, h.size)
	c := newChunkCrypt(key, d)
	chunks := numChunks(h.size)
	pos := int64(headerLen)
	for i := range chunks {
		pl := plainChunkLen(i, h.size)
		nonce, aad := c.at(i, i == chunks-1)
		if _, err := d.aead.Open(out[i*chunkLen:i*chunkLen:i*chunkLen+pl], nonce, b[pos:pos+pl+tagLen], aad); err != nil {
			return nil, fmt.Errorf("%w %q: chunk %d does not authenticate", ErrDecrypt, key, i)
		}
		pos += pl + tagLen
	}
	e.cache.put(key, d)
	return out, nil
}

// Put implements Store: the object is stored encrypted under a fresh data
// key wrapped by the newest key.
func (e *EncryptedStore) Put(ctx context.Context, key string, data []byte) error {
	if err := e.check(key); err != nil {
		return err
	}
	obj, d, err := e.seal(ctx, key, data, e.keys.keys[0])
	if err != nil {
		return err
	}
	if err := e.inner.Put(ctx, key, obj); err != nil {
		e.cache.drop(key)
		return err
	}
	e.cache.put(key, d)
	return nil
}

// Get implements Store. An object without the header is returned as is.
func (e *EncryptedStore) Get(ctx context.Context, key string) ([]byte, error) {
	if err := e.check(key); err != nil {
		return nil, err
	}
	b, err := e.inner.Get(ctx, key)
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			e.cache.drop(key)
		}
		return nil, err
	}
	if !hasMagic(b) {
		if damagedMagic(b) {
			return nil, fmt.Errorf("%w %q: damaged header (bad magic)", ErrDecrypt, key)
		}
		return b, nil
	}
	return e.open(ctx, key, b, nil)
}

// errChanged means a plaintext object was encrypted while it was read.
var errChanged = errors.New("objstore: object rewritten while reading")

// GetRange implements Store. With the object's data key cached (after a
// Put, Get or GetRange of it by this store) it costs one ranged read of the
// chunks covering the range; otherwise the header is read first. A range
// of an object without the header costs up to three reads: the probe, the range
// and a second probe, which makes sure the object was not encrypted in
// place (by `runnel keys rewrap --encrypt-plaintext`) in between; one
// shorter than a header is read whole.
func (e *EncryptedStore) GetRange(ctx context.Context, key string, off, length int64) ([]byte, error) {
	if err := e.check(key); err != nil {
		return nil, err
	}
	if off < 0 || length < 0 {
		return nil, fmt.Errorf("objstore: get %q [%d, +%d): %w", key, off, length, ErrOutOfRange)
	}
	for attempt := 0; ; attempt++ {
		d := e.cache.get(key)
		cached := d != nil
		if !cached {
			var plain []byte
			var err error
			d, plain, err = e.readHeader(ctx, key, off, length)
			if errors.Is(err, errChanged) && attempt < 3 {
				continue
			}
			if err != nil {
				if errors.Is(err, ErrNotFound) {
					e.cache.drop(key)
				}
				return nil, err
			}
			if d == nil {
				return plain, nil
			}
		}
		out, err := e.readChunks(ctx, key, d, off, length)
		if err != nil && cached && attempt == 0 && errors.Is(err, ErrDecrypt) {
			// The object may have been replaced since its key was cached.
			e.cache.drop(key)
			continue
		}
		if errors.Is(err, ErrNotFound) {
			e.cache.drop(key)
		}
		return out, err
	}
}

// readHeader reads the header of key and caches its data key. For an
// object without the header it returns the requested range instead.
func (e *EncryptedStore) readHeader(ctx context.Context, key string, off, length int64) (*dataKey, []byte, error) {
	b, err := e.inner.GetRange(ctx, key, 0, headerLen)
	if errors.Is(err, ErrOutOfRange) {
		// Shorter than a header: plaintext, or an encrypted object cut short.
		if b, err = e.inner.Get(ctx, key); err != nil {
			return nil, nil, err
		}
		if hasMagic(b) {
			return nil, nil, fmt.Errorf("%w %q: truncated header (%d bytes)", ErrDecrypt, key, len(b))
		}
		if off+length > int64(len(b)) {
			return nil, nil, fmt.Errorf("objstore: get %q [%d, +%d) of %d bytes: %w", key, off, length, len(b), ErrOutOfRange)
		}
		return nil, bytes.Clone(b[off : off+length]), nil
	}
	if err != nil {
		return nil, nil, err
	}
	if !hasMagic(b) {
		if damagedMagic(b) {
			return nil, nil, fmt.Errorf("%w %q: damaged header (bad magic)", ErrDecrypt, key)
		}
		if off+length <= headerLen {
			return nil, bytes.Clone(b[off : off+length]), nil
		}
		out, err := e.inner.GetRange(ctx, key, off, length)
		if err != nil {
			return nil, nil, err
		}
		probe, err := e.inner.GetRange(ctx, key, 0, int64(len(encMagic)))
		if err != nil {
			return nil, nil, err
		}
		if hasMagic(probe) {
			return nil, nil, errChanged
		}
		return nil, out, nil
	}
	h, err := parseHeader(b)
	if err != nil {
		return nil, nil, fmt.Errorf("%w %q: %w", ErrDecrypt, key, err)
	}
	d, err := e.unwrapKey(ctx, key, h)
	if err != nil {
		return nil, nil, err
	}
	e.cache.put(key, d)
	return d, nil, nil
}

// readChunks reads and decrypts the chunks covering [off, off+length).
func (e *EncryptedStore) readChunks(ctx context.Context, key string, d *dataKey, off, length int64) ([]byte, error) {
	if off+length > d.size {
		return nil, fmt.Errorf("objstore: get %q [%d, +%d) of %d bytes: %w", key, off, length, d.size, ErrOutOfRange)
	}
	if length == 0 {
		return []byte{}, nil
	}
	first, last := off/chunkLen, (off+length-1)/chunkLen
	start := headerLen + first*sealedChunk
	end := headerLen + last*sealedChunk + plainChunkLen(last, d.size) + tagLen
	b, err := e.inner.GetRange(ctx, key, start, end-start)
	if errors.Is(err, ErrOutOfRange) {
		return nil, fmt.Errorf("%w %q: shorter than its header says (%d plaintext bytes): %w", ErrDecrypt, key, d.size, err)
	}
	if err != nil {
		return nil, err
	}
	out := make([]byte, length)
	c := newChunkCrypt(key, d)
	chunks := numChunks(d.size)
	for i := first; i <= last; i++ {
		pl := plainChunkLen(i, d.size)
		ct := b[(i-first)*sealedChunk : (i-first)*sealedChunk+pl+tagLen]
		nonce, aad := c.at(i, i == chunks-1)
		pt, err := d.aead.Open(ct[:0], nonce, ct, aad)
		if err != nil {
			return nil, fmt.Errorf("%w %q: chunk %d does not authenticate", ErrDecrypt, key, i)
		}
		// Copy the part of chunk i inside the range.
		lo := max(off, i*chunkLen)
		hi := min(off+length, i*chunkLen+pl)
		copy(out[lo-off:], pt[lo-i*chunkLen:hi-i*chunkLen])
	}
	return out, nil
}

// Delete implements Store.
func (e *EncryptedStore) Delete(ctx context.Context, key string) error {
	if err := e.check(key); err != nil {
		return err
	}
	e.cache.drop(key)
	return e.inner.Delete(ctx, key)
}

// List implements Store. Sizes are plaintext sizes, computed from the
// stored ones; an object whose stored size no encrypted object can have is
// plaintext and reported as stored. A plaintext object (written before
// encryption was turned on) whose size happens to fit the encrypted layout
// is reported smaller than it is (Runnel's callers use only the keys and
// modification times of listed objects). Key check objects are not listed.
func (e *EncryptedStore) List(ctx context.Context, prefix string, fn func(ObjectInfo) error) error {
	if e.closed.Load() {
		return ErrClosed
	}
	return e.inner.List(ctx, prefix, func(o ObjectInfo) error {
		if strings.HasPrefix(o.Key, "keys/") {
			return nil
		}
		if n, ok := plaintextSize(o.Size); ok {
			o.Size = n
		}
		return fn(o)
	})
}

// Close closes the inner store and releases the keys.
func (e *EncryptedStore) Close() error {
	if e.closed.Swap(true) {
		return nil
	}
	return errors.Join(e.inner.Close(), e.keys.Close())
}

// dataKeyCache is a bounded LRU of unwrapped data keys by object key, so a
// range read of an object costs one ranged read once its header was read.
// Runnel never rewrites an object with different content under the same
// key (a re-wrap keeps the data key); an entry made stale by an overwrite
// elsewhere fails authentication and is dropped and read again.
type dataKeyCache struct {
	mu    sync.Mutex
	max   int
	ll    *list.List // of *cacheEntry, most recent first
	items map[string]*list.Element
}

type cacheEntry struct {
	key string
	d   *dataKey
}

func newDataKeyCache(n int) *dataKeyCache {
	return &dataKeyCache{max: n, ll: list.New(), items: map[string]*list.Element{}}
}

func (c *dataKeyCache) get(key string) *dataKey {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[key]; ok {
		c.ll.MoveToFront(el)
		return el.Value.(*cacheEntry).d
	}
	return nil
}

func (c *dataKeyCache) put(key string, d *dataKey) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[key]; ok {
		el.Value.(*cacheEntry).d = d
		c.ll.MoveToFront(el)
		return
	}
	c.items[key] = c.ll.PushFront(&cacheEntry{key: key, d: d})
	for c.ll.Len() > c.max {
		el := c.ll.Back()
		c.ll.Remove(el)
		delete(c.items, el.Value.(*cacheEntry).key)
	}
}

func (c *dataKeyCache) drop(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[key]; ok {
		c.ll.Remove(el)
		delete(c.items, key)
	}
}
