package auth

// Login sessions of the web portal: a signed, expiring token naming a
// principal, carried in the SessionCookie cookie. The token is
//
//	v1.<base64url(JSON {"sub":"User:alice","iat":…,"exp":…})>.<base64url(HMAC-SHA256)>
//
// signed with a key every broker shares (LoadSessionKey creates it once
// in etcd), so a login made on one broker is accepted by all. A session
// is stateless: it ends at its expiry, or earlier on a browser that drops
// the cookie (logout); bound to its user's credentials (SessionOptions.
// Binding), it also ends on every broker when the user's password is
// changed or the user is deleted. The Guard accepts the cookie only from requests
// without an Authorization header, and only with the CSRFHeader on
// requests that change state: a browser sends the cookie with every
// request to the site, but another site cannot add a custom header
// without the CORS preflight this server never grants.

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// SessionCookie is the name of the portal's login cookie.
const SessionCookie = "runnel_session"

// CSRFHeader must be sent, with the value "1", by cookie-authenticated
// requests that change state (every method but GET, HEAD and OPTIONS).
const CSRFHeader = "X-Runnel-CSRF"

// SessionKeyBytes is the length of the session signing key.
const SessionKeyBytes = 32

// maxSessionToken bounds a token read from a cookie before any work on it.
const maxSessionToken = 2048

// sessionVersion prefixes every token, so a later format can coexist.
const sessionVersion = "v1"

var (
	// ErrSessionInvalid means a session token is malformed or its
	// signature does not verify.
	ErrSessionInvalid = errors.New("auth: invalid session")
	// ErrSessionExpired means a session token is past its expiry.
	ErrSessionExpired = errors.New("auth: session expired")
	// ErrSessionRevoked means a session's principal changed its password
	// or was deleted since the session was issued.
	ErrSessionRevoked = errors.New("auth: session revoked")
)

// SessionVerifier checks a session token and returns its principal.
// *Sessions implements it; a Guard given one accepts the SessionCookie.
type SessionVerifier interface {
	VerifySession(token string) (Principal, time.Time, error)
}

// SessionOptions configure Sessions.
type SessionOptions struct {
	// TTL is how long a session lasts from its login; required.
	TTL time.Duration
	// Binding, when set, ties a session to its principal's credentials:
	// it returns what they are now (ok false when the principal has none
	// any more). A session issued under other credentials, or whose
	// principal has none, no longer verifies. CredentialBinding binds to
	// the SCRAM credentials.
	Binding func(p Principal) (state []byte, ok bool)
	// Now is the clock (time.Now if nil).
	Now func() time.Time
}

// CredentialBinding binds sessions to the SCRAM credentials of c: a new
// password (a new salt and stored key) or a deleted user ends them.
func CredentialBinding(c *Credentials) func(Principal) ([]byte, bool) {
	return func(p Principal) ([]byte, bool) {
		var state []byte
		for _, mech := range SCRAMMechanisms {
			if cred, ok := c.Lookup(p.Name, mech); ok {
				state = append(state, mech...)
				state = append(state, cred.Salt...)
				state = append(state, cred.StoredKey...)
			}
		}
		return state, p.Type == UserType && len(state) > 0
	}
}

// Sessions issues and verifies session tokens with one key. Safe for
// concurrent use.
type Sessions struct {
	key     []byte
	ttl     time.Duration
	now     func() time.Time
	binding func(Principal) ([]byte, bool)
}

// NewSessions returns Sessions signing with key (SessionKeyBytes long).
func NewSessions(key []byte, o SessionOptions) (*Sessions, error) {
	if len(key) != SessionKeyBytes {
		return nil, fmt.Errorf("auth: a session key must be %d bytes, got %d", SessionKeyBytes, len(key))
	}
	if o.TTL <= 0 {
		return nil, fmt.Errorf("auth: a session lifetime must be positive, got %s", o.TTL)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Sessions{key: append([]byte(nil), key...), ttl: o.TTL, now: o.Now, binding: o.Binding}, nil
}

// TTL is how long a session lasts.
func (s *Sessions) TTL() time.Duration { return s.ttl }

// sessionClaims is a token's payload; times are Unix seconds.
type sessionClaims struct {
	Subject  string `json:"sub"`
	IssuedAt int64  `json:"iat"`
	Expires  int64  `json:"exp"`
	// Binding is a keyed digest of the principal's credentials when the
	// session was issued (SessionOptions.Binding): keyed, so it tells
	// nothing about them to whoever reads the cookie.
	Binding string `json:"bnd,omitempty"`
}

// Issue returns a token for p and its expiry.
func (s *Sessions) Issue(p Principal) (token string, expires time.Time) {
	now := s.now()
	expires = now.Add(s.ttl).Truncate(time.Second)
	c := sessionClaims{Subject: p.String(), IssuedAt: now.Unix(), Expires: expires.Unix()}
	if s.binding != nil {
		// A principal without credentials gets a session that never
		// verifies: "" matches no current binding.
		c.Binding, _ = s.bindingOf(p)
	}
	payload, _ := json.Marshal(c)
	signed := sessionVersion + "." + base64.RawURLEncoding.EncodeToString(payload)
	return signed + "." + base64.RawURLEncoding.EncodeToString(s.sign(signed)), expires
}

// bindingOf is the keyed digest of p's credentials; ok is false when p
// has none.
func (s *Sessions) bindingOf(p Principal) (string, bool) {
	state, ok := s.binding(p)
	if !ok {
		return "", false
	}
	m := hmac.New(sha256.New, s.key)
	m.Write([]byte("binding\x00" + p.String() + "\x00"))
	m.Write(state)
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil)[:16]), true
}

func (s *Sessions) sign(signed string) []byte {
	m := hmac.New(sha256.New, s.key)
	m.Write([]byte(signed))
	return m.Sum(nil)
}

// VerifySession checks token's signature and expiry and returns its
// principal and expiry: ErrSessionInvalid for a token this key did not
// sign (or any other malformed value), ErrSessionExpired for one past its
// expiry.
func (s *Sessions) VerifySession(token string) (Principal, time.Time, error) {
	if len(token) > maxSessionToken {
		return Principal{}, time.Time{}, fmt.Errorf("%w: the token is too long", ErrSessionInvalid)
	}
	i := strings.LastIndexByte(token, '.')
	if i < 0 {
		return Principal{}, time.Time{}, fmt.Errorf("%w: no signature", ErrSessionInvalid)
	}
	signed, sig64 := token[:i], token[i+1:]
	sig, err := base64.RawURLEncoding.DecodeString(sig64)
	if err != nil || !hmac.Equal(sig, s.sign(signed)) {
		return Principal{}, time.Time{}, fmt.Errorf("%w: the signature does not verify", ErrSessionInvalid)
	}
	version, payload64, ok := strings.Cut(signed, ".")
	if !ok || version != sessionVersion {
		return Principal{}, time.Time{}, fmt.Errorf("%w: unknown token version", ErrSessionInvalid)
	}
	payload, err := base64.RawURLEncoding.DecodeString(payload64)
	if err != nil {
		return Principal{}, time.Time{}, fmt.Errorf("%w: %v", ErrSessionInvalid, err)
	}
	var c sessionClaims
	if err := json.Unmarshal(payload, &c); err != nil {
		return Principal{}, time.Time{}, fmt.Errorf("%w: %v", ErrSessionInvalid, err)
	}
	p, err := ParsePrincipal(c.Subject)
	if err != nil || c.Expires == 0 {
		return Principal{}, time.Time{}, fmt.Errorf("%w: no principal or expiry", ErrSessionInvalid)
	}
	exp := time.Unix(c.Expires, 0)
	if !s.now().Before(exp) {
		return Principal{}, time.Time{}, fmt.Errorf("%w at %s", ErrSessionExpired, exp.UTC().Format(time.RFC3339))
	}
	if s.binding != nil {
		now, ok := s.bindingOf(p)
		if !ok || !hmac.Equal([]byte(now), []byte(c.Binding)) {
			return Principal{}, time.Time{}, fmt.Errorf("%w: %s's credentials changed since the login", ErrSessionRevoked, p)
		}
	}
	return p, exp, nil
}

// LoadSessionKey returns the session signing key stored at key in etcd,
// creating a random one first when there is none (a create-if-absent
// transaction, so brokers starting together agree on one key). A stored
// value that is not a key is an error, never replaced: every broker's
// sessions would silently stop verifying.
func LoadSessionKey(ctx context.Context, cli *clientv3.Client, key string) ([]byte, error) {
	fresh := make([]byte, SessionKeyBytes)
	if _, err := rand.Read(fresh); err != nil {
		return nil, err
	}
	encoded := base64.StdEncoding.EncodeToString(fresh)
	resp, err := cli.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
		Then(clientv3.OpPut(key, encoded)).
		Else(clientv3.OpGet(key)).
		Commit()
	if err != nil {
		return nil, fmt.Errorf("auth: loading the session key: %w", err)
	}
	if resp.Succeeded {
		return fresh, nil
	}
	kvs := resp.Responses[0].GetResponseRange().Kvs
	if len(kvs) == 0 {
		return nil, fmt.Errorf("auth: the session key %s vanished while being read", key)
	}
	stored, err := base64.StdEncoding.DecodeString(string(kvs[0].Value))
	if err != nil || len(stored) != SessionKeyBytes {
		return nil, fmt.Errorf("auth: the session key %s is not %d base64-encoded bytes", key, SessionKeyBytes)
	}
	return stored, nil
}
