package jsonschema

import (
	"errors"
	"strings"
	"testing"

	"github.com/runnel-dev/runnel/internal/registry"
)

// mustParse parses a schema or fails the test.
func mustParse(t *testing.T, text string, refs ...registry.ResolvedReference) *Schema {
	t.Helper()
	s, err := New().Parse(text, refs)
	if err != nil {
		t.Fatalf("Parse(%s): %v", text, err)
	}
	return s.(*Schema)
}

func TestType(t *testing.T) {
	if got := New().Type(); got != "JSON" {
		t.Fatalf("Type() = %q, want JSON", got)
	}
}

func TestParseInvalid(t *testing.T) {
	tests := []struct {
		name   string
		schema string
		refs   []registry.ResolvedReference
		want   string
	}{
		{"not JSON", `{"type":`, nil, "not JSON"},
		{"empty", ``, nil, "not JSON"},
		{"trailing data", `{"type":"string"} x`, nil, "unexpected data"},
		{"array", `[1,2]`, nil, "object or a boolean"},
		{"string", `"string"`, nil, "object or a boolean"},
		{"bad type", `{"type":5}`, nil, "type"},
		{"unknown type name", `{"type":"text"}`, nil, "type"},
		{"negative minLength", `{"minLength":-1}`, nil, "minLength"},
		{"draft-04 bad exclusiveMaximum", `{"$schema":"http://json-schema.org/draft-04/schema#","maximum":3,"exclusiveMaximum":3}`, nil, "exclusiveMaximum"},
		{"bad required in draft 2020", `{"$schema":"https://json-schema.org/draft/2020-12/schema","required":"a"}`, nil, "required"},
		{"bad pattern", `{"type":"string","pattern":"(a"}`, nil, "pattern"},
		{"unknown $schema", `{"$schema":"https://example.com/my-meta","type":"string"}`, nil, "example.com/my-meta"},
		{"missing reference", `{"$ref":"customer.json"}`, nil, "customer.json"},
		{"reference not JSON", `{"$ref":"customer.json"}`, []registry.ResolvedReference{{Name: "customer.json", Subject: "c", Version: 1, Schema: "{"}}, "not JSON"},
		{"reference invalid", `{"$ref":"customer.json"}`, []registry.ResolvedReference{{Name: "customer.json", Subject: "c", Version: 1, Schema: `{"type":7}`}}, "type"},
		{"reference twice, different", `{"$ref":"a.json"}`, []registry.ResolvedReference{
			{Name: "a.json", Schema: `{"type":"string"}`}, {Name: "a.json", Schema: `{"type":"integer"}`},
		}, "twice"},
		{"reference without name", `{}`, []registry.ResolvedReference{{Subject: "s", Version: 1, Schema: `{}`}}, "empty name"},
		{"bad pointer", `{"$ref":"#/definitions/nope"}`, nil, "nope"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New().Parse(tt.schema, tt.refs)
			if !errors.Is(err, registry.ErrInvalidSchema) {
				t.Fatalf("Parse error = %v, want ErrInvalidSchema", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Parse error %q does not mention %q", err, tt.want)
			}
		})
	}
}

func TestParseBooleanSchemas(t *testing.T) {
	for _, text := range []string{"true", "false"} {
		mustParse(t, text)
	}
}

func TestCanonical(t *testing.T) {
	a := mustParse(t, `{
		"type": "object",
		"properties": {"b": {"type": "string", "description": "<b> & co"}, "a": {"type": "integer"}},
		"required": ["b", "a"]
	}`)
	b := mustParse(t, `{"required":["b","a"],"properties":{"a":{"type":"integer"},"b":{"description":"<b> & co","type":"string"}},"type":"object"}`)
	want := `{"properties":{"a":{"type":"integer"},"b":{"description":"<b> & co","type":"string"}},"required":["b","a"],"type":"object"}`
	if a.Canonical() != want {
		t.Fatalf("Canonical() = %s\nwant          %s", a.Canonical(), want)
	}
	if b.Canonical() != a.Canonical() {
		t.Fatalf("formatting changed the canonical text:\n%s\n%s", a.Canonical(), b.Canonical())
	}
	if a.Normalized() != a.Canonical() {
		t.Fatalf("Normalized() = %s, want the canonical text", a.Normalized())
	}
	// Stable: parsing the canonical text gives it back; numbers keep
	// their spelling.
	c := mustParse(t, `{"maximum": 1e400, "minimum": 0.10}`)
	if again := mustParse(t, c.Canonical()); again.Canonical() != c.Canonical() {
		t.Fatalf("canonical text not stable: %s then %s", c.Canonical(), again.Canonical())
	}
	if c.Canonical() != `{"maximum":1e400,"minimum":0.10}` {
		t.Fatalf("numbers rewritten: %s", c.Canonical())
	}
	// Array order is meaningful and kept.
	d := mustParse(t, `{"required":["a","b"]}`)
	if d.Canonical() == mustParse(t, `{"required":["b","a"]}`).Canonical() {
		t.Fatal("array order must be kept")
	}
}

func TestReferences(t *testing.T) {
	address := `{"type":"object","properties":{"zip":{"type":"string","pattern":"^[0-9]{5}$"}},"required":["zip"]}`
	customer := `{"type":"object","properties":{"name":{"type":"string"},"address":{"$ref":"address.json"}},"required":["name","address"]}`
	nested := []registry.ResolvedReference{{
		Name: "customer.json", Subject: "customer", Version: 1, Schema: customer,
		Refs: []registry.ResolvedReference{{Name: "address.json", Subject: "address", Version: 1, Schema: address}},
	}}
	good := `{"customer":{"name":"Ann","address":{"zip":"12345"}}}`
	bad := `{"customer":{"name":"Ann","address":{"zip":"1"}}}`
	tests := []struct {
		name   string
		schema string
		refs   []registry.ResolvedReference
	}{
		{
			name:   "relative, nested",
			schema: `{"type":"object","properties":{"customer":{"$ref":"customer.json"}},"required":["customer"]}`,
			refs:   nested,
		},
		{
			name:   "relative against the schema's $id",
			schema: `{"$id":"https://example.com/schemas/order.json","type":"object","properties":{"customer":{"$ref":"customer.json"}}}`,
			refs:   nested,
		},
		{
			name:   "absolute URLs",
			schema: `{"type":"object","properties":{"customer":{"$ref":"https://example.com/customer.json"}}}`,
			refs: []registry.ResolvedReference{{
				Name:   "https://example.com/customer.json",
				Schema: strings.Replace(customer, `"address.json"`, `"https://example.com/address.json"`, 1),
				Refs:   []registry.ResolvedReference{{Name: "https://example.com/address.json", Schema: address}},
			}},
		},
		{
			name:   "fragment into a reference",
			schema: `{"type":"object","properties":{"customer":{"$ref":"defs.json#/$defs/customer"}}}`,
			refs: []registry.ResolvedReference{
				{Name: "defs.json", Schema: `{"$defs":{"customer":` + customer + `}}`},
				{Name: "address.json", Schema: address},
			},
		},
		{
			name:   "draft 2020-12 with references",
			schema: `{"$schema":"https://json-schema.org/draft/2020-12/schema","type":"object","properties":{"customer":{"$ref":"customer.json"}}}`,
			refs:   nested,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := mustParse(t, tt.schema, tt.refs...)
			if _, err := s.Decode([]byte(good)); err != nil {
				t.Fatalf("Decode(good): %v", err)
			}
			_, err := s.Decode([]byte(bad))
			if !errors.Is(err, registry.ErrInvalidPayload) || !strings.Contains(err.Error(), "/customer/address/zip") {
				t.Fatalf("Decode(bad) = %v, want a pattern failure at /customer/address/zip", err)
			}
		})
	}
}

func TestDrafts(t *testing.T) {
	tests := []struct {
		name    string
		schema  string
		valid   []string
		invalid []string
	}{
		{
			name:    "no $schema is draft-07: prefixItems is not a keyword",
			schema:  `{"type":"array","prefixItems":[{"type":"string"}]}`,
			valid:   []string{`[1]`},
			invalid: []string{`{}`},
		},
		{
			name:    "draft-07 asserts format",
			schema:  `{"type":"string","format":"email"}`,
			valid:   []string{`"a@example.com"`},
			invalid: []string{`"not an address"`},
		},
		{
			name:    "draft 2020-12 prefixItems",
			schema:  `{"$schema":"https://json-schema.org/draft/2020-12/schema","type":"array","prefixItems":[{"type":"string"}],"items":false}`,
			valid:   []string{`["a"]`, `[]`},
			invalid: []string{`[1]`, `["a","b"]`},
		},
		{
			name:    "draft 2019-09 dependentRequired",
			schema:  `{"$schema":"https://json-schema.org/draft/2019-09/schema","dependentRequired":{"card":["billing"]}}`,
			valid:   []string{`{}`, `{"card":1,"billing":2}`},
			invalid: []string{`{"card":1}`},
		},
		{
			name:    "draft-06 const",
			schema:  `{"$schema":"http://json-schema.org/draft-06/schema#","const":"x"}`,
			valid:   []string{`"x"`},
			invalid: []string{`"y"`},
		},
		{
			name:    "draft-04 boolean exclusiveMaximum",
			schema:  `{"$schema":"http://json-schema.org/draft-04/schema#","type":"number","maximum":10,"exclusiveMaximum":true}`,
			valid:   []string{`9.5`},
			invalid: []string{`10`},
		},
		{
			name:    "draft-07 tuple items with additionalItems",
			schema:  `{"$schema":"http://json-schema.org/draft-07/schema#","items":[{"type":"integer"}],"additionalItems":false}`,
			valid:   []string{`[1]`},
			invalid: []string{`[1,2]`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := mustParse(t, tt.schema)
			for _, v := range tt.valid {
				if _, err := s.Decode([]byte(v)); err != nil {
					t.Errorf("Decode(%s): %v", v, err)
				}
			}
			for _, v := range tt.invalid {
				if _, err := s.Decode([]byte(v)); !errors.Is(err, registry.ErrInvalidPayload) {
					t.Errorf("Decode(%s) = %v, want ErrInvalidPayload", v, err)
				}
			}
		})
	}
}
