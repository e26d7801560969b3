package protocol

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-dev/runnel/internal/config"
	"github.com/runnel-dev/runnel/internal/share"
)

// fakeShares is a small but real share-partition model over a fakeLog:
// whole batches are acquired from the lowest available offset up, locks
// are per member, acknowledgements from a member that does not hold a
// record are refused, RELEASE makes records acquirable again and fires
// Changed. Lock timeouts and delivery limits are internal/share's to test.
type fakeShares struct {
	log  *fakeLog
	lock time.Duration

	mu       sync.Mutex
	parts    map[share.Key]map[int64]*fakeShareRec
	changed  chan struct{}
	acquires []share.AcquireRequest
	released []string // "member@partition"
	// acquireErr, when set, fails every Acquire.
	acquireErr error
}

type fakeShareRec struct {
	member string // "" when available
	count  int16
	done   bool
}

func newFakeShares(l *fakeLog) *fakeShares {
	return &fakeShares{log: l, lock: 15 * time.Second, parts: map[share.Key]map[int64]*fakeShareRec{}, changed: make(chan struct{})}
}

// kick wakes Changed waiters; callers hold mu.
func (f *fakeShares) kick() {
	close(f.changed)
	f.changed = make(chan struct{})
}

func (f *fakeShares) Changed() <-chan struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.changed
}

func (f *fakeShares) LockDuration(string) time.Duration { return f.lock }

func (f *fakeShares) part(k share.Key) map[int64]*fakeShareRec {
	p, ok := f.parts[k]
	if !ok {
		p = map[int64]*fakeShareRec{}
		f.parts[k] = p
	}
	return p
}

func (f *fakeShares) rec(p map[int64]*fakeShareRec, off int64) *fakeShareRec {
	r, ok := p[off]
	if !ok {
		r = &fakeShareRec{}
		p[off] = r
	}
	return r
}

func (f *fakeShares) Acquire(_ context.Context, req share.AcquireRequest) (share.AcquireResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.acquires = append(f.acquires, req)
	if f.acquireErr != nil {
		return share.AcquireResult{}, f.acquireErr
	}
	ti, ok := f.log.TopicByID(req.Topic)
	if !ok {
		return share.AcquireResult{}, share.ErrUnknownTopicOrPartition
	}
	f.log.mu.Lock()
	lp, err := f.log.part(ti.Name, req.Partition)
	var batches []fakeBatch
	if err == nil {
		batches = slices.Clone(lp.batches)
	}
	f.log.mu.Unlock()
	if err != nil {
		return share.AcquireResult{}, share.ErrUnknownTopicOrPartition
	}
	maxRecords := int64(req.MaxRecords)
	if maxRecords <= 0 {
		maxRecords = 500
	}
	p := f.part(req.Key)
	var res share.AcquireResult
	var n int64
	for _, b := range batches {
		if n >= maxRecords || len(res.Records) > 0 && len(res.Records)+len(b.data) > int(req.MaxBytes) {
			break
		}
		if req.RecordLimit && n+b.last-b.base+1 > maxRecords {
			break
		}
		free := true
		for o := b.base; o <= b.last; o++ {
			if r := f.rec(p, o); r.done || r.member != "" {
				free = false
			}
		}
		if !free {
			continue
		}
		for o := b.base; o <= b.last; o++ {
			r := f.rec(p, o)
			r.member = req.Member
			r.count++
			if k := len(res.Acquired); k > 0 && res.Acquired[k-1].Last == o-1 && res.Acquired[k-1].DeliveryCount == r.count {
				res.Acquired[k-1].Last = o
			} else {
				res.Acquired = append(res.Acquired, share.AcquiredRange{First: o, Last: o, DeliveryCount: r.count})
			}
		}
		res.Records = append(res.Records, b.data...)
		n += b.last - b.base + 1
	}
	return res, nil
}

func (f *fakeShares) Acknowledge(_ context.Context, key share.Key, member string, acks []share.AckBatch) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	p := f.part(key)
	for _, a := range acks {
		for o := a.First; o <= a.Last; o++ {
			if r := f.rec(p, o); r.done || r.member != member {
				return fmt.Errorf("offset %d: %w", o, share.ErrInvalidRecordState)
			}
		}
	}
	released := false
	for _, a := range acks {
		for o := a.First; o <= a.Last; o++ {
			typ := a.Types[0]
			if len(a.Types) > 1 {
				typ = a.Types[o-a.First]
			}
			r := f.rec(p, o)
			switch typ {
			case share.AckAccept, share.AckReject, share.AckGap:
				r.done, r.member = true, ""
			case share.AckRelease:
				r.member, released = "", true
			}
		}
	}
	if released {
		f.kick()
	}
	return nil
}

func (f *fakeShares) ReleaseMember(_ context.Context, key share.Key, member string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.released = append(f.released, fmt.Sprintf("%s@%d", member, key.Partition))
	for _, r := range f.part(key) {
		if r.member == member {
			r.member = ""
		}
	}
	f.kick()
	return nil
}

// holder returns who holds offset off of a share partition ("" if nobody)
// and whether it is acknowledged.
func (f *fakeShares) holder(key share.Key, off int64) (string, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r := f.rec(f.part(key), off)
	return r.member, r.done
}

func (f *fakeShares) acquireCalls() []share.AcquireRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.acquires)
}

func (f *fakeShares) releases() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.released)
}

// fakeShareGroups records what reaches the coordinator and answers every
// item without error.
type fakeShareGroups struct {
	mu   sync.Mutex
	seen []string
}

func (g *fakeShareGroups) saw(items ...string) {
	g.mu.Lock()
	g.seen = append(g.seen, items...)
	g.mu.Unlock()
}

func (g *fakeShareGroups) reached() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := g.seen
	g.seen = nil
	return out
}

func (g *fakeShareGroups) ShareGroupHeartbeat(_ context.Context, r *kmsg.ShareGroupHeartbeatRequest) *kmsg.ShareGroupHeartbeatResponse {
	g.saw(r.GroupID)
	resp := r.ResponseKind().(*kmsg.ShareGroupHeartbeatResponse)
	resp.MemberID, resp.MemberEpoch, resp.HeartbeatIntervalMillis = strp(r.MemberID), r.MemberEpoch+1, 5000
	return resp
}

func (g *fakeShareGroups) ShareGroupDescribe(_ context.Context, r *kmsg.ShareGroupDescribeRequest) *kmsg.ShareGroupDescribeResponse {
	resp := r.ResponseKind().(*kmsg.ShareGroupDescribeResponse)
	for _, id := range r.GroupIDs {
		g.saw(id)
		rg := kmsg.NewShareGroupDescribeResponseGroup()
		rg.GroupID, rg.GroupState = id, "Stable"
		m := kmsg.NewShareGroupDescribeResponseGroupMember()
		tp := kmsg.NewShareGroupDescribeResponseGroupMemberAssignmentTopicPartition()
		tp.Topic, tp.Partitions = "a", []int32{0}
		m.Assignment.TopicPartitions = append(m.Assignment.TopicPartitions, tp)
		rg.Members = append(rg.Members, m)
		resp.Groups = append(resp.Groups, rg)
	}
	return resp
}

// DescribeShareGroupOffsets answers start offset 7 for each named
// partition, or for partition 0 of topics "a" and "b" when asked for all.
func (g *fakeShareGroups) DescribeShareGroupOffsets(_ context.Context, r *kmsg.DescribeShareGroupOffsetsRequest) *kmsg.DescribeShareGroupOffsetsResponse {
	resp := r.ResponseKind().(*kmsg.DescribeShareGroupOffsetsResponse)
	for _, rg := range r.Groups {
		g.saw(rg.GroupID)
		out := kmsg.NewDescribeShareGroupOffsetsResponseGroup()
		out.GroupID = rg.GroupID
		topics := rg.Topics
		if topics == nil {
			topics = []kmsg.DescribeShareGroupOffsetsRequestGroupTopic{{Topic: "a", Partitions: []int32{0}}, {Topic: "b", Partitions: []int32{0}}}
		}
		for _, t := range topics {
			g.saw(t.Topic)
			rt := kmsg.NewDescribeShareGroupOffsetsResponseGroupTopic()
			rt.Topic = t.Topic
			for _, p := range t.Partitions {
				rp := kmsg.NewDescribeShareGroupOffsetsResponseGroupTopicPartition()
				rp.Partition, rp.StartOffset = p, 7
				rt.Partitions = append(rt.Partitions, rp)
			}
			out.Topics = append(out.Topics, rt)
		}
		resp.Groups = append(resp.Groups, out)
	}
	return resp
}

func (g *fakeShareGroups) AlterShareGroupOffsets(_ context.Context, r *kmsg.AlterShareGroupOffsetsRequest) *kmsg.AlterShareGroupOffsetsResponse {
	resp := r.ResponseKind().(*kmsg.AlterShareGroupOffsetsResponse)
	for _, t := range r.Topics {
		g.saw(t.Topic)
		rt := kmsg.NewAlterShareGroupOffsetsResponseTopic()
		rt.Topic = t.Topic
		for _, p := range t.Partitions {
			rp := kmsg.NewAlterShareGroupOffsetsResponseTopicPartition()
			rp.Partition = p.Partition
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp
}

func (g *fakeShareGroups) DeleteShareGroupOffsets(_ context.Context, r *kmsg.DeleteShareGroupOffsetsRequest) *kmsg.DeleteShareGroupOffsetsResponse {
	resp := r.ResponseKind().(*kmsg.DeleteShareGroupOffsetsResponse)
	for _, t := range r.Topics {
		g.saw(t.Topic)
		rt := kmsg.NewDeleteShareGroupOffsetsResponseTopic()
		rt.Topic = t.Topic
		resp.Topics = append(resp.Topics, rt)
	}
	return resp
}

// fakeGroupConfigs stores group config overrides, validating like the
// real store.
type fakeGroupConfigs struct {
	mu      sync.Mutex
	configs map[string]map[string]string
}

func (g *fakeGroupConfigs) GroupConfig(group string) map[string]string {
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.configs[group]) == 0 {
		return nil
	}
	out := map[string]string{}
	for k, v := range g.configs[group] {
		out[k] = v
	}
	return out
}

func (g *fakeGroupConfigs) AlterGroupConfig(_ context.Context, group string, changes []ConfigChange, replace, validateOnly bool) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	next := map[string]string{}
	if !replace {
		for k, v := range g.configs[group] {
			next[k] = v
		}
	}
	for _, c := range changes {
		if c.Value == nil {
			delete(next, c.Name)
			continue
		}
		if err := config.ValidateGroupConfig(c.Name, *c.Value); err != nil {
			return err
		}
		next[c.Name] = *c.Value
	}
	if validateOnly {
		return nil
	}
	if g.configs == nil {
		g.configs = map[string]map[string]string{}
	}
	g.configs[group] = next
	return nil
}

// Interface checks: the fakes implement what the server takes.
var (
	_ Shares       = (*fakeShares)(nil)
	_ ShareGroups  = (*fakeShareGroups)(nil)
	_ GroupConfigs = (*fakeGroupConfigs)(nil)
)

func configGroupDefs() []config.Def { return config.GroupDefs() }
