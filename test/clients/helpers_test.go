package clients

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-dev/runnel/test/harness"
)

// codecs are the Kafka batch compression codecs, by their attribute bits.
var codecs = []string{"none", "gzip", "snappy", "lz4", "zstd"}

// pad is the compressible value suffix the Python and JS programs append.
var pad = strings.Repeat("x", 64)

// cmdTimeout bounds one client invocation.
const cmdTimeout = 60 * time.Second

// rec is one record as a client reported it.
type rec struct {
	Key       *string     `json:"key"`
	Value     *string     `json:"value"`
	Headers   [][2]string `json:"headers"`
	Partition int32       `json:"partition"`
	Offset    int64       `json:"offset"`
}

func (r rec) key() string {
	if r.Key == nil {
		return "<null>"
	}
	return *r.Key
}

// requireTool skips (or, with RUNNEL_REQUIRE_CLIENTS set, fails) a test
// whose client is missing; check returns why the client is unusable.
func requireTool(t *testing.T, name string, check func() error) {
	t.Helper()
	err := check()
	if err == nil {
		return
	}
	if os.Getenv("RUNNEL_REQUIRE_CLIENTS") != "" {
		t.Fatalf("%s is required (RUNNEL_REQUIRE_CLIENTS is set) but unusable: %v", name, err)
	}
	t.Skipf("%s not available (%v); run scripts/test to install it", name, err)
}

// startBroker runs one embedded broker for the test.
func startBroker(t *testing.T) *harness.Proc {
	t.Helper()
	return harness.Start(t, harness.Options{})
}

// admin returns a franz-go admin client for addr, closed on cleanup.
func admin(t *testing.T, addr string) (*kadm.Client, *kgo.Client) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return kadm.NewClient(cl), cl
}

// createTopic creates a topic with the given partition count.
func createTopic(t *testing.T, addr, topic string, partitions int32) {
	t.Helper()
	adm, _ := admin(t, addr)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := adm.CreateTopic(ctx, partitions, 1, nil, topic)
	if err != nil {
		t.Fatalf("create topic %s: %v", topic, err)
	}
	if res.Err != nil {
		t.Fatalf("create topic %s: %v", topic, res.Err)
	}
}

// run executes a client program and returns its stdout; a failure or a
// non-zero exit fails the test with the program's stderr and the broker log.
func run(t *testing.T, b *harness.Proc, stdin string, name string, args ...string) string {
	t.Helper()
	return runEnv(t, b, nil, stdin, name, args...)
}

// runEnv is run with extra environment variables ("K=V").
func runEnv(t *testing.T, b *harness.Proc, env []string, stdin string, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Dir = filepath.Join(harness.RepoRoot(), "test", "clients")
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\nstderr:\n%s\nstdout:\n%s\nbroker log (tail):\n%s",
			name, strings.Join(args, " "), err, tail(stderr.String(), 4000), tail(stdout.String(), 2000), tail(b.Log(), 4000))
	}
	return stdout.String()
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}

// parseJSONLines decodes one T per non-empty line.
func parseJSONLines[T any](t *testing.T, out string) []T {
	t.Helper()
	var res []T
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		var v T
		if err := json.Unmarshal([]byte(line), &v); err != nil {
			t.Fatalf("bad JSON line %q: %v", line, err)
		}
		res = append(res, v)
	}
	return res
}

// placement is where a producer was told a record landed.
type placement struct {
	Key       string `json:"key"`
	Partition int32  `json:"partition"`
	Offset    int64  `json:"offset"`
}

// checkDense asserts that, per partition, the offsets are exactly 0..n-1
// with no duplicates, and that the partitions used are within [0, parts).
func checkDense(t *testing.T, what string, offsets map[int32][]int64, parts int32) {
	t.Helper()
	for p, offs := range offsets {
		if p < 0 || p >= parts {
			t.Errorf("%s: partition %d out of range [0,%d)", what, p, parts)
		}
		s := slices.Clone(offs)
		slices.Sort(s)
		for i, o := range s {
			if o != int64(i) {
				t.Errorf("%s: partition %d offsets %v are not dense from 0", what, p, s)
				break
			}
		}
	}
}

// checkPlacements asserts that a producer placed exactly the keys wantKeys,
// each once, at dense offsets, and returns key → placement.
func checkPlacements(t *testing.T, what string, got []placement, wantKeys []string, parts int32) map[string]placement {
	t.Helper()
	byKey := make(map[string]placement, len(got))
	offs := map[int32][]int64{}
	for _, pl := range got {
		if _, dup := byKey[pl.Key]; dup {
			t.Errorf("%s: key %s reported twice", what, pl.Key)
		}
		byKey[pl.Key] = pl
		offs[pl.Partition] = append(offs[pl.Partition], pl.Offset)
	}
	if len(got) != len(wantKeys) {
		t.Errorf("%s: %d delivery reports, want %d", what, len(got), len(wantKeys))
	}
	for _, k := range wantKeys {
		if _, ok := byKey[k]; !ok {
			t.Errorf("%s: no delivery report for key %s", what, k)
		}
	}
	checkDense(t, what, offs, parts)
	return byKey
}

// expect is what one record must look like when consumed.
type expect struct {
	Value   string
	Headers [][2]string
}

// checkConsumed asserts that got holds exactly the records of want (by key),
// each once, with the exact value and headers, at the offsets the producer
// reported (if placed is non-nil), and dense offsets per partition.
func checkConsumed(t *testing.T, what string, got []rec, want map[string]expect, placed map[string]placement, parts int32) {
	t.Helper()
	seen := map[string]bool{}
	offs := map[int32][]int64{}
	for _, r := range got {
		k := r.key()
		if seen[k] {
			t.Errorf("%s: key %s consumed twice (offset %d)", what, k, r.Offset)
			continue
		}
		seen[k] = true
		offs[r.Partition] = append(offs[r.Partition], r.Offset)
		w, ok := want[k]
		if !ok {
			t.Errorf("%s: unexpected record key %s at %d/%d", what, k, r.Partition, r.Offset)
			continue
		}
		if r.Value == nil || *r.Value != w.Value {
			t.Errorf("%s: key %s value %v, want %q", what, k, deref(r.Value), w.Value)
		}
		if !headersEqual(r.Headers, w.Headers) {
			t.Errorf("%s: key %s headers %v, want %v", what, k, r.Headers, w.Headers)
		}
		if placed != nil {
			pl := placed[k]
			if pl.Partition != r.Partition || pl.Offset != r.Offset {
				t.Errorf("%s: key %s consumed at %d/%d, producer reported %d/%d",
					what, k, r.Partition, r.Offset, pl.Partition, pl.Offset)
			}
		}
	}
	if len(got) != len(want) {
		t.Errorf("%s: consumed %d records, want %d", what, len(got), len(want))
	}
	for k := range want {
		if !seen[k] {
			t.Errorf("%s: key %s never consumed", what, k)
		}
	}
	checkDense(t, what, offs, parts)
}

// checkResume asserts that the second group run starts, in every
// partition, exactly where the first run's commit left it: no gap and no
// duplicate between the two runs, and each run is in offset order per
// partition.
func checkResume(t *testing.T, what string, first, second []rec) {
	t.Helper()
	next := map[int32]int64{}
	for _, r := range first {
		if n, ok := next[r.Partition]; ok && r.Offset != n {
			t.Errorf("%s: first run partition %d jumped to offset %d, expected %d", what, r.Partition, r.Offset, n)
		}
		next[r.Partition] = r.Offset + 1
	}
	started := map[int32]bool{}
	for _, r := range second {
		want := next[r.Partition] // 0 if the first run never read it
		switch {
		case r.Offset == want:
		case !started[r.Partition]:
			t.Errorf("%s: resumed partition %d at offset %d, want %d (committed by the first run)",
				what, r.Partition, r.Offset, want)
		default:
			t.Errorf("%s: second run partition %d jumped to offset %d, expected %d", what, r.Partition, r.Offset, want)
		}
		started[r.Partition] = true
		next[r.Partition] = r.Offset + 1
	}
}

func deref(s *string) any {
	if s == nil {
		return nil
	}
	return *s
}

func headersEqual(a, b [][2]string) bool {
	sa, sb := slices.Clone(a), slices.Clone(b)
	less := func(x, y [2]string) int { return strings.Compare(x[0]+"\x00"+x[1], y[0]+"\x00"+y[1]) }
	slices.SortFunc(sa, less)
	slices.SortFunc(sb, less)
	return slices.Equal(sa, sb)
}

// batchInfo is one stored record batch as the broker serves it.
type batchInfo struct {
	Base, Last int64
	Codec      string
}

// storedBatches fetches a partition with raw Fetch requests and returns its
// batches with their compression codec, so a test can prove the client
// really sent compressed batches and the broker stored them as sent.
func storedBatches(t *testing.T, cl *kgo.Client, topic string, partition int32) []batchInfo {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	topics, err := kadm.NewClient(cl).ListTopics(ctx, topic)
	if err != nil || topics.Error() != nil {
		t.Fatalf("metadata of %s: %v %v", topic, err, topics.Error())
	}
	var out []batchInfo
	offset := int64(0)
	for {
		req := kmsg.NewPtrFetchRequest()
		req.ReplicaID = -1
		req.MaxWaitMillis = 100
		req.MaxBytes = 16 << 20
		req.SessionEpoch = -1
		rt := kmsg.NewFetchRequestTopic()
		rt.Topic = topic              // versions up to 12
		rt.TopicID = topics[topic].ID // versions from 13
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.Partition = partition
		rp.FetchOffset = offset
		rp.PartitionMaxBytes = 16 << 20
		rp.LogStartOffset = -1
		rp.CurrentLeaderEpoch = -1
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			t.Fatalf("raw fetch %s/%d@%d: %v", topic, partition, offset, err)
		}
		if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
			t.Fatalf("raw fetch %s/%d: unexpected response shape", topic, partition)
		}
		p := resp.Topics[0].Partitions[0]
		if p.ErrorCode != 0 {
			t.Fatalf("raw fetch %s/%d@%d: error code %d", topic, partition, offset, p.ErrorCode)
		}
		raw := p.RecordBatches
		progressed := false
		for len(raw) >= 12 {
			var b kmsg.RecordBatch
			if err := b.ReadFrom(raw); err != nil {
				break // a partial batch at the end of the response
			}
			size := int(b.Length) + 12
			if size > len(raw) {
				break
			}
			raw = raw[size:]
			last := b.FirstOffset + int64(b.LastOffsetDelta)
			if last < offset {
				continue
			}
			out = append(out, batchInfo{Base: b.FirstOffset, Last: last, Codec: codecName(b.Attributes)})
			offset = last + 1
			progressed = true
		}
		if offset >= p.HighWatermark {
			return out
		}
		if !progressed {
			t.Fatalf("raw fetch %s/%d@%d: no complete batch below high watermark %d", topic, partition, offset, p.HighWatermark)
		}
	}
}

func codecName(attrs int16) string {
	i := int(attrs & 0x07)
	if i < len(codecs) {
		return codecs[i]
	}
	return fmt.Sprintf("codec-%d", i)
}

// codecAt maps each offset of a partition to the codec of its stored batch.
func codecAt(t *testing.T, cl *kgo.Client, topic string, partition int32) map[int64]string {
	t.Helper()
	m := map[int64]string{}
	for _, b := range storedBatches(t, cl, topic, partition) {
		for o := b.Base; o <= b.Last; o++ {
			m[o] = b.Codec
		}
	}
	return m
}

// sortedKeys returns the keys of m in order, for stable messages.
func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
