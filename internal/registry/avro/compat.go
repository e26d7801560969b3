package avro

import (
	"fmt"
	"slices"
	"strings"

	hamba "github.com/hamba/avro/v2"

	"github.com/runnel-dev/runnel/internal/registry"
)

// Kinds of incompatibility, named as Confluent's Avro checker names them;
// every message CanRead returns starts with one of them.
const (
	ReaderFieldMissingDefault = "READER_FIELD_MISSING_DEFAULT_VALUE"
	TypeMismatch              = "TYPE_MISMATCH"
	NameMismatch              = "NAME_MISMATCH"
	FixedSizeMismatch         = "FIXED_SIZE_MISMATCH"
	MissingEnumSymbols        = "MISSING_ENUM_SYMBOLS"
	MissingUnionBranch        = "MISSING_UNION_BRANCH"
)

// CanRead reports whether data written with writer can be read with reader
// under the Avro specification's schema resolution rules:
//   - record fields match by name, or by one of the reader field's
//     aliases; a reader field the writer lacks needs a default; writer
//     fields the reader lacks are skipped;
//   - promotions: int to long, float or double; long to float or double;
//     float to double; string to bytes and bytes to string;
//   - enums: every writer symbol is a reader symbol, unless the reader
//     enum has a default symbol;
//   - unions: every branch of a writer union must be readable by the
//     reader (by some branch when the reader is a union too); a non-union
//     writer needs a reader union branch that matches it (the same type or
//     name first, then one it promotes to);
//   - arrays and maps: their items or values, recursively;
//   - named types (record, enum, fixed): unqualified names equal, or the
//     writer's full name among the reader's aliases; fixed sizes equal;
//   - logical types are ignored: only the underlying types are compared,
//     as the specification resolves them.
//
// Each message is "KIND at PATH: what", PATH being a JSON pointer into the
// reader schema (e.g. /fields/2/type/items). A reader or writer that is not
// an Avro schema of this package is reported as a TYPE_MISMATCH.
func (Format) CanRead(reader, writer registry.Schema) []string {
	r, ok := reader.(*Schema)
	if !ok {
		return []string{fmt.Sprintf("%s at /: reader schema is not an Avro schema (%T)", TypeMismatch, reader)}
	}
	w, ok := writer.(*Schema)
	if !ok {
		return []string{fmt.Sprintf("%s at /: writer schema is not an Avro schema (%T)", TypeMismatch, writer)}
	}
	c := &checker{visiting: map[[2]string]bool{}}
	c.check(r.parsed, w.parsed, "")
	return c.msgs
}

// CanRead is Format.CanRead; the receiver plays no part, it is here so the
// schemas a Format returns implement registry.Compatibility themselves.
func (*Schema) CanRead(reader, writer registry.Schema) []string {
	return Format{}.CanRead(reader, writer)
}

type checker struct {
	msgs []string
	// visiting holds the (reader, writer) named type pairs being checked,
	// so recursive types end.
	visiting map[[2]string]bool
}

func (c *checker) add(kind, path, format string, args ...any) {
	c.msgs = append(c.msgs, fmt.Sprintf("%s at %s: %s", kind, at(path), fmt.Sprintf(format, args...)))
}

func deref(s hamba.Schema) hamba.Schema {
	if ref, ok := s.(*hamba.RefSchema); ok {
		return ref.Schema()
	}
	return s
}

// describeType names a schema for messages: its full name for named
// types, else its type.
func describeType(s hamba.Schema) string {
	s = deref(s)
	if n, ok := s.(hamba.NamedSchema); ok {
		return fmt.Sprintf("%s %q", s.Type(), n.FullName())
	}
	if u, ok := s.(*hamba.UnionSchema); ok {
		parts := make([]string, 0, len(u.Types()))
		for _, t := range u.Types() {
			parts = append(parts, describeType(t))
		}
		return "union [" + strings.Join(parts, ", ") + "]"
	}
	return string(s.Type())
}

func (c *checker) check(reader, writer hamba.Schema, path string) {
	reader, writer = deref(reader), deref(writer)
	if wu, ok := writer.(*hamba.UnionSchema); ok {
		ru, readerIsUnion := reader.(*hamba.UnionSchema)
		for i, wb := range wu.Types() {
			if readerIsUnion {
				c.checkIntoUnion(ru, wb, path, fmt.Sprintf(" (writer union branch %d)", i))
				continue
			}
			// Data written with this branch must be readable by the
			// reader's single type.
			before := len(c.msgs)
			c.check(reader, wb, path)
			for j := before; j < len(c.msgs); j++ {
				c.msgs[j] += fmt.Sprintf(" (writer union branch %d)", i)
			}
		}
		return
	}
	if ru, ok := reader.(*hamba.UnionSchema); ok {
		c.checkIntoUnion(ru, writer, path, "")
		return
	}

	rt, wt := reader.Type(), writer.Type()
	if rt != wt {
		if !promotes(wt, rt) {
			c.add(TypeMismatch, path, "reader type %s cannot read writer type %s", describeType(reader), describeType(writer))
		}
		return
	}
	switch r := reader.(type) {
	case *hamba.RecordSchema:
		w := writer.(*hamba.RecordSchema)
		if !c.namesMatch(r, w, path) {
			return
		}
		key := [2]string{r.FullName(), w.FullName()}
		if c.visiting[key] {
			return
		}
		c.visiting[key] = true
		defer delete(c.visiting, key)
		c.checkRecord(r, w, path)
	case *hamba.EnumSchema:
		w := writer.(*hamba.EnumSchema)
		if !c.namesMatch(r, w, path) {
			return
		}
		if r.HasDefault() {
			return
		}
		var missing []string
		for _, sym := range w.Symbols() {
			if !slices.Contains(r.Symbols(), sym) {
				missing = append(missing, sym)
			}
		}
		if len(missing) > 0 {
			c.add(MissingEnumSymbols, path+"/symbols", "reader enum %q has no default and lacks writer symbols [%s]", r.FullName(), strings.Join(missing, ", "))
		}
	case *hamba.FixedSchema:
		w := writer.(*hamba.FixedSchema)
		if !c.namesMatch(r, w, path) {
			return
		}
		if r.Size() != w.Size() {
			c.add(FixedSizeMismatch, path+"/size", "fixed %q is %d bytes in the reader but %d in the writer", r.FullName(), r.Size(), w.Size())
		}
	case *hamba.ArraySchema:
		c.check(r.Items(), writer.(*hamba.ArraySchema).Items(), path+"/items")
	case *hamba.MapSchema:
		c.check(r.Values(), writer.(*hamba.MapSchema).Values(), path+"/values")
	}
	// Primitives of the same type read each other whatever their logical
	// types.
}

func (c *checker) checkRecord(r, w *hamba.RecordSchema, path string) {
	for i, rf := range r.Fields() {
		fpath := fmt.Sprintf("%s/fields/%d", path, i)
		wf := writerField(w, rf)
		if wf == nil {
			if !rf.HasDefault() {
				c.add(ReaderFieldMissingDefault, fpath, "field '%s' of record %q has no default and is missing from the writer", rf.Name(), r.FullName())
			}
			continue
		}
		c.check(rf.Type(), wf.Type(), fpath+"/type")
	}
}

// writerField finds the writer field a reader field reads: the same name,
// else one of the reader field's aliases.
func writerField(w *hamba.RecordSchema, rf *hamba.Field) *hamba.Field {
	for _, wf := range w.Fields() {
		if wf.Name() == rf.Name() {
			return wf
		}
	}
	for _, alias := range rf.Aliases() {
		for _, wf := range w.Fields() {
			if wf.Name() == alias {
				return wf
			}
		}
	}
	return nil
}

func (c *checker) namesMatch(r, w hamba.NamedSchema, path string) bool {
	if r.Name() == w.Name() || slices.Contains(r.Aliases(), w.FullName()) {
		return true
	}
	for _, alias := range r.Aliases() {
		if shortName(alias) == w.Name() && !strings.Contains(alias, ".") {
			return true
		}
	}
	c.add(NameMismatch, path+"/name", "reader %s %q cannot read writer %s %q (names differ and no reader alias matches)", r.Type(), r.FullName(), w.Type(), w.FullName())
	return false
}

func shortName(full string) string {
	if i := strings.LastIndex(full, "."); i >= 0 {
		return full[i+1:]
	}
	return full
}

// checkIntoUnion checks a non-union writer type against a reader union:
// the first branch of the same type (and name, for named types) is used,
// else the first branch the writer type promotes to.
func (c *checker) checkIntoUnion(ru *hamba.UnionSchema, writer hamba.Schema, path, suffix string) {
	writer = deref(writer)
	branch := -1
	for i, rb := range ru.Types() {
		if sameKind(deref(rb), writer) {
			branch = i
			break
		}
	}
	if branch < 0 {
		for i, rb := range ru.Types() {
			if promotes(writer.Type(), deref(rb).Type()) {
				branch = i
				break
			}
		}
	}
	if branch < 0 {
		c.add(MissingUnionBranch, path, "reader %s has no branch for writer type %s%s", describeType(ru), describeType(writer), suffix)
		return
	}
	before := len(c.msgs)
	c.check(ru.Types()[branch], writer, fmt.Sprintf("%s/%d", path, branch))
	for i := before; i < len(c.msgs); i++ {
		c.msgs[i] += suffix
	}
}

// sameKind is whether a reader union branch is the one resolution picks
// for writer without promotion: the same type, and for named types the
// same name (or a reader alias).
func sameKind(rb, writer hamba.Schema) bool {
	if rb.Type() != writer.Type() {
		return false
	}
	rn, ok := rb.(hamba.NamedSchema)
	if !ok {
		return true
	}
	wn := writer.(hamba.NamedSchema)
	if rn.Name() == wn.Name() || slices.Contains(rn.Aliases(), wn.FullName()) {
		return true
	}
	return false
}

// promotes is whether a writer type w can be read as reader type r.
func promotes(w, r hamba.Type) bool {
	switch w {
	case hamba.Int:
		return r == hamba.Long || r == hamba.Float || r == hamba.Double
	case hamba.Long:
		return r == hamba.Float || r == hamba.Double
	case hamba.Float:
		return r == hamba.Double
	case hamba.String:
		return r == hamba.Bytes
	case hamba.Bytes:
		return r == hamba.String
	}
	return false
}
