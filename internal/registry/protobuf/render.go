package protobuf

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"

	"github.com/bufbuild/protocompile/linker"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
)

// Rendering of a compiled file back to .proto text.
//
// Canonical (normalize=false): syntax or edition, package, imports in
// declared order, file options, then messages, enums, services and
// extensions in declared order. Inside a message: options, fields in
// declared order (a oneof appears where its first field was declared),
// reserved ranges and names, extension ranges, extensions, nested
// messages, nested enums. Every type reference is fully qualified with a
// leading dot, options are written one per statement ordered by field
// number (extensions after standard options), comments and layout are
// gone. Explicit json_name and default are kept as field options.
//
// Normalized (normalize=true) is the same with what does not change the
// schema's meaning put in a stable order: imports sorted, fields (and
// oneofs, at their lowest field number) ordered by number, enum values by
// number then name, options ordered by name, reserved ranges and names
// sorted. Messages, enums and services keep their order: message indexes
// in the wire format refer to it.

const (
	maxFieldNumber = 536870911
	maxEnumNumber  = math.MaxInt32
)

type renderer struct {
	b         strings.Builder
	normalize bool
	editions  bool
	proto2    bool
	res       linker.Resolver
	err       error
}

func render(f linker.File, normalize bool) (string, error) {
	r := &renderer{
		normalize: normalize,
		editions:  f.Syntax() == protoreflect.Editions,
		proto2:    f.Syntax() == protoreflect.Proto2,
		res:       linker.ResolverFromFile(f),
	}
	r.file(f)
	if r.err != nil {
		return "", r.err
	}
	return r.b.String(), nil
}

func (r *renderer) line(depth int, format string, args ...any) {
	r.b.WriteString(strings.Repeat("  ", depth))
	fmt.Fprintf(&r.b, format, args...)
	r.b.WriteByte('\n')
}

func (r *renderer) file(f linker.File) {
	switch f.Syntax() {
	case protoreflect.Editions:
		r.line(0, "edition = %s;", quote(editionName(f)))
	case protoreflect.Proto2:
		r.line(0, "syntax = \"proto2\";")
	default:
		r.line(0, "syntax = \"proto3\";")
	}
	if f.Package() != "" {
		r.line(0, "package %s;", f.Package())
	}
	imports := make([]protoreflect.FileImport, 0, f.Imports().Len())
	for i := 0; i < f.Imports().Len(); i++ {
		imports = append(imports, f.Imports().Get(i))
	}
	if r.normalize {
		sort.SliceStable(imports, func(i, j int) bool { return imports[i].Path() < imports[j].Path() })
	}
	for _, imp := range imports {
		switch {
		case imp.IsPublic:
			r.line(0, "import public %s;", quote(imp.Path()))
		case imp.IsWeak:
			r.line(0, "import weak %s;", quote(imp.Path()))
		default:
			r.line(0, "import %s;", quote(imp.Path()))
		}
	}
	r.options(0, f.Options())
	for i := 0; i < f.Messages().Len(); i++ {
		r.message(0, f.Messages().Get(i))
	}
	for i := 0; i < f.Enums().Len(); i++ {
		r.enum(0, f.Enums().Get(i))
	}
	for i := 0; i < f.Services().Len(); i++ {
		r.service(0, f.Services().Get(i))
	}
	r.extensions(0, f.Extensions())
}

// editionName maps the compiled edition back to its source spelling
// ("2023").
func editionName(f linker.File) string {
	ed := protodesc.ToFileDescriptorProto(f).GetEdition()
	return strings.TrimPrefix(ed.String(), "EDITION_")
}

func (r *renderer) message(depth int, m protoreflect.MessageDescriptor) {
	r.line(depth, "message %s {", m.Name())
	r.messageBody(depth+1, m)
	r.line(depth, "}")
}

func (r *renderer) messageBody(depth int, m protoreflect.MessageDescriptor) {
	r.options(depth, m.Options())

	// Fields, with each real oneof emitted once where its first member
	// falls in the chosen order.
	fields := make([]protoreflect.FieldDescriptor, 0, m.Fields().Len())
	for i := 0; i < m.Fields().Len(); i++ {
		fields = append(fields, m.Fields().Get(i))
	}
	if r.normalize {
		sort.SliceStable(fields, func(i, j int) bool { return fields[i].Number() < fields[j].Number() })
	}
	groups := make(map[protoreflect.FullName]bool) // nested messages rendered inline as groups
	doneOneofs := make(map[protoreflect.FullName]bool)
	for _, fd := range fields {
		if od := fd.ContainingOneof(); od != nil && !od.IsSynthetic() {
			if doneOneofs[od.FullName()] {
				continue
			}
			doneOneofs[od.FullName()] = true
			r.line(depth, "oneof %s {", od.Name())
			r.options(depth+1, od.Options())
			var members []protoreflect.FieldDescriptor
			for _, f2 := range fields {
				if f2.ContainingOneof() == od {
					members = append(members, f2)
				}
			}
			for _, f2 := range members {
				r.field(depth+1, f2, true, groups)
			}
			r.line(depth, "}")
			continue
		}
		r.field(depth, fd, false, groups)
	}

	r.reserved(depth, m.ReservedRanges(), m.ReservedNames())
	for i := 0; i < m.ExtensionRanges().Len(); i++ {
		rg := m.ExtensionRanges().Get(i)
		opts := r.inlineOptions(m.ExtensionRangeOptions(i), nil)
		r.line(depth, "extensions %s%s;", rangeText(int64(rg[0]), int64(rg[1])-1, maxFieldNumber), opts)
	}
	r.extensions(depth, m.Extensions())
	for i := 0; i < m.Messages().Len(); i++ {
		nm := m.Messages().Get(i)
		if nm.IsMapEntry() || groups[nm.FullName()] {
			continue
		}
		r.message(depth, nm)
	}
	for i := 0; i < m.Enums().Len(); i++ {
		r.enum(depth, m.Enums().Get(i))
	}
}

// field renders one field; inOneof drops the label. A proto2 group is
// rendered with its body inline and recorded in groups so its message is
// not rendered twice.
func (r *renderer) field(depth int, fd protoreflect.FieldDescriptor, inOneof bool, groups map[protoreflect.FullName]bool) {
	label := ""
	switch {
	case inOneof:
	case fd.IsMap():
	case fd.Cardinality() == protoreflect.Repeated:
		label = "repeated "
	case r.editions:
	case r.proto2 && fd.Cardinality() == protoreflect.Required:
		label = "required "
	case r.proto2 || fd.HasOptionalKeyword():
		label = "optional "
	}

	var extra []string
	if fd.HasDefault() {
		extra = append(extra, "default = "+r.scalar(fd, fd.Default()))
	}
	if fd.HasJSONName() && !fd.IsExtension() && fd.JSONName() != defaultJSONName(string(fd.Name())) {
		extra = append(extra, "json_name = "+quote(fd.JSONName()))
	}
	opts := r.inlineOptions(fd.Options(), extra)

	if fd.Kind() == protoreflect.GroupKind && !r.editions && fd.Message() != nil && fd.Message().Parent() == fd.Parent() {
		groups[fd.Message().FullName()] = true
		r.line(depth, "%sgroup %s = %d%s {", label, fd.Message().Name(), fd.Number(), opts)
		r.messageBody(depth+1, fd.Message())
		r.line(depth, "}")
		return
	}
	r.line(depth, "%s%s %s = %d%s;", label, typeName(fd), fd.Name(), fd.Number(), opts)
}

// typeName is the field's type as written in .proto, fully qualified for
// named types.
func typeName(fd protoreflect.FieldDescriptor) string {
	if fd.IsMap() {
		return "map<" + typeName(fd.MapKey()) + ", " + typeName(fd.MapValue()) + ">"
	}
	switch fd.Kind() {
	case protoreflect.MessageKind, protoreflect.GroupKind:
		return "." + string(fd.Message().FullName())
	case protoreflect.EnumKind:
		return "." + string(fd.Enum().FullName())
	}
	return fd.Kind().String()
}

// defaultJSONName is protoc's default json_name: lowerCamelCase of the
// field name with underscores removed.
func defaultJSONName(name string) string {
	var b strings.Builder
	upper := false
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c == '_' {
			upper = true
			continue
		}
		if upper && 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		}
		upper = false
		b.WriteByte(c)
	}
	return b.String()
}

func (r *renderer) enum(depth int, e protoreflect.EnumDescriptor) {
	r.line(depth, "enum %s {", e.Name())
	r.options(depth+1, e.Options())
	values := make([]protoreflect.EnumValueDescriptor, 0, e.Values().Len())
	for i := 0; i < e.Values().Len(); i++ {
		values = append(values, e.Values().Get(i))
	}
	if r.normalize {
		sort.SliceStable(values, func(i, j int) bool {
			if values[i].Number() != values[j].Number() {
				return values[i].Number() < values[j].Number()
			}
			return values[i].Name() < values[j].Name()
		})
	}
	for _, v := range values {
		r.line(depth+1, "%s = %d%s;", v.Name(), v.Number(), r.inlineOptions(v.Options(), nil))
	}
	// Enum reserved ranges are inclusive; convert to the half-open form
	// the shared helper takes.
	var rr [][2]int64
	for i := 0; i < e.ReservedRanges().Len(); i++ {
		g := e.ReservedRanges().Get(i)
		rr = append(rr, [2]int64{int64(g[0]), int64(g[1]) + 1})
	}
	r.reservedRanges(depth+1, rr, e.ReservedNames(), maxEnumNumber)
	r.line(depth, "}")
}

func (r *renderer) service(depth int, s protoreflect.ServiceDescriptor) {
	r.line(depth, "service %s {", s.Name())
	r.options(depth+1, s.Options())
	for i := 0; i < s.Methods().Len(); i++ {
		m := s.Methods().Get(i)
		in, out := "."+string(m.Input().FullName()), "."+string(m.Output().FullName())
		if m.IsStreamingClient() {
			in = "stream " + in
		}
		if m.IsStreamingServer() {
			out = "stream " + out
		}
		var opts strings.Builder
		sub := &renderer{normalize: r.normalize, editions: r.editions, proto2: r.proto2, res: r.res}
		sub.options(depth+2, m.Options())
		if sub.err != nil && r.err == nil {
			r.err = sub.err
		}
		opts.WriteString(sub.b.String())
		if opts.Len() == 0 {
			r.line(depth+1, "rpc %s(%s) returns (%s);", m.Name(), in, out)
			continue
		}
		r.line(depth+1, "rpc %s(%s) returns (%s) {", m.Name(), in, out)
		r.b.WriteString(opts.String())
		r.line(depth+1, "}")
	}
	r.line(depth, "}")
}

// extensions renders each extension in its own extend block, in declared
// order (or by extendee and number when normalizing).
func (r *renderer) extensions(depth int, xs protoreflect.ExtensionDescriptors) {
	list := make([]protoreflect.ExtensionDescriptor, 0, xs.Len())
	for i := 0; i < xs.Len(); i++ {
		list = append(list, xs.Get(i))
	}
	if r.normalize {
		sort.SliceStable(list, func(i, j int) bool {
			a, b := list[i].ContainingMessage().FullName(), list[j].ContainingMessage().FullName()
			if a != b {
				return a < b
			}
			return list[i].Number() < list[j].Number()
		})
	}
	for _, x := range list {
		r.line(depth, "extend .%s {", x.ContainingMessage().FullName())
		r.field(depth+1, x, false, map[protoreflect.FullName]bool{})
		r.line(depth, "}")
	}
}

// reserved renders reserved ranges given as half-open protoreflect ranges.
func (r *renderer) reserved(depth int, ranges protoreflect.FieldRanges, names protoreflect.Names) {
	var rr [][2]int64
	for i := 0; i < ranges.Len(); i++ {
		g := ranges.Get(i)
		rr = append(rr, [2]int64{int64(g[0]), int64(g[1])})
	}
	r.reservedRanges(depth, rr, names, maxFieldNumber)
}

func (r *renderer) reservedRanges(depth int, rr [][2]int64, names protoreflect.Names, max int64) {
	if r.normalize {
		sort.Slice(rr, func(i, j int) bool { return rr[i][0] < rr[j][0] })
	}
	if len(rr) > 0 {
		parts := make([]string, len(rr))
		for i, g := range rr {
			parts[i] = rangeText(g[0], g[1]-1, max)
		}
		r.line(depth, "reserved %s;", strings.Join(parts, ", "))
	}
	if names.Len() > 0 {
		ns := make([]string, names.Len())
		for i := range ns {
			ns[i] = string(names.Get(i))
		}
		if r.normalize {
			sort.Strings(ns)
		}
		for i, n := range ns {
			if !r.editions {
				ns[i] = quote(n)
			}
		}
		r.line(depth, "reserved %s;", strings.Join(ns, ", "))
	}
}

// rangeText renders an inclusive range.
func rangeText(start, end, max int64) string {
	switch {
	case start == end:
		return strconv.FormatInt(start, 10)
	case end == max:
		return strconv.FormatInt(start, 10) + " to max"
	}
	return strconv.FormatInt(start, 10) + " to " + strconv.FormatInt(end, 10)
}

// optionField is one set option: its rendered name, number and value.
type optionField struct {
	name   string
	number protoreflect.FieldNumber
	ext    bool
	fd     protoreflect.FieldDescriptor
	v      protoreflect.Value
}

// optionFields re-reads an options message with the file's extensions
// known, so custom options render by name, and returns the set fields in
// the renderer's order.
func (r *renderer) optionFields(opts proto.Message) []optionField {
	if opts == nil || !opts.ProtoReflect().IsValid() {
		return nil
	}
	raw, err := proto.MarshalOptions{Deterministic: true}.Marshal(opts)
	if err != nil {
		r.fail(fmt.Errorf("options: %v", err))
		return nil
	}
	if len(raw) == 0 {
		return nil
	}
	m := opts.ProtoReflect().New()
	if err := (proto.UnmarshalOptions{Resolver: extensionResolver{r.res}}).Unmarshal(raw, m.Interface()); err != nil {
		r.fail(fmt.Errorf("options: %v", err))
		return nil
	}
	var out []optionField
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		name := string(fd.Name())
		if fd.IsExtension() {
			name = "(" + string(fd.FullName()) + ")"
		}
		out = append(out, optionField{name: name, number: fd.Number(), ext: fd.IsExtension(), fd: fd, v: v})
		return true
	})
	sort.Slice(out, func(i, j int) bool {
		if r.normalize {
			return out[i].name < out[j].name
		}
		if out[i].ext != out[j].ext {
			return !out[i].ext
		}
		return out[i].number < out[j].number
	})
	return out
}

func (r *renderer) fail(err error) {
	if r.err == nil {
		r.err = err
	}
}

// options renders options as statements.
func (r *renderer) options(depth int, opts proto.Message) {
	for _, o := range r.optionFields(opts) {
		if o.fd.IsList() {
			l := o.v.List()
			for i := 0; i < l.Len(); i++ {
				r.line(depth, "option %s = %s;", o.name, r.value(o.fd, l.Get(i)))
			}
			continue
		}
		r.line(depth, "option %s = %s;", o.name, r.value(o.fd, o.v))
	}
}

// inlineOptions renders options in brackets after a field or enum value,
// with extra pseudo-options (default, json_name) first.
func (r *renderer) inlineOptions(opts proto.Message, extra []string) string {
	parts := append([]string(nil), extra...)
	for _, o := range r.optionFields(opts) {
		if o.fd.IsList() {
			l := o.v.List()
			for i := 0; i < l.Len(); i++ {
				parts = append(parts, o.name+" = "+r.value(o.fd, l.Get(i)))
			}
			continue
		}
		parts = append(parts, o.name+" = "+r.value(o.fd, o.v))
	}
	if r.normalize {
		sort.Strings(parts)
	}
	if len(parts) == 0 {
		return ""
	}
	return " [" + strings.Join(parts, ", ") + "]"
}

// value renders one (non-list) option value.
func (r *renderer) value(fd protoreflect.FieldDescriptor, v protoreflect.Value) string {
	if fd.Kind() == protoreflect.MessageKind || fd.Kind() == protoreflect.GroupKind {
		return r.aggregate(v.Message())
	}
	return r.scalar(fd, v)
}

// aggregate renders a message value in text-format braces with fields in
// number order (name order when normalizing).
func (r *renderer) aggregate(m protoreflect.Message) string {
	type entry struct {
		name string
		num  protoreflect.FieldNumber
		text string
	}
	var es []entry
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		name := string(fd.Name())
		if fd.IsExtension() {
			name = "[" + string(fd.FullName()) + "]"
		} else if fd.Kind() == protoreflect.GroupKind {
			name = string(fd.Message().Name())
		}
		var text string
		switch {
		case fd.IsMap():
			keys := make([]protoreflect.MapKey, 0, v.Map().Len())
			v.Map().Range(func(k protoreflect.MapKey, _ protoreflect.Value) bool {
				keys = append(keys, k)
				return true
			})
			sort.Slice(keys, func(i, j int) bool { return mapKeyLess(keys[i], keys[j]) })
			items := make([]string, len(keys))
			for i, k := range keys {
				items[i] = "{ key: " + r.scalar(fd.MapKey(), k.Value()) + " value: " + r.value(fd.MapValue(), v.Map().Get(k)) + " }"
			}
			text = "[" + strings.Join(items, ", ") + "]"
		case fd.IsList():
			items := make([]string, v.List().Len())
			for i := range items {
				items[i] = r.value(fd, v.List().Get(i))
			}
			text = "[" + strings.Join(items, ", ") + "]"
		default:
			text = r.value(fd, v)
		}
		es = append(es, entry{name: name, num: fd.Number(), text: text})
		return true
	})
	sort.Slice(es, func(i, j int) bool {
		if r.normalize {
			return es[i].name < es[j].name
		}
		return es[i].num < es[j].num
	})
	if len(es) == 0 {
		return "{}"
	}
	parts := make([]string, len(es))
	for i, e := range es {
		parts[i] = e.name + ": " + e.text
	}
	return "{ " + strings.Join(parts, " ") + " }"
}

func mapKeyLess(a, b protoreflect.MapKey) bool {
	switch x := a.Interface().(type) {
	case bool:
		return !x && b.Bool()
	case int32, int64:
		return a.Int() < b.Int()
	case uint32, uint64:
		return a.Uint() < b.Uint()
	}
	return a.String() < b.String()
}

// scalar renders a scalar or enum value as a .proto literal.
func (r *renderer) scalar(fd protoreflect.FieldDescriptor, v protoreflect.Value) string {
	switch fd.Kind() {
	case protoreflect.BoolKind:
		return strconv.FormatBool(v.Bool())
	case protoreflect.EnumKind:
		if ev := fd.Enum().Values().ByNumber(v.Enum()); ev != nil {
			return string(ev.Name())
		}
		return strconv.FormatInt(int64(v.Enum()), 10)
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind,
		protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		return strconv.FormatInt(v.Int(), 10)
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind, protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		return strconv.FormatUint(v.Uint(), 10)
	case protoreflect.FloatKind:
		return floatText(v.Float(), 32)
	case protoreflect.DoubleKind:
		return floatText(v.Float(), 64)
	case protoreflect.StringKind:
		return quote(v.String())
	case protoreflect.BytesKind:
		return quote(string(v.Bytes()))
	}
	r.fail(fmt.Errorf("cannot render a %s value", fd.Kind()))
	return ""
}

func floatText(f float64, bits int) string {
	switch {
	case math.IsInf(f, 1):
		return "inf"
	case math.IsInf(f, -1):
		return "-inf"
	case math.IsNaN(f):
		return "nan"
	}
	return strconv.FormatFloat(f, 'g', -1, bits)
}

// quote renders s as a .proto string literal: printable ASCII as is, the
// usual C escapes, every other byte as a three-digit octal escape.
func quote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch c {
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		case '"':
			b.WriteString(`\"`)
		case '\'':
			b.WriteString(`\'`)
		case '\\':
			b.WriteString(`\\`)
		default:
			if c >= 0x20 && c < 0x7f {
				b.WriteByte(c)
			} else {
				fmt.Fprintf(&b, `\%03o`, c)
			}
		}
	}
	b.WriteByte('"')
	return b.String()
}

// extensionResolver adapts the linker's resolver to what proto.Unmarshal
// needs to recognise custom options.
type extensionResolver struct{ r linker.Resolver }

func (e extensionResolver) FindExtensionByName(field protoreflect.FullName) (protoreflect.ExtensionType, error) {
	return e.r.FindExtensionByName(field)
}

func (e extensionResolver) FindExtensionByNumber(message protoreflect.FullName, field protoreflect.FieldNumber) (protoreflect.ExtensionType, error) {
	return e.r.FindExtensionByNumber(message, field)
}

var _ protoregistry.ExtensionTypeResolver = extensionResolver{}
