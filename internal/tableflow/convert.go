package tableflow

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/decimal128"
	"github.com/apache/arrow-go/v18/arrow/extensions"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/table"
	"github.com/google/uuid"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/runnel-dev/runnel/internal/registry"
	"github.com/runnel-dev/runnel/internal/registry/protobuf"
	"github.com/runnel-dev/runnel/internal/stream"
)

// Errors of record conversion.
var (
	// ErrConvert means a record cannot become a row of its table: its
	// value is not in the registry's wire format, names an unknown schema
	// id, does not decode with its schema, or holds a value the table's
	// column cannot take. The error says which; table.error.mode decides
	// what happens to the record.
	ErrConvert = errors.New("tableflow: record cannot become a row")
	// ErrTombstone means a record of a table with a value schema has a
	// null value: no row in append mode, a delete in upsert mode.
	ErrTombstone = errors.New("tableflow: record is a tombstone")
	// ErrNewColumns means a record's writer schema has fields the table
	// has no column for (the subject has a version the table has not
	// taken yet): dropping them would lose data silently, so the table's
	// schema must take the writer's first (TableSchema(writer, current),
	// then a Converter for the new schema). The error is a
	// *NewColumnsError.
	ErrNewColumns = errors.New("tableflow: writer schema has fields the table lacks")
)

// NewColumnsError is the error of a record whose writer schema has fields
// the table lacks. It wraps ErrNewColumns.
type NewColumnsError struct {
	// SchemaID and Schema are the record's writer schema.
	SchemaID int
	Schema   registry.Schema
	// Fields are the paths of the fields the table lacks.
	Fields []string
}

func (e *NewColumnsError) Error() string {
	return fmt.Sprintf("%v: schema id %d has %s", ErrNewColumns, e.SchemaID, strings.Join(e.Fields, ", "))
}

// Unwrap returns ErrNewColumns.
func (e *NewColumnsError) Unwrap() error { return ErrNewColumns }

// wireMagic is the first byte of a value in the schema registry's wire
// format, followed by the 4-byte big-endian schema id.
const wireMagic = 0

// Converter turns records into Arrow rows of one table schema. Without
// value columns (the table holds exactly the fixed columns and _value) a
// record's value is stored as its bytes; otherwise the value must be in
// the registry's wire format and is decoded with the schema its id names
// (its writer's schema) and projected onto the table's columns by name;
// a writer schema with fields the table lacks is refused until the table
// takes it (NewColumnsError). Writer schemas are read once per id. A
// Converter is not safe for concurrent use.
type Converter struct {
	schemas Schemas
	b       *array.RecordBuilder
	// kinds says what each table column holds (colValue: a value column).
	kinds      []int
	schemaless bool
	// value is the struct of the value columns, in table order.
	value   *iceberg.StructType
	writers map[int]*writer
	n       int
}

// Column kinds of a Converter.
const (
	colValue = iota
	colPartition
	colOffset
	colTimestamp
	colKey
	colHeaders
	colRawValue
)

// writer is a writer schema compiled for conversion.
type writer struct {
	schema registry.Schema
	root   shape
	proj   projector // from root's type to the table's value columns
	extra  []string  // fields the table lacks
	err    error     // the schema has no table form
	// messages holds Protobuf shapes by message, compiled as records
	// name them.
	messages map[protoreflect.FullName]*writerMessage
}

type writerMessage struct {
	root  shape
	proj  projector
	extra []string
	err   error
}

// NewConverter returns a Converter for rows of sc, reading writer schemas
// from schemas. The Arrow schema is iceberg-go's for sc, field ids
// included, the one Transaction.Append accepts for a table of sc.
func NewConverter(sc *iceberg.Schema, schemas Schemas) (*Converter, error) {
	as, err := ArrowSchema(sc)
	if err != nil {
		return nil, err
	}
	c := &Converter{schemas: schemas, writers: map[int]*writer{}, value: &iceberg.StructType{}}
	fields := sc.Fields()
	want := map[string]iceberg.Type{}
	for _, f := range fixedColumns(&compiler{}) {
		want[f.Name] = f.Type
	}
	for _, f := range fields {
		kind := colValue
		switch f.Name {
		case ColPartition:
			kind = colPartition
		case ColOffset:
			kind = colOffset
		case ColTimestamp:
			kind = colTimestamp
		case ColKey:
			kind = colKey
		case ColHeaders:
			kind = colHeaders
		}
		if kind != colValue {
			if !sameShape(want[f.Name], f.Type) {
				return nil, fmt.Errorf("tableflow: table column %s is %s, not %s", f.Name, f.Type, want[f.Name])
			}
			delete(want, f.Name)
		} else {
			c.value.FieldList = append(c.value.FieldList, f)
		}
		c.kinds = append(c.kinds, kind)
	}
	if len(want) > 0 {
		return nil, fmt.Errorf("tableflow: table schema lacks fixed columns (%d of 5 missing)", len(want))
	}
	if len(c.value.FieldList) == 1 && c.value.FieldList[0].Name == ColValue && c.value.FieldList[0].Type.Equals(iceberg.PrimitiveTypes.Binary) {
		c.schemaless = true
		for i, f := range fields {
			if f.Name == ColValue {
				c.kinds[i] = colRawValue
			}
		}
	}
	c.b = array.NewRecordBuilder(memory.DefaultAllocator, as)
	return c, nil
}

// sameShape compares types ignoring field ids.
func sameShape(a, b iceberg.Type) bool {
	am, ok := a.(*iceberg.MapType)
	if !ok {
		return a.Equals(b)
	}
	bm, ok := b.(*iceberg.MapType)
	return ok && am.KeyType.Equals(bm.KeyType) && am.ValueType.Equals(bm.ValueType)
}

// ArrowSchema is the Arrow schema of rows of sc, as iceberg-go converts
// it for writing (field ids in the fields' metadata).
func ArrowSchema(sc *iceberg.Schema) (*arrow.Schema, error) {
	as, err := table.SchemaToArrowSchema(sc, nil, true, false)
	if err != nil {
		return nil, fmt.Errorf("tableflow: arrow schema of %s: %w", sc, err)
	}
	return as, nil
}

// Schema returns the Arrow schema of the Converter's records.
func (c *Converter) Schema() *arrow.Schema { return c.b.Schema() }

// Len returns the number of rows appended since the last NewRecord.
func (c *Converter) Len() int { return c.n }

// NewRecord returns the rows appended so far and starts anew. The caller
// releases the record.
func (c *Converter) NewRecord() arrow.Record {
	c.n = 0
	return c.b.NewRecord()
}

// Release frees the rows not yet taken.
func (c *Converter) Release() { c.b.Release() }

// Append adds the row of record r of partition. A record that cannot
// become a row is an error wrapping ErrConvert; a null value in a table
// with value columns is ErrTombstone; a record whose writer schema has
// fields the table lacks is a *NewColumnsError (ErrNewColumns); a
// failure to read a schema from the registry (other than an unknown id)
// is returned as it is. On any error nothing is appended.
func (c *Converter) Append(ctx context.Context, partition int32, r stream.DecodedRecord) error {
	var vals []any
	if !c.schemaless {
		if r.Value == nil {
			return ErrTombstone
		}
		var err error
		if vals, err = c.valueRow(ctx, r.Value); err != nil {
			return err
		}
	}
	vi := 0
	for i, kind := range c.kinds {
		b := c.b.Field(i)
		switch kind {
		case colPartition:
			b.(*array.Int32Builder).Append(partition)
		case colOffset:
			b.(*array.Int64Builder).Append(r.Offset)
		case colTimestamp:
			b.(*array.TimestampBuilder).Append(arrow.Timestamp(r.Timestamp * 1000))
		case colKey:
			appendBytes(b, r.Key)
		case colRawValue:
			appendBytes(b, r.Value)
		case colHeaders:
			mb := b.(*array.MapBuilder)
			if len(r.Headers) == 0 {
				mb.AppendNull()
				continue
			}
			mb.Append(true)
			for _, h := range r.Headers {
				mb.KeyBuilder().(*array.StringBuilder).Append(h.Key)
				appendBytes(mb.ItemBuilder(), h.Value)
			}
		default:
			appendValue(b, c.value.FieldList[vi].Type, vals[vi])
			vi++
		}
	}
	c.n++
	return nil
}

func appendBytes(b array.Builder, v []byte) {
	if v == nil {
		b.AppendNull()
		return
	}
	b.(*array.BinaryBuilder).Append(v)
}

// valueRow decodes a wire-format value and projects it onto the value
// columns.
func (c *Converter) valueRow(ctx context.Context, v []byte) ([]any, error) {
	if len(v) < 5 || v[0] != wireMagic {
		return nil, fmt.Errorf("%w: the value is not in the schema registry's wire format (no magic byte 0 and 4-byte schema id)", ErrConvert)
	}
	id := int(binary.BigEndian.Uint32(v[1:5]))
	w, err := c.writer(ctx, id)
	if err != nil {
		return nil, err
	}
	out, err := w.decode(v[5:], c.value)
	var nc *NewColumnsError
	if errors.As(err, &nc) {
		nc.SchemaID = id
		return nil, nc
	}
	if err != nil {
		return nil, fmt.Errorf("%w: schema id %d: %v", ErrConvert, id, err)
	}
	if out == nil {
		return nil, fmt.Errorf("%w: schema id %d: the value decodes as null", ErrConvert, id)
	}
	return out.([]any), nil
}

// writer returns the compiled writer schema of id, reading it once.
func (c *Converter) writer(ctx context.Context, id int) (*writer, error) {
	if w, ok := c.writers[id]; ok {
		return w, nil
	}
	s, _, err := c.schemas.SchemaByID(ctx, id)
	if errors.Is(err, registry.ErrSchemaNotFound) {
		return nil, fmt.Errorf("%w: unknown schema id %d: %v", ErrConvert, id, err)
	}
	if err != nil {
		return nil, fmt.Errorf("tableflow: read schema id %d: %w", id, err)
	}
	w := &writer{schema: s}
	if _, ok := s.(*protobuf.Schema); ok {
		w.messages = map[protoreflect.FullName]*writerMessage{}
	} else if w.root, w.err = (&compiler{}).valueShape(s); w.err == nil {
		w.proj = compileProjection(c.value, w.root.typ, "", &w.extra)
	}
	c.writers[id] = w
	return w, nil
}

// decode decodes a payload with the writer's schema and projects it onto
// the value columns (value: the struct type of the table's value columns).
func (w *writer) decode(payload []byte, value *iceberg.StructType) (any, error) {
	if w.messages == nil {
		if w.err != nil {
			return nil, w.err
		}
		if len(w.extra) > 0 {
			return nil, &NewColumnsError{Schema: w.schema, Fields: w.extra}
		}
		v, err := w.schema.Decode(payload)
		if err != nil {
			return nil, err
		}
		// A record root never decodes as null; another root is wrapped
		// in a struct whose conv takes a null (wrapRoot).
		cv, err := w.root.conv(v)
		if err != nil {
			return nil, err
		}
		return w.proj(cv)
	}
	msg, err := w.schema.(*protobuf.Schema).Message(payload)
	if err != nil {
		return nil, err
	}
	md := msg.Descriptor()
	wm, ok := w.messages[md.FullName()]
	if !ok {
		wm = &writerMessage{}
		if wm.root, wm.err = (&compiler{}).protoMessage(md, "", map[string]bool{}); wm.err == nil {
			wm.proj = compileProjection(value, wm.root.typ, "", &wm.extra)
		}
		w.messages[md.FullName()] = wm
	}
	if wm.err != nil {
		return nil, wm.err
	}
	if len(wm.extra) > 0 {
		return nil, &NewColumnsError{Schema: w.schema, Fields: wm.extra}
	}
	cv, err := wm.root.conv(msg)
	if err != nil {
		return nil, err
	}
	return wm.proj(cv)
}

// projector reads a column value of a writer's type as the table's type.
type projector func(v any) (any, error)

// compileProjection returns the projector reading values of writer type
// w as table type t, matching struct fields by name: fields the writer
// lacks are null, and a required one an error; a primitive is read as
// itself or promoted (int → long, float → double, decimal to a larger
// precision); a struct becomes []any in t's field order. Types that do
// not match fail only when a value is there to read (a writer's field of
// another type that is null in a record does not refuse the record).
// The paths of writer fields t lacks are added to extra.
func compileProjection(t, w iceberg.Type, path string, extra *[]string) projector {
	where := path
	if where == "" {
		where = "the value"
	}
	mismatch := func(v any) (any, error) {
		if v == nil {
			return nil, nil
		}
		return nil, fmt.Errorf("column %s is %s, the writer's schema has %s (type mismatch)", where, t, w)
	}
	switch tt := t.(type) {
	case *iceberg.StructType:
		wt, ok := w.(*iceberg.StructType)
		if !ok {
			return mismatch
		}
		type fieldPlan struct {
			name, path string
			required   bool
			proj       projector // nil: the writer lacks the field
		}
		writerFields := make(map[string]iceberg.Type, len(wt.FieldList))
		for _, f := range wt.FieldList {
			writerFields[f.Name] = f.Type
		}
		tableFields := make(map[string]bool, len(tt.FieldList))
		for _, f := range tt.FieldList {
			tableFields[f.Name] = true
		}
		for _, f := range wt.FieldList {
			if !tableFields[f.Name] {
				*extra = append(*extra, joinPath(path, f.Name))
			}
		}
		plan := make([]fieldPlan, len(tt.FieldList))
		for i, f := range tt.FieldList {
			fp := fieldPlan{name: f.Name, path: joinPath(path, f.Name), required: f.Required}
			if ft, ok := writerFields[f.Name]; ok {
				fp.proj = compileProjection(f.Type, ft, fp.path, extra)
			}
			plan[i] = fp
		}
		return func(v any) (any, error) {
			if v == nil {
				return nil, nil
			}
			m := v.(map[string]any)
			out := make([]any, len(plan))
			for i, f := range plan {
				if f.proj != nil {
					pv, err := f.proj(m[f.name])
					if err != nil {
						return nil, err
					}
					out[i] = pv
				}
				if out[i] == nil && f.required {
					return nil, fmt.Errorf("required column %s has no value", f.path)
				}
			}
			return out, nil
		}
	case *iceberg.ListType:
		wt, ok := w.(*iceberg.ListType)
		if !ok {
			return mismatch
		}
		elem := compileProjection(tt.Element, wt.Element, path+".element", extra)
		return func(v any) (any, error) {
			if v == nil {
				return nil, nil
			}
			l := v.([]any)
			out := make([]any, len(l))
			for i, e := range l {
				pv, err := elem(e)
				if err != nil {
					return nil, err
				}
				if pv == nil && tt.ElementRequired {
					return nil, fmt.Errorf("list %s has a null element, the column allows none", where)
				}
				out[i] = pv
			}
			return out, nil
		}
	case *iceberg.MapType:
		wt, ok := w.(*iceberg.MapType)
		if !ok {
			return mismatch
		}
		key := compileProjection(tt.KeyType, wt.KeyType, path+".key", extra)
		val := compileProjection(tt.ValueType, wt.ValueType, path+".value", extra)
		return func(v any) (any, error) {
			if v == nil {
				return nil, nil
			}
			es := v.([]mapEntry)
			out := make([]mapEntry, len(es))
			for i, e := range es {
				k, err := key(e.key)
				if err != nil {
					return nil, err
				}
				pv, err := val(e.value)
				if err != nil {
					return nil, err
				}
				if pv == nil && tt.ValueRequired {
					return nil, fmt.Errorf("map %s has a null value, the column allows none", where)
				}
				out[i] = mapEntry{key: k, value: pv}
			}
			return out, nil
		}
	case iceberg.PrimitiveType:
		if _, ok := w.(iceberg.PrimitiveType); !ok || !promotable(w, t) {
			return mismatch
		}
		_, toLong := t.(iceberg.Int64Type)
		_, fromInt := w.(iceberg.Int32Type)
		_, toDouble := t.(iceberg.Float64Type)
		_, fromFloat := w.(iceberg.Float32Type)
		switch {
		case toLong && fromInt:
			return func(v any) (any, error) {
				if v == nil {
					return nil, nil
				}
				return int64(v.(int32)), nil
			}
		case toDouble && fromFloat:
			return func(v any) (any, error) {
				if v == nil {
					return nil, nil
				}
				return float64(v.(float32)), nil
			}
		}
		// The same type, or a decimal of a larger precision and the same
		// scale: the unscaled value reads as it is.
		return func(v any) (any, error) { return v, nil }
	}
	return mismatch
}

// appendValue appends a projected column value of type t to b.
func appendValue(b array.Builder, t iceberg.Type, v any) {
	if v == nil {
		b.AppendNull()
		return
	}
	switch tt := t.(type) {
	case *iceberg.StructType:
		sb := b.(*array.StructBuilder)
		sb.Append(true)
		vals := v.([]any)
		for i, f := range tt.FieldList {
			appendValue(sb.FieldBuilder(i), f.Type, vals[i])
		}
	case *iceberg.ListType:
		lb := b.(*array.ListBuilder)
		lb.Append(true)
		for _, e := range v.([]any) {
			appendValue(lb.ValueBuilder(), tt.Element, e)
		}
	case *iceberg.MapType:
		mb := b.(*array.MapBuilder)
		mb.Append(true)
		for _, e := range v.([]mapEntry) {
			appendValue(mb.KeyBuilder(), tt.KeyType, e.key)
			appendValue(mb.ItemBuilder(), tt.ValueType, e.value)
		}
	case iceberg.BooleanType:
		b.(*array.BooleanBuilder).Append(v.(bool))
	case iceberg.Int32Type:
		b.(*array.Int32Builder).Append(v.(int32))
	case iceberg.Int64Type:
		b.(*array.Int64Builder).Append(v.(int64))
	case iceberg.Float32Type:
		b.(*array.Float32Builder).Append(v.(float32))
	case iceberg.Float64Type:
		b.(*array.Float64Builder).Append(v.(float64))
	case iceberg.DecimalType:
		b.(*array.Decimal128Builder).Append(v.(decimal128.Num))
	case iceberg.DateType:
		b.(*array.Date32Builder).Append(arrow.Date32(v.(int32)))
	case iceberg.TimeType:
		b.(*array.Time64Builder).Append(arrow.Time64(v.(int64)))
	case iceberg.TimestampType, iceberg.TimestampTzType:
		b.(*array.TimestampBuilder).Append(arrow.Timestamp(v.(int64)))
	case iceberg.StringType:
		b.(*array.StringBuilder).Append(v.(string))
	case iceberg.BinaryType:
		b.(*array.BinaryBuilder).Append(v.([]byte))
	case iceberg.FixedType:
		b.(*array.FixedSizeBinaryBuilder).Append(v.([]byte))
	case iceberg.UUIDType:
		b.(*extensions.UUIDBuilder).Append(v.(uuid.UUID))
	default:
		// The table schema's types all come from TableSchema, which
		// makes none other.
		panic(fmt.Sprintf("tableflow: no Arrow builder for column type %s", t))
	}
}
