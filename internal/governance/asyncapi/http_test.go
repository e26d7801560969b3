package asyncapi

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
	"gopkg.in/yaml.v3"

	"github.com/runnel-dev/runnel/internal/auth"
	"github.com/runnel-dev/runnel/internal/governance"
)

// onlyAdmin allows User:admin everything and others nothing.
type onlyAdmin struct{}

func (onlyAdmin) Authorize(p auth.Principal, _ string, _ kmsg.ACLOperation, _ kmsg.ACLResourceType, _ string) bool {
	return p.Name == "admin"
}

// serve runs one request through the handlers as the broker mounts them,
// as user ("" for a request no guard authenticated).
func serve(t *testing.T, s *Service, user, method, target, contentType, body string) (int, string, http.Header) {
	t.Helper()
	mux := http.NewServeMux()
	mux.Handle("GET /api/v1/asyncapi", governance.Handler(onlyAdmin{}, s.HandleExport))
	mux.Handle("POST /api/v1/asyncapi/import", governance.Handler(onlyAdmin{}, s.HandleImport))
	req := httptest.NewRequest(method, target, strings.NewReader(body))
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if user != "" {
		req = req.WithContext(auth.WithRequestPrincipal(req.Context(), auth.User(user), "127.0.0.1"))
	}
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, req)
	b, _ := io.ReadAll(rec.Result().Body)
	return rec.Code, string(b), rec.Result().Header
}

// TestHTTPPermissions: every authenticated caller may export; only an
// administrator may import, dry run or not; nobody unauthenticated.
func TestHTTPPermissions(t *testing.T) {
	src := newCluster().service(t)
	doc := exportDoc(t, src, "yaml")
	dst := emptyCluster()
	s := dst.service(t)
	for _, c := range []struct {
		name, user, method, target string
		status                     int
		contains                   string
	}{
		{"export needs a caller", "", "GET", "/api/v1/asyncapi", 401, `"error_code":40101`},
		{"anyone may export", "alice", "GET", "/api/v1/asyncapi", 200, `"asyncapi": "3.0.0"`},
		{"import needs a caller", "", "POST", "/api/v1/asyncapi/import", 401, `"error_code":40101`},
		{"no dry run for a non-admin", "alice", "POST", "/api/v1/asyncapi/import", 403, "needs ALTER on the cluster, which User:alice does not have"},
		{"no apply for a non-admin", "alice", "POST", "/api/v1/asyncapi/import?dryRun=false", 403, `"error_code":40301`},
		{"admin dry run", "admin", "POST", "/api/v1/asyncapi/import", 200, `"dryRun":true`},
	} {
		status, body, _ := serve(t, s, c.user, c.method, c.target, "application/yaml", string(doc))
		if status != c.status || !strings.Contains(body, c.contains) {
			t.Errorf("%s: %s %s as %q = %d %s, want %d with %q", c.name, c.method, c.target, c.user, status, body, c.status, c.contains)
		}
	}
	if len(dst.topics.created) != 0 {
		t.Fatalf("refused or dry-run imports created %v", dst.topics.created)
	}
	status, body, _ := serve(t, s, "admin", "POST", "/api/v1/asyncapi/import?dryRun=false", "application/yaml", string(doc))
	if status != 200 || len(dst.topics.created) != 4 {
		t.Fatalf("admin apply = %d %s; created %v", status, body, dst.topics.created)
	}
	var res Result
	if err := json.Unmarshal([]byte(body), &res); err != nil || res.DryRun || !res.Topics[0].Applied {
		t.Fatalf("apply answer %s: %v", body, err)
	}
}

func TestHTTPExportFormats(t *testing.T) {
	s := newCluster().service(t)
	for _, c := range []struct {
		target, accept, ct string
	}{
		{"/api/v1/asyncapi", "", "application/json"},
		{"/api/v1/asyncapi?format=yaml", "application/json", "application/yaml"},
		{"/api/v1/asyncapi?format=json", "application/yaml", "application/json"},
		{"/api/v1/asyncapi", "application/yaml", "application/yaml"},
		{"/api/v1/asyncapi", "text/html, application/x-yaml;q=0.9", "application/yaml"},
		{"/api/v1/asyncapi?topics=orders,%20clicks", "", "application/json"},
	} {
		req := httptest.NewRequest("GET", c.target, nil)
		if c.accept != "" {
			req.Header.Set("Accept", c.accept)
		}
		req = req.WithContext(auth.WithRequestPrincipal(req.Context(), auth.User("alice"), "127.0.0.1"))
		rec := httptest.NewRecorder()
		governance.Handler(onlyAdmin{}, s.HandleExport).ServeHTTP(rec, req)
		if rec.Code != 200 || rec.Header().Get("Content-Type") != c.ct {
			t.Errorf("%s (Accept %q) = %d %s, want %s", c.target, c.accept, rec.Code, rec.Header().Get("Content-Type"), c.ct)
			continue
		}
		var doc map[string]any
		if err := yaml.Unmarshal(rec.Body.Bytes(), &doc); err != nil || doc["asyncapi"] != "3.0.0" {
			t.Errorf("%s: %v %v", c.target, err, doc["asyncapi"])
		}
		if strings.Contains(c.target, "topics=") && len(doc["channels"].(map[string]any)) != 2 {
			t.Errorf("%s: channels %v", c.target, doc["channels"])
		}
	}
	for _, c := range []struct {
		target   string
		status   int
		contains string
	}{
		{"/api/v1/asyncapi?format=xml", 400, `format \"xml\": want yaml or json`},
		{"/api/v1/asyncapi?topics=nope", 404, "nope"},
	} {
		status, body, _ := serve(t, s, "alice", "GET", c.target, "", "")
		if status != c.status || !strings.Contains(body, c.contains) {
			t.Errorf("%s = %d %s, want %d with %q", c.target, status, body, c.status, c.contains)
		}
	}
}

// TestHTTPImportErrors: a bad request gets a clear 4xx; a refused apply
// answers the plan beside its error.
func TestHTTPImportErrors(t *testing.T) {
	cl := emptyCluster()
	cl.topics.add("orders", 6, nil)
	s := cl.service(t)
	for _, c := range []struct {
		name, target, ct, body string
		status                 int
		contains               string
	}{
		{"bad dryRun", "/api/v1/asyncapi/import?dryRun=maybe", "application/yaml", planDoc, 400, `dryRun \"maybe\": want true or false`},
		{"bad content type", "/api/v1/asyncapi/import", "application/xml", planDoc, 415, "send the document as application/yaml or application/json"},
		{"not AsyncAPI", "/api/v1/asyncapi/import", "application/json", `{"openapi":"3.1.0"}`, 400, "it has no asyncapi version field"},
		{"conflict", "/api/v1/asyncapi/import?dryRun=false", "application/yaml", planDoc, 409, `"action":"conflict"`},
		{"conflict says nothing applied", "/api/v1/asyncapi/import?dryRun=false", "", planDoc, 409, `"message":"nothing was applied: topic orders`},
	} {
		status, body, _ := serve(t, s, "admin", "POST", c.target, c.ct, c.body)
		if status != c.status || !strings.Contains(body, c.contains) {
			t.Errorf("%s: = %d %s, want %d with %q", c.name, status, body, c.status, c.contains)
		}
	}
	if len(cl.topics.created) != 0 {
		t.Fatalf("created %v", cl.topics.created)
	}
}
