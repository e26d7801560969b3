package tableflow

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/table"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-dev/runnel/internal/registry"
	"github.com/runnel-dev/runnel/internal/registry/jsonschema"
	"github.com/runnel-dev/runnel/internal/stream"
)

// produceValues writes one batch of raw values to partition 0.
func (v *loopEnv) produceValues(t *testing.T, keys, values [][]byte) {
	t.Helper()
	recs := make([]kmsg.Record, len(values))
	for i := range values {
		recs[i] = kmsg.Record{Key: keys[i], Value: values[i]}
	}
	res := v.log.Produce(context.Background(), []stream.ProduceBatch{{Topic: v.topic.Name, Records: stream.EncodeBatch(-1, -1, 0, 1700000000000, recs)}})
	if res[0].Err != nil {
		t.Fatal(res[0].Err)
	}
}

// scanColumns returns, per row in offset order, the named columns as text.
func (v *loopEnv) scanColumns(t *testing.T, cols ...string) []string {
	t.Helper()
	tbl, err := v.cat.LoadTable(context.Background(), v.ident)
	if err != nil {
		t.Fatal(err)
	}
	at, err := tbl.Scan().ToArrowTable(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer at.Release()
	rows := map[int64]string{}
	rdr := array.NewTableReader(at, 1024)
	defer rdr.Release()
	for rdr.Next() {
		rec := rdr.RecordBatch()
		offs := rec.Column(rec.Schema().FieldIndices(ColOffset)[0]).(*array.Int64)
		for i := 0; i < int(rec.NumRows()); i++ {
			var parts []string
			for _, c := range cols {
				idx := rec.Schema().FieldIndices(c)
				if len(idx) == 0 {
					parts = append(parts, c+"=absent")
					continue
				}
				col := rec.Column(idx[0])
				if col.IsNull(i) {
					parts = append(parts, c+"=null")
				} else {
					parts = append(parts, c+"="+col.ValueStr(i))
				}
			}
			rows[offs.Value(i)] = strings.Join(parts, " ")
		}
	}
	var out []string
	for o := int64(0); o < int64(len(rows)); o++ {
		out = append(out, rows[o])
	}
	return out
}

// A record written with a newer version of the value schema than the
// table's makes the table take that version first: its new field is a
// column, older rows read it as null, and nothing is dropped.
func TestMaterialiseTakesNewerWriterSchema(t *testing.T) {
	v1 := parseSchema(t, jsonschema.TypeName, `{"type":"object","properties":{"a":{"type":"integer"}},"required":["a"]}`)
	v2 := parseSchema(t, jsonschema.TypeName, `{"type":"object","properties":{"a":{"type":"integer"},"b":{"type":"string"}},"required":["a"]}`)
	sc, err := TableSchema(v1, nil)
	if err != nil {
		t.Fatal(err)
	}
	v := newLoopEnvSchema(t, 1, sc, false)
	schemas := &fakeSchemas{byID: map[int]registry.Schema{1: v1, 2: v2}}
	m := v.materialiser(t, "suspend")
	m.convert = func(sc *iceberg.Schema) (rowConverter, error) { return NewConverter(sc, schemas) }
	v.produceValues(t, [][]byte{nil, nil, nil}, [][]byte{
		wire(1, []byte(`{"a":1}`)), wire(2, []byte(`{"a":2,"b":"x"}`)), wire(1, []byte(`{"a":3}`))})
	catchUp(t, m)
	got := strings.Join(v.scanColumns(t, "a", "b"), "; ")
	if want := "a=1 b=null; a=2 b=x; a=3 b=null"; got != want {
		t.Fatalf("rows %s, want %s", got, want)
	}
}

// Upsert mode through the loop: one row per live key with its newest
// value; a tombstone deletes the key's row.
func TestMaterialiseUpsert(t *testing.T) {
	sc, err := TableSchema(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if sc, err = UpsertSchema(sc); err != nil {
		t.Fatal(err)
	}
	v := newLoopEnvSchema(t, 1, sc, false)
	m := v.materialiser(t, "suspend")
	m.upsert = true
	m.convert = func(sc *iceberg.Schema) (rowConverter, error) { return NewConverter(sc, nil) }
	k := func(s string) []byte { return []byte(s) }
	v.produceValues(t, [][]byte{k("a"), k("b"), k("a"), k("c")}, [][]byte{k("a1"), k("b1"), k("a2"), k("c1")})
	catchUp(t, m)
	v.produceValues(t, [][]byte{k("b"), k("c"), nil}, [][]byte{nil, k("c2"), k("keyless")})
	if _, err := m.step(context.Background()); err == nil || !strings.Contains(err.Error(), "without a key") {
		t.Fatalf("a keyless record in upsert mode: %v, want the error mode (suspend)", err)
	}
	got := fmt.Sprint(v.liveValues(t))
	if want := "map[a:a2 c:c2]"; got != want {
		t.Fatalf("live rows %s, want %s", got, want)
	}
}

// liveValues scans the table: key → value of every row.
func (v *loopEnv) liveValues(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	tbl, err := v.cat.LoadTable(context.Background(), v.ident)
	if err != nil {
		t.Fatal(err)
	}
	at, err := tbl.Scan().ToArrowTable(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer at.Release()
	rdr := array.NewTableReader(at, 1024)
	defer rdr.Release()
	for rdr.Next() {
		rec := rdr.RecordBatch()
		keys := rec.Column(rec.Schema().FieldIndices(ColKey)[0]).(*array.Binary)
		vals := rec.Column(rec.Schema().FieldIndices(ColValue)[0]).(*array.Binary)
		for i := 0; i < int(rec.NumRows()); i++ {
			if _, dup := out[string(keys.Value(i))]; dup {
				t.Fatalf("key %q twice", keys.Value(i))
			}
			out[string(keys.Value(i))] = string(vals.Value(i))
		}
	}
	return out
}

// A table created before its subject had a schema (so with _value) and
// without rows yet takes the schema's columns in place of _value.
func TestMaterialiseSchemalessTableTakesFirstSchema(t *testing.T) {
	v1 := parseSchema(t, jsonschema.TypeName, `{"type":"object","properties":{"a":{"type":"integer"}},"required":["a"]}`)
	sc, err := TableSchema(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	v := newLoopEnvSchema(t, 1, sc, false)
	schemas := &fakeSchemas{byID: map[int]registry.Schema{1: v1}}
	m := v.materialiser(t, "suspend")
	m.convert = func(sc *iceberg.Schema) (rowConverter, error) { return NewConverter(sc, schemas) }
	// The subject's newest version, as the service looks it up.
	m.evolve = func(ctx context.Context, tbl *table.Table) (bool, error) {
		next, err := TableSchema(v1, tbl.Schema())
		if err != nil {
			return false, err
		}
		return m.commitSchema(ctx, tbl, next)
	}
	v.produceValues(t, [][]byte{nil, nil}, [][]byte{wire(1, []byte(`{"a":1}`)), wire(1, []byte(`{"a":2}`))})
	catchUp(t, m)
	if got, want := strings.Join(v.scanColumns(t, "a", ColValue), "; "), "a=1 _value=absent; a=2 _value=absent"; got != want {
		t.Fatalf("rows %s, want %s", got, want)
	}
}
