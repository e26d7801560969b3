package asyncapi

import (
	"fmt"
	"mime"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/runnel-dev/runnel/internal/config"
)

// channelSpec is what a document asks for one topic.
type channelSpec struct {
	channel    string // the channel's key in the document, for messages
	topic      string
	partitions int32             // 0: not given
	configs    map[string]string // topic configs, validated names and values
	value, key *Schema           // nil: none
	product    *productSpec      // nil: the channel carries no metadata
}

// productSpec is the catalog metadata a channel gives; a nil field is
// not given and left as the catalog has it.
type productSpec struct {
	description, owner, domain *string
	tags                       []string
	links                      []Link
	hasTags, hasLinks          bool
}

// readDocument reads and validates an AsyncAPI 3 document into what it
// asks for each channel, in the document's order. Anything it cannot
// honour is a 400 error naming the channel and what is wrong.
func readDocument(data []byte) ([]channelSpec, error) {
	root, err := parseTree(data)
	if err != nil {
		return nil, err
	}
	if root.Kind != yaml.MappingNode {
		return nil, invalidf("the document is not an AsyncAPI document: its top level is not an object")
	}
	v, ok := scalar(get(root, "asyncapi"))
	if !ok {
		return nil, invalidf("the document is not an AsyncAPI document: it has no asyncapi version field")
	}
	if !strings.HasPrefix(v, "3.") {
		return nil, invalidf("asyncapi %q: Runnel imports AsyncAPI 3.x documents", v)
	}
	chans := get(root, "channels")
	if chans == nil || chans.Kind != yaml.MappingNode || len(chans.Content) == 0 {
		return nil, invalidf("the document has no channels: nothing to import")
	}
	r := reader{root: root}
	var out []channelSpec
	byTopic := map[string]string{}
	for i := 0; i+1 < len(chans.Content); i += 2 {
		key := resolve(chans.Content[i]).Value
		spec, err := r.channel(key, chans.Content[i+1])
		if err != nil {
			return nil, err
		}
		if other, dup := byTopic[spec.topic]; dup {
			return nil, invalidf("channels %q and %q are both topic %q", other, key, spec.topic)
		}
		byTopic[spec.topic] = key
		out = append(out, spec)
	}
	return out, nil
}

// reader resolves a document's local references.
type reader struct {
	root *yaml.Node
}

// deref follows "$ref": "#/..." references within the document (at most
// a few hops, so a loop ends). A reference to another document is not
// followed: the import reads one self-contained document.
func (r reader) deref(n *yaml.Node, where string) (*yaml.Node, error) {
	n = resolve(n)
	for hops := 0; ; hops++ {
		rv, ok := scalar(get(n, "$ref"))
		if !ok {
			return n, nil
		}
		if hops == 8 {
			return nil, invalidf("%s: $ref %q: too many references in a row", where, rv)
		}
		ptr, ok := strings.CutPrefix(rv, "#")
		if !ok {
			return nil, invalidf("%s: $ref %q points outside the document; import a bundled document", where, rv)
		}
		target := r.root
		if ptr != "" {
			if !strings.HasPrefix(ptr, "/") {
				return nil, invalidf("%s: $ref %q is not a JSON pointer", where, rv)
			}
			for _, tok := range strings.Split(ptr[1:], "/") {
				tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
				switch target.Kind {
				case yaml.MappingNode:
					target = get(target, tok)
				case yaml.SequenceNode:
					i, err := strconv.Atoi(tok)
					if err != nil || i < 0 || i >= len(target.Content) {
						target = nil
					} else {
						target = resolve(target.Content[i])
					}
				default:
					target = nil
				}
				if target == nil {
					return nil, invalidf("%s: $ref %q points at nothing in the document", where, rv)
				}
			}
		}
		n = target
	}
}

func (r reader) channel(key string, n *yaml.Node) (channelSpec, error) {
	where := fmt.Sprintf("channel %q", key)
	n, err := r.deref(n, where)
	if err != nil {
		return channelSpec{}, err
	}
	if n.Kind != yaml.MappingNode {
		return channelSpec{}, invalidf("%s is not an object", where)
	}
	spec := channelSpec{channel: key, configs: map[string]string{}}
	kafka, err := r.deref(get(get(n, "bindings"), "kafka"), where+" Kafka binding")
	if err != nil {
		return spec, err
	}
	if t, ok := scalar(get(kafka, "topic")); ok {
		spec.topic = t
	} else if a, ok := scalar(get(n, "address")); ok {
		spec.topic = a
	}
	switch {
	case spec.topic == "":
		return spec, invalidf("%s has neither an address nor a Kafka binding topic: which topic is it?", where)
	case strings.ContainsAny(spec.topic, "{}"):
		return spec, invalidf("%s: address %q has parameters; Runnel imports channels of one topic each", where, spec.topic)
	}
	if err := validTopicName(spec.topic); err != nil {
		return spec, invalidf("%s: %v", where, err)
	}
	where = fmt.Sprintf("channel %q (topic %q)", key, spec.topic)

	if p := get(kafka, "partitions"); !isNull(p) {
		v, ok := scalar(p)
		n, err := strconv.ParseInt(v, 10, 32)
		if !ok || err != nil || n < 1 {
			return spec, invalidf("%s: partitions %q: want a positive integer", where, v)
		}
		spec.partitions = int32(n)
	}
	if err := addConfigs(spec.configs, get(kafka, "topicConfiguration"), where, "topicConfiguration"); err != nil {
		return spec, err
	}
	if err := addConfigs(spec.configs, get(n, extConfigs), where, extConfigs); err != nil {
		return spec, err
	}
	if spec.value, spec.key, err = r.messages(n, where); err != nil {
		return spec, err
	}
	spec.product, err = readProduct(n, where)
	return spec, err
}

// addConfigs adds a mapping of topic configs, each a name Runnel knows
// with a valid value; a list (cleanup.policy) may be a sequence.
func addConfigs(dst map[string]string, m *yaml.Node, where, field string) error {
	if isNull(m) {
		return nil
	}
	if m.Kind != yaml.MappingNode {
		return invalidf("%s: %s is not an object", where, field)
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		name := resolve(m.Content[i]).Value
		if _, ok := config.LookupTopic(name); !ok {
			return invalidf("%s: %s key %q is not a topic config Runnel knows", where, field, name)
		}
		val := resolve(m.Content[i+1])
		var v string
		switch val.Kind {
		case yaml.SequenceNode:
			var parts []string
			for _, c := range val.Content {
				s, ok := scalar(resolve(c))
				if !ok {
					return invalidf("%s: %s %q: a list of plain values is expected", where, field, name)
				}
				parts = append(parts, s)
			}
			v = strings.Join(parts, ",")
		case yaml.ScalarNode:
			s, ok := scalar(val)
			if !ok {
				return invalidf("%s: %s %q is null", where, field, name)
			}
			v = s
		default:
			return invalidf("%s: %s %q: want a value, got an object", where, field, name)
		}
		if err := config.ValidateTopicConfig(name, v); err != nil {
			return invalidf("%s: %s: %v", where, field, err)
		}
		if old, ok := dst[name]; ok && normalConfig(name, old) != normalConfig(name, v) {
			return invalidf("%s: %s says %s=%q, the Kafka binding %q", where, field, name, v, old)
		}
		dst[name] = v
	}
	return nil
}

// messages reads the value and key schemas of a channel's messages. All
// its messages must agree: a topic has one value subject.
func (r reader) messages(ch *yaml.Node, where string) (value, key *Schema, err error) {
	msgs := get(ch, "messages")
	if isNull(msgs) {
		return nil, nil, nil
	}
	if msgs.Kind != yaml.MappingNode {
		return nil, nil, invalidf("%s: messages is not an object", where)
	}
	for i := 0; i+1 < len(msgs.Content); i += 2 {
		mw := fmt.Sprintf("%s message %q", where, resolve(msgs.Content[i]).Value)
		m, err := r.deref(msgs.Content[i+1], mw)
		if err != nil {
			return nil, nil, err
		}
		v, err := r.schema(get(m, "payload"), mw+" payload")
		if err != nil {
			return nil, nil, err
		}
		kafka, err := r.deref(get(get(m, "bindings"), "kafka"), mw+" Kafka binding")
		if err != nil {
			return nil, nil, err
		}
		k, err := r.schema(get(kafka, "key"), mw+" key")
		if err != nil {
			return nil, nil, err
		}
		if value, err = agree(value, v, where, "value"); err != nil {
			return nil, nil, err
		}
		if key, err = agree(key, k, where, "key"); err != nil {
			return nil, nil, err
		}
	}
	return value, key, nil
}

func agree(have, next *Schema, where, what string) (*Schema, error) {
	switch {
	case next == nil:
		return have, nil
	case have == nil:
		return next, nil
	case have.Type != next.Type || have.Text != next.Text:
		return nil, invalidf("%s: its messages have different %s schemas; a topic has one %s subject", where, what, what)
	}
	return have, nil
}

// schema reads a payload or key schema: a multi-format schema object by
// its schemaFormat (Avro, JSON Schema, Protobuf, or an AsyncAPI schema),
// or an AsyncAPI schema (a JSON Schema superset) as is. An object schema
// is registered as JSON Schema; a scalar one (a string, bytes) means no
// schema.
func (r reader) schema(n *yaml.Node, where string) (*Schema, error) {
	if isNull(n) {
		return nil, nil
	}
	n, err := r.deref(n, where)
	if err != nil {
		return nil, err
	}
	if n.Kind != yaml.MappingNode {
		return nil, invalidf("%s is not a schema object", where)
	}
	if f, ok := scalar(get(n, "schemaFormat")); ok {
		body := get(n, "schema")
		if isNull(body) {
			return nil, invalidf("%s: schemaFormat %q without a schema", where, f)
		}
		typ, err := schemaType(f)
		if err != nil {
			return nil, invalidf("%s: %v", where, err)
		}
		switch typ {
		case TypeProtobuf:
			src, ok := scalar(body)
			if !ok {
				return nil, invalidf("%s: a Protobuf schema must be the .proto source as a string", where)
			}
			return &Schema{Type: TypeProtobuf, Text: src}, nil
		case TypeAvro:
			text, err := nodeJSON(body)
			if err != nil {
				return nil, invalidf("%s: %v", where, err)
			}
			return &Schema{Type: TypeAvro, Text: text}, nil
		case "":
			body, err = r.deref(body, where)
			if err != nil {
				return nil, err
			}
			return jsonSchema(body, where)
		}
		if body.Kind != yaml.MappingNode && body.Kind != yaml.ScalarNode {
			return nil, invalidf("%s: a JSON Schema must be an object or a boolean", where)
		}
		text, err := nodeJSON(body)
		if err != nil {
			return nil, invalidf("%s: %v", where, err)
		}
		return &Schema{Type: TypeJSON, Text: text}, nil
	}
	return jsonSchema(n, where)
}

// jsonSchema is an AsyncAPI schema: registered as JSON Schema when it
// describes an object, none when it describes a plain string or bytes.
func jsonSchema(n *yaml.Node, where string) (*Schema, error) {
	if n.Kind != yaml.MappingNode {
		return nil, nil
	}
	t, _ := scalar(get(n, "type"))
	if t != "object" && get(n, "properties") == nil && get(n, "$schema") == nil {
		return nil, nil
	}
	text, err := nodeJSON(n)
	if err != nil {
		return nil, invalidf("%s: %v", where, err)
	}
	return &Schema{Type: TypeJSON, Text: text}, nil
}

// schemaType maps a schemaFormat to the registry's type; "" is an
// AsyncAPI schema.
func schemaType(format string) (string, error) {
	mt, _, err := mime.ParseMediaType(format)
	if err != nil {
		return "", fmt.Errorf("schemaFormat %q: %v", format, err)
	}
	switch mt {
	case "application/vnd.apache.avro", "application/vnd.apache.avro+json", "application/vnd.apache.avro+yaml":
		return TypeAvro, nil
	case "application/schema+json", "application/schema+yaml":
		return TypeJSON, nil
	case "application/vnd.google.protobuf":
		return TypeProtobuf, nil
	case "application/vnd.aai.asyncapi", "application/vnd.aai.asyncapi+json", "application/vnd.aai.asyncapi+yaml":
		return "", nil
	}
	return "", fmt.Errorf("schemaFormat %q: Runnel's registry holds Avro, JSON Schema and Protobuf schemas", format)
}

// readProduct reads a channel's catalog metadata: description, tags,
// x-runnel-owner, x-runnel-domain and x-runnel-links (or externalDocs
// when it has no x-runnel-links).
func readProduct(ch *yaml.Node, where string) (*productSpec, error) {
	var p productSpec
	given := false
	str := func(field string) (*string, error) {
		n := get(ch, field)
		if isNull(n) {
			return nil, nil
		}
		s, ok := scalar(n)
		if !ok {
			return nil, invalidf("%s: %s is not a string", where, field)
		}
		given = true
		return &s, nil
	}
	var err error
	if p.description, err = str("description"); err != nil {
		return nil, err
	}
	if p.owner, err = str(extOwner); err != nil {
		return nil, err
	}
	if p.owner != nil && !validOwner(*p.owner) {
		return nil, invalidf("%s: %s %q: want User:<name>, Team:<name> or empty", where, extOwner, *p.owner)
	}
	if p.domain, err = str(extDomain); err != nil {
		return nil, err
	}
	if tags := get(ch, "tags"); !isNull(tags) {
		if tags.Kind != yaml.SequenceNode {
			return nil, invalidf("%s: tags is not a list", where)
		}
		for _, t := range tags.Content {
			name, ok := scalar(get(t, "name"))
			if !ok || strings.TrimSpace(name) == "" {
				return nil, invalidf("%s: a tag without a name", where)
			}
			p.tags = append(p.tags, name)
		}
		p.tags, p.hasTags, given = sortedSet(p.tags), true, true
	}
	links := get(ch, extLinks)
	switch {
	case !isNull(links):
		if links.Kind != yaml.SequenceNode {
			return nil, invalidf("%s: %s is not a list", where, extLinks)
		}
		for _, l := range links.Content {
			u, ok := scalar(get(l, "url"))
			if !ok || u == "" {
				return nil, invalidf("%s: a link in %s without a url", where, extLinks)
			}
			title, _ := scalar(get(l, "title"))
			p.links = append(p.links, Link{Title: title, URL: u})
		}
		p.hasLinks, given = true, true
	case !isNull(get(ch, "externalDocs")):
		ed := get(ch, "externalDocs")
		u, ok := scalar(get(ed, "url"))
		if !ok || u == "" {
			return nil, invalidf("%s: externalDocs without a url", where)
		}
		title, _ := scalar(get(ed, "description"))
		p.links, p.hasLinks, given = []Link{{Title: title, URL: u}}, true, true
	}
	if !given {
		return nil, nil
	}
	return &p, nil
}

func validOwner(o string) bool {
	if o == "" {
		return true
	}
	for _, p := range []string{"User:", "Team:"} {
		if name, ok := strings.CutPrefix(o, p); ok {
			return strings.TrimSpace(name) != "" && name == strings.TrimSpace(name)
		}
	}
	return false
}

// validTopicName applies Kafka's rules for topic names.
func validTopicName(name string) error {
	if name == "" || name == "." || name == ".." {
		return fmt.Errorf("topic name %q is not allowed", name)
	}
	if len(name) > 249 {
		return fmt.Errorf("topic name %q is longer than 249 characters", name)
	}
	for _, r := range name {
		if !(r == '.' || r == '_' || r == '-' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			return fmt.Errorf("topic name %q: only ASCII letters, digits, '.', '_' and '-' are allowed", name)
		}
	}
	return nil
}

// normalConfig is a config value in a form two equal values share: a
// list as its sorted distinct members, numbers and booleans parsed.
func normalConfig(name, v string) string {
	v = strings.TrimSpace(v)
	d, ok := config.LookupTopic(name)
	if !ok {
		return v
	}
	switch d.Type {
	case config.TypeList:
		return strings.Join(sortedSet(config.SplitList(v)), ",")
	case config.TypeInt, config.TypeLong:
		if n, err := strconv.ParseInt(v, 10, 64); err == nil {
			return strconv.FormatInt(n, 10)
		}
	case config.TypeDouble:
		if f, err := strconv.ParseFloat(v, 64); err == nil {
			return strconv.FormatFloat(f, 'g', -1, 64)
		}
	case config.TypeBoolean:
		return strings.ToLower(v)
	}
	return v
}
