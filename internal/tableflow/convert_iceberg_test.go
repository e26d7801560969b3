package tableflow

import (
	"context"
	"math/big"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/catalog"
	"github.com/apache/iceberg-go/catalog/hadoop"
	"github.com/apache/iceberg-go/table"

	"github.com/runnel-dev/runnel/internal/config"
	"github.com/runnel-dev/runnel/internal/registry"
	"github.com/runnel-dev/runnel/internal/stream"
)

// TestConvertIcebergAppend appends converted rows of every format to a
// real table (iceberg-go's hadoop catalog in a temporary directory),
// partitioned as tables are by default, and reads them back: the schema
// the converter builds is the one iceberg-go writes and reads.
func TestConvertIcebergAppend(t *testing.T) {
	ctx := context.Background()
	cat, err := hadoop.NewCatalog("test", "file://"+filepath.ToSlash(t.TempDir()), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := cat.CreateNamespace(ctx, table.Identifier{"default"}, nil); err != nil {
		t.Fatal(err)
	}
	partitionBy, err := config.ParsePartitionBy(config.DefaultTablePartitionBy)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range formatCases {
		t.Run(tc.name, func(t *testing.T) {
			s := parseSchema(t, tc.schemaType, tc.text)
			sc, err := TableSchema(s, nil)
			if err != nil {
				t.Fatal(err)
			}
			spec, err := PartitionSpec(sc, partitionBy)
			if err != nil {
				t.Fatal(err)
			}
			ident := table.Identifier{"default", strings.ReplaceAll(tc.name, " ", "_")}
			tbl, err := cat.CreateTable(ctx, ident, sc, catalog.WithPartitionSpec(&spec),
				catalog.WithProperties(iceberg.Properties{"format-version": "2"}))
			if err != nil {
				t.Fatal(err)
			}
			if got, want := render(tbl.Schema()), render(sc); got != want {
				t.Fatalf("table schema as created:\n%s\nwant:\n%s", got, want)
			}

			c, err := NewConverter(tbl.Schema(), &fakeSchemas{byID: map[int]registry.Schema{7: s}})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Release()
			for i, p := range tc.payloads(t, s) {
				r := stream.DecodedRecord{Offset: int64(i), Timestamp: 1765000000000 + int64(i)*86_400_000, Key: []byte{byte(i)}, Value: wire(7, p)}
				if err := c.Append(ctx, 1, r); err != nil {
					t.Fatalf("record %d: %v", i, err)
				}
			}
			rec := c.NewRecord()
			defer rec.Release()
			want := rowsJSON(t, rec, true)

			txn := tbl.NewTransaction()
			rdr, err := array.NewRecordReader(rec.Schema(), []arrow.Record{rec})
			if err != nil {
				t.Fatal(err)
			}
			defer rdr.Release()
			if err := txn.Append(ctx, rdr, iceberg.Properties{SummaryOffsets: Offsets{1: int64(len(want))}.String()}); err != nil {
				t.Fatalf("append: %v", err)
			}
			tbl, err = txn.Commit(ctx)
			if err != nil {
				t.Fatalf("commit: %v", err)
			}
			if off, err := OffsetsOf(tbl.Metadata()); err != nil || off[1] != int64(len(want)) {
				t.Fatalf("offsets of the commit: %v, %v", off, err)
			}

			tbl, err = cat.LoadTable(ctx, ident)
			if err != nil {
				t.Fatal(err)
			}
			read, err := tbl.Scan(table.WithSelectedFields("*")).ToArrowTable(ctx)
			if err != nil {
				t.Fatalf("scan: %v", err)
			}
			defer read.Release()
			tr := array.NewTableReader(read, -1)
			defer tr.Release()
			var got []string
			for tr.Next() {
				got = append(got, rowsJSON(t, tr.Record(), true)...)
			}
			// One data file per day partition; rows come back per file.
			slices.Sort(got)
			slices.Sort(want)
			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Fatalf("rows read back:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
		})
	}
}

// TestSchemaEvolutionIceberg checks TableSchema's merge against
// iceberg-go's own: UpdateSchema.UnionByNameWith of TableSchema's result
// makes exactly that schema on the table (same ids), and rows
// written before the change read the new columns as null.
func TestSchemaEvolutionIceberg(t *testing.T) {
	ctx := context.Background()
	cat, err := hadoop.NewCatalog("test", "file://"+filepath.ToSlash(t.TempDir()), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := cat.CreateNamespace(ctx, table.Identifier{"default"}, nil); err != nil {
		t.Fatal(err)
	}
	s1, s2 := parseSchema(t, "AVRO", avroV1), parseSchema(t, "AVRO", avroV2)
	fs := &fakeSchemas{byID: map[int]registry.Schema{1: s1, 2: s2}}
	v1, err := TableSchema(s1, nil)
	if err != nil {
		t.Fatal(err)
	}
	ident := table.Identifier{"default", "evolving"}
	tbl, err := cat.CreateTable(ctx, ident, v1)
	if err != nil {
		t.Fatal(err)
	}
	appendRows := func(sc *iceberg.Schema, id int, offset int64, v map[string]any) {
		t.Helper()
		c, err := NewConverter(sc, fs)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Release()
		if err := c.Append(ctx, 0, stream.DecodedRecord{Offset: offset, Value: wire(id, avroPayload(t, fs.byID[id], v))}); err != nil {
			t.Fatal(err)
		}
		rec := c.NewRecord()
		defer rec.Release()
		rdr, err := array.NewRecordReader(rec.Schema(), []arrow.Record{rec})
		if err != nil {
			t.Fatal(err)
		}
		defer rdr.Release()
		txn := tbl.NewTransaction()
		if err := txn.Append(ctx, rdr, nil); err != nil {
			t.Fatal(err)
		}
		if tbl, err = txn.Commit(ctx); err != nil {
			t.Fatal(err)
		}
	}
	appendRows(tbl.Schema(), 1, 0, map[string]any{"id": int64(1), "name": "old", "price": float32(1.5), "qty": 3,
		"amount": big.NewRat(199, 100), "addr": map[string]any{"city": "Oslo"}})

	want, err := TableSchema(s2, tbl.Schema())
	if err != nil {
		t.Fatal(err)
	}
	// The merged schema is what to union with: the schema of v2 alone
	// lacks "name", which must turn optional.
	txn := tbl.NewTransaction()
	upd := txn.UpdateSchema(true, false).UnionByNameWith(want)
	applied, err := upd.Apply()
	if err != nil {
		t.Fatal(err)
	}
	if got := render(applied); got != render(want) {
		t.Fatalf("UnionByNameWith makes:\n%s\nTableSchema:\n%s", got, render(want))
	}
	// Apply ran the update's operations; Commit runs them again, so it
	// gets an update of its own.
	if err := txn.UpdateSchema(true, false).UnionByNameWith(want).Commit(); err != nil {
		t.Fatal(err)
	}
	if tbl, err = txn.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if got := render(tbl.Schema()); got != render(want) {
		t.Fatalf("committed schema:\n%s\nwant:\n%s", got, render(want))
	}
	appendRows(tbl.Schema(), 2, 1, map[string]any{"id": int64(2), "price": 2.25, "qty": int64(1 << 40),
		"amount": big.NewRat(5, 1), "addr": map[string]any{"city": "Bergen", "zip": 5000},
		"email": map[string]any{"string": "a@b.c"}, "tags": []any{"x"}})

	read, err := tbl.Scan().ToArrowTable(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer read.Release()
	tr := array.NewTableReader(read, -1)
	defer tr.Release()
	var got []string
	for tr.Next() {
		got = append(got, rowsJSON(t, tr.Record(), false)...)
	}
	slices.Sort(got)
	wantRows := []string{
		`{"addr":{"city":"Bergen","zip":5000},"amount":"5","email":"a@b.c","id":2,"name":null,"price":2.25,"qty":1099511627776,"tags":["x"]}`,
		`{"addr":{"city":"Oslo","zip":null},"amount":"1.99","email":null,"id":1,"name":"old","price":1.5,"qty":3,"tags":null}`,
	}
	if strings.Join(got, "\n") != strings.Join(wantRows, "\n") {
		t.Fatalf("rows:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(wantRows, "\n"))
	}
}
