package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
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
)

// txnStates are the transaction states Kafka defines, as ListTransactions
// filters by them.
var txnStates = []string{"Empty", "Ongoing", "PrepareCommit", "PrepareAbort", "CompleteCommit", "CompleteAbort", "Dead", "PrepareEpochFence"}

func newTxnCommand(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "txn",
		Aliases: []string{"transactions"},
		Short:   "List and describe transactions and the producers writing to partitions",
		Example: `  runnel txn list --state Ongoing --min-duration 5m
  runnel txn describe payments-1
  runnel txn producers events --partition 0`,
	}
	cmd.AddCommand(
		newTxnListCommand(g),
		newTxnDescribeCommand(g),
		newTxnProducersCommand(g),
	)
	return cmd
}

// canonicalTxnState maps a --state value, in any letter case, to Kafka's
// spelling.
func canonicalTxnState(s string) (string, error) {
	for _, st := range txnStates {
		if strings.EqualFold(strings.TrimSpace(s), st) {
			return st, nil
		}
	}
	return "", fmt.Errorf("--state %q: want one of %s", s, strings.Join(txnStates, ", "))
}

// txnListFilter is a validated txn list request.
type txnListFilter struct {
	states      []string
	producerIDs []int64
	minDuration time.Duration // 0 = no filter
}

// parseTxnListFilter checks the txn list flags.
func parseTxnListFilter(states []string, producerIDs []int64, minDuration time.Duration) (txnListFilter, error) {
	var f txnListFilter
	for _, s := range states {
		st, err := canonicalTxnState(s)
		if err != nil {
			return txnListFilter{}, err
		}
		if !slices.Contains(f.states, st) {
			f.states = append(f.states, st)
		}
	}
	for _, id := range producerIDs {
		if id < 0 {
			return txnListFilter{}, fmt.Errorf("--producer-id %d: must not be negative", id)
		}
		if !slices.Contains(f.producerIDs, id) {
			f.producerIDs = append(f.producerIDs, id)
		}
	}
	if minDuration < 0 {
		return txnListFilter{}, fmt.Errorf("--min-duration %s: must not be negative", minDuration)
	}
	if minDuration > 0 && minDuration < time.Millisecond {
		return txnListFilter{}, fmt.Errorf("--min-duration %s: the broker counts whole milliseconds", minDuration)
	}
	f.minDuration = minDuration
	return f, nil
}

// txnListJSON is one transaction of txn list --json.
type txnListJSON struct {
	TransactionalID string `json:"transactional_id"`
	ProducerID      int64  `json:"producer_id"`
	State           string `json:"state"`
	Coordinator     int32  `json:"coordinator"`
}

func newTxnListCommand(g *globalOptions) *cobra.Command {
	var (
		states      []string
		producerIDs []int64
		minDuration time.Duration
		asJSON      bool
	)
	cmd := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List transactional ids with their producer id and state",
		Long: `List the transactional ids the brokers coordinate, with their producer id
and state. Filters combine: --state and --producer-id may repeat (any of the
given values matches), --min-duration keeps only transactions open at least
that long (KIP-994; brokers must serve ListTransactions v1).

States: ` + strings.Join(txnStates, ", ") + `.`,
		Example: `  runnel txn list
  runnel txn list --state Ongoing --state PrepareCommit
  runnel txn list --producer-id 4001
  runnel txn list --state Ongoing --min-duration 10m   # hanging transactions?
  runnel txn list --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			f, err := parseTxnListFilter(states, producerIDs, minDuration)
			if err != nil {
				return err
			}
			cl, err := g.newClient()
			if err != nil {
				return err
			}
			defer cl.Close()
			listed, err := listTransactions(cmd.Context(), cl, f)
			if listed == nil {
				return err
			}
			out := cmd.OutOrStdout()
			if asJSON {
				rows := make([]txnListJSON, 0, len(listed))
				for _, l := range listed {
					rows = append(rows, txnListJSON{l.TxnID, l.ProducerID, l.State, l.Coordinator})
				}
				if werr := writeJSON(out, rows); werr != nil {
					return werr
				}
				return err
			}
			tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "TRANSACTIONAL-ID\tPRODUCER-ID\tSTATE")
			for _, l := range listed {
				fmt.Fprintf(tw, "%s\t%d\t%s\n", l.TxnID, l.ProducerID, orDash(l.State))
			}
			if werr := tw.Flush(); werr != nil {
				return werr
			}
			return err
		},
	}
	fl := cmd.Flags()
	fl.StringArrayVar(&states, "state", nil, "only transactions in this state (repeatable)")
	fl.Int64SliceVar(&producerIDs, "producer-id", nil, "only transactions of this producer id (repeatable)")
	fl.DurationVar(&minDuration, "min-duration", 0, "only transactions open at least this long, e.g. 30s or 15m")
	fl.BoolVar(&asJSON, "json", false, "print the transactions as JSON")
	return cmd
}

// listTransactions sends ListTransactions to every broker and returns the
// transactions sorted by id. The request is built here rather than through
// kadm, which cannot send the duration filter. When some brokers fail, the
// others' answers are returned together with an error naming the failures;
// a nil slice means nothing could be listed.
func listTransactions(ctx context.Context, cl *kgo.Client, f txnListFilter) ([]kadm.ListedTransaction, error) {
	req := kmsg.NewPtrListTransactionsRequest()
	req.StateFilters = f.states
	req.ProducerIDFilters = f.producerIDs
	req.DurationFilterMillis = -1
	if f.minDuration > 0 {
		req.DurationFilterMillis = f.minDuration.Milliseconds()
	}
	var (
		out      = []kadm.ListedTransaction{}
		errs     []error
		answered int
	)
	for _, shard := range cl.RequestSharded(ctx, req) {
		node := shard.Meta.NodeID
		if shard.Err != nil {
			errs = append(errs, fmt.Errorf("list transactions on broker %d: %w", node, kafkaErr(shard.Err, "")))
			continue
		}
		resp := shard.Resp.(*kmsg.ListTransactionsResponse)
		if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
			errs = append(errs, fmt.Errorf("list transactions on broker %d: %w", node, kafkaErr(err, "")))
			continue
		}
		if len(resp.UnknownStateFilters) > 0 {
			errs = append(errs, fmt.Errorf("broker %d does not know the state(s) %s", node, strings.Join(resp.UnknownStateFilters, ", ")))
			continue
		}
		if f.minDuration > 0 && shard.Req.GetVersion() < 1 {
			errs = append(errs, fmt.Errorf("broker %d cannot filter by --min-duration (it needs ListTransactions v1, Kafka 3.8 or later)", node))
			continue
		}
		answered++
		for _, t := range resp.TransactionStates {
			out = append(out, kadm.ListedTransaction{Coordinator: node, TxnID: t.TransactionalID, ProducerID: t.ProducerID, State: t.TransactionState})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].TxnID < out[j].TxnID })
	if answered == 0 && len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, errors.Join(errs...)
}

// txnErr turns a Kafka error about a transactional id into a sentence.
func txnErr(id string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, kerr.TransactionalIDNotFound):
		return fmt.Errorf("transactional id %q does not exist", id)
	case errors.Is(err, kerr.TransactionalIDAuthorizationFailed):
		return fmt.Errorf("not authorized to describe transactional id %q", id)
	}
	return fmt.Errorf("transactional id %q: %w", id, kafkaErr(err, ""))
}

// txnDescribeJSON is one transaction of txn describe --json.
type txnDescribeJSON struct {
	TransactionalID  string           `json:"transactional_id"`
	State            string           `json:"state"`
	ProducerID       int64            `json:"producer_id"`
	ProducerEpoch    int16            `json:"producer_epoch"`
	TimeoutMs        int32            `json:"timeout_ms"`
	StartTimestampMs *int64           `json:"start_timestamp_ms"`
	Coordinator      int32            `json:"coordinator"`
	Partitions       []topicPartsJSON `json:"partitions"`
}

// topicPartsJSON is a topic and some of its partitions.
type topicPartsJSON struct {
	Topic      string  `json:"topic"`
	Partitions []int32 `json:"partitions"`
}

func newTxnDescribeCommand(g *globalOptions) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "describe ID...",
		Short: "Show transactions' state, producer, timeout, start time and partitions",
		Long: `Show each transactional id's state, producer id and epoch, transaction
timeout, when its open transaction started ("-" when none is open), and the
partitions in that transaction. Unknown ids are reported one per line and
make the command fail after the others are shown.`,
		Example: `  runnel txn describe payments-1
  runnel txn describe payments-1 payments-2 --json`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ids, err := uniqueNames("transactional id", args)
			if err != nil {
				return err
			}
			adm, err := g.newAdmin()
			if err != nil {
				return err
			}
			defer adm.Close()
			described, err := adm.DescribeTransactions(cmd.Context(), ids...)
			if _, partial := errors.AsType[*kadm.ShardErrors](err); err != nil && !partial {
				return fmt.Errorf("describe transactions: %w", kafkaErr(err, ""))
			}
			var (
				found []kadm.DescribedTransaction
				errs  []error
			)
			for _, id := range ids {
				d, ok := described[id]
				switch {
				case !ok:
					errs = append(errs, fmt.Errorf("transactional id %q: the broker did not answer for it", id))
				case d.Err != nil:
					errs = append(errs, txnErr(id, d.Err))
				default:
					found = append(found, d)
				}
			}
			if err != nil && len(errs) == 0 {
				errs = append(errs, fmt.Errorf("describe transactions: %w", err))
			}
			out := cmd.OutOrStdout()
			if asJSON {
				rows := make([]txnDescribeJSON, 0, len(found))
				for _, d := range found {
					rows = append(rows, describedTxnJSON(d))
				}
				if werr := writeJSON(out, rows); werr != nil {
					return werr
				}
				return errors.Join(errs...)
			}
			now := time.Now()
			for i, d := range found {
				if i > 0 {
					fmt.Fprintln(out)
				}
				writeTxnDescription(out, d, now)
			}
			return errors.Join(errs...)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the transactions as JSON")
	return cmd
}

// uniqueNames drops repeated arguments, keeping the first order, and
// rejects empty ones.
func uniqueNames(kind string, args []string) ([]string, error) {
	out := make([]string, 0, len(args))
	for _, a := range args {
		if a == "" {
			return nil, fmt.Errorf("empty %s", kind)
		}
		if !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	return out, nil
}

func describedTxnJSON(d kadm.DescribedTransaction) txnDescribeJSON {
	j := txnDescribeJSON{
		TransactionalID: d.TxnID, State: d.State, ProducerID: d.ProducerID, ProducerEpoch: d.ProducerEpoch,
		TimeoutMs: d.TimeoutMillis, Coordinator: d.Coordinator, Partitions: topicPartsList(d.Topics),
	}
	if d.StartTimestamp >= 0 {
		ts := d.StartTimestamp
		j.StartTimestampMs = &ts
	}
	return j
}

// topicPartsList returns a topics set sorted by topic and partition.
func topicPartsList(s kadm.TopicsSet) []topicPartsJSON {
	out := []topicPartsJSON{}
	for _, t := range s.Sorted() {
		out = append(out, topicPartsJSON{Topic: t.Topic, Partitions: t.Partitions})
	}
	return out
}

func writeTxnDescription(w io.Writer, d kadm.DescribedTransaction, now time.Time) {
	started := formatMillis(d.StartTimestamp)
	if d.StartTimestamp >= 0 {
		if age := now.Sub(time.UnixMilli(d.StartTimestamp)); age >= 0 {
			started += fmt.Sprintf(" (%s ago)", age.Truncate(time.Second))
		}
	}
	parts := map[string][]int32{}
	for t, ps := range d.Topics {
		for p := range ps {
			parts[t] = append(parts[t], p)
		}
	}
	fmt.Fprintf(w, "Transactional ID: %s\nState:            %s\nProducer ID:      %d\nProducer epoch:   %d\nTimeout:          %s\nStarted:          %s\nCoordinator:      %d\nPartitions:       %s\n",
		d.TxnID, orDash(d.State), d.ProducerID, d.ProducerEpoch,
		time.Duration(d.TimeoutMillis)*time.Millisecond, started, d.Coordinator, formatTopicPartitions(parts))
}

// formatMillis renders a Unix millisecond timestamp in local time, or "-"
// for Kafka's "none" (negative).
func formatMillis(ms int64) string {
	if ms < 0 {
		return "-"
	}
	return time.UnixMilli(ms).Format("2006-01-02T15:04:05.000Z07:00")
}

// producerJSON is one producer of txn producers --json.
type producerJSON struct {
	Topic                 string `json:"topic"`
	Partition             int32  `json:"partition"`
	ProducerID            int64  `json:"producer_id"`
	ProducerEpoch         int16  `json:"producer_epoch"`
	LastSequence          int32  `json:"last_sequence"`
	LastTimestampMs       int64  `json:"last_timestamp_ms"`
	CurrentTxnStartOffset int64  `json:"current_txn_start_offset"`
}

func newTxnProducersCommand(g *globalOptions) *cobra.Command {
	var (
		partitions []int32
		asJSON     bool
	)
	cmd := &cobra.Command{
		Use:   "producers TOPIC",
		Short: "Show the idempotent and transactional producers writing to a topic's partitions",
		Long: `Show, per partition, the producers the partition leader keeps state for:
producer id and epoch, the last sequence number and timestamp it wrote, and
the first offset of its open transaction ("-" when none is open). A
transaction start offset far behind the log end hints at a hanging
transaction. Without --partition every partition of the topic is shown.`,
		Example: `  runnel txn producers events
  runnel txn producers events --partition 0 --partition 3
  runnel txn producers events --json`,
		Args: exactArgs(1, "TOPIC"),
		RunE: func(cmd *cobra.Command, args []string) error {
			topic := args[0]
			for _, p := range partitions {
				if p < 0 {
					return fmt.Errorf("--partition %d: must not be negative", p)
				}
			}
			ctx := cmd.Context()
			adm, err := g.newAdmin()
			if err != nil {
				return err
			}
			defer adm.Close()
			meta, err := adm.ListTopics(ctx, topic)
			if err != nil {
				return fmt.Errorf("look up topic %q: %w", topic, kafkaErr(err, ""))
			}
			td, ok := meta[topic]
			if !ok {
				return fmt.Errorf("topic %q does not exist", topic)
			}
			if td.Err != nil {
				return topicErr(topic, td.Err, "")
			}
			ps := partitions
			if len(ps) == 0 {
				ps = td.Partitions.Numbers()
			}
			slices.Sort(ps)
			ps = slices.Compact(ps)
			for _, p := range ps {
				if _, ok := td.Partitions[p]; !ok {
					return fmt.Errorf("topic %q has no partition %d (it has %d)", topic, p, len(td.Partitions))
				}
			}
			described, err := adm.DescribeProducers(ctx, kadm.TopicsSet{topic: setOf(ps)})
			if _, partial := errors.AsType[*kadm.ShardErrors](err); err != nil && !partial {
				return fmt.Errorf("describe producers of %q: %w", topic, kafkaErr(err, ""))
			}
			var (
				rows []kadm.DescribedProducer
				errs []error
			)
			for _, p := range ps {
				dp, ok := described[topic].Partitions[p]
				switch {
				case !ok:
					errs = append(errs, fmt.Errorf("%s/%d: the broker did not answer for this partition", topic, p))
				case dp.Err != nil:
					errs = append(errs, fmt.Errorf("%s/%d: %w", topic, p, kafkaErr(dp.Err, dp.ErrMessage)))
				default:
					rows = append(rows, dp.ActiveProducers.Sorted()...)
				}
			}
			if err != nil && len(errs) == 0 {
				errs = append(errs, fmt.Errorf("describe producers of %q: %w", topic, err))
			}
			if werr := writeProducers(cmd.OutOrStdout(), topic, rows, asJSON); werr != nil {
				return werr
			}
			return errors.Join(errs...)
		},
	}
	cmd.Flags().Int32SliceVarP(&partitions, "partition", "p", nil, "only this partition (repeatable)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the producers as JSON")
	return cmd
}

// setOf returns ps as a set.
func setOf(ps []int32) map[int32]struct{} {
	m := make(map[int32]struct{}, len(ps))
	for _, p := range ps {
		m[p] = struct{}{}
	}
	return m
}

func writeProducers(w io.Writer, topic string, rows []kadm.DescribedProducer, asJSON bool) error {
	if asJSON {
		out := make([]producerJSON, 0, len(rows))
		for _, r := range rows {
			out = append(out, producerJSON{r.Topic, r.Partition, r.ProducerID, r.ProducerEpoch, r.LastSequence, r.LastTimestamp, r.CurrentTxnStartOffset})
		}
		return writeJSON(w, out)
	}
	if len(rows) == 0 {
		fmt.Fprintf(w, "No producers with state on topic %q.\n", topic)
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PARTITION\tPRODUCER-ID\tEPOCH\tLAST-SEQUENCE\tLAST-TIMESTAMP\tTXN-START-OFFSET")
	for _, r := range rows {
		txnStart := "-"
		if r.CurrentTxnStartOffset >= 0 {
			txnStart = strconv.FormatInt(r.CurrentTxnStartOffset, 10)
		}
		seq := "-"
		if r.LastSequence >= 0 {
			seq = strconv.FormatInt(int64(r.LastSequence), 10)
		}
		fmt.Fprintf(tw, "%d\t%d\t%d\t%s\t%s\t%s\n", r.Partition, r.ProducerID, r.ProducerEpoch, seq, formatMillis(r.LastTimestamp), txnStart)
	}
	return tw.Flush()
}

// writeJSON writes v as indented JSON followed by a newline.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
