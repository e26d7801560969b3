package cli

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// e2eHeaderLen is the prefix of every e2e bench record: 8 bytes of run id
// (so records of other writers are ignored) and 8 bytes of send time in
// Unix nanoseconds.
const e2eHeaderLen = 16

// drainGrace bounds how long producers flush and the e2e consumer keeps
// reading after --duration ends.
const drainGrace = 15 * time.Second

type benchMode string

const (
	benchProduce benchMode = "produce"
	benchConsume benchMode = "consume"
	benchE2E     benchMode = "e2e"
)

type benchOptions struct {
	topic       string
	partitions  int32
	recordSize  int
	duration    time.Duration
	interval    time.Duration
	rate        float64 // MB/s offered in total, 0 = unlimited
	acks        string
	idempotent  bool
	compression string
	producers   int
	linger      time.Duration
	json        bool
}

func newBenchCommand(g *globalOptions) *cobra.Command {
	o := &benchOptions{}
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure produce, consume and end-to-end throughput and latency",
		Long: `Measure throughput (MB/s and records/s, in total and per interval) and latency
percentiles against a running cluster. The topic is created with --partitions
partitions if it does not exist. MB means 10^6 bytes.

  produce  writes for --duration; latency is from the produce call to the ack.
  consume  reads the topic from the beginning for --duration or until it has
           read everything that was in it when the bench started.
  e2e      produces and consumes at once; end-to-end latency is from the
           produce call to the consumer receiving the record (the send time is
           embedded in the record).
  share    compares a share group of N consumers on one partition with a
           consumer group of N consumers on N partitions (see bench share -h).`,
		Example: `  runnel bench produce --duration 30s --record-size 1024 --producers 4
  runnel bench produce --rate 50 --acks 1 --compression zstd
  runnel bench consume --topic runnel-bench
  runnel bench e2e --rate 10 --duration 60s --json > result.json
  runnel bench share --records 200000 --consumers 8`,
	}
	f := cmd.PersistentFlags()
	f.StringVarP(&o.topic, "topic", "t", "runnel-bench", "topic to use (created if missing)")
	f.Int32VarP(&o.partitions, "partitions", "p", 16, "partitions of the topic when it is created")
	f.IntVarP(&o.recordSize, "record-size", "s", 1024, "record value size in bytes")
	f.DurationVarP(&o.duration, "duration", "d", 60*time.Second, "how long to produce (or consume)")
	f.DurationVar(&o.interval, "interval", 5*time.Second, "reporting interval")
	f.Float64Var(&o.rate, "rate", 0, "offered load in MB/s across all producers (0 = as fast as possible)")
	f.DurationVar(&o.linger, "linger", time.Millisecond, "producer linger: how long a partition's batch waits for more records (franz-go's default is 10ms)")
	f.StringVar(&o.acks, "acks", "all", "acknowledgements: all, 1 or 0")
	f.BoolVar(&o.idempotent, "idempotent", true, "use the idempotent producer (needs --acks all)")
	f.StringVarP(&o.compression, "compression", "z", "none", "batch compression: none, gzip, snappy, lz4 or zstd")
	f.IntVar(&o.producers, "producers", 1, "number of concurrent producer clients")
	f.BoolVar(&o.json, "json", false, "print the result as JSON on standard output (progress goes to standard error)")

	for _, mode := range []benchMode{benchProduce, benchConsume, benchE2E} {
		short := map[benchMode]string{
			benchProduce: "Measure produce throughput and produce latency",
			benchConsume: "Measure consume throughput",
			benchE2E:     "Measure produce and consume together, with end-to-end latency",
		}[mode]
		cmd.AddCommand(&cobra.Command{
			Use:     string(mode),
			Short:   short,
			Example: fmt.Sprintf("  runnel bench %s --duration 30s", mode),
			Args:    cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				return runBench(cmd.Context(), g, o, mode, cmd.OutOrStdout(), cmd.ErrOrStderr())
			},
		})
	}
	cmd.AddCommand(newBenchShareCommand(g, o))
	return cmd
}

// validate checks the options for mode.
func (o *benchOptions) validate(mode benchMode) error {
	switch {
	case o.topic == "":
		return errors.New("--topic must not be empty")
	case o.partitions < 1:
		return fmt.Errorf("--partitions %d: want at least 1", o.partitions)
	case o.recordSize < 0:
		return fmt.Errorf("--record-size %d: must not be negative", o.recordSize)
	case mode == benchE2E && o.recordSize < e2eHeaderLen:
		return fmt.Errorf("--record-size %d: e2e needs at least %d bytes to embed the send time", o.recordSize, e2eHeaderLen)
	case o.duration <= 0:
		return fmt.Errorf("--duration %s: must be positive", o.duration)
	case o.interval <= 0:
		return fmt.Errorf("--interval %s: must be positive", o.interval)
	case o.linger < 0:
		return fmt.Errorf("--linger %v: must not be negative", o.linger)
	case o.rate < 0:
		return fmt.Errorf("--rate %g: must not be negative", o.rate)
	case o.producers < 1:
		return fmt.Errorf("--producers %d: want at least 1", o.producers)
	}
	acks, err := parseAcks(o.acks)
	if err != nil {
		return err
	}
	if o.idempotent && acks != kgo.AllISRAcks() {
		return errors.New("--idempotent needs --acks all; add --idempotent=false to use other acks")
	}
	_, err = parseCompression(o.compression)
	return err
}

// recordInterval is the time between two records of one producer that
// keeps the total offered load at rate MB/s; 0 means unpaced.
func recordInterval(rateMBps float64, recordSize, producers int) time.Duration {
	if rateMBps <= 0 {
		return 0
	}
	perProducer := rateMBps * 1e6 / float64(producers) // bytes/s
	return time.Duration(float64(max(recordSize, 1)) / perProducer * float64(time.Second))
}

// flowStats accumulates one direction (produced or consumed) of a bench.
type flowStats struct {
	mu         sync.Mutex
	records    int64
	bytes      int64
	errs       int64
	firstErr   error
	lat        *histogram // produce latency or end-to-end latency
	ivRecords  int64
	ivBytes    int64
	ivLat      *histogram
	hasLatency bool
	last       time.Time // when the last record was counted
}

func newFlowStats(hasLatency bool) *flowStats {
	return &flowStats{lat: newHistogram(), ivLat: newHistogram(), hasLatency: hasLatency}
}

func (s *flowStats) add(n int, lat time.Duration, withLat bool) {
	now := time.Now()
	s.mu.Lock()
	s.last = now
	s.records++
	s.bytes += int64(n)
	s.ivRecords++
	s.ivBytes += int64(n)
	if withLat {
		s.lat.RecordDuration(lat)
		s.ivLat.RecordDuration(lat)
	}
	s.mu.Unlock()
}

func (s *flowStats) fail(err error) {
	s.mu.Lock()
	s.errs++
	if s.firstErr == nil {
		s.firstErr = err
	}
	s.mu.Unlock()
}

// takeInterval returns and resets the interval counters.
func (s *flowStats) takeInterval(elapsed time.Duration) flowReport {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := makeFlowReport(s.ivRecords, s.ivBytes, 0, elapsed, s.ivLat, s.hasLatency)
	s.ivRecords, s.ivBytes = 0, 0
	s.ivLat.Reset()
	return r
}

// total reports the whole run; rates are over start until the last record
// was counted, so drain time after the run does not dilute them.
func (s *flowStats) total(start time.Time, elapsed time.Duration) flowReport {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.last.IsZero() {
		elapsed = s.last.Sub(start)
	}
	return makeFlowReport(s.records, s.bytes, s.errs, elapsed, s.lat, s.hasLatency)
}

// latencyReport holds latency percentiles in milliseconds.
type latencyReport struct {
	Count uint64  `json:"count"`
	Mean  float64 `json:"mean_ms"`
	P50   float64 `json:"p50_ms"`
	P95   float64 `json:"p95_ms"`
	P99   float64 `json:"p99_ms"`
	P999  float64 `json:"p99_9_ms"`
	Max   float64 `json:"max_ms"`
}

func makeLatencyReport(h *histogram) *latencyReport {
	ms := func(ns int64) float64 { return float64(ns) / 1e6 }
	return &latencyReport{
		Count: h.Count(),
		Mean:  h.Mean() / 1e6,
		P50:   ms(h.Quantile(0.50)),
		P95:   ms(h.Quantile(0.95)),
		P99:   ms(h.Quantile(0.99)),
		P999:  ms(h.Quantile(0.999)),
		Max:   ms(h.Max()),
	}
}

// flowReport is the throughput (and latency) of one direction.
type flowReport struct {
	Records       int64          `json:"records"`
	Bytes         int64          `json:"bytes"`
	Errors        int64          `json:"errors,omitempty"`
	RecordsPerSec float64        `json:"records_per_sec"`
	MBPerSec      float64        `json:"mb_per_sec"`
	Latency       *latencyReport `json:"latency,omitempty"`
}

func makeFlowReport(records, bytes, errs int64, elapsed time.Duration, h *histogram, withLat bool) flowReport {
	r := flowReport{Records: records, Bytes: bytes, Errors: errs}
	if secs := elapsed.Seconds(); secs > 0 {
		r.RecordsPerSec = float64(records) / secs
		r.MBPerSec = float64(bytes) / 1e6 / secs
	}
	if withLat {
		r.Latency = makeLatencyReport(h)
	}
	return r
}

// intervalReport is one periodic progress line.
type intervalReport struct {
	AtSec   float64     `json:"at_sec"`
	Produce *flowReport `json:"produce,omitempty"`
	Consume *flowReport `json:"consume,omitempty"`
}

// benchResult is the final result, also the --json document.
type benchResult struct {
	Mode        benchMode        `json:"mode"`
	Topic       string           `json:"topic"`
	Partitions  int              `json:"partitions"`
	RecordSize  int              `json:"record_size"`
	Producers   int              `json:"producers,omitempty"`
	Acks        string           `json:"acks,omitempty"`
	Idempotent  bool             `json:"idempotent,omitempty"`
	Compression string           `json:"compression,omitempty"`
	RateMBps    float64          `json:"offered_rate_mb_per_sec,omitempty"`
	ElapsedSec  float64          `json:"elapsed_sec"`
	Produce     *flowReport      `json:"produce,omitempty"`
	Consume     *flowReport      `json:"consume,omitempty"`
	Intervals   []intervalReport `json:"intervals"`
	// ConsumerLag is the e2e consumer's lag when the producers stopped.
	ConsumerLag *lagReport `json:"consumer_lag,omitempty"`
}

func runBench(ctx context.Context, g *globalOptions, o *benchOptions, mode benchMode, out, errOut io.Writer) error {
	if err := o.validate(mode); err != nil {
		return err
	}
	adm, err := g.newAdmin()
	if err != nil {
		return err
	}
	defer adm.Close()
	parts, err := ensureBenchTopic(ctx, adm, o.topic, o.partitions, errOut)
	if err != nil {
		return err
	}

	var runID [8]byte
	if _, err := rand.Read(runID[:]); err != nil {
		return fmt.Errorf("generate run id: %w", err)
	}
	res := benchResult{
		Mode: mode, Topic: o.topic, Partitions: parts, RecordSize: o.recordSize,
	}
	var prodStats, consStats *flowStats
	if mode != benchConsume {
		prodStats = newFlowStats(true)
		res.Producers, res.Acks, res.Idempotent, res.Compression, res.RateMBps = o.producers, o.acks, o.idempotent, o.compression, o.rate
	}
	if mode != benchProduce {
		consStats = newFlowStats(mode == benchE2E)
	}

	progress := out
	if o.json {
		progress = errOut
	}
	fmt.Fprintf(progress, "bench %s: topic %q (%d partitions), %d-byte records, %s\n",
		mode, o.topic, parts, o.recordSize, o.describeLoad(mode))

	// The consumer is positioned before producers start so the e2e run
	// sees every record it produces.
	var (
		consumer *benchConsumer
		consDone = make(chan error, 1)
	)
	if consStats != nil {
		consumer, err = newBenchConsumer(ctx, g, adm, o.topic, mode, runID, consStats)
		if err != nil {
			return err
		}
		defer consumer.cl.Close()
	}

	start := time.Now()
	runCtx, stopRun := context.WithDeadline(ctx, start.Add(o.duration))
	defer stopRun()

	var producedAcked atomic.Int64
	var prodWG sync.WaitGroup
	var prodErr error
	var prodErrMu sync.Mutex
	if prodStats != nil {
		payload := make([]byte, o.recordSize)
		if _, err := rand.Read(payload); err != nil {
			return fmt.Errorf("generate payload: %w", err)
		}
		for i := 0; i < o.producers; i++ {
			cl, err := g.newClient(o.producerOpts()...)
			if err != nil {
				return err
			}
			prodWG.Add(1)
			go func() {
				defer prodWG.Done()
				defer cl.Close()
				err := produceLoop(ctx, runCtx, cl, o, mode, runID, payload, prodStats, &producedAcked)
				if err != nil {
					prodErrMu.Lock()
					if prodErr == nil {
						prodErr = err
					}
					prodErrMu.Unlock()
				}
			}()
		}
	}
	prodDone := make(chan struct{})
	go func() { prodWG.Wait(); close(prodDone) }()

	if consumer != nil {
		go func() {
			consDone <- consumer.run(ctx, runCtx, mode, prodDone, &producedAcked)
		}()
	} else {
		consDone <- nil
	}

	// Report every interval until both sides are done.
	ticker := time.NewTicker(o.interval)
	defer ticker.Stop()
	last := start
	tw := tabwriter.NewWriter(progress, 8, 4, 2, ' ', tabwriter.AlignRight)
	writeIntervalHeader(tw, prodStats != nil, consStats != nil, mode == benchE2E)
	var consErr error
	prodWait, consWait := prodDone, consDone
	for prodWait != nil || consWait != nil {
		select {
		case <-ticker.C:
			now := time.Now()
			iv := intervalReport{AtSec: now.Sub(start).Seconds()}
			if prodStats != nil {
				r := prodStats.takeInterval(now.Sub(last))
				iv.Produce = &r
			}
			if consStats != nil {
				r := consStats.takeInterval(now.Sub(last))
				iv.Consume = &r
			}
			last = now
			res.Intervals = append(res.Intervals, iv)
			writeIntervalLine(tw, iv, mode == benchE2E)
		case consErr = <-consWait:
			consWait = nil
		case <-prodWait:
			prodWait = nil
		}
	}
	elapsed := time.Since(start)
	res.ElapsedSec = elapsed.Seconds()
	if prodStats != nil {
		r := prodStats.total(start, elapsed)
		res.Produce = &r
	}
	if consStats != nil {
		r := consStats.total(start, elapsed)
		res.Consume = &r
	}
	if mode == benchE2E && consumer != nil {
		res.ConsumerLag = consumer.lag.report()
	}
	if o.json {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		if err := enc.Encode(res); err != nil {
			return fmt.Errorf("write result: %w", err)
		}
	} else {
		writeBenchSummary(out, res)
	}

	switch {
	case ctx.Err() != nil:
		return errors.New("interrupted; the numbers above cover the run until then")
	case prodErr != nil:
		return prodErr
	case prodStats != nil && prodStats.errs > 0:
		return fmt.Errorf("%d records failed to produce; first error: %w", prodStats.errs, topicErr(o.topic, prodStats.firstErr, ""))
	case consErr != nil:
		return consErr
	}
	return nil
}

func (o *benchOptions) describeLoad(mode benchMode) string {
	if mode == benchConsume {
		return fmt.Sprintf("up to %s", o.duration)
	}
	rate := "unlimited rate"
	if o.rate > 0 {
		rate = fmt.Sprintf("%g MB/s offered", o.rate)
	}
	idem := "idempotent"
	if !o.idempotent {
		idem = "not idempotent"
	}
	return fmt.Sprintf("%d producers, acks=%s, %s, compression %s, %s, %s", o.producers, o.acks, idem, o.compression, rate, o.duration)
}

func (o *benchOptions) producerOpts() []kgo.Opt {
	acks, _ := parseAcks(o.acks)                // checked in validate
	codec, _ := parseCompression(o.compression) // checked in validate
	opts := []kgo.Opt{
		kgo.DefaultProduceTopic(o.topic),
		kgo.RequiredAcks(acks),
		kgo.ProducerBatchCompression(codec),
		kgo.ProducerBatchMaxBytes(1 << 20),
		kgo.ProducerLinger(o.linger),
	}
	if !o.idempotent {
		opts = append(opts, kgo.DisableIdempotentWrite())
	}
	return opts
}

// ensureBenchTopic creates the topic if missing and returns its partition
// count.
func ensureBenchTopic(ctx context.Context, adm *kadm.Client, topic string, partitions int32, errOut io.Writer) (int, error) {
	topics, err := adm.ListTopics(ctx, topic)
	if err != nil {
		return 0, fmt.Errorf("look up topic %q: %w", topic, err)
	}
	if td, ok := topics[topic]; ok && td.Err == nil {
		return len(td.Partitions), nil
	} else if ok && !errors.Is(td.Err, kerr.UnknownTopicOrPartition) {
		return 0, topicErr(topic, td.Err, "")
	}
	r, err := adm.CreateTopic(ctx, partitions, -1, nil, topic)
	switch {
	case errors.Is(err, kerr.TopicAlreadyExists):
		topics, err := adm.ListTopics(ctx, topic)
		if err != nil {
			return 0, fmt.Errorf("look up topic %q: %w", topic, err)
		}
		return len(topics[topic].Partitions), nil
	case err != nil:
		return 0, topicErr(topic, err, r.ErrMessage)
	}
	fmt.Fprintf(errOut, "Created topic %q with %d partitions.\n", topic, r.NumPartitions)
	// The client's cached metadata may still say the topic does not exist;
	// wait until requests routed through it see the new topic.
	for deadline := time.Now().Add(10 * time.Second); ; {
		ends, err := adm.ListEndOffsets(ctx, topic)
		if err == nil && ends.Error() == nil {
			break
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("topic %q was created but is not visible yet: %w", topic, errors.Join(err, ends.Error()))
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return int(r.NumPartitions), nil
}

// minPaceSleep is the shortest sleep of a rate-limited produce loop.
const minPaceSleep = time.Millisecond

// produceLoop produces until runCtx ends, paced to o.rate, then waits for
// outstanding acks for at most drainGrace.
func produceLoop(ctx, runCtx context.Context, cl *kgo.Client, o *benchOptions, mode benchMode, runID [8]byte, payload []byte, st *flowStats, acked *atomic.Int64) error {
	every := recordInterval(o.rate, o.recordSize, o.producers)
	next := time.Now()
	timer := time.NewTimer(0)
	<-timer.C
	defer timer.Stop()
	for runCtx.Err() == nil {
		if every > 0 {
			// Produce every record due by now; then sleep until the next is
			// due, but at least minPaceSleep: waking once per record (every
			// 20 µs at 50 MB/s of 1 KiB records) costs the client the CPU
			// the broker under test shares. Each record's latency starts
			// when it is produced, so the grouping does not shorten it.
			if d := time.Until(next); d > 0 {
				timer.Reset(max(d, minPaceSleep))
				select {
				case <-timer.C:
				case <-runCtx.Done():
					continue
				}
			}
			next = next.Add(every)
		}
		value := payload
		if mode == benchE2E {
			value = make([]byte, len(payload))
			copy(value, payload)
			copy(value, runID[:])
		}
		sent := time.Now()
		if mode == benchE2E {
			binary.BigEndian.PutUint64(value[8:], uint64(sent.UnixNano()))
		}
		n := len(value)
		cl.Produce(ctx, &kgo.Record{Value: value}, func(_ *kgo.Record, err error) {
			if err != nil {
				st.fail(err)
				return
			}
			st.add(n, time.Since(sent), true)
			acked.Add(1)
		})
	}
	flushCtx, cancel := context.WithTimeout(ctx, drainGrace)
	defer cancel()
	if err := cl.Flush(flushCtx); err != nil && ctx.Err() == nil {
		return fmt.Errorf("producer did not finish within %s after the run: %w", drainGrace, err)
	}
	return nil
}

// benchConsumer reads the bench topic.
type benchConsumer struct {
	cl    *kgo.Client
	st    *flowStats
	runID [8]byte
	// ends are the end offsets at start: consume mode stops once it has
	// read up to them.
	ends map[int32]int64
	// lag follows how far the e2e consumer is behind when the producers
	// stop, and how long it takes to catch up.
	lag lagClock
}

// lagClock measures the e2e consumer's lag at the end of a run: the
// records acknowledged to the producers but not yet consumed when the
// producers stop, and the time from then until the consumer has them all.
// A consumer that keeps up has no lag and catches up at once; one that
// falls behind at the maximum rate shows it here, so a slow read path
// cannot hide behind a good produce figure.
type lagClock struct {
	stopped   bool
	stoppedAt time.Time
	atStop    int64 // acked − received when the producers stopped
	caughtUp  time.Duration
	done      bool
	remaining int64 // acked − received at the last observation
}

// observe notes the counts at now; producersDone says the producers have
// stopped.
func (l *lagClock) observe(now time.Time, producersDone bool, acked, received int64) {
	l.remaining = max(acked-received, 0)
	if !producersDone || l.done {
		return
	}
	if !l.stopped {
		l.stopped, l.stoppedAt, l.atStop = true, now, l.remaining
	}
	if l.remaining == 0 {
		l.done, l.caughtUp = true, now.Sub(l.stoppedAt)
	}
}

// report is the lag figures, nil before the producers stopped.
func (l *lagClock) report() *lagReport {
	if !l.stopped {
		return nil
	}
	r := &lagReport{AtProducerStop: l.atStop, NotConsumed: l.remaining}
	if l.done {
		s := l.caughtUp.Seconds()
		r.CatchUpSec = &s
	}
	return r
}

// lagReport is the e2e consumer's lag at the end of the run.
type lagReport struct {
	// AtProducerStop is the records acknowledged but not yet consumed when
	// the producers stopped.
	AtProducerStop int64 `json:"records_behind_at_producer_stop"`
	// CatchUpSec is how long the consumer then took to consume them; nil
	// when it had not within the drain grace.
	CatchUpSec *float64 `json:"catch_up_sec"`
	// NotConsumed is the records still not consumed when the run ended.
	NotConsumed int64 `json:"records_not_consumed"`
}

func newBenchConsumer(ctx context.Context, g *globalOptions, adm *kadm.Client, topic string, mode benchMode, runID [8]byte, st *flowStats) (*benchConsumer, error) {
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		return nil, fmt.Errorf("list end offsets of %q: %w", topic, err)
	}
	if err := ends.Error(); err != nil {
		return nil, topicErr(topic, err, "")
	}
	starts, err := adm.ListStartOffsets(ctx, topic)
	if err != nil {
		return nil, fmt.Errorf("list start offsets of %q: %w", topic, err)
	}
	bc := &benchConsumer{st: st, runID: runID, ends: map[int32]int64{}}
	at := map[int32]kgo.Offset{}
	for p, e := range ends[topic] {
		if mode == benchE2E {
			at[p] = kgo.NewOffset().At(e.Offset)
			continue
		}
		at[p] = kgo.NewOffset().AtStart()
		if s, ok := starts.Lookup(topic, p); ok && s.Err == nil && e.Offset > s.Offset {
			bc.ends[p] = e.Offset
		}
	}
	bc.cl, err = g.newClient(
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: at}),
		kgo.FetchMaxBytes(64<<20),
	)
	if err != nil {
		return nil, err
	}
	return bc, nil
}

// run consumes until the run ends: consume mode at --duration or when
// caught up with the start's end offsets; e2e mode once producers are done
// and every acked record arrived, or drainGrace after producers finished.
func (bc *benchConsumer) run(ctx, runCtx context.Context, mode benchMode, prodDone <-chan struct{}, acked *atomic.Int64) error {
	pollCtx := runCtx
	if mode == benchE2E {
		// e2e keeps reading after the run ends; the deadline below stops it.
		var cancel context.CancelFunc
		pollCtx, cancel = context.WithCancel(ctx)
		defer cancel()
		go func() {
			select {
			case <-prodDone:
			case <-pollCtx.Done():
				return
			}
			t := time.NewTimer(drainGrace)
			defer t.Stop()
			select {
			case <-t.C:
				cancel()
			case <-pollCtx.Done():
			}
		}()
	}
	var received int64
	defer func() { bc.lag.observe(time.Now(), isDone(prodDone), acked.Load(), received) }()
	for pollCtx.Err() == nil {
		if mode == benchE2E {
			bc.lag.observe(time.Now(), isDone(prodDone), acked.Load(), received)
		}
		if mode == benchConsume && len(bc.ends) == 0 {
			return nil
		}
		if mode == benchE2E && isDone(prodDone) && received >= acked.Load() {
			return nil
		}
		fetchCtx, cancel := pollCtx, context.CancelFunc(func() {})
		if mode == benchE2E {
			// Poll briefly so the end condition (producers done, every
			// acked record received) is noticed without waiting out the
			// grace period.
			fetchCtx, cancel = context.WithTimeout(pollCtx, 100*time.Millisecond)
		}
		fetches := bc.cl.PollRecords(fetchCtx, 10000)
		cancel()
		now := time.Now()
		for _, fe := range fetches.Errors() {
			if errors.Is(fe.Err, context.Canceled) || errors.Is(fe.Err, context.DeadlineExceeded) || errors.Is(fe.Err, kgo.ErrClientClosed) {
				continue
			}
			bc.st.fail(fe.Err)
			return fmt.Errorf("consume partition %d: %w", fe.Partition, topicErr(fe.Topic, fe.Err, ""))
		}
		fetches.EachRecord(func(r *kgo.Record) {
			switch mode {
			case benchE2E:
				if len(r.Value) < e2eHeaderLen || [8]byte(r.Value[:8]) != bc.runID {
					return
				}
				sent := int64(binary.BigEndian.Uint64(r.Value[8:16]))
				bc.st.add(len(r.Value), now.Sub(time.Unix(0, sent)), true)
				received++
			default:
				bc.st.add(len(r.Value), 0, false)
				if end, ok := bc.ends[r.Partition]; ok && r.Offset+1 >= end {
					delete(bc.ends, r.Partition)
				}
			}
		})
	}
	return nil
}

func isDone(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

func writeIntervalHeader(tw *tabwriter.Writer, prod, cons, e2e bool) {
	h := "time\t"
	if prod {
		h += "prod rec/s\tprod MB/s\tp50 ms\tp99 ms\t"
	}
	if cons {
		h += "cons rec/s\tcons MB/s\t"
	}
	if e2e {
		h += "e2e p50 ms\te2e p99 ms\t"
	}
	fmt.Fprintln(tw, h)
	tw.Flush()
}

func writeIntervalLine(tw *tabwriter.Writer, iv intervalReport, e2e bool) {
	line := fmt.Sprintf("%.0fs\t", iv.AtSec)
	if p := iv.Produce; p != nil {
		line += fmt.Sprintf("%.0f\t%.2f\t%.2f\t%.2f\t", p.RecordsPerSec, p.MBPerSec, p.Latency.P50, p.Latency.P99)
	}
	if c := iv.Consume; c != nil {
		line += fmt.Sprintf("%.0f\t%.2f\t", c.RecordsPerSec, c.MBPerSec)
		if e2e && c.Latency != nil {
			line += fmt.Sprintf("%.2f\t%.2f\t", c.Latency.P50, c.Latency.P99)
		}
	}
	fmt.Fprintln(tw, line)
	tw.Flush()
}

func writeBenchSummary(w io.Writer, res benchResult) {
	fmt.Fprintf(w, "\nResult after %.1fs:\n", res.ElapsedSec)
	lat := func(name string, l *latencyReport) {
		if l == nil || l.Count == 0 {
			return
		}
		fmt.Fprintf(w, "  %s latency (ms): p50 %.2f  p95 %.2f  p99 %.2f  p99.9 %.2f  max %.2f  mean %.2f  (n=%d)\n",
			name, l.P50, l.P95, l.P99, l.P999, l.Max, l.Mean, l.Count)
	}
	if p := res.Produce; p != nil {
		fmt.Fprintf(w, "  produced %d records (%.1f MB): %.0f records/s, %.2f MB/s, %d errors\n",
			p.Records, float64(p.Bytes)/1e6, p.RecordsPerSec, p.MBPerSec, p.Errors)
		lat("produce", p.Latency)
	}
	if c := res.Consume; c != nil {
		fmt.Fprintf(w, "  consumed %d records (%.1f MB): %.0f records/s, %.2f MB/s\n",
			c.Records, float64(c.Bytes)/1e6, c.RecordsPerSec, c.MBPerSec)
		lat("end-to-end", c.Latency)
	}
	if l := res.ConsumerLag; l != nil {
		if l.CatchUpSec != nil {
			fmt.Fprintf(w, "  consumer lag when the producers stopped: %d records, caught up in %.2fs\n", l.AtProducerStop, *l.CatchUpSec)
		} else {
			fmt.Fprintf(w, "  consumer lag when the producers stopped: %d records, %d still not consumed at the end\n", l.AtProducerStop, l.NotConsumed)
		}
	}
}
