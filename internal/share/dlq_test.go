package share

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kmsg"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/runnel-dev/runnel/internal/cluster/clustertest"
	"github.com/runnel-dev/runnel/internal/config"
	"github.com/runnel-dev/runnel/internal/objstore"
	"github.com/runnel-dev/runnel/internal/stream"
)

// dlqEnv is one stream engine on embedded etcd with a source topic.
type dlqEnv struct {
	cli    *clientv3.Client
	log    *stream.Engine
	source stream.TopicInfo
}

func newDLQEnv(t *testing.T, sourcePartitions int32) *dlqEnv {
	t.Helper()
	return newDLQEnvWith(t, sourcePartitions, stream.Options{})
}

// newDLQEnvWith is newDLQEnv with engine options o (Now, say).
func newDLQEnvWith(t *testing.T, sourcePartitions int32, o stream.Options) *dlqEnv {
	t.Helper()
	ctx := context.Background()
	store, err := objstore.Open(ctx, "file://"+t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	cli := clustertest.Start(t).Client()
	o.Client, o.Store, o.FlushLinger = cli, store, time.Millisecond
	o.DisableMaintenance, o.Grace, o.DefaultPartitions = true, time.Millisecond, 1
	e, err := stream.Open(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	src, err := e.CreateTopic(ctx, "orders", sourcePartitions, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	return &dlqEnv{cli: cli, log: e, source: src}
}

// produceSource appends n records to the source partition: key k<i>,
// value v<i>, header h=<i>.
func (v *dlqEnv) produceSource(t *testing.T, partition int32, n int) {
	t.Helper()
	var recs []kmsg.Record
	for i := range n {
		recs = append(recs, kmsg.Record{Key: []byte(fmt.Sprintf("k%d", i)), Value: []byte(fmt.Sprintf("v%d", i)),
			Headers: []kmsg.Header{{Key: "h", Value: []byte(strconv.Itoa(i))}, {Key: HeaderDLQGroup, Value: []byte("forged")}}})
	}
	data := stream.EncodeBatch(-1, -1, -1, time.Now().UnixMilli(), recs)
	res := v.log.Produce(context.Background(), []stream.ProduceBatch{{Topic: "orders", Partition: partition, Records: data}})
	if res[0].Err != nil {
		t.Fatal(res[0].Err)
	}
}

func (v *dlqEnv) createDLQ(t *testing.T, name string, partitions int32, enable bool) {
	t.Helper()
	cfg := map[string]string{}
	if enable {
		cfg[TopicConfigDLQEnable] = "true"
	}
	if _, err := v.log.CreateTopic(context.Background(), name, partitions, cfg, false); err != nil {
		t.Fatal(err)
	}
}

// writer returns a writer with Kafka's default rules unless o has others.
func (v *dlqEnv) writer(o DeadLetterOptions) *DeadLetters {
	if o.Rules == (config.DeadLetterConfig{}) {
		o.Rules = config.DefaultDeadLetters()
	}
	o.Client = v.cli
	if o.Log == nil {
		o.Log = v.log
	}
	return NewDeadLetters(o)
}

func (v *dlqEnv) key(partition int32) Key {
	return Key{Group: "g1", Topic: v.source.ID, Partition: partition}
}

// dlqRecord is one record read back from a dead-letter topic.
type dlqRecord struct {
	partition int32
	stream.DecodedBatch
	stream.DecodedRecord
}

// readTopic returns every record of every partition of topic.
func (v *dlqEnv) readTopic(t *testing.T, topic string) []dlqRecord {
	t.Helper()
	ti, ok := v.log.Topic(topic)
	if !ok {
		t.Fatalf("topic %s does not exist", topic)
	}
	var out []dlqRecord
	for p := range ti.Partitions {
		ps, err := v.log.State(topic, p)
		if err != nil {
			t.Fatal(err)
		}
		for off := ps.LogStartOffset; off < ps.HighWatermark; {
			res, err := v.log.Fetch(context.Background(), stream.FetchPartition{TopicID: ti.ID, Partition: p, Offset: off, MaxBytes: 1 << 20})
			if err != nil {
				t.Fatal(err)
			}
			bs, err := stream.DecodeBatches(res.Records)
			if err != nil || len(bs) == 0 {
				t.Fatalf("fetch %s/%d at %d: %d batches, %v", topic, p, off, len(bs), err)
			}
			for _, b := range bs {
				for _, r := range b.Records {
					if r.Offset >= off {
						out = append(out, dlqRecord{partition: p, DecodedBatch: b, DecodedRecord: r})
					}
				}
				off = b.LastOffset + 1
			}
		}
	}
	return out
}

func header(r stream.DecodedRecord, key string) (string, bool) {
	for _, h := range r.Headers {
		if h.Key == key {
			return string(h.Value), true
		}
	}
	return "", false
}

// letterOffsets lists the source offsets the dead-letter records name, in
// topic order.
func letterOffsets(t *testing.T, recs []dlqRecord) []int64 {
	t.Helper()
	var out []int64
	for _, r := range recs {
		v, _ := header(r.DecodedRecord, HeaderDLQOffset)
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			t.Fatalf("bad %s header %q", HeaderDLQOffset, v)
		}
		out = append(out, n)
	}
	return out
}

func dlqGroup(topic string, copyRecord bool) config.ShareGroup {
	g := config.ResolveShareGroup(nil)
	g.DLQTopic, g.DLQCopyRecord = topic, copyRecord
	return g
}

var errCrash = errors.New("crash")

// A Write that dies after its batch reached the log but before it recorded
// that, then Write again (on this broker and on another one, with the same
// letters and with more): every letter is in the topic once.
func TestDLQWriteExactlyOnceAfterCrash(t *testing.T) {
	v := newDLQEnv(t, 1)
	v.produceSource(t, 0, 10)
	v.createDLQ(t, "dlq.orders", 1, true)
	ctx := context.Background()
	cfg := dlqGroup("dlq.orders", false)
	letters := []DeadLetter{{Offset: 3, DeliveryCount: 5, Reason: ReasonDeliveryCountExceeded}, {Offset: 1, DeliveryCount: 1, Reason: ReasonRejected}}

	reg := prometheus.NewRegistry()
	crashes := 1
	w := v.writer(DeadLetterOptions{Metrics: reg, afterProduce: func() error {
		if crashes > 0 {
			crashes--
			return errCrash
		}
		return nil
	}})
	if err := w.Write(ctx, v.key(0), cfg, letters); !errors.Is(err, errCrash) {
		t.Fatalf("first Write: %v, want the crash", err)
	}
	if got := letterOffsets(t, v.readTopic(t, "dlq.orders")); len(got) != 2 {
		t.Fatalf("after the crash the topic holds %v, want the batch (2 letters)", got)
	}
	// The retry, then the engine calling again with the same letters (it
	// crashed before forgetting them), then from another broker's writer,
	// then with one more letter.
	if err := w.Write(ctx, v.key(0), cfg, letters); err != nil {
		t.Fatal(err)
	}
	if err := w.Write(ctx, v.key(0), cfg, letters); err != nil {
		t.Fatal(err)
	}
	other := v.writer(DeadLetterOptions{Metrics: reg})
	if err := other.Write(ctx, v.key(0), cfg, letters); err != nil {
		t.Fatal(err)
	}
	more := append(letters, DeadLetter{Offset: 7, DeliveryCount: 2, Reason: ReasonRejected})
	if err := other.Write(ctx, v.key(0), cfg, more); err != nil {
		t.Fatal(err)
	}
	got := letterOffsets(t, v.readTopic(t, "dlq.orders"))
	if fmt.Sprint(got) != "[1 3 7]" {
		t.Fatalf("dead-letter topic holds letters %v, want [1 3 7] once each", got)
	}
	if n := testutil.ToFloat64(w.written.WithLabelValues("g1")); n != 3 {
		t.Fatalf("runnel_share_dead_letters_written_total{group=g1} = %v, want 3", n)
	}
}

// After Forget (the share state was deleted or reset) the same letter is
// a new dead letter and is written again; other groups keep their state.
func TestDLQForget(t *testing.T) {
	v := newDLQEnv(t, 1)
	v.produceSource(t, 0, 3)
	v.createDLQ(t, "dlq.orders", 1, true)
	ctx := context.Background()
	cfg := dlqGroup("dlq.orders", false)
	w := v.writer(DeadLetterOptions{})
	letter := []DeadLetter{{Offset: 1, DeliveryCount: 1, Reason: ReasonRejected}}
	other := Key{Group: "g2", Topic: v.source.ID}
	for _, k := range []Key{v.key(0), other} {
		if err := w.Write(ctx, k, cfg, letter); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Forget(ctx, "g1", &v.source.ID); err != nil {
		t.Fatal(err)
	}
	for _, k := range []Key{v.key(0), other} {
		if err := w.Write(ctx, k, cfg, letter); err != nil {
			t.Fatal(err)
		}
	}
	if got := letterOffsets(t, v.readTopic(t, "dlq.orders")); fmt.Sprint(got) != "[1 1 1]" {
		t.Fatalf("dead-letter topic holds %v, want g1's letter twice and g2's once", got)
	}
	if err := w.ForgetPartition(ctx, other); err != nil {
		t.Fatal(err)
	}
	if st := v.state(t, w, other); st.PID != -1 || len(st.Done) != 0 {
		t.Fatalf("state after ForgetPartition: %+v", st)
	}
}

// failOnce fails the first produce with a retriable error, as a broker
// that lost its etcd session would.
type failOnce struct {
	DeadLetterLog
	failed bool
}

func (f *failOnce) Produce(ctx context.Context, batches []stream.ProduceBatch) []stream.ProduceResult {
	if !f.failed {
		f.failed = true
		return []stream.ProduceResult{{Err: stream.ErrTimeout}}
	}
	return f.DeadLetterLog.Produce(ctx, batches)
}

// A batch retried hours after it was planned is stamped when it is sent,
// so the topic's timestamp bounds do not refuse it for ever.
func TestDLQRetryLongAfter(t *testing.T) {
	var mu sync.Mutex
	skew := time.Duration(0)
	now := func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		return time.Now().Add(skew)
	}
	v := newDLQEnvWith(t, 1, stream.Options{Now: now})
	v.produceSource(t, 0, 3)
	if _, err := v.log.CreateTopic(context.Background(), "dlq.orders", 1,
		map[string]string{TopicConfigDLQEnable: "true", "message.timestamp.before.max.ms": "3600000"}, false); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	w := v.writer(DeadLetterOptions{Log: &failOnce{DeadLetterLog: v.log}, Now: now})
	letter := []DeadLetter{{Offset: 2, DeliveryCount: 1, Reason: ReasonRejected}}
	if err := w.Write(ctx, v.key(0), dlqGroup("dlq.orders", false), letter); !errors.Is(err, stream.ErrTimeout) {
		t.Fatalf("first Write: %v, want the timeout", err)
	}
	mu.Lock()
	skew = 2 * time.Hour
	mu.Unlock()
	if err := w.Write(ctx, v.key(0), dlqGroup("dlq.orders", false), letter); err != nil {
		t.Fatal(err)
	}
	if got := letterOffsets(t, v.readTopic(t, "dlq.orders")); fmt.Sprint(got) != "[2]" {
		t.Fatalf("dead-letter topic holds %v, want [2]", got)
	}
}

// Concurrent writers of one share partition (two brokers during a leader
// move) write each letter once.
func TestDLQConcurrentWritersWriteOnce(t *testing.T) {
	v := newDLQEnv(t, 1)
	v.produceSource(t, 0, 20)
	v.createDLQ(t, "dlq.orders", 1, true)
	cfg := dlqGroup("dlq.orders", false)
	var letters []DeadLetter
	for i := range 20 {
		letters = append(letters, DeadLetter{Offset: int64(i), DeliveryCount: 1, Reason: ReasonRejected})
	}
	var wg sync.WaitGroup
	errs := make([]error, 3)
	for i := range errs {
		w := v.writer(DeadLetterOptions{MaxBatchLetters: 3})
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = w.Write(context.Background(), v.key(0), cfg, letters)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	got := letterOffsets(t, v.readTopic(t, "dlq.orders"))
	seen := map[int64]int{}
	for _, o := range got {
		seen[o]++
	}
	if len(got) != 20 || len(seen) != 20 {
		t.Fatalf("dead-letter topic holds %d records for %d letters: %v", len(got), len(seen), got)
	}
}

// forgetting is a log whose sequencer has forgotten some producer ids (as
// after a day without batches): their batches are refused.
type forgetting struct {
	DeadLetterLog
	mu        sync.Mutex
	forgotten map[int64]bool
	refused   int
}

func (f *forgetting) forget(pid int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.forgotten == nil {
		f.forgotten = map[int64]bool{}
	}
	f.forgotten[pid] = true
}

func (f *forgetting) Produce(ctx context.Context, batches []stream.ProduceBatch) []stream.ProduceResult {
	for _, b := range batches {
		bs, err := stream.DecodeBatches(b.Records)
		if err != nil || len(bs) != 1 {
			panic(fmt.Sprintf("undecodable batch: %v", err))
		}
		f.mu.Lock()
		gone := f.forgotten[bs[0].ProducerID]
		if gone {
			f.refused++
		}
		f.mu.Unlock()
		if gone {
			return []stream.ProduceResult{{Err: fmt.Errorf("%w: producer id %d", stream.ErrUnknownProducerID, bs[0].ProducerID)}}
		}
	}
	return f.DeadLetterLog.Produce(ctx, batches)
}

func (v *dlqEnv) state(t *testing.T, w *DeadLetters, key Key) dlqState {
	t.Helper()
	st, _, err := w.load(context.Background(), w.etcdKey(key))
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// The sequencer forgets the producer id while a batch that did land is in
// flight: the retry finds the batch in the log and writes nothing; a batch
// that had not landed is written once under a new producer id.
func TestDLQExpiredProducer(t *testing.T) {
	v := newDLQEnv(t, 1)
	v.produceSource(t, 0, 10)
	v.createDLQ(t, "dlq.orders", 1, true)
	ctx := context.Background()
	cfg := dlqGroup("dlq.orders", false)
	flog := &forgetting{DeadLetterLog: v.log}
	crash := true
	w := v.writer(DeadLetterOptions{Log: flog, afterProduce: func() error {
		if crash {
			crash = false
			return errCrash
		}
		return nil
	}})
	first := []DeadLetter{{Offset: 2, DeliveryCount: 1, Reason: ReasonRejected}}
	if err := w.Write(ctx, v.key(0), cfg, first); !errors.Is(err, errCrash) {
		t.Fatalf("first Write: %v, want the crash", err)
	}
	pid := v.state(t, w, v.key(0)).PID
	flog.forget(pid)
	if err := w.Write(ctx, v.key(0), cfg, first); err != nil {
		t.Fatal(err)
	}
	if got := letterOffsets(t, v.readTopic(t, "dlq.orders")); fmt.Sprint(got) != "[2]" {
		t.Fatalf("after the retry with a forgotten producer id the topic holds %v, want [2]", got)
	}
	// A batch planned with a producer id the sequencer forgot before it
	// was ever sent: not in the log, so it goes out under a new id.
	st := v.state(t, w, v.key(0))
	if st.PID != -1 {
		t.Fatalf("the forgotten producer id %d is still in use", st.PID)
	}
	if err := w.Write(ctx, v.key(0), cfg, []DeadLetter{{Offset: 4, DeliveryCount: 1, Reason: ReasonRejected}}); err != nil {
		t.Fatal(err)
	}
	pid2 := v.state(t, w, v.key(0)).PID
	flog.forget(pid2)
	if err := w.Write(ctx, v.key(0), cfg, []DeadLetter{{Offset: 5, DeliveryCount: 1, Reason: ReasonRejected}}); err != nil {
		t.Fatal(err)
	}
	if got := letterOffsets(t, v.readTopic(t, "dlq.orders")); fmt.Sprint(got) != "[2 4 5]" {
		t.Fatalf("dead-letter topic holds %v, want [2 4 5]", got)
	}
	if st := v.state(t, w, v.key(0)); st.PID == pid || st.PID == pid2 || st.PID < 0 {
		t.Fatalf("producer id after the expiry is %d (forgotten: %d, %d)", st.PID, pid, pid2)
	}
	if flog.refused != 2 {
		t.Fatalf("%d batches refused, want 2", flog.refused)
	}
}

// The context headers of every dead letter, and the payload only when the
// group copies records (its own __dlq.errors.* headers left out).
func TestDLQHeadersAndCopy(t *testing.T) {
	for _, copyRecord := range []bool{false, true} {
		t.Run(fmt.Sprintf("copy=%v", copyRecord), func(t *testing.T) {
			v := newDLQEnv(t, 3)
			v.produceSource(t, 2, 5)
			v.createDLQ(t, "dlq.orders", 2, true)
			w := v.writer(DeadLetterOptions{})
			letters := []DeadLetter{{Offset: 1, DeliveryCount: 1, Reason: ReasonRejected}, {Offset: 4, DeliveryCount: 5, Reason: ReasonDeliveryCountExceeded}}
			before := time.Now().UnixMilli()
			if err := w.Write(context.Background(), v.key(2), dlqGroup("dlq.orders", copyRecord), letters); err != nil {
				t.Fatal(err)
			}
			recs := v.readTopic(t, "dlq.orders")
			if len(recs) != 2 {
				t.Fatalf("%d dead letters, want 2", len(recs))
			}
			wantMsg := []string{"Offset rejected by client.", "Offset delivery count exceeded the threshold."}
			for i, r := range recs {
				if r.partition != 0 {
					t.Errorf("letter %d in dead-letter partition %d, want 2 %% 2 = 0", i, r.partition)
				}
				if r.Timestamp < before {
					t.Errorf("letter %d timestamp %d is before the write (%d)", i, r.Timestamp, before)
				}
				want := []kmsg.Header{
					{Key: HeaderDLQTopic, Value: []byte("orders")},
					{Key: HeaderDLQPartition, Value: []byte("2")},
					{Key: HeaderDLQOffset, Value: []byte(strconv.FormatInt(letters[i].Offset, 10))},
					{Key: HeaderDLQGroup, Value: []byte("g1")},
					{Key: HeaderDLQDeliveryCount, Value: []byte(strconv.Itoa(int(letters[i].DeliveryCount)))},
					{Key: HeaderDLQMessage, Value: []byte(wantMsg[i])},
				}
				wantKey, wantValue := "", ""
				if copyRecord {
					want = append(want, kmsg.Header{Key: "h", Value: []byte(strconv.FormatInt(letters[i].Offset, 10))})
					wantKey, wantValue = fmt.Sprintf("k%d", letters[i].Offset), fmt.Sprintf("v%d", letters[i].Offset)
				}
				if fmt.Sprintf("%q", r.Headers) != fmt.Sprintf("%q", want) {
					t.Errorf("letter %d headers\n got %q\nwant %q", i, r.Headers, want)
				}
				if copyRecord {
					if string(r.Key) != wantKey || string(r.Value) != wantValue {
						t.Errorf("letter %d key/value %q/%q, want %q/%q", i, r.Key, r.Value, wantKey, wantValue)
					}
				} else if r.Key != nil || r.Value != nil {
					t.Errorf("metadata-only letter %d has key %q value %q, want null", i, r.Key, r.Value)
				}
			}
		})
	}
}

// A copied letter whose original left the log goes with its headers alone.
func TestDLQCopyOriginalGone(t *testing.T) {
	v := newDLQEnv(t, 1)
	v.produceSource(t, 0, 5)
	v.createDLQ(t, "dlq.orders", 1, true)
	ctx := context.Background()
	if _, err := v.log.DeleteRecords(ctx, "orders", 0, 3); err != nil {
		t.Fatal(err)
	}
	w := v.writer(DeadLetterOptions{})
	letters := []DeadLetter{{Offset: 1, DeliveryCount: 1, Reason: ReasonRejected}, {Offset: 3, DeliveryCount: 1, Reason: ReasonRejected}}
	if err := w.Write(ctx, v.key(0), dlqGroup("dlq.orders", true), letters); err != nil {
		t.Fatal(err)
	}
	recs := v.readTopic(t, "dlq.orders")
	if len(recs) != 2 || recs[0].Value != nil || string(recs[1].Value) != "v3" {
		t.Fatalf("got %d letters; first value %q (want null: deleted), second %q (want v3)", len(recs), recs[0].Value, recs[1].Value)
	}
}

// The rules a dead-letter topic must pass, in Kafka's order, and
// auto-creation.
func TestDLQTopicRules(t *testing.T) {
	v := newDLQEnv(t, 1)
	v.produceSource(t, 0, 3)
	v.createDLQ(t, "dlq.off", 1, false)
	v.createDLQ(t, "dead.orders", 1, true)
	ctx := context.Background()
	letters := []DeadLetter{{Offset: 0, DeliveryCount: 1, Reason: ReasonRejected}}
	rules := func(prefix string, autoCreate bool) DeadLetterOptions {
		return DeadLetterOptions{Rules: config.DeadLetterConfig{TopicPrefix: prefix, AutoCreateTopics: autoCreate}}
	}
	cases := []struct {
		name  string
		opts  DeadLetterOptions
		topic string
		want  error
	}{
		{"internal name", rules("dlq.", true), "__dlq.x", ErrDeadLetterTopicRefused},
		{"not enabled on the topic", rules("dlq.", false), "dlq.off", ErrDeadLetterTopicRefused},
		{"no prefix", rules("dlq.", true), "orders-dead", ErrDeadLetterTopicRefused},
		{"existing topic without the prefix", rules("dlq.", false), "dead.orders", ErrDeadLetterTopicRefused},
		{"another prefix", rules("dead.", false), "dead.orders", nil},
		{"any name allowed", rules("", true), "orders-dead", nil},
		{"missing, no auto create", rules("dlq.", false), "dlq.missing", ErrDeadLetterTopicMissing},
		{"missing, auto create", rules("dlq.", true), "dlq.created", nil},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := v.writer(c.opts)
			key := Key{Group: fmt.Sprintf("g%d", i), Topic: v.source.ID}
			err := w.Write(ctx, key, dlqGroup(c.topic, false), letters)
			if !errors.Is(err, c.want) || (c.want == nil) != (err == nil) {
				t.Fatalf("Write to %s: %v, want %v", c.topic, err, c.want)
			}
			ti, exists := v.log.Topic(c.topic)
			if c.want != nil {
				if exists && ti.Configs[TopicConfigDLQEnable] == "true" {
					if n := len(v.readTopic(t, c.topic)); n != 0 {
						t.Fatalf("refused write left %d records in %s", n, c.topic)
					}
				}
				if !exists && c.topic != "dlq.missing" && c.topic != "__dlq.x" && c.topic != "orders-dead" {
					t.Fatalf("%s vanished", c.topic)
				}
				if exists && (c.topic == "__dlq.x" || c.topic == "orders-dead" || c.topic == "dlq.missing") {
					t.Fatalf("refused write created %s", c.topic)
				}
				return
			}
			if !exists || ti.Configs[TopicConfigDLQEnable] != "true" {
				t.Fatalf("topic %s: exists %v, configs %v", c.topic, exists, ti.Configs)
			}
			if got := letterOffsets(t, v.readTopic(t, c.topic)); fmt.Sprint(got) != "[0]" {
				t.Fatalf("%s holds %v, want [0]", c.topic, got)
			}
		})
	}
	// A missing topic keeps the letters: once it is created they are
	// written.
	w := v.writer(DeadLetterOptions{})
	key := Key{Group: "late", Topic: v.source.ID}
	if err := w.Write(ctx, key, dlqGroup("dlq.late", false), letters); !errors.Is(err, ErrDeadLetterTopicMissing) {
		t.Fatalf("Write to a missing topic: %v", err)
	}
	v.createDLQ(t, "dlq.late", 1, true)
	if err := w.Write(ctx, key, dlqGroup("dlq.late", false), letters); err != nil {
		t.Fatal(err)
	}
	if got := letterOffsets(t, v.readTopic(t, "dlq.late")); fmt.Sprint(got) != "[0]" {
		t.Fatalf("dlq.late holds %v, want [0]", got)
	}
}

// A letter written and still passed by the engine (its calls keep failing
// after they start other batches) stays known as written, however many
// calls go by; one no longer passed is forgotten after doneGens calls.
func TestDLQDoneLettersRenewed(t *testing.T) {
	l := func(off int64) DeadLetter { return DeadLetter{Offset: off, DeliveryCount: 1, Reason: ReasonRejected} }
	st := dlqState{Gen: 1}
	st.markDone([]DeadLetter{l(1), l(5)}, nil)
	for i := int64(0); i < 3*doneGens; i++ {
		st.Gen++
		st.touch([]DeadLetter{l(1), l(100 + i)})
		st.markDone([]DeadLetter{l(100 + i)}, nil)
	}
	if !st.isDone(l(1)) {
		t.Fatal("a letter still passed was forgotten")
	}
	if st.isDone(l(5)) || st.isDone(l(100)) {
		t.Fatal("letters no longer passed are still remembered")
	}
	if len(st.Done) > doneGens+2 {
		t.Fatalf("%d runs remembered", len(st.Done))
	}
}

// failEveryOther fails every second produce, after the first.
type failEveryOther struct {
	DeadLetterLog
	n int
}

func (f *failEveryOther) Produce(ctx context.Context, batches []stream.ProduceBatch) []stream.ProduceResult {
	f.n++
	if f.n%2 == 0 {
		return []stream.ProduceResult{{Err: stream.ErrTimeout}}
	}
	return f.DeadLetterLog.Produce(ctx, batches)
}

// Many calls that each finish one batch and fail the next, with the
// engine passing every letter again each time: none is written twice.
func TestDLQManyFailingCalls(t *testing.T) {
	v := newDLQEnv(t, 1)
	v.produceSource(t, 0, 30)
	v.createDLQ(t, "dlq.orders", 1, true)
	ctx := context.Background()
	cfg := dlqGroup("dlq.orders", false)
	flaky := &failEveryOther{DeadLetterLog: v.log}
	w := v.writer(DeadLetterOptions{Log: flaky, MaxBatchLetters: 1})
	var pending []DeadLetter
	for i := range 3 * doneGens {
		pending = append(pending, DeadLetter{Offset: int64(i), DeliveryCount: 1, Reason: ReasonRejected})
		if err := w.Write(ctx, v.key(0), cfg, pending); err != nil && !errors.Is(err, stream.ErrTimeout) {
			t.Fatal(err)
		}
	}
	// The engine goes on calling until a call returns nil.
	for range 4 * doneGens {
		if err := w.Write(ctx, v.key(0), cfg, pending); err == nil {
			break
		}
	}
	got := letterOffsets(t, v.readTopic(t, "dlq.orders"))
	seen := map[int64]int{}
	for _, o := range got {
		seen[o]++
	}
	if len(got) != len(pending) || len(seen) != len(pending) {
		t.Fatalf("%d letters written for %d: %v", len(got), len(pending), got)
	}
}

// A letter written by one broker that died before removing it from the
// share partition's state stays pending there; the broker that takes the
// partition over hands it to the writer only after a grace, and writes its
// own letters meanwhile. The writer must still know the letter is written
// however many of those calls go by: it keeps a written letter as long as
// the share state still holds it.
func TestDLQLetterPendingInStateNotForgotten(t *testing.T) {
	v := newDLQEnv(t, 1)
	v.produceSource(t, 0, 40)
	v.createDLQ(t, "dlq.orders", 1, true)
	ctx := context.Background()
	cfg := dlqGroup("dlq.orders", false)
	l := func(off int64) DeadLetter { return DeadLetter{Offset: off, DeliveryCount: 1, Reason: ReasonRejected} }
	// The share state, as the dead broker left it: letter 1 pending.
	st := NewState(0)
	st.Letters = []DeadLetter{l(1)}
	if _, err := v.cli.Put(ctx, newStore(v.cli, "/runnel", nil).key(v.key(0)), string(st.Encode())); err != nil {
		t.Fatal(err)
	}
	w := v.writer(DeadLetterOptions{MaxBatchLetters: 1})
	if err := w.Write(ctx, v.key(0), cfg, []DeadLetter{l(1)}); err != nil {
		t.Fatal(err)
	}
	// The other broker's own letters, one call each, during the grace.
	for i := int64(0); i < 3*doneGens; i++ {
		if err := w.Write(ctx, v.key(0), cfg, []DeadLetter{l(5 + i)}); err != nil {
			t.Fatal(err)
		}
	}
	// After the grace it hands the dead broker's letter over.
	if err := w.Write(ctx, v.key(0), cfg, []DeadLetter{l(1)}); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, off := range letterOffsets(t, v.readTopic(t, "dlq.orders")) {
		if off == 1 {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("letter 1 is %d times in the dead-letter topic, want once", n)
	}
}
