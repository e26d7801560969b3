// Package retrytest is the client side of the retry contract (README,
// "Retries and dead letters") written with franz-go, as any application
// would write it, for the tests that show the contract works end to end.
package retrytest

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"sync/atomic"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/runnel-dev/runnel/internal/retry"
)

// Handler processes one record; an error sends it to the next retry level.
type Handler func(r *kgo.Record) error

// Options configure a Worker.
type Options struct {
	Brokers []string
	Group   string
	// Topics are the group's own topics; the retry topics are added.
	Topics []string
	// Levels is the number of retry levels (errors.retry.delays.ms).
	Levels int
	// DeadLetterTopic receives records failing at the last level.
	DeadLetterTopic string
	Handle          Handler
	// Ordered follows the ordered-mode rules (errors.retry.ordered).
	Ordered bool
	// Extra client options (tests: fetch wait, logging).
	Opts []kgo.Opt
}

// Worker is one consumer of the group following the retry contract.
type Worker struct {
	o  Options
	cl *kgo.Client

	// Ordered mode: the parked-keys table as read from
	// retry.<group>.parked, and the records this worker parked that the
	// table does not reflect yet.
	table       *parkedView
	mine        []ownPark
	done        map[string]map[int64]bool // origin offsets this worker finished, by table key
	needBarrier atomic.Bool
}

// ownPark is a record this worker parked: its origin key and offset, and
// where it was written.
type ownPark struct {
	key       string // retry.ParkKey
	offset    int64  // origin offset
	topic     string // retry topic
	partition int32
	at        int64 // offset in the retry topic
}

// NewWorker joins the group: its topics plus every retry topic of the
// group (a regex), committing by hand after each polled batch.
func NewWorker(o Options) (*Worker, error) {
	topics := []string{}
	for _, t := range o.Topics {
		topics = append(topics, "^"+regexp.QuoteMeta(t)+"$")
	}
	topics = append(topics, "^"+regexp.QuoteMeta("retry."+o.Group+".")+"[0-9]+$")
	opts := append([]kgo.Opt{
		kgo.SeedBrokers(o.Brokers...),
		kgo.ConsumerGroup(o.Group),
		kgo.ConsumeTopics(topics...),
		kgo.ConsumeRegex(),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
	}, o.Opts...)
	w := &Worker{o: o}
	if o.Ordered {
		// A partition taken over may hold records of keys another
		// consumer parked: wait for the table to cover them first.
		opts = append(opts, kgo.OnPartitionsAssigned(func(context.Context, *kgo.Client, map[string][]int32) {
			w.needBarrier.Store(true)
		}))
		v, err := newParkedView(o)
		if err != nil {
			return nil, err
		}
		w.table = v
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		if w.table != nil {
			w.table.close()
		}
		return nil, err
	}
	w.cl = cl
	return w, nil
}

// Close leaves the group.
func (w *Worker) Close() {
	w.cl.Close()
	if w.table != nil {
		w.table.close()
	}
}

// Attempt is a record's runnel.retry.attempt header (0 when absent).
func Attempt(r *kgo.Record) int {
	n, _ := strconv.Atoi(Header(r, retry.HeaderAttempt))
	return n
}

// Header returns the value of r's last header named key ("" if none).
func Header(r *kgo.Record, key string) string {
	v := ""
	for _, h := range r.Headers {
		if h.Key == key {
			v = string(h.Value)
		}
	}
	return v
}

// Run polls and processes until ctx ends; it returns ctx's error or the
// first produce or commit error.
func (w *Worker) Run(ctx context.Context) error {
	for {
		fs := w.cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			w.cl.AllowRebalance()
			return err
		}
		var ferr error
		fs.EachError(func(topic string, p int32, err error) {
			if !errors.Is(err, context.Canceled) && ferr == nil {
				ferr = fmt.Errorf("fetch %s/%d: %w", topic, p, err)
			}
		})
		if ferr != nil {
			w.cl.AllowRebalance()
			return ferr
		}
		if w.table != nil && w.needBarrier.Swap(false) {
			if err := w.table.barrier(ctx, w.cl); err != nil {
				w.cl.AllowRebalance()
				return err
			}
		}
		recs := fs.Records()
		for _, r := range recs {
			if err := w.process(ctx, r); err != nil {
				w.cl.AllowRebalance()
				return err
			}
		}
		// Every failed record is in its retry topic (acknowledged) before
		// the offsets that pass it are committed.
		if len(recs) > 0 {
			if err := w.cl.CommitRecords(ctx, recs...); err != nil {
				w.cl.AllowRebalance()
				return fmt.Errorf("commit: %w", err)
			}
		}
		w.cl.AllowRebalance()
	}
}

// process handles one record and, when it fails, moves it to the next
// retry level or the dead-letter topic. In ordered mode a record of a key
// parked before it is parked behind it instead, and a retried record whose
// key was discarded up to its offset goes to the dead-letter topic.
func (w *Worker) process(ctx context.Context, r *kgo.Record) error {
	n := Attempt(r)
	var key string
	var origin int64
	if w.table != nil && r.Key != nil {
		key, origin = originOf(r)
		pk, mine := w.table.lookup(key), w.parkedByMe(key)
		w.forgetDone(key, pk)
		if n > 0 || Header(r, retry.HeaderParkedBehind) != "" {
			if origin <= pk.Discarded {
				return w.finish(ctx, key, origin, Forward(r, w.o.DeadLetterTopic, n, "discarded"))
			}
		}
		holds := func(o int64) bool { return o < origin && !w.done[key][o] }
		if slices.ContainsFunc(pk.Parked, holds) ||
			slices.ContainsFunc(mine, func(o int64) bool { return holds(o) && o > pk.Released && o > pk.Discarded }) {
			f := Forward(r, retry.LevelTopic(w.o.Group, 1), n, "parked behind an earlier record of its key")
			f.Headers = append(f.Headers, kgo.RecordHeader{Key: retry.HeaderParkedBehind, Value: []byte("true")})
			return w.park(ctx, f, key, origin)
		}
	}
	herr := w.o.Handle(r)
	if herr == nil {
		return w.finish(ctx, key, origin, nil)
	}
	if n >= w.o.Levels {
		return w.finish(ctx, key, origin, Forward(r, w.o.DeadLetterTopic, n, herr.Error()))
	}
	f := Forward(r, retry.LevelTopic(w.o.Group, n+1), n+1, herr.Error())
	if key == "" {
		return w.produce(ctx, f)
	}
	return w.park(ctx, f, key, origin)
}

// finish ends a record for good: processed, or written to the dead-letter
// topic (dead non-nil). In ordered mode its origin offset then holds its key
// back no longer, even while the table still lists it (the table drops it
// once the group's offset passes its retry record).
func (w *Worker) finish(ctx context.Context, key string, origin int64, dead *kgo.Record) error {
	if dead != nil {
		if err := w.produce(ctx, dead); err != nil {
			return err
		}
	}
	if key != "" {
		if w.done == nil {
			w.done = map[string]map[int64]bool{}
		}
		if w.done[key] == nil {
			w.done[key] = map[int64]bool{}
		}
		w.done[key][origin] = true
	}
	return nil
}

// forgetDone drops the finished offsets of key the table no longer lists.
func (w *Worker) forgetDone(key string, pk retry.ParkedKey) {
	for o := range w.done[key] {
		if !slices.Contains(pk.Parked, o) && !slices.ContainsFunc(w.mine, func(p ownPark) bool { return p.key == key && p.offset == o }) {
			delete(w.done[key], o)
		}
	}
	if len(w.done[key]) == 0 {
		delete(w.done, key)
	}
}

// park produces a record to a retry topic and remembers it until the
// table reflects its place.
func (w *Worker) park(ctx context.Context, f *kgo.Record, key string, origin int64) error {
	if err := w.produce(ctx, f); err != nil {
		return err
	}
	w.mine = append(w.mine, ownPark{key: key, offset: origin, topic: f.Topic, partition: f.Partition, at: f.Offset})
	return nil
}

// parkedByMe returns the origin offsets of key this worker parked that the
// table may not show yet (it forgets those the table's progress covers).
func (w *Worker) parkedByMe(key string) []int64 {
	prog := w.table.progress()
	w.mine = slices.DeleteFunc(w.mine, func(p ownPark) bool { return prog.Covers(p.topic, p.partition, p.at) })
	var out []int64
	for _, p := range w.mine {
		if p.key == key {
			out = append(out, p.offset)
		}
	}
	return out
}

// originOf returns a record's table key and origin offset: its own place,
// or the origin headers of a retried record.
func originOf(r *kgo.Record) (string, int64) {
	o := retry.Origin{Topic: r.Topic, Partition: r.Partition, Key: r.Key}
	off := r.Offset
	if t := Header(r, retry.HeaderTopic); t != "" {
		p, _ := strconv.Atoi(Header(r, retry.HeaderPartition))
		off, _ = strconv.ParseInt(Header(r, retry.HeaderOffset), 10, 64)
		o.Topic, o.Partition = t, int32(p)
	}
	return retry.ParkKey(o), off
}

func (w *Worker) produce(ctx context.Context, r *kgo.Record) error {
	if err := w.cl.ProduceSync(ctx, r).FirstErr(); err != nil {
		return fmt.Errorf("produce to %s: %w", r.Topic, err)
	}
	return nil
}

// Forward returns the copy of r to produce to topic: same key, value and
// headers, the attempt header set to attempt, the origin headers added
// when r is the original (a retried record keeps its origin) and the error
// text replaced. Its timestamp is left to the broker (retry topics use
// LogAppendTime).
func Forward(r *kgo.Record, topic string, attempt int, errText string) *kgo.Record {
	out := &kgo.Record{Topic: topic, Key: r.Key, Value: r.Value}
	origin := Header(r, retry.HeaderTopic) != ""
	for _, h := range r.Headers {
		switch h.Key {
		case retry.HeaderAttempt, retry.HeaderError, retry.HeaderParkedBehind:
			continue
		}
		out.Headers = append(out.Headers, h)
	}
	if !origin {
		out.Headers = append(out.Headers,
			kgo.RecordHeader{Key: retry.HeaderTopic, Value: []byte(r.Topic)},
			kgo.RecordHeader{Key: retry.HeaderPartition, Value: []byte(strconv.Itoa(int(r.Partition)))},
			kgo.RecordHeader{Key: retry.HeaderOffset, Value: []byte(strconv.FormatInt(r.Offset, 10))})
	}
	out.Headers = append(out.Headers,
		kgo.RecordHeader{Key: retry.HeaderAttempt, Value: []byte(strconv.Itoa(attempt))},
		kgo.RecordHeader{Key: retry.HeaderError, Value: []byte(errText)})
	return out
}
