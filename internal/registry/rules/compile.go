package rules

import (
	"fmt"
	"strings"

	"cel.dev/cel-go/cel"
	celast "cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/functions"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/ext"
)

// envs is one CEL environment: the message environment (variable message)
// or the field environment (value, name, fullName, typeName, tags,
// message).
type envs struct {
	env *cel.Env
}

// Variable names.
const (
	varMessage  = "message"
	varValue    = "value"
	varName     = "name"
	varFullName = "fullName"
	varTypeName = "typeName"
	varTags     = "tags"
)

// interruptEvery is how many comprehension iterations pass between checks
// of the evaluation's context.
const interruptEvery = 64

// maxRegexProgram bounds a regular expression's compiled size.
const maxRegexProgram = 4096

func newEnvs(field bool, maxLen int) (envs, error) {
	opts := []cel.EnvOption{
		cel.CrossTypeNumericComparisons(true),
		cel.ParserExpressionSizeLimit(maxLen),
		cel.RegexProgramSizeLimit(maxRegexProgram),
		ext.Strings(ext.StringsValidateFormatCalls(true)),
		ext.Encoders(),
		ext.Math(),
		ext.Sets(),
		cel.Variable(varMessage, cel.DynType),
		checksLibrary(),
	}
	if field {
		opts = append(opts,
			cel.Variable(varValue, cel.DynType),
			cel.Variable(varName, cel.StringType),
			cel.Variable(varFullName, cel.StringType),
			cel.Variable(varTypeName, cel.StringType),
			cel.Variable(varTags, cel.ListType(cel.StringType)),
		)
	}
	env, err := cel.NewEnv(opts...)
	if err != nil {
		return envs{}, err
	}
	return envs{env: env}, nil
}

// progKey identifies a compiled rule expression.
type progKey struct {
	typ, kind, expr string
}

// compiled is a rule's programs: guard (nil without one) and body, or the
// compile error (cached too, so a bad rule is not recompiled per record).
type compiled struct {
	guard cel.Program
	body  cel.Program
	err   error
	// loops is set when guard or body has a comprehension: only those
	// check the context while they run, so only they pay for ContextEval.
	loops bool
}

// program returns the cached programs of (typ, kind, expr), compiling them
// on first use. typ is TypeCEL or TypeCELField; kind is upper case.
func (e *Engine) program(typ, kind, expr string) *compiled {
	k := progKey{typ: typ, kind: kind, expr: expr}
	e.mu.RLock()
	c, ok := e.cache[k]
	e.mu.RUnlock()
	if ok {
		return c
	}
	c = e.compile(typ, kind, expr)
	e.mu.Lock()
	if len(e.cache) >= e.maxPrograms {
		e.log.Debug("rules: program cache full, emptied", "programs", len(e.cache))
		clear(e.cache)
	}
	e.cache[k] = c
	e.mu.Unlock()
	return c
}

func (e *Engine) compile(typ, kind, expr string) *compiled {
	env := e.msgEnv.env
	if typ == TypeCELField {
		env = e.fieldEnv.env
	}
	guard, body, hasGuard := splitGuard(expr)
	c := &compiled{}
	if hasGuard && strings.TrimSpace(guard) != "" {
		p, loops, err := e.compileOne(env, guard, true)
		c.loops = c.loops || loops
		if err != nil {
			c.err = fmt.Errorf("%w: guard %q: %w", ErrCompile, strings.TrimSpace(guard), err)
			return c
		}
		c.guard = p
	}
	if strings.TrimSpace(body) == "" {
		c.err = fmt.Errorf("%w: the expression after the guard is empty", ErrCompile)
		return c
	}
	p, loops, err := e.compileOne(env, body, kind == KindCondition)
	c.loops = c.loops || loops
	if err != nil {
		c.err = fmt.Errorf("%w: %w", ErrCompile, err)
		return c
	}
	c.body = p
	return c
}

// compileOne compiles one expression; wantBool rejects an expression whose
// type is known and not bool.
func (e *Engine) compileOne(env *cel.Env, expr string, wantBool bool) (cel.Program, bool, error) {
	a, iss := env.Compile(expr)
	if iss != nil && iss.Err() != nil {
		return nil, false, iss.Err()
	}
	if wantBool {
		t := a.OutputType()
		if !t.IsExactType(cel.BoolType) && !t.IsExactType(cel.DynType) {
			return nil, false, fmt.Errorf("a condition must be a bool, %q is a %s", strings.TrimSpace(expr), t)
		}
	}
	loops := false
	celast.PreOrderVisit(a.NativeRep().Expr(), celast.NewExprVisitor(func(x celast.Expr) {
		if x.Kind() == celast.ComprehensionKind {
			loops = true
		}
	}))
	p, err := env.Program(a,
		cel.EvalOptions(cel.OptOptimize),
		cel.CostLimit(e.costLimit),
		cel.InterruptCheckFrequency(interruptEvery),
		cel.Functions(boundedReplace(e.maxString)...),
	)
	return p, loops, err
}

// boundedReplace overrides the strings extension's replace, whose result
// can be the square of its input (and nested, far more): a result longer
// than maxLen bytes is an error before it is built.
func boundedReplace(maxLen int) []*functions.Overload {
	do := func(s, old, repl string, n int) ref.Val {
		count := strings.Count(s, old) // len(runes)+1 for an empty old
		if n >= 0 && n < count {
			count = n
		}
		if size := len(s) + count*(len(repl)-len(old)); size > maxLen {
			return types.NewErr("replace would build a string of %d bytes, over the %d-byte limit", size, maxLen)
		}
		return types.String(strings.Replace(s, old, repl, n))
	}
	return []*functions.Overload{
		{Operator: "string_replace_string_string", Function: func(args ...ref.Val) ref.Val {
			s, ok1 := args[0].(types.String)
			old, ok2 := args[1].(types.String)
			repl, ok3 := args[2].(types.String)
			if !ok1 || !ok2 || !ok3 {
				return types.NewErr("no such overload: replace")
			}
			return do(string(s), string(old), string(repl), -1)
		}},
		{Operator: "string_replace_string_string_int", Function: func(args ...ref.Val) ref.Val {
			s, ok1 := args[0].(types.String)
			old, ok2 := args[1].(types.String)
			repl, ok3 := args[2].(types.String)
			n, ok4 := args[3].(types.Int)
			if !ok1 || !ok2 || !ok3 || !ok4 {
				return types.NewErr("no such overload: replace")
			}
			return do(string(s), string(old), string(repl), int(n))
		}},
	}
}

// splitGuard splits "guard ; expr" at the first ';' outside a string or
// bytes literal (Confluent splits at the first ';'; a ';' inside a literal
// would break the expression there, here it does not).
func splitGuard(expr string) (guard, body string, ok bool) {
	for i := 0; i < len(expr); i++ {
		switch c := expr[i]; c {
		case ';':
			return expr[:i], expr[i+1:], true
		case '\'', '"':
			i = skipLiteral(expr, i)
		}
	}
	return "", expr, false
}

// skipLiteral returns the index of the last byte of the string literal
// whose opening quote is at expr[i] (len(expr)-1 when it is unterminated;
// the compiler then reports it).
func skipLiteral(expr string, i int) int {
	q := expr[i]
	raw := false
	for j := i - 1; j >= 0 && j >= i-2; j-- {
		c := expr[j]
		if c == 'r' || c == 'R' {
			raw = true
		} else if c != 'b' && c != 'B' {
			break
		}
	}
	triple := i+2 < len(expr) && expr[i+1] == q && expr[i+2] == q
	j := i + 1
	if triple {
		j = i + 3
	}
	for ; j < len(expr); j++ {
		c := expr[j]
		if c == '\\' && !raw {
			j++
			continue
		}
		if c != q {
			continue
		}
		if !triple {
			return j
		}
		if j+2 < len(expr) && expr[j+1] == q && expr[j+2] == q {
			return j + 2
		}
	}
	return len(expr) - 1
}
