package protobuf

import (
	"reflect"
	"sort"
	"strconv"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/runnel-dev/runnel/internal/registry"
)

// TestKnownImportsCompile imports every built-in file on its own.
func TestKnownImportsCompile(t *testing.T) {
	paths := make([]string, 0, len(knownImports)+len(googleTypes))
	for p := range knownImports {
		paths = append(paths, p)
	}
	for p := range googleTypes {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		t.Run(p, func(t *testing.T) {
			s := mustParse(t, "syntax = \"proto3\";\nimport \""+p+"\";\n")
			if imp := s.File().Imports(); imp.Len() != 1 || imp.Get(0).Path() != p {
				t.Fatalf("imports of the compiled file: %v", imp)
			}
		})
	}
}

// TestConfluentImportsShape pins the names and numbers Confluent publishes
// for confluent/meta.proto and confluent/type/decimal.proto: they are what
// option text and the wire carry.
func TestConfluentImportsShape(t *testing.T) {
	s := mustParse(t, `syntax = "proto3";
import "confluent/meta.proto";
import "confluent/type/decimal.proto";`)
	imps := s.File().Imports()
	files := map[string]protoreflect.FileDescriptor{}
	for i := 0; i < imps.Len(); i++ {
		files[imps.Get(i).Path()] = imps.Get(i).FileDescriptor
	}
	fields := func(md protoreflect.MessageDescriptor) map[string]string {
		out := map[string]string{}
		for i := 0; i < md.Fields().Len(); i++ {
			fd := md.Fields().Get(i)
			kind := fd.Kind().String()
			switch {
			case fd.IsMap():
				kind = "map<" + fd.MapKey().Kind().String() + "," + fd.MapValue().Kind().String() + ">"
			case fd.IsList():
				kind = "repeated " + kind
			}
			out[string(fd.Name())] = kind + " " + strconv.Itoa(int(fd.Number()))
		}
		return out
	}

	meta := files["confluent/meta.proto"]
	if meta == nil || meta.Package() != "confluent" {
		t.Fatalf("confluent/meta.proto: %v", meta)
	}
	m := meta.Messages().ByName("Meta")
	if m == nil {
		t.Fatal("no confluent.Meta")
	}
	if got, want := fields(m), map[string]string{
		"doc": "string 1", "params": "map<string,string> 2", "tags": "repeated string 3",
	}; !reflect.DeepEqual(got, want) {
		t.Errorf("confluent.Meta fields = %v, want %v", got, want)
	}
	exts := map[string]string{}
	for i := 0; i < meta.Extensions().Len(); i++ {
		x := meta.Extensions().Get(i)
		exts[string(x.Name())] = string(x.ContainingMessage().FullName()) + " " + strconv.Itoa(int(x.Number())) + " ." + string(x.Message().FullName())
	}
	if want := map[string]string{
		"file_meta":       "google.protobuf.FileOptions 1088 .confluent.Meta",
		"message_meta":    "google.protobuf.MessageOptions 1088 .confluent.Meta",
		"field_meta":      "google.protobuf.FieldOptions 1088 .confluent.Meta",
		"enum_meta":       "google.protobuf.EnumOptions 1088 .confluent.Meta",
		"enum_value_meta": "google.protobuf.EnumValueOptions 1088 .confluent.Meta",
	}; !reflect.DeepEqual(exts, want) {
		t.Errorf("confluent/meta.proto extensions = %v, want %v", exts, want)
	}

	dec := files["confluent/type/decimal.proto"]
	if dec == nil || dec.Package() != "confluent.type" || dec.Messages().ByName("Decimal") == nil {
		t.Fatalf("confluent/type/decimal.proto: %v", dec)
	}
	if got, want := fields(dec.Messages().ByName("Decimal")), map[string]string{
		"value": "bytes 1", "precision": "uint32 2", "scale": "int32 3",
	}; !reflect.DeepEqual(got, want) {
		t.Errorf("confluent.type.Decimal fields = %v, want %v", got, want)
	}
}

// metaSchema uses every Confluent option and type and a few Google types.
const metaSchema = `syntax = "proto3";
package shop.v1;

import "confluent/meta.proto";
import "confluent/type/decimal.proto";
import "google/type/date.proto";
import "google/type/money.proto";
import "google/protobuf/timestamp.proto";

option (confluent.file_meta) = { doc: "Orders of the shop" params: [{ key: "owner" value: "team-a" }] };

message Order {
  option (confluent.message_meta) = { doc: "One order" tags: ["ORDER"] };
  string id = 1 [(confluent.field_meta) = { doc: "order id" tags: ["PII", "KEY"] params: [{ key: "a" value: "1" }, { key: "b" value: "2" }] }];
  confluent.type.Decimal total = 2 [(confluent.field_meta).doc = "exact amount"];
  google.type.Date due = 3;
  google.type.Money paid = 4;
  google.protobuf.Timestamp at = 5;
  Status status = 6;
  enum Status {
    option (confluent.enum_meta) = { doc: "order state" };
    UNKNOWN = 0;
    OPEN = 1 [(confluent.enum_value_meta) = { tags: ["INITIAL"] }];
  }
}
`

// TestConfluentImportsParseRenderCompare parses a schema that imports
// Confluent's and Google's types without references, renders it, parses
// the renderings back, compares it with other versions and decodes a
// payload using them.
func TestConfluentImportsParseRenderCompare(t *testing.T) {
	s := mustParse(t, metaSchema)
	for _, want := range []string{
		`import "confluent/meta.proto";`,
		`import "confluent/type/decimal.proto";`,
		`option (confluent.file_meta) = { doc: "Orders of the shop" params: [{ key: "owner" value: "team-a" }] };`,
		`option (confluent.message_meta) = { doc: "One order" tags: ["ORDER"] };`,
		`string id = 1 [(confluent.field_meta) = { doc: "order id" params: [{ key: "a" value: "1" }, { key: "b" value: "2" }] tags: ["PII", "KEY"] }];`,
		`.confluent.type.Decimal total = 2 [(confluent.field_meta) = { doc: "exact amount" }];`,
		`.google.type.Date due = 3;`,
		`.google.type.Money paid = 4;`,
		`option (confluent.enum_meta) = { doc: "order state" };`,
		`OPEN = 1 [(confluent.enum_value_meta) = { tags: ["INITIAL"] }];`,
	} {
		if !strings.Contains(s.Canonical(), want) {
			t.Errorf("canonical text lacks %q:\n%s", want, s.Canonical())
		}
	}
	// The renderings are schemas too, and render the same.
	if c := mustParse(t, s.Canonical()); c.Canonical() != s.Canonical() {
		t.Fatalf("canonical text is not stable:\n%s\n---\n%s", s.Canonical(), c.Canonical())
	}
	if n := mustParse(t, s.Normalized()); n.Normalized() != s.Normalized() {
		t.Fatalf("normalized text is not stable:\n%s\n---\n%s", s.Normalized(), n.Normalized())
	}

	// Metadata is not on the wire: changing it is compatible both ways.
	retagged := strings.Replace(metaSchema, `tags: ["PII", "KEY"]`, `tags: ["PUBLIC"]`, 1)
	r := mustParse(t, retagged)
	if got := append(New().CanRead(r, s), New().CanRead(s, r)...); len(got) != 0 {
		t.Errorf("changing field metadata: %q, want compatible", got)
	}
	// A Decimal field that becomes Money is a named type change.
	money := strings.Replace(metaSchema, `confluent.type.Decimal total = 2`, `google.type.Money total = 2`, 1)
	got := Format{}.CanRead(mustParse(t, money), s)
	if len(got) != 1 || !strings.Contains(got[0], "FIELD_NAMED_TYPE_CHANGED at message .shop.v1.Order field 2: .confluent.type.Decimal -> .google.type.Money") {
		t.Errorf("Decimal -> Money: %q", got)
	}

	// A payload with a Decimal and a Date decodes field by field.
	dec := protowire.AppendBytes(protowire.AppendTag(nil, 1, protowire.BytesType), []byte{0x04, 0xd2}) // 1234
	dec = protowire.AppendVarint(protowire.AppendTag(dec, 2, protowire.VarintType), 6)
	dec = protowire.AppendVarint(protowire.AppendTag(dec, 3, protowire.VarintType), 2)
	date := protowire.AppendVarint(protowire.AppendTag(nil, 1, protowire.VarintType), 2024)
	body := protowire.AppendBytes(protowire.AppendTag(nil, 2, protowire.BytesType), dec)
	body = protowire.AppendBytes(protowire.AppendTag(body, 3, protowire.BytesType), date)
	v, err := s.Decode(append([]byte{0}, body...))
	if err != nil {
		t.Fatal(err)
	}
	m := v.(map[string]any)
	if want := map[string]any{"value": []byte{0x04, 0xd2}, "precision": int64(6), "scale": int64(2)}; !reflect.DeepEqual(m["total"], want) {
		t.Errorf("total = %#v, want %#v", m["total"], want)
	}
	if want := map[string]any{"year": int64(2024), "month": int64(0), "day": int64(0)}; !reflect.DeepEqual(m["due"], want) {
		t.Errorf("due = %#v, want %#v", m["due"], want)
	}
}

// TestReferenceOverridesKnownImport lets a schema bring its own copy of a
// built-in file, as a reference.
func TestReferenceOverridesKnownImport(t *testing.T) {
	own := registry.ResolvedReference{Name: "confluent/type/decimal.proto", Subject: "decimal", Version: 1,
		Schema: "syntax = \"proto3\";\npackage confluent.type;\nmessage Decimal { string text = 1; }"}
	s := mustParse(t, "syntax = \"proto3\";\nimport \"confluent/type/decimal.proto\";\nmessage M { confluent.type.Decimal d = 1; }", own)
	d := s.File().Messages().ByName("M").Fields().ByName("d").Message()
	if d.Fields().ByName("text") == nil || d.Fields().ByName("value") != nil {
		t.Fatalf("the reference did not take precedence: Decimal has fields %v", d.Fields())
	}
}

// TestUnknownConfluentImport keeps unknown paths under confluent/ an
// error naming the file.
func TestUnknownConfluentImport(t *testing.T) {
	_, err := Format{}.Parse("syntax = \"proto3\";\nimport \"confluent/nope.proto\";", nil)
	if err == nil || !strings.Contains(err.Error(), "confluent/nope.proto") {
		t.Fatalf("err = %v", err)
	}
}
