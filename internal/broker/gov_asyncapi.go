package broker

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"

	"github.com/runnel-dev/runnel/internal/auth"
	"github.com/runnel-dev/runnel/internal/config"
	"github.com/runnel-dev/runnel/internal/governance"
	"github.com/runnel-dev/runnel/internal/governance/asyncapi"
	"github.com/runnel-dev/runnel/internal/governance/catalog"
	"github.com/runnel-dev/runnel/internal/governance/lineage"
	"github.com/runnel-dev/runnel/internal/registry"
	"github.com/runnel-dev/runnel/internal/stream"
)

// AsyncAPI (governance): GET /api/v1/asyncapi exports the cluster's
// products as an AsyncAPI 3.0 document, POST /api/v1/asyncapi/import
// creates topics, subjects and catalog metadata from one. The service
// reaches the engine's topics (as the Kafka front end's CreateTopics
// reaches the engine), the registry, the stream catalog and lineage
// through the adapters below.

// govAsyncAPI is the broker's asyncapi part of governance (governance.go).
type govAsyncAPI struct {
	svc *asyncapi.Service
}

func (b *Broker) openAsyncAPI(ctx context.Context) error {
	o := asyncapi.Options{
		ClusterID:   b.cfg.ClusterID,
		Listeners:   b.asyncapiListeners,
		RegistryURL: b.asyncapiRegistryURL,
		Topics:      asyncapiTopics{b},
		Schemas:     asyncapiSchemas{b.schemas},
		Auditor:     b.govAuditor(),
	}
	if c := b.gov.catalog.cat; c != nil {
		o.Catalog = asyncapiCatalog{c}
	}
	if l := b.gov.lineage.svc; l != nil {
		o.Lineage = asyncapiLineage{l}
	}
	svc, err := asyncapi.New(o)
	if err != nil {
		return fmt.Errorf("broker: asyncapi: %w", err)
	}
	b.gov.asyncapi.svc = svc
	return nil
}

func (b *Broker) mountAsyncAPI(mux *http.ServeMux, g *auth.Guard) {
	svc := b.gov.asyncapi.svc
	if svc == nil {
		return
	}
	authz := b.govAuthorizer()
	mux.Handle("GET /api/v1/asyncapi", govAuthenticated(g, governance.Handler(authz, svc.HandleExport)))
	mux.Handle("POST /api/v1/asyncapi/import", govAuthenticated(g, governance.Handler(authz, svc.HandleImport)))
}

func (b *Broker) closeAsyncAPI() error { return nil }

// asyncapiListeners describes the Kafka listeners as clients reach them:
// the advertised address, TLS, SASL mechanisms and client certificates.
func (b *Broker) asyncapiListeners() []asyncapi.Listener {
	self, err := advertised(b.cfg, b.listeners)
	if err != nil {
		return nil
	}
	var out []asyncapi.Listener
	for i, kl := range b.listeners {
		l := asyncapi.Listener{Name: kl.cfg.Name, TLS: kl.cfg.TLS()}
		if i < len(self.Endpoints) {
			ep := self.Endpoints[i]
			l.Host = net.JoinHostPort(ep.Host, fmt.Sprint(ep.Port))
		}
		if kl.cfg.SASL() {
			l.SASL = b.cfg.SASL.Mechanisms
		}
		l.ClientCert = l.TLS && b.cfg.TLS.ClientCAFile != "" && b.cfg.TLS.ClientAuth != "" && b.cfg.TLS.ClientAuth != "none"
		out = append(out, l)
	}
	return out
}

// asyncapiRegistryURL is the schema registry's URL ("" before it
// listens).
func (b *Broker) asyncapiRegistryURL() string {
	if b.registryLn == nil {
		return ""
	}
	scheme := "http"
	if b.cfg.TLS.Enabled() {
		scheme = "https"
	}
	host, port, err := net.SplitHostPort(b.registryLn.Addr().String())
	if err != nil {
		return ""
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return scheme + "://" + net.JoinHostPort(host, port)
}

// asyncapiTopics presents the engine's topics to the AsyncAPI service.
type asyncapiTopics struct{ b *Broker }

func (t asyncapiTopics) List() []asyncapi.Topic {
	var out []asyncapi.Topic
	for _, ti := range t.b.engine.Topics() {
		if ti.Internal {
			continue
		}
		out = append(out, t.topic(ti))
	}
	return out
}

func (t asyncapiTopics) Get(name string) (asyncapi.Topic, bool) {
	ti, ok := t.b.engine.Topic(name)
	if !ok || ti.Internal {
		return asyncapi.Topic{}, false
	}
	return t.topic(ti), true
}

// topic adds the effective value of every topic config: the topic's
// override, else the broker's topic default, else the table's default,
// as DescribeConfigs reports them.
func (t asyncapiTopics) topic(ti stream.TopicInfo) asyncapi.Topic {
	eff := map[string]string{}
	for _, d := range config.TopicDefs() {
		v, ok := ti.Configs[d.Name]
		if !ok {
			if v, ok = t.b.cfg.TopicDefaults[d.Name]; !ok {
				v = d.Default
			}
		}
		eff[d.Name] = v
	}
	return asyncapi.Topic{Name: ti.Name, Partitions: ti.Partitions, Overrides: ti.Configs, Effective: eff}
}

func (t asyncapiTopics) Create(ctx context.Context, name string, partitions int32, configs map[string]string, validateOnly bool) (int32, error) {
	ti, err := t.b.engine.CreateTopic(ctx, name, partitions, configs, validateOnly)
	switch {
	case err == nil:
		return ti.Partitions, nil
	case errors.Is(err, stream.ErrInvalidTopic), errors.Is(err, stream.ErrInvalidPartitions), errors.Is(err, stream.ErrInvalidConfig):
		return 0, governance.Errorf(http.StatusBadRequest, "topic %s: %v", name, err)
	case errors.Is(err, stream.ErrTopicExists):
		return 0, fmt.Errorf("%w: topic %s was created meanwhile", governance.ErrConflict, name)
	}
	return 0, err
}

// asyncapiSchemas presents the schema registry to the AsyncAPI service.
type asyncapiSchemas struct{ r *registry.Registry }

func (s asyncapiSchemas) Latest(ctx context.Context, subject string) (asyncapi.Schema, bool, error) {
	ss, err := s.r.Version(ctx, subject, -1, false)
	if errors.Is(err, registry.ErrSubjectNotFound) || errors.Is(err, registry.ErrVersionNotFound) {
		return asyncapi.Schema{}, false, nil
	}
	if err != nil {
		return asyncapi.Schema{}, false, err
	}
	out := asyncapi.Schema{Type: ss.Type, Text: ss.Schema, Version: ss.Version, ID: ss.ID}
	if out.Type == "" {
		out.Type = asyncapi.TypeAvro
	}
	for _, r := range ss.References {
		out.References = append(out.References, fmt.Sprintf("%s:%d", r.Subject, r.Version))
	}
	return out, true, nil
}

func (s asyncapiSchemas) request(subject string, sc asyncapi.Schema) registry.RegisterRequest {
	return registry.RegisterRequest{Subject: subject, Schema: sc.Text, Type: sc.Type}
}

func (s asyncapiSchemas) Registered(ctx context.Context, subject string, sc asyncapi.Schema) (bool, error) {
	_, err := s.r.Lookup(ctx, s.request(subject, sc), false)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, registry.ErrSubjectNotFound), errors.Is(err, registry.ErrSchemaNotFound),
		errors.Is(err, registry.ErrInvalidSchema):
		// An invalid schema is answered by Incompatible.
		return false, nil
	}
	return false, err
}

func (s asyncapiSchemas) Incompatible(ctx context.Context, subject string, sc asyncapi.Schema) ([]string, error) {
	msgs, err := s.r.CheckCompatibility(ctx, s.request(subject, sc), 0)
	switch {
	case err == nil:
		return msgs, nil
	case errors.Is(err, registry.ErrInvalidSchema):
		return []string{err.Error()}, nil
	case errors.Is(err, registry.ErrSubjectNotFound):
		return nil, nil
	}
	return nil, err
}

func (s asyncapiSchemas) Register(ctx context.Context, subject string, sc asyncapi.Schema) (int, int, error) {
	ss, err := s.r.Register(ctx, s.request(subject, sc))
	if err != nil {
		if errors.Is(err, registry.ErrInvalidSchema) || errors.Is(err, registry.ErrIncompatible) {
			return 0, 0, governance.Errorf(http.StatusConflict, "%s: %s", subject, strings.TrimSpace(err.Error()))
		}
		return 0, 0, err
	}
	return ss.Version, ss.ID, nil
}

// asyncapiCatalog presents the stream catalog to the AsyncAPI service.
type asyncapiCatalog struct{ c *catalog.Catalog }

func (a asyncapiCatalog) Product(ctx context.Context, topic string) (asyncapi.Product, bool, error) {
	p, err := a.c.Product(ctx, topic)
	if errors.Is(err, governance.ErrNotFound) {
		return asyncapi.Product{}, false, nil
	}
	if err != nil {
		return asyncapi.Product{}, false, err
	}
	out := asyncapi.Product{Description: p.Description, Owner: p.Owner, Domain: p.Domain, Tags: p.Tags}
	for _, l := range p.Links {
		out.Links = append(out.Links, asyncapi.Link{Title: l.Title, URL: l.URL})
	}
	return out, p.Version > 0, nil
}

// SetProduct replaces the product's description, owner, domain, tags and
// links and keeps its lifecycle, business metadata and field tags. Tags
// the product shows only because its schema's fields carry them are not
// stored as its own.
func (a asyncapiCatalog) SetProduct(ctx context.Context, act governance.Actor, topic string, p asyncapi.Product) error {
	cur, err := a.c.Product(ctx, topic)
	if err != nil && !errors.Is(err, governance.ErrNotFound) {
		return err
	}
	u := catalog.ProductUpdate{Owner: p.Owner, Description: p.Description, Domain: p.Domain,
		Lifecycle: cur.Lifecycle, BusinessMetadata: cur.BusinessMetadata, FieldTags: cur.FieldTags, Version: cur.Version}
	for _, t := range p.Tags {
		if slices.Contains(cur.OwnTags, t) || !slices.Contains(cur.Tags, t) {
			u.Tags = append(u.Tags, t)
		}
	}
	for _, l := range p.Links {
		u.Links = append(u.Links, catalog.Link{Title: l.Title, URL: l.URL})
	}
	_, err = a.c.PutProduct(ctx, act, topic, u)
	return err
}

// asyncapiLineage presents the observed lineage to the AsyncAPI service:
// the producers and consumers of each topic from one look at the graph.
type asyncapiLineage struct{ s *lineage.Service }

func (l asyncapiLineage) Clients(_ context.Context, topics []string) (map[string]asyncapi.Clients, error) {
	want := make(map[string]string, len(topics)) // node id → topic
	for _, t := range topics {
		want[lineage.TopicID(t)] = t
	}
	out := map[string]asyncapi.Clients{}
	for _, e := range l.s.Graph().Edges {
		switch {
		case e.Kind == lineage.EdgeProduces && want[e.To] != "":
			t := want[e.To]
			c := out[t]
			c.Producers = append(c.Producers, asyncapi.Producer{ClientID: e.ClientID, Principal: e.Principal,
				Software: e.Software, TransactionalID: e.TransactionalID})
			out[t] = c
		case e.Kind == lineage.EdgeConsumes && want[e.From] != "":
			t := want[e.From]
			c := out[t]
			c.Consumers = append(c.Consumers, asyncapi.Consumer{Group: e.Group, ClientID: e.ClientID, Principal: e.Principal})
			out[t] = c
		}
	}
	return out, nil
}
