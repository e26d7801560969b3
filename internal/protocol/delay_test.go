package protocol

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-dev/runnel/internal/config"
)

// batchTimestamps returns the max timestamp of every batch in records.
func batchTimestamps(t *testing.T, records []byte) []int64 {
	t.Helper()
	var out []int64
	for len(records) > 0 {
		var b kmsg.RecordBatch
		if err := b.ReadFrom(records); err != nil {
			t.Fatalf("decode batch: %v", err)
		}
		out = append(out, b.MaxTimestamp)
		records = records[int(b.Length)+12:]
	}
	return out
}

// TestFetchDeliveryDelay: a topic with delivery.delay.ms serves a batch only
// once its max timestamp + the delay has passed on the server's clock (the
// injected one, far from the wall clock), cuts the result before the first
// batch not yet due (never serving a later due one past it), and a long poll
// returns when the next batch becomes due, not at MaxWait.
func TestFetchDeliveryDelay(t *testing.T) {
	base := time.Date(2031, 3, 4, 5, 6, 7, 0, time.UTC)
	start := time.Now()
	now := func() time.Time { return base.Add(time.Since(start)) }
	b := startServer(t, func(o *Options) { o.Now = now })
	ctx := testCtx(t)
	ti, err := b.log.CreateTopic(ctx, "delayed", 1, map[string]string{config.TopicDeliveryDelay: "1000"}, false)
	if err != nil {
		t.Fatal(err)
	}
	prod := newClient(t, b.addr, kgo.DefaultProduceTopic("delayed"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	// One batch each: due 1 s ago, in 400 ms, in 1 s, and 5 s ago (behind
	// an undue batch, so it must wait for it).
	stamps := []time.Duration{-2 * time.Second, -600 * time.Millisecond, 0, -6 * time.Second}
	for i, d := range stamps {
		r := &kgo.Record{Value: []byte{byte('a' + i)}, Timestamp: base.Add(d)}
		if err := prod.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	c := dialRaw(t, b.addr)
	corr := int32(0)
	fetch := func(offset int64, maxWait int32) (*kmsg.FetchResponseTopicPartition, time.Duration) {
		t.Helper()
		corr++
		f := kmsg.NewPtrFetchRequest()
		f.SetVersion(13)
		f.MaxBytes, f.MinBytes, f.MaxWaitMillis, f.SessionEpoch = 1<<20, 1, maxWait, -1
		ft := kmsg.NewFetchRequestTopic()
		ft.TopicID = ti.ID
		fp := kmsg.NewFetchRequestTopicPartition()
		fp.FetchOffset, fp.PartitionMaxBytes = offset, 1<<20
		ft.Partitions = append(ft.Partitions, fp)
		f.Topics = append(f.Topics, ft)
		sent := time.Now()
		c.sendReq(f, corr)
		got, body, err := c.recv()
		if err != nil || got != corr {
			t.Fatalf("recv: %v corr %d", err, got)
		}
		took := time.Since(sent)
		r := kmsg.NewPtrFetchResponse()
		r.SetVersion(13)
		if err := r.ReadFrom(body[1:]); err != nil {
			t.Fatal(err)
		}
		if len(r.Topics) != 1 || len(r.Topics[0].Partitions) != 1 {
			t.Fatalf("response topics %+v", r.Topics)
		}
		p := &r.Topics[0].Partitions[0]
		if p.ErrorCode != 0 {
			t.Fatalf("partition error %d", p.ErrorCode)
		}
		return p, took
	}
	ms := func(d time.Duration) int64 { return base.Add(d).UnixMilli() }

	p, _ := fetch(0, 0)
	if got := batchTimestamps(t, p.RecordBatches); len(got) != 1 || got[0] != ms(stamps[0]) {
		t.Fatalf("immediate fetch: batches with max timestamps %v, want only %d", got, ms(stamps[0]))
	}
	if p.HighWatermark != 4 {
		t.Fatalf("high watermark %d, want 4 (undue batches are in the log)", p.HighWatermark)
	}

	// Long poll at offset 1: woken by the due time (~400 ms), not MaxWait.
	p, took := fetch(1, 5000)
	if got := batchTimestamps(t, p.RecordBatches); len(got) != 1 || got[0] != ms(stamps[1]) {
		t.Fatalf("long poll at 1: batches %v, want only %d", got, ms(stamps[1]))
	}
	if took < 200*time.Millisecond || took > 3*time.Second {
		t.Fatalf("long poll at 1 took %v, want about 400 ms", took)
	}
	// At offset 2: the batch due in ~1 s and then the older one behind it.
	p, took = fetch(2, 5000)
	if got := batchTimestamps(t, p.RecordBatches); len(got) != 2 || got[0] != ms(stamps[2]) || got[1] != ms(stamps[3]) {
		t.Fatalf("long poll at 2: batches %v", got)
	}
	if now().Before(base.Add(time.Second)) || took > 4*time.Second {
		t.Fatalf("long poll at 2 returned at %v (took %v), before its due time", now().Sub(base), took)
	}
}

func TestCutUndue(t *testing.T) {
	var recs []byte
	for _, ts := range []int64{100, 200, 300} {
		b := kmsg.RecordBatch{Magic: 2, FirstTimestamp: ts, MaxTimestamp: ts, NumRecords: 0, Records: nil}
		raw := b.AppendTo(nil)
		// AppendTo writes Length as given: fix it to the real size.
		raw[8], raw[9], raw[10], raw[11] = byte((len(raw)-12)>>24), byte((len(raw)-12)>>16), byte((len(raw)-12)>>8), byte(len(raw)-12)
		recs = append(recs, raw...)
	}
	one := len(recs) / 3
	for _, tc := range []struct {
		name        string
		now, delay  int64
		wantBatches int
		wantDueAt   int64
	}{
		{"all due", 1000, 50, 3, 0},
		{"none due", 100, 50, 0, 150},
		{"first two due", 260, 50, 2, 350},
		{"exactly due", 350, 50, 3, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, due := cutUndue(recs, tc.now, tc.delay)
			if len(got) != tc.wantBatches*one || due != tc.wantDueAt {
				t.Fatalf("cut to %d bytes due %d, want %d batches due %d", len(got), due, tc.wantBatches, tc.wantDueAt)
			}
		})
	}
	// A truncated batch is left as it is.
	if got, due := cutUndue(recs[:one+10], 1000, 50); len(got) != one+10 || due != 0 {
		t.Fatalf("truncated: %d bytes due %d", len(got), due)
	}
}
