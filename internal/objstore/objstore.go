package objstore

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"
)

// Store is the object store contract. Implementations are safe for
// concurrent use by multiple goroutines.
//
// Keys are UTF-8 paths of "/"-separated segments (e.g. "intake/3/01J..."):
// non-empty, at most MaxKeyLen bytes, no empty, "." or ".." segments, no
// leading or trailing "/", no control characters or backslashes, no "__0x"
// (gocloud.dev's escape marker). The file store additionally cannot hold both
// "a" and "a/b", and reserves names ending in ".<hex>.tmp". Every method rejects other
// keys with an error wrapping ErrInvalidKey before doing any I/O.
//
// Every method honours ctx: a cancelled context makes the call return an
// error (wrapping ctx.Err() where the backend reports it). Errors name the
// key. A Put that returns an error may or may not have stored the object
// (for example when the connection dropped after the upload); callers treat
// such an object as unreferenced garbage.
type Store interface {
	// Put stores data under key, replacing any existing object. When Put
	// returns nil the object is durable: it survives a crash of this process
	// and of the machine (for the file store: the file and its directory
	// entry are fsync'd). A concurrent reader sees either the old or the new
	// object, never a partial one. Put does not retain data.
	Put(ctx context.Context, key string, data []byte) error
	// Get returns the whole object. A missing key returns an error wrapping
	// ErrNotFound.
	Get(ctx context.Context, key string) ([]byte, error)
	// GetRange returns exactly length bytes starting at off. A missing key
	// wraps ErrNotFound; a negative off or length, or a range that extends
	// past the end of the object, wraps ErrOutOfRange (never a short read).
	GetRange(ctx context.Context, key string, off, length int64) ([]byte, error)
	// Delete removes the object. Deleting a missing key is not an error.
	Delete(ctx context.Context, key string) error
	// List calls fn for every object whose key starts with prefix, in
	// ascending byte order of keys. The prefix is a plain string prefix, not
	// a directory ("a/b" matches "a/b/c" and "a/bc"); "" lists everything.
	// An error from fn stops the listing and is returned as is. Objects
	// written or deleted during a List may or may not be reported.
	List(ctx context.Context, prefix string, fn func(ObjectInfo) error) error
	// Close releases the store's resources. Calls after Close fail.
	Close() error
}

// ObjectInfo describes one stored object.
type ObjectInfo struct {
	// Key is the object's key.
	Key string
	// Size is the object's length in bytes.
	Size int64
	// ModTime is when the object was last written, as the backend reports it.
	ModTime time.Time
}

// Sentinel errors. Callers match them with errors.Is.
var (
	// ErrNotFound means the object does not exist.
	ErrNotFound = errors.New("objstore: object not found")
	// ErrInvalidKey means a key breaks the rules documented on Store.
	ErrInvalidKey = errors.New("objstore: invalid key")
	// ErrOutOfRange means a GetRange asked for bytes the object does not have.
	ErrOutOfRange = errors.New("objstore: range out of bounds")
	// ErrUnsupportedURL means Open does not know how to open a URL.
	ErrUnsupportedURL = errors.New("objstore: unsupported store URL")
	// ErrClosed means the store was used after Close.
	ErrClosed = errors.New("objstore: store closed")
)

// MaxKeyLen is the longest key accepted, S3's limit.
const MaxKeyLen = 1024

// ValidateKey checks key against the rules documented on Store.
func ValidateKey(key string) error {
	if msg := validateKey(key); msg != "" {
		return fmt.Errorf("%w %q: %s", ErrInvalidKey, key, msg)
	}
	return nil
}

func validateKey(key string) string {
	switch {
	case key == "":
		return "empty"
	case len(key) > MaxKeyLen:
		return fmt.Sprintf("longer than %d bytes", MaxKeyLen)
	case !utf8.ValidString(key):
		return "not valid UTF-8"
	}
	for _, r := range key {
		if r < 0x20 || r == 0x7f || r == '\\' {
			return "contains a control character or backslash"
		}
	}
	if strings.Contains(key, "__0x") {
		return "contains __0x, reserved by the key escaping of gocloud.dev/blob"
	}
	for _, seg := range strings.Split(key, "/") {
		switch seg {
		case "":
			return "has an empty path segment (leading, trailing or double /)"
		case ".", "..":
			return "has a . or .. path segment"
		}
	}
	return ""
}

// Open opens the store named by rawURL:
//
//   - file:///abs/dir, file://./rel/dir or a plain path: a local directory,
//     created if missing; Puts are fsync'd.
//   - mem://: an in-memory store (tests; lost on Close).
//   - s3://bucket?region=...&endpoint=http://127.0.0.1:9000&use_path_style=true:
//     S3 or an S3-compatible server. Credentials come from the standard AWS
//     chain (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, shared config, ...);
//     the query parameters are those of gocloud.dev/blob/s3blob.
//   - gs://bucket: Google Cloud Storage, application default credentials.
//   - azblob://container: Azure Blob Storage, credentials from AZURE_* env.
//   - fault+<any of the above>?put_error_rate=0.05&get_error_rate=0.02&seed=1:
//     a testing and chaos aid, never for production data. It opens the
//     inner store and makes each call fail at random with an error wrapping
//     ErrInjectedFault, before the call reaches the inner store (a failed
//     Put stores nothing). Parameters (probabilities in [0, 1], default 0):
//     put_error_rate, get_error_rate (Get and GetRange), delete_error_rate,
//     list_error_rate, and seed (default: from the clock); other parameters
//     go to the inner URL. See ParseFaultURL and FaultStore.
func Open(ctx context.Context, rawURL string) (Store, error) {
	if rawURL == "" {
		return nil, fmt.Errorf("%w: empty URL", ErrUnsupportedURL)
	}
	if strings.HasPrefix(rawURL, FaultScheme) {
		return openFault(ctx, rawURL)
	}
	if !strings.Contains(rawURL, "://") {
		return openFile(rawURL)
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("%w %q: %w", ErrUnsupportedURL, rawURL, err)
	}
	switch u.Scheme {
	case "file":
		if len(u.Query()) > 0 {
			return nil, fmt.Errorf("%w %q: file URLs take no query parameters", ErrUnsupportedURL, rawURL)
		}
		dir := u.Path
		switch u.Host {
		case "", "localhost":
		case ".":
			dir = "." + dir
		default:
			return nil, fmt.Errorf("%w %q: file URL host must be empty, localhost or .", ErrUnsupportedURL, rawURL)
		}
		if dir == "" {
			return nil, fmt.Errorf("%w %q: missing directory", ErrUnsupportedURL, rawURL)
		}
		return openFile(dir)
	case "mem":
		return openMem(), nil
	case "s3", "gs", "azblob":
		if u.Host == "" {
			return nil, fmt.Errorf("%w %q: missing bucket name", ErrUnsupportedURL, rawURL)
		}
		return openCloud(ctx, u)
	default:
		return nil, fmt.Errorf("%w %q: scheme %q (want file, mem, s3, gs or azblob)", ErrUnsupportedURL, rawURL, u.Scheme)
	}
}

// IsLocal reports whether s keeps its objects on this machine (the file
// store, encrypted or not): a ranged read there is a system call served
// from the page cache, not a request.
func IsLocal(s Store) bool {
	switch s := s.(type) {
	case *fileStore:
		return true
	case *EncryptedStore:
		return IsLocal(s.inner)
	}
	return false
}
