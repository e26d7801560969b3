package tableflow

import (
	"errors"
	"fmt"
	"strings"

	"github.com/apache/iceberg-go"

	"github.com/runnel-dev/runnel/internal/config"
	"github.com/runnel-dev/runnel/internal/registry"
	"github.com/runnel-dev/runnel/internal/registry/avro"
	"github.com/runnel-dev/runnel/internal/registry/jsonschema"
	"github.com/runnel-dev/runnel/internal/registry/protobuf"
)

// Errors of table schemas.
var (
	// ErrUnsupportedSchema means a value schema has a construct no table
	// column can hold: a union other than [null, T], a recursive type, a
	// top-level Protobuf file without messages, a JSON Schema object that
	// is neither a record nor a map.
	ErrUnsupportedSchema = errors.New("tableflow: value schema not supported")
	// ErrIncompatibleSchema means a new value schema cannot be merged into
	// the table's schema: a column changed type (other than int→long,
	// float→double or a wider decimal), or a value field takes the name of
	// a fixed column.
	ErrIncompatibleSchema = errors.New("tableflow: value schema incompatible with the table")
)

// fixedColumns are the columns every table starts with, in order.
func fixedColumns(c *compiler) []iceberg.NestedField {
	return []iceberg.NestedField{
		{ID: c.id(), Name: ColPartition, Type: iceberg.PrimitiveTypes.Int32, Required: true},
		{ID: c.id(), Name: ColOffset, Type: iceberg.PrimitiveTypes.Int64, Required: true},
		{ID: c.id(), Name: ColTimestamp, Type: iceberg.PrimitiveTypes.TimestampTz, Required: true},
		{ID: c.id(), Name: ColKey, Type: iceberg.PrimitiveTypes.Binary},
		{ID: c.id(), Name: ColHeaders, Type: &iceberg.MapType{
			KeyID: c.id(), KeyType: iceberg.PrimitiveTypes.String,
			ValueID: c.id(), ValueType: iceberg.PrimitiveTypes.Binary,
		}},
	}
}

// isFixedColumn reports whether name is one of the columns every table
// has.
func isFixedColumn(name string) bool {
	switch name {
	case ColPartition, ColOffset, ColTimestamp, ColKey, ColHeaders:
		return true
	}
	return false
}

// TableSchema returns the Iceberg schema of a topic's table: the fixed
// columns (_partition, _offset, _timestamp, _key, _headers), then either
// _value (binary) when value is nil, or the value schema's fields as
// columns (DESIGN: tableflow-design "Table schema").
//
// With current nil the schema is new and its field ids are assigned as
// iceberg-go assigns a new table's (depth first from 1, the fixed columns
// taking 1 to 7). Otherwise value is merged into current by name path, as
// UpdateSchema.UnionByNameWith would merge it: fields keep their ids and
// positions, new fields are optional, appended to their struct in the
// order value declares them and numbered after current's highest field
// id, fields value no longer has stay (optional from now on), and a column
// may widen from int to long, float to double or to a decimal of larger
// precision. Any other change of a column, and a value field named like a
// fixed column, is an error wrapping ErrIncompatibleSchema that names the
// field. When nothing changes, current itself is returned. A table takes
// the result with UpdateSchema.UnionByNameWith(result), which makes
// exactly it (the ids included; union with the value's schema alone would
// leave the fields it lacks required).
func TableSchema(value registry.Schema, current *iceberg.Schema) (*iceberg.Schema, error) {
	c := &compiler{}
	fields := fixedColumns(c)
	if value == nil {
		fields = append(fields, iceberg.NestedField{ID: c.id(), Name: ColValue, Type: iceberg.PrimitiveTypes.Binary})
	} else {
		root, err := c.valueShape(value)
		if err != nil {
			return nil, err
		}
		for _, f := range root.typ.(*iceberg.StructType).FieldList {
			if isFixedColumn(f.Name) {
				return nil, fmt.Errorf("%w: value field %q has the name of a fixed column", ErrIncompatibleSchema, f.Name)
			}
			fields = append(fields, f)
		}
	}
	if current == nil {
		return iceberg.AssignFreshSchemaIDs(iceberg.NewSchema(0, fields...), nil)
	}
	m := &merger{last: current.HighestFieldID()}
	merged, changed, err := m.fields(current.Fields(), fields, "")
	if err != nil {
		return nil, err
	}
	if !changed {
		return current, nil
	}
	return iceberg.NewSchemaWithIdentifiers(current.ID+1, current.IdentifierFieldIDs, merged...), nil
}

// valueShape compiles a value schema into the struct of its columns.
func (c *compiler) valueShape(value registry.Schema) (shape, error) {
	switch s := value.(type) {
	case *avro.Schema:
		return c.avroRoot(s.Avro())
	case *protobuf.Schema:
		ms := s.File().Messages()
		if ms.Len() == 0 {
			return shape{}, fmt.Errorf("%w: the Protobuf schema declares no message", ErrUnsupportedSchema)
		}
		return c.protoMessage(ms.Get(0), "", map[string]bool{})
	case *jsonschema.Schema:
		return c.jsonRoot(s.Compiled())
	}
	return shape{}, fmt.Errorf("%w: schema type %T", ErrUnsupportedSchema, value)
}

// merger merges a new schema's fields into the current ones.
type merger struct {
	last int // the highest field id given out
}

func (m *merger) nextID() int {
	m.last++
	return m.last
}

func joinPath(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

// fields merges the fields of one struct. New fields are numbered in the
// order next declares them, each depth first, the fields of existing
// structs merged where next reaches them, which is the order
// UnionByNameWith numbers them in.
func (m *merger) fields(cur, next []iceberg.NestedField, path string) ([]iceberg.NestedField, bool, error) {
	byName := make(map[string]int, len(cur))
	for i, f := range cur {
		byName[f.Name] = i
	}
	out := make([]iceberg.NestedField, len(cur))
	copy(out, cur)
	seen := make([]bool, len(cur))
	changed := false
	for _, n := range next {
		i, ok := byName[n.Name]
		if !ok {
			n.Required = false
			sc, err := iceberg.AssignFreshSchemaIDs(iceberg.NewSchema(0, n), m.nextID)
			if err != nil {
				return nil, false, fmt.Errorf("tableflow: number new field %s: %w", joinPath(path, n.Name), err)
			}
			out = append(out, sc.Field(0))
			changed = true
			continue
		}
		seen[i] = true
		f, ch, err := m.field(cur[i], n, joinPath(path, n.Name))
		if err != nil {
			return nil, false, err
		}
		out[i], changed = f, changed || ch
	}
	for i, f := range cur {
		if !seen[i] && f.Required {
			// A field the new schema lacks stays, null from now on.
			out[i].Required = false
			changed = true
		}
	}
	return out, changed, nil
}

func (m *merger) field(cur, next iceberg.NestedField, path string) (iceberg.NestedField, bool, error) {
	t, changed, err := m.typ(cur.Type, next.Type, path)
	if err != nil {
		return cur, false, err
	}
	cur.Type = t
	if cur.Required && !next.Required {
		cur.Required = false
		changed = true
	}
	return cur, changed, nil
}

func (m *merger) typ(cur, next iceberg.Type, path string) (iceberg.Type, bool, error) {
	switch c := cur.(type) {
	case *iceberg.StructType:
		n, ok := next.(*iceberg.StructType)
		if !ok {
			break
		}
		fields, changed, err := m.fields(c.FieldList, n.FieldList, path)
		if err != nil || !changed {
			return cur, false, err
		}
		return &iceberg.StructType{FieldList: fields}, true, nil
	case *iceberg.ListType:
		n, ok := next.(*iceberg.ListType)
		if !ok {
			break
		}
		elem, changed, err := m.typ(c.Element, n.Element, path+".element")
		if err != nil {
			return cur, false, err
		}
		out := *c
		out.Element = elem
		if c.ElementRequired && !n.ElementRequired {
			out.ElementRequired, changed = false, true
		}
		if !changed {
			return cur, false, nil
		}
		return &out, true, nil
	case *iceberg.MapType:
		n, ok := next.(*iceberg.MapType)
		if !ok {
			break
		}
		if !c.KeyType.Equals(n.KeyType) && !promotable(n.KeyType, c.KeyType) {
			return cur, false, fmt.Errorf("%w: field %s: map key type %s cannot become %s", ErrIncompatibleSchema, path, c.KeyType, n.KeyType)
		}
		val, changed, err := m.typ(c.ValueType, n.ValueType, path+".value")
		if err != nil {
			return cur, false, err
		}
		out := *c
		out.ValueType = val
		if c.ValueRequired && !n.ValueRequired {
			out.ValueRequired, changed = false, true
		}
		if !changed {
			return cur, false, nil
		}
		return &out, true, nil
	case iceberg.PrimitiveType:
		n, ok := next.(iceberg.PrimitiveType)
		if !ok {
			break
		}
		switch {
		case c.Equals(n), promotable(n, c):
			// Same type, or a narrower one the column reads as is.
			return cur, false, nil
		case promotable(c, n):
			return n, true, nil
		}
	}
	return cur, false, fmt.Errorf("%w: field %s: type %s cannot become %s", ErrIncompatibleSchema, path, cur, next)
}

// promotable reports whether values of type from are read as type to:
// int as long, float as double, a decimal as one of the same scale and at
// least its precision (Iceberg's type promotions).
func promotable(from, to iceberg.Type) bool {
	if from.Equals(to) {
		return true
	}
	switch f := from.(type) {
	case iceberg.Int32Type:
		_, ok := to.(iceberg.Int64Type)
		return ok
	case iceberg.Float32Type:
		_, ok := to.(iceberg.Float64Type)
		return ok
	case iceberg.DecimalType:
		t, ok := to.(iceberg.DecimalType)
		return ok && t.Scale() == f.Scale() && t.Precision() >= f.Precision()
	}
	return false
}

// firstPartitionFieldID is the id of a spec's first partition field, as
// Iceberg numbers them.
const firstPartitionFieldID = 1000

// PartitionSpec builds a table's partition spec from table.partition.by
// (config.ParsePartitionBy). A field's column is a top-level column or a
// dotted path through structs; an unknown column, a column inside a list
// or map, a non-primitive column, or a transform its type does not take
// (day of a string, truncate of a date, ...) is an error naming it. The
// partition fields are named as Iceberg's own specs name them: the column
// for identity, else column_<transform> (bucket, trunc, year, month, day,
// hour), dots in the column path turned into underscores.
func PartitionSpec(sc *iceberg.Schema, fields []config.PartitionField) (iceberg.PartitionSpec, error) {
	opts := make([]iceberg.PartitionOption, 0, len(fields))
	for i, f := range fields {
		col, err := partitionColumn(sc, f.Column)
		if err != nil {
			return iceberg.PartitionSpec{}, fmt.Errorf("tableflow: table.partition.by %s: %w", f, err)
		}
		var tr iceberg.Transform
		suffix := "_" + f.Transform
		switch f.Transform {
		case "identity":
			tr, suffix = iceberg.IdentityTransform{}, ""
		case "bucket":
			tr = iceberg.BucketTransform{NumBuckets: f.Param}
		case "truncate":
			tr, suffix = iceberg.TruncateTransform{Width: f.Param}, "_trunc"
		case "year":
			tr = iceberg.YearTransform{}
		case "month":
			tr = iceberg.MonthTransform{}
		case "day":
			tr = iceberg.DayTransform{}
		case "hour":
			tr = iceberg.HourTransform{}
		default:
			return iceberg.PartitionSpec{}, fmt.Errorf("tableflow: table.partition.by %s: unknown transform %q", f, f.Transform)
		}
		if !tr.CanTransform(col.Type) {
			return iceberg.PartitionSpec{}, fmt.Errorf("tableflow: table.partition.by %s: %s cannot be applied to column %s of type %s", f, f.Transform, f.Column, col.Type)
		}
		name := strings.ReplaceAll(f.Column, ".", "_") + suffix
		id := firstPartitionFieldID + i
		opts = append(opts, iceberg.AddPartitionFieldBySourceID(col.ID, name, tr, sc, &id))
	}
	spec, err := iceberg.NewPartitionSpecOpts(opts...)
	if err != nil {
		return iceberg.PartitionSpec{}, fmt.Errorf("tableflow: table.partition.by: %w", err)
	}
	return spec, nil
}

// partitionColumn finds a partition source column: a path through structs
// only, ending at a primitive.
func partitionColumn(sc *iceberg.Schema, path string) (iceberg.NestedField, error) {
	fields := sc.Fields()
	var col iceberg.NestedField
	for i, name := range strings.Split(path, ".") {
		if i > 0 {
			st, ok := col.Type.(*iceberg.StructType)
			if !ok {
				return col, fmt.Errorf("column %s: %s is a %s, not a struct", path, col.Name, col.Type)
			}
			fields = st.FieldList
		}
		found := false
		for _, f := range fields {
			if f.Name == name {
				col, found = f, true
				break
			}
		}
		if !found {
			return col, fmt.Errorf("no column %s in the table", path)
		}
	}
	if _, ok := col.Type.(iceberg.PrimitiveType); !ok {
		return col, fmt.Errorf("column %s is a %s; a partition source must be a primitive column", path, col.Type)
	}
	return col, nil
}
