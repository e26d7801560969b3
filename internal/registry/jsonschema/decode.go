package jsonschema

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"

	lib "github.com/santhosh-tekuri/jsonschema/v6"
	"golang.org/x/text/language"
	"golang.org/x/text/message"

	"github.com/runnel-dev/runnel/internal/registry"
)

// maxReportedErrors caps how many failing keywords a payload error lists.
const maxReportedErrors = 5

var printer = message.NewPrinter(language.English)

// Decode parses payload (UTF-8 JSON, what follows the 5-byte header),
// validates it fully against the schema and returns it as plain Go values:
// map[string]any, []any, string, int64 (integers that fit) or float64 (a
// number beyond float64's range stays its decimal text),
// bool and nil. Every failure wraps registry.ErrInvalidPayload; a
// validation failure names the failing keywords and instance locations.
func (s *Schema) Decode(payload []byte) (any, error) {
	if !utf8.Valid(payload) {
		return nil, fmt.Errorf("%w: payload is not valid UTF-8", registry.ErrInvalidPayload)
	}
	v, err := decodeJSON(payload)
	if err != nil {
		return nil, fmt.Errorf("%w: payload is not JSON: %v", registry.ErrInvalidPayload, err)
	}
	if err := validate(s.compiled, v); err != nil {
		return nil, fmt.Errorf("%w: %s", registry.ErrInvalidPayload, err)
	}
	return plain(v), nil
}

// validate runs the library's validation, recovering from a panic so a
// payload can never take the broker down.
func validate(sch *lib.Schema, v any) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("validation failed: %v", r)
		}
	}()
	verr := sch.Validate(v)
	if verr == nil {
		return nil
	}
	var ve *lib.ValidationError
	if !errors.As(verr, &ve) {
		return verr
	}
	return errors.New(describeValidation(ve))
}

// describeValidation lists the leaf failures: where in the payload, which
// keyword, and why.
func describeValidation(ve *lib.ValidationError) string {
	var leaves []*lib.ValidationError
	var walk func(e *lib.ValidationError)
	walk = func(e *lib.ValidationError) {
		if len(e.Causes) == 0 {
			leaves = append(leaves, e)
			return
		}
		for _, c := range e.Causes {
			walk(c)
		}
	}
	walk(ve)
	var parts []string
	for i, leaf := range leaves {
		if i == maxReportedErrors {
			parts = append(parts, fmt.Sprintf("and %d more", len(leaves)-i))
			break
		}
		keyword := strings.Join(leaf.ErrorKind.KeywordPath(), "/")
		if keyword == "" {
			keyword = "schema"
		}
		parts = append(parts, fmt.Sprintf("at %s: keyword %q: %s",
			instancePointer(leaf.InstanceLocation), keyword, leaf.ErrorKind.LocalizedString(printer)))
	}
	return strings.Join(parts, "; ")
}

// instancePointer renders an instance location as a JSON pointer, "/" for
// the whole payload.
func instancePointer(tokens []string) string {
	if len(tokens) == 0 {
		return "/"
	}
	var b strings.Builder
	for _, t := range tokens {
		b.WriteByte('/')
		t = strings.ReplaceAll(t, "~", "~0")
		b.WriteString(strings.ReplaceAll(t, "/", "~1"))
	}
	return b.String()
}

// plain replaces json.Number with int64 or float64.
func plain(v any) any {
	switch v := v.(type) {
	case json.Number:
		if i, err := strconv.ParseInt(string(v), 10, 64); err == nil {
			return i
		}
		f, err := strconv.ParseFloat(string(v), 64)
		if err != nil && !errors.Is(err, strconv.ErrRange) {
			return string(v)
		}
		if math.IsInf(f, 0) {
			return string(v)
		}
		return f
	case map[string]any:
		for k, e := range v {
			v[k] = plain(e)
		}
		return v
	case []any:
		for i, e := range v {
			v[i] = plain(e)
		}
		return v
	}
	return v
}
