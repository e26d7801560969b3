package tableflow

// Table → topic (DESIGN §7): a topic with table.source set follows an
// Iceberg table and produces the rows of its snapshots into the topic,
// exactly once and in order, across restarts and moves between brokers.
//
// Where it starts. On its first start a source produces every row the
// table holds at its current snapshot (a full scan of that snapshot,
// deletes applied), as a Kafka Connect source does for a new topic; then
// each later snapshot in commit order, found by walking parent ids from
// the table's current snapshot back to the last one processed. Only APPEND
// snapshots produce rows (their added data files); overwrite, delete and
// replace snapshots are skipped and counted (SourceStatus.SkippedSnapshots):
// a row rewritten or deleted in the table is not retracted from the topic.
// If the last snapshot processed is no longer an ancestor of the current
// one (expired, or the table was rolled back or replaced), the source stops
// with an error in its status rather than guess what it missed.
//
// Order. The data files of a snapshot are read in commit order (data
// sequence number; only the first, whole-table snapshot has several) and
// then path order (only needed to be the same on every attempt), the rows
// of a file in file order. A file rewritten by the table's writer (a
// delete or compaction) counts as committed when it was rewritten.
//
// Rows → records. A column _key (binary or string) is the record key and
// is left out of the value; _timestamp (a timestamp) is the record
// timestamp, else the snapshot's commit time. The value is the row encoded
// with the latest version of the topic's value subject (<topic>-value,
// TopicNameStrategy) in the Confluent wire format when it has one: Avro
// binary (fields matched to columns by name; a missing column takes the
// field's default or null), JSON checked against the JSON Schema, or
// Protobuf: the schema file's first message (the one a table is typed
// from), fields matched to columns by name (structs as messages, lists as
// repeated fields, maps, enums from names or numbers, timestamps as
// google.protobuf.Timestamp, the wrappers from their scalar; a missing or
// null column left unset), after the message indexes (the single byte 0).
// A row with a column the message has no field for is refused, except the
// record columns _partition, _offset, _timestamp and _headers. Without
// a value schema the value is a JSON object of the row: timestamps as RFC
// 3339 text, dates as YYYY-MM-DD, times as HH:MM:SS.ffffff, decimals as
// exact JSON numbers, binary as base64, maps with text keys as objects
// (others as lists of {"key","value"}). A keyed record goes to the
// partition Kafka's default partitioner picks (murmur2 of the key); a row
// without a key to partition 0, so unkeyed rows keep the table's order.
//
// Exactly once. The progress of a topic's source lives in etcd at
// <prefix>/tableflow/sources/<topic id hex> (sourceState), every change a
// compare-and-swap on its revision. A batch (at most 500 rows and 1 MiB per
// partition, rows of one data file) is planned and stored as pending first:
// where its rows start, how many, the value schema id, the partition count
// and per partition the idempotent producer id, epoch and base sequence.
// Then it is produced, and only after the sequencer placed it does the
// position move past it. A source that crashes in between finds the batch
// pending and produces it again from the same rows with the same sequences:
// the sequencer drops the copies that landed (DESIGN §5a rule 3). A producer
// id the sequencer no longer knows (idle past its expiry) vouches for
// nothing; then the partition is read from where it ended when the batch
// was stored, looking for the batch's producer id and sequence, and a batch
// not found is sent again under a fresh producer id, which the expired one
// can never be used again to follow.

import (
	"cmp"
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/apache/iceberg-go/table"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/runnel-dev/runnel/internal/stream"
)

// Errors of a table source.
var (
	// ErrSourceGap: the last snapshot the source processed is no longer an
	// ancestor of the table's current snapshot.
	ErrSourceGap = errors.New("tableflow: source lost its place in the table's history")
	// ErrSourceRow: a row cannot become a record of the topic (it does not
	// fit the value schema, or is too large).
	ErrSourceRow = errors.New("tableflow: row cannot be produced")
	// ErrSourceLocation: a table location holds no metadata file.
	ErrSourceLocation = errors.New("tableflow: no table metadata at location")
)

// Bounds of one produced batch.
const (
	sourceBatchRows  = 500
	sourceBatchBytes = 1 << 20
)

// SourceOptions configure a Source.
type SourceOptions struct {
	Client *clientv3.Client
	// Prefix is the cluster's etcd key prefix (default "/runnel").
	Prefix string
	Log    Log
	// Schemas is the schema registry; nil means values are always JSON.
	Schemas Schemas
	// Open resolves a table.source value to the table as it is now; called
	// on every poll. The broker passes one resolving "<ns>.<table>" in its
	// own catalog and anything else with OpenTableLocation.
	Open   func(ctx context.Context, source string) (*table.Table, error)
	Logger *slog.Logger
	// PollInterval is how often the table is looked at (default 1 s).
	PollInterval time.Duration

	// afterProduce, when set, runs after a batch was produced and before
	// the position moves past it; an error stops the source there (tests
	// use it to crash in that window).
	afterProduce func() error
}

// SourceStatus is what a topic's source has done.
type SourceStatus struct {
	Source string
	// LastSnapshotID is the last snapshot fully produced (-1: none yet).
	LastSnapshotID int64
	// RowsProduced counts the rows produced since the source began.
	RowsProduced int64
	// SkippedSnapshots counts the snapshots passed over because they were
	// not appends.
	SkippedSnapshots int64
	// LagSnapshots is how many snapshots of the table are not processed
	// yet, the one being produced included.
	LagSnapshots int
	// Err is the last poll's error ("" when it went well).
	Err     string
	Updated time.Time
}

// Source streams Iceberg tables into topics; see the comment at the top of
// this file.
type Source struct {
	o SourceOptions

	mu     sync.Mutex
	status map[stream.TopicID]SourceStatus
}

// NewSource returns a table source.
func NewSource(o SourceOptions) *Source {
	if o.Prefix == "" {
		o.Prefix = "/runnel"
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.PollInterval <= 0 {
		o.PollInterval = time.Second
	}
	if o.Open == nil {
		o.Open = func(ctx context.Context, source string) (*table.Table, error) { return OpenTableLocation(ctx, source) }
	}
	return &Source{o: o, status: map[stream.TopicID]SourceStatus{}}
}

// Status returns the status of topicID's source (the zero value when it
// never ran here).
func (s *Source) Status(topicID stream.TopicID) SourceStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.status[topicID]
}

// Forget deletes the progress of topicID's source (its table.source was
// removed, or the topic deleted): a source started for it again begins
// afresh, with every row of the table.
func (s *Source) Forget(ctx context.Context, topicID stream.TopicID) error {
	if _, err := s.o.Client.Delete(ctx, s.etcdKey(topicID)); err != nil {
		return fmt.Errorf("tableflow: deleting source state: %w", err)
	}
	s.mu.Lock()
	delete(s.status, topicID)
	s.mu.Unlock()
	return nil
}

func (s *Source) setStatus(topicID stream.TopicID, f func(*SourceStatus)) {
	s.mu.Lock()
	st := s.status[topicID]
	f(&st)
	st.Updated = time.Now()
	s.status[topicID] = st
	s.mu.Unlock()
}

// Run follows table source for topic (whose id is topicID) until ctx
// ends, polling every PollInterval; an error of one poll is kept in the
// status and the next poll tries again.
func (s *Source) Run(ctx context.Context, topic string, topicID stream.TopicID, source string) error {
	t := time.NewTicker(s.o.PollInterval)
	defer t.Stop()
	for {
		err := s.poll(ctx, topic, topicID, source)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			s.o.Logger.Warn("table source failed; trying again", slog.String("topic", topic),
				slog.String("source", source), slog.Any("err", err))
		}
		s.setStatus(topicID, func(st *SourceStatus) {
			st.Source = source
			st.Err = ""
			if err != nil {
				st.Err = err.Error()
			}
		})
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// sourceState is a topic's source progress, stored as JSON.
type sourceState struct {
	Source string `json:"source"`
	// Snapshot is the snapshot being produced, or the last one produced
	// when Done (-1 with Done: none, the table was empty at the start).
	Snapshot int64 `json:"snapshot"`
	Done     bool  `json:"done"`
	// Initial: Snapshot is read whole (every live row), not only the files
	// it added: the source's first snapshot.
	Initial bool `json:"initial,omitempty"`
	// File and Row are the next row to produce: an index into the
	// snapshot's data files in path order, and a row of that file.
	File int   `json:"file"`
	Row  int64 `json:"row"`
	// PID and Epoch are the idempotent producer (-1: none yet); Seqs the
	// next sequence per partition under it.
	PID   int64           `json:"pid"`
	Epoch int16           `json:"epoch"`
	Seqs  map[int32]int32 `json:"seqs,omitempty"`
	// Pending is the batch being produced, stored before it is.
	Pending *sourceBatch `json:"pending,omitempty"`
	Rows    int64        `json:"rows"`
	Skipped int64        `json:"skipped"`
}

// sourceBatch is one planned batch: enough to build it again.
type sourceBatch struct {
	File  int   `json:"file"`
	Row   int64 `json:"row"`
	Count int   `json:"count"`
	// SchemaID is the value schema's id (0: JSON without a schema).
	SchemaID   int          `json:"schema_id,omitempty"`
	Partitions int32        `json:"partitions"`
	Parts      []sourcePart `json:"parts"`
}

// sourcePart is a batch's records for one partition.
type sourcePart struct {
	Partition int32 `json:"partition"`
	PID       int64 `json:"pid"`
	Epoch     int16 `json:"epoch"`
	Seq       int32 `json:"seq"`
	Records   int32 `json:"records"`
	// From is the partition's high watermark when the part was stored:
	// where to look for it when its producer id expired.
	From int64 `json:"from"`
	Done bool  `json:"done,omitempty"`
}

func (s *Source) etcdKey(topicID stream.TopicID) string {
	return s.o.Prefix + "/tableflow/sources/" + hex.EncodeToString(topicID[:])
}

// load reads a source's state and its revision (0 when absent).
func (s *Source) load(ctx context.Context, k string) (sourceState, int64, error) {
	resp, err := s.o.Client.Get(ctx, k)
	if err != nil {
		return sourceState{}, 0, fmt.Errorf("tableflow: reading source state: %w", err)
	}
	if len(resp.Kvs) == 0 {
		return sourceState{PID: -1, Snapshot: -1}, 0, nil
	}
	var st sourceState
	if err := json.Unmarshal(resp.Kvs[0].Value, &st); err != nil {
		return sourceState{}, 0, fmt.Errorf("tableflow: source state %s: %v", k, err)
	}
	return st, resp.Kvs[0].ModRevision, nil
}

// store puts st if k is still at rev; it returns the state to go on from:
// st and its revision when the put won, else what another writer stored.
func (s *Source) store(ctx context.Context, k string, rev int64, st sourceState) (sourceState, int64, error) {
	val, err := json.Marshal(st)
	if err != nil {
		return sourceState{}, 0, err
	}
	resp, err := s.o.Client.Txn(ctx).
		If(clientv3.Compare(clientv3.ModRevision(k), "=", rev)).
		Then(clientv3.OpPut(k, string(val))).
		Commit()
	if err != nil {
		return sourceState{}, 0, fmt.Errorf("tableflow: storing source state: %w", err)
	}
	if resp.Succeeded {
		return st, resp.Header.Revision, nil
	}
	return s.load(ctx, k)
}

// poll produces what the table has that the topic has not.
func (s *Source) poll(ctx context.Context, topic string, topicID stream.TopicID, source string) error {
	info, ok := s.o.Log.TopicByID(topicID)
	if !ok || info.Name != topic {
		return fmt.Errorf("tableflow: source topic %q (id %x) does not exist", topic, topicID[:])
	}
	tbl, err := s.o.Open(ctx, source)
	if err != nil {
		return fmt.Errorf("tableflow: opening table source %q: %w", source, err)
	}
	k := s.etcdKey(topicID)
	st, rev, err := s.load(ctx, k)
	if err != nil {
		return err
	}
	r := &sourceRun{s: s, topic: topic, tbl: tbl, meta: tbl.Metadata()}
	defer r.close()
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		if st.Source != source {
			// A new source (or the first start): begin with the table as
			// it is, under a new producer id: a batch of the old source
			// still pending may have landed with sequences the old
			// producer's next batch would repeat (and be dropped for).
			st = sourceState{Source: source, PID: -1, Snapshot: -1, Done: true}
			if cur := r.meta.CurrentSnapshot(); cur != nil {
				st.Snapshot, st.Done, st.Initial = cur.SnapshotID, false, true
			}
		} else {
			next, more, err := r.step(ctx, st)
			if err != nil {
				return err
			}
			s.report(topicID, r, next)
			if !more {
				return nil
			}
			st = next
		}
		if st, rev, err = s.store(ctx, k, rev, st); err != nil {
			return err
		}
	}
}

// report puts st into the status.
func (s *Source) report(topicID stream.TopicID, r *sourceRun, st sourceState) {
	last := st.Snapshot
	if !st.Done {
		last = -1
		if snap := r.meta.SnapshotByID(st.Snapshot); snap != nil && snap.ParentSnapshotID != nil && !st.Initial {
			last = *snap.ParentSnapshotID
		}
	}
	lag := 0
	if todo, err := snapshotsAfter(r.meta, st.Snapshot); err == nil {
		lag = len(todo)
	}
	if !st.Done {
		lag++
	}
	s.setStatus(topicID, func(ss *SourceStatus) {
		ss.Source, ss.LastSnapshotID, ss.RowsProduced, ss.SkippedSnapshots, ss.LagSnapshots = st.Source, last, st.Rows, st.Skipped, lag
	})
}

// snapshotsAfter returns the snapshots committed after snapshot last (-1:
// from the first), oldest first, walking parent ids back from the current
// snapshot; an error wrapping ErrSourceGap when last is not an ancestor of
// the current snapshot.
func snapshotsAfter(meta table.Metadata, last int64) ([]table.Snapshot, error) {
	var todo []table.Snapshot
	found := false
	for snap := meta.CurrentSnapshot(); snap != nil; {
		if snap.SnapshotID == last {
			found = true
			break
		}
		todo = append(todo, *snap)
		if snap.ParentSnapshotID == nil {
			break
		}
		parent := meta.SnapshotByID(*snap.ParentSnapshotID)
		if parent == nil {
			break
		}
		snap = parent
	}
	if last == -1 {
		found = true
	}
	slices.Reverse(todo)
	if !found {
		return nil, fmt.Errorf("%w: snapshot %d is not an ancestor of the current snapshot (expired, rolled back or replaced)", ErrSourceGap, last)
	}
	return todo, nil
}

func isAppend(s table.Snapshot) bool {
	return s.Summary != nil && s.Summary.Operation == table.OpAppend
}

// sourceRun is one poll's view of the table, with the data file being
// read kept open across batches.
type sourceRun struct {
	s     *Source
	topic string
	tbl   *table.Table
	meta  table.Metadata

	// files are the data file tasks of filesOf (a snapshot, initial or
	// not), in path order.
	filesOf struct {
		snapshot int64
		initial  bool
	}
	files []table.FileScanTask
	cur   *rowCursor
}

func (r *sourceRun) close() {
	if r.cur != nil {
		r.cur.close()
	}
}

// step moves the state one step on: settles a pending batch, plans the
// next one, moves past a finished file or snapshot. more is false when
// there is nothing to do.
func (r *sourceRun) step(ctx context.Context, st sourceState) (sourceState, bool, error) {
	if st.Pending != nil {
		next, err := r.settle(ctx, st)
		return next, true, err
	}
	if st.Done {
		todo, err := snapshotsAfter(r.meta, st.Snapshot)
		if err != nil {
			return st, false, err
		}
		for i, snap := range todo {
			if isAppend(snap) {
				st.Skipped += int64(i)
				st.Snapshot, st.Done, st.Initial, st.File, st.Row = snap.SnapshotID, false, false, 0, 0
				return st, true, nil
			}
		}
		if len(todo) == 0 {
			return st, false, nil
		}
		// Only snapshots that are not appends: pass them all.
		st.Skipped += int64(len(todo))
		st.Snapshot = todo[len(todo)-1].SnapshotID
		return st, true, nil
	}
	files, err := r.filesFor(ctx, st.Snapshot, st.Initial)
	if err != nil {
		return st, false, err
	}
	if st.File >= len(files) {
		st.Done, st.Initial, st.File, st.Row = true, false, 0, 0
		return st, true, nil
	}
	b, err := r.plan(ctx, st)
	if err != nil {
		return st, false, err
	}
	if b == nil {
		// The file has no rows past st.Row.
		st.File, st.Row = st.File+1, 0
		return st, true, nil
	}
	st.Pending = b
	return st, true, nil
}

// filesFor returns the data file tasks a snapshot contributes, in commit
// then path order: all of its live files for the initial one, else the
// files it added.
func (r *sourceRun) filesFor(ctx context.Context, snapshot int64, initial bool) ([]table.FileScanTask, error) {
	if r.files != nil && r.filesOf.snapshot == snapshot && r.filesOf.initial == initial {
		return r.files, nil
	}
	if r.meta.SnapshotByID(snapshot) == nil {
		return nil, fmt.Errorf("%w: snapshot %d being produced is gone from the table", ErrSourceGap, snapshot)
	}
	var tasks []table.FileScanTask
	var err error
	if initial {
		scan := r.tbl.Scan(table.WithSnapshotID(snapshot))
		tasks, err = scan.PlanFiles(ctx)
		scan.Close()
	} else {
		tasks, err = r.tbl.NewIncrementalAppendScan().FromSnapshotInclusive(snapshot).ToSnapshot(snapshot).PlanFiles(ctx)
	}
	if err != nil {
		return nil, fmt.Errorf("tableflow: planning the files of snapshot %d: %w", snapshot, err)
	}
	// Files in commit order (data sequence number: only the initial scan
	// sees several), then by path, which only needs to be the same on
	// every attempt.
	dataSeq := func(t table.FileScanTask) int64 {
		if t.DataSequenceNumber != nil {
			return *t.DataSequenceNumber
		}
		return 0
	}
	slices.SortFunc(tasks, func(a, b table.FileScanTask) int {
		return cmp.Or(cmp.Compare(dataSeq(a), dataSeq(b)), strings.Compare(a.File.FilePath(), b.File.FilePath()), cmp.Compare(a.Start, b.Start))
	})
	if tasks == nil {
		tasks = []table.FileScanTask{}
	}
	r.files, r.filesOf.snapshot, r.filesOf.initial = tasks, snapshot, initial
	if r.cur != nil {
		r.cur.close()
		r.cur = nil
	}
	return tasks, nil
}

// rows returns up to n rows of data file file of st's snapshot from row
// on, reusing the open cursor when it stands there.
func (r *sourceRun) rows(ctx context.Context, snapshot int64, initial bool, file int, row int64, n int) ([]sourceRow, error) {
	files, err := r.filesFor(ctx, snapshot, initial)
	if err != nil {
		return nil, err
	}
	if file >= len(files) {
		return nil, fmt.Errorf("%w: snapshot %d has %d data files, not %d", ErrSourceGap, snapshot, len(files), file+1)
	}
	if r.cur == nil || r.cur.file != file || row < r.cur.start {
		if r.cur != nil {
			r.cur.close()
		}
		if r.cur, err = r.openCursor(ctx, snapshot, file, files[file]); err != nil {
			return nil, err
		}
	}
	c := r.cur
	if row >= c.start+int64(len(c.buf)) {
		c.start += int64(len(c.buf))
		c.buf = c.buf[:0]
		for ; c.start < row; c.start++ {
			if _, ok, err := c.row(); err != nil || !ok {
				return nil, cmp.Or(err, fmt.Errorf("%w: data file %s of snapshot %d ends before row %d", ErrSourceGap, files[file].File.FilePath(), snapshot, row))
			}
		}
	} else {
		c.buf = c.buf[row-c.start:]
		c.start = row
	}
	for len(c.buf) < n {
		x, ok, err := c.row()
		if err != nil {
			return nil, err
		}
		if !ok {
			break
		}
		c.buf = append(c.buf, x)
	}
	return c.buf[:min(n, len(c.buf)):min(n, len(c.buf))], nil
}

// plan plans the next batch at st's position; nil when the file has no
// more rows.
func (r *sourceRun) plan(ctx context.Context, st sourceState) (*sourceBatch, error) {
	rows, err := r.rows(ctx, st.Snapshot, st.Initial, st.File, st.Row, sourceBatchRows)
	if err != nil || len(rows) == 0 {
		return nil, err
	}
	info, ok := r.s.o.Log.Topic(r.topic)
	if !ok {
		return nil, fmt.Errorf("tableflow: source topic %q does not exist", r.topic)
	}
	enc, err := r.s.latestEncoder(ctx, r.topic)
	if err != nil {
		return nil, err
	}
	limit := min(sourceBatchBytes, maxMessageBytes(r.s.o.Log, r.topic)) - 61
	ts := r.snapshotTime(st.Snapshot)
	sizes, counts := map[int32]int{}, map[int32]int32{}
	count := 0
	for _, row := range rows {
		rec, err := toRecord(row, enc, ts)
		if err != nil {
			return nil, err
		}
		p := partitionOf(rec.Key, info.Partitions)
		n := recordSize(rec)
		if sizes[p]+n > limit {
			if count == 0 {
				return nil, fmt.Errorf("%w: row %d of data file %d of snapshot %d takes %d bytes, over the topic's limit", ErrSourceRow, st.Row, st.File, st.Snapshot, n)
			}
			break
		}
		sizes[p] += n
		counts[p]++
		count++
	}
	b := &sourceBatch{File: st.File, Row: st.Row, Count: count, SchemaID: enc.id, Partitions: info.Partitions}
	for _, p := range slices.Sorted(maps.Keys(sizes)) {
		ps, err := r.s.o.Log.State(r.topic, p)
		if err != nil {
			return nil, err
		}
		b.Parts = append(b.Parts, sourcePart{Partition: p, PID: st.PID, Epoch: st.Epoch, Seq: st.Seqs[p], Records: counts[p], From: ps.HighWatermark})
	}
	if st.PID < 0 {
		if err := r.s.newProducer(ctx, b); err != nil {
			return nil, err
		}
	}
	return b, nil
}

// newProducer gives the parts of b not yet done a fresh producer id.
func (s *Source) newProducer(ctx context.Context, b *sourceBatch) error {
	pid, epoch, err := s.o.Log.InitProducerID(ctx, -1, 0)
	if err != nil {
		return fmt.Errorf("tableflow: source producer id: %w", err)
	}
	for i := range b.Parts {
		if !b.Parts[i].Done {
			b.Parts[i].PID, b.Parts[i].Epoch, b.Parts[i].Seq = pid, epoch, 0
		}
	}
	return nil
}

func (r *sourceRun) snapshotTime(id int64) int64 {
	if snap := r.meta.SnapshotByID(id); snap != nil {
		return snap.TimestampMs
	}
	return 0
}

// records builds b's records, by partition.
func (r *sourceRun) records(ctx context.Context, st sourceState, b *sourceBatch) (map[int32][]kmsg.Record, error) {
	rows, err := r.rows(ctx, st.Snapshot, st.Initial, b.File, b.Row, b.Count)
	if err != nil {
		return nil, err
	}
	if len(rows) != b.Count {
		return nil, fmt.Errorf("%w: data file %d of snapshot %d has %d rows from row %d, the pending batch %d", ErrSourceGap, b.File, st.Snapshot, len(rows), b.Row, b.Count)
	}
	enc, err := r.s.encoderByID(ctx, b.SchemaID)
	if err != nil {
		return nil, err
	}
	ts := r.snapshotTime(st.Snapshot)
	out := map[int32][]kmsg.Record{}
	for _, row := range rows {
		rec, err := toRecord(row, enc, ts)
		if err != nil {
			return nil, err
		}
		p := partitionOf(rec.Key, b.Partitions)
		out[p] = append(out[p], rec)
	}
	return out, nil
}

// settle produces st's pending batch and returns the state after it: the
// position moved past it, or (a producer id expired) the parts not found
// in the log given a new producer id, to be produced next.
func (r *sourceRun) settle(ctx context.Context, st sourceState) (sourceState, error) {
	b := *st.Pending
	b.Parts = slices.Clone(b.Parts)
	recs, err := r.records(ctx, st, &b)
	if err != nil {
		return st, err
	}
	info, ok := r.s.o.Log.Topic(r.topic)
	if !ok {
		return st, fmt.Errorf("tableflow: source topic %q does not exist", r.topic)
	}
	var batches []stream.ProduceBatch
	var idx []int
	for i, p := range b.Parts {
		if p.Done {
			continue
		}
		if p.Records != int32(len(recs[p.Partition])) {
			return st, fmt.Errorf("%w: the pending batch has %d rows for partition %d, its rows give %d", ErrSourceGap, p.Records, p.Partition, len(recs[p.Partition]))
		}
		batches = append(batches, stream.ProduceBatch{Topic: r.topic, Partition: p.Partition, Records: encodeSourceBatch(p.PID, p.Epoch, p.Seq, recs[p.Partition])})
		idx = append(idx, i)
	}
	results := r.s.o.Log.Produce(ctx, batches)
	renew := false
	for j, res := range results {
		p := &b.Parts[idx[j]]
		switch {
		case res.Err == nil:
			p.Done = true
		case errors.Is(res.Err, stream.ErrUnknownProducerID), errors.Is(res.Err, stream.ErrOutOfOrderSequence),
			errors.Is(res.Err, stream.ErrInvalidProducerEpoch):
			found, err := stream.FindBatch(ctx, r.s.o.Log, info, p.Partition, p.From, p.PID, p.Epoch, p.Seq)
			if err != nil {
				return st, err
			}
			r.s.o.Logger.Info("table source producer id no longer known; checked the log for the pending batch",
				slog.String("topic", r.topic), slog.Int("partition", int(p.Partition)), slog.Bool("found", found), slog.Any("err", res.Err))
			p.Done = found
			renew = renew || !found
		default:
			return st, fmt.Errorf("tableflow: producing %d rows to %s/%d: %w", len(recs[p.Partition]), r.topic, p.Partition, res.Err)
		}
	}
	if renew {
		if err := r.s.newProducer(ctx, &b); err != nil {
			return st, err
		}
		for i := range b.Parts {
			if !b.Parts[i].Done {
				ps, err := r.s.o.Log.State(r.topic, b.Parts[i].Partition)
				if err != nil {
					return st, err
				}
				b.Parts[i].From = ps.HighWatermark
			}
		}
		st.Pending = &b
		return st, nil
	}
	if r.s.o.afterProduce != nil {
		if err := r.s.o.afterProduce(); err != nil {
			return st, err
		}
	}
	// Every part landed. The producer to go on with is the state's, or a
	// new one the batch was given (at planning, or renewed above on an
	// earlier attempt): its sequences start from this batch's.
	pid, epoch := st.PID, st.Epoch
	for _, p := range b.Parts {
		if p.PID != st.PID {
			pid, epoch = p.PID, p.Epoch
		}
	}
	if pid != st.PID {
		st.Seqs = nil
	}
	st.PID, st.Epoch = pid, epoch
	for _, p := range b.Parts {
		if p.PID == pid {
			if st.Seqs == nil {
				st.Seqs = map[int32]int32{}
			}
			st.Seqs[p.Partition] = seqAdd(p.Seq, p.Records)
		}
	}
	st.File, st.Row = b.File, b.Row+int64(b.Count)
	st.Rows += int64(b.Count)
	st.Pending = nil
	return st, nil
}

// seqAdd adds to a producer sequence, wrapping at MaxInt32 as Kafka does.
func seqAdd(seq, n int32) int32 {
	return int32((int64(seq) + int64(n)) % (1 << 31))
}

// partitionOf is Kafka's default partitioner: murmur2 of the key, or
// partition 0 for a record without a key.
func partitionOf(key []byte, partitions int32) int32 {
	if key == nil || partitions <= 1 {
		return 0
	}
	return int32(kafkaPartitioner.Partition(&kgo.Record{Key: key}, int(partitions)))
}

var kafkaPartitioner = kgo.StickyKeyPartitioner(nil).ForTopic("")

// maxMessageBytes is topic's max.message.bytes.
func maxMessageBytes(log Log, topic string) int {
	if cfg, err := log.TopicConfig(topic); err == nil && cfg.MaxMessageBytes > 0 {
		return int(cfg.MaxMessageBytes)
	}
	return sourceBatchBytes
}

func recordSize(r kmsg.Record) int {
	r.Length = 0
	return len(r.AppendTo(nil)) + 4 // a varint length of up to 5 bytes
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// encodeSourceBatch builds an uncompressed magic-2 batch of records with
// their own timestamps (Timestamp in ms in TimestampDelta64 on input).
func encodeSourceBatch(pid int64, epoch int16, seq int32, records []kmsg.Record) []byte {
	first, maxTS := records[0].TimestampDelta64, records[0].TimestampDelta64
	for _, r := range records {
		maxTS = max(maxTS, r.TimestampDelta64)
	}
	var recs []byte
	for i, r := range records {
		r.OffsetDelta = int32(i)
		r.TimestampDelta64 -= first
		r.TimestampDelta = 0
		r.Length = 0
		r.Length = int32(len(r.AppendTo(nil)) - 1)
		recs = r.AppendTo(recs)
	}
	b := kmsg.RecordBatch{
		PartitionLeaderEpoch: -1, Magic: 2,
		LastOffsetDelta: int32(len(records) - 1), FirstTimestamp: first, MaxTimestamp: maxTS,
		ProducerID: pid, ProducerEpoch: epoch, FirstSequence: seq,
		NumRecords: int32(len(records)), Records: recs,
	}
	out := b.AppendTo(nil)
	binary.BigEndian.PutUint32(out[8:], uint32(len(out)-12))
	binary.BigEndian.PutUint32(out[17:], crc32.Checksum(out[21:], castagnoli))
	return out
}
