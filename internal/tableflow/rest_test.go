package tableflow

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/catalog"
	"github.com/apache/iceberg-go/catalog/rest"
	"github.com/apache/iceberg-go/table"
)

// restEnv is a catalog with two tables ("runnel.orders" with rows,
// "runnel.secret") served like the broker serves it, under /iceberg.
type restEnv struct {
	*catalogEnv
	cat    *Catalog
	server *httptest.Server
	uri    string // the catalog URI engines are given
}

func newRESTEnv(t *testing.T, opts RESTOptions) *restEnv {
	t.Helper()
	env := newCatalogEnv(t)
	cat := env.open(t)
	ctx := testCtx(t)
	tbl, err := cat.CreateTable(ctx, testSpec("runnel", "orders", 1))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := appendRows(t, tbl, []int64{0, 1, 2}); err != nil {
		t.Fatal(err)
	}
	if _, err := cat.CreateTable(ctx, testSpec("runnel", "secret", 2)); err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/iceberg/", http.StripPrefix("/iceberg", cat.Handler(opts)))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return &restEnv{catalogEnv: env, cat: cat, server: srv, uri: srv.URL + "/iceberg"}
}

func (e *restEnv) client(t *testing.T) *rest.Catalog {
	t.Helper()
	c, err := rest.NewCatalog(testCtx(t), "runnel", e.uri)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// do sends a raw request and returns the status, body and content type.
func (e *restEnv) do(t *testing.T, method, path, body string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, e.uri+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	rsp, err := e.server.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer rsp.Body.Close()
	b, err := io.ReadAll(rsp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return rsp.StatusCode, b
}

// wantError checks an ErrorModel body as the REST spec has it: exactly
// {"error": {"message", "type", "code"}}, code equal to the status.
func wantError(t *testing.T, status int, body []byte, wantStatus int, wantType string) string {
	t.Helper()
	if status != wantStatus {
		t.Fatalf("status %d, want %d (body %s)", status, wantStatus, body)
	}
	var m struct {
		Error struct {
			Message string `json:"message"`
			Type    string `json:"type"`
			Code    int    `json:"code"`
		} `json:"error"`
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("error body %s: %v", body, err)
	}
	if m.Error.Type != wantType || m.Error.Code != wantStatus || m.Error.Message == "" {
		t.Fatalf("error body %s, want type %s code %d", body, wantType, wantStatus)
	}
	return m.Error.Message
}

func TestRESTCatalogThirdPartyClientReads(t *testing.T) {
	env := newRESTEnv(t, RESTOptions{})
	cl := env.client(t)
	ctx := testCtx(t)

	nss, err := cl.ListNamespaces(ctx, nil)
	if err != nil || len(nss) != 1 || !slices.Equal(nss[0], []string{"runnel"}) {
		t.Fatalf("ListNamespaces = %q, %v", nss, err)
	}
	if children, err := cl.ListNamespaces(ctx, table.Identifier{"runnel"}); err != nil || len(children) != 0 {
		t.Fatalf("ListNamespaces(parent runnel) = %q, %v", children, err)
	}
	if _, err := cl.ListNamespaces(ctx, table.Identifier{"nope"}); !errors.Is(err, catalog.ErrNoSuchNamespace) {
		t.Fatalf("ListNamespaces(parent nope) = %v, want ErrNoSuchNamespace", err)
	}
	props, err := cl.LoadNamespaceProperties(ctx, table.Identifier{"runnel"})
	if err != nil {
		t.Fatalf("LoadNamespaceProperties = %v, %v", props, err)
	}
	var names []string
	for id, err := range cl.ListTables(ctx, table.Identifier{"runnel"}) {
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, strings.Join(id, "."))
	}
	if !slices.Equal(names, []string{"runnel.orders", "runnel.secret"}) {
		t.Fatalf("ListTables = %q", names)
	}

	tbl, err := cl.LoadTable(ctx, table.Identifier{"runnel", "orders"})
	if err != nil {
		t.Fatal(err)
	}
	entry, err := env.cat.Table(ctx, "runnel", "orders")
	if err != nil {
		t.Fatal(err)
	}
	if tbl.MetadataLocation() != entry.MetadataLocation {
		t.Fatalf("metadata location %q, want %q", tbl.MetadataLocation(), entry.MetadataLocation)
	}
	// The client reads the files itself, from the URLs in the metadata.
	if got := scanValues(t, tbl); !slices.Equal(got, []string{"v0", "v1", "v2"}) {
		t.Fatalf("scan through the REST catalog = %q", got)
	}
	if ok, err := cl.CheckTableExists(ctx, table.Identifier{"runnel", "orders"}); err != nil || !ok {
		t.Fatalf("CheckTableExists = %v, %v", ok, err)
	}
	if ok, err := cl.CheckNamespaceExists(ctx, table.Identifier{"nope"}); err != nil || ok {
		t.Fatalf("CheckNamespaceExists(nope) = %v, %v", ok, err)
	}

	// 404s with the spec's types.
	if _, err := cl.LoadTable(ctx, table.Identifier{"runnel", "missing"}); !errors.Is(err, catalog.ErrNoSuchTable) {
		t.Fatalf("LoadTable(missing) = %v", err)
	}
	for _, err := range cl.ListTables(ctx, table.Identifier{"nope"}) {
		if !errors.Is(err, catalog.ErrNoSuchNamespace) {
			t.Fatalf("ListTables(nope) = %v", err)
		}
	}
	if _, err := cl.LoadNamespaceProperties(ctx, table.Identifier{"nope"}); !errors.Is(err, catalog.ErrNoSuchNamespace) {
		t.Fatalf("LoadNamespaceProperties(nope) = %v", err)
	}
}

func TestRESTCatalogRefusesWrites(t *testing.T) {
	env := newRESTEnv(t, RESTOptions{})
	cl := env.client(t)
	ctx := testCtx(t)
	before, err := env.cat.Table(ctx, "runnel", "orders")
	if err != nil {
		t.Fatal(err)
	}

	_, err = cl.CreateTable(ctx, table.Identifier{"runnel", "new"}, testSchema())
	if !errors.Is(err, rest.ErrForbidden) || !strings.Contains(err.Error(), "source of truth") {
		t.Fatalf("CreateTable = %v, want 403 naming the source of truth", err)
	}
	tbl, err := cl.LoadTable(ctx, table.Identifier{"runnel", "orders"})
	if err != nil {
		t.Fatal(err)
	}
	txn := tbl.NewTransaction()
	if err := txn.SetProperties(iceberg.Properties{"owner": "spark"}); err != nil {
		t.Fatal(err)
	}
	_, err = txn.Commit(ctx)
	if !errors.Is(err, rest.ErrForbidden) || !strings.Contains(err.Error(), `topic "orders"`) {
		t.Fatalf("commit = %v, want 403 naming topic orders", err)
	}
	if err := cl.DropTable(ctx, table.Identifier{"runnel", "orders"}); !errors.Is(err, rest.ErrForbidden) {
		t.Fatalf("DropTable = %v", err)
	}
	if err := cl.CreateNamespace(ctx, table.Identifier{"x"}, nil); !errors.Is(err, rest.ErrForbidden) {
		t.Fatalf("CreateNamespace = %v", err)
	}
	after, err := env.cat.Table(ctx, "runnel", "orders")
	if err != nil || after != before {
		t.Fatalf("table changed by a refused write: %+v -> %+v, %v", before, after, err)
	}
	if _, err := env.cat.Table(ctx, "runnel", "new"); !errors.Is(err, ErrNoSuchTable) {
		t.Fatalf("refused create made a table: %v", err)
	}

	// Every write method on every path, with the spec's body.
	for _, w := range []struct{ method, path string }{
		{"POST", "/v1/namespaces"},
		{"POST", "/v1/namespaces/runnel/tables"},
		{"POST", "/v1/namespaces/runnel/tables/orders"},
		{"DELETE", "/v1/namespaces/runnel/tables/orders"},
		{"DELETE", "/v1/namespaces/runnel"},
		{"POST", "/v1/namespaces/runnel/properties"},
		{"POST", "/v1/namespaces/runnel/register"},
		{"POST", "/v1/tables/rename"},
		{"POST", "/v1/transactions/commit"},
		{"PUT", "/v1/namespaces/runnel/tables/orders"},
	} {
		status, body := env.do(t, w.method, w.path, "{}")
		msg := wantError(t, status, body, http.StatusForbidden, "ForbiddenException")
		if !strings.Contains(msg, "source of truth") {
			t.Errorf("%s %s: message %q does not name the source of truth", w.method, w.path, msg)
		}
	}
}

func TestRESTCatalogHTTP(t *testing.T) {
	env := newRESTEnv(t, RESTOptions{IOProperties: map[string]string{"s3.endpoint": "http://127.0.0.1:9000", "s3.region": "us-east-1"}})

	status, body := env.do(t, "GET", "/v1/config", "")
	var cfg struct {
		Defaults  map[string]string `json:"defaults"`
		Overrides map[string]string `json:"overrides"`
		Endpoints []string          `json:"endpoints"`
	}
	if status != 200 || json.Unmarshal(body, &cfg) != nil || cfg.Defaults == nil || cfg.Overrides["s3.endpoint"] != "http://127.0.0.1:9000" ||
		!slices.Contains(cfg.Endpoints, "HEAD /v1/{prefix}/namespaces/{namespace}/tables/{table}") {
		t.Fatalf("config = %d %s", status, body)
	}
	status, body = env.do(t, "GET", "/v1/namespaces/runnel/tables/orders", "")
	var lt map[string]json.RawMessage
	if status != 200 || json.Unmarshal(body, &lt) != nil {
		t.Fatalf("load table = %d %s", status, body)
	}
	var loc string
	var conf map[string]string
	_ = json.Unmarshal(lt["metadata-location"], &loc)
	_ = json.Unmarshal(lt["config"], &conf)
	if !strings.HasPrefix(loc, env.base+"/warehouse/runnel/orders/metadata/") || conf["s3.region"] != "us-east-1" {
		t.Fatalf("load table: metadata-location %q, config %v", loc, conf)
	}
	if _, err := table.ParseMetadataBytes(lt["metadata"]); err != nil {
		t.Fatalf("metadata: %v", err)
	}

	for _, tc := range []struct {
		method, path string
		status       int
		typ          string // "" = no body
	}{
		{"HEAD", "/v1/namespaces/runnel", 204, ""},
		{"HEAD", "/v1/namespaces/nope", 404, ""},
		{"HEAD", "/v1/namespaces/runnel/tables/orders", 204, ""},
		{"HEAD", "/v1/namespaces/runnel/tables/nope", 404, ""},
		{"HEAD", "/v1/namespaces/nope/tables/orders", 404, ""},
		{"GET", "/v1/namespaces/nope", 404, "NoSuchNamespaceException"},
		{"GET", "/v1/namespaces/nope/tables", 404, "NoSuchNamespaceException"},
		{"GET", "/v1/namespaces/nope/tables/orders", 404, "NoSuchNamespaceException"},
		{"GET", "/v1/namespaces/runnel/tables/nope", 404, "NoSuchTableException"},
		{"GET", "/v1/namespaces?parent=nope", 404, "NoSuchNamespaceException"},
		{"GET", "/v1/namespaces/runnel%1Fsub", 404, "NoSuchNamespaceException"},
		{"GET", "/v1/namespaces/runnel/tables/orders?snapshots=bad", 400, "BadRequestException"},
	} {
		status, body := env.do(t, tc.method, tc.path, "")
		if tc.typ == "" {
			if status != tc.status || len(body) != 0 {
				t.Errorf("%s %s = %d with %d bytes, want %d without a body", tc.method, tc.path, status, len(body), tc.status)
			}
			continue
		}
		wantError(t, status, body, tc.status, tc.typ)
	}
	if status, body := env.do(t, "POST", "/v1/namespaces/runnel/tables/orders/metrics", `{"report-type":"scan-report"}`); status != 204 {
		t.Fatalf("metrics report = %d %s", status, body)
	}
}

func TestRESTCatalogAuthorization(t *testing.T) {
	env := newRESTEnv(t, RESTOptions{Authorize: func(r *http.Request, topic string, write bool) bool {
		return !write && topic != "secret"
	}})
	cl := env.client(t)
	ctx := testCtx(t)
	var names []string
	for id, err := range cl.ListTables(ctx, table.Identifier{"runnel"}) {
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, strings.Join(id, "."))
	}
	if !slices.Equal(names, []string{"runnel.orders"}) {
		t.Fatalf("ListTables = %q, want the allowed table only", names)
	}
	if _, err := cl.LoadTable(ctx, table.Identifier{"runnel", "orders"}); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.LoadTable(ctx, table.Identifier{"runnel", "secret"}); !errors.Is(err, rest.ErrForbidden) {
		t.Fatalf("LoadTable(secret) = %v, want 403", err)
	}
	status, body := env.do(t, "GET", "/v1/namespaces/runnel/tables/secret", "")
	wantError(t, status, body, http.StatusForbidden, "ForbiddenException")
	// A refused write does not reveal the topic of a table one may not read.
	status, body = env.do(t, "POST", "/v1/namespaces/runnel/tables/secret", "{}")
	if msg := wantError(t, status, body, http.StatusForbidden, "ForbiddenException"); strings.Contains(msg, `"secret"`) {
		t.Fatalf("message %q names a topic the principal may not read", msg)
	}
}
