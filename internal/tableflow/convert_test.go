package tableflow

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	hamba "github.com/hamba/avro/v2"
	"github.com/twmb/franz-go/pkg/kmsg"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/dynamicpb"

	"github.com/runnel-dev/runnel/internal/registry"
	"github.com/runnel-dev/runnel/internal/registry/avro"
	"github.com/runnel-dev/runnel/internal/registry/protobuf"
	"github.com/runnel-dev/runnel/internal/stream"
)

// rowsJSON renders a record's rows as JSON objects (keys sorted), the
// fixed columns left out unless keepFixed.
func rowsJSON(t *testing.T, rec arrow.Record, keepFixed bool) []string {
	t.Helper()
	var buf bytes.Buffer
	if err := array.RecordToJSON(rec, &buf); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		if line == "" {
			continue
		}
		var row map[string]json.RawMessage
		if err := json.Unmarshal([]byte(line), &row); err != nil {
			t.Fatal(err)
		}
		if !keepFixed {
			for _, c := range []string{ColPartition, ColOffset, ColTimestamp, ColKey, ColHeaders} {
				delete(row, c)
			}
		}
		b, err := json.Marshal(row)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, string(b))
	}
	return out
}

// avroPayload encodes v with an Avro schema as hamba/avro does.
func avroPayload(t *testing.T, s registry.Schema, v any) []byte {
	t.Helper()
	b, err := hamba.Marshal(s.(*avro.Schema).Avro(), v)
	if err != nil {
		t.Fatalf("avro encode: %v", err)
	}
	return b
}

// protoPayload encodes the first message of a Protobuf schema, filled in
// by fill, with the message index prefix.
func protoPayload(t *testing.T, s registry.Schema, fill func(m *dynamicpb.Message)) []byte {
	t.Helper()
	md := s.(*protobuf.Schema).File().Messages().Get(0)
	m := dynamicpb.NewMessage(md)
	fill(m)
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatalf("protobuf encode: %v", err)
	}
	return append(protobuf.AppendIndexes(nil, []int{0}), b...)
}

// protoSet fills a dynamic message from values by field name: scalars as
// protoreflect values, nested messages as func(protoreflect.Message),
// lists as []protoreflect.Value, maps as map[any]protoreflect.Value
// (keys as protoreflect.ValueOf takes them).
func protoSet(m protoreflect.Message, values map[string]any) {
	for name, v := range values {
		fd := m.Descriptor().Fields().ByName(protoreflect.Name(name))
		switch x := v.(type) {
		case protoreflect.Value:
			m.Set(fd, x)
		case func(protoreflect.Message):
			x(m.Mutable(fd).Message())
		case []protoreflect.Value:
			l := m.Mutable(fd).List()
			for _, e := range x {
				l.Append(e)
			}
		case map[any]protoreflect.Value:
			mp := m.Mutable(fd).Map()
			for k, e := range x {
				mp.Set(protoreflect.ValueOf(k).MapKey(), e)
			}
		default:
			panic("protoSet: " + name)
		}
	}
}

func setFields(values map[string]any) func(protoreflect.Message) {
	return func(m protoreflect.Message) { protoSet(m, values) }
}

type formatCase struct {
	name, schemaType, text string
	// payloads returns the values to append (without the wire header).
	payloads func(t *testing.T, s registry.Schema) [][]byte
	want     []string
}

var formatCases = []formatCase{
	{
		name: "avro", schemaType: "AVRO", text: avroAll,
		payloads: func(t *testing.T, s registry.Schema) [][]byte {
			full := map[string]any{
				"flag": true, "qty": -7, "id": int64(1 << 40), "ratio": float32(0.5), "price": 9.75, "name": "widget",
				"blob": []byte{1, 2, 3}, "hash": [4]byte{0xde, 0xad, 0xbe, 0xef},
				"amount": big.NewRat(12345, 100), "famount": big.NewRat(-1, 1000),
				"day": time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC), "tmillis": 1500 * time.Millisecond, "tmicros": 1500 * time.Microsecond,
				"tsmillis": time.UnixMilli(1765000000123).UTC(), "tsmicros": time.UnixMicro(1765000000123456).UTC(),
				"local": time.UnixMicro(1765000000654321).UTC(),
				"uid":   "123e4567-e89b-12d3-a456-426614174000", "status": "DONE", "note": map[string]any{"string": "hi"},
				"tags": []any{"a", "b"}, "attrs": map[string]any{"y": nil, "x": map[string]any{"long": int64(1)}},
				"addr": map[string]any{"shop.Addr": map[string]any{"city": "Oslo", "zip": map[string]any{"int": 150}}},
			}
			sparse := map[string]any{
				"flag": false, "qty": 0, "id": int64(-1), "ratio": float32(0), "price": 0.0, "name": "",
				"blob": []byte{}, "hash": [4]byte{}, "amount": big.NewRat(-5, 1), "famount": big.NewRat(0, 1),
				"day": time.Date(1969, 12, 31, 0, 0, 0, 0, time.UTC), "tmillis": time.Duration(0), "tmicros": time.Duration(0),
				"tsmillis": time.UnixMilli(0).UTC(), "tsmicros": time.UnixMicro(0).UTC(), "local": time.UnixMicro(0).UTC(),
				"uid": "00000000-0000-0000-0000-000000000000", "status": "NEW", "note": nil,
				"tags": []any{}, "attrs": map[string]any{}, "addr": nil,
			}
			return [][]byte{avroPayload(t, s, full), avroPayload(t, s, sparse)}
		},
		want: []string{
			`{"addr":{"city":"Oslo","zip":150},"amount":"123.45","attrs":[{"key":"x","value":1},{"key":"y","value":null}],"blob":"AQID","day":"2026-12-07","famount":"-0.001","flag":true,"hash":"3q2+7w==","id":1099511627776,"local":"2025-12-06T05:46:40.654321","name":"widget","note":"hi","price":9.75,"qty":-7,"ratio":0.5,"status":"DONE","tags":["a","b"],"tmicros":"00:00:00.0015","tmillis":"00:00:01.5","tsmicros":"2025-12-06T05:46:40.123456Z","tsmillis":"2025-12-06T05:46:40.123Z","uid":"123e4567-e89b-12d3-a456-426614174000"}`,
			`{"addr":null,"amount":"-5","attrs":[],"blob":"","day":"1969-12-31","famount":"0","flag":false,"hash":"AAAAAA==","id":-1,"local":"1970-01-01T00:00:00","name":"","note":null,"price":0,"qty":0,"ratio":0,"status":"NEW","tags":[],"tmicros":"00:00:00","tmillis":"00:00:00","tsmicros":"1970-01-01T00:00:00Z","tsmillis":"1970-01-01T00:00:00Z","uid":"00000000-0000-0000-0000-000000000000"}`,
		},
	},
	{
		name: "protobuf", schemaType: "PROTOBUF", text: protoAll,
		payloads: func(t *testing.T, s registry.Schema) [][]byte {
			addr := func(city string, zip int32) func(protoreflect.Message) {
				return setFields(map[string]any{"city": protoreflect.ValueOfString(city), "zip": protoreflect.ValueOfInt32(zip)})
			}
			full := protoPayload(t, s, func(m *dynamicpb.Message) {
				protoSet(m, map[string]any{
					"flag": protoreflect.ValueOfBool(true), "qty": protoreflect.ValueOfInt32(-7), "id": protoreflect.ValueOfInt64(1 << 40),
					"u32": protoreflect.ValueOfUint32(4000000000), "u64": protoreflect.ValueOfUint64(18446744073709551615),
					"s32": protoreflect.ValueOfInt32(-3), "ratio": protoreflect.ValueOfFloat32(0.5), "price": protoreflect.ValueOfFloat64(9.75),
					"name": protoreflect.ValueOfString("widget"), "blob": protoreflect.ValueOfBytes([]byte{1, 2, 3}),
					"status": protoreflect.ValueOfEnum(1), "note": protoreflect.ValueOfString("hi"),
					"tags":  []protoreflect.Value{protoreflect.ValueOfString("a"), protoreflect.ValueOfString("b")},
					"attrs": map[any]protoreflect.Value{"y": protoreflect.ValueOfInt64(2), "x": protoreflect.ValueOfInt64(1)},
					"addr":  addr("Oslo", 150),
					"at":    setFields(map[string]any{"seconds": protoreflect.ValueOfInt64(1765000000), "nanos": protoreflect.ValueOfInt32(123456789)}),
					"maybe": setFields(map[string]any{"value": protoreflect.ValueOfInt64(0)}),
					"num":   protoreflect.ValueOfInt32(42),
				})
				bn := m.Mutable(m.Descriptor().Fields().ByName("by_num")).Map()
				e := bn.NewValue()
				addr("Bergen", 5000)(e.Message())
				bn.Set(protoreflect.ValueOfInt32(7).MapKey(), e)
				l := m.Mutable(m.Descriptor().Fields().ByName("addrs")).List()
				le := l.NewElement()
				addr("Tromsø", 9000)(le.Message())
				l.Append(le)
			})
			empty := protoPayload(t, s, func(m *dynamicpb.Message) {
				protoSet(m, map[string]any{"status": protoreflect.ValueOfEnum(9), "text": protoreflect.ValueOfString("t")})
			})
			return [][]byte{full, empty}
		},
		want: []string{
			`{"addr":{"city":"Oslo","zip":150},"addrs":[{"city":"Tromsø","zip":9000}],"at":"2025-12-06T05:46:40.123456Z","attrs":[{"key":"x","value":1},{"key":"y","value":2}],"blob":"AQID","by_num":[{"key":7,"value":{"city":"Bergen","zip":5000}}],"flag":true,"id":1099511627776,"maybe":0,"name":"widget","note":"hi","num":42,"price":9.75,"qty":-7,"ratio":0.5,"s32":-3,"status":"DONE","tags":["a","b"],"text":null,"u32":4000000000,"u64":"18446744073709551615"}`,
			`{"addr":null,"addrs":[],"at":null,"attrs":[],"blob":"","by_num":[],"flag":false,"id":0,"maybe":null,"name":"","note":null,"num":null,"price":0,"qty":0,"ratio":0,"s32":0,"status":"9","tags":[],"text":"t","u32":0,"u64":"0"}`,
		},
	},
	{
		name: "json schema", schemaType: "JSON", text: jsonAll,
		payloads: func(t *testing.T, s registry.Schema) [][]byte {
			return [][]byte{
				[]byte(`{"flag":true,"qty":-7,"price":9.75,"name":"widget","day":"2026-12-07","at":"2025-12-06T06:46:40.123456+01:00",
 "uid":"123e4567-e89b-12d3-a456-426614174000","status":"DONE","note":"hi","tags":["a","b"],"attrs":{"y":2,"x":1},
 "addr":{"city":"Oslo","zip":150},"maybe":5}`),
				[]byte(`{"flag":false,"qty":3.0,"price":2,"name":"","addr":{"city":"Bergen"},"note":null,"maybe":null}`),
			}
		},
		want: []string{
			`{"addr":{"city":"Oslo","zip":150},"at":"2025-12-06T05:46:40.123456Z","attrs":[{"key":"x","value":1},{"key":"y","value":2}],"day":"2026-12-07","flag":true,"maybe":5,"name":"widget","note":"hi","price":9.75,"qty":-7,"status":"DONE","tags":["a","b"],"uid":"123e4567-e89b-12d3-a456-426614174000"}`,
			`{"addr":{"city":"Bergen","zip":null},"at":null,"attrs":null,"day":null,"flag":false,"maybe":null,"name":"","note":null,"price":2,"qty":3,"status":null,"tags":null,"uid":null}`,
		},
	},
}

func TestConvertFormats(t *testing.T) {
	ctx := context.Background()
	for _, tc := range formatCases {
		t.Run(tc.name, func(t *testing.T) {
			s := parseSchema(t, tc.schemaType, tc.text)
			sc, err := TableSchema(s, nil)
			if err != nil {
				t.Fatal(err)
			}
			c, err := NewConverter(sc, &fakeSchemas{byID: map[int]registry.Schema{7: s}})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Release()
			for i, p := range tc.payloads(t, s) {
				if err := c.Append(ctx, 0, stream.DecodedRecord{Offset: int64(i), Value: wire(7, p)}); err != nil {
					t.Fatalf("record %d: %v", i, err)
				}
			}
			rec := c.NewRecord()
			defer rec.Release()
			if !rec.Schema().Equal(c.Schema()) {
				t.Fatalf("record schema %s, want %s", rec.Schema(), c.Schema())
			}
			got := rowsJSON(t, rec, false)
			if len(got) != len(tc.want) {
				t.Fatalf("%d rows, want %d: %v", len(got), len(tc.want), got)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Errorf("row %d:\n got %s\nwant %s", i, got[i], tc.want[i])
				}
			}
		})
	}
}

func TestConvertSchemaless(t *testing.T) {
	sc, err := TableSchema(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	c, err := NewConverter(sc, &fakeSchemas{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Release()
	recs := []stream.DecodedRecord{
		{Offset: 41, Timestamp: 1765000000123, Key: []byte("k1"), Value: []byte("not wire format"),
			Headers: []kmsg.Header{{Key: "trace", Value: []byte("t1")}, {Key: "empty"}}},
		{Offset: 42, Timestamp: 0, Key: nil, Value: nil},
	}
	for _, r := range recs {
		if err := c.Append(context.Background(), 2, r); err != nil {
			t.Fatal(err)
		}
	}
	if c.Len() != 2 {
		t.Fatalf("Len = %d", c.Len())
	}
	rec := c.NewRecord()
	defer rec.Release()
	if c.Len() != 0 {
		t.Fatalf("Len after NewRecord = %d", c.Len())
	}
	want := []string{
		`{"_headers":[{"key":"trace","value":"dDE="},{"key":"empty","value":null}],"_key":"azE=","_offset":41,"_partition":2,"_timestamp":"2025-12-06T05:46:40.123Z","_value":"bm90IHdpcmUgZm9ybWF0"}`,
		`{"_headers":null,"_key":null,"_offset":42,"_partition":2,"_timestamp":"1970-01-01T00:00:00Z","_value":null}`,
	}
	got := rowsJSON(t, rec, true)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("rows:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestConvertEvolution(t *testing.T) {
	ctx := context.Background()
	s1, s2 := parseSchema(t, "AVRO", avroV1), parseSchema(t, "AVRO", avroV2)
	v1, err := TableSchema(s1, nil)
	if err != nil {
		t.Fatal(err)
	}
	v2, err := TableSchema(s2, v1)
	if err != nil {
		t.Fatal(err)
	}
	fs := &fakeSchemas{byID: map[int]registry.Schema{1: s1, 2: s2}}
	c, err := NewConverter(v2, fs)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Release()
	old := avroPayload(t, s1, map[string]any{"id": int64(1), "name": "old", "price": float32(1.5), "qty": 3,
		"amount": big.NewRat(199, 100), "addr": map[string]any{"city": "Oslo"}})
	cur := avroPayload(t, s2, map[string]any{"id": int64(2), "price": 2.25, "qty": int64(1 << 40),
		"amount": big.NewRat(123456789012, 100), "addr": map[string]any{"city": "Bergen", "zip": 5000},
		"email": map[string]any{"string": "a@b.c"}, "tags": []any{"x"}})
	for i, v := range [][]byte{wire(1, old), wire(2, cur), wire(1, old)} {
		if err := c.Append(ctx, 0, stream.DecodedRecord{Offset: int64(i), Value: v}); err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
	}
	if fs.calls != 2 {
		t.Errorf("%d schema lookups for 2 ids, want each read once", fs.calls)
	}
	rec := c.NewRecord()
	defer rec.Release()
	want := []string{
		`{"addr":{"city":"Oslo","zip":null},"amount":"1.99","email":null,"id":1,"name":"old","price":1.5,"qty":3,"tags":null}`,
		`{"addr":{"city":"Bergen","zip":5000},"amount":"1234567890.12","email":"a@b.c","id":2,"name":null,"price":2.25,"qty":1099511627776,"tags":["x"]}`,
		`{"addr":{"city":"Oslo","zip":null},"amount":"1.99","email":null,"id":1,"name":"old","price":1.5,"qty":3,"tags":null}`,
	}
	got := rowsJSON(t, rec, false)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("rows:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestConvertRefused checks that records that cannot become rows are
// refused with ErrConvert (or ErrTombstone) and the reason, and leave
// the rows appended so far as they were.
func TestConvertRefused(t *testing.T) {
	ctx := context.Background()
	s2 := parseSchema(t, "AVRO", avroV2)
	// v1 without name, so the table has a column for each of its fields.
	s1 := parseSchema(t, "AVRO", strings.Replace(avroV1, `{"name":"name","type":"string"},`, "", 1))
	// A table made from v2 alone: addr.zip is required, and a v1 record
	// has none.
	v2, err := TableSchema(s2, nil)
	if err != nil {
		t.Fatal(err)
	}
	wrongType := parseSchema(t, "AVRO", `{"type":"record","name":"R","fields":[{"name":"id","type":"string"},{"name":"addr","type":{"type":"record","name":"Addr","fields":[{"name":"city","type":"string"},{"name":"zip","type":"int"}]}}]}`)
	union := parseSchema(t, "AVRO", `{"type":"record","name":"R","fields":[{"name":"id","type":["int","string"]}]}`)
	fs := &fakeSchemas{byID: map[int]registry.Schema{1: s1, 2: s2, 3: wrongType, 4: union}}
	c, err := NewConverter(v2, fs)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Release()
	good := wire(2, avroPayload(t, s2, map[string]any{"id": int64(9), "price": 1.0, "qty": int64(1),
		"amount": big.NewRat(1, 1), "addr": map[string]any{"city": "Oslo", "zip": 1}, "email": nil, "tags": []any{}}))
	v1rec := wire(1, avroPayload(t, s1, map[string]any{"id": int64(1), "price": float32(1), "qty": 1,
		"amount": big.NewRat(1, 1), "addr": map[string]any{"city": "Oslo"}}))
	stringID := wire(3, avroPayload(t, wrongType, map[string]any{"id": "x", "addr": map[string]any{"city": "Oslo", "zip": 1}}))
	unionRec := wire(4, avroPayload(t, union, map[string]any{"id": map[string]any{"int": 1}}))
	if err := c.Append(ctx, 0, stream.DecodedRecord{Offset: 0, Value: good}); err != nil {
		t.Fatal(err)
	}
	bad := []struct {
		name    string
		value   []byte
		wantErr error
		reason  string
	}{
		{"tombstone", nil, ErrTombstone, ""},
		{"no magic byte", append([]byte{1}, good[1:]...), ErrConvert, "wire format"},
		{"too short", []byte{0, 0, 0}, ErrConvert, "wire format"},
		{"plain text", []byte("hello world"), ErrConvert, "wire format"},
		{"unknown id", wire(99, good[5:]), ErrConvert, "unknown schema id 99"},
		{"truncated payload", good[:len(good)-2], ErrConvert, "payload does not match"},
		{"trailing bytes", append(append([]byte(nil), good...), 1, 2), ErrConvert, "trailing"},
		{"required column missing", v1rec, ErrConvert, "required column addr.zip"},
		{"type mismatch", stringID, ErrConvert, "type mismatch"},
		{"writer schema without a table form", unionRec, ErrConvert, "union"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			err := c.Append(ctx, 0, stream.DecodedRecord{Offset: 1, Value: tc.value})
			if !errors.Is(err, tc.wantErr) || !strings.Contains(err.Error(), tc.reason) {
				t.Fatalf("err = %v, want %v saying %q", err, tc.wantErr, tc.reason)
			}
			if c.Len() != 1 {
				t.Fatalf("Len = %d after a refused record, want 1", c.Len())
			}
		})
	}
	if err := c.Append(ctx, 0, stream.DecodedRecord{Offset: 2, Value: good}); err != nil {
		t.Fatal(err)
	}
	rec := c.NewRecord()
	defer rec.Release()
	for i, col := range rec.Columns() {
		if col.Len() != int(rec.NumRows()) {
			t.Fatalf("column %s has %d values, the record %d rows", rec.ColumnName(i), col.Len(), rec.NumRows())
		}
	}
	got := rowsJSON(t, rec, true)
	if len(got) != 2 || !strings.Contains(got[0], `"_offset":0`) || !strings.Contains(got[1], `"_offset":2`) {
		t.Fatalf("rows = %v, want the two good records only", got)
	}

	// A registry failure other than an unknown id is not the record's
	// fault: it is returned as it is, for the caller to retry.
	failing := &failingSchemas{err: errors.New("registry: closed")}
	c2, err := NewConverter(v2, failing)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Release()
	if err := c2.Append(ctx, 0, stream.DecodedRecord{Value: good}); err == nil || errors.Is(err, ErrConvert) || !errors.Is(err, failing.err) {
		t.Fatalf("err = %v, want the registry's error, not ErrConvert", err)
	}
}

type failingSchemas struct{ err error }

func (f *failingSchemas) SchemaByID(context.Context, int) (registry.Schema, registry.SchemaInfo, error) {
	return nil, registry.SchemaInfo{}, f.err
}

func (f *failingSchemas) LatestForSubject(context.Context, string) (registry.Schema, registry.SubjectSchema, error) {
	return nil, registry.SubjectSchema{}, f.err
}

// TestConvertNonRecordValues checks values whose schema is not a record:
// one column named value, null when the value is.
func TestConvertNonRecordValues(t *testing.T) {
	ctx := context.Background()
	s := parseSchema(t, "AVRO", `["null","string"]`)
	sc, err := TableSchema(s, nil)
	if err != nil {
		t.Fatal(err)
	}
	c, err := NewConverter(sc, &fakeSchemas{byID: map[int]registry.Schema{3: s}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Release()
	for i, v := range []any{map[string]any{"string": "text"}, nil} {
		if err := c.Append(ctx, 0, stream.DecodedRecord{Offset: int64(i), Value: wire(3, avroPayload(t, s, v))}); err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
	}
	rec := c.NewRecord()
	defer rec.Release()
	if got := strings.Join(rowsJSON(t, rec, false), "\n"); got != `{"value":"text"}`+"\n"+`{"value":null}` {
		t.Fatalf("rows:\n%s", got)
	}
}

// TestConvertTimeOverflow checks that a timestamp in milliseconds too
// large for microseconds is refused, not wrapped around.
func TestConvertTimeOverflow(t *testing.T) {
	s := parseSchema(t, "AVRO", `{"type":"record","name":"R","fields":[{"name":"at","type":{"type":"long","logicalType":"timestamp-millis"}}]}`)
	sc, err := TableSchema(s, nil)
	if err != nil {
		t.Fatal(err)
	}
	c, err := NewConverter(sc, &fakeSchemas{byID: map[int]registry.Schema{1: s}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Release()
	// The long 2^62 as Avro writes it: zig-zag varint.
	payload := binaryAppendZigzag(nil, 1<<62)
	err = c.Append(context.Background(), 0, stream.DecodedRecord{Value: wire(1, payload)})
	if !errors.Is(err, ErrConvert) || !strings.Contains(err.Error(), "overflows") || c.Len() != 0 {
		t.Fatalf("err = %v, Len %d; want ErrConvert saying it overflows, no row", err, c.Len())
	}
}

func binaryAppendZigzag(b []byte, v int64) []byte {
	u := uint64(v<<1) ^ uint64(v>>63)
	for u >= 0x80 {
		b = append(b, byte(u)|0x80)
		u >>= 7
	}
	return append(b, byte(u))
}

// TestConvertEvolutionFormats evolves a table per format: v2 adds a
// field (new id after the highest, optional) and widens one, and a
// record of the v1 writer projects onto the v2 table with the new column
// null and the widened one promoted.
func TestConvertEvolutionFormats(t *testing.T) {
	tests := []struct {
		name, schemaType, v1, v2 string
		// wantAdded is how the changed columns render in the v2 table.
		wantAdded []string
		payload   func(t *testing.T, s registry.Schema) []byte
		want      string
	}{
		{
			name: "protobuf", schemaType: "PROTOBUF",
			v1:        `syntax = "proto3"; message Order { int32 qty = 1; float ratio = 2; Line line = 3; } message Line { string sku = 1; }`,
			v2:        `syntax = "proto3"; message Order { int64 qty = 1; double ratio = 2; Line line = 3; optional string note = 4; } message Line { string sku = 1; int32 count = 2; }`,
			wantAdded: []string{"8 qty long\n9 ratio double\n10 line? struct<11 sku string, 12 count? int>\n13 note? string\n"},
			payload: func(t *testing.T, s registry.Schema) []byte {
				return protoPayload(t, s, func(m *dynamicpb.Message) {
					protoSet(m, map[string]any{"qty": protoreflect.ValueOfInt32(5), "ratio": protoreflect.ValueOfFloat32(0.25),
						"line": setFields(map[string]any{"sku": protoreflect.ValueOfString("A-1")})})
				})
			},
			want: `{"line":{"count":null,"sku":"A-1"},"note":null,"qty":5,"ratio":0.25}`,
		},
		{
			name: "json schema", schemaType: "JSON",
			v1:        `{"type":"object","properties":{"qty":{"type":"integer"},"line":{"type":"object","properties":{"sku":{"type":"string"}}}}}`,
			v2:        `{"type":"object","properties":{"qty":{"type":"integer"},"line":{"type":"object","properties":{"sku":{"type":"string"},"count":{"type":"integer"}}},"note":{"type":"string"}}}`,
			wantAdded: []string{"8 line? struct<9 sku? string, 11 count? long>\n", "12 note? string\n"},
			payload: func(t *testing.T, s registry.Schema) []byte {
				return []byte(`{"qty":5,"line":{"sku":"A-1"}}`)
			},
			want: `{"line":{"count":null,"sku":"A-1"},"note":null,"qty":5}`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s1, s2 := parseSchema(t, tc.schemaType, tc.v1), parseSchema(t, tc.schemaType, tc.v2)
			v1, err := TableSchema(s1, nil)
			if err != nil {
				t.Fatal(err)
			}
			v2, err := TableSchema(s2, v1)
			if err != nil {
				t.Fatal(err)
			}
			for _, want := range tc.wantAdded {
				if got := render(v2); !strings.Contains(got, want) {
					t.Fatalf("v2 table:\n%s\nwant it to hold:\n%s", got, want)
				}
			}
			c, err := NewConverter(v2, &fakeSchemas{byID: map[int]registry.Schema{1: s1, 2: s2}})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Release()
			if err := c.Append(context.Background(), 0, stream.DecodedRecord{Value: wire(1, tc.payload(t, s1))}); err != nil {
				t.Fatal(err)
			}
			rec := c.NewRecord()
			defer rec.Release()
			if got := strings.Join(rowsJSON(t, rec, false), "\n"); got != tc.want {
				t.Fatalf("row %s, want %s", got, tc.want)
			}
		})
	}
}

// TestConvertProtobufMessageIndexes checks that a record's message
// indexes choose the message it is decoded with (here a nested one), and
// that it is projected onto the table, made from the file's first
// message, by field name.
func TestConvertProtobufMessageIndexes(t *testing.T) {
	s := parseSchema(t, "PROTOBUF", `syntax = "proto3";
message Order { string sku = 1; int32 qty = 2; string extra = 3;
  message Legacy { int32 qty = 1; string sku = 2; } }`)
	sc, err := TableSchema(s, nil)
	if err != nil {
		t.Fatal(err)
	}
	c, err := NewConverter(sc, &fakeSchemas{byID: map[int]registry.Schema{1: s}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Release()
	md := s.(*protobuf.Schema).File().Messages().Get(0).Messages().Get(0)
	m := dynamicpb.NewMessage(md)
	protoSet(m, map[string]any{"qty": protoreflect.ValueOfInt32(3), "sku": protoreflect.ValueOfString("B-2")})
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	idx, err := protobuf.MessageIndexes(s, "Order.Legacy")
	if err != nil {
		t.Fatal(err)
	}
	// extra is required (a proto3 scalar) and Legacy has none.
	err = c.Append(context.Background(), 0, stream.DecodedRecord{Value: wire(1, append(protobuf.AppendIndexes(nil, idx), b...))})
	if !errors.Is(err, ErrConvert) || !strings.Contains(err.Error(), "required column extra") {
		t.Fatalf("err = %v, want ErrConvert for the missing required column extra", err)
	}
	// The same payload with Order's indexes reads as an Order: field 1
	// of Legacy is a varint, Order's sku is a string, so it fails to
	// decode.
	err = c.Append(context.Background(), 0, stream.DecodedRecord{Value: wire(1, append(protobuf.AppendIndexes(nil, []int{0}), b...))})
	if !errors.Is(err, ErrConvert) {
		t.Fatalf("err = %v, want ErrConvert", err)
	}
	if c.Len() != 0 {
		t.Fatalf("Len = %d", c.Len())
	}
}

// TestConvertMismatchOnlyWithValue checks that a writer field of another
// type than its column refuses the records holding a value there, and
// not those where it is null.
func TestConvertMismatchOnlyWithValue(t *testing.T) {
	ctx := context.Background()
	table := parseSchema(t, "AVRO", `{"type":"record","name":"R","fields":[{"name":"k","type":"long"},{"name":"id","type":["null","long"]}]}`)
	other := parseSchema(t, "AVRO", `{"type":"record","name":"R","fields":[{"name":"k","type":"long"},{"name":"id","type":["null","string"]}]}`)
	sc, err := TableSchema(table, nil)
	if err != nil {
		t.Fatal(err)
	}
	c, err := NewConverter(sc, &fakeSchemas{byID: map[int]registry.Schema{1: other}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Release()
	if err := c.Append(ctx, 0, stream.DecodedRecord{Value: wire(1, avroPayload(t, other, map[string]any{"k": int64(1), "id": nil}))}); err != nil {
		t.Fatalf("null in the mismatched field: %v", err)
	}
	err = c.Append(ctx, 0, stream.DecodedRecord{Value: wire(1, avroPayload(t, other, map[string]any{"k": int64(2), "id": map[string]any{"string": "x"}}))})
	if !errors.Is(err, ErrConvert) || !strings.Contains(err.Error(), "column id is long, the writer's schema has string") {
		t.Fatalf("err = %v, want ErrConvert naming column id", err)
	}
	rec := c.NewRecord()
	defer rec.Release()
	if got := strings.Join(rowsJSON(t, rec, false), "\n"); got != `{"id":null,"k":1}` {
		t.Fatalf("rows %s", got)
	}
}

// TestConvertNewColumns checks that a record whose writer schema has
// fields the table lacks is refused with a *NewColumnsError naming them
// (not converted with those fields dropped), and that the table schema
// merged with that writer's takes it.
func TestConvertNewColumns(t *testing.T) {
	ctx := context.Background()
	s1, s2 := parseSchema(t, "AVRO", avroV1), parseSchema(t, "AVRO", avroV2)
	v1, err := TableSchema(s1, nil)
	if err != nil {
		t.Fatal(err)
	}
	fs := &fakeSchemas{byID: map[int]registry.Schema{1: s1, 2: s2}}
	c, err := NewConverter(v1, fs)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Release()
	newer := wire(2, avroPayload(t, s2, map[string]any{"id": int64(2), "price": 2.25, "qty": int64(7),
		"amount": big.NewRat(5, 1), "addr": map[string]any{"city": "Bergen", "zip": 5000},
		"email": nil, "tags": []any{"x"}}))
	err = c.Append(ctx, 0, stream.DecodedRecord{Value: newer})
	var nc *NewColumnsError
	if !errors.As(err, &nc) || !errors.Is(err, ErrNewColumns) || errors.Is(err, ErrConvert) {
		t.Fatalf("err = %v, want a *NewColumnsError", err)
	}
	if nc.SchemaID != 2 || nc.Schema != s2 || strings.Join(nc.Fields, ",") != "email,tags,addr.zip" {
		t.Fatalf("NewColumnsError = %+v", nc)
	}
	if c.Len() != 0 {
		t.Fatalf("Len = %d", c.Len())
	}
	v2, err := TableSchema(nc.Schema, v1)
	if err != nil {
		t.Fatal(err)
	}
	c2, err := NewConverter(v2, fs)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Release()
	if err := c2.Append(ctx, 0, stream.DecodedRecord{Value: newer}); err != nil {
		t.Fatal(err)
	}
	rec := c2.NewRecord()
	defer rec.Release()
	want := `{"addr":{"city":"Bergen","zip":5000},"amount":"5","email":null,"id":2,"name":null,"price":2.25,"qty":7,"tags":["x"]}`
	if got := strings.Join(rowsJSON(t, rec, false), "\n"); got != want {
		t.Fatalf("row %s, want %s", got, want)
	}
}
