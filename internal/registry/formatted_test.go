package registry_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	hamba "github.com/hamba/avro/v2"
	"github.com/twmb/franz-go/pkg/sr"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/descriptorpb"

	"github.com/runnel-dev/runnel/internal/cluster/clustertest"
	"github.com/runnel-dev/runnel/internal/registry"
	"github.com/runnel-dev/runnel/internal/registry/avro"
	"github.com/runnel-dev/runnel/internal/registry/jsonschema"
	"github.com/runnel-dev/runnel/internal/registry/protobuf"
)

// realRegistry is a registry with the real Avro, Protobuf and JSON Schema
// formats, served over HTTP.
func realRegistry(t *testing.T) (*registry.Registry, *httptest.Server) {
	t.Helper()
	r, err := registry.New(registry.Options{Client: clustertest.Start(t).Client(), Prefix: "/test/registry",
		Formats: []registry.Format{avro.New(), protobuf.New(), jsonschema.New()}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close() })
	srv := httptest.NewServer(r.Handler())
	t.Cleanup(srv.Close)
	return r, srv
}

// do sends one request and returns the status and body.
func do(t *testing.T, srv *httptest.Server, method, path string, body any) (int, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, srv.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/vnd.schemaregistry.v1+json")
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}

func mustRegister(t *testing.T, srv *httptest.Server, subject string, body map[string]any) int {
	t.Helper()
	status, b := do(t, srv, "POST", "/subjects/"+subject+"/versions", body)
	var out struct {
		ID int `json:"id"`
	}
	if status != 200 || json.Unmarshal(b, &out) != nil {
		t.Fatalf("register %s = %d %s", subject, status, b)
	}
	return out.ID
}

// schemaField reads the "schema" of a JSON response.
func schemaField(t *testing.T, b []byte) string {
	t.Helper()
	var out struct {
		Schema string `json:"schema"`
	}
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	return out.Schema
}

const (
	moneyAvsc  = `{"type":"record","name":"Money","namespace":"fin","fields":[{"name":"cents","type":"long"}]}`
	orderAvsc  = `{"type":"record","name":"Order","namespace":"shop","fields":[{"name":"price","type":"fin.Money"},{"name":"tax","type":["null","fin.Money"],"default":null}]}`
	moneyProto = `syntax = "proto3";
package fin;
message Money { int64 cents = 1; }
`
	orderProto = `syntax = "proto3";
package shop;
import "fin/money.proto";
message Order { fin.Money price = 1; string item = 2; }
`
	jsonSchema = `{"type":"object","properties":{"a":{"type":"string"}}}`
)

// TestFormatParam covers ?format= on every schema-returning GET, for each
// type: the formats a type knows, and the ones it ignores as Confluent
// does.
func TestFormatParam(t *testing.T) {
	_, srv := realRegistry(t)
	mustRegister(t, srv, "money", map[string]any{"schema": moneyAvsc})
	orderID := mustRegister(t, srv, "order", map[string]any{"schema": orderAvsc,
		"references": []map[string]any{{"name": "fin.Money", "subject": "money", "version": 1}}})
	mustRegister(t, srv, "pmoney", map[string]any{"schema": moneyProto, "schemaType": "PROTOBUF"})
	pOrderID := mustRegister(t, srv, "porder", map[string]any{"schema": orderProto, "schemaType": "PROTOBUF",
		"references": []map[string]any{{"name": "fin/money.proto", "subject": "pmoney", "version": 1}}})
	jsonID := mustRegister(t, srv, "j", map[string]any{"schema": jsonSchema, "schemaType": "JSON"})

	resolvedChecks := func(t *testing.T, text string) {
		t.Helper()
		s, err := hamba.ParseWithCache(text, "", &hamba.SchemaCache{})
		if err != nil {
			t.Fatalf("resolved schema does not parse on its own: %v\n%s", err, text)
		}
		if s.(*hamba.RecordSchema).Fields()[0].Type().(*hamba.RecordSchema).FullName() != "fin.Money" {
			t.Fatalf("resolved schema: %s", text)
		}
	}
	serializedChecks := func(t *testing.T, text string) {
		t.Helper()
		b, err := base64.StdEncoding.DecodeString(text)
		if err != nil {
			t.Fatalf("not base64: %v: %q", err, text)
		}
		var fd descriptorpb.FileDescriptorProto
		if err := proto.Unmarshal(b, &fd); err != nil {
			t.Fatalf("not a FileDescriptorProto: %v", err)
		}
		if fd.GetPackage() != "shop" || len(fd.GetMessageType()) != 1 || fd.GetMessageType()[0].GetName() != "Order" ||
			len(fd.GetDependency()) != 1 || fd.GetDependency()[0] != "fin/money.proto" {
			t.Fatalf("descriptor: %v", &fd)
		}
	}
	stored := func(want string) func(*testing.T, string) {
		return func(t *testing.T, text string) {
			t.Helper()
			if text != want {
				t.Fatalf("schema %q, want the stored text %q", text, want)
			}
		}
	}
	storedProto := func(t *testing.T, text string) {
		t.Helper()
		if !strings.Contains(text, "message Order") || strings.Contains(text, "=\n") {
			t.Fatalf("want .proto text, got %q", text)
		}
	}
	id := func(n int) string { return "/schemas/ids/" + strconv.Itoa(n) }
	tests := []struct {
		name, path string
		raw        bool // the path returns the schema text itself
		check      func(*testing.T, string)
	}{
		{"avro resolved by id", id(orderID) + "?format=resolved", false, resolvedChecks},
		{"avro resolved by id, text", id(orderID) + "/schema?format=resolved", true, resolvedChecks},
		{"avro resolved by version", "/subjects/order/versions/1?format=resolved", false, resolvedChecks},
		{"avro resolved by version, text", "/subjects/order/versions/latest/schema?format=resolved", true, resolvedChecks},
		{"avro format name in capitals", id(orderID) + "?format=RESOLVED", false, resolvedChecks},
		{"avro default", id(orderID) + "?format=default", false, stored(orderAvsc)},
		{"avro serialized is not an Avro format", id(orderID) + "?format=serialized", false, stored(orderAvsc)},
		{"avro unknown format", id(orderID) + "/schema?format=fancy", true, stored(orderAvsc)},
		{"avro no format", id(orderID), false, stored(orderAvsc)},
		{"protobuf serialized by id", id(pOrderID) + "?format=serialized", false, serializedChecks},
		{"protobuf serialized by id, text", id(pOrderID) + "/schema?format=serialized", true, serializedChecks},
		{"protobuf serialized by version", "/subjects/porder/versions/1?format=serialized", false, serializedChecks},
		{"protobuf serialized by version, text", "/subjects/porder/versions/1/schema?format=serialized", true, serializedChecks},
		{"protobuf resolved is not a Protobuf format", id(pOrderID) + "?format=resolved", false, storedProto},
		{"protobuf ignore_extensions served as default", id(pOrderID) + "?format=ignore_extensions", false, storedProto},
		{"protobuf unknown format", "/subjects/porder/versions/1?format=x", false, storedProto},
		{"json serialized ignored", id(jsonID) + "?format=serialized", false, stored(jsonSchema)},
		{"json resolved ignored", "/subjects/j/versions/1/schema?format=resolved", true, stored(jsonSchema)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, b := do(t, srv, "GET", tt.path, nil)
			if status != 200 {
				t.Fatalf("GET %s = %d %s", tt.path, status, b)
			}
			text := string(b)
			if !tt.raw {
				text = schemaField(t, b)
			}
			tt.check(t, text)
		})
	}

	t.Run("errors are those of the read", func(t *testing.T) {
		for path, code := range map[string]int{
			"/schemas/ids/99?format=serialized":                 40403,
			"/subjects/nope/versions/1?format=resolved":         40401,
			"/subjects/order/versions/9/schema?format=resolved": 40402,
		} {
			status, b := do(t, srv, "GET", path, nil)
			var e struct {
				Code int `json:"error_code"`
			}
			if status != 404 || json.Unmarshal(b, &e) != nil || e.Code != code {
				t.Errorf("GET %s = %d %s, want 404 %d", path, status, b, code)
			}
		}
	})

	t.Run("serialized descriptor registers as the same schema", func(t *testing.T) {
		_, b := do(t, srv, "GET", id(pOrderID)+"?format=serialized", nil)
		again := mustRegister(t, srv, "porder-copy", map[string]any{"schema": schemaField(t, b), "schemaType": "PROTOBUF",
			"references": []map[string]any{{"name": "fin/money.proto", "subject": "pmoney", "version": 1}}})
		if again != pOrderID {
			t.Fatalf("the serialized descriptor registered as id %d, want %d", again, pOrderID)
		}
	})

	t.Run("franz-go Format param", func(t *testing.T) {
		cl, err := sr.NewClient(sr.URLs(srv.URL))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		s, err := cl.SchemaByID(sr.WithParams(ctx, sr.Format("serialized")), pOrderID)
		if err != nil {
			t.Fatal(err)
		}
		serializedChecks(t, s.Schema)
		text, err := cl.SchemaTextByID(sr.WithParams(ctx, sr.Format("resolved")), orderID)
		if err != nil {
			t.Fatal(err)
		}
		resolvedChecks(t, text)
		ss, err := cl.SchemaByVersion(sr.WithParams(ctx, sr.Format("resolved")), "order", 1)
		if err != nil {
			t.Fatal(err)
		}
		resolvedChecks(t, ss.Schema.Schema)
	})
}
