package stream

// Dead-letter routing of records that fail their topic's data contract
// with the DLQ action.
//
// What the producer sees: its batch succeeds, with the base offset the
// sequencer assigns. The batch is stored without the routed records; their
// offsets stay inside the batch's offset range as gaps, exactly as log
// compaction leaves them, so offsets are never reused and sequence numbers
// (idempotence) are unchanged. Each routed record is appended, unchanged
// (key, value, headers, timestamp), to the dead-letter topic, with headers
// saying why:
//
//	__runnel.dlq.topic      the topic it was produced to
//	__runnel.dlq.partition  the partition (decimal)
//	__runnel.dlq.reason     what failed
//	__runnel.dlq.subject    the subject checked (when known)
//	__runnel.dlq.rule       the failing rule (for rule failures)
//
// The dead-letter copies travel as companions of the stored batch: in the
// same intake object and the same log entry, and sequenced only if it is.
// A retried batch that the sequencer recognises as a duplicate therefore
// writes no second copy, and a rejected batch writes none. A dead-letter
// topic goes to the partition with the same number modulo its partition
// count. A batch whose dead-letter topic does not exist fails with
// INVALID_RECORD, as does one naming its own topic.

import (
	"fmt"
	"sort"
	"strconv"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Dead-letter header keys.
const (
	DLQHeaderTopic     = "__runnel.dlq.topic"
	DLQHeaderPartition = "__runnel.dlq.partition"
	DLQHeaderReason    = "__runnel.dlq.reason"
	DLQHeaderSubject   = "__runnel.dlq.subject"
	DLQHeaderRule      = "__runnel.dlq.rule"
)

// attrCompanion marks, in an intake descriptor only, a dead-letter batch
// whose BaseSeq is the index (in the same entry) of the batch it goes with.
const attrCompanion = 0x2000

// routeToDLQ splits a batch: the records the verdicts name go to their
// dead-letter topics as companion batches, the rest stay (see above).
func (e *Engine) routeToDLQ(topic string, partition int32, v validated, verdicts []ContractVerdict) (validated, []queued, []RecordError, error) {
	failing := make(map[int32]ContractVerdict, len(verdicts))
	for _, vd := range verdicts {
		failing[vd.Index] = vd
	}
	fail := func(format string, args ...any) (validated, []queued, []RecordError, error) {
		msg := fmt.Sprintf(format, args...)
		errs := make([]RecordError, 0, len(verdicts))
		for _, vd := range verdicts {
			errs = append(errs, RecordError{Index: vd.Index, Message: vd.Message + "; " + msg})
		}
		return v, nil, errs, fmt.Errorf("%w: %s", ErrInvalidRecord, msg)
	}
	type target struct {
		id         TopicID
		partitions int32
	}
	targets := map[string]target{}
	e.mu.RLock()
	for _, vd := range verdicts {
		if _, ok := targets[vd.DLQTopic]; ok {
			continue
		}
		id, ok := e.st.ByName[vd.DLQTopic]
		if !ok {
			e.mu.RUnlock()
			return fail("the dead-letter topic %q does not exist", vd.DLQTopic)
		}
		targets[vd.DLQTopic] = target{id: id, partitions: int32(len(e.st.Topics[id].Parts))}
	}
	e.mu.RUnlock()
	if _, self := targets[topic]; self {
		return fail("a topic cannot be its own dead-letter topic")
	}

	h, data, err := batchRecordsData(v.bytes)
	if err != nil {
		return fail("reading the batch: %v", err)
	}
	var keep []byte
	var kept int32
	routed := map[string][]kmsg.Record{}
	routedTS := map[string][]int64{}
	err = iterRecords(data, h.NumRecords, func(i int32, r *rawRecord) error {
		vd, bad := failing[i]
		if !bad {
			keep = append(keep, r.Raw...)
			kept++
			return nil
		}
		var rec kmsg.Record
		if err := rec.ReadFrom(r.Raw); err != nil {
			return err
		}
		rec.Headers = append(rec.Headers,
			kmsg.Header{Key: DLQHeaderTopic, Value: []byte(topic)},
			kmsg.Header{Key: DLQHeaderPartition, Value: []byte(strconv.Itoa(int(partition)))},
			kmsg.Header{Key: DLQHeaderReason, Value: []byte(vd.Message)})
		if vd.Subject != "" {
			rec.Headers = append(rec.Headers, kmsg.Header{Key: DLQHeaderSubject, Value: []byte(vd.Subject)})
		}
		if vd.Rule != "" {
			rec.Headers = append(rec.Headers, kmsg.Header{Key: DLQHeaderRule, Value: []byte(vd.Rule)})
		}
		ts := h.FirstTimestamp + r.TimestampDelta
		if h.logAppendTime() {
			ts = h.MaxTimestamp
		}
		routed[vd.DLQTopic] = append(routed[vd.DLQTopic], rec)
		routedTS[vd.DLQTopic] = append(routedTS[vd.DLQTopic], ts)
		return nil
	})
	if err != nil {
		return fail("reading the batch: %v", err)
	}

	// The stored batch keeps its header (base offset, last offset delta,
	// producer id, epoch and sequence) around the records that stay.
	nh := h
	nh.NumRecords = kept
	attrs := h.Attributes
	var payload []byte
	if kept == 0 {
		attrs &^= attrCodecMask
	} else if payload, err = compress(h.codec(), keep); err != nil {
		return fail("recompressing the batch: %v", err)
	}
	main := buildBatch(nh, attrs, payload)
	mh, _ := parseBatchHeader(main)

	names := make([]string, 0, len(routed))
	for name := range routed {
		names = append(names, name)
	}
	sort.Strings(names)
	var companions []queued
	for _, name := range names {
		b := dlqBatch(routed[name], routedTS[name])
		bh, _ := parseBatchHeader(b)
		tg := targets[name]
		companions = append(companions, queued{index: -1, v: validated{hdr: bh, bytes: b},
			topic: tg.id, partition: partition % tg.partitions, companion: true})
	}
	// The producer is told which of its records went where: one record
	// error per routed record, in a response whose error code stays NONE
	// (clients act on record errors only with an error code, so this
	// informs without failing anything).
	routedErrs := make([]RecordError, 0, len(verdicts))
	for _, vd := range verdicts {
		routedErrs = append(routedErrs, RecordError{Index: vd.Index,
			Message: fmt.Sprintf("routed to the dead-letter topic %q: %s", vd.DLQTopic, vd.Message)})
	}
	sort.Slice(routedErrs, func(i, j int) bool { return routedErrs[i].Index < routedErrs[j].Index })
	return validated{hdr: mh, bytes: main}, companions, routedErrs, nil
}

// dlqBatch lays out dead-letter records as one uncompressed,
// non-idempotent batch keeping their timestamps.
func dlqBatch(recs []kmsg.Record, ts []int64) []byte {
	first, maxTS := ts[0], ts[0]
	for _, t := range ts {
		first, maxTS = min(first, t), max(maxTS, t)
	}
	var raw []byte
	for i := range recs {
		r := &recs[i]
		r.OffsetDelta = int32(i)
		r.TimestampDelta64 = ts[i] - first
		r.TimestampDelta = int32(r.TimestampDelta64)
		r.Length = 0
		r.Length = int32(len(r.AppendTo(nil)) - 1)
		raw = r.AppendTo(raw)
	}
	h := batchHeader{LastOffsetDelta: int32(len(recs) - 1), FirstTimestamp: first, MaxTimestamp: maxTS,
		ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1, NumRecords: int32(len(recs))}
	return buildBatch(h, 0, raw)
}
