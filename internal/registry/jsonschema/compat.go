package jsonschema

// Compatibility: can a reader schema accept every value a writer schema
// allows? The analysis is structural over the compiled schemas (references
// already resolved by the library), and sound in one direction: it may call
// a compatible pair incompatible, never the reverse.
//
// What is analysed, with Confluent's difference names in messages:
//   - type (TYPE_CHANGED, TYPE_NARROWED; integer→number is a widening);
//   - enum and const (ENUM_ARRAY_NARROWED; a writer limited to a finite set
//     of values, by enum, const, or a null/boolean type, is decided exactly
//     by validating each value against the reader);
//   - strings: maxLength, minLength, pattern (must be identical), format;
//   - numbers: maximum, minimum, exclusive bounds, multipleOf;
//   - arrays: items, prefixItems, additionalItems (positional, open and
//     closed), minItems, maxItems, uniqueItems, contains;
//   - objects: properties against open, closed and partially open content
//     models (PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL,
//     PROPERTY_REMOVED_FROM_CLOSED_CONTENT_MODEL, ..._PARTIALLY_OPEN_...),
//     required (REQUIRED_ATTRIBUTE_ADDED; with a default it is compatible,
//     as in Confluent), patternProperties, additionalProperties,
//     minProperties, maxProperties, dependencies, dependentRequired,
//     dependentSchemas, propertyNames;
//   - allOf, anyOf, oneOf (including whether oneOf branches stay exclusive),
//     not, if/then/else, and $ref (followed, recursion handled).
//
// Not analysed, answered "incompatible" when they appear in the reader:
// $dynamicRef and $recursiveRef; unevaluatedProperties and unevaluatedItems
// are treated like additionalProperties/additional items (stricter than
// they are, so never a false "compatible"). Writer constraints that are not
// analysed (if/then/else, $dynamicRef, ...) are ignored, which only makes
// the writer look more permissive.

import (
	"fmt"
	"math/big"
	"sort"
	"strconv"
	"strings"

	lib "github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/runnel-dev/runnel/internal/registry"
)

const (
	// maxSteps bounds the work of one check; past it the answer is
	// "incompatible" rather than a guess.
	maxSteps = 20000
	// maxBranches bounds how many writer alternatives (products of anyOf
	// and oneOf) one position expands to.
	maxBranches = 64
)

// CanRead reports whether data written with writer can be read with reader;
// each returned message says what broke and where. Both must be schemas
// parsed by this package.
func (*Format) CanRead(reader, writer registry.Schema) []string {
	r, ok1 := reader.(*Schema)
	w, ok2 := writer.(*Schema)
	if !ok1 || !ok2 {
		return []string{fmt.Sprintf("SCHEMA_TYPE_CHANGED at #: a JSON Schema cannot be compared with a %T", pick(ok1, writer, reader))}
	}
	c := &checker{inProgress: map[string]bool{}}
	msgs := c.check(r.compiled, conj{atoms: []*lib.Schema{w.compiled}}, "#")
	return dedupe(msgs)
}

// CanRead is Format.CanRead, so that the registry can ask either a format
// or one of its schemas.
func (*Schema) CanRead(reader, writer registry.Schema) []string {
	return (*Format)(nil).CanRead(reader, writer)
}

func pick(firstOK bool, second, first registry.Schema) registry.Schema {
	if firstOK {
		return second
	}
	return first
}

func dedupe(msgs []string) []string {
	if len(msgs) == 0 {
		return nil
	}
	seen := map[string]bool{}
	out := msgs[:0]
	for _, m := range msgs {
		if !seen[m] {
			seen[m] = true
			out = append(out, m)
		}
	}
	return out
}

// conj is the set of writer values: those valid under every schema in
// atoms and under none in excluded. Before expansion atoms may still hold
// combinators; after, each atom is read for its own keywords only.
type conj struct {
	atoms    []*lib.Schema
	excluded []*lib.Schema
	expanded bool
}

type checker struct {
	steps      int
	inProgress map[string]bool
}

func msg(code, path, format string, args ...any) string {
	return code + " at " + path + ": " + fmt.Sprintf(format, args...)
}

func join(path string, tokens ...string) string {
	var b strings.Builder
	b.WriteString(path)
	for _, t := range tokens {
		b.WriteByte('/')
		t = strings.ReplaceAll(t, "~", "~0")
		b.WriteString(strings.ReplaceAll(t, "/", "~1"))
	}
	return b.String()
}

// check returns why some value of w is not valid under r.
func (c *checker) check(r *lib.Schema, w conj, path string) []string {
	c.steps++
	if c.steps > maxSteps {
		return []string{msg("ANALYSIS_LIMIT_REACHED", path, "the schemas are too large or too deeply nested to prove compatible")}
	}
	if r == nil || (r.Bool != nil && *r.Bool) {
		return nil
	}
	if !w.expanded {
		alts, overflow := expand(w)
		if overflow {
			return []string{msg("ANALYSIS_LIMIT_REACHED", path, "the writer combines more than %d anyOf/oneOf alternatives", maxBranches)}
		}
		var out []string
		for _, alt := range alts {
			out = append(out, c.check(r, alt, path)...)
		}
		return out
	}
	for _, a := range w.atoms {
		if a == r {
			return nil
		}
	}
	key := conjKey(r, w)
	if c.inProgress[key] {
		return nil // recursion: assume the pair holds while proving it
	}
	c.inProgress[key] = true
	defer delete(c.inProgress, key)

	if r.Bool != nil { // false: the reader accepts nothing
		return []string{msg("TYPE_NARROWED", path, "the reader accepts no value (false schema) where the writer allows values")}
	}
	if vals, ok := writerValues(w); ok {
		var out []string
		for _, v := range vals {
			if validate(r, v) != nil {
				out = append(out, msg("ENUM_ARRAY_NARROWED", path, "the writer allows the value %s, which the reader rejects", render(v)))
			}
		}
		return out
	}

	var out []string
	if r.RecursiveRef != nil {
		out = append(out, msg("UNANALYSED_KEYWORD", path, "the reader uses $recursiveRef, whose compatibility is not analysed"))
	}
	if r.DynamicRef != nil {
		out = append(out, msg("UNANALYSED_KEYWORD", path, "the reader uses $dynamicRef, whose compatibility is not analysed"))
	}
	if r.Ref != nil {
		out = append(out, c.check(r.Ref, w, path)...)
	}
	for i, a := range r.AllOf {
		out = append(out, c.check(a, w, join(path, "allOf", strconv.Itoa(i)))...)
	}
	if len(r.AnyOf) > 0 {
		out = append(out, c.checkSum(r.AnyOf, false, w, join(path, "anyOf"))...)
	}
	if len(r.OneOf) > 0 {
		out = append(out, c.checkSum(r.OneOf, true, w, join(path, "oneOf"))...)
	}
	if r.Not != nil && !c.excludes(w, r.Not) {
		out = append(out, msg("NOT_TYPE_EXTENDED", join(path, "not"), "the writer may produce values that the reader's \"not\" schema rejects"))
	}
	if r.If != nil {
		out = append(out, c.checkConditional(r, w, path)...)
	}
	out = append(out, c.checkBase(r, w, path)...)
	return out
}

func conjKey(r *lib.Schema, w conj) string {
	ptrs := func(ss []*lib.Schema) string {
		s := make([]string, len(ss))
		for i, x := range ss {
			s[i] = fmt.Sprintf("%p", x)
		}
		sort.Strings(s)
		return strings.Join(s, ",")
	}
	return fmt.Sprintf("%p|%s|%s", r, ptrs(w.atoms), ptrs(w.excluded))
}

// expand flattens $ref and allOf into atoms, collects "not" schemas as
// exclusions, and splits anyOf/oneOf into alternatives (a oneOf branch
// excludes its siblings). A false schema empties an alternative.
func expand(w conj) (alts []conj, overflow bool) {
	var walk func(atoms, pending, excluded []*lib.Schema)
	walk = func(atoms, pending, excluded []*lib.Schema) {
		if overflow {
			return
		}
		for len(pending) > 0 {
			n := pending[0]
			pending = pending[1:]
			if n == nil || contains(atoms, n) {
				continue
			}
			if n.Bool != nil {
				if !*n.Bool {
					return // no value
				}
				continue
			}
			atoms = append(atoms, n)
			if n.Ref != nil {
				pending = append(pending, n.Ref)
			}
			pending = append(pending, n.AllOf...)
			if n.Not != nil {
				excluded = append(excluded, n.Not)
			}
			if len(n.AnyOf) > 0 || len(n.OneOf) > 0 {
				anyOf := n.AnyOf
				if len(anyOf) == 0 {
					anyOf = []*lib.Schema{nil}
				}
				oneOf := n.OneOf
				if len(oneOf) == 0 {
					oneOf = []*lib.Schema{nil}
				}
				for _, a := range anyOf {
					for j, o := range oneOf {
						ex := excluded
						if o != nil {
							ex = append(append([]*lib.Schema(nil), excluded...), without(n.OneOf, j)...)
						}
						next := append(append([]*lib.Schema(nil), pending...), a, o)
						walk(append([]*lib.Schema(nil), atoms...), next, ex)
					}
				}
				return
			}
		}
		if len(alts) >= maxBranches {
			overflow = true
			return
		}
		alts = append(alts, conj{atoms: atoms, excluded: excluded, expanded: true})
	}
	walk(nil, append([]*lib.Schema(nil), w.atoms...), append([]*lib.Schema(nil), w.excluded...))
	return alts, overflow
}

func contains(ss []*lib.Schema, s *lib.Schema) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

func without(ss []*lib.Schema, i int) []*lib.Schema {
	out := make([]*lib.Schema, 0, len(ss)-1)
	out = append(out, ss[:i]...)
	return append(out, ss[i+1:]...)
}

// checkSum checks a reader anyOf or oneOf: some branch must accept every
// writer value, and for oneOf no other branch may accept any of them.
func (c *checker) checkSum(branches []*lib.Schema, exclusive bool, w conj, path string) []string {
	matched := -1
	var best []string
	for i, b := range branches {
		m := c.check(b, w, join(path, strconv.Itoa(i)))
		if len(m) == 0 {
			matched = i
			break
		}
		if best == nil || len(m) < len(best) {
			best = m
		}
	}
	kw := "anyOf"
	if exclusive {
		kw = "oneOf"
	}
	if matched < 0 {
		out := []string{msg("SUM_TYPE_NARROWED", path, "no branch of the reader's %s accepts every value the writer allows", kw)}
		return append(out, best...)
	}
	if !exclusive {
		return nil
	}
	var out []string
	for k, b := range branches {
		if k == matched || c.excludes(w, b) {
			continue
		}
		out = append(out, msg("SUM_TYPE_NARROWED", join(path, strconv.Itoa(k)),
			"writer values accepted by the reader's oneOf branch %d may also match branch %d, which oneOf rejects", matched, k))
	}
	return out
}

// excludes reports whether no value of w is valid under s: their types or
// values are disjoint, or w already excludes a schema at least as wide as s.
func (c *checker) excludes(w conj, s *lib.Schema) bool {
	if !w.expanded {
		alts, overflow := expand(w)
		if overflow {
			return false
		}
		for _, alt := range alts {
			if !c.excludes(alt, s) {
				return false
			}
		}
		return true
	}
	for _, x := range w.excluded {
		if len(c.check(x, conj{atoms: []*lib.Schema{s}}, "#")) == 0 {
			return true
		}
	}
	salts, overflow := expand(conj{atoms: []*lib.Schema{s}})
	if overflow {
		return false
	}
	for _, salt := range salts {
		if !disjoint(w, salt) {
			return false
		}
	}
	return true
}

// disjoint reports whether two expanded value sets provably share nothing.
func disjoint(a, b conj) bool {
	if typesOf(a.atoms)&typesOf(b.atoms) == 0 {
		return true
	}
	if vals, ok := writerValues(a); ok && noneValid(vals, b) {
		return true
	}
	if vals, ok := writerValues(b); ok && noneValid(vals, a) {
		return true
	}
	// A discriminator: a property both require, with disjoint values.
	for _, name := range requiredNames(b.atoms) {
		if !requires(a.atoms, name) {
			if !objectView(a.atoms).allows(name) && typesOf(a.atoms)&tObject != 0 {
				return true // a forbids the property b requires
			}
			continue
		}
		av, _ := objectView(a.atoms).value(name)
		bv, _ := objectView(b.atoms).value(name)
		ac, bc := conj{atoms: av, expanded: true}, conj{atoms: bv, expanded: true}
		if typesOf(av)&typesOf(bv) == 0 {
			return true
		}
		if vals, ok := writerValues(ac); ok && noneValid(vals, bc) {
			return true
		}
	}
	return false
}

func noneValid(vals []any, w conj) bool {
	for _, v := range vals {
		if valueIn(v, w) {
			return false
		}
	}
	return true
}

// valueIn reports whether v is valid under every atom and no exclusion.
func valueIn(v any, w conj) bool {
	for _, a := range w.atoms {
		if validate(a, v) != nil {
			return false
		}
	}
	for _, x := range w.excluded {
		if validate(x, v) == nil {
			return false
		}
	}
	return true
}

// writerValues lists the writer's values when they are a finite set: an
// enum or const, or a type limited to null and boolean.
func writerValues(w conj) ([]any, bool) {
	var cands []any
	found := false
	for _, a := range w.atoms {
		switch {
		case a.Const != nil:
			cands, found = []any{*a.Const}, true
		case a.Enum != nil:
			cands, found = a.Enum.Values, true
		}
		if found {
			break
		}
	}
	if !found {
		t := typesOf(w.atoms)
		if t&^(tNull|tBoolean) != 0 {
			return nil, false
		}
		if t&tNull != 0 {
			cands = append(cands, nil)
		}
		if t&tBoolean != 0 {
			cands = append(cands, false, true)
		}
	}
	var out []any
	for _, v := range cands {
		if valueIn(v, w) {
			out = append(out, v)
		}
	}
	return out, true
}

func render(v any) string {
	s, err := canonicalJSON(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return s
}

// checkConditional checks a reader if/then/else. When the writer has an
// equivalent "if", each side is compared with the writer's matching side;
// otherwise both "then" and "else" must accept every writer value.
func (c *checker) checkConditional(r *lib.Schema, w conj, path string) []string {
	for _, a := range w.atoms {
		if a.If == nil {
			continue
		}
		ifA := conj{atoms: []*lib.Schema{a.If}}
		ifR := conj{atoms: []*lib.Schema{r.If}}
		if len(c.check(r.If, ifA, path)) != 0 || len(c.check(a.If, ifR, path)) != 0 {
			continue
		}
		var out []string
		if r.Then != nil {
			thenW := conj{atoms: append(append([]*lib.Schema(nil), w.atoms...), a.If), excluded: w.excluded}
			if a.Then != nil {
				thenW.atoms = append(thenW.atoms, a.Then)
			}
			out = append(out, c.check(r.Then, thenW, join(path, "then"))...)
		}
		if r.Else != nil {
			elseW := conj{atoms: append([]*lib.Schema(nil), w.atoms...), excluded: append(append([]*lib.Schema(nil), w.excluded...), a.If)}
			if a.Else != nil {
				elseW.atoms = append(elseW.atoms, a.Else)
			}
			out = append(out, c.check(r.Else, elseW, join(path, "else"))...)
		}
		return out
	}
	var out []string
	if r.Then != nil {
		out = append(out, c.check(r.Then, w, join(path, "then"))...)
	}
	if r.Else != nil {
		out = append(out, c.check(r.Else, w, join(path, "else"))...)
	}
	return out
}

// --- types

const (
	tNull    = 1 << iota
	tBoolean // true, false
	tInteger // numbers with a zero fraction
	tFraction
	tString
	tArray
	tObject
	tAll = tNull | tBoolean | tInteger | tFraction | tString | tArray | tObject
)

func typeBits(t *lib.Types) int {
	if t == nil {
		return tAll
	}
	bits := 0
	for _, s := range t.ToStrings() {
		switch s {
		case "null":
			bits |= tNull
		case "boolean":
			bits |= tBoolean
		case "integer":
			bits |= tInteger
		case "number":
			bits |= tInteger | tFraction
		case "string":
			bits |= tString
		case "array":
			bits |= tArray
		case "object":
			bits |= tObject
		}
	}
	return bits
}

func typesOf(atoms []*lib.Schema) int {
	bits := tAll
	for _, a := range atoms {
		if a.Bool != nil && !*a.Bool {
			return 0
		}
		bits &= typeBits(a.Types)
	}
	return bits
}

func typeNames(bits int) string {
	var names []string
	for _, t := range []struct {
		bit  int
		name string
	}{{tNull, "null"}, {tBoolean, "boolean"}, {tInteger, "integer"}, {tFraction, "number"}, {tString, "string"}, {tArray, "array"}, {tObject, "object"}} {
		if bits&t.bit != 0 {
			names = append(names, t.name)
		}
	}
	if bits&(tInteger|tFraction) == tInteger|tFraction {
		names = slicesDelete(names, "integer")
	}
	return "[" + strings.Join(names, ", ") + "]"
}

func slicesDelete(ss []string, s string) []string {
	out := ss[:0]
	for _, x := range ss {
		if x != s {
			out = append(out, x)
		}
	}
	return out
}

// checkBase checks the reader's own keywords (not its combinators) against
// an expanded writer.
func (c *checker) checkBase(r *lib.Schema, w conj, path string) []string {
	var out []string
	rt, wt := typeBits(r.Types), typesOf(w.atoms)
	if wt == 0 {
		return nil // the writer allows no value
	}
	if missing := wt &^ rt; missing != 0 {
		switch {
		case wt == tAll:
			out = append(out, msg("TYPE_NARROWED", path, "the reader accepts only %s, the writer allows any type", typeNames(rt)))
		case missing == tFraction && rt&tInteger != 0:
			out = append(out, msg("TYPE_NARROWED", path, "the reader accepts only integers, the writer allows any number"))
		default:
			out = append(out, msg("TYPE_CHANGED", path, "the writer allows %s, the reader accepts %s", typeNames(wt), typeNames(rt)))
		}
	}
	if r.Const != nil || r.Enum != nil {
		out = append(out, msg("ENUM_ARRAY_NARROWED", path, "the reader accepts only an enumerated set of values, the writer is not limited to them"))
	}
	if wt&tString != 0 {
		out = append(out, checkString(r, w, path)...)
	}
	if wt&(tInteger|tFraction) != 0 {
		out = append(out, checkNumber(r, w, wt, path)...)
	}
	if wt&tArray != 0 {
		out = append(out, c.checkArray(r, w, path)...)
	}
	if wt&tObject != 0 {
		out = append(out, c.checkObject(r, w, path)...)
	}
	return out
}

// --- strings and numbers

func minInt(atoms []*lib.Schema, get func(*lib.Schema) *int) *int {
	var best *int
	for _, a := range atoms {
		if v := get(a); v != nil && (best == nil || *v < *best) {
			best = v
		}
	}
	return best
}

func maxInt(atoms []*lib.Schema, get func(*lib.Schema) *int) *int {
	var best *int
	for _, a := range atoms {
		if v := get(a); v != nil && (best == nil || *v > *best) {
			best = v
		}
	}
	return best
}

// upperLimit compares a reader's upper limit with the writer's tightest.
func upperLimit(code, path, what string, r *int, w *int) []string {
	if r == nil {
		return nil
	}
	if w == nil {
		return []string{msg(code+"_ADDED", path, "the reader allows at most %d %s, the writer has no limit", *r, what)}
	}
	if *w > *r {
		return []string{msg(code+"_DECREASED", path, "the reader allows at most %d %s, the writer up to %d", *r, what, *w)}
	}
	return nil
}

func lowerLimit(code, path, what string, r *int, w *int) []string {
	if r == nil || *r <= 0 {
		return nil
	}
	if w == nil {
		return []string{msg(code+"_ADDED", path, "the reader requires at least %d %s, the writer has no minimum", *r, what)}
	}
	if *w < *r {
		return []string{msg(code+"_INCREASED", path, "the reader requires at least %d %s, the writer only %d", *r, what, *w)}
	}
	return nil
}

func checkString(r *lib.Schema, w conj, path string) []string {
	var out []string
	out = append(out, upperLimit("MAX_LENGTH", join(path, "maxLength"), "characters", r.MaxLength, minInt(w.atoms, func(s *lib.Schema) *int { return s.MaxLength }))...)
	out = append(out, lowerLimit("MIN_LENGTH", join(path, "minLength"), "characters", r.MinLength, maxInt(w.atoms, func(s *lib.Schema) *int { return s.MinLength }))...)
	if r.Pattern != nil {
		found, has := false, false
		for _, a := range w.atoms {
			if a.Pattern != nil {
				has = true
				found = found || a.Pattern.String() == r.Pattern.String()
			}
		}
		switch {
		case !has:
			out = append(out, msg("PATTERN_ADDED", join(path, "pattern"), "the reader requires pattern %q, the writer has none", r.Pattern.String()))
		case !found:
			out = append(out, msg("PATTERN_CHANGED", join(path, "pattern"), "the reader requires pattern %q, which differs from the writer's", r.Pattern.String()))
		}
	}
	if r.Format != nil {
		found := false
		for _, a := range w.atoms {
			found = found || (a.Format != nil && a.Format.Name == r.Format.Name)
		}
		if !found {
			out = append(out, msg("FORMAT_CHANGED", join(path, "format"), "the reader asserts format %q, the writer does not", r.Format.Name))
		}
	}
	return out
}

// bound is a numeric limit; exclusive means the value itself is outside.
type bound struct {
	v         *big.Rat
	exclusive bool
}

// tighter reports whether a is stricter than b for an upper (upper=true) or
// lower limit.
func tighter(a, b bound, upper bool) bool {
	cmp := a.v.Cmp(b.v)
	if !upper {
		cmp = -cmp
	}
	return cmp < 0 || (cmp == 0 && a.exclusive && !b.exclusive)
}

func limit(s *lib.Schema, upper bool) *bound {
	incl, excl := s.Minimum, s.ExclusiveMinimum
	if upper {
		incl, excl = s.Maximum, s.ExclusiveMaximum
	}
	var out *bound
	if incl != nil {
		out = &bound{v: incl}
	}
	if excl != nil {
		b := bound{v: excl, exclusive: true}
		if out == nil || tighter(b, *out, upper) {
			out = &b
		}
	}
	return out
}

func checkNumber(r *lib.Schema, w conj, wt int, path string) []string {
	var out []string
	for _, upper := range []bool{true, false} {
		rb := limit(r, upper)
		if rb == nil {
			continue
		}
		var wb *bound
		for _, a := range w.atoms {
			if b := limit(a, upper); b != nil && (wb == nil || tighter(*b, *wb, upper)) {
				wb = b
			}
		}
		code, kw, word := "MAXIMUM", "maximum", "at most"
		if !upper {
			code, kw, word = "MINIMUM", "minimum", "at least"
		}
		if rb.exclusive {
			code, kw = "EXCLUSIVE_"+code, "exclusive"+strings.ToUpper(kw[:1])+kw[1:]
		}
		switch {
		case wb == nil:
			out = append(out, msg(code+"_ADDED", join(path, kw), "the reader requires numbers %s %s, the writer has no such limit", word, rb.v.RatString()))
		case tighter(*rb, *wb, upper):
			change := "DECREASED"
			if !upper {
				change = "INCREASED"
			}
			out = append(out, msg(code+"_"+change, join(path, kw), "the reader requires numbers %s %s, the writer allows up to %s", word, rb.v.RatString(), wb.v.RatString()))
		}
	}
	if r.MultipleOf != nil {
		ok := wt&tFraction == 0 && r.MultipleOf.IsInt() && r.MultipleOf.Num().IsInt64() && r.MultipleOf.Num().Int64() == 1
		has := false
		for _, a := range w.atoms {
			if a.MultipleOf != nil {
				has = true
				q := new(big.Rat).Quo(a.MultipleOf, r.MultipleOf)
				ok = ok || q.IsInt()
			}
		}
		switch {
		case ok:
		case !has:
			out = append(out, msg("MULTIPLE_OF_ADDED", join(path, "multipleOf"), "the reader requires multiples of %s, the writer does not", r.MultipleOf.RatString()))
		default:
			out = append(out, msg("MULTIPLE_OF_CHANGED", join(path, "multipleOf"), "the reader requires multiples of %s, which the writer's multipleOf does not guarantee", r.MultipleOf.RatString()))
		}
	}
	return out
}

// --- arrays

// itemModel is a schema's view of array positions: prefix schemas, then
// rest for every later position. restNone means no later position is
// allowed; restSchema nil (and not restNone) means any value.
type itemModel struct {
	prefix     []*lib.Schema
	rest       *lib.Schema
	restNone   bool
	prefixKw   string
	restKw     string
	hasKeyword bool
}

func items(s *lib.Schema) itemModel {
	m := itemModel{prefixKw: "items", restKw: "items"}
	if s.DraftVersion >= 2020 {
		m.prefixKw = "prefixItems"
		m.prefix = s.PrefixItems
		m.rest = s.Items2020
		m.hasKeyword = len(s.PrefixItems) > 0 || s.Items2020 != nil
	} else {
		switch it := s.Items.(type) {
		case *lib.Schema:
			m.rest = it
			m.hasKeyword = true
		case []*lib.Schema:
			m.prefix = it
			m.restKw = "additionalItems"
			m.hasKeyword = true
			switch ai := s.AdditionalItems.(type) {
			case bool:
				m.restNone = !ai
			case *lib.Schema:
				m.rest = ai
			}
		}
	}
	if m.rest != nil && m.rest.Bool != nil {
		m.restNone = !*m.rest.Bool
		m.rest = nil
	}
	return m
}

// at returns the schema at position i; none reports that no value may be
// there; nil schema means any value.
func (m itemModel) at(i int) (s *lib.Schema, none bool) {
	if i < len(m.prefix) {
		s = m.prefix[i]
		if s != nil && s.Bool != nil {
			return nil, !*s.Bool
		}
		return s, false
	}
	return m.rest, m.restNone
}

func (c *checker) checkArray(r *lib.Schema, w conj, path string) []string {
	var out []string
	wMax := minInt(w.atoms, func(s *lib.Schema) *int { return s.MaxItems })
	out = append(out, upperLimit("MAX_ITEMS", join(path, "maxItems"), "items", r.MaxItems, wMax)...)
	out = append(out, lowerLimit("MIN_ITEMS", join(path, "minItems"), "items", r.MinItems, maxInt(w.atoms, func(s *lib.Schema) *int { return s.MinItems }))...)
	if r.UniqueItems {
		found := false
		for _, a := range w.atoms {
			found = found || a.UniqueItems
		}
		if !found {
			out = append(out, msg("UNIQUE_ITEMS_ADDED", join(path, "uniqueItems"), "the reader requires unique items, the writer does not"))
		}
	}
	if r.Contains != nil {
		out = append(out, c.checkContains(r, w, path)...)
	}

	rm := items(r)
	if r.UnevaluatedItems != nil && !(r.UnevaluatedItems.Bool != nil && *r.UnevaluatedItems.Bool) && (rm.rest == nil && !rm.restNone) {
		// Stricter than unevaluatedItems really is: items evaluated by
		// subschemas are not exempted.
		rm.rest, rm.restKw = r.UnevaluatedItems, "unevaluatedItems"
		if rm.rest.Bool != nil {
			rm.rest, rm.restNone = nil, true
		}
		rm.hasKeyword = true
	}
	if !rm.hasKeyword {
		return out
	}
	wms := make([]itemModel, len(w.atoms))
	longest := len(rm.prefix)
	for i, a := range w.atoms {
		wms[i] = items(a)
		longest = max(longest, len(wms[i].prefix))
	}
	// Positions 0..longest-1 individually, then position "longest" stands
	// for every later one (all use rest schemas).
	for i := 0; i <= longest; i++ {
		if wMax != nil && i >= *wMax {
			break
		}
		var ws []*lib.Schema
		impossible := false
		for _, wm := range wms {
			s, none := wm.at(i)
			if none {
				impossible = true
				break
			}
			if s != nil {
				ws = append(ws, s)
			}
		}
		if impossible {
			break // arrays are contiguous: no later position either
		}
		rs, rnone := rm.at(i)
		p := join(path, rm.restKw)
		if i < len(rm.prefix) {
			p = join(path, rm.prefixKw, strconv.Itoa(i))
		}
		switch {
		case rnone:
			if !allFalse(ws) {
				out = append(out, msg("ITEM_REMOVED_FROM_CLOSED_CONTENT_MODEL", p, "the reader's closed item list has no position %d, the writer allows an item there", i))
			}
		case rs == nil:
		case len(ws) == 0:
			out = append(out, msg("ITEM_ADDED_TO_OPEN_CONTENT_MODEL", p, "the reader constrains item %d, which the writer's open item list allows to be any value", i))
		default:
			out = append(out, c.check(rs, conj{atoms: ws}, p)...)
		}
	}
	return out
}

func allFalse(ss []*lib.Schema) bool {
	for _, s := range ss {
		if s.Bool != nil && !*s.Bool {
			return true
		}
	}
	return false
}

func (c *checker) checkContains(r *lib.Schema, w conj, path string) []string {
	rMin, rMax := 1, -1
	if r.MinContains != nil {
		rMin = *r.MinContains
	}
	if r.MaxContains != nil {
		rMax = *r.MaxContains
	}
	for _, a := range w.atoms {
		if a.Contains == nil {
			continue
		}
		aMin, aMax := 1, -1
		if a.MinContains != nil {
			aMin = *a.MinContains
		}
		if a.MaxContains != nil {
			aMax = *a.MaxContains
		}
		if aMin < rMin || len(c.check(r.Contains, conj{atoms: []*lib.Schema{a.Contains}}, path)) != 0 {
			continue
		}
		if rMax >= 0 {
			// Counting must agree: the same items must match both.
			if aMax < 0 || aMax > rMax || len(c.check(a.Contains, conj{atoms: []*lib.Schema{r.Contains}}, path)) != 0 {
				continue
			}
		}
		return nil
	}
	if rMin == 0 && rMax < 0 {
		return nil
	}
	return []string{msg("CONTAINS_CHANGED", join(path, "contains"), "the reader's \"contains\" is not guaranteed by the writer")}
}

// --- objects

// objView answers, for an expanded set of schemas, what they say about one
// property name.
type objView []*lib.Schema

func objectView(atoms []*lib.Schema) objView { return objView(atoms) }

func isFalse(v any) bool {
	switch v := v.(type) {
	case bool:
		return !v
	case *lib.Schema:
		return v != nil && v.Bool != nil && !*v.Bool
	}
	return false
}

func additionalSchema(v any) *lib.Schema {
	if s, ok := v.(*lib.Schema); ok && s != nil && s.Bool == nil {
		return s
	}
	return nil
}

// value returns the schemas a property named name must satisfy, and
// whether the schemas forbid it altogether.
func (v objView) value(name string) (schemas []*lib.Schema, forbidden bool) {
	for _, a := range v {
		declared := false
		if s, ok := a.Properties[name]; ok {
			declared = true
			schemas = append(schemas, s)
		}
		matched := false
		for re, s := range a.PatternProperties {
			if re.MatchString(name) {
				matched = true
				schemas = append(schemas, s)
			}
		}
		if declared || matched {
			continue
		}
		if isFalse(a.AdditionalProperties) {
			return nil, true
		}
		if s := additionalSchema(a.AdditionalProperties); s != nil {
			schemas = append(schemas, s)
		}
	}
	for _, s := range schemas {
		if s.Bool != nil && !*s.Bool {
			return nil, true
		}
	}
	return schemas, false
}

func (v objView) allows(name string) bool {
	_, forbidden := v.value(name)
	return !forbidden
}

func (v objView) declares(name string) bool {
	for _, a := range v {
		if _, ok := a.Properties[name]; ok {
			return true
		}
	}
	return false
}

func requires(atoms []*lib.Schema, name string) bool {
	for _, a := range atoms {
		for _, r := range a.Required {
			if r == name {
				return true
			}
		}
	}
	return false
}

func requiredNames(atoms []*lib.Schema) []string {
	var out []string
	for _, a := range atoms {
		out = append(out, a.Required...)
	}
	return out
}

// readerOther is the reader's schema for names it neither declares nor
// matches by pattern: additionalProperties and, stricter than it really
// is, unevaluatedProperties.
func readerOther(r *lib.Schema) (schemas []*lib.Schema, closed bool, kw string) {
	for _, x := range []struct {
		v  any
		kw string
	}{{r.AdditionalProperties, "additionalProperties"}, {unevaluated(r), "unevaluatedProperties"}} {
		if isFalse(x.v) {
			return nil, true, x.kw
		}
		if s := additionalSchema(x.v); s != nil {
			schemas = append(schemas, s)
			kw = x.kw
		}
	}
	return schemas, false, kw
}

func unevaluated(r *lib.Schema) any {
	if r.UnevaluatedProperties == nil {
		return nil
	}
	return r.UnevaluatedProperties
}

func (c *checker) checkObject(r *lib.Schema, w conj, path string) []string {
	var out []string
	wv := objectView(w.atoms)
	out = append(out, upperLimit("MAX_PROPERTIES", join(path, "maxProperties"), "properties", r.MaxProperties, minInt(w.atoms, func(s *lib.Schema) *int { return s.MaxProperties }))...)
	out = append(out, lowerLimit("MIN_PROPERTIES", join(path, "minProperties"), "properties", r.MinProperties, maxInt(w.atoms, func(s *lib.Schema) *int { return s.MinProperties }))...)

	// Required.
	for _, name := range r.Required {
		if requires(w.atoms, name) {
			continue
		}
		if s, ok := r.Properties[name]; ok && s != nil && s.Default != nil {
			continue // REQUIRED_ATTRIBUTE_WITH_DEFAULT_ADDED: compatible, as in Confluent
		}
		if !wv.declares(name) && !wv.allows(name) {
			out = append(out, msg("REQUIRED_PROPERTY_ADDED_TO_UNOPEN_CONTENT_MODEL", join(path, "properties", name),
				"the reader requires property %q, which the writer's closed content model never has", name))
			continue
		}
		out = append(out, msg("REQUIRED_ATTRIBUTE_ADDED", join(path, "required"), "the reader requires property %q, the writer does not", name))
	}

	// Declared properties, by name.
	names := map[string]bool{}
	for n := range r.Properties {
		names[n] = true
	}
	for _, a := range w.atoms {
		for n := range a.Properties {
			names[n] = true
		}
	}
	sorted := make([]string, 0, len(names))
	for n := range names {
		sorted = append(sorted, n)
	}
	sort.Strings(sorted)
	rv := objView{r}
	for _, name := range sorted {
		p := join(path, "properties", name)
		wSchemas, wForbidden := wv.value(name)
		if wForbidden {
			continue // the writer never has it
		}
		rSchemas, rForbidden := rv.value(name)
		_, rDeclared := r.Properties[name]
		wDeclared := wv.declares(name)
		switch {
		case rForbidden:
			out = append(out, msg("PROPERTY_REMOVED_FROM_CLOSED_CONTENT_MODEL", p, "the writer may have property %q, which the reader's closed content model rejects", name))
		case rDeclared && !wDeclared && len(wSchemas) == 0:
			if !allTrivial(rSchemas) {
				out = append(out, msg("PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL", p, "the reader declares property %q, which the writer's open content model allows with any value", name))
			}
		default:
			for _, rs := range rSchemas {
				m := c.check(rs, conj{atoms: wSchemas}, p)
				if len(m) == 0 {
					continue
				}
				switch {
				case !rDeclared:
					out = append(out, msg("PROPERTY_REMOVED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL", p, "the writer's property %q is not accepted by the reader's patternProperties or additionalProperties", name))
				case !wDeclared:
					out = append(out, msg("PROPERTY_ADDED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL", p, "the reader's property %q does not accept every value the writer's partially open content model allows", name))
				}
				out = append(out, m...)
			}
		}
	}

	// Names neither side declares.
	out = append(out, c.checkOtherNames(r, w, path)...)

	// Dependencies.
	out = append(out, c.checkDependencies(r, w, wv, path)...)

	if r.PropertyNames != nil && !(r.PropertyNames.Bool != nil && *r.PropertyNames.Bool) {
		out = append(out, c.checkPropertyNames(r, w, path)...)
	}
	return out
}

func allTrivial(ss []*lib.Schema) bool {
	for _, s := range ss {
		if !isEmptySchema(s) {
			return false
		}
	}
	return true
}

// isEmptySchema reports whether s accepts every value (true, or {} with
// only annotations).
func isEmptySchema(s *lib.Schema) bool {
	if s == nil {
		return true
	}
	if s.Bool != nil {
		return *s.Bool
	}
	alts, overflow := expand(conj{atoms: []*lib.Schema{s}})
	if overflow || len(alts) != 1 || len(alts[0].excluded) > 0 {
		return false
	}
	for _, a := range alts[0].atoms {
		if !annotationsOnly(a) {
			return false
		}
	}
	return true
}

func annotationsOnly(s *lib.Schema) bool {
	return s.Types == nil && s.Enum == nil && s.Const == nil && s.Not == nil && s.If == nil &&
		s.Format == nil && s.MaxProperties == nil && s.MinProperties == nil && len(s.Required) == 0 &&
		s.PropertyNames == nil && len(s.Properties) == 0 && len(s.PatternProperties) == 0 &&
		s.AdditionalProperties == nil && len(s.Dependencies) == 0 && len(s.DependentRequired) == 0 &&
		len(s.DependentSchemas) == 0 && s.UnevaluatedProperties == nil && s.MinItems == nil &&
		s.MaxItems == nil && !s.UniqueItems && s.Contains == nil && s.Items == nil && s.AdditionalItems == nil &&
		len(s.PrefixItems) == 0 && s.Items2020 == nil && s.UnevaluatedItems == nil && s.MinLength == nil &&
		s.MaxLength == nil && s.Pattern == nil && s.Maximum == nil && s.Minimum == nil &&
		s.ExclusiveMaximum == nil && s.ExclusiveMinimum == nil && s.MultipleOf == nil &&
		s.RecursiveRef == nil && s.DynamicRef == nil && len(s.Extensions) == 0
}

// checkOtherNames compares what the two sides say about property names
// neither declares: the reader's patternProperties and additional
// properties against the writer's.
func (c *checker) checkOtherNames(r *lib.Schema, w conj, path string) []string {
	// Can the writer have undeclared names at all? Not if some atom is
	// closed without patterns.
	for _, a := range w.atoms {
		if isFalse(a.AdditionalProperties) && len(a.PatternProperties) == 0 {
			return nil
		}
	}
	var out []string
	// The writer's value for an unknown name matching reader pattern re:
	// an atom with the identical pattern applies it; an atom without
	// patterns applies its additionalProperties; otherwise unknown (any).
	for re, rs := range r.PatternProperties {
		var ws []*lib.Schema
		impossible := false
		for _, a := range w.atoms {
			if s := samePattern(a, re); s != nil {
				ws = append(ws, s)
				continue
			}
			if len(a.PatternProperties) == 0 {
				if isFalse(a.AdditionalProperties) {
					impossible = true
				} else if s := additionalSchema(a.AdditionalProperties); s != nil {
					ws = append(ws, s)
				}
			}
		}
		if impossible || isEmptySchema(rs) {
			continue
		}
		p := join(path, "patternProperties", re.String())
		if len(ws) == 0 {
			out = append(out, msg("PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL", p, "the reader constrains properties matching %q, which the writer's open content model allows with any value", re.String()))
			continue
		}
		if m := c.check(rs, conj{atoms: ws}, p); len(m) > 0 {
			out = append(out, msg("PROPERTY_ADDED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL", p, "the reader's patternProperties %q do not accept every value the writer allows there", re.String()))
			out = append(out, m...)
		}
	}

	rOther, rClosed, kw := readerOther(r)
	if !rClosed && allTrivial(rOther) {
		return out
	}
	p := join(path, kw)
	// Writer values under names matching no reader pattern. An atom whose
	// patterns the reader all shares applies its additionalProperties to
	// them (they match none of its patterns either).
	var ws []*lib.Schema
	for _, a := range w.atoms {
		if patternsShared(a, r) {
			if isFalse(a.AdditionalProperties) {
				return out // the writer has no such names
			}
			if s := additionalSchema(a.AdditionalProperties); s != nil {
				ws = append(ws, s)
			}
		} else {
			// Writer patterns the reader does not share land in the
			// reader's additional properties.
			for re, s := range a.PatternProperties {
				if samePattern(r, re) == nil {
					if rClosed {
						out = append(out, msg("ADDITIONAL_PROPERTIES_REMOVED", p, "the writer allows properties matching %q, which the reader's closed content model rejects", re.String()))
						continue
					}
					for _, ro := range rOther {
						out = append(out, c.check(ro, conj{atoms: []*lib.Schema{s}}, p)...)
					}
				}
			}
		}
	}
	if rClosed {
		out = append(out, msg("ADDITIONAL_PROPERTIES_REMOVED", p, "the reader's closed content model rejects properties the writer's open content model allows"))
		return out
	}
	for _, ro := range rOther {
		if len(ws) == 0 {
			out = append(out, msg("ADDITIONAL_PROPERTIES_NARROWED", p, "the reader constrains additional properties, which the writer's open content model allows with any value"))
			continue
		}
		if m := c.check(ro, conj{atoms: ws}, p); len(m) > 0 {
			out = append(out, msg("ADDITIONAL_PROPERTIES_NARROWED", p, "the reader's additional properties do not accept every value the writer's do"))
			out = append(out, m...)
		}
	}
	return out
}

// patternsShared reports whether r has every patternProperties pattern of a.
func patternsShared(a, r *lib.Schema) bool {
	for re := range a.PatternProperties {
		if samePattern(r, re) == nil {
			return false
		}
	}
	return true
}

func samePattern(s *lib.Schema, re lib.Regexp) *lib.Schema {
	for other, sch := range s.PatternProperties {
		if other.String() == re.String() {
			return sch
		}
	}
	return nil
}

func (c *checker) checkDependencies(r *lib.Schema, w conj, wv objView, path string) []string {
	var out []string
	depRequired := map[string][]string{}
	depSchemas := map[string]*lib.Schema{}
	kwReq, kwSch := "dependentRequired", "dependentSchemas"
	for k, v := range r.Dependencies {
		kwReq, kwSch = "dependencies", "dependencies"
		switch v := v.(type) {
		case []string:
			depRequired[k] = v
		case *lib.Schema:
			depSchemas[k] = v
		}
	}
	for k, v := range r.DependentRequired {
		depRequired[k] = v
	}
	for k, v := range r.DependentSchemas {
		depSchemas[k] = v
	}
	writerDeps := func(name string) (req []string, schemas []*lib.Schema) {
		for _, a := range w.atoms {
			req = append(req, a.DependentRequired[name]...)
			switch v := a.Dependencies[name].(type) {
			case []string:
				req = append(req, v...)
			case *lib.Schema:
				schemas = append(schemas, v)
			}
			if s := a.DependentSchemas[name]; s != nil {
				schemas = append(schemas, s)
			}
		}
		return req, schemas
	}
	for _, name := range sortedKeys(depRequired) {
		if !wv.allows(name) {
			continue
		}
		wReq, _ := writerDeps(name)
		for _, need := range depRequired[name] {
			if requires(w.atoms, need) || containsString(wReq, need) {
				continue
			}
			out = append(out, msg("DEPENDENCY_ARRAY_EXTENDED", join(path, kwReq, name), "the reader requires %q whenever %q is present, the writer does not", need, name))
		}
	}
	for _, name := range sortedKeysSchema(depSchemas) {
		if !wv.allows(name) {
			continue
		}
		rs := depSchemas[name]
		p := join(path, kwSch, name)
		if len(c.check(rs, w, p)) == 0 {
			continue
		}
		_, wSchemas := writerDeps(name)
		ok := false
		for _, ws := range wSchemas {
			with := conj{atoms: append(append([]*lib.Schema(nil), w.atoms...), ws), excluded: w.excluded}
			if len(c.check(rs, with, p)) == 0 {
				ok = true
				break
			}
		}
		if !ok {
			out = append(out, msg("DEPENDENCY_SCHEMA_ADDED", p, "the reader's dependent schema for %q is not guaranteed by the writer", name))
		}
	}
	return out
}

func (c *checker) checkPropertyNames(r *lib.Schema, w conj, path string) []string {
	p := join(path, "propertyNames")
	nameSchema := conj{atoms: []*lib.Schema{}}
	for _, a := range w.atoms {
		if a.PropertyNames != nil {
			nameSchema.atoms = append(nameSchema.atoms, a.PropertyNames)
		}
	}
	if len(nameSchema.atoms) > 0 {
		if len(c.check(r.PropertyNames, conj{atoms: append(nameSchema.atoms, stringSchema)}, p)) == 0 {
			return nil
		}
	}
	// A writer closed to its declared names: check each name.
	for _, a := range w.atoms {
		if !isFalse(a.AdditionalProperties) || len(a.PatternProperties) > 0 {
			continue
		}
		var bad []string
		for _, n := range sortedKeysSchema(a.Properties) {
			if validate(r.PropertyNames, n) != nil {
				bad = append(bad, n)
			}
		}
		if len(bad) == 0 {
			return nil
		}
		return []string{msg("PROPERTY_NAMES_NARROWED", p, "the reader's propertyNames reject the writer's properties %q", bad)}
	}
	return []string{msg("PROPERTY_NAMES_NARROWED", p, "the reader restricts property names, the writer does not guarantee them")}
}

// stringSchema stands for "property names are strings".
var stringSchema = func() *lib.Schema {
	var t lib.Types
	t.Add("string")
	return &lib.Schema{Types: &t}
}()

func containsString(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

func sortedKeys(m map[string][]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func sortedKeysSchema(m map[string]*lib.Schema) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
