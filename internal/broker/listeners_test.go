package broker

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/runnel-dev/runnel/internal/auth/authtest"
	"github.com/runnel-dev/runnel/internal/config"
)

// TestListenersPlaintextAndMutualTLS: one broker with a PLAINTEXT and an
// SSL listener (client certificates required). A client of each listener
// produces and consumes, and Metadata tells each client its own
// listener's address.
func TestListenersPlaintextAndMutualTLS(t *testing.T) {
	dir := t.TempDir()
	ca := authtest.NewCA(t, dir, "ca")
	server := ca.Server(t, dir, "server")
	client := ca.Client(t, dir, "client", pkix.Name{CommonName: "app"})
	cfg := testConfig(t, dir)
	cfg.Listeners = []config.ListenerConfig{
		{Name: "INTERNAL", Addr: "127.0.0.1:0", SecurityProtocol: "PLAINTEXT"},
		{Name: "MTLS", Addr: "127.0.0.1:0", SecurityProtocol: "SSL"},
	}
	cfg.TLS = config.TLSConfig{CertFile: server.CertFile, KeyFile: server.KeyFile, ClientCAFile: ca.CertFile, ClientAuth: "required"}
	b := startBroker(t, &cfg)

	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	kp, err := tls.LoadX509KeyPair(client.CertFile, client.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	clients := map[string][]kgo.Opt{
		"INTERNAL": nil,
		"MTLS":     {kgo.DialTLSConfig(&tls.Config{RootCAs: roots, Certificates: []tls.Certificate{kp}})},
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for name, opts := range clients {
		addr := b.ListenerAddr(name)
		cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addr), kgo.AllowAutoTopicCreation()}, opts...)...)
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		md, err := kadm.NewClient(cl).BrokerMetadata(ctx)
		if err != nil {
			t.Fatalf("%s: metadata: %v", name, err)
		}
		if got := fmt.Sprintf("%s:%d", md.Brokers[0].Host, md.Brokers[0].Port); got != addr {
			t.Fatalf("%s: metadata names %s, want the listener's own %s", name, got, addr)
		}
		topic := "t-" + name
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte("v-" + name)}).FirstErr(); err != nil {
			t.Fatalf("%s: produce: %v", name, err)
		}
		cl.AddConsumeTopics(topic)
		fs := cl.PollFetches(ctx)
		if err := fs.Err(); err != nil {
			t.Fatalf("%s: fetch: %v", name, err)
		}
		if recs := fs.Records(); len(recs) != 1 || string(recs[0].Value) != "v-"+name {
			t.Fatalf("%s: consumed %v", name, recs)
		}
	}
}
