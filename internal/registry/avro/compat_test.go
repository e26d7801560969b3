package avro

import (
	"strings"
	"testing"
)

// compatCase is one pair of the compatibility corpus: an old and a new
// schema with the expected verdicts. BACKWARD is CanRead(new, old) (new
// readers read old data), FORWARD CanRead(old, new), FULL both. A
// verdict's message substrings must all appear in its messages; no
// substrings means compatible.
type compatCase struct {
	name     string
	old, new string
	backward []string
	forward  []string
}

const (
	userV1 = `{"type":"record","name":"User","namespace":"com.example","fields":[
		{"name":"id","type":"long"},{"name":"name","type":"string"}]}`
	userWithEmailDefault = `{"type":"record","name":"User","namespace":"com.example","fields":[
		{"name":"id","type":"long"},{"name":"name","type":"string"},
		{"name":"email","type":["null","string"],"default":null}]}`
	userWithEmail = `{"type":"record","name":"User","namespace":"com.example","fields":[
		{"name":"id","type":"long"},{"name":"name","type":"string"},{"name":"email","type":"string"}]}`
)

func field(typ string) string {
	return `{"type":"record","name":"R","fields":[{"name":"f","type":` + typ + `}]}`
}

func fieldDefault(typ, def string) string {
	return `{"type":"record","name":"R","fields":[{"name":"f","type":` + typ + `,"default":` + def + `}]}`
}

var compatCorpus = []compatCase{
	// Records.
	{name: "identical record", old: userV1, new: userV1},
	{name: "add field with default", old: userV1, new: userWithEmailDefault},
	{name: "add field without default", old: userV1, new: userWithEmail,
		backward: []string{"READER_FIELD_MISSING_DEFAULT_VALUE at /fields/2: field 'email'", "no default"}},
	{name: "remove field without default", old: userWithEmail, new: userV1,
		forward: []string{"READER_FIELD_MISSING_DEFAULT_VALUE at /fields/2: field 'email'"}},
	{name: "remove field with default", old: userWithEmailDefault, new: userV1},
	{name: "reorder fields",
		old: `{"type":"record","name":"R","fields":[{"name":"a","type":"int"},{"name":"b","type":"string"}]}`,
		new: `{"type":"record","name":"R","fields":[{"name":"b","type":"string"},{"name":"a","type":"int"}]}`},
	{name: "rename field with alias",
		old:     `{"type":"record","name":"R","fields":[{"name":"a","type":"int"}]}`,
		new:     `{"type":"record","name":"R","fields":[{"name":"b","type":"int","aliases":["a"]}]}`,
		forward: []string{"READER_FIELD_MISSING_DEFAULT_VALUE at /fields/0: field 'a'"}},
	{name: "rename field without alias",
		old:      `{"type":"record","name":"R","fields":[{"name":"a","type":"int"}]}`,
		new:      `{"type":"record","name":"R","fields":[{"name":"b","type":"int"}]}`,
		backward: []string{"READER_FIELD_MISSING_DEFAULT_VALUE at /fields/0: field 'b'"},
		forward:  []string{"READER_FIELD_MISSING_DEFAULT_VALUE at /fields/0: field 'a'"}},
	{name: "rename record",
		old: `{"type":"record","name":"A","fields":[]}`, new: `{"type":"record","name":"B","fields":[]}`,
		backward: []string{"NAME_MISMATCH at /name", `"B" cannot read writer record "A"`},
		forward:  []string{"NAME_MISMATCH at /name"}},
	{name: "rename record with alias",
		old:     `{"type":"record","name":"A","namespace":"ns","fields":[]}`,
		new:     `{"type":"record","name":"B","namespace":"ns","aliases":["A"],"fields":[]}`,
		forward: []string{"NAME_MISMATCH"}},
	{name: "namespace change keeps unqualified name",
		old: `{"type":"record","name":"R","namespace":"a","fields":[{"name":"x","type":"int"}]}`,
		new: `{"type":"record","name":"R","namespace":"b","fields":[{"name":"x","type":"int"}]}`},
	{name: "nested record gains required field",
		old:      field(`{"type":"record","name":"In","fields":[{"name":"a","type":"int"}]}`),
		new:      field(`{"type":"record","name":"In","fields":[{"name":"a","type":"int"},{"name":"b","type":"int"}]}`),
		backward: []string{"READER_FIELD_MISSING_DEFAULT_VALUE at /fields/0/type/fields/1: field 'b'"}},
	{name: "recursive record unchanged",
		old: `{"type":"record","name":"Node","fields":[{"name":"v","type":"int"},{"name":"next","type":["null","Node"],"default":null}]}`,
		new: `{"type":"record","name":"Node","fields":[{"name":"v","type":"int"},{"name":"next","type":["null","Node"],"default":null}]}`},
	{name: "recursive record changes value type",
		old:     `{"type":"record","name":"Node","fields":[{"name":"v","type":"int"},{"name":"next","type":["null","Node"],"default":null}]}`,
		new:     `{"type":"record","name":"Node","fields":[{"name":"v","type":"long"},{"name":"next","type":["null","Node"],"default":null}]}`,
		forward: []string{"TYPE_MISMATCH at /fields/0/type: reader type int cannot read writer type long"}},

	// Primitives and promotions.
	{name: "int to long", old: field(`"int"`), new: field(`"long"`),
		forward: []string{"TYPE_MISMATCH at /fields/0/type", "int cannot read writer type long"}},
	{name: "int to float", old: field(`"int"`), new: field(`"float"`), forward: []string{"TYPE_MISMATCH"}},
	{name: "int to double", old: field(`"int"`), new: field(`"double"`), forward: []string{"TYPE_MISMATCH"}},
	{name: "long to float", old: field(`"long"`), new: field(`"float"`), forward: []string{"TYPE_MISMATCH"}},
	{name: "long to double", old: field(`"long"`), new: field(`"double"`), forward: []string{"TYPE_MISMATCH"}},
	{name: "float to double", old: field(`"float"`), new: field(`"double"`), forward: []string{"TYPE_MISMATCH"}},
	{name: "long to int", old: field(`"long"`), new: field(`"int"`),
		backward: []string{"TYPE_MISMATCH at /fields/0/type: reader type int cannot read writer type long"}},
	{name: "double to float", old: field(`"double"`), new: field(`"float"`), backward: []string{"TYPE_MISMATCH"}},
	{name: "string and bytes", old: field(`"string"`), new: field(`"bytes"`)},
	{name: "int to string", old: field(`"int"`), new: field(`"string"`),
		backward: []string{"TYPE_MISMATCH"}, forward: []string{"TYPE_MISMATCH"}},
	{name: "boolean to int", old: field(`"boolean"`), new: field(`"int"`),
		backward: []string{"reader type int cannot read writer type boolean"}, forward: []string{"TYPE_MISMATCH"}},
	{name: "null to string", old: field(`"null"`), new: field(`"string"`),
		backward: []string{"TYPE_MISMATCH"}, forward: []string{"TYPE_MISMATCH"}},

	// Logical types: only the underlying type counts.
	{name: "add logical type on long", old: field(`"long"`), new: field(`{"type":"long","logicalType":"timestamp-millis"}`)},
	{name: "change logical type, same underlying",
		old: field(`{"type":"long","logicalType":"timestamp-millis"}`), new: field(`{"type":"long","logicalType":"timestamp-micros"}`)},
	{name: "logical type over a promoted type",
		old: field(`{"type":"int","logicalType":"date"}`), new: field(`{"type":"long","logicalType":"timestamp-millis"}`),
		forward: []string{"TYPE_MISMATCH"}},
	{name: "decimal precision change",
		old: field(`{"type":"bytes","logicalType":"decimal","precision":4,"scale":2}`),
		new: field(`{"type":"bytes","logicalType":"decimal","precision":6,"scale":2}`)},

	// Enums.
	{name: "enum add symbol",
		old: field(`{"type":"enum","name":"E","symbols":["A","B"]}`), new: field(`{"type":"enum","name":"E","symbols":["A","B","C"]}`),
		forward: []string{"MISSING_ENUM_SYMBOLS at /fields/0/type/symbols", "lacks writer symbols [C]"}},
	{name: "enum remove symbol",
		old: field(`{"type":"enum","name":"E","symbols":["A","B","C"]}`), new: field(`{"type":"enum","name":"E","symbols":["A","B"]}`),
		backward: []string{"MISSING_ENUM_SYMBOLS", "[C]"}},
	{name: "enum add symbol, reader default",
		old: field(`{"type":"enum","name":"E","symbols":["A","B","U"],"default":"U"}`),
		new: field(`{"type":"enum","name":"E","symbols":["A","B","C","U"],"default":"U"}`)},
	{name: "enum rename",
		old: field(`{"type":"enum","name":"E","symbols":["A"]}`), new: field(`{"type":"enum","name":"F","symbols":["A"]}`),
		backward: []string{"NAME_MISMATCH at /fields/0/type/name"}, forward: []string{"NAME_MISMATCH"}},
	{name: "enum reorder symbols",
		old: field(`{"type":"enum","name":"E","symbols":["A","B"]}`), new: field(`{"type":"enum","name":"E","symbols":["B","A"]}`)},

	// Unions.
	{name: "type to nullable union", old: field(`"string"`), new: fieldDefault(`["null","string"]`, `null`),
		forward: []string{"TYPE_MISMATCH at /fields/0/type: reader type string cannot read writer type null (writer union branch 0)"}},
	{name: "add union branch", old: field(`["null","string"]`), new: field(`["null","string","int"]`),
		forward: []string{"MISSING_UNION_BRANCH at /fields/0/type", "no branch for writer type int (writer union branch 2)"}},
	{name: "remove union branch", old: field(`["null","string","int"]`), new: field(`["null","string"]`),
		backward: []string{"MISSING_UNION_BRANCH", "writer union branch 2"}},
	{name: "reorder union branches", old: field(`["null","string"]`), new: field(`["string","null"]`)},
	{name: "union branch promoted", old: field(`["null","int"]`), new: field(`["null","long"]`),
		forward: []string{"MISSING_UNION_BRANCH", "writer type long"}},
	{name: "int to union with long", old: field(`"int"`), new: field(`["null","long"]`),
		forward: []string{"TYPE_MISMATCH", "writer union branch 0", "int cannot read writer type long (writer union branch 1)"}},
	{name: "record in union gains required field",
		old:      field(`["null",{"type":"record","name":"In","fields":[{"name":"a","type":"int"}]}]`),
		new:      field(`["null",{"type":"record","name":"In","fields":[{"name":"a","type":"int"},{"name":"b","type":"string"}]}]`),
		backward: []string{"READER_FIELD_MISSING_DEFAULT_VALUE at /fields/0/type/1/fields/1: field 'b'"}},
	{name: "union of renamed record",
		old:      field(`["null",{"type":"record","name":"A","fields":[]}]`),
		new:      field(`["null",{"type":"record","name":"B","fields":[]}]`),
		backward: []string{"MISSING_UNION_BRANCH", `record "A"`}, forward: []string{"MISSING_UNION_BRANCH", `record "B"`}},

	// Arrays and maps.
	{name: "array items promoted", old: field(`{"type":"array","items":"int"}`), new: field(`{"type":"array","items":"long"}`),
		forward: []string{"TYPE_MISMATCH at /fields/0/type/items"}},
	{name: "array items changed", old: field(`{"type":"array","items":"int"}`), new: field(`{"type":"array","items":"string"}`),
		backward: []string{"TYPE_MISMATCH at /fields/0/type/items"}, forward: []string{"TYPE_MISMATCH at /fields/0/type/items"}},
	{name: "map values promoted", old: field(`{"type":"map","values":"float"}`), new: field(`{"type":"map","values":"double"}`),
		forward: []string{"TYPE_MISMATCH at /fields/0/type/values"}},
	{name: "array to map", old: field(`{"type":"array","items":"int"}`), new: field(`{"type":"map","values":"int"}`),
		backward: []string{"reader type map cannot read writer type array"}, forward: []string{"TYPE_MISMATCH"}},
	{name: "array of records gains defaulted field",
		old: field(`{"type":"array","items":{"type":"record","name":"I","fields":[{"name":"a","type":"int"}]}}`),
		new: field(`{"type":"array","items":{"type":"record","name":"I","fields":[{"name":"a","type":"int"},{"name":"b","type":"int","default":0}]}}`)},

	// Fixed.
	{name: "fixed same", old: field(`{"type":"fixed","name":"F","size":16}`), new: field(`{"type":"fixed","name":"F","size":16}`)},
	{name: "fixed resize", old: field(`{"type":"fixed","name":"F","size":16}`), new: field(`{"type":"fixed","name":"F","size":8}`),
		backward: []string{"FIXED_SIZE_MISMATCH at /fields/0/type/size", "8 bytes in the reader but 16 in the writer"},
		forward:  []string{"FIXED_SIZE_MISMATCH"}},
	{name: "fixed rename", old: field(`{"type":"fixed","name":"F","size":4}`), new: field(`{"type":"fixed","name":"G","size":4}`),
		backward: []string{"NAME_MISMATCH"}, forward: []string{"NAME_MISMATCH"}},
	{name: "fixed rename with alias",
		old: field(`{"type":"fixed","name":"F","size":4}`), new: field(`{"type":"fixed","name":"G","aliases":["F"],"size":4}`),
		forward: []string{"NAME_MISMATCH"}},
	{name: "fixed to bytes", old: field(`{"type":"fixed","name":"F","size":4}`), new: field(`"bytes"`),
		backward: []string{"TYPE_MISMATCH"}, forward: []string{"TYPE_MISMATCH"}},

	// Top-level primitives and several problems at once.
	{name: "top-level string to bytes", old: `"string"`, new: `"bytes"`},
	{name: "top-level int to string", old: `"int"`, new: `{"type":"string"}`,
		backward: []string{"TYPE_MISMATCH at /: reader type string cannot read writer type int"}, forward: []string{"TYPE_MISMATCH at /"}},
	{name: "several breaks reported together",
		old:      `{"type":"record","name":"R","fields":[{"name":"a","type":"int"},{"name":"b","type":"string"}]}`,
		new:      `{"type":"record","name":"R","fields":[{"name":"a","type":"string"},{"name":"b","type":"string"},{"name":"c","type":"int"}]}`,
		backward: []string{"TYPE_MISMATCH at /fields/0/type", "READER_FIELD_MISSING_DEFAULT_VALUE at /fields/2: field 'c'"},
		forward:  []string{"TYPE_MISMATCH at /fields/0/type"}},
}

func mustParse(t *testing.T, text string) *Schema {
	t.Helper()
	s, err := Parse(text, nil)
	if err != nil {
		t.Fatalf("parse %s: %v", text, err)
	}
	return s
}

func checkVerdict(t *testing.T, mode string, got, want []string) {
	t.Helper()
	if len(want) == 0 {
		if len(got) != 0 {
			t.Errorf("%s: want compatible, got %q", mode, got)
		}
		return
	}
	if len(got) == 0 {
		t.Errorf("%s: want incompatible (%q), got compatible", mode, want)
		return
	}
	all := strings.Join(got, "\n")
	for _, w := range want {
		if !strings.Contains(all, w) {
			t.Errorf("%s: messages %q lack %q", mode, got, w)
		}
	}
}

func TestCompatibilityCorpus(t *testing.T) {
	f := New()
	for _, tc := range compatCorpus {
		t.Run(tc.name, func(t *testing.T) {
			oldS, newS := mustParse(t, tc.old), mustParse(t, tc.new)
			backward := f.CanRead(newS, oldS)
			forward := f.CanRead(oldS, newS)
			checkVerdict(t, "BACKWARD", backward, tc.backward)
			checkVerdict(t, "FORWARD", forward, tc.forward)
			full := append(append([]string(nil), backward...), forward...)
			checkVerdict(t, "FULL", full, append(append([]string(nil), tc.backward...), tc.forward...))
			// The schema's own CanRead is the format's.
			if got := newS.CanRead(newS, oldS); strings.Join(got, "\n") != strings.Join(backward, "\n") {
				t.Errorf("Schema.CanRead = %q, Format.CanRead = %q", got, backward)
			}
		})
	}
	if len(compatCorpus) < 40 {
		t.Errorf("corpus has %d pairs, want at least 40", len(compatCorpus))
	}
}

func TestCanReadForeignSchema(t *testing.T) {
	s := mustParse(t, `"int"`)
	got := New().CanRead(s, foreignSchema{})
	checkVerdict(t, "writer", got, []string{"TYPE_MISMATCH at /: writer schema is not an Avro schema"})
	got = New().CanRead(foreignSchema{}, s)
	checkVerdict(t, "reader", got, []string{"reader schema is not an Avro schema"})
}

type foreignSchema struct{}

func (foreignSchema) Canonical() string          { return "" }
func (foreignSchema) Normalized() string         { return "" }
func (foreignSchema) Decode([]byte) (any, error) { return nil, nil }
