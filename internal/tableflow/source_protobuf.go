package tableflow

// A source's rows as Protobuf messages: the inverse of convert_protobuf.go,
// from the plain values arrowValue reads to a dynamic message of the value
// subject's first message.

import (
	"cmp"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/dynamicpb"

	"github.com/runnel-dev/runnel/internal/registry/protobuf"
)

// recordColumns are the fixed columns that describe a record rather than
// its value: a message without a field of that name leaves them out of the
// value instead of refusing the row, so a table Runnel materialised can be
// a source (_key, the key, is never in the value).
var recordColumns = map[string]bool{ColPartition: true, ColOffset: true, ColTimestamp: true, ColHeaders: true}

// encodeProtobuf encodes row as message md in the Confluent wire format:
// the header, the message indexes of the file's first message (the single
// byte 0), the message.
func encodeProtobuf(id int, md protoreflect.MessageDescriptor, row map[string]any) ([]byte, error) {
	msg, err := protoMessageOf(md, row, "", true)
	if err != nil {
		return nil, err
	}
	body, err := proto.MarshalOptions{Deterministic: true}.Marshal(msg)
	if err != nil {
		// A proto2 required field without a column, a proto3 string that
		// is not UTF-8.
		return nil, fmt.Errorf("%w: does not fit Protobuf message %s: %v", ErrSourceRow, md.FullName(), err)
	}
	return append(protobuf.AppendIndexes(wireHeader(id), []int{0}), body...), nil
}

// protoMessageOf builds message md from a row or struct: columns matched
// to fields by name, a null or missing one left unset, one the message has
// no field for refused (at the top, a record column is left out instead).
func protoMessageOf(md protoreflect.MessageDescriptor, cols map[string]any, path string, top bool) (*dynamicpb.Message, error) {
	msg := dynamicpb.NewMessage(md)
	oneofs := map[protoreflect.FullName]string{}
	for _, name := range slices.Sorted(maps.Keys(cols)) {
		v := cols[name]
		at := joinPath(path, name)
		fd := md.Fields().ByName(protoreflect.Name(name))
		if fd == nil {
			if top && recordColumns[name] {
				continue
			}
			return nil, fmt.Errorf("%w: column %s: Protobuf message %s has no field %s", ErrSourceRow, at, md.FullName(), name)
		}
		if v == nil {
			continue
		}
		if od := fd.ContainingOneof(); od != nil && !od.IsSynthetic() {
			if other, ok := oneofs[od.FullName()]; ok {
				return nil, fmt.Errorf("%w: columns %s and %s are both set; they are members of Protobuf oneof %s", ErrSourceRow, joinPath(path, other), at, od.FullName())
			}
			oneofs[od.FullName()] = name
		}
		if err := setProtoField(msg, fd, v, at); err != nil {
			return nil, err
		}
	}
	return msg, nil
}

// setProtoField sets field fd of msg to plain value v (not nil).
func setProtoField(msg *dynamicpb.Message, fd protoreflect.FieldDescriptor, v any, path string) error {
	switch {
	case fd.IsMap():
		entries, ok := v.([]mapEntry)
		if !ok {
			return protoMismatch(path, v, "a map")
		}
		m := msg.NewField(fd).Map()
		for _, e := range entries {
			k, err := protoSingle(fd.MapKey(), e.key, path+".key")
			if err != nil {
				return err
			}
			x, err := protoSingle(fd.MapValue(), e.value, fmt.Sprintf("%s[%v]", path, e.key))
			if err != nil {
				return err
			}
			m.Set(k.MapKey(), x)
		}
		msg.Set(fd, protoreflect.ValueOfMap(m))
	case fd.IsList():
		elems, ok := v.([]any)
		if !ok {
			return protoMismatch(path, v, "a list")
		}
		l := msg.NewField(fd).List()
		for i, e := range elems {
			x, err := protoSingle(fd, e, fmt.Sprintf("%s[%d]", path, i))
			if err != nil {
				return err
			}
			l.Append(x)
		}
		msg.Set(fd, protoreflect.ValueOfList(l))
	default:
		x, err := protoSingle(fd, v, path)
		if err != nil {
			return err
		}
		msg.Set(fd, x)
	}
	return nil
}

// protoSingle converts plain value v to one value of fd's kind (a singular
// field, a list element, a map key or value). Lists and maps hold no
// nulls, so nil is refused here.
func protoSingle(fd protoreflect.FieldDescriptor, v any, path string) (protoreflect.Value, error) {
	bad := func() (protoreflect.Value, error) {
		return protoreflect.Value{}, protoMismatch(path, v, protoKindName(fd))
	}
	switch fd.Kind() {
	case protoreflect.MessageKind, protoreflect.GroupKind:
		md := fd.Message()
		switch {
		case md.FullName() == protoTimestamp:
			t, ok := v.(time.Time)
			if !ok {
				return bad()
			}
			m := dynamicpb.NewMessage(md)
			m.Set(md.Fields().ByName("seconds"), protoreflect.ValueOfInt64(t.Unix()))
			m.Set(md.Fields().ByName("nanos"), protoreflect.ValueOfInt32(int32(t.Nanosecond())))
			return protoreflect.ValueOfMessage(m), nil
		case protoWrappers[md.FullName()]:
			if v == nil {
				return bad()
			}
			vf := md.Fields().ByName("value")
			x, err := protoSingle(vf, v, path)
			if err != nil {
				return protoreflect.Value{}, err
			}
			m := dynamicpb.NewMessage(md)
			m.Set(vf, x)
			return protoreflect.ValueOfMessage(m), nil
		}
		cols, ok := v.(map[string]any)
		if !ok {
			return bad()
		}
		m, err := protoMessageOf(md, cols, path, false)
		if err != nil {
			return protoreflect.Value{}, err
		}
		return protoreflect.ValueOfMessage(m), nil
	case protoreflect.EnumKind:
		return protoEnum(fd.Enum(), v, path)
	case protoreflect.BoolKind:
		if b, ok := v.(bool); ok {
			return protoreflect.ValueOfBool(b), nil
		}
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind:
		if n, ok := protoInt(v); ok && n >= math.MinInt32 && n <= math.MaxInt32 {
			return protoreflect.ValueOfInt32(int32(n)), nil
		}
	case protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		if n, ok := protoInt(v); ok {
			return protoreflect.ValueOfInt64(n), nil
		}
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind:
		if n, ok := protoInt(v); ok && n >= 0 && n <= math.MaxUint32 {
			return protoreflect.ValueOfUint32(uint32(n)), nil
		}
	case protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		if n, ok := protoInt(v); ok && n >= 0 {
			return protoreflect.ValueOfUint64(uint64(n)), nil
		}
		// decimal(20, 0), the column type of a uint64 field.
		if d, ok := v.(decimalValue); ok {
			if r := decimalRat(d); r.IsInt() && r.Num().Sign() >= 0 && r.Num().IsUint64() {
				return protoreflect.ValueOfUint64(r.Num().Uint64()), nil
			}
		}
	case protoreflect.FloatKind:
		switch x := v.(type) {
		case float32:
			return protoreflect.ValueOfFloat32(x), nil
		case int32:
			return protoreflect.ValueOfFloat32(float32(x)), nil
		}
	case protoreflect.DoubleKind:
		switch x := v.(type) {
		case float64:
			return protoreflect.ValueOfFloat64(x), nil
		case float32:
			return protoreflect.ValueOfFloat64(float64(x)), nil
		case int32:
			return protoreflect.ValueOfFloat64(float64(x)), nil
		case int64:
			return protoreflect.ValueOfFloat64(float64(x)), nil
		}
	case protoreflect.StringKind:
		switch x := v.(type) {
		case string:
			return protoreflect.ValueOfString(x), nil
		case uuidValue:
			return protoreflect.ValueOfString(uuidString(x)), nil
		}
	case protoreflect.BytesKind:
		if b, ok := v.([]byte); ok {
			return protoreflect.ValueOfBytes(b), nil
		}
	}
	return bad()
}

// protoEnum takes an enum value by name, or by number (a number column, or
// the decimal text the materialiser writes for an undeclared number); a
// closed (proto2) enum takes declared numbers only.
func protoEnum(ed protoreflect.EnumDescriptor, v any, path string) (protoreflect.Value, error) {
	n, ok := protoInt(v)
	s, isText := v.(string)
	if isText {
		if ev := ed.Values().ByName(protoreflect.Name(s)); ev != nil {
			return protoreflect.ValueOfEnum(ev.Number()), nil
		}
		x, err := strconv.ParseInt(s, 10, 32)
		n, ok = x, err == nil
	}
	switch {
	case !ok && !isText:
		return protoreflect.Value{}, protoMismatch(path, v, "enum "+string(ed.FullName()))
	case !ok || n < math.MinInt32 || n > math.MaxInt32 || ed.IsClosed() && ed.Values().ByNumber(protoreflect.EnumNumber(n)) == nil:
		return protoreflect.Value{}, fmt.Errorf("%w: %s: %v is not a value of Protobuf enum %s", ErrSourceRow, cmp.Or(path, "value"), v, ed.FullName())
	}
	return protoreflect.ValueOfEnum(protoreflect.EnumNumber(n)), nil
}

// protoInt returns an integer column's value.
func protoInt(v any) (int64, bool) {
	switch x := v.(type) {
	case int32:
		return int64(x), true
	case int64:
		return x, true
	}
	return 0, false
}

func protoKindName(fd protoreflect.FieldDescriptor) string {
	switch fd.Kind() {
	case protoreflect.MessageKind, protoreflect.GroupKind:
		return "message " + string(fd.Message().FullName())
	case protoreflect.EnumKind:
		return "enum " + string(fd.Enum().FullName())
	}
	return fd.Kind().String()
}

func protoMismatch(path string, v any, want string) error {
	if v == nil {
		return fmt.Errorf("%w: %s: null does not fit Protobuf %s (lists and maps hold no nulls)", ErrSourceRow, cmp.Or(path, "value"), want)
	}
	return fmt.Errorf("%w: %s: %T does not fit Protobuf %s", ErrSourceRow, cmp.Or(path, "value"), v, want)
}
