package broker

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/apache/iceberg-go"

	"github.com/runnel-dev/runnel/internal/auth"
	"github.com/runnel-dev/runnel/internal/config"
	"github.com/runnel-dev/runnel/internal/governance"
	"github.com/runnel-dev/runnel/internal/governance/lineage"
	"github.com/runnel-dev/runnel/internal/protocol"
	"github.com/runnel-dev/runnel/internal/registry"
	"github.com/runnel-dev/runnel/internal/retry"
	"github.com/runnel-dev/runnel/internal/tableflow"
	"github.com/runnel-dev/runnel/internal/telemetry/lag"
)

// govLineage is the broker's lineage part of governance (governance.go):
// the Kafka front end's observer, the cluster's merged graph and the
// OpenLineage exporter. All nil when governance.lineage.enabled is false.
type govLineage struct {
	svc      *lineage.Service
	exporter *lineage.Exporter
	lag      *lineageLag
}

func (b *Broker) openLineage(ctx context.Context) error {
	lc := b.cfg.Governance.Lineage
	if !lc.LineageOn() {
		return nil
	}
	b.gov.lineage.lag = &lineageLag{b: b}
	svc, err := lineage.Open(ctx, lineage.Options{
		Client:       b.cli,
		BrokerID:     b.cfg.BrokerID,
		Logger:       b.log,
		Retention:    lc.RetentionOrDefault(),
		Lag:          b.gov.lineage.lag.rows,
		Topics:       b.lineageTopics,
		GroupTargets: b.lineageGroupTargets,
	})
	if err != nil {
		return fmt.Errorf("broker: lineage: %w", err)
	}
	b.gov.lineage.svc = svc
	if ol := lc.OpenLineage; ol.URL != "" {
		b.gov.lineage.exporter = lineage.StartExporter(lineage.ExporterOptions{
			Client:    b.cli,
			BrokerID:  b.cfg.BrokerID,
			URL:       ol.URL,
			Namespace: ol.NamespaceOrDefault(),
			Interval:  ol.IntervalOrDefault(),
			Graph:     svc.Graph,
			Bootstrap: b.lineageBootstrap,
			Schema:    b.lineageSchema,
			Owners:    b.lineageOwners,
			Logger:    b.log,
		})
	}
	return nil
}

func (b *Broker) mountLineage(mux *http.ServeMux, g *auth.Guard) {
	handle := func(fn func(http.ResponseWriter, *http.Request, governance.Actor) error) http.Handler {
		return govAuthenticated(g, governance.Handler(b.govAuthorizer(), fn))
	}
	svc := b.gov.lineage.svc
	if svc == nil {
		off := func(w http.ResponseWriter, r *http.Request, _ governance.Actor) error {
			return &governance.Error{Status: http.StatusNotFound, Code: 40402,
				Message: "lineage is off on this broker (governance.lineage.enabled: false)"}
		}
		mux.Handle("GET /api/v1/lineage", handle(off))
		mux.Handle("GET /api/v1/products/{topic}/clients", handle(off))
		return
	}
	mux.Handle("GET /api/v1/lineage", handle(svc.HandleLineage))
	mux.Handle("GET /api/v1/products/{topic}/clients", handle(svc.HandleClients))
}

func (b *Broker) closeLineage() error {
	var errs []error
	if x := b.gov.lineage.exporter; x != nil {
		errs = append(errs, x.Close())
	}
	if s := b.gov.lineage.svc; s != nil {
		errs = append(errs, s.Close())
	}
	return errors.Join(errs...)
}

// lineageProtocolOptions sets the Kafka front end's lineage observer: none
// (nothing observed, nothing spent) when lineage is off.
func (b *Broker) lineageProtocolOptions(o *protocol.Options) {
	if s := b.gov.lineage.svc; s != nil {
		o.Lineage = lineageObserver{s.Recorder()}
	}
}

// lineageObserver adapts the recorder to the front end's interface.
type lineageObserver struct{ r *lineage.Recorder }

func (o lineageObserver) Connection() protocol.LineageConn { return lineageConn{o.r.Open()} }

type lineageConn struct{ c *lineage.Conn }

func (c lineageConn) Observe(cl protocol.LineageClient, f protocol.LineageFact) {
	c.c.Observe(lineage.Client(cl), lineage.Fact{
		Kind: lineage.Kind(f.Kind), Topic: f.Topic, Group: f.Group, TransactionalID: f.TransactionalID,
		ProducerID: f.ProducerID, Bytes: f.Bytes, Records: f.Records,
	})
}

func (c lineageConn) Close() { c.c.Close() }

// The protocol's and lineage's kinds are the same values (a difference
// does not compile: the index is out of range or overflows).
var (
	_ = [1]int{}[lineage.Produce-lineage.Kind(protocol.LineageProduce)]
	_ = [1]int{}[lineage.Fetch-lineage.Kind(protocol.LineageFetch)]
	_ = [1]int{}[lineage.Commit-lineage.Kind(protocol.LineageCommit)]
	_ = [1]int{}[lineage.Member-lineage.Kind(protocol.LineageMember)]
)

// lineageTopics lists the existing topics with their tables and
// dead-letter topics.
func (b *Broker) lineageTopics() []lineage.Topic {
	all := b.engine.Topics()
	names := make(map[string]bool, len(all))
	for _, t := range all {
		names[t.Name] = true
	}
	out := make([]lineage.Topic, 0, len(all))
	for _, ti := range all {
		if ti.Internal {
			continue
		}
		t := lineage.Topic{Name: ti.Name}
		tc, err := b.engine.TopicConfig(ti.Name)
		if err == nil {
			t.Table, t.Source, t.DeadLetters = lineageTopicTargets(ti.Name, tc, names)
		}
		out = append(out, t)
	}
	return out
}

// lineageTopicTargets is what a topic's configs connect it to: its table
// (table.enabled), the table it follows (table.source) and its
// dead-letter topics: Tableflow's (table.error.mode=dlq), schema
// validation's (schema.validation.failure.action=DLQ) and the data
// contract's default (<topic>-dlq, when it exists and the topic validates
// records: a rule's own dlq.topic is known only to the rule).
func lineageTopicTargets(topic string, tc config.Topic, exists map[string]bool) (*lineage.Table, string, []string) {
	var table *lineage.Table
	var dlqs []string
	add := func(d string) {
		if d != "" && d != topic && !slices.Contains(dlqs, d) {
			dlqs = append(dlqs, d)
		}
	}
	if tc.Table.Enabled {
		ns, name := tc.Table.TableIdent(topic)
		table = &lineage.Table{Namespace: ns, Name: name}
		if tc.Table.ErrorMode == "dlq" {
			add(tc.Table.DLQTopic(topic))
		}
	}
	if tc.KeySchemaValidation || tc.ValueSchemaValidation {
		dlq := tc.SchemaDLQTopic
		if dlq == "" {
			dlq = topic + "-dlq"
		}
		if tc.SchemaFailureDLQ || exists[dlq] {
			add(dlq)
		}
	}
	return table, tc.Table.Source, dlqs
}

// lineageGroupTargets returns a group's retry and dead-letter topics from
// its GROUP configs.
func (b *Broker) lineageGroupTargets(group string) lineage.GroupTargets {
	if b.shares.configs == nil {
		return lineage.GroupTargets{}
	}
	overrides := b.shares.configs.GroupConfig(group)
	if p, ok := retry.PolicyOf(group, overrides); ok {
		t := lineage.GroupTargets{DeadLetter: p.DeadLetterTopic}
		for n := range p.Delays {
			t.Retry = append(t.Retry, retry.LevelTopic(group, n+1))
		}
		return t
	}
	return lineage.GroupTargets{DeadLetter: overrides[config.GroupDLQTopicName]}
}

// lineageBootstrap is the datasets' bootstrap server: the live broker
// with the lowest id, as its first listener advertises it.
func (b *Broker) lineageBootstrap() string {
	brokers := b.cluster.Brokers()
	if len(brokers) == 0 {
		return b.KafkaAddr()
	}
	first := slices.MinFunc(brokers, func(x, y protocol.Broker) int { return int(x.NodeID) - int(y.NodeID) })
	return net.JoinHostPort(first.Host, strconv.Itoa(int(first.Port)))
}

// lineageSchema returns the fields of a topic's latest value schema
// (TopicNameStrategy: <topic>-value), typed as the topic's table would
// be (tableflow.TableSchema) without the record's fixed columns.
func (b *Broker) lineageSchema(ctx context.Context, topic string) ([]lineage.SchemaField, bool, error) {
	if b.schemas == nil {
		return nil, false, nil
	}
	s, _, err := b.schemas.LatestForSubject(ctx, topic+"-value")
	switch {
	case errors.Is(err, registry.ErrSubjectNotFound), errors.Is(err, registry.ErrVersionNotFound):
		return nil, false, nil
	case err != nil:
		return nil, false, err
	}
	sc, err := tableflow.TableSchema(s, nil)
	if errors.Is(err, tableflow.ErrUnsupportedSchema) {
		return nil, false, nil
	} else if err != nil {
		return nil, false, err
	}
	var fields []lineage.SchemaField
	for _, f := range sc.Fields() {
		switch f.Name {
		case tableflow.ColPartition, tableflow.ColOffset, tableflow.ColTimestamp, tableflow.ColKey, tableflow.ColHeaders:
			continue
		}
		fields = append(fields, schemaField(f))
	}
	return fields, true, nil
}

func schemaField(f iceberg.NestedField) lineage.SchemaField {
	out := lineage.SchemaField{Name: f.Name, Description: f.Doc}
	if st, ok := f.Type.(*iceberg.StructType); ok {
		out.Type = "struct"
		for _, c := range st.FieldList {
			out.Fields = append(out.Fields, schemaField(c))
		}
	} else if f.Type != nil {
		out.Type = f.Type.String()
	}
	return out
}

// lineageOwners is the catalog, which the exporter asks for the owners
// of the topics it names (nil before the catalog opened: no ownership
// facets).
func (b *Broker) lineageOwners() governance.Owners {
	if b.gov.catalog.cat == nil {
		return nil
	}
	return b.gov.catalog.cat
}

// lineageLag reports the lag of the groups this broker coordinates per
// group and topic: from the broker's lag tracker when metrics are on,
// else from its own tracker, evaluated at most every lagEvery.
type lineageLag struct {
	b *Broker

	mu      sync.Mutex
	own     *lag.Tracker
	ownRows []lag.Row
	ownAt   time.Time
}

const lagEvery = 5 * time.Second

func (l *lineageLag) rows() []lineage.Lag {
	b := l.b
	select {
	case <-b.ready: // b.lag and b.groups are set
	default:
		return nil
	}
	var rows []lag.Row
	if b.lag != nil {
		rows = b.lag.Rows()
	} else {
		l.mu.Lock()
		if l.own == nil {
			l.own = lag.New(lag.Options{Log: lagLog{b.engine}, Groups: lagGroups{b.groups}, Interval: lagEvery})
		}
		if time.Since(l.ownAt) >= lagEvery {
			l.ownRows, l.ownAt = l.own.Evaluate(), time.Now()
		}
		rows = l.ownRows
		l.mu.Unlock()
	}
	return groupLag(rows)
}

// groupLag sums partition rows per group and topic: records summed, the
// largest lag in seconds, the worst status.
func groupLag(rows []lag.Row) []lineage.Lag {
	type acc struct {
		l      lineage.Lag
		status lag.Status
	}
	var order [][2]string
	by := map[[2]string]*acc{}
	for _, r := range rows {
		k := [2]string{r.Group, r.Topic}
		a := by[k]
		if a == nil {
			a = &acc{l: lineage.Lag{Group: r.Group, Topic: r.Topic}}
			by[k] = a
			order = append(order, k)
		}
		a.l.Records += r.Lag
		if r.HasLagSeconds {
			a.l.Seconds, a.l.HasSeconds = max(a.l.Seconds, r.LagSeconds), true
		}
		a.status = max(a.status, r.Status)
	}
	out := make([]lineage.Lag, 0, len(order))
	for _, k := range order {
		a := by[k]
		a.l.Status = a.status.String()
		out = append(out, a.l)
	}
	return out
}
