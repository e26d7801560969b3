package tableflow

import (
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/apache/iceberg-go"
	"github.com/google/uuid"
	lib "github.com/santhosh-tekuri/jsonschema/v6"
)

// JSON Schemas become columns as follows: an object with "properties" →
// struct (properties in name order: the schema's own order is not kept by
// its parser; a property is required when "required" lists it and it
// does not allow null), an object with only an "additionalProperties"
// schema → map<string, V>, an array with an "items" schema → list,
// "string" → string (format date → date, date-time → timestamptz, uuid →
// uuid), "integer" → long, "number" → double, "boolean" → boolean, a
// string enum → string. A type that allows null (["T", "null"], or
// anyOf/oneOf of {"type": "null"} and one schema) is optional. "$ref"s
// are followed; a schema that refers to itself, several non-null types,
// and other combinations are ErrUnsupportedSchema.
//
// Values are those internal/registry/jsonschema's Decode returns (int64
// or float64 numbers, map[string]any objects, []any arrays).

// jsonRoot compiles a JSON value schema into the struct of its columns.
func (c *compiler) jsonRoot(s *lib.Schema) (shape, error) {
	sh, err := c.json(s, "", map[*lib.Schema]bool{})
	if err != nil {
		return shape{}, err
	}
	if _, ok := sh.typ.(*iceberg.StructType); !ok || !sh.required {
		return c.wrapRoot(sh), nil
	}
	return sh, nil
}

// jsonTypes are the JSON types a schema names (nil when it names none).
func jsonTypes(s *lib.Schema) []string {
	if s.Types == nil || s.Types.IsEmpty() {
		return nil
	}
	return s.Types.ToStrings()
}

// isJSONNull reports whether s is {"type": "null"}.
func isJSONNull(s *lib.Schema) bool {
	t := jsonTypes(s)
	return len(t) == 1 && t[0] == "null"
}

func (c *compiler) json(s *lib.Schema, path string, stack map[*lib.Schema]bool) (shape, error) {
	where := path
	if where == "" {
		where = "(the value)"
	}
	if stack[s] {
		return shape{}, fmt.Errorf("%w: field %s: the schema at %s refers to itself (recursive types have no table form)", ErrUnsupportedSchema, where, s.Location)
	}
	stack[s] = true
	defer delete(stack, s)
	types := jsonTypes(s)
	if s.Ref != nil && types == nil && s.Properties == nil && s.Items == nil && s.Items2020 == nil {
		return c.json(s.Ref, path, stack)
	}
	if alts := append(slices.Clone(s.AnyOf), s.OneOf...); types == nil && len(alts) == 2 && (len(s.AnyOf) == 2 || len(s.OneOf) == 2) {
		for i, a := range alts {
			if isJSONNull(a) {
				sh, err := c.json(alts[1-i], path, stack)
				if err != nil {
					return shape{}, err
				}
				sh.required = false
				return sh, nil
			}
		}
	}
	nullable := false
	var nonNull []string
	for _, t := range types {
		if t == "null" {
			nullable = true
		} else {
			nonNull = append(nonNull, t)
		}
	}
	if len(nonNull) == 0 && s.Enum != nil {
		allStrings := len(s.Enum.Values) > 0
		for _, v := range s.Enum.Values {
			if v == nil {
				nullable = true
			} else if _, ok := v.(string); !ok {
				allStrings = false
			}
		}
		if allStrings {
			nonNull = []string{"string"}
		}
	}
	if len(nonNull) != 1 {
		return shape{}, fmt.Errorf("%w: field %s: a column needs exactly one JSON type besides null, the schema at %s allows %v", ErrUnsupportedSchema, where, s.Location, types)
	}
	sh, err := c.jsonTyped(s, nonNull[0], path, where, stack)
	if err != nil {
		return shape{}, err
	}
	sh.required = !nullable
	return sh, nil
}

func (c *compiler) jsonTyped(s *lib.Schema, typ, path, where string, stack map[*lib.Schema]bool) (shape, error) {
	switch typ {
	case "boolean":
		return shape{typ: iceberg.PrimitiveTypes.Bool, conv: func(v any) (any, error) {
			b, ok := v.(bool)
			if !ok {
				return nil, fmt.Errorf("%v is not a boolean", v)
			}
			return b, nil
		}}, nil
	case "integer":
		return shape{typ: iceberg.PrimitiveTypes.Int64, conv: jsonInteger}, nil
	case "number":
		return shape{typ: iceberg.PrimitiveTypes.Float64, conv: func(v any) (any, error) {
			switch x := v.(type) {
			case int64:
				return float64(x), nil
			case float64:
				return x, nil
			}
			return nil, fmt.Errorf("%v is not a number a double holds", v)
		}}, nil
	case "string":
		format := ""
		if s.Format != nil {
			format = s.Format.Name
		}
		return jsonString(format), nil
	case "array":
		items, _ := s.Items.(*lib.Schema)
		if s.Items2020 != nil {
			items = s.Items2020
		}
		if items == nil {
			return shape{}, fmt.Errorf("%w: field %s: an array needs one \"items\" schema to be a list", ErrUnsupportedSchema, where)
		}
		elem, err := c.json(items, path+".element", stack)
		if err != nil {
			return shape{}, err
		}
		return shape{typ: c.listType(elem), conv: listConv(elem)}, nil
	case "object":
		if len(s.Properties) == 0 {
			vs, ok := s.AdditionalProperties.(*lib.Schema)
			if !ok {
				return shape{}, fmt.Errorf("%w: field %s: an object needs \"properties\" (a struct) or an \"additionalProperties\" schema (a map)", ErrUnsupportedSchema, where)
			}
			val, err := c.json(vs, path+".value", stack)
			if err != nil {
				return shape{}, err
			}
			key := shape{typ: iceberg.PrimitiveTypes.String, required: true}
			return shape{typ: c.mapType(key, val), conv: func(v any) (any, error) {
				m, ok := v.(map[string]any)
				if !ok {
					return nil, fmt.Errorf("%T is not an object", v)
				}
				out := make([]mapEntry, 0, len(m))
				for k, e := range m {
					cv, err := convOptional(val, e)
					if err != nil {
						return nil, fmt.Errorf("%s: %w", k, err)
					}
					out = append(out, mapEntry{key: k, value: cv})
				}
				sortEntries(out)
				return out, nil
			}}, nil
		}
		names := make([]string, 0, len(s.Properties))
		for n := range s.Properties {
			names = append(names, n)
		}
		slices.Sort(names)
		fields := make([]namedShape, len(names))
		for i, n := range names {
			sh, err := c.json(s.Properties[n], joinPath(path, n), stack)
			if err != nil {
				return shape{}, err
			}
			sh.required = sh.required && slices.Contains(s.Required, n)
			fields[i] = namedShape{name: n, shape: sh}
		}
		conv := mapStructConv(fields)
		return shape{typ: c.structType(fields), conv: func(v any) (any, error) {
			if _, ok := v.(map[string]any); !ok {
				return nil, fmt.Errorf("%T is not an object", v)
			}
			return conv(v)
		}}, nil
	}
	return shape{}, fmt.Errorf("%w: field %s: JSON type %q has no column type", ErrUnsupportedSchema, where, typ)
}

func jsonInteger(v any) (any, error) {
	switch x := v.(type) {
	case int64:
		return x, nil
	case float64:
		if x == math.Trunc(x) && x >= math.MinInt64 && x < math.MaxInt64 {
			return int64(x), nil
		}
	}
	return nil, fmt.Errorf("%v is not an integer a long holds", v)
}

func jsonString(format string) shape {
	str := func(v any) (string, error) {
		s, ok := v.(string)
		if !ok {
			return "", fmt.Errorf("%v is not a string", v)
		}
		return s, nil
	}
	switch format {
	case "date":
		return shape{typ: iceberg.PrimitiveTypes.Date, conv: func(v any) (any, error) {
			s, err := str(v)
			if err != nil {
				return nil, err
			}
			t, err := time.Parse(time.DateOnly, s)
			if err != nil {
				return nil, fmt.Errorf("date %q: %w", s, err)
			}
			return int32(t.Unix() / 86400), nil
		}}
	case "date-time":
		return shape{typ: iceberg.PrimitiveTypes.TimestampTz, conv: func(v any) (any, error) {
			s, err := str(v)
			if err != nil {
				return nil, err
			}
			t, err := time.Parse(time.RFC3339Nano, s)
			if err != nil {
				return nil, fmt.Errorf("date-time %q: %w", s, err)
			}
			return t.UnixMicro(), nil
		}}
	case "uuid":
		return shape{typ: iceberg.PrimitiveTypes.UUID, conv: func(v any) (any, error) {
			s, err := str(v)
			if err != nil {
				return nil, err
			}
			u, err := uuid.Parse(s)
			if err != nil {
				return nil, fmt.Errorf("uuid %q: %w", s, err)
			}
			return u, nil
		}}
	}
	return shape{typ: iceberg.PrimitiveTypes.String, conv: func(v any) (any, error) { return str(v) }}
}
