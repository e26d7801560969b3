package objstore_test

import (
	"fmt"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/runnel-dev/runnel/internal/objstore"
	"github.com/runnel-dev/runnel/internal/objstore/objstoretest"
)

// TestConformanceS3 runs the suite through Open("s3://...") and the real
// s3blob client against an in-process S3-compatible server on loopback.
func TestConformanceS3(t *testing.T) {
	backend := s3mem.New()
	srv := httptest.NewServer(gofakes3.New(backend).Server()) // binds 127.0.0.1
	t.Cleanup(srv.Close)

	// Static credentials from the environment; keep the SDK away from the
	// user's AWS files and from the instance metadata service.
	empty := filepath.Join(t.TempDir(), "none")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("AWS_ACCESS_KEY_ID", "test")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "test")
	t.Setenv("AWS_SESSION_TOKEN", "")
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_CONFIG_FILE", empty)
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", empty)
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")

	var n atomic.Int64
	objstoretest.Run(t, func(t *testing.T) objstore.Store {
		bucket := fmt.Sprintf("runnel-test-%d", n.Add(1))
		if err := backend.CreateBucket(bucket); err != nil {
			t.Fatal(err)
		}
		q := url.Values{
			"endpoint":       {srv.URL},
			"region":         {"us-east-1"},
			"use_path_style": {"true"},
		}
		return openURL(t, "s3://"+bucket+"?"+q.Encode())
	})
}
