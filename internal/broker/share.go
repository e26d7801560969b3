package broker

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"

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
	_ protocol.Shares       = (*share.Engine)(nil)
	_ protocol.ShareGroups  = (*groups.Coordinator)(nil)
	_ protocol.GroupConfigs = (*groups.GroupConfigStore)(nil)
	_ groups.ShareStates    = (*share.Engine)(nil)
	_ groups.ShareStates    = shareStates{}
	// The coordinator releases a departed member's records through this
	// optional capability of its ShareStates.
	_ interface {
		ReleaseMember(ctx context.Context, key share.Key, member string) error
	} = shareStates{}
	_ share.Log              = (*stream.Engine)(nil)
	_ share.DeadLetterLog    = (*stream.Engine)(nil)
	_ share.DeadLetterWriter = (*share.DeadLetters)(nil)
)

// shareServices are a broker's share group services.
type shareServices struct {
	configs *groups.GroupConfigStore
	engine  *share.Engine
	letters *share.DeadLetters
}

// shareStates is the engine as the coordinator's ShareStates, which also
// drops the dead-letter writer's record of what it wrote for share
// partitions whose state is reset or deleted (as the writer asks): a
// record dead-lettered again after a reset is then written again instead
// of being taken for the letter written before. The engine's other
// capabilities (ReleaseMember) are promoted.
type shareStates struct {
	*share.Engine
	letters *share.DeadLetters
}

func (s shareStates) SetStartOffset(ctx context.Context, key share.Key, offset int64) error {
	if err := s.Engine.SetStartOffset(ctx, key, offset); err != nil {
		return err
	}
	return s.letters.ForgetPartition(ctx, key)
}

func (s shareStates) DeleteState(ctx context.Context, group string, topic *stream.TopicID) error {
	if err := s.Engine.DeleteState(ctx, group, topic); err != nil {
		return err
	}
	return s.letters.Forget(ctx, group, topic)
}

// openShares opens the GROUP config store and starts the share engine with
// its dead-letter writer; the group coordinator is given the engine as its
// ShareStates (groupsOptions) and the front end all three (protocolOptions).
// The dead-letter topic rules (name prefix, auto-creation) are the
// configuration's dead-letters section.
func (b *Broker) openShares(ctx context.Context) error {
	var err error
	b.shares.configs, err = groups.OpenGroupConfigStore(ctx, b.cli, "", b.log)
	if err != nil {
		return fmt.Errorf("broker: group configs: %w", err)
	}
	b.shares.letters = share.NewDeadLetters(share.DeadLetterOptions{
		Client:  b.cli,
		Log:     b.engine,
		Rules:   b.cfg.DeadLetters,
		Logger:  b.log,
		Metrics: b.metrics(),
	})
	b.shares.engine = share.New(share.Options{
		Client:      b.cli,
		Log:         b.engine,
		GroupConfig: b.shares.configs.ShareGroup,
		DeadLetters: b.shares.letters,
		Logger:      b.log,
		Metrics:     b.metrics(),
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
	o.ShareStates = shareStates{Engine: s.engine, letters: s.letters}
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

// shareStatesView is the body of GET /share/groups/{group}: every share
// partition the group has state for, with its in-flight records.
type shareStatesView struct {
	Group      string               `json:"group"`
	Partitions []sharePartitionView `json:"partitions"`
}

// sharePartitionView is one share partition: records below StartOffset
// are done, Runs cover [StartOffset, EndOffset) and records from EndOffset
// on were never acquired.
type sharePartitionView struct {
	Topic              string         `json:"topic"`
	TopicID            string         `json:"topic_id"`
	Partition          int32          `json:"partition"`
	StartOffset        int64          `json:"start_offset"`
	EndOffset          int64          `json:"end_offset"`
	Runs               []shareRunView `json:"runs"`
	PendingDeadLetters int            `json:"pending_dead_letters"`
}

// shareRunView is a run of offsets in one state (available, acquired,
// acknowledged or archived); Member and LockDeadlineMs (unix ms) only
// while acquired; RetryDueMs (unix ms) only while available after a
// release under the group's retry delays (errors.retry.delays.ms): the
// records are not delivered again before it.
type shareRunView struct {
	First          int64  `json:"first"`
	Last           int64  `json:"last"`
	State          string `json:"state"`
	DeliveryCount  int16  `json:"delivery_count"`
	Member         string `json:"member,omitempty"`
	LockDeadlineMs int64  `json:"lock_deadline_ms,omitempty"`
	RetryDueMs     int64  `json:"retry_due_ms,omitempty"`
}

// handleShareStates serves GET /share/groups/{group}: the group's share
// partition states as the engine holds them in etcd (for runnel group
// describe --http). A group without share state has no partitions.
func (b *Broker) handleShareStates(w http.ResponseWriter, r *http.Request) {
	group := r.PathValue("group")
	states, err := b.shares.engine.States(r.Context(), group)
	if err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	view := shareStatesView{Group: group, Partitions: []sharePartitionView{}}
	for k, st := range states {
		if st == nil {
			continue
		}
		p := sharePartitionView{TopicID: hex.EncodeToString(k.Topic[:]), Partition: k.Partition,
			StartOffset: st.Start, EndOffset: st.End, Runs: []shareRunView{}, PendingDeadLetters: len(st.Letters)}
		if t, ok := b.engine.TopicByID(k.Topic); ok {
			p.Topic = t.Name
		}
		for _, run := range st.Runs {
			p.Runs = append(p.Runs, shareRunView{First: run.First, Last: run.Last, State: run.State.String(),
				DeliveryCount: run.DeliveryCount, Member: run.Member, LockDeadlineMs: run.Deadline, RetryDueMs: run.Due})
		}
		view.Partitions = append(view.Partitions, p)
	}
	sort.Slice(view.Partitions, func(i, j int) bool {
		a, c := view.Partitions[i], view.Partitions[j]
		if a.Topic != c.Topic {
			return a.Topic < c.Topic
		}
		if a.TopicID != c.TopicID {
			return a.TopicID < c.TopicID
		}
		return a.Partition < c.Partition
	})
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(view)
}
