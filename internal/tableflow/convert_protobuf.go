package tableflow

import (
	"fmt"
	"strconv"

	"github.com/apache/arrow-go/v18/arrow/decimal128"
	"github.com/apache/iceberg-go"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// Protobuf messages become columns as follows: a message → struct (its
// fields by name, in declaration order), repeated → list, map → map (key
// int, long, string or boolean), enum → string (an undeclared number as
// its decimal text), int32/sint32/sfixed32 → int, int64/sint64/sfixed64
// and uint32/fixed32 → long, uint64/fixed64 → decimal(20, 0), float,
// double, bool, string and bytes as themselves;
// google.protobuf.Timestamp → timestamptz, the wrappers
// (google.protobuf.Int64Value, ...) → their optional scalar. A field
// without presence (a proto3 scalar, a repeated field, a map, a proto2
// required field) is required; a field with presence (messages, proto3
// optional, oneof members, proto2 optional) is optional. A message that
// contains itself is ErrUnsupportedSchema.
//
// Values are protoreflect values of a message decoded with the writer's
// descriptor.

// protoWrappers maps the wrapper messages to the kind of their value.
var protoWrappers = map[protoreflect.FullName]bool{
	"google.protobuf.DoubleValue": true, "google.protobuf.FloatValue": true,
	"google.protobuf.Int64Value": true, "google.protobuf.UInt64Value": true,
	"google.protobuf.Int32Value": true, "google.protobuf.UInt32Value": true,
	"google.protobuf.BoolValue": true, "google.protobuf.StringValue": true,
	"google.protobuf.BytesValue": true,
}

const protoTimestamp protoreflect.FullName = "google.protobuf.Timestamp"

// protoMessage compiles a message into a struct shape whose conv takes a
// protoreflect.Message.
func (c *compiler) protoMessage(md protoreflect.MessageDescriptor, path string, stack map[string]bool) (shape, error) {
	name := string(md.FullName())
	if stack[name] {
		where := path
		if where == "" {
			where = "(the value)"
		}
		return shape{}, fmt.Errorf("%w: field %s: message %s contains itself (recursive types have no table form)", ErrUnsupportedSchema, where, name)
	}
	stack[name] = true
	defer delete(stack, name)
	fds := md.Fields()
	fields := make([]namedShape, fds.Len())
	descs := make([]protoreflect.FieldDescriptor, fds.Len())
	for i := 0; i < fds.Len(); i++ {
		fd := fds.Get(i)
		sh, err := c.protoField(fd, joinPath(path, string(fd.Name())), stack)
		if err != nil {
			return shape{}, err
		}
		fields[i], descs[i] = namedShape{name: string(fd.Name()), shape: sh}, fd
	}
	return shape{typ: c.structType(fields), required: true, conv: func(v any) (any, error) {
		m := v.(protoreflect.Message)
		out := make(map[string]any, len(fields))
		for i, fd := range descs {
			if fd.HasPresence() && !m.Has(fd) {
				continue
			}
			cv, err := fields[i].conv(m.Get(fd))
			if err != nil {
				return nil, fmt.Errorf("%s: %w", fd.Name(), err)
			}
			out[fields[i].name] = cv
		}
		return out, nil
	}}, nil
}

// protoField compiles a field; conv takes the field's protoreflect.Value.
func (c *compiler) protoField(fd protoreflect.FieldDescriptor, path string, stack map[string]bool) (shape, error) {
	switch {
	case fd.IsMap():
		key, err := c.protoSingle(fd.MapKey(), path+".key", stack)
		if err != nil {
			return shape{}, err
		}
		val, err := c.protoSingle(fd.MapValue(), path+".value", stack)
		if err != nil {
			return shape{}, err
		}
		return shape{typ: c.mapType(key, val), required: true, conv: func(v any) (any, error) {
			m := v.(protoreflect.Value).Map()
			out := make([]mapEntry, 0, m.Len())
			var err error
			m.Range(func(k protoreflect.MapKey, e protoreflect.Value) bool {
				var ck, ce any
				if ck, err = key.conv(k.Value()); err == nil {
					ce, err = val.conv(e)
				}
				out = append(out, mapEntry{key: ck, value: ce})
				return err == nil
			})
			if err != nil {
				return nil, err
			}
			sortEntries(out)
			return out, nil
		}}, nil
	case fd.IsList():
		elem, err := c.protoSingle(fd, path+".element", stack)
		if err != nil {
			return shape{}, err
		}
		return shape{typ: c.listType(elem), required: true, conv: func(v any) (any, error) {
			l := v.(protoreflect.Value).List()
			out := make([]any, l.Len())
			for i := range out {
				cv, err := elem.conv(l.Get(i))
				if err != nil {
					return nil, fmt.Errorf("element %d: %w", i, err)
				}
				out[i] = cv
			}
			return out, nil
		}}, nil
	}
	sh, err := c.protoSingle(fd, path, stack)
	if err != nil {
		return shape{}, err
	}
	sh.required = !fd.HasPresence() || fd.Cardinality() == protoreflect.Required
	return sh, nil
}

// protoSingle compiles one value of fd's kind (a singular field, a list
// element, a map key or value); conv takes a protoreflect.Value. Messages
// inside lists and maps are always present, so required.
func (c *compiler) protoSingle(fd protoreflect.FieldDescriptor, path string, stack map[string]bool) (shape, error) {
	switch fd.Kind() {
	case protoreflect.MessageKind, protoreflect.GroupKind:
		md := fd.Message()
		switch {
		case md.FullName() == protoTimestamp:
			secs, nanos := md.Fields().ByName("seconds"), md.Fields().ByName("nanos")
			return shape{typ: iceberg.PrimitiveTypes.TimestampTz, required: true, conv: func(v any) (any, error) {
				m := v.(protoreflect.Value).Message()
				us, err := scaleTime(m.Get(secs).Int(), 1_000_000)
				if err != nil {
					return nil, err
				}
				return us + m.Get(nanos).Int()/1000, nil
			}}, nil
		case protoWrappers[md.FullName()]:
			vf := md.Fields().ByName("value")
			inner, err := c.protoSingle(vf, path, stack)
			if err != nil {
				return shape{}, err
			}
			return shape{typ: inner.typ, required: true, conv: func(v any) (any, error) {
				return inner.conv(v.(protoreflect.Value).Message().Get(vf))
			}}, nil
		}
		msg, err := c.protoMessage(md, path, stack)
		if err != nil {
			return shape{}, err
		}
		return shape{typ: msg.typ, required: true, conv: func(v any) (any, error) {
			return msg.conv(v.(protoreflect.Value).Message())
		}}, nil
	case protoreflect.EnumKind:
		ed := fd.Enum()
		return shape{typ: iceberg.PrimitiveTypes.String, required: true, conv: func(v any) (any, error) {
			n := v.(protoreflect.Value).Enum()
			if ev := ed.Values().ByNumber(n); ev != nil {
				return string(ev.Name()), nil
			}
			return strconv.Itoa(int(n)), nil
		}}, nil
	case protoreflect.BoolKind:
		return shape{typ: iceberg.PrimitiveTypes.Bool, required: true, conv: func(v any) (any, error) { return v.(protoreflect.Value).Bool(), nil }}, nil
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind:
		return shape{typ: iceberg.PrimitiveTypes.Int32, required: true, conv: func(v any) (any, error) { return int32(v.(protoreflect.Value).Int()), nil }}, nil
	case protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		return shape{typ: iceberg.PrimitiveTypes.Int64, required: true, conv: func(v any) (any, error) { return v.(protoreflect.Value).Int(), nil }}, nil
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind:
		return shape{typ: iceberg.PrimitiveTypes.Int64, required: true, conv: func(v any) (any, error) { return int64(v.(protoreflect.Value).Uint()), nil }}, nil
	case protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		return shape{typ: iceberg.DecimalTypeOf(20, 0), required: true, conv: func(v any) (any, error) {
			return decimal128.FromU64(v.(protoreflect.Value).Uint()), nil
		}}, nil
	case protoreflect.FloatKind:
		return shape{typ: iceberg.PrimitiveTypes.Float32, required: true, conv: func(v any) (any, error) { return float32(v.(protoreflect.Value).Float()), nil }}, nil
	case protoreflect.DoubleKind:
		return shape{typ: iceberg.PrimitiveTypes.Float64, required: true, conv: func(v any) (any, error) { return v.(protoreflect.Value).Float(), nil }}, nil
	case protoreflect.StringKind:
		return shape{typ: iceberg.PrimitiveTypes.String, required: true, conv: func(v any) (any, error) { return v.(protoreflect.Value).String(), nil }}, nil
	case protoreflect.BytesKind:
		return shape{typ: iceberg.PrimitiveTypes.Binary, required: true, conv: func(v any) (any, error) {
			return append([]byte(nil), v.(protoreflect.Value).Bytes()...), nil
		}}, nil
	}
	return shape{}, fmt.Errorf("%w: field %s: Protobuf kind %s has no column type", ErrUnsupportedSchema, path, fd.Kind())
}
