// Package retrytest is the client side of the retry contract (README,
// "Retries and dead letters") written with franz-go, as any application
// would write it, for the tests that show the contract works end to end.
package retrytest

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"

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
	// Extra client options (tests: fetch wait, logging).
	Opts []kgo.Opt
}

// Worker is one consumer of the group following the retry contract.
type Worker struct {
	o  Options
	cl *kgo.Client
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
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, err
	}
	return &Worker{o: o, cl: cl}, nil
}

// Close leaves the group.
func (w *Worker) Close() { w.cl.Close() }

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
// retry level or the dead-letter topic.
func (w *Worker) process(ctx context.Context, r *kgo.Record) error {
	herr := w.o.Handle(r)
	if herr == nil {
		return nil
	}
	n := Attempt(r)
	target := w.o.DeadLetterTopic
	if n < w.o.Levels {
		target = retry.LevelTopic(w.o.Group, n+1)
		n++
	}
	return w.produce(ctx, Forward(r, target, n, herr.Error()))
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
		case retry.HeaderAttempt, retry.HeaderError:
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
