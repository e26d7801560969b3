package cli

import (
	"context"
	"net"
	"strconv"
	"strings"
	"testing"

	"github.com/runnel-dev/runnel/internal/protocol"
	"github.com/runnel-dev/runnel/internal/telemetry/clientmetrics"
	"github.com/runnel-dev/runnel/internal/telemetry/clientmetrics/clientmetricstest"
)

func TestClientMetricsCommands(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	host, port, _ := net.SplitHostPort(ln.Addr().String())
	p, _ := strconv.Atoi(port)
	cm := clientmetricstest.New(clientmetrics.Options{})
	srv := protocol.NewServer(protocol.Options{Log: quotaLog{}, Cluster: quotaCluster{protocol.Broker{NodeID: 1, Host: host, Port: int32(p)}}, ClientMetrics: cm})
	go func() { _ = srv.Serve(context.Background(), ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	addr := ln.Addr().String()
	run := func(args ...string) string {
		t.Helper()
		out, errOut, err := runLive(t, addr, args...)
		if err != nil {
			t.Fatalf("runnel %s: %v\n%s", strings.Join(args, " "), err, errOut)
		}
		return out
	}
	if out := run("client-metrics", "set", "producers", "--metrics", "org.apache.kafka.producer.,org.apache.kafka.client.", "--interval", "30s", "--match", "client_id=etl-.*", "--match", "client_software_name=kgo"); !strings.Contains(out, "Set client metrics subscription producers: interval.ms=30000 match=client_id=etl-.*,client_software_name=kgo metrics=org.apache.kafka.producer.,org.apache.kafka.client.") {
		t.Fatalf("set: %q", out)
	}
	run("client-metrics", "set", "all", "--metrics", "*")
	run("client-metrics", "set", "producers", "--interval", "1m") // changes only the interval
	want := strings.Join([]string{
		"NAME       INTERVAL        METRICS                                              MATCH",
		"all        5m0s (default)  *                                                    -",
		"producers  1m0s            org.apache.kafka.producer.,org.apache.kafka.client.  client_id=etl-.*,client_software_name=kgo",
		"",
	}, "\n")
	if out := run("client-metrics", "list"); out != want {
		t.Fatalf("list:\n%s\nwant:\n%s", out, want)
	}
	if out := run("client-metrics", "delete", "all"); !strings.Contains(out, "Deleted client metrics subscription all") {
		t.Fatalf("delete: %q", out)
	}
	if out := run("client-metrics", "list"); strings.Contains(out, "all ") || !strings.Contains(out, "producers") {
		t.Fatalf("list after delete:\n%s", out)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"client-metrics", "set", "x", "--interval", "10ms"}, "interval must be between 100 and 3600000"},
		{[]string{"client-metrics", "set", "x", "--match", "client_rack=a"}, "illegal client matching pattern"},
		{[]string{"client-metrics", "set", "x"}, "give at least one of"},
		{[]string{"client-metrics", "delete", "nope"}, `no client metrics subscription "nope"`},
	} {
		_, errOut, err := runLive(t, addr, c.args...)
		if err == nil || !strings.Contains(err.Error()+errOut, c.want) {
			t.Fatalf("runnel %s: err %v %s, want %q", strings.Join(c.args, " "), err, errOut, c.want)
		}
	}
}
