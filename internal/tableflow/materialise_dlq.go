package tableflow

// Dead letters of table.error.mode=dlq.
//
// A record that cannot become a row is produced, raw (key, value and
// headers as they were), to the dead-letter topic with headers naming the
// table, the reason, and the source topic, partition and offset. It goes to
// the dead-letter partition numbered source partition modulo the topic's
// partition count, through an idempotent producer id whose epoch and next
// sequence per partition are a table property (PropDLQ) set by the same
// commit that moves the offsets past the record. A writer that crashes, or
// loses the commit race, after producing the letters reads them again from
// the same table state and produces the same batch with the same producer
// id and sequence: the sequencer drops the copy (DESIGN §5a rule 3).
// Keeping the producer state in the table's metadata rather than in etcd
// makes the letters' progress and the offsets one atomic commit; a table
// property rather than a snapshot summary key, so maintenance commits
// carry it on without knowing of it.
//
// A producer id is committed to the table (a property-only commit) before
// any letter is produced under it: the first one, and a fresh one when the
// sequencer has forgotten the old (no batch for the producer id expiry, a
// day; a retry of a batch that old cannot be pending).

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"

	"github.com/apache/iceberg-go/table"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-dev/runnel/internal/stream"
)

// PropDLQ is the table property holding the dead-letter producer's
// state: {"pid":..,"epoch":..,"seq":{"<partition>":next}}.
const PropDLQ = "runnel.dlq-producer"

// Headers of a dead letter written by the materialiser.
const (
	HeaderTable     = "__tableflow.table"
	HeaderReason    = "__tableflow.reason"
	HeaderTopic     = "__tableflow.topic"
	HeaderPartition = "__tableflow.partition"
	HeaderOffset    = "__tableflow.offset"
)

// deadLetter is one record bound for the dead-letter topic.
type deadLetter struct {
	partition int32
	record    stream.DecodedRecord
	reason    string
}

// dlqState is the dead-letter producer as PropDLQ records it.
type dlqState struct {
	PID   int64            `json:"pid"`
	Epoch int16            `json:"epoch"`
	Seq   map[string]int32 `json:"seq,omitempty"`
}

// dlqWriter produces one table's dead letters.
type dlqWriter struct {
	log   Log
	topic string // the dead-letter topic
	src   string // the source topic
	table string // "<namespace>.<name>"
}

func parseDLQState(s string) (dlqState, error) {
	st := dlqState{PID: -1, Epoch: -1}
	if s == "" {
		return st, nil
	}
	if err := json.Unmarshal([]byte(s), &st); err != nil {
		return st, fmt.Errorf("tableflow: %s %q: %w", PropDLQ, s, err)
	}
	return st, nil
}

func (st dlqState) String() string {
	b, _ := json.Marshal(st)
	return string(b)
}

// errNewDLQProducer asks the caller to commit state (a new producer id)
// to the table before producing letters under it.
type errNewDLQProducer struct{ state string }

func (e *errNewDLQProducer) Error() string {
	return "tableflow: new dead-letter producer id to record first"
}

// write produces letters and returns the producer state the commit must
// carry (unchanged with no letters). An *errNewDLQProducer says a producer
// id must be committed first.
func (w *dlqWriter) write(ctx context.Context, tbl *table.Table, letters []deadLetter) (string, error) {
	cur := tbl.Metadata().Properties()[PropDLQ]
	st, err := parseDLQState(cur)
	if err != nil {
		return "", err
	}
	if len(letters) == 0 {
		return cur, nil
	}
	if st.PID < 0 {
		return "", w.newProducer(ctx)
	}
	info, ok := w.log.Topic(w.topic)
	if !ok || info.Partitions <= 0 {
		return "", fmt.Errorf("tableflow: dead-letter topic %q does not exist", w.topic)
	}
	byPart := map[int32][]kmsg.Record{}
	var ts = map[int32]int64{}
	for _, l := range letters {
		p := l.partition % info.Partitions
		byPart[p] = append(byPart[p], w.letter(l))
		ts[p] = max(ts[p], l.record.Timestamp)
	}
	next := maps.Clone(st.Seq)
	if next == nil {
		next = map[string]int32{}
	}
	var batches []stream.ProduceBatch
	for _, p := range slices.Sorted(maps.Keys(byPart)) {
		key := strconv.Itoa(int(p))
		recs := byPart[p]
		batches = append(batches, stream.ProduceBatch{Topic: w.topic, Partition: p,
			Records: stream.EncodeBatch(st.PID, st.Epoch, st.Seq[key], ts[p], recs)})
		next[key] = st.Seq[key] + int32(len(recs))
	}
	var errs []error
	for _, r := range w.log.Produce(ctx, batches) {
		if errors.Is(r.Err, stream.ErrUnknownProducerID) {
			return "", w.newProducer(ctx)
		}
		errs = append(errs, r.Err)
	}
	if err := errors.Join(errs...); err != nil {
		return "", fmt.Errorf("tableflow: writing dead letters to %s: %w", w.topic, err)
	}
	st.Seq = next
	return st.String(), nil
}

func (w *dlqWriter) newProducer(ctx context.Context) error {
	pid, epoch, err := w.log.InitProducerID(ctx, -1, -1)
	if err != nil {
		return fmt.Errorf("tableflow: dead-letter producer id: %w", err)
	}
	return &errNewDLQProducer{state: dlqState{PID: pid, Epoch: epoch}.String()}
}

// letter is the dead-letter record of l: the record as it was, plus the
// context headers.
func (w *dlqWriter) letter(l deadLetter) kmsg.Record {
	r := kmsg.Record{Key: l.record.Key, Value: l.record.Value}
	for _, h := range l.record.Headers {
		r.Headers = append(r.Headers, h)
	}
	r.Headers = append(r.Headers,
		kmsg.Header{Key: HeaderTable, Value: []byte(w.table)},
		kmsg.Header{Key: HeaderReason, Value: []byte(l.reason)},
		kmsg.Header{Key: HeaderTopic, Value: []byte(w.src)},
		kmsg.Header{Key: HeaderPartition, Value: []byte(strconv.Itoa(int(l.partition)))},
		kmsg.Header{Key: HeaderOffset, Value: []byte(strconv.FormatInt(l.record.Offset, 10))},
	)
	return r
}
