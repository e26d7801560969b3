package share

// Dead-letter topics of share groups (KIP-1191).
//
// A record a consumer rejects, or one past the group's delivery count
// limit, is archived; when the group names a dead-letter topic
// (errors.deadletterqueue.topic.name) it is also written there, once. Each
// dead letter is one record carrying the KIP's context headers
// (__dlq.errors.topic, .partition, .offset, .group, .delivery.count and
// .message); with errors.deadletterqueue.copy.record.enable it also
// carries the original key, value and headers, else key and value are
// null (the default). Its timestamp is the time it was written, as in
// Kafka, so the dead-letter topic's retention counts from then. A letter
// goes to the dead-letter partition numbered source partition modulo the
// topic's partition count.
//
// Which topics may be used, as in Kafka: the name must not start with
// "__", must start with the cluster's prefix (errors.deadletterqueue.
// topic.name.prefix, "dlq." by default), and an existing topic must have
// errors.deadletterqueue.group.enable=true. A missing topic is created
// (with that config) only when the cluster allows it (errors.
// deadletterqueue.auto.create.topics.enable); otherwise Write fails, the
// engine keeps the letters and tries again later: nothing is lost.
//
// Exactly once. Each share partition writes through its own idempotent
// producer id. Before a batch is produced, its letters, producer id, epoch
// and base sequence are stored in etcd (one key per share partition under
// <prefix>/share-dlq/, every change a compare-and-swap on its revision);
// only after the sequencer has placed the batch is it recorded as done.
// A Write that fails or crashes in between leaves the batch in flight, and
// the next Write sends it again with the same producer id and sequence:
// the sequencer drops the copy as a duplicate (DESIGN §5a rule 3). Letters
// recorded as done are skipped, so the engine calling again with letters
// already written (it crashed before forgetting them) writes nothing.
//
// A producer id the sequencer no longer knows (it expires after a day
// without batches) can vouch for nothing: then the dead-letter partition is
// read from where it ended when the batch was stored, looking for the
// batch's producer id and sequence. Found, the batch is done; not found, it
// never landed and is sent again under a fresh producer id. Since a
// forgotten producer id is never accepted again, no late copy can follow.

import (
	"cmp"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kmsg"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/runnel-dev/runnel/internal/config"
	"github.com/runnel-dev/runnel/internal/stream"
)

// The context headers of a dead-letter record (KIP-1191; Kafka's
// ShareGroupDLQRecordHelper). Values are UTF-8 text, numbers in decimal.
const (
	HeaderDLQTopic         = "__dlq.errors.topic"
	HeaderDLQPartition     = "__dlq.errors.partition"
	HeaderDLQOffset        = "__dlq.errors.offset"
	HeaderDLQGroup         = "__dlq.errors.group"
	HeaderDLQDeliveryCount = "__dlq.errors.delivery.count"
	HeaderDLQMessage       = "__dlq.errors.message"
	// DLQHeaderPrefix starts every context header. A copied record's own
	// headers with this prefix are left out, so the context is unambiguous.
	DLQHeaderPrefix = "__dlq.errors."
)

// ReasonDeliveryCountExceeded is ReasonDeliveryCount (deadletters.go),
// the name the dead-letter writer uses; ReasonRejected is declared there.
const ReasonDeliveryCountExceeded = ReasonDeliveryCount

// TopicConfigDLQEnable is the topic config that lets a topic be a share
// group's dead-letter topic (KIP-1191).
const TopicConfigDLQEnable = "errors.deadletterqueue.group.enable"

// DeadLetterMessage is the __dlq.errors.message of a reason: Kafka's text
// for its two causes, the reason itself for any other.
func DeadLetterMessage(reason string) string {
	switch reason {
	case ReasonRejected:
		return "Offset rejected by client."
	case ReasonDeliveryCountExceeded:
		return "Offset delivery count exceeded the threshold."
	}
	return reason
}

// Errors of the dead-letter writer. Both leave the letters with the
// engine, which tries again later.
var (
	// ErrDeadLetterTopicMissing: the group's dead-letter topic does not
	// exist and the cluster does not create it.
	ErrDeadLetterTopicMissing = errors.New("share: dead-letter topic does not exist and auto create is disabled")
	// ErrDeadLetterTopicRefused: the group's dead-letter topic breaks a
	// rule (internal name, missing prefix, not enabled for dead letters).
	ErrDeadLetterTopicRefused = errors.New("share: dead-letter topic refused")
)

// DeadLetterLog is what the dead-letter writer needs from the partitioned
// log; *stream.Engine satisfies it.
type DeadLetterLog interface {
	Topic(name string) (stream.TopicInfo, bool)
	TopicByID(id stream.TopicID) (stream.TopicInfo, bool)
	State(topic string, partition int32) (stream.PartitionState, error)
	Fetch(ctx context.Context, p stream.FetchPartition) (stream.FetchResult, error)
	Produce(ctx context.Context, batches []stream.ProduceBatch) []stream.ProduceResult
	InitProducerID(ctx context.Context, producerID int64, epoch int16) (int64, int16, error)
	CreateTopic(ctx context.Context, name string, partitions int32, configs map[string]string, validateOnly bool) (stream.TopicInfo, error)
}

// DeadLetterOptions configure a DeadLetters writer.
type DeadLetterOptions struct {
	Client *clientv3.Client
	// Prefix is the cluster's etcd key prefix (default "/runnel").
	Prefix string
	Log    DeadLetterLog
	// Rules are the cluster's dead-letter topic rules: the name prefix
	// (errors.deadletterqueue.topic.name.prefix; "" allows any name) and
	// whether a missing topic is created, with the broker's default
	// partition count (errors.deadletterqueue.auto.create.topics.enable).
	// config.DefaultDeadLetters() has Kafka's defaults.
	Rules config.DeadLetterConfig
	// MaxBatchLetters bounds the letters of one produced batch, so the
	// in-flight record in etcd stays small (default 500).
	MaxBatchLetters int
	Now             func() time.Time
	Logger          *slog.Logger
	Metrics         prometheus.Registerer

	// afterProduce, when set, runs after a batch was produced and before
	// it is recorded as done; an error stops Write there (tests use it to
	// crash in that window).
	afterProduce func() error
}

// DeadLetters writes share groups' dead letters to their dead-letter
// topics, exactly once; see the comment at the top of this file.
type DeadLetters struct {
	o       DeadLetterOptions
	written *prometheus.CounterVec
	// states names the share partitions' state keys (the engine's
	// layout), read to keep the letters still pending there.
	states *store
}

// NewDeadLetters returns a dead-letter writer.
func NewDeadLetters(o DeadLetterOptions) *DeadLetters {
	if o.Prefix == "" {
		o.Prefix = "/runnel"
	}
	if o.MaxBatchLetters <= 0 {
		o.MaxBatchLetters = 500
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	w := &DeadLetters{o: o, states: newStore(o.Client, o.Prefix, o.Logger), written: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "runnel_share_dead_letters_written_total",
		Help: "Dead letters written to share groups' dead-letter topics.",
	}, []string{"group"})}
	if o.Metrics != nil {
		if err := o.Metrics.Register(w.written); err != nil {
			var are prometheus.AlreadyRegisteredError
			if errors.As(err, &are) {
				w.written = are.ExistingCollector.(*prometheus.CounterVec)
			}
		}
	}
	return w
}

var (
	_ DeadLetterWriter = (*DeadLetters)(nil)
	_ DeadLetterLog    = (*stream.Engine)(nil)
)

// Forget deletes the dead-letter producer state of group's share
// partitions (of topic only, when not nil). Call it when their share
// state is deleted or reset: letters written before are then no longer
// recognised, so a record dead-lettered again after a reset is written
// again.
func (w *DeadLetters) Forget(ctx context.Context, group string, topic *stream.TopicID) error {
	p := fmt.Sprintf("%s/share-dlq/%s/", w.o.Prefix, url.PathEscape(group))
	if topic != nil {
		p += hex.EncodeToString(topic[:]) + "/"
	}
	if _, err := w.o.Client.Delete(ctx, p, clientv3.WithPrefix()); err != nil {
		return fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	return nil
}

// ForgetPartition is Forget for one share partition (its start offset was
// set, discarding its state).
func (w *DeadLetters) ForgetPartition(ctx context.Context, key Key) error {
	if _, err := w.o.Client.Delete(ctx, w.etcdKey(key)); err != nil {
		return fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	return nil
}

// dlqState is a share partition's dead-letter producer, stored as JSON.
type dlqState struct {
	// PID, Epoch and Seq are the producer id, its epoch and the next
	// sequence; PID -1 means none yet (or no longer usable). Topic and
	// Partition are where PID writes: a new destination takes a new id,
	// whose sequences start at 0.
	PID       int64  `json:"pid"`
	Epoch     int16  `json:"epoch"`
	Seq       int32  `json:"seq"`
	Topic     string `json:"topic,omitempty"`
	Partition int32  `json:"partition"`
	// InFlight is the batch being written, stored before it is produced.
	InFlight *dlqBatch `json:"inflight,omitempty"`
	// Gen counts the Write calls that wrote something; Done holds the
	// letters written by the last doneGens of them.
	Gen  int64     `json:"gen"`
	Done []doneRun `json:"done,omitempty"`
}

// dlqBatch is one batch of dead letters, enough to build it again: the
// same records but for the timestamp and copied payloads that have since
// left the log.
type dlqBatch struct {
	Topic     string       `json:"topic"`
	TopicID   string       `json:"topic_id"` // hex
	Partition int32        `json:"partition"`
	PID       int64        `json:"pid"`
	Epoch     int16        `json:"epoch"`
	Seq       int32        `json:"seq"`
	From      int64        `json:"from"` // the partition's high watermark when stored
	Copy      bool         `json:"copy"`
	Letters   []DeadLetter `json:"letters"`
}

// doneRun is a run of consecutive written letters with the same delivery
// count and reason.
type doneRun struct {
	First  int64  `json:"first"`
	Last   int64  `json:"last"`
	Count  int16  `json:"count"`
	Reason string `json:"reason"`
	Gen    int64  `json:"gen"`
}

// doneGens is how many writing calls' letters are remembered as done. The
// engine forgets letters as soon as Write returns nil, so a letter comes
// back only while calls fail; each call that starts a batch renews the
// letters it was given (touch).
const doneGens = 8

func (st *dlqState) isDone(l DeadLetter) bool {
	for _, r := range st.Done {
		if l.Offset >= r.First && l.Offset <= r.Last && l.DeliveryCount == r.Count && l.Reason == r.Reason {
			return true
		}
	}
	return false
}

// touch makes the runs holding any of letters current (Gen), so letters
// the engine still passes are remembered however many calls go by.
func (st *dlqState) touch(letters []DeadLetter) {
	for i := range st.Done {
		r := &st.Done[i]
		for _, l := range letters {
			if l.Offset >= r.First && l.Offset <= r.Last && l.DeliveryCount == r.Count && l.Reason == r.Reason {
				r.Gen = st.Gen
				break
			}
		}
	}
}

// markDone records letters as written and forgets the runs of calls more
// than doneGens ago, except those covering a letter in pending: the
// letters still pending in the share partition's state may be handed over
// again, however many calls go by first (by a broker that takes the
// partition over after another one died between writing them and removing
// them from the state).
func (st *dlqState) markDone(letters, pending []DeadLetter) {
	for _, l := range letters {
		if n := len(st.Done); n > 0 {
			r := &st.Done[n-1]
			if r.Gen == st.Gen && r.Last+1 == l.Offset && r.Count == l.DeliveryCount && r.Reason == l.Reason {
				r.Last = l.Offset
				continue
			}
		}
		st.Done = append(st.Done, doneRun{First: l.Offset, Last: l.Offset, Count: l.DeliveryCount, Reason: l.Reason, Gen: st.Gen})
	}
	st.Done = slices.DeleteFunc(st.Done, func(r doneRun) bool {
		if r.Gen > st.Gen-doneGens {
			return false
		}
		for _, l := range pending {
			if l.Offset >= r.First && l.Offset <= r.Last && l.DeliveryCount == r.Count && l.Reason == r.Reason {
				return false
			}
		}
		return true
	})
}

// stillPending returns the dead letters pending in key's share partition
// state (none when it has no state).
func (w *DeadLetters) stillPending(ctx context.Context, key Key) ([]DeadLetter, error) {
	resp, err := w.o.Client.Get(ctx, w.states.key(key))
	if err != nil {
		return nil, unavailable(err)
	}
	if len(resp.Kvs) == 0 {
		return nil, nil
	}
	st, err := DecodeState(resp.Kvs[0].Value)
	if err != nil {
		return nil, err
	}
	return st.Letters, nil
}

func (w *DeadLetters) etcdKey(key Key) string {
	return fmt.Sprintf("%s/share-dlq/%s/%s/%d", w.o.Prefix, url.PathEscape(key.Group), hex.EncodeToString(key.Topic[:]), key.Partition)
}

// load reads a share partition's state and its revision (0 when absent).
func (w *DeadLetters) load(ctx context.Context, k string) (dlqState, int64, error) {
	resp, err := w.o.Client.Get(ctx, k)
	if err != nil {
		return dlqState{}, 0, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	if len(resp.Kvs) == 0 {
		return dlqState{PID: -1}, 0, nil
	}
	var st dlqState
	if err := json.Unmarshal(resp.Kvs[0].Value, &st); err != nil {
		return dlqState{}, 0, fmt.Errorf("share: dead-letter state %s: %v", k, err)
	}
	return st, resp.Kvs[0].ModRevision, nil
}

// store puts st if the key is still at rev and returns its new revision;
// 0 when another writer changed it first.
func (w *DeadLetters) store(ctx context.Context, k string, rev int64, st dlqState) (int64, error) {
	val, err := json.Marshal(st)
	if err != nil {
		return 0, err
	}
	resp, err := w.o.Client.Txn(ctx).
		If(clientv3.Compare(clientv3.ModRevision(k), "=", rev)).
		Then(clientv3.OpPut(k, string(val))).
		Commit()
	if err != nil {
		return 0, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	if !resp.Succeeded {
		return 0, nil
	}
	return resp.Header.Revision, nil
}

// advance stores next over st (at rev) and returns the state to go on
// from: next when the store won, else what another writer stored.
func (w *DeadLetters) advance(ctx context.Context, k string, rev int64, next dlqState) (dlqState, int64, bool, error) {
	newRev, err := w.store(ctx, k, rev, next)
	if err != nil {
		return dlqState{}, 0, false, err
	}
	if newRev != 0 {
		return next, newRev, true, nil
	}
	st, rev, err := w.load(ctx, k)
	return st, rev, false, err
}

// Write writes letters of one share partition to the group's dead-letter
// topic, each exactly once however often it is called with them.
func (w *DeadLetters) Write(ctx context.Context, key Key, cfg config.ShareGroup, letters []DeadLetter) error {
	letters = slices.Clone(letters)
	slices.SortFunc(letters, func(a, b DeadLetter) int {
		return cmp.Or(cmp.Compare(a.Offset, b.Offset), cmp.Compare(a.DeliveryCount, b.DeliveryCount), strings.Compare(a.Reason, b.Reason))
	})
	letters = slices.Compact(letters)
	k := w.etcdKey(key)
	st, rev, err := w.load(ctx, k)
	if err != nil {
		return err
	}
	started := false // this call has bumped Gen
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		if st.InFlight != nil {
			next, err := w.settle(ctx, key, st)
			if err != nil {
				return err
			}
			if st, rev, _, err = w.advance(ctx, k, rev, next); err != nil {
				return err
			}
			continue
		}
		var pending []DeadLetter
		for _, l := range letters {
			if !st.isDone(l) {
				pending = append(pending, l)
			}
		}
		if len(pending) == 0 || cfg.DLQTopic == "" {
			// All written; or the group no longer has a dead-letter
			// topic, and its letters are only archived.
			return nil
		}
		next, err := w.begin(ctx, key, cfg, st, pending)
		if err != nil {
			return err
		}
		if !started {
			next.Gen++
			next.touch(letters)
			started = true
		}
		var won bool
		if st, rev, won, err = w.advance(ctx, k, rev, next); err != nil {
			return err
		}
		if !won {
			started = false
		}
	}
}

// begin plans the next batch of pending letters: the destination, the
// producer id, and as many letters as fit in one batch.
func (w *DeadLetters) begin(ctx context.Context, key Key, cfg config.ShareGroup, st dlqState, pending []DeadLetter) (dlqState, error) {
	topic, err := w.dlqTopic(ctx, key.Group, cfg.DLQTopic)
	if err != nil {
		return st, err
	}
	partition := key.Partition % topic.Partitions
	if st.PID < 0 || st.Topic != topic.Name || st.Partition != partition {
		pid, epoch, err := w.o.Log.InitProducerID(ctx, -1, 0)
		if err != nil {
			return st, fmt.Errorf("share: dead-letter producer id: %w", err)
		}
		st.PID, st.Epoch, st.Seq, st.Topic, st.Partition = pid, epoch, 0, topic.Name, partition
	}
	ps, err := w.o.Log.State(topic.Name, partition)
	if err != nil {
		return st, err
	}
	b := &dlqBatch{
		Topic: topic.Name, TopicID: hex.EncodeToString(topic.ID[:]), Partition: partition,
		PID: st.PID, Epoch: st.Epoch, Seq: st.Seq,
		From: ps.HighWatermark, Copy: cfg.DLQCopyRecord,
		Letters: pending[:min(len(pending), w.o.MaxBatchLetters)],
	}
	recs, err := w.records(ctx, key, b, maxMessageBytes(topic), false)
	if err != nil {
		return st, err
	}
	b.Letters = slices.Clone(b.Letters[:len(recs)])
	st.InFlight = b
	return st, nil
}

// dlqTopic checks the group's dead-letter topic against the rules, in
// Kafka's order, creating it when missing and allowed.
func (w *DeadLetters) dlqTopic(ctx context.Context, group, name string) (stream.TopicInfo, error) {
	if strings.HasPrefix(name, "__") {
		return stream.TopicInfo{}, fmt.Errorf("%w: share group %q: topic %q: a dead-letter topic name cannot start with __", ErrDeadLetterTopicRefused, group, name)
	}
	t, exists := w.o.Log.Topic(name)
	if exists && !strings.EqualFold(strings.TrimSpace(t.Configs[TopicConfigDLQEnable]), "true") {
		return stream.TopicInfo{}, fmt.Errorf("%w: share group %q: topic %q does not have %s=true", ErrDeadLetterTopicRefused, group, name, TopicConfigDLQEnable)
	}
	if prefix := w.o.Rules.TopicPrefix; !strings.HasPrefix(name, prefix) {
		return stream.TopicInfo{}, fmt.Errorf("%w: share group %q: topic %q does not start with the dead-letter topic prefix %q", ErrDeadLetterTopicRefused, group, name, prefix)
	}
	if exists {
		return t, nil
	}
	if !w.o.Rules.AutoCreateTopics {
		w.o.Logger.Warn("dead-letter topic does not exist and auto create is disabled; the dead letters wait",
			slog.String("group", group), slog.String("topic", name))
		return stream.TopicInfo{}, fmt.Errorf("%w: share group %q: topic %q", ErrDeadLetterTopicMissing, group, name)
	}
	t, err := w.o.Log.CreateTopic(ctx, name, -1, map[string]string{TopicConfigDLQEnable: "true"}, false)
	if errors.Is(err, stream.ErrTopicExists) {
		// Created meanwhile (by another broker): check it again.
		return w.dlqTopic(ctx, group, name)
	}
	if err != nil {
		return stream.TopicInfo{}, fmt.Errorf("share: creating dead-letter topic %q: %w", name, err)
	}
	w.o.Logger.Info("created dead-letter topic", slog.String("group", group), slog.String("topic", name))
	return t, nil
}

// maxMessageBytes is the topic's max.message.bytes.
func maxMessageBytes(t stream.TopicInfo) int {
	if v, err := strconv.Atoi(strings.TrimSpace(t.Configs["max.message.bytes"])); err == nil && v > 0 {
		return v
	}
	d, _ := config.LookupTopic("max.message.bytes")
	v, _ := strconv.Atoi(d.Default)
	return v
}

// settle sends the in-flight batch and returns the state to store after
// it: the batch done, or dropped to be planned again.
func (w *DeadLetters) settle(ctx context.Context, key Key, st dlqState) (dlqState, error) {
	b := st.InFlight
	t, ok := w.o.Log.Topic(b.Topic)
	if !ok || hex.EncodeToString(t.ID[:]) != b.TopicID || b.Partition >= t.Partitions {
		// The topic was deleted (and any copy with it): plan the letters
		// again, wherever the group's configuration now says.
		w.o.Logger.Warn("dead-letter topic deleted while a batch was in flight; writing it again",
			slog.String("group", key.Group), slog.String("topic", b.Topic))
		st.InFlight, st.PID = nil, -1
		return st, nil
	}
	recs, err := w.records(ctx, key, b, maxMessageBytes(t), true)
	if err != nil {
		return st, err
	}
	// Stamped now, not when planned: a retry long after must still pass the
	// topic's timestamp bounds. The sequencer recognises a copy by its
	// producer id and sequences alone.
	data := stream.EncodeBatch(b.PID, b.Epoch, b.Seq, w.o.Now().UnixMilli(), recs)
	res := w.o.Log.Produce(ctx, []stream.ProduceBatch{{Topic: b.Topic, Partition: b.Partition, Records: data}})[0]
	switch {
	case res.Err == nil:
		if w.o.afterProduce != nil {
			if err := w.o.afterProduce(); err != nil {
				return st, err
			}
		}
		st.Seq = seqAdd(b.Seq, int32(len(b.Letters)))
	case errors.Is(res.Err, stream.ErrUnknownProducerID), errors.Is(res.Err, stream.ErrOutOfOrderSequence),
		errors.Is(res.Err, stream.ErrInvalidProducerEpoch):
		// The sequencer no longer vouches for this producer id: look in
		// the log for the batch itself.
		found, err := stream.FindBatch(ctx, w.o.Log, t, b.Partition, b.From, b.PID, b.Epoch, b.Seq)
		if err != nil {
			return st, err
		}
		w.o.Logger.Info("dead-letter producer id expired; checked the log for the in-flight batch",
			slog.String("group", key.Group), slog.String("topic", b.Topic), slog.Bool("found", found), slog.Any("err", res.Err))
		st.PID = -1
		if !found {
			st.InFlight = nil
			return st, nil
		}
	default:
		return st, fmt.Errorf("share: writing %d dead letters of group %q to %s/%d: %w", len(b.Letters), key.Group, b.Topic, b.Partition, res.Err)
	}
	pending, err := w.stillPending(ctx, key)
	if err != nil {
		return st, err
	}
	st.markDone(b.Letters, pending)
	st.InFlight = nil
	w.written.WithLabelValues(key.Group).Add(float64(len(b.Letters)))
	return st, nil
}

// records builds the dead-letter records of b, within limit bytes: a
// record whose copied payload would take the batch past it goes without
// the payload when it is the first (or when all must go: keepAll, as for
// a batch already planned), else it and the rest are left for the next
// batch. The same letters and log give the same records.
func (w *DeadLetters) records(ctx context.Context, key Key, b *dlqBatch, limit int, keepAll bool) ([]kmsg.Record, error) {
	src := sourceTopicName(w.o.Log, key.Topic)
	part := strconv.FormatInt(int64(key.Partition), 10)
	var orig originals
	size := 61 // the batch header
	out := make([]kmsg.Record, 0, len(b.Letters))
	for _, l := range b.Letters {
		r := kmsg.Record{Headers: []kmsg.Header{
			{Key: HeaderDLQTopic, Value: []byte(src)},
			{Key: HeaderDLQPartition, Value: []byte(part)},
			{Key: HeaderDLQOffset, Value: []byte(strconv.FormatInt(l.Offset, 10))},
			{Key: HeaderDLQGroup, Value: []byte(key.Group)},
			{Key: HeaderDLQDeliveryCount, Value: []byte(strconv.Itoa(int(l.DeliveryCount)))},
			{Key: HeaderDLQMessage, Value: []byte(DeadLetterMessage(l.Reason))},
		}}
		meta := r
		if b.Copy {
			rec, ok, err := orig.get(ctx, w.o.Log, key, l.Offset)
			if err != nil {
				return nil, err
			}
			if ok {
				r.Key, r.Value = rec.Key, rec.Value
				for _, h := range rec.Headers {
					if !strings.HasPrefix(h.Key, DLQHeaderPrefix) {
						r.Headers = append(r.Headers, h)
					}
				}
			}
		}
		n := recordSize(r)
		if size+n > limit {
			if len(out) > 0 && !keepAll {
				break
			}
			r, n = meta, recordSize(meta)
		}
		size += n
		out = append(out, r)
	}
	return out, nil
}

func recordSize(r kmsg.Record) int {
	r.Length = 0
	return len(r.AppendTo(nil)) + 4 // a varint length of up to 5 bytes
}

// sourceTopicName is the source topic's name, or its id (as Kafka prints
// topic ids) when it is gone.
func sourceTopicName(log DeadLetterLog, id stream.TopicID) string {
	if t, ok := log.TopicByID(id); ok {
		return t.Name
	}
	return base64.RawURLEncoding.EncodeToString(id[:])
}

// originals reads source records for copying, in ascending offsets,
// keeping the last fetch's batches.
type originals struct {
	batches []stream.DecodedBatch
}

// get returns the record at offset; ok is false when the log no longer has
// it (below the log start, compacted away).
func (o *originals) get(ctx context.Context, log DeadLetterLog, key Key, offset int64) (stream.DecodedRecord, bool, error) {
	if r, ok := o.find(offset); ok {
		return r, true, nil
	}
	res, err := log.Fetch(ctx, stream.FetchPartition{TopicID: key.Topic, Partition: key.Partition, Offset: offset, MaxBytes: 1 << 20})
	if errors.Is(err, stream.ErrOffsetOutOfRange) || errors.Is(err, stream.ErrUnknownTopicOrPartition) || errors.Is(err, stream.ErrUnknownTopicID) {
		return stream.DecodedRecord{}, false, nil
	}
	if err != nil {
		return stream.DecodedRecord{}, false, fmt.Errorf("share: reading the original of a dead letter at offset %d: %w", offset, err)
	}
	if o.batches, err = stream.DecodeBatches(res.Records); err != nil {
		return stream.DecodedRecord{}, false, err
	}
	r, ok := o.find(offset)
	return r, ok, nil
}

func (o *originals) find(offset int64) (stream.DecodedRecord, bool) {
	for _, b := range o.batches {
		if offset < b.BaseOffset || offset > b.LastOffset || b.Control {
			continue
		}
		for _, r := range b.Records {
			if r.Offset == offset {
				return r, true
			}
		}
	}
	return stream.DecodedRecord{}, false
}

// seqAdd adds to a producer sequence, wrapping at MaxInt32 as Kafka does.
func seqAdd(seq, n int32) int32 {
	return int32((int64(seq) + int64(n)) % (1 << 31))
}
