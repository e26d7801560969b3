package harness

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// RequireTool skips a test whose third-party client is unusable (check
// says why), or fails it when the environment variable
// RUNNEL_REQUIRE_CLIENTS is set: scripts/test installs the clients and
// sets it, so a missing one there is an error, not a skip.
func RequireTool(t testing.TB, name string, check func() error) {
	t.Helper()
	err := check()
	if err == nil {
		return
	}
	if os.Getenv("RUNNEL_REQUIRE_CLIENTS") != "" {
		t.Fatalf("%s is required (RUNNEL_REQUIRE_CLIENTS is set) but unusable: %v", name, err)
	}
	t.Skipf("%s not available (%v); run scripts/test to install it", name, err)
}

// ArtifactsDir is where a test keeps files worth looking at after it
// (screenshots): $RUNNEL_ARTIFACTS/<sub>/<test name> when that is set,
// else a new temporary directory that outlives the test. The test logs
// the path.
func ArtifactsDir(t testing.TB, sub string) string {
	t.Helper()
	name := strings.NewReplacer("/", "_", " ", "_").Replace(t.Name())
	var dir string
	if root := os.Getenv("RUNNEL_ARTIFACTS"); root != "" {
		dir = filepath.Join(root, sub, name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	} else {
		var err error
		if dir, err = os.MkdirTemp("", "runnel-"+sub+"-"); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("artifacts (screenshots) in %s", dir)
	return dir
}
