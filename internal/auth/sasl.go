package auth

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"time"

	"github.com/runnel-dev/runnel/internal/config"
)

var (
	// ErrAuthenticationFailed means a client could not be authenticated.
	// The wrapping message says why without telling whether the user
	// exists.
	ErrAuthenticationFailed = errors.New("auth: authentication failed")
	// ErrUnsupportedMechanism means a SASL mechanism is unknown or not
	// enabled.
	ErrUnsupportedMechanism = errors.New("auth: unsupported SASL mechanism")
	// ErrIllegalSASLState means an exchange was driven past its end: a
	// message after success or failure.
	ErrIllegalSASLState = errors.New("auth: illegal SASL state")
)

// Exchange is one SASL authentication in progress on one connection. It is
// not safe for concurrent use.
type Exchange interface {
	// Next consumes one client message and returns the server's reply. done
	// is true once the client is authenticated; a failed authentication
	// returns an error wrapping ErrAuthenticationFailed (the message says
	// why, without leaking whether a user exists), with the mechanism's
	// error reply when it has one (OAUTHBEARER's JSON status, RFC 7628
	// §3.2.2). After done or a failure, Next returns ErrIllegalSASLState.
	Next(ctx context.Context, msg []byte) (reply []byte, done bool, err error)
	// Principal is the authenticated client; valid after done.
	Principal() Principal
	// Expiry is when the credential expires (a token's exp); zero if never.
	Expiry() time.Time
}

// AuthenticatorOptions configures an Authenticator.
type AuthenticatorOptions struct {
	// Credentials is the SCRAM store PLAIN, SCRAM and CheckPassword check
	// against; required when one of them is enabled.
	Credentials *Credentials
	// Config is the SASL configuration: enabled mechanisms and OAUTHBEARER
	// validation.
	Config config.SASLConfig
	// Logger receives key set refresh failures; discarded when nil.
	Logger *slog.Logger
	// Now is the clock tokens are checked against; time.Now when nil.
	Now func() time.Time
	// HTTPClient fetches a JWKS URL; a client with a 10 s timeout when nil.
	HTTPClient *http.Client
}

// Authenticator runs the enabled SASL mechanisms and checks HTTP Basic and
// Bearer credentials the same way. Safe for concurrent use.
type Authenticator struct {
	creds      *Credentials
	mechanisms []string
	log        *slog.Logger
	now        func() time.Time
	oauth      *tokenValidator // nil without a key source
	// secret keys the stand-in credentials of unknown users, so an unknown
	// user costs and answers the same as a wrong password.
	secret []byte
	// iterations of the stand-in credentials.
	iterations int
	verified   verifiedPasswords
}

// NewAuthenticator builds an Authenticator; with OAUTHBEARER configured it
// reads the key set (a JWKS file that cannot be read is an error) and
// starts refreshing it until Close.
func NewAuthenticator(ctx context.Context, o AuthenticatorOptions) (*Authenticator, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	a := &Authenticator{
		creds:      o.Credentials,
		mechanisms: slices.Clone(o.Config.Mechanisms),
		log:        o.Logger,
		now:        o.Now,
		secret:     make([]byte, 32),
		iterations: o.Config.SCRAMIterations,
	}
	if a.iterations < MinSCRAMIterations || a.iterations > MaxSCRAMIterations {
		a.iterations = MinSCRAMIterations
	}
	if _, err := rand.Read(a.secret); err != nil {
		return nil, fmt.Errorf("auth: secret: %w", err)
	}
	for _, m := range a.mechanisms {
		switch m {
		case config.MechanismPlain, config.MechanismSCRAMSHA256, config.MechanismSCRAMSHA512:
			if a.creds == nil {
				return nil, fmt.Errorf("auth: SASL mechanism %s needs the SCRAM credential store", m)
			}
		case config.MechanismOAuthBearer:
			if !o.Config.OAuthBearer.Enabled() {
				return nil, fmt.Errorf("auth: OAUTHBEARER needs sasl.oauthbearer.jwks-file or jwks-url")
			}
		default:
			return nil, fmt.Errorf("%w %q", ErrUnsupportedMechanism, m)
		}
	}
	if o.Config.OAuthBearer.Enabled() {
		v, err := newTokenValidator(ctx, o.Config.OAuthBearer, o.HTTPClient, o.Now, o.Logger)
		if err != nil {
			return nil, err
		}
		a.oauth = v
	}
	return a, nil
}

// Mechanisms returns the enabled mechanisms in configuration order.
func (a *Authenticator) Mechanisms() []string { return slices.Clone(a.mechanisms) }

// Start begins an exchange with mechanism; the error wraps
// ErrUnsupportedMechanism when it is not enabled.
func (a *Authenticator) Start(mechanism string) (Exchange, error) {
	if !slices.Contains(a.mechanisms, mechanism) {
		return nil, fmt.Errorf("%w %q: enabled are %v", ErrUnsupportedMechanism, mechanism, a.mechanisms)
	}
	switch mechanism {
	case config.MechanismPlain:
		return &plainExchange{a: a}, nil
	case config.MechanismSCRAMSHA256, config.MechanismSCRAMSHA512:
		return a.newSCRAMExchange(mechanism), nil
	case config.MechanismOAuthBearer:
		return &oauthExchange{a: a}, nil
	}
	return nil, fmt.Errorf("%w %q", ErrUnsupportedMechanism, mechanism)
}

// CheckPassword authenticates user with password (HTTP Basic) with PLAIN's
// rules: against the user's SCRAM credential, whether or not PLAIN is
// enabled for SASL.
func (a *Authenticator) CheckPassword(ctx context.Context, user, password string) (Principal, error) {
	if a.creds == nil {
		return Principal{}, fmt.Errorf("%w: password authentication is not configured", ErrAuthenticationFailed)
	}
	if err := a.checkPassword(user, password); err != nil {
		return Principal{}, err
	}
	return User(user), nil
}

// CheckToken validates a bearer token (HTTP Bearer) with OAUTHBEARER's
// rules and returns its principal and expiry.
func (a *Authenticator) CheckToken(ctx context.Context, token string) (Principal, time.Time, error) {
	if a.oauth == nil {
		return Principal{}, time.Time{}, fmt.Errorf("%w: token authentication is not configured", ErrAuthenticationFailed)
	}
	return a.oauth.validate(ctx, token)
}

// Close stops refreshing the key set.
func (a *Authenticator) Close() error {
	if a.oauth != nil {
		a.oauth.close()
	}
	return nil
}

// standIn is the credential an unknown user is checked against: derived
// from the authenticator's secret, stable per user and mechanism, and
// matching no password anyone knows. It makes an unknown user take the
// same path and time as a known one with a wrong password.
func (a *Authenticator) standIn(user, mech string) Credential {
	m := hmac.New(sha256.New, a.secret)
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(len(user)))
	m.Write(n[:])
	m.Write([]byte(user))
	m.Write([]byte(mech))
	salt := m.Sum(nil)
	m.Write([]byte("keys"))
	keys := m.Sum(nil)
	return newCredential(mech, a.iterations, salt, keys)
}

// lookup returns user's credential for mech, or the stand-in.
func (a *Authenticator) lookup(user, mech string) (Credential, bool) {
	if cred, ok := a.creds.Lookup(user, mech); ok {
		return cred, true
	}
	return a.standIn(user, mech), false
}

// failed is the error of a failed authentication; why must not tell
// whether the user exists.
func failed(mech, why string) error {
	return fmt.Errorf("%w with SASL mechanism %s: %s", ErrAuthenticationFailed, mech, why)
}
