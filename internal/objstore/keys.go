package objstore

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"

	"gocloud.dev/secrets"

	// Register the key-encryption-key URL schemes on secrets.DefaultURLMux.
	_ "gocloud.dev/secrets/awskms"
	_ "gocloud.dev/secrets/azurekeyvault"
	_ "gocloud.dev/secrets/gcpkms"
	_ "gocloud.dev/secrets/hashivault"
	_ "gocloud.dev/secrets/localsecrets"
)

// ErrBadKey means a key-encryption key could not be loaded or is not the
// key that wrote the store.
var ErrBadKey = errors.New("objstore: bad encryption key")

// KeyID identifies a key-encryption key (KEK) in the header of every
// encrypted object. It is the first 8 bytes of a SHA-256: of the key
// material for a file key (the same key keeps its id wherever its file
// lives), of the URL without its query for a key held by a key management
// service (the service's own key versions rotate behind one URL).
type KeyID [8]byte

func (id KeyID) String() string { return hex.EncodeToString(id[:]) }

// kek is one key-encryption key: a local AES-256 key (file://) or a
// gocloud.dev secrets keeper.
type kek struct {
	id     KeyID
	name   string // the URL, with key material redacted
	gcm    cipher.AEAD
	keeper *secrets.Keeper
}

// Keyring holds the configured key-encryption keys, newest first: the
// newest wraps new data keys, every one unwraps.
type Keyring struct {
	keys []*kek
	byID map[KeyID]*kek
}

// kekSchemes are the key URL schemes LoadKeys accepts besides file.
var kekSchemes = []string{"awskms", "gcpkms", "azurekeyvault", "hashivault", "base64key"}

// LoadKeys opens the key-encryption keys named by urls, newest first:
//
//   - file:///path (or file://./relative): a file holding the key, either
//     exactly 32 raw bytes or the standard base64 of 32 bytes (44
//     characters, surrounding white space ignored), e.g. made with
//     `openssl rand -base64 32 > kek.key`. Anything else is rejected.
//   - awskms://, gcpkms://, azurekeyvault://, hashivault://, base64key://:
//     a gocloud.dev secrets keeper (base64key:// must carry its key: an
//     empty one would be a random key, lost at restart).
//
// The newest key wraps and unwraps a random key once, so a key that cannot
// encrypt fails here rather than on the first write. Errors name the key
// and wrap ErrBadKey.
func LoadKeys(ctx context.Context, urls []string) (_ *Keyring, err error) {
	if len(urls) == 0 {
		return nil, fmt.Errorf("%w: no key configured", ErrBadKey)
	}
	r := &Keyring{byID: map[KeyID]*kek{}}
	defer func() {
		if err != nil {
			_ = r.Close()
		}
	}()
	for i, raw := range urls {
		k, err := loadKey(ctx, raw)
		if err != nil {
			return nil, fmt.Errorf("encryption.keys[%d]: %w", i, err)
		}
		if prev, dup := r.byID[k.id]; dup {
			if k.keeper != nil {
				_ = k.keeper.Close()
			}
			return nil, fmt.Errorf("%w: encryption.keys[%d] %s is the same key (id %s) as %s", ErrBadKey, i, k.name, k.id, prev.name)
		}
		r.keys = append(r.keys, k)
		r.byID[k.id] = k
	}
	newest := r.keys[0]
	dk := make([]byte, dataKeyLen)
	_, _ = rand.Read(dk)
	w, err := newest.wrap(ctx, dk)
	if err == nil {
		var back []byte
		if back, err = newest.unwrap(ctx, w); err == nil && !bytes.Equal(back, dk) {
			err = errors.New("unwrapped key differs from the wrapped one")
		}
	}
	if err != nil {
		return nil, fmt.Errorf("%w: newest key %s (id %s) cannot wrap data keys: %w", ErrBadKey, newest.name, newest.id, err)
	}
	return r, nil
}

// Newest returns the id of the key that wraps new data keys.
func (r *Keyring) Newest() KeyID { return r.keys[0].id }

// IDs returns the ids of the configured keys, newest first.
func (r *Keyring) IDs() []KeyID {
	out := make([]KeyID, len(r.keys))
	for i, k := range r.keys {
		out[i] = k.id
	}
	return out
}

// Name returns the URL of the key with id, key material redacted, or ""
// if no such key is configured.
func (r *Keyring) Name(id KeyID) string {
	if k := r.byID[id]; k != nil {
		return k.name
	}
	return ""
}

// describe lists the keys as "id url, ..." for messages.
func (r *Keyring) describe() string {
	s := make([]string, len(r.keys))
	for i, k := range r.keys {
		s[i] = k.id.String() + " " + k.name
	}
	return strings.Join(s, ", ")
}

// Close releases the keepers of the keys.
func (r *Keyring) Close() error {
	var errs []error
	for _, k := range r.keys {
		if k.keeper != nil {
			errs = append(errs, k.keeper.Close())
		}
	}
	return errors.Join(errs...)
}

// redactKeyURL hides the key material a base64key URL carries.
func redactKeyURL(raw string) string {
	if strings.HasPrefix(raw, "base64key://") {
		return "base64key://(redacted)"
	}
	return raw
}

func loadKey(ctx context.Context, raw string) (*kek, error) {
	name := redactKeyURL(raw)
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("%w %s: not a URL", ErrBadKey, name)
	}
	if u.Scheme == "file" {
		return loadFileKey(u, name)
	}
	known := false
	for _, s := range kekSchemes {
		known = known || u.Scheme == s
	}
	if !known {
		return nil, fmt.Errorf("%w %s: unsupported scheme %q (want file, %s)", ErrBadKey, name, u.Scheme, strings.Join(kekSchemes, ", "))
	}
	if u.Scheme == "base64key" && u.Host == "" {
		return nil, fmt.Errorf("%w %s: the URL must carry the key (base64key://<url-safe base64 of 32 bytes>); an empty one would be a random key, lost at restart", ErrBadKey, name)
	}
	keeper, err := secrets.OpenKeeper(ctx, raw)
	if err != nil {
		if u.Scheme == "base64key" {
			err = errors.New("the key must be the URL-safe base64 of 32 bytes")
		}
		return nil, fmt.Errorf("%w %s: %w", ErrBadKey, name, err)
	}
	id := strings.SplitN(raw, "?", 2)[0]
	return &kek{id: keyID("url", []byte(id)), name: name, keeper: keeper}, nil
}

func loadFileKey(u *url.URL, name string) (*kek, error) {
	if u.RawQuery != "" {
		return nil, fmt.Errorf("%w %s: file key URLs take no query parameters", ErrBadKey, name)
	}
	path := u.Path
	switch u.Host {
	case "", "localhost":
	case ".":
		path = "." + path
	default:
		return nil, fmt.Errorf("%w %s: file URL host must be empty, localhost or .", ErrBadKey, name)
	}
	if path == "" {
		return nil, fmt.Errorf("%w %s: missing path", ErrBadKey, name)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w %s: %w", ErrBadKey, name, err)
	}
	key, err := parseKeyFile(b)
	if err != nil {
		return nil, fmt.Errorf("%w %s: %w", ErrBadKey, name, err)
	}
	block, _ := aes.NewCipher(key)
	gcm, _ := cipher.NewGCM(block)
	return &kek{id: keyID("file", key), name: name, gcm: gcm}, nil
}

// parseKeyFile accepts exactly 32 raw bytes, or the standard base64 of 32
// bytes with optional surrounding white space.
func parseKeyFile(b []byte) ([]byte, error) {
	if len(b) == dataKeyLen {
		return b, nil
	}
	text := bytes.TrimSpace(b)
	key, err := base64.StdEncoding.DecodeString(string(text))
	if err == nil && len(key) == dataKeyLen {
		return key, nil
	}
	return nil, fmt.Errorf("the file holds %d bytes: want exactly 32 raw bytes or their base64 (44 characters, e.g. from `openssl rand -base64 32`)", len(b))
}

func keyID(kind string, material []byte) KeyID {
	h := sha256.New()
	h.Write([]byte("runnel kek id " + kind + "\x00"))
	h.Write(material)
	var id KeyID
	copy(id[:], h.Sum(nil))
	return id
}

// wrapAAD binds a file key's wrapped data key to the key's id.
func (k *kek) wrapAAD() []byte { return append([]byte("runnel data key "), k.id[:]...) }

// wrap encrypts a data key with the KEK.
func (k *kek) wrap(ctx context.Context, dk []byte) ([]byte, error) {
	if k.keeper != nil {
		return k.keeper.Encrypt(ctx, dk)
	}
	out := make([]byte, nonceLen, nonceLen+len(dk)+tagLen)
	_, _ = rand.Read(out)
	return k.gcm.Seal(out, out[:nonceLen], dk, k.wrapAAD()), nil
}

// unwrap decrypts a data key wrapped by wrap.
func (k *kek) unwrap(ctx context.Context, w []byte) ([]byte, error) {
	var dk []byte
	if k.keeper != nil {
		var err error
		if dk, err = k.keeper.Decrypt(ctx, w); err != nil {
			return nil, err
		}
	} else {
		if len(w) < nonceLen+tagLen {
			return nil, errors.New("wrapped data key too short")
		}
		var err error
		if dk, err = k.gcm.Open(nil, w[:nonceLen], w[nonceLen:], k.wrapAAD()); err != nil {
			return nil, errors.New("wrapped data key does not authenticate")
		}
	}
	if len(dk) != dataKeyLen {
		return nil, fmt.Errorf("data key of %d bytes, want %d", len(dk), dataKeyLen)
	}
	return dk, nil
}

// RewrapOptions control EncryptedStore.Rewrap.
type RewrapOptions struct {
	// DryRun counts what would change and writes nothing.
	DryRun bool
	// EncryptPlaintext also encrypts objects stored without encryption.
	EncryptPlaintext bool
}

// RewrapReport counts what a Rewrap pass saw and did.
type RewrapReport struct {
	Objects   int // objects listed (key checks excluded)
	Current   int // already wrapped by the newest key
	Rewrapped int // data keys re-wrapped by the newest key (would be, in a dry run)
	Plaintext int // stored without encryption and left so
	Encrypted int // stored without encryption and encrypted (would be, in a dry run)
	Vanished  int // deleted while the pass ran: skipped, never written back
	// Unconfigured counts objects wrapped by keys that are not configured.
	Unconfigured map[KeyID]int
	// Retired are the older keys whose check objects the pass removed: no
	// object is wrapped by them any more, so they may leave the
	// configuration.
	Retired []KeyID
}

// Rewrap re-wraps the data key of every object wrapped by an older key
// with the newest key. Only the header changes: the object is read whole
// and written back with the same chunks, under the same data key, so
// readers holding the data key are unaffected. With EncryptPlaintext,
// objects stored without encryption are encrypted too (only once every
// broker runs with encryption on: a broker without it would read the
// ciphertext). When the pass ends with no object left under an older key,
// that key's check object is removed (Retired).
//
// Objects are immutable in Runnel, but the brokers delete them (archived
// intake objects, expired segments, old checkpoints). An object that is
// gone when it is read is skipped; one deleted between being read and
// being written back is written back: such an object is referenced by
// nothing, and the brokers' orphan collection (intake/, topics/) or the
// next checkpoint (checkpoints/) deletes it again. Run the pass once every
// broker has the new key first in its configuration: a broker still
// wrapping with an older key after its check object was removed writes
// objects that fail to read, with an error naming the key, once that key
// is dropped.
func (e *EncryptedStore) Rewrap(ctx context.Context, opts RewrapOptions) (RewrapReport, error) {
	rep := RewrapReport{Unconfigured: map[KeyID]int{}}
	var keys []string
	err := e.inner.List(ctx, "", func(o ObjectInfo) error {
		if !strings.HasPrefix(o.Key, "keys/") {
			keys = append(keys, o.Key)
		}
		return nil
	})
	if err != nil {
		return rep, err
	}
	left := map[KeyID]int{}
	for _, key := range keys {
		rep.Objects++
		if err := e.rewrapOne(ctx, key, opts, &rep, left); err != nil {
			return rep, err
		}
	}
	if opts.DryRun || len(rep.Unconfigured) > 0 {
		return rep, nil
	}
	for _, k := range e.keys.keys[1:] {
		if left[k.id] > 0 {
			continue
		}
		if _, err := e.inner.Get(ctx, keyCheckName(k.id)); errors.Is(err, ErrNotFound) {
			continue
		}
		if err := e.inner.Delete(ctx, keyCheckName(k.id)); err != nil {
			return rep, err
		}
		rep.Retired = append(rep.Retired, k.id)
	}
	return rep, nil
}

// rewrapOne re-wraps one object. It reads the header first, so an object
// already under the newest key costs one small read.
func (e *EncryptedStore) rewrapOne(ctx context.Context, key string, opts RewrapOptions, rep *RewrapReport, left map[KeyID]int) error {
	newest := e.keys.keys[0]
	b, err := e.inner.GetRange(ctx, key, 0, headerLen)
	whole := false
	if errors.Is(err, ErrOutOfRange) {
		b, err = e.inner.Get(ctx, key)
		whole = true
	}
	for {
		if errors.Is(err, ErrNotFound) {
			rep.Vanished++
			return nil
		}
		if err != nil {
			return err
		}
		var h header
		if damagedMagic(b) {
			return fmt.Errorf("%w %q: damaged header (bad magic)", ErrDecrypt, key)
		}
		if hasMagic(b) {
			if h, err = parseHeader(b); err != nil {
				return fmt.Errorf("%w %q: %w", ErrDecrypt, key, err)
			}
			if h.kid == newest.id {
				rep.Current++
				return nil
			}
			if e.keys.byID[h.kid] == nil {
				rep.Unconfigured[h.kid]++
				return nil
			}
		} else if !opts.EncryptPlaintext {
			rep.Plaintext++
			return nil
		}
		if !whole && !opts.DryRun {
			b, err = e.inner.Get(ctx, key)
			whole = true
			continue // decide again on what was read whole
		}
		if !hasMagic(b) {
			rep.Encrypted++
			if opts.DryRun {
				return nil
			}
			return e.Put(ctx, key, b)
		}
		old := e.keys.byID[h.kid]
		dk, err := old.unwrap(ctx, h.wrapped)
		if err != nil {
			return fmt.Errorf("%w %q: unwrapping its data key with key %s (id %s): %w", ErrDecrypt, key, old.name, old.id, err)
		}
		rep.Rewrapped++
		if opts.DryRun {
			left[h.kid]++
			return nil
		}
		if h.wrapped, err = newest.wrap(ctx, dk); err != nil {
			return fmt.Errorf("objstore: rewrap %q: wrapping with key %s (id %s): %w", key, newest.name, newest.id, err)
		}
		if len(h.wrapped) > maxWrapped {
			return fmt.Errorf("objstore: rewrap %q: key %s wraps a data key into %d bytes, more than the header's %d", key, newest.name, len(h.wrapped), maxWrapped)
		}
		h.kid = newest.id
		clear(b[:headerLen])
		h.marshalTo(b)
		return e.inner.Put(ctx, key, b)
	}
}
