package jsonschema

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/runnel-dev/runnel/internal/registry"
)

const orderSchema = `{
	"type": "object",
	"properties": {
		"id": {"type": "integer", "minimum": 1},
		"price": {"type": "number"},
		"email": {"type": "string", "maxLength": 20},
		"tags": {"type": "array", "items": {"type": "string"}},
		"paid": {"type": "boolean"},
		"note": {"type": ["string", "null"]}
	},
	"required": ["id"],
	"additionalProperties": false
}`

func TestDecodeValid(t *testing.T) {
	s := mustParse(t, orderSchema)
	got, err := s.Decode([]byte(`{"id": 7, "price": 2.5, "email": "a@b.c", "tags": ["x"], "paid": true, "note": null}`))
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	want := map[string]any{
		"id": int64(7), "price": 2.5, "email": "a@b.c", "tags": []any{"x"}, "paid": true, "note": nil,
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Decode = %#v\nwant %#v", got, want)
	}
}

func TestDecodeNumbers(t *testing.T) {
	s := mustParse(t, `{"type":"array"}`)
	got, err := s.Decode([]byte(`[1, -9223372036854775808, 9223372036854775808, 1.5, 1e2]`))
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	want := []any{int64(1), int64(-9223372036854775808), 9223372036854775808.0, 1.5, 100.0}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Decode = %#v, want %#v", got, want)
	}
}

func TestDecodeInvalid(t *testing.T) {
	s := mustParse(t, orderSchema)
	tests := []struct {
		name    string
		payload string
		want    []string // substrings of the error
	}{
		{"empty", ``, []string{"not JSON"}},
		{"not JSON", `{"id":`, []string{"not JSON"}},
		{"trailing data", `{"id":1} {}`, []string{"unexpected data"}},
		{"invalid UTF-8", "{\"id\":1,\"email\":\"\xff\"}", []string{"UTF-8"}},
		{"missing required", `{"price":1}`, []string{`"required"`, "at /:", "id"}},
		{"wrong type", `{"id":"7"}`, []string{`"type"`, "at /id"}},
		{"below minimum", `{"id":0}`, []string{`"minimum"`, "at /id"}},
		{"fraction for integer", `{"id":1.5}`, []string{`"type"`, "at /id"}},
		{"too long", `{"id":1,"email":"aaaaaaaaaaaaaaaaaaaaaaaaa"}`, []string{`"maxLength"`, "at /email"}},
		{"nested item", `{"id":1,"tags":["a",2]}`, []string{`"type"`, "at /tags/1"}},
		{"closed content model", `{"id":1,"extra":true}`, []string{`"additionalProperties"`, "extra"}},
		{"several failures", `{"id":"x","paid":"no"}`, []string{"at /id", "at /paid"}},
		{"not an object", `[1]`, []string{`"type"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := s.Decode([]byte(tt.payload))
			if !errors.Is(err, registry.ErrInvalidPayload) {
				t.Fatalf("Decode = %v, %v; want ErrInvalidPayload", v, err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestDecodeFalseSchema(t *testing.T) {
	s := mustParse(t, `false`)
	if _, err := s.Decode([]byte(`{}`)); !errors.Is(err, registry.ErrInvalidPayload) {
		t.Fatalf("Decode against false = %v, want ErrInvalidPayload", err)
	}
}

func FuzzDecode(f *testing.F) {
	s, err := New().Parse(orderSchema, nil)
	if err != nil {
		f.Fatal(err)
	}
	for _, seed := range []string{`{"id":1}`, `{"id":"x"}`, `[`, `{"tags":[1,{"a":null}]}`} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		v, err := s.Decode(payload)
		if err != nil && !errors.Is(err, registry.ErrInvalidPayload) {
			t.Fatalf("Decode error %v does not wrap ErrInvalidPayload", err)
		}
		if err == nil && v == nil {
			t.Fatal("a valid object decoded to nil")
		}
	})
}
