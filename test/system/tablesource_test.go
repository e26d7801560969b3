package system

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/catalog/hadoop"
	"github.com/apache/iceberg-go/table"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/runnel-dev/runnel/test/harness"
)

// TestTableSourceAcrossBrokerKill streams an Iceberg table that another
// writer (iceberg-go's Hadoop catalog, in a directory of its own) appends
// to into a topic with table.source, and kills the broker with SIGKILL
// twice: once while the source is producing a large append, once between
// appends (and the table grows while the broker is down). The topic ends
// with every row once, in the table's order.
func TestTableSourceAcrossBrokerKill(t *testing.T) {
	const topic = "from-table"
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	// The outside writer's table: id (long) and name (string).
	dir := t.TempDir()
	cat, err := hadoop.NewCatalog("outside", dir, iceberg.Properties{})
	if err != nil {
		t.Fatal(err)
	}
	if err := cat.CreateNamespace(ctx, table.Identifier{"ext"}, nil); err != nil {
		t.Fatal(err)
	}
	sc := iceberg.NewSchema(0,
		iceberg.NestedField{ID: 1, Name: "id", Type: iceberg.PrimitiveTypes.Int64, Required: true},
		iceberg.NestedField{ID: 2, Name: "name", Type: iceberg.PrimitiveTypes.String})
	ident := table.Identifier{"ext", "rows"}
	if _, err := cat.CreateTable(ctx, ident, sc); err != nil {
		t.Fatal(err)
	}
	next := 0
	appendRows := func(n int) {
		t.Helper()
		tbl, err := cat.LoadTable(ctx, ident)
		if err != nil {
			t.Fatal(err)
		}
		asc, err := table.SchemaToArrowSchema(tbl.Schema(), nil, false, false)
		if err != nil {
			t.Fatal(err)
		}
		rows := make([]string, n)
		for i := range rows {
			rows[i] = fmt.Sprintf(`{"id": %d, "name": "row-%d"}`, next, next)
			next++
		}
		at, err := array.TableFromJSON(memory.DefaultAllocator, asc, []string{"[" + strings.Join(rows, ",") + "]"})
		if err != nil {
			t.Fatal(err)
		}
		defer at.Release()
		if _, err := tbl.AppendTable(ctx, at, int64(n), nil); err != nil {
			t.Fatal(err)
		}
	}
	appendRows(100)

	etcdURL := startEtcd(t)
	b := harness.Start(t, harness.Options{BrokerID: 1, ObjectStore: "file://" + t.TempDir(), EtcdEndpoints: etcdURL,
		Config: "etcd:\n  lease-ttl: 2s\n"})
	seeds := []string{b.Kafka}
	admin := newClient(t, seeds)
	createTopic(ctx, t, admin, topic, 1, map[string]*string{
		"table.source": ptrTo("file://" + filepath.Join(dir, "ext", "rows")), "retention.ms": ptrTo("-1")})

	// ids reads the whole topic and returns the rows' ids in offset order.
	ids := func() []int {
		t.Helper()
		cl := newClient(t, seeds, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
			kgo.FetchIsolationLevel(kgo.ReadCommitted()))
		defer cl.Close()
		var out []int
		for {
			pctx, pcancel := context.WithTimeout(ctx, 3*time.Second)
			fs := cl.PollFetches(pctx)
			pcancel()
			if fs.NumRecords() == 0 {
				return out
			}
			fs.EachRecord(func(r *kgo.Record) {
				var row struct {
					ID   int    `json:"id"`
					Name string `json:"name"`
				}
				if err := json.Unmarshal(r.Value, &row); err != nil {
					t.Fatalf("record %d: %q is not a JSON row: %v", r.Offset, r.Value, err)
				}
				if row.Name != fmt.Sprintf("row-%d", row.ID) {
					t.Fatalf("record %d: %q", r.Offset, r.Value)
				}
				out = append(out, row.ID)
			})
		}
	}
	waitFor := func(n int) []int {
		t.Helper()
		var got []int
		for deadline := time.Now().Add(45 * time.Second); time.Now().Before(deadline); time.Sleep(250 * time.Millisecond) {
			if got = ids(); len(got) >= n {
				return got
			}
		}
		t.Fatalf("the topic holds %d rows, want %d\n%s", len(got), n, b.Log())
		return nil
	}
	check := func(got []int, n int) {
		t.Helper()
		if len(got) != n {
			t.Fatalf("the topic holds %d rows, want %d", len(got), n)
		}
		for i, id := range got {
			if id != i {
				t.Fatalf("record %d is row %d: rows duplicated, lost or out of order (first ids %v)", i, id, got[:min(len(got), 20)])
			}
		}
	}
	check(waitFor(100), 100)

	// A large append, and the broker killed while it is being produced.
	appendRows(20000)
	end := func() int64 {
		ends, err := kadm.NewClient(admin).ListEndOffsets(ctx, topic)
		if err != nil {
			return -1
		}
		o, _ := ends.Lookup(topic, 0)
		return o.Offset
	}
	for deadline := time.Now().Add(30 * time.Second); end() <= 100; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the source produced nothing of the large append\n%s", b.Log())
		}
	}
	at := end()
	b.Kill()
	t.Logf("broker killed while producing the large append, with %d of 20100 rows in the topic", at)
	appendRows(50) // the table grows while the broker is down
	b.Restart()
	b.WaitReady(30 * time.Second)
	check(waitFor(20150), 20150)

	// Killed between appends, then one more append after the restart.
	b.Kill()
	b.Restart()
	b.WaitReady(30 * time.Second)
	appendRows(25)
	check(waitFor(20175), 20175)
}
