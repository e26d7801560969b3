package broker

import (
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/runnel-dev/runnel/internal/tableflow"
)

func TestWarehouseBase(t *testing.T) {
	for _, c := range []struct{ name, raw, base, props string }{
		{"file", "file:///data/objects", "file:///data/objects", "map[]"},
		{"bare path", "/data/objects/", "file:///data/objects", "map[]"},
		{"s3", "s3://bucket?region=eu-west-1&endpoint=http://127.0.0.1:9000&use_path_style=true", "s3://bucket",
			"map[s3.endpoint:http://127.0.0.1:9000 s3.path-style-access:true s3.region:eu-west-1]"},
		{"s3 prefix", "s3://bucket/runnel?region=us-east-1", "s3://bucket/runnel", "map[s3.region:us-east-1]"},
		{"fault", "fault+file:///d?put_error_rate=0.1", "file:///d", "map[]"},
	} {
		t.Run(c.name, func(t *testing.T) {
			base, props, err := warehouseBase(c.raw)
			if err != nil || base != c.base || fmt.Sprint(props) != c.props {
				t.Fatalf("warehouseBase(%q) = %q, %v, %v; want %q, %s", c.raw, base, props, err, c.base, c.props)
			}
		})
	}
}

// A topic with table.enabled is materialised by the broker and its
// status served on GET /tables and GET /tables/{ns}/{name}.
func TestTableflowTopicStatus(t *testing.T) {
	env := newTestEnv(t, 60*time.Second, nil, 1)
	if _, err := env.admin.CreateTopic(env.ctx, 2, -1, map[string]*string{"table.enabled": ptr("true"), "table.commit.interval.ms": ptr("1000")}, "events"); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 20; i++ {
		if err := env.cl.ProduceSync(env.ctx, &kgo.Record{Topic: "events", Value: []byte(fmt.Sprint(i))}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	base := "http://" + env.b.HTTPAddr()
	var st tableflow.TableStatus
	deadline := time.Now().Add(30 * time.Second)
	for {
		if code := getJSON(t, base+"/tables/default/events", &st); code == http.StatusOK && st.Records == 20 && st.LagRecords == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("status never showed the 20 records: %+v", st)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if st.Topic != "events" || st.State != tableflow.StateRunning || st.Writer != env.cfg.BrokerID || st.Files == 0 || st.Mode != "append" {
		t.Fatalf("status %+v", st)
	}
	var all []tableflow.TableStatus
	if code := getJSON(t, base+"/tables", &all); code != http.StatusOK || len(all) != 1 || all[0].Name != "events" {
		t.Fatalf("GET /tables = %d %+v", code, all)
	}
	if code := getJSON(t, base+"/tables/default/nope", nil); code != http.StatusNotFound {
		t.Fatalf("unknown table: %d", code)
	}
	// The REST catalog is mounted under /iceberg.
	var load struct {
		Location string `json:"metadata-location"`
	}
	if code := getJSON(t, base+"/iceberg/v1/namespaces/default/tables/events", &load); code != http.StatusOK || load.Location == "" {
		t.Fatalf("GET /iceberg/v1/namespaces/default/tables/events = %d %+v", code, load)
	}
}

func ptr(s string) *string { return &s }

func getJSON(t *testing.T, url string, v any) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusOK && v != nil {
		if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
			t.Fatal(err)
		}
	}
	return resp.StatusCode
}
