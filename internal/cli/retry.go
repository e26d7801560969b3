package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-dev/runnel/internal/config"
	"github.com/runnel-dev/runnel/internal/retry"
)

func newRetryCommand(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "retry",
		Short: "Set, show and clear the retry policy of a consumer group",
		Long: `A consumer group's retry policy (its errors.retry.* GROUP configs) gives it
one retry topic per delay, retry.<group>.1 .. retry.<group>.N, whose records
are delivered only that long after they were written, and a dead-letter
topic (errors.deadletterqueue.topic.name, dlq.<group> when unset). The
group's consumers move a failing record to the next level themselves, as
README's "Retries and dead letters" describes; setting the policy creates
the topics. With --ordered, later records of a key wait behind a parked
one (see "runnel retry parked").`,
		Example: `  runnel retry set billing --delays 1s,10s,1m
  runnel retry set billing --ordered
  runnel retry show billing
  runnel retry parked billing
  runnel retry discard billing orders 3 customer-42
  runnel retry clear billing`,
	}
	cmd.AddCommand(newRetrySetCommand(g), newRetryShowCommand(g), newRetryClearCommand(g),
		newRetryParkedCommand(g), newRetryMarkCommand(g, true), newRetryMarkCommand(g, false))
	return cmd
}

func newRetrySetCommand(g *globalOptions) *cobra.Command {
	var (
		delays  []time.Duration
		ordered bool
		dlq     string
	)
	cmd := &cobra.Command{
		Use:   "set GROUP",
		Short: "Set a group's retry policy (the flags given) and create its topics",
		Example: `  runnel retry set billing --delays 1s,10s,1m
  runnel retry set billing --delays 500ms,5s --ordered --dead-letter-topic dlq.billing-failed`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			set := map[string]string{}
			if cmd.Flags().Changed("delays") {
				ms, err := delaysMillis(delays)
				if err != nil {
					return err
				}
				set[config.GroupRetryDelays] = ms
			}
			if cmd.Flags().Changed("ordered") {
				set[config.GroupRetryOrdered] = strconv.FormatBool(ordered)
			}
			if cmd.Flags().Changed("dead-letter-topic") {
				set[config.GroupDLQTopicName] = dlq
			}
			if len(set) == 0 {
				return errors.New("give at least one of --delays, --ordered and --dead-letter-topic")
			}
			cl, err := g.newClient()
			if err != nil {
				return err
			}
			defer cl.Close()
			if err := alterGroupConfigs(cmd.Context(), cl, args[0], set, kmsg.IncrementalAlterConfigOpSet); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Set retry policy of group %s:%s\n", args[0], formatConfigs(set))
			return nil
		},
	}
	f := cmd.Flags()
	f.DurationSliceVar(&delays, "delays", nil, "one delay per retry level, comma-separated (e.g. 1s,10s,1m; whole milliseconds)")
	f.BoolVar(&ordered, "ordered", false, "keep each key's order across retries (later records of a parked key are parked behind it)")
	f.StringVar(&dlq, "dead-letter-topic", "", "the dead-letter topic (default dlq.<group>)")
	return cmd
}

// delaysMillis renders delays as errors.retry.delays.ms.
func delaysMillis(delays []time.Duration) (string, error) {
	if len(delays) == 0 {
		return "", errors.New("--delays: give at least one delay")
	}
	var ms []string
	for _, d := range delays {
		if d <= 0 || d%time.Millisecond != 0 {
			return "", fmt.Errorf("--delays %v: want positive whole milliseconds", d)
		}
		ms = append(ms, strconv.FormatInt(d.Milliseconds(), 10))
	}
	return strings.Join(ms, ","), nil
}

func newRetryClearCommand(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "clear GROUP",
		Short: "Remove a group's retry policy (its topics and their records stay)",
		Long: `Removes errors.retry.delays.ms and errors.retry.ordered. The retry and
dead-letter topics are kept: records still waiting there are delivered to the
group's consumers as before; delete the topics once they are drained.`,
		Example: `  runnel retry clear billing`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := g.newClient()
			if err != nil {
				return err
			}
			defer cl.Close()
			del := map[string]string{config.GroupRetryDelays: "", config.GroupRetryOrdered: ""}
			if err := alterGroupConfigs(cmd.Context(), cl, args[0], del, kmsg.IncrementalAlterConfigOpDelete); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Cleared the retry policy of group %s (its topics are kept)\n", args[0])
			return nil
		},
	}
}

// alterGroupConfigs applies op to the named configs of a group (the GROUP
// config resource).
func alterGroupConfigs(ctx context.Context, cl *kgo.Client, group string, configs map[string]string, op kmsg.IncrementalAlterConfigOp) error {
	req := kmsg.NewPtrIncrementalAlterConfigsRequest()
	r := kmsg.NewIncrementalAlterConfigsRequestResource()
	r.ResourceType, r.ResourceName = kmsg.ConfigResourceTypeGroupConfig, group
	names := make([]string, 0, len(configs))
	for k := range configs {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		c := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
		c.Name, c.Op = k, op
		if op == kmsg.IncrementalAlterConfigOpSet {
			c.Value = kmsg.StringPtr(configs[k])
		}
		r.Configs = append(r.Configs, c)
	}
	req.Resources = append(req.Resources, r)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return fmt.Errorf("alter configs of group %s: %w", group, err)
	}
	if len(resp.Resources) != 1 {
		return fmt.Errorf("alter configs of group %s: %d resources in the response", group, len(resp.Resources))
	}
	res := resp.Resources[0]
	if err := kerr.ErrorForCode(res.ErrorCode); err != nil {
		return fmt.Errorf("group %s: %w", group, kafkaErr(err, brokerMsg(res.ErrorMessage)))
	}
	return nil
}

// describeGroupConfigs returns a group's explicit config overrides.
func describeGroupConfigs(ctx context.Context, cl *kgo.Client, group string) (map[string]string, error) {
	req := kmsg.NewPtrDescribeConfigsRequest()
	r := kmsg.NewDescribeConfigsRequestResource()
	r.ResourceType, r.ResourceName = kmsg.ConfigResourceTypeGroupConfig, group
	req.Resources = append(req.Resources, r)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return nil, fmt.Errorf("describe configs of group %s: %w", group, err)
	}
	if len(resp.Resources) != 1 {
		return nil, fmt.Errorf("describe configs of group %s: %d resources in the response", group, len(resp.Resources))
	}
	res := resp.Resources[0]
	if err := kerr.ErrorForCode(res.ErrorCode); err != nil {
		return nil, fmt.Errorf("group %s: %w", group, kafkaErr(err, brokerMsg(res.ErrorMessage)))
	}
	out := map[string]string{}
	for _, c := range res.Configs {
		if c.Value != nil && c.Source == kmsg.ConfigSourceGroupConfig {
			out[c.Name] = *c.Value
		}
	}
	return out, nil
}

// retryLevel is one row of runnel retry show.
type retryLevel struct {
	Level      string `json:"level"` // "1".."N", or "dlq"
	Topic      string `json:"topic"`
	DelayMs    int64  `json:"delay_ms,omitempty"`
	Partitions int    `json:"partitions"`
	// Waiting is the records at or past the group's committed offsets
	// (for the dead-letter topic: every record).
	Waiting int64 `json:"waiting"`
	// OldestMs is the age of the oldest waiting record (-1: none waiting
	// or unknown).
	OldestMs int64  `json:"oldest_ms"`
	Error    string `json:"error,omitempty"`
}

// retryShow is what runnel retry show reports.
type retryShow struct {
	Group           string  `json:"group"`
	Policy          bool    `json:"policy"`
	DelaysMs        []int64 `json:"delays_ms"`
	Ordered         bool    `json:"ordered"`
	DeadLetterTopic string  `json:"dead_letter_topic"`
	// ParkedKeys counts the keys holding records back (ordered mode).
	ParkedKeys int          `json:"parked_keys"`
	Levels     []retryLevel `json:"levels"`
}

func newRetryShowCommand(g *globalOptions) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "show GROUP",
		Short: "Show a group's retry policy, its topics and the records waiting at each level",
		Example: `  runnel retry show billing
  runnel retry show billing --json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := g.newClient()
			if err != nil {
				return err
			}
			defer cl.Close()
			s, err := showRetry(cmd.Context(), cl, args[0], time.Now())
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(cmd.OutOrStdout(), s)
			}
			return writeRetryShow(cmd.OutOrStdout(), s)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

// showRetry reads a group's policy, the offsets of its retry topics and
// the timestamp of the first waiting record of each partition.
func showRetry(ctx context.Context, cl *kgo.Client, group string, now time.Time) (retryShow, error) {
	overrides, err := describeGroupConfigs(ctx, cl, group)
	if err != nil {
		return retryShow{}, err
	}
	s := retryShow{Group: group, DeadLetterTopic: retry.DeadLetterTopic(group, overrides)}
	p, ok := retry.PolicyOf(group, overrides)
	s.Policy = ok
	if ok {
		s.Ordered = p.Ordered
		for _, d := range p.Delays {
			s.DelaysMs = append(s.DelaysMs, d.Milliseconds())
		}
	}
	adm := kadm.NewClient(cl)
	// Every level topic that exists, also past a shortened policy.
	topics, err := adm.ListTopics(ctx)
	if err != nil {
		return retryShow{}, fmt.Errorf("list topics: %w", err)
	}
	var names []string
	for n := 1; ; n++ {
		name := retry.LevelTopic(group, n)
		if !topics.Has(name) && n > len(s.DelaysMs) {
			break
		}
		names = append(names, name)
	}
	committed, err := adm.FetchOffsets(ctx, group)
	if err != nil && !errors.Is(err, kerr.GroupIDNotFound) {
		return retryShow{}, fmt.Errorf("fetch offsets of group %s: %w", group, err)
	}
	all := append(append([]string(nil), names...), s.DeadLetterTopic)
	starts, err := adm.ListStartOffsets(ctx, all...)
	if err != nil {
		return retryShow{}, fmt.Errorf("list offsets: %w", err)
	}
	ends, err := adm.ListEndOffsets(ctx, all...)
	if err != nil {
		return retryShow{}, fmt.Errorf("list offsets: %w", err)
	}
	firsts := map[string]map[int32]int64{} // first waiting offset per partition
	for i, name := range all {
		lv := retryLevel{Level: strconv.Itoa(i + 1), Topic: name, OldestMs: -1}
		if i < len(s.DelaysMs) {
			lv.DelayMs = s.DelaysMs[i]
		}
		dead := name == s.DeadLetterTopic
		if dead {
			lv.Level = "dlq"
		}
		td, ok := topics[name]
		if !ok {
			lv.Error = "missing"
			s.Levels = append(s.Levels, lv)
			continue
		}
		lv.Partitions = len(td.Partitions)
		for part := range td.Partitions {
			st, _ := starts.Lookup(name, part)
			end, ok := ends.Lookup(name, part)
			if !ok || end.Err != nil || st.Err != nil {
				lv.Error = "offsets unavailable"
				continue
			}
			from := st.Offset
			if c, ok := committed.Lookup(name, part); ok && !dead && c.Err == nil && c.At > from {
				from = c.At
			}
			if end.Offset > from {
				lv.Waiting += end.Offset - from
				if !dead {
					if firsts[name] == nil {
						firsts[name] = map[int32]int64{}
					}
					firsts[name][part] = from
				}
			}
		}
		s.Levels = append(s.Levels, lv)
	}
	if s.Ordered {
		keys, _, err := readParked(ctx, cl, group)
		if err != nil {
			return retryShow{}, err
		}
		for _, k := range keys {
			if len(k.Parked) > 0 {
				s.ParkedKeys++
			}
		}
	}
	oldest := firstTimestamps(ctx, adm, firsts, now)
	for i := range s.Levels {
		if ts, ok := oldest[s.Levels[i].Topic]; ok {
			s.Levels[i].OldestMs = max(now.Sub(ts).Milliseconds(), 0)
		}
	}
	return s, nil
}

// firstTimestamps returns, per topic, the earliest timestamp of the records
// at the given offsets. Waiting records are not due yet, so they cannot be
// fetched: the timestamps are found with ListOffsets by timestamp, a binary
// search per partition (all partitions in each request) that relies on the
// retry topics' LogAppendTime timestamps growing with the offsets. The
// result is the timestamp of the record's batch (or archived chunk), at
// most a little newer than the record's own.
func firstTimestamps(ctx context.Context, adm *kadm.Client, at map[string]map[int32]int64, now time.Time) map[string]time.Time {
	out := map[string]time.Time{}
	if len(at) == 0 {
		return out
	}
	type bounds struct{ lo, hi int64 } // first offset at lo is <= the wanted one, at hi past it
	search := map[string]map[int32]*bounds{}
	var topics []string
	for t, ps := range at {
		topics = append(topics, t)
		search[t] = map[int32]*bounds{}
		for p := range ps {
			search[t][p] = &bounds{lo: 0, hi: now.Add(time.Hour).UnixMilli()}
		}
	}
	for range 64 {
		// One mid point per partition; partitions of a topic share a
		// request only when their mid points agree, so ask per mid point.
		mids := map[int64][]string{}
		open := false
		for t, ps := range search {
			for _, b := range ps {
				if b.hi-b.lo > 1 {
					open = true
					mid := b.lo + (b.hi-b.lo)/2
					mids[mid] = append(mids[mid], t)
				}
			}
		}
		if !open {
			break
		}
		for mid, ts := range mids {
			listed, err := adm.ListOffsetsAfterMilli(ctx, mid, ts...)
			if err != nil {
				return out
			}
			for _, t := range ts {
				for p, b := range search[t] {
					if b.hi-b.lo <= 1 || b.lo+(b.hi-b.lo)/2 != mid {
						continue
					}
					l, ok := listed.Lookup(t, p)
					if !ok || l.Err != nil {
						return out
					}
					if l.Offset <= at[t][p] {
						b.lo = mid
					} else {
						b.hi = mid
					}
				}
			}
		}
	}
	for t, ps := range search {
		for _, b := range ps {
			ts := time.UnixMilli(b.lo)
			if cur, ok := out[t]; !ok || ts.Before(cur) {
				out[t] = ts
			}
		}
	}
	return out
}

func writeRetryShow(w io.Writer, s retryShow) error {
	if !s.Policy {
		fmt.Fprintf(w, "Group %s has no retry policy\n", s.Group)
	} else {
		var ds []string
		for _, d := range s.DelaysMs {
			ds = append(ds, (time.Duration(d) * time.Millisecond).String())
		}
		fmt.Fprintf(w, "Group %s: delays %s, ordered %t, dead letters to %s\n", s.Group, strings.Join(ds, ","), s.Ordered, s.DeadLetterTopic)
		if s.Ordered {
			fmt.Fprintf(w, "Parked keys: %d (runnel retry parked %s)\n", s.ParkedKeys, s.Group)
		}
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "LEVEL\tTOPIC\tDELAY\tPARTITIONS\tWAITING\tOLDEST")
	for _, lv := range s.Levels {
		delay, oldest, waiting := "-", "-", strconv.FormatInt(lv.Waiting, 10)
		if lv.DelayMs > 0 {
			delay = (time.Duration(lv.DelayMs) * time.Millisecond).String()
		}
		if lv.OldestMs >= 0 {
			oldest = (time.Duration(lv.OldestMs) * time.Millisecond).String()
		}
		if lv.Error != "" {
			waiting = lv.Error
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\n", lv.Level, lv.Topic, delay, lv.Partitions, waiting, oldest)
	}
	return tw.Flush()
}

// readParked reads a group's parked-keys table (retry.<group>.parked) up
// to its current end.
func readParked(ctx context.Context, cl *kgo.Client, group string) (map[string]retry.ParkedKey, retry.Progress, error) {
	topic := retry.ParkedTopic(group)
	keys := map[string]retry.ParkedKey{}
	var prog retry.Progress
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, topic)
	if err != nil {
		return nil, prog, fmt.Errorf("list offsets of %s: %w", topic, err)
	}
	end, ok := ends.Lookup(topic, 0)
	if !ok || end.Err != nil {
		return nil, prog, fmt.Errorf("group %s has no parked-keys table (%s; is errors.retry.ordered set?)", group, topic)
	}
	if end.Offset == 0 {
		return keys, prog, nil
	}
	rc, err := kgo.NewClient(append(cl.Opts(), kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().AtStart()}}))...)
	if err != nil {
		return nil, prog, err
	}
	defer rc.Close()
	for next := int64(0); next < end.Offset; {
		fs := rc.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return nil, prog, err
		}
		var ferr error
		fs.EachError(func(_ string, _ int32, err error) { ferr = err })
		if ferr != nil {
			return nil, prog, fmt.Errorf("read %s: %w", topic, ferr)
		}
		fs.EachRecord(func(r *kgo.Record) {
			next = r.Offset + 1
			k := string(r.Key)
			switch {
			case k == retry.ProgressKey:
				_ = json.Unmarshal(r.Value, &prog)
			case strings.HasPrefix(k, "park/"):
				var pk retry.ParkedKey
				if r.Value == nil {
					delete(keys, k)
				} else if json.Unmarshal(r.Value, &pk) == nil {
					keys[k] = pk
				}
			}
		})
	}
	return keys, prog, nil
}

func newRetryParkedCommand(g *globalOptions) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "parked GROUP",
		Short: "List the parked keys of an ordered group",
		Long: `Lists the keys of an ordered group (errors.retry.ordered=true) with records
waiting in its retry topics: the origin topic, partition and key, the origin
offsets that hold later records of the key back (the first is the record
that failed; the rest wait behind it), and the release and discard marks.`,
		Example: `  runnel retry parked billing
  runnel retry parked billing --json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := g.newClient()
			if err != nil {
				return err
			}
			defer cl.Close()
			keys, _, err := readParked(cmd.Context(), cl, args[0])
			if err != nil {
				return err
			}
			list := make([]retry.ParkedKey, 0, len(keys))
			for _, k := range keys {
				list = append(list, k)
			}
			sort.Slice(list, func(i, j int) bool {
				a, b := list[i], list[j]
				if a.Topic != b.Topic {
					return a.Topic < b.Topic
				}
				if a.Partition != b.Partition {
					return a.Partition < b.Partition
				}
				return string(a.Key) < string(b.Key)
			})
			if asJSON {
				return writeJSON(cmd.OutOrStdout(), list)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "TOPIC\tPARTITION\tKEY\tPARKED\tRELEASED\tDISCARDED")
			for _, k := range list {
				var offs []string
				for _, o := range k.Parked {
					offs = append(offs, strconv.FormatInt(o, 10))
				}
				mark := func(v int64) string {
					if v < 0 {
						return "-"
					}
					return "<=" + strconv.FormatInt(v, 10)
				}
				fmt.Fprintf(tw, "%s\t%d\t%q\t%s\t%s\t%s\n", k.Topic, k.Partition, k.Key, orDash(strings.Join(offs, ",")), mark(k.Released), mark(k.Discarded))
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

// newRetryMarkCommand is runnel retry release (release) or discard.
func newRetryMarkCommand(g *globalOptions, release bool) *cobra.Command {
	var upTo int64
	use, short, long := "discard", "Send a parked key's failing record to the dead-letter topic, letting the records behind it go on",
		`Marks the key's first parked record (or every parked record up to --up-to
origin offset) discarded: the group's consumers send it to the dead-letter
topic when they meet it instead of processing it, and the key's later records
no longer wait for it; those behind it go on in order.`
	if release {
		use, short, long = "release", "Stop a parked key from holding its later records back",
			`Releases the key's parked records (up to --up-to origin offset; all of them
by default): they stay in their retry topics and are retried as usual, but no
longer hold back the key's later records, which are processed as they come.`
	}
	cmd := &cobra.Command{
		Use:     use + " GROUP TOPIC PARTITION KEY",
		Short:   short,
		Long:    long,
		Example: "  runnel retry " + use + " billing orders 3 customer-42",
		Args:    cobra.ExactArgs(4),
		RunE: func(cmd *cobra.Command, args []string) error {
			group, topic := args[0], args[1]
			p, err := strconv.ParseInt(args[2], 10, 32)
			if err != nil || p < 0 {
				return fmt.Errorf("partition %q: want a partition number", args[2])
			}
			origin := retry.Origin{Topic: topic, Partition: int32(p), Key: []byte(args[3])}
			cl, err := g.newClient()
			if err != nil {
				return err
			}
			defer cl.Close()
			to := upTo
			if !cmd.Flags().Changed("up-to") {
				keys, _, err := readParked(cmd.Context(), cl, group)
				if err != nil {
					return err
				}
				k, ok := keys[retry.ParkKey(origin)]
				if !ok || len(k.Parked) == 0 {
					return fmt.Errorf("key %q of %s/%d is not parked in group %s", args[3], topic, p, group)
				}
				to = k.Parked[0]
				if release {
					to = k.Parked[len(k.Parked)-1]
				}
			}
			key := retry.DiscardKey(origin)
			if release {
				key = retry.ReleaseKey(origin)
			}
			val, _ := json.Marshal(retry.Mark{UpTo: to})
			r := &kgo.Record{Topic: retry.ParkedTopic(group), Partition: 0, Key: []byte(key), Value: val}
			pcl, err := kgo.NewClient(append(cl.Opts(), kgo.RecordPartitioner(kgo.ManualPartitioner()))...)
			if err != nil {
				return err
			}
			defer pcl.Close()
			if err := pcl.ProduceSync(cmd.Context(), r).FirstErr(); err != nil {
				return fmt.Errorf("write the mark to %s: %w", r.Topic, err)
			}
			verb := "Discarded"
			if release {
				verb = "Released"
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s key %q of %s/%d in group %s up to origin offset %d\n", verb, args[3], topic, p, group, to)
			return nil
		},
	}
	cmd.Flags().Int64Var(&upTo, "up-to", 0, "the highest origin offset the mark covers (default: the first parked record for discard, the last for release)")
	return cmd
}
