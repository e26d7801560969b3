package catalog

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/runnel-dev/runnel/internal/auth"
	"github.com/runnel-dev/runnel/internal/governance"
	"github.com/runnel-dev/runnel/internal/metadata"
)

// Log is the log as the catalog reads it (the stream engine, through the
// broker's adapter).
type Log interface {
	// Topics lists the topics, sorted by name.
	Topics() []Topic
	// Changed is closed when the log moved on (topics created or
	// deleted among other things).
	Changed() <-chan struct{}
	// Newest returns up to n of the newest records of a partition that a
	// read_committed consumer would see, oldest first.
	Newest(ctx context.Context, topic string, partition int32, n int) ([]Record, error)
}

// Topic is a topic of the log.
type Topic struct {
	Name       string
	Partitions int32
	Internal   bool
}

// Record is a record of the log.
type Record struct {
	Partition int32
	Offset    int64
	Timestamp time.Time
	Key       []byte // nil for a null key
	Value     []byte // nil for a null value (a tombstone)
}

// Options configure a Catalog.
type Options struct {
	// Client is the etcd client; required.
	Client *clientv3.Client
	// Log is the log; required.
	Log Log
	// Registry is the schema registry; nil means no schemas.
	Registry Registry
	// Authorizer decides what callers may do; nil allows everything.
	Authorizer governance.Authorizer
	// Auditor records every write; nil records nothing.
	Auditor governance.Auditor
	// Logger receives background failures; discarded when nil.
	Logger *slog.Logger
	// Now is the clock of createdAt and updatedAt; time.Now when nil.
	Now func() time.Time
	// TopicsEvery bounds how often the topics are looked at after the log
	// changed (it changes on every sequenced batch); 250 ms when zero.
	TopicsEvery time.Duration
}

// Catalog is the stream catalog of one broker. Safe for concurrent use.
type Catalog struct {
	o      Options
	prefix string
	log    *slog.Logger
	mirror *metadata.Mirror[*item]
	views  *views
	ix     *index

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu       sync.RWMutex
	products map[string]*storedProduct
	teams    map[string]*Team
	tagDefs  map[string]*TagDef
	topics   map[string]*topicState

	// Topics whose schemas must be looked at again, for the schema
	// worker.
	dirtyMu sync.Mutex
	dirty   map[string]bool
	kick    chan struct{}
}

// topicState is what the catalog knows of a topic of the log.
type topicState struct {
	partitions int32
	value, key *schemaView // nil until looked up, or without a schema
}

// item is one stored object, decoded.
type item struct {
	kind, name string
	product    *storedProduct
	team       *Team
	tag        *TagDef
}

// Kinds of stored objects, the key segment after the prefix.
const (
	kindProduct = "products"
	kindTeam    = "teams"
	kindTag     = "tags"
)

// New loads the catalog and starts its watches; Close stops them.
func New(ctx context.Context, o Options) (*Catalog, error) {
	if o.Client == nil || o.Log == nil {
		return nil, errors.New("catalog: an etcd client and a log are required")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.TopicsEvery <= 0 {
		o.TopicsEvery = 250 * time.Millisecond
	}
	c := &Catalog{
		o: o, prefix: governance.Prefix + "catalog/", log: o.Logger, views: newViews(o.Registry), ix: newIndex(),
		products: map[string]*storedProduct{}, teams: map[string]*Team{}, tagDefs: map[string]*TagDef{},
		topics: map[string]*topicState{}, dirty: map[string]bool{}, kick: make(chan struct{}, 1),
	}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	c.mirror = metadata.NewMirror(metadata.MirrorOptions[*item]{
		Client: o.Client, Prefix: c.prefix, What: "the stream catalog",
		Decode: c.decode, Publish: c.publish, Logger: o.Logger,
	})
	c.syncTopics()
	if err := c.mirror.Start(ctx); err != nil {
		c.cancel()
		return nil, fmt.Errorf("catalog: load: %w", err)
	}
	c.wg.Add(2)
	go c.watchTopics()
	go c.schemaWorker()
	if o.Registry != nil {
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			o.Registry.WatchSubjects(c.ctx, c.subjectChanged, c.markAllDirty)
		}()
	}
	return c, nil
}

// Close stops the watches and waits for them.
func (c *Catalog) Close() error {
	c.cancel()
	err := c.mirror.Close()
	c.wg.Wait()
	return err
}

func (c *Catalog) key(kind, name string) string { return c.prefix + kind + "/" + name }

// decode reads one stored object; one it cannot read is logged and left
// out.
func (c *Catalog) decode(key string, value []byte) (*item, bool) {
	rest, _ := strings.CutPrefix(key, c.prefix)
	kind, name, ok := strings.Cut(rest, "/")
	if !ok || name == "" {
		c.log.Warn("catalog: ignoring a key of unknown shape", "key", key)
		return nil, false
	}
	it := &item{kind: kind, name: name}
	var err error
	switch kind {
	case kindProduct:
		it.product = &storedProduct{}
		err = json.Unmarshal(value, it.product)
		it.product.Topic = name
	case kindTeam:
		it.team = &Team{}
		err = json.Unmarshal(value, it.team)
		it.team.Name = name
	case kindTag:
		it.tag = &TagDef{}
		err = json.Unmarshal(value, it.tag)
		it.tag.Name = name
	default:
		err = fmt.Errorf("unknown kind %q", kind)
	}
	if err != nil {
		c.log.Warn("catalog: ignoring an unreadable object", "key", key, "err", err)
		return nil, false
	}
	return it, true
}

// publish takes the mirror's objects: the maps are replaced, and the
// products whose metadata changed (a new object, or one gone) are indexed
// again, one by one.
func (c *Catalog) publish(items []*item) {
	products := make(map[string]*storedProduct, len(c.products))
	teams := map[string]*Team{}
	tags := map[string]*TagDef{}
	for _, it := range items {
		switch it.kind {
		case kindProduct:
			products[it.name] = it.product
		case kindTeam:
			teams[it.name] = it.team
		case kindTag:
			tags[it.name] = it.tag
		}
	}
	c.mu.Lock()
	var changed []string
	for name, p := range products {
		if c.products[name] != p {
			changed = append(changed, name)
		}
	}
	for name := range c.products {
		if _, ok := products[name]; !ok {
			changed = append(changed, name)
		}
	}
	c.products, c.teams, c.tagDefs = products, teams, tags
	for _, name := range changed {
		c.reindexLocked(name)
	}
	c.mu.Unlock()
}

// reindexLocked puts a product's entry in the index, or removes it when
// its topic is gone. Callers hold mu (read or write).
func (c *Catalog) reindexLocked(topic string) {
	t := c.topics[topic]
	if t == nil {
		c.ix.remove(topic)
		return
	}
	p := c.productLocked(topic, c.products[topic], t)
	var fields []Field
	if p.Schema != nil {
		fields = append(fields, p.Schema.Fields...)
	}
	if p.KeySchema != nil {
		fields = append(fields, p.KeySchema.Fields...)
	}
	c.ix.put(newDoc(p.ProductCore, fields))
}

// productLocked assembles a product from its metadata, its topic and its
// schemas. Callers hold mu.
func (c *Catalog) productLocked(topic string, sp *storedProduct, t *topicState) Product {
	p := Product{ProductCore: core(topic, sp, t)}
	if t != nil {
		if t.value != nil {
			p.Schema = withFieldTags(&t.value.summary, p.FieldTags)
			p.Contract = t.value.contract
		}
		if t.key != nil {
			// A product's field tags name value fields.
			p.KeySchema = withFieldTags(&t.key.summary, nil)
		}
	}
	// A product carries the tags of its fields.
	tags := slices.Clone(p.Tags)
	for _, s := range []*Schema{p.Schema, p.KeySchema} {
		if s != nil {
			for _, f := range s.Fields {
				tags = append(tags, f.Tags...)
			}
		}
	}
	for _, ft := range p.FieldTags {
		tags = append(tags, ft...)
	}
	p.Tags = cleanTags(tags)
	return p
}

// watchTopics follows the log's topics: at most every TopicsEvery after
// the log changed, created topics are added and deleted ones dropped.
func (c *Catalog) watchTopics() {
	defer c.wg.Done()
	for {
		// Take the signal before looking, so a change made while looking
		// or pausing is not missed.
		changed := c.o.Log.Changed()
		c.syncTopics()
		select {
		case <-c.ctx.Done():
			return
		case <-time.After(c.o.TopicsEvery):
		}
		select {
		case <-c.ctx.Done():
			return
		case <-changed:
		}
	}
}

// syncTopics compares the log's topics with the catalog's.
func (c *Catalog) syncTopics() {
	ts := c.o.Log.Topics()
	seen := make(map[string]bool, len(ts))
	var added []string
	c.mu.Lock()
	for _, t := range ts {
		if t.Internal {
			continue
		}
		seen[t.Name] = true
		cur := c.topics[t.Name]
		switch {
		case cur == nil:
			c.topics[t.Name] = &topicState{partitions: t.Partitions}
			added = append(added, t.Name)
			c.reindexLocked(t.Name)
		case cur.partitions != t.Partitions:
			cp := *cur
			cp.partitions = t.Partitions
			c.topics[t.Name] = &cp
			c.reindexLocked(t.Name)
		}
	}
	for name := range c.topics {
		if !seen[name] {
			delete(c.topics, name)
			c.reindexLocked(name)
		}
	}
	c.mu.Unlock()
	c.markDirty(added...)
}

// hasTopic reports whether topic exists. A topic the catalog has not
// seen yet (its topic watch looks at the log at most every TopicsEvery)
// is looked for in the log at once, so a topic created a moment ago
// already has a product.
func (c *Catalog) hasTopic(topic string) bool {
	c.mu.RLock()
	_, ok := c.topics[topic]
	c.mu.RUnlock()
	if ok {
		return true
	}
	c.syncTopics()
	c.mu.RLock()
	_, ok = c.topics[topic]
	c.mu.RUnlock()
	return ok
}

// subjectChanged marks the topic of a TopicNameStrategy subject for the
// schema worker.
func (c *Catalog) subjectChanged(subject string) {
	if strings.HasPrefix(subject, ":") {
		return // another schema context
	}
	if t, ok := strings.CutSuffix(subject, "-value"); ok {
		c.markDirty(t)
	} else if t, ok := strings.CutSuffix(subject, "-key"); ok {
		c.markDirty(t)
	}
}

func (c *Catalog) markDirty(topics ...string) {
	if len(topics) == 0 {
		return
	}
	c.dirtyMu.Lock()
	for _, t := range topics {
		c.dirty[t] = true
	}
	c.dirtyMu.Unlock()
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// markAllDirty has every topic's schemas looked at again: the registry's
// watch is (again) in place, and changes before it may have been missed.
func (c *Catalog) markAllDirty() {
	c.mu.RLock()
	names := make([]string, 0, len(c.topics))
	for n := range c.topics {
		names = append(names, n)
	}
	c.mu.RUnlock()
	c.markDirty(names...)
}

// schemaWorker looks up the schemas of the topics marked dirty and
// re-indexes those whose schemas changed.
func (c *Catalog) schemaWorker() {
	defer c.wg.Done()
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-c.kick:
		}
		for {
			c.dirtyMu.Lock()
			batch := make([]string, 0, len(c.dirty))
			for t := range c.dirty {
				batch = append(batch, t)
			}
			clear(c.dirty)
			c.dirtyMu.Unlock()
			if len(batch) == 0 {
				break
			}
			slices.Sort(batch)
			for _, t := range batch {
				if c.ctx.Err() != nil {
					return
				}
				if err := c.refreshSchemas(c.ctx, t); err != nil && c.ctx.Err() == nil {
					c.log.Warn("catalog: looking up a topic's schemas", "topic", t, "err", err)
					c.markDirtyLater(t)
				}
			}
		}
	}
}

// markDirtyLater marks a topic again after a pause (the registry failed).
func (c *Catalog) markDirtyLater(topic string) {
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		select {
		case <-c.ctx.Done():
		case <-time.After(time.Second):
			c.markDirty(topic)
		}
	}()
}

// refreshSchemas reads a topic's latest value and key schemas and, when
// they differ from what the catalog holds, re-indexes the product.
func (c *Catalog) refreshSchemas(ctx context.Context, topic string) error {
	c.mu.RLock()
	t := c.topics[topic]
	c.mu.RUnlock()
	if t == nil {
		return nil
	}
	value, err := c.views.latest(ctx, valueSubject(topic), t.value)
	if err != nil {
		return err
	}
	key, err := c.views.latest(ctx, keySubject(topic), t.key)
	if err != nil {
		return err
	}
	c.setSchemas(topic, value, key)
	return nil
}

// setSchemas records a topic's schema views, re-indexing on a change.
func (c *Catalog) setSchemas(topic string, value, key *schemaView) {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := c.topics[topic]
	if t == nil || (t.value == value && t.key == key) {
		return
	}
	cp := *t
	cp.value, cp.key = value, key
	c.topics[topic] = &cp
	c.reindexLocked(topic)
}

// Product returns the product of topic, its schemas read from the
// registry now. A topic that does not exist and has no metadata is
// governance.ErrNotFound.
func (c *Catalog) Product(ctx context.Context, topic string) (Product, error) {
	if err := ValidTopic(topic); err != nil {
		return Product{}, err
	}
	if c.hasTopic(topic) {
		// Fresh schemas: the registry may have moved on before its
		// watch told the worker.
		if err := c.refreshSchemas(ctx, topic); err != nil {
			return Product{}, err
		}
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	sp, t := c.products[topic], c.topics[topic]
	if sp == nil && t == nil {
		return Product{}, fmt.Errorf("%w: no product %q (no such topic and no metadata)", governance.ErrNotFound, topic)
	}
	return c.productLocked(topic, sp, t), nil
}

// Search answers a query over the products of existing topics.
func (c *Catalog) Search(q Query) (SearchResult, error) {
	if q.Limit <= 0 {
		q.Limit = 50
	}
	if q.Limit > 1000 || q.Offset < 0 {
		return SearchResult{}, invalid("limit must be 1..1000 and offset at least 0")
	}
	return c.ix.search(q)
}

// Owner returns the owner of the product of topic (governance.Owners).
func (c *Catalog) Owner(_ context.Context, topic string) (string, bool, error) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	sp := c.products[topic]
	if sp == nil || sp.Owner == "" {
		return "", false, nil
	}
	return sp.Owner, true, nil
}

// Owns reports whether p owns the product of topic: it is the owner, or
// a member of the owning team (governance.Owners).
func (c *Catalog) Owns(_ context.Context, topic string, p auth.Principal) (bool, error) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	sp := c.products[topic]
	if sp == nil {
		return false, nil
	}
	return c.ownsLocked(sp.Owner, p), nil
}

var _ governance.Owners = (*Catalog)(nil)

// ownsLocked reports whether p is owner or a member of the team owner
// names. Callers hold mu.
func (c *Catalog) ownsLocked(owner string, p auth.Principal) bool {
	if owner == "" {
		return false
	}
	if owner == p.String() {
		return true
	}
	if team, ok := strings.CutPrefix(owner, "Team:"); ok {
		if t := c.teams[team]; t != nil {
			return slices.Contains(t.Members, p.String())
		}
	}
	return false
}

// Teams lists the teams, sorted by name.
func (c *Catalog) Teams() []Team {
	c.mu.RLock()
	defer c.mu.RUnlock()
	out := make([]Team, 0, len(c.teams))
	for _, t := range c.teams {
		out = append(out, *t)
	}
	slices.SortFunc(out, func(a, b Team) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// Team returns one team.
func (c *Catalog) Team(name string) (Team, error) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	t := c.teams[name]
	if t == nil {
		return Team{}, fmt.Errorf("%w: no team %q", governance.ErrNotFound, name)
	}
	return *t, nil
}

// TagDefs lists the tag definitions, sorted by name.
func (c *Catalog) TagDefs() []TagDef {
	c.mu.RLock()
	defer c.mu.RUnlock()
	out := make([]TagDef, 0, len(c.tagDefs))
	for _, t := range c.tagDefs {
		out = append(out, *t)
	}
	slices.SortFunc(out, func(a, b TagDef) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// TagDef returns one tag definition.
func (c *Catalog) TagDef(name string) (TagDef, error) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	t := c.tagDefs[name]
	if t == nil {
		return TagDef{}, fmt.Errorf("%w: no tag definition %q", governance.ErrNotFound, name)
	}
	return *t, nil
}

// Diff compares two versions of a topic's value subject.
func (c *Catalog) Diff(ctx context.Context, topic string, from, to int) (SchemaDiff, error) {
	if err := ValidTopic(topic); err != nil {
		return SchemaDiff{}, err
	}
	if from < 1 || to < 1 {
		return SchemaDiff{}, invalid("from and to must be version numbers (1 or more)")
	}
	subject := valueSubject(topic)
	a, err := c.views.version(ctx, subject, from, true, nil)
	if err != nil {
		return SchemaDiff{}, err
	}
	b, err := c.views.version(ctx, subject, to, true, nil)
	if err != nil {
		return SchemaDiff{}, err
	}
	switch {
	case a == nil:
		return SchemaDiff{}, fmt.Errorf("%w: subject %s has no version %d", governance.ErrNotFound, subject, from)
	case b == nil:
		return SchemaDiff{}, fmt.Errorf("%w: subject %s has no version %d", governance.ErrNotFound, subject, to)
	}
	d := SchemaDiff{Subject: subject, From: from, To: to}
	d.Added, d.Removed, d.Changed = diffFields(a.summary.Fields, b.summary.Fields)
	return d, nil
}
