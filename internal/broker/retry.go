package broker

import (
	"context"
	"fmt"
	"maps"

	"github.com/runnel-dev/runnel/internal/config"
	"github.com/runnel-dev/runnel/internal/protocol"
	"github.com/runnel-dev/runnel/internal/retry"
	"github.com/runnel-dev/runnel/internal/stream"
)

var _ retry.Log = (*stream.Engine)(nil)

// retryOptions puts the retry service behind the front end's GROUP
// configs: a change that gives a group a retry policy (errors.retry.*)
// creates or updates its topics before the change is answered.
func (b *Broker) retryOptions(o *protocol.Options) {
	if o.GroupConfigs == nil {
		return
	}
	o.GroupConfigs = retryConfigs{GroupConfigs: o.GroupConfigs, svc: retry.New(retry.Options{Log: b.engine, Logger: b.log})}
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
