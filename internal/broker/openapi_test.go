package broker

import (
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// apiRoute is one operation of the /api/v1 API: a method and a path
// pattern whose {name} segments are wildcards.
type apiRoute struct{ method, path string }

func (r apiRoute) String() string { return r.method + " " + r.path }

// matches reports whether two route patterns name the same operation:
// the same method and segments equal or a wildcard on either side.
func (r apiRoute) matches(o apiRoute) bool {
	a, b := strings.Split(r.path, "/"), strings.Split(o.path, "/")
	if r.method != o.method || len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] && !strings.HasPrefix(a[i], "{") && !strings.HasPrefix(b[i], "{") {
			return false
		}
	}
	return true
}

// documentedRoutes reads api/openapi.yaml's operations.
func documentedRoutes(t *testing.T) []apiRoute {
	t.Helper()
	raw, err := os.ReadFile("../../api/openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		OpenAPI string                    `yaml:"openapi"`
		Paths   map[string]map[string]any `yaml:"paths"`
	}
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("api/openapi.yaml: %v", err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.1") {
		t.Fatalf("api/openapi.yaml is OpenAPI %q, want 3.1", doc.OpenAPI)
	}
	var out []apiRoute
	for path, item := range doc.Paths {
		for m := range item {
			switch m {
			case "get", "put", "post", "delete", "patch", "head":
				out = append(out, apiRoute{strings.ToUpper(m), path})
			}
		}
	}
	return out
}

// servedRoutes finds the API routes the code registers: the
// "METHOD /api/v1/..." patterns in the non-test Go files under internal/.
func servedRoutes(t *testing.T) []apiRoute {
	t.Helper()
	pat := regexp.MustCompile(`"(GET|POST|PUT|DELETE|PATCH|HEAD) (/api/v1/[^" ]*)"`)
	var out []apiRoute
	err := filepath.WalkDir("..", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return err
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range pat.FindAllStringSubmatch(string(src), -1) {
			r := apiRoute{m[1], m[2]}
			if !slices.Contains(out, r) {
				out = append(out, r)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(out) == 0 {
		t.Fatal("found no API routes in the code")
	}
	return out
}

// TestOpenAPIDescribesTheAPI: every /api/v1 route the code registers is
// in api/openapi.yaml, and every documented operation is served by a
// broker (answered by its handler, not by the mux or the portal's
// "no API" fallback).
func TestOpenAPIDescribesTheAPI(t *testing.T) {
	documented, served := documentedRoutes(t), servedRoutes(t)
	for _, s := range served {
		if !slices.ContainsFunc(documented, s.matches) {
			t.Errorf("%s is served but not in api/openapi.yaml", s)
		}
	}
	for _, d := range documented {
		if !slices.ContainsFunc(served, d.matches) {
			t.Errorf("%s is in api/openapi.yaml but registered nowhere", d)
		}
	}

	cfg := testConfig(t, t.TempDir())
	b := startBroker(t, &cfg)
	for _, d := range documented {
		path := regexp.MustCompile(`\{[^}]+\}`).ReplaceAllString(d.path, "probe")
		var body io.Reader
		req, err := http.NewRequest(d.method, "http://"+b.HTTPAddr()+path, body)
		if err != nil {
			t.Fatal(err)
		}
		if d.method == "POST" || d.method == "PUT" || d.method == "PATCH" {
			req.Body = io.NopCloser(strings.NewReader("{}"))
			req.Header.Set("Content-Type", "application/json")
		}
		req.Header.Set("X-Runnel-CSRF", "1")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusMethodNotAllowed || strings.Contains(string(got), "no API at") ||
			strings.Contains(string(got), "404 page not found") {
			t.Errorf("%s (as %s %s): %s %s: no handler serves it", d, d.method, path, resp.Status, got)
		}
	}
}
