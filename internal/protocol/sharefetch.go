package protocol

// ShareFetch (key 78) v1–2 and ShareAcknowledge (key 79) v1–2: the record
// side of KIP-932 share groups, over Shares (share.go) and the share
// session cache (sharesession.go). v2 adds ShareAcquireMode (KIP-1206) and
// IsRenewAck (KIP-1222), the versions Kafka 4.2 serves and franz-go
// requires.
//
// Share sessions: ShareFetch epoch 0 opens the member's session with the
// partitions named (acknowledgements in it are INVALID_REQUEST), a later
// epoch must be the session's next one (SHARE_SESSION_NOT_FOUND,
// INVALID_SHARE_SESSION_EPOCH) and adds the partitions named and removes
// ForgottenTopicsData; epoch -1 applies the acknowledgements, acquires
// nothing, closes the session and releases the member's acquired records
// of its partitions. ShareAcknowledge never opens a session (epoch 0 is
// INVALID_SHARE_SESSION_EPOCH), advances the epoch like a ShareFetch, and
// closes the session at -1. A full cache answers SHARE_SESSION_LIMIT_REACHED
// after MaxWaitMillis, as Kafka does.
//
// A ShareFetch first applies the acknowledgements it carries (each
// partition's result in AcknowledgeErrorCode), then acquires records of
// the session's partitions in session order within MaxRecords (500 when
// not set) and MaxBytes across partitions; the first batch of a partition
// is always whole, so MaxBytes may be exceeded by one batch per partition,
// and in batch_optimized mode MaxRecords by the rest of the last batch
// (record_limit, ShareAcquireMode 1, never exceeds it). When fewer than
// MinBytes (at least one record) are acquired it waits on Log.Changed and
// Shares.Changed until they are or MaxWaitMillis elapses, never sleeping
// in a loop; records acquired meanwhile stay with this request (unlike
// Kafka, which acquires only when it answers), which matters only for a
// MinBytes above one record. AcquisitionLockTimeoutMillis is the group's lock duration.
// The response of the request opening a session lists every partition;
// later ones only partitions with records, errors or acknowledgement
// results. IsRenewAck (v2) requests carry RENEW acknowledgements (type 4,
// refused without it) and acquire nothing; their MaxBytes, MinBytes,
// MaxRecords and MaxWaitMillis must be 0 (INVALID_REQUEST), as in Kafka.
//
// Acknowledgement batches are checked as Kafka does (First <= Last,
// ascending and not overlapping, at least one type, one type per offset
// when more than one, known types) and a partition with a bad batch is
// answered INVALID_REQUEST with nothing applied. Records are acquired only
// from the partition's leader: elsewhere NOT_LEADER_OR_FOLLOWER with
// CurrentLeader and its NodeEndpoints. Acknowledgements are applied on any
// broker (every change to a share partition is a compare-and-swap on its
// state, so the broker need not be the leader): after a leader move the
// holder of a lock can still settle its records.
//
// Authorization (as Kafka): READ on the group (GROUP_AUTHORIZATION_FAILED
// for the whole request), READ on each partition's topic
// (TOPIC_AUTHORIZATION_FAILED for that partition).
//
// A ShareFetch is bounded and throttled by consumer_byte_rate like a Fetch
// (throttle.go), and its records count in the topic's bytes and records
// out.
//
// Not done: BatchSize is not used to shape acquired ranges (the engine
// returns whole batches).

import (
	"context"
	"errors"
	"log/slog"
	"math"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-dev/runnel/internal/share"
)

// defaultShareMaxRecords is KIP-1206's default max.poll.records for a
// request that does not say.
const defaultShareMaxRecords = 500

// shareReleaseTimeout bounds releasing a closed session's records when
// its connection is gone.
const shareReleaseTimeout = 10 * time.Second

// shareOut is what a response says about one share partition.
type shareOut struct {
	sp                 sharePart
	topic              string
	code               int16
	msg                *string
	acked              bool
	ackCode            int16
	ackMsg             *string
	leader, leaderEpch int32 // NOT_LEADER_OR_FOLLOWER hint
	records            []byte
	acquired           []share.AcquiredRange
}

// shareOuts keeps the partitions of one response in first-seen order.
type shareOuts struct {
	order []*shareOut
	by    map[sharePart]*shareOut
}

func (o *shareOuts) get(sp sharePart) *shareOut {
	if o.by == nil {
		o.by = make(map[sharePart]*shareOut)
	}
	if e, ok := o.by[sp]; ok {
		return e
	}
	e := &shareOut{sp: sp, leader: -1, leaderEpch: -1}
	o.by[sp] = e
	o.order = append(o.order, e)
	return e
}

func derefStr(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

func lockMillis(d time.Duration) int32 {
	ms := d.Milliseconds()
	if ms > math.MaxInt32 {
		return math.MaxInt32
	}
	return int32(ms)
}

// shareAckBatches converts and checks one partition's acknowledgement
// batches (Kafka's validateAcknowledgementBatches; RENEW only with
// IsRenewAck). ok false means the partition is answered INVALID_REQUEST.
func shareAckBatches(n int, at func(i int) (first, last int64, types []int8), renew bool) (out []share.AckBatch, ok bool) {
	prev := int64(-1)
	for i := 0; i < n; i++ {
		first, last, types := at(i)
		switch {
		case first < 0 || first > last, first <= prev, len(types) == 0,
			len(types) > 1 && int64(len(types)) != last-first+1:
			return nil, false
		}
		for _, t := range types {
			if t < share.AckGap || t > share.AckRenew || t == share.AckRenew && !renew {
				return nil, false
			}
		}
		prev = last
		out = append(out, share.AckBatch{First: first, Last: last, Types: append([]int8(nil), types...)})
	}
	return out, true
}

// shareAck applies one partition's acknowledgements and returns the code
// (and message) to answer for them.
func (s *Server) shareAck(ctx context.Context, rc *reqCtx, read *topicChecker, group, member string, sp sharePart, acks []share.AckBatch, valid bool) (int16, *string) {
	ti, ok := s.opts.Log.TopicByID(sp.topicID)
	switch {
	case !ok:
		return kerr.UnknownTopicID.Code, nil
	case !read.ok(ti.Name):
		return kerr.TopicAuthorizationFailed.Code, nil
	case sp.partition < 0 || sp.partition >= ti.Partitions:
		return kerr.UnknownTopicOrPartition.Code, nil
	case !valid:
		return kerr.InvalidRequest.Code, strp("invalid acknowledgement batches")
	case len(acks) == 0:
		return 0, nil
	}
	err := s.opts.Shares.Acknowledge(ctx, share.Key{Group: group, Topic: sp.topicID, Partition: sp.partition}, member, acks)
	if err != nil {
		return errorCode(rc.log.With("group", group, "topic", ti.Name, "partition", sp.partition), err), errorMessage(err)
	}
	return 0, nil
}

// endShareSession closes key's session, if any, and releases the member's
// acquired records of its partitions.
func (s *Server) endShareSession(ctx context.Context, rc *reqCtx, key shareSessKey) {
	parts, ok := s.shareSessions.close(key)
	if !ok {
		return
	}
	s.releaseShareParts(ctx, rc.log, key, parts)
}

// releaseShareParts releases member key.member's records of the parts
// this broker leads. Records are acquired only through the leader, so in a
// partition led by another broker (it moved, or the session named it with
// stale metadata) what the member holds was acquired through that broker's
// session, which is still open: releasing it here would hand the member
// the same records again while it still works on them. Were that session
// gone too, the locks expire.
func (s *Server) releaseShareParts(ctx context.Context, log *slog.Logger, key shareSessKey, parts []sharePart) {
	self := s.opts.Cluster.Self().NodeID
	for _, p := range parts {
		ti, ok := s.opts.Log.TopicByID(p.topicID)
		if !ok {
			continue // deleted: nothing left to release
		}
		if s.opts.Cluster.Leader(ti.ID, p.partition) != self {
			continue
		}
		k := share.Key{Group: key.group, Topic: p.topicID, Partition: p.partition}
		if err := s.opts.Shares.ReleaseMember(ctx, k, key.member); err != nil {
			// The records stay locked until their acquisition lock times out.
			log.Warn("releasing a closed share session's records", "group", key.group, "partition", p.partition, "err", err)
		}
	}
}

// closeShareSessions ends the share sessions a closed connection opened,
// releasing their members' records, as Kafka does on disconnect.
func (s *Server) closeShareSessions(sess *session) {
	if s.opts.Shares == nil {
		return
	}
	closed := s.shareSessions.closeOwned(sess)
	if len(closed) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(s.baseCtx, shareReleaseTimeout)
	defer cancel()
	for _, ss := range closed {
		s.releaseShareParts(ctx, s.log, ss.key, ss.parts)
	}
}

func handleShareFetch(ctx context.Context, s *Server, rc *reqCtx, req *kmsg.ShareFetchRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.ShareFetchResponse)
	fail := func(e *kerr.Error, msg string) (kmsg.Response, error) {
		resp.ErrorCode, resp.ErrorMessage = e.Code, strp(msg)
		return resp, nil
	}
	group, member := derefStr(req.GroupID), derefStr(req.MemberID)
	if !s.authorizedGroup(rc, kmsg.ACLOperationRead, group) {
		return fail(kerr.GroupAuthorizationFailed, kerr.GroupAuthorizationFailed.Message)
	}
	if group == "" || member == "" {
		return fail(kerr.InvalidRequest, "a share fetch needs a group id and a member id")
	}
	resp.AcquisitionLockTimeoutMillis = lockMillis(s.opts.Shares.LockDuration(group))
	renew := req.Version >= 2 && req.IsRenewAck
	if renew && (req.MaxBytes != 0 || req.MinBytes != 0 || req.MaxRecords != 0 || req.MaxWaitMillis != 0) {
		return fail(kerr.InvalidRequest, "a renew acknowledgement request fetches nothing: MaxBytes, MinBytes, MaxRecords and MaxWaitMillis must be 0")
	}
	recordLimit := false
	if req.Version >= 2 {
		switch req.ShareAcquireMode {
		case 0:
		case 1:
			recordLimit = true
		default:
			return fail(kerr.InvalidRequest, "unknown share acquire mode")
		}
	}

	// The partitions named, and their acknowledgements.
	var named []sharePart
	var out shareOuts
	type ackReq struct {
		batches []share.AckBatch
		valid   bool
	}
	acks := map[sharePart]ackReq{}
	var ackOrder []sharePart
	for _, t := range req.Topics {
		for _, p := range t.Partitions {
			sp := sharePart{t.TopicID, p.Partition}
			named = append(named, sp)
			if len(p.AcknowledgementBatches) == 0 {
				continue
			}
			if _, dup := acks[sp]; dup {
				acks[sp] = ackReq{} // named twice: refused
				continue
			}
			b := p.AcknowledgementBatches
			batches, ok := shareAckBatches(len(b), func(i int) (int64, int64, []int8) {
				return b[i].FirstOffset, b[i].LastOffset, b[i].AcknowledgeTypes
			}, renew)
			acks[sp] = ackReq{batches, ok}
			ackOrder = append(ackOrder, sp)
		}
	}
	var forget []sharePart
	for _, ft := range req.ForgottenTopicsData {
		for _, p := range ft.Partitions {
			forget = append(forget, sharePart{ft.TopicID, p})
		}
	}

	key := shareSessKey{group, member}
	var fetchParts []sharePart
	final, full := false, false
	switch req.ShareSessionEpoch {
	case -1:
		if !s.shareSessions.exists(key) {
			return fail(kerr.ShareSessionNotFound, kerr.ShareSessionNotFound.Message)
		}
		final = true
	case 0:
		if len(ackOrder) > 0 {
			return fail(kerr.InvalidRequest, "the request opening a share session cannot acknowledge records")
		}
		if code := s.shareSessions.open(key, named, rc.sess); code != 0 {
			// As Kafka: the answer waits MaxWaitMillis, so that a client
			// retrying at once does not spin.
			s.idleWait(ctx, req.MaxWaitMillis)
			e := kerr.ErrorForCode(code).(*kerr.Error)
			return fail(e, e.Message)
		}
		seen := map[sharePart]bool{}
		for _, sp := range named {
			if !seen[sp] {
				seen[sp] = true
				fetchParts = append(fetchParts, sp)
			}
		}
		full = true
	default:
		parts, code := s.shareSessions.update(key, req.ShareSessionEpoch, named, forget)
		if code != 0 {
			e := kerr.ErrorForCode(code).(*kerr.Error)
			return fail(e, e.Message)
		}
		fetchParts = parts
	}

	// Acknowledgements first: records they release may be acquired again
	// by this very fetch.
	read := s.topicChecker(rc, kmsg.ACLOperationRead)
	for _, sp := range ackOrder {
		a := acks[sp]
		o := out.get(sp)
		o.acked = true
		o.ackCode, o.ackMsg = s.shareAck(ctx, rc, read, group, member, sp, a.batches, a.valid)
	}

	if final {
		s.endShareSession(ctx, rc, key)
	} else if !renew {
		var items []*shareOut
		for _, sp := range fetchParts {
			items = append(items, out.get(sp))
		}
		s.shareAcquire(ctx, rc, req, group, member, recordLimit, read, items)
	}

	// Build the response, one entry per topic in first-seen order.
	topicIdx := map[TopicID]int{}
	endpoints := map[int32]bool{}
	for _, o := range out.order {
		if !full && !o.acked && o.code == 0 && len(o.acquired) == 0 {
			continue
		}
		p := kmsg.NewShareFetchResponseTopicPartition()
		p.Partition = o.sp.partition
		p.ErrorCode, p.ErrorMessage = o.code, o.msg
		p.AcknowledgeErrorCode, p.AcknowledgeErrorMessage = o.ackCode, o.ackMsg
		p.CurrentLeader.LeaderID, p.CurrentLeader.LeaderEpoch = o.leader, o.leaderEpch
		if o.code == kerr.NotLeaderForPartition.Code && o.leader >= 0 {
			endpoints[o.leader] = true
		}
		p.Records = o.records
		s.metrics.fetched(o.topic, o.records)
		fetchedLineage(rc, group, o.topic, o.records)
		if p.Records == nil {
			p.Records = []byte{}
		}
		for _, a := range o.acquired {
			ar := kmsg.NewShareFetchResponseTopicPartitionAcquiredRecord()
			ar.FirstOffset, ar.LastOffset, ar.DeliveryCount = a.First, a.Last, a.DeliveryCount
			p.AcquiredRecords = append(p.AcquiredRecords, ar)
		}
		i, ok := topicIdx[o.sp.topicID]
		if !ok {
			i = len(resp.Topics)
			topicIdx[o.sp.topicID] = i
			t := kmsg.NewShareFetchResponseTopic()
			t.TopicID = o.sp.topicID
			resp.Topics = append(resp.Topics, t)
		}
		resp.Topics[i].Partitions = append(resp.Topics[i].Partitions, p)
	}
	for _, b := range s.brokers(rc) {
		if endpoints[b.NodeID] {
			ep := kmsg.NewShareFetchResponseNodeEndpoint()
			ep.NodeID, ep.Host, ep.Port, ep.Rack = b.NodeID, b.Host, b.Port, b.Rack
			resp.NodeEndpoints = append(resp.NodeEndpoints, ep)
		}
	}
	return resp, nil
}

// shareAcquire resolves the items (the session's partitions) and acquires
// their records until MinBytes are acquired, an acquisition fails, the
// budgets are spent or MaxWaitMillis elapses, waking only on Log.Changed
// and Shares.Changed.
func (s *Server) shareAcquire(ctx context.Context, rc *reqCtx, req *kmsg.ShareFetchRequest, group, member string, recordLimit bool, read *topicChecker, items []*shareOut) {
	self := s.opts.Cluster.Self().NodeID
	var live []*shareOut
	for _, o := range items {
		ti, ok := s.opts.Log.TopicByID(o.sp.topicID)
		switch {
		case !ok:
			o.code = kerr.UnknownTopicID.Code
		case !read.ok(ti.Name):
			o.code = kerr.TopicAuthorizationFailed.Code
		case o.sp.partition < 0 || o.sp.partition >= ti.Partitions:
			o.code = kerr.UnknownTopicOrPartition.Code
		default:
			o.topic = ti.Name
			if leader := s.opts.Cluster.Leader(ti.ID, o.sp.partition); leader != self {
				o.code, o.leader, o.leaderEpch = kerr.NotLeaderForPartition.Code, leader, 0
				if st, err := s.opts.Log.State(ti.Name, o.sp.partition); err == nil {
					o.leaderEpch = st.LeaderEpoch
				}
				continue
			}
			live = append(live, o)
		}
	}
	if len(live) == 0 {
		return
	}

	recordsLeft := int64(defaultShareMaxRecords)
	if req.MaxRecords > 0 {
		recordsLeft = int64(req.MaxRecords)
	}
	bytesLeft := int64(req.MaxBytes)
	if bytesLeft <= 0 {
		bytesLeft = math.MaxInt32
	}
	minBytes := int64(max(req.MinBytes, 1))
	var timer <-chan time.Time
	if req.MaxWaitMillis > 0 {
		t := time.NewTimer(time.Duration(req.MaxWaitMillis) * time.Millisecond)
		defer t.Stop()
		timer = t.C
	}
	var total int64
	for {
		// Both channels before acquiring: no missed wake-up.
		logChanged, sharesChanged := s.opts.Log.Changed(), s.opts.Shares.Changed()
		failed := false
		for _, o := range live {
			if o.code != 0 {
				continue
			}
			if recordsLeft <= 0 || total > 0 && bytesLeft <= 0 {
				break
			}
			res, err := s.opts.Shares.Acquire(ctx, share.AcquireRequest{
				Key:    share.Key{Group: group, Topic: o.sp.topicID, Partition: o.sp.partition},
				Member: member, MaxRecords: int32(recordsLeft), MaxBytes: int32(max(bytesLeft, 1)),
				RecordLimit: recordLimit,
			})
			if err != nil {
				if errors.Is(err, context.Canceled) && ctx.Err() != nil {
					return
				}
				o.code, o.msg = errorCode(rc.log.With("group", group, "topic", o.topic, "partition", o.sp.partition), err), errorMessage(err)
				failed = true
				continue
			}
			if len(res.Acquired) == 0 {
				continue
			}
			o.records = append(o.records, res.Records...)
			o.acquired = append(o.acquired, res.Acquired...)
			for _, a := range res.Acquired {
				recordsLeft -= a.Last - a.First + 1
			}
			total += int64(len(res.Records))
			bytesLeft -= int64(len(res.Records))
		}
		if failed || total >= minBytes || timer == nil || recordsLeft <= 0 || total > 0 && bytesLeft <= 0 {
			return
		}
		select {
		case <-logChanged:
		case <-sharesChanged:
		case <-timer:
			return
		case <-ctx.Done():
			return
		case <-s.draining:
			return
		}
	}
}

// idleWait waits ms milliseconds, or until the request's context ends or
// the server drains.
func (s *Server) idleWait(ctx context.Context, ms int32) {
	if ms <= 0 {
		return
	}
	t := time.NewTimer(time.Duration(ms) * time.Millisecond)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	case <-s.draining:
	}
}

func handleShareAcknowledge(ctx context.Context, s *Server, rc *reqCtx, req *kmsg.ShareAcknowledgeRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.ShareAcknowledgeResponse)
	fail := func(e *kerr.Error, msg string) (kmsg.Response, error) {
		resp.ErrorCode, resp.ErrorMessage = e.Code, strp(msg)
		return resp, nil
	}
	group, member := derefStr(req.GroupID), derefStr(req.MemberID)
	if !s.authorizedGroup(rc, kmsg.ACLOperationRead, group) {
		return fail(kerr.GroupAuthorizationFailed, kerr.GroupAuthorizationFailed.Message)
	}
	if group == "" || member == "" {
		return fail(kerr.InvalidRequest, "a share acknowledgement needs a group id and a member id")
	}
	if req.Version >= 2 {
		resp.AcquisitionLockTimeoutMillis = lockMillis(s.opts.Shares.LockDuration(group))
	}
	key := shareSessKey{group, member}
	if code := s.shareSessions.acknowledge(key, req.ShareSessionEpoch); code != 0 {
		e := kerr.ErrorForCode(code).(*kerr.Error)
		return fail(e, e.Message)
	}
	renew := req.Version >= 2 && req.IsRenewAck
	read := s.topicChecker(rc, kmsg.ACLOperationRead)
	seen := map[sharePart]bool{}
	for _, t := range req.Topics {
		rt := kmsg.NewShareAcknowledgeResponseTopic()
		rt.TopicID = t.TopicID
		for _, p := range t.Partitions {
			sp := sharePart{t.TopicID, p.Partition}
			b := p.AcknowledgementBatches
			batches, ok := shareAckBatches(len(b), func(i int) (int64, int64, []int8) {
				return b[i].FirstOffset, b[i].LastOffset, b[i].AcknowledgeTypes
			}, renew)
			if seen[sp] {
				ok = false // named twice
			}
			seen[sp] = true
			rp := kmsg.NewShareAcknowledgeResponseTopicPartition()
			rp.Partition = p.Partition
			rp.CurrentLeader.LeaderID, rp.CurrentLeader.LeaderEpoch = -1, -1
			rp.ErrorCode, rp.ErrorMessage = s.shareAck(ctx, rc, read, group, member, sp, batches, ok)
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	if req.ShareSessionEpoch == -1 {
		s.endShareSession(ctx, rc, key)
	}
	return resp, nil
}
