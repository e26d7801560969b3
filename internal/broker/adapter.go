package broker

import (
	"context"

	"github.com/runnel-dev/runnel/internal/cluster"
	"github.com/runnel-dev/runnel/internal/groups"
	"github.com/runnel-dev/runnel/internal/protocol"
	"github.com/runnel-dev/runnel/internal/stream"
)

// logAdapter presents the storage engine as the protocol layer's Log. The
// two share their value types; only Produce differs: the handlers queue a
// produce in request order and wait for its results later.
type logAdapter struct{ *stream.Engine }

var _ protocol.Log = logAdapter{}

// The membership and the group coordinator serve the handlers directly; they
// do not import the Kafka front end, so their interfaces are checked here.
var (
	_ protocol.Cluster = (*cluster.Cluster)(nil)
	_ protocol.Groups  = (*groups.Coordinator)(nil)
)

func (a logAdapter) Produce(ctx context.Context, batches []protocol.ProduceBatch) func() []protocol.ProduceResult {
	pd := a.Enqueue(ctx, batches)
	return func() []protocol.ProduceResult { return pd.Wait(ctx) }
}
