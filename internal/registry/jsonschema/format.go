package jsonschema

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"

	lib "github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/runnel-dev/runnel/internal/registry"
)

// TypeName is the registry's name for this format.
const TypeName = "JSON"

// rootURL is where the schema being parsed lives when it has no absolute
// "$id": relative references ("customer.json") resolve against it. The
// ".invalid" host can never be fetched, and nothing is fetched anyway.
const rootURL = "https://schema-registry.runnel.invalid/root/schema.json"

// Format is the JSON Schema format. The zero value is ready to use.
type Format struct{}

var (
	_ registry.Format        = (*Format)(nil)
	_ registry.Compatibility = (*Format)(nil)
	_ registry.Schema        = (*Schema)(nil)
	_ registry.Compatibility = (*Schema)(nil)
)

// New returns the JSON Schema format.
func New() *Format { return &Format{} }

// Type returns "JSON".
func (*Format) Type() string { return TypeName }

// Schema is a parsed, compiled JSON Schema.
type Schema struct {
	compiled  *lib.Schema
	canonical string
	title     string // the root schema's "title", the record name
}

// Parse parses and compiles a JSON Schema. refs are the schema's references
// (nested ones in each reference's Refs); a reference's Name is the URL the
// schema uses in "$ref", relative or absolute. Every failure wraps
// registry.ErrInvalidSchema.
func (*Format) Parse(text string, refs []registry.ResolvedReference) (registry.Schema, error) {
	doc, err := decodeJSON([]byte(text))
	if err != nil {
		return nil, fmt.Errorf("%w: schema is not JSON: %v", registry.ErrInvalidSchema, err)
	}
	switch doc.(type) {
	case map[string]any, bool:
	default:
		return nil, fmt.Errorf("%w: a JSON Schema is an object or a boolean, not %s", registry.ErrInvalidSchema, jsonKind(doc))
	}

	loader := &refLoader{byURL: map[string]any{}}
	if err := loader.add(refs, map[string]string{}); err != nil {
		return nil, err
	}

	c := lib.NewCompiler()
	c.DefaultDraft(lib.Draft7)
	c.UseLoader(loader)
	if err := c.AddResource(rootURL, doc); err != nil {
		return nil, fmt.Errorf("%w: %v", registry.ErrInvalidSchema, err)
	}
	compiled, err := compile(c)
	if err != nil {
		return nil, fmt.Errorf("%w: %s", registry.ErrInvalidSchema, compileMessage(err))
	}
	canonical, err := canonicalJSON(doc)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", registry.ErrInvalidSchema, err)
	}
	title := ""
	if m, ok := doc.(map[string]any); ok {
		title, _ = m["title"].(string)
	}
	return &Schema{compiled: compiled, canonical: canonical, title: title}, nil
}

// RecordName is the root schema's "title", as Confluent's JSON Schema
// serializers name records for RecordNameStrategy.
func (s *Schema) RecordName([]byte) (string, error) {
	if s.title == "" {
		return "", fmt.Errorf("%w: the JSON schema has no title to name its records", registry.ErrInvalidPayload)
	}
	return s.title, nil
}

// compile runs the compiler, turning a panic inside the library into an
// error: a schema is client input and must never take the broker down.
func compile(c *lib.Compiler) (s *lib.Schema, err error) {
	defer func() {
		if r := recover(); r != nil {
			s, err = nil, fmt.Errorf("schema could not be compiled: %v", r)
		}
	}()
	return c.Compile(rootURL)
}

// compileMessage makes the library's error readable without our synthetic
// root URL.
func compileMessage(err error) string {
	msg := err.Error()
	msg = strings.ReplaceAll(msg, rootURL+"#", "#")
	msg = strings.ReplaceAll(msg, rootURL, "the schema")
	return msg
}

// Canonical is the schema as compact JSON with object keys sorted.
func (s *Schema) Canonical() string { return s.canonical }

// Compiled returns the schema as the JSON Schema library compiled it, for
// callers that map its structure (Tableflow's table columns).
func (s *Schema) Compiled() *lib.Schema { return s.compiled }

// Normalized is the same text as Canonical: Confluent normalizes a JSON
// Schema by ordering its object keys, which the canonical form already does.
func (s *Schema) Normalized() string { return s.canonical }

// refLoader hands the compiler the referenced schemas and nothing else.
type refLoader struct {
	byURL  map[string]any // absolute URL (no fragment) → document
	byName []namedDoc     // relative names, matched as path suffixes
}

type namedDoc struct {
	name string
	doc  any
}

// add registers refs and their nested references. seen maps a name to the
// text already registered under it, so one name cannot mean two schemas.
func (l *refLoader) add(refs []registry.ResolvedReference, seen map[string]string) error {
	for _, ref := range refs {
		name, _, _ := strings.Cut(ref.Name, "#")
		if name == "" {
			return fmt.Errorf("%w: reference (subject %q, version %d) has an empty name; it must be the URL used in \"$ref\"",
				registry.ErrInvalidSchema, ref.Subject, ref.Version)
		}
		if prev, ok := seen[name]; ok {
			if prev != ref.Schema {
				return fmt.Errorf("%w: reference %q is given twice with different schemas", registry.ErrInvalidSchema, ref.Name)
			}
			continue
		}
		seen[name] = ref.Schema
		doc, err := decodeJSON([]byte(ref.Schema))
		if err != nil {
			return fmt.Errorf("%w: referenced schema %q (subject %q, version %d) is not JSON: %v",
				registry.ErrInvalidSchema, ref.Name, ref.Subject, ref.Version, err)
		}
		u, err := url.Parse(name)
		if err != nil {
			return fmt.Errorf("%w: reference name %q is not a URL: %v", registry.ErrInvalidSchema, ref.Name, err)
		}
		if u.IsAbs() {
			l.byURL[u.String()] = doc
		} else {
			base, _ := url.Parse(rootURL)
			l.byURL[base.ResolveReference(u).String()] = doc
			l.byName = append(l.byName, namedDoc{name: strings.TrimPrefix(u.String(), "./"), doc: doc})
		}
		if err := l.add(ref.Refs, seen); err != nil {
			return err
		}
	}
	return nil
}

// Load implements the library's URLLoader. A relative reference name
// matches any URL that ends with it, so references resolve whatever base
// the referencing schema has (its own "$id", or another reference's URL);
// the longest matching name wins.
func (l *refLoader) Load(u string) (any, error) {
	if doc, ok := l.byURL[u]; ok {
		return doc, nil
	}
	var best *namedDoc
	for i := range l.byName {
		n := &l.byName[i]
		if strings.HasSuffix(u, "/"+n.name) && (best == nil || len(n.name) > len(best.name)) {
			best = n
		}
	}
	if best != nil {
		return best.doc, nil
	}
	return nil, fmt.Errorf("no reference named %q was given with the schema", u)
}

// decodeJSON decodes exactly one JSON value, keeping numbers exact.
func decodeJSON(b []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("empty input")
		}
		return nil, err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("unexpected data after the JSON value at offset %d", dec.InputOffset())
	}
	return v, nil
}

// canonicalJSON renders v compactly; encoding/json sorts map keys.
func canonicalJSON(v any) (string, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return "", err
	}
	return strings.TrimSuffix(buf.String(), "\n"), nil
}

func jsonKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "a boolean"
	case json.Number:
		return "a number"
	case string:
		return "a string"
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%T", v)
}
