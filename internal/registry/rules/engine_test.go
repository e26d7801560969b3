package rules

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"sync"
	"testing"

	"cel.dev/cel-go/common/types"

	"github.com/runnel-dev/runnel/internal/registry"
)

func newEngine(t testing.TB, opts Options) *Engine {
	t.Helper()
	e, err := NewEngine(opts)
	if err != nil {
		t.Fatalf("NewEngine: %v", err)
	}
	return e
}

// order is a realistic decoded record: nested maps, an array of records,
// an array of strings, numbers of each decoded type, a null and bytes.
func order() map[string]any {
	return map[string]any{
		"id":    "o-1001",
		"qty":   int64(3),
		"price": 9.5,
		"count": uint64(2),
		"customer": map[string]any{
			"name":  "Ann Lee",
			"ssn":   "123-45-6789",
			"email": "ann@example.com",
		},
		"items": []any{
			map[string]any{"sku": "a-1", "qty": int64(1)},
			map[string]any{"sku": "b-2", "qty": int64(2)},
		},
		"labels": []any{"gift", "rush"},
		"note":   nil,
		"blob":   []byte{1, 2},
	}
}

// want is the expected outcome of one rule.
type want struct {
	rule   string
	status Status
	action Action
	msg    string // substring of Message
	field  string
}

func cond(name, expr string) registry.Rule {
	return registry.Rule{Name: name, Kind: KindCondition, Mode: "WRITE", Type: TypeCEL, Expr: expr}
}

func with(r registry.Rule, f func(*registry.Rule)) registry.Rule {
	f(&r)
	return r
}

func TestCheck(t *testing.T) {
	piiMeta := &registry.Metadata{
		Tags:       map[string][]string{"**.ssn": {"PII"}, "customer.email": {"PII", "CONTACT"}},
		Properties: map[string]string{"dlq.topic": "orders-dlq-from-metadata"},
	}
	cases := []struct {
		name      string
		rules     []registry.Rule
		md        *registry.Metadata
		mode      Mode
		value     any
		fieldTags FieldTags
		want      []want
		wantValue any // checked when non-nil
	}{
		{
			name:  "int64 comparison",
			rules: []registry.Rule{cond("qty", "message.qty > 0")},
			want:  []want{{rule: "qty", status: StatusPassed, action: ActionNone}},
		},
		{
			name: "float64 and uint64 compare with int literals, 1.0 == 1",
			rules: []registry.Rule{
				cond("price", "message.price > 0 && message.price < 10"),
				cond("count", "message.count >= 2 && message.count == 2.0"),
				cond("eq", "message.qty == 3.0 && message.price != 9"),
			},
			want: []want{
				{rule: "price", status: StatusPassed, action: ActionNone},
				{rule: "count", status: StatusPassed, action: ActionNone},
				{rule: "eq", status: StatusPassed, action: ActionNone},
			},
		},
		{
			name:  "nested maps and lists",
			rules: []registry.Rule{cond("deep", "message.customer.email.endsWith('@example.com') && message.items.all(i, i.qty > 0) && size(message.labels) == 2 && 'rush' in message.labels && has(message.customer.ssn) && message.note == null")},
			want:  []want{{rule: "deep", status: StatusPassed, action: ActionNone}},
		},
		{
			name:  "failed condition: ERROR by default, expression in the message",
			rules: []registry.Rule{cond("big", "message.qty > 10")},
			want:  []want{{rule: "big", status: StatusFailed, action: ActionError, msg: "Expr failed: 'message.qty > 10'"}},
		},
		{
			name:  "failed condition: doc is the message",
			rules: []registry.Rule{with(cond("big", "message.qty > 10"), func(r *registry.Rule) { r.Doc = "qty must exceed 10" })},
			want:  []want{{rule: "big", status: StatusFailed, action: ActionError, msg: "qty must exceed 10"}},
		},
		{
			name: "onFailure DLQ; onSuccess given",
			rules: []registry.Rule{
				with(cond("ok", "true"), func(r *registry.Rule) { r.OnSuccess = "NONE" }),
				with(cond("dlq", "message.qty > 10"), func(r *registry.Rule) {
					r.OnFailure = "DLQ"
					r.Params = map[string]string{"dlq.topic": "orders-dlq"}
				}),
			},
			want: []want{
				{rule: "ok", status: StatusPassed, action: ActionNone},
				{rule: "dlq", status: StatusFailed, action: ActionDLQ},
			},
		},
		{
			name: "onFailure NONE: reported, evaluation goes on; ERROR stops it",
			rules: []registry.Rule{
				with(cond("soft", "message.qty > 10"), func(r *registry.Rule) { r.OnFailure = "NONE" }),
				cond("hard", "message.id == 'other'"),
				cond("never", "message.qty > 0"),
			},
			want: []want{
				{rule: "soft", status: StatusFailed, action: ActionNone},
				{rule: "hard", status: StatusFailed, action: ActionError},
			},
		},
		{
			name: "disabled rules and rules of other modes are skipped",
			rules: []registry.Rule{
				with(cond("off", "false"), func(r *registry.Rule) { r.Disabled = true }),
				with(cond("read", "false"), func(r *registry.Rule) { r.Mode = "READ" }),
				with(cond("up", "false"), func(r *registry.Rule) { r.Mode = "UPGRADE" }),
				with(cond("both", "true"), func(r *registry.Rule) { r.Mode = "WRITEREAD" }),
				with(cond("default mode", "true"), func(r *registry.Rule) { r.Mode = "" }),
			},
			want: []want{
				{rule: "both", status: StatusPassed, action: ActionNone},
				{rule: "default mode", status: StatusPassed, action: ActionNone},
			},
		},
		{
			name: "READ runs READ and WRITEREAD rules in reverse order",
			mode: ModeRead,
			rules: []registry.Rule{
				with(cond("first", "true"), func(r *registry.Rule) { r.Mode = "WRITEREAD" }),
				with(cond("write only", "false"), func(r *registry.Rule) { r.Mode = "WRITE" }),
				with(cond("second", "true"), func(r *registry.Rule) { r.Mode = "READ" }),
			},
			want: []want{
				{rule: "second", status: StatusPassed, action: ActionNone},
				{rule: "first", status: StatusPassed, action: ActionNone},
			},
		},
		{
			name: "two-part action on WRITEREAD: first part on write",
			rules: []registry.Rule{with(cond("wr", "false"), func(r *registry.Rule) {
				r.Mode, r.OnFailure = "WRITEREAD", "DLQ,NONE"
			})},
			want: []want{{rule: "wr", status: StatusFailed, action: ActionDLQ}},
		},
		{
			name: "two-part action on WRITEREAD: second part on read",
			mode: ModeRead,
			rules: []registry.Rule{with(cond("wr", "false"), func(r *registry.Rule) {
				r.Mode, r.OnFailure = "WRITEREAD", "DLQ,NONE"
			})},
			want: []want{{rule: "wr", status: StatusFailed, action: ActionNone}},
		},
		{
			name:  "two-part action on a WRITE rule is an error",
			rules: []registry.Rule{with(cond("w", "false"), func(r *registry.Rule) { r.OnFailure = "DLQ,NONE" })},
			want:  []want{{rule: "w", status: StatusError, action: ActionError, msg: "two parts"}},
		},
		{
			name:  "unknown action is an error, never a pass",
			rules: []registry.Rule{with(cond("w", "false"), func(r *registry.Rule) { r.OnFailure = "IGNORE" })},
			want:  []want{{rule: "w", status: StatusError, action: ActionError, msg: `unknown action "IGNORE"`}},
		},
		{
			name: "unknown rule type: error outcome with the onFailure action",
			rules: []registry.Rule{with(cond("jsonata", "qty > 0"), func(r *registry.Rule) {
				r.Type, r.OnFailure = "JSONATA", "DLQ"
			})},
			want: []want{{rule: "jsonata", status: StatusError, action: ActionDLQ, msg: `type "JSONATA"`}},
		},
		{
			name:  "unknown rule mode is an error outcome",
			rules: []registry.Rule{with(cond("m", "true"), func(r *registry.Rule) { r.Mode = "SOMETIMES" })},
			want:  []want{{rule: "m", status: StatusError, action: ActionError, msg: `unknown mode "SOMETIMES"`}},
		},
		{
			name:  "missing kind is an error outcome",
			rules: []registry.Rule{with(cond("k", "true"), func(r *registry.Rule) { r.Kind = "" })},
			want:  []want{{rule: "k", status: StatusError, action: ActionError, msg: "kind"}},
		},
		{
			name:  "compile error",
			rules: []registry.Rule{cond("bad", "message.qty >")},
			want:  []want{{rule: "bad", status: StatusError, action: ActionError, msg: "does not compile"}},
		},
		{
			name:  "condition of a static non-bool type does not compile",
			rules: []registry.Rule{cond("str", "'yes'")},
			want:  []want{{rule: "str", status: StatusError, action: ActionError, msg: "must be a bool"}},
		},
		{
			name:  "condition of a dynamic non-bool value is an error",
			rules: []registry.Rule{cond("dyn", "message.id")},
			want:  []want{{rule: "dyn", status: StatusError, action: ActionError, msg: "not bool"}},
		},
		{
			name:  "runtime error: missing field",
			rules: []registry.Rule{cond("missing", "message.nope > 0")},
			want:  []want{{rule: "missing", status: StatusError, action: ActionError, msg: "no such key"}},
		},
		{
			name:  "runtime error: double times int is not converted",
			rules: []registry.Rule{cond("arith", "message.price * 2 > 0")},
			want:  []want{{rule: "arith", status: StatusError, action: ActionError, msg: "no such overload"}},
		},
		{
			name:  "double arithmetic with a double literal works",
			rules: []registry.Rule{cond("arith", "message.price * 2.0 == 19.0 && double(message.qty) / 2.0 == 1.5")},
			want:  []want{{rule: "arith", status: StatusPassed, action: ActionNone}},
		},
		{
			name:  "guard false skips the rule",
			rules: []registry.Rule{cond("guarded", "message.qty > 100 ; message.id == 'nope'")},
			want:  []want{{rule: "guarded", status: StatusPassed, action: ActionNone}},
		},
		{
			name:  "guard true runs the body",
			rules: []registry.Rule{cond("guarded", "message.qty < 100 ; message.id == 'nope'")},
			want:  []want{{rule: "guarded", status: StatusFailed, action: ActionError}},
		},
		{
			name:  "guard that errors skips the rule",
			rules: []registry.Rule{cond("guarded", "message.nope == 1 ; false")},
			want:  []want{{rule: "guarded", status: StatusPassed, action: ActionNone}},
		},
		{
			name:  "';' inside a string literal is not a guard",
			rules: []registry.Rule{cond("lit", "message.id + ';x' == 'o-1001;x'")},
			want:  []want{{rule: "lit", status: StatusPassed, action: ActionNone}},
		},
		{
			name:  "Confluent's string checks",
			rules: []registry.Rule{cond("checks", "message.customer.email.isEmail() && !message.customer.name.isEmail() && 'example.com'.isHostname() && '10.0.0.1'.isIpv4() && '::1'.isIpv6() && 'https://x.io/a'.isUri() && '/a/b'.isUriRef() && '123e4567-e89b-12d3-a456-426614174000'.isUuid()")},
			want:  []want{{rule: "checks", status: StatusPassed, action: ActionNone}},
		},
		{
			name: "CEL transform replaces the message",
			rules: []registry.Rule{{Name: "slim", Kind: KindTransform, Mode: "WRITE", Type: TypeCEL,
				Expr: "{'id': message.id, 'qty': message.qty + 1, 'price': message.price, 'labels': message.labels}"}},
			want: []want{{rule: "slim", status: StatusPassed, action: ActionNone}},
			wantValue: map[string]any{"id": "o-1001", "qty": int64(4), "price": 9.5,
				"labels": []any{"gift", "rush"}},
		},
		{
			name:  "CEL transform returning null is an error",
			rules: []registry.Rule{{Name: "null", Kind: KindTransform, Mode: "WRITE", Type: TypeCEL, Expr: "null"}},
			want:  []want{{rule: "null", status: StatusError, action: ActionError, msg: "null"}},
		},
		{
			name:  "CEL transform returning a timestamp is an error",
			rules: []registry.Rule{{Name: "ts", Kind: KindTransform, Mode: "WRITE", Type: TypeCEL, Expr: "timestamp('2024-01-01T00:00:00Z')"}},
			want:  []want{{rule: "ts", status: StatusError, action: ActionError, msg: "not a record value"}},
		},
		{
			name: "CEL_FIELD guard: ssn format holds",
			rules: []registry.Rule{{Name: "ssn", Kind: KindCondition, Mode: "WRITE", Type: TypeCELField,
				Expr: `name == 'ssn' ; value.matches(r'^\d{3}-\d{2}-\d{4}$')`}},
			want: []want{{rule: "ssn", status: StatusPassed, action: ActionNone}},
		},
		{
			name: "CEL_FIELD guard: ssn format fails at its path",
			rules: []registry.Rule{{Name: "ssn", Kind: KindCondition, Mode: "WRITE", Type: TypeCELField, OnFailure: "DLQ",
				Expr: `name == 'ssn' ; value.matches(r'^\d{9}$')`}},
			want: []want{{rule: "ssn", status: StatusFailed, action: ActionDLQ, field: "customer.ssn", msg: "field customer.ssn: Expr failed"}},
		},
		{
			name: "CEL_FIELD variables: typeName, fullName and the containing message",
			rules: []registry.Rule{{Name: "vars", Kind: KindCondition, Mode: "WRITE", Type: TypeCELField,
				Expr: `name == 'sku' ; typeName == 'STRING' && fullName == 'items.sku' && message.qty > 0 && value.startsWith(string(message.qty) == '1' ? 'a' : 'b')`}},
			want: []want{{rule: "vars", status: StatusPassed, action: ActionNone}},
		},
		{
			name: "CEL_FIELD type names of each decoded type",
			rules: []registry.Rule{{Name: "types", Kind: KindCondition, Mode: "WRITE", Type: TypeCELField,
				Expr: `typeName == {'id': 'STRING', 'qty': 'LONG', 'price': 'DOUBLE', 'count': 'LONG', 'blob': 'BYTES', 'name': 'STRING', 'ssn': 'STRING', 'email': 'STRING', 'sku': 'STRING', 'labels': 'STRING'}[name]`}},
			want: []want{{rule: "types", status: StatusPassed, action: ActionNone}},
		},
		{
			name: "CEL_FIELD with rule tags: only tagged fields (metadata wildcard) are seen",
			md:   piiMeta,
			rules: []registry.Rule{{Name: "pii", Kind: KindCondition, Mode: "WRITE", Type: TypeCELField, Tags: []string{"PII"},
				Expr: `name in ['ssn', 'email'] && 'PII' in tags`}},
			want: []want{{rule: "pii", status: StatusPassed, action: ActionNone}},
		},
		{
			name: "CEL_FIELD transform masks PII fields, others untouched",
			md:   piiMeta,
			rules: []registry.Rule{{Name: "mask", Kind: KindTransform, Mode: "WRITE", Type: TypeCELField, Tags: []string{"PII"},
				Expr: `typeName == 'STRING' ; 'XXX'`}},
			want: []want{{rule: "mask", status: StatusPassed, action: ActionNone}},
			wantValue: func() any {
				o := order()
				c := o["customer"].(map[string]any)
				c["ssn"], c["email"] = "XXX", "XXX"
				return o
			}(),
		},
		{
			name:      "CEL_FIELD tags from the schema (fieldTags)",
			fieldTags: func(path string) []string { return map[string][]string{"id": {"KEY"}, "items.sku": {"KEY"}}[path] },
			rules: []registry.Rule{{Name: "keys", Kind: KindTransform, Mode: "WRITE", Type: TypeCELField, Tags: []string{"KEY"},
				Expr: `value.upperAscii()`}},
			want: []want{{rule: "keys", status: StatusPassed, action: ActionNone}},
			wantValue: func() any {
				o := order()
				o["id"] = "O-1001"
				o["items"] = []any{
					map[string]any{"sku": "A-1", "qty": int64(1)},
					map[string]any{"sku": "B-2", "qty": int64(2)},
				}
				return o
			}(),
		},
		{
			name: "CEL_FIELD visits array elements with the array's field; nulls are skipped",
			rules: []registry.Rule{{Name: "labels", Kind: KindCondition, Mode: "WRITE", Type: TypeCELField,
				Expr: `name == 'labels' || name == 'note' ; value in ['gift', 'rush']`}},
			want: []want{{rule: "labels", status: StatusPassed, action: ActionNone}},
		},
		{
			name: "CEL_FIELD runtime error names the field",
			rules: []registry.Rule{{Name: "err", Kind: KindCondition, Mode: "WRITE", Type: TypeCELField,
				Expr: `name == 'qty' ; value / 0 > 1`}},
			want: []want{{rule: "err", status: StatusError, action: ActionError, field: "items.qty", msg: "division by zero"}},
		},
		{
			name: "a later CEL_FIELD transform with the same tags is skipped",
			md:   piiMeta,
			rules: []registry.Rule{
				{Name: "mask1", Kind: KindTransform, Mode: "WRITE", Type: TypeCELField, Tags: []string{"PII"}, Expr: `'one'`},
				{Name: "mask2", Kind: KindTransform, Mode: "WRITE", Type: TypeCELField, Tags: []string{"PII"}, Expr: `'two'`},
			},
			want: []want{{rule: "mask1", status: StatusPassed, action: ActionNone}},
			wantValue: func() any {
				o := order()
				c := o["customer"].(map[string]any)
				c["ssn"], c["email"] = "one", "one"
				return o
			}(),
		},
		{
			name:  "a primitive record has no fields",
			value: "just a string",
			rules: []registry.Rule{{Name: "f", Kind: KindCondition, Mode: "WRITE", Type: TypeCELField, Expr: `false`}},
			want:  []want{{rule: "f", status: StatusPassed, action: ActionNone}},
		},
		{
			name:  "a primitive record is the message",
			value: int64(7),
			rules: []registry.Rule{cond("p", "message > 5")},
			want:  []want{{rule: "p", status: StatusPassed, action: ActionNone}},
		},
	}
	e := newEngine(t, Options{})
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			mode := tc.mode
			if mode == "" {
				mode = ModeWrite
			}
			value := tc.value
			if value == nil {
				value = order()
			}
			before := deepCopy(value)
			res, err := e.Check(context.Background(), &registry.RuleSet{DomainRules: tc.rules}, tc.md, mode, value, tc.fieldTags)
			if err != nil {
				t.Fatalf("Check: %v", err)
			}
			checkOutcomes(t, res.Outcomes, tc.want)
			if !reflect.DeepEqual(value, before) {
				t.Errorf("Check modified its input:\n got %#v\nwant %#v", value, before)
			}
			if tc.wantValue != nil {
				if !res.Transformed {
					t.Errorf("Transformed = false, want true")
				}
				if !reflect.DeepEqual(res.Value, tc.wantValue) {
					t.Errorf("Value:\n got %#v\nwant %#v", res.Value, tc.wantValue)
				}
			} else if res.Transformed {
				t.Errorf("Transformed = true, value %#v", res.Value)
			}
		})
	}
}

func checkOutcomes(t *testing.T, got []Outcome, want []want) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d outcomes, want %d: %+v", len(got), len(want), got)
	}
	for i, w := range want {
		g := got[i]
		if g.Rule != w.rule || g.Status != w.status || g.Action != w.action || g.Field != w.field {
			t.Errorf("outcome %d = {%s %s %s field=%q %q}, want {%s %s %s field=%q}", i, g.Rule, g.Status, g.Action, g.Field, g.Message, w.rule, w.status, w.action, w.field)
		}
		if !strings.Contains(g.Message, w.msg) {
			t.Errorf("outcome %d message %q does not contain %q", i, g.Message, w.msg)
		}
		if g.Status == StatusPassed && g.Message != "" {
			t.Errorf("outcome %d passed with message %q", i, g.Message)
		}
		if g.Status != StatusPassed && g.Message == "" {
			t.Errorf("outcome %d %s without a message", i, g.Status)
		}
	}
}

func deepCopy(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = deepCopy(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = deepCopy(e)
		}
		return out
	case []byte:
		return append([]byte(nil), x...)
	}
	return v
}

func TestResultActionAndParams(t *testing.T) {
	e := newEngine(t, Options{})
	md := &registry.Metadata{Properties: map[string]string{"dlq.topic": "from-metadata", "owner": "sales"}}
	rs := &registry.RuleSet{DomainRules: []registry.Rule{
		with(cond("soft", "false"), func(r *registry.Rule) { r.OnFailure = "NONE" }),
		with(cond("dlq", "false"), func(r *registry.Rule) {
			r.OnFailure = "DLQ"
			r.Params = map[string]string{"dlq.topic": "orders-dlq"}
		}),
	}}
	res, err := e.Check(context.Background(), rs, md, ModeWrite, order(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := res.Action(); got != ActionDLQ {
		t.Errorf("Action() = %s, want DLQ", got)
	}
	f, ok := res.Failure()
	if !ok || f.Rule != "dlq" {
		t.Fatalf("Failure() = %+v, %v; want rule dlq", f, ok)
	}
	if v, _ := f.Param("dlq.topic"); v != "orders-dlq" {
		t.Errorf("rule param dlq.topic = %q, want orders-dlq (rule params win)", v)
	}
	if v, _ := f.Param("owner"); v != "sales" {
		t.Errorf("param owner = %q, want sales (from metadata properties)", v)
	}
	if _, ok := f.Param("absent"); ok {
		t.Error("Param(absent) found")
	}
	soft := res.Outcomes[0]
	if v, _ := soft.Param("dlq.topic"); v != "from-metadata" {
		t.Errorf("metadata dlq.topic = %q", v)
	}

	pass, err := e.Check(context.Background(), &registry.RuleSet{DomainRules: []registry.Rule{cond("ok", "true")}}, nil, ModeWrite, order(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if pass.Action() != ActionNone {
		t.Errorf("Action() = %s for a pass", pass.Action())
	}
	if _, ok := pass.Failure(); ok {
		t.Error("Failure() on a pass")
	}
}

func TestCheckErrors(t *testing.T) {
	e := newEngine(t, Options{})
	rs := &registry.RuleSet{DomainRules: []registry.Rule{cond("ok", "true")}}
	for _, m := range []Mode{ModeUpgrade, ModeDowngrade, ModeWriteRead, "write", ""} {
		if _, err := e.Check(context.Background(), rs, nil, m, order(), nil); !errors.Is(err, ErrInvalidMode) {
			t.Errorf("Check(mode %q) err = %v, want ErrInvalidMode", m, err)
		}
	}
	if _, err := e.Migrate(context.Background(), rs, nil, ModeWrite, order(), nil); !errors.Is(err, ErrInvalidMode) {
		t.Errorf("Migrate(WRITE) err = %v, want ErrInvalidMode", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := e.Check(ctx, rs, nil, ModeWrite, order(), nil); !errors.Is(err, context.Canceled) {
		t.Errorf("Check(cancelled) err = %v, want context.Canceled", err)
	}
	res, err := e.Check(context.Background(), nil, nil, ModeWrite, order(), nil)
	if err != nil || len(res.Outcomes) != 0 || res.Transformed {
		t.Errorf("Check(nil rule set) = %+v, %v", res, err)
	}
}

func TestMigrate(t *testing.T) {
	e := newEngine(t, Options{})
	rs := &registry.RuleSet{
		DomainRules: []registry.Rule{cond("domain", "false")},
		MigrationRules: []registry.Rule{
			{Name: "rename", Kind: KindTransform, Mode: "UPGRADE", Type: TypeCEL, Expr: "{'id': message.id, 'quantity': message.qty}"},
			{Name: "back", Kind: KindTransform, Mode: "DOWNGRADE", Type: TypeCEL, Expr: "{'id': message.id, 'qty': message.quantity}"},
			{Name: "check", Kind: KindCondition, Mode: "UPDOWN", Type: TypeCEL, Expr: "has(message.id)"},
		},
	}
	up, err := e.Migrate(context.Background(), rs, nil, ModeUpgrade, order(), nil)
	if err != nil {
		t.Fatal(err)
	}
	checkOutcomes(t, up.Outcomes, []want{
		{rule: "rename", status: StatusPassed, action: ActionNone},
		{rule: "check", status: StatusPassed, action: ActionNone},
	})
	if want := map[string]any{"id": "o-1001", "quantity": int64(3)}; !reflect.DeepEqual(up.Value, want) {
		t.Errorf("upgraded = %#v, want %#v", up.Value, want)
	}
	down, err := e.Migrate(context.Background(), rs, nil, ModeDowngrade, up.Value, nil)
	if err != nil {
		t.Fatal(err)
	}
	checkOutcomes(t, down.Outcomes, []want{
		{rule: "check", status: StatusPassed, action: ActionNone},
		{rule: "back", status: StatusPassed, action: ActionNone},
	})
	if want := map[string]any{"id": "o-1001", "qty": int64(3)}; !reflect.DeepEqual(down.Value, want) {
		t.Errorf("downgraded = %#v, want %#v", down.Value, want)
	}
	// Check never runs migration rules.
	res, err := e.Check(context.Background(), &registry.RuleSet{MigrationRules: rs.MigrationRules}, nil, ModeWrite, order(), nil)
	if err != nil || len(res.Outcomes) != 0 {
		t.Errorf("Check ran migration rules: %+v, %v", res.Outcomes, err)
	}
}

func TestCostLimit(t *testing.T) {
	e := newEngine(t, Options{CostLimit: 1000})
	// 100 x 100 nested comprehension: far over 1000.
	list := make([]any, 100)
	for i := range list {
		list[i] = int64(i)
	}
	value := map[string]any{"xs": list}
	rs := &registry.RuleSet{DomainRules: []registry.Rule{
		cond("heavy", "message.xs.all(x, message.xs.all(y, x + y >= 0))"),
		{Name: "heavy field", Kind: KindCondition, Mode: "WRITE", Type: TypeCELField, OnFailure: "DLQ",
			Expr: "message.xs.all(x, message.xs.all(y, x + y >= 0))"},
	}}
	rs.DomainRules[0].OnFailure = "NONE"
	res, err := e.Check(context.Background(), rs, nil, ModeWrite, value, nil)
	if err != nil {
		t.Fatal(err)
	}
	checkOutcomes(t, res.Outcomes, []want{
		{rule: "heavy", status: StatusError, action: ActionNone, msg: "cost limit exceeded"},
		{rule: "heavy field", status: StatusError, action: ActionDLQ, msg: "cost limit exceeded", field: "xs"},
	})

	// The same expression passes under the default limit.
	big := newEngine(t, Options{})
	res, err = big.Check(context.Background(), &registry.RuleSet{DomainRules: rs.DomainRules[:1]}, nil, ModeWrite, value, nil)
	if err != nil {
		t.Fatal(err)
	}
	checkOutcomes(t, res.Outcomes, []want{{rule: "heavy", status: StatusPassed, action: ActionNone}})
}

func TestProgramCache(t *testing.T) {
	e := newEngine(t, Options{MaxPrograms: 2})
	c1 := e.program(TypeCEL, KindCondition, "message.qty > 0")
	if c2 := e.program(TypeCEL, KindCondition, "message.qty > 0"); c1 != c2 {
		t.Error("the same rule compiled twice")
	}
	if c3 := e.program(TypeCELField, KindCondition, "message.qty > 0"); c3 == c1 {
		t.Error("CEL and CEL_FIELD share a program")
	}
	bad := e.program(TypeCEL, KindCondition, "(")
	if bad.err == nil || bad != e.program(TypeCEL, KindCondition, "(") {
		t.Error("compile errors are not cached")
	}
	e.mu.RLock()
	n := len(e.cache)
	e.mu.RUnlock()
	if n > 2 {
		t.Errorf("cache holds %d programs, limit 2", n)
	}
}

func TestValidate(t *testing.T) {
	e := newEngine(t, Options{})
	ok := cond("ok", "message.qty > 0")
	cases := []struct {
		name string
		rule registry.Rule
		want error // nil: valid
		msg  string
	}{
		{"valid condition", ok, nil, ""},
		{"valid field transform with guard", registry.Rule{Name: "t", Kind: "TRANSFORM", Type: TypeCELField, Expr: "name == 'ssn' ; 'XXX'"}, nil, ""},
		{"valid two-part action", with(ok, func(r *registry.Rule) { r.Mode, r.OnFailure = "WRITEREAD", "DLQ,ERROR" }), nil, ""},
		{"no name", with(ok, func(r *registry.Rule) { r.Name = " " }), ErrInvalidRule, "name"},
		{"bad kind", with(ok, func(r *registry.Rule) { r.Kind = "CHECK" }), ErrInvalidRule, "kind"},
		{"bad mode", with(ok, func(r *registry.Rule) { r.Mode = "ALWAYS" }), ErrInvalidRule, "mode"},
		{"bad action", with(ok, func(r *registry.Rule) { r.OnSuccess = "LOG" }), ErrInvalidRule, "LOG"},
		{"two-part action on WRITE", with(ok, func(r *registry.Rule) { r.OnFailure = "DLQ,ERROR" }), ErrInvalidRule, "two parts"},
		{"three-part action", with(ok, func(r *registry.Rule) { r.Mode, r.OnFailure = "WRITEREAD", "DLQ,ERROR,NONE" }), ErrInvalidRule, "more than two"},
		{"other type", with(ok, func(r *registry.Rule) { r.Type = "ENCRYPT" }), ErrUnsupportedType, "ENCRYPT"},
		{"empty expression", with(ok, func(r *registry.Rule) { r.Expr = "  " }), ErrInvalidRule, "no expression"},
		{"syntax error", with(ok, func(r *registry.Rule) { r.Expr = "message.qty >" }), ErrCompile, "Syntax error"},
		{"undeclared variable", with(ok, func(r *registry.Rule) { r.Expr = "value > 0" }), ErrCompile, "undeclared reference"},
		{"field variable in CEL_FIELD", with(ok, func(r *registry.Rule) { r.Type, r.Expr = TypeCELField, "value > 0 && name != ''" }), nil, ""},
		{"non-bool condition", with(ok, func(r *registry.Rule) { r.Expr = "1 + 2" }), ErrCompile, "must be a bool"},
		{"guard does not compile", with(ok, func(r *registry.Rule) { r.Expr = "message.( ; true" }), ErrCompile, "guard"},
		{"empty body after guard", with(ok, func(r *registry.Rule) { r.Expr = "true ; " }), ErrCompile, "empty"},
		{"unknown function", with(ok, func(r *registry.Rule) { r.Expr = "message.id.isPhoneNumber()" }), ErrCompile, "isPhoneNumber"},
		{"regex too big", with(ok, func(r *registry.Rule) { r.Expr = "message.id.matches('(a{1,1000}){1,1000}')" }), ErrCompile, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := e.Validate(tc.rule)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("Validate err = %v, want %v", err, tc.want)
			}
			if !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("Validate err %q does not mention %q", err, tc.msg)
			}
		})
	}
}

func TestValidateRuleSet(t *testing.T) {
	e := newEngine(t, Options{})
	up := registry.Rule{Name: "up", Kind: KindTransform, Mode: "UPGRADE", Type: TypeCEL, Expr: "message"}
	cases := []struct {
		name string
		rs   *registry.RuleSet
		msg  string // "" valid
	}{
		{"nil", nil, ""},
		{"valid", &registry.RuleSet{DomainRules: []registry.Rule{cond("a", "true"), cond("b", "true")}, MigrationRules: []registry.Rule{up},
			EncodingRules: []registry.Rule{{Name: "enc", Kind: KindTransform, Mode: "WRITEREAD", Type: "ENCRYPT_PAYLOAD"}}}, ""},
		{"duplicate names", &registry.RuleSet{DomainRules: []registry.Rule{cond("a", "true"), cond("a", "false")}}, "two rules named"},
		{"migration mode in domain rules", &registry.RuleSet{DomainRules: []registry.Rule{up}}, "domainRules rule \"up\" has mode UPGRADE"},
		{"domain mode in migration rules", &registry.RuleSet{MigrationRules: []registry.Rule{cond("w", "true")}}, "migrationRules rule \"w\" has mode WRITE"},
		{"bad CEL", &registry.RuleSet{DomainRules: []registry.Rule{cond("a", "(")}}, "does not compile"},
		{"encoding rule without a name", &registry.RuleSet{EncodingRules: []registry.Rule{{Kind: KindTransform, Type: "ENCRYPT_PAYLOAD"}}}, "needs a name"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := e.ValidateRuleSet(tc.rs)
			if tc.msg == "" {
				if err != nil {
					t.Fatalf("ValidateRuleSet: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("ValidateRuleSet err = %v, want it to mention %q", err, tc.msg)
			}
		})
	}
}

func TestSplitGuard(t *testing.T) {
	cases := []struct {
		expr, guard, body string
		ok                bool
	}{
		{"a > 1", "", "a > 1", false},
		{"name == 'ssn' ; value.size() == 9", "name == 'ssn' ", " value.size() == 9", true},
		{"x == ';' ; y", "x == ';' ", " y", true},
		{`x == "a;b"`, "", `x == "a;b"`, false},
		{`x == 'it\'s;' ; y`, `x == 'it\'s;' `, " y", true},
		{`x.matches(r'\';') ; y`, `x.matches(r'\'`, `') ; y`, true}, // a raw string ends at the first quote
		{`x == '''a';b''' ; y`, `x == '''a';b''' `, " y", true},
		{`x == b';' ; y`, `x == b';' `, " y", true},
		{"'unterminated ; y", "", "'unterminated ; y", false},
		{"; y", "", " y", true},
	}
	for _, tc := range cases {
		g, b, ok := splitGuard(tc.expr)
		if g != tc.guard || b != tc.body || ok != tc.ok {
			t.Errorf("splitGuard(%q) = %q, %q, %v; want %q, %q, %v", tc.expr, g, b, ok, tc.guard, tc.body, tc.ok)
		}
	}
}

func TestMatchPath(t *testing.T) {
	cases := []struct {
		pattern, path string
		want          bool
	}{
		{"", "", true},
		{"Foo", "", false},
		{"", "Foo", false},
		{"Foo", "Foo", true},
		{"*", "", true},
		{"?", "", false},
		{"Fo*", "Foo", true},
		{"Fo?", "Foo", true},
		{"Fo*", "Foo Bar and Catflag", true},
		{"N?w ?o?k??r?s", "New Bookmarks", true},
		{"*Foo", "BarFoo", true},
		{"*Foo", "FOO", false},
		{"a*.bob.eve", "alice.bob.eve", true},
		{"a*.bob.e*", "alice.bob.eve", true},
		{"a*", "alice.bob.eve", false},
		{"a**", "alice.bob.eve", true},
		{"alice.bob*", "alice.bob.eve", false},
		{"alice.bob**", "alice.bob.eve", true},
		{"**.ssn", "$.ssn", true},
		{"**.ssn", "$.customer.ssn", true},
		{"**.ssn", "ssn", false},
		{"customer.*", "customer.ssn", true},
		{"customer.*", "customer.address.city", false},
		{"a.b", "aXb", false}, // '.' is literal
		{"(x)+", "(x)+", true},
		{"[*]", "[abc]", true},
	}
	for _, tc := range cases {
		if got := MatchPath(tc.pattern, tc.path); got != tc.want {
			t.Errorf("MatchPath(%q, %q) = %v, want %v", tc.pattern, tc.path, got, tc.want)
		}
	}
}

func TestMetadataTags(t *testing.T) {
	md := &registry.Metadata{Tags: map[string][]string{
		"**.ssn":       {"PII"},
		"customer.*":   {"CUSTOMER"},
		"items.sku":    {"KEY"},
		"nothing.here": {"X"},
	}}
	w := &fieldWalker{md: md, fieldTags: func(path string) []string {
		if path == "customer.ssn" {
			return []string{"SCHEMA", "PII"}
		}
		return nil
	}}
	cases := map[string][]string{
		"customer.ssn":   {"CUSTOMER", "PII", "SCHEMA"},
		"customer.email": {"CUSTOMER"},
		"ssn":            {"PII"},
		"items.sku":      {"KEY"},
		"id":             nil,
	}
	for path, want := range cases {
		if got := w.tagsFor(path); !reflect.DeepEqual(got, want) {
			t.Errorf("tagsFor(%q) = %v, want %v", path, got, want)
		}
	}
}

func TestStatusString(t *testing.T) {
	for s, want := range map[Status]string{StatusPassed: "passed", StatusFailed: "failed", StatusError: "error", Status(9): "Status(9)"} {
		if s.String() != want {
			t.Errorf("%d.String() = %q, want %q", int(s), s.String(), want)
		}
	}
}

func TestReplaceBounded(t *testing.T) {
	e := newEngine(t, Options{MaxStringLen: 1 << 16})
	v := map[string]any{"s": strings.Repeat("a", 100)}
	rs := &registry.RuleSet{DomainRules: []registry.Rule{
		with(cond("square", "message.s.replace('a', message.s).size() == 10000"), func(r *registry.Rule) { r.OnFailure = "NONE" }),
		with(cond("fourth power", "message.s.replace('a', message.s).replace('a', message.s.replace('a', message.s)).size() > 0"), func(r *registry.Rule) { r.OnFailure = "NONE" }),
		cond("n", "'hello hello'.replace('he', 'we', 1) == 'wello hello' && 'ab'.replace('', '_') == '_a_b_'"),
	}}
	res, err := e.Check(context.Background(), rs, nil, ModeWrite, v, nil)
	if err != nil {
		t.Fatal(err)
	}
	checkOutcomes(t, res.Outcomes, []want{
		{rule: "square", status: StatusPassed, action: ActionNone},
		{rule: "fourth power", status: StatusError, action: ActionNone, msg: "over the 65536-byte limit"},
		{rule: "n", status: StatusPassed, action: ActionNone},
	})
}

func TestDeadlineInterruptsComprehension(t *testing.T) {
	e := newEngine(t, Options{CostLimit: 1 << 62})
	list := make([]any, 2000)
	for i := range list {
		list[i] = int64(i)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	// Check refuses a cancelled context outright; evaluate directly to see
	// the comprehension notice it.
	c := e.program(TypeCEL, KindCondition, "message.xs.all(x, message.xs.all(y, message.xs.all(z, x + y + z >= 0)))")
	if c.err != nil || !c.loops {
		t.Fatalf("compiled = %+v", c)
	}
	_, msg := eval(ctx, c.body, c.loops, &msgActivation{message: types.DefaultTypeAdapter.NativeToValue(map[string]any{"xs": list})})
	if !strings.Contains(msg, "cancel") {
		t.Errorf("eval under a cancelled context: %q, want an interruption", msg)
	}
}

func TestConcurrentChecks(t *testing.T) {
	e := newEngine(t, Options{})
	md := &registry.Metadata{Tags: map[string][]string{"**.ssn": {"PII"}}}
	rs := &registry.RuleSet{DomainRules: []registry.Rule{
		cond("qty", "message.qty > 0"),
		{Name: "mask", Kind: KindTransform, Mode: "WRITE", Type: TypeCELField, Tags: []string{"PII"}, Expr: "'XXX'"},
	}}
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 50; i++ {
				res, err := e.Check(context.Background(), rs, md, ModeWrite, order(), nil)
				if err != nil || res.Action() != ActionNone || !res.Transformed {
					t.Errorf("Check = %+v, %v", res, err)
					return
				}
			}
		}()
	}
	wg.Wait()
}

func TestNewEngineOptions(t *testing.T) {
	if _, err := NewEngine(Options{MaxStringLen: -1}); !errors.Is(err, ErrInvalidOptions) {
		t.Errorf("NewEngine(negative) err = %v", err)
	}
}
