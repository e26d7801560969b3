package protocol

// Transactions (KIP-98, KIP-890): AddPartitionsToTxn (key 24) v0–5,
// AddOffsetsToTxn (25) v0–4, EndTxn (26) v0–5, DescribeProducers (61) v0,
// DescribeTransactions (65) v0, ListTransactions (66) v0–1. InitProducerId
// with a transactional id is in producerid.go, TxnOffsetCommit goes to the
// group coordinator (groups.go), FindCoordinator for transactions is in
// groups.go.
//
// Transactions are sequencer state (DESIGN §5a rule 4): each request here
// becomes one log entry, so any broker fronts any transaction and a broker
// crash leaves the transaction exactly where the log says. ApiVersions
// advertises transaction.version 2: clients that know KIP-890 part 2 skip
// AddPartitionsToTxn (Produce v12 adds implicitly), skip AddOffsetsToTxn
// (TxnOffsetCommit v5), and get a new epoch from every EndTxn v5, which is
// what makes a delayed EndTxn harmless (KAFKA-17754). Older clients use the
// explicit requests and the same epoch throughout.
//
// AddPartitionsToTxn v4+ (the batched form Kafka brokers send each other)
// is served too; VerifyOnly checks membership without adding. An unknown
// partition fails the request: it gets UNKNOWN_TOPIC_OR_PARTITION and the
// others OPERATION_NOT_ATTEMPTED, as Kafka answers.
//
// PRODUCER_FENCED is answered only to versions that know it (KIP-588);
// older ones get INVALID_PRODUCER_EPOCH. DescribeTransactions,
// ListTransactions and DescribeProducers first catch up with the log
// (Log.SyncRead), so every broker answers what was committed before the
// request, wherever it was committed.
//
// Authorization (as Kafka): AddPartitionsToTxn v0–3 (from clients) needs
// WRITE on the transactional id (every partition
// TRANSACTIONAL_ID_AUTHORIZATION_FAILED) and WRITE on each topic (internal
// topics never qualify): an unauthorized topic's partitions get
// TOPIC_AUTHORIZATION_FAILED and the rest OPERATION_NOT_ATTEMPTED; v4+ is
// broker-to-broker and needs CLUSTER_ACTION on the cluster (top-level
// CLUSTER_AUTHORIZATION_FAILED). AddOffsetsToTxn needs WRITE on the
// transactional id, then READ on the group (GROUP_AUTHORIZATION_FAILED).
// EndTxn needs WRITE on the transactional id. DescribeTransactions needs
// DESCRIBE on each id (TRANSACTIONAL_ID_AUTHORIZATION_FAILED) and leaves out
// the topics the principal may not DESCRIBE; ListTransactions lists only
// the ids it may DESCRIBE; DescribeProducers needs READ on each topic
// (TOPIC_AUTHORIZATION_FAILED).

import (
	"context"
	"regexp"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-dev/runnel/internal/stream"
)

// transactionVersion is the transaction.version feature level served.
const transactionVersion = 2

// txnCode maps a transaction error, downgrading PRODUCER_FENCED for request
// versions before fencedSince.
func txnCode(rc *reqCtx, err error, version, fencedSince int16) int16 {
	code := errorCode(rc.log, err)
	if code == kerr.ProducerFenced.Code && version < fencedSince {
		return kerr.InvalidProducerEpoch.Code
	}
	return code
}

func handleAddPartitionsToTxn(ctx context.Context, s *Server, rc *reqCtx, req *kmsg.AddPartitionsToTxnRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.AddPartitionsToTxnResponse)
	if req.Version >= 4 && !s.authorizedCluster(rc, kmsg.ACLOperationClusterAction) {
		resp.ErrorCode = kerr.ClusterAuthorizationFailed.Code
		return resp, nil
	}
	if req.Version <= 3 {
		tx := kmsg.NewAddPartitionsToTxnRequestTransaction()
		tx.TransactionalID, tx.ProducerID, tx.ProducerEpoch = req.TransactionalID, req.ProducerID, req.ProducerEpoch
		for _, t := range req.Topics {
			tt := kmsg.NewAddPartitionsToTxnRequestTransactionTopic()
			tt.Topic, tt.Partitions = t.Topic, t.Partitions
			tx.Topics = append(tx.Topics, tt)
		}
		res := addPartitions(ctx, s, rc, req.Version, tx)
		for _, t := range res.Topics {
			rt := kmsg.NewAddPartitionsToTxnResponseTopic()
			rt.Topic = t.Topic
			for _, p := range t.Partitions {
				rp := kmsg.NewAddPartitionsToTxnResponseTopicPartition()
				rp.Partition, rp.ErrorCode = p.Partition, p.ErrorCode
				rt.Partitions = append(rt.Partitions, rp)
			}
			resp.Topics = append(resp.Topics, rt)
		}
		return resp, nil
	}
	for _, tx := range req.Transactions {
		resp.Transactions = append(resp.Transactions, addPartitions(ctx, s, rc, req.Version, tx))
	}
	return resp, nil
}

// addPartitions answers one transaction of an AddPartitionsToTxn request.
func addPartitions(ctx context.Context, s *Server, rc *reqCtx, version int16, tx kmsg.AddPartitionsToTxnRequestTransaction) kmsg.AddPartitionsToTxnResponseTransaction {
	out := kmsg.NewAddPartitionsToTxnResponseTransaction()
	out.TransactionalID = tx.TransactionalID
	var parts []stream.TxnPartition
	blocked := false       // a partition cannot be added: none is
	client := version <= 3 // v4+ comes from brokers, authorized as such
	txnAllowed := !client || s.authorizedTxn(rc, kmsg.ACLOperationWrite, tx.TransactionalID)
	write := s.topicChecker(rc, kmsg.ACLOperationWrite)
	for _, t := range tx.Topics {
		rt := kmsg.NewAddPartitionsToTxnResponseTransactionTopic()
		rt.Topic = t.Topic
		info, ok := s.opts.Log.Topic(t.Topic)
		topicAllowed := !client || (write.ok(t.Topic) && !(s.opts.Authorizer != nil && ok && info.Internal))
		for _, p := range t.Partitions {
			rp := kmsg.NewAddPartitionsToTxnResponseTransactionTopicPartition()
			rp.Partition = p
			if !txnAllowed {
				rp.ErrorCode = kerr.TransactionalIDAuthorizationFailed.Code
			} else if !topicAllowed {
				rp.ErrorCode = kerr.TopicAuthorizationFailed.Code
				blocked = true
			} else if !ok || p < 0 || p >= info.Partitions {
				rp.ErrorCode = kerr.UnknownTopicOrPartition.Code
				blocked = true
			} else {
				parts = append(parts, stream.TxnPartition{Topic: info.ID, Partition: p})
			}
			rt.Partitions = append(rt.Partitions, rp)
		}
		out.Topics = append(out.Topics, rt)
	}
	setAll := func(code int16) kmsg.AddPartitionsToTxnResponseTransaction {
		for ti := range out.Topics {
			for pi := range out.Topics[ti].Partitions {
				if out.Topics[ti].Partitions[pi].ErrorCode == 0 {
					out.Topics[ti].Partitions[pi].ErrorCode = code
				}
			}
		}
		return out
	}
	switch {
	case !txnAllowed:
		return out
	case blocked:
		return setAll(kerr.OperationNotAttempted.Code)
	case tx.TransactionalID == "":
		return setAll(kerr.InvalidRequest.Code)
	case tx.VerifyOnly:
		return verifyPartitions(s, tx, out)
	}
	err := s.opts.Log.AddPartitionsToTxn(ctx, tx.TransactionalID, tx.ProducerID, tx.ProducerEpoch, parts)
	return setAll(txnCode(rc, err, version, 2))
}

// verifyPartitions answers a VerifyOnly transaction: each partition must
// already be in the producer's ongoing transaction.
func verifyPartitions(s *Server, tx kmsg.AddPartitionsToTxnRequestTransaction, out kmsg.AddPartitionsToTxnResponseTransaction) kmsg.AddPartitionsToTxnResponseTransaction {
	var info *stream.TxnInfo
	for _, t := range s.opts.Log.Transactions() {
		if t.ID == tx.TransactionalID {
			info = &t
			break
		}
	}
	for ti, t := range out.Topics {
		for pi, p := range t.Partitions {
			rp := &out.Topics[ti].Partitions[pi]
			switch {
			case info == nil || info.ProducerID != tx.ProducerID:
				rp.ErrorCode = kerr.InvalidProducerIDMapping.Code
			case info.Epoch != tx.ProducerEpoch:
				rp.ErrorCode = kerr.ProducerFenced.Code
			case info.State != "Ongoing" || !slices.Contains(info.Partitions, stream.TxnPartitionName{Topic: t.Topic, Partition: p.Partition}):
				rp.ErrorCode = kerr.InvalidTxnState.Code
			}
		}
	}
	return out
}

func handleAddOffsetsToTxn(ctx context.Context, s *Server, rc *reqCtx, req *kmsg.AddOffsetsToTxnRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.AddOffsetsToTxnResponse)
	switch {
	case !s.authorizedTxn(rc, kmsg.ACLOperationWrite, req.TransactionalID):
		resp.ErrorCode = kerr.TransactionalIDAuthorizationFailed.Code
		return resp, nil
	case !s.authorizedGroup(rc, kmsg.ACLOperationRead, req.Group):
		resp.ErrorCode = kerr.GroupAuthorizationFailed.Code
		return resp, nil
	}
	if req.TransactionalID == "" {
		resp.ErrorCode = kerr.InvalidRequest.Code
		return resp, nil
	}
	err := s.opts.Log.AddOffsetsToTxn(ctx, req.TransactionalID, req.ProducerID, req.ProducerEpoch, req.Group)
	resp.ErrorCode = txnCode(rc, err, req.Version, 2)
	return resp, nil
}

func handleEndTxn(ctx context.Context, s *Server, rc *reqCtx, req *kmsg.EndTxnRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.EndTxnResponse)
	resp.ProducerID, resp.ProducerEpoch = -1, -1
	if !s.authorizedTxn(rc, kmsg.ACLOperationWrite, req.TransactionalID) {
		resp.ErrorCode = kerr.TransactionalIDAuthorizationFailed.Code
		return resp, nil
	}
	if req.TransactionalID == "" {
		resp.ErrorCode = kerr.InvalidRequest.Code
		return resp, nil
	}
	pid, epoch, err := s.opts.Log.EndTxn(ctx, req.TransactionalID, req.ProducerID, req.ProducerEpoch, req.Commit, req.Version >= 5)
	if err != nil {
		resp.ErrorCode = txnCode(rc, err, req.Version, 2)
		return resp, nil
	}
	resp.ProducerID, resp.ProducerEpoch = pid, epoch
	return resp, nil
}

func handleDescribeTransactions(ctx context.Context, s *Server, rc *reqCtx, req *kmsg.DescribeTransactionsRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.DescribeTransactionsResponse)
	deniedState := func(id string) (kmsg.DescribeTransactionsResponseTransactionState, bool) {
		st := kmsg.NewDescribeTransactionsResponseTransactionState()
		st.TransactionalID = id
		if s.authorizedTxn(rc, kmsg.ACLOperationDescribe, id) {
			return st, false
		}
		st.ErrorCode = kerr.TransactionalIDAuthorizationFailed.Code
		return st, true
	}
	if err := s.opts.Log.SyncRead(ctx); err != nil {
		code := errorCode(rc.log, err)
		for _, id := range req.TransactionalIDs {
			st, denied := deniedState(id)
			if !denied {
				st.ErrorCode = code
			}
			resp.TransactionStates = append(resp.TransactionStates, st)
		}
		return resp, nil
	}
	all := s.opts.Log.Transactions()
	describe := s.topicChecker(rc, kmsg.ACLOperationDescribe)
	for _, id := range req.TransactionalIDs {
		st, denied := deniedState(id)
		if denied {
			resp.TransactionStates = append(resp.TransactionStates, st)
			continue
		}
		i := slices.IndexFunc(all, func(t stream.TxnInfo) bool { return t.ID == id })
		if i < 0 {
			st.ErrorCode = kerr.TransactionalIDNotFound.Code
			st.ProducerID, st.ProducerEpoch, st.StartTimestamp = -1, -1, -1
			resp.TransactionStates = append(resp.TransactionStates, st)
			continue
		}
		t := all[i]
		st.State, st.TimeoutMillis, st.StartTimestamp = t.State, t.TimeoutMs, t.StartMs
		st.ProducerID, st.ProducerEpoch = t.ProducerID, t.Epoch
		for _, p := range t.Partitions {
			if !describe.ok(p.Topic) {
				continue
			}
			if n := len(st.Topics); n > 0 && st.Topics[n-1].Topic == p.Topic {
				st.Topics[n-1].Partitions = append(st.Topics[n-1].Partitions, p.Partition)
				continue
			}
			tt := kmsg.NewDescribeTransactionsResponseTransactionStateTopic()
			tt.Topic, tt.Partitions = p.Topic, []int32{p.Partition}
			st.Topics = append(st.Topics, tt)
		}
		resp.TransactionStates = append(resp.TransactionStates, st)
	}
	return resp, nil
}

// txnStates are the states ListTransactions filters by.
var txnStates = []string{"Empty", "Ongoing", "PrepareCommit", "PrepareAbort", "CompleteCommit", "CompleteAbort", "Dead", "PrepareEpochFence"}

func handleListTransactions(ctx context.Context, s *Server, rc *reqCtx, req *kmsg.ListTransactionsRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.ListTransactionsResponse)
	if err := s.opts.Log.SyncRead(ctx); err != nil {
		resp.ErrorCode = errorCode(rc.log, err)
		return resp, nil
	}
	var pattern *regexp.Regexp
	if req.Version >= 2 && req.TransactionalIDPattern != nil && *req.TransactionalIDPattern != "" {
		re, err := regexp.Compile(*req.TransactionalIDPattern)
		if err != nil {
			resp.ErrorCode = kerr.InvalidRegularExpression.Code
			return resp, nil
		}
		pattern = re
	}
	for _, f := range req.StateFilters {
		if !slices.Contains(txnStates, f) {
			resp.UnknownStateFilters = append(resp.UnknownStateFilters, f)
		}
	}
	now := time.Now().UnixMilli()
	for _, t := range s.opts.Log.Transactions() {
		switch {
		case len(req.StateFilters) > 0 && !slices.Contains(req.StateFilters, t.State):
			continue
		case len(req.ProducerIDFilters) > 0 && !slices.Contains(req.ProducerIDFilters, t.ProducerID):
			continue
		case req.Version >= 1 && req.DurationFilterMillis >= 0 && (t.StartMs < 0 || now-t.StartMs < req.DurationFilterMillis):
			continue // KIP-994: only transactions open at least this long
		case pattern != nil && !pattern.MatchString(t.ID):
			continue
		case !s.authorizedTxn(rc, kmsg.ACLOperationDescribe, t.ID):
			continue
		}
		st := kmsg.NewListTransactionsResponseTransactionState()
		st.TransactionalID, st.ProducerID, st.TransactionState = t.ID, t.ProducerID, t.State
		resp.TransactionStates = append(resp.TransactionStates, st)
	}
	return resp, nil
}

func handleDescribeProducers(ctx context.Context, s *Server, rc *reqCtx, req *kmsg.DescribeProducersRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.DescribeProducersResponse)
	synced := s.opts.Log.SyncRead(ctx)
	read := s.topicChecker(rc, kmsg.ACLOperationRead)
	for _, t := range req.Topics {
		rt := kmsg.NewDescribeProducersResponseTopic()
		rt.Topic = t.Topic
		for _, p := range t.Partitions {
			rp := kmsg.NewDescribeProducersResponseTopicPartition()
			rp.Partition = p
			if !read.ok(t.Topic) {
				rp.ErrorCode = kerr.TopicAuthorizationFailed.Code
				rt.Partitions = append(rt.Partitions, rp)
				continue
			}
			prods, err := s.opts.Log.Producers(t.Topic, p)
			if synced != nil {
				err = synced
			}
			if err != nil {
				rp.ErrorCode, rp.ErrorMessage = errorCode(rc.log, err), errorMessage(err)
				rt.Partitions = append(rt.Partitions, rp)
				continue
			}
			for _, pr := range prods {
				ap := kmsg.NewDescribeProducersResponseTopicPartitionActiveProducer()
				ap.ProducerID, ap.ProducerEpoch = pr.ProducerID, int32(pr.Epoch)
				ap.LastSequence, ap.LastTimestamp = pr.LastSequence, pr.LastTimestamp
				ap.CoordinatorEpoch, ap.CurrentTxnStartOffset = -1, pr.TxnStartOffset
				rp.ActiveProducers = append(rp.ActiveProducers, ap)
			}
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp, nil
}
