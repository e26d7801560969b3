package broker

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/runnel-dev/runnel/internal/auth"
	"github.com/runnel-dev/runnel/internal/config"
)

// portalDo sends a request to the broker's HTTP listener.
func portalDo(t *testing.T, method, url, body string, cookie *http.Cookie, csrf bool) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if csrf {
		req.Header.Set(auth.CSRFHeader, "1")
	}
	if cookie != nil {
		req.AddCookie(cookie)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// TestPortalOnBroker: a broker with SCRAM users and authorization serves
// the portal at /, logs a user in against the SCRAM credentials, and its
// HTTP guard accepts the session cookie until the user's password
// changes; the signing key is in etcd, so the cluster's other broker
// accepts the cookie too.
func TestPortalOnBroker(t *testing.T) {
	dir := t.TempDir()
	users := filepath.Join(dir, "users")
	if err := os.WriteFile(users, []byte("admin:admin-secret\nalice:alice-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	shared := "file://" + t.TempDir()
	secure := func(cfg *config.Config, id int32) {
		cfg.BrokerID, cfg.ObjectStore = id, shared
		cfg.SASL.Mechanisms = []string{config.MechanismSCRAMSHA512}
		cfg.SASL.FailureDelay = 150 * time.Millisecond
		cfg.Authorization.Enabled = true
		cfg.Authorization.SuperUsers = []string{"User:admin"}
		cfg.Governance.Portal.SessionTTL = 5 * time.Minute
	}
	cfg := testConfig(t, dir)
	secure(&cfg, 1)
	cfg.SASL.BootstrapUsersFile = users
	b := startBroker(t, &cfg)
	web := "http://" + b.HTTPAddr()
	cfg2 := testConfig(t, t.TempDir())
	secure(&cfg2, 2)
	cfg2.Etcd.Endpoints = []string{b.EtcdClientURL()}
	b2 := startBroker(t, &cfg2)

	resp, body := portalDo(t, "GET", web+"/products/orders", "", nil, false)
	if resp.StatusCode != 200 || !strings.Contains(body, `src="/assets/app.js"`) || !strings.HasPrefix(resp.Header.Get("Content-Security-Policy"), "default-src 'self'") {
		t.Fatalf("GET /products/orders: %d %q %s", resp.StatusCode, resp.Header.Get("Content-Security-Policy"), body)
	}
	// The listener's other handlers keep their paths.
	for _, c := range []struct {
		method, path string
		status       int
	}{
		{"GET", "/healthz", 200}, {"GET", "/readyz", 200}, {"GET", "/metrics", 401}, {"POST", "/metrics", 405},
		{"GET", "/tables", 401}, {"GET", "/iceberg/v1/config", 401}, {"GET", "/share/groups/g", 401},
		{"GET", "/debug/pprof/", 401}, {"GET", "/api/v1/nope", 404},
	} {
		if resp, body := portalDo(t, c.method, web+c.path, "", nil, false); resp.StatusCode != c.status {
			t.Fatalf("%s %s: %d %s, want %d (not the portal's)", c.method, c.path, resp.StatusCode, body, c.status)
		}
	}

	start := time.Now()
	resp, body = portalDo(t, "POST", web+"/api/v1/session", `{"username":"alice","password":"wrong"}`, nil, true)
	if resp.StatusCode != 401 || time.Since(start) < cfg.SASL.FailureDelay {
		t.Fatalf("wrong password: %d after %v: %s", resp.StatusCode, time.Since(start), body)
	}
	resp, body = portalDo(t, "POST", web+"/api/v1/session", `{"username":"alice","password":"alice-secret"}`, nil, true)
	if resp.StatusCode != 200 || !strings.Contains(body, `"principal":"User:alice"`) || !strings.Contains(body, `"admin":false`) {
		t.Fatalf("login: %d %s", resp.StatusCode, body)
	}
	var cookie *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == auth.SessionCookie {
			cookie = &http.Cookie{Name: c.Name, Value: c.Value}
			if !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.MaxAge > 300 || c.MaxAge < 290 {
				t.Fatalf("cookie %+v: want HttpOnly, SameSite=Strict, the 5m session-ttl", c)
			}
		}
	}
	if cookie == nil {
		t.Fatal("login set no session cookie")
	}
	resp, body = portalDo(t, "GET", web+"/api/v1/session/permissions?topic=orders", "", cookie, false)
	if resp.StatusCode != 200 || !strings.Contains(body, `"read":false`) {
		t.Fatalf("permissions with the cookie: %d %s", resp.StatusCode, body)
	}
	// The guard in front of the operator endpoints takes the cookie too:
	// alice is authenticated, but not allowed the cluster's DESCRIBE.
	if resp, body := portalDo(t, "GET", web+"/metrics", "", cookie, false); resp.StatusCode != 403 {
		t.Fatalf("metrics with alice's cookie: %d %s", resp.StatusCode, body)
	}
	resp, body = portalDo(t, "POST", web+"/api/v1/session", `{"username":"admin","password":"admin-secret"}`, nil, true)
	if resp.StatusCode != 200 || !strings.Contains(body, `"admin":true`) {
		t.Fatalf("admin login: %d %s", resp.StatusCode, body)
	}

	// The other broker of the cluster accepts the cookie.
	resp, body = portalDo(t, "GET", "http://"+b2.HTTPAddr()+"/api/v1/session/permissions?topic=orders", "", cookie, false)
	if resp.StatusCode != 200 || !strings.Contains(body, `"topic":"orders"`) {
		t.Fatalf("the other broker with alice's cookie: %d %s", resp.StatusCode, body)
	}

	// A new password ends alice's sessions.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := b.sec.creds.SetPassword(ctx, "alice", "new-secret", cfg.SASL.Mechanisms, cfg.SASL.SCRAMIterations); err != nil {
		t.Fatal(err)
	}
	if resp, body := portalDo(t, "GET", web+"/api/v1/session/permissions?topic=orders", "", cookie, false); resp.StatusCode != 401 {
		t.Fatalf("permissions with the cookie after a new password: %d %s", resp.StatusCode, body)
	}
	if resp, body := portalDo(t, "GET", web+"/api/v1/session", "", cookie, false); resp.StatusCode != 200 || !strings.Contains(body, `"principal":""`) {
		t.Fatalf("session after a new password: %d %s", resp.StatusCode, body)
	}

	resp, _ = portalDo(t, "DELETE", web+"/api/v1/session", "", cookie, true)
	if resp.StatusCode != 204 {
		t.Fatalf("logout: %d", resp.StatusCode)
	}
}

// TestPortalOff: governance.portal.enabled false serves no portal and no
// login, and the guard takes no cookie; the API's paths stay.
func TestPortalOff(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	off := false
	cfg.Governance.Portal.Enabled = &off
	b := startBroker(t, &cfg)
	web := "http://" + b.HTTPAddr()
	for _, c := range []struct{ method, path string }{{"GET", "/"}, {"GET", "/products/orders"}, {"GET", "/assets/app.js"}, {"POST", "/api/v1/session"}} {
		if resp, body := portalDo(t, c.method, web+c.path, "", nil, true); resp.StatusCode != 404 {
			t.Fatalf("%s %s with the portal off: %d %s", c.method, c.path, resp.StatusCode, body)
		}
	}
	if resp, _ := portalDo(t, "GET", web+"/metrics", "", nil, false); resp.StatusCode != 200 {
		t.Fatalf("metrics: %d", resp.StatusCode)
	}
	if b.gov.portal.sessions != nil {
		t.Fatal("sessions opened with the portal off")
	}
}
