package tableflow

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/catalog"
	"github.com/apache/iceberg-go/catalog/hadoop"
	"github.com/apache/iceberg-go/table"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-dev/runnel/internal/cluster/clustertest"
	"github.com/runnel-dev/runnel/internal/config"
	"github.com/runnel-dev/runnel/internal/objstore"
	"github.com/runnel-dev/runnel/internal/stream"
)

// loopEnv is a real etcd, a real stream engine with one topic, and a
// table in an iceberg-go hadoop catalog over a temp dir.
type loopEnv struct {
	log   *stream.Engine
	topic stream.TopicInfo
	cat   interface {
		LoadTable(context.Context, table.Identifier) (*table.Table, error)
	}
	ident table.Identifier
	// dataDir is the directory of the table's data files.
	dataDir string
}

var errBadRecord = errors.New("test: value cannot become a row")

func newLoopEnv(t *testing.T, partitions int32) *loopEnv {
	t.Helper()
	return newLoopEnvSchema(t, partitions, loopSchema(), false)
}

// newLoopEnvSchema is newLoopEnv with the table created with sc.
// With withCatalog the table is in Runnel's own etcd catalog over the
// engine's object store instead.
func newLoopEnvSchema(t *testing.T, partitions int32, sc *iceberg.Schema, withCatalog bool) *loopEnv {
	t.Helper()
	etcd := clustertest.Start(t)
	storeDir := t.TempDir()
	store, err := objstore.Open(context.Background(), "file://"+storeDir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	log, err := stream.Open(context.Background(), stream.Options{Client: etcd.Client(), Store: store, FlushLinger: time.Millisecond, DisableMaintenance: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { log.Close() })
	ti, err := log.CreateTopic(context.Background(), "orders", partitions, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if withCatalog {
		cat, err := OpenCatalog(context.Background(), CatalogOptions{Client: etcd.Client(), IO: NewFileIO(store, "file://"+storeDir)})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := cat.CreateTable(context.Background(), TableSpec{Namespace: "default", Name: "orders", Topic: ti.Name, TopicID: ti.ID,
			Schema: sc, Spec: *iceberg.UnpartitionedSpec}); err != nil {
			t.Fatal(err)
		}
		return &loopEnv{log: log, topic: ti, cat: cat, ident: table.Identifier{"default", "orders"},
			dataDir: filepath.Join(storeDir, "warehouse", "default", "orders", "data")}
	}
	cat, err := hadoop.NewCatalog("test", dir, iceberg.Properties{})
	if err != nil {
		t.Fatal(err)
	}
	ident := table.Identifier{"default", "orders"}
	if err := cat.CreateNamespace(context.Background(), table.Identifier{"default"}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := cat.CreateTable(context.Background(), ident, sc,
		catalog.WithProperties(iceberg.Properties{"commit.manifest-merge.enabled": "true"})); err != nil {
		t.Fatal(err)
	}
	return &loopEnv{log: log, topic: ti, cat: cat, ident: ident, dataDir: filepath.Join(dir, "default", "orders", "data")}
}

func loopSchema() *iceberg.Schema {
	return iceberg.NewSchema(0,
		iceberg.NestedField{ID: 1, Name: ColPartition, Type: iceberg.PrimitiveTypes.Int32, Required: true},
		iceberg.NestedField{ID: 2, Name: ColOffset, Type: iceberg.PrimitiveTypes.Int64, Required: true},
		iceberg.NestedField{ID: 3, Name: ColTimestamp, Type: iceberg.PrimitiveTypes.TimestampTz, Required: true},
		iceberg.NestedField{ID: 4, Name: ColKey, Type: iceberg.PrimitiveTypes.Binary},
		iceberg.NestedField{ID: 5, Name: ColValue, Type: iceberg.PrimitiveTypes.Binary},
	)
}

// testRows is a schemaless converter for loopSchema; a value starting
// with "bad" cannot become a row.
type testRows struct {
	b *array.RecordBuilder
}

func newTestRows(sc *iceberg.Schema) (rowConverter, error) {
	as, err := table.SchemaToArrowSchema(sc, nil, true, false)
	if err != nil {
		return nil, err
	}
	return &testRows{b: array.NewRecordBuilder(memory.DefaultAllocator, as)}, nil
}

func (c *testRows) Append(_ context.Context, partition int32, r stream.DecodedRecord) error {
	if bytes.HasPrefix(r.Value, []byte("bad")) {
		return fmt.Errorf("%w: %q", errBadRecord, r.Value)
	}
	c.b.Field(0).(*array.Int32Builder).Append(partition)
	c.b.Field(1).(*array.Int64Builder).Append(r.Offset)
	c.b.Field(2).(*array.TimestampBuilder).Append(arrow.Timestamp(r.Timestamp * 1000))
	for i, v := range [][]byte{r.Key, r.Value} {
		if v == nil {
			c.b.Field(3 + i).AppendNull()
		} else {
			c.b.Field(3 + i).(*array.BinaryBuilder).Append(v)
		}
	}
	return nil
}

func (c *testRows) Len() int {
	return c.b.Field(0).Len()
}

func (c *testRows) NewRecord() arrow.Record { return c.b.NewRecordBatch() }
func (c *testRows) Release()                { c.b.Release() }

func (v *loopEnv) materialiser(t *testing.T, mode string) *materialiser {
	t.Helper()
	now := time.Now
	st := newTableStatus(TableStatus{Namespace: "default", Name: "orders", Topic: v.topic.Name, Mode: "append"}, now())
	m := &materialiser{
		log:     v.log,
		topic:   v.topic,
		cfg:     config.Table{Enabled: true, Mode: "append", ErrorMode: mode},
		ident:   v.ident,
		load:    func(ctx context.Context) (*table.Table, error) { return v.cat.LoadTable(ctx, v.ident) },
		convert: newTestRows,
		logger:  slog.New(slog.DiscardHandler),
		now:     now,
		// Small reads: a pass is several fetches.
		maxBytes: 1 << 20, fetchBytes: 4 << 10,
		interval: 10 * time.Millisecond,
		status:   st,
	}
	if mode == "dlq" {
		m.dlq = &dlqWriter{log: v.log, topic: "orders-table-dlq", src: v.topic.Name, table: st.name}
	}
	return m
}

// produce writes one batch of values to a partition (idempotent producer
// pid when pid >= 0, transactional when txn).
func (v *loopEnv) produce(t *testing.T, part int32, pid int64, epoch int16, seq int32, txn bool, values ...string) {
	t.Helper()
	recs := make([]kmsg.Record, len(values))
	for i, val := range values {
		recs[i] = kmsg.Record{Key: []byte(fmt.Sprintf("k%d", i)), Value: []byte(val)}
	}
	b := stream.EncodeBatch(pid, epoch, seq, time.Now().UnixMilli(), recs)
	if txn {
		setTransactional(b)
	}
	res := v.log.Produce(context.Background(), []stream.ProduceBatch{{Topic: v.topic.Name, Partition: part, Records: b, ImplicitTxnAdd: txn}})
	if res[0].Err != nil {
		t.Fatalf("produce: %v", res[0].Err)
	}
}

// setTransactional sets a batch's transactional attribute and its CRC.
func setTransactional(b []byte) {
	b[22] |= 0x10
	crc := crc32.Checksum(b[21:], crc32.MakeTable(crc32.Castagnoli))
	b[17], b[18], b[19], b[20] = byte(crc>>24), byte(crc>>16), byte(crc>>8), byte(crc)
}

// rows scans the table and returns its (partition, offset) → value.
func (v *loopEnv) rows(t *testing.T) map[[2]int64]string {
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
	out := map[[2]int64]string{}
	rdr := array.NewTableReader(at, 1024)
	defer rdr.Release()
	for rdr.Next() {
		rec := rdr.RecordBatch()
		parts := rec.Column(0).(*array.Int32)
		offs := rec.Column(1).(*array.Int64)
		vals := rec.Column(4).(*array.Binary)
		for i := 0; i < int(rec.NumRows()); i++ {
			k := [2]int64{int64(parts.Value(i)), offs.Value(i)}
			if _, dup := out[k]; dup {
				t.Fatalf("row %v twice", k)
			}
			out[k] = string(vals.Value(i))
		}
	}
	return out
}

func (v *loopEnv) offsets(t *testing.T) Offsets {
	t.Helper()
	tbl, err := v.cat.LoadTable(context.Background(), v.ident)
	if err != nil {
		t.Fatal(err)
	}
	o, err := OffsetsOf(tbl.Metadata())
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// catchUp runs passes until one finds the table caught up.
func catchUp(t *testing.T, m *materialiser) {
	t.Helper()
	for i := 0; i < 100; i++ {
		up, err := m.step(context.Background())
		if err != nil {
			t.Fatalf("step: %v", err)
		}
		if up {
			return
		}
	}
	t.Fatal("never caught up")
}

func TestMaterialiseAppend(t *testing.T) {
	v := newLoopEnv(t, 2)
	m := v.materialiser(t, "suspend")
	want := map[[2]int64]string{}
	for round := 0; round < 3; round++ {
		for part := int32(0); part < 2; part++ {
			var vals []string
			for i := 0; i < 50; i++ {
				vals = append(vals, fmt.Sprintf("r%d-p%d-%d-%s", round, part, i, strings.Repeat("x", 200)))
			}
			v.produce(t, part, -1, -1, 0, false, vals...)
			for i, val := range vals {
				want[[2]int64{int64(part), int64(round*50 + i)}] = val
			}
		}
		catchUp(t, m)
	}
	got := v.rows(t)
	if len(got) != len(want) {
		t.Fatalf("%d rows, want %d", len(got), len(want))
	}
	for k, val := range want {
		if got[k] != val {
			t.Fatalf("row %v = %q, want %q", k, got[k], val)
		}
	}
	if o := v.offsets(t); o[0] != 150 || o[1] != 150 {
		t.Fatalf("offsets %v", o)
	}
	// Nothing new: no new snapshot.
	before := v.snapshots(t)
	catchUp(t, m)
	if after := v.snapshots(t); after != before {
		t.Fatalf("an empty pass committed: %d snapshots, then %d", before, after)
	}
	if st := m.status.get(); st.Records != 300 || st.LagRecords != 0 {
		t.Fatalf("status %+v", st)
	}
}

func (v *loopEnv) snapshots(t *testing.T) int {
	tbl, err := v.cat.LoadTable(context.Background(), v.ident)
	if err != nil {
		t.Fatal(err)
	}
	return len(tbl.Metadata().Snapshots())
}

func TestMaterialiseReadCommitted(t *testing.T) {
	v := newLoopEnv(t, 1)
	ctx := context.Background()
	pid, epoch, err := v.log.InitTxnProducer(ctx, "tx", 60000, -1, -1)
	if err != nil {
		t.Fatal(err)
	}
	v.produce(t, 0, -1, -1, 0, false, "plain-0", "plain-1")
	v.produce(t, 0, pid, epoch, 0, true, "aborted-0", "aborted-1")
	if _, _, err := v.log.EndTxn(ctx, "tx", pid, epoch, false, false); err != nil {
		t.Fatal(err)
	}
	v.produce(t, 0, pid, epoch, 2, true, "committed-0")
	v.produce(t, 0, -1, -1, 0, false, "plain-2")
	// The open transaction holds the last stable offset back: the
	// materialiser stops before it.
	m := v.materialiser(t, "suspend")
	catchUp(t, m)
	got := values(v.rows(t))
	if want := "plain-0,plain-1"; got != want {
		t.Fatalf("before the commit: %s, want %s", got, want)
	}
	if _, _, err := v.log.EndTxn(ctx, "tx", pid, epoch, true, false); err != nil {
		t.Fatal(err)
	}
	catchUp(t, m)
	if got, want := values(v.rows(t)), "plain-0,plain-1,committed-0,plain-2"; got != want {
		t.Fatalf("rows %s, want %s", got, want)
	}
	st, _ := v.log.State(v.topic.Name, 0)
	if o := v.offsets(t); o[0] != st.HighWatermark {
		t.Fatalf("offsets %v, high watermark %d", o, st.HighWatermark)
	}
}

// values lists the rows' values in (partition, offset) order.
func values(rows map[[2]int64]string) string {
	var keys [][2]int64
	for k := range rows {
		keys = append(keys, k)
	}
	slicesSortKeys(keys)
	var out []string
	for _, k := range keys {
		out = append(out, rows[k])
	}
	return strings.Join(out, ",")
}

func slicesSortKeys(keys [][2]int64) {
	for i := 1; i < len(keys); i++ {
		for j := i; j > 0 && (keys[j][0] < keys[j-1][0] || keys[j][0] == keys[j-1][0] && keys[j][1] < keys[j-1][1]); j-- {
			keys[j], keys[j-1] = keys[j-1], keys[j]
		}
	}
}

// Two materialisers on one table: the one that loses the commit race
// writes nothing twice and leaves none of its files behind, with
// iceberg-go's hadoop catalog and with Runnel's own.
func TestMaterialiseLostRaceNeverDuplicates(t *testing.T) {
	t.Run("hadoop", func(t *testing.T) { testLostRace(t, newLoopEnv(t, 2)) })
	t.Run("etcd", func(t *testing.T) { testLostRace(t, newLoopEnvSchema(t, 2, loopSchema(), true)) })
}

func testLostRace(t *testing.T, v *loopEnv) {
	for part := int32(0); part < 2; part++ {
		v.produce(t, part, -1, -1, 0, false, "a", "b", "c")
	}
	loser, winner := v.materialiser(t, "suspend"), v.materialiser(t, "suspend")
	var raced bool
	loser.beforeCommit = func(ctx context.Context) error {
		if raced {
			return nil
		}
		raced = true
		v.produce(t, 0, -1, -1, 0, false, "d")
		catchUp(t, winner)
		return nil
	}
	filesBefore := v.dataFiles(t)
	if _, err := loser.step(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !raced {
		t.Fatal("no race")
	}
	if files := v.dataFiles(t); len(files) != len(filesBefore)+1 {
		t.Fatalf("data files %v: the loser's were not removed (want only the winner's one)", files)
	}
	v.produce(t, 1, -1, -1, 0, false, "e")
	catchUp(t, loser)
	got := v.rows(t)
	if len(got) != 8 {
		t.Fatalf("%d rows, want 8: %v", len(got), got)
	}
	if o := v.offsets(t); o[0] != 4 || o[1] != 4 {
		t.Fatalf("offsets %v", o)
	}
}

func (v *loopEnv) dataFiles(t *testing.T) []string {
	t.Helper()
	var out []string
	filepath.Walk(v.dataDir, func(p string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() && strings.HasSuffix(p, ".parquet") {
			out = append(out, p)
		}
		return nil
	})
	return out
}

func TestMaterialiseErrorModes(t *testing.T) {
	t.Run("suspend", func(t *testing.T) {
		v := newLoopEnv(t, 1)
		v.produce(t, 0, -1, -1, 0, false, "a", "b", "bad-c", "d")
		m := v.materialiser(t, "suspend")
		_, err := m.step(context.Background())
		if !errors.Is(err, ErrSuspended) {
			t.Fatalf("step = %v, want ErrSuspended", err)
		}
		if got := values(v.rows(t)); got != "a,b" {
			t.Fatalf("rows %s, want the ones before the bad record", got)
		}
		if o := v.offsets(t); o[0] != 2 {
			t.Fatalf("offsets %v, want the bad record's", o)
		}
		if st := m.status.get(); st.State != StateSuspended || !strings.Contains(st.Reason, "offset 2") {
			t.Fatalf("status %+v", st)
		}
	})
	t.Run("skip", func(t *testing.T) {
		v := newLoopEnv(t, 1)
		v.produce(t, 0, -1, -1, 0, false, "a", "bad-b", "c")
		m := v.materialiser(t, "skip")
		catchUp(t, m)
		if got := values(v.rows(t)); got != "a,c" {
			t.Fatalf("rows %s", got)
		}
		if o := v.offsets(t); o[0] != 3 {
			t.Fatalf("offsets %v", o)
		}
		if st := m.status.get(); st.Errors != 1 || st.State != StateRunning {
			t.Fatalf("status %+v", st)
		}
	})
	t.Run("dlq", func(t *testing.T) {
		v := newLoopEnv(t, 1)
		if _, err := v.log.CreateTopic(context.Background(), "orders-table-dlq", 1, nil, false); err != nil {
			t.Fatal(err)
		}
		v.produce(t, 0, -1, -1, 0, false, "a", "bad-b", "c")
		m := v.materialiser(t, "dlq")
		// The first attempt loses its commit after producing the letter;
		// the retry produces it again, and the sequencer keeps one.
		lose := true
		m.beforeCommit = func(ctx context.Context) error {
			if lose {
				lose = false
				return errors.New("crash before the commit")
			}
			return nil
		}
		// The first pass records the producer id, the second produces the
		// letter and fails.
		if _, err := m.step(context.Background()); err != nil {
			t.Fatal(err)
		}
		if _, err := m.step(context.Background()); err == nil || lose {
			t.Fatalf("the planted failure did not fail the pass: %v", err)
		}
		catchUp(t, m)
		if got := values(v.rows(t)); got != "a,c" {
			t.Fatalf("rows %s", got)
		}
		v.produce(t, 0, -1, -1, 0, false, "bad-d")
		catchUp(t, m)
		if o := v.offsets(t); o[0] != 4 {
			t.Fatalf("offsets %v after a pass of only a dead letter", o)
		}
		letters := v.letters(t, "orders-table-dlq")
		if len(letters) != 2 || string(letters[0].Value) != "bad-b" || string(letters[1].Value) != "bad-d" {
			t.Fatalf("dead letters %v", letters)
		}
		h := map[string]string{}
		for _, x := range letters[0].Headers {
			h[x.Key] = string(x.Value)
		}
		if h[HeaderTable] != "default.orders" || h[HeaderOffset] != "1" || h[HeaderPartition] != "0" || h[HeaderTopic] != "orders" || !strings.Contains(h[HeaderReason], "cannot become a row") {
			t.Fatalf("headers %v", h)
		}
	})
}

func (v *loopEnv) letters(t *testing.T, topic string) []stream.DecodedRecord {
	t.Helper()
	ti, _ := v.log.Topic(topic)
	res, err := v.log.Fetch(context.Background(), stream.FetchPartition{TopicID: ti.ID, Offset: 0, MaxBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	bs, err := stream.DecodeBatches(res.Records)
	if err != nil {
		t.Fatal(err)
	}
	var out []stream.DecodedRecord
	for _, b := range bs {
		out = append(out, b.Records...)
	}
	return out
}

// A backlog in one partition does not starve the others: passes cut by
// the byte budget start at a different partition each time.
func TestMaterialiseBudgetRotatesPartitions(t *testing.T) {
	v := newLoopEnv(t, 2)
	var big []string
	for i := 0; i < 10; i++ {
		big = append(big, strings.Repeat("x", 200))
	}
	for i := 0; i < 20; i++ {
		v.produce(t, 0, -1, -1, 0, false, big...)
	}
	v.produce(t, 1, -1, -1, 0, false, "a", "b", "c")
	m := v.materialiser(t, "suspend")
	m.maxBytes, m.fetchBytes = 8<<10, 4<<10
	for i := 0; i < 2; i++ {
		if _, err := m.step(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if o := v.offsets(t); o[1] != 3 || o[0] == 0 || o[0] == 200 {
		t.Fatalf("offsets after two cut passes %v: want partition 1 done and partition 0 part way", o)
	}
}

// Maintenance runs between commits and keeps the offsets: with two
// snapshots retained, five commits leave at most three (the retained ones
// and the current), and the table still resumes where it was.
func TestMaterialiseMaintainsBetweenCommits(t *testing.T) {
	v := newLoopEnv(t, 1)
	m := v.materialiser(t, "suspend")
	runs := 0
	m.maintain = func(ctx context.Context, tbl *table.Table) error {
		runs++
		_, _, err := Maintain(ctx, tbl, MaintainOptions{RetainSnapshots: 2})
		return err
	}
	for i := 0; i < 5; i++ {
		v.produce(t, 0, -1, -1, 0, false, fmt.Sprint(i))
		catchUp(t, m)
	}
	if runs < 5 {
		t.Fatalf("maintenance ran %d times over 5 commits", runs)
	}
	if n := v.snapshots(t); n > 3 {
		t.Fatalf("%d snapshots kept, want at most 3", n)
	}
	if o := v.offsets(t); o[0] != 5 {
		t.Fatalf("offsets %v after maintenance", o)
	}
	if got := values(v.rows(t)); got != "0,1,2,3,4" {
		t.Fatalf("rows %s", got)
	}
}
