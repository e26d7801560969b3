package tableflow

// The service: which tables this broker materialises.
//
// Every broker watches the log's topics. A topic with table.enabled=true
// (or table.source set) is worked on by the broker Cluster.Leader(topic
// id, 0) names; that broker takes the table's writer key
// (<prefix>/tableflow/writers/<ns>/<name>, put only if absent, with its
// lease) and runs one materialiser (or source) until the config goes off
// (the table is kept), the topic is deleted, leadership moves, or the
// table.* configs change (it restarts with the new ones). The writer key
// avoids wasted work only: the catalog's compare-and-swap keeps the table
// correct if two writers ever run at once.
//
// The writer publishes the table's status under <prefix>/tableflow/status/
// <ns>/<name> with the same lease, so every broker can answer GET /tables.

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/table"
	"github.com/prometheus/client_golang/prometheus"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"

	"github.com/runnel-dev/runnel/internal/config"
	"github.com/runnel-dev/runnel/internal/registry"
	"github.com/runnel-dev/runnel/internal/stream"
)

// Cluster is what the service needs of the cluster: the leader of a
// partition among live brokers.
type Cluster interface {
	Leader(topic [16]byte, partition int32) int32
}

// clusterChanges is the optional capability of a Cluster to say when the
// live set changed.
type clusterChanges interface {
	Changes() <-chan struct{}
}

// Options configures New.
type Options struct {
	Client *clientv3.Client
	// Prefix is the cluster's etcd prefix (default "/runnel").
	Prefix  string
	Log     Log
	Schemas Schemas // nil: every table is schemaless
	Catalog *Catalog
	Cluster Cluster
	// BrokerID is this broker's id, as Cluster.Leader names brokers.
	BrokerID int32
	// Encrypted is set when objects are encrypted at rest: outside
	// readers could not read the files, so tables are refused.
	Encrypted bool
	Metrics   prometheus.Registerer
	Logger    *slog.Logger
	Now       func() time.Time

	// LeaseTTL is the writer keys' lease (default 10 s).
	LeaseTTL time.Duration
	// CommitInterval, when set, replaces every table's
	// table.commit.interval.ms (tests).
	CommitInterval time.Duration
	// MaxPassBytes caps what one commit reads (default 64 MiB).
	MaxPassBytes int64
	// Maintenance tunes maintenance; MaintainEvery is how often it runs
	// on a table between commits (default 5 min).
	Maintenance   MaintainOptions
	MaintainEvery time.Duration
}

// Service runs this broker's share of the cluster's tables.
type Service struct {
	o       Options
	m       *tableMetrics
	source  *Source
	session *concurrency.Session

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	running map[stream.TopicID]*runner
}

// runner is one table (or source) this broker works on.
type runner struct {
	topic  stream.TopicInfo
	fp     string // the table.* configs it runs with
	source string // table.source, for a source
	sess   *concurrency.Session
	cancel context.CancelFunc
	done   chan struct{}
	status *tableStatus
}

// New returns a service; Start starts it.
func New(o Options) *Service {
	if o.Prefix == "" {
		o.Prefix = "/runnel"
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.LeaseTTL <= 0 {
		o.LeaseTTL = 10 * time.Second
	}
	if o.MaxPassBytes <= 0 {
		o.MaxPassBytes = 64 << 20
	}
	if o.MaintainEvery <= 0 {
		o.MaintainEvery = 5 * time.Minute
	}
	s := &Service{o: o, m: newTableMetrics(o.Metrics), running: map[stream.TopicID]*runner{}}
	s.source = NewSource(SourceOptions{Client: o.Client, Prefix: o.Prefix, Log: o.Log, Schemas: o.Schemas,
		Open: s.openSource, Logger: o.Logger})
	return s
}

// Start takes the service's lease and starts watching the topics.
func (s *Service) Start(ctx context.Context) error {
	sess, err := concurrency.NewSession(s.o.Client, concurrency.WithTTL(max(1, int(s.o.LeaseTTL/time.Second))), concurrency.WithContext(context.WithoutCancel(ctx)))
	if err != nil {
		return fmt.Errorf("tableflow: lease: %w", err)
	}
	s.session = sess
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.wg.Add(1)
	go s.watch()
	return nil
}

// Close stops every materialiser, gives their writer keys up and waits.
func (s *Service) Close() error {
	if s.cancel == nil {
		return nil
	}
	s.cancel()
	s.wg.Wait()
	return s.session.Close()
}

// reconcileGap is the least time between two looks at the topics. The
// log's change signal fires on every sequenced batch (thousands of times a
// second under load), and a look resolves every topic's configs: without
// the gap every broker would spend a core on it whether or not any table
// is enabled. A table is still taken up within a fraction of a second of
// its config changing.
const reconcileGap = 250 * time.Millisecond

func (s *Service) watch() {
	defer s.wg.Done()
	var changes <-chan struct{}
	if c, ok := s.o.Cluster.(clusterChanges); ok {
		changes = c.Changes()
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		logChanged := s.o.Log.Changed()
		s.reconcile()
		next := time.NewTimer(reconcileGap)
		select {
		case <-s.ctx.Done():
			next.Stop()
			s.stopAll()
			return
		case <-next.C:
		}
		select {
		case <-s.ctx.Done():
			s.stopAll()
			return
		case <-logChanged:
		case <-changes:
			if c, ok := s.o.Cluster.(clusterChanges); ok {
				changes = c.Changes()
			}
		case <-tick.C:
		case <-s.session.Done():
			// The lease is gone: our writer keys with it. Stop, and
			// start over on a new lease.
			s.stopAll()
			if !s.renewSession() {
				return
			}
		}
	}
}

func (s *Service) renewSession() bool {
	for {
		sess, err := concurrency.NewSession(s.o.Client, concurrency.WithTTL(max(1, int(s.o.LeaseTTL/time.Second))), concurrency.WithContext(s.ctx))
		if err == nil {
			s.session = sess
			return true
		}
		select {
		case <-s.ctx.Done():
			return false
		case <-time.After(time.Second):
		}
	}
}

// reconcile starts and stops runners to match the topics' configs and
// leadership.
func (s *Service) reconcile() {
	want := map[stream.TopicID]stream.TopicInfo{}
	fps := map[stream.TopicID]string{}
	sources := map[stream.TopicID]string{}
	for _, t := range s.o.Log.Topics() {
		if t.Internal {
			continue
		}
		cfg, err := s.o.Log.TopicConfig(t.Name)
		if err != nil || !(cfg.Table.Enabled || cfg.Table.Source != "") {
			continue
		}
		sources[t.ID] = cfg.Table.Source
		if s.o.Cluster.Leader(t.ID, 0) != s.o.BrokerID {
			continue
		}
		want[t.ID] = t
		fps[t.ID] = fmt.Sprintf("%d|%+v", t.Partitions, cfg.Table)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, r := range s.running {
		select {
		case <-r.done:
			// Ended by itself (suspended, refused): keep it for its
			// status until the configs change.
			if fps[id] == r.fp {
				continue
			}
		default:
			if _, ok := want[id]; ok && fps[id] == r.fp {
				continue
			}
		}
		r.cancel()
		delete(s.running, id)
		if r.source != "" && sources[id] == "" {
			// table.source removed or the topic deleted: a source set
			// again later starts afresh.
			s.forgetSource(r)
		}
	}
	for _, id := range sortedIDs(want) {
		if _, ok := s.running[id]; ok {
			continue
		}
		t := want[id]
		ctx, cancel := context.WithCancel(s.ctx)
		r := &runner{topic: t, fp: fps[id], source: sources[id], sess: s.session, cancel: cancel, done: make(chan struct{})}
		s.running[id] = r
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer close(r.done)
			s.runTable(ctx, r)
		}()
	}
}

func sortedIDs(m map[stream.TopicID]stream.TopicInfo) []stream.TopicID {
	ids := make([]stream.TopicID, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	slices.SortFunc(ids, func(a, b stream.TopicID) int { return strings.Compare(string(a[:]), string(b[:])) })
	return ids
}

// forgetSource deletes a stopped source's progress once it has ended.
func (s *Service) forgetSource(r *runner) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		<-r.done
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.source.Forget(ctx, r.topic.ID); err != nil {
			s.o.Logger.Warn("tableflow: forgetting a table source", "topic", r.topic.Name, "err", err)
		}
	}()
}

func (s *Service) stopAll() {
	s.mu.Lock()
	rs := s.running
	s.running = map[stream.TopicID]*runner{}
	s.mu.Unlock()
	for _, r := range rs {
		r.cancel()
	}
	for _, r := range rs {
		<-r.done
	}
}

// runTable is one runner's life: writer key, table, materialiser.
func (s *Service) runTable(ctx context.Context, r *runner) {
	cfg, err := s.o.Log.TopicConfig(r.topic.Name)
	if err != nil {
		return
	}
	ns, name := cfg.Table.TableIdent(r.topic.Name)
	if cfg.Table.Source != "" && !cfg.Table.Enabled {
		ns, name = "", r.topic.Name
	}
	mode := cfg.Table.Mode
	if mode == "" {
		mode = "append"
	}
	r.status = newTableStatus(TableStatus{Namespace: ns, Name: name, Topic: r.topic.Name, Mode: mode,
		Writer: s.o.BrokerID, Source: cfg.Table.Source}, s.o.Now())
	defer s.m.forget(r.status.name)
	sess := r.sess
	statusKey := s.o.Prefix + "/tableflow/status/" + ns + "/" + name
	if cfg.Table.Source != "" {
		statusKey = s.o.Prefix + "/tableflow/status-sources/" + hex.EncodeToString(r.topic.ID[:])
	}
	stopPublish := s.publishStatus(ctx, sess, statusKey, r)
	defer stopPublish()
	if s.o.Encrypted {
		r.status.update(func(st *TableStatus) {
			st.State, st.Reason = StateRefused, "encryption at rest is on: outside engines could not read the table's files"
		})
		<-ctx.Done()
		return
	}
	if cfg.Table.Source != "" {
		s.runSource(ctx, r, cfg.Table.Source)
		return
	}
	// The table is created (idempotently) before the writer key is
	// taken, so it is in the catalog at once even while another broker
	// still holds the key.
	m, err := s.materialiser(ctx, r, cfg.Table, ns, name)
	for err != nil {
		s.o.Logger.Warn("tableflow: cannot start the table", "topic", r.topic.Name, "err", err)
		r.status.setErr(err)
		if errors.Is(err, ErrUnsupportedSpec) || errors.Is(err, ErrUnsupportedSchema) || errors.Is(err, ErrTableConflict) || errors.Is(err, ErrIncompatibleSchema) {
			r.status.update(func(st *TableStatus) { st.State, st.Reason = StateRefused, err.Error() })
			<-ctx.Done()
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
		m, err = s.materialiser(ctx, r, cfg.Table, ns, name)
	}
	writerKey := s.o.Prefix + "/tableflow/writers/" + ns + "/" + name
	if !s.takeWriter(ctx, sess, writerKey, r) {
		return
	}
	r.status.update(func(st *TableStatus) { st.State, st.Reason = StateRunning, "" })
	defer s.giveUpWriter(sess, writerKey)
	if err := m.run(ctx); err != nil && ctx.Err() == nil {
		s.o.Logger.Warn("tableflow: table stopped", "topic", r.topic.Name, "err", err)
		<-ctx.Done() // suspended: until the configs change
	}
}

// takeWriter waits until this broker holds the table's writer key.
func (s *Service) takeWriter(ctx context.Context, sess *concurrency.Session, key string, r *runner) bool {
	self := strconv.Itoa(int(s.o.BrokerID))
	for {
		resp, err := s.o.Client.Txn(ctx).
			If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
			Then(clientv3.OpPut(key, self, clientv3.WithLease(sess.Lease()))).
			Else(clientv3.OpGet(key)).Commit()
		if err == nil && resp.Succeeded {
			return true
		}
		if err == nil && len(resp.Responses) > 0 {
			if kvs := resp.Responses[0].GetResponseRange().Kvs; len(kvs) == 1 && string(kvs[0].Value) == self {
				if clientv3.LeaseID(kvs[0].Lease) == sess.Lease() {
					return true
				}
				// This broker's previous life (a crash) held it: no
				// other process has this id, so take it over.
				tr, err := s.o.Client.Txn(ctx).
					If(clientv3.Compare(clientv3.ModRevision(key), "=", kvs[0].ModRevision)).
					Then(clientv3.OpPut(key, self, clientv3.WithLease(sess.Lease()))).Commit()
				if err == nil && tr.Succeeded {
					return true
				}
			} else if len(kvs) == 1 {
				r.status.update(func(st *TableStatus) {
					st.State, st.Reason = StateStopped, "waiting for broker "+string(kvs[0].Value)+" to give the table up"
				})
			}
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func (s *Service) giveUpWriter(sess *concurrency.Session, key string) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	s.o.Client.Txn(ctx).
		If(clientv3.Compare(clientv3.LeaseValue(key), "=", sess.Lease())).
		Then(clientv3.OpDelete(key)).Commit()
}

// publishStatus puts the runner's status under key every second while it
// changes; the returned func stops it and deletes the key.
func (s *Service) publishStatus(ctx context.Context, sess *concurrency.Session, key string, r *runner) func() {
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		var last []byte
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			b, _ := json.Marshal(r.status.get())
			if string(b) != string(last) {
				if _, err := s.o.Client.Put(ctx, key, string(b), clientv3.WithLease(sess.Lease())); err == nil {
					last = b
				}
			}
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return func() {
		close(done)
		<-stopped
		dctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		s.o.Client.Txn(dctx).If(clientv3.Compare(clientv3.LeaseValue(key), "=", sess.Lease())).Then(clientv3.OpDelete(key)).Commit()
	}
}

// materialiser creates the table (if new) and builds its materialiser.
func (s *Service) materialiser(ctx context.Context, r *runner, cfg config.Table, ns, name string) (*materialiser, error) {
	tcfg, err := s.o.Log.TopicConfig(r.topic.Name)
	if err != nil {
		return nil, err
	}
	subject := s.valueSubject(r.topic.Name, tcfg)
	value, _, err := s.latest(ctx, subject)
	if err != nil {
		return nil, err
	}
	sc, err := TableSchema(value, nil)
	if err != nil {
		return nil, err
	}
	upsert := cfg.Mode == "upsert"
	fields := cfg.PartitionBy
	if upsert {
		if sc, err = UpsertSchema(sc); err != nil {
			return nil, err
		}
		if len(fields) == 1 && fields[0].String() == config.DefaultTablePartitionBy {
			// The default day(_timestamp) cannot hold upserts (a key's
			// new row may fall on another day): unpartitioned.
			fields = nil
		}
	}
	spec, err := PartitionSpec(sc, fields)
	if err != nil {
		return nil, err
	}
	if upsert {
		if err := CheckUpsertSpec(sc, spec); err != nil {
			return nil, err
		}
	}
	ident := table.Identifier{ns, name}
	if _, err := s.o.Catalog.CreateTable(ctx, TableSpec{Namespace: ns, Name: name, Topic: r.topic.Name, TopicID: r.topic.ID,
		Schema: sc, Spec: spec, Properties: iceberg.Properties{}}); err != nil {
		return nil, err
	}
	interval := time.Duration(cfg.CommitIntervalMs) * time.Millisecond
	if s.o.CommitInterval > 0 {
		interval = s.o.CommitInterval
	}
	if interval <= 0 {
		interval = time.Minute
	}
	m := &materialiser{
		log:   s.o.Log,
		topic: r.topic,
		cfg:   cfg,
		ident: ident,
		load: func(ctx context.Context) (*table.Table, error) {
			return s.o.Catalog.LoadTable(ctx, ident)
		},
		convert: func(sc *iceberg.Schema) (rowConverter, error) {
			return NewConverter(sc, s.o.Schemas)
		},
		upsert:        upsert,
		logger:        s.o.Logger,
		now:           s.o.Now,
		interval:      interval,
		maxBytes:      s.o.MaxPassBytes,
		fetchBytes:    1 << 20,
		status:        r.status,
		m:             s.m,
		maintainEvery: s.o.MaintainEvery,
		lastMaintain:  s.o.Now(),
	}
	mo := s.o.Maintenance
	if cfg.RetentionSnapshots > 0 {
		mo.RetainSnapshots = cfg.RetentionSnapshots
	}
	m.maintain = func(ctx context.Context, tbl *table.Table) error {
		_, _, err := Maintain(ctx, tbl, mo)
		return err
	}
	if subject != "" && s.o.Schemas != nil {
		m.evolve = func(ctx context.Context, tbl *table.Table) (bool, error) {
			return s.evolve(ctx, m, subject, tbl)
		}
	}
	if cfg.ErrorMode == "dlq" {
		m.dlq = &dlqWriter{log: s.o.Log, topic: cfg.DLQTopic(r.topic.Name), src: r.topic.Name, table: r.status.name}
	}
	return m, nil
}

// valueSubject is the topic's value subject under TopicNameStrategy; ""
// for the other strategies, whose subject depends on each record (those
// tables are schemaless).
func (s *Service) valueSubject(topic string, cfg config.Topic) string {
	if s.o.Schemas == nil {
		return ""
	}
	switch cfg.ValueSubjectStrategy {
	case "", "TopicNameStrategy":
		return topic + "-value"
	}
	return ""
}

// latest returns a subject's newest schema, nil when it has none.
func (s *Service) latest(ctx context.Context, subject string) (registry.Schema, int, error) {
	if subject == "" {
		return nil, 0, nil
	}
	sch, ss, err := s.o.Schemas.LatestForSubject(ctx, subject)
	if errors.Is(err, registry.ErrSubjectNotFound) || errors.Is(err, registry.ErrVersionNotFound) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, err
	}
	return sch, ss.ID, nil
}

// evolve merges the subject's newest version into the table's schema
// (one schema-only commit) when it adds to it.
func (s *Service) evolve(ctx context.Context, m *materialiser, subject string, tbl *table.Table) (bool, error) {
	value, _, err := s.latest(ctx, subject)
	if err != nil || value == nil {
		return false, err
	}
	cur := tbl.Schema()
	next, err := TableSchema(value, cur)
	if errors.Is(err, ErrIncompatibleSchema) || errors.Is(err, ErrUnsupportedSchema) {
		// Records of the new version go through the error mode one by
		// one; the table keeps its schema.
		m.m.errors(m.status.name, "schema")
		m.status.recordError(err.Error(), s.o.Now())
		if m.cfg.ErrorMode == "suspend" || m.cfg.ErrorMode == "" {
			return false, m.suspendOn(err)
		}
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return m.commitSchema(ctx, tbl, next)
}

// runSource streams the table named by table.source into the topic.
func (s *Service) runSource(ctx context.Context, r *runner, source string) {
	for {
		err := s.source.Run(ctx, r.topic.Name, r.topic.ID, source)
		if ctx.Err() != nil {
			return
		}
		st := s.source.Status(r.topic.ID)
		r.status.update(func(ts *TableStatus) {
			ts.Records = st.RowsProduced
			if err != nil {
				ts.Errors++
				ts.LastError = err.Error()
			}
		})
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
	}
}

// openSource resolves table.source: "<ns>.<table>" in this catalog, else a
// table or metadata location.
func (s *Service) openSource(ctx context.Context, source string) (*table.Table, error) {
	if !strings.Contains(source, "://") && !strings.HasPrefix(source, "/") {
		if ns, name, ok := strings.Cut(source, "."); ok {
			return s.o.Catalog.LoadTable(ctx, table.Identifier{ns, name})
		}
	}
	return OpenTableLocation(ctx, source)
}

// Tables returns the status of every table in the catalog: as its writer
// published it, else as the table itself says (lag from its offsets).
func (s *Service) Tables(ctx context.Context) ([]TableStatus, error) {
	nss, err := s.o.Catalog.Namespaces(ctx)
	if err != nil {
		return nil, err
	}
	var out []TableStatus
	seen := map[string]bool{}
	for _, ns := range nss {
		es, err := s.o.Catalog.Tables(ctx, ns)
		if err != nil {
			return nil, err
		}
		for _, e := range es {
			out = append(out, s.describe(ctx, e))
			seen[e.Namespace+"/"+e.Name] = true
		}
	}
	// Tables refused before they were created (encryption at rest, a
	// partition spec an upsert table cannot have) exist only as their
	// writer's published status.
	resp, err := s.o.Client.Get(ctx, s.o.Prefix+"/tableflow/status/", clientv3.WithPrefix())
	if err != nil {
		return nil, err
	}
	for _, kv := range resp.Kvs {
		var st TableStatus
		if json.Unmarshal(kv.Value, &st) == nil && !seen[st.Namespace+"/"+st.Name] {
			out = append(out, st)
		}
	}
	return out, nil
}

// Table returns one table's status; ErrNoSuchTable if there is none.
func (s *Service) Table(ctx context.Context, ns, name string) (TableStatus, error) {
	e, err := s.o.Catalog.Table(ctx, ns, name)
	if errors.Is(err, ErrNoSuchTable) || errors.Is(err, ErrNoSuchNamespace) {
		if resp, gerr := s.o.Client.Get(ctx, s.o.Prefix+"/tableflow/status/"+ns+"/"+name); gerr == nil && len(resp.Kvs) == 1 {
			var st TableStatus
			if json.Unmarshal(resp.Kvs[0].Value, &st) == nil {
				return st, nil
			}
		}
	}
	if err != nil {
		return TableStatus{}, err
	}
	return s.describe(ctx, e), nil
}

func (s *Service) describe(ctx context.Context, e TableEntry) TableStatus {
	st := TableStatus{Namespace: e.Namespace, Name: e.Name, Topic: e.Topic, State: StateStopped, Writer: -1}
	if cfg, err := s.o.Log.TopicConfig(e.Topic); err == nil {
		st.Mode = cfg.Table.Mode
	}
	if resp, err := s.o.Client.Get(ctx, s.o.Prefix+"/tableflow/status/"+e.Namespace+"/"+e.Name); err == nil && len(resp.Kvs) == 1 {
		var pub TableStatus
		if json.Unmarshal(resp.Kvs[0].Value, &pub) == nil {
			st = pub
		}
	}
	// Files, bytes, the last snapshot and the lag in records come from
	// the table itself, so they are current on every broker.
	meta, err := s.o.Catalog.Metadata(e)
	if err != nil {
		st.LastError = err.Error()
		return st
	}
	if snap := meta.CurrentSnapshot(); snap != nil {
		st.LastSnapshotID, st.LastCommitMs = snap.SnapshotID, snap.TimestampMs
		if snap.Summary != nil {
			st.Files = summaryInt(snap.Summary.Properties, "total-data-files")
			st.Bytes = summaryInt(snap.Summary.Properties, "total-files-size")
		}
	}
	offs, err := OffsetsOf(meta)
	if err != nil {
		return st
	}
	t, ok := s.o.Log.TopicByID(e.TopicID)
	if !ok {
		return st
	}
	var lag int64
	for p := int32(0); p < t.Partitions; p++ {
		ps, err := s.o.Log.State(t.Name, p)
		if err != nil {
			continue
		}
		off, ok := offs[p]
		if !ok {
			off = ps.LogStartOffset
		}
		lag += max(0, ps.LastStableOffset-off)
	}
	st.LagRecords = lag
	return st
}
