package tableflow

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/apache/iceberg-go"

	"github.com/runnel-dev/runnel/internal/registry"
	"github.com/runnel-dev/runnel/internal/registry/avro"
	"github.com/runnel-dev/runnel/internal/registry/jsonschema"
	"github.com/runnel-dev/runnel/internal/registry/protobuf"
)

// fakeSchemas is a schema registry holding parsed schemas by id, parsed
// with the registry's own formats.
type fakeSchemas struct {
	byID  map[int]registry.Schema
	calls int
}

func (f *fakeSchemas) SchemaByID(_ context.Context, id int) (registry.Schema, registry.SchemaInfo, error) {
	f.calls++
	s, ok := f.byID[id]
	if !ok {
		return nil, registry.SchemaInfo{}, fmt.Errorf("%w: Schema %d not found", registry.ErrSchemaNotFound, id)
	}
	return s, registry.SchemaInfo{}, nil
}

func (f *fakeSchemas) LatestForSubject(context.Context, string) (registry.Schema, registry.SubjectSchema, error) {
	return nil, registry.SubjectSchema{}, registry.ErrSubjectNotFound
}

// parseSchema parses text as the registry does for schemaType (AVRO,
// PROTOBUF or JSON).
func parseSchema(t *testing.T, schemaType, text string) registry.Schema {
	t.Helper()
	var f registry.Format
	switch schemaType {
	case avro.TypeName:
		f = avro.New()
	case protobuf.TypeName:
		f = protobuf.New()
	case jsonschema.TypeName:
		f = jsonschema.New()
	default:
		t.Fatalf("unknown schema type %s", schemaType)
	}
	s, err := f.Parse(text, nil)
	if err != nil {
		t.Fatalf("parse %s schema: %v", schemaType, err)
	}
	return s
}

// wire frames payload in the registry's wire format with schema id.
func wire(id int, payload []byte) []byte {
	return append([]byte{0, byte(id >> 24), byte(id >> 16), byte(id >> 8), byte(id)}, payload...)
}

// render writes a schema's fields with every id (list elements and map
// keys and values included), one top-level field a line.
func render(sc *iceberg.Schema) string {
	var b strings.Builder
	for _, f := range sc.Fields() {
		b.WriteString(renderField(f))
		b.WriteByte('\n')
	}
	return b.String()
}

func renderField(f iceberg.NestedField) string {
	req := "?"
	if f.Required {
		req = ""
	}
	return fmt.Sprintf("%d %s%s %s", f.ID, f.Name, req, renderType(f.Type))
}

func renderType(t iceberg.Type) string {
	switch t := t.(type) {
	case *iceberg.StructType:
		parts := make([]string, len(t.FieldList))
		for i, f := range t.FieldList {
			parts[i] = renderField(f)
		}
		return "struct<" + strings.Join(parts, ", ") + ">"
	case *iceberg.ListType:
		req := "?"
		if t.ElementRequired {
			req = ""
		}
		return fmt.Sprintf("list<%d%s %s>", t.ElementID, req, renderType(t.Element))
	case *iceberg.MapType:
		req := "?"
		if t.ValueRequired {
			req = ""
		}
		return fmt.Sprintf("map<%d %s, %d%s %s>", t.KeyID, renderType(t.KeyType), t.ValueID, req, renderType(t.ValueType))
	}
	return t.String()
}
