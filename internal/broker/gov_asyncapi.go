package broker

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"

	"github.com/runnel-dev/runnel/internal/auth"
	"github.com/runnel-dev/runnel/internal/config"
	"github.com/runnel-dev/runnel/internal/governance"
	"github.com/runnel-dev/runnel/internal/governance/asyncapi"
	"github.com/runnel-dev/runnel/internal/registry"
	"github.com/runnel-dev/runnel/internal/stream"
)

// AsyncAPI (governance): GET /api/v1/asyncapi exports the cluster's
// products as an AsyncAPI 3.0 document, POST /api/v1/asyncapi/import
// creates topics, subjects and catalog metadata from one. The service
// reaches the engine's topics and the registry through the adapters
// below, as the Kafka front end's CreateTopics reaches the engine.

// govAsyncAPI is the broker's asyncapi part of governance (governance.go).
type govAsyncAPI struct {
	svc *asyncapi.Service
}

func (b *Broker) openAsyncAPI(ctx context.Context) error {
	svc, err := asyncapi.New(asyncapi.Options{
		ClusterID:   b.cfg.ClusterID,
		Listeners:   b.asyncapiListeners,
		RegistryURL: b.asyncapiRegistryURL,
		Topics:      asyncapiTopics{b},
		Schemas:     asyncapiSchemas{b.schemas},
		// The catalog and lineage join once their parts are wired:
		// Catalog over b.gov.catalog, Lineage over b.gov.lineage.
	})
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
