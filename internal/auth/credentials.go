package auth

import (
	"context"
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"log/slog"
	"slices"
	"strings"
	"sync"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/runnel-dev/runnel/internal/config"
	"github.com/runnel-dev/runnel/internal/metadata"
)

// Kafka's limits on a SCRAM credential's iteration count.
const (
	MinSCRAMIterations = 4096
	MaxSCRAMIterations = 16384
)

// SCRAMMechanisms are the mechanisms a credential may be stored for, in
// the order Kafka numbers them (1 and 2 on the wire).
var SCRAMMechanisms = []string{config.MechanismSCRAMSHA256, config.MechanismSCRAMSHA512}

// DefaultPrefix is the etcd prefix security state lives under.
const DefaultPrefix = "/runnel"

// saltBytes is the length of the random salt SetPassword draws.
const saltBytes = 32

var (
	// ErrUnacceptableCredential means a credential change breaks Kafka's
	// rules: an empty user name, an empty salt or salted password, or an
	// iteration count outside 4096..16384.
	ErrUnacceptableCredential = errors.New("auth: unacceptable credential")
	// ErrCredentialNotFound means a credential to delete does not exist.
	ErrCredentialNotFound = errors.New("auth: credential not found")
)

// Credential is one user's SCRAM credential for one mechanism (RFC 5802
// §3): what the server needs to check a proof and prove itself, from which
// the password cannot be recovered.
type Credential struct {
	Salt       []byte `json:"salt"`
	Iterations int    `json:"iterations"`
	StoredKey  []byte `json:"stored_key"`
	ServerKey  []byte `json:"server_key"`
}

// MechanismInfo is what Describe tells about one credential.
type MechanismInfo struct {
	Mechanism  string
	Iterations int
}

// UserCredentials lists the mechanisms a user has a credential for.
type UserCredentials struct {
	User       string
	Mechanisms []MechanismInfo // in SCRAMMechanisms order
}

// CredentialsOptions configures a credential store.
type CredentialsOptions struct {
	// Client is the etcd client; required.
	Client *clientv3.Client
	// Prefix is the etcd prefix of security state; DefaultPrefix when "".
	Prefix string
	// Logger receives watch failures; discarded when nil.
	Logger *slog.Logger
}

// Credentials is the SCRAM credential store: one etcd key per user and
// mechanism, "<prefix>/security/scram/<user>/<mechanism>", holding a
// Credential as JSON. Every broker keeps the whole set in memory, loaded
// at start and kept current by a watch, so a change made on one broker is
// seen by all within the watch's delay. Writes wait until the local cache
// has seen them, so a caller reads its own writes. Safe for concurrent
// use.
type Credentials struct {
	client *clientv3.Client
	prefix string // ".../security/scram/"
	log    *slog.Logger
	mirror *metadata.Mirror[storedCredential]

	mu      sync.Mutex
	users   map[string]map[string]Credential // user -> mechanism -> credential
	changed chan struct{}                    // closed and replaced when users is
}

// storedCredential is one key of the store, decoded.
type storedCredential struct {
	user, mech string
	cred       Credential
}

// NewCredentials loads the credentials from etcd and starts watching them;
// Close stops the watch.
func NewCredentials(ctx context.Context, o CredentialsOptions) (*Credentials, error) {
	if o.Client == nil {
		return nil, errors.New("auth: credentials need an etcd client")
	}
	if o.Prefix == "" {
		o.Prefix = DefaultPrefix
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	c := &Credentials{
		client:  o.Client,
		prefix:  strings.TrimSuffix(o.Prefix, "/") + "/security/scram/",
		log:     o.Logger,
		users:   map[string]map[string]Credential{},
		changed: make(chan struct{}),
	}
	c.mirror = metadata.NewMirror(metadata.MirrorOptions[storedCredential]{
		Client:  o.Client,
		Prefix:  c.prefix,
		What:    "SCRAM credentials",
		Decode:  c.decode,
		Publish: c.publish,
		Logger:  o.Logger,
	})
	if err := c.mirror.Start(ctx); err != nil {
		return nil, fmt.Errorf("auth: load SCRAM credentials: %w", err)
	}
	return c, nil
}

// Close stops the watch and waits for it.
func (c *Credentials) Close() error {
	return c.mirror.Close()
}

// decode parses one key and value; a key or value it cannot read is
// logged and skipped (it was not written by this store).
func (c *Credentials) decode(key string, value []byte) (storedCredential, bool) {
	user, mech, ok := c.splitKey(key)
	if !ok {
		c.log.Warn("auth: ignoring a SCRAM credential key of unknown shape", "key", key)
		return storedCredential{}, false
	}
	var cred Credential
	if err := json.Unmarshal(value, &cred); err != nil || cred.Iterations <= 0 || len(cred.StoredKey) == 0 {
		c.log.Warn("auth: ignoring an unreadable SCRAM credential", "key", key, "err", err)
		return storedCredential{}, false
	}
	return storedCredential{user: user, mech: mech, cred: cred}, true
}

func (c *Credentials) key(user, mech string) string { return c.prefix + user + "/" + mech }

// splitKey reverses key. The mechanism is the last segment, so user names
// may contain '/'.
func (c *Credentials) splitKey(k string) (user, mech string, ok bool) {
	rest, ok := strings.CutPrefix(k, c.prefix)
	if !ok {
		return "", "", false
	}
	i := strings.LastIndexByte(rest, '/')
	if i <= 0 || !slices.Contains(SCRAMMechanisms, rest[i+1:]) {
		return "", "", false
	}
	return rest[:i], rest[i+1:], true
}

// publish replaces the cache with the mirror's credentials.
func (c *Credentials) publish(stored []storedCredential) {
	users := map[string]map[string]Credential{}
	for _, s := range stored {
		if users[s.user] == nil {
			users[s.user] = map[string]Credential{}
		}
		users[s.user][s.mech] = s.cred
	}
	c.mu.Lock()
	c.users = users
	close(c.changed)
	c.changed = make(chan struct{})
	c.mu.Unlock()
}

// waitRev waits until the cache reflects rev.
func (c *Credentials) waitRev(ctx context.Context, rev int64) error {
	if err := c.mirror.WaitRev(ctx, rev); err != nil {
		return fmt.Errorf("auth: waiting for the credential change to apply: %w", err)
	}
	return nil
}

// ValidSCRAMUser checks a credential's user name and mechanism the way
// Kafka does: errors wrap ErrUnacceptableCredential (empty name) or
// ErrUnsupportedMechanism.
func ValidSCRAMUser(user, mech string) error { return validSCRAM(user, mech) }

// ValidSCRAMIterations checks an iteration count against Kafka's limits;
// errors wrap ErrUnacceptableCredential.
func ValidSCRAMIterations(n int) error { return validIterations(n) }

func validSCRAM(user, mech string) error {
	if user == "" {
		return fmt.Errorf("%w: username must not be empty", ErrUnacceptableCredential)
	}
	if !slices.Contains(SCRAMMechanisms, mech) {
		return fmt.Errorf("%w %q: want SCRAM-SHA-256 or SCRAM-SHA-512", ErrUnsupportedMechanism, mech)
	}
	return nil
}

// validIterations checks an iteration count against Kafka's limits.
func validIterations(n int) error {
	switch {
	case n < MinSCRAMIterations:
		return fmt.Errorf("%w: too few iterations (%d, at least %d)", ErrUnacceptableCredential, n, MinSCRAMIterations)
	case n > MaxSCRAMIterations:
		return fmt.Errorf("%w: too many iterations (%d, at most %d)", ErrUnacceptableCredential, n, MaxSCRAMIterations)
	}
	return nil
}

// scramHash is the hash of a SCRAM mechanism; mech must be valid.
func scramHash(mech string) func() hash.Hash {
	if mech == config.MechanismSCRAMSHA512 {
		return sha512.New
	}
	return sha256.New
}

// newCredential derives the stored credential from a salted password
// (RFC 5802 §3: StoredKey = H(HMAC(SaltedPassword, "Client Key")),
// ServerKey = HMAC(SaltedPassword, "Server Key")).
func newCredential(mech string, iterations int, salt, saltedPassword []byte) Credential {
	h := scramHash(mech)
	clientKey := hmacSum(h, saltedPassword, "Client Key")
	sum := h()
	sum.Write(clientKey)
	return Credential{
		Salt:       slices.Clone(salt),
		Iterations: iterations,
		StoredKey:  sum.Sum(nil),
		ServerKey:  hmacSum(h, saltedPassword, "Server Key"),
	}
}

func hmacSum(h func() hash.Hash, key []byte, msg string) []byte {
	m := hmac.New(h, key)
	m.Write([]byte(msg))
	return m.Sum(nil)
}

// saltPassword is SCRAM's Hi(password, salt, iterations): PBKDF2 with the
// mechanism's HMAC, as long as the hash.
func saltPassword(mech, password string, salt []byte, iterations int) ([]byte, error) {
	h := scramHash(mech)
	return pbkdf2.Key(h, password, salt, iterations, h().Size())
}

// Upsert stores user's credential for mechanism from a salt and salted
// password (what AlterUserScramCredentials carries), replacing any other.
func (c *Credentials) Upsert(ctx context.Context, user, mechanism string, iterations int, salt, saltedPassword []byte) error {
	if err := validSCRAM(user, mechanism); err != nil {
		return err
	}
	if err := validIterations(iterations); err != nil {
		return err
	}
	if len(salt) == 0 || len(saltedPassword) == 0 {
		return fmt.Errorf("%w: salt and salted password must not be empty", ErrUnacceptableCredential)
	}
	return c.put(ctx, user, mechanism, newCredential(mechanism, iterations, salt, saltedPassword), false)
}

// SetPassword stores credentials for password under each mechanism, each
// with a fresh random salt.
func (c *Credentials) SetPassword(ctx context.Context, user, password string, mechanisms []string, iterations int) error {
	return c.setPassword(ctx, user, password, mechanisms, iterations, false)
}

// setPassword is SetPassword; onlyIfAbsent leaves an existing credential
// alone.
func (c *Credentials) setPassword(ctx context.Context, user, password string, mechanisms []string, iterations int, onlyIfAbsent bool) error {
	if len(mechanisms) == 0 {
		return fmt.Errorf("%w: no mechanism given", ErrUnsupportedMechanism)
	}
	if err := validIterations(iterations); err != nil {
		return err
	}
	if password == "" {
		return fmt.Errorf("%w: password must not be empty", ErrUnacceptableCredential)
	}
	for _, mech := range mechanisms {
		if err := validSCRAM(user, mech); err != nil {
			return err
		}
	}
	for _, mech := range mechanisms {
		salt := make([]byte, saltBytes)
		if _, err := rand.Read(salt); err != nil {
			return fmt.Errorf("auth: salt: %w", err)
		}
		salted, err := saltPassword(mech, password, salt, iterations)
		if err != nil {
			return fmt.Errorf("auth: salt password: %w", err)
		}
		if err := c.put(ctx, user, mech, newCredential(mech, iterations, salt, salted), onlyIfAbsent); err != nil {
			return err
		}
	}
	return nil
}

func (c *Credentials) put(ctx context.Context, user, mech string, cred Credential, onlyIfAbsent bool) error {
	b, err := json.Marshal(cred)
	if err != nil {
		return fmt.Errorf("auth: encode credential: %w", err)
	}
	key := c.key(user, mech)
	var rev int64
	if onlyIfAbsent {
		resp, err := c.client.Txn(ctx).
			If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
			Then(clientv3.OpPut(key, string(b))).Commit()
		if err != nil {
			return fmt.Errorf("auth: store credential of %q: %w", user, err)
		}
		if !resp.Succeeded {
			return nil // it exists: nothing written, no watch event to wait for
		}
		rev = resp.Header.Revision
	} else {
		resp, err := c.client.Put(ctx, key, string(b))
		if err != nil {
			return fmt.Errorf("auth: store credential of %q: %w", user, err)
		}
		rev = resp.Header.Revision
	}
	return c.waitRev(ctx, rev)
}

// Delete removes user's credential for mechanism; ErrCredentialNotFound
// when there is none.
func (c *Credentials) Delete(ctx context.Context, user, mechanism string) error {
	if err := validSCRAM(user, mechanism); err != nil {
		return err
	}
	resp, err := c.client.Delete(ctx, c.key(user, mechanism))
	if err != nil {
		return fmt.Errorf("auth: delete credential of %q: %w", user, err)
	}
	if resp.Deleted == 0 {
		return fmt.Errorf("%w: %s has no %s credential", ErrCredentialNotFound, user, mechanism)
	}
	return c.waitRev(ctx, resp.Header.Revision)
}

// Describe lists the credentials of users (every user when users is nil),
// sorted by user; users without a credential are left out.
func (c *Credentials) Describe(users []string) []UserCredentials {
	c.mu.Lock()
	defer c.mu.Unlock()
	if users == nil {
		for u := range c.users {
			users = append(users, u)
		}
	}
	users = slices.Clone(users)
	slices.Sort(users)
	users = slices.Compact(users)
	var out []UserCredentials
	for _, u := range users {
		creds := c.users[u]
		if len(creds) == 0 {
			continue
		}
		uc := UserCredentials{User: u}
		for _, m := range SCRAMMechanisms {
			if cred, ok := creds[m]; ok {
				uc.Mechanisms = append(uc.Mechanisms, MechanismInfo{Mechanism: m, Iterations: cred.Iterations})
			}
		}
		out = append(out, uc)
	}
	return out
}

// Lookup returns user's credential for mechanism.
func (c *Credentials) Lookup(user, mechanism string) (Credential, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	cred, ok := c.users[user][mechanism]
	return cred, ok
}

// hasUser reports whether user has any credential.
func (c *Credentials) hasUser(user string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.users[user]) > 0
}
