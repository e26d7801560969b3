package system

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"net"
	"os"
	"sort"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// soak reports whether the long versions of the tests were asked for.
func soak() bool { return os.Getenv("RUNNEL_SOAK") == "1" }

// newClient returns a franz-go client seeded only with seeds, closed when the
// test ends.
func newClient(t testing.TB, seeds []string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	all := append([]kgo.Opt{
		kgo.SeedBrokers(seeds...),
		kgo.ClientID("runnel-system-test"),
		kgo.MetadataMinAge(100 * time.Millisecond),
		kgo.RetryBackoffFn(func(int) time.Duration { return 100 * time.Millisecond }),
	}, opts...)
	cl, err := kgo.NewClient(all...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// createTopic creates a topic through the Kafka admin API and fails the test
// unless the broker accepted it.
func createTopic(ctx context.Context, t testing.TB, cl *kgo.Client, topic string, partitions int32, configs map[string]*string) {
	t.Helper()
	res, err := kadm.NewClient(cl).CreateTopic(ctx, partitions, 1, configs, topic)
	if err != nil {
		t.Fatalf("create topic %s: %v", topic, err)
	}
	if res.Err != nil {
		t.Fatalf("create topic %s: %v (%s)", topic, res.Err, res.ErrMessage)
	}
}

// endOffsets returns the high watermark of every partition of topic.
func endOffsets(ctx context.Context, t testing.TB, cl *kgo.Client, topic string) map[int32]int64 {
	t.Helper()
	lo, err := kadm.NewClient(cl).ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatalf("list end offsets of %s: %v", topic, err)
	}
	if err := lo.Error(); err != nil {
		t.Fatalf("list end offsets of %s: %v", topic, err)
	}
	out := map[int32]int64{}
	lo.Each(func(o kadm.ListedOffset) { out[o.Partition] = o.Offset })
	if len(out) == 0 {
		t.Fatalf("list end offsets of %s: no partitions", topic)
	}
	return out
}

// consume reads every partition of topic from offset 0 up to ends (exclusive)
// and calls fn for each record in partition order. It fails the test if the
// records do not all arrive before ctx ends.
func consume(ctx context.Context, t testing.TB, seeds []string, topic string, ends map[int32]int64, fn func(*kgo.Record)) {
	t.Helper()
	start := map[int32]kgo.Offset{}
	left := 0
	for p, end := range ends {
		if end > 0 {
			start[p] = kgo.NewOffset().At(0)
			left++
		}
	}
	if left == 0 {
		return
	}
	cl := newClient(t, seeds,
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: start}),
		kgo.FetchMaxWait(500*time.Millisecond),
	)
	defer cl.Close()
	next := map[int32]int64{}
	var lastErr error
	for left > 0 {
		if ctx.Err() != nil {
			t.Fatalf("consume %s: %v; next offsets %v, want ends %v; last fetch error: %v", topic, ctx.Err(), next, ends, lastErr)
		}
		fs := cl.PollFetches(ctx)
		fs.EachError(func(_ string, _ int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
				lastErr = err
			}
		})
		fs.EachRecord(func(r *kgo.Record) {
			end := ends[r.Partition]
			if r.Offset >= end {
				return // produced after ends was taken
			}
			fn(r)
			next[r.Partition] = r.Offset + 1
			if r.Offset == end-1 {
				left--
			}
		})
	}
}

// stored is one consumed record, reduced to what the tests compare.
type stored struct {
	Offset int64
	Key    string
	Value  string
}

// consumeAll is consume collecting the records per partition.
func consumeAll(ctx context.Context, t testing.TB, seeds []string, topic string, ends map[int32]int64) map[int32][]stored {
	t.Helper()
	out := map[int32][]stored{}
	consume(ctx, t, seeds, topic, ends, func(r *kgo.Record) {
		out[r.Partition] = append(out[r.Partition], stored{Offset: r.Offset, Key: string(r.Key), Value: string(r.Value)})
	})
	return out
}

// checkDense fails the test unless recs holds offsets 0..end-1 in order for
// every partition.
func checkDense(t testing.TB, recs map[int32][]stored, ends map[int32]int64) {
	t.Helper()
	for p, end := range ends {
		got := recs[p]
		if int64(len(got)) != end {
			t.Errorf("partition %d: %d records, high watermark %d", p, len(got), end)
		}
		for i, r := range got {
			if r.Offset != int64(i) {
				t.Errorf("partition %d: record %d has offset %d (offsets must be dense from 0)", p, i, r.Offset)
				break
			}
		}
	}
}

// produceSync produces values to topic (partition chosen by the client, or
// fixed when partition >= 0) and returns the acknowledged records.
func produceSync(ctx context.Context, t testing.TB, cl *kgo.Client, topic string, partition int32, values []string) []*kgo.Record {
	t.Helper()
	rs := make([]*kgo.Record, len(values))
	for i, v := range values {
		rs[i] = &kgo.Record{Topic: topic, Value: []byte(v)}
		if partition >= 0 {
			rs[i].Partition = partition
		}
	}
	if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
		t.Fatalf("produce to %s: %v", topic, err)
	}
	return rs
}

// ---- raw Kafka over TCP ----

// rawConn is one Kafka connection driven by hand: requests are encoded with
// kmsg and framed by the test, so the test also controls malformed bytes.
type rawConn struct {
	t    testing.TB
	c    net.Conn
	corr int32
	f    *kmsg.RequestFormatter
}

func dialRaw(t testing.TB, addr string) *rawConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	return &rawConn{t: t, c: c, f: kmsg.NewRequestFormatter(kmsg.FormatterClientID("runnel-raw"))}
}

func (r *rawConn) write(b []byte) error {
	r.c.SetWriteDeadline(time.Now().Add(10 * time.Second))
	_, err := r.c.Write(b)
	return err
}

// readFrame reads one size-prefixed response frame.
func (r *rawConn) readFrame(d time.Duration) ([]byte, error) {
	r.c.SetReadDeadline(time.Now().Add(d))
	var size [4]byte
	if _, err := io.ReadFull(r.c, size[:]); err != nil {
		return nil, err
	}
	n := int32(binary.BigEndian.Uint32(size[:]))
	if n < 4 || n > 256<<20 {
		return nil, fmt.Errorf("response frame size %d", n)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r.c, b); err != nil {
		return nil, err
	}
	return b, nil
}

// request sends req at the version set on it and decodes the answer.
func (r *rawConn) request(req kmsg.Request) (kmsg.Response, error) {
	return r.requestWithin(req, 30*time.Second)
}

// requestWithin is request with a read deadline of d.
func (r *rawConn) requestWithin(req kmsg.Request, d time.Duration) (kmsg.Response, error) {
	r.corr++
	corr := r.corr
	if err := r.write(r.f.AppendRequest(nil, req, corr)); err != nil {
		return nil, err
	}
	frame, err := r.readFrame(d)
	if err != nil {
		return nil, err
	}
	return decodeResponse(req, corr, frame)
}

// decodeResponse checks the correlation id, skips the flexible header's
// tagged fields (never present on ApiVersions responses) and decodes the body.
func decodeResponse(req kmsg.Request, corr int32, frame []byte) (kmsg.Response, error) {
	if len(frame) < 4 {
		return nil, fmt.Errorf("short response frame (%d bytes)", len(frame))
	}
	if got := int32(binary.BigEndian.Uint32(frame)); got != corr {
		return nil, fmt.Errorf("correlation id %d, want %d", got, corr)
	}
	body := frame[4:]
	if req.IsFlexible() && req.Key() != int16(kmsg.ApiVersions) {
		var err error
		if body, err = skipTags(body); err != nil {
			return nil, err
		}
	}
	resp := req.ResponseKind()
	resp.SetVersion(req.GetVersion())
	if err := resp.ReadFrom(body); err != nil {
		return nil, fmt.Errorf("decode %s v%d response: %w", kmsg.NameForKey(req.Key()), req.GetVersion(), err)
	}
	return resp, nil
}

func skipTags(b []byte) ([]byte, error) {
	n, k := binary.Uvarint(b)
	if k <= 0 {
		return nil, errors.New("bad tagged field count")
	}
	b = b[k:]
	for i := uint64(0); i < n; i++ {
		for j := 0; j < 2; j++ { // tag, then size
			v, k := binary.Uvarint(b)
			if k <= 0 {
				return nil, errors.New("bad tagged field")
			}
			b = b[k:]
			if j == 1 {
				if uint64(len(b)) < v {
					return nil, errors.New("short tagged field")
				}
				b = b[v:]
			}
		}
	}
	return b, nil
}

// expectClosed fails the test unless the broker closes the connection (EOF
// or reset) without sending a response frame.
func (r *rawConn) expectClosed() {
	r.t.Helper()
	r.c.SetReadDeadline(time.Now().Add(15 * time.Second))
	buf := make([]byte, 512)
	n, err := r.c.Read(buf)
	if err == nil {
		r.t.Fatalf("broker answered %d bytes (%x) instead of closing the connection", n, buf[:n])
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		r.t.Fatalf("broker kept the connection open: %v", err)
	}
}

// ---- record batches ----

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// buildBatch encodes an uncompressed, non-idempotent magic-2 batch holding
// one record per value, with a correct CRC.
func buildBatch(values [][]byte) []byte {
	now := time.Now().UnixMilli()
	var recs []byte
	for i, v := range values {
		r := kmsg.Record{OffsetDelta: int32(i), Value: v, Key: []byte(fmt.Sprintf("k%d", i))}
		enc := r.AppendTo(nil) // Length 0 encodes as one byte
		recs = binary.AppendVarint(recs, int64(len(enc)-1))
		recs = append(recs, enc[1:]...)
	}
	b := kmsg.RecordBatch{
		PartitionLeaderEpoch: -1,
		Magic:                2,
		LastOffsetDelta:      int32(len(values) - 1),
		FirstTimestamp:       now,
		MaxTimestamp:         now,
		ProducerID:           -1,
		ProducerEpoch:        -1,
		FirstSequence:        -1,
		NumRecords:           int32(len(values)),
		Records:              recs,
	}
	out := b.AppendTo(nil)
	binary.BigEndian.PutUint32(out[8:12], uint32(len(out)-12))
	binary.BigEndian.PutUint32(out[17:21], crc32.Checksum(out[21:], castagnoli))
	return out
}

// fetchedRecord is one record parsed out of a raw fetch response.
type fetchedRecord struct {
	Offset int64
	Key    []byte
	Value  []byte
}

// parseBatches decodes the uncompressed batches of a fetch response's
// record set; a trailing partial batch is ignored, as Kafka clients do.
func parseBatches(raw []byte) ([]fetchedRecord, error) {
	var out []fetchedRecord
	for len(raw) >= 12 {
		n := int(int32(binary.BigEndian.Uint32(raw[8:12])))
		if n < 49 || len(raw) < 12+n {
			break
		}
		var b kmsg.RecordBatch
		if err := b.ReadFrom(raw[:12+n]); err != nil {
			return nil, err
		}
		raw = raw[12+n:]
		if b.Magic != 2 {
			return nil, fmt.Errorf("batch magic %d", b.Magic)
		}
		if want := crc32.Checksum(func() []byte { e := b.AppendTo(nil); return e[21:] }(), castagnoli); uint32(b.CRC) != want {
			return nil, fmt.Errorf("batch at %d: CRC %08x, computed %08x", b.FirstOffset, uint32(b.CRC), want)
		}
		if b.Attributes&0x07 != 0 {
			return nil, fmt.Errorf("batch at %d is compressed (attributes %x)", b.FirstOffset, b.Attributes)
		}
		if b.Attributes&0x20 != 0 {
			continue // control batch
		}
		recs := b.Records
		for i := int32(0); i < b.NumRecords; i++ {
			l, k := binary.Varint(recs)
			if k <= 0 || int64(len(recs)-k) < l {
				return nil, fmt.Errorf("batch at %d: bad record %d", b.FirstOffset, i)
			}
			var r kmsg.Record
			if err := r.ReadFrom(recs[:k+int(l)]); err != nil {
				return nil, err
			}
			recs = recs[k+int(l):]
			out = append(out, fetchedRecord{Offset: b.FirstOffset + int64(r.OffsetDelta), Key: r.Key, Value: r.Value})
		}
	}
	return out, nil
}

// rawProduce sends one batch to topic/partition with acks=all and returns
// the partition's error code and base offset.
func rawProduce(t testing.TB, rc *rawConn, topic string, partition int32, batch []byte) (int16, int64) {
	t.Helper()
	req := kmsg.NewPtrProduceRequest()
	req.Version = 8
	req.Acks = -1
	req.TimeoutMillis = 30000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Partition = partition
	rp.Records = batch
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := rc.request(req)
	if err != nil {
		t.Fatalf("produce to %s/%d: %v", topic, partition, err)
	}
	pr := resp.(*kmsg.ProduceResponse)
	if len(pr.Topics) != 1 || len(pr.Topics[0].Partitions) != 1 {
		t.Fatalf("produce response has %d topics, want 1 with 1 partition: %+v", len(pr.Topics), pr.Topics)
	}
	p := pr.Topics[0].Partitions[0]
	return p.ErrorCode, p.BaseOffset
}

// rawFetchAll fetches topic/partition from offset from through rc until the
// records up to want (exclusive) arrived; out[i] is the record at from+i.
func rawFetchAll(t testing.TB, rc *rawConn, topic string, partition int32, from, want int64) []fetchedRecord {
	t.Helper()
	var out []fetchedRecord
	deadline := time.Now().Add(60 * time.Second)
	next := func() int64 { return from + int64(len(out)) }
	for next() < want {
		if time.Now().After(deadline) {
			t.Fatalf("fetch %s/%d: got offsets %d..%d, want up to %d", topic, partition, from, next(), want)
		}
		req := kmsg.NewPtrFetchRequest()
		req.Version = 11
		req.ReplicaID = -1
		req.MaxWaitMillis = 2000
		req.MinBytes = 1
		req.MaxBytes = 16 << 20
		ft := kmsg.NewFetchRequestTopic()
		ft.Topic = topic
		fp := kmsg.NewFetchRequestTopicPartition()
		fp.Partition = partition
		fp.FetchOffset = next()
		fp.PartitionMaxBytes = 8 << 20
		fp.CurrentLeaderEpoch = -1
		ft.Partitions = append(ft.Partitions, fp)
		req.Topics = append(req.Topics, ft)
		resp, err := rc.request(req)
		if err != nil {
			t.Fatalf("fetch %s/%d: %v", topic, partition, err)
		}
		fr := resp.(*kmsg.FetchResponse)
		if fr.ErrorCode != 0 {
			t.Fatalf("fetch %s/%d: error code %d", topic, partition, fr.ErrorCode)
		}
		for _, rt := range fr.Topics {
			for _, rp := range rt.Partitions {
				if rp.ErrorCode != 0 {
					t.Fatalf("fetch %s/%d: partition error code %d", topic, partition, rp.ErrorCode)
				}
				recs, err := parseBatches(rp.RecordBatches)
				if err != nil {
					t.Fatalf("fetch %s/%d: %v", topic, partition, err)
				}
				for _, r := range recs {
					if r.Offset == next() && r.Offset < want {
						out = append(out, r)
					} else if r.Offset > next() {
						t.Fatalf("fetch %s/%d: offset %d after %d (gap)", topic, partition, r.Offset, next()-1)
					}
				}
			}
		}
	}
	return out
}

// sortedPartitions returns the keys of m in order.
func sortedPartitions[V any](m map[int32]V) []int32 {
	ps := make([]int32, 0, len(m))
	for p := range m {
		ps = append(ps, p)
	}
	sort.Slice(ps, func(i, j int) bool { return ps[i] < ps[j] })
	return ps
}

// equalStored reports the first difference between two snapshots.
func diffStored(want, got map[int32][]stored) string {
	for _, p := range sortedPartitions(want) {
		w, g := want[p], got[p]
		if len(w) != len(g) {
			return fmt.Sprintf("partition %d: %d records, want %d", p, len(g), len(w))
		}
		for i := range w {
			if w[i] != g[i] {
				return fmt.Sprintf("partition %d record %d: %+v, want %+v", p, i, g[i], w[i])
			}
		}
	}
	for p := range got {
		if _, ok := want[p]; !ok && len(got[p]) > 0 {
			return fmt.Sprintf("unexpected partition %d", p)
		}
	}
	return ""
}

// rawListOffsets asks one broker for the offset at timestamp (-1 latest,
// -2 earliest) of topic/partition.
func rawListOffsets(t testing.TB, rc *rawConn, topic string, partition int32, timestamp int64) int64 {
	t.Helper()
	code, off, err := rawListOffsetsOnce(rc, topic, partition, timestamp, 30*time.Second)
	if err != nil {
		t.Fatalf("list offsets %s/%d: %v", topic, partition, err)
	}
	if code != 0 {
		t.Fatalf("list offsets %s/%d: error code %d", topic, partition, code)
	}
	return off
}

// rawListOffsetsOnce asks for the offset at timestamp (-1 latest) of
// topic/partition and returns the partition's error code and offset.
func rawListOffsetsOnce(rc *rawConn, topic string, partition int32, timestamp int64, d time.Duration) (int16, int64, error) {
	req := kmsg.NewPtrListOffsetsRequest()
	req.Version = 4
	req.ReplicaID = -1
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewListOffsetsRequestTopicPartition()
	rp.Partition = partition
	rp.Timestamp = timestamp
	rp.CurrentLeaderEpoch = -1
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := rc.requestWithin(req, d)
	if err != nil {
		return 0, 0, err
	}
	lr := resp.(*kmsg.ListOffsetsResponse)
	if len(lr.Topics) != 1 || len(lr.Topics[0].Partitions) != 1 {
		return 0, 0, fmt.Errorf("%w: list offsets response has %d topics", errBadAnswer, len(lr.Topics))
	}
	p := lr.Topics[0].Partitions[0]
	return p.ErrorCode, p.Offset, nil
}
