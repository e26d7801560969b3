package system

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/runnel-dev/runnel/test/harness"
)

// TestS3ObjectStore runs a broker whose object store is a real
// S3-compatible server on loopback (versitygw over a directory, see
// harness.StartS3): data produced is consumed back, lands in the bucket,
// and survives a SIGKILL and a graceful restart.
func TestS3ObjectStore(t *testing.T) {
	s3 := harness.StartS3(t, "runnel-system")
	p := harness.Start(t, harness.Options{
		BrokerID:    1,
		ObjectStore: s3.URL(),
		Env:         s3.Env,
	})
	seeds := []string{p.Kafka}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	const topic = "s3-topic"
	cl := newClient(t, seeds)
	createTopic(ctx, t, cl, topic, 3, nil)
	batch := func(tag string, n int) []string {
		var vs []string
		for i := 0; i < n; i++ {
			vs = append(vs, fmt.Sprintf("%s-%05d", tag, i))
		}
		return vs
	}
	produceSync(ctx, t, cl, topic, -1, batch("first", 2000))
	ends := endOffsets(ctx, t, cl, topic)
	want := consumeAll(ctx, t, seeds, topic, ends)
	checkDense(t, want, ends)
	if n := countRecords(want); n != 2000 {
		t.Fatalf("consumed %d records, want 2000", n)
	}

	keys := s3.Keys(t)
	if len(keys) == 0 {
		t.Fatalf("no objects in the S3 bucket after producing")
	}
	t.Logf("%d objects in the bucket, e.g. %s", len(keys), keys[0])
	if entries, _ := os.ReadDir(filepath.Join(p.DataDir(), "objects")); len(entries) > 0 {
		t.Errorf("the broker also wrote to the local default object store: %v", entries)
	}

	restart := func(kill bool) {
		t.Helper()
		if kill {
			p.Kill()
		} else {
			p.Stop()
		}
		p.Restart()
		cl := newClient(t, seeds)
		got := consumeAll(ctx, t, seeds, topic, endOffsets(ctx, t, cl, topic))
		if d := diffStored(want, got); d != "" {
			t.Fatalf("data changed across a restart (kill=%v): %s", kill, d)
		}
	}
	restart(true)

	cl2 := newClient(t, seeds)
	produceSync(ctx, t, cl2, topic, -1, batch("second", 500))
	ends = endOffsets(ctx, t, cl2, topic)
	want = consumeAll(ctx, t, seeds, topic, ends)
	checkDense(t, want, ends)
	if n := countRecords(want); n != 2500 {
		t.Fatalf("consumed %d records, want 2500", n)
	}
	restart(false)
	if strings.Contains(p.Log(), "panic") {
		t.Errorf("broker log mentions a panic:\n%s", p.Log())
	}
}

func countRecords(m map[int32][]stored) int {
	n := 0
	for _, rs := range m {
		n += len(rs)
	}
	return n
}
