package cli

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"reflect"
	"strconv"
	"strings"
	"syscall"

	hamba "github.com/hamba/avro/v2"
	"github.com/spf13/pflag"
	"github.com/twmb/franz-go/pkg/sr"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/dynamicpb"

	"github.com/runnel-dev/runnel/internal/registry"
	"github.com/runnel-dev/runnel/internal/registry/avro"
	"github.com/runnel-dev/runnel/internal/registry/jsonschema"
	"github.com/runnel-dev/runnel/internal/registry/protobuf"
)

// envRegistry is the environment variable that sets the default of
// --registry.
const envRegistry = "RUNNEL_REGISTRY"

// defaultRegistry is used when neither --registry nor RUNNEL_REGISTRY is
// set: the broker's registry listener (serve --registry-addr).
const defaultRegistry = "http://127.0.0.1:8081"

// wire frames and splits the Confluent wire format: magic byte 0, a 4-byte
// big-endian schema id, then (Protobuf only) the message indexes.
var wire sr.ConfluentHeader

// maxRefDepth bounds nested schema references fetched from the registry.
const maxRefDepth = 32

// addRegistryFlag adds --registry to fs, defaulting to RUNNEL_REGISTRY.
func addRegistryFlag(fs *pflag.FlagSet, dst *string) {
	def := os.Getenv(envRegistry)
	if def == "" {
		def = defaultRegistry
	}
	fs.StringVar(dst, "registry", def, "schema registry URL; env "+envRegistry)
}

// registryURL validates --registry; a bare host:port means http.
func registryURL(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", fmt.Errorf("no schema registry given: set --registry or %s", envRegistry)
	}
	if !strings.Contains(s, "://") {
		s = "http://" + s
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("--registry %q: want a URL such as %s", s, defaultRegistry)
	}
	return strings.TrimSuffix(s, "/"), nil
}

// newRegistryClient returns a schema registry client for the --registry
// value, authenticated as the security flags say.
func newRegistryClient(raw string, sec *securityOptions) (*sr.Client, string, error) {
	u, err := registryURL(raw)
	if err != nil {
		return nil, "", err
	}
	opts, err := sec.registryOpts()
	if err != nil {
		return nil, "", err
	}
	cl, err := sr.NewClient(append(opts,
		sr.URLs(u),
		sr.UserAgent("runnel-cli"),
		sr.LogLevel(sr.LogLevelNone),
	)...)
	if err != nil {
		return nil, "", fmt.Errorf("schema registry client: %w", err)
	}
	return cl, u, nil
}

// registryError is an error answer of the schema registry, rendered as
// "what: error_code: message".
type registryError struct {
	what string
	resp *sr.ResponseError
}

func (e *registryError) Error() string {
	if e.resp.ErrorCode != 0 {
		return fmt.Sprintf("%s: %d: %s", e.what, e.resp.ErrorCode, e.resp.Message)
	}
	body := strings.TrimSpace(string(e.resp.Raw))
	if len(body) > 200 {
		body = body[:200] + "…"
	}
	if body == "" {
		body = http.StatusText(e.resp.StatusCode)
	}
	return fmt.Sprintf("%s: HTTP %d from %s (is --registry a schema registry?): %s", e.what, e.resp.StatusCode, e.resp.URL, body)
}

func (e *registryError) Unwrap() error { return e.resp }

// registryErr turns an error of the registry client into a sentence: a
// registry answer as "what: error_code: message", an unreachable registry
// with a hint. The network error is not wrapped, so the broker hint of
// friendlyErr does not apply to it.
func registryErr(regURL, what string, err error) error {
	if err == nil {
		return nil
	}
	var re *sr.ResponseError
	if errors.As(err, &re) {
		return &registryError{what: what, resp: re}
	}
	if errors.Is(err, context.Canceled) {
		return err
	}
	var opErr *net.OpError
	var dnsErr *net.DNSError
	if errors.Is(err, syscall.ECONNREFUSED) || errors.As(err, &opErr) || errors.As(err, &dnsErr) {
		return fmt.Errorf("%s: cannot reach the schema registry at %s (is a broker running with its registry? set --registry or %s): %v",
			what, regURL, envRegistry, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// isRegistryCode reports whether err is a registry answer with code.
func isRegistryCode(err error, code int) bool {
	var re *sr.ResponseError
	return errors.As(err, &re) && re.ErrorCode == code
}

// schemaCodec encodes JSON documents into the wire format of one schema and
// decodes payloads written with it.
type schemaCodec struct {
	id      int
	subject string // empty when looked up by id
	version int
	typ     sr.SchemaType

	avro  *avro.Schema
	proto *protobuf.Schema
	msg   protoreflect.MessageDescriptor // produce: the message written
	index []int
	json  *jsonschema.Schema
}

// describe names the schema for messages.
func (c *schemaCodec) describe() string {
	if c.subject != "" {
		return fmt.Sprintf("schema %d (subject %q version %d, %s)", c.id, c.subject, c.version, c.typ)
	}
	return fmt.Sprintf("schema %d (%s)", c.id, c.typ)
}

// schemaResolver fetches schemas from the registry and compiles them,
// caching by id (and remembering ids the registry does not know).
type schemaResolver struct {
	cl     *sr.Client
	url    string
	byID   map[int]*schemaCodec
	failed map[int]error
}

func newSchemaResolver(rawURL string, sec *securityOptions) (*schemaResolver, error) {
	cl, u, err := newRegistryClient(rawURL, sec)
	if err != nil {
		return nil, err
	}
	return &schemaResolver{cl: cl, url: u, byID: map[int]*schemaCodec{}, failed: map[int]error{}}, nil
}

// resolveRefs fetches the referenced schemas' text, recursively.
func (r *schemaResolver) resolveRefs(ctx context.Context, refs []sr.SchemaReference, depth int) ([]registry.ResolvedReference, error) {
	if len(refs) == 0 {
		return nil, nil
	}
	if depth > maxRefDepth {
		return nil, fmt.Errorf("schema references nest deeper than %d levels (a cycle?)", maxRefDepth)
	}
	out := make([]registry.ResolvedReference, 0, len(refs))
	for _, ref := range refs {
		ss, err := r.cl.SchemaByVersion(ctx, ref.Subject, ref.Version)
		if err != nil {
			return nil, registryErr(r.url, fmt.Sprintf("fetch reference %q (subject %q version %d)", ref.Name, ref.Subject, ref.Version), err)
		}
		nested, err := r.resolveRefs(ctx, ss.References, depth+1)
		if err != nil {
			return nil, err
		}
		out = append(out, registry.ResolvedReference{Name: ref.Name, Subject: ref.Subject, Version: ref.Version, Schema: ss.Schema.Schema, Refs: nested})
	}
	return out, nil
}

// compile parses a registry schema with its references. message picks the
// Protobuf message to write (full or short name; empty means the first).
func (r *schemaResolver) compile(ctx context.Context, s sr.Schema, message string) (*schemaCodec, error) {
	refs, err := r.resolveRefs(ctx, s.References, 0)
	if err != nil {
		return nil, err
	}
	c := &schemaCodec{typ: s.Type}
	switch s.Type {
	case sr.TypeAvro:
		if message != "" {
			return nil, errors.New("--message applies to Protobuf schemas only")
		}
		if c.avro, err = avro.Parse(s.Schema, refs); err != nil {
			return nil, err
		}
	case sr.TypeProtobuf:
		ps, err := protobuf.New().Parse(s.Schema, refs)
		if err != nil {
			return nil, err
		}
		c.proto = ps.(*protobuf.Schema)
		md, err := pickMessage(c.proto.File(), message)
		if err != nil {
			return nil, err
		}
		if md != nil {
			c.msg = md
			if c.index, err = protobuf.MessageIndexes(c.proto, string(md.FullName())); err != nil {
				return nil, err
			}
		}
	case sr.TypeJSON:
		if message != "" {
			return nil, errors.New("--message applies to Protobuf schemas only")
		}
		js, err := jsonschema.New().Parse(s.Schema, refs)
		if err != nil {
			return nil, err
		}
		c.json = js.(*jsonschema.Schema)
	default:
		return nil, fmt.Errorf("unsupported schema type %s", s.Type)
	}
	return c, nil
}

// pickMessage finds the message named name (full name, or name relative
// to the file's package); empty name means the file's first message. A
// file without messages gives nil and no error (it can only decode).
func pickMessage(fd protoreflect.FileDescriptor, name string) (protoreflect.MessageDescriptor, error) {
	if name == "" {
		if fd.Messages().Len() == 0 {
			return nil, nil
		}
		return fd.Messages().Get(0), nil
	}
	name = strings.TrimPrefix(name, ".")
	var all []string
	var found protoreflect.MessageDescriptor
	var walk func(ms protoreflect.MessageDescriptors)
	walk = func(ms protoreflect.MessageDescriptors) {
		for i := 0; i < ms.Len(); i++ {
			m := ms.Get(i)
			if m.IsMapEntry() {
				continue
			}
			full := string(m.FullName())
			all = append(all, full)
			rel := strings.TrimPrefix(full, string(fd.Package())+".")
			if found == nil && (full == name || rel == name) {
				found = m
			}
			walk(m.Messages())
		}
	}
	walk(fd.Messages())
	if found == nil {
		return nil, fmt.Errorf("--message %q: the schema has no such message (it has: %s)", name, strings.Join(all, ", "))
	}
	return found, nil
}

// forProduce returns the codec for --schema SUBJECT (at version, -1 for
// the latest) or --schema-id id.
func (r *schemaResolver) forProduce(ctx context.Context, subject string, version, id int, message string) (*schemaCodec, error) {
	var (
		s  sr.Schema
		ss sr.SubjectSchema
	)
	if id > 0 {
		got, err := r.cl.SchemaByID(ctx, id)
		if err != nil {
			return nil, registryErr(r.url, fmt.Sprintf("fetch schema id %d", id), err)
		}
		s = got
	} else {
		got, err := r.cl.SchemaByVersion(ctx, subject, version)
		if err != nil {
			return nil, registryErr(r.url, fmt.Sprintf("fetch subject %q version %s", subject, versionText(version)), err)
		}
		ss, s, id = got, got.Schema, got.ID
	}
	c, err := r.compile(ctx, s, message)
	if err != nil {
		return nil, fmt.Errorf("schema id %d: %w", id, err)
	}
	c.id, c.subject, c.version = id, ss.Subject, ss.Version
	if c.typ == sr.TypeProtobuf && c.msg == nil {
		return nil, fmt.Errorf("schema id %d declares no message to write", id)
	}
	return c, nil
}

// forID returns the codec that decodes payloads of schema id, cached.
func (r *schemaResolver) forID(ctx context.Context, id int) (*schemaCodec, error) {
	if c, ok := r.byID[id]; ok {
		return c, nil
	}
	if err, ok := r.failed[id]; ok {
		return nil, err
	}
	s, err := r.cl.SchemaByID(ctx, id)
	if err != nil {
		err = registryErr(r.url, fmt.Sprintf("fetch schema id %d", id), err)
		if isRegistryCode(err, 40403) {
			r.failed[id] = err
		}
		return nil, err
	}
	c, err := r.compile(ctx, s, "")
	if err != nil {
		err = fmt.Errorf("schema id %d: %w", id, err)
		r.failed[id] = err
		return nil, err
	}
	c.id = id
	r.byID[id] = c
	return c, nil
}

func versionText(v int) string {
	if v == -1 {
		return "latest"
	}
	return fmt.Sprint(v)
}

// encode turns one JSON document into the wire format: magic byte, schema
// id, then the payload (Protobuf with its message indexes first).
func (c *schemaCodec) encode(doc []byte) ([]byte, error) {
	out, _ := wire.AppendEncode(nil, c.id, c.index)
	switch c.typ {
	case sr.TypeAvro:
		v, err := decodeJSONDoc(doc)
		if err != nil {
			return nil, err
		}
		payload, err := encodeAvroJSON(c.avro.Avro(), v)
		if err != nil {
			return nil, fmt.Errorf("does not match %s: %w", c.describe(), err)
		}
		return append(out, payload...), nil
	case sr.TypeProtobuf:
		msg := dynamicpb.NewMessage(c.msg)
		if err := protojson.Unmarshal(doc, msg); err != nil {
			return nil, fmt.Errorf("does not match message %s of %s: %v", c.msg.FullName(), c.describe(), err)
		}
		payload, err := proto.Marshal(msg)
		if err != nil {
			return nil, fmt.Errorf("message %s of %s: %v", c.msg.FullName(), c.describe(), err)
		}
		return append(out, payload...), nil
	case sr.TypeJSON:
		var compact bytes.Buffer
		if err := json.Compact(&compact, doc); err != nil {
			return nil, fmt.Errorf("not JSON: %v", err)
		}
		if _, err := c.json.Decode(compact.Bytes()); err != nil {
			return nil, fmt.Errorf("does not match %s: %s", c.describe(), strings.TrimPrefix(err.Error(), registry.ErrInvalidPayload.Error()+": "))
		}
		return append(out, compact.Bytes()...), nil
	}
	return nil, fmt.Errorf("unsupported schema type %s", c.typ)
}

// decode turns a payload (what follows the magic byte and id) into
// compact JSON.
func (c *schemaCodec) decode(payload []byte) ([]byte, error) {
	switch c.typ {
	case sr.TypeAvro:
		v, err := decodeAvroJSON(c.avro, payload)
		if err != nil {
			return nil, err
		}
		return marshalJSON(v)
	case sr.TypeProtobuf:
		msg, err := c.proto.Message(payload)
		if err != nil {
			return nil, err
		}
		js, err := protojson.Marshal(msg.Interface())
		if err != nil {
			return nil, fmt.Errorf("message %s: %v", msg.Descriptor().FullName(), err)
		}
		var compact bytes.Buffer
		if err := json.Compact(&compact, js); err != nil {
			return nil, err
		}
		return compact.Bytes(), nil
	case sr.TypeJSON:
		if _, err := c.json.Decode(payload); err != nil {
			return nil, err
		}
		var compact bytes.Buffer
		if err := json.Compact(&compact, payload); err != nil {
			return nil, err
		}
		return compact.Bytes(), nil
	}
	return nil, fmt.Errorf("unsupported schema type %s", c.typ)
}

// decodeJSONDoc decodes exactly one JSON document, numbers kept as
// json.Number.
func decodeJSONDoc(doc []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("not JSON: %v", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("not JSON: more than one value on the line")
	}
	return v, nil
}

// marshalJSON renders v compactly without HTML escaping.
func marshalJSON(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// This file converts between JSON documents and Avro binary for
// runnel produce/consume --schema. It follows the Avro JSON encoding with
// two conveniences: a union value may be given plainly when exactly one
// branch accepts it (the wrapped form {"branch": value} always works), and
// a record field left out takes its default. Bytes and fixed are strings
// whose code points 0-255 are the bytes, as in Avro JSON. Decoding mirrors
// this: a union value is printed plainly when that would read back as the
// same branch, wrapped otherwise, so what consume prints produce accepts.

// maxAvroDepth bounds nesting in both directions.
const maxAvroDepth = 500

// avroPath renders a value's location for messages.
func avroPath(path []string) string {
	if len(path) == 0 {
		return "the value"
	}
	return "/" + strings.Join(path, "/")
}

// avroEncoder appends the Avro binary of JSON values.
type avroEncoder struct {
	buf  []byte
	path []string
}

// encodeAvroJSON encodes a JSON document (decoded with UseNumber) as Avro
// binary of schema s.
func encodeAvroJSON(s hamba.Schema, v any) ([]byte, error) {
	e := &avroEncoder{}
	if err := e.value(s, v, 0); err != nil {
		return nil, err
	}
	return e.buf, nil
}

func (e *avroEncoder) errorf(format string, args ...any) error {
	return fmt.Errorf("%s: %s", avroPath(e.path), fmt.Sprintf(format, args...))
}

func (e *avroEncoder) value(s hamba.Schema, v any, depth int) error {
	if depth > maxAvroDepth {
		return e.errorf("nested deeper than %d levels", maxAvroDepth)
	}
	if ref, ok := s.(*hamba.RefSchema); ok {
		s = ref.Schema()
	}
	switch s.Type() {
	case hamba.Null:
		if v != nil {
			return e.errorf("want null, got %s", jsonKind(v))
		}
	case hamba.Boolean:
		b, ok := v.(bool)
		if !ok {
			return e.errorf("want a boolean, got %s", jsonKind(v))
		}
		if b {
			e.buf = append(e.buf, 1)
		} else {
			e.buf = append(e.buf, 0)
		}
	case hamba.Int, hamba.Long:
		n, err := jsonInt(v, s.Type() == hamba.Int)
		if err != nil {
			return e.errorf("%v", err)
		}
		e.buf = binary.AppendVarint(e.buf, n)
	case hamba.Float, hamba.Double:
		f, err := jsonFloat(v)
		if err != nil {
			return e.errorf("%v", err)
		}
		if s.Type() == hamba.Float {
			if !math.IsInf(f, 0) && math.Abs(f) > math.MaxFloat32 {
				return e.errorf("%v is out of range for a float", f)
			}
			e.buf = binary.LittleEndian.AppendUint32(e.buf, math.Float32bits(float32(f)))
		} else {
			e.buf = binary.LittleEndian.AppendUint64(e.buf, math.Float64bits(f))
		}
	case hamba.String:
		str, ok := v.(string)
		if !ok {
			return e.errorf("want a string, got %s", jsonKind(v))
		}
		e.buf = binary.AppendVarint(e.buf, int64(len(str)))
		e.buf = append(e.buf, str...)
	case hamba.Bytes:
		b, err := avroBytes(v)
		if err != nil {
			return e.errorf("%v", err)
		}
		e.buf = binary.AppendVarint(e.buf, int64(len(b)))
		e.buf = append(e.buf, b...)
	case hamba.Fixed:
		b, err := avroBytes(v)
		if err != nil {
			return e.errorf("%v", err)
		}
		if size := s.(*hamba.FixedSchema).Size(); len(b) != size {
			return e.errorf("fixed %s takes %d bytes, got %d", s.(*hamba.FixedSchema).FullName(), size, len(b))
		}
		e.buf = append(e.buf, b...)
	case hamba.Enum:
		es := s.(*hamba.EnumSchema)
		sym, ok := v.(string)
		if !ok {
			return e.errorf("want a symbol of enum %s, got %s", es.FullName(), jsonKind(v))
		}
		i := indexOf(es.Symbols(), sym)
		if i < 0 {
			return e.errorf("%q is not a symbol of enum %s (symbols: %s)", sym, es.FullName(), strings.Join(es.Symbols(), ", "))
		}
		e.buf = binary.AppendVarint(e.buf, int64(i))
	case hamba.Array:
		items, ok := v.([]any)
		if !ok {
			return e.errorf("want an array, got %s", jsonKind(v))
		}
		if len(items) > 0 {
			e.buf = binary.AppendVarint(e.buf, int64(len(items)))
			for i, it := range items {
				e.path = append(e.path, strconv.Itoa(i))
				if err := e.value(s.(*hamba.ArraySchema).Items(), it, depth+1); err != nil {
					return err
				}
				e.path = e.path[:len(e.path)-1]
			}
		}
		e.buf = append(e.buf, 0)
	case hamba.Map:
		m, ok := v.(map[string]any)
		if !ok {
			return e.errorf("want an object (Avro map), got %s", jsonKind(v))
		}
		if len(m) > 0 {
			e.buf = binary.AppendVarint(e.buf, int64(len(m)))
			for _, k := range sortedKeys(m) {
				e.buf = binary.AppendVarint(e.buf, int64(len(k)))
				e.buf = append(e.buf, k...)
				e.path = append(e.path, k)
				if err := e.value(s.(*hamba.MapSchema).Values(), m[k], depth+1); err != nil {
					return err
				}
				e.path = e.path[:len(e.path)-1]
			}
		}
		e.buf = append(e.buf, 0)
	case hamba.Record:
		return e.record(s.(*hamba.RecordSchema), v, depth)
	case hamba.Union:
		return e.union(s.(*hamba.UnionSchema), v, depth)
	default:
		return e.errorf("unsupported Avro type %s", s.Type())
	}
	return nil
}

func (e *avroEncoder) record(rs *hamba.RecordSchema, v any, depth int) error {
	m, ok := v.(map[string]any)
	if !ok {
		return e.errorf("want an object (record %s), got %s", rs.FullName(), jsonKind(v))
	}
	known := make(map[string]bool, len(rs.Fields()))
	for _, f := range rs.Fields() {
		known[f.Name()] = true
		fv, present := m[f.Name()]
		e.path = append(e.path, f.Name())
		switch {
		case present:
			if err := e.value(f.Type(), fv, depth+1); err != nil {
				return err
			}
		case f.HasDefault():
			// A union's default is a value of its first branch.
			ft := f.Type()
			if us, ok := ft.(*hamba.UnionSchema); ok {
				e.buf = binary.AppendVarint(e.buf, 0)
				ft = us.Types()[0]
			}
			if err := e.value(ft, defaultJSON(f.Default()), depth+1); err != nil {
				return err
			}
		default:
			return e.errorf("missing (record %s has no default for it)", rs.FullName())
		}
		e.path = e.path[:len(e.path)-1]
	}
	for _, k := range sortedKeys(m) {
		if !known[k] {
			return e.errorf("record %s has no field %q", rs.FullName(), k)
		}
	}
	return nil
}

func (e *avroEncoder) union(us *hamba.UnionSchema, v any, depth int) error {
	types := us.Types()
	// The Avro JSON form: {"branch name": value}.
	if m, ok := v.(map[string]any); ok && len(m) == 1 {
		for name, inner := range m {
			if i := unionBranch(types, name); i >= 0 {
				e.buf = binary.AppendVarint(e.buf, int64(i))
				e.path = append(e.path, name)
				err := e.value(types[i], inner, depth+1)
				e.path = e.path[:len(e.path)-1]
				return err
			}
		}
	}
	var match []int
	for i, t := range types {
		if avroAccepts(t, v, 0) {
			match = append(match, i)
		}
	}
	switch len(match) {
	case 1:
		e.buf = binary.AppendVarint(e.buf, int64(match[0]))
		return e.value(types[match[0]], v, depth+1)
	case 0:
		return e.errorf("%s matches no branch of the union [%s]; give it as {\"branch\": value}", jsonKind(v), branchNames(types))
	}
	names := make([]string, len(match))
	for i, m := range match {
		names[i] = branchName(types[m])
	}
	return e.errorf("%s matches several branches of the union (%s); give it as {\"%s\": value}", jsonKind(v), strings.Join(names, ", "), names[0])
}

// avroAccepts reports whether v could be encoded as s, checking shape
// only as deep as needed to tell union branches apart.
func avroAccepts(s hamba.Schema, v any, depth int) bool {
	if depth > maxAvroDepth {
		return false
	}
	if ref, ok := s.(*hamba.RefSchema); ok {
		s = ref.Schema()
	}
	switch s.Type() {
	case hamba.Null:
		return v == nil
	case hamba.Boolean:
		_, ok := v.(bool)
		return ok
	case hamba.Int, hamba.Long:
		_, err := jsonInt(v, s.Type() == hamba.Int)
		return err == nil
	case hamba.Float, hamba.Double:
		_, err := jsonFloat(v)
		return err == nil
	case hamba.String:
		_, ok := v.(string)
		return ok
	case hamba.Bytes:
		_, err := avroBytes(v)
		return err == nil
	case hamba.Fixed:
		b, err := avroBytes(v)
		return err == nil && len(b) == s.(*hamba.FixedSchema).Size()
	case hamba.Enum:
		sym, ok := v.(string)
		return ok && indexOf(s.(*hamba.EnumSchema).Symbols(), sym) >= 0
	case hamba.Array:
		items, ok := v.([]any)
		if !ok {
			return false
		}
		for _, it := range items {
			if !avroAccepts(s.(*hamba.ArraySchema).Items(), it, depth+1) {
				return false
			}
		}
		return true
	case hamba.Map:
		m, ok := v.(map[string]any)
		if !ok {
			return false
		}
		for _, it := range m {
			if !avroAccepts(s.(*hamba.MapSchema).Values(), it, depth+1) {
				return false
			}
		}
		return true
	case hamba.Record:
		m, ok := v.(map[string]any)
		if !ok {
			return false
		}
		rs := s.(*hamba.RecordSchema)
		known := make(map[string]bool, len(rs.Fields()))
		for _, f := range rs.Fields() {
			known[f.Name()] = true
			fv, present := m[f.Name()]
			if !present {
				if !f.HasDefault() {
					return false
				}
				continue
			}
			if !avroAccepts(f.Type(), fv, depth+1) {
				return false
			}
		}
		for k := range m {
			if !known[k] {
				return false
			}
		}
		return true
	case hamba.Union:
		types := s.(*hamba.UnionSchema).Types()
		if m, ok := v.(map[string]any); ok && len(m) == 1 {
			for name, inner := range m {
				if i := unionBranch(types, name); i >= 0 && avroAccepts(types[i], inner, depth+1) {
					return true
				}
			}
		}
		for _, t := range types {
			if avroAccepts(t, v, depth+1) {
				return true
			}
		}
	}
	return false
}

// branchName is how Avro JSON names a union branch: the full name of a
// named type, the type name otherwise.
func branchName(s hamba.Schema) string {
	if ref, ok := s.(*hamba.RefSchema); ok {
		s = ref.Schema()
	}
	if n, ok := s.(hamba.NamedSchema); ok {
		return n.FullName()
	}
	return string(s.Type())
}

func branchNames(types []hamba.Schema) string {
	names := make([]string, len(types))
	for i, t := range types {
		names[i] = branchName(t)
	}
	return strings.Join(names, ", ")
}

// unionBranch finds a branch by its Avro JSON name (or a named type's
// short name when that is unambiguous).
func unionBranch(types []hamba.Schema, name string) int {
	short := -1
	for i, t := range types {
		bn := branchName(t)
		if bn == name {
			return i
		}
		if j := strings.LastIndexByte(bn, '.'); j >= 0 && bn[j+1:] == name {
			if short >= 0 {
				short = -2
			} else if short == -1 {
				short = i
			}
		}
	}
	if short >= 0 {
		return short
	}
	return -1
}

func indexOf(list []string, s string) int {
	for i, x := range list {
		if x == s {
			return i
		}
	}
	return -1
}

// jsonKind names a JSON value's kind for messages.
func jsonKind(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case bool:
		return "a boolean"
	case json.Number:
		return "the number " + x.String()
	case string:
		if len(x) > 40 {
			x = x[:40] + "…"
		}
		return fmt.Sprintf("the string %q", x)
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%T", v)
}

// jsonInt reads an integral JSON number for an Avro int (32-bit) or long.
func jsonInt(v any, is32 bool) (int64, error) {
	num, ok := v.(json.Number)
	if !ok {
		return 0, fmt.Errorf("want an integer, got %s", jsonKind(v))
	}
	n, err := strconv.ParseInt(num.String(), 10, 64)
	if err != nil {
		f, ferr := strconv.ParseFloat(num.String(), 64)
		if ferr != nil || f != math.Trunc(f) || math.Abs(f) > 1<<53 {
			return 0, fmt.Errorf("want an integer, got %s", num)
		}
		n = int64(f)
	}
	if is32 && (n < math.MinInt32 || n > math.MaxInt32) {
		return 0, fmt.Errorf("%d is out of range for an int (32 bits); use a long", n)
	}
	return n, nil
}

// jsonFloat reads a JSON number, or "NaN", "Infinity" and "-Infinity".
func jsonFloat(v any) (float64, error) {
	switch x := v.(type) {
	case json.Number:
		f, err := strconv.ParseFloat(x.String(), 64)
		if err != nil {
			return 0, fmt.Errorf("%s is not a representable number", x)
		}
		return f, nil
	case string:
		switch x {
		case "NaN":
			return math.NaN(), nil
		case "Infinity":
			return math.Inf(1), nil
		case "-Infinity":
			return math.Inf(-1), nil
		}
	}
	return 0, fmt.Errorf("want a number, got %s", jsonKind(v))
}

// avroBytes reads bytes given as Avro JSON: a string of code points
// 0-255.
func avroBytes(v any) ([]byte, error) {
	s, ok := v.(string)
	if !ok {
		return nil, fmt.Errorf("want bytes as a string of code points \\u0000-\\u00ff, got %s", jsonKind(v))
	}
	b := make([]byte, 0, len(s))
	for _, r := range s {
		if r > 0xff {
			return nil, fmt.Errorf("bytes are a string of code points \\u0000-\\u00ff; %q is not", r)
		}
		b = append(b, byte(r))
	}
	return b, nil
}

// bytesJSON renders bytes as Avro JSON: one code point per byte.
func bytesJSON(b []byte) string {
	var sb strings.Builder
	for _, c := range b {
		sb.WriteRune(rune(c))
	}
	return sb.String()
}

// defaultJSON turns a field default as hamba/avro holds it back into the
// JSON value the schema wrote.
func defaultJSON(v any) any {
	switch x := v.(type) {
	case nil:
		return nil
	case []byte:
		return bytesJSON(x)
	case string, bool:
		return x
	case int:
		return json.Number(strconv.FormatInt(int64(x), 10))
	case int32:
		return json.Number(strconv.FormatInt(int64(x), 10))
	case int64:
		return json.Number(strconv.FormatInt(x, 10))
	case float32:
		return json.Number(strconv.FormatFloat(float64(x), 'g', -1, 32))
	case float64:
		return json.Number(strconv.FormatFloat(x, 'g', -1, 64))
	case []any:
		out := make([]any, len(x))
		for i, it := range x {
			out[i] = defaultJSON(it)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, it := range x {
			out[k] = defaultJSON(it)
		}
		return out
	}
	rv := reflect.ValueOf(v)
	if rv.Kind() == reflect.Array && rv.Type().Elem().Kind() == reflect.Uint8 {
		b := make([]byte, rv.Len())
		reflect.Copy(reflect.ValueOf(b), rv)
		return bytesJSON(b)
	}
	return v
}

// decodeAvroJSON decodes payload, Avro binary of s, into JSON values
// (json.Number for numbers), as produce accepts them. The binary is read by
// the registry's Avro decoder; errors wrap registry.ErrInvalidPayload.
func decodeAvroJSON(s *avro.Schema, payload []byte) (any, error) {
	v, err := s.DecodeBranches(payload)
	if err != nil {
		return nil, err
	}
	return avroJSON(s.Avro(), v), nil
}

// avroJSON renders a value of s, as the registry's decoder returns it with
// its union branches, in the JSON produce accepts. s is what the value was
// decoded with, so the types match; the decoder bounds the depth.
func avroJSON(s hamba.Schema, v any) any {
	if ref, ok := s.(*hamba.RefSchema); ok {
		s = ref.Schema()
	}
	switch s.Type() {
	case hamba.Int, hamba.Long:
		return json.Number(strconv.FormatInt(v.(int64), 10))
	case hamba.Float:
		return floatJSON(v.(float64), 32)
	case hamba.Double:
		return floatJSON(v.(float64), 64)
	case hamba.Bytes, hamba.Fixed:
		return bytesJSON(v.([]byte))
	case hamba.Array:
		items := v.([]any)
		out := make([]any, len(items))
		for i, it := range items {
			out[i] = avroJSON(s.(*hamba.ArraySchema).Items(), it)
		}
		return out
	case hamba.Map:
		m := v.(map[string]any)
		out := make(map[string]any, len(m))
		for k, it := range m {
			out[k] = avroJSON(s.(*hamba.MapSchema).Values(), it)
		}
		return out
	case hamba.Record, hamba.Error:
		m := v.(map[string]any)
		out := make(map[string]any, len(m))
		for _, f := range s.(*hamba.RecordSchema).Fields() {
			out[f.Name()] = avroJSON(f.Type(), m[f.Name()])
		}
		return out
	case hamba.Union:
		b := v.(avro.Branch)
		types := s.(*hamba.UnionSchema).Types()
		inner := avroJSON(types[b.Index], b.Value)
		// Plain when it reads back as this branch, wrapped otherwise.
		var match []int
		for j, t := range types {
			if avroAccepts(t, inner, 0) {
				match = append(match, j)
			}
		}
		if len(match) == 1 && match[0] == b.Index {
			return inner
		}
		return map[string]any{branchName(types[b.Index]): inner}
	}
	// null, boolean, string and enum symbols are JSON as they are.
	return v
}

// floatJSON renders a float as a JSON number, or the strings Avro JSON
// uses for NaN and the infinities.
func floatJSON(f float64, bits int) any {
	switch {
	case math.IsNaN(f):
		return "NaN"
	case math.IsInf(f, 1):
		return "Infinity"
	case math.IsInf(f, -1):
		return "-Infinity"
	}
	s := strconv.FormatFloat(f, 'g', -1, bits)
	return json.Number(s)
}
