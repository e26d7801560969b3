package tableflow

// Table maintenance, run by a table's writer between its commits: data
// file compaction (which folds upsert deletes away), manifest rewriting,
// snapshot expiry and orphan-file removal. Every snapshot it commits
// carries the current snapshot's runnel.* summary keys: iceberg-go's
// rewrites drop custom summary keys unless passed (DESIGN §10), and a
// current snapshot without SummaryOffsets would stop the materialiser.

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/apache/iceberg-go"
	iceio "github.com/apache/iceberg-go/io"
	"github.com/apache/iceberg-go/table"
	"github.com/apache/iceberg-go/table/compaction"
)

// Defaults of MaintainOptions.
const (
	DefaultTargetFileBytes = 128 << 20
	DefaultMinFiles        = 8
	DefaultMaxManifests    = 32
	DefaultRetainSnapshots = 100
	DefaultOrphanGrace     = time.Hour
)

// MaintainOptions tunes Maintain; zero fields take the defaults.
type MaintainOptions struct {
	// TargetFileBytes is the size compaction aims its data files at;
	// files under 3/4 of it are small.
	TargetFileBytes int64
	// MinFiles is how many small files (or files carrying many deletes)
	// a partition needs before compaction rewrites them.
	MinFiles int
	// MaxManifests is how many manifests the current snapshot may have
	// before they are rewritten into fewer.
	MaxManifests int
	// RetainSnapshots is how many snapshots expiry keeps (the current
	// one always stays): table.retention.snapshots.
	RetainSnapshots int
	// OrphanGrace is how old an unreferenced file must be before it is
	// deleted: longer than any commit takes from writing its first file.
	OrphanGrace time.Duration
	// Now is the clock orphan removal measures file age with (nil: the
	// wall clock).
	Now func() time.Time
}

func (o MaintainOptions) withDefaults() MaintainOptions {
	if o.TargetFileBytes <= 0 {
		o.TargetFileBytes = DefaultTargetFileBytes
	}
	if o.MinFiles <= 0 {
		o.MinFiles = DefaultMinFiles
	}
	if o.MaxManifests <= 0 {
		o.MaxManifests = DefaultMaxManifests
	}
	if o.RetainSnapshots <= 0 {
		o.RetainSnapshots = DefaultRetainSnapshots
	}
	if o.OrphanGrace <= 0 {
		o.OrphanGrace = DefaultOrphanGrace
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// MaintainResult counts what Maintain did.
type MaintainResult struct {
	// DataFilesCompacted data files were rewritten into DataFilesWritten.
	DataFilesCompacted, DataFilesWritten int
	// DeleteFilesRemoved delete files were folded into the rewritten data
	// and dropped.
	DeleteFilesRemoved int
	// ManifestsRewritten manifests were merged into fewer.
	ManifestsRewritten int
	// SnapshotsExpired snapshots were removed, and the files only they
	// referenced deleted.
	SnapshotsExpired int
	// OrphansDeleted unreferenced files older than the grace were deleted.
	OrphansDeleted int
}

// Maintain runs the maintenance steps on tbl in turn, each its own commit
// when it has something to do, and returns the table as the last commit
// left it. tbl must be freshly loaded by the table's writer between its
// commits: orphan removal counts as referenced only what tbl's metadata
// knows. On an error the table returned is the last one committed (the
// steps before the failing one stay done). A commit conflict
// (table.ErrCommitFailed) means another writer moved the table: reload
// and run again later.
func Maintain(ctx context.Context, tbl *table.Table, o MaintainOptions) (*table.Table, MaintainResult, error) {
	o = o.withDefaults()
	var res MaintainResult
	var err error
	for _, step := range []func(context.Context, *table.Table, MaintainOptions, *MaintainResult) (*table.Table, error){
		compact, rewriteManifests, expireSnapshots, removeOrphans,
	} {
		next, serr := step(ctx, tbl, o, &res)
		if next != nil {
			tbl = next
		}
		if serr != nil {
			err = serr
			break
		}
	}
	return tbl, res, err
}

// carriedSummary returns the runnel.* summary keys of tbl's current
// snapshot, which a maintenance snapshot must carry on. A current snapshot
// without SummaryOffsets is refused: committing on top of it would keep a
// table the materialiser cannot resume from.
func carriedSummary(tbl *table.Table) (iceberg.Properties, error) {
	snap := tbl.CurrentSnapshot()
	if snap == nil {
		return nil, nil
	}
	if _, err := OffsetsOf(tbl.Metadata()); err != nil {
		return nil, err
	}
	props := iceberg.Properties{}
	for k, v := range snap.Summary.Properties {
		if strings.HasPrefix(k, "runnel.") {
			props[k] = v
		}
	}
	return props, nil
}

// compact rewrites the small data files of every partition holding at
// least o.MinFiles of them, reading them with their deletes applied, and
// drops the equality and position deletes no remaining data file needs.
func compact(ctx context.Context, tbl *table.Table, o MaintainOptions, res *MaintainResult) (*table.Table, error) {
	props, err := carriedSummary(tbl)
	if err != nil || props == nil {
		return nil, err
	}
	cfg := compaction.DefaultConfig()
	cfg.TargetFileSizeBytes = o.TargetFileBytes
	cfg.MinFileSizeBytes = o.TargetFileBytes * 3 / 4
	cfg.MaxFileSizeBytes = o.TargetFileBytes * 9 / 5
	cfg.MinInputFiles = uint(o.MinFiles)
	plan, err := compaction.Analyze(ctx, tbl, cfg)
	if err != nil {
		return nil, fmt.Errorf("tableflow: plan compaction: %w", err)
	}
	if len(plan.Groups) == 0 {
		return nil, nil
	}
	groups := make([]table.CompactionTaskGroup, len(plan.Groups))
	rewritten := map[string]struct{}{}
	for i, g := range plan.Groups {
		groups[i] = table.CompactionTaskGroup{PartitionKey: g.PartitionKey, Tasks: g.Tasks, TotalSizeBytes: g.TotalSizeBytes}
		for _, task := range g.Tasks {
			rewritten[task.File.FilePath()] = struct{}{}
		}
	}
	fs, err := tbl.FS(ctx)
	if err != nil {
		return nil, err
	}
	snap := tbl.CurrentSnapshot()
	deadEq, err := compaction.CollectDeadEqualityDeletesWithSpecs(ctx, fs, tbl.Metadata(), snap, rewritten)
	if err != nil {
		return nil, fmt.Errorf("tableflow: find dead equality deletes: %w", err)
	}
	deadPos, err := compaction.CollectDeadPositionDeletes(ctx, fs, snap, rewritten)
	if err != nil {
		return nil, fmt.Errorf("tableflow: find dead position deletes: %w", err)
	}
	txn := tbl.NewTransaction()
	out, err := txn.RewriteDataFiles(ctx, groups, table.RewriteDataFilesOptions{
		SnapshotProps:            props,
		ExtraDeleteFilesToRemove: append(deadEq, deadPos...),
		GroupOptions:             []table.CompactionGroupOption{table.WithCompactionTargetFileSize(o.TargetFileBytes)},
	})
	if err != nil {
		return nil, fmt.Errorf("tableflow: compact: %w", err)
	}
	if out.RewrittenGroups == 0 {
		return nil, nil
	}
	next, err := txn.Commit(ctx)
	if err != nil {
		return nil, fmt.Errorf("tableflow: commit compaction: %w", err)
	}
	res.DataFilesCompacted += out.RemovedDataFiles
	res.DataFilesWritten += out.AddedDataFiles
	res.DeleteFilesRemoved += out.RemovedPositionDeleteFiles + out.RemovedEqualityDeleteFiles + out.RemovedDeletionVectorFiles
	return next, nil
}

// rewriteManifests merges the current snapshot's manifests once there are
// more than o.MaxManifests of them. iceberg-go's manifest rewrite takes no
// summary properties, so the same commit adds an empty append snapshot on
// top carrying the runnel.* keys: the current snapshot keeps them, and
// an empty append adds no rows for a reader following appends.
func rewriteManifests(ctx context.Context, tbl *table.Table, o MaintainOptions, res *MaintainResult) (*table.Table, error) {
	props, err := carriedSummary(tbl)
	if err != nil || props == nil {
		return nil, err
	}
	fs, err := tbl.FS(ctx)
	if err != nil {
		return nil, err
	}
	manifests, err := tbl.CurrentSnapshot().Manifests(fs)
	if err != nil {
		return nil, fmt.Errorf("tableflow: read manifest list: %w", err)
	}
	if len(manifests) <= o.MaxManifests {
		return nil, nil
	}
	txn := tbl.NewTransaction()
	out, err := txn.RewriteManifests(ctx)
	if err != nil {
		return nil, fmt.Errorf("tableflow: rewrite manifests: %w", err)
	}
	if out.IsNoOp() {
		return nil, nil
	}
	if err := txn.AddFiles(ctx, nil, props, false); err != nil {
		return nil, fmt.Errorf("tableflow: carry %s over the manifest rewrite: %w", SummaryOffsets, err)
	}
	next, err := txn.Commit(ctx)
	if err != nil {
		return nil, fmt.Errorf("tableflow: commit manifest rewrite: %w", err)
	}
	res.ManifestsRewritten += len(out.RewrittenManifests)
	return next, nil
}

// expireSnapshots keeps the newest o.RetainSnapshots snapshots of the main
// branch (and whatever a ref points at) and deletes the files only the
// expired ones referenced. It moves no ref, so the current snapshot and
// its summary stay as they are. (iceberg-go ages snapshots by the wall
// clock: one committed in the very millisecond of the expiry is kept.)
func expireSnapshots(ctx context.Context, tbl *table.Table, o MaintainOptions, res *MaintainResult) (*table.Table, error) {
	before := len(tbl.Metadata().Snapshots())
	if before <= o.RetainSnapshots {
		return nil, nil
	}
	txn := tbl.NewTransaction()
	if err := txn.ExpireSnapshots(table.WithRetainLast(o.RetainSnapshots), table.WithOlderThan(0)); err != nil {
		return nil, fmt.Errorf("tableflow: expire snapshots: %w", err)
	}
	next, err := txn.Commit(ctx)
	if err != nil {
		return nil, fmt.Errorf("tableflow: commit snapshot expiry: %w", err)
	}
	res.SnapshotsExpired += before - len(next.Metadata().Snapshots())
	return next, nil
}

// removeOrphans deletes the files under the table's location that no
// snapshot or metadata file references and that are older than
// o.OrphanGrace: Parquet files of commits that crashed or lost a race,
// metadata files past the metadata log. The grace keeps the files of a
// commit still being written.
func removeOrphans(ctx context.Context, tbl *table.Table, o MaintainOptions, res *MaintainResult) (*table.Table, error) {
	fs, err := tbl.FS(ctx)
	if err != nil {
		return nil, err
	}
	if _, ok := fs.(iceio.ListableIO); !ok {
		return nil, fmt.Errorf("tableflow: orphan removal needs a listable file IO, not %T", fs)
	}
	// iceberg-go measures age against the wall clock: pass the age that
	// puts its cutoff at o.Now() minus the grace.
	age := max(time.Since(o.Now().Add(-o.OrphanGrace)), 0)
	out, err := tbl.DeleteOrphanFiles(ctx, table.WithFilesOlderThan(age))
	res.OrphansDeleted += len(out.DeletedFiles)
	if err != nil {
		return nil, fmt.Errorf("tableflow: remove orphan files: %w", err)
	}
	return nil, nil
}
