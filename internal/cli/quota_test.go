package cli

import (
	"context"
	"encoding/json"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/runnel-dev/runnel/internal/auth"
	"github.com/runnel-dev/runnel/internal/cluster/clustertest"
	"github.com/runnel-dev/runnel/internal/protocol"
)

// quotaCluster and quotaLog are the least a protocol server needs to answer
// Metadata with no topics; the quota APIs need nothing else from them.
type quotaCluster struct{ self protocol.Broker }

func (c quotaCluster) ClusterID() string                    { return "quota-test" }
func (c quotaCluster) Self() protocol.Broker                { return c.self }
func (c quotaCluster) Brokers() []protocol.Broker           { return []protocol.Broker{c.self} }
func (c quotaCluster) Leader(protocol.TopicID, int32) int32 { return c.self.NodeID }
func (c quotaCluster) ControllerID() int32                  { return c.self.NodeID }
func (quotaLog) Topics() []protocol.TopicInfo               { return nil }
func (quotaLog) Topic(string) (protocol.TopicInfo, bool)    { return protocol.TopicInfo{}, false }
func (quotaLog) TopicByID(protocol.TopicID) (protocol.TopicInfo, bool) {
	return protocol.TopicInfo{}, false
}

type quotaLog struct{ protocol.Log }

// startQuotaBroker serves the Kafka protocol with client quotas stored in
// an embedded etcd and returns its address.
func startQuotaBroker(t *testing.T) string {
	t.Helper()
	e := clustertest.Start(t)
	q := auth.NewQuotas(auth.QuotaOptions{Client: e.Client(), BrokerID: 1})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := q.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = q.Close() })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	host, port, _ := net.SplitHostPort(ln.Addr().String())
	p, _ := strconv.Atoi(port)
	srv := protocol.NewServer(protocol.Options{Log: quotaLog{}, Cluster: quotaCluster{protocol.Broker{NodeID: 1, Host: host, Port: int32(p)}}, Quotas: q})
	go func() { _ = srv.Serve(context.Background(), ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().String()
}

func TestQuotaCommands(t *testing.T) {
	addr := startQuotaBroker(t)
	run := func(args ...string) string {
		t.Helper()
		out, errOut, err := runLive(t, addr, args...)
		if err != nil {
			t.Fatalf("runnel %s: %v\n%s", strings.Join(args, " "), err, errOut)
		}
		return out
	}
	if out := run("quota", "set", "--user", "alice", "--producer-byte-rate", "1048576", "--add", "request_percentage=25.5"); !strings.Contains(out, "Set quotas of user=alice: producer_byte_rate=1048576 request_percentage=25.5") {
		t.Fatalf("set: %q", out)
	}
	run("quota", "set", "--user", "alice", "--client-id", "etl", "--consumer-byte-rate", "2048")
	run("quota", "set", "--client-id-default", "--controller-mutation-rate", "5")
	if out := run("quota", "set", "--user-default", "--producer-byte-rate", "7", "--validate-only"); !strings.Contains(out, "nothing was changed") {
		t.Fatalf("validate-only: %q", out)
	}

	want := strings.Join([]string{
		"USER   CLIENT-ID  QUOTA                     VALUE",
		"-      <default>  controller_mutation_rate  5",
		"alice  -          producer_byte_rate        1048576",
		"alice  -          request_percentage        25.5",
		"alice  etl        consumer_byte_rate        2048",
		"",
	}, "\n")
	if out := run("quota", "describe"); out != want {
		t.Fatalf("describe:\n%s\nwant:\n%s", out, want)
	}
	var js []quotaJSON
	if err := json.Unmarshal([]byte(run("quota", "describe", "--user", "alice", "--strict", "--json")), &js); err != nil {
		t.Fatal(err)
	}
	if len(js) != 1 || js[0].User == nil || *js[0].User != "alice" || js[0].ClientID != nil || js[0].Quotas["producer_byte_rate"] != 1048576 {
		t.Fatalf("describe --json: %+v", js)
	}
	if out := run("quota", "describe", "--any-client-id"); !strings.Contains(out, "<default>") || !strings.Contains(out, "etl") || strings.Contains(out, "request_percentage") {
		t.Fatalf("describe --any-client-id:\n%s", out)
	}

	if out := run("quota", "delete", "--user", "alice", "--key", "request_percentage"); !strings.Contains(out, "Deleted quotas of user=alice: request_percentage") {
		t.Fatalf("delete key: %q", out)
	}
	run("quota", "delete", "--user", "alice", "--client-id", "etl")
	want = strings.Join([]string{
		"USER   CLIENT-ID  QUOTA                     VALUE",
		"-      <default>  controller_mutation_rate  5",
		"alice  -          producer_byte_rate        1048576",
		"",
	}, "\n")
	if out := run("quota", "describe"); out != want {
		t.Fatalf("describe after delete:\n%s\nwant:\n%s", out, want)
	}

	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"quota", "set", "--user", "bob", "--producer-byte-rate", "-1"}, "must be greater than 0"},
		{[]string{"quota", "set", "--user", "bob", "--add", "bytes_per_fortnight=1"}, "Invalid configuration key"},
		{[]string{"quota", "set", "--producer-byte-rate", "1"}, "name the entity"},
		{[]string{"quota", "set", "--user", "bob"}, "give at least one quota"},
		{[]string{"quota", "set", "--user", "bob", "--user-default", "--producer-byte-rate", "1"}, "only one of --user"},
		{[]string{"quota", "delete", "--user", "nobody"}, "has no quotas"},
	} {
		_, _, err := runLive(t, addr, c.args...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("runnel %s: err = %v, want %q", strings.Join(c.args, " "), err, c.want)
		}
	}
}
