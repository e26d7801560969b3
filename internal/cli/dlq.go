package cli

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/runnel-dev/runnel/internal/config"
	"github.com/runnel-dev/runnel/internal/share"
)

func newDLQCommand(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "dlq",
		Short: "Inspect share groups' dead-letter topics and replay dead letters",
		Long: `A share group with errors.deadletterqueue.topic.name writes the records its
consumers reject, and those past its delivery count limit, to that topic
(KIP-1191). Each dead letter carries headers naming its origin:
__dlq.errors.group, __dlq.errors.topic, __dlq.errors.partition,
__dlq.errors.offset, __dlq.errors.delivery.count and __dlq.errors.message
(why). With errors.deadletterqueue.copy.record.enable it also carries the
original key, value and headers; otherwise (the default) only the headers,
and replay reads the original record from its topic.`,
		Example: `  runnel dlq list
  runnel dlq show dlq.orders --group billing --limit 20
  runnel dlq replay dlq.orders --offsets 3,5-9 --dry-run
  runnel dlq replay dlq.orders --all`,
	}
	cmd.AddCommand(newDLQListCommand(g), newDLQShowCommand(g), newDLQReplayCommand(g))
	return cmd
}

func newDLQListCommand(g *globalOptions) *cobra.Command {
	var prefix string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the dead-letter topics and how many records they hold",
		Long: `List the topics whose name starts with --prefix (the cluster's
errors.deadletterqueue.topic.name.prefix, "dlq." by default) or that have
errors.deadletterqueue.group.enable=true, with their record counts (end
offset minus start offset, summed over partitions).`,
		Example: `  runnel dlq list
  runnel dlq list --prefix dead.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			adm, err := g.newAdmin()
			if err != nil {
				return err
			}
			defer adm.Close()
			return runDLQList(cmd.Context(), adm, prefix, cmd.OutOrStdout())
		},
	}
	cmd.Flags().StringVar(&prefix, "prefix", config.DefaultDeadLetters().TopicPrefix, "dead-letter topic name prefix")
	return cmd
}

func runDLQList(ctx context.Context, adm *kadm.Client, prefix string, w io.Writer) error {
	topics, err := adm.ListTopics(ctx)
	if err != nil {
		return fmt.Errorf("list topics: %w", err)
	}
	var names []string
	var others []string
	for _, t := range topics.Sorted() {
		if t.IsInternal || t.Err != nil {
			continue
		}
		if prefix != "" && strings.HasPrefix(t.Topic, prefix) {
			names = append(names, t.Topic)
		} else {
			others = append(others, t.Topic)
		}
	}
	if len(others) > 0 {
		cfgs, err := adm.DescribeTopicConfigs(ctx, others...)
		if err != nil {
			return fmt.Errorf("describe topic configs: %w", err)
		}
		for _, rc := range cfgs {
			for _, c := range rc.Configs {
				if c.Key == share.TopicConfigDLQEnable && strings.EqualFold(c.MaybeValue(), "true") {
					names = append(names, rc.Name)
				}
			}
		}
		sort.Strings(names)
	}
	if len(names) == 0 {
		fmt.Fprintf(w, "No dead-letter topics (names starting with %q or with %s=true).\n", prefix, share.TopicConfigDLQEnable)
		return nil
	}
	starts, err := adm.ListStartOffsets(ctx, names...)
	if err == nil {
		err = starts.Error()
	}
	if err != nil {
		return fmt.Errorf("list start offsets: %w", err)
	}
	ends, err := adm.ListEndOffsets(ctx, names...)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return fmt.Errorf("list end offsets: %w", err)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TOPIC\tPARTITIONS\tRECORDS")
	for _, name := range names {
		var parts int
		var count int64
		ends.Each(func(o kadm.ListedOffset) {
			if o.Topic != name {
				return
			}
			parts++
			if s, ok := starts.Lookup(o.Topic, o.Partition); ok {
				count += max(o.Offset-s.Offset, 0)
			}
		})
		fmt.Fprintf(tw, "%s\t%d\t%d\n", name, parts, count)
	}
	return tw.Flush()
}

// deadLetter is one record of a dead-letter topic with its context
// headers decoded.
type deadLetter struct {
	Partition int32 // in the dead-letter topic
	Offset    int64
	Group     string
	Topic     string // origin
	OrigPart  int32
	OrigOff   int64
	Delivery  string
	Message   string
	// Copied: the letter carries the original record (a key, a value or
	// headers of its own); Key, Value and Headers are that record.
	Copied  bool
	Key     []byte
	Value   []byte
	Headers []kgo.RecordHeader
	// Err says why the record is no dead letter (its context headers are
	// missing or malformed); nil for a dead letter.
	Err error
}

// decodeDeadLetter reads a record's context headers; Err is set when it
// is not a dead letter.
func decodeDeadLetter(r *kgo.Record) deadLetter {
	d, err := decodeContext(r)
	d.Err = err
	return d
}

func decodeContext(r *kgo.Record) (deadLetter, error) {
	d := deadLetter{Partition: r.Partition, Offset: r.Offset, Key: r.Key, Value: r.Value, OrigPart: -1, OrigOff: -1}
	var err error
	for _, h := range r.Headers {
		v := string(h.Value)
		switch h.Key {
		case share.HeaderDLQGroup:
			d.Group = v
		case share.HeaderDLQTopic:
			d.Topic = v
		case share.HeaderDLQPartition:
			var n int64
			n, err = strconv.ParseInt(v, 10, 32)
			d.OrigPart = int32(n)
		case share.HeaderDLQOffset:
			d.OrigOff, err = strconv.ParseInt(v, 10, 64)
		case share.HeaderDLQDeliveryCount:
			d.Delivery = v
		case share.HeaderDLQMessage:
			d.Message = v
		default:
			if !strings.HasPrefix(h.Key, share.DLQHeaderPrefix) {
				d.Headers = append(d.Headers, h)
			}
		}
		if err != nil {
			return d, fmt.Errorf("record %d:%d: header %s=%q is not a number", r.Partition, r.Offset, h.Key, v)
		}
	}
	if d.Topic == "" || d.OrigPart < 0 || d.OrigOff < 0 {
		return d, fmt.Errorf("record %d:%d has no %s, %s and %s headers: it is not a dead letter",
			r.Partition, r.Offset, share.HeaderDLQTopic, share.HeaderDLQPartition, share.HeaderDLQOffset)
	}
	d.Copied = r.Key != nil || r.Value != nil || len(d.Headers) > 0
	return d, nil
}

// readRange reads the records of topic's partitions from their start to
// their end offset as listed now (want: partition -> [start, end)),
// passing each to each until it returns false. It stops when every
// partition reached its end, or after idle without a record (offsets that
// hold no record, such as compacted ones). Within a partition records come
// in offset order.
func readRange(ctx context.Context, g *globalOptions, topic string, want map[int32][2]int64, idle time.Duration, each func(*kgo.Record) bool) error {
	offsets := map[int32]kgo.Offset{}
	left := map[int32]int64{} // next offset still wanted
	for p, r := range want {
		if r[0] < r[1] {
			offsets[p] = kgo.NewOffset().At(r[0])
			left[p] = r[0]
		}
	}
	if len(offsets) == 0 {
		return nil
	}
	cl, err := g.newClient(kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: offsets}),
		kgo.FetchIsolationLevel(kgo.ReadUncommitted()))
	if err != nil {
		return err
	}
	defer cl.Close()
	for len(left) > 0 {
		pctx, cancel := context.WithTimeout(ctx, idle)
		fs := cl.PollFetches(pctx)
		cancel()
		if err := ctx.Err(); err != nil {
			return err
		}
		var ferr error
		fs.EachError(func(t string, p int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
				ferr = topicErr(t, err, "")
			}
		})
		if ferr != nil {
			return ferr
		}
		got, stop := 0, false
		fs.EachRecord(func(r *kgo.Record) {
			got++
			next, ok := left[r.Partition]
			if stop || !ok || r.Offset < next {
				return
			}
			end := want[r.Partition][1]
			if r.Offset+1 >= end {
				delete(left, r.Partition)
			} else {
				left[r.Partition] = r.Offset + 1
			}
			if r.Offset < end && !each(r) {
				stop = true
			}
		})
		if stop || got == 0 {
			// Done, or idle: the rest of the range holds no record.
			return nil
		}
	}
	return nil
}

// topicRange lists topic's partitions' [start, end) offsets (only
// partition p when p >= 0).
func topicRange(ctx context.Context, adm *kadm.Client, topic string, p int32) (map[int32][2]int64, error) {
	starts, err := adm.ListStartOffsets(ctx, topic)
	if err == nil {
		err = starts.Error()
	}
	if err != nil {
		return nil, topicErr(topic, err, "")
	}
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return nil, topicErr(topic, err, "")
	}
	out := map[int32][2]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if p >= 0 && o.Partition != p {
			return
		}
		s, _ := starts.Lookup(o.Topic, o.Partition)
		out[o.Partition] = [2]int64{s.Offset, o.Offset}
	})
	if len(out) == 0 {
		if p >= 0 {
			return nil, fmt.Errorf("topic %q has no partition %d", topic, p)
		}
		return nil, fmt.Errorf("topic %q does not exist", topic)
	}
	return out, nil
}

// readDeadLetters reads and decodes the records of topic (partition p, or
// all when p < 0), passing each to each until it returns false.
func readDeadLetters(ctx context.Context, g *globalOptions, adm *kadm.Client, topic string, p int32, each func(deadLetter) bool) error {
	want, err := topicRange(ctx, adm, topic, p)
	if err != nil {
		return err
	}
	return readRange(ctx, g, topic, want, 5*time.Second, func(r *kgo.Record) bool { return each(decodeDeadLetter(r)) })
}

func newDLQShowCommand(g *globalOptions) *cobra.Command {
	var (
		group     string
		limit     int
		partition int32
	)
	cmd := &cobra.Command{
		Use:   "show TOPIC",
		Short: "Print the dead letters of a dead-letter topic with their origin",
		Long: `Print the dead letters of a dead-letter topic, oldest first: where each
sits in the dead-letter topic (partition and offset), the share group that
gave up on it, its origin (topic/partition@offset), its delivery count, why
it is there, and the copied key and value (or "metadata only").`,
		Example: `  runnel dlq show dlq.orders
  runnel dlq show dlq.orders --group billing --limit 20`,
		Args: exactArgs(1, "TOPIC"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if limit < 0 {
				return errors.New("--limit must be 0 (all) or more")
			}
			adm, err := g.newAdmin()
			if err != nil {
				return err
			}
			defer adm.Close()
			var letters []deadLetter
			more := false
			err = readDeadLetters(cmd.Context(), g, adm, args[0], partition, func(d deadLetter) bool {
				if group != "" && d.Group != group {
					return true
				}
				if limit > 0 && len(letters) == limit {
					more = true
					return false
				}
				letters = append(letters, d)
				return true
			})
			if err != nil {
				return err
			}
			sortLetters(letters)
			return writeDeadLetters(cmd.OutOrStdout(), letters, more)
		},
	}
	f := cmd.Flags()
	f.StringVar(&group, "group", "", "only the dead letters of this share group")
	f.IntVar(&limit, "limit", 100, "print at most this many dead letters (0: all)")
	f.Int32VarP(&partition, "partition", "p", -1, "only this partition of the dead-letter topic")
	return cmd
}

// sortLetters orders letters by partition and offset.
func sortLetters(letters []deadLetter) {
	slices.SortFunc(letters, func(a, b deadLetter) int {
		return cmp.Or(cmp.Compare(a.Partition, b.Partition), cmp.Compare(a.Offset, b.Offset))
	})
}

// writeDeadLetters prints one row per letter; more says the limit cut the
// list short.
func writeDeadLetters(w io.Writer, letters []deadLetter, more bool) error {
	if len(letters) == 0 {
		fmt.Fprintln(w, "No dead letters.")
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "PARTITION\tOFFSET\tGROUP\tORIGIN\tDELIVERIES\tREASON\tRECORD")
	for _, d := range letters {
		if d.Err != nil {
			fmt.Fprintf(tw, "%d\t%d\t-\t-\t-\t-\tnot a dead letter: key=%s value=%s\n", d.Partition, d.Offset, showBytes(d.Key), showBytes(d.Value))
			continue
		}
		rec := "metadata only"
		if d.Copied {
			rec = fmt.Sprintf("key=%s value=%s", showBytes(d.Key), showBytes(d.Value))
			for _, h := range d.Headers {
				rec += fmt.Sprintf(" %s=%s", h.Key, showBytes(h.Value))
			}
		}
		fmt.Fprintf(tw, "%d\t%d\t%s\t%s/%d@%d\t%s\t%s\t%s\n", d.Partition, d.Offset, orDash(d.Group),
			d.Topic, d.OrigPart, d.OrigOff, orDash(d.Delivery), orDash(d.Message), rec)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if more {
		fmt.Fprintln(w, "... more dead letters follow (raise --limit, 0 for all)")
	}
	return nil
}

// showBytes prints a key or value: null, quoted text, or its size when it
// is not text or too long.
func showBytes(b []byte) string {
	switch {
	case b == nil:
		return "null"
	case !utf8.Valid(b) || len(b) > 64:
		return fmt.Sprintf("<%d bytes>", len(b))
	}
	return strconv.Quote(string(b))
}

// offsetSet is a parsed --offsets value: offsets and inclusive ranges.
type offsetSet [][2]int64

// parseOffsetSet parses "3,5-9".
func parseOffsetSet(s string) (offsetSet, error) {
	var out offsetSet
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.ParseInt(strings.TrimSpace(lo), 10, 64)
		if err != nil || a < 0 {
			return nil, fmt.Errorf("--offsets %q: %q is not an offset or a range a-b", s, part)
		}
		b := a
		if isRange {
			if b, err = strconv.ParseInt(strings.TrimSpace(hi), 10, 64); err != nil || b < a {
				return nil, fmt.Errorf("--offsets %q: %q is not an offset or a range a-b", s, part)
			}
		}
		out = append(out, [2]int64{a, b})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("--offsets %q names no offset", s)
	}
	return out, nil
}

func (s offsetSet) has(o int64) bool {
	for _, r := range s {
		if o >= r[0] && o <= r[1] {
			return true
		}
	}
	return false
}

// replayItem is one dead letter to replay and the record it becomes.
type replayItem struct {
	letter deadLetter
	record *kgo.Record
}

// selectLetters picks the letters --offsets names (all of them when sel
// is nil); an offset that is no dead letter is an error.
func selectLetters(letters []deadLetter, sel offsetSet) ([]deadLetter, error) {
	var out []deadLetter
	found := map[int64]bool{}
	for _, d := range letters {
		if sel == nil || sel.has(d.Offset) {
			if d.Err != nil {
				return nil, d.Err
			}
			out = append(out, d)
			found[d.Offset] = true
		}
	}
	for _, r := range sel { // nil for --all
		if r[1]-r[0] > 1<<20 {
			continue // a wide range need not be dense
		}
		for o := r[0]; o <= r[1]; o++ {
			if !found[o] {
				return nil, fmt.Errorf("offset %d holds no dead letter (see runnel dlq show)", o)
			}
		}
	}
	return out, nil
}

// planReplay turns the chosen letters into the records to produce: a
// copied letter's own key, value and headers, else the original record
// read from its topic. It refuses, naming them, when originals are gone.
func planReplay(ctx context.Context, g *globalOptions, adm *kadm.Client, letters []deadLetter) ([]replayItem, error) {
	items := make([]replayItem, len(letters))
	// Metadata-only letters by origin partition.
	type origin struct {
		topic string
		part  int32
	}
	need := map[origin][]int{}
	for i, d := range letters {
		items[i].letter = d
		if d.Copied {
			items[i].record = &kgo.Record{Topic: d.Topic, Partition: d.OrigPart, Key: d.Key, Value: d.Value, Headers: d.Headers}
			continue
		}
		o := origin{d.Topic, d.OrigPart}
		need[o] = append(need[o], i)
	}
	var gone []string
	origins := make([]origin, 0, len(need))
	for o := range need {
		origins = append(origins, o)
	}
	sort.Slice(origins, func(i, j int) bool {
		return origins[i].topic < origins[j].topic || origins[i].topic == origins[j].topic && origins[i].part < origins[j].part
	})
	for _, o := range origins {
		idx := need[o]
		rng, err := topicRange(ctx, adm, o.topic, o.part)
		if err != nil {
			for _, i := range idx {
				gone = append(gone, fmt.Sprintf("%d:%d (%s/%d@%d: %v)", letters[i].Partition, letters[i].Offset, o.topic, o.part, letters[i].OrigOff, err))
			}
			continue
		}
		start, end := rng[o.part][0], rng[o.part][1]
		lo, hi := int64(-1), int64(-1)
		for _, i := range idx {
			off := letters[i].OrigOff
			if off < start || off >= end {
				continue
			}
			if lo < 0 || off < lo {
				lo = off
			}
			hi = max(hi, off)
		}
		byOffset := map[int64]*kgo.Record{}
		if lo >= 0 {
			err := readRange(ctx, g, o.topic, map[int32][2]int64{o.part: {lo, hi + 1}}, 3*time.Second, func(r *kgo.Record) bool {
				byOffset[r.Offset] = r
				return true
			})
			if err != nil {
				return nil, err
			}
		}
		for _, i := range idx {
			d := letters[i]
			r, ok := byOffset[d.OrigOff]
			if !ok {
				why := "compacted away"
				if d.OrigOff < start {
					why = fmt.Sprintf("deleted: the partition starts at offset %d", start)
				} else if d.OrigOff >= end {
					why = fmt.Sprintf("past the partition's end, %d", end)
				}
				gone = append(gone, fmt.Sprintf("%d:%d (%s/%d@%d, %s)", d.Partition, d.Offset, d.Topic, d.OrigPart, d.OrigOff, why))
				continue
			}
			items[i].record = &kgo.Record{Topic: d.Topic, Partition: d.OrigPart, Key: r.Key, Value: r.Value, Headers: r.Headers}
		}
	}
	if len(gone) > 0 {
		return nil, fmt.Errorf("cannot replay: %d dead letter(s) carry only metadata and their original record is gone from the log: %s; nothing was replayed (leave them out with --offsets)",
			len(gone), strings.Join(gone, ", "))
	}
	return items, nil
}

func newDLQReplayCommand(g *globalOptions) *cobra.Command {
	var (
		offsets   string
		all       bool
		dryRun    bool
		partition int32
	)
	cmd := &cobra.Command{
		Use:   "replay TOPIC",
		Short: "Produce chosen dead letters again to their origin topic",
		Long: `Produce the chosen dead letters of a dead-letter topic again to the topic
and partition they came from (their __dlq.errors.topic and
__dlq.errors.partition headers). A letter that carries the original record
is replayed as it is (key, value, headers); a metadata-only letter's
original is read from its topic at __dlq.errors.offset. If any chosen
letter's original is gone (deleted by retention or DeleteRecords,
compacted away) nothing is replayed and the command names them.

--offsets takes offsets of the dead-letter topic and ranges (3,5-9); with
a dead-letter topic of several partitions give --partition as well.
Replayed dead letters stay in the dead-letter topic.`,
		Example: `  runnel dlq replay dlq.orders --offsets 3,5-9 --dry-run
  runnel dlq replay dlq.orders --partition 1 --offsets 12
  runnel dlq replay dlq.orders --all`,
		Args: exactArgs(1, "TOPIC"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if all == (offsets != "") {
				return errors.New("give exactly one of --offsets and --all")
			}
			var sel offsetSet
			if offsets != "" {
				var err error
				if sel, err = parseOffsetSet(offsets); err != nil {
					return err
				}
			}
			ctx := cmd.Context()
			adm, err := g.newAdmin()
			if err != nil {
				return err
			}
			defer adm.Close()
			topic := args[0]
			if sel != nil && partition < 0 {
				rng, err := topicRange(ctx, adm, topic, -1)
				if err != nil {
					return err
				}
				if len(rng) > 1 {
					return fmt.Errorf("topic %q has %d partitions: say which with --partition", topic, len(rng))
				}
			}
			var letters []deadLetter
			err = readDeadLetters(ctx, g, adm, topic, partition, func(d deadLetter) bool {
				letters = append(letters, d)
				return true
			})
			if err != nil {
				return err
			}
			sortLetters(letters)
			chosen, err := selectLetters(letters, sel)
			if err != nil {
				return err
			}
			if len(chosen) == 0 {
				fmt.Fprintf(cmd.OutOrStdout(), "No dead letters in %s to replay.\n", topic)
				return nil
			}
			items, err := planReplay(ctx, g, adm, chosen)
			if err != nil {
				return err
			}
			return applyReplay(ctx, g, topic, items, dryRun, cmd.OutOrStdout())
		},
	}
	f := cmd.Flags()
	f.StringVar(&offsets, "offsets", "", "dead-letter topic offsets and ranges to replay, e.g. 3,5-9")
	f.BoolVar(&all, "all", false, "replay every dead letter of the topic (or of --partition)")
	f.BoolVar(&dryRun, "dry-run", false, "print what would be replayed and produce nothing")
	f.Int32VarP(&partition, "partition", "p", -1, "only this partition of the dead-letter topic")
	return cmd
}

// applyReplay produces the planned records (or, dry, prints them).
func applyReplay(ctx context.Context, g *globalOptions, topic string, items []replayItem, dryRun bool, w io.Writer) error {
	if dryRun {
		for _, it := range items {
			d := it.letter
			fmt.Fprintf(w, "Would replay %s %d:%d to %s/%d (original offset %d, %s)\n", topic, d.Partition, d.Offset,
				d.Topic, d.OrigPart, d.OrigOff, replaySource(d))
		}
		fmt.Fprintf(w, "Dry run: %d dead letter(s) would be replayed.\n", len(items))
		return nil
	}
	cl, err := g.newClient(kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		return err
	}
	defer cl.Close()
	recs := make([]*kgo.Record, len(items))
	for i, it := range items {
		recs[i] = it.record
	}
	res := cl.ProduceSync(ctx, recs...)
	var failed []string
	for i, r := range res {
		d := items[i].letter
		if r.Err != nil {
			failed = append(failed, fmt.Sprintf("%d:%d: %v", d.Partition, d.Offset, topicErr(d.Topic, r.Err, "")))
			continue
		}
		fmt.Fprintf(w, "Replayed %s %d:%d to %s/%d at offset %d (original offset %d, %s)\n", topic, d.Partition, d.Offset,
			d.Topic, d.OrigPart, r.Record.Offset, d.OrigOff, replaySource(d))
	}
	if len(failed) > 0 {
		return fmt.Errorf("%d of %d dead letter(s) not replayed: %s", len(failed), len(items), strings.Join(failed, "; "))
	}
	fmt.Fprintf(w, "Replayed %d dead letter(s).\n", len(items))
	return nil
}

func replaySource(d deadLetter) string {
	if d.Copied {
		return "copied record"
	}
	return "read from the log"
}
