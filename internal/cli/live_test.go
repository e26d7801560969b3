package cli

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/runnel-dev/runnel/internal/broker"
	"github.com/runnel-dev/runnel/internal/config"
)

// freeAddr returns a 127.0.0.1 address nobody listens on right now.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// startBroker starts an in-process single-node broker (embedded etcd, file
// object store in a temporary directory) and returns its Kafka address. A
// listen address taken between picking and binding is replaced and the
// start retried.
func startBroker(t *testing.T) string {
	t.Helper()
	return startBrokerWith(t, nil).KafkaAddr()
}

// startBrokerWith is startBroker with the configuration edited by mutate.
func startBrokerWith(t *testing.T, mutate func(*config.Config)) *broker.Broker {
	t.Helper()
	for attempt := 0; ; attempt++ {
		cfg := config.Default()
		cfg.DataDir = t.TempDir()
		cfg.KafkaAddr, cfg.HTTPAddr, cfg.RegistryAddr = freeAddr(t), freeAddr(t), freeAddr(t)
		cfg.Etcd.ClientAddr, cfg.Etcd.PeerAddr = freeAddr(t), freeAddr(t)
		if mutate != nil {
			mutate(&cfg)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		b, err := broker.Start(ctx, cfg, nil)
		cancel()
		if err == nil {
			t.Cleanup(func() { b.Close() })
			return b
		}
		if attempt == 5 || !errors.Is(err, syscall.EADDRINUSE) {
			t.Fatal(err)
		}
		_ = os.RemoveAll(cfg.DataDir)
	}
}

// liveRoot returns the command tree pointed at addr.
func liveRoot(t *testing.T, addr string) *cobra.Command {
	t.Helper()
	t.Setenv(envBrokers, addr)
	return NewRootCommand()
}

// runLive runs args against the broker at addr and returns standard
// output, standard error and the command's error.
func runLive(t *testing.T, addr string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	root := liveRoot(t, addr)
	var out, errOut bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetIn(strings.NewReader(""))
	root.SetArgs(args)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	err = root.ExecuteContext(ctx)
	return out.String(), errOut.String(), err
}

// testAdmin returns an admin client for addr, closed when the test ends.
func testAdmin(t *testing.T, addr string) *kadm.Client {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return kadm.NewClient(cl)
}

// createTopic creates topic with partitions partitions on addr.
func createTopic(t *testing.T, ctx context.Context, adm *kadm.Client, topic string, partitions int32) {
	t.Helper()
	resp, err := adm.CreateTopic(ctx, partitions, -1, nil, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		t.Fatalf("create topic %s: %v", topic, err)
	}
}
