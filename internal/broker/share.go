package broker

import (
	"context"
	"errors"
	"fmt"

	"github.com/runnel-dev/runnel/internal/groups"
	"github.com/runnel-dev/runnel/internal/protocol"
	"github.com/runnel-dev/runnel/internal/share"
	"github.com/runnel-dev/runnel/internal/stream"
)

// Share groups (KIP-932) are three services over one etcd: the GROUP config
// store (every broker caches every group's overrides), the share engine
// (share-partition state: acquisition, acknowledgements, lock timeouts,
// start offsets; any broker may serve any share partition) with its
// dead-letter writer (KIP-1191), and the share group coordinator, which is
// the group coordinator's share side. The front end reaches them through
// protocol.Shares, protocol.ShareGroups and protocol.GroupConfigs; the
// coordinator reaches the engine through groups.ShareStates.

// The implementations satisfy the interfaces their consumers define (the
// packages do not import each other, so the check lives here).
var (
	_ protocol.Shares        = (*share.Engine)(nil)
	_ protocol.ShareGroups   = (*groups.Coordinator)(nil)
	_ protocol.GroupConfigs  = (*groups.GroupConfigStore)(nil)
	_ groups.ShareStates     = (*share.Engine)(nil)
	_ share.Log              = (*stream.Engine)(nil)
	_ share.DeadLetterLog    = (*stream.Engine)(nil)
	_ share.DeadLetterWriter = (*share.DeadLetters)(nil)
)

// shareServices are a broker's share group services.
type shareServices struct {
	configs *groups.GroupConfigStore
	engine  *share.Engine
}

// openShares opens the GROUP config store and starts the share engine with
// its dead-letter writer; the group coordinator is given the engine as its
// ShareStates (groupsOptions) and the front end all three (protocolOptions).
// Dead-letter topics are created when missing if auto.create.topics.enable
// is on, with the default "dlq." name prefix.
func (b *Broker) openShares(ctx context.Context) error {
	var err error
	b.shares.configs, err = groups.OpenGroupConfigStore(ctx, b.cli, "", b.log)
	if err != nil {
		return fmt.Errorf("broker: group configs: %w", err)
	}
	letters := share.NewDeadLetters(share.DeadLetterOptions{
		Client:     b.cli,
		Log:        b.engine,
		AutoCreate: b.cfg.AutoCreateTopics,
		Logger:     b.log,
		Metrics:    b.registry,
	})
	b.shares.engine = share.New(share.Options{
		Client:      b.cli,
		Log:         b.engine,
		GroupConfig: b.shares.configs.ShareGroup,
		DeadLetters: letters,
		Logger:      b.log,
		Metrics:     b.registry,
	})
	if err := b.shares.engine.Start(ctx); err != nil {
		return fmt.Errorf("broker: share engine: %w", err)
	}
	return nil
}

// groupsOptions gives the group coordinator the GROUP configs and the
// share-partition states.
func (s *shareServices) groupsOptions(o *groups.Options) {
	o.GroupConfigs = s.configs
	o.ShareStates = s.engine
}

// protocolOptions gives the front end the share engine, the share group
// coordinator and the GROUP configs.
func (s *shareServices) protocolOptions(o *protocol.Options, coordinator *groups.Coordinator) {
	o.Shares = s.engine
	o.ShareGroups = coordinator
	o.GroupConfigs = s.configs
}

// close stops the engine (after the front end and the coordinator stopped
// calling it) and the config store's watch.
func (s *shareServices) close() error {
	var errs []error
	if s.engine != nil {
		errs = append(errs, s.engine.Close())
	}
	if s.configs != nil {
		errs = append(errs, s.configs.Close())
	}
	return errors.Join(errs...)
}
