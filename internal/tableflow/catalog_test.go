package tableflow

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/table"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/runnel-dev/runnel/internal/cluster/clustertest"
	"github.com/runnel-dev/runnel/internal/objstore"
	"github.com/runnel-dev/runnel/internal/stream"
)

// catalogEnv is one etcd and one file store, from which catalogs are
// opened as brokers would (each with its own client).
type catalogEnv struct {
	etcd  *clustertest.Etcd
	store objstore.Store
	base  string
}

func newCatalogEnv(t *testing.T) *catalogEnv {
	t.Helper()
	store, base := newFileStore(t)
	return &catalogEnv{etcd: clustertest.Start(t), store: store, base: base}
}

func (e *catalogEnv) open(t *testing.T) *Catalog {
	t.Helper()
	c, err := OpenCatalog(context.Background(), CatalogOptions{
		Client: e.etcd.Client(), Prefix: "/runnel", IO: NewFileIO(e.store, e.base),
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func testSchema() *iceberg.Schema {
	return iceberg.NewSchema(0,
		iceberg.NestedField{ID: 1, Name: ColPartition, Type: iceberg.PrimitiveTypes.Int32, Required: true},
		iceberg.NestedField{ID: 2, Name: ColOffset, Type: iceberg.PrimitiveTypes.Int64, Required: true},
		iceberg.NestedField{ID: 3, Name: ColValue, Type: iceberg.PrimitiveTypes.Binary},
	)
}

func testSpec(ns, name string, id byte) TableSpec {
	return TableSpec{
		Namespace: ns, Name: name, Topic: name, TopicID: stream.TopicID{id},
		Schema: testSchema(), Spec: *iceberg.UnpartitionedSpec,
	}
}

// metadataFiles lists the metadata files of a table, in order.
func metadataFiles(t *testing.T, store objstore.Store, ns, name string) []string {
	t.Helper()
	var out []string
	err := store.List(context.Background(), tableDir(ns, name)+"/metadata/", func(o objstore.ObjectInfo) error {
		if strings.HasSuffix(o.Key, ".metadata.json") {
			out = append(out, o.Key)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// appendRows appends rows (partition 0, the given offsets, values
// "v<offset>") with the offsets they cover in the snapshot summary.
func appendRows(t *testing.T, tbl *table.Table, offsets []int64) (*table.Table, error) {
	t.Helper()
	sc, err := table.SchemaToArrowSchema(tbl.Schema(), nil, false, false)
	if err != nil {
		t.Fatal(err)
	}
	b := array.NewRecordBuilder(memory.DefaultAllocator, sc)
	defer b.Release()
	for _, o := range offsets {
		b.Field(0).(*array.Int32Builder).Append(0)
		b.Field(1).(*array.Int64Builder).Append(o)
		b.Field(2).(*array.BinaryBuilder).Append([]byte("v" + itoa(o)))
	}
	rec := b.NewRecordBatch()
	defer rec.Release()
	rdr, err := array.NewRecordReader(sc, []arrow.RecordBatch{rec})
	if err != nil {
		t.Fatal(err)
	}
	defer rdr.Release()
	txn := tbl.NewTransaction()
	next := Offsets{0: offsets[len(offsets)-1] + 1}
	if err := txn.Append(context.Background(), rdr, iceberg.Properties{SummaryOffsets: next.String()}); err != nil {
		t.Fatal(err)
	}
	return txn.Commit(context.Background())
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// scanValues reads a table with iceberg-go's scanner and returns its
// values in offset order.
func scanValues(t *testing.T, tbl *table.Table) []string {
	t.Helper()
	at, err := tbl.Scan().ToArrowTable(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer at.Release()
	type row struct {
		off int64
		v   string
	}
	var rows []row
	rdr := array.NewTableReader(at, 0)
	defer rdr.Release()
	for rdr.Next() {
		rec := rdr.RecordBatch()
		offs := rec.Column(int(colIndex(t, rec.Schema(), ColOffset))).(*array.Int64)
		vals := rec.Column(int(colIndex(t, rec.Schema(), ColValue))).(*array.Binary)
		for i := range int(rec.NumRows()) {
			rows = append(rows, row{offs.Value(i), string(vals.Value(i))})
		}
	}
	slices.SortFunc(rows, func(a, b row) int { return int(a.off - b.off) })
	out := make([]string, len(rows))
	for i, r := range rows {
		out[i] = r.v
	}
	return out
}

func colIndex(t *testing.T, sc *arrow.Schema, name string) int {
	t.Helper()
	idx := sc.FieldIndices(name)
	if len(idx) != 1 {
		t.Fatalf("column %s not in %v", name, sc)
	}
	return idx[0]
}

func TestCatalogCreateTable(t *testing.T) {
	env := newCatalogEnv(t)
	cat := env.open(t)
	ctx := testCtx(t)

	tbl, err := cat.CreateTable(ctx, testSpec("runnel", "orders", 1))
	if err != nil {
		t.Fatal(err)
	}
	meta := tbl.Metadata()
	if got, want := meta.Location(), env.base+"/warehouse/runnel/orders"; got != want {
		t.Fatalf("location = %q, want %q", got, want)
	}
	if meta.Version() != 2 {
		t.Fatalf("format version = %d", meta.Version())
	}
	props := meta.Properties()
	// No commit retries inside iceberg-go: its replay would carry stale
	// offsets onto a new base (v0.7.0's default is 0 too; this keeps it).
	if props[PropTopicID] != "01000000000000000000000000000000" || props["commit.manifest-merge.enabled"] != "true" ||
		props[table.CommitNumRetriesKey] != "0" {
		t.Fatalf("properties = %v", props)
	}
	files := metadataFiles(t, env.store, "runnel", "orders")
	if len(files) != 1 || !strings.HasPrefix(files[0], "warehouse/runnel/orders/metadata/00000-") {
		t.Fatalf("metadata files = %q", files)
	}
	if tbl.MetadataLocation() != env.base+"/"+files[0] {
		t.Fatalf("metadata location %q, file %q", tbl.MetadataLocation(), files[0])
	}

	// Idempotent: the same topic id gets the same table, nothing new written.
	again, err := env.open(t).CreateTable(ctx, testSpec("runnel", "orders", 1))
	if err != nil {
		t.Fatal(err)
	}
	if again.MetadataLocation() != tbl.MetadataLocation() || again.Metadata().TableUUID() != meta.TableUUID() {
		t.Fatalf("second create = %s, want %s", again.MetadataLocation(), tbl.MetadataLocation())
	}
	if files := metadataFiles(t, env.store, "runnel", "orders"); len(files) != 1 {
		t.Fatalf("metadata files after the second create = %q", files)
	}
	// Another topic id: a conflict.
	if _, err := cat.CreateTable(ctx, testSpec("runnel", "orders", 2)); !errors.Is(err, ErrTableConflict) {
		t.Fatalf("create for another topic = %v, want ErrTableConflict", err)
	}
	// Bad names never reach etcd or the store.
	for _, bad := range [][2]string{{"", "t"}, {"ns", ""}, {"a/b", "t"}, {"ns", ".."}, {"ns", "a\x1fb"}} {
		if _, err := cat.CreateTable(ctx, testSpec(bad[0], bad[1], 3)); !errors.Is(err, ErrInvalidIdentifier) {
			t.Errorf("create %q = %v, want ErrInvalidIdentifier", bad, err)
		}
	}

	if _, err := cat.CreateTable(ctx, testSpec("runnel", "payments", 3)); err != nil {
		t.Fatal(err)
	}
	if _, err := cat.CreateTable(ctx, testSpec("other", "clicks", 4)); err != nil {
		t.Fatal(err)
	}

	// A restarted broker sees it all (etcd and the object store only).
	cat2 := env.open(t)
	if ns, err := cat2.Namespaces(ctx); err != nil || !slices.Equal(ns, []string{"other", "runnel"}) {
		t.Fatalf("Namespaces = %q, %v", ns, err)
	}
	entries, err := cat2.Tables(ctx, "runnel")
	if err != nil || len(entries) != 2 || entries[0].Name != "orders" || entries[1].Name != "payments" {
		t.Fatalf("Tables = %+v, %v", entries, err)
	}
	if e := entries[0]; e.Topic != "orders" || e.TopicID != (stream.TopicID{1}) || e.MetadataLocation != tbl.MetadataLocation() || e.Namespace != "runnel" {
		t.Fatalf("entry = %+v", e)
	}
	if _, err := cat2.Tables(ctx, "nope"); !errors.Is(err, ErrNoSuchNamespace) {
		t.Fatalf("Tables of a missing namespace = %v", err)
	}
	if e, ok, err := cat2.TableByTopic(ctx, stream.TopicID{4}); err != nil || !ok || e.Namespace != "other" || e.Name != "clicks" {
		t.Fatalf("TableByTopic = %+v, %v, %v", e, ok, err)
	}
	if _, ok, err := cat2.TableByTopic(ctx, stream.TopicID{9}); err != nil || ok {
		t.Fatalf("TableByTopic of a topic without a table = %v, %v", ok, err)
	}
	loaded, err := cat2.LoadTable(ctx, table.Identifier{"runnel", "orders"})
	if err != nil || loaded.Metadata().TableUUID() != meta.TableUUID() {
		t.Fatalf("LoadTable = %v", err)
	}
	if _, err := cat2.LoadTable(ctx, table.Identifier{"runnel", "nope"}); !errors.Is(err, ErrNoSuchTable) {
		t.Fatalf("LoadTable of a missing table = %v", err)
	}
}

func TestCatalogConcurrentCommitsOneWins(t *testing.T) {
	env := newCatalogEnv(t)
	ctx := testCtx(t)
	base, err := env.open(t).CreateTable(ctx, testSpec("runnel", "orders", 1))
	if err != nil {
		t.Fatal(err)
	}

	// Two brokers commit on the same base; both write their metadata file
	// before either swaps, so the compare-and-swap decides.
	var arrived sync.WaitGroup
	arrived.Add(2)
	barrier := func() {
		arrived.Done()
		arrived.Wait()
	}
	cats := []*Catalog{env.open(t), env.open(t)}
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for i, c := range cats {
		c.beforeSwap = barrier
		tbl, err := c.LoadTable(ctx, table.Identifier{"runnel", "orders"})
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			txn := tbl.NewTransaction()
			if err := txn.SetProperties(iceberg.Properties{"writer": itoa(int64(i))}); err != nil {
				errs[i] = err
				return
			}
			_, errs[i] = txn.Commit(ctx)
		}()
	}
	wg.Wait()
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil:
			if winner >= 0 {
				t.Fatal("both commits won")
			}
			winner = i
		case errors.Is(err, ErrCommitConflict) && errors.Is(err, table.ErrCommitFailed):
		default:
			t.Fatalf("commit %d: %v, want ErrCommitConflict", i, err)
		}
	}
	if winner < 0 {
		t.Fatalf("no commit won: %v", errs)
	}
	cur, err := env.open(t).LoadTable(ctx, table.Identifier{"runnel", "orders"})
	if err != nil {
		t.Fatal(err)
	}
	if got := cur.Properties()["writer"]; got != itoa(int64(winner)) {
		t.Fatalf("table has writer %q, winner was %d", got, winner)
	}
	// The loser's metadata file is gone: only the base and the winner's remain.
	files := metadataFiles(t, env.store, "runnel", "orders")
	want := []string{mustKey(t, cats[0].io, base.MetadataLocation()), mustKey(t, cats[0].io, cur.MetadataLocation())}
	slices.Sort(want)
	if !slices.Equal(files, want) {
		t.Fatalf("metadata files = %q, want %q", files, want)
	}
	if !strings.Contains(cur.MetadataLocation(), "/metadata/00001-") {
		t.Fatalf("new metadata location %q is not version 1", cur.MetadataLocation())
	}

	// An append on a stale base (another append moved the branch head
	// since it was loaded) is a conflict too, surfaced by iceberg-go's
	// Transaction.Commit rather than replayed, and leaves no file behind.
	for _, c := range cats {
		c.beforeSwap = nil
	}
	if _, err := appendRows(t, cur, []int64{0}); err != nil {
		t.Fatal(err)
	}
	before := metadataFiles(t, env.store, "runnel", "orders")
	if _, err := appendRows(t, cur, []int64{1}); !errors.Is(err, ErrCommitConflict) {
		t.Fatalf("append on a stale base = %v, want ErrCommitConflict", err)
	}
	if files := metadataFiles(t, env.store, "runnel", "orders"); !slices.Equal(files, before) {
		t.Fatalf("metadata files after a stale commit = %q, before %q", files, before)
	}
}

func TestCatalogAppendAndScan(t *testing.T) {
	env := newCatalogEnv(t)
	ctx := testCtx(t)
	tbl, err := env.open(t).CreateTable(ctx, testSpec("runnel", "orders", 1))
	if err != nil {
		t.Fatal(err)
	}
	if tbl, err = appendRows(t, tbl, []int64{0, 1, 2}); err != nil {
		t.Fatal(err)
	}
	if tbl, err = appendRows(t, tbl, []int64{3, 4}); err != nil {
		t.Fatal(err)
	}

	// Another broker reads the table back from etcd and the store.
	back, err := env.open(t).LoadTable(ctx, table.Identifier{"runnel", "orders"})
	if err != nil {
		t.Fatal(err)
	}
	if back.MetadataLocation() != tbl.MetadataLocation() {
		t.Fatalf("loaded %s, committed %s", back.MetadataLocation(), tbl.MetadataLocation())
	}
	if got := scanValues(t, back); !slices.Equal(got, []string{"v0", "v1", "v2", "v3", "v4"}) {
		t.Fatalf("scan = %q", got)
	}
	offs, err := OffsetsOf(back.Metadata())
	if err != nil || offs[0] != 5 {
		t.Fatalf("offsets = %v, %v", offs, err)
	}
	// Data files are in the table's directory of the store, named by URLs.
	var data int
	_ = env.store.List(ctx, "warehouse/runnel/orders/data/", func(objstore.ObjectInfo) error { data++; return nil })
	if data == 0 {
		t.Fatal("no data files under warehouse/runnel/orders/data/")
	}
	// The etcd record names the current metadata file.
	resp, err := env.etcd.Client().Get(ctx, "/runnel/tableflow/tables/runnel/orders")
	if err != nil || len(resp.Kvs) != 1 || !strings.Contains(string(resp.Kvs[0].Value), tbl.MetadataLocation()) {
		t.Fatalf("etcd record = %v, %v", resp, err)
	}
	if resp, err := env.etcd.Client().Get(ctx, "/runnel/tableflow/namespaces/runnel", clientv3.WithCountOnly()); err != nil || resp.Count != 1 {
		t.Fatalf("namespace key = %v, %v", resp, err)
	}
}

func TestCatalogConcurrentCreateOneTable(t *testing.T) {
	env := newCatalogEnv(t)
	ctx := testCtx(t)
	// Brokers enabling the same topic at once all get the one table; the
	// metadata files of those that lost the race are deleted.
	const n = 4
	locs := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		c := env.open(t)
		wg.Add(1)
		go func() {
			defer wg.Done()
			tbl, err := c.CreateTable(ctx, testSpec("runnel", "orders", 1))
			if err == nil {
				locs[i] = tbl.MetadataLocation()
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil || locs[i] != locs[0] {
			t.Fatalf("create %d = %q, %v; create 0 = %q", i, locs[i], errs[i], locs[0])
		}
	}
	if files := metadataFiles(t, env.store, "runnel", "orders"); len(files) != 1 || env.base+"/"+files[0] != locs[0] {
		t.Fatalf("metadata files = %q, table at %q", files, locs[0])
	}
}

// TestCatalogMaintenanceThroughFileIO runs iceberg-go's own snapshot
// expiry and orphan-file removal on a table of the catalog: both need the
// FileIO's listing and removal, and must leave the table readable.
func TestCatalogMaintenanceThroughFileIO(t *testing.T) {
	env := newCatalogEnv(t)
	ctx := testCtx(t)
	tbl, err := env.open(t).CreateTable(ctx, testSpec("runnel", "orders", 1))
	if err != nil {
		t.Fatal(err)
	}
	for i := range int64(3) {
		if tbl, err = appendRows(t, tbl, []int64{2 * i, 2*i + 1}); err != nil {
			t.Fatal(err)
		}
	}
	countFiles := func(part string) int {
		n := 0
		_ = env.store.List(ctx, "warehouse/runnel/orders/metadata/", func(o objstore.ObjectInfo) error {
			if strings.Contains(o.Key, part) {
				n++
			}
			return nil
		})
		return n
	}
	if got := countFiles("snap-"); got != 3 {
		t.Fatalf("%d manifest lists before expiry, want 3", got)
	}

	txn := tbl.NewTransaction()
	if err := txn.ExpireSnapshots(table.WithRetainLast(1), table.WithOlderThan(0)); err != nil {
		t.Fatal(err)
	}
	if tbl, err = txn.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if got := countFiles("snap-"); got != 1 {
		t.Fatalf("%d manifest lists after expiry, want 1 (the expired ones removed)", got)
	}

	orphan := "warehouse/runnel/orders/data/orphan.parquet"
	if err := env.store.Put(ctx, orphan, []byte("left by a lost commit")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(10 * time.Millisecond) // older than the cutoff below
	res, err := tbl.DeleteOrphanFiles(ctx, table.WithFilesOlderThan(time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.DeletedFiles, []string{env.base + "/" + orphan}) {
		t.Fatalf("deleted %q, want only the orphan", res.DeletedFiles)
	}
	if _, err := env.store.Get(ctx, orphan); !errors.Is(err, objstore.ErrNotFound) {
		t.Fatalf("orphan still there: %v", err)
	}
	back, err := env.open(t).LoadTable(ctx, table.Identifier{"runnel", "orders"})
	if err != nil {
		t.Fatal(err)
	}
	if got := scanValues(t, back); !slices.Equal(got, []string{"v0", "v1", "v2", "v3", "v4", "v5"}) {
		t.Fatalf("scan after maintenance = %q", got)
	}
}
