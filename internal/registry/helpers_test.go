package registry

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/runnel-dev/runnel/internal/cluster/clustertest"
	clientv3 "go.etcd.io/etcd/client/v3"
)

func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// startEtcd runs an embedded etcd member for one test.
func startEtcd(t *testing.T) *clientv3.Client { return clustertest.Start(t).Client() }

func newRegistry(t *testing.T, cli *clientv3.Client) *Registry {
	t.Helper()
	r, err := New(Options{Client: cli, Prefix: "/test/registry", Formats: []Format{fakeFormat{"AVRO"}, fakeFormat{"JSON"}}})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = r.Close() })
	return r
}

// call sends one request to h and returns the status and body.
func call(t *testing.T, h http.Handler, method, path, body string, hdr ...string) (int, []byte, http.Header) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = bytes.NewBufferString(body)
	}
	req := httptest.NewRequest(method, path, rd)
	if body != "" {
		req.Header.Set("Content-Type", mediaV1)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	return w.Code, w.Body.Bytes(), w.Header()
}

// schemaJSON builds a register body for a fake schema.
func schemaJSON(t *testing.T, schema string, extra map[string]any) string {
	t.Helper()
	m := map[string]any{"schema": schema}
	for k, v := range extra {
		m[k] = v
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func errorCode(body []byte) int {
	var e errorBody
	_ = json.Unmarshal(body, &e)
	return e.Code
}
