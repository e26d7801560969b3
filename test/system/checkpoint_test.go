package system

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/runnel-dev/runnel/test/harness"
)

// waitMetric polls a broker metric until ok accepts it.
func waitMetric(ctx context.Context, t testing.TB, p *harness.Proc, name string, d time.Duration, ok func(float64) bool) float64 {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		v, err := p.Metric(ctx, name)
		if err == nil && ok(v) {
			return v
		}
		if time.Now().After(deadline) {
			t.Fatalf("metric %s: %v (err %v) after %v", name, v, err, d)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func metric(ctx context.Context, t testing.TB, p *harness.Proc, name string) float64 {
	t.Helper()
	v, err := p.Metric(ctx, name)
	if err != nil {
		t.Fatalf("metric %s: %v", name, err)
	}
	return v
}

// TestRestartBoundedByCheckpoint checks DESIGN §8 invariant 6: after a
// million records (thousands of intake entries) and a checkpoint, a restart
// replays only the entries after the checkpoint, then serves all the data.
func TestRestartBoundedByCheckpoint(t *testing.T) {
	const (
		topic      = "history"
		partitions = 8
		valueSize  = 100
		ckEntries  = 300
	)
	records := 1_000_000
	if n, err := strconv.Atoi(os.Getenv("RUNNEL_CKPT_RECORDS")); err == nil && n > 0 {
		records = n
	}
	if soak() {
		records = 5_000_000
	}
	// Small flushes and batches make many intake entries out of the data,
	// so that replaying the whole history would be visibly unbounded.
	cfg := fmt.Sprintf("checkpoint:\n  interval: 2s\n  entries: %d\nflush:\n  bytes: 16384\n", ckEntries)
	p := harness.Start(t, harness.Options{BrokerID: 1, Config: cfg})
	seeds := []string{p.Kafka}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()

	admin := newClient(t, seeds)
	createTopic(ctx, t, admin, topic, partitions, nil)

	cl := newClient(t, seeds,
		kgo.DefaultProduceTopic(topic),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerLinger(5*time.Millisecond),
		kgo.ProducerBatchMaxBytes(16<<10),
		kgo.MaxBufferedRecords(200_000),
		kgo.ProducerBatchCompression(kgo.NoCompression()),
	)
	counts := make([]int64, partitions)
	errc := make(chan error, 1)
	start := time.Now()
	for i := 0; i < records; i++ {
		part := int32(i % partitions)
		counts[part]++
		v := make([]byte, valueSize)
		copy(v, fmt.Sprintf("%d-%09d-", part, i))
		cl.Produce(ctx, &kgo.Record{Partition: part, Value: v}, func(_ *kgo.Record, err error) {
			if err != nil {
				select {
				case errc <- err:
				default:
				}
			}
		})
	}
	fctx, fcancel := context.WithTimeout(ctx, 2*time.Minute)
	defer fcancel()
	if err := cl.Flush(fctx); err != nil {
		lg := p.Log()
		if len(lg) > 20000 {
			lg = lg[len(lg)-20000:]
		}
		t.Fatalf("flush: %v (%d records buffered)\nbroker log tail:\n%s", err, cl.BufferedProduceRecords(), lg)
	}
	select {
	case err := <-errc:
		t.Fatalf("produce: %v", err)
	default:
	}
	t.Logf("produced %d records of %d bytes in %v", records, valueSize, time.Since(start).Round(time.Millisecond))

	// Every log entry applied so far (intake entries, topic creation,
	// maintenance): the history a restart without checkpoints would replay.
	written := metric(ctx, t, p, "runnel_log_entries_applied_total")
	intakeBytes := metric(ctx, t, p, "runnel_intake_bytes_total")
	ck := waitMetric(ctx, t, p, "runnel_checkpoints_total", time.Minute, func(v float64) bool { return v >= 1 })
	// Give the checkpointer one interval to cover the tail of the produce.
	later := time.Now().Add(5 * time.Second)
	for time.Now().Before(later) {
		if v, err := p.Metric(ctx, "runnel_checkpoints_total"); err == nil && v > ck {
			ck = v
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("before restart: %v log entries applied, %v intake bytes, %v checkpoints", written, intakeBytes, ck)
	if written < 8*ckEntries {
		t.Fatalf("only %v log entries for %d records: the test needs many more entries than the checkpoint bound to prove anything (flush.bytes not honoured?)", written, records)
	}

	p.Stop()
	restart := time.Now()
	p.Restart()
	t.Logf("restart took %v", time.Since(restart).Round(time.Millisecond))
	replayed := metric(ctx, t, p, "runnel_log_entries_replayed_total")
	t.Logf("after restart: replayed %v entries (bound %d)", replayed, 2*ckEntries)
	if replayed >= 2*ckEntries {
		t.Errorf("start-up replayed %v log entries; with a checkpoint every %d entries it must stay below %d", replayed, ckEntries, 2*ckEntries)
	}
	if replayed*4 > written {
		t.Errorf("start-up replayed %v of the %v log entries written: not bounded by the checkpoint", replayed, written)
	}

	ends := endOffsets(ctx, t, admin, topic)
	for part, n := range counts {
		if ends[int32(part)] != n {
			t.Errorf("partition %d: high watermark %d after restart, produced %d", part, ends[int32(part)], n)
		}
	}
	got := make([]int64, partitions)
	last := make([]int64, partitions)
	for i := range last {
		last[i] = -1
	}
	bad := 0
	consume(ctx, t, seeds, topic, ends, func(r *kgo.Record) {
		got[r.Partition]++
		if r.Offset != last[r.Partition]+1 || len(r.Value) != valueSize {
			bad++
			if bad <= 5 {
				t.Errorf("partition %d: record at offset %d after %d, %d bytes", r.Partition, r.Offset, last[r.Partition], len(r.Value))
			}
		}
		last[r.Partition] = r.Offset
	})
	for part := range counts {
		if got[part] != counts[part] || last[part] != counts[part]-1 {
			t.Errorf("partition %d: consumed %d records up to offset %d, produced %d", part, got[part], last[part], counts[part])
		}
	}
}
