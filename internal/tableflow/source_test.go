package tableflow

import (
	"cmp"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/big"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/catalog/hadoop"
	"github.com/apache/iceberg-go/table"
	hamba "github.com/hamba/avro/v2"
	"github.com/twmb/franz-go/pkg/kgo"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/runnel-dev/runnel/internal/cluster/clustertest"
	"github.com/runnel-dev/runnel/internal/objstore"
	"github.com/runnel-dev/runnel/internal/registry"
	"github.com/runnel-dev/runnel/internal/registry/avro"
	"github.com/runnel-dev/runnel/internal/registry/jsonschema"
	"github.com/runnel-dev/runnel/internal/registry/protobuf"
	"github.com/runnel-dev/runnel/internal/stream"
)

// sourceEnv is a stream engine on embedded etcd, and an Iceberg table
// written by iceberg-go's Hadoop catalog in a directory of its own (a
// writer that is not Runnel).
type sourceEnv struct {
	cli   *clientv3.Client
	log   *stream.Engine
	cat   *hadoop.Catalog
	ident table.Identifier
	dir   string
}

func newSourceEnv(t *testing.T, sc *iceberg.Schema) *sourceEnv {
	t.Helper()
	ctx := context.Background()
	store, err := objstore.Open(ctx, "file://"+t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	cli := clustertest.Start(t).Client()
	e, err := stream.Open(ctx, stream.Options{Client: cli, Store: store, FlushLinger: time.Millisecond,
		DisableMaintenance: true, Grace: time.Millisecond, DefaultPartitions: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	dir := t.TempDir()
	cat, err := hadoop.NewCatalog("ext", dir, iceberg.Properties{})
	if err != nil {
		t.Fatal(err)
	}
	if err := cat.CreateNamespace(ctx, table.Identifier{"ns"}, nil); err != nil {
		t.Fatal(err)
	}
	v := &sourceEnv{cli: cli, log: e, cat: cat, ident: table.Identifier{"ns", "t"}, dir: dir}
	if _, err := cat.CreateTable(ctx, v.ident, sc); err != nil {
		t.Fatal(err)
	}
	return v
}

// location is the table's directory as a URL.
func (v *sourceEnv) location() string { return "file://" + filepath.Join(v.dir, "ns", "t") }

func (v *sourceEnv) load(t *testing.T) *table.Table {
	t.Helper()
	tbl, err := v.cat.LoadTable(context.Background(), v.ident)
	if err != nil {
		t.Fatal(err)
	}
	return tbl
}

// appendRows commits one append of rows (a JSON array of objects).
func (v *sourceEnv) appendRows(t *testing.T, rows string) {
	t.Helper()
	v.appendRowsTo(t, v.load(t), rows)
}

func (v *sourceEnv) appendRowsTo(t *testing.T, tbl *table.Table, rows string) {
	t.Helper()
	sc, err := table.SchemaToArrowSchema(tbl.Schema(), nil, false, false)
	if err != nil {
		t.Fatal(err)
	}
	at, err := array.TableFromJSON(memory.DefaultAllocator, sc, []string{rows})
	if err != nil {
		t.Fatal(err)
	}
	defer at.Release()
	if _, err := tbl.AppendTable(context.Background(), at, 1000, nil); err != nil {
		t.Fatal(err)
	}
}

func (v *sourceEnv) createTopic(t *testing.T, name string, partitions int32) stream.TopicInfo {
	t.Helper()
	ti, err := v.log.CreateTopic(context.Background(), name, partitions, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	return ti
}

func (v *sourceEnv) source(o SourceOptions) *Source {
	o.Client, o.Log = v.cli, v.log
	return NewSource(o)
}

// sourceRecord is one record read back from a topic.
type sourceRecord struct {
	partition int32
	pid       int64
	stream.DecodedRecord
}

func (v *sourceEnv) readTopic(t *testing.T, ti stream.TopicInfo) []sourceRecord {
	t.Helper()
	var out []sourceRecord
	for p := range ti.Partitions {
		ps, err := v.log.State(ti.Name, p)
		if err != nil {
			t.Fatal(err)
		}
		for off := ps.LogStartOffset; off < ps.HighWatermark; {
			res, err := v.log.Fetch(context.Background(), stream.FetchPartition{TopicID: ti.ID, Partition: p, Offset: off, MaxBytes: 1 << 20})
			if err != nil {
				t.Fatal(err)
			}
			batches, err := stream.DecodeBatches(res.Records)
			if err != nil {
				t.Fatal(err)
			}
			for _, b := range batches {
				for _, r := range b.Records {
					out = append(out, sourceRecord{partition: p, pid: b.ProducerID, DecodedRecord: r})
				}
				off = b.LastOffset + 1
			}
		}
	}
	return out
}

// values returns the JSON values' "id" fields in the order read.
func jsonIDs(t *testing.T, recs []sourceRecord) []int64 {
	t.Helper()
	var ids []int64
	for _, r := range recs {
		var row struct{ ID int64 }
		if err := json.Unmarshal(r.Value, &row); err != nil {
			t.Fatalf("value %q: %v", r.Value, err)
		}
		ids = append(ids, row.ID)
	}
	return ids
}

func seq(from, to int64) []int64 {
	var out []int64
	for i := from; i <= to; i++ {
		out = append(out, i)
	}
	return out
}

// sourceRowsJSON returns rows id from..to with name n<id>.
func sourceRowsJSON(from, to int64) string {
	var parts []string
	for i := from; i <= to; i++ {
		parts = append(parts, fmt.Sprintf(`{"id":%d,"name":"n%d"}`, i, i))
	}
	return "[" + strings.Join(parts, ",") + "]"
}

var plainSchema = iceberg.NewSchema(0,
	iceberg.NestedField{ID: 1, Name: "id", Type: iceberg.PrimitiveTypes.Int64, Required: true},
	iceberg.NestedField{ID: 2, Name: "name", Type: iceberg.PrimitiveTypes.String},
)

func pollOnce(t *testing.T, s *Source, ti stream.TopicInfo, source string) {
	t.Helper()
	if err := s.poll(context.Background(), ti.Name, ti.ID, source); err != nil {
		t.Fatal(err)
	}
}

// TestSourceProducesAppendsOnceInOrder: the rows already in the table,
// then those of each later append, once and in order; a delete snapshot is
// skipped and counted; a poll with nothing new produces nothing.
func TestSourceProducesAppendsOnceInOrder(t *testing.T) {
	v := newSourceEnv(t, plainSchema)
	ti := v.createTopic(t, "events", 1)
	v.appendRows(t, sourceRowsJSON(1, 700)) // more than one batch
	s := v.source(SourceOptions{})
	pollOnce(t, s, ti, v.location())
	v.appendRows(t, sourceRowsJSON(701, 710))
	tbl, err := v.load(t).Delete(context.Background(), iceberg.EqualTo(iceberg.Reference("id"), int64(3)), nil)
	if err != nil {
		t.Fatal(err)
	}
	if op := tbl.CurrentSnapshot().Summary.Operation; op == table.OpAppend {
		t.Fatalf("delete committed an %s snapshot", op)
	}
	v.appendRows(t, sourceRowsJSON(711, 712))
	pollOnce(t, s, ti, v.location())
	pollOnce(t, s, ti, v.location())

	recs := v.readTopic(t, ti)
	if got, want := jsonIDs(t, recs), seq(1, 712); !slices.Equal(got, want) {
		t.Fatalf("ids = %v…(%d), want 1..712 once each in order", got[:min(20, len(got))], len(got))
	}
	var row map[string]any
	if err := json.Unmarshal(recs[0].Value, &row); err != nil || row["name"] != "n1" || len(row) != 2 {
		t.Fatalf("first value = %s (%v)", recs[0].Value, err)
	}
	if recs[0].Key != nil || recs[0].pid < 0 {
		t.Fatalf("first record: key %q, producer id %d", recs[0].Key, recs[0].pid)
	}
	st := s.Status(ti.ID)
	if st.RowsProduced != 712 || st.SkippedSnapshots != 1 || st.LagSnapshots != 0 || st.LastSnapshotID != v.load(t).CurrentSnapshot().SnapshotID {
		t.Fatalf("status = %+v", st)
	}
}

// TestSourceStartsWithLiveRows: a new source begins with the rows the
// table holds now, not those deleted before it started.
func TestSourceStartsWithLiveRows(t *testing.T) {
	v := newSourceEnv(t, plainSchema)
	ti := v.createTopic(t, "events", 1)
	v.appendRows(t, sourceRowsJSON(1, 3))
	v.appendRows(t, sourceRowsJSON(4, 5))
	tbl, err := v.load(t).Delete(context.Background(), iceberg.EqualTo(iceberg.Reference("id"), int64(2)), nil)
	if err != nil {
		t.Fatal(err)
	}
	rewrote := tbl.CurrentSnapshot().Summary.Properties["added-data-files"] != ""
	s := v.source(SourceOptions{})
	pollOnce(t, s, ti, v.location())
	// In commit order: a file the delete rewrote comes after the second
	// append's.
	want := []int64{1, 3, 4, 5}
	if rewrote {
		want = []int64{4, 5, 1, 3}
	}
	if got := jsonIDs(t, v.readTopic(t, ti)); !slices.Equal(got, want) {
		t.Fatalf("ids = %v, want %v (the delete rewrote a file: %v)", got, want, rewrote)
	}
	if st := s.Status(ti.ID); st.RowsProduced != 4 || st.SkippedSnapshots != 0 || st.LagSnapshots != 0 {
		t.Fatalf("status = %+v", st)
	}
}

// TestSourceCrashAfterProduceNoDuplicate: a source that dies after its
// batch was produced and before its progress moved produces the batch
// again after a restart; the sequencer drops the copy.
func TestSourceCrashAfterProduceNoDuplicate(t *testing.T) {
	v := newSourceEnv(t, plainSchema)
	ti := v.createTopic(t, "events", 1)
	v.appendRows(t, sourceRowsJSON(1, 600))
	errCrash := errors.New("crash")
	var produced atomic.Int32
	crashing := v.source(SourceOptions{afterProduce: func() error {
		if produced.Add(1) == 2 {
			return errCrash
		}
		return nil
	}})
	if err := crashing.poll(context.Background(), ti.Name, ti.ID, v.location()); !errors.Is(err, errCrash) {
		t.Fatalf("poll = %v, want the crash", err)
	}
	if n := len(v.readTopic(t, ti)); n != 600 {
		t.Fatalf("%d records after the crash, want 600 (both batches produced)", n)
	}
	restarted := v.source(SourceOptions{})
	pollOnce(t, restarted, ti, v.location())
	if got := jsonIDs(t, v.readTopic(t, ti)); !slices.Equal(got, seq(1, 600)) {
		t.Fatalf("%d records after the restart, want 1..600 once each", len(got))
	}
	if st := restarted.Status(ti.ID); st.RowsProduced != 600 {
		t.Fatalf("status = %+v", st)
	}
}

// TestSourceChangedSourceStartsAfresh: a topic given another table.source
// while a batch of the old one was pending begins afresh under a new
// producer id, so none of its batches is taken for the old one's.
func TestSourceChangedSourceStartsAfresh(t *testing.T) {
	v := newSourceEnv(t, plainSchema)
	ti := v.createTopic(t, "events", 1)
	v.appendRows(t, sourceRowsJSON(1, 600))
	errCrash := errors.New("crash")
	var produced atomic.Int32
	crashing := v.source(SourceOptions{afterProduce: func() error {
		if produced.Add(1) == 2 {
			return errCrash
		}
		return nil
	}})
	if err := crashing.poll(context.Background(), ti.Name, ti.ID, v.location()); !errors.Is(err, errCrash) {
		t.Fatalf("poll = %v, want the crash", err)
	}
	// Another table, whose first batch has as many rows as the pending
	// one: under the old producer id and sequence it would pass for a
	// copy of it.
	other, err := v.cat.CreateTable(context.Background(), table.Identifier{"ns", "u"}, plainSchema)
	if err != nil {
		t.Fatal(err)
	}
	v.appendRowsTo(t, other, sourceRowsJSON(1001, 1100))
	pollOnce(t, v.source(SourceOptions{}), ti, "file://"+filepath.Join(v.dir, "ns", "u"))
	if got := jsonIDs(t, v.readTopic(t, ti)); !slices.Equal(got, append(seq(1, 600), seq(1001, 1100)...)) {
		t.Fatalf("%d records, want 1..600 then 1001..1100", len(got))
	}
}

// TestSourceRestartBetweenSnapshots: a source started afresh after every
// append resumes where the last one stopped, without gaps or copies.
func TestSourceRestartBetweenSnapshots(t *testing.T) {
	v := newSourceEnv(t, plainSchema)
	ti := v.createTopic(t, "events", 1)
	// The table is empty when the source first looks.
	pollOnce(t, v.source(SourceOptions{}), ti, v.location())
	for i := range int64(3) {
		v.appendRows(t, sourceRowsJSON(i*10+1, i*10+10))
		pollOnce(t, v.source(SourceOptions{}), ti, v.location())
	}
	if got := jsonIDs(t, v.readTopic(t, ti)); !slices.Equal(got, seq(1, 30)) {
		t.Fatalf("ids = %v, want 1..30", got)
	}

	// Run follows the table on its own and stops with its context.
	ctx, cancel := context.WithCancel(context.Background())
	s := v.source(SourceOptions{PollInterval: 10 * time.Millisecond})
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx, ti.Name, ti.ID, v.location()) }()
	v.appendRows(t, sourceRowsJSON(31, 35))
	deadline := time.Now().Add(10 * time.Second)
	for s.Status(ti.ID).RowsProduced != 35 {
		if time.Now().After(deadline) {
			t.Fatalf("status = %+v", s.Status(ti.ID))
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := jsonIDs(t, v.readTopic(t, ti)); !slices.Equal(got, seq(1, 35)) {
		t.Fatalf("ids = %v, want 1..35", got)
	}
}

// expiringLog answers a produce with UNKNOWN_PRODUCER_ID once, as when the
// sequencer forgot the producer id: after producing the batches (they
// landed) or without.
type expiringLog struct {
	*stream.Engine
	landed bool
	fired  atomic.Bool
	pids   []int64 // allocated
}

func (l *expiringLog) InitProducerID(ctx context.Context, pid int64, epoch int16) (int64, int16, error) {
	pid, epoch, err := l.Engine.InitProducerID(ctx, pid, epoch)
	l.pids = append(l.pids, pid)
	return pid, epoch, err
}

func (l *expiringLog) Produce(ctx context.Context, b []stream.ProduceBatch) []stream.ProduceResult {
	if l.fired.Swap(true) {
		return l.Engine.Produce(ctx, b)
	}
	res := make([]stream.ProduceResult, len(b))
	if l.landed {
		res = l.Engine.Produce(ctx, b)
	}
	for i := range res {
		res[i].Err = stream.ErrUnknownProducerID
	}
	return res
}

// TestSourceExpiredProducerID: a pending batch whose producer id the
// sequencer no longer knows is looked for in the log: found, it is done;
// not found, it is produced under a new producer id. Either way once.
func TestSourceExpiredProducerID(t *testing.T) {
	for _, landed := range []bool{true, false} {
		t.Run(fmt.Sprintf("landed=%v", landed), func(t *testing.T) {
			v := newSourceEnv(t, plainSchema)
			ti := v.createTopic(t, "events", 1)
			v.appendRows(t, sourceRowsJSON(1, 20))
			log := &expiringLog{Engine: v.log, landed: landed}
			s := NewSource(SourceOptions{Client: v.cli, Log: log})
			pollOnce(t, s, ti, v.location())
			recs := v.readTopic(t, ti)
			if got := jsonIDs(t, recs); !slices.Equal(got, seq(1, 20)) {
				t.Fatalf("ids = %v, want 1..20 once", got)
			}
			v.appendRows(t, sourceRowsJSON(21, 22))
			pollOnce(t, s, ti, v.location())
			recs = v.readTopic(t, ti)
			if got := jsonIDs(t, recs); !slices.Equal(got, seq(1, 22)) {
				t.Fatalf("ids = %v, want 1..22 once", got)
			}
			// Landed, the first producer id goes on (its sequences
			// continue); not, the batch went under a second one.
			allocs := 1
			if !landed {
				allocs = 2
			}
			if len(log.pids) != allocs || recs[0].pid != log.pids[len(log.pids)-1] || recs[len(recs)-1].pid != recs[0].pid {
				t.Fatalf("producer ids allocated %v, records under %d and %d", log.pids, recs[0].pid, recs[len(recs)-1].pid)
			}
		})
	}
}

// TestSourceKeysAndTimestamps: _key is the key (left out of the value) and
// picks the partition as Kafka's default partitioner does, _timestamp the
// timestamp; a row without a key goes to partition 0.
func TestSourceKeysAndTimestamps(t *testing.T) {
	sc := iceberg.NewSchema(0,
		iceberg.NestedField{ID: 1, Name: "_key", Type: iceberg.PrimitiveTypes.String},
		iceberg.NestedField{ID: 2, Name: "_timestamp", Type: iceberg.PrimitiveTypes.TimestampTz},
		iceberg.NestedField{ID: 3, Name: "id", Type: iceberg.PrimitiveTypes.Int64, Required: true},
	)
	v := newSourceEnv(t, sc)
	ti := v.createTopic(t, "keyed", 4)
	var rows []string
	for i := range 40 {
		key := fmt.Sprintf(`"k%d"`, i)
		if i == 7 {
			key = "null"
		}
		rows = append(rows, fmt.Sprintf(`{"_key":%s,"_timestamp":"2026-12-01T10:00:%02d.123456Z","id":%d}`, key, i, i))
	}
	v.appendRows(t, "["+strings.Join(rows, ",")+"]")
	s := v.source(SourceOptions{})
	pollOnce(t, s, ti, v.location())
	recs := v.readTopic(t, ti)
	if len(recs) != 40 {
		t.Fatalf("%d records, want 40", len(recs))
	}
	part := kgo.StickyKeyPartitioner(nil).ForTopic("keyed")
	last := map[int32]int64{}
	for _, r := range recs {
		var val map[string]any
		if err := json.Unmarshal(r.Value, &val); err != nil {
			t.Fatal(err)
		}
		id := int64(val["id"].(float64))
		if _, ok := val["_key"]; ok {
			t.Fatalf("value %s holds the key", r.Value)
		}
		want := int32(0)
		if id != 7 {
			if string(r.Key) != fmt.Sprintf("k%d", id) {
				t.Fatalf("record %d has key %q", id, r.Key)
			}
			want = int32(part.Partition(&kgo.Record{Key: r.Key}, 4))
		} else if r.Key != nil {
			t.Fatalf("record 7 has key %q", r.Key)
		}
		if r.partition != want {
			t.Fatalf("record %d in partition %d, want %d", id, r.partition, want)
		}
		if prev, ok := last[r.partition]; ok && prev >= id {
			t.Fatalf("partition %d: %d after %d", r.partition, id, prev)
		}
		last[r.partition] = id
		if wantTS := time.Date(2026, 12, 1, 10, 0, int(id), 123_000_000, time.UTC).UnixMilli(); r.Timestamp != wantTS {
			t.Fatalf("record %d timestamp %d, want %d", id, r.Timestamp, wantTS)
		}
	}
	if len(last) < 3 {
		t.Fatalf("40 keys landed in %d partitions", len(last))
	}
}

// sourceFakeSchemas is a registry holding one subject's versions, all of
// one format.
type sourceFakeSchemas struct {
	subject string
	byID    map[int]string
	latest  int
	typ     string // "JSON" or "PROTOBUF"; "" for Avro
}

func (f *sourceFakeSchemas) SchemaByID(_ context.Context, id int) (registry.Schema, registry.SchemaInfo, error) {
	text, ok := f.byID[id]
	if !ok {
		return nil, registry.SchemaInfo{}, registry.ErrSchemaNotFound
	}
	info := registry.SchemaInfo{StoredSchema: registry.StoredSchema{ID: id, Type: cmp.Or(f.typ, "AVRO"), Schema: text}}
	var sc registry.Schema
	var err error
	switch f.typ {
	case "JSON":
		sc, err = jsonschema.New().Parse(text, nil)
	case "PROTOBUF":
		sc, err = protobuf.New().Parse(text, nil)
	default:
		sc, err = avro.Parse(text, nil)
	}
	return sc, info, err
}

func (f *sourceFakeSchemas) LatestForSubject(ctx context.Context, subject string) (registry.Schema, registry.SubjectSchema, error) {
	if subject != f.subject {
		return nil, registry.SubjectSchema{}, registry.ErrSubjectNotFound
	}
	sc, info, err := f.SchemaByID(ctx, f.latest)
	return sc, registry.SubjectSchema{Subject: subject, Version: 1, StoredSchema: info.StoredSchema}, err
}

// TestSourceAvroValues: a topic whose value subject has an Avro schema gets
// wire-format values (magic 0, the schema id) that decode to the rows.
func TestSourceAvroValues(t *testing.T) {
	sc := iceberg.NewSchema(0,
		iceberg.NestedField{ID: 1, Name: "id", Type: iceberg.PrimitiveTypes.Int64, Required: true},
		iceberg.NestedField{ID: 2, Name: "name", Type: iceberg.PrimitiveTypes.String, Required: true},
		iceberg.NestedField{ID: 3, Name: "note", Type: iceberg.PrimitiveTypes.String},
		iceberg.NestedField{ID: 4, Name: "at", Type: iceberg.PrimitiveTypes.TimestampTz},
		iceberg.NestedField{ID: 5, Name: "price", Type: iceberg.DecimalTypeOf(9, 2)},
	)
	v := newSourceEnv(t, sc)
	ti := v.createTopic(t, "orders", 1)
	const avroSchema = `{"type":"record","name":"Order","fields":[
		{"name":"id","type":"long"},
		{"name":"name","type":"string"},
		{"name":"note","type":["null","string"],"default":null},
		{"name":"at","type":["null",{"type":"long","logicalType":"timestamp-micros"}]},
		{"name":"price","type":{"type":"bytes","logicalType":"decimal","precision":9,"scale":2}},
		{"name":"extra","type":"int","default":7}]}`
	reg := &sourceFakeSchemas{subject: "orders-value", byID: map[int]string{42: avroSchema}, latest: 42}
	v.appendRows(t, `[{"id":1,"name":"a","note":"hi","at":"2026-12-01T10:00:00.000001Z","price":"12.34"},
		{"id":2,"name":"b","note":null,"at":null,"price":"0.50"}]`)
	s := v.source(SourceOptions{Schemas: reg})
	pollOnce(t, s, ti, v.location())
	recs := v.readTopic(t, ti)
	if len(recs) != 2 {
		t.Fatalf("%d records, want 2", len(recs))
	}
	parsed := hamba.MustParse(avroSchema)
	type order struct {
		ID    int64      `avro:"id"`
		Name  string     `avro:"name"`
		Note  *string    `avro:"note"`
		At    *time.Time `avro:"at"`
		Price []byte     `avro:"price"`
		Extra int        `avro:"extra"`
	}
	var got []order
	for _, r := range recs {
		if len(r.Value) < 5 || r.Value[0] != 0 || binary.BigEndian.Uint32(r.Value[1:5]) != 42 {
			t.Fatalf("value %x is not in the wire format with id 42", r.Value)
		}
		var m map[string]any
		if err := hamba.Unmarshal(parsed, r.Value[5:], &m); err != nil {
			t.Fatalf("decoding %x: %v", r.Value[5:], err)
		}
		o := order{ID: m["id"].(int64), Name: m["name"].(string), Extra: m["extra"].(int)}
		if n, ok := m["note"].(map[string]any); ok {
			s := n["string"].(string)
			o.Note = &s
		} else if m["note"] != nil {
			s := m["note"].(string)
			o.Note = &s
		}
		switch at := m["at"].(type) {
		case map[string]any:
			ts := at["long.timestamp-micros"].(time.Time)
			o.At = &ts
		case time.Time:
			o.At = &at
		}
		got = append(got, o)
		if rat := fmt.Sprint(m["price"]); rat != map[int64]string{1: "617/50", 2: "1/2"}[o.ID] {
			t.Fatalf("row %d price %s", o.ID, rat)
		}
	}
	if got[0].ID != 1 || got[0].Name != "a" || got[0].Note == nil || *got[0].Note != "hi" || got[0].Extra != 7 ||
		got[0].At == nil || !got[0].At.Equal(time.Date(2026, 12, 1, 10, 0, 0, 1000, time.UTC)) {
		t.Fatalf("row 1 = %+v", got[0])
	}
	if got[1].ID != 2 || got[1].Note != nil || got[1].At != nil {
		t.Fatalf("row 2 = %+v", got[1])
	}
}

// TestSourceRefusesBadRows: a row that does not fit the value schema
// stops the source with an error and produces nothing.
func TestSourceRefusesBadRows(t *testing.T) {
	v := newSourceEnv(t, plainSchema)
	ti := v.createTopic(t, "orders", 1)
	reg := &sourceFakeSchemas{subject: "orders-value", byID: map[int]string{3: `{"type":"record","name":"R","fields":[{"name":"id","type":"int"},{"name":"missing","type":"string"}]}`}, latest: 3}
	v.appendRows(t, sourceRowsJSON(1, 2))
	s := v.source(SourceOptions{Schemas: reg})
	if err := s.poll(context.Background(), ti.Name, ti.ID, v.location()); !errors.Is(err, ErrSourceRow) {
		t.Fatalf("poll = %v, want %v", err, ErrSourceRow)
	}
	if n := len(v.readTopic(t, ti)); n != 0 {
		t.Fatalf("%d records produced", n)
	}
}

// TestSourceJSONSchemaValues: a topic whose value subject has a JSON
// Schema gets the rows' JSON in the wire format, checked against it.
func TestSourceJSONSchemaValues(t *testing.T) {
	v := newSourceEnv(t, plainSchema)
	ti := v.createTopic(t, "orders", 1)
	reg := &sourceFakeSchemas{subject: "orders-value", typ: "JSON", latest: 5, byID: map[int]string{
		5: `{"type":"object","properties":{"id":{"type":"integer"},"name":{"type":"string"}},"required":["id","name"]}`,
		6: `{"type":"object","properties":{"id":{"type":"integer"}},"additionalProperties":false}`,
	}}
	v.appendRows(t, sourceRowsJSON(1, 2))
	pollOnce(t, v.source(SourceOptions{Schemas: reg}), ti, v.location())
	recs := v.readTopic(t, ti)
	if len(recs) != 2 {
		t.Fatalf("%d records, want 2", len(recs))
	}
	for i, r := range recs {
		if len(r.Value) < 5 || r.Value[0] != 0 || binary.BigEndian.Uint32(r.Value[1:5]) != 5 {
			t.Fatalf("value %q is not in the wire format with id 5", r.Value)
		}
		if want := fmt.Sprintf(`{"id":%d,"name":"n%d"}`, i+1, i+1); string(r.Value[5:]) != want {
			t.Fatalf("value %s, want %s", r.Value[5:], want)
		}
	}
	// A schema the rows do not fit stops the source.
	reg.latest = 6
	v.appendRows(t, sourceRowsJSON(3, 3))
	if err := v.source(SourceOptions{Schemas: reg}).poll(context.Background(), ti.Name, ti.ID, v.location()); !errors.Is(err, ErrSourceRow) {
		t.Fatalf("poll = %v, want %v", err, ErrSourceRow)
	}
	if n := len(v.readTopic(t, ti)); n != 2 {
		t.Fatalf("%d records, want 2", n)
	}
}

// TestSourceProtobufValues: a topic whose value subject has a Protobuf
// schema gets its file's first message in the wire format (magic 0, the
// schema id, the message index byte 0), which decodes to the rows: structs
// as messages, lists as repeated fields, maps, enums from names and
// numbers, timestamptz as google.protobuf.Timestamp, a wrapper, uint64
// from decimal(20, 0); null and missing columns left unset; _timestamp,
// which the message has no field for, is only the record's timestamp.
func TestSourceProtobufValues(t *testing.T) {
	sc := iceberg.NewSchema(0,
		iceberg.NestedField{ID: 1, Name: ColTimestamp, Type: iceberg.PrimitiveTypes.TimestampTz},
		iceberg.NestedField{ID: 2, Name: "id", Type: iceberg.PrimitiveTypes.Int64, Required: true},
		iceberg.NestedField{ID: 3, Name: "name", Type: iceberg.PrimitiveTypes.String, Required: true},
		iceberg.NestedField{ID: 4, Name: "status", Type: iceberg.PrimitiveTypes.String},
		iceberg.NestedField{ID: 5, Name: "level", Type: iceberg.PrimitiveTypes.Int32},
		iceberg.NestedField{ID: 6, Name: "at", Type: iceberg.PrimitiveTypes.TimestampTz},
		iceberg.NestedField{ID: 7, Name: "note", Type: iceberg.PrimitiveTypes.String},
		iceberg.NestedField{ID: 8, Name: "big", Type: iceberg.DecimalTypeOf(20, 0)},
		iceberg.NestedField{ID: 9, Name: "tags", Type: &iceberg.ListType{ElementID: 20, Element: iceberg.PrimitiveTypes.String, ElementRequired: true}},
		iceberg.NestedField{ID: 10, Name: "attrs", Type: &iceberg.MapType{KeyID: 21, KeyType: iceberg.PrimitiveTypes.String,
			ValueID: 22, ValueType: iceberg.PrimitiveTypes.Int64}},
		iceberg.NestedField{ID: 11, Name: "address", Type: &iceberg.StructType{FieldList: []iceberg.NestedField{
			{ID: 23, Name: "city", Type: iceberg.PrimitiveTypes.String},
			{ID: 24, Name: "zip", Type: iceberg.PrimitiveTypes.Int32},
		}}},
		iceberg.NestedField{ID: 12, Name: "items", Type: &iceberg.ListType{ElementID: 25, ElementRequired: true, Element: &iceberg.StructType{FieldList: []iceberg.NestedField{
			{ID: 26, Name: "sku", Type: iceberg.PrimitiveTypes.String, Required: true},
			{ID: 27, Name: "qty", Type: iceberg.PrimitiveTypes.Int64, Required: true},
		}}}},
	)
	v := newSourceEnv(t, sc)
	ti := v.createTopic(t, "orders", 1)
	const protoSchema = `syntax = "proto3";
package shop;
import "google/protobuf/timestamp.proto";
import "google/protobuf/wrappers.proto";
message Order {
  int64 id = 1;
  string name = 2;
  Status status = 3;
  Status level = 4;
  google.protobuf.Timestamp at = 5;
  google.protobuf.StringValue note = 6;
  uint64 big = 7;
  repeated string tags = 8;
  map<string, int64> attrs = 9;
  Address address = 10;
  repeated Item items = 11;
  int32 extra = 12;
  message Address {
    string city = 1;
    int32 zip = 2;
  }
  message Item {
    string sku = 1;
    uint32 qty = 2;
  }
}
enum Status {
  UNKNOWN = 0;
  NEW = 1;
  SHIPPED = 2;
}
message Other {
  bool id = 1;
}
`
	reg := &sourceFakeSchemas{subject: "orders-value", typ: "PROTOBUF", byID: map[int]string{9: protoSchema}, latest: 9}
	v.appendRows(t, `[{"_timestamp":"2026-12-01T10:00:00Z","id":1,"name":"a","status":"SHIPPED","level":1,
		"at":"2026-12-01T10:00:00.000001Z","note":"hi","big":"18446744073709551615","tags":["x","y"],
		"attrs":[{"key":"a","value":1},{"key":"b","value":-2}],"address":{"city":"Oslo","zip":150},
		"items":[{"sku":"s1","qty":2},{"sku":"s2","qty":3}]},
		{"_timestamp":"2026-12-01T10:00:01Z","id":2,"name":"b","status":"7","level":null,"at":null,"note":null,
		"big":null,"tags":[],"attrs":null,"address":{"city":null,"zip":9},"items":null}]`)
	pollOnce(t, v.source(SourceOptions{Schemas: reg}), ti, v.location())
	recs := v.readTopic(t, ti)
	if len(recs) != 2 {
		t.Fatalf("%d records, want 2", len(recs))
	}
	parsed, err := protobuf.New().Parse(protoSchema, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []map[string]any{{
		"id": int64(1), "name": "a", "status": "SHIPPED", "level": "NEW",
		"at":   map[string]any{"seconds": time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC).Unix(), "nanos": int64(1000)},
		"note": map[string]any{"value": "hi"}, "big": uint64(math.MaxUint64), "tags": []any{"x", "y"},
		"attrs":   map[string]any{"a": int64(1), "b": int64(-2)},
		"address": map[string]any{"city": "Oslo", "zip": int64(150)},
		"items":   []any{map[string]any{"sku": "s1", "qty": int64(2)}, map[string]any{"sku": "s2", "qty": int64(3)}},
		"extra":   int64(0),
	}, {
		"id": int64(2), "name": "b", "status": int64(7), "level": "UNKNOWN", "at": nil, "note": nil,
		"big": int64(0), "tags": []any{}, "attrs": map[string]any{},
		"address": map[string]any{"city": "", "zip": int64(9)}, "items": []any{}, "extra": int64(0),
	}}
	for i, r := range recs {
		if len(r.Value) < 6 || r.Value[0] != 0 || binary.BigEndian.Uint32(r.Value[1:5]) != 9 || r.Value[5] != 0 {
			t.Fatalf("value %x is not in the wire format with id 9 and message index byte 0", r.Value)
		}
		got, err := parsed.Decode(r.Value[5:])
		if err != nil {
			t.Fatalf("decoding %x: %v", r.Value[5:], err)
		}
		if !reflect.DeepEqual(got, want[i]) {
			t.Fatalf("row %d decodes to\n%#v\nwant\n%#v", i+1, got, want[i])
		}
		if wantTS := time.Date(2026, 12, 1, 10, 0, i, 0, time.UTC).UnixMilli(); r.Timestamp != wantTS {
			t.Fatalf("row %d timestamp %d, want %d", i+1, r.Timestamp, wantTS)
		}
	}
}

// TestSourceProtobufRefusesBadRows: a row that does not fit the Protobuf
// message stops the source with ErrSourceRow and produces nothing.
func TestSourceProtobufRefusesBadRows(t *testing.T) {
	v := newSourceEnv(t, plainSchema)
	v.appendRows(t, sourceRowsJSON(1, 2))
	for i, c := range []struct{ name, schema, why string }{
		{"column the message lacks", `syntax = "proto3"; message R { int64 id = 1; }`, "has no field name"},
		{"undeclared enum name", `syntax = "proto3"; message R { int64 id = 1; Color name = 2; } enum Color { RED = 0; }`, "not a value of Protobuf enum Color"},
		{"column of another type", `syntax = "proto3"; message R { bool id = 1; string name = 2; }`, "id: int64 does not fit Protobuf bool"},
		{"text into a message", `syntax = "proto3"; message R { int64 id = 1; message N { string s = 1; } N name = 2; }`, "does not fit Protobuf message R.N"},
		{"required field without a column", `syntax = "proto2"; message R { optional int64 id = 1; optional string name = 2; required string code = 3; }`, "R.code not set"},
		{"two members of a oneof", `syntax = "proto3"; message R { oneof which { int64 id = 1; string name = 2; } }`, "oneof R.which"},
	} {
		t.Run(c.name, func(t *testing.T) {
			ti := v.createTopic(t, fmt.Sprintf("orders%d", i), 1)
			reg := &sourceFakeSchemas{subject: ti.Name + "-value", typ: "PROTOBUF", byID: map[int]string{1: c.schema}, latest: 1}
			err := v.source(SourceOptions{Schemas: reg}).poll(context.Background(), ti.Name, ti.ID, v.location())
			if !errors.Is(err, ErrSourceRow) || !strings.Contains(err.Error(), c.why) {
				t.Fatalf("poll = %v, want %v saying %q", err, ErrSourceRow, c.why)
			}
			if n := len(v.readTopic(t, ti)); n != 0 {
				t.Fatalf("%d records produced", n)
			}
		})
	}
}

// TestSourceRecordNameStrategyRefused: a topic whose value subjects are
// named after records gets no values it cannot name a subject for.
func TestSourceRecordNameStrategyRefused(t *testing.T) {
	v := newSourceEnv(t, plainSchema)
	ti, err := v.log.CreateTopic(context.Background(), "orders", 1, map[string]string{
		"confluent.value.subject.name.strategy": "io.confluent.kafka.serializers.subject.RecordNameStrategy"}, false)
	if err != nil {
		t.Fatal(err)
	}
	v.appendRows(t, sourceRowsJSON(1, 2))
	reg := &sourceFakeSchemas{subject: "orders-value", byID: map[int]string{}}
	if err := v.source(SourceOptions{Schemas: reg}).poll(context.Background(), ti.Name, ti.ID, v.location()); err == nil || !strings.Contains(err.Error(), "RecordNameStrategy") {
		t.Fatalf("poll = %v", err)
	}
	if n := len(v.readTopic(t, ti)); n != 0 {
		t.Fatalf("%d records produced", n)
	}
}

// TestSourceGap: a source whose last snapshot is not in the table's
// history any more stops instead of guessing, and says so in its status.
func TestSourceGap(t *testing.T) {
	v := newSourceEnv(t, plainSchema)
	ti := v.createTopic(t, "events", 1)
	v.appendRows(t, sourceRowsJSON(1, 2))
	s := v.source(SourceOptions{PollInterval: time.Hour})
	st, err := json.Marshal(sourceState{Source: v.location(), Snapshot: 12345, Done: true, PID: -1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.cli.Put(context.Background(), s.etcdKey(ti.ID), string(st)); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx, ti.Name, ti.ID, v.location()) }()
	deadline := time.Now().Add(10 * time.Second)
	for s.Status(ti.ID).Err == "" {
		if time.Now().After(deadline) {
			t.Fatal("no error in the status")
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if st := s.Status(ti.ID); !strings.Contains(st.Err, ErrSourceGap.Error()) || st.Source != v.location() {
		t.Fatalf("status = %+v", st)
	}
	if n := len(v.readTopic(t, ti)); n != 0 {
		t.Fatalf("%d records produced", n)
	}
	// Forgotten, the source begins afresh with every row of the table.
	if err := s.Forget(context.Background(), ti.ID); err != nil {
		t.Fatal(err)
	}
	if st := s.Status(ti.ID); st.Err != "" {
		t.Fatalf("status after Forget = %+v", st)
	}
	pollOnce(t, s, ti, v.location())
	if got := jsonIDs(t, v.readTopic(t, ti)); !slices.Equal(got, seq(1, 2)) {
		t.Fatalf("ids = %v, want 1..2", got)
	}
}

func TestOpenTableLocation(t *testing.T) {
	v := newSourceEnv(t, plainSchema)
	v.appendRows(t, sourceRowsJSON(1, 3))
	v.appendRows(t, sourceRowsJSON(4, 5))
	ctx := context.Background()
	want := v.load(t).CurrentSnapshot().SnapshotID
	for _, loc := range []string{v.location(), v.location() + "/", filepath.Join(v.dir, "ns", "t"), v.load(t).MetadataLocation()} {
		tbl, err := OpenTableLocation(ctx, loc)
		if err != nil {
			t.Fatalf("%s: %v", loc, err)
		}
		if got := tbl.CurrentSnapshot(); got == nil || got.SnapshotID != want {
			t.Fatalf("%s: current snapshot %v, want %d", loc, got, want)
		}
	}
	empty := t.TempDir()
	if err := os.MkdirAll(filepath.Join(empty, "metadata"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenTableLocation(ctx, "file://"+empty); !errors.Is(err, ErrSourceLocation) {
		t.Fatalf("empty location: %v", err)
	}
}

func TestMetadataVersion(t *testing.T) {
	for _, c := range []struct {
		name string
		v    int
		ok   bool
	}{
		{"v3.metadata.json", 3, true},
		{"v12.gz.metadata.json", 12, true},
		{"00007-0b6a31e4-5c7c-4b4e-a1d5-6f0b1e2d3c4a.metadata.json", 7, true},
		{"0b6a31e4-5c7c-4b4e-a1d5-6f0b1e2d3c4a.metadata.json", 0, false}, // a writer's temporary file
		{"12345678-5c7c-4b4e-a1d5-6f0b1e2d3c4a.metadata.json", 0, false},
		{"v0.metadata.json", 0, false},
		{"v3.metadata.json.claim", 0, false},
		{"version-hint.text", 0, false},
	} {
		v, ok := sourceMetadataVersion(c.name)
		if ok != c.ok || (ok && v != c.v) {
			t.Errorf("sourceMetadataVersion(%q) = %d, %v; want %d, %v", c.name, v, ok, c.v, c.ok)
		}
	}
}

// TestProtoSingle: the edges of plain values as Protobuf field values.
func TestProtoSingle(t *testing.T) {
	parsed, err := protobuf.New().Parse(`syntax = "proto2";
import "google/protobuf/timestamp.proto";
import "google/protobuf/wrappers.proto";
message M {
  optional int32 i32 = 1;
  optional uint32 u32 = 2;
  optional uint64 u64 = 3;
  optional float f = 4;
  optional Closed closed = 5;
  optional google.protobuf.Timestamp ts = 6;
  optional google.protobuf.Int32Value wrapped = 7;
}
enum Closed { A = 0; B = 1; }
`, nil)
	if err != nil {
		t.Fatal(err)
	}
	md := parsed.(*protobuf.Schema).File().Messages().Get(0)
	dec := func(s string, scale int32) decimalValue {
		n, _ := new(big.Int).SetString(s, 10)
		return decimalValue{unscaled: n, scale: scale}
	}
	before1970 := time.Date(1969, 12, 31, 23, 59, 59, 250_000_000, time.UTC)
	for _, c := range []struct {
		name  string
		field string
		v     any
		want  any // the field's Go value, or nil: refused
	}{
		{"int32 from a long in range", "i32", int64(-5), int32(-5)},
		{"int32 from a long out of range", "i32", int64(1 << 31), nil},
		{"uint32 from a negative long", "u32", int64(-1), nil},
		{"uint32 from a long past 32 bits", "u32", int64(1 << 32), nil},
		{"uint64 from decimal(20, 0)", "u64", dec("18446744073709551615", 0), uint64(18446744073709551615)},
		{"uint64 from a decimal past 64 bits", "u64", dec("18446744073709551616", 0), nil},
		{"uint64 from a whole scaled decimal", "u64", dec("200", 2), uint64(2)},
		{"uint64 from a fraction", "u64", dec("150", 2), nil},
		{"float from a double", "f", 1.5, nil},
		{"float from a float", "f", float32(1.5), float32(1.5)},
		{"closed enum by name", "closed", "B", protoreflect.EnumNumber(1)},
		{"closed enum by declared number", "closed", int32(1), protoreflect.EnumNumber(1)},
		{"closed enum by undeclared number", "closed", "5", nil},
		{"timestamp before 1970", "ts", before1970, [2]int64{-1, 250_000_000}},
		{"timestamp from a long", "ts", int64(5), nil},
		{"wrapper", "wrapped", int32(3), int32(3)},
	} {
		t.Run(c.name, func(t *testing.T) {
			fd := md.Fields().ByName(protoreflect.Name(c.field))
			got, err := protoSingle(fd, c.v, c.field)
			if c.want == nil {
				if !errors.Is(err, ErrSourceRow) {
					t.Fatalf("protoSingle(%v) = %v, %v; want %v", c.v, got, err, ErrSourceRow)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var v any = got.Interface()
			if m, ok := v.(protoreflect.Message); ok {
				fs := m.Descriptor().Fields()
				if fs.Len() == 1 {
					v = m.Get(fs.Get(0)).Interface()
				} else {
					v = [2]int64{m.Get(fs.ByName("seconds")).Int(), m.Get(fs.ByName("nanos")).Int()}
				}
			}
			if v != c.want {
				t.Fatalf("protoSingle(%v) = %#v, want %#v", c.v, v, c.want)
			}
		})
	}
}
