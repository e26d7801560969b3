package asyncapi

import (
	"context"
	"errors"
	"net/http"

	"github.com/runnel-dev/runnel/internal/governance"
)

// Version is the AsyncAPI version of exported documents.
const Version = "3.0.0"

// kafkaBindingVersion is the version of the Kafka bindings written.
const kafkaBindingVersion = "0.5.0"

// MaxImportBytes bounds an imported document.
const MaxImportBytes = 4 << 20

// Topic is one topic as the export describes it and the import compares.
type Topic struct {
	Name       string
	Partitions int32
	// Overrides are the topic's own configs; Effective is the value of
	// every topic config Runnel knows (override, else the broker's topic
	// default, else the table's default).
	Overrides map[string]string
	Effective map[string]string
}

// Topics is the cluster's topics. The broker implements it over the
// storage engine, as the Kafka front end's CreateTopics reaches it.
type Topics interface {
	// List returns the live topics other than Kafka's internal ones,
	// sorted by name.
	List() []Topic
	// Get returns one live topic; ok is false when there is none.
	Get(name string) (t Topic, ok bool)
	// Create validates and, unless validateOnly, creates a topic with
	// partitions (0: the broker's default) and configs, and returns its
	// partition count. A bad name, count or config is a
	// *governance.Error with status 400.
	Create(ctx context.Context, name string, partitions int32, configs map[string]string, validateOnly bool) (int32, error)
}

// The schema types of the registry.
const (
	TypeAvro     = "AVRO"
	TypeJSON     = "JSON"
	TypeProtobuf = "PROTOBUF"
)

// Schema is one schema of a subject.
type Schema struct {
	Type string // AVRO, JSON or PROTOBUF
	Text string
	// Version and ID are the registry's (0 for a schema not registered).
	Version, ID int
	// References names the schemas this one references, as
	// "subject:version"; an exported document does not carry them.
	References []string
}

// Schemas is the schema registry.
type Schemas interface {
	// Latest returns the latest live version of subject; ok is false when
	// the subject has none.
	Latest(ctx context.Context, subject string) (s Schema, ok bool, err error)
	// Registered reports whether subject already holds s (any live
	// version).
	Registered(ctx context.Context, subject string, s Schema) (bool, error)
	// Incompatible returns why s cannot be registered under subject: the
	// registry's compatibility messages, or its answer to a schema that
	// does not parse. None means it can be.
	Incompatible(ctx context.Context, subject string, s Schema) ([]string, error)
	// Register registers s under subject and returns its version and id.
	Register(ctx context.Context, subject string, s Schema) (version, id int, err error)
}

// Link is a product's link.
type Link struct {
	Title string `json:"title"`
	URL   string `json:"url"`
}

// Product is the catalog metadata of a topic that a document carries.
type Product struct {
	Description string
	Owner       string // "User:bob", "Team:payments" or ""
	Domain      string
	Tags        []string
	Links       []Link
}

// Catalog is the stream catalog. A nil Catalog exports no metadata and
// imports none.
type Catalog interface {
	// Product returns the metadata of topic's product; stored is false
	// when the catalog holds none for it (p then is what the catalog
	// shows anyway, e.g. tags from the schema).
	Product(ctx context.Context, topic string) (p Product, stored bool, err error)
	// SetProduct stores p as the metadata of topic's product on behalf
	// of a, creating the product when it has none and keeping the fields
	// Product does not carry.
	SetProduct(ctx context.Context, a governance.Actor, topic string, p Product) error
}

// Producer is a producing client lineage observed on a topic.
type Producer struct {
	ClientID        string
	Principal       string
	Software        string
	TransactionalID string
}

// Consumer is a consumer group lineage observed on a topic.
type Consumer struct {
	Group     string
	ClientID  string
	Principal string
}

// Clients are the clients lineage observed on a topic.
type Clients struct {
	Producers []Producer
	Consumers []Consumer
}

// Lineage is the observed lineage. A nil Lineage exports no operations.
type Lineage interface {
	// Clients returns the producers and consumer groups observed on
	// each of topics (one look at the graph for a whole export); a topic
	// without clients may be missing from the map.
	Clients(ctx context.Context, topics []string) (map[string]Clients, error)
}

// Listener is one Kafka listener as clients reach it.
type Listener struct {
	Name string
	// Host is the advertised host:port.
	Host string
	// TLS is true for SSL and SASL_SSL listeners.
	TLS bool
	// SASL lists the listener's SASL mechanisms (PLAIN, SCRAM-SHA-256,
	// SCRAM-SHA-512, OAUTHBEARER); empty without SASL.
	SASL []string
	// ClientCert is true when the listener accepts TLS client
	// certificates as credentials (mutual TLS).
	ClientCert bool
}

// Options configure a Service.
type Options struct {
	// ClusterID names the cluster in the document's info.
	ClusterID string
	// Version is the document's info.version; "1.0.0" when empty.
	Version string
	// Listeners are the Kafka listeners, each a server.
	Listeners func() []Listener
	// RegistryURL is the schema registry's URL ("" when it has none).
	RegistryURL func() string
	Topics      Topics
	Schemas     Schemas
	Catalog     Catalog
	Lineage     Lineage
	// Auditor records every applied import (what it is about to create,
	// register and set) before it changes anything; an import whose
	// event cannot be recorded is refused. Nil records nothing.
	Auditor governance.Auditor
}

// Service exports and imports AsyncAPI documents.
type Service struct {
	opts Options
}

// New builds a Service; Topics and Schemas are required.
func New(opts Options) (*Service, error) {
	if opts.Topics == nil || opts.Schemas == nil {
		return nil, errors.New("asyncapi: Options.Topics and Options.Schemas are required")
	}
	if opts.Version == "" {
		opts.Version = "1.0.0"
	}
	if opts.Listeners == nil {
		opts.Listeners = func() []Listener { return nil }
	}
	if opts.RegistryURL == nil {
		opts.RegistryURL = func() string { return "" }
	}
	return &Service{opts: opts}, nil
}

// invalidf is a bad document or request: 400 with what is wrong.
func invalidf(format string, args ...any) error {
	return governance.Errorf(http.StatusBadRequest, format, args...)
}
