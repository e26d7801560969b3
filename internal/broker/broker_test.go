package broker

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/runnel-dev/runnel/internal/config"
)

// freeAddr returns a loopback address that was free a moment ago and that
// no earlier call in this process returned: the kernel may hand the same
// ephemeral port to two listeners opened and closed in turn, and a
// configuration with one address twice (etcd client and peer) is refused.
func freeAddr(t *testing.T) string {
	t.Helper()
	handedOutMu.Lock()
	defer handedOutMu.Unlock()
	for {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		l.Close()
		if !handedOut[addr] {
			handedOut[addr] = true
			return addr
		}
	}
}

var (
	handedOutMu sync.Mutex
	handedOut   = map[string]bool{}
)

func testConfig(t *testing.T, dir string) config.Config {
	cfg := config.Default()
	cfg.DataDir = dir
	cfg.KafkaAddr = freeAddr(t)
	cfg.HTTPAddr = freeAddr(t)
	cfg.RegistryAddr = freeAddr(t)
	cfg.Etcd.ClientAddr = freeAddr(t)
	cfg.Etcd.PeerAddr = freeAddr(t)
	return cfg
}

// startBroker starts a broker on cfg. On its first start (an empty data
// directory) a listen address taken meanwhile by another process is
// replaced and the start retried, so cfg holds the addresses in use.
func startBroker(t *testing.T, cfg *config.Config) *Broker {
	t.Helper()
	for attempt := 0; ; attempt++ {
		fresh := true
		if entries, err := os.ReadDir(cfg.DataDir); err == nil && len(entries) > 0 {
			fresh = false
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		b, err := Start(ctx, *cfg, nil)
		cancel()
		if err == nil {
			t.Cleanup(func() { b.Close() })
			return b
		}
		if !fresh || attempt == 5 || !errors.Is(err, syscall.EADDRINUSE) {
			t.Fatal(err)
		}
		_ = os.RemoveAll(cfg.DataDir)
		cfg.KafkaAddr, cfg.HTTPAddr, cfg.RegistryAddr = freeAddr(t), freeAddr(t), freeAddr(t)
		cfg.Etcd.ClientAddr, cfg.Etcd.PeerAddr = freeAddr(t), freeAddr(t)
	}
}

// testEnv is a started broker with an admin client; ctx ends after the
// test's timeout.
type testEnv struct {
	cfg   config.Config
	b     *Broker
	ctx   context.Context
	cl    *kgo.Client
	admin *kadm.Client
}

// newTestEnv starts a broker on a fresh data directory, its config edited
// by mutate if set, and creates topics with the given partition count.
func newTestEnv(t *testing.T, timeout time.Duration, mutate func(*config.Config), partitions int32, topics ...string) *testEnv {
	t.Helper()
	env := &testEnv{cfg: testConfig(t, t.TempDir())}
	if mutate != nil {
		mutate(&env.cfg)
	}
	env.b = startBroker(t, &env.cfg)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	t.Cleanup(cancel)
	env.ctx = ctx
	cl, err := kgo.NewClient(kgo.SeedBrokers(env.b.KafkaAddr()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	env.cl, env.admin = cl, kadm.NewClient(cl)
	if len(topics) > 0 {
		if _, err := env.admin.CreateTopics(ctx, partitions, -1, nil, topics...); err != nil {
			t.Fatal(err)
		}
	}
	return env
}

func TestProduceConsumeGroupsAndRestart(t *testing.T) {
	env := newTestEnv(t, 60*time.Second, nil, 4, "events")
	cfg, b, ctx, admin := &env.cfg, env.b, env.ctx, env.admin

	prod, err := kgo.NewClient(kgo.SeedBrokers(b.KafkaAddr()), kgo.DefaultProduceTopic("events"), kgo.ProducerLinger(time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	const n = 2000
	for i := 0; i < n; i++ {
		prod.Produce(ctx, &kgo.Record{Key: []byte(fmt.Sprint(i % 17)), Value: []byte(fmt.Sprintf("value-%d", i))}, func(r *kgo.Record, err error) {
			if err != nil {
				t.Errorf("produce: %v", err)
			}
		})
	}
	if err := prod.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	prod.Close()

	consume := func(group string, want int) map[string]bool {
		t.Helper()
		cl, err := kgo.NewClient(kgo.SeedBrokers(b.KafkaAddr()), kgo.ConsumeTopics("events"), kgo.ConsumerGroup(group),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DisableAutoCommit())
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		seen := map[string]bool{}
		for len(seen) < want {
			fs := cl.PollFetches(ctx)
			if err := ctx.Err(); err != nil {
				t.Fatalf("consumed %d of %d: %v", len(seen), want, err)
			}
			fs.EachError(func(topic string, p int32, err error) { t.Fatalf("fetch %s/%d: %v", topic, p, err) })
			fs.EachRecord(func(r *kgo.Record) {
				if seen[string(r.Value)] {
					t.Fatalf("duplicate %s", r.Value)
				}
				seen[string(r.Value)] = true
			})
		}
		if err := cl.CommitUncommittedOffsets(ctx); err != nil {
			t.Fatal(err)
		}
		return seen
	}
	if got := consume("g1", n); len(got) != n {
		t.Fatalf("got %d records", len(got))
	}

	// Committed offsets and data survive a restart.
	b.Close()
	b = startBroker(t, cfg)
	adm2, _ := kgo.NewClient(kgo.SeedBrokers(b.KafkaAddr()))
	defer adm2.Close()
	admin = kadm.NewClient(adm2)
	offs, err := admin.FetchOffsets(ctx, "g1")
	if err != nil {
		t.Fatal(err)
	}
	var committed int64
	offs.Each(func(o kadm.OffsetResponse) { committed += o.At })
	if committed != n {
		t.Fatalf("committed offsets sum to %d, want %d", committed, n)
	}
	ends, err := admin.ListEndOffsets(ctx, "events")
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	ends.Each(func(o kadm.ListedOffset) { total += o.Offset })
	if total != n {
		t.Fatalf("end offsets sum to %d, want %d", total, n)
	}
	if got := consume("g2", n); len(got) != n {
		t.Fatalf("after restart got %d records", len(got))
	}
	lag, err := admin.Lag(ctx, "g1")
	if err != nil {
		t.Fatal(err)
	}
	lag.Each(func(l kadm.DescribedGroupLag) {
		if l.Lag.Total() != 0 {
			t.Fatalf("group %s lag %d", l.Group, l.Lag.Total())
		}
	})
	if err := b.Engine().ArchiveAll(ctx); err != nil {
		t.Fatal(err)
	}
	if got := consume("g3", n); len(got) != n {
		t.Fatalf("after archival got %d records", len(got))
	}
	if !strings.HasPrefix(b.HTTPAddr(), "127.0.0.1:") {
		t.Fatalf("http addr %s", b.HTTPAddr())
	}
}
