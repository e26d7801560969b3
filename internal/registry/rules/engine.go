package rules

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"

	"github.com/runnel-dev/runnel/internal/registry"
)

// Mode is the direction a record travels when rules run.
type Mode string

// Modes Check and Migrate run in, and the extra modes a rule may name.
const (
	// ModeWrite is a produce: rules with mode WRITE or WRITEREAD apply.
	ModeWrite Mode = "WRITE"
	// ModeRead is a consume: rules with mode READ or WRITEREAD apply.
	ModeRead Mode = "READ"
	// ModeUpgrade migrates a record to a newer schema version: migration
	// rules with mode UPGRADE or UPDOWN apply.
	ModeUpgrade Mode = "UPGRADE"
	// ModeDowngrade migrates a record to an older schema version: migration
	// rules with mode DOWNGRADE or UPDOWN apply.
	ModeDowngrade Mode = "DOWNGRADE"
	// ModeWriteRead is a rule mode only: WRITE and READ.
	ModeWriteRead Mode = "WRITEREAD"
	// ModeUpDown is a rule mode only: UPGRADE and DOWNGRADE.
	ModeUpDown Mode = "UPDOWN"
)

// Rule types this package evaluates.
const (
	TypeCEL      = "CEL"
	TypeCELField = "CEL_FIELD"
)

// Rule kinds.
const (
	KindCondition = "CONDITION"
	KindTransform = "TRANSFORM"
)

// Action is what the contract asks the caller to do after a rule ran.
type Action string

// Actions.
const (
	// ActionNone: nothing; the record goes on.
	ActionNone Action = "NONE"
	// ActionError: reject the record.
	ActionError Action = "ERROR"
	// ActionDLQ: write the record, unchanged, to the dead-letter topic
	// (Outcome.Param("dlq.topic") when set) and do not write it where it
	// was going.
	ActionDLQ Action = "DLQ"
)

// Status is how one rule ended.
type Status int

// Statuses.
const (
	// StatusPassed: a condition held, a transform produced a value, or a
	// guard skipped the rule.
	StatusPassed Status = iota
	// StatusFailed: a condition evaluated to false.
	StatusFailed
	// StatusError: the rule could not be evaluated (unknown type or mode,
	// compile error, runtime error, cost limit, a condition that is not a
	// bool, a transform result that is not a record value).
	StatusError
)

// String returns "passed", "failed" or "error".
func (s Status) String() string {
	switch s {
	case StatusPassed:
		return "passed"
	case StatusFailed:
		return "failed"
	case StatusError:
		return "error"
	}
	return fmt.Sprintf("Status(%d)", int(s))
}

// Outcome is what happened to one rule.
type Outcome struct {
	// Rule is the rule's name; Type and Kind are the rule's.
	Rule string
	Type string
	Kind string
	// Status says whether the rule passed, failed or could not run.
	Status Status
	// Action is the onSuccess action for a passed rule and the onFailure
	// action otherwise, resolved for the mode (see the package doc).
	Action Action
	// Message says why a rule failed or errored ("" when it passed): the
	// rule's doc when it has one, else the expression, and for CEL_FIELD the
	// field's path.
	Message string
	// Field is the path of the field that failed a CEL_FIELD rule.
	Field string
	// Params are the rule's params as registered (not a copy; do not
	// modify). Param also looks in the metadata's properties.
	Params map[string]string

	props map[string]string
}

// Passed reports whether the rule passed.
func (o Outcome) Passed() bool { return o.Status == StatusPassed }

// Param returns a rule parameter (e.g. "dlq.topic"): the rule's params
// first, then the contract metadata's properties, as Confluent's clients
// resolve them.
func (o Outcome) Param(name string) (string, bool) {
	if v, ok := o.Params[name]; ok {
		return v, true
	}
	v, ok := o.props[name]
	return v, ok
}

// Result is what Check or Migrate did to one record.
type Result struct {
	// Value is the record after the transforms that ran; the value given
	// when none did (never modified in place).
	Value any
	// Transformed reports whether a transform produced Value.
	Transformed bool
	// Outcomes has one entry per rule evaluated, in evaluation order.
	Outcomes []Outcome
}

// Action is the action the record gets: ERROR if any outcome asks for it,
// else DLQ if any does, else NONE.
func (r Result) Action() Action {
	act := ActionNone
	for _, o := range r.Outcomes {
		switch o.Action {
		case ActionError:
			return ActionError
		case ActionDLQ:
			act = ActionDLQ
		}
	}
	return act
}

// Failure returns the first outcome that did not pass and whose action is
// not NONE: the rule that decides the record's fate.
func (r Result) Failure() (Outcome, bool) {
	for _, o := range r.Outcomes {
		if o.Status != StatusPassed && o.Action != ActionNone {
			return o, true
		}
	}
	return Outcome{}, false
}

// FieldTags returns the tags a schema gives the field at path (see the
// package doc for paths). It may be nil.
type FieldTags func(path string) []string

// Sentinel errors.
var (
	// ErrInvalidRule means a rule is malformed (name, kind, mode, action).
	ErrInvalidRule = errors.New("rules: invalid rule")
	// ErrUnsupportedType means a rule's type is not one this package
	// evaluates (CEL, CEL_FIELD).
	ErrUnsupportedType = errors.New("rules: unsupported rule type")
	// ErrCompile means a rule's expression does not compile.
	ErrCompile = errors.New("rules: expression does not compile")
	// ErrInvalidOptions means NewEngine was given bad Options.
	ErrInvalidOptions = errors.New("rules: invalid options")
	// ErrInvalidMode means Check or Migrate was called with a mode it does
	// not run.
	ErrInvalidMode = errors.New("rules: invalid mode")
)

// Options configure an Engine. The zero value is usable.
type Options struct {
	// CostLimit bounds one evaluation of one expression, in cel-go cost
	// units (about one per operation, more for string and list work);
	// DefaultCostLimit when 0.
	CostLimit uint64
	// MaxExprLen bounds an expression's length in code points;
	// DefaultMaxExprLen when 0.
	MaxExprLen int
	// MaxPrograms bounds the compiled-program cache (emptied when full);
	// DefaultMaxPrograms when 0.
	MaxPrograms int
	// MaxStringLen bounds the string a replace() may build, in bytes (the
	// one string function whose output can outgrow its input by more than
	// a constant); DefaultMaxStringLen when 0.
	MaxStringLen int
	// Logger receives the engine's logs; discarded when nil.
	Logger *slog.Logger
}

// Defaults for Options.
const (
	DefaultCostLimit    = 1_000_000
	DefaultMaxExprLen   = 16 << 10
	DefaultMaxPrograms  = 4096
	DefaultMaxStringLen = 4 << 20
)

// Engine evaluates data contract rules. It is safe for concurrent use;
// compiled programs are shared.
type Engine struct {
	costLimit   uint64
	maxPrograms int
	maxString   int
	log         *slog.Logger
	msgEnv      envs
	fieldEnv    envs

	mu    sync.RWMutex
	cache map[progKey]*compiled
}

// NewEngine builds an Engine. It fails only if opts are invalid.
func NewEngine(opts Options) (*Engine, error) {
	if opts.MaxExprLen < 0 || opts.MaxPrograms < 0 || opts.MaxStringLen < 0 {
		return nil, fmt.Errorf("%w: MaxExprLen, MaxPrograms and MaxStringLen must not be negative", ErrInvalidOptions)
	}
	e := &Engine{
		costLimit:   opts.CostLimit,
		maxPrograms: opts.MaxPrograms,
		maxString:   opts.MaxStringLen,
		log:         opts.Logger,
		cache:       make(map[progKey]*compiled),
	}
	if e.costLimit == 0 {
		e.costLimit = DefaultCostLimit
	}
	if e.maxString == 0 {
		e.maxString = DefaultMaxStringLen
	}
	if e.maxPrograms == 0 {
		e.maxPrograms = DefaultMaxPrograms
	}
	if e.log == nil {
		e.log = slog.New(slog.DiscardHandler)
	}
	maxLen := opts.MaxExprLen
	if maxLen == 0 {
		maxLen = DefaultMaxExprLen
	}
	var err error
	if e.msgEnv, err = newEnvs(false, maxLen); err != nil {
		return nil, fmt.Errorf("rules: building the CEL environment: %w", err)
	}
	if e.fieldEnv, err = newEnvs(true, maxLen); err != nil {
		return nil, fmt.Errorf("rules: building the CEL_FIELD environment: %w", err)
	}
	return e, nil
}

// Check runs rs's domain rules that apply in mode (ModeWrite or ModeRead)
// on value, a record decoded by registry.Schema.Decode. md is the
// contract's metadata (tags by path, properties for Outcome.Param) and
// fieldTags the schema's own field tags; both may be nil, as may rs.
//
// Rule problems are outcomes, not errors: the error is for a bad mode or a
// cancelled ctx.
func (e *Engine) Check(ctx context.Context, rs *registry.RuleSet, md *registry.Metadata, mode Mode, value any, fieldTags FieldTags) (Result, error) {
	if mode != ModeWrite && mode != ModeRead {
		return Result{Value: value}, fmt.Errorf("%w: Check runs in WRITE or READ, not %q (migration rules run through Migrate)", ErrInvalidMode, mode)
	}
	var list []registry.Rule
	if rs != nil {
		list = rs.DomainRules
	}
	return e.run(ctx, list, md, mode, value, fieldTags)
}

// Migrate runs rs's migration rules that apply in mode (ModeUpgrade or
// ModeDowngrade) on value, as Check does for domain rules. The broker does
// not call it; it is for tools that move records between schema versions.
func (e *Engine) Migrate(ctx context.Context, rs *registry.RuleSet, md *registry.Metadata, mode Mode, value any, fieldTags FieldTags) (Result, error) {
	if mode != ModeUpgrade && mode != ModeDowngrade {
		return Result{Value: value}, fmt.Errorf("%w: Migrate runs in UPGRADE or DOWNGRADE, not %q", ErrInvalidMode, mode)
	}
	var list []registry.Rule
	if rs != nil {
		list = rs.MigrationRules
	}
	return e.run(ctx, list, md, mode, value, fieldTags)
}

// ruleMode parses a rule's mode; "" is WRITEREAD.
func ruleMode(s string) (Mode, bool) {
	m := Mode(strings.ToUpper(strings.TrimSpace(s)))
	switch m {
	case "":
		return ModeWriteRead, true
	case ModeWrite, ModeRead, ModeWriteRead, ModeUpgrade, ModeDowngrade, ModeUpDown:
		return m, true
	}
	return "", false
}

// applies reports whether a rule of mode rm runs in mode.
func applies(rm, mode Mode) bool {
	switch rm {
	case ModeWriteRead:
		return mode == ModeWrite || mode == ModeRead
	case ModeUpDown:
		return mode == ModeUpgrade || mode == ModeDowngrade
	}
	return rm == mode
}

// actionFor resolves an onSuccess/onFailure value for mode: "" is def, and
// "A,B" on a WRITEREAD or UPDOWN rule is A on write/upgrade, B on
// read/downgrade.
func actionFor(spec string, rm, mode Mode, def Action) (Action, error) {
	spec = strings.TrimSpace(spec)
	if spec == "" {
		return def, nil
	}
	if i := strings.IndexByte(spec, ','); i >= 0 {
		if rm != ModeWriteRead && rm != ModeUpDown {
			return "", fmt.Errorf("%w: action %q has two parts but the rule's mode is %s (only WRITEREAD and UPDOWN rules take one action per direction)", ErrInvalidRule, spec, rm)
		}
		if strings.Count(spec, ",") > 1 {
			return "", fmt.Errorf("%w: action %q has more than two parts", ErrInvalidRule, spec)
		}
		if mode == ModeWrite || mode == ModeUpgrade {
			spec = spec[:i]
		} else {
			spec = spec[i+1:]
		}
		spec = strings.TrimSpace(spec)
		if spec == "" {
			return def, nil
		}
	}
	switch a := Action(strings.ToUpper(spec)); a {
	case ActionNone, ActionError, ActionDLQ:
		return a, nil
	}
	return "", fmt.Errorf("%w: unknown action %q (NONE, ERROR or DLQ)", ErrInvalidRule, spec)
}

func (e *Engine) run(ctx context.Context, list []registry.Rule, md *registry.Metadata, mode Mode, value any, fieldTags FieldTags) (Result, error) {
	res := Result{Value: value}
	if len(list) == 0 {
		return res, nil
	}
	if err := ctx.Err(); err != nil {
		return res, fmt.Errorf("rules: %w", err)
	}
	reverse := mode == ModeRead || mode == ModeDowngrade
	var props map[string]string
	if md != nil {
		props = md.Properties
	}
	var fw *fieldWalker
	for n := range list {
		i := n
		if reverse {
			i = len(list) - 1 - n
		}
		r := &list[i]
		if r.Disabled {
			continue
		}
		rm, ok := ruleMode(r.Mode)
		if !ok {
			// The mode decides whether the rule applies at all: report it
			// rather than guess.
			res.Outcomes = append(res.Outcomes, Outcome{
				Rule: r.Name, Type: r.Type, Kind: r.Kind, Status: StatusError, Action: ActionError,
				Message: fmt.Sprintf("rule %q has unknown mode %q", r.Name, r.Mode), Params: r.Params, props: props,
			})
			break
		}
		if !applies(rm, mode) {
			continue
		}
		if r.Type == TypeCELField && strings.EqualFold(r.Kind, KindTransform) && shadowed(list, i, reverse) {
			continue
		}
		out := Outcome{Rule: r.Name, Type: r.Type, Kind: r.Kind, Params: r.Params, props: props}
		var newValue any
		var changed bool
		var field, msg string
		status := StatusPassed
		kind := strings.ToUpper(r.Kind)
		switch {
		case kind != KindCondition && kind != KindTransform:
			status, msg = StatusError, fmt.Sprintf("rule %q has kind %q (CONDITION or TRANSFORM)", r.Name, r.Kind)
		case r.Type == TypeCEL:
			newValue, changed, status, msg = e.evalMessage(ctx, r, kind, res.Value)
		case r.Type == TypeCELField:
			if fw == nil {
				fw = &fieldWalker{md: md, fieldTags: fieldTags}
			}
			newValue, changed, status, field, msg = e.evalFields(ctx, fw, r, kind, res.Value)
		default:
			status, msg = StatusError, fmt.Sprintf("rule %q has type %q, which this broker does not evaluate (CEL, CEL_FIELD)", r.Name, r.Type)
		}
		if changed {
			res.Value, res.Transformed = newValue, true
		}
		out.Status, out.Field, out.Message = status, field, msg
		var err error
		if status == StatusPassed {
			out.Action, err = actionFor(r.OnSuccess, rm, mode, ActionNone)
		} else {
			out.Action, err = actionFor(r.OnFailure, rm, mode, ActionError)
		}
		if err != nil {
			// A misspelt action must not turn a rejection into a pass.
			out.Status, out.Action, out.Message = StatusError, ActionError, err.Error()
		}
		res.Outcomes = append(res.Outcomes, out)
		if out.Status != StatusPassed && out.Action != ActionNone {
			break
		}
		if err := ctx.Err(); err != nil {
			return res, fmt.Errorf("rules: %w", err)
		}
	}
	return res, nil
}

// shadowed reports whether the CEL_FIELD transform list[i] is skipped
// because one that runs before it has the same mode and tags (Confluent's
// rule: one field transform per tag set).
func shadowed(list []registry.Rule, i int, reverse bool) bool {
	r := &list[i]
	if len(r.Tags) == 0 {
		return false
	}
	same := func(o *registry.Rule) bool {
		return !o.Disabled && o.Type == r.Type && strings.EqualFold(o.Kind, r.Kind) &&
			strings.EqualFold(o.Mode, r.Mode) && slices.Equal(o.Tags, r.Tags)
	}
	if reverse {
		for j := i + 1; j < len(list); j++ {
			if same(&list[j]) {
				return true
			}
		}
		return false
	}
	for j := 0; j < i; j++ {
		if same(&list[j]) {
			return true
		}
	}
	return false
}

// failMessage is the message of a failed condition: the rule's doc, else
// the expression.
func failMessage(r *registry.Rule) string {
	if r.Doc != "" {
		return r.Doc
	}
	if r.Expr != "" {
		return fmt.Sprintf("Expr failed: '%s'", r.Expr)
	}
	return fmt.Sprintf("Condition failed: '%s'", r.Name)
}

// Validate checks a rule as the registry should before storing it: name,
// kind, mode, actions, and for CEL and CEL_FIELD that the expression
// compiles (a CONDITION whose type is known must be a bool). A rule of
// another type is an error wrapping ErrUnsupportedType, which a registry
// that stores rules for clients may choose to accept.
func (e *Engine) Validate(r registry.Rule) error {
	if strings.TrimSpace(r.Name) == "" {
		return fmt.Errorf("%w: a rule needs a name", ErrInvalidRule)
	}
	kind := strings.ToUpper(r.Kind)
	if kind != KindCondition && kind != KindTransform {
		return fmt.Errorf("%w: rule %q has kind %q (CONDITION or TRANSFORM)", ErrInvalidRule, r.Name, r.Kind)
	}
	rm, ok := ruleMode(r.Mode)
	if !ok {
		return fmt.Errorf("%w: rule %q has mode %q (WRITE, READ, WRITEREAD, UPGRADE, DOWNGRADE or UPDOWN)", ErrInvalidRule, r.Name, r.Mode)
	}
	for _, spec := range []string{r.OnSuccess, r.OnFailure} {
		for _, m := range []Mode{ModeWrite, ModeRead, ModeUpgrade, ModeDowngrade} {
			if _, err := actionFor(spec, rm, m, ActionNone); err != nil {
				return fmt.Errorf("rule %q: %w", r.Name, err)
			}
		}
	}
	switch r.Type {
	case TypeCEL, TypeCELField:
	default:
		return fmt.Errorf("%w: rule %q has type %q (this broker evaluates CEL and CEL_FIELD)", ErrUnsupportedType, r.Name, r.Type)
	}
	if strings.TrimSpace(r.Expr) == "" {
		return fmt.Errorf("%w: rule %q has no expression", ErrInvalidRule, r.Name)
	}
	c := e.program(r.Type, kind, r.Expr)
	if c.err != nil {
		return fmt.Errorf("rule %q: %w", r.Name, c.err)
	}
	return nil
}

// ValidateRuleSet validates every rule of rs (see Validate) and the set:
// rule names unique within each list, domain rules in WRITE, READ or
// WRITEREAD, migration rules in UPGRADE, DOWNGRADE or UPDOWN. Encoding
// rules are checked for names and modes only. nil is valid.
func (e *Engine) ValidateRuleSet(rs *registry.RuleSet) error {
	if rs == nil {
		return nil
	}
	check := func(list string, rules []registry.Rule, modes []Mode, full bool) error {
		seen := make(map[string]bool, len(rules))
		for _, r := range rules {
			if seen[r.Name] {
				return fmt.Errorf("%w: %s has two rules named %q", ErrInvalidRule, list, r.Name)
			}
			seen[r.Name] = true
			rm, ok := ruleMode(r.Mode)
			if ok && !slices.Contains(modes, rm) {
				return fmt.Errorf("%w: %s rule %q has mode %s (allowed: %v)", ErrInvalidRule, list, r.Name, rm, modes)
			}
			if full {
				if err := e.Validate(r); err != nil {
					return fmt.Errorf("%s: %w", list, err)
				}
			} else if strings.TrimSpace(r.Name) == "" {
				return fmt.Errorf("%w: %s: a rule needs a name", ErrInvalidRule, list)
			} else if !ok {
				return fmt.Errorf("%w: %s rule %q has mode %q", ErrInvalidRule, list, r.Name, r.Mode)
			}
		}
		return nil
	}
	if err := check("domainRules", rs.DomainRules, []Mode{ModeWrite, ModeRead, ModeWriteRead}, true); err != nil {
		return err
	}
	if err := check("migrationRules", rs.MigrationRules, []Mode{ModeUpgrade, ModeDowngrade, ModeUpDown}, true); err != nil {
		return err
	}
	return check("encodingRules", rs.EncodingRules, []Mode{ModeWrite, ModeRead, ModeWriteRead}, false)
}
