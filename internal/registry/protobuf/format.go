package protobuf

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"strconv"
	"strings"

	"github.com/bufbuild/protocompile"
	"github.com/bufbuild/protocompile/linker"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"

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
// and its Schema that file's text; references nest. The files Confluent's
// registry provides without a reference (google/protobuf/*, google/type/*,
// confluent/meta.proto and confluent/type/decimal.proto; see wellknown.go)
// resolve to built-in copies unless a reference supplies them. A schema
// that does not compile is an error
// wrapping registry.ErrInvalidSchema with the compiler's file:line:col
// message.
func (Format) Parse(text string, refs []registry.ResolvedReference) (registry.Schema, error) {
	sources := make(map[string]string)
	if err := collectRefs(sources, refs, 0); err != nil {
		return nil, err
	}
	root := rootName(sources)
	// Confluent's serializers register a schema as a base64-encoded
	// FileDescriptorProto; the registry accepts that as well as .proto text
	// (and serves it back rendered as .proto text).
	var rootProto *descriptorpb.FileDescriptorProto
	if fdp := decodeDescriptor(text); fdp != nil {
		if fdp.GetName() == "" {
			fdp.Name = proto.String(root)
		}
		root, rootProto = fdp.GetName(), fdp
	} else {
		sources[root] = text
	}
	resolve := protocompile.ResolverFunc(func(path string) (protocompile.SearchResult, error) {
		if rootProto != nil && path == root {
			return protocompile.SearchResult{Proto: rootProto}, nil
		}
		src, ok := sources[path]
		if !ok {
			if fd, ok := googleTypes[path]; ok {
				return protocompile.SearchResult{Desc: fd}, nil
			}
			known, ok := knownImports[path]
			if !ok {
				return protocompile.SearchResult{}, fmt.Errorf("%s: %w", path, fs.ErrNotExist)
			}
			return protocompile.SearchResult{Source: strings.NewReader(known)}, nil
		}
		if fdp := decodeDescriptor(src); fdp != nil {
			if fdp.GetName() == "" {
				fdp.Name = proto.String(path)
			}
			return protocompile.SearchResult{Proto: fdp}, nil
		}
		return protocompile.SearchResult{Source: strings.NewReader(src)}, nil
	})

	c := protocompile.Compiler{
		Resolver:       protocompile.WithStandardImports(resolve),
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
	s, err := newSchema(files[0])
	if err != nil {
		return nil, err
	}
	s.fromDescriptor = rootProto != nil
	return s, nil
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
	// fromDescriptor is set when the schema was sent as a base64
	// FileDescriptorProto.
	fromDescriptor bool
}

// StoredText is the text the registry stores for this schema: what was
// sent, or the canonical .proto text when a descriptor was sent.
func (s *Schema) StoredText(sent string) string {
	if s.fromDescriptor {
		return s.canonical
	}
	return sent
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

// Serialized returns the schema as a base64-encoded FileDescriptorProto
// (deterministic bytes), the form Confluent serves for ?format=serialized.
func (s *Schema) Serialized() (string, error) {
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(protodesc.ToFileDescriptorProto(s.file))
	if err != nil {
		return "", fmt.Errorf("protobuf: encode %s as a FileDescriptorProto: %w", s.file.Path(), err)
	}
	return base64.StdEncoding.EncodeToString(b), nil
}

// decodeDescriptor reads text as a base64-encoded FileDescriptorProto, or
// returns nil if it is not one (.proto source never decodes as base64 into
// a descriptor that names a file, a package or a type).
func decodeDescriptor(text string) *descriptorpb.FileDescriptorProto {
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(text))
	if err != nil || len(raw) == 0 {
		return nil
	}
	fdp := &descriptorpb.FileDescriptorProto{}
	if err := proto.Unmarshal(raw, fdp); err != nil {
		return nil
	}
	if fdp.GetName() == "" && fdp.GetPackage() == "" && len(fdp.GetMessageType()) == 0 && len(fdp.GetEnumType()) == 0 {
		return nil
	}
	// protoc fills in every field's json_name; some runtimes leave it
	// unset or "" where they mean the default, which the compiler would take
	// for a custom name.
	for _, m := range fdp.GetMessageType() {
		clearEmptyJSONNames(m)
	}
	for _, x := range fdp.GetExtension() {
		if x.GetJsonName() == "" {
			x.JsonName = proto.String(defaultJSONName(x.GetName()))
		}
	}
	return fdp
}

func clearEmptyJSONNames(m *descriptorpb.DescriptorProto) {
	for _, f := range append(m.GetField(), m.GetExtension()...) {
		if f.GetJsonName() == "" {
			f.JsonName = proto.String(defaultJSONName(f.GetName()))
		}
	}
	for _, n := range m.GetNestedType() {
		clearEmptyJSONNames(n)
	}
}
