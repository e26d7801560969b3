package auth

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/runnel-dev/runnel/internal/config"
)

// maxPlainField bounds each PLAIN field (RFC 4616 allows up to 255 UTF-8
// characters, so at most 1020 bytes).
const maxPlainField = 1020

// errMalformedPlain means a PLAIN message is not [authzid] NUL authcid NUL
// passwd.
var errMalformedPlain = errors.New("malformed PLAIN message")

// parsePlain decodes a PLAIN message (RFC 4616 §2): authzid, authcid and
// password separated by NUL; authcid and password must not be empty and
// no field may hold NUL or invalid UTF-8.
func parsePlain(msg []byte) (authzid, authcid, password string, err error) {
	parts := bytes.Split(msg, []byte{0})
	if len(parts) != 3 {
		return "", "", "", fmt.Errorf("%w: want [authzid] NUL authcid NUL passwd", errMalformedPlain)
	}
	for _, p := range parts {
		if len(p) > maxPlainField || !utf8.Valid(p) {
			return "", "", "", fmt.Errorf("%w: a field is too long or not UTF-8", errMalformedPlain)
		}
	}
	if len(parts[1]) == 0 || len(parts[2]) == 0 {
		return "", "", "", fmt.Errorf("%w: username and password must not be empty", errMalformedPlain)
	}
	return string(parts[0]), string(parts[1]), string(parts[2]), nil
}

// plainExchange is one PLAIN authentication: a single client message.
type plainExchange struct {
	a         *Authenticator
	over      bool
	principal Principal
}

func (e *plainExchange) Next(_ context.Context, msg []byte) ([]byte, bool, error) {
	if e.over {
		return nil, false, fmt.Errorf("%w: PLAIN takes one message", ErrIllegalSASLState)
	}
	e.over = true
	authzid, user, password, err := parsePlain(msg)
	if err != nil {
		return nil, false, failed(config.MechanismPlain, err.Error())
	}
	if authzid != "" && authzid != user {
		return nil, false, failed(config.MechanismPlain, "authorization id must equal the username")
	}
	if err := e.a.checkPassword(user, password); err != nil {
		return nil, false, err
	}
	e.principal = User(user)
	return nil, true, nil
}

func (e *plainExchange) Principal() Principal { return e.principal }
func (e *plainExchange) Expiry() time.Time    { return time.Time{} }

// checkPassword checks password against user's SCRAM credential,
// SCRAM-SHA-512 first: it salts the password with the stored salt and
// iterations and compares the StoredKey it derives in constant time. An
// unknown user is checked against a stand-in so it costs the same. A
// password that verified against the same StoredKey before is accepted
// without salting it again (HTTP Basic sends it with every request).
func (a *Authenticator) checkPassword(user, password string) error {
	mech := config.MechanismSCRAMSHA512
	cred, known := a.creds.Lookup(user, mech)
	if !known {
		mech = config.MechanismSCRAMSHA256
		cred, known = a.lookup(user, mech)
	}
	tag := a.passwordTag(user, mech, password)
	if known && a.verified.holds(tag, cred.StoredKey) {
		return nil
	}
	salted, err := saltPassword(mech, password, cred.Salt, cred.Iterations)
	if err != nil {
		return failed(config.MechanismPlain, "invalid credentials")
	}
	want := newCredential(mech, cred.Iterations, cred.Salt, salted)
	if !hmac.Equal(want.StoredKey, cred.StoredKey) || !known {
		return failed(config.MechanismPlain, "invalid username or password")
	}
	a.verified.add(tag, cred.StoredKey)
	return nil
}

// passwordTag identifies a user, mechanism and password without keeping
// the password: an HMAC under the authenticator's random secret.
func (a *Authenticator) passwordTag(user, mech, password string) [sha256.Size]byte {
	m := hmac.New(sha256.New, a.secret)
	for _, s := range []string{user, mech, password} {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(s)))
		m.Write(n[:])
		m.Write([]byte(s))
	}
	var tag [sha256.Size]byte
	m.Sum(tag[:0])
	return tag
}

// maxVerified bounds the verified-password cache; it is emptied when full.
const maxVerified = 4096

// verifiedPasswords remembers which password tags verified against which
// StoredKey. A changed or deleted credential no longer matches, so the
// cache never outlives a password change.
type verifiedPasswords struct {
	mu sync.Mutex
	m  map[[sha256.Size]byte][]byte
}

func (v *verifiedPasswords) holds(tag [sha256.Size]byte, storedKey []byte) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	k, ok := v.m[tag]
	return ok && hmac.Equal(k, storedKey)
}

func (v *verifiedPasswords) add(tag [sha256.Size]byte, storedKey []byte) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.m == nil || len(v.m) >= maxVerified {
		v.m = make(map[[sha256.Size]byte][]byte)
	}
	v.m[tag] = storedKey
}
