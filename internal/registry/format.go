package registry

import (
	"errors"
)

// Format is one schema type the registry serves: AVRO, PROTOBUF or JSON.
// Implementations live in their own packages (internal/registry/avro,
// .../protobuf, .../jsonschema) and are handed to the registry when it is
// built, so this package never depends on a schema library.
type Format interface {
	// Type is the registry's name for the format: "AVRO", "PROTOBUF" or
	// "JSON".
	Type() string
	// Parse parses schema text. refs are the schema's references, already
	// resolved to their schema text (a reference's Name is what the schema
	// text uses: an Avro full name, a Protobuf import path, a JSON Schema
	// $ref URL). An invalid schema is an error wrapping ErrInvalidSchema
	// whose message says what is wrong.
	Parse(text string, refs []ResolvedReference) (Schema, error)
}

// Schema is a parsed schema.
type Schema interface {
	// Canonical is the schema's canonical text: two registrations of the
	// same schema, however formatted, have the same canonical text (it is
	// what lookups and deduplication compare).
	Canonical() string
	// Normalized is the normalized text used when a client asks for
	// normalize=true (Confluent's semantics: for Avro the parsing canonical
	// form with defaults and aliases kept; for Protobuf a canonical
	// rendering with options and fields ordered; for JSON Schema keys
	// sorted).
	Normalized() string
	// Decode checks that payload is a value of this schema, fully (every
	// field, every nested value), and returns it as plain Go values
	// (map[string]any, []any, string, float64/int64, bool, nil, []byte) for
	// data contract rules. payload is what follows the magic byte and the
	// 4-byte schema id in the wire format; for Protobuf it starts with the
	// message indexes. A payload that does not match is an error wrapping
	// ErrInvalidPayload.
	Decode(payload []byte) (any, error)
}

// Compatibility is implemented by a Format's schemas: the format's own
// reader/writer rules (Avro schema resolution and promotions; Protobuf by
// field number and wire-compatible scalar groups; JSON Schema by content
// model, open or closed).
type Compatibility interface {
	// CanRead reports whether data written with writer can be read with
	// reader (both of this format). It returns one message per
	// incompatibility, each saying what broke and where; none means
	// compatible. BACKWARD checks CanRead(new, old), FORWARD
	// CanRead(old, new), FULL both.
	CanRead(reader, writer Schema) []string
}

// RecordNamer is implemented by schemas whose records have a name, for the
// RecordNameStrategy and TopicRecordNameStrategy subject name strategies:
// the Avro record's full name, the Protobuf message's full name (chosen by
// the payload's message indexes), the JSON Schema's title.
type RecordNamer interface {
	// RecordName returns the name of the record payload holds (payload as
	// for Decode). An error wraps ErrInvalidPayload or says the schema
	// names no record.
	RecordName(payload []byte) (string, error)
}

// TextStorer is implemented by schemas whose text is stored and served in
// another form than the client sent: a Protobuf schema registered as a
// base64-encoded FileDescriptorProto is stored as .proto text, as Confluent
// does, so every client can read it back.
type TextStorer interface {
	StoredText(sent string) string
}

// ResolvedReference is a schema reference with the referenced schema's
// text.
type ResolvedReference struct {
	// Name is how the referencing schema names it.
	Name string
	// Subject and Version locate the referenced schema in the registry.
	Subject string
	Version int
	// Schema is the referenced schema's text, and Refs its own references
	// (resolved too), for formats that need the whole graph.
	Schema string
	Refs   []ResolvedReference
}

// Sentinel errors shared by the registry and its formats.
var (
	// ErrInvalidSchema means a schema does not parse (HTTP 422, error
	// code 42201).
	ErrInvalidSchema = errors.New("registry: invalid schema")
	// ErrInvalidPayload means a record's payload does not match its schema.
	ErrInvalidPayload = errors.New("registry: payload does not match its schema")
)
