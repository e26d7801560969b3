package broker

import (
	"testing"

	"github.com/runnel-dev/runnel/internal/config"
	"github.com/runnel-dev/runnel/internal/protocol"
	"github.com/runnel-dev/runnel/internal/stream"
)

// TestRuntimeMemoryLimitLeavesRoomAboveWhatTheBrokerKeeps: the soft limit
// the broker sets must leave memory-limit free above the read cache and the
// free lists, which are full at any high rate. The limit used to be the
// cache plus memory-limit alone, 400 MiB, below the 416 MiB the broker
// keeps by design, and the collector ran several times a second.
func TestRuntimeMemoryLimitLeavesRoomAboveWhatTheBrokerKeeps(t *testing.T) {
	for _, cache := range []int64{0, 1 << 30} {
		cfg := config.Default()
		cfg.Cache.MemoryBytes = cache
		kept := cfg.CacheBytes() + protocol.PooledBytes() + stream.PooledBytes()
		if got, want := runtimeMemoryLimit(cfg), kept+cfg.MemoryLimit; got < want {
			t.Errorf("cache %d: runtime limit %d MiB leaves %d MiB above the %d MiB kept by design, want memory-limit's %d MiB",
				cfg.CacheBytes(), got>>20, (got-kept)>>20, kept>>20, cfg.MemoryLimit>>20)
		}
	}
	cfg := config.Default()
	cfg.MemoryLimit = 0
	if got := runtimeMemoryLimit(cfg); got != 0 {
		t.Errorf("memory-limit 0 gives runtime limit %d, want none", got)
	}
}
