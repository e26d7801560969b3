package tableflow

// The materialiser: one topic's records into its table, exactly once.
//
// One pass (DESIGN "Exactly once", tableflow design note):
//  1. load the table; its current snapshot's SummaryOffsets say where each
//     partition resumes (none: the log start);
//  2. read every partition read_committed from there up to its last
//     stable offset, skipping control batches and the batches of aborted
//     transactions exactly as a read_committed consumer does, at most
//     maxBytes per pass;
//  3. convert the records to Arrow rows and append them in ONE transaction
//     whose snapshot carries the new offsets of every partition, pinned to
//     the snapshot it was read from (a catalog that lost the race must not
//     let iceberg-go rebase the append onto another writer's commit: that
//     would write the other writer's records twice);
//  4. a lost commit race (table.ErrCommitFailed) deletes the files the
//     attempt wrote and starts over from the winner's offsets; an
//     unknown outcome (the catalog may have applied it) reloads: the
//     commit's id in the current snapshot says it landed, otherwise the
//     pass starts over and the files stay for orphan removal.
//
// Records that cannot become rows follow table.error.mode: suspend stops
// the table at the record (rows before it are committed), skip drops it
// (counted), dlq writes it to the dead-letter topic (see dlq below).

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/table"

	"github.com/runnel-dev/runnel/internal/config"
	"github.com/runnel-dev/runnel/internal/stream"
)

// SummaryCommit is the snapshot summary property naming the commit
// attempt that wrote the snapshot, so a writer whose commit returned an
// unknown outcome can tell whether it landed.
const SummaryCommit = "runnel.commit"

// Errors of the materialiser.
var (
	// ErrSuspended is returned by a materialiser that stopped at a record
	// it cannot convert under table.error.mode=suspend.
	ErrSuspended = errors.New("tableflow: table suspended")
	// ErrOffsetsBackwards is an invariant: a commit never moves a
	// partition's offset back.
	ErrOffsetsBackwards = errors.New("tableflow: offsets would move backwards")
	// errRetryPass asks for the pass to run again at once.
	errRetryPass = errors.New("tableflow: pass to run again")
)

// rowConverter turns records into Arrow rows of one table schema (the
// Converter).
type rowConverter interface {
	// Append adds one row; an error leaves the rows as they were.
	Append(ctx context.Context, partition int32, r stream.DecodedRecord) error
	Len() int
	// NewRecord returns the rows so far (caller releases) and starts over.
	NewRecord() arrow.Record
	Release()
}

// materialiser writes one topic's table. It is owned by one goroutine
// (run); status and metrics are read under their own locks.
type materialiser struct {
	log     Log
	topic   stream.TopicInfo
	cfg     config.Table
	ident   table.Identifier
	load    func(ctx context.Context) (*table.Table, error)
	convert func(sc *iceberg.Schema) (rowConverter, error)
	// upsert: table.mode=upsert (the key is the row's identity).
	upsert bool
	// evolve, when set, brings the table's schema up to the subject's
	// newest version before a pass; it returns whether it committed.
	evolve func(ctx context.Context, tbl *table.Table) (bool, error)
	// maintain, when set, runs between commits, at most every
	// maintainEvery.
	maintain      func(ctx context.Context, tbl *table.Table) error
	maintainEvery time.Duration
	lastMaintain  time.Time
	// dlq writes dead letters (table.error.mode=dlq); nil otherwise.
	dlq      *dlqWriter
	logger   *slog.Logger
	now      func() time.Time
	interval time.Duration
	// maxBytes caps what one pass reads (all partitions together).
	maxBytes int64
	// fetchBytes is the size of one Fetch.
	fetchBytes int32
	status     *tableStatus
	m          *tableMetrics
	// beforeCommit, when set, runs between writing a pass's files and
	// committing them (tests: a crash or a competing writer there).
	beforeCommit func(ctx context.Context) error

	// cursor remembers how far passes that found no rows read past the
	// committed offsets (control batches, aborted transactions, skipped
	// records), valid while the table's snapshot is cursorSnap.
	cursor     Offsets
	cursorSnap int64
	// passes counts passes (the partition a pass starts at).
	passes int32
	// refusedSchemas are writer schemas the table cannot take: their
	// records follow the error mode.
	refusedSchemas map[int]error
}

// pass is what one read of the topic gathered for one commit.
type pass struct {
	base       Offsets // the committed offsets the pass started from
	next       Offsets // where the pass ended
	rows       int
	tombstones []Tombstone
	letters    []deadLetter
	// caughtUp is set when every partition was read to its last stable
	// offset (the pass was not cut by maxBytes).
	caughtUp bool
	// suspend is the record error that stops the table (suspend mode).
	suspend error
	// newColumns stopped the pass at a record whose writer schema has
	// fields the table lacks: the table takes that schema, then goes on.
	newColumns *NewColumnsError
}

// run materialises until ctx ends or the table is suspended.
func (m *materialiser) run(ctx context.Context) error {
	for {
		caughtUp, err := m.step(ctx)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if errors.Is(err, ErrSuspended) {
			return err
		}
		wait := m.interval
		if err != nil {
			m.logger.Warn("tableflow: materialising failed, retrying", "topic", m.topic.Name, "err", err)
			m.status.setErr(err)
		} else if !caughtUp {
			wait = 0 // a backlog: the next pass at once
		}
		if wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return ctx.Err()
			case <-t.C:
			}
		}
	}
}

// step runs one pass and commits it. It reports whether the table caught
// up with the topic.
func (m *materialiser) step(ctx context.Context) (bool, error) {
	tbl, err := m.load(ctx)
	if err != nil {
		return false, fmt.Errorf("tableflow: loading %s: %w", m.ident, err)
	}
	if m.evolve != nil {
		changed, err := m.evolve(ctx, tbl)
		if err != nil {
			return false, err
		}
		if changed {
			if tbl, err = m.load(ctx); err != nil {
				return false, fmt.Errorf("tableflow: loading %s: %w", m.ident, err)
			}
		}
	}
	m.observe(tbl)
	base, err := OffsetsOf(tbl.Metadata())
	if err != nil {
		return false, err
	}
	conv, err := m.convert(tbl.Schema())
	if err != nil {
		return false, err
	}
	defer conv.Release()
	from := base
	if snap := tbl.Metadata().CurrentSnapshot(); m.cursor != nil && snapID(snap) == m.cursorSnap {
		from = m.cursor
	}
	p, err := m.read(ctx, conv, base, from)
	if err != nil {
		return false, err
	}
	m.updateLag(p.next)
	if p.rows == 0 && len(p.letters) == 0 && len(p.tombstones) == 0 {
		// Nothing to commit: remember how far we read, so the next pass
		// does not decode the same control batches or skipped records
		// again. A crash only costs reading them once more.
		m.cursor, m.cursorSnap = p.next, snapID(tbl.Metadata().CurrentSnapshot())
		if p.suspend != nil {
			return false, m.suspendOn(p.suspend)
		}
		if p.newColumns != nil {
			return false, m.takeSchema(ctx, p.newColumns)
		}
		if p.caughtUp {
			m.status.caughtUp(m.now())
		}
		return p.caughtUp, nil
	}
	if err := m.commit(ctx, tbl, conv, p); errors.Is(err, errRetryPass) {
		return false, nil
	} else if err != nil {
		return false, err
	}
	if p.suspend != nil {
		return false, m.suspendOn(p.suspend)
	}
	if p.newColumns != nil {
		return false, m.takeSchema(ctx, p.newColumns)
	}
	m.maybeMaintain(ctx)
	if p.caughtUp {
		m.status.caughtUp(m.now())
	}
	return p.caughtUp, nil
}

func (m *materialiser) suspendOn(err error) error {
	m.status.suspend(err.Error())
	m.m.errors(m.status.name, "suspended")
	m.logger.Error("tableflow: table suspended at a record it cannot convert", "topic", m.topic.Name, "err", err)
	return fmt.Errorf("%w: %v", ErrSuspended, err)
}

// read gathers one pass: every partition from its offset up to its last
// stable offset, at most m.maxBytes in all.
func (m *materialiser) read(ctx context.Context, conv rowConverter, base, from Offsets) (*pass, error) {
	p := &pass{base: base, next: from.Clone(), caughtUp: true}
	var budget = m.maxBytes
	// Each pass starts at the next partition, so a backlog in one cannot
	// starve the others of the byte budget.
	first := m.passes % max(1, m.topic.Partitions)
	m.passes++
	for i := int32(0); i < m.topic.Partitions; i++ {
		part := (first + i) % m.topic.Partitions
		if budget <= 0 {
			p.caughtUp = false
			break
		}
		n, done, err := m.readPartition(ctx, conv, p, part, budget)
		if err != nil {
			return nil, err
		}
		budget -= n
		if !done {
			p.caughtUp = false
		}
		if p.suspend != nil || p.newColumns != nil {
			p.caughtUp = false
			break
		}
	}
	return p, nil
}

// readPartition reads one partition into p; it returns the bytes read and
// whether it reached the last stable offset.
func (m *materialiser) readPartition(ctx context.Context, conv rowConverter, p *pass, part int32, budget int64) (int64, bool, error) {
	off, ok := p.next[part]
	if !ok {
		st, err := m.log.State(m.topic.Name, part)
		if err != nil {
			return 0, false, fmt.Errorf("tableflow: reading %s/%d: %w", m.topic.Name, part, err)
		}
		off = st.LogStartOffset
		p.next[part] = off
	}
	var read int64
	for {
		res, err := m.log.Fetch(ctx, stream.FetchPartition{TopicID: m.topic.ID, Partition: part, Offset: off,
			MaxBytes: m.fetchBytes, ReadCommitted: true})
		if errors.Is(err, stream.ErrOffsetOutOfRange) && res.LogStartOffset > off {
			// Retention or DeleteRecords moved the log start past the
			// table: those records are gone; go on from the log start.
			m.logger.Warn("tableflow: records deleted before they were materialised", "topic", m.topic.Name,
				"partition", part, "from", off, "to", res.LogStartOffset)
			m.m.errors(m.status.name, "records_lost")
			off = res.LogStartOffset
			p.next[part] = off
			continue
		}
		if err != nil {
			return read, false, fmt.Errorf("tableflow: reading %s/%d at %d: %w", m.topic.Name, part, off, err)
		}
		if off >= res.LastStableOffset || len(res.Records) == 0 {
			return read, true, nil
		}
		batches, err := stream.DecodeBatches(res.Records)
		if err != nil {
			return read, false, fmt.Errorf("tableflow: reading %s/%d at %d: %w", m.topic.Name, part, off, err)
		}
		read += int64(len(res.Records))
		f := stream.NewCommittedFilter(res.Aborted)
		for _, b := range batches {
			if b.BaseOffset >= res.LastStableOffset {
				break
			}
			if f.Skip(b) || b.LastOffset < off {
				off = max(off, b.LastOffset+1)
				continue
			}
			for _, r := range b.Records {
				if r.Offset < off {
					continue
				}
				if err := m.appendRecord(ctx, conv, p, part, r); err != nil {
					// Suspended, or a new schema to take first: the pass
					// stops before this record.
					p.next[part] = r.Offset
					return read, false, nil
				}
			}
			off = b.LastOffset + 1
		}
		p.next[part] = off
		if read >= budget {
			return read, off >= res.LastStableOffset, nil
		}
	}
}

// appendRecord converts one record; a record that cannot be converted
// follows the error mode. It returns an error only when the table must
// stop (suspend), recorded in p.suspend.
func (m *materialiser) appendRecord(ctx context.Context, conv rowConverter, p *pass, part int32, r stream.DecodedRecord) error {
	var err error
	switch {
	case m.upsert && r.Key == nil:
		err = fmt.Errorf("%w: a record without a key cannot be upserted", ErrConvert)
	case m.upsert && r.Value == nil:
		p.tombstones = append(p.tombstones, Tombstone{Key: r.Key, Partition: part, Offset: r.Offset})
		return nil
	default:
		err = conv.Append(ctx, part, r)
	}
	if err == nil {
		p.rows++
		return nil
	}
	var nc *NewColumnsError
	if errors.As(err, &nc) {
		if refused, ok := m.refusedSchemas[nc.SchemaID]; ok {
			err = refused
		} else {
			p.newColumns = nc
			return err
		}
	}
	if errors.Is(err, ErrTombstone) {
		if m.upsert {
			p.tombstones = append(p.tombstones, Tombstone{Key: r.Key, Partition: part, Offset: r.Offset})
		}
		// An append table keeps the rows it has.
		return nil
	}
	switch m.cfg.ErrorMode {
	case "skip":
		m.m.errors(m.status.name, "skipped")
		m.status.recordError(err.Error(), m.now())
		return nil
	case "dlq":
		if m.dlq != nil {
			m.m.errors(m.status.name, "dead_lettered")
			m.status.recordError(err.Error(), m.now())
			p.letters = append(p.letters, deadLetter{partition: part, record: r, reason: err.Error()})
			return nil
		}
	}
	p.suspend = fmt.Errorf("partition %d offset %d: %w", part, r.Offset, err)
	return p.suspend
}

// commit appends the pass's rows in one snapshot carrying the new
// offsets, and writes its dead letters first.
func (m *materialiser) commit(ctx context.Context, tbl *table.Table, conv rowConverter, p *pass) error {
	if p.next.Behind(p.base) {
		return fmt.Errorf("%w: %s after %s", ErrOffsetsBackwards, p.next, p.base)
	}
	start := m.now()
	props := iceberg.Properties{SummaryOffsets: p.next.String(), SummaryCommit: newCommitID()}
	txn := tbl.NewTransaction()
	if err := txn.AssertRefSnapshotID(table.MainBranch); err != nil {
		return err
	}
	if m.dlq != nil {
		state, err := m.dlq.write(ctx, tbl, p.letters)
		var fresh *errNewDLQProducer
		if errors.As(err, &fresh) {
			// Record the producer id before anything is produced under
			// it; the next pass writes the letters.
			if err := txn.SetProperties(iceberg.Properties{PropDLQ: fresh.state}); err != nil {
				return err
			}
			if _, err := txn.Commit(ctx); err != nil {
				return fmt.Errorf("tableflow: committing %s: %w", m.ident, err)
			}
			return errRetryPass
		}
		if err != nil {
			m.m.errors(m.status.name, "dlq")
			return err
		}
		if state != tbl.Metadata().Properties()[PropDLQ] {
			if err := txn.SetProperties(iceberg.Properties{PropDLQ: state}); err != nil {
				return err
			}
		}
	}
	if m.upsert && (conv.Len() > 0 || len(p.tombstones) > 0) {
		rec := conv.NewRecord()
		err := Upsert(ctx, txn, rec, p.tombstones, props)
		rec.Release()
		if err != nil {
			return fmt.Errorf("tableflow: writing %s: %w", m.ident, err)
		}
	} else if conv.Len() > 0 {
		rec := conv.NewRecord()
		rdr, err := array.NewRecordReader(rec.Schema(), []arrow.Record{rec})
		rec.Release()
		if err != nil {
			return err
		}
		err = txn.Append(ctx, rdr, props)
		rdr.Release()
		if err != nil {
			return fmt.Errorf("tableflow: writing %s: %w", m.ident, err)
		}
	} else if err := m.appendEmpty(ctx, txn, props); err != nil {
		return err
	}
	staged, err := txn.StagedTable()
	if err != nil {
		return err
	}
	if m.beforeCommit != nil {
		if err := m.beforeCommit(ctx); err != nil {
			return err
		}
	}
	_, err = txn.Commit(ctx)
	if err != nil {
		return m.commitFailed(ctx, staged.Table, snapID(tbl.Metadata().CurrentSnapshot()), props[SummaryCommit], err)
	}
	m.m.committed(m.status.name, m.now().Sub(start), p.rows)
	m.status.committed(m.now(), snapID(staged.CurrentSnapshot()), p.rows)
	m.cursor = nil
	return nil
}

// takeSchema merges a record's writer schema into the table's (one
// schema-only commit). A schema the table cannot take is remembered: its
// records then follow the error mode.
func (m *materialiser) takeSchema(ctx context.Context, nc *NewColumnsError) error {
	tbl, err := m.load(ctx)
	if err != nil {
		return fmt.Errorf("tableflow: loading %s: %w", m.ident, err)
	}
	next, err := TableSchema(nc.Schema, tbl.Schema())
	if errors.Is(err, ErrIncompatibleSchema) || errors.Is(err, ErrUnsupportedSchema) {
		m.m.errors(m.status.name, "schema")
		if m.refusedSchemas == nil {
			m.refusedSchemas = map[int]error{}
		}
		m.refusedSchemas[nc.SchemaID] = fmt.Errorf("%w: schema id %d: %w", ErrConvert, nc.SchemaID, err)
		return nil
	}
	if err != nil {
		return err
	}
	_, err = m.commitSchema(ctx, tbl, next)
	return err
}

// commitSchema commits next as the table's schema, merged by name (field
// ids kept). It reports whether it committed; a lost race is no error
// (the next pass reloads).
func (m *materialiser) commitSchema(ctx context.Context, tbl *table.Table, next *iceberg.Schema) (bool, error) {
	if next.Equals(tbl.Schema()) {
		return false, nil
	}
	txn := tbl.NewTransaction()
	if err := txn.AssertRefSnapshotID(table.MainBranch); err != nil {
		return false, err
	}
	u := txn.UpdateSchema(true, false).UnionByNameWith(next)
	if _, ok := tbl.Schema().FindFieldByName(ColValue); ok && tbl.CurrentSnapshot() == nil && len(next.Fields()) > len(fixedColumns(&compiler{}))+1 {
		// A table created before its subject had a schema, and still
		// without rows: it takes the schema's columns instead of _value.
		u = u.DeleteColumn([]string{ColValue})
	}
	if err := u.Commit(); err != nil {
		return false, fmt.Errorf("tableflow: evolving %s: %w", m.ident, err)
	}
	if _, err := txn.Commit(ctx); err != nil {
		if errors.Is(err, table.ErrCommitFailed) {
			return true, nil
		}
		return false, fmt.Errorf("tableflow: evolving %s: %w", m.ident, err)
	}
	m.cursor = nil
	m.logger.Info("tableflow: table schema evolved", "topic", m.topic.Name, "schema_id", next.ID)
	return true, nil
}

// maybeMaintain runs table maintenance when it is due. Its failures are
// logged and counted: the next commit goes on regardless.
func (m *materialiser) maybeMaintain(ctx context.Context) {
	if m.maintain == nil || m.now().Sub(m.lastMaintain) < m.maintainEvery {
		return
	}
	m.lastMaintain = m.now()
	tbl, err := m.load(ctx)
	if err == nil {
		err = m.maintain(ctx, tbl)
	}
	if err != nil && ctx.Err() == nil {
		m.m.errors(m.status.name, "maintenance")
		m.logger.Warn("tableflow: table maintenance failed", "topic", m.topic.Name, "err", err)
	}
}

// appendEmpty stages a snapshot without data files: a pass whose records
// all went to the dead-letter topic still moves the offsets (and the
// dead-letter producer's sequence) forward.
func (m *materialiser) appendEmpty(ctx context.Context, txn *table.Transaction, props iceberg.Properties) error {
	return txn.AddFiles(ctx, nil, props, false)
}

// commitFailed sorts out a commit that returned err.
func (m *materialiser) commitFailed(ctx context.Context, staged *table.Table, base int64, commitID string, err error) error {
	if errors.Is(err, table.ErrCommitFailed) {
		// Lost the race: nothing of ours is in the table. Delete what the
		// attempt wrote; the next pass starts from the winner's offsets.
		m.m.errors(m.status.name, "commit_conflict")
		m.cursor = nil
		if derr := removeOwnFiles(ctx, staged); derr != nil {
			m.logger.Warn("tableflow: removing the files of a rejected commit", "topic", m.topic.Name, "err", derr)
		}
		m.logger.Info("tableflow: commit lost to another writer; resuming from its offsets", "topic", m.topic.Name)
		return nil
	}
	// Unknown outcome: the catalog may have applied it. The commit is
	// pinned to its base snapshot, so once the table has moved past the
	// base without it, it never will be.
	m.cursor = nil
	tbl, lerr := m.load(ctx)
	if lerr == nil && hasCommit(tbl.Metadata(), commitID) {
		return nil
	}
	if lerr == nil && snapID(tbl.Metadata().CurrentSnapshot()) != base {
		m.m.errors(m.status.name, "commit_conflict")
		if derr := removeOwnFiles(ctx, staged); derr != nil {
			m.logger.Warn("tableflow: removing the files of a rejected commit", "topic", m.topic.Name, "err", derr)
		}
		m.logger.Info("tableflow: commit lost to another writer; resuming from its offsets", "topic", m.topic.Name, "err", err)
		return nil
	}
	m.m.errors(m.status.name, "commit")
	return fmt.Errorf("tableflow: committing %s: %w", m.ident, err)
}

// hasCommit reports whether the table's current snapshot or one of its
// ancestors was written by commit attempt id.
func hasCommit(meta table.Metadata, id string) bool {
	for snap := meta.CurrentSnapshot(); snap != nil; {
		if snap.Summary != nil && snap.Summary.Properties[SummaryCommit] == id {
			return true
		}
		if snap.ParentSnapshotID == nil {
			return false
		}
		snap = meta.SnapshotByID(*snap.ParentSnapshotID)
	}
	return false
}

// removeOwnFiles deletes what a rejected commit attempt wrote: its
// manifest list, the manifests it added and their data files.
func removeOwnFiles(ctx context.Context, staged *table.Table) error {
	snap := staged.CurrentSnapshot()
	if snap == nil {
		return nil
	}
	fs, err := staged.FS(ctx)
	if err != nil {
		return err
	}
	mfs, err := snap.Manifests(fs)
	if err != nil {
		return err
	}
	var errs []error
	for _, mf := range mfs {
		if mf.SnapshotID() != snap.SnapshotID {
			continue
		}
		entries, err := mf.FetchEntries(fs, true)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, e := range entries {
			if e.SnapshotID() == snap.SnapshotID {
				errs = append(errs, fs.Remove(e.DataFile().FilePath()))
			}
		}
		errs = append(errs, fs.Remove(mf.FilePath()))
	}
	errs = append(errs, fs.Remove(snap.ManifestList))
	return errors.Join(errs...)
}

// observe refreshes the status and metrics from the table's metadata.
func (m *materialiser) observe(tbl *table.Table) {
	snap := tbl.Metadata().CurrentSnapshot()
	if snap == nil || snap.Summary == nil {
		return
	}
	files, bytes := summaryInt(snap.Summary.Properties, "total-data-files"), summaryInt(snap.Summary.Properties, "total-files-size")
	m.status.setFiles(snap.SnapshotID, snap.TimestampMs, files, bytes)
	m.m.size(m.status.name, files, bytes)
}

// updateLag sets the lag gauges: records between the table's offsets and
// the partitions' high watermarks, and how long the table has not been
// caught up.
func (m *materialiser) updateLag(next Offsets) {
	var lag int64
	for part := int32(0); part < m.topic.Partitions; part++ {
		st, err := m.log.State(m.topic.Name, part)
		if err != nil {
			continue
		}
		off, ok := next[part]
		if !ok {
			off = st.LogStartOffset
		}
		lag += max(0, st.LastStableOffset-off)
	}
	secs := m.status.setLag(lag, m.now())
	m.m.lag(m.status.name, lag, secs)
}

func snapID(s *table.Snapshot) int64 {
	if s == nil {
		return -1
	}
	return s.SnapshotID
}

func summaryInt(p iceberg.Properties, key string) int64 {
	var n int64
	fmt.Sscan(p[key], &n)
	return n
}

func newCommitID() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
