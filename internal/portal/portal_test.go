package portal

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-dev/runnel/internal/auth"
)

// fakePasswords knows alice:s3cret and bob:hunter2.
type fakePasswords struct{}

func (fakePasswords) CheckPassword(_ context.Context, user, password string) (auth.Principal, error) {
	if (user == "alice" && password == "s3cret") || (user == "bob" && password == "hunter2") {
		return auth.User(user), nil
	}
	return auth.Principal{}, errors.New("auth: authentication failed")
}

// grants allows "principal operation resource-type name" entries.
type grants map[string]bool

func (g grants) Authorize(p auth.Principal, _ string, op kmsg.ACLOperation, typ kmsg.ACLResourceType, name string) bool {
	return g[p.String()+" "+op.String()+" "+typ.String()+" "+name]
}

var testGrants = grants{
	"User:bob ALTER CLUSTER kafka-cluster": true,
	"User:alice DESCRIBE TOPIC orders":     true,
	"User:alice READ TOPIC orders":         true,
}

type env struct {
	mux      *http.ServeMux
	sessions *auth.Sessions
	now      time.Time
}

// newEnv mounts a portal on a mux beside stand-ins of the HTTP
// listener's other handlers, behind a guard as the broker's.
func newEnv(t *testing.T, delay time.Duration) *env {
	t.Helper()
	e := &env{now: time.Now()}
	var err error
	e.sessions, err = auth.NewSessions(bytes.Repeat([]byte{1}, auth.SessionKeyBytes), auth.SessionOptions{TTL: time.Hour, Now: func() time.Time { return e.now }})
	if err != nil {
		t.Fatal(err)
	}
	g := auth.NewGuard(auth.GuardOptions{Authenticator: authnOf{}, Authorizer: testGrants, Required: true, Sessions: e.sessions})
	p, err := New(Options{Sessions: e.sessions, Passwords: fakePasswords{}, LoginRequired: true, Authorizer: testGrants, FailureDelay: delay})
	if err != nil {
		t.Fatal(err)
	}
	e.mux = http.NewServeMux()
	e.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok\n") })
	e.mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "metrics\n") })
	e.mux.HandleFunc("GET /share/groups/{group}", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "share group\n") })
	e.mux.HandleFunc("/iceberg/", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "iceberg\n") })
	e.mux.Handle("GET /api/v1/products", g.Authenticate(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		pr, _, _ := auth.RequestPrincipal(r.Context())
		io.WriteString(w, "products for "+pr.String())
	})))
	e.mux.Handle("POST /api/v1/access-requests", g.Authenticate(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		pr, _, _ := auth.RequestPrincipal(r.Context())
		w.WriteHeader(http.StatusCreated)
		io.WriteString(w, "requested by "+pr.String())
	})))
	p.Mount(e.mux, true, g.Authenticate)
	return e
}

// authnOf checks Basic credentials with fakePasswords.
type authnOf struct{ fakePasswords }

func (authnOf) CheckToken(context.Context, string) (auth.Principal, time.Time, error) {
	return auth.Principal{}, time.Time{}, errors.New("no tokens")
}

type call struct {
	method, path, body string
	cookie             *http.Cookie
	csrf               bool
	header             map[string]string
}

func (e *env) do(t *testing.T, c call) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(c.method, c.path, strings.NewReader(c.body))
	req.RemoteAddr = "192.0.2.9:4000"
	if c.body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.csrf {
		req.Header.Set(auth.CSRFHeader, "1")
	}
	for k, v := range c.header {
		req.Header.Set(k, v)
	}
	if c.cookie != nil {
		req.AddCookie(c.cookie)
	}
	rec := httptest.NewRecorder()
	e.mux.ServeHTTP(rec, req)
	return rec
}

func sessionCookie(t *testing.T, rec *httptest.ResponseRecorder) *http.Cookie {
	t.Helper()
	for _, c := range rec.Result().Cookies() {
		if c.Name == auth.SessionCookie {
			return c
		}
	}
	return nil
}

// TestServeApplication: the application answers every path it may own
// with its page (client-side routes), its assets from /assets/, and
// leaves the listener's other handlers their paths: a path under them
// that none serves is 404 (JSON under /api/), a method none serves 405.
func TestServeApplication(t *testing.T) {
	e := newEnv(t, 0)
	cases := []struct {
		name, method, path string
		status             int
		contains           string
		contentType        string
		app                bool // the application's page
	}{
		{"root", "GET", "/", 200, `<script type="module" src="/assets/app.js"></script>`, "text/html; charset=utf-8", true},
		{"client-side route", "GET", "/products/orders", 200, "Runnel data portal", "text/html; charset=utf-8", true},
		{"shares page is not /share", "GET", "/shares", 200, "Runnel data portal", "text/html; charset=utf-8", true},
		{"head", "HEAD", "/audit", 200, "", "text/html; charset=utf-8", true},
		{"script", "GET", "/assets/app.js", 200, "import", "text/javascript; charset=utf-8", false},
		{"stylesheet", "GET", "/assets/app.css", 200, "--accent", "text/css; charset=utf-8", false},
		{"icon", "GET", "/assets/favicon.svg", 200, "<svg", "image/svg+xml", false},
		{"missing asset", "GET", "/assets/nope.js", 404, "", "", false},
		{"only assets under /assets/", "GET", "/assets/index.html", 404, "", "", false},
		{"unknown API path", "GET", "/api/v1/nope", 404, `"error_code":40401`, "application/json", false},
		{"API path with another method", "DELETE", "/api/v1/products", 405, `"error_code":40501`, "application/json", false},
		{"metrics", "GET", "/metrics", 200, "metrics", "", false},
		{"metrics with another method", "POST", "/metrics", 405, "", "", false},
		{"probe", "GET", "/healthz", 200, "ok", "", false},
		{"unknown probe path", "GET", "/healthz/x", 404, "", "", false},
		{"share groups", "GET", "/share/groups/g1", 200, "share group", "", false},
		{"unknown share path", "GET", "/share", 404, "", "", false},
		{"iceberg", "POST", "/iceberg/v1/namespaces", 200, "iceberg", "", false},
		{"debug", "GET", "/debug/vars", 404, "", "", false},
		{"application with another method", "POST", "/products/orders", 405, "", "", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rec := e.do(t, call{method: c.method, path: c.path})
			if rec.Code != c.status || !strings.Contains(rec.Body.String(), c.contains) {
				t.Fatalf("%s %s = %d %q, want %d containing %q", c.method, c.path, rec.Code, rec.Body, c.status, c.contains)
			}
			if c.contentType != "" && rec.Header().Get("Content-Type") != c.contentType {
				t.Fatalf("Content-Type %q, want %q", rec.Header().Get("Content-Type"), c.contentType)
			}
			csp := rec.Header().Get("Content-Security-Policy")
			if c.app && (csp != ContentSecurityPolicy || !strings.HasPrefix(csp, "default-src 'self'")) {
				t.Fatalf("Content-Security-Policy %q", csp)
			}
			if c.app && rec.Header().Get("X-Content-Type-Options") != "nosniff" {
				t.Fatal("no nosniff")
			}
			if c.status == 405 && rec.Header().Get("Allow") == "" {
				t.Fatal("405 without Allow")
			}
		})
	}
	// Assets revalidate by ETag.
	rec := e.do(t, call{method: "GET", path: "/assets/app.js"})
	etag := rec.Header().Get("ETag")
	if etag == "" || rec.Header().Get("Cache-Control") != "no-cache" {
		t.Fatalf("ETag %q Cache-Control %q", etag, rec.Header().Get("Cache-Control"))
	}
	if rec := e.do(t, call{method: "GET", path: "/assets/app.js", header: map[string]string{"If-None-Match": etag}}); rec.Code != http.StatusNotModified {
		t.Fatalf("If-None-Match: %d, want 304", rec.Code)
	}
}

// TestAssetsKeepThePolicy: the page runs no inline script or style (the
// policy would block them), builds no markup from strings, and every
// module and file it refers to is embedded.
func TestAssetsKeepThePolicy(t *testing.T) {
	p, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	index := string(p.assets["index.html"].body)
	for _, m := range regexp.MustCompile(`<script[^>]*>`).FindAllString(index, -1) {
		if !strings.Contains(m, ` src="`) {
			t.Errorf("inline script %s", m)
		}
	}
	for _, bad := range []*regexp.Regexp{regexp.MustCompile(`\son[a-z]+=`), regexp.MustCompile(`\sstyle=`), regexp.MustCompile(`<style`), regexp.MustCompile(`javascript:`)} {
		if bad.MatchString(index) {
			t.Errorf("index.html matches %s", bad)
		}
	}
	for _, ref := range regexp.MustCompile(`(?:src|href)="(/assets/[^"]+)"`).FindAllStringSubmatch(index, -1) {
		if _, ok := p.assets[strings.TrimPrefix(ref[1], "/")]; !ok {
			t.Errorf("index.html refers to %s, which is not embedded", ref[1])
		}
	}
	importRE := regexp.MustCompile(`(?m)^\s*import\s[^'"]*['"]([^'"]+)['"]`)
	forbidden := []string{"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function", "setAttribute('style'", "console.log"}
	scripts := 0
	for name, a := range p.assets {
		if !strings.HasSuffix(name, ".js") {
			continue
		}
		scripts++
		src := string(a.body)
		for _, f := range forbidden {
			if strings.Contains(src, f) {
				t.Errorf("%s uses %s", name, f)
			}
		}
		dir := name[:strings.LastIndex(name, "/")+1]
		for _, m := range importRE.FindAllStringSubmatch(src, -1) {
			target := resolve(dir, m[1])
			if _, ok := p.assets[target]; !ok {
				t.Errorf("%s imports %s (%s), which is not embedded", name, m[1], target)
			}
		}
	}
	if scripts < 5 {
		t.Fatalf("only %d scripts embedded", scripts)
	}
}

// resolve resolves a relative module specifier against dir.
func resolve(dir, spec string) string {
	parts := strings.Split(strings.TrimSuffix(dir, "/"), "/")
	for _, seg := range strings.Split(spec, "/") {
		switch seg {
		case ".":
		case "..":
			parts = parts[:len(parts)-1]
		default:
			parts = append(parts, seg)
		}
	}
	return strings.Join(parts, "/")
}

func decode[T any](t *testing.T, rec *httptest.ResponseRecorder) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(rec.Body.Bytes(), &v); err != nil {
		t.Fatalf("body %q: %v", rec.Body, err)
	}
	return v
}

// TestLogin: a login sets a signed, expiring, HttpOnly, SameSite=Strict
// cookie the guard then accepts; writes with it need the CSRF header.
func TestLogin(t *testing.T) {
	e := newEnv(t, 0)
	rec := e.do(t, call{method: "POST", path: "/api/v1/session", body: `{"username":"alice","password":"s3cret"}`, csrf: true})
	if rec.Code != 200 {
		t.Fatalf("login: %d %s", rec.Code, rec.Body)
	}
	got := decode[Session](t, rec)
	if got.Principal != "User:alice" || got.Admin || got.ExpiresAt == nil || !got.PasswordLogin {
		t.Fatalf("login answered %+v", got)
	}
	c := sessionCookie(t, rec)
	if c == nil {
		t.Fatal("no session cookie")
	}
	if !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Path != "/" || c.Secure || c.MaxAge < 3500 || c.MaxAge > 3600 {
		t.Fatalf("cookie %+v: want HttpOnly, SameSite=Strict, Path=/, not Secure over HTTP, Max-Age ~1h", c)
	}
	if p, _, err := e.sessions.VerifySession(c.Value); err != nil || p != auth.User("alice") {
		t.Fatalf("the cookie's token: %v %v", p, err)
	}
	cookie := &http.Cookie{Name: c.Name, Value: c.Value}

	if rec := e.do(t, call{method: "GET", path: "/api/v1/products", cookie: cookie}); rec.Code != 200 || rec.Body.String() != "products for User:alice" {
		t.Fatalf("API with the cookie: %d %s", rec.Code, rec.Body)
	}
	if rec := e.do(t, call{method: "POST", path: "/api/v1/access-requests", body: "{}", cookie: cookie}); rec.Code != 403 {
		t.Fatalf("a write without the CSRF header: %d %s, want 403", rec.Code, rec.Body)
	}
	if rec := e.do(t, call{method: "POST", path: "/api/v1/access-requests", body: "{}", cookie: cookie, csrf: true}); rec.Code != 201 || rec.Body.String() != "requested by User:alice" {
		t.Fatalf("a write with the CSRF header: %d %s", rec.Code, rec.Body)
	}
	rec = e.do(t, call{method: "GET", path: "/api/v1/session", cookie: cookie})
	if s := decode[Session](t, rec); rec.Code != 200 || s.Principal != "User:alice" || s.ExpiresAt == nil {
		t.Fatalf("GET session: %d %+v", rec.Code, s)
	}

	// Bob is an administrator (ALTER on the cluster).
	rec = e.do(t, call{method: "POST", path: "/api/v1/session", body: `{"username":"bob","password":"hunter2"}`, csrf: true})
	if s := decode[Session](t, rec); rec.Code != 200 || s.Principal != "User:bob" || !s.Admin {
		t.Fatalf("bob's login: %d %+v", rec.Code, s)
	}

	// Over TLS the cookie is Secure.
	req := httptest.NewRequest("POST", "https://portal.example/api/v1/session", strings.NewReader(`{"username":"alice","password":"s3cret"}`))
	req.Header.Set(auth.CSRFHeader, "1")
	tlsRec := httptest.NewRecorder()
	e.mux.ServeHTTP(tlsRec, req)
	if c := sessionCookie(t, tlsRec); req.TLS == nil || c == nil || !c.Secure {
		t.Fatalf("login over TLS: cookie %+v", c)
	}

	// The session ends at its expiry.
	e.now = e.now.Add(time.Hour + time.Second)
	if rec := e.do(t, call{method: "GET", path: "/api/v1/products", cookie: cookie}); rec.Code != 401 {
		t.Fatalf("API with an expired cookie: %d, want 401", rec.Code)
	}
	rec = e.do(t, call{method: "GET", path: "/api/v1/session", cookie: cookie})
	if s := decode[Session](t, rec); rec.Code != 200 || s.Principal != "" || !s.PasswordLogin {
		t.Fatalf("GET session with an expired cookie: %d %+v", rec.Code, s)
	}
	if c := sessionCookie(t, rec); c == nil || c.MaxAge >= 0 {
		t.Fatalf("an expired cookie is not cleared: %+v", c)
	}
}

// TestLoginRefusals: wrong passwords are answered after the failure
// delay, with no cookie and no Basic challenge; malformed logins and
// logins or logouts without the CSRF header are refused.
func TestLoginRefusals(t *testing.T) {
	const delay = 120 * time.Millisecond
	e := newEnv(t, delay)
	cases := []struct {
		name   string
		body   string
		csrf   bool
		status int
		slow   bool
	}{
		{"wrong password", `{"username":"alice","password":"nope"}`, true, 401, true},
		{"unknown user", `{"username":"mallory","password":"s3cret"}`, true, 401, true},
		{"no csrf header", `{"username":"alice","password":"s3cret"}`, false, 403, false},
		{"empty password", `{"username":"alice","password":""}`, true, 400, false},
		{"unknown field", `{"username":"alice","password":"s3cret","admin":true}`, true, 400, false},
		{"not json", `username=alice`, true, 400, false},
		{"huge user name", `{"username":"` + strings.Repeat("a", 2000) + `","password":"x"}`, true, 400, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			start := time.Now()
			rec := e.do(t, call{method: "POST", path: "/api/v1/session", body: c.body, csrf: c.csrf})
			took := time.Since(start)
			if rec.Code != c.status {
				t.Fatalf("status %d %s, want %d", rec.Code, rec.Body, c.status)
			}
			if (took >= delay) != c.slow {
				t.Fatalf("answered in %v; want delayed: %v", took, c.slow)
			}
			if sessionCookie(t, rec) != nil {
				t.Fatal("a refused login set a cookie")
			}
			if ch := rec.Header().Values("WWW-Authenticate"); c.status == 401 && (len(ch) != 1 || strings.HasPrefix(ch[0], "Basic")) {
				t.Fatalf("challenges %q: a Basic challenge makes the browser ask itself", ch)
			}
			if b := decode[map[string]any](t, rec); b["message"] == "" || b["error_code"] == nil {
				t.Fatalf("body %v", b)
			}
		})
	}
	if rec := e.do(t, call{method: "DELETE", path: "/api/v1/session"}); rec.Code != 403 {
		t.Fatalf("logout without the CSRF header: %d, want 403", rec.Code)
	}
}

func TestLogout(t *testing.T) {
	e := newEnv(t, 0)
	rec := e.do(t, call{method: "DELETE", path: "/api/v1/session", csrf: true})
	c := sessionCookie(t, rec)
	if rec.Code != 204 || c == nil || c.Value != "" || c.MaxAge >= 0 || !c.HttpOnly {
		t.Fatalf("logout: %d cookie %+v", rec.Code, c)
	}
}

// TestCurrentSession: GET /api/v1/session says who is logged in, and
// answers 200 when nobody is (no failed request in the browser).
func TestCurrentSession(t *testing.T) {
	e := newEnv(t, 0)
	rec := e.do(t, call{method: "GET", path: "/api/v1/session"})
	if s := decode[Session](t, rec); rec.Code != 200 || s.Principal != "" || !s.PasswordLogin {
		t.Fatalf("nobody: %d %+v", rec.Code, s)
	}
	rec = e.do(t, call{method: "GET", path: "/api/v1/session", cookie: &http.Cookie{Name: auth.SessionCookie, Value: "forged"}})
	if s := decode[Session](t, rec); rec.Code != 200 || s.Principal != "" {
		t.Fatalf("forged cookie: %d %+v", rec.Code, s)
	}
	basic := func(u, p string) map[string]string {
		r := httptest.NewRequest("GET", "/", nil)
		r.SetBasicAuth(u, p)
		return map[string]string{"Authorization": r.Header.Get("Authorization")}
	}
	rec = e.do(t, call{method: "GET", path: "/api/v1/session", header: basic("bob", "hunter2")})
	if s := decode[Session](t, rec); rec.Code != 200 || s.Principal != "User:bob" || !s.Admin || s.ExpiresAt != nil {
		t.Fatalf("basic: %d %+v", rec.Code, s)
	}
	if rec := e.do(t, call{method: "GET", path: "/api/v1/session", header: basic("bob", "nope")}); rec.Code != 401 {
		t.Fatalf("bad basic: %d", rec.Code)
	}

	// Without security every caller is User:ANONYMOUS, allowed
	// everything, and there is no password login.
	p, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	p.Mount(mux, false, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			h.ServeHTTP(w, r.WithContext(auth.WithRequestPrincipal(r.Context(), auth.Anonymous, "127.0.0.1")))
		})
	})
	open := &env{mux: mux}
	rec = open.do(t, call{method: "GET", path: "/api/v1/session"})
	if s := decode[Session](t, rec); rec.Code != 200 || s.Principal != "User:ANONYMOUS" || !s.Admin || s.PasswordLogin {
		t.Fatalf("open broker: %d %+v", rec.Code, s)
	}
	if rec := open.do(t, call{method: "POST", path: "/api/v1/session", body: `{"username":"a","password":"b"}`, csrf: true}); rec.Code != 404 {
		t.Fatalf("login on an open broker: %d, want 404", rec.Code)
	}
	rec = open.do(t, call{method: "GET", path: "/api/v1/session/permissions?topic=orders"})
	if pm := decode[Permissions](t, rec); !pm.Read || !pm.Write || !pm.Admin {
		t.Fatalf("open broker permissions: %+v", pm)
	}
}

func TestPermissions(t *testing.T) {
	e := newEnv(t, 0)
	token, _ := e.sessions.Issue(auth.User("alice"))
	cookie := &http.Cookie{Name: auth.SessionCookie, Value: token}
	rec := e.do(t, call{method: "GET", path: "/api/v1/session/permissions?topic=orders", cookie: cookie})
	want := Permissions{Topic: "orders", Describe: true, Read: true}
	if pm := decode[Permissions](t, rec); rec.Code != 200 || pm != want {
		t.Fatalf("alice on orders: %d %+v, want %+v", rec.Code, pm, want)
	}
	rec = e.do(t, call{method: "GET", path: "/api/v1/session/permissions?topic=payments", cookie: cookie})
	if pm := decode[Permissions](t, rec); pm != (Permissions{Topic: "payments"}) {
		t.Fatalf("alice on payments: %+v", pm)
	}
	if rec := e.do(t, call{method: "GET", path: "/api/v1/session/permissions", cookie: cookie}); rec.Code != 400 {
		t.Fatalf("no topic: %d, want 400", rec.Code)
	}
	if rec := e.do(t, call{method: "GET", path: "/api/v1/session/permissions?topic=orders"}); rec.Code != 401 {
		t.Fatalf("no credentials: %d, want 401", rec.Code)
	}
}
