package tableflow

// A source's rows as record values: plain values read from Arrow, then
// JSON, or Avro, JSON Schema or Protobuf (source_protobuf.go) in the
// Confluent wire format.

import (
	"cmp"
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"math/big"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	hamba "github.com/hamba/avro/v2"
	"github.com/twmb/franz-go/pkg/kmsg"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/runnel-dev/runnel/internal/registry"
	"github.com/runnel-dev/runnel/internal/registry/protobuf"
)

// Plain values of table cells other than Go's own (nil, bool, int32,
// int64, float32, float64, string, []byte, time.Time for timestamps,
// time.Duration for times of day, map[string]any for structs, []any for
// lists).
type (
	dateValue    int32 // days since 1970-01-01
	decimalValue struct {
		unscaled *big.Int
		scale    int32
	}
	uuidValue [16]byte
)

// arrowValue returns cell i of arr as a plain value.
func arrowValue(arr arrow.Array, i int) (any, error) {
	if arr.IsNull(i) {
		return nil, nil
	}
	switch a := arr.(type) {
	case *array.Boolean:
		return a.Value(i), nil
	case *array.Int8:
		return int32(a.Value(i)), nil
	case *array.Int16:
		return int32(a.Value(i)), nil
	case *array.Int32:
		return a.Value(i), nil
	case *array.Int64:
		return a.Value(i), nil
	case *array.Float32:
		return a.Value(i), nil
	case *array.Float64:
		return a.Value(i), nil
	case *array.String:
		return a.Value(i), nil
	case *array.LargeString:
		return a.Value(i), nil
	case *array.StringView:
		return a.Value(i), nil
	case *array.Binary:
		return slices.Clone(a.Value(i)), nil
	case *array.LargeBinary:
		return slices.Clone(a.Value(i)), nil
	case *array.BinaryView:
		return slices.Clone(a.Value(i)), nil
	case *array.FixedSizeBinary:
		return slices.Clone(a.Value(i)), nil
	case *array.Timestamp:
		unit := a.DataType().(*arrow.TimestampType).Unit
		return a.Value(i).ToTime(unit).UTC(), nil
	case *array.Date32:
		return dateValue(a.Value(i)), nil
	case *array.Date64:
		return dateValue(int64(a.Value(i)) / 86_400_000), nil
	case *array.Time64:
		unit := a.DataType().(*arrow.Time64Type).Unit
		return time.Duration(int64(a.Value(i)) * int64(unit.Multiplier())), nil
	case *array.Time32:
		unit := a.DataType().(*arrow.Time32Type).Unit
		return time.Duration(int64(a.Value(i)) * int64(unit.Multiplier())), nil
	case *array.Decimal128:
		v := a.Value(i)
		return decimalValue{unscaled: v.BigInt(), scale: a.DataType().(*arrow.Decimal128Type).Scale}, nil
	case *array.Struct:
		st := a.DataType().(*arrow.StructType)
		out := make(map[string]any, a.NumField())
		for j := range a.NumField() {
			v, err := arrowValue(a.Field(j), i)
			if err != nil {
				return nil, err
			}
			out[st.Field(j).Name] = v
		}
		return out, nil
	case *array.Map:
		start, end := a.ValueOffsets(i)
		keys, items := a.Keys(), a.Items()
		out := make([]mapEntry, 0, end-start)
		for j := start; j < end; j++ {
			k, err := arrowValue(keys, int(j))
			if err != nil {
				return nil, err
			}
			v, err := arrowValue(items, int(j))
			if err != nil {
				return nil, err
			}
			out = append(out, mapEntry{k, v})
		}
		return out, nil
	case array.ListLike:
		start, end := a.ValueOffsets(i)
		vals := a.ListValues()
		out := make([]any, 0, end-start)
		for j := start; j < end; j++ {
			v, err := arrowValue(vals, int(j))
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		}
		return out, nil
	case array.ExtensionArray:
		v, err := arrowValue(a.Storage(), i)
		if b, ok := v.([]byte); ok && len(b) == 16 && strings.Contains(a.ExtensionType().ExtensionName(), "uuid") {
			return uuidValue(b), err
		}
		return v, err
	}
	return nil, fmt.Errorf("%w: column type %s is not supported", ErrSourceRow, arr.DataType())
}

// valueEncoder encodes a row (without _key) as a record value.
type valueEncoder struct {
	id   int // schema id; 0: JSON without a schema
	avro hamba.Schema
	json registry.Schema // a JSON Schema to check values against
	// proto is the message of a Protobuf schema: its file's first, the
	// one the materialiser types a table from.
	proto protoreflect.MessageDescriptor
}

// latestEncoder returns the encoder of topic's value subject's latest
// version, or the schemaless JSON one.
func (s *Source) latestEncoder(ctx context.Context, topic string) (valueEncoder, error) {
	if s.o.Schemas == nil {
		return valueEncoder{}, nil
	}
	if cfg, err := s.o.Log.TopicConfig(topic); err == nil && cfg.ValueSubjectStrategy != "" && cfg.ValueSubjectStrategy != "TopicNameStrategy" {
		// The subject would be named after a record the row does not name.
		return valueEncoder{}, fmt.Errorf("tableflow: topic %s uses the %s value subject name strategy; a table source encodes values with TopicNameStrategy subjects only", topic, cfg.ValueSubjectStrategy)
	}
	sc, ss, err := s.o.Schemas.LatestForSubject(ctx, topic+"-value")
	if errors.Is(err, registry.ErrSubjectNotFound) || errors.Is(err, registry.ErrVersionNotFound) {
		return valueEncoder{}, nil
	}
	if err != nil {
		return valueEncoder{}, fmt.Errorf("tableflow: value schema of %s: %w", topic, err)
	}
	return newValueEncoder(ss.ID, ss.Type, sc)
}

// encoderByID returns the encoder of schema id (0: schemaless JSON).
func (s *Source) encoderByID(ctx context.Context, id int) (valueEncoder, error) {
	if id == 0 {
		return valueEncoder{}, nil
	}
	if s.o.Schemas == nil {
		return valueEncoder{}, fmt.Errorf("tableflow: pending batch uses schema %d but no registry is configured", id)
	}
	sc, info, err := s.o.Schemas.SchemaByID(ctx, id)
	if err != nil {
		return valueEncoder{}, fmt.Errorf("tableflow: value schema %d: %w", id, err)
	}
	return newValueEncoder(id, info.Type, sc)
}

func newValueEncoder(id int, typ string, sc registry.Schema) (valueEncoder, error) {
	switch typ {
	case "", "AVRO":
		a, ok := sc.(interface{ Avro() hamba.Schema })
		if !ok {
			return valueEncoder{}, fmt.Errorf("tableflow: Avro schema %d cannot be read", id)
		}
		return valueEncoder{id: id, avro: a.Avro()}, nil
	case "JSON":
		return valueEncoder{id: id, json: sc}, nil
	case protobuf.TypeName:
		p, ok := sc.(*protobuf.Schema)
		if !ok {
			return valueEncoder{}, fmt.Errorf("tableflow: Protobuf schema %d cannot be read", id)
		}
		ms := p.File().Messages()
		if ms.Len() == 0 {
			return valueEncoder{}, fmt.Errorf("tableflow: the topic's value schema %d declares no Protobuf message", id)
		}
		return valueEncoder{id: id, proto: ms.Get(0)}, nil
	}
	return valueEncoder{}, fmt.Errorf("tableflow: the topic's value schema %d is %s; a table source encodes values with Avro, JSON Schema or Protobuf only", id, typ)
}

// encode returns row's value: the wire format of the encoder's schema, or
// plain JSON.
func (e valueEncoder) encode(row map[string]any) ([]byte, error) {
	if e.proto != nil {
		return encodeProtobuf(e.id, e.proto, row)
	}
	if e.avro != nil {
		v, err := avroValue(e.avro, row, "")
		if err != nil {
			return nil, err
		}
		body, err := hamba.Marshal(e.avro, v)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrSourceRow, err)
		}
		return append(wireHeader(e.id), body...), nil
	}
	body, err := json.Marshal(jsonValue(row))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrSourceRow, err)
	}
	if e.json == nil {
		return body, nil
	}
	if _, err := e.json.Decode(body); err != nil {
		return nil, fmt.Errorf("%w: does not fit JSON Schema %d: %v", ErrSourceRow, e.id, err)
	}
	return append(wireHeader(e.id), body...), nil
}

// wireHeader is the Confluent wire format's magic byte and schema id.
func wireHeader(id int) []byte {
	h := make([]byte, 5, 64)
	binary.BigEndian.PutUint32(h[1:], uint32(id))
	return h
}

// toRecord turns a row into a record: key from _key, timestamp from
// _timestamp (else snapshotMs), the other columns as the value. The
// timestamp travels in TimestampDelta64 until encodeSourceBatch.
func toRecord(row sourceRow, enc valueEncoder, snapshotMs int64) (kmsg.Record, error) {
	var rec kmsg.Record
	rec.TimestampDelta64 = snapshotMs
	if t, ok := row.cols[ColTimestamp].(time.Time); ok {
		rec.TimestampDelta64 = t.UnixMilli()
	}
	value := row.cols
	if k, ok := row.cols[ColKey]; ok {
		switch k := k.(type) {
		case nil:
		case []byte:
			rec.Key = k
		case string:
			rec.Key = []byte(k)
		default:
			return rec, fmt.Errorf("%w: column %s is %T, not binary or string", ErrSourceRow, ColKey, k)
		}
		value = maps.Clone(row.cols)
		delete(value, ColKey)
	}
	v, err := enc.encode(value)
	if err != nil {
		return rec, err
	}
	rec.Value = v
	return rec, nil
}

// jsonValue converts a plain value to what encoding/json renders as the
// row's JSON.
func jsonValue(v any) any {
	switch v := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, x := range v {
			out[k] = jsonValue(x)
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, x := range v {
			out[i] = jsonValue(x)
		}
		return out
	case []mapEntry:
		obj := make(map[string]any, len(v))
		list := make([]any, 0, len(v))
		textKeys := true
		for _, e := range v {
			k, ok := e.key.(string)
			textKeys = textKeys && ok
			obj[k] = jsonValue(e.value)
			list = append(list, map[string]any{"key": jsonValue(e.key), "value": jsonValue(e.value)})
		}
		if textKeys {
			return obj
		}
		return list
	case time.Time:
		return v.Format("2006-01-02T15:04:05.999999Z07:00")
	case dateValue:
		return time.Unix(int64(v)*86400, 0).UTC().Format(time.DateOnly)
	case time.Duration:
		return time.Unix(0, 0).UTC().Add(v).Format("15:04:05.000000")
	case decimalValue:
		return json.Number(decimalString(v))
	case uuidValue:
		return uuidString(v)
	case float32:
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return strconv.FormatFloat(float64(v), 'g', -1, 32)
		}
	case float64:
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return strconv.FormatFloat(v, 'g', -1, 64)
		}
	}
	return v
}

func decimalString(d decimalValue) string {
	return new(big.Rat).SetFrac(d.unscaled, new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(d.scale)), nil)).FloatString(int(max(d.scale, 0)))
}

func uuidString(u uuidValue) string {
	h := hex.EncodeToString(u[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// avroValue converts plain value v to what hamba/avro encodes as schema s:
// records and maps as map[string]any, unions as a one-entry map naming the
// branch (an empty one for null), logical types as hamba takes them.
func avroValue(s hamba.Schema, v any, path string) (any, error) {
	fail := func() (any, error) {
		return nil, fmt.Errorf("%w: %s: %T does not fit Avro %s", ErrSourceRow, cmp.Or(path, "value"), v, s.Type())
	}
	if ref, ok := s.(*hamba.RefSchema); ok {
		s = ref.Schema()
	}
	logical := ""
	if l, ok := s.(hamba.LogicalTypeSchema); ok && l.Logical() != nil {
		logical = string(l.Logical().Type())
	}
	switch s := s.(type) {
	case *hamba.RecordSchema:
		m, ok := v.(map[string]any)
		if !ok {
			return fail()
		}
		out := make(map[string]any, len(s.Fields()))
		for _, f := range s.Fields() {
			fv, present := m[f.Name()]
			if (!present || fv == nil) && f.HasDefault() {
				if x, err := avroValue(f.Type(), f.Default(), ""); err == nil {
					out[f.Name()] = x
				} else {
					out[f.Name()] = f.Default()
				}
				continue
			}
			x, err := avroValue(f.Type(), fv, strings.TrimPrefix(path+"."+f.Name(), "."))
			if err != nil {
				return nil, err
			}
			out[f.Name()] = x
		}
		return out, nil
	case *hamba.UnionSchema:
		for _, branch := range s.Types() {
			if (v == nil) != (branch.Type() == hamba.Null) {
				continue
			}
			if v == nil {
				return map[string]any{}, nil
			}
			if x, err := avroValue(branch, v, path); err == nil {
				return map[string]any{unionBranchName(branch): x}, nil
			}
		}
		return fail()
	case *hamba.ArraySchema:
		l, ok := v.([]any)
		if !ok {
			return fail()
		}
		out := make([]any, len(l))
		for i, x := range l {
			y, err := avroValue(s.Items(), x, fmt.Sprintf("%s[%d]", path, i))
			if err != nil {
				return nil, err
			}
			out[i] = y
		}
		return out, nil
	case *hamba.MapSchema:
		l, ok := v.([]mapEntry)
		if !ok {
			return fail()
		}
		out := make(map[string]any, len(l))
		for _, e := range l {
			k, ok := e.key.(string)
			if !ok {
				return fail()
			}
			y, err := avroValue(s.Values(), e.value, path+"."+k)
			if err != nil {
				return nil, err
			}
			out[k] = y
		}
		return out, nil
	case *hamba.EnumSchema:
		str, ok := v.(string)
		if !ok || !slices.Contains(s.Symbols(), str) {
			return fail()
		}
		return str, nil
	case *hamba.FixedSchema:
		if d, ok := v.(decimalValue); ok && logical == "decimal" {
			return decimalRat(d), nil
		}
		b, ok := v.([]byte)
		if u, isUUID := v.(uuidValue); isUUID {
			b, ok = u[:], true
		}
		if !ok || len(b) != s.Size() {
			return fail()
		}
		arr := reflect.New(reflect.ArrayOf(len(b), reflect.TypeFor[byte]())).Elem()
		reflect.Copy(arr, reflect.ValueOf(b))
		return arr.Interface(), nil
	case *hamba.NullSchema:
		if v != nil {
			return fail()
		}
		return nil, nil
	case *hamba.PrimitiveSchema:
		return avroPrimitive(s.Type(), logical, v, fail)
	}
	return fail()
}

func avroPrimitive(typ hamba.Type, logical string, v any, fail func() (any, error)) (any, error) {
	switch typ {
	case hamba.Null:
		if v == nil {
			return nil, nil
		}
	case hamba.Boolean:
		if b, ok := v.(bool); ok {
			return b, nil
		}
	case hamba.Int:
		switch x := v.(type) {
		case int32:
			if logical == "" {
				return int(x), nil
			}
		case int64:
			if logical == "" && x >= math.MinInt32 && x <= math.MaxInt32 {
				return int(x), nil
			}
		case dateValue:
			if logical == "date" {
				return time.Unix(int64(x)*86400, 0).UTC(), nil
			}
		case time.Duration:
			if logical == "time-millis" {
				return x, nil
			}
		}
	case hamba.Long:
		switch x := v.(type) {
		case int32:
			if logical == "" {
				return int64(x), nil
			}
		case int64:
			if logical == "" {
				return x, nil
			}
		case time.Time:
			if strings.HasPrefix(logical, "timestamp-") || strings.HasPrefix(logical, "local-timestamp-") {
				return x, nil
			}
		case time.Duration:
			if logical == "time-micros" {
				return x, nil
			}
		}
	case hamba.Float:
		switch x := v.(type) {
		case float32:
			return x, nil
		case int32:
			return float32(x), nil
		}
	case hamba.Double:
		switch x := v.(type) {
		case float64:
			return x, nil
		case float32:
			return float64(x), nil
		case int32:
			return float64(x), nil
		case int64:
			return float64(x), nil
		}
	case hamba.String:
		switch x := v.(type) {
		case string:
			return x, nil
		case uuidValue:
			return uuidString(x), nil
		}
	case hamba.Bytes:
		switch x := v.(type) {
		case []byte:
			if logical == "" {
				return x, nil
			}
		case decimalValue:
			if logical == "decimal" {
				return decimalRat(x), nil
			}
		}
	}
	return fail()
}

func decimalRat(d decimalValue) *big.Rat {
	return new(big.Rat).SetFrac(d.unscaled, new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(d.scale)), nil))
}

// unionBranchName is how hamba/avro names a union branch: a named type's
// full name, else the type with its logical type ("long.timestamp-micros").
func unionBranchName(s hamba.Schema) string {
	if ref, ok := s.(*hamba.RefSchema); ok {
		s = ref.Schema()
	}
	if n, ok := s.(hamba.NamedSchema); ok {
		return n.FullName()
	}
	name := string(s.Type())
	if l, ok := s.(hamba.LogicalTypeSchema); ok && l.Logical() != nil {
		name += "." + string(l.Logical().Type())
	}
	return name
}
