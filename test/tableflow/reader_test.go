package tableflow_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/decimal128"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/catalog"
	"github.com/apache/iceberg-go/catalog/hadoop"
	"github.com/apache/iceberg-go/table"
)

// The self-check's table: every kind of column the end-to-end test sums
// (long, int, double, decimal, date, a nested struct's field) and an
// optional string.
var selfCheckSchema = iceberg.NewSchema(0,
	iceberg.NestedField{ID: 1, Name: "id", Type: iceberg.PrimitiveTypes.Int64, Required: true},
	iceberg.NestedField{ID: 2, Name: "qty", Type: iceberg.PrimitiveTypes.Int32, Required: true},
	iceberg.NestedField{ID: 3, Name: "price", Type: iceberg.PrimitiveTypes.Float64, Required: true},
	iceberg.NestedField{ID: 4, Name: "amount", Type: iceberg.DecimalTypeOf(12, 2), Required: true},
	iceberg.NestedField{ID: 5, Name: "day", Type: iceberg.PrimitiveTypes.Date, Required: true},
	iceberg.NestedField{ID: 6, Name: "customer", Required: true, Type: &iceberg.StructType{FieldList: []iceberg.NestedField{
		{ID: 8, Name: "name", Type: iceberg.PrimitiveTypes.String, Required: true},
		{ID: 9, Name: "score", Type: iceberg.PrimitiveTypes.Int32, Required: true},
	}}},
	iceberg.NestedField{ID: 7, Name: "note", Type: iceberg.PrimitiveTypes.String},
)

// selfCheckExprs are the sums asked of the reader.
var selfCheckExprs = []string{"id", "qty", "price", "amount", "date_diff('day', DATE '1970-01-01', day)", "customer.score", "length(note)"}

// selfCheckRow is row i's values: amount is i*137 cents, price i/4, day
// 19000+i%4 days after the epoch, note set on even rows only.
func selfCheckRow(i int64) (qty int32, price float64, cents int64, day int32, score int32, note *string) {
	qty = int32(i % 7)
	price = float64(i) / 4
	cents = i * 137
	day = int32(19000 + i%4)
	score = int32(i * 3)
	if i%2 == 0 {
		s := strings.Repeat("n", int(i%5)+1)
		note = &s
	}
	return
}

// selfCheckRecord builds the Arrow record of rows ids.
func selfCheckRecord(t *testing.T, sc *arrow.Schema, ids []int64) arrow.RecordBatch {
	t.Helper()
	b := array.NewRecordBuilder(memory.DefaultAllocator, sc)
	defer b.Release()
	cust := b.Field(5).(*array.StructBuilder)
	for _, i := range ids {
		qty, price, cents, day, score, note := selfCheckRow(i)
		b.Field(0).(*array.Int64Builder).Append(i)
		b.Field(1).(*array.Int32Builder).Append(qty)
		b.Field(2).(*array.Float64Builder).Append(price)
		b.Field(3).(*array.Decimal128Builder).Append(decimal128.FromI64(cents))
		b.Field(4).(*array.Date32Builder).Append(arrow.Date32(day))
		cust.Append(true)
		cust.FieldBuilder(0).(*array.StringBuilder).Append(fmt.Sprintf("c%d", i))
		cust.FieldBuilder(1).(*array.Int32Builder).Append(score)
		if note == nil {
			b.Field(6).(*array.StringBuilder).AppendNull()
		} else {
			b.Field(6).(*array.StringBuilder).Append(*note)
		}
	}
	return b.NewRecordBatch()
}

// writeParquet writes rows ids as a Parquet file of tbl's schema (with
// its field ids) at path.
func writeParquet(t *testing.T, tbl *table.Table, path string, ids []int64) {
	t.Helper()
	sc, err := table.SchemaToArrowSchema(tbl.Schema(), nil, true, false)
	if err != nil {
		t.Fatal(err)
	}
	rec := selfCheckRecord(t, sc, ids)
	defer rec.Release()
	at := array.NewTableFromRecords(sc, []arrow.RecordBatch{rec})
	defer at.Release()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := pqarrow.WriteTable(at, f, 1<<20, parquet.NewWriterProperties(), pqarrow.DefaultWriterProps()); err != nil {
		t.Fatalf("write %s: %v", path, err)
	}
}

// selfCheckWant is the row count and sums of rows ids.
func selfCheckWant(ids []int64) (int64, sums) {
	s := sums{}
	for _, i := range ids {
		qty, price, cents, day, score, note := selfCheckRow(i)
		s.addInt("id", i)
		s.addInt("qty", int64(qty))
		s.addFloat("price", price)
		s.add("amount", ratOfCents(cents))
		s.addInt("date_diff('day', DATE '1970-01-01', day)", int64(day))
		s.addInt("customer.score", int64(score))
		if note != nil {
			s.addInt("length(note)", int64(len(*note)))
		}
	}
	return int64(len(ids)), s
}

// restStandIn serves the one REST catalog call the reader makes, GET
// /v1/namespaces/{ns}/tables/{table}, for the tables of a hadoop catalog:
// a LoadTableResult with the current metadata location and its metadata.
// Table "stale" is a broken answer: orders' current location with the
// metadata of its first version.
func restStandIn(t *testing.T, cat *hadoop.Catalog) string {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/namespaces/{ns}/tables/{table}", func(w http.ResponseWriter, r *http.Request) {
		name := r.PathValue("table")
		stale := name == "stale" // orders, answered with its first metadata
		if stale {
			name = "orders"
		}
		ident := append(strings.Split(r.PathValue("ns"), "\x1f"), name)
		tbl, err := cat.LoadTable(r.Context(), ident)
		if err != nil {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusNotFound)
			fmt.Fprintf(w, `{"error":{"message":%q,"type":"NoSuchTableException","code":404}}`, err.Error())
			return
		}
		metaFile := tbl.MetadataLocation()
		if stale {
			for prev := range tbl.Metadata().PreviousFiles() {
				metaFile = prev.MetadataFile
				break
			}
		}
		meta, err := os.ReadFile(localPath(t, metaFile))
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{
			"metadata-location": tbl.MetadataLocation(),
			"metadata":          json.RawMessage(meta),
			"config":            map[string]string{},
		})
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv.URL
}

func localPath(t *testing.T, location string) string {
	if !strings.HasPrefix(location, "file:") {
		return location
	}
	u, err := url.Parse(location)
	if err != nil {
		t.Errorf("location %q: %v", location, err)
		return location
	}
	return u.Path
}

// liveFiles is what iceberg-go itself plans for the table's current
// snapshot: the data files, and whether any delete file applies.
func liveFiles(t *testing.T, ctx context.Context, tbl *table.Table) (files []string, deletes bool) {
	t.Helper()
	tasks, err := tbl.Scan().PlanFiles(ctx)
	if err != nil {
		t.Fatalf("plan files: %v", err)
	}
	for _, task := range tasks {
		files = append(files, task.File.FilePath())
		if len(task.DeleteFiles)+len(task.EqualityDeleteFiles)+len(task.DeletionVectorFiles) > 0 {
			deletes = true
		}
	}
	slices.Sort(files)
	return files, deletes
}

// TestReaderSelfCheck proves js/read_table.mjs without Runnel: tables
// written with iceberg-go (a hadoop catalog in a temporary directory),
// served through a stand-in REST catalog. The reader must return the
// exact count and sums of the rows written, over exactly the data files
// iceberg-go's own scan plans: after three appends (three snapshots,
// manifests carried over as EXISTING), after a copy-on-write delete that
// rewrites a file (its old entry DELETED, a new file ADDED), for files
// named by file:// URLs (as the broker names them), and for an empty
// table. A table with position deletes (merge-on-read) must be
// refused, since the reader does not apply deletes, so must a catalog
// answer whose metadata names another snapshot than its metadata-location,
// and an unknown table must fail with the catalog's 404.
func TestReaderSelfCheck(t *testing.T) {
	requireReader(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	warehouse := filepath.Join(t.TempDir(), "warehouse")
	cat, err := hadoop.NewCatalog("self-check", warehouse, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cat.Close() })
	// A two-level namespace: the reader must join its levels with 0x1F.
	ns := table.Identifier{"shop", "eu"}
	for _, n := range []table.Identifier{ns[:1], ns} {
		if err := cat.CreateNamespace(ctx, n, nil); err != nil {
			t.Fatal(err)
		}
	}
	uri := restStandIn(t, cat)
	appendRows := func(tbl *table.Table, ids []int64) *table.Table {
		t.Helper()
		// The table's schema, not selfCheckSchema: creation assigns fresh
		// field ids, and the Arrow schema carries them.
		arrowSchema, err := table.SchemaToArrowSchema(tbl.Schema(), nil, true, false)
		if err != nil {
			t.Fatal(err)
		}
		rec := selfCheckRecord(t, arrowSchema, ids)
		defer rec.Release()
		at := array.NewTableFromRecords(arrowSchema, []arrow.RecordBatch{rec})
		defer at.Release()
		tbl, err = tbl.AppendTable(ctx, at, 1<<20, nil)
		if err != nil {
			t.Fatalf("append: %v", err)
		}
		return tbl
	}
	rows := func(from, to int64) []int64 {
		var ids []int64
		for i := from; i < to; i++ {
			ids = append(ids, i)
		}
		return ids
	}
	check := func(what, name string, tbl *table.Table, ids []int64) tableRead {
		t.Helper()
		got, err := readTable(ctx, uri, "shop.eu", name, selfCheckExprs...)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		n, want := selfCheckWant(ids)
		for _, e := range selfCheckExprs {
			if _, ok := want[e]; !ok {
				want[e] = nil // no row: sum is NULL
			}
		}
		checkRead(t, what, got, n, want)
		files, _ := liveFiles(t, ctx, tbl)
		gotFiles := slices.Clone(got.Files)
		slices.Sort(gotFiles)
		if !slices.Equal(gotFiles, files) {
			t.Errorf("%s: reader read files %v, iceberg-go plans %v", what, gotFiles, files)
		}
		snap := tbl.CurrentSnapshot()
		switch {
		case snap == nil && got.Snapshot != nil:
			t.Errorf("%s: reader names snapshot %s, the table has none", what, *got.Snapshot)
		case snap != nil && (got.Snapshot == nil || *got.Snapshot != fmt.Sprint(snap.SnapshotID)):
			t.Errorf("%s: reader names snapshot %v, current is %d", what, got.Snapshot, snap.SnapshotID)
		}
		return got
	}

	empty, err := cat.CreateTable(ctx, append(ns, "empty"), selfCheckSchema)
	if err != nil {
		t.Fatal(err)
	}
	check("empty table", "empty", empty, nil)

	// Partitioned by day, as the broker's tables are by default: the
	// manifests then carry partition tuples (four days, so each append
	// writes four files).
	spec := iceberg.NewPartitionSpec(iceberg.PartitionField{SourceIDs: []int{5}, FieldID: 1000, Name: "day_day", Transform: iceberg.DayTransform{}})
	tbl, err := cat.CreateTable(ctx, append(ns, "orders"), selfCheckSchema, catalog.WithPartitionSpec(&spec))
	if err != nil {
		t.Fatal(err)
	}
	tbl = appendRows(tbl, rows(0, 40))
	tbl = appendRows(tbl, rows(40, 45))
	tbl = appendRows(tbl, rows(45, 120))
	check("three appends", "orders", tbl, rows(0, 120))

	// Rows 30..49 go: the first append's files are rewritten without them
	// and the second append's files are dropped whole.
	del := iceberg.NewAnd(iceberg.GreaterThanEqual(iceberg.Reference("id"), int64(30)), iceberg.LessThan(iceberg.Reference("id"), int64(50)))
	tbl, err = tbl.Delete(ctx, del, nil)
	if err != nil {
		t.Fatalf("copy-on-write delete: %v", err)
	}
	if _, deletes := liveFiles(t, ctx, tbl); deletes {
		t.Fatal("copy-on-write delete left delete files")
	}
	check("after a copy-on-write delete", "orders", tbl, append(rows(0, 30), rows(50, 120)...))

	// The broker names its files by file:// URLs, and iceberg-go's own
	// writers name them by bare paths: files added by URL are named so.
	urls, err := cat.CreateTable(ctx, append(ns, "urls"), selfCheckSchema)
	if err != nil {
		t.Fatal(err)
	}
	var added []string
	for i, ids := range [][]int64{rows(0, 7), rows(7, 30)} {
		path := filepath.Join(warehouse, fmt.Sprintf("added-%d.parquet", i))
		writeParquet(t, urls, path, ids)
		added = append(added, "file://"+path)
	}
	if err := func() error {
		tx := urls.NewTransaction()
		if err := tx.AddFiles(ctx, added, nil, false); err != nil {
			return err
		}
		urls, err = tx.Commit(ctx)
		return err
	}(); err != nil {
		t.Fatalf("add files: %v", err)
	}
	if got := check("files named by file:// URLs", "urls", urls, rows(0, 30)); !slices.Equal(got.Files, added) {
		t.Errorf("reader read files %v, want %v", got.Files, added)
	}

	mor, err := cat.CreateTable(ctx, append(ns, "mor"), selfCheckSchema,
		catalog.WithProperties(iceberg.Properties{table.WriteDeleteModeKey: table.WriteModeMergeOnRead}))
	if err != nil {
		t.Fatal(err)
	}
	mor = appendRows(mor, rows(0, 20))
	mor, err = mor.Delete(ctx, iceberg.LessThan(iceberg.Reference("id"), int64(5)), nil)
	if err != nil {
		t.Fatalf("merge-on-read delete: %v", err)
	}
	if _, deletes := liveFiles(t, ctx, mor); !deletes {
		t.Fatal("merge-on-read delete wrote no delete file")
	}
	if got, err := readTable(ctx, uri, "shop.eu", "mor", "id"); err == nil {
		t.Errorf("reader read a table with delete files: %+v", got)
	} else if !strings.Contains(err.Error(), "delete file") {
		t.Errorf("reader on a table with delete files: %v, want it to name the delete file", err)
	}

	if got, err := readTable(ctx, uri, "shop.eu", "stale", "id"); err == nil {
		t.Errorf("reader accepted a catalog answer whose metadata and metadata-location disagree: %+v", got)
	} else if !strings.Contains(err.Error(), "current snapshot") {
		t.Errorf("reader on disagreeing metadata: %v, want it to name the snapshots", err)
	}

	if got, err := readTable(ctx, uri, "shop.eu", "missing"); err == nil {
		t.Errorf("reader read a table that does not exist: %+v", got)
	} else if !strings.Contains(err.Error(), "404") {
		t.Errorf("reader on a missing table: %v, want the catalog's 404", err)
	}
}
