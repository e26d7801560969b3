package retry

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-dev/runnel/internal/stream"
)

// memLog is an in-memory log of single-record batches for the tables.
type memLog struct {
	mu     sync.Mutex
	topics map[string]*memTopic
	writes int // batches produced
}

type memTopic struct {
	info  stream.TopicInfo
	parts [][]kmsg.Record
}

func newMemLog() *memLog { return &memLog{topics: map[string]*memTopic{}} }

func (l *memLog) create(name string, partitions int32) {
	l.mu.Lock()
	defer l.mu.Unlock()
	id := stream.TopicID{byte(len(l.topics) + 1)}
	l.topics[name] = &memTopic{info: stream.TopicInfo{Name: name, ID: id, Partitions: partitions}, parts: make([][]kmsg.Record, partitions)}
}

func (l *memLog) add(topic string, p int32, recs ...kmsg.Record) {
	l.mu.Lock()
	defer l.mu.Unlock()
	t := l.topics[topic]
	t.parts[p] = append(t.parts[p], recs...)
}

func (l *memLog) Topic(name string) (stream.TopicInfo, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	t, ok := l.topics[name]
	if !ok {
		return stream.TopicInfo{}, false
	}
	return t.info, true
}

func (l *memLog) Topics() []stream.TopicInfo {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []stream.TopicInfo
	for _, t := range l.topics {
		out = append(out, t.info)
	}
	return out
}

func (l *memLog) CreateTopic(context.Context, string, int32, map[string]string, bool) (stream.TopicInfo, error) {
	return stream.TopicInfo{}, fmt.Errorf("not here")
}

func (l *memLog) AlterTopicConfigs(context.Context, string, []stream.ConfigChange, bool, bool) error {
	return fmt.Errorf("not here")
}

func (l *memLog) State(topic string, p int32) (stream.PartitionState, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := int64(len(l.topics[topic].parts[p]))
	return stream.PartitionState{HighWatermark: n, LastStableOffset: n}, nil
}

func (l *memLog) Fetch(_ context.Context, fp stream.FetchPartition) (stream.FetchResult, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, t := range l.topics {
		if t.info.ID != fp.TopicID {
			continue
		}
		recs := t.parts[fp.Partition]
		res := stream.FetchResult{HighWatermark: int64(len(recs))}
		for o := fp.Offset; o < int64(len(recs)) && o < fp.Offset+2; o++ {
			b := stream.EncodeBatch(-1, -1, -1, 1, []kmsg.Record{recs[o]})
			binary.BigEndian.PutUint64(b, uint64(o))
			res.Records = append(res.Records, b...)
		}
		return res, nil
	}
	return stream.FetchResult{}, stream.ErrUnknownTopicID
}

func (l *memLog) Produce(_ context.Context, batches []stream.ProduceBatch) []stream.ProduceResult {
	out := make([]stream.ProduceResult, len(batches))
	for i, b := range batches {
		dec, err := stream.DecodeBatches(b.Records)
		if err != nil {
			out[i].Err = err
			continue
		}
		l.mu.Lock()
		l.writes++
		l.mu.Unlock()
		for _, d := range dec {
			for _, r := range d.Records {
				l.add(b.Topic, b.Partition, kmsg.Record{Key: r.Key, Value: r.Value})
			}
		}
	}
	return out
}

func (l *memLog) SyncRead(context.Context) error { return nil }

// table reads the parked topic as a consumer does: the last value of every
// park/ key (tombstones dropped) and the last progress.
func (l *memLog) table(t *testing.T, group string) (map[string][]int64, Progress) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	byKey := map[string]ParkedKey{}
	var prog Progress
	for _, r := range l.topics[ParkedTopic(group)].parts[0] {
		k := string(r.Key)
		switch {
		case k == ProgressKey:
			if err := json.Unmarshal(r.Value, &prog); err != nil {
				t.Fatal(err)
			}
		case strings.HasPrefix(k, parkPrefix):
			if r.Value == nil {
				delete(byKey, k)
				continue
			}
			var pk ParkedKey
			if err := json.Unmarshal(r.Value, &pk); err != nil {
				t.Fatal(err)
			}
			byKey[k] = pk
		}
	}
	keys := map[string][]int64{}
	for _, pk := range byKey {
		keys[string(pk.Key)] = pk.Parked
	}
	return keys, prog
}

// offsets is a fake coordinator of one group.
type offsets struct {
	mu        sync.Mutex
	committed map[string]map[int32]int64
	owned     bool
}

func (o *offsets) Committed(string) (map[string]map[int32]int64, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := map[string]map[int32]int64{}
	for t, ps := range o.committed {
		out[t] = map[int32]int64{}
		for p, v := range ps {
			out[t][p] = v
		}
	}
	return out, o.owned
}

func (o *offsets) commit(topic string, p int32, off int64) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.committed[topic] == nil {
		o.committed[topic] = map[int32]int64{}
	}
	o.committed[topic][p] = off
}

func retryRec(key string, origin int64) kmsg.Record {
	return kmsg.Record{Key: []byte(key), Value: []byte("v"), Headers: []kmsg.Header{
		{Key: HeaderTopic, Value: []byte("orders")},
		{Key: HeaderPartition, Value: []byte("0")},
		{Key: HeaderOffset, Value: []byte(strconv.FormatInt(origin, 10))},
	}}
}

// TestTables drives the parked-keys table of one group through parking,
// processing, a move between levels, a release mark, an offset reset and a
// change of coordinator, checking the table a consumer reads after each
// pass.
func TestTables(t *testing.T) {
	ctx := context.Background()
	l := newMemLog()
	l.create("retry.g.1", 1)
	l.create("retry.g.2", 1)
	l.create("retry.g.parked", 1)
	l.create("orders", 1) // not a retry topic: never read
	off := &offsets{committed: map[string]map[int32]int64{}, owned: true}
	cfg := map[string]string{"errors.retry.delays.ms": "100,200", "errors.retry.ordered": "true"}
	newTables := func() *Tables {
		return NewTables(TablesOptions{Log: l, Offsets: off, GroupConfig: func(string) map[string]string { return cfg },
			Now: func() time.Time { return time.UnixMilli(1) }})
	}
	s := newTables()
	check := func(step string, want map[string][]int64, ends map[string]map[int32]int64) {
		t.Helper()
		s.pass(ctx)
		got, prog := l.table(t, "g")
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%s: table %v, want %v", step, got, want)
		}
		if !reflect.DeepEqual(prog.Ends, ends) {
			t.Fatalf("%s: progress %v, want %v", step, prog.Ends, ends)
		}
		n := 0
		for _, p := range want {
			if len(p) > 0 {
				n++
			}
		}
		if g := testutil.ToFloat64(s.parkedKeys.WithLabelValues("g")); g != float64(n) {
			t.Fatalf("%s: runnel_retry_parked_keys %v, want %d", step, g, n)
		}
	}
	ends := func(a, b int64) map[string]map[int32]int64 {
		return map[string]map[int32]int64{"retry.g.1": {0: a}, "retry.g.2": {0: b}}
	}

	// A's record 5 fails, B's 6 fails, A's 8 is parked behind 5.
	l.add("retry.g.1", 0, retryRec("A", 5), retryRec("B", 6), retryRec("A", 8))
	check("parked", map[string][]int64{"A": {5, 8}, "B": {6}}, ends(3, 0))
	writes := l.writes
	s.pass(ctx)
	if l.writes != writes {
		t.Fatal("a pass with nothing new wrote to the table")
	}

	// A5 fails again: moved to level 2 before level 1 is committed past
	// it; B6 succeeds. A stays parked at every step.
	l.add("retry.g.2", 0, retryRec("A", 5))
	check("A5 moved, not committed yet", map[string][]int64{"A": {5, 8}, "B": {6}}, ends(3, 1))
	off.commit("retry.g.1", 0, 2)
	check("A5 and B6 done at level 1", map[string][]int64{"A": {5, 8}}, ends(3, 1))

	// A8 waits behind A5, parked again at level 1; then A5 succeeds.
	l.add("retry.g.1", 0, retryRec("A", 8))
	off.commit("retry.g.1", 0, 3)
	check("A8 parked again", map[string][]int64{"A": {5, 8}}, ends(4, 1))
	off.commit("retry.g.2", 0, 1)
	check("A5 succeeded", map[string][]int64{"A": {8}}, ends(4, 1))

	// A release mark up to 8 lets later records of A go on.
	mark, _ := json.Marshal(Mark{UpTo: 8})
	l.add("retry.g.parked", 0, kmsg.Record{Key: []byte(ReleaseKey(Origin{Topic: "orders", Key: []byte("A")})), Value: mark})
	check("A released", map[string][]int64{"A": {}}, ends(4, 1))

	// The group's offsets are reset to the start of level 1: its records
	// wait again (A's below the release mark still hold nothing back).
	off.commit("retry.g.1", 0, 0)
	check("offsets reset", map[string][]int64{"A": {}, "B": {6}}, ends(4, 1))

	// Another broker becomes the coordinator: it takes the table over as
	// written, rewriting nothing but the progress it has not written.
	s = newTables()
	writes = l.writes
	check("new coordinator", map[string][]int64{"A": {}, "B": {6}}, ends(4, 1))
	if l.writes != writes+1 {
		t.Fatalf("the new coordinator wrote %d batches, want 1 (its progress)", l.writes-writes)
	}
	// It stops when it no longer coordinates the group.
	off.owned = false
	off.commit("retry.g.1", 0, 4)
	writes = l.writes
	s.pass(ctx)
	if l.writes != writes || len(s.groups) != 0 {
		t.Fatal("a broker that no longer coordinates the group wrote its table")
	}
	if n := testutil.CollectAndCount(s.parkedKeys); n != 0 {
		t.Fatalf("a broker that no longer coordinates the group still reports %d series", n)
	}
}
