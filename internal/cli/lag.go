package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"text/tabwriter"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// recordWait bounds how long lag seconds wait for the records at the
// committed offsets; a partition that does not answer in time shows "-".
const recordWait = 5 * time.Second

func newGroupLagCommand(g *globalOptions) *cobra.Command {
	var (
		asJSON  bool
		metrics []string
	)
	cmd := &cobra.Command{
		Use:   "lag [GROUP...]",
		Short: "Show groups' lag per partition, in offsets and in seconds",
		Long: `Show, for every partition a group has committed (every group when none is
named): the committed offset, the end offset (high watermark), the last stable
offset (LSO, what a read_committed consumer can reach), the lag against the
end offset, the lag in seconds (the age of the first unconsumed record: now
minus the timestamp of the record at the committed offset, read from the
cluster; 0 when caught up), and with --metrics the commit age and the status
(OK, WARN, REWIND, STALLED, STOPPED after Burrow's rules), which only the
broker knows: they are read from the /metrics of the Runnel brokers given
(each group is exported by its coordinator). Works against any Kafka cluster
for the offsets and lag seconds.`,
		Example: `  runnel group lag
  runnel group lag audit billing --json
  runnel group lag audit --metrics http://localhost:8080/metrics`,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			adm, err := g.newAdmin()
			if err != nil {
				return err
			}
			defer adm.Close()
			groups, err := uniqueNames("group id", args)
			if err != nil {
				return err
			}
			if len(groups) == 0 {
				listed, err := adm.ListGroups(ctx)
				if err != nil {
					return fmt.Errorf("list groups: %w", kafkaErr(err, ""))
				}
				groups = listed.Groups()
				sort.Strings(groups)
			}
			rows, errs := groupLag(ctx, g, adm, groups, time.Now)
			for _, u := range metrics {
				if err := addBrokerFigures(ctx, u, rows); err != nil {
					errs = append(errs, err)
				}
			}
			out := cmd.OutOrStdout()
			if asJSON {
				if rows == nil {
					rows = []partitionLag{}
				}
				if err := writeJSON(out, rows); err != nil {
					return err
				}
			} else if err := writeGroupLag(out, rows); err != nil {
				return err
			}
			return errors.Join(errs...)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the partitions as JSON")
	cmd.Flags().StringSliceVar(&metrics, "metrics", nil, "Runnel brokers' /metrics URLs to read commit age and status from")
	return cmd
}

// partitionLag is one line of group lag; absent values are null in JSON.
type partitionLag struct {
	Group      string   `json:"group"`
	Topic      string   `json:"topic"`
	Partition  int32    `json:"partition"`
	Committed  int64    `json:"committed"`
	End        *int64   `json:"end"`
	LSO        *int64   `json:"lso"`
	Lag        *int64   `json:"lag"`
	StableLag  *int64   `json:"lag_stable"`
	LagSeconds *float64 `json:"lag_seconds"`
	CommitAge  *float64 `json:"commit_age_seconds"`
	Status     string   `json:"status,omitempty"`
	Error      string   `json:"error,omitempty"`
}

// groupLag computes the lag of groups' committed partitions with Kafka
// requests only: OffsetFetch, ListOffsets (latest, read_uncommitted and
// read_committed) and a fetch of the record at each lagging committed
// offset.
func groupLag(ctx context.Context, g *globalOptions, adm *kadm.Client, groups []string, now func() time.Time) ([]partitionLag, []error) {
	var (
		rows   []partitionLag
		errs   []error
		topics []string
	)
	fetched := adm.FetchManyOffsets(ctx, groups...)
	for _, group := range groups {
		f, ok := fetched[group]
		switch {
		case !ok:
			errs = append(errs, fmt.Errorf("group %q: the broker did not answer for its offsets", group))
			continue
		case f.Err != nil:
			errs = append(errs, groupErr(group, f.Err, ""))
			continue
		}
		f.Fetched.Each(func(o kadm.OffsetResponse) {
			if o.Err != nil {
				rows = append(rows, partitionLag{Group: group, Topic: o.Topic, Partition: o.Partition, Committed: -1, Error: kafkaErr(o.Err, "").Error()})
				return
			}
			if o.At < 0 {
				return
			}
			rows = append(rows, partitionLag{Group: group, Topic: o.Topic, Partition: o.Partition, Committed: o.At})
			if !slices.Contains(topics, o.Topic) {
				topics = append(topics, o.Topic)
			}
		})
	}
	sort.Slice(rows, func(i, j int) bool {
		a, b := rows[i], rows[j]
		if a.Group != b.Group {
			return a.Group < b.Group
		}
		if a.Topic != b.Topic {
			return a.Topic < b.Topic
		}
		return a.Partition < b.Partition
	})
	if len(topics) == 0 {
		return rows, errs
	}
	ends, err := adm.ListEndOffsets(ctx, topics...)
	if err != nil {
		return rows, append(errs, fmt.Errorf("list end offsets: %w", kafkaErr(err, "")))
	}
	stable, err := adm.ListCommittedOffsets(ctx, topics...)
	if err != nil {
		return rows, append(errs, fmt.Errorf("list last stable offsets: %w", kafkaErr(err, "")))
	}
	lagging := map[string]map[int32][]int64{}
	for i := range rows {
		r := &rows[i]
		if r.Committed < 0 {
			continue
		}
		if e, ok := ends.Lookup(r.Topic, r.Partition); ok && e.Err == nil {
			end, lag := e.Offset, max(e.Offset-r.Committed, 0)
			r.End, r.Lag = &end, &lag
			if lag > 0 {
				if lagging[r.Topic] == nil {
					lagging[r.Topic] = map[int32][]int64{}
				}
				if !slices.Contains(lagging[r.Topic][r.Partition], r.Committed) {
					lagging[r.Topic][r.Partition] = append(lagging[r.Topic][r.Partition], r.Committed)
				}
			}
		}
		if s, ok := stable.Lookup(r.Topic, r.Partition); ok && s.Err == nil {
			lso, lag := s.Offset, max(s.Offset-r.Committed, 0)
			r.LSO, r.StableLag = &lso, &lag
		}
	}
	times, err := recordTimes(ctx, g, lagging)
	if err != nil {
		errs = append(errs, err)
	}
	lt := lagTimes{times: times, now: now()}
	for i := range rows {
		r := &rows[i]
		if r.Lag != nil {
			r.LagSeconds = lt.seconds(r.Topic, r.Partition, r.Committed, *r.Lag)
		}
	}
	return rows, errs
}

// lagTimes turns the timestamps of the records at committed offsets into
// lag seconds.
type lagTimes struct {
	times map[string]map[int32]map[int64]int64 // topic, partition, committed offset → ms
	now   time.Time
}

// seconds is the age of the first unconsumed record: 0 when caught up, nil
// when its timestamp is unknown.
func (l lagTimes) seconds(topic string, partition int32, committed, lag int64) *float64 {
	s := 0.0
	if lag > 0 {
		ts, ok := l.times[topic][partition][committed]
		if !ok {
			return nil
		}
		s = max(float64(l.now.UnixMilli()-ts)/1000, 0)
	}
	return &s
}

// recordTimes returns the timestamp (ms) of the first record at or after
// each offset asked, by topic, partition and offset. A partition asked at
// several offsets (several groups) is read once per offset, in rounds of
// one offset per partition.
func recordTimes(ctx context.Context, g *globalOptions, at map[string]map[int32][]int64) (map[string]map[int32]map[int64]int64, error) {
	out := map[string]map[int32]map[int64]int64{}
	for round := 0; ; round++ {
		next := map[string]map[int32]int64{}
		for t, ps := range at {
			for p, offs := range ps {
				if round < len(offs) {
					if next[t] == nil {
						next[t] = map[int32]int64{}
					}
					next[t][p] = offs[round]
				}
			}
		}
		if len(next) == 0 {
			return out, nil
		}
		if err := readFirstRecords(ctx, g, next, out); err != nil {
			return out, err
		}
	}
}

// readFirstRecords reads, for each partition, the first record at or
// after the offset given and records its timestamp in out.
func readFirstRecords(ctx context.Context, g *globalOptions, at map[string]map[int32]int64, out map[string]map[int32]map[int64]int64) error {
	offsets := map[string]map[int32]kgo.Offset{}
	want := 0
	for t, ps := range at {
		offsets[t] = map[int32]kgo.Offset{}
		for p, o := range ps {
			offsets[t][p] = kgo.NewOffset().At(o)
			want++
		}
	}
	cl, err := g.newClient(kgo.ConsumePartitions(offsets))
	if err != nil {
		return err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(ctx, recordWait)
	defer cancel()
	done := map[string]map[int32]bool{}
	for got := 0; got < want && ctx.Err() == nil; {
		cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
			from, ok := at[r.Topic][r.Partition]
			if !ok || r.Offset < from || done[r.Topic][r.Partition] {
				return
			}
			if done[r.Topic] == nil {
				done[r.Topic] = map[int32]bool{}
			}
			done[r.Topic][r.Partition] = true
			if out[r.Topic] == nil {
				out[r.Topic] = map[int32]map[int64]int64{}
			}
			if out[r.Topic][r.Partition] == nil {
				out[r.Topic][r.Partition] = map[int64]int64{}
			}
			out[r.Topic][r.Partition][from] = r.Timestamp.UnixMilli()
			got++
		})
	}
	return nil
}

// addBrokerFigures fills the commit age and status of rows from a Runnel
// broker's /metrics: the per-partition series when the broker exports them,
// else its group and topic figures (the worst partition's).
func addBrokerFigures(ctx context.Context, url string, rows []partitionLag) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("metrics %s: %w", url, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("metrics %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("metrics %s: %s", url, resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("metrics %s: %w", url, err)
	}
	type key struct {
		group, topic, partition string
	}
	read := func(name string) map[key]float64 {
		out := map[key]float64{}
		f := fams[name]
		if f == nil {
			return out
		}
		for _, m := range f.GetMetric() {
			out[key{label(m, "group"), label(m, "topic"), label(m, "partition")}] = m.GetGauge().GetValue()
		}
		return out
	}
	partAge, partStatus := read("runnel_group_partition_commit_age_seconds"), read("runnel_group_partition_status")
	topicAge, topicStatus := read("runnel_group_commit_age_seconds"), read("runnel_group_status")
	for i := range rows {
		r := &rows[i]
		pk := key{r.Group, r.Topic, strconv.Itoa(int(r.Partition))}
		tk := key{r.Group, r.Topic, ""}
		if v, ok := partAge[pk]; ok {
			r.CommitAge = &v
		} else if v, ok := topicAge[tk]; ok {
			r.CommitAge = &v
		}
		if v, ok := partStatus[pk]; ok {
			r.Status = statusName(v)
		} else if v, ok := topicStatus[tk]; ok {
			r.Status = statusName(v)
		}
	}
	return nil
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

// statusName is the name of a runnel_group_status value.
func statusName(v float64) string {
	names := []string{"OK", "WARN", "REWIND", "STALLED", "STOPPED"}
	if i := int(v); float64(i) == v && i >= 0 && i < len(names) {
		return names[i]
	}
	return "UNKNOWN"
}

// formatSeconds renders a duration in seconds with one decimal, or "-".
func formatSeconds(s *float64) string {
	if s == nil || math.IsNaN(*s) {
		return "-"
	}
	return strconv.FormatFloat(*s, 'f', 1, 64)
}

func formatOffset(o *int64) string {
	if o == nil {
		return "-"
	}
	return strconv.FormatInt(*o, 10)
}

func writeGroupLag(w io.Writer, rows []partitionLag) error {
	if len(rows) == 0 {
		fmt.Fprintln(w, "No committed offsets.")
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "GROUP\tTOPIC\tPARTITION\tCOMMITTED\tEND\tLSO\tLAG\tLAG-SECONDS\tCOMMIT-AGE\tSTATUS")
	for _, r := range rows {
		committed := "-"
		if r.Committed >= 0 {
			committed = strconv.FormatInt(r.Committed, 10)
		}
		status := orDash(r.Status)
		if r.Error != "" {
			status = "error: " + r.Error
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Group, r.Topic, r.Partition, committed,
			formatOffset(r.End), formatOffset(r.LSO), formatOffset(r.Lag), formatSeconds(r.LagSeconds), formatSeconds(r.CommitAge), status)
	}
	return tw.Flush()
}
