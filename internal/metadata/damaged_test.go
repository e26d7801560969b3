package metadata

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDamagedDataDirIsAnError: a member whose files were emptied (a full
// disk, an operator's mistake) fails to start with an error naming its
// directory; etcd's bootstrap dereferenced nil on such files and the
// process died with a goroutine dump.
func TestDamagedDataDirIsAnError(t *testing.T) {
	cfg := testConfig(t)
	e := start(t, cfg, nil)
	if _, err := e.Client().Put(testCtx(t), "runnel/a", "1"); err != nil {
		t.Fatal(err)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	err := filepath.WalkDir(cfg.Dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		return os.Truncate(p, 0)
	})
	if err != nil {
		t.Fatal(err)
	}
	cfg.ClientAddr, cfg.PeerAddr = freeAddr(t), freeAddr(t)
	e2, err := StartEmbedded(testCtx(t), cfg, nil)
	if err == nil {
		_ = e2.Close()
		t.Fatal("a member on emptied files started")
	}
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), cfg.Dir) {
		t.Fatalf("error %q: want ErrUnavailable naming %s", err, cfg.Dir)
	}
	t.Log(err)
}
