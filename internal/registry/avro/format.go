package avro

import (
	"errors"
	"fmt"
	"strings"

	hamba "github.com/hamba/avro/v2"

	"github.com/runnel-dev/runnel/internal/registry"
)

// TypeName is the registry's name for this format.
const TypeName = "AVRO"

// Format is the Avro schema format. The zero value is ready to use and
// safe for concurrent use: it keeps no state between calls.
type Format struct{}

// Compile-time checks that the registry's contract is implemented.
var (
	_ registry.Format        = Format{}
	_ registry.Compatibility = Format{}
	_ registry.Schema        = (*Schema)(nil)
	_ registry.Compatibility = (*Schema)(nil)
)

// New returns the Avro format.
func New() Format { return Format{} }

// Type returns "AVRO".
func (Format) Type() string { return TypeName }

// Schema is a parsed Avro schema. It is immutable and safe for concurrent
// use.
type Schema struct {
	text       string
	parsed     hamba.Schema
	canonical  string
	normalized string
}

// Parse parses an Avro schema. refs are the schemas defining named types
// the text uses by full name; they are parsed first (each reference's own
// references before it, depth first), so a reference may itself use named
// types from its references. A reference reached twice (by name, or by
// subject and version) is parsed once. Errors wrap registry.ErrInvalidSchema
// and name the schema (main or which reference) and the JSON location.
func (Format) Parse(text string, refs []registry.ResolvedReference) (registry.Schema, error) {
	s, err := parse(text, refs)
	if err != nil {
		return nil, err
	}
	return s, nil
}

// Parse is Format.Parse returning the concrete type.
func Parse(text string, refs []registry.ResolvedReference) (*Schema, error) {
	return parse(text, refs)
}

func parse(text string, refs []registry.ResolvedReference) (*Schema, error) {
	cache := &hamba.SchemaCache{}
	names := map[string]bool{}
	seen := map[string]bool{}
	if err := parseRefs(refs, cache, names, seen, 0); err != nil {
		return nil, err
	}
	raw, parsed, err := parseOne(text, cache, names)
	if err != nil {
		return nil, fmt.Errorf("%w: %s", registry.ErrInvalidSchema, err)
	}
	return &Schema{
		text:       text,
		parsed:     parsed,
		canonical:  canonicalText(raw),
		normalized: normalizedText(raw),
	}, nil
}

// maxRefDepth bounds nested references, so a reference cycle cannot
// recurse forever.
const maxRefDepth = 64

func parseRefs(refs []registry.ResolvedReference, cache *hamba.SchemaCache, names, seen map[string]bool, depth int) error {
	if depth > maxRefDepth {
		return fmt.Errorf("%w: references nested deeper than %d levels (a reference cycle?)", registry.ErrInvalidSchema, maxRefDepth)
	}
	for _, ref := range refs {
		if ref.Name == "" {
			return fmt.Errorf("%w: reference to subject %q version %d has no name", registry.ErrInvalidSchema, ref.Subject, ref.Version)
		}
		keyName := "name:" + ref.Name
		keySubject := fmt.Sprintf("subject:%s/%d", ref.Subject, ref.Version)
		if seen[keyName] || (ref.Subject != "" && seen[keySubject]) {
			continue
		}
		seen[keyName] = true
		if ref.Subject != "" {
			seen[keySubject] = true
		}
		if err := parseRefs(ref.Refs, cache, names, seen, depth+1); err != nil {
			return err
		}
		if _, _, err := parseOne(ref.Schema, cache, names); err != nil {
			return fmt.Errorf("%w: reference %q (subject %q, version %d): %s", registry.ErrInvalidSchema, ref.Name, ref.Subject, ref.Version, err)
		}
	}
	return nil
}

// parseOne checks text's structure (with JSON locations in messages), then
// has hamba/avro parse it into cache, which then holds its named types.
func parseOne(text string, cache *hamba.SchemaCache, names map[string]bool) (any, hamba.Schema, error) {
	raw, err := decodeJSON(text)
	if err != nil {
		return nil, nil, err
	}
	if err := validate(raw, "", "", names); err != nil {
		return nil, nil, err
	}
	parsed, err := hamba.ParseWithCache(text, "", cache)
	if err != nil {
		return nil, nil, errors.New(strings.TrimPrefix(err.Error(), "avro: "))
	}
	return raw, parsed, nil
}

// String returns the schema text as registered.
func (s *Schema) String() string { return s.text }

// Canonical is the schema's JSON re-encoded compactly with object keys in
// sorted order, numbers and strings as written, and a primitive written as
// {"type":"int"} collapsed to "int". Every attribute (doc, aliases,
// defaults, namespaces, custom properties) is kept, so it is insensitive
// to formatting only, which is what registration lookups compare.
func (s *Schema) Canonical() string { return s.canonical }

// Normalized is the text used for normalize=true: Avro's Parsing Canonical
// Form extended with what affects data resolution. Precisely:
//   - named types (record, error, enum, fixed) carry their full name in
//     "name" and no "namespace"; references to them use the full name;
//     aliases of named types are fully qualified and sorted, field aliases
//     sorted;
//   - a primitive with no other attribute is the bare type name;
//   - kept: name, type, fields, symbols, items, values, size, default
//     (field and enum defaults, re-encoded compactly), aliases, order
//     (only when not "ascending"), logicalType, precision, scale, and
//     custom properties; dropped: doc;
//   - keys appear in that order, custom properties last, sorted.
func (s *Schema) Normalized() string { return s.normalized }

// Avro returns the schema as parsed by hamba/avro.
func (s *Schema) Avro() hamba.Schema { return s.parsed }

// RecordName is the full name of the schema's top-level named type (a
// record, enum or fixed); other schemas name no record.
func (s *Schema) RecordName([]byte) (string, error) {
	if n, ok := s.parsed.(hamba.NamedSchema); ok {
		return n.FullName(), nil
	}
	return "", fmt.Errorf("%w: the Avro schema's top-level type %s has no name", registry.ErrInvalidPayload, s.parsed.Type())
}
