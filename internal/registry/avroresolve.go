package registry

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
)

// resolveAvro returns an Avro schema with the named types its references
// define inlined where first used (Confluent's format=resolved): the
// result parses on its own. It works on the JSON alone, so this package
// needs no Avro library: names are resolved by the spec's rules (an
// unqualified name in the enclosing namespace, else in the null one), an
// inlined definition gets its namespace made explicit so its meaning does
// not change where it lands, and a type defined twice on the way (once
// inlined, once nested in another inlined definition) is written as a name
// the second time. Keys keep their order; the output is compact.
func resolveAvro(text string, refs []ResolvedReference) (string, error) {
	root, err := decodeOrdered(text)
	if err != nil {
		return "", fmt.Errorf("registry: stored Avro schema: %w", err)
	}
	ar := &avroResolver{defs: map[string]avroDef{}, defined: map[string]bool{}}
	if err := ar.collectRefs(refs, 0); err != nil {
		return "", err
	}
	out, err := ar.walk(root, "", 0)
	if err != nil {
		return "", err
	}
	var b bytes.Buffer
	if err := encodeOrdered(&b, out); err != nil {
		return "", err
	}
	return b.String(), nil
}

// maxAvroDepth bounds the nesting resolveAvro follows.
const maxAvroDepth = 256

type avroDef struct {
	node *jobj
	ns   string // namespace the definition's own name resolves in
}

type avroResolver struct {
	defs    map[string]avroDef // named types the references define, by full name
	defined map[string]bool    // full names already defined in the output
}

var avroPrimitives = map[string]bool{"null": true, "boolean": true, "int": true, "long": true,
	"float": true, "double": true, "bytes": true, "string": true}

// avroFullName returns a named type's full name and the namespace its
// nested names resolve in.
func avroFullName(o *jobj, enclosing string) (full, ns string) {
	name, _ := o.vals["name"].(string)
	if i := strings.LastIndexByte(name, '.'); i >= 0 {
		return name, name[:i]
	}
	ns = enclosing
	if v, ok := o.vals["namespace"].(string); ok {
		ns = v
	}
	if ns == "" {
		return name, ""
	}
	return ns + "." + name, ns
}

func isNamedKind(t any) bool {
	s, _ := t.(string)
	return s == "record" || s == "error" || s == "enum" || s == "fixed"
}

func (ar *avroResolver) collectRefs(refs []ResolvedReference, depth int) error {
	if depth > maxRefDepth {
		return fmt.Errorf("registry: references nest deeper than %d", maxRefDepth)
	}
	for _, ref := range refs {
		v, err := decodeOrdered(ref.Schema)
		if err != nil {
			return fmt.Errorf("registry: referenced Avro schema %q: %w", ref.Name, err)
		}
		if err := ar.collect(v, "", 0); err != nil {
			return err
		}
		if err := ar.collectRefs(ref.Refs, depth+1); err != nil {
			return err
		}
	}
	return nil
}

// collect records the named types a schema defines.
func (ar *avroResolver) collect(v any, ns string, depth int) error {
	if depth > maxAvroDepth {
		return fmt.Errorf("registry: Avro schema nests deeper than %d", maxAvroDepth)
	}
	switch x := v.(type) {
	case []any:
		for _, b := range x {
			if err := ar.collect(b, ns, depth+1); err != nil {
				return err
			}
		}
	case *jobj:
		t := x.vals["type"]
		switch {
		case isNamedKind(t):
			full, inner := avroFullName(x, ns)
			if _, dup := ar.defs[full]; !dup {
				ar.defs[full] = avroDef{node: x, ns: ns}
			}
			fields, _ := x.vals["fields"].([]any)
			for _, f := range fields {
				if fo, ok := f.(*jobj); ok {
					if err := ar.collect(fo.vals["type"], inner, depth+1); err != nil {
						return err
					}
				}
			}
		case t == "array":
			return ar.collect(x.vals["items"], ns, depth+1)
		case t == "map":
			return ar.collect(x.vals["values"], ns, depth+1)
		default:
			return ar.collect(t, ns, depth+1)
		}
	}
	return nil
}

// lookupName finds a referenced name: in the enclosing namespace, then as
// written.
func lookupName(name, ns string, has func(string) bool) (string, bool) {
	if !strings.Contains(name, ".") && ns != "" && has(ns+"."+name) {
		return ns + "." + name, true
	}
	return name, has(name)
}

// walk copies a schema, inlining the first use of each referenced name.
func (ar *avroResolver) walk(v any, ns string, depth int) (any, error) {
	if depth > maxAvroDepth {
		return nil, fmt.Errorf("registry: Avro schema nests deeper than %d", maxAvroDepth)
	}
	switch x := v.(type) {
	case string:
		if avroPrimitives[x] {
			return x, nil
		}
		if _, ok := lookupName(x, ns, func(n string) bool { return ar.defined[n] }); ok {
			return x, nil
		}
		full, ok := lookupName(x, ns, func(n string) bool { _, ok := ar.defs[n]; return ok })
		if !ok {
			// Not from a reference (the schema parsed when it was
			// registered, so it is defined where this walk cannot see,
			// e.g. a name the format resolves itself): left as written.
			return x, nil
		}
		def := ar.defs[full]
		inl := def.node.clone()
		if name, _ := inl.vals["name"].(string); !strings.Contains(name, ".") {
			if _, inner := avroFullName(def.node, def.ns); inner != ns {
				inl.set("namespace", inner)
			}
		}
		return ar.walk(inl, ns, depth+1)
	case []any:
		out := make([]any, len(x))
		for i, b := range x {
			w, err := ar.walk(b, ns, depth+1)
			if err != nil {
				return nil, err
			}
			out[i] = w
		}
		return out, nil
	case *jobj:
		o := x.clone()
		t := x.vals["type"]
		switch {
		case isNamedKind(t):
			full, inner := avroFullName(x, ns)
			if ar.defined[full] {
				return full, nil
			}
			ar.defined[full] = true
			fields, _ := x.vals["fields"].([]any)
			if fields != nil {
				nf := make([]any, len(fields))
				for i, f := range fields {
					fo, ok := f.(*jobj)
					if !ok {
						nf[i] = f
						continue
					}
					c := fo.clone()
					w, err := ar.walk(fo.vals["type"], inner, depth+1)
					if err != nil {
						return nil, err
					}
					c.vals["type"] = w
					nf[i] = c
				}
				o.vals["fields"] = nf
			}
		case t == "array" || t == "map":
			key := "items"
			if t == "map" {
				key = "values"
			}
			w, err := ar.walk(x.vals[key], ns, depth+1)
			if err != nil {
				return nil, err
			}
			o.vals[key] = w
		default:
			w, err := ar.walk(t, ns, depth+1)
			if err != nil {
				return nil, err
			}
			o.vals["type"] = w
		}
		return o, nil
	}
	return v, nil
}

// jobj is a JSON object that keeps its keys' order.
type jobj struct {
	keys []string
	vals map[string]any
}

func (o *jobj) clone() *jobj {
	c := &jobj{keys: append([]string(nil), o.keys...), vals: make(map[string]any, len(o.vals))}
	for k, v := range o.vals {
		c.vals[k] = v
	}
	return c
}

// set sets k, adding it after "name" (or last) when new.
func (o *jobj) set(k string, v any) {
	if _, ok := o.vals[k]; !ok {
		at := len(o.keys)
		for i, key := range o.keys {
			if key == "name" {
				at = i + 1
			}
		}
		o.keys = append(o.keys[:at], append([]string{k}, o.keys[at:]...)...)
	}
	o.vals[k] = v
}

// decodeOrdered decodes one JSON document into *jobj, []any, string,
// json.Number, bool and nil.
func decodeOrdered(text string) (any, error) {
	dec := json.NewDecoder(strings.NewReader(text))
	dec.UseNumber()
	v, err := readOrdered(dec, 0)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err == nil {
		return nil, fmt.Errorf("text after the JSON document")
	}
	return v, nil
}

func readOrdered(dec *json.Decoder, depth int) (any, error) {
	if depth > maxAvroDepth {
		return nil, fmt.Errorf("JSON nests deeper than %d", maxAvroDepth)
	}
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	d, ok := tok.(json.Delim)
	if !ok {
		return tok, nil
	}
	switch d {
	case '{':
		o := &jobj{vals: map[string]any{}}
		for dec.More() {
			kt, err := dec.Token()
			if err != nil {
				return nil, err
			}
			k, _ := kt.(string)
			v, err := readOrdered(dec, depth+1)
			if err != nil {
				return nil, err
			}
			if _, dup := o.vals[k]; !dup {
				o.keys = append(o.keys, k)
			}
			o.vals[k] = v
		}
		_, err := dec.Token()
		return o, err
	case '[':
		arr := []any{}
		for dec.More() {
			v, err := readOrdered(dec, depth+1)
			if err != nil {
				return nil, err
			}
			arr = append(arr, v)
		}
		_, err := dec.Token()
		return arr, err
	}
	return nil, fmt.Errorf("unexpected %v", d)
}

func encodeOrdered(b *bytes.Buffer, v any) error {
	switch x := v.(type) {
	case *jobj:
		b.WriteByte('{')
		for i, k := range x.keys {
			if i > 0 {
				b.WriteByte(',')
			}
			if err := encodeScalar(b, k); err != nil {
				return err
			}
			b.WriteByte(':')
			if err := encodeOrdered(b, x.vals[k]); err != nil {
				return err
			}
		}
		b.WriteByte('}')
	case []any:
		b.WriteByte('[')
		for i, e := range x {
			if i > 0 {
				b.WriteByte(',')
			}
			if err := encodeOrdered(b, e); err != nil {
				return err
			}
		}
		b.WriteByte(']')
	default:
		return encodeScalar(b, x)
	}
	return nil
}

func encodeScalar(b *bytes.Buffer, v any) error {
	var sb bytes.Buffer
	enc := json.NewEncoder(&sb)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return err
	}
	b.Write(bytes.TrimRight(sb.Bytes(), "\n"))
	return nil
}
