package protobuf

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/bufbuild/protocompile"
	"github.com/bufbuild/protocompile/linker"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/runnel-dev/runnel/internal/registry"
)

// TypeName is the registry's name for this format.
const TypeName = "PROTOBUF"

// maxRefDepth bounds how deeply references may nest, so a cyclic or absurd
// reference graph is an error rather than unbounded recursion.
const maxRefDepth = 64

// Format is the PROTOBUF registry.Format. The zero value is ready to use.
type Format struct{}

var (
	_ registry.Format        = Format{}
	_ registry.Compatibility = Format{}
	_ registry.Schema        = (*Schema)(nil)
)

// New returns the PROTOBUF format.
func New() Format { return Format{} }

// Type returns "PROTOBUF".
func (Format) Type() string { return TypeName }

// Parse compiles text as a .proto file. refs supply the imported files: a
// reference's Name is the import path the schema uses (e.g. "other.proto")
// and its Schema that file's text; references nest. Files under
// google/protobuf/ resolve to the built-in well-known types unless a
// reference supplies them. A schema that does not compile is an error
// wrapping registry.ErrInvalidSchema with the compiler's file:line:col
// message.
func (Format) Parse(text string, refs []registry.ResolvedReference) (registry.Schema, error) {
	sources := make(map[string]string)
	if err := collectRefs(sources, refs, 0); err != nil {
		return nil, err
	}
	root := rootName(sources)
	sources[root] = text

	c := protocompile.Compiler{
		Resolver: protocompile.WithStandardImports(&protocompile.SourceResolver{
			Accessor: protocompile.SourceAccessorFromMap(sources),
		}),
		MaxParallelism: 1,
		SourceInfoMode: protocompile.SourceInfoNone,
	}
	files, err := c.Compile(context.Background(), root)
	if err != nil {
		var pe protocompile.PanicError
		if errors.As(err, &pe) {
			return nil, fmt.Errorf("%w: compiler failed on %s: %v", registry.ErrInvalidSchema, pe.File, pe.Value)
		}
		return nil, fmt.Errorf("%w: %v", registry.ErrInvalidSchema, err)
	}
	if len(files) != 1 {
		return nil, fmt.Errorf("%w: compiler returned %d files", registry.ErrInvalidSchema, len(files))
	}
	return newSchema(files[0])
}

// collectRefs flattens a reference tree into import path → text. The same
// path twice with different text is ambiguous and rejected.
func collectRefs(into map[string]string, refs []registry.ResolvedReference, depth int) error {
	if depth > maxRefDepth {
		return fmt.Errorf("%w: references nest deeper than %d", registry.ErrInvalidSchema, maxRefDepth)
	}
	for _, r := range refs {
		if r.Name == "" {
			return fmt.Errorf("%w: reference to subject %q version %d has no name", registry.ErrInvalidSchema, r.Subject, r.Version)
		}
		if prev, ok := into[r.Name]; ok {
			if prev != r.Schema {
				return fmt.Errorf("%w: reference %q is given twice with different text", registry.ErrInvalidSchema, r.Name)
			}
			continue
		}
		into[r.Name] = r.Schema
		if err := collectRefs(into, r.Refs, depth+1); err != nil {
			return err
		}
	}
	return nil
}

// rootName picks a file name for the schema itself that no reference uses.
func rootName(sources map[string]string) string {
	name := "schema.proto"
	for i := 0; ; i++ {
		if _, taken := sources[name]; !taken {
			return name
		}
		name = "schema_" + strconv.Itoa(i) + ".proto"
	}
}

// Schema is a compiled Protobuf schema. It is immutable and safe for
// concurrent use.
type Schema struct {
	file       linker.File
	canonical  string
	normalized string
	// messages lists every message (nested included, map entries
	// excluded) by full name, for compatibility checks.
	messages map[string]protoreflect.MessageDescriptor
}

func newSchema(f linker.File) (*Schema, error) {
	s := &Schema{file: f, messages: make(map[string]protoreflect.MessageDescriptor)}
	var err error
	if s.canonical, err = render(f, false); err != nil {
		return nil, fmt.Errorf("%w: %v", registry.ErrInvalidSchema, err)
	}
	if s.normalized, err = render(f, true); err != nil {
		return nil, fmt.Errorf("%w: %v", registry.ErrInvalidSchema, err)
	}
	collectMessages(f.Messages(), s.messages)
	return s, nil
}

func collectMessages(ms protoreflect.MessageDescriptors, into map[string]protoreflect.MessageDescriptor) {
	for i := 0; i < ms.Len(); i++ {
		m := ms.Get(i)
		if m.IsMapEntry() {
			continue
		}
		into[string(m.FullName())] = m
		collectMessages(m.Messages(), into)
	}
}

// Canonical returns the canonical rendering of the compiled file (see
// render): equal for the same schema however it is formatted or commented.
func (s *Schema) Canonical() string { return s.canonical }

// Normalized returns the normalized rendering: the canonical one with
// imports sorted, fields ordered by number and options by name.
func (s *Schema) Normalized() string { return s.normalized }

// File returns the compiled file descriptor.
func (s *Schema) File() protoreflect.FileDescriptor { return s.file }
