package catalog

import (
	"cmp"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protojson"

	"github.com/runnel-dev/runnel/internal/governance"
	"github.com/runnel-dev/runnel/internal/registry/avro"
	"github.com/runnel-dev/runnel/internal/registry/protobuf"
)

// MaxSample is the most records a sample holds.
const MaxSample = 100

// Masked is what a masked value is replaced with.
const Masked = "****"

// SampleRecord is one record of a sample, decoded.
type SampleRecord struct {
	Partition int32  `json:"partition"`
	Offset    int64  `json:"offset"`
	Timestamp string `json:"timestamp"`
	Key       any    `json:"key"`
	Value     any    `json:"value"`
	// Masked lists the paths of the fields replaced by "****" ("key." in
	// front of key fields); "(value)" or "(key)" when the whole value was
	// masked because it could not be decoded on a topic with masked fields.
	Masked []string `json:"masked"`
}

// Sample is the answer of GET /api/v1/products/{topic}/sample.
type Sample struct {
	Items []SampleRecord `json:"items"`
}

// RawValue is a value that is not in the registry's wire format, or whose
// schema is unknown: its bytes, and its text when they are UTF-8.
type RawValue struct {
	Base64 string  `json:"base64"`
	Text   *string `json:"text,omitempty"`
	// Size is the length of a value too large to show (Truncated), whose
	// bytes are left out.
	Size      int  `json:"size,omitempty"`
	Truncated bool `json:"truncated,omitempty"`
}

// maxSampleValue is the largest key or value a sample shows.
const maxSampleValue = 256 << 10

// Sample returns up to limit of the newest records of topic across its
// partitions, newest first, decoded through the registry, with the
// fields whose tags mask (PII, or a tag defined with "mask": true)
// replaced by "****". The caller must have checked READ on the topic.
func (c *Catalog) Sample(ctx context.Context, topic string, limit int) (Sample, error) {
	if err := ValidTopic(topic); err != nil {
		return Sample{}, err
	}
	if limit <= 0 || limit > MaxSample {
		return Sample{}, invalid("limit must be 1..%d", MaxSample)
	}
	p, err := c.Product(ctx, topic)
	if err != nil {
		return Sample{}, err
	}
	if !p.Exists {
		return Sample{}, fmt.Errorf("%w: topic %q does not exist", governance.ErrNotFound, topic)
	}
	c.mu.RLock()
	defs := c.tagDefs
	var valuePatterns, keyPatterns map[string][]string
	if t := c.topics[topic]; t != nil {
		if t.value != nil {
			valuePatterns = t.value.patterns
		}
		if t.key != nil {
			keyPatterns = t.key.patterns
		}
	}
	c.mu.RUnlock()
	valueMask := maskedPaths(p.Schema, defs)
	valueMask.patterns, valueMask.fieldTags, valueMask.defs = valuePatterns, p.FieldTags, defs
	for _, t := range p.Tags {
		// A product tagged to mask has its values masked whole when they
		// cannot be decoded field by field.
		valueMask.wholeIfRaw = valueMask.wholeIfRaw || masks(t, defs)
	}
	keyMask := maskedPaths(p.KeySchema, defs)
	keyMask.patterns, keyMask.defs = keyPatterns, defs
	newestFirst := func(a, b Record) int {
		if c := b.Timestamp.Compare(a.Timestamp); c != 0 {
			return c
		}
		if c := cmp.Compare(a.Partition, b.Partition); c != 0 {
			return c
		}
		return cmp.Compare(b.Offset, a.Offset)
	}
	var recs []Record
	for part := int32(0); part < p.Partitions; part++ {
		rs, err := c.o.Log.Newest(ctx, topic, part, limit)
		if err != nil {
			return Sample{}, fmt.Errorf("catalog: reading %s/%d: %w", topic, part, err)
		}
		recs = append(recs, rs...)
		// Keep only the newest limit so far: memory stays bounded
		// whatever the partition count.
		if len(recs) > limit {
			slices.SortFunc(recs, newestFirst)
			clear(recs[limit:])
			recs = recs[:limit]
		}
	}
	slices.SortFunc(recs, newestFirst)
	out := Sample{Items: make([]SampleRecord, 0, len(recs))}
	for _, r := range recs {
		sr := SampleRecord{Partition: r.Partition, Offset: r.Offset, Timestamp: r.Timestamp.UTC().Format(time.RFC3339Nano), Masked: []string{}}
		var masked []string
		sr.Key, masked = c.decodeMasked(ctx, r.Key, keyMask, "(key)")
		for _, m := range masked {
			if !strings.HasPrefix(m, "(") {
				m = "key." + m
			}
			sr.Masked = append(sr.Masked, m)
		}
		sr.Value, masked = c.decodeMasked(ctx, r.Value, valueMask, "(value)")
		sr.Masked = append(sr.Masked, masked...)
		out.Items = append(out.Items, sr)
	}
	return out, nil
}

// fieldMask is what masking needs of a schema: the paths of its fields
// and those whose tags mask; and, for a Protobuf value of another message
// than the one the catalog describes (a payload names its message), what
// tags that message's fields: the subject's tag patterns, the product's
// field tags and the tag definitions.
type fieldMask struct {
	known, mask map[string]bool
	patterns    map[string][]string
	fieldTags   map[string][]string
	defs        map[string]*TagDef
	wholeIfRaw  bool // mask a value that cannot be decoded, masked fields or not
}

// withWriter returns fm extended by the fields of the schema a record was
// written with (an older version may have fields the latest lacks; a
// Protobuf payload names its message), tagged by their own tags, the
// writer's and the subject's tag patterns and the product's field tags.
func (fm fieldMask) withWriter(fs []rawField, writerPatterns map[string][]string) fieldMask {
	out := fm
	out.known, out.mask = maps.Clone(fm.known), maps.Clone(fm.mask)
	for _, f := range fs {
		out.known[f.path] = true
		tags := append(slices.Clone(f.tags), fm.fieldTags[f.path]...)
		for _, patterns := range []map[string][]string{fm.patterns, writerPatterns} {
			for pat, ptags := range patterns {
				if matchesAny(pat, f.path, f.fullName) {
					tags = append(tags, ptags...)
				}
			}
		}
		for _, t := range tags {
			if masks(t, fm.defs) {
				out.mask[f.path] = true
				break
			}
		}
	}
	return out
}

// maskedPaths builds the fieldMask of a schema.
func maskedPaths(s *Schema, defs map[string]*TagDef) fieldMask {
	fm := fieldMask{known: map[string]bool{}, mask: map[string]bool{}}
	if s == nil {
		return fm
	}
	for _, f := range s.Fields {
		fm.known[f.Path] = true
		for _, t := range f.Tags {
			if masks(t, defs) {
				fm.mask[f.Path] = true
				break
			}
		}
	}
	return fm
}

// decodeMasked decodes a key or value and masks its fields. A value that
// cannot be decoded on a topic with masked fields, or of a product with a
// masking tag, is masked whole: its bytes could hold what is tagged.
func (c *Catalog) decodeMasked(ctx context.Context, b []byte, fm fieldMask, whole string) (any, []string) {
	if b == nil {
		return nil, nil
	}
	if len(b) > maxSampleValue {
		if len(fm.mask) > 0 || fm.wholeIfRaw {
			return Masked, []string{whole}
		}
		return RawValue{Size: len(b), Truncated: true}, nil
	}
	v, w, ok := c.decodeValue(ctx, b)
	if w != nil {
		fm = fm.withWriter(w.fields, w.patterns)
	}
	if !ok {
		if len(fm.mask) > 0 || fm.wholeIfRaw {
			return Masked, []string{whole}
		}
		return v, nil
	}
	var masked []string
	v = maskAt(v, "", fm, &masked, 0)
	slices.Sort(masked)
	return v, slices.Compact(masked)
}

// writer is the schema a record was written with, as masking needs it.
type writer struct {
	fields   []rawField
	patterns map[string][]string
}

// decodeValue decodes a value in the registry's wire format (magic byte 0,
// schema id, payload) into JSON values, and returns the schema it was
// written with (for a Protobuf value, the message it names); ok is false
// when it is not in the wire format, its schema is unknown or does not
// read it (the value is then raw).
func (c *Catalog) decodeValue(ctx context.Context, b []byte) (any, *writer, bool) {
	if c.o.Registry == nil || len(b) < 5 || b[0] != 0 {
		return raw(b), nil, false
	}
	id := int(binary.BigEndian.Uint32(b[1:5]))
	s, info, err := c.o.Registry.SchemaByID(ctx, id)
	if err != nil {
		return raw(b), nil, false
	}
	w := &writer{}
	if info.Metadata != nil {
		w.patterns = info.Metadata.Tags
	}
	var v any
	switch ps := s.(type) {
	case *protobuf.Schema:
		msg, err := ps.Message(b[5:])
		if err != nil {
			return raw(b), nil, false
		}
		w.fields = protoFields(msg.Descriptor())
		j, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(msg.Interface())
		if err != nil {
			return raw(b), w, false
		}
		if err := json.Unmarshal(j, &v); err != nil {
			return raw(b), w, false
		}
		return v, w, true
	case *avro.Schema:
		w.fields = avroFields(ps.Avro())
	default:
		if info.Type == "JSON" {
			w.fields = jsonFields(info.Schema)
		}
	}
	v, err = s.Decode(b[5:])
	if err != nil {
		return raw(b), w, false
	}
	return v, w, true
}

func raw(b []byte) RawValue {
	r := RawValue{Base64: base64.StdEncoding.EncodeToString(b)}
	if utf8.Valid(b) {
		s := string(b)
		r.Text = &s
	}
	return r
}

// maxMaskDepth bounds how deep masking walks a decoded value.
const maxMaskDepth = 64

// maskAt replaces the values at masked paths with "****". Objects nest by
// field name; array items continue the array's path; an object key that
// is not a field of the schema (a key of an Avro or Protobuf map) is data,
// and its value continues the map's path.
func maskAt(v any, path string, fm fieldMask, masked *[]string, depth int) any {
	if depth > maxMaskDepth {
		return v
	}
	switch x := v.(type) {
	case map[string]any:
		for k, fv := range x {
			p := joinPath(path, k)
			if !fm.known[p] && path != "" {
				p = path // a map entry: its value is the map's
				x[k] = maskAt(fv, p, fm, masked, depth+1)
				continue
			}
			if fm.mask[p] {
				if fv != nil {
					x[k] = Masked
					*masked = append(*masked, p)
				}
				continue
			}
			x[k] = maskAt(fv, p, fm, masked, depth+1)
		}
		return x
	case []any:
		for i, e := range x {
			x[i] = maskAt(e, path, fm, masked, depth+1)
		}
		return x
	}
	return v
}
