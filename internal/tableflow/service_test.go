package tableflow

import (
	"context"
	"encoding/hex"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/table"
	"github.com/twmb/franz-go/pkg/kmsg"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/runnel-dev/runnel/internal/stream"
)

// fakeLeader names one broker the leader of everything.
type fakeLeader struct{ id atomic.Int32 }

func (f *fakeLeader) Leader([16]byte, int32) int32 { return f.id.Load() }

type serviceEnv struct {
	cat     *catalogEnv
	catalog *Catalog
	log     *stream.Engine
	leader  *fakeLeader
}

func newServiceEnv(t *testing.T) *serviceEnv {
	t.Helper()
	ce := newCatalogEnv(t)
	log, err := stream.Open(context.Background(), stream.Options{Client: ce.etcd.Client(), Store: ce.store, FlushLinger: time.Millisecond, DisableMaintenance: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { log.Close() })
	v := &serviceEnv{cat: ce, catalog: ce.open(t), log: log, leader: &fakeLeader{}}
	v.leader.id.Store(1)
	return v
}

func (v *serviceEnv) start(t *testing.T, encrypted bool) *Service {
	t.Helper()
	s := New(Options{Client: v.cat.etcd.Client(), Log: v.log, Catalog: v.catalog, Cluster: v.leader, BrokerID: 1,
		Encrypted: encrypted, CommitInterval: 50 * time.Millisecond, LeaseTTL: 2 * time.Second})
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func (v *serviceEnv) produce(t *testing.T, topic string, n int) {
	t.Helper()
	recs := make([]kmsg.Record, n)
	for i := range recs {
		recs[i] = kmsg.Record{Value: []byte("v")}
	}
	res := v.log.Produce(context.Background(), []stream.ProduceBatch{{Topic: topic, Records: stream.EncodeBatch(-1, -1, 0, time.Now().UnixMilli(), recs)}})
	if res[0].Err != nil {
		t.Fatal(res[0].Err)
	}
}

func (v *serviceEnv) rowCount(t *testing.T, ns, name string) int64 {
	t.Helper()
	tbl, err := v.catalog.LoadTable(context.Background(), table.Identifier{ns, name})
	if err != nil {
		return -1
	}
	at, err := tbl.Scan().ToArrowTable(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer at.Release()
	return at.NumRows()
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (v *serviceEnv) writer(t *testing.T, ns, name string) string {
	t.Helper()
	resp, err := v.cat.etcd.Client().Get(context.Background(), "/runnel/tableflow/writers/"+ns+"/"+name)
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Kvs) == 0 {
		return ""
	}
	return string(resp.Kvs[0].Value)
}

func TestServiceMaterialisesEnabledTopics(t *testing.T) {
	v := newServiceEnv(t)
	ctx := testCtx(t)
	if _, err := v.log.CreateTopic(ctx, "clicks.web", 2, map[string]string{"table.enabled": "true"}, false); err != nil {
		t.Fatal(err)
	}
	if _, err := v.log.CreateTopic(ctx, "plain", 1, nil, false); err != nil {
		t.Fatal(err)
	}
	s := v.start(t, false)
	// The table exists before any record.
	eventually(t, "the table", func() bool { return v.rowCount(t, "default", "clicks_web") == 0 })
	if n := v.rowCount(t, "default", "plain"); n != -1 {
		t.Fatalf("a table for a topic without table.enabled")
	}
	v.produce(t, "clicks.web", 10)
	eventually(t, "10 rows", func() bool { return v.rowCount(t, "default", "clicks_web") == 10 })
	if w := v.writer(t, "default", "clicks_web"); w != "1" {
		t.Fatalf("writer key %q", w)
	}
	eventually(t, "the published status", func() bool {
		st, err := s.Table(ctx, "default", "clicks_web")
		return err == nil && st.State == StateRunning && st.Writer == 1 && st.LagRecords == 0 && st.Files > 0 && st.Topic == "clicks.web"
	})
	all, err := s.Tables(ctx)
	if err != nil || len(all) != 1 {
		t.Fatalf("Tables = %v, %v", all, err)
	}

	// Leadership moves away: the writer gives the table up.
	v.leader.id.Store(2)
	eventually(t, "the writer key released", func() bool { return v.writer(t, "default", "clicks_web") == "" })
	v.leader.id.Store(1)
	eventually(t, "the writer key taken back", func() bool { return v.writer(t, "default", "clicks_web") == "1" })

	// table.enabled off: materialising stops, the table stays.
	off := "false"
	if err := v.log.AlterTopicConfigs(ctx, "clicks.web", []stream.ConfigChange{{Name: "table.enabled", Value: &off}}, false, false); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the writer key released", func() bool { return v.writer(t, "default", "clicks_web") == "" })
	v.produce(t, "clicks.web", 5)
	time.Sleep(300 * time.Millisecond)
	if n := v.rowCount(t, "default", "clicks_web"); n != 10 {
		t.Fatalf("%d rows after table.enabled=false, want the 10 from before", n)
	}
	st, err := s.Table(ctx, "default", "clicks_web")
	if err != nil || st.State != StateStopped || st.LagRecords != 5 {
		t.Fatalf("status %+v, %v", st, err)
	}
}

func TestServiceRefusesEncryptedStores(t *testing.T) {
	v := newServiceEnv(t)
	ctx := testCtx(t)
	if _, err := v.log.CreateTopic(ctx, "secret", 1, map[string]string{"table.enabled": "true"}, false); err != nil {
		t.Fatal(err)
	}
	s := v.start(t, true)
	var pub string
	eventually(t, "the refusal", func() bool {
		resp, err := v.cat.etcd.Client().Get(ctx, "/runnel/tableflow/status/default/secret")
		if err != nil || len(resp.Kvs) == 0 {
			return false
		}
		pub = string(resp.Kvs[0].Value)
		return true
	})
	if !strings.Contains(pub, `"state":"refused"`) || !strings.Contains(pub, "encryption") {
		t.Fatalf("status %s", pub)
	}
	if n := v.rowCount(t, "default", "secret"); n != -1 {
		t.Fatal("a table was created on an encrypted store")
	}
	// The refusal is what GET /tables shows.
	st, err := s.Table(ctx, "default", "secret")
	if err != nil || st.State != StateRefused {
		t.Fatalf("Table = %+v, %v", st, err)
	}
	all, err := s.Tables(ctx)
	if err != nil || len(all) != 1 || all[0].State != StateRefused || all[0].Topic != "secret" {
		t.Fatalf("Tables = %+v, %v", all, err)
	}
}

// A table whose writer key another broker still holds (it died and its
// lease has not run out) waits, then runs and says so.
func TestServiceWaitsForTheWriterKey(t *testing.T) {
	v := newServiceEnv(t)
	ctx := testCtx(t)
	cli := v.cat.etcd.Client()
	lease, err := cli.Grant(ctx, 60)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Put(ctx, "/runnel/tableflow/writers/default/orders", "2", clientv3.WithLease(lease.ID)); err != nil {
		t.Fatal(err)
	}
	if _, err := v.log.CreateTopic(ctx, "orders", 1, map[string]string{"table.enabled": "true"}, false); err != nil {
		t.Fatal(err)
	}
	s := v.start(t, false)
	v.produce(t, "orders", 3)
	eventually(t, "the wait in the status", func() bool {
		st, err := s.Table(ctx, "default", "orders")
		return err == nil && st.State == StateStopped && strings.Contains(st.Reason, "broker 2")
	})
	if n := v.rowCount(t, "default", "orders"); n != 0 {
		t.Fatalf("%d rows while another broker held the writer key (-1: no table), want an empty table", n)
	}
	if _, err := cli.Revoke(ctx, lease.ID); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the rows", func() bool { return v.rowCount(t, "default", "orders") == 3 })
	eventually(t, "the running state", func() bool {
		st, err := s.Table(ctx, "default", "orders")
		return err == nil && st.State == StateRunning && st.Reason == "" && st.Writer == 1
	})
}

// A topic with table.source=<ns>.<table> gets the rows of that table of
// the broker's own catalog.
func TestServiceRunsTableSources(t *testing.T) {
	v := newServiceEnv(t)
	ctx := testCtx(t)
	sc := iceberg.NewSchema(0,
		iceberg.NestedField{ID: 1, Name: "id", Type: iceberg.PrimitiveTypes.Int64, Required: true},
		iceberg.NestedField{ID: 2, Name: "name", Type: iceberg.PrimitiveTypes.String})
	tbl, err := v.catalog.CreateTable(ctx, TableSpec{Namespace: "default", Name: "people", Topic: "elsewhere",
		TopicID: stream.TopicID{9}, Schema: sc, Spec: *iceberg.UnpartitionedSpec})
	if err != nil {
		t.Fatal(err)
	}
	as, err := table.SchemaToArrowSchema(sc, nil, true, false)
	if err != nil {
		t.Fatal(err)
	}
	rec, _, err := array.RecordFromJSON(memory.DefaultAllocator, as, strings.NewReader(`[{"id":1,"name":"ada"},{"id":2,"name":"bob"},{"id":3,"name":null}]`))
	if err != nil {
		t.Fatal(err)
	}
	defer rec.Release()
	rdr, _ := array.NewRecordReader(as, []arrow.Record{rec})
	txn := tbl.NewTransaction()
	if err := txn.Append(ctx, rdr, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := txn.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := v.log.CreateTopic(ctx, "people", 1, map[string]string{"table.source": "default.people"}, false); err != nil {
		t.Fatal(err)
	}
	v.start(t, false)
	eventually(t, "3 records in the topic", func() bool {
		st, err := v.log.State("people", 0)
		return err == nil && st.HighWatermark == 3
	})
	// table.source removed: the source's progress goes with it.
	ti, _ := v.log.Topic("people")
	key := "/runnel/tableflow/sources/" + hex.EncodeToString(ti.ID[:])
	if resp, err := v.cat.etcd.Client().Get(ctx, key); err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("source progress %s: %v %v", key, resp, err)
	}
	if err := v.log.AlterTopicConfigs(ctx, "people", []stream.ConfigChange{{Name: "table.source", Value: nil}}, false, false); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the progress forgotten", func() bool {
		resp, err := v.cat.etcd.Client().Get(ctx, key)
		return err == nil && len(resp.Kvs) == 0
	})
}

// busyLog is a log whose change signal always fires, as the engine's does
// under load, and which counts how often the topics are listed.
type busyLog struct {
	Log
	listed atomic.Int64
}

func (b *busyLog) Changed() <-chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}

func (b *busyLog) Topics() []stream.TopicInfo {
	b.listed.Add(1)
	return b.Log.Topics()
}

// TestServiceLooksAtTopicsAtMostEveryGap checks that a log changing all
// the time does not make the service resolve every topic's configs on
// every change (it did, thousands of times a second under produce load).
func TestServiceLooksAtTopicsAtMostEveryGap(t *testing.T) {
	v := newServiceEnv(t)
	busy := &busyLog{Log: v.log}
	s := New(Options{Client: v.cat.etcd.Client(), Log: busy, Catalog: v.catalog, Cluster: v.leader, BrokerID: 1, LeaseTTL: 2 * time.Second})
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	time.Sleep(time.Second)
	if n := busy.listed.Load(); n < 2 || n > int64(time.Second/reconcileGap)+2 {
		t.Fatalf("the topics were listed %d times in a second of constant changes, want 2..%d", n, time.Second/reconcileGap+2)
	}
}
