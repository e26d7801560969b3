package protobuf

import (
	"strings"
	"testing"

	"github.com/runnel-dev/runnel/internal/registry"
)

func mustParse(t *testing.T, text string, refs ...registry.ResolvedReference) *Schema {
	t.Helper()
	s, err := Format{}.Parse(text, refs)
	if err != nil {
		t.Fatalf("parse: %v\n%s", err, text)
	}
	return s.(*Schema)
}

// p3 wraps message declarations in a proto3 file of package pkg.
func p3(body string) string { return "syntax = \"proto3\";\npackage pkg;\n" + body }

// p2 wraps message declarations in a proto2 file of package pkg.
func p2(body string) string { return "syntax = \"proto2\";\npackage pkg;\n" + body }

// TestCompatibilityCorpus checks old → new schema pairs. backward lists
// substrings of the messages expected from CanRead(new, old), forward
// those from CanRead(old, new); none means compatible. FULL is both.
func TestCompatibilityCorpus(t *testing.T) {
	cases := []struct {
		name     string
		old, new string
		backward []string
		forward  []string
	}{
		{name: "identical",
			old: p3(`message Order { string id = 1; }`),
			new: p3(`message Order { string id = 1; }`)},
		{name: "field added",
			old: p3(`message Order { string id = 1; }`),
			new: p3(`message Order { string id = 1; int64 qty = 2; }`)},
		{name: "field removed without reserving",
			old: p3(`message Order { string id = 1; int64 qty = 2; }`),
			new: p3(`message Order { string id = 1; }`)},
		{name: "field removed and reserved",
			old: p3(`message Order { string id = 1; int64 qty = 2; }`),
			new: p3(`message Order { string id = 1; reserved 2; reserved "qty"; }`)},
		{name: "field renamed",
			old: p3(`message Order { string id = 1; }`),
			new: p3(`message Order { string order_id = 1; }`)},
		{name: "int32 to int64",
			old: p3(`message Order { int32 qty = 1; }`),
			new: p3(`message Order { int64 qty = 1; }`)},
		{name: "uint32 to bool and uint64",
			old: p3(`message Order { uint32 a = 1; uint32 b = 2; }`),
			new: p3(`message Order { bool a = 1; uint64 b = 2; }`)},
		{name: "sint32 to sint64",
			old: p3(`message Order { sint32 a = 1; }`),
			new: p3(`message Order { sint64 a = 1; }`)},
		{name: "fixed32 to sfixed32, fixed64 to sfixed64",
			old: p3(`message Order { fixed32 a = 1; fixed64 b = 2; }`),
			new: p3(`message Order { sfixed32 a = 1; sfixed64 b = 2; }`)},
		{name: "string to bytes",
			old: p3(`message Order { string a = 1; }`),
			new: p3(`message Order { bytes a = 1; }`)},
		{name: "string to int32",
			old:      p3(`message Order { string a = 1; string b = 2; int32 c = 3; }`),
			new:      p3(`message Order { string a = 1; string b = 2; string c = 3; }`),
			backward: []string{"FIELD_TYPE_CHANGED at message .pkg.Order field 3: int32 -> string"},
			forward:  []string{"FIELD_TYPE_CHANGED at message .pkg.Order field 3: string -> int32"}},
		{name: "int32 to sint32",
			old:      p3(`message Order { int32 a = 1; }`),
			new:      p3(`message Order { sint32 a = 1; }`),
			backward: []string{"FIELD_TYPE_CHANGED at message .pkg.Order field 1: int32 -> sint32"},
			forward:  []string{"FIELD_TYPE_CHANGED at message .pkg.Order field 1: sint32 -> int32"}},
		{name: "fixed32 to fixed64",
			old:      p3(`message Order { fixed32 a = 1; }`),
			new:      p3(`message Order { fixed64 a = 1; }`),
			backward: []string{"FIELD_TYPE_CHANGED", "fixed32 -> fixed64"},
			forward:  []string{"FIELD_TYPE_CHANGED", "fixed64 -> fixed32"}},
		{name: "float to double",
			old:      p3(`message Order { float a = 1; }`),
			new:      p3(`message Order { double a = 1; }`),
			backward: []string{"FIELD_TYPE_CHANGED", "float -> double"},
			forward:  []string{"FIELD_TYPE_CHANGED", "double -> float"}},
		{name: "scalar to message",
			old:      p3(`message Order { string a = 1; } message Money { int64 u = 1; }`),
			new:      p3(`message Order { Money a = 1; } message Money { int64 u = 1; }`),
			backward: []string{"FIELD_KIND_CHANGED at message .pkg.Order field 1: string -> message .pkg.Money"},
			forward:  []string{"FIELD_KIND_CHANGED at message .pkg.Order field 1: message .pkg.Money -> string"}},
		{name: "enum to int32",
			old:      p3(`enum S { A = 0; } message Order { S s = 1; }`),
			new:      p3(`enum S { A = 0; } message Order { int32 s = 1; }`),
			backward: []string{"FIELD_KIND_CHANGED", "enum .pkg.S -> int32"},
			forward:  []string{"FIELD_KIND_CHANGED", "int32 -> enum .pkg.S"}},
		{name: "message field names another message",
			old:      p3(`message A { string x = 1; } message B { string x = 1; } message Order { A m = 1; }`),
			new:      p3(`message A { string x = 1; } message B { string x = 1; } message Order { B m = 1; }`),
			backward: []string{"FIELD_NAMED_TYPE_CHANGED at message .pkg.Order field 1: .pkg.A -> .pkg.B"},
			forward:  []string{"FIELD_NAMED_TYPE_CHANGED at message .pkg.Order field 1: .pkg.B -> .pkg.A"}},
		{name: "enum field names another enum",
			old:      p3(`enum E { E0 = 0; } enum F { F0 = 0; } message Order { E e = 1; }`),
			new:      p3(`enum E { E0 = 0; } enum F { F0 = 0; } message Order { F e = 1; }`),
			backward: []string{"FIELD_NAMED_TYPE_CHANGED", ".pkg.E -> .pkg.F"},
			forward:  []string{"FIELD_NAMED_TYPE_CHANGED", ".pkg.F -> .pkg.E"}},
		{name: "message removed",
			old:      p3(`message Order { string id = 1; } message Extra { string x = 1; }`),
			new:      p3(`message Order { string id = 1; }`),
			backward: []string{"MESSAGE_REMOVED at message .pkg.Extra"}},
		{name: "message renamed",
			old: p3(`message Order { string id = 1; }`),
			new: p3(`message Purchase { string id = 1; }`),
			backward: []string{"MESSAGE_REMOVED at message .pkg.Order: message index [0] selects .pkg.Order in the writer " +
				"and .pkg.Purchase in the reader, which has no message Order (renamed or moved)"},
			forward: []string{"MESSAGE_REMOVED at message .pkg.Purchase: message index [0] selects .pkg.Purchase in the writer " +
				"and .pkg.Order in the reader, which has no message Purchase (renamed or moved)"}},
		{name: "message renamed and a field changed",
			old: p3(`message Header { string v = 1; } message Order { string id = 1; int32 qty = 2; }`),
			new: p3(`message Header { string v = 1; } message Purchase { string id = 1; string qty = 2; }`),
			backward: []string{"MESSAGE_REMOVED at message .pkg.Order: message index [1] selects .pkg.Order in the writer and .pkg.Purchase in the reader",
				"FIELD_TYPE_CHANGED at message .pkg.Order field 2: int32 -> string"},
			forward: []string{"MESSAGE_REMOVED at message .pkg.Purchase: message index [1]",
				"FIELD_TYPE_CHANGED at message .pkg.Purchase field 2: string -> int32"}},
		{name: "nested message renamed",
			old:      p3(`message Order { map<string, string> tags = 1; message Line { string sku = 1; } }`),
			new:      p3(`message Order { map<string, string> tags = 1; message Item { string sku = 1; } }`),
			backward: []string{"MESSAGE_REMOVED at message .pkg.Order.Line: message index [0 1] selects .pkg.Order.Line in the writer and .pkg.Order.Item in the reader"},
			forward:  []string{"MESSAGE_REMOVED at message .pkg.Order.Item: message index [0 1] selects .pkg.Order.Item in the writer and .pkg.Order.Line in the reader"}},
		{name: "message moved into another message",
			old: p3(`message Order { repeated Line lines = 1; } message Line { string sku = 1; }`),
			new: p3(`message Order { repeated Line lines = 1; message Line { string sku = 1; } }`),
			backward: []string{"MESSAGE_REMOVED at message .pkg.Line: message Line moved from .pkg.Line (message index [1]) to .pkg.Order.Line (message index [0 0])",
				"FIELD_NAMED_TYPE_CHANGED at message .pkg.Order field 1: .pkg.Line -> .pkg.Order.Line"},
			forward: []string{"MESSAGE_REMOVED at message .pkg.Order.Line: message Line moved from .pkg.Order.Line (message index [0 0]) to .pkg.Line (message index [1])",
				"FIELD_NAMED_TYPE_CHANGED at message .pkg.Order field 1: .pkg.Order.Line -> .pkg.Line"}},
		{name: "message moved and its field changed",
			old: p3(`message Order { } message Line { string sku = 1; }`),
			new: p3(`message Order { message Line { int64 sku = 1; } }`),
			backward: []string{"MESSAGE_REMOVED at message .pkg.Line: message Line moved from .pkg.Line (message index [1]) to .pkg.Order.Line (message index [0 0])",
				"FIELD_TYPE_CHANGED at message .pkg.Line field 1: string -> int64"},
			forward: []string{"MESSAGE_REMOVED at message .pkg.Order.Line: message Line moved from .pkg.Order.Line (message index [0 0]) to .pkg.Line (message index [1])",
				"FIELD_TYPE_CHANGED at message .pkg.Order.Line field 1: int64 -> string"}},
		{name: "messages reordered keep their names",
			old: p3(`message Order { string id = 1; Line l = 2; } message Line { string sku = 1; }`),
			new: p3(`message Line { string sku = 1; } message Order { string id = 1; Line l = 2; }`)},
		{name: "message inserted before the first",
			old:     p3(`message Order { string id = 1; }`),
			new:     p3(`message Header { string v = 1; } message Order { string id = 1; }`),
			forward: []string{"MESSAGE_REMOVED at message .pkg.Header: the reader has no message Header"}},
		{name: "message removed and the next one shifted into its index",
			old:      p3(`message Extra { string x = 1; } message Order { string id = 1; }`),
			new:      p3(`message Order { string id = 1; }`),
			backward: []string{"MESSAGE_REMOVED at message .pkg.Extra: the reader has no message Extra"}},
		{name: "message of an ambiguous simple name is removed",
			old:      p3(`message Line { string sku = 1; } message A { } message B { }`),
			new:      p3(`message A { message Line { string sku = 1; } } message B { message Line { string sku = 1; } }`),
			backward: []string{"MESSAGE_REMOVED at message .pkg.Line: the reader has no message Line"},
			forward:  []string{"MESSAGE_REMOVED at message .pkg.A.Line", "MESSAGE_REMOVED at message .pkg.B.Line"}},
		{name: "nested message removed",
			old:      p3(`message Order { message Line { string sku = 1; } repeated Line lines = 1; }`),
			new:      p3(`message Order { reserved 1; }`),
			backward: []string{"MESSAGE_REMOVED at message .pkg.Order.Line"}},
		{name: "nested field type changed",
			old:      p3(`message Order { message Line { string sku = 1; double price = 2; } }`),
			new:      p3(`message Order { message Line { string sku = 1; int64 price = 2; } }`),
			backward: []string{"FIELD_TYPE_CHANGED at message .pkg.Order.Line field 2: double -> int64"},
			forward:  []string{"FIELD_TYPE_CHANGED at message .pkg.Order.Line field 2: int64 -> double"}},
		{name: "package renamed",
			old: "syntax = \"proto3\";\npackage a.v1;\nmessage Order { Line l = 1; } message Line { string s = 1; }",
			new: "syntax = \"proto3\";\npackage a.v2;\nmessage Order { Line l = 1; } message Line { string s = 1; }"},
		{name: "syntax proto2 to proto3",
			old: p2(`message Order { optional string id = 1; repeated int32 n = 2 [packed = true]; }`),
			new: p3(`message Order { string id = 1; repeated int32 n = 2; }`)},
		{name: "enum value added, removed and renumbered",
			old: p3(`enum S { A = 0; B = 1; C = 2; } message Order { S s = 1; }`),
			new: p3(`enum S { A = 0; C = 3; D = 4; } message Order { S s = 1; }`)},
		{name: "enum removed with its last use",
			old: p3(`enum S { A = 0; } message Order { S s = 1; }`),
			new: p3(`message Order { }`)},
		{name: "single field into a new oneof",
			old: p3(`message Order { string card = 1; string id = 2; }`),
			new: p3(`message Order { oneof pay { string card = 1; } string id = 2; }`)},
		{name: "single field into a new oneof with new members",
			old:     p3(`message Order { string card = 1; }`),
			new:     p3(`message Order { oneof pay { string card = 1; int64 cash = 2; } }`),
			forward: []string{"FIELD_MOVED_OUT_OF_ONEOF at message .pkg.Order field 1"}},
		{name: "several fields into a new oneof",
			old:      p3(`message Order { string card = 1; int64 cash = 2; }`),
			new:      p3(`message Order { oneof pay { string card = 1; int64 cash = 2; } }`),
			backward: []string{"MULTIPLE_FIELDS_MOVED_TO_ONEOF at message .pkg.Order oneof pay"},
			forward:  []string{"FIELD_MOVED_OUT_OF_ONEOF at message .pkg.Order field 1", "FIELD_MOVED_OUT_OF_ONEOF at message .pkg.Order field 2"}},
		{name: "field into an existing oneof",
			old:      p3(`message Order { oneof pay { string card = 1; } int64 cash = 2; }`),
			new:      p3(`message Order { oneof pay { string card = 1; int64 cash = 2; } }`),
			backward: []string{"FIELD_MOVED_TO_EXISTING_ONEOF at message .pkg.Order field 2"},
			forward:  []string{"FIELD_MOVED_OUT_OF_ONEOF at message .pkg.Order field 2"}},
		{name: "oneof member removed",
			old:      p3(`message Order { oneof pay { string card = 1; int64 cash = 2; } }`),
			new:      p3(`message Order { oneof pay { string card = 1; } }`),
			backward: []string{"ONEOF_FIELD_REMOVED at message .pkg.Order field 2"}},
		{name: "oneof added with new fields",
			old: p3(`message Order { string id = 1; }`),
			new: p3(`message Order { string id = 1; oneof pay { string card = 2; int64 cash = 3; } }`)},
		{name: "proto3 optional added",
			old: p3(`message Order { int32 qty = 1; }`),
			new: p3(`message Order { optional int32 qty = 1; optional string note = 2; }`)},
		{name: "proto2 required field added",
			old:      p2(`message Order { optional string id = 1; }`),
			new:      p2(`message Order { optional string id = 1; required int32 qty = 2; }`),
			backward: []string{"REQUIRED_FIELD_ADDED at message .pkg.Order field 2"},
			forward:  []string{"REQUIRED_FIELD_REMOVED at message .pkg.Order field 2"}},
		{name: "proto2 optional made required",
			old:      p2(`message Order { optional string id = 1; }`),
			new:      p2(`message Order { required string id = 1; }`),
			backward: []string{"REQUIRED_FIELD_ADDED at message .pkg.Order field 1"},
			forward:  []string{"REQUIRED_FIELD_REMOVED at message .pkg.Order field 1"}},
		{name: "numeric singular to repeated",
			old:      p3(`message Order { int32 qty = 1; }`),
			new:      p3(`message Order { repeated int32 qty = 1; }`),
			backward: []string{"FIELD_NUMERIC_LABEL_CHANGED at message .pkg.Order field 1: singular -> repeated"},
			forward:  []string{"FIELD_NUMERIC_LABEL_CHANGED at message .pkg.Order field 1: repeated -> singular"}},
		{name: "string and message singular to repeated",
			old: p3(`message M { int32 x = 1; } message Order { string a = 1; M m = 2; }`),
			new: p3(`message M { int32 x = 1; } message Order { repeated string a = 1; repeated M m = 2; }`)},
		{name: "map value type changed",
			old:      p3(`message Order { map<string, string> tags = 1; }`),
			new:      p3(`message Order { map<string, int32> tags = 1; }`),
			backward: []string{"FIELD_TYPE_CHANGED at message .pkg.Order field 1 value: string -> int32"},
			forward:  []string{"FIELD_TYPE_CHANGED at message .pkg.Order field 1 value: int32 -> string"}},
		{name: "map key int32 to int64",
			old: p3(`message Order { map<int32, string> tags = 1; }`),
			new: p3(`message Order { map<int64, string> tags = 1; }`)},
		{name: "map to repeated message",
			old:      p3(`message E { string key = 1; string value = 2; } message Order { map<string, string> tags = 1; }`),
			new:      p3(`message E { string key = 1; string value = 2; } message Order { repeated E tags = 1; }`),
			backward: []string{"FIELD_KIND_CHANGED at message .pkg.Order field 1: map<string, string> -> message .pkg.E"},
			forward:  []string{"FIELD_KIND_CHANGED at message .pkg.Order field 1: message .pkg.E -> map<string, string>"}},
		{name: "imported message type renamed",
			old:      `syntax = "proto3"; package pkg; import "google/protobuf/timestamp.proto"; message Order { google.protobuf.Timestamp at = 1; }`,
			new:      `syntax = "proto3"; package pkg; import "google/protobuf/duration.proto"; message Order { google.protobuf.Duration at = 1; }`,
			backward: []string{"FIELD_NAMED_TYPE_CHANGED at message .pkg.Order field 1: .google.protobuf.Timestamp -> .google.protobuf.Duration"},
			forward:  []string{"FIELD_NAMED_TYPE_CHANGED"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			oldS, newS := mustParse(t, tc.old), mustParse(t, tc.new)
			check := func(mode string, got, want []string) {
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
				joined := strings.Join(got, "\n")
				for _, w := range want {
					if !strings.Contains(joined, w) {
						t.Errorf("%s: messages %q lack %q", mode, got, w)
					}
				}
			}
			backward := Format{}.CanRead(newS, oldS)
			forward := Format{}.CanRead(oldS, newS)
			check("BACKWARD", backward, tc.backward)
			check("FORWARD", forward, tc.forward)
			full := append(append([]string(nil), backward...), forward...)
			check("FULL", full, append(append([]string(nil), tc.backward...), tc.forward...))
		})
	}
}

func TestCanReadOtherFormat(t *testing.T) {
	s := mustParse(t, p3(`message A { string x = 1; }`))
	got := s.CanRead(s, fakeSchema{})
	if len(got) != 1 || !strings.Contains(got[0], "SCHEMA_TYPE_CHANGED") {
		t.Fatalf("got %q", got)
	}
}

type fakeSchema struct{}

func (fakeSchema) Canonical() string            { return "" }
func (fakeSchema) Normalized() string           { return "" }
func (fakeSchema) Decode(b []byte) (any, error) { return nil, nil }
