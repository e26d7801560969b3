package lineage

import (
	"bytes"
	"cmp"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/runnel-dev/runnel/internal/governance"
	"github.com/runnel-dev/runnel/internal/metadata"
)

// KeyPrefix is where each broker keeps its aggregate: KeyPrefix + broker id.
const KeyPrefix = governance.Prefix + "lineage/brokers/"

// Defaults of Options.
const (
	DefaultDrainInterval   = time.Second
	DefaultPersistInterval = 5 * time.Second
	// DefaultMaxValueBytes bounds one broker's persisted aggregate
	// (compressed); etcd refuses values past 1.5 MiB.
	DefaultMaxValueBytes = 512 << 10
	// lagFresh is how old another broker's lag report may be and still
	// be answered (its coordinator may have moved or stopped).
	lagFresh = time.Minute
	// refreshEvery persists an unchanged aggregate anyway, so that the
	// lag it carries stays fresh.
	refreshEvery = 30 * time.Second
)

// Lag is a consumer group's lag on a topic, as its coordinator's lag
// tracker (internal/telemetry/lag) last evaluated it.
type Lag struct {
	Group      string  `json:"g"`
	Topic      string  `json:"t"`
	Records    int64   `json:"r"`            // summed over the partitions
	Seconds    float64 `json:"s"`            // the largest of the partitions
	HasSeconds bool    `json:"hs,omitempty"` // the index had a timestamp
	Status     string  `json:"st"`           // OK, WARN, STALLED, STOPPED, REWIND: the worst partition's
	At         int64   `json:"at,omitempty"` // unix ms of the report
}

// Topic is what the graph needs to know of an existing topic besides its
// traffic.
type Topic struct {
	Name string
	// Table is the topic's Iceberg table when table.enabled=true.
	Table *Table
	// Source is the table feeding the topic (table.source), "" when none.
	Source string
	// DeadLetters are the topic's dead-letter topics: Tableflow's
	// (table.error.mode=dlq) and the data contract's.
	DeadLetters []string
}

// Table names an Iceberg table.
type Table struct{ Namespace, Name string }

// GroupTargets are the topics a consumer group's retry policy writes to
// (errors.retry.delays.ms and errors.deadletterqueue.topic.name).
type GroupTargets struct {
	Retry      []string
	DeadLetter string
}

// Options configure a Service. Client is required.
type Options struct {
	Client   *clientv3.Client
	BrokerID int32
	Logger   *slog.Logger
	Now      func() time.Time
	// Retention drops edges unused this long (DefaultRetention when 0).
	Retention time.Duration
	// MaxEdges bounds this broker's edges (DefaultMaxEdges when 0).
	MaxEdges int
	// DrainInterval and PersistInterval: how often connections' facts are
	// aggregated and the aggregate persisted (defaults above).
	DrainInterval, PersistInterval time.Duration
	// MaxValueBytes bounds the persisted aggregate (DefaultMaxValueBytes).
	MaxValueBytes int
	// Lag reports the lag of the groups this broker coordinates; nil
	// reports none.
	Lag func() []Lag
	// Topics lists the existing topics; nil lists none.
	Topics func() []Topic
	// GroupTargets returns a group's retry and dead-letter topics; nil
	// knows none.
	GroupTargets func(group string) GroupTargets
}

// snapshot is one broker's persisted aggregate.
type snapshot struct {
	Broker int32  `json:"broker"`
	At     int64  `json:"at"` // unix ms
	Edges  []Edge `json:"edges"`
	Lag    []Lag  `json:"lag,omitempty"`
}

// brokerState is a mirrored broker aggregate.
type brokerState struct {
	key  string
	snap snapshot
}

// Service is one broker's lineage: its recorder and aggregate, their
// persistence, and the merged view of every broker's.
type Service struct {
	o   Options
	log *slog.Logger
	agg *Aggregate
	rec *Recorder

	mirror *metadata.Mirror[brokerState]

	mu     sync.Mutex
	others []brokerState // every broker's but this one's, from the mirror

	persistMu    sync.Mutex // serialises persist; guards the three below
	persisted    uint64     // the aggregate version last persisted
	persistedLag []Lag
	persistedAt  time.Time

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// Open loads this broker's persisted aggregate (a restart keeps its
// lineage), mirrors every broker's and starts draining and persisting.
func Open(ctx context.Context, o Options) (*Service, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Retention <= 0 {
		o.Retention = DefaultRetention
	}
	if o.DrainInterval <= 0 {
		o.DrainInterval = DefaultDrainInterval
	}
	if o.PersistInterval <= 0 {
		o.PersistInterval = DefaultPersistInterval
	}
	if o.MaxValueBytes <= 0 {
		o.MaxValueBytes = DefaultMaxValueBytes
	}
	s := &Service{o: o, log: o.Logger.With("component", "lineage")}
	s.agg = NewAggregate(o.MaxEdges, o.Retention)
	s.rec = NewRecorder(s.agg, o.Now)
	resp, err := o.Client.Get(ctx, s.key())
	if err != nil {
		return nil, fmt.Errorf("lineage: load: %w", err)
	}
	if len(resp.Kvs) == 1 {
		if snap, err := decodeSnapshot(resp.Kvs[0].Value); err != nil {
			s.log.Warn("lineage: ignoring this broker's undecodable aggregate", "err", err)
		} else {
			for _, e := range snap.Edges {
				s.agg.Add(e)
			}
			s.agg.Prune(o.Now())
			_, s.persisted = s.agg.Snapshot()
		}
	}
	s.mirror = metadata.NewMirror(metadata.MirrorOptions[brokerState]{
		Client: o.Client, Prefix: KeyPrefix, What: "lineage", Logger: s.log,
		Decode: func(key string, value []byte) (brokerState, bool) {
			if key == s.key() { // this broker answers from its live aggregate
				return brokerState{key: key}, true
			}
			snap, err := decodeSnapshot(value)
			if err != nil {
				s.log.Warn("lineage: skipping an undecodable broker aggregate", "key", key, "err", err)
				return brokerState{}, false
			}
			return brokerState{key: key, snap: snap}, true
		},
		Publish: func(items []brokerState) {
			others := items[:0]
			for _, it := range items {
				if it.key != s.key() {
					others = append(others, it)
				}
			}
			s.mu.Lock()
			s.others = others
			s.mu.Unlock()
		},
	})
	if err := s.mirror.Start(ctx); err != nil {
		return nil, fmt.Errorf("lineage: mirror: %w", err)
	}
	lctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	s.wg.Add(1)
	go s.run(lctx)
	return s, nil
}

func (s *Service) key() string { return KeyPrefix + strconv.Itoa(int(s.o.BrokerID)) }

// Recorder is the observer the Kafka front end reports to.
func (s *Service) Recorder() *Recorder { return s.rec }

// Close stops the loop, persists what is left and stops the mirror.
func (s *Service) Close() error {
	s.cancel()
	s.wg.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	s.rec.Drain()
	err := s.persist(ctx, true)
	s.mirror.Close()
	return err
}

// run drains every DrainInterval and persists every PersistInterval.
func (s *Service) run(ctx context.Context) {
	defer s.wg.Done()
	drain := time.NewTicker(s.o.DrainInterval)
	defer drain.Stop()
	persist := time.NewTicker(s.o.PersistInterval)
	defer persist.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-drain.C:
			s.rec.Drain()
		case <-persist.C:
			s.rec.Drain()
			s.agg.Prune(s.o.Now())
			pctx, cancel := context.WithTimeout(ctx, s.o.PersistInterval)
			if err := s.persist(pctx, false); err != nil && ctx.Err() == nil {
				s.log.Warn("lineage: persisting the aggregate", "err", err)
			}
			s.forgetGone(pctx)
			cancel()
		}
	}
}

// Persist drains the connections and writes the aggregate now (tests).
func (s *Service) Persist(ctx context.Context) error {
	s.rec.Drain()
	s.agg.Prune(s.o.Now())
	return s.persist(ctx, true)
}

// persist writes the aggregate when it or the lag changed since the last
// write, or refreshEvery passed (force: always).
func (s *Service) persist(ctx context.Context, force bool) error {
	s.persistMu.Lock()
	defer s.persistMu.Unlock()
	edges, version := s.agg.Snapshot()
	lag := s.localLag()
	now := s.o.Now()
	if !force && version == s.persisted && slices.EqualFunc(lag, s.persistedLag, sameLag) && now.Sub(s.persistedAt) < refreshEvery {
		return nil
	}
	val, kept, err := encodeSnapshot(snapshot{Broker: s.o.BrokerID, At: now.UnixMilli(), Edges: edges, Lag: lag}, s.o.MaxValueBytes)
	if err != nil {
		return err
	}
	if kept < len(edges) {
		s.log.Warn("lineage: the aggregate is larger than a value may be; persisting the most recently seen edges", "edges", len(edges), "kept", kept)
	}
	if _, err := s.o.Client.Put(ctx, s.key(), string(val)); err != nil {
		return fmt.Errorf("lineage: persist: %w", err)
	}
	s.persisted, s.persistedLag, s.persistedAt = version, lag, now
	return nil
}

func sameLag(a, b Lag) bool {
	a.At, b.At = 0, 0
	return a == b
}

// forgetGone deletes the aggregates of brokers that wrote nothing for
// longer than the retention: everything in them has expired.
func (s *Service) forgetGone(ctx context.Context) {
	cut := s.o.Now().Add(-s.o.Retention).UnixMilli()
	s.mu.Lock()
	var gone []string
	for _, b := range s.others {
		if b.snap.At < cut {
			gone = append(gone, b.key)
		}
	}
	s.mu.Unlock()
	for _, k := range gone {
		if _, err := s.o.Client.Delete(ctx, k); err != nil {
			s.log.Warn("lineage: forgetting a gone broker's aggregate", "key", k, "err", err)
		}
	}
}

// localLag is this broker's lag report, sorted.
func (s *Service) localLag() []Lag {
	if s.o.Lag == nil {
		return nil
	}
	lag := s.o.Lag()
	slices.SortFunc(lag, func(a, b Lag) int { return cmp.Or(cmp.Compare(a.Group, b.Group), cmp.Compare(a.Topic, b.Topic)) })
	return lag
}

// Edges returns the cluster's edges: this broker's, fresh, merged with
// every other broker's last persisted ones, without those past the
// retention.
func (s *Service) Edges() []Edge {
	s.rec.Drain()
	local, _ := s.agg.Snapshot()
	lists := [][]Edge{local}
	cut := s.o.Now().Add(-s.o.Retention).UnixMilli()
	s.mu.Lock()
	for _, b := range s.others {
		var kept []Edge
		for _, e := range b.snap.Edges {
			if e.Last >= cut {
				kept = append(kept, e)
			}
		}
		lists = append(lists, kept)
	}
	s.mu.Unlock()
	return Merge(lists...)
}

// Lags returns every group's lag by group and topic: the freshest report
// (this broker's now, others' persisted within lagFresh).
func (s *Service) Lags() map[[2]string]Lag {
	now := s.o.Now()
	out := map[[2]string]Lag{}
	take := func(l Lag) {
		k := [2]string{l.Group, l.Topic}
		if cur, ok := out[k]; !ok || l.At > cur.At {
			out[k] = l
		}
	}
	for _, l := range s.localLag() {
		l.At = now.UnixMilli()
		take(l)
	}
	cut := now.Add(-lagFresh).UnixMilli()
	s.mu.Lock()
	for _, b := range s.others {
		if b.snap.At < cut {
			continue
		}
		for _, l := range b.snap.Lag {
			l.At = b.snap.At
			take(l)
		}
	}
	s.mu.Unlock()
	return out
}

// Graph builds the cluster's lineage graph now.
func (s *Service) Graph() Graph {
	var topics []Topic
	if s.o.Topics != nil {
		topics = s.o.Topics()
	}
	return Build(s.Edges(), topics, s.o.GroupTargets, s.o.Now())
}

// encodeSnapshot compresses snap's JSON; past max bytes it keeps the most
// recently seen half of the edges until it fits, and returns how many it
// kept.
func encodeSnapshot(snap snapshot, max int) ([]byte, int, error) {
	for {
		raw, err := json.Marshal(snap)
		if err != nil {
			return nil, 0, fmt.Errorf("lineage: encode: %w", err)
		}
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		zw.Write(raw)
		if err := zw.Close(); err != nil {
			return nil, 0, fmt.Errorf("lineage: compress: %w", err)
		}
		if buf.Len() <= max || len(snap.Edges) == 0 {
			return buf.Bytes(), len(snap.Edges), nil
		}
		byLast := slices.Clone(snap.Edges)
		slices.SortFunc(byLast, func(a, b Edge) int { return cmp.Compare(b.Last, a.Last) })
		snap.Edges = byLast[:len(byLast)/2]
	}
}

// maxSnapshotBytes bounds a decompressed aggregate.
const maxSnapshotBytes = 64 << 20

func decodeSnapshot(val []byte) (snapshot, error) {
	zr, err := gzip.NewReader(bytes.NewReader(val))
	if err != nil {
		return snapshot{}, err
	}
	raw, err := io.ReadAll(io.LimitReader(zr, maxSnapshotBytes+1))
	if err != nil {
		return snapshot{}, err
	}
	if len(raw) > maxSnapshotBytes {
		return snapshot{}, fmt.Errorf("lineage: aggregate larger than %d bytes", maxSnapshotBytes)
	}
	var snap snapshot
	if err := json.Unmarshal(raw, &snap); err != nil {
		return snapshot{}, err
	}
	return snap, nil
}
