package retry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-dev/runnel/internal/stream"
)

// TableLog is what the parked-keys tables need of the log (stream.Engine
// satisfies it). Fetch, State and Produce are the engine's own: Fetch
// ignores delivery delays (that is the Kafka front end's), so the tables
// see records that are not due yet.
type TableLog interface {
	Log
	Topics() []stream.TopicInfo
	State(topic string, partition int32) (stream.PartitionState, error)
	Fetch(ctx context.Context, p stream.FetchPartition) (stream.FetchResult, error)
	// Produce returns once the batches are sequenced, one result each.
	Produce(ctx context.Context, batches []stream.ProduceBatch) []stream.ProduceResult
	// SyncRead waits until this broker has replayed everything committed
	// before the call, so a retry record acknowledged on another broker
	// before its origin's offset was committed is seen.
	SyncRead(ctx context.Context) error
}

// Offsets are the committed offsets of the groups this broker
// coordinates.
type Offsets interface {
	// Committed returns group's committed offsets by topic and partition;
	// ok is false when this broker does not coordinate the group.
	Committed(group string) (offsets map[string]map[int32]int64, ok bool)
}

// TablesOptions configure Tables.
type TablesOptions struct {
	Log     TableLog
	Offsets Offsets
	// GroupConfig returns a group's GROUP config overrides.
	GroupConfig func(group string) map[string]string
	// Interval between passes (default 100 ms).
	Interval time.Duration
	Now      func() time.Time
	Logger   *slog.Logger
	// Metrics registers runnel_retry_parked_keys (nil: not registered).
	Metrics prometheus.Registerer
}

// Tables keeps the parked-keys table of every ordered group this broker
// coordinates. Its goroutine is owned by Start and Close.
type Tables struct {
	o      TablesOptions
	logger *slog.Logger

	cancel context.CancelFunc
	wg     sync.WaitGroup

	groups map[string]*table // owned by the goroutine
	// parkedKeys is the number of keys holding records back, per ordered
	// group this broker coordinates.
	parkedKeys *prometheus.GaugeVec
}

// table is the state of one group's table on its coordinator.
type table struct {
	group     string
	cursor    int64             // next offset of the parked topic to read
	published map[string][]byte // park/ records as the topic holds them
	marks     marks
	progress  []byte // last progress value written
	// retry partitions: next offset to read and the records read at or
	// past the committed offset.
	parts map[string]map[int32]*retryPart
}

type retryPart struct {
	next      int64
	committed int64 // the committed offset of the last pass
	waiting   []located
}

type located struct {
	offset int64 // in the retry partition
	rec    parkedRecord
}

// NewTables returns the tables service; Start runs it.
func NewTables(o TablesOptions) *Tables {
	if o.Interval <= 0 {
		o.Interval = 100 * time.Millisecond
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Tables{o: o, logger: o.Logger.With("component", "retry-tables"), groups: map[string]*table{},
		parkedKeys: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "runnel", Subsystem: "retry", Name: "parked_keys",
			Help: "Keys of an ordered retry policy whose later records wait behind a parked record, per group (reported by the group's coordinator)."},
			[]string{"group"})}
	if o.Metrics != nil {
		o.Metrics.MustRegister(s.parkedKeys)
	}
	return s
}

// Start runs passes every Interval until Close.
func (s *Tables) Start() {
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		t := time.NewTicker(s.o.Interval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			s.pass(ctx)
		}
	}()
}

// Close stops the passes and waits for the one running.
func (s *Tables) Close() error {
	if s.cancel != nil {
		s.cancel()
		s.wg.Wait()
	}
	return nil
}

// pass brings the table of every ordered group this broker coordinates up
// to date.
func (s *Tables) pass(ctx context.Context) {
	seen := map[string]bool{}
	for _, ti := range s.o.Log.Topics() {
		group, ok := strings.CutSuffix(ti.Name, ".parked")
		if !ok || !strings.HasPrefix(group, "retry.") {
			continue
		}
		group = strings.TrimPrefix(group, "retry.")
		p, ok := PolicyOf(group, s.o.GroupConfig(group))
		if !ok || !p.Ordered {
			continue
		}
		committed, ok := s.o.Offsets.Committed(group)
		if !ok {
			continue
		}
		seen[group] = true
		t := s.groups[group]
		if t == nil {
			t = &table{group: group, published: map[string][]byte{}, parts: map[string]map[int32]*retryPart{},
				marks: marks{released: map[string]int64{}, discarded: map[string]int64{}}}
			s.groups[group] = t
		}
		if err := s.update(ctx, t, committed); err != nil {
			if ctx.Err() == nil {
				s.logger.Warn("parked-keys table not updated", "group", group, "err", err)
			}
			delete(s.groups, group) // start over from the topic next time
		}
	}
	for g := range s.groups {
		if !seen[g] {
			delete(s.groups, g) // another broker's now, or no longer ordered
			s.parkedKeys.DeleteLabelValues(g)
		}
	}
}

// update reads what changed and writes the table's changes. The committed
// offsets were read before the retry partitions' ends, so a record moved
// to another level before its old place was committed is always seen in
// one of the two places: a key never leaves the table while it is parked.
func (s *Tables) update(ctx context.Context, t *table, committed map[string]map[int32]int64) error {
	if err := s.o.Log.SyncRead(ctx); err != nil {
		return err
	}
	parked := ParkedTopic(t.group)
	if err := s.readTable(ctx, t, parked); err != nil {
		return err
	}
	ends := map[string]map[int32]int64{}
	var waiting []parkedRecord
	for n := 1; ; n++ {
		name := LevelTopic(t.group, n)
		ti, ok := s.o.Log.Topic(name)
		if !ok {
			break
		}
		ends[name] = map[int32]int64{}
		if t.parts[name] == nil {
			t.parts[name] = map[int32]*retryPart{}
		}
		for p := range ti.Partitions {
			rp := t.parts[name][p]
			if rp == nil {
				rp = &retryPart{}
				t.parts[name][p] = rp
			}
			from := committed[name][p]
			end, err := s.readRetry(ctx, ti.ID, name, p, rp, from)
			if err != nil {
				return err
			}
			ends[name][p] = end
			for _, l := range rp.waiting {
				waiting = append(waiting, l.rec)
			}
		}
	}
	want := buildTable(waiting, t.marks)
	n := 0
	for _, k := range want {
		if len(k.Parked) > 0 {
			n++
		}
	}
	s.parkedKeys.WithLabelValues(t.group).Set(float64(n))
	keys, values := diffTable(t.published, want)
	prog, _ := json.Marshal(Progress{Ends: ends})
	if len(keys) == 0 && string(prog) == string(t.progress) {
		return nil
	}
	recs := make([]kmsg.Record, 0, len(keys)+1)
	for i, k := range keys {
		recs = append(recs, kmsg.Record{Key: []byte(k), Value: values[i]})
	}
	recs = append(recs, kmsg.Record{Key: []byte(progressKey), Value: prog})
	batch := stream.EncodeBatch(-1, -1, -1, s.o.Now().UnixMilli(), recs)
	res := s.o.Log.Produce(ctx, []stream.ProduceBatch{{Topic: parked, Partition: 0, Records: batch}})
	if len(res) != 1 || res[0].Err != nil {
		if len(res) == 1 {
			return fmt.Errorf("write %s: %w", parked, res[0].Err)
		}
		return fmt.Errorf("write %s: no result", parked)
	}
	for i, k := range keys {
		if values[i] == nil {
			delete(t.published, k)
		} else {
			t.published[k] = values[i]
		}
	}
	t.progress = prog
	return nil
}

// readTable reads the parked topic from the table's cursor: the park
// records as published (by this broker or the group's previous
// coordinator) and the release and discard marks.
func (s *Tables) readTable(ctx context.Context, t *table, name string) error {
	ti, ok := s.o.Log.Topic(name)
	if !ok {
		return fmt.Errorf("no topic %s", name)
	}
	return s.read(ctx, ti.ID, name, 0, &t.cursor, func(r stream.DecodedRecord) {
		key := string(r.Key)
		switch {
		case strings.HasPrefix(key, parkPrefix):
			if r.Value == nil {
				delete(t.published, key)
			} else {
				t.published[key] = append([]byte(nil), r.Value...)
			}
		case strings.HasPrefix(key, releasePrefix), strings.HasPrefix(key, discardPrefix):
			var m Mark
			if r.Value == nil || json.Unmarshal(r.Value, &m) != nil {
				return
			}
			if strings.HasPrefix(key, releasePrefix) {
				id := strings.TrimPrefix(key, releasePrefix)
				t.marks.released[id] = max(t.marks.get(t.marks.released, id), m.UpTo)
			} else {
				id := strings.TrimPrefix(key, discardPrefix)
				t.marks.discarded[id] = max(t.marks.get(t.marks.discarded, id), m.UpTo)
			}
		}
	})
}

// readRetry reads one retry partition from where it stopped (or from the
// committed offset, if that is further) to its end, keeping the records at
// or past the committed offset. It returns the end.
func (s *Tables) readRetry(ctx context.Context, id stream.TopicID, name string, p int32, rp *retryPart, committed int64) (int64, error) {
	if committed < rp.committed {
		// Offsets reset backwards: records already dropped wait again.
		rp.next, rp.waiting = committed, nil
	}
	rp.committed = committed
	rp.waiting = slices.DeleteFunc(rp.waiting, func(l located) bool { return l.offset < committed })
	rp.next = max(rp.next, committed)
	err := s.read(ctx, id, name, p, &rp.next, func(r stream.DecodedRecord) {
		o, ok := originOf(r)
		if ok && r.Offset >= committed {
			rp.waiting = append(rp.waiting, located{offset: r.Offset, rec: o})
		}
	})
	return rp.next, err
}

// originOf reads a retry record's origin headers. Records without a key
// or without origin headers park nothing.
func originOf(r stream.DecodedRecord) (parkedRecord, bool) {
	var pr parkedRecord
	var have int
	for _, h := range r.Headers {
		switch h.Key {
		case HeaderTopic:
			pr.Origin.Topic = string(h.Value)
			have |= 1
		case HeaderPartition:
			p, err := strconv.ParseInt(string(h.Value), 10, 32)
			if err != nil {
				return pr, false
			}
			pr.Origin.Partition = int32(p)
			have |= 2
		case HeaderOffset:
			o, err := strconv.ParseInt(string(h.Value), 10, 64)
			if err != nil {
				return pr, false
			}
			pr.Offset = o
			have |= 4
		}
	}
	if have != 7 || r.Key == nil {
		return pr, false
	}
	pr.Origin.Key = append([]byte(nil), r.Key...)
	return pr, true
}

// read calls fn for every record of a partition from *next to its high
// watermark, moving *next past what it read.
func (s *Tables) read(ctx context.Context, id stream.TopicID, name string, p int32, next *int64, fn func(stream.DecodedRecord)) error {
	st, err := s.o.Log.State(name, p)
	if err != nil {
		return err
	}
	if *next < st.LogStartOffset {
		*next = st.LogStartOffset
	}
	for *next < st.HighWatermark {
		res, err := s.o.Log.Fetch(ctx, stream.FetchPartition{TopicID: id, Partition: p, Offset: *next, MaxBytes: 1 << 20})
		if err != nil {
			if errors.Is(err, stream.ErrOffsetOutOfRange) {
				*next = st.HighWatermark
				return nil
			}
			return err
		}
		batches, err := stream.DecodeBatches(res.Records)
		if err != nil {
			return fmt.Errorf("decode %s/%d at %d: %w", name, p, *next, err)
		}
		if len(batches) == 0 {
			break
		}
		for _, b := range batches {
			if !b.Control {
				for _, r := range b.Records {
					if r.Offset >= *next {
						fn(r)
					}
				}
			}
			*next = max(*next, b.LastOffset+1)
		}
	}
	return nil
}
