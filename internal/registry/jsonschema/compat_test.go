package jsonschema

import (
	"strings"
	"testing"

	"github.com/runnel-dev/runnel/internal/registry"
)

// verdict is the expected outcome of one direction: ok, or the message
// substrings an incompatibility must contain.
type verdict struct {
	ok   bool
	want []string
}

var compatible = verdict{ok: true}

func broken(want ...string) verdict { return verdict{want: want} }

func obj(props string, extra string) string {
	s := `{"type":"object","properties":{` + props + `}`
	if extra != "" {
		s += "," + extra
	}
	return s + "}"
}

const closed = `"additionalProperties":false`

// The compatibility corpus: an old and a new schema, and the verdicts for
// BACKWARD (new reads old) and FORWARD (old reads new). FULL is both.
var corpus = []struct {
	name     string
	old, new string
	backward verdict
	forward  verdict
}{
	{
		name: "identical", old: obj(`"id":{"type":"integer"}`, ""), new: obj(`"id":{"type":"integer"}`, ""),
		backward: compatible, forward: compatible,
	},
	{
		name:     "annotations only changed",
		old:      obj(`"id":{"type":"integer","description":"a"}`, `"title":"x"`),
		new:      obj(`"id":{"type":"integer","description":"b"}`, `"title":"y"`),
		backward: compatible, forward: compatible,
	},
	{
		name:     "property added, open content model",
		old:      obj(`"id":{"type":"integer"}`, ""),
		new:      obj(`"id":{"type":"integer"},"email":{"type":"string"}`, ""),
		backward: broken("PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL at #/properties/email"),
		forward:  compatible,
	},
	{
		name:     "property with empty schema added, open content model",
		old:      obj(`"id":{"type":"integer"}`, ""),
		new:      obj(`"id":{"type":"integer"},"extra":{}`, ""),
		backward: compatible, forward: compatible,
	},
	{
		name:     "optional property added, closed content model",
		old:      obj(`"id":{"type":"integer"}`, closed),
		new:      obj(`"id":{"type":"integer"},"email":{"type":"string"}`, closed),
		backward: compatible,
		forward:  broken("PROPERTY_REMOVED_FROM_CLOSED_CONTENT_MODEL at #/properties/email"),
	},
	{
		name:     "required property added, closed content model",
		old:      obj(`"id":{"type":"integer"}`, closed),
		new:      obj(`"id":{"type":"integer"},"email":{"type":"string"}`, closed+`,"required":["email"]`),
		backward: broken("REQUIRED_PROPERTY_ADDED_TO_UNOPEN_CONTENT_MODEL at #/properties/email"),
		forward:  broken("PROPERTY_REMOVED_FROM_CLOSED_CONTENT_MODEL at #/properties/email"),
	},
	{
		name:     "property removed, open content model",
		old:      obj(`"id":{"type":"integer"},"email":{"type":"string"}`, ""),
		new:      obj(`"id":{"type":"integer"}`, ""),
		backward: compatible,
		forward:  broken("PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL at #/properties/email"),
	},
	{
		name:     "property removed, closed content model",
		old:      obj(`"id":{"type":"integer"},"email":{"type":"string"}`, closed),
		new:      obj(`"id":{"type":"integer"}`, closed),
		backward: broken("PROPERTY_REMOVED_FROM_CLOSED_CONTENT_MODEL at #/properties/email"),
		forward:  compatible,
	},
	{
		name:     "property made required",
		old:      obj(`"id":{"type":"integer"},"email":{"type":"string"}`, ""),
		new:      obj(`"id":{"type":"integer"},"email":{"type":"string"}`, `"required":["email"]`),
		backward: broken("REQUIRED_ATTRIBUTE_ADDED at #/required", `"email"`),
		forward:  compatible,
	},
	{
		name:     "property made required with a default (Confluent: compatible)",
		old:      obj(`"email":{"type":"string"}`, ""),
		new:      obj(`"email":{"type":"string","default":""}`, `"required":["email"]`),
		backward: compatible, forward: compatible,
	},
	{
		name:     "content model closed",
		old:      obj(`"id":{"type":"integer"}`, ""),
		new:      obj(`"id":{"type":"integer"}`, closed),
		backward: broken("ADDITIONAL_PROPERTIES_REMOVED at #/additionalProperties"),
		forward:  compatible,
	},
	{
		name:     "property added, covered by partially open content model",
		old:      obj(`"id":{"type":"integer"}`, `"additionalProperties":{"type":"string"}`),
		new:      obj(`"id":{"type":"integer"},"name":{"type":"string"}`, `"additionalProperties":{"type":"string"}`),
		backward: compatible, forward: compatible,
	},
	{
		name:     "property added, not covered by partially open content model",
		old:      obj(`"id":{"type":"integer"}`, `"additionalProperties":{"type":"string"}`),
		new:      obj(`"id":{"type":"integer"},"count":{"type":"integer"}`, `"additionalProperties":{"type":"string"}`),
		backward: broken("PROPERTY_ADDED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL at #/properties/count", "TYPE_CHANGED at #/properties/count"),
		forward:  broken("PROPERTY_REMOVED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL at #/properties/count"),
	},
	{
		name: "integer widened to number",
		old:  obj(`"n":{"type":"integer"}`, ""), new: obj(`"n":{"type":"number"}`, ""),
		backward: compatible,
		forward:  broken("TYPE_NARROWED at #/properties/n"),
	},
	{
		name: "type changed",
		old:  obj(`"n":{"type":"string"}`, ""), new: obj(`"n":{"type":"integer"}`, ""),
		backward: broken("TYPE_CHANGED at #/properties/n"),
		forward:  broken("TYPE_CHANGED at #/properties/n"),
	},
	{
		name: "null added to the type",
		old:  `{"type":"string"}`, new: `{"type":["string","null"]}`,
		backward: compatible, forward: broken("TYPE_CHANGED at #"),
	},
	{
		name: "enum extended",
		old:  `{"enum":["a","b"]}`, new: `{"enum":["a","b","c"]}`,
		backward: compatible,
		forward:  broken(`ENUM_ARRAY_NARROWED at #: the writer allows the value "c"`),
	},
	{
		name: "enum added to a string",
		old:  `{"type":"string"}`, new: `{"type":"string","enum":["a"]}`,
		backward: broken("ENUM_ARRAY_NARROWED at #"), forward: compatible,
	},
	{
		name: "maxLength decreased",
		old:  `{"type":"string","maxLength":10}`, new: `{"type":"string","maxLength":5}`,
		backward: broken("MAX_LENGTH_DECREASED at #/maxLength"), forward: compatible,
	},
	{
		name: "maxLength added",
		old:  `{"type":"string"}`, new: `{"type":"string","maxLength":5}`,
		backward: broken("MAX_LENGTH_ADDED at #/maxLength"), forward: compatible,
	},
	{
		name: "minLength increased",
		old:  `{"type":"string","minLength":1}`, new: `{"type":"string","minLength":3}`,
		backward: broken("MIN_LENGTH_INCREASED at #/minLength"), forward: compatible,
	},
	{
		name: "maximum increased",
		old:  `{"type":"number","maximum":10}`, new: `{"type":"number","maximum":20}`,
		backward: compatible, forward: broken("MAXIMUM_DECREASED at #/maximum"),
	},
	{
		name: "minimum made exclusive",
		old:  `{"type":"number","minimum":0}`, new: `{"type":"number","exclusiveMinimum":0}`,
		backward: broken("EXCLUSIVE_MINIMUM_INCREASED at #/exclusiveMinimum"), forward: compatible,
	},
	{
		name: "multipleOf loosened",
		old:  `{"type":"integer","multipleOf":4}`, new: `{"type":"integer","multipleOf":2}`,
		backward: compatible, forward: broken("MULTIPLE_OF_CHANGED at #/multipleOf"),
	},
	{
		name: "pattern added",
		old:  `{"type":"string"}`, new: `{"type":"string","pattern":"^a"}`,
		backward: broken("PATTERN_ADDED at #/pattern"), forward: compatible,
	},
	{
		name: "pattern changed",
		old:  `{"type":"string","pattern":"^a"}`, new: `{"type":"string","pattern":"^b"}`,
		backward: broken("PATTERN_CHANGED at #/pattern"), forward: broken("PATTERN_CHANGED at #/pattern"),
	},
	{
		name: "array items widened",
		old:  `{"type":"array","items":{"type":"integer"}}`, new: `{"type":"array","items":{"type":"number"}}`,
		backward: compatible, forward: broken("TYPE_NARROWED at #/items"),
	},
	{
		name: "maxItems decreased and uniqueItems added",
		old:  `{"type":"array","maxItems":10}`, new: `{"type":"array","maxItems":3,"uniqueItems":true}`,
		backward: broken("MAX_ITEMS_DECREASED at #/maxItems", "UNIQUE_ITEMS_ADDED at #/uniqueItems"), forward: compatible,
	},
	{
		name:     "closed tuple extended (draft 2020-12)",
		old:      `{"$schema":"https://json-schema.org/draft/2020-12/schema","type":"array","prefixItems":[{"type":"string"}],"items":false}`,
		new:      `{"$schema":"https://json-schema.org/draft/2020-12/schema","type":"array","prefixItems":[{"type":"string"},{"type":"integer"}],"items":false}`,
		backward: compatible,
		forward:  broken("ITEM_REMOVED_FROM_CLOSED_CONTENT_MODEL at #/items"),
	},
	{
		name:     "open tuple extended (draft-07)",
		old:      `{"type":"array","items":[{"type":"string"}]}`,
		new:      `{"type":"array","items":[{"type":"string"},{"type":"integer"}]}`,
		backward: broken("ITEM_ADDED_TO_OPEN_CONTENT_MODEL at #/items/1"),
		forward:  compatible,
	},
	{
		name: "anyOf branch added",
		old:  `{"type":"string"}`, new: `{"anyOf":[{"type":"string"},{"type":"integer"}]}`,
		backward: compatible, forward: broken("TYPE_CHANGED at #"),
	},
	{
		name:     "anyOf branch removed",
		old:      `{"anyOf":[{"type":"string"},{"type":"integer"},{"type":"boolean"}]}`,
		new:      `{"anyOf":[{"type":"string"},{"type":"integer"}]}`,
		backward: broken("ENUM_ARRAY_NARROWED at #", "the writer allows the value true"), forward: compatible,
	},
	{
		name:     "oneOf nullable extended",
		old:      `{"oneOf":[{"type":"null"},{"type":"string"}]}`,
		new:      `{"oneOf":[{"type":"null"},{"type":"string"},{"type":"integer"}]}`,
		backward: compatible, forward: broken("SUM_TYPE_NARROWED at #/oneOf"),
	},
	{
		name:     "oneOf branch added that overlaps",
		old:      `{"oneOf":[{"type":"string"}]}`,
		new:      `{"oneOf":[{"type":"string"},{"type":"string","maxLength":5}]}`,
		backward: broken("SUM_TYPE_NARROWED at #/oneOf/1", "oneOf rejects"),
		forward:  compatible,
	},
	{
		name: "discriminated oneOf unchanged",
		old: `{"oneOf":[` + obj(`"kind":{"const":"a"},"x":{"type":"string"}`, `"required":["kind"]`) + `,` +
			obj(`"kind":{"const":"b"},"y":{"type":"integer"}`, `"required":["kind"]`) + `]}`,
		new: `{"oneOf":[` + obj(`"kind":{"const":"a"},"x":{"type":"string"}`, `"required":["kind"]`) + `,` +
			obj(`"kind":{"const":"b"},"y":{"type":"integer"}`, `"required":["kind"]`) + `]}`,
		backward: compatible, forward: compatible,
	},
	{
		name:     "allOf gains a required branch",
		old:      `{"allOf":[` + obj(`"id":{"type":"integer"}`, "") + `]}`,
		new:      `{"allOf":[` + obj(`"id":{"type":"integer"}`, "") + `,{"required":["id"]}]}`,
		backward: broken("REQUIRED_ATTRIBUTE_ADDED at #/allOf/1/required"), forward: compatible,
	},
	{
		name: "not added",
		old:  `{"type":"string"}`, new: `{"type":"string","not":{"const":"x"}}`,
		backward: broken("NOT_TYPE_EXTENDED at #/not"), forward: compatible,
	},
	{
		name: "$ref followed into definitions",
		old: `{"definitions":{"addr":` + obj(`"zip":{"type":"string"}`, "") + `},` +
			`"type":"object","properties":{"home":{"$ref":"#/definitions/addr"}}}`,
		new: `{"definitions":{"addr":` + obj(`"zip":{"type":"integer"}`, "") + `},` +
			`"type":"object","properties":{"home":{"$ref":"#/definitions/addr"}}}`,
		backward: broken("TYPE_CHANGED at #/properties/home/properties/zip"),
		forward:  broken("TYPE_CHANGED at #/properties/home/properties/zip"),
	},
	{
		name:     "recursive schema unchanged",
		old:      `{"$defs":{"node":` + obj(`"value":{"type":"integer"},"children":{"type":"array","items":{"$ref":"#/$defs/node"}}`, "") + `},"$ref":"#/$defs/node"}`,
		new:      `{"$defs":{"node":` + obj(`"value":{"type":"integer"},"children":{"type":"array","items":{"$ref":"#/$defs/node"}}`, "") + `},"$ref":"#/$defs/node"}`,
		backward: compatible, forward: compatible,
	},
	{
		name:     "recursive schema widened",
		old:      `{"$defs":{"node":` + obj(`"value":{"type":"integer"},"children":{"type":"array","items":{"$ref":"#/$defs/node"}}`, "") + `},"$ref":"#/$defs/node"}`,
		new:      `{"$defs":{"node":` + obj(`"value":{"type":"number"},"children":{"type":"array","items":{"$ref":"#/$defs/node"}}`, "") + `},"$ref":"#/$defs/node"}`,
		backward: compatible, forward: broken("TYPE_NARROWED at #/properties/value"),
	},
	{
		name: "any value narrowed to a string",
		old:  `{}`, new: `{"type":"string"}`,
		backward: broken("TYPE_NARROWED at #"), forward: compatible,
	},
	{
		name: "boolean as an enum",
		old:  `{"type":"boolean"}`, new: `{"enum":[true,false]}`,
		backward: compatible, forward: compatible,
	},
	{
		name:     "if/then/else unchanged",
		old:      `{"if":` + obj(`"kind":{"const":"a"}`, "") + `,"then":{"required":["x"]},"else":{"required":["y"]}}`,
		new:      `{"if":` + obj(`"kind":{"const":"a"}`, "") + `,"then":{"required":["x"]},"else":{"required":["y"]}}`,
		backward: compatible, forward: compatible,
	},
	{
		name:     "dependentRequired added",
		old:      `{"$schema":"https://json-schema.org/draft/2020-12/schema","type":"object"}`,
		new:      `{"$schema":"https://json-schema.org/draft/2020-12/schema","type":"object","dependentRequired":{"card":["billing"]}}`,
		backward: broken("DEPENDENCY_ARRAY_EXTENDED at #/dependentRequired/card"), forward: compatible,
	},
	{
		name:     "patternProperties with a closed content model unchanged",
		old:      obj(`"id":{"type":"integer"}`, `"patternProperties":{"^x-":{"type":"string"}},`+closed),
		new:      obj(`"id":{"type":"integer"}`, `"patternProperties":{"^x-":{"type":"string"}},`+closed),
		backward: compatible, forward: compatible,
	},
	{
		name:     "patternProperties with a partially open content model unchanged",
		old:      obj(`"id":{"type":"integer"}`, `"patternProperties":{"^x-":{"type":"string"}},"additionalProperties":{"type":"integer"}`),
		new:      obj(`"id":{"type":"integer"}`, `"patternProperties":{"^x-":{"type":"string"}},"additionalProperties":{"type":"integer"}`),
		backward: compatible, forward: compatible,
	},
	{
		name:     "patternProperties narrowed",
		old:      obj(`"id":{"type":"integer"}`, `"patternProperties":{"^x-":{"type":"string"}}`),
		new:      obj(`"id":{"type":"integer"}`, `"patternProperties":{"^x-":{"type":"string","maxLength":3}}`),
		backward: broken("MAX_LENGTH_ADDED at #/patternProperties/^x-/maxLength"), forward: compatible,
	},
	{
		name:     "$ref with a sibling keyword (draft 2020-12)",
		old:      `{"$schema":"https://json-schema.org/draft/2020-12/schema","$defs":{"s":{"type":"string"}},"$ref":"#/$defs/s"}`,
		new:      `{"$schema":"https://json-schema.org/draft/2020-12/schema","$defs":{"s":{"type":"string"}},"$ref":"#/$defs/s","maxLength":4}`,
		backward: broken("MAX_LENGTH_ADDED at #/maxLength"), forward: compatible,
	},
	{
		name: "format added",
		old:  `{"type":"string"}`, new: `{"type":"string","format":"email"}`,
		backward: broken("FORMAT_CHANGED at #/format"), forward: compatible,
	},
	{
		name: "contains unchanged, minItems loosened",
		old:  `{"type":"array","contains":{"const":1},"minItems":2}`, new: `{"type":"array","contains":{"const":1},"minItems":1}`,
		backward: compatible, forward: broken("MIN_ITEMS_INCREASED at #/minItems"),
	},
	{
		name: "$dynamicRef is not analysed",
		old: `{"$schema":"https://json-schema.org/draft/2020-12/schema","$dynamicAnchor":"n","type":"object",` +
			`"properties":{"c":{"$dynamicRef":"#n"}}}`,
		new: `{"$schema":"https://json-schema.org/draft/2020-12/schema","$dynamicAnchor":"n","type":"object",` +
			`"properties":{"c":{"$dynamicRef":"#n"}}}`,
		backward: broken("UNANALYSED_KEYWORD at #/properties/c"), forward: broken("UNANALYSED_KEYWORD"),
	},
}

func TestCompatibilityCorpus(t *testing.T) {
	f := New()
	for _, tc := range corpus {
		t.Run(tc.name, func(t *testing.T) {
			oldS, newS := mustParse(t, tc.old), mustParse(t, tc.new)
			backward := f.CanRead(newS, oldS)
			forward := f.CanRead(oldS, newS)
			expectVerdict(t, "BACKWARD", backward, tc.backward)
			expectVerdict(t, "FORWARD", forward, tc.forward)
			fullOK := len(backward) == 0 && len(forward) == 0
			if fullOK != (tc.backward.ok && tc.forward.ok) {
				t.Errorf("FULL: compatible = %v, want %v", fullOK, tc.backward.ok && tc.forward.ok)
			}
			// A schema can always read its own data.
			for _, s := range []*Schema{oldS, newS} {
				if m := f.CanRead(s, s); len(m) > 0 {
					t.Errorf("schema cannot read itself: %q", m)
				}
			}
		})
	}
}

func expectVerdict(t *testing.T, mode string, got []string, want verdict) {
	t.Helper()
	if want.ok {
		if len(got) > 0 {
			t.Errorf("%s: want compatible, got %q", mode, got)
		}
		return
	}
	if len(got) == 0 {
		t.Errorf("%s: want incompatible (%q), got compatible", mode, want.want)
		return
	}
	all := strings.Join(got, "\n")
	for _, w := range want.want {
		if !strings.Contains(all, w) {
			t.Errorf("%s: messages %q do not contain %q", mode, got, w)
		}
	}
}

func TestCompatibilityThroughReferences(t *testing.T) {
	customerV1 := obj(`"name":{"type":"string"}`, closed)
	customerV2 := obj(`"name":{"type":"string"},"vip":{"type":"boolean"}`, closed)
	order := `{"type":"object","properties":{"customer":{"$ref":"customer.json"}}}`
	v1 := mustParse(t, order, registry.ResolvedReference{Name: "customer.json", Subject: "customer", Version: 1, Schema: customerV1})
	v2 := mustParse(t, order, registry.ResolvedReference{Name: "customer.json", Subject: "customer", Version: 2, Schema: customerV2})
	if m := v2.CanRead(v2, v1); len(m) > 0 {
		t.Fatalf("BACKWARD through a reference: %q", m)
	}
	m := v1.CanRead(v1, v2)
	if len(m) == 0 || !strings.Contains(strings.Join(m, "\n"), "PROPERTY_REMOVED_FROM_CLOSED_CONTENT_MODEL at #/properties/customer/properties/vip") {
		t.Fatalf("FORWARD through a reference: %q", m)
	}
}

// otherSchema is a schema of some other format.
type otherSchema struct{ registry.Schema }

func TestCompatibilityOtherFormat(t *testing.T) {
	s := mustParse(t, `{}`)
	if m := New().CanRead(s, otherSchema{}); len(m) == 0 {
		t.Fatal("comparing with another format's schema must be incompatible")
	}
}
