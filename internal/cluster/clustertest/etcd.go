// Package clustertest starts an embedded single-member etcd for tests of the
// packages that keep state in etcd (cluster, groups, stream, registry). It must only be
// imported from _test.go files.
package clustertest

import (
	"fmt"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.etcd.io/etcd/server/v3/etcdserver/api/v3client"
	"go.uber.org/zap"
)

// Etcd is a running embedded etcd member owned by one test.
type Etcd struct {
	t testing.TB
	e *embed.Etcd
}

// Start starts an etcd member in t.TempDir on free 127.0.0.1 ports and stops
// it when the test ends.
func Start(t testing.TB) *Etcd {
	t.Helper()
	cfg := embed.NewConfig()
	cfg.Name = "test"
	cfg.Dir = t.TempDir()
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.NewNop())
	cfg.TickMs = 10
	cfg.ElectionMs = 100
	// A free port can be taken by another test process between freeURL
	// closing it and etcd binding it: try again on new ports.
	var e *embed.Etcd
	var err error
	for attempt := 0; ; attempt++ {
		cfg.Dir = t.TempDir()
		clientURL := freeURL(t)
		peerURL := freeURL(t)
		cfg.ListenClientUrls = []url.URL{clientURL}
		cfg.AdvertiseClientUrls = []url.URL{clientURL}
		cfg.ListenPeerUrls = []url.URL{peerURL}
		cfg.AdvertisePeerUrls = []url.URL{peerURL}
		cfg.InitialCluster = fmt.Sprintf("%s=%s", cfg.Name, peerURL.String())
		e, err = embed.StartEtcd(cfg)
		if err == nil {
			break
		}
		if attempt == 4 || !strings.Contains(err.Error(), "address already in use") {
			t.Fatalf("clustertest: start etcd: %v", err)
		}
	}
	t.Cleanup(e.Close)
	select {
	case <-e.Server.ReadyNotify():
	case <-time.After(10 * time.Second):
		t.Fatalf("clustertest: etcd did not become ready")
	}
	return &Etcd{t: t, e: e}
}

// Client returns a new in-process client, closed when the test ends. Each
// simulated broker should use its own client.
func (e *Etcd) Client() *clientv3.Client {
	e.t.Helper()
	c := v3client.New(e.e.Server)
	e.t.Cleanup(func() { _ = c.Close() })
	return c
}

func freeURL(t testing.TB) url.URL {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("clustertest: free port: %v", err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	return url.URL{Scheme: "http", Host: addr}
}
