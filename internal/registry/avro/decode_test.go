package avro

import (
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	hamba "github.com/hamba/avro/v2"

	"github.com/runnel-dev/runnel/internal/registry"
)

const everything = `{"type":"record","name":"Everything","namespace":"t","fields":[
	{"name":"n","type":"null"},
	{"name":"b","type":"boolean"},
	{"name":"i","type":"int"},
	{"name":"l","type":"long"},
	{"name":"f","type":"float"},
	{"name":"d","type":"double"},
	{"name":"by","type":"bytes"},
	{"name":"s","type":"string"},
	{"name":"e","type":{"type":"enum","name":"Color","symbols":["RED","GREEN"]}},
	{"name":"fx","type":{"type":"fixed","name":"Four","size":4}},
	{"name":"a","type":{"type":"array","items":"int"}},
	{"name":"m","type":{"type":"map","values":"string"}},
	{"name":"u","type":["null","string"]},
	{"name":"u2","type":["null","string"]},
	{"name":"ts","type":{"type":"long","logicalType":"timestamp-millis"}},
	{"name":"rec","type":{"type":"record","name":"Inner","fields":[{"name":"x","type":"long"}]}},
	{"name":"recs","type":{"type":"array","items":"Inner"}}
]}`

func TestDecodeRoundTrip(t *testing.T) {
	s := mustParse(t, everything)
	in := map[string]any{
		"n": nil, "b": true, "i": -7, "l": int64(math.MaxInt64), "f": float32(1.5), "d": math.Pi,
		"by": []byte{0, 1, 2}, "s": "héllo", "e": "GREEN", "fx": [4]byte{9, 8, 7, 6},
		"a": []int{1, -2, 3}, "m": map[string]any{"k": "v", "k2": ""},
		"u": nil, "u2": "set", "ts": int64(1700000000000),
		"rec": map[string]any{"x": int64(5)}, "recs": []any{map[string]any{"x": int64(1)}, map[string]any{"x": int64(2)}},
	}
	// hamba/avro writes a timestamp-millis from a time value.
	in["ts"] = timeMillis(1700000000000)
	payload, err := hamba.Marshal(s.Avro(), in)
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.Decode(payload)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"n": nil, "b": true, "i": int64(-7), "l": int64(math.MaxInt64), "f": 1.5, "d": math.Pi,
		"by": []byte{0, 1, 2}, "s": "héllo", "e": "GREEN", "fx": []byte{9, 8, 7, 6},
		"a": []any{int64(1), int64(-2), int64(3)}, "m": map[string]any{"k": "v", "k2": ""},
		"u": nil, "u2": "set", "ts": int64(1700000000000),
		"rec": map[string]any{"x": int64(5)}, "recs": []any{map[string]any{"x": int64(1)}, map[string]any{"x": int64(2)}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("decoded\n %#v\nwant\n %#v", got, want)
	}
}

func TestDecodeRoundTripCases(t *testing.T) {
	tests := []struct {
		name, schema string
		in, want     any
	}{
		{"top-level string", `"string"`, "x", "x"},
		{"top-level long", `"long"`, int64(math.MinInt64), int64(math.MinInt64)},
		{"empty array", `{"type":"array","items":"string"}`, []string{}, []any{}},
		{"empty map", `{"type":"map","values":"long"}`, map[string]any{}, map[string]any{}},
		{"array of nulls", `{"type":"array","items":"null"}`, []any{nil, nil}, []any{nil, nil}},
		{"nested arrays", `{"type":"array","items":{"type":"array","items":"boolean"}}`,
			[][]bool{{true}, {}, {false, true}}, []any{[]any{true}, []any{}, []any{false, true}}},
		{"union record branch", `["null",{"type":"record","name":"P","fields":[{"name":"a","type":"int"}]}]`,
			map[string]any{"P": map[string]any{"a": 3}}, map[string]any{"a": int64(3)}},
		{"recursive list", `{"type":"record","name":"Node","fields":[{"name":"v","type":"int"},{"name":"next","type":["null","Node"]}]}`,
			map[string]any{"v": 1, "next": map[string]any{"Node": map[string]any{"v": 2, "next": nil}}},
			map[string]any{"v": int64(1), "next": map[string]any{"v": int64(2), "next": nil}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := mustParse(t, tc.schema)
			payload, err := hamba.Marshal(s.Avro(), tc.in)
			if err != nil {
				t.Fatal(err)
			}
			got, err := s.Decode(payload)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("decoded %#v, want %#v", got, tc.want)
			}
		})
	}
}

// TestDecodeBranches names the branch of each union value, nested ones
// included, where Decode gives the value alone.
func TestDecodeBranches(t *testing.T) {
	s := mustParse(t, `{"type":"record","name":"R","fields":[
		{"name":"n","type":["null","int","long"]},
		{"name":"o","type":["null","string"]},
		{"name":"l","type":{"type":"array","items":["int","long"]}}]}`)
	payload, err := hamba.Marshal(s.Avro(), map[string]any{
		"n": map[string]any{"long": int64(7)}, "o": nil,
		"l": []any{map[string]any{"int": 1}, map[string]any{"long": int64(2)}},
	})
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.DecodeBranches(payload)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"n": Branch{Index: 2, Value: int64(7)}, "o": Branch{Index: 0, Value: nil},
		"l": []any{Branch{Index: 0, Value: int64(1)}, Branch{Index: 1, Value: int64(2)}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("DecodeBranches = %#v, want %#v", got, want)
	}
	plain, err := s.Decode(payload)
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]any{"n": int64(7), "o": nil, "l": []any{int64(1), int64(2)}}; !reflect.DeepEqual(plain, want) {
		t.Errorf("Decode = %#v, want %#v", plain, want)
	}
	if _, err := s.DecodeBranches(payload[:len(payload)-1]); !errors.Is(err, registry.ErrInvalidPayload) {
		t.Errorf("truncated: err = %v", err)
	}
}

func TestDecodeBlocksWithByteSize(t *testing.T) {
	// Arrays may be written in blocks with a negative count followed by
	// the block's size in bytes; hamba/avro does not, so by hand: two
	// blocks, -2 items (4 bytes), then 1 item, then the end.
	s := mustParse(t, `{"type":"array","items":"int"}`)
	payload := []byte{0x03, 0x04, 0x02, 0x04, 0x02, 0x06, 0x00}
	got, err := s.Decode(payload)
	if err != nil {
		t.Fatal(err)
	}
	if want := []any{int64(1), int64(2), int64(3)}; !reflect.DeepEqual(got, want) {
		t.Errorf("decoded %v, want %v", got, want)
	}
}

func TestDecodeMalformed(t *testing.T) {
	rec := `{"type":"record","name":"R","fields":[{"name":"id","type":"long"},{"name":"name","type":"string"}]}`
	tests := []struct {
		name, schema string
		payload      []byte
		want         string
	}{
		{"empty payload", rec, nil, "at /id (byte 0): payload ends early"},
		{"truncated string", rec, []byte{0x02, 0x0a, 'a', 'b'}, "at /name (byte 1): payload ends early: needs 5 bytes, 2 left"},
		{"trailing bytes", rec, []byte{0x02, 0x02, 'a', 0xff}, "1 trailing bytes"},
		{"negative length", rec, []byte{0x02, 0x01}, "negative length -1"},
		{"varint overflow", `"long"`, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, "overflows"},
		{"varint unterminated", `"long"`, []byte{0x80, 0x80}, "payload ends early"},
		{"int out of range", `"int"`, []byte{0x80, 0x80, 0x80, 0x80, 0x20}, "out of the 32-bit range"},
		{"bad boolean", `"boolean"`, []byte{0x02}, "boolean byte is 2"},
		{"short float", `"float"`, []byte{0, 0}, "needs 4 bytes"},
		{"short double", `"double"`, []byte{0, 0, 0, 0}, "needs 8 bytes"},
		{"enum index out of range", `{"type":"enum","name":"E","symbols":["A"]}`, []byte{0x02}, `enum "E" index 1 out of range`},
		{"negative enum index", `{"type":"enum","name":"E","symbols":["A"]}`, []byte{0x01}, "index -1 out of range"},
		{"union branch out of range", `["null","int"]`, []byte{0x04}, "union branch 2 out of range"},
		{"short fixed", `{"type":"fixed","name":"F","size":4}`, []byte{1, 2, 3}, "needs 4 bytes"},
		{"invalid UTF-8", `"string"`, []byte{0x02, 0xff}, "not valid UTF-8"},
		{"array count past payload", `{"type":"array","items":"long"}`, []byte{0xfe, 0xff, 0xff, 0xff, 0x0f, 0x02}, "block of 2147483647 items"},
		{"endless null array", `{"type":"array","items":"null"}`, []byte{0xfe, 0xff, 0xff, 0xff, 0x0f}, "more than 65536 items that take no bytes"},
		{"unterminated array", `{"type":"array","items":"int"}`, []byte{0x02, 0x02}, "payload ends early"},
		{"map value truncated", `{"type":"map","values":"string"}`, []byte{0x02, 0x02, 'k', 0x04, 'v'}, "at /k"},
		{"nested path", `{"type":"record","name":"R","fields":[{"name":"xs","type":{"type":"array","items":["null","int"]}}]}`,
			[]byte{0x02, 0x06}, "at /xs/0 (byte 1): union branch 3 out of range"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := mustParse(t, tc.schema)
			v, err := s.Decode(tc.payload)
			if err == nil {
				t.Fatalf("decoded %#v, want an error", v)
			}
			if !errors.Is(err, registry.ErrInvalidPayload) {
				t.Errorf("error %v does not wrap ErrInvalidPayload", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q lacks %q", err, tc.want)
			}
		})
	}
}

func TestDecodeDeepNesting(t *testing.T) {
	s := mustParse(t, `{"type":"record","name":"Node","fields":[{"name":"next","type":["null","Node"]}]}`)
	// 2000 levels of "branch 1" then a null: deeper than maxDepth.
	payload := append([]byte(strings.Repeat("\x02", 2000)), 0x00)
	_, err := s.Decode(payload)
	if err == nil || !strings.Contains(err.Error(), "nested deeper") {
		t.Fatalf("err = %v, want a depth error", err)
	}
}

// FuzzDecode checks that any payload either decodes or is rejected with
// ErrInvalidPayload, never a panic.
func FuzzDecode(f *testing.F) {
	s, err := Parse(everything, nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Add([]byte{})
	f.Add([]byte{0x01, 0x02, 0x03})
	f.Fuzz(func(t *testing.T, payload []byte) {
		if _, err := s.Decode(payload); err != nil && !errors.Is(err, registry.ErrInvalidPayload) {
			t.Fatalf("error %v does not wrap ErrInvalidPayload", err)
		}
	})
}

func timeMillis(ms int64) any {
	return time.UnixMilli(ms).UTC()
}

func BenchmarkDecode(b *testing.B) {
	s, err := Parse(everything, nil)
	if err != nil {
		b.Fatal(err)
	}
	payload, err := hamba.Marshal(s.Avro(), map[string]any{
		"n": nil, "b": true, "i": 7, "l": int64(1 << 40), "f": float32(1.5), "d": 2.5,
		"by": []byte("bytes"), "s": "a string value", "e": "RED", "fx": [4]byte{1, 2, 3, 4},
		"a": []int{1, 2, 3, 4, 5}, "m": map[string]any{"a": "b", "c": "d"}, "u": nil, "u2": "x",
		"ts": timeMillis(1), "rec": map[string]any{"x": int64(1)}, "recs": []any{map[string]any{"x": int64(2)}},
	})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(payload)))
	for b.Loop() {
		if _, err := s.Decode(payload); err != nil {
			b.Fatal(err)
		}
	}
}
