package rules

import (
	"context"
	"testing"

	"github.com/runnel-dev/runnel/internal/registry"
)

// record10 is a flat 10-field record as Schema.Decode returns it.
func record10() map[string]any {
	return map[string]any{
		"id":       "o-1001",
		"customer": "c-77",
		"ssn":      "123-45-6789",
		"email":    "ann@example.com",
		"qty":      int64(3),
		"price":    9.5,
		"currency": "EUR",
		"paid":     true,
		"ts":       int64(1718000000000),
		"note":     "leave at the door",
	}
}

// BenchmarkCheck measures one produce-path check of a 3-rule contract on a
// 10-field record: a message condition, a guarded field condition and, in
// the "transform" case, a field transform on the one tagged field.
func BenchmarkCheck(b *testing.B) {
	md := &registry.Metadata{Tags: map[string][]string{"**.ssn": {"PII"}}}
	conditions := []registry.Rule{
		cond("positive", "message.qty > 0 && message.price > 0.0 && message.currency in ['EUR', 'USD']"),
		{Name: "ssn format", Kind: KindCondition, Mode: "WRITE", Type: TypeCELField,
			Expr: `name == 'ssn' ; value.matches(r'^\d{3}-\d{2}-\d{4}$')`},
		{Name: "strings short", Kind: KindCondition, Mode: "WRITE", Type: TypeCELField,
			Expr: `typeName == 'STRING' ; size(value) < 256`},
	}
	transform := []registry.Rule{
		conditions[0], conditions[1],
		{Name: "mask", Kind: KindTransform, Mode: "WRITE", Type: TypeCELField, Tags: []string{"PII"}, Expr: `'XXX-XX-' + value.substring(7)`},
	}
	for _, bc := range []struct {
		name  string
		rules []registry.Rule
	}{
		{"conditions", conditions},
		{"transform", transform},
	} {
		b.Run(bc.name, func(b *testing.B) {
			e := newEngine(b, Options{})
			rs := &registry.RuleSet{DomainRules: bc.rules}
			value := record10()
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				res, err := e.Check(ctx, rs, md, ModeWrite, value, nil)
				if err != nil {
					b.Fatal(err)
				}
				if f, bad := res.Failure(); bad {
					b.Fatalf("rule %s: %s", f.Rule, f.Message)
				}
			}
		})
	}
}
