package tableflow

import (
	"context"
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/catalog"
	"github.com/apache/iceberg-go/catalog/hadoop"
	"github.com/apache/iceberg-go/table"
)

func TestPlanUpsert(t *testing.T) {
	row := func(k string, p int32, o int64, i int) upsertVersion {
		return upsertVersion{key: []byte(k), partition: p, offset: o, row: i}
	}
	tomb := func(k string, p int32, o int64) upsertVersion {
		return upsertVersion{key: []byte(k), partition: p, offset: o, row: -1}
	}
	for _, tc := range []struct {
		name     string
		in       []upsertVersion
		wantLive []int
		wantKeys []string
	}{
		{"distinct keys", []upsertVersion{row("b", 0, 1, 0), row("a", 0, 2, 1)}, []int{0, 1}, []string{"a", "b"}},
		{"higher offset wins", []upsertVersion{row("a", 0, 5, 0), row("a", 0, 3, 1)}, []int{0}, []string{"a"}},
		{"later row wins, input order aside", []upsertVersion{row("a", 0, 3, 0), row("a", 0, 5, 1)}, []int{1}, []string{"a"}},
		{"tombstone after row deletes", []upsertVersion{row("a", 0, 3, 0), tomb("a", 0, 4)}, nil, []string{"a"}},
		{"row after tombstone lives", []upsertVersion{tomb("a", 0, 4), row("a", 0, 7, 0)}, []int{0}, []string{"a"}},
		{"tombstone alone still deletes", []upsertVersion{tomb("z", 2, 9)}, nil, []string{"z"}},
		{"higher partition wins over a higher offset", []upsertVersion{row("a", 0, 100, 0), row("a", 1, 2, 1)}, []int{1}, []string{"a"}},
		{"higher partition's tombstone wins", []upsertVersion{row("a", 0, 100, 0), tomb("a", 3, 1)}, nil, []string{"a"}},
		{"rows in log order", []upsertVersion{row("c", 1, 0, 0), row("b", 0, 9, 1), row("a", 0, 2, 2)}, []int{2, 1, 0}, []string{"a", "b", "c"}},
		{"empty", nil, nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			live, keys := planUpsert(tc.in)
			var got []string
			for _, k := range keys {
				got = append(got, string(k))
			}
			if !slices.Equal(live, tc.wantLive) || !slices.Equal(got, tc.wantKeys) {
				t.Fatalf("planUpsert = %v %q, want %v %q", live, got, tc.wantLive, tc.wantKeys)
			}
		})
	}
}

// testSchema is a table schema with the fixed columns of a topic without a
// value schema.
func upsertTestSchema() *iceberg.Schema {
	return iceberg.NewSchema(0,
		iceberg.NestedField{ID: 1, Name: ColPartition, Type: iceberg.PrimitiveTypes.Int32, Required: true},
		iceberg.NestedField{ID: 2, Name: ColOffset, Type: iceberg.PrimitiveTypes.Int64, Required: true},
		iceberg.NestedField{ID: 3, Name: ColTimestamp, Type: iceberg.PrimitiveTypes.TimestampTz, Required: true},
		iceberg.NestedField{ID: 4, Name: ColKey, Type: iceberg.PrimitiveTypes.Binary},
		iceberg.NestedField{ID: 5, Name: ColHeaders, Type: &iceberg.MapType{
			KeyID: 6, KeyType: iceberg.PrimitiveTypes.String,
			ValueID: 7, ValueType: iceberg.PrimitiveTypes.Binary, ValueRequired: false}},
		iceberg.NestedField{ID: 8, Name: ColValue, Type: iceberg.PrimitiveTypes.Binary},
	)
}

// newTestTable creates a table in a Hadoop catalog under a temporary
// directory: an upsert table (UpsertSchema) when upsert is set.
func newTestTable(t *testing.T, upsert bool, partitionBy func(*iceberg.Schema) iceberg.PartitionSpec) *table.Table {
	t.Helper()
	tbl, _ := newTestCatalogTable(t, upsert, partitionBy)
	return tbl
}

// newTestCatalogTable is newTestTable that also returns the catalog.
func newTestCatalogTable(t *testing.T, upsert bool, partitionBy func(*iceberg.Schema) iceberg.PartitionSpec) (*table.Table, catalog.Catalog) {
	t.Helper()
	ctx := context.Background()
	cat, err := hadoop.NewCatalog("test", t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cat.Close() })
	if err := cat.CreateNamespace(ctx, table.Identifier{"default"}, nil); err != nil {
		t.Fatal(err)
	}
	sc := upsertTestSchema()
	if upsert {
		if sc, err = UpsertSchema(sc); err != nil {
			t.Fatal(err)
		}
	}
	spec := *iceberg.UnpartitionedSpec
	if partitionBy != nil {
		spec = partitionBy(sc)
	}
	tbl, err := cat.CreateTable(ctx, table.Identifier{"default", "t"}, sc,
		catalog.WithPartitionSpec(&spec),
		catalog.WithProperties(iceberg.Properties{table.PropertyFormatVersion: "2", table.ManifestMergeEnabledKey: "true"}))
	if err != nil {
		t.Fatal(err)
	}
	return tbl, cat
}

func bucketKey(n int) func(*iceberg.Schema) iceberg.PartitionSpec {
	return func(sc *iceberg.Schema) iceberg.PartitionSpec {
		f, _ := sc.FindFieldByName(ColKey)
		return iceberg.NewPartitionSpec(iceberg.PartitionField{
			SourceIDs: []int{f.ID}, FieldID: 1000, Name: "_key_bucket", Transform: iceberg.BucketTransform{NumBuckets: n}})
	}
}

func dayTimestamp(sc *iceberg.Schema) iceberg.PartitionSpec {
	f, _ := sc.FindFieldByName(ColTimestamp)
	return iceberg.NewPartitionSpec(iceberg.PartitionField{
		SourceIDs: []int{f.ID}, FieldID: 1000, Name: "_timestamp_day", Transform: iceberg.DayTransform{}})
}

// rec is one record of a test topic: a nil value is a tombstone.
type rec struct {
	key       string
	partition int32
	offset    int64
	value     *string
}

func val(s string) *string { return &s }

// rowsArrow is the Arrow shape the materialiser hands Upsert: the fixed
// columns and _value.
var rowsArrow = arrow.NewSchema([]arrow.Field{
	{Name: ColPartition, Type: arrow.PrimitiveTypes.Int32},
	{Name: ColOffset, Type: arrow.PrimitiveTypes.Int64},
	{Name: ColTimestamp, Type: &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}},
	{Name: ColKey, Type: arrow.BinaryTypes.Binary, Nullable: true},
	{Name: ColHeaders, Type: arrow.MapOf(arrow.BinaryTypes.String, arrow.BinaryTypes.Binary), Nullable: true},
	{Name: ColValue, Type: arrow.BinaryTypes.Binary, Nullable: true},
}, nil)

// split turns records into Upsert's input: the rows and the tombstones.
func split(recs []rec) (arrow.Record, []Tombstone) {
	b := array.NewRecordBuilder(memory.DefaultAllocator, rowsArrow)
	defer b.Release()
	var tombs []Tombstone
	for _, r := range recs {
		if r.value == nil {
			tombs = append(tombs, Tombstone{Key: []byte(r.key), Partition: r.partition, Offset: r.offset})
			continue
		}
		b.Field(0).(*array.Int32Builder).Append(r.partition)
		b.Field(1).(*array.Int64Builder).Append(r.offset)
		b.Field(2).(*array.TimestampBuilder).Append(arrow.Timestamp(1_700_000_000_000_000 + r.offset*86_400_000_000))
		b.Field(3).(*array.BinaryBuilder).Append([]byte(r.key))
		hb := b.Field(4).(*array.MapBuilder)
		hb.Append(true)
		hb.KeyBuilder().(*array.StringBuilder).Append("v")
		hb.ItemBuilder().(*array.BinaryBuilder).Append([]byte(*r.value))
		b.Field(5).(*array.BinaryBuilder).Append([]byte(*r.value))
	}
	return b.NewRecord(), tombs
}

// upsertCommit upserts recs in one commit whose summary records offs.
func upsertCommit(t *testing.T, tbl *table.Table, recs []rec, offs Offsets) *table.Table {
	t.Helper()
	rows, tombs := split(recs)
	defer rows.Release()
	txn := tbl.NewTransaction()
	if err := Upsert(context.Background(), txn, rows, tombs, iceberg.Properties{SummaryOffsets: offs.String()}); err != nil {
		t.Fatalf("Upsert: %v", err)
	}
	next, err := txn.Commit(context.Background())
	if err != nil {
		t.Fatalf("commit: %v", err)
	}
	return next
}

// upsertHistory is a keyed topic over three commits with updates,
// tombstones, a key deleted and written again, and a key written and
// deleted inside one commit. want is the live key → newest value.
var upsertHistory = [][]rec{
	{
		{"k1", 0, 0, val("a1")}, {"k2", 0, 1, val("b1")}, {"k3", 0, 2, val("c1")},
		{"k1", 0, 3, val("a2")}, {"k6", 1, 0, val("f1")},
	},
	{
		{"k2", 0, 4, val("b2")}, {"k3", 0, 5, nil}, {"k4", 0, 6, val("d1")},
		{"k7", 1, 1, val("g1")},
	},
	{
		{"k1", 0, 7, nil}, {"k1", 0, 8, val("a3")}, {"k4", 0, 9, nil},
		{"k5", 0, 10, val("e1")}, {"k5", 0, 11, nil}, {"k6", 1, 2, val("f2")}, {"k7", 1, 3, nil},
	},
	{
		{"k8", 0, 12, val("h1")}, {"k2", 0, 13, val("b3")}, {"k3", 0, 14, val("c2")},
	},
}

var upsertWant = map[string]string{"k1": "a3", "k2": "b3", "k3": "c2", "k6": "f2", "k8": "h1"}

// upsertHistoryOffsets is the summary offsets after commit i of upsertHistory.
func upsertHistoryOffsets(i int) Offsets {
	o := Offsets{}
	for _, c := range upsertHistory[:i+1] {
		for _, r := range c {
			o[r.partition] = max(o[r.partition], r.offset+1)
		}
	}
	return o
}

func writeHistory(t *testing.T, tbl *table.Table) *table.Table {
	t.Helper()
	for i, c := range upsertHistory {
		tbl = upsertCommit(t, tbl, c, upsertHistoryOffsets(i))
	}
	return tbl
}

// scanRows reads the table as an Iceberg reader does (deletes applied):
// key → values, in scan order.
func scanRows(t *testing.T, tbl *table.Table) map[string][]string {
	t.Helper()
	at, err := tbl.Scan(table.WithSelectedFields(ColKey, ColValue)).ToArrowTable(context.Background())
	if err != nil {
		t.Fatalf("scan: %v", err)
	}
	defer at.Release()
	return keyValues(t, at)
}

func keyValues(t *testing.T, at arrow.Table) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	tr := array.NewTableReader(at, 1024)
	defer tr.Release()
	for tr.Next() {
		r := tr.Record()
		k := r.Column(r.Schema().FieldIndices(ColKey)[0]).(*array.Binary)
		v := r.Column(r.Schema().FieldIndices(ColValue)[0]).(*array.Binary)
		for i := range int(r.NumRows()) {
			out[string(k.Value(i))] = append(out[string(k.Value(i))], string(v.Value(i)))
		}
	}
	return out
}

// checkOneRowPerKey fails unless got holds exactly one row per key of want
// with its value.
func checkOneRowPerKey(t *testing.T, got map[string][]string, want map[string]string) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("keys = %v, want %v", slices.Sorted(maps.Keys(got)), slices.Sorted(maps.Keys(want)))
	}
	for k, vs := range got {
		if len(vs) != 1 || vs[0] != want[k] {
			t.Errorf("key %s: rows %q, want [%q]", k, vs, want[k])
		}
	}
}

func TestUpsertOneRowPerLiveKey(t *testing.T) {
	for _, tc := range []struct {
		name string
		spec func(*iceberg.Schema) iceberg.PartitionSpec
	}{
		{"unpartitioned", nil},
		{"bucket(4, _key)", bucketKey(4)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tbl := newTestTable(t, true, tc.spec)
			for i, c := range upsertHistory {
				before := len(tbl.Metadata().Snapshots())
				tbl = upsertCommit(t, tbl, c, upsertHistoryOffsets(i))
				if n := len(tbl.Metadata().Snapshots()); n != before+1 {
					t.Fatalf("commit %d made %d snapshots, want one", i, n-before)
				}
				got, err := OffsetsOf(tbl.Metadata())
				if err != nil || got.String() != upsertHistoryOffsets(i).String() {
					t.Fatalf("commit %d: OffsetsOf = %v, %v", i, got, err)
				}
			}
			checkOneRowPerKey(t, scanRows(t, tbl), upsertWant)
			checkHeaders(t, tbl, upsertWant)
			if s := tbl.CurrentSnapshot().Summary; s.Operation != table.OpOverwrite || s.Properties["added-equality-delete-files"] == "" {
				t.Errorf("last snapshot: %s %v, want an overwrite adding equality deletes", s.Operation, s.Properties)
			}
		})
	}
}

// checkHeaders checks that every row's _headers came along with its
// value (the test records carry header v = the value).
func checkHeaders(t *testing.T, tbl *table.Table, want map[string]string) {
	t.Helper()
	at, err := tbl.Scan(table.WithSelectedFields(ColKey, ColHeaders)).ToArrowTable(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer at.Release()
	tr := array.NewTableReader(at, 1024)
	defer tr.Release()
	n := 0
	for tr.Next() {
		r := tr.Record()
		k := r.Column(r.Schema().FieldIndices(ColKey)[0]).(*array.Binary)
		h := r.Column(r.Schema().FieldIndices(ColHeaders)[0]).(*array.Map)
		items := h.Items().(*array.Binary)
		for i := range int(r.NumRows()) {
			start, end := h.ValueOffsets(i)
			if end-start != 1 || string(items.Value(int(start))) != want[string(k.Value(i))] {
				t.Errorf("key %s: %d headers, want v=%s", k.Value(i), end-start, want[string(k.Value(i))])
			}
			n++
		}
	}
	if n != len(want) {
		t.Errorf("%d rows, want %d", n, len(want))
	}
}

func TestUpsertTombstonesOnly(t *testing.T) {
	tbl := newTestTable(t, true, nil)
	tbl = upsertCommit(t, tbl, []rec{{"a", 0, 0, val("1")}, {"b", 0, 1, val("2")}}, Offsets{0: 2})
	tbl = upsertCommit(t, tbl, []rec{{"a", 0, 2, nil}}, Offsets{0: 3})
	if op := tbl.CurrentSnapshot().Summary.Operation; op != table.OpDelete {
		t.Errorf("operation %s, want delete", op)
	}
	checkOneRowPerKey(t, scanRows(t, tbl), map[string]string{"b": "2"})

	// Nothing to upsert stages nothing.
	txn := tbl.NewTransaction()
	if err := Upsert(context.Background(), txn, nil, nil, iceberg.Properties{SummaryOffsets: "{}"}); err != nil {
		t.Fatal(err)
	}
	next, err := txn.Commit(context.Background())
	if err != nil || next.CurrentSnapshot().SnapshotID != tbl.CurrentSnapshot().SnapshotID {
		t.Fatalf("empty upsert committed a snapshot (%v)", err)
	}
}

func TestUpsertSchema(t *testing.T) {
	sc, err := UpsertSchema(upsertTestSchema())
	if err != nil {
		t.Fatal(err)
	}
	key, _ := sc.FindFieldByName(ColKey)
	if !slices.Equal(sc.IdentifierFieldIDs, []int{key.ID}) || !key.Required {
		t.Fatalf("identifier fields %v, _key required %v", sc.IdentifierFieldIDs, key.Required)
	}
	if _, err := UpsertSchema(iceberg.NewSchema(0, iceberg.NestedField{ID: 1, Name: "x", Type: iceberg.PrimitiveTypes.Int32})); err == nil {
		t.Error("schema without _key accepted")
	}
	if _, err := UpsertSchema(iceberg.NewSchema(0, iceberg.NestedField{ID: 1, Name: ColKey, Type: iceberg.PrimitiveTypes.String})); err == nil {
		t.Error("string _key accepted")
	}

	// A table created without it is refused: engines would not know the
	// row identity.
	tbl := newTestTable(t, false, nil)
	rows, _ := split([]rec{{"a", 0, 0, val("1")}})
	defer rows.Release()
	if err := Upsert(context.Background(), tbl.NewTransaction(), rows, nil, nil); err == nil || !strings.Contains(err.Error(), "identifier") {
		t.Errorf("Upsert on a table without identifier fields: %v", err)
	}
}

func TestCheckUpsertSpec(t *testing.T) {
	sc, err := UpsertSchema(upsertTestSchema())
	if err != nil {
		t.Fatal(err)
	}
	keyID := sc.IdentifierFieldIDs[0]
	for _, tc := range []struct {
		name string
		spec iceberg.PartitionSpec
		ok   bool
	}{
		{"unpartitioned", *iceberg.UnpartitionedSpec, true},
		{"bucket(16, _key)", bucketKey(16)(sc), true},
		{"truncate(4, _key)", iceberg.NewPartitionSpec(iceberg.PartitionField{SourceIDs: []int{keyID}, FieldID: 1000, Name: "k", Transform: iceberg.TruncateTransform{Width: 4}}), true},
		{"day(_timestamp)", dayTimestamp(sc), false},
		{"bucket(_key), identity(_partition)", iceberg.NewPartitionSpec(
			iceberg.PartitionField{SourceIDs: []int{keyID}, FieldID: 1000, Name: "k", Transform: iceberg.BucketTransform{NumBuckets: 4}},
			iceberg.PartitionField{SourceIDs: []int{1}, FieldID: 1001, Name: "p", Transform: iceberg.IdentityTransform{}}), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckUpsertSpec(sc, tc.spec)
			if tc.ok != (err == nil) || (err != nil && !errors.Is(err, ErrUnsupportedSpec)) {
				t.Fatalf("CheckUpsertSpec = %v", err)
			}
		})
	}

	// Upsert itself refuses a day-partitioned table, before writing anything.
	tbl := newTestTable(t, true, dayTimestamp)
	rows, _ := split([]rec{{"a", 0, 0, val("1")}})
	defer rows.Release()
	if err := Upsert(context.Background(), tbl.NewTransaction(), rows, nil, nil); !errors.Is(err, ErrUnsupportedSpec) {
		t.Fatalf("Upsert on day(_timestamp) = %v, want ErrUnsupportedSpec", err)
	}
}
