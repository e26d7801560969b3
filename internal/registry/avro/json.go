package avro

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
)

// decodeJSON decodes schema text, keeping numbers as written.
func decodeJSON(text string) (any, error) {
	if strings.TrimSpace(text) == "" {
		return nil, errors.New("schema is empty")
	}
	dec := json.NewDecoder(strings.NewReader(text))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, jsonError(text, dec, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		line, col := position(text, dec.InputOffset())
		return nil, fmt.Errorf("schema is not valid JSON: unexpected data after the schema at line %d, column %d", line, col)
	}
	return v, nil
}

func jsonError(text string, dec *json.Decoder, err error) error {
	offset := dec.InputOffset()
	var syn *json.SyntaxError
	if errors.As(err, &syn) {
		offset = syn.Offset
	}
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		offset = int64(len(text))
	}
	line, col := position(text, offset)
	return fmt.Errorf("schema is not valid JSON at line %d, column %d: %v", line, col, err)
}

func position(text string, offset int64) (line, col int) {
	if offset > int64(len(text)) {
		offset = int64(len(text))
	}
	before := text[:offset]
	line = strings.Count(before, "\n") + 1
	col = int(offset) - strings.LastIndex(before, "\n")
	return line, col
}

var primitives = map[string]bool{
	"null": true, "boolean": true, "int": true, "long": true,
	"float": true, "double": true, "bytes": true, "string": true,
}

// qualify resolves a type or alias name against the enclosing namespace.
func qualify(name, ns string) string {
	if strings.Contains(name, ".") || ns == "" {
		return name
	}
	return ns + "." + name
}

// namespaceOf is the namespace a full name sets for what it encloses.
func namespaceOf(full string) string {
	if i := strings.LastIndex(full, "."); i >= 0 {
		return full[:i]
	}
	return ""
}

// namedFullName is the full name of a named type declared by m in ns.
func namedFullName(m map[string]any, ns string) string {
	name, _ := m["name"].(string)
	if strings.Contains(name, ".") {
		return name
	}
	if nsAttr, ok := m["namespace"].(string); ok {
		ns = nsAttr
	}
	return qualify(name, ns)
}

func at(path string) string {
	if path == "" {
		return "/"
	}
	return path
}

// validate checks the structure of a schema's JSON so errors can say where
// they are (as a JSON pointer); names collects the full names of named
// types defined so far (references first, then this schema in order).
// Finer rules (name syntax, default values, duplicate union branches) are
// left to hamba/avro.
func validate(v any, ns, path string, names map[string]bool) error {
	switch t := v.(type) {
	case string:
		if primitives[t] {
			return nil
		}
		if t == "" {
			return fmt.Errorf("at %s: empty type name", at(path))
		}
		if !names[qualify(t, ns)] {
			return fmt.Errorf("at %s: unknown type %q (not a primitive, and no named type %q is defined before this point or in the references)", at(path), t, qualify(t, ns))
		}
		return nil
	case []any:
		for i, branch := range t {
			if _, ok := branch.([]any); ok {
				return fmt.Errorf("at %s/%d: a union may not contain another union directly", path, i)
			}
			if err := validate(branch, ns, fmt.Sprintf("%s/%d", path, i), names); err != nil {
				return err
			}
		}
		return nil
	case map[string]any:
		return validateObject(t, ns, path, names)
	case nil:
		return fmt.Errorf("at %s: JSON null is not a schema (the null type is written \"null\")", at(path))
	default:
		return fmt.Errorf("at %s: %v is not a schema (expected a type name, an object or a union array)", at(path), t)
	}
}

func validateObject(m map[string]any, ns, path string, names map[string]bool) error {
	rawType, ok := m["type"]
	if !ok {
		return fmt.Errorf("at %s: object has no \"type\"", at(path))
	}
	typ, ok := rawType.(string)
	if !ok {
		if _, isUnion := rawType.([]any); isUnion {
			return validate(rawType, ns, path+"/type", names)
		}
		return fmt.Errorf("at %s/type: \"type\" must be a string, got %s", path, describe(rawType))
	}
	switch typ {
	case "record", "error":
		full, err := defineName(m, ns, path, typ, names)
		if err != nil {
			return err
		}
		fields, ok := m["fields"].([]any)
		if !ok {
			return fmt.Errorf("at %s: record %q needs a \"fields\" array", at(path), full)
		}
		inner := namespaceOf(full)
		seenFields := map[string]bool{}
		for i, f := range fields {
			fpath := fmt.Sprintf("%s/fields/%d", path, i)
			fm, ok := f.(map[string]any)
			if !ok {
				return fmt.Errorf("at %s: a field must be an object, got %s", fpath, describe(f))
			}
			fname, ok := fm["name"].(string)
			if !ok || fname == "" {
				return fmt.Errorf("at %s: field of record %q has no \"name\"", fpath, full)
			}
			if seenFields[fname] {
				return fmt.Errorf("at %s: record %q has two fields named %q", fpath, full, fname)
			}
			seenFields[fname] = true
			ftype, ok := fm["type"]
			if !ok {
				return fmt.Errorf("at %s: field %q of record %q has no \"type\"", fpath, fname, full)
			}
			if err := validate(ftype, inner, fpath+"/type", names); err != nil {
				return err
			}
		}
	case "enum":
		full, err := defineName(m, ns, path, typ, names)
		if err != nil {
			return err
		}
		syms, ok := m["symbols"].([]any)
		if !ok {
			return fmt.Errorf("at %s: enum %q needs a \"symbols\" array", at(path), full)
		}
		seen := map[string]bool{}
		for i, s := range syms {
			str, ok := s.(string)
			if !ok || str == "" {
				return fmt.Errorf("at %s/symbols/%d: enum %q symbol must be a non-empty string", path, i, full)
			}
			if seen[str] {
				return fmt.Errorf("at %s/symbols/%d: enum %q has symbol %q twice", path, i, full, str)
			}
			seen[str] = true
		}
		if def, ok := m["default"]; ok {
			str, isStr := def.(string)
			if !isStr || !seen[str] {
				return fmt.Errorf("at %s/default: enum %q default %s is not one of its symbols", path, full, describe(def))
			}
		}
	case "array":
		items, ok := m["items"]
		if !ok {
			return fmt.Errorf("at %s: array needs \"items\"", at(path))
		}
		return validate(items, ns, path+"/items", names)
	case "map":
		values, ok := m["values"]
		if !ok {
			return fmt.Errorf("at %s: map needs \"values\"", at(path))
		}
		return validate(values, ns, path+"/values", names)
	case "fixed":
		full, err := defineName(m, ns, path, typ, names)
		if err != nil {
			return err
		}
		n, ok := m["size"].(json.Number)
		size, convErr := strconv.ParseInt(string(n), 10, 32)
		if !ok || convErr != nil || size < 0 {
			return fmt.Errorf("at %s: fixed %q needs a non-negative integer \"size\"", at(path), full)
		}
	default:
		// {"type": "int", ...} or a named type used as {"type": "com.x.T"}.
		return validate(typ, ns, path+"/type", names)
	}
	return nil
}

func defineName(m map[string]any, ns, path, typ string, names map[string]bool) (string, error) {
	name, ok := m["name"].(string)
	if !ok || name == "" {
		return "", fmt.Errorf("at %s: %s has no \"name\"", at(path), typ)
	}
	if rawNS, has := m["namespace"]; has {
		if _, isStr := rawNS.(string); !isStr && rawNS != nil {
			return "", fmt.Errorf("at %s/namespace: namespace must be a string, got %s", path, describe(rawNS))
		}
	}
	full := namedFullName(m, ns)
	if primitives[full] {
		return "", fmt.Errorf("at %s/name: %s may not be named after the primitive type %q", path, typ, full)
	}
	if names[full] {
		return "", fmt.Errorf("at %s/name: type %q is defined twice", path, full)
	}
	names[full] = true
	return full, nil
}

func describe(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprintf("%v", v)
	}
	if len(b) > 60 {
		return string(b[:57]) + "..."
	}
	return string(b)
}

// canonicalText renders decoded schema JSON compactly with sorted keys.
func canonicalText(v any) string {
	var buf bytes.Buffer
	writeCanonical(&buf, v)
	return buf.String()
}

func writeCanonical(buf *bytes.Buffer, v any) {
	switch t := v.(type) {
	case map[string]any:
		if typ, ok := t["type"].(string); ok && len(t) == 1 && primitives[typ] {
			writeString(buf, typ)
			return
		}
		keys := make([]string, 0, len(t))
		for k := range t {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		buf.WriteByte('{')
		for i, k := range keys {
			if i > 0 {
				buf.WriteByte(',')
			}
			writeString(buf, k)
			buf.WriteByte(':')
			writeCanonical(buf, t[k])
		}
		buf.WriteByte('}')
	case []any:
		buf.WriteByte('[')
		for i, e := range t {
			if i > 0 {
				buf.WriteByte(',')
			}
			writeCanonical(buf, e)
		}
		buf.WriteByte(']')
	default:
		writeJSONValue(buf, t)
	}
}

// writeJSONValue writes a JSON value with sorted keys (used for defaults
// and custom properties, which are data, not schemas): encoding/json sorts
// map keys and keeps json.Number as written.
func writeJSONValue(buf *bytes.Buffer, v any) {
	enc := json.NewEncoder(buf)
	enc.SetEscapeHTML(false)
	if enc.Encode(v) == nil { // decoded JSON always encodes
		buf.Truncate(buf.Len() - 1)
	}
}

func writeString(buf *bytes.Buffer, s string) {
	enc := json.NewEncoder(buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s) // a string always encodes
	buf.Truncate(buf.Len() - 1)
}

// normalizedText renders decoded schema JSON in the normalized form
// described on Schema.Normalized.
func normalizedText(v any) string {
	var buf bytes.Buffer
	writeNormalized(&buf, v, "", map[string]bool{})
	return buf.String()
}

// Attribute order of the normalized form; anything else is a custom
// property, written after these in sorted order. doc is dropped.
var normalizedOrder = []string{
	"name", "type", "fields", "symbols", "items", "values", "size",
	"default", "aliases", "order", "logicalType", "precision", "scale",
}

func writeNormalized(buf *bytes.Buffer, v any, ns string, defined map[string]bool) {
	switch t := v.(type) {
	case string:
		if primitives[t] {
			writeString(buf, t)
			return
		}
		writeString(buf, qualify(t, ns))
	case []any:
		buf.WriteByte('[')
		for i, e := range t {
			if i > 0 {
				buf.WriteByte(',')
			}
			writeNormalized(buf, e, ns, defined)
		}
		buf.WriteByte(']')
	case map[string]any:
		writeNormalizedObject(buf, t, ns, defined)
	default:
		writeJSONValue(buf, t)
	}
}

func writeNormalizedObject(buf *bytes.Buffer, m map[string]any, ns string, defined map[string]bool) {
	typ, ok := m["type"].(string)
	if !ok {
		// {"type": [...]}: a union written as an object.
		writeNormalized(buf, m["type"], ns, defined)
		return
	}
	attrs := map[string]func(){}
	inner := ns
	switch typ {
	case "record", "error", "enum", "fixed":
		full := namedFullName(m, ns)
		if defined[full] {
			writeString(buf, full)
			return
		}
		defined[full] = true
		inner = namespaceOf(full)
		attrs["name"] = func() { writeString(buf, full) }
		if aliases, ok := m["aliases"].([]any); ok {
			attrs["aliases"] = func() { writeAliases(buf, aliases, inner) }
		}
	case "array", "map":
	default:
		if !primitives[typ] {
			// A named type used as {"type": "Name"}.
			writeNormalized(buf, typ, ns, defined)
			return
		}
		if len(m) == 1 {
			writeString(buf, typ)
			return
		}
	}
	attrs["type"] = func() { writeString(buf, typ) }
	switch typ {
	case "record", "error":
		fields, _ := m["fields"].([]any)
		attrs["fields"] = func() {
			buf.WriteByte('[')
			for i, f := range fields {
				if i > 0 {
					buf.WriteByte(',')
				}
				fm, _ := f.(map[string]any)
				writeNormalizedField(buf, fm, inner, defined)
			}
			buf.WriteByte(']')
		}
	case "enum":
		attrs["symbols"] = func() { writeJSONValue(buf, m["symbols"]) }
		if def, ok := m["default"]; ok {
			attrs["default"] = func() { writeJSONValue(buf, def) }
		}
	case "array":
		attrs["items"] = func() { writeNormalized(buf, m["items"], ns, defined) }
	case "map":
		attrs["values"] = func() { writeNormalized(buf, m["values"], ns, defined) }
	case "fixed":
		attrs["size"] = func() { writeJSONValue(buf, m["size"]) }
	}
	for _, k := range []string{"logicalType", "precision", "scale"} {
		if val, ok := m[k]; ok {
			attrs[k] = func() { writeJSONValue(buf, val) }
		}
	}
	writeOrdered(buf, m, attrs, map[string]bool{"namespace": true, "doc": true})
}

func writeNormalizedField(buf *bytes.Buffer, f map[string]any, ns string, defined map[string]bool) {
	attrs := map[string]func(){
		"name": func() { writeJSONValue(buf, f["name"]) },
		"type": func() { writeNormalized(buf, f["type"], ns, defined) },
	}
	if def, ok := f["default"]; ok {
		attrs["default"] = func() { writeJSONValue(buf, def) }
	}
	if aliases, ok := f["aliases"].([]any); ok {
		attrs["aliases"] = func() { writeAliases(buf, aliases, "") }
	}
	if order, ok := f["order"]; ok && order != "ascending" {
		attrs["order"] = func() { writeJSONValue(buf, order) }
	}
	writeOrdered(buf, f, attrs, map[string]bool{"doc": true})
}

func writeAliases(buf *bytes.Buffer, aliases []any, ns string) {
	out := make([]string, 0, len(aliases))
	for _, a := range aliases {
		if s, ok := a.(string); ok {
			out = append(out, qualify(s, ns))
		}
	}
	sort.Strings(out)
	buf.WriteByte('[')
	for i, a := range out {
		if i > 0 {
			buf.WriteByte(',')
		}
		writeString(buf, a)
	}
	buf.WriteByte(']')
}

// writeOrdered writes attrs in normalizedOrder, then the object's other
// keys (custom properties) sorted, leaving out skip.
func writeOrdered(buf *bytes.Buffer, m map[string]any, attrs map[string]func(), skip map[string]bool) {
	buf.WriteByte('{')
	first := true
	sep := func() {
		if !first {
			buf.WriteByte(',')
		}
		first = false
	}
	known := map[string]bool{}
	for _, k := range normalizedOrder {
		known[k] = true
		if w, ok := attrs[k]; ok {
			sep()
			writeString(buf, k)
			buf.WriteByte(':')
			w()
		}
	}
	var extra []string
	for k := range m {
		if !known[k] && !skip[k] {
			extra = append(extra, k)
		}
	}
	sort.Strings(extra)
	for _, k := range extra {
		sep()
		writeString(buf, k)
		buf.WriteByte(':')
		writeJSONValue(buf, m[k])
	}
	buf.WriteByte('}')
}
