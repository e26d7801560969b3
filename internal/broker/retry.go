package broker

import (
	"context"
	"fmt"
	"maps"

	"github.com/runnel-dev/runnel/internal/config"
	"github.com/runnel-dev/runnel/internal/groups"
	"github.com/runnel-dev/runnel/internal/protocol"
	"github.com/runnel-dev/runnel/internal/retry"
	"github.com/runnel-dev/runnel/internal/stream"
)

var _ retry.Log = (*stream.Engine)(nil)

var _ retry.TableLog = (*stream.Engine)(nil)

// retryOptions puts the retry service behind the front end's GROUP
// configs: a change that gives a group a retry policy (errors.retry.*)
// creates or updates its topics before the change is answered. It starts
// the parked-keys tables of the ordered groups this broker coordinates.
func (b *Broker) retryOptions(o *protocol.Options) {
	if o.GroupConfigs == nil {
		return
	}
	o.GroupConfigs = retryConfigs{GroupConfigs: o.GroupConfigs, svc: retry.New(retry.Options{Log: b.engine, Logger: b.log})}
	b.retries = retry.NewTables(retry.TablesOptions{
		Log:         b.engine,
		Offsets:     retryOffsets{c: b.groups, self: b.cfg.BrokerID},
		GroupConfig: o.GroupConfigs.GroupConfig,
		Logger:      b.log,
		Metrics:     b.metrics(),
	})
	b.retries.Start()
}

// retryOffsets are the committed offsets of the groups this broker
// coordinates, as the parked-keys tables read them. A group this broker
// coordinates with no offsets in memory (new, or its shard still loading)
// has none committed: the table then lists every retry record, which can
// only hold keys back longer, never let one through early.
type retryOffsets struct {
	c    *groups.Coordinator
	self int32
}

func (r retryOffsets) Committed(group string) (map[string]map[int32]int64, bool) {
	if b, code := r.c.Coordinator(context.Background(), group, 0); code != 0 || b.NodeID != r.self {
		return nil, false
	}
	out := map[string]map[int32]int64{}
	for _, g := range r.c.OwnedOffsets() {
		if g.Group != group {
			continue
		}
		for _, o := range g.Offsets {
			if out[o.Topic] == nil {
				out[o.Topic] = map[int32]int64{}
			}
			out[o.Topic][o.Partition] = o.Offset
		}
	}
	return out, true
}

// retryConfigs is the GROUP config store with the retry policy applied
// after each change that touches it.
type retryConfigs struct {
	protocol.GroupConfigs
	svc *retry.Service
}

func (r retryConfigs) AlterGroupConfig(ctx context.Context, group string, changes []stream.ConfigChange, replace, validateOnly bool) error {
	names := make([]string, len(changes))
	for i, c := range changes {
		names[i] = c.Name
	}
	touches := replace || retry.Touches(names)
	if touches {
		// A group id that cannot name topics cannot have a policy.
		next := map[string]string{}
		if !replace {
			maps.Copy(next, r.GroupConfig(group))
		}
		for _, c := range changes {
			if c.Value == nil {
				delete(next, c.Name)
			} else {
				next[c.Name] = *c.Value
			}
		}
		if _, ok := retry.PolicyOf(group, next); ok {
			if err := retry.CheckGroup(group); err != nil {
				return fmt.Errorf("%w: %s: %v", config.ErrInvalidConfig, config.GroupRetryDelays, err)
			}
		}
	}
	if err := r.GroupConfigs.AlterGroupConfig(ctx, group, changes, replace, validateOnly); err != nil || validateOnly || !touches {
		return err
	}
	p, ok := retry.PolicyOf(group, r.GroupConfig(group))
	if !ok {
		return nil
	}
	return r.svc.Apply(ctx, p)
}
