package broker

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-dev/runnel/internal/auth"
	"github.com/runnel-dev/runnel/internal/cluster/clustertest"
	"github.com/runnel-dev/runnel/internal/config"
	"github.com/runnel-dev/runnel/test/harness"
)

// pwAuthn knows users whose password is "pw".
type pwAuthn struct{}

func (pwAuthn) CheckPassword(_ context.Context, user, password string) (auth.Principal, error) {
	if password != "pw" {
		return auth.Principal{}, errors.New("bad password")
	}
	return auth.User(user), nil
}

func (pwAuthn) CheckToken(context.Context, string) (auth.Principal, time.Time, error) {
	return auth.Principal{}, time.Time{}, errors.New("no tokens")
}

// grants allows "principal operation resource-type name" entries and
// everything to User:admin.
type grants map[string]bool

func (g grants) Authorize(p auth.Principal, _ string, op kmsg.ACLOperation, typ kmsg.ACLResourceType, name string) bool {
	return p.String() == "User:admin" || g[p.String()+" "+op.String()+" "+typ.String()+" "+name]
}

// startHTTPListeners starts the registry and HTTP listeners of a broker
// that has nothing else, with the given security.
func startHTTPListeners(t *testing.T, cfg config.Config, authn auth.HTTPAuthenticator, authz auth.HTTPAuthorizer) *Broker {
	t.Helper()
	b := &Broker{cfg: cfg, log: slog.New(slog.DiscardHandler), cli: clustertest.Start(t).Client(),
		registry: prometheus.NewRegistry(), ready: make(chan struct{}), authn: authn, authz: authz}
	b.registry.MustRegister(collectors.NewGoCollector())
	if err := b.openRegistry(); err != nil {
		t.Fatal(err)
	}
	if err := b.startRegistry(); err != nil {
		t.Fatal(err)
	}
	if err := b.startHTTP(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		b.httpSrv.Shutdown(ctx)
		b.registrySrv.Shutdown(ctx)
		b.wg.Wait()
		b.schemas.Close()
	})
	return b
}

func get(t *testing.T, cl *http.Client, method, url, user, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if user != "" {
		name, password, ok := strings.Cut(user, ":")
		if !ok {
			password = "pw"
		}
		req.SetBasicAuth(name, password)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/vnd.schemaregistry.v1+json")
	}
	resp, err := cl.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestHTTPListenersSecured: with tls, authentication and authorization
// configured both HTTP listeners serve HTTPS only; the probes stay
// anonymous, /metrics and /debug/pprof need the cluster's DESCRIBE, the
// registry authorizes subjects through their topics, and a client
// certificate (verified by the broker's reloading TLS configuration and
// mapped to User:CN=ops) authenticates like a password.
func TestHTTPListenersSecured(t *testing.T) {
	dir := t.TempDir()
	ca := harness.GenerateCA(t, dir, "test")
	server := ca.IssueServerCert(t, "server")
	opsCert := ca.IssueClientCert(t, "ops")
	cfg := testConfig(t, dir)
	cfg.TLS = config.TLSConfig{CertFile: server.CertFile, KeyFile: server.KeyFile, ClientCAFile: ca.CertFile, ClientAuth: "requested"}
	cfg.Authorization.Enabled = true
	authz := grants{
		"User:ops DESCRIBE CLUSTER kafka-cluster":    true,
		"User:CN=ops DESCRIBE CLUSTER kafka-cluster": true,
		"User:reader DESCRIBE TOPIC orders":          true,
	}
	b := startHTTPListeners(t, cfg, pwAuthn{}, authz)
	cl := &http.Client{Transport: &http.Transport{TLSClientConfig: ca.ClientTLS(t, nil)}}
	withCert := &http.Client{Transport: &http.Transport{TLSClientConfig: ca.ClientTLS(t, &opsCert)}}
	web, reg := "https://"+b.HTTPAddr(), "https://"+b.RegistryAddr()

	for _, c := range []struct {
		name        string
		cl          *http.Client
		method, url string
		user, body  string
		status      int
		contains    string
	}{
		{"liveness probe anonymous", cl, "GET", web + "/healthz", "", "", 200, "ok"},
		{"readiness probe anonymous", cl, "GET", web + "/readyz", "", "", 503, "starting"},
		{"metrics need credentials", cl, "GET", web + "/metrics", "", "", 401, `"error_code":40101`},
		{"metrics need the cluster", cl, "GET", web + "/metrics", "reader", "", 403, `"error_code":40301`},
		{"metrics for an operator", cl, "GET", web + "/metrics", "ops", "", 200, "go_goroutines"},
		{"metrics for a client certificate", withCert, "GET", web + "/metrics", "", "", 200, "go_goroutines"},
		{"pprof needs the cluster", cl, "GET", web + "/debug/pprof/", "reader", "", 403, `"error_code":40301`},
		{"pprof for an operator", cl, "GET", web + "/debug/pprof/", "ops", "", 200, "goroutine"},
		{"registry needs credentials", cl, "GET", reg + "/subjects", "", "", 401, `"error_code":40101`},
		{"registry wrong password", cl, "GET", reg + "/subjects", "admin:nope", "", 401, `"error_code":40101`},
		{"registry register by admin", cl, "POST", reg + "/subjects/orders-value/versions", "admin", `{"schema":"\"string\""}`, 200, `"id":1`},
		{"registry register without rights", cl, "POST", reg + "/subjects/orders-value/versions", "reader", `{"schema":"\"long\""}`, 403, `"error_code":40301`},
		{"registry read with rights", cl, "GET", reg + "/subjects/orders-value/versions", "reader", "", 200, "[1]"},
		{"registry list filtered", cl, "GET", reg + "/subjects", "ops", "", 200, "[]"},
	} {
		status, body := get(t, c.cl, c.method, c.url, c.user, c.body)
		if status != c.status || !strings.Contains(body, c.contains) {
			t.Fatalf("%s: %s %s = %d %s, want %d with %q", c.name, c.method, c.url, status, body, c.status, c.contains)
		}
	}
	// Plain HTTP to either TLS listener gets no answer from a handler.
	for _, addr := range []string{b.HTTPAddr(), b.RegistryAddr()} {
		resp, err := http.Get("http://" + addr + "/healthz")
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 {
				t.Fatalf("plain HTTP to %s answered 200 %s", addr, body)
			}
		}
	}
}

// TestHTTPListenersOpen: without security configured the listeners serve
// plain HTTP and every request, anonymous, as before.
func TestHTTPListenersOpen(t *testing.T) {
	b := startHTTPListeners(t, testConfig(t, t.TempDir()), nil, nil)
	for _, url := range []string{"http://" + b.HTTPAddr() + "/metrics", "http://" + b.RegistryAddr() + "/subjects"} {
		if status, body := get(t, http.DefaultClient, "GET", url, "", ""); status != 200 {
			t.Fatalf("GET %s = %d %s", url, status, body)
		}
	}
}
