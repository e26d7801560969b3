package config

import (
	"reflect"
	"testing"
)

func TestParsePartitionBy(t *testing.T) {
	tests := []struct {
		in   string
		want []PartitionField
		bad  bool
	}{
		{in: "", want: nil},
		{in: "none", want: nil},
		{in: "day(_timestamp)", want: []PartitionField{{Transform: "day", Column: "_timestamp"}}},
		{in: " identity(region) , bucket(16, user.id), truncate(4,name)", want: []PartitionField{
			{Transform: "identity", Column: "region"}, {Transform: "bucket", Param: 16, Column: "user.id"}, {Transform: "truncate", Param: 4, Column: "name"}}},
		{in: "Hour(_timestamp)", want: []PartitionField{{Transform: "hour", Column: "_timestamp"}}},
		{in: "day(_timestamp),", bad: true},
		{in: "day(_timestamp) hour(_timestamp)", bad: true},
		{in: "day()", bad: true},
		{in: "bucket(x, c)", bad: true},
		{in: "bucket(0, c)", bad: true},
		{in: "bucket(c)", bad: true},
		{in: "day(a, b)", bad: true},
		{in: "sorted(c)", bad: true},
		{in: "day(c), day(c)", bad: true},
		{in: "day", bad: true},
	}
	for _, tt := range tests {
		got, err := ParsePartitionBy(tt.in)
		if (err != nil) != tt.bad || !tt.bad && !reflect.DeepEqual(got, tt.want) {
			t.Errorf("ParsePartitionBy(%q) = %+v, %v", tt.in, got, err)
		}
	}
}

func TestTableConfigs(t *testing.T) {
	tc, err := ResolveTopic(map[string]string{"table.enabled": "true", "table.mode": "upsert", "table.partition.by": "bucket(8, _key)"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	tb := tc.Table
	if !tb.Enabled || tb.Mode != "upsert" || tb.CommitIntervalMs != 60000 || tb.ErrorMode != "suspend" || tb.RetentionSnapshots != 100 ||
		!reflect.DeepEqual(tb.PartitionBy, []PartitionField{{Transform: "bucket", Param: 8, Column: "_key"}}) {
		t.Fatalf("table = %+v", tb)
	}
	if ns, name := tb.TableIdent("orders.eu"); ns != "default" || name != "orders_eu" {
		t.Fatalf("ident = %s.%s", ns, name)
	}
	if tb.DLQTopic("orders") != "orders-table-dlq" {
		t.Fatalf("dlq = %s", tb.DLQTopic("orders"))
	}
	def, err := ResolveTopic(nil, nil)
	if err != nil || !reflect.DeepEqual(def.Table.PartitionBy, []PartitionField{{Transform: "day", Column: "_timestamp"}}) || def.Table.Mode != "append" {
		t.Fatalf("defaults = %+v %v", def.Table, err)
	}
	for k, v := range map[string]string{"table.mode": "merge", "table.commit.interval.ms": "999", "table.partition.by": "day(",
		"table.namespace": "a.b", "table.error.mode": "ignore", "table.retention.snapshots": "0"} {
		if _, err := ResolveTopic(map[string]string{k: v}, nil); err == nil {
			t.Errorf("%s=%s accepted", k, v)
		}
	}
}
