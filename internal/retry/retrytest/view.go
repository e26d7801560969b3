package retrytest

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/runnel-dev/runnel/internal/retry"
)

// parkedView reads retry.<group>.parked from the start and keeps following
// it: the parked keys and the table's progress.
type parkedView struct {
	o      Options
	cl     *kgo.Client
	cancel context.CancelFunc
	done   chan struct{}

	mu      sync.Mutex
	keys    map[string]retry.ParkedKey
	prog    retry.Progress
	changed chan struct{} // closed and replaced on every record read
}

func newParkedView(o Options) (*parkedView, error) {
	cl, err := kgo.NewClient(append([]kgo.Opt{
		kgo.SeedBrokers(o.Brokers...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{retry.ParkedTopic(o.Group): {0: kgo.NewOffset().AtStart()}}),
	}, o.Opts...)...)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	v := &parkedView{o: o, cl: cl, cancel: cancel, done: make(chan struct{}),
		keys: map[string]retry.ParkedKey{}, changed: make(chan struct{})}
	go v.run(ctx)
	return v, nil
}

func (v *parkedView) close() {
	v.cancel()
	<-v.done
	v.cl.Close()
}

func (v *parkedView) run(ctx context.Context) {
	defer close(v.done)
	for ctx.Err() == nil {
		fs := v.cl.PollFetches(ctx)
		v.mu.Lock()
		fs.EachRecord(func(r *kgo.Record) {
			k := string(r.Key)
			switch {
			case k == retry.ProgressKey:
				var p retry.Progress
				if json.Unmarshal(r.Value, &p) == nil {
					v.prog = p
				}
			case strings.HasPrefix(k, "park/"):
				var pk retry.ParkedKey
				if r.Value == nil {
					delete(v.keys, k)
				} else if json.Unmarshal(r.Value, &pk) == nil {
					v.keys[k] = pk
				}
			}
		})
		close(v.changed)
		v.changed = make(chan struct{})
		v.mu.Unlock()
	}
}

// lookup returns a key's entry (no parked offsets, marks -1 when absent).
func (v *parkedView) lookup(key string) retry.ParkedKey {
	v.mu.Lock()
	defer v.mu.Unlock()
	if pk, ok := v.keys[key]; ok {
		return pk
	}
	return retry.ParkedKey{Released: -1, Discarded: -1}
}

func (v *parkedView) progress() retry.Progress {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.prog
}

// barrier waits until the table covers every record now in the group's
// retry topics: records parked by a consumer that had this worker's
// partitions before are then in the table.
func (v *parkedView) barrier(ctx context.Context, cl *kgo.Client) error {
	var topics []string
	for n := 1; n <= v.o.Levels; n++ {
		topics = append(topics, retry.LevelTopic(v.o.Group, n))
	}
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, topics...)
	if err != nil {
		return fmt.Errorf("list retry topic ends: %w", err)
	}
	for {
		v.mu.Lock()
		behind := false
		ends.Each(func(l kadm.ListedOffset) {
			if l.Err == nil && l.Offset > 0 && !v.prog.Covers(l.Topic, l.Partition, l.Offset-1) {
				behind = true
			}
		})
		ch := v.changed
		v.mu.Unlock()
		if !behind {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
