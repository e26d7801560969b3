package tableflow

import (
	"errors"
	"strings"
	"testing"

	"github.com/apache/iceberg-go"

	"github.com/runnel-dev/runnel/internal/config"
)

// Schemas with every value type each format maps, shared with the
// conversion tests.
const (
	avroAll = `{"type":"record","name":"Order","namespace":"shop","fields":[
 {"name":"flag","type":"boolean"},
 {"name":"qty","type":"int"},
 {"name":"id","type":"long"},
 {"name":"ratio","type":"float"},
 {"name":"price","type":"double"},
 {"name":"name","type":"string"},
 {"name":"blob","type":"bytes"},
 {"name":"hash","type":{"type":"fixed","name":"Hash","size":4}},
 {"name":"amount","type":{"type":"bytes","logicalType":"decimal","precision":10,"scale":2}},
 {"name":"famount","type":{"type":"fixed","name":"Dec","size":8,"logicalType":"decimal","precision":12,"scale":3}},
 {"name":"day","type":{"type":"int","logicalType":"date"}},
 {"name":"tmillis","type":{"type":"int","logicalType":"time-millis"}},
 {"name":"tmicros","type":{"type":"long","logicalType":"time-micros"}},
 {"name":"tsmillis","type":{"type":"long","logicalType":"timestamp-millis"}},
 {"name":"tsmicros","type":{"type":"long","logicalType":"timestamp-micros"}},
 {"name":"local","type":{"type":"long","logicalType":"local-timestamp-micros"}},
 {"name":"uid","type":{"type":"string","logicalType":"uuid"}},
 {"name":"status","type":{"type":"enum","name":"Status","symbols":["NEW","DONE"]}},
 {"name":"note","type":["null","string"],"default":null},
 {"name":"tags","type":{"type":"array","items":"string"}},
 {"name":"attrs","type":{"type":"map","values":["null","long"]}},
 {"name":"addr","type":["null",{"type":"record","name":"Addr","fields":[{"name":"city","type":"string"},{"name":"zip","type":["null","int"]}]}]}
]}`
	protoAll = `syntax = "proto3";
package shop;
import "google/protobuf/timestamp.proto";
import "google/protobuf/wrappers.proto";
message Order {
  bool flag = 1;
  int32 qty = 2;
  int64 id = 3;
  uint32 u32 = 4;
  uint64 u64 = 5;
  sint32 s32 = 6;
  float ratio = 7;
  double price = 8;
  string name = 9;
  bytes blob = 10;
  Status status = 11;
  optional string note = 12;
  repeated string tags = 13;
  map<string, int64> attrs = 14;
  map<int32, Addr> by_num = 15;
  Addr addr = 16;
  google.protobuf.Timestamp at = 17;
  google.protobuf.Int64Value maybe = 18;
  oneof pick {
    string text = 19;
    int32 num = 20;
  }
  repeated Addr addrs = 21;
}
enum Status {
  NEW = 0;
  DONE = 1;
}
message Addr {
  string city = 1;
  int32 zip = 2;
}
`
	jsonAll = `{"type":"object","title":"Order","properties":{
 "flag":{"type":"boolean"},
 "qty":{"type":"integer"},
 "price":{"type":"number"},
 "name":{"type":"string"},
 "day":{"type":"string","format":"date"},
 "at":{"type":"string","format":"date-time"},
 "uid":{"type":"string","format":"uuid"},
 "status":{"enum":["NEW","DONE"]},
 "note":{"type":["string","null"]},
 "tags":{"type":"array","items":{"type":"string"}},
 "attrs":{"type":"object","additionalProperties":{"type":"integer"}},
 "addr":{"$ref":"#/definitions/Addr"},
 "maybe":{"anyOf":[{"type":"null"},{"type":"integer"}]}
},
"required":["flag","qty","name","addr"],
"definitions":{"Addr":{"type":"object","properties":{"city":{"type":"string"},"zip":{"type":"integer"}},"required":["city"]}}}`
)

// fixedRendered is how the fixed columns render.
const fixedRendered = `1 _partition int
2 _offset long
3 _timestamp timestamptz
4 _key? binary
5 _headers? map<6 string, 7? binary>
`

func TestTableSchemaFromValueSchemas(t *testing.T) {
	tests := []struct {
		name, schemaType, text string
		want                   string // after the fixed columns
	}{
		{name: "schemaless", want: "8 _value? binary\n"},
		{name: "avro", schemaType: "AVRO", text: avroAll, want: `8 flag boolean
9 qty int
10 id long
11 ratio float
12 price double
13 name string
14 blob binary
15 hash fixed[4]
16 amount decimal(10, 2)
17 famount decimal(12, 3)
18 day date
19 tmillis time
20 tmicros time
21 tsmillis timestamptz
22 tsmicros timestamptz
23 local timestamp
24 uid uuid
25 status string
26 note? string
27 tags list<28 string>
29 attrs map<30 string, 31? long>
32 addr? struct<33 city string, 34 zip? int>
`},
		{name: "avro primitive", schemaType: "AVRO", text: `"string"`, want: "8 value string\n"},
		{name: "protobuf", schemaType: "PROTOBUF", text: protoAll, want: `8 flag boolean
9 qty int
10 id long
11 u32 long
12 u64 decimal(20, 0)
13 s32 int
14 ratio float
15 price double
16 name string
17 blob binary
18 status string
19 note? string
20 tags list<21 string>
22 attrs map<23 string, 24? long>
25 by_num map<26 int, 27? struct<28 city string, 29 zip int>>
30 addr? struct<31 city string, 32 zip int>
33 at? timestamptz
34 maybe? long
35 text? string
36 num? int
37 addrs list<38 struct<39 city string, 40 zip int>>
`},
		{name: "json schema", schemaType: "JSON", text: jsonAll, want: `8 addr struct<9 city string, 10 zip? long>
11 at? timestamptz
12 attrs? map<13 string, 14? long>
15 day? date
16 flag boolean
17 maybe? long
18 name string
19 note? string
20 price? double
21 qty long
22 status? string
23 tags? list<24 string>
25 uid? uuid
`},
		{name: "json array", schemaType: "JSON", text: `{"type":"array","items":{"type":"number"}}`, want: "8 value list<9 double>\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var sc *iceberg.Schema
			var err error
			if tc.schemaType == "" {
				sc, err = TableSchema(nil, nil)
			} else {
				sc, err = TableSchema(parseSchema(t, tc.schemaType, tc.text), nil)
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := render(sc); got != fixedRendered+tc.want {
				t.Errorf("schema:\n%s\nwant:\n%s", got, fixedRendered+tc.want)
			}
		})
	}
}

func TestTableSchemaUnsupported(t *testing.T) {
	tests := []struct {
		name, schemaType, text string
		wantErr                error
		mention                string
	}{
		{"avro union", "AVRO", `{"type":"record","name":"R","fields":[{"name":"either","type":["int","string"]}]}`, ErrUnsupportedSchema, "either"},
		{"avro recursive", "AVRO", `{"type":"record","name":"Node","fields":[{"name":"next","type":["null","Node"]}]}`, ErrUnsupportedSchema, "next"},
		{"protobuf recursive", "PROTOBUF", `syntax = "proto3"; message Node { Node next = 1; }`, ErrUnsupportedSchema, "next"},
		{"json recursive", "JSON", `{"type":"object","properties":{"child":{"$ref":"#"}}}`, ErrUnsupportedSchema, "child"},
		{"json oneOf", "JSON", `{"type":"object","properties":{"x":{"oneOf":[{"type":"string"},{"type":"integer"}]}}}`, ErrUnsupportedSchema, "x"},
		{"json open object", "JSON", `{"type":"object","properties":{"free":{"type":"object"}}}`, ErrUnsupportedSchema, "free"},
		{"avro collision", "AVRO", `{"type":"record","name":"R","fields":[{"name":"_offset","type":"long"}]}`, ErrIncompatibleSchema, "_offset"},
		{"json collision", "JSON", `{"type":"object","properties":{"_key":{"type":"string"}}}`, ErrIncompatibleSchema, "_key"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := TableSchema(parseSchema(t, tc.schemaType, tc.text), nil)
			if !errors.Is(err, tc.wantErr) || !strings.Contains(err.Error(), tc.mention) {
				t.Fatalf("err = %v, want %v naming %q", err, tc.wantErr, tc.mention)
			}
		})
	}
}

const (
	avroV1 = `{"type":"record","name":"R","fields":[
 {"name":"id","type":"long"},
 {"name":"name","type":"string"},
 {"name":"price","type":"float"},
 {"name":"qty","type":"int"},
 {"name":"amount","type":{"type":"bytes","logicalType":"decimal","precision":10,"scale":2}},
 {"name":"addr","type":{"type":"record","name":"Addr","fields":[{"name":"city","type":"string"}]}}
]}`
	// avroV2 drops name, adds addr.zip and email, widens price, qty and
	// amount.
	avroV2 = `{"type":"record","name":"R","fields":[
 {"name":"id","type":"long"},
 {"name":"price","type":"double"},
 {"name":"qty","type":"long"},
 {"name":"amount","type":{"type":"bytes","logicalType":"decimal","precision":12,"scale":2}},
 {"name":"addr","type":{"type":"record","name":"Addr","fields":[{"name":"city","type":"string"},{"name":"zip","type":"int"}]}},
 {"name":"email","type":["null","string"],"default":null},
 {"name":"tags","type":{"type":"array","items":"string"}}
]}`
)

func TestTableSchemaEvolution(t *testing.T) {
	v1, err := TableSchema(parseSchema(t, "AVRO", avroV1), nil)
	if err != nil {
		t.Fatal(err)
	}
	want1 := fixedRendered + `8 id long
9 name string
10 price float
11 qty int
12 amount decimal(10, 2)
13 addr struct<14 city string>
`
	if got := render(v1); got != want1 {
		t.Fatalf("v1:\n%s\nwant:\n%s", got, want1)
	}
	same, err := TableSchema(parseSchema(t, "AVRO", avroV1), v1)
	if err != nil || same != v1 {
		t.Fatalf("unchanged schema: %v, %v (want the current schema itself)", same, err)
	}

	v2, err := TableSchema(parseSchema(t, "AVRO", avroV2), v1)
	if err != nil {
		t.Fatal(err)
	}
	// Ids kept, name stays (optional now), zip then email then tags get
	// 15.. in the order v2 declares them, all optional; promotions applied.
	want2 := fixedRendered + `8 id long
9 name? string
10 price double
11 qty long
12 amount decimal(12, 2)
13 addr struct<14 city string, 15 zip? int>
16 email? string
17 tags? list<18 string>
`
	if got := render(v2); got != want2 {
		t.Fatalf("v2:\n%s\nwant:\n%s", got, want2)
	}
	if v2.ID != v1.ID+1 {
		t.Errorf("v2 schema id %d, want %d", v2.ID, v1.ID+1)
	}
	// An older writer's narrower types are read by the wider columns: no
	// change.
	back, err := TableSchema(parseSchema(t, "AVRO", avroV1), v2)
	if err != nil {
		t.Fatal(err)
	}
	if got := render(back); got != want2 {
		t.Fatalf("v1 after v2:\n%s\nwant:\n%s", got, want2)
	}

	incompatible := []struct{ name, text, field string }{
		{"long to string", `{"type":"record","name":"R","fields":[{"name":"id","type":"string"}]}`, "id"},
		{"nested", `{"type":"record","name":"R","fields":[{"name":"addr","type":{"type":"record","name":"Addr","fields":[{"name":"city","type":"int"}]}}]}`, "addr.city"},
		{"decimal scale", `{"type":"record","name":"R","fields":[{"name":"amount","type":{"type":"bytes","logicalType":"decimal","precision":12,"scale":3}}]}`, "amount"},
		{"struct to list", `{"type":"record","name":"R","fields":[{"name":"addr","type":{"type":"array","items":"string"}}]}`, "addr"},
		{"list element", `{"type":"record","name":"R","fields":[{"name":"tags","type":{"type":"array","items":"int"}}]}`, "tags.element"},
	}
	for _, tc := range incompatible {
		t.Run(tc.name, func(t *testing.T) {
			_, err := TableSchema(parseSchema(t, "AVRO", tc.text), v2)
			if !errors.Is(err, ErrIncompatibleSchema) || !strings.Contains(err.Error(), "field "+tc.field+":") {
				t.Fatalf("err = %v, want ErrIncompatibleSchema naming field %s", err, tc.field)
			}
		})
	}
}

func TestPartitionSpec(t *testing.T) {
	sc, err := TableSchema(parseSchema(t, "AVRO", avroAll), nil)
	if err != nil {
		t.Fatal(err)
	}
	good := []struct{ by, want string }{
		{config.DefaultTablePartitionBy, "[ 1000: _timestamp_day: day(3) ]"},
		{"none", "[]"},
		{"identity(_partition), bucket(16, _key)", "[ 1000: _partition: identity(1) 1001: _key_bucket: bucket[16](4) ]"},
		{"truncate(4, addr.city), month(day), hour(local)", "[ 1000: addr_city_trunc: truncate[4](33) 1001: day_month: month(18) 1002: local_hour: hour(23) ]"},
	}
	for _, tc := range good {
		fields, err := config.ParsePartitionBy(tc.by)
		if err != nil {
			t.Fatal(err)
		}
		spec, err := PartitionSpec(sc, fields)
		if err != nil {
			t.Fatalf("%s: %v", tc.by, err)
		}
		if got := strings.Join(strings.Fields(spec.String()), " "); got != tc.want {
			t.Errorf("%s: spec %s, want %s", tc.by, got, tc.want)
		}
	}
	bad := []struct{ by, mention string }{
		{"day(nope)", "no column nope"},
		{"day(name)", "day cannot be applied to column name of type string"},
		{"truncate(2, day)", "truncate cannot be applied to column day"},
		{"identity(addr)", "column addr is a struct"},
		{"identity(tags.element)", "tags is a list"},
		{"bucket(4, attrs)", "column attrs is a map"},
	}
	for _, tc := range bad {
		fields, err := config.ParsePartitionBy(tc.by)
		if err != nil {
			t.Fatal(err)
		}
		_, err = PartitionSpec(sc, fields)
		if err == nil || !strings.Contains(err.Error(), tc.mention) {
			t.Errorf("%s: err = %v, want one saying %q", tc.by, err, tc.mention)
		}
	}
}
