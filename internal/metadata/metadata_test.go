package metadata

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	return addr
}

func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func testConfig(t *testing.T) EmbedConfig {
	t.Helper()
	return EmbedConfig{Dir: filepath.Join(t.TempDir(), "etcd"), Name: "runnel-test", ClientAddr: freeAddr(t), PeerAddr: freeAddr(t)}
}

func start(t *testing.T, cfg EmbedConfig, log *slog.Logger) *Embedded {
	t.Helper()
	e, err := StartEmbedded(testCtx(t), cfg, log)
	if err != nil {
		t.Fatalf("StartEmbedded: %v", err)
	}
	t.Cleanup(func() { _ = e.Close() })
	return e
}

func TestEmbeddedPutGetWatchRestart(t *testing.T) {
	ctx := testCtx(t)
	var logs bytes.Buffer
	cfg := testConfig(t)
	e := start(t, cfg, slog.New(slog.NewTextHandler(&logs, nil)))
	c := e.Client()

	// Register the watch before the put: the event may arrive before Put returns.
	wctx, wcancel := context.WithCancel(ctx)
	defer wcancel()
	wch := c.Watch(wctx, "runnel/", clientv3.WithPrefix())
	resp, err := c.Put(ctx, "runnel/a", "1")
	if err != nil {
		t.Fatal(err)
	}
	select {
	case w := <-wch:
		if err := w.Err(); err != nil {
			t.Fatal(err)
		}
		if len(w.Events) != 1 || string(w.Events[0].Kv.Key) != "runnel/a" || w.Events[0].Kv.ModRevision != resp.Header.Revision {
			t.Fatalf("watch got %+v", w.Events)
		}
	case <-ctx.Done():
		t.Fatal("no watch event")
	}
	get, err := c.Get(ctx, "runnel/a")
	if err != nil || len(get.Kvs) != 1 || string(get.Kvs[0].Value) != "1" {
		t.Fatalf("Get = %+v, %v", get, err)
	}

	// A large value up to the request limit goes through.
	big := strings.Repeat("x", 4<<20)
	if _, err := c.Put(ctx, "runnel/big", big); err != nil {
		t.Fatalf("4 MiB put: %v", err)
	}

	// Restart on the same directory keeps the data.
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	if err := e.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	e2 := start(t, cfg, nil)
	get, err = e2.Client().Get(ctx, "runnel/", clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil {
		t.Fatal(err)
	}
	if len(get.Kvs) != 2 {
		t.Fatalf("after restart %d keys, want 2", len(get.Kvs))
	}
	if strings.Contains(logs.String(), "level=INFO msg=\"embedded etcd ready\"") == false {
		t.Errorf("ready message not logged: %s", logs.String())
	}
	if strings.Contains(logs.String(), "component=etcd") {
		t.Errorf("etcd logged below error level or failed: %s", logs.String())
	}
}

func TestConnectSharesData(t *testing.T) {
	ctx := testCtx(t)
	e := start(t, testConfig(t), nil)
	tcp, err := Connect(ctx, []string{e.ClientURL()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tcp.Close()
	// host:port without scheme works as well.
	tcp2, err := Connect(ctx, []string{strings.TrimPrefix(e.ClientURL(), "http://")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tcp2.Close()

	if _, err := e.Client().Put(ctx, "k1", "from in-process"); err != nil {
		t.Fatal(err)
	}
	if _, err := tcp.Put(ctx, "k2", "from tcp"); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*clientv3.Client{e.Client(), tcp, tcp2} {
		for k, want := range map[string]string{"k1": "from in-process", "k2": "from tcp"} {
			r, err := c.Get(ctx, k)
			if err != nil || len(r.Kvs) != 1 || string(r.Kvs[0].Value) != want {
				t.Fatalf("Get(%s) = %+v, %v; want %q", k, r, err, want)
			}
		}
	}
	// A transaction of MaxTxnOps operations is accepted over TCP.
	ops := make([]clientv3.Op, maxTxnOps)
	for i := range ops {
		ops[i] = clientv3.OpPut("txn/"+strings.Repeat("k", 1+i%7)+string(rune('a'+i%26))+time.Duration(i).String(), "v")
	}
	if _, err := tcp.Txn(ctx).Then(ops...).Commit(); err != nil {
		t.Fatalf("txn of %d ops: %v", maxTxnOps, err)
	}
}

func TestMaintenance(t *testing.T) {
	ctx := testCtx(t)
	e := start(t, testConfig(t), nil)
	c := e.Client()
	var last int64
	for i := range 50 {
		r, err := c.Put(ctx, "m/key", strings.Repeat("v", 1000+i))
		if err != nil {
			t.Fatal(err)
		}
		last = r.Header.Revision
	}
	if err := Compact(ctx, c, last-1); err != nil {
		t.Fatal(err)
	}
	if err := Compact(ctx, c, last-10); err != nil {
		t.Fatalf("compacting an already compacted revision: %v", err)
	}
	if err := Compact(ctx, c, last+1000); err == nil {
		t.Fatal("compacting a future revision succeeded")
	}
	if err := Compact(ctx, c, 0); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("Compact(0) = %v", err)
	}
	if _, err := c.Get(ctx, "m/key", clientv3.WithRev(last-5)); err == nil {
		t.Fatal("read of a compacted revision succeeded")
	}
	size, err := DBSize(ctx, c, e.ClientURL())
	if err != nil || size <= 0 {
		t.Fatalf("DBSize = %d, %v", size, err)
	}
	if err := Defragment(ctx, c, []string{e.ClientURL()}); err != nil {
		t.Fatal(err)
	}
	tcp, err := Connect(ctx, []string{e.ClientURL()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tcp.Close()
	if err := Defragment(ctx, tcp, []string{e.ClientURL()}); err != nil {
		t.Fatalf("defragment over TCP: %v", err)
	}
	if size, err := DBSize(ctx, tcp, e.ClientURL()); err != nil || size <= 0 {
		t.Fatalf("DBSize over TCP = %d, %v", size, err)
	}
	if err := Defragment(ctx, c, nil); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("Defragment(nil) = %v", err)
	}
}

func TestErrors(t *testing.T) {
	ctx := testCtx(t)
	bad := []struct {
		name string
		cfg  EmbedConfig
	}{
		{"no dir", EmbedConfig{Name: "n", ClientAddr: "127.0.0.1:1", PeerAddr: "127.0.0.1:2"}},
		{"no name", EmbedConfig{Dir: t.TempDir(), ClientAddr: "127.0.0.1:1", PeerAddr: "127.0.0.1:2"}},
		{"bad client addr", EmbedConfig{Dir: t.TempDir(), Name: "n", ClientAddr: "nope", PeerAddr: "127.0.0.1:2"}},
		{"port zero", EmbedConfig{Dir: t.TempDir(), Name: "n", ClientAddr: "127.0.0.1:0", PeerAddr: "127.0.0.1:2"}},
		{"same addrs", EmbedConfig{Dir: t.TempDir(), Name: "n", ClientAddr: "127.0.0.1:5", PeerAddr: "127.0.0.1:5"}},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := StartEmbedded(ctx, tt.cfg, nil); !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("StartEmbedded = %v, want ErrInvalidConfig", err)
			}
		})
	}
	t.Run("client port in use", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		cfg := testConfig(t)
		cfg.ClientAddr = l.Addr().String()
		if _, err := StartEmbedded(ctx, cfg, nil); !errors.Is(err, ErrUnavailable) {
			t.Fatalf("StartEmbedded on a busy port = %v, want ErrUnavailable", err)
		}
	})
	t.Run("connect no endpoints", func(t *testing.T) {
		if _, err := Connect(ctx, nil, nil); !errors.Is(err, ErrInvalidConfig) {
			t.Fatalf("Connect(nil) = %v", err)
		}
	})
	t.Run("connect unreachable", func(t *testing.T) {
		cctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		defer cancel()
		if _, err := Connect(cctx, []string{freeAddr(t)}, nil); !errors.Is(err, ErrUnavailable) {
			t.Fatalf("Connect to a closed port = %v, want ErrUnavailable", err)
		}
	})
}
