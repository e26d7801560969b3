package protocol

// Produce (key 0), versions 3–12 (magic 2 record batches only). Versions 0–2 are advertised, as Kafka 4
// still does, because librdkafka 2.x enables gzip, snappy and lz4 only when
// the broker's Produce range includes them; a v0–2 request (magic 0/1
// message sets) is answered UNSUPPORTED_VERSION per partition.
//
// acks must be 0, 1 or -1 (INVALID_REQUIRED_ACKS otherwise); 1 and -1 both
// mean "in the object store and sequenced". All partitions of one request go
// to the Log in one Produce call so they share one flush. acks=0 gets no
// response (the request is still handled before the next one, preserving
// order). TimeoutMillis bounds the wait (REQUEST_TIMED_OUT). Unknown topics
// or partitions are answered without reaching the Log, and so are internal
// topics (INVALID_TOPIC_EXCEPTION, as Kafka refuses clients' appends to
// them). KIP-467 record errors and error messages are filled from v8.
//
// Authorization (as Kafka): a request carrying transactional batches needs
// WRITE on its transactional id, or every partition is answered
// TRANSACTIONAL_ID_AUTHORIZATION_FAILED; each topic needs WRITE, or its
// partitions are answered TOPIC_AUTHORIZATION_FAILED (before existence is
// checked, so unknown topics are not disclosed). Idempotent producers are
// authorized once, by InitProducerId.
//
// Transactional batches (v3+ with a transactional id) are verified by the
// sequencer against the producer's open transaction; v12 (Transactions V2)
// marks them for implicit addition to it. v13 (topic ids) is not served.

import (
	"context"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleProduce(ctx context.Context, s *Server, rc *reqCtx, req *kmsg.ProduceRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.ProduceResponse)
	ctx, tr := s.traceProduce(ctx, rc, req) // trace.go; nil unless traced
	var failAll int16
	switch {
	case req.Version < 3:
		failAll = kerr.UnsupportedVersion.Code
	case req.Acks != 0 && req.Acks != 1 && req.Acks != -1:
		failAll = kerr.InvalidRequiredAcks.Code
	case s.opts.Authorizer != nil && hasTransactionalBatch(req) &&
		(req.TransactionID == nil || !s.authorizedTxn(rc, kmsg.ACLOperationWrite, *req.TransactionID)):
		failAll = kerr.TransactionalIDAuthorizationFailed.Code
	}
	write := s.topicChecker(rc, kmsg.ACLOperationWrite)

	type slot struct{ t, p int } // response position of a batch
	var batches []ProduceBatch
	var slots []slot
	for ti, rt := range req.Topics {
		t := kmsg.NewProduceResponseTopic()
		t.Topic = rt.Topic
		info, known := s.opts.Log.Topic(rt.Topic)
		for _, rp := range rt.Partitions {
			p := kmsg.NewProduceResponseTopicPartition()
			p.Partition = rp.Partition
			p.BaseOffset, p.LogAppendTime, p.LogStartOffset = -1, -1, -1
			switch {
			case failAll != 0:
				p.ErrorCode = failAll
			case !write.ok(rt.Topic):
				p.ErrorCode = kerr.TopicAuthorizationFailed.Code
			case !known || rp.Partition < 0 || rp.Partition >= info.Partitions:
				p.ErrorCode = kerr.UnknownTopicOrPartition.Code
			case info.Internal:
				p.ErrorCode = kerr.InvalidTopicException.Code
				p.ErrorMessage = strp("Cannot append to internal topic " + rt.Topic)
			default:
				batches = append(batches, ProduceBatch{Topic: rt.Topic, Partition: rp.Partition, Records: rp.Records,
					ImplicitTxnAdd: req.Version >= 12 && req.TransactionID != nil})
				slots = append(slots, slot{ti, len(t.Partitions)})
			}
			t.Partitions = append(t.Partitions, p)
		}
		resp.Topics = append(resp.Topics, t)
	}

	if len(batches) == 0 {
		tr.endProduce(resp)
		if req.Acks == 0 {
			return nil, nil
		}
		return resp, nil
	}
	// Queue now, in request order; answer once sequenced, while the
	// connection goes on with the next request (see conn.go).
	pctx, cancel := ctx, context.CancelFunc(func() {})
	if req.TimeoutMillis > 0 {
		pctx, cancel = context.WithTimeout(ctx, time.Duration(req.TimeoutMillis)*time.Millisecond)
	}
	wait := tr.produce(pctx, s.opts.Log, batches)
	lin := produceLineage(rc, req) // lineage.go
	return &deferred{wait: func() (kmsg.Response, error) {
		defer cancel()
		results := wait()
		for i, sl := range slots {
			p := &resp.Topics[sl.t].Partitions[sl.p]
			if i >= len(results) {
				p.ErrorCode = kerr.UnknownServerError.Code
				rc.log.Error("log returned too few produce results", "want", len(batches), "got", len(results))
				continue
			}
			r := results[i]
			if r.Err != nil {
				p.ErrorCode = errorCode(rc.log.With("topic", batches[i].Topic, "partition", batches[i].Partition), r.Err)
				p.ErrorMessage = strp(r.Err.Error())
				p.ErrorRecords = errorRecords(r.RecordErrors)
				continue
			}
			p.BaseOffset, p.LogAppendTime, p.LogStartOffset = r.BaseOffset, r.LogAppendTime, r.LogStartOffset
			s.metrics.produced(batches[i].Topic, batches[i].Records, len(r.RecordErrors))
			lin.produced(batches[i].Topic, batches[i].Records, len(r.RecordErrors))
			if len(r.RecordErrors) > 0 {
				// Accepted, with records routed to a dead-letter topic: the
				// record errors say which (their offsets stay gaps) under
				// error code NONE.
				p.ErrorMessage = strp(strconv.Itoa(len(r.RecordErrors)) + " of the batch's records were routed to a dead-letter topic")
				p.ErrorRecords = errorRecords(r.RecordErrors)
			}
		}
		tr.endProduce(resp)
		if req.Acks == 0 {
			return nil, nil
		}
		return resp, nil
	}}, nil
}

// errorRecords is the KIP-467 record errors of a produced batch.
func errorRecords(errs []RecordError) []kmsg.ProduceResponseTopicPartitionErrorRecord {
	out := make([]kmsg.ProduceResponseTopicPartitionErrorRecord, 0, len(errs))
	for _, re := range errs {
		er := kmsg.NewProduceResponseTopicPartitionErrorRecord()
		er.RelativeOffset = re.Index
		er.ErrorMessage = strp(re.Message)
		out = append(out, er)
	}
	return out
}

// hasTransactionalBatch reports whether the first batch of any partition is
// transactional (attributes bit 4), as Kafka decides whether a produce
// needs WRITE on its transactional id.
func hasTransactionalBatch(req *kmsg.ProduceRequest) bool {
	const attrsAt = 8 + 4 + 4 + 1 + 4 // base offset, length, leader epoch, magic, crc
	for _, t := range req.Topics {
		for _, p := range t.Partitions {
			if len(p.Records) >= attrsAt+2 && p.Records[16] == 2 && p.Records[attrsAt+1]&0x10 != 0 {
				return true
			}
		}
	}
	return false
}
