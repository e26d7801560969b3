package auth

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/runnel-dev/runnel/internal/config"
)

// testKey is a signing key and its public JWK.
type testKey struct {
	kid  string
	alg  jose.SignatureAlgorithm
	priv crypto.Signer
}

var (
	rsaOnce sync.Once
	rsaKey  *rsa.PrivateKey
)

func newTestKey(t *testing.T, kid string, alg jose.SignatureAlgorithm) testKey {
	t.Helper()
	var priv crypto.Signer
	switch alg {
	case jose.RS256, jose.RS384, jose.RS512, jose.PS256:
		rsaOnce.Do(func() {
			var err error
			if rsaKey, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
				panic(err)
			}
		})
		priv = rsaKey
	case jose.ES384:
		priv, _ = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	default:
		priv, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	}
	return testKey{kid: kid, alg: alg, priv: priv}
}

func (k testKey) jwk() jose.JSONWebKey {
	return jose.JSONWebKey{Key: k.priv.Public(), KeyID: k.kid, Algorithm: string(k.alg), Use: "sig"}
}

func jwksJSON(t *testing.T, keys ...testKey) []byte {
	t.Helper()
	var set jose.JSONWebKeySet
	for _, k := range keys {
		set.Keys = append(set.Keys, k.jwk())
	}
	b, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// sign makes a JWT of claims signed by k.
func (k testKey) sign(t *testing.T, claims map[string]any) string {
	t.Helper()
	opts := (&jose.SignerOptions{}).WithType("JWT")
	if k.kid != "" {
		opts = opts.WithHeader("kid", k.kid)
	}
	sig, err := jose.NewSigner(jose.SigningKey{Algorithm: k.alg, Key: k.priv}, opts)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := jwt.Signed(sig).Claims(claims).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

var testNow = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

func claimsAt(now time.Time, mod func(map[string]any)) map[string]any {
	c := map[string]any{
		"sub": "alice",
		"iss": "https://idp.example.com",
		"aud": []string{"runnel", "other"},
		"exp": now.Add(time.Hour).Unix(),
		"iat": now.Add(-time.Minute).Unix(),
		"nbf": now.Add(-time.Minute).Unix(),
	}
	if mod != nil {
		mod(c)
	}
	return c
}

func oauthConfig(jwksFile string) config.SASLConfig {
	return config.SASLConfig{
		Mechanisms:      []string{config.MechanismOAuthBearer},
		SCRAMIterations: 4096,
		OAuthBearer: config.OAuthBearerConfig{
			JWKSFile:       jwksFile,
			Issuer:         "https://idp.example.com",
			Audience:       "runnel",
			PrincipalClaim: "sub",
			ClockSkew:      30 * time.Second,
			JWKSRefresh:    time.Hour,
		},
	}
}

func newOAuthAuthenticator(t *testing.T, cfg config.SASLConfig, now func() time.Time, hc *http.Client) *Authenticator {
	t.Helper()
	a, err := NewAuthenticator(context.Background(), AuthenticatorOptions{Config: cfg, Now: now, HTTPClient: hc})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Close() })
	return a
}

func writeFile(t *testing.T, path string, b []byte) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func TestOAuthBearerTokens(t *testing.T) {
	es := newTestKey(t, "es", jose.ES256)
	es384 := newTestKey(t, "es384", jose.ES384)
	rs := newTestKey(t, "rs", jose.RS256)
	ps := newTestKey(t, "ps", jose.PS256)
	stranger := newTestKey(t, "es", jose.ES256) // same kid, untrusted key
	noKid := newTestKey(t, "", jose.ES256)
	file := filepath.Join(t.TempDir(), "jwks.json")
	writeFile(t, file, jwksJSON(t, es, es384, rs, ps))
	now := testNow
	a := newOAuthAuthenticator(t, oauthConfig(file), func() time.Time { return now }, nil)

	hmacToken := func() string {
		sig, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: []byte("0123456789abcdef0123456789abcdef")}, nil)
		if err != nil {
			t.Fatal(err)
		}
		tok, _ := jwt.Signed(sig).Claims(claimsAt(now, nil)).Serialize()
		return tok
	}
	noneToken := func() string {
		enc := base64.RawURLEncoding.EncodeToString
		payload, _ := json.Marshal(claimsAt(now, nil))
		return enc([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + enc(payload) + "."
	}
	// Header alg RS256 on a key published for PS256.
	algSwap := newTestKey(t, "ps", jose.RS256)

	tests := []struct {
		name    string
		token   string
		want    string // principal, "" for failure
		wantErr string
	}{
		{"ES256", es.sign(t, claimsAt(now, nil)), "alice", ""},
		{"ES384", es384.sign(t, claimsAt(now, nil)), "alice", ""},
		{"RS256", rs.sign(t, claimsAt(now, nil)), "alice", ""},
		{"PS256", ps.sign(t, claimsAt(now, nil)), "alice", ""},
		{"single audience string", es.sign(t, claimsAt(now, func(c map[string]any) { c["aud"] = "runnel" })), "alice", ""},
		{"expired within skew", es.sign(t, claimsAt(now, func(c map[string]any) { c["exp"] = now.Add(-10 * time.Second).Unix() })), "alice", ""},
		{"nbf within skew", es.sign(t, claimsAt(now, func(c map[string]any) { c["nbf"] = now.Add(20 * time.Second).Unix() })), "alice", ""},
		{"no iat or nbf", es.sign(t, claimsAt(now, func(c map[string]any) { delete(c, "iat"); delete(c, "nbf") })), "alice", ""},
		{"expired", es.sign(t, claimsAt(now, func(c map[string]any) { c["exp"] = now.Add(-time.Minute).Unix() })), "", "token expired"},
		{"no exp", es.sign(t, claimsAt(now, func(c map[string]any) { delete(c, "exp") })), "", "no exp"},
		{"nbf in the future", es.sign(t, claimsAt(now, func(c map[string]any) { c["nbf"] = now.Add(time.Minute).Unix() })), "", "not valid yet"},
		{"iat in the future", es.sign(t, claimsAt(now, func(c map[string]any) { c["iat"] = now.Add(time.Minute).Unix() })), "", "issued in the future"},
		{"wrong issuer", es.sign(t, claimsAt(now, func(c map[string]any) { c["iss"] = "https://evil.example.com" })), "", "issuer"},
		{"no issuer", es.sign(t, claimsAt(now, func(c map[string]any) { delete(c, "iss") })), "", "issuer"},
		{"wrong audience", es.sign(t, claimsAt(now, func(c map[string]any) { c["aud"] = []string{"other"} })), "", "audience"},
		{"no subject", es.sign(t, claimsAt(now, func(c map[string]any) { delete(c, "sub") })), "", `no "sub" claim`},
		{"untrusted key with a known kid", stranger.sign(t, claimsAt(now, nil)), "", "not verified"},
		{"no kid, untrusted key", noKid.sign(t, claimsAt(now, nil)), "", "not verified"},
		{"alg differs from the key's", algSwap.sign(t, claimsAt(now, nil)), "", "not verified"},
		{"HS256", hmacToken(), "", "unsupported signing algorithm"},
		{"alg none", noneToken(), "", "unsupported signing algorithm"},
		{"garbage", "not-a-jwt", "", "malformed token"},
	}
	ctx := context.Background()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, exp, err := a.CheckToken(ctx, tt.token)
			if tt.want == "" {
				if !errors.Is(err, ErrAuthenticationFailed) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("CheckToken = %v, %v; want ErrAuthenticationFailed saying %q", p, err, tt.wantErr)
				}
				return
			}
			if err != nil || p != User(tt.want) || exp.IsZero() {
				t.Fatalf("CheckToken = %v, %v, %v", p, exp, err)
			}
		})
	}
}

func TestOAuthBearerPrincipalClaim(t *testing.T) {
	es := newTestKey(t, "es", jose.ES256)
	file := filepath.Join(t.TempDir(), "jwks.json")
	writeFile(t, file, jwksJSON(t, es))
	cfg := oauthConfig(file)
	cfg.OAuthBearer.PrincipalClaim = "email"
	cfg.OAuthBearer.Issuer, cfg.OAuthBearer.Audience = "", ""
	a := newOAuthAuthenticator(t, cfg, func() time.Time { return testNow }, nil)
	ctx := context.Background()
	p, _, err := a.CheckToken(ctx, es.sign(t, claimsAt(testNow, func(c map[string]any) {
		c["email"] = "alice@example.com"
		c["iss"], c["aud"] = "anyone", "anything"
	})))
	if err != nil || p != User("alice@example.com") {
		t.Fatalf("CheckToken = %v, %v", p, err)
	}
	if _, _, err := a.CheckToken(ctx, es.sign(t, claimsAt(testNow, func(c map[string]any) { c["email"] = 42 }))); !errors.Is(err, ErrAuthenticationFailed) {
		t.Fatalf("a non-string principal claim = %v", err)
	}
}

func oauthMsg(authzid, token string) []byte {
	h := "n,,"
	if authzid != "" {
		h = "n,a=" + authzid + ","
	}
	return []byte(h + "\x01host=broker\x01port=9092\x01auth=Bearer " + token + "\x01\x01")
}

func TestOAuthBearerExchange(t *testing.T) {
	es := newTestKey(t, "es", jose.ES256)
	file := filepath.Join(t.TempDir(), "jwks.json")
	writeFile(t, file, jwksJSON(t, es))
	a := newOAuthAuthenticator(t, oauthConfig(file), func() time.Time { return testNow }, nil)
	ctx := context.Background()
	good := es.sign(t, claimsAt(testNow, nil))
	expired := es.sign(t, claimsAt(testNow, func(c map[string]any) { c["exp"] = testNow.Add(-time.Hour).Unix() }))
	tests := []struct {
		name      string
		msg       []byte
		ok        bool
		wantReply string
	}{
		{"ok", oauthMsg("", good), true, ""},
		{"authzid equal", oauthMsg("alice", good), true, ""},
		{"authzid differs", oauthMsg("bob", good), false, `{"status":"invalid_token"}`},
		{"expired", oauthMsg("", expired), false, `{"status":"invalid_token"}`},
		{"malformed", []byte("n,,auth=Bearer " + good), false, `{"status":"invalid_request"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ex, err := a.Start(config.MechanismOAuthBearer)
			if err != nil {
				t.Fatal(err)
			}
			reply, done, err := ex.Next(ctx, tt.msg)
			if tt.ok {
				if err != nil || !done || len(reply) != 0 || ex.Principal() != User("alice") || !ex.Expiry().Equal(testNow.Add(time.Hour)) {
					t.Fatalf("Next = %q, %v, %v; principal %v expiry %v", reply, done, err, ex.Principal(), ex.Expiry())
				}
			} else if done || !errors.Is(err, ErrAuthenticationFailed) || string(reply) != tt.wantReply {
				t.Fatalf("Next = %q, %v, %v; want %s and ErrAuthenticationFailed", reply, done, err, tt.wantReply)
			}
			if _, _, err := ex.Next(ctx, []byte("\x01")); !errors.Is(err, ErrIllegalSASLState) {
				t.Fatalf("second Next = %v, want ErrIllegalSASLState", err)
			}
		})
	}
}

func TestParseOAuthBearer(t *testing.T) {
	tests := []struct {
		name    string
		msg     string
		authzid string
		token   string
		ext     map[string]string
		wantErr bool
	}{
		{"minimal", "n,,\x01auth=Bearer abc.def.ghi\x01\x01", "", "abc.def.ghi", map[string]string{}, false},
		{"y flag and authzid", "y,a=ali=2Cce,\x01auth=bearer  tok==\x01\x01", "ali,ce", "tok==", map[string]string{}, false},
		{"extensions", "n,,\x01auth=Bearer t\x01traceId=a b\x01\x01", "", "t", map[string]string{"traceId": "a b"}, false},
		{"channel binding", "p=tls-unique,,\x01auth=Bearer t\x01\x01", "", "", nil, true},
		{"no auth", "n,,\x01host=x\x01\x01", "", "", nil, true},
		{"empty", "", "", "", nil, true},
		{"only kvsep", "\x01", "", "", nil, true},
		{"no final kvsep", "n,,\x01auth=Bearer t\x01", "", "", nil, true},
		{"duplicate auth", "n,,\x01auth=Bearer t\x01auth=Bearer u\x01\x01", "", "", nil, true},
		{"bad key", "n,,\x01a-b=c\x01auth=Bearer t\x01\x01", "", "", nil, true},
		{"bad value", "n,,\x01x=\x00\x01auth=Bearer t\x01\x01", "", "", nil, true},
		{"other scheme", "n,,\x01auth=Basic dXNlcg==\x01\x01", "", "", nil, true},
		{"bad token char", "n,,\x01auth=Bearer a,b\x01\x01", "", "", nil, true},
		{"empty token", "n,,\x01auth=Bearer \x01\x01", "", "", nil, true},
		{"bad authzid escape", "n,a=x=41,\x01auth=Bearer t\x01\x01", "", "", nil, true},
		{"authzid not a=", "n,b=x,\x01auth=Bearer t\x01\x01", "", "", nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := parseOAuthBearer([]byte(tt.msg))
			if tt.wantErr {
				if err == nil {
					t.Fatalf("parsed %+v, want an error", m)
				}
				return
			}
			if err != nil || m.authzid != tt.authzid || m.token != tt.token || len(m.extensions) != len(tt.ext) {
				t.Fatalf("parse = %+v, %v", m, err)
			}
			for k, v := range tt.ext {
				if m.extensions[k] != v {
					t.Fatalf("extension %s = %q, want %q", k, m.extensions[k], v)
				}
			}
		})
	}
}

func TestJWKSFileReloads(t *testing.T) {
	old := newTestKey(t, "old", jose.ES256)
	next := newTestKey(t, "next", jose.ES256)
	file := filepath.Join(t.TempDir(), "jwks.json")
	writeFile(t, file, jwksJSON(t, old))
	a := newOAuthAuthenticator(t, oauthConfig(file), func() time.Time { return testNow }, nil)
	ctx := context.Background()
	if _, _, err := a.CheckToken(ctx, next.sign(t, claimsAt(testNow, nil))); !errors.Is(err, ErrAuthenticationFailed) {
		t.Fatalf("token of a key not yet published = %v", err)
	}
	writeFile(t, file, jwksJSON(t, next))
	if _, _, err := a.CheckToken(ctx, next.sign(t, claimsAt(testNow, nil))); err != nil {
		t.Fatalf("token of the rotated-in key: %v", err)
	}
	if _, _, err := a.CheckToken(ctx, old.sign(t, claimsAt(testNow, nil))); !errors.Is(err, ErrAuthenticationFailed) {
		t.Fatalf("token of the rotated-out key = %v", err)
	}
	// A broken rewrite keeps the last good set.
	writeFile(t, file, []byte("{not json"))
	if _, _, err := a.CheckToken(ctx, next.sign(t, claimsAt(testNow, nil))); err != nil {
		t.Fatalf("after a broken rewrite: %v", err)
	}

	if _, err := NewAuthenticator(ctx, AuthenticatorOptions{Config: oauthConfig(filepath.Join(t.TempDir(), "missing.json"))}); err == nil {
		t.Fatal("a missing JWKS file was accepted at start")
	}
}

func TestJWKSURLRefetchesUnknownKidRateLimited(t *testing.T) {
	k1 := newTestKey(t, "k1", jose.ES256)
	k2 := newTestKey(t, "k2", jose.ES256)
	k3 := newTestKey(t, "k3", jose.ES256)
	var (
		mu      sync.Mutex
		served  = jwksJSON(t, k1)
		fetches atomic.Int32
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fetches.Add(1)
		mu.Lock()
		defer mu.Unlock()
		_, _ = w.Write(served)
	}))
	t.Cleanup(srv.Close)
	publish := func(keys ...testKey) {
		mu.Lock()
		served = jwksJSON(t, keys...)
		mu.Unlock()
	}
	cfg := oauthConfig("")
	cfg.OAuthBearer.JWKSURL = srv.URL
	var now atomic.Int64
	now.Store(testNow.UnixNano())
	clock := func() time.Time { return time.Unix(0, now.Load()) }
	a := newOAuthAuthenticator(t, cfg, clock, srv.Client())
	ctx := context.Background()
	check := func(k testKey) error {
		_, _, err := a.CheckToken(ctx, k.sign(t, claimsAt(clock(), nil)))
		return err
	}
	if err := check(k1); err != nil || fetches.Load() != 1 {
		t.Fatalf("k1: %v after %d fetches", err, fetches.Load())
	}
	// Too soon after the first fetch: k2 is not fetched yet.
	publish(k1, k2)
	if err := check(k2); !errors.Is(err, ErrAuthenticationFailed) || fetches.Load() != 1 {
		t.Fatalf("k2 within the rate limit: %v after %d fetches", err, fetches.Load())
	}
	now.Add(int64(jwksMinRefetch))
	if err := check(k2); err != nil || fetches.Load() != 2 {
		t.Fatalf("k2 after the rate limit: %v after %d fetches", err, fetches.Load())
	}
	// An unknown kid right after a fetch does not fetch again.
	if err := check(k3); !errors.Is(err, ErrAuthenticationFailed) || fetches.Load() != 2 {
		t.Fatalf("k3: %v after %d fetches", err, fetches.Load())
	}
}

// TestJWKSURLRefreshes: the key set is re-fetched every JWKSRefresh, so a
// rotated-in key is trusted even when unknown key ids may not trigger a
// fetch (the clock stands still, so the rate limit never lets them).
func TestJWKSURLRefreshes(t *testing.T) {
	k1 := newTestKey(t, "k1", jose.ES256)
	k2 := newTestKey(t, "k2", jose.ES256)
	var (
		mu     sync.Mutex
		served = jwksJSON(t, k1)
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		_, _ = w.Write(served)
	}))
	t.Cleanup(srv.Close)
	cfg := oauthConfig("")
	cfg.OAuthBearer.JWKSURL = srv.URL
	cfg.OAuthBearer.JWKSRefresh = 50 * time.Millisecond
	a := newOAuthAuthenticator(t, cfg, func() time.Time { return testNow }, srv.Client())
	ctx := context.Background()
	tok := k2.sign(t, claimsAt(testNow, nil))
	if _, _, err := a.CheckToken(ctx, tok); !errors.Is(err, ErrAuthenticationFailed) {
		t.Fatalf("k2 before it is published = %v", err)
	}
	mu.Lock()
	served = jwksJSON(t, k2)
	mu.Unlock()
	eventually(t, 5*time.Second, "k2 trusted after a refresh", func() bool {
		_, _, err := a.CheckToken(ctx, tok)
		return err == nil
	})
}
