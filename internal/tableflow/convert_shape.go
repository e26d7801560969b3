package tableflow

import (
	"cmp"
	"fmt"
	"math"
	"math/big"
	"slices"

	"github.com/apache/arrow-go/v18/arrow/decimal128"
	"github.com/apache/iceberg-go"
)

// A shape is one node of a value schema (Avro, Protobuf or JSON Schema)
// compiled for tables: the column type it becomes and how a decoded value
// of it becomes that column's value. TableSchema uses the types; the
// Converter compiles each writer schema the same way and uses both, so a
// schema and its values can never be mapped two different ways.
//
// Column values (what conv returns, by column type): boolean bool, int
// int32, long int64, float float32, double float64, decimal
// decimal128.Num, date int32 (days), time int64 (µs), timestamp and
// timestamptz int64 (µs since the epoch), string string, binary and fixed
// []byte, uuid uuid.UUID, struct map[string]any (a missing or nil entry is
// null), list []any, map []mapEntry (in key order). nil is null.
type shape struct {
	typ      iceberg.Type // with ids unique within one compilation
	required bool
	// conv turns a decoded value (never nil) into the column value.
	conv func(v any) (any, error)
}

// mapEntry is one entry of a map column value.
type mapEntry struct {
	key, value any
}

// compiler compiles value schemas into shapes, numbering every field it
// creates (ids only need to be unique: TableSchema renumbers).
type compiler struct {
	next int
}

func (c *compiler) id() int {
	c.next++
	return c.next
}

// namedShape is a field of a struct shape.
type namedShape struct {
	name string
	shape
}

// structType is the struct type of fields.
func (c *compiler) structType(fields []namedShape) *iceberg.StructType {
	st := &iceberg.StructType{FieldList: make([]iceberg.NestedField, len(fields))}
	for i, f := range fields {
		st.FieldList[i] = iceberg.NestedField{ID: c.id(), Name: f.name, Type: f.typ, Required: f.required}
	}
	return st
}

func (c *compiler) listType(elem shape) *iceberg.ListType {
	return &iceberg.ListType{ElementID: c.id(), Element: elem.typ, ElementRequired: elem.required}
}

// mapType makes map values optional whatever the schema says: iceberg-go
// v0.7 reads a required map value back as non-nullable from one data file
// and nullable from another, and a scan's ToArrowTable then panics on the
// mismatch.
func (c *compiler) mapType(key, value shape) *iceberg.MapType {
	return &iceberg.MapType{KeyID: c.id(), KeyType: key.typ, ValueID: c.id(), ValueType: value.typ}
}

// sortEntries orders a map column value by key, so equal maps are
// written alike.
func sortEntries(es []mapEntry) {
	slices.SortFunc(es, func(a, b mapEntry) int { return compareKeys(a.key, b.key) })
}

func compareKeys(a, b any) int {
	switch x := a.(type) {
	case string:
		return cmp.Compare(x, b.(string))
	case int32:
		return cmp.Compare(x, b.(int32))
	case int64:
		return cmp.Compare(x, b.(int64))
	case bool:
		y := b.(bool)
		switch {
		case x == y:
			return 0
		case !x:
			return -1
		}
		return 1
	case decimal128.Num:
		return x.Cmp(b.(decimal128.Num))
	}
	return 0
}

// maxDecimalPrecision is the largest decimal precision a column takes.
const maxDecimalPrecision = 38

// decimalType checks a decimal's precision and scale.
func decimalType(precision, scale int, path string) (iceberg.Type, error) {
	if precision < 1 || precision > maxDecimalPrecision || scale < 0 || scale > precision {
		return nil, fmt.Errorf("%w: field %s: decimal(%d, %d): precision must be 1 to %d and scale 0 to the precision",
			ErrUnsupportedSchema, path, precision, scale, maxDecimalPrecision)
	}
	return iceberg.DecimalTypeOf(precision, scale), nil
}

// decimalFromBytes reads a big-endian two's complement unscaled value (as
// Avro writes decimals) and checks it has at most precision digits.
func decimalFromBytes(b []byte, precision int) (decimal128.Num, error) {
	v := new(big.Int).SetBytes(b)
	if len(b) > 0 && b[0]&0x80 != 0 {
		v.Sub(v, new(big.Int).Lsh(big.NewInt(1), uint(len(b)*8)))
	}
	return decimalFromBig(v, precision)
}

func decimalFromBig(v *big.Int, precision int) (decimal128.Num, error) {
	if v.BitLen() > 127 {
		return decimal128.Num{}, fmt.Errorf("decimal %s does not fit %d digits", v, precision)
	}
	n := decimal128.FromBigInt(v)
	if !n.FitsInPrecision(int32(precision)) {
		return decimal128.Num{}, fmt.Errorf("decimal %s does not fit %d digits", v, precision)
	}
	return n, nil
}

// valueColumn is the column name of a value schema whose top level is
// not a record (an Avro string, a JSON array): the value is one column
// (not _value, which holds the raw bytes of values without a schema).
const valueColumn = "value"

// wrapRoot makes a non-record top-level shape the struct of one column
// (a null value, of a ["null", T] schema, is a row whose column is null).
func (c *compiler) wrapRoot(s shape) shape {
	inner := s
	return shape{
		typ:      c.structType([]namedShape{{name: valueColumn, shape: inner}}),
		required: true,
		conv: func(v any) (any, error) {
			out, err := convOptional(inner, v)
			if err != nil {
				return nil, err
			}
			return map[string]any{valueColumn: out}, nil
		},
	}
}

// scaleTime multiplies a time value by scale (1000 for milliseconds to
// microseconds), refusing one that would overflow.
func scaleTime(v, scale int64) (int64, error) {
	if v > math.MaxInt64/scale || v < math.MinInt64/scale {
		return 0, fmt.Errorf("time value %d × %d overflows microseconds", v, scale)
	}
	return v * scale, nil
}
