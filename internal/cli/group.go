package cli

import (
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

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
)

func newGroupCommand(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "group",
		Short: "List, describe, reset and delete consumer and share groups",
		Example: `  runnel group list
  runnel group describe audit
  runnel group lag audit
  runnel group reset-offsets audit --topic events --to-earliest --execute
  runnel group delete audit`,
	}
	cmd.AddCommand(
		newGroupListCommand(g),
		newGroupDescribeCommand(g),
		newGroupLagCommand(g),
		newGroupResetCommand(g),
		newGroupDeleteCommand(g),
	)
	return cmd
}

func newGroupListCommand(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List consumer and share groups with their state (TYPE share for share groups)",
		Example: `  runnel group list`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			adm, err := g.newAdmin()
			if err != nil {
				return err
			}
			defer adm.Close()
			groups, err := adm.ListGroups(cmd.Context())
			if err != nil {
				return fmt.Errorf("list groups: %w", kafkaErr(err, ""))
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "GROUP\tSTATE\tTYPE\tCOORDINATOR")
			for _, l := range groups.Sorted() {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%d\n", l.Group, orDash(l.State), orDash(l.ProtocolType), l.Coordinator)
			}
			return tw.Flush()
		},
	}
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// groupExists reports whether a described group is a live group rather than
// the "Dead" placeholder brokers return for unknown ids.
func groupExists(d kadm.DescribedGroup) bool {
	return d.State != "Dead" && d.State != ""
}

// describeGroup describes one group, mapping request and group errors.
func describeGroup(ctx context.Context, adm *kadm.Client, group string) (kadm.DescribedGroup, error) {
	ds, err := adm.DescribeGroups(ctx, group)
	if err != nil {
		return kadm.DescribedGroup{}, groupErr(group, err, "")
	}
	d, ok := ds[group]
	if !ok {
		return kadm.DescribedGroup{}, fmt.Errorf("group %q: the broker did not answer for this group", group)
	}
	if d.Err != nil {
		return d, groupErr(group, d.Err, d.ErrMessage)
	}
	return d, nil
}

func newGroupDescribeCommand(g *globalOptions) *cobra.Command {
	var (
		asJSON  bool
		httpURL string
	)
	cmd := &cobra.Command{
		Use:   "describe GROUP...",
		Short: "Show groups' state, members, committed or start offsets and lag",
		Long: `Show each consumer group's state, protocol type and assignment protocol
(the assignor), its members (member id, static instance id, client id, host,
assigned partitions), and for every partition it has committed or is
assigned: the committed offset, the partition's log end offset, the lag
(end - committed; "-" when nothing is committed) and the lag in seconds (the
age of the record at the committed offset; 0 when caught up).

A share group (KIP-932) shows its state, assignor, epochs and members
(subscribed topics, assigned partitions; a partition may be assigned to
several members), and for every share partition: the start offset (records
below it are all acknowledged or archived), the end offset, the lag (records
from the start offset to the end not yet acknowledged, as the broker counts
them) and how many members are assigned it. With --http (a Runnel broker's
HTTP listener) it also shows each share partition's records in flight:
acquired (locked by a member), waiting to be delivered again, the highest
delivery count among them, how many members hold locks, when the next lock
expires, and dead letters not yet written. Groups that cannot be
described are reported one per line and make the command fail after the
others are shown.`,
		Example: `  runnel group describe audit
  runnel group describe audit billing
  runnel group describe audit --json
  runnel group describe jobs --http http://127.0.0.1:8080`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			groups, err := uniqueNames("group id", args)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			adm, err := g.newAdmin()
			if err != nil {
				return err
			}
			defer adm.Close()
			shares, rest, errs := describeShareGroups(ctx, adm, groups)
			if httpURL != "" {
				for name, sd := range shares {
					st, err := fetchShareStates(ctx, httpURL, name)
					if err != nil {
						errs = append(errs, fmt.Errorf("group %q: in-flight records: %w", name, err))
						continue
					}
					sd.states = st
					shares[name] = sd
				}
			}
			var descs []groupDescription
			if len(rest) > 0 {
				var cerrs []error
				descs, cerrs = describeGroups(ctx, adm, rest)
				errs = append(errs, cerrs...)
			}
			if len(descs) == 0 && len(shares) == 0 {
				return errors.Join(errs...)
			}
			var topics []string
			addTopic := func(t string) {
				if !slices.Contains(topics, t) {
					topics = append(topics, t)
				}
			}
			for _, gd := range descs {
				for _, r := range gd.rows {
					addTopic(r.topic)
				}
			}
			for _, sd := range shares {
				for _, r := range shareRows(sd) {
					addTopic(r.topic)
				}
			}
			var ends kadm.ListedOffsets
			if len(topics) > 0 {
				if ends, err = adm.ListEndOffsets(ctx, topics...); err != nil {
					return errors.Join(append(errs, fmt.Errorf("list end offsets: %w", kafkaErr(err, "")))...)
				}
			}
			lagging := map[string]map[int32][]int64{}
			for _, gd := range descs {
				for _, r := range gd.rows {
					if c := r.cells(ends); c.hasLag && c.lag > 0 && !slices.Contains(lagging[r.topic][r.partition], c.committed) {
						if lagging[r.topic] == nil {
							lagging[r.topic] = map[int32][]int64{}
						}
						lagging[r.topic][r.partition] = append(lagging[r.topic][r.partition], c.committed)
					}
				}
			}
			times, err := recordTimes(ctx, g, lagging)
			if err != nil {
				errs = append(errs, err)
			}
			lt := lagTimes{times: times, now: time.Now()}
			// Print in the order the groups were named.
			byName := map[string]groupDescription{}
			for _, gd := range descs {
				byName[gd.d.Group] = gd
			}
			out := cmd.OutOrStdout()
			if asJSON {
				js := make([]any, 0, len(descs)+len(shares))
				for _, name := range groups {
					if sd, ok := shares[name]; ok {
						js = append(js, describedShareGroupJSON(sd, ends))
					} else if gd, ok := byName[name]; ok {
						js = append(js, describedGroupJSON(gd.d, gd.members, gd.rows, ends, lt))
					}
				}
				if err := writeJSON(out, js); err != nil {
					return err
				}
				return errors.Join(errs...)
			}
			first := true
			for _, name := range groups {
				sd, isShare := shares[name]
				gd, isGroup := byName[name]
				if !isShare && !isGroup {
					continue
				}
				if !first {
					fmt.Fprintln(out)
				}
				first = false
				if isShare {
					err = writeShareGroupDescription(out, sd, ends, lt.now)
				} else {
					err = writeGroupDescription(out, gd.d, gd.members, gd.rows, ends, lt)
				}
				if err != nil {
					return err
				}
			}
			return errors.Join(errs...)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the groups as JSON")
	cmd.Flags().StringVar(&httpURL, "http", "", "a Runnel broker's HTTP URL (e.g. http://127.0.0.1:8080) to read share groups' in-flight records from")
	return cmd
}

// groupDescription is a described group with its decoded members and
// partition rows.
type groupDescription struct {
	d       kadm.DescribedGroup
	members []memberView
	rows    []lagRow
}

// memberView is a group member with its assignment decoded.
type memberView struct {
	id         string
	instanceID *string
	clientID   string
	host       string
	// assigned holds the partitions of a consumer protocol assignment; nil
	// when the member's assignment is not in the consumer protocol.
	assigned map[string][]int32
}

// memberViews decodes d's members, sorted by member id.
func memberViews(d kadm.DescribedGroup) []memberView {
	out := make([]memberView, 0, len(d.Members))
	for _, m := range d.Members {
		v := memberView{id: m.MemberID, instanceID: m.InstanceID, clientID: m.ClientID, host: m.ClientHost}
		if c, ok := m.Assigned.AsConsumer(); ok {
			v.assigned = map[string][]int32{}
			for _, t := range c.Topics {
				v.assigned[t.Topic] = append(v.assigned[t.Topic], t.Partitions...)
			}
		}
		out = append(out, v)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].id < out[j].id })
	return out
}

// describeGroups describes groups and fetches their committed offsets, in
// the order given; a group that fails or does not exist becomes an error
// instead.
func describeGroups(ctx context.Context, adm *kadm.Client, groups []string) ([]groupDescription, []error) {
	ds, err := adm.DescribeGroups(ctx, groups...)
	if _, partial := errors.AsType[*kadm.ShardErrors](err); err != nil && !partial {
		return nil, []error{fmt.Errorf("describe groups: %w", kafkaErr(err, ""))}
	}
	// With some coordinators unreachable, the groups they own are missing
	// from ds; their error is reported once, after the per-group lines.
	shardErr := err
	fetched := adm.FetchManyOffsets(ctx, groups...)
	var (
		out  []groupDescription
		errs []error
	)
	for _, group := range groups {
		d, ok := ds[group]
		switch {
		case !ok:
			errs = append(errs, fmt.Errorf("group %q: the broker did not answer for this group", group))
			continue
		case d.Err != nil:
			errs = append(errs, groupErr(group, d.Err, d.ErrMessage))
			continue
		}
		f, ok := fetched[group]
		switch {
		case !ok:
			errs = append(errs, fmt.Errorf("group %q: the broker did not answer for its offsets", group))
			continue
		case f.Err != nil:
			errs = append(errs, groupErr(group, f.Err, ""))
			continue
		}
		if !groupExists(d) && len(f.Fetched) == 0 {
			errs = append(errs, fmt.Errorf("group %q does not exist", group))
			continue
		}
		members := memberViews(d)
		out = append(out, groupDescription{d: d, members: members, rows: groupLagRows(members, f.Fetched)})
	}
	if shardErr != nil {
		errs = append(errs, fmt.Errorf("describe groups: %w", shardErr))
	}
	return out, errs
}

// lagRow is one partition line of group describe.
type lagRow struct {
	topic     string
	partition int32
	committed int64 // -1 when none
	commitErr error
	member    *memberView
}

// groupLagRows joins committed offsets with member assignments, sorted by
// topic and partition.
func groupLagRows(members []memberView, committed kadm.OffsetResponses) []lagRow {
	type tp struct {
		t string
		p int32
	}
	rows := map[tp]*lagRow{}
	get := func(t string, p int32) *lagRow {
		k := tp{t, p}
		if r, ok := rows[k]; ok {
			return r
		}
		r := &lagRow{topic: t, partition: p, committed: -1}
		rows[k] = r
		return r
	}
	committed.Each(func(o kadm.OffsetResponse) {
		r := get(o.Topic, o.Partition)
		r.committed, r.commitErr = o.At, o.Err
	})
	for i := range members {
		m := &members[i]
		for t, ps := range m.assigned {
			for _, p := range ps {
				get(t, p).member = m
			}
		}
	}
	out := make([]lagRow, 0, len(rows))
	for _, r := range rows {
		out = append(out, *r)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].topic != out[j].topic {
			return out[i].topic < out[j].topic
		}
		return out[i].partition < out[j].partition
	})
	return out
}

// lagCells is a partition's committed offset, end offset and lag; a has
// field is false when that value is unknown. Lag needs both offsets and is never negative
// (a commit past the end, e.g. after records were deleted, counts as 0).
type lagCells struct {
	committed, end, lag          int64
	hasCommitted, hasEnd, hasLag bool
	commitErr, endErr            error
}

func (r lagRow) cells(ends kadm.ListedOffsets) lagCells {
	c := lagCells{committed: r.committed, hasCommitted: r.commitErr == nil && r.committed >= 0, commitErr: r.commitErr}
	if e, ok := ends.Lookup(r.topic, r.partition); ok {
		if e.Err != nil {
			c.endErr = e.Err
		} else {
			c.end, c.hasEnd = e.Offset, true
		}
	}
	if c.hasCommitted && c.hasEnd {
		c.lag, c.hasLag = max(c.end-c.committed, 0), true
	}
	return c
}

func writeGroupDescription(w io.Writer, d kadm.DescribedGroup, members []memberView, rows []lagRow, ends kadm.ListedOffsets, lt lagTimes) error {
	fmt.Fprintf(w, "Group:       %s\nState:       %s\nType:        %s\nProtocol:    %s\nCoordinator: %d (%s:%d)\nMembers:     %d\n",
		d.Group, orDash(d.State), orDash(d.ProtocolType), orDash(d.Protocol),
		d.Coordinator.NodeID, d.Coordinator.Host, d.Coordinator.Port, len(members))
	if len(members) > 0 {
		fmt.Fprintln(w)
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "MEMBER-ID\tINSTANCE-ID\tCLIENT-ID\tHOST\tASSIGNMENT")
		for _, m := range members {
			instance := "-"
			if m.instanceID != nil {
				instance = orDash(*m.instanceID)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", m.id, instance, orDash(m.clientID), orDash(m.host), formatTopicPartitions(m.assigned))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	fmt.Fprintln(w)
	if len(rows) == 0 {
		fmt.Fprintln(w, "No committed offsets.")
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TOPIC\tPARTITION\tCOMMITTED\tEND\tLAG\tLAG-SECONDS\tMEMBER-ID\tCLIENT-ID\tHOST")
	var total int64
	for _, r := range rows {
		c := r.cells(ends)
		committed, end, lag, secs := "-", "-", "-", "-"
		switch {
		case c.commitErr != nil:
			committed = "error: " + kafkaErr(c.commitErr, "").Error()
		case c.hasCommitted:
			committed = strconv.FormatInt(c.committed, 10)
		}
		switch {
		case c.endErr != nil:
			end = "error: " + kafkaErr(c.endErr, "").Error()
		case c.hasEnd:
			end = strconv.FormatInt(c.end, 10)
		}
		if c.hasLag {
			total += c.lag
			lag = strconv.FormatInt(c.lag, 10)
			secs = formatSeconds(lt.seconds(r.topic, r.partition, c.committed, c.lag))
		}
		member, client, host := "-", "-", "-"
		if r.member != nil {
			member, client, host = r.member.id, orDash(r.member.clientID), orDash(r.member.host)
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.topic, r.partition, committed, end, lag, secs, member, client, host)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "\nTotal lag: %d\n", total)
	return nil
}

// groupJSON is one group of group describe --json.
type groupJSON struct {
	Group        string            `json:"group"`
	State        string            `json:"state"`
	ProtocolType string            `json:"protocol_type"`
	Protocol     string            `json:"protocol"`
	Coordinator  int32             `json:"coordinator"`
	Members      []groupMemberJSON `json:"members"`
	Offsets      []groupOffsetJSON `json:"offsets"`
	TotalLag     int64             `json:"total_lag"`
}

// groupMemberJSON is one member of groupJSON.
type groupMemberJSON struct {
	MemberID   string           `json:"member_id"`
	InstanceID *string          `json:"instance_id"`
	ClientID   string           `json:"client_id"`
	Host       string           `json:"host"`
	Assignment []topicPartsJSON `json:"assignment"`
}

// groupOffsetJSON is one partition of groupJSON; absent values are null.
type groupOffsetJSON struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Committed *int64 `json:"committed"`
	End       *int64 `json:"end"`
	Lag       *int64 `json:"lag"`
	// LagSeconds is the age of the record at the committed offset.
	LagSeconds *float64 `json:"lag_seconds"`
	MemberID   string   `json:"member_id,omitempty"`
	Error      string   `json:"error,omitempty"`
}

func describedGroupJSON(d kadm.DescribedGroup, members []memberView, rows []lagRow, ends kadm.ListedOffsets, lt lagTimes) groupJSON {
	j := groupJSON{
		Group: d.Group, State: d.State, ProtocolType: d.ProtocolType, Protocol: d.Protocol,
		Coordinator: d.Coordinator.NodeID, Members: []groupMemberJSON{}, Offsets: []groupOffsetJSON{},
	}
	for _, m := range members {
		set := make(kadm.TopicsSet)
		for t, ps := range m.assigned {
			set.Add(t, ps...)
		}
		j.Members = append(j.Members, groupMemberJSON{
			MemberID: m.id, InstanceID: m.instanceID, ClientID: m.clientID, Host: m.host, Assignment: topicPartsList(set),
		})
	}
	for _, r := range rows {
		c := r.cells(ends)
		oj := groupOffsetJSON{Topic: r.topic, Partition: r.partition}
		if c.hasCommitted {
			oj.Committed = &c.committed
		}
		if c.hasEnd {
			oj.End = &c.end
		}
		if c.hasLag {
			oj.Lag = &c.lag
			oj.LagSeconds = lt.seconds(r.topic, r.partition, c.committed, c.lag)
			j.TotalLag += c.lag
		}
		if r.member != nil {
			oj.MemberID = r.member.id
		}
		var errs []string
		for _, e := range []error{c.commitErr, c.endErr} {
			if e != nil {
				errs = append(errs, kafkaErr(e, "").Error())
			}
		}
		oj.Error = strings.Join(errs, "; ")
		j.Offsets = append(j.Offsets, oj)
	}
	return j
}

// formatTopicPartitions renders topics and partitions as
// "a:0,1 b:2", sorted, or "-" when empty.
func formatTopicPartitions(parts map[string][]int32) string {
	var out []string
	for _, t := range sortedKeys(parts) {
		ps := slices.Clone(parts[t])
		if len(ps) == 0 {
			continue
		}
		slices.Sort(ps)
		ps = slices.Compact(ps)
		nums := make([]string, len(ps))
		for i, p := range ps {
			nums[i] = strconv.Itoa(int(p))
		}
		out = append(out, t+":"+strings.Join(nums, ","))
	}
	if len(out) == 0 {
		return "-"
	}
	return strings.Join(out, " ")
}

// resetMode is how reset-offsets picks new offsets.
type resetMode int

const (
	resetEarliest resetMode = iota + 1
	resetLatest
	resetToOffset
	resetToDatetime
	resetShiftBy
)

// resetSpec is a validated reset-offsets request.
type resetSpec struct {
	mode   resetMode
	offset int64     // resetToOffset
	shift  int64     // resetShiftBy
	at     time.Time // resetToDatetime
}

// resetFlags are the raw reset-offsets flags.
type resetFlags struct {
	earliest, latest bool
	toOffset         int64
	toOffsetSet      bool
	toDatetime       string
	shiftBy          int64
	shiftBySet       bool
}

// spec checks that exactly one reset target was given.
func (f resetFlags) spec() (resetSpec, error) {
	var specs []resetSpec
	if f.earliest {
		specs = append(specs, resetSpec{mode: resetEarliest})
	}
	if f.latest {
		specs = append(specs, resetSpec{mode: resetLatest})
	}
	if f.toOffsetSet {
		if f.toOffset < 0 {
			return resetSpec{}, fmt.Errorf("--to-offset %d: must not be negative", f.toOffset)
		}
		specs = append(specs, resetSpec{mode: resetToOffset, offset: f.toOffset})
	}
	if f.toDatetime != "" {
		t, err := parseTime("to-datetime", f.toDatetime)
		if err != nil {
			return resetSpec{}, err
		}
		specs = append(specs, resetSpec{mode: resetToDatetime, at: t})
	}
	if f.shiftBySet {
		specs = append(specs, resetSpec{mode: resetShiftBy, shift: f.shiftBy})
	}
	switch len(specs) {
	case 0:
		return resetSpec{}, errors.New("say where to move the offsets: --to-earliest, --to-latest, --to-offset N, --to-datetime T or --shift-by N")
	case 1:
		return specs[0], nil
	}
	return resetSpec{}, errors.New("give only one of --to-earliest, --to-latest, --to-offset, --to-datetime and --shift-by")
}

// topicSelection is one --topic value: a topic and optionally a subset of
// its partitions.
type topicSelection struct {
	topic      string
	partitions []int32 // nil = all
}

// parseTopicSelection parses "topic" or "topic:0,1,2".
func parseTopicSelection(s string) (topicSelection, error) {
	name, list, hasList := strings.Cut(s, ":")
	if name == "" {
		return topicSelection{}, fmt.Errorf("--topic %q: empty topic name", s)
	}
	sel := topicSelection{topic: name}
	if !hasList {
		return sel, nil
	}
	seen := map[int32]bool{}
	for _, p := range strings.Split(list, ",") {
		n, err := strconv.ParseInt(strings.TrimSpace(p), 10, 32)
		if err != nil || n < 0 {
			return topicSelection{}, fmt.Errorf("--topic %q: %q is not a partition number", s, p)
		}
		if !seen[int32(n)] {
			seen[int32(n)] = true
			sel.partitions = append(sel.partitions, int32(n))
		}
	}
	return sel, nil
}

// partitionState is what planning needs to know about one partition.
type partitionState struct {
	start, end int64
	atTime     int64 // first offset at/after the requested time; -1 if none
	committed  int64 // -1 if the group has no commit
}

// resetRow is one line of a reset plan.
type resetRow struct {
	Topic     string
	Partition int32
	Current   int64 // -1 if none
	New       int64
	Clamped   bool // the requested offset was outside [start, end]
}

// planReset computes the new offset of every partition. Targets outside
// the partition's [log start, log end] are clamped to it, as Kafka does.
func planReset(spec resetSpec, topic string, parts map[int32]partitionState) ([]resetRow, error) {
	nums := make([]int32, 0, len(parts))
	for p := range parts {
		nums = append(nums, p)
	}
	sort.Slice(nums, func(i, j int) bool { return nums[i] < nums[j] })
	rows := make([]resetRow, 0, len(nums))
	for _, p := range nums {
		st := parts[p]
		var target int64
		switch spec.mode {
		case resetEarliest:
			target = st.start
		case resetLatest:
			target = st.end
		case resetToOffset:
			target = spec.offset
		case resetToDatetime:
			target = st.atTime
			if target < 0 {
				target = st.end
			}
		case resetShiftBy:
			if st.committed < 0 {
				return nil, fmt.Errorf("cannot shift partition %s/%d: the group has no committed offset there", topic, p)
			}
			target = st.committed + spec.shift
		default:
			return nil, fmt.Errorf("unknown reset mode %d", spec.mode)
		}
		row := resetRow{Topic: topic, Partition: p, Current: st.committed, New: target}
		if target < st.start {
			row.New, row.Clamped = st.start, true
		} else if target > st.end {
			row.New, row.Clamped = st.end, true
		}
		rows = append(rows, row)
	}
	return rows, nil
}

func newGroupResetCommand(g *globalOptions) *cobra.Command {
	var (
		f       resetFlags
		topics  []string
		execute bool
	)
	cmd := &cobra.Command{
		Use:   "reset-offsets GROUP --topic T (--to-earliest|--to-latest|--to-offset N|--to-datetime T|--shift-by N) [--execute]",
		Short: "Move a group's committed offsets (dry run unless --execute)",
		Long: `Move a consumer group's committed offsets for the given topics. Without
--execute only the plan is shown. The group must have no active members.
New offsets outside a partition's [log start, log end] are clamped to it.

--topic takes a topic name for all its partitions, or topic:0,1,2 for some.`,
		Example: `  runnel group reset-offsets audit --topic events --to-earliest
  runnel group reset-offsets audit --topic events --to-earliest --execute
  runnel group reset-offsets audit --topic events:0,1 --to-offset 1000 --execute
  runnel group reset-offsets audit --topic events --to-datetime 2024-05-01T00:00:00Z --execute
  runnel group reset-offsets audit --topic events --shift-by -100 --execute`,
		Args: exactArgs(1, "GROUP"),
		RunE: func(cmd *cobra.Command, args []string) error {
			group := args[0]
			f.toOffsetSet = cmd.Flags().Changed("to-offset")
			f.shiftBySet = cmd.Flags().Changed("shift-by")
			spec, err := f.spec()
			if err != nil {
				return err
			}
			if len(topics) == 0 {
				return errors.New("give at least one --topic")
			}
			var sels []topicSelection
			for _, t := range topics {
				sel, err := parseTopicSelection(t)
				if err != nil {
					return err
				}
				sels = append(sels, sel)
			}
			ctx := cmd.Context()
			adm, err := g.newAdmin()
			if err != nil {
				return err
			}
			defer adm.Close()
			d, err := describeGroup(ctx, adm, group)
			if err != nil {
				return err
			}
			if groupExists(d) && (d.State != "Empty" || len(d.Members) > 0) {
				return fmt.Errorf("group %q is %s with %d active members; stop its consumers before resetting offsets", group, d.State, len(d.Members))
			}
			rows, err := buildResetPlan(ctx, adm, group, spec, sels)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if err := writeResetPlan(out, rows); err != nil {
				return err
			}
			if !execute {
				fmt.Fprintln(out, "\nDry run: nothing changed. Add --execute to apply this plan.")
				return nil
			}
			offsets := make(kadm.Offsets)
			for _, r := range rows {
				offsets.Add(kadm.Offset{Topic: r.Topic, Partition: r.Partition, At: r.New, LeaderEpoch: -1})
			}
			resps, err := adm.CommitOffsets(ctx, group, offsets)
			if err != nil {
				return groupErr(group, err, "")
			}
			var errs []error
			resps.EachError(func(o kadm.OffsetResponse) {
				errs = append(errs, fmt.Errorf("%s/%d: %w", o.Topic, o.Partition, kafkaErr(o.Err, "")))
			})
			if len(errs) > 0 {
				return fmt.Errorf("group %q: some offsets were not committed:\n%w", group, errors.Join(errs...))
			}
			fmt.Fprintf(out, "\nCommitted new offsets for %d partitions of group %q.\n", len(rows), group)
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringArrayVarP(&topics, "topic", "t", nil, "topic to reset, or topic:0,1 for some partitions (repeatable)")
	fl.BoolVar(&f.earliest, "to-earliest", false, "move to the log start of each partition")
	fl.BoolVar(&f.latest, "to-latest", false, "move to the log end of each partition")
	fl.Int64Var(&f.toOffset, "to-offset", 0, "move to this offset")
	fl.StringVar(&f.toDatetime, "to-datetime", "", "move to the first offset at or after this time (RFC 3339 or Unix ms)")
	fl.Int64Var(&f.shiftBy, "shift-by", 0, "move the committed offset by N (negative = back)")
	fl.BoolVar(&execute, "execute", false, "apply the plan (without it, only show it)")
	return cmd
}

// buildResetPlan gathers offsets from the cluster and plans every selected
// topic.
func buildResetPlan(ctx context.Context, adm *kadm.Client, group string, spec resetSpec, sels []topicSelection) ([]resetRow, error) {
	names := make([]string, 0, len(sels))
	for _, s := range sels {
		names = append(names, s.topic)
	}
	meta, err := adm.ListTopics(ctx, names...)
	if err != nil {
		return nil, fmt.Errorf("look up topics: %w", err)
	}
	starts, err := adm.ListStartOffsets(ctx, names...)
	if err != nil {
		return nil, fmt.Errorf("list start offsets: %w", err)
	}
	ends, err := adm.ListEndOffsets(ctx, names...)
	if err != nil {
		return nil, fmt.Errorf("list end offsets: %w", err)
	}
	var atTime kadm.ListedOffsets
	if spec.mode == resetToDatetime {
		if atTime, err = adm.ListOffsetsAfterMilli(ctx, spec.at.UnixMilli(), names...); err != nil {
			return nil, fmt.Errorf("list offsets at %s: %w", spec.at.Format(time.RFC3339), err)
		}
	}
	committed, err := adm.FetchOffsets(ctx, group)
	if err != nil {
		return nil, groupErr(group, err, "")
	}
	var rows []resetRow
	for _, sel := range sels {
		td, ok := meta[sel.topic]
		if !ok {
			return nil, fmt.Errorf("topic %q does not exist", sel.topic)
		}
		if td.Err != nil {
			return nil, topicErr(sel.topic, td.Err, "")
		}
		ps := sel.partitions
		if ps == nil {
			ps = td.Partitions.Numbers()
		}
		states := make(map[int32]partitionState, len(ps))
		for _, p := range ps {
			if _, ok := td.Partitions[p]; !ok {
				return nil, fmt.Errorf("topic %q has no partition %d", sel.topic, p)
			}
			st := partitionState{atTime: -1, committed: -1}
			s, ok := starts.Lookup(sel.topic, p)
			if !ok || s.Err != nil {
				return nil, fmt.Errorf("log start offset of %s/%d: %w", sel.topic, p, missingErr(s.Err))
			}
			e, ok := ends.Lookup(sel.topic, p)
			if !ok || e.Err != nil {
				return nil, fmt.Errorf("log end offset of %s/%d: %w", sel.topic, p, missingErr(e.Err))
			}
			st.start, st.end = s.Offset, e.Offset
			if spec.mode == resetToDatetime {
				a, ok := atTime.Lookup(sel.topic, p)
				if !ok || a.Err != nil {
					return nil, fmt.Errorf("offset at time of %s/%d: %w", sel.topic, p, missingErr(a.Err))
				}
				st.atTime = a.Offset
			}
			if c, ok := committed.Lookup(sel.topic, p); ok && c.Err == nil {
				st.committed = c.At
			}
			states[p] = st
		}
		r, err := planReset(spec, sel.topic, states)
		if err != nil {
			return nil, err
		}
		rows = append(rows, r...)
	}
	return rows, nil
}

func missingErr(err error) error {
	if err != nil {
		return kafkaErr(err, "")
	}
	return errors.New("the broker did not answer for this partition")
}

func writeResetPlan(w io.Writer, rows []resetRow) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TOPIC\tPARTITION\tCURRENT\tNEW\tNOTE")
	for _, r := range rows {
		cur := "-"
		if r.Current >= 0 {
			cur = strconv.FormatInt(r.Current, 10)
		}
		note := ""
		if r.Clamped {
			note = "clamped to the partition's offset range"
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%d\t%s\n", r.Topic, r.Partition, cur, r.New, note)
	}
	return tw.Flush()
}

func newGroupDeleteCommand(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:     "delete GROUP...",
		Aliases: []string{"rm"},
		Short:   "Delete consumer groups and their committed offsets",
		Long:    `Delete consumer groups and their committed offsets. A group with active members cannot be deleted.`,
		Example: `  runnel group delete audit
  runnel group delete audit billing`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			adm, err := g.newAdmin()
			if err != nil {
				return err
			}
			defer adm.Close()
			rs, err := adm.DeleteGroups(cmd.Context(), args...)
			if err != nil {
				return fmt.Errorf("delete groups: %w", err)
			}
			return reportDeleted(cmd.OutOrStdout(), "group", args, func(group string) (bool, error) {
				r, ok := rs[group]
				return ok, groupErr(group, r.Err, r.ErrMessage)
			})
		},
	}
}
