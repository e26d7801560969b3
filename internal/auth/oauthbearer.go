package auth

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/runnel-dev/runnel/internal/config"
)

// maxOAuthMessage bounds an OAUTHBEARER client message (a JWT and a few
// extensions).
const maxOAuthMessage = 64 << 10

// tokenAlgorithms are the JWS algorithms a token may be signed with:
// asymmetric only, so a key set of public keys is all the broker needs
// (no "none", no HMAC).
var tokenAlgorithms = []jose.SignatureAlgorithm{jose.RS256, jose.RS384, jose.RS512, jose.ES256, jose.ES384, jose.PS256}

// RFC 7628 §3.2.2 error replies: the JSON status a server sends before
// failing the exchange.
var (
	replyInvalidToken   = []byte(`{"status":"invalid_token"}`)
	replyInvalidRequest = []byte(`{"status":"invalid_request"}`)
)

var errMalformedOAuth = errors.New("malformed OAUTHBEARER message")

// oauthMessage is a decoded OAUTHBEARER client message.
type oauthMessage struct {
	authzid    string
	token      string
	extensions map[string]string // kvpairs other than auth
}

// parseOAuthBearer decodes an OAUTHBEARER client first message (RFC 7628
// §3.1): a GS2 header "n,[a=authzid]," then kvpairs key=value, each ended
// by \x01, then a final \x01; the auth pair is "Bearer <token>". Channel
// binding ("p=") is refused; so are control characters in the authzid.
func parseOAuthBearer(msg []byte) (oauthMessage, error) {
	var m oauthMessage
	if len(msg) > maxOAuthMessage {
		return m, fmt.Errorf("%w: too long", errMalformedOAuth)
	}
	s := string(msg)
	rest, ok := strings.CutPrefix(s, "n,")
	if !ok {
		if rest, ok = strings.CutPrefix(s, "y,"); !ok {
			return m, fmt.Errorf("%w: want a GS2 header starting n, (channel binding is not supported)", errMalformedOAuth)
		}
	}
	authz, rest, ok := strings.Cut(rest, ",")
	if !ok {
		return m, fmt.Errorf("%w: unterminated GS2 header", errMalformedOAuth)
	}
	if authz != "" {
		name, ok := strings.CutPrefix(authz, "a=")
		if !ok || name == "" {
			return m, fmt.Errorf("%w: GS2 authzid must be a=name", errMalformedOAuth)
		}
		dec, ok := decodeSASLName(name)
		if !ok {
			return m, fmt.Errorf("%w: invalid authzid", errMalformedOAuth)
		}
		m.authzid = dec
	}
	body, ok := strings.CutPrefix(rest, "\x01")
	if !ok {
		return m, fmt.Errorf("%w: want \\x01 after the GS2 header", errMalformedOAuth)
	}
	body, ok = strings.CutSuffix(body, "\x01")
	if !ok || body == "" {
		return m, fmt.Errorf("%w: want kvpairs ended by \\x01\\x01", errMalformedOAuth)
	}
	body, ok = strings.CutSuffix(body, "\x01")
	if !ok {
		return m, fmt.Errorf("%w: a kvpair is not ended by \\x01", errMalformedOAuth)
	}
	m.extensions = map[string]string{}
	var auth string
	seen := map[string]bool{}
	for _, kv := range strings.Split(body, "\x01") {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || !validKVKey(k) || !validKVValue(v) {
			return m, fmt.Errorf("%w: invalid kvpair", errMalformedOAuth)
		}
		if seen[k] {
			return m, fmt.Errorf("%w: key %q given twice", errMalformedOAuth, k)
		}
		seen[k] = true
		if k == "auth" {
			auth = v
			continue
		}
		m.extensions[k] = v
	}
	if !seen["auth"] {
		return m, fmt.Errorf("%w: no auth kvpair", errMalformedOAuth)
	}
	scheme, token, ok := strings.Cut(auth, " ")
	token = strings.TrimLeft(token, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || !validB64Token(token) {
		return m, fmt.Errorf("%w: auth must be \"Bearer <token>\"", errMalformedOAuth)
	}
	m.token = token
	return m, nil
}

// decodeSASLName undoes GS2's =2C and =3D escapes (RFC 5801 §4) and
// refuses control characters.
func decodeSASLName(s string) (string, bool) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '=':
			switch {
			case strings.HasPrefix(s[i:], "=2C"):
				b.WriteByte(',')
			case strings.HasPrefix(s[i:], "=3D"):
				b.WriteByte('=')
			default:
				return "", false
			}
			i += 2
		case c < 0x20 || c == 0x7f:
			return "", false
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), true
}

// validKVKey: key = 1*(ALPHA).
func validKVKey(k string) bool {
	if k == "" {
		return false
	}
	for i := 0; i < len(k); i++ {
		if c := k[i]; (c < 'a' || c > 'z') && (c < 'A' || c > 'Z') {
			return false
		}
	}
	return true
}

// validKVValue: value = *(VCHAR / SP / HTAB / CR / LF).
func validKVValue(v string) bool {
	for i := 0; i < len(v); i++ {
		c := v[i]
		if (c < 0x21 || c > 0x7e) && c != ' ' && c != '\t' && c != '\r' && c != '\n' {
			return false
		}
	}
	return true
}

// validB64Token: b64token = 1*(ALPHA / DIGIT / "-" / "." / "_" / "~" /
// "+" / "/") *"=" (RFC 6750 §2.1).
func validB64Token(t string) bool {
	body := strings.TrimRight(t, "=")
	if body == "" {
		return false
	}
	for i := 0; i < len(body); i++ {
		c := body[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("-._~+/", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// oauthExchange is one OAUTHBEARER authentication: a single client
// message carrying the token.
type oauthExchange struct {
	a         *Authenticator
	over      bool
	principal Principal
	expiry    time.Time
}

func (e *oauthExchange) Next(ctx context.Context, msg []byte) ([]byte, bool, error) {
	if e.over {
		return nil, false, fmt.Errorf("%w: the OAUTHBEARER exchange is over", ErrIllegalSASLState)
	}
	e.over = true
	m, err := parseOAuthBearer(msg)
	if err != nil {
		return replyInvalidRequest, false, failed(config.MechanismOAuthBearer, err.Error())
	}
	p, exp, err := e.a.oauth.validate(ctx, m.token)
	if err != nil {
		return replyInvalidToken, false, err
	}
	if m.authzid != "" && m.authzid != p.Name {
		return replyInvalidToken, false, failed(config.MechanismOAuthBearer, "authorization id must equal the token's principal")
	}
	e.principal, e.expiry = p, exp
	return nil, true, nil
}

func (e *oauthExchange) Principal() Principal { return e.principal }
func (e *oauthExchange) Expiry() time.Time    { return e.expiry }

// tokenValidator checks JWTs: signature by a key of the key set, issuer,
// audience, exp (required), nbf and iat with the configured clock skew,
// and a non-empty principal claim.
type tokenValidator struct {
	cfg  config.OAuthBearerConfig
	keys *keySource
	now  func() time.Time
}

func (v *tokenValidator) close() { v.keys.close() }

func tokenFailed(why string) error { return failed(config.MechanismOAuthBearer, why) }

// validate checks token and returns its principal and expiry.
func (v *tokenValidator) validate(ctx context.Context, token string) (Principal, time.Time, error) {
	tok, err := jwt.ParseSigned(token, tokenAlgorithms)
	if err != nil {
		return Principal{}, time.Time{}, tokenFailed("malformed token or unsupported signing algorithm")
	}
	if len(tok.Headers) != 1 {
		return Principal{}, time.Time{}, tokenFailed("token must carry one signature")
	}
	hdr := tok.Headers[0]
	var (
		claims   jwt.Claims
		raw      map[string]any
		verified bool
	)
	for _, k := range v.keys.candidates(ctx, hdr.KeyID) {
		if k.Use == "enc" || (k.Algorithm != "" && k.Algorithm != hdr.Algorithm) {
			continue
		}
		key := k.Key
		if !k.IsPublic() {
			key = k.Public().Key
		}
		if tok.Claims(key, &claims, &raw) == nil {
			verified = true
			break
		}
	}
	if !verified {
		return Principal{}, time.Time{}, tokenFailed("token signature not verified by any trusted key")
	}
	if claims.Expiry == nil {
		return Principal{}, time.Time{}, tokenFailed("token has no exp claim")
	}
	want := jwt.Expected{Issuer: v.cfg.Issuer, Time: v.now()}
	if v.cfg.Audience != "" {
		want.AnyAudience = jwt.Audience{v.cfg.Audience}
	}
	if err := claims.ValidateWithLeeway(want, v.cfg.ClockSkew); err != nil {
		var why string
		switch {
		case errors.Is(err, jwt.ErrExpired):
			why = "token expired"
		case errors.Is(err, jwt.ErrNotValidYet):
			why = "token not valid yet (nbf)"
		case errors.Is(err, jwt.ErrIssuedInTheFuture):
			why = "token issued in the future (iat)"
		case errors.Is(err, jwt.ErrInvalidIssuer):
			why = "token issuer not trusted"
		case errors.Is(err, jwt.ErrInvalidAudience):
			why = "token audience does not include this cluster"
		default:
			why = "token claims invalid"
		}
		return Principal{}, time.Time{}, tokenFailed(why)
	}
	claim := v.cfg.PrincipalClaim
	if claim == "" {
		claim = "sub"
	}
	name, _ := raw[claim].(string)
	if name == "" {
		return Principal{}, time.Time{}, tokenFailed(fmt.Sprintf("token has no %q claim to name its principal", claim))
	}
	return User(name), claims.Expiry.Time(), nil
}
