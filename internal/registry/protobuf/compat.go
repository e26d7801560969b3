package protobuf

import (
	"fmt"
	"sort"
	"strings"

	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/runnel-dev/runnel/internal/registry"
)

// Compatibility follows Confluent's Protobuf rules. The checker compares
// the writer's schema (the data) with the reader's; CanRead(new, old) is
// BACKWARD, CanRead(old, new) FORWARD.
//
// Messages are matched by their name inside their file's package (so a
// package rename alone is compatible, as in Confluent: the package is not
// on the wire) and fields by number. Incompatible, each reported as
// "CODE at message .pkg.Msg field N: detail":
//
//	MESSAGE_REMOVED                a writer message is missing from the reader
//	                               under its name; when it went elsewhere (the
//	                               reader has a new message of the same simple
//	                               name under another parent, or a new name at the
//	                               same message index path) the detail names both
//	                               places and index paths, and the two messages
//	                               are compared field by field too. Confluent
//	                               reports these as MESSAGE_REMOVED as well: its
//	                               MESSAGE_MOVED is a compatible change.
//	FIELD_KIND_CHANGED             scalar vs enum vs message vs group vs map
//	FIELD_TYPE_CHANGED             scalars outside one wire-compatible group:
//	                               {int32 uint32 int64 uint64 bool} {sint32 sint64}
//	                               {fixed32 sfixed32} {fixed64 sfixed64} {string bytes}
//	                               {float} {double}
//	FIELD_NAMED_TYPE_CHANGED       a message or enum field names another type
//	FIELD_NUMERIC_LABEL_CHANGED    singular <-> repeated for a numeric or enum field
//	REQUIRED_FIELD_ADDED/REMOVED   proto2 required fields (also a label change to/from required)
//	ONEOF_FIELD_REMOVED            a field dropped from a oneof that still exists
//	FIELD_MOVED_TO_EXISTING_ONEOF  a field joins a oneof that already had members
//	MULTIPLE_FIELDS_MOVED_TO_ONEOF several existing fields join one new oneof
//	FIELD_MOVED_OUT_OF_ONEOF       a oneof member becomes a plain field (except
//	                               when its oneof had no other member and is gone:
//	                               the mirror of the single-field case below)
//
// Compatible (not reported): messages, enums, fields and oneofs added;
// messages reordered, so that a message keeps its name but not its index
// path (Confluent's MESSAGE_MOVED for a message found under its name is
// one of its compatible changes: a payload's indexes are resolved against
// the schema that wrote it); fields removed (reserving their numbers is
// good practice but Confluent does not require it, and neither do we: only
// what is on the wire counts); field renames; a single existing field moved into a new oneof;
// singular <-> repeated for string, bytes and message fields; any enum
// change (values added, removed or renumbered: proto3 enums are open and
// proto2 keeps unknown values as unknown fields); package and syntax
// changes (proto2 <-> proto3 is not on the wire; the required-field rules
// catch what matters).

// CanRead reports what stops reader from reading data written with
// writer; nil means compatible. Both must be schemas of this package.
func (Format) CanRead(reader, writer registry.Schema) []string {
	return canRead(reader, writer)
}

// CanRead is Format.CanRead, for callers holding a schema.
func (*Schema) CanRead(reader, writer registry.Schema) []string {
	return canRead(reader, writer)
}

func canRead(reader, writer registry.Schema) []string {
	r, ok1 := reader.(*Schema)
	w, ok2 := writer.(*Schema)
	if !ok1 || !ok2 {
		return []string{fmt.Sprintf("SCHEMA_TYPE_CHANGED: cannot compare %s with %s", schemaType(reader), schemaType(writer))}
	}
	c := checker{r: r, w: w}
	c.run()
	return c.out
}

func schemaType(s registry.Schema) string {
	if _, ok := s.(*Schema); ok {
		return TypeName
	}
	return fmt.Sprintf("a %T schema", s)
}

type checker struct {
	r, w *Schema
	out  []string
}

func (c *checker) report(code, where, detail string) {
	c.out = append(c.out, fmt.Sprintf("%s at %s: %s", code, where, detail))
}

// localName is a full name without its file's package.
func localName(s *Schema, full protoreflect.FullName) string {
	pkg := string(s.file.Package())
	if pkg != "" && strings.HasPrefix(string(full), pkg+".") {
		return string(full)[len(pkg)+1:]
	}
	return string(full)
}

func (c *checker) run() {
	readerMsgs := make(map[string]protoreflect.MessageDescriptor, len(c.r.messages))
	for _, m := range c.r.messages {
		readerMsgs[localName(c.r, m.FullName())] = m
	}
	writerMsgs := make(map[string]bool, len(c.w.messages))
	for _, m := range c.w.messages {
		writerMsgs[localName(c.w, m.FullName())] = true
	}
	for _, wm := range c.w.messageOrder() {
		where := "message ." + string(wm.FullName())
		name := localName(c.w, wm.FullName())
		// The same name at another index path (messages reordered, or an
		// enclosing message moved) is compatible, as in Confluent, where
		// MESSAGE_MOVED of a message that keeps its name is a compatible
		// change: a payload's message indexes are resolved against the
		// schema it was written with.
		if rm, ok := readerMsgs[name]; ok {
			c.message(where, rm, wm)
			continue
		}
		if rm, detail := c.moved(wm, readerMsgs, writerMsgs); rm != nil {
			c.report("MESSAGE_REMOVED", where, detail)
			c.message(where, rm, wm)
			continue
		}
		c.report("MESSAGE_REMOVED", where, "the reader has no message "+name)
	}
}

// moved finds where a writer message the reader has no message of its
// name went: the one message of the same simple name under another parent
// that the writer does not have (moved into or out of a message), else a
// message of a new name at the same index path (renamed, or replaced by a
// new message at the place the wire format's message indexes point to).
// It returns nil when neither is found: the message was removed.
func (c *checker) moved(wm protoreflect.MessageDescriptor, readerMsgs map[string]protoreflect.MessageDescriptor, writerMsgs map[string]bool) (protoreflect.MessageDescriptor, string) {
	var same []protoreflect.MessageDescriptor
	for _, rm := range c.r.messageOrder() {
		if rm.Name() == wm.Name() && !writerMsgs[localName(c.r, rm.FullName())] {
			same = append(same, rm)
		}
	}
	// Both sides must be unambiguous: one new reader message of the name,
	// and one writer message of the name that the reader lacks.
	gone := 0
	for _, m := range c.w.messageOrder() {
		if _, ok := readerMsgs[localName(c.w, m.FullName())]; !ok && m.Name() == wm.Name() {
			gone++
		}
	}
	if len(same) == 1 && gone == 1 {
		rm := same[0]
		return rm, fmt.Sprintf("message %s moved from .%s (message index %v) to .%s (message index %v)",
			wm.Name(), wm.FullName(), indexPath(wm), rm.FullName(), indexPath(rm))
	}
	path := indexPath(wm)
	rm, err := c.r.messageAt(path)
	if err != nil || rm.IsMapEntry() || writerMsgs[localName(c.r, rm.FullName())] {
		return nil, ""
	}
	return rm, fmt.Sprintf("message index %v selects .%s in the writer and .%s in the reader, which has no message %s (renamed or moved)",
		path, wm.FullName(), rm.FullName(), localName(c.w, wm.FullName()))
}

// indexPath is a message's path of indexes in the wire format: its index
// among its file's top-level messages, then among each enclosing message's
// nested messages.
func indexPath(md protoreflect.MessageDescriptor) []int {
	var path []int
	for d := protoreflect.Descriptor(md); d != nil; d = d.Parent() {
		if _, ok := d.(protoreflect.MessageDescriptor); !ok {
			break
		}
		path = append([]int{d.Index()}, path...)
	}
	return path
}

// messageOrder lists the schema's messages in declaration order (depth
// first), so reports come out in a stable order.
func (s *Schema) messageOrder() []protoreflect.MessageDescriptor {
	var out []protoreflect.MessageDescriptor
	var walk func(ms protoreflect.MessageDescriptors)
	walk = func(ms protoreflect.MessageDescriptors) {
		for i := 0; i < ms.Len(); i++ {
			m := ms.Get(i)
			if m.IsMapEntry() {
				continue
			}
			out = append(out, m)
			walk(m.Messages())
		}
	}
	walk(s.file.Messages())
	return out
}

func realOneof(fd protoreflect.FieldDescriptor) protoreflect.OneofDescriptor {
	if od := fd.ContainingOneof(); od != nil && !od.IsSynthetic() {
		return od
	}
	return nil
}

func (c *checker) message(where string, rm, wm protoreflect.MessageDescriptor) {
	// Writer fields: removed, or compared with the reader's field.
	for i := 0; i < wm.Fields().Len(); i++ {
		wf := wm.Fields().Get(i)
		fwhere := fmt.Sprintf("%s field %d", where, wf.Number())
		rf := rm.Fields().ByNumber(wf.Number())
		if rf == nil {
			switch {
			case wf.Cardinality() == protoreflect.Required:
				c.report("REQUIRED_FIELD_REMOVED", fwhere, fmt.Sprintf("required field %s is not in the reader", wf.Name()))
			case realOneof(wf) != nil && rm.Oneofs().ByName(realOneof(wf).Name()) != nil:
				c.report("ONEOF_FIELD_REMOVED", fwhere, fmt.Sprintf("field %s was removed from oneof %s", wf.Name(), realOneof(wf).Name()))
			}
			continue
		}
		c.field(fwhere, rf, wf)
	}
	// Reader fields the writer never had.
	for i := 0; i < rm.Fields().Len(); i++ {
		rf := rm.Fields().Get(i)
		if wm.Fields().ByNumber(rf.Number()) == nil && rf.Cardinality() == protoreflect.Required {
			c.report("REQUIRED_FIELD_ADDED", fmt.Sprintf("%s field %d", where, rf.Number()),
				fmt.Sprintf("the reader requires field %s, which the writer does not have", rf.Name()))
		}
	}
	c.oneofs(where, rm, wm)
}

// field compares one field present in both.
func (c *checker) field(where string, rf, wf protoreflect.FieldDescriptor) {
	if rf.Cardinality() == protoreflect.Required && wf.Cardinality() != protoreflect.Required {
		c.report("REQUIRED_FIELD_ADDED", where, fmt.Sprintf("field %s is required in the reader but not in the writer", rf.Name()))
	}
	if wf.Cardinality() == protoreflect.Required && rf.Cardinality() != protoreflect.Required {
		c.report("REQUIRED_FIELD_REMOVED", where, fmt.Sprintf("field %s is required in the writer but not in the reader", wf.Name()))
	}
	if !c.fieldType(where, rf, wf) {
		return
	}
	if !rf.IsMap() && rf.IsList() != wf.IsList() && isNumeric(rf.Kind()) {
		c.report("FIELD_NUMERIC_LABEL_CHANGED", where, fmt.Sprintf("%s -> %s", labelName(wf), labelName(rf)))
	}
}

// fieldType compares the types of two fields; it returns false when the
// kinds differ so no further checks pile up on the same field.
func (c *checker) fieldType(where string, rf, wf protoreflect.FieldDescriptor) bool {
	rk, wk := kindClass(rf), kindClass(wf)
	if rk != wk {
		c.report("FIELD_KIND_CHANGED", where, fmt.Sprintf("%s -> %s", c.describe(c.w, wf), c.describe(c.r, rf)))
		return false
	}
	switch rk {
	case "map":
		ok := c.fieldType(where+" key", rf.MapKey(), wf.MapKey())
		return c.fieldType(where+" value", rf.MapValue(), wf.MapValue()) && ok
	case "message", "group":
		if localName(c.r, rf.Message().FullName()) != localName(c.w, wf.Message().FullName()) {
			c.report("FIELD_NAMED_TYPE_CHANGED", where, fmt.Sprintf(".%s -> .%s", wf.Message().FullName(), rf.Message().FullName()))
		}
	case "enum":
		if localName(c.r, rf.Enum().FullName()) != localName(c.w, wf.Enum().FullName()) {
			c.report("FIELD_NAMED_TYPE_CHANGED", where, fmt.Sprintf(".%s -> .%s", wf.Enum().FullName(), rf.Enum().FullName()))
		}
	default:
		if scalarGroup(rf.Kind()) != scalarGroup(wf.Kind()) {
			c.report("FIELD_TYPE_CHANGED", where, fmt.Sprintf("%s -> %s", wf.Kind(), rf.Kind()))
		}
	}
	return true
}

func (c *checker) describe(s *Schema, fd protoreflect.FieldDescriptor) string {
	switch kindClass(fd) {
	case "map":
		return "map<" + fd.MapKey().Kind().String() + ", " + c.describe(s, fd.MapValue()) + ">"
	case "message":
		return "message ." + string(fd.Message().FullName())
	case "group":
		return "group ." + string(fd.Message().FullName())
	case "enum":
		return "enum ." + string(fd.Enum().FullName())
	}
	return fd.Kind().String()
}

func kindClass(fd protoreflect.FieldDescriptor) string {
	if fd.IsMap() {
		return "map"
	}
	switch fd.Kind() {
	case protoreflect.MessageKind:
		return "message"
	case protoreflect.GroupKind:
		return "group"
	case protoreflect.EnumKind:
		return "enum"
	}
	return "scalar"
}

// scalarGroup names the set of scalar kinds that share a wire encoding and
// can be read as one another.
func scalarGroup(k protoreflect.Kind) string {
	switch k {
	case protoreflect.Int32Kind, protoreflect.Uint32Kind, protoreflect.Int64Kind, protoreflect.Uint64Kind, protoreflect.BoolKind:
		return "varint"
	case protoreflect.Sint32Kind, protoreflect.Sint64Kind:
		return "zigzag"
	case protoreflect.Fixed32Kind, protoreflect.Sfixed32Kind:
		return "fixed32"
	case protoreflect.Fixed64Kind, protoreflect.Sfixed64Kind:
		return "fixed64"
	case protoreflect.StringKind, protoreflect.BytesKind:
		return "length-delimited"
	}
	return k.String()
}

func isNumeric(k protoreflect.Kind) bool {
	switch k {
	case protoreflect.StringKind, protoreflect.BytesKind, protoreflect.MessageKind, protoreflect.GroupKind:
		return false
	}
	return true
}

func labelName(fd protoreflect.FieldDescriptor) string {
	switch {
	case fd.IsList():
		return "repeated"
	case fd.Cardinality() == protoreflect.Required:
		return "required"
	}
	return "singular"
}

// oneofs checks fields moving into, out of and between oneofs.
func (c *checker) oneofs(where string, rm, wm protoreflect.MessageDescriptor) {
	for i := 0; i < rm.Oneofs().Len(); i++ {
		ro := rm.Oneofs().Get(i)
		if ro.IsSynthetic() {
			continue
		}
		var movedIn []protoreflect.FieldDescriptor
		fromOneofs := make(map[protoreflect.Name]bool)
		for j := 0; j < ro.Fields().Len(); j++ {
			rf := ro.Fields().Get(j)
			wf := wm.Fields().ByNumber(rf.Number())
			if wf == nil {
				continue
			}
			if wo := realOneof(wf); wo != nil {
				fromOneofs[wo.Name()] = true
			} else {
				movedIn = append(movedIn, rf)
			}
		}
		existed := wm.Oneofs().ByName(ro.Name()) != nil && !wm.Oneofs().ByName(ro.Name()).IsSynthetic()
		switch {
		case len(movedIn) > 0 && (existed || len(fromOneofs) > 0):
			for _, rf := range movedIn {
				c.report("FIELD_MOVED_TO_EXISTING_ONEOF", fmt.Sprintf("%s field %d", where, rf.Number()),
					fmt.Sprintf("field %s joined oneof %s, which already had members", rf.Name(), ro.Name()))
			}
		case len(movedIn) > 1:
			names := make([]string, len(movedIn))
			for k, rf := range movedIn {
				names[k] = fmt.Sprintf("%s (%d)", rf.Name(), rf.Number())
			}
			c.report("MULTIPLE_FIELDS_MOVED_TO_ONEOF", where+" oneof "+string(ro.Name()),
				"existing fields "+strings.Join(names, ", ")+" were moved into one oneof")
		}
		if len(fromOneofs) > 1 {
			names := make([]string, 0, len(fromOneofs))
			for n := range fromOneofs {
				names = append(names, string(n))
			}
			sort.Strings(names)
			c.report("FIELD_MOVED_TO_EXISTING_ONEOF", where+" oneof "+string(ro.Name()),
				"members of oneofs "+strings.Join(names, ", ")+" were merged into one oneof")
		}
	}
	for i := 0; i < wm.Fields().Len(); i++ {
		wf := wm.Fields().Get(i)
		wo := realOneof(wf)
		if wo == nil {
			continue
		}
		// The mirror of a single field moved into a new oneof: a oneof of
		// one member that the reader no longer has.
		if wo.Fields().Len() == 1 && rm.Oneofs().ByName(wo.Name()) == nil {
			continue
		}
		if rf := rm.Fields().ByNumber(wf.Number()); rf != nil && realOneof(rf) == nil {
			c.report("FIELD_MOVED_OUT_OF_ONEOF", fmt.Sprintf("%s field %d", where, wf.Number()),
				fmt.Sprintf("field %s left oneof %s", rf.Name(), wo.Name()))
		}
	}
}
