package registry

import (
	"context"
	"fmt"
	"strings"
)

// Schema text formats a client can ask for with ?format= on the
// schema-returning GETs (/schemas/ids/{id}[/schema],
// /subjects/{s}/versions/{v}[/schema]), by Confluent's names.
const (
	// formatResolved (AVRO): the schema with the named types its
	// references define inlined where first used, so it stands alone.
	formatResolved = "resolved"
	// formatSerialized (PROTOBUF): the schema as a base64-encoded
	// FileDescriptorProto, as Confluent's Protobuf deserializers fetch it.
	formatSerialized = "serialized"
)

// Serializer is an optional capability of a Schema: its serialized form
// (for Protobuf, a base64-encoded FileDescriptorProto).
type Serializer interface {
	Serialized() (string, error)
}

// FormattedText returns a stored schema's text in the form format names.
// Confluent never refuses a format: a name the schema's type does not know
// ("serialized" for Avro, "resolved" for Protobuf, anything for JSON
// Schema, "default", or an unknown name) is served as the default form, for
// forward compatibility of formats (its formattedString logs a warning and
// returns the canonical string). This registry does the same with the text
// as stored; Protobuf's "ignore_extensions" is not implemented and is
// served as the default form too. sctx is the schema's context.
func (r *Registry) FormattedText(ctx context.Context, sctx string, st StoredSchema, format string) (string, error) {
	done, err := r.enter()
	if err != nil {
		return "", err
	}
	defer done()
	return r.formattedText(ctx, sctx, st, format)
}

func (r *Registry) formattedText(ctx context.Context, sctx string, st StoredSchema, format string) (string, error) {
	format = strings.ToLower(strings.TrimSpace(format))
	switch {
	case format == formatResolved && st.Type == "AVRO":
		res, err := r.resolveRefs(ctx, sctx, st.References)
		if err != nil {
			return "", err
		}
		return resolveAvro(st.Schema, res.resolved)
	case format == formatSerialized && st.Type == "PROTOBUF":
		s, err := r.parsedSchema(ctx, sctx, st)
		if err != nil {
			return "", err
		}
		ser, ok := s.(Serializer)
		if !ok {
			return "", fmt.Errorf("registry: the PROTOBUF format's schemas have no serialized form")
		}
		return ser.Serialized()
	}
	return st.Schema, nil
}
