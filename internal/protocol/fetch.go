package protocol

// Fetch (key 1), versions 4–16. Topic ids replace names from v13.
//
// Behaviour: partitions are read in request (or session) order within
// MaxBytes and each PartitionMaxBytes; the first partition that returns data
// may exceed both by one batch (Kafka's "at least one batch" rule), later
// partitions never do. Long polling: when fewer than MinBytes are available
// the handler waits on Log.Changed until MinBytes accumulate or
// MaxWaitMillis elapses (never sleeping in a loop). A fetch at an offset past
// the local high watermark triggers one read barrier (Log.SyncRead, DESIGN
// §5a rule 7) before OFFSET_OUT_OF_RANGE is answered; if the barrier fails
// those partitions are answered NOT_LEADER_OR_FOLLOWER (barrier.go). IsolationLevel 1 reads committed
// data up to the last stable offset with the aborted transaction list.
//
// KIP-227 incremental fetch sessions (v7+): a bounded per-broker cache
// (Options.FetchSessions, LRU eviction), epochs checked
// (FETCH_SESSION_ID_NOT_FOUND, INVALID_FETCH_SESSION_EPOCH), forgotten topics
// removed, and incremental responses carrying only partitions with records,
// errors or changed high watermark / last stable / log start offsets.
//
// Authorization (as Kafka): each partition's topic needs READ, or it is
// answered TOPIC_AUTHORIZATION_FAILED (an unknown topic id stays
// UNKNOWN_TOPIC_ID). READ is checked again after a long poll, so ACLs
// removed while a fetch waited stop what arrived meanwhile.
//
// Delayed topics (Runnel's delivery.delay.ms, the mechanism of retry topics):
// a partition's records are cut before the first batch whose max timestamp
// + the delay is still after the broker's clock (Options.Now), so a consumer
// sees each batch once it is due and never one past an undue one. A long
// poll then waits for the earliest due time on a timer as well as on
// Log.Changed. A topic without the config costs one topic lookup per
// request.
//
// Not done: follower fetching (ReplicaID is ignored: every fetcher is a
// consumer), preferred read replica (KIP-392: always -1), leader epoch
// fencing of CurrentLeaderEpoch and diverging epochs (the log has one
// logical replica, so a client's epoch cannot diverge).

import (
	"context"
	"encoding/binary"
	"errors"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-dev/runnel/internal/config"
	"github.com/runnel-dev/runnel/internal/stream"
)

// fetchItem is one partition being answered.
type fetchItem struct {
	sp *sessPart
	// delayMs is the topic's delivery delay (0: none), resolved once per
	// request.
	delayMs int64
	code    int16 // preset error (unknown topic id); 0 to read
	err     error
	res     FetchResult
	read    bool
}

func handleFetch(ctx context.Context, s *Server, rc *reqCtx, req *kmsg.FetchRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.FetchResponse)
	ctx, tr := s.traceFetch(ctx, rc, req) // trace.go; nil unless traced
	defer tr.endFetch(resp)
	useIDs := req.Version >= 13

	// Resolve the request's partitions.
	var reqParts []*fetchItem
	for _, rt := range req.Topics {
		name, id, code := rt.Topic, rt.TopicID, int16(0)
		if useIDs {
			if ti, ok := s.opts.Log.TopicByID(rt.TopicID); ok {
				name = ti.Name
			} else {
				code = kerr.UnknownTopicID.Code
			}
		} else if ti, ok := s.opts.Log.Topic(rt.Topic); ok {
			id = ti.ID
		}
		for _, rp := range rt.Partitions {
			reqParts = append(reqParts, &fetchItem{code: code, sp: &sessPart{
				key: sessKey{name, rp.Partition}, topicID: id,
				offset: rp.FetchOffset, maxBytes: rp.PartitionMaxBytes,
				hwm: -1, lso: -1, logStart: -1,
			}})
		}
	}

	// KIP-227 session handling.
	sessionID, incremental := int32(0), false
	items := reqParts
	if req.Version >= 7 {
		switch {
		case req.SessionEpoch == -1: // sessionless full fetch
			if req.SessionID != 0 {
				s.sessions.remove(req.SessionID)
			}
		case req.SessionEpoch == 0: // new full session
			if req.SessionID != 0 {
				s.sessions.remove(req.SessionID)
			}
			var sps []*sessPart
			for _, it := range reqParts {
				if it.code == 0 {
					sps = append(sps, it.sp)
				}
			}
			sessionID = s.sessions.create(sps)
		default: // incremental
			var upserts []*sessPart
			for _, it := range reqParts {
				if it.code == 0 {
					upserts = append(upserts, it.sp)
				}
			}
			var forget []sessKey
			for _, ft := range req.ForgottenTopics {
				name := ft.Topic
				if useIDs {
					ti, ok := s.opts.Log.TopicByID(ft.TopicID)
					if !ok {
						continue
					}
					name = ti.Name
				}
				for _, p := range ft.Partitions {
					forget = append(forget, sessKey{name, p})
				}
			}
			sps, code := s.sessions.update(req.SessionID, req.SessionEpoch, upserts, forget)
			if code != 0 {
				resp.ErrorCode = code
				return resp, nil
			}
			sessionID, incremental = req.SessionID, true
			items = items[:0:0]
			for _, sp := range sps {
				items = append(items, &fetchItem{sp: sp})
			}
			// Partitions with unknown ids are not in the session but
			// must still be answered.
			for _, it := range reqParts {
				if it.code != 0 {
					items = append(items, it)
				}
			}
		}
	}
	resp.SessionID = sessionID

	// Every partition answered needs READ on its topic, checked on each
	// fetch (a session's partitions too: ACLs may have changed since).
	read := s.topicChecker(rc, kmsg.ACLOperationRead)
	for _, it := range items {
		if it.code == 0 && !read.ok(it.sp.key.topic) {
			it.code = kerr.TopicAuthorizationFailed.Code
		}
	}

	tr.waitStart()
	waited := s.fetchWait(ctx, rc, req, items)
	tr.waitEnd()
	if waited {
		// Checked again after a long poll: records that arrived while it
		// waited go only to a principal still allowed to read them (a
		// revoked grant or share must not receive what is written after
		// the revocation).
		reread := s.topicChecker(rc, kmsg.ACLOperationRead)
		for _, it := range items {
			if it.code == 0 && !reread.ok(it.sp.key.topic) {
				it.code = kerr.TopicAuthorizationFailed.Code
			}
		}
	}

	// Build the response, grouping consecutive partitions of one topic.
	var sent []*sessPart
	for _, it := range items {
		p := kmsg.NewFetchResponseTopicPartition()
		p.Partition = it.sp.key.partition
		p.PreferredReadReplica = -1
		p.HighWatermark, p.LastStableOffset, p.LogStartOffset = -1, -1, -1
		switch {
		case it.code != 0:
			p.ErrorCode = it.code
		case it.err != nil:
			p.ErrorCode = errorCode(rc.log.With("topic", it.sp.key.topic, "partition", it.sp.key.partition), it.err)
		default:
			p.HighWatermark = it.res.HighWatermark
			p.LastStableOffset = it.res.LastStableOffset
			p.LogStartOffset = it.res.LogStartOffset
			p.RecordBatches = it.res.Records
			s.metrics.fetched(it.sp.key.topic, p.RecordBatches)
			fetchedLineage(rc, "", it.sp.key.topic, p.RecordBatches)
			if req.IsolationLevel == 1 {
				for _, a := range it.res.Aborted {
					at := kmsg.NewFetchResponseTopicPartitionAbortedTransaction()
					at.ProducerID, at.FirstOffset = a.ProducerID, a.FirstOffset
					p.AbortedTransactions = append(p.AbortedTransactions, at)
				}
			}
		}
		if p.RecordBatches == nil {
			// nil encodes as a null (-1) records field before Fetch v12,
			// which librdkafka rejects ("invalid MessageSetSize -1").
			p.RecordBatches = []byte{}
		}
		if incremental && p.ErrorCode == 0 && len(p.RecordBatches) == 0 &&
			p.HighWatermark == it.sp.hwm && p.LastStableOffset == it.sp.lso && p.LogStartOffset == it.sp.logStart {
			continue
		}
		if sessionID != 0 && it.code == 0 {
			cp := *it.sp
			cp.hwm, cp.lso, cp.logStart = p.HighWatermark, p.LastStableOffset, p.LogStartOffset
			sent = append(sent, &cp)
		}
		n := len(resp.Topics)
		if n == 0 || resp.Topics[n-1].Topic != it.sp.key.topic || resp.Topics[n-1].TopicID != it.sp.topicID {
			t := kmsg.NewFetchResponseTopic()
			t.Topic, t.TopicID = it.sp.key.topic, it.sp.topicID
			resp.Topics = append(resp.Topics, t)
			n++
		}
		resp.Topics[n-1].Partitions = append(resp.Topics[n-1].Partitions, p)
	}
	if sessionID != 0 {
		s.sessions.remember(sessionID, sent)
	}
	return resp, nil
}

// fetchWait reads items until MinBytes are available, an error occurs or
// MaxWaitMillis elapses, waking only on Log.Changed. It reports whether it
// waited (then READ may have been revoked meanwhile).
func (s *Server) fetchWait(ctx context.Context, rc *reqCtx, req *kmsg.FetchRequest, items []*fetchItem) (waited bool) {
	var timer <-chan time.Time
	if req.MaxWaitMillis > 0 {
		t := time.NewTimer(time.Duration(req.MaxWaitMillis) * time.Millisecond)
		defer t.Stop()
		timer = t.C
	}
	s.fetchDelays(items)
	var due *time.Timer // the next batch of a delayed topic becomes due
	defer func() {
		if due != nil {
			due.Stop()
		}
	}()
	synced := false
	for {
		changed := s.opts.Log.Changed() // before reading: no missed wake-up
		acls := s.aclsChanged()
		total, outOfRange, failed, nextDue := s.fetchRead(ctx, req, items)
		if outOfRange && !synced {
			synced = true
			if err := s.readBarrier(ctx); err != nil {
				// This broker may be behind: the offset may well exist.
				rc.log.Warn("read barrier before an out-of-range answer failed", "err", err)
				for _, it := range items {
					if errors.Is(it.err, stream.ErrOffsetOutOfRange) {
						it.err = err
					}
				}
				return
			}
			waited = true // on the read barrier
			continue
		}
		if failed || total >= int(req.MinBytes) || timer == nil {
			return
		}
		var dueC <-chan time.Time
		if nextDue > 0 {
			wait := max(time.Duration(nextDue-s.now().UnixMilli())*time.Millisecond, time.Millisecond)
			if due == nil {
				due = time.NewTimer(wait)
			} else {
				due.Reset(wait)
			}
			dueC = due.C
		}
		waited = true
		select {
		case <-dueC:
		case <-changed:
		case <-acls:
			// READ is checked again when the wait ends: answer now.
			return
		case <-timer:
			return
		case <-ctx.Done():
			return
		case <-s.draining:
			return
		}
	}
}

// aclsChanged is the authorizer's ACL change channel, or nil (never
// ready) without authorization or when the authorizer cannot tell.
func (s *Server) aclsChanged() <-chan struct{} {
	if w, ok := s.opts.Authorizer.(ACLWatcher); ok {
		return w.ACLsChanged()
	}
	return nil
}

// fetchDelays resolves each item's delivery delay: one topic lookup per
// topic (items of one topic are adjacent).
func (s *Server) fetchDelays(items []*fetchItem) {
	var last TopicID
	var lastDelay int64
	looked := false
	for _, it := range items {
		if it.code != 0 {
			continue
		}
		if !looked || it.sp.topicID != last {
			last, lastDelay, looked = it.sp.topicID, 0, true
			if ti, ok := s.opts.Log.TopicByID(last); ok {
				lastDelay = config.DeliveryDelay(ti.Configs).Milliseconds()
			}
		}
		it.delayMs = lastDelay
	}
}

// cutUndue returns the prefix of records (whole batches) whose batches are
// due at nowMs (max timestamp + delayMs <= nowMs) and, when a batch was cut,
// the time it becomes due (0 when nothing was cut).
func cutUndue(records []byte, nowMs, delayMs int64) ([]byte, int64) {
	const (
		offLength, offMaxTS, headerLen = 8, 35, 61
	)
	pos := 0
	for pos+headerLen <= len(records) {
		n := int(int32(binary.BigEndian.Uint32(records[pos+offLength:]))) + 12
		if n < headerLen || pos+n > len(records) {
			break // not a whole batch: leave it to the client
		}
		if dueAt := int64(binary.BigEndian.Uint64(records[pos+offMaxTS:])) + delayMs; dueAt > nowMs {
			return records[:pos], dueAt
		}
		pos += n
	}
	return records, 0
}

// fetchRead reads every item once within the request's byte budgets. It
// returns the bytes read, whether any partition was past its high
// watermark, whether any partition failed, and the earliest time a batch
// cut from a delayed topic becomes due (0: none was cut).
func (s *Server) fetchRead(ctx context.Context, req *kmsg.FetchRequest, items []*fetchItem) (total int, outOfRange, failed bool, nextDue int64) {
	maxBytes := int(req.MaxBytes)
	if maxBytes <= 0 {
		maxBytes = int(^uint32(0) >> 1)
	}
	parts := make([]FetchPartition, 0, len(items))
	for _, it := range items {
		if it.code == 0 {
			parts = append(parts, FetchPartition{TopicID: it.sp.topicID, Partition: it.sp.key.partition, Offset: it.sp.offset, MaxBytes: it.sp.maxBytes})
		}
	}
	s.opts.Log.Prefetch(ctx, parts, int64(maxBytes))
	for _, it := range items {
		it.err, it.res, it.read = nil, FetchResult{}, false
		if it.code != 0 {
			failed = true
			continue
		}
		remaining := maxBytes - total
		pmax := int(it.sp.maxBytes)
		if remaining < pmax {
			pmax = remaining
		}
		key := it.sp.key
		if total > 0 && pmax <= 0 {
			// Budget spent: report offsets without records.
			st, err := s.opts.Log.State(key.topic, key.partition)
			if err != nil {
				it.err, failed = err, true
				continue
			}
			it.res = FetchResult{HighWatermark: st.HighWatermark, LastStableOffset: st.LastStableOffset, LogStartOffset: st.LogStartOffset}
			continue
		}
		if pmax < 0 {
			pmax = 0
		}
		res, err := s.opts.Log.Fetch(ctx, FetchPartition{
			TopicID: it.sp.topicID, Partition: key.partition, Offset: it.sp.offset,
			MaxBytes: int32(pmax), ReadCommitted: req.IsolationLevel == 1,
		})
		if err != nil {
			it.err, failed = err, true
			if errors.Is(err, stream.ErrOffsetOutOfRange) {
				outOfRange = true
			}
			continue
		}
		if it.delayMs > 0 && len(res.Records) > 0 {
			var dueAt int64
			if res.Records, dueAt = cutUndue(res.Records, s.now().UnixMilli(), it.delayMs); dueAt > 0 && (nextDue == 0 || dueAt < nextDue) {
				nextDue = dueAt
			}
		}
		if total > 0 && len(res.Records) > pmax {
			res.Records = nil // only the first partition with data may overshoot
		}
		it.res, it.read = res, true
		total += len(res.Records)
	}
	return total, outOfRange, failed, nextDue
}
