package cli

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// runnel bench share compares a share group (KIP-932) of N consumers
// reading ONE partition with an ordinary consumer group of N consumers
// reading N partitions: the same records, the same record size, the same
// broker, in one run. A share group lets consumers scale past the
// partition count; this shows what that costs per record (every record is
// acquired, and acknowledged, through the share partition's state).

type benchShareOptions struct {
	records   int
	consumers int
	together  bool
	timeout   time.Duration
	keep      bool
	// maxRecords is the share consumers' ShareFetch MaxRecords; strict
	// asks for at most that many (record_limit acquisition, KIP-1206).
	maxRecords int32
	strict     bool
}

func newBenchShareCommand(g *globalOptions, o *benchOptions) *cobra.Command {
	so := &benchShareOptions{}
	cmd := &cobra.Command{
		Use:   "share",
		Short: "Compare a share group on one partition with a consumer group on many",
		Long: `Write --records records of --record-size bytes to two new topics: one with a
single partition, read by a share group of --consumers members, and one with
--consumers partitions, read by a consumer group of --consumers members.
Then consume both until every record is read (share consumers accept each
record), one group after the other or, with --together, at the same time, and
report each group's throughput, how evenly its members shared the records and,
for the share group, how many records were delivered more than once. The
topics (named after --topic and a run id) and groups are deleted at the end
unless --keep is given.`,
		Example: `  runnel bench share --records 200000 --record-size 1024
  runnel bench share --consumers 8 --together --json > share.json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runBenchShare(cmd.Context(), g, o, so, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	f := cmd.Flags()
	f.IntVar(&so.records, "records", 200000, "records written to each topic")
	f.IntVar(&so.consumers, "consumers", 8, "members of each group (and partitions of the consumer group's topic)")
	f.BoolVar(&so.together, "together", false, "run both groups at the same time instead of one after the other")
	f.DurationVar(&so.timeout, "timeout", 5*time.Minute, "how long each group may take to read every record")
	f.BoolVar(&so.keep, "keep", false, "keep the topics and groups after the run")
	f.Int32Var(&so.maxRecords, "share-max-records", 500, "records a share consumer asks for per fetch (whole batches may exceed it unless --share-strict)")
	f.BoolVar(&so.strict, "share-strict", false, "share consumers never acquire more than --share-max-records at once (record_limit, KIP-1206)")
	return cmd
}

func (so *benchShareOptions) validate(o *benchOptions) error {
	switch {
	case so.records < 1:
		return fmt.Errorf("--records %d: want at least 1", so.records)
	case so.consumers < 1:
		return fmt.Errorf("--consumers %d: want at least 1", so.consumers)
	case so.timeout <= 0:
		return fmt.Errorf("--timeout %s: must be positive", so.timeout)
	case so.maxRecords < 1:
		return fmt.Errorf("--share-max-records %d: want at least 1", so.maxRecords)
	case o.topic == "":
		return errors.New("--topic must not be empty")
	case o.recordSize < 0:
		return fmt.Errorf("--record-size %d: must not be negative", o.recordSize)
	}
	_, err := parseCompression(o.compression)
	return err
}

// shareBenchSide is one group's result.
type shareBenchSide struct {
	Kind       string `json:"kind"` // "share" or "consumer"
	Group      string `json:"group"`
	Topic      string `json:"topic"`
	Partitions int    `json:"partitions"`
	Consumers  int    `json:"consumers"`
	Records    int64  `json:"records"` // distinct records read
	Bytes      int64  `json:"bytes"`
	// JoinSec is the time the group took to form (every member
	// assigned; members are paused meanwhile); ElapsedSec the time from
	// then to the last record, over which the rates are.
	JoinSec    float64 `json:"join_sec"`
	ElapsedSec float64 `json:"elapsed_sec"`
	RecordsPS  float64 `json:"records_per_sec"`
	MBPS       float64 `json:"mb_per_sec"`
	// PerConsumer is the records each member read, in member order.
	PerConsumer []int64 `json:"per_consumer"`
	// Redelivered counts deliveries with a delivery count above 1 (share
	// group only).
	Redelivered int64  `json:"redelivered,omitempty"`
	Complete    bool   `json:"complete"`
	Error       string `json:"error,omitempty"`
}

// shareBenchResult is the whole run, also the --json document.
type shareBenchResult struct {
	RecordSize  int              `json:"record_size"`
	Records     int              `json:"records"`
	Compression string           `json:"compression"`
	Together    bool             `json:"together"`
	Produce     flowReport       `json:"produce"`
	Groups      []shareBenchSide `json:"groups"`
}

func runBenchShare(ctx context.Context, g *globalOptions, o *benchOptions, so *benchShareOptions, out, errOut io.Writer) error {
	if err := so.validate(o); err != nil {
		return err
	}
	cl, err := g.newClient()
	if err != nil {
		return err
	}
	adm := kadm.NewClient(cl)
	defer adm.Close()
	var id [4]byte
	if _, err := rand.Read(id[:]); err != nil {
		return fmt.Errorf("generate run id: %w", err)
	}
	run := hex.EncodeToString(id[:])
	sides := []*shareBenchSide{
		{Kind: "share", Group: o.topic + "-share-" + run, Topic: o.topic + "-share-" + run, Partitions: 1, Consumers: so.consumers},
		{Kind: "consumer", Group: o.topic + "-group-" + run, Topic: o.topic + "-group-" + run, Partitions: so.consumers, Consumers: so.consumers},
	}
	progress := out
	if o.json {
		progress = errOut
	}
	if !so.keep {
		defer func() {
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
			defer cancel()
			for _, s := range sides {
				if _, err := adm.DeleteGroup(cctx, s.Group); err != nil && !errors.Is(err, kerr.GroupIDNotFound) {
					fmt.Fprintf(errOut, "delete group %q: %v\n", s.Group, kafkaErr(err, ""))
				}
				if _, err := adm.DeleteTopic(cctx, s.Topic); err != nil {
					fmt.Fprintf(errOut, "delete topic %q: %v\n", s.Topic, kafkaErr(err, ""))
				}
			}
		}()
	}
	for _, s := range sides {
		if _, err := ensureBenchTopic(ctx, adm, s.Topic, int32(s.Partitions), errOut); err != nil {
			return err
		}
	}
	if err := setShareGroupConfig(ctx, cl, sides[0].Group, "share.auto.offset.reset", "earliest"); err != nil {
		return err
	}

	fmt.Fprintf(progress, "bench share: %d records of %d bytes to %s (1 partition, share group of %d) and %s (%d partitions, consumer group of %d)\n",
		so.records, o.recordSize, sides[0].Topic, so.consumers, sides[1].Topic, so.consumers, so.consumers)
	res := shareBenchResult{RecordSize: o.recordSize, Records: so.records, Compression: o.compression, Together: so.together}
	if res.Produce, err = preloadShareBench(ctx, g, o, so.records, sides[0].Topic, sides[1].Topic); err != nil {
		return err
	}
	fmt.Fprintf(progress, "  produced %d records to each topic: %.0f records/s, %.2f MB/s\n",
		res.Produce.Records/2, res.Produce.RecordsPerSec, res.Produce.MBPerSec)

	consume := func(s *shareBenchSide) {
		if err := consumeShareBench(ctx, g, s, so, so.records); err != nil {
			s.Error = err.Error()
		}
	}
	if so.together {
		var wg sync.WaitGroup
		for _, s := range sides {
			wg.Add(1)
			go func() { defer wg.Done(); consume(s) }()
		}
		wg.Wait()
	} else {
		for _, s := range sides {
			consume(s)
		}
	}
	for _, s := range sides {
		res.Groups = append(res.Groups, *s)
	}
	if o.json {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		if err := enc.Encode(res); err != nil {
			return fmt.Errorf("write result: %w", err)
		}
	} else {
		writeShareBenchSummary(out, res)
	}
	var errs []error
	for _, s := range sides {
		if !s.Complete {
			errs = append(errs, fmt.Errorf("%s group read %d of %d records: %s", s.Kind, s.Records, so.records, orDash(s.Error)))
		}
	}
	if ctx.Err() != nil {
		return errors.New("interrupted; the numbers above cover the run until then")
	}
	return errors.Join(errs...)
}

// setShareGroupConfig sets one config of a group (IncrementalAlterConfigs
// on the GROUP resource).
func setShareGroupConfig(ctx context.Context, cl *kgo.Client, group, name, value string) error {
	req := kmsg.NewPtrIncrementalAlterConfigsRequest()
	r := kmsg.NewIncrementalAlterConfigsRequestResource()
	r.ResourceType = kmsg.ConfigResourceTypeGroupConfig
	r.ResourceName = group
	c := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
	c.Name, c.Value = name, kmsg.StringPtr(value)
	r.Configs = append(r.Configs, c)
	req.Resources = append(req.Resources, r)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return fmt.Errorf("set %s of group %q: %w", name, group, kafkaErr(err, ""))
	}
	for _, rr := range resp.Resources {
		if err := kerr.ErrorForCode(rr.ErrorCode); err != nil {
			return fmt.Errorf("set %s of group %q: %w", name, group, kafkaErr(err, derefString(rr.ErrorMessage)))
		}
	}
	return nil
}

func derefString(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// preloadShareBench writes records records of random bytes to each topic.
func preloadShareBench(ctx context.Context, g *globalOptions, o *benchOptions, records int, topics ...string) (flowReport, error) {
	codec, _ := parseCompression(o.compression) // checked in validate
	pcl, err := g.newClient(kgo.ProducerBatchCompression(codec), kgo.ProducerBatchMaxBytes(1<<20), kgo.ProducerLinger(o.linger))
	if err != nil {
		return flowReport{}, err
	}
	defer pcl.Close()
	var (
		failed   atomic.Int64
		firstErr atomic.Value
	)
	start := time.Now()
	for i := range records {
		// Every record has its own random bytes, so no batch compression
		// can shrink the load (one value repeated would compress away).
		value := make([]byte, o.recordSize)
		if _, err := rand.Read(value); err != nil {
			return flowReport{}, fmt.Errorf("generate payload: %w", err)
		}
		for _, t := range topics {
			pcl.Produce(ctx, &kgo.Record{Topic: t, Value: value, Key: []byte(fmt.Sprint(i))}, func(_ *kgo.Record, err error) {
				if err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err)
				}
			})
		}
	}
	if err := pcl.Flush(ctx); err != nil {
		return flowReport{}, err
	}
	if n := failed.Load(); n > 0 {
		return flowReport{}, fmt.Errorf("%d records failed to produce; first error: %w", n, kafkaErr(firstErr.Load().(error), ""))
	}
	n := int64(records * len(topics))
	return makeFlowReport(n, n*int64(o.recordSize), 0, time.Since(start), nil, false), nil
}

// consumeShareBench runs s's group until it has read want distinct records
// or timeout passes, and fills in s.
func consumeShareBench(ctx context.Context, g *globalOptions, s *shareBenchSide, so *benchShareOptions, want int) error {
	timeout := so.timeout
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var (
		mu          sync.Mutex
		seen        = map[int32]map[int64]bool{}
		distinct    int64
		bytes       int64
		redelivered int64
		last        time.Time
	)
	s.PerConsumer = make([]int64, s.Consumers)
	// Once every record is read, the members still polling are stopped.
	pollCtx, stopPolling := context.WithCancel(ctx)
	defer stopPolling()
	clients := make([]*kgo.Client, s.Consumers)
	for i := range clients {
		opts := []kgo.Opt{kgo.ConsumeTopics(s.Topic), kgo.FetchMaxBytes(64 << 20), kgo.ClientID(fmt.Sprintf("runnel-bench-%s-%d", s.Kind, i))}
		if s.Kind == "share" {
			opts = append(opts, kgo.ShareGroup(s.Group), kgo.ShareMaxRecords(so.maxRecords))
			if so.strict {
				opts = append(opts, kgo.ShareMaxRecordsStrict())
			}
		} else {
			opts = append(opts, kgo.ConsumerGroup(s.Group), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
		}
		cl, err := g.newClient(opts...)
		if err != nil {
			for _, c := range clients[:i] {
				c.Close()
			}
			return err
		}
		clients[i] = cl
		// Paused until every member has its assignment, so no member
		// reads ahead while the group forms.
		cl.PauseFetchTopics(s.Topic)
	}
	created := time.Now()
	var start time.Time
	var wg sync.WaitGroup
	for i, cl := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for pollCtx.Err() == nil {
				fs := cl.PollRecords(pollCtx, 10000)
				var n, b, re int64
				mu.Lock()
				fs.EachRecord(func(r *kgo.Record) {
					if r.DeliveryCount() > 1 {
						re++
					}
					ps := seen[r.Partition]
					if ps == nil {
						ps = map[int64]bool{}
						seen[r.Partition] = ps
					}
					if !ps[r.Offset] {
						ps[r.Offset] = true
						n++
						b += int64(len(r.Value))
					}
				})
				distinct += n
				bytes += b
				redelivered += re
				s.PerConsumer[i] += n
				if n > 0 {
					last = time.Now()
				}
				if distinct >= int64(want) {
					stopPolling()
				}
				mu.Unlock()
			}
		}()
	}
	if err := waitGroupFormed(ctx, g, s); err != nil {
		stopPolling()
	}
	mu.Lock()
	start = time.Now()
	mu.Unlock()
	for _, cl := range clients {
		cl.ResumeFetchTopics(s.Topic)
	}
	wg.Wait()
	for _, cl := range clients {
		cl.Close() // a share consumer acknowledges (accepts) what it read last
	}
	mu.Lock()
	defer mu.Unlock()
	s.Records, s.Bytes, s.Redelivered = distinct, bytes, redelivered
	s.Complete = distinct >= int64(want)
	// The group formed (every member assigned) before start: rates are
	// over the time from there to the last record; the forming time is
	// reported beside them.
	s.JoinSec = start.Sub(created).Seconds()
	if !last.IsZero() {
		elapsed := last.Sub(start)
		s.ElapsedSec = elapsed.Seconds()
		if secs := elapsed.Seconds(); secs > 0 {
			s.RecordsPS = float64(distinct) / secs
			s.MBPS = float64(bytes) / 1e6 / secs
		}
	}
	if !s.Complete && ctx.Err() != nil {
		return fmt.Errorf("not every record was read within %s", timeout)
	}
	return nil
}

// waitGroupFormed waits until s's group has all its members, each with
// partitions assigned (at most 30 s; after that the run goes on).
func waitGroupFormed(ctx context.Context, g *globalOptions, s *shareBenchSide) error {
	adm, err := g.newAdmin()
	if err != nil {
		return err
	}
	defer adm.Close()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		formed := false
		if s.Kind == "share" {
			ds, err := adm.DescribeShareGroups(ctx, s.Group)
			if d, ok := ds[s.Group]; err == nil && ok && d.Err == nil && len(d.Members) == s.Consumers {
				formed = true
				for _, m := range d.Members {
					formed = formed && len(m.Assignment) > 0
				}
			}
		} else {
			ds, err := adm.DescribeGroups(ctx, s.Group)
			if d, ok := ds[s.Group]; err == nil && ok && d.Err == nil && d.State == "Stable" && len(d.Members) == s.Consumers {
				formed = true
				for _, m := range d.Members {
					c, ok := m.Assigned.AsConsumer()
					formed = formed && ok && len(c.Topics) > 0
				}
			}
		}
		if formed {
			return nil
		}
		select {
		case <-ctx.Done():
			if ctx.Err() == context.DeadlineExceeded {
				return nil // the run goes on with the group as it is
			}
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func writeShareBenchSummary(w io.Writer, res shareBenchResult) {
	how := "one after the other"
	if res.Together {
		how = "at the same time"
	}
	fmt.Fprintf(w, "\nResult (%d records of %d bytes per group, groups run %s):\n", res.Records, res.RecordSize, how)
	for _, s := range res.Groups {
		lo, hi := int64(-1), int64(0)
		for _, n := range s.PerConsumer {
			if lo < 0 || n < lo {
				lo = n
			}
			hi = max(hi, n)
		}
		fmt.Fprintf(w, "  %-8s group, %d consumers on %d partition(s): %d records in %.2fs (group formed in %.2fs), %.0f records/s, %.2f MB/s; per consumer %d..%d",
			s.Kind, s.Consumers, s.Partitions, s.Records, s.ElapsedSec, s.JoinSec, s.RecordsPS, s.MBPS, max(lo, 0), hi)
		if s.Kind == "share" {
			fmt.Fprintf(w, "; %d redeliveries", s.Redelivered)
		}
		if s.Error != "" {
			fmt.Fprintf(w, "; error: %s", s.Error)
		}
		fmt.Fprintln(w)
	}
}
