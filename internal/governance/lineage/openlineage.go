package lineage

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"

	"github.com/runnel-dev/runnel/internal/governance"
)

// OpenLineage export (spec 2.x run events, https://openlineage.io/spec/2-0-2/OpenLineage.json).
//
// One exporter per cluster, elected through etcd (ElectionKey): every
// broker draws the same merged graph, so one exporter is enough, and
// electing it sends each job's events once per interval instead of once
// per broker. A job's runId is derived from the namespace and the job's
// name (a name-based UUID), so when the exporter moves to another broker
// the job's run goes on under the same id: a streaming job is one long run.
//
// Jobs: one per consumer group (its inputs are the topics it consumes, its
// outputs the topics its transactional id produces: a transactional
// consume → produce pipeline is one job), one per producing client
// outside any group and one per groupless consumer. Datasets are topics:
// namespace "kafka://<bootstrap host:port>", name the topic, with the
// schema facet (the fields of the registry's latest value schema) and the
// ownership facet (the catalog's owner). A job seen for the first time by
// the exporter gets START, then RUNNING every interval.

// ElectionKey is the etcd election of the cluster's exporter.
const ElectionKey = governance.Prefix + "lineage/exporter"

// Spec URLs of the events and facets sent.
const (
	olProducer     = "https://github.com/runnel-dev/runnel"
	olEventSchema  = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"
	olSchemaFacet  = "https://openlineage.io/spec/facets/1-2-0/SchemaDatasetFacet.json#/$defs/SchemaDatasetFacet"
	olOwnerFacet   = "https://openlineage.io/spec/facets/1-0-1/OwnershipDatasetFacet.json#/$defs/OwnershipDatasetFacet"
	olJobTypeFacet = "https://openlineage.io/spec/facets/2-0-4/JobTypeJobFacet.json#/$defs/JobTypeJobFacet"
)

// Defaults of ExporterOptions.
const (
	DefaultQueueSize   = 1000
	DefaultMaxAttempts = 6
)

// SchemaField is a field of a topic's value schema.
type SchemaField struct {
	Name        string        `json:"name"`
	Type        string        `json:"type,omitempty"`
	Description string        `json:"description,omitempty"`
	Fields      []SchemaField `json:"fields,omitempty"`
}

// ExporterOptions configure an Exporter. Client, URL, Graph and Bootstrap
// are required.
type ExporterOptions struct {
	Client   *clientv3.Client
	BrokerID int32
	// URL receives the events (Marquez: http://host:5000/api/v1/lineage).
	URL       string
	Namespace string
	Interval  time.Duration
	// Graph draws the cluster's graph (Service.Graph).
	Graph func() Graph
	// Bootstrap is a bootstrap server, "host:port", naming the datasets'
	// namespace.
	Bootstrap func() string
	// Schema returns the fields of a topic's latest value schema; ok is
	// false when it has none. Nil: no schema facets.
	Schema func(ctx context.Context, topic string) (fields []SchemaField, ok bool, err error)
	// Owners is the catalog (nil, or returning nil: no ownership facets).
	Owners func() governance.Owners
	HTTP   *http.Client
	Logger *slog.Logger
	Now    func() time.Time
	// QueueSize bounds the events waiting to be sent (the oldest are
	// dropped); MaxAttempts bounds the sends of one event.
	QueueSize, MaxAttempts int
	// Backoff is the first retry's delay, doubled up to 30 s (1 s when 0).
	Backoff time.Duration
}

// Exporter sends the cluster's lineage as OpenLineage run events while
// its broker is the elected exporter.
type Exporter struct {
	o   ExporterOptions
	log *slog.Logger

	mu      sync.Mutex
	queue   [][]byte
	dropped int64
	sent    int64
	wake    chan struct{}
	started map[string]bool // jobs that got START in this term

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// StartExporter starts campaigning and, once elected, exporting.
func StartExporter(o ExporterOptions) *Exporter {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.HTTP == nil {
		o.HTTP = &http.Client{Timeout: 10 * time.Second}
	}
	if o.Interval <= 0 {
		o.Interval = time.Minute
	}
	if o.QueueSize <= 0 {
		o.QueueSize = DefaultQueueSize
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = DefaultMaxAttempts
	}
	if o.Backoff <= 0 {
		o.Backoff = time.Second
	}
	if o.Namespace == "" {
		o.Namespace = "runnel"
	}
	x := &Exporter{o: o, log: o.Logger.With("component", "openlineage"), wake: make(chan struct{}, 1), started: map[string]bool{}}
	ctx, cancel := context.WithCancel(context.Background())
	x.cancel = cancel
	x.wg.Add(2)
	go x.campaign(ctx)
	go x.send(ctx)
	return x
}

// Close stops exporting (events still queued are dropped) and waits.
func (x *Exporter) Close() error {
	x.cancel()
	x.wg.Wait()
	return nil
}

// Stats returns the events sent and dropped so far.
func (x *Exporter) Stats() (sent, dropped int64) {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.sent, x.dropped
}

func (x *Exporter) campaign(ctx context.Context) {
	defer x.wg.Done()
	for ctx.Err() == nil {
		if err := x.term(ctx); err != nil && ctx.Err() == nil {
			x.log.Warn("openlineage: exporter term ended", "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
	}
}

// term campaigns and, once elected, exports every interval until the
// session ends.
func (x *Exporter) term(ctx context.Context) error {
	sess, err := concurrency.NewSession(x.o.Client, concurrency.WithTTL(10), concurrency.WithContext(ctx))
	if err != nil {
		return err
	}
	defer sess.Close()
	el := concurrency.NewElection(sess, ElectionKey)
	campaigned := make(chan error, 1)
	go func() { campaigned <- el.Campaign(ctx, strconv.Itoa(int(x.o.BrokerID))) }()
	select {
	case err := <-campaigned:
		if err != nil {
			return err
		}
	case <-ctx.Done():
		return nil
	}
	x.log.Info("openlineage: elected exporter", "url", x.o.URL)
	defer func() {
		rctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_ = el.Resign(rctx)
		cancel()
	}()
	x.mu.Lock()
	x.started = map[string]bool{}
	x.mu.Unlock()
	tick := time.NewTicker(x.o.Interval)
	defer tick.Stop()
	for {
		x.export(sess.Ctx())
		select {
		case <-ctx.Done():
			return nil
		case <-sess.Done():
			return fmt.Errorf("exporter session lost")
		case <-tick.C:
		}
	}
}

// export queues one round of events.
func (x *Exporter) export(ctx context.Context) {
	for _, ev := range x.Events(ctx) {
		b, err := json.Marshal(ev)
		if err != nil {
			x.log.Error("openlineage: encoding an event", "err", err)
			continue
		}
		x.enqueue(b)
	}
}

func (x *Exporter) enqueue(b []byte) {
	x.mu.Lock()
	if len(x.queue) >= x.o.QueueSize {
		x.queue = x.queue[1:]
		x.dropped++
	}
	x.queue = append(x.queue, b)
	x.mu.Unlock()
	select {
	case x.wake <- struct{}{}:
	default:
	}
}

// send posts the queued events in order, retrying each with back-off.
func (x *Exporter) send(ctx context.Context) {
	defer x.wg.Done()
	for {
		x.mu.Lock()
		var b []byte
		if len(x.queue) > 0 {
			b = x.queue[0]
			x.queue = x.queue[1:]
		}
		x.mu.Unlock()
		if b == nil {
			select {
			case <-ctx.Done():
				return
			case <-x.wake:
				continue
			}
		}
		delay := x.o.Backoff
		for attempt := 1; ; attempt++ {
			err := x.post(ctx, b)
			if err == nil {
				x.mu.Lock()
				x.sent++
				x.mu.Unlock()
				break
			}
			if ctx.Err() != nil {
				return
			}
			if attempt >= x.o.MaxAttempts {
				x.log.Warn("openlineage: dropping an event after failed sends", "attempts", attempt, "err", err)
				x.mu.Lock()
				x.dropped++
				x.mu.Unlock()
				break
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(delay):
			}
			delay = min(2*delay, 30*time.Second)
		}
	}
}

func (x *Exporter) post(ctx context.Context, b []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, x.o.URL, bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := x.o.HTTP.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s answered %s: %s", x.o.URL, resp.Status, strings.TrimSpace(string(msg)))
	}
	return nil
}

// RunEvent is an OpenLineage run event.
type RunEvent struct {
	EventType string    `json:"eventType"`
	EventTime string    `json:"eventTime"`
	Producer  string    `json:"producer"`
	SchemaURL string    `json:"schemaURL"`
	Run       Run       `json:"run"`
	Job       Job       `json:"job"`
	Inputs    []Dataset `json:"inputs"`
	Outputs   []Dataset `json:"outputs"`
}

// Run is an event's run.
type Run struct {
	RunID string `json:"runId"`
}

// Job is an event's job.
type Job struct {
	Namespace string         `json:"namespace"`
	Name      string         `json:"name"`
	Facets    map[string]any `json:"facets,omitempty"`
}

// Dataset is an event's input or output.
type Dataset struct {
	Namespace string         `json:"namespace"`
	Name      string         `json:"name"`
	Facets    map[string]any `json:"facets,omitempty"`
}

// RunID is the run id of a job: a UUID derived from the namespace and the
// job's name, the same on every broker.
func RunID(namespace, job string) string {
	return uuid.NewSHA1(uuid.NameSpaceURL, []byte("runnel:lineage:"+namespace+"/"+job)).String()
}

// Events builds one round of events from the graph: START for a job not
// seen before in this term, RUNNING otherwise.
func (x *Exporter) Events(ctx context.Context) []RunEvent {
	g := x.o.Graph()
	dsNamespace := "kafka://" + x.o.Bootstrap()
	now := x.o.Now().UTC().Format(time.RFC3339Nano)
	type job struct {
		node            Node
		inputs, outputs []string
	}
	jobs := map[string]*job{}
	var order []string
	for _, n := range g.Nodes {
		switch n.Kind {
		case NodeGroup, NodeProducer, NodeConsumer:
			jobs[n.ID] = &job{node: n}
			order = append(order, n.ID)
		}
	}
	topicName := func(id string) (string, bool) { return strings.CutPrefix(id, NodeTopic+":") }
	for _, e := range g.Edges {
		switch e.Kind {
		case EdgeConsumes:
			if j := jobs[e.To]; j != nil {
				if t, ok := topicName(e.From); ok && !slices.Contains(j.inputs, t) {
					j.inputs = append(j.inputs, t)
				}
			}
		case EdgeProduces:
			if j := jobs[e.From]; j != nil {
				if t, ok := topicName(e.To); ok && !slices.Contains(j.outputs, t) {
					j.outputs = append(j.outputs, t)
				}
			}
		}
	}
	facets := map[string]map[string]any{}
	datasets := func(topics []string) []Dataset {
		out := make([]Dataset, 0, len(topics))
		slices.Sort(topics)
		for _, t := range topics {
			f, ok := facets[t]
			if !ok {
				f = x.datasetFacets(ctx, t)
				facets[t] = f
			}
			out = append(out, Dataset{Namespace: dsNamespace, Name: t, Facets: f})
		}
		return out
	}
	var events []RunEvent
	for _, id := range order {
		j := jobs[id]
		if len(j.inputs) == 0 && len(j.outputs) == 0 {
			continue
		}
		jobType := map[string]string{NodeGroup: "CONSUMER_GROUP", NodeProducer: "PRODUCER", NodeConsumer: "CONSUMER"}[j.node.Kind]
		events = append(events, RunEvent{
			EventType: "RUNNING", EventTime: now, Producer: olProducer, SchemaURL: olEventSchema,
			Run: Run{RunID: RunID(x.o.Namespace, id)},
			Job: Job{Namespace: x.o.Namespace, Name: id, Facets: map[string]any{
				"jobType": map[string]any{"_producer": olProducer, "_schemaURL": olJobTypeFacet,
					"processingType": "STREAMING", "integration": "KAFKA", "jobType": jobType},
			}},
			Inputs: datasets(j.inputs), Outputs: datasets(j.outputs),
		})
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	current := make(map[string]bool, len(events)) // bounded by the graph's jobs
	for i := range events {
		name := events[i].Job.Name
		if !x.started[name] {
			events[i].EventType = "START"
		}
		current[name] = true
	}
	x.started = current
	return events
}

// datasetFacets returns a topic's schema and ownership facets (none when
// unknown; a failed look-up is logged and left out).
func (x *Exporter) datasetFacets(ctx context.Context, topic string) map[string]any {
	f := map[string]any{}
	if x.o.Schema != nil {
		fields, ok, err := x.o.Schema(ctx, topic)
		switch {
		case err != nil:
			x.log.Warn("openlineage: reading a topic's schema", "topic", topic, "err", err)
		case ok:
			f["schema"] = map[string]any{"_producer": olProducer, "_schemaURL": olSchemaFacet, "fields": fields}
		}
	}
	if x.o.Owners != nil {
		if owners := x.o.Owners(); owners != nil {
			owner, ok, err := owners.Owner(ctx, topic)
			switch {
			case err != nil:
				x.log.Warn("openlineage: reading a topic's owner", "topic", topic, "err", err)
			case ok && owner != "":
				f["ownership"] = map[string]any{"_producer": olProducer, "_schemaURL": olOwnerFacet,
					"owners": []map[string]string{{"name": ownerURN(owner), "type": "OWNER"}}}
			}
		}
	}
	if len(f) == 0 {
		return nil
	}
	return f
}

// ownerURN turns a principal or team ("User:bob", "Team:payments") into
// OpenLineage's recommended owner form ("user:bob", "team:payments").
func ownerURN(owner string) string {
	if typ, name, ok := strings.Cut(owner, ":"); ok {
		return strings.ToLower(typ) + ":" + name
	}
	return owner
}
