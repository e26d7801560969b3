package protobuf

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/dynamicpb"

	"github.com/runnel-dev/runnel/internal/registry"
)

// ErrUnknownMessage means a message name is not declared in the schema.
var ErrUnknownMessage = errors.New("protobuf: no such message in the schema")

// maxIndexes bounds the message index path a payload may claim; real
// schemas nest a handful of levels.
const maxIndexes = 100

// Decode reads a Confluent wire-format payload (what follows the magic
// byte and schema id): the message indexes selecting the message type,
// then its protobuf binary encoding. The whole message is decoded (every
// field, nested messages, required fields of proto2, UTF-8 of proto3
// strings) and returned as a map[string]any keyed by each field's JSON
// name:
//
//   - int32/sint32/sfixed32/int64/sint64/sfixed64 and unsigned values that
//     fit are int64, larger uint64 values stay uint64; float and double
//     are float64; bool, string and []byte as themselves;
//   - enums are their value name (the number, as int64, if the number is
//     not declared: proto3 enums are open);
//   - repeated fields are []any, maps are map[string]any with keys in
//     their decimal or true/false text, messages are map[string]any
//     (well-known types included, field by field);
//   - a field with explicit presence (message fields, proto3 optional,
//     proto2 optional) that is not set is nil; an unset member of a oneof
//     is left out; other unset fields have their default value.
//
// Unknown fields are accepted (Confluent's deserializers accept them:
// a producer may write a newer schema's fields under an older id); they
// must be well-formed wire data and are left out of the value. A declared
// field number carrying another wire type than its declared type (which
// protobuf's decoder would keep as an unknown field) is rejected: that is
// data of an incompatible schema, not of a newer one. Any
// malformation is an error wrapping registry.ErrInvalidPayload.
//
// A payload that fails and would decode as one of the file's top-level
// messages if read without message indexes gets that said in the error:
// some serializers (e.g. @kafkajs/confluent-schema-registry) write the
// message right after the schema id, which is not Confluent's framing.
func (s *Schema) Decode(payload []byte) (any, error) {
	msg, err := s.Message(payload)
	if err != nil {
		return nil, err
	}
	return messageValue(msg), nil
}

// Message is Decode returning the decoded message itself, for callers that
// render it with protobuf's own encodings (protojson). It is checked as
// Decode checks it and fails the same way.
func (s *Schema) Message(payload []byte) (protoreflect.Message, error) {
	msg, err := s.message(payload)
	if err != nil {
		return nil, s.explain(payload, err)
	}
	return msg, nil
}

func (s *Schema) message(payload []byte) (protoreflect.Message, error) {
	idx, rest, err := readIndexes(payload)
	if err != nil {
		return nil, err
	}
	md, err := s.messageAt(idx)
	if err != nil {
		return nil, err
	}
	msg := dynamicpb.NewMessage(md)
	if err := (proto.UnmarshalOptions{DiscardUnknown: false}).Unmarshal(rest, msg); err != nil {
		return nil, fmt.Errorf("%w: message .%s: %v", registry.ErrInvalidPayload, md.FullName(), err)
	}
	if err := checkUnknown(msg); err != nil {
		return nil, fmt.Errorf("%w: %v", registry.ErrInvalidPayload, err)
	}
	return msg, nil
}

// readIndexes splits the message index prefix off a payload. Confluent's
// encoding: a zig-zag varint count, then that many zig-zag varint indexes;
// a count of 0 (the single byte 0) stands for [0], the file's first
// message. Negative, overlong or oversized counts and indexes are errors
// wrapping registry.ErrInvalidPayload, never a panic or a large allocation.
func readIndexes(payload []byte) ([]int, []byte, error) {
	if len(payload) == 0 {
		return nil, nil, fmt.Errorf("%w: no message indexes: nothing follows the schema id", registry.ErrInvalidPayload)
	}
	count, n := binary.Varint(payload)
	switch {
	case n == 0:
		return nil, nil, fmt.Errorf("%w: truncated message index count (a varint cut off after %d bytes)", registry.ErrInvalidPayload, len(payload))
	case n < 0:
		return nil, nil, fmt.Errorf("%w: malformed message index count (a varint longer than 64 bits)", registry.ErrInvalidPayload)
	}
	payload = payload[n:]
	switch {
	case count == 0:
		return []int{0}, payload, nil
	case count < 0:
		return nil, nil, fmt.Errorf("%w: message index count %d is negative", registry.ErrInvalidPayload, count)
	case count > maxIndexes:
		return nil, nil, fmt.Errorf("%w: message index count %d exceeds the limit of %d", registry.ErrInvalidPayload, count, maxIndexes)
	case count > int64(len(payload)):
		return nil, nil, fmt.Errorf("%w: message index count %d but only %d bytes follow", registry.ErrInvalidPayload, count, len(payload))
	}
	idx := make([]int, count)
	for i := range idx {
		v, n := binary.Varint(payload)
		switch {
		case n == 0:
			return nil, nil, fmt.Errorf("%w: truncated message index %d of %d", registry.ErrInvalidPayload, i, count)
		case n < 0:
			return nil, nil, fmt.Errorf("%w: malformed message index %d of %d (a varint longer than 64 bits)", registry.ErrInvalidPayload, i, count)
		case v < 0:
			return nil, nil, fmt.Errorf("%w: message index %d of %d is negative (%d)", registry.ErrInvalidPayload, i, count, v)
		case v > math.MaxInt32:
			return nil, nil, fmt.Errorf("%w: message index %d of %d is %d, beyond any message", registry.ErrInvalidPayload, i, count, v)
		}
		idx[i] = int(v)
		payload = payload[n:]
	}
	return idx, payload, nil
}

// explain adds to a failure of payload what it most likely is when the
// payload, read as a bare message without indexes, decodes cleanly as one
// of the file's top-level messages (no unknown fields): a serializer that
// does not write Confluent's message indexes. Confluent framing of a path
// up to three levels deep cannot be mistaken for that: its first byte, the
// zig-zag count (0 to 6), read as a protobuf tag names field 0, which is
// invalid.
func (s *Schema) explain(payload []byte, err error) error {
	if len(payload) == 0 {
		return err
	}
	ms := s.file.Messages()
	for i := 0; i < ms.Len(); i++ {
		md := ms.Get(i)
		msg := dynamicpb.NewMessage(md)
		if proto.Unmarshal(payload, msg) != nil || hasUnknown(msg) {
			continue
		}
		return fmt.Errorf("%w; the payload lacks Confluent's message indexes: read without them it decodes as .%s "+
			"(the wire format is magic byte 0, the schema id, the message indexes, where the single byte 0 selects "+
			"the first message, then the message)", err, md.FullName())
	}
	return err
}

// hasUnknown reports whether m or any message inside it holds unknown
// fields.
func hasUnknown(m protoreflect.Message) bool {
	if len(m.GetUnknown()) > 0 {
		return true
	}
	found := false
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case fd.IsMap():
			if k := fd.MapValue().Kind(); k == protoreflect.MessageKind || k == protoreflect.GroupKind {
				v.Map().Range(func(_ protoreflect.MapKey, e protoreflect.Value) bool {
					found = hasUnknown(e.Message())
					return !found
				})
			}
		case fd.Kind() != protoreflect.MessageKind && fd.Kind() != protoreflect.GroupKind:
		case fd.IsList():
			for i := 0; i < v.List().Len() && !found; i++ {
				found = hasUnknown(v.List().Get(i).Message())
			}
		default:
			found = hasUnknown(v.Message())
		}
		return !found
	})
	return found
}

// messageAt follows a message index path: the first index picks a
// top-level message of the file, each further one a nested message of the
// previous (nested types in declaration order, map entries included, as
// in the descriptor).
func (s *Schema) messageAt(idx []int) (protoreflect.MessageDescriptor, error) {
	var md protoreflect.MessageDescriptor
	msgs := s.file.Messages()
	for depth, i := range idx {
		if i >= msgs.Len() {
			where := "the file"
			if md != nil {
				where = "message ." + string(md.FullName())
			}
			return nil, fmt.Errorf("%w: message index %v: %s has %d messages at depth %d, no index %d",
				registry.ErrInvalidPayload, idx, where, msgs.Len(), depth, i)
		}
		md = msgs.Get(i)
		msgs = md.Messages()
	}
	return md, nil
}

// MessageIndexes returns the message index path of a message in s, for
// the wire format's prefix. fullName is the message's full name, with or
// without a leading dot (e.g. "pkg.Order.Line").
func MessageIndexes(s registry.Schema, fullName string) ([]int, error) {
	ps, ok := s.(*Schema)
	if !ok {
		return nil, fmt.Errorf("protobuf: message indexes need a %s schema, not %T", TypeName, s)
	}
	want := protoreflect.FullName(strings.TrimPrefix(fullName, "."))
	var find func(ms protoreflect.MessageDescriptors, path []int) []int
	find = func(ms protoreflect.MessageDescriptors, path []int) []int {
		for i := 0; i < ms.Len(); i++ {
			m := ms.Get(i)
			p := append(append([]int(nil), path...), i)
			if m.FullName() == want {
				return p
			}
			if strings.HasPrefix(string(want), string(m.FullName())+".") {
				if got := find(m.Messages(), p); got != nil {
					return got
				}
			}
		}
		return nil
	}
	idx := find(ps.file.Messages(), nil)
	if idx == nil {
		return nil, fmt.Errorf("%w: %q", ErrUnknownMessage, fullName)
	}
	return idx, nil
}

// AppendIndexes appends the wire encoding of a message index path to b:
// a zig-zag varint count then each index as a zig-zag varint, except that
// [0] (the file's first message), and an empty path, are the single byte
// 0.
func AppendIndexes(b []byte, idx []int) []byte {
	if len(idx) == 0 || len(idx) == 1 && idx[0] == 0 {
		return append(b, 0)
	}
	b = binary.AppendVarint(b, int64(len(idx)))
	for _, i := range idx {
		b = binary.AppendVarint(b, int64(i))
	}
	return b
}

// messageValue converts a decoded message to plain Go values.
func messageValue(m protoreflect.Message) map[string]any {
	fields := m.Descriptor().Fields()
	out := make(map[string]any, fields.Len())
	for i := 0; i < fields.Len(); i++ {
		fd := fields.Get(i)
		if realOneof(fd) != nil && !m.Has(fd) {
			continue
		}
		if fd.HasPresence() && !m.Has(fd) {
			out[fd.JSONName()] = nil
			continue
		}
		out[fd.JSONName()] = fieldValue(fd, m.Get(fd))
	}
	return out
}

func fieldValue(fd protoreflect.FieldDescriptor, v protoreflect.Value) any {
	switch {
	case fd.IsMap():
		mv := make(map[string]any, v.Map().Len())
		v.Map().Range(func(k protoreflect.MapKey, e protoreflect.Value) bool {
			mv[mapKeyText(k)] = singleValue(fd.MapValue(), e)
			return true
		})
		return mv
	case fd.IsList():
		l := v.List()
		lv := make([]any, l.Len())
		for i := range lv {
			lv[i] = singleValue(fd, l.Get(i))
		}
		return lv
	}
	return singleValue(fd, v)
}

func mapKeyText(k protoreflect.MapKey) string {
	switch x := k.Interface().(type) {
	case string:
		return x
	case bool:
		return strconv.FormatBool(x)
	case int32, int64:
		return strconv.FormatInt(k.Int(), 10)
	}
	return strconv.FormatUint(k.Uint(), 10)
}

func singleValue(fd protoreflect.FieldDescriptor, v protoreflect.Value) any {
	switch fd.Kind() {
	case protoreflect.MessageKind, protoreflect.GroupKind:
		return messageValue(v.Message())
	case protoreflect.EnumKind:
		if ev := fd.Enum().Values().ByNumber(v.Enum()); ev != nil {
			return string(ev.Name())
		}
		return int64(v.Enum())
	case protoreflect.BoolKind:
		return v.Bool()
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind,
		protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		return v.Int()
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind, protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		if u := v.Uint(); u <= math.MaxInt64 {
			return int64(u)
		}
		return v.Uint()
	case protoreflect.FloatKind, protoreflect.DoubleKind:
		return v.Float()
	case protoreflect.StringKind:
		return v.String()
	case protoreflect.BytesKind:
		return append([]byte{}, v.Bytes()...)
	}
	return nil
}

// checkUnknown rejects unknown fields whose number the schema declares
// with another wire type: the decoder keeps those as unknown. (A declared
// field with a fitting wire type lands there only as an undeclared value
// of a closed proto2 enum, which a newer schema may legitimately write.)
func checkUnknown(m protoreflect.Message) error {
	md := m.Descriptor()
	b := m.GetUnknown()
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return fmt.Errorf("message .%s: malformed unknown field: %v", md.FullName(), protowire.ParseError(n))
		}
		if fd := md.Fields().ByNumber(num); fd != nil && !wireTypeFits(fd, typ) {
			return fmt.Errorf("message .%s field %d (%s): wire type %d does not match the declared %s",
				md.FullName(), num, fd.Name(), typ, fd.Kind())
		}
		m := protowire.ConsumeFieldValue(num, typ, b[n:])
		if m < 0 {
			return fmt.Errorf("message .%s: malformed unknown field %d: %v", md.FullName(), num, protowire.ParseError(m))
		}
		b = b[n+m:]
	}
	var err error
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case fd.IsMap():
			if k := fd.MapValue().Kind(); k == protoreflect.MessageKind || k == protoreflect.GroupKind {
				v.Map().Range(func(_ protoreflect.MapKey, e protoreflect.Value) bool {
					err = checkUnknown(e.Message())
					return err == nil
				})
			}
		case fd.Kind() != protoreflect.MessageKind && fd.Kind() != protoreflect.GroupKind:
		case fd.IsList():
			for i := 0; i < v.List().Len() && err == nil; i++ {
				err = checkUnknown(v.List().Get(i).Message())
			}
		default:
			err = checkUnknown(v.Message())
		}
		return err == nil
	})
	return err
}

// wireTypeFits reports whether typ is a wire type a field of fd's kind
// may arrive with (packed encoding included for repeated scalars).
func wireTypeFits(fd protoreflect.FieldDescriptor, typ protowire.Type) bool {
	packable := fd.IsList() && typ == protowire.BytesType
	switch fd.Kind() {
	case protoreflect.StringKind, protoreflect.BytesKind, protoreflect.MessageKind:
		return typ == protowire.BytesType
	case protoreflect.GroupKind:
		return typ == protowire.StartGroupType
	case protoreflect.Fixed32Kind, protoreflect.Sfixed32Kind, protoreflect.FloatKind:
		return typ == protowire.Fixed32Type || packable
	case protoreflect.Fixed64Kind, protoreflect.Sfixed64Kind, protoreflect.DoubleKind:
		return typ == protowire.Fixed64Type || packable
	}
	return typ == protowire.VarintType || packable
}

// RecordName is the full name of the message the payload's indexes select.
func (s *Schema) RecordName(payload []byte) (string, error) {
	idx, _, err := readIndexes(payload)
	if err == nil {
		var md protoreflect.MessageDescriptor
		if md, err = s.messageAt(idx); err == nil {
			return string(md.FullName()), nil
		}
	}
	return "", s.explain(payload, err)
}
