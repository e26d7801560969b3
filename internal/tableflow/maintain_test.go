package tableflow

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/table"
)

// noMaintenance is the options under which Maintain finds nothing to do
// (orphans aside): tests switch on one step at a time.
var noMaintenance = MaintainOptions{MinFiles: 1000, MaxManifests: 1000, RetainSnapshots: 1000}

// maintain runs Maintain and checks the contract every step keeps: the
// current snapshot's offsets are unchanged, and so is every snapshot
// Maintain made current (each commit's last snapshot).
func maintain(t *testing.T, tbl *table.Table, o MaintainOptions) (*table.Table, MaintainResult) {
	t.Helper()
	want, err := OffsetsOf(tbl.Metadata())
	if err != nil {
		t.Fatal(err)
	}
	known := map[int64]bool{}
	for _, s := range tbl.Metadata().Snapshots() {
		known[s.SnapshotID] = true
	}
	next, res, err := Maintain(context.Background(), tbl, o)
	if err != nil {
		t.Fatalf("Maintain: %v", err)
	}
	got, err := OffsetsOf(next.Metadata())
	if err != nil || got.String() != want.String() {
		t.Fatalf("offsets after Maintain = %v, %v; want %v", got, err, want)
	}
	for _, s := range next.Metadata().Snapshots() {
		if known[s.SnapshotID] || s.Summary.Properties["manifests-created"] != "" && isParentOfNew(next, s.SnapshotID, known) {
			continue
		}
		if v := s.Summary.Properties[SummaryOffsets]; v != want.String() {
			t.Errorf("maintenance snapshot %d (%s) carries %s=%q, want %q", s.SnapshotID, s.Summary.Operation, SummaryOffsets, v, want)
		}
	}
	return next, res
}

// isParentOfNew reports whether snapshot id is the parent of a snapshot
// made in the same Maintain call: the manifest rewrite's REPLACE snapshot,
// which iceberg-go writes without custom summary keys and which the same
// commit covers with an append carrying them.
func isParentOfNew(tbl *table.Table, id int64, known map[int64]bool) bool {
	for _, s := range tbl.Metadata().Snapshots() {
		if !known[s.SnapshotID] && s.ParentSnapshotID != nil && *s.ParentSnapshotID == id && s.Summary.Properties[SummaryOffsets] != "" {
			return true
		}
	}
	return false
}

// currentFiles lists the live files of tbl's current snapshot: data files
// and delete files.
func currentFiles(t *testing.T, tbl *table.Table) (data, deletes []iceberg.DataFile) {
	t.Helper()
	fsys, err := tbl.FS(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	manifests, err := tbl.CurrentSnapshot().Manifests(fsys)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range manifests {
		for e, err := range m.Entries(fsys, true) {
			if err != nil {
				t.Fatal(err)
			}
			if df := e.DataFile(); df.ContentType() == iceberg.EntryContentData {
				data = append(data, df)
			} else {
				deletes = append(deletes, df)
			}
		}
	}
	return data, deletes
}

// readParquet reads data files as an outside reader that knows nothing of
// delete files would: key → values.
func readParquet(t *testing.T, files []iceberg.DataFile) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for _, df := range files {
		f, err := os.Open(strings.TrimPrefix(df.FilePath(), "file://"))
		if err != nil {
			t.Fatal(err)
		}
		pf, err := file.NewParquetReader(f)
		if err != nil {
			t.Fatal(err)
		}
		fr, err := pqarrow.NewFileReader(pf, pqarrow.ArrowReadProperties{BatchSize: 1024}, memory.DefaultAllocator)
		if err != nil {
			t.Fatal(err)
		}
		at, err := fr.ReadTable(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for k, vs := range keyValues(t, at) {
			out[k] = append(out[k], vs...)
		}
		at.Release()
		pf.Close()
	}
	return out
}

func TestMaintainCompactionFoldsUpserts(t *testing.T) {
	for _, tc := range []struct {
		name     string
		spec     func(*iceberg.Schema) iceberg.PartitionSpec
		minFiles int
	}{
		{"unpartitioned", nil, 2},
		{"bucket(4, _key)", bucketKey(4), 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tbl := writeHistory(t, newTestTable(t, true, tc.spec))
			data, deletes := currentFiles(t, tbl)
			if len(deletes) == 0 {
				t.Fatal("no delete files before compaction")
			}
			// The data files alone still hold the replaced rows.
			if stale := readParquet(t, data); len(stale["k1"]) < 2 {
				t.Fatalf("before compaction k1 has rows %q in the data files, want several", stale["k1"])
			}

			// Fewer small files than MinFiles: nothing to do.
			o := noMaintenance
			o.MinFiles = len(data) + 1
			same, res := maintain(t, tbl, o)
			if res != (MaintainResult{}) || same.CurrentSnapshot().SnapshotID != tbl.CurrentSnapshot().SnapshotID {
				t.Fatalf("Maintain with %d files under MinFiles %d did %+v", len(data), o.MinFiles, res)
			}

			o.MinFiles = tc.minFiles
			tbl, res = maintain(t, tbl, o)
			if res.DataFilesCompacted != len(data) || res.DeleteFilesRemoved != len(deletes) || res.DataFilesWritten == 0 {
				t.Errorf("result %+v, want %d data files compacted and %d delete files removed", res, len(data), len(deletes))
			}
			if op := tbl.CurrentSnapshot().Summary.Operation; op != table.OpReplace && op != table.OpOverwrite {
				t.Errorf("compaction snapshot is %s", op)
			}
			data, deletes = currentFiles(t, tbl)
			if len(deletes) != 0 {
				t.Errorf("%d delete files left after compaction", len(deletes))
			}
			checkOneRowPerKey(t, readParquet(t, data), upsertWant)
			checkOneRowPerKey(t, scanRows(t, tbl), upsertWant)

			// Upserts go on on top of the compacted table.
			tbl = upsertCommit(t, tbl, []rec{{"k8", 0, 15, nil}, {"k9", 1, 4, val("i1")}}, Offsets{0: 16, 1: 5})
			checkOneRowPerKey(t, scanRows(t, tbl), map[string]string{"k1": "a3", "k2": "b3", "k3": "c2", "k6": "f2", "k9": "i1"})
		})
	}
}

func TestMaintainRewritesManifests(t *testing.T) {
	tbl := writeHistory(t, newTestTable(t, true, nil))
	fsys, _ := tbl.FS(context.Background())
	before, err := tbl.CurrentSnapshot().Manifests(fsys)
	if err != nil {
		t.Fatal(err)
	}
	o := noMaintenance
	o.MaxManifests = len(before)
	same, res := maintain(t, tbl, o)
	if res.ManifestsRewritten != 0 || same.CurrentSnapshot().SnapshotID != tbl.CurrentSnapshot().SnapshotID {
		t.Fatalf("%d manifests, MaxManifests %d: rewrote %+v", len(before), o.MaxManifests, res)
	}

	o.MaxManifests = 2
	tbl, res = maintain(t, tbl, o)
	after, err := tbl.CurrentSnapshot().Manifests(fsys)
	if err != nil {
		t.Fatal(err)
	}
	if res.ManifestsRewritten < 2 || len(after) >= len(before) {
		t.Errorf("manifests %d → %d, result %+v", len(before), len(after), res)
	}
	checkOneRowPerKey(t, scanRows(t, tbl), upsertWant)
}

func TestMaintainExpiresSnapshots(t *testing.T) {
	tbl := writeHistory(t, newTestTable(t, true, nil))
	snaps := tbl.Metadata().Snapshots()
	current := tbl.CurrentSnapshot().SnapshotID
	oldList := snaps[0].ManifestList
	if _, err := os.Stat(oldList); err != nil {
		t.Fatalf("manifest list of the first snapshot: %v", err)
	}
	time.Sleep(2 * time.Millisecond) // expiry keeps snapshots of this very millisecond

	o := noMaintenance
	o.RetainSnapshots = 2
	tbl, res := maintain(t, tbl, o)
	if n := len(tbl.Metadata().Snapshots()); n != 2 || res.SnapshotsExpired != len(snaps)-2 {
		t.Fatalf("%d snapshots left, %d expired; want 2 left of %d", n, res.SnapshotsExpired, len(snaps))
	}
	if tbl.CurrentSnapshot().SnapshotID != current {
		t.Fatal("expiry moved the current snapshot")
	}
	if _, err := os.Stat(oldList); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("manifest list of an expired snapshot: %v, want it deleted", err)
	}
	checkOneRowPerKey(t, scanRows(t, tbl), upsertWant)

	// Nothing more to expire.
	if _, res = maintain(t, tbl, o); res.SnapshotsExpired != 0 {
		t.Errorf("second expiry: %+v", res)
	}
}

func TestMaintainRemovesOrphans(t *testing.T) {
	tbl, cat := newTestCatalogTable(t, true, nil)
	tbl = upsertCommit(t, tbl, upsertHistory[0], upsertHistoryOffsets(0))
	dir := strings.TrimPrefix(tbl.Location(), "file://")
	orphan := func(name string, age time.Duration) string {
		p := filepath.Join(dir, "data", name)
		if err := os.WriteFile(p, []byte("PAR1 of a commit that never happened"), 0o644); err != nil {
			t.Fatal(err)
		}
		at := time.Now().Add(-age)
		if err := os.Chtimes(p, at, at); err != nil {
			t.Fatal(err)
		}
		return p
	}
	old := orphan("old.parquet", 2*time.Hour)
	young := orphan("young.parquet", 10*time.Minute)
	// A referenced file older than the grace stays whatever its age.
	data, _ := currentFiles(t, tbl)
	ref := strings.TrimPrefix(data[0].FilePath(), "file://")
	if err := os.Chtimes(ref, time.Now().Add(-3*time.Hour), time.Now().Add(-3*time.Hour)); err != nil {
		t.Fatal(err)
	}

	o := noMaintenance
	o.OrphanGrace = time.Hour
	tbl, res := maintain(t, tbl, o)
	if res.OrphansDeleted != 1 {
		t.Errorf("deleted %d orphans, want 1", res.OrphansDeleted)
	}
	if _, err := os.Stat(old); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("orphan older than the grace: %v, want it deleted", err)
	}
	if _, err := os.Stat(young); err != nil {
		t.Errorf("orphan younger than the grace: %v, want it kept", err)
	}
	if _, err := os.Stat(ref); err != nil {
		t.Errorf("referenced data file: %v, want it kept", err)
	}

	// The injected clock is what ages files: an hour later the young one
	// is past the grace too.
	o.Now = func() time.Time { return time.Now().Add(time.Hour) }
	tbl, _ = maintain(t, tbl, o)
	if _, err := os.Stat(young); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("orphan past the grace by the injected clock: %v, want it deleted", err)
	}
	loaded, err := cat.LoadTable(context.Background(), tbl.Identifier())
	if err != nil {
		t.Fatalf("table after orphan removal: %v", err)
	}
	checkOneRowPerKey(t, scanRows(t, loaded), map[string]string{"k1": "a2", "k2": "b1", "k3": "c1", "k6": "f1"})
}

func TestMaintainRefusesTableWithoutOffsets(t *testing.T) {
	ctx := context.Background()
	tbl := newTestTable(t, true, nil)
	// A table without snapshots has nothing to maintain.
	if _, res, err := Maintain(ctx, tbl, MaintainOptions{}); err != nil || res != (MaintainResult{}) {
		t.Fatalf("Maintain on an empty table = %+v, %v", res, err)
	}
	// A snapshot written by someone else, without runnel.offsets: no
	// maintenance commit may pile on top of it.
	txn := tbl.NewTransaction()
	if err := txn.AddFiles(ctx, nil, iceberg.Properties{"writer": "another engine"}, false); err != nil {
		t.Fatal(err)
	}
	tbl, err := txn.Commit(ctx)
	if err != nil {
		t.Fatal(err)
	}
	next, _, err := Maintain(ctx, tbl, MaintainOptions{MinFiles: 1, MaxManifests: 1})
	if err == nil || !strings.Contains(err.Error(), SummaryOffsets) {
		t.Fatalf("Maintain = %v, want an error naming %s", err, SummaryOffsets)
	}
	if next.CurrentSnapshot().SnapshotID != tbl.CurrentSnapshot().SnapshotID {
		t.Fatal("Maintain committed on a table without offsets")
	}
}
