package objstore_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"os"
	"path/filepath"
	"testing"

	"github.com/runnel-dev/runnel/internal/objstore"
	"github.com/runnel-dev/runnel/internal/objstore/objstoretest"
)

// kekFile writes a fresh base64 key file and returns its URL.
func kekFile(t *testing.T) string {
	t.Helper()
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	path := filepath.Join(t.TempDir(), "kek.key")
	if err := os.WriteFile(path, []byte(base64.StdEncoding.EncodeToString(key)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return "file://" + filepath.ToSlash(path)
}

func openEncrypted(t *testing.T, inner string, keys ...string) objstore.Store {
	t.Helper()
	s, err := objstore.OpenEncrypted(context.Background(), openURL(t, inner), keys)
	if err != nil {
		t.Fatalf("OpenEncrypted: %v", err)
	}
	return s
}

func TestConformanceEncryptedFile(t *testing.T) {
	objstoretest.Run(t, func(t *testing.T) objstore.Store {
		return openEncrypted(t, "file://"+filepath.ToSlash(filepath.Join(t.TempDir(), "objects")), kekFile(t))
	})
}

func TestConformanceEncryptedMem(t *testing.T) {
	objstoretest.Run(t, func(t *testing.T) objstore.Store {
		return openEncrypted(t, "mem://", kekFile(t))
	})
}

// TestConformanceEncryptedSecrets runs the suite with a gocloud.dev secrets
// keeper (base64key://) as the key-encryption key.
func TestConformanceEncryptedSecrets(t *testing.T) {
	objstoretest.Run(t, func(t *testing.T) objstore.Store {
		key := make([]byte, 32)
		_, _ = rand.Read(key)
		return openEncrypted(t, "mem://", "base64key://"+base64.URLEncoding.EncodeToString(key))
	})
}
