package asyncapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/runnel-dev/runnel/internal/config"
	"github.com/runnel-dev/runnel/internal/governance"
)

// The schema formats of payloads, as AsyncAPI 3.0 registers them.
const (
	formatAvro     = "application/vnd.apache.avro;version=1.9.0"
	formatJSON     = "application/schema+json;version=draft-07"
	formatProtobuf = "application/vnd.google.protobuf;version=3"
	formatProto2   = "application/vnd.google.protobuf;version=2"
)

// Extensions Runnel writes and reads (AsyncAPI specification extensions).
const (
	extOwner     = "x-runnel-owner"
	extDomain    = "x-runnel-domain"
	extLinks     = "x-runnel-links"
	extConfigs   = "x-runnel-configs"
	extSchema    = "x-runnel-schema"
	extKeySchema = "x-runnel-key-schema"
)

// bindingConfigs are the topic configs the Kafka channel binding's
// topicConfiguration defines (the vendor's confluent.* ones aside, which
// go with the topic's other configs into x-runnel-configs).
var bindingConfigs = []string{"cleanup.policy", "retention.ms", "retention.bytes", "delete.retention.ms", "max.message.bytes"}

// The document's shape. Maps marshal with sorted keys, so a document is
// the same for the same cluster.
type (
	document struct {
		AsyncAPI   string                `json:"asyncapi"`
		ID         string                `json:"id"`
		Info       info                  `json:"info"`
		Servers    map[string]server     `json:"servers,omitempty"`
		Channels   map[string]*channel   `json:"channels"`
		Operations map[string]*operation `json:"operations,omitempty"`
		Components components            `json:"components"`
	}
	info struct {
		Title       string `json:"title"`
		Version     string `json:"version"`
		Description string `json:"description"`
		ClusterID   string `json:"x-runnel-cluster-id"`
	}
	ref struct {
		Ref string `json:"$ref"`
	}
	tag struct {
		Name string `json:"name"`
	}
	externalDocs struct {
		Description string `json:"description,omitempty"`
		URL         string `json:"url"`
	}
	server struct {
		Host        string        `json:"host"`
		Protocol    string        `json:"protocol"`
		Description string        `json:"description"`
		Security    []ref         `json:"security,omitempty"`
		Bindings    serverBinding `json:"bindings"`
	}
	serverBinding struct {
		Kafka struct {
			SchemaRegistryURL    string `json:"schemaRegistryUrl,omitempty"`
			SchemaRegistryVendor string `json:"schemaRegistryVendor,omitempty"`
			BindingVersion       string `json:"bindingVersion"`
		} `json:"kafka"`
	}
	channel struct {
		Address      string            `json:"address"`
		Title        string            `json:"title"`
		Description  string            `json:"description,omitempty"`
		Messages     map[string]ref    `json:"messages"`
		Tags         []tag             `json:"tags,omitempty"`
		ExternalDocs *externalDocs     `json:"externalDocs,omitempty"`
		Bindings     channelBinding    `json:"bindings"`
		Owner        string            `json:"x-runnel-owner,omitempty"`
		Domain       string            `json:"x-runnel-domain,omitempty"`
		Links        []Link            `json:"x-runnel-links,omitempty"`
		Configs      map[string]string `json:"x-runnel-configs,omitempty"`
	}
	channelBinding struct {
		Kafka struct {
			Topic              string         `json:"topic"`
			Partitions         int32          `json:"partitions"`
			TopicConfiguration map[string]any `json:"topicConfiguration"`
			BindingVersion     string         `json:"bindingVersion"`
		} `json:"kafka"`
	}
	message struct {
		Name        string         `json:"name"`
		Title       string         `json:"title"`
		ContentType string         `json:"contentType"`
		Payload     any            `json:"payload"`
		Bindings    messageBinding `json:"bindings"`
		Schema      *schemaInfo    `json:"x-runnel-schema,omitempty"`
		KeySchema   *schemaInfo    `json:"x-runnel-key-schema,omitempty"`
	}
	messageBinding struct {
		Kafka struct {
			Key                     any    `json:"key"`
			SchemaIDLocation        string `json:"schemaIdLocation,omitempty"`
			SchemaIDPayloadEncoding string `json:"schemaIdPayloadEncoding,omitempty"`
			SchemaLookupStrategy    string `json:"schemaLookupStrategy,omitempty"`
			BindingVersion          string `json:"bindingVersion"`
		} `json:"kafka"`
	}
	// multiFormat is AsyncAPI's Multi Format Schema Object.
	multiFormat struct {
		SchemaFormat string `json:"schemaFormat"`
		Schema       any    `json:"schema"`
	}
	schemaInfo struct {
		Subject    string   `json:"subject"`
		Version    int      `json:"version"`
		ID         int      `json:"id"`
		Type       string   `json:"type"`
		References []string `json:"references,omitempty"`
	}
	operation struct {
		Action          string           `json:"action"`
		Channel         ref              `json:"channel"`
		Title           string           `json:"title"`
		Summary         string           `json:"summary"`
		Messages        []ref            `json:"messages"`
		Bindings        operationBinding `json:"bindings"`
		Principal       string           `json:"x-runnel-principal,omitempty"`
		Software        string           `json:"x-runnel-client-software,omitempty"`
		TransactionalID string           `json:"x-runnel-transactional-id,omitempty"`
	}
	operationBinding struct {
		Kafka struct {
			GroupID        *enumSchema `json:"groupId,omitempty"`
			ClientID       *enumSchema `json:"clientId,omitempty"`
			BindingVersion string      `json:"bindingVersion"`
		} `json:"kafka"`
	}
	enumSchema struct {
		Type string   `json:"type"`
		Enum []string `json:"enum"`
	}
	securityScheme struct {
		Type        string `json:"type"`
		Description string `json:"description"`
		// Flows is oauth2's: required, and empty (the cluster names no
		// token endpoint; clients get tokens from its identity provider).
		Flows *struct{} `json:"flows,omitempty"`
	}
	components struct {
		Schemas         map[string]any            `json:"schemas,omitempty"`
		Messages        map[string]*message       `json:"messages,omitempty"`
		SecuritySchemes map[string]securityScheme `json:"securitySchemes,omitempty"`
	}
)

// ids hands out the keys of channels, operations and components: AsyncAPI
// restricts them to letters, digits, '_' and '-', so other characters of
// a topic name (a '.') become '_', and a key already handed out gets a
// numbered suffix. The channel's address keeps the topic's real name.
type ids map[string]bool

func (s ids) key(parts ...string) string {
	var b strings.Builder
	for i, p := range parts {
		if i > 0 {
			b.WriteByte('_')
		}
		for _, r := range p {
			if r < 128 && (r == '_' || r == '-' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
				b.WriteRune(r)
			} else {
				b.WriteByte('_')
			}
		}
	}
	k := b.String()
	if k == "" {
		k = "_"
	}
	if !s[k] {
		s[k] = true
		return k
	}
	for n := 2; ; n++ {
		if c := k + "-" + strconv.Itoa(n); !s[c] {
			s[c] = true
			return c
		}
	}
}

// Export builds the document of the named topics, or of every topic but
// Kafka's internal ones when names is empty. An unknown name is
// governance.ErrNotFound.
func (s *Service) Export(ctx context.Context, names []string) (*document, error) {
	var topics []Topic
	if len(names) == 0 {
		topics = s.opts.Topics.List()
	} else {
		seen := map[string]bool{}
		for _, n := range names {
			if seen[n] {
				continue
			}
			seen[n] = true
			t, ok := s.opts.Topics.Get(n)
			if !ok {
				return nil, fmt.Errorf("%w: topic %q", governance.ErrNotFound, n)
			}
			topics = append(topics, t)
		}
		sort.Slice(topics, func(i, j int) bool { return topics[i].Name < topics[j].Name })
	}
	d := &document{
		AsyncAPI: Version,
		ID:       "urn:runnel:cluster:" + s.opts.ClusterID,
		Info: info{
			Title:   "Runnel cluster " + s.opts.ClusterID,
			Version: s.opts.Version,
			Description: fmt.Sprintf("The data products of the Runnel cluster %s: %d topics, each a channel with its Kafka binding, "+
				"its record's schema from the schema registry, its owner and tags from the catalog and the clients observed on it.",
				s.opts.ClusterID, len(topics)),
			ClusterID: s.opts.ClusterID,
		},
		Channels:   map[string]*channel{},
		Operations: map[string]*operation{},
		Components: components{Schemas: map[string]any{}, Messages: map[string]*message{}, SecuritySchemes: map[string]securityScheme{}},
	}
	s.exportServers(d)
	var clients map[string]Clients
	if s.opts.Lineage != nil {
		names := make([]string, len(topics))
		for i, t := range topics {
			names[i] = t.Name
		}
		var err error
		if clients, err = s.opts.Lineage.Clients(ctx, names); err != nil {
			return nil, fmt.Errorf("asyncapi: the observed clients: %w", err)
		}
	}
	keys := ids{}
	opKeys := ids{}
	for _, t := range topics {
		if err := s.exportTopic(ctx, d, t, clients[t.Name], keys, opKeys); err != nil {
			return nil, err
		}
	}
	return d, nil
}

// exportServers adds a server per Kafka listener with its security
// schemes.
func (s *Service) exportServers(d *document) {
	d.Servers = map[string]server{}
	keys := ids{}
	registry := s.opts.RegistryURL()
	for _, l := range s.opts.Listeners() {
		sv := server{Host: l.Host, Protocol: "kafka", Description: "Kafka listener " + l.Name}
		if l.TLS {
			sv.Protocol = "kafka-secure"
		}
		for _, m := range l.SASL {
			name, sch, ok := saslScheme(m)
			if !ok {
				continue
			}
			d.Components.SecuritySchemes[name] = sch
			sv.Security = append(sv.Security, ref{"#/components/securitySchemes/" + name})
		}
		if l.TLS && l.ClientCert {
			d.Components.SecuritySchemes["mutualTLS"] = securityScheme{Type: "X509",
				Description: "A TLS client certificate, mapped to the principal by the broker's principal mapping rules."}
			sv.Security = append(sv.Security, ref{"#/components/securitySchemes/mutualTLS"})
		}
		sv.Bindings.Kafka.SchemaRegistryURL = registry
		if registry != "" {
			sv.Bindings.Kafka.SchemaRegistryVendor = "confluent"
		}
		sv.Bindings.Kafka.BindingVersion = kafkaBindingVersion
		d.Servers[keys.key(l.Name)] = sv
	}
}

// saslScheme is the security scheme of a SASL mechanism.
func saslScheme(mechanism string) (string, securityScheme, bool) {
	switch mechanism {
	case config.MechanismPlain:
		return "saslPlain", securityScheme{Type: "plain", Description: "SASL/PLAIN with a user's name and password."}, true
	case config.MechanismSCRAMSHA256:
		return "saslScramSha256", securityScheme{Type: "scramSha256", Description: "SASL/SCRAM-SHA-256 with a user's name and password."}, true
	case config.MechanismSCRAMSHA512:
		return "saslScramSha512", securityScheme{Type: "scramSha512", Description: "SASL/SCRAM-SHA-512 with a user's name and password."}, true
	case config.MechanismOAuthBearer:
		return "saslOauthbearer", securityScheme{Type: "oauth2",
			Description: "SASL/OAUTHBEARER with a JWT issued by the cluster's identity provider.",
			Flows:       &struct{}{}}, true
	}
	return "", securityScheme{}, false
}

// exportTopic adds a topic's channel, message and operations.
func (s *Service) exportTopic(ctx context.Context, d *document, t Topic, cl Clients, keys, opKeys ids) error {
	id := keys.key(t.Name)
	ch := &channel{Address: t.Name, Title: t.Name, Messages: map[string]ref{id: {"#/components/messages/" + id}}}
	kb := &ch.Bindings.Kafka
	kb.Topic, kb.Partitions, kb.BindingVersion = t.Name, t.Partitions, kafkaBindingVersion
	kb.TopicConfiguration = topicConfiguration(t.Effective)
	for k, v := range t.Overrides {
		if !slices.Contains(bindingConfigs, k) {
			if ch.Configs == nil {
				ch.Configs = map[string]string{}
			}
			ch.Configs[k] = v
		}
	}
	if s.opts.Catalog != nil {
		p, _, err := s.opts.Catalog.Product(ctx, t.Name)
		if err != nil {
			return fmt.Errorf("asyncapi: the catalog's product of %q: %w", t.Name, err)
		}
		ch.Description, ch.Owner, ch.Domain, ch.Links = p.Description, p.Owner, p.Domain, p.Links
		for _, tg := range sortedSet(p.Tags) {
			ch.Tags = append(ch.Tags, tag{tg})
		}
		if len(p.Links) > 0 {
			ch.ExternalDocs = &externalDocs{Description: p.Links[0].Title, URL: p.Links[0].URL}
		}
	}
	d.Channels[id] = ch

	m, err := s.exportMessage(ctx, d, t.Name, id)
	if err != nil {
		return err
	}
	d.Components.Messages[id] = m

	chRef := ref{"#/channels/" + id}
	msgs := []ref{{"#/channels/" + id + "/messages/" + id}}
	seen := map[string]bool{}
	for _, p := range cl.Producers {
		if p.ClientID == "" || seen["p"+p.ClientID] {
			continue
		}
		seen["p"+p.ClientID] = true
		op := &operation{Action: "send", Channel: chRef, Messages: msgs,
			Title:     "Produce to " + t.Name,
			Summary:   fmt.Sprintf("Observed producer %q%s writes to %s.", p.ClientID, by(p.Principal), t.Name),
			Principal: p.Principal, Software: p.Software, TransactionalID: p.TransactionalID}
		op.Bindings.Kafka.ClientID = &enumSchema{Type: "string", Enum: []string{p.ClientID}}
		op.Bindings.Kafka.BindingVersion = kafkaBindingVersion
		d.Operations[opKeys.key("send", t.Name, p.ClientID)] = op
	}
	for _, c := range cl.Consumers {
		if c.Group == "" || seen["g"+c.Group] {
			continue
		}
		seen["g"+c.Group] = true
		op := &operation{Action: "receive", Channel: chRef, Messages: msgs,
			Title:     "Consume " + t.Name,
			Summary:   fmt.Sprintf("Observed consumer group %q%s reads %s.", c.Group, by(c.Principal), t.Name),
			Principal: c.Principal}
		op.Bindings.Kafka.GroupID = &enumSchema{Type: "string", Enum: []string{c.Group}}
		if c.ClientID != "" {
			op.Bindings.Kafka.ClientID = &enumSchema{Type: "string", Enum: []string{c.ClientID}}
		}
		op.Bindings.Kafka.BindingVersion = kafkaBindingVersion
		d.Operations[opKeys.key("receive", t.Name, c.Group)] = op
	}
	return nil
}

func by(principal string) string {
	if principal == "" {
		return ""
	}
	return " (" + principal + ")"
}

// exportMessage builds a topic's message: its payload from the value
// subject's latest schema, its key from the key subject's (a string
// without one).
func (s *Service) exportMessage(ctx context.Context, d *document, topic, id string) (*message, error) {
	m := &message{Name: topic, Title: "A record of " + topic, ContentType: "application/octet-stream",
		Payload: map[string]string{"type": "string", "format": "binary"}}
	kb := &m.Bindings.Kafka
	kb.BindingVersion = kafkaBindingVersion
	kb.Key = map[string]string{"type": "string"}

	val, ok, err := s.opts.Schemas.Latest(ctx, topic+"-value")
	if err != nil {
		return nil, fmt.Errorf("asyncapi: the value schema of %q: %w", topic, err)
	}
	if ok {
		payload, err := schemaPayload(val)
		if err != nil {
			return nil, fmt.Errorf("asyncapi: the value schema of %q: %w", topic, err)
		}
		m.Payload, m.ContentType = payload, contentType(val.Type)
		m.Schema = &schemaInfo{Subject: topic + "-value", Version: val.Version, ID: val.ID, Type: val.Type, References: val.References}
		kb.SchemaIDLocation, kb.SchemaIDPayloadEncoding, kb.SchemaLookupStrategy = "payload", "confluent", "TopicNameStrategy"
	}
	key, ok, err := s.opts.Schemas.Latest(ctx, topic+"-key")
	if err != nil {
		return nil, fmt.Errorf("asyncapi: the key schema of %q: %w", topic, err)
	}
	if ok {
		payload, err := schemaPayload(key)
		if err != nil {
			return nil, fmt.Errorf("asyncapi: the key schema of %q: %w", topic, err)
		}
		d.Components.Schemas[id+"-key"] = payload
		kb.Key = ref{"#/components/schemas/" + id + "-key"}
		m.KeySchema = &schemaInfo{Subject: topic + "-key", Version: key.Version, ID: key.ID, Type: key.Type, References: key.References}
		kb.SchemaIDLocation, kb.SchemaIDPayloadEncoding, kb.SchemaLookupStrategy = "payload", "confluent", "TopicNameStrategy"
	}
	return m, nil
}

// schemaPayload is a registry schema as a multi-format schema object:
// Avro's and JSON Schema's JSON text as is, Protobuf's source as a
// string.
func schemaPayload(s Schema) (multiFormat, error) {
	switch s.Type {
	case TypeAvro, TypeJSON:
		var buf bytes.Buffer
		if err := json.Compact(&buf, []byte(s.Text)); err != nil {
			return multiFormat{}, fmt.Errorf("the %s schema is not JSON: %v", s.Type, err)
		}
		f := formatAvro
		if s.Type == TypeJSON {
			f = formatJSON
		}
		return multiFormat{SchemaFormat: f, Schema: json.RawMessage(buf.String())}, nil
	case TypeProtobuf:
		f := formatProtobuf
		if protoSyntax(s.Text) == 2 {
			f = formatProto2
		}
		return multiFormat{SchemaFormat: f, Schema: s.Text}, nil
	}
	return multiFormat{}, fmt.Errorf("schema type %q", s.Type)
}

// protoSyntax is the Protobuf syntax a .proto source declares: 3, or 2
// when it says proto2 or nothing (protoc's default).
func protoSyntax(src string) int {
	for _, line := range strings.Split(src, "\n") {
		l := strings.TrimSpace(line)
		if rest, ok := strings.CutPrefix(l, "syntax"); ok {
			if strings.Contains(rest, "proto3") {
				return 3
			}
			return 2
		}
		if l != "" && !strings.HasPrefix(l, "//") && !strings.HasPrefix(l, "/*") && !strings.HasPrefix(l, "*") {
			return 2
		}
	}
	return 2
}

func contentType(typ string) string {
	switch typ {
	case TypeAvro:
		return "application/vnd.apache.avro+binary"
	case TypeJSON:
		return "application/json"
	case TypeProtobuf:
		return "application/x-protobuf"
	}
	return "application/octet-stream"
}

// topicConfiguration is the Kafka binding's topicConfiguration from a
// topic's effective configs, typed as the binding defines them.
func topicConfiguration(eff map[string]string) map[string]any {
	out := map[string]any{}
	for _, k := range bindingConfigs {
		v, ok := eff[k]
		if !ok {
			continue
		}
		if k == "cleanup.policy" {
			out[k] = sortedSet(config.SplitList(v))
			continue
		}
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if err != nil {
			continue // validated before it was stored; never here
		}
		out[k] = n
	}
	return out
}

// sortedSet is the distinct non-empty strings of in, sorted.
func sortedSet(in []string) []string {
	out := []string{}
	for _, s := range in {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	sort.Strings(out)
	return slices.Compact(out)
}

// encodeDocument renders a document as JSON or YAML.
func encodeDocument(d *document, format string) ([]byte, string, error) {
	js, err := marshalJSON(d)
	if err != nil {
		return nil, "", err
	}
	if format == "json" {
		return js, "application/json", nil
	}
	y, err := jsonToYAML(js)
	if err != nil {
		return nil, "", err
	}
	return y, "application/yaml", nil
}

func marshalJSON(v any) ([]byte, error) {
	var buf strings.Builder
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return []byte(buf.String()), nil
}
