package avro

import (
	"errors"
	"strings"
	"testing"

	"github.com/runnel-dev/runnel/internal/registry"
)

func TestType(t *testing.T) {
	if got := New().Type(); got != "AVRO" {
		t.Fatalf("Type() = %q", got)
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name, text string
		want       []string
	}{
		{"empty", "  ", []string{"schema is empty"}},
		{"bad JSON", "{\n  \"type\": \"record\",\n  \"name\" \"R\"}", []string{"not valid JSON at line 3"}},
		{"truncated JSON", `{"type":"record"`, []string{"not valid JSON"}},
		{"trailing data", `"int" "long"`, []string{"unexpected data after the schema at line 1"}},
		{"JSON null", `null`, []string{"at /: JSON null is not a schema"}},
		{"number", `42`, []string{"at /: 42 is not a schema"}},
		{"unknown primitive", `"integer"`, []string{`at /: unknown type "integer"`}},
		{"object without type", `{"name":"x"}`, []string{`at /: object has no "type"`}},
		{"type not a string", `{"type":{"type":"int"}}`, []string{`at /type: "type" must be a string`}},
		{"record without name", `{"type":"record","fields":[]}`, []string{`at /: record has no "name"`}},
		{"record without fields", `{"type":"record","name":"R"}`, []string{`record "R" needs a "fields" array`}},
		{"field without type", `{"type":"record","name":"R","fields":[{"name":"a"}]}`,
			[]string{`at /fields/0: field "a" of record "R" has no "type"`}},
		{"field without name", `{"type":"record","name":"R","fields":[{"type":"int"}]}`,
			[]string{`at /fields/0: field of record "R" has no "name"`}},
		{"duplicate field", `{"type":"record","name":"R","fields":[{"name":"a","type":"int"},{"name":"a","type":"long"}]}`,
			[]string{`at /fields/1: record "R" has two fields named "a"`}},
		{"unknown field type", `{"type":"record","name":"R","namespace":"n","fields":[{"name":"a","type":{"type":"array","items":"Missing"}}]}`,
			[]string{`at /fields/0/type/items: unknown type "Missing"`, `"n.Missing"`}},
		{"duplicate symbol", `{"type":"enum","name":"E","symbols":["A","A"]}`, []string{`at /symbols/1: enum "E" has symbol "A" twice`}},
		{"enum default not a symbol", `{"type":"enum","name":"E","symbols":["A"],"default":"B"}`, []string{`at /default: enum "E" default "B"`}},
		{"enum without symbols", `{"type":"enum","name":"E"}`, []string{`needs a "symbols" array`}},
		{"array without items", `{"type":"array"}`, []string{`at /: array needs "items"`}},
		{"map without values", `{"type":"map","value":"int"}`, []string{`at /: map needs "values"`}},
		{"fixed without size", `{"type":"fixed","name":"F"}`, []string{`fixed "F" needs a non-negative integer "size"`}},
		{"fixed negative size", `{"type":"fixed","name":"F","size":-1}`, []string{`non-negative integer "size"`}},
		{"nested union", `["null",["int","long"]]`, []string{"at /1: a union may not contain another union"}},
		{"duplicate union branch", `["int","int"]`, []string{"invalid schema"}},
		{"type defined twice", `{"type":"record","name":"R","fields":[{"name":"a","type":{"type":"fixed","name":"R","size":1}}]}`,
			[]string{`at /fields/0/type/name: type "R" is defined twice`}},
		{"named after a primitive", `{"type":"fixed","name":"int","size":1}`, []string{`may not be named after the primitive type "int"`}},
		{"bad default", `{"type":"record","name":"R","fields":[{"name":"a","type":"int","default":"x"}]}`, []string{"default", "a"}},
		{"bad name", `{"type":"record","name":"9R","fields":[]}`, []string{"9R"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New().Parse(tc.text, nil)
			if err == nil {
				t.Fatal("want an error")
			}
			if !errors.Is(err, registry.ErrInvalidSchema) {
				t.Errorf("error %v does not wrap ErrInvalidSchema", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

const (
	addressSchema = `{"type":"record","name":"Address","namespace":"com.acme","fields":[
		{"name":"street","type":"string"},{"name":"country","type":"com.acme.Country"}]}`
	countrySchema = `{"type":"enum","name":"Country","namespace":"com.acme","symbols":["FR","DE"]}`
	orderSchema   = `{"type":"record","name":"Order","namespace":"com.acme","fields":[
		{"name":"id","type":"long"},{"name":"ship","type":"com.acme.Address"},
		{"name":"bill","type":["null","Address"],"default":null},{"name":"origin","type":"Country"}]}`
)

func addressRef() registry.ResolvedReference {
	return registry.ResolvedReference{
		Name: "com.acme.Address", Subject: "address", Version: 1, Schema: addressSchema,
		Refs: []registry.ResolvedReference{{Name: "com.acme.Country", Subject: "country", Version: 2, Schema: countrySchema}},
	}
}

func TestParseReferences(t *testing.T) {
	refs := []registry.ResolvedReference{addressRef(),
		// The same reference again, directly: parsed once.
		{Name: "com.acme.Country", Subject: "country", Version: 2, Schema: countrySchema}}
	s, err := Parse(orderSchema, refs)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(s.Normalized(), `{"name":"ship","type":"com.acme.Address"}`) ||
		!strings.Contains(s.Normalized(), `{"name":"origin","type":"com.acme.Country"}`) {
		t.Errorf("normalized form does not name referenced types fully: %s", s.Normalized())
	}
	// The decoded value walks into the referenced types.
	payload := []byte{
		0x54,                      // id 42
		0x06, 'R', 'u', 'e', 0x02, // ship: street "Rue", country DE
		0x00, // bill: null
		0x00, // origin: FR
	}
	v, err := s.Decode(payload)
	if err != nil {
		t.Fatal(err)
	}
	m := v.(map[string]any)
	ship := m["ship"].(map[string]any)
	if m["id"] != int64(42) || ship["street"] != "Rue" || ship["country"] != "DE" || m["bill"] != nil || m["origin"] != "FR" {
		t.Errorf("decoded %v", v)
	}
}

func TestParseReferenceErrors(t *testing.T) {
	tests := []struct {
		name string
		refs []registry.ResolvedReference
		want []string
	}{
		{"missing reference", nil, []string{`unknown type "com.acme.Address"`}},
		{"nested reference missing", []registry.ResolvedReference{{Name: "com.acme.Address", Subject: "address", Version: 1, Schema: addressSchema}},
			[]string{`reference "com.acme.Address" (subject "address", version 1)`, `unknown type "com.acme.Country"`}},
		{"invalid reference", []registry.ResolvedReference{{Name: "com.acme.Address", Subject: "address", Version: 3, Schema: `{"type":"record"`}},
			[]string{`reference "com.acme.Address" (subject "address", version 3)`, "not valid JSON"}},
		{"unnamed reference", []registry.ResolvedReference{{Subject: "address", Version: 1, Schema: addressSchema}},
			[]string{`reference to subject "address" version 1 has no name`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New().Parse(orderSchema, tc.refs)
			if !errors.Is(err, registry.ErrInvalidSchema) {
				t.Fatalf("error %v does not wrap ErrInvalidSchema", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

func TestReferenceCycleEnds(t *testing.T) {
	ref := registry.ResolvedReference{Name: "a.A", Schema: `{"type":"fixed","name":"A","namespace":"a","size":1}`}
	cur := ref
	for range maxRefDepth + 2 {
		cur = registry.ResolvedReference{Name: "x", Schema: `"int"`, Refs: []registry.ResolvedReference{cur}}
		cur.Name = "x" + strings.Repeat("y", len(cur.Refs[0].Name))
	}
	_, err := Parse(`"a.A"`, []registry.ResolvedReference{cur})
	if err == nil || !strings.Contains(err.Error(), "nested deeper") {
		t.Fatalf("err = %v, want a depth error", err)
	}
}

func TestCanonicalStability(t *testing.T) {
	tests := []struct {
		name string
		a, b string
	}{
		{"whitespace and key order",
			`{"type":"record","name":"R","namespace":"n","doc":"d","fields":[{"name":"a","type":"int","default":1}]}`,
			"{\n  \"namespace\" : \"n\",\n  \"name\": \"R\",\n \"fields\": [ { \"default\": 1, \"type\": \"int\", \"name\": \"a\" } ],\n  \"type\": \"record\", \"doc\": \"d\"\n}"},
		{"primitive object", `{"type":"string"}`, ` "string" `},
		{"nested primitive object", `{"type":"array","items":{"type":"long"}}`, `{"items":"long","type":"array"}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, b := mustParse(t, tc.a), mustParse(t, tc.b)
			if a.Canonical() != b.Canonical() {
				t.Errorf("canonical differs:\n%s\n%s", a.Canonical(), b.Canonical())
			}
			if a.Normalized() != b.Normalized() {
				t.Errorf("normalized differs:\n%s\n%s", a.Normalized(), b.Normalized())
			}
		})
	}
}

func TestCanonicalKeepsAttributes(t *testing.T) {
	s := mustParse(t, `{"type":"record","name":"R","namespace":"n","doc":"about R","aliases":["Old"],"x-owner":"team",
		"fields":[{"name":"big","type":"long","default":9007199254740993,"doc":"precise"}]}`)
	want := `{"aliases":["Old"],"doc":"about R","fields":[{"default":9007199254740993,"doc":"precise","name":"big","type":"long"}],"name":"R","namespace":"n","type":"record","x-owner":"team"}`
	if s.Canonical() != want {
		t.Errorf("canonical:\n got %s\nwant %s", s.Canonical(), want)
	}
	// Different docs are different registrations.
	other := mustParse(t, strings.Replace(s.String(), "about R", "about S", 1))
	if other.Canonical() == s.Canonical() {
		t.Error("doc change does not change the canonical text")
	}
}

func TestNormalized(t *testing.T) {
	tests := []struct {
		name, text, want string
	}{
		{"names qualified, doc dropped, order fixed",
			`{"doc":"x","fields":[{"type":{"type":"enum","name":"E","symbols":["A","B"],"default":"A","doc":"e"},"name":"e","order":"ascending"},
			  {"name":"f","type":{"type":"fixed","name":"other.F","size":4,"aliases":["G","z.H"]},"aliases":["g2","g1"],"order":"descending"},
			  {"name":"again","type":"E"}],
			  "name":"R","namespace":"n","type":"record","aliases":["Old"],"connect.name":"n.R"}`,
			`{"name":"n.R","type":"record","fields":[` +
				`{"name":"e","type":{"name":"n.E","type":"enum","symbols":["A","B"],"default":"A"}},` +
				`{"name":"f","type":{"name":"other.F","type":"fixed","size":4,"aliases":["other.G","z.H"]},"aliases":["g1","g2"],"order":"descending"},` +
				`{"name":"again","type":"n.E"}],"aliases":["n.Old"],"connect.name":"n.R"}`},
		{"logical types and defaults kept",
			`{"type":"record","name":"T","fields":[{"name":"ts","type":{"type":"long","logicalType":"timestamp-millis"},"default":0},
			  {"name":"d","type":{"logicalType":"decimal","type":"bytes","scale":2,"precision":9}},
			  {"name":"o","type":["null",{"type":"map","values":"int"}],"default":null}]}`,
			`{"name":"T","type":"record","fields":[{"name":"ts","type":{"type":"long","logicalType":"timestamp-millis"},"default":0},` +
				`{"name":"d","type":{"type":"bytes","logicalType":"decimal","precision":9,"scale":2}},` +
				`{"name":"o","type":["null",{"type":"map","values":"int"}],"default":null}]}`},
		{"primitive", `{"type":"int"}`, `"int"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := mustParse(t, tc.text)
			if s.Normalized() != tc.want {
				t.Errorf("normalized:\n got %s\nwant %s", s.Normalized(), tc.want)
			}
			// The normalized text is itself a valid schema that normalizes to itself.
			again := mustParse(t, s.Normalized())
			if again.Normalized() != s.Normalized() {
				t.Errorf("normalizing twice differs:\n%s\n%s", again.Normalized(), s.Normalized())
			}
		})
	}
}

func TestNormalizedEquatesNamespaceStyles(t *testing.T) {
	a := mustParse(t, `{"type":"record","name":"R","namespace":"com.x","fields":[{"name":"e","type":{"type":"enum","name":"E","symbols":["A"]}}]}`)
	b := mustParse(t, `{"type":"record","name":"com.x.R","fields":[{"name":"e","type":{"type":"enum","name":"com.x.E","symbols":["A"]}}]}`)
	if a.Canonical() == b.Canonical() {
		t.Error("canonical texts should keep how names were written")
	}
	if a.Normalized() != b.Normalized() {
		t.Errorf("normalized differs:\n%s\n%s", a.Normalized(), b.Normalized())
	}
}

// FuzzParse checks that any schema text either parses or is rejected with
// ErrInvalidSchema, never a panic, and that a parsed schema's normalized
// text parses again.
func FuzzParse(f *testing.F) {
	for _, s := range []string{orderSchema, addressSchema, countrySchema, everything, `["null","int"]`, `{"type":"fixed","name":"F","size":2}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		s, err := Parse(text, nil)
		if err != nil {
			if !errors.Is(err, registry.ErrInvalidSchema) {
				t.Fatalf("error %v does not wrap ErrInvalidSchema", err)
			}
			return
		}
		if _, err := Parse(s.Normalized(), nil); err != nil {
			t.Fatalf("normalized %s of %s does not parse: %v", s.Normalized(), text, err)
		}
		_ = s.Canonical()
	})
}
