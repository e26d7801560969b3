package avro

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"

	hamba "github.com/hamba/avro/v2"

	"github.com/runnel-dev/runnel/internal/registry"
)

// Limits that keep a hostile payload from costing more than its size.
const (
	// maxDepth bounds nesting (recursive records, arrays of arrays).
	maxDepth = 1000
	// maxZeroSizeItems bounds the items of arrays and maps whose items
	// take no bytes (null, empty records), which a count alone could make
	// endless.
	maxZeroSizeItems = 1 << 16
)

// Decode decodes an Avro binary payload (what follows the magic byte and
// schema id) fully against the schema, and rejects trailing bytes. Values
// are: null → nil, boolean → bool, int and long → int64, float and double
// → float64, bytes and fixed → []byte, string → string (valid UTF-8),
// enum → its symbol, array → []any, map and record → map[string]any, and a
// union → its branch's value. Logical types are returned as their
// underlying values (a timestamp-millis is an int64, a decimal its bytes).
// Errors wrap registry.ErrInvalidPayload and give the byte offset and the
// path of the value being decoded.
func (s *Schema) Decode(payload []byte) (any, error) {
	return s.decode(&decoder{buf: payload})
}

// Branch is a union value as DecodeBranches returns it: the index of the
// branch that was written and that branch's value.
type Branch struct {
	Index int
	Value any
}

// DecodeBranches is Decode, except that every union value is a Branch, for
// callers that render values in a form naming the branch written (Avro's
// JSON encoding does).
func (s *Schema) DecodeBranches(payload []byte) (any, error) {
	return s.decode(&decoder{buf: payload, branches: true})
}

func (s *Schema) decode(d *decoder) (any, error) {
	v, err := d.value(s.parsed, 0)
	if err != nil {
		return nil, fmt.Errorf("%w: %s", registry.ErrInvalidPayload, err)
	}
	if d.pos != len(d.buf) {
		return nil, fmt.Errorf("%w: %d trailing bytes after the value (it ends at byte %d of %d)", registry.ErrInvalidPayload, len(d.buf)-d.pos, d.pos, len(d.buf))
	}
	return v, nil
}

// stringSchema decodes map keys.
var stringSchema = hamba.NewPrimitiveSchema(hamba.String, nil)

type decoder struct {
	buf []byte
	pos int
	// path is where the value being decoded is (field names, array
	// indexes, union branches, map keys), rendered only for errors.
	path []pathSeg
	// branches makes union values Branches.
	branches bool
}

type pathSeg struct {
	name    string
	index   int
	isIndex bool
}

func (d *decoder) pushName(name string) { d.path = append(d.path, pathSeg{name: name}) }
func (d *decoder) pushIndex(i int)      { d.path = append(d.path, pathSeg{index: i, isIndex: true}) }
func (d *decoder) pop()                 { d.path = d.path[:len(d.path)-1] }

func (d *decoder) pathString() string {
	var b strings.Builder
	for _, seg := range d.path {
		b.WriteByte('/')
		if seg.isIndex {
			b.WriteString(strconv.Itoa(seg.index))
		} else {
			b.WriteString(seg.name)
		}
	}
	return at(b.String())
}

var errTruncated = errors.New("payload ends early")

// fail reports err for the value being decoded, at the current position.
func (d *decoder) fail(err error) error {
	return d.failAt(d.pos, err)
}

// failAt reports err for the value being decoded, which starts at byte pos.
func (d *decoder) failAt(pos int, err error) error {
	return fmt.Errorf("at %s (byte %d): %w", d.pathString(), pos, err)
}

func (d *decoder) long() (int64, error) {
	u, n := binary.Uvarint(d.buf[d.pos:])
	if n == 0 {
		return 0, errTruncated
	}
	if n < 0 || n > 10 {
		return 0, errors.New("varint overflows 64 bits")
	}
	d.pos += n
	return int64(u>>1) ^ -int64(u&1), nil
}

func (d *decoder) take(n int64) ([]byte, error) {
	if n < 0 {
		return nil, fmt.Errorf("negative length %d", n)
	}
	if n > int64(len(d.buf)-d.pos) {
		return nil, fmt.Errorf("%w: needs %d bytes, %d left", errTruncated, n, len(d.buf)-d.pos)
	}
	b := d.buf[d.pos : d.pos+int(n)]
	d.pos += int(n)
	return b, nil
}

func (d *decoder) value(s hamba.Schema, depth int) (any, error) {
	if depth > maxDepth {
		return nil, d.fail(fmt.Errorf("values nested deeper than %d levels", maxDepth))
	}
	s = deref(s)
	start := d.pos
	switch s.Type() {
	case hamba.Null:
		return nil, nil
	case hamba.Boolean:
		b, err := d.take(1)
		if err != nil {
			return nil, d.failAt(start, err)
		}
		switch b[0] {
		case 0:
			return false, nil
		case 1:
			return true, nil
		}
		return nil, d.failAt(start, fmt.Errorf("boolean byte is %d, not 0 or 1", b[0]))
	case hamba.Int:
		v, err := d.long()
		if err != nil {
			return nil, d.failAt(start, err)
		}
		if v < math.MinInt32 || v > math.MaxInt32 {
			return nil, d.failAt(start, fmt.Errorf("int %d is out of the 32-bit range", v))
		}
		return v, nil
	case hamba.Long:
		v, err := d.long()
		if err != nil {
			return nil, d.failAt(start, err)
		}
		return v, nil
	case hamba.Float:
		b, err := d.take(4)
		if err != nil {
			return nil, d.failAt(start, err)
		}
		return float64(math.Float32frombits(binary.LittleEndian.Uint32(b))), nil
	case hamba.Double:
		b, err := d.take(8)
		if err != nil {
			return nil, d.failAt(start, err)
		}
		return math.Float64frombits(binary.LittleEndian.Uint64(b)), nil
	case hamba.Bytes, hamba.String:
		n, err := d.long()
		if err != nil {
			return nil, d.failAt(start, err)
		}
		b, err := d.take(n)
		if err != nil {
			return nil, d.failAt(start, err)
		}
		if s.Type() == hamba.String {
			if !utf8.Valid(b) {
				return nil, d.failAt(start, errors.New("string is not valid UTF-8"))
			}
			return string(b), nil
		}
		return append([]byte(nil), b...), nil
	case hamba.Fixed:
		b, err := d.take(int64(s.(*hamba.FixedSchema).Size()))
		if err != nil {
			return nil, d.failAt(start, err)
		}
		return append([]byte(nil), b...), nil
	case hamba.Enum:
		e := s.(*hamba.EnumSchema)
		i, err := d.long()
		if err != nil {
			return nil, d.failAt(start, err)
		}
		if i < 0 || i >= int64(len(e.Symbols())) {
			return nil, d.failAt(start, fmt.Errorf("enum %q index %d out of range (%d symbols)", e.FullName(), i, len(e.Symbols())))
		}
		return e.Symbols()[i], nil
	case hamba.Union:
		u := s.(*hamba.UnionSchema)
		i, err := d.long()
		if err != nil {
			return nil, d.failAt(start, err)
		}
		if i < 0 || i >= int64(len(u.Types())) {
			return nil, d.failAt(start, fmt.Errorf("union branch %d out of range (%d branches)", i, len(u.Types())))
		}
		d.pushIndex(int(i))
		v, err := d.value(u.Types()[i], depth+1)
		d.pop()
		if err != nil || !d.branches {
			return v, err
		}
		return Branch{Index: int(i), Value: v}, nil
	case hamba.Record, hamba.Error:
		r := s.(*hamba.RecordSchema)
		out := make(map[string]any, len(r.Fields()))
		for _, f := range r.Fields() {
			d.pushName(f.Name())
			v, err := d.value(f.Type(), depth+1)
			d.pop()
			if err != nil {
				return nil, err
			}
			out[f.Name()] = v
		}
		return out, nil
	case hamba.Array:
		items := s.(*hamba.ArraySchema).Items()
		out := []any{}
		err := d.blocks(items, func(i int) error {
			d.pushIndex(i)
			v, err := d.value(items, depth+1)
			d.pop()
			if err != nil {
				return err
			}
			out = append(out, v)
			return nil
		})
		if err != nil {
			return nil, err
		}
		return out, nil
	case hamba.Map:
		values := s.(*hamba.MapSchema).Values()
		out := map[string]any{}
		err := d.blocks(values, func(int) error {
			d.pushName("<key>")
			kv, err := d.value(stringSchema, depth+1)
			d.pop()
			if err != nil {
				return err
			}
			key := kv.(string)
			d.pushName(key)
			v, err := d.value(values, depth+1)
			d.pop()
			if err != nil {
				return err
			}
			out[key] = v
			return nil
		})
		if err != nil {
			return nil, err
		}
		return out, nil
	}
	return nil, d.failAt(start, fmt.Errorf("unsupported schema type %s", s.Type()))
}

// blocks reads the blocks of an array or map: a count (negative: followed
// by the block's byte size), its items, until a zero count.
func (d *decoder) blocks(item hamba.Schema, each func(i int) error) error {
	zeroSize := minSize(item, 0) == 0
	total := 0
	for {
		count, err := d.long()
		if err != nil {
			return d.fail(err)
		}
		if count == 0 {
			return nil
		}
		if count < 0 {
			if count == math.MinInt64 {
				return d.fail(errors.New("block count out of range"))
			}
			count = -count
			if _, err := d.long(); err != nil { // the block's size in bytes
				return d.fail(err)
			}
		}
		if zeroSize {
			if count > int64(maxZeroSizeItems-total) {
				return d.fail(fmt.Errorf("more than %d items that take no bytes", maxZeroSizeItems))
			}
		} else if count > int64(len(d.buf)-d.pos) {
			return d.fail(fmt.Errorf("%w: block of %d items, only %d bytes left", errTruncated, count, len(d.buf)-d.pos))
		}
		for i := int64(0); i < count; i++ {
			if err := each(total); err != nil {
				return err
			}
			total++
		}
	}
}

// minSize is the fewest bytes a value of s takes (0 or more; only whether
// it is 0 matters). Recursive records count as non-empty.
func minSize(s hamba.Schema, depth int) int {
	if depth > 32 {
		return 1
	}
	s = deref(s)
	switch s.Type() {
	case hamba.Null:
		return 0
	case hamba.Fixed:
		return s.(*hamba.FixedSchema).Size()
	case hamba.Record, hamba.Error:
		n := 0
		for _, f := range s.(*hamba.RecordSchema).Fields() {
			n += minSize(f.Type(), depth+1)
		}
		return n
	}
	return 1
}
