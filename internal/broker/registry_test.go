package broker

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/sr"
)

// TestSchemaRegistryServedAndDurable registers schemas of every format
// through the broker's registry listener with franz-go's sr client, and
// finds them with the same ids after a restart.
func TestSchemaRegistryServedAndDurable(t *testing.T) {
	env := newTestEnv(t, 60*time.Second, nil, 1)
	cfg, ctx := &env.cfg, env.ctx
	client := func(addr string) *sr.Client {
		t.Helper()
		c, err := sr.NewClient(sr.URLs("http://" + addr))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	c := client(env.b.RegistryAddr())
	schemas := map[string]sr.Schema{
		"orders-value":  {Type: sr.TypeAvro, Schema: `{"type":"record","name":"Order","fields":[{"name":"id","type":"long"},{"name":"sku","type":"string"}]}`},
		"events-value":  {Type: sr.TypeProtobuf, Schema: "syntax = \"proto3\";\npackage shop;\nmessage Event { string name = 1; int64 at = 2; }\n"},
		"profile-value": {Type: sr.TypeJSON, Schema: `{"type":"object","properties":{"name":{"type":"string"}},"required":["name"]}`},
	}
	ids := map[string]int{}
	for subject, s := range schemas {
		ss, err := c.CreateSchema(ctx, subject, s)
		if err != nil {
			t.Fatalf("register %s: %v", subject, err)
		}
		ids[subject] = ss.ID
	}
	// An incompatible Avro change is refused under the default BACKWARD.
	bad := sr.Schema{Type: sr.TypeAvro, Schema: `{"type":"record","name":"Order","fields":[{"name":"id","type":"long"},{"name":"sku","type":"string"},{"name":"qty","type":"int"}]}`}
	if _, err := c.CreateSchema(ctx, "orders-value", bad); err == nil {
		t.Fatal("an incompatible schema (new field without a default) was registered")
	}

	env.b.Close()
	b := startBroker(t, cfg)
	c = client(b.RegistryAddr())
	for subject, id := range ids {
		ss, err := c.SchemaByVersion(context.Background(), subject, -1)
		if err != nil || ss.ID != id {
			t.Fatalf("after restart %s: id %d (want %d), %v", subject, ss.ID, id, err)
		}
	}
}
