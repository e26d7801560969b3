package registry

import (
	"encoding/json"
	"fmt"
	"slices"
	"sort"
)

// fakeFormat is a test format: a schema is a JSON object
// {"fields":{"name":"type",...},"required":["name",...],"uses":["ref",...]}.
// Data written with W can be read with R when every field R requires is in
// W with the same type. "uses" names must be among the resolved references.
type fakeFormat struct{ typ string }

type fakeSchema struct {
	Fields   map[string]string `json:"fields"`
	Required []string          `json:"required,omitempty"`
	Uses     []string          `json:"uses,omitempty"`
	canon    string
}

func (f fakeFormat) Type() string { return f.typ }

func (f fakeFormat) Parse(text string, refs []ResolvedReference) (Schema, error) {
	var s fakeSchema
	if err := json.Unmarshal([]byte(text), &s); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidSchema, err)
	}
	if s.Fields == nil {
		return nil, fmt.Errorf("%w: no fields", ErrInvalidSchema)
	}
	for _, r := range s.Required {
		if _, ok := s.Fields[r]; !ok {
			return nil, fmt.Errorf("%w: required field %q is not a field", ErrInvalidSchema, r)
		}
	}
	for _, u := range s.Uses {
		if !slices.ContainsFunc(refs, func(r ResolvedReference) bool { return r.Name == u && r.Schema != "" }) {
			return nil, fmt.Errorf("%w: reference %q not given", ErrInvalidSchema, u)
		}
	}
	sort.Strings(s.Required)
	sort.Strings(s.Uses)
	b, _ := json.Marshal(s)
	s.canon = string(b)
	return &s, nil
}

func (f fakeFormat) CanRead(reader, writer Schema) []string {
	r, w := reader.(*fakeSchema), writer.(*fakeSchema)
	var msgs []string
	for _, name := range r.Required {
		wt, ok := w.Fields[name]
		switch {
		case !ok:
			msgs = append(msgs, fmt.Sprintf("{errorType:'READER_FIELD_MISSING_DEFAULT_VALUE', description:'field %s is required by the reader and missing in the writer'}", name))
		case wt != r.Fields[name]:
			msgs = append(msgs, fmt.Sprintf("{errorType:'TYPE_MISMATCH', description:'field %s is %s in the reader and %s in the writer'}", name, r.Fields[name], wt))
		}
	}
	return msgs
}

func (s *fakeSchema) Canonical() string  { return s.canon }
func (s *fakeSchema) Normalized() string { return s.canon }

func (s *fakeSchema) Decode(payload []byte) (any, error) {
	var v map[string]any
	if err := json.Unmarshal(payload, &v); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidPayload, err)
	}
	for _, r := range s.Required {
		if _, ok := v[r]; !ok {
			return nil, fmt.Errorf("%w: missing %s", ErrInvalidPayload, r)
		}
	}
	return v, nil
}
