package catalog

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	hamba "github.com/hamba/avro/v2"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/runnel-dev/runnel/internal/registry"
	"github.com/runnel-dev/runnel/internal/registry/avro"
	"github.com/runnel-dev/runnel/internal/registry/protobuf"
)

// Registry is the schema registry as the catalog reads it
// (*registry.Registry).
type Registry interface {
	// Version returns version v (-1: the latest) of a subject;
	// soft-deleted ones only when deleted. An unknown subject or version
	// wraps registry.ErrSubjectNotFound or ErrVersionNotFound.
	Version(ctx context.Context, subject string, v int, deleted bool) (registry.SubjectSchema, error)
	// SchemaByID returns the parsed schema of a wire-format id.
	SchemaByID(ctx context.Context, id int) (registry.Schema, registry.SchemaInfo, error)
	// WatchSubjects calls changed with every subject written, and resync
	// each time its watch is in place (re-read then, nothing is missed),
	// until ctx ends.
	WatchSubjects(ctx context.Context, changed func(subject string), resync func())
}

var _ Registry = (*registry.Registry)(nil)

// Subjects of a topic under the TopicNameStrategy.
func valueSubject(topic string) string { return topic + "-value" }
func keySubject(topic string) string   { return topic + "-key" }

// schemaView is one subject version as the catalog shows it: its fields
// with their tags (the schema's own and its metadata's), the rule set
// summary and the parsed schema for decoding. Immutable.
type schemaView struct {
	summary  Schema
	contract *Contract
	parsed   registry.Schema
	patterns map[string][]string // the subject version's metadata.tags
}

// maxViews bounds the view cache; it is emptied when full (a subject
// version's view never changes, so a miss costs only a re-read).
const maxViews = 8192

type viewKey struct {
	subject string
	version int
}

// views caches schemaViews per subject version.
type views struct {
	reg Registry
	mu  sync.Mutex
	m   map[viewKey]*schemaView
}

func newViews(reg Registry) *views { return &views{reg: reg, m: map[viewKey]*schemaView{}} }

// latest returns the view of a subject's latest version, nil when the
// subject has none; cur, the view the caller holds, is returned when it
// is still the latest (the cache may have dropped it).
func (v *views) latest(ctx context.Context, subject string, cur *schemaView) (*schemaView, error) {
	return v.version(ctx, subject, -1, false, cur)
}

// version returns the view of a subject version (-1: latest), nil when
// there is no such version; cur is returned when it is that version.
func (v *views) version(ctx context.Context, subject string, ver int, deleted bool, cur *schemaView) (*schemaView, error) {
	if v.reg == nil {
		return nil, nil
	}
	ss, err := v.reg.Version(ctx, subject, ver, deleted)
	if errors.Is(err, registry.ErrSubjectNotFound) || errors.Is(err, registry.ErrVersionNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("catalog: reading %s version %d: %w", subject, ver, err)
	}
	if cur != nil && cur.summary.Subject == ss.Subject && cur.summary.Version == ss.Version && cur.summary.ID == ss.ID {
		return cur, nil
	}
	k := viewKey{ss.Subject, ss.Version}
	v.mu.Lock()
	sv, ok := v.m[k]
	v.mu.Unlock()
	if ok {
		return sv, nil
	}
	parsed, _, err := v.reg.SchemaByID(ctx, ss.ID)
	if err != nil {
		return nil, fmt.Errorf("catalog: reading schema %d of %s version %d: %w", ss.ID, ss.Subject, ss.Version, err)
	}
	sv = buildView(ss, parsed)
	v.mu.Lock()
	if len(v.m) >= maxViews {
		clear(v.m)
	}
	v.m[k] = sv
	v.mu.Unlock()
	return sv, nil
}

// buildView extracts the fields of a parsed schema and tags them.
func buildView(ss registry.SubjectSchema, parsed registry.Schema) *schemaView {
	typ := ss.Type
	if typ == "" {
		typ = "AVRO"
	}
	var fs []rawField
	switch s := parsed.(type) {
	case *avro.Schema:
		fs = avroFields(s.Avro())
	case *protobuf.Schema:
		if ms := s.File().Messages(); ms.Len() > 0 {
			fs = protoFields(ms.Get(0))
		}
	default:
		if typ == "JSON" {
			fs = jsonFields(ss.Schema)
		}
	}
	var patterns map[string][]string
	if ss.Metadata != nil {
		patterns = ss.Metadata.Tags
	}
	fields := make([]Field, 0, len(fs))
	for _, f := range fs {
		tags := slices.Clone(f.tags)
		for pat, ptags := range patterns {
			if matchesAny(pat, f.path, f.fullName) {
				tags = append(tags, ptags...)
			}
		}
		tags = cleanTags(tags)
		fields = append(fields, Field{Path: f.path, Type: f.typ, Doc: f.doc, Tags: tags})
	}
	return &schemaView{
		summary:  Schema{Subject: ss.Subject, Version: ss.Version, ID: ss.ID, Type: typ, Fields: fields},
		contract: contractOf(ss.RuleSet),
		parsed:   parsed,
		patterns: patterns,
	}
}

// cleanTags keeps the valid tags, sorted and unique, never nil.
func cleanTags(tags []string) []string {
	out := []string{}
	for _, t := range tags {
		if tagRE.MatchString(t) {
			out = append(out, t)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// contractOf summarises a rule set; nil without rules.
func contractOf(rs *registry.RuleSet) *Contract {
	if rs == nil {
		return nil
	}
	c := &Contract{Rules: []ContractRule{}}
	for _, list := range [][]registry.Rule{rs.DomainRules, rs.MigrationRules, rs.EncodingRules} {
		for _, r := range list {
			c.Rules = append(c.Rules, ContractRule{Name: r.Name, Kind: r.Kind, Mode: r.Mode, Type: r.Type,
				Expr: r.Expr, OnFailure: r.OnFailure, Disabled: r.Disabled})
		}
	}
	if len(c.Rules) == 0 {
		return nil
	}
	return c
}

// rawField is a field found in a schema, before metadata tags.
type rawField struct {
	path     string // dotted path from the root
	fullName string // Confluent's name for tag patterns: the enclosing record's full name + "." + the field
	typ, doc string
	tags     []string
}

// maxFields bounds the fields one schema lists.
const maxFields = 4096

// Avro: records nest by field name; arrays and maps are looked through
// (their items' fields continue the path); union branches that are
// records contribute their fields. Field tags come from the field
// property "confluent:tags".
func avroFields(s hamba.Schema) []rawField {
	var out []rawField
	var walk func(s hamba.Schema, path string, stack map[string]bool)
	walk = func(s hamba.Schema, path string, stack map[string]bool) {
		s = avroDeref(s)
		switch t := s.(type) {
		case *hamba.RecordSchema:
			if stack[t.FullName()] || len(out) >= maxFields {
				return
			}
			stack[t.FullName()] = true
			defer delete(stack, t.FullName())
			for _, f := range t.Fields() {
				p := joinPath(path, f.Name())
				out = append(out, rawField{path: p, fullName: t.FullName() + "." + f.Name(), typ: avroType(f.Type()),
					doc: f.Doc(), tags: stringList(f.Prop("confluent:tags"))})
				walk(f.Type(), p, stack)
			}
		case *hamba.ArraySchema:
			walk(t.Items(), path, stack)
		case *hamba.MapSchema:
			walk(t.Values(), path, stack)
		case *hamba.UnionSchema:
			for _, b := range t.Types() {
				walk(b, path, stack)
			}
		}
	}
	walk(s, "", map[string]bool{})
	return out
}

func avroDeref(s hamba.Schema) hamba.Schema {
	if r, ok := s.(*hamba.RefSchema); ok {
		return r.Schema()
	}
	return s
}

// avroType names an Avro type for people: primitives and logical types
// by name, named types by their name, containers with their items.
func avroType(s hamba.Schema) string {
	s = avroDeref(s)
	switch t := s.(type) {
	case *hamba.RecordSchema:
		return t.FullName()
	case *hamba.EnumSchema:
		return "enum " + t.FullName()
	case *hamba.FixedSchema:
		if l := t.Logical(); l != nil {
			return string(l.Type())
		}
		return fmt.Sprintf("fixed(%d)", t.Size())
	case *hamba.ArraySchema:
		return "array<" + avroType(t.Items()) + ">"
	case *hamba.MapSchema:
		return "map<" + avroType(t.Values()) + ">"
	case *hamba.UnionSchema:
		names := make([]string, 0, len(t.Types()))
		for _, b := range t.Types() {
			names = append(names, avroType(b))
		}
		return strings.Join(names, "|")
	case *hamba.PrimitiveSchema:
		if l := t.Logical(); l != nil {
			return string(l.Type())
		}
	}
	return string(s.Type())
}

// stringList reads a JSON array of strings (a schema property).
func stringList(v any) []string {
	arr, ok := v.([]any)
	if !ok {
		if ss, ok := v.([]string); ok {
			return slices.Clone(ss)
		}
		return nil
	}
	out := make([]string, 0, len(arr))
	for _, x := range arr {
		if s, ok := x.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

// Protobuf: the file's first message (as the TopicNameStrategy's value
// is); fields by their proto names, nested messages by field. Field tags
// come from the subject's metadata only.
func protoFields(md protoreflect.MessageDescriptor) []rawField {
	var out []rawField
	var walk func(md protoreflect.MessageDescriptor, path string, stack map[protoreflect.FullName]bool)
	walk = func(md protoreflect.MessageDescriptor, path string, stack map[protoreflect.FullName]bool) {
		if stack[md.FullName()] || len(out) >= maxFields {
			return
		}
		stack[md.FullName()] = true
		defer delete(stack, md.FullName())
		fs := md.Fields()
		for i := 0; i < fs.Len(); i++ {
			f := fs.Get(i)
			p := joinPath(path, string(f.Name()))
			// Docs would be the fields' leading comments, when the file
			// was compiled with source info.
			doc := strings.TrimSpace(md.ParentFile().SourceLocations().ByDescriptor(f).LeadingComments)
			out = append(out, rawField{path: p, fullName: string(f.FullName()), typ: protoType(f), doc: doc})
			switch {
			case f.IsMap():
				if v := f.MapValue(); v.Kind() == protoreflect.MessageKind {
					walk(v.Message(), p, stack)
				}
			case f.Kind() == protoreflect.MessageKind || f.Kind() == protoreflect.GroupKind:
				walk(f.Message(), p, stack)
			}
		}
	}
	walk(md, "", map[protoreflect.FullName]bool{})
	return out
}

func protoType(f protoreflect.FieldDescriptor) string {
	elem := func(f protoreflect.FieldDescriptor) string {
		switch f.Kind() {
		case protoreflect.MessageKind, protoreflect.GroupKind:
			return string(f.Message().FullName())
		case protoreflect.EnumKind:
			return "enum " + string(f.Enum().FullName())
		}
		return f.Kind().String()
	}
	switch {
	case f.IsMap():
		return "map<" + elem(f.MapKey()) + "," + elem(f.MapValue()) + ">"
	case f.IsList():
		return "repeated " + elem(f)
	}
	return elem(f)
}

// JSON Schema: the schema document walked as JSON: "properties" nest by
// name, "items" continue the path, local "$ref"s ("#/definitions/X",
// "#/$defs/X") are followed, and allOf/anyOf/oneOf branches contribute
// their properties. Field tags come from the "confluent:tags" keyword.
func jsonFields(text string) []rawField {
	var root any
	if err := json.Unmarshal([]byte(text), &root); err != nil {
		return nil
	}
	rootName := ""
	if m, ok := root.(map[string]any); ok {
		rootName, _ = m["title"].(string)
	}
	var out []rawField
	var walk func(node any, path string, depth int)
	resolve := func(m map[string]any) map[string]any {
		for i := 0; i < 16; i++ {
			ref, ok := m["$ref"].(string)
			if !ok || !strings.HasPrefix(ref, "#/") {
				return m
			}
			var cur any = root
			for _, seg := range strings.Split(ref[2:], "/") {
				seg = strings.ReplaceAll(strings.ReplaceAll(seg, "~1", "/"), "~0", "~")
				cm, ok := cur.(map[string]any)
				if !ok {
					return m
				}
				cur = cm[seg]
			}
			next, ok := cur.(map[string]any)
			if !ok {
				return m
			}
			m = next
		}
		return m
	}
	walk = func(node any, path string, depth int) {
		m, ok := node.(map[string]any)
		if !ok || depth > 32 || len(out) >= maxFields {
			return
		}
		m = resolve(m)
		if props, ok := m["properties"].(map[string]any); ok {
			names := make([]string, 0, len(props))
			for n := range props {
				names = append(names, n)
			}
			slices.Sort(names)
			for _, n := range names {
				pm, _ := props[n].(map[string]any)
				if pm == nil {
					continue
				}
				rp := resolve(pm)
				p := joinPath(path, n)
				doc, _ := pm["description"].(string)
				if doc == "" {
					doc, _ = rp["description"].(string)
				}
				tags := stringList(pm["confluent:tags"])
				tags = append(tags, stringList(rp["confluent:tags"])...)
				full := p
				if rootName != "" {
					full = rootName + "." + p
				}
				out = append(out, rawField{path: p, fullName: full, typ: jsonType(rp), doc: doc, tags: tags})
				walk(rp, p, depth+1)
			}
		}
		if items, ok := m["items"]; ok {
			walk(items, path, depth+1)
		}
		for _, k := range []string{"allOf", "anyOf", "oneOf"} {
			if arr, ok := m[k].([]any); ok {
				for _, b := range arr {
					walk(b, path, depth+1)
				}
			}
		}
	}
	walk(root, "", 0)
	return out
}

func jsonType(m map[string]any) string {
	switch t := m["type"].(type) {
	case string:
		if t == "array" {
			if im, ok := m["items"].(map[string]any); ok {
				return "array<" + jsonType(im) + ">"
			}
		}
		if f, ok := m["format"].(string); ok && t == "string" {
			return "string(" + f + ")"
		}
		return t
	case []any:
		names := stringList(t)
		return strings.Join(names, "|")
	}
	if _, ok := m["$ref"]; ok {
		return "object"
	}
	if _, ok := m["properties"]; ok {
		return "object"
	}
	return "any"
}

func joinPath(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

// matchesAny reports whether a metadata tag pattern matches a field by its
// dotted path or by Confluent's full name (the enclosing record's full
// name and the field's). Patterns are Confluent's: '?' is one character
// within a name, '*' any characters within a name, '**' any characters
// across names ("**.ssn" tags every field named ssn).
func matchesAny(pattern, path, fullName string) bool {
	pattern = strings.ReplaceAll(pattern, "**.*", "**")
	return wildcard(pattern, path) || (fullName != "" && wildcard(pattern, fullName))
}

// wildcard matches s against a Confluent tag pattern.
func wildcard(p, s string) bool {
	for len(p) > 0 {
		switch {
		case strings.HasPrefix(p, "**"):
			rest := p[2:]
			for i := 0; i <= len(s); i++ {
				if wildcard(rest, s[i:]) {
					return true
				}
			}
			return false
		case p[0] == '*':
			rest := p[1:]
			for i := 0; i <= len(s); i++ {
				if wildcard(rest, s[i:]) {
					return true
				}
				if i < len(s) && s[i] == '.' {
					return false
				}
			}
			return false
		case p[0] == '?':
			if len(s) == 0 || s[0] == '.' {
				return false
			}
		default:
			if len(s) == 0 || s[0] != p[0] {
				return false
			}
		}
		p, s = p[1:], s[1:]
	}
	return len(s) == 0
}

// withFieldTags returns the schema with the product's own field tags
// added to its fields (a field tag on a path the schema lacks is kept
// on the product only).
func withFieldTags(s *Schema, fieldTags map[string][]string) *Schema {
	if s == nil {
		return nil
	}
	out := *s
	out.Fields = make([]Field, len(s.Fields))
	for i, f := range s.Fields {
		f.Tags = slices.Clone(f.Tags)
		if extra := fieldTags[f.Path]; len(extra) > 0 {
			f.Tags = cleanTags(append(f.Tags, extra...))
		}
		out.Fields[i] = f
	}
	return &out
}

// SchemaDiff is the difference between two versions of a subject.
type SchemaDiff struct {
	Subject string        `json:"subject"`
	From    int           `json:"from"`
	To      int           `json:"to"`
	Added   []Field       `json:"added"`
	Removed []Field       `json:"removed"`
	Changed []FieldChange `json:"changed"`
}

// FieldChange is a field whose type, doc or tags differ between versions.
type FieldChange struct {
	Path string `json:"path"`
	From Field  `json:"from"`
	To   Field  `json:"to"`
}

// diffFields compares two field lists by path.
func diffFields(from, to []Field) (added, removed []Field, changed []FieldChange) {
	added, removed, changed = []Field{}, []Field{}, []FieldChange{}
	old := make(map[string]Field, len(from))
	for _, f := range from {
		old[f.Path] = f
	}
	seen := map[string]bool{}
	for _, f := range to {
		seen[f.Path] = true
		o, ok := old[f.Path]
		switch {
		case !ok:
			added = append(added, f)
		case o.Type != f.Type || o.Doc != f.Doc || !slices.Equal(o.Tags, f.Tags):
			changed = append(changed, FieldChange{Path: f.Path, From: o, To: f})
		}
	}
	for _, f := range from {
		if !seen[f.Path] {
			removed = append(removed, f)
		}
	}
	return added, removed, changed
}
