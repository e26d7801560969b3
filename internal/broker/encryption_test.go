package broker

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/runnel-dev/runnel/internal/config"
	"github.com/runnel-dev/runnel/internal/objstore"
)

func writeKEK(t *testing.T, dir, name string) string {
	t.Helper()
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, key, 0o600); err != nil {
		t.Fatal(err)
	}
	return "file://" + filepath.ToSlash(path)
}

func keyIDOf(t *testing.T, url string) string {
	t.Helper()
	ring, err := objstore.LoadKeys(context.Background(), []string{url})
	if err != nil {
		t.Fatal(err)
	}
	defer ring.Close()
	return ring.Newest().String()
}

// filesContaining returns the files under dir whose bytes contain marker,
// and how many files it read.
func filesContaining(t *testing.T, dir string, marker []byte) ([]string, int) {
	t.Helper()
	var hits []string
	n := 0
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		n++
		if bytes.Contains(b, marker) {
			hits = append(hits, path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return hits, n
}

// TestEncryptionAtRest produces a marker, archives and checkpoints, and
// finds the marker in no file of the object store; the broker restarts
// with the key, refuses to start without it, and after a rotation and a
// rewrap reads every record with the new key alone.
func TestEncryptionAtRest(t *testing.T) {
	keys := t.TempDir()
	keyA, keyB := writeKEK(t, keys, "a.key"), writeKEK(t, keys, "b.key")
	idA := keyIDOf(t, keyA)
	mark := make([]byte, 8)
	_, _ = rand.Read(mark)
	marker := "runnel-marker-" + hex.EncodeToString(mark)

	// The checker finds a marker where there is one.
	plain := t.TempDir()
	if err := os.WriteFile(filepath.Join(plain, "obj"), []byte("xx"+marker+"yy"), 0o644); err != nil {
		t.Fatal(err)
	}
	if hits, _ := filesContaining(t, plain, []byte(marker)); len(hits) != 1 {
		t.Fatalf("the checker missed a planted marker: %v", hits)
	}

	env := newTestEnv(t, 120*time.Second, func(c *config.Config) { c.Encryption.Keys = []string{keyA} }, 2, "secrets")
	cfg, ctx := &env.cfg, env.ctx
	produce := func(b *Broker, from, n int) { t.Helper(); produceMarked(t, ctx, b, marker, from, n) }
	consumeAll := func(b *Broker, n int) { t.Helper(); consumeMarked(t, ctx, b, marker, n) }
	archive := func(b *Broker) { t.Helper(); archiveAndCheckpoint(t, ctx, b) }
	objects := filepath.Join(cfg.DataDir, "objects")
	noMarker := func() {
		t.Helper()
		hits, n := filesContaining(t, objects, []byte(marker))
		if len(hits) > 0 {
			t.Fatalf("the marker is in plaintext in %d of %d files, e.g. %v", len(hits), n, hits[:min(3, len(hits))])
		}
		for _, dir := range []string{"topics", "checkpoints", "keys"} {
			if entries, err := os.ReadDir(filepath.Join(objects, dir)); err != nil || len(entries) == 0 {
				t.Fatalf("no objects under %s (%v): nothing was archived or checkpointed", dir, err)
			}
		}
		t.Logf("%d files in the object store, none holds the marker", n)
	}

	b := env.b
	produce(b, 0, 100)
	archive(b)
	produce(b, 100, 20) // left in intake objects
	noMarker()
	consumeAll(b, 120)
	b.Close()

	// Restart with the key: every record reads back.
	b = startBroker(t, cfg)
	consumeAll(b, 120)
	b.Close()

	// Without the key, or with another key only, start-up fails and says
	// which key is missing.
	for _, keys := range [][]string{nil, {keyB}} {
		c := *cfg
		c.Encryption.Keys = keys
		sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		bad, err := Start(sctx, c, nil)
		cancel()
		if err == nil {
			bad.Close()
			t.Fatalf("started with keys %v on a store encrypted with %s", keys, idA)
		}
		if !strings.Contains(err.Error(), idA) || !strings.Contains(err.Error(), "encryption") {
			t.Fatalf("start-up with keys %v: %v; want an error naming key id %s", keys, err, idA)
		}
		t.Logf("start-up with keys %v: %v", keys, err)
	}

	// Rotation: B wraps new data keys, A still unwraps.
	cfg.Encryption.Keys = []string{keyB, keyA}
	b = startBroker(t, cfg)
	consumeAll(b, 120)
	produce(b, 120, 30)
	archive(b)
	noMarker()
	b.Close()

	// Rewrap moves every object to B; then A can go.
	inner, err := objstore.Open(ctx, cfg.ObjectStoreURL())
	if err != nil {
		t.Fatal(err)
	}
	ring, err := objstore.LoadKeys(ctx, cfg.Encryption.Keys)
	if err != nil {
		t.Fatal(err)
	}
	es, err := objstore.NewEncryptedStore(ctx, inner, ring, objstore.EncryptOptions{})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := es.Rewrap(ctx, objstore.RewrapOptions{})
	if err != nil {
		t.Fatal(err)
	}
	es.Close()
	if rep.Rewrapped == 0 || len(rep.Retired) != 1 || rep.Retired[0].String() != idA || len(rep.Unconfigured) != 0 {
		t.Fatalf("rewrap report %+v", rep)
	}
	cfg.Encryption.Keys = []string{keyB}
	b = startBroker(t, cfg)
	consumeAll(b, 150)
}

// produceMarked produces records "<marker>-<i>" keyed i, uncompressed so
// that the marker would show in any object holding them in plaintext.
func produceMarked(t *testing.T, ctx context.Context, b *Broker, marker string, from, n int) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.KafkaAddr()), kgo.DefaultProduceTopic("secrets"),
		kgo.ProducerBatchCompression(kgo.NoCompression()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for i := from; i < from+n; i++ {
		r := &kgo.Record{Key: []byte(fmt.Sprint(i)), Value: []byte(fmt.Sprintf("%s-%d", marker, i))}
		if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
}

// consumeMarked reads n distinct records of produceMarked back.
func consumeMarked(t *testing.T, ctx context.Context, b *Broker, marker string, n int) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.KafkaAddr()), kgo.ConsumeTopics("secrets"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	seen := map[string]bool{}
	for len(seen) < n {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("consumed %d of %d: %v", len(seen), n, err)
		}
		fs.EachError(func(topic string, p int32, err error) { t.Fatalf("fetch %s/%d: %v", topic, p, err) })
		fs.EachRecord(func(r *kgo.Record) {
			if want := fmt.Sprintf("%s-%s", marker, r.Key); string(r.Value) != want {
				t.Fatalf("record %s = %q, want %q", r.Key, r.Value, want)
			}
			seen[string(r.Key)] = true
		})
	}
}

func archiveAndCheckpoint(t *testing.T, ctx context.Context, b *Broker) {
	t.Helper()
	if err := b.Engine().ArchiveAll(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Engine().Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestEncryptionTurnedOn: a store written without encryption stays
// readable once encryption is turned on, and a rewrap with
// EncryptPlaintext leaves no plaintext behind.
func TestEncryptionTurnedOn(t *testing.T) {
	marker := "runnel-plain-marker-" + fmt.Sprint(time.Now().UnixNano())
	env := newTestEnv(t, 120*time.Second, nil, 2, "secrets")
	cfg, ctx, b := &env.cfg, env.ctx, env.b
	produceMarked(t, ctx, b, marker, 0, 50)
	archiveAndCheckpoint(t, ctx, b)
	produceMarked(t, ctx, b, marker, 50, 10)
	b.Close()
	objects := filepath.Join(cfg.DataDir, "objects")
	if hits, _ := filesContaining(t, objects, []byte(marker)); len(hits) == 0 {
		t.Fatal("no plaintext object holds the marker before encryption is on")
	}

	cfg.Encryption.Keys = []string{writeKEK(t, t.TempDir(), "k.key")}
	b = startBroker(t, cfg)
	consumeMarked(t, ctx, b, marker, 60)
	produceMarked(t, ctx, b, marker, 60, 10)
	archiveAndCheckpoint(t, ctx, b)
	consumeMarked(t, ctx, b, marker, 70)
	b.Close()

	inner, err := objstore.Open(ctx, cfg.ObjectStoreURL())
	if err != nil {
		t.Fatal(err)
	}
	ring, err := objstore.LoadKeys(ctx, cfg.Encryption.Keys)
	if err != nil {
		t.Fatal(err)
	}
	es, err := objstore.NewEncryptedStore(ctx, inner, ring, objstore.EncryptOptions{})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := es.Rewrap(ctx, objstore.RewrapOptions{EncryptPlaintext: true})
	es.Close()
	if err != nil || rep.Encrypted == 0 {
		t.Fatalf("rewrap: %+v, %v", rep, err)
	}
	if hits, n := filesContaining(t, objects, []byte(marker)); len(hits) > 0 {
		t.Fatalf("after encrypting the plaintext objects the marker is in %d of %d files", len(hits), n)
	}
	b = startBroker(t, cfg)
	consumeMarked(t, ctx, b, marker, 70)
}
