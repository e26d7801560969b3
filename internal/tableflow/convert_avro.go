package tableflow

import (
	"fmt"
	"slices"
	"strings"

	"github.com/apache/iceberg-go"
	"github.com/google/uuid"
	hamba "github.com/hamba/avro/v2"
)

// Avro schemas become columns as follows: record → struct, array → list,
// map → map<string, V>, enum → string, [null, T] (either order) → optional
// T, a one-branch union → its branch, boolean/int/long/float/double/
// string/bytes as themselves, fixed → fixed(n); logical types: decimal →
// decimal(p, s), date → date, time-millis/micros → time,
// timestamp-millis/micros → timestamptz (Avro's timestamps are UTC
// instants), local-timestamp-millis/micros → timestamp, uuid → uuid.
// Other unions and recursive records are ErrUnsupportedSchema.
//
// Values are those internal/registry/avro's Decode returns (int64 for
// int and long, float64 for float and double, the branch's value for a
// union, []byte for bytes and fixed, map[string]any for records and maps).

// avroRoot compiles an Avro value schema into the struct of its columns.
func (c *compiler) avroRoot(s hamba.Schema) (shape, error) {
	sh, err := c.avro(s, "", map[string]bool{})
	if err != nil {
		return shape{}, err
	}
	if _, ok := sh.typ.(*iceberg.StructType); !ok || !sh.required {
		return c.wrapRoot(sh), nil
	}
	return sh, nil
}

func avroDeref(s hamba.Schema) hamba.Schema {
	if r, ok := s.(*hamba.RefSchema); ok {
		return r.Schema()
	}
	return s
}

func (c *compiler) avro(s hamba.Schema, path string, stack map[string]bool) (shape, error) {
	s = avroDeref(s)
	if ls, ok := s.(hamba.LogicalTypeSchema); ok && ls.Logical() != nil {
		if sh, ok, err := c.avroLogical(s, ls.Logical(), path); ok || err != nil {
			return sh, err
		}
	}
	where := path
	if where == "" {
		where = "(the value)"
	}
	switch s.Type() {
	case hamba.Boolean:
		return shape{typ: iceberg.PrimitiveTypes.Bool, required: true, conv: func(v any) (any, error) { return v.(bool), nil }}, nil
	case hamba.Int:
		return shape{typ: iceberg.PrimitiveTypes.Int32, required: true, conv: func(v any) (any, error) { return int32(v.(int64)), nil }}, nil
	case hamba.Long:
		return shape{typ: iceberg.PrimitiveTypes.Int64, required: true, conv: func(v any) (any, error) { return v.(int64), nil }}, nil
	case hamba.Float:
		return shape{typ: iceberg.PrimitiveTypes.Float32, required: true, conv: func(v any) (any, error) { return float32(v.(float64)), nil }}, nil
	case hamba.Double:
		return shape{typ: iceberg.PrimitiveTypes.Float64, required: true, conv: func(v any) (any, error) { return v.(float64), nil }}, nil
	case hamba.String:
		return shape{typ: iceberg.PrimitiveTypes.String, required: true, conv: func(v any) (any, error) { return v.(string), nil }}, nil
	case hamba.Bytes:
		return shape{typ: iceberg.PrimitiveTypes.Binary, required: true, conv: func(v any) (any, error) { return v.([]byte), nil }}, nil
	case hamba.Fixed:
		return shape{typ: iceberg.FixedTypeOf(s.(*hamba.FixedSchema).Size()), required: true, conv: func(v any) (any, error) { return v.([]byte), nil }}, nil
	case hamba.Enum:
		return shape{typ: iceberg.PrimitiveTypes.String, required: true, conv: func(v any) (any, error) { return v.(string), nil }}, nil
	case hamba.Array:
		elem, err := c.avro(s.(*hamba.ArraySchema).Items(), path+".element", stack)
		if err != nil {
			return shape{}, err
		}
		return shape{typ: c.listType(elem), required: true, conv: listConv(elem)}, nil
	case hamba.Map:
		val, err := c.avro(s.(*hamba.MapSchema).Values(), path+".value", stack)
		if err != nil {
			return shape{}, err
		}
		key := shape{typ: iceberg.PrimitiveTypes.String, required: true}
		return shape{typ: c.mapType(key, val), required: true, conv: func(v any) (any, error) {
			m := v.(map[string]any)
			out := make([]mapEntry, 0, len(m))
			for k, e := range m {
				cv, err := convOptional(val, e)
				if err != nil {
					return nil, fmt.Errorf("key %q: %w", k, err)
				}
				out = append(out, mapEntry{key: k, value: cv})
			}
			sortEntries(out)
			return out, nil
		}}, nil
	case hamba.Union:
		types := s.(*hamba.UnionSchema).Types()
		var branches []hamba.Schema
		for _, t := range types {
			if avroDeref(t).Type() != hamba.Null {
				branches = append(branches, t)
			}
		}
		if len(branches) != 1 {
			return shape{}, fmt.Errorf("%w: field %s: union %s: only [\"null\", T] unions become columns", ErrUnsupportedSchema, where, s)
		}
		sh, err := c.avro(branches[0], path, stack)
		if err != nil {
			return shape{}, err
		}
		sh.required = len(types) == 1
		return sh, nil
	case hamba.Record, hamba.Error:
		r := s.(*hamba.RecordSchema)
		if stack[r.FullName()] {
			return shape{}, fmt.Errorf("%w: field %s: record %s contains itself (recursive types have no table form)", ErrUnsupportedSchema, where, r.FullName())
		}
		stack[r.FullName()] = true
		defer delete(stack, r.FullName())
		fields := make([]namedShape, 0, len(r.Fields()))
		for _, f := range r.Fields() {
			sh, err := c.avro(f.Type(), joinPath(path, f.Name()), stack)
			if err != nil {
				return shape{}, err
			}
			fields = append(fields, namedShape{name: f.Name(), shape: sh})
		}
		return shape{typ: c.structType(fields), required: true, conv: mapStructConv(fields)}, nil
	}
	return shape{}, fmt.Errorf("%w: field %s: Avro type %s has no column type", ErrUnsupportedSchema, where, s.Type())
}

// avroLogical compiles the logical types that change a column's type;
// ok is false for one that does not (an unknown logical type is its
// underlying type, as Avro readers treat it).
func (c *compiler) avroLogical(s hamba.Schema, l hamba.LogicalSchema, path string) (sh shape, ok bool, err error) {
	t := s.Type()
	switch {
	case l.Type() == hamba.Decimal && (t == hamba.Bytes || t == hamba.Fixed):
		d := l.(*hamba.DecimalLogicalSchema)
		typ, err := decimalType(d.Precision(), d.Scale(), path)
		if err != nil {
			return shape{}, false, err
		}
		p := d.Precision()
		return shape{typ: typ, required: true, conv: func(v any) (any, error) { return decimalFromBytes(v.([]byte), p) }}, true, nil
	case l.Type() == hamba.UUID && t == hamba.String:
		return shape{typ: iceberg.PrimitiveTypes.UUID, required: true, conv: func(v any) (any, error) {
			u, err := uuid.Parse(v.(string))
			if err != nil {
				return nil, fmt.Errorf("uuid %q: %w", v, err)
			}
			return u, nil
		}}, true, nil
	case l.Type() == hamba.Date && t == hamba.Int:
		return shape{typ: iceberg.PrimitiveTypes.Date, required: true, conv: func(v any) (any, error) { return int32(v.(int64)), nil }}, true, nil
	case l.Type() == hamba.TimeMillis && t == hamba.Int:
		return shape{typ: iceberg.PrimitiveTypes.Time, required: true, conv: func(v any) (any, error) { return v.(int64) * 1000, nil }}, true, nil
	case l.Type() == hamba.TimeMicros && t == hamba.Long:
		return shape{typ: iceberg.PrimitiveTypes.Time, required: true, conv: func(v any) (any, error) { return v.(int64), nil }}, true, nil
	}
	var scale int64
	switch l.Type() {
	case hamba.TimestampMillis, hamba.LocalTimestampMillis:
		scale = 1000
	case hamba.TimestampMicros, hamba.LocalTimestampMicros:
		scale = 1
	default:
		return shape{}, false, nil
	}
	if t != hamba.Long {
		return shape{}, false, nil
	}
	typ := iceberg.Type(iceberg.PrimitiveTypes.TimestampTz)
	if strings.HasPrefix(string(l.Type()), "local-") {
		typ = iceberg.PrimitiveTypes.Timestamp
	}
	return shape{typ: typ, required: true, conv: func(v any) (any, error) { return scaleTime(v.(int64), scale) }}, true, nil
}

// convOptional converts v with sh, nil staying null.
func convOptional(sh shape, v any) (any, error) {
	if v == nil {
		return nil, nil
	}
	return sh.conv(v)
}

// listConv converts a []any of elem values.
func listConv(elem shape) func(any) (any, error) {
	return func(v any) (any, error) {
		l := v.([]any)
		out := make([]any, len(l))
		for i, e := range l {
			cv, err := convOptional(elem, e)
			if err != nil {
				return nil, fmt.Errorf("element %d: %w", i, err)
			}
			out[i] = cv
		}
		return out, nil
	}
}

// mapStructConv converts a record decoded as map[string]any.
func mapStructConv(fields []namedShape) func(any) (any, error) {
	fields = slices.Clone(fields)
	return func(v any) (any, error) {
		m := v.(map[string]any)
		out := make(map[string]any, len(fields))
		for _, f := range fields {
			e, ok := m[f.name]
			if !ok || e == nil {
				continue
			}
			cv, err := f.conv(e)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", f.name, err)
			}
			out[f.name] = cv
		}
		return out, nil
	}
}
