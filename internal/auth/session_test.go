package auth

import (
	"bytes"
	"encoding/base64"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/runnel-dev/runnel/internal/cluster/clustertest"
)

var sessionKey = bytes.Repeat([]byte{7}, SessionKeyBytes)

func testSessions(t *testing.T, key []byte, now *time.Time) *Sessions {
	t.Helper()
	s, err := NewSessions(key, SessionOptions{TTL: time.Hour, Now: func() time.Time { return *now }})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSessionRoundTrip(t *testing.T) {
	now := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	s := testSessions(t, sessionKey, &now)
	token, exp := s.Issue(User("alice"))
	if !exp.Equal(now.Add(time.Hour)) {
		t.Fatalf("expiry %v, want %v", exp, now.Add(time.Hour))
	}
	p, gotExp, err := s.VerifySession(token)
	if err != nil || p != User("alice") || !gotExp.Equal(exp) {
		t.Fatalf("VerifySession = %v %v %v, want User:alice %v", p, gotExp, err, exp)
	}
	// Another broker with the same key accepts it.
	if p, _, err := testSessions(t, append([]byte(nil), sessionKey...), &now).VerifySession(token); err != nil || p != User("alice") {
		t.Fatalf("the same key elsewhere: %v %v", p, err)
	}
}

// TestSessionTampering: a token changed anywhere, signed with another
// key, or not a token at all is refused as invalid.
func TestSessionTampering(t *testing.T) {
	now := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	s := testSessions(t, sessionKey, &now)
	token, _ := s.Issue(User("alice"))
	version, rest, _ := strings.Cut(token, ".")
	payload, sig, _ := strings.Cut(rest, ".")

	forged := func(claims string) string {
		return version + "." + base64.RawURLEncoding.EncodeToString([]byte(claims)) + "." + sig
	}
	other := testSessions(t, bytes.Repeat([]byte{8}, SessionKeyBytes), &now)
	otherToken, _ := other.Issue(User("admin"))
	flipped := []byte(sig)
	flipped[3] ^= 1
	cases := map[string]string{
		"principal changed":  forged(`{"sub":"User:admin","iat":1796637600,"exp":1796641200}`),
		"expiry extended":    forged(`{"sub":"User:alice","iat":1796637600,"exp":4102444800}`),
		"signature flipped":  version + "." + payload + "." + string(flipped),
		"signature dropped":  version + "." + payload,
		"signature empty":    version + "." + payload + ".",
		"other key":          otherToken,
		"version changed":    "v2." + payload + "." + sig,
		"empty":              "",
		"garbage":            "not-a-token",
		"too long":           strings.Repeat("a", maxSessionToken+1),
		"payload not base64": version + ".!!!." + sig,
	}
	for name, tok := range cases {
		t.Run(name, func(t *testing.T) {
			p, _, err := s.VerifySession(tok)
			if !errors.Is(err, ErrSessionInvalid) {
				t.Fatalf("VerifySession = %v, %v; want ErrSessionInvalid", p, err)
			}
		})
	}
}

func TestSessionExpiry(t *testing.T) {
	now := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	s := testSessions(t, sessionKey, &now)
	token, exp := s.Issue(User("alice"))
	now = exp.Add(-time.Second)
	if _, _, err := s.VerifySession(token); err != nil {
		t.Fatalf("a second before expiry: %v", err)
	}
	now = exp
	if _, _, err := s.VerifySession(token); !errors.Is(err, ErrSessionExpired) {
		t.Fatalf("at expiry: %v, want ErrSessionExpired", err)
	}
}

func TestNewSessionsRefusesBadOptions(t *testing.T) {
	if _, err := NewSessions([]byte("short"), SessionOptions{TTL: time.Hour}); err == nil {
		t.Fatal("a short key was accepted")
	}
	if _, err := NewSessions(sessionKey, SessionOptions{}); err == nil {
		t.Fatal("a zero lifetime was accepted")
	}
}

// TestLoadSessionKey: brokers starting at once agree on one key, created
// once; a stored value that is no key is an error, not replaced.
func TestLoadSessionKey(t *testing.T) {
	cli := clustertest.Start(t).Client()
	ctx := testCtx(t)
	const path = "/runnel/governance/portal/session-key"
	keys := make([][]byte, 4)
	var wg sync.WaitGroup
	for i := range keys {
		wg.Add(1)
		go func() {
			defer wg.Done()
			k, err := LoadSessionKey(ctx, cli, path)
			if err != nil {
				t.Error(err)
			}
			keys[i] = k
		}()
	}
	wg.Wait()
	for i, k := range keys {
		if len(k) != SessionKeyBytes || !bytes.Equal(k, keys[0]) {
			t.Fatalf("broker %d loaded key %x, broker 0 %x", i, k, keys[0])
		}
	}
	again, err := LoadSessionKey(ctx, cli, path)
	if err != nil || !bytes.Equal(again, keys[0]) {
		t.Fatalf("reloading: %x %v", again, err)
	}
	if _, err := cli.Put(ctx, path, "not a key"); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadSessionKey(ctx, cli, path); err == nil {
		t.Fatal("a malformed stored key was accepted")
	}
	resp, err := cli.Get(ctx, path)
	if err != nil || string(resp.Kvs[0].Value) != "not a key" {
		t.Fatalf("the stored value was replaced: %v %v", resp, err)
	}
}

// TestGuardSessionCookie: the guard takes the session cookie from a
// request without an Authorization header, refuses a bad or expired one
// without a Basic challenge (the browser would show its own dialog), and
// refuses a cookie-authenticated write without the CSRF header.
func TestGuardSessionCookie(t *testing.T) {
	now := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	s := testSessions(t, sessionKey, &now)
	good, _ := s.Issue(User("bob"))
	old := now.Add(-2 * time.Hour)
	expired, _ := testSessions(t, sessionKey, &old).Issue(User("bob"))
	forged, _ := testSessions(t, bytes.Repeat([]byte{9}, SessionKeyBytes), &now).Issue(User("admin"))
	cases := []struct {
		name      string
		method    string
		cookie    string
		header    string // Authorization
		csrf      string
		status    int
		principal string
	}{
		{name: "cookie", method: "GET", cookie: good, status: 200, principal: "User:bob"},
		{name: "cookie write with csrf header", method: "POST", cookie: good, csrf: "1", status: 200, principal: "User:bob"},
		{name: "cookie write without csrf header", method: "POST", cookie: good, status: 403},
		{name: "cookie delete with a wrong csrf value", method: "DELETE", cookie: good, csrf: "yes", status: 403},
		{name: "expired cookie", method: "GET", cookie: expired, status: 401},
		{name: "forged cookie", method: "GET", cookie: forged, status: 401},
		{name: "garbage cookie", method: "GET", cookie: "x", status: 401},
		{name: "authorization header wins", method: "POST", cookie: good, header: basic("alice", "s3cret"), status: 200, principal: "User:alice"},
		{name: "bad authorization header is not rescued by the cookie", method: "GET", cookie: good, header: basic("alice", "nope"), status: 401},
		{name: "no cookie", method: "GET", status: 401},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			g := NewGuard(GuardOptions{Authenticator: testAuthn(now), Required: true, Sessions: s, Now: func() time.Time { return now }})
			var seen string
			h := g.Authenticate(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				p, _, _ := RequestPrincipal(r.Context())
				seen = p.String()
			}))
			req := httptest.NewRequest(c.method, "/api/v1/products", nil)
			if c.cookie != "" {
				req.AddCookie(&http.Cookie{Name: SessionCookie, Value: c.cookie})
			}
			if c.header != "" {
				req.Header.Set("Authorization", c.header)
			}
			if c.csrf != "" {
				req.Header.Set(CSRFHeader, c.csrf)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != c.status || seen != c.principal {
				t.Fatalf("status %d principal %q, want %d %q (body %s)", rec.Code, seen, c.status, c.principal, rec.Body)
			}
			if c.cookie != "" && c.header == "" && c.status == 401 {
				if ch := rec.Header().Values("WWW-Authenticate"); len(ch) != 1 || !strings.HasPrefix(ch[0], "Cookie ") {
					t.Fatalf("challenges %q: want only the Cookie scheme", ch)
				}
			}
		})
	}
	// A guard that was not given sessions ignores the cookie.
	g := NewGuard(GuardOptions{Authenticator: testAuthn(now), Required: true})
	req := httptest.NewRequest("GET", "/", nil)
	req.AddCookie(&http.Cookie{Name: SessionCookie, Value: good})
	rec := httptest.NewRecorder()
	g.Authenticate(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})).ServeHTTP(rec, req)
	if rec.Code != 401 {
		t.Fatalf("a guard without sessions: %d, want 401", rec.Code)
	}
	// AcceptSessions turns them on.
	g.AcceptSessions(s)
	rec = httptest.NewRecorder()
	g.Authenticate(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})).ServeHTTP(rec, req)
	if rec.Code != 200 {
		t.Fatalf("after AcceptSessions: %d, want 200", rec.Code)
	}
}

// TestSessionBinding: a session bound to its user's SCRAM credentials
// ends when the password changes or the user is deleted; another user's
// session lives on, and a session of a user without credentials never
// verifies.
func TestSessionBinding(t *testing.T) {
	cli := clustertest.Start(t).Client()
	ctx := testCtx(t)
	creds := newTestCredentials(t, cli)
	mechs := []string{"SCRAM-SHA-512"}
	for _, u := range []string{"alice", "bob"} {
		if err := creds.SetPassword(ctx, u, u+"-pw", mechs, MinSCRAMIterations); err != nil {
			t.Fatal(err)
		}
	}
	now := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	s, err := NewSessions(sessionKey, SessionOptions{TTL: time.Hour, Now: func() time.Time { return now }, Binding: CredentialBinding(creds)})
	if err != nil {
		t.Fatal(err)
	}
	alice, _ := s.Issue(User("alice"))
	bob, _ := s.Issue(User("bob"))
	ghost, _ := s.Issue(User("ghost"))
	for _, tok := range []string{alice, bob} {
		if _, _, err := s.VerifySession(tok); err != nil {
			t.Fatalf("before any change: %v", err)
		}
	}
	if _, _, err := s.VerifySession(ghost); !errors.Is(err, ErrSessionRevoked) {
		t.Fatalf("a user without credentials: %v, want ErrSessionRevoked", err)
	}
	// The same password set again draws a new salt: a new credential.
	if err := creds.SetPassword(ctx, "alice", "alice-pw", mechs, MinSCRAMIterations); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.VerifySession(alice); !errors.Is(err, ErrSessionRevoked) {
		t.Fatalf("after alice's new password: %v, want ErrSessionRevoked", err)
	}
	if _, _, err := s.VerifySession(bob); err != nil {
		t.Fatalf("bob's session after alice's change: %v", err)
	}
	fresh, _ := s.Issue(User("alice"))
	if _, _, err := s.VerifySession(fresh); err != nil {
		t.Fatalf("a login after the change: %v", err)
	}
	if err := creds.Delete(ctx, "bob", "SCRAM-SHA-512"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.VerifySession(bob); !errors.Is(err, ErrSessionRevoked) {
		t.Fatalf("after bob's deletion: %v, want ErrSessionRevoked", err)
	}
	// The binding in the cookie is keyed: it is not a digest anyone can
	// recompute from the credentials.
	_, rest, _ := strings.Cut(fresh, ".")
	payload, _, _ := strings.Cut(rest, ".")
	raw, _ := base64.RawURLEncoding.DecodeString(payload)
	if !strings.Contains(string(raw), `"bnd":"`) {
		t.Fatalf("payload %s carries no binding", raw)
	}
}
