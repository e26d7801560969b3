package portal_test

import (
	"os"
	"testing"

	"github.com/runnel-dev/runnel/test/harness"
)

func TestMain(m *testing.M) { os.Exit(harness.Main(m)) }
