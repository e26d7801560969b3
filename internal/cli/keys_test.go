package cli

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/runnel-dev/runnel/internal/objstore"
)

func writeKeyFile(t *testing.T, dir, name string) string {
	t.Helper()
	k := make([]byte, 32)
	_, _ = rand.Read(k)
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(base64.StdEncoding.EncodeToString(k)), 0o600); err != nil {
		t.Fatal(err)
	}
	return "file://" + filepath.ToSlash(path)
}

func TestKeysRewrap(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	keyA, keyB := writeKeyFile(t, dir, "a.key"), writeKeyFile(t, dir, "b.key")
	storeURL := "file://" + filepath.ToSlash(filepath.Join(dir, "objects"))
	want := map[string][]byte{
		"intake/0/1":             []byte("first record batch"),
		"topics/t/0/0":           bytes.Repeat([]byte("segment "), 20000),
		"checkpoints/0000000001": []byte("checkpoint"),
	}
	write := func(keys []string, names ...string) {
		t.Helper()
		s, err := objstore.OpenEncrypted(ctx, mustOpen(t, storeURL), keys)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		for _, n := range names {
			if err := s.Put(ctx, n, want[n]); err != nil {
				t.Fatal(err)
			}
		}
	}
	write([]string{keyA}, "intake/0/1", "topics/t/0/0")
	write([]string{keyB, keyA}, "checkpoints/0000000001")
	raw := func() map[string][]byte {
		out := map[string][]byte{}
		s := mustOpen(t, storeURL)
		defer s.Close()
		_ = s.List(ctx, "", func(o objstore.ObjectInfo) error {
			out[o.Key], _ = s.Get(ctx, o.Key)
			return nil
		})
		return out
	}

	cfgPath := filepath.Join(dir, "runnel.yaml")
	cfg := "object-store: " + storeURL + "\nencryption:\n  keys: [" + keyB + ", " + keyA + "]\n"
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}

	before := raw()
	out, err := runCLI(t, "", "keys", "rewrap", "--config", cfgPath, "--dry-run")
	if err != nil {
		t.Fatalf("dry run: %v\n%s", err, out)
	}
	for _, line := range []string{"dry run", "objects listed:           3", "under the newest key:     1", "to re-wrap:               2"} {
		if !strings.Contains(out, line) {
			t.Fatalf("dry run output lacks %q:\n%s", line, out)
		}
	}
	after := raw()
	if len(after) != len(before) {
		t.Fatalf("the dry run changed the store: %d objects, then %d", len(before), len(after))
	}
	for k, v := range before {
		if !bytes.Equal(after[k], v) {
			t.Fatalf("the dry run rewrote %s", k)
		}
	}

	out, err = runCLI(t, "", "keys", "rewrap", "--config", cfgPath)
	if err != nil {
		t.Fatalf("rewrap: %v\n%s", err, out)
	}
	for _, line := range []string{"re-wrapped:               2", "may leave encryption.keys"} {
		if !strings.Contains(out, line) {
			t.Fatalf("output lacks %q:\n%s", line, out)
		}
	}

	// The flags override the file; now only B is needed.
	out, err = runCLI(t, "", "keys", "rewrap", "--object-store", storeURL, "--key", keyB)
	if err != nil {
		t.Fatalf("rewrap with B alone: %v\n%s", err, out)
	}
	if !strings.Contains(out, "under the newest key:     3") {
		t.Fatalf("second pass output:\n%s", out)
	}
	s, err := objstore.OpenEncrypted(ctx, mustOpen(t, storeURL), []string{keyB})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for k, v := range want {
		if got, err := s.Get(ctx, k); err != nil || !bytes.Equal(got, v) {
			t.Fatalf("Get(%s) after rewrap: %v", k, err)
		}
	}

	out, err = runCLI(t, "", "keys", "id", "--key", keyA, "--key", keyB)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{keyA, keyB} {
		ring, err := objstore.LoadKeys(ctx, []string{k})
		if err != nil {
			t.Fatal(err)
		}
		if line := ring.Newest().String() + "  " + k; !strings.Contains(out, line) {
			t.Fatalf("keys id output lacks %q:\n%s", line, out)
		}
		_ = ring.Close()
	}

	if out, err := runCLI(t, "", "keys", "rewrap", "--object-store", storeURL); err == nil || !strings.Contains(err.Error(), "no key") {
		t.Fatalf("rewrap without keys: %v\n%s", err, out)
	}
}

func mustOpen(t *testing.T, url string) objstore.Store {
	t.Helper()
	s, err := objstore.Open(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
