package tableflow

// Reading the table a source follows: opening it at a location, and the
// rows of its data files.

import (
	"context"
	"fmt"
	"io/fs"
	"iter"
	"strconv"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	icebergio "github.com/apache/iceberg-go/io"
	_ "github.com/apache/iceberg-go/io/gocloud/s3" // s3:// table locations
	"github.com/apache/iceberg-go/table"
)

// OpenTableLocation opens the table at location: a metadata file
// (…metadata.json), or a table directory (file:// or s3:// URL, or a local
// path) whose metadata/ holds version-hint.text or vN.metadata.json /
// NNNNN-<uuid>.metadata.json files, of which the highest version is taken.
// The IO comes from iceberg-go's io.LoadFS for the location's scheme; s3://
// locations use the AWS SDK's default configuration (environment, shared
// config files), as the files of a table written elsewhere need.
func OpenTableLocation(ctx context.Context, location string) (*table.Table, error) {
	fsys, err := icebergio.LoadFS(ctx, nil, location)
	if err != nil {
		return nil, fmt.Errorf("tableflow: table location %q: %w", location, err)
	}
	metaFile := location
	if !strings.HasSuffix(location, ".metadata.json") {
		if metaFile, err = latestMetadataFile(fsys, strings.TrimRight(location, "/")+"/metadata"); err != nil {
			return nil, err
		}
	}
	ident := table.Identifier{strings.TrimRight(location, "/")}
	return table.NewFromLocation(ctx, ident, metaFile, func(context.Context) (icebergio.IO, error) { return fsys, nil }, nil)
}

// latestMetadataFile finds the newest metadata file of a table's metadata
// directory: the one version-hint.text names when it exists, else the
// highest version listed.
func latestMetadataFile(fsys icebergio.IO, dir string) (string, error) {
	if rf, ok := fsys.(icebergio.ReadFileIO); ok {
		if hint, err := rf.ReadFile(dir + "/version-hint.text"); err == nil {
			if v, err := strconv.Atoi(strings.TrimSpace(string(hint))); err == nil && v > 0 {
				name := fmt.Sprintf("%s/v%d.metadata.json", dir, v)
				if f, err := fsys.Open(name); err == nil {
					f.Close()
					// A newer version may have been written after the hint
					// (writers update it last); prefer a listing when there is one.
					if _, ok := fsys.(icebergio.ListableIO); !ok {
						return name, nil
					}
				}
			}
		}
	}
	lister, ok := fsys.(icebergio.ListableIO)
	if !ok {
		return "", fmt.Errorf("%w: %s has no version-hint.text and cannot be listed", ErrSourceLocation, dir)
	}
	best, bestVersion := "", -1
	root := true // the walk starts at dir (named as the IO names it)
	err := lister.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if root {
				root = false
				return nil
			}
			return fs.SkipDir
		}
		if v, ok := sourceMetadataVersion(d.Name()); ok && (v > bestVersion || v == bestVersion && path > best) {
			best, bestVersion = path, v
		}
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("%w: listing %s: %v", ErrSourceLocation, dir, err)
	}
	if best == "" {
		return "", fmt.Errorf("%w: %s holds no metadata file", ErrSourceLocation, dir)
	}
	if strings.Contains(dir, "://") && !strings.Contains(best, "://") {
		// A local listing answers paths; keep the caller's scheme.
		best = dir + "/" + best[strings.LastIndexByte(best, '/')+1:]
	}
	return best, nil
}

// sourceMetadataVersion parses a metadata file name: vN.metadata.json (Hadoop
// tables) or NNNNN-<uuid>.metadata.json (what catalogs write).
func sourceMetadataVersion(name string) (int, bool) {
	base, ok := strings.CutSuffix(name, ".metadata.json")
	if !ok {
		return 0, false
	}
	base = strings.TrimSuffix(base, ".gz")
	if rest, ok := strings.CutPrefix(base, "v"); ok {
		v, err := strconv.Atoi(rest)
		return v, err == nil && v > 0
	}
	num, id, ok := strings.Cut(base, "-")
	if !ok || len(num) < 5 || len(id) != 36 || strings.Count(id, "-") != 4 {
		return 0, false
	}
	v, err := strconv.Atoi(num)
	return v, err == nil && v >= 0
}

// A row of a data file, as plain values: columns by name (cols), in the
// file's column order (names).
type sourceRow struct {
	names []string
	cols  map[string]any
}

// rowCursor reads the rows of one data file in order, keeping the rows
// last asked for (buf, from row start) so a batch is built again from them
// when it is produced.
type rowCursor struct {
	file  int
	start int64
	buf   []sourceRow
	scan  *table.Scan
	pull  func() (arrow.RecordBatch, error, bool)
	stop  func()
	rec   arrow.RecordBatch
	at    int
}

func (r *sourceRun) openCursor(ctx context.Context, snapshot int64, file int, task table.FileScanTask) (*rowCursor, error) {
	scan := r.tbl.Scan(table.WithSnapshotID(snapshot))
	_, seq, err := scan.ReadTasks(ctx, []table.FileScanTask{task})
	if err != nil {
		scan.Close()
		return nil, fmt.Errorf("tableflow: reading %s: %w", task.File.FilePath(), err)
	}
	pull, stop := iter.Pull2(seq)
	return &rowCursor{file: file, scan: scan, pull: pull, stop: stop}, nil
}

// row returns the next row; ok is false at the end of the file.
func (c *rowCursor) row() (sourceRow, bool, error) {
	for c.rec == nil || c.at >= int(c.rec.NumRows()) {
		if c.rec != nil {
			c.rec.Release()
			c.rec = nil
		}
		rec, err, ok := c.pull()
		if err != nil {
			return sourceRow{}, false, fmt.Errorf("tableflow: reading a data file: %w", err)
		}
		if !ok {
			return sourceRow{}, false, nil
		}
		c.rec, c.at = rec, 0
	}
	sc := c.rec.Schema()
	row := sourceRow{cols: make(map[string]any, sc.NumFields())}
	for j, f := range sc.Fields() {
		v, err := arrowValue(c.rec.Column(j), c.at)
		if err != nil {
			return sourceRow{}, false, fmt.Errorf("tableflow: column %s: %w", f.Name, err)
		}
		row.names = append(row.names, f.Name)
		row.cols[f.Name] = v
	}
	c.at++
	return row, true, nil
}

func (c *rowCursor) close() {
	if c.rec != nil {
		c.rec.Release()
		c.rec = nil
	}
	c.stop()
	c.scan.Close()
}
