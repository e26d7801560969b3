package stream

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/runnel-dev/runnel/internal/config"
)

// Fuzz targets for the sequencer's inputs. Run one with, for example,
//
//	go test ./internal/stream -run '^$' -fuzz '^FuzzApply$' -fuzztime 60s
//
// A plain `go test` runs only the seed corpora below.

// seedEntries are well-formed entries of every kind, against the topics
// that fuzzPrelude creates.
func seedEntries() []*entry {
	a, b := scriptTopicID(1), scriptTopicID(2)
	return []*entry{
		{Kind: kindIntake, Broker: 1, Time: 2000, Object: "intake/x", ObjectTime: 2000, Batches: []batchDesc{
			{Topic: a, Partition: 0, Pos: 0, Len: 100, Count: 3, MaxTS: 1999, ProducerID: 2, Epoch: 0, BaseSeq: 3},
			{Topic: a, Partition: 1, Pos: 100, Len: 50, Count: 1, MaxTS: 1999, ProducerID: -1, Epoch: -1, BaseSeq: -1},
			{Topic: b, Partition: 0, Pos: 150, Len: 10, Count: 2, MaxTS: 1999, ProducerID: 3, Epoch: 0, BaseSeq: 0, Attrs: 0x10},
		}},
		{Kind: kindIntake, Time: 2000, Object: "intake/dup", ObjectTime: 1000, Batches: []batchDesc{
			{Topic: a, Partition: 0, Pos: 0, Len: 100, Count: 3, ProducerID: 2, Epoch: 0, BaseSeq: 0},
		}},
		{Kind: kindCreateTopic, Time: 2100, Topic: scriptTopicID(3), Name: "c", Partitions: 2, Configs: map[string]string{"cleanup.policy": "compact"}},
		{Kind: kindDeleteTopic, Time: 2100, Topic: b},
		{Kind: kindCreatePartitions, Time: 2100, Topic: a, Partitions: 5},
		{Kind: kindAlterConfigs, Time: 2100, Topic: a, Configs: map[string]string{"retention.ms": "5"}, Deletes: []string{"segment.ms"}},
		{Kind: kindAlterConfigs, Time: 2100, Topic: a, Replace: true},
		{Kind: kindInitProducer, Time: 2100, ProducerID: -1},
		{Kind: kindInitProducer, Time: 2100, ProducerID: 2, Epoch: 0},
		{Kind: kindTrim, Time: 2100, Topic: a, Partition: 0, Offset: 2},
		{Kind: kindTrim, Time: 2100, Topic: a, Partition: 0, Offset: -1, Retention: true},
		{Kind: kindCollect, Time: 2100, Objects: []string{"intake/gone"}},
		{Kind: kindAlterConfigs, Time: 1 << 40, Topic: a},
	}
}

// fuzzPrelude builds the state every FuzzApply input starts from: topics
// a (3 partitions) and b, producers 2 and 3, intake extents on a/0, a/1
// and b/0, a segment on a/1 and garbage. It returns the state, the next
// revision and plans that are valid against it.
func fuzzPrelude(t testing.TB) (*state, int64, []*entry) {
	t.Helper()
	a, b := scriptTopicID(1), scriptTopicID(2)
	st := newState()
	rev := int64(0)
	apply := func(e *entry) applyResult {
		rev++
		res := st.apply(rev, e)
		if res.Err != nil {
			t.Fatalf("prelude entry %d: %v", rev, res.Err)
		}
		for _, br := range res.Batches {
			if br.Err != nil {
				t.Fatalf("prelude entry %d: %v", rev, br.Err)
			}
		}
		return res
	}
	apply(&entry{Kind: kindCreateTopic, Time: 1000, Topic: a, Name: "a", Partitions: 3})
	apply(&entry{Kind: kindInitProducer, Time: 1000, ProducerID: -1}) // pid 2
	apply(&entry{Kind: kindInitProducer, Time: 1000, ProducerID: -1}) // pid 3
	apply(&entry{Kind: kindCreateTopic, Time: 1000, Topic: b, Name: "b", Partitions: 1})
	apply(&entry{Kind: kindIntake, Time: 1000, Object: "intake/1", ObjectTime: 1000, Batches: []batchDesc{
		{Topic: a, Partition: 0, Pos: 0, Len: 100, Count: 3, MaxTS: 900, ProducerID: 2, Epoch: 0, BaseSeq: 0},
		{Topic: a, Partition: 1, Pos: 100, Len: 100, Count: 2, MaxTS: 900, ProducerID: -1, Epoch: -1, BaseSeq: -1},
		{Topic: b, Partition: 0, Pos: 200, Len: 100, Count: 4, MaxTS: 900, ProducerID: -1, Epoch: -1, BaseSeq: -1},
	}})
	apply(&entry{Kind: kindIntake, Time: 1100, Object: "intake/2", ObjectTime: 1100, Batches: []batchDesc{
		{Topic: a, Partition: 1, Pos: 0, Len: 70, Count: 5, MaxTS: 1000, ProducerID: -1, Epoch: -1, BaseSeq: -1},
		{Topic: a, Partition: 0, Pos: 70, Len: 30, Count: 1, MaxTS: 1000, ProducerID: -1, Epoch: -1, BaseSeq: -1},
	}})
	p1 := st.Topics[a].Parts[1]
	apply(&entry{Kind: kindArchive, Time: 1200, Topic: a, Partition: 1, ReplacedFirst: 0, ReplacedLast: 6, ReplacedCount: 2,
		ReplacedDigest: extentsDigest(p1.Extents), Segment: "seg/1",
		Chunks: []chunk{{Base: 0, Last: 1, Pos: 0, Len: 100}, {Base: 2, Last: 6, Pos: 100, Len: 70}}})
	// An object nothing in which is sequenced: garbage.
	rev++
	st.apply(rev, &entry{Kind: kindIntake, Time: 1200, Object: "intake/3", ObjectTime: 1200, Batches: []batchDesc{
		{Topic: a, Partition: 9, Pos: 0, Len: 10, Count: 1, ProducerID: -1, Epoch: -1, BaseSeq: -1},
	}})
	if len(st.Garbage) != 1 {
		t.Fatalf("prelude garbage: %+v", st.Garbage)
	}
	if rev != 8 {
		t.Fatalf("prelude is %d entries", rev)
	}
	// Plans valid against the prelude.
	p0 := st.Topics[a].Parts[0]
	p1 = st.Topics[a].Parts[1]
	plans := []*entry{
		{Kind: kindArchive, Time: 1300, Topic: a, Partition: 0, ReplacedFirst: 0, ReplacedLast: 3, ReplacedCount: 2,
			ReplacedDigest: extentsDigest(p0.Extents), Segment: "seg/2",
			Chunks: []chunk{{Base: 0, Last: 3, Pos: 0, Len: 130}}},
		{Kind: kindCompact, Time: 1300, Topic: a, Partition: 1, ReplacedFirst: 0, ReplacedLast: 6, ReplacedCount: 2,
			ReplacedDigest: extentsDigest(p1.Extents), Segment: "seg/3",
			Chunks: []chunk{{Base: 1, Last: 1, Pos: 0, Len: 40}, {Base: 5, Last: 6, Pos: 40, Len: 30}}},
		{Kind: kindCompact, Time: 1300, Topic: a, Partition: 1, ReplacedFirst: 2, ReplacedLast: 6, ReplacedCount: 1,
			ReplacedDigest: extentsDigest(p1.Extents[1:]), Segment: "seg/4"},
	}
	return st, rev + 1, plans
}

// joinEntries frames encoded entries as FuzzApply reads them: a 2-byte
// big-endian length before each.
func joinEntries(es ...*entry) []byte {
	var out []byte
	for _, e := range es {
		b := e.encode()
		out = binary.BigEndian.AppendUint16(out, uint16(len(b)))
		out = append(out, b...)
	}
	return out
}

func splitEntries(b []byte) [][]byte {
	var out [][]byte
	for len(b) >= 2 {
		n := int(binary.BigEndian.Uint16(b))
		b = b[2:]
		n = min(n, len(b))
		out = append(out, b[:n])
		b = b[n:]
	}
	return out
}

func FuzzDecodeEntry(f *testing.F) {
	_, _, plans := fuzzPrelude(f)
	for _, e := range append(seedEntries(), plans...) {
		f.Add(e.encode())
	}
	f.Add([]byte{})
	f.Add([]byte{byte(kindIntake)})
	f.Add([]byte{byte(kindTrim), '{', '}'})
	f.Add([]byte{byte(kindTrim), 'n', 'u', 'l', 'l'})
	f.Add([]byte{0xff, '{', '"', 'r', 'c', '"', ':', '1', '}'})
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := decodeEntry(b)
		if err != nil {
			if e != nil {
				t.Fatalf("error %v with an entry", err)
			}
			return
		}
		enc := e.encode()
		again, err := decodeEntry(enc)
		if err != nil {
			t.Fatalf("re-encoded entry does not decode: %v", err)
		}
		if e.Kind == kindIntake {
			if !reflect.DeepEqual(e, again) {
				t.Fatalf("intake entry changed in a round trip:\n%+v\n%+v", e, again)
			}
			if !bytes.Equal(enc, b) {
				t.Fatalf("intake encoding is not canonical")
			}
			return
		}
		// JSON bodies are normalised by one round trip (key case, empty
		// maps, duplicate keys); after that encoding is a fixed point.
		if enc2 := again.encode(); !bytes.Equal(enc, enc2) {
			t.Fatalf("encoding is not stable:\n%q\n%q", enc, enc2)
		}
		if again.Kind != e.Kind {
			t.Fatalf("kind %d became %d", e.Kind, again.Kind)
		}
	})
}

// fuzzTopicConfigs are the topic configurations FuzzValidateBatch checks
// batches against: the defaults and the rewrites a topic can ask for.
func fuzzTopicConfigs(t testing.TB) []config.Topic {
	t.Helper()
	var out []config.Topic
	for _, m := range []map[string]string{
		nil,
		{"message.timestamp.type": "LogAppendTime", "compression.type": "zstd"},
		{"cleanup.policy": "compact", "compression.type": "gzip", "max.message.bytes": "300"},
		{"message.timestamp.before.max.ms": "1000", "message.timestamp.after.max.ms": "1000", "compression.type": "lz4"},
		{"compression.type": "snappy", "message.timestamp.type": "CreateTime"},
		{"compression.type": "uncompressed"},
	} {
		c, err := config.ResolveTopic(m, nil)
		if err != nil {
			t.Fatalf("%v: %v", m, err)
		}
		out = append(out, c)
	}
	return out
}

func FuzzValidateBatch(f *testing.F) {
	configs := fuzzTopicConfigs(f)
	const now = 1_700_000_000_000
	for i, codec := range []Codec{CodecNone, CodecGzip, CodecSnappy, CodecLZ4, CodecZstd} {
		f.Add(makeBatch(-1, -1, -1, 3, now, codec), uint8(i), int64(now))
		f.Add(makeBatch(7, 1, 40, 2, now-5000, codec), uint8(i+1), int64(now))
	}
	f.Add(keyedBatch(CodecNone, kv{key: "a", value: "1", ts: now}, kv{key: "b", tomb: true, ts: now + 1}, kv{noKey: true, value: "x", ts: now + 2}), uint8(2), int64(now))
	f.Add(keyedBatch(CodecZstd, kv{key: "k", value: strings.Repeat("v", 500), ts: now}), uint8(2), int64(now))
	bad := makeBatch(-1, -1, -1, 2, now, CodecNone)
	bad[len(bad)-1] ^= 1
	f.Add(bad, uint8(0), int64(now))
	ctrl := makeBatch(-1, -1, -1, 1, now, CodecNone)
	binary.BigEndian.PutUint16(ctrl[offAttributes:], attrControl)
	fixCRC(ctrl)
	f.Add(ctrl, uint8(0), int64(now))
	f.Add([]byte{}, uint8(0), int64(0))
	f.Fuzz(func(t *testing.T, b []byte, which uint8, nowMs int64) {
		tc := configs[int(which)%len(configs)]
		orig := append([]byte(nil), b...)
		in, inErr := parseBatchHeader(b)
		v, recErrs, err := validateBatch(b, tc, nowMs)
		if !bytes.Equal(b, orig) {
			t.Fatalf("validateBatch modified its input")
		}
		if err != nil {
			if len(v.bytes) != 0 {
				t.Fatalf("rejected batch (%v) came with bytes", err)
			}
			return
		}
		if inErr != nil || len(recErrs) != 0 {
			t.Fatalf("accepted with header error %v, record errors %v", inErr, recErrs)
		}
		out := v.bytes
		h, err := parseBatchHeader(out)
		if err != nil {
			t.Fatalf("accepted batch has no header: %v", err)
		}
		if h != v.hdr {
			t.Fatalf("header %+v does not describe the bytes %+v", v.hdr, h)
		}
		if h.totalLen() != len(out) || h.Magic != 2 || h.control() {
			t.Fatalf("accepted batch: length %d for %d bytes, magic %d, attrs %#x", h.Length, len(out), h.Magic, h.Attributes)
		}
		if crc32.Checksum(out[offAttributes:], crcTable) != h.CRC {
			t.Fatalf("accepted batch has a bad CRC")
		}
		if h.NumRecords <= 0 || h.LastOffsetDelta != h.NumRecords-1 {
			t.Fatalf("accepted batch: %d records, last offset delta %d", h.NumRecords, h.LastOffsetDelta)
		}
		if h.idempotent() && (h.BaseSequence < 0 || h.ProducerEpoch < 0) {
			t.Fatalf("accepted idempotent batch with sequence %d epoch %d", h.BaseSequence, h.ProducerEpoch)
		}
		if h.ProducerID != in.ProducerID || h.ProducerEpoch != in.ProducerEpoch || h.BaseSequence != in.BaseSequence ||
			h.NumRecords != in.NumRecords || h.FirstTimestamp != in.FirstTimestamp || h.transactional() != in.transactional() {
			t.Fatalf("rewrite changed producer fields: %+v -> %+v", in, h)
		}
		if target, ok := CodecByName(tc.CompressionType); ok && h.codec() != target {
			t.Fatalf("codec %d, topic wants %s", h.codec(), tc.CompressionType)
		}
		if tc.TimestampType == "LogAppendTime" && (!h.logAppendTime() || h.MaxTimestamp != nowMs) {
			t.Fatalf("LogAppendTime topic: attrs %#x max timestamp %d, now %d", h.Attributes, h.MaxTimestamp, nowMs)
		}
		if tc.MaxMessageBytes > 0 && len(b) > int(tc.MaxMessageBytes) {
			t.Fatalf("batch of %d bytes accepted over max.message.bytes %d", len(b), tc.MaxMessageBytes)
		}
		_, data, err := batchRecordsData(out)
		if err != nil {
			t.Fatalf("accepted batch does not decompress: %v", err)
		}
		n := int32(0)
		if err := iterRecords(data, h.NumRecords, func(i int32, r *rawRecord) error {
			if r.OffsetDelta != i {
				t.Fatalf("record %d has offset delta %d", i, r.OffsetDelta)
			}
			if tc.CleanupCompact && !r.HasKey {
				t.Fatalf("compacted topic accepted record %d without a key", i)
			}
			n++
			return nil
		}); err != nil || n != h.NumRecords {
			t.Fatalf("accepted batch: %d of %d records: %v", n, h.NumRecords, err)
		}
	})
}

func FuzzApply(f *testing.F) {
	_, _, plans := fuzzPrelude(f)
	seeds := seedEntries()
	f.Add(joinEntries(seeds...))
	for _, e := range seeds {
		f.Add(joinEntries(e))
	}
	for _, p := range plans {
		f.Add(joinEntries(p, seeds[0]))
	}
	f.Add(joinEntries(plans[0], plans[1], seeds[9], seeds[3], seeds[11]))
	f.Add([]byte{0, 3, byte(kindTrim), '{', '}'})
	f.Fuzz(func(t *testing.T, b []byte) {
		st, rev, _ := fuzzPrelude(t)
		for i, raw := range splitEntries(b) {
			e, err := decodeEntry(raw)
			if err != nil {
				continue
			}
			res := st.apply(rev, e)
			rev++
			if err := checkInvariants(st); err != nil {
				t.Fatalf("entry %d (kind %d, %+v) -> %+v: %v", i, e.Kind, e, res, err)
			}
			if res.Err != nil && errors.Is(res.Err, ErrStaleEntry) && e.Segment != "" && st.ObjRefs[e.Segment] == 0 {
				found := false
				for _, g := range st.Garbage {
					found = found || g.Obj == e.Segment
				}
				if !found {
					t.Fatalf("entry %d: stale plan's segment %q is neither referenced nor garbage", i, e.Segment)
				}
			}
		}
	})
}

// TestApplyMalformedEntries applies entries no correct broker proposes but
// a corrupt or buggy one could: the sequencer must refuse them with an
// error, without panicking and without breaking the partition index (every
// broker replays the same log, so one bad entry would otherwise stop or
// corrupt them all).
func TestApplyMalformedEntries(t *testing.T) {
	a := scriptTopicID(1)
	cases := []struct {
		name string
		e    *entry
	}{
		{
			name: "intake batch with zero records",
			e: &entry{Kind: kindIntake, Time: 1300, Object: "intake/z", ObjectTime: 1300, Batches: []batchDesc{
				{Topic: a, Partition: 0, Len: 10, Count: 0, ProducerID: -1, Epoch: -1, BaseSeq: -1}}},
		},
		{
			name: "intake batch with a negative record count",
			e: &entry{Kind: kindIntake, Time: 1300, Object: "intake/n", ObjectTime: 1300, Batches: []batchDesc{
				{Topic: a, Partition: 0, Len: 10, Count: -3, ProducerID: -1, Epoch: -1, BaseSeq: -1}}},
		},
		{
			name: "replaced count that overflows",
			e: &entry{Kind: kindCompact, Time: 1300, Topic: a, Partition: 1, ReplacedFirst: 2, ReplacedLast: 6,
				ReplacedCount: math.MaxInt, Segment: "seg/x"},
		},
		{
			name: "chunk beyond the replaced offsets",
			e: &entry{Kind: kindCompact, Time: 1300, Topic: a, Partition: 1, ReplacedFirst: 0, ReplacedLast: 1, ReplacedCount: 1,
				Segment: "seg/y", Chunks: []chunk{{Base: 0, Last: 9, Len: 10}}},
		},
		{
			name: "chunks out of order",
			e: &entry{Kind: kindCompact, Time: 1300, Topic: a, Partition: 1, ReplacedFirst: 2, ReplacedLast: 6, ReplacedCount: 1,
				Segment: "seg/z", Chunks: []chunk{{Base: 5, Last: 6, Len: 10}, {Base: 2, Last: 3, Pos: 10, Len: 10}}},
		},
		{
			name: "empty chunk",
			e: &entry{Kind: kindCompact, Time: 1300, Topic: a, Partition: 1, ReplacedFirst: 2, ReplacedLast: 6, ReplacedCount: 1,
				Segment: "seg/w", Chunks: []chunk{{Base: 4, Last: 3, Len: 10}}},
		},
		{
			name: "chunk with negative length",
			e: &entry{Kind: kindCompact, Time: 1300, Topic: a, Partition: 1, ReplacedFirst: 2, ReplacedLast: 6, ReplacedCount: 1,
				Segment: "seg/v", Chunks: []chunk{{Base: 2, Last: 6, Len: -50}}},
		},
		{
			name: "chunks without a segment object",
			e: &entry{Kind: kindCompact, Time: 1300, Topic: a, Partition: 1, ReplacedFirst: 2, ReplacedLast: 6, ReplacedCount: 1,
				Chunks: []chunk{{Base: 2, Last: 6, Len: 50}}},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			st, rev, _ := fuzzPrelude(t)
			if c.e.Kind == kindArchive || c.e.Kind == kindCompact {
				// Digest the extents the entry names, so only the malformed
				// part can be the reason to refuse it.
				if p, err := st.partition(c.e.Topic, c.e.Partition); err == nil {
					for i, x := range p.Extents {
						if x.Base == c.e.ReplacedFirst {
							c.e.ReplacedDigest = extentsDigest(p.Extents[i : i+min(c.e.ReplacedCount, len(p.Extents)-i)])
						}
					}
				}
			}
			before := dumpState(st, nil)
			var res applyResult
			func() {
				defer func() {
					if r := recover(); r != nil {
						t.Fatalf("apply panicked: %v", r)
					}
				}()
				res = st.apply(rev, c.e)
			}()
			refused := res.Err != nil
			for _, br := range res.Batches {
				refused = refused || br.Err != nil
			}
			if !refused {
				t.Errorf("entry accepted: %+v", res)
			}
			if err := checkInvariants(st); err != nil {
				t.Errorf("invariant broken: %v", err)
			}
			// Only the revision, counters, clocks and garbage may change.
			strip := func(s string) string {
				var keep []string
				for _, l := range strings.Split(s, "\n") {
					if !strings.HasPrefix(l, "rev=") && !strings.HasPrefix(l, "broker ") && !strings.HasPrefix(l, "garbage:") {
						keep = append(keep, l)
					}
				}
				return strings.Join(keep, "\n")
			}
			if got, want := strip(dumpState(st, nil)), strip(before); got != want {
				t.Errorf("refused entry changed the index:\n%s", diffLines(want, got))
			}
		})
	}
}
