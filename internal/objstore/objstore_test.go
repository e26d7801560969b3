package objstore_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/runnel-dev/runnel/internal/objstore"
	"github.com/runnel-dev/runnel/internal/objstore/objstoretest"
)

func openURL(t *testing.T, url string) objstore.Store {
	t.Helper()
	s, err := objstore.Open(context.Background(), url)
	if err != nil {
		t.Fatalf("Open(%q): %v", url, err)
	}
	return s
}

func TestConformanceFile(t *testing.T) {
	objstoretest.Run(t, func(t *testing.T) objstore.Store {
		return openURL(t, "file://"+filepath.ToSlash(filepath.Join(t.TempDir(), "objects")))
	})
}

func TestConformanceFilePlainPath(t *testing.T) {
	objstoretest.Run(t, func(t *testing.T) objstore.Store {
		return openURL(t, filepath.Join(t.TempDir(), "a", "b"))
	})
}

func TestConformanceMem(t *testing.T) {
	objstoretest.Run(t, func(t *testing.T) objstore.Store {
		return openURL(t, "mem://")
	})
}

func TestOpenErrors(t *testing.T) {
	tests := []struct {
		name, url string
	}{
		{"empty", ""},
		{"unknown scheme", "ftp://host/dir"},
		{"file with host", "file://otherhost/dir"},
		{"file with query", "file:///tmp/x?metadata=skip"},
		{"file without dir", "file://"},
		{"s3 without bucket", "s3://"},
		{"gs without bucket", "gs://"},
		{"bad url", "s3://bucket/%zz"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := objstore.Open(context.Background(), tt.url)
			if err == nil {
				_ = s.Close()
				t.Fatalf("Open(%q) succeeded", tt.url)
			}
			if !errors.Is(err, objstore.ErrUnsupportedURL) {
				t.Fatalf("Open(%q) = %v, want ErrUnsupportedURL", tt.url, err)
			}
		})
	}
}
