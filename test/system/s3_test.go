package system

import (
	"context"
	"fmt"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/runnel-dev/runnel/test/harness"
)

// TestS3ObjectStore runs a broker whose object store is an S3-compatible
// server on loopback (gofakes3, in memory): data produced is consumed back,
// lands in the bucket, and survives a SIGKILL and a graceful restart.
func TestS3ObjectStore(t *testing.T) {
	backend := s3mem.New()
	const bucket = "runnel-system"
	if err := backend.CreateBucket(bucket); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(gofakes3.New(backend).Server()) // 127.0.0.1
	t.Cleanup(srv.Close)

	// Static credentials; keep the SDK away from the user's AWS files and
	// from the instance metadata service.
	empty := filepath.Join(t.TempDir(), "none")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	q := url.Values{"endpoint": {srv.URL}, "region": {"us-east-1"}, "use_path_style": {"true"}}
	p := harness.Start(t, harness.Options{
		BrokerID:    1,
		ObjectStore: "s3://" + bucket + "?" + q.Encode(),
		Env: []string{
			"AWS_ACCESS_KEY_ID=test", "AWS_SECRET_ACCESS_KEY=test", "AWS_SESSION_TOKEN=",
			"AWS_PROFILE=", "AWS_CONFIG_FILE=" + empty, "AWS_SHARED_CREDENTIALS_FILE=" + empty,
			"AWS_EC2_METADATA_DISABLED=true",
		},
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

	objs, err := backend.ListBucket(bucket, &gofakes3.Prefix{}, gofakes3.ListBucketPage{})
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, c := range objs.Contents {
		keys = append(keys, c.Key)
	}
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
