package system

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/runnel-dev/runnel/test/harness"
)

// TestSecurityAcrossBrokers runs two brokers on one etcd and one encrypted
// object store, each with a PLAINTEXT and a SASL_PLAINTEXT listener, ACLs
// on. What one broker is told (a new SCRAM user, an ACL, its deletion)
// applies on the other within a second, to clients already connected;
// each listener's clients are told that listener's addresses of both
// brokers; records written through one broker are read through the other
// and appear in no file of the store.
func TestSecurityAcrossBrokers(t *testing.T) {
	dir := t.TempDir()
	shared := filepath.Join(dir, "objects")
	users := filepath.Join(dir, "users")
	key := filepath.Join(dir, "kek.key")
	if err := os.WriteFile(users, []byte("admin:admin-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(key, []byte(strings.Repeat("k", 32)), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf(`
sasl:
  mechanisms: [SCRAM-SHA-512]
  bootstrap-users-file: %s
authorization:
  enabled: true
  super-users: [User:admin]
encryption:
  keys: [file://%s]
`, users, key)
	listeners := []harness.Listener{{Name: "INTERNAL", SecurityProtocol: "PLAINTEXT"}, {Name: "SASL", SecurityProtocol: "SASL_PLAINTEXT"}}
	a := harness.Start(t, harness.Options{BrokerID: 1, ObjectStore: "file://" + shared, Listeners: listeners, Config: cfg})
	b := harness.Start(t, harness.Options{BrokerID: 2, ObjectStore: "file://" + shared, Listeners: listeners, Config: cfg, EtcdEndpoints: a.EtcdURL})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	as := func(user, pass string, seed *harness.Proc, opts ...kgo.Opt) *kgo.Client {
		t.Helper()
		return newClient(t, []string{seed.Listeners["SASL"]}, append([]kgo.Opt{
			kgo.SASL(scram.Auth{User: user, Pass: pass}.AsSha512Mechanism()), kgo.RetryTimeout(5 * time.Second),
		}, opts...)...)
	}
	adminB := kadm.NewClient(as("admin", "admin-secret", b))

	// Each listener's clients see that listener's addresses of both brokers.
	md, err := adminB.BrokerMetadata(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, br := range md.Brokers {
		got[fmt.Sprintf("%s:%d", br.Host, br.Port)] = true
	}
	if len(got) != 2 || !got[a.Listeners["SASL"]] || !got[b.Listeners["SASL"]] {
		t.Fatalf("metadata through B's SASL listener names %v, want both brokers' SASL addresses %s and %s",
			got, a.Listeners["SASL"], b.Listeners["SASL"])
	}

	// A user created through B authenticates on A.
	if _, err := adminB.AlterUserSCRAMs(ctx, nil, []kadm.UpsertSCRAM{{User: "carol", Mechanism: kadm.ScramSha512, Iterations: 4096, Password: "carol-secret"}}); err != nil {
		t.Fatal(err)
	}
	carolA := as("carol", "carol-secret", a, kgo.DisableIdempotentWrite())
	waitFor(ctx, t, "carol authenticates on A", func() error { return carolA.Ping(ctx) })

	if _, err := adminB.CreateTopic(ctx, 2, 1, nil, "orders"); err != nil {
		t.Fatal(err)
	}
	if _, err := adminB.CreateACLs(ctx, kadm.NewACLs().Allow("User:carol").AllowHosts("*").Topics("orders").Operations(kadm.OpDescribe)); err != nil {
		t.Fatal(err)
	}
	const marker = "runnel-secret-marker-7c1f"
	produce := func(cl *kgo.Client, v string) error {
		pctx, pcancel := context.WithTimeout(ctx, 5*time.Second)
		defer pcancel()
		return cl.ProduceSync(pctx, &kgo.Record{Topic: "orders", Value: []byte(v)}).FirstErr()
	}
	// The Describe ACL reaches A before carol is refused for lack of WRITE.
	waitFor(ctx, t, "carol's produce on A refused per topic", func() error {
		if err := produce(carolA, marker+"-denied"); !errors.Is(err, kerr.TopicAuthorizationFailed) {
			return fmt.Errorf("produce: %v, want TOPIC_AUTHORIZATION_FAILED", err)
		}
		return nil
	})
	// A grant made through B lets carol's connected client on A write
	// within a second.
	if _, err := adminB.CreateACLs(ctx, kadm.NewACLs().Allow("User:carol").AllowHosts("*").Topics("orders").Operations(kadm.OpWrite, kadm.OpRead)); err != nil {
		t.Fatal(err)
	}
	granted := time.Now()
	waitFor(ctx, t, "carol's produce on A after the grant through B", func() error { return produce(carolA, marker+"-1") })
	if took := time.Since(granted); took > 2*time.Second {
		t.Errorf("a grant through B took %s to apply on A", took)
	}

	// Read through B what was written through A (encrypted objects, one key).
	carolB := as("carol", "carol-secret", b, kgo.ConsumeTopics("orders"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	var values []string
	for len(values) == 0 && ctx.Err() == nil {
		fs := carolB.PollFetches(ctx)
		if err := fs.Err(); err != nil {
			t.Fatalf("fetch through B: %v", err)
		}
		fs.EachRecord(func(r *kgo.Record) { values = append(values, string(r.Value)) })
	}
	if len(values) != 1 || values[0] != marker+"-1" {
		t.Fatalf("read through B %q, want [%s-1]", values, marker)
	}

	// The PLAINTEXT listener is no way around the ACLs: it is anonymous.
	anon := newClient(t, []string{b.Listeners["INTERNAL"]}, kgo.DisableIdempotentWrite(), kgo.RetryTimeout(2*time.Second))
	if err := produce(anon, "anonymous"); !errors.Is(err, kerr.TopicAuthorizationFailed) {
		t.Fatalf("anonymous produce: %v, want TOPIC_AUTHORIZATION_FAILED", err)
	}

	// A deletion through A applies on B within a second.
	adminA := kadm.NewClient(as("admin", "admin-secret", a))
	del := kadm.NewACLs().Allow("User:carol").AllowHosts("*").Topics("orders").Operations(kadm.OpWrite).ResourcePatternType(kadm.ACLPatternLiteral)
	if _, err := adminA.DeleteACLs(ctx, del); err != nil {
		t.Fatal(err)
	}
	carolBProducer := as("carol", "carol-secret", b, kgo.DisableIdempotentWrite())
	revoked := time.Now()
	waitFor(ctx, t, "carol refused on B after the deletion through A", func() error {
		if err := produce(carolBProducer, marker+"-late"); !errors.Is(err, kerr.TopicAuthorizationFailed) {
			return fmt.Errorf("produce: %v, want TOPIC_AUTHORIZATION_FAILED", err)
		}
		return nil
	})
	if took := time.Since(revoked); took > 2*time.Second {
		t.Errorf("a deletion through A took %s to apply on B", took)
	}

	// Nothing in the shared store holds the marker in plaintext.
	err = filepath.Walk(shared, func(path string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if strings.Contains(string(data), marker) {
			return fmt.Errorf("%s holds the marker in plaintext", path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// waitFor retries fn every 50 ms until it succeeds or ctx ends.
func waitFor(ctx context.Context, t testing.TB, what string, fn func() error) {
	t.Helper()
	var err error
	for ctx.Err() == nil {
		if err = fn(); err == nil {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s: %v", what, err)
}
