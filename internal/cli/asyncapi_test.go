package cli

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestAsyncAPICommands: export and import talk to the HTTP API with the
// client's credentials, import is a dry run unless --apply, and a
// refused apply prints the plan and fails with the broker's reason.
func TestAsyncAPICommands(t *testing.T) {
	var got struct {
		path, user, pass, body, contentType string
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/asyncapi", func(w http.ResponseWriter, r *http.Request) {
		got.path = r.URL.String()
		got.user, got.pass, _ = r.BasicAuth()
		if r.URL.Query().Get("topics") == "nope" {
			w.WriteHeader(404)
			io.WriteString(w, `{"error_code":40401,"message":"governance: not found: topic \"nope\""}`)
			return
		}
		io.WriteString(w, "asyncapi: 3.0.0\n")
	})
	mux.HandleFunc("POST /api/v1/asyncapi/import", func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got.path, got.body, got.contentType = r.URL.String(), string(b), r.Header.Get("Content-Type")
		got.user, got.pass, _ = r.BasicAuth()
		switch {
		case strings.Contains(got.body, "bad"):
			w.WriteHeader(400)
			io.WriteString(w, `{"error_code":40001,"message":"asyncapi \"2.6.0\": Runnel imports AsyncAPI 3.x documents"}`)
		case r.URL.Query().Get("dryRun") == "true":
			io.WriteString(w, `{"dryRun":true,"topics":[{"name":"orders","action":"create","partitions":3,"configs":{"retention.ms":"1000"}}],`+
				`"subjects":[{"subject":"orders-value","topic":"orders","type":"AVRO","action":"register"}],"products":[{"topic":"orders","action":"create"}]}`)
		default:
			w.WriteHeader(409)
			io.WriteString(w, `{"dryRun":false,"topics":[{"name":"orders","action":"conflict","partitions":6,"configs":{},"reason":"partitions: 6 on the cluster, 3 in the document"}],`+
				`"subjects":[],"products":[],"error_code":40901,"message":"nothing was applied: topic orders: partitions differ"}`)
		}
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	dir := t.TempDir()
	doc := filepath.Join(dir, "doc.yaml")
	os.WriteFile(doc, []byte("asyncapi: 3.0.0\n"), 0o644)
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("asyncapi: 2.6.0 # bad\n"), 0o644)
	t.Setenv("RUNNEL_SASL_PASSWORD", "s3cret")
	auth := []string{"--http", srv.URL, "--sasl-mechanism", "SCRAM-SHA-512", "--sasl-user", "admin"}

	out, err := runCLI(t, "", append([]string{"asyncapi", "export", "--topics", "orders,payments"}, auth...)...)
	if err != nil || out != "asyncapi: 3.0.0\n" {
		t.Fatalf("export: %q %v", out, err)
	}
	if got.path != "/api/v1/asyncapi?format=yaml&topics=orders%2Cpayments" || got.user != "admin" || got.pass != "s3cret" {
		t.Errorf("export asked %s as %s:%s", got.path, got.user, got.pass)
	}
	file := filepath.Join(dir, "out.json")
	if _, err := runCLI(t, "", "asyncapi", "export", "--format", "json", "-o", file, "--http", srv.URL); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(file); string(b) != "asyncapi: 3.0.0\n" || got.path != "/api/v1/asyncapi?format=json" || got.user != "" {
		t.Errorf("export -o wrote %q after asking %s as %q", b, got.path, got.user)
	}
	if _, err := runCLI(t, "", "asyncapi", "export", "--topics", "nope", "--http", srv.URL); err == nil || !strings.Contains(err.Error(), `topic "nope" (HTTP 404)`) {
		t.Errorf("export of an unknown topic: %v", err)
	}
	if _, err := runCLI(t, "", "asyncapi", "export", "--format", "xml", "--http", srv.URL); err == nil || !strings.Contains(err.Error(), "want yaml or json") {
		t.Errorf("export --format xml: %v", err)
	}

	out, err = runCLI(t, "", append([]string{"asyncapi", "import", doc}, auth...)...)
	if err != nil {
		t.Fatal(err)
	}
	if got.path != "/api/v1/asyncapi/import?dryRun=true" || got.body != "asyncapi: 3.0.0\n" || got.contentType != "application/yaml" || got.user != "admin" {
		t.Errorf("import sent %s %q (%s) as %s", got.path, got.body, got.contentType, got.user)
	}
	for _, w := range []string{"Dry run: nothing was changed", "orders", "create", "retention.ms=1000", "orders-value", "AVRO", "register"} {
		if !strings.Contains(out, w) {
			t.Errorf("dry run output lacks %q:\n%s", w, out)
		}
	}
	out, err = runCLI(t, "asyncapi: 3.0.0\n", append([]string{"asyncapi", "import", "-", "--apply"}, auth...)...)
	if got.path != "/api/v1/asyncapi/import?dryRun=false" {
		t.Errorf("apply asked %s", got.path)
	}
	if err == nil || !strings.Contains(err.Error(), "nothing was applied") || !strings.Contains(out, "partitions: 6 on the cluster, 3 in the document") {
		t.Errorf("refused apply: %v\n%s", err, out)
	}
	if _, err := runCLI(t, "", "asyncapi", "import", bad, "--http", srv.URL); err == nil || !strings.Contains(err.Error(), "Runnel imports AsyncAPI 3.x documents (HTTP 400)") {
		t.Errorf("bad document: %v", err)
	}
	if _, err := runCLI(t, "", "asyncapi", "import", filepath.Join(dir, "missing.yaml"), "--http", srv.URL); err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Errorf("missing file: %v", err)
	}
}
