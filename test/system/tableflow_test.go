package system

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/iceberg-go/catalog/rest"
	"github.com/apache/iceberg-go/table"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"

	"github.com/runnel-dev/runnel/test/harness"
)

// startEtcd runs an etcd member in the test process, so every broker
// process can be killed without taking the metadata store down with it.
func startEtcd(t *testing.T) string {
	t.Helper()
	free := func() url.URL {
		return url.URL{Scheme: "http", Host: fmt.Sprintf("127.0.0.1:%d", harness.FreePort(t))}
	}
	cfg := embed.NewConfig()
	cfg.Name = "tableflow"
	cfg.Dir = t.TempDir()
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.NewNop())
	cfg.TickMs, cfg.ElectionMs = 10, 100
	client, peer := free(), free()
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{client}, []url.URL{client}
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{peer}, []url.URL{peer}
	cfg.InitialCluster = cfg.Name + "=" + peer.String()
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	select {
	case <-e.Server.ReadyNotify():
	case <-time.After(10 * time.Second):
		t.Fatal("etcd did not start")
	}
	return client.String()
}

// tableStatus is the part of GET /tables/{ns}/{name} the test reads.
type tableStatus struct {
	Writer     int32  `json:"writer"`
	State      string `json:"state"`
	LagRecords int64  `json:"lag_records"`
	Records    int64  `json:"records"`
}

func getTableStatus(p *harness.Proc, ns, name string) (tableStatus, error) {
	var st tableStatus
	resp, err := (&http.Client{Timeout: 2 * time.Second}).Get("http://" + p.HTTP + "/tables/" + ns + "/" + name)
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return st, fmt.Errorf("%s", resp.Status)
	}
	return st, json.NewDecoder(resp.Body).Decode(&st)
}

// TestTableflowCrashExactlyOnce materialises a topic while plain and
// transactional producers write to it, and kills the table's writer with
// SIGKILL five times (restarting it each time): the writer moves to the
// other broker while the first is down, and at the end the table, read
// through the REST catalog by iceberg-go's scanner, holds every record of
// the topic a read_committed consumer sees exactly once, and none of an
// aborted transaction.
func TestTableflowCrashExactlyOnce(t *testing.T) {
	const (
		topic      = "tf"
		partitions = 4
		kills      = 5
	)
	etcdURL := startEtcd(t)
	shared := "file://" + t.TempDir()
	conf := "etcd:\n  lease-ttl: 2s\n"
	procs := map[int32]*harness.Proc{}
	for id := int32(1); id <= 2; id++ {
		procs[id] = harness.Start(t, harness.Options{BrokerID: int(id), ObjectStore: shared, EtcdEndpoints: etcdURL, Config: conf})
	}
	seeds := []string{procs[1].Kafka, procs[2].Kafka}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	admin := newClient(t, seeds)
	createTopic(ctx, t, admin, topic, partitions, map[string]*string{
		"table.enabled": ptrTo("true"), "table.commit.interval.ms": ptrTo("1000"), "table.partition.by": ptrTo("none")})

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var plain, committed atomic.Int64
	wg.Add(2)
	go func() { // plain idempotent records
		defer wg.Done()
		cl := newClient(t, seeds, kgo.DefaultProduceTopic(topic), kgo.ProducerLinger(5*time.Millisecond),
			kgo.RecordRetries(1<<30), kgo.RecordDeliveryTimeout(2*time.Minute))
		for i := 0; ; i++ {
			select {
			case <-stop:
				cl.Flush(ctx)
				return
			default:
			}
			var batch []*kgo.Record
			for j := 0; j < 20; j++ {
				batch = append(batch, &kgo.Record{Key: fmt.Appendf(nil, "k%d", j), Value: fmt.Appendf(nil, "plain-%d-%d", i, j)})
			}
			if err := cl.ProduceSync(ctx, batch...).FirstErr(); err == nil {
				plain.Add(int64(len(batch)))
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	go func() { // transactions, every other one aborted
		defer wg.Done()
		cl := newClient(t, seeds, kgo.DefaultProduceTopic(topic), kgo.TransactionalID("tf-txn"),
			kgo.RecordRetries(1<<30), kgo.TransactionTimeout(10*time.Second))
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			commit := i%2 == 0
			kind := map[bool]string{true: "commit", false: "abort"}[commit]
			if err := cl.BeginTransaction(); err != nil {
				time.Sleep(100 * time.Millisecond)
				continue
			}
			var batch []*kgo.Record
			for j := 0; j < 10; j++ {
				batch = append(batch, &kgo.Record{Value: fmt.Appendf(nil, "txn-%s-%d-%d", kind, i, j)})
			}
			err := cl.ProduceSync(ctx, batch...).FirstErr()
			end := kgo.TransactionEndTry(commit && err == nil)
			if eerr := cl.EndTransaction(ctx, end); eerr == nil && bool(end) {
				committed.Add(int64(len(batch)))
			} else if eerr != nil {
				cl.AbortBufferedRecords(ctx)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}()

	writer := func(exclude int32) int32 {
		for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
			for id, p := range procs {
				if id == exclude {
					continue
				}
				if st, err := getTableStatus(p, "default", topic); err == nil && st.State == "running" && st.Writer > 0 && st.Writer != exclude {
					return st.Writer
				}
			}
		}
		t.Fatalf("no writer for the table (excluding %d)", exclude)
		return 0
	}
	for k := 0; k < kills; k++ {
		time.Sleep(1500 * time.Millisecond)
		w := writer(0)
		victim := procs[w]
		victim.Kill()
		if k == 0 {
			// The writer moves to the other broker once the victim's
			// lease runs out.
			if other := writer(w); other == w {
				t.Fatalf("writer stayed on killed broker %d", w)
			}
		}
		victim.Restart()
		victim.WaitReady(30 * time.Second)
	}
	time.Sleep(time.Second)
	close(stop)
	wg.Wait()

	// Everything a read_committed consumer sees in the topic.
	want := readCommitted(ctx, t, seeds, topic)
	if len(want) == 0 || plain.Load() == 0 || committed.Load() == 0 {
		t.Fatalf("too little produced: %d records in the topic, %d plain and %d transactional acknowledged", len(want), plain.Load(), committed.Load())
	}

	// The table catches up with the topic.
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		st, err := getTableStatus(procs[1], "default", topic)
		if err == nil && st.LagRecords == 0 && st.State == "running" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the table never caught up: %+v, %v\nbroker 1 log:\n%s\nbroker 2 log:\n%s", st, err, tail(procs[1].Log(), 4000), tail(procs[2].Log(), 4000))
		}
	}

	cat, err := rest.NewCatalog(ctx, "runnel", "http://"+procs[2].HTTP+"/iceberg")
	if err != nil {
		t.Fatal(err)
	}
	tbl, err := cat.LoadTable(ctx, table.Identifier{"default", topic})
	if err != nil {
		t.Fatal(err)
	}
	got := scanRows(ctx, t, tbl)
	var txnRows int
	for k, v := range got {
		if strings.HasPrefix(v, "txn-abort") {
			t.Errorf("row %v of an aborted transaction: %s", k, v)
		}
		if strings.HasPrefix(v, "txn-commit") {
			txnRows++
		}
		if want[k] != v {
			t.Errorf("row %v = %q, the topic holds %q", k, v, want[k])
		}
	}
	for k, v := range want {
		if _, ok := got[k]; !ok {
			t.Errorf("record %v (%s) missing from the table", k, v)
		}
	}
	if len(got) != len(want) || txnRows == 0 {
		t.Fatalf("table: %d rows (%d of committed transactions), topic: %d records", len(got), txnRows, len(want))
	}
	t.Logf("%d records, %d of committed transactions, exactly once after %d kills", len(got), txnRows, kills)
}

// readCommitted reads a topic as a read_committed consumer, until it has
// been idle for 3 s.
func readCommitted(ctx context.Context, t *testing.T, seeds []string, topic string) map[[2]int64]string {
	t.Helper()
	cl := newClient(t, seeds, kgo.ConsumeTopics(topic), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	out := map[[2]int64]string{}
	for {
		pctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		fs := cl.PollFetches(pctx)
		cancel()
		if pctx.Err() != nil && fs.NumRecords() == 0 {
			return out
		}
		fs.EachRecord(func(r *kgo.Record) {
			out[[2]int64{int64(r.Partition), r.Offset}] = string(r.Value)
		})
	}
}

// scanRows reads the table with iceberg-go's scanner; a (partition,
// offset) met twice fails the test.
func scanRows(ctx context.Context, t *testing.T, tbl *table.Table) map[[2]int64]string {
	t.Helper()
	at, err := tbl.Scan(table.WithSelectedFields("_partition", "_offset", "_value")).ToArrowTable(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer at.Release()
	rdr := array.NewTableReader(at, 4096)
	defer rdr.Release()
	out := map[[2]int64]string{}
	for rdr.Next() {
		rec := rdr.RecordBatch()
		idx := func(name string) int {
			is := rec.Schema().FieldIndices(name)
			if len(is) != 1 {
				t.Fatalf("no column %s in %v", name, rec.Schema())
			}
			return is[0]
		}
		parts := rec.Column(idx("_partition")).(*array.Int32)
		offs := rec.Column(idx("_offset")).(*array.Int64)
		vals := rec.Column(idx("_value")).(*array.Binary)
		for i := 0; i < int(rec.NumRows()); i++ {
			k := [2]int64{int64(parts.Value(i)), offs.Value(i)}
			if _, dup := out[k]; dup {
				t.Fatalf("row %v twice in the table", k)
			}
			out[k] = string(vals.Value(i))
		}
	}
	if err := rdr.Err(); err != nil && !errors.Is(err, net.ErrClosed) {
		t.Fatal(err)
	}
	return out
}

func ptrTo(s string) *string { return &s }
