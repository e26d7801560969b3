package rules

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"sync"

	"cel.dev/cel-go/common/types"

	"github.com/runnel-dev/runnel/internal/registry"
)

// fieldWalker visits a decoded value's fields for CEL_FIELD rules. One is
// built per Check and reused by its CEL_FIELD rules, so field tags are
// resolved once per field.
type fieldWalker struct {
	md        *registry.Metadata
	fieldTags FieldTags
	tagCache  map[string][]string

	rule *registry.Rule
	prog *compiled
	kind string
	act  fieldActivation
	keys [][]string // sorted-key scratch per depth
}

func (w *fieldWalker) reset(r *registry.Rule, c *compiled, kind string) {
	w.rule, w.prog, w.kind = r, c, kind
	w.act.w = w
}

// tagsFor returns the tags of the field at path: the schema's (fieldTags)
// united with metadata.tags entries whose key matches.
func (w *fieldWalker) tagsFor(path string) []string {
	if t, ok := w.tagCache[path]; ok {
		return t
	}
	var tags []string
	if w.fieldTags != nil {
		for _, t := range w.fieldTags(path) {
			if !slices.Contains(tags, t) {
				tags = append(tags, t)
			}
		}
	}
	if w.md != nil && len(w.md.Tags) > 0 {
		for pattern, ts := range w.md.Tags {
			if !MatchPath(pattern, path) && !MatchPath(pattern, "$."+path) {
				continue
			}
			for _, t := range ts {
				if !slices.Contains(tags, t) {
					tags = append(tags, t)
				}
			}
		}
		slices.Sort(tags) // map order must not show
	}
	if w.tagCache == nil {
		w.tagCache = make(map[string][]string)
	}
	w.tagCache[path] = tags
	return tags
}

// sortedKeys returns m's keys in order, in scratch space for depth.
func (w *fieldWalker) sortedKeys(m map[string]any, depth int) []string {
	for len(w.keys) <= depth {
		w.keys = append(w.keys, nil)
	}
	ks := w.keys[depth][:0]
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	w.keys[depth] = ks
	return ks
}

// walk visits v, the value of field name at path inside container, and
// returns v with the rule's transforms applied (changed when it differs).
// A failed condition or an error stops the walk with a *fieldError.
func (w *fieldWalker) walk(ctx context.Context, v any, path, name string, container map[string]any, depth int) (any, bool, error) {
	if depth > maxDepth {
		return nil, false, failField(w.rule, StatusError, path, errTooDeep.Error())
	}
	switch x := v.(type) {
	case nil:
		// Null fields are skipped, as in Confluent's clients.
		return v, false, nil
	case map[string]any:
		var out map[string]any
		for _, k := range w.sortedKeys(x, depth) {
			nv, ch, err := w.walk(ctx, x[k], join(path, k), k, x, depth+1)
			if err != nil {
				return nil, false, err
			}
			if ch {
				if out == nil {
					out = maps.Clone(x)
				}
				out[k] = nv
			}
		}
		if out == nil {
			return v, false, nil
		}
		return out, true, nil
	case []any:
		var out []any
		for i, el := range x {
			nv, ch, err := w.walk(ctx, el, path, name, container, depth+1)
			if err != nil {
				return nil, false, err
			}
			if ch {
				if out == nil {
					out = slices.Clone(x)
				}
				out[i] = nv
			}
		}
		if out == nil {
			return v, false, nil
		}
		return out, true, nil
	}
	tn := typeName(v)
	if tn == "" || name == "" {
		// Not a primitive, or a primitive that is the whole record: no
		// field to apply a field rule to.
		return v, false, nil
	}
	if len(w.rule.Tags) > 0 && !intersects(w.rule.Tags, w.tagsFor(path)) {
		return v, false, nil
	}
	if err := ctx.Err(); err != nil {
		return nil, false, failField(w.rule, StatusError, path, err.Error())
	}
	a := &w.act
	a.value, a.name, a.fullName, a.typeName, a.message = v, name, path, tn, container
	a.tagsDone = false
	out, skipped, errMsg := runGuarded(ctx, w.prog, a)
	switch {
	case skipped:
		return v, false, nil
	case errMsg != "":
		return nil, false, failField(w.rule, StatusError, path, errMsg)
	case w.kind == KindCondition:
		b, ok := out.(types.Bool)
		if !ok {
			return nil, false, failField(w.rule, StatusError, path, fmt.Sprintf("condition evaluated to %s, not bool", out.Type().TypeName()))
		}
		if !b {
			return nil, false, failField(w.rule, StatusFailed, path, "")
		}
		return v, false, nil
	}
	nv, err := toNative(out)
	if err != nil {
		return nil, false, failField(w.rule, StatusError, path, "transform result: "+err.Error())
	}
	if sameScalar(v, nv) {
		return v, false, nil
	}
	return nv, true, nil
}

// sameScalar reports whether two primitive values are equal (type and
// value), so an identity transform does not copy the record.
func sameScalar(a, b any) bool {
	switch x := a.(type) {
	case []byte:
		y, ok := b.([]byte)
		return ok && bytes.Equal(x, y)
	case string, int64, uint64, float64, bool:
		return a == b
	}
	return false
}

// typeName is the Confluent type name of a primitive decoded value, or ""
// for anything else.
func typeName(v any) string {
	switch v.(type) {
	case string:
		return "STRING"
	case int64, int:
		return "LONG"
	case int32:
		return "INT"
	case uint64, uint32:
		return "LONG"
	case float64:
		return "DOUBLE"
	case float32:
		return "FLOAT"
	case bool:
		return "BOOLEAN"
	case []byte:
		return "BYTES"
	}
	return ""
}

func intersects(a, b []string) bool {
	for _, x := range a {
		if slices.Contains(b, x) {
			return true
		}
	}
	return false
}

// patterns caches compiled wildcard patterns (nil: the pattern has no
// wildcard and matches by equality).
var patterns struct {
	sync.RWMutex
	m map[string]*regexp.Regexp
}

// maxPatterns bounds the pattern cache; it is emptied when full.
const maxPatterns = 4096

// MatchPath reports whether path matches a metadata tags key written with
// Confluent's wildcards: '?' matches one character and '*' any run of
// characters, neither matching '.', and '**' any run including '.'. Other
// characters match themselves.
func MatchPath(pattern, path string) bool {
	if !strings.ContainsAny(pattern, "*?") {
		return pattern == path
	}
	patterns.RLock()
	re, ok := patterns.m[pattern]
	patterns.RUnlock()
	if !ok {
		re = compilePattern(pattern)
		patterns.Lock()
		if patterns.m == nil || len(patterns.m) >= maxPatterns {
			patterns.m = make(map[string]*regexp.Regexp)
		}
		patterns.m[pattern] = re
		patterns.Unlock()
	}
	if re == nil {
		return pattern == path
	}
	return re.MatchString(path)
}

func compilePattern(pattern string) *regexp.Regexp {
	var b strings.Builder
	b.WriteString(`\A`)
	for i := 0; i < len(pattern); i++ {
		switch c := pattern[i]; c {
		case '*':
			if i+1 < len(pattern) && pattern[i+1] == '*' {
				b.WriteString(`.*`)
				i++
			} else {
				b.WriteString(`[^.]*`)
			}
		case '?':
			b.WriteString(`[^.]`)
		default:
			j := i
			for j < len(pattern) && pattern[j] != '*' && pattern[j] != '?' {
				j++
			}
			b.WriteString(regexp.QuoteMeta(pattern[i:j]))
			i = j - 1
		}
	}
	b.WriteString(`\z`)
	re, err := regexp.Compile(b.String())
	if err != nil {
		// Every piece is quoted or a fixed construct, so only an absurd
		// pattern lands here; it then matches only itself.
		return nil
	}
	return re
}
