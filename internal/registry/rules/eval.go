package rules

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/common/types/traits"
	"cel.dev/cel-go/interpreter"

	"github.com/runnel-dev/runnel/internal/registry"
)

// msgActivation binds the CEL rule's one variable.
type msgActivation struct {
	message ref.Val
}

func (a *msgActivation) ResolveName(name string) (any, bool) {
	if name == varMessage {
		return a.message, true
	}
	return nil, false
}

func (a *msgActivation) Parent() interpreter.Activation { return nil }

// eval runs p and returns its result, or an error message; it never
// panics (cel-go reports errors as values; a panic in a function binding
// is recovered here as the last line of defence).
func eval(ctx context.Context, p cel.Program, loops bool, act interpreter.Activation) (out ref.Val, errMsg string) {
	defer func() {
		if r := recover(); r != nil {
			out, errMsg = nil, fmt.Sprintf("evaluation panicked: %v", r)
		}
	}()
	var v ref.Val
	var err error
	if loops && ctx.Done() != nil {
		// Only comprehensions check for interruption; the cost limit bounds
		// every expression either way.
		v, _, err = p.ContextEval(ctx, act)
	} else {
		v, _, err = p.Eval(act)
	}
	if err != nil {
		return nil, err.Error()
	}
	if types.IsError(v) {
		if e, ok := v.Value().(error); ok {
			return nil, e.Error()
		}
		return nil, fmt.Sprint(v.Value())
	}
	if types.IsUnknown(v) {
		return nil, "the expression's result is unknown (an undeclared variable?)"
	}
	return v, ""
}

// runGuarded evaluates c on act: the guard first (false or an error skips
// the rule: skipped is true), then the body.
func runGuarded(ctx context.Context, c *compiled, act interpreter.Activation) (out ref.Val, skipped bool, errMsg string) {
	if c.guard != nil {
		g, msg := eval(ctx, c.guard, c.loops, act)
		if msg != "" || g != types.True {
			// As in Confluent's executors, a guard that errors counts as
			// false: the rule does not apply.
			return nil, true, ""
		}
	}
	out, errMsg = eval(ctx, c.body, c.loops, act)
	return out, false, errMsg
}

// evalMessage runs a CEL rule on the whole value.
func (e *Engine) evalMessage(ctx context.Context, r *registry.Rule, kind string, value any) (newValue any, changed bool, status Status, msg string) {
	c := e.program(TypeCEL, kind, r.Expr)
	if c.err != nil {
		return nil, false, StatusError, fmt.Sprintf("rule %q: %v", r.Name, c.err)
	}
	act := &msgActivation{message: types.DefaultTypeAdapter.NativeToValue(value)}
	out, skipped, errMsg := runGuarded(ctx, c, act)
	switch {
	case skipped:
		return nil, false, StatusPassed, ""
	case errMsg != "":
		return nil, false, StatusError, fmt.Sprintf("rule %q: %s", r.Name, errMsg)
	case kind == KindCondition:
		b, ok := out.(types.Bool)
		if !ok {
			return nil, false, StatusError, fmt.Sprintf("rule %q: condition evaluated to %s, not bool", r.Name, out.Type().TypeName())
		}
		if !b {
			return nil, false, StatusFailed, failMessage(r)
		}
		return nil, false, StatusPassed, ""
	}
	if out == types.NullValue {
		return nil, false, StatusError, fmt.Sprintf("rule %q: transform returned null", r.Name)
	}
	v, err := toNative(out)
	if err != nil {
		return nil, false, StatusError, fmt.Sprintf("rule %q: transform result: %v", r.Name, err)
	}
	return v, true, StatusPassed, ""
}

// maxDepth bounds how deep toNative and the field walk descend (decoded
// values are finite trees; this stops a cyclic value built by a caller).
const maxDepth = 256

var errTooDeep = errors.New("value nested too deeply")

// toNative converts a CEL result to the Go values Schema.Decode uses.
func toNative(v ref.Val) (any, error) { return toNativeDepth(v, 0) }

func toNativeDepth(v ref.Val, depth int) (any, error) {
	if depth > maxDepth {
		return nil, errTooDeep
	}
	switch x := v.(type) {
	case types.Null:
		return nil, nil
	case types.Bool:
		return bool(x), nil
	case types.Int:
		return int64(x), nil
	case types.Uint:
		return uint64(x), nil
	case types.Double:
		return float64(x), nil
	case types.String:
		return string(x), nil
	case types.Bytes:
		return []byte(x), nil
	}
	switch raw := v.Value().(type) {
	case map[string]any, []any:
		// An input map or list passed through unchanged.
		return raw, nil
	}
	switch x := v.(type) {
	case traits.Mapper:
		out := make(map[string]any)
		it := x.Iterator()
		for it.HasNext() == types.True {
			k := it.Next()
			ks, ok := k.(types.String)
			if !ok {
				return nil, fmt.Errorf("map key %v is a %s, not a string", k, k.Type().TypeName())
			}
			ev, err := toNativeDepth(x.Get(k), depth+1)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", string(ks), err)
			}
			out[string(ks)] = ev
		}
		return out, nil
	case traits.Lister:
		var out []any
		it := x.Iterator()
		for it.HasNext() == types.True {
			ev, err := toNativeDepth(it.Next(), depth+1)
			if err != nil {
				return nil, err
			}
			out = append(out, ev)
		}
		if out == nil {
			out = []any{}
		}
		return out, nil
	}
	return nil, fmt.Errorf("a %s is not a record value", v.Type().TypeName())
}

// typeNameVals are the typeName values as CEL strings.
var typeNameVals = map[string]ref.Val{}

func init() {
	for _, n := range []string{"STRING", "LONG", "INT", "DOUBLE", "FLOAT", "BOOLEAN", "BYTES"} {
		typeNameVals[n] = types.String(n)
	}
}

// Ensure a field activation resolves only declared names.
var _ interpreter.Activation = (*fieldActivation)(nil)

// fieldActivation binds a CEL_FIELD rule's variables for one field; one is
// reused for every field of a Check.
type fieldActivation struct {
	value    any
	name     string
	fullName string
	typeName string
	message  any
	// tags are resolved on first use: most expressions never read them.
	w        *fieldWalker
	tags     []string
	tagsDone bool
}

func (a *fieldActivation) ResolveName(name string) (any, bool) {
	switch name {
	case varValue:
		return a.value, true
	case varName:
		return a.name, true
	case varFullName:
		return a.fullName, true
	case varTypeName:
		// Interned: no conversion per field.
		if v, ok := typeNameVals[a.typeName]; ok {
			return v, true
		}
		return a.typeName, true
	case varTags:
		if !a.tagsDone {
			a.tags, a.tagsDone = a.w.tagsFor(a.fullName), true
		}
		if a.tags == nil {
			return []string{}, true
		}
		return a.tags, true
	case varMessage:
		return a.message, true
	}
	return nil, false
}

func (a *fieldActivation) Parent() interpreter.Activation { return nil }

// evalFields runs a CEL_FIELD rule on every matching field of value.
func (e *Engine) evalFields(ctx context.Context, fw *fieldWalker, r *registry.Rule, kind string, value any) (newValue any, changed bool, status Status, field, msg string) {
	c := e.program(TypeCELField, kind, r.Expr)
	if c.err != nil {
		return nil, false, StatusError, "", fmt.Sprintf("rule %q: %v", r.Name, c.err)
	}
	fw.reset(r, c, kind)
	v, ch, err := fw.walk(ctx, value, "", "", nil, 0)
	if err != nil {
		var fe *fieldError
		if errors.As(err, &fe) {
			return nil, false, fe.status, fe.path, fe.msg
		}
		return nil, false, StatusError, "", fmt.Sprintf("rule %q: %v", r.Name, err)
	}
	if !ch {
		return nil, false, StatusPassed, "", ""
	}
	return v, true, StatusPassed, "", ""
}

// fieldError stops a field walk at the field that failed.
type fieldError struct {
	status Status
	path   string
	msg    string
}

func (e *fieldError) Error() string { return e.msg }

// failField builds the failure of rule r at a field.
func failField(r *registry.Rule, status Status, path, detail string) *fieldError {
	if status == StatusFailed {
		return &fieldError{status: status, path: path, msg: fmt.Sprintf("field %s: %s", path, failMessage(r))}
	}
	return &fieldError{status: status, path: path, msg: fmt.Sprintf("rule %q: field %s: %s", r.Name, path, detail)}
}

// join appends a field name to a path.
func join(path, name string) string {
	if path == "" {
		return name
	}
	var b strings.Builder
	b.Grow(len(path) + 1 + len(name))
	b.WriteString(path)
	b.WriteByte('.')
	b.WriteString(name)
	return b.String()
}
