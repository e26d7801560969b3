package auth

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

var errBadCredentials = errors.New("auth: authentication failed")

// fakeAuthn knows passwords and tokens.
type fakeAuthn struct {
	passwords map[string]string
	tokens    map[string]struct {
		user string
		exp  time.Time
	}
}

func (f fakeAuthn) CheckPassword(_ context.Context, user, password string) (Principal, error) {
	if pw, ok := f.passwords[user]; ok && pw == password {
		return User(user), nil
	}
	return Principal{}, errBadCredentials
}

func (f fakeAuthn) CheckToken(_ context.Context, token string) (Principal, time.Time, error) {
	t, ok := f.tokens[token]
	if !ok {
		return Principal{}, time.Time{}, errBadCredentials
	}
	return User(t.user), t.exp, nil
}

// fakeAuthz allows the listed "principal op type name" entries.
type fakeAuthz map[string]bool

func (f fakeAuthz) Authorize(p Principal, _ string, op kmsg.ACLOperation, typ kmsg.ACLResourceType, name string) bool {
	return f[p.String()+" "+op.String()+" "+typ.String()+" "+name]
}

// fakeCerts maps any verified certificate to its subject's CN.
type fakeCerts struct{}

func (fakeCerts) Principal(st tls.ConnectionState) (Principal, bool, error) {
	if len(st.VerifiedChains) == 0 {
		return Principal{}, false, nil
	}
	cn := st.VerifiedChains[0][0].Subject.CommonName
	if cn == "" {
		return Principal{}, false, errors.New("no rule matches")
	}
	return User("CN=" + cn), true, nil
}

func testAuthn(now time.Time) fakeAuthn {
	return fakeAuthn{
		passwords: map[string]string{"alice": "s3cret"},
		tokens: map[string]struct {
			user string
			exp  time.Time
		}{
			"good-token":    {"carol", now.Add(time.Hour)},
			"expired-token": {"carol", now.Add(-time.Second)},
		},
	}
}

type errBody struct {
	Code    int    `json:"error_code"`
	Message string `json:"message"`
}

func TestGuardAuthenticate(t *testing.T) {
	now := time.Date(2026, 12, 7, 1, 0, 0, 0, time.UTC)
	verified := &tls.ConnectionState{VerifiedChains: [][]*x509.Certificate{{{}}}}
	verified.VerifiedChains[0][0].Subject.CommonName = "svc"
	unverified := &tls.ConnectionState{}
	unmapped := &tls.ConnectionState{VerifiedChains: [][]*x509.Certificate{{{}}}}
	cases := []struct {
		name      string
		required  bool
		header    string
		tls       *tls.ConnectionState
		status    int
		principal string // seen by the handler
		challenge string // a WWW-Authenticate value that must be present
	}{
		{name: "anonymous when not required", status: 200, principal: "User:ANONYMOUS"},
		{name: "no credentials when required", required: true, status: 401, challenge: `Basic realm="runnel"`},
		{name: "basic", required: true, header: basic("alice", "s3cret"), status: 200, principal: "User:alice"},
		{name: "basic wrong password", header: basic("alice", "nope"), status: 401, challenge: `Basic realm="runnel"`},
		{name: "basic unknown user", required: true, header: basic("mallory", "s3cret"), status: 401},
		{name: "basic malformed", header: "Basic !!!", status: 401},
		{name: "bearer", required: true, header: "Bearer good-token", status: 200, principal: "User:carol"},
		{name: "bearer lower-case scheme", required: true, header: "bearer good-token", status: 200, principal: "User:carol"},
		{name: "bearer invalid", header: "Bearer forged", status: 401, challenge: `Bearer realm="runnel", error="invalid_token", error_description="The token is invalid"`},
		{name: "bearer expired", required: true, header: "Bearer expired-token", status: 401, challenge: `Bearer realm="runnel", error="invalid_token", error_description="The token expired"`},
		{name: "bearer empty", header: "Bearer ", status: 401, challenge: `Bearer realm="runnel", error="invalid_request", error_description="The Bearer token is empty"`},
		{name: "unknown scheme", header: "Digest username=alice", status: 401},
		{name: "client certificate", required: true, tls: verified, status: 200, principal: "User:CN=svc"},
		{name: "unverified certificate is no credential", required: true, tls: unverified, status: 401},
		{name: "certificate wins over good basic", required: true, tls: verified, header: basic("alice", "s3cret"), status: 200, principal: "User:CN=svc"},
		{name: "certificate that maps to no principal", tls: unmapped, status: 401},
		{name: "certificate does not excuse bad basic", required: true, tls: verified, header: basic("alice", "nope"), status: 401},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			g := NewGuard(GuardOptions{Authenticator: testAuthn(now), Certificates: fakeCerts{}, Required: c.required,
				Now: func() time.Time { return now }})
			var seen, seenHost string
			h := g.Authenticate(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				p, host, ok := RequestPrincipal(r.Context())
				if !ok {
					t.Error("handler reached without a principal in the context")
				}
				seen, seenHost = p.String(), host
			}))
			req := httptest.NewRequest("GET", "/subjects", nil)
			req.RemoteAddr = "192.0.2.7:5555"
			req.TLS = c.tls
			if c.header != "" {
				req.Header.Set("Authorization", c.header)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != c.status {
				t.Fatalf("status %d, want %d (body %s)", rec.Code, c.status, rec.Body)
			}
			if c.status == 200 {
				if seen != c.principal || seenHost != "192.0.2.7" {
					t.Fatalf("handler saw %q from %q, want %q from 192.0.2.7", seen, seenHost, c.principal)
				}
				return
			}
			if seen != "" {
				t.Fatal("a refused request reached the handler")
			}
			var b errBody
			if err := json.Unmarshal(rec.Body.Bytes(), &b); err != nil || b.Code != 40101 || b.Message == "" {
				t.Fatalf("body %q: want Confluent's {error_code:40101, message} (%v)", rec.Body, err)
			}
			if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
				t.Fatalf("Content-Type %q", ct)
			}
			challenges := rec.Header().Values("WWW-Authenticate")
			if len(challenges) == 0 || challenges[0] != `Basic realm="runnel"` {
				t.Fatalf("challenges %q: want Basic realm first", challenges)
			}
			if c.challenge != "" && !contains(challenges, c.challenge) {
				t.Fatalf("challenges %q lack %q", challenges, c.challenge)
			}
		})
	}
}

// TestGuardFailureDelay: failed credentials are answered after the delay,
// missing ones at once.
func TestGuardFailureDelay(t *testing.T) {
	const delay = 150 * time.Millisecond
	g := NewGuard(GuardOptions{Authenticator: testAuthn(time.Now()), Required: true, FailureDelay: delay})
	h := g.Authenticate(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	for _, c := range []struct {
		header string
		slow   bool
	}{{basic("alice", "nope"), true}, {"Bearer forged", true}, {"", false}, {basic("alice", "s3cret"), false}} {
		req := httptest.NewRequest("GET", "/", nil)
		if c.header != "" {
			req.Header.Set("Authorization", c.header)
		}
		start := time.Now()
		h.ServeHTTP(httptest.NewRecorder(), req)
		if took := time.Since(start); (took >= delay) != c.slow {
			t.Errorf("%q answered in %v; want delayed: %v", c.header, took, c.slow)
		}
	}
}

func TestGuardRequireCluster(t *testing.T) {
	authz := fakeAuthz{"User:ops DESCRIBE CLUSTER kafka-cluster": true}
	g := NewGuard(GuardOptions{Authenticator: fakeAuthn{passwords: map[string]string{"ops": "pw", "dev": "pw"}},
		Authorizer: authz, Required: true})
	h := g.Authenticate(g.RequireCluster(kmsg.ACLOperationDescribe, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("metrics"))
	})))
	for _, c := range []struct {
		user   string
		status int
	}{{"ops", 200}, {"dev", 403}} {
		req := httptest.NewRequest("GET", "/metrics", nil)
		req.Header.Set("Authorization", basic(c.user, "pw"))
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != c.status {
			t.Fatalf("%s: status %d, want %d", c.user, rec.Code, c.status)
		}
		if c.status == 403 {
			var b errBody
			if err := json.Unmarshal(rec.Body.Bytes(), &b); err != nil || b.Code != 40301 ||
				b.Message != "User:dev is denied operation Describe on Cluster: kafka-cluster" {
				t.Fatalf("body %q (%v)", rec.Body, err)
			}
		}
	}
}

func TestGuardAuthorizedWithoutAuthorizer(t *testing.T) {
	g := NewGuard(GuardOptions{})
	if !g.Authorized(context.Background(), kmsg.ACLOperationAlterConfigs, kmsg.ACLResourceTypeCluster, ClusterResourceName) {
		t.Fatal("a guard without an authorizer must allow everything")
	}
}

func TestOpName(t *testing.T) {
	for op, want := range map[kmsg.ACLOperation]string{
		kmsg.ACLOperationWrite: "Write", kmsg.ACLOperationDescribeConfigs: "DescribeConfigs",
		kmsg.ACLOperationAlterConfigs: "AlterConfigs", kmsg.ACLOperationDelete: "Delete",
	} {
		if got := opName(op); got != want {
			t.Errorf("opName(%v) = %q, want %q", op, got, want)
		}
	}
}

func basic(user, password string) string {
	req, _ := http.NewRequest("GET", "/", nil)
	req.SetBasicAuth(user, password)
	return req.Header.Get("Authorization")
}

func contains(xs []string, s string) bool {
	for _, x := range xs {
		if strings.TrimSpace(x) == s {
			return true
		}
	}
	return false
}
