package protobuf

import (
	"bytes"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/dynamicpb"

	"github.com/runnel-dev/runnel/internal/registry"
)

const decodeSchema = `syntax = "proto3";
package shop;
import "google/protobuf/timestamp.proto";
message Order {
  string id = 1;
  int64 qty = 2;
  uint64 big = 3;
  double price = 4;
  bool paid = 5;
  bytes blob = 6;
  Status status = 7;
  repeated Line lines = 8;
  map<string, int32> tags = 9;
  optional string note = 10;
  oneof pay { string card = 11; int64 cash = 12; }
  google.protobuf.Timestamp at = 13;
  sint32 delta = 14;
  float ratio = 15;
  message Line { string sku = 1; map<int32, Line> parts = 2; message Deep { bool ok = 1; } }
  enum Status { UNKNOWN = 0; OK = 1; }
}
message Other { Order.Line.Deep deep = 1; }`

func TestAppendIndexes(t *testing.T) {
	cases := []struct {
		name string
		idx  []int
		want []byte
	}{
		{name: "first message shorthand", idx: []int{0}, want: []byte{0}},
		{name: "empty means first", idx: nil, want: []byte{0}},
		{name: "second message", idx: []int{1}, want: []byte{2, 2}},
		{name: "nested in first", idx: []int{0, 0}, want: []byte{4, 0, 0}},
		{name: "deep", idx: []int{0, 1, 2}, want: []byte{6, 0, 2, 4}},
		{name: "large index", idx: []int{100}, want: []byte{2, 0xc8, 0x01}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := AppendIndexes([]byte{0xff}, tc.idx)
			if !bytes.Equal(got, append([]byte{0xff}, tc.want...)) {
				t.Fatalf("AppendIndexes(%v) = %x, want ff%x", tc.idx, got, tc.want)
			}
			idx, rest, err := readIndexes(append(got[1:], 0xaa))
			if err != nil {
				t.Fatal(err)
			}
			want := tc.idx
			if len(want) == 0 {
				want = []int{0}
			}
			if !reflect.DeepEqual(idx, want) || !bytes.Equal(rest, []byte{0xaa}) {
				t.Fatalf("readIndexes = %v %x", idx, rest)
			}
		})
	}
}

func TestMessageIndexes(t *testing.T) {
	s := mustParse(t, decodeSchema)
	cases := []struct {
		name string
		want []int
	}{
		{name: "shop.Order", want: []int{0}},
		{name: ".shop.Order", want: []int{0}},
		{name: "shop.Other", want: []int{1}},
		{name: "shop.Order.Line", want: []int{0, 1}}, // after the map entry TagsEntry
		{name: "shop.Order.Line.Deep", want: []int{0, 1, 1}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := MessageIndexes(s, tc.name)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("MessageIndexes = %v, want %v", got, tc.want)
			}
			md, err := s.messageAt(got)
			if err != nil || string(md.FullName()) != strings.TrimPrefix(tc.name, ".") {
				t.Fatalf("messageAt(%v) = %v, %v", got, md, err)
			}
		})
	}
	for _, bad := range []string{"shop.Nope", "Order", "shop.Order.Nope", ""} {
		if _, err := MessageIndexes(s, bad); !errors.Is(err, ErrUnknownMessage) {
			t.Errorf("MessageIndexes(%q) err = %v", bad, err)
		}
	}
	if _, err := MessageIndexes(fakeSchema{}, "x"); err == nil {
		t.Error("MessageIndexes on a foreign schema succeeded")
	}
}

// encode marshals a message built by fill and prefixes the message indexes
// of its type.
func encode(t *testing.T, s *Schema, name string, fill func(m *dynamicpb.Message)) []byte {
	t.Helper()
	idx, err := MessageIndexes(s, name)
	if err != nil {
		t.Fatal(err)
	}
	md, err := s.messageAt(idx)
	if err != nil {
		t.Fatal(err)
	}
	m := dynamicpb.NewMessage(md)
	fill(m)
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return append(AppendIndexes(nil, idx), b...)
}

func set(m *dynamicpb.Message, name string, v protoreflect.Value) {
	m.Set(m.Descriptor().Fields().ByName(protoreflect.Name(name)), v)
}

func TestDecodeRoundTrip(t *testing.T) {
	s := mustParse(t, decodeSchema)
	payload := encode(t, s, "shop.Order", func(m *dynamicpb.Message) {
		fds := m.Descriptor().Fields()
		set(m, "id", protoreflect.ValueOfString("o-1"))
		set(m, "qty", protoreflect.ValueOfInt64(-7))
		set(m, "big", protoreflect.ValueOfUint64(math.MaxUint64))
		set(m, "price", protoreflect.ValueOfFloat64(9.5))
		set(m, "paid", protoreflect.ValueOfBool(true))
		set(m, "blob", protoreflect.ValueOfBytes([]byte{0, 1}))
		set(m, "status", protoreflect.ValueOfEnum(1))
		lines := m.NewField(fds.ByName("lines")).List()
		line := dynamicpb.NewMessage(fds.ByName("lines").Message())
		set(line, "sku", protoreflect.ValueOfString("abc"))
		parts := line.NewField(line.Descriptor().Fields().ByName("parts")).Map()
		sub := dynamicpb.NewMessage(fds.ByName("lines").Message())
		set(sub, "sku", protoreflect.ValueOfString("screw"))
		parts.Set(protoreflect.ValueOfInt32(3).MapKey(), protoreflect.ValueOfMessage(sub))
		set(line, "parts", protoreflect.ValueOfMap(parts))
		lines.Append(protoreflect.ValueOfMessage(line))
		set(m, "lines", protoreflect.ValueOfList(lines))
		tags := m.NewField(fds.ByName("tags")).Map()
		tags.Set(protoreflect.ValueOfString("k").MapKey(), protoreflect.ValueOfInt32(5))
		set(m, "tags", protoreflect.ValueOfMap(tags))
		set(m, "cash", protoreflect.ValueOfInt64(20))
		at := dynamicpb.NewMessage(fds.ByName("at").Message())
		set(at, "seconds", protoreflect.ValueOfInt64(1700000000))
		set(m, "at", protoreflect.ValueOfMessage(at))
		set(m, "delta", protoreflect.ValueOfInt32(-3))
		set(m, "ratio", protoreflect.ValueOfFloat32(0.5))
	})
	got, err := s.Decode(payload)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"id":     "o-1",
		"qty":    int64(-7),
		"big":    uint64(math.MaxUint64),
		"price":  9.5,
		"paid":   true,
		"blob":   []byte{0, 1},
		"status": "OK",
		"lines": []any{map[string]any{
			"sku":   "abc",
			"parts": map[string]any{"3": map[string]any{"sku": "screw", "parts": map[string]any{}}},
		}},
		"tags":  map[string]any{"k": int64(5)},
		"note":  nil,
		"cash":  int64(20),
		"at":    map[string]any{"seconds": int64(1700000000), "nanos": int64(0)},
		"delta": int64(-3),
		"ratio": 0.5,
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Decode =\n%#v\nwant\n%#v", got, want)
	}
}

// TestMessage returns the message the indexes select, decoded, and fails
// as Decode does.
func TestMessage(t *testing.T) {
	s := mustParse(t, decodeSchema)
	payload := encode(t, s, "shop.Order.Line", func(m *dynamicpb.Message) {
		set(m, "sku", protoreflect.ValueOfString("abc"))
	})
	msg, err := s.Message(payload)
	if err != nil {
		t.Fatal(err)
	}
	if name := msg.Descriptor().FullName(); name != "shop.Order.Line" {
		t.Fatalf("message %s, want shop.Order.Line", name)
	}
	if sku := msg.Get(msg.Descriptor().Fields().ByName("sku")).String(); sku != "abc" {
		t.Fatalf("sku = %q", sku)
	}
	for _, bad := range [][]byte{nil, {0x02, 0x08}, append([]byte{0}, 0x0a, 0x05, 'a')} {
		_, merr := s.Message(bad)
		_, derr := s.Decode(bad)
		if !errors.Is(merr, registry.ErrInvalidPayload) || merr.Error() != derr.Error() {
			t.Errorf("payload %x: Message err %v, Decode err %v", bad, merr, derr)
		}
	}
}

func TestDecodeDefaultsAndNested(t *testing.T) {
	s := mustParse(t, decodeSchema)
	// The first message with the [0] shorthand and an empty body.
	got, err := s.Decode([]byte{0})
	if err != nil {
		t.Fatal(err)
	}
	m := got.(map[string]any)
	if m["id"] != "" || m["qty"] != int64(0) || m["status"] != "UNKNOWN" || m["at"] != nil || m["note"] != nil {
		t.Fatalf("defaults: %#v", m)
	}
	if _, ok := m["card"]; ok {
		t.Fatalf("unset oneof member present: %#v", m)
	}
	// A nested message selected by a three-level index path.
	payload := encode(t, s, "shop.Order.Line.Deep", func(m *dynamicpb.Message) {
		set(m, "ok", protoreflect.ValueOfBool(true))
	})
	if !bytes.HasPrefix(payload, []byte{6, 0, 2, 2}) {
		t.Fatalf("payload %x", payload)
	}
	got, err = s.Decode(payload)
	if err != nil || !reflect.DeepEqual(got, map[string]any{"ok": true}) {
		t.Fatalf("Decode = %#v, %v", got, err)
	}
	// An open enum's undeclared number comes back as a number.
	payload = encode(t, s, "shop.Order", func(m *dynamicpb.Message) {
		set(m, "status", protoreflect.ValueOfEnum(9))
	})
	got, err = s.Decode(payload)
	if err != nil || got.(map[string]any)["status"] != int64(9) {
		t.Fatalf("Decode = %#v, %v", got, err)
	}
}

func TestDecodeAcceptsUnknownFields(t *testing.T) {
	s := mustParse(t, decodeSchema)
	body := protowire.AppendTag(nil, 1, protowire.BytesType)
	body = protowire.AppendString(body, "o-2")
	body = protowire.AppendTag(body, 99, protowire.VarintType)
	body = protowire.AppendVarint(body, 42)
	got, err := s.Decode(append([]byte{0}, body...))
	if err != nil {
		t.Fatal(err)
	}
	if got.(map[string]any)["id"] != "o-2" {
		t.Fatalf("Decode = %#v", got)
	}
}

func TestDecodeClosedEnumUnknownValue(t *testing.T) {
	// A newer schema may add an enum value: an undeclared number of a proto2
	// enum is accepted (and comes back as its number).
	s := mustParse(t, "syntax = \"proto2\";\nmessage R { optional E e = 1; enum E { A = 1; } }")
	body := protowire.AppendVarint(protowire.AppendTag(nil, 1, protowire.VarintType), 7)
	got, err := s.Decode(append([]byte{0}, body...))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, map[string]any{"e": int64(7)}) {
		t.Fatalf("Decode = %#v", got)
	}
}

func TestDecodeMalformed(t *testing.T) {
	s := mustParse(t, decodeSchema)
	p2s := mustParse(t, "syntax = \"proto2\";\nmessage R { required int32 x = 1; }")
	noMessages := mustParse(t, "syntax = \"proto3\";\nenum E { A = 0; }")
	tag := func(num protowire.Number, typ protowire.Type) []byte { return protowire.AppendTag(nil, num, typ) }
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	cases := []struct {
		name    string
		schema  *Schema
		payload []byte
	}{
		{name: "empty", payload: nil},
		{name: "truncated count", payload: []byte{0x80}},
		{name: "negative count", payload: []byte{1}},
		{name: "count too large", payload: binaryVarint(1000)},
		{name: "truncated index", payload: []byte{4, 0}},
		{name: "negative index", payload: []byte{2, 1}},
		{name: "index out of range", payload: []byte{2, 4}},
		{name: "nested index out of range", payload: []byte{4, 2, 2}},
		{name: "truncated field", payload: cat([]byte{0}, tag(1, protowire.BytesType), []byte{10, 'a'})},
		{name: "wrong wire type", payload: cat([]byte{0}, tag(1, protowire.Fixed32Type), []byte{1, 2, 3, 4})},
		{name: "invalid utf-8 string", payload: cat([]byte{0}, tag(1, protowire.BytesType), []byte{2, 0xff, 0xfe})},
		{name: "bad tag", payload: []byte{0, 0x00}},
		{name: "truncated unknown field", payload: cat([]byte{0}, tag(99, protowire.BytesType), []byte{5, 1})},
		{name: "wrong wire type in nested message", payload: cat([]byte{0}, tag(8, protowire.BytesType), []byte{2}, tag(1, protowire.VarintType), []byte{1})},
		{name: "bad nested message", payload: cat([]byte{0}, tag(8, protowire.BytesType), []byte{2}, tag(1, protowire.Fixed64Type))},
		{name: "missing required field", schema: p2s, payload: []byte{0}},
		{name: "schema without messages", schema: noMessages, payload: []byte{0}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sch := s
			if tc.schema != nil {
				sch = tc.schema
			}
			v, err := sch.Decode(tc.payload)
			if !errors.Is(err, registry.ErrInvalidPayload) {
				t.Fatalf("Decode(%x) = %#v, %v; want ErrInvalidPayload", tc.payload, v, err)
			}
		})
	}
}

func binaryVarint(v int64) []byte { return protowire.AppendVarint(nil, protowire.EncodeZigZag(v)) }

// FuzzDecode checks that no payload makes Decode panic and that whatever
// decodes is a map.
func FuzzDecode(f *testing.F) {
	s, err := Format{}.Parse(decodeSchema, nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Add([]byte{0})
	f.Add([]byte{6, 0, 2, 2, 8, 1})
	f.Add([]byte{0, 10, 3, 'a', 'b', 'c', 16, 5})
	f.Add([]byte{10, 3, 'a', 'b', 'c', 16, 5}) // no message indexes
	f.Add([]byte{2, 2, 10, 2, 8, 1})
	f.Add([]byte{4, 0, 2, 10, 1, 'x'})
	f.Add([]byte{1, 0})
	f.Add(binaryVarint(math.MaxInt64))
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := s.Decode(b)
		if err == nil {
			if _, ok := v.(map[string]any); !ok {
				t.Fatalf("decoded to %T", v)
			}
			if _, err := s.(registry.RecordNamer).RecordName(b); err != nil {
				t.Fatalf("decoded, but RecordName fails: %v", err)
			}
		} else if !errors.Is(err, registry.ErrInvalidPayload) {
			t.Fatalf("error %v does not wrap ErrInvalidPayload", err)
		}
	})
}

// TestReadIndexes covers Confluent's message index encoding: a zig-zag
// varint count then zig-zag varint indexes, with the single byte 0 for
// [0]; every malformation is a clear error, never a panic.
func TestReadIndexes(t *testing.T) {
	overlong := bytes.Repeat([]byte{0xff}, 10)
	overlong = append(overlong, 0x01) // 11 bytes: past 64 bits
	many := binaryVarint(maxIndexes)
	for i := 0; i < maxIndexes; i++ {
		many = append(many, 0)
	}
	manyWant := make([]int, maxIndexes)
	cases := []struct {
		name    string
		in      []byte
		want    []int
		rest    []byte
		wantErr string
	}{
		{name: "shorthand for the first message", in: []byte{0, 0x0a}, want: []int{0}, rest: []byte{0x0a}},
		{name: "explicit [0]", in: []byte{2, 0, 0x0a}, want: []int{0}, rest: []byte{0x0a}},
		{name: "second message", in: []byte{2, 2}, want: []int{1}, rest: []byte{}},
		{name: "nested path", in: []byte{6, 0, 2, 4, 0x08, 0x01}, want: []int{0, 1, 2}, rest: []byte{0x08, 0x01}},
		{name: "two-byte index", in: []byte{2, 0xc8, 0x01}, want: []int{100}, rest: []byte{}},
		{name: "largest index", in: append([]byte{2}, binaryVarint(math.MaxInt32)...), want: []int{math.MaxInt32}, rest: []byte{}},
		{name: "count at the limit", in: many, want: manyWant, rest: []byte{}},
		{name: "empty", in: nil, wantErr: "no message indexes: nothing follows the schema id"},
		{name: "truncated count", in: []byte{0x80}, wantErr: "truncated message index count"},
		{name: "overlong count", in: overlong, wantErr: "malformed message index count (a varint longer than 64 bits)"},
		{name: "count -1", in: []byte{1}, wantErr: "message index count -1 is negative"},
		{name: "count -2", in: []byte{3, 0, 0}, wantErr: "message index count -2 is negative"},
		{name: "most negative count", in: binaryVarint(math.MinInt64), wantErr: "is negative"},
		{name: "count over the limit", in: binaryVarint(maxIndexes + 1), wantErr: "message index count 101 exceeds the limit of 100"},
		{name: "huge count", in: binaryVarint(math.MaxInt64), wantErr: "exceeds the limit of 100"},
		{name: "count beyond the bytes", in: []byte{6, 0}, wantErr: "message index count 3 but only 1 bytes follow"},
		{name: "truncated index", in: []byte{4, 0, 0x80}, wantErr: "truncated message index 1 of 2"},
		{name: "overlong index", in: append([]byte{2}, overlong...), wantErr: "malformed message index 0 of 1 (a varint longer than 64 bits)"},
		{name: "negative index", in: []byte{2, 1}, wantErr: "message index 0 of 1 is negative (-1)"},
		{name: "index beyond int32", in: append([]byte{2}, binaryVarint(math.MaxInt32+1)...), wantErr: "message index 0 of 1 is 2147483648, beyond any message"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			idx, rest, err := readIndexes(tc.in)
			if tc.wantErr != "" {
				if !errors.Is(err, registry.ErrInvalidPayload) || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("readIndexes(%x) = %v, %x, %v; want an ErrInvalidPayload saying %q", tc.in, idx, rest, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("readIndexes(%x): %v", tc.in, err)
			}
			if !reflect.DeepEqual(idx, tc.want) || !bytes.Equal(rest, tc.rest) {
				t.Fatalf("readIndexes(%x) = %v, %x; want %v, %x", tc.in, idx, rest, tc.want, tc.rest)
			}
		})
	}
}

// TestDecodeIndexErrors checks what Decode and RecordName say about index
// paths the schema does not have.
func TestDecodeIndexErrors(t *testing.T) {
	s := mustParse(t, decodeSchema)
	cases := []struct {
		name    string
		payload []byte
		want    string
	}{
		{name: "top-level index past the last message", payload: []byte{2, 4}, want: "message index [2]: the file has 2 messages at depth 0, no index 2"},
		{name: "nested index past the last nested message", payload: []byte{4, 0, 4}, want: "message index [0 2]: message .shop.Order has 2 messages at depth 1, no index 2"},
		{name: "too deep", payload: []byte{8, 0, 2, 2, 0}, want: "message .shop.Order.Line.Deep has 0 messages at depth 3, no index 0"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.Decode(tc.payload)
			if !errors.Is(err, registry.ErrInvalidPayload) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Decode(%x) err = %v, want %q", tc.payload, err, tc.want)
			}
			_, err = s.RecordName(tc.payload)
			if !errors.Is(err, registry.ErrInvalidPayload) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("RecordName(%x) err = %v, want %q", tc.payload, err, tc.want)
			}
		})
	}
	name, err := s.RecordName([]byte{6, 0, 2, 2})
	if err != nil || name != "shop.Order.Line.Deep" {
		t.Fatalf("RecordName = %q, %v", name, err)
	}
}

// TestDecodeExplainsMissingIndexes: a message written straight after the
// schema id, as @kafkajs/confluent-schema-registry does, fails with an
// error that says the message indexes are missing; a Confluent-framed
// payload that fails for another reason does not get that said.
func TestDecodeExplainsMissingIndexes(t *testing.T) {
	s := mustParse(t, decodeSchema)
	framed := encode(t, s, "shop.Order", func(m *dynamicpb.Message) {
		set(m, "id", protoreflect.ValueOfString("o1"))
		set(m, "qty", protoreflect.ValueOfInt64(4))
	})
	if _, err := s.Decode(framed); err != nil {
		t.Fatalf("framed payload: %v", err)
	}
	bare := framed[1:] // 0a 02 'o' '1' 10 04: count 5, then index -56
	const hint = "the payload lacks Confluent's message indexes: read without them it decodes as .shop.Order"
	_, err := s.Decode(bare)
	if !errors.Is(err, registry.ErrInvalidPayload) || !strings.Contains(err.Error(), hint) ||
		!strings.Contains(err.Error(), "message index 1 of 5 is negative (-56)") {
		t.Fatalf("bare message: %v", err)
	}
	if _, err := s.RecordName(bare); err == nil || !strings.Contains(err.Error(), hint) {
		t.Fatalf("RecordName of a bare message: %v", err)
	}
	// The second message, bare: matched by its own type.
	other := encode(t, s, "shop.Other", func(m *dynamicpb.Message) {
		deep := dynamicpb.NewMessage(m.Descriptor().Fields().ByName("deep").Message())
		set(deep, "ok", protoreflect.ValueOfBool(true))
		set(m, "deep", protoreflect.ValueOfMessage(deep))
	})
	if _, err := s.Decode(other[2:]); err == nil || !strings.Contains(err.Error(), "read without them it decodes as .shop.") {
		t.Fatalf("bare Other: %v", err)
	}
	for name, p := range map[string][]byte{
		"framed, truncated message": append([]byte{0}, 0x0a, 0x05, 'a'),
		"framed, bad index path":    append([]byte{2, 8}, framed[1:]...),
		"garbage":                   {0xff, 0xff, 0xff},
	} {
		if _, err := s.Decode(p); err == nil || strings.Contains(err.Error(), "lacks Confluent's message indexes") {
			t.Errorf("%s: %v, want an error without the missing-indexes hint", name, err)
		}
	}
}

// FuzzReadIndexes checks that no input panics readIndexes, and that what
// it accepts is a bounded path of valid indexes that re-encodes to the
// same path.
func FuzzReadIndexes(f *testing.F) {
	for _, seed := range [][]byte{{0}, {2, 0}, {2, 2}, {6, 0, 2, 4}, {1}, {0x80}, {4, 0, 0x80}, binaryVarint(math.MaxInt64),
		append([]byte{2}, binaryVarint(math.MaxInt32+1)...), bytes.Repeat([]byte{0xff}, 11)} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		idx, rest, err := readIndexes(b)
		if err != nil {
			if !errors.Is(err, registry.ErrInvalidPayload) {
				t.Fatalf("error %v does not wrap ErrInvalidPayload", err)
			}
			return
		}
		if len(idx) == 0 || len(idx) > maxIndexes {
			t.Fatalf("readIndexes(%x) = %d indexes", b, len(idx))
		}
		for _, i := range idx {
			if i < 0 || i > math.MaxInt32 {
				t.Fatalf("readIndexes(%x) accepted index %d", b, i)
			}
		}
		if !bytes.HasSuffix(b, rest) {
			t.Fatalf("rest %x is not a suffix of %x", rest, b)
		}
		again, rest2, err := readIndexes(append(AppendIndexes(nil, idx), rest...))
		if err != nil || !reflect.DeepEqual(again, idx) || !bytes.Equal(rest2, rest) {
			t.Fatalf("re-encoded %v: %v, %x, %v", idx, again, rest2, err)
		}
	})
}
