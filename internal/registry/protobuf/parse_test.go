package protobuf

import (
	"encoding/base64"
	"errors"
	"regexp"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/descriptorpb"

	"github.com/runnel-dev/runnel/internal/registry"
)

func TestType(t *testing.T) {
	if got := New().Type(); got != "PROTOBUF" {
		t.Fatalf("Type() = %q", got)
	}
}

func TestParseInvalid(t *testing.T) {
	cases := []struct {
		name string
		text string
		refs []registry.ResolvedReference
		want string // substring of the error
	}{
		{name: "syntax error", text: "syntax = \"proto3\";\nmessage A {\n  string x = ;\n}\n", want: "schema.proto:3:"},
		{name: "unknown type", text: "syntax = \"proto3\";\nmessage A { strin x = 1; }", want: "unknown type strin"},
		{name: "missing import", text: "syntax = \"proto3\";\nimport \"missing.proto\";\nmessage A { }", want: "missing.proto"},
		{name: "duplicate field number", text: "syntax = \"proto3\";\nmessage A { string x = 1; string y = 1; }", want: "schema.proto:2:"},
		{name: "bad syntax version", text: "syntax = \"proto4\";", want: `must be "proto2" or "proto3"`},
		{name: "invalid reference", text: "syntax = \"proto3\";\nimport \"a.proto\";\nmessage A { B b = 1; }",
			refs: []registry.ResolvedReference{{Name: "a.proto", Schema: "syntax = \"proto3\"; message B { int x = 1; }"}},
			want: "a.proto:1:"},
		{name: "reference without a name", text: "syntax = \"proto3\";",
			refs: []registry.ResolvedReference{{Subject: "s", Version: 1, Schema: "syntax = \"proto3\";"}},
			want: "has no name"},
		{name: "one reference name, two texts", text: "syntax = \"proto3\";\nimport \"a.proto\";\nimport \"b.proto\";",
			refs: []registry.ResolvedReference{
				{Name: "a.proto", Schema: "syntax = \"proto3\"; import \"c.proto\";", Refs: []registry.ResolvedReference{{Name: "c.proto", Schema: "syntax = \"proto3\"; message C {}"}}},
				{Name: "b.proto", Schema: "syntax = \"proto3\"; import \"c.proto\";", Refs: []registry.ResolvedReference{{Name: "c.proto", Schema: "syntax = \"proto3\"; message D {}"}}},
			},
			want: "given twice"},
		{name: "import cycle", text: "syntax = \"proto3\";\nimport \"a.proto\";",
			refs: []registry.ResolvedReference{{Name: "a.proto", Schema: "syntax = \"proto3\"; import \"b.proto\";",
				Refs: []registry.ResolvedReference{{Name: "b.proto", Schema: "syntax = \"proto3\"; import \"a.proto\";"}}}},
			want: "cycle"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Format{}.Parse(tc.text, tc.refs)
			if !errors.Is(err, registry.ErrInvalidSchema) {
				t.Fatalf("err = %v, want ErrInvalidSchema", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tc.want)
			}
		})
	}
}

func TestParseErrorHasPosition(t *testing.T) {
	_, err := Format{}.Parse("syntax = \"proto3\";\nmessage A {\n  strin x = 1;\n}\n", nil)
	if err == nil || !regexp.MustCompile(`schema\.proto:\d+:\d+`).MatchString(err.Error()) {
		t.Fatalf("err = %v, want file:line:col", err)
	}
}

func TestNestedReferences(t *testing.T) {
	money := registry.ResolvedReference{Name: "common/money.proto", Subject: "money", Version: 1,
		Schema: "syntax = \"proto3\";\npackage common;\nmessage Money { int64 units = 1; string currency = 2; }"}
	line := registry.ResolvedReference{Name: "shop/line.proto", Subject: "line", Version: 2,
		Schema: "syntax = \"proto3\";\npackage shop;\nimport \"common/money.proto\";\nmessage Line { string sku = 1; common.Money price = 2; }",
		Refs:   []registry.ResolvedReference{money}}
	s := mustParse(t, `syntax = "proto3";
package shop;
import "shop/line.proto";
import "google/protobuf/timestamp.proto";
message Order { repeated Line lines = 1; google.protobuf.Timestamp at = 2; }`, line)
	if !strings.Contains(s.Canonical(), "repeated .shop.Line lines = 1;") {
		t.Fatalf("canonical:\n%s", s.Canonical())
	}
	// The root file may also be given a reference's name: it must not
	// shadow it.
	s2 := mustParse(t, "syntax = \"proto3\";\nimport \"schema.proto\";\nmessage Outer { Inner i = 1; }",
		registry.ResolvedReference{Name: "schema.proto", Schema: "syntax = \"proto3\";\nmessage Inner {}"})
	if !strings.Contains(s2.Canonical(), "import \"schema.proto\";") {
		t.Fatalf("canonical:\n%s", s2.Canonical())
	}
}

func TestWellKnownTypesNeedNoReferences(t *testing.T) {
	mustParse(t, `syntax = "proto3";
package pkg;
import "google/protobuf/any.proto";
import "google/protobuf/duration.proto";
import "google/protobuf/empty.proto";
import "google/protobuf/field_mask.proto";
import "google/protobuf/struct.proto";
import "google/protobuf/timestamp.proto";
import "google/protobuf/wrappers.proto";
import "google/protobuf/descriptor.proto";
message All {
  google.protobuf.Any any = 1;
  google.protobuf.Duration d = 2;
  google.protobuf.Empty e = 3;
  google.protobuf.FieldMask m = 4;
  google.protobuf.Struct s = 5;
  google.protobuf.Timestamp t = 6;
  google.protobuf.StringValue w = 7;
  google.protobuf.Value v = 8;
  google.protobuf.FileDescriptorProto fd = 9;
}`)
}

func TestCanonicalIgnoresFormatting(t *testing.T) {
	a := mustParse(t, `syntax = "proto3";
package pkg;
import "google/protobuf/timestamp.proto";
// An order.
message Order {
  string id = 1; // the id
  google.protobuf.Timestamp at = 2;
  map<string, int64> tags = 3;
  oneof pay { string card = 4; int64 cash = 5; }
}`)
	b := mustParse(t, `
/* a block comment */
syntax="proto3" ;package   pkg ;import
"google/protobuf/timestamp.proto";message Order{string id=1;.google.protobuf.Timestamp at=2;
map < string , int64 > tags = 3 ; oneof pay{string card=4;int64 cash=5;}}`)
	if a.Canonical() != b.Canonical() {
		t.Fatalf("canonical differs:\n%s\n---\n%s", a.Canonical(), b.Canonical())
	}
	if a.Normalized() != b.Normalized() {
		t.Fatalf("normalized differs")
	}
}

func TestNormalizedOrders(t *testing.T) {
	a := mustParse(t, `syntax = "proto3";
package pkg;
import "google/protobuf/timestamp.proto";
import "google/protobuf/duration.proto";
option java_package = "x";
option go_package = "y";
message First { int64 b = 2 [deprecated = true, json_name = "bee"]; string a = 1; reserved 9, 7; }
message Second { }`)
	b := mustParse(t, `syntax = "proto3";
package pkg;
import "google/protobuf/duration.proto";
import "google/protobuf/timestamp.proto";
option go_package = "y";
option java_package = "x";
message First { string a = 1; int64 b = 2 [json_name = "bee", deprecated = true]; reserved 7, 9; }
message Second { }`)
	if a.Canonical() == b.Canonical() {
		t.Fatalf("canonical texts should keep declaration order and differ")
	}
	if a.Normalized() != b.Normalized() {
		t.Fatalf("normalized differs:\n%s\n---\n%s", a.Normalized(), b.Normalized())
	}
	// Message order is meaningful (message indexes) and is kept.
	c := mustParse(t, `syntax = "proto3";
package pkg;
import "google/protobuf/duration.proto";
import "google/protobuf/timestamp.proto";
option go_package = "y";
option java_package = "x";
message Second { }
message First { string a = 1; int64 b = 2 [json_name = "bee", deprecated = true]; reserved 7, 9; }`)
	if c.Normalized() == b.Normalized() {
		t.Fatalf("normalized text must keep message order")
	}
}

// TestCanonicalRoundTrip parses each schema, then its canonical and
// normalized texts, and expects the same renderings back.
func TestCanonicalRoundTrip(t *testing.T) {
	cases := map[string]string{
		"proto3 everything": `syntax = "proto3";
package shop.v1;
import "google/protobuf/timestamp.proto";
import "google/protobuf/descriptor.proto";
option java_package = "com.shop";
option java_multiple_files = true;
option optimize_for = SPEED;
extend google.protobuf.FieldOptions { string pii = 50001; repeated int32 tags = 50002; }
extend google.protobuf.MessageOptions { Meta meta = 50003; }
message Meta { string owner = 1; repeated string labels = 2; double weight = 3; bytes raw = 4; }
message Order {
  option (meta) = { owner: "team \"a\"" labels: ["x", "y"] weight: 1.5 raw: "\001\377" };
  string id = 1 [json_name = "ID", (pii) = "yes", (tags) = 1, (tags) = 2];
  repeated Line lines = 2;
  map<string, Line> by_sku = 3;
  google.protobuf.Timestamp at = 4;
  optional int32 qty = 5;
  oneof pay { string card = 6; int64 cash = 7 [deprecated = true]; }
  Status status = 8;
  reserved 10, 12 to 15, 100 to max;
  reserved "old", "older";
  message Line { string sku = 1; double price = 2; float f = 3; }
  enum Status { option allow_alias = true; UNKNOWN = 0; OK = 1; FINE = 1 [deprecated = true]; reserved 5 to 9; reserved "GONE"; }
}
service Shop {
  option deprecated = true;
  rpc Get(Order) returns (stream Order);
  rpc Put(stream Order) returns (Order) { option idempotency_level = IDEMPOTENT; }
}`,
		"proto2 groups defaults extensions": `syntax = "proto2";
package legacy;
message Item {
  required string id = 1;
  optional int32 count = 2 [default = -3];
  optional string name = 3 [default = "a\tb\n"];
  optional double ratio = 4 [default = inf];
  optional Kind kind = 5 [default = B];
  optional bytes blob = 6 [default = "\000\001"];
  repeated group Part = 7 { optional string label = 1; }
  extensions 100 to 199;
  extensions 1000 to max;
  enum Kind { A = 1; B = 2; }
}
extend Item { optional string note = 100; }
message Holder { extend Item { optional int64 extra = 101; } }`,
		"editions": `edition = "2023";
package ed;
option features.field_presence = IMPLICIT;
message M {
  string a = 1;
  int32 b = 2 [features.field_presence = EXPLICIT];
  repeated int32 c = 3 [features.repeated_field_encoding = EXPANDED];
  reserved d, e;
}`,
		"no package": `syntax = "proto3"; message A { B b = 1; } message B { }`,
	}
	for name, text := range cases {
		t.Run(name, func(t *testing.T) {
			s := mustParse(t, text)
			c := mustParse(t, s.Canonical())
			if c.Canonical() != s.Canonical() {
				t.Fatalf("canonical is not stable:\n%s\n---\n%s", s.Canonical(), c.Canonical())
			}
			n := mustParse(t, s.Normalized())
			if n.Normalized() != s.Normalized() {
				t.Fatalf("normalized is not stable:\n%s\n---\n%s", s.Normalized(), n.Normalized())
			}
		})
	}
}

func TestCanonicalContent(t *testing.T) {
	s := mustParse(t, `syntax = "proto3";
package pkg;
import "google/protobuf/descriptor.proto";
extend google.protobuf.FieldOptions { string pii = 50001; }
message A { string x = 1 [(pii) = "yes"]; B b = 2; message B {} }`)
	for _, want := range []string{
		`syntax = "proto3";`,
		`package pkg;`,
		`string x = 1 [(pkg.pii) = "yes"];`,
		`.pkg.A.B b = 2;`,
		`extend .google.protobuf.FieldOptions {`,
	} {
		if !strings.Contains(s.Canonical(), want) {
			t.Errorf("canonical lacks %q:\n%s", want, s.Canonical())
		}
	}
}

// TestParseBase64Descriptor accepts a schema sent as a base64-encoded
// FileDescriptorProto, as Confluent's serializers register it, and gives
// the same canonical text as the equivalent .proto source.
func TestParseBase64Descriptor(t *testing.T) {
	// FileDescriptorProto{name: "user.proto", syntax: "proto3",
	// message User { string name = 1; }}
	const b64 = "Cgp1c2VyLnByb3RvIhQKBFVzZXISDAoEbmFtZRgBIAEoCWIGcHJvdG8z"
	fromDesc, err := New().Parse(b64, nil)
	if err != nil {
		t.Fatal(err)
	}
	fromText, err := New().Parse("syntax = \"proto3\";\nmessage User { string name = 1; }\n", nil)
	if err != nil {
		t.Fatal(err)
	}
	if fromDesc.Canonical() != fromText.Canonical() {
		t.Fatalf("canonical texts differ:\n%s\n---\n%s", fromDesc.Canonical(), fromText.Canonical())
	}
	// The registry stores (and serves) a descriptor as .proto text, text as
	// sent.
	if got := fromDesc.(registry.TextStorer).StoredText(b64); got != fromText.Canonical() {
		t.Fatalf("stored text of a descriptor: %q", got)
	}
	if got := fromText.(registry.TextStorer).StoredText("as sent"); got != "as sent" {
		t.Fatalf("stored text of .proto source: %q", got)
	}
	// Runtimes that build descriptors themselves may leave json_name unset
	// or empty; that means the default name, not a custom "" one.
	field := func(name string, n int32, json *string) *descriptorpb.FieldDescriptorProto {
		return &descriptorpb.FieldDescriptorProto{Name: proto.String(name), Number: proto.Int32(n), JsonName: json,
			Type: descriptorpb.FieldDescriptorProto_TYPE_STRING.Enum(), Label: descriptorpb.FieldDescriptorProto_LABEL_OPTIONAL.Enum()}
	}
	bare, _ := proto.Marshal(&descriptorpb.FileDescriptorProto{Name: proto.String("order.proto"), Syntax: proto.String("proto3"),
		MessageType: []*descriptorpb.DescriptorProto{{Name: proto.String("Order"),
			Field: []*descriptorpb.FieldDescriptorProto{field("id", 1, proto.String("")), field("sku", 2, nil)}}}})
	if _, err := New().Parse(base64.StdEncoding.EncodeToString(bare), nil); err != nil {
		t.Fatalf("descriptor without json names: %v", err)
	}
	if _, err := New().Parse("bm90IGEgZGVzY3JpcHRvcg==", nil); !errors.Is(err, registry.ErrInvalidSchema) {
		t.Fatalf("base64 that is not a descriptor: %v, want ErrInvalidSchema", err)
	}
}
