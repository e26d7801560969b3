package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

// Share groups (KIP-932) are described with ShareGroupDescribe and
// DescribeShareGroupOffsets rather than DescribeGroups and OffsetFetch:
// their members share partitions, and what a share group has consumed is a
// start offset per share partition (records below it are done) rather than
// a committed offset.

// shareGroupDescription is a described share group with its start offsets.
type shareGroupDescription struct {
	d       kadm.DescribedShareGroup
	offsets kadm.ShareOffsets
	// states is the in-flight state from a broker's HTTP listener (nil
	// without --http).
	states *shareStates
}

// describeShareGroups describes the groups among groups that are share
// groups. The others (ShareGroupDescribe answers GROUP_ID_NOT_FOUND for a
// group that does not exist or is not a share group) are returned in rest,
// in the order given, to be described as consumer groups. A broker that does
// not serve share groups leaves every group in rest.
func describeShareGroups(ctx context.Context, adm *kadm.Client, groups []string) (shares map[string]shareGroupDescription, rest []string, errs []error) {
	ds, err := adm.DescribeShareGroups(ctx, groups...)
	if _, partial := errors.AsType[*kadm.ShardErrors](err); err != nil && !partial {
		if errors.Is(err, kerr.UnsupportedVersion) || strings.Contains(err.Error(), "broker is too old") {
			return nil, groups, nil // no share groups on this cluster
		}
		return nil, nil, []error{fmt.Errorf("describe share groups: %w", kafkaErr(err, ""))}
	}
	shares = map[string]shareGroupDescription{}
	var found []string
	for _, g := range groups {
		d, ok := ds[g]
		switch {
		case !ok, errors.Is(d.Err, kerr.GroupIDNotFound):
			rest = append(rest, g)
		case d.Err != nil:
			errs = append(errs, groupErr(g, d.Err, ""))
		case d.GroupState == "Dead":
			rest = append(rest, g)
		default:
			shares[g] = shareGroupDescription{d: d}
			found = append(found, g)
		}
	}
	if len(found) == 0 {
		return shares, rest, errs
	}
	offs, err := adm.DescribeShareGroupOffsets(ctx, found...)
	if _, partial := errors.AsType[*kadm.ShardErrors](err); err != nil && !partial {
		return shares, rest, append(errs, fmt.Errorf("describe share group offsets: %w", kafkaErr(err, "")))
	}
	for _, g := range found {
		o, ok := offs[g]
		switch {
		case !ok:
			errs = append(errs, fmt.Errorf("group %q: the broker did not answer for its start offsets", g))
		case o.Err != nil:
			errs = append(errs, groupErr(g, o.Err, ""))
		default:
			sd := shares[g]
			sd.offsets = o.Offsets
			shares[g] = sd
		}
	}
	return shares, rest, errs
}

// shareRow is one share partition of share group describe.
type shareRow struct {
	topic     string
	partition int32
	start     int64 // -1 when the group has no state for it yet
	lag       int64 // the broker's lag, -1 when unknown
	err       error
	members   []string // members assigned the partition
}

// shareRows joins the start offsets with the members' assignments, sorted
// by topic and partition.
func shareRows(sd shareGroupDescription) []shareRow {
	type tp struct {
		t string
		p int32
	}
	rows := map[tp]*shareRow{}
	get := func(t string, p int32) *shareRow {
		k := tp{t, p}
		if r, ok := rows[k]; ok {
			return r
		}
		r := &shareRow{topic: t, partition: p, start: -1, lag: -1}
		rows[k] = r
		return r
	}
	sd.offsets.Each(func(o kadm.ShareOffset) {
		r := get(o.Topic, o.Partition)
		r.start, r.lag, r.err = o.StartOffset, o.Lag, o.Err
	})
	for _, m := range sd.d.Members {
		for t, ps := range m.Assignment {
			for p := range ps {
				r := get(t, p)
				r.members = append(r.members, m.MemberID)
			}
		}
	}
	out := make([]shareRow, 0, len(rows))
	for _, r := range rows {
		sort.Strings(r.members)
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

// shareCells is a share partition's start offset, end offset and lag; a
// has field is false when that value is unknown. The lag is the broker's
// (records from the start offset to the end not yet acknowledged) when it
// reports one, else end − start.
type shareCells struct {
	start, end, lag          int64
	hasStart, hasEnd, hasLag bool
	startErr, endErr         error
}

func (r shareRow) cells(ends kadm.ListedOffsets) shareCells {
	c := shareCells{start: r.start, hasStart: r.err == nil && r.start >= 0, startErr: r.err}
	if e, ok := ends.Lookup(r.topic, r.partition); ok {
		if e.Err != nil {
			c.endErr = e.Err
		} else {
			c.end, c.hasEnd = e.Offset, true
		}
	}
	switch {
	case c.hasStart && r.lag >= 0:
		c.lag, c.hasLag = r.lag, true
	case c.hasStart && c.hasEnd:
		c.lag, c.hasLag = max(c.end-c.start, 0), true
	}
	return c
}

func writeShareGroupDescription(w io.Writer, sd shareGroupDescription, ends kadm.ListedOffsets, now time.Time) error {
	d := sd.d
	fmt.Fprintf(w, "Group:       %s\nState:       %s\nType:        share\nAssignor:    %s\nEpoch:       %d (assignment %d)\nCoordinator: %d (%s:%d)\nMembers:     %d\n",
		d.GroupID, orDash(d.GroupState), orDash(d.Assignor), d.GroupEpoch, d.AssignmentEpoch,
		d.Coordinator.NodeID, d.Coordinator.Host, d.Coordinator.Port, len(d.Members))
	if len(d.Members) > 0 {
		fmt.Fprintln(w)
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "MEMBER-ID\tCLIENT-ID\tHOST\tSUBSCRIBED\tASSIGNMENT")
		for _, m := range d.Members {
			subs := slices.Sorted(slices.Values(m.SubscribedTopicNames))
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", m.MemberID, orDash(m.ClientID), orDash(m.ClientHost),
				orDash(strings.Join(subs, ",")), formatTopicPartitions(topicsSetParts(m.Assignment)))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	fmt.Fprintln(w)
	rows := shareRows(sd)
	if len(rows) == 0 {
		fmt.Fprintln(w, "No share partitions.")
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TOPIC\tPARTITION\tSTART-OFFSET\tEND\tLAG\tMEMBERS")
	var total int64
	for _, r := range rows {
		c := r.cells(ends)
		start, end, lag := "-", "-", "-"
		switch {
		case c.startErr != nil:
			start = "error: " + kafkaErr(c.startErr, "").Error()
		case c.hasStart:
			start = strconv.FormatInt(c.start, 10)
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
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%d\n", r.topic, r.partition, start, end, lag, len(r.members))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "\nTotal lag: %d\n", total)
	if sd.states != nil {
		return writeInFlight(w, sd.states, now)
	}
	return nil
}

// topicsSetParts is s as topic → partitions.
func topicsSetParts(s kadm.TopicsSet) map[string][]int32 {
	out := map[string][]int32{}
	for t, ps := range s {
		for p := range ps {
			out[t] = append(out[t], p)
		}
	}
	return out
}

// shareGroupJSON is one share group of group describe --json.
type shareGroupJSON struct {
	Group           string               `json:"group"`
	State           string               `json:"state"`
	Type            string               `json:"type"` // "share"
	Assignor        string               `json:"assignor"`
	GroupEpoch      int32                `json:"group_epoch"`
	AssignmentEpoch int32                `json:"assignment_epoch"`
	Coordinator     int32                `json:"coordinator"`
	Members         []shareMemberJSON    `json:"members"`
	Partitions      []sharePartitionJSON `json:"partitions"`
	TotalLag        int64                `json:"total_lag"`
	// InFlight is present with --http.
	InFlight []inFlightJSON `json:"in_flight,omitempty"`
}

// inFlightJSON is one share partition's in-flight records.
type inFlightJSON struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Acquired  int64  `json:"acquired"`
	// ToRedeliver are released or timed-out records waiting to be
	// delivered again.
	ToRedeliver        int64 `json:"to_redeliver"`
	MaxDeliveries      int16 `json:"max_delivery_count"`
	Holders            int   `json:"holders"`
	NextLockExpiryMs   int64 `json:"next_lock_expiry_ms,omitempty"`
	PendingDeadLetters int   `json:"pending_dead_letters"`
}

// shareMemberJSON is one member of shareGroupJSON.
type shareMemberJSON struct {
	MemberID    string           `json:"member_id"`
	MemberEpoch int32            `json:"member_epoch"`
	ClientID    string           `json:"client_id"`
	Host        string           `json:"host"`
	RackID      *string          `json:"rack_id"`
	Subscribed  []string         `json:"subscribed_topics"`
	Assignment  []topicPartsJSON `json:"assignment"`
}

// sharePartitionJSON is one share partition of shareGroupJSON; absent
// values are null.
type sharePartitionJSON struct {
	Topic       string   `json:"topic"`
	Partition   int32    `json:"partition"`
	StartOffset *int64   `json:"start_offset"`
	End         *int64   `json:"end"`
	Lag         *int64   `json:"lag"`
	Members     []string `json:"members"`
	Error       string   `json:"error,omitempty"`
}

func describedShareGroupJSON(sd shareGroupDescription, ends kadm.ListedOffsets) shareGroupJSON {
	d := sd.d
	j := shareGroupJSON{
		Group: d.GroupID, State: d.GroupState, Type: "share", Assignor: d.Assignor,
		GroupEpoch: d.GroupEpoch, AssignmentEpoch: d.AssignmentEpoch, Coordinator: d.Coordinator.NodeID,
		Members: []shareMemberJSON{}, Partitions: []sharePartitionJSON{},
	}
	for _, m := range d.Members {
		j.Members = append(j.Members, shareMemberJSON{
			MemberID: m.MemberID, MemberEpoch: m.MemberEpoch, ClientID: m.ClientID, Host: m.ClientHost, RackID: m.RackID,
			Subscribed: slices.Sorted(slices.Values(m.SubscribedTopicNames)), Assignment: topicPartsList(m.Assignment),
		})
	}
	for _, r := range shareRows(sd) {
		c := r.cells(ends)
		pj := sharePartitionJSON{Topic: r.topic, Partition: r.partition, Members: r.members}
		if pj.Members == nil {
			pj.Members = []string{}
		}
		if c.hasStart {
			pj.StartOffset = &c.start
		}
		if c.hasEnd {
			pj.End = &c.end
		}
		if c.hasLag {
			pj.Lag = &c.lag
			j.TotalLag += c.lag
		}
		var errs []string
		for _, e := range []error{c.startErr, c.endErr} {
			if e != nil {
				errs = append(errs, kafkaErr(e, "").Error())
			}
		}
		pj.Error = strings.Join(errs, "; ")
		j.Partitions = append(j.Partitions, pj)
	}
	if sd.states != nil {
		j.InFlight = []inFlightJSON{}
		for _, r := range inFlightRows(sd.states) {
			j.InFlight = append(j.InFlight, inFlightJSON{Topic: r.topic, Partition: r.partition, Acquired: r.acquired,
				ToRedeliver: r.available, MaxDeliveries: r.maxDeliveries, Holders: r.holders,
				NextLockExpiryMs: r.nextLockExpiryMillis, PendingDeadLetters: r.pendingDeadLetters})
		}
	}
	return j
}

// shareStates is a share group's in-flight state as a broker's
// GET /share/groups/{group} shows it.
type shareStates struct {
	Group      string            `json:"group"`
	Partitions []shareStatesPart `json:"partitions"`
}

// shareStatesPart is one share partition of shareStates.
type shareStatesPart struct {
	Topic              string          `json:"topic"`
	Partition          int32           `json:"partition"`
	StartOffset        int64           `json:"start_offset"`
	EndOffset          int64           `json:"end_offset"`
	Runs               []shareStateRun `json:"runs"`
	PendingDeadLetters int             `json:"pending_dead_letters"`
}

// shareStateRun is a run of offsets in one state.
type shareStateRun struct {
	First          int64  `json:"first"`
	Last           int64  `json:"last"`
	State          string `json:"state"`
	DeliveryCount  int16  `json:"delivery_count"`
	Member         string `json:"member,omitempty"`
	LockDeadlineMs int64  `json:"lock_deadline_ms,omitempty"`
}

// fetchShareStates reads group's in-flight state from a Runnel broker's
// HTTP listener (base is its URL, e.g. http://127.0.0.1:8080).
func fetchShareStates(ctx context.Context, base, group string) (*shareStates, error) {
	u := strings.TrimSuffix(base, "/") + "/share/groups/" + url.PathEscape(group)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("share states %s: %w", u, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("share states %s: %w", u, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return nil, fmt.Errorf("share states %s: %s %s", u, resp.Status, strings.TrimSpace(string(body)))
	}
	var st shareStates
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<20)).Decode(&st); err != nil {
		return nil, fmt.Errorf("share states %s: %w", u, err)
	}
	return &st, nil
}

// inFlightRow sums one share partition's in-flight records.
type inFlightRow struct {
	topic                string
	partition            int32
	acquired, available  int64 // records locked by a member; released or timed out, to be delivered again
	maxDeliveries        int16 // highest delivery count of a record not done
	holders              int   // members holding locks
	pendingDeadLetters   int
	nextLockExpiryMillis int64 // earliest lock deadline (unix ms), 0 when none
}

func inFlightRows(st *shareStates) []inFlightRow {
	var out []inFlightRow
	for _, p := range st.Partitions {
		r := inFlightRow{topic: p.Topic, partition: p.Partition, pendingDeadLetters: p.PendingDeadLetters}
		holders := map[string]bool{}
		for _, run := range p.Runs {
			n := run.Last - run.First + 1
			switch run.State {
			case "acquired":
				r.acquired += n
				holders[run.Member] = true
				if r.nextLockExpiryMillis == 0 || run.LockDeadlineMs < r.nextLockExpiryMillis {
					r.nextLockExpiryMillis = run.LockDeadlineMs
				}
			case "available":
				r.available += n
			default:
				continue
			}
			r.maxDeliveries = max(r.maxDeliveries, run.DeliveryCount)
		}
		r.holders = len(holders)
		out = append(out, r)
	}
	return out
}

// writeInFlight prints the in-flight table of a share group.
func writeInFlight(w io.Writer, st *shareStates, now time.Time) error {
	rows := inFlightRows(st)
	fmt.Fprintln(w)
	if len(rows) == 0 {
		fmt.Fprintln(w, "No records in flight.")
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TOPIC\tPARTITION\tACQUIRED\tTO-REDELIVER\tMAX-DELIVERIES\tHOLDERS\tNEXT-LOCK-EXPIRY\tPENDING-DLQ")
	for _, r := range rows {
		expiry := "-"
		if r.nextLockExpiryMillis > 0 {
			expiry = strconv.FormatFloat(max(time.UnixMilli(r.nextLockExpiryMillis).Sub(now).Seconds(), 0), 'f', 1, 64) + "s"
		}
		maxd := "-"
		if r.maxDeliveries > 0 {
			maxd = strconv.Itoa(int(r.maxDeliveries))
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%s\t%d\t%s\t%d\n", orDash(r.topic), r.partition, r.acquired, r.available, maxd, r.holders, expiry, r.pendingDeadLetters)
	}
	return tw.Flush()
}
